//! The shared-key handshake: success (with user authentication), wrong key, wrong password,
//! for both HELO styles. Nothing is sent on a connection that failed it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{WAIT, addr, assert_clean, fast, receiver};
use logship_fluent::{FluentBuilder, FluentLayer};
use logship_testkit::fluent::{FluentReceiver, HeloStyle};
use tracing_subscriber::prelude::*;

fn secured(style: HeloStyle) -> FluentReceiver {
    receiver()
        .with_shared_key("s3cret")
        .with_user("alice", "pw")
        .with_helo_style(style)
        .start()
        .unwrap()
}

fn send(b: FluentBuilder, n: u64) -> logship_core::Guard {
    let (layer, guard) = b
        .with_self_hostname("app-host")
        .with_pipeline(|p| {
            fast(p).with_retry(
                logship_core::RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(1))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n {
            tracing::info!(i, "secure");
        }
    }
    guard.flush(WAIT).unwrap();
    guard
}

#[test]
fn handshake_succeeds_for_both_styles() {
    for style in [HeloStyle::Fluentd, HeloStyle::FluentBit] {
        let r = secured(style);
        let g = send(
            FluentLayer::builder("app")
                .with_server(addr(&r))
                .with_shared_key("s3cret")
                .with_credentials("alice", "pw"),
            3,
        );
        assert_eq!(
            (g.stats().delivered, g.stats().undelivered()),
            (3, 0),
            "{style:?}"
        );
        assert!(r.wait_for_events(3, WAIT));
        let rs = r.stats();
        assert_eq!(
            (rs.handshakes_ok, rs.handshake_failures),
            (1, 0),
            "{style:?}"
        );
        assert_clean(&r);
    }
}

#[test]
fn wrong_shared_key_sends_nothing() {
    for (style, why) in [
        (HeloStyle::Fluentd, "shared_key mismatch"),
        (
            HeloStyle::FluentBit,
            "closed the connection instead of answering PING",
        ),
    ] {
        let r = secured(style);
        let g = send(
            FluentLayer::builder("app")
                .with_server(addr(&r))
                .with_shared_key("bad-key-7731")
                .with_credentials("alice", "pw"),
            2,
        );
        let s = g.stats();
        assert_eq!(
            (s.delivered, s.undelivered_retries_exhausted),
            (0, 2),
            "{style:?}"
        );
        let err = s.last_error.unwrap();
        assert!(
            err.contains("handshake") && err.contains(why),
            "{style:?}: {err}"
        );
        assert!(
            !err.contains("bad-key-7731"),
            "the key must not leak into errors: {err}"
        );
        let rs = r.stats();
        assert!(rs.handshake_failures >= 2, "{rs:?}");
        assert_eq!(rs.handshakes_ok, 0);
        assert_eq!(rs.events, 0);
        assert_eq!(rs.requests_total(), 0);
    }
}

#[test]
fn wrong_password_sends_nothing() {
    let r = secured(HeloStyle::Fluentd);
    let g = send(
        FluentLayer::builder("app")
            .with_server(addr(&r))
            .with_shared_key("s3cret")
            .with_credentials("alice", "nope"),
        2,
    );
    let s = g.stats();
    assert_eq!((s.delivered, s.undelivered_retries_exhausted), (0, 2));
    assert!(s.last_error.unwrap().contains("username/password mismatch"));
    assert_eq!(r.stats().events, 0);
    assert_eq!(r.stats().handshakes_ok, 0);
}

#[test]
fn a_server_without_the_handshake_is_not_trusted_blindly() {
    // The server sends no HELO: the client waits for it, times out, and sends nothing.
    let r = receiver().start().unwrap();
    let g = send(
        FluentLayer::builder("app")
            .with_server(addr(&r))
            .with_shared_key("s3cret")
            .with_connect_timeout(Duration::from_millis(500)),
        1,
    );
    assert_eq!(g.stats().delivered, 0);
    assert!(g.stats().last_error.unwrap().contains("awaiting HELO"));
    assert_eq!(r.stats().bytes_received, 0);
}

#[test]
fn a_server_that_requires_the_handshake_says_so() {
    // No shared key configured, the server has `<security>`: its HELO arrives where the client
    // waits for an ack, and the error says what to configure. Nothing is delivered.
    for style in [HeloStyle::Fluentd, HeloStyle::FluentBit] {
        let r = secured(style);
        let g = send(FluentLayer::builder("app").with_server(addr(&r)), 2);
        let s = g.stats();
        assert_eq!(
            (s.delivered, s.undelivered_retries_exhausted),
            (0, 2),
            "{style:?}"
        );
        let err = s.last_error.unwrap();
        assert!(
            err.contains("this server requires shared-key authentication"),
            "{style:?}: {err}"
        );
        assert!(err.contains("with_shared_key"), "{style:?}: {err}");
        assert_eq!(r.stats().events, 0, "{style:?}");
    }
}

#[test]
fn without_acks_a_server_that_requires_the_handshake_gets_nothing_after_its_helo() {
    // Without acks nothing answers a batch, so the layer watches for the server's HELO: on
    // an idle connection before writing, and on every new connection once a HELO was seen.
    // A batch written before the HELO reached the layer is lost (the server reads it as a bad
    // PING; counted as delivered: at most once); once the HELO is seen, nothing more is
    // written, and the error says what to configure.
    for style in [HeloStyle::Fluentd, HeloStyle::FluentBit] {
        let r = secured(style);
        let (layer, guard) = FluentLayer::builder("app")
            .with_server(addr(&r))
            .with_require_ack(false)
            .with_pipeline(|p| {
                fast(p).with_retry(
                    logship_core::RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(1))
                        .with_max_attempts(Some(2)),
                )
            })
            .build()
            .unwrap();
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(batch = 0_u64, "first");
        guard.flush(WAIT).unwrap();
        let first_delivered = guard.stats().delivered;
        if first_delivered == 1 {
            // Written before the HELO arrived: the server refuses it as a PING.
            assert!(
                r.wait_for_stats(WAIT, |s| s.handshake_failures >= 1),
                "{style:?}"
            );
        }
        let bytes = r.stats().bytes_received;
        for batch in 1..3_u64 {
            tracing::info!(batch, "later");
            guard.flush(WAIT).unwrap();
        }
        let s = guard.stats();
        assert_eq!(s.delivered, first_delivered, "{style:?}: {s:?}");
        assert_eq!(
            s.undelivered_retries_exhausted,
            3 - first_delivered,
            "{style:?}: {s:?}"
        );
        let err = s.last_error.unwrap();
        assert!(
            err.contains("this server requires shared-key authentication"),
            "{style:?}: {err}"
        );
        let rs = r.stats();
        assert_eq!(
            rs.bytes_received, bytes,
            "nothing written after the HELO: {style:?}"
        );
        assert_eq!(rs.events, 0, "{style:?}");
    }
}
