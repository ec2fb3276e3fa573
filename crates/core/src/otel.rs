//! OpenTelemetry trace context on records (feature `opentelemetry`).
//!
//! `tracing-opentelemetry` keeps each span's OpenTelemetry context in the span's registry
//! extensions (a private `OtelData` since 0.32). Its public reader is
//! [`tracing_opentelemetry::get_otel_context`], which needs the [`Dispatch`] the span lives in:
//! the layer keeps a weak handle to its own dispatch (given by
//! [`Layer::on_register_dispatch`](tracing_subscriber::Layer::on_register_dispatch)), never the
//! thread's default, which may be another subscriber with other span ids.
//!
//! The ids are read **once per span** and cached in the span's [`SpanContext`]: at the first
//! enter, or at the close of a span never entered. Never in `on_new_span`, because reading
//! starts the OpenTelemetry span, after which `OpenTelemetrySpanExt::set_parent` (continuing a
//! remote trace) would no longer work; never in `on_event`, because an event can be emitted
//! (by a span processor or sampler) while `tracing-opentelemetry` starts the span holding its
//! `OtelData` lock, which reading takes too. An event therefore carries the ids of the nearest
//! enclosing span that was entered. A span without an OpenTelemetry context (e.g. filtered out
//! of the OpenTelemetry layer) gets its nearest ancestor's ids.
//!
//! Source followed: tokio-rs/tracing-opentelemetry 0.34, `src/otel_context.rs` and
//! `src/layer.rs` (`get_activated_context`, `start_cx`).

use std::sync::RwLock;

use opentelemetry::trace::TraceContextExt as _;
use tracing_core::Subscriber;
use tracing_core::dispatcher::{Dispatch, WeakDispatch};
use tracing_core::span::Id;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::capture::span::SpanState;
use crate::record::{SpanContext, TraceContext};

/// The dispatch a layer was registered with (weak: the dispatch owns the layer).
///
/// A clone starts empty: a cloned layer is a new layer, registered with its own dispatch.
#[derive(Default)]
pub(crate) struct DispatchSlot(RwLock<Option<WeakDispatch>>);

impl Clone for DispatchSlot {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl DispatchSlot {
    pub(crate) fn register(&self, dispatch: &Dispatch) {
        if let Ok(mut g) = self.0.write() {
            *g = Some(dispatch.downgrade());
        }
    }

    fn upgrade(&self) -> Option<Dispatch> {
        self.0.read().ok()?.as_ref()?.upgrade()
    }

    /// The dispatch whose registry holds span `id`: the registered one; else (a layer the
    /// dispatch was not announced to: tracing-subscriber 0.3.23's `impl Layer for Vec<L>` does
    /// not forward `on_register_dispatch`, fixed by tokio-rs/tracing PR #3478, unreleased; nor
    /// does a boxed subscriber, PR #3591) the thread's default dispatch, used (and kept) only
    /// if its registry's span `id` holds the very per-span state this layer's registry does,
    /// so a span id is never looked up in another subscriber's registry.
    fn dispatch<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<Dispatch>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(d) = self.upgrade() {
            return Some(d);
        }
        let state_of = |span: tracing_subscriber::registry::SpanRef<'_, S>| {
            span.extensions()
                .get::<SpanState>()
                .map(|s| std::ptr::from_ref(s).addr())
        };
        let ours = state_of(ctx.span(id)?)?;
        let d = tracing_core::dispatcher::get_default(Dispatch::clone);
        let theirs = state_of(d.downcast_ref::<S>()?.span(id)?)?;
        (ours == theirs).then(|| {
            self.register(&d);
            d
        })
    }

    /// Reads the OpenTelemetry ids of span `id` (or its nearest ancestor with any) into `sc`,
    /// unless they were read already. The caller must not hold the span's extensions.
    pub(crate) fn resolve<S>(&self, sc: &SpanContext, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if sc.trace.get().is_some() {
            return;
        }
        let Some(dispatch) = self.dispatch(id, ctx) else {
            return;
        };
        // Suppressed: reading may start the OpenTelemetry span while `tracing-opentelemetry`
        // holds the span's `OtelData` lock; an event the SDK emitted meanwhile must not come
        // back into a logship layer, which would read (and wait on) the same lock.
        let found = crate::capture::suppress::suppressed(|| {
            ctx.span_scope(id).and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| read(&dispatch, &span.id()))
            })
        });
        let _ = sc.trace.set(found);
    }
}

/// The valid OpenTelemetry span context of span `id`, if `tracing-opentelemetry` tracks it.
fn read(dispatch: &Dispatch, id: &Id) -> Option<TraceContext> {
    let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    TraceContext::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes())
}
