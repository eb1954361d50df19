#!/usr/bin/env python3
"""The same jobs as custmetrics, written for the alternatives, for benches/compare/run.sh.

  alternatives.py duckdb   FILE   monthly cohort triangle + per-customer RFM (same-day merged)
  alternatives.py polars   FILE   the same with Python polars (lazy, streaming collect)
  alternatives.py lifetimes FILE  lifetimes' summary_data_from_transaction_data + BetaGeoFitter.fit
  alternatives.py lifetimes-fit SUMMARY.csv [bgnbd|pareto-nbd|mbgnbd]  the fit alone, timed inside
  alternatives.py floor    FILE   polars scanning the three needed columns once (the I/O floor)

FILE is a transactions CSV or Parquet written by `custmetrics generate`
(customer_id, order_date, amount, ...). Prints a one-line result so the work cannot be skipped.
"""
import sys


def source_duckdb(path):
    return f"read_parquet('{path}')" if path.endswith(".parquet") else f"read_csv('{path}')"


def run_duckdb(path):
    import duckdb

    con = duckdb.connect()
    src = source_duckdb(path)
    triangle = con.execute(
        f"""WITH t AS (SELECT customer_id, CAST(order_date AS DATE) AS d FROM {src}),
            f AS (SELECT customer_id, min(d) AS f FROM t GROUP BY 1),
            a AS (SELECT DISTINCT t.customer_id, year(d) * 12 + month(d) - 1 AS p, year(f) * 12 + month(f) - 1 AS c
                  FROM t JOIN f USING (customer_id))
            SELECT c, p - c AS k, count(*) FROM a GROUP BY 1, 2"""
    ).fetchall()
    rfm = con.execute(
        f"""WITH daily AS (SELECT customer_id, CAST(order_date AS DATE) AS d, sum(amount) AS rev FROM {src} GROUP BY 1, 2),
            m AS (SELECT max(d) AS end_d FROM daily)
            SELECT customer_id, count(*) - 1 AS frequency, max(d) - min(d) AS recency, any_value(end_d) - min(d) AS T,
                   (sum(rev) - arg_min(rev, d)) / greatest(count(*) - 1, 1) AS monetary
            FROM daily, m GROUP BY 1"""
    ).fetchall()
    print(f"duckdb: {len(triangle)} cells, {len(rfm)} customers")


def scan_polars(path):
    import polars as pl

    return pl.scan_parquet(path) if path.endswith(".parquet") else pl.scan_csv(path, try_parse_dates=True)


def run_polars(path):
    import polars as pl

    t = scan_polars(path).select(pl.col("customer_id"), pl.col("order_date").cast(pl.Date).alias("d"), pl.col("amount"))
    m = pl.col("d").dt.year() * 12 + pl.col("d").dt.month() - 1
    first = t.group_by("customer_id").agg(pl.col("d").min().alias("f"))
    triangle = (
        t.select("customer_id", m.alias("p"))
        .unique()
        .join(first.select("customer_id", (pl.col("f").dt.year() * 12 + pl.col("f").dt.month() - 1).alias("c")), on="customer_id")
        .group_by("c", (pl.col("p") - pl.col("c")).alias("k"))
        .len()
    )
    daily = t.group_by("customer_id", "d").agg(pl.col("amount").sum().alias("rev"))
    end = daily.select(pl.col("d").max()).collect(engine="streaming").item()
    rfm = daily.group_by("customer_id").agg(
        (pl.len() - 1).alias("frequency"),
        (pl.col("d").max() - pl.col("d").min()).dt.total_days().alias("recency"),
        (pl.lit(end) - pl.col("d").min()).dt.total_days().alias("T"),
        ((pl.col("rev").sum() - pl.col("rev").sort_by("d").first()) / pl.max_horizontal(pl.len() - 1, 1)).alias("monetary"),
    )
    a, b = pl.collect_all([triangle, rfm], engine="streaming")
    print(f"polars: {a.height} cells, {b.height} customers")


def run_lifetimes(path):
    import pandas as pd
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path, parse_dates=["order_date"])
    s = summary_data_from_transaction_data(df, "customer_id", "order_date", monetary_value_col="amount", freq="W")
    bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    print(f"lifetimes: {len(s)} customers, r={bgf.params_['r']:.4f}")


def run_lifetimes_fit(path, model="bgnbd"):
    """Fit only, on a per-customer summary (frequency, recency, T in weeks) that custmetrics also
    reads: the time printed excludes reading the CSV, so it is the optimizer alone."""
    import time

    import pandas as pd
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    s = pd.read_csv(path, usecols=["frequency", "recency", "T"])
    fitter = {"bgnbd": BetaGeoFitter, "pareto-nbd": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}[model]()
    start = time.perf_counter()
    fitter.fit(s["frequency"], s["recency"], s["T"])
    secs = time.perf_counter() - start
    params = ", ".join(f"{k}={v:.4f}" for k, v in fitter.params_.items())
    print(f"lifetimes {model}: {len(s)} customers, fit {secs:.2f} s, {params}")


def run_floor(path):
    import polars as pl

    out = scan_polars(path).select(pl.col("customer_id").n_unique(), pl.col("order_date").max(), pl.col("amount").sum()).collect()
    print(f"floor: {out.row(0)}")


if __name__ == "__main__":
    if sys.argv[1] == "lifetimes-fit":
        run_lifetimes_fit(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "bgnbd")
    else:
        {"duckdb": run_duckdb, "polars": run_polars, "lifetimes": run_lifetimes, "floor": run_floor}[sys.argv[1]](sys.argv[2])
