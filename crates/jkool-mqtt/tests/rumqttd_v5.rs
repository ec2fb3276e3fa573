//! MQTT 5 against the embedded rumqttd (its v5 listener): QoS 1 and 2 counted on the
//! acknowledgement, every record arriving.

mod support;

use std::collections::BTreeSet;

use logship_jkool_mqtt::{JkoolMqttLayer, MqttProtocol};
use logship_testkit::wait_until;
use support::{Subscriber5, WAIT};
use tracing_subscriber::prelude::*;

#[test]
fn v5_to_the_embedded_broker() {
    let broker = logship_testkit::mqtt::EmbeddedBroker::start_v5(0)
        .unwrap_or_else(|e| panic!("{e}"))
        .addr();
    let sub = Subscriber5::start(broker, "jk5/#");
    for qos in [1u8, 2] {
        let (layer, guard) = JkoolMqttLayer::builder(format!("mqtt://{broker}"))
            .with_protocol(MqttProtocol::V5)
            .with_qos(qos)
            .with_topic("jk5/{kind}/{level}")
            .with_pipeline(|p| p.with_span_timings(false))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            for i in 0..100 {
                tracing::info!("q{qos}-{i}");
            }
        }
        guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
        let s = guard.stats();
        assert_eq!((s.delivered, s.undelivered_rejected), (100, 0), "{s:?}");
    }
    let distinct = || -> BTreeSet<String> {
        sub.json()
            .iter()
            .filter_map(|(_, v)| v["msg-text"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        wait_until(WAIT, || distinct().len() == 200),
        "{}",
        distinct().len()
    );
    assert!(sub.json().iter().all(|(t, _)| t == "jk5/event/info"));
}
