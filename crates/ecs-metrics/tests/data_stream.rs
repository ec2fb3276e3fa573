//! Data streams: `create` into `metrics-<dataset>-<namespace>` (and `logs-…` for events),
//! with `data_stream.*` fields, and the index template installed at start.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;
use tracing_subscriber::prelude::*;

use common::{WAIT, builder};

#[test]
fn timers_and_events_go_to_their_data_streams() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_data_stream("prod")
        .with_dataset("shop")
        .with_log_events(true)
        .with_install_template(true)
        .build()
        .unwrap();
    layer.log_time_metric("ds_timer", SystemTime::now(), Duration::from_millis(3));
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::warn!(order = 7_u64, "low stock");
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 2, "{stats:?}");
    assert_eq!(stats.last_error, None, "{stats:?}");

    let mut streams = es.data_streams();
    streams.sort();
    assert_eq!(streams, vec!["logs-shop-prod", "metrics-shop-prod"]);
    let m = &es.documents_in("metrics-shop-prod")[0].source;
    assert_eq!(m["data_stream"]["type"], "metrics");
    assert_eq!(m["data_stream"]["dataset"], "shop");
    assert_eq!(m["data_stream"]["namespace"], "prod");
    assert_eq!(m["event"]["dataset"], "shop");
    let l = &es.documents_in("logs-shop-prod")[0].source;
    assert_eq!(l["event"]["kind"], "event");
    assert_eq!(l["message"], "low stock");
    assert_eq!(l["log.level"], "warn");
    assert_eq!(l["tracing"]["fields"]["order"], 7);
    assert_eq!(es.counters().items("create", 201), 2);

    let templates = es.templates();
    let t = templates
        .get("logship-ecs-shop-prod")
        .expect("template installed");
    assert_eq!(
        t["index_patterns"],
        serde_json::json!(["metrics-shop-prod", "logs-shop-prod"])
    );
    assert_eq!(t["data_stream"], serde_json::json!({}));
}

#[test]
fn dated_index_template_is_installed_and_matches() {
    let es = EsReceiver::start().unwrap();
    let b = builder(&es)
        .with_index_prefix("app")
        .with_install_template(true);
    let (name, body) = b.index_template().unwrap();
    let (layer, guard) = b.build().unwrap();
    layer.log_time_metric("x", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 1);
    assert_eq!(es.templates().get(&name), Some(&body));
    assert_eq!(body["index_patterns"], serde_json::json!(["app-*"]));
}
