-- Damaged models: every field assignment relies on is checked when a model is loaded
-- (from the tables, by rfm_model_import, into any cache). Each case damages the active
-- version inside a subtransaction that is rolled back, then assigns: the outcome must be
-- XX001 naming the model, the version and the problem, never a wrong answer or a panic.
SET client_min_messages = warning;
SELECT version FROM rfm_train('dmg', 'groups', k => 2);
SELECT version FROM rfm_train('dmg', 'groups', k => 3);

-- Runs `change`, then `probe`, and rolls both back; 'not detected' when the probe passed.
CREATE FUNCTION pg_temp.damage(change text, probe text DEFAULT $$SELECT rfm_segment('dmg', 10, 2, 300)$$)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE change;
        EXECUTE probe;
        RAISE EXCEPTION 'not detected';
    EXCEPTION WHEN OTHERS THEN
        RETURN CASE WHEN SQLERRM = 'not detected' THEN SQLERRM ELSE SQLSTATE || ': ' || SQLERRM END;
    END;
END $$;

CREATE VIEW dmg_model AS SELECT 'model = ''dmg'' AND version = 2' AS v;
SELECT change, pg_temp.damage(format(change, (SELECT v FROM dmg_model))) AS outcome FROM (VALUES
    -- rfm_models: preprocessing arrays (one entry per feature, finite, positive sds)
    ('UPDATE rfm_models SET scale_mean = scale_mean[1:2] WHERE %s'),
    ('UPDATE rfm_models SET scale_sd = ''{}'' WHERE %s'),
    ('UPDATE rfm_models SET scale_sd[2] = 0 WHERE %s'),
    ('UPDATE rfm_models SET scale_sd[3] = -1 WHERE %s'),
    ('UPDATE rfm_models SET scale_sd[1] = ''Infinity'' WHERE %s'),
    ('UPDATE rfm_models SET scale_mean[3] = ''NaN'' WHERE %s'),
    ('UPDATE rfm_models SET lower_fence = ''{}'' WHERE %s'),
    ('UPDATE rfm_models SET upper_fence = upper_fence || 1e9::float8 WHERE %s'),
    ('UPDATE rfm_models SET lower_fence[1] = ''NaN'' WHERE %s'),
    ('UPDATE rfm_models SET lower_fence[2] = upper_fence[2] + 1 WHERE %s'),
    ('UPDATE rfm_models SET log_features = ''{frequency,price}'' WHERE %s'),
    ('UPDATE rfm_models SET log_features = ''{monetary,monetary}'' WHERE %s'),
    ('UPDATE rfm_models SET features = features[1:2] WHERE %s'),
    ('UPDATE rfm_models SET features[3] = ''recency'' WHERE %s'),
    ('UPDATE rfm_models SET k = 7 WHERE %s'),
    -- rfm_centroids: k rows numbered 1..k, centroids of the model's dimension, finite
    ('DELETE FROM rfm_centroids WHERE %s AND cluster = 2'),
    ('UPDATE rfm_centroids SET cluster = 5 WHERE %s AND cluster = 2'),
    ('UPDATE rfm_centroids SET scaled = scaled[1:2] WHERE %s AND cluster = 3'),
    ('UPDATE rfm_centroids SET scaled[2] = ''NaN'' WHERE %s AND cluster = 1'),
    ('UPDATE rfm_centroids SET original = ''{}'' WHERE %s AND cluster = 1'),
    ('UPDATE rfm_centroids SET mean = mean[1:1] WHERE %s AND cluster = 2'),
    ('UPDATE rfm_centroids SET label = '' '' WHERE %s AND cluster = 1'),
    ('UPDATE rfm_centroids SET size = -5 WHERE %s AND cluster = 1')
) AS cases(change);

-- Every loader checks: the other assignment form, the report and evaluation.
SELECT probe, pg_temp.damage('UPDATE rfm_models SET scale_sd[2] = 0 WHERE model = ''dmg'' AND active', probe) AS outcome
FROM (VALUES
    ($$SELECT rfm_cluster('dmg', ARRAY[10, 2, 300]::float8[])$$),
    ($$SELECT rfm_report('dmg')$$),
    ($$SELECT * FROM rfm_evaluate('dmg', 'groups')$$),
    ($$SELECT * FROM rfm_holdout('dmg', 'groups')$$),
    ($$SELECT count(*) FROM groups WHERE rfm_segment('dmg', recency, frequency, monetary) IS NOT NULL$$)
) AS cases(probe);

-- The error says what to do; making the earlier version active is one of the ways out.
BEGIN;
UPDATE rfm_centroids SET scaled = scaled[1:2] WHERE model = 'dmg' AND version = 2 AND cluster = 3;
SELECT * FROM try_sql_verbose($$SELECT rfm_segment('dmg', 10, 2, 300)$$);
SELECT rfm_activate('dmg', 1);
SELECT rfm_segment('dmg', 10, 2, 300) = (SELECT label FROM rfm_centroids WHERE model = 'dmg' AND version = 1
                                         AND cluster = rfm_cluster('dmg', 10, 2, 300)) AS earlier_version_assigns;
ROLLBACK;
SELECT version FROM rfm_models WHERE model = 'dmg' AND active;

-- Import checks the same things, in the document's terms.
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{scaler,scale,1}', '0'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{k}', '4'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{clusters,1,label}',
                                         rfm_model_export('dmg') #> '{clusters,0,label}'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{clusters,0,cluster}', '7'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{scaler,log}', '[true, false, true]'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{scaler,mean}', '"abc"'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{clusters,2,scaled,1}', '"x"'))$$),
    ($$SELECT rfm_model_import(rfm_model_export('dmg') - 'features')$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{scaler,outliers}', '"winsorize"'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('dmg'), '{clusters,0,size}', '"big"'))$$)
) AS cases(q);
SELECT count(*) AS versions_after_failed_imports FROM rfm_models WHERE model = 'dmg';
RESET client_min_messages;
