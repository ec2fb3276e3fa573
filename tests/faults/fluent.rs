//! Fluent (Forward protocol, acks on by default) against the testkit receiver's faults and
//! real restarts.

use std::time::Duration;

use logship_core::Guard;
use logship_core::spool::{FsyncPolicy, SpoolConfig};
use logship_fluent::FluentLayer;
use logship_testkit::fluent::{Faults, FluentReceiver, NilPolicy, Times};
use logship_testkit::wait_until;

use crate::common::*;

/// The testkit Forward receiver (Fluent Bit's behaviour on `nil`, so a keep-alive would show).
pub struct Fluent {
    pub r: FluentReceiver,
}

impl Rig for Fluent {
    const NAME: &'static str = "fluent";

    fn try_start(port: u16) -> std::io::Result<Self> {
        let r = FluentReceiver::builder()
            .with_nil_policy(NilPolicy::Close)
            .with_port(port)
            .start()?;
        Ok(Self { r })
    }
    fn port(&self) -> u16 {
        self.r.port()
    }
    fn ids(&self) -> Vec<u64> {
        self.r
            .events()
            .iter()
            .filter_map(|e| e.field("message")?.as_str().and_then(id_of))
            .collect()
    }
    fn count(&self) -> u64 {
        self.r.event_count() as u64
    }
    fn set_failing(&self, on: bool) {
        self.r.update_faults(|f| f.refuse_connections = on);
    }
    fn build(port: u16, pipeline: Pipeline) -> (BoxLayer, Guard) {
        build_with(port, |b| b, pipeline)
    }
}

fn build_with(
    port: u16,
    f: impl FnOnce(logship_fluent::FluentBuilder) -> logship_fluent::FluentBuilder,
    pipeline: Pipeline,
) -> (BoxLayer, Guard) {
    let b = FluentLayer::builder("faults")
        .with_server(format!("127.0.0.1:{port}"))
        .with_ack_timeout(Duration::from_secs(5))
        .with_pipeline(move |p| pipeline(fast(p)));
    let (layer, guard) = f(b).build().unwrap_or_else(|e| panic!("fluent: {e}"));
    (Box::new(layer), guard)
}

#[test]
fn receiver_killed_and_restarted_5_times_during_100k_records() {
    let r = restart_five_times::<Fluent>(100_000, 1_000);
    assert_eq!(
        r.stats.duplicates, 0,
        "the sink reports no duplicates itself"
    );
}

#[test]
fn sigkill_mid_stream_then_restart_replays_the_spool() {
    let rig = Fluent::start(0);
    sigkill_with_spool(&rig, 20_000);
    assert_eq!(rig.r.stats().protocol_errors, 0, "{:?}", rig.r.errors());
}

#[test]
fn connection_reset_in_the_middle_of_a_batch() {
    let (s, tally) = reset_mid_batch::<Fluent>(2_000, 20_000);
    // A cut request never reaches the receiver whole, so nothing arrives twice.
    assert_eq!(tally.duplicates(), 0, "{s:#?}");
}

#[test]
fn server_that_accepts_and_never_answers_times_out_then_recovers() {
    timeouts_then_recovery::<Fluent>(500);
}

#[test]
fn shutdown_against_a_hung_server_is_bounded_and_counted() {
    shutdown_against_blackhole::<Fluent>(1_000);
}

#[test]
fn withheld_acks_resend_the_same_chunks_and_lose_nothing() {
    let rig = Fluent::start(0);
    rig.r
        .set_faults(Faults::none().with_withhold_acks(Times::Next(3)));
    let (layer, guard) = build_with(
        rig.port(),
        |b| b.with_ack_timeout(Duration::from_secs(1)),
        Box::new(|p| p.with_max_batch_records(500)),
    );
    let d = dispatch(layer);
    let n = 5_000;
    emit(&d, 0..n);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, n);
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries),
        (n, 0, 3),
        "{s:#?}"
    );
    let rs = rig.r.stats();
    assert_eq!((rs.acks_withheld, rs.duplicate_chunks), (3, 3));
    let tally = Tally::of(rig.ids());
    tally.assert_all(0..n, "fluent");
    // At least once: the three unacknowledged requests arrived twice (resent, same chunk).
    assert_eq!(
        tally.duplicates(),
        rig.r.events().iter().filter(|e| e.duplicate).count() as u64
    );
    assert!(tally.duplicates() > 0);
    shutdown_within(guard, Duration::from_secs(5));
}

#[test]
fn acks_withheld_for_good_with_the_spool_lose_nothing() {
    let rig = Fluent::start(0);
    rig.r
        .set_faults(Faults::none().with_withhold_acks(Times::Always));
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_path_buf();
    let (layer, guard) = build_with(
        rig.port(),
        |b| b.with_ack_timeout(Duration::from_millis(100)),
        Box::new(move |p| {
            p.with_max_batch_records(200)
                .with_spool(SpoolConfig::new(spool).with_fsync(FsyncPolicy::Never))
                .with_retry(
                    logship_core::RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(1))
                        .with_max_delay(Duration::from_millis(5))
                        .with_max_attempts(Some(2)),
                )
        }),
    );
    let d = dispatch(layer);
    let n = 2_000;
    emit(&d, 0..n);
    // Retries run out: the batches wait in the spool instead of being given up.
    assert!(
        wait_until(WAIT, || guard.stats().spooled >= n),
        "{:#?}",
        guard.stats()
    );
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered()), (0, 0), "{s:#?}");
    rig.r.set_faults(Faults::none());
    assert!(
        wait_until(WAIT, || {
            let s = guard.stats();
            s.spool_records == 0 && s.in_flight() == 0
        }),
        "{:#?}",
        guard.stats()
    );
    let (s, _) = shutdown_within(guard, Duration::from_secs(5));
    assert_eq!(s.undelivered(), 0, "{s:#?}");
    assert!(s.delivered >= n, "{s:#?}");
    let tally = Tally::of(rig.ids());
    tally.assert_all(0..n, "fluent");
    eprintln!(
        "fluent: acks withheld with the spool: {} delivered (of {n}), {} replayed, {} arrivals",
        s.delivered,
        s.spool_replayed,
        tally.total()
    );
}

#[test]
fn without_acks_a_batch_the_server_drops_is_lost_unnoticed() {
    // At-most-once, as documented: without acks a batch counts as delivered once written,
    // so a server that closes after reading part of it loses it without anyone knowing.
    let rig = Fluent::start(0);
    rig.r
        .set_faults(Faults::none().with_close_after_bytes(Some(1_000)));
    let (layer, guard) = build_with(
        rig.port(),
        |b| b.with_require_ack(false),
        Box::new(|p| p.with_max_batch_records(100)),
    );
    let d = dispatch(layer);
    emit(&d, 0..100);
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_accounted(&s, 100);
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries),
        (100, 0, 0),
        "{s:#?}"
    );
    assert!(wait_until(WAIT, || rig.r.stats().fault_closes == 1));
    assert_eq!(rig.r.event_count(), 0, "the cut request was dropped whole");
    shutdown_within(guard, Duration::from_secs(5));
}
