#!/usr/bin/env python3
"""Run a `custmetrics sql --dialect duckdb` script on DuckDB; one Parquet file per block.

    duckdb_run.py --sql FILE --out DIR --table transactions=PATH [--table interactions=PATH ...]

Each `--table NAME=PATH` becomes a view NAME: a .csv file read with every column as text (what a
warehouse landing table of a raw export holds, so the SQL under test must do its own parsing;
an unquoted empty field is NULL, a quoted one "" is ''), a .parquet file with its own types.
Then each `-- custmetrics: NAME` block runs and its result goes to DIR/NAME.parquet. Any error
(bad block, SQL error, unreadable input) exits 1 with the message; DIR/NAME.parquet appears only
when its query succeeded.
"""
import argparse
import os
import sys
import time

from blocks import BlockError, csv_header, ensure_module, parse_blocks, parse_tables, sql_string


def csv_view(name, path):
    # No sniffing: on a file whose header does not fit its rows the sniffer may take a data row
    # as the header and silently skip the lines above it, or take `#` lines for comments. The
    # columns come from the header as Python reads it, the dialect is RFC 4180 (as PostgreSQL
    # and Spark read it), and a row with too many or too few fields is an error.
    # allow_quoted_nulls = false keeps "" an empty string, as PostgreSQL's CSV format does.
    columns = ", ".join(f"{sql_string(c)}: 'VARCHAR'" for c in csv_header(path))
    return (
        f'CREATE VIEW "{name}" AS SELECT * FROM read_csv({sql_string(path)}, auto_detect = false, '
        f"header = true, columns = {{{columns}}}, delim = ',', quote = '\"', escape = '\"', "
        "allow_quoted_nulls = false, strict_mode = true, null_padding = false)"
    )


def parquet_view(name, path):
    return f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet({sql_string(path)})'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sql", required=True, help="the block script (custmetrics sql --dialect duckdb)")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--table", action="append", default=[], metavar="NAME=PATH", help="an input relation (.csv or .parquet)")
    args = parser.parse_args()

    try:
        blocks = parse_blocks(args.sql)
        tables = parse_tables(args.table)
    except (BlockError, OSError, UnicodeDecodeError) as e:
        sys.exit(f"error: {e}")
    if not tables:
        sys.exit("error: no --table given")

    duckdb = ensure_module("duckdb", "duckdb")
    os.makedirs(args.out, exist_ok=True)
    con = duckdb.connect()
    # Dates and timestamps must not depend on the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    for name, path, kind in tables:
        try:
            con.execute(csv_view(name, path) if kind == "csv" else parquet_view(name, path))
            rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        except (duckdb.Error, BlockError, OSError, UnicodeDecodeError) as e:
            sys.exit(f"error: --table {name}={path}: {e}")
        print(f"duckdb_run: {name} <- {path} ({rows} rows)", file=sys.stderr)

    for name, query in blocks:
        target = os.path.join(os.path.abspath(args.out), name + ".parquet")
        partial = target + ".tmp"
        started = time.monotonic()
        try:
            # The query on lines of its own: a trailing -- comment cannot swallow the parenthesis.
            con.execute(f"COPY (\n{query}\n) TO {sql_string(partial)} (FORMAT parquet)")
            rows = con.execute(f"SELECT count(*) FROM read_parquet({sql_string(partial)})").fetchone()[0]
        except duckdb.Error as e:
            if os.path.exists(partial):
                os.remove(partial)
            sys.exit(f"error: block {name} of {args.sql}: {e}")
        os.replace(partial, target)
        print(f"duckdb_run: {name} -> {target} ({rows} rows, {time.monotonic() - started:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
