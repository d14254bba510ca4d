"""Aggregate states grow in Rust's heap, which work_mem and hash aggregation do not see: a
GROUP BY over many huge groups at work_mem 4MB stays within pg_rfm.max_state_memory (at most
twice it, the last growth step of one state included) and stops with ERROR 53200, or, grouped
by sorting, gives the right answer. Memory is read from the backend's /proc status (peak
resident set), not from pg_rfm's own counter."""

import psycopg
import pytest

CAP_MB = 16
# 200 customers with 25,000 distinct orders each: about 110 MB of order-id sets when every
# group is in memory at once (hash aggregation), about 0.6 MB for one group (sorting).
LINES = """
    SELECT g AS customer_id, '2024-01-01 00:00+00'::timestamptz + (i % 300) * interval '1 day' AS ts,
           (i % 97)::float8 AS amount, 'order-' || i AS order_id
    FROM generate_series(1, 200) g, generate_series(1, 25000) i
"""


def peak_rss_mb(conn):
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        c.execute("DROP TABLE IF EXISTS mem_lines")
        c.execute(f"CREATE TABLE mem_lines AS {LINES}")
        c.execute("ANALYZE mem_lines")
    # A new backend for the measurement, so that its peak starts from its own baseline.
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET work_mem = '4MB'")
        c.execute("SET max_parallel_workers_per_gather = 0")
        c.execute("SELECT count(*) FROM mem_lines")  # the table's pages are in the baseline
        c.execute("SELECT iqr_bounds(1)")  # and the library, loaded
        yield c
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS mem_lines")


QUERY = """SELECT customer_id, (rfm(ts, amount, order_id, '2025-01-01 00:00+00')).frequency
           FROM mem_lines GROUP BY customer_id ORDER BY customer_id"""


def test_hash_aggregate_of_huge_groups_is_stopped(conn):
    conn.execute(f"SET pg_rfm.max_state_memory = '{CAP_MB}MB'")
    conn.execute("SET enable_sort = off")  # hash aggregation: every group in memory at once
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + QUERY))
    assert "HashAggregate" in plan, plan
    base = peak_rss_mb(conn)
    with pytest.raises(psycopg.errors.OutOfMemory) as e:
        conn.execute(QUERY)
    grown = peak_rss_mb(conn) - base
    assert "pg_rfm.max_state_memory" in e.value.diag.message_primary
    assert "enable_hashagg" in e.value.diag.message_hint
    # The bound: twice the setting (the last growth step of one state) plus PostgreSQL's own
    # memory for the query (hash table at work_mem, executor), 16 MB.
    assert grown < 2 * CAP_MB + 16, f"backend grew by {grown:.0f} MB"
    # The backend is fine afterwards, and its states were freed: a small query runs.
    assert conn.execute("SELECT (rfm(ts, amount, order_id, '2025-01-01 00:00+00')).frequency"
                        " FROM mem_lines WHERE customer_id = 1").fetchone()[0] == 25000


def test_sorted_grouping_of_huge_groups_is_right(conn):
    conn.execute(f"SET pg_rfm.max_state_memory = '{CAP_MB}MB'")
    conn.execute("SET enable_hashagg = off")  # one group's state at a time
    base = peak_rss_mb(conn)
    got = conn.execute(QUERY).fetchall()
    grown = peak_rss_mb(conn) - base
    want = conn.execute("SELECT customer_id, count(DISTINCT order_id) FROM mem_lines"
                        " GROUP BY customer_id ORDER BY customer_id").fetchall()
    assert got == want and len(got) == 200
    assert grown < 2 * CAP_MB + 16, f"backend grew by {grown:.0f} MB"


def test_quantile_buffer_is_bounded(conn):
    """iqr_bounds keeps every value (exact quartiles): 3M values are 24 MB."""
    conn.execute(f"SET pg_rfm.max_state_memory = '{CAP_MB}MB'")
    with pytest.raises(psycopg.errors.OutOfMemory):
        conn.execute("SELECT iqr_bounds(x) FROM generate_series(1, 3000000) x")
    conn.execute("SET pg_rfm.max_state_memory = '64MB'")
    q1 = conn.execute("SELECT (iqr_bounds(x)).q1 FROM generate_series(1, 3000000) x").fetchone()[0]
    assert q1 == conn.execute("SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY x)"
                              " FROM generate_series(1, 3000000) x").fetchone()[0]


def test_default_and_units(conn):
    assert conn.execute("SHOW pg_rfm.max_state_memory").fetchone()[0] == "2GB"
    conn.execute("SET pg_rfm.max_state_memory = '1GB'")
    assert conn.execute("SHOW pg_rfm.max_state_memory").fetchone()[0] == "1GB"
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SET pg_rfm.max_state_memory = '100kB'")
