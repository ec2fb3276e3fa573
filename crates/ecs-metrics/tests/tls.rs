//! TLS: certificates are verified by default, a custom CA makes a private certificate
//! trusted, and verification can be switched off explicitly.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use logship_core::RetryPolicy;
use logship_ecs_metrics::{EcsBuilder, EcsLayer, TlsOptions};
use logship_testkit::es::EsReceiver;
use logship_testkit::fluent::TlsIdentity;

use common::{WAIT, fast};

/// A TLS-terminating proxy on 127.0.0.1 in front of `es`, serving `id`; returns its https URL.
fn tls_front(es: &EsReceiver, id: &TlsIdentity) -> String {
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let upstream = es.addr();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            // Bounded: a test makes a handful of connections.
            for _ in 0..32 {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
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
    format!("https://localhost:{port}")
}

fn ship(url: &str, f: impl FnOnce(EcsBuilder) -> EcsBuilder) -> logship_core::Stats {
    let b = EcsLayer::builder(url)
        .with_host_fields(false)
        .with_pipeline(|p| fast(p).with_retry(RetryPolicy::never()));
    let (layer, guard) = f(b).build().unwrap();
    layer.log_time_metric("tls", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    guard.stats()
}

#[test]
fn verification_custom_ca_and_opt_out() {
    let es = EsReceiver::start().unwrap();
    let id = TlsIdentity::self_signed().unwrap();
    let url = tls_front(&es, &id);

    // Verified by default: a self-signed certificate is refused.
    let refused = ship(&url, |b| b);
    assert_eq!(refused.delivered, 0, "{refused:?}");
    assert_eq!(refused.undelivered_retries_exhausted, 1, "{refused:?}");
    assert!(
        refused
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("certificate"),
        "{refused:?}"
    );
    assert!(refused.certificate_failures > 0, "{refused:?}");
    assert_eq!(es.doc_count(), 0);

    // Trusted through the custom CA.
    let trusted = ship(&url, |b| {
        b.with_tls(TlsOptions::new().with_ca_pem(id.ca_pem()))
    });
    assert_eq!(trusted.delivered, 1, "{trusted:?}");

    // Explicit opt-out.
    let unverified = ship(&url, |b| {
        b.with_tls(TlsOptions::new().danger_accept_invalid_certs(true))
    });
    assert_eq!(unverified.delivered, 1, "{unverified:?}");
    assert_eq!(es.doc_count(), 2);
}
