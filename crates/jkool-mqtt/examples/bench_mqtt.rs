//! Throughput: QoS-1 messages/s acknowledged (PUBACK) by an embedded rumqttd.
//!
//! `cargo run -p logship-jkool-mqtt --example bench_mqtt -- [messages] [qos] [inflight]`
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use logship_core::Overflow;
use logship_jkool_mqtt::JkoolMqttLayer;
use tracing_subscriber::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let qos: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let inflight: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let broker = support::start_rumqttd();
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{broker}"))
        .with_topic("bench/{target}")
        .with_qos(qos)
        .with_max_inflight(inflight)
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
    println!(
        "{n} messages at QoS {qos} (inflight {inflight}) acknowledged in {secs:.2} s: {:.0} msgs/s, {:.1} MB/s",
        n as f64 / secs,
        s.bytes_sent as f64 / secs / 1e6
    );
}
