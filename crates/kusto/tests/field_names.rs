//! The core's rule for repeated field names (`logship_core::fields`, "Repeated and reserved
//! field names") in a Kusto row: the `Fields` object holds each name once, with the later
//! value, and a snapshot one property per name. The receiver stores `Fields` as parsed JSON,
//! which keeps one of two repeated keys whatever was sent, so this checks the row's bytes as
//! the streaming request carries them (records prepared by the core's pipeline, encoded by
//! the crate's `RowEncoder`), and the row the receiver stored.

mod support;

use std::time::Duration;

use logship_core::PipelineBuilder;
use logship_core::testing::MemorySink;
use logship_kusto::IngestionMode;
use logship_kusto::encode::RowEncoder;
use serde_json::{Value, json};
use support::*;
use tracing_subscriber::prelude::*;

fn emit() {
    let span = tracing::info_span!("checkout", dup_span = "outer");
    let _e = span.enter();
    tracing::info!(
        dup_a = 1_i64,
        dup_b = true,
        dup_a = "two",
        dup_span = "event",
        snapshot.cart.dup_items = 1_i64,
        snapshot.cart.dup_items = 3_i64,
        "repeated"
    );
}

#[test]
fn the_row_bytes_hold_each_field_name_once() {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .build(sink)
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        emit();
    }
    guard
        .flush(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let records = received.records();
    let mut out = Vec::new();
    RowEncoder::new("test-host", None)
        .encode(&records[0], &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text.matches("\"dup_a\":").count(), 1, "{text}");
    assert_eq!(text.matches("\"dup_span\":").count(), 1, "{text}");
    assert_eq!(text.matches("\"dup_items\"").count(), 1, "{text}");
    let row: Value = serde_json::from_str(text.trim_end()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        row["Fields"],
        json!({"dup_a": "two", "dup_b": true, "dup_span": "event"})
    );
}

#[test]
fn the_stored_row_has_the_later_values() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        emit();
    }
    guard.flush(WAIT).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 1, WAIT));
    let rows = r.rows_in(DB, TABLE);
    assert_eq!(
        rows[0]["Fields"],
        json!({"dup_a": "two", "dup_b": true, "dup_span": "event"})
    );
    assert_eq!(
        rows[0]["Snapshots"],
        json!([{"name": "cart", "properties": [{"name": "dup_items", "type": "INTEGER", "value": 3}]}])
    );
}
