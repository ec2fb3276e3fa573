//! OpenTelemetry trace context on records (feature `opentelemetry`): every record inside a span
//! that `tracing-opentelemetry` traces carries exactly the ids OpenTelemetry gave that span.
#![cfg(feature = "opentelemetry")]

use std::time::Duration;

use logship_core::testing::{MemorySink, Received};
use logship_core::{Guard, PipelineBuilder, Record, RecordKind, TraceContext};
use opentelemetry::trace::{
    SpanContext as OtelSpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::prelude::*;

fn tracer() -> opentelemetry_sdk::trace::SdkTracer {
    // No exporter: spans get real ids and go nowhere.
    SdkTracerProvider::builder().build().tracer("logship-test")
}

/// The ids OpenTelemetry holds for the current `tracing` span.
fn current_ids() -> TraceContext {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    assert!(sc.is_valid(), "OpenTelemetry gave the span a valid context");
    TraceContext::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes()).expect("valid ids")
}

fn pipeline() -> (logship_core::ShipLayer, Guard, Received) {
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .build(sink)
        .expect("a default pipeline builds");
    (layer, guard, rx)
}

fn drain(guard: &Guard, rx: &Received) -> Vec<Record> {
    guard.flush(Duration::from_secs(10)).expect("flushed");
    rx.records()
}

fn event(records: &[Record], message: &str) -> Record {
    records
        .iter()
        .find(|r| r.kind() == RecordKind::Event && r.message() == Some(message))
        .unwrap_or_else(|| panic!("no event {message:?}"))
        .clone()
}

fn timing(records: &[Record], name: &str) -> Record {
    records
        .iter()
        .find(|r| r.kind() == RecordKind::SpanTiming && r.name() == name)
        .unwrap_or_else(|| panic!("no timing of {name:?}"))
        .clone()
}

/// Runs the scenario shared by both layer orders and checks every record's ids.
fn check(records_of: impl FnOnce(&dyn Fn()) -> Vec<Record>) {
    let seen = std::sync::Mutex::new(Vec::new());
    let records = records_of(&|| {
        tracing::info!("outside");
        let outer = tracing::info_span!("outer");
        let _o = outer.enter();
        let outer_ids = current_ids();
        tracing::info!("in outer");
        {
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            let inner_ids = current_ids();
            tracing::info!("in inner");
            seen.lock().unwrap().push(inner_ids);
        }
        seen.lock().unwrap().insert(0, outer_ids);
    });
    let seen = seen.into_inner().unwrap();
    let (outer, inner) = (seen[0], seen[1]);
    assert_eq!(outer.trace_id(), inner.trace_id(), "one trace");
    assert_ne!(outer.span_id(), inner.span_id(), "two spans");
    assert_eq!(event(&records, "outside").trace_context(), None);
    assert_eq!(event(&records, "in outer").trace_context(), Some(&outer));
    assert_eq!(event(&records, "in inner").trace_context(), Some(&inner));
    // A span timing carries the closed span's own ids.
    assert_eq!(timing(&records, "inner").trace_context(), Some(&inner));
    assert_eq!(timing(&records, "outer").trace_context(), Some(&outer));
}

#[test]
fn records_carry_the_otel_ids_when_the_otel_layer_is_below() {
    check(|run| {
        let (layer, guard, rx) = pipeline();
        let sub = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer()))
            .with(layer);
        tracing::subscriber::with_default(sub, run);
        drain(&guard, &rx)
    });
}

#[test]
fn records_carry_the_otel_ids_when_the_otel_layer_is_above() {
    check(|run| {
        let (layer, guard, rx) = pipeline();
        let sub = tracing_subscriber::registry()
            .with(layer)
            .with(tracing_opentelemetry::layer().with_tracer(tracer()));
        tracing::subscriber::with_default(sub, run);
        drain(&guard, &rx)
    });
}

/// The ids are read lazily (first enter), so `set_parent` after creating the span, the usual
/// way to continue a trace from an incoming `traceparent`, still works and the records carry
/// the remote trace id.
#[test]
fn a_remote_parent_set_after_creation_is_honoured() {
    let (layer, guard, rx) = pipeline();
    let sub = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer()))
        .with(layer);
    let remote = OtelSpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut ids = None;
    tracing::subscriber::with_default(sub, || {
        let span = tracing::info_span!("request");
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote.clone()))
            .expect("the span has not started yet");
        let _e = span.enter();
        ids = Some(current_ids());
        tracing::info!("handled");
    });
    let ids = ids.unwrap();
    let records = drain(&guard, &rx);
    let got = event(&records, "handled")
        .trace_context()
        .copied()
        .expect("ids");
    assert_eq!(
        got.trace_id_hex().as_str(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(got, ids);
    assert_ne!(
        got.span_id_hex().as_str(),
        "00f067aa0ba902b7",
        "a child of the remote span"
    );
}

/// A span the OpenTelemetry layer does not trace (filtered out) gets its nearest traced
/// ancestor's ids.
#[test]
fn an_untraced_span_inherits_the_nearest_ancestors_ids() {
    let (layer, guard, rx) = pipeline();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer())
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.name() != "quiet"
        }));
    let sub = tracing_subscriber::registry().with(otel).with(layer);
    let mut outer_ids = None;
    tracing::subscriber::with_default(sub, || {
        let outer = tracing::info_span!("outer");
        let _o = outer.enter();
        outer_ids = Some(current_ids());
        let quiet = tracing::info_span!("quiet");
        let _q = quiet.enter();
        tracing::info!("in quiet");
    });
    let records = drain(&guard, &rx);
    assert_eq!(
        event(&records, "in quiet").trace_context(),
        outer_ids.as_ref()
    );
}

/// Without an OpenTelemetry layer nothing is added.
#[test]
fn no_otel_layer_no_ids() {
    let (layer, guard, rx) = pipeline();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let s = tracing::info_span!("s");
        let _e = s.enter();
        tracing::info!("plain");
    });
    let records = drain(&guard, &rx);
    assert_eq!(event(&records, "plain").trace_context(), None);
    assert_eq!(timing(&records, "s").trace_context(), None);
}

/// A span processor that logs through `tracing` when a span starts (as a user's processor or
/// sampler may), i.e. while `tracing-opentelemetry` holds the span's context lock.
#[derive(Debug)]
struct LoggingProcessor;

impl opentelemetry_sdk::trace::SpanProcessor for LoggingProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {
        tracing::info!("span started");
    }
    fn on_end(&self, _span: opentelemetry_sdk::trace::SpanData) {}
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// An event emitted while the OpenTelemetry span starts neither deadlocks nor loses the ids, in
/// either layer order. Runs on a thread with a deadline, so a deadlock fails instead of hanging.
#[test]
fn an_event_emitted_while_the_otel_span_starts_does_not_deadlock() {
    for otel_below in [true, false] {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (layer, guard, rx) = pipeline();
            let tracer = SdkTracerProvider::builder()
                .with_span_processor(LoggingProcessor)
                .build()
                .tracer("logship-test");
            let mut ids = None;
            let run = || {
                let span = tracing::info_span!("request");
                let _e = span.enter();
                ids = Some(current_ids());
                tracing::info!("handled");
            };
            if otel_below {
                let sub = tracing_subscriber::registry()
                    .with(tracing_opentelemetry::layer().with_tracer(tracer))
                    .with(layer);
                tracing::subscriber::with_default(sub, run);
            } else {
                let sub = tracing_subscriber::registry()
                    .with(layer)
                    .with(tracing_opentelemetry::layer().with_tracer(tracer));
                tracing::subscriber::with_default(sub, run);
            }
            let records = drain(&guard, &rx);
            let _ = tx.send((ids, event(&records, "handled").trace_context().copied()));
        });
        let (ids, got) = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("deadlock (otel layer below: {otel_below})"));
        assert_eq!(got, ids, "otel layer below: {otel_below}");
    }
}

/// A layer inside a `Vec` (how several backends are often stacked) is not told its dispatch
/// (tracing-subscriber's `Vec<L>` does not forward `on_register_dispatch`): the ids are still
/// read, through the thread's default dispatch once it is checked to be the layer's own.
#[test]
fn a_layer_inside_a_vec_still_gets_the_ids() {
    use tracing_subscriber::Layer as _;
    let (layer, guard, rx) = pipeline();
    let (other, other_guard, other_rx) = pipeline();
    let layers = vec![layer.boxed(), other.boxed()];
    let sub = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer()))
        .with(layers);
    let mut ids = None;
    tracing::subscriber::with_default(sub, || {
        let span = tracing::info_span!("request");
        let _e = span.enter();
        ids = Some(current_ids());
        tracing::info!("handled");
    });
    for (g, r) in [(&guard, &rx), (&other_guard, &other_rx)] {
        let records = drain(g, r);
        assert_eq!(event(&records, "handled").trace_context(), ids.as_ref());
        assert_eq!(timing(&records, "request").trace_context(), ids.as_ref());
    }
}
