-- Cross-sell: a hand-worked basket model, its rules and summary, recommendations, segment
-- affinity, errors. (tests/e2e/test_baskets.py checks the itemsets and rules against mlxtend.)
SET client_min_messages = warning;

-- Six orders. Frequent at 1/3 (2 orders): bread 4, butter 3, jam 3, milk 2; bread+butter 3,
-- bread+jam 2, butter+jam 2 (bread+butter+jam 2). An item twice in an order counts once; a
-- NULL item is ignored.
CREATE TABLE hand_lines (order_id int, item text, customer text, segment text);
INSERT INTO hand_lines VALUES
    (1, 'bread', 'ann', 'new'), (1, 'butter', 'ann', 'new'), (1, 'jam', 'ann', 'new'), (1, 'bread', 'ann', 'new'),
    (2, 'bread', 'bob', 'vip'), (2, 'butter', 'bob', 'vip'), (2, 'jam', 'bob', 'vip'),
    (3, 'bread', 'bob', 'vip'), (3, 'butter', 'bob', 'vip'),
    (4, 'bread', 'cid', 'new'), (4, 'milk', 'cid', 'new'), (4, NULL, 'cid', 'new'),
    (5, 'milk', 'dan', 'vip'),
    (6, 'tea', 'eve', 'new');
SELECT itemset, round(support::numeric, 4) AS support, orders
FROM rfm_basket_itemsets('hand_lines', 'order_id', 'item', 1.0 / 3) WHERE segment IS NULL;
SELECT name, version, orders, items, itemsets, rules, segments
FROM rfm_basket_train('hand', 'hand_lines', 'order_id', 'item', min_support => 1.0 / 3, min_confidence => 0.6,
                      segment_column => 'segment', customer_column => 'customer');
SELECT orders, items, customers, itemsets, rules, segments FROM rfm_basket_models WHERE name = 'hand';
-- Rules over all orders, by hand: butter -> bread: support 3/6, confidence 3/3, lift 1 / (4/6)
-- = 1.5, leverage 0.5 - 0.5 x 4/6 = 0.1667, conviction infinite (NULL); bread -> butter:
-- confidence 3/4, lift 0.75 / 0.5 = 1.5, conviction (1 - 0.5) / (1 - 0.75) = 2.
SELECT antecedent, consequent, round(support::numeric, 4) AS support, round(confidence::numeric, 4) AS confidence,
       round(lift::numeric, 4) AS lift, round(leverage::numeric, 4) AS leverage, round(conviction::numeric, 4) AS conviction, orders
FROM rfm_basket_rules('hand', NULL);
SELECT segment, count(*) AS rules FROM rfm_basket_rules('hand') GROUP BY segment ORDER BY segment NULLS FIRST;
SELECT name, version, segment, orders, items, rules, top_rule, round(max_lift::numeric, 4) AS max_lift
FROM rfm_basket_summary WHERE name = 'hand' ORDER BY segment NULLS FIRST;

-- Recommendations: a basket of jam gets bread and butter, both from jam -> bread, butter
-- (confidence 1, lift 2; jam -> bread has lift 1.5), the tie broken by the item's name.
SELECT rfm_recommend('hand', ARRAY['jam']) AS jam, rfm_recommend('hand', ARRAY['jam'], 1) AS top1,
       rfm_recommend('hand', ARRAY['bread', 'butter']) AS has_both, rfm_recommend('hand', ARRAY['tea']) AS no_rule,
       rfm_recommend('hand', ARRAY['jam'], 3, 'vip') AS vip, rfm_recommend('hand', ARRAY['jam'], 3, 'nobody') AS no_segment;
SELECT * FROM rfm_recommendations('hand', ARRAY['jam']);
-- Per customer, as a campaign query writes it.
SELECT customer, rfm_recommend('hand', array_agg(DISTINCT item) FILTER (WHERE item IS NOT NULL), 2) AS next
FROM hand_lines GROUP BY customer ORDER BY customer;
-- The value form gives the same.
WITH m AS MATERIALIZED (SELECT rfm_basket_model_of('hand') AS m)
SELECT rfm_recommend(m.m, ARRAY['jam']) AS by_value,
       rfm_basket_model_of('hand')::text::rfm_basket_model::text = m.m::text AS text_round_trip
FROM m;

-- Segment x item affinity: vip customers (bob, dan) against everyone (5 customers).
SELECT segment, item, customers, round(share::numeric, 4) AS share, round(share_overall::numeric, 4) AS share_overall,
       round(affinity::numeric, 4) AS affinity
FROM rfm_segment_items('hand_lines', 'customer', 'item', 'segment');

-- Errors.
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_basket_train('x', 'hand_lines', 'order_id', 'item', min_support => 0)$$),
    ($$SELECT rfm_basket_train('x', 'hand_lines', 'order_id', 'item', max_len => 0)$$),
    ($$SELECT rfm_basket_train('x', 'hand_lines', 'order_id', 'nope')$$),
    ($$SELECT rfm_basket_train('x', 'hand_lines', 'order_id', 'item', segment_column => 'nope')$$),
    ($$SELECT rfm_recommend('nope', ARRAY['jam'])$$),
    ($$SELECT rfm_recommend('hand', ARRAY['jam'], -1)$$),
    ($$SELECT rfm_recommend('hand', ARRAY['jam', NULL])$$),
    ($$SELECT rfm_basket_activate('hand', 9)$$),
    ($$SELECT rfm_basket_import('{"format": "pg_rfm.model"}')$$),
    ($$SELECT 'zz'::rfm_basket_model$$),
    ($$SELECT '0011'::rfm_basket_model$$),
    ($$SELECT * FROM rfm_segment_items('hand_lines', 'customer', 'item', 'nope')$$)
) AS cases(q);
-- A damaged rule: XX001 naming the model and version.
BEGIN;
UPDATE rfm_basket_rules SET consequent = antecedent WHERE name = 'hand' AND segment IS NULL;
SELECT * FROM try_sql_verbose($$SELECT rfm_recommend('hand', ARRAY['jam'])$$);
ROLLBACK;

-- Versions: a retrain is the new active version; activate goes back; drop deletes all.
SELECT version, rules FROM rfm_basket_train('hand', 'hand_lines', 'order_id', 'item', min_support => 0.5, min_confidence => 0.6);
SELECT rfm_recommend('hand', ARRAY['jam']) AS with_version_2;
SELECT rfm_basket_activate('hand', 1);
SELECT rfm_recommend('hand', ARRAY['jam']) AS with_version_1;
SELECT rfm_basket_import(rfm_basket_export('hand'), 'hand_copy') AS imported_version;
SELECT rfm_recommend('hand_copy', ARRAY['jam']) AS copy;
SELECT rfm_basket_drop('hand') AS versions_dropped, rfm_basket_drop('hand_copy') AS copy_dropped;
SELECT count(*) AS rules_left FROM rfm_basket_rules WHERE name IN ('hand', 'hand_copy');
