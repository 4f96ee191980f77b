#!/usr/bin/env bash
# PDF report rendering: offload-tasks (printpdf) versus pdfkit (Node) and reportlab (Python).
#
#   bash scripts/pdf-vs-others/run.sh             # from the workspace root
#
# Installs reportlab into scripts/pdf-vs-others/.venv and pdfkit into
# scripts/pdf-vs-others/node_modules on first use (both gitignored), writes the same
# 1,000 generated rows the Rust bench uses (seed 7), times each library rendering a ~20-page
# table report one document at a time on one thread, then runs
# `cargo bench -p offload-tasks --bench pdf`
# and prints the Rust documents per second from criterion's estimates.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$here/out"
if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install -q reportlab
fi
if [ ! -d "$here/node_modules/pdfkit" ]; then
    (cd "$here" && npm install --silent --no-save --no-package-lock pdfkit)
fi
rows="$here/out/rows-1000.csv"
"$here/.venv/bin/python" "$root/scripts/report-vs-polars/gen.py" "$rows" 1000 7
echo "cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
node "$here/bench_pdfkit.js" "$rows" 20 "$here/out/pdfkit.pdf"
"$here/.venv/bin/python" "$here/bench_reportlab.py" "$rows" 20 "$here/out/reportlab.pdf"

cd "$root"
cargo bench -p offload-tasks --bench pdf -- --noplot > "$here/out/cargo-bench.log" 2>&1
for v in compressed_pool_1_thread compressed_pool_2_thread uncompressed_pool_1_thread uncompressed_pool_2_thread; do
    est="target/criterion/pdf_report_20_pages/$v/new/estimates.json"
    "$here/.venv/bin/python" -c "import json; e=json.load(open('$est')); print(f'offload PdfReportTask {\"$v\"}: {8/(e[\"median\"][\"point_estimate\"]/1e9):.0f} docs/s')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
