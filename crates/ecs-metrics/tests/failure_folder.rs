//! Undelivered documents go to the failure folder as `_bulk` NDJSON files with portable
//! names, and replaying the folder delivers them without duplicates.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_ecs_metrics::EcsLayer;
use logship_testkit::es::{EsAuth, EsReceiver};

use common::{WAIT, builder};

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn undelivered_documents_are_written_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let es = EsReceiver::builder()
        .with_auth(EsAuth::basic("elastic", "pw"))
        .start()
        .unwrap();
    // No credentials: every request is refused with 401 (permanent).
    let (layer, guard) = builder(&es)
        .with_index_prefix("failed-metrics")
        .with_failure_folder(dir.path())
        .build()
        .unwrap();
    for i in 0..3 {
        layer.log_time_metric(
            &format!("f{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.undelivered_rejected, 3, "{stats:?}");
    drop(guard);

    let written = files(dir.path());
    assert_eq!(written.len(), 1, "{written:?}");
    let name = written[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.starts_with("failed-metrics-") && name.ends_with(".ndjson"),
        "{name}"
    );
    assert!(!name.contains(':'), "{name}");
    let body = std::fs::read_to_string(&written[0]).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(body.ends_with('\n'));
    let action: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let doc: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(action["create"]["_id"], doc["event"]["id"]);
    assert_eq!(doc["metrics"]["name"], "f0");

    // A replay with the wrong credentials keeps the file.
    let bad = EcsLayer::builder(es.url().as_str())
        .replay_failure_folder(dir.path())
        .unwrap();
    assert_eq!(
        (bad.files, bad.delivered, bad.failed, bad.files_deleted),
        (1, 0, 3, 0),
        "{bad:?}"
    );
    assert_eq!(files(dir.path()).len(), 1);

    // With the right ones it delivers and deletes it.
    let good = EcsLayer::builder(es.url().as_str())
        .with_basic_auth("elastic", "pw")
        .replay_failure_folder(dir.path())
        .unwrap();
    assert_eq!(
        (good.files, good.delivered, good.failed, good.files_deleted),
        (1, 3, 0, 1),
        "{good:?}"
    );
    assert!(files(dir.path()).is_empty());
    assert_eq!(es.documents_in(doc_index(&doc).as_str()).len(), 3);
}

fn doc_index(doc: &serde_json::Value) -> String {
    let ts = chrono::DateTime::parse_from_rfc3339(doc["@timestamp"].as_str().unwrap()).unwrap();
    format!("failed-metrics-{}", ts.format("%Y.%m.%d"))
}

#[test]
fn replaying_documents_already_delivered_counts_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let es = EsReceiver::start().unwrap();
    // Retries exhausted after one attempt whose reply was lost: the documents did land.
    let (layer, guard) = builder(&es)
        .with_failure_folder(dir.path())
        .with_pipeline(|p| {
            p.with_retry(logship_core::RetryPolicy::never())
                .with_send_timeout(Duration::from_millis(300))
        })
        .build()
        .unwrap();
    es.drop_responses(1);
    layer.log_time_metric("landed", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().undelivered_retries_exhausted, 1);
    drop(guard);
    assert_eq!(es.doc_count(), 1);
    let report = EcsLayer::builder(es.url().as_str())
        .replay_failure_folder(dir.path())
        .unwrap();
    assert_eq!(
        (report.delivered, report.duplicates, report.files_deleted),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(es.doc_count(), 1);
}
