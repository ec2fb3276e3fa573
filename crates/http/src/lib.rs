//! The one HTTP transport of the logship backends that speak HTTP (Elasticsearch/OpenSearch
//! `_bulk`, Kusto streaming and queued ingestion with its token requests, jKool's REST
//! streaming API). Backends only encode requests and read what the answers mean for their
//! records; everything a hostile or broken server could abuse is decided here, once:
//!
//! * **TLS** is [`logship_tls::TlsOptions`]: the OS trust store by default, the same CA and
//!   mutual-TLS settings as every other backend. A failed certificate check is a
//!   [`SendError::Certificate`] saying which check failed.
//! * **No redirects.** A `3xx` is returned as it is, and [`classify`] makes it a permanent
//!   refusal naming the (redacted) `Location`: following it could carry the `Authorization`
//!   header, an API key or a client secret, and the records, to another host or over plain
//!   HTTP.
//! * **Every reply body is read through a byte cap** ([`HttpOptions::with_max_reply_bytes`],
//!   default [`DEFAULT_MAX_REPLY_BYTES`] = 1 MiB): a `Content-Length` over the cap is not
//!   read at all, an endless or oversized body is cut at the cap ([`Reply::complete`] says
//!   so). Errors quote at most [`logship_core::excerpt::MAX_EXCERPT_BYTES`] of a body.
//! * **No compressed replies**: the client advertises no `Accept-Encoding`, so servers send
//!   plain text it can read (request bodies may still be gzipped by the backend, with
//!   [`logship_core::compress::gzip`]).
//! * **One `Retry-After` parser** ([`parse_retry_after`]: delay-seconds and HTTP-date, RFC 9110
//!   §10.2.3), capped at [`MAX_RETRY_AFTER`].
//! * **One status classification** ([`classify`]), which a backend consults after its own
//!   protocol-specific cases (an Elasticsearch `409`, a Kusto `@permanent` flag), modelled on
//!   Vector's `HttpRetryLogic` and OpenTelemetry's `retry_classification.rs`.
//! * No proxy from the environment, HTTP/1.1, `TCP_NODELAY`, kept-alive pooled connections.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use logship_http::{HttpOptions, classify};
//!
//! // At the layer's `build()`: check the settings, build the TLS configuration.
//! let config = HttpOptions::new("example").build()?;
//! // On the worker thread: the client, then requests.
//! let client = config.client()?;
//! let url = logship_http::Url::parse("https://logs.example.com/ingest")?;
//! let verdict = match client.send(client.post(url).body("{}")).await {
//!     Ok(reply) => classify(&reply, "ingest"),
//!     Err(e) => e.verdict(),
//! };
//! # let _ = verdict; Ok(()) }
//! ```

mod classify;
mod client;
mod error;
mod reply;
mod retry_after;

pub use classify::classify;
pub use client::{DEFAULT_MAX_REPLY_BYTES, HttpClient, HttpConfig, HttpOptions, error_chain};
pub use error::{HttpError, SendError};
pub use reply::Reply;
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};

/// The reqwest version the transport uses, re-exported so backends build requests with the
/// same types (`Method`, `header`, `RequestBuilder`).
pub use reqwest;
/// A parsed URL (reqwest's re-export of the `url` crate).
pub use reqwest::Url;
