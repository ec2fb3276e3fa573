//! Events, span activities and snapshots reach the JESL receiver as valid documents, linked
//! by `parent-id`, with exact accounting.

use std::time::Duration;

use logship_jkool_http::{BodyShape, JkoolAuth, JkoolHttpLayer, SnapshotPlacement};
use logship_testkit::jkool::JkoolReceiver;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn events_and_activities_are_delivered_and_linked() {
    let jk = JkoolReceiver::builder()
        .with_token("tok")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_pipeline(|p| p.with_default_source_fqn("APPL=shop#SERVER=web1"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("checkout", correlator = "order-42", items = 3_i64);
        span.in_scope(|| {
            tracing::warn!(total = 99.5, snapshot.order.items = 3_i64, "card retried");
            tracing::info!("paid");
        });
        drop(span);
        tracing::error!(user = "alice", "outside any span");
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(jk.wait_for(4, WAIT), "rejections: {:?}", jk.rejections());
    let events = jk.events();
    let activities = jk.activities();
    assert_eq!(
        (events.len(), activities.len()),
        (3, 1),
        "{:?}",
        jk.rejections()
    );
    let act = &activities[0];
    assert_eq!(act["type"], "ACTIVITY");
    assert_eq!(act["operation"], "checkout");
    assert_eq!(act["status"], "END");
    assert_eq!(act["corrid"], serde_json::json!(["order-42"]));
    assert_eq!(act["source-fqn"], "APPL=shop#SERVER=web1");
    let warn = events
        .iter()
        .find(|e| e["msg-text"] == "card retried")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(warn["severity"], "WARNING");
    assert_eq!(warn["parent-id"], act["tracking-id"]);
    assert_eq!(warn["corrid"], serde_json::json!(["order-42"]));
    assert_eq!(
        warn["properties"],
        serde_json::json!([{"name": "total", "type": "double", "value": "99.5"}])
    );
    assert_eq!(warn["snapshots"][0]["name"], "order");
    assert_eq!(warn["snapshots"][0]["parent-id"], warn["tracking-id"]);
    let outside = events
        .iter()
        .find(|e| e["msg-text"] == "outside any span")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(outside.get("parent-id").is_none());
    assert_eq!(outside["user"], "alice");
    // Fresh tracking ids and timestamps per record (the original froze both).
    let mut ids: Vec<_> = events
        .iter()
        .map(|e| e["tracking-id"].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);

    let stats = guard.stats();
    assert_eq!(stats.delivered, 4, "{stats:?}");
    assert_eq!(stats.retries, 0);
    assert_eq!(
        stats.undelivered_rejected + stats.undelivered_retries_exhausted,
        0
    );
    let c = jk.counters();
    assert_eq!(
        c.authorized(logship_testkit::jkool::JkoolAuthMethod::TokenHeader),
        c.requests
    );
    assert!(
        stats.bytes_sent > 0 && stats.bytes_sent == c.bytes_received,
        "{stats:?} {c:?}"
    );
}

#[test]
fn array_bodies_are_an_opt_in_split_into_concurrent_kept_alive_posts() {
    let jk = JkoolReceiver::builder()
        .with_accept_arrays(true)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_body_shape(BodyShape::Array)
        .with_max_request_records(50)
        .with_max_requests_in_flight(3)
        .with_gzip(true)
        .with_pipeline(|p| {
            p.with_max_batch_records(1000)
                .with_linger(Duration::from_secs(5))
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        for i in 0..1000_u64 {
            tracing::info!(i, "event {i}");
        }
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(jk.wait_for_events(1000, WAIT));
    let c = jk.counters();
    assert_eq!(c.documents, 1000);
    assert_eq!(c.responses_to("event", 202), 20, "{c:?}");
    assert!(c.connections <= 3, "{c:?}");
    assert!(
        jk.requests()
            .iter()
            .all(|r| r.header("content-encoding") == Some("gzip") && r.body.starts_with(b"[{"))
    );
    let stats = guard.stats();
    assert_eq!(stats.delivered, 1000);
    assert_eq!(stats.bytes_sent, c.bytes_received);
}

#[test]
fn separate_snapshots_go_to_the_snapshot_endpoint() {
    let jk = JkoolReceiver::start().unwrap_or_else(|e| panic!("{e}"));
    let (layer, guard) = JkoolHttpLayer::builder("tok")
        .with_base_url(jk.url())
        .with_auth(JkoolAuth::ApiKeyHeader)
        .with_snapshot_placement(SnapshotPlacement::Separate)
        .with_pipeline(|p| p.with_span_timings(false))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!(
            snapshot.pool.free = 3_i64,
            snapshot.pool.busy = 5_i64,
            "pool state"
        );
    }
    guard.flush(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(jk.wait_for(2, WAIT), "{:?}", jk.rejections());
    let (events, snaps) = (jk.events(), jk.snapshots());
    assert_eq!((events.len(), snaps.len()), (1, 1));
    assert!(events[0].get("snapshots").is_none());
    assert_eq!(snaps[0]["parent-id"], events[0]["tracking-id"]);
    assert_eq!(snaps[0]["properties"].as_array().map(Vec::len), Some(2));
    assert_eq!(guard.stats().delivered, 1);
}
