//! Every Forward mode end to end over TCP, with both time formats.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{WAIT, addr, assert_clean, fast, receiver};
use logship_fluent::{FluentLayer, Mode, TimeFormat};
use logship_testkit::fluent::{self, TimeEncoding};
use tracing_subscriber::prelude::*;

fn run(mode: Mode, time: TimeFormat, ack: bool) {
    let r = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_mode(mode)
        .with_time_format(time)
        .with_require_ack(ack)
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..3_u64 {
            tracing::info!(target: "follow", i, from = "userA", ok = true, ratio = 0.5, delta = -3_i64, "followed");
        }
    }
    guard.flush(WAIT).unwrap();
    assert!(r.wait_for_events(3, WAIT));
    let events = r.events();
    assert_eq!(events.len(), 3);
    let want_mode = match mode {
        Mode::Message => fluent::Mode::Message,
        Mode::Forward => fluent::Mode::Forward,
        Mode::PackedForward => fluent::Mode::PackedForward,
        _ => fluent::Mode::CompressedPackedForward,
    };
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.tag, "app.follow");
        assert_eq!(e.mode, want_mode);
        assert_eq!(e.chunk.is_some(), ack);
        assert_eq!(e.field("i").and_then(|v| v.as_u64()), Some(i as u64));
        assert_eq!(e.field("from").and_then(|v| v.as_str()), Some("userA"));
        assert_eq!(e.field("ok").and_then(|v| v.as_bool()), Some(true));
        assert_eq!(e.field("ratio").and_then(|v| v.as_f64()), Some(0.5));
        assert_eq!(e.field("delta").and_then(|v| v.as_i64()), Some(-3));
        assert_eq!(
            e.field("message").and_then(|v| v.as_str()),
            Some("followed")
        );
        assert_eq!(e.field("level").and_then(|v| v.as_str()), Some("INFO"));
        match time {
            TimeFormat::Integer => assert_eq!(e.time.encoding, TimeEncoding::Integer),
            _ => assert_eq!(e.time.encoding, TimeEncoding::FixExt8),
        }
    }
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered(), s.retries), (3, 0, 0));
    let rs = r.stats();
    let want_requests = if mode == Mode::Message { 3 } else { 1 };
    assert_eq!(rs.requests(want_mode), want_requests);
    assert_eq!(rs.acks_sent, if ack { want_requests } else { 0 });
    assert_eq!(s.bytes_sent, rs.bytes_received);
    assert_clean(&r);
}

#[test]
fn message_mode() {
    run(Mode::Message, TimeFormat::EventTime, true);
}

#[test]
fn forward_mode() {
    run(Mode::Forward, TimeFormat::EventTime, true);
}

#[test]
fn packed_forward_mode() {
    run(Mode::PackedForward, TimeFormat::EventTime, true);
}

#[test]
fn compressed_packed_forward_mode() {
    run(Mode::CompressedPackedForward, TimeFormat::EventTime, true);
}

#[test]
fn integer_time_for_old_servers() {
    run(Mode::Forward, TimeFormat::Integer, true);
}

#[test]
fn without_acks() {
    run(Mode::PackedForward, TimeFormat::EventTime, false);
}

#[test]
fn event_time_keeps_nanoseconds() {
    let r = receiver().start().unwrap();
    let (layer, guard) = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_pipeline(fast)
        .build()
        .unwrap();
    let t = logship_core::Timestamp::from_nanos(1_700_000_000_123_456_789);
    guard.handle().submit(
        logship_core::Record::event(logship_core::Level::INFO, "x")
            .with_timestamp(t)
            .build(),
    );
    drop(layer);
    guard.flush(Duration::from_secs(20)).unwrap();
    assert!(r.wait_for_events(1, WAIT));
    let e = &r.events()[0];
    assert_eq!((e.time.secs, e.time.nanos), (1_700_000_000, 123_456_789));
}

/// CompressedPackedForward to a receiver that behaves as Fluent Bit (entries past the first
/// 1 024 000 decompressed bytes dropped, yet acknowledged): with the default request limit
/// every event arrives; with the limit lifted (the old behaviour) events are lost while the
/// layer counts them delivered.
fn compressed_against_fluent_bit(limit: Option<usize>) -> (u64, usize, u64) {
    let r = receiver()
        .with_compressed_chunk_limit(1_024_000)
        .start()
        .unwrap();
    let mut b = FluentLayer::builder("app")
        .with_server(addr(&r))
        .with_mode(Mode::CompressedPackedForward)
        .with_pipeline(|p| {
            fast(p)
                .with_max_batch_records(4096)
                .with_max_queue_records(20_000)
                .with_linger(Duration::from_secs(3600))
        });
    if let Some(n) = limit {
        // The old behaviour: no chunk size target either (it also splits requests).
        b = b.with_max_compressed_request_bytes(n).with_chunk_bytes(n);
    }
    let (layer, guard) = b.build().unwrap();
    let text = "x".repeat(400);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..4000_u64 {
            tracing::info!(target: "bulk", i, text = %text, "bulk event");
        }
    }
    guard.flush(WAIT).unwrap();
    let s = guard.stats();
    (
        s.delivered,
        r.event_count(),
        r.stats().entries_past_chunk_limit,
    )
}

#[test]
fn compressed_requests_stay_under_fluent_bits_chunk_size() {
    let (delivered, received, lost) = compressed_against_fluent_bit(None);
    assert_eq!((delivered, received, lost), (4000, 4000, 0));
}

#[test]
fn without_the_split_fluent_bit_would_lose_acknowledged_records() {
    // The receiver's model is what makes the test above meaningful: one 1.8 MB request.
    let (delivered, received, lost) = compressed_against_fluent_bit(Some(usize::MAX));
    assert_eq!(delivered, 4000, "acknowledged, so counted delivered");
    assert!(
        lost > 0 && received < 4000,
        "received {received}, lost {lost}"
    );
    assert_eq!(received as u64 + lost, 4000);
}
