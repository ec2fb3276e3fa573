//! The opt-in call-site columns and Python level names, through the testkit Kusto receiver:
//! the created table has the columns, the rows have the right values, and a user of the
//! original Python `KustoHandler` keeps their table through `kusto_handler_mapping_command`.

mod support;

use std::time::Duration;

use logship_kusto::{IngestionMode, LevelNames, kusto_handler_mapping_command};
use logship_testkit::kusto::KustoReceiver;
use serde_json::{Value, json};
use support::*;
use tracing_subscriber::prelude::*;

/// Emits `warn!`, `info!`, `error!`, `debug!` and `trace!` on a thread named `worker-7`;
/// returns the line of the `warn!`.
fn emit(layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync) -> u32 {
    std::thread::Builder::new()
        .name("worker-7".into())
        .spawn(move || {
            let _d = tracing_subscriber::registry().with(layer).set_default();
            let line = line!() + 1;
            tracing::warn!(order_id = 42_u64, "low stock");
            tracing::info!("info");
            tracing::error!("error");
            tracing::debug!("debug");
            tracing::trace!("trace");
            line
        })
        .expect("spawn")
        .join()
        .expect("thread")
}

fn by_message<'a>(rows: &'a [Value], key: &str, message: &str) -> &'a Value {
    rows.iter()
        .find(|r| r[key] == json!(message))
        .unwrap_or_else(|| panic!("no row with {key} = {message}: {rows:?}"))
}

#[test]
fn call_site_columns_and_python_levels_land_in_their_columns() {
    let r = KustoReceiver::builder()
        .with_database(DB)
        .start()
        .expect("receiver");
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .with_create_table(true)
        .with_call_site_columns(true)
        .with_level_names(LevelNames::Python)
        .build()
        .expect("valid config");
    let line = emit(layer);
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 5, WAIT));
    assert_eq!(guard.stats().delivered, 5);

    // The created table: the 15 columns, then LevelNo, then the call-site columns.
    let mut want: Vec<(String, String)> = SCHEMA
        .iter()
        .map(|(c, t)| (c.to_string(), t.to_string()))
        .collect();
    for (c, t) in [
        ("LevelNo", "int"),
        ("File", "string"),
        ("Line", "int"),
        ("Module", "string"),
        ("ProcessId", "long"),
        ("ThreadName", "string"),
        ("ThreadId", "long"),
    ] {
        want.push((c.to_string(), t.to_string()));
    }
    // With the `opentelemetry` feature, the trace columns last.
    if cfg!(feature = "opentelemetry") {
        want.extend(
            logship_kusto::TRACE_COLUMNS
                .iter()
                .map(|(c, t)| (c.to_string(), t.to_string())),
        );
    }
    assert_eq!(r.columns(DB, TABLE).expect("table exists"), want);

    let rows = r.rows_in(DB, TABLE);
    let warn = by_message(&rows, "Message", "low stock");
    assert_eq!(warn["Level"], json!("WARNING"));
    assert_eq!(warn["LevelNo"], json!(30));
    assert_eq!(warn["File"], json!(file!()));
    assert_eq!(warn["Line"], json!(line));
    assert_eq!(warn["Module"], json!(module_path!()));
    assert_eq!(warn["ProcessId"], json!(std::process::id()));
    assert_eq!(warn["ThreadName"], json!("worker-7"));
    let thread_id = warn["ThreadId"].as_u64().expect("ThreadId is a number");
    assert!(thread_id >= 1);
    assert_eq!(warn["Thread"], json!(format!("worker-7#{thread_id}")));
    assert_eq!(warn["Fields"]["order_id"], json!(42));
    for (message, level, no) in [
        ("info", "INFO", 20),
        ("error", "ERROR", 40),
        ("debug", "DEBUG", 10),
        ("trace", "TRACE", 5),
    ] {
        let row = by_message(&rows, "Message", message);
        assert_eq!(
            (row["Level"].clone(), row["LevelNo"].clone()),
            (json!(level), json!(no))
        );
        assert_eq!(row["ThreadId"], json!(thread_id));
    }
    assert!(
        rows.iter()
            .all(|r| r["Level"] != json!("WARN") && r["Level"] != json!("CRITICAL"))
    );
}

#[test]
fn the_default_layout_has_no_opt_in_columns_and_tracing_level_names() {
    let r = receiver();
    let (layer, guard) = builder(&r)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    emit(layer);
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows(TABLE, 5, WAIT));
    let rows = r.rows_in(DB, TABLE);
    assert_eq!(
        by_message(&rows, "Message", "low stock")["Level"],
        json!("WARN")
    );
    // The default mapping, into the 15-column table (the keys of a row: encode.rs unit tests).
    let req = r.last_streaming_request().expect("a request");
    assert_eq!(req.mapping_name.as_deref(), Some("logship_v1"));
    assert_eq!(
        r.columns(DB, TABLE).map(|c| c.len()),
        Some(15),
        "the table is the 15-column one"
    );
}

/// The table the original `KustoHandler`'s README asked its users to create, as they ran it.
const KUSTO_HANDLER_TABLE: &str = ".create table PythonLogs (name:string, msg:string, args:string, \
    levelname:string, levelno:int32, pathname:string, filename:string, module:string, \
    exc_info:string, exc_text:string, stack_info:string, lineno:int32, funcName:string, \
    created:datetime, msecs:real, relativeCreated:datetime, thread:long, threadName:string, \
    processName:string, process:long, message:string, asctime:datetime, extra:dynamic)";

#[test]
fn a_kusto_handler_table_is_kept_with_its_mapping() {
    let r = KustoReceiver::builder()
        .with_database(DB)
        .with_command(DB, KUSTO_HANDLER_TABLE)
        .with_command(
            DB,
            &kusto_handler_mapping_command("PythonLogs", "kusto_handler"),
        )
        .start()
        .expect("receiver");
    let (layer, guard) = builder(&r)
        .with_table("PythonLogs")
        .with_mapping_name("kusto_handler")
        .with_call_site_columns(true)
        .with_level_names(LevelNames::Python)
        .with_ingestion_mode(IngestionMode::Streaming)
        .build()
        .expect("valid config");
    let line = emit(layer);
    guard.flush(Duration::from_secs(10)).expect("flushed");
    assert!(r.wait_for_rows("PythonLogs", 5, WAIT));
    let rows = r.rows_in(DB, "PythonLogs");
    let warn = by_message(&rows, "msg", "low stock");
    assert_eq!(warn["message"], json!("low stock"));
    assert_eq!(warn["name"], json!(module_path!()), "name is the target");
    assert_eq!(warn["levelname"], json!("WARNING"));
    assert_eq!(warn["levelno"], json!(30));
    assert_eq!(warn["pathname"], json!(file!()));
    assert_eq!(warn["lineno"], json!(line));
    assert_eq!(warn["module"], json!(module_path!()));
    assert_eq!(warn["process"], json!(std::process::id()));
    assert_eq!(warn["threadName"], json!("worker-7"));
    assert!(warn["thread"].as_i64().is_some_and(|t| t >= 1), "{warn}");
    assert_eq!(warn["extra"], json!({"order_id": 42}));
    assert!(
        warn["created"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{warn}"
    );
    // What logship cannot fill stays empty.
    for empty in [
        "args",
        "filename",
        "exc_info",
        "exc_text",
        "stack_info",
        "funcName",
        "msecs",
        "relativeCreated",
        "processName",
        "asctime",
    ] {
        assert_eq!(warn[empty], Value::Null, "{empty}: {warn}");
    }
    assert_eq!(guard.stats().delivered, 5);
}

#[test]
fn the_migration_guide_shows_the_commands_the_crate_gives() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/kusto.md"))
        .expect("docs/kusto.md");
    let mapping = kusto_handler_mapping_command("PythonLogs", "kusto_handler");
    assert!(
        doc.contains(&mapping),
        "docs/kusto.md must show:\n{mapping}"
    );
    assert!(doc.contains("## Migrating from KustoHandler"));
    assert!(doc.contains("## Compared with the original"));
    // The old table as the guide shows it is the one this file's test creates.
    let normalize = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        normalize(&doc).contains(&normalize(KUSTO_HANDLER_TABLE)),
        "the guide's .create table differs from KUSTO_HANDLER_TABLE"
    );
}
