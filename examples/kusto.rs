//! Ship to an Azure Data Explorer table by streaming ingestion. Start a local receiver:
//!
//! ```text
//! cargo run -p logship-cli -- receive kusto         # http://127.0.0.1:8080, no auth
//! cargo run --example kusto
//! ```
//!
//! Against a real cluster, set `LOGSHIP_KUSTO` to a connection string with AAD application-key
//! credentials (see docs/kusto.md).

use std::time::Duration;

use logship_kusto::KustoLayer;
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = match std::env::var("LOGSHIP_KUSTO") {
        Ok(cs) => KustoLayer::from_connection_string(&cs)?,
        Err(_) => KustoLayer::builder()
            .with_cluster("http://127.0.0.1:8080")
            .with_database("logs")
            .with_no_authentication(),
    };
    let (layer, guard) = builder
        .with_table("AppEvents")
        .with_create_table(true)
        .with_service_name("example")
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    tracing::warn!(
        order_id = 42_u64,
        total = 99.5,
        correlator = "order-42",
        "card retried"
    );

    let report = guard.shutdown(Duration::from_secs(10))?;
    println!("delivered {} rows", report.stats.delivered);
    Ok(())
}
