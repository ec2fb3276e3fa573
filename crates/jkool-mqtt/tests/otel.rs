//! OpenTelemetry ids in jKool documents over MQTT (feature `opentelemetry`): stacked with
//! `tracing-opentelemetry`, a document published from inside a traced span carries the
//! `trace_id`/`span_id` properties equal to OpenTelemetry's own ids, and the trace id among its
//! correlators, as a subscriber of an embedded broker receives it.
#![cfg(feature = "opentelemetry")]

mod support;

use logship_jkool_mqtt::JkoolMqttLayer;
use logship_testkit::wait_until;
use serde_json::{Value, json};
use support::{Subscriber, WAIT, start_rumqttd};
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

fn property<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["value"])
}

#[test]
fn published_documents_carry_the_otel_ids() {
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "jk/#", None);
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{broker}"))
        .with_topic("jk/{kind}")
        .with_pipeline(|p| p.with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids = Vec::new();
    {
        let _d = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer()))
            .with(layer)
            .set_default();
        let span = tracing::info_span!("checkout");
        let _e = span.enter();
        ids.push(current_ids());
        tracing::info!("paid");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_until(WAIT, || sub.count() >= 1));
    let (trace_id, span_id) = &ids[0];
    let got = sub.json();
    let (_, doc) = got
        .iter()
        .find(|(_, d)| d["msg-text"] == "paid")
        .unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(property(doc, "trace_id"), Some(&json!(trace_id)), "{doc}");
    assert_eq!(property(doc, "span_id"), Some(&json!(span_id)), "{doc}");
    assert_eq!(doc["corrid"], json!([trace_id]), "{doc}");
}
