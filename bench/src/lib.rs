//! Shared pieces of the logship benchmarks: the event, the layers under test (logship's and the
//! peers'), and the local receivers they point at.
//!
//! Every case is built the same way: [`receiver`] starts what the layer talks to (a testkit
//! receiver, an embedded MQTT broker, a light counting receiver, a tiny Loki stand-in, a
//! throttled TCP reader), and [`build`] makes the layer pointed at it, wrapped in a [`Case`]
//! that knows how to read the layer's own counters and how to wait for it to drain.

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

/// Throughput-only cases: the same layer with the same settings against a light counting
/// receiver ([`ForwardCounter`], [`HttpCounter`], [`MqttCounter`]), to tell the layer's
/// ceiling from the receiver's. `X_lite` is the twin of `X`.
pub const THROUGHPUT_EXTRA: &[&str] = &[
    "logship_fluent_lite",
    #[cfg(feature = "ecs")]
    "logship_ecs_lite",
    #[cfg(feature = "kusto")]
    "logship_kusto_lite",
    "logship_jkool_http_lite",
    "logship_jkool_mqtt_lite",
    "logship_jkool_mqtt_mosquitto",
    "json_lines_sink",
];

/// The receiver a case talks to.
pub fn receiver_kind(case: &str) -> &'static str {
    match case {
        "logship_fluent_lite" => "fluent_lite",
        "logship_ecs_lite" => "es_lite",
        "logship_kusto_lite" => "kusto_lite",
        "logship_jkool_http_lite" => "jkool_lite",
        "logship_jkool_mqtt_lite" => "mqtt_lite",
        "logship_fluent" | "tracing_fluentd" => "fluent",
        "logship_ecs" => "es",
        "logship_kusto" => "kusto",
        "logship_jkool_http" => "jkool",
        "logship_jkool_mqtt" => "mqtt",
        "tracing_loki" => "loki",
        "logship_dead" | "logship_stack5_dead" | "tracing_loki_dead" => "dead",
        "logship_stack5" => "stack5",
        "span_lifecycle" => "fluent_lite",
        "logship_jkool_mqtt_mosquitto" => "mosquitto",
        _ => "none",
    }
}

/// Cases of the caller suite (`throughput caller`) beyond [`CASES`]: the dead backend, the
/// five stacked layers (healthy and dead), the span lifecycle, the JSON-lines sink and
/// tracing-loki at a closed port.
pub const CALLER_EXTRA: &[&str] = &[
    "json_lines_sink",
    "logship_dead",
    "logship_stack5",
    "logship_stack5_dead",
    "span_lifecycle",
    "tracing_loki_dead",
];

/// The measured unit of work of `case`: the 5-field event, or for `span_lifecycle` an
/// `#[instrument]`-style span (new, enter, exit, close).
pub fn workload(case: &str) -> fn() {
    if case == "span_lifecycle" {
        span_lifecycle
    } else {
        event
    }
}

/// An instrumented span's life on the caller: new (one field), enter, exit, close.
#[inline(never)]
pub fn span_lifecycle() {
    tracing::info_span!("work", items = black_box(3_i64)).in_scope(|| ());
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
    /// Records per event: 1, or the number of stacked logship layers (each queues its own).
    pub fanout: u64,
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
        let emitted = emitted * self.fanout;
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
        fanout: 1,
        flush: Some(Box::new(move |t| {
            let _ = flush_handle.flush(t);
        })),
        keep: Vec::new(),
        shutdown: vec![Box::new(move || {
            let _ = guard.shutdown(Duration::from_secs(5));
        })],
    }
}

fn fluent_layer(
    endpoint: &str,
    sizing: Sizing,
) -> (logship_fluent::FluentLayer, logship_core::Guard) {
    logship_fluent::FluentLayer::builder("app")
        .with_server(endpoint)
        .with_pipeline(logship_pipeline(sizing))
        .build()
        .unwrap_or_else(|e| panic!("fluent: {e}"))
}

#[cfg(feature = "ecs")]
fn ecs_layer(
    endpoint: &str,
    sizing: Sizing,
) -> (logship_ecs_metrics::EcsLayer, logship_core::Guard) {
    logship_ecs_metrics::EcsLayer::builder(endpoint)
        .with_log_events(true)
        .with_pipeline(logship_pipeline(sizing))
        .build()
        .unwrap_or_else(|e| panic!("ecs: {e}"))
}

#[cfg(feature = "kusto")]
fn kusto_layer(endpoint: &str, sizing: Sizing) -> (logship_kusto::KustoLayer, logship_core::Guard) {
    logship_kusto::KustoLayer::builder()
        .with_cluster(endpoint)
        .with_database(KUSTO_DB)
        .with_table(KUSTO_TABLE)
        .with_no_authentication()
        .with_ingestion_mode(logship_kusto::IngestionMode::Streaming)
        .with_create_table(true)
        .with_pipeline(logship_pipeline(sizing))
        .build()
        .unwrap_or_else(|e| panic!("kusto: {e}"))
}

fn jkool_http_layer(
    endpoint: &str,
    sizing: Sizing,
) -> (logship_jkool_http::JkoolHttpLayer, logship_core::Guard) {
    logship_jkool_http::JkoolHttpLayer::builder("bench-token")
        .with_base_url(endpoint)
        .with_pipeline(logship_pipeline(sizing))
        .build()
        .unwrap_or_else(|e| panic!("jkool-http: {e}"))
}

fn jkool_mqtt_layer(
    endpoint: &str,
    sizing: Sizing,
) -> (logship_jkool_mqtt::JkoolMqttLayer, logship_core::Guard) {
    logship_jkool_mqtt::JkoolMqttLayer::builder(format!("mqtt://{endpoint}"))
        .with_qos(1)
        .with_topic("bench/events")
        .with_pipeline(logship_pipeline(sizing))
        .build()
        .unwrap_or_else(|e| panic!("jkool-mqtt: {e}"))
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
            fanout: 1,
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
            fanout: 1,
            flush: None,
            keep: Vec::new(),
            shutdown: Vec::new(),
        },
        "logship_fluent" | "logship_fluent_lite" | "logship_dead" => {
            let (layer, guard) = fluent_layer(endpoint, sizing);
            logship_case(layer, guard)
        }
        #[cfg(feature = "ecs")]
        "logship_ecs" | "logship_ecs_lite" => {
            let (layer, guard) = ecs_layer(endpoint, sizing);
            logship_case(layer, guard)
        }
        #[cfg(feature = "kusto")]
        "logship_kusto" | "logship_kusto_lite" => {
            let (layer, guard) = kusto_layer(endpoint, sizing);
            logship_case(layer, guard)
        }
        "logship_jkool_http" | "logship_jkool_http_lite" => {
            let (layer, guard) = jkool_http_layer(endpoint, sizing);
            logship_case(layer, guard)
        }
        "logship_jkool_mqtt" | "logship_jkool_mqtt_lite" | "logship_jkool_mqtt_mosquitto" => {
            let (layer, guard) = jkool_mqtt_layer(endpoint, sizing);
            logship_case(layer, guard)
        }
        "span_lifecycle" => {
            let (layer, guard) = logship_fluent::FluentLayer::builder("app")
                .with_server(endpoint)
                .with_pipeline(|p| logship_pipeline(sizing)(p).with_span_timings(true))
                .build()
                .unwrap_or_else(|e| panic!("fluent: {e}"));
            logship_case(layer, guard)
        }
        "json_lines_sink" => {
            let lines = Arc::new(AtomicU64::new(0));
            let writer = CountingSink {
                lines: lines.clone(),
                slow,
            };
            let (layer, guard) = logship_pipeline(sizing)(logship_core::PipelineBuilder::new())
                .build(logship_core::sinks::JsonLinesSink::new(writer))
                .unwrap_or_else(|e| panic!("json-lines: {e}"));
            let mut c = logship_case(layer, guard);
            c.delivers_in_process = true;
            c
        }
        #[cfg(all(feature = "ecs", feature = "kusto"))]
        "logship_stack5" | "logship_stack5_dead" => {
            // Endpoints: Fluent, ECS, Kusto, jKool HTTP, jKool MQTT (see `receiver("stack5")`);
            // a dead stack has one closed `host:port` for all five.
            let e: Vec<String> = if case == "logship_stack5_dead" {
                vec![
                    endpoint.to_string(),
                    format!("http://{endpoint}"),
                    format!("http://{endpoint}"),
                    format!("http://{endpoint}/JESL"),
                    endpoint.to_string(),
                ]
            } else {
                endpoint.split(' ').map(str::to_string).collect()
            };
            assert_eq!(e.len(), 5, "stack5 endpoints: {endpoint}");
            let (f, g1) = fluent_layer(&e[0], sizing);
            let (es, g2) = ecs_layer(&e[1], sizing);
            let (k, g3) = kusto_layer(&e[2], sizing);
            let (jh, g4) = jkool_http_layer(&e[3], sizing);
            let (jm, g5) = jkool_mqtt_layer(&e[4], sizing);
            let guards = [g1, g2, g3, g4, g5];
            let handles: Vec<logship_core::Handle> = guards.iter().map(|g| g.handle()).collect();
            let flushes: Vec<logship_core::Handle> = guards.iter().map(|g| g.handle()).collect();
            Case {
                dispatch: Dispatch::new(
                    tracing_subscriber::registry()
                        .with(f)
                        .with(es)
                        .with(k)
                        .with(jh)
                        .with(jm),
                ),
                counts: Box::new(move || {
                    let mut c = LayerCounts {
                        delivered: Some(0),
                        dropped: Some(0),
                        queued: Some(0),
                        error: None,
                    };
                    for h in &handles {
                        let s = h.stats();
                        *c.delivered.get_or_insert(0) += s.delivered;
                        *c.dropped.get_or_insert(0) += s.dropped() + s.undelivered();
                        *c.queued.get_or_insert(0) += s.queue_len;
                        c.error = c.error.or(s.last_error);
                    }
                    c
                }),
                delivers_in_process: false,
                fanout: 5,
                flush: Some(Box::new(move |t| {
                    for h in &flushes {
                        let _ = h.flush(t);
                    }
                })),
                keep: Vec::new(),
                shutdown: vec![Box::new(move || {
                    for g in guards {
                        let _ = g.shutdown(Duration::from_secs(2));
                    }
                })],
            }
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
                fanout: 1,
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
                fanout: 1,
                flush: Some(Box::new(move |_| {
                    let _ = p2.force_flush();
                })),
                keep: Vec::new(),
                shutdown: vec![Box::new(move || {
                    let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
                })],
            }
        }
        "tracing_loki" | "tracing_loki_dead" => {
            let endpoint = if case == "tracing_loki_dead" {
                format!("http://{endpoint}")
            } else {
                endpoint.to_string()
            };
            let url = tracing_loki::url::Url::parse(&endpoint).unwrap_or_else(|e| panic!("{e}"));
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
                fanout: 1,
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
                fanout: 1,
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
        "es_lite" | "kusto_lite" | "jkool_lite" => {
            let (api, base) = match kind {
                "es_lite" => (HttpApi::EsBulk, ""),
                "kusto_lite" => (HttpApi::Kusto, ""),
                _ => (HttpApi::Jkool, "/JESL"),
            };
            let delay = if slow {
                SLOW_REQUEST_DELAY
            } else {
                Duration::ZERO
            };
            let c = HttpCounter::start(api, delay);
            let n = c.docs.clone();
            Receiver {
                endpoint: format!("http://{}{base}", c.addr),
                count: Box::new(move || n.load(Ordering::Relaxed)),
                _keep: Box::new(c),
            }
        }
        "dead" => Receiver {
            // A port that was bound and closed: connections are refused.
            endpoint: format!("127.0.0.1:{}", free_port()),
            count: Box::new(|| 0),
            _keep: Box::new(()),
        },
        "stack5" => {
            // The five receivers of `logship_stack5`, light counters each.
            let kinds = [
                "fluent_lite",
                "es_lite",
                "kusto_lite",
                "jkool_lite",
                "mqtt_lite",
            ];
            let rs: Vec<Receiver> = kinds.iter().map(|k| receiver(k, slow)).collect();
            let endpoint = rs
                .iter()
                .map(|r| r.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let (counts, keep): (Vec<_>, Vec<_>) =
                rs.into_iter().map(|r| (r.count, r._keep)).unzip();
            Receiver {
                endpoint,
                count: Box::new(move || counts.iter().map(|c| c()).sum()),
                _keep: Box::new(keep),
            }
        }
        "mosquitto" => {
            let m = Mosquitto::start().unwrap_or_else(|e| panic!("mosquitto: {e}"));
            let n = Arc::new(AtomicU64::new(0));
            count_mqtt(m.addr, "bench/#", n.clone());
            Receiver {
                endpoint: m.addr.to_string(),
                count: Box::new(move || n.load(Ordering::Relaxed)),
                _keep: Box::new(m),
            }
        }
        "mqtt_lite" => {
            let c = MqttCounter::start();
            let n = c.publishes.clone();
            Receiver {
                endpoint: c.addr.to_string(),
                count: Box::new(move || n.load(Ordering::Relaxed)),
                _keep: Box::new(c),
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

/// The mosquitto binary the `mosquitto` receiver runs (`LOGSHIP_BENCH_MOSQUITTO` overrides).
pub fn mosquitto_path() -> String {
    std::env::var("LOGSHIP_BENCH_MOSQUITTO").unwrap_or_else(|_| "/usr/sbin/mosquitto".into())
}

/// A local mosquitto broker on a free loopback port (anonymous, no persistence, no limit on
/// in-flight or queued messages), stopped when dropped, and when this process dies
/// (`PR_SET_PDEATHSIG`).
pub struct Mosquitto {
    /// Where it listens.
    pub addr: SocketAddr,
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Mosquitto {
    /// Writes the configuration into a temporary directory and starts the broker; waits until
    /// it accepts connections (10 s at most).
    pub fn start() -> io::Result<Mosquitto> {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("logship-bench-mosquitto-{port}"));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_inflight_messages 0\nmax_queued_messages 1000000\nmax_queued_bytes 0\n\
                 set_tcp_nodelay true\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )?;
        let mut cmd = std::process::Command::new(mosquitto_path());
        cmd.arg("-c").arg(&conf).stdin(std::process::Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut m = Mosquitto { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(io::Error::other(format!("mosquitto exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("mosquitto did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = &mut m;
        Ok(m)
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its id.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

/// Binds `127.0.0.1:0` and serves every connection on its own thread with `serve`, which counts
/// into the returned counter (the accept loop every stand-in receiver below shares).
fn serve_counting(
    serve: impl Fn(TcpStream, &AtomicU64) + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let count = Arc::new(AtomicU64::new(0));
    let n = count.clone();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let (n, serve) = (n.clone(), serve.clone());
            std::thread::spawn(move || serve(conn, &n));
        }
    });
    (addr, count)
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
        let (addr, bytes) = serve_counting(move |mut conn, b| {
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
        let (addr, events) = serve_counting(|mut conn, n| {
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
        let (addr, entries) = serve_counting(move |conn, n| {
            let _ = serve_loki(conn, n, delay);
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

// ---- light counting receivers: HTTP (ES, Kusto, jKool) and MQTT ---------------------------
//
// Written from the protocols (HTTP/1.1 framing, the `_bulk` / streaming-ingestion / JESL
// request shapes, MQTT 3.1.1), never from the logship crates: they only count, they do not
// decode documents, and they answer the smallest response each backend's client takes as
// full success. Used only to measure a layer's ceiling; the protocol-faithful checks are
// testkit's receivers.

/// The API an [`HttpCounter`] stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpApi {
    /// Elasticsearch `POST [/{index}]/_bulk`: NDJSON, an action line per document followed by
    /// its source line (none for `delete`). Answered 200
    /// `{"errors":false,"items":[{},…]}`, one (empty) item per action.
    EsBulk,
    /// Kusto streaming ingestion `POST /v1/rest/ingest/{db}/{table}?streamFormat=multijson`:
    /// one JSON object per line, usually gzip. Answered 200 with no body; control commands
    /// (`POST /v1/rest/mgmt`, e.g. `.create-merge table`) are answered 200 `{"Tables":[]}`.
    Kusto,
    /// jKool `POST {base}/event|activity|snapshot`: a JSON array of documents (or one
    /// document). Answered 202 (200 for activities) with no body.
    Jkool,
}

/// A light HTTP/1.1 keep-alive receiver (one thread per connection, blocking sockets): frames
/// each request by its head and `Content-Length`, unzips `Content-Encoding: gzip` bodies,
/// counts the documents of [`HttpApi`] by a cheap scan (no JSON parsing) and answers.
pub struct HttpCounter {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Documents (ES actions, Kusto rows, jKool documents) counted so far.
    pub docs: Arc<AtomicU64>,
}

impl HttpCounter {
    fn start(api: HttpApi, delay: Duration) -> HttpCounter {
        let refused = Arc::new(AtomicU64::new(0));
        let (addr, docs) = serve_counting(move |conn, n| {
            let _ = serve_http(conn, api, n, &refused, delay);
        });
        HttpCounter { addr, docs }
    }
}

/// Longest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// What the counter needs of a request head.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct HttpHead {
    method: String,
    target: String,
    content_length: usize,
    gzip: bool,
    chunked: bool,
    close: bool,
}

/// Frames the request head at the start of `buf`: `Ok(None)` until its blank line is in,
/// else the head and its length in bytes (the body follows).
fn http_head(buf: &[u8]) -> Result<Option<(HttpHead, usize)>, String> {
    let Some(end) = find(&buf[..buf.len().min(MAX_HEAD)], b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD {
            Err("request head larger than 64 KiB".into())
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Err("malformed request line".into());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("unsupported version {version}"));
    }
    let mut h = HttpHead {
        method: method.to_string(),
        target: target.to_string(),
        close: version == "HTTP/1.0",
        ..HttpHead::default()
    };
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            h.content_length = value
                .parse()
                .map_err(|_| format!("bad content-length {value:?}"))?;
        } else if name.eq_ignore_ascii_case("content-encoding") {
            if value.eq_ignore_ascii_case("gzip") {
                h.gzip = true;
            } else if !value.eq_ignore_ascii_case("identity") {
                return Err(format!("unsupported content-encoding {value:?}"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            h.chunked = !value.eq_ignore_ascii_case("identity");
        } else if name.eq_ignore_ascii_case("connection") {
            h.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some((h, end + 4)))
}

fn serve_http(
    mut conn: TcpStream,
    api: HttpApi,
    n: &AtomicU64,
    refused: &AtomicU64,
    delay: Duration,
) -> io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 1 << 16];
    let mut filled = 0;
    let mut plain: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 16);
    loop {
        let (head, head_len) = loop {
            match http_head(&buf[..filled]) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => {
                    out.clear();
                    http_response(&mut out, "400 Bad Request", e.as_bytes());
                    conn.write_all(&out)?;
                    return Ok(());
                }
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let k = conn.read(&mut buf[filled..])?;
            if k == 0 {
                return Ok(());
            }
            filled += k;
        };
        // Chunked bodies are not framed here: none of the layers sends one (reqwest and
        // hyper send a `Content-Length` for an in-memory body).
        let total = head_len + if head.chunked { 0 } else { head.content_length };
        if buf.len() < total {
            buf.resize(total, 0);
        }
        while filled < total {
            let k = conn.read(&mut buf[filled..])?;
            if k == 0 {
                return Ok(());
            }
            filled += k;
        }
        let (docs, ok) = http_answer(api, &head, &buf[head_len..total], &mut plain, &mut out);
        if docs > 0 {
            n.fetch_add(docs, Ordering::Relaxed);
        }
        if !ok && refused.fetch_add(1, Ordering::Relaxed) < 5 {
            let end = out.len().min(300);
            eprintln!(
                "http counter ({api:?}): refused {} {}: {}",
                head.method,
                head.target,
                String::from_utf8_lossy(&out[..end]).replace("\r\n", " | ")
            );
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        conn.write_all(&out)?;
        if head.close || head.chunked {
            return Ok(());
        }
        buf.copy_within(total..filled, 0);
        filled -= total;
    }
}

/// Appends a whole response with a JSON (or empty) body.
fn http_response(out: &mut Vec<u8>, status: &str, body: &[u8]) {
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
}

/// Counts the documents of one request and writes the whole response into `out` (cleared
/// first). Returns the documents counted and whether the request was accepted.
fn http_answer(
    api: HttpApi,
    head: &HttpHead,
    body: &[u8],
    plain: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> (u64, bool) {
    out.clear();
    let mut refuse = |status: &str, why: &str| {
        let body = serde_json::json!({"error": {"type": "bench_counter", "reason": why, "@message": why, "@permanent": true}});
        http_response(out, status, body.to_string().as_bytes());
        (0, false)
    };
    if head.chunked {
        return refuse(
            "501 Not Implemented",
            "chunked request bodies are not supported",
        );
    }
    if head.method != "POST" {
        return refuse("405 Method Not Allowed", "only POST is expected");
    }
    let body = if head.gzip {
        plain.clear();
        if let Err(e) = flate2::read::GzDecoder::new(body).read_to_end(plain) {
            return refuse("400 Bad Request", &format!("bad gzip body: {e}"));
        }
        &plain[..]
    } else {
        body
    };
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    match api {
        HttpApi::EsBulk => {
            if !(path == "/_bulk" || path.ends_with("/_bulk")) {
                return refuse("404 Not Found", "only _bulk is expected");
            }
            match bulk_actions(body) {
                Ok(n) => {
                    es_bulk_response(n, out);
                    (n, true)
                }
                Err(e) => refuse("400 Bad Request", &e),
            }
        }
        HttpApi::Kusto => {
            if path == "/v1/rest/mgmt" {
                http_response(out, "200 OK", br#"{"Tables":[]}"#);
                return (0, true);
            }
            if !path.starts_with("/v1/rest/ingest/") || path.split('/').count() != 6 {
                return refuse("404 Not Found", "not a streaming ingestion path");
            }
            let multijson = query.split('&').any(|kv| {
                kv.split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("streamFormat") && v.eq_ignore_ascii_case("multijson")
                })
            });
            if !multijson {
                return refuse("400 Bad Request", "streamFormat=multijson expected");
            }
            match json_lines(body) {
                Ok(n) => {
                    http_response(out, "200 OK", b"");
                    (n, true)
                }
                Err(e) => refuse("400 Bad Request", &e),
            }
        }
        HttpApi::Jkool => {
            let status = match path.rsplit('/').next() {
                Some("event" | "snapshot") => "202 Accepted",
                Some("activity") => "200 OK",
                _ => return refuse("404 Not Found", "not a JESL stream endpoint"),
            };
            match json_docs(body) {
                Ok(n) => {
                    http_response(out, status, b"");
                    (n, true)
                }
                Err(e) => refuse("400 Bad Request", &e),
            }
        }
    }
}

/// The bulk answer the ES client takes as full success: `errors: false` and one item per
/// action (the client reads `items` even then, and retries documents without one).
fn es_bulk_response(n: u64, out: &mut Vec<u8>) {
    const HEAD: &[u8] = br#"{"errors":false,"items":["#;
    let len = HEAD.len() + (3 * n as usize).saturating_sub(1) + 2;
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    );
    out.extend_from_slice(HEAD);
    for i in 0..n {
        out.extend_from_slice(if i == 0 { b"{}" } else { b",{}" });
    }
    out.extend_from_slice(b"]}");
}

/// Counts the documents of a `_bulk` body by its action lines: `create`, `index` and
/// `update` are followed by a source line, `delete` is not. Only the action's name is read.
fn bulk_actions(body: &[u8]) -> Result<u64, String> {
    if body.last() != Some(&b'\n') {
        return Err("The bulk request must be terminated by a newline [\\n]".into());
    }
    let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut n = 0;
    while let Some(action) = lines.next() {
        let name = (|| {
            let s = action.trim_ascii_start().strip_prefix(b"{")?;
            let s = s.trim_ascii_start().strip_prefix(b"\"")?;
            Some(&s[..s.iter().position(|&b| b == b'"')?])
        })()
        .ok_or_else(|| format!("malformed action line after {n} documents"))?;
        match name {
            b"create" | b"index" | b"update" => {
                lines
                    .next()
                    .ok_or_else(|| format!("action {n} has no source line"))?;
            }
            b"delete" => {}
            other => {
                return Err(format!(
                    "unknown bulk action {}",
                    String::from_utf8_lossy(other)
                ));
            }
        }
        n += 1;
    }
    Ok(n)
}

/// Counts the rows of a MultiJSON body: one JSON object per (non-empty) line.
fn json_lines(body: &[u8]) -> Result<u64, String> {
    let mut n = 0;
    for line in body.split(|&b| b == b'\n') {
        match line.first() {
            None | Some(b'\r') => {}
            Some(b'{') => n += 1,
            Some(_) => return Err(format!("row {n} is not a JSON object")),
        }
    }
    Ok(n)
}

/// Counts the documents of a jKool post: the elements of a top-level JSON array, or 1 for a
/// single object. A byte scan that tracks strings and nesting; nothing is parsed.
fn json_docs(body: &[u8]) -> Result<u64, String> {
    let t = body.trim_ascii();
    let single = match t.first() {
        Some(b'[') => false,
        Some(b'{') => true,
        _ => return Err("the body is not a JSON array or object".into()),
    };
    let (mut depth, mut n, mut open) = (0usize, 0u64, false);
    let mut i = 0;
    while i < t.len() {
        let c = t[i];
        i += 1;
        match c {
            b'"' => {
                if depth == 1 && !open {
                    n += 1;
                    open = true;
                }
                // Skip the string.
                loop {
                    let Some(k) = t[i..].iter().position(|&b| b == b'"' || b == b'\\') else {
                        return Err("unterminated string".into());
                    };
                    i += k + 1;
                    if t[i - 1] == b'"' {
                        break;
                    }
                    i += 1; // the escaped byte
                }
            }
            b'{' | b'[' => {
                if depth == 1 && !open {
                    n += 1;
                    open = true;
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1).ok_or("unbalanced brackets")?;
                if depth == 0 && i != t.len() {
                    return Err("data after the top-level value".into());
                }
            }
            b',' if depth == 1 => {
                if !open {
                    return Err(format!("empty element after {n} documents"));
                }
                open = false;
            }
            b' ' | b'\t' | b'\r' | b'\n' | b',' | b':' => {}
            _ => {
                if depth == 1 && !open {
                    n += 1;
                    open = true;
                }
            }
        }
    }
    if depth != 0 {
        return Err("truncated body".into());
    }
    Ok(if single { 1 } else { n })
}

/// A light MQTT 3.1.1 (protocol level 4) broker stand-in that only counts: CONNECT gets
/// CONNACK, every PUBLISH is counted (its payload skipped, framed by the remaining-length
/// varint) and, QoS 1, answered PUBACK (QoS 2: PUBREC, then PUBCOMP for the PUBREL), PINGREQ
/// gets PINGRESP, DISCONNECT closes. The acknowledgements of one read go out in one write.
/// Nothing is routed to subscribers. One thread per connection, blocking sockets.
pub struct MqttCounter {
    /// Where it listens.
    pub addr: SocketAddr,
    /// PUBLISH packets counted so far.
    pub publishes: Arc<AtomicU64>,
}

impl MqttCounter {
    fn start() -> MqttCounter {
        let (addr, publishes) = serve_counting(|conn, n| {
            if let Err(e) = serve_mqtt(conn, n)
                && e.kind() == io::ErrorKind::InvalidData
            {
                eprintln!("mqtt counter: {e}");
            }
        });
        MqttCounter { addr, publishes }
    }
}

fn serve_mqtt(mut conn: TcpStream, n: &AtomicU64) -> io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut buf = vec![0u8; 1 << 16];
    let mut filled = 0;
    let mut out: Vec<u8> = Vec::with_capacity(1 << 12);
    let mut connected = false;
    loop {
        if filled == buf.len() {
            // One packet larger than the buffer.
            buf.resize(buf.len() * 2, 0);
        }
        let k = conn.read(&mut buf[filled..])?;
        if k == 0 {
            return Ok(());
        }
        filled += k;
        out.clear();
        let step = mqtt_packets(&buf[..filled], &mut connected, &mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if step.publishes > 0 {
            n.fetch_add(step.publishes, Ordering::Relaxed);
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
        }
        if step.close {
            return Ok(());
        }
        buf.copy_within(step.consumed..filled, 0);
        filled -= step.consumed;
    }
}

/// What [`mqtt_packets`] did with a buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct MqttStep {
    /// Bytes of whole packets handled (a packet cut by the read stays for the next one).
    consumed: usize,
    /// PUBLISH packets among them.
    publishes: u64,
    /// DISCONNECT, or a refused CONNECT: close the connection.
    close: bool,
}

/// The remaining length (MQTT 3.1.1 §2.2.3) at the start of `b`: `Ok(None)` if cut short,
/// else (value, bytes it took).
fn mqtt_remaining(b: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let mut v = 0usize;
    for i in 0..4 {
        let Some(&byte) = b.get(i) else {
            return Ok(None);
        };
        v |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Err("malformed remaining length (more than 4 bytes)".into())
}

/// Handles the whole packets at the start of `buf`, appending the answers to `out`.
fn mqtt_packets(buf: &[u8], connected: &mut bool, out: &mut Vec<u8>) -> Result<MqttStep, String> {
    let mut s = MqttStep::default();
    while let Some(&first) = buf.get(s.consumed) {
        let rest = &buf[s.consumed + 1..];
        let Some((len, vlen)) = mqtt_remaining(rest)? else {
            break;
        };
        let Some(body) = rest.get(vlen..vlen + len) else {
            break;
        };
        s.consumed += 1 + vlen + len;
        let (kind, flags) = (first >> 4, first & 0x0f);
        if !*connected && kind != 1 {
            return Err(format!("packet type {kind} before CONNECT"));
        }
        let packet_id = |at: usize| {
            body.get(at..at + 2)
                .map(|p| [p[0], p[1]])
                .ok_or_else(|| format!("packet type {kind} without a packet identifier"))
        };
        match kind {
            1 => {
                // CONNECT: protocol name "MQTT", level 4.
                if *connected {
                    return Err("a second CONNECT".into());
                }
                let ok = body.len() >= 10 && body[..7] == *b"\x00\x04MQTT\x04";
                out.extend_from_slice(&[0x20, 0x02, 0x00, if ok { 0x00 } else { 0x01 }]);
                if !ok {
                    s.close = true;
                    break;
                }
                *connected = true;
            }
            3 => {
                // PUBLISH: topic, packet id (QoS > 0), payload (skipped).
                let qos = (flags >> 1) & 3;
                let topic = body
                    .get(..2)
                    .map(|t| usize::from(u16::from_be_bytes([t[0], t[1]])))
                    .ok_or("PUBLISH without a topic")?;
                match qos {
                    0 if body.len() >= 2 + topic => {}
                    0 => return Err("PUBLISH shorter than its topic".into()),
                    1 => {
                        let id = packet_id(2 + topic)?;
                        out.extend_from_slice(&[0x40, 0x02, id[0], id[1]]);
                    }
                    2 => {
                        let id = packet_id(2 + topic)?;
                        out.extend_from_slice(&[0x50, 0x02, id[0], id[1]]);
                    }
                    _ => return Err("PUBLISH with QoS 3".into()),
                }
                s.publishes += 1;
            }
            6 => {
                // PUBREL → PUBCOMP.
                let id = packet_id(0)?;
                out.extend_from_slice(&[0x70, 0x02, id[0], id[1]]);
            }
            12 => out.extend_from_slice(&[0xd0, 0x00]),
            14 => {
                s.close = true;
                break;
            }
            // SUBSCRIBE, acknowledgements, …: not expected from a publisher; ignored.
            _ => {}
        }
    }
    Ok(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn post(target: &str, extra: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Frames `req` and answers it: (documents, accepted, response).
    fn answer(api: HttpApi, req: &[u8]) -> (u64, bool, String) {
        let (head, len) = http_head(req).unwrap().unwrap();
        assert_eq!(req.len(), len + head.content_length);
        let mut out = Vec::new();
        let (n, ok) = http_answer(api, &head, &req[len..], &mut Vec::new(), &mut out);
        (n, ok, String::from_utf8(out).unwrap())
    }

    /// The body of a response, checked against its `content-length`.
    fn body_of(resp: &str) -> &str {
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len, "{resp}");
        body
    }

    #[test]
    fn http_heads_are_framed() {
        let req = post("/_bulk", "content-encoding: GZIP\r\n", b"abc");
        for cut in 0..req.len() {
            let got = http_head(&req[..cut]).unwrap();
            let head_len = req.len() - 3;
            assert_eq!(got.is_some(), cut >= head_len, "cut {cut}");
        }
        let (h, len) = http_head(&req).unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/_bulk"));
        assert_eq!(
            (h.content_length, h.gzip, h.chunked, h.close),
            (3, true, false, false)
        );
        assert_eq!(&req[len..], b"abc");
        let chunked = b"POST /event HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(http_head(chunked).unwrap().unwrap().0.chunked);
        assert!(http_head(b"POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(http_head(b"POST /x HTTP/1.1\r\nContent-Encoding: br\r\n\r\n").is_err());
        assert!(http_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn es_bulk_bodies_are_counted_by_action_lines() {
        let body = concat!(
            r#"{"create":{"_index":"logs","_id":"a"}}"#,
            "\n",
            r#"{"message":"x\n{\"delete\":{}}","n":1}"#,
            "\n",
            r#"{"index":{"_index":"logs"}}"#,
            "\n",
            r#"{"message":"y"}"#,
            "\n",
            r#"{ "delete" : {"_id":"b"}}"#,
            "\n",
        );
        assert_eq!(bulk_actions(body.as_bytes()), Ok(3));
        assert!(bulk_actions(body.trim_end().as_bytes()).is_err()); // no final newline
        assert!(bulk_actions(b"{\"create\":{}}\n").is_err()); // no source line
        assert!(bulk_actions(b"{\"upsert\":{}}\n{}\n").is_err());
        let (n, ok, resp) = answer(HttpApi::EsBulk, &post("/_bulk", "", body.as_bytes()));
        assert_eq!((n, ok), (3, true));
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let v: serde_json::Value = serde_json::from_str(body_of(&resp)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"errors": false, "items": [{}, {}, {}]})
        );
        let (_, _, empty) = answer(HttpApi::EsBulk, &post("/_bulk", "", b"\n"));
        assert_eq!(body_of(&empty), r#"{"errors":false,"items":[]}"#);
        let (n, ok, resp) = answer(HttpApi::EsBulk, &post("/_template/x", "", b"{}\n"));
        assert_eq!((n, ok), (0, false));
        assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    }

    #[test]
    fn kusto_multijson_rows_are_counted_after_gunzip() {
        let rows = b"{\"Message\":\"a\\nb\",\"Level\":\"INFO\"}\n{\"Message\":\"c\"}\n";
        assert_eq!(json_lines(rows), Ok(2));
        assert_eq!(json_lines(b"{}\r\n{}"), Ok(2));
        assert!(json_lines(b"[1]\n").is_err());
        let path = "/v1/rest/ingest/logs/Events?streamFormat=multijson";
        let (n, ok, resp) = answer(
            HttpApi::Kusto,
            &post(path, "Content-Encoding: gzip\r\n", &gzip(rows)),
        );
        assert_eq!((n, ok), (2, true));
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert_eq!(body_of(&resp), "");
        // Uncompressed works too; a wrong format or path is refused.
        assert_eq!(answer(HttpApi::Kusto, &post(path, "", rows)).0, 2);
        let csv = "/v1/rest/ingest/logs/Events?streamFormat=csv";
        assert!(!answer(HttpApi::Kusto, &post(csv, "", rows)).1);
        assert!(!answer(HttpApi::Kusto, &post("/v1/rest/query", "", rows)).1);
        let bad_gz = post(path, "Content-Encoding: gzip\r\n", rows);
        assert!(!answer(HttpApi::Kusto, &bad_gz).1);
        // Control commands (the table creation at start) are accepted, not counted.
        let mgmt = br#"{"db":"logs","csl":".create-merge table Events (Message:string)"}"#;
        let (n, ok, resp) = answer(HttpApi::Kusto, &post("/v1/rest/mgmt", "", mgmt));
        assert_eq!((n, ok), (0, true));
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    }

    #[test]
    fn jkool_documents_are_counted_by_a_scan() {
        let two =
            br#"[{"operation":"a,]}\"{","properties":[{"name":"x","value":[1,2]}]}, {"msg":"\\"}]"#;
        assert_eq!(json_docs(two), Ok(2));
        assert_eq!(json_docs(b" [] "), Ok(0));
        assert_eq!(json_docs(br#"{"a":[1,{"b":"]"}],"c":2}"#), Ok(1));
        assert_eq!(json_docs(b"[1, \"x\", null, [2]]"), Ok(4));
        for bad in [&b"[{}"[..], b"[{}]]", b"[{},,{}]", b"[\"abc]", b"null", b""] {
            assert!(json_docs(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let (n, ok, resp) = answer(HttpApi::Jkool, &post("/JESL/event", "token: t\r\n", two));
        assert_eq!((n, ok), (2, true));
        assert!(resp.starts_with("HTTP/1.1 202 Accepted\r\n"), "{resp}");
        let (n, _, resp) = answer(HttpApi::Jkool, &post("/JESL/activity", "", b"[{}]"));
        assert_eq!(n, 1);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(!answer(HttpApi::Jkool, &post("/JESL/other", "", b"[{}]")).1);
    }

    #[test]
    fn http_counter_keeps_the_connection_alive() {
        let c = HttpCounter::start(HttpApi::Jkool, Duration::ZERO);
        let mut s = TcpStream::connect(c.addr).unwrap();
        // Two requests in one write, then one cut in two writes.
        let mut two = post("/JESL/event", "", b"[{},{}]");
        two.extend(post("/JESL/snapshot", "", b"[{}]"));
        s.write_all(&two).unwrap();
        let third = post("/JESL/event", "", b"[{\"a\":1},{},{}]");
        s.write_all(&third[..10]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        s.write_all(&third[10..]).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while got.windows(4).filter(|w| w == b"HTTP").count() < 3 {
            let k = s.read(&mut chunk).unwrap();
            assert!(k > 0);
            got.extend_from_slice(&chunk[..k]);
        }
        assert_eq!(c.docs.load(Ordering::Relaxed), 6);
    }

    /// jKool HTTP's default body shape: one JSON object per request, each one document (an
    /// array counts its elements), several requests on one keep-alive connection.
    #[test]
    fn http_counter_counts_object_bodies_as_one_document() {
        let c = HttpCounter::start(HttpApi::Jkool, Duration::ZERO);
        let mut s = TcpStream::connect(c.addr).unwrap();
        let mut reqs = Vec::new();
        for i in 0..5 {
            let body =
                format!(r#"{{"operation":"op{i}","properties":[{{"name":"a","value":[1,2]}}]}}"#);
            reqs.extend(post("/JESL/event", "token: t\r\n", body.as_bytes()));
        }
        reqs.extend(post("/JESL/event", "", b"[{},{}]"));
        s.write_all(&reqs).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while got.windows(12).filter(|w| w == b"202 Accepted").count() < 6 {
            let k = s.read(&mut chunk).unwrap();
            assert!(k > 0);
            got.extend_from_slice(&chunk[..k]);
        }
        assert_eq!(c.docs.load(Ordering::Relaxed), 7);
    }

    /// The mosquitto receiver starts a broker that accepts MQTT connections and stops it when
    /// dropped. Skipped (passes) where mosquitto is not installed.
    #[test]
    fn mosquitto_starts_and_stops() {
        if !std::path::Path::new(&mosquitto_path()).exists() {
            eprintln!("no mosquitto: skipped");
            return;
        }
        let m = Mosquitto::start().unwrap();
        let pid = m.pid();
        let mut s = TcpStream::connect(m.addr).unwrap();
        s.write_all(&connect(4)).unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]); // CONNACK, accepted
        drop(m);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    /// An MQTT 3.1.1 packet: fixed header byte, remaining length, body.
    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let mut n = body.len();
        loop {
            let b = (n % 128) as u8;
            n /= 128;
            out.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(body);
        out
    }

    fn connect(level: u8) -> Vec<u8> {
        let mut b = b"\x00\x04MQTT".to_vec();
        b.extend_from_slice(&[level, 0x02, 0x00, 0x3c, 0x00, 0x01, b'c']);
        packet(0x10, &b)
    }

    fn publish(qos: u8, id: u16, payload_len: usize) -> Vec<u8> {
        let mut b = b"\x00\x0cbench/events".to_vec();
        if qos > 0 {
            b.extend_from_slice(&id.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(b'x', payload_len));
        packet(0x30 | (qos << 1), &b)
    }

    #[test]
    fn mqtt_remaining_length() {
        assert_eq!(mqtt_remaining(&[0x00]), Ok(Some((0, 1))));
        assert_eq!(mqtt_remaining(&[0x7f]), Ok(Some((127, 1))));
        assert_eq!(mqtt_remaining(&[0x80, 0x01]), Ok(Some((128, 2))));
        assert_eq!(
            mqtt_remaining(&[0xff, 0xff, 0xff, 0x7f]),
            Ok(Some((268_435_455, 4)))
        );
        assert_eq!(mqtt_remaining(&[0x80, 0x80]), Ok(None));
        assert!(mqtt_remaining(&[0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert_eq!(publish(1, 7, 300)[1..3], [0xbc, 0x02]); // 316 = 2 × 128 + 60
    }

    #[test]
    fn mqtt_publishes_split_across_reads_are_counted_and_acked() {
        let mut stream = connect(4);
        stream.extend(publish(1, 1, 10));
        stream.extend(publish(0, 0, 300));
        stream.extend(publish(1, 0x0203, 500));
        stream.extend(packet(0xc0, b"")); // PINGREQ
        stream.extend(publish(2, 9, 1));
        stream.extend(packet(0x62, &[0x00, 0x09])); // PUBREL
        stream.extend(packet(0xe0, b"")); // DISCONNECT
        let want: Vec<u8> = [
            &[0x20, 0x02, 0x00, 0x00][..],
            &[0x40, 0x02, 0x00, 0x01],
            &[0x40, 0x02, 0x02, 0x03],
            &[0xd0, 0x00],
            &[0x50, 0x02, 0x00, 0x09],
            &[0x70, 0x02, 0x00, 0x09],
        ]
        .concat();
        // Every cut in two reads, as serve_mqtt keeps the unconsumed bytes.
        for cut in 0..stream.len() {
            let (mut connected, mut out) = (false, Vec::new());
            let a = mqtt_packets(&stream[..cut], &mut connected, &mut out).unwrap();
            assert!(!a.close);
            let mut rest = stream[a.consumed..cut].to_vec();
            rest.extend_from_slice(&stream[cut..]);
            let b = mqtt_packets(&rest, &mut connected, &mut out).unwrap();
            assert_eq!(a.publishes + b.publishes, 4, "cut {cut}");
            assert_eq!(a.consumed + b.consumed, stream.len(), "cut {cut}");
            assert!(b.close);
            assert_eq!(out, want, "cut {cut}");
        }
    }

    #[test]
    fn mqtt_refusals() {
        let (mut connected, mut out) = (false, Vec::new());
        let s = mqtt_packets(&connect(5), &mut connected, &mut out).unwrap();
        assert!(s.close && !connected);
        assert_eq!(out, [0x20, 0x02, 0x00, 0x01]);
        let (mut connected, mut out) = (false, Vec::new());
        assert!(mqtt_packets(&publish(0, 0, 1), &mut connected, &mut out).is_err());
        let mut bad = connect(4);
        bad.extend(packet(0x36, b"\x00\x01t")); // QoS 3
        assert!(mqtt_packets(&bad, &mut false, &mut Vec::new()).is_err());
    }

    #[test]
    fn mqtt_counter_over_tcp() {
        let c = MqttCounter::start();
        let mut s = TcpStream::connect(c.addr).unwrap();
        let mut stream = connect(4);
        for id in 1..=50u16 {
            stream.extend(publish(1, id, 2000));
        }
        // A packet larger than the counter's first buffer.
        stream.extend(publish(1, 51, 200_000));
        s.write_all(&stream).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while got.len() < 4 + 51 * 4 {
            let k = s.read(&mut chunk).unwrap();
            assert!(k > 0);
            got.extend_from_slice(&chunk[..k]);
        }
        assert_eq!(&got[..4], &[0x20, 0x02, 0x00, 0x00]);
        assert_eq!(&got[got.len() - 4..], &[0x40, 0x02, 0x00, 51]);
        assert_eq!(c.publishes.load(Ordering::Relaxed), 51);
    }
}
