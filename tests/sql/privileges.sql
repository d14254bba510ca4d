-- Three roles: an analyst who may read, a trainer who may train from what it can read, an
-- outsider with no access to the customers. Functions run with the caller's privileges.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rfm_analyst;
DROP ROLE IF EXISTS regress_rfm_trainer;
DROP ROLE IF EXISTS regress_rfm_outsider;
CREATE ROLE regress_rfm_analyst;
CREATE ROLE regress_rfm_trainer;
CREATE ROLE regress_rfm_outsider;
GRANT SELECT ON customer_rfm, clv_summary TO regress_rfm_analyst, regress_rfm_trainer;
GRANT INSERT, UPDATE, DELETE ON rfm_models, rfm_centroids, rfm_k_search, rfm_clv_models TO regress_rfm_trainer;
GRANT INSERT, DELETE ON rfm_experiments, rfm_experiment_assignments TO regress_rfm_trainer;
CREATE TABLE secret_customers AS SELECT * FROM customer_rfm;
CREATE TABLE secret_clv AS SELECT * FROM clv_summary;
CREATE TABLE priv_lines AS SELECT o, (ARRAY['a', 'b', 'c'])[1 + (o + k) % 3] AS i FROM generate_series(1, 20) o, generate_series(0, 1) k;
CREATE TABLE secret_lines AS SELECT * FROM priv_lines;
GRANT SELECT ON priv_lines TO regress_rfm_analyst, regress_rfm_trainer;
GRANT INSERT, UPDATE, DELETE ON rfm_basket_models, rfm_basket_rules TO regress_rfm_trainer;
GRANT EXECUTE ON FUNCTION try_sql(text) TO PUBLIC;

SET ROLE regress_rfm_analyst;
SELECT q, try_sql(q) AS analyst FROM (VALUES
    ($$SELECT count(DISTINCT rfm_segment('shop', recency, frequency, monetary)) FROM customer_rfm$$),
    ($$SELECT count(*) FROM rfm_profile('shop')$$),
    ($$SELECT count(*) FROM rfm_model_summary$$),
    ($$SELECT rfm_report('shop') IS NOT NULL$$),
    ($$SELECT rfm_train('analyst_model', 'customer_rfm', k => 3)$$),
    ($$SELECT rfm_drop_model('shop')$$),
    ($$SELECT rfm_activate('shop', 2)$$),
    ($$UPDATE rfm_segment_rules SET segment = 'Mine' WHERE priority = 10$$),
    ($$SELECT rfm_train('analyst_model', 'secret_customers', k => 3)$$),
    ($$SELECT count(rfm_clv_value('shop_clv', frequency, recency, t, monetary)) > 0 FROM clv_summary$$),
    ($$SELECT rfm_clv_train('analyst_clv', 'clv_summary')$$),
    ($$SELECT rfm_clv_drop_model('shop_clv')$$),
    ($$SELECT rfm_clv_activate('shop_clv', 2)$$),
    ($$SELECT count(*) FROM rfm_experiment_create('analyst_exp', 'customer_rfm', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT count(*) FROM rfm_experiment_assignments$$),
    ($$SELECT rfm_experiment_drop('trainer_exp')$$),
    ($$SELECT rfm_basket_train('analyst_basket', 'priv_lines', 'o', 'i', 0.5)$$),
    ($$SELECT rfm_recommend('trainer_basket', ARRAY['a'])$$),
    ($$SELECT rfm_basket_drop('trainer_basket')$$)
) AS cases(q);
RESET ROLE;

SET ROLE regress_rfm_trainer;
SELECT q, try_sql(q) AS trainer FROM (VALUES
    ($$SELECT rfm_train('trainer_model', 'customer_rfm', k => 3)$$),
    ($$SELECT rfm_train('trainer_model', 'secret_customers', k => 3)$$),
    ($$SELECT * FROM rfm_k_search('secret_customers', k_min => 2, k_max => 3)$$),
    ($$SELECT rfm_evaluate('trainer_model', 'secret_customers')$$),
    ($$SELECT version FROM rfm_clv_train('trainer_clv', 'clv_summary')$$),
    ($$SELECT version FROM rfm_clv_train('trainer_clv', 'secret_clv')$$),
    ($$SELECT count(*) FROM rfm_experiment_create('trainer_exp', 'customer_rfm', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT count(*) FROM rfm_experiment_create('trainer_exp2', 'secret_customers', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT count(*) FROM rfm_experiment_create('trainer_exp3', 'customer_rfm', 'customer_id', '{"control": 0.5, "offer": 0.5}')$$),
    ($$SELECT rfm_experiment_drop('trainer_exp3') > 0$$),
    ($$SELECT version FROM rfm_basket_train('trainer_basket', 'priv_lines', 'o', 'i', 0.5)$$),
    ($$SELECT version FROM rfm_basket_train('trainer_basket2', 'secret_lines', 'o', 'i', 0.5)$$)
) AS cases(q);
RESET ROLE;
SELECT model, version, created_by FROM rfm_models WHERE model IN ('trainer_model', 'analyst_model') ORDER BY 1, 2;
SELECT model, version, created_by FROM rfm_clv_models WHERE model IN ('trainer_clv', 'analyst_clv') ORDER BY 1, 2;
SELECT name, customers, created_by FROM rfm_experiments WHERE name IN ('trainer_exp', 'trainer_exp2', 'trainer_exp3', 'analyst_exp') ORDER BY 1;
-- The trainer, without CREATE on the schema, made its experiment's partition; it belongs to
-- the owner of rfm_experiment_assignments, as the parent does.
SELECT c.relname ~ '^rfm_assignments_trainer_exp_[0-9a-f]{12}$' AS trainer_partition, c.relowner = p.relowner AS owned_like_parent,
       has_schema_privilege('regress_rfm_trainer', c.relnamespace, 'CREATE') AS trainer_may_create_tables
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'rfm_experiment_assignments' ORDER BY c.relname;
SELECT name, version, created_by FROM rfm_basket_models WHERE name IN ('trainer_basket', 'trainer_basket2', 'analyst_basket') ORDER BY 1;

SET ROLE regress_rfm_outsider;
SELECT q, try_sql(q) AS outsider FROM (VALUES
    ($$SELECT * FROM rfm_k_search('customer_rfm', k_min => 2, k_max => 3)$$),
    ($$SELECT rfm_train('outsider_model', 'customer_rfm', k => 3)$$),
    ($$SELECT count(*) FROM customer_rfm$$),
    ($$SELECT rfm_segment('shop', 10, 2, 300) IS NOT NULL$$)
) AS cases(q);
RESET ROLE;

-- Nothing was changed by the refused statements.
SELECT version, active FROM rfm_models WHERE model = 'shop' ORDER BY version;
SELECT version, active FROM rfm_clv_models WHERE model = 'shop_clv' ORDER BY version;
SELECT segment FROM rfm_segment_rules WHERE priority = 10;

REVOKE ALL ON customer_rfm, clv_summary, secret_customers FROM regress_rfm_analyst, regress_rfm_trainer;
REVOKE ALL ON rfm_models, rfm_centroids, rfm_k_search, rfm_clv_models FROM regress_rfm_trainer;
REVOKE ALL ON rfm_experiments, rfm_experiment_assignments FROM regress_rfm_trainer;
REVOKE ALL ON rfm_basket_models, rfm_basket_rules FROM regress_rfm_trainer;
REVOKE ALL ON priv_lines FROM regress_rfm_analyst, regress_rfm_trainer;
SELECT rfm_basket_drop('trainer_basket');
DROP TABLE priv_lines, secret_lines;
SELECT rfm_experiment_drop('trainer_exp');
DROP TABLE secret_customers, secret_clv;
SELECT rfm_drop_model('trainer_model');
SELECT rfm_clv_drop_model('trainer_clv');
DROP ROLE regress_rfm_analyst;
DROP ROLE regress_rfm_trainer;
DROP ROLE regress_rfm_outsider;
RESET client_min_messages;
