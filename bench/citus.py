"""Times pg_rfm aggregate queries on a distributed table and on a plain copy of the same
rows, on one Citus cluster (see bench/citus.sh). Median of 5 runs, warm caches. Grouped
queries are wrapped in `SELECT count(*) FROM (...) s WHERE <result> IS NOT NULL`: without
the condition PostgreSQL drops the unused aggregate and times only the grouping."""

import argparse
import re
import statistics
import subprocess
import time

import psycopg

AS_OF = "'2011-12-10 00:00+00'"
QUERIES = [
    ("per customer: `rfm(ts, amount, order_id, as_of)` GROUP BY customer_id (the distribution column)",
     f"SELECT count(*) FROM (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, {AS_OF}) AS r FROM {{t}}"
     " GROUP BY customer_id) s WHERE r IS NOT NULL"),
    ("per customer: `max, count(DISTINCT invoice), sum` GROUP BY customer_id (built-ins, for scale)",
     "SELECT count(*) FROM (SELECT customer_id, max(invoice_date) AS a, count(DISTINCT invoice) AS b,"
     " sum(quantity * price) AS c FROM {t} GROUP BY customer_id) s WHERE a IS NOT NULL AND b > 0 AND c IS NOT NULL"),
    ("whole table: `SELECT (r).* FROM (SELECT rfm(...) r FROM tx) s`",
     f"SELECT (r).* FROM (SELECT rfm(invoice_date, quantity * price, invoice, {AS_OF}) r FROM {{t}}) s"),
    ("whole table: `SELECT (rfm(...)).* FROM tx` (one aggregate per field)",
     f"SELECT (rfm(invoice_date, quantity * price, invoice, {AS_OF})).* FROM {{t}}"),
    ("whole table: `iqr_bounds(price)`", "SELECT iqr_bounds(price) FROM {t}"),
    ("per month: `rfm(...)` GROUP BY date_trunc('month', invoice_date)",
     f"SELECT count(*) FROM (SELECT date_trunc('month', invoice_date), rfm(invoice_date, quantity * price, invoice, {AS_OF})"
     " AS r FROM {t} GROUP BY 1) s WHERE r IS NOT NULL"),
]


def timed(conn, sql, reps=5):
    conn.execute(sql).fetchall()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", required=True)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--gen", required=True)
    a = ap.parse_args()
    with psycopg.connect(f"host=127.0.0.1 port={a.port} user=postgres dbname=rfm_citus", autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        for t in ("tx", "tx_dist"):
            conn.execute(f"DROP TABLE IF EXISTS {t}")
            conn.execute(f"CREATE TABLE {t} (invoice text, stock_code text, quantity int, invoice_date timestamptz,"
                         " price float8, customer_id int, country text)")
        conn.execute("SELECT create_distributed_table('tx_dist', 'customer_id')")
        data = subprocess.run([a.gen, "--lines", str(a.lines), "--customers", str(max(1000, a.lines // 50)), "--seed", "42"],
                              check=True, capture_output=True).stdout
        with conn.cursor().copy("COPY tx FROM STDIN") as copy:
            copy.write(data)
        conn.execute("DELETE FROM tx WHERE customer_id IS NULL OR invoice LIKE 'C%' OR quantity <= 0")
        conn.execute("INSERT INTO tx_dist SELECT * FROM tx")
        conn.execute("VACUUM ANALYZE tx")
        conn.execute("VACUUM ANALYZE tx_dist")
        n = conn.execute("SELECT count(*) FROM tx").fetchone()[0]
        shards = conn.execute("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'tx_dist'::regclass").fetchone()[0]
        print(f"{n:,} lines; tx_dist in {shards} shards on 2 workers; all nodes on one 2-core machine; median of 5 runs\n")
        print("| query | plain table (s) | distributed (s) | how Citus runs it |")
        print("| --- | --- | --- | --- |")
        for what, sql in QUERIES:
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN VERBOSE " + sql.format(t="tx_dist")).fetchall())
            worker_queries = [line for line in plan.splitlines() if line.strip().startswith("Query:")]
            on_workers = any(("rfm(" in q or "iqr_bounds(" in q) for q in worker_queries)
            if any(re.search(r"GROUP BY (\w+\.)?customer_id", q) for q in worker_queries):
                how = "whole on each shard (grouped by the distribution column)"
            elif on_workers:
                how = "partial aggregates on the shards"
            else:
                how = "all rows gathered to the coordinator, aggregated there"
            local = timed(conn, sql.format(t="tx"))
            dist = timed(conn, sql.format(t="tx_dist"))
            print(f"| {what} | {local:.3f} | {dist:.3f} | {how} |")


if __name__ == "__main__":
    main()
