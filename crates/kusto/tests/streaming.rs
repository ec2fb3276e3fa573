//! Streaming ingestion end to end: AAD token from the receiver's token endpoint, rows in
//! named columns, telemetry headers, exact accounting.

mod support;

use std::time::Duration;

use logship_kusto::IngestionMode;
use serde_json::json;
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn events_and_span_timings_land_in_named_columns() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_service_name("shop")
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("checkout", user = "ann", correlator = "order-42");
        let _e = span.enter();
        tracing::warn!(
            order_id = 42_u64,
            total = 99.5,
            express = true,
            "order \"42\" placed"
        );
        tracing::info!(snapshot.cart.items = 3_i64, "cart");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 3, WAIT));
    let rows = r.rows_in(DB, TABLE);
    assert_eq!(rows.len(), 3);

    let warn = rows
        .iter()
        .find(|r| r["Level"] == "WARN")
        .expect("warn row");
    assert_eq!(warn["Message"], json!("order \"42\" placed"));
    assert_eq!(warn["Target"], json!("streaming"));
    assert_eq!(
        warn["Fields"],
        json!({"order_id": 42, "total": 99.5, "express": true, "user": "ann"})
    );
    assert_eq!(warn["SpanName"], json!("checkout"));
    assert_eq!(warn["Duration"], json!(null));
    assert_eq!(warn["Correlators"], json!(["order-42"]));
    assert_eq!(warn["Host"], json!("test-host"));
    assert_eq!(warn["Service"], json!("shop"));
    assert_eq!(
        warn["SourceFqn"],
        json!("APPL=shop#SERVER=".to_string() + &host())
    );
    assert!(warn["TrackingId"].as_str().is_some_and(|t| t.len() == 36));
    assert!(
        warn["ParentTrackingId"]
            .as_str()
            .is_some_and(|t| t.len() == 36)
    );
    let ts = warn["Timestamp"].as_str().expect("timestamp text");
    assert_eq!(ts.len(), "2026-01-02T03:04:05.1234567Z".len(), "{ts}");
    assert!(ts.ends_with('Z'));
    assert!(warn["Thread"].as_str().is_some_and(|t| t.contains('#')));

    let cart = rows
        .iter()
        .find(|r| r["Message"] == "cart")
        .expect("cart row");
    assert_eq!(
        cart["Snapshots"],
        json!([{"name": "cart", "properties": [{"name": "items", "type": "INTEGER", "value": 3}]}])
    );

    let timing = rows
        .iter()
        .find(|r| r["Duration"] != json!(null))
        .expect("span timing row");
    assert_eq!(timing["SpanName"], json!("checkout"));
    assert_eq!(timing["Message"], json!(null));
    assert_eq!(timing["Fields"], json!({"user": "ann"}));
    assert_eq!(timing["TrackingId"], warn["ParentTrackingId"]);

    // The request: gzip multijson with the mapping, telemetry headers and a bearer token.
    let reqs = r.streaming_requests();
    assert!(reqs.iter().all(|q| q.status == 200));
    let q = &reqs[0];
    assert_eq!(q.stream_format.as_deref(), Some("multijson"));
    assert_eq!(q.mapping_name.as_deref(), Some("logship_v1"));
    assert_eq!(q.header("content-encoding"), Some("gzip"));
    assert_eq!(q.header("x-ms-app"), Some("logship-kusto-tests"));
    assert_eq!(q.header("x-ms-user"), Some("tester"));
    assert_eq!(q.header("x-ms-version"), Some("2024-12-12"));
    assert!(
        q.header("x-ms-client-request-id")
            .is_some_and(|id| id.starts_with("logship.kusto.streamingIngest;"))
    );
    assert!(
        q.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    );

    let stats = guard.stats();
    assert_eq!(stats.delivered, 3);
    assert_eq!(
        stats.undelivered_rejected + stats.undelivered_retries_exhausted,
        0
    );
    assert_eq!(stats.retries, 0);
    assert_eq!(stats.bytes_sent, r.stats().bytes_wire);
    assert_eq!(
        r.stats().tokens_issued,
        1,
        "the token is cached across requests"
    );
    assert_eq!(r.stats().auth_failures, 0);
}

#[test]
fn without_mapping_is_refused_by_a_service_that_follows_the_rest_doc() {
    // https://learn.microsoft.com/kusto/api/rest/streaming-ingest: mappingName is required for
    // JSON formats; the testkit receiver follows that by default.
    let r = logship_testkit::kusto::KustoReceiver::builder()
        .with_table(DB, TABLE, &SCHEMA)
        .start()
        .expect("receiver starts");
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(
            builder(&r)
                .without_mapping()
                .with_ingestion_mode(IngestionMode::Streaming),
        )
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("no mapping");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_rejected, s.retries), (0, 1, 0));
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert!(reason.contains("mappingName"), "{reason}");
    assert_eq!(r.row_count(TABLE), 0);
}

#[test]
fn identity_mapping_without_a_mapping_reference() {
    let r = receiver_without_mapping();
    let (layer, guard) = builder(&r).without_mapping().build().expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..10 {
            tracing::info!(i, "row");
        }
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 10, WAIT));
    assert_eq!(r.row_count(TABLE), 10);
    assert_eq!(
        r.last_streaming_request().and_then(|q| q.mapping_name),
        None
    );
    assert_eq!(guard.stats().delivered, 10);
}

fn receiver_without_mapping() -> logship_testkit::kusto::KustoReceiver {
    // The service as its clients report it (see `KustoBuilder::without_mapping`).
    logship_testkit::kusto::KustoReceiver::builder()
        .with_table(DB, TABLE, &SCHEMA)
        .with_streaming_identity_mapping(true)
        .start()
        .expect("receiver starts")
}

fn host() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}
