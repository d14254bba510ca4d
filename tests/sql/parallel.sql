-- The aggregates run as partial aggregates in parallel workers and give the serial result.

-- Plan shape of an EXPLAIN ANALYZE: the aggregate strategies and launched workers,
-- without the row counts that vary between runs. Runs the statement.
CREATE FUNCTION pg_temp.plan_shape(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    nodes text[] := '{}';
    launched int := 0;
    n json;
    stack json[];
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q INTO plan;
    stack := ARRAY[plan -> 0 -> 'Plan'];
    WHILE array_length(stack, 1) > 0 LOOP
        n := stack[1];
        stack := stack[2:];
        IF n ->> 'Node Type' = 'Aggregate' THEN
            nodes := nodes || ((n ->> 'Partial Mode') || ' ' || (n ->> 'Strategy'));
        END IF;
        launched := launched + coalesce((n ->> 'Workers Launched')::int, 0);
        IF n -> 'Plans' IS NOT NULL THEN
            stack := stack || ARRAY(SELECT json_array_elements(n -> 'Plans'));
        END IF;
    END LOOP;
    RETURN array_to_string(nodes, ' > ') || CASE WHEN launched > 0 THEN ', workers launched' ELSE ', no workers' END;
END $$;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

SELECT pg_temp.plan_shape($$CREATE TEMP TABLE par_whole AS
    SELECT rfm(invoice_date, quantity * price, '2011-12-10 00:00+00') AS a,
           rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00') AS b,
           iqr_bounds(price) AS c, iqr_bounds(price, 3) AS d,
           rfm_breaks(price, quantity, quantity * price) AS e,
           rfm_breaks(price, quantity, quantity * price, 4) AS f
    FROM retail_lines WHERE customer_id IS NOT NULL$$);

SELECT pg_temp.plan_shape($$CREATE TEMP TABLE par_grouped AS
    SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00') AS r,
           iqr_bounds(price) AS q
    FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id$$);

SET max_parallel_workers_per_gather = 0;

SELECT pg_temp.plan_shape($$CREATE TEMP TABLE ser_whole AS
    SELECT rfm(invoice_date, quantity * price, '2011-12-10 00:00+00') AS a,
           rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00') AS b,
           iqr_bounds(price) AS c, iqr_bounds(price, 3) AS d,
           rfm_breaks(price, quantity, quantity * price) AS e,
           rfm_breaks(price, quantity, quantity * price, 4) AS f
    FROM retail_lines WHERE customer_id IS NOT NULL$$);

SELECT pg_temp.plan_shape($$CREATE TEMP TABLE ser_grouped AS
    SELECT customer_id, rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00') AS r,
           iqr_bounds(price) AS q
    FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id$$);

RESET max_parallel_workers_per_gather;

-- Identical results; sums of floats may differ in the last bits with the order of addition.
SELECT (p.a).frequency = (s.a).frequency AND (p.a).recency = (s.a).recency
       AND abs((p.a).monetary - (s.a).monetary) < 1e-6 AS rfm_equal,
       (p.b).frequency = (s.b).frequency AND abs((p.b).monetary - (s.b).monetary) < 1e-6 AS rfm_lines_equal,
       p.c = s.c AND p.d = s.d AS iqr_equal,
       p.e = s.e AND p.f = s.f AS breaks_equal
FROM par_whole p, ser_whole s;

SELECT count(*) AS customers,
       count(*) FILTER (WHERE NOT ((p.r).frequency = (s.r).frequency
                                   AND (p.r).recency = (s.r).recency
                                   AND (p.r).first_purchase = (s.r).first_purchase
                                   AND abs((p.r).monetary - (s.r).monetary) <= 1e-9 * greatest(1, abs((s.r).monetary))
                                   AND p.q = s.q)) AS mismatches
FROM par_grouped p FULL JOIN ser_grouped s USING (customer_id);
