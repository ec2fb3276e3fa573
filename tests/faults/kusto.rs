//! Azure Data Explorer (streaming ingestion, AAD client credentials) against the testkit
//! receiver's faults and real restarts. The receiver is also the token endpoint, so a
//! restarted receiver no longer knows the layer's token: every restart is a token refusal too.

use std::time::{Duration, Instant};

use logship_core::Guard;
use logship_kusto::{IngestionMode, KustoLayer};
use logship_testkit::kusto::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, KustoReceiver, StreamingFault,
};
use logship_testkit::wait_until;

use crate::common::*;

const DB: &str = "logs";
const TABLE: &str = "Events";
const SCHEMA: [(&str, &str); 15] = [
    ("Timestamp", "datetime"),
    ("Level", "string"),
    ("Target", "string"),
    ("Message", "string"),
    ("Fields", "dynamic"),
    ("SpanName", "string"),
    ("Duration", "timespan"),
    ("SourceFqn", "string"),
    ("Correlators", "dynamic"),
    ("TrackingId", "string"),
    ("ParentTrackingId", "string"),
    ("Snapshots", "dynamic"),
    ("Host", "string"),
    ("Service", "string"),
    ("Thread", "string"),
];

/// The testkit Kusto receiver with the logship table and mapping.
pub struct Kusto {
    pub r: KustoReceiver,
}

impl Rig for Kusto {
    const NAME: &'static str = "kusto";

    fn try_start(port: u16) -> std::io::Result<Self> {
        let r = KustoReceiver::builder()
            .with_port(port)
            // The layer reaches the receiver through a proxy on another port; a resource id
            // on the cluster's host keeps the token audience tied to it (`https://127.0.0.1`).
            .with_service_resource_id("https://127.0.0.1")
            .with_table(DB, TABLE, &SCHEMA)
            .with_command(
                DB,
                &logship_kusto::create_mapping_command(TABLE, logship_kusto::DEFAULT_MAPPING_NAME),
            )
            .start()?;
        Ok(Self { r })
    }
    fn port(&self) -> u16 {
        self.r.addr().port()
    }
    fn ids(&self) -> Vec<u64> {
        self.r
            .rows(TABLE)
            .iter()
            .filter_map(|row| row["Message"].as_str().and_then(id_of))
            .collect()
    }
    fn count(&self) -> u64 {
        self.r.row_count(TABLE) as u64
    }
    fn set_failing(&self, on: bool) {
        if on {
            self.r
                .fail_next_streaming(1_000_000, StreamingFault::Transient { status: 503 });
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
    f: impl FnOnce(logship_kusto::KustoBuilder) -> logship_kusto::KustoBuilder,
    pipeline: Pipeline,
) -> (BoxLayer, Guard) {
    let b = KustoLayer::builder()
        .with_cluster(format!("http://127.0.0.1:{port}"))
        .with_database(DB)
        .with_table(TABLE)
        .with_application_key(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "contoso")
        // The receiver is the login endpoint too (not a Microsoft Entra host).
        .with_login_endpoint(format!("http://127.0.0.1:{port}"))
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_host_name("faults-host")
        .with_app_name("logship-faults")
        .with_user_name("tester")
        .with_pipeline(move |p| pipeline(fast(p)));
    let (layer, guard) = f(b).build().unwrap_or_else(|e| panic!("kusto: {e}"));
    (Box::new(layer), guard)
}

#[test]
fn receiver_killed_and_restarted_5_times_during_100k_records() {
    restart_five_times::<Kusto>(100_000, 1_000);
}

#[test]
fn sigkill_mid_stream_then_restart_replays_the_spool() {
    sigkill_with_spool(&Kusto::start(0), 20_000);
}

#[test]
fn connection_reset_in_the_middle_of_a_batch() {
    reset_mid_batch::<Kusto>(2_000, 30_000);
}

#[test]
fn server_that_accepts_and_never_answers_times_out_then_recovers() {
    timeouts_then_recovery::<Kusto>(500);
}

#[test]
fn shutdown_against_a_hung_server_is_bounded_and_counted() {
    shutdown_against_blackhole::<Kusto>(1_000);
}

#[test]
fn throttled_requests_wait_for_retry_after() {
    let rig = Kusto::start(0);
    rig.r.throttle_next(2, Duration::from_secs(1));
    let (layer, guard) = Kusto::build(
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
    assert_eq!(rig.r.stats().throttled, 2);
    assert_eq!(Tally::of(rig.ids()).total(), n);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn transient_503s_are_retried_until_delivered() {
    let rig = Kusto::start(0);
    rig.r
        .fail_next_streaming(3, StreamingFault::Transient { status: 503 });
    let (layer, guard) = Kusto::build(
        rig.port(),
        Box::new(|p| p.with_linger(Duration::from_secs(60))),
    );
    let n = 100;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.retries), (n, 3), "{s:#?}");
    assert_eq!(Tally::of(rig.ids()).total(), n);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn tokens_expiring_mid_stream_are_refreshed_without_loss() {
    let rig = Kusto::start(0);
    let (layer, guard) = Kusto::build(rig.port(), Box::new(|p| p.with_max_batch_records(500)));
    let d = dispatch(layer);
    let n = 10_000;
    let producer = emit_in_background(&d, 0..n);
    for k in 1..=3u64 {
        assert!(wait_until(WAIT, || rig.ids().len() as u64 >= n * k / 4));
        rig.r.expire_all_tokens();
    }
    producer.join().unwrap();
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.undelivered()), (n, 0), "{s:#?}");
    let k = rig.r.stats();
    // Each expiry costs one refused request and one new token, inside the same send.
    assert_eq!(k.auth_failures, 3, "{k:#?}");
    assert_eq!(k.tokens_issued, 4, "{k:#?}");
    assert_eq!(s.retries, 0, "the refresh happens inside one send: {s:#?}");
    let tally = Tally::of(rig.ids());
    tally.assert_all(0..n, "kusto");
    assert_eq!(tally.duplicates(), 0);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn managed_mode_falls_back_to_queued_ingestion_when_streaming_keeps_failing() {
    let rig = Kusto::start(0);
    rig.r
        .fail_next_streaming(3, StreamingFault::Transient { status: 503 });
    let (layer, guard) = build_with(
        rig.port(),
        |b| b.with_ingestion_mode(IngestionMode::Managed),
        Box::new(|p| p.with_linger(Duration::from_secs(60))),
    );
    let n = 100;
    emit(&dispatch(layer), 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!((s.delivered, s.undelivered()), (n, 0), "{s:#?}");
    let k = rig.r.stats();
    assert_eq!((k.queued_ingestions, k.queued_rows), (1, n), "{k:#?}");
    assert_eq!(Tally::of(rig.ids()).total(), n);
    shutdown_within(guard, Duration::from_secs(5));
}
