//! OpenTelemetry ids in Kusto rows (feature `opentelemetry`): with `create_table` the table
//! and the JSON mapping get the `TraceId`/`SpanId` string columns, and a row inside a traced
//! span holds OpenTelemetry's own ids for that span, as the testkit Kusto receiver ingests it.
#![cfg(feature = "opentelemetry")]

mod support;

use std::time::Duration;

use logship_kusto::{IngestionMode, TRACE_COLUMNS, TableLayout};
use logship_testkit::kusto::KustoReceiver;
use serde_json::{Value, json};
use support::*;
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

fn by_message<'a>(rows: &'a [Value], message: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["Message"] == json!(message))
        .unwrap_or_else(|| panic!("no row {message}: {rows:?}"))
}

#[test]
fn rows_carry_the_otel_ids_in_their_own_columns() {
    let r = KustoReceiver::builder()
        .with_database(DB)
        .start()
        .expect("receiver");
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_create_table(true)
        .build()
        .expect("valid config");
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
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 3, WAIT));
    // The created table ends with the two string columns.
    let cols = r.columns(DB, TABLE).expect("table exists");
    let tail: Vec<(&str, &str)> = cols[cols.len() - 2..]
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(tail, TRACE_COLUMNS);
    assert!(TableLayout::new().trace_columns());
    let (trace_id, span_id) = &ids[0];
    let rows = r.rows_in(DB, TABLE);
    let placed = by_message(&rows, "placed");
    assert_eq!(placed["TraceId"], json!(trace_id), "{placed}");
    assert_eq!(placed["SpanId"], json!(span_id), "{placed}");
    let timing = rows
        .iter()
        .find(|row| !row["Duration"].is_null())
        .expect("a span timing row");
    assert_eq!(timing["TraceId"], json!(trace_id), "{timing}");
    assert_eq!(timing["SpanId"], json!(span_id), "{timing}");
    let outside = by_message(&rows, "outside");
    assert!(
        outside["TraceId"].is_null() && outside["SpanId"].is_null(),
        "{outside}"
    );
}
