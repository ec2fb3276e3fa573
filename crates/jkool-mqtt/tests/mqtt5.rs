//! MQTT 5 (`with_protocol(MqttProtocol::V5)`) against a real mosquitto (when installed):
//! every record delivered and counted on its PUBACK, QoS 2, a PUBACK reason code that
//! rejects a record (ACL: 0x87 not authorized), and refused credentials.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use logship_core::RetryPolicy;
use logship_jkool_mqtt::{JkoolMqttLayer, MqttProtocol};
use logship_testkit::peers;
use logship_testkit::wait_until;
use support::{Mosquitto, Subscriber5, WAIT};
use tracing_subscriber::prelude::*;

fn retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
        .with_max_attempts(Some(3))
}

fn distinct(sub: &Subscriber5) -> BTreeSet<String> {
    sub.json()
        .iter()
        .filter_map(|(_, v)| v["msg-text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn v5_every_record_arrives_and_is_counted_on_its_ack() {
    let Some(program) = peers::require(
        "v5_every_record_arrives_and_is_counted_on_its_ack",
        "mosquitto",
    ) else {
        return;
    };
    let mq = Mosquitto::start_anonymous(program, None);
    let sub = Subscriber5::start(mq.addr, "v5/#");
    for qos in [1u8, 2] {
        let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", mq.addr))
            .with_protocol(MqttProtocol::V5)
            .with_qos(qos)
            .with_max_inflight(10)
            .with_topic("v5/{level}")
            .with_pipeline(|p| {
                p.with_retry(retry())
                    .with_span_timings(false)
                    .with_linger(Duration::from_millis(20))
            })
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            for i in 0..200 {
                tracing::info!("q{qos}-{i}");
            }
        }
        guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
        let s = guard.stats();
        assert_eq!(
            (s.delivered, s.undelivered_rejected, s.retries),
            (200, 0, 0),
            "{s:?}"
        );
    }
    assert!(
        wait_until(WAIT, || distinct(&sub).len() == 400),
        "{}",
        distinct(&sub).len()
    );
    assert_eq!(sub.count(), 400);
    assert!(sub.json().iter().all(|(t, _)| t == "v5/info"));
}

#[test]
fn v5_a_not_authorized_puback_rejects_only_that_record() {
    let Some(program) = peers::require(
        "v5_a_not_authorized_puback_rejects_only_that_record",
        "mosquitto",
    ) else {
        return;
    };
    // Anonymous clients may read everything under v5/ but write only v5/ok.
    let mq = Mosquitto::start_anonymous(program, Some("topic read v5/#\ntopic write v5/ok\n"));
    let sub = Subscriber5::start(mq.addr, "v5/#");
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", mq.addr))
        .with_protocol(MqttProtocol::V5)
        .with_topic("v5/{target}")
        .with_pipeline(|p| p.with_retry(retry()).with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(target: "ok", "allowed-1");
        tracing::info!(target: "denied", "refused");
        tracing::info!(target: "ok", "allowed-2");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_rejected, s.retries),
        (2, 1, 0),
        "{s:?}"
    );
    let err = s.last_error.unwrap_or_default();
    assert!(err.contains("not authorized (0x87)"), "{err}");
    assert!(wait_until(WAIT, || sub.count() >= 2));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        distinct(&sub),
        BTreeSet::from(["allowed-1".to_string(), "allowed-2".to_string()])
    );
}

#[test]
fn v5_a_wrong_password_is_rejected_not_retried() {
    let Some(program) = peers::require("v5_a_wrong_password_is_rejected_not_retried", "mosquitto")
    else {
        return;
    };
    let mq = Mosquitto::start(program, "logship", "pw-1");
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", mq.addr))
        .with_protocol(MqttProtocol::V5)
        .with_credentials("logship", "wrong")
        .with_pipeline(|p| p.with_retry(retry()).with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("x");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    let s = guard.stats();
    assert_eq!(
        (s.delivered, s.undelivered_rejected, s.retries),
        (0, 1, 0),
        "{s:?}"
    );
    let err = s.last_error.unwrap_or_default();
    assert!(err.contains("refused the credentials"), "{err}");

    // The right password, with a persistent session: delivered.
    let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{}", mq.addr))
        .with_protocol(MqttProtocol::V5)
        .with_credentials("logship", "pw-1")
        .with_client_id("logship-v5-persistent")
        .with_clean_session(false)
        .with_pipeline(|p| p.with_retry(retry()).with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("y");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.stats().delivered, 1, "{:?}", guard.stats());
}
