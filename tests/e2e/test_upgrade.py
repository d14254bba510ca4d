"""Upgrade: a database on 0.1.0 with a trained model, ALTER EXTENSION pg_rfm UPDATE, the
model assigns identically, and the upgraded schema equals a fresh install of the new version."""

import os
import subprocess

import psycopg

OBJECTS = """
SELECT pg_describe_object(d.classid, d.objid, 0) AS object,
       CASE d.classid
           WHEN 'pg_proc'::regclass THEN (
               SELECT p.prosrc || '|' || p.provolatile::text || p.proparallel::text || p.proisstrict::text || '|'
                      || pg_get_function_result(p.oid) || '|' || coalesce(p.proconfig::text, '') || '|'
                      || coalesce((SELECT a.aggtransfn::text || a.aggfinalfn::text || a.aggcombinefn::text
                                          || a.aggserialfn::text || a.aggdeserialfn::text
                                   FROM pg_aggregate a WHERE a.aggfnoid = p.oid), '')
               FROM pg_proc p WHERE p.oid = d.objid)
               || coalesce(obj_description(d.objid, 'pg_proc'), '')
           WHEN 'pg_class'::regclass THEN coalesce(pg_get_viewdef(d.objid), '')
               || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
                                     || a.attnotnull::text, ', ' ORDER BY a.attnum)
                   FROM pg_attribute a WHERE a.attrelid = d.objid AND a.attnum > 0 AND NOT a.attisdropped)
               || coalesce(obj_description(d.objid, 'pg_class'), '')
           WHEN 'pg_type'::regclass THEN coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                   FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid WHERE t.oid = d.objid AND a.attnum > 0), '')
               || coalesce(obj_description(d.objid, 'pg_type'), '')
           ELSE ''
       END AS definition
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_rfm')
ORDER BY 1
"""


def bin_(name):
    return os.path.join(os.environ["PGBIN"], name)


def test_update_from_0_1_0(dsn, shop):
    for db in ("rfm_upgrade", "rfm_fresh"):
        subprocess.run([bin_("dropdb"), "--if-exists", db], check=True)
        subprocess.run([bin_("createdb"), db], check=True)
    with psycopg.connect("dbname=rfm_upgrade", autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION pg_rfm VERSION '0.1.0'")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm'").fetchone()[0] == "0.1.0"
        conn.execute("CREATE TABLE customers AS SELECT i AS id, (i % 500)::float8 AS recency,"
                     " (1 + i % 17)::float8 AS frequency, (5 + (i * 53) % 8000)::float8 AS monetary"
                     " FROM generate_series(1, 2000) i")
        conn.execute("SELECT rfm_train('kept', 'customers', k => 4)")
        before = conn.execute("SELECT id, rfm_segment('kept', recency, frequency, monetary),"
                              " rfm_cluster('kept', recency, frequency, monetary) FROM customers ORDER BY id").fetchall()
        conn.execute("ALTER EXTENSION pg_rfm UPDATE")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm'").fetchone()[0] == "0.2.0"
        after = conn.execute("SELECT id, rfm_segment('kept', recency, frequency, monetary),"
                             " rfm_cluster('kept', recency, frequency, monetary) FROM customers ORDER BY id").fetchall()
        upgraded = conn.execute(OBJECTS).fetchall()
        # The upgraded database still trains and stores new versions.
        assert conn.execute("SELECT version FROM rfm_train('kept', 'customers', k => 3)").fetchone()[0] == 2
    assert after == before
    with psycopg.connect("dbname=rfm_fresh", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_rfm")
        fresh = conn.execute(OBJECTS).fetchall()
    assert [o for o, _ in upgraded] == [o for o, _ in fresh]
    differing = [o for (o, a), (_, b) in zip(upgraded, fresh) if a != b]
    assert differing == [], differing
    for db in ("rfm_upgrade", "rfm_fresh"):
        subprocess.run([bin_("dropdb"), db], check=True)
