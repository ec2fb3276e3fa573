//! `PipelineBuilder::from_env_vars` / `apply_env` and `PipelineConfig`: every documented
//! variable reaches its setting; malformed and unknown variables fail at `build()` naming them.
//! The process environment is never touched: the inner function takes (name, value) pairs.

use std::time::Duration;

use logship_core::testing::MemorySink;
use logship_core::{EnvVars, PipelineBuilder};

/// (variable suffix, value, what the builder's `Debug` shows for it).
const TABLE: &[(&str, &str, &str)] = &[
    ("QUEUE_RECORDS", "5000", "max_queue_records: 5000"),
    ("QUEUE_BYTES", "16MiB", "max_queue_bytes: 16777216"),
    ("BATCH_RECORDS", "250", "max_batch_records: 250"),
    ("BATCH_BYTES", "1MB", "max_batch_bytes: 1000000"),
    ("LINGER", "200ms", "linger: 200ms"),
    ("FLUSH_LEVEL", "warn", "flush_level: Some(Level(Warn))"),
    ("OVERFLOW", "block:10ms", "overflow: Block(10ms)"),
    ("SEND_TIMEOUT", "20s", "send_timeout: 20s"),
    ("STALL_THRESHOLD", "3s", "stall_threshold: Some(3s)"),
    ("SHUTDOWN_TIMEOUT", "2s", "shutdown_timeout: 2s"),
    ("RETRY_MAX_ATTEMPTS", "4", "max_attempts: Some(4)"),
    ("RETRY_MAX_ELAPSED", "0s", "max_elapsed: None"),
    ("RETRY_INITIAL_DELAY", "50ms", "initial: 50ms"),
    ("RETRY_MAX_DELAY", "2m", "max_delay: 120s"),
    (
        "SPOOL_DIR",
        "/tmp/logship-spool-x",
        "dir: \"/tmp/logship-spool-x\"",
    ),
    ("SPOOL_MAX_BYTES", "1GiB", "max_bytes: 1073741824"),
    (
        "DEAD_LETTER_DIR",
        "/tmp/logship-dl-x",
        "\"/tmp/logship-dl-x\", 4096",
    ),
    (
        "DEAD_LETTER_MAX_BYTES",
        "4096",
        "\"/tmp/logship-dl-x\", 4096",
    ),
    ("EVENTS", "false", "events: false"),
    ("SPAN_TIMINGS", "off", "span_timings: false"),
    (
        "SOURCE_FQN",
        "APPL=shop#SERVER=web1",
        "APPL=shop#SERVER=web1",
    ),
    ("LOSS_SUMMARY", "no", "loss_summary: false"),
];

#[test]
fn every_pipeline_variable_reaches_its_setting() {
    let vars: Vec<(String, String)> = TABLE
        .iter()
        .map(|(k, v, _)| (format!("LOGSHIP_PIPELINE_{k}"), (*v).to_string()))
        .collect();
    let shown = format!("{:?}", PipelineBuilder::from_env_vars(vars));
    let defaults = format!("{:?}", PipelineBuilder::new());
    for (k, _, want) in TABLE {
        assert!(shown.contains(want), "{k}: `{want}` not in {shown}");
        assert!(
            !defaults.contains(want),
            "{k}: `{want}` is already the default"
        );
    }
}

#[test]
fn the_backend_variable_overrides_the_shared_one() {
    let mut env = EnvVars::from_pairs(
        "ES",
        [
            ("LOGSHIP_PIPELINE_LINGER", "5s"),
            ("LOGSHIP_PIPELINE_BATCH_RECORDS", "300"),
            ("LOGSHIP_ES_LINGER", "250ms"),
        ],
    );
    let p = PipelineBuilder::new().apply_env(&mut env);
    env.finish().unwrap();
    assert_eq!(p.linger(), Duration::from_millis(250));
    assert!(format!("{p:?}").contains("max_batch_records: 300"));
}

#[test]
fn malformed_and_unknown_variables_fail_at_build_naming_them() {
    let p = PipelineBuilder::from_env_vars([
        ("LOGSHIP_PIPELINE_LINGER", "5"),
        ("LOGSHIP_PIPELINE_QUEUE_RECORD", "10"),
        ("LOGSHIP_PIPELINE_SEND_TIMEOUT", "10s"),
    ]);
    let (sink, _) = MemorySink::new();
    let e = p.build(sink).unwrap_err().to_string();
    assert!(
        e.contains("LOGSHIP_PIPELINE_LINGER is `5`: expected a whole number with a unit"),
        "{e}"
    );
    assert!(
        e.contains("LOGSHIP_PIPELINE_QUEUE_RECORD is not a variable logship reads"),
        "{e}"
    );
    assert!(
        e.contains("LOGSHIP_PIPELINE_QUEUE_RECORDS"),
        "the known list: {e}"
    );
    assert!(!e.contains("SEND_TIMEOUT is"), "{e}");
}

#[test]
fn a_cap_without_its_folder_fails_at_build() {
    let (sink, _) = MemorySink::new();
    let e = PipelineBuilder::from_env_vars([("LOGSHIP_PIPELINE_SPOOL_MAX_BYTES", "1MiB")])
        .build(sink)
        .unwrap_err()
        .to_string();
    assert!(e.contains("spool_dir"), "{e}");
}

#[test]
fn good_variables_build_and_deliver() {
    let (sink, received) = MemorySink::new();
    let (layer, guard) = PipelineBuilder::from_env_vars([
        ("LOGSHIP_PIPELINE_BATCH_RECORDS", "2"),
        ("LOGSHIP_PIPELINE_SOURCE_FQN", "APPL=envtest"),
        ("HOME", "/root"),
    ])
    .build(sink)
    .unwrap();
    use tracing_subscriber::prelude::*;
    let sub = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(sub, || tracing::info!("hello"));
    guard.flush(Duration::from_secs(30)).unwrap();
    let r = received.records();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].source_fqn().map(|f| f.as_str()), Some("APPL=envtest"));
}

#[cfg(feature = "serde")]
mod serde_config {
    use logship_core::PipelineConfig;

    #[test]
    fn toml_deserializes_and_builds() {
        let doc = r#"
            batch_records = 500
            linger = "200ms"
            flush_level = "off"
            queue_bytes = "16MiB"
            overflow = "drop_oldest"
            retry_max_attempts = 0
        "#;
        let cfg: PipelineConfig = toml::from_str(doc).unwrap();
        let shown = format!("{:?}", cfg.into_builder());
        for want in [
            "max_batch_records: 500",
            "linger: 200ms",
            "flush_level: None",
            "max_queue_bytes: 16777216",
            "overflow: DropOldest",
            "max_attempts: None",
        ] {
            assert!(shown.contains(want), "{want} not in {shown}");
        }
    }

    #[test]
    fn an_unknown_key_fails_naming_it() {
        let e = toml::from_str::<PipelineConfig>("batch_record = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `batch_record`"), "{e}");
        let e = serde_json::from_str::<PipelineConfig>(r#"{"linger": "5"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`5`: expected a whole number with a unit"),
            "{e}"
        );
    }

    #[test]
    fn sizes_are_numbers_or_text_with_a_unit() {
        let cfg: PipelineConfig =
            serde_json::from_str(r#"{"queue_bytes": 2048, "batch_bytes": "1KiB"}"#).unwrap();
        assert_eq!((cfg.queue_bytes, cfg.batch_bytes), (Some(2048), Some(1024)));
        let e = serde_json::from_str::<PipelineConfig>(r#"{"queue_bytes": "4 furlongs"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`4 furlongs`: expected a whole number of bytes"),
            "{e}"
        );
        let e = serde_json::from_str::<PipelineConfig>(r#"{"queue_bytes": true}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a number of bytes or text"), "{e}");
    }
}
