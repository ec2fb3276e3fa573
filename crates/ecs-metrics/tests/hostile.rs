//! Hostile servers against the layer, built as a user builds it and driven with `tracing`
//! timers, over real sockets on 127.0.0.1: an endless chunked error body and a 4 GiB
//! `Content-Length` (retried, not delivered, `last_error` bounded, peak RSS bounded),
//! redirects to another host and to plain HTTP (never followed; the batch is rejected naming
//! the `Location`, no credential in it), and an untrusted certificate (counted, "unknown
//! issuer"), then trusted through `TlsOptions::with_ca_pem`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use logship_core::{RetryPolicy, Stats};
use logship_ecs_metrics::{EcsBuilder, EcsLayer, TlsOptions};
use logship_testkit::fluent::TlsIdentity;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing_subscriber::prelude::*;

use common::{WAIT, fast};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Respond = Arc<dyn Fn() -> Vec<Reply> + Send + Sync>;

/// What a scripted server writes: bytes once, or the same bytes for as long as the peer reads.
enum Reply {
    Once(Vec<u8>),
    Forever(Vec<u8>),
}

/// A server on its own thread that reads each request (head and `Content-Length` body) and
/// answers with `respond()`; over TLS when `tls` is given. Returns its port and the number of
/// connections it accepted.
fn server(tls: Option<&TlsIdentity>, respond: Respond) -> (u16, Arc<AtomicUsize>) {
    let acceptor = tls.map(|id| {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            while let Ok((tcp, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let respond = respond.clone();
                tokio::spawn(async move {
                    let s: Box<dyn Io> = match acceptor {
                        Some(a) => match a.accept(tcp).await {
                            Ok(t) => Box::new(t),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    serve(s, respond).await;
                });
            }
        });
    });
    (port, count)
}

async fn serve(mut s: Box<dyn Io>, respond: Respond) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut data = Vec::new();
    loop {
        // The head, then the body it announces.
        let head_end = loop {
            if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while data.len() < head_end + len {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
        data.drain(..head_end + len);
        for r in respond() {
            match r {
                Reply::Once(b) => {
                    if s.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Reply::Forever(b) => while s.write_all(&b).await.is_ok() {},
            }
        }
        let _ = s.flush().await;
    }
}

/// One bulk item created: the answer to a one-document `_bulk` request.
fn bulk_ok() -> Vec<Reply> {
    let body =
        r#"{"took":1,"errors":false,"items":[{"create":{"_index":"x","_id":"1","status":201}}]}"#;
    vec![Reply::Once(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )]
}

/// Builds the layer with `f`, ships one timer through `tracing`, flushes, returns the stats.
fn ship(url: &str, f: impl FnOnce(EcsBuilder) -> EcsBuilder) -> Stats {
    let b = EcsLayer::builder(url)
        .with_host_fields(false)
        .with_credentials("elastic", "s3cret-pw");
    let (layer, guard) = f(b).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let _span = tracing::info_span!("hostile").entered();
    });
    let _ = guard.flush(WAIT);
    guard.stats()
}

use logship_testkit::peak_rss_mib;

fn three_attempts(p: logship_core::PipelineBuilder) -> logship_core::PipelineBuilder {
    fast(p).with_retry(
        RetryPolicy::default()
            .with_initial_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(10))
            .with_max_attempts(Some(3)),
    )
}

#[test]
fn endless_and_huge_bodies_are_cut_at_the_cap_and_retried() {
    let endless: Respond = Arc::new(|| {
        vec![
            Reply::Once(
                b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n"
                    .to_vec(),
            ),
            Reply::Forever(format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536)).into_bytes()),
        ]
    });
    let huge: Respond = Arc::new(|| {
        vec![
            Reply::Once(b"HTTP/1.1 200 OK\r\ncontent-length: 4294967296\r\n\r\n".to_vec()),
            Reply::Forever(vec![b'y'; 65536]),
        ]
    });
    for (name, respond) in [("endless", endless), ("huge", huge)] {
        let (port, _) = server(None, respond);
        let stats = ship(&format!("http://127.0.0.1:{port}"), |b| {
            b.with_pipeline(three_attempts)
        });
        assert_eq!(stats.delivered, 0, "{name}: {stats:?}");
        assert_eq!(stats.undelivered_retries_exhausted, 1, "{name}: {stats:?}");
        assert!(stats.retries >= 2, "{name}: {stats:?}");
        let err = stats.last_error.clone().unwrap_or_default();
        assert!(err.len() <= 1200, "{name}: {} bytes: {err}", err.len());
        assert!(err.contains("byte cap"), "{name}: {err}");
        assert!(!err.contains("s3cret"), "{name}: {err}");
    }
    let peak = peak_rss_mib();
    assert!(peak < 256, "peak RSS {peak} MiB");
}

#[test]
fn redirects_are_not_followed_and_the_batch_is_rejected() {
    let (target, reached) = server(None, Arc::new(bulk_ok));
    let id = TlsIdentity::self_signed().unwrap();
    for (tls, location) in [
        // Another host (and port), with credentials and a query to hide.
        (
            None,
            format!("http://admin:hunter2@localhost:{target}/_bulk?sig=KEY"),
        ),
        // From https down to plain http.
        (Some(&id), format!("http://127.0.0.1:{target}/_bulk")),
    ] {
        let loc = location.clone();
        let (port, _) = server(
            tls,
            Arc::new(move || {
                vec![Reply::Once(
                    format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {loc}\r\ncontent-length: 0\r\n\r\n"
                    )
                    .into_bytes(),
                )]
            }),
        );
        let scheme = if tls.is_some() { "https" } else { "http" };
        let stats = ship(&format!("{scheme}://localhost:{port}"), |b| {
            b.with_tls(TlsOptions::new().with_ca_pem(id.ca_pem()))
                .with_pipeline(three_attempts)
        });
        assert_eq!(stats.delivered, 0, "{location}: {stats:?}");
        assert_eq!(stats.undelivered_rejected, 1, "{location}: {stats:?}");
        let err = stats.last_error.clone().unwrap_or_default();
        assert!(err.contains("307"), "{err}");
        assert!(
            err.contains(&format!(":{target}")),
            "names the Location: {err}"
        );
        for secret in ["s3cret", "hunter2", "KEY"] {
            assert!(!err.contains(secret), "{secret} in {err}");
        }
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect target was contacted"
    );
}

#[test]
fn an_untrusted_certificate_is_counted_then_trusted_with_the_ca() {
    let id = TlsIdentity::self_signed().unwrap();
    let (port, _) = server(Some(&id), Arc::new(bulk_ok));
    let url = format!("https://localhost:{port}");
    let refused = ship(&url, |b| b.with_pipeline(three_attempts));
    assert_eq!(refused.delivered, 0, "{refused:?}");
    assert!(refused.certificate_failures > 0, "{refused:?}");
    let err = refused.last_error.clone().unwrap_or_default();
    assert!(err.to_lowercase().contains("unknown issuer"), "{err}");

    let trusted = ship(&url, |b| {
        b.with_tls(TlsOptions::new().with_ca_pem(id.ca_pem()))
            .with_pipeline(three_attempts)
    });
    assert_eq!(trusted.delivered, 1, "{trusted:?}");
    assert_eq!(trusted.certificate_failures, 0, "{trusted:?}");
}
