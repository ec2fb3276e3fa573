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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing_core::Level;

use crate::Record;
use crate::stats::Counters;
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

pub(crate) struct Queue {
    tx: Sender<Record>,
    rx: Receiver<Record>,
    limits: QueueLimits,
    counters: Arc<Counters>,
    lane: Option<Sender<(Record, Cause)>>,
    closed: AtomicBool,
    space: Mutex<()>,
    space_cv: Condvar,
    waiters: AtomicUsize,
}

/// Evictions tried for one push under [`Overflow::DropOldest`] before dropping the new record.
const MAX_EVICTIONS_PER_PUSH: usize = 8;

impl Queue {
    pub(crate) fn new(
        limits: QueueLimits,
        counters: Arc<Counters>,
        lane: Option<Sender<(Record, Cause)>>,
    ) -> (Arc<Queue>, Receiver<Record>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let q = Arc::new(Queue {
            tx,
            rx: rx.clone(),
            limits,
            counters,
            lane,
            closed: AtomicBool::new(false),
            space: Mutex::new(()),
            space_cv: Condvar::new(),
            waiters: AtomicUsize::new(0),
        });
        (q, rx)
    }

    fn reserve(counter: &AtomicU64, amount: u64, limit: u64) -> bool {
        let mut cur = counter.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(amount);
            if next > limit {
                return false;
            }
            match counter.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    fn try_reserve(&self, size: u64, high: bool) -> bool {
        let (n, b) = if high {
            (self.limits.max_records, self.limits.max_bytes)
        } else {
            (self.limits.low_records, self.limits.low_bytes)
        };
        if !Self::reserve(&self.counters.queue_len, 1, n) {
            return false;
        }
        if !Self::reserve(&self.counters.queue_bytes, size, b) {
            self.counters.queue_len.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Releases a dequeued record's share of the bounds.
    pub(crate) fn release(&self, size: u32) {
        self.counters.queue_len.fetch_sub(1, Ordering::AcqRel);
        self.counters
            .queue_bytes
            .fetch_sub(u64::from(size), Ordering::AcqRel);
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

    /// Records in the channel now.
    pub(crate) fn channel_len(&self) -> usize {
        self.rx.len()
    }

    fn report_drop(&self, rec: Record, cause: Cause) {
        if let Some(lane) = &self.lane {
            match lane.try_send((rec, cause)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    Counters::add(&self.counters.dropped_unreported, 1);
                }
            }
        }
    }

    /// Enqueues `rec` or drops it per the overflow policy. Never does I/O; blocks only under
    /// [`Overflow::Block`], for at most its timeout.
    pub(crate) fn push(&self, mut rec: Record) {
        if self.is_closed() {
            Counters::add(&self.counters.dropped_closed, 1);
            return;
        }
        let size = rec.estimated_size();
        rec.est_size = u32::try_from(size).unwrap_or(u32::MAX);
        let size = u64::from(rec.est_size);
        let high = rec.level <= self.limits.reserved_level;
        if size > self.limits.max_bytes {
            Counters::add(&self.counters.dropped_queue_full, 1);
            self.report_drop(rec, Cause::QueueFull);
            return;
        }
        let mut evictions = 0;
        let mut deadline: Option<Instant> = None;
        loop {
            if self.try_reserve(size, high) {
                match self.tx.send(rec) {
                    Ok(()) => Counters::add(&self.counters.enqueued, 1),
                    Err(e) => {
                        self.release(e.0.est_size);
                        Counters::add(&self.counters.dropped_closed, 1);
                    }
                }
                return;
            }
            match self.limits.overflow {
                Overflow::DropNewest => break,
                Overflow::DropOldest => {
                    if evictions >= MAX_EVICTIONS_PER_PUSH {
                        break;
                    }
                    match self.rx.try_recv() {
                        Ok(old) => {
                            evictions += 1;
                            self.release(old.est_size);
                            Counters::add(&self.counters.dropped_oldest, 1);
                            self.report_drop(old, Cause::Evicted);
                        }
                        Err(_) => break,
                    }
                }
                Overflow::Block(timeout) => {
                    let now = Instant::now();
                    let until = *deadline.get_or_insert(now + timeout);
                    if now >= until || self.is_closed() {
                        Counters::add(&self.counters.dropped_block_timeout, 1);
                        self.report_drop(rec, Cause::BlockTimeout);
                        return;
                    }
                    self.waiters.fetch_add(1, Ordering::AcqRel);
                    if let Ok(g) = self.space.lock() {
                        // Re-check under the lock, then wait (bounded, and re-checked in the loop).
                        let wait = (until - now).min(Duration::from_millis(50));
                        let _ = self.space_cv.wait_timeout(g, wait);
                    }
                    self.waiters.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        Counters::add(&self.counters.dropped_queue_full, 1);
        self.report_drop(rec, Cause::QueueFull);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(level: Level, text_len: usize) -> Record {
        Record::event(level, "t").with_message(&"x".repeat(text_len)).build()
    }

    fn queue(max_records: u64, max_bytes: u64, overflow: Overflow) -> (Arc<Queue>, Receiver<Record>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let (q, rx) = Queue::new(
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
        (q, rx, counters)
    }

    #[test]
    fn errors_use_the_headroom() {
        let (q, _rx, c) = queue(10, u64::MAX, Overflow::DropNewest);
        for _ in 0..20 {
            q.push(rec(Level::INFO, 1));
        }
        assert_eq!(c.enqueued.load(Ordering::Relaxed), 9);
        for _ in 0..5 {
            q.push(rec(Level::ERROR, 1));
        }
        assert_eq!(c.enqueued.load(Ordering::Relaxed), 10);
        assert_eq!(c.dropped_queue_full.load(Ordering::Relaxed), 11 + 4);
    }

    #[test]
    fn drop_oldest_evicts() {
        let (q, rx, c) = queue(4, u64::MAX, Overflow::DropOldest);
        for i in 0..10 {
            q.push(Record::event(Level::ERROR, "t").with_field("i", i as i64).build());
        }
        let kept: Vec<i64> = rx
            .try_iter()
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
                prop_assert!(c.queue_len.load(Ordering::Relaxed) <= max_records);
                prop_assert!(c.queue_bytes.load(Ordering::Relaxed) <= max_bytes);
                let real: u64 = rx.try_iter().take(0).count() as u64;
                prop_assert_eq!(real, 0);
                if i % drain_every == 0
                    && let Ok(r) = rx.try_recv() {
                        q.release(r.est_size);
                }
            }
            let enq = c.enqueued.load(Ordering::Relaxed);
            let dropped = c.dropped_queue_full.load(Ordering::Relaxed);
            prop_assert_eq!(enq + dropped, sizes.len() as u64);
        }
    }
}
