//! One event, one identity: every logship layer stacked on a registry gives the same `tracing`
//! event the same tracking id and timestamp (and the same span close the same timing); and
//! records from the `log` crate arrive normalized (real target, module, file and line).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use logship_core::testing::{MemorySink, Received};
use logship_core::{
    Guard, PipelineBuilder, Record, RecordKind, ShipLayer, Timestamp, TrackingId, Value,
};
use tracing::{Dispatch, Level};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

const T: Duration = Duration::from_secs(10);

fn pipeline() -> (ShipLayer, Guard, Received) {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::new().build(sink).expect("valid config");
    (layer, guard, received)
}

/// Emits `n` events per thread on this thread and on a second one, tagged `(thread, i)`, at
/// one callsite in a loop (so consecutive events usually share the `&Event` address), every
/// other one at DEBUG.
fn emit_from_two_threads(dispatch: &Dispatch, n: u64) {
    let run = |t: u64| {
        tracing::dispatcher::with_default(dispatch, || {
            for i in 0..n {
                if i % 2 == 0 {
                    tracing::info!(t, i, "event");
                } else {
                    tracing::debug!(t, i, "event");
                }
            }
        });
    };
    std::thread::scope(|s| {
        s.spawn(|| run(1));
        run(0);
    });
}

fn u64_field(r: &Record, name: &str) -> u64 {
    match r.field(name) {
        Some(Value::U64(v)) => v,
        Some(Value::I64(v)) => u64::try_from(v).expect("non-negative"),
        other => panic!("{name}: {other:?}"),
    }
}

/// `(thread, i)` → `(tracking id, timestamp)` of one sink's event records.
type ByTag = HashMap<(u64, u64), (TrackingId, Timestamp)>;

fn by_tag(rx: &Received) -> ByTag {
    let mut out = HashMap::new();
    for r in rx.records() {
        if r.kind() != RecordKind::Event {
            continue;
        }
        let tag = (u64_field(&r, "t"), u64_field(&r, "i"));
        let id = r.tracking_id().expect("tracking id").clone();
        assert!(
            out.insert(tag, (id, r.timestamp())).is_none(),
            "event {tag:?} delivered twice"
        );
    }
    out
}

fn assert_shared_identity(sinks: &[(&str, ByTag)]) {
    let (first_name, first) = &sinks[0];
    for (name, other) in &sinks[1..] {
        for (tag, seen) in other {
            if let Some(expected) = first.get(tag) {
                assert_eq!(seen, expected, "event {tag:?}: {name} vs {first_name}");
            }
        }
    }
    // Distinct events, distinct ids (over the union of all sinks).
    let mut ids: HashMap<TrackingId, (u64, u64)> = HashMap::new();
    for (_, m) in sinks {
        for (tag, (id, _)) in m {
            if let Some(prev) = ids.insert(id.clone(), *tag) {
                assert_eq!(prev, *tag, "events {prev:?} and {tag:?} share id {id}");
            }
        }
    }
}

fn assert_v4(id: &TrackingId) {
    match id {
        TrackingId::Uuid(u) => {
            assert_eq!(u.get_version_num(), 4, "{u}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{u}");
        }
        TrackingId::Custom(c) => panic!("expected a UUID, got {c}"),
    }
}

#[test]
fn three_stacked_layers_give_one_event_one_tracking_id_and_timestamp() {
    let (a, ga, ra) = pipeline();
    let (b, gb, rb) = pipeline();
    let (c, gc, rc) = pipeline();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(a).with(b).with(c));
    emit_from_two_threads(&dispatch, 200);
    for g in [&ga, &gb, &gc] {
        g.flush(T).unwrap();
    }
    let (ma, mb, mc) = (by_tag(&ra), by_tag(&rb), by_tag(&rc));
    for m in [&ma, &mb, &mc] {
        assert_eq!(m.len(), 400);
    }
    assert_shared_identity(&[("a", ma.clone()), ("b", mb), ("c", mc)]);
    for (id, _) in ma.values() {
        assert_v4(id);
    }
}

#[test]
fn a_per_layer_filter_does_not_split_identity() {
    // The filtered layer in each position: outermost, middle, innermost.
    for pos in 0..3 {
        let (a, ga, ra) = pipeline();
        let (b, gb, rb) = pipeline();
        let (c, gc, rc) = pipeline();
        let reg = tracing_subscriber::registry();
        let dispatch = match pos {
            0 => Dispatch::new(reg.with(a).with(b).with(c.with_filter(LevelFilter::INFO))),
            1 => Dispatch::new(reg.with(a).with(b.with_filter(LevelFilter::INFO)).with(c)),
            _ => Dispatch::new(reg.with(a.with_filter(LevelFilter::INFO)).with(b).with(c)),
        };
        emit_from_two_threads(&dispatch, 200);
        for g in [&ga, &gb, &gc] {
            g.flush(T).unwrap();
        }
        let (ma, mb, mc) = (by_tag(&ra), by_tag(&rb), by_tag(&rc));
        let filtered = [&mc, &mb, &ma][pos];
        assert_eq!(filtered.len(), 200, "position {pos}: INFO only");
        assert!(filtered.keys().all(|(_, i)| i % 2 == 0));
        for m in [&ma, &mb, &mc] {
            if !std::ptr::eq(m, filtered) {
                assert_eq!(m.len(), 400, "position {pos}");
            }
        }
        // Compare against a sink that has everything first, so the filtered one is checked
        // for every event it has.
        let mut sinks = vec![("a", ma), ("b", mb), ("c", mc)];
        sinks.rotate_left(usize::from(pos == 2));
        assert_shared_identity(&sinks);
    }
}

#[test]
fn stacked_layers_report_one_span_close() {
    let (a, ga, ra) = pipeline();
    let (b, gb, rb) = pipeline();
    let (c, gc, rc) = pipeline();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(a)
            .with(b.with_filter(LevelFilter::INFO))
            .with(c),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..20_u64 {
            let span = tracing::info_span!("work", i);
            let _e = span.enter();
            tracing::info!(t = 0_u64, i, "inside");
        }
    });
    for g in [&ga, &gb, &gc] {
        g.flush(T).unwrap();
    }
    let timings = |rx: &Received| {
        rx.records()
            .into_iter()
            .filter(|r| r.kind() == RecordKind::SpanTiming)
            .map(|r| {
                let t = *r.timing().expect("timing");
                (
                    u64_field(&r, "i"),
                    (r.tracking_id().cloned(), r.timestamp(), t),
                )
            })
            .collect::<HashMap<_, _>>()
    };
    let (ta, tb, tc) = (timings(&ra), timings(&rb), timings(&rc));
    assert_eq!(ta.len(), 20);
    assert_eq!(ta, tb);
    assert_eq!(ta, tc);
    // The events inside carry the same identity too, and their span's id as parent.
    assert_shared_identity(&[("a", by_tag(&ra)), ("b", by_tag(&rb)), ("c", by_tag(&rc))]);
}

#[test]
fn a_caller_supplied_tracking_id_still_wins() {
    let (a, ga, ra) = pipeline();
    let (b, gb, rb) = pipeline();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(a).with(b));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(tracking_id = "order-42", "mine");
        tracing::info!("generated");
    });
    ga.flush(T).unwrap();
    gb.flush(T).unwrap();
    let (ra, rb) = (ra.records(), rb.records());
    assert_eq!(ra.len(), 2);
    assert_eq!(
        ra[0].tracking_id(),
        Some(&TrackingId::Custom("order-42".into()))
    );
    assert_eq!(rb[0].tracking_id(), ra[0].tracking_id());
    assert_eq!(rb[1].tracking_id(), ra[1].tracking_id());
    assert_ne!(ra[1].tracking_id(), ra[0].tracking_id());
}

#[test]
fn records_built_without_tracing_get_random_ids() {
    let (_a, ga, ra) = pipeline();
    let r = Record::event(Level::INFO, "replay")
        .with_message("built")
        .build();
    ga.handle().submit(r.clone());
    ga.handle().submit(r);
    ga.flush(T).unwrap();
    let recs = ra.records();
    assert_eq!(recs.len(), 2);
    let ids: HashSet<_> = recs.iter().map(|r| r.tracking_id().cloned()).collect();
    assert_eq!(ids.len(), 2, "two submissions, two random ids");
    for r in &recs {
        assert_v4(r.tracking_id().unwrap());
    }
}

#[test]
fn log_records_are_normalized() {
    let (a, ga, ra) = pipeline();
    let (b, gb, rb) = pipeline();
    let subscriber = tracing_subscriber::registry()
        .with(a)
        .with(b.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        tracing_log::format_trace(
            &log::Record::builder()
                .args(format_args!("disk {} full", "/var"))
                .level(log::Level::Warn)
                .target("storage::disk")
                .module_path_static(Some("storage::disk::probe"))
                .file_static(Some("src/disk/probe.rs"))
                .line(Some(77))
                .build(),
        )
        .unwrap();
        tracing::info!(plain = 1_u64, "ordinary");
    });
    ga.flush(T).unwrap();
    gb.flush(T).unwrap();
    for rx in [&ra, &rb] {
        let recs = rx.records();
        assert_eq!(recs.len(), 2);
        let r = &recs[0];
        assert_eq!(r.level(), Level::WARN);
        assert_eq!(r.message(), Some("disk /var full"));
        assert_eq!(r.target(), "storage::disk");
        assert_eq!(r.module_path(), Some("storage::disk::probe"));
        assert_eq!(r.file(), Some("src/disk/probe.rs"));
        assert_eq!(r.line(), Some(77));
        let names: Vec<&str> = r.fields().map(|(n, _)| n).collect();
        assert!(
            names.iter().all(|n| !n.starts_with("log.")),
            "log.* fields shipped: {names:?}"
        );
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(r.field_count(), 0);
        // Ordinary events keep their callsite metadata.
        let o = &recs[1];
        assert_eq!(o.target(), "identity");
        assert!(o.file().unwrap().ends_with("identity.rs"));
        assert!(o.metadata().is_some());
        assert_eq!(o.field("plain"), Some(Value::U64(1)));
    }
    assert_eq!(ra.records()[0].tracking_id(), rb.records()[0].tracking_id());
}

/// Five stacked logship layers capture each event once: the first layer visits the event's
/// fields (one `Debug` formatting of each value), the others take its record. Before, each
/// layer visited the event itself (five formattings). Every layer still receives the same
/// record: message, fields, span, identity; and a layer's own `span_fields` setting.
#[test]
fn stacked_layers_capture_each_event_once() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static FORMATTED: AtomicU64 = AtomicU64::new(0);
    struct Counted(u64);
    impl std::fmt::Debug for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            FORMATTED.fetch_add(1, Ordering::Relaxed);
            write!(f, "counted-{}", self.0)
        }
    }
    let mut layers = Vec::new();
    let mut guards = Vec::new();
    let mut rxs = Vec::new();
    for i in 0..5 {
        let (sink, received) = MemorySink::new();
        let fields = if i == 2 {
            logship_core::SpanFields::None
        } else {
            logship_core::SpanFields::All
        };
        let (layer, guard) = PipelineBuilder::new()
            .with_span_fields(fields)
            .build(sink)
            .expect("valid config");
        layers.push(layer);
        guards.push(guard);
        rxs.push(received);
    }
    let mut layers = layers.into_iter();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(layers.next().unwrap())
            .with(layers.next().unwrap())
            .with(layers.next().unwrap())
            .with(layers.next().unwrap())
            .with(layers.next().unwrap()),
    );
    let n = 50u64;
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", user = "ann");
        let _e = span.enter();
        for i in 0..n {
            tracing::info!(v = ?Counted(i), i, "event {}", i);
        }
    });
    for g in &guards {
        g.flush(T).unwrap();
    }
    assert_eq!(
        FORMATTED.load(Ordering::Relaxed),
        n,
        "one formatting per event"
    );
    let all: Vec<Vec<Record>> = rxs.iter().map(|r| r.records()).collect();
    for (k, recs) in all.iter().enumerate() {
        let events: Vec<&Record> = recs
            .iter()
            .filter(|r| r.kind() == RecordKind::Event)
            .collect();
        assert_eq!(events.len() as u64, n, "layer {k}");
        for (i, r) in events.iter().enumerate() {
            assert_eq!(
                r.message(),
                Some(format!("event {i}").as_str()),
                "layer {k}"
            );
            assert_eq!(r.field("v"), Some(Value::Str(&format!("counted-{i}"))));
            assert_eq!(r.field("i"), Some(Value::U64(i as u64)));
            assert!(r.parent_tracking_id().is_some(), "layer {k}: in the span");
            let spans: Vec<&str> = r.spans().map(|s| s.name()).collect();
            let want: &[&str] = if k == 2 { &[] } else { &["request"] };
            assert_eq!(spans, want, "layer {k}: its own span_fields");
            let first = all[0]
                .iter()
                .filter(|r| r.kind() == RecordKind::Event)
                .nth(i)
                .unwrap();
            assert_eq!(r.tracking_id(), first.tracking_id());
            assert_eq!(r.timestamp(), first.timestamp());
        }
    }
}

/// A per-layer filter can hide a span from one layer: a layer that takes another layer's
/// capture still records the span the event is in **as it sees it**.
#[test]
fn a_shared_capture_keeps_each_layers_view_of_the_span() {
    use tracing_subscriber::filter::filter_fn;
    for hiding_first in [true, false] {
        let (a, ga, ra) = pipeline();
        let (b, gb, rb) = pipeline();
        let hide = filter_fn(|m| !m.is_span() || m.name() != "inner");
        let dispatch = if hiding_first {
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(a.with_filter(hide))
                    .with(b),
            )
        } else {
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(b)
                    .with(a.with_filter(hide)),
            )
        };
        tracing::dispatcher::with_default(&dispatch, || {
            let outer = tracing::info_span!("outer");
            let _o = outer.enter();
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            tracing::info!("in inner");
        });
        ga.flush(T).unwrap();
        gb.flush(T).unwrap();
        let leaf = |rx: &Received| {
            let recs = rx.records();
            let ev = recs.iter().find(|r| r.kind() == RecordKind::Event).unwrap();
            ev.spans().last().map(|s| s.name().to_owned())
        };
        assert_eq!(
            leaf(&ra).as_deref(),
            Some("outer"),
            "hiding first: {hiding_first}"
        );
        assert_eq!(
            leaf(&rb).as_deref(),
            Some("inner"),
            "hiding first: {hiding_first}"
        );
    }
}
