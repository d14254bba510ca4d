-- Loads the generated retail data (scripts/test.sh: rfm-gen --lines 120000 --customers 1500 --seed 7)
-- and builds the cleaned lines and per-customer RFM table the other tests use.
\getenv rfm_data RFM_DATA
CREATE TABLE retail_lines (
    invoice      text,
    stock_code   text,
    quantity     int,
    invoice_date timestamptz,
    price        float8,
    customer_id  int,
    country      text
);
COPY retail_lines FROM :'rfm_data';
ANALYZE retail_lines;

-- The generator's output has the shape and the dirt the demo relies on.
SELECT count(*) > 100000                                        AS enough_lines,
       count(DISTINCT customer_id)                              AS customers,
       count(*) FILTER (WHERE invoice LIKE 'C%') > 0            AS has_cancellations,
       bool_and(quantity < 0) FILTER (WHERE invoice LIKE 'C%')  AS cancellations_negative,
       bool_and(quantity > 0) FILTER (WHERE invoice NOT LIKE 'C%') AS others_positive,
       count(*) FILTER (WHERE customer_id IS NULL) > 0          AS has_guest_lines,
       max(quantity) > 10000                                    AS has_extreme_quantity,
       count(*) FILTER (WHERE price = 0) > 0                    AS has_zero_prices,
       min(invoice_date) >= '2009-12-01' AND max(invoice_date) < '2011-12-10' AS two_years
FROM retail_lines;

SELECT count(*) > 0 AS has_exact_duplicates
FROM (SELECT 1 FROM retail_lines GROUP BY retail_lines.* HAVING count(*) > 1) d;

-- The analysts' cleaning: no cancellations, no guests, no duplicates, positive amounts.
CREATE VIEW clean_lines AS
SELECT DISTINCT invoice, stock_code, quantity, invoice_date, price, customer_id, country,
       quantity * price AS amount
FROM retail_lines
WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0;

CREATE TABLE customer_rfm AS
SELECT customer_id, (rfm(invoice_date, amount, invoice, '2011-12-10 00:00+00')).*
FROM clean_lines
GROUP BY customer_id;

SELECT count(*) AS customers, bool_and(frequency >= 1) AS all_bought FROM customer_rfm;

-- Runs a statement and shows its outcome as 'ok' or 'SQLSTATE: message' (bad-input tests).
CREATE FUNCTION try_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- The same, with the error's DETAIL and HINT (for tests of what a message advises).
CREATE FUNCTION try_sql_verbose(q text, OUT outcome text, OUT detail text, OUT hint text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    outcome := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    outcome := SQLSTATE || ': ' || SQLERRM;
    detail := nullif(detail, '');
    hint := nullif(hint, '');
END $$;
