//! The logship tour: a small instrumented shop ships its events and span timings to all five
//! backends at once — Fluentd, Elasticsearch, Azure Data Explorer, jKool over HTTPS and jKool
//! over MQTT — then prints what each pipeline did and a sample of what each backend received.
//!
//! Run: `cargo run --example tour`. By default every backend is a protocol-faithful receiver
//! started inside this process (and an embedded MQTT broker): nothing to install, no network.
//! Point any backend at a real server instead:
//!
//! | variable | backend | example |
//! |---|---|---|
//! | `LOGSHIP_FLUENT` | Fluentd / Fluent Bit forward input | `127.0.0.1:24224` |
//! | `LOGSHIP_ES` | Elasticsearch / OpenSearch | `http://127.0.0.1:9200` |
//! | `LOGSHIP_KUSTO` | Kusto connection string (+ `LOGSHIP_KUSTO_TABLE`, default `ShopEvents`) | `Data Source=https://…;Initial Catalog=…;…` |
//! | `LOGSHIP_JKOOL_TOKEN` | jKool access token (+ `LOGSHIP_JKOOL_URL`) | |
//! | `LOGSHIP_MQTT` | MQTT broker URL | `mqtt://127.0.0.1:1883` |
//!
//! `LOGSHIP_TOUR_SECONDS` sets how long the shop runs (default 3).
//!
//! `cargo run --example tour --features full,opentelemetry` also traces the shop's spans with
//! OpenTelemetry (no exporter): every sample then shows the trace and span ids where its backend
//! writes them (docs/opentelemetry.md).

mod shop;

use std::time::{Duration, Instant};

use logship::prelude::*;
// The tour uses every backend crate directly (an application enables them through the
// umbrella's features instead: `logship = { features = ["fluent"] }` gives `logship::prelude::FluentLayer`).
use logship_ecs_metrics::EcsLayer;
use logship_fluent::FluentLayer;
use logship_jkool_http::JkoolHttpLayer;
use logship_jkool_mqtt::JkoolMqttLayer;
use logship_kusto::KustoLayer;
use logship_testkit::es::EsReceiver;
use logship_testkit::fluent::FluentReceiver;
use logship_testkit::jkool::JkoolReceiver;
use logship_testkit::kusto::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, KustoReceiver};
use logship_testkit::mqtt::{EmbeddedBroker, MqttSubscriber};
use serde_json::Value as Json;
use tracing_subscriber::prelude::*;

type Error = Box<dyn std::error::Error>;

/// The in-process receivers (None where a real server was named).
#[derive(Default)]
struct Local {
    fluent: Option<FluentReceiver>,
    es: Option<EsReceiver>,
    kusto: Option<KustoReceiver>,
    jkool: Option<JkoolReceiver>,
    mqtt: Option<MqttSubscriber>,
}

struct Backend {
    name: &'static str,
    destination: String,
    handle: Handle,
    guard: Guard,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> Result<(), Error> {
    let seconds: u64 = env("LOGSHIP_TOUR_SECONDS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "logship tour: a shop handles orders for {seconds} s; five layers ship every event and span timing.\n"
    );
    println!("[1/4] starting receivers and building the five layers");
    let mut local = Local::default();
    let mut backends = Vec::new();
    let mut layers = Vec::new();

    // Fluentd forward, PackedForward with acks (at least once).
    let addr = match env("LOGSHIP_FLUENT") {
        Some(a) => a,
        None => {
            let r = FluentReceiver::builder().start()?;
            let a = r.addr().map(|a| a.to_string()).unwrap_or_default();
            local.fluent = Some(r);
            a
        }
    };
    let (layer, guard) = FluentLayer::builder("shop")
        .with_server(addr.clone())
        .with_pipeline(|p| {
            p.with_service_name("shop")
                .with_linger(Duration::from_millis(250))
        })
        .build()?;
    backends.push(Backend {
        name: "fluent",
        destination: addr,
        handle: layer.handle(),
        guard,
    });
    layers.push(layer.boxed());

    // Elasticsearch: ECS metric documents for every closed span, and the log events too.
    let url = match env("LOGSHIP_ES") {
        Some(u) => u,
        None => {
            let r = EsReceiver::builder().start()?;
            let u = r.url();
            local.es = Some(r);
            u
        }
    };
    let (layer, guard) = EcsLayer::builder(url.as_str())
        .with_service_name("shop")
        .with_index_prefix("shop-metrics")
        .with_log_events(true)
        .with_install_template(true)
        .with_pipeline(|p| p.with_linger(Duration::from_millis(250)))
        .build()?;
    backends.push(Backend {
        name: "ecs",
        destination: url,
        handle: layer.handle(),
        guard,
    });
    layers.push(layer.boxed());

    // Azure Data Explorer: streaming ingestion with an AAD client-credentials token.
    let table = env("LOGSHIP_KUSTO_TABLE").unwrap_or_else(|| "ShopEvents".into());
    let kusto = match env("LOGSHIP_KUSTO") {
        Some(cs) => KustoLayer::from_connection_string(&cs)?,
        None => {
            let r = KustoReceiver::builder().with_database("logs").start()?;
            let b = KustoLayer::builder()
                .with_cluster(r.url())
                .with_database("logs")
                .with_application_key(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "contoso")
                .with_login_endpoint(r.url())
                .with_create_table(true);
            local.kusto = Some(r);
            b
        }
    };
    let (layer, guard) = kusto
        .with_table(table.clone())
        .with_service_name("shop")
        .with_pipeline(|p| p.with_linger(Duration::from_millis(250)))
        .build()?;
    backends.push(Backend {
        name: "kusto",
        destination: format!("table {table}"),
        handle: layer.handle(),
        guard,
    });
    layers.push(layer.boxed());

    // jKool over HTTPS: EVENTs, ACTIVITYs for closed spans, snapshots.
    let (token, url) = match env("LOGSHIP_JKOOL_TOKEN") {
        Some(t) => (
            t,
            env("LOGSHIP_JKOOL_URL").unwrap_or_else(|| "https://data.jkoolcloud.com/JESL".into()),
        ),
        None => {
            let r = JkoolReceiver::builder().with_token("tour-token").start()?;
            let u = r.url();
            local.jkool = Some(r);
            ("tour-token".into(), u)
        }
    };
    let (layer, guard) = JkoolHttpLayer::builder(token)
        .with_base_url(url.clone())
        .with_pipeline(|p| {
            p.with_service_name("shop")
                .with_linger(Duration::from_millis(250))
        })
        .build()?;
    backends.push(Backend {
        name: "jkool-http",
        destination: url,
        handle: layer.handle(),
        guard,
    });
    layers.push(layer.boxed());

    // jKool over MQTT, QoS 1: a record counts as delivered only when its PUBACK arrives.
    let url = match env("LOGSHIP_MQTT") {
        Some(u) => u,
        None => {
            let broker = EmbeddedBroker::start(0)?;
            local.mqtt = Some(MqttSubscriber::start_with(
                broker.addr(),
                "shop/#",
                None,
                true,
            )?);
            broker.url()
        }
    };
    let (layer, guard) = JkoolMqttLayer::builder(url.clone())
        .with_topic("shop/{kind}")
        .with_pipeline(|p| {
            p.with_service_name("shop")
                .with_linger(Duration::from_millis(250))
        })
        .build()?;
    backends.push(Backend {
        name: "jkool-mqtt",
        destination: url,
        handle: layer.handle(),
        guard,
    });
    layers.push(layer.boxed());

    // Ship the shop's own records. The receivers and the MQTT broker run in this process too, and
    // their dependencies log through `tracing`; without this filter the layers would ship the
    // receivers' logs about receiving the layers' records, and so on.
    let only_the_shop =
        tracing_subscriber::filter::Targets::new().with_target("tour", tracing::Level::TRACE);
    // With `--features opentelemetry`: the shop's spans are also OpenTelemetry spans (a tracer
    // with no exporter), and every record carries their trace and span ids (docs/opentelemetry.md).
    #[cfg(feature = "opentelemetry")]
    let otel = {
        use opentelemetry::trace::TracerProvider as _;
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .build()
            .tracer("tour");
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    };
    #[cfg(not(feature = "opentelemetry"))]
    let otel: Option<tracing_subscriber::layer::Identity> = None;
    tracing_subscriber::registry()
        .with(otel)
        .with(layers.with_filter(only_the_shop))
        .init();

    println!("[2/4] running the shop (every 7th payment is declined, big orders warn about stock)");
    let started = Instant::now();
    let mut shop = shop::Shop::open();
    let mut next_report = Duration::from_millis(500);
    while started.elapsed() < Duration::from_secs(seconds) {
        shop.handle(20);
        if started.elapsed() >= next_report {
            next_report += Duration::from_millis(500);
            let line: Vec<String> = backends
                .iter()
                .map(|b| {
                    let s = b.handle.stats();
                    format!("{} {}", b.name, s.delivered)
                })
                .collect();
            println!(
                "      {:>4.1} s  {} orders  delivered: {}",
                started.elapsed().as_secs_f64(),
                shop.orders(),
                line.join(", ")
            );
        }
    }
    shop.close();

    println!("[3/4] flushing (each guard waits for its backend's acknowledgements, at most 10 s)");
    let mut rows = Vec::new();
    for b in backends {
        let t0 = Instant::now();
        let result = b.guard.shutdown(Duration::from_secs(10));
        let s = b.handle.stats();
        let outcome = match result {
            Ok(_) => format!("flushed in {} ms", t0.elapsed().as_millis()),
            Err(e) => format!("{e}"),
        };
        rows.push((b.name, b.destination, s, outcome));
    }

    println!("\n[4/4] what each pipeline did (records: events and span timings)\n");
    println!(
        "  backend      emitted delivered dropped undelivered requests      bytes  destination"
    );
    for (name, dest, s, _) in &rows {
        println!(
            "  {:<11} {:>8} {:>9} {:>7} {:>11} {:>8} {:>10}  {}",
            name,
            s.emitted(),
            s.delivered,
            s.dropped(),
            s.undelivered(),
            s.requests,
            s.bytes_sent,
            dest
        );
    }
    for (name, _, s, outcome) in &rows {
        let extra = if s.retries > 0 || s.duplicates > 0 {
            format!(" ({} retries, {} duplicates)", s.retries, s.duplicates)
        } else {
            String::new()
        };
        println!("  {name}: {outcome}{extra}");
    }
    println!(
        "\n  emitted = delivered + dropped + undelivered for every backend; nothing is lost silently."
    );
    print_samples(&local, &table);
    println!(
        "\nNext: pick a backend and copy its five lines from the README, or run `cargo run -p logship-cli -- receive fluent` and `cargo run --example fluent`."
    );
    Ok(())
}

fn show(title: &str, v: Option<Json>) {
    println!("\n  -- {title}");
    match v {
        Some(v) => {
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            for line in text.lines().take(30) {
                println!("     {line}");
            }
            if text.lines().count() > 30 {
                println!("     …");
            }
        }
        None => println!("     (real server: look there)"),
    }
}

fn print_samples(local: &Local, table: &str) {
    println!("\nA sample of what each backend received, decoded by its receiver:");
    show(
        "Fluentd forward: the span-timing record of a `charge` span (msgpack, tag shop.<target>)",
        local.fluent.as_ref().and_then(|r| {
            let events = r.events();
            events
                .iter()
                .find(|e| e.field("span").and_then(|v| v.as_str()) == Some("charge"))
                .or(events.first())
                .map(|e| serde_json::json!({"tag": e.tag, "time_ns": e.time.as_nanos(), "record": e.record_json()}))
        }),
    );
    show(
        "Elasticsearch: an ECS metric document for a `charge` span (event.duration in ns)",
        local.es.as_ref().and_then(|r| {
            let docs = r.documents();
            docs.iter()
                .find(|d| {
                    d.source.pointer("/metrics/name").and_then(Json::as_str) == Some("charge")
                })
                .or(docs.first())
                .map(|d| serde_json::json!({"_index": d.index, "_id": d.id, "_source": d.source}))
        }),
    );
    show(
        &format!("Azure Data Explorer: a row of table {table} (named columns)"),
        local
            .kusto
            .as_ref()
            .and_then(|r| r.rows(table).into_iter().find(|row| row["Level"] == "WARN")),
    );
    show(
        "jKool HTTPS: an EVENT with its snapshot",
        local.jkool.as_ref().and_then(|r| {
            r.events()
                .into_iter()
                .find(|e| e.get("snapshots").is_some())
        }),
    );
    show(
        "jKool MQTT: an ACTIVITY published on shop/activity",
        local.mqtt.as_ref().and_then(|s| {
            s.messages()
                .into_iter()
                .find(|m| m.topic == "shop/activity")
                .and_then(|m| serde_json::from_slice(&m.payload).ok())
        }),
    );
}
