"""Cross-sell: frequent itemsets and association rules equal mlxtend 0.25's (fpgrowth with
use_colnames=True, then association_rules(metric='confidence')) on generated retail lines
with planted associations, per segment, and on a public real data set (the Belgian retail
baskets of FIMI, shipped in the pyfpgrowth source package); recommendations equal the rules
applied here; memory and cancellation are bounded; damage is refused."""

import os
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np
import pandas as pd
import psycopg
import pytest
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRICS = ["antecedent support", "consequent support", "support", "confidence", "lift", "leverage"]


@pytest.fixture(scope="module")
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET client_min_messages = warning")
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        yield c


@pytest.fixture(scope="module")
def lines(conn):
    """Generated lines with planted associations, cleaned; a segment per customer."""
    data = subprocess.run([os.environ["RFM_GEN"], "--lines", "80000", "--customers", "800", "--seed", "3", "--associations"],
                          check=True, capture_output=True).stdout
    conn.execute("DROP TABLE IF EXISTS bk_raw, bk_lines CASCADE")
    conn.execute("CREATE TABLE bk_raw (invoice text, stock_code text, quantity int, invoice_date timestamptz,"
                 " price float8, customer_id int, country text)")
    with conn.cursor().copy("COPY bk_raw FROM STDIN") as copy:
        copy.write(data)
    conn.execute("CREATE TABLE bk_lines AS SELECT invoice, stock_code, customer_id, quantity * price AS amount,"
                 " CASE WHEN customer_id % 3 = 0 THEN 'gold' ELSE 'standard' END AS segment"
                 " FROM bk_raw WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0")
    return conn.execute("SELECT invoice, stock_code, segment FROM bk_lines").fetchall()


def mlxtend_of(transactions, min_support, max_len, min_confidence):
    te = TransactionEncoder()
    matrix = te.fit(transactions).transform(transactions, sparse=True)
    df = pd.DataFrame.sparse.from_spmatrix(matrix, columns=te.columns_)
    sets = fpgrowth(df, min_support=min_support, use_colnames=True, max_len=max_len)
    rules = association_rules(sets, num_itemsets=len(df), metric="confidence", min_threshold=min_confidence) \
        if len(sets) else pd.DataFrame(columns=["antecedents", "consequents"] + METRICS + ["conviction"])
    itemsets = {tuple(sorted(s)): sup for s, sup in zip(sets["itemsets"], sets["support"])}
    by_rule = {(tuple(sorted(r["antecedents"])), tuple(sorted(r["consequents"]))): r for _, r in rules.iterrows()}
    return itemsets, by_rule


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(b), 1e-300)


def compare(conn, scope_sql, params, itemsets, rules, segment):
    got_sets = {tuple(r[0]): r[1] for r in conn.execute(scope_sql[0], params)}
    assert set(got_sets) == set(itemsets), (segment, set(got_sets) ^ set(itemsets))
    assert all(close(got_sets[k], itemsets[k], 1e-12) for k in itemsets), segment
    got_rules = conn.execute(scope_sql[1], (segment,)).fetchall()
    got = {(tuple(r[0]), tuple(r[1])): r for r in got_rules}
    assert set(got) == set(rules), (segment, set(got) ^ set(rules))
    for key, want in rules.items():
        row = got[key]
        for i, m in enumerate(METRICS):
            assert close(row[2 + i], float(want[m]), 1e-9), (segment, key, m, row[2 + i], want[m])
        if np.isinf(want["conviction"]):
            assert row[8] is None
        else:
            assert close(row[8], float(want["conviction"]), 1e-9), (segment, key, "conviction")
    return len(got)


RULES_SQL = ("SELECT antecedent, consequent, antecedent_support, consequent_support, support, confidence, lift,"
             " leverage, conviction, orders FROM rfm_basket_rules(%s, %s)")


def test_generated_lines_equal_mlxtend_overall_and_per_segment(conn, lines):
    conn.execute("SELECT rfm_basket_drop('gen')")
    conn.execute("SELECT * FROM rfm_basket_train('gen', 'bk_lines', 'invoice', 'stock_code', min_support => 0.01,"
                 " min_confidence => 0.3, max_len => 3, segment_column => 'segment', customer_column => 'customer_id')")
    orders, seg_of = {}, {}
    for inv, item, seg in lines:
        orders.setdefault(inv, set()).add(item)
        seg_of[inv] = seg
    checked = 0
    for segment in (None, "gold", "standard"):
        tx = [sorted(v) for k, v in orders.items() if segment is None or seg_of[k] == segment]
        itemsets, rules = mlxtend_of(tx, 0.01, 3, 0.3)
        sets_sql = ("SELECT itemset, support FROM rfm_basket_itemsets('bk_lines', 'invoice', 'stock_code', 0.01, 3, 'segment')"
                    " WHERE segment IS NOT DISTINCT FROM %s")
        checked += compare(conn, (sets_sql, RULES_SQL.replace("%s, %s", "'gen', %s")), (segment,), itemsets, rules, segment)
    assert checked > 15
    # The planted bundles are found: product rank 3 pulls in rank 41 (stock codes 10023 and
    # 10289) with probability 0.7, and the big spenders' bundle only among them.
    lift = conn.execute("SELECT max(lift) FROM rfm_basket_rules('gen', NULL) WHERE antecedent = '{10023}'"
                        " AND consequent = '{10289}'").fetchone()[0]
    assert lift is not None and lift > 3
    m = conn.execute("SELECT orders, items, customers, itemsets, rules, jsonb_array_length(segments)"
                     " FROM rfm_basket_models WHERE name = 'gen' AND active").fetchone()
    assert m[0] == len(orders) and m[2] == conn.execute("SELECT count(DISTINCT customer_id) FROM bk_lines").fetchone()[0]
    assert m[5] == 2


def belgian_baskets(n):
    """The first n baskets of FIMI's retail.dat (a Belgian supermarket's receipts, Brijs et
    al. 1999), from the pyfpgrowth 1.0 source package on PyPI."""
    cache = os.path.join(ROOT, "target", "basketdata")
    path = os.path.join(cache, "pyfpgrowth-1.0", "tests", "belgian_retail_baskets.dat")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "pyfpgrowth==1.0",
                        "--no-deps", "--no-binary", ":all:", "-d", cache], check=True)
        # Only the one file, written to a fixed path (extractall's filter= needs Python 3.11.4;
        # Debian 12 has 3.11.2).
        member = "pyfpgrowth-1.0/tests/belgian_retail_baskets.dat"
        with tarfile.open(os.path.join(cache, "pyfpgrowth-1.0.tar.gz")) as t, t.extractfile(member) as src:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".part", "wb") as dst:
                shutil.copyfileobj(src, dst)
        os.replace(path + ".part", path)
    with open(path) as f:
        return [line.split() for _, line in zip(range(n), f)]


@pytest.fixture(scope="module")
def belgian(conn):
    """The first 20,000 Belgian receipts in table bk_belgian (receipt, item)."""
    baskets = belgian_baskets(20000)
    assert len(baskets) == 20000 and sum(map(len, baskets)) > 150000
    conn.execute("DROP TABLE IF EXISTS bk_belgian")
    conn.execute("CREATE TABLE bk_belgian (receipt int, item text)")
    with conn.cursor().copy("COPY bk_belgian FROM STDIN") as copy:
        for i, b in enumerate(baskets):
            for item in b:
                copy.write_row((i, item))
    return baskets


def test_real_baskets_equal_mlxtend(conn, belgian):
    baskets = belgian
    conn.execute("SELECT rfm_basket_drop('belgian')")
    conn.execute("SELECT * FROM rfm_basket_train('belgian', 'bk_belgian', 'receipt', 'item', min_support => 0.01,"
                 " min_confidence => 0.2, max_len => 4)")
    itemsets, rules = mlxtend_of(baskets, 0.01, 4, 0.2)
    sets_sql = "SELECT itemset, support FROM rfm_basket_itemsets('bk_belgian', 'receipt', 'item', 0.01, 4) WHERE %s::text IS NULL"
    n = compare(conn, (sets_sql, RULES_SQL.replace("%s, %s", "'belgian', %s")), (None,), itemsets, rules, None)
    assert len(itemsets) > 100 and n > 50


def test_recommendations_equal_the_rules_applied(conn, lines):
    """rfm_recommend for every customer equals the rules applied here in Python: items not in
    the basket from rules whose antecedent it holds, best confidence, ties by lift then item."""
    rules = conn.execute("SELECT segment, antecedent, consequent, confidence, lift FROM rfm_basket_rules('gen')").fetchall()
    baskets = conn.execute("SELECT customer_id, segment, array_agg(DISTINCT stock_code) FROM bk_lines GROUP BY 1, 2").fetchall()
    got = dict(conn.execute("SELECT customer_id, rfm_recommend('gen', array_agg(DISTINCT stock_code), 3, segment)"
                            " FROM bk_lines GROUP BY customer_id, segment").fetchall())
    got_all = dict(conn.execute("SELECT customer_id, rfm_recommend('gen', array_agg(DISTINCT stock_code))"
                                " FROM bk_lines GROUP BY customer_id").fetchall())
    nonempty = 0
    for cid, seg, items in baskets:
        for segment, n, result in ((seg, 3, got[cid]), (None, 5, got_all[cid])):
            basket = set(items)
            best = {}
            for s, a, c, conf, lift in rules:
                if s != segment or not set(a) <= basket:
                    continue
                for item in c:
                    if item not in basket and (item not in best or (conf, lift) > best[item]):
                        best[item] = (conf, lift)
            want = [i for i, _ in sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))][:n]
            assert result == want, (cid, segment, result, want)
            nonempty += bool(want)
    assert nonempty > 200
    # The value form and the SRF agree with the name form.
    differ = conn.execute("""
        WITH m AS MATERIALIZED (SELECT rfm_basket_model_of('gen') AS m),
             b AS (SELECT customer_id, segment, array_agg(DISTINCT stock_code) AS items FROM bk_lines GROUP BY 1, 2)
        SELECT count(*) FILTER (WHERE rfm_recommend(m.m, b.items, 3, b.segment) IS DISTINCT FROM rfm_recommend('gen', b.items, 3, b.segment)),
               count(*) FILTER (WHERE rfm_recommend('gen', b.items, 3, b.segment) IS DISTINCT FROM
                                      ARRAY(SELECT item FROM rfm_recommendations('gen', b.items, 3, b.segment) ORDER BY rank))
        FROM b, m""").fetchone()
    assert differ == (0, 0)
    row = conn.execute("SELECT * FROM rfm_recommendations('gen', ARRAY['10023'], 1)").fetchone()
    assert row[0] == 1 and row[4] == ["10023"] and row[1] in row[5]
    assert conn.execute("SELECT rfm_recommend('gen', NULL::text[]), rfm_recommend('gen', '{}'::text[]),"
                        " rfm_recommend('gen', '{10023}', 3, 'no such segment')").fetchone() == (None, [], [])


def test_versions_export_import_and_damage(conn, lines):
    conn.execute("SELECT rfm_basket_drop('gen2')")
    v1 = conn.execute("SELECT version FROM rfm_basket_train('gen2', 'bk_lines', 'invoice', 'stock_code', 0.008)").fetchone()[0]
    v2 = conn.execute("SELECT version FROM rfm_basket_train('gen2', 'bk_lines', 'invoice', 'stock_code', 0.012)").fetchone()[0]
    assert (v1, v2) == (1, 2)
    n2 = conn.execute("SELECT count(*) FROM rfm_basket_rules('gen2')").fetchone()[0]
    conn.execute("SELECT rfm_basket_activate('gen2', 1)")
    n1 = conn.execute("SELECT count(*) FROM rfm_basket_rules('gen2')").fetchone()[0]
    assert n1 > n2 > 0
    doc = conn.execute("SELECT rfm_basket_export('gen2')").fetchone()[0]
    conn.execute("SELECT rfm_basket_drop('gen2_copy')")
    assert conn.execute("SELECT rfm_basket_import(%s, 'gen2_copy')", (psycopg.types.json.Jsonb(doc),)).fetchone()[0] == 1
    same = conn.execute("SELECT (SELECT array_agg(r ORDER BY r::text) FROM rfm_basket_rules('gen2') r)"
                        " = (SELECT array_agg(r ORDER BY r::text) FROM rfm_basket_rules('gen2_copy') r)").fetchone()[0]
    assert same
    # Damaged rows: XX001 naming the model, when recommending and when importing.
    conn.execute("UPDATE rfm_basket_rules SET confidence = 2 WHERE name = 'gen2_copy'")
    with pytest.raises(psycopg.errors.DataCorrupted) as e:
        conn.execute("SELECT rfm_recommend('gen2_copy', '{10023}')")
    assert 'basket model "gen2_copy" version 1 is damaged' in e.value.diag.message_primary
    bad = dict(doc)
    bad["rules"] = [dict(doc["rules"][0], consequent=doc["rules"][0]["antecedent"])] + doc["rules"][1:]
    with pytest.raises(psycopg.errors.DataCorrupted):
        conn.execute("SELECT rfm_basket_import(%s, 'gen2_bad')", (psycopg.types.json.Jsonb(bad),))
    assert conn.execute("SELECT rfm_basket_drop('gen2'), rfm_basket_drop('gen2')").fetchone() == (2, 0)


def test_bad_input(conn, lines):
    def err(sql):
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql)
        return e.value.sqlstate
    train = "SELECT * FROM rfm_basket_train('bad', 'bk_lines', 'invoice', 'stock_code'"
    assert err(train + ", min_support => 0)") == "22023"
    assert err(train + ", min_support => 1.5)") == "22023"
    assert err(train + ", max_len => 0)") == "22023"
    assert err(train + ", min_confidence => 2)") == "22023"
    assert err("SELECT * FROM rfm_basket_train('bad', 'bk_lines', 'nope', 'stock_code')") == "42703"
    conn.execute("CREATE TABLE IF NOT EXISTS bk_empty (invoice text, stock_code text)")
    assert err("SELECT * FROM rfm_basket_train('bad', 'bk_empty', 'invoice', 'stock_code')") == "22023"
    assert err("SELECT rfm_recommend('nope', '{a}')") == "42704"
    assert err("SELECT rfm_recommend('gen', '{a}', -1)") == "22023"
    assert err("SELECT rfm_basket_activate('gen', 99)") == "42704"


def test_memory_bound_and_cancellation(conn, lines, belgian):
    """A min_support so low that the itemsets would exceed pg_rfm.basket_memory stops with
    53200 naming the count reached; a long mining is cancelled within a second."""
    conn.execute("SET pg_rfm.basket_memory = '2MB'")
    with pytest.raises(psycopg.errors.OutOfMemory) as e:
        conn.execute("SELECT * FROM rfm_basket_train('huge', 'bk_lines', 'invoice', 'stock_code', min_support => 0.0005, max_len => 4)")
    assert "pg_rfm.basket_memory" in e.value.diag.message_primary and "itemsets" in e.value.diag.message_primary
    assert "min_support" in e.value.diag.message_hint
    conn.execute("RESET pg_rfm.basket_memory")
    conn.execute("SET pg_rfm.basket_memory = '8GB'")
    conn.execute("SET statement_timeout = '1s'")
    t0 = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("SELECT * FROM rfm_basket_itemsets('bk_belgian', 'receipt', 'item', 0.0001, 8)")
    assert time.monotonic() - t0 < 2.5
    conn.execute("RESET statement_timeout")
    conn.execute("RESET pg_rfm.basket_memory")
    assert conn.execute("SELECT count(*) FROM rfm_basket_models WHERE name = 'huge'").fetchone()[0] == 0


def test_segment_items_equal_plain_sql(conn, lines):
    got = conn.execute("SELECT * FROM rfm_segment_items('bk_lines', 'customer_id', 'stock_code', 'segment', 'amount')").fetchall()
    df = pd.DataFrame(conn.execute("SELECT customer_id, stock_code, segment, amount FROM bk_lines").fetchall(),
                      columns=["c", "i", "s", "a"])
    seg_n = df.groupby("s")["c"].nunique()
    total = df["c"].nunique()
    item_n = df.groupby("i")["c"].nunique()
    want = {}
    for (s, i), g in df.groupby(["s", "i"]):
        n = g["c"].nunique()
        share, overall = n / seg_n[s], item_n[i] / total
        want[(s, i)] = (n, share, overall, share / overall, g["a"].sum())
    assert len(got) == len(want)
    for s, i, n, share, overall, affinity, revenue in got:
        w = want[(s, i)]
        assert n == w[0] and close(share, w[1], 1e-12) and close(overall, w[2], 1e-12) and close(affinity, w[3], 1e-12)
        assert close(revenue, w[4], 1e-9)
    # What the gold segment buys more than the rest: the big spenders' planted bundle.
    top = conn.execute("SELECT item FROM rfm_segment_items('bk_lines', 'customer_id', 'stock_code', 'segment')"
                       " WHERE segment = 'gold' AND customers >= 20 ORDER BY affinity DESC LIMIT 10").fetchall()
    assert len(top) == 10
