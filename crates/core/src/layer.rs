//! [`ShipLayer`]: the `tracing_subscriber::Layer` every backend hands out.
//!
//! It does the cheap part on the caller's thread — captures the event or the closed span into
//! an owned [`Record`] and queues it — and nothing else: no formatting beyond `Debug` values,
//! no I/O, no locks other than the registry's span extensions. It never filters globally
//! (`enabled` is not overridden), so attach `.with_filter(…)` to choose what it ships:
//!
//! ```
//! use tracing_subscriber::{prelude::*, filter::LevelFilter};
//! use logship_core::{PipelineBuilder, testing::MemorySink};
//!
//! let (sink, received) = MemorySink::new();
//! let (layer, guard) = PipelineBuilder::new().build(sink)?;
//! let subscriber = tracing_subscriber::registry().with(layer.with_filter(LevelFilter::INFO));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(order_id = 42_u64, "order placed");
//!     tracing::debug!("not shipped: below the filter");
//! });
//! guard.flush(std::time::Duration::from_secs(5))?;
//! assert_eq!(received.records().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # One event, one identity
//!
//! Several logship layers often sit on one registry (one per backend, each with its own
//! `PipelineBuilder::build`, sink and worker). They agree on what they ship:
//!
//! * **Events**: every logship layer gives one `tracing` event the same timestamp and the same
//!   tracking id. The first layer that captures the event reads the clock and takes the next
//!   number of a per-thread event counter; the others reuse both, through a thread-local
//!   *current event* slot that each layer's `event_enabled` empties when a dispatch starts
//!   (tracing-core calls it for every layer, through per-layer filters too, before any
//!   `on_event`) and that is keyed by the event's address. Each worker then derives the tracking
//!   id from the event's thread number and sequence number with a keyed 128-bit mix (the key
//!   is random per process), so the ids agree without the caller's thread generating one: the
//!   caller pays one clock read per event, not per layer, and no atomic, lock or allocation for
//!   it. A `tracking_id` field set by the event still wins; records built with
//!   [`Record::event`](crate::Record::event) get a random id.
//! * **Spans**: the per-span state lives in the registry's extensions, shared by every logship
//!   layer; the span's tracking id is generated once, and its close (end timestamp, wall and
//!   busy durations, failure) is measured by the first layer that reports it and reused by the
//!   others, so every layer's span-timing record is the same.
//!
//! # Records from the `log` crate
//!
//! Events that `tracing-log` (its `LogTracer`) turns from `log` records arrive with the target
//! `log` and the real target, module path, file and line as `log.target`, `log.module_path`,
//! `log.file` and `log.line` fields. The layer normalizes them: the record carries the real
//! target, module path, file and line (as owned metadata:
//! [`Record::metadata`](crate::Record::metadata) is `None` for them), and the `log.*` fields
//! are not shipped. Per-layer filters still see the event as tracing-log dispatches it (target
//! `log`). Ordinary events pay one string-length comparison for this.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::span::{Attributes, Id, Record as SpanValues};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::capture::identity;
use crate::capture::span::{self, SpanState};
use crate::capture::suppress::is_suppressed;
use crate::capture::visit::{EventVisitor, LogEventVisitor, SpanVisitor};
use crate::config::SpanTimingFilter;
use crate::guard::{Handle, Shared};
use crate::record::{Origin, OwnedMeta, Record, RecordKind, SpanContext, SpanTiming};
use crate::{SpanFields, Timestamp};

pub(crate) struct CaptureConfig {
    pub(crate) events: bool,
    pub(crate) span_timings: bool,
    pub(crate) timing_filter: Option<SpanTimingFilter>,
    pub(crate) span_fields: SpanFields,
}

/// The layer a backend's `build()` returns. See the [module docs](self).
#[derive(Clone)]
pub struct ShipLayer {
    id: u64,
    shared: Arc<Shared>,
    capture: Arc<CaptureConfig>,
    /// The dispatch this layer serves, for reading OpenTelemetry contexts.
    #[cfg(feature = "opentelemetry")]
    otel: crate::otel::DispatchSlot,
}

impl std::fmt::Debug for ShipLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipLayer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ShipLayer {
    pub(crate) fn new(shared: Arc<Shared>, capture: CaptureConfig) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            shared,
            capture: Arc::new(capture),
            #[cfg(feature = "opentelemetry")]
            otel: crate::otel::DispatchSlot::default(),
        }
    }

    /// A handle for stats and flushing.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    fn span_ctx<S>(ctx: &Context<'_, S>, id: &Id) -> Option<Arc<SpanContext>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.span(id)?;
        let ext = span.extensions();
        ext.get::<SpanState>().and_then(SpanState::ctx)
    }
}

/// Whether `event` came from the `log` crate through `tracing-log` (its callsites all have the
/// target `log`: the string comparison keeps the callsite check off the ordinary path).
#[inline]
fn is_log_event(meta: &Metadata<'_>, event: &Event<'_>) -> bool {
    meta.target() == "log" && event.is_log()
}

/// Captures an event from the `log` crate: the record gets the log record's own target,
/// module path, file and line (as owned metadata; the callsite's is tracing-log's, shared by
/// every log record of the level), and the `log.*` fields that carried them are not shipped.
#[cold]
fn capture_log_event(rec: &mut Record, event: &Event<'_>) {
    if let Some(m) = event.normalized_metadata() {
        rec.origin = Origin::Owned(Arc::new(OwnedMeta::new(
            m.target().to_owned(),
            m.name().to_owned(),
            m.module_path().map(str::to_owned),
            m.file().map(str::to_owned),
            m.line(),
        )));
    }
    event.record(&mut LogEventVisitor(EventVisitor { record: rec }));
}

impl<S> tracing_subscriber::Layer<S> for ShipLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if is_suppressed() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<SpanState>().is_some() {
            return; // another logship layer already owns it
        }
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanState>().and_then(SpanState::ctx));
        let meta = attrs.metadata();
        // Filled in place, in a context recycled by a worker when one is free (no allocation,
        // no copy; see `capture::span`).
        let mut arc = span::blank_ctx(&self.shared.queue.span_pool);
        if Arc::get_mut(&mut arc).is_none() {
            // Never happens (the pool only holds unshared contexts): stay correct anyway.
            arc = Arc::new(SpanContext::blank());
        }
        let failed = {
            let Some(sc) = Arc::get_mut(&mut arc) else {
                return;
            };
            sc.meta = Some(meta);
            sc.name = Cow::Borrowed(meta.name());
            sc.target = Cow::Borrowed(meta.target());
            sc.parent = parent;
            let mut v = SpanVisitor {
                ctx: sc,
                failed: false,
            };
            attrs.record(&mut v);
            v.failed
        };
        let mut ext = span.extensions_mut();
        if ext.get_mut::<SpanState>().is_none() {
            ext.insert(SpanState::new(self.id, arc, failed));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        if let Some(state) = ext.get::<SpanState>()
            && state.owner == self.id
        {
            state.update(|sc| {
                let mut v = SpanVisitor {
                    ctx: sc,
                    failed: false,
                };
                values.record(&mut v);
                v.failed
            });
        }
    }

    #[cfg(feature = "opentelemetry")]
    fn on_register_dispatch(&self, subscriber: &tracing_core::Dispatch) {
        self.otel.register(subscriber);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        let Some(state) = ext.get::<SpanState>() else {
            return;
        };
        if state.owner != self.id {
            return;
        }
        state.enter();
        // The first enter reads the OpenTelemetry ids (once per span), extensions released.
        #[cfg(feature = "opentelemetry")]
        if let Some(sc) = state.ctx() {
            drop(ext);
            self.otel.resolve(&sc, id, &ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(state) = span.extensions().get::<SpanState>()
            && state.owner == self.id
        {
            state.exit();
        }
    }

    /// Never filters (returns `true`): it marks the start of an event's dispatch on this
    /// thread, so the event's identity is taken afresh (see the [module docs](self)).
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        identity::begin_dispatch(event);
        true
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if is_suppressed() {
            return;
        }
        let meta = event.metadata();
        // The span the event is in, as this layer sees it (a per-layer filter may hide some).
        let span = ctx.event_span(event);
        if *meta.level() == Level::ERROR
            && let Some(s) = &span
        {
            // An ERROR inside a span marks the span (and its timing) as failed.
            for s in s.scope() {
                if let Some(state) = s.extensions().get::<SpanState>() {
                    state.mark_failed();
                }
            }
        }
        if !self.capture.events || self.shared.refuse_before_capture(*meta.level()) {
            return;
        }
        let id = identity::of(event, self.id);
        let span_id = span.as_ref().map(|s| s.id().into_u64());
        let mut rec = self.shared.queue.blank();
        // Another logship layer of this dispatch captured the event already: take its record
        // (see `capture::identity`); else capture it here.
        match identity::reuse(&id, &mut rec) {
            Some(theirs) => {
                if theirs != span_id {
                    rec.span = span.and_then(|s| Self::span_ctx(&ctx, &s.id()));
                }
            }
            None => {
                rec.begin(meta, RecordKind::Event, id.timestamp, id.seq);
                // The OpenTelemetry ids were read at the span's first enter (not here: an
                // event can be emitted while `tracing-opentelemetry` holds the span's context
                // lock).
                rec.span = span.and_then(|s| Self::span_ctx(&ctx, &s.id()));
                if is_log_event(meta, event) {
                    capture_log_event(&mut rec, event);
                } else {
                    event.record(&mut EventVisitor { record: &mut rec });
                }
                if id.first && id.expected > 1 {
                    identity::share(&rec, span_id);
                }
            }
        }
        rec.span_fields = self.capture.span_fields;
        self.shared.push(rec);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if !self.capture.span_timings || is_suppressed() {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let meta = span.metadata();
        if let Some(f) = &self.capture.timing_filter
            && !f(meta)
        {
            return;
        }
        let ext = span.extensions();
        let Some(state) = ext.get::<SpanState>() else {
            return;
        };
        if self.shared.refuse_before_capture(*meta.level()) {
            return;
        }
        // Two clock reads per close, by the first logship layer that reports it (the others
        // reuse them): the wall-clock end, and the monotonic end from which the durations
        // come; the start is the end minus the (monotonic) wall duration.
        let (end, wall, busy, failed) = state.closed();
        let mut rec = self.shared.queue.blank();
        rec.begin(meta, RecordKind::SpanTiming, end, 0);
        rec.span_fields = self.capture.span_fields;
        rec.timing = Some(SpanTiming {
            start: Timestamp::from_nanos(
                end.as_nanos()
                    .saturating_sub(u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX)),
            ),
            end,
            duration: wall,
            busy,
            failed,
        });
        rec.span = state.ctx();
        drop(ext);
        #[cfg(feature = "opentelemetry")]
        if let Some(sc) = &rec.span {
            self.otel.resolve(sc, &id, &ctx);
        }
        self.shared.push(rec);
    }
}
