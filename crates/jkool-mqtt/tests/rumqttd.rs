//! Publishing to an embedded rumqttd: one jKool document per PUBLISH, the topic per record,
//! QoS 1 counted on PUBACK, QoS 0 on write.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use logship_jkool_mqtt::JkoolMqttLayer;
use logship_testkit::wait_until;
use support::{Subscriber, WAIT, start_rumqttd};
use tracing_subscriber::prelude::*;

mod shop {
    pub mod orders {
        pub fn placed(n: u64) {
            tracing::info!(n, "order placed");
        }
    }
}

#[test]
fn documents_arrive_on_per_record_topics() {
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "jk/#", None);
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{broker}"))
        .with_topic("jk/{kind}/{target}")
        .with_pipeline(|p| p.with_default_source_fqn("APPL=shop#SERVER=web1"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("checkout", correlator = "order-42");
        span.in_scope(|| shop::orders::placed(1));
        drop(span);
        tracing::warn!(target: "billing", "late payment");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_until(WAIT, || sub.count() >= 3));
    let got = sub.json();
    assert_eq!(got.len(), 3, "{got:?}");
    // One document per PUBLISH: every payload is one JSON object, never an array.
    assert!(got.iter().all(|(_, doc)| doc.is_object()), "{got:?}");
    let topics: BTreeSet<_> = got.iter().map(|(t, _)| t.as_str()).collect();
    let module = module_path!().replace("::", "/");
    let expected: BTreeSet<String> = [
        format!("jk/event/{module}/shop/orders"),
        format!("jk/activity/{module}"),
        "jk/event/billing".to_string(),
    ]
    .into();
    assert_eq!(topics, expected.iter().map(String::as_str).collect());
    let order = &got
        .iter()
        .find(|(t, _)| t.ends_with("shop/orders"))
        .unwrap_or_else(|| panic!())
        .1;
    let act = &got
        .iter()
        .find(|(t, _)| t.starts_with("jk/activity"))
        .unwrap_or_else(|| panic!())
        .1;
    assert_eq!(order["type"], "EVENT");
    assert_eq!(order["source-fqn"], "APPL=shop#SERVER=web1");
    assert_eq!(order["parent-id"], act["tracking-id"]);
    assert_eq!(order["corrid"], serde_json::json!(["order-42"]));
    assert_eq!(act["status"], "END");
    let s = guard.stats();
    assert_eq!((s.delivered, s.retries), (3, 0), "{s:?}");
    assert!(s.bytes_sent > 0);
}

fn burst(qos: u8, n: u64) {
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "burst/#", None);
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{broker}"))
        .with_topic("burst/fixed")
        .with_qos(qos)
        .with_pipeline(|p| p.with_max_batch_records(500).with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..n {
            tracing::info!(i, "e");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_until(WAIT, || sub.count() as u64 >= n));
    assert_eq!(sub.count() as u64, n);
    assert!(sub.json().iter().all(|(t, _)| t == "burst/fixed"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.retries, s.undelivered_retries_exhausted),
        (n, 0, 0),
        "{s:?}"
    );
}

#[test]
fn qos1_bursts_larger_than_the_inflight_window_are_all_acknowledged() {
    burst(1, 2_000);
}

#[test]
fn qos0_counts_on_write() {
    burst(0, 300);
}

#[test]
fn qos2_counts_on_pubcomp() {
    burst(2, 300);
}

#[test]
fn an_unreachable_broker_is_retried_then_given_up() {
    let port = support::free_port();
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://127.0.0.1:{port}"))
        .with_pipeline(|p| {
            p.with_retry(
                logship_core::RetryPolicy::default()
                    .with_initial_delay(Duration::from_millis(5))
                    .with_max_delay(Duration::from_millis(10))
                    .with_max_attempts(Some(3)),
            )
            .with_span_timings(false)
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("nobody listens");
    }
    let _ = guard.flush(WAIT);
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_retries_exhausted, s.retries),
        (0, 1, 2),
        "{s:?}"
    );
    assert!(
        s.last_error
            .unwrap_or_default()
            .contains("mqtt connection failed")
    );
}
