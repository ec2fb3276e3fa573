//! # logship-jkool-http
//!
//! A `tracing` layer that streams events (as jKool EVENTs), closed spans (as ACTIVITYs) and
//! their snapshots to jKool's JESL endpoints over HTTPS: `POST {base}/event`,
//! `{base}/activity`, `{base}/snapshot` (the jKool client model, <https://github.com/Nastel/jkool-client-java-api>). The documents
//! come from [`logship_jkool`], shared with the MQTT layer; see its crate docs for the
//! field-by-field mapping.
//!
//! ## Quick start
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! use logship_jkool_http::JkoolHttpLayer;
//!
//! let (layer, guard) = JkoolHttpLayer::builder("your-jkool-access-token")
//!     .with_pipeline(|p| p.with_service_name("shop"))
//!     .build()?;
//! tracing_subscriber::registry().with(layer).init();
//!
//! let span = tracing::info_span!("checkout", correlator = "order-42");
//! span.in_scope(|| tracing::warn!(total = 99.5, "card retried"));
//! drop(span); // closing the span sends an ACTIVITY
//! drop(guard); // flushes (bounded by the shutdown timeout)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Mapping (summary; full table in [`logship_jkool`])
//! | `tracing` | jKool |
//! |---|---|
//! | event | EVENT to `{base}/event`: `operation` = target, `msg-text`, `severity`, `time-usec` (µs), `properties` = fields |
//! | span, when it closes | ACTIVITY to `{base}/activity`: `start`/`end`/`elapsed-time-usec`, `status` END or EXCEPTION |
//! | event inside a span | `parent-id` = the span's `tracking-id` |
//! | `correlator` field (event or span) | `corrid` (array of strings) |
//! | other fields | `properties`: `{"name","type","value"}`, lowercase Java types (`string`, `long`, `double`, `bool`), value as text |
//! | `time_usec`, `comp_code`, `severity`, `msg_tag`, … (the original `logEvent` parameters) | the top-level keys `time-usec`, `comp-code`, … ([`logship_jkool::fields`]) |
//! | `snapshot.<name>.<prop>` fields, `snapshot = %Snapshot` | `snapshots` (or SNAPSHOT documents to `{base}/snapshot`) |
//!
//! ## Authentication ([`JkoolAuth`])
//! `token: <T>` header (default), `X-API-Key: <T>` header, or the original's access-request
//! handshake on each kept-alive connection. A 401 or 403 (on a post or on the handshake) is a
//! permanent failure reported as "invalid access token": the batch is undelivered at once
//! (`Stats::undelivered_rejected`, `Stats::last_error`), never retried in a loop.
//!
//! ## Delivery
//! **One JSON object per request** (`Content-Type: application/json`), as every reference
//! client posts: jkool-client-java-api `JKStream.post(Trackable)`
//! (<https://github.com/Nastel/jkool-client-java-api>,
//! `src/main/java/com/jkoolcloud/client/api/service/JKStream.java`), the original Python
//! library's `HttpHandler`, and the swagger (`src/swagger/jKoolSwagger.yaml`, body `event`).
//! A batch becomes one post per document; at most
//! [`with_max_requests_in_flight`](JkoolHttpBuilder::with_max_requests_in_flight) posts
//! (default [`DEFAULT_MAX_REQUESTS_IN_FLIGHT`], 8) are in flight at once, over as many
//! kept-alive HTTP/1.1 connections, so EVENTs and ACTIVITYs of one batch are not ordered
//! against each other. One batch is in flight at a time. Each post's answer decides the fate
//! of its own record ([`logship_core::Fates`]): a document the service refuses is rejected
//! alone, the records of failed posts are retried, the others count as delivered.
//!
//! [`BodyShape::Array`] (opt-in, [`with_body_shape`](JkoolHttpBuilder::with_body_shape))
//! sends JSON arrays of at most
//! [`with_max_request_records`](JkoolHttpBuilder::with_max_request_records) documents and
//! [`with_max_request_bytes`](JkoolHttpBuilder::with_max_request_bytes) bytes per endpoint
//! instead. **It is not verified against the service; no reference sends arrays**, and a
//! refusal then rejects every record of that post.
//!
//! **Guarantee: at least once.** A record counts as delivered only when every post that
//! carried it was answered 2xx. Connection errors, timeouts, 408, 429 (with `Retry-After`)
//! and 5xx (but 501) make the core retry exactly the records of the failed posts, with
//! backoff; a record whose event post succeeded but whose separate snapshot post failed is
//! resent whole, so jKool may see it twice (the `tracking-id` stays the same, so duplicates
//! are recognisable). Other 4xx answers reject the record(s) of that post; a record too large
//! to encode is rejected alone.
//!
//! ## Errors and retries
//! jKool's own cases first, then the shared status table of [`logship_http::classify`]:
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx | delivered |
//! | 401, 403 | rejected: invalid access token |
//! | 3xx | rejected, naming the (redacted) `Location`: redirects are never followed, so neither the token nor the records go to another host or over plain HTTP |
//! | 408, 429, 5xx except 501 and 505, connection failure, timeout | retried (after `Retry-After`, seconds or HTTP-date, when given) |
//! | TLS certificate check failed | retried; counted in `Stats::certificate_failures`, `last_error` says which check failed |
//! | other 4xx, 501, 505 | rejected with the server's reason (at most 512 bytes of it) |
//!
//! Reply bodies are read through a cap
//! ([`with_max_reply_bytes`](JkoolHttpBuilder::with_max_reply_bytes), default 1 MiB): a
//! longer or endless body, or a larger `Content-Length`, cannot make the process grow; the
//! post is judged by its status and `last_error` says the body was cut.
//!
//! ## TLS
//! [`TlsOptions`] (from `logship-tls`, the same type for every logship backend): rustls with
//! the *ring* provider, the server verified against the OS trust store by default (the
//! bundled Mozilla roots when the OS has none); `with_ca_pem`/`with_ca_file` add a CA,
//! `with_only_custom_roots(true)` trusts only those, `with_client_cert_pem`/`_file` for mutual
//! TLS, and (explicitly, with a warning) `danger_accept_invalid_certs` turns verification off.
//! The handshake mode uses the same configuration on its own connections.
//!
//! ## Configuration without code
//! [`JkoolHttpBuilder::from_env`] reads `LOGSHIP_JKOOL` and the `LOGSHIP_JKOOL_*` variables (`LOGSHIP_JKOOL_TOKEN=…`, `LOGSHIP_JKOOL_URL=…`) plus the shared
//! pipeline variables `LOGSHIP_PIPELINE_*`, once, into a builder you can keep configuring;
//! a malformed or unknown variable is reported by `build()`, naming it. With the feature
//! `serde`, [`JkoolHttpConfig`] is the same settings as a configuration-file section (unknown keys
//! refused). The tables are on [`JkoolHttpConfig`] and in the repository's `docs/configuration.md`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod classify;
mod config;
mod error;
mod settings;
mod sink;
mod transport;

pub use config::{
    BodyShape, DEFAULT_BASE_URL, DEFAULT_MAX_REQUESTS_IN_FLIGHT, JkoolAuth, JkoolHttpBuilder,
};
pub use error::{AccessToken, JkoolHttpError};
pub use logship_jkool::SnapshotPlacement;
pub use logship_tls::TlsOptions;
pub use settings::JkoolHttpConfig;
pub use sink::JkoolHttpSink;

#[doc(hidden)]
pub use classify::fuzzing;

logship_core::define_layer!(
    /// The jKool HTTPS layer: add it to a `tracing_subscriber::registry()`. Built with
    /// [`JkoolHttpLayer::builder`].
    JkoolHttpLayer
);
