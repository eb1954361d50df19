#!/usr/bin/env bash
# Every user-visible output of a custmetrics binary on the demo data and on a generated set, into
# one directory, so that a refactoring can be checked byte for byte:
#
#   scripts/golden-outputs.sh target/debug/custmetrics /tmp/before   # on the old tree
#   scripts/golden-outputs.sh target/debug/custmetrics /tmp/after    # on the new tree
#   diff -r /tmp/before /tmp/after && echo identical
#
# GOLDEN_CUSTOMERS sets the size of the generated set (default 257000 customers, about 1M
# transaction rows); GOLDEN_DATA reuses a generated directory between runs; GOLDEN_SETS=demo
# skips the generated set (a quick check while working).
set -euo pipefail
bin="$(realpath "$1")"
out="$2"
here="$(cd "$(dirname "$0")/.." && pwd)"
customers="${GOLDEN_CUSTOMERS:-257000}"
data="${GOLDEN_DATA:-$out.data}"
mkdir -p "$out"
out="$(realpath "$out")"

if [ ! -f "$data/transactions.csv" ]; then
  "$bin" -q generate --out "$data" --customers "$customers" --seed 7
fi

run() { # name, args...: stdout to NAME, stderr to NAME.stderr, exit code to NAME.rc
  local name="$1"
  shift
  set +e
  "$bin" "$@" >"$out/$name" 2>"$out/$name.stderr"
  echo $? >"$out/$name.rc"
  set -e
}

for set in ${GOLDEN_SETS:-demo big}; do
  if [ "$set" = demo ]; then d="$here/testdata/demo"; else d="$data"; fi
  t="$d/transactions.csv"
  i="$d/interactions.csv"
  c="$d/customers.csv"
  cd "$out"
  for f in table markdown json csv; do
    run "$set.report.$f" report -t "$t" -i "$i" -c "$c" -f "$f" --color never
  done
  run "$set.report.html.stdout" report -t "$t" -i "$i" -c "$c" -f html -o "$out/$set.report.html"
  run "$set.report.by.json" report -t "$t" -i "$i" -c "$c" -f json --by channel
  run "$set.report.csvdir" report -t "$t" -i "$i" -c "$c" -f csv --output-dir "$out/$set.csvdir"
  run "$set.churn.inactivity.json" churn -t "$t" -f json
  run "$set.rfm.csv" rfm -t "$t" -f csv
  run "$set.rfm.json" rfm -t "$t" -f json --by region
  run "$set.clv.json" clv -t "$t" -f json
  run "$set.clv.fit.pareto.json" clv fit --model pareto-nbd -t "$t" -f json --save-model "$out/$set.model.json"
  run "$set.clv.predict.csv" clv predict -t "$t" --model-file "$out/$set.model.json" -f csv
  run "$set.inspect.json" inspect "$t" "$i" "$c" -f json
  run "$set.inspect.table" inspect "$t" "$i" "$c"
  for f in markdown csv html; do
    run "$set.inspect.$f" inspect "$t" "$i" "$c" -f "$f"
  done
  run "$set.nps.by.json" nps -i "$i" -f json --by channel --period month
  run "$set.csat.table" csat -i "$i"
done

# Bad input: the rejects file and the messages.
for f in "$here"/testdata/bad/*.csv; do
  name="bad.$(basename "$f" .csv)"
  run "$name.report.json" report -t "$f" -f json --rejects "$out/$name.rejects.csv"
done
# Paths in messages differ between checkouts; make them relative. Regular files only, in the
# CSV directories too: given a directory, sed stops there and leaves the files after it as they
# were (so inspect's stdout kept the checkout's path).
find "$out" -type f -exec sed -i "s#$here/##g; s#$data/#DATA/#g; s#$out/#OUT/#g" {} +
echo "outputs in $out"
