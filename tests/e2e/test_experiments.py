"""Campaign experiments against the reference libraries: sample sizes equal statsmodels'
NormalIndPower, assignment is balanced per stratum and deterministic, and every statistic
of rfm_experiment_results equals statsmodels (proportions_ztest, confint_proportions_2indep
newcomb, multipletests holm) and scipy (ttest_ind equal_var=False, chisquare) computed here
from the same simulated outcomes, to 1e-9 relative; the 95% intervals cover a null effect
93-97% of the time over 1,000 simulated experiments."""

import datetime
import math

import numpy as np
import psycopg
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

REL = 1e-9
START, END = "2012-01-01 00:00+00", "2012-02-01 00:00+00"
START_DT = datetime.datetime(2012, 1, 1, tzinfo=datetime.timezone.utc)
END_DT = datetime.datetime(2012, 2, 1, tzinfo=datetime.timezone.utc)


def close(a, b, rel=REL, abs_=1e-12):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(rel * abs(b), abs_)


@pytest.fixture(scope="module")
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET client_min_messages = warning")
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        yield c


@pytest.mark.parametrize("baseline,lift,alpha,power,ratio", [
    (0.05, 0.10, 0.05, 0.8, 1.0), (0.05, 0.10, 0.05, 0.8, 2.0), (0.2, -0.15, 0.01, 0.9, 1.0),
    (0.5, 0.02, 0.05, 0.8, 0.5), (0.01, 1.0, 0.1, 0.95, 3.0), (0.3, 0.3, 0.05, 0.5, 1.0)])
def test_sizes_equal_statsmodels(conn, baseline, lift, alpha, power, ratio):
    nobs1 = NormalIndPower().solve_power(effect_size=proportion_effectsize(baseline * (1 + lift), baseline),
                                          alpha=alpha, power=power, ratio=ratio)
    got = conn.execute("SELECT * FROM rfm_experiment_size(%s, %s, %s, %s, %s)",
                       (baseline, lift, alpha, power, ratio)).fetchone()
    assert got == (math.ceil(nobs1), math.ceil(ratio * math.ceil(nobs1))), (got, nobs1)
    # The mean form: effect size min_diff / sd.
    nobs1 = NormalIndPower().solve_power(effect_size=3.0 / 40.0, alpha=alpha, power=power, ratio=ratio)
    got = conn.execute("SELECT * FROM rfm_experiment_size_mean(40, 3, %s, %s, %s)", (alpha, power, ratio)).fetchone()
    assert got == (math.ceil(nobs1), math.ceil(ratio * math.ceil(nobs1)))


def make_customers(conn, table, strata_sizes, seed):
    """Customers with a stratum and a pre-period value (the CUPED covariate)."""
    rng = np.random.default_rng(seed)
    rows = []
    cid = 0
    for s, size in enumerate(strata_sizes):
        for _ in range(size):
            cid += 1
            rows.append((f"C{cid:06d}", f"S{s:02d}", float(rng.gamma(2.0, 50.0))))
    order = rng.permutation(len(rows))
    conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    conn.execute(f"CREATE TABLE {table} (customer_id text, segment text, pre_revenue float8)")
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for i in order:
            copy.write_row(rows[i])
    return {r[0]: (r[1], r[2]) for r in rows}


def simulate_outcomes(conn, table, arms, pre, rate, lift, seed):
    """Order lines: converted customers have 1-4 lines in the window (an occasional return),
    others none; some lines fall outside the window; treatment converts at rate x (1 + lift)
    and spends more with a higher pre-period value. Lines of customers in no arm too."""
    rng = np.random.default_rng(seed)
    lines = []
    for cid, arm in arms.items():
        p = rate * (1 + lift) if arm != "control" else rate
        if rng.random() < p:
            for _ in range(int(rng.integers(1, 5))):
                amount = float(round(rng.gamma(2.0, 10.0) + 0.2 * pre[cid][1], 2))
                lines.append((cid, f"2012-01-{int(rng.integers(1, 31)):02d} 12:00+00", amount))
            if rng.random() < 0.1:
                lines.append((cid, "2012-01-20 10:00+00", -5.0))
        if rng.random() < 0.3:
            lines.append((cid, "2011-12-15 12:00+00", 99.0))  # before the window
    lines.append(("NOT-IN-ANY-ARM", "2012-01-05 12:00+00", 1000.0))
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (customer_id text, ts timestamptz, amount float8)")
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in lines:
            copy.write_row(row)


def reference(arms, strata, outcomes_rows, pre, arm_names, control="control"):
    """The results computed here with statsmodels, scipy and numpy, per scope (None: overall)."""
    revenue = {c: 0.0 for c in arms}
    converted = {c: False for c in arms}
    for cid, ts, amount in outcomes_rows:
        if cid in arms and START_DT <= ts < END_DT:
            revenue[cid] += amount
            converted[cid] |= amount >= 0
    scopes = [None] + sorted(set(strata.values()))
    out = {}
    for scope in scopes:
        members = [c for c in arms if scope is None or strata[c] == scope]
        by_arm = {a: [c for c in members if arms[c] == a] for a in arm_names}
        ctl = by_arm[control]
        yc = np.array([revenue[c] for c in ctl])
        xc_conv = sum(converted[c] for c in ctl)
        for a in arm_names:
            cs = by_arm[a]
            y = np.array([revenue[c] for c in cs])
            row = {"customers": len(cs), "converted": sum(converted[c] for c in cs),
                   "revenue_per_customer": float(y.mean()) if len(y) else None}
            if a != control and len(cs) and len(ctl):
                x1, n1, x2, n2 = row["converted"], len(cs), xc_conv, len(ctl)
                row["lift_abs"] = x1 / n1 - x2 / n2
                if 0 < x1 + x2 < n1 + n2:
                    row["p_value"] = float(proportions_ztest([x1, x2], [n1, n2])[1])
                lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
                row["ci"] = (float(lo), float(hi))
                row["revenue_diff"] = float(y.mean() - yc.mean())

                def welch(u, v):
                    if len(u) < 2 or len(v) < 2 or np.var(u, ddof=1) / len(u) + np.var(v, ddof=1) / len(v) <= 0:
                        return None
                    t = stats.ttest_ind(u, v, equal_var=False)
                    ci = t.confidence_interval(0.95)
                    return float(t.pvalue), (float(ci.low), float(ci.high))
                w = welch(y, yc)
                if w:
                    row["revenue_p_value"], row["revenue_ci"] = w
                # CUPED over both arms.
                ys = np.concatenate([y, yc])
                xs = np.array([pre[c][1] for c in cs] + [pre[c][1] for c in ctl])
                if len(ys) >= 3 and np.var(xs) > 0:
                    theta = np.cov(ys, xs, ddof=1)[0, 1] / np.var(xs, ddof=1)
                    adj_t = y - theta * (xs[:len(cs)] - xs.mean())
                    adj_c = yc - theta * (xs[len(cs):] - xs.mean())
                    row["theta"] = float(theta)
                    row["cuped_diff"] = float(adj_t.mean() - adj_c.mean())
                    if np.var(ys) > 0:
                        row["variance_reduction"] = float(1 - np.var(np.concatenate([adj_t, adj_c]), ddof=1) / np.var(ys, ddof=1))
                    w = welch(adj_t, adj_c)
                    if w:
                        row["cuped_p_value"], row["cuped_ci"] = w
            out[(scope, a)] = row
        counts = [len(by_arm[a]) for a in arm_names]
        out[(scope, "srm")] = float(stats.chisquare(counts, f_exp=np.array(SHARES[len(arm_names)]) * sum(counts)).pvalue)
    # Holm per treatment arm over the strata.
    for a in arm_names:
        if a == control:
            continue
        for key in ("p_value", "revenue_p_value"):
            strata_keys = [(s, a) for s in scopes[1:] if key in out[(s, a)]]
            if strata_keys:
                adj = multipletests([out[k][key] for k in strata_keys], method="holm")[1]
                for k, p in zip(strata_keys, adj):
                    out[k][key.replace("p_value", "p_adjusted")] = float(p)
    return out


SHARES = {2: [0.5, 0.5], 3: [0.5, 0.3, 0.2]}


def run_experiment(conn, name, n_arms, strata_sizes, rate, lift, seed):
    customers = make_customers(conn, f"{name}_customers", strata_sizes, seed)
    arms_json = ('{"control": 0.5, "offer": 0.5}' if n_arms == 2
                 else '[["control", 0.5], ["offer", 0.3], ["other", 0.2]]')
    arm_names = ["control", "offer"] if n_arms == 2 else ["control", "offer", "other"]
    conn.execute("SELECT rfm_experiment_drop(%s)", (name,))
    conn.execute(f"SELECT * FROM rfm_experiment_create(%s, '{name}_customers', 'customer_id', %s, 'segment', 7)",
                 (name, arms_json))
    arms = dict(conn.execute("SELECT customer_id, arm FROM rfm_experiment_assignments WHERE experiment = %s",
                             (name,)).fetchall())
    simulate_outcomes(conn, f"{name}_lines", arms, customers, rate, lift, seed + 1)
    rows = conn.execute(f"SELECT customer_id, ts, amount FROM {name}_lines").fetchall()
    strata = {c: customers[c][0] for c in arms}
    want = reference(arms, strata, rows, customers, arm_names)
    got = conn.execute(f"SELECT * FROM rfm_experiment_results(%s, '{name}_lines', 'customer_id', 'ts', 'amount',"
                       " %s, %s, covariate_column => 'pre_revenue')", (name, START, END))
    cols = [d.name for d in got.description]
    return [dict(zip(cols, r)) for r in got.fetchall()], want, arm_names


@pytest.mark.parametrize("case", ["known lift", "zero lift", "three arms"])
def test_results_equal_statsmodels_and_scipy(conn, case):
    if case == "known lift":
        rows, want, arms = run_experiment(conn, "exp_lift", 2, [900, 600, 300, 3], 0.2, 0.5, 11)
    elif case == "zero lift":
        rows, want, arms = run_experiment(conn, "exp_null", 2, [800, 700], 0.3, 0.0, 12)
    else:
        rows, want, arms = run_experiment(conn, "exp_three", 3, [1000, 500, 40], 0.25, 0.3, 13)
    assert len(rows) == len(arms) * (1 + len({k[0] for k in want if k[0] is not None}))
    checked = 0
    for r in rows:
        scope = None if r["overall"] else r["stratum"]
        w = want[(scope, r["arm"])]
        assert r["customers"] == w["customers"] and r["converted"] == w["converted"], (r, w)
        assert close(r["revenue_per_customer"], w["revenue_per_customer"]), (r["revenue_per_customer"], w)
        assert close(r["srm_p_value"], want[(scope, "srm")]), (r["srm_p_value"], want[(scope, "srm")])
        for key in ("lift_abs", "p_value", "revenue_diff", "revenue_p_value", "theta", "cuped_diff", "cuped_p_value",
                    "variance_reduction", "p_adjusted", "revenue_p_adjusted"):
            if scope is None and key.endswith("adjusted"):
                continue
            col = "cuped_revenue_diff" if key == "cuped_diff" else key
            assert close(r[col], w.get(key)), (case, scope, r["arm"], key, r[col], w.get(key))
            checked += r[col] is not None
        for key, lo, hi in (("ci", "ci_low", "ci_high"), ("revenue_ci", "revenue_ci_low", "revenue_ci_high"),
                            ("cuped_ci", "cuped_ci_low", "cuped_ci_high")):
            if key in w:
                assert close(r[lo], w[key][0]) and close(r[hi], w[key][1]), (case, scope, key, r[lo], r[hi], w[key])
                checked += 1
            else:
                assert r[lo] is None and r[hi] is None
    assert checked > 25
    if case == "known lift":
        overall = {r["arm"]: r for r in rows if r["overall"]}
        # A lift of 50% on 20% with 900 customers per arm is found.
        assert overall["offer"]["p_value"] < 1e-6 and overall["offer"]["ci_low"] > 0
        # The covariate explains part of revenue: CUPED narrows the interval.
        assert overall["offer"]["variance_reduction"] > 0.01
        assert (overall["offer"]["cuped_ci_high"] - overall["offer"]["cuped_ci_low"]
                < overall["offer"]["revenue_ci_high"] - overall["offer"]["revenue_ci_low"])


def test_results_same_in_parallel(conn):
    """rfm_experiment_results sums the outcome lines with the aggregate rfm_experiment_lines,
    in parallel workers when the planner chooses them: with parallel plans forced (partial
    totals serialized, sent and combined), the results equal the serial ones."""
    rows, want, arms = run_experiment(conn, "exp_par", 2, [700, 500], 0.3, 0.2, 21)
    q = ("SELECT * FROM rfm_experiment_results('exp_par', 'exp_par_lines', 'customer_id', 'ts', 'amount', %s, %s,"
         " covariate_column => 'pre_revenue') ORDER BY overall, stratum, arm")
    conn.execute("SET max_parallel_workers_per_gather = 0")
    serial = conn.execute(q, (START, END)).fetchall()
    for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                    "max_parallel_workers_per_gather = 2"):
        conn.execute(f"SET {setting}")
    try:
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) SELECT rfm_experiment_lines(customer_id::text, amount::float8) FROM exp_par_lines"))
        assert "Partial Aggregate" in plan and "Workers Launched: 2" in plan, plan
        parallel = conn.execute(q, (START, END)).fetchall()
    finally:
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size",
                        "max_parallel_workers_per_gather"):
            conn.execute(f"RESET {setting}")
    assert len(parallel) == len(serial) == len(rows)
    for p, s in zip(parallel, serial):
        for a, b in zip(p, s):
            if isinstance(a, float) and isinstance(b, float):
                assert close(a, b), (p, s)  # the lines of a customer may be summed in another order
            else:
                assert a == b, (p, s)


def test_null_coverage(conn):
    """1,000 null experiments as the strata of one experiment (400 customers each, no effect):
    the 95% intervals of the conversion and revenue differences contain 0 in 93-97% of them."""
    rng = np.random.default_rng(99)
    conn.execute("DROP TABLE IF EXISTS cover_customers, cover_lines")
    conn.execute("CREATE TABLE cover_customers AS SELECT 'K' || i AS customer_id, 'E' || (i % 1000) AS segment"
                 " FROM generate_series(1, 400000) i")
    conn.execute("SELECT rfm_experiment_drop('cover')")
    conn.execute("SELECT count(*) FROM rfm_experiment_create('cover', 'cover_customers', 'customer_id',"
                 " '{\"control\": 0.5, \"offer\": 0.5}', 'segment', 3)")
    ids = [r[0] for r in conn.execute("SELECT customer_id FROM cover_customers ORDER BY customer_id")]
    conn.execute("CREATE TABLE cover_lines (customer_id text, ts timestamptz, amount float8)")
    with conn.cursor().copy("COPY cover_lines FROM STDIN") as copy:
        for cid in ids:
            if rng.random() < 0.3:
                copy.write_row((cid, "2012-01-10 00:00+00", float(round(rng.exponential(40.0), 2))))
    rows = conn.execute("SELECT ci_low, ci_high, revenue_ci_low, revenue_ci_high FROM rfm_experiment_results("
                        "'cover', 'cover_lines', 'customer_id', 'ts', 'amount', %s, %s)"
                        " WHERE NOT overall AND arm = 'offer'", (START, END)).fetchall()
    assert len(rows) == 1000
    conv = sum(lo <= 0 <= hi for lo, hi, _, _ in rows) / 1000
    rev = sum(lo <= 0 <= hi for _, _, lo, hi in rows) / 1000
    assert 0.93 <= conv <= 0.97 and 0.93 <= rev <= 0.97, (conv, rev)


def test_assignment_balanced_and_deterministic(conn):
    sizes = [1, 2, 3, 7, 10, 99, 1000]
    make_customers(conn, "bal_customers", sizes, 5)
    for name in ("bal_a", "bal_b"):
        conn.execute("SELECT rfm_experiment_drop(%s)", (name,))
    created = conn.execute("SELECT * FROM rfm_experiment_create('bal_a', 'bal_customers', 'customer_id',"
                           " '[[\"control\", 0.5], [\"offer\", 0.3], [\"other\", 0.2]]', 'segment', 1)").fetchall()
    # Every stratum: each arm's count within one customer of share x size.
    for stratum, arm, n, share, expected in created:
        assert abs(n - expected) < 1 and close(expected, share * sizes[int(stratum[1:])]), (stratum, arm, n, expected)
    assert sum(r[2] for r in created) == sum(sizes)
    first = conn.execute("SELECT customer_id, stratum, arm FROM rfm_experiment_assignments WHERE experiment = 'bal_a'"
                         " ORDER BY 1").fetchall()
    # Rows in another physical order, dropped and created again: the same assignment.
    conn.execute("CREATE TABLE bal_shuffled AS SELECT * FROM bal_customers ORDER BY md5(customer_id)")
    conn.execute("SELECT rfm_experiment_drop('bal_a')")
    conn.execute("SELECT * FROM rfm_experiment_create('bal_a', 'bal_shuffled', 'customer_id',"
                 " '[[\"control\", 0.5], [\"offer\", 0.3], [\"other\", 0.2]]', 'segment', 1)")
    again = conn.execute("SELECT customer_id, stratum, arm FROM rfm_experiment_assignments WHERE experiment = 'bal_a'"
                         " ORDER BY 1").fetchall()
    assert again == first
    # Another seed: another assignment (of the 1000-customer stratum, most customers move
    # with probability about 0.62 each).
    conn.execute("SELECT * FROM rfm_experiment_create('bal_b', 'bal_customers', 'customer_id',"
                 " '[[\"control\", 0.5], [\"offer\", 0.3], [\"other\", 0.2]]', 'segment', 2)")
    moved = conn.execute("SELECT count(*) FROM rfm_experiment_assignments a JOIN rfm_experiment_assignments b"
                         " USING (customer_id) WHERE a.experiment = 'bal_a' AND b.experiment = 'bal_b'"
                         " AND a.arm <> b.arm").fetchone()[0]
    assert 450 < moved < 800
    # rfm_experiment_arm gives the stored arm (one by one and, past 1000 calls, read at once).
    mismatched = conn.execute("SELECT count(*) FROM rfm_experiment_assignments"
                              " WHERE experiment = 'bal_a' AND rfm_experiment_arm('bal_a', customer_id) <> arm").fetchone()[0]
    assert mismatched == 0
    few = conn.execute("SELECT count(*) FROM (SELECT * FROM rfm_experiment_assignments WHERE experiment = 'bal_a'"
                       " LIMIT 20) a WHERE rfm_experiment_arm('bal_a', customer_id) <> arm").fetchone()[0]
    assert few == 0
    # Late customers: drawn from the hash with the shares, the same every time.
    late = conn.execute("SELECT arm, count(*) FROM (SELECT rfm_experiment_arm('bal_a', 'late' || i) AS arm"
                        " FROM generate_series(1, 20000) i) x GROUP BY 1 ORDER BY 1").fetchall()
    shares = {"control": 0.5, "offer": 0.3, "other": 0.2}
    assert all(abs(n / 20000 - shares[a]) < 0.015 for a, n in late), late
    assert conn.execute("SELECT rfm_experiment_arm('bal_a', 'late42') = rfm_experiment_arm('bal_a', 'late42')").fetchone()[0]


def test_bad_input(conn):
    conn.execute("DROP TABLE IF EXISTS bad_customers")
    conn.execute("CREATE TABLE bad_customers (customer_id text, segment text)")
    conn.execute("INSERT INTO bad_customers VALUES ('a', 'x'), ('b', 'x'), ('c', 'y')")
    conn.execute("SELECT rfm_experiment_drop('bad')")

    def err(sql, params=()):
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql, params)
        return e.value.sqlstate, e.value.diag.message_primary

    create = "SELECT * FROM rfm_experiment_create('bad', 'bad_customers', %s, %s)"
    assert err(create, ("customer_id", '{"control": 0.5, "offer": 0.4}'))[0] == "22023"
    assert "named twice" in err(create, ("customer_id", '[["control", 0.5], ["control", 0.5]]'))[1]
    assert err(create, ("nope", '{"control": 0.5, "offer": 0.5}'))[0] == "42703"
    assert err(create, ("customer_id", '{"a": 0.5, "b": 0.5}'))[0] == "22023"
    conn.execute("INSERT INTO bad_customers VALUES (NULL, 'x')")
    assert err(create, ("customer_id", '{"control": 0.5, "offer": 0.5}'))[0] == "22004"
    conn.execute("DELETE FROM bad_customers WHERE customer_id IS NULL")
    conn.execute("INSERT INTO bad_customers VALUES ('a', 'z')")
    assert err(create, ("customer_id", '{"control": 0.5, "offer": 0.5}'))[0] == "23505"
    conn.execute("DELETE FROM bad_customers WHERE segment = 'z'")
    conn.execute("SELECT * FROM rfm_experiment_create('bad', 'bad_customers', 'customer_id',"
                 " '{\"control\": 0.5, \"offer\": 0.5}', 'segment')")
    assert err(create, ("customer_id", '{"control": 0.5, "offer": 0.5}'))[0] == "42710"
    conn.execute("DROP TABLE IF EXISTS bad_lines")
    conn.execute("CREATE TABLE bad_lines (customer_id text, ts timestamptz, amount float8, note text)")
    results = "SELECT * FROM rfm_experiment_results('bad', 'bad_lines', 'customer_id', %s, %s, %s, %s)"
    assert err(results, ("ts", "amount", END, START))[0] == "22023"
    assert err(results, ("ts", "note", START, END))[0] == "42804"
    assert err(results, ("nope", "amount", START, END))[0] == "42703"
    assert err("SELECT * FROM rfm_experiment_results('nope', 'bad_lines', 'customer_id', 'ts', 'amount', %s, %s)",
               (START, END))[0] == "42704"
    # Zero variance and an arm with no customers (stratum y has one customer): NULL
    # statistics with NOTICEs, no error, no NaN.
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("SET client_min_messages = notice")
    rows = conn.execute(results.replace("SELECT *", "SELECT stratum, arm, customers, p_value, revenue_p_value, ci_low"),
                        ("ts", "amount", START, END)).fetchall()
    assert all(v is None or not (isinstance(v, float) and math.isnan(v)) for r in rows for v in r)
    assert any("no variance" in n for n in notices), notices
    assert any("has no customers" in n for n in notices), notices
    assert conn.execute("SELECT rfm_experiment_drop('bad'), rfm_experiment_drop('bad')").fetchone() == (3, 0)
    conn.execute("SET client_min_messages = warning")


def test_report_renders(conn, tmp_path):
    """rfm_experiment_report: one page that headless Chromium parses into an interval chart
    per treatment arm and measure, and a table row per result row."""
    from test_report import chromium
    rows, _, _ = run_experiment(conn, "exp_report", 3, [300, 200], 0.3, 0.4, 21)
    html = conn.execute("SELECT rfm_experiment_report('exp_report', 'exp_report_lines', 'customer_id', 'ts', 'amount',"
                        " %s, %s, 'pre_revenue')", (START, END)).fetchone()[0]
    page = tmp_path / "experiment.html"
    page.write_text(html)
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout.decode()
    png = tmp_path / "experiment.png"
    chromium(f"--screenshot={png}", "--window-size=1200,1400", page.as_uri(), profile=tmp_path / "profile2")
    # Two treatment arms x (conversion, revenue, CUPED) charts; three scopes per chart.
    assert dom.count("<svg") == 6 and dom.count('<figure class="chart"') == 6
    assert dom.count('class="estimate"') == 6 * 3
    assert dom.count('<tr class="result"') == len(rows) == 9
    assert "<script" not in dom
    assert png.stat().st_size > 20_000
