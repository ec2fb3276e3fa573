//! Error types. Messages are lowercase, describe this level only, and never contain secrets.

use std::time::Duration;

/// A pipeline configuration that cannot work, found by `build()`. The message names the
/// setting, the bad value, and what to do instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A size or count that must be at least 1 was 0.
    #[error("`{setting}` must be at least 1 (got 0)")]
    Zero {
        /// The setting's builder method.
        setting: &'static str,
    },
    /// A setting is out of its range.
    #[error("`{setting}` is {value}; {hint}")]
    OutOfRange {
        /// The setting's builder method.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        hint: &'static str,
    },
    /// A batch could never fill because the queue is smaller than the batch.
    #[error(
        "`with_max_batch_records` ({batch}) is larger than `with_max_queue_records` ({queue}); \
         a batch could never fill: lower the batch size or raise the queue size"
    )]
    BatchLargerThanQueue {
        /// Batch records.
        batch: usize,
        /// Queue records.
        queue: usize,
    },
    /// The default source FQN does not parse.
    #[error("invalid default source FQN")]
    SourceFqn(#[source] crate::FqnError),
    /// The dead-letter folder cannot be created or read.
    #[error("cannot use dead-letter folder `{path}`")]
    DeadLetterDir {
        /// The folder.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spool folder cannot be created or read.
    #[error("cannot use spool folder `{path}`")]
    Spool {
        /// The folder.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The worker thread or its runtime could not be started.
    #[error("cannot start the worker thread")]
    Spawn(#[source] std::io::Error),
    /// A backend-specific setting is wrong.
    #[error("{0}")]
    Backend(String),
}

/// Why a flush or shutdown did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The timeout passed with records still queued or in flight. For a shutdown, those records
    /// went to the undelivered path (counted in `Stats::undelivered_shutdown`).
    #[error("flush timed out after {} ms with {remaining} records not yet resolved", waited.as_millis())]
    Timeout {
        /// How long the call waited.
        waited: Duration,
        /// Records not delivered or resolved in time.
        remaining: u64,
    },
    /// The pipeline was already shut down; nothing to flush.
    #[error("the pipeline is already shut down")]
    AlreadyShutdown,
    /// The worker thread is gone (it could not start or it died); its counters are still readable.
    #[error("the worker thread is not running")]
    WorkerGone,
    /// The worker died of a panic while this request waited. What it held was counted in
    /// `Stats::undelivered_worker_panicked`; the pipeline accepts no more records.
    #[error("the worker thread panicked: {reason}")]
    WorkerPanicked {
        /// The panic's message.
        reason: String,
    },
}
