//! Row encoder throughput (rows/s and MB/s of JSON lines), the whole batch path (rows
//! encoded and gzip-compressed into request bodies, what the worker does per batch), and
//! rows/s delivered end to end to the testkit receiver by streaming ingestion from one
//! emitting thread.
//!
//! The batch is 1 000 records: 999 of the event the throughput harness emits
//! (`info!(user="ann", order_id=42_u64, total=99.5, express=true, items=3_i64, "order placed")`,
//! with the tracking id and source FQN the layer gives every record) and one span timing.
//!
//! `cargo bench -p logship-kusto --bench encode -- 'encode|batch'`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logship_core::{Level, Record, SourceFqn, Timestamp, TrackingId};
use logship_kusto::encode::{BatchEncoder, RowEncoder};
use logship_kusto::{IngestionMode, KustoLayer, STREAMING_LIMIT_BYTES};
use logship_testkit::kusto::KustoReceiver;
use tracing_subscriber::prelude::*;

fn records(n: usize) -> Vec<Record> {
    let fqn = SourceFqn::parse("APPL=bench#SERVER=web-1").ok();
    (0..n)
        .map(|i| {
            let t = Timestamp::from_nanos(1_700_000_000_000_000_000 + i as u64 * 1_000);
            let b = if i == n / 2 {
                Record::span_timing("checkout", t, Duration::from_micros(1_250))
                    .with_field("user", "ann")
            } else {
                Record::event(Level::INFO, "throughput")
                    .with_timestamp(t)
                    .with_message("order placed")
                    .with_field("user", "ann")
                    .with_field("order_id", 42_u64)
                    .with_field("total", 99.5)
                    .with_field("express", true)
                    .with_field("items", 3_i64)
            };
            let b = b.with_tracking_id(TrackingId::new());
            match &fqn {
                Some(f) => b.with_source_fqn(f.clone()),
                None => b,
            }
            .build()
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let enc = RowEncoder::new("web-1", Some("shop"));
    let recs = records(1_000);
    let mut probe = Vec::new();
    for r in &recs {
        let _ = enc.encode(r, &mut probe);
    }
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function("rows_1k", |b| {
        let mut out = Vec::with_capacity(probe.len());
        b.iter(|| {
            out.clear();
            for r in &recs {
                let _ = enc.encode(r, &mut out);
            }
            out.len()
        })
    });
    g.throughput(Throughput::Bytes(probe.len() as u64));
    g.bench_function("rows_1k_bytes", |b| {
        let mut out = Vec::with_capacity(probe.len());
        b.iter(|| {
            out.clear();
            for r in &recs {
                let _ = enc.encode(r, &mut out);
            }
            out.len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("batch");
    let mut be = BatchEncoder::new();
    let once = be.encode(&enc, &recs, STREAMING_LIMIT_BYTES, None);
    let gz: usize = once.requests.iter().map(|q| q.gzip.len()).sum();
    eprintln!(
        "batch of {}: {} bytes of rows, {gz} bytes of gzip ({:.1} %)",
        recs.len(),
        probe.len(),
        100.0 * gz as f64 / probe.len() as f64
    );
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function("rows_gzip_1k", |b| {
        b.iter(|| {
            be.encode(&enc, &recs, STREAMING_LIMIT_BYTES, None)
                .requests
                .len()
        })
    });
    g.finish();
}

fn deliver(c: &mut Criterion) {
    const N: u64 = 200_000;
    let Ok(r) = KustoReceiver::builder()
        .with_table(
            "logs",
            "Events",
            &[
                ("Timestamp", "datetime"),
                ("Message", "string"),
                ("Fields", "dynamic"),
            ],
        )
        .with_require_auth(false)
        // The layer sends no mapping (identity mapping), which the receiver refuses for
        // streaming by default, as the REST documentation says.
        .with_streaming_identity_mapping(true)
        .start()
    else {
        return;
    };
    let Ok((layer, guard)) = KustoLayer::builder()
        .with_cluster(r.url())
        .with_database("logs")
        .with_table("Events")
        .without_mapping()
        .with_no_authentication()
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_pipeline(|p| {
            p.with_max_queue_records(1 << 20)
                .with_max_queue_bytes(1 << 30)
                .with_max_batch_records(16_384)
                .with_max_batch_bytes(32 << 20)
        })
        .build()
    else {
        return;
    };
    let _d = tracing_subscriber::registry().with(layer).set_default();
    let mut g = c.benchmark_group("deliver_streaming");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(N));
    g.bench_function("rows_200k_one_thread", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = guard.stats().delivered;
                let start = Instant::now();
                for i in 0..N {
                    tracing::info!(order_id = i, total = 99.5, "order placed");
                }
                let _ = guard.flush(Duration::from_secs(60));
                total += start.elapsed();
                assert_eq!(
                    guard.stats().delivered - before,
                    N,
                    "every row delivered (raise the queue if not)"
                );
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, encode, deliver);
criterion_main!(benches);
