//! Basic, API key and bearer authentication reach the server; wrong credentials are a
//! permanent failure, reported with the server's reason and never leaked in `Debug`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_ecs_metrics::EcsBuilder;
use logship_testkit::es::{EsAuth, EsReceiver};

use common::{WAIT, builder};

fn ship(es: &EsReceiver, b: impl FnOnce(EcsBuilder) -> EcsBuilder) -> logship_core::Stats {
    let (layer, guard) = b(builder(es)).build().unwrap();
    layer.log_time_metric("authed", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    guard.stats()
}

#[test]
fn each_scheme_is_accepted() {
    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("elastic", "s3cret"))
        .start()
        .unwrap();
    assert_eq!(
        ship(&es, |b| b.with_credentials("elastic", "s3cret")).delivered,
        1
    );

    es.set_auth(EsAuth::api_key("kid", "ksecret"));
    assert_eq!(ship(&es, |b| b.with_api_key("kid", "ksecret")).delivered, 1);
    // The encoded form ES hands out is base64(id:key).
    assert_eq!(
        ship(&es, |b| b.with_encoded_api_key("a2lkOmtzZWNyZXQ=")).delivered,
        1
    );

    es.set_auth(EsAuth::bearer("tok123"));
    assert_eq!(ship(&es, |b| b.with_bearer_token("tok123")).delivered, 1);
    assert_eq!(es.doc_count(), 4);
    assert_eq!(es.counters().auth_failures, 0);
}

#[test]
fn wrong_credentials_are_rejected_not_retried() {
    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("elastic", "right"))
        .start()
        .unwrap();
    let b = builder(&es).with_credentials("elastic", "wrong-password");
    assert!(!format!("{b:?}").contains("wrong-password"));
    let stats = ship(&es, |_| b);
    assert_eq!(stats.delivered, 0, "{stats:?}");
    assert_eq!(stats.undelivered_rejected, 1, "{stats:?}");
    assert_eq!(stats.retries, 0, "{stats:?}");
    let err = stats.last_error.unwrap_or_default();
    assert!(
        err.contains("http 401") && err.contains("security_exception"),
        "{err}"
    );
    assert!(!err.contains("wrong-password"), "{err}");
    assert_eq!(es.counters().auth_failures, 1);
}
