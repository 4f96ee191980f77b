#!/usr/bin/env bash
# In-process thumbnails per second, all in one run: sharp (sharp-bench.mjs) beside one or
# more builds of the thumbnail bench. Rounds rotate which contender goes first; per photo and
# thread count it prints each contender's median thumbnails/s and the median, over rounds,
# of its ratio to sharp's rate in the same round.
#
# Usage: scripts/thumbnail-vs-sharp/compare.sh <rounds> <seconds> <label>=<bench-binary>...
# A bench binary is what `cargo bench -p offload-tasks --bench thumbnail --no-run` prints:
# e.g. default=<this build> turbojpeg=<the same with --features turbojpeg> old=<a checkout
# of an older commit>. <seconds> is criterion's measurement time and sharp's total window.
# Needs Node >= 18 (sharp is installed on first run into ./scratch, gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="$1" secs="$2"
shift 2
labels=(sharp) bins=("")
for arg in "$@"; do
  labels+=("${arg%%=*}")
  bins+=("${arg#*=}")
done
big="$root/../shared/images/Kleiber_by_Lukas_Baubkus.jpg"
small="$root/tasks/tests/fixtures/images/seeding_1920x1280.jpg"
[[ -f "$big" ]] || { echo "$big not found" >&2; exit 1; }
if [[ ! -d "$here/scratch/node_modules/sharp" ]]; then
  mkdir -p "$here/scratch"
  (cd "$here/scratch" && npm install --no-audit --no-fund --silent sharp)
fi

# Each prints "<photo> <threads> <thumbnails/s>" lines.
sharp_run() {
  for threads in 1 2; do
    UV_THREADPOOL_SIZE=$threads node "$here/sharp-bench.mjs" "$threads" "$secs" "$big" "$small" |
      awk -v t="$threads" '{ p = ($0 ~ /Kleiber/) ? "6028x3391" : "1920x1280"
        for (i = 1; i <= NF; i++) if ($i == "median") print p, t, $(i + 1) }'
  done
}
bench_run() {
  "$1" --bench --measurement-time "$secs" --warm-up-time 1 --noplot 'thumbnail/' 2>/dev/null |
    awk '/^thumbnail\// { split($1, p, "/"); photo = p[2]; threads = (p[4] ~ /^inline_1/) ? 1 : 2 }
         # The first thrpt line after the name; a "change:" block against the last run
         # repeats it in percent.
         /thrpt:/ && !/%/ { v = $(NF - 3); u = $(NF - 2); if (u ~ /^K/) v *= 1000; print photo, threads, v }'
}

# Every measurement, kept for a second look: round label photo threads thumbnails/s.
mkdir -p "$here/scratch"
out="$here/scratch/compare-$(date +%Y%m%dT%H%M%S).txt"
echo "== machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
n=${#labels[@]}
for round in $(seq "$rounds"); do
  for k in $(seq 0 $((n - 1))); do
    i=$(((k + round - 1) % n))
    if [[ ${labels[$i]} == sharp ]]; then sharp_run; else bench_run "${bins[$i]}"; fi |
      sed "s/^/$round ${labels[$i]} /" >>"$out"
  done
  echo "round $round done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
# Lines: round label photo threads value.
awk -v order="${labels[*]}" '
  function median(list,   a, m, i, j, t) {
    m = split(list, a, " ")
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((m + 1) / 2)]
  }
  { v[$1 " " $2 " " $3 " " $4] = $5; key[$3 " " $4] = 1; if ($1 > rounds) rounds = $1 }
  END {
    nl = split(order, label, " ")
    for (k in key) {
      split(k, pt, " ")
      printf "%s, %s thread(s):\n", pt[1], pt[2]
      for (l = 1; l <= nl; l++) {
        rates = ""; ratios = ""
        for (r = 1; r <= rounds; r++) {
          x = v[r " " label[l] " " k]; s = v[r " sharp " k]
          if (x > 0) rates = rates " " x
          if (x > 0 && s > 0) ratios = ratios " " sprintf("%.3f", x / s)
        }
        printf "  %-10s median %7.1f/s  vs sharp: median %sx  (per round:%s)\n", label[l], median(rates), median(ratios), ratios
      }
    }
  }' "$out"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg); raw figures: $out"
