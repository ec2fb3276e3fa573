//! The three ways of presenting the token, each against a receiver that accepts only that
//! way, and a wrong token: a clear, permanent "invalid access token", never a retry loop.

use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_http::{JkoolAuth, JkoolHttpLayer};
use logship_testkit::jkool::{JkoolAuthMethod, JkoolReceiver};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

fn send_two(jk: &JkoolReceiver, token: &str, auth: JkoolAuth) -> logship_core::Stats {
    let (layer, guard) = JkoolHttpLayer::builder(token)
        .with_base_url(jk.url())
        .with_auth(auth)
        .with_pipeline(|p| {
            p.with_retry(RetryPolicy::default().with_initial_delay(Duration::from_millis(10)))
                .with_span_timings(false)
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
        guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
        tracing::info!("two");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    guard.stats()
}

fn only(method: JkoolAuthMethod) -> JkoolReceiver {
    JkoolReceiver::builder()
        .with_token("good")
        .with_auth_methods(&[method])
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn token_header() {
    let jk = only(JkoolAuthMethod::TokenHeader);
    let stats = send_two(&jk, "good", JkoolAuth::TokenHeader);
    assert_eq!(stats.delivered, 2);
    assert_eq!(jk.counters().authorized(JkoolAuthMethod::TokenHeader), 2);
    assert!(
        jk.requests()
            .iter()
            .all(|r| r.header("token") == Some("good"))
    );
}

#[test]
fn api_key_header() {
    let jk = only(JkoolAuthMethod::ApiKeyHeader);
    let stats = send_two(&jk, "good", JkoolAuth::ApiKeyHeader);
    assert_eq!(stats.delivered, 2);
    assert_eq!(jk.counters().authorized(JkoolAuthMethod::ApiKeyHeader), 2);
}

#[test]
fn handshake_once_per_kept_alive_connection() {
    let jk = only(JkoolAuthMethod::Handshake);
    let stats = send_two(&jk, "good", JkoolAuth::Handshake);
    assert_eq!(stats.delivered, 2, "{stats:?}");
    let c = jk.counters();
    assert_eq!(c.authorized(JkoolAuthMethod::Handshake), 2);
    // Both posts rode the one authorised connection: one handshake, no token headers.
    assert_eq!((c.handshakes, c.connections), (1, 1), "{c:?}");
    let reqs = jk.requests();
    assert_eq!(reqs[0].header("content-type"), Some("text/plain"));
    assert_eq!(reqs[0].path, "/JESL");
    assert!(
        reqs.iter()
            .all(|r| r.header("token").is_none() && r.header("x-api-key").is_none())
    );
}

#[test]
fn every_connection_is_authorised_by_its_own_handshake() {
    let jk = only(JkoolAuthMethod::Handshake);
    let (layer, guard) = JkoolHttpLayer::builder("good")
        .with_base_url(jk.url())
        .with_auth(JkoolAuth::Handshake)
        .with_max_requests_in_flight(2)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..6 {
            tracing::info!(i, "e");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let c = jk.counters();
    assert_eq!(guard.stats().delivered, 6);
    // Every connection that carried data was authorised by its own handshake.
    assert_eq!(c.handshakes, c.connections, "{c:?}");
    assert!(c.connections <= 2, "{c:?}");
}

#[test]
fn wrong_token_is_rejected_at_once_in_every_mode() {
    for (auth, status) in [
        (JkoolAuth::TokenHeader, 401),
        (JkoolAuth::ApiKeyHeader, 403),
        (JkoolAuth::Handshake, 401),
    ] {
        let jk = JkoolReceiver::builder()
            .with_token("good")
            .with_auth_failure_status(status)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        let stats = send_two(&jk, "bad", auth);
        assert_eq!(stats.delivered, 0, "{auth:?}");
        assert_eq!(stats.undelivered_rejected, 2, "{auth:?} {stats:?}");
        assert_eq!(stats.retries, 0, "{auth:?}");
        let err = stats.last_error.unwrap_or_default();
        assert!(err.contains("invalid access token"), "{auth:?}: {err}");
        assert!(!err.contains("bad"), "the token leaked into {err}");
        assert_eq!(jk.counters().auth_failures, 2, "{auth:?}");
        assert_eq!(jk.doc_count(), 0);
    }
}
