-- Cross-sell and up-sell on the segments (docs/cross-sell.md): association rules per segment
-- mined where the order lines are, recommendations for every customer in one query, and
-- what each segment buys more than the others. Runs after demo/workflow.sql (clean_lines,
-- customer_segments); the generated data carries planted product bundles (rfm-gen
-- --associations), one of them only in big spenders' orders.
\set ON_ERROR_STOP on
\pset footer off
\timing off
SET client_min_messages = warning;

CREATE VIEW segment_lines AS
SELECT l.invoice, l.stock_code, l.customer_id, s.segment, l.amount
FROM clean_lines l JOIN customer_segments s USING (customer_id);

\echo
\echo '== 1. Mine the rules: orders as sets of items, FP-growth, all orders and per segment (itemsets in'
\echo '   at least 1% of the orders and 20 of them, so that small segments do not make rules of chance pairs)'
SELECT name, version, orders, items, itemsets, rules, segments
FROM rfm_basket_train('retail', 'segment_lines', 'invoice', 'stock_code', min_support => 0.01, min_confidence => 0.3,
                      max_len => 3, segment_column => 'segment', customer_column => 'customer_id', min_orders => 20);

\echo
\echo '== 2. The strongest rules over all orders (lift: how much more often than by chance)'
SELECT array_to_string(antecedent, ', ') AS "if the basket has", array_to_string(consequent, ', ') AS "it also has",
       round(support::numeric, 3) AS support, round(confidence::numeric, 2) AS confidence, round(lift::numeric, 1) AS lift, orders
FROM rfm_basket_rules('retail', NULL) LIMIT 8;

\echo
\echo '== 3. Per segment: orders, rules, and the rule of highest lift'
SELECT coalesce(segment, '(all orders)') AS segment, orders, rules, top_rule, round(max_lift::numeric, 1) AS max_lift
FROM rfm_basket_summary WHERE name = 'retail' ORDER BY orders DESC;

\echo
\echo '== 4. Next products for Champions, from their own segment''s rules'
SELECT customer_id, rfm_recommend('retail', array_agg(DISTINCT stock_code), 3, segment) AS recommend
FROM segment_lines WHERE segment = 'Champions'
GROUP BY customer_id, segment
HAVING cardinality(rfm_recommend('retail', array_agg(DISTINCT stock_code), 3, segment)) > 0
ORDER BY customer_id LIMIT 8;
SELECT count(*) AS champions, count(*) FILTER (WHERE cardinality(r) > 0) AS with_a_recommendation
FROM (SELECT rfm_recommend('retail', array_agg(DISTINCT stock_code), 3, segment) AS r
      FROM segment_lines WHERE segment = 'Champions' GROUP BY customer_id, segment) x;

\echo
\echo '== 5. Why: the rule behind each recommendation of one of them'
SELECT rank, item, round(confidence::numeric, 2) AS confidence, round(lift::numeric, 1) AS lift,
       antecedent AS because_of, consequent
FROM (SELECT customer_id, array_agg(DISTINCT stock_code) AS basket FROM segment_lines WHERE segment = 'Champions'
      GROUP BY customer_id HAVING cardinality(rfm_recommend('retail', array_agg(DISTINCT stock_code), 3, 'Champions')) >= 2
      ORDER BY customer_id LIMIT 1) c,
     rfm_recommendations('retail', c.basket, 3, 'Champions');

\echo
\echo '== 6. Up-sell: what Champions buy that Potential Loyalists do not yet (share of each segment''s customers)'
WITH a AS (SELECT * FROM rfm_segment_items('segment_lines', 'customer_id', 'stock_code', 'segment', 'amount'))
SELECT c.item, round(100 * c.share::numeric, 1) AS champions_pct, round(100 * coalesce(p.share, 0)::numeric, 1) AS loyalists_pct,
       round(c.affinity::numeric, 2) AS champions_affinity
FROM a c LEFT JOIN a p ON p.item = c.item AND p.segment = 'Potential Loyalist'
WHERE c.segment = 'Champions' AND c.customers >= 20
ORDER BY c.share - coalesce(p.share, 0) DESC LIMIT 6;

\echo
\echo '== 7. Stock for the three biggest segments: their items of highest affinity (bought by at least 10 of their customers)'
SELECT segment, item, customers, round(100 * share::numeric, 1) AS pct_of_segment, round(affinity::numeric, 2) AS affinity,
       round(revenue::numeric) AS revenue
FROM (SELECT *, row_number() OVER (PARTITION BY segment ORDER BY affinity DESC, customers DESC) AS k
      FROM rfm_segment_items('segment_lines', 'customer_id', 'stock_code', 'segment', 'amount')
      WHERE customers >= 10 AND segment IN ('Champions', 'Loyal Customers', 'At Risk')) x
WHERE k <= 3 ORDER BY segment, k;
