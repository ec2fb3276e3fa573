//! 429 and transient errors are retried by the core with backoff, then succeed.

mod support;

use std::time::Duration;

use logship_kusto::IngestionMode;
use logship_testkit::kusto::StreamingFault;
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn throttled_twice_then_delivered_once() {
    let r = receiver();
    r.throttle_next(2, Duration::ZERO);
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..20 {
            tracing::info!(i, "row");
        }
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 20, WAIT));
    assert_eq!(r.row_count(TABLE), 20, "no duplicates");
    assert_eq!(r.stats().throttled, 2);
    let s = guard.stats();
    assert_eq!(s.delivered, 20);
    assert_eq!(s.retries, 2);
    assert_eq!(s.undelivered_retries_exhausted + s.undelivered_rejected, 0);
}

#[test]
fn transient_5xx_is_retried() {
    let r = receiver();
    r.fail_next_streaming(1, StreamingFault::Transient { status: 503 });
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 1, WAIT));
    let s = guard.stats();
    assert_eq!((s.delivered, s.retries), (1, 1));
}
