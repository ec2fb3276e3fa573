//! Delivered/s with acks against a server that takes time to process each chunk: one chunk
//! in flight at a time against several.
//!
//! The server is testkit's `FluentReceiver` with `with_processing_delay(per_request,
//! per_event)`: after decoding a request it is busy for that long (a timer, not a busy loop)
//! before it acks, one request at a time per connection, as Fluentd's `in_forward` is. It
//! prints the share of the run's wall-clock time the receiver spent in that modelled
//! processing (`server_processing`) and waiting for the client with nothing to handle
//! (`server_idle`, `FluentStats::idle_ns`); the rest is the receiver decoding and
//! acknowledging. `server_idle` near 0 means the server never waited for the client.
//!
//! ```text
//! cargo run --release -p logship-fluent --example ack_window -- \
//!     [events=200000] [window=4] [chunk_bytes=262144] [per_event_us=10] [per_request_us=200] [batch_records=4096]
//! ```
//!
//! `window=1 chunk_bytes=max` is the layer before chunking (one request per batch, written,
//! then its ack awaited). Prints one line: events/s delivered (acknowledged), those shares,
//! the share of a core the process used (the layer's worker, the caller and the receiver),
//! and the counts that tell what happened.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use logship_core::Overflow;
use logship_fluent::FluentLayer;
use logship_testkit::fluent::FluentReceiver;
use tracing_subscriber::prelude::*;

fn arg(args: &[String], i: usize, default: u64) -> u64 {
    match args.get(i).map(String::as_str) {
        None => default,
        Some("max") => u64::MAX,
        Some(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("argument {i}: not a number: {s}")),
    }
}

/// User + system CPU time of this process so far (`/proc/self/stat`, clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events = arg(&args, 1, 200_000);
    let window = arg(&args, 2, 4) as usize;
    let chunk_bytes = usize::try_from(arg(&args, 3, 256 * 1024)).unwrap_or(usize::MAX);
    let per_event = Duration::from_micros(arg(&args, 4, 10));
    let per_request = Duration::from_micros(arg(&args, 5, 200));
    let batch_records = arg(&args, 6, 4096) as usize;

    let receiver = FluentReceiver::builder()
        .with_keep_events(false)
        .with_processing_delay(per_request, per_event)
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("bench")
        .with_server(receiver.addr().unwrap().to_string())
        .with_max_chunks_in_flight(window)
        .with_chunk_bytes(chunk_bytes)
        .with_pipeline(|p| {
            p.with_overflow(Overflow::Block(Duration::from_secs(60)))
                .with_max_batch_records(batch_records)
                .with_max_batch_bytes(64 * 1024 * 1024)
                .with_max_queue_records(32_768.max(2 * batch_records))
                .with_max_queue_bytes(256 * 1024 * 1024)
        })
        .build()
        .unwrap();

    // About 450 encoded bytes per event (the issue's ~1.8 MB per 4 096-record batch).
    let text = "lorem ipsum dolor sit amet ".repeat(11);
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..events {
            tracing::info!(
                target: "shop::orders",
                order_id = i,
                customer = "c-1234567",
                total = 99.5_f64,
                items = 3_i64,
                note = %text,
                "order placed"
            );
        }
    }
    guard.flush(Duration::from_secs(600)).unwrap();
    let wall = t0.elapsed();
    let cpu = process_cpu().saturating_sub(cpu0);
    let s = guard.stats();
    let rs = receiver.stats();
    let secs = wall.as_secs_f64();
    println!(
        "window={window} chunk_bytes={} events={events} per_event={per_event:?} per_request={per_request:?} \
         batch_records={batch_records} | delivered/s={:.0} wall={:.2}s server_processing={:.0}% server_idle={:.0}% process_cpu={:.0}% | \
         delivered={} undelivered={} retries={} requests={} acks={} max_awaiting_ack={} dup_chunks={}",
        if chunk_bytes == usize::MAX {
            "max".to_string()
        } else {
            chunk_bytes.to_string()
        },
        s.delivered as f64 / secs,
        secs,
        100.0 * rs.processing_ns as f64 / 1e9 / secs,
        100.0 * rs.idle_ns as f64 / 1e9 / secs,
        100.0 * cpu.as_secs_f64() / secs,
        s.delivered,
        s.undelivered(),
        s.retries,
        rs.requests_total(),
        rs.acks_sent,
        rs.max_requests_awaiting_ack,
        rs.duplicate_chunks,
    );
}
