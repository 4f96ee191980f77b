#!/usr/bin/env python3
"""Times one engine computing the same report as offload's ReportTask (monthly, top 10):
overall count/sum/mean/min/max; per category and per month count/sum/mean/median/p95.

usage: bench.py ENGINE CSV [REPEATS=7]   (ENGINE: polars | pandas | duckdb)
Prints the median wall time in ms, file read included (the file is in the page cache).
Amounts are computed in integer cents (quantity * round(unit_price * 100)).
"""
import statistics
import sys
import time


def run_polars(path):
    import polars as pl

    df = pl.read_csv(path, schema_overrides={"quantity": pl.Int64, "unit_price": pl.Float64})
    df = df.select(
        pl.col("category"),
        pl.col("date").str.to_date("%Y-%m-%d").dt.truncate("1mo").alias("month"),
        (pl.col("quantity") * (pl.col("unit_price") * 100).round().cast(pl.Int64)).alias("amount"),
    )
    a = pl.col("amount")
    stats = [a.count().alias("count"), a.sum().alias("sum"), a.mean().alias("mean"),
             a.median().alias("median"), a.quantile(0.95, "nearest").alias("p95")]
    overall = df.select(a.count().alias("count"), a.sum().alias("sum"), a.mean().alias("mean"), a.min().alias("min"), a.max().alias("max")).row(0)
    by_cat = df.group_by("category").agg(stats).sort("category")
    by_month = df.group_by("month").agg(stats).sort("month")
    top = by_cat.sort("sum", descending=True).head(10)
    return overall, by_cat, by_month, top


def run_pandas(path):
    import pandas as pd

    df = pd.read_csv(path, dtype={"category": "string", "quantity": "int64", "unit_price": "float64"})
    amount = df["quantity"] * (df["unit_price"] * 100).round().astype("int64")
    month = pd.to_datetime(df["date"], format="%Y-%m-%d").dt.to_period("M")
    t = pd.DataFrame({"category": df["category"], "month": month, "amount": amount})
    overall = (t["amount"].count(), t["amount"].sum(), t["amount"].mean(), t["amount"].min(), t["amount"].max())
    def agg(key):
        g = t.groupby(key)["amount"]
        return g.agg(["count", "sum", "mean", "median"]).assign(p95=g.quantile(0.95, interpolation="higher"))
    by_cat = agg("category")
    by_month = agg("month")
    top = by_cat.sort_values("sum", ascending=False).head(10)
    return overall, by_cat, by_month, top


def run_duckdb(path):
    import duckdb

    con = duckdb.connect()
    con.execute(f"""
        CREATE TEMP TABLE t AS SELECT category, date_trunc('month', date) AS month,
            quantity * CAST(round(unit_price * 100) AS BIGINT) AS amount
        FROM read_csv('{path}', header = true, columns = {{
            'date': 'DATE', 'category': 'VARCHAR', 'region': 'VARCHAR',
            'description': 'VARCHAR', 'quantity': 'BIGINT', 'unit_price': 'DECIMAL(18,2)'}})""")
    stats = "count(*), sum(amount), avg(amount), quantile_disc(amount, 0.5), quantile_disc(amount, 0.95)"
    overall = con.execute("SELECT count(*), sum(amount), avg(amount), min(amount), max(amount) FROM t").fetchall()
    by_cat = con.execute(f"SELECT category, {stats} FROM t GROUP BY 1 ORDER BY 1").fetchall()
    by_month = con.execute(f"SELECT month, {stats} FROM t GROUP BY 1 ORDER BY 1").fetchall()
    top = sorted(by_cat, key=lambda r: -r[2])[:10]
    con.close()
    return overall, by_cat, by_month, top


def main():
    engine, path = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    fn = {"polars": run_polars, "pandas": run_pandas, "duckdb": run_duckdb}[engine]
    fn(path)  # warm-up: imports, page cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(path)
        times.append((time.perf_counter() - t0) * 1000)
    overall = result[0]
    print(f"{engine}: median {statistics.median(times):.0f} ms (min {min(times):.0f}, {repeats} runs); overall {overall}")


if __name__ == "__main__":
    main()
