#!/usr/bin/env bash
# Thumbnails per second: sharp (libvips) beside offload-tasks, same photos, same job
# (fit inside 256x256, JPEG quality 80), one thread and two.
#
# Usage: scripts/thumbnail-vs-sharp/run.sh [seconds-per-measurement]   (default 10)
# The Rust side runs twice: the default build (libjpeg-turbo's decoder from MozJPEG, compiled
# by cc without SIMD), then libjpeg-turbo 3 (feature `turbojpeg`) when cmake and nasm are
# installed. compare.sh measures sharp and several bench builds in interleaved rounds and
# prints median ratios (what the README's table quotes); service.sh compares offload-service
# with a Node + sharp server over HTTP.
# Needs Node >= 18 for sharp (installed on first run into ./scratch, gitignored); without
# Node only the Rust side runs. Photos: ../shared/images/Kleiber_by_Lukas_Baubkus.jpg beside
# the repository (6028x3391) and tasks/tests/fixtures/images/seeding_1920x1280.jpg.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-10}"

photos=()
big="$root/../shared/images/Kleiber_by_Lukas_Baubkus.jpg"
if [[ -f "$big" ]]; then photos+=("$big"); else echo "skipping 6028x3391: $big not found"; fi
photos+=("$root/tasks/tests/fixtures/images/seeding_1920x1280.jpg")

echo "== machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

if command -v node >/dev/null 2>&1; then
  if [[ ! -d "$here/scratch/node_modules/sharp" ]]; then
    mkdir -p "$here/scratch"
    (cd "$here/scratch" && npm install --no-audit --no-fund --silent sharp)
  fi
  echo "== sharp, 1 thread"
  UV_THREADPOOL_SIZE=1 node "$here/sharp-bench.mjs" 1 "$secs" "${photos[@]}"
  echo "== sharp, 2 threads"
  UV_THREADPOOL_SIZE=2 node "$here/sharp-bench.mjs" 2 "$secs" "${photos[@]}"
else
  echo "== node not found: skipping sharp"
fi

echo "== offload-tasks (criterion; thrpt is thumbnails/s, middle value is the estimate)"
cd "$root"
cargo bench -p offload-tasks --bench thumbnail -- --measurement-time "$secs" 2>&1 |
  grep -E '^thumbnail/|thrpt:'
if command -v cmake >/dev/null 2>&1 && command -v nasm >/dev/null 2>&1; then
  cargo bench -p offload-tasks --bench thumbnail --features turbojpeg -- --measurement-time "$secs" 2>&1 |
    grep -E '^thumbnail/|thrpt:'
else
  echo "== cmake or nasm not found: skipping the libjpeg-turbo build"
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
