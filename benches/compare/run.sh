#!/usr/bin/env bash
# Times custmetrics and the alternatives (DuckDB, Python polars, lifetimes) on the same jobs and
# the same files, in one run, and prints a Markdown table for BENCHMARKS.md.
#
#   benches/compare/run.sh [ROWS...]        default: 1000000 10000000
#
# Jobs: the monthly cohort triangle and the per-customer RFM summary (same-day purchases merged),
# from CSV and from Parquet; custmetrics runs them as two commands (`retention`, then `rfm`, whose
# per-customer table is timed as CSV, and as JSON on its own row) and
# as one process (`report` limited to those sections); BG/NBD fit (custmetrics `clv` vs lifetimes,
# which includes its summary step). The "floor" is polars scanning the three needed columns once.
# Wall time and peak RSS come from /usr/bin/time; each job runs BENCH_REPEAT times (default 2) and
# the best time is kept, because this VM's page cache is reclaimed between runs (a first run can
# read from disk). The full report (all sections) is timed up to FULL_REPORT_MAX_ROWS rows
# (default 10M). SKIP_FITS=1 skips the model fits; BENCH_FORMATS=parquet times one format only
# (the 100M-row CSV is 5 GB). Installs its Python packages itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
data="${BENCH_DATA:-target/bench-data}"
mkdir -p "$data"
python3 -m pip install --quiet duckdb polars lifetimes pandas pyarrow 2>/dev/null
[ -x target/release/custmetrics ] && [ -z "${REBUILD:-}" ] || cargo build --release --quiet -p custmetrics-cli
bin=target/release/custmetrics
alt="python3 benches/compare/alternatives.py"

measure() { # label, command...: prints "label|seconds|MiB", the best of BENCH_REPEAT runs
  local label=$1; shift
  local best="" peak=0 secs kib
  for _ in $(seq "${BENCH_REPEAT:-2}"); do
    /usr/bin/time -f "%e %M" -o "$data/.time" "$@" > /dev/null 2> "$data/.err" || { echo "$label|failed|"; return; }
    read -r secs kib < "$data/.time"
    if [ -z "$best" ] || awk "BEGIN {exit !($secs < $best)}"; then best=$secs; fi
    [ "$kib" -gt "$peak" ] && peak=$kib
  done
  echo "$label|$best|$((peak / 1024))"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); date: $(date -u +%F)"
for rows in "${sizes[@]}"; do
  customers=$(( rows * 10 / 38 ))   # the generator makes ~3.8 orders per customer
  dir="$data/$rows"
  if [ ! -f "$dir/csv/transactions.csv" ]; then
    $bin generate --out "$dir/csv" --customers "$customers" --seed 1 --quiet
    $bin generate --out "$dir/parquet" --customers "$customers" --seed 1 --format parquet --quiet
  fi
  n=$(( $(wc -l < "$dir/csv/transactions.csv") - 1 ))
  cat > "$dir/report.toml" <<TOML
[report]
sections = ["retention", "rfm"]
TOML
  echo
  echo "### $n transactions, $customers customers"
  echo
  echo "| job | input | tool | seconds | peak MiB |"
  echo "|---|---|---|---:|---:|"
  for fmt in ${BENCH_FORMATS:-csv parquet}; do
    f="$dir/$fmt/transactions.$fmt"
    for line in \
      "$(measure floor python3 benches/compare/alternatives.py floor "$f")" \
      "$(measure triangle+rfm/duckdb $alt duckdb "$f")" \
      "$(measure triangle+rfm/polars-py $alt polars "$f")" \
      "$(measure triangle+rfm/custmetrics-one-process $bin report -t "$f" --config "$dir/report.toml" -f json -q)" \
      "$(measure retention/custmetrics $bin retention -t "$f" -f json -q)" \
      "$(measure rfm/custmetrics $bin rfm -t "$f" -f csv -q)" \
      "$(measure rfm/custmetrics-json $bin rfm -t "$f" -f json -q)" ; do
      IFS='|' read -r label secs mib <<< "$line"
      echo "| ${label%%/*} | $fmt | ${label#*/} | $secs | $mib |"
    done
    # The whole monthly report (every section, all three tables): no alternative does this job,
    # so it is tracked on its own, up to FULL_REPORT_MAX_ROWS rows.
    if [ "$rows" -le "${FULL_REPORT_MAX_ROWS:-10000000}" ]; then
      line="$(measure full-report/custmetrics $bin report -t "$f" -i "$dir/$fmt/interactions.$fmt" -c "$dir/$fmt/customers.$fmt" -f json -q)"
      IFS='|' read -r label secs mib <<< "$line"
      echo "| ${label%%/*} | $fmt | ${label#*/} | $secs | $mib |"
    fi
  done
  f="$dir/parquet/transactions.parquet"
  # The whole clv command (fit and score every customer) only up to CLV_MAX_ROWS rows.
  [ "$rows" -le "${CLV_MAX_ROWS:-1000000}" ] || continue
  for line in "$(measure bgnbd/custmetrics-clv $bin clv -t "$f" -f json -q)"; do
    IFS='|' read -r label secs mib <<< "$line"; echo "| ${label%%/*} | parquet | ${label#*/} | $secs | $mib |"
  done
  if [ "$rows" -le 1000000 ]; then
    for line in "$(measure bgnbd/lifetimes $alt lifetimes "$f")"; do
      IFS='|' read -r label secs mib <<< "$line"; echo "| ${label%%/*} | parquet | ${label#*/} | $secs | $mib |"
    done
  fi
done

# Model fitting alone, on the same per-customer summary (weeks) for both tools: FIT_CUSTOMERS
# customers (default 1M) generated once; custmetrics' time is the whole `clv fit --summary`
# command (reading the CSV included), lifetimes' the `fit` call alone (timed inside Python).
[ -z "${SKIP_FITS:-}" ] || exit 0
fit_customers="${FIT_CUSTOMERS:-1000000}"
fdir="$data/fit-$fit_customers"
if [ ! -f "$fdir/rfm/rfm_customers.csv" ]; then
  $bin generate --out "$fdir" --customers "$fit_customers" --seed 1 --format parquet --quiet
  $bin rfm -t "$fdir/transactions.parquet" --time-unit weeks -f csv --output-dir "$fdir/rfm" -q
fi
summary="$fdir/rfm/rfm_customers.csv"
echo
echo "### Model fits on the summary of $fit_customers customers"
echo
echo "| model | tool | seconds | peak MiB | result |"
echo "|---|---|---:|---:|---|"
for model in bgnbd pareto-nbd mbgnbd; do
  /usr/bin/time -f "%e %M" -o "$data/.time" $bin clv fit --model "$model" --summary "$summary" -f json -o "$data/.fit.json" --timings 2> "$data/.err" || true
  read -r secs kib < "$data/.time"
  params=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['model_fit']; print(', '.join(f'{k}={v:.4f}' for k,v in m['params'].items()), f\"LL={m['log_likelihood']:.1f}\")" "$data/.fit.json" 2>/dev/null || echo failed)
  # --timings splits the command into phases; the purchase model's fit alone is comparable with
  # lifetimes' fit call.
  fit_alone=$(sed -n 's/.*fitting the purchase model \([0-9.]*\) s.*/\1/p' "$data/.err")
  echo "| $model | custmetrics clv fit (whole command; fit alone ${fit_alone:-?} s) | $secs | $((kib / 1024)) | $params |"
  line=$(timeout "${LIFETIMES_TIMEOUT:-1800}" /usr/bin/time -f "%e %M" -o "$data/.time" $alt lifetimes-fit "$summary" "$model" 2> "$data/.err" || echo "timed out or failed")
  read -r secs kib < "$data/.time" || true
  fit_secs=$(echo "$line" | sed -n 's/.*fit \([0-9.]*\) s.*/\1/p')
  echo "| $model | lifetimes (fit call; whole process $secs s) | ${fit_secs:-–} | $((kib / 1024)) | ${line##*s, } |"
done
