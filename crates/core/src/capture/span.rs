//! Per-span state, shared by every logship layer on one registry.
//!
//! Several logship layers usually sit on one registry, and a registry's extensions are keyed by
//! type (inserting a type twice panics), so the state is inserted only if absent. The first
//! layer that sees the span (its *owner*) maintains it: it records field updates and
//! enter/exit intervals once, whatever the number of layers; every layer reads it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::Timestamp;
use crate::record::SpanContext;
use crate::time::mono_nanos;

/// A span's close as every logship layer reports it: `(end, wall, busy, failed)`.
pub(crate) type Closed = (Timestamp, Duration, Duration, bool);

#[derive(Debug, Default)]
struct Busy {
    depth: u32,
    /// Monotonic nanoseconds when the span was last entered (while `depth > 0`).
    entered_at: Option<u64>,
    /// Nanoseconds entered so far.
    total: u64,
}

/// The state logship keeps in a span's extensions.
#[derive(Debug)]
pub(crate) struct SpanState {
    pub(crate) owner: u64,
    ctx: Mutex<Arc<SpanContext>>,
    /// Monotonic nanoseconds at creation.
    start: u64,
    busy: Mutex<Busy>,
    failed: AtomicBool,
    /// Taken by the first layer that reports the close, reused by the others, so that every
    /// layer's timing record has the same end and durations.
    closed: OnceLock<Closed>,
}

impl SpanState {
    pub(crate) fn new(owner: u64, ctx: SpanContext, failed: bool) -> Self {
        Self {
            owner,
            ctx: Mutex::new(Arc::new(ctx)),
            start: mono_nanos(),
            busy: Mutex::new(Busy::default()),
            failed: AtomicBool::new(failed),
            closed: OnceLock::new(),
        }
    }

    /// The current context (records captured now share it).
    pub(crate) fn ctx(&self) -> Option<Arc<SpanContext>> {
        self.ctx.lock().ok().map(|g| Arc::clone(&g))
    }

    /// Copy-on-write update: records already captured keep the old values.
    pub(crate) fn update(&self, f: impl FnOnce(&mut SpanContext) -> bool) {
        if let Ok(mut g) = self.ctx.lock() {
            let failed = f(Arc::make_mut(&mut g));
            if failed {
                self.failed.store(true, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn enter(&self) {
        if let Ok(mut b) = self.busy.lock() {
            if b.depth == 0 {
                b.entered_at = Some(mono_nanos());
            }
            b.depth += 1;
        }
    }

    pub(crate) fn exit(&self) {
        if let Ok(mut b) = self.busy.lock() {
            b.depth = b.depth.saturating_sub(1);
            if b.depth == 0
                && let Some(at) = b.entered_at.take()
            {
                b.total += mono_nanos().saturating_sub(at);
            }
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
        let busy = self.busy.lock().map_or(0, |b| {
            b.total + b.entered_at.map_or(0, |at| now.saturating_sub(at))
        });
        (
            Duration::from_nanos(wall),
            Duration::from_nanos(busy.min(wall)),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
