//! The caller suite: wall clock **and** thread CPU time per event, one fresh process per case.
//!
//! `throughput caller --case C --mode paced|tight --threads T [--events N]` sets the case's
//! layer (pointed at a receiver running in a child process, so that the receiver's memory and
//! threads are not this process's) as the global default, warms it up, then has `T` threads
//! emit `N` events each at once:
//!
//! * `paced`: bursts of [`BURST`] events every [`PERIOD`] (the sleep between bursts is not
//!   timed; each burst is timed and the times are summed, less the timer's own cost measured
//!   on the thread before the run, [`timer_overhead`]). At 10 000 events/s per thread the
//!   queues never fill: the dropped share is printed and must be 0 for a healthy backend.
//! * `tight`: flat out, one timed loop: the figure of an event the layer mostly **drops** once
//!   its queue is full.
//!
//! Per emitting thread: wall time (`Instant`), thread CPU time (`CLOCK_THREAD_CPUTIME_ID`),
//! heap allocations (the counting global allocator's thread-local counter) and minor page
//! faults (`getrusage(RUSAGE_THREAD)`). The figure of a 2-thread run is the slower thread's
//! (by wall time) per-event time. Also: the share of the emitted records the layer dropped
//! during the run (its own dropped + undelivered counters; `n/a` for peers without one), the
//! share delivered after a bounded settle, and the process's peak RSS (`VmHWM`).
//!
//! `throughput callers` runs the suite: every (case, mode, threads) of [`SUITE`] once per
//! round, `--runs` rounds (interleaved: a slow spell of the machine hits every case alike),
//! and writes every run plus the medians to `--out`.

use std::io::Write as _;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use logship_bench::{LayerCounts, Sizing, build, receiver_kind, rss_kib, workload};
use serde_json::{Value, json};

use crate::{Child, allocs, load, opt, spawn};

/// Events per burst in the paced mode.
pub const BURST: u64 = 20;
/// Period of the bursts in the paced mode.
pub const PERIOD: Duration = Duration::from_millis(2);

/// The default suite: (case, mode, threads).
pub const SUITE: &[(&str, &str, usize)] = &[
    // Paced, 1 thread: the headline.
    ("registry_empty_layer", "paced", 1),
    ("json_lines_sink", "paced", 1),
    ("logship_fluent", "paced", 1),
    #[cfg(feature = "ecs")]
    ("logship_ecs", "paced", 1),
    #[cfg(feature = "kusto")]
    ("logship_kusto", "paced", 1),
    ("logship_jkool_http", "paced", 1),
    ("logship_jkool_mqtt", "paced", 1),
    #[cfg(all(feature = "ecs", feature = "kusto"))]
    ("logship_stack5", "paced", 1),
    ("logship_dead", "paced", 1),
    #[cfg(all(feature = "ecs", feature = "kusto"))]
    ("logship_stack5_dead", "paced", 1),
    ("span_lifecycle", "paced", 1),
    ("appender_json_sink", "paced", 1),
    ("otel_batch_noop", "paced", 1),
    ("tracing_loki", "paced", 1),
    ("tracing_loki_dead", "paced", 1),
    ("tracing_fluentd", "paced", 1),
    // Paced, 2 threads.
    ("json_lines_sink", "paced", 2),
    ("logship_fluent", "paced", 2),
    #[cfg(feature = "ecs")]
    ("logship_ecs", "paced", 2),
    #[cfg(all(feature = "ecs", feature = "kusto"))]
    ("logship_stack5", "paced", 2),
    ("otel_batch_noop", "paced", 2),
    // Tight loop.
    ("json_lines_sink", "tight", 1),
    ("logship_fluent", "tight", 1),
    #[cfg(feature = "ecs")]
    ("logship_ecs", "tight", 1),
    #[cfg(feature = "kusto")]
    ("logship_kusto", "tight", 1),
    ("logship_jkool_http", "tight", 1),
    ("logship_jkool_mqtt", "tight", 1),
    ("logship_dead", "tight", 1),
    #[cfg(all(feature = "ecs", feature = "kusto"))]
    ("logship_stack5", "tight", 1),
    ("appender_json_sink", "tight", 1),
    ("otel_batch_noop", "tight", 1),
    ("tracing_loki", "tight", 1),
    ("logship_fluent", "tight", 2),
    ("logship_dead", "tight", 2),
    #[cfg(all(feature = "ecs", feature = "kusto"))]
    ("logship_stack5", "tight", 2),
    ("otel_batch_noop", "tight", 2),
];

/// Default events per thread: paced 10 000 (1 s at 20 per 2 ms), tight 300 000.
pub const PACED_EVENTS: u64 = 10_000;
/// See [`PACED_EVENTS`].
pub const TIGHT_EVENTS: u64 = 300_000;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn thread_minflt() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru.ru_minflt as u64
}

/// One emitting thread's figures.
#[derive(Debug, Clone, Copy, Default)]
struct ThreadFigures {
    wall: Duration,
    cpu: Duration,
    allocs: u64,
    minflt: u64,
    /// The timer overhead subtracted from each burst (paced only).
    timer_wall: Duration,
    /// See `timer_wall`.
    timer_cpu: Duration,
}

/// What the timing itself adds to one burst's window, measured on this thread: (wall, CPU).
/// The wall window holds one `Instant` read; the CPU window one thread-CPU clock read (a
/// system call, ≈ 1 µs in some VMs: 50 ns per event at 20 events per burst) and two
/// `Instant` reads. Medians of 1 001 back-to-back pairs.
fn timer_overhead() -> (Duration, Duration) {
    let (mut w, mut c) = (Vec::with_capacity(1001), Vec::with_capacity(1001));
    for _ in 0..1001 {
        let a = Instant::now();
        let b = Instant::now();
        w.push(b - a);
        let x = thread_cpu();
        let y = thread_cpu();
        c.push(y.saturating_sub(x));
    }
    w.sort();
    c.sort();
    (w[500], c[500] + 2 * w[500])
}

fn emit_thread(work: fn(), paced: bool, n: u64) -> ThreadFigures {
    let overhead = if paced {
        timer_overhead()
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    let (a0, f0) = (allocs(), thread_minflt());
    let mut fig = ThreadFigures {
        timer_wall: overhead.0,
        timer_cpu: overhead.1,
        ..ThreadFigures::default()
    };
    if paced {
        let start = Instant::now();
        let mut done = 0;
        let mut tick = 0u32;
        while done < n {
            let k = BURST.min(n - done);
            // The thread-CPU clock is a system call: read outside the wall-clock window. What
            // each window holds of the timer itself is subtracted (`timer_overhead`).
            let c = thread_cpu();
            let w = Instant::now();
            for _ in 0..k {
                work();
            }
            fig.wall += w.elapsed().saturating_sub(overhead.0);
            fig.cpu += thread_cpu().saturating_sub(c).saturating_sub(overhead.1);
            done += k;
            tick += 1;
            if let Some(rest) = (start + PERIOD * tick).checked_duration_since(Instant::now()) {
                std::thread::sleep(rest);
            }
        }
    } else {
        let (w, c) = (Instant::now(), thread_cpu());
        for _ in 0..n {
            work();
        }
        fig.cpu = thread_cpu().saturating_sub(c);
        fig.wall = w.elapsed();
    }
    fig.allocs = allocs() - a0;
    fig.minflt = thread_minflt() - f0;
    fig
}

/// Starts the case's receiver in a child process (none for in-process cases and closed ports).
fn start_receiver(kind: &str) -> (Option<Child>, String) {
    if kind == "none" || kind == "dead" {
        // A closed port needs no process: bind-and-close here.
        let r = logship_bench::receiver(kind, false);
        return (None, r.endpoint);
    }
    let recv = spawn(&["recv", kind, "0"]);
    let endpoint = recv
        .line(Duration::from_secs(30))
        .and_then(|l| l.strip_prefix("ENDPOINT ").map(str::to_string))
        .unwrap_or_else(|| panic!("receiver {kind} did not start"));
    (Some(recv), endpoint)
}

fn share(part: Option<u64>, whole: u64) -> Value {
    match part {
        Some(p) if whole > 0 => json!(p as f64 / whole as f64),
        _ => Value::Null,
    }
}

/// `throughput caller --case C --mode paced|tight --threads T [--events N]`: prints one JSON
/// line (the last line of stdout).
pub fn caller(args: &[String]) {
    let case = opt(args, "--case").unwrap_or_else(|| panic!("--case"));
    let mode = opt(args, "--mode").unwrap_or_else(|| "paced".into());
    let paced = match mode.as_str() {
        "paced" => true,
        "tight" => false,
        m => panic!("--mode {m}: paced or tight"),
    };
    let threads: usize = opt(args, "--threads")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let n: u64 = opt(args, "--events")
        .and_then(|s| s.parse().ok())
        .unwrap_or(if paced { PACED_EVENTS } else { TIGHT_EVENTS });
    let kind = receiver_kind(&case);
    let dead = kind == "dead";
    let (mut recv, endpoint) = start_receiver(kind);
    let c = build(&case, &endpoint, Sizing::Default, false);
    tracing::dispatcher::set_global_default(c.dispatch.clone()).unwrap_or_else(|e| panic!("{e}"));
    let work = workload(&case);
    let received = |recv: &mut Option<Child>| -> Option<u64> {
        recv.as_mut()
            .and_then(|r| r.ask("count"))
            .and_then(|s| s.parse().ok())
    };

    // Warm-up: connections, callsite registration, each thread's thread-locals; then settle.
    const WARM: u64 = 2_000;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || emit_thread(work, true, WARM / threads as u64));
        }
    });
    let warm = WARM / threads as u64 * threads as u64;
    let recv_cell = std::cell::RefCell::new(&mut recv);
    let got = || -> Option<u64> { received(&mut recv_cell.borrow_mut()) };
    let settle_limit = Duration::from_secs(if dead { 1 } else { 20 });
    c.settle(warm, &got, settle_limit);
    let before: LayerCounts = (c.counts)();

    let barrier = Barrier::new(threads);
    let figs: Vec<ThreadFigures> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    emit_thread(work, paced, n)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let at_stop: LayerCounts = (c.counts)();
    let emitted = n * threads as u64;
    let records = emitted * c.fanout;
    let dropped_during = match (before.dropped, at_stop.dropped) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // Delivered after a bounded settle (the layer's count, else the receiver's).
    c.settle(warm + emitted, &got, settle_limit);
    if at_stop.delivered.is_none() && !dead {
        // A peer without counters (tracing-loki, tracing-fluentd): settle does not wait for
        // it; give its receiver a moment.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let after: LayerCounts = (c.counts)();
    // In-process sinks and logship layers count their own deliveries; the other peers are
    // counted by their receiver.
    let delivered_after = if c.delivers_in_process || after.queued.is_some() {
        after
            .delivered
            .map(|d| d.saturating_sub(before.delivered.unwrap_or(0)))
    } else if dead {
        Some(0)
    } else {
        got().map(|d| d.saturating_sub(warm))
    };
    let dropped_after = match (before.dropped, after.dropped) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let slowest = figs
        .iter()
        .copied()
        .max_by_key(|f| f.wall)
        .unwrap_or_default();
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    let (hwm, _) = rss_kib();
    let v = json!({
        "case": case,
        "mode": mode,
        "threads": threads,
        "events_per_thread": n,
        "fanout": c.fanout,
        "wall_ns": per(slowest.wall),
        "cpu_ns": per(slowest.cpu),
        "wall_ns_each": figs.iter().map(|f| per(f.wall)).collect::<Vec<_>>(),
        "timer_overhead_per_burst_ns": [
            slowest.timer_wall.as_nanos() as u64,
            slowest.timer_cpu.as_nanos() as u64
        ],
        "cpu_ns_each": figs.iter().map(|f| per(f.cpu)).collect::<Vec<_>>(),
        "allocs_per_event": figs.iter().map(|f| f.allocs).sum::<u64>() as f64 / emitted as f64,
        "minflt_per_1000": figs.iter().map(|f| f.minflt).sum::<u64>() as f64 * 1000.0 / emitted as f64,
        "dropped_share": share(dropped_during, records),
        "dropped_share_after_settle": share(dropped_after, records),
        "delivered_share_after_settle": share(delivered_after, records),
        "queued_at_stop": at_stop.queued,
        "last_error": after.error,
        "vmhwm_kib": hwm,
        "load": load(),
    });
    if paced && !dead && dropped_during.is_some_and(|d| d > 0) {
        eprintln!("{case}: WARNING: {dropped_during:?} records dropped in the paced mode");
    }
    let out = std::io::stdout();
    let mut o = out.lock();
    writeln!(o, "{v}").ok();
    o.flush().ok();
    drop(o);
    if let Some(r) = recv_cell.borrow_mut().as_mut() {
        writeln!(r.stdin, "exit").ok();
    }
    // Exit without the shutdown drain (a dead backend would hold it): the figures are taken.
    if let Some(mut r) = recv.take() {
        let _ = r.child.wait();
    }
    std::process::exit(0);
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Runs one `caller` process; its last stdout line is the result.
fn run_one(case: &str, mode: &str, threads: usize, events: u64) -> Option<Value> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args([
            "caller",
            "--case",
            case,
            "--mode",
            mode,
            "--threads",
            &threads.to_string(),
            "--events",
            &events.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
}

/// `throughput callers`: the suite, `--runs` interleaved rounds, medians.
pub fn callers(args: &[String]) {
    let runs: usize = opt(args, "--runs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let paced_n: u64 = opt(args, "--paced-events")
        .and_then(|s| s.parse().ok())
        .unwrap_or(PACED_EVENTS);
    let tight_n: u64 = opt(args, "--tight-events")
        .and_then(|s| s.parse().ok())
        .unwrap_or(TIGHT_EVENTS);
    let out = opt(args, "--out").unwrap_or_else(|| "target/caller.json".into());
    let only: Option<Vec<String>> =
        opt(args, "--cases").map(|s| s.split(',').map(str::to_string).collect());
    let suite: Vec<(&str, &str, usize)> = SUITE
        .iter()
        .copied()
        .filter(|(c, _, _)| only.as_ref().is_none_or(|o| o.iter().any(|x| x == c)))
        .collect();
    let load_start = load();
    let mut all: Vec<Value> = Vec::new();
    for round in 0..runs {
        for &(case, mode, threads) in &suite {
            let n = if mode == "paced" { paced_n } else { tight_n };
            match run_one(case, mode, threads, n) {
                Some(v) => {
                    eprintln!(
                        "round {round} {case:22} {mode} {threads} thr: wall {:>7.0} ns  cpu {:>7.0} ns  allocs {:.2}  faults/1000 {:>6.1}  dropped {}  delivered {}  VmHWM {} MiB  (load {})",
                        v["wall_ns"].as_f64().unwrap_or(f64::NAN),
                        v["cpu_ns"].as_f64().unwrap_or(f64::NAN),
                        v["allocs_per_event"].as_f64().unwrap_or(f64::NAN),
                        v["minflt_per_1000"].as_f64().unwrap_or(f64::NAN),
                        v["dropped_share"],
                        v["delivered_share_after_settle"],
                        v["vmhwm_kib"].as_u64().unwrap_or(0) / 1024,
                        v["load"].as_str().unwrap_or(""),
                    );
                    all.push(v);
                }
                None => eprintln!("round {round} {case} {mode} {threads}: no result"),
            }
        }
    }
    let mut medians = Vec::new();
    for &(case, mode, threads) in &suite {
        let rs: Vec<&Value> = all
            .iter()
            .filter(|v| {
                v["case"] == case
                    && v["mode"] == mode
                    && v["threads"].as_u64() == Some(threads as u64)
            })
            .collect();
        if rs.is_empty() {
            continue;
        }
        let m = |k: &str| median(rs.iter().filter_map(|v| v[k].as_f64()).collect());
        let range = |k: &str| {
            let v: Vec<f64> = rs.iter().filter_map(|v| v[k].as_f64()).collect();
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        medians.push(json!({
            "case": case,
            "mode": mode,
            "threads": threads,
            "runs": rs.len(),
            "wall_ns": m("wall_ns"),
            "wall_ns_range": range("wall_ns"),
            "cpu_ns": m("cpu_ns"),
            "allocs_per_event": m("allocs_per_event"),
            "minflt_per_1000": m("minflt_per_1000"),
            "dropped_share": m("dropped_share"),
            "delivered_share_after_settle": m("delivered_share_after_settle"),
            "vmhwm_kib": m("vmhwm_kib"),
        }));
    }
    let v = json!({
        "paced_events": paced_n,
        "tight_events": tight_n,
        "burst": BURST,
        "period_ms": PERIOD.as_millis() as u64,
        "runs": runs,
        "load_start": load_start,
        "load_end": load(),
        "medians": medians,
        "all": all,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{out}: {e}"));
    eprintln!("wrote {out}");
}

// ---- real server ---------------------------------------------------------------------------

/// Clock ticks per second of `/proc/*/stat` times.
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process, in seconds (`/proc/PID/stat` fields 14 and 15).
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / clk_tck())
}

/// The pid of the local process listening on TCP `port` (IPv4 or IPv6), from the socket inode
/// in `/proc/net/tcp{,6}` and the `socket:[inode]` links under `/proc/*/fd`. None when the
/// port is not local or the process is not readable.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(t) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in t.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is field 9.
            let Some(local) = f.get(1) else { continue };
            let lport = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if lport == Some(port)
                && f.get(3) == Some(&"0A")
                && let Some(inode) = f.get(9)
            {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| link.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// `throughput real`: logship's Fluent layer (acks on, its defaults but for a queue that holds
/// every event) sends `--events` records to `LOGSHIP_BENCH_FLUENT`; delivered/s = acknowledged
/// records ÷ (first emit → last ack), plus the server's CPU share when it is local.
pub fn real(args: &[String]) {
    let out = opt(args, "--out").unwrap_or_else(|| "target/real.json".into());
    let Ok(server) = std::env::var("LOGSHIP_BENCH_FLUENT") else {
        eprintln!(
            "real server: LOGSHIP_BENCH_FLUENT=host:port is not set; skipped (see docs/benchmarks.md)"
        );
        let _ = std::fs::write(&out, r#"{"skipped": "LOGSHIP_BENCH_FLUENT not set"}"#);
        return;
    };
    let n: u64 = opt(args, "--events")
        .and_then(|s| s.parse().ok())
        .or_else(|| {
            std::env::var("LOGSHIP_BENCH_FLUENT_EVENTS")
                .ok()
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or(200_000);
    let port: Option<u16> = server.rsplit(':').next().and_then(|p| p.parse().ok());
    let local = server.starts_with("127.")
        || server.starts_with("localhost")
        || server.starts_with("[::1]");
    let pid: Option<u32> = std::env::var("LOGSHIP_BENCH_FLUENT_PID")
        .ok()
        .and_then(|s| s.parse().ok())
        .or_else(|| {
            if local {
                port.and_then(pid_listening_on)
            } else {
                None
            }
        });
    let (layer, guard) = logship_fluent::FluentLayer::builder("bench.real")
        .with_server(&server)
        .with_pipeline(|p| {
            p.with_max_queue_records((n as usize).max(1 << 15))
                .with_max_queue_bytes(4 << 30)
        })
        .build()
        .unwrap_or_else(|e| panic!("fluent: {e}"));
    let handle = guard.handle();
    let dispatch = tracing::Dispatch::new({
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry().with(layer)
    });
    let load_before = load();
    // SAFETY: an all-zero rusage is valid; getrusage writes into it.
    let self_cpu = || {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a rusage.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    };
    let server_cpu0 = pid.and_then(proc_cpu_secs);
    let self_cpu0 = self_cpu();
    let start = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..n {
            logship_bench::event();
        }
    });
    let emit_secs = start.elapsed().as_secs_f64();
    // Ask for the tail now (as a shutdown would) rather than wait for the batch linger; the
    // loop below sees the acks arrive.
    let flusher = guard.handle();
    std::thread::spawn(move || {
        let _ = flusher.flush(Duration::from_secs(300));
    });
    let deadline = Duration::from_secs(300);
    let mut last_ack = start;
    let mut last = 0;
    loop {
        let s = handle.stats();
        if s.delivered != last {
            last = s.delivered;
            last_ack = Instant::now();
        }
        if s.delivered + s.dropped() + s.undelivered() >= n || start.elapsed() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = (last_ack - start).as_secs_f64();
    let s = handle.stats();
    let server_cpu = match (server_cpu0, pid.and_then(proc_cpu_secs)) {
        (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
        _ => None,
    };
    let v = json!({
        "server": server,
        "events": n,
        "delivered": s.delivered,
        "dropped": s.dropped(),
        "undelivered": s.undelivered(),
        "emit_secs": emit_secs,
        "first_emit_to_last_ack_secs": wall,
        "delivered_per_sec": if wall > 0.0 { s.delivered as f64 / wall } else { 0.0 },
        "server_pid": pid,
        "server_cpu_share": server_cpu,
        "emitter_cpu_share": (self_cpu() - self_cpu0) / wall.max(1e-9),
        "last_error": s.last_error,
        "load_before": load_before,
        "load_after": load(),
    });
    eprintln!("real server: {v}");
    std::fs::write(&out, serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{out}: {e}"));
    let _ = guard.shutdown(Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_process_is_found_from_its_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
        drop(l);
        assert_eq!(pid_listening_on(port), None);
    }

    #[test]
    fn process_cpu_time_grows_with_work() {
        let pid = std::process::id();
        let a = proc_cpu_secs(pid).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        // Busy for 300 ms of CPU at least (clock ticks are 10 ms).
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let b = proc_cpu_secs(pid).unwrap();
        assert!(b > a, "{a} → {b}");
        assert_eq!(proc_cpu_secs(u32::MAX), None);
    }

    #[test]
    fn medians_skip_missing_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(Vec::new()), None);
    }
}
