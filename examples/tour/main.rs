//! The logship tour: a small instrumented shop ships its events and span timings, and the tour
//! prints what each pipeline did.
//!
//! Run: `cargo run --example tour`. Nothing to install, no network.

mod shop;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logship::core::sinks::JsonLinesSink;
use logship::core::{PipelineBuilder, Stats};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into())).join("tour");
    std::fs::create_dir_all(&out_dir)?;
    let ndjson = out_dir.join("records.ndjson");

    println!("logship tour: a shop handles orders; every event and span timing is shipped.\n");
    println!("[1/3] building the pipelines");
    let (json_layer, json_guard) = PipelineBuilder::new()
        .with_service_name("shop")
        .with_linger(Duration::from_millis(200))
        .build(JsonLinesSink::new(File::create(&ndjson)?))?;
    tracing_subscriber::registry().with(json_layer).init();

    println!("[2/3] running the shop: 50 orders, every 7th declined, big ones warn about stock");
    let started = Instant::now();
    shop::run(50);
    println!("      done in {} ms", started.elapsed().as_millis());

    println!("[3/3] flushing");
    let report = json_guard.flush(Duration::from_secs(10))?;
    print_table("json-lines", &report.stats, &format!("{}", ndjson.display()));

    println!("\nA sample of what was shipped (first 3 lines of {}):", ndjson.display());
    for line in BufReader::new(File::open(&ndjson)?).lines().take(3) {
        println!("  {}", line?);
    }
    Ok(())
}

fn print_table(backend: &str, s: &Stats, destination: &str) {
    println!("\n  backend     emitted  delivered  dropped  undelivered  requests  bytes     destination");
    println!(
        "  {:<10}  {:>7}  {:>9}  {:>7}  {:>11}  {:>8}  {:>8}  {}",
        backend,
        s.emitted(),
        s.delivered,
        s.dropped(),
        s.undelivered(),
        s.requests,
        s.bytes_sent,
        destination
    );
}
