#!/usr/bin/env python3
"""The block format of `custmetrics sql`, parsed once for every engine runner.

    -- any comment lines
    -- custmetrics: NAME
    SELECT ... ;

Each block is exactly one statement whose last line ends in `;`. The parser is strict on
purpose: a script it misreads would run the wrong query or silently drop one, so anything
unexpected (text before the first block, a second statement, a repeated name, a name that is not
a safe file name, a block with no query) is an error naming the line.

As a library: `parse_blocks(path)` -> [(name, query without the `;`)], `parse_tables(specs)`,
`csv_header(path)`.
As a command (for the bash runners, which cannot parse this reliably themselves):

    blocks.py split SQLFILE DIR   writes DIR/NAME.sql per block, prints the names in order
"""
import os
import re
import sys

MARKER = re.compile(r"^--\s*custmetrics:\s*(.*?)\s*$")
# Names become output file names (NAME.parquet, NAME.csv): nothing that could escape the output
# directory, need quoting in a shell, or differ only in case on a case-insensitive filesystem.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BlockError(Exception):
    pass


def parse_blocks_text(text, source="<sql>"):
    blocks = []  # [name, first line number, [lines]]
    for number, line in enumerate(text.splitlines(), start=1):
        marker = MARKER.match(line)
        if marker:
            name = marker.group(1)
            if not NAME.match(name):
                raise BlockError(f"{source}:{number}: block name {name!r} is not [A-Za-z_][A-Za-z0-9_]*")
            if any(b[0].lower() == name.lower() for b in blocks):
                raise BlockError(f"{source}:{number}: block {name!r} appears twice (its outputs would overwrite each other)")
            blocks.append([name, number, []])
        elif blocks:
            blocks[-1][2].append((number, line))
        elif line.strip() and not line.lstrip().startswith("--"):
            raise BlockError(f"{source}:{number}: text before the first `-- custmetrics: NAME` line: {line.strip()[:80]!r}")
    if not blocks:
        raise BlockError(f"{source}: no `-- custmetrics: NAME` block")
    return [(name, _statement(name, first, lines, source)) for name, first, lines in blocks]


def _statement(name, first, lines, source):
    # Trailing blank lines are layout; everything else belongs to the one statement.
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        raise BlockError(f"{source}:{first}: block {name!r} has no query")
    last_number, last = lines[-1]
    if not last.rstrip().endswith(";"):
        raise BlockError(f"{source}:{last_number}: block {name!r} does not end with a line ending in `;`")
    # A second statement would be run (psql) or rejected (DuckDB, Spark) depending on the engine;
    # refuse it everywhere. A `;` after `--` is taken as part of a comment (a `--` inside a string
    # literal could fool this, which only lets such a script reach the engine, which then fails).
    for number, line in lines[:-1]:
        if line.rstrip().endswith(";") and "--" not in line:
            raise BlockError(
                f"{source}:{number}: block {name!r} has more than one statement (a line ending in `;` before its last line)"
            )
    body = [line for _, line in lines[:-1]] + [last.rstrip()[:-1]]
    query = "\n".join(body).strip()
    if all(not line.strip() or line.lstrip().startswith("--") for line in query.splitlines()):
        raise BlockError(f"{source}:{first}: block {name!r} has no query")
    return query


def parse_blocks(path):
    with open(path, encoding="utf-8") as f:
        return parse_blocks_text(f.read(), source=path)


def parse_tables(specs):
    """`name=path` pairs -> [(name, absolute path, 'csv'|'parquet')], every file checked to exist."""
    tables = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not NAME.match(name) or not path:
            raise BlockError(f"--table {spec!r}: expected NAME=PATH with NAME an identifier")
        if any(t[0] == name for t in tables):
            raise BlockError(f"--table {name!r} given twice")
        if not os.path.isfile(path):
            raise BlockError(f"--table {name}: no such file: {path}")
        lower = path.lower()
        if lower.endswith(".csv"):
            kind = "csv"
        elif lower.endswith(".parquet"):
            kind = "parquet"
        else:
            raise BlockError(f"--table {name}: {path}: expected a .csv or .parquet file")
        tables.append((name, os.path.abspath(path), kind))
    return tables


def csv_header(path):
    """The column names of a CSV file's header, as every engine must name them: RFC 4180 quoting,
    a UTF-8 byte-order mark dropped (it would otherwise become part of the first name). Empty or
    repeated names are refused, since each engine would resolve them differently."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), None)
    if not header or any(not h for h in header):
        raise BlockError(f"{path}: empty header or empty column name: {header!r}")
    if len(set(header)) != len(header):
        raise BlockError(f"{path}: repeated column name in the header: {header!r}")
    return header


def sql_string(value):
    """A SQL string literal (DuckDB, PostgreSQL, Spark with ANSI quoting of ')."""
    return "'" + value.replace("'", "''") + "'"


def ensure_module(module, requirement):
    """Import MODULE, installing REQUIREMENT from PyPI first when it is missing (a fresh CI
    machine); a failed install is fatal, never a skipped check."""
    import importlib
    import subprocess

    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"{module} is not installed: pip install {requirement}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=True)
        importlib.invalidate_caches()
        return importlib.import_module(module)


def main(argv):
    if len(argv) != 4 or argv[1] != "split":
        print("usage: blocks.py split SQLFILE DIR", file=sys.stderr)
        return 2
    try:
        blocks = parse_blocks(argv[2])
    except (BlockError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    os.makedirs(argv[3], exist_ok=True)
    for name, query in blocks:
        with open(os.path.join(argv[3], name + ".sql"), "w", encoding="utf-8") as f:
            f.write(query + "\n")
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
