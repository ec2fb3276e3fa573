//! Turns one run's results into the tables of `docs/benchmarks.md` (between the
//! `<!-- bench:begin -->` / `<!-- bench:end -->` markers; everything else in the file is kept)
//! and the chart `docs/benchmarks.svg`.
//!
//! `report <throughput.json> <criterion dir> <docs dir> <machine/notes file>`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

fn median_ns(crit: &Path, group: &str, case: &str) -> Option<f64> {
    let p = crit.join(group).join(case).join("new/estimates.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn fmt_ns(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.0}"))
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
        _ => "–".into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tp: Value = std::fs::read_to_string(&args[0])
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let crit = Path::new(&args[1]);
    let docs = Path::new(&args[2]);
    let notes = std::fs::read_to_string(&args[3]).unwrap_or_default();

    let cases: Vec<&str> = logship_bench::CASES.to_vec();
    let mut md = String::new();
    writeln!(md, "{BEGIN}\n").ok();
    writeln!(md, "{notes}").ok();

    // ---- caller cost ----
    let c1: BTreeMap<&str, Option<f64>> = cases
        .iter()
        .map(|c| (*c, median_ns(crit, "caller_1_thread", c)))
        .collect();
    let c2: BTreeMap<&str, Option<f64>> = cases
        .iter()
        .map(|c| (*c, median_ns(crit, "caller_2_threads", c)))
        .collect();
    let cp: BTreeMap<&str, Option<f64>> = cases
        .iter()
        .map(|c| (*c, median_ns(crit, "caller_1_thread_paced", c)))
        .collect();
    let otel1 = c1["otel_batch_noop"];
    let otelp = cp["otel_batch_noop"];
    let otel2 = c2["otel_batch_noop"];
    writeln!(
        md,
        "### Caller cost (criterion median of the caller thread's CPU time, ns per event, same run)\n"
    )
    .ok();
    writeln!(md, "| layer | 1 thread | 2 threads (per thread) | 1 thread, paced (bursts of 2 048) | OTel bridge ÷ this (1 thr) | OTel ÷ this (2 thr) | OTel ÷ this (paced) | allocs/event (caller, throughput run) |").ok();
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|").ok();
    let allocs: BTreeMap<String, f64> = tp["throughput"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["case"].as_str()?.to_string(),
                r["allocs_per_event"].as_f64()?,
            ))
        })
        .collect();
    for c in &cases {
        writeln!(
            md,
            "| `{c}` | {} | {} | {} | {} | {} | {} | {} |",
            fmt_ns(c1[c]),
            fmt_ns(c2[c]),
            fmt_ns(cp[c]),
            if c.starts_with("logship") {
                ratio(c1[c], otel1)
            } else {
                String::new()
            },
            if c.starts_with("logship") {
                ratio(c2[c], otel2)
            } else {
                String::new()
            },
            if c.starts_with("logship") {
                ratio(cp[c], otelp)
            } else {
                String::new()
            },
            allocs.get(*c).map_or("–".into(), |a| format!("{a:.2}")),
        )
        .ok();
    }

    // ---- throughput ----
    writeln!(
        md,
        "\n### Throughput (one thread emitting flat out for {} s, each layer's defaults)\n",
        tp["secs"]
    )
    .ok();
    writeln!(md, "| layer | emitted/s | delivered/s (receiver, during the run) | received in all | dropped (layer) | emitted − received | drain after stop | peak RSS (VmHWM) | load before → after |").ok();
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|").ok();
    let mut tput: Vec<(String, f64, f64)> = Vec::new();
    // Report order, each throughput-only `X_lite` case right after its twin `X`.
    let mut rows: Vec<&Value> = tp["throughput"].as_array().into_iter().flatten().collect();
    rows.sort_by_key(|r| {
        let case = r["case"].as_str().unwrap_or("");
        let base = case.strip_suffix("_lite").unwrap_or(case);
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
            "| `{case}` | {} | {} | {} | {} | {} | {} ms | {:.1} MiB | {} → {} |",
            fmt_rate(e),
            fmt_rate(d),
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
    writeln!(
        md,
        "\n![caller cost and delivered throughput per layer](benchmarks.svg)\n\n{END}"
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
    let caller: Vec<(String, f64)> = cases
        .iter()
        .filter_map(|c| Some((c.to_string(), c1[c]?)))
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
        "caller cost, 5-field INFO event, 1 thread (median)",
        "ns per event",
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
