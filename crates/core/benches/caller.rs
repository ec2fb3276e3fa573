//! The caller's cost of one 5-field INFO event, from the `tracing` macro to the queue.
//!
//! Run: `cargo bench -p logship-core --bench caller`. Figures go in docs/benchmarks.md.
//! The worker drains into `NullSink` on the other core; the queue is large enough that the
//! measured path is the enqueue path, and the drop count is printed at the end to prove it.
//! The clock is the benchmark thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), so the worker
//! and other load sharing the 2 cores do not inflate the figure (as in `bench/`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use logship_core::PipelineBuilder;
use logship_core::testing::NullSink;
use tracing_subscriber::prelude::*;

/// Times `iters` calls of `f` on this thread's CPU clock.
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    use rustix::time::{ClockId, clock_gettime};
    let t = |ts: rustix::time::Timespec| {
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    };
    let start = t(clock_gettime(ClockId::ThreadCPUTime));
    for _ in 0..iters {
        f();
    }
    t(clock_gettime(ClockId::ThreadCPUTime)).saturating_sub(start)
}

fn event() {
    tracing::info!(
        user = "ann",
        order_id = black_box(42_u64),
        total = black_box(99.5),
        express = true,
        items = black_box(3_i64),
        "order placed"
    );
}

fn caller(c: &mut Criterion) {
    let mut g = c.benchmark_group("caller_5_field_info_event");
    g.measurement_time(Duration::from_secs(5));

    g.bench_function("no_subscriber", |b| b.iter_custom(|n| cpu_time(n, event)));

    {
        let _d = tracing_subscriber::registry()
            .with(tracing_subscriber::layer::Identity::new())
            .set_default();
        g.bench_function("registry_empty_layer", |b| {
            b.iter_custom(|n| cpu_time(n, event))
        });
    }

    {
        let (layer, guard) = PipelineBuilder::new()
            .with_max_queue_records(1 << 20)
            .with_max_queue_bytes(1 << 30)
            .with_max_batch_records(4096)
            .build(NullSink)
            .expect("config");
        let _d = tracing_subscriber::registry().with(layer).set_default();
        g.bench_function("logship_null_sink", |b| {
            b.iter_custom(|n| cpu_time(n, event))
        });
        let span = tracing::info_span!("request", correlator = "r-1");
        let _e = span.enter();
        g.bench_function("logship_null_sink_in_span", |b| {
            b.iter_custom(|n| cpu_time(n, event))
        });
        drop(_e);
        let s = guard.stats();
        eprintln!(
            "logship: enqueued {} dropped {} (drops must be 0 for the figure to be the enqueue path)",
            s.enqueued,
            s.dropped()
        );
    }
    g.finish();
}

/// An instrumented span's cost on the caller: new, enter, exit, close (the close captures the
/// span-timing record). ECS issue target: at most 300 ns.
fn span(c: &mut Criterion) {
    let mut g = c.benchmark_group("caller_span_new_enter_exit_close");
    g.measurement_time(Duration::from_secs(5));
    {
        let _d = tracing_subscriber::registry()
            .with(tracing_subscriber::layer::Identity::new())
            .set_default();
        g.bench_function("registry_empty_layer", |b| {
            b.iter_custom(|n| {
                cpu_time(n, || {
                    tracing::info_span!("work", items = black_box(3_i64)).in_scope(|| ())
                })
            })
        });
    }
    {
        let (layer, guard) = PipelineBuilder::new()
            .with_max_queue_records(1 << 20)
            .with_max_queue_bytes(1 << 30)
            .with_max_batch_records(4096)
            .build(NullSink)
            .expect("config");
        let _d = tracing_subscriber::registry().with(layer).set_default();
        g.bench_function("logship_null_sink", |b| {
            b.iter_custom(|n| {
                cpu_time(n, || {
                    tracing::info_span!("work", items = black_box(3_i64)).in_scope(|| ())
                })
            })
        });
        eprintln!("logship: dropped {}", guard.stats().dropped());
    }
    g.finish();
}

/// A backend that is down: every send fails with a transient error.
struct Down;

impl logship_core::Sink for Down {
    fn name(&self) -> &'static str {
        "down"
    }
    async fn send(
        &mut self,
        _: &logship_core::Batch,
        _: &mut logship_core::SendContext,
    ) -> logship_core::Outcome {
        logship_core::Outcome::retry("connection refused")
    }
}

/// `layers` logship layers stacked on one registry (as a `Vec` layer), each with its own
/// pipeline.
fn stack<K: logship_core::Sink + 'static>(
    layers: usize,
    sink: impl Fn() -> K,
) -> (tracing::subscriber::DefaultGuard, Vec<logship_core::Guard>) {
    let mut guards = Vec::new();
    let mut v = Vec::new();
    for _ in 0..layers {
        // Default queue and batch bounds (what an application gets).
        let (layer, guard) = PipelineBuilder::new()
            .with_loss_summary(false)
            .build(sink())
            .expect("config");
        v.push(layer);
        guards.push(guard);
    }
    let d = tracing_subscriber::registry().with(v).set_default();
    (d, guards)
}

/// Paced (bursts of 20 events, then 2 ms asleep; only the events are timed, on the thread's
/// CPU clock): healthy and dead backends, one and five stacked layers. Not a criterion group
/// (criterion would size the run by the timed part alone and sleep for hours): 1 000 bursts
/// after 200 of warm-up, printed as ns per event with the share of events dropped. Filter
/// with `LOGSHIP_BENCH_PACED=<case>` (a substring); `LOGSHIP_BENCH_PACED=none` skips them.
fn paced(_: &mut Criterion) {
    let only = std::env::var("LOGSHIP_BENCH_PACED").unwrap_or_default();
    let bursts = |n: u64| {
        let mut t = Duration::ZERO;
        for _ in 0..n {
            t += cpu_time(20, event);
            std::thread::sleep(Duration::from_millis(2));
        }
        t
    };
    for (name, layers, dead) in [
        ("one_layer", 1, false),
        ("one_layer_backend_down", 1, true),
        ("five_layers", 5, false),
        ("five_layers_backend_down", 5, true),
    ] {
        if !name.contains(only.as_str()) && !only.is_empty() {
            continue;
        }
        let (d, guards) = if dead {
            stack(layers, || Down)
        } else {
            stack(layers, || NullSink)
        };
        bursts(200);
        // A dead backend: the steady state is a full queue (32 768 records by default).
        let mut warm = 0;
        while dead && warm < 5_000 && guards.iter().all(|g| g.stats().dropped() == 0) {
            bursts(50);
            warm += 50;
        }
        let before: Vec<_> = guards.iter().map(logship_core::Guard::stats).collect();
        let n = 1_000;
        let t = bursts(n);
        let (mut enq, mut dropped) = (0, 0);
        for (g, b) in guards.iter().zip(&before) {
            let s = g.stats();
            enq += s.enqueued - b.enqueued;
            dropped += s.dropped() - b.dropped();
        }
        drop(d);
        let events = n * 20;
        eprintln!(
            "paced {name}: {:.0} ns/event (thread CPU), {:.1} % of the {} records dropped",
            t.as_nanos() as f64 / events as f64,
            100.0 * dropped as f64 / (enq + dropped).max(1) as f64,
            enq + dropped,
        );
    }
}

criterion_group!(benches, caller, span, paced);
criterion_main!(benches);
