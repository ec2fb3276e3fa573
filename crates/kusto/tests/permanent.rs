//! A permanent OneApi error sends the batch to the undelivered path with the service's
//! message; a cluster without streaming ingestion gives a clear error.

mod support;

use std::time::Duration;

use logship_core::undelivered::Cause;
use logship_kusto::IngestionMode;
use logship_testkit::kusto::StreamingFault;
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn permanent_error_is_undelivered_with_the_service_message() {
    let r = receiver();
    r.fail_next_streaming(1, StreamingFault::Permanent);
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(builder(&r).with_ingestion_mode(IngestionMode::Streaming))
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..5 {
            tracing::info!(i, "row");
        }
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let s = guard.stats();
    assert_eq!(s.delivered, 0);
    assert_eq!(s.undelivered_rejected, 5);
    assert_eq!(s.retries, 0, "a permanent error is not retried");
    let l = lost.get();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].0, Cause::Rejected);
    assert_eq!(l[0].2, 5);
    let reason = l[0].1.clone().unwrap_or_default();
    assert!(
        reason.contains("BadRequest_ScriptedPermanentFailure"),
        "{reason}"
    );
    assert!(
        reason.contains("Permanent failure (scripted fault); do not retry."),
        "{reason}"
    );
    assert_eq!(r.row_count(TABLE), 0);
}

#[test]
fn streaming_disabled_is_a_clear_error_in_streaming_mode() {
    let r = receiver_builder()
        .with_streaming_enabled(false)
        .start()
        .expect("receiver");
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(builder(&r).with_ingestion_mode(IngestionMode::Streaming))
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert_eq!(guard.stats().undelivered_rejected, 1);
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert!(
        reason.starts_with("streaming ingestion is not enabled on the cluster (404)"),
        "{reason}"
    );
}

#[test]
fn wrong_secret_is_undelivered_with_the_identity_provider_message() {
    let r = receiver();
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(
            builder(&r)
                .with_ingestion_mode(IngestionMode::Streaming)
                .with_application_key(
                    logship_testkit::kusto::DEFAULT_CLIENT_ID,
                    "wrong-secret",
                    "contoso",
                ),
        )
        .build()
        .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("one");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert_eq!(guard.stats().undelivered_rejected, 1);
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert!(
        reason.contains("invalid_client") && reason.contains("AADSTS7000215"),
        "{reason}"
    );
    assert!(!reason.contains("wrong-secret"));
    assert_eq!(r.stats().token_failures, 1);
}
