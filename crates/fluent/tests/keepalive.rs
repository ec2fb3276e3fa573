//! A server that denies keep-alive (Fluentd's `in_forward` with `<security>` and
//! `deny_keepalive true`: its HELO says `keepalive: false` and it closes each connection after
//! the first request and its ack; fluent/fluentd `lib/fluent/plugin/in_forward.rb`). The layer
//! sends one request per connection, handshaking again for each, so every record arrives in
//! every mode, with and without acks. Before this, requests written after the first on a
//! connection were dropped by the server: retried one at a time with acks (Message mode against
//! Fluentd delivered 650 of 1 020 and gave up on 370), lost unnoticed without them.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{WAIT, addr, assert_clean, fast, receiver, unique};
use logship_fluent::{FluentLayer, Mode};
use logship_testkit::fluent::{FluentReceiver, HeloStyle};
use tracing_subscriber::prelude::*;

/// Events per target; three targets give three tags, so Forward and PackedForward batches
/// hold three requests and Message batches one per event.
const PER_TARGET: u64 = 8;

fn denying() -> FluentReceiver {
    receiver()
        .with_shared_key("s3cret")
        .with_helo_style(HeloStyle::Fluentd)
        .with_deny_keepalive(true)
        .start()
        .unwrap()
}

fn run(mode: Mode, ack: bool) {
    let r = denying();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_shared_key("s3cret")
        .with_self_hostname("app-host")
        .with_mode(mode)
        .with_require_ack(ack)
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..PER_TARGET {
            tracing::info!(target: "orders", i, "placed");
            tracing::info!(target: "billing", i, "charged");
            tracing::info!(target: "shipping", i, "sent");
        }
    }
    guard.flush(WAIT).unwrap();
    let total = 3 * PER_TARGET;
    let case = format!("{mode:?}, acks {ack}");
    assert!(
        r.wait_for_events(total as usize, WAIT),
        "{case}: {} of {total} events arrived; receiver {:?}",
        r.event_count(),
        r.stats()
    );
    let requests = if mode == Mode::Message { total } else { 3 };
    // Every request had a connection of its own: nothing was written after one the server
    // closed for, and each connection did its handshake.
    assert!(
        r.wait_for_stats(WAIT, |s| s.keepalive_closes == requests),
        "{case}: {:?}",
        r.stats()
    );
    let rs = r.stats();
    assert_eq!(rs.dropped_after_keepalive_close, 0, "{case}: {rs:?}");
    assert_eq!(rs.handshakes_ok, requests, "{case}: {rs:?}");
    assert_eq!(rs.requests_total(), requests, "{case}: {rs:?}");
    assert_eq!(rs.duplicate_chunks, 0, "{case}: {rs:?}");
    let got: BTreeSet<(String, u64)> = unique(&r)
        .iter()
        .map(|e| {
            (
                e.tag.clone(),
                e.field("i").and_then(|v| v.as_u64()).unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len() as u64, total, "{case}");
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries),
        (total, 0, 0),
        "{case}: {s:?}"
    );
    assert_clean(&r);
}

#[test]
fn message_mode_with_acks_delivers_everything() {
    run(Mode::Message, true);
}

#[test]
fn message_mode_without_acks_delivers_everything() {
    run(Mode::Message, false);
}

#[test]
fn forward_mode_with_and_without_acks_delivers_everything() {
    run(Mode::Forward, true);
    run(Mode::Forward, false);
}

#[test]
fn packed_forward_with_and_without_acks_delivers_everything() {
    run(Mode::PackedForward, true);
    run(Mode::PackedForward, false);
}

#[test]
fn a_server_that_keeps_connections_still_gets_one_connection() {
    // The same server without `deny_keepalive`: all requests on the one connection.
    let r = receiver().with_shared_key("s3cret").start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_shared_key("s3cret")
        .with_self_hostname("app-host")
        .with_mode(Mode::Message)
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..PER_TARGET {
            tracing::info!(target: "orders", i, "placed");
        }
    }
    guard.flush(WAIT).unwrap();
    assert!(r.wait_for_events(PER_TARGET as usize, WAIT));
    let rs = r.stats();
    assert_eq!((rs.connections, rs.handshakes_ok), (1, 1), "{rs:?}");
    assert_eq!(rs.keepalive_closes, 0);
    assert_eq!(guard.stats().delivered, PER_TARGET);
}

/// A server that denies keep-alive without a handshake: no HELO says so.
fn denying_without_handshake() -> FluentReceiver {
    receiver().with_deny_keepalive(true).start().unwrap()
}

fn emit_three_targets(b: logship_fluent::FluentBuilder) -> logship_core::Guard {
    let (layer, guard) = b.with_pipeline(fast).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..PER_TARGET {
            tracing::info!(target: "orders", i, "placed");
            tracing::info!(target: "billing", i, "charged");
            tracing::info!(target: "shipping", i, "sent");
        }
    }
    guard.flush(WAIT).unwrap();
    guard
}

#[test]
fn without_a_handshake_acks_teach_the_layer_after_two_connections() {
    // Two connections in a row closed right after one ack: from then on one request per
    // connection. Two retries, then everything arrives.
    let r = denying_without_handshake();
    let g = emit_three_targets(
        FluentLayer::builder("app")
            .with_server(addr(&r))
            .with_mode(Mode::Message),
    );
    let total = 3 * PER_TARGET;
    let s = g.stats();
    assert_eq!((s.delivered, s.undelivered()), (total, 0), "{s:?}");
    assert_eq!(s.retries, 2, "{s:?}");
    assert!(r.wait_for_events(total as usize, WAIT));
    assert_eq!(unique(&r).len() as u64, total);
    assert_clean(&r);
}

#[test]
fn without_a_handshake_and_without_acks_the_loss_is_not_seen() {
    // The documented limit: nothing tells the layer, so it writes a batch's requests on one
    // connection and the server keeps only the first. Counted as delivered by the layer.
    let r = denying_without_handshake();
    let g = emit_three_targets(
        FluentLayer::builder("app")
            .with_server(addr(&r))
            .with_mode(Mode::Message)
            .with_require_ack(false),
    );
    let total = 3 * PER_TARGET;
    assert_eq!(g.stats().delivered, total);
    assert!(r.wait_for_stats(WAIT, |s| s.keepalive_closes >= 1));
    assert!(
        (r.event_count() as u64) < total,
        "the server kept {} of {total}",
        r.event_count()
    );
}
