-- Models at run time: the model is read once per query, assignment runs in parallel
-- workers, and cancellation stops training promptly without touching the active version.
SET client_min_messages = warning;

-- The active version is read once per query (per process), never once per row:
-- rfm_model_export is what loads it, and track_functions counts its calls. (PostgreSQL 15
-- flushes function statistics at most once a second, so pg_stat_xact_user_functions may
-- still hold calls of earlier transactions: loads are counted as a difference.)
SET track_functions = 'all';
CREATE FUNCTION pg_temp.export_calls() RETURNS bigint LANGUAGE sql AS
$$ SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions WHERE funcid = 'rfm_model_export(text)'::regprocedure), 0) $$;
BEGIN;
SELECT pg_temp.export_calls() AS calls_before \gset
SELECT count(DISTINCT rfm_segment('auto', recency, frequency, monetary)) AS segments,
       count(*) AS rows_assigned
FROM groups CROSS JOIN generate_series(1, 10);
SELECT pg_temp.export_calls() - :calls_before AS model_loads;
COMMIT;
RESET track_functions;

-- Assignment in parallel workers equals the serial result.
CREATE FUNCTION pg_temp.workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO plan;
    RETURN coalesce((regexp_match(plan::text, '"Workers Launched": (\d+)'))[1]::int, 0);
END $$;
CREATE TABLE big_customers AS
SELECT c.customer_id * 100 + i AS id, c.recency, c.frequency, c.monetary
FROM customer_rfm c, generate_series(1, 40) i;
ANALYZE big_customers;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- (CREATE TABLE AS assigns a transaction id: the model must still load in parallel mode.)
SELECT pg_temp.workers_launched($$CREATE TEMP TABLE par_seg AS
    SELECT rfm_segment('shop', recency, frequency, monetary) AS segment,
           (rfm_score(recency, frequency, monetary, ROW(5, '{10,30,90,200}', '{1,2,4,8}', '{100,300,900,2000}')::rfm_breaks)).segment AS rule_segment,
           count(*) AS n
    FROM big_customers GROUP BY 1, 2$$) > 0 AS parallel;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ser_seg AS
SELECT rfm_segment('shop', recency, frequency, monetary) AS segment,
       (rfm_score(recency, frequency, monetary, ROW(5, '{10,30,90,200}', '{1,2,4,8}', '{100,300,900,2000}')::rfm_breaks)).segment AS rule_segment,
       count(*) AS n
FROM big_customers GROUP BY 1, 2;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS groups,
       count(*) FILTER (WHERE p.n IS DISTINCT FROM s.n) AS mismatches
FROM par_seg p FULL JOIN ser_seg s USING (segment, rule_segment);

-- statement_timeout stops a long training within a second of the limit, and the
-- previous active version stays active and usable.
CREATE TABLE many AS
SELECT (random() * 700)::float8 AS recency, (1 + random() * random() * 60)::float8 AS frequency,
       (random() * random() * 20000)::float8 AS monetary
FROM generate_series(1, 200000);
SELECT version FROM rfm_train('long', 'groups', k => 2);

CREATE FUNCTION pg_temp.timed(q text) RETURNS TABLE (outcome text, within_a_second_of_limit boolean)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    BEGIN
        EXECUTE q;
        outcome := 'finished';
    EXCEPTION WHEN query_canceled OR others THEN
        outcome := SQLSTATE || ': ' || SQLERRM;
    END;
    within_a_second_of_limit := clock_timestamp() - t0 < interval '1.3 seconds';
    RETURN NEXT;
END $$;
SET statement_timeout = '300ms';
SELECT * FROM pg_temp.timed($$SELECT rfm_train('long', 'many', k_min => 2, k_max => 10, n_init => 20)$$);
RESET statement_timeout;
SELECT version, k FROM rfm_models WHERE model = 'long' AND active;
SELECT count(DISTINCT rfm_cluster('long', recency, frequency, monetary)) AS clusters FROM groups;
RESET client_min_messages;

-- One call site, many models (one per region, store, ...): each model is loaded once per
-- statement whatever the order of the names, and every row gets its own model's answer.
-- (Loads are counted in one process: no parallel workers.)
SET client_min_messages = warning;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT version FROM rfm_train('m1', 'groups', k => 2);
SELECT version FROM rfm_train('m2', 'groups', k => 3);
SET track_functions = 'all';
BEGIN;
SELECT pg_temp.export_calls() AS calls_before \gset
SELECT count(*) AS rows_assigned, count(DISTINCT rfm_segment('m' || (1 + s.n % 2), recency, frequency, monetary)) AS labels
FROM groups CROSS JOIN generate_series(1, 10) s(n);
SELECT pg_temp.export_calls() - :calls_before AS model_loads;
COMMIT;
RESET track_functions;
SELECT count(*) FILTER (WHERE rfm_segment('m' || (1 + s.n % 2), recency, frequency, monetary)
                              IS DISTINCT FROM CASE s.n % 2 WHEN 0 THEN rfm_segment('m1', recency, frequency, monetary)
                                                          ELSE rfm_segment('m2', recency, frequency, monetary) END) AS mismatches
FROM groups CROSS JOIN generate_series(1, 10) s(n);

-- More models than one call site keeps (64): the least recently used are reloaded, and
-- answers stay right.
SELECT count(*) AS copies FROM generate_series(1, 70) s(n), rfm_model_import(rfm_model_export('m2'), 'copy_' || s.n);
SET track_functions = 'all';
BEGIN;
SELECT pg_temp.export_calls() AS calls_before \gset
WITH numbered AS (SELECT row_number() OVER () AS rn, g.* FROM groups g CROSS JOIN generate_series(1, 6))
SELECT count(*) AS rows_assigned,
       count(*) FILTER (WHERE rfm_cluster('copy_' || (1 + rn % 70), recency, frequency, monetary)
                              IS DISTINCT FROM rfm_cluster('m2', recency, frequency, monetary)) AS mismatches
FROM numbered;
SELECT pg_temp.export_calls() - :calls_before > 70 AS reloaded_after_eviction;
COMMIT;
RESET track_functions;

-- PL/pgSQL keeps a simple expression's call site for the whole transaction: a model
-- retrained (here: re-imported with other labels) between two evaluations is seen by the
-- second one, and so is a rule edit.
SELECT version FROM rfm_model_import(rfm_model_export('m2'), 'flip');
UPDATE rfm_centroids SET label = 'old ' || label WHERE model = 'flip';
CREATE FUNCTION pg_temp.retrain_between() RETURNS TABLE (pass int, assigned text, scored text)
LANGUAGE plpgsql AS $$
DECLARE
    b rfm_breaks := ROW(5, '{10,30,90,200}', '{1,2,4,8}', '{100,300,900,2000}')::rfm_breaks;
BEGIN
    FOR p IN 1..2 LOOP
        pass := p;
        assigned := rfm_segment('flip', 400, 1, 10);
        scored := (rfm_score(5, 9, 2500, b)).segment;
        RETURN NEXT;
        PERFORM rfm_model_import(rfm_model_export('m2'), 'flip');
        UPDATE rfm_segment_rules r SET segment = 'Renamed Champions' WHERE r.segment = 'Champions';
    END LOOP;
END $$;
BEGIN;
SELECT r.pass, r.assigned, r.assigned = rfm_segment('m2', 400, 1, 10) AS current_labels, r.scored
FROM pg_temp.retrain_between() r;
ROLLBACK;
RESET client_min_messages;
RESET max_parallel_workers_per_gather;
