//! HTTPS end to end: a loopback TLS terminator (rustls, a self-signed certificate) in front
//! of the JESL receiver. Verification is on: the layer trusts the certificate only when given
//! it as a custom CA, in both the header and the handshake modes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_http::{JkoolAuth, JkoolHttpLayer, TlsOptions};
use logship_testkit::jkool::JkoolReceiver;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

/// Starts a TLS terminator forwarding each connection to `upstream`; returns its address
/// and the certificate's PEM.
fn tls_front(upstream: SocketAddr) -> (SocketAddr, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| {
        b.with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async move {
            let _ = listener.set_nonblocking(true);
            let listener =
                tokio::net::TcpListener::from_std(listener).unwrap_or_else(|e| panic!("{e}"));
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
    });
    (addr, ck.cert.pem())
}

fn send(url: String, tls: TlsOptions, auth: JkoolAuth) -> logship_core::Stats {
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(url)
        .with_auth(auth)
        .with_tls(tls)
        .with_pipeline(|p| {
            p.with_span_timings(false).with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("over https");
    }
    let _ = guard.flush(WAIT);
    guard.stats()
}

#[test]
fn https_with_a_custom_ca_in_every_auth_mode() {
    let jk = JkoolReceiver::builder()
        .with_token("tok")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let (front, cert) = tls_front(jk.addr());
    let url = format!("https://127.0.0.1:{}/JESL", front.port());
    let trust = || {
        TlsOptions::default()
            .with_ca_pem(cert.as_bytes())
            .with_only_custom_roots(true)
    };
    for auth in [
        JkoolAuth::TokenHeader,
        JkoolAuth::ApiKeyHeader,
        JkoolAuth::Handshake,
    ] {
        let s = send(url.clone(), trust(), auth);
        assert_eq!(s.delivered, 1, "{auth:?}: {s:?}");
    }
    assert_eq!(jk.event_count(), 3);
    assert_eq!(jk.counters().handshakes, 1);
}

#[test]
fn an_unknown_certificate_is_refused_unless_verification_is_turned_off() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (front, _cert) = tls_front(jk.addr());
    let url = format!("https://127.0.0.1:{}/JESL", front.port());
    for auth in [JkoolAuth::TokenHeader, JkoolAuth::Handshake] {
        let s = send(url.clone(), TlsOptions::default(), auth);
        assert_eq!(
            (s.delivered, s.undelivered_retries_exhausted),
            (0, 1),
            "{auth:?}: {s:?}"
        );
        let err = s.last_error.unwrap_or_default();
        assert!(
            err.contains("certificate") || err.contains("UnknownIssuer"),
            "{auth:?}: {err}"
        );
    }
    assert_eq!(jk.event_count(), 0);
    let s = send(
        url,
        TlsOptions::default().danger_accept_invalid_certs(true),
        JkoolAuth::TokenHeader,
    );
    assert_eq!(s.delivered, 1, "{s:?}");
}
