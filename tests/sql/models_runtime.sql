-- Models at run time: the model is read once per query, assignment runs in parallel
-- workers, and cancellation stops training promptly without touching the active version.
SET client_min_messages = warning;

-- The active version is read once per query (per process), never once per row:
-- rfm_model_export is what loads it, and track_functions counts its calls.
SET track_functions = 'all';
BEGIN;
SELECT count(DISTINCT rfm_segment('auto', recency, frequency, monetary)) AS segments,
       count(*) AS rows_assigned
FROM groups CROSS JOIN generate_series(1, 10);
SELECT calls AS model_loads FROM pg_stat_xact_user_functions WHERE funcname = 'rfm_model_export';
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
