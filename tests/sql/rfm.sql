-- rfm(order_ts, amount, as_of) and rfm(order_ts, amount, order_id, as_of)

-- Hand-worked case. Customer 1: orders on Jan 1 (100), Jan 11 (50), Jan 31 12:00 (25),
-- a return on Feb 1 (-20); as_of Feb 10. recency = 9.5 days, tenure = 40 days,
-- frequency 3, monetary 155, avg order value 155/3.
-- Customer 2: two lines of order A and one of B on one day, plus a NULL amount (skipped).
CREATE TEMP TABLE tx (cust int, ts timestamptz, amount float8, order_id text);
INSERT INTO tx VALUES
  (1, '2024-01-01 00:00+00', 100, 'o1'), (1, '2024-01-11 00:00+00', 50, 'o2'),
  (1, '2024-01-31 12:00+00', 25, 'o3'), (1, '2024-02-01 00:00+00', -20, 'r1'),
  (2, '2024-02-09 00:00+00', 10, 'A'), (2, '2024-02-09 00:00+00', 5, 'A'),
  (2, '2024-02-09 00:00+00', 7, 'B'), (2, '2024-02-09 06:00+00', NULL, 'B');

SELECT cust,
       recency = 9.5 AND tenure = 40                                   AS days_ok,
       frequency = 3                                                   AS freq_ok,
       monetary = 155                                                  AS monetary_ok,
       first_purchase = '2024-01-01 00:00+00' AND last_purchase = '2024-01-31 12:00+00' AS dates_ok,
       abs(avg_order_value - 155.0 / 3) < 1e-12                        AS aov_ok
FROM (SELECT cust, (rfm(ts, amount, '2024-02-10 00:00+00')).* FROM tx WHERE cust = 1 GROUP BY cust) r;

-- Order lines: customer 1's return r1 is not an order; customer 2 has 3 purchase lines in
-- 2 distinct orders (A, B), 1 day before as_of, monetary 10 + 5 + 7 = 22.
SELECT cust,
       r.frequency = e.frequency AND r.monetary = e.monetary AND r.recency = e.recency
       AND r.tenure = e.tenure AND r.avg_order_value = e.monetary / e.frequency AS as_expected
FROM (SELECT cust, (rfm(ts, amount, order_id, '2024-02-10 00:00+00')).* FROM tx GROUP BY cust) r
JOIN (VALUES (1, 3, 155.0, 9.5, 40.0), (2, 2, 22.0, 1.0, 1.0))
     AS e(cust, frequency, monetary, recency, tenure) USING (cust)
ORDER BY cust;

-- Only returns: no purchase, so recency, dates and average are NULL, frequency 0.
SELECT (rfm(ts, amount, '2024-02-10 00:00+00')).* FROM tx WHERE amount < 0;

-- No rows, or only rows with NULLs: NULL, like max().
SELECT rfm(ts, amount, '2024-02-10 00:00+00') IS NULL AS empty_is_null FROM tx WHERE false;
SELECT rfm(ts, amount, '2024-02-10 00:00+00') IS NULL AS nulls_only_is_null FROM tx WHERE amount IS NULL;

-- Generated data, one order per row: equals max / count / sum / min, customer by customer.
WITH a AS (
    SELECT customer_id, (rfm(invoice_date, amount, '2011-12-10 00:00+00')).*
    FROM clean_lines GROUP BY customer_id
), b AS (
    SELECT customer_id,
           extract(epoch FROM '2011-12-10 00:00+00'::timestamptz - max(invoice_date)) / 86400 AS recency,
           extract(epoch FROM '2011-12-10 00:00+00'::timestamptz - min(invoice_date)) / 86400 AS tenure,
           count(*) AS frequency, sum(amount) AS monetary,
           min(invoice_date) AS first_purchase, max(invoice_date) AS last_purchase
    FROM clean_lines GROUP BY customer_id
)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE NOT (
           abs(a.recency - b.recency) < 1e-9 AND abs(a.tenure - b.tenure) < 1e-9
           AND a.frequency = b.frequency
           AND abs(a.monetary - b.monetary) <= 1e-9 * greatest(1, abs(b.monetary))
           AND abs(a.avg_order_value - b.monetary / b.frequency) <= 1e-9 * greatest(1, abs(b.monetary))
           AND a.first_purchase = b.first_purchase AND a.last_purchase = b.last_purchase)
           OR a.customer_id IS NULL OR b.customer_id IS NULL) AS mismatches
FROM a FULL JOIN b USING (customer_id);

-- Generated data, order lines: frequency is count(DISTINCT invoice).
SELECT count(*) AS customers,
       count(*) FILTER (WHERE NOT (r.frequency = p.orders
           AND abs(r.monetary - p.monetary) <= 1e-9 * greatest(1, abs(p.monetary))
           AND r.last_purchase = p.last_ts)) AS mismatches
FROM customer_rfm r
JOIN (SELECT customer_id, count(DISTINCT invoice) AS orders, sum(amount) AS monetary,
             max(invoice_date) AS last_ts
      FROM clean_lines GROUP BY customer_id) p USING (customer_id);

-- Raw lines with cancellations kept: negative lines lower monetary and are not orders.
WITH a AS (
    SELECT customer_id, (rfm(invoice_date, quantity * price, invoice, '2011-12-10 00:00+00')).*
    FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id
), b AS (
    SELECT customer_id,
           count(DISTINCT invoice) FILTER (WHERE quantity * price >= 0) AS frequency,
           sum(quantity * price) AS monetary,
           max(invoice_date) FILTER (WHERE quantity * price >= 0) AS last_purchase
    FROM retail_lines WHERE customer_id IS NOT NULL GROUP BY customer_id
)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE NOT (abs(a.monetary - b.monetary) <= 1e-9 * greatest(1, abs(b.monetary))
                          AND a.frequency = b.frequency
                          AND a.last_purchase IS NOT DISTINCT FROM b.last_purchase)) AS mismatches,
       count(*) FILTER (WHERE a.frequency = 0) AS returns_only
FROM a JOIN b USING (customer_id);
