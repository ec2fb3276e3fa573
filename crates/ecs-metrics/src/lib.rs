//! # logship-ecs-metrics
//!
//! A `tracing` layer that turns every closed span into an [Elastic Common Schema] timer
//! document and ships it to Elasticsearch or OpenSearch with `_bulk`: the Rust form of the
//! Python `ElasticECSMetricsLogger` and its `log_time_metric_timer`. Log events can be shipped
//! as ECS log documents too (off by default).
//!
//! [Elastic Common Schema]: https://www.elastic.co/guide/en/ecs/current/index.html
//!
//! ## Quick start
//! ```no_run
//! use std::time::Duration;
//! use tracing_subscriber::prelude::*;
//! use logship_ecs_metrics::{EcsLayer, IndexFrequency};
//!
//! let (layer, guard) = EcsLayer::builder("http://127.0.0.1:9200")
//!     .with_credentials("elastic", "changeme")
//!     .with_index_prefix("shop-metrics")           // shop-metrics-2026.11.21
//!     .with_index_frequency(IndexFrequency::Daily)
//!     .with_service_name("shop")
//!     .build()?;
//! tracing_subscriber::registry().with(layer).init();
//!
//! #[tracing::instrument]
//! fn checkout(order_id: u64) { /* … */ }
//!
//! checkout(42);                                       // one document, event.duration in ns
//! {
//!     let _t = tracing::info_span!("load_catalog").entered();
//!     // …
//! }                                                   // another one when the span closes
//!
//! guard.flush(Duration::from_secs(5))?;               // dropping the guard flushes too
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A timer measured some other way goes through [`log_time_metric`] (or
//! [`EcsLayer::log_time_metric`]): `log_time_metric(&handle, "import", started_at, elapsed)`.
//!
//! Which spans become documents is chosen with the usual per-layer filter
//! (`layer.with_filter(…)`) or with `with_pipeline(|p| p.with_span_timing_filter(…))`.
//!
//! ## The document
//! One JSON object per closed span (`event.kind: metric`) or, when enabled, per event
//! (`event.kind: event`), following ECS 8.11 ([`ECS_VERSION`]) and the ecs-logging field order
//! (`@timestamp`, `log.level`, `message`, `ecs.version` first). Timestamps are RFC 3339 in
//! UTC with nanoseconds, e.g. `2026-11-21T06:01:02.123456789Z`.
//!
//! | from `tracing` / the layer | ECS field | note |
//! |---|---|---|
//! | span open time / event time | `@timestamp` | timers: the start, as the original |
//! | level | `log.level` | `error` `warn` `info` `debug` `trace` |
//! | event message | `message` | timers: `"<name> took <ms> ms"` |
//! | — | `ecs.version` | [`ECS_VERSION`] |
//! | — | `event.kind` | `metric` (timers), `event` (log events) |
//! | record tracking id: the caller's `tracking_id` field, else the core's per-event id | `event.id` | omitted when empty; not the `_id` (see "Delivery") |
//! | [`with_dataset`](EcsBuilder::with_dataset) | `event.dataset` | |
//! | span open / close | `event.start`, `event.end` | |
//! | span wall time | `event.duration` | nanoseconds (long) |
//! | encoding time | `event.created` | when the batch was encoded for sending |
//! | span recorded an error, or an ERROR event inside it | `event.outcome` | `failure`, else `success` (timers only) |
//! | span name | `metrics.name`, `log.origin.function` | the original's `metrics.name` |
//! | span wall / busy (entered) time | `metrics.duration.us`, `metrics.busy.us` | microseconds (the original's `metrics.duration.us`) |
//! | target | `log.logger` | |
//! | file, line | `log.origin.file.name`, `log.origin.file.line` | |
//! | [`with_service_name`](EcsBuilder::with_service_name) / version / environment | `service.name`, `service.version`, `service.environment` | |
//! | this host | `host.name`, `host.hostname`, `host.id`, `host.ip` (array) | [`with_host_fields`](EcsBuilder::with_host_fields); `host.id` is the machine id (`/etc/machine-id`), else the host name, or [`with_host_id`](EcsBuilder::with_host_id) |
//! | this process, the emitting thread | `process.pid`, `process.thread.name` | |
//! | this crate | `agent.type`, `agent.version`, `agent.ephemeral_id` | ephemeral id: one UUID per layer |
//! | fields `labels.<key>` (event, span, enclosing spans), [`with_label`](EcsBuilder::with_label) | `labels.<key>` | keys: `.` `*` `\` → `_`; values as text |
//! | the first field named `error` (what `#[instrument(err)]` records, as text) or holding a `&dyn Error` | `error.message`, `error.stack_trace` | the stack trace is the chain of a `&dyn Error`: `msg\ncaused by: source…` |
//! | the first `error.type` field | `error.type` | logship does not guess a type: a Debug form names a variant (`Custom { .. }`), not a type |
//! | timers: the span's own `error` (or `&dyn Error`) field, else the last ERROR event with an error inside the span (when this layer ships events) | `error.message`, `error.type`, and `event.outcome: failure` | |
//! | other fields of the event, or of the timed span | `tracing.fields.<name>` | typed: integers, floats, booleans, text |
//! | enclosing spans, outermost first | `tracing.spans` | `[{"name", "fields"}]` |
//! | enclosing span's tracking id | `tracing.parent_id` | |
//! | correlators | `tracing.correlators` | |
//! | data stream mode | `data_stream.type`, `.dataset`, `.namespace` | |
//! | [`with_additional_fields`](EcsBuilder::with_additional_fields) / [`_from_env`](EcsBuilder::with_additional_fields_from_env) | anywhere | deep-merged; the layer's own fields win |
//!
//! `tracing` is this crate's custom namespace (ECS has no top-level `tracing` field); give
//! fields of one name one type across your code, or Elasticsearch refuses the document whose
//! type differs (`mapper_parsing_exception`, counted as undelivered). 128-bit integers beyond
//! ±2⁵³ and non-finite floats are sent as text.
//!
//! ## Where documents go
//! * Dated indices (default): `<prefix>-<date>`, the date from each document's own
//!   `@timestamp` in UTC ([`IndexFrequency`]: daily `%Y.%m.%d`, weekly = that week's Monday,
//!   monthly `%Y.%m`, yearly `%Y`, never = the prefix alone).
//! * Data streams ([`with_data_stream`](EcsBuilder::with_data_stream)):
//!   `metrics-<dataset>-<namespace>` for timers, `logs-<dataset>-<namespace>` for events,
//!   always `create`.
//! * [`with_install_template`](EcsBuilder::with_install_template) installs an index template
//!   mapping every field above ([`EcsBuilder::index_template`] shows it).
//!
//! ## Delivery
//! **At least once, without duplicates in the index.** Each document's `_id` names the record:
//! a UUID version 8 (RFC 9562) made of the SHA-256 of the record's own identity (its kind,
//! capturing thread, capture time in ns, tracking id, level, target and message start), never
//! the caller's `tracking_id` alone, so records sharing a tracking id are separate documents.
//! Every retry, a spool replay and a failure-folder replay send the same `_id`: with the
//! default `create` action a copy that already landed is answered 409. That 409 counts as
//! delivered and as a duplicate (`Stats::duplicates`) only when this layer had sent the
//! document before (it remembers the `_id`s of its last 65 536 unsettled documents); a 409 on
//! a document it never sent is another writer's document under the same `_id`, and is
//! undelivered (rejected) with a reason naming the `_id`. With `index` a retry overwrites
//! its own copy.
//!
//! Every `_bulk` item is read (the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html>): 2xx delivered, 409 on `create` as above,
//! 429 and 5xx retried alone, other statuses undelivered with the server's reason.
//! Whole requests answered 408/429/5xx (with `Retry-After`) or lost to connection errors are
//! retried by the core pipeline with backoff and a circuit breaker; 413 splits the request;
//! other 4xx and every 3xx (redirects are never followed) are undelivered. Undelivered documents
//! are counted in the stats and can go to a [failure folder](EcsBuilder::with_failure_folder)
//! (the core dead-letter folder) and be [replayed](EcsBuilder::replay_failure_folder) or sent
//! with `logship replay`. Nothing here ever blocks the thread that
//! emits: the I/O happens on the layer's own worker thread.
//!
//! ## Connections
//! Several hosts fail over in order when a connection cannot be made; a 429/5xx moves the next
//! attempt to the next host. Authentication: none, basic, API key, bearer token ([`EcsAuth`]).
//! With the cargo feature `aws-sigv4`, requests can be signed with AWS Signature Version 4 for
//! Amazon OpenSearch Service (`EcsBuilder::with_aws_sigv4`; credentials are given
//! explicitly, no AWS credential chain is read). HTTP goes through the shared `logship-http`
//! transport: TLS is [`TlsOptions`] ([`with_tls`](EcsBuilder::with_tls): the OS trust store by
//! default, added CAs, mTLS, a warned opt-out), redirects are never followed, and every reply
//! body is read through a byte cap ([`with_max_reply_bytes`](EcsBuilder::with_max_reply_bytes),
//! default 1 MiB); server text in errors is at most 512 bytes. **Kerberos is out of scope.**
//!
//! ## Cargo features
//! | feature | default | adds |
//! |---|---|---|
//! | `aws-sigv4` | off | SigV4 signing (`aws-sigv4`, `aws-credential-types` crates) |
//!
//! ## Modules
//! [`config`](EcsBuilder) (builder and defaults), `encode` (pure ECS/NDJSON encoder),
//! `classify` (pure reply → verdict, falling back to `logship_http::classify`), `transport`
//! (hosts, auth, gzip over `logship-http`), `sink` (the core `Sink`), `template` (index
//! template), `failure` (replay of the failure folder, both formats).
//!
//! ## Configuration without code
//! [`EcsBuilder::from_env`] reads `LOGSHIP_ES` and the `LOGSHIP_ES_*` variables (`LOGSHIP_ES=https://es.example.com:9200`, `LOGSHIP_ES_USERNAME=…`, `LOGSHIP_ES_PASSWORD=…`) plus the shared
//! pipeline variables `LOGSHIP_PIPELINE_*`, once, into a builder you can keep configuring;
//! a malformed or unknown variable is reported by `build()`, naming it. With the feature
//! `serde`, [`EcsConfig`] is the same settings as a configuration-file section (unknown keys
//! refused). The tables are on [`EcsConfig`] and in the repository's `docs/configuration.md`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod classify;
mod config;
mod encode;
mod error;
mod failure;
mod settings;
#[cfg(feature = "aws-sigv4")]
mod sigv4;
mod sink;
mod template;
mod transport;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_INDEX_PREFIX, DEFAULT_MAX_BATCH_RECORDS,
    DEFAULT_MAX_REQUEST_BYTES, EcsBuilder, IntoHosts, log_time_metric,
};
pub use encode::{AGENT_TYPE, BulkAction, ECS_VERSION, IndexFrequency};
pub use error::{EcsError, Secret};
pub use failure::ReplayReport;
pub use logship_http::DEFAULT_MAX_REPLY_BYTES;
pub use logship_tls::TlsOptions;
pub use settings::EcsConfig;
#[cfg(feature = "aws-sigv4")]
pub use sigv4::AwsSigV4;
pub use template::TEMPLATE_PRIORITY;
pub use transport::EcsAuth;

logship_core::define_layer!(
    /// The Elasticsearch / OpenSearch ECS layer; build it with [`EcsLayer::builder`].
    EcsLayer
);

#[doc(hidden)]
pub mod __bench {
    //! Access to the encoder for the benchmark (not a public API).
    use logship_core::{Record, Timestamp};

    use crate::encode::{Encoder, EncoderConfig, IndexFrequency, IndexNaming};

    /// An encoder with a dated index and no extra fields.
    #[derive(Debug)]
    pub struct BenchEncoder(Encoder);

    impl Default for BenchEncoder {
        fn default() -> Self {
            let mut cfg = EncoderConfig::minimal(IndexNaming::Dated {
                prefix: "bench".into(),
                frequency: IndexFrequency::Daily,
            });
            cfg.host_name = Some("bench-host".into());
            cfg.host_ips = vec!["10.0.0.5".into()];
            cfg.pid = 1;
            Self(Encoder::new(cfg))
        }
    }

    impl BenchEncoder {
        /// Appends the two lines of `r`.
        pub fn encode(&mut self, r: &Record, out: &mut Vec<u8>) {
            self.0.encode(r, Timestamp::now(), out);
        }

        /// Appends the lines of every record, with one `event.created` time (as the sink
        /// encodes a batch).
        pub fn encode_batch<'r>(
            &mut self,
            records: impl IntoIterator<Item = &'r Record>,
            out: &mut Vec<u8>,
        ) {
            let created = Timestamp::now();
            for r in records {
                self.0.encode(r, created, out);
            }
        }
    }

    /// The `_id` of `r`'s document (a UUID v8 over the record's identity, SHA-256).
    pub fn doc_id(r: &Record) -> [u8; 16] {
        *crate::encode::doc_id(r).0.as_bytes()
    }
}

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`); not API.
    use std::time::Duration;

    use crate::encode::BulkAction;

    /// Checks a host URL as [`EcsBuilder::build`](crate::EcsBuilder::build) does; `Ok` holds
    /// the URL requests are sent to.
    pub fn host(url: &str) -> Result<String, String> {
        crate::transport::parse_host(url)
            .map(|u| u.to_string())
            .map_err(|e| e.to_string())
    }

    /// Classifies a `_bulk` response (`status`, `Retry-After`, body) for `docs` documents
    /// sent with `action`; returns the number of per-document fates (`None` when the whole
    /// request has one verdict) and the server's delay, if any.
    pub fn bulk_response(
        status: u16,
        retry_after: Option<&str>,
        body: &[u8],
        docs: usize,
        action: BulkAction,
    ) -> (Option<usize>, Option<Duration>) {
        use crate::classify::{BulkVerdict, classify, error_reason};
        use logship_http::reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        let _ = error_reason(body);
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(RETRY_AFTER, v);
        }
        let reply = logship_http::Reply::from_parts(
            status,
            &headers,
            bytes::Bytes::copy_from_slice(body),
            true,
            body.len(),
        );
        match classify(&reply, docs, action) {
            BulkVerdict::Items(v) => (Some(v.len()), None),
            BulkVerdict::Whole(logship_core::Verdict::Retry { after, .. }) => (None, after),
            BulkVerdict::Whole(_) | BulkVerdict::TooLarge => (None, None),
        }
    }
}
