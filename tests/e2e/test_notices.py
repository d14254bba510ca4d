"""Training reports progress as NOTICEs a client sees: skipped rows, then one per k tried."""

import re

import psycopg


def test_progress_notices(dsn, shop):
    notices = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("DROP TABLE IF EXISTS e2e_rfm_dirty")
        conn.execute("CREATE TABLE e2e_rfm_dirty AS SELECT * FROM e2e_rfm")
        conn.execute("INSERT INTO e2e_rfm_dirty (customer_id, recency, frequency, monetary)"
                     " VALUES (1, NULL, 1, 1), (2, 'NaN', 1, 1), (3, 5, 1, 'Infinity')")
        conn.execute("SELECT rfm_train('notices', 'e2e_rfm_dirty', k_min => 2, k_max => 4)")
        skipped = conn.execute("SELECT n_skipped FROM rfm_models WHERE model = 'notices' AND active").fetchone()[0]
    assert skipped == 3
    assert any(re.search(r"skipped 3 rows of e2e_rfm_dirty", n) for n in notices), notices
    per_k = [int(m.group(1)) for n in notices if (m := re.match(r"rfm_train: k = (\d+): inertia [\d.]+, silhouette [\d.]+, \d+ iterations, \d+ ms", n))]
    assert per_k == [2, 3, 4], notices
