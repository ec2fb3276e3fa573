//! The core's rule for repeated and reserved field names (`logship_core::fields`, "Repeated and
//! reserved field names"): after the worker has prepared a record, each field name appears
//! once with its last value at its first position, a snapshot has one property per name, and
//! `Record::fields_beside` renames a field whose name a backend reserves.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::time::Duration;

use logship_core::testing::MemorySink;
use logship_core::{Level, PipelineBuilder, PropertyValue, Record, Value, fields};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(20);

fn names(r: &Record) -> Vec<String> {
    r.fields().map(|(n, _)| n.to_string()).collect()
}

/// Records as a backend's sink receives them (prepared by the worker).
fn through_pipeline(emit: impl FnOnce(&logship_core::Guard)) -> Vec<Record> {
    let (sink, rx) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        emit(&guard);
    }
    guard.flush(WAIT).unwrap();
    rx.records()
}

#[test]
fn a_repeated_name_keeps_the_last_value_at_the_first_position() {
    let records = through_pipeline(|_| {
        tracing::info!(
            a = 1_i64,
            b = true,
            a = "two",
            c = 3.5,
            b = false,
            "repeated"
        );
    });
    let r = &records[0];
    assert_eq!(names(r), ["a", "b", "c"]);
    assert_eq!(r.field("a"), Some(Value::Str("two")));
    assert_eq!(r.field("b"), Some(Value::Bool(false)));
    assert_eq!(r.field("c"), Some(Value::F64(3.5)));
    assert_eq!(r.field_count(), 3);
    assert_eq!(r.message(), Some("repeated"));
}

#[test]
fn what_serde_json_keeps_of_a_repeated_key() {
    // The rule follows what readers of a map with a repeated key keep: serde_json's `Map`
    // inserts each entry in turn, so the later value wins.
    let v: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": 0, "a": "two"}"#).unwrap();
    assert_eq!(v["a"], "two");
    assert_eq!(v.as_object().unwrap().len(), 2);
}

#[test]
fn many_fields_take_the_same_rule() {
    // Past 32 fields the worker uses a hash map instead of a scan: same result.
    let mut b = Record::event(Level::INFO, "wide");
    for i in 0..40_u64 {
        b = b.with_field(format!("f{}", i % 25), i);
    }
    let (sink, rx) = MemorySink::new();
    let (_layer, guard) = PipelineBuilder::new().build(sink).unwrap();
    guard.handle().submit(b.build());
    guard.flush(WAIT).unwrap();
    let r = &rx.records()[0];
    let want: Vec<String> = (0..25).map(|i| format!("f{i}")).collect();
    assert_eq!(names(r), want);
    // f0..f14 were repeated (i and i + 25): the later value.
    assert_eq!(r.field("f0"), Some(Value::U64(25)));
    assert_eq!(r.field("f14"), Some(Value::U64(39)));
    assert_eq!(r.field("f15"), Some(Value::U64(15)));
}

#[test]
fn a_snapshot_has_one_property_per_name() {
    let records = through_pipeline(|_| {
        tracing::info!(
            snapshot.order.total = 1.5,
            snapshot.order.items = 2_i64,
            snapshot.order.total = 9.5,
            "order"
        );
    });
    let snaps = records[0].snapshots();
    assert_eq!(snaps.len(), 1);
    let props: Vec<(&str, &PropertyValue)> = snaps[0]
        .properties
        .iter()
        .map(|p| (p.name.as_str(), &p.value))
        .collect();
    assert_eq!(
        props,
        [
            ("total", &PropertyValue::Double(9.5)),
            ("items", &PropertyValue::Integer(2))
        ]
    );
}

#[test]
fn conventional_fields_still_accumulate() {
    // Correlators add up (documented as "adds correlators"); they are not plain fields.
    let records = through_pipeline(|_| {
        tracing::info!(
            correlator = "a",
            correlator = "b",
            x = 1_i64,
            x = 2_i64,
            "c"
        );
    });
    assert_eq!(records[0].correlators(), ["a", "b"]);
    assert_eq!(names(&records[0]), ["x"]);
    assert_eq!(records[0].field("x"), Some(Value::I64(2)));
}

#[test]
fn a_re_recorded_span_field_keeps_the_last_value() {
    let records = through_pipeline(|_| {
        let span = tracing::info_span!("order", a = 1_i64, b = tracing::field::Empty);
        span.record("a", 5_i64);
        span.record("b", "x");
        span.in_scope(|| tracing::info!("inside"));
    });
    let event = records
        .iter()
        .find(|r| r.message() == Some("inside"))
        .unwrap();
    let span = event.spans().next().unwrap();
    let fields: Vec<(&str, Value<'_>)> = span.fields().collect();
    assert_eq!(fields, [("a", Value::I64(5)), ("b", Value::Str("x"))]);
}

#[test]
fn fields_beside_renames_only_reserved_names() {
    let r = Record::event(Level::INFO, "shop")
        .with_field("level", "gold")
        .with_field("_level", "silver")
        .with_field("spans", 3_u64)
        .with_field("order_id", 42_u64)
        .build();
    let reserved = |k: &str| matches!(k, "level" | "spans" | "message");
    let got: Vec<(Cow<'_, str>, Value<'_>)> = r.fields_beside(&reserved).collect();
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_ref()).collect();
    // `level` cannot be `_level` (a field has that name): `__level`.
    assert_eq!(keys, ["__level", "_level", "_spans", "order_id"]);
    assert_eq!(got[0].1, Value::Str("gold"));
    assert_eq!(got[1].1, Value::Str("silver"));
    assert!(matches!(got[3].0, Cow::Borrowed(_)), "no allocation");
    // Unique keys, whatever the backend reserves.
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len());
}

#[test]
fn two_renamed_fields_never_meet() {
    // A backend that reserves both `level` and `_level` (e.g. a template key `_level`), and a
    // record with fields of both names: each gets its own key.
    let r = Record::event(Level::INFO, "shop")
        .with_field("level", 1_u64)
        .with_field("_level", 2_u64)
        .build();
    let reserved = |k: &str| matches!(k, "level" | "_level");
    let keys: Vec<String> = r
        .fields_beside(&reserved)
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(keys, ["__level", "___level"]);
}

#[test]
fn renamed_key_stops_after_sixteen_prefixes() {
    let key = fields::renamed_key("x", |_| true);
    assert_eq!(key, format!("{}x", "_".repeat(17)));
    assert_eq!(fields::RENAMED_PREFIX, '_');
}
