//! A bulk response with 429 items: only those items are sent again, and nothing is duplicated.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;

use common::{WAIT, builder};

#[test]
fn only_the_rejected_items_are_retried() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    es.reject_items(2);
    let t = SystemTime::now();
    for i in 0..5 {
        layer.log_time_metric(&format!("m{i}"), t, Duration::from_millis(i));
    }
    guard.flush(WAIT).unwrap();

    let stats = guard.stats();
    assert_eq!(stats.delivered, 5, "{stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");
    assert_eq!(stats.requests, 2, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");

    let c = es.counters();
    assert_eq!(c.bulk_requests, 2);
    assert_eq!(c.items("create", 429), 2);
    assert_eq!(c.items("create", 201), 5);
    assert_eq!(es.doc_count(), 5);
    // The second request carried exactly the two rejected documents (4 NDJSON lines).
    let bulks: Vec<_> = es
        .requests()
        .into_iter()
        .filter(|r| r.path == "/_bulk")
        .collect();
    assert_eq!(bulks.len(), 2);
    assert_eq!(bulks[0].body.iter().filter(|b| **b == b'\n').count(), 10);
    assert_eq!(bulks[1].body.iter().filter(|b| **b == b'\n').count(), 4);
    assert_eq!(
        bulks[1].header("content-type"),
        Some("application/x-ndjson")
    );
    assert!(bulks[1].body.ends_with(b"\n"));
}

#[test]
fn mixed_outcomes_deliver_retry_and_reject_per_item() {
    // Day one's index is a data stream on the server, so `index` items into it are refused
    // for good (400); day two's is a plain index; one item is throttled (429).
    let es = EsReceiver::builder()
        .with_data_stream_pattern("mixed-2024.01.01")
        .start()
        .unwrap();
    let (layer, guard) = builder(&es)
        .with_index_prefix("mixed")
        .with_bulk_action(logship_ecs_metrics::BulkAction::Index)
        .build()
        .unwrap();
    es.reject_items_for_index("mixed-2024.01.02", 1);
    let day1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let day2 = day1 + Duration::from_secs(86_400);
    layer.log_time_metric("a", day1, Duration::from_millis(1));
    layer.log_time_metric("b", day2, Duration::from_millis(1));
    layer.log_time_metric("c", day2, Duration::from_millis(1));
    layer.log_time_metric("d", day1, Duration::from_millis(1));
    guard.flush(WAIT).unwrap();

    let stats = guard.stats();
    assert_eq!(stats.delivered, 2, "{stats:?}");
    assert_eq!(stats.undelivered_rejected, 2, "{stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("illegal_argument_exception"),
        "{stats:?}"
    );
    let c = es.counters();
    assert_eq!(c.items("index", 400), 2);
    assert_eq!(c.items("index", 429), 1);
    assert_eq!(c.items("index", 201), 2);
    assert_eq!(es.documents_in("mixed-2024.01.02").len(), 2);
    // The retry carried only the throttled document.
    let bulks: Vec<_> = es
        .requests()
        .into_iter()
        .filter(|r| r.path == "/_bulk")
        .collect();
    assert_eq!(bulks.len(), 2);
    assert_eq!(bulks[1].body.iter().filter(|b| **b == b'\n').count(), 2);
}
