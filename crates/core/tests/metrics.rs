//! The `metrics` feature: every counter a pipeline publishes through the `metrics` facade
//! equals its `Stats` field once the pipeline has shut down, gauges follow the pipeline while it
//! runs (published from the worker, even during a long send) and are withdrawn at shutdown.
//!
//! The recorder is this file's own (a map of atomics), installed once as the global recorder:
//! the worker publishes from its own thread, so a thread-local recorder would see nothing. Each
//! test uses its own backend name, so the tests can share the recorder.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use logship_core::testing::{Fate, MemorySink, Received, Step};
use logship_core::{
    Batch, BreakerConfig, Outcome, PipelineBuilder, RetryPolicy, SendContext, Sink, Stats,
};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tracing_subscriber::prelude::*;

/// A series: name and sorted labels.
type Series = (String, Vec<(String, String)>);

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        if let Ok(mut v) = self.0.lock() {
            v.push(value);
        }
    }
}

#[derive(Default)]
struct Store {
    counters: Mutex<BTreeMap<Series, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<Series, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<Series, Arc<Samples>>>,
    described: Mutex<Vec<String>>,
}

fn series(key: &Key) -> Series {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_string(), l.value().to_string()))
        .collect();
    labels.sort();
    (key.name().to_string(), labels)
}

struct TestRecorder(Arc<Store>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.0.described.lock().unwrap().push(key.as_str().into());
    }
    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.0.described.lock().unwrap().push(key.as_str().into());
    }
    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
        self.0.described.lock().unwrap().push(key.as_str().into());
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut c = self.0.counters.lock().unwrap();
        Counter::from_arc(c.entry(series(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut g = self.0.gauges.lock().unwrap();
        Gauge::from_arc(g.entry(series(key)).or_default().clone())
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut h = self.0.histograms.lock().unwrap();
        Histogram::from_arc(h.entry(series(key)).or_default().clone())
    }
}

fn store() -> &'static Arc<Store> {
    static STORE: OnceLock<Arc<Store>> = OnceLock::new();
    STORE.get_or_init(|| {
        let s = Arc::new(Store::default());
        metrics::set_global_recorder(TestRecorder(s.clone()))
            .expect("no other recorder in this test binary");
        s
    })
}

fn key(name: &str, backend: &str, label: Option<(&str, &str)>) -> Series {
    let mut labels = vec![("backend".to_string(), backend.to_string())];
    if let Some((k, v)) = label {
        labels.push((k.into(), v.into()));
    }
    labels.sort();
    (name.into(), labels)
}

/// A counter's value; `None` when the series was never registered.
fn counter(name: &str, backend: &str, label: Option<(&str, &str)>) -> Option<u64> {
    let c = store().counters.lock().unwrap();
    c.get(&key(name, backend, label))
        .map(|a| a.load(Ordering::Acquire))
}

fn gauge(name: &str, backend: &str) -> Option<f64> {
    let g = store().gauges.lock().unwrap();
    g.get(&key(name, backend, None))
        .map(|a| f64::from_bits(a.load(Ordering::Acquire)))
}

/// Sum of a counter over every series of `backend`.
fn counter_sum(name: &str, backend: &str) -> u64 {
    let c = store().counters.lock().unwrap();
    c.iter()
        .filter(|((n, l), _)| n == name && l.contains(&("backend".into(), backend.into())))
        .map(|(_, a)| a.load(Ordering::Acquire))
        .sum()
}

fn histogram_count(name: &str, backend: &str) -> usize {
    let h = store().histograms.lock().unwrap();
    h.iter()
        .filter(|((n, l), _)| n == name && l.contains(&("backend".into(), backend.into())))
        .map(|(_, s)| s.0.lock().unwrap().len())
        .sum()
}

/// A `MemorySink` under another name (the `backend` label), so the tests' series do not mix.
struct Named(MemorySink, &'static str);

impl Sink for Named {
    fn name(&self) -> &'static str {
        self.1
    }
    fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> impl Future<Output = Outcome> {
        self.0.send(batch, cx)
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_for_send(received: &Received, n: u64) {
    wait_until("the sink's send", || received.sends() >= n);
}

/// A series' label besides `backend`.
type SeriesLabel = (&'static str, &'static str);

/// (metric, label, the `Stats` field it mirrors): written out here, independently of the
/// crate's own table, so that a wrong name or label there fails this test.
fn expected_counters(s: &Stats) -> Vec<(&'static str, Option<SeriesLabel>, u64)> {
    vec![
        ("logship_records_enqueued_total", None, s.enqueued),
        (
            "logship_records_total",
            Some(("outcome", "delivered")),
            s.delivered,
        ),
        (
            "logship_records_total",
            Some(("outcome", "undelivered")),
            s.undelivered(),
        ),
        (
            "logship_records_total",
            Some(("outcome", "dropped")),
            s.dropped(),
        ),
        (
            "logship_dropped_total",
            Some(("cause", "queue_full")),
            s.dropped_queue_full,
        ),
        (
            "logship_dropped_total",
            Some(("cause", "evicted")),
            s.dropped_oldest,
        ),
        (
            "logship_dropped_total",
            Some(("cause", "block_timeout")),
            s.dropped_block_timeout,
        ),
        (
            "logship_dropped_total",
            Some(("cause", "closed")),
            s.dropped_closed,
        ),
        (
            "logship_dropped_unreported_total",
            None,
            s.dropped_unreported,
        ),
        (
            "logship_undelivered_total",
            Some(("cause", "rejected")),
            s.undelivered_rejected,
        ),
        (
            "logship_undelivered_total",
            Some(("cause", "retries_exhausted")),
            s.undelivered_retries_exhausted,
        ),
        (
            "logship_undelivered_total",
            Some(("cause", "shutdown_timeout")),
            s.undelivered_shutdown,
        ),
        (
            "logship_undelivered_total",
            Some(("cause", "worker_panicked")),
            s.undelivered_worker_panicked,
        ),
        ("logship_duplicates_total", None, s.duplicates),
        ("logship_retries_total", None, s.retries),
        (
            "logship_certificate_failures_total",
            None,
            s.certificate_failures,
        ),
        ("logship_batches_delivered_total", None, s.batches_delivered),
        ("logship_sent_bytes_total", None, s.bytes_sent),
        ("logship_invalid_fields_total", None, s.invalid_fields),
        (
            "logship_dead_letter_records_total",
            Some(("outcome", "written")),
            s.dead_letter_written,
        ),
        (
            "logship_dead_letter_records_total",
            Some(("outcome", "failed")),
            s.dead_letter_failed,
        ),
        (
            "logship_dead_letter_write_errors_total",
            None,
            s.dead_letter_write_errors,
        ),
        ("logship_callback_panics_total", None, s.callback_panics),
        ("logship_spooled_total", None, s.spooled),
        ("logship_spool_replayed_total", None, s.spool_replayed),
        ("logship_spool_evicted_total", None, s.spool_evicted),
        (
            "logship_spool_corrupt_segments_total",
            None,
            s.spool_corrupt,
        ),
        (
            "logship_spool_corrupt_records_total",
            None,
            s.spool_corrupt_records,
        ),
        (
            "logship_spool_write_errors_total",
            None,
            s.spool_write_errors,
        ),
    ]
}

const GAUGES: [&str; 6] = [
    "logship_queue_records",
    "logship_queue_bytes",
    "logship_spool_records",
    "logship_spool_bytes",
    "logship_breaker_open",
    "logship_consecutive_failures",
];

/// Drops (full queue), a send timeout, a retry, retries running out, rejections and partial
/// answers; after shutdown every published counter equals its `Stats` field.
#[test]
fn published_counters_equal_stats_after_a_faulty_run() {
    const BACKEND: &str = "metrics-faulty";
    let _ = store();
    let (sink, received) = MemorySink::scripted([
        // Batch 1 hangs until the send timeout (outcome "timeout"), the queue fills meanwhile.
        Step::Hang,
        // Its retry fails again: with at most 2 attempts, it is given up (retries_exhausted).
        Step::Answer(Outcome::retry("try later")),
        // Then every other record is rejected, then every other one is retried (partial).
        Step::Split(vec![Fate::Deliver, Fate::Reject]),
        Step::Split(vec![Fate::Deliver, Fate::Retry]),
    ]);
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(8)
        .with_max_batch_records(4)
        .with_linger(Duration::from_millis(20))
        .with_send_timeout(Duration::from_millis(500))
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(5))
                .with_max_attempts(Some(2)),
        )
        // Two failures in a row open the breaker (a short cool-down).
        .with_breaker(
            BreakerConfig::default()
                .with_failure_threshold(2)
                .with_open_duration(Duration::from_millis(10), Duration::from_millis(20)),
        )
        .with_loss_summary(false)
        .build(Named(sink, BACKEND))
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(n = 0_u64, "first");
        wait_for_send(&received, 1);
        // The worker is inside the hanging send: 8 of these are queued, the rest dropped.
        for n in 1..=100_u64 {
            tracing::info!(n, "burst");
        }
    }
    let report = guard.shutdown(Duration::from_secs(30)).unwrap();
    let s = report.stats;

    // The run did what it says (otherwise the equalities below prove little).
    assert!(s.dropped_queue_full > 0, "{s:?}");
    assert!(s.undelivered_rejected > 0, "{s:?}");
    assert_eq!(s.undelivered_retries_exhausted, 1, "{s:?}");
    assert!(s.retries > 0, "{s:?}");
    assert!(s.delivered > 0, "{s:?}");
    assert_eq!(s.emitted(), 101);

    for (name, label, want) in expected_counters(&s) {
        assert_eq!(
            counter(name, BACKEND, label),
            Some(want),
            "{name} {label:?} (Stats: {s:?})"
        );
    }
    // Every send attempt is counted once, with its outcome, and timed once.
    assert_eq!(counter_sum("logship_requests_total", BACKEND), s.requests);
    assert_eq!(
        histogram_count("logship_request_duration_seconds", BACKEND) as u64,
        s.requests
    );
    let outcome = |o| counter("logship_requests_total", BACKEND, Some(("outcome", o)));
    assert_eq!(outcome("timeout"), Some(1));
    assert_eq!(outcome("retry"), Some(1));
    assert!(outcome("partial") >= Some(2));
    assert!(outcome("delivered") >= Some(1));
    // A pipeline that has shut down contributes nothing to the gauges, but they exist.
    for g in GAUGES {
        assert_eq!(gauge(g, BACKEND), Some(0.0), "{g}");
    }
    assert!(
        gauge("logship_last_success_timestamp_seconds", BACKEND).is_some_and(|t| t > 1.6e9),
        "last success as Unix seconds"
    );
    let described = store().described.lock().unwrap().clone();
    for name in [
        "logship_records_total",
        "logship_queue_records",
        "logship_request_duration_seconds",
    ] {
        assert!(described.iter().any(|d| d == name), "{name} described");
    }
}

/// While a send hangs, the worker still publishes the queue gauges (at its stall checks);
/// shutdown withdraws them and counts the abandoned records.
#[test]
fn gauges_follow_the_queue_during_a_hanging_send() {
    const BACKEND: &str = "metrics-hanging";
    let _ = store();
    let (sink, received) = MemorySink::scripted([Step::Hang]);
    let (layer, guard) = PipelineBuilder::new()
        .with_linger(Duration::from_millis(20))
        .with_send_timeout(Duration::from_secs(120))
        .with_stall_threshold(Duration::from_millis(50))
        .with_loss_summary(false)
        .build(Named(sink, BACKEND))
        .unwrap();
    let handle = guard.handle();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("first");
        wait_for_send(&received, 1);
        for n in 0..5_u64 {
            tracing::info!(n, "queued behind the hanging send");
        }
    }
    assert_eq!(handle.stats().queue_len, 5);
    let bytes = handle.stats().queue_bytes as f64;
    wait_until("the queue gauges", || {
        gauge("logship_queue_records", BACKEND) == Some(5.0)
            && gauge("logship_queue_bytes", BACKEND) == Some(bytes)
    });
    assert_eq!(
        counter("logship_records_enqueued_total", BACKEND, None),
        Some(6)
    );

    let _ = guard.shutdown(Duration::from_millis(300));
    let s = handle.stats();
    assert_eq!(s.undelivered_shutdown, 6, "{s:?}");
    assert_eq!(
        counter(
            "logship_undelivered_total",
            BACKEND,
            Some(("cause", "shutdown_timeout"))
        ),
        Some(6)
    );
    assert_eq!(
        counter(
            "logship_requests_total",
            BACKEND,
            Some(("outcome", "timeout"))
        ),
        Some(1),
        "a send cut short by shutdown counts as timed out"
    );
    for g in GAUGES {
        assert_eq!(gauge(g, BACKEND), Some(0.0), "{g}");
    }
}

/// Two pipelines of one backend publish into the same series, and their counts add up
/// (counters are published as increments, gauges as differences).
#[test]
fn pipelines_of_one_backend_add_up() {
    const BACKEND: &str = "metrics-pair";
    let _ = store();
    let mut handles = Vec::new();
    let mut guards = Vec::new();
    for n in [3_u64, 5] {
        let (sink, received) = MemorySink::new();
        let (layer, guard) = PipelineBuilder::new()
            .with_loss_summary(false)
            .build(Named(sink, BACKEND))
            .unwrap();
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n {
            tracing::info!(i, "one of a pair");
        }
        guard.flush(Duration::from_secs(10)).unwrap();
        assert_eq!(received.len() as u64, n);
        handles.push(guard.handle());
        guards.push(guard);
    }
    for g in guards {
        g.shutdown(Duration::from_secs(10)).unwrap();
    }
    let delivered: u64 = handles.iter().map(|h| h.stats().delivered).sum();
    assert_eq!(delivered, 8);
    assert_eq!(
        counter(
            "logship_records_total",
            BACKEND,
            Some(("outcome", "delivered"))
        ),
        Some(8)
    );
    assert_eq!(
        counter("logship_records_enqueued_total", BACKEND, None),
        Some(8)
    );
    assert_eq!(
        counter_sum("logship_requests_total", BACKEND),
        handles.iter().map(|h| h.stats().requests).sum::<u64>()
    );
    for g in GAUGES {
        assert_eq!(gauge(g, BACKEND), Some(0.0), "{g}");
    }
}
