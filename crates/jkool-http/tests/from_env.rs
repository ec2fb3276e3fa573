//! `JkoolHttpBuilder::from_env_vars` and `JkoolHttpConfig`: every documented `LOGSHIP_JKOOL*`
//! variable reaches its setting; the key ones (token, URL) deliver to the testkit receiver;
//! malformed, unknown and missing variables fail at `build()` naming them, without the token.
//! The process environment is never touched.

use std::time::Duration;

use logship_jkool_http::{JkoolHttpBuilder, JkoolHttpConfig};
use logship_testkit::jkool::JkoolReceiver;
use tracing_subscriber::prelude::*;

/// (variable, value, what the builder's `Debug` shows).
const TABLE: &[(&str, &str, &str)] = &[
    ("LOGSHIP_JKOOL_TOKEN", "t0k", "token: ***"),
    (
        "LOGSHIP_JKOOL_URL",
        "https://jk.example/JESL",
        "base_url: \"https://jk.example/JESL\"",
    ),
    ("LOGSHIP_JKOOL_AUTH", "handshake", "auth: Handshake"),
    ("LOGSHIP_JKOOL_BODY_SHAPE", "array", "body_shape: Array"),
    (
        "LOGSHIP_JKOOL_MAX_REQUESTS_IN_FLIGHT",
        "3",
        "max_in_flight: 3",
    ),
    (
        "LOGSHIP_JKOOL_MAX_REQUEST_RECORDS",
        "42",
        "max_request_records: 42,",
    ),
    (
        "LOGSHIP_JKOOL_MAX_REQUEST_BYTES",
        "4MiB",
        "max_request_bytes: 4194304",
    ),
    (
        "LOGSHIP_JKOOL_MAX_DOCUMENT_BYTES",
        "64KiB",
        "max_document_bytes: 65536",
    ),
    (
        "LOGSHIP_JKOOL_MAX_REPLY_BYTES",
        "2MiB",
        "max_reply_bytes: 2097152",
    ),
    ("LOGSHIP_JKOOL_GZIP", "on", "gzip: true"),
    ("LOGSHIP_JKOOL_CONNECT_TIMEOUT", "7s", "connect_timeout: 7s"),
    (
        "LOGSHIP_JKOOL_SNAPSHOT_PLACEMENT",
        "separate",
        "snapshots: Separate",
    ),
    ("LOGSHIP_JKOOL_TLS_CA", "/etc/jk/ca.pem", "/etc/jk/ca.pem"),
    ("LOGSHIP_JKOOL_BATCH_RECORDS", "20", "max_batch_records: 20"),
    (
        "LOGSHIP_PIPELINE_SHUTDOWN_TIMEOUT",
        "9s",
        "shutdown_timeout: 9s",
    ),
];

#[test]
fn every_variable_reaches_its_setting() {
    let shown = format!(
        "{:?}",
        JkoolHttpBuilder::from_env_vars(TABLE.iter().map(|(k, v, _)| (*k, *v)))
    );
    let defaults = format!(
        "{:?}",
        JkoolHttpBuilder::from_env_vars([("LOGSHIP_JKOOL_TOKEN", "x")])
    );
    for (k, _, want) in &TABLE[1..] {
        assert!(shown.contains(want), "{k}: `{want}` not in {shown}");
        assert!(
            !defaults.contains(want),
            "{k}: `{want}` is already the default"
        );
    }
    assert!(
        shown.contains(TABLE[0].2) && !shown.contains("t0k"),
        "{shown}"
    );
}

#[test]
fn key_variables_deliver() {
    let jk = JkoolReceiver::builder()
        .with_token("tok")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let url = jk.url();
    let (layer, guard) = JkoolHttpBuilder::from_env_vars([
        ("LOGSHIP_JKOOL_TOKEN", "tok"),
        ("LOGSHIP_JKOOL_URL", url.as_str()),
        ("LOGSHIP_JKOOL_SOURCE_FQN", "APPL=envshop"),
    ])
    .build()
    .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::warn!("from the environment");
    }
    guard
        .flush(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(jk.wait_for(1, Duration::from_secs(10)));
    let events = jk.events();
    assert_eq!(events.len(), 1, "{:?}", jk.rejections());
    assert_eq!(events[0]["source-fqn"], "APPL=envshop");
}

#[test]
fn bad_unknown_and_missing_variables_fail_at_build_naming_them() {
    let Err(e) = JkoolHttpBuilder::from_env_vars([
        ("LOGSHIP_JKOOL_TOKN", "hunter2"),
        ("LOGSHIP_JKOOL_AUTH", "bearer"),
        ("LOGSHIP_PIPELINE_LINGER", "1"),
    ])
    .build() else {
        panic!("built")
    };
    let e = e.to_string();
    for want in [
        "LOGSHIP_JKOOL_TOKEN is not set",
        "LOGSHIP_JKOOL_AUTH is `bearer`: expected token_header, api_key_header or handshake",
        "LOGSHIP_JKOOL_TOKN is not a variable logship reads",
        "LOGSHIP_PIPELINE_LINGER is `1`",
    ] {
        assert!(e.contains(want), "{want} not in {e}");
    }
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn a_config_filled_in_code_reaches_the_builder() {
    let mut cfg = JkoolHttpConfig::default();
    cfg.token = Some("t0k".into());
    cfg.gzip = Some(true);
    let shown = format!("{:?}", cfg.into_builder());
    assert!(
        shown.contains("gzip: true") && !shown.contains("t0k"),
        "{shown}"
    );
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    #[test]
    fn toml_deserializes_and_delivers() {
        let jk = JkoolReceiver::builder()
            .with_token("tok")
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        let doc = format!(
            r#"
            token = "tok"
            url = "{}"
            connect_timeout = "5s"
            [pipeline]
            linger = "50ms"
            "#,
            jk.url()
        );
        let cfg: JkoolHttpConfig = toml::from_str(&doc).unwrap_or_else(|e| panic!("{e}"));
        let (layer, guard) = cfg.build().unwrap_or_else(|e| panic!("{e}"));
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            tracing::info!("from a file");
        }
        guard
            .flush(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(jk.wait_for(1, Duration::from_secs(10)));
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let Err(e) = toml::from_str::<JkoolHttpConfig>("token = \"t\"\nurll = \"x\"") else {
            panic!("parsed")
        };
        assert!(e.to_string().contains("unknown field `urll`"), "{e}");
    }
}
