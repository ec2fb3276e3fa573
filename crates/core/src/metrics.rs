//! The pipeline's own health in a metrics system (feature `metrics`).
//!
//! With the feature on, every pipeline publishes its [`Stats`](crate::Stats) through the
//! [`metrics`](https://docs.rs/metrics) crate facade, so any recorder installed with
//! `metrics::set_global_recorder` (for instance `metrics-exporter-prometheus`) exports them.
//! Names follow the Prometheus conventions (<https://prometheus.io/docs/practices/naming/>):
//! base units (seconds, bytes), `_total` on counters, and a label `backend` with the sink's name
//! (`fluent`, `elasticsearch`, `kusto`, …) on every series.
//!
//! **Nothing happens on the application's thread.** The counts already live in the pipeline's
//! atomic counters; the worker thread reads them and publishes the change since its last
//! publication:
//!
//! * every [`PUBLISH_INTERVAL`] (1 s) — the worker wakes for it, even while idle;
//! * during a send that has not answered within the stall threshold, at every stall check (the
//!   worker is inside the send until then: at most the stall threshold, 5 s by default, between
//!   two publications);
//! * at shutdown (before `shutdown` returns) and when the worker dies of a panic.
//!
//! Each send attempt also records its duration (`logship_request_duration_seconds`) and its
//! outcome (`logship_requests_total`) when it ends.
//!
//! Counters are published as increments and gauges as differences, so **several pipelines of
//! the same backend add up** in one series (two Fluentd pipelines: `logship_queue_records` is
//! the records queued in both, `logship_breaker_open` the number of breakers open); a pipeline
//! that has shut down withdraws its share of every gauge. `logship_last_success_timestamp_seconds`
//! is the exception: it is set, so with several pipelines it holds the one published last.
//! Install the recorder before building the pipeline: a pipeline publishes into whatever
//! recorder is installed at each publication, so counts published before a recorder exists
//! are not replayed into it (a counter then starts from a later value, which `rate()` absorbs).
//!
//! The metric table, panels and alerts are in `docs/metrics.md`.

use std::time::Duration;

/// The longest time between two publications while the worker is not inside a send.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(feature = "metrics")]
pub(crate) use enabled::Publisher;

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::Publisher;

/// The `outcome` label of a send attempt, from what the worker got back: the sink's
/// [`Outcome`](crate::Outcome), the send timeout, or a panic in the sink.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn send_outcome<E>(result: &Result<Result<crate::Outcome, ()>, E>) -> &'static str {
    match result {
        Ok(Ok(crate::Outcome::Delivered)) => "delivered",
        Ok(Ok(crate::Outcome::Partial { .. })) => "partial",
        Ok(Ok(crate::Outcome::Retry { .. })) => "retry",
        Ok(Ok(crate::Outcome::Rejected { .. })) => "rejected",
        Ok(Err(())) => "timeout",
        Err(_) => "panicked",
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use std::time::{Duration, Instant};

    use crate::stats::Counters;

    /// Without the feature: nothing, at no cost.
    pub(crate) struct Publisher;

    impl Publisher {
        pub(crate) fn new(_backend: &'static str) -> Self {
            Self
        }
        #[inline]
        pub(crate) fn due(&self) -> Option<Instant> {
            None
        }
        #[inline]
        pub(crate) fn maybe_publish(&mut self, _counters: &Counters, _now: Instant) {}
        #[inline]
        pub(crate) fn sent<E>(
            &mut self,
            _result: &Result<Result<crate::Outcome, ()>, E>,
            _took: Duration,
        ) {
        }
        #[inline]
        pub(crate) fn finish(&mut self, _counters: &Counters) {}
    }
}

#[cfg(feature = "metrics")]
mod enabled {
    use std::panic::AssertUnwindSafe;
    use std::time::{Duration, Instant, UNIX_EPOCH};

    use ::metrics::{Key, Label, Level, Metadata, Unit};

    use super::PUBLISH_INTERVAL;
    use crate::stats::{Counters, Stats};

    static METADATA: Metadata<'static> =
        Metadata::new("logship", Level::INFO, Some(module_path!()));

    /// A counter that mirrors a [`Stats`] field (or a sum of fields).
    struct CounterDef {
        name: &'static str,
        /// The label besides `backend` that tells this series from its siblings.
        label: Option<(&'static str, &'static str)>,
        unit: Unit,
        help: &'static str,
        get: fn(&Stats) -> u64,
    }

    /// A gauge that mirrors a [`Stats`] field.
    struct GaugeDef {
        name: &'static str,
        unit: Unit,
        help: &'static str,
        get: fn(&Stats) -> u64,
    }

    const RECORDS: &str = "logship_records_total";
    const RECORDS_HELP: &str = "Records resolved, by outcome: delivered (acknowledged), undelivered (logship_undelivered_total), dropped (logship_dropped_total).";
    const DROPPED: &str = "logship_dropped_total";
    const DROPPED_HELP: &str = "Records dropped at the queue, by cause: queue_full, evicted (drop-oldest), block_timeout, closed (emitted after shutdown).";
    const UNDELIVERED: &str = "logship_undelivered_total";
    const UNDELIVERED_HELP: &str = "Records taken from the queue and not delivered, by cause: rejected, retries_exhausted, shutdown_timeout, worker_panicked.";
    const DEAD_LETTER: &str = "logship_dead_letter_records_total";
    const DEAD_LETTER_HELP: &str =
        "Undelivered records written to the dead-letter folder (written) or not (failed).";

    /// Every counter, in one table: the test and docs/metrics.md follow it.
    const COUNTERS: &[CounterDef] = &[
        CounterDef {
            name: "logship_records_enqueued_total",
            label: None,
            unit: Unit::Count,
            help: "Records accepted into the pipeline's queue.",
            get: |s| s.enqueued,
        },
        CounterDef {
            name: RECORDS,
            label: Some(("outcome", "delivered")),
            unit: Unit::Count,
            help: RECORDS_HELP,
            get: |s| s.delivered,
        },
        CounterDef {
            name: RECORDS,
            label: Some(("outcome", "undelivered")),
            unit: Unit::Count,
            help: RECORDS_HELP,
            get: Stats::undelivered,
        },
        CounterDef {
            name: RECORDS,
            label: Some(("outcome", "dropped")),
            unit: Unit::Count,
            help: RECORDS_HELP,
            get: Stats::dropped,
        },
        CounterDef {
            name: DROPPED,
            label: Some(("cause", "queue_full")),
            unit: Unit::Count,
            help: DROPPED_HELP,
            get: |s| s.dropped_queue_full,
        },
        CounterDef {
            name: DROPPED,
            label: Some(("cause", "evicted")),
            unit: Unit::Count,
            help: DROPPED_HELP,
            get: |s| s.dropped_oldest,
        },
        CounterDef {
            name: DROPPED,
            label: Some(("cause", "block_timeout")),
            unit: Unit::Count,
            help: DROPPED_HELP,
            get: |s| s.dropped_block_timeout,
        },
        CounterDef {
            name: DROPPED,
            label: Some(("cause", "closed")),
            unit: Unit::Count,
            help: DROPPED_HELP,
            get: |s| s.dropped_closed,
        },
        CounterDef {
            name: "logship_dropped_unreported_total",
            label: None,
            unit: Unit::Count,
            help: "Dropped records not handed to the undelivered callback because its lane was full (counted in logship_dropped_total too).",
            get: |s| s.dropped_unreported,
        },
        CounterDef {
            name: UNDELIVERED,
            label: Some(("cause", "rejected")),
            unit: Unit::Count,
            help: UNDELIVERED_HELP,
            get: |s| s.undelivered_rejected,
        },
        CounterDef {
            name: UNDELIVERED,
            label: Some(("cause", "retries_exhausted")),
            unit: Unit::Count,
            help: UNDELIVERED_HELP,
            get: |s| s.undelivered_retries_exhausted,
        },
        CounterDef {
            name: UNDELIVERED,
            label: Some(("cause", "shutdown_timeout")),
            unit: Unit::Count,
            help: UNDELIVERED_HELP,
            get: |s| s.undelivered_shutdown,
        },
        CounterDef {
            name: UNDELIVERED,
            label: Some(("cause", "worker_panicked")),
            unit: Unit::Count,
            help: UNDELIVERED_HELP,
            get: |s| s.undelivered_worker_panicked,
        },
        CounterDef {
            name: "logship_duplicates_total",
            label: None,
            unit: Unit::Count,
            help: "Delivered records the backend said it already had (counted as delivered too).",
            get: |s| s.duplicates,
        },
        CounterDef {
            name: "logship_retries_total",
            label: None,
            unit: Unit::Count,
            help: "Send attempts after the first for a batch (counted in logship_requests_total too).",
            get: |s| s.retries,
        },
        CounterDef {
            name: "logship_certificate_failures_total",
            label: None,
            unit: Unit::Count,
            help: "Send attempts that failed a TLS certificate check (a misconfiguration, not an outage).",
            get: |s| s.certificate_failures,
        },
        CounterDef {
            name: "logship_batches_delivered_total",
            label: None,
            unit: Unit::Count,
            help: "Send attempts that delivered at least one record.",
            get: |s| s.batches_delivered,
        },
        CounterDef {
            name: "logship_sent_bytes_total",
            label: None,
            unit: Unit::Bytes,
            help: "Bytes written to the wire (after compression), as the sink reports them.",
            get: |s| s.bytes_sent,
        },
        CounterDef {
            name: "logship_invalid_fields_total",
            label: None,
            unit: Unit::Count,
            help: "Conventional fields with invalid values (a bad source FQN or snapshot), kept as plain fields.",
            get: |s| s.invalid_fields,
        },
        CounterDef {
            name: DEAD_LETTER,
            label: Some(("outcome", "written")),
            unit: Unit::Count,
            help: DEAD_LETTER_HELP,
            get: |s| s.dead_letter_written,
        },
        CounterDef {
            name: DEAD_LETTER,
            label: Some(("outcome", "failed")),
            unit: Unit::Count,
            help: DEAD_LETTER_HELP,
            get: |s| s.dead_letter_failed,
        },
        CounterDef {
            name: "logship_dead_letter_write_errors_total",
            label: None,
            unit: Unit::Count,
            help: "Failed I/O operations on the dead-letter folder (an operation, not a record).",
            get: |s| s.dead_letter_write_errors,
        },
        CounterDef {
            name: "logship_callback_panics_total",
            label: None,
            unit: Unit::Count,
            help: "Panics caught in the undelivered callback.",
            get: |s| s.callback_panics,
        },
        CounterDef {
            name: "logship_spooled_total",
            label: None,
            unit: Unit::Count,
            help: "Records written to the disk spool.",
            get: |s| s.spooled,
        },
        CounterDef {
            name: "logship_spool_replayed_total",
            label: None,
            unit: Unit::Count,
            help: "Records read back from the spool and resolved (delivered or refused for good).",
            get: |s| s.spool_replayed,
        },
        CounterDef {
            name: "logship_spool_evicted_total",
            label: None,
            unit: Unit::Count,
            help: "Spooled records evicted to keep the spool under its byte cap (lost).",
            get: |s| s.spool_evicted,
        },
        CounterDef {
            name: "logship_spool_corrupt_segments_total",
            label: None,
            unit: Unit::Count,
            help: "Spool segments found torn or corrupt.",
            get: |s| s.spool_corrupt,
        },
        CounterDef {
            name: "logship_spool_corrupt_records_total",
            label: None,
            unit: Unit::Count,
            help: "Estimated records lost in torn or corrupt spool segments.",
            get: |s| s.spool_corrupt_records,
        },
        CounterDef {
            name: "logship_spool_write_errors_total",
            label: None,
            unit: Unit::Count,
            help: "Failed writes to the spool (the records stayed in the queue).",
            get: |s| s.spool_write_errors,
        },
    ];

    const GAUGES: &[GaugeDef] = &[
        GaugeDef {
            name: "logship_queue_records",
            unit: Unit::Count,
            help: "Records in the queue now.",
            get: |s| s.queue_len,
        },
        GaugeDef {
            name: "logship_queue_bytes",
            unit: Unit::Bytes,
            help: "Estimated bytes in the queue now.",
            get: |s| s.queue_bytes,
        },
        GaugeDef {
            name: "logship_spool_records",
            unit: Unit::Count,
            help: "Records in the disk spool now.",
            get: |s| s.spool_records,
        },
        GaugeDef {
            name: "logship_spool_bytes",
            unit: Unit::Bytes,
            help: "Bytes in the disk spool now.",
            get: |s| s.spool_bytes,
        },
        GaugeDef {
            name: "logship_breaker_open",
            unit: Unit::Count,
            help: "1 while the circuit breaker is open (summed over the backend's pipelines).",
            get: |s| u64::from(s.breaker_open),
        },
        GaugeDef {
            name: "logship_consecutive_failures",
            unit: Unit::Count,
            help: "Failed sends in a row (reset by a success).",
            get: |s| s.consecutive_failures,
        },
    ];

    const REQUESTS: &str = "logship_requests_total";
    const REQUEST_DURATION: &str = "logship_request_duration_seconds";
    const LAST_SUCCESS: &str = "logship_last_success_timestamp_seconds";

    /// The `outcome` values of `logship_requests_total` and `logship_request_duration_seconds`.
    const SEND_OUTCOMES: [&str; 6] = [
        "delivered",
        "partial",
        "retry",
        "rejected",
        "timeout",
        "panicked",
    ];

    /// Publishes one pipeline's counters from its worker thread.
    pub(crate) struct Publisher {
        backend: &'static str,
        next: Instant,
        /// What was published last, per entry of [`COUNTERS`] and [`GAUGES`].
        counters: [u64; COUNTERS.len()],
        gauges: [u64; GAUGES.len()],
        /// The recorder panicked once: publishing stopped for good (see [`Publisher::guarded`]).
        pub(super) broken: bool,
    }

    fn key(
        name: &'static str,
        backend: &'static str,
        label: Option<(&'static str, &'static str)>,
    ) -> Key {
        let mut labels = vec![Label::from_static_parts("backend", backend)];
        if let Some((k, v)) = label {
            labels.push(Label::from_static_parts(k, v));
        }
        Key::from_parts(name, labels)
    }

    impl Publisher {
        /// Describes every metric (once per pipeline, at build) and starts the clock.
        pub(crate) fn new(backend: &'static str) -> Self {
            let mut p = Self {
                backend,
                next: Instant::now(),
                counters: [0; COUNTERS.len()],
                gauges: [0; GAUGES.len()],
                broken: false,
            };
            p.guarded(None, |_| Self::describe());
            p
        }

        /// Runs `f` unless the recorder has panicked before. A recorder is third-party code:
        /// if it panics, the panic is caught here (never unwinding into the worker's loop or the
        /// caller's `build`), publishing stops for good, and `Stats::last_error` says so.
        fn guarded(&mut self, counters: Option<&Counters>, f: impl FnOnce(&mut Self)) {
            if self.broken {
                return;
            }
            if std::panic::catch_unwind(AssertUnwindSafe(|| f(self))).is_err() {
                self.broken = true;
                if let Some(c) = counters {
                    c.set_error("the metrics recorder panicked: publishing stopped".into());
                }
            }
        }

        fn describe() {
            ::metrics::with_recorder(|r| {
                let mut described = Vec::new();
                for c in COUNTERS {
                    if !described.contains(&c.name) {
                        described.push(c.name);
                        r.describe_counter(c.name.into(), Some(c.unit), c.help.into());
                    }
                }
                for g in GAUGES {
                    r.describe_gauge(g.name.into(), Some(g.unit), g.help.into());
                }
                r.describe_counter(
                    REQUESTS.into(),
                    Some(Unit::Count),
                    "Send attempts (one batch, or the retried part of one, each), by outcome: delivered, partial, retry, rejected, timeout, panicked.".into(),
                );
                r.describe_histogram(
                    REQUEST_DURATION.into(),
                    Some(Unit::Seconds),
                    "Duration of a send attempt, from the call of the sink's send to its answer (or its timeout), by outcome.".into(),
                );
                r.describe_gauge(
                    LAST_SUCCESS.into(),
                    Some(Unit::Seconds),
                    "When a send last succeeded, in seconds since the Unix epoch.".into(),
                );
            });
        }

        /// When the worker must wake to publish.
        pub(crate) fn due(&self) -> Option<Instant> {
            Some(self.next)
        }

        /// Publishes if [`PUBLISH_INTERVAL`] has passed since the last publication.
        pub(crate) fn maybe_publish(&mut self, counters: &Counters, now: Instant) {
            if now >= self.next {
                self.next = crate::time::after(now, PUBLISH_INTERVAL);
                self.guarded(Some(counters), |p| p.publish(&counters.snapshot()));
            }
        }

        /// Counts one send attempt: its outcome and its duration.
        pub(crate) fn sent<E>(
            &mut self,
            result: &Result<Result<crate::Outcome, ()>, E>,
            took: Duration,
        ) {
            let outcome = super::send_outcome(result);
            debug_assert!(SEND_OUTCOMES.contains(&outcome));
            let label = Some(("outcome", outcome));
            let backend = self.backend;
            self.guarded(None, |_| {
                ::metrics::with_recorder(|r| {
                    r.register_counter(&key(REQUESTS, backend, label), &METADATA)
                        .increment(1);
                    r.register_histogram(&key(REQUEST_DURATION, backend, label), &METADATA)
                        .record(took.as_secs_f64());
                });
            });
        }

        /// The last publication (shutdown or the worker's death): publishes the final counts,
        /// then withdraws this pipeline's share of every gauge (it no longer exists).
        pub(crate) fn finish(&mut self, counters: &Counters) {
            self.guarded(Some(counters), |p| {
                p.publish(&counters.snapshot());
                let backend = p.backend;
                ::metrics::with_recorder(|r| {
                    for (g, last) in GAUGES.iter().zip(p.gauges.iter_mut()) {
                        if *last != 0 {
                            r.register_gauge(&key(g.name, backend, None), &METADATA)
                                .decrement(*last as f64);
                            *last = 0;
                        }
                    }
                });
            });
        }

        /// Publishes the change since the last publication. Every series is touched, even
        /// with no change, so that it exists (at 0) from the first publication on: an alert on
        /// `logship_breaker_open` or a `rate()` needs the series before the first event.
        fn publish(&mut self, s: &Stats) {
            let backend = self.backend;
            ::metrics::with_recorder(|r| {
                for (c, last) in COUNTERS.iter().zip(self.counters.iter_mut()) {
                    // Counters never decrease; `max` keeps a publication monotonic regardless.
                    let v = (c.get)(s).max(*last);
                    r.register_counter(&key(c.name, backend, c.label), &METADATA)
                        .increment(v - *last);
                    *last = v;
                }
                for (g, last) in GAUGES.iter().zip(self.gauges.iter_mut()) {
                    let v = (g.get)(s);
                    let gauge = r.register_gauge(&key(g.name, backend, None), &METADATA);
                    if v >= *last {
                        gauge.increment((v - *last) as f64);
                    } else {
                        gauge.decrement((*last - v) as f64);
                    }
                    *last = v;
                }
                if let Some(t) = s.last_success
                    && let Ok(since) = t.duration_since(UNIX_EPOCH)
                {
                    r.register_gauge(&key(LAST_SUCCESS, backend, None), &METADATA)
                        .set(since.as_secs_f64());
                }
            });
        }
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::time::{Duration, Instant};

    use ::metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::Publisher;
    use crate::stats::Counters;

    /// A recorder with a bug: every registration panics.
    struct Panicking;

    impl Recorder for Panicking {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            panic!("recorder bug")
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            panic!("recorder bug")
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            panic!("recorder bug")
        }
    }

    #[test]
    fn a_panicking_recorder_stops_publishing_and_never_unwinds_into_the_worker() {
        ::metrics::with_local_recorder(&Panicking, || {
            let counters = Counters::default();
            let mut p = Publisher::new("test");
            p.maybe_publish(&counters, Instant::now());
            assert!(p.broken);
            assert_eq!(
                counters.snapshot().last_error.as_deref(),
                Some("the metrics recorder panicked: publishing stopped")
            );
            // Later calls do nothing (and do not panic).
            p.sent::<()>(&Ok(Ok(crate::Outcome::Delivered)), Duration::from_millis(1));
            p.finish(&counters);
        });
    }
}
