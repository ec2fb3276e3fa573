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

criterion_group!(benches, caller, span);
criterion_main!(benches);
