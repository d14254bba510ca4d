-- The call layer checks what it builds against what SQL declares: a result type, an
-- argument type or an argument list that differs from the library's (a half-applied
-- upgrade, a hand-edited type) is an ERROR, never a malformed tuple or a crash.
SET client_min_messages = warning;

-- A composite result with one attribute more than the library forms.
BEGIN;
ALTER TYPE rfm_summary ADD ATTRIBUTE extra int;
SELECT * FROM try_sql_verbose($$SELECT rfm(now() - interval '1 day', 10, now())$$);
ROLLBACK;

-- A result attribute of another type.
BEGIN;
ALTER TYPE iqr_bounds ALTER ATTRIBUTE n TYPE int;
SELECT * FROM try_sql_verbose($$SELECT iqr_bounds(x) FROM generate_series(1, 10) x$$);
ROLLBACK;

-- A composite argument with an attribute less.
BEGIN;
ALTER TYPE iqr_bounds DROP ATTRIBUTE k;
SELECT * FROM try_sql_verbose($$SELECT iqr_clip(5, ROW(1, 2, 3, 2, -2, 6, 3)::iqr_bounds)$$);
ROLLBACK;
BEGIN;
ALTER TYPE rfm_breaks ALTER ATTRIBUTE n TYPE bigint;
SELECT * FROM try_sql_verbose($$SELECT rfm_score(1, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks)$$);
ROLLBACK;

-- A set-returning function declared with other result columns, and a function declared
-- with fewer arguments than the library reads.
-- (In the extension's schema, where the library looks for its tables.)
BEGIN;
CREATE FUNCTION bad_evaluate(model text, source regclass) RETURNS TABLE (model text, version int)
    LANGUAGE c STABLE AS '$libdir/pg_rfm', 'rfm_evaluate';
SELECT * FROM try_sql_verbose($$SELECT * FROM bad_evaluate('shop', 'customer_rfm')$$);
CREATE FUNCTION bad_segment(model text) RETURNS text
    LANGUAGE c STABLE STRICT AS '$libdir/pg_rfm', 'rfm_segment';
SELECT * FROM try_sql_verbose($$SELECT bad_segment('shop')$$);
ROLLBACK;

-- After all of that, the real functions still work.
SELECT (rfm(now() - interval '1 day', 10, now())).frequency,
       (iqr_bounds(x)).n, iqr_clip(100, iqr_bounds(x)) FROM generate_series(1, 10) x;
RESET client_min_messages;
