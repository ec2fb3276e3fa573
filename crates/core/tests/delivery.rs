//! The delivery pipeline: batching triggers, retry, partial failures, the breaker, the
//! undelivered path, and exact accounting under overload.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_core::testing::{MemorySink, Step};
use logship_core::{
    BreakerConfig, Cause, Outcome, Overflow, PipelineBuilder, Record, RetryPolicy, Value,
};
use tracing::{Level, error, info};
use tracing_subscriber::prelude::*;

const T: Duration = Duration::from_secs(10);

fn quick_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
}

#[test]
fn batches_by_max_records() {
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .with_max_batch_records(10)
        .with_linger(Duration::from_secs(60))
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..30 {
        info!(i, "x");
    }
    // Three full batches go without waiting for the 60 s linger.
    assert!(rx.wait_for(30, T), "got {}", rx.len());
    assert_eq!(rx.batch_sizes(), [10, 10, 10]);
    drop(guard);
}

#[test]
fn linger_sends_a_partial_batch() {
    let (sink, rx) = MemorySink::new();
    let (layer, _guard) = PipelineBuilder::new()
        .with_max_batch_records(1000)
        .with_linger(Duration::from_millis(50))
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("lonely");
    assert!(rx.wait_for(1, T));
    assert_eq!(rx.batch_sizes(), [1]);
}

#[test]
fn flush_level_record_goes_at_once() {
    let (sink, rx) = MemorySink::new();
    let (layer, _guard) = PipelineBuilder::new()
        .with_linger(Duration::from_secs(60))
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("before");
    error!("boom");
    assert!(
        rx.wait_for(2, T),
        "the ERROR flushes its batch without waiting for the linger"
    );
    assert_eq!(rx.batch_sizes(), [2]);
}

#[test]
fn retry_then_deliver_in_order() {
    let (sink, rx) = MemorySink::scripted([
        Step::Answer(Outcome::retry("connection refused")),
        Step::Answer(Outcome::Retry {
            after: Some(Duration::from_millis(5)),
            reason: "429".into(),
        }),
    ]);
    let (layer, guard) = PipelineBuilder::new()
        .with_retry(quick_retry())
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..5_i64 {
        info!(i, "x");
    }
    guard.flush(T).unwrap();
    let recs = rx.records();
    let order: Vec<Value> = recs.iter().map(|r| r.field("i").unwrap()).collect();
    assert_eq!(order, (0..5).map(Value::I64).collect::<Vec<_>>());
    let s = guard.stats();
    assert_eq!((s.delivered, s.retries, s.requests), (5, 2, 3));
    assert_eq!(s.last_error.as_deref(), Some("429"));
    assert!(s.last_success.is_some());
}

#[test]
fn partial_failure_retries_only_the_retryable_and_reports_the_rejected() {
    type Seen = Vec<(Cause, Option<String>, usize)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let seen2 = seen.clone();
    let (sink, rx) = MemorySink::scripted([Step::Answer(Outcome::Partial {
        retry: vec![1, 3],
        rejected: vec![(2, "mapper_parsing_exception".into())],
        after: None,
        reason: "http 429".into(),
    })]);
    let (layer, guard) = PipelineBuilder::new()
        .with_retry(quick_retry())
        .with_undelivered_callback(move |u| {
            seen2
                .lock()
                .unwrap()
                .push((u.cause, u.reason.clone(), u.records.len()))
        })
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..5_i64 {
        info!(i, "x");
    }
    guard.flush(T).unwrap();
    let recs = rx.records();
    let got: Vec<Value> = recs.iter().map(|r| r.field("i").unwrap()).collect();
    assert_eq!(
        got,
        [Value::I64(0), Value::I64(4), Value::I64(1), Value::I64(3)]
    );
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_rejected, s.retries), (4, 1, 1));
    assert_eq!(
        *seen.lock().unwrap(),
        [(
            Cause::Rejected,
            Some("mapper_parsing_exception".to_string()),
            1
        )]
    );
}

#[test]
fn rejected_and_exhausted_go_to_callback_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Arc<Mutex<Vec<Cause>>> = Arc::default();
    let p2 = payloads.clone();
    let (sink, _rx) = MemorySink::scripted([
        Step::Answer(Outcome::rejected("400 bad request")),
        Step::Answer(Outcome::retry("down")),
        Step::Answer(Outcome::retry("down")),
    ]);
    let (layer, guard) = PipelineBuilder::new()
        .with_retry(quick_retry().with_max_attempts(Some(2)))
        .with_max_batch_records(1)
        .with_dead_letter_dir(dir.path())
        .with_undelivered_callback(move |u| p2.lock().unwrap().push(u.cause))
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("first");
    info!("second");
    info!("third");
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert_eq!(
        (
            s.undelivered_rejected,
            s.undelivered_retries_exhausted,
            s.delivered
        ),
        (1, 1, 1)
    );
    assert_eq!(
        *payloads.lock().unwrap(),
        [Cause::Rejected, Cause::RetriesExhausted]
    );
    assert_eq!(s.dead_letter_written, 2);
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        assert!(
            !p.file_name().unwrap().to_string_lossy().contains(':'),
            "portable names"
        );
        lines.extend(
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    assert_eq!(lines.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["message"], "first");
    assert_eq!(first["undelivered"]["cause"], "rejected");
    assert_eq!(first["undelivered"]["reason"], "400 bad request");
}

#[test]
fn breaker_opens_after_consecutive_failures_and_closes_on_success() {
    let fails = (0..4).map(|_| Step::Answer(Outcome::retry("refused")));
    let (sink, rx) = MemorySink::scripted(fails);
    let (layer, guard) = PipelineBuilder::new()
        .with_retry(quick_retry().with_max_attempts(None))
        .with_breaker(
            BreakerConfig::default()
                .with_failure_threshold(3)
                .with_open_duration(Duration::from_millis(50), Duration::from_millis(100)),
        )
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!("x");
    let handle = guard.handle();
    assert!(
        logship_testkit_free_wait(|| handle.stats().breaker_open),
        "breaker opens after 3 failures"
    );
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert_eq!(s.delivered, 1);
    assert!(!s.breaker_open);
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(rx.sends(), 5);
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
fn overload_accounting_is_exact() {
    // A sink that stalls makes the queue overflow; every record is enqueued or dropped, and
    // once flushed, every enqueued record is delivered.
    let (sink, rx) = MemorySink::scripted([Step::Delay(Duration::from_millis(200))]);
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(100)
        .with_max_batch_records(50)
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let emitted = 5_000u64;
    for i in 0..emitted {
        info!(i, "burst");
    }
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert_eq!(s.enqueued + s.dropped_at_enqueue(), emitted, "{s:?}");
    assert!(s.dropped_queue_full > 0);
    assert_eq!(s.delivered, s.enqueued);
    assert_eq!(rx.len() as u64, s.delivered);
    assert_eq!(s.queue_len, 0);
    assert_eq!(s.queue_bytes, 0);
}

#[test]
fn drop_oldest_keeps_the_newest_and_counts_evictions() {
    let (sink, rx) = MemorySink::scripted([Step::Delay(Duration::from_millis(200))]);
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(10)
        .with_max_batch_records(1)
        .with_reserved(Level::ERROR, 0)
        .with_overflow(Overflow::DropOldest)
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    info!(i = 0_i64, "first (taken by the worker, stalls in the sink)");
    assert!(logship_testkit_free_wait(|| rx.sends() == 1));
    for i in 1..=100_i64 {
        info!(i, "x");
    }
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert_eq!(s.enqueued, 101);
    assert_eq!(s.dropped_oldest, 90);
    assert_eq!(s.delivered, 11);
    let recs = rx.records();
    let last: Vec<Value> = recs.iter().skip(1).map(|r| r.field("i").unwrap()).collect();
    assert_eq!(last, (91..=100).map(Value::I64).collect::<Vec<_>>());
}

#[test]
fn overflow_drops_reach_the_callback_from_the_worker_thread() {
    let threads: Arc<Mutex<Vec<String>>> = Arc::default();
    let t2 = threads.clone();
    let (sink, _rx) = MemorySink::scripted([Step::Delay(Duration::from_millis(100))]);
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(5)
        .with_max_batch_records(5)
        .with_undelivered_callback(move |u| {
            if u.cause == Cause::QueueFull {
                t2.lock()
                    .unwrap()
                    .push(std::thread::current().name().unwrap_or("").to_string());
            }
        })
        .build(sink)
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for _ in 0..50 {
        info!("x");
    }
    guard.flush(T).unwrap();
    let s = guard.stats();
    assert!(s.dropped_queue_full > 0);
    let names = threads.lock().unwrap().clone();
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n == "logship-memory"), "{names:?}");
}

#[test]
fn submit_records_built_without_tracing() {
    let (sink, rx) = MemorySink::new();
    let (_layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    let start = std::time::SystemTime::now();
    guard
        .handle()
        .submit(Record::span_timing("db.query", start, Duration::from_millis(12)).build());
    guard.handle().submit(
        Record::event(Level::WARN, "manual")
            .with_message("hi")
            .with_correlator("c1")
            .build(),
    );
    guard.flush(T).unwrap();
    let recs = rx.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0].timing().unwrap().duration,
        Duration::from_millis(12)
    );
    assert_eq!(recs[1].correlators(), ["c1"]);
}

#[test]
fn bad_config_fails_at_build_with_a_message_that_says_what_to_fix() {
    let e = PipelineBuilder::new()
        .with_max_batch_records(0)
        .build(MemorySink::new().0)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "`with_max_batch_records` must be at least 1 (got 0)"
    );
    let e = PipelineBuilder::new()
        .with_max_queue_records(10)
        .with_max_batch_records(100)
        .build(MemorySink::new().0)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("lower the batch size or raise the queue size"),
        "{e}"
    );
    let e = PipelineBuilder::new()
        .with_default_source_fqn("APPL=a#BOGUS=b")
        .build(MemorySink::new().0)
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid default source FQN");
    let src = std::error::Error::source(&e).unwrap().to_string();
    assert!(src.contains("unknown type `BOGUS`"), "{src}");
}
