//! The undelivered path: what happens to records that will not reach the backend.
//!
//! Records end here when the backend refuses them for good, when retries run out, when
//! shutdown's timeout expires, and (when this path is configured) when the queue drops them.
//! They are always counted ([`Stats`](crate::Stats)); in addition they can go to
//!
//! * a **callback** (`PipelineBuilder::with_undelivered_callback`), called on the worker
//!   thread with the records and, where the backend provides it, the encoded request body
//!   (the Fluent original's `buffer_overflow_handler`); a panic in it is caught and counted;
//! * a **dead-letter folder** (`PipelineBuilder::with_dead_letter_dir`): NDJSON files, one
//!   record per line in the [`Record`] JSON form plus an `undelivered` object with the cause and
//!   reason (the ECS original's `flush_failure_folder`). File names are portable (no `:`):
//!   `logship-<sink>-<YYYYMMDDTHHMMSSZ>-<pid>-<n>.ndjson`. The folder is capped in bytes; past the
//!   cap, records are counted in `dead_letter_failed` instead of written.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Record;
use crate::stats::Counters;

/// Why records were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// Dropped at enqueue: the queue was full (drop-newest policy, or the level's share).
    QueueFull,
    /// Evicted from the queue to make room (drop-oldest policy).
    Evicted,
    /// Dropped at enqueue after the block policy's timeout.
    BlockTimeout,
    /// Refused for good by the backend, or could not be encoded.
    Rejected,
    /// The retry policy's attempts or time ran out.
    RetriesExhausted,
    /// Still queued or in flight when shutdown's timeout expired.
    ShutdownTimeout,
    /// Held by the worker when it died of a panic.
    WorkerPanicked,
}

impl Cause {
    /// A stable snake_case name, e.g. `retries_exhausted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Evicted => "evicted",
            Self::BlockTimeout => "block_timeout",
            Self::Rejected => "rejected",
            Self::RetriesExhausted => "retries_exhausted",
            Self::ShutdownTimeout => "shutdown_timeout",
            Self::WorkerPanicked => "worker_panicked",
        }
    }
}

/// Records that will not be delivered, handed to the undelivered callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct Undelivered {
    /// Why.
    pub cause: Cause,
    /// The backend's message or the last error, when there is one.
    pub reason: Option<String>,
    /// The records.
    pub records: Vec<Record>,
    /// The encoded request body of the last attempt, when the backend provides it.
    pub payload: Option<Vec<u8>>,
}

/// The undelivered callback's type.
pub type UndeliveredCallback = Arc<dyn Fn(&Undelivered) + Send + Sync>;

/// Default cap of a dead-letter folder: 256 MiB.
pub const DEFAULT_DEAD_LETTER_MAX_BYTES: u64 = 256 * 1024 * 1024;
const FILE_ROLL_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) struct DeadLetter {
    dir: PathBuf,
    sink: &'static str,
    max_bytes: u64,
    used: u64,
    file: Option<(BufWriter<File>, u64)>,
    seq: u32,
}

impl DeadLetter {
    pub(crate) fn open(dir: &Path, sink: &'static str, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut used = 0;
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.path().extension().is_some_and(|x| x == "ndjson") {
                used += e.metadata()?.len();
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sink,
            max_bytes,
            used,
            file: None,
            seq: 0,
        })
    }

    fn writer(&mut self) -> std::io::Result<&mut (BufWriter<File>, u64)> {
        if self
            .file
            .as_ref()
            .is_some_and(|(_, n)| *n >= FILE_ROLL_BYTES)
            && let Some((mut w, _)) = self.file.take()
        {
            w.flush()?;
        }
        if self.file.is_none() {
            self.seq += 1;
            let name = format!(
                "logship-{}-{}-{}-{}.ndjson",
                self.sink,
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
                std::process::id(),
                self.seq
            );
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))?;
            self.file = Some((BufWriter::new(f), 0));
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("dead-letter file not open"))
    }

    pub(crate) fn write(&mut self, u: &Undelivered, counters: &Counters) {
        for r in &u.records {
            let line = crate::json::record_line(r, Some((u.cause, u.reason.as_deref())));
            let len = line.len() as u64;
            if self.used + len > self.max_bytes {
                Counters::add(&counters.dead_letter_failed, 1);
                continue;
            }
            let ok = self
                .writer()
                .and_then(|(w, n)| {
                    w.write_all(line.as_bytes())?;
                    *n += len;
                    Ok(())
                })
                .is_ok();
            if ok {
                self.used += len;
                Counters::add(&counters.dead_letter_written, 1);
            } else {
                Counters::add(&counters.dead_letter_failed, 1);
            }
        }
        if let Some((w, _)) = self.file.as_mut() {
            let _ = w.flush();
        }
    }
}
