//! `EcsBuilder::from_env_vars` and `EcsConfig`: every documented `LOGSHIP_ES*` variable
//! reaches its setting; the key ones (URL, credentials, index prefix) deliver to the testkit
//! receiver; malformed, unknown and missing variables fail at `build()` naming them, without a
//! secret's value. The process environment is never touched.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use logship_ecs_metrics::{EcsBuilder, EcsConfig};
use logship_testkit::es::{EsAuth, EsReceiver};

/// (variable, value, what the builder's `Debug` shows).
const TABLE: &[(&str, &str, &str)] = &[
    (
        "LOGSHIP_ES",
        "http://a:9200, http://b:9200",
        "[\"http://a:9200\", \"http://b:9200\"]",
    ),
    (
        "LOGSHIP_ES_INDEX_PREFIX",
        "shop-metrics",
        "prefix: \"shop-metrics\"",
    ),
    (
        "LOGSHIP_ES_INDEX_FREQUENCY",
        "monthly",
        "frequency: Monthly",
    ),
    (
        "LOGSHIP_ES_DATA_STREAM",
        "prod",
        "data_stream: Some(\"prod\")",
    ),
    (
        "LOGSHIP_ES_DATASET",
        "shop.timers",
        "dataset: Some(\"shop.timers\")",
    ),
    ("LOGSHIP_ES_BULK_ACTION", "index", "action: Index"),
    ("LOGSHIP_ES_SERVICE_NAME", "shop", "name: Some(\"shop\")"),
    (
        "LOGSHIP_ES_SERVICE_VERSION",
        "1.2.3",
        "version: Some(\"1.2.3\")",
    ),
    (
        "LOGSHIP_ES_ENVIRONMENT",
        "staging",
        "environment: Some(\"staging\")",
    ),
    ("LOGSHIP_ES_HOST_FIELDS", "false", "host_fields: false"),
    ("LOGSHIP_ES_GZIP", "true", "gzip: true"),
    ("LOGSHIP_ES_TLS_CA", "/etc/es/ca.pem", "/etc/es/ca.pem"),
    (
        "LOGSHIP_ES_MAX_REQUEST_BYTES",
        "2MiB",
        "max_request_bytes: 2097152",
    ),
    (
        "LOGSHIP_ES_MAX_REPLY_BYTES",
        "64KiB",
        "max_reply_bytes: 65536",
    ),
    ("LOGSHIP_ES_CONNECT_TIMEOUT", "3s", "connect_timeout: 3s"),
    (
        "LOGSHIP_ES_INSTALL_TEMPLATE",
        "yes",
        "install_template: true",
    ),
    ("LOGSHIP_ES_LOG_EVENTS", "true", "events: true"),
    (
        "LOGSHIP_ES_FAILURE_FOLDER",
        "/tmp/es-failed",
        "\"/tmp/es-failed\"",
    ),
    ("LOGSHIP_ES_BEARER_TOKEN", "tok", "auth: Bearer(***)"),
    ("LOGSHIP_ES_LINGER", "250ms", "linger: 250ms"),
    (
        "LOGSHIP_PIPELINE_BATCH_RECORDS",
        "200",
        "max_batch_records: 200",
    ),
];

#[test]
fn every_variable_reaches_its_setting() {
    let shown = format!(
        "{:?}",
        EcsBuilder::from_env_vars(TABLE.iter().map(|(k, v, _)| (*k, *v)))
    );
    let defaults = format!(
        "{:?}",
        EcsBuilder::from_env_vars([("LOGSHIP_ES", "http://a:9200")])
    );
    for (k, _, want) in TABLE {
        assert!(shown.contains(want), "{k}: `{want}` not in {shown}");
        assert!(
            !defaults.contains(want),
            "{k}: `{want}` is already the default"
        );
    }
    assert!(!shown.contains("tok)"), "{shown}");
}

#[test]
fn each_authentication_pair_reaches_its_setting() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("LOGSHIP_ES_USERNAME", "elastic"),
                ("LOGSHIP_ES_PASSWORD", "pw1"),
            ],
            "Basic { username: \"elastic\", password: *** }",
        ),
        (
            &[
                ("LOGSHIP_ES_API_KEY_ID", "kid"),
                ("LOGSHIP_ES_API_KEY", "pw2"),
            ],
            "ApiKey { id: \"kid\", key: *** }",
        ),
        (
            &[("LOGSHIP_ES_ENCODED_API_KEY", "pw3")],
            "EncodedApiKey(***)",
        ),
    ];
    for (vars, want) in cases {
        let all = vars
            .iter()
            .copied()
            .chain([("LOGSHIP_ES", "http://a:9200")]);
        let shown = format!("{:?}", EcsBuilder::from_env_vars(all));
        assert!(shown.contains(want), "{want} not in {shown}");
        assert!(!shown.contains("pw"), "{shown}");
    }
}

#[test]
fn key_variables_deliver_to_the_receiver() {
    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("elastic", "s3cret"))
        .start()
        .unwrap();
    let url = es.url();
    let (layer, guard) = EcsBuilder::from_env_vars([
        ("LOGSHIP_ES", url.as_str()),
        ("LOGSHIP_ES_USERNAME", "elastic"),
        ("LOGSHIP_ES_PASSWORD", "s3cret"),
        ("LOGSHIP_ES_INDEX_PREFIX", "fromenv"),
        ("LOGSHIP_ES_INDEX_FREQUENCY", "never"),
        ("LOGSHIP_ES_SERVICE_NAME", "shop"),
    ])
    .build()
    .unwrap();
    layer.log_time_metric("checkout", SystemTime::now(), Duration::from_millis(3));
    guard.flush(Duration::from_secs(30)).unwrap();
    let docs = es.documents_in("fromenv");
    assert_eq!(docs.len(), 1, "{:?}", guard.stats());
    assert_eq!(docs[0].source["service"]["name"], "shop");
}

#[test]
fn bad_unknown_and_missing_variables_fail_at_build_naming_them() {
    let e = EcsBuilder::from_env_vars([
        ("LOGSHIP_ES_GZIP", "maybe"),
        ("LOGSHIP_ES_PASWORD", "hunter2"),
        ("LOGSHIP_ES_CONNECT_TIMEOUT", "10"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    for want in [
        "LOGSHIP_ES is not set",
        "LOGSHIP_ES_GZIP is `maybe`: expected true or false",
        "LOGSHIP_ES_PASWORD is not a variable logship reads",
        "LOGSHIP_ES_PASSWORD",
        "LOGSHIP_ES_CONNECT_TIMEOUT is `10`: expected a whole number with a unit",
    ] {
        assert!(e.contains(want), "{want} not in {e}");
    }
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn half_or_double_authentication_fails_at_build() {
    let e = EcsBuilder::from_env_vars([
        ("LOGSHIP_ES", "http://a:9200"),
        ("LOGSHIP_ES_PASSWORD", "hunter2"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    assert!(e.contains("LOGSHIP_ES_USERNAME"), "{e}");
    let e = EcsBuilder::from_env_vars([
        ("LOGSHIP_ES", "http://a:9200"),
        ("LOGSHIP_ES_BEARER_TOKEN", "hunter2"),
        ("LOGSHIP_ES_ENCODED_API_KEY", "hunter3"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    assert!(e.contains("more than one authentication"), "{e}");
    assert!(!e.contains("hunter"), "{e}");
}

#[test]
fn a_default_config_is_empty() {
    assert!(EcsConfig::default().hosts.is_empty());
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    #[test]
    fn toml_deserializes_and_delivers() {
        let es = EsReceiver::start().unwrap();
        let doc = format!(
            r#"
            hosts = ["{}"]
            index_prefix = "fromtoml"
            index_frequency = "never"
            gzip = true
            connect_timeout = "5s"
            [pipeline]
            linger = "100ms"
            batch_records = 10
            "#,
            es.url()
        );
        let cfg: EcsConfig = toml::from_str(&doc).unwrap();
        let (layer, guard) = cfg.build().unwrap();
        layer.log_time_metric("t", SystemTime::now(), Duration::from_millis(1));
        guard.flush(Duration::from_secs(30)).unwrap();
        assert_eq!(es.documents_in("fromtoml").len(), 1);
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let e = toml::from_str::<EcsConfig>("hosts = [\"http://a:9200\"]\ngzp = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `gzp`"), "{e}");
        let e = toml::from_str::<EcsConfig>("[pipeline]\nlinger_ms = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `linger_ms`"), "{e}");
    }
}
