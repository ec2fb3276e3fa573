//! `JkoolMqttBuilder::from_env_vars` and `JkoolMqttConfig`: every documented `LOGSHIP_MQTT*`
//! variable reaches its setting; the key ones (URL, topic) publish to an embedded broker;
//! malformed, unknown and missing variables fail at `build()` naming them, without the
//! password. The process environment is never touched.

mod support;

use logship_jkool_mqtt::{JkoolMqttBuilder, JkoolMqttConfig};
use logship_testkit::wait_until;
use support::{Subscriber, WAIT, start_rumqttd};
use tracing_subscriber::prelude::*;

/// (variable, value, what the builder's `Debug` shows).
const TABLE: &[(&str, &str, &str)] = &[
    (
        "LOGSHIP_MQTT",
        "mqtts://broker:8883",
        "url: \"mqtts://broker:8883\"",
    ),
    ("LOGSHIP_MQTT_PROTOCOL", "5", "protocol: V5"),
    (
        "LOGSHIP_MQTT_CLIENT_ID",
        "web1",
        "client_id: Some(\"web1\")",
    ),
    (
        "LOGSHIP_MQTT_CLEAN_SESSION",
        "false",
        "clean_session: false",
    ),
    ("LOGSHIP_MQTT_KEEP_ALIVE", "30s", "keep_alive: 30s"),
    ("LOGSHIP_MQTT_USERNAME", "ann", "Some((\"ann\", ***))"),
    ("LOGSHIP_MQTT_PASSWORD", "pw9", "Some((\"ann\", ***))"),
    ("LOGSHIP_MQTT_QOS", "2", "qos: 2"),
    ("LOGSHIP_MQTT_RETAIN", "true", "retain: true"),
    ("LOGSHIP_MQTT_TOPIC", "jk/{level}", "topic: \"jk/{level}\""),
    ("LOGSHIP_MQTT_MAX_INFLIGHT", "7", "max_inflight: 7"),
    (
        "LOGSHIP_MQTT_MAX_DOCUMENT_BYTES",
        "64KiB",
        "max_document_bytes: 65536",
    ),
    (
        "LOGSHIP_MQTT_SNAPSHOT_PLACEMENT",
        "separate",
        "snapshots: Separate",
    ),
    (
        "LOGSHIP_MQTT_TLS_CA",
        "/etc/mqtt/ca.pem",
        "/etc/mqtt/ca.pem",
    ),
    (
        "LOGSHIP_MQTT_OVERFLOW",
        "drop_oldest",
        "overflow: DropOldest",
    ),
    (
        "LOGSHIP_PIPELINE_RETRY_MAX_ATTEMPTS",
        "3",
        "max_attempts: Some(3)",
    ),
];

#[test]
fn every_variable_reaches_its_setting() {
    let shown = format!(
        "{:?}",
        JkoolMqttBuilder::from_env_vars(TABLE.iter().map(|(k, v, _)| (*k, *v)))
    );
    let defaults = format!(
        "{:?}",
        JkoolMqttBuilder::from_env_vars([("LOGSHIP_MQTT", "mqtt://b:1883")])
    );
    for (k, _, want) in TABLE {
        assert!(shown.contains(want), "{k}: `{want}` not in {shown}");
        assert!(
            !defaults.contains(want),
            "{k}: `{want}` is already the default"
        );
    }
    assert!(!shown.contains("pw9"), "{shown}");
}

#[test]
fn key_variables_publish() {
    let broker = start_rumqttd();
    let sub = Subscriber::start(broker, "envjk/#", None);
    let url = format!("mqtt://{broker}");
    let (layer, guard) = JkoolMqttBuilder::from_env_vars([
        ("LOGSHIP_MQTT", url.as_str()),
        ("LOGSHIP_MQTT_TOPIC", "envjk/{kind}"),
        ("LOGSHIP_MQTT_LINGER", "50ms"),
    ])
    .build()
    .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("from the environment");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_until(WAIT, || sub.count() >= 1));
    assert_eq!(guard.stats().delivered, 1);
}

#[test]
fn bad_unknown_and_missing_variables_fail_at_build_naming_them() {
    let Err(e) = JkoolMqttBuilder::from_env_vars([
        ("LOGSHIP_MQTT_PASWORD", "hunter2"),
        ("LOGSHIP_MQTT_QOS", "high"),
        ("LOGSHIP_MQTT_PROTOCOL", "6"),
    ])
    .build() else {
        panic!("built")
    };
    let e = e.to_string();
    for want in [
        "LOGSHIP_MQTT is not set",
        "LOGSHIP_MQTT_QOS is `high`",
        "LOGSHIP_MQTT_PROTOCOL is `6`: expected 3.1.1 or 5",
        "LOGSHIP_MQTT_PASWORD is not a variable logship reads",
        "LOGSHIP_MQTT_PASSWORD",
    ] {
        assert!(e.contains(want), "{want} not in {e}");
    }
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn a_password_without_a_user_fails_at_build() {
    let Err(e) = JkoolMqttBuilder::from_env_vars([
        ("LOGSHIP_MQTT", "mqtt://b:1883"),
        ("LOGSHIP_MQTT_PASSWORD", "hunter2"),
    ])
    .build() else {
        panic!("built")
    };
    let e = e.to_string();
    assert!(e.contains("LOGSHIP_MQTT_USERNAME"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn a_config_filled_in_code_reaches_the_builder() {
    let mut cfg = JkoolMqttConfig::default();
    cfg.url = Some("mqtt://b:1883".into());
    cfg.qos = Some(0);
    let shown = format!("{:?}", cfg.into_builder());
    assert!(shown.contains("qos: 0"), "{shown}");
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    #[test]
    fn toml_deserializes_and_builds() {
        let doc = r#"
            url = "mqtt://127.0.0.1:1883"
            protocol = "5"
            keep_alive = "20s"
            password = "pw9"
            username = "ann"
            [pipeline]
            linger = "50ms"
        "#;
        let cfg: JkoolMqttConfig = toml::from_str(doc).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{cfg:?}").contains("pw9"));
        let shown = format!("{:?}", cfg.into_builder());
        for want in ["protocol: V5", "keep_alive: 20s", "linger: 50ms", "\"ann\""] {
            assert!(shown.contains(want), "{want} not in {shown}");
        }
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let Err(e) = toml::from_str::<JkoolMqttConfig>("url = \"mqtt://b\"\nqso = 1") else {
            panic!("parsed")
        };
        assert!(e.to_string().contains("unknown field `qso`"), "{e}");
    }
}
