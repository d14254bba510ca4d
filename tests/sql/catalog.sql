-- Every object of the extension: named rfm_* or iqr_*, commented, parallel safe, and
-- with the volatility its behaviour calls for.
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
   OR NOT (what ~ ' (rfm_|iqr_|rfm\()' OR what ~ '^(function|type|table) (rfm|iqr)')
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
