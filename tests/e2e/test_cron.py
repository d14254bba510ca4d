"""Scheduled retraining with the real pg_cron: a job retrains the model and refreshes the
published materialized view; a broken job shows up as failed in cron.job_run_details."""

import time

import psycopg


def wait_for_runs(conn, jobids, timeout=150):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = conn.execute(
            "SELECT jobid, status, return_message FROM cron.job_run_details"
            " WHERE jobid = ANY(%s) AND status IN ('succeeded', 'failed')", (jobids,)
        ).fetchall()
        if {r[0] for r in rows} >= set(jobids):
            return {r[0]: (r[1], r[2]) for r in rows}
        time.sleep(2)
    raise AssertionError(f"pg_cron did not run jobs {jobids} within {timeout}s")


def test_cron_retrains_and_refreshes(dsn, shop):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        conn.execute("SELECT rfm_drop_model('cronm')")
        conn.execute("SELECT rfm_train('cronm', %s, k => 3)", (shop,))
        conn.execute("SELECT rfm_publish('cronm', %s, 'cron_segments')", (shop,))
        before = conn.execute("SELECT max(model_version) FROM cron_segments_mv").fetchone()[0]
        assert before == 1
        good = conn.execute(
            "SELECT cron.schedule('rfm-retrain-test', '* * * * *',"
            " $$SELECT rfm_train('cronm', 'e2e_rfm', k => 4);"
            "   REFRESH MATERIALIZED VIEW CONCURRENTLY cron_segments_mv$$)"
        ).fetchone()[0]
        bad = conn.execute(
            "SELECT cron.schedule('rfm-broken-test', '* * * * *',"
            " $$SELECT rfm_train('cronm', 'no_such_table')$$)"
        ).fetchone()[0]
        # The basket retrain of docs/cross-sell.md and the weekly results snapshot of
        # docs/campaigns.md, as jobs.
        conn.execute("SELECT rfm_basket_drop('cron_basket')")
        basket = conn.execute(
            "SELECT cron.schedule('rfm-basket-test', '* * * * *',"
            " $$SELECT rfm_basket_train('cron_basket', 'e2e_lines', 'invoice', 'stock_code', 0.01, 0.3)$$)"
        ).fetchone()[0]
        conn.execute("SELECT rfm_experiment_drop('cron_exp')")
        conn.execute("SELECT count(*) FROM rfm_experiment_create('cron_exp', %s, 'customer_id',"
                     " '{\"control\": 0.5, \"offer\": 0.5}')", (shop,))
        conn.execute("DROP TABLE IF EXISTS cron_exp_results")
        results = ("SELECT now(), * FROM rfm_experiment_results('cron_exp', 'e2e_lines', 'customer_id', 'invoice_date',"
                   " 'quantity', '2011-06-01', '2011-12-10')")
        conn.execute(f"CREATE TABLE cron_exp_results AS {results.replace('now()', 'now() AS at')} WITH NO DATA")
        weekly = conn.execute(f"SELECT cron.schedule('rfm-results-test', '* * * * *', $$INSERT INTO cron_exp_results {results}$$)").fetchone()[0]
        try:
            runs = wait_for_runs(conn, [good, bad, basket, weekly])
        finally:
            for job in (good, bad, basket, weekly):
                conn.execute("SELECT cron.unschedule(%s)", (job,))
        assert runs[basket][0] == "succeeded", runs[basket]
        assert runs[weekly][0] == "succeeded", runs[weekly]
        assert conn.execute("SELECT count(*) FROM rfm_basket_models WHERE name = 'cron_basket' AND active").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM cron_exp_results WHERE overall").fetchone()[0] >= 2
        assert runs[good][0] == "succeeded", runs[good]
        assert runs[bad][0] == "failed" and "no_such_table" in runs[bad][1], runs[bad]
        version, k = conn.execute("SELECT version, k FROM rfm_models WHERE model = 'cronm' AND active").fetchone()
        assert version >= 2 and k == 4
        after = conn.execute("SELECT min(model_version), max(model_version) FROM cron_segments_mv").fetchone()
        assert after == (version, version)
        stale = conn.execute(
            "SELECT count(*) FROM (SELECT * FROM cron_segments EXCEPT SELECT * FROM cron_segments_mv) d"
        ).fetchone()[0]
        assert stale == 0
        # Roll back to the first version, as the runbook says.
        conn.execute("SELECT rfm_activate('cronm', 1)")
        assert conn.execute("SELECT k FROM rfm_models WHERE model = 'cronm' AND active").fetchone()[0] == 3
