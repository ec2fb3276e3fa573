//! The caller's cost of one 5-field INFO event through each logship layer and each peer, on one
//! thread and on two threads at once, every layer pointed at its local receiver.
//!
//! Run from `bench/`: `cargo bench --bench caller` (or `bash run.sh`). Each criterion sample
//! times exactly `iters` events per thread; between samples (untimed) the harness waits until
//! the layer has delivered or dropped everything, so the queue never fills and the figure is
//! the enqueue path. Drops are printed after each case (they must be 0 for logship).
//! `LOGSHIP_BENCH_CASES=a,b` runs a subset. After the peers: `json_lines_sink` (logship's core
//! JSON-lines sink) and `span_lifecycle` (new + enter + exit + close of an instrumented span,
//! Fluent layer with span timings on; the figure is per span).
//!
//! The headline figures (wall clock next to thread CPU, paced and tight) come from
//! `throughput callers` (`src/bin/throughput/caller.rs`); this bench is kept for profiling.
//!
//! `caller_1_thread_paced` is the same on one thread, but the harness settles after every
//! `PACED_BURST` events (untimed), the way an application that emits in bursts smaller than
//! what its backend drains sees it: logship's records then come from its recycling pool.
//!
//! The clock is the emitting thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`, user + system,
//! so page faults and allocator work on the caller count), not wall time: on a 2-core machine
//! the layer's worker, the receiver and other load preempt the caller, and wall time would
//! charge their work to the caller. `LOGSHIP_BENCH_CLOCK=wall` switches to wall time.

use std::sync::Barrier;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use logship_bench::{CASES, Sizing, build, receiver, receiver_kind, workload};

/// A start point on the chosen clock.
#[derive(Clone, Copy)]
struct Mark(Duration);

fn wall() -> bool {
    std::env::var("LOGSHIP_BENCH_CLOCK").is_ok_and(|v| v == "wall")
}

fn now() -> Mark {
    if wall() {
        static T0: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        return Mark(T0.get_or_init(std::time::Instant::now).elapsed());
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Mark(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

impl Mark {
    fn elapsed(self) -> Duration {
        now().0.saturating_sub(self.0)
    }
}

fn emit(dispatch: &tracing::Dispatch, work: fn(), iters: u64, threads: usize) -> Duration {
    if threads == 1 {
        return tracing::dispatcher::with_default(dispatch, || {
            let start = now();
            for _ in 0..iters {
                work();
            }
            start.elapsed()
        });
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    tracing::dispatcher::with_default(dispatch, || {
                        work(); // thread-local callsite and span-stack set-up, untimed
                        barrier.wait();
                        let start = now();
                        for _ in 0..iters {
                            work();
                        }
                        start.elapsed()
                    })
                })
            })
            .collect();
        // The slowest thread: every thread emitted `iters` events in at most this time.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .max()
            .unwrap_or_default()
    })
}

/// Events per burst in the paced group (below logship's recycling pool of 4 096 records).
const PACED_BURST: u64 = 2048;

fn caller(c: &mut Criterion) {
    let only: Option<Vec<String>> = std::env::var("LOGSHIP_BENCH_CASES")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    for (threads, paced) in [(1usize, false), (2, false), (1, true)] {
        let group_name = match (threads, paced) {
            (1, false) => "caller_1_thread",
            (_, false) => "caller_2_threads",
            _ => "caller_1_thread_paced",
        };
        let mut g = c.benchmark_group(group_name);
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        // The JSON-lines sink and the span lifecycle (`#[instrument]`) after the CASES.
        for &case in CASES.iter().chain(&["json_lines_sink", "span_lifecycle"]) {
            if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == case)) {
                continue;
            }
            let r = receiver(receiver_kind(case), false);
            let k = build(case, &r.endpoint, Sizing::Large, false);
            // Warm up the connection before timing anything.
            let mut emitted = 0u64;
            emitted += threads as u64 * 10;
            let work = workload(case);
            let _ = emit(&k.dispatch, work, 10, threads);
            let received = || Some((r.count)());
            k.settle(emitted, &received, Duration::from_secs(30));
            let start_received = (r.count)();
            g.bench_function(BenchmarkId::from_parameter(case), |b| {
                b.iter_custom(|iters| {
                    if !paced {
                        let t = emit(&k.dispatch, work, iters, threads);
                        emitted += iters * threads as u64;
                        k.settle(emitted, &received, Duration::from_secs(120));
                        return t;
                    }
                    let mut t = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(PACED_BURST);
                        t += emit(&k.dispatch, work, n, 1);
                        emitted += n;
                        left -= n;
                        k.settle(emitted, &received, Duration::from_secs(120));
                    }
                    t
                })
            });
            let counts = (k.counts)();
            eprintln!(
                "{group_name}/{case}: emitted {emitted}, receiver counted {}, layer delivered {:?} dropped {:?}",
                (r.count)().saturating_sub(start_received)
                    + if r.endpoint.is_empty() {
                        0
                    } else {
                        threads as u64 * 10
                    },
                counts.delivered,
                counts.dropped
            );
            k.shutdown();
        }
        g.finish();
    }
}

criterion_group!(benches, caller);
criterion_main!(benches);
