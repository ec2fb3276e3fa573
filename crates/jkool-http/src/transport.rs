//! HTTP only: posting a JSON body to `{base}/{endpoint}` with the configured authentication.
//!
//! * **Header modes** (`token`, `X-API-Key`) use the shared transport, [`logship_http`]:
//!   rustls from [`logship_tls`], HTTP/1.1, kept-alive pooled connections (at most
//!   [`max_requests_in_flight`] idle ones), no redirects, reply bodies read through the cap.
//! * **Handshake mode** keeps its own HTTP/1.1 connections (hyper's low-level client), because
//!   each connection must first be authorised: it sends the original's access request
//!   (`POST {base}`, `Content-Type: text/plain`,
//!   `<access-request><token>T</token></access-request>`), and only after a 2xx carries data
//!   posts, without any token header. A connection that closes is dropped from the pool, and
//!   its replacement performs a new handshake (the original reused a dropped connection
//!   without one). Everything else is the shared transport's: the rustls configuration
//!   ([`HttpConfig::tls_config`]), the connect timeout, the reply cap (a [`Reply`] built with
//!   [`Reply::from_parts`]), no redirects (hyper never follows one), and the same
//!   [`SendError`]s, certificate failures included.
//!
//! [`max_requests_in_flight`]: crate::JkoolHttpBuilder::with_max_requests_in_flight

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use logship_core::Verdict;
use logship_http::reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use logship_http::{HttpClient, HttpConfig, Reply, SendError, Url};
use logship_jkool::DocumentKind;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::classify::classify_handshake;
use crate::error::AccessToken;

/// One request body.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) gzip: bool,
}

/// Why a post got no answer to classify.
#[derive(Debug)]
pub(crate) enum PostError {
    /// No (usable) answer: connection, certificate, timeout, reset.
    Send(SendError),
    /// Handshake mode: the access request was answered, but not with a 2xx; the verdict
    /// for the post's records.
    Refused(Verdict),
}

/// The JESL endpoint of each document kind, from a validated base URL: `{base}/event`,
/// `{base}/activity`, `{base}/snapshot`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints(pub(crate) Vec<(DocumentKind, Url)>);

impl Endpoints {
    pub(crate) fn new(base: &Url) -> Result<Self, String> {
        let base = base.as_str().trim_end_matches('/');
        DocumentKind::ALL
            .into_iter()
            .map(|kind| {
                Url::parse(&format!("{base}/{}", kind.endpoint()))
                    .map(|url| (kind, url))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
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
    /// Makes the HTTP client on first use (on the worker thread).
    ///
    /// # Errors
    /// [`SendError::Client`] when reqwest cannot create it.
    pub(crate) fn ready(&mut self) -> Result<(), SendError> {
        match self {
            Self::Client(c) => c.ready(),
            Self::Handshake(_) => Ok(()),
        }
    }

    /// Posts `body` to `url` (one of the [`Endpoints`]); the reply is read through the cap.
    pub(crate) async fn post(&self, url: &Url, body: Body) -> Result<Reply, PostError> {
        match self {
            Self::Client(c) => c.post(url, body).await.map_err(PostError::Send),
            Self::Handshake(h) => h.post(url, body).await,
        }
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");

/// The shared transport with a token header.
pub(crate) struct ClientTransport {
    config: HttpConfig,
    client: Option<HttpClient>,
    header: (&'static str, HeaderValue),
}

impl ClientTransport {
    pub(crate) fn new(config: HttpConfig, header: (&'static str, HeaderValue)) -> Self {
        Self {
            config,
            client: None,
            header,
        }
    }

    fn ready(&mut self) -> Result<(), SendError> {
        if self.client.is_none() {
            self.client = Some(self.config.client()?);
        }
        Ok(())
    }

    async fn post(&self, url: &Url, body: Body) -> Result<Reply, SendError> {
        let client = match &self.client {
            Some(c) => c,
            None => return Err(SendError::Client("the client was not created".into())),
        };
        let mut req = client
            .post(url.clone())
            .header(CONTENT_TYPE, JSON)
            .header(self.header.0, self.header.1.clone());
        if body.gzip {
            req = req.header(CONTENT_ENCODING, GZIP);
        }
        client.send(req.body(body.bytes)).await
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Kept-alive HTTP/1.1 connections, each authorised by an access-request handshake.
pub(crate) struct HandshakePool {
    host: String,
    port: u16,
    /// `host[:port]` for errors and the `Host` header.
    authority: String,
    host_header: HeaderValue,
    base_path: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    token: AccessToken,
    connect_timeout: Duration,
    cap: usize,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl HandshakePool {
    /// `url` is the validated base URL; `http` gives the TLS configuration (for `https`), the
    /// connect timeout and the reply cap.
    pub(crate) fn new(url: &Url, http: &HttpConfig, token: AccessToken) -> Result<Self, String> {
        let host = url.host_str().ok_or("the url has no host")?.to_string();
        let port = url.port_or_known_default().ok_or("the url has no port")?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let host_header = HeaderValue::from_str(&authority)
            .map_err(|_| "the host cannot be sent in a Host header")?;
        let tls = if url.scheme() == "https" {
            let bare = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let name =
                ServerName::try_from(bare).map_err(|e| format!("invalid tls server name: {e}"))?;
            Some((tokio_rustls::TlsConnector::from(http.tls_config()), name))
        } else {
            None
        };
        let path = url.path().trim_end_matches('/');
        Ok(Self {
            host,
            port,
            authority,
            host_header,
            base_path: path.to_string(),
            tls,
            token,
            connect_timeout: http.connect_timeout(),
            cap: http.max_reply_bytes(),
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

    fn connect_error(&self, detail: String) -> SendError {
        SendError::Connect {
            host: self.authority.clone(),
            detail: logship_core::excerpt::bounded(&detail, 1024),
        }
    }

    fn request_error(&self, e: &hyper::Error) -> SendError {
        SendError::Request {
            host: self.authority.clone(),
            detail: logship_http::error_chain(e),
        }
    }

    /// Opens a connection (TCP, TLS, HTTP/1.1) within the connect timeout.
    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, self.port)))
            .await
            .map_err(|_| {
                self.connect_error(format!(
                    "connect timed out after {:?}",
                    self.connect_timeout
                ))
            })?
            .map_err(|e| self.connect_error(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(
                    self.connect_timeout,
                    connector.connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| {
                    self.connect_error(format!(
                        "tls handshake timed out after {:?}",
                        self.connect_timeout
                    ))
                })?;
                match tls {
                    Ok(tls) => Box::new(tls),
                    Err(e) => {
                        return Err(match logship_tls::certificate_failure(&e) {
                            Some(failure) => SendError::Certificate {
                                host: self.authority.clone(),
                                failure,
                            },
                            None => self.connect_error(format!("tls handshake failed: {e}")),
                        });
                    }
                }
            }
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.connect_error(logship_http::error_chain(&e)))?;
        tokio::spawn(async move {
            // Ends when the connection closes or the sender is dropped.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// A new connection, authorised by an access request.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, PostError> {
        let mut sender = self.open().await.map_err(PostError::Send)?;
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
            .map_err(|e| PostError::Send(self.build_error(&e)))?;
        let reply = self
            .exchange(&mut sender, req)
            .await
            .map_err(PostError::Send)?;
        if reply.is_success() && reply.complete {
            Ok(sender)
        } else if reply.is_success() {
            // A 2xx whose body is over the cap: the connection cannot carry another request.
            Err(PostError::Send(SendError::Request {
                host: self.authority.clone(),
                detail: reply.cut_note().unwrap_or_default(),
            }))
        } else {
            Err(PostError::Refused(classify_handshake(&reply)))
        }
    }

    fn build_error(&self, e: &hyper::http::Error) -> SendError {
        SendError::Request {
            host: self.authority.clone(),
            detail: format!("cannot build the request: {e}"),
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

    /// Sends `req` and reads the reply through the cap. The connection may carry another
    /// request only when the whole body was read ([`Reply::complete`]).
    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<Reply, SendError> {
        sender.ready().await.map_err(|e| self.request_error(&e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.request_error(&e))?;
        read_capped(resp, self.cap)
            .await
            .map_err(|e| self.request_error(&e))
    }

    async fn post(&self, url: &Url, body: Body) -> Result<Reply, PostError> {
        let mut sender = match self.take_idle() {
            Some(s) => s,
            None => self.connect().await?,
        };
        let req = self
            .request(url.path(), body.bytes, JSON, body.gzip)
            .map_err(|e| PostError::Send(self.build_error(&e)))?;
        let reply = self
            .exchange(&mut sender, req)
            .await
            .map_err(PostError::Send)?;
        if reply.complete {
            self.put_idle(sender);
        }
        Ok(reply)
    }
}

/// Reads `resp`'s body through `cap` bytes, as [`logship_http::HttpClient::send`] does: a
/// `Content-Length` over the cap is not read at all; a longer or endless body stops at the
/// cap (the caller then drops the connection).
async fn read_capped(resp: hyper::Response<Incoming>, cap: usize) -> Result<Reply, hyper::Error> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status.as_u16();
    let announced = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > cap as u64) {
        return Ok(Reply::from_parts(
            status,
            &parts.headers,
            Bytes::new(),
            false,
            cap,
        ));
    }
    let mut buf = BytesMut::with_capacity(announced.map_or(0, |n| n as usize).min(64 * 1024));
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue; // trailers
        };
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            complete = false;
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Reply::from_parts(
        status,
        &parts.headers,
        buf.freeze(),
        complete,
        cap,
    ))
}
