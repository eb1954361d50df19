#!/usr/bin/env python3
"""Run a `custmetrics sql --dialect spark` script through Spark Connect; one Parquet file per block.

    spark_run.py --sql FILE --out DIR --remote sc://127.0.0.1:PORT --table transactions=PATH ...

The PySpark counterpart of duckdb_run.py, a fallback and cross-check for the Rust Spark path.
Each `--table NAME=PATH` becomes a temporary view NAME: a .csv file read with every column as a
string (no schema inference: the SQL under test must do its own parsing; an unquoted empty
field is null, a quoted one "" is ''), a .parquet file with its own types. The server reads the
inputs, so it must see the same paths (local mode does). Each block's result is collected to
this process as Arrow and written to DIR/NAME.parquet here, whatever the server's filesystem.
Any error exits 1 with the message; DIR/NAME.parquet appears only when its query succeeded.
"""
import argparse
import os
import sys
import time
import warnings

from blocks import BlockError, csv_header, ensure_module, parse_blocks, parse_tables

# pyspark 4 warns on every import that it does not fully support pandas 3; nothing here uses
# pandas, and the noise would bury real errors.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\..*")


NULL_SENTINEL = "\u0000custmetrics-null\u0000"


def error_text(error):
    """A Spark error without the JVM stack trace (the condition and message say what is wrong)."""
    return str(error).split("\n\nJVM stacktrace:", 1)[0].strip()


def fail(message):
    """Exit 1 with MESSAGE once a session exists. Not sys.exit: the client's gRPC threads, still
    retrying a server that failed or went away, would keep the process alive for minutes."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def reachable(url):
    """Fail at once, with the address, when nothing listens where URL points."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url.split(";", 1)[0])
    if parts.scheme != "sc" or not parts.hostname:
        sys.exit(f"error: --remote {url!r}: expected sc://HOST:PORT")
    try:
        socket.create_connection((parts.hostname, parts.port or 15002), timeout=10).close()
    except OSError as e:
        sys.exit(f"error: cannot connect to Spark Connect at {url}: {e} (is the server started? spark.sh: spark_start)")


def read_table(spark, path, kind):
    if kind == "parquet":
        return spark.read.parquet(path)
    # RFC 4180 quoting (Spark's default escape is a backslash), quoted line breaks allowed, and
    # FAILFAST: the default PERMISSIVE mode turns a malformed row into nulls without a word.
    # Nulls: Spark compares every field with nullValue after parsing, and both an unquoted empty
    # field and a quoted "" parse to "", so with the default nullValue "" both become null.
    # A nullValue no real field holds makes the parser's own null-for-unquoted-empty the only
    # null, so "" stays '' as in PostgreSQL and DuckDB.
    return (
        spark.read.option("header", True)
        .option("inferSchema", False)
        .option("escape", '"')
        .option("multiLine", True)
        .option("mode", "FAILFAST")
        .option("nullValue", NULL_SENTINEL)
        .option("emptyValue", "")
        .option("encoding", "UTF-8")
        .csv(path)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sql", required=True, help="the block script (custmetrics sql --dialect spark)")
    parser.add_argument("--out", required=True, help="output directory (created)")
    parser.add_argument("--remote", default=os.environ.get("SPARK_REMOTE"), help="Spark Connect URL (default: $SPARK_REMOTE)")
    parser.add_argument("--table", action="append", default=[], metavar="NAME=PATH", help="an input relation (.csv or .parquet)")
    args = parser.parse_args()

    try:
        blocks = parse_blocks(args.sql)
        tables = parse_tables(args.table)
    except (BlockError, OSError, UnicodeDecodeError) as e:
        sys.exit(f"error: {e}")
    if not tables:
        sys.exit("error: no --table given")
    if not args.remote:
        sys.exit("error: no --remote given and SPARK_REMOTE is not set")

    ensure_module("pyspark", "pyspark[connect]>=4.0,<5")
    pq = ensure_module("pyarrow.parquet", "pyarrow")
    import logging

    from pyspark.errors import PySparkException
    from pyspark.logger import PySparkLogger
    from pyspark.sql import SparkSession

    # pyspark logs every SQL error as a JSON record on stderr before raising it; the error is
    # reported once, below.
    for logger in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(logger).setLevel(logging.CRITICAL)

    # A server that is not there would be retried by the client for minutes, then hang the exit.
    reachable(args.remote)
    os.makedirs(args.out, exist_ok=True)
    try:
        spark = SparkSession.builder.remote(args.remote).getOrCreate()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.conf.set("spark.sql.connect.serverStacktrace.enabled", "false")
        spark.conf.set("spark.sql.pyspark.jvmStacktrace.enabled", "false")
    except Exception as e:  # gRPC and pyspark raise several types; all mean no usable session
        fail(f"error: Spark Connect at {args.remote}: {error_text(e)}")

    for name, path, kind in tables:
        try:
            frame = read_table(spark, path, kind)
            # Spark renames some header fields (a byte-order mark, repeats): the SQL must see
            # the names the other engines see.
            if kind == "csv" and frame.columns != csv_header(path):
                raise BlockError(f"Spark read the columns as {frame.columns}, the header has {csv_header(path)}")
            frame.createOrReplaceTempView(name)
            rows = frame.count()
        except (PySparkException, BlockError, OSError, UnicodeDecodeError) as e:
            fail(f"error: --table {name}={path}: {error_text(e)}")
        except Exception as e:  # the server went away, or a client-side failure
            fail(f"error: --table {name}={path}: {type(e).__name__}: {error_text(e)}")
        print(f"spark_run: {name} <- {path} ({rows} rows)", file=sys.stderr)

    for name, query in blocks:
        target = os.path.join(os.path.abspath(args.out), name + ".parquet")
        partial = target + ".tmp"
        started = time.monotonic()
        try:
            table = spark.sql(query).toArrow()
        except PySparkException as e:
            fail(f"error: block {name} of {args.sql}: {error_text(e)}")
        except Exception as e:
            fail(f"error: block {name} of {args.sql}: {type(e).__name__}: {error_text(e)}")
        try:
            pq.write_table(table, partial)
        except Exception as e:
            if os.path.exists(partial):
                os.remove(partial)
            fail(f"error: block {name}: writing {partial}: {e}")
        os.replace(partial, target)
        print(f"spark_run: {name} -> {target} ({table.num_rows} rows, {time.monotonic() - started:.1f} s)", file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
