//! Diagnostics: what a pipeline says about itself, as `tracing` events under the target
//! `logship`.
//!
//! Loss should be visible without polling [`Stats`], the way OpenTelemetry's SDK
//! reports its own export errors through its internal logs. Each layer's worker emits:
//!
//! | when | level | message |
//! |---|---|---|
//! | the circuit breaker opens / closes | WARN / INFO | `circuit breaker opened` / `circuit breaker closed` |
//! | the first record lost to each cause (queue full, evicted, block timeout, rejected by the backend, retries exhausted, spool eviction or corruption, dead-letter failure) | WARN | `records lost`, with `cause` and `count` |
//! | further losses | WARN | at most one `records lost` summary per minute per layer, with the counts by cause since the last one |
//! | a send has not answered within the stall threshold | WARN | `send stalled` (at most once a minute) |
//! | every handle of the pipeline was dropped without a shutdown | WARN | `guard dropped without shutdown` |
//! | a backend's TLS client is built with certificate verification off | WARN | `TLS certificate verification is OFF` ([`insecure_tls`]) |
//!
//! Every event carries `backend` (the sink's name). They are emitted on the worker thread,
//! which logship's own layers never capture (see [`capture::suppress`](crate::capture::suppress)),
//! so they reach the application's other layers (a `fmt` layer shows them) and never feed the
//! pipeline with itself. They go to the global default subscriber (`.init()` or
//! `set_global_default`); a subscriber set only for one thread (`with_default`) does not see
//! them. Filter them like any target: `logship=warn` in an `EnvFilter`.
//!
//! At shutdown, a worker that lost records also prints one summary line on standard error
//! (turn it off with `PipelineBuilder::with_loss_summary(false)`), and a record emitted after
//! its pipeline shut down (a guard dropped too early: `let (layer, _) = …` drops it at once)
//! prints one line on standard error the first time it happens.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::stats::{Counters, Stats};

/// Target of logship's own events.
pub const TARGET: &str = "logship";

/// Shortest time between two summaries of the same kind.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// How often the worker looks at the loss counters.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The loss counters watched, with their cause names.
const CAUSES: [&str; 10] = [
    "queue_full",
    "evicted",
    "block_timeout",
    "rejected",
    "retries_exhausted",
    "worker_panicked",
    "spool_evicted",
    "spool_corrupt",
    "dead_letter_failed",
    "unreported",
];

fn losses(c: &Counters) -> [u64; 10] {
    [
        c.dropped_queue_full.load(Relaxed),
        c.dropped_oldest.load(Relaxed),
        c.dropped_block_timeout.load(Relaxed),
        c.undelivered_rejected.load(Relaxed),
        c.undelivered_retries_exhausted.load(Relaxed),
        c.undelivered_worker_panicked.load(Relaxed),
        c.spool_evicted.load(Relaxed),
        c.spool_corrupt.load(Relaxed),
        c.dead_letter_failed.load(Relaxed),
        c.dropped_unreported.load(Relaxed),
    ]
}

pub(crate) struct Diag {
    backend: &'static str,
    next_check: Instant,
    seen: [u64; 10],
    since: [u64; 10],
    reported_once: [bool; 10],
    next_summary: Instant,
    next_stall: Instant,
    breaker_open: bool,
}

impl Diag {
    pub(crate) fn new(backend: &'static str) -> Self {
        let now = Instant::now();
        Self {
            backend,
            next_check: now,
            seen: [0; 10],
            since: [0; 10],
            reported_once: [false; 10],
            next_summary: now,
            next_stall: now,
            breaker_open: false,
        }
    }

    /// Looks at the loss counters (at most every 250 ms) and reports what is new.
    pub(crate) fn check(&mut self, c: &Counters, now: Instant) {
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK_EVERY;
        let cur = losses(c);
        for (i, v) in cur.iter().enumerate() {
            let delta = v.saturating_sub(self.seen[i]);
            if delta == 0 {
                continue;
            }
            self.seen[i] = *v;
            if !self.reported_once[i] {
                self.reported_once[i] = true;
                let last_error = c.last_error.lock().ok().and_then(|g| g.clone());
                tracing::warn!(
                    target: TARGET,
                    backend = self.backend,
                    cause = CAUSES[i],
                    count = delta,
                    last_error = last_error.as_deref().unwrap_or(""),
                    "records lost (first loss of this cause; later ones are summarised once a minute)"
                );
            } else {
                self.since[i] += delta;
            }
        }
        if now >= self.next_summary && self.since.iter().any(|n| *n > 0) {
            self.next_summary = now + SUMMARY_EVERY;
            let total: u64 = self.since.iter().sum();
            let by_cause = describe(&self.since);
            tracing::warn!(
                target: TARGET,
                backend = self.backend,
                count = total,
                by_cause = by_cause.as_str(),
                "records lost since the last report"
            );
            self.since = [0; 10];
        }
    }

    /// The breaker's state after a send: reports a change.
    pub(crate) fn breaker(
        &mut self,
        open: bool,
        consecutive: u32,
        cooldown: Duration,
        c: &Counters,
    ) {
        if open == self.breaker_open {
            return;
        }
        self.breaker_open = open;
        if open {
            let last_error = c.last_error.lock().ok().and_then(|g| g.clone());
            tracing::warn!(
                target: TARGET,
                backend = self.backend,
                consecutive_failures = consecutive,
                cooldown_ms = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX),
                last_error = last_error.as_deref().unwrap_or(""),
                "circuit breaker opened: sends paused, records wait in the queue (or the spool)"
            );
        } else {
            tracing::info!(
                target: TARGET,
                backend = self.backend,
                "circuit breaker closed: the backend answers again"
            );
        }
    }

    /// A send passed the stall threshold.
    pub(crate) fn stalled(&mut self, waited: Duration) {
        let now = Instant::now();
        if now < self.next_stall {
            return;
        }
        self.next_stall = now + SUMMARY_EVERY;
        tracing::warn!(
            target: TARGET,
            backend = self.backend,
            waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "send stalled: the backend has not answered; it counts as failing until it does"
        );
    }

    /// Every handle is gone without a shutdown.
    pub(crate) fn guard_gone(&self) {
        tracing::warn!(
            target: TARGET,
            backend = self.backend,
            "guard dropped without shutdown: flushing what is queued (at most 5 s) and stopping"
        );
    }
}

/// `cause=n, …` for the non-zero counts.
fn describe(counts: &[u64; 10]) -> String {
    let mut out = String::new();
    for (i, n) in counts.iter().enumerate() {
        if *n > 0 {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(CAUSES[i]);
            out.push('=');
            out.push_str(&n.to_string());
        }
    }
    out
}

/// Reports that a backend accepts any TLS certificate (`danger_accept_invalid_certs` or the
/// backend's equivalent): a WARN event under the target `logship`, each time a TLS client
/// configuration is built with it. Backends call it; anyone who turned verification off for a
/// test then sees it in their logs if it ever reaches production.
pub fn insecure_tls(backend: &'static str) {
    tracing::warn!(
        target: TARGET,
        backend,
        "TLS certificate verification is OFF for this backend: any server, or anyone in the \
         middle, can read and alter what is sent"
    );
}

/// The shutdown summary line, when anything was lost: `None` when nothing was.
pub(crate) fn loss_summary(backend: &str, st: &Stats) -> Option<String> {
    let counts = [
        ("queue_full", st.dropped_queue_full),
        ("evicted", st.dropped_oldest),
        ("block_timeout", st.dropped_block_timeout),
        ("after_shutdown", st.dropped_closed),
        ("rejected", st.undelivered_rejected),
        ("retries_exhausted", st.undelivered_retries_exhausted),
        ("shutdown_timeout", st.undelivered_shutdown),
        ("worker_panicked", st.undelivered_worker_panicked),
        ("spool_evicted", st.spool_evicted),
    ];
    let lost: u64 = counts.iter().map(|(_, n)| n).sum();
    if lost == 0 {
        return None;
    }
    let by: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let mut line = format!(
        "logship: the `{backend}` pipeline lost {lost} of {} records ({}); delivered {}",
        st.emitted(),
        by.join(", "),
        st.delivered
    );
    if st.spool_records > 0 {
        line.push_str(&format!(", {} wait in the spool", st.spool_records));
    }
    if let Some(e) = &st.last_error {
        line.push_str("; last error: ");
        // At most 300 characters of it: one line, whatever a server put in its error.
        match e.char_indices().nth(300) {
            Some((at, _)) => {
                line.push_str(&e[..at]);
                line.push('…');
            }
            None => line.push_str(e),
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::prelude::*;

    struct Count(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, e: &tracing::Event<'_>, _cx: tracing_subscriber::layer::Context<'_, S>) {
            if e.metadata().target() == TARGET && *e.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn insecure_tls_is_a_warning_under_the_logship_target() {
        let n = Arc::new(AtomicUsize::new(0));
        let sub = tracing_subscriber::registry().with(Count(n.clone()));
        tracing::subscriber::with_default(sub, || insecure_tls("fluent"));
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_summary_says_nothing_without_loss_and_keeps_long_errors_to_one_short_line() {
        let mut st = Stats {
            enqueued: 10,
            delivered: 10,
            ..Stats::default()
        };
        assert_eq!(loss_summary("x", &st), None);
        st.undelivered_rejected = 2;
        st.delivered = 8;
        st.last_error = Some("e".repeat(100_000));
        let line = loss_summary("x", &st).unwrap_or_default();
        assert!(line.starts_with("logship: the `x` pipeline lost 2 of 10 records (rejected=2)"));
        assert!(line.len() < 500, "{}", line.len());
        assert!(!line.contains('\n'));
    }
}
