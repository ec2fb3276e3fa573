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
    // `event.id` is the span's tracking id; the `_id` names the document (a UUID v8 over the
    // record's identity), not the tracking id.
    let outer_event_id = src["event"]["id"].as_str().unwrap().to_string();
    assert_ne!(outer.id, outer_event_id);
    assert_eq!(
        uuid::Uuid::parse_str(&outer.id).unwrap().get_version_num(),
        8
    );
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
    assert_eq!(
        inner.source["tracing"]["parent_id"],
        outer_event_id.as_str()
    );
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

#[derive(Debug)]
struct PaymentDeclined;

impl std::fmt::Display for PaymentDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for PaymentDeclined {}

#[tracing::instrument(err)]
fn charge(amount: u64) -> Result<u64, PaymentDeclined> {
    Err(PaymentDeclined)
}

#[tracing::instrument(err(Debug))]
fn refund() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("gateway down"))
}

#[tracing::instrument(err)]
fn ping() -> Result<(), PaymentDeclined> {
    Ok(())
}

fn kind_docs(es: &EsReceiver, kind: &str) -> Vec<serde_json::Value> {
    es.documents()
        .into_iter()
        .map(|d| d.source)
        .filter(|s| s["event"]["kind"] == kind)
        .collect()
}

#[test]
fn instrument_err_fills_ecs_error_on_the_event_and_the_timer() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).with_log_events(true).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        assert!(charge(5).is_err());
        assert!(refund().is_err());
        assert!(ping().is_ok());
    }
    guard.flush(WAIT).unwrap();
    let stats = guard.stats();
    // Three timers and the two error events.
    assert_eq!(stats.delivered, 5, "{stats:?}");
    assert_eq!(stats.undelivered(), 0, "{stats:?}");

    let charge_t = metric(&es, "charge").source;
    assert_eq!(charge_t["event"]["outcome"], "failure");
    assert_eq!(charge_t["error"]["message"], "card declined");
    let refund_t = metric(&es, "refund").source;
    assert_eq!(refund_t["event"]["outcome"], "failure");
    // `err(Debug)` records the Debug form: it is the message as written.
    assert_eq!(
        refund_t["error"]["message"],
        format!("{:?}", std::io::Error::other("gateway down"))
    );
    let ping_t = metric(&es, "ping").source;
    assert_eq!(ping_t["event"]["outcome"], "success");
    assert!(ping_t.get("error").is_none(), "{ping_t}");

    let events = kind_docs(&es, "event");
    assert_eq!(events.len(), 2, "{events:#?}");
    for e in &events {
        assert_eq!(e["log.level"], "error");
        assert!(e["error"]["message"].is_string(), "{e}");
        // Not repeated in the custom namespace.
        assert!(e["tracing"]["fields"].get("error").is_none(), "{e}");
    }
    let charge_e = events
        .iter()
        .find(|e| e["tracing"]["spans"][0]["name"] == "charge")
        .unwrap();
    assert_eq!(charge_e["error"]["message"], "card declined");
    assert_eq!(charge_e["tracing"]["parent_id"], charge_t["event"]["id"]);
}

#[test]
fn error_type_field_and_span_recorded_error_text() {
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).with_log_events(true).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        let span = tracing::info_span!("sync", error = tracing::field::Empty);
        span.record("error", "upstream closed the stream");
        drop(span);
        tracing::error!(error = "quota exceeded", error.type = "QuotaError", "refused");
    }
    guard.flush(WAIT).unwrap();
    assert_eq!(guard.stats().delivered, 2);
    let sync = metric(&es, "sync").source;
    assert_eq!(sync["event"]["outcome"], "failure");
    assert_eq!(sync["error"]["message"], "upstream closed the stream");
    let ev = &kind_docs(&es, "event")[0];
    assert_eq!(ev["error"]["message"], "quota exceeded");
    assert_eq!(ev["error"]["type"], "QuotaError");
}

#[test]
fn without_log_events_the_timer_only_knows_that_it_failed() {
    // The error event is not captured by a layer that ships timers only, and the core's span
    // timing carries no error text: `event.outcome` says failure, `error.*` stays empty.
    let es = EsReceiver::start().unwrap();
    let (layer, guard) = builder(&es).build().unwrap();
    {
        let _d = tracing_subscriber::registry().with(layer).set_default();
        assert!(charge(1).is_err());
    }
    guard.flush(WAIT).unwrap();
    let t = metric(&es, "charge").source;
    assert_eq!(t["event"]["outcome"], "failure");
    assert!(t.get("error").is_none(), "{t}");
}
