//! Ship jKool events, activities and snapshots over HTTPS. Start a local receiver:
//!
//! ```text
//! cargo run -p logship-cli -- receive jkool         # http://127.0.0.1:6580/JESL
//! cargo run --example jkool_http
//! ```
//!
//! Against jKool, set `LOGSHIP_JKOOL_TOKEN` (and leave `LOGSHIP_JKOOL_URL` unset).

use std::time::Duration;

use logship_core::Snapshot;
use logship_jkool_http::JkoolHttpLayer;
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("LOGSHIP_JKOOL_TOKEN").unwrap_or_else(|_| "local".into());
    let url = std::env::var("LOGSHIP_JKOOL_URL").unwrap_or_else(|_| {
        if std::env::var("LOGSHIP_JKOOL_TOKEN").is_ok() {
            logship_jkool_http::DEFAULT_BASE_URL.into()
        } else {
            "http://127.0.0.1:6580/JESL".into()
        }
    });
    let (layer, guard) = JkoolHttpLayer::builder(token)
        .with_base_url(url)
        .with_pipeline(|p| p.with_default_source_fqn("APPL=example#SERVER=web1"))
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    let span = tracing::info_span!("checkout", correlator = "order-42");
    span.in_scope(|| {
        let snap = Snapshot::new("order")
            .with_category("sales")
            .with_property("total", 99.5);
        tracing::info!(snapshot = %snap, "order placed"); // an EVENT with its snapshot
    });
    drop(span); // an ACTIVITY

    let report = guard.shutdown(Duration::from_secs(5))?;
    println!("delivered {} documents", report.stats.delivered);
    Ok(())
}
