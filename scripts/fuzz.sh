#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time and fails if any of them finds a crash,
# a hang or a leak (see docs/fuzzing.md).
#
#   scripts/fuzz.sh                       # every target, 20 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh      # longer
#   scripts/fuzz.sh core_codec_decode     # only the named targets
#   FUZZ_JOBS=2 scripts/fuzz.sh           # run two targets at a time
#
# cargo-fuzz drives libFuzzer through nightly-only rustc flags (-Zsanitizer=address, …). With
# only a stable toolchain installed, RUSTC_BOOTSTRAP=1 unlocks them (set here unless the
# caller set it). cargo-fuzz is installed from crates.io when missing.
#
# Each run starts from fuzz/corpus/<target>/ (the committed seed-* files plus whatever earlier
# local runs added; .gitignore keeps the latter out of git). A crashing input is written to
# fuzz/artifacts/<target>/ and its path printed at the end: replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# then add it as a regression test beside the code it crashed (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-20}"
jobs="${FUZZ_JOBS:-1}"
# A single input that runs longer than this counts as a hang.
timeout_per_input="${FUZZ_TIMEOUT:-10}"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz =="
  cargo install --locked cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (release, address sanitizer) =="
cargo fuzz build

logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT

run_one() {
  local t="$1"
  mkdir -p "corpus/$t"
  # -rss_limit_mb: a decoder that lets a small input allocate without bound is a finding too.
  if cargo fuzz run "$t" -- \
      -max_total_time="$seconds" -timeout="$timeout_per_input" -rss_limit_mb=2048 \
      -print_final_stats=1 >"$logdir/$t.log" 2>&1; then
    echo "ok      $t ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$logdir/$t.log" | grep -o '[0-9]*$' || echo '?') runs in ${seconds}s)"
  else
    echo "FAILED  $t"
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to|Running: ' "$logdir/$t.log" | head -20 | sed 's/^/        /'
    return 1
  fi
}

failed=()
running=0
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=("$!")
  names+=("$t")
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    if ! wait "${pids[0]}"; then failed+=("${names[0]}"); fi
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
    running=$((running - 1))
  fi
done
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then failed+=("${names[$i]}"); fi
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}"
  echo "inputs are in fuzz/artifacts/<target>/"
  exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds}s each without a crash"
