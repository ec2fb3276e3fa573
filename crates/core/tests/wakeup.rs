//! Regression: a full batch counting the records the worker already holds must wake it.
//!
//! Was: once the worker had taken a partial batch out of the queue (records waiting in its
//! `pending` list no longer count in the queue word), the caller nudged it only when the
//! *queue* alone held a full batch. So `pending + queued >= max_batch_records` (or bytes) sat
//! until the linger timer; `delivery::batches_by_max_records` failed once that way (20 of 30
//! delivered). These tests put the worker in that state on purpose, with counts, not timing:
//! a sink holds its first send at a gate while records queue behind it; once the gate opens,
//! the worker takes them as a partial batch (waited for through `Stats`); then the rest of a
//! batch is pushed. The linger is 10 minutes, so only a nudge can send it within the wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logship_core::testing::{MemorySink, Received};
use logship_core::{Batch, Handle, Outcome, PipelineBuilder, SendContext, Sink, Stats};
use tokio::sync::Semaphore;
use tracing::{error, info};
use tracing_subscriber::prelude::*;

/// How long a condition may take to become true: generous, for a loaded machine.
const T: Duration = Duration::from_secs(30);
/// Far beyond `T`: a batch that goes out within `T` went because the worker was nudged.
const LINGER: Duration = Duration::from_secs(600);

/// A [`MemorySink`] whose first send waits until the test opens the gate.
struct GatedSink {
    inner: MemorySink,
    gate: Option<Arc<Semaphore>>,
}

impl Sink for GatedSink {
    fn name(&self) -> &'static str {
        "gated"
    }

    async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
        if let Some(gate) = self.gate.take() {
            // A closed semaphore also lets the send go on; the tests never close it.
            let _ = gate.acquire().await;
        }
        self.inner.send(batch, cx).await
    }
}

/// A pipeline on a [`GatedSink`]: its layer, guard, what it delivered, and the gate.
fn gated(
    builder: PipelineBuilder,
) -> (
    logship_core::ShipLayer,
    logship_core::Guard,
    Received,
    Arc<Semaphore>,
) {
    let (inner, rx) = MemorySink::new();
    let gate = Arc::new(Semaphore::new(0));
    let sink = GatedSink {
        inner,
        gate: Some(gate.clone()),
    };
    let (layer, guard) = builder.with_linger(LINGER).build(sink).unwrap();
    (layer, guard, rx, gate)
}

/// Waits (polling) until `cond` holds on the stats, for at most [`T`]; panics with the last
/// stats and `what` otherwise.
fn wait_stats(handle: &Handle, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
    let end = Instant::now() + T;
    loop {
        let s = handle.stats();
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting until {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Gets the worker into a send held at the gate: an ERROR (the flush level) goes at once.
fn hold_first_send(handle: &Handle) {
    error!("opener");
    wait_stats(handle, "the opener is taken", |s| {
        s.enqueued == 1 && s.queue_len == 0
    });
}

/// Opens the gate and waits until the worker, having delivered the opener, took the `held`
/// records queued meanwhile as a partial batch (out of the queue, not sent).
fn release_and_wait_partial(handle: &Handle, gate: &Semaphore, held: u64) {
    gate.add_permits(1);
    wait_stats(handle, "the worker holds a partial batch", |s| {
        s.delivered == 1 && s.enqueued == 1 + held && s.queue_len == 0
    });
}

#[test]
fn full_batch_counting_held_records_goes_without_linger() {
    const N: u64 = 10;
    let (layer, guard, rx, gate) = gated(PipelineBuilder::new().with_max_batch_records(N as usize));
    let handle = guard.handle();
    let _d = tracing_subscriber::registry().with(layer).set_default();

    hold_first_send(&handle);
    for i in 0..N / 2 {
        info!(i, "held by the worker");
    }
    release_and_wait_partial(&handle, &gate, N / 2);
    // The queue alone now holds half a batch; with what the worker holds, a full one.
    for i in N / 2..N {
        info!(i, "queued");
    }
    assert!(
        rx.wait_for(1 + N as usize, T),
        "the full batch waited for the linger: {} delivered, {:?}",
        rx.len(),
        handle.stats()
    );
    assert_eq!(rx.batch_sizes(), [1, N as usize]);
    assert_eq!(handle.stats().in_flight(), 0);
    drop(guard);
}

#[test]
fn full_batch_by_bytes_counting_held_records_goes_without_linger() {
    // A byte bound far below the record bound: the batch fills by bytes.
    const B: u64 = 16 * 1024;
    let (layer, guard, rx, gate) = gated(
        PipelineBuilder::new()
            .with_max_batch_records(1000)
            .with_max_batch_bytes(B),
    );
    let handle = guard.handle();
    let _d = tracing_subscriber::registry().with(layer).set_default();

    hold_first_send(&handle);
    // The worker is held at the gate, so the queue's bytes are exactly what we pushed. Every
    // record is the same event with a short (inline) message: one estimated size `s`.
    info!(i = 0_u64, "held by the worker");
    let s = handle.stats().queue_bytes;
    assert!(
        s > 0 && s < B / 2,
        "record size {s} bytes: the test needs < {}",
        B / 2
    );
    // Hold at least half the byte bound (but less than all of it: no nudge yet).
    let k = (B / 2).div_ceil(s);
    for i in 1..k {
        info!(i, "held by the worker");
    }
    let held_bytes = handle.stats().queue_bytes;
    assert_eq!(held_bytes, k * s, "records of unequal sizes");
    assert!(held_bytes < B);
    release_and_wait_partial(&handle, &gate, k);
    // Just enough to fill the batch together with what the worker holds; alone, less than
    // half the bound (m * s < B - held + s <= B / 2 + s < B).
    let m = (B - held_bytes).div_ceil(s);
    assert!(m * s < B);
    for i in 0..m {
        info!(i, "queued");
    }
    let want = 1 + (k + m) as usize;
    assert!(
        rx.wait_for(want, T),
        "the full batch (by bytes) waited for the linger: {} of {want} delivered, {:?}",
        rx.len(),
        handle.stats()
    );
    assert_eq!(rx.batch_sizes(), [1, (k + m) as usize]);
    drop(guard);
}

#[test]
fn flush_covers_records_the_worker_holds() {
    const HELD: u64 = 5;
    let (layer, guard, rx, gate) = gated(PipelineBuilder::new().with_max_batch_records(100));
    let handle = guard.handle();
    let _d = tracing_subscriber::registry().with(layer).set_default();

    hold_first_send(&handle);
    for i in 0..HELD {
        info!(i, "held by the worker");
    }
    release_and_wait_partial(&handle, &gate, HELD);
    // Nothing is queued now: the flush's mark must count the records the worker holds.
    let report = handle.flush(T).unwrap();
    assert_eq!(report.stats.delivered, 1 + HELD, "{:?}", report.stats);
    assert_eq!(rx.len() as u64, 1 + HELD);
    assert_eq!(rx.batch_sizes(), [1, HELD as usize]);
    drop(guard);
}
