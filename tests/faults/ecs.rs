//! Elasticsearch / OpenSearch (`_bulk` of ECS documents, `create` with deterministic ids)
//! against the testkit receiver's faults and real restarts. Log events are switched on so
//! that every record is one document.

use std::time::{Duration, Instant};

use logship_core::Guard;
use logship_ecs_metrics::EcsLayer;
use logship_testkit::es::EsReceiver;

use crate::common::*;

/// The testkit Elasticsearch receiver.
pub struct Ecs {
    pub r: EsReceiver,
}

impl Rig for Ecs {
    const NAME: &'static str = "ecs";

    fn try_start(port: u16) -> std::io::Result<Self> {
        Ok(Self {
            r: EsReceiver::builder().with_port(port).start()?,
        })
    }
    fn port(&self) -> u16 {
        self.r.addr().port()
    }
    fn ids(&self) -> Vec<u64> {
        self.r
            .documents()
            .iter()
            .filter_map(|d| d.source["message"].as_str().and_then(id_of))
            .collect()
    }
    fn count(&self) -> u64 {
        self.r.doc_count() as u64
    }
    fn set_failing(&self, on: bool) {
        if on {
            self.r.fail_requests(u64::MAX / 2, 503);
        } else {
            self.r.clear_faults();
        }
    }
    fn build(port: u16, pipeline: Pipeline) -> (BoxLayer, Guard) {
        let (layer, guard) = EcsLayer::builder(format!("http://127.0.0.1:{port}").as_str())
            .with_host_fields(false)
            .with_log_events(true)
            .with_pipeline(move |p| pipeline(fast(p)))
            .build()
            .unwrap_or_else(|e| panic!("ecs: {e}"));
        (Box::new(layer), guard)
    }
}

#[test]
fn receiver_killed_and_restarted_5_times_during_100k_records() {
    restart_five_times::<Ecs>(100_000, 1_000);
}

#[test]
fn sigkill_mid_stream_then_restart_replays_the_spool() {
    sigkill_with_spool(&Ecs::start(0), 20_000);
}

#[test]
fn connection_reset_in_the_middle_of_a_batch() {
    reset_mid_batch::<Ecs>(2_000, 30_000);
}

#[test]
fn server_that_accepts_and_never_answers_times_out_then_recovers() {
    timeouts_then_recovery::<Ecs>(500);
}

#[test]
fn shutdown_against_a_hung_server_is_bounded_and_counted() {
    shutdown_against_blackhole::<Ecs>(1_000);
}

#[test]
fn hung_bulk_requests_time_out_and_are_retried_without_loss() {
    let rig = Ecs::start(0);
    rig.r.hang_requests(2);
    let (layer, guard) = Ecs::build(
        rig.port(),
        Box::new(|p| p.with_send_timeout(Duration::from_millis(300))),
    );
    let n = 300;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.undelivered()), (n, 0), "{s:#?}");
    assert!(s.retries >= 2, "{s:#?}");
    assert_eq!(rig.r.counters().unanswered, 2);
    let tally = wait_all(&rig, 0..n);
    assert_eq!(tally.duplicates(), 0, "a hung request indexes nothing");
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn throttled_bulk_requests_wait_for_retry_after() {
    let rig = Ecs::start(0);
    rig.r.throttle_requests(2, Duration::from_secs(1));
    let (layer, guard) = Ecs::build(
        rig.port(),
        Box::new(|p| p.with_linger(Duration::from_secs(60))),
    );
    let n = 100;
    let t0 = Instant::now();
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let took = t0.elapsed();
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.retries, s.requests), (n, 2, 3), "{s:#?}");
    assert!(took >= Duration::from_millis(1_900), "{took:?}");
    assert_eq!(rig.r.counters().injected_throttles, 2);
    assert_eq!(rig.r.doc_count() as u64, n);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn server_errors_503_are_retried_until_delivered() {
    let rig = Ecs::start(0);
    rig.r.fail_requests(3, 503);
    let (layer, guard) = Ecs::build(
        rig.port(),
        Box::new(|p| p.with_linger(Duration::from_secs(60))),
    );
    let n = 100;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.retries, s.requests), (n, 3, 4), "{s:#?}");
    assert_eq!(rig.r.doc_count() as u64, n);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn partial_bulk_failure_resends_only_the_refused_items() {
    let rig = Ecs::start(0);
    rig.r.reject_items(150);
    let (layer, guard) = Ecs::build(
        rig.port(),
        Box::new(|p| {
            p.with_max_batch_records(1_000)
                .with_linger(Duration::from_secs(60))
        }),
    );
    let n = 1_000;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!(
        (s.delivered, s.retries, s.requests, s.duplicates),
        (n, 1, 2, 0),
        "{s:#?}"
    );
    let c = rig.r.counters();
    assert_eq!(c.items("create", 429), 150);
    assert_eq!(c.items("create", 201), n);
    let tally = wait_all(&rig, 0..n);
    assert_eq!(tally.duplicates(), 0);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn a_lost_reply_resends_the_batch_and_the_duplicates_are_counted() {
    // The receiver indexes a bulk request but the reply is lost: the resend meets 409s for
    // every document (deterministic `_id` + `create`), which count as delivered and as
    // duplicates, and nothing is indexed twice.
    let rig = Ecs::start(0);
    rig.r.drop_responses(1);
    let (layer, guard) = Ecs::build(
        rig.port(),
        Box::new(|p| {
            p.with_max_batch_records(500)
                .with_linger(Duration::from_secs(60))
                .with_send_timeout(Duration::from_millis(500))
        }),
    );
    let n = 500;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.duplicates, s.retries), (n, n, 1), "{s:#?}");
    assert_eq!(rig.r.counters().duplicates_refused, n);
    let tally = wait_all(&rig, 0..n);
    assert_eq!(tally.total(), n, "indexed once");
    shutdown_within(guard, Duration::from_secs(5));
}
