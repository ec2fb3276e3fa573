//! At-least-once delivery: withheld and garbled acks lead to resends with the same chunk ids;
//! nothing is lost, and the resends show up as duplicates at the receiver.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{WAIT, addr, assert_clean, fast, receiver, unique};
use logship_fluent::FluentLayer;
use logship_testkit::fluent::{Faults, Times};
use tracing_subscriber::prelude::*;

fn emit(layer: logship_fluent::FluentLayer, n: u64) {
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..n {
        tracing::info!(i, "event");
    }
}

#[test]
fn withheld_acks_then_recovery_lose_nothing() {
    let r = receiver()
        .with_faults(Faults::none().with_withhold_acks(Times::Next(2)))
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_ack_timeout(Duration::from_secs(1))
        .with_pipeline(fast)
        .build()
        .unwrap();
    emit(layer, 10);
    guard.flush(WAIT).unwrap();

    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries, s.requests),
        (10, 0, 2, 3)
    );
    assert!(s.last_error.unwrap().contains("no ack"));
    let rs = r.stats();
    assert_eq!(
        (rs.acks_withheld, rs.acks_sent, rs.duplicate_chunks),
        (2, 1, 2)
    );
    // Every event arrived, three times in all (twice as a resend), under one chunk id.
    let events = r.events();
    assert_eq!(events.len(), 30);
    let chunks: BTreeSet<_> = events.iter().map(|e| e.chunk.clone().unwrap()).collect();
    assert_eq!(chunks.len(), 1);
    let ids: BTreeSet<u64> = unique(&r)
        .iter()
        .map(|e| e.field("i").unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(ids, (0..10).collect());
    assert_eq!(events.iter().filter(|e| e.duplicate).count(), 20);
    // A withheld ack closes the connection (a late ack must not be taken for the next batch).
    assert_eq!(rs.connections, 3);
    assert_clean(&r);
}

#[test]
fn garbled_ack_is_a_mismatch_and_the_batch_is_resent() {
    let r = receiver()
        .with_faults(Faults::none().with_garble_acks(Times::Next(1)))
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_pipeline(fast)
        .build()
        .unwrap();
    emit(layer, 4);
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered(), s.retries), (4, 0, 1));
    assert!(s.last_error.unwrap().contains("ack mismatch"));
    let rs = r.stats();
    assert_eq!(
        (rs.acks_garbled, rs.acks_sent, rs.duplicate_chunks),
        (1, 1, 1)
    );
    assert_eq!(unique(&r).len(), 4);
    assert_clean(&r);
}

#[test]
fn acks_that_never_come_exhaust_the_retries() {
    let r = receiver()
        .with_faults(Faults::none().with_withhold_acks(Times::Always))
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_ack_timeout(Duration::from_millis(50))
        .with_pipeline(|p| {
            fast(p).with_retry(
                logship_core::RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(1))
                    .with_max_attempts(Some(3)),
            )
        })
        .build()
        .unwrap();
    emit(layer, 5);
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_retries_exhausted, s.requests),
        (0, 5, 3)
    );
    assert_eq!(r.stats().acks_withheld, 3);
}

#[test]
fn one_request_and_one_ack_per_tag_and_only_the_unacked_tag_is_resent() {
    let r = receiver()
        .with_faults(Faults::none().with_withhold_acks(Times::Next(1)))
        .start()
        .unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_ack_timeout(Duration::from_secs(1))
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..3_u64 {
            tracing::info!(target: "billing", i, "b");
            tracing::info!(target: "shipping", i, "s");
        }
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries, s.requests),
        (6, 0, 1, 2)
    );
    let rs = r.stats();
    // Attempt 1: two requests (billing's ack withheld, shipping's acked); attempt 2: billing only.
    assert_eq!(
        (
            rs.requests_packed_forward,
            rs.acks_withheld,
            rs.acks_sent,
            rs.duplicate_chunks
        ),
        (3, 1, 2, 1)
    );
    let tags: Vec<String> = r
        .events()
        .iter()
        .filter(|e| e.duplicate)
        .map(|e| e.tag.clone())
        .collect();
    assert_eq!(tags, ["app.billing"; 3]);
    assert_eq!(unique(&r).len(), 6);
    assert_clean(&r);
}
