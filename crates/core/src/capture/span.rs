//! Per-span state, shared by every logship layer on one registry.
//!
//! Several logship layers usually sit on one registry, and a registry's extensions are keyed by
//! type (inserting a type twice panics), so the state is inserted only if absent. The first
//! layer that sees the span (its *owner*) maintains it: it records field updates and
//! enter/exit intervals once, whatever the number of layers; every layer reads it.
//!
//! # No lock on the span's hot path
//!
//! * **Enter and exit** take no lock: the state keeps an enter depth and a busy accumulator,
//!   both atomics. The outermost enter (depth 0 → 1) subtracts the monotonic clock from the
//!   accumulator, the outermost exit (1 → 0) adds it back, so while the span is not entered the
//!   accumulator is its busy time, and while it is entered the busy time is the accumulator
//!   plus *now*. Addition commutes, so a span entered and exited on several threads at once
//!   needs no compare-and-swap loop and no pairing of a word with a timestamp: an exit reads
//!   the clock **before** it lowers the depth and an enter **after** it raises it, so an enter
//!   that follows an exit to depth 0 never reads an earlier time than that exit did, and the
//!   time the span was entered on any thread counts once (the union of the intervals, not
//!   their sum, as `tracing-subscriber`'s `fmt` span timings measure it). When threads race on
//!   one span, a thread descheduled between its depth change and its clock read shifts its
//!   bound by that delay (never by more); the result is clamped to `[0, wall]`. Nested and
//!   re-entered spans pay one atomic add and no clock read.
//! * **Reading the context** (every event inside the span) takes no lock: the context the span
//!   was created with is an immutable `Arc`; a field recorded later (`Span::record`, rare) makes
//!   a copy-on-write replacement behind a `OnceLock`ed mutex, and only spans that have had one
//!   pay for that lock on later reads.
//! * **Allocations**: the `Arc<SpanContext>` of a span usually dies on a worker thread (the span
//!   timing record holds it last), and memory freed on another thread than the one that
//!   allocated it makes the caller's next allocation take the allocator's slow path (the
//!   caller's thread cache never gets it back). The worker therefore returns unshared contexts
//!   to a pool beside the pipeline's record pool ([`recycle_ctx`]), cleared, and `on_new_span`
//!   fills one from there in place ([`blank_ctx`]): no allocation and no copy of the context on
//!   the caller once the pool is warm. With several logship layers, the context returns to the
//!   pool of the layer whose worker lets go of it last, which need not be the layer that owns
//!   the span (that one then allocates).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use crate::Timestamp;
use crate::record::SpanContext;
use crate::time::mono_nanos;

/// A span's close as every logship layer reports it: `(end, wall, busy, failed)`.
pub(crate) type Closed = (Timestamp, Duration, Duration, bool);

/// A pool of cleared span contexts (one per pipeline, beside its record pool, and as large).
pub(crate) type CtxPool = ArrayQueue<Arc<SpanContext>>;

/// A blank, unshared span context to fill in place (with `Arc::get_mut`): recycled when
/// `pool` has one, else newly allocated.
#[inline]
pub(crate) fn blank_ctx(pool: &CtxPool) -> Arc<SpanContext> {
    pool.pop().unwrap_or_else(|| Arc::new(SpanContext::blank()))
}

/// Worker side: gives a span context a record held back to `pool` if nothing else holds it
/// (otherwise just drops this reference), and its parents with it while they are unshared.
pub(crate) fn recycle_ctx(pool: &CtxPool, ctx: Arc<SpanContext>) {
    let mut next = Some(ctx);
    while let Some(mut sc) = next.take() {
        let Some(inner) = Arc::get_mut(&mut sc) else {
            return; // still shared: this drop only decrements
        };
        next = inner.clear_for_reuse();
        if pool.push(sc).is_err() {
            return; // pool full: freed (with the rest of the chain)
        }
    }
}

/// The state logship keeps in a span's extensions.
#[derive(Debug)]
pub(crate) struct SpanState {
    pub(crate) owner: u64,
    /// The context as the span was created (read without a lock while `updated` is unset).
    ctx: Arc<SpanContext>,
    /// The latest context, once a field was recorded after creation (copy-on-write).
    updated: OnceLock<Mutex<Arc<SpanContext>>>,
    /// Monotonic nanoseconds at creation.
    start: u64,
    /// How many enters (on any thread) have no exit yet.
    depth: AtomicU64,
    /// Busy nanoseconds, minus the monotonic time of the current outermost enter while
    /// `depth > 0` (wrapping arithmetic; see the [module docs](self)).
    busy: AtomicU64,
    failed: AtomicBool,
    /// Taken by the first layer that reports the close, reused by the others, so that every
    /// layer's timing record has the same end and durations.
    closed: OnceLock<Closed>,
}

impl SpanState {
    pub(crate) fn new(owner: u64, ctx: Arc<SpanContext>, failed: bool) -> Self {
        Self {
            owner,
            ctx,
            updated: OnceLock::new(),
            start: mono_nanos(),
            depth: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            failed: AtomicBool::new(failed),
            closed: OnceLock::new(),
        }
    }

    /// The current context (records captured now share it).
    #[inline]
    pub(crate) fn ctx(&self) -> Option<Arc<SpanContext>> {
        match self.updated.get() {
            None => Some(Arc::clone(&self.ctx)),
            Some(m) => Some(Arc::clone(
                &m.lock().unwrap_or_else(PoisonError::into_inner),
            )),
        }
    }

    /// Copy-on-write update: records already captured keep the old values.
    pub(crate) fn update(&self, f: impl FnOnce(&mut SpanContext) -> bool) {
        let m = self
            .updated
            .get_or_init(|| Mutex::new(Arc::clone(&self.ctx)));
        let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
        if f(Arc::make_mut(&mut g)) {
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// The span was entered (on any thread).
    #[inline]
    pub(crate) fn enter(&self) {
        // Raise the depth first, then read the clock (see the module docs).
        if self.depth.fetch_add(1, Ordering::AcqRel) == 0 {
            self.busy.fetch_sub(mono_nanos(), Ordering::AcqRel);
        }
    }

    /// The span was exited (on any thread). An exit without an enter is ignored.
    #[inline]
    pub(crate) fn exit(&self) {
        // Read the clock first, then lower the depth.
        let now = mono_nanos();
        let prev = self
            .depth
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1));
        if prev == Ok(1) {
            self.busy.fetch_add(now, Ordering::AcqRel);
        }
    }

    /// The close: end (wall clock, read now by the first layer that asks) and
    /// [`timing`](Self::timing) at that moment; the same for every later caller.
    pub(crate) fn closed(&self) -> Closed {
        *self.closed.get_or_init(|| {
            let end = Timestamp::now();
            let (wall, busy, failed) = self.timing(mono_nanos());
            (end, wall, busy, failed)
        })
    }

    /// `(wall, busy, failed)` as of `now` (monotonic nanoseconds from
    /// [`mono_nanos`]: one clock read per close, the caller's).
    pub(crate) fn timing(&self, now: u64) -> (Duration, Duration, bool) {
        let wall = now.saturating_sub(self.start);
        let acc = self.busy.load(Ordering::Acquire);
        let busy = if self.depth.load(Ordering::Acquire) == 0 {
            acc
        } else {
            acc.wrapping_add(now)
        };
        // Read as signed: racing enters and exits on several threads can leave it a little
        // below zero or above the wall time (see the module docs): clamp.
        #[expect(
            clippy::cast_possible_wrap,
            reason = "the accumulator is signed, wrapping"
        )]
        let busy = u64::try_from(busy as i64).unwrap_or(0).min(wall);
        (
            Duration::from_nanos(wall),
            Duration::from_nanos(busy),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn state() -> SpanState {
        SpanState::new(1, Arc::new(SpanContext::blank()), false)
    }

    #[test]
    fn nested_and_reentered_count_the_outer_interval_once() {
        let s = state();
        s.enter();
        s.enter();
        s.exit();
        assert_eq!(s.depth.load(Ordering::Relaxed), 1);
        s.exit();
        s.exit(); // unmatched: ignored
        assert_eq!(s.depth.load(Ordering::Relaxed), 0);
        let after_first = s.busy.load(Ordering::Relaxed);
        assert!(after_first < 1_000_000_000, "{after_first}");
        s.enter();
        s.exit();
        assert!(s.busy.load(Ordering::Relaxed) >= after_first);
        let (wall, busy, failed) = s.timing(mono_nanos());
        assert!(busy <= wall);
        assert!(!failed);
    }

    #[test]
    fn open_span_counts_up_to_now() {
        let s = state();
        s.enter();
        let t = mono_nanos();
        let (_, busy, _) = s.timing(t + 1_000_000);
        assert!(busy >= Duration::from_millis(1), "{busy:?}");
    }

    /// Several threads entering and exiting at once: depth returns to 0 and the accumulator
    /// holds a busy time within the wall time (a lost or doubled interval, or a torn pairing
    /// of depth and timestamp, would leave it wrapped around or above the wall).
    #[test]
    fn concurrent_enters_and_exits_stay_consistent() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 20_000;
        let s = Arc::new(state());
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (s, b) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    for i in 0..ROUNDS {
                        s.enter();
                        if i % 3 == 0 {
                            s.enter();
                            s.exit();
                        }
                        s.exit();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.depth.load(Ordering::Relaxed), 0);
        let wall = i64::try_from(mono_nanos() - s.start).unwrap();
        // Signed (see the module docs): a racing pair may shift a bound by a scheduling delay,
        // never by a whole interval; an interval lost or counted twice would be far outside.
        #[expect(
            clippy::cast_possible_wrap,
            reason = "the accumulator is signed, wrapping"
        )]
        let acc = s.busy.load(Ordering::Relaxed) as i64;
        assert!(acc <= wall && acc > -wall, "busy {acc} ns, wall {wall} ns");
    }

    #[test]
    fn reads_after_an_update_see_it_and_old_readers_keep_theirs() {
        let s = state();
        let before = s.ctx().unwrap();
        s.update(|sc| {
            sc.location = Some("here".into());
            false
        });
        assert_eq!(s.ctx().unwrap().location.as_deref(), Some("here"));
        assert_eq!(before.location, None);
        s.update(|_| true);
        assert!(s.timing(mono_nanos()).2);
    }

    #[test]
    fn recycled_contexts_come_back_blank_and_shared_ones_are_not_taken() {
        let pool = CtxPool::new(4);
        let mut parent = SpanContext::blank();
        parent.location = Some("p".into());
        let mut sc = SpanContext::blank();
        sc.correlators.push("c".into());
        sc.location = Some("l".into());
        sc.parent = Some(Arc::new(parent));
        let a = Arc::new(sc);
        let other = a.clone();
        recycle_ctx(&pool, a); // shared: not pooled
        assert_eq!(pool.len(), 0);
        assert_eq!(other.correlators.len(), 1);
        recycle_ctx(&pool, other); // last holder: pooled, with its unshared parent
        assert_eq!(pool.len(), 2);
        for _ in 0..2 {
            let mut b = blank_ctx(&pool);
            let inner = Arc::get_mut(&mut b).expect("unshared");
            assert!(inner.correlators.is_empty() && inner.location.is_none());
            assert!(inner.parent.is_none() && inner.fields.is_empty());
        }
    }
}
