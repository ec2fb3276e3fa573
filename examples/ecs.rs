//! Ship span timers (and log events) as Elastic Common Schema documents. Start a local receiver:
//!
//! ```text
//! cargo run -p logship-cli -- receive es            # http://127.0.0.1:9200
//! cargo run --example ecs
//! ```

use std::time::Duration;

use logship_ecs_metrics::EcsLayer;
use tracing_subscriber::prelude::*;

#[tracing::instrument]
fn price(items: u32) -> f64 {
    f64::from(items) * 9.5
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("LOGSHIP_ES").unwrap_or_else(|_| "http://127.0.0.1:9200".into());
    let (layer, guard) = EcsLayer::builder(url.as_str())
        .with_service_name("example")
        .with_log_events(true)
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    let total = price(3); // one ECS metric document: metrics.name "price", event.duration in ns
    tracing::info!(total, "priced");

    let report = guard.shutdown(Duration::from_secs(5))?;
    println!("delivered {} documents", report.stats.delivered);
    Ok(())
}
