//! 413 answers split the request inside one send; requests also stay under the configured
//! size; a single document the server can never take is rejected alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;

use common::{WAIT, builder};

#[test]
fn too_large_request_is_split_until_it_fits() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    // One document is about 700 bytes: allow about two per request.
    es.set_max_body_bytes(Some(1600));
    for i in 0..8 {
        layer.log_time_metric(
            &format!("big{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 8, "{stats:?}");
    assert_eq!(
        stats.retries, 0,
        "split inside one send, not retried: {stats:?}"
    );
    assert_eq!(stats.requests, 1, "{stats:?}");
    let c = es.counters();
    assert!(c.too_large >= 1, "{c:?}");
    assert_eq!(c.items("create", 201), 8);
    assert_eq!(es.doc_count(), 8);
    for r in es.requests().iter().filter(|r| r.status == 200) {
        assert!(r.body.len() <= 1600, "{}", r.body.len());
    }
}

#[test]
fn a_document_too_large_for_the_server_is_rejected_alone() {
    let es = EsReceiver::start().unwrap();
    es.set_max_body_bytes(Some(3000));
    let (layer, guard) = builder(&es).build().unwrap();
    layer.log_time_metric("small", SystemTime::now(), Duration::from_millis(1));
    layer.log_time_metric(
        &"x".repeat(4000),
        SystemTime::now(),
        Duration::from_millis(1),
    );
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert_eq!(stats.undelivered_rejected, 1, "{stats:?}");
    assert!(
        stats.last_error.as_deref().unwrap_or("").contains("413"),
        "{stats:?}"
    );
    assert_eq!(es.doc_count(), 1);
}

#[test]
fn batches_are_cut_at_max_request_bytes() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).with_max_request_bytes(2000).build().unwrap();
    for i in 0..10 {
        layer.log_time_metric(
            &format!("cut{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 10);
    let bulks: Vec<_> = es
        .requests()
        .into_iter()
        .filter(|r| r.path == "/_bulk")
        .collect();
    assert!(bulks.len() >= 4, "{}", bulks.len());
    assert!(
        bulks
            .iter()
            .all(|r| r.body.len() <= 2000 && r.status == 200)
    );
    assert_eq!(es.counters().too_large, 0);
    assert_eq!(es.doc_count(), 10);
}
