//! [`JkoolHttpBuilder`]: every setting of the HTTPS layer, checked by [`build`](JkoolHttpBuilder::build).

use std::time::Duration;

use logship_core::{Guard, PipelineBuilder};
use logship_http::reqwest::header::HeaderValue;
use logship_http::{HttpOptions, Url};
use logship_jkool::{Encoder, SnapshotPlacement};
use logship_tls::TlsOptions;

use crate::JkoolHttpLayer;
use crate::error::{AccessToken, JkoolHttpError};
use crate::sink::JkoolHttpSink;
use crate::transport::{ClientTransport, Endpoints, HandshakePool, Transport};

/// The jKool stream endpoint base (the jKool client model, <https://github.com/Nastel/jkool-client-java-api>).
pub const DEFAULT_BASE_URL: &str = "https://data.jkoolcloud.com/JESL";

pub(crate) const USER_AGENT: &str = concat!("logship-jkool-http/", env!("CARGO_PKG_VERSION"));

/// How the access token reaches jKool (the jKool client model, <https://github.com/Nastel/jkool-client-java-api> "Auth").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JkoolAuth {
    /// A `token: <T>` header on every post (jkool-client-java-api, the swagger). Default.
    #[default]
    TokenHeader,
    /// An `X-API-Key: <T>` header on every post (JESL's current `HttpClient`).
    ApiKeyHeader,
    /// The original's in-band access request: each kept-alive connection first posts
    /// `<access-request><token>T</token></access-request>` as `text/plain` to the base path
    /// and, after a 2xx, carries posts without a token header.
    Handshake,
}

/// The number of posts kept in flight by default ([`JkoolHttpBuilder::with_max_requests_in_flight`]).
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 8;

/// What one HTTP request carries.
///
/// Every reference client posts **one JSON object per request**: jkool-client-java-api
/// `JKStream.post(Trackable)` (<https://github.com/Nastel/jkool-client-java-api>,
/// `src/main/java/com/jkoolcloud/client/api/service/JKStream.java`), the original Python
/// library's `HttpHandler.emit`, and the REST examples of the swagger
/// (`src/swagger/jKoolSwagger.yaml`, body schema `event`: an object).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyShape {
    /// One document per request, the body a single JSON object (default). Each post's answer
    /// decides the fate of its own record: one refused document is rejected alone.
    #[default]
    Object,
    /// Several documents per request as a JSON array, at most
    /// [`with_max_request_records`](JkoolHttpBuilder::with_max_request_records) documents and
    /// [`with_max_request_bytes`](JkoolHttpBuilder::with_max_request_bytes) bytes each.
    /// **Not verified against the service; no reference sends arrays.** A refusal rejects
    /// every record of that post. Use only with a receiver known to take arrays.
    Array,
}

/// Builds a [`JkoolHttpLayer`]. Defaults:
///
/// | setting | default |
/// |---|---|
/// | [`with_base_url`](JkoolHttpBuilder::with_base_url) | [`DEFAULT_BASE_URL`] (`https://data.jkoolcloud.com/JESL`) |
/// | [`with_auth`](JkoolHttpBuilder::with_auth) | [`JkoolAuth::TokenHeader`] (`token: <T>` header) |
/// | [`with_body_shape`](JkoolHttpBuilder::with_body_shape) | [`BodyShape::Object`]: one JSON object per post |
/// | [`with_max_requests_in_flight`](JkoolHttpBuilder::with_max_requests_in_flight) | [`DEFAULT_MAX_REQUESTS_IN_FLIGHT`] (8) posts in flight, so at most 8 kept-alive connections |
/// | [`with_max_request_records`](JkoolHttpBuilder::with_max_request_records) | 500 documents per post ([`BodyShape::Array`] only) |
/// | [`with_max_request_bytes`](JkoolHttpBuilder::with_max_request_bytes) | 2 MiB of JSON per post, before compression ([`BodyShape::Array`] only) |
/// | [`with_max_document_bytes`](JkoolHttpBuilder::with_max_document_bytes) | 1 MiB; a larger record is rejected alone |
/// | [`with_gzip`](JkoolHttpBuilder::with_gzip) | off |
/// | [`with_connect_timeout`](JkoolHttpBuilder::with_connect_timeout) | 10 s (the original's), TCP connect and TLS handshake |
/// | [`with_max_reply_bytes`](JkoolHttpBuilder::with_max_reply_bytes) | 1 MiB read of each reply body; the rest is not read |
/// | [`with_snapshot_placement`](JkoolHttpBuilder::with_snapshot_placement) | embedded in the event |
/// | [`with_tls`](JkoolHttpBuilder::with_tls) | verify against the OS trust store ([`TlsOptions`]) |
/// | core: batch size | 1 000 records (change with `with_pipeline`) |
/// | core: linger | 500 ms |
/// | core: everything else | as [`PipelineBuilder`] |
#[must_use]
pub struct JkoolHttpBuilder {
    token: AccessToken,
    base_url: String,
    auth: JkoolAuth,
    max_in_flight: usize,
    body_shape: BodyShape,
    max_request_records: usize,
    max_request_bytes: usize,
    max_document_bytes: usize,
    gzip: bool,
    snapshots: SnapshotPlacement,
    http: HttpOptions,
    pipeline: PipelineBuilder,
    /// A problem found by `from_env`, reported first by `build()`.
    deferred: Option<JkoolHttpError>,
}

impl std::fmt::Debug for JkoolHttpBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JkoolHttpBuilder")
            .field("token", &self.token)
            .field("base_url", &redact_url(&self.base_url))
            .field("auth", &self.auth)
            .field("max_in_flight", &self.max_in_flight)
            .field("body_shape", &self.body_shape)
            .field("max_request_records", &self.max_request_records)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_document_bytes", &self.max_document_bytes)
            .field("gzip", &self.gzip)
            .field("snapshots", &self.snapshots)
            .field("http", &self.http)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl JkoolHttpLayer {
    /// Starts configuring a layer that streams to jKool with this access token.
    pub fn builder(token: impl Into<AccessToken>) -> JkoolHttpBuilder {
        JkoolHttpBuilder {
            token: token.into(),
            base_url: DEFAULT_BASE_URL.into(),
            auth: JkoolAuth::default(),
            max_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
            body_shape: BodyShape::Object,
            max_request_records: 500,
            max_request_bytes: 2 * 1024 * 1024,
            max_document_bytes: logship_jkool::DEFAULT_MAX_DOCUMENT_BYTES,
            gzip: false,
            snapshots: SnapshotPlacement::Embedded,
            http: HttpOptions::new("jkool-http")
                .with_connect_timeout(Duration::from_secs(10))
                .with_user_agent(USER_AGENT),
            pipeline: PipelineBuilder::new()
                .with_max_batch_records(1000)
                .with_linger(Duration::from_millis(500)),
            deferred: None,
        }
    }
}

impl JkoolHttpBuilder {
    /// Keeps `e` for `build()`, ahead of any other problem.
    pub(crate) fn defer(mut self, e: JkoolHttpError) -> Self {
        self.deferred = Some(e);
        self
    }

    /// The stream base URL; documents go to `{base}/event`, `{base}/activity` and
    /// `{base}/snapshot`. `http://` is allowed (for a local relay or a test receiver).
    /// Checked by `build()`.
    pub fn with_base_url(self, url: impl Into<String>) -> Self {
        Self {
            base_url: url.into(),
            ..self
        }
    }

    /// How the token is presented (default [`JkoolAuth::TokenHeader`]).
    pub fn with_auth(self, auth: JkoolAuth) -> Self {
        Self { auth, ..self }
    }

    /// Most posts in flight at once, 1–64 (default [`DEFAULT_MAX_REQUESTS_IN_FLIGHT`], 8;
    /// checked by `build()`). The posts of a batch go out on at most this many kept-alive
    /// HTTP/1.1 connections, and as many idle connections are kept for the next batch.
    pub fn with_max_requests_in_flight(self, n: usize) -> Self {
        Self {
            max_in_flight: n,
            ..self
        }
    }

    /// What a request carries (default [`BodyShape::Object`], one JSON object, as every
    /// reference client sends). [`BodyShape::Array`] is an opt-in that no reference uses.
    pub fn with_body_shape(self, shape: BodyShape) -> Self {
        Self {
            body_shape: shape,
            ..self
        }
    }

    /// Most documents in one post with [`BodyShape::Array`] (default 500); a batch is split
    /// into several posts. Ignored with [`BodyShape::Object`] (one document per post).
    pub fn with_max_request_records(self, n: usize) -> Self {
        Self {
            max_request_records: n,
            ..self
        }
    }

    /// Most bytes of JSON in one post with [`BodyShape::Array`], before compression (default
    /// 2 MiB, at least 1 KiB). With [`BodyShape::Object`] it still bounds
    /// [`with_max_document_bytes`](Self::with_max_document_bytes).
    pub fn with_max_request_bytes(self, n: usize) -> Self {
        Self {
            max_request_bytes: n,
            ..self
        }
    }

    /// Largest single document in bytes (default 1 MiB, at most the request limit); a record
    /// that encodes larger is rejected alone (undelivered, reason given) without failing its
    /// batch.
    pub fn with_max_document_bytes(self, n: usize) -> Self {
        Self {
            max_document_bytes: n,
            ..self
        }
    }

    /// Gzip request bodies (`Content-Encoding: gzip`; default off).
    pub fn with_gzip(self, on: bool) -> Self {
        Self { gzip: on, ..self }
    }

    /// Longest wait for a connection: TCP connect and TLS handshake (default 10 s; 1 ms to
    /// 10 min, checked by `build()`). The whole post is bounded by the core's send timeout.
    pub fn with_connect_timeout(self, d: Duration) -> Self {
        Self {
            http: self.http.with_connect_timeout(d),
            ..self
        }
    }

    /// Cap on each reply body, in bytes (default 1 MiB; 1 KiB to 1 GiB, checked by
    /// `build()`). A reply announcing a larger `Content-Length` is not read at all, a longer
    /// body is cut at the cap; the post is then judged by its status, and errors quote at
    /// most 512 bytes of the body.
    pub fn with_max_reply_bytes(self, n: usize) -> Self {
        Self {
            http: self.http.with_max_reply_bytes(n),
            ..self
        }
    }

    /// Where event snapshots go (default embedded; [`SnapshotPlacement::Separate`] posts them
    /// to `{base}/snapshot`).
    pub fn with_snapshot_placement(self, p: SnapshotPlacement) -> Self {
        Self {
            snapshots: p,
            ..self
        }
    }

    /// TLS settings for `https` ([`TlsOptions`], shared by every logship backend): the OS
    /// trust store by default; an added CA (`with_ca_pem`, `with_ca_file`), only custom
    /// roots, a client certificate, or (for tests) no verification. PEM files are read by
    /// `build()`. The TLS server name is always the base URL's host.
    pub fn with_tls(self, tls: TlsOptions) -> Self {
        Self {
            http: self.http.with_tls(tls),
            ..self
        }
    }

    /// Adjusts the core pipeline settings (queue, batching, retry, breaker, default source
    /// FQN, undelivered callback …): `f` is applied at once to the builder holding this
    /// crate's defaults (1 000 records per batch, 500 ms linger) and whatever earlier calls
    /// set. The settings are checked by `build()`.
    pub fn with_pipeline(mut self, f: impl FnOnce(PipelineBuilder) -> PipelineBuilder) -> Self {
        self.pipeline = f(self.pipeline);
        self
    }

    fn check_url(&self) -> Result<Url, JkoolHttpError> {
        let bad = |reason: &str| JkoolHttpError::InvalidUrl {
            url: redact_url(&self.base_url),
            reason: reason.to_string(),
        };
        let url = Url::parse(&self.base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("use an http:// or https:// url"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the url has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "remove the query and fragment; give the base such as https://data.jkoolcloud.com/JESL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials in the url are not used; pass the access token to the builder",
            ));
        }
        Ok(url)
    }

    fn check_numbers(&self) -> Result<(), JkoolHttpError> {
        let range = |setting, value: String, hint| JkoolHttpError::OutOfRange {
            setting,
            value,
            hint,
        };
        if !(1..=64).contains(&self.max_in_flight) {
            return Err(range(
                "with_max_requests_in_flight",
                self.max_in_flight.to_string(),
                "use 1 to 64",
            ));
        }
        if self.max_request_records == 0 {
            return Err(range(
                "with_max_request_records",
                "0".into(),
                "use at least 1",
            ));
        }
        if self.max_request_bytes < 1024 {
            return Err(range(
                "with_max_request_bytes",
                self.max_request_bytes.to_string(),
                "use at least 1024 bytes",
            ));
        }
        if self.max_document_bytes == 0 || self.max_document_bytes > self.max_request_bytes {
            return Err(range(
                "with_max_document_bytes",
                self.max_document_bytes.to_string(),
                "use at least 1 and at most with_max_request_bytes",
            ));
        }
        Ok(())
    }

    /// Checks every setting, builds the TLS configuration (reading PEM files), starts the
    /// worker, and returns the layer and the guard that flushes it on drop. The HTTP client
    /// itself is created on the worker thread, at the first send.
    ///
    /// # Errors
    /// [`JkoolHttpError`]: an empty or non-header-safe token, a bad base URL, an
    /// out-of-range number, unusable TLS settings or files, or an invalid core setting —
    /// each naming the setting to change.
    pub fn build(self) -> Result<(JkoolHttpLayer, Guard), JkoolHttpError> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        if self.token.expose().is_empty() {
            return Err(JkoolHttpError::EmptyToken);
        }
        let mut token_header = HeaderValue::from_str(self.token.expose())
            .map_err(|_| JkoolHttpError::TokenNotHeaderSafe)?;
        token_header.set_sensitive(true);
        let url = self.check_url()?;
        self.check_numbers()?;
        let bad_url = |reason: String| JkoolHttpError::InvalidUrl {
            url: redact_url(&self.base_url),
            reason,
        };
        let http = self
            .http
            .with_pool_max_idle_per_host(self.max_in_flight)
            .build()?;
        let endpoints = Endpoints::new(&url).map_err(bad_url)?;
        let transport = match self.auth {
            JkoolAuth::Handshake => Transport::Handshake(
                HandshakePool::new(&url, &http, self.token.clone()).map_err(bad_url)?,
            ),
            auth => {
                let name = if auth == JkoolAuth::ApiKeyHeader {
                    "x-api-key"
                } else {
                    "token"
                };
                Transport::Client(ClientTransport::new(http, (name, token_header)))
            }
        };
        let encoder = Encoder::default()
            .with_snapshot_placement(self.snapshots)
            .with_max_document_bytes(self.max_document_bytes);
        let sink = JkoolHttpSink {
            encoder,
            transport,
            endpoints,
            max_in_flight: self.max_in_flight,
            body_shape: self.body_shape,
            max_request_records: self.max_request_records,
            max_request_bytes: self.max_request_bytes,
            gzip: self.gzip,
        };
        Ok(self.pipeline.build_layer::<JkoolHttpLayer, _>(sink)?)
    }
}

pub(crate) use logship_core::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: JkoolHttpBuilder) -> String {
        match b.build() {
            Ok(_) => panic!("built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn build_says_what_to_fix() {
        assert!(err(JkoolHttpLayer::builder("")).contains("token is empty"));
        assert!(err(JkoolHttpLayer::builder("a\nb")).contains("cannot be sent in an http header"));
        let e = err(JkoolHttpLayer::builder("t").with_base_url("ftp://x/JESL"));
        assert!(e.contains("use an http:// or https:// url"), "{e}");
        let e = err(JkoolHttpLayer::builder("t").with_base_url("not a url"));
        assert!(
            e.starts_with("`with_base_url` \"not a url\" is not usable"),
            "{e}"
        );
        let e = err(JkoolHttpLayer::builder("t").with_base_url("https://h/JESL?x=1"));
        assert!(e.contains("remove the query"), "{e}");
        let e = err(JkoolHttpLayer::builder("t").with_max_requests_in_flight(0));
        assert_eq!(e, "`with_max_requests_in_flight` is 0; use 1 to 64");
        let e = err(JkoolHttpLayer::builder("t").with_max_requests_in_flight(65));
        assert_eq!(e, "`with_max_requests_in_flight` is 65; use 1 to 64");
        let e = err(JkoolHttpLayer::builder("t").with_max_document_bytes(10 << 20));
        assert!(e.contains("at most with_max_request_bytes"), "{e}");
        let e = err(JkoolHttpLayer::builder("t").with_pipeline(|p| p.with_max_batch_records(0)));
        assert!(e.contains("max_batch_records"), "{e}");
        let e = err(JkoolHttpLayer::builder("t").with_max_reply_bytes(10));
        assert!(e.contains("with_max_reply_bytes"), "{e}");
        let e = err(JkoolHttpLayer::builder("t").with_connect_timeout(Duration::ZERO));
        assert!(e.contains("with_connect_timeout"), "{e}");
        let e = err(JkoolHttpLayer::builder("t").with_tls(TlsOptions::new().with_ca_pem("junk")));
        assert!(e.contains("with_ca_pem"), "{e}");
        let e =
            err(JkoolHttpLayer::builder("t").with_tls(TlsOptions::new().with_server_name("other")));
        assert!(e.contains("with_server_name"), "{e}");
    }

    #[test]
    fn debug_hides_the_token() {
        let b = JkoolHttpLayer::builder("s3cr3t-token");
        let dbg = format!("{b:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("***"), "{dbg}");
    }
}
