//! Hostile input through every backend, to its testkit receiver (issue 9, "hostile input"):
//! huge messages, deep span stacks, many fields, invalid-looking strings. For each: no panic,
//! bounded work (the queue stays within its byte bound, an oversized record is refused alone),
//! clear counting (exact accounting, invalid conventional fields counted), and what is
//! delivered arrives intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_core::{BreakerConfig, Guard, PipelineBuilder, RetryPolicy, Stats};
use logship_testkit::wait_until;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Layer, Registry};

const WAIT: Duration = Duration::from_secs(60);

type BoxLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn fast(p: PipelineBuilder) -> PipelineBuilder {
    p.with_linger(Duration::from_millis(20))
        .with_span_timings(false)
        .with_retry(
            RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(50))
                .with_max_attempts(Some(5)),
        )
        .with_breaker(BreakerConfig::disabled())
        .with_send_timeout(Duration::from_secs(10))
}

// ---- one receiver per backend, reduced to "the messages it got" -------------------------------

enum Receiver {
    Fluent(logship_testkit::fluent::FluentReceiver),
    Jkool(logship_testkit::jkool::JkoolReceiver),
    Kusto(logship_testkit::kusto::KustoReceiver),
    Es(logship_testkit::es::EsReceiver),
    Mqtt(Arc<Mutex<Vec<String>>>, Arc<AtomicBool>),
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Receiver::Mqtt(_, stop) = self {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

const BACKENDS: [&str; 5] = ["fluent", "jkool-http", "jkool-mqtt", "kusto", "ecs"];

const KUSTO_SCHEMA: [(&str, &str); 15] = [
    ("Timestamp", "datetime"),
    ("Level", "string"),
    ("Target", "string"),
    ("Message", "string"),
    ("Fields", "dynamic"),
    ("SpanName", "string"),
    ("Duration", "timespan"),
    ("SourceFqn", "string"),
    ("Correlators", "dynamic"),
    ("TrackingId", "string"),
    ("ParentTrackingId", "string"),
    ("Snapshots", "dynamic"),
    ("Host", "string"),
    ("Service", "string"),
    ("Thread", "string"),
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_rumqttd() -> SocketAddr {
    logship_testkit::mqtt::EmbeddedBroker::start(0)
        .expect("embedded broker")
        .addr()
}

fn mqtt_subscriber(addr: SocketAddr) -> Receiver {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(
        format!("hostile-sub-{}", free_port()),
        addr.ip().to_string(),
        addr.port(),
    );
    opts.set_max_packet_size(16 * 1024 * 1024, 64 * 1024);
    let (client, mut conn) = Client::new(opts, 100);
    client.subscribe("#", QoS::AtLeastOnce).unwrap();
    let msgs = Arc::new(Mutex::new(Vec::new()));
    let subscribed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (m, s, st) = (msgs.clone(), subscribed.clone(), stop.clone());
    std::thread::spawn(move || {
        let _client = client;
        for ev in conn.iter() {
            if st.load(Ordering::Relaxed) {
                break;
            }
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => s.store(true, Ordering::SeqCst),
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                        let text = v["msg-text"].as_str().unwrap_or_default().to_string();
                        m.lock().unwrap().push(text);
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)), // reconnect pacing
            }
        }
    });
    assert!(wait_until(WAIT, || subscribed.load(Ordering::SeqCst)));
    Receiver::Mqtt(msgs, stop)
}

impl Receiver {
    fn messages(&self) -> Vec<String> {
        let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        match self {
            Receiver::Fluent(r) => r
                .events()
                .iter()
                .map(|e| {
                    e.field("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
            Receiver::Jkool(r) => r.events().iter().map(|e| s(e, "msg-text")).collect(),
            Receiver::Kusto(r) => r.rows("Events").iter().map(|e| s(e, "Message")).collect(),
            Receiver::Es(r) => r
                .documents()
                .iter()
                .map(|d| s(&d.source, "message"))
                .collect(),
            Receiver::Mqtt(m, _) => m.lock().unwrap().clone(),
        }
    }
}

/// Starts the receiver of `backend` and a layer shipping to it.
fn rig(
    backend: &str,
    pipeline: impl FnOnce(PipelineBuilder) -> PipelineBuilder + Send + 'static,
) -> (Receiver, BoxLayer, Guard) {
    let p = move |p| pipeline(fast(p));
    match backend {
        "fluent" => {
            let r = logship_testkit::fluent::FluentReceiver::builder()
                .start()
                .unwrap();
            let (l, g) = logship_fluent::FluentLayer::builder("hostile")
                .with_server(r.addr().unwrap().to_string())
                .with_pipeline(p)
                .build()
                .unwrap();
            (Receiver::Fluent(r), Box::new(l), g)
        }
        "jkool-http" => {
            let r = logship_testkit::jkool::JkoolReceiver::start().unwrap();
            let (l, g) = logship_jkool_http::JkoolHttpLayer::builder("tok")
                .with_base_url(r.url())
                .with_pipeline(p)
                .build()
                .unwrap();
            (Receiver::Jkool(r), Box::new(l), g)
        }
        "jkool-mqtt" => {
            let broker = start_rumqttd();
            let r = mqtt_subscriber(broker);
            let (l, g) = logship_jkool_mqtt::JkoolMqttLayer::builder(format!("mqtt://{broker}"))
                .with_topic("hostile")
                .with_pipeline(p)
                .build()
                .unwrap();
            (r, Box::new(l), g)
        }
        "kusto" => {
            use logship_testkit::kusto::*;
            let r = KustoReceiver::builder()
                .with_table("logs", "Events", &KUSTO_SCHEMA)
                .with_command(
                    "logs",
                    &logship_kusto::create_mapping_command(
                        "Events",
                        logship_kusto::DEFAULT_MAPPING_NAME,
                    ),
                )
                .start()
                .unwrap();
            let (l, g) = logship_kusto::KustoLayer::builder()
                .with_cluster(r.url())
                .with_database("logs")
                .with_table("Events")
                .with_application_key(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "contoso")
                // The receiver is the login endpoint too (not a Microsoft Entra host).
                .with_login_endpoint(r.url())
                .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
                .with_pipeline(p)
                .build()
                .unwrap();
            (Receiver::Kusto(r), Box::new(l), g)
        }
        "ecs" => {
            // As an Elasticsearch with `http.max_content_length: 8mb`: the ECS sink sends a
            // document over its own request limit alone, and the server's 413 refuses it.
            let r = logship_testkit::es::EsReceiver::builder()
                .with_max_body_bytes(8 * 1024 * 1024)
                .start()
                .unwrap();
            let (l, g) = logship_ecs_metrics::EcsLayer::builder(r.url().as_str())
                .with_host_fields(false)
                .with_log_events(true)
                .with_pipeline(p)
                .build()
                .unwrap();
            (Receiver::Es(r), Box::new(l), g)
        }
        other => panic!("unknown backend {other}"),
    }
}

fn dispatch(layer: BoxLayer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

fn assert_accounted(backend: &str, s: &Stats, emitted: u64) {
    assert_eq!(s.emitted(), emitted, "{backend}: {s:#?}");
    assert_eq!(
        s.delivered + s.dropped() + s.undelivered(),
        emitted,
        "{backend}: {s:#?}"
    );
    assert_eq!(s.in_flight(), 0, "{backend}: {s:#?}");
}

/// Waits until the receiver has the `want` messages (in any order), then asserts them exactly.
fn assert_received(backend: &str, r: &Receiver, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    wait_until(WAIT, || r.messages().len() >= want.len());
    let mut got = r.messages();
    got.sort();
    assert!(
        got == want,
        "{backend}: received {} messages, wanted {}; first differing: {:?}",
        got.len(),
        want.len(),
        got.iter().zip(&want).find(|(a, b)| a != b).map(|(a, b)| (
            a.chars().take(80).collect::<String>(),
            b.chars().take(80).collect::<String>()
        ))
    );
}

fn shutdown(guard: Guard) -> Stats {
    let h = guard.handle();
    let t0 = Instant::now();
    let _ = guard.shutdown(Duration::from_secs(5));
    assert!(t0.elapsed() < Duration::from_secs(7));
    h.stats()
}

// ---- the tests ------------------------------------------------------------------------------------

#[test]
fn a_huge_message_is_refused_alone_and_counted() {
    // 12 MiB: over every backend's per-record / per-request limit (Fluent 4 MiB, jKool 1 MiB,
    // Kusto 4 MiB per streaming request; ECS sends it alone and the server's 413 refuses it).
    let huge = "x".repeat(12 * 1024 * 1024);
    for backend in BACKENDS {
        let t0 = Instant::now();
        let (r, layer, guard) = rig(backend, |p| p.with_linger(Duration::from_secs(60)));
        tracing::dispatcher::with_default(&dispatch(layer), || {
            tracing::info!("before");
            tracing::info!("{huge}");
            tracing::info!("after");
        });
        guard.flush(WAIT).unwrap();
        let s = shutdown(guard);
        assert_accounted(backend, &s, 3);
        assert_eq!(
            (s.delivered, s.undelivered_rejected),
            (2, 1),
            "{backend}: {s:#?}"
        );
        assert!(
            s.last_error.as_deref().is_some_and(|e| e.len() < 1_000),
            "{backend}: the reason is short, not the record: {:?}",
            s.last_error.as_deref().map(|e| &e[..e.len().min(200)])
        );
        assert_received(backend, &r, &["before", "after"]);
        eprintln!(
            "{backend}: 12 MiB message refused alone in {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn a_message_larger_than_the_queue_is_dropped_at_the_door() {
    // The queue is bounded by bytes: a record bigger than the whole queue is not queued (so
    // it can never hold memory), and it is counted.
    let big = "y".repeat(2 * 1024 * 1024);
    for backend in BACKENDS {
        let (r, layer, guard) = rig(backend, |p| p.with_max_queue_bytes(1024 * 1024));
        tracing::dispatcher::with_default(&dispatch(layer), || {
            tracing::info!("small");
            tracing::info!("{big}");
        });
        guard.flush(WAIT).unwrap();
        let s = shutdown(guard);
        assert_accounted(backend, &s, 2);
        assert_eq!(
            (s.delivered, s.dropped_queue_full),
            (1, 1),
            "{backend}: {s:#?}"
        );
        assert_received(backend, &r, &["small"]);
    }
}

#[test]
fn a_deep_span_stack_is_shipped_without_recursion_trouble() {
    const DEPTH: usize = 1_000;
    for backend in BACKENDS {
        let t0 = Instant::now();
        let (r, layer, guard) = rig(backend, |p| p);
        let d = dispatch(layer);
        let n = tracing::dispatcher::with_default(&d, || {
            let mut entered = Vec::with_capacity(DEPTH);
            for level in 0..DEPTH {
                entered.push(tracing::info_span!("level", level, tag = "deep").entered());
            }
            tracing::info!("at the bottom");
            tracing::warn!("also at the bottom");
            while entered.pop().is_some() {}
            2
        });
        guard.flush(WAIT).unwrap();
        let s = shutdown(guard);
        assert_accounted(backend, &s, n);
        assert_eq!((s.delivered, s.undelivered()), (2, 0), "{backend}: {s:#?}");
        assert_received(backend, &r, &["at the bottom", "also at the bottom"]);
        eprintln!("{backend}: {DEPTH} nested spans in {:?}", t0.elapsed());
    }
}

macro_rules! many_fields {
    ($lvl:ident, $msg:expr) => {
        tracing::$lvl!(
            f00 = 0_u64,
            f01 = 1_i64,
            f02 = 2.5,
            f03 = true,
            f04 = "four",
            f05 = 5_u64,
            f06 = 6_u64,
            f07 = 7_u64,
            f08 = 8_u64,
            f09 = 9_u64,
            f10 = 10_u64,
            f11 = 11_u64,
            f12 = 12_u64,
            f13 = 13_u64,
            f14 = 14_u64,
            f15 = 15_u64,
            f16 = 16_u64,
            f17 = 17_u64,
            f18 = 18_u64,
            f19 = 19_u64,
            f20 = 20_u64,
            f21 = 21_u64,
            f22 = 22_u64,
            f23 = 23_u64,
            f24 = 24_u64,
            f25 = 25_u64,
            f26 = 26_u64,
            f27 = u64::MAX,
            f28 = i64::MIN,
            f29 = f64::NAN,
            f30 = f64::INFINITY,
            "{}",
            $msg
        )
    };
}

#[test]
fn many_fields_on_the_event_and_its_spans_are_shipped() {
    for backend in BACKENDS {
        let (r, layer, guard) = rig(backend, |p| p);
        tracing::dispatcher::with_default(&dispatch(layer), || {
            // 50 spans of 31 fields each, plus 31 on the event: 1 581 fields on one record.
            let mut entered = Vec::new();
            for i in 0..50_u64 {
                entered.push(
                    tracing::info_span!(
                        "wide",
                        i,
                        a0 = 0,
                        a1 = 1,
                        a2 = 2,
                        a3 = 3,
                        a4 = 4,
                        a5 = 5,
                        a6 = 6,
                        a7 = 7,
                        a8 = 8,
                        a9 = 9,
                        b0 = "x",
                        b1 = "x",
                        b2 = "x",
                        b3 = "x",
                        b4 = "x",
                        b5 = "x",
                        b6 = "x",
                        b7 = "x",
                        b8 = "x",
                        b9 = "x",
                        c0 = 0.5,
                        c1 = 0.5,
                        c2 = 0.5,
                        c3 = 0.5,
                        c4 = 0.5,
                        c5 = 0.5,
                        c6 = 0.5,
                        c7 = 0.5,
                        c8 = 0.5,
                        c9 = f64::NEG_INFINITY
                    )
                    .entered(),
                );
            }
            many_fields!(info, "wide event");
            drop(entered);
        });
        guard.flush(WAIT).unwrap();
        let s = shutdown(guard);
        assert_accounted(backend, &s, 1);
        assert_eq!((s.delivered, s.undelivered()), (1, 0), "{backend}: {s:#?}");
        assert_received(backend, &r, &["wide event"]);
    }
}

/// Strings that break naive encoders: quotes and brackets of JSON, NDJSON newlines, CSV
/// separators, control characters and NUL, ANSI escapes, bidi overrides, replacement and
/// non-BMP characters, msgpack-looking text, URL- and template-looking text.
const NASTY: [&str; 14] = [
    "\"}]},{\"injected\":true",
    "line1\nline2\r\n{\"index\":{}}\n",
    "a,b;c\t\"d\"'e'|f",
    "nul\u{0}in\u{1}the\u{1f}middle\u{7f}",
    "\u{1b}[31mred\u{1b}[0m",
    "\u{202e}txt.exe",
    "\u{fffd}\u{feff}\u{200b}",
    "\u{1f600} \u{10ffff} \u{e000}",
    "\u{93}\u{a5}app.x\u{ce}",
    "%s %n {0} {message} ${jndi:ldap://x} {{target}}",
    "\\u0000 \\\" \\n",
    "APPL=#SERVER=",
    "",
    " ",
];

#[test]
fn invalid_looking_strings_arrive_intact_and_bad_conventional_fields_are_counted() {
    for backend in BACKENDS {
        let (r, layer, guard) = rig(backend, |p| p);
        tracing::dispatcher::with_default(&dispatch(layer), || {
            for s in NASTY {
                tracing::info!(
                    weird = s,
                    "we\u{0}ird.key" = 1_u64,
                    source_fqn = "not a fqn #==#",
                    correlator = s,
                    tracking_id = s,
                    "{s}"
                );
            }
        });
        guard.flush(WAIT).unwrap();
        let s = shutdown(guard);
        let n = NASTY.len() as u64;
        assert_accounted(backend, &s, n);
        assert_eq!((s.delivered, s.undelivered()), (n, 0), "{backend}: {s:#?}");
        assert_eq!(s.invalid_fields, n, "one bad source FQN per record: {s:#?}");
        assert_received(backend, &r, &NASTY);
    }
}

#[test]
fn a_flood_of_records_is_bounded_by_the_queue_and_every_drop_is_counted() {
    // 50 000 records of 1 KiB against a 2 MiB queue: the queue never holds more than its
    // bytes, the excess is dropped (never blocking the caller), and every record is counted.
    let line = "z".repeat(1024);
    for backend in BACKENDS {
        let (r, layer, guard) = rig(backend, |p| {
            p.with_max_queue_bytes(2 * 1024 * 1024)
                .with_linger(Duration::from_millis(50))
        });
        let d = dispatch(layer);
        let n = 50_000_u64;
        let max_bytes = std::sync::atomic::AtomicU64::new(0);
        tracing::dispatcher::with_default(&d, || {
            for i in 0..n {
                tracing::info!("{i} {line}");
                if i % 1_000 == 0 {
                    max_bytes.fetch_max(guard.stats().queue_bytes, Ordering::Relaxed);
                }
            }
        });
        guard.flush(WAIT).unwrap();
        let s = shutdown(guard);
        assert_accounted(backend, &s, n);
        assert!(max_bytes.load(Ordering::Relaxed) <= 2 * 1024 * 1024);
        assert_eq!(s.undelivered(), 0, "{backend}: {s:#?}");
        assert_eq!(s.dropped(), s.dropped_queue_full, "{backend}: {s:#?}");
        wait_until(WAIT, || r.messages().len() as u64 >= s.delivered);
        assert_eq!(r.messages().len() as u64, s.delivered, "{backend}");
        eprintln!(
            "{backend}: flood of {n}: {} delivered, {} dropped at the full queue",
            s.delivered, s.dropped_queue_full
        );
    }
}
