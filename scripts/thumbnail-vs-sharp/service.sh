#!/usr/bin/env bash
# Service to service: offload-service beside a Node HTTP server with sharp (sharp-server.mjs),
# both on loopback, driven by the same client (http-load.mjs) with the same photo and load.
# Pool threads = libuv threads; rounds alternate which service goes first; each round's
# ratio is offload's requests/s over sharp's, and the median ratio is printed.
#
# Usage: scripts/thumbnail-vs-sharp/service.sh [rounds] [seconds-per-measurement] [photo...]
# Defaults: 5 rounds of 4 s; the photos of run.sh. Bounded: about
# 2 thread counts x photos x rounds x 2 x seconds, plus the release build.
# Needs Node >= 18 (sharp is installed on first run into ./scratch, gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-5}"
secs="${2:-4}"
shift $(($# < 2 ? $# : 2))
photos=("$@")
if [[ ${#photos[@]} -eq 0 ]]; then
  big="$root/../shared/images/Kleiber_by_Lukas_Baubkus.jpg"
  if [[ -f "$big" ]]; then photos+=("$big"); else echo "skipping 6028x3391: $big not found"; fi
  photos+=("$root/tasks/tests/fixtures/images/seeding_1920x1280.jpg")
fi

command -v node >/dev/null 2>&1 || { echo "node not found" >&2; exit 1; }
if [[ ! -d "$here/scratch/node_modules/sharp" ]]; then
  mkdir -p "$here/scratch"
  (cd "$here/scratch" && npm install --no-audit --no-fund --silent sharp)
fi
(cd "$root" && cargo build --release -q -p offload-service)
service="${CARGO_TARGET_DIR:-$root/target}/release/offload-service"
logs="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT

# Waits (at most 20 s) for a line matching $2 in file $1 and prints the port it names.
port_from() {
  for _ in $(seq 200); do
    if port=$(grep -m1 -oE "$2" "$1" 2>/dev/null | grep -oE '[0-9]+$'); then
      echo "$port"
      return
    fi
    sleep 0.1
  done
  echo "no listening line in $1" >&2
  cat "$1" >&2
  exit 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for threads in 1 2; do
  UV_THREADPOOL_SIZE=$threads node "$here/sharp-server.mjs" 0 >"$logs/sharp.$threads" 2>&1 &
  pids+=($!)
  RUST_LOG=warn,offload_service=info "$service" --threads "$threads" --cache-mb 0 --addr 127.0.0.1:0 \
    >"$logs/offload.$threads" 2>&1 &
  pids+=($!)
  sharp_port=$(port_from "$logs/sharp.$threads" 'listening [0-9]+')
  offload_port=$(port_from "$logs/offload.$threads" '127\.0\.0\.1:[0-9]+')
  # Two requests in flight per thread, so no thread waits for the client between requests.
  inflight=$((2 * threads))
  for photo in "${photos[@]}"; do
    ratios=()
    line=""
    for round in $(seq "$rounds"); do
      measure() { node "$here/http-load.mjs" "http://127.0.0.1:$1/thumbnail?w=256&h=256&q=80" "$photo" "$inflight" "$secs"; }
      if ((round % 2)); then
        s=$(measure "$sharp_port"); o=$(measure "$offload_port")
      else
        o=$(measure "$offload_port"); s=$(measure "$sharp_port")
      fi
      ratios+=("$(awk -v o="$o" -v s="$s" 'BEGIN { printf "%.3f", o / s }')")
      line+=" $o/$s"
    done
    ratio=$(printf '%s\n' "${ratios[@]}" | median)
    echo "$(basename "$photo"), $threads thread(s), $inflight in flight: offload/sharp median ${ratio}x" \
      "(rounds, offload/sharp req/s:$line)"
  done
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
