-- Models on any customer data: categorical features (one-hot), PCA, log_features defaults,
-- descriptive names, jsonb rows, rfm_explain, rfm_profile on any column, and publish /
-- transitions / evaluate / report for such models. Expected values are computed here by
-- hand or in plain SQL, never copied from the functions under test.
SET client_min_messages = warning;

-- Three kinds of customers, 60 each, with a categorical education (one rare level) and a
-- boolean response. Deterministic: no random().
CREATE TABLE people AS
SELECT i AS customer_id,
       CASE g WHEN 0 THEN 90000 WHEN 1 THEN 40000 ELSE 20000 END + (i * 37 % 101) * 20 AS income,
       CASE g WHEN 0 THEN 0 WHEN 1 THEN 2 ELSE 1 END::int AS children,
       (CASE g WHEN 0 THEN 60 WHEN 1 THEN 45 ELSE 28 END + i % 7)::numeric AS age,
       CASE WHEN i = 7 THEN 'Basic' WHEN g = 0 THEN 'PhD' WHEN g = 1 THEN 'Graduation' ELSE 'Master' END AS education,
       (g = 0) AS response,
       CASE WHEN i % 3 = 0 THEN 'Single' ELSE 'Married' END AS marital
FROM generate_series(1, 180) AS i, LATERAL (SELECT i % 3 AS g) x;

------------------------------------------------------------------------------
-- 1. Categorical features, log_features default, vocabulary
------------------------------------------------------------------------------
SELECT model, version, k, n_rows
FROM rfm_train('people', 'people', k => 3, features => '{income,children,education,response}');

-- Vocabulary: education and response, levels alphabetical; no log features by default.
SELECT feature, position, level, grouped FROM rfm_model_levels WHERE model = 'people' ORDER BY feature, position;
SELECT encoded_features, log_features, options->'log_features' AS option_log FROM rfm_models WHERE model = 'people';

-- One-hot columns have no IQR fences and are standardized like the others: the mean of
-- education=PhD is its share in the training rows (60 of 180), computed in plain SQL.
SELECT abs(m.scale_mean[array_position(m.encoded_features, 'education=PhD')]
           - (SELECT avg((education = 'PhD')::int) FROM people)) < 1e-12 AS phd_mean_is_share,
       m.lower_fence[array_position(m.encoded_features, 'education=PhD')] IS NULL AS no_fence
FROM rfm_models m WHERE m.model = 'people';

-- Assignment from jsonb rows equals brute force: encode, clip, standardize (and project,
-- for PCA models) by hand in SQL, and take the nearest stored centroid.
CREATE FUNCTION brute_distances(mname text, r jsonb) RETURNS TABLE (cluster int, d float8) LANGUAGE sql AS $$
    WITH m AS (SELECT * FROM rfm_models WHERE model = mname AND active),
         x AS (
            SELECT j, (CASE WHEN f LIKE '%=%' THEN (coalesce(r ->> split_part(f, '=', 1), '') = split_part(f, '=', 2))::int::float8
                            ELSE least(greatest((r ->> f)::float8, coalesce(m.lower_fence[j], '-Infinity')),
                                       coalesce(m.upper_fence[j], 'Infinity')) END
                       - m.scale_mean[j]) / m.scale_sd[j] AS v
            FROM m, unnest(m.encoded_features) WITH ORDINALITY AS u(f, j)),
         -- For PCA models: project onto the stored components.
         z AS (
            SELECT i AS j, sum(m.pca_components[i][x.j] * (x.v - m.pca_center[x.j])) AS v
            FROM m, x, generate_series(1, coalesce(array_length(m.pca_components, 1), 0)) i
            GROUP BY i),
         s AS (SELECT * FROM z UNION ALL SELECT * FROM x WHERE NOT EXISTS (SELECT 1 FROM z))
    SELECT c.cluster, sqrt((SELECT sum((s.v - c.scaled[s.j]) ^ 2) FROM s))
    FROM rfm_centroids c, m
    WHERE c.model = m.model AND c.version = m.version
$$;
CREATE FUNCTION brute_cluster(mname text, r jsonb) RETURNS int LANGUAGE sql AS $$
    SELECT cluster FROM brute_distances(mname, r) ORDER BY d, cluster LIMIT 1
$$;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE rfm_cluster('people', to_jsonb(p)) = brute_cluster('people', to_jsonb(p))) AS equal
FROM people p;
-- Text form of a boolean, an unseen level (all zeros), a missing key (NULL).
SELECT rfm_cluster('people', '{"income": 91000, "children": 0, "education": "PhD", "response": true}'::jsonb)
     = brute_cluster('people', '{"income": 91000, "children": 0, "education": "PhD", "response": true}'::jsonb) AS known,
       rfm_cluster('people', '{"income": 91000, "children": 0, "education": "Dr.", "response": true}'::jsonb)
     = brute_cluster('people', '{"income": 91000, "children": 0, "education": "Dr.", "response": true}'::jsonb) AS unseen,
       rfm_cluster('people', '{"income": 91000, "children": 0, "response": true}'::jsonb) IS NULL AS missing_is_null;

-- Names from the distinctive features: the high-income cluster is the PhD, responding one.
SELECT label FROM rfm_centroids c JOIN rfm_models m USING (model, version)
WHERE m.model = 'people' AND m.active AND c.cluster = rfm_cluster('people', '{"income": 91000, "children": 0, "education": "PhD", "response": true}'::jsonb);
SELECT count(DISTINCT label) = 3 AS unique_labels FROM rfm_centroids WHERE model = 'people';

-- max_levels: education has 4 levels, counted by hand: Master 60, PhD 60, Graduation 59
-- (customer 7 is the one Basic); max_levels 3 keeps the two most frequent, Master and PhD,
-- and groups Basic and Graduation as (other).
SELECT model, k FROM rfm_train('capped', 'people', k => 2, features => '{income,education}', max_levels => 3);
SELECT feature, position, level, grouped FROM rfm_model_levels WHERE model = 'capped' ORDER BY position, level;
SELECT rfm_cluster('capped', '{"income": 30000, "education": "Basic"}'::jsonb) = brute_cluster('capped', '{"income": 30000, "education": "(other)"}'::jsonb) AS grouped_level_uses_other;

-- RFM column names keep the default log features; non-RFM ones get none.
CREATE TABLE rfm_like AS SELECT customer_id, children AS frequency, income AS monetary, age FROM people;
SELECT model FROM rfm_train('rfm_like', 'rfm_like', k => 2, features => '{age,frequency,monetary}');
SELECT log_features FROM rfm_models WHERE model = 'rfm_like';

------------------------------------------------------------------------------
-- 2. PCA
------------------------------------------------------------------------------
SELECT model, k FROM rfm_train('pca', 'people', k => 3, features => '{income,children,age,education}', pca => 2);
SELECT array_length(pca_components, 1) AS components, array_length(pca_components, 2) AS loadings,
       cardinality(pca_variance_ratio) AS ratios, pca_variance_ratio[1] >= pca_variance_ratio[2] AS descending
FROM rfm_models WHERE model = 'pca';
-- Loadings are unit vectors, orthogonal to each other (in plain SQL).
SELECT round((SELECT sum(pca_components[1][j] ^ 2) FROM generate_series(1, array_length(pca_components, 2)) j)::numeric, 9) AS norm1,
       round((SELECT sum(pca_components[1][j] * pca_components[2][j]) FROM generate_series(1, array_length(pca_components, 2)) j)::numeric, 9) AS dot12
FROM rfm_models WHERE model = 'pca';
-- The first component's variance equals the variance (n - 1) of the projections, in SQL.
WITH m AS (SELECT * FROM rfm_models WHERE model = 'pca' AND active),
     z AS (
        SELECT p.customer_id,
               sum(m.pca_components[1][u.j] * ((CASE WHEN u.f LIKE '%=%' THEN (p.education = split_part(u.f, '=', 2))::int::float8
                                                   ELSE least(greatest((to_jsonb(p) ->> u.f)::float8, coalesce(m.lower_fence[u.j], '-Infinity')),
                                                              coalesce(m.upper_fence[u.j], 'Infinity')) END
                                              - m.scale_mean[u.j]) / m.scale_sd[u.j] - m.pca_center[u.j])) AS pc1
        FROM people p, m, unnest(m.encoded_features) WITH ORDINALITY AS u(f, j)
        GROUP BY p.customer_id)
SELECT abs(var_samp(pc1) - (SELECT pca_variance[1] FROM rfm_models WHERE model = 'pca')) < 1e-9 AS variance_matches
FROM z;
-- pca_variance picks the smallest count whose cumulative ratio exceeds the share.
SELECT model FROM rfm_train('pca_share', 'people', k => 3, features => '{income,children,age,education}', pca_variance => 0.6);
SELECT cardinality(s.pca_variance_ratio) = (
           SELECT min(n) FROM generate_series(1, cardinality(p.pca_variance_ratio)) n
           WHERE (SELECT sum(r) FROM unnest(p.pca_variance_ratio[1:n]) r) > 0.6) AS smallest_count
FROM rfm_models s, rfm_models p WHERE s.model = 'pca_share' AND p.model = 'pca';

------------------------------------------------------------------------------
-- 3. rfm_explain agrees with brute force (and with rfm_cluster)
------------------------------------------------------------------------------
SELECT mname, count(*) AS rows,
       count(*) FILTER (WHERE e.cluster = b.c1 AND e.cluster = rfm_cluster(mname, to_jsonb(p))) AS nearest_ok,
       count(*) FILTER (WHERE e.runner_up = b.c2) AS runner_up_ok,
       count(*) FILTER (WHERE abs(e.distance - b.d1) < 1e-9 AND abs(e.runner_up_distance - b.d2) < 1e-9
                          AND abs(e.margin - (b.d2 - b.d1)) < 1e-9) AS distances_ok,
       count(*) FILTER (WHERE abs((SELECT sum(x) FROM unnest(e.shares) x) - 1) < 1e-9) AS shares_sum_to_1
FROM unnest(ARRAY['people', 'pca']) AS mname, people p,
     LATERAL rfm_explain(mname, to_jsonb(p)) e,
     LATERAL (SELECT (array_agg(cluster ORDER BY d, cluster))[1] AS c1, (array_agg(cluster ORDER BY d, cluster))[2] AS c2,
                     (array_agg(d ORDER BY d, cluster))[1] AS d1, (array_agg(d ORDER BY d, cluster))[2] AS d2
              FROM brute_distances(mname, to_jsonb(p))) b
GROUP BY mname ORDER BY mname;
-- Shares by hand for one row of a numeric model: (x_j - c_j)^2 / distance^2.
SELECT e.features, e.label = (SELECT label FROM rfm_centroids WHERE model = 'pca' AND cluster = e.cluster) AS label_ok
FROM rfm_explain('pca', (SELECT to_jsonb(p) FROM people p WHERE customer_id = 1)) e;
SELECT (e).cluster = rfm_cluster(rfm_model_of('people'), to_jsonb(p)) AS value_form_ok
FROM (SELECT rfm_explain(rfm_model_of('people'), to_jsonb(p)) AS e, p FROM people p WHERE customer_id = 5) s;

------------------------------------------------------------------------------
-- 4. Model values, export and import carry the encoding and the PCA
------------------------------------------------------------------------------
SELECT rfm_model_export('pca') -> 'format_version' AS format_version,
       jsonb_array_length(rfm_model_export('pca') -> 'pca' -> 'components') AS components;
SELECT model, version FROM rfm_model_import(rfm_model_export('pca'), 'pca_copy');
SELECT count(*) FILTER (WHERE rfm_cluster('pca', to_jsonb(p)) = rfm_cluster('pca_copy', to_jsonb(p))) AS same_as_import,
       count(*) FILTER (WHERE rfm_cluster('pca', to_jsonb(p)) = rfm_cluster(rfm_model_of('pca'), to_jsonb(p))) AS same_as_value,
       count(*) FILTER (WHERE rfm_cluster('pca', to_jsonb(p))
                            = rfm_cluster(rfm_model_of('pca')::text::rfm_model, to_jsonb(p))) AS same_as_text_value
FROM people p;

------------------------------------------------------------------------------
-- 5. Profiles on any column, against plain SQL
------------------------------------------------------------------------------
CREATE TEMP TABLE prof AS SELECT * FROM rfm_profile('people', 'people', '{income,age,marital,education}');
WITH a AS (SELECT rfm_cluster('people', to_jsonb(p)) AS c, p.* FROM people p)
SELECT count(*) FILTER (WHERE pr.column_name = 'income'
                          AND abs(pr.mean - (SELECT avg(income) FROM a WHERE c = pr.cluster)) < 1e-9
                          AND abs(pr.median - (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY income) FROM a WHERE c = pr.cluster)) < 1e-9
                          AND pr.customers = (SELECT count(*) FROM a WHERE c = pr.cluster)) AS income_ok,
       count(*) FILTER (WHERE pr.column_name = 'marital'
                          AND pr.top_levels[1] = (SELECT marital FROM a WHERE c = pr.cluster GROUP BY marital ORDER BY count(*) DESC, marital LIMIT 1)
                          AND abs(pr.top_shares[1] - (SELECT max(n)::float8 / sum(n) FROM (SELECT count(*) n FROM a WHERE c = pr.cluster GROUP BY marital) q)) < 1e-12) AS marital_ok,
       count(DISTINCT pr.cluster) AS clusters,
       sum(pr.share) FILTER (WHERE pr.column_name = 'age') AS shares
FROM prof pr;
SELECT rfm_report('people', 'people', '{income,marital}') LIKE '%Segments by source columns%' AS report_has_columns;

------------------------------------------------------------------------------
-- 6. Publish, transitions, evaluate, holdout for a model on other features
------------------------------------------------------------------------------
SELECT object, kind FROM rfm_publish('people', 'people', 'people_segments');
SELECT count(*) AS rows, count(*) FILTER (WHERE s.cluster = rfm_cluster('people', to_jsonb(p))) AS same
FROM people_segments s JOIN people p USING (customer_id);
SELECT count(*) FROM people_segments_mv;
SELECT sum(customers) AS moved, bool_and(from_segment = to_segment) AS all_stay
FROM rfm_transitions('people', 'people', 'people');
-- Absent and unassigned are different: customer 3 is only in the later snapshot, 5 only in
-- the earlier one; a NULL income makes 1 and 2 unassigned before, 2 and 4 after.
CREATE TABLE people_before AS SELECT * FROM people WHERE customer_id <> 3;
CREATE TABLE people_after AS SELECT * FROM people WHERE customer_id <> 5;
UPDATE people_before SET income = NULL WHERE customer_id IN (1, 2);
UPDATE people_after SET income = NULL WHERE customer_id IN (2, 4);
SELECT t.from_segment IN ('(new)', '(unassigned)') AS from_special, t.to_segment IN ('(gone)', '(unassigned)') AS to_special,
       CASE WHEN t.from_segment IN ('(new)', '(unassigned)') THEN t.from_segment END AS from_segment,
       CASE WHEN t.to_segment IN ('(gone)', '(unassigned)') THEN t.to_segment END AS to_segment,
       sum(t.customers) AS customers
FROM rfm_transitions('people', 'people_before', 'people_after') t
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
SELECT t.from_segment = rfm_segment('people', to_jsonb(p)) AS segment_4_before
FROM rfm_transitions('people', 'people_before', 'people_after') t, people p
WHERE p.customer_id = 4 AND t.to_segment = '(unassigned)' AND t.from_segment <> '(unassigned)';
SELECT n_rows, n_skipped FROM rfm_evaluate('people', 'people');
SELECT period, n_rows FROM rfm_holdout('pca', 'people') ORDER BY period DESC;
SELECT rfm_feature_arguments('people', 'c') AS args_categorical, rfm_feature_arguments('rfm_like', 's') AS args_numeric;

------------------------------------------------------------------------------
-- 7. Domains are read as their base type: the same model as on the plain columns
------------------------------------------------------------------------------
CREATE DOMAIN amount_d AS numeric CHECK (VALUE >= 0);
CREATE DOMAIN education_d AS text;
CREATE TABLE people_d AS
SELECT customer_id, income::amount_d AS income, children, education::education_d AS education, response FROM people;
SELECT model FROM rfm_train('people_d', 'people_d', k => 3, features => '{income,children,education,response}');
SELECT count(*) AS centroids,
       count(*) FILTER (WHERE a.scaled = b.scaled AND a.original = b.original AND a.size = b.size AND a.label = b.label) AS equal,
       (SELECT encoded_features FROM rfm_models WHERE model = 'people_d' AND active)
     = (SELECT encoded_features FROM rfm_models WHERE model = 'people' AND active) AS same_columns
FROM rfm_centroids a JOIN rfm_centroids b USING (cluster)
WHERE a.model = 'people' AND b.model = 'people_d';

------------------------------------------------------------------------------
-- 8. Errors
------------------------------------------------------------------------------
-- An id is not a category: more than 10,000 distinct values are refused.
CREATE TABLE many_levels AS SELECT i AS customer_id, i::float8 AS spend, 'code ' || i AS code
FROM generate_series(1, 10001) i;
CREATE TABLE dated (customer_id int, income float8, joined date);
INSERT INTO dated VALUES (1, 10, '2024-01-01'), (2, 20, '2024-02-01');
SELECT q, outcome FROM (VALUES
    ($$SELECT rfm_cluster('people', ARRAY[1, 2, 3, 4]::float8[])$$),
    ($$SELECT rfm_cluster('people', '[1, 2]'::jsonb)$$),
    ($$SELECT rfm_cluster('people', '{"income": "lots", "children": 0, "education": "PhD", "response": true}'::jsonb)$$),
    ($$SELECT rfm_cluster('people', '{"income": 1, "children": 0, "education": ["PhD"], "response": true}'::jsonb)$$),
    ($$SELECT rfm_segment('people', 1, 2, 3)$$),
    ($$SELECT rfm_train('x', 'people', k => 2, features => '{income,age}', pca => 2, pca_variance => 0.9)$$),
    ($$SELECT rfm_train('x', 'people', k => 2, features => '{income,age}', pca => 3)$$),
    ($$SELECT rfm_train('x', 'people', k => 2, features => '{income,age}', pca => 0)$$),
    ($$SELECT rfm_train('x', 'people', k => 2, features => '{income,age}', pca_variance => 1.5)$$),
    ($$SELECT rfm_train('x', 'people', k => 2, features => '{income,education}', log_features => '{education}')$$),
    ($$SELECT rfm_train('x', 'people', k => 2, features => '{income,education}', max_levels => 1)$$),
    ($$SELECT rfm_train('x', 'dated', k => 2, features => '{income,joined}')$$),
    ($$SELECT * FROM rfm_profile('people', 'dated', '{income}')$$),
    ($$SELECT * FROM rfm_profile('people', 'people', '{}')$$),
    ($$SELECT * FROM rfm_profile('people', 'people', '{nope}')$$),
    ($$SELECT * FROM rfm_profile('nope', 'people', '{income}')$$),
    ($$SELECT * FROM rfm_publish('people', 'dated', 'v_dated')$$),
    ($$SELECT * FROM rfm_transitions('people', 'people', 'dated')$$),
    ($$SELECT rfm_train('x', 'many_levels', k => 2, features => '{spend,code}')$$)
) AS t(q), LATERAL try_sql(q) AS outcome;
