#!/usr/bin/env bash
# Two builds of the thumbnail bench in one run: rounds alternate which goes first, and each
# benchmark's ratio (B's thumbnails/s over A's) is the median over the rounds.
#
# Usage: scripts/thumbnail-vs-sharp/ab.sh <bench-binary-A> <bench-binary-B> [rounds] [seconds]
# The binaries are what `cargo bench -p offload-tasks --bench thumbnail --no-run` prints,
# e.g. from a checkout of the previous commit and from this one (defaults: 5 rounds, 3 s).
set -euo pipefail
a="$1" b="$2" rounds="${3:-5}" secs="${4:-3}"

# Prints "<photo>/<benchmark> <thumbnails/s>" per benchmark; the backend part of the group
# name is dropped, so that A and B line up.
run() {
  "$1" --bench --measurement-time "$secs" --warm-up-time 1 --noplot 'thumbnail/' 2>/dev/null |
    awk '/^thumbnail\// { split($1, p, "/"); id = p[2] "/" p[4] }
         /thrpt:/ { v = $(NF - 3); u = $(NF - 2); if (u ~ /^K/) v *= 1000; print id, v }'
}

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "== machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  if ((round % 2)); then order="A B"; else order="B A"; fi
  for side in $order; do
    if [[ $side == A ]]; then bin="$a"; else bin="$b"; fi
    run "$bin" | sed "s/^/$round $side /" >>"$out"
  done
done
# round side id value -> per id and round, B/A; then the median per id.
awk '{ v[$3 " " $1 " " $2] = $4; ids[$3] = 1; if ($1 > n) n = $1 }
  END {
    for (id in ids)
      for (r = 1; r <= n; r++)
        if (v[id " " r " A"] > 0 && v[id " " r " B"] > 0)
          printf "%s %.4f %.1f/%.1f\n", id, v[id " " r " B"] / v[id " " r " A"], v[id " " r " B"], v[id " " r " A"]
  }' "$out" | sort -k1,1 -k2,2g | awk '
  function flush() { if (id != "") printf "%-28s B/A median %.2fx (B/A thumbnails/s, sorted by ratio:%s)\n", id, r[int((m + 1) / 2)], line }
  $1 != id { flush(); id = $1; m = 0; line = "" }
  { r[++m] = $2; line = line " " $3 }
  END { flush() }'
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
