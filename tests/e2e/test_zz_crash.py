"""Cancellation and crashes. Runs last (file name): kill -9 makes the server restart every
backend."""

import os
import signal
import threading
import time

import psycopg


def long_training_table(conn):
    conn.execute("DROP TABLE IF EXISTS e2e_many")
    conn.execute("SELECT setseed(0.5)")
    conn.execute("CREATE TABLE e2e_many AS SELECT (random() * 700)::float8 AS recency,"
                 " (1 + random() * random() * 60)::float8 AS frequency,"
                 " (random() * random() * 20000)::float8 AS monetary FROM generate_series(1, 300000)")


def start_training(dsn, model, outcome):
    """Starts a long rfm_train in a thread; returns (thread, backend pid)."""
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET client_min_messages = warning")
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    def run():
        t0 = time.time()
        try:
            conn.execute(f"SELECT rfm_train('{model}', 'e2e_many', k_min => 2, k_max => 10, n_init => 30)")
            outcome["error"] = None
        except psycopg.Error as e:
            outcome["error"] = e
        outcome["ended"] = time.time()
        outcome["started"] = t0
        try:
            conn.close()
        except psycopg.Error:
            pass

    t = threading.Thread(target=run)
    t.start()
    return t, pid


def test_cancel_stops_training_promptly(dsn, shop):
    with psycopg.connect(dsn, autocommit=True) as conn:
        long_training_table(conn)
        outcome = {}
        t, pid = start_training(dsn, "cancelled", outcome)
        time.sleep(1.5)
        assert conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == "active"
        cancelled_at = time.time()
        assert conn.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone()[0]
        t.join(30)
        assert isinstance(outcome["error"], psycopg.errors.QueryCanceled), outcome
        assert outcome["ended"] - cancelled_at < 1.0, f"stopped {outcome['ended'] - cancelled_at:.2f}s after the cancel"
        assert conn.execute("SELECT count(*) FROM rfm_models WHERE model = 'cancelled'").fetchone()[0] == 0


def test_kill_9_keeps_the_active_version(dsn, shop):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("SELECT rfm_drop_model('survivor')")
        conn.execute("SELECT rfm_train('survivor', 'e2e_rfm', k => 3)")
        before = conn.execute("SELECT customer_id, rfm_segment('survivor', recency, frequency, monetary)"
                              " FROM e2e_rfm ORDER BY 1").fetchall()
    outcome = {}
    t, pid = start_training(dsn, "survivor", outcome)
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert outcome["error"] is not None
    # The postmaster restarts every backend and recovers. A connection can be accepted just
    # before the postmaster notices the killed backend and restarts everything, so the check
    # is retried until a connection survives it.
    deadline = time.time() + 60
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                version, k = conn.execute("SELECT version, k FROM rfm_models WHERE model = 'survivor' AND active").fetchone()
                versions = conn.execute("SELECT count(*) FROM rfm_models WHERE model = 'survivor'").fetchone()[0]
                after = conn.execute("SELECT customer_id, rfm_segment('survivor', recency, frequency, monetary)"
                                     " FROM e2e_rfm ORDER BY 1").fetchall()
            break
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    assert (version, k) == (1, 3)
    assert versions == 1
    assert after == before
