//! Queued ingestion: as the only mode, and as the managed fallback after repeated
//! throttling or when streaming is disabled.

mod support;

use std::time::Duration;

use logship_kusto::IngestionMode;
use serde_json::json;
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn queued_mode_uploads_a_blob_and_enqueues_a_message() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Queued)
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..50 {
            tracing::info!(i, "queued row");
        }
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 50, WAIT));
    assert_eq!(r.row_count(TABLE), 50);
    let k = r.stats();
    assert_eq!(k.streaming_requests, 0);
    assert_eq!(k.queued_ingestions, 1);
    assert_eq!(k.queued_failures, 0);
    assert_eq!(k.blobs_uploaded, 1);
    let q = &r.queued_ingestions()[0];
    assert_eq!(q.outcome, Ok(50));
    let m = &q.message;
    assert_eq!(m["DatabaseName"], json!(DB));
    assert_eq!(m["TableName"], json!(TABLE));
    assert_eq!(m["AdditionalProperties"]["format"], json!("multijson"));
    assert_eq!(
        m["AdditionalProperties"]["ingestionMappingReference"],
        json!("logship_v1")
    );
    assert_eq!(
        m["AdditionalProperties"]["authorizationContext"],
        json!(r.authorization_context())
    );
    let cmds: Vec<String> = r.mgmt_commands().into_iter().map(|c| c.csl).collect();
    assert_eq!(
        cmds,
        vec![".get ingestion resources", ".get kusto identity token"]
    );
    let row = &r.rows_in(DB, TABLE)[0];
    assert_eq!(row["Message"], json!("queued row"));
    assert_eq!(guard.stats().delivered, 50);
}

#[test]
fn resources_and_identity_are_cached_across_batches() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Queued)
        .build()
        .expect("valid config");
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for batch in 0..3 {
        tracing::info!(batch, "row");
        guard.flush(Duration::from_secs(10)).expect("flushed");
    }
    assert!(r.wait_for_rows(TABLE, 3, WAIT));
    assert_eq!(r.stats().queued_ingestions, 3);
    assert_eq!(r.stats().mgmt_commands, 2);
}

#[test]
fn managed_mode_falls_back_to_queued_after_repeated_throttling() {
    let r = receiver();
    r.throttle_next(3, Duration::ZERO);
    let (layer, guard) = builder(&r).build().expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..10 {
            tracing::info!(i, "row");
        }
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 10, WAIT));
    assert_eq!(r.row_count(TABLE), 10);
    let k = r.stats();
    assert_eq!(k.throttled, 3);
    assert_eq!(k.streaming_rows, 0);
    assert_eq!(k.queued_rows, 10);
    let s = guard.stats();
    assert_eq!(s.delivered, 10);
    assert_eq!(
        s.retries, 2,
        "attempts 1 and 2 are retried, attempt 3 falls back"
    );
}

#[test]
fn managed_mode_uses_queued_when_streaming_is_disabled() {
    let r = receiver_builder()
        .with_streaming_enabled(false)
        .start()
        .expect("receiver");
    let (layer, guard) = builder(&r).build().expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 1, WAIT));
    assert_eq!(r.stats().queued_rows, 1);
    assert_eq!(guard.stats().delivered, 1);
}
