//! Connections: gzip bodies, failover to the next host, and log events on or off.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_ecs_metrics::EcsLayer;
use logship_testkit::es::EsReceiver;
use tracing_subscriber::prelude::*;

use common::{WAIT, builder, fast};

#[test]
fn gzip_bodies_are_sent_and_counted_as_wire_bytes() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).with_gzip(true).build().unwrap();
    for i in 0..20 {
        layer.log_time_metric(
            &format!("gz{i}"),
            SystemTime::now(),
            Duration::from_millis(1),
        );
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 20, "{stats:?}");
    let c = es.counters();
    assert_eq!(c.compressed_requests, c.bulk_requests);
    assert!(c.bytes_received < c.bytes_decompressed, "{c:?}");
    assert_eq!(stats.bytes_sent, c.bytes_received);
    assert_eq!(
        es.last_request().unwrap().header("content-encoding"),
        Some("gzip")
    );
    assert_eq!(es.doc_count(), 20);
}

#[test]
fn a_dead_host_fails_over_to_the_next() {
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = EcsLayer::builder([format!("http://{dead}"), es.url()])
        .with_host_fields(false)
        .with_pipeline(fast)
        .build()
        .unwrap();
    layer.log_time_metric("over", SystemTime::now(), Duration::from_millis(1));
    layer.log_time_metric("over2", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 2, "{stats:?}");
    assert_eq!(stats.retries, 0, "{stats:?}");
    assert_eq!(es.doc_count(), 2);
}

#[test]
fn no_reachable_host_is_retried_then_delivered() {
    let es = EsReceiver::start().unwrap();
    es.hang_requests(1);
    let (layer, guard) = builder(&es)
        .with_pipeline(|p| p.with_send_timeout(Duration::from_millis(300)))
        .build()
        .unwrap();
    layer.log_time_metric("late", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");
    assert_eq!(es.doc_count(), 1);
}

#[test]
fn log_events_are_off_by_default() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        tracing::info!("not shipped");
        tracing::error!("not shipped either");
        let _s = tracing::info_span!("shipped").entered();
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 1);
    assert_eq!(es.documents()[0].source["metrics"]["name"], "shipped");
}

#[test]
fn host_fields_name_this_machine() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = EcsLayer::builder(es.url().as_str())
        .with_pipeline(fast)
        .build()
        .unwrap();
    layer.log_time_metric("host", SystemTime::now(), Duration::from_millis(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 1);
    let src = &es.documents()[0].source;
    let name = src["host"]["name"].as_str().unwrap();
    assert!(!name.is_empty());
    assert_eq!(src["host"]["hostname"], name);
    // `host.ip` is present when the host name resolves; every entry is an address.
    if let Some(ips) = src["host"]["ip"].as_array() {
        assert!(!ips.is_empty());
        for ip in ips {
            ip.as_str().unwrap().parse::<std::net::IpAddr>().unwrap();
        }
    }
}
