#!/usr/bin/env bash
# Runs every logship-vs-peers benchmark and regenerates docs/benchmarks.md's tables (between
# the bench:begin/bench:end markers) and docs/benchmarks.svg.
#
#   bash bench/run.sh                 # everything (about 15 minutes on 2 cores)
#   SECS=5 SLOW_SECS=10 bash bench/run.sh
#   CASES=logship_fluent,tracing_fluentd bash bench/run.sh   # a subset
#
# Builds in release in bench/target only; the main workspace never compiles the peers.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${SECS:-5}"
SLOW_SECS="${SLOW_SECS:-10}"
FEATURES=()
# The ECS and Kusto backends can be left out while they do not build (NO_ECS=1 / NO_KUSTO=1).
if [[ -n "${NO_ECS:-}" || -n "${NO_KUSTO:-}" ]]; then
  f=""
  [[ -z "${NO_ECS:-}" ]] && f="ecs"
  [[ -z "${NO_KUSTO:-}" ]] && f="${f:+$f,}kusto"
  FEATURES=(--no-default-features ${f:+--features "$f"})
fi
cargo build --release "${FEATURES[@]}" --bins --benches

notes="$(mktemp)"
{
  echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') on \`$(lscpu | sed -n 's/^Model name:[[:space:]]*//p')\`, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB;"
  echo "\`$(rustc --version)\`; logship at \`$(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git -C .. diff --quiet HEAD -- crates 2>/dev/null || echo ' + uncommitted changes in crates/'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
} > "$notes"

if [[ -n "${CASES:-}" ]]; then export LOGSHIP_BENCH_CASES="$CASES"; fi
rm -rf target/criterion/caller_1_thread target/criterion/caller_2_threads
cargo bench "${FEATURES[@]}" --bench caller 2>&1 | tee target/caller.log

THROUGHPUT_ARGS=(drive --secs "$SECS" --slow-secs "$SLOW_SECS" --out target/throughput.json)
if [[ -n "${CASES:-}" ]]; then THROUGHPUT_ARGS+=(--cases "$CASES"); fi
./target/release/throughput "${THROUGHPUT_ARGS[@]}" 2>&1 | tee target/throughput.log
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)." >> "$notes"

./target/release/report target/throughput.json target/criterion ../docs "$notes"
rm -f "$notes"
