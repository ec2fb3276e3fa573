//! OpenTelemetry ids on the wire (feature `opentelemetry`): stacked with `tracing-opentelemetry`,
//! every record inside a traced span carries `trace_id`/`span_id` equal to OpenTelemetry's own
//! ids for that span, as the Fluent receiver decodes them.
#![cfg(feature = "opentelemetry")]
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, addr, assert_clean, fast, receiver};
use logship_fluent::FluentLayer;
use tracing_subscriber::prelude::*;

/// A tracer with real ids and no exporter.
fn tracer() -> opentelemetry_sdk::trace::SdkTracer {
    use opentelemetry::trace::TracerProvider as _;
    opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .build()
        .tracer("logship-test")
}

/// `(trace id, span id)` as OpenTelemetry holds them for the current `tracing` span, in hex.
fn current_ids() -> (String, String) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    assert!(sc.is_valid(), "OpenTelemetry gave the span a valid context");
    (sc.trace_id().to_string(), sc.span_id().to_string())
}

#[test]
fn records_carry_the_otel_trace_and_span_ids() {
    let r = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_pipeline(fast)
        .build()
        .unwrap();
    let mut ids = Vec::new();
    {
        let _d = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer()))
            .with(layer)
            .set_default();
        tracing::info!(trace_id = "mine", "outside");
        let span = tracing::info_span!("order");
        let _e = span.enter();
        ids.push(current_ids());
        // An application field of the same name is kept, renamed (never shadows the ids).
        tracing::info!(trace_id = "mine", "placed");
    }
    guard.flush(WAIT).unwrap();
    assert!(r.wait_for_events(3, WAIT));
    assert_clean(&r);
    let (trace_id, span_id) = &ids[0];
    let events = r.events();
    let placed = events
        .iter()
        .find(|e| e.field("message").and_then(|m| m.as_str()) == Some("placed"))
        .unwrap();
    assert_eq!(
        placed.field("trace_id").unwrap().as_str(),
        Some(trace_id.as_str())
    );
    assert_eq!(
        placed.field("span_id").unwrap().as_str(),
        Some(span_id.as_str())
    );
    assert_eq!(placed.field("_trace_id").unwrap().as_str(), Some("mine"));
    let timing = events.iter().find(|e| e.field("kind").is_some()).unwrap();
    assert_eq!(
        timing.field("trace_id").unwrap().as_str(),
        Some(trace_id.as_str())
    );
    assert_eq!(
        timing.field("span_id").unwrap().as_str(),
        Some(span_id.as_str())
    );
    // Outside any traced span: no ids, and the application's own `trace_id` keeps its name.
    let outside = events
        .iter()
        .find(|e| e.field("message").and_then(|m| m.as_str()) == Some("outside"))
        .unwrap();
    assert_eq!(outside.field("trace_id").unwrap().as_str(), Some("mine"));
    assert!(outside.field("span_id").is_none());
}
