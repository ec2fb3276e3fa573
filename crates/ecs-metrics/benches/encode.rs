//! Benchmarks of the ECS layer (figures in `crates/ecs-metrics/docs/benchmarks.md`).
//!
//! * `encode/timer`: the ECS document encoder alone (action line + document), per document.
//! * `doc_id/event`: the `_id` alone (SHA-256 over the record's identity), per record.
//! * `encode_batch/event`, `encode_batch/timer`: a 1 000-record batch encoded as the sink does
//!   (the benchmark harness's 5-field event; span timings).
//! * `deliver/timers`: timers submitted from one thread, encoded and delivered to the testkit
//!   Elasticsearch receiver over loopback HTTP, until flushed (documents per second).
//! * `caller/span`: what an instrumented span costs the calling thread (new, enter, exit,
//!   close) with the layer installed.
//!
//! Run: `cargo bench -p logship-ecs-metrics --bench encode`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logship_core::{Level, Record, Timestamp, TrackingId};
use logship_ecs_metrics::__bench::BenchEncoder;
use logship_ecs_metrics::EcsLayer;
use logship_testkit::es::EsReceiver;
use tracing_subscriber::prelude::*;

fn encode(c: &mut Criterion) {
    let records: Vec<Record> = (0..1000)
        .map(|i| {
            Record::span_timing(
                "handle_request",
                Timestamp::from_nanos(1_700_000_000_000_000_000 + i * 1_000_000),
                Duration::from_micros(1500 + i),
            )
            .with_tracking_id(TrackingId::new())
            .build()
        })
        .collect();
    let mut enc = BenchEncoder::default();
    let mut out = Vec::with_capacity(1 << 20);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("timer", |b| {
        b.iter(|| {
            out.clear();
            for r in &records {
                enc.encode(r, &mut out);
            }
            black_box(out.len())
        })
    });
    out.clear();
    for r in &records {
        enc.encode(r, &mut out);
    }
    println!(
        "encode/timer: {} bytes per document",
        out.len() / records.len()
    );
    g.finish();
}

/// The benchmark harness's event (`bench/src/lib.rs`): `info!(user = "ann", order_id = 42_u64,
/// total = 99.5, express = true, items = 3_i64, "order placed")`, with its source position and
/// a generated tracking id, as the pipeline hands it to the sink.
fn bench_event(i: u64) -> Record {
    Record::event(Level::INFO, "logship_bench")
        .with_timestamp(Timestamp::from_nanos(1_700_000_000_000_000_000 + i * 1_000))
        .with_message("order placed")
        .with_field("user", "ann")
        .with_field("order_id", 42_u64)
        .with_field("total", 99.5)
        .with_field("express", true)
        .with_field("items", 3_i64)
        .with_source_position("logship_bench", "src/lib.rs", 25)
        .with_tracking_id(TrackingId::new())
        .build()
}

/// The `_id` alone (SHA-256 over the record's identity), per record of the harness's event.
fn doc_id(c: &mut Criterion) {
    let events: Vec<Record> = (0..1000).map(bench_event).collect();
    let mut g = c.benchmark_group("doc_id");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("event", |b| {
        b.iter(|| {
            let mut x = 0u8;
            for r in &events {
                x ^= logship_ecs_metrics::__bench::doc_id(r)[0];
            }
            black_box(x)
        })
    });
    g.finish();
}

/// A 1 000-record batch as the sink encodes it (one `event.created` time per batch): the
/// harness's event, and span timings.
fn encode_batch(c: &mut Criterion) {
    let events: Vec<Record> = (0..1000).map(bench_event).collect();
    let timers: Vec<Record> = (0..1000)
        .map(|i| {
            Record::span_timing(
                "handle_request",
                Timestamp::from_nanos(1_700_000_000_000_000_000 + i * 1_000_000),
                Duration::from_micros(1500 + i),
            )
            .with_tracking_id(TrackingId::new())
            .build()
        })
        .collect();
    let mut enc = BenchEncoder::default();
    let mut out = Vec::with_capacity(1 << 20);
    let mut g = c.benchmark_group("encode_batch");
    g.throughput(Throughput::Elements(1000));
    for (name, records) in [("event", &events), ("timer", &timers)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                enc.encode_batch(records, &mut out);
                black_box(out.len())
            })
        });
        out.clear();
        enc.encode_batch(records, &mut out);
        println!(
            "encode_batch/{name}: {} bytes per document",
            out.len() / records.len()
        );
    }
    g.finish();
}

fn deliver(c: &mut Criterion) {
    const N: u64 = 20_000;
    let mut g = c.benchmark_group("deliver");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    g.bench_function("timers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let es = EsReceiver::start().unwrap();
                let (layer, guard) = EcsLayer::builder(es.url().as_str())
                    .with_host_fields(false)
                    .with_pipeline(|p| p.with_max_queue_records(1 << 17))
                    .build()
                    .unwrap();
                let start = Instant::now();
                let now = SystemTime::now();
                for _ in 0..N {
                    layer.log_time_metric("t", now, Duration::from_micros(3));
                }
                guard.flush(Duration::from_secs(60)).unwrap();
                total += start.elapsed();
                assert_eq!(guard.stats().delivered, N);
            }
            total
        })
    });
    g.finish();
}

/// The receiver alone: one pre-encoded 1 000-document `_bulk` body posted repeatedly (what
/// bounds `deliver/timers`).
fn receiver(c: &mut Criterion) {
    let es = EsReceiver::start().unwrap();
    let mut enc = BenchEncoder::default();
    let mut body = Vec::new();
    for i in 0..1000u64 {
        let r = Record::span_timing(
            "t",
            Timestamp::from_nanos(1_700_000_000_000_000_000),
            Duration::from_micros(i),
        )
        .build();
        enc.encode(&r, &mut body);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/_bulk", es.url());
    let mut g = c.benchmark_group("receiver");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("bulk_1000", |b| {
        b.iter(|| {
            let r = agent
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .send(&body[..])
                .unwrap();
            black_box(r.status())
        })
    });
    g.finish();
}

/// Baseline for `caller/span`: the same span with only the registry installed.
fn caller_baseline(c: &mut Criterion) {
    let _d = tracing_subscriber::registry().set_default();
    c.bench_function("caller/span_registry_only", |b| {
        b.iter(|| {
            let span = tracing::info_span!("work", n = 1_u64);
            let _e = span.enter();
        })
    });
}

fn caller(c: &mut Criterion) {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = EcsLayer::builder(es.url().as_str())
        .with_host_fields(false)
        .build()
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    c.bench_function("caller/span", |b| {
        b.iter(|| {
            let span = tracing::info_span!("work", n = 1_u64);
            let _e = span.enter();
        })
    });
    let stats = guard.stats();
    println!(
        "caller/span: enqueued {} dropped {} delivered {}",
        stats.enqueued,
        stats.dropped(),
        stats.delivered
    );
}

criterion_group!(
    benches,
    encode,
    doc_id,
    encode_batch,
    deliver,
    receiver,
    caller_baseline,
    caller
);
criterion_main!(benches);
