//! HTTP only: the kept-alive reqwest client (rustls), hosts with failover, authentication
//! headers and gzip. No knowledge of documents or of what a response means.
//!
//! The client is created on the layer's worker thread (in `Sink::start`, or at the first send
//! if that failed), never on the caller's thread.

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Certificate, Client, Url};

use crate::error::{EcsError, Secret};

/// How requests authenticate (the Elasticsearch bulk API reference, <https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html> "Auth headers"). Kerberos is out of scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EcsAuth {
    /// No `Authorization` header (default).
    #[default]
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: ApiKey base64(id:key)`.
    ApiKey {
        /// API key id.
        id: String,
        /// API key secret.
        key: Secret,
    },
    /// `Authorization: ApiKey <encoded>`, with the already encoded key Elasticsearch hands
    /// out (the `encoded` field of the create-API-key response).
    EncodedApiKey(Secret),
    /// `Authorization: Bearer <token>` (Elastic Cloud, service account tokens).
    Bearer(Secret),
    /// AWS Signature Version 4 (Amazon OpenSearch Service); cargo feature `aws-sigv4`.
    #[cfg(feature = "aws-sigv4")]
    AwsSigV4(crate::sigv4::AwsSigV4),
}

impl EcsAuth {
    /// The `Authorization` header value, marked sensitive (reqwest keeps it out of `Debug`).
    pub(crate) fn header(&self) -> Result<Option<HeaderValue>, EcsError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (text, what) = match self {
            EcsAuth::None => return Ok(None),
            EcsAuth::Basic { username, password } => (
                format!(
                    "Basic {}",
                    b64.encode(format!("{username}:{}", password.expose()))
                ),
                "basic credentials",
            ),
            EcsAuth::ApiKey { id, key } => (
                format!("ApiKey {}", b64.encode(format!("{id}:{}", key.expose()))),
                "api key",
            ),
            EcsAuth::EncodedApiKey(k) => (format!("ApiKey {}", k.expose()), "api key"),
            EcsAuth::Bearer(t) => (format!("Bearer {}", t.expose()), "bearer token"),
            #[cfg(feature = "aws-sigv4")]
            EcsAuth::AwsSigV4(_) => return Ok(None),
        };
        let mut v =
            HeaderValue::from_str(&text).map_err(|_| EcsError::InvalidCredential { what })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

/// Parses and checks one host URL: `http` or `https`, no credentials in it, an optional path
/// prefix (for a proxy) kept.
pub(crate) fn parse_host(url: &str) -> Result<Url, EcsError> {
    let bad = |reason: &str| EcsError::InvalidHost {
        url: redact_url(url),
        reason: reason.to_string(),
    };
    let mut u = Url::parse(url.trim()).map_err(|e| EcsError::InvalidHost {
        url: redact_url(url),
        reason: format!("{e}; write it as `http://host:9200` or `https://host:9200`"),
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(EcsError::InvalidHost {
            url: redact_url(url),
            reason: "credentials in the url are not accepted: use with_basic_auth".into(),
        });
    }
    if u.host_str().is_none() {
        return Err(bad("the url has no host"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("the url must not have a query or fragment"));
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// TLS settings (rustls; certificate verification on unless explicitly switched off).
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    pub(crate) ca: Vec<Certificate>,
    pub(crate) accept_invalid_certs: bool,
}

/// Everything needed to create the client; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct TransportSettings {
    pub(crate) hosts: Vec<Url>,
    pub(crate) auth: Option<HeaderValue>,
    pub(crate) gzip: bool,
    pub(crate) tls: TlsSettings,
    pub(crate) connect_timeout: Duration,
    /// Per-request signing.
    #[cfg(feature = "aws-sigv4")]
    pub(crate) sigv4: Option<crate::sigv4::AwsSigV4>,
}

/// A response, read in full.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Bytes,
}

/// A request that got no response (connection refused on every host, reset, timeout…).
#[derive(Debug)]
pub(crate) struct TransportError(pub(crate) String);

/// The HTTP side of the sink.
#[derive(Debug)]
pub(crate) struct Transport {
    settings: TransportSettings,
    client: Option<Client>,
    current: usize,
    /// Wire bytes of the requests made by the last call (after compression).
    pub(crate) last_wire_bytes: u64,
}

impl Transport {
    pub(crate) fn new(settings: TransportSettings) -> Self {
        Self {
            settings,
            client: None,
            current: 0,
            last_wire_bytes: 0,
        }
    }

    /// Creates the client unless it exists.
    pub(crate) fn ensure_client(&mut self) -> Result<&Client, TransportError> {
        if self.client.is_none() {
            let c = build_client(&self.settings)
                .map_err(|e| TransportError(format!("cannot create the http client: {e}")))?;
            self.client = Some(c);
        }
        self.client
            .as_ref()
            .ok_or_else(|| TransportError("no http client".into()))
    }

    /// Moves to the next host (after a 429/5xx from the current one).
    pub(crate) fn rotate(&mut self) {
        if !self.settings.hosts.is_empty() {
            self.current = (self.current + 1) % self.settings.hosts.len();
        }
    }

    /// `POST {host}/_bulk` with an NDJSON body (gzipped if configured). Tries each host at
    /// most once, in order from the current one, moving on only when a connection cannot be
    /// made; the host that answered becomes the current one. The body is sent as it is, not
    /// copied (a clone of `ndjson` is a reference count).
    pub(crate) async fn bulk(&mut self, ndjson: Bytes) -> Result<HttpResponse, TransportError> {
        self.last_wire_bytes = 0;
        let body = if self.settings.gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(ndjson.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&ndjson)
                .and_then(|_| enc.finish())
                .map(Bytes::from)
                .map_err(|e| TransportError(format!("gzip failed: {e}")))?
        } else {
            ndjson
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        if self.settings.gzip {
            headers.insert(
                reqwest::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        self.request(reqwest::Method::POST, "_bulk", headers, body)
            .await
    }

    /// `PUT {host}/_index_template/{name}` with a JSON body.
    pub(crate) async fn put_template(
        &mut self,
        name: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.request(
            reqwest::Method::PUT,
            &format!("_index_template/{name}"),
            headers,
            Bytes::from(body),
        )
        .await
    }

    async fn request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, TransportError> {
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        if let Some(a) = &self.settings.auth {
            headers.insert(reqwest::header::AUTHORIZATION, a.clone());
        }
        let client = self.ensure_client()?.clone();
        let n = self.settings.hosts.len();
        let mut last = TransportError("no host configured".into());
        for step in 0..n {
            let i = (self.current + step) % n;
            let url = self.settings.hosts[i]
                .join(path)
                .map_err(|e| TransportError(format!("cannot build the request url: {e}")))?;
            #[cfg(feature = "aws-sigv4")]
            let headers = {
                let mut h = headers.clone();
                if let Some(s) = &self.settings.sigv4 {
                    s.sign(
                        method.as_str(),
                        url.as_str(),
                        &mut h,
                        &body,
                        std::time::SystemTime::now(),
                    )
                    .map_err(TransportError)?;
                }
                h
            };
            let res = client
                .request(method.clone(), url)
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(resp) => {
                    self.last_wire_bytes += body.len() as u64;
                    self.current = i;
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = resp.bytes().await.map_err(|e| {
                        TransportError(format!("reading the response failed: {}", describe(&e)))
                    })?;
                    return Ok(HttpResponse {
                        status,
                        retry_after,
                        body,
                    });
                }
                Err(e) if e.is_connect() => {
                    last = TransportError(format!(
                        "cannot connect to {}: {}",
                        host_of(&self.settings.hosts[i]),
                        describe(&e)
                    ));
                }
                Err(e) => {
                    self.last_wire_bytes += body.len() as u64;
                    // The request may have reached the server: don't send it to another host
                    // now; the pipeline retries it (the `_id`s keep that idempotent).
                    self.current = i;
                    return Err(TransportError(format!(
                        "request to {} failed: {}",
                        host_of(&self.settings.hosts[i]),
                        describe(&e)
                    )));
                }
            }
        }
        Err(last)
    }
}

fn host_of(u: &Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
        None => u.host_str().unwrap_or("").to_string(),
    }
}

/// The error with its sources, without the URL (reqwest puts it first).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request error".to_string()
    };
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Creates the kept-alive client (rustls, HTTP/1.1, no proxy from the environment).
pub(crate) fn build_client(s: &TransportSettings) -> Result<Client, reqwest::Error> {
    let mut b = Client::builder()
        .use_rustls_tls()
        .connect_timeout(s.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_nodelay(true)
        .no_proxy()
        .user_agent(concat!("logship-ecs-metrics/", env!("CARGO_PKG_VERSION")));
    for c in &s.tls.ca {
        b = b.add_root_certificate(c.clone());
    }
    if s.tls.accept_invalid_certs {
        logship_core::diag::insecure_tls("ecs");
        b = b.danger_accept_invalid_certs(true);
    }
    b.build()
}

pub(crate) use logship_core::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_urls() {
        assert_eq!(
            parse_host("http://127.0.0.1:9200")
                .map(|u| u.to_string())
                .ok(),
            Some("http://127.0.0.1:9200/".into())
        );
        assert_eq!(
            parse_host("https://proxy/es")
                .map(|u| u.join("_bulk").map(|u| u.to_string()).ok())
                .ok()
                .flatten(),
            Some("https://proxy/es/_bulk".into())
        );
        assert!(parse_host("ftp://x").is_err());
        assert!(parse_host("localhost:9200").is_err());
        let e = parse_host("http://elastic:changeme@es:9200")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.contains("changeme"), "{e}");
        assert!(e.contains("with_basic_auth"), "{e}");
        assert!(e.contains("`http://***@es:9200`"), "the port stays: {e}");
    }

    #[test]
    fn auth_headers() {
        let h = |a: EcsAuth| {
            a.header()
                .ok()
                .flatten()
                .map(|v| v.to_str().unwrap_or("").to_string())
        };
        assert_eq!(h(EcsAuth::None), None);
        assert_eq!(
            h(EcsAuth::Basic {
                username: "elastic".into(),
                password: Secret::new("changeme")
            }),
            Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==".into())
        );
        assert_eq!(
            h(EcsAuth::ApiKey {
                id: "id".into(),
                key: Secret::new("secret")
            }),
            Some("ApiKey aWQ6c2VjcmV0".into())
        );
        assert_eq!(
            h(EcsAuth::EncodedApiKey(Secret::new("abc=="))),
            Some("ApiKey abc==".into())
        );
        assert_eq!(
            h(EcsAuth::Bearer(Secret::new("tok"))),
            Some("Bearer tok".into())
        );
        assert!(EcsAuth::Bearer(Secret::new("a\nb")).header().is_err());
        let dbg = format!(
            "{:?}",
            EcsAuth::Basic {
                username: "u".into(),
                password: Secret::new("changeme")
            }
        );
        assert!(!dbg.contains("changeme"), "{dbg}");
    }
}
