//! The connection to the broker drops mid-stream (a loopback proxy cuts it, as a broker
//! restart would): every QoS-1 record still arrives at least once and the counters say so.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_mqtt::JkoolMqttLayer;
use logship_testkit::wait_until;
use support::{Proxy, Subscriber, WAIT, start_rumqttd};
use tracing_subscriber::prelude::*;

fn distinct(sub: &Subscriber) -> BTreeSet<String> {
    sub.json()
        .iter()
        .filter_map(|(_, v)| v["msg-text"].as_str().map(str::to_owned))
        .collect()
}

fn layer(proxy: &Proxy, batch: usize) -> (logship_jkool_mqtt::JkoolMqttLayer, logship_core::Guard) {
    JkoolMqttLayer::builder(format!("mqtt://{}", proxy.addr))
        .with_topic("cut/{target}")
        .with_pipeline(move |p| {
            p.with_max_batch_records(batch)
                .with_linger(Duration::from_millis(20))
                .with_span_timings(false)
                .with_retry(
                    RetryPolicy::default()
                        .with_initial_delay(Duration::from_millis(10))
                        .with_max_delay(Duration::from_millis(100))
                        .with_max_attempts(None),
                )
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_cut_between_batches_costs_no_record() {
    let broker = start_rumqttd();
    let proxy = Proxy::start(broker);
    let sub = Subscriber::start(broker, "cut/#", None);
    let (layer, guard) = layer(&proxy, 100);
    let _d = tracing_subscriber::registry().with(layer).set_default();
    for i in 0..100 {
        tracing::info!("a{i}");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.stats().delivered, 100);
    assert_eq!(proxy.cut(), 1);
    for i in 0..100 {
        tracing::info!("b{i}");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(s.delivered, 200, "{s:?}");
    // The cut is seen before the next batch is written (the connection reads end of file), or
    // by the failed write and at most one retry.
    assert!(s.retries <= 1, "{s:?}");
    assert_eq!(s.undelivered_retries_exhausted + s.undelivered_rejected, 0);
    assert!(wait_until(WAIT, || distinct(&sub).len() == 200));
}

#[test]
fn cuts_mid_stream_lose_nothing() {
    let broker = start_rumqttd();
    let proxy = Proxy::start(broker);
    let sub = Subscriber::start(broker, "cut/#", None);
    let (layer, guard) = layer(&proxy, 100);
    let n = 3_000;
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n {
            tracing::info!("m{i}");
        }
    }
    let mut cuts = 0;
    for threshold in [n / 4, n / 2, 3 * n / 4] {
        assert!(wait_until(WAIT, || sub.count() >= threshold));
        cuts += proxy.cut();
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(s.delivered, n as u64, "{s:?}");
    assert_eq!(
        s.undelivered_retries_exhausted + s.undelivered_rejected + s.undelivered_shutdown,
        0
    );
    assert!(wait_until(WAIT, || distinct(&sub).len() == n));
    // At least once: duplicates are allowed, losses are not.
    assert!(sub.count() >= n);
    eprintln!(
        "cuts: {cuts}, retries: {}, received: {} for {n}",
        s.retries,
        sub.count()
    );
}
