#!/usr/bin/env bash
# Stage 1 on real engines equals stage 1 here: for the demo data and a generated ~1M-row set,
# the summary store written by DuckDB (embedded), PostgreSQL (a throwaway server) and Spark
# (a Spark Connect server in local mode, through custmetrics' own Rust client) must equal the
# one `custmetrics summarize` writes (compare_stores.py: every table's rows, the accounting,
# days, dimensions), and the JSON report from each must be byte-identical to the local one.
# Fails, never skips: an engine that cannot start is an error. Called by .ci/run.
#
#   scripts/engines/check.sh [CUSTMETRICS_BINARY]
#
# The binary must be built with the `spark` feature (.ci/run's `cargo test --all-features`
# builds it). CM_CHECK_CUSTOMERS sets the generated set's size (default 262000 customers,
# about 1.0M transactions).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cm="${1:-${CARGO_TARGET_DIR:-$root/target}/debug/custmetrics}"
[ -x "$cm" ] || { echo "check.sh: no custmetrics binary at $cm (build it first)" >&2; exit 1; }
cm="$(cd "$(dirname "$cm")" && pwd)/$(basename "$cm")"
python="${CM_PYTHON:-python3}"

# shellcheck source=postgres.sh
source "$here/postgres.sh"
# shellcheck source=spark.sh
source "$here/spark.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/custmetrics-engines.XXXXXX")"
cm_on_exit "rm -rf '$work'"
started=$SECONDS
step() { echo "== engines [$((SECONDS - started))s] $*"; }

"$python" -c 'import duckdb' 2>/dev/null || "$python" -m pip install --quiet duckdb
"$python" -c 'import pyarrow' 2>/dev/null || "$python" -m pip install --quiet pyarrow

step "generated set: ${CM_CHECK_CUSTOMERS:-262000} customers"
"$cm" generate --out "$work/gen" --customers "${CM_CHECK_CUSTOMERS:-262000}" --seed 11 -q
"$cm" generate --out "$work/gen-parquet" --customers "${CM_CHECK_CUSTOMERS:-262000}" --seed 11 --format parquet -q

step "starting PostgreSQL and Spark Connect"
pg_start
spark_start

# The SQL for one dataset's transactions and interactions CSV files, in one dialect.
stage1_sql() { # dialect tx_csv ix_csv out
  "$cm" sql --dialect "$1" \
    -t transactions --transactions-columns "$(head -n 1 "$2")" \
    -i interactions --interactions-columns "$(head -n 1 "$3")" \
    --identifiers interaction_id -o "$4"
}

# The store of `results` (or of Spark) must equal the local one, and so must the report.
same_as_local() { # name store
  local name="$1" store="$2"
  "$python" "$here/compare_stores.py" "$local_store" "$store" > "$work/$name.compare" \
    || { cat "$work/$name.compare" >&2; echo "check.sh: $name: the store differs from the local one" >&2; return 1; }
  "$cm" report --store "$store" -f json -q > "$work/$name.report.json"
  cmp -s "$local_report" "$work/$name.report.json" \
    || { diff "$local_report" "$work/$name.report.json" | head -40 >&2; echo "check.sh: $name: the report differs from the local one" >&2; return 1; }
  echo "   $name: store and report identical to the local run"
}

for dataset in demo gen; do
  if [ "$dataset" = demo ]; then dir="$root/testdata/demo"; else dir="$work/gen"; fi
  tx="$dir/transactions.csv" ix="$dir/interactions.csv" cu="$dir/customers.csv"
  out="$work/$dataset"
  mkdir -p "$out"
  step "$dataset: local stage 1 ($(($(wc -l < "$tx") - 1)) transactions)"
  local_store="$out/local"
  "$cm" summarize -t "$tx" -i "$ix" -c "$cu" --out "$local_store" -q
  local_report="$out/local.report.json"
  "$cm" report --store "$local_store" -f json -q > "$local_report"

  step "$dataset: DuckDB"
  stage1_sql duckdb "$tx" "$ix" "$out/duckdb.sql"
  if [ "$dataset" = gen ]; then
    # Typed input: the same generated data as Parquet (dates, doubles) rather than text.
    tables=(--table "transactions=$work/gen-parquet/transactions.parquet" --table "interactions=$work/gen-parquet/interactions.parquet")
  else
    tables=(--table "transactions=$tx" --table "interactions=$ix")
  fi
  "$python" "$here/duckdb_run.py" --sql "$out/duckdb.sql" --out "$out/duckdb-results" "${tables[@]}"
  "$cm" summarize --from-results "$out/duckdb-results" -c "$cu" --out "$out/duckdb" -q
  same_as_local "$dataset-duckdb" "$out/duckdb"

  step "$dataset: PostgreSQL"
  stage1_sql postgres "$tx" "$ix" "$out/postgres.sql"
  pg_psql -c "DROP TABLE IF EXISTS transactions, interactions" > /dev/null
  pg_load_csv transactions "$tx"
  pg_load_csv interactions "$ix"
  pg_run_blocks "$out/postgres.sql" "$out/postgres-results"
  "$cm" summarize --from-results "$out/postgres-results" -c "$cu" --out "$out/postgres" -q
  same_as_local "$dataset-postgres" "$out/postgres"

  step "$dataset: Spark (Spark Connect, $SPARK_REMOTE)"
  "$cm" summarize --engine spark --remote "$SPARK_REMOTE" -t "$tx" -i "$ix" -c "$cu" \
    --out "$out/spark" -q
  same_as_local "$dataset-spark" "$out/spark"
done

step "all engines agree"
