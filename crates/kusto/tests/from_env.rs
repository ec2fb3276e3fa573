//! `KustoBuilder::from_env_vars` and `KustoConfig`: every documented `LOGSHIP_KUSTO*` variable
//! reaches its setting; the key ones (connection string, application key, table, login
//! endpoint) deliver rows to the testkit receiver; malformed, unknown and missing variables
//! fail at `build()` naming them, without a secret's value. The process environment is never
//! touched.

mod support;

use logship_kusto::{KustoBuilder, KustoConfig};
use logship_testkit::kusto::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use support::*;
use tracing_subscriber::prelude::*;

const CS: &str = "Data Source=https://help.kusto.windows.net;Initial Catalog=db1;AAD Federated Security=True;Application Client Id=cid;Authority Id=contoso";

/// (variable, value, what the builder's `Debug` shows).
const TABLE_VARS: &[(&str, &str, &str)] = &[
    ("LOGSHIP_KUSTO", CS, "database: Some(\"db1\")"),
    (
        "LOGSHIP_KUSTO_APP_KEY",
        "k3y",
        "ApplicationKey { client_id: \"cid\", key: \"***\", tenant: \"contoso\" }",
    ),
    (
        "LOGSHIP_KUSTO_CLUSTER",
        "https://other.kusto.windows.net",
        "cluster: Some(\"https://other.kusto.windows.net\")",
    ),
    (
        "LOGSHIP_KUSTO_INGEST_ENDPOINT",
        "https://ingest-x.kusto.windows.net",
        "ingest_endpoint: Some(\"https://ingest-x.kusto.windows.net\")",
    ),
    ("LOGSHIP_KUSTO_TABLE", "Logs", "table: Some(\"Logs\")"),
    ("LOGSHIP_KUSTO_MAPPING_NAME", "m2", "mapping: Some(\"m2\")"),
    ("LOGSHIP_KUSTO_INGESTION_MODE", "queued", "mode: Queued"),
    ("LOGSHIP_KUSTO_CREATE_TABLE", "true", "create_table: true"),
    ("LOGSHIP_KUSTO_CALL_SITE_COLUMNS", "true", "call_site: true"),
    ("LOGSHIP_KUSTO_LEVEL_NAMES", "python", "Python"),
    (
        "LOGSHIP_KUSTO_LOGIN_ENDPOINT",
        "https://login.microsoftonline.us",
        "login_endpoint: Some(\"https://login.microsoftonline.us\")",
    ),
    (
        "LOGSHIP_KUSTO_SERVICE_NAME",
        "shop",
        "service: Some(\"shop\")",
    ),
    ("LOGSHIP_KUSTO_HOST_NAME", "web1", "host: Some(\"web1\")"),
    ("LOGSHIP_KUSTO_APP_NAME", "myapp", "app: Some(\"myapp\")"),
    ("LOGSHIP_KUSTO_USER_NAME", "ann", "user: Some(\"ann\")"),
    (
        "LOGSHIP_KUSTO_MAX_REQUEST_BYTES",
        "1MiB",
        "max_request_bytes: 1048576",
    ),
    (
        "LOGSHIP_KUSTO_MAX_REPLY_BYTES",
        "2MiB",
        "max_reply_bytes: 2097152",
    ),
    (
        "LOGSHIP_KUSTO_FALLBACK_AFTER_ATTEMPTS",
        "5",
        "fallback_after_attempts: 5",
    ),
    (
        "LOGSHIP_KUSTO_REQUEST_TIMEOUT",
        "45s",
        "request_timeout: 45s",
    ),
    ("LOGSHIP_KUSTO_CONNECT_TIMEOUT", "4s", "connect_timeout: 4s"),
    (
        "LOGSHIP_KUSTO_TLS_CA",
        "/etc/kusto/ca.pem",
        "/etc/kusto/ca.pem",
    ),
    (
        "LOGSHIP_KUSTO_FLUSH_LEVEL",
        "warn",
        "flush_level: Some(Level(Warn))",
    ),
    (
        "LOGSHIP_PIPELINE_QUEUE_RECORDS",
        "70000",
        "max_queue_records: 70000",
    ),
];

#[test]
fn every_variable_reaches_its_setting() {
    let shown = format!(
        "{:?}",
        KustoBuilder::from_env_vars(TABLE_VARS.iter().map(|(k, v, _)| (*k, *v)))
    );
    let defaults = format!(
        "{:?}",
        KustoBuilder::from_env_vars([("LOGSHIP_KUSTO_TABLE", "T")])
    );
    for (k, _, want) in TABLE_VARS {
        assert!(shown.contains(want), "{k}: `{want}` not in {shown}");
        assert!(
            !defaults.contains(want),
            "{k}: `{want}` is already the default"
        );
    }
    assert!(!shown.contains("k3y"), "{shown}");
}

#[test]
fn managed_identity_and_token_reach_their_setting() {
    for (v, want) in [
        (
            ("LOGSHIP_KUSTO_MANAGED_IDENTITY", "system"),
            "ManagedIdentity { client_id: None",
        ),
        (
            ("LOGSHIP_KUSTO_MANAGED_IDENTITY", "abc"),
            "ManagedIdentity { client_id: Some(\"abc\")",
        ),
        (("LOGSHIP_KUSTO_TOKEN", "t0k"), "Static(***)"),
    ] {
        let shown = format!(
            "{:?}",
            KustoBuilder::from_env_vars([v, ("LOGSHIP_KUSTO_TABLE", "T")])
        );
        assert!(shown.contains(want), "{want} not in {shown}");
        assert!(!shown.contains("t0k"));
    }
}

#[test]
fn key_variables_deliver_rows() {
    let r = receiver();
    let cs = format!(
        "Data Source={};Initial Catalog={DB};AAD Federated Security=True;Application Client Id={DEFAULT_CLIENT_ID};Authority Id=contoso",
        r.url()
    );
    let url = r.url();
    let (layer, guard) = KustoBuilder::from_env_vars([
        ("LOGSHIP_KUSTO", cs.as_str()),
        ("LOGSHIP_KUSTO_APP_KEY", DEFAULT_CLIENT_SECRET),
        ("LOGSHIP_KUSTO_TABLE", TABLE),
        ("LOGSHIP_KUSTO_LOGIN_ENDPOINT", url),
        ("LOGSHIP_KUSTO_INGESTION_MODE", "streaming"),
        ("LOGSHIP_KUSTO_SERVICE_NAME", "shop"),
        ("LOGSHIP_KUSTO_LINGER", "50ms"),
    ])
    .build()
    .expect("valid config");
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::warn!("from the environment");
    }
    guard.flush(WAIT).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 1, WAIT));
    let rows = r.rows_in(DB, TABLE);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Message"], "from the environment");
    assert_eq!(rows[0]["Service"], "shop");
}

#[test]
fn bad_unknown_and_missing_variables_fail_at_build_naming_them() {
    let e = KustoBuilder::from_env_vars([
        ("LOGSHIP_KUSTO", CS),
        ("LOGSHIP_KUSTO_APPKEY", "hunter2"),
        ("LOGSHIP_KUSTO_INGESTION_MODE", "fast"),
        ("LOGSHIP_KUSTO_REQUEST_TIMEOUT", "30"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    for want in [
        "LOGSHIP_KUSTO_TABLE is not set",
        "LOGSHIP_KUSTO_INGESTION_MODE is `fast`: expected managed, streaming or queued",
        "LOGSHIP_KUSTO_APPKEY is not a variable logship reads",
        "LOGSHIP_KUSTO_APP_KEY",
        "LOGSHIP_KUSTO_REQUEST_TIMEOUT is `30`",
    ] {
        assert!(e.contains(want), "{want} not in {e}");
    }
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn a_bad_connection_string_and_double_credentials_fail_at_build() {
    let e = KustoBuilder::from_env_vars([
        (
            "LOGSHIP_KUSTO",
            "Data Source=x;Application Key=hunter2;Bogus Keyword=1",
        ),
        ("LOGSHIP_KUSTO_TABLE", "T"),
    ])
    .build()
    .unwrap_err();
    assert!(
        matches!(e, logship_kusto::KustoError::ConnectionString(_)),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("hunter2"));
    let e = KustoBuilder::from_env_vars([
        ("LOGSHIP_KUSTO", CS),
        ("LOGSHIP_KUSTO_APP_KEY", "hunter2"),
        ("LOGSHIP_KUSTO_TOKEN", "hunter3"),
        ("LOGSHIP_KUSTO_TABLE", "T"),
    ])
    .build()
    .unwrap_err()
    .to_string();
    assert!(e.contains("more than one kind of credentials"), "{e}");
    assert!(!e.contains("hunter"), "{e}");
}

#[cfg(feature = "serde")]
mod serde_config {
    use super::*;

    #[test]
    fn toml_deserializes_and_builds() {
        let doc = format!(
            r#"
            connection_string = "{CS}"
            application_key = "k3y"
            table = "Logs"
            ingestion_mode = "streaming"
            request_timeout = "20s"
            [pipeline]
            batch_records = 100
            "#
        );
        let cfg: KustoConfig = toml::from_str(&doc).unwrap();
        assert!(!format!("{cfg:?}").contains("k3y"));
        let shown = format!("{:?}", cfg.into_builder());
        for want in [
            "mode: Streaming",
            "request_timeout: 20s",
            "max_batch_records: 100",
            "table: Some(\"Logs\")",
        ] {
            assert!(shown.contains(want), "{want} not in {shown}");
        }
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let e = toml::from_str::<KustoConfig>("tabel = \"Logs\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `tabel`"), "{e}");
    }
}

#[test]
fn a_config_filled_in_code_reaches_the_builder() {
    let mut cfg = KustoConfig::default();
    cfg.table = Some("Audit".into());
    cfg.token = Some("t0k".into());
    let shown = format!("{:?}", cfg.into_builder());
    assert!(shown.contains("table: Some(\"Audit\")"), "{shown}");
    assert!(shown.contains("Static(***)"), "{shown}");
}
