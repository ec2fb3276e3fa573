//! # logship-jkool-mqtt
//!
//! A `tracing` layer that publishes jKool documents (EVENT per event, ACTIVITY per closed
//! span, snapshots embedded or separate; the model of [`logship_jkool`], shared with the
//! HTTPS layer) to an MQTT broker (its own connection, `rumqttc`'s packet codec), one
//! document per PUBLISH (the payload is
//! one JSON object, never an array, as the original Python library's `MqttHandler`
//! published one record per message: Nastel/tnt4py `jKool/streaming.py`), the topic
//! computed per record. MQTT 3.1.1 (default) or MQTT 5
//! ([`with_protocol`](JkoolMqttBuilder::with_protocol)).
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
//! (PUBACK, or PUBCOMP for QoS 2) every publish that carried it. The sink owns its
//! connection: it gives each PUBLISH its packet identifier, writes a whole **window** of
//! publishes in one socket write, and files each acknowledgement under its identifier. The
//! window (publishes awaiting acknowledgement) is at most
//! [`with_max_inflight`](JkoolMqttBuilder::with_max_inflight) and, with MQTT 5, at most the
//! broker's Receive Maximum (MQTT 5 sections 3.2.2.3.3 and 4.9,
//! <https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html>). Unacknowledged
//! records at a connection failure or at the send deadline are handed back to the core for
//! retry, on a fresh connection: **at least once**, with possible duplicates after a crash.
//! Details: [`sink`](JkoolMqttSink). With QoS 0 a record counts as delivered once written.
//!
//! A broker that refuses the credentials (CONNACK *bad user name or password* / *not
//! authorized*) rejects the batch at once (`Stats::undelivered_rejected`, reason in
//! `Stats::last_error`); a broker that is down is retried with backoff.
//!
//! ## TLS
//! `mqtts://` (or [`with_tls`](JkoolMqttBuilder::with_tls)) uses [`TlsOptions`] from
//! `logship-tls`, the one TLS policy of every logship backend: the OS trust store by default,
//! added CAs, only custom roots, mutual TLS. A failed certificate check is retried, counted in
//! `Stats::certificate_failures`, and `Stats::last_error` names the check (`TLS certificate
//! check failed: the server's certificate is signed by an unknown issuer (…)`).
//!
//! ## Protocol version
//! MQTT 3.1.1 by default, which mosquitto, rumqttd and every broker of note accept;
//! `with_protocol(MqttProtocol::V5)` speaks MQTT 5 (rumqttc's v5 packet codec). Every
//! connection setting (client id, credentials, keep-alive, clean session / clean start, TLS,
//! inflight window, packet sizes) applies to both, and the PUBACK tracking above is the same
//! code. With MQTT 5 the inflight window is also capped by the broker's Receive Maximum, the
//! outgoing packet size by its Maximum Packet Size, and `with_clean_session(false)` asks for a
//! session that never expires (as in 3.1.1).
//!
//! ## MQTT 5 reason codes
//! An MQTT 5 broker can acknowledge a publish and still refuse it, with a reason code. Each
//! code decides for the record that publish carried:
//!
//! | reason code (PUBACK, PUBREC; PUBCOMP for QoS 2) | the record |
//! |---|---|
//! | 0x00 Success, 0x10 No matching subscribers | delivered |
//! | 0x97 Quota exceeded | retried (core backoff, fresh connection) |
//! | 0x91 Packet identifier in use, 0x92 Packet identifier not found (PUBCOMP) | retried (a fresh connection resolves it) |
//! | 0x80 Unspecified error, 0x83 Implementation specific error, 0x87 Not authorized, 0x90 Topic name invalid, 0x99 Payload format invalid, any other | rejected, alone: `Stats::undelivered_rejected`, the code and the broker's reason string in `Stats::last_error` (e.g. `the mqtt broker refused the publish: not authorized (0x87)`) |
//!
//! A record with several documents (a separate snapshot) is rejected if any of them is,
//! retried if any was not acknowledged. After a refusal the connection is replaced before
//! the next batch. MQTT 3.1.1 acknowledgements carry no reason: a PUBACK is a delivery.
//!
//! ## Configuration without code
//! [`JkoolMqttBuilder::from_env`] reads `LOGSHIP_MQTT` and the `LOGSHIP_MQTT_*` variables (`LOGSHIP_MQTT=mqtts://broker:8883`, `LOGSHIP_MQTT_PASSWORD=…`) plus the shared
//! pipeline variables `LOGSHIP_PIPELINE_*`, once, into a builder you can keep configuring;
//! a malformed or unknown variable is reported by `build()`, naming it. With the feature
//! `serde`, [`JkoolMqttConfig`] is the same settings as a configuration-file section (unknown keys
//! refused). The tables are on [`JkoolMqttConfig`] and in the repository's `docs/configuration.md`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod error;
mod settings;
mod sink;
mod topic;
mod wire;

pub use config::{JkoolMqttBuilder, MqttProtocol};
pub use error::{JkoolMqttError, Password};
pub use logship_jkool::SnapshotPlacement;
pub use logship_tls::TlsOptions;
pub use settings::JkoolMqttConfig;
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
