//! The core's rule for repeated field names (`logship_core::fields`, "Repeated and reserved
//! field names") in an ECS document: `tracing.fields` holds each name once with the **later**
//! value (the encoder used to keep the first), like every other backend. Records prepared by
//! the core's pipeline, encoded by the crate's encoder; the document's bytes are checked,
//! since a JSON parser (Elasticsearch's included) keeps one of two repeated keys whatever
//! was sent.

use std::time::Duration;

use logship_core::PipelineBuilder;
use logship_core::testing::MemorySink;
use logship_ecs_metrics::__bench::BenchEncoder;
use serde_json::Value;
use tracing_subscriber::prelude::*;

#[test]
fn tracing_fields_hold_each_name_once_with_the_later_value() {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .build(sink)
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(dup_a = 1_i64, dup_b = true, dup_a = "two", "repeated");
    }
    guard
        .flush(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let records = received.records();
    assert_eq!(records.len(), 1);
    let mut out = Vec::new();
    BenchEncoder::default().encode(&records[0], &mut out);
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
    let doc_line = text.lines().nth(1).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(doc_line.matches("\"dup_a\":").count(), 1, "{doc_line}");
    let doc: Value = serde_json::from_str(doc_line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["tracing"]["fields"]["dup_a"], "two", "{doc}");
    assert_eq!(doc["tracing"]["fields"]["dup_b"], true, "{doc}");
}
