//! OpenTelemetry ids in ECS documents (feature `opentelemetry`): stacked with
//! `tracing-opentelemetry`, log events and span timers inside a traced span carry ECS
//! `trace.id` / `span.id` equal to OpenTelemetry's own ids for that span
//! (https://www.elastic.co/guide/en/ecs/current/ecs-tracing.html).
#![cfg(feature = "opentelemetry")]
#![allow(clippy::unwrap_used)]

mod common;

use logship_testkit::es::EsReceiver;
use tracing_subscriber::prelude::*;

use common::{WAIT, builder};

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
fn documents_carry_ecs_trace_and_span_ids() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_log_events(true)
        .with_install_template(true)
        .build()
        .unwrap();
    let mut ids = Vec::new();
    {
        let _d = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer()))
            .with(layer)
            .set_default();
        tracing::info!("outside");
        let span = tracing::info_span!("checkout");
        let _e = span.enter();
        ids.push(current_ids());
        tracing::info!("placed");
    }
    guard.flush(WAIT).unwrap();
    assert!(es.wait_for_docs(3, WAIT));
    let (trace_id, span_id) = &ids[0];
    let docs = es.documents();
    let placed = docs
        .iter()
        .find(|d| d.source["message"] == "placed")
        .unwrap();
    assert_eq!(
        placed.source["trace"]["id"],
        trace_id.as_str(),
        "{placed:?}"
    );
    assert_eq!(placed.source["span"]["id"], span_id.as_str(), "{placed:?}");
    assert!(placed.source.get("transaction").is_none());
    let timer = docs
        .iter()
        .find(|d| d.source["event"]["kind"] == "metric")
        .unwrap();
    assert_eq!(timer.source["trace"]["id"], trace_id.as_str(), "{timer:?}");
    assert_eq!(timer.source["span"]["id"], span_id.as_str(), "{timer:?}");
    let outside = docs
        .iter()
        .find(|d| d.source["message"] == "outside")
        .unwrap();
    assert!(outside.source.get("trace").is_none() && outside.source.get("span").is_none());
    // The index template maps both as keyword, as ECS defines them.
    let templates = es.templates();
    assert!(
        !templates.is_empty(),
        "the layer installed its index template"
    );
    for (name, t) in templates {
        let props = &t["template"]["mappings"]["properties"];
        assert_eq!(
            props["trace"]["properties"]["id"]["type"], "keyword",
            "{name}"
        );
        assert_eq!(
            props["span"]["properties"]["id"]["type"], "keyword",
            "{name}"
        );
    }
}
