//! Ship to Fluentd / Fluent Bit. Start a local receiver first:
//!
//! ```text
//! cargo run -p logship-cli -- receive fluent        # listens on 127.0.0.1:24224
//! cargo run --example fluent
//! ```
//!
//! Against a real Fluentd, use a `<source> @type forward` (see docs/fluent.md).

use std::time::Duration;

use logship_fluent::FluentLayer;
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("LOGSHIP_FLUENT").unwrap_or_else(|_| "127.0.0.1:24224".into());
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr)
        .with_pipeline(|p| p.with_service_name("example"))
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    let span = tracing::info_span!("checkout", correlator = "order-42");
    span.in_scope(|| tracing::info!(order_id = 42_u64, total = 99.5, "order placed"));
    drop(span); // a span-timing record

    let report = guard.shutdown(Duration::from_secs(5))?;
    println!(
        "delivered {} records (acknowledged by the server)",
        report.stats.delivered
    );
    Ok(())
}
