"""The nightly incremental RFM recipe of docs/production.md, run as written (its SQL is read
from the page; `current_date` is replaced by a fixed day): the states built once and folded
night by night give exactly what rfm over all the lines gives, the model is retrained and the
published snapshot refreshed each night; lines resent by the feed, a night folded twice and a
late line refolded with its night each count once.""" 

import os
import re
import subprocess

import psycopg

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "production.md")
START = "2011-11-01"  # the recipe's "today" for the initial load
NIGHTS = ["2011-11-01", "2011-11-02", "2011-11-03", "2011-11-04", "2011-11-05", "2011-11-06", "2011-11-07"]


def recipe():
    text = open(DOC).read()
    section = text.split("## Nightly refresh with incremental RFM", 1)[1].split("\n## ", 1)[0]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    sql = sql.replace("current_date", f"date '{START}'")
    # pg_cron's schedule is the only statement not run here (test_cron.py runs jobs).
    return "\n".join(line for line in sql.splitlines() if not line.startswith("SELECT cron.schedule"))


def test_nightly_recipe(dsn):
    data = subprocess.run([os.environ["RFM_GEN"], "--lines", "120000", "--customers", "1500", "--seed", "5"],
                          check=True, capture_output=True).stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        for stmt in ("DROP PROCEDURE IF EXISTS rfm_nightly(date)", "DROP TABLE IF EXISTS order_lines CASCADE",
                     "DROP TABLE IF EXISTS customer_states CASCADE", "DROP TABLE IF EXISTS customer_states_days CASCADE",
                     "SELECT rfm_drop_model('customers')"):
            conn.execute(stmt)
        conn.execute("CREATE TABLE order_lines (invoice text, stock_code text, quantity int,"
                     " invoice_date timestamptz, price float8, customer_id int, country text)")
        with conn.cursor().copy("COPY order_lines FROM STDIN") as copy:
            copy.write(data)
        # Nights before the recipe starts must not be in the initial load: the lines of the
        # nights folded below are later than START.
        nightly_lines = conn.execute("SELECT count(*) FROM order_lines WHERE invoice_date >= %s AND invoice_date < %s",
                                     (START, "2011-11-08")).fetchone()[0]
        assert nightly_lines > 1000
        with conn.transaction():
            conn.execute(recipe())
        versions = [conn.execute("SELECT max(version) FROM rfm_models WHERE model = 'customers'").fetchone()[0]]
        for night in NIGHTS:
            conn.execute("CALL rfm_nightly(%s)", (night,))
            versions.append(conn.execute("SELECT max(version) FROM rfm_models WHERE model = 'customers'").fetchone()[0])
        # Every night retrained the model and refreshed the snapshot with the new version.
        assert versions == list(range(1, len(NIGHTS) + 2))
        assert conn.execute("SELECT min(model_version), max(model_version) FROM customer_segments_mv").fetchone() \
            == (versions[-1], versions[-1])
        # The states equal one pass of rfm over every distinct line up to the last night, as of
        # its end; the independent reference is plain SQL over SELECT DISTINCT of the lines.
        assert differ_from_one_pass(conn) == (0, 0)
        customers = conn.execute("SELECT count(*) FROM customer_rfm_now").fetchone()[0]
        assert customers > 1000
        # A night folded twice changes nothing.
        before = conn.execute("SELECT sum(monetary), sum(frequency) FROM customer_rfm_now").fetchone()
        conn.execute("CALL rfm_nightly(%s)", (NIGHTS[2],))
        assert conn.execute("SELECT sum(monetary), sum(frequency) FROM customer_rfm_now").fetchone() == before
        # A late line for a folded night, and the same night's lines resent by the feed: the
        # night is folded again and only the late line is new.
        conn.execute("""INSERT INTO order_lines
                        SELECT * FROM order_lines WHERE invoice_date >= %(n)s AND invoice_date < %(n)s::date + 1
                        UNION ALL
                        SELECT 'L1', 'LATE', 2, %(n)s::timestamptz + interval '5 hours', 10.5, customer_id, 'X'
                        FROM (SELECT min(customer_id) AS customer_id FROM order_lines) c""", {"n": NIGHTS[3]})
        conn.execute("CALL rfm_nightly(%s)", (NIGHTS[3],))
        after = conn.execute("SELECT sum(monetary), sum(frequency) FROM customer_rfm_now").fetchone()
        assert abs(after[0] - before[0] - 21.0) < 1e-9 * abs(before[0]) and after[1] == before[1] + 1, (before, after)
        assert differ_from_one_pass(conn) == (0, 0)


def differ_from_one_pass(conn):
    """(customers whose state's summary differs from rfm's line form over all lines, customers
    whose summary differs from plain SQL over the distinct lines beyond rounding)."""
    return conn.execute("""
        WITH one AS (SELECT customer_id, (rfm(invoice_date, quantity * price, invoice, stock_code, '2011-11-08 00:00+00')).*
                     FROM order_lines WHERE customer_id IS NOT NULL AND invoice_date < '2011-11-08'
                     GROUP BY customer_id),
             plain AS (SELECT customer_id, count(DISTINCT invoice) FILTER (WHERE qp >= 0) AS frequency,
                              sum(qp) AS monetary,
                              max(invoice_date) FILTER (WHERE qp >= 0) AS last_purchase
                       FROM (SELECT DISTINCT customer_id, invoice, stock_code, invoice_date, quantity * price AS qp
                             FROM order_lines WHERE customer_id IS NOT NULL AND invoice_date < '2011-11-08') d
                       GROUP BY customer_id)
        SELECT count(*) FILTER (WHERE (n.recency, n.frequency, n.monetary, n.first_purchase, n.last_purchase, n.tenure,
                                       n.avg_order_value)
                                      IS DISTINCT FROM
                                      (o.recency, o.frequency, o.monetary, o.first_purchase, o.last_purchase, o.tenure,
                                       o.avg_order_value)),
               count(*) FILTER (WHERE n.frequency IS DISTINCT FROM p.frequency OR n.last_purchase IS DISTINCT FROM p.last_purchase
                                   OR abs(n.monetary - p.monetary) > 1e-9 * greatest(1, abs(p.monetary)))
        FROM customer_rfm_now n FULL JOIN one o USING (customer_id) FULL JOIN plain p USING (customer_id)
        """).fetchone()
