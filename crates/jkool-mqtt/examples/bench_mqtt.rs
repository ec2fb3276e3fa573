//! Throughput: messages/s acknowledged (PUBACK at QoS 1, PUBCOMP at QoS 2) by a broker,
//! read from the layer's own stats (`Stats::delivered`).
//!
//! `cargo run --release -p logship-jkool-mqtt --example bench_mqtt -- [messages] [qos] [inflight] [broker-url] [protocol]`
//!
//! Without a broker URL an embedded rumqttd is started; give `mqtt://127.0.0.1:PORT` to
//! measure against e.g. a local mosquitto. `protocol` is `3` (MQTT 3.1.1, default) or `5`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use logship_core::Overflow;
use logship_jkool_mqtt::{JkoolMqttLayer, MqttProtocol};
use tracing_subscriber::prelude::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let qos: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let inflight: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let url = args
        .next()
        .filter(|u| !u.is_empty() && u != "-")
        .unwrap_or_else(|| format!("mqtt://{}", support::start_rumqttd()));
    let protocol = match args.next().as_deref() {
        Some("5") => MqttProtocol::V5,
        _ => MqttProtocol::V311,
    };
    let (layer, guard) = JkoolMqttLayer::builder(url.clone())
        .with_topic("bench/{target}")
        .with_qos(qos)
        .with_protocol(protocol)
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
        "{n} messages at QoS {qos} (MQTT {protocol:?}, inflight {inflight}, {url}) acknowledged in {secs:.2} s: {:.0} msgs/s, {:.1} MB/s",
        n as f64 / secs,
        s.bytes_sent as f64 / secs / 1e6
    );
}
