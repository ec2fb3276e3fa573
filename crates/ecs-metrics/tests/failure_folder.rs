//! Undelivered documents go to the failure folder (the core dead-letter folder: record NDJSON
//! with portable names), and replaying the folder delivers them without duplicates. Failure
//! folders of earlier versions (`_bulk` bodies) replay without loss: a line that cannot be sent
//! is kept and reported, and a file is deleted only when all of it was delivered.
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
        name.starts_with("logship-ecs-") && name.ends_with(".ndjson"),
        "{name}"
    );
    assert!(!name.contains(':'), "{name}");
    let body = std::fs::read_to_string(&written[0]).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "one record per line: {body}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["undelivered"]["cause"], "rejected", "{first}");

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

    // With the right ones it delivers and deletes it (records are encoded with the replaying
    // builder's naming settings).
    let good = EcsLayer::builder(es.url().as_str())
        .with_index_prefix("failed-metrics")
        .with_credentials("elastic", "pw")
        .replay_failure_folder(dir.path())
        .unwrap();
    assert_eq!(
        (good.files, good.delivered, good.failed, good.files_deleted),
        (1, 3, 0, 1),
        "{good:?}"
    );
    assert!(files(dir.path()).is_empty());
    let docs = common::sources(&es);
    assert_eq!(docs.len(), 3, "{docs:?}");
    assert!(
        docs.iter()
            .all(|(index, _)| index.starts_with("failed-metrics-")),
        "{docs:?}"
    );
}

const ACTION_1: &str = r#"{"create":{"_index":"legacy-metrics-2026.01.01","_id":"legacy-1"}}"#;
const DOC_1: &str =
    r#"{"@timestamp":"2026-01-01T00:00:00Z","message":"one","metrics":{"name":"one"}}"#;
const ACTION_2: &str = r#"{"create":{"_index":"legacy-metrics-2026.01.01","_id":"legacy-2"}}"#;
const DOC_2: &str =
    r#"{"@timestamp":"2026-01-01T00:00:01Z","message":"two","metrics":{"name":"two"}}"#;
const ACTION_3: &str = r#"{"create":{"_index":"legacy-metrics-2026.01.01","_id":"legacy-3"}}"#;

fn replay(es: &EsReceiver, dir: &std::path::Path) -> logship_ecs_metrics::ReplayReport {
    EcsLayer::builder(es.url().as_str())
        .with_host_fields(false)
        .replay_failure_folder(dir)
        .unwrap()
}

/// Regression: a one-line `_bulk` file (an action line whose document line was never
/// written) was deleted without being sent.
#[test]
fn legacy_one_line_file_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let es = EsReceiver::start().unwrap();
    let path = dir
        .path()
        .join("legacy-metrics-20260101T000000Z-1-1.ndjson");
    std::fs::write(&path, format!("{ACTION_1}\n")).unwrap();
    let report = replay(&es, dir.path());
    assert_eq!(
        (
            report.files,
            report.files_deleted,
            report.delivered,
            report.unsent_lines
        ),
        (1, 0, 0, 1),
        "{report:?}"
    );
    assert!(
        report
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("line 1"),
        "{report:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{ACTION_1}\n")
    );
    assert_eq!(es.doc_count(), 0);
}

/// Regression: an unpaired trailing line was dropped (the file deleted once the pairs before
/// it were delivered).
#[test]
fn legacy_unpaired_trailing_line_is_kept_and_the_pairs_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let es = EsReceiver::start().unwrap();
    let path = dir
        .path()
        .join("legacy-metrics-20260101T000000Z-1-2.ndjson");
    std::fs::write(
        &path,
        format!("{ACTION_1}\n{DOC_1}\n{ACTION_2}\n{DOC_2}\n{ACTION_3}\n"),
    )
    .unwrap();
    let report = replay(&es, dir.path());
    assert_eq!(
        (
            report.delivered,
            report.failed,
            report.unsent_lines,
            report.files_deleted
        ),
        (2, 0, 1, 0),
        "{report:?}"
    );
    assert_eq!(es.doc_count(), 2);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{ACTION_3}\n"),
        "only the unsent line is left"
    );
    // A complete legacy file is delivered and deleted; a second replay sends nothing twice.
    let whole = dir
        .path()
        .join("legacy-metrics-20260101T000000Z-1-3.ndjson");
    std::fs::write(&whole, format!("{ACTION_1}\n{DOC_1}\n")).unwrap();
    let report = replay(&es, dir.path());
    assert_eq!(
        (
            report.delivered,
            report.duplicates,
            report.unsent_lines,
            report.files_deleted
        ),
        (1, 1, 1, 1),
        "{report:?}"
    );
    assert!(!whole.exists());
    assert!(path.exists());
    assert_eq!(es.doc_count(), 2);
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

/// What `logship replay --es` does: dead-letter records rebuilt from their JSON lines and
/// submitted to a live layer. They keep their `_id` (events sharing a `tracking_id` too), so
/// copies that landed meet 409: a layer built `with_conflicts_as_duplicates(true)` counts them
/// as duplicates; a default layer, which never sent them, refuses them as `_id` conflicts.
#[test]
fn dead_letter_events_resent_by_a_live_layer_keep_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_log_events(true)
        .with_failure_folder(dir.path())
        .with_pipeline(|p| {
            p.with_retry(logship_core::RetryPolicy::never())
                .with_send_timeout(Duration::from_millis(300))
        })
        .build()
        .unwrap();
    es.drop_responses(1);
    {
        use tracing_subscriber::prelude::*;
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(tracking_id = "order-42", "placed");
        tracing::info!(tracking_id = "order-42", "paid");
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().undelivered_retries_exhausted, 2);
    drop(guard);
    assert_eq!(es.doc_count(), 2, "they landed; the reply was lost");

    let resend = |as_duplicates: bool| {
        let (layer, guard) = builder(&es)
            .with_log_events(true)
            .with_conflicts_as_duplicates(as_duplicates)
            .build()
            .unwrap();
        for line in logship_core::json::read_dead_letters(dir.path()).unwrap() {
            layer.handle().submit(line.unwrap());
        }
        guard.flush(WAIT).unwrap();
        guard.stats()
    };
    let s = resend(true);
    assert_eq!(
        (s.delivered, s.duplicates, s.undelivered()),
        (2, 2, 0),
        "{s:?}"
    );
    let s = resend(false);
    assert_eq!((s.delivered, s.undelivered_rejected), (0, 2), "{s:?}");
    assert_eq!(es.doc_count(), 2);
}
