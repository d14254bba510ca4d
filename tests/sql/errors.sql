-- Bad input: each case gets a documented value or an ERROR with a fitting SQLSTATE,
-- never a crash or a Rust panic message. Errors are shown as 'SQLSTATE: message'.

SELECT q, try_sql(q) AS outcome FROM (VALUES
    -- rfm
    ($$SELECT rfm(now() - interval '1 day', 'NaN', now())$$),
    ($$SELECT rfm(now() - interval '1 day', 'Infinity', now())$$),
    ($$SELECT rfm(now() - interval '1 day', '-Infinity', now())$$),
    ($$SELECT rfm('-infinity', 1, now())$$),
    ($$SELECT rfm('2024-01-01', 1, 'infinity')$$),
    ($$SELECT rfm('2024-03-01', 1, '2024-02-01')$$),
    ($$SELECT rfm('2024-01-01', 1, NULL)$$),
    ($$SELECT rfm('2024-01-01', 1, 'o1', NULL)$$),
    ($$SELECT rfm(ts, 1, as_of) FROM (VALUES ('2024-01-01'::timestamptz, '2024-02-01'::timestamptz),
                                            ('2024-01-02', '2024-03-01')) v(ts, as_of)$$),
    -- rfm_breaks
    ($$SELECT rfm_breaks(1, 1, 1, 1)$$),
    ($$SELECT rfm_breaks(1, 1, 1, 0)$$),
    ($$SELECT rfm_breaks(1, 1, 1, -3)$$),
    ($$SELECT rfm_breaks(1, 1, 1, 101)$$),
    ($$SELECT rfm_breaks(1, 1, 1, NULL)$$),
    ($$SELECT rfm_breaks('NaN', 1, 1)$$),
    ($$SELECT rfm_breaks(1, 'Infinity', 1)$$),
    ($$SELECT rfm_breaks(1, 1, '-Infinity')$$),
    ($$SELECT rfm_breaks(1, 1, 1, n) FROM (VALUES (3), (4)) v(n)$$),
    -- iqr_bounds
    ($$SELECT iqr_bounds(1, -1)$$),
    ($$SELECT iqr_bounds(1, 'NaN')$$),
    ($$SELECT iqr_bounds(1, 'Infinity')$$),
    ($$SELECT iqr_bounds(1, NULL)$$),
    ($$SELECT iqr_bounds('NaN')$$),
    ($$SELECT iqr_bounds('Infinity')$$),
    ($$SELECT iqr_bounds(x, k) FROM (VALUES (1, 1.5), (2, 3)) v(x, k)$$),
    -- iqr_clip / iqr_is_outlier
    ($$SELECT iqr_clip('NaN', ROW(1, 2, 3, 2, -2, 6, 3, 1.5)::iqr_bounds)$$),
    ($$SELECT iqr_is_outlier('NaN', ROW(1, 2, 3, 2, -2, 6, 3, 1.5)::iqr_bounds)$$),
    ($$SELECT iqr_clip(1, ROW(1, 2, 3, 2, 6, -2, 3, 1.5)::iqr_bounds)$$),
    ($$SELECT iqr_clip(1, ROW(1, 2, 3, 2, NULL, 6, 3, 1.5)::iqr_bounds)$$),
    ($$SELECT iqr_is_outlier(1, ROW(1, 2, 3, 2, -2, 'NaN', 3, 1.5)::iqr_bounds)$$),
    -- rfm_score
    ($$SELECT rfm_score('NaN', 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 'Infinity', 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(3, '{5}', '{5,6}', '{5,6}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(3, '{6,5}', '{5,6}', '{5,6}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(1, '{}', '{}', '{}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(NULL, '{5}', '{5}', '{5}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(2, NULL, '{5}', '{5}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(2, '{NULL}', '{5}', '{5}')::rfm_breaks)$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(2, '{NaN}', '{5}', '{5}')::rfm_breaks)$$),
    -- values so large that the results overflow float8
    ($$SELECT rfm(now() - interval '1 day', x, now()) FROM (VALUES (1e308::float8), (1e308)) v(x)$$),
    ($$SELECT iqr_bounds(x) FROM (VALUES (-1e308::float8), (1e308)) v(x)$$),
    ($$SELECT rfm_breaks(x, x, x) FROM (VALUES (-1e308::float8), (1e308)) v(x)$$),
    -- support functions take `internal`, which SQL cannot produce
    ($$SELECT rfm_final(NULL::internal)$$),
    ($$SELECT rfm_deserial('\x00'::bytea, NULL::internal)$$)
) AS cases(q);

-- Documented values rather than errors: NULL-only or empty input gives NULL; the scalars
-- are STRICT (NULL in, NULL out); a customer with returns only has NULL recency.
SELECT (SELECT rfm(ts, amt, now()) FROM (VALUES (NULL::timestamptz, NULL::float8)) v(ts, amt)) IS NULL AS rfm_nulls,
       (SELECT rfm(ts, amt, 'o', now()) FROM (VALUES (now(), 1::float8)) v(ts, amt) WHERE false) IS NULL AS rfm_empty,
       (SELECT iqr_bounds(x) FROM (VALUES (NULL::float8)) v(x)) IS NULL AS iqr_nulls,
       (SELECT rfm_breaks(r, f, m) FROM (VALUES (NULL::float8, NULL::float8, NULL::float8)) v(r, f, m)) IS NULL AS breaks_nulls,
       rfm_score(NULL, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks) IS NULL AS score_null,
       rfm_score(1, 1, 1, NULL) IS NULL AS score_null_breaks,
       iqr_clip(NULL, NULL) IS NULL AS clip_null,
       iqr_is_outlier(1, NULL) IS NULL AS outlier_null_bounds;

-- A missing rule table is a clear undefined_table error.
BEGIN;
ALTER TABLE rfm_segment_rules RENAME TO rfm_segment_rules_gone;
SELECT try_sql($$SELECT rfm_score(1, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks)$$) AS missing_rules;
ROLLBACK;

-- The backend is alive after all of the above.
SELECT 'alive' AS backend;
