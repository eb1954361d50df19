#!/usr/bin/env bash
# Stage 1 on engines (issue 21), as a Markdown table for BENCHMARKS.md:
#
#   benches/compare/engines.sh [ROWS]          default 10000000 transactions
#
# On the generated set's transactions CSV (the set benches/compare/run.sh generates):
# - custmetrics locally: `summarize -t FILE --out STORE`;
# - DuckDB (embedded, Python): the printed stage-1 SQL over the CSV as text, then
#   `summarize --from-results`;
# - PostgreSQL (a throwaway server on loopback): loading the CSV into a text table (what a
#   warehouse already holds, timed apart), the stage-1 SQL with COPY ... TO STDOUT, then
#   `summarize --from-results`;
# - Spark Connect, local[CORES]: `summarize --engine spark` (the Rust client: plan, SQL,
#   Arrow results, store), the server reading the CSV itself.
# "Over the wire" is the loopback interface's received bytes (/proc/net/dev, both directions
# of every connection count once) during the stage-1 step: for PostgreSQL and Spark it must be
# the summary, not the rows. Also the results' own size as custmetrics counts it.
#
# BENCH_ENGINES picks the engines (default "duckdb postgres spark"); the local run is always
# timed and every store is compared with its store.
#
# Needs a release binary with the spark feature (built when missing), python3, Java 17 and
# PostgreSQL (the scripts in scripts/engines/ install what is missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
rows="${1:-10000000}"
data="${BENCH_DATA:-target/bench-data}"
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/custmetrics}"
[ -x "$bin" ] || cargo build --release --quiet -p custmetrics-cli --features spark
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
python3 -c 'import duckdb, pyarrow' 2>/dev/null || python3 -m pip install --quiet duckdb pyarrow

# shellcheck source=../../scripts/engines/postgres.sh
source scripts/engines/postgres.sh
# shellcheck source=../../scripts/engines/spark.sh
source scripts/engines/spark.sh

customers=$(( rows * 10 / 38 ))
dir="$data/$rows/csv"
[ -f "$dir/transactions.csv" ] || "$bin" generate --out "$dir" --customers "$customers" --seed 1 --quiet
tx="$(cd "$dir" && pwd)/transactions.csv"
work="$(mktemp -d "${TMPDIR:-/tmp}/custmetrics-engine-bench.XXXXXX")"
cm_on_exit "rm -rf '$work'"

lo_bytes() { awk '$1 == "lo:" {print $2}' /proc/net/dev; }
mib() { awk "BEGIN {printf \"%.1f\", $1 / 1048576}"; }
# timed LABEL WIRE(yes/no) command...: one table row; wall time from bash, peak RSS of the
# command (not of the servers) from /usr/bin/time.
timed() {
  local label="$1" wire="$2"; shift 2
  local before after start secs kib
  before=$(lo_bytes); start=$(date +%s.%N)
  if [ "$(type -t "$1")" = function ]; then
    # A shell function (psql runs inside it): the client's RSS is psql's, not worth a column.
    echo 0 > "$work/.rss"
    "$@" > /dev/null 2> "$work/.err" || { cat "$work/.err" >&2; echo "engines.sh: $label failed" >&2; return 1; }
  else
    /usr/bin/time -f "%M" -o "$work/.rss" "$@" > /dev/null 2> "$work/.err" \
      || { cat "$work/.err" >&2; echo "engines.sh: $label failed" >&2; return 1; }
  fi
  secs=$(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $start}"); after=$(lo_bytes)
  kib=$(tail -1 "$work/.rss")
  local over="–"; [ "$wire" = yes ] && over="$(mib $((after - before)))"
  echo "| $label | $secs | $((kib / 1024)) | $over |"
}

input_mib=$(mib "$(stat -c %s "$tx")")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); date: $(date -u +%F); commit $(git rev-parse --short HEAD)"
echo "input: $tx, $(($(wc -l < "$tx") - 1)) transactions, $input_mib MiB"
echo
echo "| step | seconds | peak MiB (client) | MiB over loopback |"
echo "|---|---:|---:|---:|"
cols="$(head -n 1 "$tx")"
timed "custmetrics summarize (local)" no "$bin" summarize -t "$tx" --out "$work/local" -q
for d in duckdb postgres spark; do
  "$bin" sql --dialect "$d" -t transactions --transactions-columns "$cols" -o "$work/$d.sql"
done

engines="${BENCH_ENGINES:-duckdb postgres spark}"
wants() { [[ " $engines " == *" $1 "* ]]; }

if wants duckdb; then
timed "DuckDB stage-1 SQL (embedded)" no python3 scripts/engines/duckdb_run.py \
  --sql "$work/duckdb.sql" --out "$work/duckdb-results" --table "transactions=$tx"
timed "custmetrics summarize --from-results (DuckDB's)" no \
  "$bin" summarize --from-results "$work/duckdb-results" --out "$work/duckdb" -q

fi

if wants postgres; then
pg_start > /dev/null 2>&1
timed "PostgreSQL: load the CSV as text (COPY FROM STDIN)" yes pg_load_csv transactions "$tx"
pg_psql -q -c "VACUUM ANALYZE transactions" > /dev/null
timed "PostgreSQL stage-1 SQL (COPY TO STDOUT)" yes pg_run_blocks "$work/postgres.sql" "$work/pg-results"
timed "custmetrics summarize --from-results (PostgreSQL's)" no \
  "$bin" summarize --from-results "$work/pg-results" --out "$work/postgres" -q
pg_stop > /dev/null 2>&1
fi

if wants spark; then
spark_start > /dev/null 2>&1
timed "Spark ${CM_SPARK_MASTER:-local[2]} via Spark Connect: summarize --engine spark" yes \
  "$bin" summarize --engine spark --remote "$SPARK_REMOTE" -t "$tx" --out "$work/spark"
grep "stage 1 results" "$work/.err" | sed 's/^/    /' || true
spark_stop > /dev/null 2>&1
fi

echo
for s in $engines; do
  python3 scripts/engines/compare_stores.py "$work/local" "$work/$s" > /dev/null \
    || { echo "engines.sh: the $s store differs from the local one" >&2; exit 1; }
done
echo "every store equals the local one (compare_stores.py); store size $(du -sb "$work/local" | awk '{printf "%.1f MiB", $1 / 1048576}')"
if wants postgres; then
  echo "PostgreSQL results: $(du -sb "$work/pg-results" | awk '{printf "%.1f MiB", $1 / 1048576}') of CSV"
  for f in "$work"/pg-results/*.csv; do echo "  $(basename "$f"): $(($(wc -l < "$f") - 1)) rows"; done
fi
if wants duckdb; then
  echo "DuckDB results: $(du -sb "$work/duckdb-results" | awk '{printf "%.1f MiB", $1 / 1048576}') of Parquet"
fi
