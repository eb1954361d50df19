#!/usr/bin/env python3
"""Independent cross-check of custmetrics against DuckDB SQL.

Computes the monthly cohort triangle, the per-customer RFM summary (days, same-day purchases
merged, the lifetimes convention), period retention (S, E, N, R) and NPS/CSAT counts with plain
DuckDB queries, and compares them with custmetrics' JSON output on
  1. the demo data (testdata/demo), and
  2. the CDNOW sample (testdata/cdnow/CDNOW_sample.txt, real transactions of 2,357 customers),
     converted to CSV with YYYYMMDD dates.

Usage: python3 scripts/crosscheck.py            (needs: pip install duckdb; a built custmetrics)
       CUSTMETRICS=target/release/custmetrics python3 scripts/crosscheck.py
Exits non-zero on the first disagreement.
"""
import json
import os
import subprocess
import sys
import tempfile

import duckdb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("CUSTMETRICS", os.path.join(ROOT, "target", "debug", "custmetrics"))


def cm(*args):
    out = subprocess.run([BIN, *args, "--format", "json", "--quiet"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def month_index(label):
    y, m = label.split("-")
    return int(y) * 12 + int(m) - 1


def check(name, ours, theirs):
    if ours != theirs:
        diff = [(k, ours.get(k), theirs.get(k)) for k in sorted(set(ours) | set(theirs), key=str) if ours.get(k) != theirs.get(k)]
        print(f"MISMATCH {name}: {len(diff)} differences, e.g. {diff[:5]}")
        sys.exit(1)
    print(f"ok  {name}: {len(ours)} values agree")


def crosscheck_transactions(label, tx_csv, date_col, date_fmt):
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE t AS SELECT CAST(customer_id AS VARCHAR) AS customer_id,
            CAST(strptime(CAST({date_col} AS VARCHAR), '{date_fmt}') AS DATE) AS d, CAST(amount AS DOUBLE) AS amount
            FROM read_csv('{tx_csv}', all_varchar = true)"""
    )
    as_of = con.execute("SELECT max(d) FROM t").fetchone()[0]

    # Cohort triangle: customers active per (cohort month, offset).
    rows = con.execute(
        """WITH f AS (SELECT customer_id, min(d) AS f FROM t GROUP BY 1),
           a AS (SELECT DISTINCT t.customer_id, year(d) * 12 + month(d) - 1 AS p, year(f) * 12 + month(f) - 1 AS c
                 FROM t JOIN f USING (customer_id))
           SELECT c, p - c, count(*) FROM a GROUP BY 1, 2"""
    ).fetchall()
    theirs = {(c, k): n for c, k, n in rows}
    ours_json = cm("retention", "-t", tx_csv)
    ours = {(month_index(x["cohort"]), x["offset"]): x["active"] for x in ours_json["retention"]["cohorts"] if x["active"] > 0}
    check(f"{label}: cohort triangle (active customers per cohort and offset)", ours, theirs)

    # Period retention: S = active last month, E = active this month, N = new, R = in both.
    rows = con.execute(
        """WITH a AS (SELECT DISTINCT customer_id, year(d) * 12 + month(d) - 1 AS p FROM t),
           f AS (SELECT customer_id, min(p) AS c FROM a GROUP BY 1),
           per AS (SELECT p, count(*) AS e FROM a GROUP BY 1),
           new AS (SELECT c AS p, count(*) AS n FROM f GROUP BY 1),
           kept AS (SELECT a1.p, count(*) AS r FROM a a1 JOIN a a0 ON a0.customer_id = a1.customer_id AND a0.p = a1.p - 1 GROUP BY 1)
           SELECT per.p, per.e, coalesce(new.n, 0), coalesce(kept.r, 0), coalesce(prev.e, 0)
           FROM per LEFT JOIN new USING (p) LEFT JOIN kept USING (p) LEFT JOIN per prev ON prev.p = per.p - 1"""
    ).fetchall()
    theirs = {p: (e, n, r, s) for p, e, n, r, s in rows}
    ours = {
        month_index(x["period"]): (x["customers_end"], x["new_customers"], x["retained"], x["customers_start"])
        for x in ours_json["retention"]["periods"]
        if x["customers_end"] > 0
    }
    check(f"{label}: period retention (E, N, R, S per month)", ours, theirs)

    # RFM in days, same-day purchases merged (lifetimes' summary_data_from_transaction_data).
    rows = con.execute(
        f"""WITH daily AS (SELECT customer_id, d, sum(amount) AS rev FROM t GROUP BY 1, 2),
            c AS (SELECT customer_id, count(*) - 1 AS freq, min(d) AS f, max(d) AS l, sum(rev) AS total,
                         arg_min(rev, d) AS first_rev FROM daily GROUP BY 1)
            SELECT customer_id, freq, l - f, DATE '{as_of}' - f,
                   CASE WHEN freq > 0 THEN (total - first_rev) / freq ELSE 0 END FROM c"""
    ).fetchall()
    theirs = {cid: (f, rec, T, m) for cid, f, rec, T, m in rows}
    rfm = cm("rfm", "-t", tx_csv)["rfm"]["customers"]
    ours = {}
    for x in rfm:
        m = x["monetary_value"]
        want = theirs.get(x["customer_id"], (None, None, None, None))[3]
        # Money agrees to 1e-9 relative (both sum exactly-parsed decimals; only the last bits differ).
        if want is not None and abs(m - want) <= 1e-9 * max(1.0, abs(want)):
            m = want
        ours[x["customer_id"]] = (x["frequency"], round(x["recency"]), round(x["T"]), m)
    check(f"{label}: RFM summary (frequency, recency, T, monetary value per customer)", ours, theirs)
    con.close()


def crosscheck_scores(ix_csv):
    con = duckdb.connect()
    row = con.execute(
        f"""SELECT count(*) FILTER (nps >= 9), count(*) FILTER (nps BETWEEN 7 AND 8), count(*) FILTER (nps <= 6),
                   count(*) FILTER (csat >= 4), count(csat)
            FROM read_csv('{ix_csv}')"""
    ).fetchone()
    ours = cm("report", "-i", ix_csv)
    n, c = ours["nps"], ours["csat"]
    check(
        "demo: NPS and CSAT counts",
        {"promoters": n["promoters"], "passives": n["passives"], "detractors": n["detractors"], "satisfied": c["satisfied"], "csat_responses": c["responses"]},
        {"promoters": row[0], "passives": row[1], "detractors": row[2], "satisfied": row[3], "csat_responses": row[4]},
    )


def main():
    demo = os.path.join(ROOT, "testdata", "demo")
    crosscheck_transactions("demo", os.path.join(demo, "transactions.csv"), "order_date", "%Y-%m-%d")
    crosscheck_scores(os.path.join(demo, "interactions.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        cdnow_csv = os.path.join(tmp, "cdnow.csv")
        with open(os.path.join(ROOT, "testdata", "cdnow", "CDNOW_sample.txt")) as src, open(cdnow_csv, "w") as dst:
            dst.write("customer_id,date,cds,amount\n")
            for line in src:
                master, _sample, date, cds, dollars = line.split()
                dst.write(f"{master},{date},{cds},{dollars}\n")
        crosscheck_transactions("CDNOW sample", cdnow_csv, "date", "%Y%m%d")
    print("all cross-checks agree")


if __name__ == "__main__":
    main()
