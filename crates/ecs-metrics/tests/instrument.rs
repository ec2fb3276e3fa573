//! `#[instrument]` and `info_span!` spans become ECS timer documents with exact durations.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use logship_testkit::es::EsReceiver;
use tracing_subscriber::prelude::*;

use common::{WAIT, builder, metric, nanos};

#[tracing::instrument(fields(labels.tenant = "acme"))]
fn checkout(order_id: u64, express: bool) {
    let _inner = tracing::info_span!("reserve_stock", sku = "A-1").entered();
    std::thread::sleep(Duration::from_millis(15));
}

#[test]
fn instrumented_function_yields_one_timer_document() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es)
        .with_index_prefix("shop-metrics")
        .with_service_name("shop")
        .with_service_version("1.2.3")
        .with_environment("test")
        .with_label("team", "core")
        .build()
        .unwrap();
    let before = SystemTime::now();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        checkout(42, true);
    }
    guard.flush(WAIT).unwrap();

    let stats = guard.stats();
    assert_eq!(stats.delivered, 2, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");
    assert_eq!(es.doc_count(), 2);

    let outer = metric(&es, "checkout");
    let inner = metric(&es, "reserve_stock");
    let src = &outer.source;
    // Index name from the document's own @timestamp (UTC).
    let ts = chrono::DateTime::parse_from_rfc3339(src["@timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(
        outer.index,
        format!("shop-metrics-{}", ts.format("%Y.%m.%d"))
    );
    assert!(
        ts.timestamp()
            >= before
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                - 1
    );
    // The duration is in nanoseconds and agrees with start/end exactly.
    let duration = src["event"]["duration"].as_i64().unwrap();
    assert_eq!(
        nanos(&src["event"]["end"]) - nanos(&src["event"]["start"]),
        duration
    );
    assert_eq!(src["@timestamp"], src["event"]["start"]);
    assert!(
        duration >= 15_000_000,
        "slept 15 ms inside, got {duration} ns"
    );
    assert_eq!(
        src["metrics"]["duration"]["us"].as_i64().unwrap(),
        duration / 1000
    );
    // The inner span lies inside the outer one.
    let inner_d = inner.source["event"]["duration"].as_i64().unwrap();
    assert!(
        inner_d >= 15_000_000 && inner_d <= duration,
        "{inner_d} vs {duration}"
    );
    // ECS fields.
    assert_eq!(src["ecs.version"], logship_ecs_metrics::ECS_VERSION);
    assert_eq!(src["log.level"], "info");
    assert_eq!(src["event"]["kind"], "metric");
    assert_eq!(src["event"]["outcome"], "success");
    assert_eq!(src["event"]["dataset"], "shop");
    assert_eq!(src["event"]["id"], outer.id.as_str());
    assert_eq!(src["service"]["name"], "shop");
    assert_eq!(src["service"]["version"], "1.2.3");
    assert_eq!(src["service"]["environment"], "test");
    assert_eq!(src["process"]["pid"], std::process::id());
    assert_eq!(src["agent"]["type"], "logship-ecs-metrics");
    assert_eq!(src["log"]["logger"], module_path!());
    assert_eq!(src["log"]["origin"]["function"], "checkout");
    assert!(
        src["log"]["origin"]["file"]["name"]
            .as_str()
            .unwrap()
            .ends_with("instrument.rs")
    );
    assert_eq!(src["labels"]["team"], "core");
    assert_eq!(src["labels"]["tenant"], "acme");
    assert_eq!(src["tracing"]["fields"]["order_id"], 42);
    assert_eq!(src["tracing"]["fields"]["express"], true);
    assert!(src.get("host").is_none(), "host fields are off in tests");
    // The inner span knows its parent and inherits its labels.
    assert_eq!(inner.source["tracing"]["parent_id"], outer.id.as_str());
    assert_eq!(inner.source["tracing"]["spans"][0]["name"], "checkout");
    assert_eq!(inner.source["tracing"]["fields"]["sku"], "A-1");
    assert_eq!(inner.source["labels"]["tenant"], "acme");
}

#[test]
fn span_that_records_an_error_is_a_failure() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("parse", error = tracing::field::Empty);
        let err = std::io::Error::other("bad input");
        span.record("error", &err as &(dyn std::error::Error + 'static));
        drop(span);
        let _ok = tracing::info_span!("fine").entered();
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 2);
    let failed = metric(&es, "parse");
    assert_eq!(failed.source["event"]["outcome"], "failure");
    assert_eq!(failed.source["error"]["message"], "bad input");
    assert_eq!(metric(&es, "fine").source["event"]["outcome"], "success");
}

#[test]
fn log_time_metric_ships_an_explicit_timer() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    // 2024-02-29T23:59:59.999Z, a leap day.
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_251_199_999);
    layer.log_time_metric("import", start, Duration::from_micros(1_000_123));
    logship_ecs_metrics::log_time_metric(&guard.handle(), "export", start, Duration::from_nanos(1));
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 2);
    let d = metric(&es, "import");
    assert_eq!(d.index, "logship-metrics-2024.02.29");
    assert_eq!(d.source["@timestamp"], "2024-02-29T23:59:59.999000000Z");
    assert_eq!(d.source["event"]["end"], "2024-03-01T00:00:00.999123000Z");
    assert_eq!(d.source["event"]["duration"], 1_000_123_000_u64);
    assert_eq!(d.source["metrics"]["duration"]["us"], 1_000_123);
    assert_eq!(d.source["message"], "import took 1000.123 ms");
    assert_eq!(metric(&es, "export").source["event"]["duration"], 1);
}
