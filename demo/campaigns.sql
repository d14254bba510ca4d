-- Acting on the segments (docs/campaigns.md): plan two A/B tests from past orders, assign
-- the customers, run the campaign job, simulate the response with a known lift, and read
-- the results. Runs after demo/workflow.sql (customer_segments, clean_lines).
\set ON_ERROR_STOP on
\pset footer off
\timing off
SET client_min_messages = warning;

-- The customers with their rule-based segment and past spend, and their past orders.
CREATE VIEW campaign_customers AS
SELECT customer_id::text AS customer_id, segment, monetary FROM customer_segments;
CREATE VIEW past_orders AS
SELECT customer_id::text AS customer_id, invoice_date, quantity * price AS amount FROM clean_lines;

\echo
\echo '== 1. Plan from history: the segments as they were on 2011-09-11 and their orders of the next'
\echo '   90 days give each segment''s baseline; customers per arm to see a 30% lift'
CREATE TABLE segments_september AS
SELECT r.customer_id::text AS customer_id, s.segment
FROM (SELECT customer_id, (rfm(invoice_date, amount, invoice, '2011-09-11 00:00+00')).*
      FROM clean_lines WHERE invoice_date < '2011-09-11' GROUP BY customer_id) r
CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b
            FROM (SELECT (rfm(invoice_date, amount, invoice, '2011-09-11 00:00+00')).*
                  FROM clean_lines WHERE invoice_date < '2011-09-11' GROUP BY customer_id) x) k
CROSS JOIN LATERAL rfm_score(r.recency, r.frequency, r.monetary, k.b) s;
SELECT segment, customers, round(baseline_rate::numeric, 3) AS baseline_rate,
       round(revenue_mean::numeric) AS revenue_mean, control, treatment, enough,
       round(detectable_lift::numeric, 2) AS detectable_lift
FROM rfm_experiment_plan('segments_september', 'customer_id', 'segment', 'past_orders', 'invoice_date', 'amount',
                         '2011-09-11', '2011-12-10', min_lift => 0.3)
ORDER BY customers DESC;

\echo
\echo '== 2. Win-back test: At Risk, Hibernating and Can''t Lose Them customers, stratified by segment'
CREATE VIEW winback_customers AS
SELECT * FROM campaign_customers WHERE segment IN ('At Risk', 'Hibernating', 'Can''t Lose Them');
SELECT coalesce(stratum, '(none)') AS stratum, arm, customers, round(expected::numeric, 1) AS expected
FROM rfm_experiment_create('winback', 'winback_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}',
                           stratum_column => 'segment', seed => 2011);

\echo
\echo '== 3. The campaign job: the customers who get the offer'
SELECT count(*) AS offers_to_send
FROM winback_customers WHERE rfm_experiment_arm('winback', customer_id) = 'offer';

\echo
\echo '== 4. Order-value test for Champions: an up-sell offer to half of them'
CREATE VIEW champions AS SELECT * FROM campaign_customers WHERE segment = 'Champions';
SELECT arm, customers
FROM rfm_experiment_create('champions_upsell', 'champions', 'customer_id', '{"control": 0.5, "upsell": 0.5}', seed => 2011);

\echo
\echo '== 5. The month after (simulated, a known truth): win-back converts 8% of control and 12% of'
\echo '   offer customers; every Champion orders about 5% of their past spend, up-sold ones 20% more'
CREATE TABLE campaign_orders (customer_id text, ts timestamptz, amount float8);
INSERT INTO campaign_orders
SELECT a.customer_id, '2011-12-10 00:00+00'::timestamptz + (abs(hashtext(a.customer_id || 'day')) % 30) * interval '1 day',
       100 + abs(hashtext(a.customer_id || 'amount')) % 200
FROM rfm_experiment_assignments a
WHERE a.experiment = 'winback'
  AND abs(hashtext(a.customer_id || 'winback')) % 10000 < CASE a.arm WHEN 'offer' THEN 1200 ELSE 800 END;
INSERT INTO campaign_orders
SELECT a.customer_id, '2011-12-10 00:00+00'::timestamptz + (abs(hashtext(a.customer_id || 'day')) % 30) * interval '1 day',
       round((c.monetary * 0.05 * (0.9 + (abs(hashtext(a.customer_id || 'v')) % 200) / 1000.0)
              * CASE a.arm WHEN 'upsell' THEN 1.2 ELSE 1 END)::numeric, 2)
FROM rfm_experiment_assignments a JOIN campaign_customers c USING (customer_id)
WHERE a.experiment = 'champions_upsell';
SELECT count(*) AS orders FROM campaign_orders;

\echo
\echo '== 6. Win-back results: conversion lift with its 95% interval, overall and per segment (Holm-adjusted)'
SELECT coalesce(stratum, CASE WHEN overall THEN '(overall)' ELSE '(none)' END) AS scope, arm, customers, converted,
       round(100 * conversion_rate::numeric, 1) AS conv_pct, round(100 * lift_abs::numeric, 1) AS lift_pt,
       round(100 * ci_low::numeric, 1) AS ci_low_pt, round(100 * ci_high::numeric, 1) AS ci_high_pt,
       round(p_value::numeric, 4) AS p, round(p_adjusted::numeric, 4) AS p_holm
FROM rfm_experiment_results('winback', 'campaign_orders', 'customer_id', 'ts', 'amount',
                            '2011-12-10', '2012-01-10')
WHERE arm = 'offer';

\echo
\echo '== 7. Champions results: revenue per customer, plain and with CUPED (past monetary as the covariate)'
SELECT arm, customers, round(revenue_per_customer::numeric, 1) AS revenue_per_customer,
       round(revenue_diff::numeric, 1) AS diff, round(revenue_ci_low::numeric, 1) AS ci_low,
       round(revenue_ci_high::numeric, 1) AS ci_high, round(revenue_p_value::numeric, 4) AS p,
       round(cuped_revenue_diff::numeric, 1) AS cuped_diff, round(cuped_ci_low::numeric, 1) AS cuped_low,
       round(cuped_ci_high::numeric, 1) AS cuped_high, round(variance_reduction::numeric, 2) AS variance_reduction,
       round(srm_p_value::numeric, 3) AS srm_p
FROM rfm_experiment_results('champions_upsell', 'campaign_orders', 'customer_id', 'ts', 'amount',
                            '2011-12-10', '2012-01-10', covariate_column => 'monetary')
WHERE overall;
