"""pg_dump, then restore into a new database: every model version is kept and assigns the
same customers to the same segments, edits to the segment rules (a changed, a deleted and
an added rule) are kept too, and so are the CLV model versions, stored rfm_state values, experiments with their assignments and basket models with their rules."""

import os
import subprocess

import lifetimes
import psycopg

# The CDNOW cohort of Fader, Hardie and Lee (2005) as lifetimes ships it: id, frequency,
# recency, T, mean repeat spend (weeks).
CDNOW_COHORT = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "cdnow_customers_summary_with_transactions.csv")


def bin_(name):
    return os.path.join(os.environ["PGBIN"], name)


def test_dump_and_restore_keep_models(dsn, shop, tmp_path):
    for db in ("rfm_dump_src", "rfm_dump_dst"):
        subprocess.run([bin_("dropdb"), "--if-exists", db], check=True)
    subprocess.run([bin_("createdb"), "rfm_dump_src"], check=True)
    with psycopg.connect("dbname=rfm_dump_src", autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION pg_rfm")
        conn.execute("CREATE TABLE customers AS SELECT (i % 700)::float8 AS recency,"
                     " (1 + i % 13)::float8 AS frequency, (10 + (i * 37) % 5000)::float8 AS monetary, i AS id,"
                     " (ARRAY['north', 'south', 'east'])[1 + i % 3] AS region"
                     " FROM generate_series(1, 3000) i")
        # A model with a categorical feature and a PCA (format 2) is dumped too.
        conn.execute("SELECT rfm_train('attrs', 'customers', k => 3, features => '{recency,monetary,region}', pca => 2)")
        conn.execute("SELECT rfm_train('dumped', 'customers', k => 3)")
        conn.execute("SELECT rfm_train('dumped', 'customers', k => 4)")
        conn.execute("SELECT rfm_train('other', 'customers', k_min => 2, k_max => 5)")
        # A CLV model, two versions, the first made active again.
        conn.execute("CREATE TABLE clv_in (id int, frequency float8, recency float8, t float8, monetary float8)")
        with conn.cursor().copy("COPY clv_in FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
            copy.write(open(CDNOW_COHORT, "rb").read())
        conn.execute("SELECT rfm_clv_train('value', 'clv_in', unit => 'week')")
        conn.execute("SELECT rfm_clv_train('value', 'clv_in', unit => 'week', penalizer => 0.001)")
        conn.execute("SELECT rfm_clv_activate('value', 1)")
        # Stored RFM states (a user table of rfm_state values) are dumped in their text form.
        conn.execute("CREATE TABLE states AS SELECT id % 50 AS customer_id,"
                     " rfm_state(timestamptz '2024-01-01 00:00+00' - id * interval '1 hour', monetary - 2500, 'o' || id % 97) AS s"
                     " FROM customers GROUP BY 1")
        states = conn.execute("SELECT customer_id, rfm_state_send(s), rfm_summary(s, '2024-02-01 00:00+00')::text"
                              " FROM states ORDER BY 1").fetchall()
        clv = conn.execute("SELECT id, rfm_clv_value('value', frequency, recency, t, monetary) FROM clv_in ORDER BY id").fetchall()
        clv_versions = conn.execute("SELECT model, version, active, r, alpha, a, b, p, q, v FROM rfm_clv_models ORDER BY 1, 2").fetchall()
        conn.execute("UPDATE rfm_segment_rules SET segment = 'VIP', action = 'Call them' WHERE priority = 10")
        conn.execute("DELETE FROM rfm_segment_rules WHERE segment = 'Lost'")
        conn.execute("INSERT INTO rfm_segment_rules VALUES (55, 'Middle', 3, 3, 3, 3, 1, 5, 'Nudge', NULL)")
        rules = conn.execute("SELECT * FROM rfm_segment_rules ORDER BY priority").fetchall()
        assert len(rules) == 11 and rules[0][1] == "VIP"
        scores = conn.execute("WITH b AS (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM customers)"
                              " SELECT id, (rfm_score(recency, frequency, monetary, b.b)).segment"
                              " FROM customers, b ORDER BY id").fetchall()
        assert {"VIP", "Middle"} <= {s for _, s in scores} and "Lost" not in {s for _, s in scores}
        before = conn.execute("SELECT id, rfm_segment('dumped', recency, frequency, monetary),"
                              " rfm_cluster('other', recency, frequency, monetary), rfm_segment('attrs', to_jsonb(c))"
                              " FROM customers c ORDER BY id").fetchall()
        versions = conn.execute("SELECT model, version, active, k FROM rfm_models ORDER BY 1, 2").fetchall()
        curve = conn.execute("SELECT count(*) FROM rfm_k_search").fetchone()[0]
        # An experiment and its assignments (rows of two tables, one referencing the other).
        conn.execute("SELECT count(*) FROM rfm_experiment_create('dumped_exp', 'customers', 'id',"
                     " '{\"control\": 0.5, \"offer\": 0.5}', 'region', 3)")
        experiment = conn.execute("SELECT name, arms, seed, customers, strata, status FROM rfm_experiments").fetchall()
        # A basket model with two versions and per-segment rules.
        conn.execute("CREATE TABLE lines AS SELECT o, (ARRAY['a', 'b', 'c', 'd'])[1 + (o * k) % 4] AS item,"
                     " (ARRAY['x', 'y'])[1 + o % 2] AS seg FROM generate_series(1, 200) o, generate_series(1, 3) k")
        conn.execute("SELECT rfm_basket_train('dumped_basket', 'lines', 'o', 'item', 0.05, segment_column => 'seg')")
        conn.execute("SELECT rfm_basket_train('dumped_basket', 'lines', 'o', 'item', 0.2)")
        baskets = conn.execute("SELECT name, version, active, rules, segments FROM rfm_basket_models ORDER BY 1, 2").fetchall()
        basket_rules = conn.execute("SELECT * FROM rfm_basket_rules ORDER BY 1, 2, 3, 4, 5").fetchall()
        recommended = conn.execute("SELECT rfm_recommend('dumped_basket', ARRAY['a'])").fetchone()
        assignments = conn.execute("SELECT customer_id, stratum, arm, rfm_experiment_arm('dumped_exp', customer_id)"
                                   " FROM rfm_experiment_assignments ORDER BY 1").fetchall()
    dump = tmp_path / "db.dump"
    subprocess.run([bin_("pg_dump"), "-Fc", "-f", str(dump), "rfm_dump_src"], check=True)
    subprocess.run([bin_("createdb"), "rfm_dump_dst"], check=True)
    restore = subprocess.run([bin_("pg_restore"), "--exit-on-error", "-d", "rfm_dump_dst", str(dump)],
                             capture_output=True, text=True)
    assert restore.returncode == 0, restore.stderr
    with psycopg.connect("dbname=rfm_dump_dst", autocommit=True) as conn:
        after = conn.execute("SELECT id, rfm_segment('dumped', recency, frequency, monetary),"
                             " rfm_cluster('other', recency, frequency, monetary), rfm_segment('attrs', to_jsonb(c))"
                             " FROM customers c ORDER BY id").fetchall()
        assert conn.execute("SELECT model, version, active, k FROM rfm_models ORDER BY 1, 2").fetchall() == versions
        assert conn.execute("SELECT count(*) FROM rfm_k_search").fetchone()[0] == curve
        assert conn.execute("SELECT model, version, active, r, alpha, a, b, p, q, v FROM rfm_clv_models ORDER BY 1, 2").fetchall() == clv_versions
        assert conn.execute("SELECT id, rfm_clv_value('value', frequency, recency, t, monetary) FROM clv_in ORDER BY id").fetchall() == clv
        assert conn.execute("SELECT * FROM rfm_segment_rules ORDER BY priority").fetchall() == rules
        assert conn.execute("SELECT customer_id, rfm_state_send(s), rfm_summary(s, '2024-02-01 00:00+00')::text"
                            " FROM states ORDER BY 1").fetchall() == states
        assert conn.execute("WITH b AS (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM customers)"
                            " SELECT id, (rfm_score(recency, frequency, monetary, b.b)).segment"
                            " FROM customers, b ORDER BY id").fetchall() == scores
        assert conn.execute("SELECT name, arms, seed, customers, strata, status FROM rfm_experiments").fetchall() == experiment
        assert conn.execute("SELECT customer_id, stratum, arm, rfm_experiment_arm('dumped_exp', customer_id)"
                            " FROM rfm_experiment_assignments ORDER BY 1").fetchall() == assignments
        assert len(assignments) > 100
        assert conn.execute("SELECT name, version, active, rules, segments FROM rfm_basket_models ORDER BY 1, 2").fetchall() == baskets
        assert conn.execute("SELECT * FROM rfm_basket_rules ORDER BY 1, 2, 3, 4, 5").fetchall() == basket_rules
        assert conn.execute("SELECT rfm_recommend('dumped_basket', ARRAY['a'])").fetchone() == recommended
        assert len(basket_rules) > 10
        # The restored edits are still edits: resetting gives the standard rules back.
        assert conn.execute("SELECT rfm_reset_segment_rules()").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM (TABLE rfm_segment_rules EXCEPT"
                            " TABLE rfm_segment_rule_defaults) x").fetchone()[0] == 0
    assert after == before
    for db in ("rfm_dump_src", "rfm_dump_dst"):
        subprocess.run([bin_("dropdb"), db], check=True)
