//! Several servers: the first one dies mid-stream and the stream continues on the second;
//! round-robin spreads batches.
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, addr, assert_clean, fast, receiver, unique};
use logship_fluent::FluentLayer;
use tracing_subscriber::prelude::*;

#[test]
fn first_server_dies_mid_stream() {
    let first = receiver().start().unwrap();
    let second = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&first))
        .with_server(addr(&second))
        .with_pipeline(fast)
        .build()
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..5_u64 {
        tracing::info!(i, "before");
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(first.event_count(), 5);
    assert_eq!(second.event_count(), 0);
    drop(first);
    for i in 5..10_u64 {
        tracing::info!(i, "after");
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered()),
        (10, 0),
        "{:?}",
        s.last_error
    );
    let ids: Vec<u64> = unique(&second)
        .iter()
        .map(|e| e.field("i").unwrap().as_u64().unwrap())
        .collect();
    assert_eq!(ids, (5..10).collect::<Vec<_>>());
    assert_clean(&second);
}

#[test]
fn round_robin_spreads_batches() {
    let a = receiver().start().unwrap();
    let b = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&a))
        .with_server(addr(&b))
        .with_round_robin(true)
        .with_pipeline(fast)
        .build()
        .unwrap();
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..4_u64 {
        tracing::info!(i, "rr");
        guard.flush(WAIT).unwrap();
    }
    assert_eq!(guard.stats().delivered, 4);
    assert_eq!((a.event_count(), b.event_count()), (2, 2));
}
