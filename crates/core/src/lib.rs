//! # logship-core
//!
//! The event model and the shared delivery pipeline behind the logship `tracing` layers
//! (`logship-fluent`, `logship-ecs-metrics`, `logship-kusto`, `logship-jkool-http`,
//! `logship-jkool-mqtt`). Backends implement one trait, [`Sink`]; everything else lives here,
//! once.
//!
//! ```text
//!  tracing macro ──► ShipLayer (caller's thread)          worker thread (one per layer)
//!                    capture into an owned Record ──►  bounded queue ──► batch ──► Sink::send
//!                    (no I/O, never blocks by default)  (records+bytes)    │ retry / breaker
//!                                                                          ▼
//!                                          delivered │ undelivered ─► callback / dead letters
//! ```
//!
//! ## Guarantees
//! * **The caller never waits for the network.** Capture writes the message and fields into one
//!   buffer (one heap allocation for a typical event) and queues it; encoding and I/O happen on
//!   the layer's own thread, which owns its own tokio runtime, so it works the same with no
//!   runtime, a `current_thread` one or a multi-thread one.
//! * **Memory is bounded** by record count and by bytes; a full queue drops (by default the
//!   newest record), and ERROR records have reserved room.
//! * **Every loss is counted** while running ([`Stats`]) and can be handed to a callback or a
//!   dead-letter folder ([`undelivered`]).
//! * **No feedback loops**: what the exporters' own dependencies log is never captured
//!   ([`capture::suppress`]).
//! * **Shutdown is bounded**: dropping the [`Guard`] flushes for at most its timeout, even
//!   when the backend is down.
//!
//! ## Quick start (with the in-memory test sink)
//! ```
//! use std::time::Duration;
//! use tracing_subscriber::prelude::*;
//! use logship_core::{PipelineBuilder, testing::MemorySink};
//!
//! let (sink, received) = MemorySink::new();
//! let (layer, guard) = PipelineBuilder::new()
//!     .with_default_source_fqn("APPL=shop#SERVER=web1")
//!     .build(sink)?;
//! let _default = tracing_subscriber::registry().with(layer).set_default();
//!
//! tracing::info!(order_id = 42_u64, total = 99.5, "order placed");
//!
//! guard.flush(Duration::from_secs(5))?;
//! let r = &received.records()[0];
//! assert_eq!(r.message(), Some("order placed"));
//! assert_eq!(r.source_fqn().map(|f| f.as_str()), Some("APPL=shop#SERVER=web1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Optional features
//! | feature | what it adds |
//! |---|---|
//! | `metrics` | every pipeline publishes its [`Stats`] through the [`metrics`](https://docs.rs/metrics) facade (Prometheus names such as `logship_records_total{backend,outcome}`), from the worker thread, at most 1 s apart: see [`mod@metrics`] |
//! | `serde` | `serde::Serialize` for [`Stats`] and [`FlushReport`] (a JSON health endpoint) |
//!
//! ## The event model
//! | concept | type | from `tracing` |
//! |---|---|---|
//! | record | [`Record`] | an event, or a closed span ([`RecordKind::SpanTiming`]) |
//! | typed field | [`Value`] | `key = value` (`?x`/`%x` become text) |
//! | source FQN | [`SourceFqn`] | field [`fields::SOURCE_FQN`] on an event or span, else the layer default |
//! | correlators | `Record::correlators` | field [`fields::CORRELATOR`]; inherited from spans |
//! | tracking id | [`TrackingId`] | fresh per record; spans' id becomes the parent id |
//! | snapshot / property | [`Snapshot`], [`Property`] | `snapshot = %snap` or `snapshot.<name>.<prop> = v` |
//! | span timing | [`SpanTiming`] | span close: start, end, wall and busy durations |
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod capture;
pub mod codec;
pub mod compress;
pub mod config;
pub mod diag;
pub mod env;
pub mod error;
pub mod excerpt;
pub mod fates;
pub mod fields;
pub mod fqn;
pub mod guard;
pub mod json;
pub mod json_text;
pub mod layer;
pub mod metrics;
#[cfg(feature = "opentelemetry")]
mod otel;
mod queue;
pub mod record;
pub mod retry;
mod secret;
pub mod sink;
pub mod sinks;
pub mod snapshot;
pub mod split;
pub mod spool;
pub mod stats;
pub mod testing;
pub mod time;
mod timer;
pub mod undelivered;
mod worker;

pub use config::{PipelineBuilder, PipelineConfig, SpanTimingFilter};
pub use env::{EnvError, EnvVars};
pub use error::{ConfigError, FlushError};
pub use fates::{Fates, Verdict};
pub use fqn::{FqnError, SourceFqn, SourceType};
pub use guard::{Guard, Handle, shutdown_all};
pub use layer::ShipLayer;
pub use queue::Overflow;
pub use record::{
    ErrorChain, FieldValue, MAX_INTERNED_THREAD_NAMES, Record, RecordBuilder, RecordKind,
    SpanContext, SpanFields, SpanTiming, ThreadInfo, TrackingId, Value,
};
pub use record::{HexId, TraceContext};
pub use retry::{BreakerConfig, RetryPolicy};
pub use secret::{Secret, redact_url};
pub use sink::{Batch, Outcome, SendContext, Sink};
pub use snapshot::{Property, PropertyType, PropertyValue, Snapshot};
pub use stats::Stats;
pub use time::Timestamp;
pub use undelivered::{Cause, Undelivered};
pub use worker::FlushReport;

#[doc(hidden)]
pub use backend::__private;

/// Re-exported so backends and users name the same `Level`.
pub use tracing_core::Level;
