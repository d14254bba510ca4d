"""pg_rfm benchmarks: each pg_rfm measurement next to its peer, in the same session, same
data, warm caches; medians, min-max and ratios written to BENCHMARKS.md.

Run by bench/run.sh, which starts a throwaway cluster and the Python environment.
"""

import argparse
import datetime
import io
import os
import pathlib
import platform
import statistics
import subprocess
import time

import numpy as np
import pandas as pd
import psycopg
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

ROOT = pathlib.Path(__file__).resolve().parent.parent
AS_OF = "2011-12-10 00:00+00"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def peak_rss(pid):
    """The peak resident memory (VmHWM) of a server process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.conn = psycopg.connect(autocommit=True)
        self.conn.execute("SET client_min_messages = warning")
        self.rows = []  # (id, what, ours, peer, target, note)
        self.scaling = []
        self.extra = []
        self.job_memory = {}  # lines -> (times, peak bytes) of the whole job
        self.refresh_memory = {}  # lines -> (times, peak bytes) of the nightly refresh

    # ------------------------------------------------------------------ helpers
    def q(self, sql, params=None):
        return self.conn.execute(sql, params).fetchall()

    def timed_sql(self, sql, reps=None, setup=None):
        times = []
        for _ in range(reps or self.args.reps):
            if setup:
                setup()
            t0 = time.perf_counter()
            self.conn.execute(sql).fetchall()
            times.append(time.perf_counter() - t0)
        return times

    @staticmethod
    def timed_fn(fn, reps):
        times, last = [], None
        for _ in range(reps):
            t0 = time.perf_counter()
            last = fn()
            times.append(time.perf_counter() - t0)
        return times, last

    def pair(self, pid, what, ours, peer, target, note=""):
        r = statistics.median(ours) / statistics.median(peer)
        self.rows.append((pid, what, ours, peer, target, r, note))
        log(f"{pid}: pg_rfm {statistics.median(ours):.3f}s, peer {statistics.median(peer):.3f}s, ratio {r:.3f} (target <= {target})")

    # ------------------------------------------------------------------ data
    def load_lines(self, table, lines, customers=None, description=False):
        customers = customers or max(1000, lines // 50)
        exists = self.q("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]
        if exists and self.q(f"SELECT count(*) FROM {table}")[0][0] > 0:
            return
        log(f"generating {lines:,} lines, {customers:,} customers into {table}")
        self.conn.execute(f"CREATE TABLE {table} (invoice text, stock_code text,"
                          f" {'description text, ' if description else ''}quantity int,"
                          " invoice_date timestamptz, price float8, customer_id int, country text)")
        gen = subprocess.Popen([os.environ["RFM_GEN"], "--lines", str(lines), "--customers", str(customers),
                                "--seed", "42"] + (["--description"] if description else []),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        with self.conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            while chunk := gen.stdout.read(1 << 20):
                copy.write(chunk)
        gen.wait()
        self.conn.execute(f"VACUUM ANALYZE {table}")

    def make_customers(self, table, n):
        """RFM-like customers (skewed frequency and monetary, 4 behaviours), deterministic."""
        exists = self.q("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]
        if exists:
            return
        log(f"generating {n:,} customers into {table}")
        self.conn.execute("SELECT setseed(0.42)")
        self.conn.execute(f"""
            CREATE TABLE {table} AS
            SELECT i AS customer_id,
                   (random() * (150 + 200 * (i % 4)))::float8 AS recency,
                   (1 + floor(-ln(1 - random()) * (1 + 8 * (i % 4))))::float8 AS frequency,
                   exp(4 + 0.8 * (i % 4) + 1.2 * random())::float8 AS monetary
            FROM generate_series(1, {n}) i""")
        self.conn.execute(f"VACUUM ANALYZE {table}")

    def warm(self, table):
        for _ in range(2):
            self.q(f"SELECT count(*) FROM {table}")

    # ------------------------------------------------------------------ P1, P2
    def p1_p2(self, table):
        self.warm(table)
        where = "WHERE customer_id IS NOT NULL"
        rfm3 = (f"SELECT count(*) FROM (SELECT customer_id, rfm(invoice_date, quantity * price, '{AS_OF}') r"
                f" FROM {table} {where} GROUP BY customer_id) s WHERE r IS NOT NULL")
        peer3 = (f"SELECT count(*) FROM (SELECT customer_id, max(invoice_date) a, count(*) b, sum(quantity * price) c"
                 f" FROM {table} {where} GROUP BY customer_id) s WHERE (a, b, c) IS NOT NULL")
        rfm4 = (f"SELECT count(*) FROM (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{AS_OF}') r"
                f" FROM {table} {where} GROUP BY customer_id) s WHERE r IS NOT NULL")
        peer4 = (f"SELECT count(*) FROM (SELECT customer_id, max(invoice_date) a, count(DISTINCT invoice) b,"
                 f" sum(quantity * price) c FROM {table} {where} GROUP BY customer_id) s WHERE (a, b, c) IS NOT NULL")
        floor = (f"SELECT count(*) FROM (SELECT customer_id, count(*) c FROM {table} {where} GROUP BY customer_id) s"
                 f" WHERE c IS NOT NULL")
        ours_a = self.timed_sql(rfm3)
        self.pair("P1a", "`rfm(ts, amount, as_of)` per customer vs `max, count(*), sum` per customer",
                  ours_a, self.timed_sql(peer3), 1.0)
        self.pair("P1b", "`rfm(ts, amount, order_id, as_of)` vs `max, count(DISTINCT order_id), sum`",
                  self.timed_sql(rfm4), self.timed_sql(peer4), 0.5)
        self.pair("P1c", "P1a vs the grouping floor `count(*) GROUP BY customer_id`",
                  ours_a, self.timed_sql(floor), 1.1)
        iqr = f"SELECT iqr_bounds(price) IS NOT NULL FROM {table}"
        pct = f"SELECT percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY price) IS NOT NULL FROM {table}"
        self.conn.execute("SET max_parallel_workers_per_gather = 0")
        self.pair("P2", "`iqr_bounds(x)` over all lines vs `percentile_cont(ARRAY[.25,.5,.75])`, serial",
                  self.timed_sql(iqr), self.timed_sql(pct), 0.5, "max_parallel_workers_per_gather = 0")
        self.conn.execute("RESET max_parallel_workers_per_gather")
        self.pair("P2p", "the same with parallel workers allowed (2)",
                  self.timed_sql(iqr), self.timed_sql(pct), 0.5,
                  "ordered-set aggregates cannot run in parallel; iqr_bounds can")
        return statistics.median(ours_a)

    # ------------------------------------------------------------------ P3, P5
    def python_fetch_preprocess(self, table):
        rows = self.conn.execute(f"SELECT recency, frequency, monetary FROM {table}").fetchall()
        raw = np.array(rows, dtype=float)
        q1, q3 = np.percentile(raw, [25, 75], axis=0)
        x = np.clip(raw, q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
        x[:, 1:] = np.log1p(x[:, 1:])
        return (x - x.mean(axis=0)) / x.std(axis=0)

    def p3(self, table):
        self.warm(table)
        ours, inertia = [], None
        for _ in range(self.args.reps):
            t0 = time.perf_counter()
            inertia = self.q(f"SELECT inertia FROM rfm_train('p3', '{table}', k => 4, n_init => 10)")[0][0]
            ours.append(time.perf_counter() - t0)

        def peer():
            x = self.python_fetch_preprocess(table)
            return KMeans(n_clusters=4, n_init=10, random_state=0).fit(x).inertia_
        peer_t, sk_inertia = self.timed_fn(peer, self.args.reps)
        self.pair("P3", f"`rfm_train` k = 4, n_init = 10 on {self.args.p3_customers:,} customers vs psycopg fetch"
                  " + numpy preprocessing + scikit-learn `KMeans(4, n_init=10)`", ours, peer_t, 1.0,
                  f"inertia {inertia:.1f} vs scikit-learn {sk_inertia:.1f} (ratio {inertia / sk_inertia:.4f})")
        self.extra.append(("P3 inertia ratio (pg_rfm / scikit-learn)", f"{inertia / sk_inertia:.4f}", "<= 1.01"))

    def p3b(self, table):
        reps = self.args.reps
        ours = self.timed_sql(f"SELECT k FROM rfm_train('p3b', '{table}', k_min => 2, k_max => 10)", reps)
        chosen = self.q("SELECT k FROM rfm_models WHERE model = 'p3b' AND active")[0][0]

        def peer():
            x = self.python_fetch_preprocess(table)
            best = None
            for k in range(2, 11):
                labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x)
                s = silhouette_score(x, labels, sample_size=min(10_000, len(x)), random_state=0)
                if best is None or s > best[1]:
                    best = (k, s)
            return best[0]
        peer_t, sk_k = self.timed_fn(peer, reps)
        self.pair("P3b", "`rfm_train` automatic k (2..10, silhouette on 10,000 sampled rows) vs the same search"
                  " in scikit-learn", ours, peer_t, 1.0, f"chosen k: pg_rfm {chosen}, scikit-learn {sk_k}")

    def p5(self, table):
        self.conn.execute("DROP TABLE IF EXISTS p5_tiny")
        self.conn.execute(f"CREATE TABLE p5_tiny AS SELECT * FROM {table} LIMIT 1000")
        n = self.q(f"SELECT count(*) FROM {table}")[0][0]
        raw = n * 3 * 8
        deltas = []
        for _ in range(self.args.reps):
            with psycopg.connect(autocommit=True) as c:
                c.execute("SET client_min_messages = warning")
                c.execute("SET max_parallel_workers_per_gather = 0")  # the warm-up scan in this backend
                pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
                # Baseline: the library loaded, catalogs cached and the table's pages mapped,
                # so the growth measured is what training itself allocates.
                c.execute("SELECT rfm_train('p5_warmup', 'p5_tiny', k => 2, n_init => 1)").fetchone()
                c.execute(f"SELECT sum(recency + frequency + monetary) FROM {table}").fetchone()
                before = vmhwm(pid)
                c.execute(f"SELECT rfm_train('p5', '{table}', k => 4, n_init => 10)").fetchone()
                deltas.append(vmhwm(pid) - before)
        med = statistics.median(deltas)
        self.rows.append(("P5", f"peak backend memory growth during P3 (VmHWM) vs raw feature bytes"
                          f" ({n:,} x 3 x 8 = {raw / 2**20:.1f} MiB)", [d / 2**20 for d in deltas], [raw / 2**20] * 1,
                          3.0, med / raw, "MiB, not seconds; baseline VmHWM taken after scanning the table"))
        log(f"P5: VmHWM growth {med / 2**20:.1f} MiB, {med / raw:.2f} x raw")

    # ------------------------------------------------------------------ P4
    def p4(self, table, model_source):
        self.q(f"SELECT rfm_train('p4', '{model_source}', k => 4)")
        label = self.q("SELECT label FROM rfm_centroids c JOIN rfm_models m USING (model, version)"
                       " WHERE m.model = 'p4' AND m.active ORDER BY c.cluster LIMIT 1")[0][0]
        self.warm(table)
        ours = self.timed_sql(f"SELECT count(*) FROM {table} WHERE rfm_segment('p4', recency, frequency, monetary)"
                              f" = '{label.replace(chr(39), chr(39) * 2)}'")
        peer = self.timed_sql(f"SELECT count(*) FROM {table} WHERE recency + frequency + monetary > 0")
        self.pair("P4", f"`count(*) WHERE rfm_segment('m', r, f, m) = '{label}'` over"
                  f" {self.args.p4_rows:,} rows vs `WHERE r + f + m > 0`", ours, peer, 2.0)

    def p4c(self, table, model_source):
        """A model with a categorical feature, assigned from rows as jsonb (the form
        rfm_publish uses for such models), against P4's numeric model and float8 arguments
        on the same rows: the cost of the jsonb row form."""
        channel = "(ARRAY['web', 'store', 'app', 'phone'])[1 + customer_id % 4]"
        self.conn.execute(f"CREATE OR REPLACE VIEW p4c_train AS SELECT *, {channel} AS channel FROM {model_source}")
        self.q("SELECT rfm_drop_model('p4c')")
        self.q("SELECT rfm_train('p4c', 'p4c_train', k => 4, features => '{recency,frequency,monetary,channel}')")
        if not self.q("SELECT count(*) FROM rfm_models WHERE model = 'p4'")[0][0]:
            self.q(f"SELECT rfm_train('p4', '{model_source}', k => 4)")
        first = ("SELECT label FROM rfm_centroids c JOIN rfm_models m USING (model, version)"
                 " WHERE m.model = '{}' AND m.active ORDER BY c.cluster LIMIT 1")
        lc = self.q(first.format("p4c"))[0][0].replace(chr(39), chr(39) * 2)
        ln = self.q(first.format("p4"))[0][0].replace(chr(39), chr(39) * 2)
        self.warm(table)
        ours = self.timed_sql(f"SELECT count(*) FROM {table} WHERE rfm_segment('p4c', jsonb_build_object("
                              f"'recency', recency, 'frequency', frequency, 'monetary', monetary, 'channel', {channel}))"
                              f" = '{lc}'")
        peer = self.timed_sql(f"SELECT count(*) FROM {table} WHERE rfm_segment('p4', recency, frequency, monetary) = '{ln}'")
        self.pair("P4c", f"P4 for a model with a categorical feature, rows as jsonb (`rfm_segment('m', jsonb_build_object(...))`,"
                  f" 3 numeric + 1 text of 4 levels) vs P4's numeric model with float8 arguments", ours, peer, 3.0,
                  "includes building the jsonb per row, as rfm_publish's view does")

    def p4b(self, table):
        """Many models at one call site: the name changes every row (one model per store or
        region). The one-name peer builds its name the same way, so only switching differs."""
        self.q("SELECT count(*) FROM generate_series(1, 20) i, rfm_model_import(rfm_model_export('p4'), 'p4_' || i)")
        label = self.q("SELECT label FROM rfm_centroids c JOIN rfm_models m USING (model, version)"
                       " WHERE m.model = 'p4' AND m.active ORDER BY c.cluster LIMIT 1")[0][0].replace(chr(39), chr(39) * 2)
        query = (f"SELECT count(*) FROM {table} WHERE rfm_segment('p4_' || (1 + customer_id % {{n}}),"
                 f" recency, frequency, monetary) = '{label}'")
        self.warm(table)
        one = self.timed_sql(query.format(n=1))
        for n in (2, 20):
            many = self.timed_sql(query.format(n=n))
            self.pair(f"P4b-{n}", f"P4 with {n} model names alternating row by row (`rfm_segment('p4_' || (1 + id % {n}), ...)`)"
                      " vs the same query with one name", many, one, 1.3)

    # ------------------------------------------------------------------ CLV
    CLV_TRUTH = {"r": 0.5, "alpha": 30.0, "a": 0.8, "b": 3.0, "p": 6.0, "q": 4.0, "v": 15.0}
    CLV_AS_OF = "2024-01-01 00:00+00"

    def make_clv_transactions(self, table, customers):
        """Purchases of `customers` customers from a BG/NBD process (days as the unit, the
        generating parameters in CLV_TRUTH), first purchases spread over two years before
        CLV_AS_OF, spend per purchase Gamma-Gamma; deterministic (numpy seed 7)."""
        if self.q("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]:
            return
        log(f"simulating BG/NBD purchases of {customers:,} customers into {table}")
        t = self.CLV_TRUTH
        rng = np.random.default_rng(7)
        lam = rng.gamma(t["r"], 1 / t["alpha"], customers)
        drop = rng.beta(t["a"], t["b"], customers)
        nu = rng.gamma(t["q"], 1 / t["v"], customers)
        age = rng.integers(30, 730, customers).astype(float)  # days from the first purchase to as_of
        ids, days = [np.arange(customers)], [np.zeros(customers)]
        now = np.zeros(customers)
        alive = np.ones(customers, dtype=bool)
        while alive.any():
            idx = np.flatnonzero(alive)
            now[idx] += rng.exponential(1 / lam[idx])
            ok = now[idx] < age[idx]
            idx_ok = idx[ok]
            ids.append(idx_ok)
            days.append(np.floor(now[idx_ok]))
            alive[idx[~ok]] = False
            gone = rng.random(len(idx_ok)) < drop[idx_ok]
            alive[idx_ok[gone]] = False
        ids, days = np.concatenate(ids), np.concatenate(days)
        amounts = rng.gamma(t["p"], 1 / nu[ids])
        start = np.datetime64("2024-01-01") - age.astype("timedelta64[D]")
        ts = start[ids] + days.astype("timedelta64[D]") + np.timedelta64(12, "h")
        self.conn.execute(f"CREATE TABLE {table} (customer_id int, ts timestamptz, amount float8)")
        with self.conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
            for i, d, a in zip(ids.tolist(), np.datetime_as_string(ts, unit="s").tolist(), amounts.tolist()):
                copy.write_row((i, d + "+00", a))
        self.conn.execute(f"ANALYZE {table}")
        log(f"{len(ids):,} purchases")

    def lifetimes_fetch_summary(self, table):
        from lifetimes.utils import summary_data_from_transaction_data
        tx = pd.DataFrame(self.conn.execute(f"SELECT customer_id, ts, amount FROM {table}").fetchall(),
                          columns=["customer_id", "ts", "amount"])
        tx["ts"] = pd.to_datetime(tx["ts"], utc=True).dt.tz_localize(None)
        return summary_data_from_transaction_data(tx, "customer_id", "ts", monetary_value_col="amount",
                                                  observation_period_end=self.CLV_AS_OF[:10], freq="D")

    def clv(self, customers):
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        table = f"clv_tx_{customers}"
        self.make_clv_transactions(table, customers)
        self.warm(table)
        reps, peer_reps = self.args.reps, min(self.args.reps, 2)
        summary_sql = (f"SELECT customer_id, (rfm_clv_summary(ts, amount, '{self.CLV_AS_OF}')).* FROM {table} GROUP BY 1")
        ours = self.timed_sql(f"SELECT count(*) FROM ({summary_sql}) s WHERE s.frequency IS NOT NULL", reps)
        peer_t, summary = self.timed_fn(lambda: self.lifetimes_fetch_summary(table), peer_reps)
        self.pair("C1", f"`rfm_clv_summary` per customer over {customers:,} simulated customers' purchases vs psycopg fetch"
                  " + lifetimes `summary_data_from_transaction_data`", ours, peer_t, 0.05)
        self.conn.execute("DROP TABLE IF EXISTS clv_summary_bench")
        self.conn.execute(f"CREATE TABLE clv_summary_bench AS {summary_sql}")
        ours = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fit = self.conn.execute("SELECT r, alpha, a, b, p, q, v FROM rfm_clv_train('clv_bench', 'clv_summary_bench')").fetchone()
            ours.append(time.perf_counter() - t0)

        def fetch_inputs():
            return pd.DataFrame(self.conn.execute("SELECT frequency, recency, t, monetary FROM clv_summary_bench").fetchall(),
                                columns=["frequency", "recency", "T", "monetary"])

        def peer():
            df = fetch_inputs()
            bgf = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
            rep = df[df["frequency"] > 0]
            ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary"])
            return bgf, ggf
        peer_t, (bgf, ggf) = self.timed_fn(peer, peer_reps)
        truth = self.CLV_TRUTH
        got = dict(zip(["r", "alpha", "a", "b", "p", "q", "v"], fit))
        lt = {**bgf.params_.to_dict(), **ggf.params_.to_dict()}
        worst = max(abs(got[k] / lt[k] - 1) for k in got)
        self.pair("C2", f"`rfm_clv_train` (BG/NBD + Gamma-Gamma) on {customers:,} customers vs psycopg fetch + lifetimes"
                  " `BetaGeoFitter` + `GammaGammaFitter`", ours, peer_t, 0.05,
                  "fitted " + ", ".join(f"{k} {got[k]:.3f} (true {truth[k]})" for k in got)
                  + f"; largest relative difference to lifetimes {worst:.1e}")
        clv_sql = ("SELECT count(*) FROM clv_summary_bench WHERE rfm_clv_value('clv_bench', frequency, recency, t, monetary)"
                   " IS NOT NULL")
        ours = self.timed_sql(clv_sql, reps)

        def peer_clv():
            df = fetch_inputs()
            return ggf.customer_lifetime_value(bgf, df["frequency"], df["recency"], df["T"], df["monetary"],
                                               time=12, discount_rate=0.01, freq="D")
        peer_t, _ = self.timed_fn(peer_clv, peer_reps)
        self.pair("C3", f"`rfm_clv_value` (12 months) of every one of {customers:,} customers vs psycopg fetch + lifetimes"
                  " `customer_lifetime_value`", ours, peer_t, 0.05)
        # C4: the model value read in the plain per-row form against the materialized CTE.
        plain = self.timed_sql("SELECT count(*) FROM clv_summary_bench WHERE rfm_clv_value(rfm_clv_model_of('clv_bench'),"
                               " frequency, recency, t, monetary) IS NOT NULL", reps)
        cte = self.timed_sql("WITH m AS MATERIALIZED (SELECT rfm_clv_model_of('clv_bench') AS m)"
                             " SELECT count(*) FROM clv_summary_bench, m WHERE rfm_clv_value(m.m, frequency, recency, t, monetary)"
                             " IS NOT NULL", reps)
        self.pair("C4", f"`rfm_clv_value(rfm_clv_model_of('m'), ...)` per row (no CTE) over {customers:,} customers vs the same"
                  " with `WITH m AS MATERIALIZED (SELECT rfm_clv_model_of('m'))`", plain, cte, 1.10,
                  "the model value is read once per statement at the call site, so the plain form needs no CTE")

    # ------------------------------------------------------------------ E1, E2
    # Campaign experiments: assignment of a million customers, and the results over ten
    # million order lines, against the notebook path (psycopg fetch, pandas, numpy,
    # statsmodels, scipy), which writes its assignment back to the database as the function does.
    def experiments(self, customers, lines):
        from scipy import stats
        from statsmodels.stats.multitest import multipletests
        from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
        cust, outc = f"exp_customers_{customers}", f"exp_lines_{customers}_{lines}"
        if not self.q("SELECT to_regclass(%s) IS NOT NULL", (cust,))[0][0]:
            log(f"generating {customers:,} experiment customers and {lines:,} order lines")
            self.conn.execute(f"CREATE TABLE {cust} AS SELECT 'c' || i AS customer_id,"
                              f" (ARRAY['Champions', 'Loyal', 'At Risk', 'Hibernating', 'New'])[1 + i % 5] AS segment,"
                              f" (i * 7919 % 10000)::float8 AS monetary FROM generate_series(1, {customers}::bigint) i")
            self.conn.execute(f"VACUUM ANALYZE {cust}")
        if not self.q("SELECT to_regclass(%s) IS NOT NULL", (outc,))[0][0]:
            # 40% of the customers buy in the window: 2/5 of the customer numbers, scattered over
            # the strata (multiplying by 7919 permutes the numbers modulo the customer count).
            self.conn.execute(f"CREATE TABLE {outc} AS SELECT 'c' || (1 + ((i * 2654435761) % {customers * 2 // 5}) * 7919 % {customers})"
                              f" AS customer_id,"
                              f" timestamptz '2012-01-01 00:00+00' + (i % 2592000) * interval '1 second' AS ts,"
                              f" CASE WHEN i % 23 = 0 THEN -5.0 ELSE (i % 997)::float8 / 10 END AS amount"
                              f" FROM generate_series(1, {lines}::bigint) i")
            self.conn.execute(f"VACUUM ANALYZE {outc}")
        self.warm(cust)
        self.warm(outc)
        reps, peer_reps = self.args.reps, min(self.args.reps, 3)
        arms = '{"control": 0.5, "offer": 0.5}'

        def drop():
            self.q("SELECT rfm_experiment_drop('bench_exp')")
        ours = self.timed_sql(f"SELECT * FROM rfm_experiment_create('bench_exp', '{cust}', 'customer_id', '{arms}', 'segment', 1)",
                              reps, setup=drop)
        self.conn.execute("DROP TABLE IF EXISTS py_assignments")
        self.conn.execute("CREATE TABLE py_assignments (experiment text, customer_id text, stratum text, arm text,"
                          " PRIMARY KEY (experiment, customer_id))")

        def peer_create():
            self.conn.execute("TRUNCATE py_assignments")
            df = self.copy_frame(cust, ["customer_id", "segment", "monetary"])
            df["customer_id"] = df["customer_id"].astype(str)
            h = pd.util.hash_pandas_object(df["customer_id"], index=False, hash_key="bench_exp_seed_1")
            df = df.assign(h=h.values).sort_values(["segment", "h", "customer_id"])
            pos = df.groupby("segment").cumcount().to_numpy()
            df["arm"] = np.where(pos % 2 == 0, "control", "offer")
            df["experiment"] = "bench_exp"
            buf = io.StringIO()
            df[["experiment", "customer_id", "segment", "arm"]].to_csv(buf, sep="\t", header=False, index=False)
            with self.conn.cursor().copy("COPY py_assignments FROM STDIN") as copy:
                copy.write(buf.getvalue())
            return df
        peer_t, _ = self.timed_fn(peer_create, peer_reps)
        self.pair("E1", f"`rfm_experiment_create` (2 arms, 5 strata) of {customers:,} customers, stored, vs psycopg fetch +"
                  " pandas hash, sort and deal + COPY back into a table with the same primary key", ours, peer_t, 0.2)
        results_sql = (f"SELECT * FROM rfm_experiment_results('bench_exp', '{outc}', 'customer_id', 'ts', 'amount',"
                       " '2012-01-01', '2012-02-01', 'monetary')")
        ours = self.timed_sql(results_sql, reps)

        def peer_results():
            lines_df = self.copy_frame(outc, ["customer_id", "ts", "amount"])
            lines_df["customer_id"] = lines_df["customer_id"].astype(str)
            g = lines_df.groupby("customer_id")["amount"]
            per = pd.DataFrame({"revenue": g.sum(), "converted": g.max() >= 0})
            a = pd.DataFrame(self.conn.execute("SELECT customer_id, stratum, arm FROM rfm_experiment_assignments"
                                               " WHERE experiment = 'bench_exp'").fetchall(),
                             columns=["customer_id", "stratum", "arm"]).set_index("customer_id")
            cov = self.copy_frame(cust, ["customer_id", "segment", "monetary"]).set_index("customer_id")["monetary"]
            df = a.join(per, how="left").fillna({"revenue": 0.0, "converted": False}).join(cov)
            out = []
            for scope, d in [(None, df)] + list(df.groupby("stratum")):
                c, t = d[d.arm == "control"], d[d.arm == "offer"]
                z = proportions_ztest([t.converted.sum(), c.converted.sum()], [len(t), len(c)])
                ci = confint_proportions_2indep(t.converted.sum(), len(t), c.converted.sum(), len(c), method="newcomb")
                w = stats.ttest_ind(t.revenue, c.revenue, equal_var=False)
                both = pd.concat([t, c])
                theta = np.cov(both.revenue, both.monetary)[0, 1] / np.var(both.monetary, ddof=1)
                adj = lambda x: x.revenue - theta * (x.monetary - both.monetary.mean())
                wc = stats.ttest_ind(adj(t), adj(c), equal_var=False)
                out.append((scope, z[1], ci, w.pvalue, w.confidence_interval(), wc.pvalue))
            multipletests([o[1] for o in out[1:]], method="holm")
            return out
        peer_t, _ = self.timed_fn(peer_results, peer_reps)
        self.pair("E2", f"`rfm_experiment_results` (with CUPED) of {customers:,} customers over {lines:,} order lines vs"
                  " psycopg fetch + pandas groupby + statsmodels/scipy tests", ours, peer_t, 0.2)

    # ------------------------------------------------------------------ B1-B3
    # Cross-sell: mining association rules from order lines (about 20 distinct items an
    # order over 4,000 items of Zipf-like popularity, with planted bundles), against the
    # tutorial path: psycopg fetch, pandas one-hot of orders x items, mlxtend fpgrowth and
    # association_rules; and recommendations for every customer against a plain-SQL join.
    def make_basket_lines(self, table, lines):
        if self.q("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]:
            return
        log(f"generating {lines:,} basket lines into {table}")
        rng = np.random.default_rng(5)
        orders = lines // 20
        self.conn.execute(f"CREATE TABLE {table} (order_id int, customer_id int, item text)")
        chunk = 500_000
        for start in range(0, orders, chunk):
            n = min(chunk, orders - start)
            sizes = rng.integers(10, 31, n)
            oid = np.repeat(np.arange(start, start + n), sizes)
            item = np.minimum((4000 * rng.random(oid.size) ** 2.2).astype(np.int64), 3999)
            # Planted bundles: items 3 -> 41, 7 -> 58, 12 -> 133 with probability 0.6.
            extra_o, extra_i = [], []
            for a, b in ((3, 41), (7, 58), (12, 133)):
                has = np.unique(oid[item == a])
                keep = has[rng.random(has.size) < 0.6]
                extra_o.append(keep)
                extra_i.append(np.full(keep.size, b))
            oid = np.concatenate([oid] + extra_o)
            item = np.concatenate([item] + extra_i)
            # 2.5 orders a customer: 200,000 customers for the 10M lines of B2 and B3.
            df = pd.DataFrame({"o": oid, "c": oid % max(1, orders * 2 // 5), "i": np.char.add("P", item.astype(str))})
            buf = io.StringIO()
            df.to_csv(buf, sep="\t", header=False, index=False)
            with self.conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(buf.getvalue())
        self.conn.execute(f"VACUUM ANALYZE {table}")

    def mlxtend_path(self, table, min_support):
        from mlxtend.frequent_patterns import association_rules, fpgrowth
        df = self.copy_frame(table, ["order_id", "customer_id", "item"])
        onehot = (df.groupby(["order_id", "item"]).size().unstack(fill_value=0) > 0)
        sets = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=3)
        rules = association_rules(sets, num_itemsets=len(onehot), metric="confidence", min_threshold=0.2)
        return len(sets), len(rules)

    def baskets(self, lines, big_lines):
        import multiprocessing as mp
        table = f"basket_lines_{lines}"
        self.make_basket_lines(table, lines)
        self.warm(table)
        reps, peer_reps = self.args.reps, min(self.args.reps, 2)
        train = f"SELECT * FROM rfm_basket_train('bench_basket', '{table}', 'order_id', 'item', 0.005, 0.2, 3)"
        ours = self.timed_sql(train, reps)
        got = self.q("SELECT itemsets, rules FROM rfm_basket_models WHERE name = 'bench_basket' AND active")[0]
        peer_t, (n_sets, n_rules) = self.timed_fn(lambda: self.mlxtend_path(table, 0.005), peer_reps)
        orders, items = self.q(f"SELECT count(DISTINCT order_id), count(DISTINCT item) FROM {table}")[0]
        self.pair("B1", f"`rfm_basket_train` over {lines:,} lines ({orders:,} orders, {items:,} items, min_support 0.005,"
                  " max_len 3) vs psycopg fetch + pandas one-hot + mlxtend `fpgrowth` + `association_rules`", ours, peer_t, 0.1,
                  f"{got[0]:,} itemsets and {got[1]:,} rules; mlxtend {n_sets:,} and {n_rules:,}")
        # B2: the same mining at a larger scale, with the pandas path in a process of its own
        # under a memory limit (it builds a dense orders x items matrix).
        big = f"basket_lines_{big_lines}"
        self.make_basket_lines(big, big_lines)
        self.warm(big)
        # In a backend of its own, whose peak resident memory is the mining's.
        with psycopg.connect(autocommit=True) as c2:
            c2.execute("SET client_min_messages = warning")
            pid = c2.execute("SELECT pg_backend_pid()").fetchone()[0]
            t0 = time.perf_counter()
            c2.execute(f"SELECT * FROM rfm_basket_train('bench_basket_big', '{big}', 'order_id', 'item', 0.005, 0.2, 3)")
            ours = [time.perf_counter() - t0]
            peak = peak_rss(pid)
        ctx = mp.get_context("fork")
        q = ctx.Queue()

        def run():
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))
            try:
                b = Bench.__new__(Bench)
                b.conn = psycopg.connect(autocommit=True)
                t = time.perf_counter()
                b.mlxtend_path(big, 0.005)
                q.put(("ok", time.perf_counter() - t))
            except MemoryError:
                q.put(("MemoryError", None))
            except Exception as e:  # the allocation failure may surface as another exception
                q.put((type(e).__name__, None))
        proc = ctx.Process(target=run)
        proc.start()
        proc.join(3600)
        status, peer_time = q.get() if not q.empty() else (f"killed (exit code {proc.exitcode})", None)
        if peer_time:
            self.pair("B2", f"`rfm_basket_train` over {big_lines:,} lines vs the pandas + mlxtend path", ours, [peer_time], 0.1,
                      f"backend peak {peak / 2**20:.0f} MiB")
        else:
            self.extra.append(("B2", f"`rfm_basket_train` over {big_lines:,} lines ({big_lines // 20:,} orders): "
                               f"{ours[0]:.2f} s, the backend's peak resident memory {peak / 2**20:.0f} MiB; the pandas"
                               f" one-hot + mlxtend path failed under a 12 GiB address-space limit: {status}",
                               "the pandas path's ratio <= 0.1 where it runs"))
            log(f"B2: pg_rfm {ours[0]:.3f}s; peer failed: {status}")
        # B3: recommendations for every customer of the 10M lines (200,000 at the default
        # scale) by the rules mined from them.
        self.conn.execute("DROP TABLE IF EXISTS basket_customers")
        self.conn.execute(f"CREATE TABLE basket_customers AS SELECT customer_id, array_agg(DISTINCT item) AS items"
                          f" FROM {big} GROUP BY customer_id")
        self.conn.execute("ANALYZE basket_customers")
        customers = self.q("SELECT count(*) FROM basket_customers")[0][0]
        n_big_rules = self.q("SELECT rules FROM rfm_basket_models WHERE name = 'bench_basket_big' AND active")[0][0]
        self.conn.execute("DROP TABLE IF EXISTS basket_rules_plain")
        self.conn.execute("CREATE TABLE basket_rules_plain AS SELECT antecedent, consequent, confidence, lift"
                          " FROM rfm_basket_rules('bench_basket_big', NULL)")
        ours = self.timed_sql("SELECT count(*) FROM basket_customers WHERE cardinality(rfm_recommend('bench_basket_big', items, 5)) >= 0", reps)
        plain_sql = """
            SELECT count(*) FROM (
                SELECT customer_id, (array_agg(item ORDER BY confidence DESC, lift DESC, item))[1:5]
                FROM (SELECT DISTINCT ON (c.customer_id, x.item) c.customer_id, x.item, r.confidence, r.lift
                      FROM basket_customers c JOIN basket_rules_plain r ON r.antecedent <@ c.items
                      CROSS JOIN LATERAL unnest(r.consequent) x(item)
                      WHERE NOT x.item = ANY (c.items)
                      ORDER BY c.customer_id, x.item, r.confidence DESC, r.lift DESC) best
                GROUP BY customer_id) s"""
        peer = self.timed_sql(plain_sql, peer_reps)
        self.pair("B3", f"`rfm_recommend` (top 5) for every one of {customers:,} customers vs a plain-SQL join of their items"
                  f" with the {n_big_rules:,} rules", ours, peer, 0.5)


    # ------------------------------------------------------------------ P0
    # The whole job in SQL. The cleaning of the recipe in docs/production.md: filters, and
    # exact duplicate lines dropped inside rfm (its line argument) instead of a SELECT DISTINCT
    # over every line, which sorts or hashes all of them and spills at the default work_mem.
    JOB_RFM = """
        SELECT customer_id, rfm(invoice_date, quantity * price, invoice, stock_code, '{as_of}') AS r
        FROM {table}
        WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0
        GROUP BY customer_id"""
    # Before 0.7.0: SELECT DISTINCT over the columns, then the order-line rfm.
    JOB_RFM_DISTINCT = """
        SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{as_of}') AS r
        FROM (SELECT DISTINCT {columns}
              FROM {table}
              WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0) c
        GROUP BY customer_id"""
    TUNED = ("SET LOCAL work_mem = '1GB'; SET LOCAL enable_hashagg = off; SET LOCAL parallel_setup_cost = 0;"
             " SET LOCAL parallel_tuple_cost = 0;")
    COLUMNS = "customer_id, invoice, stock_code, quantity, invoice_date, price, country"

    def job_sql(self, table, rfm_sql, settings=""):
        return f"""
            {settings}
            DROP TABLE IF EXISTS p0_rfm, p0_labels;
            CREATE TABLE p0_rfm AS
              SELECT customer_id, r.* FROM ({rfm_sql.format(as_of=AS_OF, table=table, columns=self.COLUMNS)}) s,
                     LATERAL (SELECT (s.r).*) r;
            SELECT rfm_train('p0', 'p0_rfm', k => 4, n_init => 10);
            CREATE TABLE p0_labels AS
              SELECT customer_id, rfm_segment('p0', recency, frequency, monetary) AS segment FROM p0_rfm;
        """

    def run_job(self, sql, reps):
        def ours():
            with self.conn.transaction():
                self.conn.execute(sql)
        with PeakRss(self.conn) as mem:
            t, _ = self.timed_fn(ours, reps)
        return t, mem.peak

    def p0(self, table):
        def peer():
            df = self.copy_frame(table, ["invoice", "stock_code", "quantity", "invoice_date", "price", "customer_id",
                                         "country"])
            g = pandas_rfm(df)
            raw = g[["recency", "frequency", "monetary"]].to_numpy(dtype=float)
            q1, q3 = np.percentile(raw, [25, 75], axis=0)
            x = np.clip(raw, q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
            x[:, 1:] = np.log1p(x[:, 1:])
            x = (x - x.mean(axis=0)) / x.std(axis=0)
            labels = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(x)
            self.conn.execute("DROP TABLE IF EXISTS p0_py_labels")
            self.conn.execute("CREATE TABLE p0_py_labels (customer_id int, cluster int)")
            with self.conn.cursor().copy("COPY p0_py_labels FROM STDIN") as copy:
                for cid, lab in zip(g.index.astype(int), labels):
                    copy.write_row((int(cid), int(lab)))
            return g
        peer_t, g = self.timed_fn(peer, self.args.reps)
        ours_t, mem = self.run_job(self.job_sql(table, self.JOB_RFM), self.args.reps)
        differ = self.differ_from_pandas("p0_rfm", g)
        ours_n = self.q("SELECT count(*) FROM p0_labels")[0][0]
        self.pair("P0", "whole job at PostgreSQL's default settings: raw lines -> cleaned (filters; duplicate lines dropped"
                  " by `rfm(ts, amount, order_id, line, as_of)`) -> `rfm_train` (k = 4) -> every customer labelled"
                  " into a table vs psycopg COPY -> pandas cleaning (`drop_duplicates`) and groupby -> numpy ->"
                  " scikit-learn -> COPY back", ours_t, peer_t, 0.2,
                  f"customers labelled: pg_rfm {ours_n:,}, Python {len(g):,}; customers whose RFM differs from pandas':"
                  f" {differ}; peak memory of all server processes {mem / 2**20:.0f} MiB")
        self.job_memory[self.args.lines] = (ours_t, mem)
        reps = min(3, self.args.reps)
        t, mem = self.run_job(self.job_sql(table, self.JOB_RFM_DISTINCT), reps)
        self.pair("P0d", "the same job cleaned by `SELECT DISTINCT` over the seven columns, then `rfm(ts, amount,"
                  " order_id, as_of)` (the recipe before 0.7.0), default settings", t, peer_t, None,
                  f"the DISTINCT spills to disk at work_mem 4MB; peak memory {mem / 2**20:.0f} MiB")
        t, mem = self.run_job(self.job_sql(table, self.JOB_RFM_DISTINCT, self.TUNED), reps)
        self.pair("P0t", "the `SELECT DISTINCT` job with a tuned session (the second column of earlier reports)", t, peer_t,
                  None, f"session: work_mem 1GB, enable_hashagg off, parallel_setup_cost and parallel_tuple_cost 0;"
                  f" peak memory {mem / 2**20:.0f} MiB")

    def copy_frame(self, table, names):
        """A table of lines as a DataFrame, the notebook's way: psycopg COPY, then pandas'
        CSV reader (text columns as text, `\\N` as missing)."""
        buf = bytearray()
        with self.conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
            for data in copy:
                buf += data
        text = {"invoice", "stock_code", "description", "country"}
        return pd.read_csv(io.BytesIO(buf), sep="\t", header=None, na_values=["\\N"], keep_default_na=False,
                           names=names, dtype={n: str for n in names if n in text})

    def differ_from_pandas(self, table, g):
        """Customers whose recency, frequency or monetary differ between a table of rfm
        results and pandas' (monetary to 1e-9 relative)."""
        self.conn.execute("DROP TABLE IF EXISTS py_rfm")
        self.conn.execute("CREATE TABLE py_rfm (customer_id int, recency float8, frequency int8, monetary float8)")
        with self.conn.cursor().copy("COPY py_rfm FROM STDIN") as copy:
            for cid, r, f, m in zip(g.index.astype(int), g.recency, g.frequency, g.monetary):
                copy.write_row((int(cid), float(r), int(f), float(m)))
        return self.q(f"""SELECT count(*) FROM {table} a FULL JOIN py_rfm b USING (customer_id)
                          WHERE a.frequency IS DISTINCT FROM b.frequency OR abs(a.recency - b.recency) > 1e-9
                             OR NOT abs(a.monetary - b.monetary) <= 1e-9 * greatest(1, abs(b.monetary))""")[0][0]

    # ------------------------------------------------------------------ R1 (Online Retail II shape)
    def retail2(self):
        """Lines shaped like the public Online Retail II data (1,067,371 lines, 5,942
        customers, eight columns with descriptions, duplicates and cancellations): cleaning
        and rfm per customer vs pandas on the DataFrame already in memory (file read excluded)."""
        table = "retail2"
        self.load_lines(table, 1_067_371, customers=5_942, description=True)
        self.warm(table)
        df = self.copy_frame(table, ["invoice", "stock_code", "description", "quantity", "invoice_date", "price",
                                     "customer_id", "country"])
        df["invoice_date"] = pd.to_datetime(df.invoice_date, utc=True)
        peer_t, g = self.timed_fn(lambda: pandas_rfm(df, parsed=True), self.args.reps)
        ours_sql = self.JOB_RFM.format(as_of=AS_OF, table=table)
        ours = self.timed_sql(f"SELECT count(*) FROM ({ours_sql}) s WHERE r IS NOT NULL")
        self.conn.execute("DROP TABLE IF EXISTS r1_rfm")
        self.conn.execute(f"CREATE TABLE r1_rfm AS SELECT customer_id, r.* FROM ({ours_sql}) s, LATERAL (SELECT (s.r).*) r")
        differ = self.differ_from_pandas("r1_rfm", g)
        self.pair("R1", "Online Retail II shape (1,067,371 lines, 8 columns with descriptions, duplicates, cancellations):"
                  " cleaning and `rfm(ts, amount, order_id, line, as_of)` per customer vs pandas filters,"
                  " `drop_duplicates` over the eight columns and groupby on the DataFrame in memory", ours, peer_t, 0.5,
                  f"customers whose RFM differs from pandas': {differ}")
        distinct = self.JOB_RFM_DISTINCT.format(as_of=AS_OF, table=table, columns="invoice, stock_code, description,"
                                                " quantity, invoice_date, price, customer_id, country")
        self.pair("R1d", "the same with `SELECT DISTINCT` over the eight columns, then `rfm(ts, amount, order_id, as_of)`",
                  self.timed_sql(f"SELECT count(*) FROM ({distinct}) s WHERE r IS NOT NULL"), peer_t, None,
                  "default settings")

    # ------------------------------------------------------------------ N1 (incremental RFM)
    def nightly(self, table, lines, target, row=True):
        """A nightly refresh with rfm_state: the states of every customer up to the last day of
        the data are stored and that day's lines put in a table of their own (untimed); timed:
        fold the day's lines into the states (INSERT ...
        ON CONFLICT DO UPDATE SET s = rfm_merge(...)) and read every customer's summary, in a
        transaction rolled back after each repetition. Peer: rfm over all the lines."""
        day = self.q(f"SELECT max(invoice_date)::date FROM {table}")[0][0]
        states = f"n_states_{lines}"
        if not self.q("SELECT to_regclass(%s) IS NOT NULL", (states,))[0][0]:
            log(f"N: storing the states of {table} before {day}")
            self.conn.execute(f"CREATE TABLE {states} (customer_id int PRIMARY KEY, s rfm_state NOT NULL)")
            self.conn.execute(f"INSERT INTO {states} SELECT customer_id, rfm_state(invoice_date, quantity * price, invoice)"
                              f" FROM {table} WHERE customer_id IS NOT NULL AND invoice_date < '{day}' GROUP BY customer_id")
            self.conn.execute(f"VACUUM ANALYZE {states}")
        # The night's lines arrive as a batch of their own (a staging table or the day's
        # partition), as an ETL loads them; not the whole table scanned for one day.
        batch = f"n_day_{lines}"
        if not self.q("SELECT to_regclass(%s) IS NOT NULL", (batch,))[0][0]:
            self.conn.execute(f"CREATE TABLE {batch} AS SELECT * FROM {table} WHERE invoice_date >= '{day}'")
            self.conn.execute(f"VACUUM ANALYZE {batch}")
        night = self.q(f"SELECT count(*) FROM {batch}")[0][0]
        fold = (f"INSERT INTO {states} SELECT customer_id, rfm_state(invoice_date, quantity * price, invoice)"
                f" FROM {batch} WHERE customer_id IS NOT NULL GROUP BY customer_id"
                f" ON CONFLICT (customer_id) DO UPDATE SET s = rfm_merge({states}.s, excluded.s)")
        read = (f"SELECT count(*) FROM (SELECT customer_id, rfm_summary(s, '{AS_OF}') AS r FROM {states}) x"
                " WHERE r IS NOT NULL")
        self.warm(states)
        ours, differ = [], None
        peak = 0
        for _ in range(self.args.reps if lines < 50_000_000 else 3):
            with self.conn.transaction() as tx:
                with PeakRss(self.conn) as mem:
                    t0 = time.perf_counter()
                    self.conn.execute(fold)
                    self.conn.execute(read).fetchall()
                    ours.append(time.perf_counter() - t0)
                peak = max(peak, mem.peak)
                # Equal results: the refreshed states against rfm over all the lines.
                if len(ours) == 1:
                    differ = self.q(f"""
                        SELECT count(*) FROM (SELECT customer_id, rfm_summary(s, '{AS_OF}') AS r FROM {states}) n
                        FULL JOIN (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{AS_OF}') AS r
                                   FROM {table} WHERE customer_id IS NOT NULL GROUP BY customer_id) o USING (customer_id)
                        WHERE n.r IS DISTINCT FROM o.r""")[0][0]
                raise psycopg.Rollback(tx)
        self.refresh_memory[lines] = (ours, peak)
        if not row:
            return
        peer = self.timed_sql(f"SELECT count(*) FROM (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{AS_OF}') r"
                              f" FROM {table} WHERE customer_id IS NOT NULL GROUP BY customer_id) s WHERE r IS NOT NULL",
                              self.args.reps if lines < 50_000_000 else 3)
        size = self.q(f"SELECT pg_total_relation_size('{states}')")[0][0]
        pid = "N1" if lines < 50_000_000 else "N2"
        self.pair(pid, f"nightly refresh at {lines:,} lines: fold the last day's {night:,} lines into the stored `rfm_state`"
                  " of every customer and read every summary vs `rfm(..., order_id, ...)` over all the lines", ours, peer, target,
                  f"customers whose summary differs from the recomputation: {differ}; states table {size / 2**20:.0f} MiB")

    # ------------------------------------------------------------------ scaling
    def scaling_p1a(self, sizes):
        for lines in sizes:
            table = f"lines_{lines}"
            self.load_lines(table, lines)
            self.warm(table)
            reps = 3 if lines >= 50_000_000 else self.args.reps
            t = self.timed_sql(f"SELECT count(*) FROM (SELECT customer_id, rfm(invoice_date, quantity * price, '{AS_OF}') r"
                               f" FROM {table} WHERE customer_id IS NOT NULL GROUP BY customer_id) s WHERE r IS NOT NULL", reps)
            self.scaling.append(("P1a", f"{lines:,} lines", t, None))
            log(f"scaling P1a {lines:,}: {statistics.median(t):.3f}s")

    def scaling_job(self, sizes):
        """The whole job (P0's SQL) and the nightly refresh (N1's) at each size, with the peak
        memory of the server processes."""
        for lines in sizes:
            table = f"lines_{lines}"
            self.load_lines(table, lines)
            if lines not in self.job_memory:
                self.warm(table)
                reps = 1 if lines >= 50_000_000 else 3
                self.job_memory[lines] = self.run_job(self.job_sql(table, self.JOB_RFM), reps)
            t, mem = self.job_memory[lines]
            self.scaling.append(("whole job (P0), default settings", f"{lines:,} lines", t, mem))
            log(f"scaling job {lines:,}: {statistics.median(t):.3f}s, {mem / 2**20:.0f} MiB")
            if lines not in self.refresh_memory:
                self.nightly(table, lines, None, row=False)
            t, mem = self.refresh_memory[lines]
            self.scaling.append(("nightly refresh (N1), default settings", f"{lines:,} lines", t, mem))
            log(f"scaling refresh {lines:,}: {statistics.median(t):.3f}s, {mem / 2**20:.0f} MiB")

    def scaling_p3(self, sizes):
        for n in sizes:
            table = f"customers_{n}"
            self.make_customers(table, n)
            reps = 3 if n >= 5_000_000 else self.args.reps
            t = self.timed_sql(f"SELECT k FROM rfm_train('scale', '{table}', k => 4, n_init => 10)", reps)
            self.scaling.append(("P3", f"{n:,} customers", t, None))
            log(f"scaling P3 {n:,}: {statistics.median(t):.3f}s")


def pandas_rfm(df, parsed=False):
    """The notebook's cleaning and RFM per customer."""
    df = df[df.customer_id.notna() & ~df.invoice.str.startswith("C") & (df.quantity > 0) & (df.price > 0)]
    df = df.drop_duplicates()
    if not parsed:
        df = df.assign(invoice_date=pd.to_datetime(df.invoice_date, utc=True))
    df = df.assign(amount=df.quantity * df.price)
    g = df.groupby("customer_id").agg(last=("invoice_date", "max"), frequency=("invoice", "nunique"),
                                       monetary=("amount", "sum"))
    g["recency"] = (pd.Timestamp(AS_OF) - g["last"]).dt.total_seconds() / 86400
    return g


class PeakRss:
    """Peak of the summed proportional set size (Pss) of every server process (the backend,
    parallel workers, background processes), sampled every 20 ms while the block runs."""

    def __init__(self, conn):
        data = conn.execute("SHOW data_directory").fetchone()[0]
        self.postmaster = int(open(f"{data}/postmaster.pid").readline())
        self.peak = 0

    def sample(self):
        total = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.postmaster and int(d) != self.postmaster:
                    continue
                # Pss: shared buffers count once, split between the processes that map them.
                with open(f"/proc/{d}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                continue
        return total

    def __enter__(self):
        import threading
        self.stop = threading.Event()
        self.peak = self.sample()

        def run():
            while not self.stop.wait(0.02):
                self.peak = max(self.peak, self.sample())
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.sample())


def vmhwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def fmt(ts, unit="s"):
    return f"{statistics.median(ts):.3f} ({min(ts):.3f}-{max(ts):.3f})" if unit == "s" else f"{statistics.median(ts):.1f}"


def write_report(b, args, started, path):
    conn = b.conn
    settings = conn.execute(
        "SELECT name, setting, unit FROM pg_settings WHERE source NOT IN ('default', 'override')"
        " AND name NOT IN ('port', 'unix_socket_directories', 'listen_addresses', 'data_directory',"
        " 'config_file', 'hba_file', 'ident_file', 'lc_messages', 'lc_monetary', 'lc_numeric', 'lc_time',"
        " 'log_line_prefix', 'log_timezone', 'TimeZone', 'DateStyle', 'default_text_search_config',"
        " 'application_name', 'client_encoding', 'transaction_isolation', 'client_min_messages')"
        " ORDER BY name").fetchall()
    version = conn.execute("SELECT version()").fetchone()[0]
    ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm'").fetchone()[0]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    out = []
    out.append("# pg_rfm benchmarks\n")
    out.append(f"Written by `bench/run.sh` on {started:%Y-%m-%d %H:%M} UTC in {(datetime.datetime.utcnow() - started).total_seconds() / 60:.1f} min. "
               f"Each row: pg_rfm and its peer measured in the same PostgreSQL session on the same data with warm "
               f"caches, {args.reps} repetitions each; times are median (min-max) in seconds; ratio = median pg_rfm / median peer.\n")
    out.append(f"- Scale: {args.lines:,} invoice lines ({max(1000, args.lines // 50):,} customers) for P0-P2; "
               f"{args.p3_customers:,} customers for P3/P5; {args.p4_rows:,} rows for P4; {args.clv_customers:,} simulated"
               f" BG/NBD customers for C1-C3.")
    out.append(f"- Machine: {cpu}, {os.cpu_count()} cores, {int(mem) / 2**20:.1f} GiB; {platform.platform()}.")
    out.append(f"- {version}; pg_rfm {ext} (release build, LTO), commit `{commit}`{' (with uncommitted changes)' if dirty else ''}.")
    out.append(f"- Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
               f"scikit-learn {sklearn.__version__}, psycopg {psycopg.__version__}.")
    out.append("- PostgreSQL runs with its default settings (work_mem 4MB, shared_buffers 128MB, two parallel"
               " workers per gather), as a user has them; rows that tune their session say so. Settings that differ"
               " from the defaults: " + (", ".join(f"`{n} = {s}{u or ''}`" for n, s, u in settings) or "none") + ".\n")
    out.append("| id | what | pg_rfm | peer | ratio | target | met | note |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for pid, what, ours, peer, target, ratio, note in b.rows:
        unit = "MiB" if pid == "P5" else "s"
        o = fmt(ours, unit) + (" MiB" if unit == "MiB" else "")
        p = (fmt(peer, unit) + " MiB") if unit == "MiB" else fmt(peer)
        if target is None:
            out.append(f"| {pid} | {what} | {o} | {p} | {ratio:.3f} | - | - | {note} |")
        else:
            out.append(f"| {pid} | {what} | {o} | {p} | {ratio:.3f} | <= {target} | {'yes' if ratio <= target else '**no**'} | {note} |")
    if b.extra:
        out.append("")
        for name, value, target in b.extra:
            out.append(f"- {name}: {value} (target {target})")
    if b.scaling:
        out.append("\n## Scaling (pg_rfm alone)\n")
        out.append("| measurement | size | seconds, median (min-max) | peak memory of the server processes (Pss) |")
        out.append("| --- | --- | --- | --- |")
        for what, size, t, mem in b.scaling:
            out.append(f"| {what} | {size} | {fmt(t)} | {'-' if mem is None else f'{mem / 2**20:.0f} MiB'} |")
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        out.append("\n" + notes.read_text())
    path.write_text("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--p3-customers", type=int, default=1_000_000)
    ap.add_argument("--p4-rows", type=int, default=10_000_000)
    ap.add_argument("--clv-customers", type=int, default=1_000_000)
    ap.add_argument("--exp-customers", type=int, default=1_000_000)
    ap.add_argument("--exp-lines", type=int, default=10_000_000)
    ap.add_argument("--basket-lines", type=int, default=1_000_000)
    ap.add_argument("--basket-big-lines", type=int, default=10_000_000)
    ap.add_argument("--scaling-lines", default="1000000,10000000,100000000")
    ap.add_argument("--scaling-customers", default="100000,1000000,10000000")
    ap.add_argument("--nightly-big", type=int, default=1, help="0: no N2 row (the 100M-line nightly refresh)")
    ap.add_argument("--only", default="", help="comma-separated subset: P0,R1,P1,P2,P3,P3b,P4,P4b,P4c,P5,CLV,E,B,N,scaling")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = lambda k: not only or k in only
    started = datetime.datetime.utcnow()
    b = Bench(args)
    b.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
    lines_table = f"lines_{args.lines}"
    b.load_lines(lines_table, args.lines)
    if want("P1") or want("P2"):
        b.p1_p2(lines_table)
    if want("P0"):
        b.p0(lines_table)
    if want("R1"):
        b.retail2()
    cust = f"customers_{args.p3_customers}"
    b.make_customers(cust, args.p3_customers)
    if want("P3"):
        b.p3(cust)
    if want("P5"):
        b.p5(cust)
    if want("P3b"):
        b.p3b(cust)
    if want("P4"):
        rows = f"customers_{args.p4_rows}"
        b.make_customers(rows, args.p4_rows)
        b.p4(rows, cust)
    if want("P4b"):
        rows = f"customers_{args.p4_rows}"
        b.make_customers(rows, args.p4_rows)
        if not b.q("SELECT count(*) FROM rfm_models WHERE model = 'p4'")[0][0]:
            b.q(f"SELECT rfm_train('p4', '{cust}', k => 4)")
        b.p4b(rows)
    if want("P4c"):
        rows = f"customers_{args.p4_rows}"
        b.make_customers(rows, args.p4_rows)
        b.p4c(rows, cust)
    if want("CLV"):
        b.clv(args.clv_customers)
    if want("E"):
        b.experiments(args.exp_customers, args.exp_lines)
    if want("B"):
        b.baskets(args.basket_lines, args.basket_big_lines)
    if want("N"):
        b.nightly(lines_table, args.lines, None)
        big = 100_000_000
        if args.nightly_big:
            b.load_lines(f"lines_{big}", big)
            b.nightly(f"lines_{big}", big, 0.05)
    if want("scaling"):
        b.scaling_job([int(x) for x in args.scaling_lines.split(",") if x])
        b.scaling_p1a([int(x) for x in args.scaling_lines.split(",") if x])
        b.scaling_p3([int(x) for x in args.scaling_customers.split(",") if x])
    write_report(b, args, started, pathlib.Path(args.out))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
