-- The segmentation workflow of a retail analyst, in SQL, on raw invoice lines in
-- retail_lines (loaded by scripts/demo.sh from the rfm-gen generator).
\set ON_ERROR_STOP on
\pset footer off
\timing off

\echo
\echo '== 1. Raw data: the dirt real invoice data has'
SELECT count(*)                                          AS lines,
       count(DISTINCT invoice)                           AS invoices,
       count(DISTINCT customer_id)                       AS customers,
       count(*) FILTER (WHERE invoice LIKE 'C%')         AS cancelled_lines,
       count(*) FILTER (WHERE customer_id IS NULL)       AS lines_without_customer,
       count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM retail_lines) d) AS duplicate_lines,
       min(invoice_date)::date                           AS first_day,
       max(invoice_date)::date                           AS last_day
FROM retail_lines;

\echo
\echo '== 2. Clean: drop cancellations, guests, duplicates and non-positive amounts'
CREATE VIEW clean_lines AS
SELECT DISTINCT invoice, stock_code, quantity, invoice_date, price, customer_id, country,
       quantity * price AS amount
FROM retail_lines
WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0 AND price > 0;

\echo
\echo '== 3. RFM per customer with one aggregate (order lines: frequency = distinct invoices)'
CREATE TABLE customer_rfm AS
SELECT customer_id, (rfm(invoice_date, amount, invoice, '2011-12-10 00:00+00')).*
FROM clean_lines
GROUP BY customer_id;
SELECT customer_id, round(recency::numeric, 1) AS recency_days, frequency,
       round(monetary::numeric, 2) AS monetary, round(avg_order_value::numeric, 2) AS avg_order
FROM customer_rfm ORDER BY monetary DESC LIMIT 5;

\echo
\echo '== 4. Outliers: IQR fences on monetary (Tukey, k = 1.5)'
SELECT round((b).q1::numeric, 2) AS q1, round((b).median::numeric, 2) AS median,
       round((b).q3::numeric, 2) AS q3, round((b).upper::numeric, 2) AS upper_fence,
       (SELECT count(*) FROM customer_rfm WHERE iqr_is_outlier(monetary, b)) AS outliers
FROM (SELECT iqr_bounds(monetary) AS b FROM customer_rfm) s;

\echo
\echo '== 5. Quintile breaks of the population'
SELECT 'recency' AS feature, (b).recency::numeric(10,1)[] AS cut_points FROM (SELECT rfm_breaks(recency, frequency, monetary) b FROM customer_rfm) k
UNION ALL
SELECT 'frequency', (b).frequency::numeric(10,1)[] FROM (SELECT rfm_breaks(recency, frequency, monetary) b FROM customer_rfm) k
UNION ALL
SELECT 'monetary', (b).monetary::numeric(10,1)[] FROM (SELECT rfm_breaks(recency, frequency, monetary) b FROM customer_rfm) k;

\echo
\echo '== 6. Scores and segments (rules in rfm_segment_rules, editable)'
CREATE TABLE customer_segments AS
SELECT c.customer_id, c.recency, c.frequency, c.monetary, s.r, s.f, s.m, s.code, s.segment, s.action
FROM customer_rfm c
CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM customer_rfm) k
CROSS JOIN LATERAL rfm_score(c.recency, c.frequency, c.monetary, k.b) s;

SELECT segment,
       count(*)                                                           AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1)                 AS pct_customers,
       round(avg(recency)::numeric, 0)                                    AS avg_recency,
       round(avg(frequency)::numeric, 1)                                  AS avg_frequency,
       round(avg(monetary)::numeric, 0)                                   AS avg_monetary,
       round((100.0 * sum(monetary) / sum(sum(monetary)) OVER ())::numeric, 1) AS pct_revenue
FROM customer_segments
GROUP BY segment
ORDER BY sum(monetary) DESC;

\echo
\echo '== 7. What to do with each segment'
SELECT segment, min(action) AS recommended_action
FROM customer_segments GROUP BY segment ORDER BY sum(monetary) DESC;

\echo
\echo '== 8. KMeans segmentation: IQR clip, log, standardize, k chosen by the elbow of k = 2..10'
SET client_min_messages = warning;
SELECT model, version, k, n_rows, round(silhouette::numeric, 3) AS silhouette,
       round(davies_bouldin::numeric, 3) AS davies_bouldin, round(elapsed_ms::numeric) AS ms
FROM rfm_train('demo', 'customer_rfm', select_k => 'elbow');
RESET client_min_messages;

\echo
\echo '== 9. The k search curve (elbow and silhouette)'
SELECT k, round(inertia::numeric, 1) AS inertia, round(silhouette::numeric, 3) AS silhouette,
       CASE WHEN chosen THEN '<- chosen' ELSE '' END AS chosen
FROM rfm_k_search WHERE model = 'demo' AND version = (SELECT active_version FROM rfm_model_summary WHERE model = 'demo')
ORDER BY k;

\echo
\echo '== 10. Profile of each cluster (original units) and what to do with it'
SELECT cluster, label, size, round(100 * share::numeric, 1) AS pct_customers,
       round(avg_recency::numeric) AS avg_recency, round(avg_frequency::numeric, 1) AS avg_frequency,
       round(avg_monetary::numeric) AS avg_monetary, round(100 * revenue_share::numeric, 1) AS pct_revenue,
       action
FROM rfm_profile('demo');

\echo
\echo '== 11. Publish: every customer labelled inside an ordinary query'
SELECT customer_id, round(recency::numeric) AS recency, frequency, round(monetary::numeric) AS monetary,
       rfm_segment('demo', recency, frequency, monetary) AS segment
FROM customer_rfm ORDER BY customer_id LIMIT 5;
