//! Tokens are refreshed before they expire, and once after the service refuses one.

mod support;

use std::time::{Duration, Instant};

use logship_kusto::IngestionMode;
use logship_testkit::wait_until;
use support::*;
use tracing_subscriber::prelude::*;

#[test]
fn a_refused_token_is_refreshed_once_and_the_batch_delivered() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    let _d = tracing_subscriber::registry().with(layer).set_default();
    tracing::info!("first");
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert_eq!(r.stats().tokens_issued, 1);

    r.expire_all_tokens();
    tracing::info!("second");
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 2, WAIT));
    assert_eq!(r.row_count(TABLE), 2);
    let k = r.stats();
    assert_eq!(k.auth_failures, 1);
    assert_eq!(k.tokens_issued, 2);
    let s = guard.stats();
    assert_eq!(s.delivered, 2);
    assert_eq!(s.retries, 0, "the refresh happens inside one send");
}

#[test]
fn a_refused_fixed_token_says_what_to_check_about_the_token() {
    let r = receiver_builder()
        .with_static_token("fixed-token")
        .start()
        .expect("receiver starts");
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(
            builder(&r)
                .with_token("fixed-token")
                .with_ingestion_mode(IngestionMode::Streaming),
        )
        .build()
        .expect("valid config");
    r.unauthorized_next(2);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("refused");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert!(
        reason.contains("configured token") && reason.contains("expired"),
        "{reason}"
    );
    assert!(!reason.contains("scope  "), "no empty fields: {reason}");
    // No empty field anywhere (a fixed token has no scope to name), and the database named.
    assert!(!reason.contains("``"), "no empty fields: {reason}");
    assert!(
        !reason.contains("scope"),
        "a fixed token has no scope: {reason}"
    );
    assert!(reason.contains(&format!("database `{DB}`")), "{reason}");
    assert!(reason.contains("audience is this cluster"), "{reason}");
    assert!(
        !reason.contains("fixed-token"),
        "the token never shows: {reason}"
    );
}

#[test]
fn a_second_refusal_fails_clearly() {
    let r = receiver();
    let lost = Lost::default();
    let (layer, guard) = lost
        .install(builder(&r).with_ingestion_mode(IngestionMode::Streaming))
        .build()
        .expect("valid config");
    r.unauthorized_next(2);
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("refused");
    }
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let s = guard.stats();
    assert_eq!((s.delivered, s.undelivered_rejected), (0, 1));
    let reason = lost.get()[0].1.clone().unwrap_or_default();
    assert!(
        reason.contains("freshly acquired token") && reason.contains("Ingestor"),
        "{reason}"
    );
    assert_eq!(r.stats().tokens_issued, 2);
}

#[test]
fn a_token_near_expiry_is_replaced_before_use() {
    // 2 s tokens: refreshed after half their lifetime, before the service would refuse them.
    let r = receiver_builder()
        .with_token_lifetime(Duration::from_secs(2))
        .start()
        .expect("receiver");
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    let _d = tracing_subscriber::registry().with(layer).set_default();
    tracing::info!("first");
    guard.flush(Duration::from_secs(10)).expect("flushed");
    let issued_at = Instant::now();
    // Wait on the clock (not on the system under test) past the refresh point.
    assert!(wait_until(Duration::from_secs(5), || issued_at.elapsed()
        > Duration::from_millis(1_200)));
    tracing::info!("second");
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 2, WAIT));
    let k = r.stats();
    assert_eq!(k.tokens_issued, 2);
    assert_eq!(
        k.auth_failures, 0,
        "the old token was never sent after its refresh point"
    );
    assert_eq!(guard.stats().delivered, 2);
}
