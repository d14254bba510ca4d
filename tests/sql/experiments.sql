-- Campaign experiments: sample sizes, a hand-worked experiment, the arm lookup, errors.
-- (tests/e2e/test_experiments.py checks every statistic against statsmodels and scipy.)
SET client_min_messages = warning;

-- Sample sizes. statsmodels: NormalIndPower().solve_power(effect_size=
-- proportion_effectsize(0.055, 0.05), alpha=0.05, power=0.8) = 31217.42, ratio 2: 23413.07.
SELECT * FROM rfm_experiment_size(0.05, 0.1);
SELECT * FROM rfm_experiment_size(0.05, 0.1, ratio => 2);
-- A mean: effect size 5 / 50 = 0.1; statsmodels 1569.78 per arm.
SELECT * FROM rfm_experiment_size_mean(50, 5);
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_experiment_size(0, 0.1)$$),
    ($$SELECT rfm_experiment_size(0.6, 1)$$),
    ($$SELECT rfm_experiment_size(0.05, 0)$$),
    ($$SELECT rfm_experiment_size(0.05, 0.1, power => 0.01)$$),
    ($$SELECT rfm_experiment_size(0.05, 0.1, ratio => 0)$$),
    ($$SELECT rfm_experiment_size_mean(0, 5)$$)
) AS cases(q);

-- A hand-worked experiment: 20 customers in two strata of 12 and 8, half to each arm.
CREATE TABLE hand_customers AS
SELECT 'h' || lpad(i::text, 2, '0') AS customer_id, CASE WHEN i <= 12 THEN 'big' ELSE 'small' END AS segment,
       10.0 * i AS pre
FROM generate_series(1, 20) i;
SELECT * FROM rfm_experiment_create('hand', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}', 'segment', 1);
SELECT name, arms, control_arm, stratum_column, seed, source, customer_column, customers, strata, status
FROM rfm_experiments WHERE name = 'hand';
-- The partition was made as the table's owner: the caller's user and search_path are back.
SELECT current_user = session_user AS same_user, current_setting('search_path') AS search_path;
-- The same inputs give the same assignment: the arms as a bit string in id order.
SELECT string_agg(CASE arm WHEN 'offer' THEN '1' ELSE '0' END, '' ORDER BY customer_id) AS arms_in_id_order
FROM rfm_experiment_assignments WHERE experiment = 'hand';
BEGIN;
SELECT rfm_experiment_drop('hand') AS dropped;
SELECT count(*) FROM rfm_experiment_create('hand', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}', 'segment', 1);
SELECT string_agg(CASE arm WHEN 'offer' THEN '1' ELSE '0' END, '' ORDER BY customer_id) AS arms_again
FROM rfm_experiment_assignments WHERE experiment = 'hand';
ROLLBACK;

-- Outcomes: the first five offer customers (in id order) spend 10, 20, 30, 40, 50; the first
-- two control customers 10 and 20; a line before the window and a customer in no arm too.
CREATE TABLE hand_orders (customer_id text, ts timestamptz, amount float8);
INSERT INTO hand_orders
SELECT customer_id, '2024-03-05 00:00+00', 10 * row_number() OVER (PARTITION BY arm ORDER BY customer_id)
FROM rfm_experiment_assignments WHERE experiment = 'hand'
ORDER BY arm, customer_id;
DELETE FROM hand_orders o USING rfm_experiment_assignments a
WHERE a.experiment = 'hand' AND a.customer_id = o.customer_id
  AND o.amount > CASE a.arm WHEN 'offer' THEN 50 ELSE 20 END;
INSERT INTO hand_orders VALUES ('h01', '2024-01-01 00:00+00', 1000), ('stranger', '2024-03-05 00:00+00', 1000);
-- Overall, by hand: offer 5 of 10 converted, control 2 of 10; pooled z = 0.3 / sqrt(0.35 x
-- 0.65 x 0.2) = 1.40642, p = 0.15960 (statsmodels proportions_ztest); Newcomb interval
-- -0.10667 to 0.59987; revenue per customer 15 against 3, Welch t = 1.88175, df 11.235,
-- p = 0.08602, interval -2.00001 to 26.00001 (scipy ttest_ind equal_var=False).
SELECT arm, customers, converted, conversion_rate, revenue, revenue_per_customer,
       round(lift_abs::numeric, 5) AS lift_abs, round(lift_rel::numeric, 5) AS lift_rel,
       round(ci_low::numeric, 5) AS ci_low, round(ci_high::numeric, 5) AS ci_high,
       round(p_value::numeric, 5) AS p_value, round(revenue_diff::numeric, 5) AS revenue_diff,
       round(revenue_ci_low::numeric, 5) AS revenue_ci_low, round(revenue_ci_high::numeric, 5) AS revenue_ci_high,
       round(revenue_p_value::numeric, 5) AS revenue_p_value, srm_p_value
FROM rfm_experiment_results('hand', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-03-01', '2024-04-01')
WHERE overall;
-- Per stratum: customers and conversions add up to the overall row; Holm over the two strata.
SELECT stratum, arm, customers, converted, p_adjusted >= p_value AS holm_not_below_p
FROM rfm_experiment_results('hand', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-03-01', '2024-04-01')
WHERE NOT overall ORDER BY stratum, arm;
-- CUPED with a covariate of the source; the report is one HTML page with its charts.
SELECT arm, theta IS NOT NULL AS has_theta, variance_reduction BETWEEN -1 AND 1 AS sane_reduction
FROM rfm_experiment_results('hand', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-03-01', '2024-04-01', 'pre')
WHERE overall;
SELECT length(r) > 2000 AS html, r LIKE '<!DOCTYPE html>%' AS doctype,
       (length(r) - length(replace(r, '<svg', ''))) / 4 AS charts
FROM rfm_experiment_report('hand', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-03-01', '2024-04-01', 'pre') r;

-- The campaign job's lookup: stored arms, and for a customer who came later a drawn arm.
SELECT count(*) FILTER (WHERE rfm_experiment_arm('hand', customer_id) = arm) AS same_as_stored, count(*)
FROM rfm_experiment_assignments WHERE experiment = 'hand';
SELECT rfm_experiment_arm('hand', 'newcomer') IN ('control', 'offer') AS drawn,
       rfm_experiment_arm('hand', 'newcomer') = rfm_experiment_arm('hand', 'newcomer') AS stable,
       rfm_experiment_arm('hand', NULL) IS NULL AS null_is_null;

-- Errors.
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT * FROM rfm_experiment_create('hand', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT * FROM rfm_experiment_create('x', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.6}')$$),
    ($$SELECT * FROM rfm_experiment_create('x', 'hand_customers', 'customer_id', '[["control", 0.5], ["control", 0.5]]')$$),
    ($$SELECT * FROM rfm_experiment_create('x', 'hand_customers', 'nope', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT * FROM rfm_experiment_create('x', 'hand_customers', 'customer_id', '{"a": 0.5, "b": 0.5}')$$),
    ($$SELECT * FROM rfm_experiment_create('x', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}', 'nope')$$),
    ($$SELECT * FROM rfm_experiment_create('x', 'pg_class_oid_index', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT * FROM rfm_experiment_results('hand', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-04-01', '2024-03-01')$$),
    ($$SELECT * FROM rfm_experiment_results('hand', 'hand_orders', 'customer_id', 'ts', 'customer_id', '2024-03-01', '2024-04-01')$$),
    ($$SELECT * FROM rfm_experiment_results('nope', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-03-01', '2024-04-01')$$),
    ($$SELECT rfm_experiment_arm('nope', 'h01')$$),
    ($$SELECT rfm_experiment_end('nope')$$)
) AS cases(q);
-- A damaged experiment row: XX001 naming it.
BEGIN;
UPDATE rfm_experiments SET arms = '{"control": 2}' WHERE name = 'hand';
SELECT * FROM try_sql_verbose($$SELECT * FROM rfm_experiment_results('hand', 'hand_orders', 'customer_id', 'ts', 'amount', '2024-03-01', '2024-04-01')$$);
ROLLBACK;

-- Storage: the experiment's rows are one partition with its own primary key, owned like
-- the parent; a row for an experiment that does not exist has nowhere to go, and a table in
-- the way of a new experiment's partition is named in the error.
SELECT c.relname ~ '^rfm_assignments_hand_[0-9a-f]{12}$' AS named, c.relowner = p.relowner AS owned_like_parent,
       pg_get_expr(c.relpartbound, c.oid) AS bound,
       (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS key
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'rfm_experiment_assignments';
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$INSERT INTO rfm_experiment_assignments VALUES ('ghost', 'h01', NULL, 'offer')$$),
    ($$INSERT INTO rfm_experiment_assignments VALUES ('hand', 'h01', 'big', 'offer')$$)
) AS cases(q);
-- (The name: "in the way" with FNV-1a 64 of it, top 48 bits, computed in Python; "third" below too.)
BEGIN;
CREATE TABLE rfm_assignments_in_the_way_4f91dbee8b53 ();
SELECT * FROM try_sql_verbose($$SELECT * FROM rfm_experiment_create('in the way', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$);
ROLLBACK;
-- A caller's own text operators ahead of pg_catalog (= always true, || dropping its right
-- side) change nothing: dropping one experiment drops its rows only, even one named with
-- a quote, and a partition renamed by hand is still found by its bound.
BEGIN;
CREATE SCHEMA trap;
CREATE FUNCTION trap.always(text, text) RETURNS bool LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION trap.left_only(text, text) RETURNS text LANGUAGE sql AS 'SELECT $1';
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.always);
CREATE OPERATOR trap.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.left_only);
SELECT set_config('search_path', 'trap, pg_catalog, ' || current_setting('search_path'), true) IS NOT NULL AS trapped;
SELECT count(*) AS rows FROM rfm_experiment_create('o''brien', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}');
SELECT count(*) AS rows FROM rfm_experiment_create('third', 'hand_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}');
ALTER TABLE rfm_experiment_assignments DETACH PARTITION rfm_assignments_third_0edb41727268;
ALTER TABLE rfm_assignments_third_0edb41727268 RENAME TO third_by_hand;
ALTER TABLE rfm_experiment_assignments ATTACH PARTITION third_by_hand FOR VALUES IN ('third');
SELECT rfm_experiment_drop('o''brien') AS obrien_dropped, rfm_experiment_drop('third') AS third_dropped;
RESET search_path;
SELECT experiment, count(*) FROM rfm_experiment_assignments GROUP BY 1 ORDER BY 1;
SELECT name FROM rfm_experiments ORDER BY 1;
SELECT to_regclass('third_by_hand') AS renamed_partition_left;
ROLLBACK;

-- Ending and dropping.
SELECT rfm_experiment_end('hand');
SELECT status, ended_at IS NOT NULL AS ended FROM rfm_experiments WHERE name = 'hand';
SELECT rfm_experiment_drop('hand') AS assignments_deleted, rfm_experiment_drop('hand') AS again;
SELECT count(*) AS left_behind FROM rfm_experiment_assignments WHERE experiment = 'hand';
SELECT count(*) AS partitions_left FROM pg_inherits WHERE inhparent = 'rfm_experiment_assignments'::regclass;
