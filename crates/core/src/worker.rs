//! The worker: one named OS thread per layer that batches, sends, retries and shuts down.
//!
//! The worker owns a single-threaded tokio runtime (so sinks can use async I/O whatever the
//! application runs) and marks its threads [suppressed](crate::capture::suppress). It sleeps on
//! a small control channel, not on the data queue, so the caller's thread pays no wake-up on a
//! typical event; it wakes when
//!
//! * the batch timer ticks (every `linger`): everything queued is sent;
//! * a producer nudges it: the records queued plus those the worker already took for its next
//!   batch make a full batch (by records or bytes), or a record at or above the flush level
//!   arrived;
//! * a flush or shutdown is requested, a retry is due, or the circuit breaker's cool-down ends.
//!
//! One batch is in flight at a time, and retries of a batch go before newer records, so records
//! are delivered in order. While a batch waits for its retry, newer records stay in the bounded
//! queue, so memory stays bounded by the queue limits plus one batch.
//!
//! Records the worker takes leave the queue's bounds at once (one release per batch), so the
//! producer cannot see them in the queue word. Until they are sent (or spooled) the worker
//! keeps them *staged* ([`Queue::stage_and_take`], [`Queue::unstage`]): the producer adds the
//! staged count to the queue word when it decides whether to nudge, so a batch the worker has
//! started and the queue completes goes at once, not at the next linger tick.

// Records travel in the boxes the callers filled (`Vec<Box<Record>>`): the boxes are what the
// queue recycles, so a record is never copied between capture and the pool.
#![allow(clippy::vec_box)]

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, never, select};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tracing_core::Level;

use crate::error::FlushError;
use crate::queue::Queue;
use crate::retry::{Breaker, BreakerConfig, RetryPolicy};
use crate::sink::{Batch, Outcome, SendContext, Sink};
use crate::spool::Spool;
use crate::stats::{Counters, Stats};
use crate::undelivered::{Cause, DeadLetter, Undelivered, UndeliveredCallback};
use crate::{Record, SourceFqn};

/// What a completed flush reports.
///
/// With the feature `serde`, it implements `serde::Serialize` as
/// `{"stats": <Stats>, "waited": {"secs": u64, "nanos": u32}}` (serde's standard form of a
/// `Duration`; see [`Stats`] for its own form).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FlushReport {
    /// The layer's counters when the flush completed.
    pub stats: Stats,
    /// How long the flush took.
    pub waited: Duration,
}

pub(crate) type FlushReply = oneshot::Sender<Result<FlushReport, FlushError>>;

pub(crate) enum Control {
    Flush {
        deadline: Instant,
        reply: Option<FlushReply>,
        shutdown: bool,
    },
}

/// Wakes the worker early (a full batch, an urgent record); at most one nudge in flight.
pub(crate) struct Nudge {
    pub(crate) flag: AtomicBool,
    pub(crate) tx: Sender<()>,
}

impl Nudge {
    pub(crate) fn wake(&self) {
        if !self.flag.load(Ordering::Relaxed) && !self.flag.swap(true, Ordering::AcqRel) {
            let _ = self.tx.try_send(());
        }
    }
}

pub(crate) struct WorkerSettings {
    pub(crate) max_batch_records: usize,
    pub(crate) max_batch_bytes: u64,
    pub(crate) linger: Duration,
    pub(crate) flush_level: Option<Level>,
    pub(crate) send_timeout: Duration,
    pub(crate) stall_threshold: Duration,
    pub(crate) loss_summary: bool,
    pub(crate) name: &'static str,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: BreakerConfig,
    pub(crate) default_fqn: Option<SourceFqn>,
    pub(crate) callbacks: Vec<UndeliveredCallback>,
    pub(crate) dead_letter: Option<DeadLetter>,
    pub(crate) spool: Option<Spool>,
}

struct InFlight {
    batch: Batch,
    attempts: u32,
    first: Instant,
    next_at: Instant,
    reason: String,
    payload: Option<Vec<u8>>,
    /// The spool segment this batch was replayed from (deleted once the batch is resolved).
    segment: Option<u64>,
}

impl InFlight {
    fn new(batch: Batch, now: Instant, segment: Option<u64>) -> Self {
        Self {
            batch,
            attempts: 0,
            first: now,
            next_at: now,
            reason: String::new(),
            payload: None,
            segment,
        }
    }
}

struct Waiter {
    mark: u64,
    deadline: Instant,
    started: Instant,
    reply: Option<FlushReply>,
    shutdown: bool,
}

/// How often, once a send has stalled, the worker moves newly queued records to the spool.
const STALL_TICK: Duration = Duration::from_millis(50);

/// What to take from the queue at once.
struct Take<'a> {
    fqn: Option<&'a SourceFqn>,
    flush_level: Option<Level>,
    max_records: usize,
    max_bytes: u64,
}

/// Moves up to one batch's worth of records from the queue into `out` (prepared, and accounted
/// as taken: one release of the queue's bounds for the lot, staged first, see
/// [`Queue::stage_and_take`]; [`Queue::unstage`] them when they leave the worker's hands).
/// Returns the number taken and whether one of them is at or above the flush level.
fn take_records(
    queue: &Queue,
    counters: &Counters,
    take: &Take<'_>,
    out: &mut Vec<Box<Record>>,
    out_bytes: &mut u64,
) -> (u64, bool) {
    let (mut n, mut bytes, mut urgent) = (0u64, 0u64, false);
    while out.len() < take.max_records && *out_bytes < take.max_bytes {
        let Some(mut r) = queue.pop() else { break };
        n += 1;
        bytes += u64::from(r.est_size);
        let mut invalid = 0;
        r.prepare(take.fqn, &mut invalid);
        if invalid > 0 {
            Counters::add(&counters.invalid_fields, invalid);
        }
        if take.flush_level.is_some_and(|fl| r.level <= fl) {
            urgent = true;
        }
        *out_bytes += u64::from(r.est_size);
        out.push(r);
    }
    if n > 0 {
        // One release per batch, not per record: the caller's hot word is touched rarely;
        // `taken` and the release change together, so `Stats` stays a consistent cut.
        queue.stage_and_take(n, bytes);
    }
    (n, urgent)
}

/// Longest reason kept from a sink's outcome (for `last_error`, callbacks and dead letters),
/// in bytes: a server's error text is the server's to choose, and may be megabytes.
const MAX_REASON_BYTES: usize = 1024;

/// `outcome` with every reason at most [`MAX_REASON_BYTES`] (one line, see
/// [`crate::excerpt::bounded`]).
fn bound_reasons(outcome: Outcome) -> Outcome {
    let b = |r: String| {
        if r.len() <= MAX_REASON_BYTES && !r.contains(['\n', '\r']) {
            r
        } else {
            crate::excerpt::bounded(&r, MAX_REASON_BYTES)
        }
    };
    match outcome {
        Outcome::Retry { after, reason } => Outcome::Retry {
            after,
            reason: b(reason),
        },
        Outcome::Rejected { reason } => Outcome::Rejected { reason: b(reason) },
        Outcome::Partial {
            retry,
            rejected,
            after,
            reason,
        } => Outcome::Partial {
            retry,
            rejected: rejected.into_iter().map(|(i, r)| (i, b(r))).collect(),
            after,
            reason: b(reason),
        },
        o => o,
    }
}

/// Writes `records` as one spool segment (in front of the backlog when `front`) and counts it:
/// `spooled` and `spool_evicted` on success (returning the segment's number), a write error and
/// `last_error` on failure. The caller accounts the records as resolved.
#[allow(clippy::vec_box)]
fn spool_counted(
    sp: &mut Spool,
    counters: &Counters,
    records: &[Box<Record>],
    front: bool,
) -> Option<u64> {
    match sp.append(records, front) {
        Ok(a) => {
            Counters::add(&counters.spooled, records.len() as u64);
            Counters::add(&counters.spool_evicted, a.evicted);
            Some(a.seq)
        }
        Err(e) => {
            Counters::add(&counters.spool_write_errors, 1);
            counters.set_error(format!("spool write failed: {e}"));
            None
        }
    }
}

/// What happened while a send stalled (see [`PipelineBuilder::with_stall_threshold`]).
///
/// [`PipelineBuilder::with_stall_threshold`]: crate::PipelineBuilder::with_stall_threshold
#[derive(Default)]
struct Stall {
    /// The spool, lent to the send loop (the worker's own borrow is the sink's).
    spool: Option<Spool>,
    stalled: bool,
    /// A spool write failed during this send: stop trying until the send ends.
    failed: bool,
    /// The segment the batch in flight was written to.
    segment: Option<u64>,
    taken0: u64,
    /// Records taken from the queue during the send, and how many of them were spooled.
    taken: u64,
    resolved: u64,
    /// Records taken but not spooled (a write failed): they go back to `pending`.
    held: Vec<Box<Record>>,
    /// Flush and shutdown requests that arrived during the send, with their marks.
    deferred: Vec<(Control, u64)>,
}

impl Stall {
    /// With a spool: writes the batch in flight (once) and what the queue holds to disk.
    fn spool_meanwhile(
        &mut self,
        batch: &Batch,
        unspooled: bool,
        queue: &Queue,
        counters: &Counters,
        take: &Take<'_>,
    ) {
        let Some(sp) = self.spool.as_mut() else {
            return;
        };
        if self.failed {
            return;
        }
        if unspooled && self.segment.is_none() {
            match spool_counted(sp, counters, &batch.records, true) {
                Some(seq) => {
                    self.segment = Some(seq);
                    self.resolved += batch.records.len() as u64;
                }
                None => {
                    self.failed = true;
                    return;
                }
            }
        }
        for _ in 0..8 {
            let mut records = Vec::new();
            let mut bytes = 0;
            let (n, _) = take_records(queue, counters, take, &mut records, &mut bytes);
            if n == 0 {
                break;
            }
            self.taken += n;
            if spool_counted(sp, counters, &records, false).is_some() {
                self.resolved += n;
                queue.unstage(n, bytes);
                queue.recycle(records);
            } else {
                self.failed = true;
                self.held.append(&mut records);
                break;
            }
        }
        counters.spool_bytes.store(sp.bytes(), Ordering::Relaxed);
        counters
            .spool_records
            .store(sp.records(), Ordering::Relaxed);
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

pub(crate) struct Worker<S: Sink> {
    sink: S,
    set: WorkerSettings,
    ctl: Receiver<Control>,
    interrupt: Arc<tokio::sync::Notify>,
    wake: Receiver<()>,
    lane: Option<Receiver<(Box<Record>, Cause)>>,
    queue: Arc<Queue>,
    nudge: Arc<Nudge>,
    counters: Arc<Counters>,
    /// Records taken from the queue for the next batch: still in the boxes the callers filled,
    /// so a record is never copied on its way to the sink and back into the pool.
    pending: Vec<Box<Record>>,
    pending_bytes: u64,
    urgent: bool,
    drain: bool,
    next_tick: Instant,
    inflight: Option<InFlight>,
    breaker: Breaker,
    rng: StdRng,
    next_batch_id: u64,
    taken: u64,
    resolved: u64,
    waiters: Vec<Waiter>,
    shutdown_deadline: Option<Instant>,
    /// Alternate spool replays with fresh batches while both wait.
    replay_next: bool,
    diag: crate::diag::Diag,
    /// Publishes the counters to the `metrics` facade (a no-op without the feature).
    metrics: crate::metrics::Publisher,
    rt: tokio::runtime::Runtime,
}

pub(crate) struct WorkerChannels {
    pub(crate) ctl: Receiver<Control>,
    /// Nudged by the guard after it queues a flush or shutdown, to interrupt a long send.
    pub(crate) interrupt: Arc<tokio::sync::Notify>,
    pub(crate) wake: Receiver<()>,
    pub(crate) lane: Option<Receiver<(Box<Record>, Cause)>>,
}

impl<S: Sink> Worker<S> {
    pub(crate) fn new(
        sink: S,
        set: WorkerSettings,
        ch: WorkerChannels,
        queue: Arc<Queue>,
        nudge: Arc<Nudge>,
        counters: Arc<Counters>,
        rt: tokio::runtime::Runtime,
    ) -> Self {
        let breaker = Breaker::new(set.breaker);
        let next_tick = crate::time::after(Instant::now(), set.linger);
        Self {
            sink,
            ctl: ch.ctl,
            interrupt: ch.interrupt,
            wake: ch.wake,
            lane: ch.lane,
            queue,
            nudge,
            counters,
            pending: Vec::new(),
            pending_bytes: 0,
            urgent: false,
            drain: false,
            next_tick,
            inflight: None,
            breaker,
            rng: StdRng::from_os_rng(),
            next_batch_id: 1,
            taken: 0,
            resolved: 0,
            waiters: Vec::new(),
            shutdown_deadline: None,
            replay_next: true,
            diag: crate::diag::Diag::new(set.name),
            metrics: crate::metrics::Publisher::new(set.name),
            rt,
            set,
        }
    }

    /// Runs until shutdown completes or its deadline passes.
    pub(crate) fn run(mut self) {
        crate::capture::suppress::suppress_current_thread();
        // `start` is bounded by the send timeout, so a hanging connect cannot hold up flush
        // and shutdown.
        let limit = self.set.send_timeout;
        let sink = &mut self.sink;
        match std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.rt
                .block_on(async { tokio::time::timeout(limit, sink.start()).await })
        })) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => self.counters.set_error(e),
            Ok(Err(_)) => self.counters.set_error(format!(
                "sink start timed out after {} ms",
                limit.as_millis()
            )),
            Err(_) => self.counters.set_error("sink start panicked".into()),
        }
        self.sync_spool_gauges();
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.run_loop())) {
            Ok(()) => self.finish(),
            Err(panic) => self.died(&panic_message(panic.as_ref())),
        }
    }

    /// The worker's loop: returns when shutdown completes or its deadline passes.
    fn run_loop(&mut self) {
        loop {
            // Reset the nudge before looking at the queue: a producer that nudges after this
            // point sends a fresh wake-up, so no urgent record or full batch waits a linger.
            // Not while a batch is in flight or the breaker is open: the worker could not send
            // another batch anyway, and it wakes on its own (the retry time, the cool-down's
            // end). Left set, the flag keeps every producer from sending a futex wake-up per
            // record while a dead backend keeps the queue near full; the first iteration that
            // could send resets it and looks at the queue again. (With a spool, a failing
            // backend still arms it: the spool takes what is queued.)
            let armed = self.can_send_new(Instant::now());
            if armed {
                self.nudge.flag.store(false, Ordering::Release);
            }
            self.drain_lane();
            self.diag.check(&self.counters, Instant::now());
            let now = Instant::now();
            self.metrics.maybe_publish(&self.counters, now);
            if self.expire_waiters(now) {
                break;
            }
            if now >= self.next_tick {
                self.drain = true;
                self.next_tick = crate::time::after(now, self.set.linger);
                if let Some(sp) = self.set.spool.as_mut() {
                    sp.maybe_sync();
                }
            }
            if self.spool_while_failing(now) {
                continue;
            }
            if self.step(now) {
                continue;
            }
            self.complete_waiters();
            if self.shutdown_deadline.is_some() && self.idle() {
                break;
            }
            if self.inflight.is_none() && self.pending.is_empty() && (self.queue.len() == 0) {
                self.drain = false;
            }
            // A full batch waiting (counting the records already taken) goes at once, unless
            // the breaker holds it back: then the worker sleeps until the cool-down ends (no
            // loop iteration without a wait).
            if self.inflight.is_none()
                && self.pending.len() + self.queue.len() >= self.set.max_batch_records
                && self.breaker.blocked_until(now).is_none()
            {
                continue;
            }
            if !armed && self.can_send_new(Instant::now()) {
                continue; // re-arm the nudge and look at the queue before sleeping
            }
            self.wait(now);
        }
    }

    /// Whether a nudge could make the worker act now: a new batch could go (none in flight,
    /// breaker not open), or a spool takes what is queued while sends fail.
    fn can_send_new(&self, now: Instant) -> bool {
        (self.inflight.is_none() && self.breaker.blocked_until(now).is_none())
            || (self.set.spool.is_some() && self.failing())
    }

    fn idle(&self) -> bool {
        self.inflight.is_none() && self.pending.is_empty() && (self.queue.len() == 0)
    }

    /// Sends something if something is due; returns whether it did.
    fn step(&mut self, now: Instant) -> bool {
        if self.breaker.blocked_until(now).is_some() {
            return false;
        }
        if let Some(inf) = &self.inflight {
            if now >= inf.next_at {
                self.attempt();
                return true;
            }
            return false;
        }
        if self.replay(now) {
            return true;
        }
        self.fill_pending(now);
        if self.pending.is_empty() {
            return false;
        }
        let full = self.pending.len() >= self.set.max_batch_records
            || self.pending_bytes >= self.set.max_batch_bytes;
        let flushing = !self.waiters.is_empty() || self.shutdown_deadline.is_some();
        if full || self.urgent || self.drain || flushing {
            let records = self.take_pending();
            self.urgent = false;
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            self.inflight = Some(InFlight::new(Batch { records, id }, now, None));
            self.replay_next = true;
            self.attempt();
            return true;
        }
        false
    }

    /// Whether sends are failing now (a send failed and none has succeeded since).
    fn failing(&self) -> bool {
        self.breaker.consecutive() > 0
    }

    fn sync_spool_gauges(&self) {
        if let Some(sp) = &self.set.spool {
            self.counters
                .spool_bytes
                .store(sp.bytes(), Ordering::Relaxed);
            self.counters
                .spool_records
                .store(sp.records(), Ordering::Relaxed);
        }
    }

    /// Writes records to the spool; `resolves` says whether they count as resolved now (records
    /// from the queue) or were already counted (records replayed from the spool).
    fn spool_records(
        &mut self,
        records: Vec<Box<Record>>,
        front: bool,
        resolves: bool,
    ) -> Result<(), Vec<Box<Record>>> {
        let Some(sp) = self.set.spool.as_mut() else {
            return Err(records);
        };
        match sp.append(&records, front) {
            Ok(a) => {
                let n = records.len() as u64;
                if resolves {
                    self.resolved += n;
                    Counters::add(&self.counters.spooled, n);
                }
                Counters::add(&self.counters.spool_evicted, a.evicted);
                self.sync_spool_gauges();
                self.queue.recycle(records);
                Ok(())
            }
            Err(e) => {
                Counters::add(&self.counters.spool_write_errors, 1);
                self.counters.set_error(format!("spool write failed: {e}"));
                Err(records)
            }
        }
    }

    /// While sends fail, moves queued records (and, when shutting down, the batch in flight)
    /// to the spool so the queue does not overflow and shutdown does not wait. Returns whether
    /// it moved anything.
    fn spool_while_failing(&mut self, now: Instant) -> bool {
        if self.set.spool.is_none() || !self.failing() {
            return false;
        }
        let mut moved = false;
        if self.shutdown_deadline.is_some()
            && let Some(inf) = self.inflight.take()
        {
            if inf.segment.is_some() {
                // Already on disk: leave the segment for the next run.
                self.queue.recycle(inf.batch.records);
            } else if let Err(records) = self.spool_records(inf.batch.records, true, true) {
                self.inflight = Some(InFlight {
                    batch: Batch {
                        records,
                        id: inf.batch.id,
                    },
                    ..inf
                });
                return false;
            }
            moved = true;
        }
        for _ in 0..8 {
            self.fill_pending(now);
            if self.pending.is_empty() {
                break;
            }
            let records = std::mem::take(&mut self.pending);
            let (n, bytes) = (records.len() as u64, self.pending_bytes);
            self.pending_bytes = 0;
            self.urgent = false;
            match self.spool_records(records, false, true) {
                Ok(()) => {
                    // Unstaged only once on disk: when the write fails they stay staged.
                    self.queue.unstage(n, bytes);
                    moved = true;
                }
                Err(records) => {
                    self.pending_bytes = records.iter().map(|r| u64::from(r.est_size)).sum();
                    self.pending = records;
                    break;
                }
            }
        }
        moved
    }

    /// Starts replaying the oldest spool segment when it is its turn. Returns whether it did.
    fn replay(&mut self, now: Instant) -> bool {
        if self.shutdown_deadline.is_some() {
            return false;
        }
        let fresh_waiting = !self.pending.is_empty() || self.queue.len() > 0;
        if fresh_waiting && !self.replay_next {
            return false;
        }
        let Some(sp) = self.set.spool.as_mut() else {
            return false;
        };
        let Some(loaded) = sp.oldest() else {
            return false;
        };
        if loaded.corrupt {
            Counters::add(&self.counters.spool_corrupt, 1);
        }
        if loaded.lost_records > 0 {
            // Reported once per damaged segment (the spool cuts it back to its good frames).
            Counters::add(&self.counters.spool_corrupt_records, loaded.lost_records);
            self.counters.set_error(format!(
                "spool segment {} torn or corrupt: about {} records lost (estimated from its frames)",
                loaded.seq, loaded.lost_records
            ));
        }
        if loaded.records.is_empty() {
            sp.remove(loaded.seq);
            self.sync_spool_gauges();
            return true;
        }

        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.inflight = Some(InFlight::new(
            Batch {
                records: loaded.records.into_iter().map(Box::new).collect(),
                id,
            },
            now,
            Some(loaded.seq),
        ));
        self.replay_next = false;
        self.attempt();
        true
    }

    /// A batch is fully resolved: forget its spool segment.
    fn segment_done(&mut self, segment: Option<u64>) {
        if let (Some(seq), Some(sp)) = (segment, self.set.spool.as_mut()) {
            sp.remove(seq);
            self.sync_spool_gauges();
        }
    }

    /// Takes the partial batch out of `pending` (and out of what the queue counts as staged).
    fn take_pending(&mut self) -> Vec<Box<Record>> {
        self.queue
            .unstage(self.pending.len() as u64, self.pending_bytes);
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }

    fn fill_pending(&mut self, _now: Instant) {
        let take = Take {
            fqn: self.set.default_fqn.as_ref(),
            flush_level: self.set.flush_level,
            max_records: self.set.max_batch_records,
            max_bytes: self.set.max_batch_bytes,
        };
        let (n, urgent) = take_records(
            &self.queue,
            &self.counters,
            &take,
            &mut self.pending,
            &mut self.pending_bytes,
        );
        self.taken += n;
        self.urgent |= urgent;
    }

    fn attempt(&mut self) {
        let Some(mut inf) = self.inflight.take() else {
            return;
        };
        let now = Instant::now();
        // The send timeout bounds a send; only a shutdown brings the deadline forward. A flush
        // never shortens or cancels a send: it waits for it (its own timeout is enforced on the
        // caller's side), as OpenTelemetry's ForceFlush waits for the export in progress.
        let mut deadline = crate::time::after(now, self.set.send_timeout);
        if let Some(d) = self.shutdown_deadline {
            deadline = deadline.min(d.max(now + Duration::from_millis(1)));
        }
        let wants_payload = !self.set.callbacks.is_empty();
        let mut cx = SendContext::new(
            inf.attempts + 1,
            deadline,
            self.shutdown_deadline.is_some(),
            wants_payload,
        );
        let stall_at = crate::time::after(now, self.set.stall_threshold);
        let mut stall = Stall {
            spool: self.set.spool.take(),
            taken0: self.taken,
            ..Stall::default()
        };
        let sink = &mut self.sink;
        let batch = &inf.batch;
        let unspooled = inf.segment.is_none();
        let ctl = self.ctl.clone();
        let wake = self.interrupt.clone();
        let queue = &self.queue;
        let counters = &self.counters;
        let take = Take {
            fqn: self.set.default_fqn.as_ref(),
            flush_level: None,
            max_records: self.set.max_batch_records,
            max_bytes: self.set.max_batch_bytes,
        };
        let diag = &mut self.diag;
        let metrics = &mut self.metrics;
        // The send races its deadline; a shutdown requested meanwhile can bring the deadline
        // forward (the guard nudges `interrupt` after queueing its request), so a hung send
        // never holds a shutdown past its timeout. Past the stall threshold the send goes on,
        // but the backend counts as failing: with a spool, the batch in flight and the records
        // arriving meanwhile are written to disk while it runs.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.rt.block_on(async {
                let send = sink.send(batch, &mut cx);
                tokio::pin!(send);
                let mut until = tokio::time::Instant::from_std(deadline);
                let mut check = tokio::time::Instant::from_std(stall_at.min(deadline));
                loop {
                    tokio::select! {
                        o = &mut send => break Ok(o),
                        () = tokio::time::sleep_until(until) => break Err(()),
                        () = tokio::time::sleep_until(check) => {
                            if !stall.stalled {
                                stall.stalled = true;
                                let waited = now.elapsed();
                                counters.set_error(format!(
                                    "send has not answered for {} ms (stalled); still waiting up to the send timeout",
                                    waited.as_millis()
                                ));
                                diag.stalled(waited);
                            }
                            stall.spool_meanwhile(batch, unspooled, queue, counters, &take);
                            metrics.maybe_publish(counters, Instant::now());
                            check = tokio::time::Instant::now() + STALL_TICK;
                        }
                        () = wake.notified() => {
                            while let Ok(c) = ctl.try_recv() {
                                let Control::Flush { deadline: d, shutdown, .. } = &c;
                                if *shutdown {
                                    let d = (*d).max(Instant::now() + Duration::from_millis(1));
                                    until = until.min(tokio::time::Instant::from_std(d));
                                }
                                // The flush waits for what was enqueued before it: mark it now.
                                let mark = stall.taken0 + stall.taken
                                    + counters.dropped_oldest.load(Ordering::Acquire)
                                    + queue.len() as u64;
                                stall.deferred.push((c, mark));
                            }
                        }
                    }
                }
            })
        }));
        self.set.spool = stall.spool.take();
        self.taken += stall.taken;
        self.resolved += stall.resolved;
        if stall.resolved > 0 || stall.segment.is_some() {
            self.sync_spool_gauges();
        }
        if let Some(seq) = stall.segment {
            inf.segment = Some(seq);
        }
        if !stall.held.is_empty() {
            self.pending_bytes += stall
                .held
                .iter()
                .map(|r| u64::from(r.est_size))
                .sum::<u64>();
            self.pending.append(&mut stall.held);
        }
        for (c, mark) in std::mem::take(&mut stall.deferred) {
            self.control(c, Some(mark));
        }
        let timeout = deadline.saturating_duration_since(now);
        inf.attempts += 1;
        Counters::add(&self.counters.requests, 1);
        if inf.attempts > 1 {
            Counters::add(&self.counters.retries, 1);
        }
        Counters::add(&self.counters.bytes_sent, cx.bytes_sent);
        Counters::add(&self.counters.duplicates, cx.duplicates);
        Counters::add(&self.counters.certificate_failures, cx.certificate_failures);
        if cx.payload.is_some() {
            inf.payload = cx.payload.take();
        }
        self.metrics.sent(&result, now.elapsed());
        let outcome = match result {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => Outcome::retry(format!(
                "send timed out after {} ms",
                now.elapsed().as_millis().min(timeout.as_millis())
            )),
            Err(panic) => Outcome::rejected(format!(
                "sink `{}` panicked: {}",
                self.sink.name(),
                panic_message(panic.as_ref())
            )),
        };
        let outcome = bound_reasons(outcome);
        let now = Instant::now();
        match outcome {
            Outcome::Delivered => {
                self.succeeded();
                let n = inf.batch.records.len() as u64;
                self.delivered(n, inf.segment.is_none());
                self.queue.recycle(std::mem::take(&mut inf.batch.records));
                self.segment_done(inf.segment);
            }
            Outcome::Rejected { reason } => {
                self.breaker.success();
                self.sync_breaker();
                self.counters.set_error(reason.clone());
                let records = std::mem::take(&mut inf.batch.records);
                let counts = inf.segment.is_none();
                self.undeliver(
                    records,
                    Cause::Rejected,
                    Some(reason),
                    inf.payload.take(),
                    counts,
                );
                self.segment_done(inf.segment);
            }
            Outcome::Retry { after, reason } => {
                self.breaker.failure(now);
                self.sync_breaker();
                self.counters.set_error(reason.clone());
                inf.reason = reason;
                // The backend is failing: with a spool, the batch waits for its retry on disk,
                // so a crash during the outage does not lose it.
                self.spool_inflight(&mut inf);
                self.reschedule(inf, after, now);
            }
            Outcome::Partial {
                retry,
                rejected,
                after,
                reason: retry_why,
            } => {
                let n = inf.batch.records.len();
                // The backend answered: a success for the breaker, unless nothing got through.
                let progressed = retry.iter().filter(|i| **i < n).count() < n;
                if progressed {
                    self.succeeded();
                } else {
                    self.breaker.failure(now);
                    self.sync_breaker();
                }
                let mut fate = vec![0u8; n]; // 0 delivered, 1 retry, 2 rejected
                let mut reasons: HashMap<usize, String> = HashMap::new();
                for i in retry.into_iter().filter(|i| *i < n) {
                    fate[i] = 1;
                }
                for (i, why) in rejected.into_iter().filter(|(i, _)| *i < n) {
                    fate[i] = 2;
                    reasons.insert(i, why);
                }
                let mut to_retry = Vec::new();
                let mut by_reason: HashMap<String, Vec<Box<Record>>> = HashMap::new();
                let mut delivered = Vec::new();
                for (i, r) in std::mem::take(&mut inf.batch.records)
                    .into_iter()
                    .enumerate()
                {
                    match fate[i] {
                        1 => to_retry.push(r),
                        2 => by_reason
                            .entry(reasons.remove(&i).unwrap_or_default())
                            .or_default()
                            .push(r),
                        _ => delivered.push(r),
                    }
                }
                let delivered_n = delivered.len() as u64;
                self.queue.recycle(delivered);
                let counts = inf.segment.is_none();
                if delivered_n > 0 {
                    self.delivered(delivered_n, counts);
                }
                // Every partial outcome is visible in `last_error`; a rejection's own reason,
                // more specific, is written after it and wins.
                let retry_reason = if retry_why.is_empty() {
                    format!(
                        "partial failure: {} of {n} records were refused with a retryable status",
                        to_retry.len()
                    )
                } else {
                    format!(
                        "partial failure: {} of {n} records to retry: {retry_why}",
                        to_retry.len()
                    )
                };
                if !to_retry.is_empty() {
                    self.counters.set_error(retry_reason.clone());
                }
                for (reason, records) in by_reason {
                    self.counters.set_error(reason.clone());
                    self.undeliver(records, Cause::Rejected, Some(reason), None, counts);
                }
                if to_retry.is_empty() {
                    self.segment_done(inf.segment);
                } else {
                    inf.reason = retry_reason;
                    inf.batch.records = to_retry;
                    self.reschedule(inf, after, now);
                }
            }
        }
    }

    /// Writes the batch in flight to the spool (in front of the backlog) unless it is already
    /// there; it stays in flight, and its segment is deleted once it is resolved.
    fn spool_inflight(&mut self, inf: &mut InFlight) {
        if inf.segment.is_some() || inf.batch.records.is_empty() {
            return;
        }
        let Some(sp) = self.set.spool.as_mut() else {
            return;
        };
        if let Some(seq) = spool_counted(sp, &self.counters, &inf.batch.records, true) {
            inf.segment = Some(seq);
            self.resolved += inf.batch.records.len() as u64;
            self.sync_spool_gauges();
        }
    }

    fn succeeded(&mut self) {
        self.breaker.success();
        self.sync_breaker();
        if let Ok(mut g) = self.counters.last_success.lock() {
            *g = Some(SystemTime::now());
        }
    }

    fn sync_breaker(&mut self) {
        self.counters
            .consecutive_failures
            .store(u64::from(self.breaker.consecutive()), Ordering::Relaxed);
        self.counters
            .breaker_open
            .store(self.breaker.is_open(), Ordering::Relaxed);
        self.diag.breaker(
            self.breaker.is_open(),
            self.breaker.consecutive(),
            self.breaker.cooldown(),
            &self.counters,
        );
    }

    fn reschedule(&mut self, mut inf: InFlight, after: Option<Duration>, now: Instant) {
        if !self.set.retry.allows(inf.attempts, inf.first, now) {
            self.give_up(inf);
            return;
        }
        let delay = self.set.retry.delay(inf.attempts, after, &mut self.rng);
        inf.next_at = crate::time::after(now, delay);
        self.inflight = Some(inf);
    }

    /// Retries ran out. With a spool the records wait on disk, in front of the backlog (a
    /// replayed segment stays as it is, or is rewritten if a partial retry shrank it);
    /// without one, they are undelivered.
    fn give_up(&mut self, mut inf: InFlight) {
        let mut records = std::mem::take(&mut inf.batch.records);
        let counts = inf.segment.is_none();
        if self.set.spool.is_some() {
            if let Some(seq) = inf.segment {
                let whole = self
                    .set
                    .spool
                    .as_mut()
                    .and_then(|sp| sp.oldest())
                    .is_some_and(|l| l.seq == seq && l.records.len() == records.len());
                if whole {
                    self.queue.recycle(records);
                    return;
                }
            }
            match self.spool_records(records, true, counts) {
                Ok(()) => {
                    self.segment_done(inf.segment);
                    return;
                }
                Err(r) => records = r,
            }
        }
        let reason = format!("gave up after {} attempts: {}", inf.attempts, inf.reason);
        self.undeliver(
            records,
            Cause::RetriesExhausted,
            Some(reason),
            inf.payload.take(),
            counts,
        );
        self.segment_done(inf.segment);
    }

    /// Counts delivered records; `resolves` is false for records replayed from the spool (they
    /// were counted as resolved when spooled).
    fn delivered(&mut self, n: u64, resolves: bool) {
        if resolves {
            self.resolved += n;
        } else {
            Counters::add(&self.counters.spool_replayed, n);
        }
        Counters::add(&self.counters.delivered, n);
        Counters::add(&self.counters.batches_delivered, 1);
    }

    /// Accounts for and reports records the worker had dequeued.
    fn undeliver(
        &mut self,
        records: Vec<Box<Record>>,
        cause: Cause,
        reason: Option<String>,
        payload: Option<Vec<u8>>,
        resolves: bool,
    ) {
        let n = records.len() as u64;
        if resolves {
            self.resolved += n;
        } else {
            Counters::add(&self.counters.spool_replayed, n);
        }
        let c = match cause {
            Cause::Rejected => &self.counters.undelivered_rejected,
            Cause::RetriesExhausted => &self.counters.undelivered_retries_exhausted,
            Cause::WorkerPanicked => &self.counters.undelivered_worker_panicked,
            _ => &self.counters.undelivered_shutdown,
        };
        Counters::add(c, n);
        if self.set.dead_letter.is_none() && self.set.callbacks.is_empty() {
            // Nobody to report to: the boxes go straight back to the pool, so a dead backend
            // does not make the caller allocate fresh records for the ones it gave up on.
            self.queue.recycle(records);
            return;
        }
        let u = Undelivered {
            cause,
            reason,
            // Out of their boxes: the callbacks' API is plain records (a rare path).
            records: records.into_iter().map(|b| *b).collect(),
            payload,
        };
        self.report(&u);
        // Boxed again on this thread, for the caller to fill without allocating.
        self.queue.recycle(u.records.into_iter().map(Box::new));
    }

    fn report(&mut self, u: &Undelivered) {
        if u.records.is_empty() {
            return;
        }
        if let Some(dl) = self.set.dead_letter.as_mut() {
            dl.write(u, &self.counters);
        }
        for cb in &self.set.callbacks {
            if std::panic::catch_unwind(AssertUnwindSafe(|| cb(u))).is_err() {
                Counters::add(&self.counters.callback_panics, 1);
            }
        }
    }

    fn drain_lane(&mut self) {
        let Some(lane) = self.lane.clone() else {
            return;
        };
        let mut groups: Vec<(Cause, Vec<Record>)> = Vec::new();
        for (r, cause) in lane.try_iter().take(4096) {
            let mut r = *r;
            let mut invalid = 0;
            r.prepare(self.set.default_fqn.as_ref(), &mut invalid);
            match groups.last_mut() {
                Some((c, v)) if *c == cause => v.push(r),
                _ => groups.push((cause, vec![r])),
            }
        }
        for (cause, records) in groups {
            let u = Undelivered {
                cause,
                reason: Some("the queue was full".into()),
                records,
                payload: None,
            };
            self.report(&u);
            // Back to the pool (the caller's drops gave their boxes up to the lane).
            self.queue.recycle(u.records.into_iter().map(Box::new));
        }
    }

    fn resolved_total(&self) -> u64 {
        self.resolved + self.counters.dropped_oldest.load(Ordering::Acquire)
    }

    /// Takes a flush or shutdown request; `mark` is what had been enqueued when it arrived
    /// (given when it arrived during a send), else counted now.
    fn control(&mut self, c: Control, mark: Option<u64>) {
        match c {
            Control::Flush {
                deadline,
                reply,
                shutdown,
            } => {
                // `taken` counts every record the worker took, so the mark covers its partial
                // batch (`pending`) and the batch in flight as well as the queue.
                // Read evictions before the channel length: a racing eviction then makes the
                // mark low by one (flush returns a hair early), never high (flush would hang).
                let mark = mark.unwrap_or_else(|| {
                    let evicted = self.counters.dropped_oldest.load(Ordering::Acquire);
                    self.taken + evicted + self.queue.len() as u64
                });
                if shutdown {
                    self.queue.close();
                    self.shutdown_deadline =
                        Some(self.shutdown_deadline.map_or(deadline, |d| d.min(deadline)));
                }
                self.waiters.push(Waiter {
                    mark,
                    deadline,
                    started: Instant::now(),
                    reply,
                    shutdown,
                });
            }
        }
    }

    fn complete_waiters(&mut self) {
        let done = self.resolved_total();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            // A shutdown completes when everything is resolved (the loop then exits).
            if !w.shutdown && done >= w.mark {
                let w = self.waiters.swap_remove(i);
                let report = FlushReport {
                    stats: self.counters.snapshot(),
                    waited: w.started.elapsed(),
                };
                if let Some(tx) = w.reply {
                    let _ = tx.send(Ok(report));
                }
            } else {
                i += 1;
            }
        }
    }

    /// Times out expired waiters; returns true when the shutdown deadline has passed.
    fn expire_waiters(&mut self, now: Instant) -> bool {
        let mut i = 0;
        while i < self.waiters.len() {
            if !self.waiters[i].shutdown && now >= self.waiters[i].deadline {
                let w = self.waiters.swap_remove(i);
                let remaining =
                    self.taken + self.queue.len() as u64 - self.resolved_total().min(self.taken);
                if let Some(tx) = w.reply {
                    let _ = tx.send(Err(FlushError::Timeout {
                        waited: w.started.elapsed(),
                        remaining,
                    }));
                }
            } else {
                i += 1;
            }
        }
        self.shutdown_deadline.is_some_and(|d| now >= d)
    }

    fn wait(&mut self, now: Instant) {
        let mut wake = self.next_tick;
        let blocked = self.breaker.blocked_until(now);
        if let Some(inf) = &self.inflight {
            // Due at its retry time, but never before the breaker lets a send through: a batch
            // whose retry time has passed while the breaker is open must not make this a spin.
            wake = wake.min(blocked.map_or(inf.next_at, |b| b.max(inf.next_at)));
        } else if let Some(until) = blocked {
            wake = wake.min(until);
        }
        for w in &self.waiters {
            wake = wake.min(w.deadline);
        }
        if let Some(d) = self.shutdown_deadline {
            wake = wake.min(d);
        }
        if let Some(d) = self.metrics.due() {
            wake = wake.min(d);
        }
        let timeout = wake.saturating_duration_since(now);
        let lane = self.lane.clone().unwrap_or_else(never);
        let ctl = self.ctl.clone();
        select! {
            recv(ctl) -> msg => match msg {
                Ok(c) => self.control(c, None),
                Err(_) => {
                    // Every handle is gone without a shutdown: shut down with a bounded wait.
                    if self.shutdown_deadline.is_none() {
                        self.queue.close();
                        self.shutdown_deadline = Some(Instant::now() + Duration::from_secs(5));
                        self.diag.guard_gone();
                        self.ctl = never();
                    }
                }
            },
            recv(self.wake) -> _ => {}
            recv(lane) -> msg => if let Ok((r, cause)) = msg {
                let u = Undelivered { cause, reason: Some("the queue was full".into()), records: vec![*r], payload: None };
                self.report(&u);
                self.queue.recycle(u.records.into_iter().map(Box::new));
            },
            default(timeout) => {}
        }
    }

    /// Abandons what is left at the shutdown deadline, stops the sink, answers the waiters.
    fn finish(mut self) {
        let mut left: Vec<Box<Record>> = Vec::new();
        let mut payload = None;
        let mut reason = "shutdown timed out".to_string();
        if let Some(mut inf) = self.inflight.take() {
            payload = inf.payload.take();
            if !inf.reason.is_empty() {
                reason = format!("shutdown timed out; last error: {}", inf.reason);
            }
            if inf.segment.is_some() {
                // Replayed from the spool and still there: nothing to do.
                inf.batch.records.clear();
            }
            left.append(&mut inf.batch.records);
        }
        left.append(&mut self.pending); // not unstaged: the queue is closed to pushes
        self.drain_closed_queue(&mut left);
        if !left.is_empty() && self.set.spool.is_some() {
            left = self
                .spool_records(left, false, true)
                .err()
                .unwrap_or_default();
        }
        if let Some(sp) = self.set.spool.as_mut() {
            sp.sync_now();
        }
        let timed_out = !left.is_empty();
        if timed_out {
            self.undeliver(left, Cause::ShutdownTimeout, Some(reason), payload, true);
        }
        self.drain_lane();
        // Answer first (the counts are final, and published), then close the sink: the
        // caller's shutdown returns without waiting for the connection to close.
        self.metrics.finish(&self.counters);
        let stats = self.counters.snapshot();
        for w in self.waiters.drain(..) {
            let result = if timed_out {
                Err(FlushError::Timeout {
                    waited: w.started.elapsed(),
                    remaining: stats.undelivered_shutdown,
                })
            } else {
                Ok(FlushReport {
                    stats: stats.clone(),
                    waited: w.started.elapsed(),
                })
            };
            if let Some(tx) = w.reply {
                let _ = tx.send(result);
            }
        }
        let grace = Duration::from_millis(500);
        let sink = &mut self.sink;
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.rt
                .block_on(async { tokio::time::timeout(grace, sink.shutdown()).await })
        }));
        self.print_loss_summary();
        // Dropping the runtime here is fine: this is our own thread, never an async context.
        self.rt.shutdown_timeout(Duration::from_millis(100));
    }

    /// Closes the queue and takes everything left in it, including records whose push was
    /// under way at the close (no record lands after this), prepared and accounted as taken.
    fn drain_closed_queue(&mut self, out: &mut Vec<Box<Record>>) {
        self.queue.close();
        let drained = self.queue.drain_after_close();
        self.taken += drained.len() as u64;
        for mut r in drained {
            let mut invalid = 0;
            r.prepare(self.set.default_fqn.as_ref(), &mut invalid);
            if invalid > 0 {
                Counters::add(&self.counters.invalid_fields, invalid);
            }
            out.push(r);
        }
    }

    fn print_loss_summary(&self) {
        if self.set.loss_summary
            && let Some(line) = crate::diag::loss_summary(self.set.name, &self.counters.snapshot())
        {
            eprintln!("{line}");
        }
    }

    /// The worker's loop panicked. Counts everything it held and everything queued as
    /// undelivered ([`Cause::WorkerPanicked`]), closes the queue (later records count as
    /// `dropped_closed`), and answers every waiting flush or shutdown, so nothing is lost
    /// silently and nobody waits for a thread that is gone.
    fn died(mut self, msg: &str) {
        let reason = format!("the worker panicked: {msg}");
        self.counters.set_error(reason.clone());
        if let Ok(mut g) = self.counters.worker_panic.lock() {
            *g = Some(msg.to_string());
        }
        let mut left: Vec<Box<Record>> = Vec::new();
        if let Some(mut inf) = self.inflight.take()
            && inf.segment.is_none()
        {
            left.append(&mut inf.batch.records);
        }
        left.append(&mut self.pending); // not unstaged: the queue is closed to pushes
        self.drain_closed_queue(&mut left);
        // Records the panic took with it (a batch being handled when it struck) cannot be
        // reported, but they are counted: everything taken and neither resolved nor in hand.
        let unseen = self.taken.saturating_sub(self.resolved + left.len() as u64);
        if unseen > 0 {
            self.resolved += unseen;
            Counters::add(&self.counters.undelivered_worker_panicked, unseen);
        }
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.undeliver(
                left,
                Cause::WorkerPanicked,
                Some(reason.clone()),
                None,
                true,
            );
            self.drain_lane();
        }));
        self.metrics.finish(&self.counters);
        for w in self.waiters.drain(..) {
            if let Some(tx) = w.reply {
                let _ = tx.send(Err(FlushError::WorkerPanicked {
                    reason: msg.to_string(),
                }));
            }
        }
        // Requests already queued get the same answer; later ones find the channel closed.
        while let Ok(Control::Flush {
            reply: Some(tx), ..
        }) = self.ctl.try_recv()
        {
            let _ = tx.send(Err(FlushError::WorkerPanicked {
                reason: msg.to_string(),
            }));
        }
        tracing::error!(target: crate::diag::TARGET, backend = self.set.name, reason = msg, "worker panicked: the pipeline stopped");
        self.print_loss_summary();
        self.rt.shutdown_timeout(Duration::from_millis(100));
    }
}
