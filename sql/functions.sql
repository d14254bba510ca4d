-- pg_rfm functions and aggregates. All are C functions of this module; support
-- functions of the aggregates take and return `internal` and cannot be called from SQL.

------------------------------------------------------------------------------
-- rfm(order_ts, amount, as_of) and rfm(order_ts, amount, order_id, as_of)
------------------------------------------------------------------------------
CREATE FUNCTION rfm_trans(internal, timestamptz, float8, timestamptz) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_trans';
CREATE FUNCTION rfm_lines_trans(internal, timestamptz, float8, text, timestamptz) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_lines_trans';
CREATE FUNCTION rfm_lines_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_lines_combine';
CREATE FUNCTION rfm_lines_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_lines_serial';
CREATE FUNCTION rfm_lines_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_lines_deserial';
CREATE FUNCTION rfm_lines_final(internal) RETURNS rfm_summary
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_lines_final';
CREATE FUNCTION rfm_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_combine';
CREATE FUNCTION rfm_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_serial';
CREATE FUNCTION rfm_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_deserial';
CREATE FUNCTION rfm_final(internal) RETURNS rfm_summary
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_final';

CREATE AGGREGATE rfm(order_ts timestamptz, amount float8, as_of timestamptz) (
    SFUNC = rfm_trans, STYPE = internal, SSPACE = 64,
    FINALFUNC = rfm_final,
    COMBINEFUNC = rfm_combine, SERIALFUNC = rfm_serial, DESERIALFUNC = rfm_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE rfm(order_ts timestamptz, amount float8, order_id text, as_of timestamptz) (
    SFUNC = rfm_lines_trans, STYPE = internal, SSPACE = 512,
    FINALFUNC = rfm_lines_final,
    COMBINEFUNC = rfm_lines_combine, SERIALFUNC = rfm_lines_serial, DESERIALFUNC = rfm_lines_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE rfm(timestamptz, float8, timestamptz) IS
'RFM of a group (customer) where each row is one order: recency (days since the last purchase before as_of), frequency (orders), monetary (net amount), tenure, first/last purchase, average order value. Rows with a NULL timestamp or amount are skipped; a negative amount is a return: it lowers monetary and is not an order. ERROR 22023 for NaN/infinite amounts, infinite timestamps, a row later than as_of, or as_of varying within a group; ERROR 22004 for a NULL as_of.';
COMMENT ON AGGREGATE rfm(timestamptz, float8, text, timestamptz) IS
'RFM of a group (customer) where rows are order lines: like rfm(order_ts, amount, as_of), but frequency counts distinct order_id among purchase lines (amount >= 0). Rows with a NULL order_id are skipped.';
COMMENT ON FUNCTION rfm_trans(internal, timestamptz, float8, timestamptz) IS 'Transition function of rfm(order_ts, amount, as_of).';
COMMENT ON FUNCTION rfm_lines_trans(internal, timestamptz, float8, text, timestamptz) IS 'Transition function of rfm(order_ts, amount, order_id, as_of).';
COMMENT ON FUNCTION rfm_lines_combine(internal, internal) IS 'Combine function of rfm(order_ts, amount, order_id, as_of): merges partial states and their order ids.';
COMMENT ON FUNCTION rfm_lines_serial(internal) IS 'Serial function of rfm(order_ts, amount, order_id, as_of).';
COMMENT ON FUNCTION rfm_lines_deserial(bytea, internal) IS 'Deserial function of rfm(order_ts, amount, order_id, as_of).';
COMMENT ON FUNCTION rfm_lines_final(internal) IS 'Final function of rfm(order_ts, amount, order_id, as_of).';
COMMENT ON FUNCTION rfm_combine(internal, internal) IS 'Combine function of rfm(order_ts, amount, as_of): merges partial states from parallel workers.';
COMMENT ON FUNCTION rfm_serial(internal) IS 'Serial function of rfm: partial state to bytea.';
COMMENT ON FUNCTION rfm_deserial(bytea, internal) IS 'Deserial function of rfm: bytea to partial state.';
COMMENT ON FUNCTION rfm_final(internal) IS 'Final function of rfm: builds the rfm_summary.';

------------------------------------------------------------------------------
-- rfm_breaks(recency, frequency, monetary [, n])
------------------------------------------------------------------------------
CREATE FUNCTION rfm_breaks_trans(internal, float8, float8, float8) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_breaks_trans';
CREATE FUNCTION rfm_breaks_trans(internal, float8, float8, float8, int) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_breaks_trans';
CREATE FUNCTION rfm_breaks_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_breaks_combine';
CREATE FUNCTION rfm_breaks_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_breaks_serial';
CREATE FUNCTION rfm_breaks_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_breaks_deserial';
CREATE FUNCTION rfm_breaks_final(internal) RETURNS rfm_breaks
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_breaks_final';

CREATE AGGREGATE rfm_breaks(recency float8, frequency float8, monetary float8) (
    SFUNC = rfm_breaks_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = rfm_breaks_final,
    COMBINEFUNC = rfm_breaks_combine, SERIALFUNC = rfm_breaks_serial, DESERIALFUNC = rfm_breaks_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE rfm_breaks(recency float8, frequency float8, monetary float8, n int) (
    SFUNC = rfm_breaks_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = rfm_breaks_final,
    COMBINEFUNC = rfm_breaks_combine, SERIALFUNC = rfm_breaks_serial, DESERIALFUNC = rfm_breaks_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE rfm_breaks(float8, float8, float8) IS
'Quintile cut points (n = 5) of recency, frequency and monetary over all rows (customers), exact as percentile_cont. NULLs are skipped per column; NaN or infinite values raise ERROR 22023.';
COMMENT ON AGGREGATE rfm_breaks(float8, float8, float8, int) IS
'Quantile cut points for n score classes (2 <= n <= 100, the same on every row) of recency, frequency and monetary, exact as percentile_cont.';
COMMENT ON FUNCTION rfm_breaks_trans(internal, float8, float8, float8) IS 'Transition function of rfm_breaks(recency, frequency, monetary).';
COMMENT ON FUNCTION rfm_breaks_trans(internal, float8, float8, float8, int) IS 'Transition function of rfm_breaks(recency, frequency, monetary, n).';
COMMENT ON FUNCTION rfm_breaks_combine(internal, internal) IS 'Combine function of rfm_breaks.';
COMMENT ON FUNCTION rfm_breaks_serial(internal) IS 'Serial function of rfm_breaks.';
COMMENT ON FUNCTION rfm_breaks_deserial(bytea, internal) IS 'Deserial function of rfm_breaks.';
COMMENT ON FUNCTION rfm_breaks_final(internal) IS 'Final function of rfm_breaks: computes the cut points.';

------------------------------------------------------------------------------
-- iqr_bounds(x [, k])
------------------------------------------------------------------------------
CREATE FUNCTION iqr_trans(internal, float8) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_trans';
CREATE FUNCTION iqr_trans(internal, float8, float8) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_trans';
CREATE FUNCTION iqr_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_combine';
CREATE FUNCTION iqr_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_serial';
CREATE FUNCTION iqr_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_deserial';
CREATE FUNCTION iqr_final(internal) RETURNS iqr_bounds
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_final';

CREATE AGGREGATE iqr_bounds(x float8) (
    SFUNC = iqr_trans, STYPE = internal, SSPACE = 8192,
    FINALFUNC = iqr_final,
    COMBINEFUNC = iqr_combine, SERIALFUNC = iqr_serial, DESERIALFUNC = iqr_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE iqr_bounds(x float8, k float8) (
    SFUNC = iqr_trans, STYPE = internal, SSPACE = 8192,
    FINALFUNC = iqr_final,
    COMBINEFUNC = iqr_combine, SERIALFUNC = iqr_serial, DESERIALFUNC = iqr_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE iqr_bounds(float8) IS
'Exact quartiles of x (equal to percentile_cont(ARRAY[0.25, 0.5, 0.75])), the IQR and Tukey fences with k = 1.5. NULLs are skipped; NaN or infinite x raise ERROR 22023; no rows give NULL.';
COMMENT ON AGGREGATE iqr_bounds(float8, float8) IS
'Like iqr_bounds(x) with fences lower = q1 - k*iqr, upper = q3 + k*iqr; k must be finite, >= 0 and the same on every row (ERROR 22023 otherwise).';
COMMENT ON FUNCTION iqr_trans(internal, float8) IS 'Transition function of iqr_bounds(x).';
COMMENT ON FUNCTION iqr_trans(internal, float8, float8) IS 'Transition function of iqr_bounds(x, k).';
COMMENT ON FUNCTION iqr_combine(internal, internal) IS 'Combine function of iqr_bounds.';
COMMENT ON FUNCTION iqr_serial(internal) IS 'Serial function of iqr_bounds.';
COMMENT ON FUNCTION iqr_deserial(bytea, internal) IS 'Deserial function of iqr_bounds.';
COMMENT ON FUNCTION iqr_final(internal) IS 'Final function of iqr_bounds: computes quartiles and fences.';

------------------------------------------------------------------------------
-- Scalars
------------------------------------------------------------------------------
CREATE FUNCTION rfm_score(recency float8, frequency float8, monetary float8, breaks rfm_breaks)
    RETURNS rfm_score
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_score';
COMMENT ON FUNCTION rfm_score(float8, float8, float8, rfm_breaks) IS
'R, F and M scores (1..n, n best; low recency scores high) of one customer against population breaks: a value''s class is 1 + the number of cut points strictly below it, so ties share a score and collapsed cut points leave classes unused. segment and action come from the first matching rule of rfm_segment_rules (scores mapped to 1..5 when n <> 5). STABLE: reads the rule table once per statement. On a Citus worker, whose rule table is not the coordinator''s, ERROR 0A000: pass rfm_rules() as a fifth argument.';

CREATE FUNCTION rfm_rules() RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'priority', r.priority, 'segment', r.segment, 'action', r.action,
               'r_min', r.r_min, 'r_max', r.r_max, 'f_min', r.f_min, 'f_max', r.f_max,
               'm_min', r.m_min, 'm_max', r.m_max) ORDER BY r.priority, r.segment), '[]')
    FROM rfm_segment_rules r
    $$;
COMMENT ON FUNCTION rfm_rules() IS
'The segment rules in force (rfm_segment_rules, in priority order) as one jsonb value, for rfm_score(recency, frequency, monetary, breaks, rules): computed where the query is issued, it carries the rules to where scoring runs, for example Citus workers.';

CREATE FUNCTION rfm_score(recency float8, frequency float8, monetary float8, breaks rfm_breaks, rules jsonb)
    RETURNS rfm_score
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_score';
COMMENT ON FUNCTION rfm_score(float8, float8, float8, rfm_breaks, jsonb) IS
'rfm_score with the segment rules passed as a value (what rfm_rules() returns) instead of read from rfm_segment_rules: the form for queries whose scoring runs elsewhere, such as over Citus distributed tables (CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b, rfm_rules() AS rules FROM customers) k). Malformed rules: ERROR 22023.';

CREATE FUNCTION iqr_clip(x float8, b iqr_bounds) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_clip';
COMMENT ON FUNCTION iqr_clip(float8, iqr_bounds) IS
'x capped into [b.lower, b.upper] (winsorizing at the Tukey fences). NaN x raises ERROR 22023.';

CREATE FUNCTION iqr_is_outlier(x float8, b iqr_bounds) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'iqr_is_outlier';
COMMENT ON FUNCTION iqr_is_outlier(float8, iqr_bounds) IS
'True when x is below b.lower or above b.upper. NaN x raises ERROR 22023.';
