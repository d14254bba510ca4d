-- rfm_train, rfm_segment / rfm_cluster, rfm_profile, rfm_evaluate, rfm_k_search,
-- export / import, activate, drop. NOTICEs carry timings, so they are hidden here.
SET client_min_messages = warning;

-- Three groups of customers whose clusters are known: best (recent, frequent, big),
-- middle, lapsed; 40 customers each, spread evenly around the group centre.
CREATE TABLE groups AS
SELECT g.grp, i,
       g.r + (i % 5 - 2) * g.r / 20.0       AS recency,
       g.f + (i % 4 - 1.5) * g.f / 15.0     AS frequency,
       g.m + (i % 8 - 3.5) * g.m / 40.0     AS monetary
FROM (VALUES (1, 5.0, 30.0, 5000.0), (2, 90.0, 6.0, 600.0), (3, 400.0, 1.0, 80.0)) AS g(grp, r, f, m),
     generate_series(1, 40) AS i;

-- No preprocessing (no outlier handling, no log, no scaling): the centroids must be the
-- group means, the sizes 40, the inertia the within-group sum of squares.
SELECT model, version, k, n_rows, silhouette > 0.9 AS well_separated
FROM rfm_train('plain', 'groups', k => 3, outliers => 'keep', log_features => '{}', standardize => false);

WITH means AS (
    SELECT grp, ARRAY[avg(recency), avg(frequency), avg(monetary)]::float8[] AS centre, count(*) AS n
    FROM groups GROUP BY grp
)
SELECT count(*) AS clusters,
       count(*) FILTER (WHERE c.size = m.n
                        AND abs(c.scaled[1] - m.centre[1]) < 1e-9 AND abs(c.scaled[2] - m.centre[2]) < 1e-9
                        AND abs(c.scaled[3] - m.centre[3]) < 1e-9
                        AND c.original = c.scaled) AS centroids_are_group_means
FROM rfm_centroids c
JOIN means m ON abs(c.scaled[1] - m.centre[1]) < 1e-6
WHERE c.model = 'plain';

SELECT abs(m.inertia - w.within) < 1e-6 * w.within AS inertia_is_within_ss
FROM rfm_models m,
     (SELECT sum((recency - ar) ^ 2 + (frequency - af) ^ 2 + (monetary - am) ^ 2) AS within
      FROM groups JOIN (SELECT grp, avg(recency) ar, avg(frequency) af, avg(monetary) am FROM groups GROUP BY grp) a
      USING (grp)) w
WHERE m.model = 'plain';

-- Every customer of a group lands in the same cluster, and groups in different clusters.
SELECT count(DISTINCT grp) AS groups, count(DISTINCT c) AS clusters,
       count(DISTINCT (grp, c)) AS pairs
FROM (SELECT grp, rfm_cluster('plain', recency, frequency, monetary) AS c FROM groups) s;

-- Labels: the centroid scored against the population quintiles, looked up in the rules.
SELECT c.label,
       c.label = (rfm_score(c.original[1], c.original[2], c.original[3], k.b)).segment AS label_from_rules,
       c.action = (rfm_score(c.original[1], c.original[2], c.original[3], k.b)).action AS action_from_rules
FROM rfm_centroids c,
     (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM groups) k
WHERE c.model = 'plain'
ORDER BY c.original[3] DESC;

-- Automatic k: silhouette finds the 3 groups; the whole curve is stored, one k chosen.
SELECT k FROM rfm_train('auto', 'groups', k_min => 2, k_max => 6);
SELECT k, chosen, silhouette IS NOT NULL AS has_silhouette, davies_bouldin > 0 AS has_db,
       calinski_harabasz > 0 AS has_ch
FROM rfm_k_search WHERE model = 'auto' ORDER BY k;
-- The elbow (Kneedle) of the same curve.
SELECT k AS elbow_k FROM rfm_train('auto_elbow', 'groups', k_min => 2, k_max => 6, select_k => 'elbow');

-- rfm_k_search gives the same curve without storing a model.
SELECT count(*) AS points,
       bool_and(abs(s.inertia - k.inertia) < 1e-9 AND s.silhouette = k.silhouette) AS same_curve
FROM rfm_k_search('groups', k_min => 2, k_max => 6) s
JOIN rfm_k_search k ON k.model = 'auto' AND k.k = s.k;

-- Same data, options and seed: same model (version 2 equals version 1).
SELECT version FROM rfm_train('auto', 'groups', k_min => 2, k_max => 6);
SELECT bool_and(a.scaled = b.scaled AND a.label = b.label AND a.size = b.size) AS deterministic
FROM rfm_centroids a JOIN rfm_centroids b USING (model, cluster)
WHERE a.model = 'auto' AND a.version = 1 AND b.version = 2;
SELECT version, active FROM rfm_models WHERE model = 'auto' ORDER BY version;

------------------------------------------------------------------------------
-- The generated customers (setup.sql): clip, log, standardize; k = 4.
------------------------------------------------------------------------------
SELECT model, version, k, n_rows FROM rfm_train('shop', 'customer_rfm', k => 4);

-- Assignment equals a brute-force nearest centroid after the stored preprocessing, done
-- here in plain SQL from the stored parameters.
WITH m AS (SELECT * FROM rfm_models WHERE model = 'shop' AND active),
x AS (
    SELECT c.customer_id, f.j,
           (CASE WHEN f.name = ANY (m.log_features) THEN ln(1 + least(greatest(f.v, m.lower_fence[f.j]), m.upper_fence[f.j]))
                 ELSE least(greatest(f.v, m.lower_fence[f.j]), m.upper_fence[f.j]) END
            - m.scale_mean[f.j]) / m.scale_sd[f.j] AS z
    FROM customer_rfm c, m,
         LATERAL (VALUES (1, 'recency', c.recency), (2, 'frequency', c.frequency::float8), (3, 'monetary', c.monetary)) f(j, name, v)
),
d AS (
    SELECT x.customer_id, ce.cluster, sum((x.z - ce.scaled[x.j]) ^ 2) AS dist
    FROM x JOIN rfm_centroids ce ON ce.model = 'shop' AND ce.version = (SELECT version FROM m)
    GROUP BY x.customer_id, ce.cluster
),
brute AS (SELECT DISTINCT ON (customer_id) customer_id, cluster FROM d ORDER BY customer_id, dist, cluster)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE b.cluster <> rfm_cluster('shop', c.recency, c.frequency, c.monetary)) AS mismatches,
       count(*) FILTER (WHERE rfm_cluster('shop', c.recency, c.frequency, c.monetary)
                              <> rfm_cluster('shop', ARRAY[c.recency, c.frequency, c.monetary])) AS array_form_mismatches
FROM customer_rfm c JOIN brute b USING (customer_id);

-- The profile equals plain SQL over the training rows grouped by assigned cluster.
WITH a AS (
    SELECT rfm_cluster('shop', recency, frequency, monetary) AS cluster, recency, frequency::float8 AS frequency, monetary
    FROM customer_rfm
), s AS (
    SELECT cluster, count(*) AS size, avg(recency) AS ar, avg(frequency) AS af, avg(monetary) AS am,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY recency) AS mr,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY monetary) AS mm,
           sum(monetary) AS rev
    FROM a GROUP BY cluster
)
SELECT count(*) AS clusters,
       count(*) FILTER (WHERE p.size = s.size
                          AND abs(p.share - s.size::float8 / (SELECT count(*) FROM customer_rfm)) < 1e-12
                          AND abs(p.avg_recency - s.ar) < 1e-9 AND abs(p.avg_frequency - s.af) < 1e-9
                          AND abs(p.avg_monetary - s.am) < 1e-6 * s.am
                          AND p.median_recency = s.mr AND p.median_monetary = s.mm
                          AND abs(p.revenue_share - s.rev / (SELECT sum(monetary) FROM customer_rfm)) < 1e-9
                          AND p.mean[1] = p.avg_recency AND p.median[3] = p.median_monetary) AS profile_matches,
       (SELECT count(DISTINCT label) FROM rfm_profile('shop')) AS unique_labels,
       abs((SELECT sum(share) FROM rfm_profile('shop')) - 1) < 1e-12 AS shares_sum_to_one
FROM rfm_profile('shop') p JOIN s USING (cluster);

-- The best cluster (lowest recency, highest frequency and spend) is not Lost or Hibernating.
SELECT label NOT IN ('Lost', 'Hibernating') AND label NOT LIKE 'Lost (%' AND label NOT LIKE 'Hibernating (%' AS best_is_not_lost
FROM rfm_profile('shop') ORDER BY avg_monetary DESC LIMIT 1;
SELECT count(*) AS labels, count(*) FILTER (WHERE action IS NOT NULL) AS with_action FROM rfm_profile('shop');

-- rfm_evaluate on the training rows reproduces the training metrics.
SELECT e.n_rows = m.n_rows AS same_rows,
       abs(e.inertia - m.inertia) < 1e-6 * m.inertia AS same_inertia,
       abs(e.silhouette - m.silhouette) < 1e-9 AS same_silhouette,
       abs(e.davies_bouldin - m.davies_bouldin) < 1e-9 AS same_db,
       abs(e.calinski_harabasz - m.calinski_harabasz) < 1e-6 * m.calinski_harabasz AS same_ch
FROM rfm_evaluate('shop', 'customer_rfm') e JOIN rfm_models m ON m.model = e.model AND m.version = e.version;

-- Export, import under another name: identical assignments.
SELECT doc ->> 'format' AS format, doc -> 'format_version' AS format_version,
       jsonb_array_length(doc -> 'clusters') AS clusters, doc -> 'features' AS features
FROM (SELECT rfm_model_export('shop') AS doc) d;
SELECT model, version, k FROM rfm_model_import(rfm_model_export('shop'), 'shop_copy');
SELECT count(*) FILTER (WHERE rfm_segment('shop', recency, frequency, monetary)
                              IS DISTINCT FROM rfm_segment('shop_copy', recency, frequency, monetary)) AS segment_mismatches
FROM customer_rfm;
-- The document survives a trip through text (as when copied to another database).
SELECT version FROM rfm_model_import(rfm_model_export('shop')::text::jsonb, 'shop_copy');
SELECT count(*) FILTER (WHERE rfm_cluster('shop', recency, frequency, monetary)
                              <> rfm_cluster('shop_copy', recency, frequency, monetary)) AS cluster_mismatches
FROM customer_rfm;

-- A retrain that is rolled back leaves the previous version active.
BEGIN;
SELECT version FROM rfm_train('shop', 'customer_rfm', k => 3);
SELECT k FROM rfm_models WHERE model = 'shop' AND active;
ROLLBACK;
SELECT version, k FROM rfm_models WHERE model = 'shop' AND active;

-- Rollback to an earlier version with rfm_activate.
SELECT version FROM rfm_train('shop', 'customer_rfm', k => 3);
SELECT count(DISTINCT rfm_cluster('shop', recency, frequency, monetary)) AS clusters_v2 FROM customer_rfm;
SELECT rfm_activate('shop', 1);
SELECT count(DISTINCT rfm_cluster('shop', recency, frequency, monetary)) AS clusters_v1 FROM customer_rfm;
SELECT version, active FROM rfm_models WHERE model = 'shop' ORDER BY version;

-- Summary view.
SELECT model, active_version, k, versions, array_length(segments, 1) AS segments
FROM rfm_model_summary ORDER BY model;

-- Drop: all versions go, with their centroids and curves.
SELECT rfm_drop_model('shop_copy') AS versions_dropped, rfm_drop_model('no such model') AS none_dropped;
SELECT count(*) AS leftovers FROM rfm_centroids WHERE model = 'shop_copy';

------------------------------------------------------------------------------
-- Bad input
------------------------------------------------------------------------------
CREATE TABLE words (recency date, frequency float8, monetary float8);
INSERT INTO words VALUES ('2024-01-01', 1, 1);
CREATE TABLE nothing (recency float8, frequency float8, monetary float8);
CREATE TABLE nulls AS SELECT NULL::float8 AS recency, 1::float8 AS frequency, 'NaN'::float8 AS monetary;
CREATE SEQUENCE a_sequence;
CREATE TABLE huge AS SELECT 1e300 * i::float8 AS recency, 1::float8 AS frequency, 1::float8 AS monetary FROM generate_series(1, 10) i;
CREATE TABLE same AS SELECT 1::float8 AS recency, 2::float8 AS frequency, 3::float8 AS monetary FROM generate_series(1, 20);
CREATE TABLE one_row AS SELECT 1::float8 AS recency, 2::float8 AS frequency, 3::float8 AS monetary;
CREATE TABLE three_points AS SELECT (i % 3)::float8 AS recency, 1::float8 AS frequency, 1::float8 AS monetary FROM generate_series(1, 30) i;

SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_segment('no such model', 1, 1, 1)$$),
    ($$SELECT rfm_cluster('shop_copy', 1, 1, 1)$$),
    ($$SELECT rfm_segment('shop', ARRAY[1, 2]::float8[])$$),
    ($$SELECT rfm_segment('shop', 'NaN', 1, 1)$$),
    ($$SELECT rfm_cluster('shop', 1, 'Infinity', 1)$$),
    ($$SELECT rfm_segment('plain', ARRAY[1, 'NaN', 1]::float8[])$$),
    ($$SELECT rfm_train(NULL, 'groups')$$),
    ($$SELECT rfm_train('', 'groups')$$),
    ($$SELECT rfm_train('m', NULL)$$),
    ($$SELECT rfm_train('m', 'no_such_table')$$),
    ($$SELECT rfm_train('m', 'a_sequence')$$),
    ($$SELECT rfm_train('m', 'groups', features => '{recency,price}', log_features => '{}')$$),
    ($$SELECT rfm_train('m', 'words')$$),
    ($$SELECT rfm_train('m', 'nothing')$$),
    ($$SELECT rfm_train('m', 'nulls')$$),
    ($$SELECT rfm_train('m', 'groups', k => 1)$$),
    ($$SELECT rfm_train('m', 'groups', k => 0)$$),
    ($$SELECT rfm_train('m', 'groups', k => -3)$$),
    ($$SELECT rfm_train('m', 'groups', k => 51)$$),
    ($$SELECT rfm_train('m', 'groups', k => 200)$$),
    ($$SELECT rfm_train('m', 'groups', k_min => 5, k_max => 3)$$),
    ($$SELECT rfm_train('m', 'groups', k_min => 1)$$),
    ($$SELECT rfm_train('m', 'groups', select_k => 'gap')$$),
    ($$SELECT rfm_train('m', 'groups', outliers => 'winsorize')$$),
    ($$SELECT rfm_train('m', 'groups', log_features => '{price}')$$),
    ($$SELECT rfm_train('m', 'groups', features => '{}')$$),
    ($$SELECT rfm_train('m', 'groups', features => '{recency,recency}')$$),
    ($$SELECT rfm_train('m', 'groups', features => '{recency,NULL}')$$),
    ($$SELECT rfm_train('m', 'groups', n_init => 0)$$),
    ($$SELECT rfm_train('m', 'groups', max_iter => 0)$$),
    ($$SELECT rfm_train('m', 'groups', tolerance => -1)$$),
    ($$SELECT rfm_train('m', 'groups', tolerance => 'NaN')$$),
    ($$SELECT rfm_train('m', 'groups', standardize => NULL)$$),
    ($$SELECT rfm_evaluate('no such model', 'groups')$$),
    ($$SELECT rfm_train('m', 'huge', k => 2, outliers => 'keep', log_features => '{}', standardize => false)$$),
    ($$SELECT rfm_train('m', 'same', k => 2)$$),
    ($$SELECT rfm_train('m', 'one_row', k => 2)$$),
    ($$SELECT rfm_train('m', 'three_points', k => 5, outliers => 'keep')$$),
    ($$SELECT rfm_segment('plain', 1e300, 1, 1)$$),
    ($$SELECT rfm_activate('auto', 99)$$),
    ($$SELECT rfm_model_import('{"format": "something else"}')$$),
    ($$SELECT rfm_model_import('[1, 2]')$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('auto'), '{format_version}', '3'))$$),
    ($$SELECT rfm_model_import(jsonb_set(rfm_model_export('auto'), '{clusters,0,scaled}', '[1]'))$$)
) AS cases(q);

-- A hostile feature name is quoted, not executed.
SELECT try_sql($$SELECT rfm_train('m', 'groups', features => ARRAY['recency"); DROP TABLE groups; --'], log_features => '{}')$$) AS injection;
SELECT try_sql($$SELECT rfm_train('m; DROP TABLE groups', 'groups', k => 2)$$) AS odd_model_name;
SELECT rfm_drop_model('m; DROP TABLE groups') AS dropped_odd_model;
SELECT count(*) AS groups_still_there FROM groups;
SELECT NOT EXISTS (SELECT 1 FROM rfm_models WHERE model = 'm') AS no_model_m;

-- Documented values: a constant feature trains (its scale is 1); a relation whose name has
-- quotes, spaces and a semicolon is quoted, not executed.
CREATE TABLE flat AS SELECT 5::float8 AS recency, i::float8 AS frequency, i * 10::float8 AS monetary FROM generate_series(1, 50) i;
SELECT k, n_rows FROM rfm_train('flat', 'flat', k => 2);
SELECT scale_sd[1] AS constant_feature_scale FROM rfm_models WHERE model = 'flat';
CREATE TABLE "odd; name ""x""" AS SELECT * FROM groups;
SELECT k, n_rows FROM rfm_train('odd', '"odd; name ""x"""', k => 3);
SELECT source FROM rfm_models WHERE model = 'odd';

-- The same rows in another physical order train the same model, bit for bit (training
-- sorts rows canonically first): here a copy written in random order, and one reversed.
CREATE TABLE customer_rfm_shuffled AS SELECT * FROM customer_rfm ORDER BY random();
CREATE TABLE customer_rfm_reversed AS SELECT * FROM customer_rfm ORDER BY customer_id DESC;
SELECT (SELECT array_agg(customer_id) FROM (SELECT customer_id FROM customer_rfm_shuffled LIMIT 20) s)
       IS DISTINCT FROM (SELECT array_agg(customer_id) FROM (SELECT customer_id FROM customer_rfm LIMIT 20) s) AS order_differs;
SELECT count(DISTINCT (t.k, t.inertia, t.silhouette, t.davies_bouldin, t.calinski_harabasz)) AS distinct_results
FROM (VALUES ('order_a', 'customer_rfm'), ('order_b', 'customer_rfm_shuffled'), ('order_c', 'customer_rfm_reversed')) v(m, src),
     LATERAL rfm_train(v.m, v.src::regclass, k_min => 2, k_max => 5, n_init => 3) t;
SELECT count(*) AS centroid_rows,
       count(*) FILTER (WHERE a.scaled = b.scaled AND a.scaled = c.scaled AND a.label = b.label AND a.label = c.label
                        AND a.size = b.size AND a.size = c.size) AS identical
FROM rfm_centroids a
JOIN rfm_centroids b ON b.model = 'order_b' AND b.cluster = a.cluster
JOIN rfm_centroids c ON c.model = 'order_c' AND c.cluster = a.cluster
WHERE a.model = 'order_a';

-- NULL in, NULL out.
SELECT rfm_segment('shop', NULL, 1, 1) IS NULL AS null_feature,
       rfm_segment(NULL, 1, 1, 1) IS NULL AS null_model,
       rfm_cluster('plain', ARRAY[1, NULL, 1]::float8[]) IS NULL AS null_element;
RESET client_min_messages;
