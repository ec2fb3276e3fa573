//! jKool over HTTPS/HTTP (JESL posts) against the testkit receiver's faults and real restarts.

use std::time::{Duration, Instant};

use logship_core::Guard;
use logship_jkool_http::JkoolHttpLayer;
use logship_testkit::jkool::JkoolReceiver;

use crate::common::*;

/// The testkit JESL receiver (no token check).
pub struct JkoolHttp {
    pub r: JkoolReceiver,
}

impl Rig for JkoolHttp {
    const NAME: &'static str = "jkool-http";

    fn try_start(port: u16) -> std::io::Result<Self> {
        Ok(Self {
            r: JkoolReceiver::builder().with_port(port).start()?,
        })
    }
    fn port(&self) -> u16 {
        self.r.addr().port()
    }
    fn ids(&self) -> Vec<u64> {
        self.r
            .events()
            .iter()
            .filter_map(|e| e["msg-text"].as_str().and_then(id_of))
            .collect()
    }
    fn count(&self) -> u64 {
        self.r.event_count() as u64
    }
    fn set_failing(&self, on: bool) {
        if on {
            self.r.fail_requests(u64::MAX / 2, 503);
        } else {
            self.r.clear_faults();
        }
    }
    fn build(port: u16, pipeline: Pipeline) -> (BoxLayer, Guard) {
        build_with(port, |b| b, pipeline)
    }
}

fn build_with(
    port: u16,
    f: impl FnOnce(logship_jkool_http::JkoolHttpBuilder) -> logship_jkool_http::JkoolHttpBuilder,
    pipeline: Pipeline,
) -> (BoxLayer, Guard) {
    let b = JkoolHttpLayer::builder("faults-token")
        .with_base_url(format!("http://127.0.0.1:{port}/JESL"))
        .with_pipeline(move |p| pipeline(fast(p)));
    let (layer, guard) = f(b).build().unwrap_or_else(|e| panic!("jkool-http: {e}"));
    (Box::new(layer), guard)
}

#[test]
fn receiver_killed_and_restarted_5_times_during_100k_records() {
    restart_five_times::<JkoolHttp>(100_000, 1_000);
}

#[test]
fn sigkill_mid_stream_then_restart_replays_the_spool() {
    sigkill_with_spool(&JkoolHttp::start(0), 20_000);
}

#[test]
fn connection_reset_in_the_middle_of_a_batch() {
    reset_mid_batch::<JkoolHttp>(2_000, 30_000);
}

#[test]
fn server_that_accepts_and_never_answers_times_out_then_recovers() {
    timeouts_then_recovery::<JkoolHttp>(500);
}

#[test]
fn hung_posts_time_out_and_are_retried_without_loss() {
    let rig = JkoolHttp::start(0);
    rig.r.hang_requests(2);
    // A send timeout far above a loopback post's latency, even on a loaded machine: only the
    // two hung posts are given up (a slow post given up at the deadline may land twice).
    let (layer, guard) = JkoolHttp::build(
        rig.port(),
        Box::new(|p| p.with_send_timeout(Duration::from_secs(3))),
    );
    let n = 300;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.undelivered()), (n, 0), "{s:#?}");
    assert!(s.retries >= 1, "{s:#?}");
    assert_eq!(rig.r.counters().unanswered, 2);
    let tally = Tally::of(rig.ids());
    tally.assert_all(0..n, "jkool-http");
    assert_eq!(tally.duplicates(), 0, "a hung post stores nothing");
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn shutdown_against_a_hung_server_is_bounded_and_counted() {
    shutdown_against_blackhole::<JkoolHttp>(1_000);
}

#[test]
fn shutdown_counts_what_is_left_before_it_returns() {
    shutdown_counts_before_returning::<JkoolHttp>(1_000);
}

#[test]
fn throttled_posts_wait_for_retry_after() {
    let rig = JkoolHttp::start(0);
    rig.r.throttle_requests(2, Duration::from_secs(1));
    let (layer, guard) = JkoolHttp::build(
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
    // One post per record, several in flight: both 429s come in the first send, whose two
    // records are retried together once.
    assert_eq!((s.delivered, s.retries, s.requests), (n, 1, 2), "{s:#?}");
    // `Retry-After: 1`: the retry waited the server's delay, not the 5-50 ms of the policy.
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert_eq!(rig.r.counters().injected_throttles, 2);
    assert_eq!(Tally::of(rig.ids()).total(), n);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn server_errors_503_are_retried_until_delivered() {
    let rig = JkoolHttp::start(0);
    rig.r.fail_requests(3, 503);
    let (layer, guard) = JkoolHttp::build(
        rig.port(),
        Box::new(|p| p.with_linger(Duration::from_secs(60))),
    );
    let n = 100;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    // The three refused posts (one record each) are retried together in the next send.
    assert_eq!((s.delivered, s.retries, s.requests), (n, 1, 2), "{s:#?}");
    assert_eq!(rig.r.counters().requests_to("event"), n + 3);
    let last = s.last_error.unwrap_or_default();
    assert!(last.contains("3 of 100") && last.contains("503"), "{last}");
    assert_eq!(Tally::of(rig.ids()).total(), n, "a 503 stores nothing");
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn a_failed_post_among_many_is_the_only_one_resent() {
    // One batch of 1 000 records, one post each (jKool's one object per request); one post
    // gets a 503: only its record is sent again (a partial outcome), so the receiver stores
    // no duplicate.
    let rig = JkoolHttp::start(0);
    rig.r.fail_requests(1, 503);
    let (layer, guard) = build_with(
        rig.port(),
        |b| b.with_max_requests_in_flight(16),
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
    assert_eq!((s.delivered, s.retries, s.requests), (n, 1, 2), "{s:#?}");
    let c = rig.r.counters();
    assert_eq!(c.requests_to("event"), n + 1, "{c:#?}");
    let tally = Tally::of(rig.ids());
    tally.assert_all(0..n, "jkool-http");
    assert_eq!(tally.duplicates(), 0);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn spool_accounting_stays_exact_while_the_backend_stays_down() {
    // While the backend is down, spooled segments are retried (replayed) again and again;
    // the stats identity must hold at every moment, not only after recovery.
    let rig = JkoolHttp::start(0);
    rig.set_failing(true);
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_path_buf();
    let (layer, guard) = JkoolHttp::build(
        rig.port(),
        Box::new(move |p| {
            p.with_spool(logship_core::spool::SpoolConfig::new(spool))
                .with_retry(
                    logship_core::RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(1))
                        .with_max_delay(Duration::from_millis(2))
                        .with_max_attempts(Some(2)),
                )
        }),
    );
    let n = 200;
    emit(&dispatch(layer), 0..n);
    assert!(logship_testkit::wait_until(WAIT, || guard.stats().requests >= 20));
    let s = guard.stats();
    assert_eq!((s.spooled, s.delivered), (n, 0), "{s:#?}");
    assert_accounted_with_spool(&s, n);
    rig.set_failing(false);
    assert!(logship_testkit::wait_until(WAIT, || guard
        .stats()
        .spool_records
        == 0));
    let (s, _) = shutdown_within(guard, Duration::from_secs(5));
    assert_accounted_with_spool(&s, n);
}
