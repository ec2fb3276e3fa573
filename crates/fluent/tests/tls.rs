//! TLS with a self-signed certificate generated in the test: trusted through a custom CA,
//! refused by default verification, accepted with the explicit opt-out.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{WAIT, assert_clean, fast, receiver};
use logship_fluent::{FluentLayer, Mode, TlsOptions};
use logship_testkit::fluent::TlsIdentity;
use tracing_subscriber::prelude::*;

fn emit(layer: FluentLayer, n: u64) {
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..n {
        tracing::info!(i, "over tls");
    }
}

#[test]
fn every_mode_over_tls_with_a_custom_ca() {
    let id = TlsIdentity::self_signed().unwrap();
    let r = receiver().with_tls(id.clone()).start().unwrap();
    let port = r.port();
    for (k, mode) in [
        Mode::Message,
        Mode::Forward,
        Mode::PackedForward,
        Mode::CompressedPackedForward,
    ]
    .into_iter()
    .enumerate()
    {
        // `localhost` is in the certificate's names; so is 127.0.0.1 (checked below).
        let server = if k % 2 == 0 {
            format!("tls://localhost:{port}")
        } else {
            format!("127.0.0.1:{port}")
        };
        let (layer, guard) = FluentLayer::builder("app")
            .with_server(server)
            .with_tls(TlsOptions::new().with_ca_pem(id.ca_pem()))
            .with_mode(mode)
            .with_pipeline(fast)
            .build()
            .unwrap();
        emit(layer, 2);
        guard.flush(WAIT).unwrap();
        let s = guard.stats();
        assert_eq!(
            (s.delivered, s.undelivered()),
            (2, 0),
            "{mode:?}: {:?}",
            s.last_error
        );
    }
    assert!(r.wait_for_events(8, WAIT));
    assert_eq!(r.stats().tls_failures, 0);
    assert_clean(&r);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let r = receiver()
        .with_tls(TlsIdentity::self_signed().unwrap())
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(format!("tls://127.0.0.1:{}", r.port()))
        .with_pipeline(|p| {
            fast(p).with_retry(
                logship_core::RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(1))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap();
    emit(layer, 3);
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_retries_exhausted), (0, 3));
    assert_eq!(
        s.certificate_failures, 2,
        "each attempt failed its certificate check"
    );
    let err = s.last_error.unwrap();
    assert!(err.contains("unknown issuer"), "{err}");
    assert_eq!(r.stats().events, 0);
}

#[test]
fn verification_can_be_turned_off_explicitly() {
    let r = receiver()
        .with_tls(TlsIdentity::self_signed().unwrap())
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(format!("127.0.0.1:{}", r.port()))
        .with_tls(TlsOptions::new().danger_accept_invalid_certs(true))
        .with_pipeline(fast)
        .build()
        .unwrap();
    emit(layer, 1);
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 1);
    assert!(r.wait_for_events(1, WAIT));
}
