//! Delivered/s of the JSON-lines sink to a discarding writer (`io::sink()` that counts lines,
//! as the appender's peer case does), with a flat-out caller on this thread and default
//! pipeline settings (the queue fills, the excess is dropped and counted), measured over the
//! emitting window.
//!
//! `cargo run --release -p logship-core --example json_lines_throughput -- [secs]`
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logship_core::PipelineBuilder;
use logship_core::sinks::JsonLinesSink;
use tracing_subscriber::prelude::*;

struct CountingSink(Arc<AtomicU64>);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.0.fetch_add(n, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[inline(never)]
fn event() {
    tracing::info!(
        user = "ann",
        order_id = std::hint::black_box(42_u64),
        total = std::hint::black_box(99.5),
        express = true,
        items = std::hint::black_box(3_i64),
        "order placed"
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5.0);
    let lines = Arc::new(AtomicU64::new(0));
    let (layer, guard) = PipelineBuilder::new()
        .build(JsonLinesSink::new(CountingSink(lines.clone())))
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..20_000 {
            event();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let d0 = lines.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut emitted = 0u64;
    let window = Duration::from_secs_f64(secs);
    tracing::dispatcher::with_default(&dispatch, || {
        while t0.elapsed() < window {
            for _ in 0..1000 {
                event();
            }
            emitted += 1000;
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let d = lines.load(Ordering::Relaxed) - d0;
    let s = guard.stats();
    println!(
        "json-lines: delivered {d} in {secs:.2} s = {:.0} k/s (emitted {emitted}, {:.0} k/s; layer dropped {})",
        d as f64 / secs / 1e3,
        emitted as f64 / secs / 1e3,
        s.dropped()
    );
    drop(dispatch);
    let _ = guard.shutdown(Duration::from_secs(5));
}
