//! Publish jKool documents through an MQTT broker (QoS 1: delivered means PUBACKed). Start the
//! embedded broker:
//!
//! ```text
//! cargo run -p logship-cli -- receive mqtt          # mqtt://127.0.0.1:1883, prints every publish
//! cargo run --example jkool_mqtt
//! ```

use std::time::Duration;

use logship_jkool_mqtt::JkoolMqttLayer;
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("LOGSHIP_MQTT").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let (layer, guard) = JkoolMqttLayer::builder(url)
        .with_topic("example/{kind}")
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    tracing::info!(order_id = 42_u64, "order placed"); // topic example/event

    let report = guard.shutdown(Duration::from_secs(5))?;
    println!("delivered {} messages (PUBACKed)", report.stats.delivered);
    Ok(())
}
