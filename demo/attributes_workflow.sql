-- Segmenting customers by who they are and how they buy, not by RFM: the walk-through of
-- docs/any-data.md on marketing_customers (demo/attributes_data.sql), the shape of the
-- Kaggle "Customer Personality Analysis" data. Run after attributes_data.sql in a database
-- with CREATE EXTENSION pg_rfm:
--   psql -v ON_ERROR_STOP=1 -f demo/attributes_data.sql -f demo/attributes_workflow.sql
\set ON_ERROR_STOP on
\pset footer off
\timing off

-- Start from scratch when run again.
DROP VIEW IF EXISTS marketing_features CASCADE;
SELECT rfm_drop_model(m) AS dropped_versions FROM unnest(ARRAY['personas', 'personas_90']) AS m;

\echo
\echo '== 1. The data: one row per customer, numeric, text and boolean columns, some dirt'
SELECT count(*)                                               AS customers,
       count(*) FILTER (WHERE income IS NULL)                 AS income_null,
       count(*) FILTER (WHERE income > 200000)                AS income_over_200k,
       count(*) FILTER (WHERE year_birth < 1901)              AS born_before_1901,
       count(DISTINCT education)                              AS educations,
       count(DISTINCT marital_status)                         AS marital_statuses,
       round(100.0 * avg(response::int), 1)                   AS pct_response
FROM marketing_customers;
SELECT marital_status, count(*) AS customers
FROM marketing_customers GROUP BY marital_status ORDER BY count(*) DESC, marital_status;

\echo
\echo '== 2. Prepare: one view with the features (age, spend per line, purchases per channel),'
\echo '==    education and marital_status kept as text, and every original column for profiles'
CREATE VIEW marketing_features AS
SELECT c.*,
       2014 - c.year_birth                                AS age,
       c.kidhome + c.teenhome                             AS children,
       c.mnt_wines                                        AS wine,
       c.mnt_meat                                         AS meat,
       c.mnt_fruits + c.mnt_fish + c.mnt_sweets           AS fresh_food,
       c.mnt_gold                                         AS gold,
       c.mnt_wines + c.mnt_fruits + c.mnt_meat + c.mnt_fish + c.mnt_sweets + c.mnt_gold AS total_spend,
       c.num_deals_purchases                              AS deals,
       c.num_web_purchases                                AS web,
       c.num_catalog_purchases                            AS catalog,
       c.num_store_purchases                              AS store,
       c.num_web_visits_month                             AS web_visits
FROM marketing_customers c;
-- Rows with a NULL income stay in the view: training skips them (NOTICE), and the
-- published segments give them a NULL segment.

\echo
\echo '== 3. Choose k: KMeans on the first 2 principal components, k = 2..8'
SELECT k, round(inertia::numeric, 1) AS inertia, round(silhouette::numeric, 3) AS silhouette,
       round(davies_bouldin::numeric, 3) AS davies_bouldin, round(calinski_harabasz::numeric) AS calinski_harabasz
FROM rfm_k_search('marketing_features',
                  features => '{age,income,kidhome,teenhome,wine,meat,fresh_food,gold,deals,web,catalog,store,web_visits,education,marital_status}',
                  k_min => 2, k_max => 8,
                  log_features => '{wine,meat,fresh_food,gold}',
                  pca => 2, max_levels => 6)
ORDER BY k;

\echo
\echo '== 4. Train: one-hot education and marital_status (at most 6 columns each), clip,'
\echo '==    log1p of the spend columns, standardize, PCA to 2 components, KMeans with k = 4'
SELECT model, version, k, n_rows, round(inertia::numeric, 1) AS inertia,
       round(silhouette::numeric, 3) AS silhouette, round(davies_bouldin::numeric, 3) AS davies_bouldin
FROM rfm_train('personas', 'marketing_features', k => 4,
               features => '{age,income,kidhome,teenhome,wine,meat,fresh_food,gold,deals,web,catalog,store,web_visits,education,marital_status}',
               log_features => '{wine,meat,fresh_food,gold}',
               pca => 2, max_levels => 6);

\echo
\echo '== 5. The stored vocabulary: one column per level, rare marital statuses share (other)'
SELECT feature, position, level, grouped
FROM rfm_model_levels
WHERE model = 'personas' AND version = (SELECT active_version FROM rfm_model_summary WHERE model = 'personas')
ORDER BY feature, position, level;

\echo
\echo '== 6. Preprocessing stored with the model: encoded columns, fences, log features'
SELECT cardinality(encoded_features) AS encoded_columns, log_features,
       lower_fence[array_position(encoded_features, 'age')]    AS age_lower_fence,
       upper_fence[array_position(encoded_features, 'age')]    AS age_upper_fence,
       upper_fence[array_position(encoded_features, 'income')] AS income_upper_fence
FROM rfm_models WHERE model = 'personas' AND active;

\echo
\echo '== 7. PCA: explained variance ratio of each component, and the largest loadings'
SELECT u.j AS component, round(m.pca_variance[u.j]::numeric, 3) AS variance,
       round(u.ratio::numeric, 3) AS variance_ratio,
       round(sum(u.ratio) OVER (ORDER BY u.j)::numeric, 3) AS cumulative
FROM rfm_models m, unnest(m.pca_variance_ratio) WITH ORDINALITY AS u(ratio, j)
WHERE m.model = 'personas' AND m.active;
SELECT u.f AS encoded_column,
       round(m.pca_components[1][u.j]::numeric, 3) AS pc1,
       round(m.pca_components[2][u.j]::numeric, 3) AS pc2
FROM rfm_models m, unnest(m.encoded_features) WITH ORDINALITY AS u(f, j)
WHERE m.model = 'personas' AND m.active
ORDER BY greatest(abs(m.pca_components[1][u.j]), abs(m.pca_components[2][u.j])) DESC
LIMIT 10;

\echo
\echo '== 8. The clusters and their generated names (most distinctive encoded columns)'
SELECT segments FROM rfm_model_summary WHERE model = 'personas';
SELECT c.cluster, c.label, c.size, round(100.0 * c.size / m.n_rows, 1) AS pct_customers,
       round(c.scaled[1]::numeric, 2) AS pc1, round(c.scaled[2]::numeric, 2) AS pc2
FROM rfm_centroids c JOIN rfm_models m USING (model, version)
WHERE m.model = 'personas' AND m.active
ORDER BY c.cluster;

\echo
\echo '== 9. Profile the clusters on any column: features or not, numeric or categorical'
SELECT cluster, label, customers, column_name,
       round(mean::numeric, 2) AS mean, round(median::numeric, 1) AS median,
       top_levels[1:3] AS top_levels, top_shares[1:3]::numeric(4,3)[] AS top_shares
FROM rfm_profile('personas', 'marketing_features',
                 ARRAY['income', 'year_birth', 'children', 'education', 'marital_status',
                       'mnt_wines', 'num_deals_purchases', 'response'])
ORDER BY cluster, array_position(ARRAY['income', 'year_birth', 'children', 'education', 'marital_status',
                                       'mnt_wines', 'num_deals_purchases', 'response'], column_name);

\echo
\echo '== 10. Name the personas after reading the profile, and say what to do with each'
UPDATE rfm_centroids c
SET label = n.label, action = n.action
FROM (VALUES (1, 'Young families',        'Deals and web offers on everyday products'),
             (2, 'Affluent connoisseurs', 'Premium wine and meat in the catalogue; first in line for campaigns'),
             (3, 'Established parents',   'Bundles and deals for households with teenagers'),
             (4, 'Young singles',         'Web-first offers, gold and lifestyle products')) AS n(cluster, label, action)
WHERE c.model = 'personas' AND c.cluster = n.cluster
  AND c.version = (SELECT active_version FROM rfm_model_summary WHERE model = 'personas')
RETURNING c.cluster, c.label, c.action;

\echo
\echo '== 11. Publish: a view (always current) and a materialized view for BI tools'
SELECT * FROM rfm_publish('personas', 'marketing_features', 'customer_personas');
SELECT customer_id, age, income, kidhome, teenhome, wine, education, marital_status, cluster, segment
FROM customer_personas ORDER BY customer_id LIMIT 5;
SELECT segment, count(*) AS customers
FROM customer_personas_mv GROUP BY segment ORDER BY count(*) DESC;

\echo
\echo '== 12. Explain: nearest and runner-up cluster, margin, share of each component'
SELECT f.customer_id, e.label, round(e.distance::numeric, 2) AS distance,
       e.runner_up_label, round(e.margin::numeric, 2) AS margin,
       e.features, e.shares::numeric(4,3)[] AS shares
FROM marketing_features f, LATERAL rfm_explain('personas', to_jsonb(f)) e
WHERE f.customer_id IN (1, 2, 3, 4)
ORDER BY f.customer_id;
\echo '-- the three customers closest to a boundary'
SELECT f.customer_id, e.label, e.runner_up_label, round(e.margin::numeric, 3) AS margin,
       f.age, f.income, f.kidhome, f.teenhome, f.wine, f.deals
FROM marketing_features f, LATERAL rfm_explain('personas', to_jsonb(f)) e
ORDER BY e.margin, f.customer_id
LIMIT 3;
\echo '-- a new prospect as jsonb: an unseen education (all zeros), a grouped marital status'
SELECT e.cluster, e.label, round(e.distance::numeric, 2) AS distance, e.runner_up_label,
       round(e.margin::numeric, 2) AS margin, e.features, e.shares::numeric(4,3)[] AS shares
FROM rfm_explain('personas', jsonb_build_object(
         'age', 41, 'income', 52000, 'kidhome', 0, 'teenhome', 1,
         'wine', 300, 'meat', 100, 'fresh_food', 40, 'gold', 30,
         'deals', 3, 'web', 5, 'catalog', 2, 'store', 6, 'web_visits', 6,
         'education', 'Doctorate', 'marital_status', 'YOLO')) e;

\echo
\echo '== 13. For comparison: PCA keeping 90% of the variance instead of 2 components'
SELECT model, version, k, round(silhouette::numeric, 3) AS silhouette
FROM rfm_train('personas_90', 'marketing_features', k => 4,
               features => '{age,income,kidhome,teenhome,wine,meat,fresh_food,gold,deals,web,catalog,store,web_visits,education,marital_status}',
               log_features => '{wine,meat,fresh_food,gold}',
               pca_variance => 0.9, max_levels => 6);
SELECT cardinality(pca_variance_ratio) AS components,
       round((SELECT sum(r) FROM unnest(pca_variance_ratio) r)::numeric, 3) AS variance_kept
FROM rfm_models WHERE model = 'personas_90' AND active;
\echo '-- mostly the same groups: personas segment x personas_90 cluster'
SELECT rfm_segment('personas', to_jsonb(f)) AS personas, rfm_cluster('personas_90', to_jsonb(f)) AS personas_90_cluster,
       count(*) AS customers
FROM marketing_features f
WHERE f.income IS NOT NULL
GROUP BY 1, 2 ORDER BY 3 DESC;
