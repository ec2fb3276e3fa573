//! A lost reply makes the pipeline send the batch again; the deterministic `_id` and `create`
//! turn the second copy into a counted duplicate, never a second document.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;

use common::{WAIT, builder};

#[test]
fn lost_response_causes_duplicates_not_double_documents() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_pipeline(|p| p.with_send_timeout(Duration::from_millis(500)))
        .build()
        .unwrap();
    es.drop_responses(1);
    for i in 0..3 {
        layer.log_time_metric(
            &format!("d{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 3, "{stats:?}");
    assert_eq!(stats.duplicates, 3, "{stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");
    let c = es.counters();
    assert_eq!(c.duplicates_refused, 3);
    assert_eq!(c.items("create", 409), 3);
    assert_eq!(es.doc_count(), 3);
    assert!(es.documents().iter().all(|d| d.version == 1));
}

#[test]
fn index_action_overwrites_instead() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_bulk_action(logship_ecs_metrics::BulkAction::Index)
        .with_pipeline(|p| p.with_send_timeout(Duration::from_millis(500)))
        .build()
        .unwrap();
    es.drop_responses(1);
    layer.log_time_metric("i0", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    assert_eq!(es.doc_count(), 1);
    assert_eq!(es.documents()[0].version, 2);
}
