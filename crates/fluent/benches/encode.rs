//! Encoder throughput: batches of 4 096 five-field events, as the sink encodes them.
//!
//! `cargo bench -p logship-fluent --bench encode`; records/s from the `elements` throughput,
//! MB/s of msgpack written from the `bytes` one.
//!
//! Measured on the shared 2-core dev machine (other builds running), 5-field events of about
//! 130 encoded bytes, with chunk ids: PackedForward ≈ 4.3 M records/s ≈ 536 MiB/s; Forward ≈
//! 3.5 M records/s ≈ 470 MiB/s; CompressedPackedForward (gzip level 1) ≈ 2.7 M records/s.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logship_core::{Level, Record, Timestamp};
use logship_fluent::__bench::{Mode, encode};

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::event(Level::INFO, "shop::orders")
                .with_timestamp(Timestamp::from_nanos(1_700_000_000_000_000_000 + i as u64))
                .with_message("order placed")
                .with_field("order_id", i as u64)
                .with_field("customer", "c-1234567")
                .with_field("total", 99.5_f64)
                .with_field("items", 3_i64)
                .with_field("express", i % 2 == 0)
                .build()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let batch = records(4096);
    let mut g = c.benchmark_group("encode_4096_events");
    for (name, mode) in [
        ("packed_forward", Mode::PackedForward),
        ("forward", Mode::Forward),
        ("compressed_packed_forward", Mode::CompressedPackedForward),
    ] {
        let bytes = encode(&batch, mode);
        g.throughput(Throughput::Elements(batch.len() as u64));
        g.bench_function(format!("{name}/records"), |b| {
            b.iter(|| black_box(encode(black_box(&batch), mode)))
        });
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| black_box(encode(black_box(&batch), mode)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
