"""pg_rfm on a real Citus 13 cluster (a coordinator and two workers on 127.0.0.1, started by
scripts/test.sh): assignment and scoring on the workers with the model and the rules passed
as values, publish and transitions on distributed tables, and training that does not depend
on the order shards return rows in. Each result is compared with the same rows in a plain
table on the coordinator (single-node pg_rfm)."""

import os
import re
import subprocess
import threading
import time

import psycopg
import pytest

if os.environ.get("RFM_CITUS_SKIP") or not os.environ.get("RFM_CITUS_PORT"):
    pytest.skip(f"no Citus cluster: {os.environ.get('RFM_CITUS_SKIP', 'RFM_CITUS_PORT is not set')}",
                allow_module_level=True)

PORT = os.environ["RFM_CITUS_PORT"]
WORKERS = os.environ["RFM_CITUS_WORKER_PORTS"].split(",")
DSN = f"host=127.0.0.1 port={PORT} user=postgres dbname=rfm_citus"
AS_OF = "2011-12-10 00:00+00"


def connect(dsn=DSN):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET client_min_messages = warning")
    return conn


def load_lines(conn, table, *gen_args):
    """rfm-gen's lines (gen_args) in a plain table and the same rows in table_dist,
    distributed by customer_id (32 shards)."""
    data = subprocess.run([os.environ["RFM_GEN"], *gen_args], check=True, capture_output=True).stdout
    for t in (table, f"{table}_dist"):
        conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")
        conn.execute(f"CREATE TABLE {t} (invoice text, stock_code text, quantity int, invoice_date timestamptz,"
                     " price float8, customer_id int, country text)")
    conn.execute(f"SELECT create_distributed_table('{table}_dist', 'customer_id')")
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        copy.write(data)
    # The distribution column cannot be NULL: guest lines stay out of both tables.
    conn.execute(f"DELETE FROM {table} WHERE customer_id IS NULL")
    conn.execute(f"INSERT INTO {table}_dist SELECT * FROM {table}")


@pytest.fixture(scope="module")
def cluster():
    """Transactions in a plain table and the same rows distributed by customer_id (32
    shards); RFM per customer both ways; a model 'm' trained on the plain table."""
    with connect() as conn:
        load_lines(conn, "tx", "--lines", "150000", "--customers", "2500", "--seed", "5")
        for src, dst in (("tx", "cust"), ("tx_dist", "cust_dist")):
            conn.execute(f"DROP TABLE IF EXISTS {dst} CASCADE")
            conn.execute(f"CREATE TABLE {dst} (customer_id int, recency float8, frequency bigint, monetary float8)")
            if dst == "cust_dist":
                conn.execute("SELECT create_distributed_table('cust_dist', 'customer_id', colocate_with => 'tx_dist')")
            conn.execute(f"INSERT INTO {dst} SELECT customer_id, (r).recency, (r).frequency, (r).monetary FROM"
                         f" (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{AS_OF}') AS r"
                         f"  FROM {src} WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0"
                         f"  AND price > 0 GROUP BY customer_id) s")
        conn.execute("SELECT rfm_drop_model('m')")
        conn.execute("SELECT rfm_train('m', 'cust', k => 4)")
        conn.execute("SELECT rfm_reset_segment_rules()")
    yield
    with connect() as conn:
        conn.execute("SELECT rfm_reset_segment_rules()")


def rows(conn, sql):
    return conn.execute(sql).fetchall()


def worker_queries(conn, sql):
    plan = [r[0] for r in rows(conn, "EXPLAIN VERBOSE " + sql)]
    return [line.strip() for line in plan if line.strip().startswith("Query:")]


def test_distributed_rfm_equals_plain(cluster):
    with connect() as conn:
        assert rows(conn, "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'cust_dist'::regclass")[0][0] == 32
        plain = rows(conn, "SELECT * FROM cust ORDER BY customer_id")
        dist = rows(conn, "SELECT * FROM cust_dist ORDER BY customer_id")
        assert len(plain) > 2000 and dist == plain
        # Grouped by the distribution column, rfm runs whole on each shard; over the whole
        # table, released Citus gathers the rows (internal states are not partially
        # aggregated) and the result is still exact.
        per_customer = f"SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{AS_OF}') FROM tx_dist GROUP BY customer_id"
        queries = worker_queries(conn, per_customer)
        assert queries and all("rfm(" in q and re.search(r"GROUP BY (\w+\.)?customer_id", q) for q in queries), queries
        whole = f"SELECT (r).* FROM (SELECT rfm(invoice_date, quantity * price, invoice, '{AS_OF}') r FROM {{t}}) s"
        assert not any("rfm(" in q for q in worker_queries(conn, whole.format(t="tx_dist")))
        assert rows(conn, whole.format(t="tx_dist")) == rows(conn, whole.format(t="tx"))


def test_model_value_assigns_on_workers_as_on_one_node(cluster):
    with connect() as conn:
        single = rows(conn, "SELECT customer_id, rfm_segment('m', recency, frequency, monetary),"
                            " rfm_cluster('m', recency, frequency, monetary) FROM cust ORDER BY customer_id")
        query = ("WITH m AS MATERIALIZED (SELECT rfm_model_of('m') AS m)"
                 " SELECT c.customer_id, rfm_segment(m.m, c.recency, c.frequency, c.monetary),"
                 " rfm_cluster(m.m, ARRAY[c.recency, c.frequency, c.monetary]) FROM cust_dist c, m ORDER BY 1")
        plan = "\n".join(r[0] for r in rows(conn, "EXPLAIN " + query))
        assert "Custom Scan (Citus Adaptive)" in plan and "Task Count: 32" in plan
        assert rows(conn, query) == single
        # The value is read on the coordinator only: the workers have no model.
        for port in WORKERS:
            with connect(f"host=127.0.0.1 port={port} user=postgres dbname=rfm_citus") as w:
                assert rows(w, "SELECT count(*) FROM rfm_models")[0][0] == 0


def test_name_form_on_a_worker_says_what_to_do(cluster):
    with connect() as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            conn.execute("SELECT customer_id, rfm_segment('m', recency, frequency, monetary) FROM cust_dist").fetchall()
        assert 'rfm_segment: model "m" cannot be read on a Citus worker' in e.value.diag.message_primary
        assert "rfm_model_of('name')" in e.value.diag.message_hint
        # The name form still works where the model is: on the coordinator's own tables.
        assert rows(conn, "SELECT count(rfm_segment('m', recency, frequency, monetary)) FROM cust")[0][0] > 2000


def test_one_version_per_statement_while_retraining(cluster):
    """Statements over the distributed table run while another session retrains every
    half second: each statement sees one version, and its labels are that version's."""
    stop = threading.Event()
    errors = []

    def retrain():
        with connect() as conn:
            k = 3
            while not stop.is_set():
                try:
                    conn.execute(f"SELECT rfm_train('m_live', 'cust', k => {k}, n_init => 2)")
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                k = 7 - k
                time.sleep(0.5)

    with connect() as conn:
        conn.execute("SELECT rfm_drop_model('m_live')")
        conn.execute("SELECT rfm_train('m_live', 'cust', k => 4, n_init => 2)")
        t = threading.Thread(target=retrain)
        t.start()
        try:
            deadline = time.time() + 8
            statements = 0
            while time.time() < deadline:
                got = rows(conn, "WITH m AS MATERIALIZED (SELECT rfm_model_of('m_live') AS m)"
                                 " SELECT min(rfm_model_version(m.m)), max(rfm_model_version(m.m)), count(DISTINCT"
                                 " rfm_cluster(m.m, c.recency, c.frequency, c.monetary)) FROM cust_dist c, m")
                low, version, clusters = got[0]
                assert low == version, got
                k = rows(conn, f"SELECT k FROM rfm_models WHERE model = 'm_live' AND version = {version}")[0][0]
                assert clusters <= k
                statements += 1
        finally:
            stop.set()
            t.join()
    assert not errors, errors
    assert statements >= 5


def test_scores_use_the_coordinators_rules(cluster):
    with connect() as conn:
        conn.execute("UPDATE rfm_segment_rules SET segment = 'VIP' WHERE priority = 10")
        try:
            single = rows(conn, "SELECT c.customer_id, (rfm_score(c.recency, c.frequency, c.monetary, k.b)).*"
                                " FROM cust c CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM cust) k"
                                " ORDER BY 1")
            assert any(r[5] == "VIP" for r in single) and not any(r[5] == "Champions" for r in single)
            dist = rows(conn, "SELECT c.customer_id, (rfm_score(c.recency, c.frequency, c.monetary, k.b, k.rules)).*"
                              " FROM cust_dist c CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b,"
                              " rfm_rules() AS rules FROM cust_dist) k ORDER BY 1")
            assert dist == single
            # Without the rules value, workers refuse instead of scoring with their own rules.
            with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
                conn.execute("SELECT (rfm_score(c.recency, c.frequency, c.monetary, k.b)).segment FROM cust_dist c"
                             " CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM cust_dist) k").fetchall()
            assert "cannot be read on a Citus worker" in e.value.diag.message_primary
            assert "rfm_rules()" in e.value.diag.message_hint
        finally:
            conn.execute("SELECT rfm_reset_segment_rules()")


def test_publish_on_a_distributed_table(cluster):
    with connect() as conn:
        conn.execute("UPDATE rfm_segment_rules SET segment = 'VIP' WHERE priority = 10")
        try:
            for src, view in (("cust", "seg_plain"), ("cust_dist", "seg_dist")):
                conn.execute(f"DROP VIEW IF EXISTS {view} CASCADE")
                conn.execute(f"SELECT * FROM rfm_publish('m', '{src}', '{view}')")
            plain = rows(conn, "SELECT * FROM seg_plain ORDER BY customer_id")
            assert rows(conn, "SELECT * FROM seg_dist ORDER BY customer_id") == plain
            assert rows(conn, "SELECT * FROM seg_dist_mv ORDER BY customer_id") == plain
            conn.execute("SELECT rfm_train('m', 'cust', k => 5)")
            conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY seg_dist_mv")
            conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY seg_plain_mv")
            after = rows(conn, "SELECT * FROM seg_plain_mv ORDER BY customer_id")
            assert after != plain and {r[-1] for r in after} == {rows(conn, "SELECT version FROM rfm_models WHERE model = 'm' AND active")[0][0]}
            assert rows(conn, "SELECT * FROM seg_dist_mv ORDER BY customer_id") == after
            assert rows(conn, "SELECT * FROM seg_dist ORDER BY customer_id") == after
        finally:
            conn.execute("SELECT rfm_reset_segment_rules()")
            conn.execute("SELECT rfm_activate('m', 1)")


def test_transitions_on_distributed_snapshots(cluster):
    with connect() as conn:
        for t, src, dist in (("snap_a", "tx", False), ("snap_b", "tx", False), ("snap_a_dist", "tx_dist", True),
                             ("snap_b_dist", "tx_dist", True)):
            as_of = "2011-06-01 00:00+00" if t.startswith("snap_a") else AS_OF
            conn.execute(f"DROP TABLE IF EXISTS {t}")
            conn.execute(f"CREATE TABLE {t} (customer_id int, recency float8, frequency bigint, monetary float8)")
            if dist:
                conn.execute(f"SELECT create_distributed_table('{t}', 'customer_id', colocate_with => 'tx_dist')")
            conn.execute(f"INSERT INTO {t} SELECT customer_id, (r).recency, (r).frequency, (r).monetary FROM"
                         f" (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{as_of}') AS r"
                         f"  FROM {src} WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0"
                         f"  AND price > 0 AND invoice_date <= '{as_of}' GROUP BY customer_id) s")
        plain = rows(conn, "SELECT * FROM rfm_transitions('m', 'snap_a', 'snap_b')")
        assert sum(r[2] for r in plain) > 2000 and any(r[0] == "(new)" for r in plain)
        assert rows(conn, "SELECT * FROM rfm_transitions('m', 'snap_a_dist', 'snap_b_dist')") == plain


def test_training_does_not_depend_on_row_order(cluster):
    with connect() as conn:
        result = "model, k, n_rows, inertia, silhouette, davies_bouldin, calinski_harabasz"
        centroids = ("SELECT cluster, label, size, scaled, original FROM rfm_centroids c JOIN rfm_models m"
                     " USING (model, version) WHERE m.model = %s AND m.active ORDER BY cluster")
        for name in ("order_plain", "order_dist_1", "order_dist_2"):
            conn.execute(f"SELECT rfm_drop_model('{name}')")
        plain = rows(conn, f"SELECT {result} FROM rfm_train('order_plain', 'cust', k => 4)")[0]
        for name in ("order_dist_1", "order_dist_2"):
            dist = rows(conn, f"SELECT {result} FROM rfm_train('{name}', 'cust_dist', k => 4)")[0]
            assert dist[1:] == plain[1:]
            assert conn.execute(centroids, (name,)).fetchall() == conn.execute(centroids, ("order_plain",)).fetchall()


def test_clv_on_distributed_tables(cluster):
    """Customer lifetime value on Citus: rfm_clv_summary grouped by the distribution column
    runs on the workers and equals the plain table's; rfm_clv_train reads a distributed
    table and fits what it fits on the plain one; the rfm_clv_model value predicts on the
    workers as on one node, and the name form refuses there with what to do instead."""
    summary = ("SELECT customer_id, (rfm_clv_summary(invoice_date, quantity * price, '{as_of}')).* FROM {t}"
               " WHERE invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0 GROUP BY customer_id")
    with connect() as conn:
        plan = "\n".join(r[0] for r in rows(conn, "EXPLAIN " + summary.format(as_of=AS_OF, t="tx_dist")))
        assert "Custom Scan (Citus Adaptive)" in plan and "Task Count: 32" in plan
        for t, dst in (("tx", "clv_in"), ("tx_dist", "clv_in_dist")):
            conn.execute(f"DROP TABLE IF EXISTS {dst}")
            conn.execute(f"CREATE TABLE {dst} (customer_id int, frequency bigint, recency float8, t float8, monetary float8)")
            if dst == "clv_in_dist":
                conn.execute("SELECT create_distributed_table('clv_in_dist', 'customer_id', colocate_with => 'tx_dist')")
            conn.execute(f"INSERT INTO {dst} " + summary.format(as_of=AS_OF, t=t))
        plain = rows(conn, "SELECT * FROM clv_in ORDER BY 1")
        dist = rows(conn, "SELECT * FROM clv_in_dist ORDER BY 1")
        assert len(plain) == len(dist) > 2000
        for p, d in zip(plain, dist):
            assert p[:4] == d[:4] and abs(p[4] - d[4]) <= 1e-9 * max(1.0, abs(p[4])), (p, d)
        conn.execute("SELECT rfm_clv_drop_model('clv_m')")
        conn.execute("SELECT rfm_clv_drop_model('clv_m_dist')")
        a = rows(conn, "SELECT r, alpha, a, b, p, q, v FROM rfm_clv_train('clv_m', 'clv_in')")[0]
        b = rows(conn, "SELECT r, alpha, a, b, p, q, v FROM rfm_clv_train('clv_m_dist', 'clv_in_dist')")[0]
        assert a == b  # the fit reads the rows in one canonical order, whatever the shards return
        single = rows(conn, "SELECT customer_id, rfm_clv_value('clv_m', frequency, recency, t, monetary),"
                            " rfm_clv_p_alive('clv_m', frequency, recency, t) FROM clv_in ORDER BY 1")
        query = ("WITH m AS MATERIALIZED (SELECT rfm_clv_model_of('clv_m') AS m)"
                 " SELECT c.customer_id, rfm_clv_value(m.m, c.frequency, c.recency, c.t, c.monetary),"
                 " rfm_clv_p_alive(m.m, c.frequency, c.recency, c.t) FROM clv_in_dist c, m ORDER BY 1")
        plan = "\n".join(r[0] for r in rows(conn, "EXPLAIN " + query))
        assert "Custom Scan (Citus Adaptive)" in plan and "Task Count: 32" in plan
        assert rows(conn, query) == single
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            conn.execute("SELECT rfm_clv_p_alive('clv_m', frequency, recency, t) FROM clv_in_dist").fetchall()
        assert 'CLV model "clv_m" cannot be read on a Citus worker' in e.value.diag.message_primary
        assert "rfm_clv_model_of('name')" in e.value.diag.message_hint


def test_incremental_rfm_on_distributed_tables(cluster):
    """rfm_state grouped by the distribution column runs on the workers; a distributed states
    table colocated with the lines takes the nightly upsert (INSERT ... SELECT ... ON CONFLICT
    DO UPDATE SET s = rfm_merge(...)) shard by shard; the states store the same bytes as the
    plain table's, and their summaries equal rfm over all the lines."""
    state = "SELECT customer_id, rfm_state(invoice_date, quantity * price, invoice) FROM {t} {where} GROUP BY customer_id"
    with connect() as conn:
        queries = worker_queries(conn, state.format(t="tx_dist", where=""))
        assert queries and all("rfm_state(" in q for q in queries), queries
        split = "2011-06-01 00:00+00"
        for t, dst in (("tx", "states"), ("tx_dist", "states_dist")):
            conn.execute(f"DROP TABLE IF EXISTS {dst}")
            conn.execute(f"CREATE TABLE {dst} (customer_id int PRIMARY KEY, s rfm_state NOT NULL)")
            if dst == "states_dist":
                conn.execute("SELECT create_distributed_table('states_dist', 'customer_id', colocate_with => 'tx_dist')")
            # The history before the split, then everything after it folded in one upsert.
            conn.execute(f"INSERT INTO {dst} " + state.format(t=t, where=f"WHERE invoice_date < '{split}'"))
            conn.execute(f"INSERT INTO {dst} " + state.format(t=t, where=f"WHERE invoice_date >= '{split}'")
                         + f" ON CONFLICT (customer_id) DO UPDATE SET s = rfm_merge({dst}.s, excluded.s)")
        plain = rows(conn, "SELECT customer_id, rfm_state_send(s) FROM states ORDER BY 1")
        dist = rows(conn, "SELECT customer_id, rfm_state_send(s) FROM states_dist ORDER BY 1")
        assert len(plain) > 2000 and dist == plain
        differ = rows(conn, f"""
            SELECT count(*) FROM (SELECT customer_id, rfm_summary(s, '{AS_OF}') AS r FROM states_dist) n
            FULL JOIN (SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '{AS_OF}') AS r
                       FROM tx GROUP BY customer_id) o USING (customer_id)
            WHERE n.r IS DISTINCT FROM o.r""")[0][0]
        assert differ == 0


def test_experiments_on_distributed_tables(cluster):
    """An experiment created from a distributed customers table assigns exactly as from the
    plain table (the coordinator reads the rows; the order they arrive in does not matter),
    and its results over distributed order lines equal those over the plain lines."""
    with connect() as conn:
        conn.execute("SELECT rfm_experiment_drop('exp_plain')")
        segments = ("CASE WHEN recency < 60 THEN 'recent' WHEN frequency > 5 THEN 'frequent' ELSE 'other' END")
        conn.execute(f"CREATE OR REPLACE VIEW exp_cust AS SELECT customer_id, {segments} AS segment, monetary FROM cust")
        conn.execute(f"CREATE OR REPLACE VIEW exp_cust_dist AS SELECT customer_id, {segments} AS segment, monetary FROM cust_dist")
        arms = '{"control": 0.4, "offer": 0.6}'
        made, assigned = [], []
        # The same experiment (name and seed) from the distributed table, then the plain one.
        for src in ("exp_cust_dist", "exp_cust"):
            conn.execute("SELECT rfm_experiment_drop('exp_plain')")
            made.append(rows(conn, f"SELECT * FROM rfm_experiment_create('exp_plain', '{src}', 'customer_id', '{arms}',"
                                   " 'segment', 5) ORDER BY 1, 2"))
            assigned.append(rows(conn, "SELECT customer_id, stratum, arm FROM rfm_experiment_assignments"
                                       " WHERE experiment = 'exp_plain' ORDER BY 1"))
        assert made[0] == made[1] and sum(r[2] for r in made[0]) > 2000
        assert assigned[0] == assigned[1]
        # The same experiment's results from the plain and the distributed lines (both read
        # on the coordinator; sums in another order agree to rounding).
        conn.execute("CREATE OR REPLACE VIEW exp_lines AS SELECT customer_id, invoice_date, quantity * price AS amount FROM tx")
        conn.execute("CREATE OR REPLACE VIEW exp_lines_dist AS SELECT customer_id, invoice_date, quantity * price AS amount FROM tx_dist")
        got = [rows(conn, f"SELECT * FROM rfm_experiment_results('exp_plain', '{lines}', 'customer_id', 'invoice_date',"
                          " 'amount', '2011-06-01', '2011-12-10', 'monetary') ORDER BY overall DESC, stratum, arm")
               for lines in ("exp_lines", "exp_lines_dist")]
        assert len(got[0]) == 8
        for a, b in zip(*got):
            for x, y in zip(a, b):
                if isinstance(x, float):
                    assert abs(x - y) <= 1e-12 * max(1.0, abs(y)), (a, b)
                else:
                    assert x == y, (a, b)
        # On the workers, rfm_experiment_arm refuses (the assignments are on the coordinator)
        # and says how to join them instead.
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            rows(conn, "SELECT count(rfm_experiment_arm('exp_plain', customer_id::text)) FROM cust_dist")
        assert "rfm_experiment_assignments" in e.value.diag.message_hint


def test_baskets_on_distributed_tables(cluster):
    """A basket model trained on distributed order lines equals one trained on the plain
    lines (rules and metrics exactly: counts do not depend on the order rows arrive in), and
    rfm_recommend over the model as a value runs on the workers; by name it refuses there."""
    with connect() as conn:
        # Lines with planted bundles (the cluster's tx has about 5 lines an order and no rules).
        load_lines(conn, "bx", "--lines", "80000", "--customers", "800", "--seed", "3", "--associations")
        for name in ("bk_plain", "bk_dist"):
            conn.execute("SELECT rfm_basket_drop(%s)", (name,))
        conn.execute("SELECT rfm_basket_train('bk_plain', 'bx', 'invoice', 'stock_code', 0.01, 0.2)")
        conn.execute("SELECT rfm_basket_train('bk_dist', 'bx_dist', 'invoice', 'stock_code', 0.01, 0.2)")
        plain = rows(conn, "SELECT segment, antecedent, consequent, support, confidence, lift, leverage, conviction, orders"
                           " FROM rfm_basket_rules('bk_plain') ORDER BY 2, 3")
        dist = rows(conn, "SELECT segment, antecedent, consequent, support, confidence, lift, leverage, conviction, orders"
                          " FROM rfm_basket_rules('bk_dist') ORDER BY 2, 3")
        assert len(plain) > 0 and plain == dist
        # docs/cross-sell.md's query: baskets grouped by the distribution column, joined with
        # the model read once on the coordinator.
        query = ("WITH m AS MATERIALIZED (SELECT rfm_basket_model_of('bk_plain') AS m)"
                 " SELECT b.customer_id, rfm_recommend(m.m, b.items, 3)"
                 " FROM (SELECT customer_id, array_agg(DISTINCT stock_code) AS items FROM bx_dist GROUP BY customer_id) b, m"
                 " ORDER BY 1")
        on_workers = rows(conn, query)
        local = rows(conn, "SELECT customer_id, rfm_recommend('bk_plain', array_agg(DISTINCT stock_code), 3) FROM bx"
                           " GROUP BY customer_id ORDER BY 1")
        assert on_workers == local and sum(1 for _, r in local if r) > 100
        assert any("rfm_recommend" in q for q in worker_queries(conn, query))
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            rows(conn, "SELECT customer_id, rfm_recommend('bk_plain', array_agg(DISTINCT stock_code)) FROM bx_dist GROUP BY 1")
        assert "rfm_basket_model_of" in e.value.diag.message_hint
