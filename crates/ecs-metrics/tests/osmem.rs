//! Against a real third-party OpenSearch-API server, osmem-server (PyPI `osmem-server`), when
//! `LOGSHIP_OSMEM` names its binary: spans are shipped, read back with `_search` and `_doc`,
//! land in the right indices with the installed template's mapping, and a lost reply (a proxy
//! drops the first response) is retried without leaving duplicates.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use logship_ecs_metrics::EcsLayer;
use serde_json::Value;
use tracing_subscriber::prelude::*;

use common::{WAIT, fast};

struct Osmem {
    child: Child,
    url: String,
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn osmem(test: &str) -> Option<Osmem> {
    let bin = match std::env::var_os("LOGSHIP_OSMEM") {
        Some(p) if std::path::Path::new(&p).is_file() => p,
        _ => {
            logship_testkit::peers::missing(test, "osmem-server (LOGSHIP_OSMEM)");
            return None;
        }
    };
    let mut child = Command::new(bin)
        .args(["-addr", "127.0.0.1:0", "-no-stdin-watch", "-parent-pid"])
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first stdout line is `{"url": "http://127.0.0.1:PORT", ...}`.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    Some(Osmem {
        child,
        url: info["url"].as_str().unwrap().to_string(),
    })
}

fn get(url: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let text = agent
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A TCP proxy to `upstream` that swallows the response on its first connection and closes
/// it, like a reply lost in the network after the server indexed the request.
fn lossy_proxy(upstream: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_string();
    let first = Arc::new(AtomicBool::new(true));
    std::thread::spawn(move || {
        for client in listener.incoming().take(16) {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                return;
            };
            let drop_reply = first.swap(false, Ordering::SeqCst);
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                if drop_reply {
                    let mut buf = [0u8; 4096];
                    let _ = s_in.read(&mut buf);
                    let _ = c_out.shutdown(Shutdown::Both);
                    let _ = s_in.shutdown(Shutdown::Both);
                } else {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.flush();
                    let _ = c_out.shutdown(Shutdown::Both);
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tracing::instrument]
fn handle_request(id: u64) {
    let _db = tracing::info_span!("db_query", table = "orders").entered();
}

#[test]
fn spans_reach_osmem_and_retries_leave_no_duplicates() {
    let Some(os) = osmem("spans_reach_osmem_and_retries_leave_no_duplicates") else {
        return;
    };
    // The template goes straight to osmem; the spans through a proxy that loses the first
    // reply.
    let template_layer = EcsLayer::builder(os.url.as_str())
        .with_index_prefix("osmem-metrics")
        .with_install_template(true)
        .build()
        .unwrap();
    drop(template_layer);
    let proxy = lossy_proxy(&os.url);
    let (layer, guard) = EcsLayer::builder(proxy.as_str())
        .with_index_prefix("osmem-metrics")
        .with_service_name("shop")
        .with_gzip(true)
        .with_pipeline(|p| fast(p).with_send_timeout(Duration::from_secs(5)))
        .build()
        .unwrap();
    // 2024-01-01T00:00:00.5Z and the day before.
    let day2 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_704_067_200_500);
    let day1 = day2 - Duration::from_secs(86_400);
    layer.log_time_metric("yesterday", day1, Duration::from_micros(250));
    layer.log_time_metric("today", day2, Duration::from_micros(750));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..3 {
            handle_request(i);
        }
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 8, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");

    // Documents by index, read back through the search API.
    let found = |index: &str| -> Vec<Value> {
        let r = get(&format!("{}/{index}/_search?size=100", os.url));
        r["hits"]["hits"].as_array().cloned().unwrap_or_default()
    };
    let d1 = found("osmem-metrics-2023.12.31");
    let d2 = found("osmem-metrics-2024.01.01");
    assert_eq!(d1.len(), 1, "{d1:?}");
    assert_eq!(d2.len(), 1, "{d2:?}");
    assert_eq!(d1[0]["_source"]["metrics"]["name"], "yesterday");
    assert_eq!(d1[0]["_source"]["event"]["duration"], 250_000);
    assert_eq!(
        d2[0]["_source"]["event"]["end"],
        "2024-01-01T00:00:00.500750000Z"
    );
    let all = found("osmem-metrics-*");
    assert_eq!(
        all.len(),
        8,
        "no duplicates after the retried request: {all:#?}"
    );
    let names: Vec<&str> = all
        .iter()
        .filter_map(|h| h["_source"]["metrics"]["name"].as_str())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "handle_request").count(), 3);
    assert_eq!(names.iter().filter(|n| **n == "db_query").count(), 3);
    // _id names the record (not its tracking id, which is `event.id`); GET by id finds it.
    let one = &d2[0];
    assert_ne!(one["_id"], one["_source"]["event"]["id"]);
    let got = get(&format!(
        "{}/osmem-metrics-2024.01.01/_doc/{}",
        os.url,
        one["_id"].as_str().unwrap()
    ));
    assert_eq!(got["found"], true);
    assert_eq!(got["_source"]["service"]["name"], "shop");
    // The template's mapping applies.
    let mapping = get(&format!("{}/osmem-metrics-2024.01.01/_mapping", os.url));
    let props = &mapping["osmem-metrics-2024.01.01"]["mappings"]["properties"];
    assert_eq!(props["@timestamp"]["type"], "date_nanos");
    assert_eq!(props["event"]["properties"]["duration"]["type"], "long");
    // The lost reply was retried, and the retry's copies were refused as duplicates.
    assert!(stats.retries >= 1, "{stats:?}");
    assert!(stats.duplicates >= 1, "{stats:?}");
}

#[test]
fn events_sharing_a_tracking_id_are_separate_documents_in_osmem() {
    let Some(os) = osmem("events_sharing_a_tracking_id_are_separate_documents_in_osmem") else {
        return;
    };
    let (layer, guard) = EcsLayer::builder(os.url.as_str())
        .with_index_prefix("osmem-ids")
        .with_index_frequency(logship_ecs_metrics::IndexFrequency::Never)
        .with_log_events(true)
        .with_host_fields(false)
        .with_pipeline(fast)
        .build()
        .unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for step in ["placed", "paid", "shipped"] {
            tracing::info!(tracking_id = "order-42", step, "order event");
        }
        tracing::info!(tracking_id = "", "no tracking id");
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 4, "{stats:?}");
    assert_eq!(stats.duplicates, 0, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");
    let hits = get(&format!("{}/osmem-ids/_search?size=100", os.url))["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hits.len(), 4, "{hits:#?}");
    let order = hits
        .iter()
        .filter(|h| h["_source"]["event"]["id"] == "order-42")
        .count();
    assert_eq!(order, 3, "{hits:#?}");
    assert!(
        hits.iter()
            .any(|h| h["_source"]["message"] == "no tracking id"
                && h["_source"]["event"].get("id").is_none())
    );
}

#[test]
fn a_conflict_on_a_first_attempt_in_osmem_is_rejected() {
    let Some(os) = osmem("a_conflict_on_a_first_attempt_in_osmem_is_rejected") else {
        return;
    };
    // A first attempt meeting a document another writer stored under the same `_id`: the same
    // record is sent by two layers (two writers) in turn; the second has never sent it, so
    // its 409 is a rejection naming the conflict, not a duplicate. (The 409 of a retry is in
    // `spans_reach_osmem_and_retries_leave_no_duplicates`: counted as delivered.)
    let record_once = |url: &str| {
        EcsLayer::builder(url)
            .with_index_prefix("osmem-conflict")
            .with_index_frequency(logship_ecs_metrics::IndexFrequency::Never)
            .with_host_fields(false)
            .with_pipeline(fast)
            .build()
            .unwrap()
    };
    let (first, g1) = record_once(&os.url);
    let (second, g2) = record_once(&os.url);
    let record = logship_core::Record::span_timing(
        "shared",
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        Duration::from_millis(3),
    )
    .with_tracking_id(logship_core::TrackingId::Custom("job-7".into()))
    .build();
    first.handle().submit(record.clone());
    g1.flush(WAIT).unwrap();
    assert_eq!(g1.stats().delivered, 1, "{:?}", g1.stats());
    second.handle().submit(record);
    g2.flush(WAIT).unwrap();
    let s = g2.stats();
    assert_eq!(
        (s.delivered, s.duplicates, s.undelivered_rejected),
        (0, 0, 1),
        "{s:?}"
    );
    let why = s.last_error.unwrap_or_default();
    assert!(why.contains("item 409") && why.contains("`_id`"), "{why}");
    let hits = get(&format!("{}/osmem-conflict/_search?size=10", os.url))["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hits.len(), 1, "{hits:#?}");
}
