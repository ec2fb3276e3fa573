//! A batch larger than the streaming limit is split into requests of at most 4 MiB of
//! uncompressed rows (the receiver checks the uncompressed size, its default).

mod support;

use std::time::Duration;

use logship_kusto::{IngestionMode, STREAMING_LIMIT_BYTES};
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn a_10_mib_batch_goes_as_several_requests_under_4_mib() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_pipeline(|p| {
            p.with_max_batch_records(5_000)
                .with_max_batch_bytes(64 * 1024 * 1024)
                .with_max_queue_bytes(128 * 1024 * 1024)
                .with_linger(Duration::from_secs(5))
        })
        .build()
        .expect("valid config");
    let payload = "x".repeat(2_000);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..5_000_u64 {
            tracing::info!(i, payload = payload.as_str(), "row");
        }
    }
    guard.flush(Duration::from_secs(60)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 5_000, WAIT));
    assert_eq!(r.row_count(TABLE), 5_000);
    let reqs = r.streaming_requests();
    assert!(
        reqs.len() >= 3,
        "10+ MB must need at least 3 requests, got {}",
        reqs.len()
    );
    for q in &reqs {
        assert_eq!(q.status, 200);
        assert!(
            q.uncompressed_bytes <= STREAMING_LIMIT_BYTES,
            "{} bytes",
            q.uncompressed_bytes
        );
        assert!(q.wire_bytes < STREAMING_LIMIT_BYTES);
    }
    let total: usize = reqs.iter().map(|q| q.uncompressed_bytes).sum();
    assert!(total > 10_000_000);
    let s = guard.stats();
    assert_eq!(s.delivered, 5_000);
    assert_eq!(s.retries, 0);
    assert_eq!(s.undelivered_rejected, 0);
}

#[test]
fn a_row_over_the_limit_is_undelivered_in_streaming_mode_and_queued_in_managed_mode() {
    for mode in [IngestionMode::Streaming, IngestionMode::Managed] {
        let r = receiver();
        let lost = Lost::default();
        let (layer, guard) = lost
            .install(
                builder(&r)
                    .with_ingestion_mode(mode)
                    .with_max_request_bytes(16 * 1024),
            )
            .build()
            .expect("valid config");
        let huge = "y".repeat(20 * 1024);
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            tracing::info!("small 1");
            tracing::info!(big = huge.as_str(), "huge");
            tracing::info!("small 2");
        }
        guard.flush(Duration::from_secs(10)).expect("flushed");
        let s = guard.stats();
        match mode {
            IngestionMode::Streaming => {
                assert!(r.wait_for_rows(TABLE, 2, WAIT));
                assert_eq!(r.row_count(TABLE), 2);
                assert_eq!(s.delivered, 2);
                assert_eq!(s.undelivered_rejected, 1);
                let l = lost.get();
                assert_eq!(l.len(), 1);
                assert!(
                    l[0].1
                        .as_deref()
                        .is_some_and(|m| m.contains("over the streaming ingestion limit"))
                );
            }
            _ => {
                assert!(r.wait_for_rows(TABLE, 3, WAIT));
                assert_eq!(r.row_count(TABLE), 3);
                assert_eq!(s.delivered, 3);
                assert_eq!(r.stats().queued_rows, 1);
                assert_eq!(r.stats().streaming_rows, 2);
                assert!(lost.get().is_empty());
            }
        }
    }
}
