"""8 clients assign segments with pgbench while another session retrains the same model
every two seconds: no errors, and every statement sees exactly one model version.

Each assignment statement fails (division by zero, computed at run time) unless the number of distinct clusters
it assigned equals k of the active version in its own snapshot; retraining alternates
between k = 3 and k = 6, so a statement that mixed versions, or used a version other than
the one it sees as active, fails. RFM_CONCURRENCY_SECONDS sets the duration (20 in CI; the
issue's full run is 60)."""

import os
import re
import subprocess

import psycopg


def test_assignment_under_retraining(dsn, shop, tmp_path):
    seconds = int(os.environ.get("RFM_CONCURRENCY_SECONDS", "20"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("SELECT rfm_drop_model('conc')")
        conn.execute("SELECT rfm_train('conc', 'e2e_rfm', k => 3, n_init => 2)")
    assign = tmp_path / "assign.sql"
    # The clusters the training rows fall into are exactly the version's non-empty clusters.
    assign.write_text(
        "SELECT CASE WHEN count(DISTINCT c) = (SELECT count(*) FROM rfm_centroids x JOIN rfm_models m USING (model, version)"
        " WHERE m.model = 'conc' AND m.active AND x.size > 0)"
        " AND max(c) <= (SELECT k FROM rfm_models WHERE model = 'conc' AND active)"
        " THEN 1 ELSE 1 / (count(*) * 0)::int END"  # not 1 / 0: the planner would fold that constant
        " FROM (SELECT rfm_cluster('conc', recency, frequency, monetary) AS c FROM e2e_rfm) s;\n")
    retrain = tmp_path / "retrain.sql"
    retrain.write_text(
        "SET client_min_messages = warning;\n"
        "SELECT rfm_train('conc', 'e2e_rfm', k => CASE WHEN (SELECT k FROM rfm_models WHERE model = 'conc' AND active) = 3"
        " THEN 6 ELSE 3 END, n_init => 2);\n"
        "\\sleep 2 s\n")
    pgbench = os.path.join(os.environ["PGBIN"], "pgbench")
    common = ["-n", "-T", str(seconds), "postgres"]
    trainer = subprocess.Popen([pgbench, "-c", "1", "-f", str(retrain), *common],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    readers = subprocess.run([pgbench, "-c", "8", "-j", "2", "-f", str(assign), *common],
                             capture_output=True, text=True)
    trained = trainer.communicate(timeout=seconds + 60)[0]
    out = readers.stdout + readers.stderr
    assert readers.returncode == 0, out
    processed = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert processed > 8 * seconds, out
    assert failed is None or int(failed.group(1)) == 0, out
    retrains = int(re.search(r"number of transactions actually processed: (\d+)", trained).group(1))
    assert retrains >= seconds // 3, trained
    with psycopg.connect(dsn, autocommit=True) as conn:
        versions = conn.execute("SELECT count(*) FROM rfm_models WHERE model = 'conc'").fetchone()[0]
    assert versions == retrains + 1
