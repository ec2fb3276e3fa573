#!/usr/bin/env bash
# The test suite: formatting, lints, docs, then every test of the workspace.
#
# Needs only a Rust toolchain. Suites that talk to third-party peers (the official Python
# clients, mosquitto, osmem-server) run when the peers are present and skip themselves
# otherwise; the end of the run lists what was skipped and how to run it. `.ci/run` installs
# the peers and sets LOGSHIP_REQUIRE_PEERS=1, which turns a missing peer into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The umbrella crate with every feature (backends and `aws-sigv4` pass-through) builds.
cargo check -p logship --all-features --quiet
# The optional features of the core (`metrics`, `serde`) and their example are linted too; their
# tests run after the workspace's.
cargo clippy -p logship-core --all-targets --features metrics,serde -- -D warnings
cargo clippy -p logship --example metrics --features metrics -- -D warnings
cargo clippy -p logship --all-targets --features full,serde -- -D warnings
OTEL_CRATES="-p logship-core -p logship-fluent -p logship-ecs-metrics -p logship-kusto -p logship-jkool -p logship-jkool-http -p logship-jkool-mqtt"
# shellcheck disable=SC2086
cargo clippy $OTEL_CRATES --all-targets --features opentelemetry -- -D warnings
cargo clippy -p logship --example tour --features full,opentelemetry -- -D warnings
# Without the feature no OpenTelemetry crate is compiled into the core.
if cargo tree -p logship-core -e normal | grep -q opentelemetry; then
  echo "logship-core depends on opentelemetry without the feature" >&2
  exit 1
fi
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace --no-fail-fast "$@"
cargo test -p logship-core --features metrics,serde --no-fail-fast "$@"
# Trace context from tracing-opentelemetry (feature `opentelemetry`), in the core and every backend.
# shellcheck disable=SC2086
cargo test $OTEL_CRATES --features opentelemetry --no-fail-fast "$@"
# The settings structs of every backend (feature `serde`).
cargo test -p logship-fluent -p logship-ecs-metrics -p logship-kusto -p logship-jkool-http \
  -p logship-jkool-mqtt --features serde --no-fail-fast "$@"

echo
echo "== third-party peer suites =="
skipped=0
if [ -n "${LOGSHIP_PYTHON:-}" ] && [ -x "${LOGSHIP_PYTHON}" ]; then
  echo "ran:     official-client checks with ${LOGSHIP_PYTHON}"
else
  echo "skipped: official-client checks (fluent-logger, elasticsearch, azure-kusto-data/ingest);"
  echo "         run 'bash .ci/run', or make a venv with those packages and set LOGSHIP_PYTHON=<venv>/bin/python"
  skipped=1
fi
if command -v mosquitto >/dev/null 2>&1; then
  echo "ran:     MQTT suites against mosquitto"
else
  echo "skipped: MQTT suites against mosquitto (the rumqttd ones ran); apt-get install -y mosquitto"
  skipped=1
fi
if [ -n "${LOGSHIP_OSMEM:-}" ] && [ -x "${LOGSHIP_OSMEM}" ]; then
  echo "ran:     Elasticsearch suites against osmem-server"
else
  echo "skipped: Elasticsearch suites against osmem-server; pip install osmem-server and set LOGSHIP_OSMEM=<path to osmem_server/bin/osmem-server>"
  skipped=1
fi
[ "$skipped" = 0 ] || echo "(the suites above skipped themselves: every other test ran)"
