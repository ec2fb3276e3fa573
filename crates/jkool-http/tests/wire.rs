//! What goes on the wire, checked by the testkit's JESL receiver, which follows the reference
//! clients (one JSON object per request; `corrid`; lowercase Java property types with text
//! values) and refuses what no reference sends.

use std::time::Duration;

use logship_core::{Level, Record, Snapshot};
use logship_jkool_http::{BodyShape, JkoolHttpLayer};
use logship_testkit::jkool::JkoolReceiver;
use serde_json::{Value, json};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(15);

fn layer(
    jk: &JkoolReceiver,
    f: impl FnOnce(logship_jkool_http::JkoolHttpBuilder) -> logship_jkool_http::JkoolHttpBuilder,
) -> (JkoolHttpLayer, logship_core::Guard) {
    f(JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_pipeline(|p| {
            p.with_max_batch_records(1000)
                .with_linger(Duration::from_secs(60))
                .with_default_source_fqn("APPL=shop#SERVER=web1")
        }))
    .build()
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_document_is_its_own_request_with_an_object_body() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = layer(&jk, |b| b);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("checkout", correlator = "order-42");
        span.in_scope(|| {
            for i in 0..3_u64 {
                tracing::info!(i, "inside {i}");
            }
        });
        drop(span);
        for i in 0..6_u64 {
            tracing::warn!(i, "outside {i}");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered()),
        (10, 0),
        "{s:?} {:?}",
        jk.rejections()
    );
    let c = jk.counters();
    // One request per document: 9 events and 1 activity, 10 requests, no array refused.
    assert_eq!((jk.event_count(), jk.activity_count()), (9, 1));
    assert_eq!(c.requests, 10, "{c:?}");
    assert_eq!(c.documents, 10, "{c:?}");
    assert_eq!(c.arrays_refused, 0);
    assert_eq!(
        (
            c.responses_to("event", 202),
            c.responses_to("activity", 200)
        ),
        (9, 1)
    );
    for r in jk.requests() {
        assert!(
            r.body.starts_with(b"{"),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}"));
        assert!(v.is_object());
    }
    // At most the default 8 posts in flight, so at most 8 kept-alive connections.
    assert!(c.connections <= 8, "{c:?}");
}

#[test]
fn a_refused_document_is_rejected_alone() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = layer(&jk, |b| b);
    let handle = layer.handle();
    for i in 0..5 {
        let mut r = Record::event(Level::INFO, "app").with_message(&format!("doc {i}"));
        if i == 2 {
            // jKool requires a snapshot name; the receiver refuses this one document (400).
            r = r.with_snapshot(Snapshot::new("").with_property("x", 1_i64));
        }
        handle.submit(r.build());
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_rejected, s.retries),
        (4, 1, 0),
        "{s:?}"
    );
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("http 400"),
        "{s:?}"
    );
    let texts: Vec<_> = jk
        .events()
        .iter()
        .map(|e| e["msg-text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts.len(), 4);
    assert!(!texts.iter().any(|t| t == "doc 2"), "{texts:?}");
    let c = jk.counters();
    assert_eq!(
        (c.responses_to("event", 202), c.responses_to("event", 400)),
        (4, 1)
    );
    assert_eq!(c.invalid_documents, 1);
}

#[test]
fn array_bodies_against_a_receiver_that_accepts_them() {
    let jk = JkoolReceiver::builder()
        .with_accept_arrays(true)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = layer(&jk, |b| b.with_body_shape(BodyShape::Array));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..10_u64 {
            tracing::info!(i, "e {i}");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.stats().delivered, 10);
    let c = jk.counters();
    assert_eq!((c.requests, c.documents), (1, 10), "{c:?}");
    let body = jk.last_request().map(|r| r.body).unwrap_or_default();
    assert!(body.starts_with(b"[{") && body.ends_with(b"}]"));
}

#[test]
fn the_default_receiver_refuses_array_bodies() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = layer(&jk, |b| b.with_body_shape(BodyShape::Array));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..3_u64 {
            tracing::info!(i, "e {i}");
        }
    }
    let _ = guard.flush(WAIT);
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_rejected), (0, 3), "{s:?}");
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("a JSON array is not accepted"),
        "{s:?}"
    );
    assert_eq!(jk.counters().arrays_refused, 1);
    assert_eq!(jk.doc_count(), 0);
}

#[test]
fn reference_encodings_pass_the_receiver() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = layer(&jk, |b| b);
    let t = 1_500_000_000_000_000_u64;
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("order", correlator = "order-42");
        span.in_scope(|| {
            tracing::info!(
                corr_id = "pay-7",
                n = 3_i64,
                ratio = 0.5,
                ok = true,
                snapshot.cart.items = 2_i64,
                time_usec = t,
                elapsed_time_usec = 1500_u64,
                comp_code = "WARNING",
                severity = "CRITICAL",
                msg_tag = "billing",
                msg_size = 64_u64,
                msg_age = 12_u64,
                encoding = "none",
                charset = "UTF-8",
                mime_type = "text/plain",
                source_url = "https://shop.example/pay",
                parent_tracking_id = "upstream-1",
                exception = "card declined",
                start_time_usec = t,
                end_time_usec = t + 1500,
                wait_time_used = 20_u64,
                pid = 4242_u64,
                tid = 7_u64,
                msg_text = "charged 9.99",
                "charged"
            );
        });
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.stats().delivered, 2, "{:?}", jk.rejections());
    let events = jk.events();
    let e = &events[0];
    assert_eq!(e["corrid"], json!(["order-42", "pay-7"]));
    assert!(e.get("corr-id").is_none());
    assert_eq!(
        e["properties"],
        json!([
            {"name": "n", "type": "long", "value": "3"},
            {"name": "ratio", "type": "double", "value": "0.5"},
            {"name": "ok", "type": "bool", "value": "true"},
        ])
    );
    assert_eq!(
        e["snapshots"][0]["properties"],
        json!([{"name": "items", "type": "long", "value": "2"}])
    );
    for (key, value) in [
        ("time-usec", json!(t)),
        ("elapsed-time-usec", json!(1500)),
        ("comp-code", json!("WARNING")),
        ("severity", json!("CRITICAL")),
        ("msg-tag", json!("billing")),
        ("msg-size", json!(64)),
        ("msg-age", json!(12)),
        ("encoding", json!("none")),
        ("charset", json!("UTF-8")),
        ("mime-type", json!("text/plain")),
        ("source-url", json!("https://shop.example/pay")),
        ("parent-id", json!("upstream-1")),
        ("exception", json!("card declined")),
        ("start-time-usec", json!(t)),
        ("end-time-usec", json!(t + 1500)),
        ("wait-time-usec", json!(20)),
        ("pid", json!(4242)),
        ("tid", json!(7)),
        ("msg-text", json!("charged 9.99")),
    ] {
        assert_eq!(e[key], value, "{key}: {e}");
    }
    assert_eq!(jk.activities()[0]["corrid"], json!(["order-42"]));
}

#[test]
fn every_property_type_passes_the_receiver() {
    use logship_core::Timestamp;
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = layer(&jk, |b| b);
    let at = Timestamp::from_nanos(1_466_662_761_123_456_789);
    layer.handle().submit(
        Record::event(Level::INFO, "app")
            .with_field("text", "a \"quoted\" value")
            .with_field("n", i64::MIN)
            .with_field("huge", u128::MAX)
            .with_field("x", 1e300)
            .with_field("nan", f64::NAN)
            .with_field("flag", true)
            .with_snapshot(
                Snapshot::new("s")
                    .with_property("at", at)
                    .with_property("d", -0.5)
                    .with_property("b", false),
            )
            .build(),
    );
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.stats().delivered, 1, "{:?}", jk.rejections());
    let e = &jk.events()[0];
    let types: Vec<_> = e["properties"]
        .as_array()
        .map(|ps| ps.iter().map(|p| p["type"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        types,
        [
            json!("string"),
            json!("long"),
            json!("string"),
            json!("double"),
            json!("string"),
            json!("bool")
        ]
    );
    assert!(
        e["properties"]
            .as_array()
            .is_some_and(|ps| ps.iter().all(|p| p["value"].is_string())),
        "{e}"
    );
    assert_eq!(
        e["snapshots"][0]["properties"][0],
        json!({"name": "at", "type": "long", "value-type": "timestamp", "value": "1466662761123456"})
    );
}
