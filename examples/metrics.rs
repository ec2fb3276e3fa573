//! The pipeline's own health in Prometheus: installs `metrics-exporter-prometheus` on
//! `127.0.0.1:$LOGSHIP_METRICS_PORT` (default 9000), runs a pipeline for about two seconds
//! (JSON lines to nowhere: no server needed), shuts it down, then scrapes `/metrics` once itself
//! and prints the `logship_` lines.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! LOGSHIP_METRICS_PORT=9464 cargo run --example metrics --features metrics
//! ```
//!
//! The metric table, dashboards and alerts are in docs/metrics.md.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use logship::core::PipelineBuilder;
use logship::core::sinks::JsonLinesSink;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn Error>> {
    let port: u16 = match std::env::var("LOGSHIP_METRICS_PORT") {
        Ok(p) => p
            .parse()
            .map_err(|e| format!("LOGSHIP_METRICS_PORT={p:?}: not a port number ({e})"))?,
        Err(_) => 9000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // Install the recorder before building a pipeline: a pipeline publishes into the recorder
    // installed at the time. Histogram buckets make `logship_request_duration_seconds` a
    // Prometheus histogram (else the exporter renders a summary).
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("logship_request_duration_seconds".into()),
            &[0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 30.0],
        )?
        .install()
        .map_err(|e| format!("cannot serve /metrics on {addr}: {e} (set LOGSHIP_METRICS_PORT)"))?;
    println!("scrape URL: http://{addr}/metrics");

    // A small queue, so the bursts below show drops as well as deliveries.
    let (layer, guard) = PipelineBuilder::new()
        .with_service_name("metrics-example")
        .with_max_queue_records(500)
        .with_max_batch_records(100)
        .with_linger(Duration::from_millis(100))
        .build(JsonLinesSink::new(std::io::sink()))?;
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let end = Instant::now() + Duration::from_secs(2);
        let mut n = 0_u64;
        while Instant::now() < end {
            for _ in 0..500 {
                n += 1;
                tracing::info!(order_id = n, total = 99.5, "order placed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    // Shutdown publishes the final counts before it returns.
    let report = guard.shutdown(Duration::from_secs(5))?;
    println!(
        "pipeline stats: delivered {}, dropped {} (queue full)",
        report.stats.delivered,
        report.stats.dropped()
    );

    let body = scrape(addr)?;
    println!("--- logship lines of GET /metrics ---");
    for line in body.lines().filter(|l| l.starts_with("logship_")) {
        println!("{line}");
    }
    Ok(())
}

/// `GET /metrics` over a plain TCP stream (HTTP/1.0: the server closes after the reply).
fn scrape(addr: SocketAddr) -> Result<String, Box<dyn Error>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP reply from the exporter")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("exporter answered: {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(body.to_string())
}
