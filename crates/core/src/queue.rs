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
//!
//! The bounds count what waits in the queue: records the worker has taken for its next batch
//! leave the queue word (and `Stats::queue_len`/`queue_bytes`) as it takes them. So that a
//! full batch still wakes the worker, the worker publishes what it holds in a second word,
//! [`Queue::staged`], which the caller adds to the queue word when it decides whether to
//! nudge (see `Shared::push`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use tracing_core::Level;

use crate::Record;
use crate::capture::span;
use crate::stats::{Counters, QUEUE_BYTES_BITS, QUEUE_BYTES_MASK, QUEUE_CLOSED, queue_records};
use crate::undelivered::Cause;

/// What to do with a record when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the new record (default; the caller never waits).
    #[default]
    DropNewest,
    /// Evict the oldest queued records that rank below the new one to make room; otherwise
    /// drop the new record, as [`DropNewest`](Self::DropNewest) does.
    ///
    /// The exact rule, for a new record of level `L` that does not fit:
    ///
    /// - A queued record may be evicted if its level is **strictly less severe** than `L`
    ///   (`TRACE` < `DEBUG` < `INFO` < `WARN` < `ERROR`), or if it is **the same level and
    ///   below the reserved level** (see `with_reserved`; default ERROR). So records at or
    ///   above the reserved level are never evicted at all (not by a lower level, not by each
    ///   other: a flood of errors keeps the first ones, which usually explain the rest), while
    ///   a flood of an ordinary level keeps its newest records.
    /// - Of those, the oldest go first, looking at most 32 records deep from the head of the
    ///   queue (the evictable records must be among the 32 oldest).
    /// - Whether eviction can make room (by count and by bytes, within the new record's share
    ///   of the queue) is decided before anything is evicted: either enough records are
    ///   evicted and the new record is queued, in one step, or nothing is evicted and the new
    ///   record is dropped (counted in `dropped_queue_full`). A record is never evicted for a
    ///   new record that is then dropped anyway.
    ///
    /// Trade-off: the queue's ring can only be popped at its head, so the records looked at
    /// and kept (an `ERROR` at the head when a `DEBUG` looks) move to a small side buffer that
    /// stays the head of the queue and is sent first; the worker then takes a lock per record
    /// while that buffer is not empty. Evicting takes a lock too. Both happen only while the
    /// queue is full under this policy, never on the usual path.
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

/// Largest `max_queue_records` the packed queue word can count (8 388 607: 23 bits, between
/// the closed bit and the 40 bits of bytes).
pub(crate) const MAX_QUEUE_RECORDS: u64 = (QUEUE_CLOSED >> QUEUE_BYTES_BITS) - 1;
/// Largest `max_queue_bytes` the packed queue word can count (1 TiB - 1).
pub(crate) const MAX_QUEUE_BYTES: u64 = QUEUE_BYTES_MASK;

/// Text buffers larger than this are not kept when a record is recycled (bytes).
const RECYCLE_MAX_TEXT: usize = 1024;

/// How deep (in records from the head) [`Overflow::DropOldest`] looks for evictable records;
/// also the side buffer's fixed capacity. At most 64 (a bit mask marks the picks).
const EVICT_SCAN: usize = 32;

/// How long [`Queue::drain_after_close`] waits for records reserved before the close to land.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// The queue word for `records` records of `bytes` bytes.
#[inline]
const fn pack(records: u64, bytes: u64) -> u64 {
    (records << QUEUE_BYTES_BITS) | bytes
}

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Over the record or byte bound (of the record's share).
    Full,
    /// The queue is closed.
    Closed,
}

/// May a queued record of level `old` be evicted for a new record of level `new` (see
/// [`Overflow::DropOldest`])? (`Level`'s order: `ERROR < WARN < INFO < DEBUG < TRACE`; greater
/// is less severe.)
#[inline]
fn may_evict(old: Level, new: Level, reserved: Level) -> bool {
    old > new || (old == new && old > reserved)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The queue: a preallocated ring of record pointers (16 bytes a slot) with its own count and
/// byte bounds, plus a pool of recycled records so that a steady stream of events allocates
/// nothing on the caller's thread and never frees memory across threads (which contends in the
/// system allocator).
pub(crate) struct Queue {
    ring: ArrayQueue<Box<Record>>,
    /// The head of the queue when not empty: records a drop-oldest scan took off the ring's
    /// head and kept (see [`Overflow::DropOldest`]). Older than everything in the ring, so
    /// [`pop`](Self::pop) takes from here first. Never holds more than [`EVICT_SCAN`].
    held: Mutex<VecDeque<Box<Record>>>,
    /// `held.len()`, readable without the lock (written under it).
    held_len: AtomicUsize,
    pool: ArrayQueue<Box<Record>>,
    /// Cleared span contexts for `on_new_span` to fill in place (as large as `pool`; see
    /// `capture::span`).
    pub(crate) span_pool: span::CtxPool,
    limits: QueueLimits,
    counters: Arc<Counters>,
    lane: Option<Sender<(Box<Record>, Cause)>>,
    space: Mutex<()>,
    space_cv: Condvar,
    waiters: AtomicUsize,
    /// What the worker has taken out of the queue and not yet sent (its partial batch, and
    /// records it is moving to the spool), packed as the queue word is:
    /// `records << QUEUE_BYTES_BITS | estimated bytes`. Written by the worker only, a few
    /// times per batch; read by the caller on every push (one `Relaxed` load of a line that
    /// stays in its cache between batches). It has no closed bit: the count is every bit above
    /// the bytes. See [`stage_and_take`](Self::stage_and_take).
    staged: CachePadded<AtomicU64>,
    /// Whether [`refuse_before_capture`](Self::refuse_before_capture) may refuse: drop-newest,
    /// no drop reporting.
    refuse_early: bool,
    #[cfg(test)]
    hooks: tests::Hooks,
}

/// Idle records the pool keeps at most: as many as fit in `max_bytes` at their minimum size.
fn pool_records(max_bytes: u64) -> usize {
    let n = max_bytes / std::mem::size_of::<Record>() as u64;
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

impl Queue {
    pub(crate) fn new(
        limits: QueueLimits,
        counters: Arc<Counters>,
        lane: Option<Sender<(Box<Record>, Cause)>>,
    ) -> Arc<Queue> {
        let slots = usize::try_from(limits.max_records)
            .unwrap_or(usize::MAX)
            .max(1);
        // Preallocated, so that a scan never allocates on the caller's thread.
        let held = if limits.overflow == Overflow::DropOldest {
            VecDeque::with_capacity(EVICT_SCAN)
        } else {
            VecDeque::new()
        };
        let refuse_early = lane.is_none() && limits.overflow == Overflow::DropNewest;
        Arc::new(Queue {
            ring: ArrayQueue::new(slots),
            held: Mutex::new(held),
            held_len: AtomicUsize::new(0),
            // As many records as the queue can hold, within its byte bound: a burst that fits
            // in the queue is served from recycled records once the pool has warmed up (no
            // allocation, no page faults on the caller), and the memory a burst used stays
            // reserved for the next one, like a `Vec`'s capacity, instead of being freed.
            pool: ArrayQueue::new(slots.min(pool_records(limits.max_bytes))),
            span_pool: span::CtxPool::new(slots.min(pool_records(limits.max_bytes))),
            limits,
            counters,
            lane,
            space: Mutex::new(()),
            space_cv: Condvar::new(),
            waiters: AtomicUsize::new(0),
            staged: CachePadded::new(AtomicU64::new(0)),
            refuse_early,
            #[cfg(test)]
            hooks: tests::Hooks::default(),
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
            // The span context goes back to its own pool when this was its last holder (the
            // caller then fills it in place: no allocation freed across threads).
            if let Some(sc) = r.span.take() {
                span::recycle_ctx(&self.span_pool, sc);
            }
            r.text.shrink_if_larger(RECYCLE_MAX_TEXT);
            r.clear_for_reuse();
            if self.pool.push(r).is_err() {
                return; // pool full: the rest are freed
            }
        }
    }

    /// Takes the oldest record (worker side). Account for what you take with
    /// [`take_accounted`](Self::take_accounted), once per batch.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Box<Record>> {
        if self.held_len.load(Ordering::Acquire) > 0 {
            let mut held = lock(&self.held);
            if let Some(r) = held.pop_front() {
                self.held_len.store(held.len(), Ordering::Release);
                return Some(r);
            }
        }
        self.ring.pop()
    }

    /// Caller side, **before** capturing a record of `level`: whether it would certainly be
    /// dropped because the queue is full by record count (for the level's share), in which case
    /// the drop is counted (`dropped_queue_full`, as [`push`](Self::push) counts it) and the
    /// caller captures nothing: a full queue costs one load, no record from the pool, no
    /// allocation and no capture. Only under [`Overflow::DropNewest`] with no drop reporting
    /// configured (an undelivered callback or dead-letter folder needs the record's content;
    /// the other policies may still make room); otherwise always `false`. A record refused
    /// here is one `push` would also have refused an instant later, bar the worker taking a
    /// batch in between (the same race `push` has with it).
    #[inline]
    pub(crate) fn refuse_before_capture(&self, level: Level) -> bool {
        if !self.refuse_early {
            return false;
        }
        let (n, _) = self.bounds(level <= self.limits.reserved_level);
        let cur = self.counters.queue_state.load(Ordering::Relaxed);
        if cur & QUEUE_CLOSED == 0 && queue_records(cur) >= n {
            Counters::add(&self.counters.dropped_queue_full, 1);
            return true;
        }
        false
    }

    /// Records in the queue now (a record a drop-oldest scan is moving may be missed for a
    /// moment).
    pub(crate) fn len(&self) -> usize {
        self.ring.len() + self.held_len.load(Ordering::Acquire)
    }

    #[inline]
    fn bounds(&self, high: bool) -> (u64, u64) {
        if high {
            (self.limits.max_records, self.limits.max_bytes)
        } else {
            (self.limits.low_records, self.limits.low_bytes)
        }
    }

    /// Reserves room for one record of `size` bytes; returns the queue word after reserving
    /// (never with the closed bit: a closed word refuses).
    #[inline]
    fn try_reserve(&self, size: u64, high: bool) -> Result<u64, Refused> {
        let (n, b) = self.bounds(high);
        let state = &self.counters.queue_state;
        let mut cur = state.load(Ordering::Relaxed);
        loop {
            if cur & QUEUE_CLOSED != 0 {
                return Err(Refused::Closed);
            }
            let records = (cur >> QUEUE_BYTES_BITS) + 1;
            let bytes = (cur & QUEUE_BYTES_MASK) + size;
            if records > n || bytes > b {
                return Err(Refused::Full);
            }
            let next = pack(records, bytes);
            match state.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(next),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Worker side: accounts for `records` records of `bytes` estimated bytes taken with
    /// [`pop`](Self::pop): adds them to the `taken` counter and gives their room back, as one
    /// step for [`Stats`](crate::Stats) snapshots (which therefore never count a batch twice).
    /// Call once per batch: it takes a short lock.
    pub(crate) fn take_accounted(&self, records: u64, bytes: u64) {
        if records == 0 && bytes == 0 {
            return;
        }
        self.counters.consistent_update(|| {
            Counters::add(&self.counters.taken, records);
            self.counters
                .queue_state
                .fetch_sub(pack(records, bytes), Ordering::AcqRel);
        });
        self.wake_waiters();
    }

    /// Worker side: as [`take_accounted`](Self::take_accounted), for records the worker keeps
    /// for a while (its next batch; records on their way to the spool): adds them to
    /// [`staged`](Self::staged) **before** they leave the queue word. Give them back with
    /// [`unstage`](Self::unstage) once they are sent, spooled or otherwise resolved.
    ///
    /// Why this order: a caller decides whether a batch is ready from the queue word its
    /// reservation returned plus `staged`. If its compare-and-swap comes before this release
    /// in the word's order, the word it got still counts these records; if after, it acquired
    /// this release and so reads the `staged` written before it. Either way they are counted
    /// (at worst twice, which costs one early wake-up), so a full batch always nudges.
    pub(crate) fn stage_and_take(&self, records: u64, bytes: u64) {
        if records == 0 && bytes == 0 {
            return;
        }
        // The worker is the only writer: no read-modify-write needed.
        let cur = self.staged.load(Ordering::Relaxed);
        self.staged
            .store(cur + pack(records, bytes), Ordering::Relaxed);
        // Ordered before the word's release by that release (AcqRel).
        self.take_accounted(records, bytes);
    }

    /// Worker side: records given to [`stage_and_take`](Self::stage_and_take) left the worker's
    /// hands (sent as a batch, spooled, resolved). Lowering `staged` late only costs callers an
    /// early nudge, never a missed one.
    pub(crate) fn unstage(&self, records: u64, bytes: u64) {
        // No closed bit here: the count takes every bit above the bytes.
        let cur = self.staged.load(Ordering::Relaxed);
        let (n, b) = (cur >> QUEUE_BYTES_BITS, cur & QUEUE_BYTES_MASK);
        debug_assert!(n >= records && b >= bytes, "unstaging more than was staged");
        let next = pack(n.saturating_sub(records), b.saturating_sub(bytes));
        self.staged.store(next, Ordering::Relaxed);
    }

    /// Caller side: what the worker holds out of the queue (see
    /// [`stage_and_take`](Self::stage_and_take)), packed as the queue word is. Read it after
    /// [`push`](Self::push), whose reservation acquires the worker's releases.
    #[inline]
    pub(crate) fn staged(&self) -> u64 {
        self.staged.load(Ordering::Relaxed)
    }

    /// Wakes callers blocked under [`Overflow::Block`] after room was given back or the queue
    /// closed. The fence pairs with the one a waiter runs between registering and re-trying
    /// its reservation: either it sees the room, or this sees it registered and notifies under
    /// the lock it holds until it waits.
    fn wake_waiters(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _g = lock(&self.space);
            self.space_cv.notify_all();
        }
    }

    /// Closes the queue: from now on every push is dropped (counted in `dropped_closed`), even
    /// one that had already checked [`is_closed`](Self::is_closed). Idempotent. Records
    /// already reserved still arrive: the worker takes them with
    /// [`drain_after_close`](Self::drain_after_close).
    pub(crate) fn close(&self) {
        self.counters
            .queue_state
            .fetch_or(QUEUE_CLOSED, Ordering::AcqRel);
        self.wake_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.counters.queue_state.load(Ordering::Acquire) & QUEUE_CLOSED != 0
    }

    /// Worker side, after [`close`](Self::close): takes every record left in the queue,
    /// oldest first, **including** those whose callers reserved room before the close but had
    /// not yet put them in the ring (it waits for them: they are a few instructions away, so
    /// it spins, then yields, for at most a second in all; a caller descheduled longer than
    /// that leaves its record in the ring, counted as enqueued). The records are accounted as
    /// taken (as by [`take_accounted`](Self::take_accounted)): add their number to the
    /// worker's own count, and do not account them again.
    #[allow(
        clippy::vec_box,
        reason = "records stay in the boxes the callers filled, to be recycled into the pool"
    )]
    pub(crate) fn drain_after_close(&self) -> Vec<Box<Record>> {
        debug_assert!(self.is_closed(), "drain_after_close before close");
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut deadline = None;
        let mut spins = 0u32;
        loop {
            while let Some(r) = self.pop() {
                bytes += u64::from(r.est_size);
                out.push(r);
            }
            // No reservation can start now, so the word's count only falls: to what we hold
            // once every reserved record has landed (and every eviction under way is done).
            let state = self.counters.queue_state.load(Ordering::Acquire);
            if queue_records(state) <= out.len() as u64 {
                break;
            }
            #[cfg(test)]
            self.hooks.run_while_draining();
            spins += 1;
            if spins < 128 {
                std::hint::spin_loop();
            } else {
                let now = Instant::now();
                if now >= *deadline.get_or_insert(now + DRAIN_WAIT) {
                    break;
                }
                std::thread::yield_now();
            }
        }
        self.take_accounted(out.len() as u64, bytes);
        out
    }

    fn report_drop(&self, rec: Box<Record>, cause: Cause) {
        match &self.lane {
            // In its box: the worker reports it, then recycles it into the pool.
            Some(lane) => match lane.try_send((rec, cause)) {
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
    /// enqueueing (`records << QUEUE_BYTES_BITS | bytes`, never with the closed bit, so a
    /// plain shift reads the count), or `None` when dropped. Never does I/O; blocks only under
    /// [`Overflow::Block`], for at most its timeout.
    #[inline]
    pub(crate) fn push(&self, mut rec: Box<Record>) -> Option<u64> {
        if self.is_closed() {
            return self.drop_closed(rec);
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
        match self.try_reserve(size, high) {
            Ok(state) => return self.put(rec, state),
            Err(Refused::Closed) => return self.drop_closed(rec),
            Err(Refused::Full) => {}
        }
        #[cfg(test)]
        self.hooks.run_after_failed_reserve();
        match self.limits.overflow {
            Overflow::DropNewest => {}
            Overflow::DropOldest => match self.evict_for(rec.level, size, high) {
                Ok(state) => return self.put(rec, state),
                Err(Refused::Closed) => return self.drop_closed(rec),
                Err(Refused::Full) => {}
            },
            Overflow::Block(timeout) => return self.block(rec, size, high, timeout),
        }
        Counters::add(&self.counters.dropped_queue_full, 1);
        self.report_drop(rec, Cause::QueueFull);
        None
    }

    /// Puts a record with a reservation (`state`) in the ring.
    #[inline]
    fn put(&self, rec: Box<Record>, state: u64) -> Option<u64> {
        #[cfg(test)]
        self.hooks.run_after_reserve();
        // The reservation guarantees a free slot: the ring has `max_records` slots, and holds
        // no more records than the queue word counts.
        match self.ring.push(rec) {
            Ok(()) => Some(state),
            Err(rec) => {
                self.counters.consistent_update(|| {
                    self.counters
                        .queue_state
                        .fetch_sub(pack(1, u64::from(rec.est_size)), Ordering::AcqRel)
                });
                self.wake_waiters();
                Counters::add(&self.counters.dropped_queue_full, 1);
                self.report_drop(rec, Cause::QueueFull);
                None
            }
        }
    }

    fn drop_closed(&self, rec: Box<Record>) -> Option<u64> {
        Counters::add(&self.counters.dropped_closed, 1);
        self.report_drop_silently(rec);
        None
    }

    /// [`Overflow::DropOldest`]: makes room for a record of `level` and `size` bytes by
    /// evicting older, strictly less severe records, and reserves it, in one step; or evicts
    /// nothing. Returns the queue word after reserving.
    #[cold]
    fn evict_for(&self, level: Level, size: u64, high: bool) -> Result<u64, Refused> {
        let (max_n, max_b) = self.bounds(high);
        let state = &self.counters.queue_state;
        let mut held = lock(&self.held);
        // The word moves under us (reservations, the worker's takes): a few tries.
        for _ in 0..8 {
            let cur = state.load(Ordering::Acquire);
            if cur & QUEUE_CLOSED != 0 {
                return Err(Refused::Closed);
            }
            let need_n = (queue_records(cur) + 1).saturating_sub(max_n);
            let need_b = ((cur & QUEUE_BYTES_MASK) + size).saturating_sub(max_b);
            if need_n == 0 && need_b == 0 {
                // Room appeared meanwhile.
                match self.try_reserve(size, high) {
                    Err(Refused::Full) => continue,
                    other => return other,
                }
            }
            // The oldest evictable records within the scan depth. Records looked at stay in
            // `held`, the head of the queue, whatever happens.
            let (mut picks, mut k, mut kb) = (0u64, 0u64, 0u64);
            let mut i = 0;
            while k < need_n || kb < need_b {
                if i == held.len() {
                    if held.len() == EVICT_SCAN {
                        break;
                    }
                    let Some(r) = self.ring.pop() else { break };
                    held.push_back(r);
                    self.held_len.store(held.len(), Ordering::Release);
                }
                let r = &held[i];
                if may_evict(r.level, level, self.limits.reserved_level) {
                    picks |= 1 << i;
                    k += 1;
                    kb += u64::from(r.est_size);
                }
                i += 1;
            }
            if k < need_n || kb < need_b {
                return Err(Refused::Full); // eviction cannot make room: evict nothing
            }
            // Swap the evicted records' share for the new record's, and count them, as one
            // step (for the bounds, and for snapshots).
            let next = cur - pack(k, kb) + pack(1, size);
            let swapped = self.counters.consistent_update(|| {
                let ok = state
                    .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if ok {
                    Counters::add(&self.counters.dropped_oldest, k);
                }
                ok
            });
            if !swapped {
                continue;
            }
            for j in (0..EVICT_SCAN.min(held.len())).rev() {
                if picks & (1 << j) != 0
                    && let Some(old) = held.remove(j)
                {
                    self.report_drop(old, Cause::Evicted);
                }
            }
            self.held_len.store(held.len(), Ordering::Release);
            return Ok(next);
        }
        Err(Refused::Full)
    }

    /// [`Overflow::Block`]: waits for room until `timeout` has passed.
    #[cold]
    fn block(&self, rec: Box<Record>, size: u64, high: bool, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register, then re-try under the lock: a release after the re-try sees us
            // registered (the fences in between) and notifies under the lock, which we hold
            // until `wait` releases it, so no wake-up is missed.
            self.waiters.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let outcome = {
                let g = lock(&self.space);
                match self.try_reserve(size, high) {
                    Err(Refused::Full) => {
                        let now = Instant::now();
                        if now >= deadline {
                            Some(Err(Refused::Full))
                        } else {
                            #[cfg(test)]
                            self.hooks.count_wait();
                            let _ = self.space_cv.wait_timeout(g, deadline - now);
                            None
                        }
                    }
                    done => Some(done),
                }
            }; // the lock is released here, before `put` (which may take it)
            self.waiters.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                None => {}
                Some(Ok(state)) => return self.put(rec, state),
                Some(Err(Refused::Closed)) => return self.drop_closed(rec),
                Some(Err(Refused::Full)) => {
                    Counters::add(&self.counters.dropped_block_timeout, 1);
                    self.report_drop(rec, Cause::BlockTimeout);
                    return None;
                }
            }
        }
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
    use std::sync::atomic::{AtomicBool, AtomicU64};

    type Hook = Box<dyn Fn() + Send + Sync>;

    /// Test-only interception points on the caller's path.
    #[derive(Default)]
    pub(super) struct Hooks {
        /// Between a successful reservation and the ring push.
        after_reserve: Mutex<Option<Hook>>,
        /// Right after the first reservation failed (before the overflow policy acts).
        after_failed_reserve: Mutex<Option<Hook>>,
        /// Each time the drain after close waits for a reserved record to land.
        while_draining: Mutex<Option<Hook>>,
        /// Times a blocked caller waited on the condition variable.
        waits: AtomicUsize,
    }

    impl Hooks {
        pub(super) fn run_after_reserve(&self) {
            if let Some(h) = lock(&self.after_reserve).as_ref() {
                h();
            }
        }
        pub(super) fn run_after_failed_reserve(&self) {
            if let Some(h) = lock(&self.after_failed_reserve).as_ref() {
                h();
            }
        }
        pub(super) fn run_while_draining(&self) {
            if let Some(h) = lock(&self.while_draining).as_ref() {
                h();
            }
        }
        pub(super) fn count_wait(&self) {
            self.waits.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn rec(level: Level, text_len: usize) -> Box<Record> {
        Box::new(
            Record::event(level, "t")
                .with_message(&"x".repeat(text_len))
                .build(),
        )
    }

    fn numbered(level: Level, i: i64) -> Box<Record> {
        Box::new(Record::event(level, "t").with_field("i", i).build())
    }

    fn number(r: &Record) -> i64 {
        match r.field("i") {
            Some(crate::Value::I64(v)) => v,
            _ => -1,
        }
    }

    fn limits(max_records: u64, max_bytes: u64, overflow: Overflow) -> QueueLimits {
        QueueLimits {
            max_records,
            max_bytes,
            low_records: max_records * 9 / 10,
            low_bytes: max_bytes / 10 * 9,
            reserved_level: Level::ERROR,
            overflow,
        }
    }

    fn queue(
        max_records: u64,
        max_bytes: u64,
        overflow: Overflow,
    ) -> (Arc<Queue>, Arc<Queue>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let q = Queue::new(
            limits(max_records, max_bytes, overflow),
            counters.clone(),
            None,
        );
        (q.clone(), q, counters)
    }

    type Lane = crossbeam_channel::Receiver<(Box<Record>, Cause)>;

    /// A queue whose drops (evictions included) come out of a lane, as the worker sees them.
    fn queue_with_lane(max_records: u64, overflow: Overflow) -> (Arc<Queue>, Arc<Counters>, Lane) {
        let counters = Arc::new(Counters::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        let q = Queue::new(
            limits(max_records, u64::MAX >> 30, overflow),
            counters.clone(),
            Some(tx),
        );
        (q, counters, rx)
    }

    /// Pops everything, accounting it as the worker does.
    #[allow(clippy::vec_box, reason = "as the worker keeps them")]
    fn take_all(q: &Queue) -> Vec<Box<Record>> {
        let v: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let bytes = v.iter().map(|r| u64::from(r.est_size)).sum();
        q.take_accounted(v.len() as u64, bytes);
        v
    }

    /// Records the worker stages leave the queue word (and `Stats`) but stay visible in
    /// `staged` until unstaged, so queue word + staged counts everything not yet sent.
    #[test]
    fn staged_records_leave_the_word_but_stay_counted() {
        let (q, _rx, c) = queue(10, u64::MAX >> 30, Overflow::DropNewest);
        let mut state = 0;
        for _ in 0..3 {
            state = q.push(rec(Level::INFO, 1)).unwrap();
        }
        let size = (state & QUEUE_BYTES_MASK) / 3;
        let taken: Vec<_> = std::iter::from_fn(|| q.pop()).take(2).collect();
        q.stage_and_take(2, 2 * size);
        assert_eq!(q.staged(), pack(2, 2 * size));
        let st = c.snapshot();
        assert_eq!((st.queue_len, st.queue_bytes, st.enqueued), (1, size, 3));
        assert_eq!(c.taken.load(Ordering::Relaxed), 2);
        let word = q.push(rec(Level::INFO, 1)).unwrap();
        let total = (word >> QUEUE_BYTES_BITS) + (q.staged() >> QUEUE_BYTES_BITS);
        assert_eq!(total, 4, "queued + staged");
        q.unstage(2, 2 * size);
        assert_eq!(q.staged(), 0);
        drop(taken);
    }

    #[test]
    fn errors_use_the_headroom() {
        let (q, _rx, c) = queue(10, u64::MAX >> 30, Overflow::DropNewest);
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
    fn drop_oldest_evicts_less_severe_records_oldest_first() {
        let (q, rx, c) = queue(4, u64::MAX >> 30, Overflow::DropOldest);
        for i in 0..4 {
            q.push(numbered(Level::DEBUG, i));
        }
        for i in 4..7 {
            q.push(numbered(Level::ERROR, i));
        }
        // DEBUG has the low share (3 of 4): the 4th DEBUG evicts the 1st; the first ERROR takes
        // the headroom, the next two evict the two oldest DEBUGs left.
        let kept: Vec<i64> = std::iter::from_fn(|| rx.pop())
            .map(|r| number(&r))
            .collect();
        assert_eq!(kept, [3, 4, 5, 6]);
        assert_eq!(c.dropped_oldest.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn drop_oldest_never_evicts_reserved_records() {
        let (q, rx, c) = queue(4, u64::MAX >> 30, Overflow::DropOldest);
        for i in 0..10 {
            q.push(numbered(Level::ERROR, i));
        }
        let kept: Vec<i64> = std::iter::from_fn(|| rx.pop())
            .map(|r| number(&r))
            .collect();
        assert_eq!(kept, [0, 1, 2, 3]);
        assert_eq!(c.dropped_oldest.load(Ordering::Relaxed), 0);
        assert_eq!(c.dropped_queue_full.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn drop_oldest_keeps_the_newest_of_an_ordinary_level() {
        let (q, rx, c) = queue(10, u64::MAX >> 30, Overflow::DropOldest);
        for i in 0..30 {
            assert!(q.push(numbered(Level::INFO, i)).is_some());
        }
        let kept: Vec<i64> = std::iter::from_fn(|| rx.pop())
            .map(|r| number(&r))
            .collect();
        assert_eq!(kept, (21..30).collect::<Vec<_>>()); // INFO's share: 9 of 10
        assert_eq!(c.dropped_oldest.load(Ordering::Relaxed), 21);
    }

    /// Was: the DEBUG evicted 8 records (as many as one push tried), still did not fit (it
    /// needs the queue below its 90-record share) and was dropped too.
    #[test]
    fn drop_oldest_does_not_evict_for_a_record_it_then_drops() {
        let (q, c, lane) = queue_with_lane(100, Overflow::DropOldest);
        for i in 0..90 {
            assert!(q.push(numbered(Level::INFO, i)).is_some());
        }
        for i in 90..99 {
            assert!(q.push(numbered(Level::ERROR, i)).is_some());
        }
        assert_eq!(c.snapshot().queue_len, 99);
        assert_eq!(q.push(numbered(Level::DEBUG, 99)), None);
        let st = c.snapshot();
        assert_eq!(st.dropped_oldest, 0);
        assert_eq!(st.dropped_queue_full, 1);
        assert_eq!(st.queue_len, 99);
        assert_eq!(st.enqueued, 99);
        let drops: Vec<_> = lane.try_iter().collect();
        assert_eq!(drops.len(), 1);
        assert_eq!(drops[0].1, Cause::QueueFull);
        assert_eq!(number(&drops[0].0), 99);
        let all: Vec<i64> = take_all(&q).iter().map(|r| number(r)).collect();
        assert_eq!(all, (0..99).collect::<Vec<_>>());
    }

    /// Was: 91 delivered, none of them an ERROR (DEBUG evicted the errors).
    #[test]
    fn drop_oldest_keeps_the_errors_a_debug_flood_follows() {
        let (q, c, lane) = queue_with_lane(100, Overflow::DropOldest);
        for i in 0..10 {
            q.push(numbered(Level::ERROR, i));
        }
        for i in 10..210 {
            assert!(q.push(numbered(Level::DEBUG, i)).is_some());
        }
        // DEBUG has the low share (90): the 10 errors, then the newest 80 debug records (each
        // DEBUG past the share evicted the oldest DEBUG, never an ERROR).
        let delivered: Vec<i64> = take_all(&q).iter().map(|r| number(r)).collect();
        let want: Vec<i64> = (0..10).chain(130..210).collect();
        assert_eq!(delivered, want);
        let st = c.snapshot();
        assert_eq!(st.dropped_oldest, 120);
        assert_eq!(st.dropped_queue_full, 0);
        assert_eq!(st.enqueued, 210);
        let evicted: Vec<_> = lane.try_iter().collect();
        assert_eq!(evicted.len(), 120);
        assert!(
            evicted
                .iter()
                .all(|(r, cause)| *cause == Cause::Evicted && r.level == Level::DEBUG)
        );
    }

    #[test]
    fn drop_oldest_looks_past_records_it_may_not_evict() {
        let (q, c, lane) = queue_with_lane(10, Overflow::DropOldest);
        // Two ERRORs at the head, then INFOs: a new WARN evicts the oldest INFO, and the
        // ERRORs stay first.
        q.push(numbered(Level::ERROR, 0));
        q.push(numbered(Level::ERROR, 1));
        for i in 2..9 {
            q.push(numbered(Level::INFO, i));
        }
        assert!(q.push(numbered(Level::WARN, 9)).is_some());
        let evicted: Vec<i64> = lane.try_iter().map(|(r, _)| number(&r)).collect();
        assert_eq!(evicted, [2]);
        let order: Vec<i64> = take_all(&q).iter().map(|r| number(r)).collect();
        assert_eq!(order, [0, 1, 3, 4, 5, 6, 7, 8, 9]);
        let st = c.snapshot();
        assert_eq!(st.enqueued, 10);
        assert_eq!(st.dropped_oldest, 1);
        assert_eq!(st.queue_len, 0);
    }

    #[test]
    fn oversized_record_is_dropped_not_evicting() {
        let (q, rx, c) = queue(100, 2048, Overflow::DropOldest);
        q.push(rec(Level::ERROR, 10));
        q.push(rec(Level::ERROR, 10_000));
        assert_eq!(rx.len(), 1);
        assert_eq!(c.dropped_queue_full.load(Ordering::Relaxed), 1);
    }

    /// A full queue refuses before capture (counted as a queue-full drop) only where the drop
    /// would be certain and silent: drop-newest, no lane; the level's share counts.
    #[test]
    fn refuses_before_capture_only_when_certain() {
        let (q, _rx, c) = queue(10, u64::MAX >> 30, Overflow::DropNewest);
        for _ in 0..9 {
            assert!(!q.refuse_before_capture(Level::INFO));
            q.push(rec(Level::INFO, 1));
        }
        // INFO's share (90 %) is full; ERROR may still use the headroom.
        assert!(q.refuse_before_capture(Level::INFO));
        assert!(!q.refuse_before_capture(Level::ERROR));
        q.push(rec(Level::ERROR, 1));
        assert!(q.refuse_before_capture(Level::ERROR));
        let st = c.snapshot();
        assert_eq!((st.enqueued, st.dropped_queue_full), (10, 2));
        // A drop to report (lane), or a policy that may make room: never refused early.
        let (q, c, _lane) = queue_with_lane(1, Overflow::DropNewest);
        q.push(rec(Level::ERROR, 1));
        assert!(!q.refuse_before_capture(Level::ERROR));
        let (q2, _rx, _) = queue(1, u64::MAX >> 30, Overflow::DropOldest);
        q2.push(rec(Level::ERROR, 1));
        assert!(!q2.refuse_before_capture(Level::ERROR));
        assert_eq!(c.snapshot().dropped_queue_full, 0);
    }

    #[test]
    fn block_times_out_and_counts() {
        let (q, _rx, c) = queue(
            1,
            u64::MAX >> 30,
            Overflow::Block(Duration::from_millis(20)),
        );
        q.push(rec(Level::ERROR, 1));
        q.push(rec(Level::ERROR, 1));
        assert_eq!(c.dropped_block_timeout.load(Ordering::Relaxed), 1);
    }

    /// Was: room given back between the failed reservation and the wait was missed (the
    /// caller slept up to 50 ms on a queue with room). Now it re-tries under the lock after
    /// registering, and never waits.
    #[test]
    fn block_sees_room_released_before_it_waits() {
        let (q, _rx, c) = queue(1, u64::MAX >> 30, Overflow::Block(Duration::from_secs(600)));
        assert!(q.push(rec(Level::ERROR, 1)).is_some());
        let q2 = q.clone();
        *lock(&q.hooks.after_failed_reserve) = Some(Box::new(move || {
            take_all(&q2);
        }));
        assert!(q.push(rec(Level::ERROR, 1)).is_some());
        *lock(&q.hooks.after_failed_reserve) = None;
        assert_eq!(q.hooks.waits.load(Ordering::Relaxed), 0);
        assert_eq!(c.snapshot().enqueued, 2);
        assert_eq!(c.dropped_block_timeout.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn blocked_caller_is_woken_by_a_release() {
        let (q, _rx, c) = queue(1, u64::MAX >> 30, Overflow::Block(Duration::from_secs(600)));
        assert!(q.push(rec(Level::ERROR, 1)).is_some());
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.push(rec(Level::ERROR, 1)).is_some());
        // Once registered, a release cannot be missed (no matter when it comes).
        while q.waiters.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(take_all(&q).len(), 1);
        assert!(t.join().unwrap());
        assert_eq!(c.snapshot().enqueued, 2);
        assert_eq!(c.dropped_block_timeout.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn close_wakes_a_blocked_caller() {
        let (q, _rx, c) = queue(1, u64::MAX >> 30, Overflow::Block(Duration::from_secs(600)));
        assert!(q.push(rec(Level::ERROR, 1)).is_some());
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.push(rec(Level::ERROR, 1)).is_some());
        while q.waiters.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        q.close();
        assert!(!t.join().unwrap());
        assert_eq!(c.dropped_closed.load(Ordering::Relaxed), 1);
        assert_eq!(c.dropped_block_timeout.load(Ordering::Relaxed), 0);
        assert_eq!(q.drain_after_close().len(), 1);
    }

    /// Was: a caller past the closed check whose record landed after the worker's last drain:
    /// counted enqueued, never resolved. Now the drain waits for it.
    #[test]
    fn drain_after_close_waits_for_a_record_reserved_before_the_close() {
        let (q, _rx, c) = queue(16, u64::MAX >> 30, Overflow::DropNewest);
        let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(1);
        *lock(&q.hooks.after_reserve) = Some(Box::new(move || {
            let _ = entered_tx.send(());
            let _ = go_rx.recv();
        }));
        let q2 = q.clone();
        let pusher = std::thread::spawn(move || q2.push(rec(Level::INFO, 1)).is_some());
        entered_rx.recv().unwrap(); // reserved, not yet in the ring
        q.close();
        assert_eq!(q.push(rec(Level::INFO, 1)), None); // refused after the close
        // The pusher lands its record only once the drain has found the ring empty.
        let go = go_tx.clone();
        *lock(&q.hooks.while_draining) = Some(Box::new(move || {
            let _ = go.try_send(());
        }));
        let drained = q.drain_after_close().len();
        let _ = go_tx.try_send(()); // (when the drain did not wait)
        assert!(pusher.join().unwrap());
        assert_eq!(drained, 1);
        assert_eq!(q.len(), 0);
        let st = c.snapshot();
        assert_eq!(st.enqueued, 1);
        assert_eq!(c.taken.load(Ordering::Relaxed), 1);
        assert_eq!(st.queue_len, 0);
        assert_eq!(st.dropped_closed, 1);
    }

    #[test]
    fn close_while_pushing_leaves_nothing_behind() {
        const THREADS: usize = 4;
        let (q, _rx, c) = queue(256, u64::MAX >> 30, Overflow::DropNewest);
        let taken = Arc::new(AtomicU64::new(0));
        let stop_taking = Arc::new(AtomicBool::new(false));
        let pushers: Vec<_> = (0..THREADS)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut ok = 0u64;
                    while !q.is_closed() {
                        if q.push(rec(Level::INFO, 1)).is_some() {
                            ok += 1;
                        }
                    }
                    // A few more: all refused.
                    for _ in 0..100 {
                        assert!(q.push(rec(Level::INFO, 1)).is_none());
                    }
                    ok
                })
            })
            .collect();
        let taker = {
            let (q, taken, stop) = (q.clone(), taken.clone(), stop_taking.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    taken.fetch_add(take_all(&q).len() as u64, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            })
        };
        while c.snapshot().enqueued < 20_000 {
            std::thread::yield_now();
        }
        stop_taking.store(true, Ordering::Release);
        taker.join().unwrap();
        let in_ring_before_close = q.len() as u64;
        q.close();
        let drained = q.drain_after_close().len() as u64;
        let pushed: u64 = pushers.into_iter().map(|t| t.join().unwrap()).sum();
        // Everything pushed was taken before the close or drained after it; nothing is left.
        assert_eq!(q.len(), 0);
        assert!(drained >= in_ring_before_close);
        let taken = taken.load(Ordering::Relaxed);
        assert_eq!(pushed, taken + drained);
        let st = c.snapshot();
        assert_eq!(st.enqueued, pushed);
        assert_eq!(st.queue_len, 0);
        assert_eq!(c.taken.load(Ordering::Relaxed), pushed);
        assert!(st.dropped_closed >= THREADS as u64 * 100);
    }

    /// Was: `enqueued` read `taken` and the queue word separately, so while the worker took a
    /// batch it could count the batch twice, then fall back.
    #[test]
    fn enqueued_never_overcounts_nor_decreases() {
        const PUSHES: u64 = 100_000;
        let (q, _rx, c) = queue(512, u64::MAX >> 30, Overflow::DropNewest);
        let attempted = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (q, attempted, done) = (q.clone(), attempted.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..PUSHES {
                    attempted.fetch_add(1, Ordering::SeqCst);
                    q.push(rec(Level::INFO, 1));
                }
                done.store(true, Ordering::Release);
            })
        };
        let taker = {
            let (q, done) = (q.clone(), done.clone());
            std::thread::spawn(move || {
                loop {
                    let finished = done.load(Ordering::Acquire);
                    // Batches of up to 64, one accounting each, as the worker does.
                    let batch: Vec<_> = std::iter::from_fn(|| q.pop()).take(64).collect();
                    let bytes = batch.iter().map(|r| u64::from(r.est_size)).sum();
                    q.take_accounted(batch.len() as u64, bytes);
                    if finished && batch.is_empty() {
                        break;
                    }
                }
            })
        };
        let mut last = 0;
        let mut reads = 0u64;
        while !done.load(Ordering::Acquire) || reads < 1000 {
            let enq = c.snapshot().enqueued;
            let pushed = attempted.load(Ordering::SeqCst);
            assert!(enq <= pushed, "enqueued {enq} > pushes so far {pushed}");
            assert!(enq >= last, "enqueued fell from {last} to {enq}");
            last = enq;
            reads += 1;
        }
        pusher.join().unwrap();
        taker.join().unwrap();
        let st = c.snapshot();
        assert_eq!(st.enqueued + st.dropped_queue_full, PUSHES);
        assert_eq!(c.taken.load(Ordering::Relaxed), st.enqueued);
    }

    #[test]
    fn pushed_state_never_carries_the_closed_bit() {
        assert_eq!(MAX_QUEUE_RECORDS, 8_388_607);
        let (q, _rx, c) = queue(MAX_QUEUE_RECORDS, u64::MAX >> 30, Overflow::DropNewest);
        let st = q.push(rec(Level::INFO, 1)).unwrap();
        assert_eq!(st >> QUEUE_BYTES_BITS, 1);
        q.close();
        assert!(q.is_closed());
        let s = c.snapshot();
        assert_eq!((s.queue_len, s.enqueued), (1, 1));
        assert_eq!(q.drain_after_close().len(), 1);
        assert_eq!(c.snapshot().queue_len, 0);
    }

    proptest! {
        #[test]
        fn never_exceeds_bounds_and_counts_exactly(
            sizes in proptest::collection::vec((0usize..3000, 0u8..5), 1..300),
            max_bytes in 2000u64..40_000,
            max_records in 1u64..50,
            drain_every in 1usize..20,
            drop_oldest: bool,
        ) {
            let overflow = if drop_oldest { Overflow::DropOldest } else { Overflow::DropNewest };
            let (q, rx, c) = queue(max_records, max_bytes, overflow);
            let levels = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE];
            for (i, (len, lvl)) in sizes.iter().enumerate() {
                q.push(rec(levels[*lvl as usize], *len));
                let st = c.snapshot();
                prop_assert!(st.queue_len <= max_records);
                prop_assert!(st.queue_bytes <= max_bytes);
                prop_assert_eq!(st.queue_len, q.len() as u64);
                if i % drain_every == 0
                    && let Some(r) = rx.pop() {
                        q.take_accounted(1, u64::from(r.est_size));
                }
            }
            let st = c.snapshot();
            prop_assert_eq!(st.enqueued + st.dropped_queue_full, sizes.len() as u64);
            prop_assert_eq!(
                st.enqueued,
                c.taken.load(Ordering::Relaxed) + st.dropped_oldest + q.len() as u64
            );
        }

        #[test]
        fn drop_oldest_evicts_only_lower_ranked_records(
            pushes in proptest::collection::vec((0u8..5, 0usize..400), 1..400),
            max_records in 2u64..40,
            drain_every in 1usize..30,
        ) {
            let (q, c, lane) = queue_with_lane(max_records, Overflow::DropOldest);
            let levels = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE];
            let (mut accepted, mut evicted) = (0u64, 0u64);
            for (i, (lvl, len)) in pushes.iter().enumerate() {
                let level = levels[*lvl as usize];
                let queued = q.push(rec(level, *len)).is_some();
                accepted += u64::from(queued);
                for (r, cause) in lane.try_iter() {
                    match cause {
                        Cause::Evicted => {
                            // Only for a record that was then queued; never an ERROR (the
                            // reserved level); otherwise less severe, or the same level.
                            prop_assert!(queued, "evicted for a record then dropped");
                            prop_assert!(r.level != Level::ERROR, "ERROR evicted for {}", level);
                            prop_assert!(r.level >= level, "{} evicted for {}", r.level, level);
                            evicted += 1;
                        }
                        Cause::QueueFull => prop_assert!(!queued),
                        other => prop_assert!(false, "unexpected cause {:?}", other),
                    }
                }
                let st = c.snapshot();
                prop_assert!(st.queue_len <= max_records);
                if i % drain_every == 0 {
                    take_all(&q);
                }
            }
            let st = c.snapshot();
            prop_assert_eq!(st.enqueued, accepted);
            prop_assert_eq!(st.dropped_oldest, evicted);
            prop_assert_eq!(st.enqueued + st.dropped_queue_full, pushes.len() as u64);
            prop_assert_eq!(
                st.enqueued,
                c.taken.load(Ordering::Relaxed) + st.dropped_oldest + q.len() as u64
            );
        }
    }
}
