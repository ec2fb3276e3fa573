//! Hostile servers against the shared transport, over real sockets on 127.0.0.1: endless and
//! oversized bodies, redirects to other hosts and to plain HTTP, untrusted certificates. The
//! process's peak RSS is asserted under a bound after the endless bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use logship_http::{HttpOptions, SendError, Url, classify};
use logship_tls::TlsOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves every connection with `respond` after reading the request head; counts connections.
async fn server<F, Fut>(respond: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                respond(s).await;
            });
        }
    });
    (port, count)
}

fn url(port: u16) -> Url {
    Url::parse(&format!("http://127.0.0.1:{port}/ingest")).expect("url")
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

#[tokio::test]
async fn endless_and_oversized_bodies_stop_at_the_cap() {
    // An endless chunked body, as fast as the socket takes it.
    let (endless, _) = server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
        while s.write_all(chunk.as_bytes()).await.is_ok() {}
    })
    .await;
    // A 4 GiB Content-Length, then bytes for as long as anyone reads.
    let (huge, _) = server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4294967296\r\n\r\n")
            .await;
        let block = vec![b'y'; 65536];
        while s.write_all(&block).await.is_ok() {}
    })
    .await;
    let client = HttpOptions::new("test")
        .build()
        .expect("config")
        .client()
        .expect("client");
    for _ in 0..3 {
        let r = client
            .send(client.post(url(endless)).body("{}"))
            .await
            .expect("a reply");
        assert_eq!(r.status, 500);
        assert!(!r.complete);
        assert_eq!(r.body.len(), logship_http::DEFAULT_MAX_REPLY_BYTES);
        let v = classify(&r, "post");
        assert!(v.reason().len() < 1200, "{}", v.reason().len());
        assert!(v.reason().contains("byte cap"), "{}", v.reason());

        let r = client
            .send(client.post(url(huge)).body("{}"))
            .await
            .expect("a reply");
        assert_eq!(r.status, 200);
        assert!(!r.complete);
        assert!(r.body.is_empty(), "an over-cap Content-Length is not read");
    }
    let peak = peak_rss_mib();
    assert!(peak < 256, "peak RSS {peak} MiB");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let (target, reached) = server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
    })
    .await;
    for status in [301u16, 302, 307, 308] {
        let location = format!("http://user:secret@127.0.0.1:{target}/steal?sig=KEY");
        let (redirect, _) = server(move |mut s| {
            let location = location.clone();
            async move {
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status} Moved\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        })
        .await;
        let client = HttpOptions::new("test")
            .build()
            .expect("config")
            .client()
            .expect("client");
        let r = client
            .send(
                client
                    .post(url(redirect))
                    .header("authorization", "Basic c2VjcmV0")
                    .body("records"),
            )
            .await
            .expect("a reply");
        assert_eq!(r.status, status);
        let v = classify(&r, "post");
        assert!(matches!(v, logship_core::Verdict::Rejected { .. }), "{v:?}");
        let text = v.reason();
        assert!(text.contains(&format!("127.0.0.1:{target}")), "{text}");
        assert!(!text.contains("secret") && !text.contains("KEY"), "{text}");
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect target was contacted"
    );
}

#[tokio::test]
async fn certificate_failures_say_which_check_failed() {
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    let mut buf = vec![0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    let u = Url::parse(&format!("https://localhost:{port}/")).expect("url");
    let send = |tls: TlsOptions| {
        let u = u.clone();
        async move {
            let client = HttpOptions::new("test")
                .with_tls(tls)
                .build()
                .expect("config")
                .client()
                .expect("client");
            client.send(client.post(u).body("x")).await
        }
    };
    let e = send(TlsOptions::new()).await;
    match &e {
        Err(err @ SendError::Certificate { .. }) => {
            assert!(err.is_connect());
            assert!(err.to_string().contains("unknown issuer"), "{err}");
        }
        other => panic!("expected a certificate failure, got {other:?}"),
    }
    let ok = send(TlsOptions::new().with_ca_pem(cert.cert.pem())).await;
    assert!(ok.as_ref().is_ok_and(|r| r.status == 200), "{ok:?}");
    let ok = send(
        TlsOptions::new()
            .with_ca_pem(cert.cert.pem())
            .with_only_custom_roots(true),
    )
    .await;
    assert!(ok.as_ref().is_ok_and(|r| r.status == 200), "{ok:?}");
    let ok = send(TlsOptions::new().danger_accept_invalid_certs(true)).await;
    assert!(ok.as_ref().is_ok_and(|r| r.status == 200), "{ok:?}");
}
