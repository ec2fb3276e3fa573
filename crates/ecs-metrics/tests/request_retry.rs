//! Whole-request 429 (with Retry-After) and 5xx answers are retried by the pipeline until
//! delivered, with exact accounting.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;

use common::{WAIT, builder};

#[test]
fn throttled_request_is_retried_after_the_server_delay() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    es.throttle_requests(1, Duration::from_secs(1));
    for i in 0..3 {
        layer.log_time_metric(
            &format!("t{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 3, "{stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");
    assert_eq!(es.counters().injected_throttles, 1);
    assert_eq!(es.counters().responses(429), 1);
    assert_eq!(es.doc_count(), 3);
}

#[test]
fn server_errors_are_retried_and_not_duplicated() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    es.fail_requests(3, 503);
    for i in 0..4 {
        layer.log_time_metric(
            &format!("s{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 4, "{stats:?}");
    assert_eq!(stats.retries, 3, "{stats:?}");
    assert_eq!(stats.requests, 4, "{stats:?}");
    assert!(
        stats.last_error.as_deref().unwrap_or("").contains("503"),
        "{stats:?}"
    );
    assert_eq!(es.counters().injected_failures, 3);
    assert_eq!(es.doc_count(), 4);
}

#[test]
fn retries_run_out_and_are_counted() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_pipeline(|p| {
            p.with_retry(
                logship_core::RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(1))
                    .with_max_delay(Duration::from_millis(5))
                    .with_max_attempts(Some(3)),
            )
        })
        .build()
        .unwrap();
    es.fail_requests(100, 500);
    layer.log_time_metric("lost", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 0, "{stats:?}");
    assert_eq!(stats.undelivered_retries_exhausted, 1, "{stats:?}");
    assert_eq!(stats.requests, 3, "{stats:?}");
    assert_eq!(es.doc_count(), 0);
}
