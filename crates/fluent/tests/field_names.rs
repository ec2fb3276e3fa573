//! Every key once in the msgpack map, decoded by the testkit receiver: a repeated field name
//! keeps its last value, and a field named like a key the layer writes itself is renamed
//! `_<name>` next to it (the core's rule, `logship_core::fields`, "Repeated and reserved field
//! names"). Before, both came out as duplicate keys in one map.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{WAIT, addr, assert_clean, fast, receiver};
use logship_fluent::{FluentLayer, SpanStyle};
use logship_testkit::fluent::{FluentEvent, FluentReceiver};
use rmpv::Value;
use tracing_subscriber::prelude::*;

/// The record's keys in wire order (duplicates kept).
fn keys(e: &FluentEvent) -> Vec<String> {
    e.record
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap().to_string())
        .collect()
}

fn assert_unique(e: &FluentEvent) {
    let k = keys(e);
    let set: BTreeSet<&String> = k.iter().collect();
    assert_eq!(set.len(), k.len(), "duplicate keys in {k:?}");
}

fn run(style: SpanStyle, emit: impl FnOnce()) -> (FluentReceiver, Vec<FluentEvent>) {
    let r = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_span_style(style)
        .with_record_template("sys_host", "{hostname}")
        .with_host_name("web1")
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        emit();
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().undelivered(), 0);
    let events = r.events();
    assert_clean(&r);
    (r, events)
}

#[test]
fn repeated_and_derived_names_give_unique_keys() {
    let (_r, events) = run(SpanStyle::Nested, || {
        let span = tracing::info_span!("order", correlator = "c1", name = "span-field");
        let _e = span.enter();
        tracing::info!(
            a = 1_i64,
            a = "two",
            level = "gold",
            spans = 3_u64,
            correlators = "mine",
            sys_host = "theirs",
            tracking_id_hint = 7_u64,
            "placed"
        );
    });
    let e = events
        .iter()
        .find(|e| e.field("message").is_some())
        .unwrap();
    assert_unique(e);
    // The later value of a repeated name.
    assert_eq!(e.field("a").and_then(Value::as_str), Some("two"));
    // Built-in keys keep their values; the fields sit beside them, renamed.
    assert_eq!(e.field("level").and_then(Value::as_str), Some("INFO"));
    assert_eq!(e.field("_level").and_then(Value::as_str), Some("gold"));
    assert!(e.field("spans").unwrap().as_array().is_some());
    assert_eq!(e.field("_spans").and_then(Value::as_u64), Some(3));
    let corr = e.field("correlators").unwrap().as_array().unwrap();
    assert_eq!(corr[0].as_str(), Some("c1"));
    assert_eq!(
        e.field("_correlators").and_then(Value::as_str),
        Some("mine")
    );
    assert_eq!(e.field("sys_host").and_then(Value::as_str), Some("web1"));
    assert_eq!(e.field("_sys_host").and_then(Value::as_str), Some("theirs"));
    assert_eq!(e.field("tracking_id_hint").and_then(Value::as_u64), Some(7));
    // Field order is kept: the renamed fields at their own positions.
    let k = keys(e);
    let pos = |name: &str| k.iter().position(|x| x == name).unwrap();
    assert!(
        pos("a") < pos("_level") && pos("_level") < pos("_spans"),
        "{k:?}"
    );
    // In a `spans` entry, a span field called `name` does not hide the span's name.
    let span = &e.field("spans").unwrap().as_array().unwrap()[0];
    let span_keys: Vec<&str> = span
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(span_keys, ["name", "_name"]);
    assert_eq!(span["name"].as_str(), Some("order"));
    assert_eq!(span["_name"].as_str(), Some("span-field"));
}

#[test]
fn span_timing_keys_are_not_shadowed_by_span_fields() {
    let (_r, events) = run(SpanStyle::Nested, || {
        let span = tracing::info_span!("job", kind = "batch", failed = "never", x = 1_i64);
        drop(span);
    });
    let t = events
        .iter()
        .find(|e| e.field("kind").and_then(Value::as_str) == Some("span_timing"))
        .unwrap();
    assert_unique(t);
    assert_eq!(t.field("_kind").and_then(Value::as_str), Some("batch"));
    assert_eq!(t.field("failed").and_then(Value::as_bool), Some(false));
    assert_eq!(t.field("_failed").and_then(Value::as_str), Some("never"));
    assert_eq!(t.field("span").and_then(Value::as_str), Some("job"));
}

#[test]
fn flattened_span_keys_are_reserved_too() {
    let (_r, events) = run(SpanStyle::Flattened, || {
        let outer = tracing::info_span!("order", order_id = 1_u64);
        let _o = outer.enter();
        let inner = tracing::info_span!("order", order_id = 2_u64);
        let _i = inner.enter();
        tracing::info!(order.order_id = 3_u64, "flat");
    });
    let e = events
        .iter()
        .find(|e| e.field("message").is_some())
        .unwrap();
    assert_unique(e);
    // The inner span's value (the later one) for the span key, the event's field renamed.
    assert_eq!(e.field("order.order_id").and_then(Value::as_u64), Some(2));
    assert_eq!(e.field("_order.order_id").and_then(Value::as_u64), Some(3));
}
