-- Incremental RFM: rfm_state folded in any grouping and order equals one pass of rfm.
-- The rows: every line of the generated data with a customer (purchases, and cancellations
-- as returns with negative amounts), with a tenth of the orders split across two days (some
-- of their lines moved one day later), so that orders span days and batches.
CREATE TABLE state_lines AS
SELECT customer_id, invoice, stock_code,
       invoice_date + CASE WHEN abs(hashtext(invoice)) % 10 = 0 AND abs(hashtext(stock_code)) % 2 = 0
                           THEN interval '1 day' ELSE interval '0' END AS ts,
       quantity * price AS amount
FROM retail_lines WHERE customer_id IS NOT NULL;

SELECT count(*) > 100000 AS many_lines,
       count(*) FILTER (WHERE amount < 0) > 100 AS has_returns,
       (SELECT count(*) FROM (SELECT invoice FROM state_lines GROUP BY invoice
                              HAVING count(DISTINCT ts::date) > 1) x) > 100 AS orders_span_days
FROM state_lines;

-- One pass of rfm over all rows (as_of after the last row, moved lines included).
CREATE TABLE state_one_pass AS
SELECT customer_id, (rfm(ts, amount, invoice, '2011-12-12 00:00+00')).*,
       (rfm(ts, amount, '2011-12-12 00:00+00')).frequency AS row_frequency
FROM state_lines GROUP BY customer_id;

-- The nightly pattern: states per customer and day, upserted day after day in date order
-- (ON CONFLICT folds), both forms.
CREATE TABLE state_nightly (customer_id int PRIMARY KEY, s rfm_state NOT NULL, r rfm_state NOT NULL);
DO $$
DECLARE
    d date;
BEGIN
    FOR d IN SELECT DISTINCT ts::date FROM state_lines ORDER BY 1 LOOP
        INSERT INTO state_nightly
        SELECT customer_id, rfm_state(ts, amount, invoice), rfm_state(ts, amount)
        FROM state_lines WHERE ts::date = d GROUP BY customer_id
        ON CONFLICT (customer_id) DO UPDATE
            SET s = rfm_merge(state_nightly.s, excluded.s), r = rfm_merge(state_nightly.r, excluded.r);
    END LOOP;
END $$;

-- Other groupings: per customer and month folded with the rfm_merge aggregate, and per
-- customer and an arbitrary third of the lines, folded newest first.
CREATE TABLE state_monthly AS
SELECT customer_id, rfm_merge(s ORDER BY m DESC) AS s
FROM (SELECT customer_id, date_trunc('month', ts) AS m, rfm_state(ts, amount, invoice) AS s
      FROM state_lines GROUP BY 1, 2) x
GROUP BY customer_id;
CREATE TABLE state_thirds AS
SELECT customer_id, rfm_merge(s ORDER BY part DESC) AS s
FROM (SELECT customer_id, abs(hashtext(invoice || stock_code)) % 3 AS part, rfm_state(ts, amount, invoice) AS s
      FROM state_lines GROUP BY 1, 2) x
GROUP BY customer_id;

-- Every field of every customer equals the one pass: exactly, monetary included.
SELECT 'nightly' AS folded, count(*) AS customers,
       count(*) FILTER (WHERE rfm_summary(n.s, '2011-12-12 00:00+00') IS DISTINCT FROM
                              ROW(o.recency, o.frequency, o.monetary, o.first_purchase, o.last_purchase,
                                  o.tenure, o.avg_order_value)::rfm_summary) AS differ,
       count(*) FILTER (WHERE (rfm_summary(n.r, '2011-12-12 00:00+00')).frequency <> o.row_frequency) AS rows_form_differ
FROM state_nightly n FULL JOIN state_one_pass o USING (customer_id)
UNION ALL
SELECT 'monthly', count(*),
       count(*) FILTER (WHERE rfm_summary(m.s, '2011-12-12 00:00+00') IS DISTINCT FROM
                              ROW(o.recency, o.frequency, o.monetary, o.first_purchase, o.last_purchase,
                                  o.tenure, o.avg_order_value)::rfm_summary), 0
FROM state_monthly m FULL JOIN state_one_pass o USING (customer_id)
UNION ALL
SELECT 'thirds', count(*),
       count(*) FILTER (WHERE rfm_summary(t.s, '2011-12-12 00:00+00') IS DISTINCT FROM
                              ROW(o.recency, o.frequency, o.monetary, o.first_purchase, o.last_purchase,
                                  o.tenure, o.avg_order_value)::rfm_summary), 0
FROM state_thirds t FULL JOIN state_one_pass o USING (customer_id);

-- The stored form is canonical: the three foldings store the same bytes.
SELECT count(*) FILTER (WHERE rfm_state_send(n.s) <> rfm_state_send(m.s)) AS nightly_vs_monthly,
       count(*) FILTER (WHERE rfm_state_send(m.s) <> rfm_state_send(t.s)) AS monthly_vs_thirds
FROM state_nightly n JOIN state_monthly m USING (customer_id) JOIN state_thirds t USING (customer_id);

-- Compact: bytes per customer (order-line form with the distinct invoice ids; row form).
SELECT round(avg(pg_column_size(s))) AS bytes_with_orders, round(avg(pg_column_size(r))) AS bytes_rows_form,
       round(avg(o.frequency), 1) AS orders_per_customer
FROM state_nightly JOIN state_one_pass o USING (customer_id);

-- Another as_of (customers whose rows all lie before it): the summaries equal rfm's with it.
SELECT count(*) AS customers_without_later_rows,
       count(*) FILTER (WHERE rfm_summary(s, '2011-06-01 00:00+00') IS DISTINCT FROM
                              (SELECT rfm(ts, amount, invoice, '2011-06-01 00:00+00') FROM state_lines l
                               WHERE l.customer_id = n.customer_id)) AS differ
FROM state_nightly n
WHERE customer_id IN (SELECT customer_id FROM state_lines GROUP BY 1 HAVING max(ts) <= '2011-06-01 00:00+00');

-- Parallel workers build and combine partial states: the same bytes as a serial plan.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE state_parallel AS
SELECT customer_id, rfm_state(ts, amount, invoice) AS s FROM state_lines GROUP BY customer_id;
CREATE TEMP TABLE merge_parallel AS
SELECT customer_id, rfm_merge(s) AS s FROM (SELECT customer_id, date_trunc('month', ts) m, rfm_state(ts, amount, invoice) s
                                            FROM state_lines GROUP BY 1, 2) x GROUP BY customer_id;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE rfm_state_send(p.s) <> rfm_state_send(n.s)) AS parallel_differs,
       count(*) FILTER (WHERE rfm_state_send(q.s) <> rfm_state_send(n.s)) AS parallel_merge_differs
FROM state_parallel p JOIN state_nightly n USING (customer_id) JOIN merge_parallel q USING (customer_id);

-- Text and binary forms round-trip.
SELECT count(*) FILTER (WHERE s::text::rfm_state::text <> s::text) AS text_round_trip_differs,
       count(*) FILTER (WHERE rfm_state_send(s::text::rfm_state) <> rfm_state_send(s)) AS bytes_differ
FROM state_nightly;

-- A hand-worked customer: order A on day 1 (two lines), order B on day 3, a return on day 4,
-- order A again on day 9 (a late line of the same order), as_of day 20.
SELECT (rfm_summary(rfm_merge(x.s, y.s), '2024-01-21 00:00+00')).*
FROM (SELECT rfm_state(ts, amount, id) s FROM (VALUES ('2024-01-02 00:00+00'::timestamptz, 10.25::float8, 'A'),
                                                      ('2024-01-02 00:00+00', 5.5, 'A'),
                                                      ('2024-01-04 00:00+00', 20, 'B')) v(ts, amount, id)) x,
     (SELECT rfm_state(ts, amount, id) s FROM (VALUES ('2024-01-05 00:00+00'::timestamptz, -5.5::float8, 'C'),
                                                      ('2024-01-10 00:00+00', 7.75, 'A')) v(ts, amount, id)) y;

-- The widest span PostgreSQL allows, from 4713 BC to 294276 AD, does not overflow: tenure
-- equals the difference of the two epochs computed in numeric (rfm and rfm_summary agree).
SELECT round(((rfm_summary(rfm_state(ts, 1.0), as_of)).tenure)::numeric, 3)
         = round((extract(epoch FROM as_of) - extract(epoch FROM ts)) / 86400, 3) AS state_tenure_exact,
       (rfm_summary(rfm_state(ts, 1.0), as_of)).tenure = (rfm(ts, 1.0, as_of)).tenure AS rfm_agrees
FROM (VALUES ('4713-11-24 00:00:00+00 BC'::timestamptz, '294276-12-31 23:59:59+00'::timestamptz)) v(ts, as_of)
GROUP BY ts, as_of;

-- NULLs: rows with a NULL are skipped; no rows gives NULL; rfm_merge with a NULL side.
SELECT rfm_state(ts, amount) IS NULL AS no_rows FROM state_lines WHERE false;
SELECT rfm_state(ts, amount, id) IS NULL AS only_null_rows
FROM (VALUES (NULL::timestamptz, 1.0::float8, 'a'), (now(), NULL, 'b'), (now(), 2.0, NULL)) v(ts, amount, id);
SELECT rfm_merge(s, NULL)::text = s::text AS left_kept, rfm_merge(NULL, s)::text = s::text AS right_kept,
       rfm_merge(NULL::rfm_state, NULL) IS NULL AS both_null, rfm_summary(NULL, now()) IS NULL AS summary_of_null
FROM state_nightly WHERE customer_id = (SELECT min(customer_id) FROM state_nightly);

-- Errors.
SELECT try_sql($q$SELECT rfm_summary(s, '2011-01-01 00:00+00') FROM state_nightly$q$) AS later_row;
SELECT bool_and(rfm_summary(s, NULL) IS NULL) AS null_as_of_gives_null FROM state_nightly;
SELECT try_sql($q$SELECT rfm_summary(s, 'infinity') FROM state_nightly$q$) AS infinite_as_of;
SELECT try_sql($q$SELECT rfm_merge(s, r) FROM state_nightly$q$) AS mixed_forms;
SELECT try_sql($q$SELECT rfm_merge(x) FROM (SELECT s FROM state_nightly UNION ALL SELECT r FROM state_nightly) y(x)$q$) AS mixed_forms_aggregate;
SELECT try_sql($q$SELECT rfm_state(ts, 'NaN', 'x') FROM (VALUES (now())) v(ts)$q$) AS nan_amount;
SELECT try_sql($q$SELECT rfm_state('infinity', 1.0, 'x')$q$) AS infinite_ts;
SELECT try_sql($q$SELECT 'xyz'::rfm_state$q$) AS odd_digits;
SELECT try_sql($q$SELECT 'zz'::rfm_state$q$) AS not_hex;
SELECT try_sql($q$SELECT '525301'::rfm_state$q$) AS truncated;
SELECT try_sql($q$SELECT '0000'::rfm_state$q$) AS wrong_magic;
-- A stored state damaged (its kind byte): a clear XX001.
SELECT try_sql(format($q$SELECT rfm_summary(%L::rfm_state, now())$q$,
       overlay(s::text PLACING '02' FROM 7 FOR 2))) AS damaged
FROM state_nightly WHERE customer_id = (SELECT min(customer_id) FROM state_nightly);

-- rfm(order_ts, amount, order_id, line, as_of): raw lines with exact duplicates count once,
-- as after SELECT DISTINCT. Reference: plain SQL over SELECT DISTINCT of every column.
SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM retail_lines) d) > 1000 AS has_duplicate_lines
FROM retail_lines;
CREATE TABLE unique_lines_ref AS
SELECT customer_id,
       extract(epoch FROM '2011-12-10 00:00+00' - max(invoice_date) FILTER (WHERE quantity * price >= 0))::float8 / 86400 AS recency,
       count(DISTINCT invoice) FILTER (WHERE quantity * price >= 0) AS frequency,
       sum(quantity * price) AS monetary,
       min(invoice_date) FILTER (WHERE quantity * price >= 0) AS first_purchase
FROM (SELECT DISTINCT * FROM retail_lines WHERE customer_id IS NOT NULL) d
GROUP BY customer_id;
CREATE TABLE unique_lines_serial AS
SELECT customer_id,
       rfm(invoice_date, quantity * price, invoice, concat_ws('|', stock_code, quantity, price, country),
           '2011-12-10 00:00+00') AS r
FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (r).frequency IS DISTINCT FROM f.frequency
                           OR (r).recency IS DISTINCT FROM f.recency
                           OR (r).first_purchase IS DISTINCT FROM f.first_purchase
                           OR abs((r).monetary - f.monetary) > 1e-9 * greatest(1, abs(f.monetary))) AS differ,
       count(*) FILTER (WHERE (r).monetary <> (SELECT sum(quantity * price) FROM retail_lines l
                                                WHERE l.customer_id = u.customer_id)) > 100 AS duplicates_mattered
FROM unique_lines_serial u FULL JOIN unique_lines_ref f USING (customer_id);

-- Parallel workers split duplicate pairs between them: the same summaries, bit for bit.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE unique_lines_parallel AS
SELECT customer_id,
       rfm(invoice_date, quantity * price, invoice, concat_ws('|', stock_code, quantity, price, country),
           '2011-12-10 00:00+00') AS r
FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS customers, count(*) FILTER (WHERE p.r IS DISTINCT FROM s.r) AS parallel_differs
FROM unique_lines_parallel p FULL JOIN unique_lines_serial s USING (customer_id);

-- Hand-worked: order A has line x twice (once more as a NULL line, which is a line of its
-- own, and once as '' which is another), order B a line of 0 and one of -0 (the same line),
-- order C a return listed twice. Distinct lines: A x 10, A NULL 10, A '' 10, B 0, C -4.
SELECT (rfm(ts, amount, id, line, '2024-01-11 00:00+00')).*
FROM (VALUES ('2024-01-01 00:00+00'::timestamptz, 10::float8, 'A', 'x'),
             ('2024-01-01 00:00+00', 10, 'A', 'x'),
             ('2024-01-01 00:00+00', 10, 'A', NULL),
             ('2024-01-01 00:00+00', 10, 'A', ''),
             ('2024-01-01 00:00+00', 10, 'A', NULL),
             ('2024-01-06 00:00+00', 0, 'B', 'y'),
             ('2024-01-06 00:00+00', '-0', 'B', 'y'),
             ('2024-01-08 00:00+00', -4, 'C', 'x'),
             ('2024-01-08 00:00+00', -4, 'C', 'x')) v(ts, amount, id, line);

-- As a running window aggregate (the final function is called after every row, and rows
-- keep coming): each row's summary counts the distinct lines so far.
SELECT n, (r).frequency, (r).monetary
FROM (SELECT n, rfm(ts, amount, id, line, '2024-01-11 00:00+00') OVER (ORDER BY n) AS r
      FROM (VALUES (1, '2024-01-01 00:00+00'::timestamptz, 10::float8, 'A', 'x'),
                   (2, '2024-01-01 00:00+00', 10, 'A', 'x'),
                   (3, '2024-01-02 00:00+00', 5, 'B', 'x'),
                   (4, '2024-01-01 00:00+00', 10, 'A', 'x'),
                   (5, '2024-01-02 00:00+00', 5, 'B', 'y')) v(n, ts, amount, id, line)) w
ORDER BY n;

-- rfm_state(order_ts, amount, order_id, line): the nightly refresh of raw lines that come
-- twice. Each night's batch holds the lines of its day (with the raw data's duplicates
-- inside the day) and again a fifth of the previous day's lines (a feed that resends), and
-- one night is folded twice by mistake. The folded states equal one pass of
-- rfm(order_ts, amount, order_id, line, as_of) over all lines exactly, and store the bytes
-- of one rfm_state over all of them.
CREATE TABLE line_batches AS
SELECT invoice_date::date AS night, customer_id, invoice, invoice_date, quantity * price AS amount,
       concat_ws('|', stock_code, quantity, price, country) AS line
FROM retail_lines WHERE customer_id IS NOT NULL
UNION ALL
SELECT invoice_date::date + 1, customer_id, invoice, invoice_date, quantity * price,
       concat_ws('|', stock_code, quantity, price, country)
FROM retail_lines WHERE customer_id IS NOT NULL AND abs(hashtext(invoice || stock_code)) % 5 = 0;
SELECT (SELECT count(*) FROM line_batches) - (SELECT count(*) FROM (SELECT DISTINCT customer_id, invoice, invoice_date, amount, line
                                                                   FROM line_batches) d) > 10000 AS lines_come_twice;
CREATE INDEX ON line_batches (night);
ANALYZE line_batches;
CREATE TABLE line_states (customer_id int PRIMARY KEY, s rfm_state NOT NULL);
DO $$
DECLARE
    d date;
BEGIN
    FOR d IN SELECT DISTINCT night FROM line_batches ORDER BY 1 LOOP
        INSERT INTO line_states
        SELECT customer_id, rfm_state(invoice_date, amount, invoice, line)
        FROM line_batches WHERE night = d GROUP BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET s = rfm_merge(line_states.s, excluded.s);
    END LOOP;
    -- One night folded again by mistake.
    INSERT INTO line_states
    SELECT customer_id, rfm_state(invoice_date, amount, invoice, line)
    FROM line_batches WHERE night = (SELECT min(night) + 10 FROM line_batches) GROUP BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET s = rfm_merge(line_states.s, excluded.s);
END $$;
CREATE TABLE line_state_once AS
SELECT customer_id, rfm_state(invoice_date, quantity * price, invoice, concat_ws('|', stock_code, quantity, price, country)) AS s
FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE rfm_summary(n.s, '2011-12-10 00:00+00') IS DISTINCT FROM u.r) AS differ_from_rfm,
       count(*) FILTER (WHERE (rfm_summary(n.s, '2011-12-10 00:00+00')).monetary::text <> ((u.r).monetary)::text) AS monetary_text_differs,
       count(*) FILTER (WHERE n.s::text IS DISTINCT FROM o.s::text) AS bytes_differ_from_one_state
FROM line_states n FULL JOIN unique_lines_serial u USING (customer_id) FULL JOIN line_state_once o USING (customer_id);
-- Without the line (the order-id form), the same nights count the resent lines again.
SELECT count(*) FILTER (WHERE (rfm_summary(s, '2011-12-10 00:00+00')).monetary <> (u.r).monetary) > 100 AS order_id_form_double_counts
FROM (SELECT customer_id, rfm_state(invoice_date, amount, invoice) AS s FROM line_batches GROUP BY customer_id) x
JOIN unique_lines_serial u USING (customer_id);
-- Monthly states folded with the rfm_merge aggregate, and a parallel plan: the same bytes.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE line_state_parallel AS
SELECT customer_id, rfm_state(invoice_date, amount, invoice, line) AS s FROM line_batches GROUP BY customer_id;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT count(*) FILTER (WHERE m.s::text IS DISTINCT FROM o.s::text) AS monthly_differ,
       count(*) FILTER (WHERE p.s::text IS DISTINCT FROM o.s::text) AS parallel_differ
FROM (SELECT customer_id, rfm_merge(s ORDER BY month DESC) AS s
      FROM (SELECT customer_id, date_trunc('month', night) AS month, rfm_state(invoice_date, amount, invoice, line) AS s
            FROM line_batches GROUP BY 1, 2) x GROUP BY 1) m
FULL JOIN line_state_once o USING (customer_id) FULL JOIN line_state_parallel p USING (customer_id);
-- Hand-worked: the rfm hand case above as two batches that overlap (the A x line in both).
SELECT (rfm_summary(rfm_merge(a, b), '2024-01-11 00:00+00')).*
FROM (SELECT rfm_state(ts, amount, id, line) AS a
      FROM (VALUES ('2024-01-01 00:00+00'::timestamptz, 10::float8, 'A', 'x'),
                   ('2024-01-01 00:00+00', 10, 'A', 'x'),
                   ('2024-01-01 00:00+00', 10, 'A', NULL),
                   ('2024-01-01 00:00+00', 10, 'A', '')) v(ts, amount, id, line)) x,
     (SELECT rfm_state(ts, amount, id, line) AS b
      FROM (VALUES ('2024-01-01 00:00+00'::timestamptz, 10::float8, 'A', 'x'),
                   ('2024-01-01 00:00+00', 10, 'A', NULL),
                   ('2024-01-06 00:00+00', 0, 'B', 'y'),
                   ('2024-01-06 00:00+00', '-0', 'B', 'y'),
                   ('2024-01-08 00:00+00', -4, 'C', 'x'),
                   ('2024-01-08 00:00+00', -4, 'C', 'x')) v(ts, amount, id, line)) y;
-- The forms do not mix.
SELECT try_sql($q$SELECT rfm_merge(rfm_state(now(), 1.0, 'A', 'x'), rfm_state(now(), 1.0, 'A'))$q$) AS line_with_order_form;

-- Errors, as in the other forms.
SELECT try_sql($q$SELECT rfm(now(), 'NaN', 'A', 'x', now())$q$) AS nan_amount;
SELECT try_sql($q$SELECT rfm(now(), 1.0, 'A', 'x', NULL)$q$) AS null_as_of;
SELECT try_sql($q$SELECT rfm('2024-02-01 00:00+00', 1.0, 'A', 'x', '2024-01-01 00:00+00')$q$) AS row_after_as_of;
