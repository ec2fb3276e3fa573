//! Self-metrics: counters updated while running, read as a [`Stats`] snapshot.
//!
//! The counters are plain atomics; nothing here is ever reported through `tracing` (that
//! would feed the pipeline with itself). Read them with `Guard::stats` / `Handle::stats`
//! whenever you like, e.g. from a health endpoint.
//!
//! Accounting: every record a layer captures is either **enqueued** or **dropped** at the
//! queue (`dropped_queue_full`, `dropped_block_timeout`, `dropped_closed`). Every enqueued
//! record ends **delivered**, **undelivered** (by cause), **evicted** (`dropped_oldest`), or is
//! still queued / in flight. So, once flushed:
//! `emitted == enqueued + dropped_at_enqueue` and
//! `enqueued == delivered + undelivered + dropped_oldest`. With a [spool](crate::spool):
//! `enqueued + spool_replayed == delivered + undelivered + dropped_oldest + spooled`.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, fence};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crossbeam_utils::CachePadded;

/// Records and estimated bytes in the queue, packed in one word so that the caller reserves
/// both with one compare-and-swap: `CLOSED | records << QUEUE_BYTES_BITS | bytes`, where the
/// top bit is [`QUEUE_CLOSED`] and the records take the 23 bits between it and the bytes. Read
/// the record count with [`queue_records`], never with a bare shift.
pub(crate) const QUEUE_BYTES_BITS: u32 = 40;
pub(crate) const QUEUE_BYTES_MASK: u64 = (1 << QUEUE_BYTES_BITS) - 1;
/// Set in the queue word when the queue closes: every reservation fails from then on (the
/// caller's compare-and-swap sees it), so no record can enter the queue after the worker's
/// final drain.
pub(crate) const QUEUE_CLOSED: u64 = 1 << 63;

/// The record count in a queue word (without the [`QUEUE_CLOSED`] bit).
#[inline]
pub(crate) const fn queue_records(state: u64) -> u64 {
    (state & !QUEUE_CLOSED) >> QUEUE_BYTES_BITS
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// The caller's hot word, on its own cache line (see [`QUEUE_BYTES_BITS`]).
    pub(crate) queue_state: CachePadded<AtomicU64>,
    /// Records the worker took from the queue (written by the worker only).
    pub(crate) taken: CachePadded<AtomicU64>,
    /// Seqlock over (`taken`, `dropped_oldest`, the queue word's decrements): odd while a
    /// [`Counters::consistent_update`] runs, so [`Counters::snapshot`] reads a consistent cut.
    pub(crate) cut_seq: AtomicU64,
    /// Serialises the writers of `cut_seq` (the worker's take, a caller's eviction).
    pub(crate) cut_lock: Mutex<()>,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_oldest: AtomicU64,
    pub(crate) dropped_block_timeout: AtomicU64,
    pub(crate) dropped_closed: AtomicU64,
    pub(crate) dropped_unreported: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) undelivered_rejected: AtomicU64,
    pub(crate) undelivered_retries_exhausted: AtomicU64,
    pub(crate) undelivered_shutdown: AtomicU64,
    pub(crate) undelivered_worker_panicked: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) certificate_failures: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) batches_delivered: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) invalid_fields: AtomicU64,
    pub(crate) dead_letter_written: AtomicU64,
    pub(crate) dead_letter_failed: AtomicU64,
    pub(crate) dead_letter_write_errors: AtomicU64,
    pub(crate) callback_panics: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) spool_replayed: AtomicU64,
    pub(crate) spool_evicted: AtomicU64,
    pub(crate) spool_corrupt: AtomicU64,
    pub(crate) spool_corrupt_records: AtomicU64,
    pub(crate) spool_write_errors: AtomicU64,
    pub(crate) spool_bytes: AtomicU64,
    pub(crate) spool_records: AtomicU64,
    pub(crate) consecutive_failures: AtomicU64,
    pub(crate) breaker_open: AtomicBool,
    pub(crate) last_success: Mutex<Option<SystemTime>>,
    pub(crate) last_error: Mutex<Option<String>>,
    /// The panic that ended the worker, if one did (for `FlushError::WorkerPanicked`).
    pub(crate) worker_panic: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(crate) fn set_error(&self, e: String) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e);
        }
    }

    /// Runs `update` as one step for [`snapshot`](Self::snapshot): a snapshot sees all of its
    /// writes to `taken`, `dropped_oldest` and the queue word, or none. Every write that moves
    /// records out of the queue word (taking, evicting) must go through here; reservations
    /// (which only add to it) need not.
    pub(crate) fn consistent_update<R>(&self, update: impl FnOnce() -> R) -> R {
        let _writer = self.cut_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = self.cut_seq.load(Relaxed);
        self.cut_seq.store(seq + 1, Relaxed);
        fence(Release);
        let r = update();
        self.cut_seq.store(seq + 2, Release);
        r
    }

    /// (`taken`, `dropped_oldest`, queue word), read as one consistent cut.
    fn cut(&self) -> (u64, u64, u64) {
        let mut spins = 0u32;
        loop {
            let seq = self.cut_seq.load(Acquire);
            if seq & 1 == 0 {
                let taken = self.taken.load(Relaxed);
                let evicted = self.dropped_oldest.load(Relaxed);
                let state = self.queue_state.load(Relaxed);
                fence(Acquire);
                if self.cut_seq.load(Relaxed) == seq {
                    return (taken, evicted, state);
                }
            }
            // A writer is inside its (short) update: spin, then let it run.
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let (taken, dropped_oldest, state) = self.cut();
        let queue_len = queue_records(state);
        Stats {
            // Every enqueued record was taken by the worker, evicted, or is still queued.
            // Read as one cut (see `consistent_update`), so this never over-counts a batch the
            // worker is taking and never decreases.
            enqueued: taken + dropped_oldest + queue_len,
            dropped_queue_full: g(&self.dropped_queue_full),
            dropped_oldest,
            dropped_block_timeout: g(&self.dropped_block_timeout),
            dropped_closed: g(&self.dropped_closed),
            dropped_unreported: g(&self.dropped_unreported),
            delivered: g(&self.delivered),
            duplicates: g(&self.duplicates),
            undelivered_rejected: g(&self.undelivered_rejected),
            undelivered_retries_exhausted: g(&self.undelivered_retries_exhausted),
            undelivered_shutdown: g(&self.undelivered_shutdown),
            undelivered_worker_panicked: g(&self.undelivered_worker_panicked),
            retries: g(&self.retries),
            certificate_failures: g(&self.certificate_failures),
            requests: g(&self.requests),
            batches_delivered: g(&self.batches_delivered),
            bytes_sent: g(&self.bytes_sent),
            invalid_fields: g(&self.invalid_fields),
            dead_letter_written: g(&self.dead_letter_written),
            dead_letter_failed: g(&self.dead_letter_failed),
            dead_letter_write_errors: g(&self.dead_letter_write_errors),
            callback_panics: g(&self.callback_panics),
            spooled: g(&self.spooled),
            spool_replayed: g(&self.spool_replayed),
            spool_evicted: g(&self.spool_evicted),
            spool_corrupt: g(&self.spool_corrupt),
            spool_corrupt_records: g(&self.spool_corrupt_records),
            spool_write_errors: g(&self.spool_write_errors),
            spool_bytes: g(&self.spool_bytes),
            spool_records: g(&self.spool_records),
            queue_len,
            queue_bytes: state & QUEUE_BYTES_MASK,
            consecutive_failures: g(&self.consecutive_failures),
            breaker_open: self.breaker_open.load(Relaxed),
            last_success: self.last_success.lock().ok().and_then(|g| *g),
            last_error: self.last_error.lock().ok().and_then(|g| g.clone()),
        }
    }
}

/// A snapshot of a layer's self-metrics. Counts are records unless a name says otherwise;
/// all are totals since the layer was built. See the [module docs](self) for the accounting.
///
/// With the feature `serde`, `Stats` implements `serde::Serialize`: one object with a member
/// per field, named as here (`"enqueued"`, `"dropped_queue_full"`, …, `"breaker_open"`: a
/// boolean); `last_success` is an RFC 3339 UTC timestamp with nanoseconds
/// (`"2026-12-04T14:15:45.123456789Z"`) or `null`, `last_error` a string or `null`. The derived
/// sums (`dropped()`, `undelivered()`, …) are not included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Stats {
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records dropped because the queue was full (by count or bytes) under the drop-newest
    /// policy, or the level's share was used up.
    pub dropped_queue_full: u64,
    /// Queued records evicted to make room under the drop-oldest policy.
    pub dropped_oldest: u64,
    /// Records dropped after waiting the full timeout under the block policy.
    pub dropped_block_timeout: u64,
    /// Records emitted after the pipeline shut down.
    pub dropped_closed: u64,
    /// Dropped records not handed to the undelivered callback because its lane was full
    /// (they are still counted above).
    pub dropped_unreported: u64,
    /// Records delivered (acknowledged, where the protocol acknowledges).
    pub delivered: u64,
    /// Delivered records the backend said it already had (counted in `delivered` too).
    pub duplicates: u64,
    /// Records the backend refused for good (or that could not be encoded).
    pub undelivered_rejected: u64,
    /// Records given up after the retry policy's attempts or time ran out.
    pub undelivered_retries_exhausted: u64,
    /// Records still queued or in flight when shutdown's timeout expired.
    pub undelivered_shutdown: u64,
    /// Records held by the worker (queued, batched or in flight) when it died of a panic (a
    /// panicking third-party `Sink` outside `send`, or a bug): counted here, reported to the
    /// undelivered path with [`Cause::WorkerPanicked`](crate::Cause::WorkerPanicked); records
    /// emitted afterwards count in `dropped_closed`.
    pub undelivered_worker_panicked: u64,
    /// Retry attempts (sends after the first for a batch).
    pub retries: u64,
    /// Send attempts that failed because a TLS certificate check failed (the server's
    /// certificate untrusted, expired or for another name, or the server refusing ours). They
    /// are retried like other connection failures — a certificate or a trust store can be
    /// fixed without restarting the application — but counted here so that a
    /// misconfiguration is told apart from an outage; `last_error` names the check.
    pub certificate_failures: u64,
    /// Send attempts: calls of the backend's `Sink::send`, each carrying one batch (or the
    /// retried part of one), including retries. One attempt may be several wire requests (the
    /// backend splits by its size limits or by tag).
    pub requests: u64,
    /// Send attempts that delivered at least one record (a batch delivered in parts counts
    /// once per part).
    pub batches_delivered: u64,
    /// Bytes written to the wire (after compression), as the sink reports them.
    pub bytes_sent: u64,
    /// Conventional fields with invalid values (a bad source FQN or snapshot), kept as plain fields.
    pub invalid_fields: u64,
    /// Records written to the dead-letter folder.
    pub dead_letter_written: u64,
    /// Records that could not be written to the dead-letter folder (I/O error or size cap).
    pub dead_letter_failed: u64,
    /// Failed I/O operations on the dead-letter folder (creating a file, or a write that failed,
    /// e.g. on a full disk). An operation, not a record: the records it affected are counted in
    /// `dead_letter_failed`.
    pub dead_letter_write_errors: u64,
    /// Panics caught in the undelivered callback.
    pub callback_panics: u64,
    /// Records written to the disk spool (see [`spool`](crate::spool)); they count as resolved
    /// for `flush`, and as delivered once replayed and acknowledged.
    pub spooled: u64,
    /// Records read back from the spool and resolved: delivered, or refused for good
    /// (including records spooled by an earlier run). A replay that fails and is tried again
    /// counts once, when it is finally resolved.
    pub spool_replayed: u64,
    /// Spooled records evicted to keep the spool under its byte cap (lost, counted).
    pub spool_evicted: u64,
    /// Spool segments found torn or corrupt (their intact records were replayed).
    pub spool_corrupt: u64,
    /// An **estimate** of the records lost in torn or corrupt spool segments (the records behind
    /// a bad frame): the segment's record count, as known when it was written or found at
    /// startup, minus the records recovered from it. At least 1 per corrupt segment.
    pub spool_corrupt_records: u64,
    /// Failed writes to the spool (the records then stayed in the queue).
    pub spool_write_errors: u64,
    /// Bytes in the spool now.
    pub spool_bytes: u64,
    /// Records in the spool now.
    pub spool_records: u64,
    /// Records in the queue now.
    pub queue_len: u64,
    /// Estimated bytes in the queue now.
    pub queue_bytes: u64,
    /// Failed sends in a row (reset by a success).
    pub consecutive_failures: u64,
    /// Whether the circuit breaker is open now.
    pub breaker_open: bool,
    /// When a send last succeeded.
    #[cfg_attr(feature = "serde", serde(serialize_with = "rfc3339"))]
    pub last_success: Option<SystemTime>,
    /// The last send error, as the sink described it (never contains secrets).
    pub last_error: Option<String>,
}

impl Stats {
    /// All records dropped before reaching the queue.
    pub fn dropped_at_enqueue(&self) -> u64 {
        self.dropped_queue_full + self.dropped_block_timeout + self.dropped_closed
    }
    /// All dropped records (at enqueue, and evicted).
    pub fn dropped(&self) -> u64 {
        self.dropped_at_enqueue() + self.dropped_oldest
    }
    /// All undelivered records.
    pub fn undelivered(&self) -> u64 {
        self.undelivered_rejected
            + self.undelivered_retries_exhausted
            + self.undelivered_shutdown
            + self.undelivered_worker_panicked
    }
    /// Records the layer tried to queue: `enqueued + dropped_at_enqueue()`.
    pub fn emitted(&self) -> u64 {
        self.enqueued + self.dropped_at_enqueue()
    }
    /// Records enqueued and not yet resolved (delivered, undelivered, evicted or spooled): queued
    /// or in flight. Records being replayed from the spool are not included (they are on disk
    /// until resolved: `spool_records`).
    pub fn in_flight(&self) -> u64 {
        (self.enqueued + self.spool_replayed).saturating_sub(
            self.delivered + self.undelivered() + self.dropped_oldest + self.spooled,
        )
    }
}

/// `last_success` as an RFC 3339 UTC timestamp with nanoseconds, or `null`.
#[cfg(feature = "serde")]
fn rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(
            &chrono::DateTime::<chrono::Utc>::from(*t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        ),
        None => s.serialize_none(),
    }
}

#[cfg(all(test, feature = "serde"))]
mod serde_tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::Stats;

    #[test]
    fn stats_serialize_with_their_field_names() {
        let s = Stats {
            enqueued: 10,
            dropped_queue_full: 2,
            delivered: 7,
            undelivered_rejected: 1,
            breaker_open: true,
            last_success: Some(UNIX_EPOCH + Duration::new(1_796_393_745, 123_456_789)),
            last_error: Some("HTTP 503".into()),
            ..Stats::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["enqueued"], 10);
        assert_eq!(v["dropped_queue_full"], 2);
        assert_eq!(v["delivered"], 7);
        assert_eq!(v["undelivered_rejected"], 1);
        assert_eq!(v["spool_records"], 0);
        assert_eq!(v["breaker_open"], true);
        assert_eq!(v["last_success"], "2026-12-04T14:15:45.123456789Z");
        assert_eq!(v["last_error"], "HTTP 503");
        // One member per field, nothing else.
        assert_eq!(v.as_object().unwrap().len(), 36);
        let none = serde_json::to_value(Stats::default()).unwrap();
        assert!(none["last_success"].is_null());
        assert!(none["last_error"].is_null());
    }

    #[test]
    fn flush_report_serializes_stats_and_wait() {
        let r = crate::FlushReport {
            stats: Stats {
                delivered: 3,
                ..Stats::default()
            },
            waited: Duration::from_millis(1500),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["stats"]["delivered"], 3);
        assert_eq!(v["waited"]["secs"], 1);
        assert_eq!(v["waited"]["nanos"], 500_000_000);
    }
}
