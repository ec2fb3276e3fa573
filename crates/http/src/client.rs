//! [`HttpOptions`] → [`HttpConfig`] (at `build()`) → [`HttpClient`] (on the worker thread).

use std::sync::Arc;
use std::time::Duration;

use logship_tls::TlsOptions;
use reqwest::{Method, RequestBuilder, Url};

use crate::error::{HttpError, SendError};
use crate::reply::{Reply, read_capped};

/// Default cap on a reply body: 1 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 1 << 20;
const MIN_REPLY_CAP: usize = 1024;
const MAX_REPLY_CAP: usize = 1 << 30;
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The HTTP settings a backend's builder collects. Checked by [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct HttpOptions {
    backend: &'static str,
    tls: TlsOptions,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    max_reply_bytes: usize,
    user_agent: Option<String>,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl HttpOptions {
    /// Defaults for `backend` (its name in diagnostics and the `User-Agent`): OS trust store,
    /// 10 s connect timeout, no request timeout of its own (the pipeline's send timeout bounds
    /// every send), 1 MiB reply cap, 50 s idle connections kept (under the common 60 s server
    /// keep-alive), 8 idle connections per host.
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: None,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            user_agent: None,
            pool_idle_timeout: Duration::from_secs(50),
            pool_max_idle_per_host: 8,
        }
    }

    /// TLS settings for `https` URLs.
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// The TLS settings.
    pub fn tls(&self) -> &TlsOptions {
        &self.tls
    }

    /// Connect timeout (TCP and TLS handshake), 1 ms to 10 min.
    pub fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// A timeout for each whole request (up to 10 min); `None` (default) leaves it to the
    /// pipeline's send timeout.
    pub fn with_request_timeout(mut self, d: Option<Duration>) -> Self {
        self.request_timeout = d;
        self
    }

    /// Cap on each reply body, in bytes (1 KiB to 1 GiB; default 1 MiB). See [`Reply`].
    pub fn with_max_reply_bytes(mut self, n: usize) -> Self {
        self.max_reply_bytes = n;
        self
    }

    /// The `User-Agent` header (default `logship-<backend>/<version>`).
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Idle connections kept per host (default 8).
    pub fn with_pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Checks the settings and builds the TLS configuration (reading PEM files). Call it at the
    /// layer's `build()`.
    ///
    /// # Errors
    /// [`HttpError::Tls`] for unusable TLS settings; [`HttpError::Setting`] for a timeout or
    /// cap out of range, or a TLS server-name override (HTTP backends verify the URL's host).
    pub fn build(self) -> Result<HttpConfig, HttpError> {
        let range = |setting, d: Duration| {
            if d.is_zero() || d > MAX_TIMEOUT {
                Err(HttpError::Setting {
                    setting,
                    reason: format!("{d:?} is out of range: use 1 ms to 10 min"),
                })
            } else {
                Ok(())
            }
        };
        range("with_connect_timeout", self.connect_timeout)?;
        if let Some(d) = self.request_timeout {
            range("with_request_timeout", d)?;
        }
        if !(MIN_REPLY_CAP..=MAX_REPLY_CAP).contains(&self.max_reply_bytes) {
            return Err(HttpError::Setting {
                setting: "with_max_reply_bytes",
                reason: format!(
                    "{} is out of range: use {MIN_REPLY_CAP} to {MAX_REPLY_CAP} bytes",
                    self.max_reply_bytes
                ),
            });
        }
        if self.tls.server_name().is_some() {
            return Err(HttpError::Setting {
                setting: "TlsOptions::with_server_name",
                reason: "HTTP backends verify the host of their URL: put the certificate's name in the URL instead".into(),
            });
        }
        let tls = self
            .tls
            .clone()
            .with_alpn(&[b"http/1.1"])
            .client_config(self.backend)?;
        Ok(HttpConfig {
            tls: Arc::new(tls),
            options: self,
        })
    }
}

/// Checked HTTP settings with their TLS configuration; cheap to clone. Make the
/// [`HttpClient`] from it on the worker thread ([`client`](Self::client)).
#[derive(Clone, Debug)]
pub struct HttpConfig {
    options: HttpOptions,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpConfig {
    /// The reply cap in bytes.
    pub fn max_reply_bytes(&self) -> usize {
        self.options.max_reply_bytes
    }

    /// The rustls configuration (for a backend's own connections, such as jKool's
    /// access-request handshake mode).
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.options.connect_timeout
    }

    /// Creates the client: kept-alive HTTP/1.1 connections over rustls, no redirects, no proxy
    /// from the environment, no `Accept-Encoding`.
    ///
    /// # Errors
    /// [`SendError::Client`] when reqwest cannot create it (it reports a TLS backend problem).
    pub fn client(&self) -> Result<HttpClient, SendError> {
        let o = &self.options;
        let ua = o
            .user_agent
            .clone()
            .unwrap_or_else(|| format!("logship-{}/{}", o.backend, env!("CARGO_PKG_VERSION")));
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .no_proxy()
            .connect_timeout(o.connect_timeout)
            .pool_idle_timeout(o.pool_idle_timeout)
            .pool_max_idle_per_host(o.pool_max_idle_per_host)
            .tcp_nodelay(true)
            .user_agent(ua);
        if let Some(t) = o.request_timeout {
            b = b.timeout(t);
        }
        let client = b
            .build()
            .map_err(|e| SendError::Client(error_chain(&e.without_url())))?;
        Ok(HttpClient {
            client,
            cap: o.max_reply_bytes,
        })
    }
}

/// The HTTP client of one backend's worker; cheap to clone (connections are shared).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    cap: usize,
}

impl HttpClient {
    /// A request builder for `method` and `url` (add headers and the body, then
    /// [`send`](Self::send) it).
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// `POST url`.
    pub fn post(&self, url: Url) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// `GET url`.
    pub fn get(&self, url: Url) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Sends `req` and reads the reply through the cap.
    ///
    /// # Errors
    /// A [`SendError`] when there is no answer (connection, certificate, timeout, reset);
    /// any status, 3xx included, is an `Ok` [`Reply`].
    pub async fn send(&self, req: RequestBuilder) -> Result<Reply, SendError> {
        let (client, req) = req.build_split();
        let req = req.map_err(|e| SendError::Request {
            host: String::new(),
            detail: error_chain(&e.without_url()),
        })?;
        let host = host_of(req.url());
        let resp = client
            .execute(req)
            .await
            .map_err(|e| classify_error(e, &host))?;
        read_capped(resp, self.cap)
            .await
            .map_err(|e| classify_error(e, &host))
    }
}

/// `host:port` of `url` (the port only when explicit), for error texts.
pub(crate) fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn classify_error(e: reqwest::Error, host: &str) -> SendError {
    let e = e.without_url();
    let host = host.to_string();
    if let Some(failure) = logship_tls::certificate_failure(&e) {
        return SendError::Certificate { host, failure };
    }
    if e.is_timeout() {
        return SendError::Timeout { host };
    }
    let detail = error_chain(&e);
    if e.is_connect() {
        SendError::Connect { host, detail }
    } else {
        SendError::Request { host, detail }
    }
}

/// `e` and its `source()` chain as one line, `outer: inner: …`, without repeats, at most 1 KiB
/// (reqwest, hyper and rustls put the useful part, such as a certificate error, in the
/// sources). For transports of a backend's own (jKool's handshake connections).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        depth += 1;
        if depth > 16 {
            break;
        }
        cur = inner.source();
    }
    logship_core::excerpt::bounded(&s, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let e = |o: HttpOptions| o.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e(HttpOptions::new("t").with_max_reply_bytes(10)).contains("with_max_reply_bytes"));
        assert!(
            e(HttpOptions::new("t").with_connect_timeout(Duration::ZERO))
                .contains("with_connect_timeout")
        );
        assert!(
            e(HttpOptions::new("t").with_tls(TlsOptions::new().with_server_name("x")))
                .contains("with_server_name")
        );
        assert!(
            e(HttpOptions::new("t").with_tls(TlsOptions::new().with_ca_pem("junk")))
                .contains("with_ca_pem")
        );
        let ok = HttpOptions::new("t").build();
        assert!(ok.as_ref().is_ok_and(|c| c.client().is_ok()), "{ok:?}");
    }
}
