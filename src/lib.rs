//! # logship
//!
//! `tracing-subscriber` layers that ship an application's events and span timings to remote
//! log and metric backends — without blocking the application, with bounded memory, and with
//! every lost record counted.
//!
//! This umbrella crate re-exports the core and, behind one feature each, the backends, so one
//! line in `Cargo.toml` is all an application adds:
//!
//! ```toml
//! [dependencies]
//! logship = { version = "0.1", features = ["fluent"] }
//! ```
//!
//! | feature | module | backend | wire |
//! |---|---|---|---|
//! | (always) | [`core`] | — | the event model and the delivery pipeline |
//! | `fluent` | `fluent` | Fluentd / Fluent Bit | Forward protocol v1, msgpack, acks, TLS |
//! | `ecs-metrics` | `ecs_metrics` | Elasticsearch / OpenSearch | `_bulk` NDJSON of ECS documents |
//! | `kusto` | `kusto` | Azure Data Explorer | streaming ingestion (+ queued), AAD |
//! | `jkool-http` | `jkool_http` | jKool / meshIQ | HTTPS JSON events, activities, snapshots |
//! | `jkool-mqtt` | `jkool_mqtt` | jKool via MQTT | MQTT 3.1.1 or 5 publish, PUBACK tracked |
//! | `full` | all of the above | | |
//! | `aws-sigv4` | `ecs_metrics` | Amazon OpenSearch Service | SigV4-signed `_bulk` requests |
//! | `metrics` | [`core`] | your `metrics` recorder (Prometheus, …) | every pipeline's `Stats` as `logship_*` counters, gauges and a request-duration histogram |
//! | `opentelemetry` | [`core`] and every enabled backend | — | W3C trace and span ids of the enclosing `tracing-opentelemetry` span on every record (docs/opentelemetry.md) |
//! | `serde` | [`core`] and every enabled backend | — | `Serialize` for `Stats` and `FlushReport`; `Deserialize` settings structs (`PipelineConfig`, `FluentConfig`, `EcsConfig`, `KustoConfig`, `JkoolHttpConfig`, `JkoolMqttConfig`) and `Secret` |
//!
//! ```
//! use std::time::Duration;
//! use logship::prelude::*;
//! use tracing_subscriber::prelude::*;
//!
//! // The core alone, with the JSON-lines sink (each backend crate builds the same way).
//! let (layer, guard) = PipelineBuilder::new()
//!     .with_service_name("shop")
//!     .build(logship::core::sinks::JsonLinesSink::stdout())?;
//! let _default = tracing_subscriber::registry().with(layer).set_default();
//! tracing::info!(order_id = 42_u64, correlator = "order-42", "order placed");
//! guard.flush(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// Feature badges on docs.rs (`--cfg docsrs`, set in Cargo.toml's docs.rs metadata).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use logship_core as core;
#[cfg(feature = "ecs-metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "ecs-metrics")))]
pub use logship_ecs_metrics as ecs_metrics;
#[cfg(feature = "fluent")]
#[cfg_attr(docsrs, doc(cfg(feature = "fluent")))]
pub use logship_fluent as fluent;
#[cfg(feature = "jkool-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "jkool-http")))]
pub use logship_jkool_http as jkool_http;
#[cfg(feature = "jkool-mqtt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jkool-mqtt")))]
pub use logship_jkool_mqtt as jkool_mqtt;
#[cfg(feature = "kusto")]
#[cfg_attr(docsrs, doc(cfg(feature = "kusto")))]
pub use logship_kusto as kusto;
/// The TLS policy shared by every backend ([`tls::TlsOptions`], passed to each builder's
/// `with_tls`).
pub use logship_tls as tls;

/// The names most applications need: the core's builder, guard and model types, and the
/// layer of each enabled backend.
pub mod prelude {
    pub use logship_core::{
        Guard, Handle, Overflow, PipelineBuilder, RetryPolicy, Snapshot, SourceFqn, Stats, fields,
    };
    #[cfg(feature = "ecs-metrics")]
    pub use logship_ecs_metrics::EcsLayer;
    #[cfg(feature = "fluent")]
    pub use logship_fluent::FluentLayer;
    #[cfg(feature = "jkool-http")]
    pub use logship_jkool_http::JkoolHttpLayer;
    #[cfg(feature = "jkool-mqtt")]
    pub use logship_jkool_mqtt::JkoolMqttLayer;
    #[cfg(feature = "kusto")]
    pub use logship_kusto::KustoLayer;
    pub use logship_tls::TlsOptions;
}
