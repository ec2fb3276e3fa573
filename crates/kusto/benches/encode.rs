//! Row encoder throughput (rows/s and MB/s of JSON lines), gzip of a 4 MiB request, and
//! rows/s delivered end to end to the testkit receiver by streaming ingestion from one
//! emitting thread.
//!
//! `cargo bench -p logship-kusto --bench encode`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logship_core::{Level, Record, Timestamp};
use logship_kusto::encode::RowEncoder;
use logship_kusto::{IngestionMode, KustoLayer};
use logship_testkit::kusto::KustoReceiver;
use tracing_subscriber::prelude::*;

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::event(Level::INFO, "shop::orders")
                .with_timestamp(Timestamp::from_nanos(1_700_000_000_000_000_000 + i as u64))
                .with_message("order placed for customer")
                .with_field("order_id", i as u64)
                .with_field("total", 99.5)
                .with_field("sku", "A-1234-XL")
                .build()
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let enc = RowEncoder::new("web-1", Some("shop"));
    let recs = records(10_000);
    let mut probe = Vec::new();
    for r in &recs {
        let _ = enc.encode(r, &mut probe);
    }
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function("rows_10k", |b| {
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
    g.bench_function("rows_10k_bytes", |b| {
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
