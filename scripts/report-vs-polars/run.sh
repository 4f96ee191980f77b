#!/usr/bin/env bash
# Report task versus polars / pandas / DuckDB on the same 1,000,000-row CSV, in one run.
#
#   bash scripts/report-vs-polars/run.sh            # from the workspace root
#
# Creates a venv in scripts/report-vs-polars/.venv (gitignored) on first use, writes the
# seeded CSV to scripts/report-vs-polars/data/ (gitignored), times each Python engine
# (median of 7, file read included), then runs `cargo bench -p offload-tasks --bench report`
# on the same file and prints the Rust medians (pool with 1 and 2 threads) from criterion's
# estimates, with the two-thread speed-up of a perfectly parallel loop measured in the same run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rows="${ROWS:-1000000}"
csv="$here/data/transactions-$rows.csv"

if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install -q polars pandas duckdb
fi
mkdir -p "$here/data"
[ -f "$csv" ] || "$here/.venv/bin/python" "$here/gen.py" "$csv" "$rows" 42
echo "file: $csv ($(stat -c %s "$csv") bytes, $rows rows); cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"

for engine in polars duckdb pandas; do
    "$here/.venv/bin/python" "$here/bench.py" "$engine" "$csv" 7 || echo "$engine: failed"
done
for t in 1 2; do
    POLARS_MAX_THREADS=$t "$here/.venv/bin/python" "$here/bench.py" polars "$csv" 7 | sed "s/^polars/polars ($t thread)/"
done

cd "$root"
REPORT_CSV="$csv" cargo bench -p offload-tasks --bench report -- --noplot > "$here/data/cargo-bench.log" 2>&1
"$here/.venv/bin/python" - <<'PY'
import json
def median(group, t):
    e = json.load(open(f"target/criterion/{group}/pool_{t}_thread/new/estimates.json"))
    return e["median"]["point_estimate"] / 1e6
for group, what in [("report_1m_rows", "offload ReportTask"), ("parallel_ceiling", "control: perfectly parallel loop")]:
    one, two = median(group, 1), median(group, 2)
    print(f"{what}: pool 1 thread {one:.1f} ms, 2 threads {two:.1f} ms, speed-up {one / two:.3f}x")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
