"""End-to-end tests through a real client (psycopg), against the throwaway cluster that
scripts/test.sh starts (PGHOST, PGPORT, PGUSER in the environment, RFM_GEN the generator)."""

import os
import subprocess

import psycopg
import pytest

DB = "postgres"  # pg_cron runs jobs in this database (pgrx-config/postgresql.conf)


@pytest.fixture(scope="session")
def dsn():
    return f"dbname={DB}"


@pytest.fixture(scope="session")
def shop(dsn):
    """Generated retail data, cleaned, RFM per customer, and a trained model 'shop'."""
    gen = os.environ["RFM_GEN"]
    data = subprocess.run([gen, "--lines", "120000", "--customers", "1500", "--seed", "11"],
                          check=True, capture_output=True).stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_rfm")
        conn.execute("DROP TABLE IF EXISTS e2e_lines CASCADE")
        conn.execute("CREATE TABLE e2e_lines (invoice text, stock_code text, quantity int,"
                     " invoice_date timestamptz, price float8, customer_id int, country text)")
        with conn.cursor().copy("COPY e2e_lines FROM STDIN") as copy:
            copy.write(data)
        conn.execute("CREATE TABLE e2e_rfm AS SELECT customer_id,"
                     " (rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00')).*"
                     " FROM (SELECT DISTINCT * FROM e2e_lines WHERE customer_id IS NOT NULL"
                     " AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0) c GROUP BY customer_id")
        conn.execute("SELECT rfm_drop_model('shop')")
        conn.execute("SELECT rfm_train('shop', 'e2e_rfm', k => 4)")
    return "e2e_rfm"
