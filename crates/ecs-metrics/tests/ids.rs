//! `_id` names the record, not the caller's `tracking_id`: records that share a tracking id are
//! separate documents, an empty one is fine, and a 409 is a duplicate only when this layer sent
//! the document before (a retry after a lost or failed reply), else a rejection naming the
//! `_id` conflict.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;
use tracing_subscriber::prelude::*;

use common::{WAIT, builder};

#[test]
fn events_sharing_a_tracking_id_are_separate_documents() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).with_log_events(true).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for step in ["placed", "paid", "shipped"] {
            tracing::info!(tracking_id = "order-42", step, "order event");
        }
        tracing::info!(tracking_id = "", "no tracking id");
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 4, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");
    assert_eq!(es.doc_count(), 4);
    assert_eq!(es.counters().duplicates_refused, 0);
    let docs = es.documents();
    let order: Vec<_> = docs
        .iter()
        .filter(|d| d.source["event"]["id"] == "order-42")
        .collect();
    assert_eq!(order.len(), 3, "{docs:#?}");
    let mut steps: Vec<&str> = order
        .iter()
        .map(|d| d.source["tracing"]["fields"]["step"].as_str().unwrap())
        .collect();
    steps.sort_unstable();
    assert_eq!(steps, ["paid", "placed", "shipped"]);
    let empty = docs
        .iter()
        .find(|d| d.source["message"] == "no tracking id")
        .unwrap();
    assert!(empty.source["event"].get("id").is_none(), "{empty:?}");
    assert_eq!(empty.id.len(), 36);
    for d in &docs {
        assert_ne!(d.id, "order-42");
        assert_eq!(d.version, 1);
    }
}

#[test]
fn a_conflict_on_a_first_attempt_is_rejected_and_counted() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    es.conflict_items(1);
    layer.log_time_metric("taken", SystemTime::now(), Duration::from_millis(1));
    layer.log_time_metric("free", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    assert_eq!(stats.undelivered_rejected, 1, "{stats:?}");
    assert_eq!(stats.retries, 0, "{stats:?}");
    let why = stats.last_error.unwrap_or_default();
    assert!(why.contains("item 409"), "{why}");
    assert!(why.contains("already exists"), "{why}");
    assert!(why.contains("had not been sent before"), "{why}");
    assert_eq!(es.counters().injected_conflicts, 1);
    assert_eq!(es.doc_count(), 1);
}

#[test]
fn a_conflict_after_a_failed_reply_that_stored_is_delivered_once() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    // The cluster indexes the request, then answers 503: the retry meets its own copies.
    es.fail_after_storing(1, 503);
    for i in 0..3 {
        layer.log_time_metric(
            &format!("m{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 3, "{stats:?}");
    assert_eq!(stats.duplicates, 3, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");
    assert!(stats.retries >= 1, "{stats:?}");
    let c = es.counters();
    assert_eq!(c.failed_after_storing, 1);
    assert_eq!(c.items("create", 409), 3);
    assert_eq!(es.doc_count(), 3);
    assert!(es.documents().iter().all(|d| d.version == 1));
}

#[test]
fn a_replaying_layer_can_take_every_conflict_as_a_duplicate() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_conflicts_as_duplicates(true)
        .build()
        .unwrap();
    es.conflict_items(1);
    layer.log_time_metric("landed-before", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!((stats.delivered, stats.duplicates), (1, 1), "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");
}
