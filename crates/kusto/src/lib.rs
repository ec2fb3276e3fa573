//! # logship-kusto
//!
//! A `tracing` layer that ships events and span timings to an Azure Data Explorer (Kusto)
//! table, by streaming ingestion with queued ingestion as fallback, authenticated with AAD.
//! The Rust successor of the Python `KustoHandler` (Azure Kusto logging handler), without its flaws:
//! rows are JSON with named columns instead of positional CSV, the caller never waits for
//! the network, and a failed batch is retried with backoff, then reported, never silently
//! dropped.
//!
//! ## Quick start
//! ```no_run
//! use std::time::Duration;
//! use tracing_subscriber::prelude::*;
//! use logship_kusto::KustoLayer;
//!
//! let (layer, guard) = KustoLayer::from_connection_string(
//!     "Data Source=https://mycluster.westeurope.kusto.windows.net;Initial Catalog=Logs;\
//!      AAD Federated Security=True;Application Client Id=00000000-0000-0000-0000-000000000000;\
//!      Application Key=…;Authority Id=contoso.onmicrosoft.com",
//! )?
//! .with_table("AppEvents")
//! .with_service_name("shop")
//! .with_create_table(true) // .create-merge table + json mapping at start
//! .build()?;
//! tracing_subscriber::registry().with(layer).init();
//!
//! tracing::info!(order_id = 42_u64, total = 99.5, "order placed");
//!
//! guard.shutdown(Duration::from_secs(10))?; // flush before exit
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## From `tracing` to columns
//! Every row has the same 15 columns ([`COLUMNS`]); create them with
//! [`create_table_command`] and [`create_mapping_command`] (or let
//! [`with_create_table`](KustoBuilder::with_create_table) run them). Opt-in:
//! [`with_call_site_columns`](KustoBuilder::with_call_site_columns) adds `File`, `Line`,
//! `Module`, `ProcessId`, `ThreadName`, `ThreadId` ([`CALL_SITE_COLUMNS`]), and
//! [`with_level_names(LevelNames::Python)`](KustoBuilder::with_level_names) writes `WARNING`
//! for `WARN` and adds `LevelNo`; [`TableLayout`] gives the commands for such a table, and
//! [`kusto_handler_mapping_command`] writes the rows into the original `KustoHandler`'s table.
//!
//! | tracing | column (type) |
//! |---|---|
//! | event time / span close time (UTC) | `Timestamp` (datetime, 100 ns) |
//! | level | `Level` (string) |
//! | target | `Target` (string) |
//! | message | `Message` (string) |
//! | `key = value` fields (typed), then enclosing spans' fields | `Fields` (dynamic) |
//! | closed span's name / innermost enclosing span | `SpanName` (string) |
//! | span wall time, for span timings | `Duration` (timespan) |
//! | `source_fqn` field or the default from [`with_service_name`](KustoBuilder::with_service_name) | `SourceFqn` (string) |
//! | `correlator` fields of the event and its spans | `Correlators` (dynamic array) |
//! | record's tracking id / enclosing span's | `TrackingId`, `ParentTrackingId` (string) |
//! | `snapshot.*` fields, `snapshot = %snap` | `Snapshots` (dynamic) |
//! | host name, service, thread | `Host`, `Service`, `Thread` (string) |
//! | opt-in: callsite file, line, module path; process id; thread name, logship's thread number | `File`, `Line`, `Module`, `ProcessId`, `ThreadName`, `ThreadId` |
//!
//! Value types and exact text forms: [`encode`].
//!
//! ## The original's parameters
//! | `KustoHandler` | here |
//! |---|---|
//! | `kcsb` | [`KustoLayer::from_connection_string`] or the builder |
//! | `database`, `table` | [`with_database`](KustoBuilder::with_database), [`with_table`](KustoBuilder::with_table) |
//! | `useStreaming` | [`with_ingestion_mode`](KustoBuilder::with_ingestion_mode) ([`IngestionMode`]) |
//! | `capacity` | `with_pipeline(\|p\| p.with_max_batch_records(n))` |
//! | `flushLevel` | `with_pipeline(\|p\| p.with_flush_level(Some(Level::…)))` |
//! | `retries=[5, 30, 60]` | `with_pipeline(\|p\| p.with_retry(…))` (backoff with jitter, never blocking the caller) |
//! | its table's `levelname` (`WARNING`), `levelno` | [`with_level_names(LevelNames::Python)`](KustoBuilder::with_level_names) (`Level`, `LevelNo`) |
//! | its table's `pathname`, `lineno`, `module`, `process`, `threadName`, `thread` | [`with_call_site_columns(true)`](KustoBuilder::with_call_site_columns) (`File`, `Line`, `Module`, `ProcessId`, `ThreadName`, `ThreadId`) |
//! | its table itself | [`kusto_handler_mapping_command`] and [`with_mapping_name`](KustoBuilder::with_mapping_name): rows land in the old columns (`docs/kusto.md`, "Migrating from KustoHandler") |
//!
//! ## Delivery
//! * Batches are encoded on the layer's worker thread and split into requests of at most
//!   4 MiB of **uncompressed** rows (so the gzip body is under 4 MiB too); rows too large
//!   for one request go by queued ingestion (managed and queued modes).
//! * Each request's answer is classified ([`classify`] table): 429 and
//!   transient errors are retried by the core with backoff (and fall back to queued
//!   ingestion in managed mode), permanent errors send the affected records to the
//!   undelivered path with the service's message, a 401/403 refreshes the token once.
//! * A record counts as delivered when streaming ingestion answered 200, or when its queued
//!   ingestion message was accepted by the queue (the service then ingests it
//!   asynchronously; failures of that step are reported by the service, not here).
//! * At-least-once: a request that timed out may have been ingested; its retry can
//!   duplicate rows (Kusto streaming ingestion has no idempotency key).
//!
//! ## Transport and TLS
//! Every request (streaming ingestion, control commands, the auth metadata, token and
//! managed-identity endpoints, Azure Storage blobs and queues) goes through one
//! [`logship_http`] client created on the worker thread: HTTP/1.1 over rustls, **no
//! redirects** (a 3xx is refused with its redacted `Location`), every reply body read through
//! a cap ([`with_max_reply_bytes`](KustoBuilder::with_max_reply_bytes), default 1 MiB), no
//! `Accept-Encoding`, errors quoting at most 512 bytes of a reply. Certificates are checked
//! per [`with_tls`](KustoBuilder::with_tls) ([`TlsOptions`]: the OS trust store by default;
//! `with_ca_pem` **adds** a CA, `with_only_custom_roots(true)` trusts only yours); a failed
//! check is retried, counted in `Stats::certificate_failures`, and named in `last_error`.
//!
//! ## Authentication
//! Client credentials (hand-written: one form POST; see [`auth`] for why not
//! `azure_identity`), managed identity, a fixed token, or a [`TokenProvider`]. The scope is
//! read from the cluster's `/v1/rest/auth/metadata`; the login endpoint from
//! [`with_login_endpoint`](KustoBuilder::with_login_endpoint), else the metadata, else the
//! `AadAuthorityUri` environment variable ([`AAD_AUTHORITY_ENV`]), else the public cloud.
//! A login endpoint named by the metadata must be `https` on one of the
//! [`KNOWN_AUTHORITY_HOSTS`] (or be the one `AadAuthorityUri` names), the token audience
//! stays tied to the cluster, and no request follows a redirect: see [`auth`].
//! Keys and tokens never appear in `Debug`, errors or logs ([`Secret`]).
//!
//! ## Configuration without code
//! [`KustoBuilder::from_env`] reads `LOGSHIP_KUSTO` and the `LOGSHIP_KUSTO_*` variables (`LOGSHIP_KUSTO=<connection string>`, `LOGSHIP_KUSTO_TABLE=Logs`) plus the shared
//! pipeline variables `LOGSHIP_PIPELINE_*`, once, into a builder you can keep configuring;
//! a malformed or unknown variable is reported by `build()`, naming it. With the feature
//! `serde`, [`KustoConfig`] is the same settings as a configuration-file section (unknown keys
//! refused). The tables are on [`KustoConfig`] and in the repository's `docs/configuration.md`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod auth;
pub mod classify;
mod config;
pub mod connection_string;
pub mod encode;
mod error;
mod queued;
mod settings;
mod sink;
mod transport;

pub use auth::{AAD_AUTHORITY_ENV, AccessToken, KNOWN_AUTHORITY_HOSTS, TokenProvider};
pub use config::{DEFAULT_MAPPING_NAME, IngestionMode, KustoBuilder, STREAMING_LIMIT_BYTES};
pub use encode::{
    CALL_SITE_COLUMNS, COLUMNS, KUSTO_HANDLER_COLUMNS, LEVEL_NO_COLUMN, LevelNames, TRACE_COLUMNS,
    TableLayout, create_mapping_command, create_table_command, kusto_handler_mapping_command,
};
pub use error::{ConnectionStringError, KustoError, Secret};
/// The TLS settings of [`KustoBuilder::with_tls`] (shared by every logship backend).
pub use logship_tls::TlsOptions;
pub use settings::KustoConfig;

logship_core::define_layer!(
    /// The Kusto layer: add it to a `tracing_subscriber::registry()`. Built by
    /// [`KustoLayer::builder`] or [`KustoLayer::from_connection_string`].
    KustoLayer
);

impl KustoLayer {
    /// An empty [`KustoBuilder`].
    pub fn builder() -> KustoBuilder {
        KustoBuilder::new()
    }

    /// A [`KustoBuilder`] from a Kusto connection string (see
    /// [`connection_string`] for the keywords).
    ///
    /// # Errors
    /// [`ConnectionStringError`] naming the keyword at fault.
    pub fn from_connection_string(s: &str) -> Result<KustoBuilder, ConnectionStringError> {
        KustoBuilder::from_connection_string(s)
    }
}

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`); not API.
    use std::time::{Duration, SystemTime};

    /// The engine and data-management endpoints [`KustoBuilder::build`](crate::KustoBuilder::build)
    /// derives from a cluster URL, or `None` when it refuses the URL.
    pub fn endpoints(cluster: &str) -> Option<(String, String)> {
        let u = logship_http::Url::parse(cluster)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())?;
        Some((
            crate::config::endpoint(&u, false),
            crate::config::endpoint(&u, true),
        ))
    }

    /// Classifies a service answer (`status`, `Retry-After`, body: OneApi JSON, Azure Storage
    /// XML or anything) as a streaming ingestion and as a control command; returns whether
    /// each is retryable.
    pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> (bool, bool) {
        use logship_http::reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(RETRY_AFTER, v);
        }
        let reply =
            logship_http::Reply::from_parts(status, &headers, body.to_vec().into(), true, 1 << 20);
        let s = crate::classify::streaming(&reply);
        let o = crate::classify::other("control command", &reply);
        let _ = (s.reason().len(), o.reason().len());
        (s.is_retryable(), o.is_retryable())
    }

    /// Parses an AAD / managed-identity token answer and a cloud metadata document as the
    /// worker does; returns the token's lifetime from `now`, if it has an expiry.
    pub fn auth_answers(body: &[u8], now_secs: u64) -> Option<Duration> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs % (1 << 33));
        let info = crate::auth::cloud_info(Some(body), None, "https://help.kusto.windows.net");
        let _ = crate::auth::check_login_endpoint(&info.login_endpoint, info.login_source, None);
        let t = crate::auth::parse_token(body, now).ok()?;
        t.expires_at
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
    }
}
