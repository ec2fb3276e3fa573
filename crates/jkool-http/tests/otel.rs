//! OpenTelemetry ids in jKool documents (feature `opentelemetry`): stacked with
//! `tracing-opentelemetry`, events and activities inside a traced span carry the `trace_id` and
//! `span_id` string properties equal to OpenTelemetry's own ids for that span, and the trace id
//! among their correlators, as the JESL receiver decodes them.
#![cfg(feature = "opentelemetry")]

use std::time::Duration;

use logship_jkool_http::JkoolHttpLayer;
use logship_testkit::jkool::JkoolReceiver;
use serde_json::{Value, json};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

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

/// The value of property `name`, and how many properties have that name.
fn property<'a>(doc: &'a Value, name: &str) -> (Option<&'a Value>, usize) {
    let props: Vec<&Value> = doc["properties"]
        .as_array()
        .map(|a| a.iter().filter(|p| p["name"] == name).collect())
        .unwrap_or_default();
    (props.first().map(|p| &p["value"]), props.len())
}

#[test]
fn events_and_activities_carry_the_otel_ids() {
    let jk = JkoolReceiver::builder()
        .with_token("tok")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids = Vec::new();
    {
        let _d = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer()))
            .with(layer)
            .set_default();
        tracing::info!(trace_id = "mine", "outside");
        let span = tracing::info_span!("checkout", correlator = "order-42");
        let _e = span.enter();
        ids.push(current_ids());
        tracing::info!(trace_id = "mine", "paid");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(jk.wait_for(3, WAIT), "rejections: {:?}", jk.rejections());
    let (trace_id, span_id) = &ids[0];
    let events = jk.events();
    let paid = events
        .iter()
        .find(|e| e["msg-text"] == "paid")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        property(paid, "trace_id"),
        (Some(&json!(trace_id)), 1),
        "{paid}"
    );
    assert_eq!(
        property(paid, "span_id"),
        (Some(&json!(span_id)), 1),
        "{paid}"
    );
    assert_eq!(
        property(paid, "_trace_id"),
        (Some(&json!("mine")), 1),
        "{paid}"
    );
    assert_eq!(paid["corrid"], json!(["order-42", trace_id]), "{paid}");
    let act = &jk.activities()[0];
    assert_eq!(property(act, "trace_id").0, Some(&json!(trace_id)), "{act}");
    assert_eq!(property(act, "span_id").0, Some(&json!(span_id)), "{act}");
    assert_eq!(act["corrid"], json!(["order-42", trace_id]), "{act}");
    // Outside any traced span: nothing added, the application's `trace_id` keeps its name.
    let outside = events
        .iter()
        .find(|e| e["msg-text"] == "outside")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(property(outside, "trace_id"), (Some(&json!("mine")), 1));
    assert_eq!(property(outside, "span_id"), (None, 0));
    assert!(outside.get("corrid").is_none(), "{outside}");
}
