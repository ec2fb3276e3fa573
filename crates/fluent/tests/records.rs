//! What a `tracing` event or span becomes on the wire, decoded by the receiver: typed fields,
//! span fields (nested or flattened), span timings, templates, excludes, tags.
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, addr, assert_clean, fast, receiver};
use logship_fluent::{FluentBuilder, FluentLayer, SpanStyle, TagLabel};
use logship_testkit::fluent::{FluentEvent, FluentReceiver};
use tracing_subscriber::prelude::*;

fn collect(
    b: FluentBuilder,
    r: &FluentReceiver,
    n: usize,
    emit: impl FnOnce(),
) -> Vec<FluentEvent> {
    let (layer, guard) = b.with_server(addr(r)).with_pipeline(fast).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        emit();
    }
    guard.flush(WAIT).unwrap();
    assert!(r.wait_for_events(n, WAIT));
    assert_eq!(guard.stats().delivered, n as u64);
    assert_clean(r);
    r.events()
}

#[test]
fn nested_spans_and_span_timings() {
    let r = receiver().start().unwrap();
    let events = collect(FluentLayer::builder("app"), &r, 2, || {
        let span = tracing::info_span!("order", order_id = 42_u64, correlator = "order-42");
        let _e = span.enter();
        tracing::info!(total = 9.5, "placed");
    });
    let ev = events.iter().find(|e| e.field("kind").is_none()).unwrap();
    assert_eq!(ev.tag, "app.records");
    let spans = ev.field("spans").unwrap().as_array().unwrap();
    assert_eq!(spans[0]["name"].as_str(), Some("order"));
    assert_eq!(spans[0]["order_id"].as_u64(), Some(42));
    assert_eq!(
        ev.field("correlators").unwrap()[0].as_str(),
        Some("order-42")
    );
    assert_eq!(ev.field("tracking_id").unwrap().as_str().unwrap().len(), 36);
    assert!(ev.field("parent_tracking_id").is_some());
    let timing = events.iter().find(|e| e.field("kind").is_some()).unwrap();
    assert_eq!(timing.field("kind").unwrap().as_str(), Some("span_timing"));
    assert_eq!(timing.field("span").unwrap().as_str(), Some("order"));
    assert!(timing.field("duration_ns").unwrap().as_u64().is_some());
    assert!(timing.field("busy_ns").unwrap().as_u64().is_some());
    assert_eq!(timing.field("order_id").unwrap().as_u64(), Some(42));
    assert_eq!(
        timing.field("tracking_id").unwrap().as_str(),
        ev.field("parent_tracking_id").unwrap().as_str()
    );
}

#[test]
fn flattened_spans() {
    let r = receiver().start().unwrap();
    let b = FluentLayer::builder("app")
        .with_span_style(SpanStyle::Flattened)
        .with_pipeline(|p| p.with_span_timings(false));
    let events = collect(b, &r, 1, || {
        let outer = tracing::info_span!("req", id = 1_i64);
        let _o = outer.enter();
        let inner = tracing::info_span!("db", table = "orders");
        let _i = inner.enter();
        tracing::info!("query");
    });
    let e = &events[0];
    assert_eq!(e.field("req.id").unwrap().as_i64(), Some(1));
    assert_eq!(e.field("db.table").unwrap().as_str(), Some("orders"));
    assert!(e.field("spans").is_none());
}

#[test]
fn templates_excludes_and_field_labels() {
    let r = receiver().start().unwrap();
    let b = FluentLayer::builder("app")
        .with_tag_label(TagLabel::Field("route".into()))
        .with_host_name("web1")
        .with_python_formatter_keys()
        .with_record_template("where", "{file}:{line}")
        .with_record_template("line", "{line}")
        .with_exclude(["target", "tracking_id", "password"]);
    let events = collect(b, &r, 2, || {
        tracing::info!(route = "audit.login", user = "bob", password = "x", "login");
        tracing::info!(user = "eve", "no route");
    });
    assert_eq!(events[0].tag, "app.audit.login");
    assert_eq!(events[1].tag, "app.records");
    let e = &events[0];
    assert_eq!(e.field("sys_host").unwrap().as_str(), Some("web1"));
    assert_eq!(e.field("sys_name").unwrap().as_str(), Some("records"));
    assert_eq!(e.field("sys_module").unwrap().as_str(), Some("records"));
    assert!(
        e.field("where")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("crates/fluent/tests/records.rs:")
    );
    assert!(e.field("line").unwrap().as_u64().is_some());
    assert_eq!(e.field("user").unwrap().as_str(), Some("bob"));
    for gone in ["target", "tracking_id", "password", "route"] {
        assert!(e.field(gone).is_none(), "{gone}");
    }
}

#[test]
fn source_fqn_and_snapshots() {
    let r = receiver().start().unwrap();
    let b = FluentLayer::builder("app")
        .with_pipeline(|p| p.with_default_source_fqn("APPL=shop#SERVER=web1"));
    let events = collect(b, &r, 1, || {
        tracing::info!(
            snapshot.cart.items = 3_i64,
            snapshot.cart.total = 19.5,
            location = "eu-west",
            "checkout"
        );
    });
    let e = &events[0];
    assert_eq!(
        e.field("source_fqn").unwrap().as_str(),
        Some("APPL=shop#SERVER=web1")
    );
    assert_eq!(e.field("location").unwrap().as_str(), Some("eu-west"));
    let snap = &e.field("snapshots").unwrap()[0];
    assert_eq!(snap["name"].as_str(), Some("cart"));
    assert_eq!(snap["properties"]["items"].as_i64(), Some(3));
    assert_eq!(snap["properties"]["total"].as_f64(), Some(19.5));
}
