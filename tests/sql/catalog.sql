-- Every object of the extension: named rfm_* or iqr_* (operators, which have symbols for
-- names, only on rfm_model), commented, parallel safe, and with the volatility its
-- behaviour calls for.
WITH objs AS (
    SELECT classid::regclass AS catalog, objid,
           pg_describe_object(classid, objid, 0) AS what
    FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_rfm')
      AND deptype = 'e'
)
SELECT what
FROM objs
WHERE obj_description(objid, catalog::text) IS NULL
   OR NOT (what ~ ' (rfm_|iqr_|rfm\()' OR what ~ '^(function|type|table) (rfm|iqr)'
           OR what ~ '^operator [<>=]+\(rfm_model,rfm_model\)$')
ORDER BY what;

SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel,
       p.proisstrict AS strict, p.prokind AS kind
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_rfm'
ORDER BY p.proname, p.oid::regprocedure::text;

-- Only training, rule edits and the functions that read a whole source are not PARALLEL SAFE.
SELECT p.oid::regprocedure AS not_parallel_safe, p.proparallel
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_rfm'
WHERE p.proparallel <> 's'
ORDER BY p.oid::regprocedure::text;

SELECT a.aggfnoid::regprocedure AS aggregate, a.aggcombinefn <> 0 AS combine,
       a.aggserialfn <> 0 AS serial, a.aggdeserialfn <> 0 AS deserial
FROM pg_aggregate a
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = a.aggfnoid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_rfm'
ORDER BY a.aggfnoid::regprocedure::text;

-- No function runs with its owner's privileges, and every SQL or PL/pgSQL body pins its
-- search_path (C functions resolve nothing by name except through quoted, qualified SQL).
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_rfm'
JOIN pg_language l ON l.oid = p.prolang
WHERE p.prosecdef
   OR (l.lanname IN ('sql', 'plpgsql') AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false))
ORDER BY p.oid::regprocedure::text;

-- DROP EXTENSION: refused (2BP01) while a published view uses pg_rfm's functions; with
-- CASCADE every object of the extension goes, models and rule edits included. CREATE
-- EXTENSION then starts from the standard rules. (Rolled back: later tests keep the extension.)
BEGIN;
CREATE TEMP TABLE ext_objects AS
SELECT d.classid, d.objid FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_rfm');
SELECT count(*) > 50 AS many_objects, count(DISTINCT classid) AS catalogs FROM ext_objects;
SELECT count(*) > 0 AS published_views_exist
FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
JOIN ext_objects e ON e.classid = 'pg_proc'::regclass AND e.objid = d.refobjid;
SELECT try_sql('DROP EXTENSION pg_rfm') AS without_cascade;
SET client_min_messages = warning;
DROP EXTENSION pg_rfm CASCADE;
RESET client_min_messages;
SELECT count(*) AS left_behind FROM ext_objects e
WHERE EXISTS (SELECT 1 FROM pg_class c WHERE e.classid = 'pg_class'::regclass AND c.oid = e.objid)
   OR EXISTS (SELECT 1 FROM pg_type t WHERE e.classid = 'pg_type'::regclass AND t.oid = e.objid)
   OR EXISTS (SELECT 1 FROM pg_proc p WHERE e.classid = 'pg_proc'::regclass AND p.oid = e.objid);
CREATE EXTENSION pg_rfm;
SELECT (SELECT count(*) FROM rfm_segment_rules) AS rules, (SELECT count(*) FROM rfm_models) AS models;
ROLLBACK;
SELECT count(*) > 0 AS models_back_after_rollback FROM rfm_models;
