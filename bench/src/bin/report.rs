//! Turns one run's results into the tables of `docs/benchmarks.md` (between the
//! `<!-- bench:begin -->` / `<!-- bench:end -->` markers; everything else in the file is kept)
//! and the chart `docs/benchmarks.svg`.
//!
//! `report <throughput.json> <caller.json> <real.json> <docs dir> <machine/notes file>`
//! (a missing file leaves its section saying so).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn read_json(path: &str) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// The caller suite's medians, by (case, mode, threads).
struct Caller<'a>(&'a Value);

impl Caller<'_> {
    fn get(&self, case: &str, mode: &str, threads: u64) -> Option<&Value> {
        self.0["medians"].as_array()?.iter().find(|v| {
            v["case"] == case && v["mode"] == mode && v["threads"].as_u64() == Some(threads)
        })
    }
    fn wall(&self, case: &str, mode: &str, threads: u64) -> Option<f64> {
        self.get(case, mode, threads)?["wall_ns"].as_f64()
    }
}

fn pct(v: &Value) -> String {
    match v.as_f64() {
        Some(0.0) => "0 %".into(),
        Some(x) if x < 0.001 => format!("{:.3} %", x * 100.0),
        Some(x) => format!("{:.1} %", x * 100.0),
        None => "n/a".into(),
    }
}

fn ns(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.0}"))
}

fn yes(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

/// One table of the caller suite (`mode`), rows in suite order.
fn caller_table(md: &mut String, c: &Caller<'_>, mode: &str) {
    writeln!(md, "| case | threads | wall ns/event (min–max of runs) | thread CPU ns/event | allocs/event (caller) | minor faults / 1 000 events | dropped during the run | delivered after settle | peak RSS (VmHWM) | OTel bridge ÷ this (wall) |").ok();
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|").ok();
    for v in c.0["medians"].as_array().into_iter().flatten() {
        if v["mode"] != mode {
            continue;
        }
        let case = v["case"].as_str().unwrap_or("");
        let threads = v["threads"].as_u64().unwrap_or(1);
        let wall = v["wall_ns"].as_f64();
        let otel = c.wall("otel_batch_noop", mode, threads);
        let r = &v["wall_ns_range"];
        writeln!(
            md,
            "| `{case}` | {threads} | {} ({}–{}) | {} | {} | {} | {} | {} | {:.1} MiB | {} |",
            ns(wall),
            ns(r[0].as_f64()),
            ns(r[1].as_f64()),
            ns(v["cpu_ns"].as_f64()),
            v["allocs_per_event"]
                .as_f64()
                .map_or("–".into(), |a| format!("{a:.2}")),
            v["minflt_per_1000"]
                .as_f64()
                .map_or("–".into(), |a| format!("{a:.1}")),
            pct(&v["dropped_share"]),
            pct(&v["delivered_share_after_settle"]),
            v["vmhwm_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            match (wall, otel) {
                (Some(w), Some(o))
                    if w > 0.0 && (case.starts_with("logship") || case == "json_lines_sink") =>
                {
                    // logship's event cases only (the span lifecycle is not an event).
                    format!("{:.1}×", o / w)
                }
                _ => String::new(),
            },
        )
        .ok();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tp = read_json(&args[0]);
    let cj = read_json(&args[1]);
    let real = read_json(&args[2]);
    let docs = Path::new(&args[3]);
    let notes = std::fs::read_to_string(&args[4]).unwrap_or_default();
    let c = Caller(&cj);

    let mut md = String::new();
    writeln!(md, "{BEGIN}\n").ok();
    writeln!(md, "{notes}").ok();

    // ---- paced ----
    writeln!(
        md,
        "### Caller cost, paced (unsaturated): bursts of {} events every {} ms, {} events per thread\n",
        cj["burst"], cj["period_ms"], cj["paced_events"]
    )
    .ok();
    writeln!(
        md,
        "Medians of {} interleaved runs, one fresh process per run (`throughput callers`). Wall \
         clock and the emitting thread's CPU time per event, summed over the bursts (the sleep \
         between bursts is not timed); with 2 threads emitting at once, the slower thread's \
         figure. The queues never fill: \"dropped during the run\" must be 0 for a healthy \
         backend (the layer's own dropped + undelivered counters ÷ records; n/a: the peer has \
         no counter). Load average {} at the start of the suite, {} at its end.\n",
        cj["runs"],
        cj["load_start"].as_str().unwrap_or("?"),
        cj["load_end"].as_str().unwrap_or("?"),
    )
    .ok();
    caller_table(&mut md, &c, "paced");

    // ---- tight ----
    writeln!(
        md,
        "\n### Caller cost, tight loop ({} events per thread flat out)\n",
        cj["tight_events"]
    )
    .ok();
    writeln!(
        md,
        "**What the tight loop measures: events mostly dropped once the queue is full.** A \
         thread emitting flat out outruns every backend; once a logship queue (32 768 records \
         by default) is full, an event costs the capture and a counted drop. The peers deliver \
         or block instead (OTel's batch processor drops silently). Read the \"dropped\" column \
         before comparing.\n"
    )
    .ok();
    caller_table(&mut md, &c, "tight");

    // ---- throughput ----
    writeln!(
        md,
        "\n### Throughput (one thread emitting flat out for {} s, each layer's defaults)\n",
        tp["secs"]
    )
    .ok();
    writeln!(md, "| layer | emitted/s | delivered/s (receiver, during the run) | delivered/s (the layer's own count: acked, PUBACKed, 2xx) | received in all | dropped (layer) | emitted − received | drain after stop | peak RSS (VmHWM) | load before → after |").ok();
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|").ok();
    let cases: Vec<&str> = logship_bench::CASES
        .iter()
        .chain(&["json_lines_sink"])
        .copied()
        .collect();
    let mut tput: Vec<(String, f64, f64)> = Vec::new();
    // Report order, each throughput-only `X_lite` case right after its twin `X`.
    let mut rows: Vec<&Value> = tp["throughput"].as_array().into_iter().flatten().collect();
    rows.sort_by_key(|r| {
        let case = r["case"].as_str().unwrap_or("");
        let base = case
            .strip_suffix("_lite")
            .or_else(|| case.strip_suffix("_mosquitto"))
            .unwrap_or(case);
        let at = cases.iter().position(|c| *c == base).unwrap_or(usize::MAX);
        (at, case != base)
    });
    for r in rows {
        let case = r["case"].as_str().unwrap_or("");
        let e = r["emitted_per_sec"].as_f64().unwrap_or(0.0);
        let d = r["delivered_per_sec"].as_f64().unwrap_or(0.0);
        tput.push((case.to_string(), e, d));
        writeln!(
            md,
            "| `{case}` | {} | {} | {} | {} | {} | {} | {} ms | {:.1} MiB | {} → {} |",
            fmt_rate(e),
            fmt_rate(d),
            r["layer_delivered_per_sec"]
                .as_f64()
                .map_or("n/a".into(), fmt_rate),
            r["received_total"],
            match &r["layer_dropped"] {
                Value::Null => "n/a".to_string(),
                v => v.to_string(),
            },
            r["lost"],
            r["drain_ms"],
            r["vmhwm_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            r["load_before"].as_str().unwrap_or(""),
            r["load_after"].as_str().unwrap_or(""),
        )
        .ok();
    }

    // ---- slow backend ----
    writeln!(
        md,
        "\n### Slow backend ({} s flat out against a receiver that accepts slowly)\n",
        tp["slow_secs"]
    )
    .ok();
    writeln!(md, "| layer | caller ns/event (mean, wall) | emitted | delivered (Fluent: bytes read) | dropped (layer) | peak RSS | RSS at 1 s → 5 s → end (MiB) | bounded? |").ok();
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|---|").ok();
    for r in tp["slow"].as_array().into_iter().flatten() {
        let case = r["case"].as_str().unwrap_or("");
        let series: Vec<(f64, f64)> = r["rss_series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()? / 1024.0)))
            .collect();
        let at = |t: f64| {
            series
                .iter()
                .find(|(s, _)| *s >= t)
                .or(series.last())
                .map_or(0.0, |p| p.1)
        };
        let end = series.last().map_or(0.0, |p| p.1);
        let mid = at(5.0);
        let bounded = if end <= mid * 1.15 + 2.0 {
            "yes (flat)"
        } else {
            "no (growing)"
        };
        writeln!(
            md,
            "| `{case}` | {:.0} | {} | {} | {} | {:.1} MiB | {:.1} → {:.1} → {:.1} | {bounded} |",
            r["caller_ns_per_event"].as_f64().unwrap_or(0.0),
            r["emitted"],
            r["received_total"],
            match &r["layer_dropped"] {
                Value::Null => "n/a".to_string(),
                v => v.to_string(),
            },
            r["vmhwm_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            at(1.0),
            mid,
            end,
        )
        .ok();
    }

    // ---- real server ----
    writeln!(md, "\n### Real server (Fluent with acks)\n").ok();
    let real_rate = real["delivered_per_sec"].as_f64();
    let real_cpu = real["server_cpu_share"].as_f64();
    if real_rate.is_some() {
        writeln!(md, "| server | events | delivered (acked) | first emit → last ack | delivered/s | server CPU (share of a core) | this process's CPU (share of a core) | dropped + undelivered | load before → after |").ok();
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|").ok();
        writeln!(
            md,
            "| `{}` (pid {}) | {} | {} | {:.2} s | {} | {} | {} | {} | {} → {} |",
            real["server"].as_str().unwrap_or(""),
            real["server_pid"],
            real["events"],
            real["delivered"],
            real["first_emit_to_last_ack_secs"].as_f64().unwrap_or(0.0),
            fmt_rate(real_rate.unwrap_or(0.0)),
            real_cpu.map_or("n/a (not local)".into(), |x| format!("{:.0} %", x * 100.0)),
            real["emitter_cpu_share"]
                .as_f64()
                .map_or("–".into(), |x| format!("{:.0} %", x * 100.0)),
            real["dropped"].as_u64().unwrap_or(0) + real["undelivered"].as_u64().unwrap_or(0),
            real["load_before"].as_str().unwrap_or(""),
            real["load_after"].as_str().unwrap_or(""),
        )
        .ok();
    } else {
        writeln!(
            md,
            "Not run: `LOGSHIP_BENCH_FLUENT=host:port` was not set. Point it at a Fluentd or \
             Fluent Bit `forward` input (`LOGSHIP_BENCH_FLUENT=127.0.0.1:24224 bash bench/run.sh`; \
             `LOGSHIP_BENCH_FLUENT_EVENTS`, default 200 000; `LOGSHIP_BENCH_FLUENT_PID` when the \
             listening process cannot be found from the port)."
        )
        .ok();
    }

    // ---- targets ----
    targets(&mut md, &c, &tp, &real);

    writeln!(
        md,
        "\n![paced caller cost and delivered throughput per layer](benchmarks.svg)\n\n{END}"
    )
    .ok();

    // Splice into docs/benchmarks.md.
    let path = docs.join("benchmarks.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &old[..b], md.trim_end(), &old[e + END.len()..])
        }
        _ => format!("{}\n\n{}\n", old.trim_end(), md.trim_end()),
    };
    std::fs::write(&path, new).unwrap_or_else(|e| panic!("{}: {e}", path.display()));

    // Chart.
    let svg = docs.join("benchmarks.svg");
    let caller: Vec<(String, f64)> = cj["medians"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["mode"] == "paced" && v["threads"].as_u64() == Some(1))
        .filter_map(|v| Some((v["case"].as_str()?.to_string(), v["wall_ns"].as_f64()?)))
        .collect();
    chart(&svg, &caller, &tput).unwrap_or_else(|e| panic!("chart: {e}"));
    eprintln!("wrote {} and {}", path.display(), svg.display());
}

fn bars(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    data: &[(String, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let max = data.iter().map(|d| d.1).fold(1.0, f64::max) * 1.25;
    let n = data.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(170)
        .build_cartesian_2d(0.0..max, 0.0..n as f64)?;
    let names: Vec<String> = data.iter().map(|d| d.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            let i = (*y - 0.5).round();
            if (*y - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                names[n - 1 - i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc(unit)
        .draw()?;
    chart.draw_series(data.iter().enumerate().map(|(i, (name, v))| {
        let y = (n - 1 - i) as f64;
        let color = if name.starts_with("logship") {
            BLUE
        } else if name.starts_with("no_") || name.starts_with("registry") {
            GREEN
        } else if name == "json_lines_sink" || name == "span_lifecycle" {
            BLUE
        } else {
            RED
        };
        Rectangle::new([(0.0, y + 0.15), (*v, y + 0.85)], color.mix(0.7).filled())
    }))?;
    chart.draw_series(data.iter().enumerate().map(|(i, (_, v))| {
        let y = (n - 1 - i) as f64;
        Text::new(
            if *v >= 1e4 {
                format!("{:.0} k", v / 1e3)
            } else {
                format!("{v:.0}")
            },
            (*v + max * 0.01, y + 0.35),
            ("sans-serif", 12),
        )
    }))?;
    Ok(())
}

fn chart(
    path: &Path,
    caller: &[(String, f64)],
    tput: &[(String, f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    // The lower chart has the throughput-only `_lite` rows too.
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    bars(
        &top,
        "caller cost, paced (20 events / 2 ms), 1 thread, wall clock (median of runs)",
        "ns per event (span_lifecycle: per span)",
        caller,
    )?;
    let delivered: Vec<(String, f64)> = tput.iter().map(|t| (t.0.clone(), t.2)).collect();
    bars(
        &bottom,
        "delivered events/s to a local receiver (1 emitting thread)",
        "events per second",
        &delivered,
    )?;
    root.present()?;
    Ok(())
}

/// The rows of issue 17's targets table, computed from this run.
fn targets(md: &mut String, c: &Caller<'_>, tp: &Value, real: &Value) {
    writeln!(md, "\n### Targets (issue 17), from this run\n").ok();
    writeln!(md, "| case | target | measured | status |").ok();
    writeln!(md, "|---|---|---|---|").ok();
    let mut row = |case: &str, target: &str, measured: String, met: Option<bool>| {
        writeln!(md, "| {case} | {target} | {measured} | {} |", yes(met)).ok();
    };
    let p1 = |k: &str| c.wall(k, "paced", 1);
    let singles = [
        "json_lines_sink",
        "logship_fluent",
        "logship_ecs",
        "logship_kusto",
        "logship_jkool_http",
        "logship_jkool_mqtt",
    ];
    let otel = p1("otel_batch_noop");
    let got: Vec<(&str, f64)> = singles.iter().filter_map(|k| Some((*k, p1(k)?))).collect();
    let list = |v: &[(&str, f64)]| {
        v.iter()
            .map(|(k, x)| format!("{} {x:.0}", k.trim_start_matches("logship_")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    row(
        "paced, 1 thread (wall ns/event)",
        "≤ 100, and ≥ 3× under the OTel bridge",
        format!("{}; OTel {}", list(&got), ns(otel)),
        (!got.is_empty() && otel.is_some()).then(|| {
            got.iter()
                .all(|(_, x)| *x <= 100.0 && otel.is_some_and(|o| o >= 3.0 * x))
        }),
    );
    let ratio2 = |k: &'static str, mode: &str| Some((k, c.wall(k, mode, 2)? / c.wall(k, mode, 1)?));
    let rlist = |v: &[(&str, f64)]| {
        v.iter()
            .map(|(k, x)| format!("{} {x:.2}×", k.trim_start_matches("logship_")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let r: Vec<(&str, f64)> = ["json_lines_sink", "logship_fluent", "logship_ecs"]
        .iter()
        .filter_map(|k| ratio2(k, "paced"))
        .collect();
    row(
        "paced, 2 threads",
        "≤ 1.25× the 1-thread figure",
        format!(
            "{}; OTel {}",
            rlist(&r),
            c.wall("otel_batch_noop", "paced", 2)
                .map_or("–".into(), |o| format!("{o:.0} ns"))
        ),
        (!r.is_empty()).then(|| r.iter().all(|(_, x)| *x <= 1.25)),
    );
    let r: Vec<(&str, f64)> = ["logship_dead", "logship_fluent"]
        .iter()
        .filter_map(|k| ratio2(k, "tight"))
        .collect();
    row(
        "tight, 2 threads, Fluent (dead port / acks)",
        "≤ 1.25× the 1-thread figure; cost not growing with threads (contention model in docs/architecture.md)",
        format!(
            "{} (per thread: dead {} / acks {} ns; 1 thread: {} / {} ns)",
            rlist(&r),
            ns(c.wall("logship_dead", "tight", 2)),
            ns(c.wall("logship_fluent", "tight", 2)),
            ns(c.wall("logship_dead", "tight", 1)),
            ns(c.wall("logship_fluent", "tight", 1)),
        ),
        (r.len() == 2).then(|| r.iter().all(|(_, x)| *x <= 1.25)),
    );
    let one = p1("logship_fluent");
    let stack = c.get("logship_stack5", "paced", 1);
    let stack_wall = stack.and_then(|v| v["wall_ns"].as_f64());
    // The stack's RSS bound holds in every regime: the largest peak of its runs (paced and
    // tight, 1 and 2 threads).
    let stack_rss = c.0["medians"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["case"] == "logship_stack5")
        .filter_map(|v| v["vmhwm_kib"].as_f64())
        .reduce(f64::max)
        .map(|k| k / 1024.0);
    row(
        "5 logship layers stacked, paced, 1 thread",
        "≤ 2× one layer (≤ 300 ns); RSS ≤ 64 MiB",
        format!(
            "{} ns (one layer, Fluent: {} ns); {} allocs/event; peak RSS {} (largest of its paced and tight runs); tight: {} ns",
            ns(stack_wall),
            ns(one),
            stack
                .and_then(|v| v["allocs_per_event"].as_f64())
                .map_or("–".into(), |a| format!("{a:.2}")),
            stack_rss.map_or("–".into(), |r| format!("{r:.0} MiB")),
            ns(c.wall("logship_stack5", "tight", 1)),
        ),
        match (stack_wall, one, stack_rss) {
            (Some(s), Some(o), Some(r)) => Some(s <= 2.0 * o && s <= 300.0 && r <= 64.0),
            _ => None,
        },
    );
    let dead = |k: &str, healthy: Option<f64>, factor: f64, target: &str, label: &str| {
        let d = c.get(k, "paced", 1);
        let w = d.and_then(|v| v["wall_ns"].as_f64());
        let a = d.and_then(|v| v["allocs_per_event"].as_f64());
        let f = d.and_then(|v| v["minflt_per_1000"].as_f64());
        (
            label.to_string(),
            target.to_string(),
            format!(
                "{} ns (healthy {} ns); {} allocs/event; {} faults/1000",
                ns(w),
                ns(healthy),
                a.map_or("–".into(), |a| format!("{a:.2}")),
                f.map_or("–".into(), |f| format!("{f:.1}")),
            ),
            match (w, healthy, a) {
                (Some(w), Some(h), Some(a)) => Some(w <= factor * h && a < 0.005),
                _ => None,
            },
        )
    };
    let rows = [
        dead(
            "logship_stack5_dead",
            stack_wall,
            3.0,
            "≤ 3× the healthy stack; 0 allocs",
            "5 stacked layers, every backend down, paced",
        ),
        dead(
            "logship_dead",
            one,
            2.0,
            "≤ 2× the healthy layer (Fluent); 0 allocs",
            "one layer (Fluent), backend down, paced",
        ),
    ];
    for (label, target, measured, met) in rows {
        let loki = if label.starts_with('5') {
            format!("; tracing_loki_dead {} ns", ns(p1("tracing_loki_dead")))
        } else {
            String::new()
        };
        row(&label, &target, format!("{measured}{loki}"), met);
    }
    let span = p1("span_lifecycle");
    row(
        "span new + enter + exit + close (`#[instrument]`), paced, 1 thread",
        "≤ 300 ns; no lock on enter/exit",
        format!(
            "{} ns wall, {} ns thread CPU (Fluent layer, span timings on)",
            ns(span),
            ns(c.get("span_lifecycle", "paced", 1)
                .and_then(|v| v["cpu_ns"].as_f64()))
        ),
        span.map(|s| s <= 300.0),
    );
    let tput = |case: &str, key: &str| -> Option<f64> {
        tp["throughput"]
            .as_array()?
            .iter()
            .find(|r| r["case"] == case)?[key]
            .as_f64()
    };
    let jl = tput("json_lines_sink", "delivered_per_sec");
    let ap = tput("appender_json_sink", "delivered_per_sec");
    row(
        "JSON-lines sink delivered/s (discarding writer)",
        "≥ tracing-appender non_blocking",
        format!(
            "{} /s; appender {} /s",
            jl.map_or("–".into(), fmt_rate),
            ap.map_or("–".into(), fmt_rate)
        ),
        jl.zip(ap).map(|(j, a)| j >= a),
    );
    let rr = real["delivered_per_sec"].as_f64();
    let rc = real["server_cpu_share"].as_f64();
    row(
        "Fluent with acks to a real Fluentd / Fluent Bit",
        "≥ 3× today (34–53 k/s: ≥ 159 k/s), server ≥ 90 % of a core",
        match rr {
            Some(r) => format!(
                "{} /s, server at {}",
                fmt_rate(r),
                rc.map_or("n/a".into(), |c| format!("{:.0} % of a core", c * 100.0))
            ),
            None => "not run (`LOGSHIP_BENCH_FLUENT` unset)".into(),
        },
        rr.map(|r| r >= 159_000.0 && rc.is_some_and(|c| c >= 0.9)),
    );
    let mq = tput("logship_jkool_mqtt_mosquitto", "layer_delivered_per_sec");
    let mq_sub = tput("logship_jkool_mqtt_mosquitto", "delivered_per_sec");
    row(
        "MQTT QoS 1 through mosquitto",
        "≥ 150 k/s PUBACKed",
        match mq {
            Some(m) => format!(
                "{} /s PUBACKed; the QoS 0 subscriber counted {} /s",
                fmt_rate(m),
                mq_sub.map_or("–".into(), fmt_rate)
            ),
            None => "not run (no mosquitto)".into(),
        },
        mq.map(|m| m >= 150_000.0),
    );
    let jk = tput("logship_jkool_http_lite", "delivered_per_sec");
    row(
        "jKool HTTP, one document per request (light receiver)",
        "≥ 300 k/s",
        format!("{} /s", jk.map_or("–".into(), fmt_rate)),
        jk.map(|j| j >= 300_000.0),
    );
    let es = tput("logship_ecs_lite", "delivered_per_sec");
    let ku = tput("logship_kusto_lite", "delivered_per_sec");
    row(
        "ECS / Kusto delivered to light receivers",
        "≥ 1 M/s each",
        format!(
            "ECS {} /s, Kusto {} /s",
            es.map_or("–".into(), fmt_rate),
            ku.map_or("–".into(), fmt_rate)
        ),
        es.zip(ku).map(|(e, k)| e >= 1e6 && k >= 1e6),
    );
    writeln!(
        md,
        "\nLoad average at the start of the caller suite: {}; at its end: {}. Rows not met: \
         see the profiles in the sections below the generated block.",
        c.0["load_start"].as_str().unwrap_or("?"),
        c.0["load_end"].as_str().unwrap_or("?"),
    )
    .ok();
}
