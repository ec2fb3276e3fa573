//! The caller's path allocates at most about once per typical event: the record's text buffer
//! (recycled from the worker in a steady stream, so usually not even that) and the queue's
//! blocks, amortised over 31 records. Counted with
//! `allocation-counter`, which counts only on the measuring thread, so the worker's own
//! allocations are not included.

use std::time::Duration;

use logship_core::testing::{MemorySink, NullSink};
use logship_core::{
    Batch, BreakerConfig, Outcome, PipelineBuilder, RetryPolicy, SendContext, Sink,
};
use tracing_subscriber::prelude::*;

fn event() {
    tracing::info!(
        user = "ann",
        order_id = 42_u64,
        total = 99.5,
        express = true,
        items = 3_i64,
        "order placed"
    );
}

#[test]
fn at_most_one_allocation_per_typical_event() {
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let span = tracing::info_span!("request", correlator = "r-1");
    let _e = span.enter();
    // Warm up: thread-locals, callsite registration, the first queue block.
    for _ in 0..100 {
        event();
    }
    let n = 3_000u64;
    let info = allocation_counter::measure(|| {
        for _ in 0..n {
            event();
        }
    });
    drop(_e);
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.len() as u64, n + 100);
    let per_event = info.count_total as f64 / n as f64;
    assert!(
        per_event <= 1.1,
        "{} allocations for {n} events ({per_event:.3} per event)",
        info.count_total
    );
    eprintln!("{per_event:.3} allocations per event");
    // The counter does count on this thread (guards against a vacuous pass).
    let probe = allocation_counter::measure(|| drop(std::hint::black_box(vec![0u8; 64])));
    assert_eq!(probe.count_total, 1);
}

/// An `#[instrument]`-shaped span (new, enter, exit, close, with span timings on) allocates
/// once on the caller once the pools are warm: the registry's box for logship's per-span state.
/// The span context is filled in place in one the worker recycled, and the timing record comes
/// from the record pool (before: a fresh `Arc<SpanContext>` per span, freed on the worker).
#[test]
fn a_span_lifecycle_allocates_only_the_registry_extension() {
    // A sink that lets the worker recycle what it sent (a `MemorySink` keeps every record).
    let (layer, guard) = PipelineBuilder::new().build(NullSink).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let span = || tracing::info_span!("work", items = 3_i64).in_scope(|| ());
    // Warm up the pools: spans, then let the worker recycle their records and contexts.
    for _ in 0..200 {
        span();
    }
    guard.flush(Duration::from_secs(10)).unwrap();
    let n = 100u64;
    let info = allocation_counter::measure(|| {
        for _ in 0..n {
            span();
        }
    });
    guard.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(guard.stats().delivered, n + 200);
    let per_span = info.count_total as f64 / n as f64;
    eprintln!("{per_span:.3} allocations per span");
    assert!(
        per_span <= 1.05,
        "{} allocations for {n} spans ({per_span:.3} per span)",
        info.count_total
    );
}

/// A backend that is down: every send fails with a transient error.
struct Down;

impl Sink for Down {
    fn name(&self) -> &'static str {
        "down"
    }
    async fn send(&mut self, _: &Batch, _: &mut SendContext) -> Outcome {
        Outcome::retry("connection refused")
    }
}

/// Backend down, queue full: an event the queue has no room for costs no allocation (and no
/// capture) on the caller. Before: the pool was dry while the worker held a batch for retry
/// and the queue was full, so the caller allocated a record to capture into, only for it to
/// be dropped.
#[test]
fn backend_down_queue_full_costs_no_allocation() {
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(64)
        .with_max_batch_records(16)
        // The first failed batch waits a minute: the queue stays full for the whole test.
        .with_retry(RetryPolicy::default().with_initial_delay(Duration::from_secs(60)))
        .with_loss_summary(false)
        .build(Down)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    // Fill the queue (and the worker's batch), until events are dropped.
    let mut i = 0;
    while guard.stats().dropped_queue_full == 0 {
        event();
        i += 1;
        assert!(i < 100_000, "the queue never filled");
        if i % 64 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let before = guard.stats();
    let n = 1_000u64;
    let info = allocation_counter::measure(|| {
        for _ in 0..n {
            event();
        }
    });
    let after = guard.stats();
    // Every one of them was dropped, and counted.
    assert_eq!(after.dropped_queue_full - before.dropped_queue_full, n);
    assert_eq!(after.enqueued, before.enqueued);
    assert_eq!(
        info.count_total, 0,
        "{} allocations for {n} events dropped on a full queue",
        info.count_total
    );
}

/// Backend down, paced: the worker gives up on each batch (no retries) and the records it
/// resolves go back to the pool, so the caller's next burst allocates nothing. Before: the
/// worker freed every record it gave up on, and each burst allocated its records afresh.
#[test]
fn records_given_up_on_return_to_the_pool() {
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(256)
        .with_max_batch_records(64)
        .with_retry(RetryPolicy::never())
        .with_breaker(BreakerConfig::disabled())
        .with_loss_summary(false)
        .build(Down)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let burst = 20u64;
    let mut measured = 0u64;
    for round in 0..40 {
        let info = allocation_counter::measure(|| {
            for _ in 0..burst {
                event();
            }
        });
        // Paced: the worker resolves the burst before the next one (a flush waits for it).
        guard.flush(Duration::from_secs(10)).unwrap();
        if round >= 10 {
            measured += info.count_total;
        }
    }
    let st = guard.stats();
    assert_eq!(st.dropped(), 0, "paced: nothing dropped on the caller");
    assert_eq!(
        st.undelivered_retries_exhausted + st.undelivered_rejected,
        40 * burst
    );
    assert_eq!(
        measured,
        0,
        "{measured} allocations for {} events given up on",
        30 * burst
    );
}
