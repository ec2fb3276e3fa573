#!/usr/bin/env bash
# Runs every logship-vs-peers benchmark and regenerates docs/benchmarks.md's tables (between
# the bench:begin/bench:end markers) and docs/benchmarks.svg.
#
#   bash bench/run.sh                 # everything (about 10 minutes + the build on 2 cores)
#   SECS=5 SLOW_SECS=10 RUNS=3 bash bench/run.sh
#   CASES=logship_fluent,otel_batch_noop bash bench/run.sh   # a subset
#   LOGSHIP_BENCH_FLUENT=127.0.0.1:24224 bash bench/run.sh   # + the real-server section
#   CRITERION=1 bash bench/run.sh     # + the criterion caller bench (thread CPU time only)
#
# Builds in release in bench/target (or $CARGO_TARGET_DIR); the main workspace never compiles
# the peers.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${SECS:-5}"
SLOW_SECS="${SLOW_SECS:-10}"
RUNS="${RUNS:-3}"
PACED_EVENTS="${PACED_EVENTS:-10000}"
TIGHT_EVENTS="${TIGHT_EVENTS:-300000}"
FEATURES=()
# The ECS and Kusto backends can be left out while they do not build (NO_ECS=1 / NO_KUSTO=1).
if [[ -n "${NO_ECS:-}" || -n "${NO_KUSTO:-}" ]]; then
  f=""
  [[ -z "${NO_ECS:-}" ]] && f="ecs"
  [[ -z "${NO_KUSTO:-}" ]] && f="${f:+$f,}kusto"
  FEATURES=(--no-default-features ${f:+--features "$f"})
fi
cargo build --release "${FEATURES[@]}" --bins --benches
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release"
OUT=target
mkdir -p "$OUT"

# The mosquitto case needs a local broker: install it when missing (Debian/Ubuntu), else skip.
MOSQUITTO="${LOGSHIP_BENCH_MOSQUITTO:-/usr/sbin/mosquitto}"
if [[ ! -x "$MOSQUITTO" ]]; then
  if command -v apt-get >/dev/null && { [[ $(id -u) == 0 ]] || command -v sudo >/dev/null; }; then
    SUDO=""; [[ $(id -u) == 0 ]] || SUDO="sudo"
    echo "mosquitto missing: installing it with apt-get"
    $SUDO apt-get install -y mosquitto >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y mosquitto >/dev/null; } \
      || echo "apt-get install mosquitto failed"
    # The package enables a system broker on port 1883; the bench starts its own.
    $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
  fi
  [[ -x "$MOSQUITTO" ]] || echo "logship_jkool_mqtt_mosquitto: skipped: no mosquitto at $MOSQUITTO and it could not be installed"
fi

notes="$(mktemp)"
{
  echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') on \`$(lscpu | sed -n 's/^Model name:[[:space:]]*//p')\`, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB;"
  echo "\`$(rustc --version)\`; logship at \`$(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git -C .. diff --quiet HEAD -- crates 2>/dev/null || echo ' + uncommitted changes in crates/'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
} > "$notes"

# 1. Caller suite: wall clock and thread CPU, paced and tight, 1 and 2 threads, medians of
#    $RUNS interleaved runs, one process per run.
CALLER_ARGS=(callers --runs "$RUNS" --paced-events "$PACED_EVENTS" --tight-events "$TIGHT_EVENTS" --out "$OUT/caller.json")
if [[ -n "${CASES:-}" ]]; then CALLER_ARGS+=(--cases "$CASES"); fi
"$BIN/throughput" "${CALLER_ARGS[@]}" 2>&1 | tee "$OUT/caller.log"

# 2. Throughput and slow backend.
THROUGHPUT_ARGS=(drive --secs "$SECS" --slow-secs "$SLOW_SECS" --out "$OUT/throughput.json")
if [[ -n "${CASES:-}" ]]; then THROUGHPUT_ARGS+=(--cases "$CASES"); fi
"$BIN/throughput" "${THROUGHPUT_ARGS[@]}" 2>&1 | tee "$OUT/throughput.log"

# 3. Real server (only with LOGSHIP_BENCH_FLUENT=host:port).
"$BIN/throughput" real --out "$OUT/real.json" 2>&1 | tee "$OUT/real.log"

# 4. Optional: the criterion caller bench (thread CPU time, 1 and 2 threads, paced bursts).
if [[ -n "${CRITERION:-}" ]]; then
  if [[ -n "${CASES:-}" ]]; then export LOGSHIP_BENCH_CASES="$CASES"; fi
  cargo bench "${FEATURES[@]}" --bench caller 2>&1 | tee "$OUT/criterion.log"
fi
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)." >> "$notes"

"$BIN/report" "$OUT/throughput.json" "$OUT/caller.json" "$OUT/real.json" ../docs "$notes"
rm -f "$notes"
