//! Throughput and slow-backend harness: one process per case.
//!
//! ```text
//! throughput drive [--secs 5] [--slow-secs 10] [--cases a,b,..] [--out results.json]
//!                  [--no-slow] [--no-fast]   (skip the slow-backend / the throughput runs)
//! throughput probe <case> [events]                   (one process, in-process receiver)
//! throughput recv <receiver-kind> <slow 0|1>        (spawned by drive)
//! throughput emit <case> <endpoint> <secs> <slow 0|1> (spawned by drive)
//! throughput caller --case C --mode paced|tight --threads 1|2 [--events N]
//!                                                    (one caller measurement, one process)
//! throughput callers [--runs 3] [--cases a,b] [--paced-events N] [--tight-events N]
//!                    [--out target/caller.json]    (the caller suite: cases × runs, interleaved)
//! throughput real [--events N] [--out target/real.json]
//!                    (Fluent with acks to LOGSHIP_BENCH_FLUENT=host:port)
//! ```
//!
//! `drive` starts, for each case, a receiver process and an emitter process. The emitter sets
//! the case's layer as the global subscriber, emits the 5-field event flat out on one thread
//! for the given time, then reports its counters while the layer drains. Only the emitter's
//! memory is measured (`VmHWM`, and `VmRSS` sampled every 250 ms), so the receiver's own
//! memory never counts against a layer. The caller thread's heap allocations are counted by a
//! counting global allocator (thread-local counter, no atomics).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship_bench::{CASES, Sizing, build, event, receiver, receiver_kind, rss_kib};

#[path = "throughput/caller.rs"]
mod caller;
use serde_json::{Value, json};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

pub(crate) fn allocs() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("recv") => recv(&args[1], args[2] == "1"),
        Some("probe") => probe(
            &args[1],
            args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000),
        ),
        Some("caller") => caller::caller(&args),
        Some("callers") => caller::callers(&args),
        Some("real") => caller::real(&args),
        Some("emit") => emit(
            &args[1],
            &args[2],
            args[3].parse().unwrap_or(5.0),
            args[4] == "1",
        ),
        _ => drive(&args),
    }
}

// ---- receiver process ----------------------------------------------------------------------

fn recv(kind: &str, slow: bool) {
    let r = receiver(kind, slow);
    let out = std::io::stdout();
    writeln!(out.lock(), "ENDPOINT {}", r.endpoint).ok();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "count" {
            writeln!(out.lock(), "{}", (r.count)()).ok();
        } else {
            break;
        }
    }
    let (hwm, _) = rss_kib();
    eprintln!("receiver {kind}: VmHWM {} MiB", hwm / 1024);
    // Stops what the receiver runs in other processes (mosquitto).
    drop(r);
    std::process::exit(0);
}

/// Events emitted (and delivered) before `probe` counts: fills logship's recycling pool.
const WARM: u64 = 4096;

/// Emits `n` events into one case with an in-process receiver and prints what each side saw.
fn probe(case: &str, n: u64) {
    let r = receiver(receiver_kind(case), false);
    let c = build(case, &r.endpoint, Sizing::Large, false);
    // Warm up (connection, callsite registration), settle, then count.
    tracing::dispatcher::with_default(&c.dispatch, || {
        for _ in 0..WARM {
            event();
        }
    });
    let received = || Some((r.count)());
    c.settle(WARM, &received, Duration::from_secs(30));
    // PROBE_BURST=k: emit in bursts of k, settling (untimed) between bursts.
    let burst: u64 = std::env::var("PROBE_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    let a0 = allocs();
    let mut emit = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let k = burst.min(n - done);
        let t = Instant::now();
        tracing::dispatcher::with_default(&c.dispatch, || {
            for _ in 0..k {
                event();
            }
        });
        emit += t.elapsed();
        done += k;
        if done < n {
            c.settle(WARM + done, &received, Duration::from_secs(30));
        }
    }
    let per_event = (allocs() - a0) as f64 / n as f64;
    let n = n + WARM;
    let drain = c.settle(n, &received, Duration::from_secs(30));
    println!(
        "{case}: emitted {n} in {emit:?} ({per_event:.3} allocations per event on the caller), drained in {drain:?}; receiver {}; layer {:?}",
        (r.count)(),
        (c.counts)()
    );
    c.shutdown();
}

// ---- emitter process -----------------------------------------------------------------------

fn emit(case: &str, endpoint: &str, secs: f64, slow: bool) {
    let c = build(case, endpoint, Sizing::Default, slow);
    tracing::dispatcher::set_global_default(c.dispatch.clone()).unwrap_or_else(|e| panic!("{e}"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = |v: Value| {
        let o = out.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = o.lock();
        writeln!(o, "{v}").ok();
        o.flush().ok();
    };

    // RSS sampler.
    let samples: Arc<Mutex<Vec<(f64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    {
        let samples = samples.clone();
        let stop = stop_sampling.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (_, rss) = rss_kib();
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((t0.elapsed().as_secs_f64(), rss));
                std::thread::sleep(Duration::from_millis(250));
            }
        });
    }

    // Warm up (connections, lazy init), then measure.
    for _ in 0..1000 {
        event();
    }
    std::thread::sleep(Duration::from_millis(200));
    let warm = 1000u64;
    let a0 = allocs();
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(secs);
    let mut emitted = 0u64;
    loop {
        for _ in 0..256 {
            event();
        }
        emitted += 256;
        if start.elapsed() >= deadline {
            break;
        }
    }
    let emit_secs = start.elapsed().as_secs_f64();
    let a1 = allocs();
    let counts = (c.counts)();
    say(json!({
        "stopped": emitted,
        "warmup": warm,
        "emit_secs": emit_secs,
        "allocs_per_event": (a1 - a0) as f64 / emitted as f64,
        "delivered_at_stop": counts.delivered,
    }));

    // Report counters until told to exit.
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
        let _ = tx.send(());
    });
    loop {
        let k = (c.counts)();
        say(json!({"delivered": k.delivered, "dropped": k.dropped, "queued": k.queued}));
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            break;
        }
    }
    stop_sampling.store(true, Ordering::Relaxed);
    let (hwm, rss) = rss_kib();
    let k = (c.counts)();
    let series = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    say(json!({
        "final": true,
        "vmhwm_kib": hwm,
        "vmrss_kib": rss,
        "delivered": k.delivered,
        "dropped": k.dropped,
        "queued": k.queued,
        "rss_series": series,
    }));
    // Exit without the shutdown drain: the figures are taken.
    std::process::exit(0);
}

// ---- driver --------------------------------------------------------------------------------

pub(crate) fn opt(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

pub(crate) struct Child {
    pub(crate) child: std::process::Child,
    pub(crate) stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

pub(crate) fn spawn(args: &[&str]) -> Child {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Child {
        child,
        stdin,
        lines: rx,
    }
}

impl Child {
    pub(crate) fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }
    pub(crate) fn ask(&mut self, q: &str) -> Option<String> {
        writeln!(self.stdin, "{q}").ok()?;
        self.stdin.flush().ok()?;
        self.line(Duration::from_secs(10))
    }
}

pub(crate) fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_case(case: &str, secs: f64, slow: bool) -> Value {
    let kind = receiver_kind(case);
    let mut recv = spawn(&["recv", kind, if slow { "1" } else { "0" }]);
    let endpoint = recv
        .line(Duration::from_secs(30))
        .and_then(|l| l.strip_prefix("ENDPOINT ").map(str::to_string))
        .unwrap_or_else(|| panic!("receiver {kind} did not start"));
    let load_before = load();
    let mut em = spawn(&[
        "emit",
        case,
        &endpoint,
        &secs.to_string(),
        if slow { "1" } else { "0" },
    ]);
    let stopped: Value = em
        .line(Duration::from_secs_f64(secs + 60.0))
        .and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or_else(|| panic!("{case}: emitter did not report"));
    let stop_at = Instant::now();
    let in_process = kind == "none";
    let received_at_stop: u64 = if in_process {
        stopped["delivered_at_stop"].as_u64().unwrap_or(0)
    } else {
        recv.ask("count").and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let emitted =
        stopped["stopped"].as_u64().unwrap_or(0) + stopped["warmup"].as_u64().unwrap_or(0);

    // Drain: until everything is delivered or dropped, or nothing moves for 3 s (30 s at most;
    // a slow backend is not waited for).
    let limit = if slow {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(30)
    };
    let mut last_change = stop_at;
    let mut last_seen = received_at_stop;
    let mut received = received_at_stop;
    let mut layer: Value = Value::Null;
    while stop_at.elapsed() < limit {
        while let Some(l) = em.line(Duration::from_millis(1)) {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                layer = v;
            }
        }
        received = if in_process {
            layer["delivered"].as_u64().unwrap_or(received)
        } else {
            recv.ask("count")
                .and_then(|s| s.parse().ok())
                .unwrap_or(received)
        };
        if received != last_seen {
            last_seen = received;
            last_change = Instant::now();
        }
        let dropped = layer["dropped"].as_u64().unwrap_or(0);
        if received + dropped >= emitted && layer["queued"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        if last_change.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let drain_ms = (last_change - stop_at).as_millis() as u64;
    writeln!(em.stdin, "exit").ok();
    let mut fin = Value::Null;
    while let Some(l) = em.line(Duration::from_secs(20)) {
        if let Ok(v) = serde_json::from_str::<Value>(&l)
            && v["final"].as_bool() == Some(true)
        {
            fin = v;
            break;
        }
    }
    let _ = em.child.wait();
    drop(recv.stdin);
    let _ = recv.child.wait();

    let emit_secs = stopped["emit_secs"].as_f64().unwrap_or(secs);
    let measured = stopped["stopped"].as_u64().unwrap_or(0);
    let r = json!({
        "case": case,
        "slow": slow,
        "secs": emit_secs,
        "emitted": emitted,
        "emitted_per_sec": measured as f64 / emit_secs,
        "caller_ns_per_event": emit_secs * 1e9 / measured.max(1) as f64,
        "allocs_per_event": stopped["allocs_per_event"],
        "delivered_at_stop": received_at_stop,
        "delivered_per_sec": received_at_stop as f64 / emit_secs,
        // The layer's own count (logship: acknowledged — PUBACKed, acked, 2xx — records).
        "layer_delivered_at_stop": stopped["delivered_at_stop"],
        "layer_delivered_per_sec": stopped["delivered_at_stop"].as_f64().map(|d| d / emit_secs),
        "received_total": received,
        "layer_dropped": fin["dropped"],
        "layer_queued": fin["queued"],
        "lost": emitted.saturating_sub(received),
        "drain_ms": drain_ms,
        "vmhwm_kib": fin["vmhwm_kib"],
        "rss_series": fin["rss_series"],
        "load_before": load_before,
        "load_after": load(),
    });
    eprintln!(
        "{case:24} slow={slow:5} emitted/s {:>11.0} delivered/s {:>11.0} received {:>10} dropped {:>10} drain {:>6} ms VmHWM {:>5} MiB allocs/ev {:.2} (load {})",
        r["emitted_per_sec"].as_f64().unwrap_or(0.0),
        r["delivered_per_sec"].as_f64().unwrap_or(0.0),
        received,
        r["layer_dropped"],
        drain_ms,
        r["vmhwm_kib"].as_u64().unwrap_or(0) / 1024,
        r["allocs_per_event"].as_f64().unwrap_or(0.0),
        r["load_after"].as_str().unwrap_or(""),
    );
    r
}

fn drive(args: &[String]) {
    let secs: f64 = opt(args, "--secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let slow_secs: f64 = opt(args, "--slow-secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let out = opt(args, "--out").unwrap_or_else(|| "target/throughput.json".into());
    let only: Option<Vec<String>> =
        opt(args, "--cases").map(|s| s.split(',').map(str::to_string).collect());
    let skip_slow = args.iter().any(|a| a == "--no-slow");
    let skip_fast = args.iter().any(|a| a == "--no-fast");
    let cases: Vec<&str> = CASES
        .iter()
        .chain(logship_bench::THROUGHPUT_EXTRA)
        .copied()
        .filter(|c| *c != "registry_empty_layer" && *c != "no_subscriber")
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|x| x == c)))
        .filter(|c| {
            let path = logship_bench::mosquitto_path();
            let ok = *c != "logship_jkool_mqtt_mosquitto" || std::path::Path::new(&path).exists();
            if !ok {
                eprintln!(
                    "{c}: skipped: no mosquitto at {path} (bench/run.sh installs it with apt-get)"
                );
            }
            ok
        })
        .collect();
    let mut fast = Vec::new();
    let mut slow = Vec::new();
    if !skip_fast {
        for c in &cases {
            fast.push(run_case(c, secs, false));
        }
    }
    if !skip_slow {
        for c in &cases {
            if *c == "logship_jkool_mqtt" || logship_bench::THROUGHPUT_EXTRA.contains(c) {
                continue; // no slow MQTT broker in the harness; the light twins add nothing
            }
            slow.push(run_case(c, slow_secs, true));
        }
    }
    let v = json!({"throughput": fast, "slow": slow, "secs": secs, "slow_secs": slow_secs});
    std::fs::write(&out, serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{out}: {e}"));
    eprintln!("wrote {out}");
}
