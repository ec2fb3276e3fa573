//! Throughput: events/s delivered over HTTP to the testkit's JESL receiver (which parses and
//! validates every document in the same process).
//!
//! `cargo run -p logship-jkool-http --example bench_http -- [events] [concurrency]`
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use logship_core::Overflow;
use logship_jkool_http::JkoolHttpLayer;
use logship_testkit::jkool::JkoolReceiver;
use tracing_subscriber::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let conc: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let jk = JkoolReceiver::builder().with_token("tok").start().unwrap();
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_max_requests_in_flight(conc)
        .with_pipeline(|p| {
            p.with_overflow(Overflow::Block(Duration::from_secs(10)))
                .with_max_batch_records(2000)
                .with_linger(Duration::from_millis(50))
                .with_span_timings(false)
        })
        .build()
        .unwrap();
    let start = Instant::now();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n {
            tracing::info!(order_id = i, total = 99.5, "order placed");
        }
    }
    guard.flush(Duration::from_secs(600)).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let s = guard.stats();
    assert_eq!(s.delivered, n, "{s:?}");
    assert_eq!(jk.event_count() as u64, n);
    println!(
        "{n} events delivered in {secs:.2} s: {:.0} events/s, {:.1} MB/s of JSON, {} requests",
        n as f64 / secs,
        s.bytes_sent as f64 / secs / 1e6,
        jk.counters().requests
    );
}
