//! `with_create_table(true)` creates the table and the JSON mapping through `/v1/rest/mgmt`.

mod support;

use std::time::Duration;

use logship_kusto::IngestionMode;
use logship_testkit::kusto::KustoReceiver;
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn table_and_mapping_are_created_at_start() {
    let r = KustoReceiver::builder()
        .with_database(DB)
        .start()
        .expect("receiver");
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_create_table(true)
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(n = 1_i64, "after create");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 1, WAIT));
    let cols = r.columns(DB, TABLE).expect("table exists");
    let mut want: Vec<(String, String)> = SCHEMA
        .iter()
        .map(|(c, t)| (c.to_string(), t.to_string()))
        .collect();
    // With the `opentelemetry` feature, the trace columns last.
    if cfg!(feature = "opentelemetry") {
        want.extend(
            logship_kusto::TRACE_COLUMNS
                .iter()
                .map(|(c, t)| (c.to_string(), t.to_string())),
        );
    }
    assert_eq!(cols, want);
    assert_eq!(
        r.mappings(DB, TABLE),
        vec![("json".to_string(), "logship_v1".to_string())]
    );
    assert_eq!(r.rows_in(DB, TABLE)[0]["Fields"]["n"], serde_json::json!(1));
    assert_eq!(guard.stats().delivered, 1);
}

#[test]
fn a_failed_control_command_names_its_endpoint() {
    let r = KustoReceiver::builder()
        .with_database(DB)
        .start()
        .expect("receiver");
    r.unauthorized_next(2);
    let (_layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_create_table(true)
        .build()
        .expect("valid config");
    assert!(
        logship_testkit::wait_until(WAIT, || guard.stats().last_error.is_some()),
        "the start error is kept"
    );
    let e = guard.stats().last_error.unwrap_or_default();
    // The whole URL of the control command, and which command failed.
    assert!(e.contains(&format!("{}/v1/rest/mgmt", r.url())), "{e}");
    assert!(e.contains("cannot create the table"), "{e}");
}
