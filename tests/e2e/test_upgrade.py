"""Upgrade: a database on each released version (0.1.0, 0.2.0, 0.3.0, 0.4.0) with a trained model,
ALTER EXTENSION pg_rfm UPDATE, the model assigns identically, and the upgraded schema equals a
fresh install of the new version. A database on 0.2.0 with edited segment rules keeps exactly
those rules through the update to 0.3.0 (where the rule table became a view over defaults and
edits)."""

import os
import subprocess

import psycopg
import pytest

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
               || coalesce((SELECT c.relacl::text FROM pg_class c WHERE c.oid = d.objid), '')
               || coalesce((SELECT string_agg(pg_get_triggerdef(t.oid), '; ' ORDER BY t.tgname)
                            FROM pg_trigger t WHERE t.tgrelid = d.objid AND NOT t.tgisinternal), '')
               || coalesce((SELECT string_agg(co.conname || ' ' || pg_get_constraintdef(co.oid), '; ' ORDER BY co.conname)
                            FROM pg_constraint co WHERE co.conrelid = d.objid), '')
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

# Tables whose rows pg_dump keeps (pg_extension_config_dump), with their filters.
CONFIG = """
SELECT u.c::regclass::text, u.cond
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond)
WHERE e.extname = 'pg_rfm'
ORDER BY 1
"""

RULES = "SELECT * FROM rfm_segment_rules ORDER BY priority"


def bin_(name):
    return os.path.join(os.environ["PGBIN"], name)


def current_version(conn):
    return conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'pg_rfm'").fetchone()[0]


@pytest.mark.parametrize("start", ["0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0"])
def test_update_from(dsn, shop, start):
    for db in ("rfm_upgrade", "rfm_fresh"):
        subprocess.run([bin_("dropdb"), "--if-exists", db], check=True)
        subprocess.run([bin_("createdb"), db], check=True)
    with psycopg.connect("dbname=rfm_upgrade", autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute(f"CREATE EXTENSION pg_rfm VERSION '{start}'")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm'").fetchone()[0] == start
        conn.execute("CREATE TABLE customers AS SELECT i AS id, (i % 500)::float8 AS recency,"
                     " (1 + i % 17)::float8 AS frequency, (5 + (i * 53) % 8000)::float8 AS monetary"
                     " FROM generate_series(1, 2000) i")
        conn.execute("SELECT rfm_train('kept', 'customers', k => 4)")
        before = conn.execute("SELECT id, rfm_segment('kept', recency, frequency, monetary),"
                              " rfm_cluster('kept', recency, frequency, monetary) FROM customers ORDER BY id").fetchall()
        conn.execute("ALTER EXTENSION pg_rfm UPDATE")
        assert current_version(conn) == "0.8.0"
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm'").fetchone()[0] == "0.8.0"
        after = conn.execute("SELECT id, rfm_segment('kept', recency, frequency, monetary),"
                             " rfm_cluster('kept', recency, frequency, monetary) FROM customers ORDER BY id").fetchall()
        upgraded = conn.execute(OBJECTS).fetchall()
        upgraded_config = conn.execute(CONFIG).fetchall()
        assert conn.execute("SELECT count(*) FROM rfm_segment_rule_edits").fetchone()[0] == 0
        # The upgraded database still trains and stores new versions.
        assert conn.execute("SELECT version FROM rfm_train('kept', 'customers', k => 3)").fetchone()[0] == 2
    assert after == before
    with psycopg.connect("dbname=rfm_fresh", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_rfm")
        fresh = conn.execute(OBJECTS).fetchall()
        assert conn.execute(CONFIG).fetchall() == upgraded_config
    assert [o for o, _ in upgraded] == [o for o, _ in fresh]
    differing = [(o, a, b) for (o, a), (_, b) in zip(upgraded, fresh) if a != b]
    assert differing == [], differing
    for db in ("rfm_upgrade", "rfm_fresh"):
        subprocess.run([bin_("dropdb"), db], check=True)


def test_update_from_0_2_0_keeps_rule_edits(dsn, shop, tmp_path):
    dbs = ("rfm_upgrade_rules", "rfm_upgrade_rules_restored")
    for db in dbs:
        subprocess.run([bin_("dropdb"), "--if-exists", db], check=True)
    subprocess.run([bin_("createdb"), dbs[0]], check=True)
    roles = ("regress_rfm_rule_editor", "regress_rfm_col_editor", "regress_rfm_nobody")
    warnings = []
    with psycopg.connect(f"dbname={dbs[0]}", autocommit=True) as conn:
        conn.add_notice_handler(lambda d: warnings.append((d.severity_nonlocalized, d.message_primary, d.message_detail)))
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE EXTENSION pg_rfm VERSION '0.2.0'")
        for role in roles:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE ROLE {role}")
        # In 0.2.0 rfm_segment_rules is a table: edit it as one, and set privileges on it.
        conn.execute("UPDATE rfm_segment_rules SET segment = 'VIP', action = 'Call them' WHERE priority = 10")
        conn.execute("UPDATE rfm_segment_rules SET description = NULL WHERE priority = 20")
        conn.execute("DELETE FROM rfm_segment_rules WHERE segment = 'Lost'")
        conn.execute("INSERT INTO rfm_segment_rules VALUES (55, 'Middle', 3, 3, 3, 3, 1, 5, 'Nudge', NULL)")
        conn.execute("GRANT UPDATE, INSERT ON rfm_segment_rules TO regress_rfm_rule_editor WITH GRANT OPTION")
        conn.execute("GRANT SELECT ON rfm_segment_rules TO regress_rfm_rule_editor, regress_rfm_col_editor")
        conn.execute("GRANT UPDATE (action) ON rfm_segment_rules TO regress_rfm_col_editor")
        conn.execute("REVOKE SELECT ON rfm_segment_rules FROM PUBLIC")
        before = conn.execute(RULES).fetchall()
        probe = ("SELECT (rfm_score(6 - r, f, m, ROW(5, '{1.5,2.5,3.5,4.5}', '{1.5,2.5,3.5,4.5}',"
                 " '{1.5,2.5,3.5,4.5}')::rfm_breaks)).segment FROM generate_series(1, 5) r,"
                 " generate_series(1, 5) f, generate_series(1, 5) m ORDER BY r, f, m")
        scored = conn.execute(probe).fetchall()
        assert ("VIP",) in scored and ("Middle",) in scored and ("Lost",) not in scored

        # A view of the user's over the old table: the update refuses, names it, changes nothing.
        conn.execute("CREATE VIEW my_rules AS SELECT segment, action FROM rfm_segment_rules")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist, match="view my_rules"):
            conn.execute("ALTER EXTENSION pg_rfm UPDATE TO '0.3.0'")
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm'").fetchone()[0] == "0.2.0"
        assert conn.execute(RULES).fetchall() == before
        conn.execute("DROP VIEW my_rules")

        conn.execute("ALTER EXTENSION pg_rfm UPDATE TO '0.3.0'")
        assert conn.execute(RULES).fetchall() == before
        assert conn.execute(probe).fetchall() == scored
        edits = conn.execute("SELECT priority, deleted, segment FROM rfm_segment_rule_edits ORDER BY 1").fetchall()
        assert edits == [(10, False, "VIP"), (20, False, "Loyal Customers"), (55, False, "Middle"), (100, True, None)]

        # Privileges on the old table are not carried over (pg_dump would lose them): the
        # update says so and gives the statements to run.
        grants = [w for w in warnings if w[0] == "WARNING" and "privileges" in w[1]]
        assert len(grants) == 1, warnings
        detail = grants[0][2]
        for statement in (
            "GRANT INSERT ON public.rfm_segment_rules TO regress_rfm_rule_editor WITH GRANT OPTION;",
            "GRANT UPDATE ON public.rfm_segment_rules TO regress_rfm_rule_editor WITH GRANT OPTION;",
            "GRANT SELECT ON public.rfm_segment_rules TO regress_rfm_rule_editor;",
            "GRANT UPDATE (action) ON public.rfm_segment_rules TO regress_rfm_col_editor;",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON public.rfm_segment_rule_edits TO regress_rfm_col_editor;"
            " GRANT SELECT ON public.rfm_segment_rule_defaults TO regress_rfm_col_editor;",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON public.rfm_segment_rule_edits TO regress_rfm_rule_editor;"
            " GRANT SELECT ON public.rfm_segment_rule_defaults TO regress_rfm_rule_editor;",
            "REVOKE SELECT ON public.rfm_segment_rules, public.rfm_segment_rule_edits,"
            " public.rfm_segment_rule_defaults FROM PUBLIC;",
        ):
            assert statement in detail, detail
        statements = detail.split(": ", 1)[1]
        conn.execute("SET ROLE regress_rfm_rule_editor")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE rfm_segment_rules SET action = 'Mine' WHERE priority = 55")
        conn.execute("RESET ROLE")
        conn.execute(statements)

    def check_privileges(conn):
        conn.execute("SET ROLE regress_rfm_rule_editor")
        conn.execute("UPDATE rfm_segment_rules SET action = 'Mine' WHERE priority = 55")
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT action, edited_by FROM rfm_segment_rule_edits WHERE priority = 55").fetchone() \
            == ("Mine", "regress_rfm_rule_editor")
        conn.execute("SET ROLE regress_rfm_col_editor")
        conn.execute("UPDATE rfm_segment_rules SET action = 'Col' WHERE priority = 55")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE rfm_segment_rules SET segment = 'Col' WHERE priority = 55")
        conn.execute("SET ROLE regress_rfm_nobody")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM rfm_segment_rules")
        conn.execute("RESET ROLE")

    with psycopg.connect(f"dbname={dbs[0]}", autocommit=True) as conn:
        check_privileges(conn)
        conn.execute("UPDATE rfm_segment_rules SET action = 'Nudge' WHERE priority = 55")
        after = conn.execute(RULES).fetchall()

    # Run after the update, outside the extension script, the statements survive pg_dump.
    dump = tmp_path / "upgraded.dump"
    subprocess.run([bin_("pg_dump"), "-Fc", "-f", str(dump), dbs[0]], check=True)
    subprocess.run([bin_("createdb"), dbs[1]], check=True)
    restore = subprocess.run([bin_("pg_restore"), "--exit-on-error", "-d", dbs[1], str(dump)],
                             capture_output=True, text=True)
    assert restore.returncode == 0, restore.stderr
    with psycopg.connect(f"dbname={dbs[1]}", autocommit=True) as conn:
        assert conn.execute(RULES).fetchall() == after
        check_privileges(conn)
    for db in dbs:
        subprocess.run([bin_("dropdb"), db], check=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role in roles:
            conn.execute(f"DROP ROLE {role}")
