//! `FluentBuilder::from_env_vars` and `FluentConfig`: every documented `LOGSHIP_FLUENT*`
//! variable reaches its setting; the key ones (address, tag, shared key, user, mode) deliver
//! to the testkit receiver through the handshake; malformed and unknown variables fail at
//! `build()` naming them, without a secret's value. The process environment is never touched.
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, addr, receiver};
use logship_fluent::{FluentBuilder, FluentConfig};
use tracing_subscriber::prelude::*;

/// (variable, value, what the builder's `Debug` shows).
const TABLE: &[(&str, &str, &str)] = &[
    ("LOGSHIP_FLUENT", "a:1, b:2", "servers: [\"a:1\", \"b:2\"]"),
    ("LOGSHIP_FLUENT_TAG", "shop", "tag_prefix: \"shop\""),
    (
        "LOGSHIP_FLUENT_TAG_LABEL",
        "field:kind",
        "label: Field(\"kind\")",
    ),
    ("LOGSHIP_FLUENT_ROUND_ROBIN", "true", "round_robin: true"),
    (
        "LOGSHIP_FLUENT_MODE",
        "compressed_packed_forward",
        "mode: CompressedPackedForward",
    ),
    ("LOGSHIP_FLUENT_TIME_FORMAT", "integer", "time: Integer"),
    ("LOGSHIP_FLUENT_REQUIRE_ACK", "false", "require_ack: false"),
    ("LOGSHIP_FLUENT_ACK_TIMEOUT", "45s", "ack_timeout: 45s"),
    (
        "LOGSHIP_FLUENT_CONNECT_TIMEOUT",
        "2s",
        "connect_timeout: 2s",
    ),
    ("LOGSHIP_FLUENT_SHARED_KEY", "k3y", "shared_key: Some(***)"),
    (
        "LOGSHIP_FLUENT_SELF_HOSTNAME",
        "app1",
        "self_hostname: Some(\"app1\")",
    ),
    ("LOGSHIP_FLUENT_USERNAME", "alice", "user: Some(\"alice\")"),
    ("LOGSHIP_FLUENT_PASSWORD", "pw7", "user: Some(\"alice\")"),
    (
        "LOGSHIP_FLUENT_TLS_CA",
        "/etc/fluent/ca.pem",
        "/etc/fluent/ca.pem",
    ),
    ("LOGSHIP_FLUENT_SPAN_STYLE", "flattened", "spans: Flattened"),
    (
        "LOGSHIP_FLUENT_EXCLUDE",
        "thread, file",
        "exclude: [\"thread\", \"file\"]",
    ),
    (
        "LOGSHIP_FLUENT_HOST_NAME",
        "web9",
        "hostname: Some(\"web9\")",
    ),
    (
        "LOGSHIP_FLUENT_MAX_RECORD_BYTES",
        "1MiB",
        "max_record_bytes: 1048576",
    ),
    (
        "LOGSHIP_FLUENT_MAX_COMPRESSED_REQUEST_BYTES",
        "512000",
        "max_compressed_request_bytes: 512000",
    ),
    ("LOGSHIP_FLUENT_CHUNK_BYTES", "1MiB", "chunk_bytes: 1048576"),
    (
        "LOGSHIP_FLUENT_MAX_CHUNKS_IN_FLIGHT",
        "8",
        "max_chunks_in_flight: 8",
    ),
    (
        "LOGSHIP_FLUENT_QUEUE_BYTES",
        "8MiB",
        "max_queue_bytes: 8388608",
    ),
    (
        "LOGSHIP_PIPELINE_DEAD_LETTER_DIR",
        "/tmp/fl-dl",
        "\"/tmp/fl-dl\"",
    ),
];

#[test]
fn every_variable_reaches_its_setting() {
    let shown = format!(
        "{:?}",
        FluentBuilder::from_env_vars(TABLE.iter().map(|(k, v, _)| (*k, *v)))
    );
    let defaults = format!(
        "{:?}",
        FluentBuilder::from_env_vars(std::iter::empty::<(String, String)>())
    );
    for (k, _, want) in TABLE {
        assert!(shown.contains(want), "{k}: `{want}` not in {shown}");
        assert!(
            !defaults.contains(want),
            "{k}: `{want}` is already the default"
        );
    }
    assert!(!shown.contains("k3y") && !shown.contains("pw7"), "{shown}");
    assert!(defaults.contains("tag_prefix: \"logship\""), "{defaults}");
}

#[test]
fn tls_alone_turns_tls_on() {
    let shown = format!(
        "{:?}",
        FluentBuilder::from_env_vars([("LOGSHIP_FLUENT_TLS", "true")])
    );
    assert!(shown.contains("tls: Some(TlsOptions"), "{shown}");
}

#[test]
fn key_variables_deliver_through_the_handshake() {
    let r = receiver()
        .with_shared_key("s3cret")
        .with_user("alice", "pw")
        .start()
        .unwrap();
    let address = addr(&r);
    let (layer, guard) = FluentBuilder::from_env_vars([
        ("LOGSHIP_FLUENT", address.as_str()),
        ("LOGSHIP_FLUENT_TAG", "envapp"),
        ("LOGSHIP_FLUENT_SHARED_KEY", "s3cret"),
        ("LOGSHIP_FLUENT_USERNAME", "alice"),
        ("LOGSHIP_FLUENT_PASSWORD", "pw"),
        ("LOGSHIP_FLUENT_SELF_HOSTNAME", "app-host"),
        ("LOGSHIP_FLUENT_MODE", "forward"),
    ])
    .build()
    .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(target: "orders", "from the environment");
    }
    guard.flush(WAIT).unwrap();
    assert!(r.wait_for_events(1, WAIT));
    let ev = &r.events()[0];
    assert_eq!(ev.tag, "envapp.orders");
    assert_eq!(ev.mode, logship_testkit::fluent::Mode::Forward);
}

#[test]
fn bad_and_unknown_variables_fail_at_build_naming_them() {
    let e = FluentBuilder::from_env_vars([
        ("LOGSHIP_FLUENT_SHARED_KY", "hunter2"),
        ("LOGSHIP_FLUENT_MODE", "packed"),
        ("LOGSHIP_FLUENT_LINGER", "1sec"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    for want in [
        "LOGSHIP_FLUENT_MODE is `packed`: expected message, forward, packed_forward or compressed_packed_forward",
        "LOGSHIP_FLUENT_SHARED_KY is not a variable logship reads",
        "LOGSHIP_FLUENT_SHARED_KEY",
        "LOGSHIP_FLUENT_LINGER is `1sec`",
    ] {
        assert!(e.contains(want), "{want} not in {e}");
    }
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn half_credentials_fail_at_build() {
    let e = FluentBuilder::from_env_vars([
        ("LOGSHIP_FLUENT_SHARED_KEY", "k"),
        ("LOGSHIP_FLUENT_PASSWORD", "hunter2"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    assert!(e.contains("LOGSHIP_FLUENT_USERNAME"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn a_config_filled_in_code_reaches_the_builder() {
    let mut cfg = FluentConfig::default();
    cfg.servers = vec!["h:1".into()];
    cfg.require_ack = Some(false);
    let shown = format!("{:?}", cfg.into_builder());
    assert!(shown.contains("require_ack: false"), "{shown}");
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    #[test]
    fn toml_deserializes_and_delivers() {
        let r = receiver().start().unwrap();
        let doc = format!(
            r#"
            servers = ["{}"]
            tag = "fromtoml"
            mode = "packed_forward"
            ack_timeout = "10s"
            exclude = ["thread"]
            [pipeline]
            linger = "50ms"
            "#,
            addr(&r)
        );
        let cfg: FluentConfig = toml::from_str(&doc).unwrap();
        let (layer, guard) = cfg.build().unwrap();
        {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            tracing::info!(target: "x", "from a file");
        }
        guard.flush(WAIT).unwrap();
        assert!(r.wait_for_events(1, WAIT));
        assert_eq!(r.events()[0].tag, "fromtoml.x");
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let e = toml::from_str::<FluentConfig>("server = [\"h:1\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `server`"), "{e}");
    }
}
