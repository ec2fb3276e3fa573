//! Shared pieces of the logship benchmarks: the event, the layers under test (logship's and the
//! peers'), and the local receivers they point at.
//!
//! Every case is built the same way: [`receiver`] starts what the layer talks to (a testkit
//! receiver, an embedded MQTT broker, a tiny Loki stand-in, a throttled TCP reader), and
//! [`build`] makes the layer pointed at it, wrapped in a [`Case`] that knows how to read the
//! layer's own counters and how to wait for it to drain.

use std::any::Any;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Layer, Registry};

/// The measured event: 5 typed fields and a message, INFO.
#[inline(never)]
pub fn event() {
    tracing::info!(
        user = "ann",
        order_id = black_box(42_u64),
        total = black_box(99.5),
        express = true,
        items = black_box(3_i64),
        "order placed"
    );
}

/// Every case, in report order: floors, logship layers, peers.
pub const CASES: &[&str] = &[
    "no_subscriber",
    "registry_empty_layer",
    "logship_fluent",
    #[cfg(feature = "ecs")]
    "logship_ecs",
    #[cfg(feature = "kusto")]
    "logship_kusto",
    "logship_jkool_http",
    "logship_jkool_mqtt",
    "appender_json_sink",
    "otel_batch_noop",
    "tracing_loki",
    "tracing_fluentd",
];

/// Throughput-only cases: the same layer against a lighter receiver, to tell the layer's
/// ceiling from the receiver's.
pub const THROUGHPUT_EXTRA: &[&str] = &["logship_fluent_lite"];

/// The receiver a case talks to.
pub fn receiver_kind(case: &str) -> &'static str {
    match case {
        "logship_fluent_lite" => "fluent_lite",
        "logship_fluent" | "tracing_fluentd" => "fluent",
        "logship_ecs" => "es",
        "logship_kusto" => "kusto",
        "logship_jkool_http" => "jkool",
        "logship_jkool_mqtt" => "mqtt",
        "tracing_loki" => "loki",
        _ => "none",
    }
}

/// What a layer says about itself (None where the layer has no such counter).
#[derive(Debug, Clone, Default)]
pub struct LayerCounts {
    /// Records delivered as the layer (or its in-process sink) counts them.
    pub delivered: Option<u64>,
    /// Records the layer dropped (queue full, …) by its own counters.
    pub dropped: Option<u64>,
    /// Records still queued.
    pub queued: Option<u64>,
    /// The layer's last send error, if it reports one.
    pub error: Option<String>,
}

type Counts = Box<dyn Fn() -> LayerCounts + Send + Sync>;

/// A layer under test, ready to be installed.
pub struct Case {
    /// The dispatcher (a registry with the layer, or none).
    pub dispatch: Dispatch,
    /// The layer's own counters.
    pub counts: Counts,
    /// Whether `counts().delivered` is the delivery figure (in-process sinks) rather than a
    /// receiver's count.
    pub delivers_in_process: bool,
    /// Asks the layer to send what it holds now (logship `flush`, OpenTelemetry
    /// `force_flush`), so that settling does not wait for a batch timer.
    flush: Option<Box<dyn Fn(Duration)>>,
    keep: Vec<Box<dyn Any>>,
    shutdown: Vec<Box<dyn FnOnce()>>,
}

impl Case {
    /// Waits until `emitted` records are delivered or dropped as the layer counts them (or the
    /// receiver, through `received`), or `timeout`; returns how long it took.
    pub fn settle(
        &self,
        emitted: u64,
        received: &dyn Fn() -> Option<u64>,
        timeout: Duration,
    ) -> Duration {
        let start = Instant::now();
        let c = (self.counts)();
        if c.delivered.is_none() && c.queued.is_none() {
            // A floor (nothing to deliver) or a peer without counters (tracing-loki drops
            // when its channel is full; tracing-fluentd's queue is unbounded): nothing to
            // wait for.
            return Duration::ZERO;
        }
        if let Some(f) = &self.flush {
            f(timeout);
        }
        let mut last = (u64::MAX, Instant::now());
        while start.elapsed() < timeout {
            let c = (self.counts)();
            let delivered = c.delivered.or_else(received).unwrap_or(0);
            let handled = delivered + c.dropped.unwrap_or(0);
            if handled >= emitted && c.queued.unwrap_or(0) == 0 {
                break;
            }
            // Layers without counters: settled once the receiver stops moving for 1.5 s.
            if c.queued.is_none() {
                if delivered != last.0 {
                    last = (delivered, Instant::now());
                } else if last.1.elapsed() > Duration::from_millis(1500) {
                    return last.1 - start;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        start.elapsed()
    }

    /// Flushes and stops the layer (bounded), dropping what it kept alive.
    pub fn shutdown(mut self) {
        for f in self.shutdown.drain(..) {
            f();
        }
        self.keep.clear();
    }
}

/// How the pipelines are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// Queues large enough that a criterion sample never drops (the caller-cost benches).
    Large,
    /// Each layer's defaults (the throughput and slow-backend runs).
    Default,
}

fn logship_pipeline(
    sizing: Sizing,
) -> impl FnOnce(logship_core::PipelineBuilder) -> logship_core::PipelineBuilder {
    move |p| match sizing {
        Sizing::Large => p
            .with_max_queue_records(1 << 21)
            .with_max_queue_bytes(4 << 30),
        Sizing::Default => p,
    }
}

fn logship_case(
    layer: impl Layer<Registry> + Send + Sync + 'static,
    guard: logship_core::Guard,
) -> Case {
    let handle = guard.handle();
    let flush_handle = guard.handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    Case {
        dispatch,
        counts: Box::new(move || {
            let s = handle.stats();
            LayerCounts {
                delivered: Some(s.delivered),
                dropped: Some(s.dropped() + s.undelivered()),
                queued: Some(s.queue_len),
                error: s.last_error,
            }
        }),
        delivers_in_process: false,
        flush: Some(Box::new(move |t| {
            let _ = flush_handle.flush(t);
        })),
        keep: Vec::new(),
        shutdown: vec![Box::new(move || {
            let _ = guard.shutdown(Duration::from_secs(5));
        })],
    }
}

/// Builds the layer of `case`, pointed at `endpoint` (from [`Receiver::endpoint`]).
/// `slow` makes in-process sinks slow too (the OpenTelemetry exporter, the appender's writer).
pub fn build(case: &str, endpoint: &str, sizing: Sizing, slow: bool) -> Case {
    let none_counts: Counts = Box::new(LayerCounts::default);
    match case {
        "no_subscriber" => Case {
            dispatch: Dispatch::none(),
            counts: none_counts,
            delivers_in_process: true,
            flush: None,
            keep: Vec::new(),
            shutdown: Vec::new(),
        },
        "registry_empty_layer" => Case {
            dispatch: Dispatch::new(
                tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new()),
            ),
            counts: none_counts,
            delivers_in_process: true,
            flush: None,
            keep: Vec::new(),
            shutdown: Vec::new(),
        },
        "logship_fluent" | "logship_fluent_lite" => {
            let (layer, guard) = logship_fluent::FluentLayer::builder("app")
                .with_server(endpoint)
                .with_pipeline(logship_pipeline(sizing))
                .build()
                .unwrap_or_else(|e| panic!("fluent: {e}"));
            logship_case(layer, guard)
        }
        #[cfg(feature = "ecs")]
        "logship_ecs" => {
            let (layer, guard) = logship_ecs_metrics::EcsLayer::builder(endpoint)
                .with_log_events(true)
                .with_pipeline(logship_pipeline(sizing))
                .build()
                .unwrap_or_else(|e| panic!("ecs: {e}"));
            logship_case(layer, guard)
        }
        #[cfg(feature = "kusto")]
        "logship_kusto" => {
            let (layer, guard) = logship_kusto::KustoLayer::builder()
                .with_cluster(endpoint)
                .with_database(KUSTO_DB)
                .with_table(KUSTO_TABLE)
                .with_no_authentication()
                .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
                .with_create_table(true)
                .with_pipeline(logship_pipeline(sizing))
                .build()
                .unwrap_or_else(|e| panic!("kusto: {e}"));
            logship_case(layer, guard)
        }
        "logship_jkool_http" => {
            let (layer, guard) = logship_jkool_http::JkoolHttpLayer::builder("bench-token")
                .with_base_url(endpoint)
                .with_pipeline(logship_pipeline(sizing))
                .build()
                .unwrap_or_else(|e| panic!("jkool-http: {e}"));
            logship_case(layer, guard)
        }
        "logship_jkool_mqtt" => {
            let (layer, guard) =
                logship_jkool_mqtt::JkoolMqttLayer::builder(format!("mqtt://{endpoint}"))
                    .with_qos(1)
                    .with_topic("bench/events")
                    .with_pipeline(logship_pipeline(sizing))
                    .build()
                    .unwrap_or_else(|e| panic!("jkool-mqtt: {e}"));
            logship_case(layer, guard)
        }
        "appender_json_sink" => {
            let lines = Arc::new(AtomicU64::new(0));
            let writer = CountingSink {
                lines: lines.clone(),
                slow,
            };
            let builder = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(true);
            let builder = match sizing {
                Sizing::Large => builder.buffered_lines_limit(1 << 21),
                Sizing::Default => builder,
            };
            let (nb, guard) = builder.finish(writer);
            let errors = nb.error_counter();
            let layer = tracing_subscriber::fmt::layer().json().with_writer(nb);
            Case {
                dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
                counts: Box::new(move || LayerCounts {
                    delivered: Some(lines.load(Ordering::Relaxed)),
                    dropped: Some(errors.dropped_lines() as u64),
                    queued: None,
                    error: None,
                }),
                delivers_in_process: true,
                flush: None,
                keep: Vec::new(),
                shutdown: vec![Box::new(move || drop(guard))],
            }
        }
        "otel_batch_noop" => {
            use opentelemetry_sdk::logs::{
                BatchConfigBuilder, BatchLogProcessor, SdkLoggerProvider,
            };
            let exported = Arc::new(AtomicU64::new(0));
            let exporter = CountingExporter {
                exported: exported.clone(),
                delay: if slow {
                    SLOW_REQUEST_DELAY
                } else {
                    Duration::ZERO
                },
            };
            let config = match sizing {
                Sizing::Large => BatchConfigBuilder::default()
                    .with_max_queue_size(1 << 21)
                    .build(),
                Sizing::Default => BatchConfigBuilder::default().build(),
            };
            let processor = BatchLogProcessor::builder(exporter)
                .with_batch_config(config)
                .build();
            let provider = SdkLoggerProvider::builder()
                .with_log_processor(processor)
                .build();
            let layer =
                opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider);
            let p2 = provider.clone();
            Case {
                dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
                counts: Box::new(move || LayerCounts {
                    delivered: Some(exported.load(Ordering::Relaxed)),
                    dropped: None,
                    queued: None,
                    error: None,
                }),
                delivers_in_process: true,
                flush: Some(Box::new(move |_| {
                    let _ = p2.force_flush();
                })),
                keep: Vec::new(),
                shutdown: vec![Box::new(move || {
                    let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
                })],
            }
        }
        "tracing_loki" => {
            let url = tracing_loki::url::Url::parse(endpoint).unwrap_or_else(|e| panic!("{e}"));
            let (layer, controller, task) = tracing_loki::builder()
                .label("app", "bench")
                .unwrap_or_else(|e| panic!("{e}"))
                .build_controller_url(url)
                .unwrap_or_else(|e| panic!("{e}"));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            let thread = std::thread::Builder::new()
                .name("loki-task".into())
                .spawn(move || rt.block_on(task))
                .unwrap_or_else(|e| panic!("{e}"));
            Case {
                dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
                counts: Box::new(LayerCounts::default),
                delivers_in_process: false,
                flush: None,
                keep: Vec::new(),
                shutdown: vec![Box::new(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().build();
                    if let Ok(rt) = rt {
                        rt.block_on(controller.shutdown());
                    }
                    let _ = thread.join();
                })],
            }
        }
        "tracing_fluentd" => {
            let addr: SocketAddr = endpoint.parse().unwrap_or_else(|e| panic!("{e}"));
            let (layer, guard) = tracing_fluentd::Builder::new("app")
                .with_writer(move || TcpStream::connect(addr))
                .flatten()
                .layer_guarded()
                .unwrap_or_else(|e| panic!("{e}"));
            Case {
                dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
                counts: Box::new(LayerCounts::default),
                delivers_in_process: false,
                flush: None,
                keep: Vec::new(),
                shutdown: vec![Box::new(move || drop(guard))],
            }
        }
        other => panic!("unknown case {other}"),
    }
}

/// The per-request delay of a slow backend.
pub const SLOW_REQUEST_DELAY: Duration = Duration::from_millis(200);
/// The byte rate of a slow TCP backend (Fluent), bytes per second.
pub const SLOW_TCP_BYTES_PER_SEC: u64 = 1 << 20;

/// The Kusto database and table of the benches.
pub const KUSTO_DB: &str = "logs";
/// See [`KUSTO_DB`].
pub const KUSTO_TABLE: &str = "Events";

/// A writer that throws the bytes away and counts lines (the appender's `io::sink()`).
struct CountingSink {
    lines: Arc<AtomicU64>,
    slow: bool,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.lines.fetch_add(n, Ordering::Relaxed);
        if self.slow {
            // About SLOW_TCP_BYTES_PER_SEC.
            std::thread::sleep(Duration::from_nanos(
                buf.len() as u64 * 1_000_000_000 / SLOW_TCP_BYTES_PER_SEC,
            ));
        }
        io::sink().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An OpenTelemetry exporter that only counts (optionally sleeping per batch).
#[derive(Debug)]
struct CountingExporter {
    exported: Arc<AtomicU64>,
    delay: Duration,
}

impl opentelemetry_sdk::logs::LogExporter for CountingExporter {
    fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        let n = batch.iter().count() as u64;
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.exported.fetch_add(n, Ordering::Relaxed);
        async { Ok(()) }
    }
}

// ---- receivers ---------------------------------------------------------------------------

/// A running local receiver.
pub struct Receiver {
    /// What the layer is pointed at: `host:port` or a URL.
    pub endpoint: String,
    /// Events (documents, rows, entries, messages) received so far.
    pub count: Box<dyn Fn() -> u64 + Send + Sync>,
    _keep: Box<dyn Any + Send>,
}

/// Starts the receiver of `kind` (see [`receiver_kind`]); `slow` makes it accept at a low
/// fixed rate (a per-request delay, or a throttled TCP reader).
pub fn receiver(kind: &str, slow: bool) -> Receiver {
    match kind {
        "none" => Receiver {
            endpoint: String::new(),
            count: Box::new(|| 0),
            _keep: Box::new(()),
        },
        "fluent" if slow => {
            let t = ThrottledTcp::start(SLOW_TCP_BYTES_PER_SEC);
            let bytes = t.bytes.clone();
            Receiver {
                endpoint: t.addr.to_string(),
                // Bytes, not events: the slow case reports memory, not delivery.
                count: Box::new(move || bytes.load(Ordering::Relaxed)),
                _keep: Box::new(t),
            }
        }
        "fluent_lite" => {
            let l = ForwardCounter::start();
            let n = l.events.clone();
            Receiver {
                endpoint: l.addr.to_string(),
                count: Box::new(move || n.load(Ordering::Relaxed)),
                _keep: Box::new(l),
            }
        }
        "fluent" => {
            use logship_testkit::fluent::FluentReceiver;
            let r = FluentReceiver::builder()
                .with_keep_events(false)
                .start()
                .unwrap_or_else(|e| panic!("{e}"));
            let r = Arc::new(r);
            let endpoint = r.addr().map(|a| a.to_string()).unwrap_or_default();
            let r2 = r.clone();
            Receiver {
                endpoint,
                count: Box::new(move || r2.event_count() as u64),
                _keep: Box::new(r),
            }
        }
        "es" => {
            use logship_testkit::es::EsReceiver;
            let r = Arc::new(
                EsReceiver::builder()
                    .with_keep_sources(false)
                    .start()
                    .unwrap_or_else(|e| panic!("{e}")),
            );
            if slow {
                r.set_delay(SLOW_REQUEST_DELAY);
            }
            let r2 = r.clone();
            Receiver {
                endpoint: r.url(),
                count: Box::new(move || {
                    r2.counters()
                        .bulk_items
                        .iter()
                        .filter(|((_, status), _)| (200..300).contains(status))
                        .map(|(_, n)| *n)
                        .sum()
                }),
                _keep: Box::new(r),
            }
        }
        "kusto" => {
            use logship_testkit::kusto::KustoReceiver;
            let r = KustoReceiver::builder()
                .with_database(KUSTO_DB)
                .with_auto_create(true)
                .with_require_auth(false)
                .with_keep_rows(false)
                .start()
                .unwrap_or_else(|e| panic!("{e}"));
            if slow {
                r.set_delay(SLOW_REQUEST_DELAY);
            }
            let r = Arc::new(r);
            let r2 = r.clone();
            Receiver {
                endpoint: r.url().to_string(),
                count: Box::new(move || {
                    let s = r2.stats();
                    s.streaming_rows + s.queued_rows
                }),
                _keep: Box::new(r),
            }
        }
        "jkool" => {
            use logship_testkit::jkool::JkoolReceiver;
            let r = JkoolReceiver::builder()
                .with_keep_documents(false)
                .start()
                .unwrap_or_else(|e| panic!("{e}"));
            if slow {
                r.set_delay(SLOW_REQUEST_DELAY);
            }
            let r = Arc::new(r);
            let r2 = r.clone();
            Receiver {
                endpoint: r.url(),
                count: Box::new(move || r2.counters().documents),
                _keep: Box::new(r),
            }
        }
        "mqtt" => {
            let addr = start_rumqttd();
            let n = Arc::new(AtomicU64::new(0));
            count_mqtt(addr, "bench/#", n.clone());
            Receiver {
                endpoint: addr.to_string(),
                count: Box::new(move || n.load(Ordering::Relaxed)),
                _keep: Box::new(()),
            }
        }
        "loki" => {
            let l = LokiStandIn::start(if slow {
                SLOW_REQUEST_DELAY
            } else {
                Duration::ZERO
            });
            let n = l.entries.clone();
            Receiver {
                endpoint: format!("http://{}", l.addr),
                count: Box::new(move || n.load(Ordering::Relaxed)),
                _keep: Box::new(l),
            }
        }
        other => panic!("unknown receiver {other}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// rumqttd (MQTT 3.1.1) on a free loopback port, for the life of the process.
fn start_rumqttd() -> SocketAddr {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let server = ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 4 * 1024 * 1024,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 1000,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            let _ = broker.start();
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "rumqttd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    addr
}

/// A QoS 0 subscriber that counts PUBLISHes.
fn count_mqtt(addr: SocketAddr, filter: &str, n: Arc<AtomicU64>) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new("bench-counter", addr.ip().to_string(), addr.port());
    opts.set_max_packet_size(8 * 1024 * 1024, 64 * 1024);
    let (client, mut conn) = Client::new(opts, 1000);
    client
        .subscribe(filter, QoS::AtMostOnce)
        .unwrap_or_else(|e| panic!("{e}"));
    let subscribed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = subscribed.clone();
    std::thread::Builder::new()
        .name("mqtt-counter".into())
        .spawn(move || {
            let _client = client;
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => s2.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !subscribed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "no SUBACK");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A TCP peer that reads at most `rate` bytes per second and throws them away.
pub struct ThrottledTcp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Bytes read so far.
    pub bytes: Arc<AtomicU64>,
}

impl ThrottledTcp {
    fn start(rate: u64) -> ThrottledTcp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let bytes = Arc::new(AtomicU64::new(0));
        let b = bytes.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; (rate / 100) as usize];
                    loop {
                        let t = Instant::now();
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                b.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                        let tick = Duration::from_millis(10);
                        if let Some(rest) = tick.checked_sub(t.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                });
            }
        });
        ThrottledTcp { addr, bytes }
    }
}

/// A light Forward receiver: frames each request by walking the msgpack bytes (no decoding
/// into values, no allocation per event), counts its events and answers `chunk` with its ack
/// (logship's Fluent layer asks for acks by default). Used only to
/// measure a Fluent layer's ceiling; the protocol-faithful check is testkit's receiver.
pub struct ForwardCounter {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Events counted so far.
    pub events: Arc<AtomicU64>,
}

impl ForwardCounter {
    fn start() -> ForwardCounter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let events = Arc::new(AtomicU64::new(0));
        let n = events.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let n = n.clone();
                std::thread::spawn(move || {
                    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
                    let mut chunk = vec![0u8; 1 << 18];
                    loop {
                        let k = match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => k,
                        };
                        buf.extend_from_slice(&chunk[..k]);
                        let mut pos = 0;
                        let mut acks: Vec<u8> = Vec::new();
                        loop {
                            let mut p = pos;
                            let mut chunk = None;
                            match forward_events(&buf, &mut p, &mut chunk) {
                                Some(e) => {
                                    n.fetch_add(e, Ordering::Relaxed);
                                    if let Some((a, z)) = chunk {
                                        let c = &buf[a..z];
                                        acks.extend_from_slice(b"\x81\xa3ack");
                                        if c.len() < 32 {
                                            acks.push(0xa0 | c.len() as u8);
                                        } else {
                                            acks.push(0xd9);
                                            acks.push(c.len() as u8);
                                        }
                                        acks.extend_from_slice(c);
                                    }
                                    pos = p;
                                }
                                None => break,
                            }
                        }
                        if !acks.is_empty() && conn.write_all(&acks).is_err() {
                            break;
                        }
                        buf.drain(..pos);
                    }
                });
            }
        });
        ForwardCounter { addr, events }
    }
}

/// Reads one Forward request at `*p`; returns its event count, or None if incomplete.
/// `chunk` gets the byte range of the option map's `chunk` string, if any.
fn forward_events(b: &[u8], p: &mut usize, chunk: &mut Option<(usize, usize)>) -> Option<u64> {
    let (kind, len) = mp_head(b, p)?;
    if kind != b'a' {
        // A nil keep-alive (or anything else that is not a request): no events.
        mp_skip_body(b, p, kind, len)?;
        return Some(0);
    }
    let mut events = 0;
    for i in 0..len {
        if i == 1 {
            let start = *p;
            let (k2, l2) = mp_head(b, p)?;
            match k2 {
                b'a' => {
                    events = l2;
                    mp_skip_body(b, p, k2, l2)?;
                }
                b'b' | b's' => {
                    let end = p.checked_add(l2 as usize)?;
                    if end > b.len() {
                        return None;
                    }
                    let mut q = *p;
                    while q < end {
                        mp_skip(&b[..end], &mut q)?;
                        events += 1;
                    }
                    *p = end;
                }
                _ => {
                    *p = start;
                    mp_skip(b, p)?;
                    events = 1;
                }
            }
        } else if i == len - 1 && i >= 2 && b.get(*p).is_some_and(|&t| (0x80..=0x8f).contains(&t)) {
            // The option map: look for `chunk`.
            let (_, pairs) = mp_head(b, p)?;
            for _ in 0..pairs {
                let k0 = *p;
                mp_skip(b, p)?;
                let key = &b[k0..*p];
                let v0 = *p;
                let (vk, vl) = mp_head(b, p)?;
                let body = *p;
                mp_skip_body(b, p, vk, vl)?;
                if key == b"\xa5chunk" && vk == b's' {
                    *chunk = Some((body, *p));
                }
                let _ = v0;
            }
        } else {
            mp_skip(b, p)?;
        }
    }
    Some(events)
}

/// A msgpack head: kind (`a` array, `m` map, `b` bin/str/ext payload bytes, `s` str,
/// `x` scalar with `len` payload bytes) and length.
fn mp_head(b: &[u8], p: &mut usize) -> Option<(u8, u64)> {
    let t = *b.get(*p)?;
    *p += 1;
    let mut be = |n: usize| -> Option<u64> {
        let s = b.get(*p..*p + n)?;
        *p += n;
        Some(s.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    };
    Some(match t {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (b'x', 0),
        0x80..=0x8f => (b'm', u64::from(t & 0x0f)),
        0x90..=0x9f => (b'a', u64::from(t & 0x0f)),
        0xa0..=0xbf => (b's', u64::from(t & 0x1f)),
        0xc4 => (b'b', be(1)?),
        0xc5 => (b'b', be(2)?),
        0xc6 => (b'b', be(4)?),
        0xc7 => (b'x', be(1)? + 1),
        0xc8 => (b'x', be(2)? + 1),
        0xc9 => (b'x', be(4)? + 1),
        0xca | 0xce | 0xd2 => (b'x', 4),
        0xcb | 0xcf | 0xd3 => (b'x', 8),
        0xcc | 0xd0 => (b'x', 1),
        0xcd | 0xd1 => (b'x', 2),
        0xd4 => (b'x', 2),
        0xd5 => (b'x', 3),
        0xd6 => (b'x', 5),
        0xd7 => (b'x', 9),
        0xd8 => (b'x', 17),
        0xd9 => (b's', be(1)?),
        0xda => (b's', be(2)?),
        0xdb => (b's', be(4)?),
        0xdc => (b'a', be(2)?),
        0xdd => (b'a', be(4)?),
        0xde => (b'm', be(2)?),
        0xdf => (b'm', be(4)?),
        0xc1 => return None,
    })
}

fn mp_skip_body(b: &[u8], p: &mut usize, kind: u8, len: u64) -> Option<()> {
    match kind {
        b'a' => (0..len).try_for_each(|_| mp_skip(b, p)),
        b'm' => (0..len * 2).try_for_each(|_| mp_skip(b, p)),
        _ => {
            let end = p.checked_add(len as usize)?;
            if end > b.len() {
                return None;
            }
            *p = end;
            Some(())
        }
    }
}

fn mp_skip(b: &[u8], p: &mut usize) -> Option<()> {
    let (kind, len) = mp_head(b, p)?;
    mp_skip_body(b, p, kind, len)
}

/// A minimal Loki push endpoint: HTTP/1.1 keep-alive, answers 204, counts the entries of each
/// snappy-compressed protobuf `PushRequest`.
pub struct LokiStandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Entries received so far.
    pub entries: Arc<AtomicU64>,
}

impl LokiStandIn {
    fn start(delay: Duration) -> LokiStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let entries = Arc::new(AtomicU64::new(0));
        let n = entries.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let n = n.clone();
                std::thread::spawn(move || {
                    let _ = serve_loki(conn, &n, delay);
                });
            }
        });
        LokiStandIn { addr, entries }
    }
}

fn serve_loki(mut conn: TcpStream, n: &AtomicU64, delay: Duration) -> io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        // Read the head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let k = conn.read(&mut chunk)?;
            if k == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..k]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let k = conn.read(&mut chunk)?;
            if k == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..k]);
        }
        let body = &buf[head_end..head_end + len];
        if let Ok(raw) = snap::raw::Decoder::new().decompress_vec(body) {
            n.fetch_add(count_loki_entries(&raw), Ordering::Relaxed);
        }
        buf.drain(..head_end + len);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")?;
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Counts `PushRequest.streams[].entries[]` (fields 1 and 2, both length-delimited).
fn count_loki_entries(buf: &[u8]) -> u64 {
    fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*i)?;
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    // Iterates the fields of a message, calling `f(field, payload)` for length-delimited ones.
    fn fields(b: &[u8], mut f: impl FnMut(u64, &[u8])) {
        let mut i = 0;
        while i < b.len() {
            let Some(key) = varint(b, &mut i) else { return };
            match key & 7 {
                0 => {
                    if varint(b, &mut i).is_none() {
                        return;
                    }
                }
                1 => i += 8,
                5 => i += 4,
                2 => {
                    let Some(len) = varint(b, &mut i) else { return };
                    let end = i + len as usize;
                    if end > b.len() {
                        return;
                    }
                    f(key >> 3, &b[i..end]);
                    i = end;
                }
                _ => return,
            }
        }
    }
    let mut total = 0;
    fields(buf, |field, stream| {
        if field == 1 {
            fields(stream, |f2, _| {
                if f2 == 2 {
                    total += 1;
                }
            });
        }
    });
    total
}

/// Peak and current resident set size of this process, in KiB (`VmHWM`, `VmRSS`).
pub fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (get("VmHWM:"), get("VmRSS:"))
}
