//! Records captured from real `tracing` spans and events (through the core's in-memory sink)
//! encode into linked documents: events point at their span's ACTIVITY by `parent-id`,
//! nested activities at their parent, and conventional fields land in their jKool slots.

use std::time::Duration;

use logship_core::PipelineBuilder;
use logship_core::testing::MemorySink;
use logship_jkool::Encoder;
use serde_json::Value;
use tracing_subscriber::prelude::*;

fn docs() -> Vec<Value> {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new()
        .with_default_source_fqn("APPL=shop#SERVER=web1")
        .build(sink)
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let outer = tracing::info_span!("order", correlator = "order-42", location = "Atlanta, Ga");
        let _o = outer.enter();
        let inner = tracing::info_span!("payment", source_fqn = "APPL=billing#SERVER=b1");
        inner.in_scope(|| {
            let err = std::io::Error::other("card declined");
            tracing::error!(
                error = &err as &dyn std::error::Error,
                tracking_id = "custom-1",
                "charge failed"
            );
        });
    }
    guard
        .flush(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let enc = Encoder::default();
    received
        .records()
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            enc.encode_record(r, &mut out)
                .unwrap_or_else(|e| panic!("{e}"));
            serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

#[test]
fn spans_and_events_link_up() {
    let docs = docs();
    let by_op = |op: &str| {
        docs.iter()
            .find(|d| d["operation"] == op)
            .cloned()
            .unwrap_or_else(|| panic!("no {op} in {docs:?}"))
    };
    assert_eq!(docs.len(), 3, "{docs:?}");
    let event = docs
        .iter()
        .find(|d| d["type"] == "EVENT")
        .cloned()
        .unwrap_or_default();
    let payment = by_op("payment");
    let order = by_op("order");
    assert_eq!(event["tracking-id"], "custom-1");
    assert_eq!(event["parent-id"], payment["tracking-id"]);
    assert_eq!(payment["parent-id"], order["tracking-id"]);
    assert!(order.get("parent-id").is_none());
    assert_eq!(event["source-fqn"], "APPL=billing#SERVER=b1");
    assert_eq!(order["source-fqn"], "APPL=shop#SERVER=web1");
    assert_eq!(event["corrid"], serde_json::json!(["order-42"]));
    assert_eq!(event["location"], "Atlanta, Ga");
    assert_eq!(event["exception"], "card declined");
    assert_eq!(event["severity"], "ERROR");
    // An ERROR inside a span marks the span failed.
    assert_eq!(payment["status"], "EXCEPTION");
    assert!(event.get("properties").is_none(), "{event}");
    let t = |d: &Value, k: &str| d[k].as_u64().unwrap_or_default();
    assert!(t(&payment, "start-time-usec") <= t(&event, "time-usec"));
    assert!(t(&event, "time-usec") <= t(&payment, "end-time-usec"));
    assert!(t(&order, "elapsed-time-usec") >= t(&payment, "elapsed-time-usec"));
}
