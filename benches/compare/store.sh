#!/usr/bin/env bash
# The summary store's targets (issue 20), in one run, as a Markdown table for BENCHMARKS.md:
#
#   benches/compare/store.sh [ROWS]          default 10000000
#
# - `summarize`, then `retention --store`, then `rfm --store` (three commands) against DuckDB
#   computing the cohort triangle and the RFM table from the raw file (benches/compare/
#   alternatives.py, the same query as run.sh), from CSV and from Parquet;
# - a monthly update: the history without its last month summarised, then `summarize --update`
#   with the last month (about 1/36 of the rows), against summarising everything again;
# - with FULL=1: the full report (-t -i -c) as `summarize --partitions $PARTITIONS` then
#   `report --store --partitions $PARTITIONS`, with peak RSS (the 100M-row target: run with ROWS=100000000 and
#   BENCH_FORMATS=parquet).
#
# Wall time and peak RSS from /usr/bin/time, best of BENCH_REPEAT runs (default 2). Uses the
# data sets run.sh generates (target/bench-data/ROWS), generating them when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows="${1:-10000000}"
data="${BENCH_DATA:-target/bench-data}"
python3 -m pip install --quiet duckdb polars pyarrow 2>/dev/null
bin="${BIN:-target/release/custmetrics}"
[ -x "$bin" ] || cargo build --release --quiet -p custmetrics-cli
alt="python3 benches/compare/alternatives.py"
work="$data/store-work"
mkdir -p "$work"

measure() { # label, command...: prints "label|seconds|MiB", the best of BENCH_REPEAT runs
  local label=$1; shift
  local best="" peak=0 secs kib
  for _ in $(seq "${BENCH_REPEAT:-2}"); do
    rm -rf "$work/store-timed"
    /usr/bin/time -f "%e %M" -o "$work/.time" "$@" > /dev/null 2> "$work/.err" || { echo "$label|failed ($(tail -1 "$work/.err"))|"; return; }
    read -r secs kib < "$work/.time"
    if [ -z "$best" ] || awk "BEGIN {exit !($secs < $best)}"; then best=$secs; fi
    [ "$kib" -gt "$peak" ] && peak=$kib
  done
  echo "$label|$best|$((peak / 1024))"
}
row() { IFS='|' read -r label secs mib <<< "$1"; echo "| $2 | $label | $secs | $mib |"; }

customers=$(( rows * 10 / 38 ))
dir="$data/$rows"
for fmt in ${BENCH_FORMATS:-csv parquet}; do
  if [ ! -f "$dir/$fmt/transactions.$fmt" ]; then
    flag=""; [ "$fmt" = parquet ] && flag="--format parquet"
    $bin generate --out "$dir/$fmt" --customers "$customers" --seed 1 $flag --quiet
  fi
done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); date: $(date -u +%F); commit $(git rev-parse --short HEAD)"
echo
echo "| input | job | seconds | peak MiB |"
echo "|---|---|---:|---:|"
for fmt in ${BENCH_FORMATS:-csv parquet}; do
  f="$dir/$fmt/transactions.$fmt"
  store="$work/store-$fmt"
  row "$(measure "summarize" $bin summarize -t "$f" --out "$work/store-timed" -q)" "$fmt"
  rm -rf "$store"; $bin summarize -t "$f" --out "$store" -q
  row "$(measure "retention --store" $bin retention --store "$store" -f json -q)" "$fmt"
  row "$(measure "rfm --store (csv)" $bin rfm --store "$store" -f csv -q)" "$fmt"
  row "$(measure "duckdb triangle+rfm" $alt duckdb "$f")" "$fmt"
  row "$(measure "retention (from the file)" $bin retention -t "$f" -f json -q)" "$fmt"
done

# Monthly update: the last month of the Parquet set against everything.
f="$dir/parquet/transactions.parquet"
split="$work/split-$rows"
if [ ! -f "$split/month.parquet" ]; then
  mkdir -p "$split"
  python3 - "$f" "$split" <<'PY'
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
last = duckdb.sql(f"SELECT max(order_date) FROM '{src}'").fetchall()[0][0]
cut = duckdb.sql(f"SELECT date_trunc('month', DATE '{last}')").fetchall()[0][0]
duckdb.sql(f"COPY (SELECT * FROM '{src}' WHERE order_date < DATE '{cut}') TO '{out}/history.parquet' (FORMAT parquet)")
duckdb.sql(f"COPY (SELECT * FROM '{src}' WHERE order_date >= DATE '{cut}') TO '{out}/month.parquet' (FORMAT parquet)")
PY
fi
rm -rf "$work/history-store"; $bin summarize -t "$split/history.parquet" --out "$work/history-store" -q
update_once() { rm -rf "$work/updated"; cp -r "$work/history-store" "$work/updated"; /usr/bin/time -f "%e %M" -o "$work/.time" $bin summarize --update "$work/updated" -t "$split/month.parquet" -q; read -r secs kib < "$work/.time"; echo "$secs|$((kib / 1024))"; }
best=""; for _ in $(seq "${BENCH_REPEAT:-2}"); do r=$(update_once); s=${r%%|*}; if [ -z "$best" ] || awk "BEGIN {exit !($s < ${best%%|*})}"; then best=$r; fi; done
month_rows=$(python3 -c "import duckdb,sys; print(duckdb.sql(\"SELECT count(*) FROM '$split/month.parquet'\").fetchall()[0][0])")
echo "| parquet | summarize --update with the last month ($month_rows rows) | ${best%%|*} | ${best##*|} |"

if [ -n "${FULL:-}" ]; then
  p="${PARTITIONS:-8}"
  fmt=parquet
  inputs=(-t "$dir/$fmt/transactions.$fmt" -i "$dir/$fmt/interactions.$fmt" -c "$dir/$fmt/customers.$fmt")
  row "$(measure "summarize --partitions $p (-t -i -c)" $bin summarize "${inputs[@]}" --partitions "$p" --out "$work/store-timed" -q)" "$fmt"
  rm -rf "$work/full-store"; $bin summarize "${inputs[@]}" --partitions "$p" --out "$work/full-store" -q
  row "$(measure "report --store --partitions $p (every section)" $bin report --store "$work/full-store" --partitions "$p" -f json -q)" "$fmt"
  du -sh "$work/full-store" | awk '{print "store size: " $1}'
fi
