#!/usr/bin/env python3
"""Compare two custmetrics summary stores by content (docs/summary-store.md).

    compare_stores.py A B [--show N]

Exit 0 when they hold the same data, 1 on any difference (with a summary of the first N
differing rows per table), 2 when a store cannot be read.

Stores written by different engines (custmetrics itself, SQL on DuckDB, PostgreSQL or Spark)
differ by design in how they encode the same data, so this compares what a reader gets back:

- customer codes and dim_* codes are decoded to their strings (customer_ids, dimensions), so the
  order in which an engine assigned codes does not matter;
- each table is compared as a multiset of rows (row order does not matter), after adding up the
  rows a reader adds up: purchases per (customer, date) over all parts (orders and
  revenue_micros summed, each dim_* the smallest non-null value), interactions per (customer,
  date, dims), survey answers per (date, nps, csat, dims); customers as stored;
- column types are compared too (string, string_view and large_string count as one), since
  the layout fixes them;
- from the manifest, per table kind: `accounting`, `days`, the sorted `dimensions`, and
  `columns` as a set.

Not compared, because engine-built stores differ there by design: line_keys, order_keys, `keyed`,
`files`, `settings`, `rejections`, `answer_rejections`, `inputs`, `identifiers`,
`custmetrics_version`, `generation`, and the part and file layout itself.

Layout errors found while decoding (a code with no value, codes not 0, 1, 2, ... in order, a key
repeated within one part) are reported as differences: the store is not what a reader expects.
"""
import argparse
import json
import math
import os
import re
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blocks import ensure_module  # noqa: E402

PART = re.compile(r"^(?P<name>.+)-(?P<run>\d+)\.parquet$")
# The tables compared, which table's dimensions their dim_* codes index, their key columns (before
# the dims), and the counts added up when a key repeats across parts.
TABLES = {
    "purchases": ("transactions", ["customer_id", "date"], ["orders", "revenue_micros"]),
    "interactions": ("interactions", ["customer_id", "date"], ["interactions"]),
    "survey": ("interactions", ["date", "nps", "csat"], ["answers"]),
    "customers": (None, ["customer_id"], []),
}
STRING_TYPES = {"string", "large_string", "string_view"}


class StoreError(Exception):
    pass


def type_name(arrow_type):
    name = str(arrow_type)
    if name in STRING_TYPES:
        return "string"
    if name in {"binary", "large_binary", "binary_view"}:
        return "binary"
    return name


def plain(value):
    # NaN != NaN would make two equal stores differ; keep it comparable.
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


class Store:
    def __init__(self, path, pq):
        self.path = path
        self.pq = pq
        self.problems = []  # layout errors, reported as differences
        manifest_path = os.path.join(path, "manifest.json")
        try:
            with open(manifest_path, encoding="utf-8") as f:
                self.manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise StoreError(f"{manifest_path}: {e}") from e
        if self.manifest.get("format") != "custmetrics-summary-store":
            raise StoreError(f"{manifest_path}: not a summary store manifest (format {self.manifest.get('format')!r})")
        generation = self.manifest.get("generation")
        self.data = os.path.join(path, f"g{generation}")
        if not os.path.isdir(self.data):
            raise StoreError(f"{path}: the manifest names generation {generation} but {self.data} is not a directory")
        self.parts = defaultdict(list)  # table name -> [file name] in RUN order
        for file in os.listdir(self.data):
            match = PART.match(file)
            if match:
                self.parts[match["name"]].append((int(match["run"]), file))
        self.parts = {name: [f for _, f in sorted(files)] for name, files in self.parts.items()}
        self.customer_ids = self._customer_ids()
        self.dimensions = self._dimensions()

    def read(self, file):
        try:
            return self.pq.read_table(os.path.join(self.data, file))
        except Exception as e:  # pyarrow raises several types; any unreadable part is fatal
            raise StoreError(f"{os.path.join(self.data, file)}: {e}") from e

    def _customer_ids(self):
        ids = []
        for file in self.parts.get("customer_ids", []):
            table = self.read(file)
            codes = table.column("customer").to_pylist()
            for i, (code, value) in enumerate(zip(codes, table.column("customer_id").to_pylist(), strict=True)):
                if code != len(ids):
                    self.problems.append(f"{file} row {i}: customer code {code}, expected {len(ids)} (codes are row positions)")
                ids.append(value)
        if len(set(ids)) != len(ids):
            self.problems.append(f"customer_ids: {len(ids) - len(set(ids))} repeated customer ids")
        return ids

    def _dimensions(self):
        values = defaultdict(list)  # (table, dimension) -> [value by code]
        for file in self.parts.get("dimensions", []):
            t = self.read(file)
            columns = (t.column(c).to_pylist() for c in ("table", "dimension", "code", "value"))
            for table, dimension, code, value in zip(*columns, strict=True):
                codes = values[(table, dimension)]
                if code != len(codes):
                    self.problems.append(
                        f"{file}: codes of {table}.{dimension} are not 0, 1, 2, ... in order (got {code}, expected {len(codes)})"
                    )
                codes.append(value)
        return values

    def table(self, name):
        """The table decoded: (columns, [row tuples] per part, {column: {type names}}, part files)."""
        dim_table = TABLES[name][0]
        files = self.parts.get(name, [])
        decoded, types = [], defaultdict(set)
        for file in files:
            t = self.read(file)
            columns = {}
            for field in t.schema:
                values = t.column(field.name).to_pylist()
                if field.name == "customer":
                    columns["customer_id"] = self._decode(values, self.customer_ids, f"{file}: customer")
                    types["customer_id"].add("string (customer code)")
                elif field.name.startswith("dim_") and dim_table is not None:
                    dictionary = self.dimensions.get((dim_table, field.name[4:]))
                    if dictionary is None:
                        self.problems.append(f"{file}: {field.name} has no values in dimensions ({dim_table}.{field.name[4:]})")
                        dictionary = []
                    columns[field.name] = self._decode(values, dictionary, f"{file}: {field.name}")
                    types[field.name].add(f"string ({type_name(field.type)} code)")
                else:
                    columns[field.name] = [plain(v) for v in values]
                    types[field.name].add(type_name(field.type))
            decoded.append((file, columns, t.num_rows))
        # Parts of different runs may have different dim_* columns (a reader concatenates them
        # diagonally): a column a part lacks is null there.
        names = sorted({c for _, columns, _ in decoded for c in columns})
        parts = [
            (file, list(zip(*(columns.get(c, [None] * n) for c in names), strict=True)) if names else [()] * n)
            for file, columns, n in decoded
        ]
        # The layout allows one row per key within a part (a key may repeat only across parts).
        if name != "customers":
            keys = key_columns(name, names)
            at = [names.index(c) for c in keys]
            for file, rows in parts:
                counts = Counter(tuple(row[i] for i in at) for row in rows)
                repeated = sorted((k for k, n in counts.items() if n > 1), key=sort_key)
                if repeated:
                    self.problems.append(f"{file}: {len(repeated)} keys ({', '.join(keys)}) on several rows, e.g. {repeated[:3]}")
        return names, parts, types, files

    def _decode(self, codes, dictionary, what):
        out, bad = [], Counter()
        for code in codes:
            if code is None:
                out.append(None)
            elif 0 <= code < len(dictionary):
                out.append(dictionary[code])
            else:
                bad[code] += 1
                out.append(f"<invalid code {code}>")
        if bad:
            self.problems.append(f"{what}: {sum(bad.values())} codes with no value, e.g. {sorted(bad)[:5]}")
        return out


def key_columns(name, columns):
    """The columns that identify a row of table NAME: a survey or interactions row's dims are
    part of its key, a purchase's are not (they are the day's segment)."""
    dims = [c for c in columns if c.startswith("dim_")] if name in ("interactions", "survey") else []
    return [c for c in TABLES[name][1] + dims if c in columns]


def merged(name, columns, parts):
    """Rows as a reader sees them: parts concatenated, repeated keys added up."""
    if name == "customers":
        return Counter(row for _, rows in parts for row in rows)
    key_at = [columns.index(c) for c in key_columns(name, columns)]
    count_at = [columns.index(c) for c in TABLES[name][2] if c in columns]
    dim_at = [i for i, c in enumerate(columns) if c.startswith("dim_")] if name == "purchases" else []
    totals = {}
    for _, rows in parts:
        for row in rows:
            key = tuple(row[i] for i in key_at)
            total = totals.get(key)
            if total is None:
                totals[key] = list(row)
                continue
            for i in count_at:
                total[i] = None if total[i] is None or row[i] is None else total[i] + row[i]
            for i in dim_at:
                if row[i] is not None and (total[i] is None or row[i] < total[i]):
                    total[i] = row[i]
    return Counter(tuple(row) for row in totals.values())


def sort_key(row):
    return tuple((1, "") if v is None else (0, v) for v in row)


def show(columns, row):
    return ", ".join(f"{c}={v}" for c, v in zip(columns, row, strict=True))


def compare_table(name, a, b, show_n):
    """Prints the comparison of one table; returns the number of differences found."""
    ca, parts_a, types_a, files_a = a.table(name)
    cb, parts_b, types_b, files_b = b.table(name)
    if not files_a and not files_b:
        print(f"{name}: in neither store")
        return 0
    differences = 0
    if set(ca) != set(cb):
        differences += 1
        print(f"{name}: DIFFERENT columns: only in A {sorted(set(ca) - set(cb))}, only in B {sorted(set(cb) - set(ca))}")
    common = [c for c in ca if c in cb]
    for c in common:
        if types_a[c] and types_b[c] and types_a[c] != types_b[c]:
            differences += 1
            print(f"{name}: DIFFERENT type of {c}: A {sorted(types_a[c])}, B {sorted(types_b[c])}")

    def project(columns, parts):
        at = [columns.index(c) for c in common]
        return [(f, [tuple(r[i] for i in at) for r in rows]) for f, rows in parts]

    rows_a = merged(name, common, project(ca, parts_a))
    rows_b = merged(name, common, project(cb, parts_b))
    read_a = sum(len(r) for _, r in parts_a)
    read_b = sum(len(r) for _, r in parts_b)
    sizes = (
        f"A {read_a} rows in {len(files_a)} part(s), {sum(rows_a.values())} after merging parts; "
        f"B {read_b} rows in {len(files_b)} part(s), {sum(rows_b.values())} after merging parts"
    )
    only_a, only_b = rows_a - rows_b, rows_b - rows_a
    if not only_a and not only_b:
        print(f"{name}: rows equal ({sizes})")
        return differences
    differences += 1
    print(f"{name}: DIFFERENT rows ({sizes}): {sum(only_a.values())} only in A, {sum(only_b.values())} only in B")
    # Pair the differing rows by key, so that a changed value reads as one line per store.
    key_at = [common.index(c) for c in TABLES[name][1] if c in common]
    by_key = defaultdict(lambda: ([], []))
    for side, rows in ((0, only_a), (1, only_b)):
        for row, count in rows.items():
            by_key[tuple(row[i] for i in key_at)][side].extend([row] * count)
    for key in sorted(by_key, key=sort_key)[:show_n]:
        in_a, in_b = by_key[key]
        for row in sorted(in_a, key=sort_key):
            print(f"    A: {show(common, row)}")
        for row in sorted(in_b, key=sort_key):
            print(f"    B: {show(common, row)}")
        if not in_a:
            print("    A: (none)")
        if not in_b:
            print("    B: (none)")
    if len(by_key) > show_n:
        print(f"    ... and {len(by_key) - show_n} more keys")
    return differences


def compare_manifests(a, b):
    differences = 0
    tables_a = {t.get("kind"): t for t in a.manifest.get("tables", [])}
    tables_b = {t.get("kind"): t for t in b.manifest.get("tables", [])}
    for kind in sorted(set(tables_a) | set(tables_b), key=str):
        if kind not in tables_a or kind not in tables_b:
            differences += 1
            print(f"manifest {kind}: DIFFERENT: only in {'A' if kind in tables_a else 'B'}")
            continue
        ta, tb = tables_a[kind], tables_b[kind]
        fields = {
            "accounting": (ta.get("accounting"), tb.get("accounting")),
            "days": (ta.get("days"), tb.get("days")),
            "dimensions": (sorted(ta.get("dimensions") or []), sorted(tb.get("dimensions") or [])),
            "columns": (set(ta.get("columns") or []), set(tb.get("columns") or [])),
        }
        different = [f for f, (x, y) in fields.items() if x != y]
        if not different:
            rows_used = (ta.get("accounting") or {}).get("rows_used")
            print(f"manifest {kind}: accounting, days, dimensions, columns equal (rows_used {rows_used})")
            continue
        differences += len(different)
        for field in different:
            x, y = fields[field]
            if field == "accounting" and isinstance(x, dict) and isinstance(y, dict):
                for k in sorted(set(x) | set(y)):
                    if x.get(k) != y.get(k):
                        print(f"manifest {kind}: DIFFERENT accounting.{k}: A {x.get(k)!r}, B {y.get(k)!r}")
            elif field == "columns":
                print(f"manifest {kind}: DIFFERENT columns: only in A {sorted(x - y)}, only in B {sorted(y - x)}")
            else:
                print(f"manifest {kind}: DIFFERENT {field}: A {x!r}, B {y!r}")
    return differences


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="a summary store directory")
    parser.add_argument("b", help="another summary store directory")
    parser.add_argument("--show", type=int, default=10, metavar="N", help="differing keys shown per table (default 10)")
    args = parser.parse_args()

    pq = ensure_module("pyarrow.parquet", "pyarrow")
    try:
        a, b = Store(args.a, pq), Store(args.b, pq)
        print(f"A: {args.a} (generation {a.manifest.get('generation')})")
        print(f"B: {args.b} (generation {b.manifest.get('generation')})")
        differences = compare_manifests(a, b)
        for name in TABLES:
            differences += compare_table(name, a, b, args.show)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for label, store in (("A", a), ("B", b)):
        for problem in store.problems[: args.show]:
            print(f"{label} layout error: {problem}")
        if len(store.problems) > args.show:
            print(f"{label}: ... and {len(store.problems) - args.show} more layout errors")
        differences += len(store.problems)
    if differences:
        print(f"DIFFERENT: {differences} differences")
        return 1
    print("EQUAL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
