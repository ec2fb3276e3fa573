//! # logship-jkool-mqtt
//!
//! A `tracing` layer that publishes jKool documents (EVENT per event, ACTIVITY per closed
//! span, snapshots embedded or separate; the model of [`logship_jkool`], shared with the
//! HTTPS layer) to an MQTT broker with `rumqttc`, one document per PUBLISH, the topic
//! computed per record.
//!
//! ## Quick start
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! use logship_jkool_mqtt::JkoolMqttLayer;
//!
//! let (layer, guard) = JkoolMqttLayer::builder("mqtt://broker.example:1883")
//!     .with_credentials("user", "password")
//!     .with_topic("jkool/{target}")
//!     .build()?;
//! tracing_subscriber::registry().with(layer).init();
//! tracing::info!(order_id = 42_u64, "order placed"); // topic jkool/<your crate>
//! drop(guard); // flushes: waits (bounded) for the PUBACKs
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Mapping
//! | `tracing` | MQTT |
//! |---|---|
//! | event | PUBLISH of its jKool EVENT JSON (see [`logship_jkool`] for every field) |
//! | closed span | PUBLISH of its ACTIVITY JSON |
//! | target `shop::orders` | topic `shop/orders` with the default template `{target}` |
//!
//! ## Topics
//! A template with `{target}` (the record's target, `::` → `/`), `{level}` (`info`, …) and
//! `{kind}` (`event`, `activity`, `snapshot`), or a fixed topic. Rendered for every record.
//! Wildcards are refused in the template and replaced by `_` in inserted values.
//!
//! ## Delivery guarantee and PUBACK tracking
//! With QoS 1 (default) or 2 a record counts as delivered only when the broker acknowledged
//! (PUBACK, or PUBCOMP for QoS 2) every publish that carried it. rumqttc cannot tie an
//! acknowledgement to a `publish()` call by itself; this crate does it by driving the event
//! loop inside the sink and filing the *n*-th new `Outgoing::Publish(pkid)` under the *n*-th
//! queued publish (one client, one event loop, requests written in order). Unacknowledged
//! records at a connection failure or at the send deadline are handed back to the core for
//! retry, on a fresh connection: **at least once**, with possible duplicates after a crash.
//! Details: [`sink`](JkoolMqttSink). With QoS 0 a record counts as delivered once written.
//!
//! A broker that refuses the credentials (CONNACK *bad user name or password* / *not
//! authorized*) rejects the batch at once (`Stats::undelivered_rejected`, reason in
//! `Stats::last_error`); a broker that is down is retried with backoff.
//!
//! ## Not yet
//! MQTT 5 is not implemented (rumqttc's v5 client has a separate API); the layer speaks
//! MQTT 3.1.1, which mosquitto, rumqttd and every broker of note accept.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod error;
mod sink;
mod topic;

pub use config::JkoolMqttBuilder;
pub use error::{JkoolMqttError, Password};
pub use logship_jkool::SnapshotPlacement;
pub use logship_jkool::tls::TlsOptions;
pub use sink::JkoolMqttSink;
pub use topic::DEFAULT_TOPIC_TEMPLATE;

logship_core::define_layer!(
    /// The jKool MQTT layer: add it to a `tracing_subscriber::registry()`. Built with
    /// [`JkoolMqttLayer::builder`].
    JkoolMqttLayer
);

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`); not API.
    use logship_core::Record;
    use logship_jkool::DocumentKind;

    /// Checks a broker URL as [`JkoolMqttBuilder::build`](crate::JkoolMqttBuilder::build)
    /// does: `(host, port, tls)`, or the error message.
    pub fn broker_url(url: &str) -> Result<(String, u16, bool), String> {
        crate::JkoolMqttLayer::builder(url)
            .parse_url()
            .map_err(|e| e.to_string())
    }

    /// Parses a topic template as the builder does and renders it for `r` as a document of
    /// `kind`.
    pub fn topic(template: &str, r: &Record, kind: DocumentKind) -> Result<String, String> {
        crate::topic::TopicTemplate::parse(template).map(|t| t.render(r, kind))
    }
}
