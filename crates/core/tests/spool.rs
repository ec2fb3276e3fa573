//! The disk spool: nothing is lost while the backend is down, the backlog replays when it comes
//! back, and a restart replays what the previous run left.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_core::spool::{FsyncPolicy, SpoolConfig};
use logship_core::{
    Batch, BreakerConfig, Outcome, PipelineBuilder, RetryPolicy, SendContext, Sink, Value,
};
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Backend {
    up: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<i64>>>,
}

impl Sink for Backend {
    fn name(&self) -> &'static str {
        "toggle"
    }
    async fn send(&mut self, batch: &Batch, _cx: &mut SendContext) -> Outcome {
        if !self.up.load(Ordering::SeqCst) {
            return Outcome::retry("connection refused");
        }
        let mut g = self.got.lock().unwrap();
        for r in batch.records() {
            if let Some(Value::I64(i)) = r.field("id") {
                g.push(i);
            }
        }
        Outcome::Delivered
    }
}

fn builder(dir: &std::path::Path) -> PipelineBuilder {
    PipelineBuilder::new()
        .with_max_queue_records(64)
        .with_max_batch_records(32)
        .with_linger(Duration::from_millis(20))
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(20)),
        )
        .with_breaker(
            BreakerConfig::default()
                .with_open_duration(Duration::from_millis(20), Duration::from_millis(50)),
        )
        .with_spool(SpoolConfig::new(dir).with_fsync(FsyncPolicy::Never))
}

fn wait(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn outage_spools_instead_of_dropping_then_replays_everything() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::default();
    let (layer, guard) = builder(dir.path()).build(backend.clone()).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let n = 2_000_i64;
    for id in 0..n {
        tracing::info!(id, "during the outage");
        if id % 100 == 0 {
            // Give the worker room to move the queue to disk, as a real app's pace would.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let h = guard.handle();
    assert!(wait(|| h.stats().in_flight() <= 64), "{:?}", h.stats());
    let s = guard.stats();
    assert!(s.spooled > 0, "{s:?}");
    backend.up.store(true, Ordering::SeqCst);
    assert!(
        wait(|| backend.got.lock().unwrap().len() as i64 == n - s.dropped() as i64),
        "{:?}",
        h.stats()
    );
    // The last segment is deleted once its records are resolved, just after their delivery.
    assert!(wait(|| h.stats().spool_records == 0), "{:?}", h.stats());
    let s = guard.stats();
    let got: BTreeSet<i64> = backend.got.lock().unwrap().iter().copied().collect();
    assert_eq!(
        got.len() as u64,
        s.enqueued,
        "every enqueued record delivered once: {s:?}"
    );
    assert_eq!(s.enqueued + s.dropped_at_enqueue(), n as u64);
    assert_eq!(
        s.enqueued + s.spool_replayed,
        s.delivered + s.undelivered() + s.dropped_oldest + s.spooled
    );
    assert_eq!(s.spool_records, 0);
    assert_eq!(s.spool_bytes, 0);
}

#[test]
fn a_restart_replays_what_the_previous_run_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let down = Backend::default();
    {
        let (layer, guard) = builder(dir.path())
            .with_max_queue_records(1024)
            .build(down.clone())
            .unwrap();
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for id in 0..300_i64 {
            tracing::info!(id, "before the crash");
        }
        let r = guard.shutdown(Duration::from_secs(5));
        let s = r.as_ref().map(|r| r.stats.clone()).unwrap_or_default();
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(s.undelivered(), 0, "spooled, not abandoned: {s:?}");
        assert_eq!(s.spooled, 300);
    }
    let up = Backend::default();
    up.up.store(true, Ordering::SeqCst);
    let (_layer, guard) = builder(dir.path()).build(up.clone()).unwrap();
    assert!(wait(|| up.got.lock().unwrap().len() == 300));
    guard.flush(Duration::from_secs(10)).unwrap();
    let got: Vec<i64> = up.got.lock().unwrap().clone();
    assert_eq!(
        got,
        (0..300).collect::<Vec<_>>(),
        "replayed once each, in order"
    );
    let s = guard.stats();
    assert_eq!(s.spool_replayed, 300);
    assert_eq!(s.spool_records, 0);
}

#[test]
fn a_corrupt_segment_is_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(format!("seg-{:020}.lsp", 1u64 << 40)),
        b"LSPOOL1\n\x05\x00\x00\x00garbage",
    )
    .unwrap();
    let up = Backend::default();
    up.up.store(true, Ordering::SeqCst);
    let (layer, guard) = builder(dir.path()).build(up.clone()).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    tracing::info!(id = 1_i64, "after");
    guard.flush(Duration::from_secs(10)).unwrap();
    let h = guard.handle();
    assert!(wait(|| h.stats().spool_corrupt == 1));
    assert_eq!(*up.got.lock().unwrap(), [1]);
}

#[test]
fn a_segment_replayed_again_and_again_during_an_outage_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::default();
    let (layer, guard) = builder(dir.path())
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(2))
                .with_max_attempts(Some(2)),
        )
        .build(backend.clone())
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for id in 0..50_i64 {
        tracing::info!(id, "during a long outage");
    }
    let h = guard.handle();
    // Many replays of the oldest segment happen while the backend stays down.
    assert!(wait(|| h.stats().requests > 30), "{:?}", h.stats());
    let s = h.stats();
    assert_eq!(s.spooled, 50, "{s:?}");
    assert_eq!(
        s.spool_replayed, 0,
        "counted when resolved, not when read: {s:?}"
    );
    assert_eq!(s.in_flight(), 0, "{s:?}");
    backend.up.store(true, Ordering::SeqCst);
    assert!(wait(|| backend.got.lock().unwrap().len() == 50));
    let s = h.stats();
    assert_eq!(s.spool_replayed, 50);
    assert_eq!(
        s.enqueued + s.spool_replayed,
        s.delivered + s.undelivered() + s.dropped_oldest + s.spooled
    );
}
