//! Loss you can see without asking: the worker's own `tracing` events under the target
//! `logship` reach the application's other layers (never logship's own), and a shutdown that
//! lost records, or a record emitted after shutdown, prints one line on standard error.
//!
//! One test per binary section: the first installs a global subscriber (the worker thread
//! emits to the global default), the others run this binary again as a child to read its
//! standard error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_core::testing::{MemorySink, Step};
use logship_core::{BreakerConfig, Level, Outcome, PipelineBuilder, Record, RetryPolicy, diag};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<(String, String, String)>>>);

struct Fields(String, String);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.1.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.1.push_str(&format!("{}={} ", field.name(), value));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Collected {
    fn on_event(&self, event: &tracing::Event<'_>, _cx: Context<'_, S>) {
        let mut f = Fields(String::new(), String::new());
        event.record(&mut f);
        if let Ok(mut v) = self.0.lock() {
            v.push((event.metadata().target().to_string(), f.0, f.1));
        }
    }
}

impl Collected {
    fn has(&self, message: &str, fields: &str) -> bool {
        self.0
            .lock()
            .map(|v| {
                v.iter()
                    .any(|(t, m, f)| t == diag::TARGET && m.contains(message) && f.contains(fields))
            })
            .unwrap_or(false)
    }
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn breaker_and_losses_are_reported_to_the_applications_layers_and_never_shipped() {
    if std::env::var_os("LOGSHIP_DIAG_CHILD").is_some() {
        return child();
    }
    let seen = Collected::default();
    // Every send fails; the breaker opens after 2 failures; a tiny queue overflows.
    let (sink, received) =
        MemorySink::scripted((0..10_000).map(|_| Step::Answer(Outcome::retry("backend down"))));
    let (layer, guard) = PipelineBuilder::new()
        .with_max_queue_records(10)
        .with_max_batch_records(5)
        .with_linger(Duration::from_millis(10))
        .with_loss_summary(false)
        .with_breaker(
            BreakerConfig::default()
                .with_failure_threshold(2)
                .with_open_duration(Duration::from_secs(10), Duration::from_secs(10)),
        )
        .with_retry(
            RetryPolicy::default()
                .with_max_attempts(None)
                .with_max_elapsed(None),
        )
        .build(sink)
        .unwrap();
    tracing_subscriber::registry()
        .with(layer)
        .with(seen.clone())
        .init();
    for i in 0..200 {
        tracing::info!(i, "application event");
        if i % 20 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(
        wait_until(|| seen.has("circuit breaker opened", "backend=memory")),
        "breaker event"
    );
    assert!(
        wait_until(|| seen.has("records lost", "cause=queue_full")),
        "first-loss event"
    );
    assert!(seen.has("circuit breaker opened", "last_error=backend down"));
    // logship never shipped its own diagnostics: everything it holds or lost is the 200
    // application events.
    let s = guard.stats();
    assert_eq!(s.emitted(), 200, "{s:?}");
    assert!(received.is_empty());
}

/// The child: a guard dropped at once, then an event; and a pipeline that loses records.
fn child() {
    let mode = std::env::var("LOGSHIP_DIAG_CHILD").unwrap_or_default();
    if mode == "dropped-guard" {
        let (sink, _rx) = MemorySink::new();
        let (layer, _) = PipelineBuilder::new().build(sink).unwrap();
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("lost");
        tracing::info!("lost again");
    } else {
        let (sink, _rx) = MemorySink::scripted([Step::Answer(Outcome::rejected("no such index"))]);
        let (_layer, guard) = PipelineBuilder::new().build(sink).unwrap();
        for _ in 0..3 {
            guard
                .handle()
                .submit(Record::event(Level::INFO, "t").with_message("x").build());
        }
        let _ = guard.shutdown(Duration::from_secs(10));
    }
}

fn child_stderr(mode: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "breaker_and_losses_are_reported_to_the_applications_layers_and_never_shipped",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("LOGSHIP_DIAG_CHILD", mode)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_guard_dropped_at_once_says_so_on_stderr_once() {
    if std::env::var_os("LOGSHIP_DIAG_CHILD").is_some() {
        return;
    }
    let err = child_stderr("dropped-guard");
    assert_eq!(
        err.matches("was its Guard dropped early?").count(),
        1,
        "stderr: {err}"
    );
}

#[test]
fn a_shutdown_that_lost_records_prints_one_summary_line() {
    if std::env::var_os("LOGSHIP_DIAG_CHILD").is_some() {
        return;
    }
    let err = child_stderr("lossy");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("logship: the `memory` pipeline lost"))
        .collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(
        lines[0].contains("lost 3 of 3 records (rejected=3)"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("last error: no such index"),
        "{}",
        lines[0]
    );
}
