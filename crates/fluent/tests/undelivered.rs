//! Undelivered records reach the callback with the raw msgpack request bytes, as the
//! original's `buffer_overflow_handler` received them; oversized records are refused alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{WAIT, addr, fast, receiver};
use logship_core::{Cause, RetryPolicy};
use logship_fluent::FluentLayer;
use logship_testkit::fluent::Faults;
use tracing_subscriber::prelude::*;

/// What the callback saw: cause, record count, payload.
type Seen = Arc<Mutex<Vec<(Cause, usize, Option<Vec<u8>>)>>>;

#[test]
fn callback_gets_records_and_raw_msgpack() {
    let r = receiver()
        .with_faults(Faults::none().with_refuse_connections(true))
        .start()
        .unwrap();
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_pipeline(move |p| {
            fast(p)
                .with_retry(
                    RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(1))
                        .with_max_attempts(Some(2)),
                )
                .with_undelivered_callback(move |u| {
                    sink.lock()
                        .unwrap()
                        .push((u.cause, u.records.len(), u.payload.clone()));
                })
        })
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(n = 1_u64, "lost");
        tracing::info!(n = 2_u64, "lost too");
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_retries_exhausted, s.requests),
        (0, 2, 2)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (cause, n, payload) = &seen[0];
    assert_eq!((*cause, *n), (Cause::RetriesExhausted, 2));
    // The payload is the PackedForward request: [tag, bin(entries), {size, chunk}].
    let payload = payload.as_ref().unwrap();
    let req = rmpv::decode::read_value(&mut &payload[..]).unwrap();
    assert_eq!(req[0].as_str(), Some("app.undelivered"));
    assert_eq!(req[2]["size"].as_u64(), Some(2));
    let rmpv::Value::Binary(blob) = &req[1] else {
        panic!("blob is bin")
    };
    let mut rd = &blob[..];
    let first = rmpv::decode::read_value(&mut rd).unwrap();
    assert_eq!(first[1]["message"].as_str(), Some("lost"));
    assert!(r.stats().refused_connections >= 2);
}

#[test]
fn an_oversized_record_is_refused_alone() {
    let r = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_max_record_bytes(200)
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("small");
        tracing::info!(blob = "x".repeat(500).as_str(), "big");
        tracing::info!("small again");
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_rejected, s.retries), (2, 1, 0));
    assert!(s.last_error.unwrap().contains("with_max_record_bytes"));
    assert!(r.wait_for_events(2, WAIT));
    let msgs: Vec<_> = r
        .events()
        .iter()
        .map(|e| e.field("message").unwrap().as_str().unwrap().to_string())
        .collect();
    assert_eq!(msgs, ["small", "small again"]);
}
