#!/usr/bin/env bash
# Soak test of the example service (not run in CI): an offload server with request deadlines
# at 3x its measured capacity for 10 minutes, in a child process of its load generator (the
# RSS sampled is the server's own).
# Fails (exit 1) if the RSS at the end has drifted 10% or more above the RSS after the first
# tenth of the run, or if the counters do not reconcile (every arrival has an outcome; the
# server's http_requests_total matches the answers the load generator got; the pool ended
# every task it accepted). Prints the measurements as JSON.
#
#   service/scripts/soak.sh                  # 10 minutes, thumbnails
#   SOAK_SECONDS=30 service/scripts/soak.sh  # a quick check that it works
#   SOAK_TASK=mixed service/scripts/soak.sh  # thumbnail, report and pdf in turn
set -euo pipefail

seconds="${SOAK_SECONDS:-600}"
task="${SOAK_TASK:-thumbnail}"
load="${SOAK_LOAD:-3}"
cd "$(dirname "$0")/../.."

# Capacity is measured for 10 s (or the whole soak if shorter) before the soak proper.
capacity_seconds=$(( seconds < 10 ? seconds : 10 ))
cargo build --release -p offload-service --example showdown
exec "${CARGO_TARGET_DIR:-target}/release/examples/showdown" --soak \
    --task "$task" --loads "$load" --duration "$seconds" --clients 4 \
    --capacity-seconds "$capacity_seconds"
