//! The core's rule for repeated field names (`logship_core::fields`, "Repeated and reserved
//! field names"), as jKool documents carry it: records captured from `tracing` (through the
//! core's pipeline, which prepares them as it does for every backend) encode **one property
//! per name**, with the later value, and one snapshot property per name. A jKool receiver
//! parsing the document as JSON would keep only one of two repeated keys whatever was sent, so
//! this looks at the document's bytes.

use std::time::Duration;

use logship_core::PipelineBuilder;
use logship_core::testing::MemorySink;
use logship_jkool::Encoder;
use serde_json::Value;
use tracing_subscriber::prelude::*;

fn document() -> String {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .build(sink)
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(
            dup_a = 1_i64,
            dup_b = true,
            dup_a = "two",
            operation = "first-op",
            operation = "second-op",
            snapshot.cart.dup_items = 1_i64,
            snapshot.cart.dup_items = 3_i64,
            "repeated"
        );
    }
    guard
        .flush(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let records = received.records();
    assert_eq!(records.len(), 1);
    let mut out = Vec::new();
    Encoder::default()
        .encode_record(&records[0], &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn one_property_per_name_with_the_later_value() {
    let text = document();
    // Properties are `{"name": …, "type": …, "value": …}` objects: one per name.
    assert_eq!(text.matches("\"dup_a\"").count(), 1, "{text}");
    assert_eq!(text.matches("\"dup_items\"").count(), 1, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let props = doc["properties"]
        .as_array()
        .unwrap_or_else(|| panic!("no properties in {doc}"));
    let dup_a: Vec<&Value> = props.iter().filter(|p| p["name"] == "dup_a").collect();
    assert_eq!(dup_a.len(), 1, "{doc}");
    assert_eq!(dup_a[0]["value"], "two", "{doc}");
    // A repeated slot field fills the slot with the later value.
    assert_eq!(doc["operation"], "second-op", "{doc}");
    assert!(!text.contains("first-op"), "{text}");
    let snap = text
        .find("\"dup_items\"")
        .map(|at| &text[at..])
        .unwrap_or_default();
    assert!(snap.contains('3'), "{text}");
}
