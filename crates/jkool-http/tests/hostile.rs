//! Hostile servers against the jKool HTTP layer, over real sockets on 127.0.0.1, in the
//! header and the access-request handshake modes: endless and oversized error bodies (cut at
//! the reply cap, retried, the process stays small), redirects to another host and to plain
//! HTTP (never followed: the token and the records stay home, the batch is rejected naming
//! the `Location`), and an untrusted certificate (counted apart, then trusted with its CA).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use logship_core::{RetryPolicy, Stats};
use logship_jkool_http::{JkoolAuth, JkoolHttpLayer, TlsOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "s3cret-token-value";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One HTTP/1.1 request as the server read it.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn is_access_request(&self) -> bool {
        self.body.starts_with(b"<access-request>")
    }
}

/// Reads one request (head and `Content-Length` body); `None` at end of stream.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = data[end..].to_vec();
    while body.len() < len {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    Some(Request { head, body })
}

/// What the server does with a request: answer and keep the connection, or take it over.
type Respond = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

enum Answer {
    /// Write these bytes and read the next request.
    Bytes(Vec<u8>),
    /// A 500 with a chunked body that never ends.
    EndlessChunked,
    /// A 503 announcing 4 GiB, then bytes for as long as anyone reads.
    HugeContentLength,
}

fn ok(status: u16) -> Answer {
    Answer::Bytes(format!("HTTP/1.1 {status} OK\r\ncontent-length: 0\r\n\r\n").into_bytes())
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, respond: Respond) {
    while let Some(req) = read_request(&mut s).await {
        match respond(&req) {
            Answer::Bytes(b) => {
                if s.write_all(&b).await.is_err() {
                    return;
                }
            }
            Answer::EndlessChunked => {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await;
                let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
                while s.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            Answer::HugeContentLength => {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4294967296\r\n\r\n",
                    )
                    .await;
                let block = vec![b'y'; 65536];
                while s.write_all(&block).await.is_ok() {}
                return;
            }
        }
    }
}

/// A plain-HTTP server on 127.0.0.1; returns its port and a count of accepted connections.
fn http_server(
    rt: &tokio::runtime::Runtime,
    respond: impl Fn(&Request) -> Answer + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    serve(rt, respond, |tcp| async move { Some(tcp) })
}

fn serve<S, F, Fut>(
    rt: &tokio::runtime::Runtime,
    respond: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    wrap: F,
) -> (u16, Arc<AtomicUsize>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<S>> + Send + 'static,
{
    let respond: Respond = Arc::new(respond);
    let l = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let wrap = Arc::new(wrap);
    rt.spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let respond = respond.clone();
            let wrap = wrap.clone();
            tokio::spawn(async move {
                if let Some(s) = wrap(tcp).await {
                    serve_connection(s, respond).await;
                }
            });
        }
    });
    (port, count)
}

/// Sends one event through a layer built as a user would, waits for its fate, returns the
/// stats.
fn send_one(url: String, auth: JkoolAuth, tls: TlsOptions) -> Stats {
    let (layer, guard) = JkoolHttpLayer::builder(TOKEN)
        .with_base_url(url)
        .with_auth(auth)
        .with_tls(tls)
        .with_pipeline(|p| {
            p.with_span_timings(false).with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_delay(Duration::from_millis(20))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(order_id = 42, "hostile");
    }
    let _ = guard.flush(WAIT);
    guard.stats()
}

use logship_testkit::peak_rss_mib;

const MODES: [JkoolAuth; 3] = [
    JkoolAuth::TokenHeader,
    JkoolAuth::ApiKeyHeader,
    JkoolAuth::Handshake,
];

#[test]
fn endless_and_oversized_error_bodies_are_cut_at_the_cap_and_retried() {
    let rt = runtime();
    let answers: [fn() -> Answer; 2] = [|| Answer::EndlessChunked, || Answer::HugeContentLength];
    for answer in answers {
        let (port, _) = http_server(&rt, move |req| {
            if req.is_access_request() {
                ok(200)
            } else {
                answer()
            }
        });
        // The access request itself answered by the hostile body, too.
        let (hs_port, _) = http_server(&rt, move |_| answer());
        for (auth, port) in MODES
            .into_iter()
            .map(|a| (a, port))
            .chain([(JkoolAuth::Handshake, hs_port)])
        {
            let url = format!("http://127.0.0.1:{port}/JESL");
            let s = send_one(url, auth, TlsOptions::new());
            assert_eq!(
                (s.delivered, s.undelivered_retries_exhausted),
                (0, 1),
                "{auth:?}: {s:?}"
            );
            assert!(s.retries >= 1, "{auth:?}: {s:?}");
            let err = s.last_error.unwrap_or_default();
            assert!(err.len() <= 1200, "{auth:?}: {} bytes", err.len());
            assert!(err.contains("byte cap"), "{auth:?}: {err}");
        }
    }
    let peak = peak_rss_mib();
    assert!(peak < 256, "peak RSS {peak} MiB");
}

#[test]
fn redirects_to_another_host_or_plain_http_are_rejected_and_never_followed() {
    let rt = runtime();
    let (target, reached) = http_server(&rt, |_| ok(202));
    let locations = [
        // Another host (name and port), plain http, credentials and a signature in the URL.
        format!("http://user:pw@localhost:{target}/JESL/event?sig=KEY"),
        // Plain http to the same address family, another port.
        format!("http://127.0.0.1:{target}/JESL/event"),
    ];
    for location in locations {
        for status in [302u16, 307] {
            let redirect = format!(
                "HTTP/1.1 {status} Moved\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
            )
            .into_bytes();
            let on_post = redirect.clone();
            // Data posts redirected (the access request, if any, accepted) …
            let (port, _) = http_server(&rt, move |req| {
                if req.is_access_request() {
                    ok(200)
                } else {
                    Answer::Bytes(on_post.clone())
                }
            });
            // … and the access request itself redirected.
            let (hs_port, _) = http_server(&rt, move |_| Answer::Bytes(redirect.clone()));
            for (auth, port) in MODES
                .into_iter()
                .map(|a| (a, port))
                .chain([(JkoolAuth::Handshake, hs_port)])
            {
                let s = send_one(
                    format!("http://127.0.0.1:{port}/JESL"),
                    auth,
                    TlsOptions::new(),
                );
                assert_eq!(
                    (s.delivered, s.undelivered_rejected, s.retries),
                    (0, 1, 0),
                    "{auth:?} {status} {location}: {s:?}"
                );
                let err = s.last_error.unwrap_or_default();
                assert!(err.contains(&format!("http {status}")), "{err}");
                assert!(err.contains(&format!(":{target}/JESL/event")), "{err}");
                assert!(
                    !err.contains(TOKEN) && !err.contains("pw") && !err.contains("KEY"),
                    "{err}"
                );
            }
        }
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect target was contacted"
    );
}

#[test]
fn an_untrusted_certificate_is_counted_then_trusted_with_its_ca() {
    let rt = runtime();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![cert.cert.der().clone()], key)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (port, _) = serve(
        &rt,
        |req| {
            if req.head.starts_with("post") {
                ok(202)
            } else {
                ok(400)
            }
        },
        move |tcp| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(tcp).await.ok() }
        },
    );
    let url = format!("https://localhost:{port}/JESL");
    for auth in MODES {
        let s = send_one(url.clone(), auth, TlsOptions::new());
        assert_eq!(
            (s.delivered, s.undelivered_retries_exhausted),
            (0, 1),
            "{auth:?}: {s:?}"
        );
        assert!(s.certificate_failures > 0, "{auth:?}: {s:?}");
        let err = s.last_error.unwrap_or_default();
        assert!(err.contains("unknown issuer"), "{auth:?}: {err}");

        let s = send_one(
            url.clone(),
            auth,
            TlsOptions::new().with_ca_pem(cert.cert.pem()),
        );
        assert_eq!(
            (s.delivered, s.certificate_failures),
            (1, 0),
            "{auth:?}: {s:?}"
        );
    }
}
