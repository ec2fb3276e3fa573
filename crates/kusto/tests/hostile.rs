//! Hostile servers against the Kusto layer, over real sockets on 127.0.0.1, built with the
//! builder as a user would and driven with `tracing` events: endless and oversized reply
//! bodies, redirects to another host and to plain HTTP, untrusted certificates, and a plain
//! OneApi `@permanent: true` error (no `Accept-Encoding` is ever sent). The streaming
//! endpoint is the target; the layer sends no `Authorization` unless a test gives a token.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship_core::{BreakerConfig, RetryPolicy, Stats};
use logship_kusto::{IngestionMode, KustoBuilder, KustoLayer, TlsOptions};
use support::{Lost, builder, receiver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing_subscriber::prelude::*;

/// What the server answers.
#[derive(Clone)]
enum Script {
    /// These bytes, then the connection is closed.
    Fixed(String),
    /// This status with a chunked body that never ends.
    EndlessChunked(u16),
    /// `500` announcing a 4 GiB body, then bytes for as long as anyone reads.
    HugeContentLength,
}

/// A scripted HTTP/1.1 server (optionally TLS) on its own tokio runtime; counts connections
/// and keeps each request's head (lowercase header names).
struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(script: Script, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), heads.clone());
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let (script, heads, tls) = (script.clone(), h.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(s).await {
                                serve(s, &script, &heads).await;
                            }
                        }
                        None => serve(s, &script, &heads).await,
                    }
                });
            }
        });
        Self {
            port,
            accepted,
            heads,
            _rt: rt,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// Reads one request (head and `Content-Length` body), records the head, answers `script`.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    script: &Script,
    heads: &Mutex<Vec<String>>,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
    if let Ok(mut h) = heads.lock() {
        h.push(head);
    }
    match script {
        Script::Fixed(answer) => {
            let _ = s.write_all(answer.as_bytes()).await;
            let _ = s.shutdown().await;
        }
        Script::EndlessChunked(status) => {
            let _ = s
                .write_all(
                    format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n\r\n").as_bytes(),
                )
                .await;
            let block = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
            while s.write_all(block.as_bytes()).await.is_ok() {}
        }
        Script::HugeContentLength => {
            let _ = s
                .write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4294967296\r\n\r\n",
                )
                .await;
            let block = vec![b'y'; 65536];
            while s.write_all(&block).await.is_ok() {}
        }
    }
}

/// An answer with a body and `connection: close`.
fn answer(status: u16, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// A self-signed certificate for `localhost` and a TLS acceptor presenting it.
fn self_signed() -> (String, tokio_rustls::TlsAcceptor) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
    (
        cert.cert.pem(),
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    )
}

const TOKEN: &str = "sentinel-bearer-token";

/// Streaming ingestion to `cluster` with a fixed token, `attempts` attempts per batch, fast
/// retries, no breaker.
fn layer_for(cluster: &str, attempts: u32) -> KustoBuilder {
    KustoLayer::builder()
        .with_cluster(cluster)
        .with_database("logs")
        .with_table("Events")
        .with_token(TOKEN)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_pipeline(move |p| {
            p.with_linger(Duration::from_millis(20))
                .with_breaker(BreakerConfig::disabled())
                .with_retry(
                    RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(5))
                        .with_max_delay(Duration::from_millis(20))
                        .with_max_attempts(Some(attempts)),
                )
        })
}

/// Sends one event through `b`, flushes; returns the stats.
fn send_one(b: KustoBuilder) -> Stats {
    let (layer, guard) = b.build().expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(order = 42_u64, "one");
    }
    let _ = guard.flush(Duration::from_secs(30));
    guard.stats()
}

use logship_testkit::peak_rss_mib;

#[test]
fn endless_and_huge_error_bodies_are_cut_at_the_cap_and_retried() {
    for script in [Script::EndlessChunked(500), Script::HugeContentLength] {
        let server = Server::start(script, None);
        let s = send_one(layer_for(&format!("http://127.0.0.1:{}", server.port), 3));
        assert_eq!(s.delivered, 0);
        assert_eq!(s.retries, 2, "{s:?}");
        assert_eq!(s.undelivered_retries_exhausted, 1, "{s:?}");
        assert_eq!(server.accepted(), 3, "one request per attempt");
        let e = s.last_error.unwrap_or_default();
        assert!(e.len() <= 1200, "last_error is {} bytes: {e}", e.len());
        assert!(e.contains("streaming ingestion answered 500"), "{e}");
        assert!(e.contains("byte cap"), "{e}");
        assert!(!e.contains(TOKEN), "{e}");
    }
    let peak = peak_rss_mib();
    assert!(peak < 256, "peak RSS {peak} MiB");
}

#[test]
fn a_redirect_to_another_host_is_not_followed() {
    let target = Server::start(Script::Fixed(answer(200, "", "")), None);
    // Another host name for the same machine: `localhost` instead of `127.0.0.1`.
    let location = format!(
        "http://user:pw-in-location@localhost:{}/v1/rest/ingest/logs/Events?sig=SAS-SECRET",
        target.port
    );
    let redirect = Server::start(
        Script::Fixed(answer(307, &format!("location: {location}\r\n"), "")),
        None,
    );
    let lost = Lost::default();
    let s = send_one(lost.install(layer_for(&format!("http://127.0.0.1:{}", redirect.port), 3)));
    assert_eq!(target.accepted(), 0, "the redirect was followed");
    assert_eq!((s.delivered, s.undelivered_rejected, s.retries), (0, 1, 0));
    let l = lost.get();
    assert_eq!(l.len(), 1);
    let reason = l[0].1.clone().unwrap_or_default();
    assert!(reason.contains("http 307"), "{reason}");
    assert!(
        reason.contains(&format!("localhost:{}", target.port)),
        "{reason}"
    );
    for secret in [TOKEN, "pw-in-location", "SAS-SECRET"] {
        assert!(!reason.contains(secret), "{secret} in {reason}");
    }
    assert_eq!(s.last_error.as_deref(), Some(reason.as_str()));
}

#[test]
fn a_redirect_from_https_to_plain_http_is_not_followed() {
    let target = Server::start(Script::Fixed(answer(200, "", "")), None);
    let location = format!(
        "http://127.0.0.1:{}/v1/rest/ingest/logs/Events?sig=SAS-SECRET",
        target.port
    );
    let (pem, acceptor) = self_signed();
    let redirect = Server::start(
        Script::Fixed(answer(307, &format!("location: {location}\r\n"), "")),
        Some(acceptor),
    );
    let lost = Lost::default();
    let s = send_one(
        lost.install(
            layer_for(&format!("https://localhost:{}", redirect.port), 3)
                .with_tls(TlsOptions::new().with_ca_pem(pem)),
        ),
    );
    assert_eq!(redirect.accepted(), 1);
    assert_eq!(target.accepted(), 0, "the redirect was followed");
    assert_eq!((s.delivered, s.undelivered_rejected), (0, 1));
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("http://127.0.0.1:{}", target.port)),
        "{reason}"
    );
    assert!(
        !reason.contains(TOKEN) && !reason.contains("SAS-SECRET"),
        "{reason}"
    );
}

#[test]
fn an_untrusted_certificate_is_counted_then_trusted_with_a_ca() {
    let (pem, acceptor) = self_signed();
    let server = Server::start(Script::Fixed(answer(200, "", "")), Some(acceptor));
    let cluster = format!("https://localhost:{}", server.port);

    let s = send_one(layer_for(&cluster, 2));
    assert_eq!(s.delivered, 0);
    assert_eq!(s.certificate_failures, 2, "one per attempt: {s:?}");
    assert_eq!(s.undelivered_retries_exhausted, 1);
    let e = s.last_error.unwrap_or_default();
    assert!(e.contains("unknown issuer"), "{e}");
    assert!(e.starts_with("streaming ingestion: "), "{e}");
    assert!(server.heads().is_empty(), "no request passed the handshake");

    let s = send_one(layer_for(&cluster, 2).with_tls(TlsOptions::new().with_ca_pem(pem.clone())));
    assert_eq!((s.delivered, s.certificate_failures), (1, 0), "{s:?}");
    assert_eq!(server.heads().len(), 1);

    // Trusting only that CA (what the crate's former `with_ca_pem` did) works as well.
    let only = TlsOptions::new()
        .with_ca_pem(pem)
        .with_only_custom_roots(true);
    let s = send_one(layer_for(&cluster, 2).with_tls(only));
    assert_eq!((s.delivered, s.certificate_failures), (1, 0), "{s:?}");

    // And verification can be turned off, explicitly.
    let s = send_one(
        layer_for(&cluster, 2).with_tls(TlsOptions::new().danger_accept_invalid_certs(true)),
    );
    assert_eq!((s.delivered, s.certificate_failures), (1, 0), "{s:?}");
    assert_eq!(server.heads().len(), 3);
}

#[test]
fn a_plain_permanent_oneapi_error_is_rejected_and_no_accept_encoding_is_sent() {
    let body = serde_json::json!({"error": {
        "code": "BadRequest_EntityNotFound",
        "message": "Request is invalid and cannot be executed.",
        "@message": "table 'Events' does not exist",
        "@permanent": true,
    }})
    .to_string();
    let server = Server::start(
        Script::Fixed(answer(500, "content-type: application/json\r\n", &body)),
        None,
    );
    let lost = Lost::default();
    let s = send_one(lost.install(layer_for(&format!("http://127.0.0.1:{}", server.port), 3)));
    assert_eq!((s.delivered, s.undelivered_rejected, s.retries), (0, 1, 0));
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert_eq!(
        reason,
        "streaming ingestion answered 500 BadRequest_EntityNotFound: table 'Events' does not exist"
    );
    let heads = server.heads();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with("post /v1/rest/ingest/logs/events?"),
        "{}",
        heads[0]
    );
    assert!(
        heads[0].contains("\r\ncontent-encoding: gzip\r\n"),
        "{}",
        heads[0]
    );
    assert!(!heads[0].contains("accept-encoding"), "{}", heads[0]);
}

#[test]
fn an_endless_token_answer_is_cut_at_the_cap_and_retried() {
    let tokens = Server::start(Script::EndlessChunked(200), None);
    let r = receiver();
    let s = send_one(
        builder(&r)
            .with_login_endpoint(format!("http://127.0.0.1:{}", tokens.port))
            .with_ingestion_mode(IngestionMode::Streaming)
            .with_pipeline(|p| {
                p.with_breaker(BreakerConfig::disabled()).with_retry(
                    RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(5))
                        .with_max_attempts(Some(2)),
                )
            }),
    );
    assert_eq!((s.delivered, s.undelivered_retries_exhausted), (0, 1));
    assert_eq!(tokens.accepted(), 2, "one token request per attempt");
    let e = s.last_error.unwrap_or_default();
    assert!(
        e.contains("the AAD token endpoint: the reply body was larger than the 1048576 byte cap"),
        "{e}"
    );
    assert!(
        !e.contains(logship_testkit::kusto::DEFAULT_CLIENT_SECRET),
        "{e}"
    );
    assert_eq!(r.row_count(support::TABLE), 0);
    let peak = peak_rss_mib();
    assert!(peak < 256, "peak RSS {peak} MiB");
}
