//! Shutdown and flush: bounded, never hanging, safe under every runtime flavour.

use std::time::{Duration, Instant};

use logship_core::testing::{MemorySink, Step};
use logship_core::{FlushError, PipelineBuilder, RetryPolicy};
use tracing::info;
use tracing_subscriber::prelude::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn drop_flushes_the_tail() {
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .with_linger(Duration::from_secs(60))
        .build(sink)
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..100 {
            info!(i, "tail");
        }
    }
    drop(guard);
    assert_eq!(rx.len(), 100, "dropping the guard delivers what was queued");
}

#[test]
fn shutdown_with_a_dead_sink_returns_within_its_timeout_and_counts_the_rest() {
    let (sink, _rx) = MemorySink::scripted((0..1000).map(|_| Step::Hang));
    let (layer, guard) = PipelineBuilder::new()
        .with_send_timeout(Duration::from_secs(30))
        .with_retry(RetryPolicy::default().with_max_attempts(None))
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for _ in 0..10 {
        info!("x");
    }
    let handle = guard.handle();
    // Let the send start (and hang) before shutting down: shutdown must interrupt it.
    assert!(logship_testkit_free_wait(
        || handle.stats().requests == 0 && handle.stats().queue_len == 0
    ));
    let t0 = Instant::now();
    let r = guard.shutdown(Duration::from_millis(300));
    let took = t0.elapsed();
    // A hang would be the send timeout (30 s); the bound only has to catch that.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    match r {
        Err(FlushError::Timeout { remaining, .. }) => assert_eq!(remaining, 10),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let s = handle.stats();
    assert_eq!(
        s.undelivered_shutdown, 10,
        "counted before shutdown returned: {s:?}"
    );
    assert_eq!(s.in_flight(), 0);
}

fn logship_testkit_free_wait(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + T;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn drop_with_a_dead_sink_does_not_hang() {
    let (sink, _rx) = MemorySink::scripted((0..1000).map(|_| Step::Hang));
    let (layer, guard) = PipelineBuilder::new()
        .with_shutdown_timeout(Duration::from_millis(200))
        .build(sink)
        .unwrap();
    let handle = guard.handle();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("x");
    let t0 = Instant::now();
    drop(guard);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "a hang would be the 30 s send timeout"
    );
    let s = handle.stats();
    assert_eq!(s.undelivered_shutdown, 1, "{s:?}");
    info!("after shutdown");
    assert_eq!(handle.stats().dropped_closed, 1);
    assert_eq!(handle.flush(T), Err(FlushError::AlreadyShutdown));
}

#[test]
fn flush_timeout_leaves_records_queued_for_later() {
    let (sink, rx) = MemorySink::scripted([Step::Delay(Duration::from_millis(400))]);
    let (layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("slow");
    let r = guard.flush(Duration::from_millis(50));
    assert!(matches!(r, Err(FlushError::Timeout { .. })), "{r:?}");
    guard.flush(T).unwrap();
    assert_eq!(rx.len(), 1, "the interrupted send is retried, nothing lost");
}

fn emit_and_flush_blocking() {
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("from a runtime");
    guard.flush(T).unwrap();
    assert_eq!(rx.len(), 1);
    drop(guard);
}

#[test]
fn works_without_a_runtime() {
    emit_and_flush_blocking();
}

#[test]
fn build_flush_and_drop_inside_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        emit_and_flush_blocking();
        let (sink, rx) = MemorySink::new();
        let (layer, guard) = PipelineBuilder::new().build(sink).unwrap();
        let _d = tracing_subscriber::registry().with(layer).set_default();
        info!("async flush");
        guard.flush_async(T).await.unwrap();
        assert_eq!(rx.len(), 1);
        guard.shutdown_async(T).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_flush_and_drop_inside_a_multi_thread_runtime() {
    emit_and_flush_blocking();
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("async flush");
    guard.flush_async(T).await.unwrap();
    assert_eq!(rx.len(), 1);
    drop(guard); // a blocking drop inside async code: bounded, no panic
}

#[test]
fn a_panicking_sink_is_contained() {
    struct Bad;
    impl logship_core::Sink for Bad {
        fn name(&self) -> &'static str {
            "bad"
        }
        async fn send(
            &mut self,
            _: &logship_core::Batch,
            _: &mut logship_core::SendContext,
        ) -> logship_core::Outcome {
            panic!("encoder bug")
        }
    }
    let (layer, guard) = PipelineBuilder::new().build(Bad).unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("x");
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert_eq!(s.undelivered_rejected, 1);
    assert!(s.last_error.unwrap().contains("encoder bug"));
}
