//! The bounded queue between the caller's thread and the worker.
//!
//! Bounded by **both** record count and estimated bytes (no other `tracing` layer bounds
//! bytes; a count bound alone lets a burst of large records eat memory). Records at or above
//! the reserved level (default ERROR) may use the whole queue; lower levels only the part
//! below the headroom, so a flood of DEBUG cannot crowd out the errors that explain it.
//!
//! When full, the [`Overflow`] policy decides: drop the new record (default), evict the oldest,
//! or block the caller for at most a timeout. Every drop is counted by cause, and (when an
//! undelivered callback or dead-letter folder is configured) handed to the worker through a
//! small side lane so the callback runs on the worker thread, never the caller's.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use crossbeam_queue::ArrayQueue;
use tracing_core::Level;

use crate::Record;
use crate::stats::{Counters, QUEUE_BYTES_BITS, QUEUE_BYTES_MASK};
use crate::undelivered::Cause;

/// What to do with a record when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the new record (default; the caller never waits).
    #[default]
    DropNewest,
    /// Evict the oldest queued record(s) to make room.
    DropOldest,
    /// Wait for room for at most this long, then drop the new record. The caller's thread
    /// blocks: choose this only where losing records is worse than latency.
    Block(Duration),
}

pub(crate) struct QueueLimits {
    pub(crate) max_records: u64,
    pub(crate) max_bytes: u64,
    pub(crate) low_records: u64,
    pub(crate) low_bytes: u64,
    pub(crate) reserved_level: Level,
    pub(crate) overflow: Overflow,
}

/// Largest `max_queue_records` the packed queue word can count.
pub(crate) const MAX_QUEUE_RECORDS: u64 = (1 << (64 - QUEUE_BYTES_BITS)) - 1;
/// Largest `max_queue_bytes` the packed queue word can count (1 TiB - 1).
pub(crate) const MAX_QUEUE_BYTES: u64 = QUEUE_BYTES_MASK;

/// Text buffers larger than this are not kept when a record is recycled (bytes).
const RECYCLE_MAX_TEXT: usize = 1024;

/// The queue: a preallocated ring of record pointers (16 bytes a slot) with its own count and
/// byte bounds, plus a pool of recycled records so that a steady stream of events allocates
/// nothing on the caller's thread and never frees memory across threads (which contends in the
/// system allocator).
pub(crate) struct Queue {
    ring: ArrayQueue<Box<Record>>,
    pool: ArrayQueue<Box<Record>>,
    limits: QueueLimits,
    counters: Arc<Counters>,
    lane: Option<Sender<(Record, Cause)>>,
    closed: AtomicBool,
    space: Mutex<()>,
    space_cv: Condvar,
    waiters: AtomicUsize,
}

/// Idle records the pool keeps at most: as many as fit in `max_bytes` at their minimum size.
fn pool_records(max_bytes: u64) -> usize {
    let n = max_bytes / std::mem::size_of::<Record>() as u64;
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

/// Evictions tried for one push under [`Overflow::DropOldest`] before dropping the new record.
const MAX_EVICTIONS_PER_PUSH: usize = 8;

impl Queue {
    pub(crate) fn new(
        limits: QueueLimits,
        counters: Arc<Counters>,
        lane: Option<Sender<(Record, Cause)>>,
    ) -> Arc<Queue> {
        let slots = usize::try_from(limits.max_records)
            .unwrap_or(usize::MAX)
            .max(1);
        Arc::new(Queue {
            ring: ArrayQueue::new(slots),
            // As many records as the queue can hold, within its byte bound: a burst that fits
            // in the queue is served from recycled records once the pool has warmed up (no
            // allocation, no page faults on the caller), and the memory a burst used stays
            // reserved for the next one, like a `Vec`'s capacity, instead of being freed.
            pool: ArrayQueue::new(slots.min(pool_records(limits.max_bytes))),
            limits,
            counters,
            lane,
            closed: AtomicBool::new(false),
            space: Mutex::new(()),
            space_cv: Condvar::new(),
            waiters: AtomicUsize::new(0),
        })
    }

    /// A blank record to fill: recycled when one is available (no allocation).
    #[inline]
    pub(crate) fn blank(&self) -> Box<Record> {
        self.pool.pop().unwrap_or_else(|| Box::new(Record::blank()))
    }

    /// Recycles finished records (worker side): each is cleared in place, keeping its text
    /// buffer, and goes back into the pool in its box (no copy: clearing writes the header and
    /// the two lengths; field slots and text bytes are only read, to drop what they own).
    pub(crate) fn recycle(&self, records: impl IntoIterator<Item = Box<Record>>) {
        for mut r in records {
            r.text.shrink_if_larger(RECYCLE_MAX_TEXT);
            r.clear_for_reuse();
            if self.pool.push(r).is_err() {
                return; // pool full: the rest are freed
            }
        }
    }

    /// Takes the oldest record (worker side).
    #[inline]
    pub(crate) fn pop(&self) -> Option<Box<Record>> {
        self.ring.pop()
    }

    /// Records in the ring now.
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Reserves room for one record of `size` bytes; returns the queue word after reserving.
    #[inline]
    fn try_reserve(&self, size: u64, high: bool) -> Option<u64> {
        let (n, b) = if high {
            (self.limits.max_records, self.limits.max_bytes)
        } else {
            (self.limits.low_records, self.limits.low_bytes)
        };
        let state = &self.counters.queue_state;
        let mut cur = state.load(Ordering::Relaxed);
        loop {
            let records = (cur >> QUEUE_BYTES_BITS) + 1;
            let bytes = (cur & QUEUE_BYTES_MASK) + size;
            if records > n || bytes > b {
                return None;
            }
            let next = (records << QUEUE_BYTES_BITS) | bytes;
            match state.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(next),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Releases dequeued records' share of the bounds (`records` records, `bytes` bytes).
    pub(crate) fn release(&self, records: u64, bytes: u64) {
        self.counters
            .queue_state
            .fetch_sub((records << QUEUE_BYTES_BITS) | bytes, Ordering::AcqRel);
        if self.waiters.load(Ordering::Acquire) > 0 {
            let _g = self.space.lock();
            self.space_cv.notify_all();
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn report_drop(&self, rec: Box<Record>, cause: Cause) {
        match &self.lane {
            Some(lane) => match lane.try_send((*rec, cause)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    Counters::add(&self.counters.dropped_unreported, 1);
                }
            },
            None => {
                let mut rec = rec;
                rec.clear_for_reuse();
                let _ = self.pool.push(rec);
            }
        }
    }

    /// Enqueues `rec` or drops it per the overflow policy; returns the queue word after
    /// enqueueing (`records << QUEUE_BYTES_BITS | bytes`), or `None` when dropped. Never does
    /// I/O; blocks only under [`Overflow::Block`], for at most its timeout.
    #[inline]
    pub(crate) fn push(&self, mut rec: Box<Record>) -> Option<u64> {
        if self.is_closed() {
            Counters::add(&self.counters.dropped_closed, 1);
            self.report_drop_silently(rec);
            return None;
        }
        let size = rec.estimated_size();
        rec.est_size = u32::try_from(size).unwrap_or(u32::MAX);
        let size = u64::from(rec.est_size);
        let high = rec.level <= self.limits.reserved_level;
        if size > self.limits.max_bytes {
            Counters::add(&self.counters.dropped_queue_full, 1);
            self.report_drop(rec, Cause::QueueFull);
            return None;
        }
        let mut evictions = 0;
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(state) = self.try_reserve(size, high) {
                // The reservation guarantees a free slot: the ring has `max_records` slots.
                return match self.ring.push(rec) {
                    Ok(()) => Some(state),
                    Err(rec) => {
                        self.release(1, u64::from(rec.est_size));
                        Counters::add(&self.counters.dropped_queue_full, 1);
                        self.report_drop(rec, Cause::QueueFull);
                        None
                    }
                };
            }
            match self.limits.overflow {
                Overflow::DropNewest => break,
                Overflow::DropOldest => {
                    if evictions >= MAX_EVICTIONS_PER_PUSH {
                        break;
                    }
                    match self.ring.pop() {
                        Some(old) => {
                            evictions += 1;
                            self.release(1, u64::from(old.est_size));
                            Counters::add(&self.counters.dropped_oldest, 1);
                            self.report_drop(old, Cause::Evicted);
                        }
                        None => break,
                    }
                }
                Overflow::Block(timeout) => {
                    let now = Instant::now();
                    let until = *deadline.get_or_insert(now + timeout);
                    if now >= until || self.is_closed() {
                        Counters::add(&self.counters.dropped_block_timeout, 1);
                        self.report_drop(rec, Cause::BlockTimeout);
                        return None;
                    }
                    self.waiters.fetch_add(1, Ordering::AcqRel);
                    if let Ok(g) = self.space.lock() {
                        // Bounded wait; the loop re-checks for room and the deadline.
                        let wait = (until - now).min(Duration::from_millis(50));
                        let _ = self.space_cv.wait_timeout(g, wait);
                    }
                    self.waiters.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        Counters::add(&self.counters.dropped_queue_full, 1);
        self.report_drop(rec, Cause::QueueFull);
        None
    }

    /// After shutdown the worker no longer reads the lane: just recycle.
    fn report_drop_silently(&self, mut rec: Box<Record>) {
        rec.clear_for_reuse();
        let _ = self.pool.push(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(level: Level, text_len: usize) -> Box<Record> {
        Box::new(
            Record::event(level, "t")
                .with_message(&"x".repeat(text_len))
                .build(),
        )
    }

    fn queue(
        max_records: u64,
        max_bytes: u64,
        overflow: Overflow,
    ) -> (Arc<Queue>, Arc<Queue>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let q = Queue::new(
            QueueLimits {
                max_records,
                max_bytes,
                low_records: max_records * 9 / 10,
                low_bytes: max_bytes / 10 * 9,
                reserved_level: Level::ERROR,
                overflow,
            },
            counters.clone(),
            None,
        );
        (q.clone(), q, counters)
    }

    #[test]
    fn errors_use_the_headroom() {
        let (q, _rx, c) = queue(10, u64::MAX, Overflow::DropNewest);
        for _ in 0..20 {
            q.push(rec(Level::INFO, 1));
        }
        assert_eq!(c.snapshot().enqueued, 9);
        for _ in 0..5 {
            q.push(rec(Level::ERROR, 1));
        }
        assert_eq!(c.snapshot().enqueued, 10);
        assert_eq!(c.dropped_queue_full.load(Ordering::Relaxed), 11 + 4);
    }

    #[test]
    fn drop_oldest_evicts() {
        let (q, rx, c) = queue(4, u64::MAX, Overflow::DropOldest);
        for i in 0..10 {
            q.push(Box::new(
                Record::event(Level::ERROR, "t")
                    .with_field("i", i as i64)
                    .build(),
            ));
        }
        let kept: Vec<i64> = std::iter::from_fn(|| rx.pop())
            .map(|r| match r.field("i") {
                Some(crate::Value::I64(v)) => v,
                _ => -1,
            })
            .collect();
        assert_eq!(kept, [6, 7, 8, 9]);
        assert_eq!(c.dropped_oldest.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn oversized_record_is_dropped_not_evicting() {
        let (q, rx, c) = queue(100, 2048, Overflow::DropOldest);
        q.push(rec(Level::ERROR, 10));
        q.push(rec(Level::ERROR, 10_000));
        assert_eq!(rx.len(), 1);
        assert_eq!(c.dropped_queue_full.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn block_times_out_and_counts() {
        let (q, _rx, c) = queue(1, u64::MAX, Overflow::Block(Duration::from_millis(20)));
        q.push(rec(Level::ERROR, 1));
        q.push(rec(Level::ERROR, 1));
        assert_eq!(c.dropped_block_timeout.load(Ordering::Relaxed), 1);
    }

    proptest! {
        #[test]
        fn never_exceeds_bounds_and_counts_exactly(
            sizes in proptest::collection::vec((0usize..3000, 0u8..5), 1..300),
            max_bytes in 2000u64..40_000,
            max_records in 1u64..50,
            drain_every in 1usize..20,
        ) {
            let (q, rx, c) = queue(max_records, max_bytes, Overflow::DropNewest);
            let levels = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE];
            for (i, (len, lvl)) in sizes.iter().enumerate() {
                q.push(rec(levels[*lvl as usize], *len));
                let st = c.snapshot();
                prop_assert!(st.queue_len <= max_records);
                prop_assert!(st.queue_bytes <= max_bytes);
                if i % drain_every == 0
                    && let Some(r) = rx.pop() {
                        q.release(1, u64::from(r.est_size));
                        c.taken.fetch_add(1, Ordering::Relaxed);
                }
            }
            let enq = c.snapshot().enqueued;
            let dropped = c.dropped_queue_full.load(Ordering::Relaxed);
            prop_assert_eq!(enq + dropped, sizes.len() as u64);
        }
    }
}
