//! HTTP only: posting a JSON body to `{base}/{endpoint}` with the configured authentication.
//!
//! * **Header modes** (`token`, `X-API-Key`) use one `reqwest` client: rustls, HTTP/1.1,
//!   kept-alive pooled connections (at most [`max_concurrent_requests`] idle ones).
//! * **Handshake mode** keeps its own HTTP/1.1 connections (hyper's low-level client): each
//!   new connection first sends the original's access request (`POST {base}`,
//!   `Content-Type: text/plain`, `<access-request><token>T</token></access-request>`), and only
//!   after a 2xx carries data posts, without any token header. A connection that closes is
//!   dropped from the pool, and its replacement performs a new handshake (the original reused
//!   a dropped connection without one).
//!
//! [`max_concurrent_requests`]: crate::JkoolHttpBuilder::with_max_concurrent_requests

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::Url;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::classify::{Verdict, classify_handshake};
use crate::error::AccessToken;

/// The answer to one post.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

/// One request body.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) gzip: bool,
}

pub(crate) enum Transport {
    Client(ClientTransport),
    Handshake(HandshakePool),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client(_) => "Transport::Client",
            Self::Handshake(_) => "Transport::Handshake",
        })
    }
}

impl Transport {
    /// Posts `body` to `{base}/{endpoint}`. `Err` is the verdict for a request that got no
    /// usable answer (connection failure: retry; refused handshake: rejected).
    pub(crate) async fn post(&self, endpoint: &str, body: Body) -> Result<Reply, Verdict> {
        match self {
            Self::Client(c) => c.post(endpoint, body).await,
            Self::Handshake(h) => h.post(endpoint, body).await,
        }
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");

fn retry(what: &str, e: &dyn std::fmt::Display) -> Verdict {
    Verdict::Retry {
        after: None,
        reason: format!("{what}: {e}"),
    }
}

/// `e` and its `source()` chain, `outer: inner: …` (reqwest and hyper put the useful part,
/// such as a certificate error, in the sources).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

/// `reqwest` with a token header.
pub(crate) struct ClientTransport {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) header: (&'static str, HeaderValue),
}

impl ClientTransport {
    async fn post(&self, endpoint: &str, body: Body) -> Result<Reply, Verdict> {
        let mut req = self
            .client
            .post(format!("{}/{endpoint}", self.base))
            .header(CONTENT_TYPE, JSON)
            .header(self.header.0, self.header.1.clone());
        if body.gzip {
            req = req.header(CONTENT_ENCODING, GZIP);
        }
        let resp = req
            .body(body.bytes)
            .send()
            .await
            .map_err(|e| retry("cannot post to jkool", &chain(&e.without_url())))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().await.unwrap_or_default();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Kept-alive HTTP/1.1 connections, each authorised by an access-request handshake.
pub(crate) struct HandshakePool {
    host: String,
    port: u16,
    host_header: HeaderValue,
    base_path: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    token: AccessToken,
    connect_timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl HandshakePool {
    /// `url` is the validated base URL; `tls` is used for `https`.
    pub(crate) fn new(
        url: &Url,
        tls: Arc<rustls::ClientConfig>,
        token: AccessToken,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let host = url.host_str().ok_or("the url has no host")?.to_string();
        let port = url.port_or_known_default().ok_or("the url has no port")?;
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let host_header = HeaderValue::from_str(&host_header)
            .map_err(|_| "the host cannot be sent in a Host header")?;
        let tls = if url.scheme() == "https" {
            let bare = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let name =
                ServerName::try_from(bare).map_err(|e| format!("invalid tls server name: {e}"))?;
            Some((tokio_rustls::TlsConnector::from(tls), name))
        } else {
            None
        };
        let path = url.path().trim_end_matches('/');
        Ok(Self {
            host,
            port,
            host_header,
            base_path: path.to_string(),
            tls,
            token,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put_idle(&self, s: SendRequest<Full<Bytes>>) {
        if !s.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(s);
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Verdict> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, self.port)))
            .await
            .map_err(|_| retry("cannot connect to jkool", &"connect timed out"))?
            .map_err(|e| retry("cannot connect to jkool", &e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((connector, name)) => Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| retry("tls handshake with jkool failed", &chain(&e)))?,
            ),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| retry("http handshake with jkool failed", &e))?;
        tokio::spawn(async move {
            // Ends when the connection closes or the sender is dropped.
            let _ = conn.await;
        });
        let body = format!(
            "<access-request><token>{}</token></access-request>",
            self.token.expose()
        );
        let path = if self.base_path.is_empty() {
            "/".to_string()
        } else {
            self.base_path.clone()
        };
        let req = self
            .request(
                &path,
                Bytes::from(body),
                HeaderValue::from_static("text/plain"),
                false,
            )
            .map_err(|e| retry("cannot build the access request", &e))?;
        let reply = Self::exchange(&mut sender, req).await?;
        if (200..300).contains(&reply.status) {
            Ok(sender)
        } else {
            Err(classify_handshake(reply.status, &reply.body))
        }
    }

    fn request(
        &self,
        path: &str,
        body: Bytes,
        content_type: HeaderValue,
        gzip: bool,
    ) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> {
        let mut b = hyper::Request::post(path)
            .header(hyper::header::HOST, self.host_header.clone())
            .header(CONTENT_TYPE, content_type)
            .header(hyper::header::USER_AGENT, crate::config::USER_AGENT);
        if gzip {
            b = b.header(CONTENT_ENCODING, GZIP);
        }
        b.body(Full::new(body))
    }

    async fn exchange(
        sender: &mut SendRequest<Full<Bytes>>,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<Reply, Verdict> {
        sender
            .ready()
            .await
            .map_err(|e| retry("jkool connection closed", &e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| retry("cannot post to jkool", &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    async fn post(&self, endpoint: &str, body: Body) -> Result<Reply, Verdict> {
        let mut sender = match self.take_idle() {
            Some(s) => s,
            None => self.connect().await?,
        };
        let req = self
            .request(
                &format!("{}/{endpoint}", self.base_path),
                body.bytes,
                JSON,
                body.gzip,
            )
            .map_err(|e| retry("cannot build the request", &e))?;
        let reply = Self::exchange(&mut sender, req).await?;
        self.put_idle(sender);
        Ok(reply)
    }
}
