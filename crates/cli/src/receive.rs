//! `logship receive`: a local development sink printing every record as it arrives.

use std::io::Write;
use std::time::Duration;

use clap::ValueEnum;
use serde_json::{Value as Json, json};

/// Which receiver to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// Fluentd Forward protocol v1 (default port 24224).
    Fluent,
    /// Elasticsearch `_bulk` (default port 9200).
    Es,
    /// Azure Data Explorer streaming/queued ingestion, no auth (default port 8080).
    Kusto,
    /// jKool JESL HTTP, no token required (default port 6580).
    Jkool,
    /// An embedded MQTT 3.1.1 broker, printing every publish (default port 1883).
    Mqtt,
}

const POLL: Duration = Duration::from_millis(200);

fn print(line: &Json) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints the items of `all()` beyond the first `*seen`.
fn print_new<T>(seen: &mut usize, all: Vec<T>, f: impl Fn(&T) -> Json) {
    for item in all.iter().skip(*seen) {
        print(&f(item));
    }
    *seen = (*seen).max(all.len());
}

pub(crate) fn run(kind: Kind, port: Option<u16>) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot start the receiver: {e}");
    match kind {
        Kind::Fluent => {
            let r = logship_testkit::fluent::FluentReceiver::builder()
                .with_port(port.unwrap_or(24224))
                .start()
                .map_err(io)?;
            eprintln!(
                "fluent forward receiver on 127.0.0.1:{} (all four modes, acks answered)",
                r.port()
            );
            let mut seen = 0;
            loop {
                // Only what arrived since the last look is copied (copying every event every
                // 200 ms kept a core 44 % busy once 40 000 events had arrived).
                for e in r.events_since(seen) {
                    seen += 1;
                    print(
                        &json!({"tag": e.tag, "time": e.time.as_nanos(), "mode": format!("{:?}", e.mode), "record": e.record_json()}),
                    );
                }
                std::thread::sleep(POLL);
            }
        }
        Kind::Es => {
            let r = logship_testkit::es::EsReceiver::builder()
                .with_port(port.unwrap_or(9200))
                .start()
                .map_err(io)?;
            eprintln!("elasticsearch _bulk receiver on {}", r.url());
            // Documents come back grouped by index, so a count says nothing about which are
            // new: remember what was printed (index, id, version), and look only when a bulk
            // request arrived since the last look.
            let mut printed: std::collections::HashSet<(String, String, u64)> = Default::default();
            let mut last = (0, 0);
            let mut polls = 0u32;
            loop {
                let now = (r.counters().bulk_requests, r.doc_count());
                polls += 1;
                // Also every 5 s, in case a look fell between a request and its documents.
                if now != last || polls.is_multiple_of(25) {
                    last = now;
                    for d in r.documents() {
                        if printed.insert((d.index.clone(), d.id.clone(), d.version)) {
                            print(&json!({"_index": d.index, "_id": d.id, "_source": d.source}));
                        }
                    }
                }
                std::thread::sleep(POLL);
            }
        }
        Kind::Kusto => {
            let r = logship_testkit::kusto::KustoReceiver::builder()
                .with_port(port.unwrap_or(8080))
                .with_auto_create(true)
                .with_require_auth(false)
                .with_strict_client_headers(false)
                // Lenient like the service is reported to be: JSON streamed without a
                // `mappingName` maps by column name (logship sends one unless `without_mapping()`).
                .with_streaming_identity_mapping(true)
                .start()
                .map_err(io)?;
            eprintln!(
                "kusto receiver on {} (engine, ingest and login endpoint; no auth). Connection string: \
                 \"Data Source={};Initial Catalog=logs;Application Token=dev\" (with --create-table on first use)",
                r.url(),
                r.url()
            );
            let mut seen: std::collections::BTreeMap<(String, String), usize> = Default::default();
            loop {
                // Tables that received rows by streaming ingestion or by queued ingestion.
                let mut tables: std::collections::BTreeSet<(String, String)> = r
                    .streaming_requests()
                    .into_iter()
                    .map(|q| (q.database, q.table))
                    .collect();
                for q in r.queued_ingestions() {
                    let name = |k: &str| q.message.get(k).and_then(Json::as_str).map(String::from);
                    if let (Some(db), Some(table)) = (name("DatabaseName"), name("TableName")) {
                        tables.insert((db, table));
                    }
                }
                for (db, table) in tables {
                    let n = seen.entry((db.clone(), table.clone())).or_default();
                    print_new(
                        n,
                        r.rows_in(&db, &table),
                        |row| json!({"database": db, "table": table, "row": row}),
                    );
                }
                std::thread::sleep(POLL);
            }
        }
        Kind::Jkool => {
            let r = logship_testkit::jkool::JkoolReceiver::builder()
                .with_port(port.unwrap_or(6580))
                .start()
                .map_err(io)?;
            eprintln!("jkool receiver at {} (any token accepted)", r.url());
            let (mut e, mut a, mut s) = (0, 0, 0);
            loop {
                print_new(&mut e, r.events(), |d| json!({"event": d}));
                print_new(&mut a, r.activities(), |d| json!({"activity": d}));
                print_new(&mut s, r.snapshots(), |d| json!({"snapshot": d}));
                std::thread::sleep(POLL);
            }
        }
        Kind::Mqtt => {
            let broker =
                logship_testkit::mqtt::EmbeddedBroker::start(port.unwrap_or(1883)).map_err(io)?;
            let sub =
                logship_testkit::mqtt::MqttSubscriber::start(broker.addr(), "#").map_err(io)?;
            eprintln!(
                "embedded MQTT broker at {} (any credentials); printing every publish",
                broker.url()
            );
            let mut seen = 0;
            loop {
                print_new(&mut seen, sub.messages(), |m| {
                    let payload = serde_json::from_slice::<Json>(&m.payload)
                        .unwrap_or_else(|_| json!(String::from_utf8_lossy(&m.payload)));
                    json!({"topic": m.topic, "payload": payload})
                });
                std::thread::sleep(POLL);
            }
        }
    }
}
