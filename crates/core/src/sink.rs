//! The [`Sink`] trait: what a backend implements.
//!
//! A sink turns a [`Batch`] of records into its wire format, sends it, and says what happened
//! as an [`Outcome`]. Everything else (queueing, batching, retry with backoff, the circuit
//! breaker, timeouts, shutdown, self-metrics, the undelivered path) is the core's job: a sink
//! never sleeps between attempts and never drops records silently. Within one send it may make
//! several requests (split by size, refresh a refused token once, fail over to another server;
//! see [`Sink::send`]); retrying *after a wait* is the core's.
//!
//! `send` runs on the layer's own worker thread, inside a single-threaded tokio runtime that
//! the worker owns, so a sink may use tokio I/O, reqwest, or rumqttc freely, whatever runtime
//! (if any) the application uses.
//!
//! ```
//! use logship_core::{Batch, Outcome, SendContext, Sink};
//!
//! struct Stdout;
//! impl Sink for Stdout {
//!     fn name(&self) -> &'static str { "stdout" }
//!     async fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> Outcome {
//!         for r in batch.records() {
//!             println!("{} {}", r.level(), r.message().unwrap_or(""));
//!         }
//!         cx.record_bytes_sent(0);
//!         Outcome::Delivered
//!     }
//! }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Record;

/// A batch of records handed to [`Sink::send`].
///
/// The records stay in the boxes the callers' threads filled: the core recycles those boxes
/// after the batch is resolved, so a record is never copied between capture and encoding.
/// `&Box<Record>` dereferences to `&Record`, so `for r in batch.records()` and passing `r` where
/// a `&Record` is expected both work as with a plain slice.
#[derive(Debug)]
pub struct Batch {
    #[allow(clippy::vec_box)] // the boxes themselves are what is recycled
    pub(crate) records: Vec<Box<Record>>,
    pub(crate) id: u64,
}

impl Batch {
    /// A batch of `records` with id `id` (for testing a sink without a pipeline).
    pub fn new(records: impl IntoIterator<Item = Record>, id: u64) -> Self {
        Self {
            records: records.into_iter().map(Box::new).collect(),
            id,
        }
    }

    /// The records, in the order they were emitted (retried records keep their order).
    pub fn records(&self) -> &[Box<Record>] {
        &self.records
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// Whether the batch is empty (never, when handed to a sink).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// The batch's id, unique per layer and stable across retries of the same batch (a
    /// partial retry keeps the id). Sinks derive idempotency keys from it (Fluent `chunk`).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// What happened to a batch. Indices refer to [`Batch::records`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every record was delivered (for acknowledged protocols: acknowledged).
    Delivered,
    /// Nothing is known to be delivered and trying again may succeed (connection failure,
    /// timeout, 429, 5xx, missing ack). `after` is a server-given delay (Retry-After), capped by
    /// the retry policy.
    Retry {
        /// Server-requested delay before the next attempt.
        after: Option<Duration>,
        /// What went wrong, for `Stats::last_error` and the undelivered path.
        reason: String,
    },
    /// Some records were delivered, some should be retried, some are permanently refused
    /// (an Elasticsearch bulk response with item errors, a record that could not be encoded).
    /// Records in neither list count as delivered.
    Partial {
        /// Indices to retry.
        retry: Vec<usize>,
        /// Indices refused for good, with the reason.
        rejected: Vec<(usize, String)>,
        /// Server-requested delay before retrying.
        after: Option<Duration>,
        /// Why the records in `retry` were not delivered (e.g. `http 503: …`), for
        /// `Stats::last_error`; empty when `retry` is empty or the sink does not know.
        reason: String,
    },
    /// The whole batch is refused for good (400, permission errors): it goes to the
    /// undelivered path with the reason; retrying cannot help.
    Rejected {
        /// The server's message.
        reason: String,
    },
}

impl Outcome {
    /// A retryable failure without a server-given delay.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }
    /// A permanent failure of the whole batch.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: reason.into(),
        }
    }
}

/// Per-send information from the worker, and what the sink reports back besides the outcome.
#[derive(Debug)]
pub struct SendContext {
    attempt: u32,
    deadline: Instant,
    shutting_down: bool,
    wants_payload: bool,
    pub(crate) bytes_sent: u64,
    pub(crate) duplicates: u64,
    pub(crate) certificate_failures: u64,
    pub(crate) payload: Option<Vec<u8>>,
}

impl SendContext {
    pub(crate) fn new(
        attempt: u32,
        deadline: Instant,
        shutting_down: bool,
        wants_payload: bool,
    ) -> Self {
        Self {
            attempt,
            deadline,
            shutting_down,
            wants_payload,
            bytes_sent: 0,
            duplicates: 0,
            certificate_failures: 0,
            payload: None,
        }
    }

    /// For tests of sinks: a context for a first attempt with a 30 s deadline.
    pub fn for_test() -> Self {
        Self::new(1, Instant::now() + Duration::from_secs(30), false, true)
    }

    /// 1 for the first attempt at this batch, 2 for the first retry, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// When the worker will abandon this send (the send timeout, or a flush deadline).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
    /// Whether the pipeline is shutting down (a sink may skip optional work).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }
    /// Adds to the bytes written to the wire for this batch (after compression).
    pub fn record_bytes_sent(&mut self, n: u64) {
        self.bytes_sent += n;
    }
    /// Records how many records the backend reported as already present (an Elasticsearch 409
    /// on `create`, a resent Fluent chunk): they count as delivered and as duplicates.
    pub fn record_duplicates(&mut self, n: u64) {
        self.duplicates += n;
    }
    /// Records that this send failed (at least partly) because a TLS certificate check failed,
    /// counted in [`Stats::certificate_failures`](crate::Stats::certificate_failures). The
    /// outcome is still whatever the sink returns (normally a retry).
    pub fn record_certificate_failure(&mut self) {
        self.certificate_failures += 1;
    }
    /// Whether an undelivered callback wants encoded payloads (see
    /// [`set_payload`](Self::set_payload)); when false, don't bother copying.
    pub fn wants_payload(&self) -> bool {
        self.wants_payload
    }
    /// Hands the encoded request body to the core, so that if the batch ends up undelivered the
    /// callback receives the bytes (the Fluent original's `buffer_overflow_handler`).
    pub fn set_payload(&mut self, bytes: Vec<u8>) {
        if self.wants_payload {
            self.payload = Some(bytes);
        }
    }
}

/// A backend. See the [module docs](self).
pub trait Sink: Send + 'static {
    /// A short name for thread names and errors, e.g. `"fluent"`.
    fn name(&self) -> &'static str;

    /// Encodes and sends `batch`, and classifies the result. The core owns backoff, the
    /// circuit breaker and retries *across* sends, so a sink never sleeps and never loops
    /// waiting for a backend; within one send it may make several requests (split by the
    /// backend's size limits, refresh a refused token once, fail over to another server) as
    /// long as it answers by [`SendContext::deadline`] with one outcome per record. The worker
    /// enforces the send timeout by dropping the future (a flush never does).
    fn send(&mut self, batch: &Batch, cx: &mut SendContext) -> impl Future<Output = Outcome>;

    /// Called once on the worker thread before the first send (connect, install a template …).
    /// An error is counted and kept in `Stats::last_error`; sending proceeds anyway.
    fn start(&mut self) -> impl Future<Output = Result<(), String>> {
        async { Ok(()) }
    }

    /// Called once when the pipeline shuts down, after the final flush.
    fn shutdown(&mut self) -> impl Future<Output = ()> {
        async {}
    }
}
