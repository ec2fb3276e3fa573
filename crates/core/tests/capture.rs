//! What a layer captures from plain `tracing` macros: fields, spans, the conventional fields,
//! span timings (also under a per-layer filter and with two logship layers on one registry).

use std::time::Duration;

use logship_core::testing::{MemorySink, Received};
use logship_core::{PipelineBuilder, RecordKind, Snapshot, SpanFields, Value};
use tracing::{Level, info, info_span, instrument, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

fn pipeline(b: PipelineBuilder) -> (logship_core::ShipLayer, logship_core::Guard, Received) {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = b.build(sink).expect("valid config");
    (layer, guard, received)
}

const T: Duration = Duration::from_secs(10);

#[test]
fn typed_fields_message_and_metadata() {
    let (layer, guard, rx) = pipeline(PipelineBuilder::new().with_span_timings(false));
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let err = std::io::Error::other("disk full");
    info!(
        s = "text",
        i = -3_i64,
        u = 7_u64,
        big = 1_u128 << 100,
        f = 2.5,
        b = true,
        d = ?vec![1, 2],
        e = &err as &(dyn std::error::Error + 'static),
        "hello {}", "world"
    );
    guard.flush(T).unwrap();
    let recs = rx.records();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.kind(), RecordKind::Event);
    assert_eq!(r.message(), Some("hello world"));
    assert_eq!(r.level(), Level::INFO);
    assert_eq!(r.target(), "capture");
    assert!(r.file().unwrap().ends_with("capture.rs"));
    assert!(r.line().is_some());
    let names: Vec<&str> = r.fields().map(|(n, _)| n).collect();
    assert_eq!(names, ["s", "i", "u", "big", "f", "b", "d", "e"]);
    assert_eq!(r.field("s"), Some(Value::Str("text")));
    assert_eq!(r.field("i"), Some(Value::I64(-3)));
    assert_eq!(r.field("u"), Some(Value::U64(7)));
    assert_eq!(r.field("big"), Some(Value::U128(1 << 100)));
    assert_eq!(r.field("f"), Some(Value::F64(2.5)));
    assert_eq!(r.field("b"), Some(Value::Bool(true)));
    assert_eq!(r.field("d"), Some(Value::Str("[1, 2]")));
    match r.field("e") {
        Some(Value::Error(e)) => assert_eq!(e.message, "disk full"),
        other => panic!("expected an error value, got {other:?}"),
    }
    assert!(r.tracking_id().is_some());
    assert!(r.thread().id > 0);
}

#[test]
fn spans_correlators_fqn_and_snapshots() {
    let (layer, guard, rx) = pipeline(
        PipelineBuilder::new()
            .with_span_timings(false)
            .with_default_source_fqn("APPL=shop#SERVER=web1"),
    );
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let outer = info_span!("request", correlator = "req-1", user = "ann");
    let _o = outer.enter();
    let inner = info_span!(
        "order",
        correlator = "order-42",
        source_fqn = "APPL=billing#SERVER=b1"
    );
    let _i = inner.enter();
    info!(
        snapshot.order.total = 99.5,
        snapshot.order.items = 3_i64,
        "placed"
    );
    let snap = Snapshot::new("stock")
        .with_category("inventory")
        .with_property("left", 5_i64);
    info!(snapshot = %snap, correlator = "extra", source_fqn = "APPL=override#SERVER=x", "checked");
    drop(_i);
    drop(_o);
    info!(source_fqn = "NOT A FQN", "bad fqn stays a field");
    guard.flush(T).unwrap();
    let recs = rx.records();
    assert_eq!(recs.len(), 3);

    let placed = &recs[0];
    assert_eq!(placed.correlators(), ["order-42", "req-1"]);
    assert_eq!(
        placed.source_fqn().unwrap().as_str(),
        "APPL=billing#SERVER=b1"
    );
    let spans: Vec<&str> = placed.spans().map(|s| s.name()).collect();
    assert_eq!(spans, ["request", "order"]);
    assert_eq!(
        placed.spans().next().unwrap().fields().collect::<Vec<_>>(),
        [("user", Value::Str("ann"))]
    );
    assert_eq!(placed.snapshots().len(), 1);
    assert_eq!(placed.snapshots()[0].name, "order");
    assert_eq!(placed.snapshots()[0].properties.len(), 2);
    assert_eq!(placed.field_count(), 0, "snapshot fields are consumed");
    assert_eq!(
        placed.parent_tracking_id(),
        Some(placed.spans().last().unwrap().tracking_id())
    );

    let checked = &recs[1];
    assert_eq!(checked.correlators(), ["extra", "order-42", "req-1"]);
    assert_eq!(
        checked.source_fqn().unwrap().as_str(),
        "APPL=override#SERVER=x"
    );
    assert_eq!(checked.snapshots()[0], snap);

    let bad = &recs[2];
    assert_eq!(bad.source_fqn().unwrap().as_str(), "APPL=shop#SERVER=web1");
    assert_eq!(bad.field("source_fqn"), Some(Value::Str("NOT A FQN")));
    assert_eq!(guard.stats().invalid_fields, 1);

    let ids: std::collections::HashSet<String> = recs
        .iter()
        .map(|r| r.tracking_id().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "every record has its own tracking id");
}

#[test]
fn span_fields_leaf_and_none() {
    for (mode, expect) in [(SpanFields::Leaf, vec!["b"]), (SpanFields::None, vec![])] {
        let (layer, guard, rx) = pipeline(
            PipelineBuilder::new()
                .with_span_timings(false)
                .with_span_fields(mode),
        );
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let a = info_span!("a", correlator = "c-a");
        let _a = a.enter();
        let b = info_span!("b");
        let _b = b.enter();
        info!("x");
        drop(_b);
        drop(_a);
        guard.flush(T).unwrap();
        let r = &rx.records()[0];
        assert_eq!(r.spans().map(|s| s.name()).collect::<Vec<_>>(), expect);
        assert_eq!(
            r.correlators(),
            ["c-a"],
            "correlators are inherited whatever the mode"
        );
    }
}

#[instrument(fields(correlator = "job-7"))]
fn busy_work(n: u64) -> u64 {
    let start = std::time::Instant::now();
    let mut x = n;
    while start.elapsed() < Duration::from_millis(20) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    x
}

#[test]
fn instrument_yields_one_timing_record_with_busy_time_under_a_per_layer_filter() {
    let (layer, guard, rx) = pipeline(PipelineBuilder::new());
    let _d = tracing_subscriber::registry()
        .with(layer.with_filter(LevelFilter::INFO))
        .set_default();
    let t0 = std::time::Instant::now();
    busy_work(3);
    let outer_elapsed = t0.elapsed();
    guard.flush(T).unwrap();
    let recs = rx.records();
    let timings: Vec<_> = recs
        .iter()
        .filter(|r| r.kind() == RecordKind::SpanTiming)
        .collect();
    assert_eq!(timings.len(), 1, "exactly one timing record: {recs:?}");
    let r = timings[0];
    assert_eq!(r.name(), "busy_work");
    let t = r.timing().unwrap();
    assert!(t.busy >= Duration::from_millis(20), "busy {:?}", t.busy);
    assert!(
        t.busy <= t.duration && t.duration <= outer_elapsed,
        "{t:?} vs {outer_elapsed:?}"
    );
    assert!(!t.failed);
    assert_eq!(r.field("n"), Some(Value::U64(3)));
    assert_eq!(r.correlators(), ["job-7"]);
    assert_eq!(r.tracking_id(), Some(r.timed_span().unwrap().tracking_id()));
}

#[test]
fn debug_spans_filtered_out_produce_no_timing() {
    let (layer, guard, rx) = pipeline(PipelineBuilder::new());
    let _d = tracing_subscriber::registry()
        .with(layer.with_filter(LevelFilter::INFO))
        .set_default();
    tracing::debug_span!("quiet").in_scope(|| ());
    info_span!("loud").in_scope(|| ());
    guard.flush(T).unwrap();
    let names: Vec<String> = rx.records().iter().map(|r| r.name().to_string()).collect();
    assert_eq!(names, ["loud"]);
}

#[test]
fn error_inside_span_marks_timing_failed_and_idle_time_is_not_busy() {
    let (layer, guard, rx) = pipeline(PipelineBuilder::new().with_events(false));
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let span = info_span!("checkout");
    // Busy time can be at most the time spent inside the span, timed from outside it (a wall
    // clock bound such as "under 30 ms" fails when the machine is loaded).
    let entered = std::time::Instant::now();
    span.in_scope(|| tracing::error!("payment declined"));
    let inside = entered.elapsed();
    std::thread::sleep(Duration::from_millis(30)); // idle: the span exists but is not entered
    drop(span);
    guard.flush(T).unwrap();
    let recs = rx.records();
    assert_eq!(recs.len(), 1, "events are off: only the timing");
    let t = recs[0].timing().unwrap();
    assert!(t.failed);
    assert!(t.duration >= Duration::from_millis(30));
    assert!(
        t.busy <= inside,
        "busy {:?} > time inside {inside:?}",
        t.busy
    );
    assert!(t.duration >= t.busy + Duration::from_millis(30), "{t:?}");
}

#[test]
fn two_logship_layers_share_span_state_without_double_counting() {
    let (l1, g1, r1) = pipeline(PipelineBuilder::new());
    let (l2, g2, r2) = pipeline(PipelineBuilder::new());
    let _d = tracing_subscriber::registry()
        .with(l1.with_filter(LevelFilter::INFO))
        .with(l2.with_filter(LevelFilter::WARN))
        .set_default();
    busy_work(1);
    warn!(correlator = "w", "careful");
    g1.flush(T).unwrap();
    g2.flush(T).unwrap();
    let a = r1.records();
    let b = r2.records();
    assert_eq!(a.len(), 2, "INFO layer: the timing and the warning");
    assert_eq!(
        b.len(),
        1,
        "WARN layer: only the warning (the span is INFO)"
    );
    let t = a.iter().find_map(|r| r.timing()).unwrap();
    assert!(
        t.busy >= Duration::from_millis(20) && t.busy <= t.duration,
        "{t:?}"
    );
}

#[test]
fn record_on_a_span_updates_later_records_only() {
    let (layer, guard, rx) = pipeline(PipelineBuilder::new().with_span_timings(false));
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let span = info_span!("job", state = tracing::field::Empty);
    let _e = span.enter();
    info!("before");
    span.record("state", "done");
    info!("after");
    drop(_e);
    guard.flush(T).unwrap();
    let recs = rx.records();
    let fields = |i: usize| {
        recs[i]
            .spans()
            .next()
            .unwrap()
            .fields()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
    };
    assert!(fields(0).is_empty());
    assert_eq!(fields(1), ["state=done"]);
}
