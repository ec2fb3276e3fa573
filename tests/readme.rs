//! The README's "several backends at once" snippet, run against local receivers: two layers
//! stacked on one registry (one with a per-layer filter), both deliver, and `shutdown_all`
//! shuts both down with one timeout.

use std::time::Duration;

use tracing_subscriber::prelude::*;

#[test]
fn stacked_backends_deliver_and_shut_down_together() {
    let fluent_rx = logship_testkit::fluent::FluentReceiver::builder()
        .start()
        .unwrap();
    let es_rx = logship_testkit::es::EsReceiver::builder().start().unwrap();

    let (fluent, g1) = logship_fluent::FluentLayer::builder("app")
        .with_server(fluent_rx.addr().unwrap().to_string())
        .build()
        .unwrap();
    let (ecs, g2) = logship_ecs_metrics::EcsLayer::builder(es_rx.url().as_str())
        .with_log_events(true)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(fluent.with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .with(ecs);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(order_id = 42_u64, "order placed");
        tracing::debug!("only for Elasticsearch: below the Fluent layer's filter");
    });
    let results = logship_core::shutdown_all([g1, g2], Duration::from_secs(10));
    for r in &results {
        let report = r.as_ref().expect("both pipelines drain");
        assert_eq!(report.stats.in_flight(), 0);
    }
    assert_eq!(results[0].as_ref().map(|r| r.stats.delivered).ok(), Some(1));
    assert_eq!(results[1].as_ref().map(|r| r.stats.delivered).ok(), Some(2));
    assert!(fluent_rx.wait_for_events(1, Duration::from_secs(10)));
    assert!(es_rx.wait_for_docs(2, Duration::from_secs(10)));
}
