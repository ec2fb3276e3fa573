//! Several chunks in flight: a batch is split into chunks (`with_chunk_bytes`) and up to
//! `with_max_chunks_in_flight` of them are written before their acks arrive. Counted at the
//! receiver: how many requests it had received before it wrote its first ack, which requests
//! came twice, and which connection carried them. No timing is asserted.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{WAIT, addr, assert_clean, fast, receiver, unique};
use logship_core::RetryPolicy;
use logship_fluent::FluentLayer;
use logship_testkit::fluent::{Faults, FluentReceiver, Times};
use tracing_subscriber::prelude::*;

/// `n` events of about 190 encoded bytes each, in one batch (the test flushes).
fn emit(layer: FluentLayer, n: u64) {
    let text = "y".repeat(100);
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..n {
        tracing::info!(target: "bulk", i, text = %text, "pipelined event");
    }
}

fn layer(r: &FluentReceiver, window: usize) -> logship_fluent::FluentBuilder {
    FluentLayer::builder("app")
        .with_server(addr(r))
        .with_chunk_bytes(16 * 1024)
        .with_max_chunks_in_flight(window)
        .with_pipeline(fast)
}

/// How many times each `i` arrived, and under how many chunk ids.
fn arrivals(r: &FluentReceiver) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for e in r.events() {
        *m.entry(e.field("i").unwrap().as_u64().unwrap())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn a_window_of_four_has_four_chunks_at_the_server_before_its_first_ack() {
    // The receiver acks nothing on a connection until it holds 4 requests: only a client
    // with at least 4 chunks in flight ever gets an ack.
    let r = receiver().with_first_ack_after(4).start().unwrap();
    let (layer, guard) = layer(&r, 4)
        .with_ack_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    emit(layer, 2000);
    guard.flush(WAIT).unwrap();

    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries),
        (2000, 0, 0),
        "{:?}",
        s.last_error
    );
    let rs = r.stats();
    assert!(rs.requests_packed_forward >= 20, "{rs:?}");
    assert_eq!(rs.connections, 1);
    assert_eq!(rs.max_requests_before_first_ack, 4, "{rs:?}");
    // Never more than the window: the client waits for acks before writing more.
    assert_eq!(rs.max_requests_awaiting_ack, 4, "{rs:?}");
    assert_eq!(rs.acks_sent, rs.requests_packed_forward);
    assert_eq!(rs.duplicate_chunks, 0);
    let a = arrivals(&r);
    assert_eq!(a.len(), 2000);
    assert!(a.values().all(|n| *n == 1), "each record exactly once");
    assert_clean(&r);
}

#[test]
fn one_chunk_at_a_time_never_gets_an_ack_that_needs_two_in_flight() {
    // What the layer did before: write a batch, wait for its ack, only then write the next.
    // Against a server that acks once it holds 2 requests, nothing is ever acknowledged.
    let r = receiver().with_first_ack_after(2).start().unwrap();
    let (layer, guard) = layer(&r, 1)
        .with_ack_timeout(Duration::from_millis(300))
        .with_pipeline(|p| {
            fast(p).with_retry(
                RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_delay(Duration::from_millis(20))
                    .with_max_attempts(Some(2)),
            )
        })
        .build()
        .unwrap();
    emit(layer, 2000);
    let _ = guard.flush(WAIT);

    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered()), (0, 2000), "{s:?}");
    let rs = r.stats();
    assert_eq!(rs.acks_sent, 0);
    assert_eq!(rs.max_requests_before_first_ack, 0);
    // At most one request per connection: the second chunk was never written.
    assert!(rs.requests_packed_forward >= 1, "{rs:?}");
    assert!(rs.requests_packed_forward <= rs.connections, "{rs:?}");
}

#[test]
fn a_connection_cut_mid_window_resends_only_the_unacknowledged_chunks() {
    // Every connection is cut after 40 KiB: the first two 16 KiB chunks on it are acked,
    // the third arrives cut short, the fourth not at all. Each attempt delivers two chunks
    // and the rest is sent again on a new connection, until all is through.
    let r = receiver()
        .with_faults(Faults::none().with_close_after_bytes(Some(40 * 1024)))
        .start()
        .unwrap();
    let (layer, guard) = layer(&r, 4)
        .with_ack_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    emit(layer, 1000);
    guard.flush(WAIT).unwrap();

    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered()), (1000, 0), "{s:?}");
    assert!(s.retries >= 2, "{s:?}");
    let rs = r.stats();
    assert!(rs.fault_closes >= 2 && rs.connections >= 3, "{rs:?}");
    // Only the unacknowledged chunks were sent again: a retry of the whole batch could never
    // get past the cut. A chunk comes twice only when the reset that follows the cut (the
    // receiver closes with our later chunks unread) destroyed acks it had written before we
    // read them: at most the two acknowledged on each cut connection.
    assert!(rs.duplicate_chunks <= 2 * rs.fault_closes, "{rs:?}");
    let a = arrivals(&r);
    assert_eq!(a.len(), 1000);
    assert!(a.values().all(|n| *n <= 2), "no record more than twice");
    let twice = a.values().filter(|n| **n == 2).count();
    let resent: usize = r.events().iter().filter(|e| e.duplicate).count();
    assert_eq!(twice, resent, "duplicates are whole resent chunks");
    // Two chunks acknowledged per connection (the last may carry fewer).
    let mut per_conn: BTreeMap<u64, std::collections::BTreeSet<String>> = BTreeMap::new();
    for e in r.events() {
        per_conn
            .entry(e.connection)
            .or_default()
            .insert(e.chunk.clone().unwrap());
    }
    assert!(per_conn.values().all(|c| c.len() <= 2), "{per_conn:?}");
    assert!(per_conn.values().filter(|c| c.len() == 2).count() >= 2);
}

#[test]
fn a_missing_ack_in_a_window_resends_that_chunk_alone_with_its_chunk_id() {
    // The first request's ack is withheld; the chunks after it are acknowledged (acks are
    // accepted in any order). Only the first chunk's records are sent again, under its id.
    let r = receiver()
        .with_faults(Faults::none().with_withhold_acks(Times::Next(1)))
        .start()
        .unwrap();
    let (layer, guard) = layer(&r, 4)
        .with_ack_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    emit(layer, 1000);
    guard.flush(WAIT).unwrap();

    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered(), s.retries),
        (1000, 0, 1),
        "{s:?}"
    );
    assert!(s.last_error.unwrap().contains("no ack"));
    let rs = r.stats();
    assert_eq!((rs.acks_withheld, rs.duplicate_chunks), (1, 1), "{rs:?}");
    assert_eq!(rs.acks_sent, rs.requests_packed_forward - 1);
    // The resent chunk is the withheld one: same id, same records, on the second connection.
    let events = r.events();
    let first_chunk = events[0].chunk.clone().unwrap();
    let resent: Vec<_> = events.iter().filter(|e| e.duplicate).collect();
    assert!(!resent.is_empty());
    assert!(
        resent
            .iter()
            .all(|e| e.chunk.as_deref() == Some(&*first_chunk))
    );
    assert!(resent.iter().all(|e| e.connection == 2));
    let first: Vec<_> = events
        .iter()
        .filter(|e| !e.duplicate && e.chunk.as_deref() == Some(&*first_chunk))
        .map(|e| e.field("i").unwrap().as_u64().unwrap())
        .collect();
    let again: Vec<_> = resent
        .iter()
        .map(|e| e.field("i").unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(first, again);
    assert_eq!(unique(&r).len(), 1000);
}

#[test]
fn every_mode_resends_only_what_a_cut_left_unacknowledged() {
    // Message mode writes many one-record requests per window slot; Forward and
    // CompressedPackedForward are cut into chunks as PackedForward is. Whatever the mode,
    // a cut connection loses no record and sends none more than once again.
    for mode in [
        logship_fluent::Mode::Message,
        logship_fluent::Mode::Forward,
        logship_fluent::Mode::CompressedPackedForward,
    ] {
        let r = receiver()
            .with_faults(Faults::none().with_close_after_bytes(Some(40 * 1024)))
            .start()
            .unwrap();
        let (layer, guard) = layer(&r, 4)
            .with_mode(mode)
            .with_ack_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        // Compressed chunks are small on the wire: more records, so that some are cut.
        let n = if mode == logship_fluent::Mode::CompressedPackedForward {
            6000
        } else {
            1000
        };
        emit(layer, n);
        guard.flush(WAIT).unwrap();
        let s = guard.stats();
        assert_eq!((s.delivered, s.undelivered()), (n, 0), "{mode:?}: {s:?}");
        let rs = r.stats();
        assert!(rs.fault_closes >= 1, "{mode:?}: {rs:?}");
        // As above: a chunk comes again only when the reset after a cut destroyed its ack.
        let a = arrivals(&r);
        assert_eq!(a.len() as u64, n, "{mode:?}");
        assert!(
            a.values().all(|k| *k <= 2),
            "{mode:?}: no record more than twice"
        );
        let resent = r.events().iter().filter(|e| e.duplicate).count();
        assert_eq!(
            a.values().filter(|k| **k == 2).count(),
            resent,
            "{mode:?}: duplicates are whole resent chunks"
        );
        assert_clean(&r);
    }
}
