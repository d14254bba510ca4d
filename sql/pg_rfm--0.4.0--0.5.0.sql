-- pg_rfm 0.4.0 -> 0.5.0
-- Any customer data: categorical features (one-hot, vocabulary stored per version), PCA,
-- log_features defaulting to the numeric frequency and monetary features, descriptive
-- cluster names, assignment of rows as jsonb, rfm_explain, rfm_profile on any column, and
-- rfm_publish / rfm_transitions / rfm_report for models on any features.

ALTER TABLE rfm_models ADD COLUMN encoded_features text[];
UPDATE rfm_models SET encoded_features = features;
ALTER TABLE rfm_models ALTER COLUMN encoded_features SET NOT NULL;
ALTER TABLE rfm_models ADD COLUMN encoding jsonb NOT NULL DEFAULT '[]';
ALTER TABLE rfm_models ADD COLUMN pca_center float8[];
ALTER TABLE rfm_models ADD COLUMN pca_components float8[];
ALTER TABLE rfm_models ADD COLUMN pca_variance_ratio float8[];
ALTER TABLE rfm_models ADD COLUMN pca_variance float8[];
COMMENT ON COLUMN rfm_models.features IS 'The source columns the model was trained on (numeric, or categorical: text, boolean or enum).';
COMMENT ON COLUMN rfm_models.encoded_features IS 'The columns the preprocessing works on: each numeric feature, and one 0/1 column feature=level per kept level of each categorical feature (feature=(other) for grouped levels). lower_fence, upper_fence, scale_mean, scale_sd and the centroids'' original, mean, median and total follow this order.';
COMMENT ON COLUMN rfm_models.encoding IS 'Per feature: {"feature", "kind": "numeric"} or {"feature", "kind": "categorical", "levels": [...], "other": [...]} (the vocabulary; rfm_model_levels lists it as rows). Empty: every feature numeric.';
COMMENT ON COLUMN rfm_models.pca_center IS 'PCA: mean of each encoded column after preprocessing, subtracted before projecting (NULL: no PCA).';
COMMENT ON COLUMN rfm_models.pca_components IS 'PCA: the loadings, one row per principal component (components x encoded_features); projections are not whitened.';
COMMENT ON COLUMN rfm_models.pca_variance_ratio IS 'PCA: each component''s share of the total variance of the preprocessed data.';
COMMENT ON COLUMN rfm_models.pca_variance IS 'PCA: each component''s variance (sample variance).';
COMMENT ON TABLE rfm_centroids IS
'One row per cluster of each model version: centroid in the scaled space (the principal components for PCA models) and in original units, size, per encoded feature mean, median and total of the training rows, the cluster''s unique human label and recommended action.';

CREATE VIEW rfm_model_levels AS
SELECT m.model, m.version, e.feature, l.position::int AS position, l.level,
       false AS grouped
FROM rfm_models m
CROSS JOIN LATERAL jsonb_to_recordset(m.encoding) AS e(feature text, kind text, levels jsonb, other jsonb)
CROSS JOIN LATERAL jsonb_array_elements_text(e.levels) WITH ORDINALITY AS l(level, position)
WHERE e.kind = 'categorical'
UNION ALL
SELECT m.model, m.version, e.feature, (jsonb_array_length(e.levels) + 1)::int, o.level, true
FROM rfm_models m
CROSS JOIN LATERAL jsonb_to_recordset(m.encoding) AS e(feature text, kind text, levels jsonb, other jsonb)
CROSS JOIN LATERAL jsonb_array_elements_text(e.other) AS o(level)
WHERE e.kind = 'categorical';
COMMENT ON VIEW rfm_model_levels IS
'The vocabulary of each categorical feature of each model version: one row per level, position = its one-hot column within the feature (alphabetical), grouped = the level shares the feature=(other) column (max_levels). Values not listed encode as all zeros at assignment.';

GRANT SELECT ON rfm_model_levels TO PUBLIC;

DROP FUNCTION rfm_train(text, regclass, int, text[], int, int, text, text, text[], boolean, int, int, float8, bigint);
CREATE FUNCTION rfm_train(
    model        text,
    source       regclass,
    k            int     DEFAULT NULL,
    features     text[]  DEFAULT '{recency,frequency,monetary}',
    k_min        int     DEFAULT 2,
    k_max        int     DEFAULT 10,
    select_k     text    DEFAULT 'silhouette',
    outliers     text    DEFAULT 'clip',
    log_features text[]  DEFAULT NULL,
    standardize  boolean DEFAULT true,
    n_init       int     DEFAULT 10,
    max_iter     int     DEFAULT 300,
    tolerance    float8  DEFAULT 1e-4,
    seed         bigint  DEFAULT 42,
    pca          int     DEFAULT NULL,
    pca_variance float8  DEFAULT NULL,
    max_levels   int     DEFAULT 20
) RETURNS rfm_train_result
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'rfm_train';
COMMENT ON FUNCTION rfm_train(text, regclass, int, text[], int, int, text, text, text[], boolean, int, int, float8, bigint, int, float8, int) IS
'Trains a new version of a KMeans segmentation model from the columns features of source (table, view or materialized view) and makes it the active version. Numeric features are used as they are; text, boolean and enum features are one-hot encoded (at most max_levels columns each, rarer levels grouped as (other)). Then IQR outliers of numeric features (clip, drop or keep), log1p of log_features (NULL: whichever of frequency and monetary are numeric features), standardization, optionally PCA onto pca components (or as many as explain more than pca_variance of the variance), k-means++ and Lloyd, best of n_init runs. k NULL: tries k_min..k_max and picks by silhouette or elbow (Kneedle). Rows with a NULL or non-finite feature are skipped (NOTICE). Clusters are named by the segment rules (RFM models) or by their most distinctive features. Same data, options and seed: same model.';

COMMENT ON FUNCTION rfm_evaluate(text, regclass) IS
'Metrics of the active version of model on the rows of source (for example a later period): each row is encoded, preprocessed and assigned as rfm_cluster does, then inertia, silhouette, Davies-Bouldin and Calinski-Harabasz are computed in the model''s space (the principal components for PCA models).';

DROP FUNCTION rfm_k_search(regclass, text[], int, int, text, text[], boolean, int, int, float8, bigint);
CREATE FUNCTION rfm_k_search(
    source       regclass,
    features     text[]  DEFAULT '{recency,frequency,monetary}',
    k_min        int     DEFAULT 2,
    k_max        int     DEFAULT 10,
    outliers     text    DEFAULT 'clip',
    log_features text[]  DEFAULT NULL,
    standardize  boolean DEFAULT true,
    n_init       int     DEFAULT 10,
    max_iter     int     DEFAULT 300,
    tolerance    float8  DEFAULT 1e-4,
    seed         bigint  DEFAULT 42,
    pca          int     DEFAULT NULL,
    pca_variance float8  DEFAULT NULL,
    max_levels   int     DEFAULT 20
) RETURNS TABLE (k int, inertia float8, silhouette float8, davies_bouldin float8,
                 calinski_harabasz float8, iterations int, elapsed_ms float8)
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_k_search';
COMMENT ON FUNCTION rfm_k_search(regclass, text[], int, int, text, text[], boolean, int, int, float8, bigint, int, float8, int) IS
'The elbow / silhouette table for k_min..k_max on the rows of source, with the same encoding, preprocessing and PCA as rfm_train, without storing a model.';

CREATE FUNCTION rfm_segment(model text, "row" jsonb) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_segment_jsonb';
CREATE FUNCTION rfm_cluster(model text, "row" jsonb) RETURNS int
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_cluster_jsonb';
COMMENT ON FUNCTION rfm_segment(text, jsonb) IS
'Segment label for a model with any features, numeric or categorical: row is a jsonb object keyed by feature name, such as to_jsonb(t) of a source row or jsonb_build_object(''income'', 52000, ''education'', ''PhD''); other keys are ignored. Numeric features take JSON numbers; categorical ones text, booleans or numbers (a value not seen in training encodes as all zeros). A missing key or JSON null gives NULL.';
COMMENT ON FUNCTION rfm_cluster(text, jsonb) IS
'Cluster number for a model with any features: row is a jsonb object keyed by feature name (see rfm_segment(text, jsonb)).';

CREATE TYPE rfm_explanation AS (
    cluster            int,
    label              text,
    distance           float8,
    runner_up          int,
    runner_up_label    text,
    runner_up_distance float8,
    margin             float8,
    features           text[],
    shares             float8[]
);
COMMENT ON TYPE rfm_explanation IS
'Why a row got its segment (rfm_explain): the nearest cluster, its label and Euclidean distance, the second-nearest (runner-up) cluster, label and distance, the margin between the two distances, and each dimension''s share of the squared distance to the nearest centroid, in the model''s preprocessing space (features: the encoded features, or PC1..PCn for PCA models; shares sum to 1).';
CREATE FUNCTION rfm_explain(model text, recency float8, frequency float8, monetary float8) RETURNS rfm_explanation
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_explain';
CREATE FUNCTION rfm_explain(model text, features float8[]) RETURNS rfm_explanation
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_explain';
CREATE FUNCTION rfm_explain(model text, "row" jsonb) RETURNS rfm_explanation
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_explain_jsonb';
COMMENT ON FUNCTION rfm_explain(text, float8, float8, float8) IS
'Why a customer with these recency, frequency and monetary values gets its segment under the active version of model: nearest and runner-up cluster with labels and distances, the margin, and each dimension''s share of the distance. The cluster is always the one rfm_cluster gives.';
COMMENT ON FUNCTION rfm_explain(text, float8[]) IS
'rfm_explain for a numeric model, features in the model''s feature order.';
COMMENT ON FUNCTION rfm_explain(text, jsonb) IS
'rfm_explain for a model with any features: row is a jsonb object keyed by feature name (see rfm_segment(text, jsonb)).';

CREATE FUNCTION rfm_segment(m rfm_model, "row" jsonb) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_segment_value_jsonb';
CREATE FUNCTION rfm_cluster(m rfm_model, "row" jsonb) RETURNS int
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_cluster_value_jsonb';
COMMENT ON FUNCTION rfm_segment(rfm_model, jsonb) IS
'Segment label for a model value with any features: row is a jsonb object keyed by feature name.';
COMMENT ON FUNCTION rfm_cluster(rfm_model, jsonb) IS
'Cluster number for a model value with any features: row is a jsonb object keyed by feature name.';
CREATE FUNCTION rfm_explain(m rfm_model, recency float8, frequency float8, monetary float8) RETURNS rfm_explanation
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_explain_value';
CREATE FUNCTION rfm_explain(m rfm_model, features float8[]) RETURNS rfm_explanation
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_explain_value';
CREATE FUNCTION rfm_explain(m rfm_model, "row" jsonb) RETURNS rfm_explanation
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_explain_value_jsonb';
COMMENT ON FUNCTION rfm_explain(rfm_model, float8, float8, float8) IS
'rfm_explain for the model value m (recency, frequency, monetary).';
COMMENT ON FUNCTION rfm_explain(rfm_model, float8[]) IS
'rfm_explain for the model value m, numeric features in its feature order.';
COMMENT ON FUNCTION rfm_explain(rfm_model, jsonb) IS
'rfm_explain for the model value m, the row as a jsonb object keyed by feature name.';

CREATE OR REPLACE FUNCTION rfm_model_export(model text, version int) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT jsonb_build_object(
        'format', 'pg_rfm.model',
        'format_version', CASE WHEN m.encoding = '[]' AND m.pca_components IS NULL THEN 1 ELSE 2 END,
        'model', m.model,
        'version', m.version,
        'features', to_jsonb(m.features),
        'k', m.k,
        'n_rows', m.n_rows,
        'n_skipped', m.n_skipped,
        'source', m.source,
        'scaler', jsonb_build_object(
            'outliers', m.outliers,
            'lower', to_jsonb(m.lower_fence),
            'upper', to_jsonb(m.upper_fence),
            'log', (SELECT jsonb_agg(f = ANY (m.log_features) ORDER BY i)
                    FROM unnest(m.encoded_features) WITH ORDINALITY AS u(f, i)),
            'mean', to_jsonb(m.scale_mean),
            'scale', to_jsonb(m.scale_sd)),
        'log_features', to_jsonb(m.log_features),
        'metrics', jsonb_build_object('inertia', m.inertia, 'silhouette', m.silhouette,
                                      'davies_bouldin', m.davies_bouldin,
                                      'calinski_harabasz', m.calinski_harabasz),
        'options', m.options,
        'clusters', (SELECT jsonb_agg(jsonb_build_object(
                         'cluster', c.cluster, 'label', c.label, 'action', coalesce(c.action, ''),
                         'scaled', to_jsonb(c.scaled), 'original', to_jsonb(c.original),
                         'size', c.size, 'mean', coalesce(to_jsonb(c.mean), '[]'),
                         'median', coalesce(to_jsonb(c.median), '[]'), 'sum', coalesce(to_jsonb(c.total), '[]'))
                         ORDER BY c.cluster)
                     FROM rfm_centroids c WHERE c.model = m.model AND c.version = m.version),
        'k_search', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'k', s.k, 'inertia', s.inertia, 'silhouette', s.silhouette,
                         'davies_bouldin', s.davies_bouldin, 'calinski_harabasz', s.calinski_harabasz,
                         'iterations', coalesce(s.iterations, 0), 'elapsed_ms', coalesce(s.elapsed_ms, 0))
                         ORDER BY s.k), '[]')
                     FROM rfm_k_search s WHERE s.model = m.model AND s.version = m.version),
        'created_at', m.created_at,
        'created_by', m.created_by,
        'encoded_features', to_jsonb(m.encoded_features))
        || CASE WHEN m.encoding = '[]' AND m.pca_components IS NULL THEN '{}'::jsonb
           ELSE jsonb_build_object(
               'encoding', m.encoding,
               'pca', CASE WHEN m.pca_components IS NOT NULL THEN jsonb_build_object(
                          'center', to_jsonb(m.pca_center), 'components', to_jsonb(m.pca_components),
                          'variance_ratio', to_jsonb(m.pca_variance_ratio), 'variance', to_jsonb(m.pca_variance)) END)
           END
    FROM rfm_models m
    WHERE m.model = $1 AND m.version = $2
    $$;
COMMENT ON FUNCTION rfm_model_export(text) IS
'The active version of model as one jsonb document (features, encoding of categorical features, preprocessing, PCA, clusters with labels and actions, metrics, options, k search curve), for rfm_model_import in another database. NULL when the model does not exist. Models with categorical features or a PCA are written as format_version 2, which pg_rfm 0.5.0 and later read.';

CREATE OR REPLACE FUNCTION rfm_profile(model text)
    RETURNS TABLE (cluster int, label text, action text, size bigint, share float8,
                   features text[], mean float8[], median float8[],
                   avg_recency float8, avg_frequency float8, avg_monetary float8,
                   median_recency float8, median_frequency float8, median_monetary float8,
                   revenue_share float8)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT c.cluster, c.label, c.action, c.size,
           c.size::float8 / sum(c.size) OVER (),
           m.encoded_features, c.mean, c.median,
           c.mean[array_position(m.features, 'recency')],
           c.mean[array_position(m.features, 'frequency')],
           c.mean[array_position(m.features, 'monetary')],
           c.median[array_position(m.features, 'recency')],
           c.median[array_position(m.features, 'frequency')],
           c.median[array_position(m.features, 'monetary')],
           c.total[array_position(m.features, 'monetary')]
             / nullif(sum(c.total[array_position(m.features, 'monetary')]) OVER (), 0)
    FROM rfm_models m
    JOIN rfm_centroids c ON c.model = m.model AND c.version = m.version
    WHERE m.model = $1 AND m.active
    ORDER BY c.cluster
    $$;
COMMENT ON FUNCTION rfm_profile(text) IS
'Per cluster of the active version of model: label, recommended action, size and share, mean and median of each encoded feature in original units over the training rows (the share of the cluster with that level for a feature=level column; also as avg_/median_ recency, frequency, monetary for RFM models), and revenue share (share of total monetary). rfm_profile(model, source, columns) describes clusters by any columns.';

CREATE FUNCTION rfm_feature_arguments(model text, alias text DEFAULT 's') RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT CASE WHEN jsonb_path_exists(m.encoding, '$[*] ? (@.kind == "categorical")')
                THEN 'jsonb_build_object(' || string_agg(format('%L, %I.%I', u.f, $2, u.f), ', ' ORDER BY u.i) || ')'
                ELSE 'ARRAY[' || string_agg(format('%I.%I::float8', $2, u.f), ', ' ORDER BY u.i) || ']'
           END
    FROM rfm_models m CROSS JOIN LATERAL unnest(m.features) WITH ORDINALITY AS u(f, i)
    WHERE m.model = $1 AND m.active
    GROUP BY m.encoding
    $$;
COMMENT ON FUNCTION rfm_feature_arguments(text, text) IS
'The SQL expression that passes the features of the active version of model, read from the row alias, to rfm_segment / rfm_cluster / rfm_explain: ARRAY[alias.f1::float8, ...] for numeric models, jsonb_build_object(''f1'', alias.f1, ...) for models with categorical features. NULL when the model does not exist. rfm_publish, rfm_transitions and rfm_profile build their queries with it.';

CREATE FUNCTION rfm_require_features(caller text, model text, rel regclass) RETURNS void
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    features text[];
    missing text;
BEGIN
    SELECT m.features INTO features FROM rfm_models m WHERE m.model = rfm_require_features.model AND m.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: model "%" does not exist (no active version)', caller, model
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT model FROM rfm_model_summary lists the models with an active version; rfm_train creates one.';
    END IF;
    SELECT f INTO missing FROM unnest(features) f
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = f
                      AND a.attnum > 0 AND NOT a.attisdropped)
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION '%: column "%" of relation % does not exist', caller, missing, rel
            USING ERRCODE = 'undefined_column',
                  DETAIL = format('Model "%s" has the features %s; %s assigns the rows of %s with them, so it needs a column for each.',
                                  model, features, caller, rel),
                  HINT = 'Use a view whose columns have the names of the model''s features.';
    END IF;
END
$fn$;
COMMENT ON FUNCTION rfm_require_features(text, text, regclass) IS
'Checks, for the function named caller, that model has an active version (else 42704) and that rel has a column for each of its features (else 42703 naming the first missing one). rfm_publish, rfm_transitions and rfm_profile call it before building their queries.';

CREATE OR REPLACE FUNCTION rfm_publish(model text, source regclass, view_name text, id_column text DEFAULT 'customer_id')
    RETURNS TABLE (object text, kind text)
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    parts text[] := parse_ident(view_name);
    ext text := quote_ident('@extschema@');
    v text;
    mv text;
    idx text;
    body text;
    features text[];
    encoding jsonb;
    args text;
BEGIN
    PERFORM rfm_require_features('rfm_publish', rfm_publish.model, source);
    IF array_length(parts, 1) > 2 THEN
        RAISE EXCEPTION 'rfm_publish: view_name must be "view" or "schema.view", got %', view_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = source AND a.attname = id_column
                   AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'rfm_publish: column "%" of relation % does not exist', id_column, source
            USING ERRCODE = 'undefined_column',
                  HINT = 'Name the customer id column of source in id_column.';
    END IF;
    SELECT m.features, m.encoding INTO features, encoding
    FROM rfm_models m WHERE m.model = rfm_publish.model AND m.active;
    v := array_to_string(ARRAY(SELECT quote_ident(p) FROM unnest(parts) p), '.');
    mv := array_to_string(ARRAY(SELECT quote_ident(p) FROM unnest(parts[1:array_length(parts, 1) - 1]) p)
                          || quote_ident(parts[array_length(parts, 1)] || '_mv'), '.');
    idx := quote_ident(parts[array_length(parts, 1)] || '_mv_id');
    -- Always current: reads the active version of the model and the rules in force at query
    -- time, once, on the node where the query is issued, and passes them as values (so the
    -- view works on Citus distributed tables, whose workers have no model or rule tables).
    -- RFM models get R/F/M scores; models on other features their feature columns.
    IF NOT (encoding = '[]' AND cardinality(features) = 3
            AND features @> ARRAY['recency', 'frequency', 'monetary']) THEN
        args := rfm_feature_arguments(rfm_publish.model, 's');
        body := format($q$
        WITH mm AS MATERIALIZED (SELECT %3$s.rfm_model(%4$L::text) AS m)
        SELECT s.%1$I AS customer_id, %6$s
               %3$s.rfm_cluster(mm.m, %5$s) AS cluster,
               %3$s.rfm_segment(mm.m, %5$s) AS segment,
               %3$s.rfm_action(mm.m, %3$s.rfm_cluster(mm.m, %5$s)) AS action,
               %3$s.rfm_model_version(mm.m) AS model_version
        FROM %2$s s CROSS JOIN mm
    $q$, id_column, source, ext, rfm_publish.model, args,
         (SELECT string_agg(format('s.%I, ', f), '' ORDER BY i)
          FROM unnest(features) WITH ORDINALITY u(f, i)
          WHERE f NOT IN (id_column, 'customer_id', 'cluster', 'segment', 'action', 'model_version')));
    ELSE
    body := format($q$
        WITH mm AS MATERIALIZED (SELECT %3$s.rfm_model(%4$L::text) AS m),
             k AS MATERIALIZED (SELECT %3$s.rfm_breaks(recency, frequency, monetary) AS b, %3$s.rfm_rules() AS rules
                                FROM %2$s)
        SELECT s.%1$I AS customer_id, s.recency, s.frequency, s.monetary,
               sc.r, sc.f, sc.m, sc.code,
               %3$s.rfm_cluster(mm.m, s.recency, s.frequency, s.monetary) AS cluster,
               %3$s.rfm_segment(mm.m, s.recency, s.frequency, s.monetary) AS segment,
               %3$s.rfm_action(mm.m, %3$s.rfm_cluster(mm.m, s.recency, s.frequency, s.monetary)) AS action,
               %3$s.rfm_model_version(mm.m) AS model_version
        FROM %2$s s CROSS JOIN mm CROSS JOIN k
        CROSS JOIN LATERAL %3$s.rfm_score(s.recency, s.frequency, s.monetary, k.b, k.rules) sc
    $q$, id_column, source, ext, rfm_publish.model);
    END IF;
    EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', v, body);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v,
                   format('Segments of the customers in %s by pg_rfm model %s (always current).', source, rfm_publish.model));
    EXECUTE format('DROP MATERIALIZED VIEW IF EXISTS %s', mv);
    EXECUTE format('CREATE MATERIALIZED VIEW %s AS SELECT * FROM %s', mv, v);
    EXECUTE format('CREATE UNIQUE INDEX %s ON %s (customer_id)', idx, mv);
    EXECUTE format('COMMENT ON MATERIALIZED VIEW %s IS %L', mv,
                   format('Snapshot of %s; refresh after each retrain with REFRESH MATERIALIZED VIEW CONCURRENTLY.', v));
    object := v; kind := 'view'; RETURN NEXT;
    object := mv; kind := 'materialized view'; RETURN NEXT;
    object := idx; kind := 'unique index'; RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION rfm_publish(text, regclass, text, text) IS
'Publishes the segments of the customers in source (columns id_column and the model''s features) for BI tools: a view view_name (always current: for RFM models recency, frequency, monetary, R/F/M scores and code; for models on other features their feature columns; then cluster, segment label, recommended action and model version of the active version) and a materialized view view_name_mv with a unique index on customer_id, for REFRESH MATERIALIZED VIEW CONCURRENTLY after each retrain. The view reads the model and the rules once per query and passes them as values, so source may be a Citus distributed table.';

CREATE OR REPLACE FUNCTION rfm_transitions(model text, before regclass, after regclass, id_column text DEFAULT 'customer_id')
    RETURNS TABLE (from_segment text, to_segment text, customers bigint, share_of_from float8)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    ext text := quote_ident('@extschema@');
    rel regclass;
BEGIN
    PERFORM rfm_require_features('rfm_transitions', rfm_transitions.model, snapshot.r)
    FROM unnest(ARRAY[before, after]) AS snapshot(r);
    FOREACH rel IN ARRAY ARRAY[before, after] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = id_column
                       AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'rfm_transitions: column "%" of relation % does not exist', id_column, rel
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name the customer id column of both snapshots in id_column.';
        END IF;
    END LOOP;
    RETURN QUERY EXECUTE format($q$
        WITH mm AS MATERIALIZED (SELECT %2$s.rfm_model(%3$L::text) AS m),
             b AS (SELECT s.%1$I AS id, %2$s.rfm_segment(mm.m, %6$s) AS seg, true AS here FROM %4$s s, mm),
             a AS (SELECT s.%1$I AS id, %2$s.rfm_segment(mm.m, %6$s) AS seg, true AS here FROM %5$s s, mm),
             moves AS (
                SELECT CASE WHEN b.here THEN coalesce(b.seg, '(unassigned)') ELSE '(new)' END AS from_segment,
                       CASE WHEN a.here THEN coalesce(a.seg, '(unassigned)') ELSE '(gone)' END AS to_segment,
                       count(*) AS n
                FROM b FULL JOIN a ON a.id = b.id
                GROUP BY 1, 2)
        SELECT from_segment, to_segment, n, n::float8 / sum(n) OVER (PARTITION BY from_segment)
        FROM moves ORDER BY from_segment, n DESC, to_segment
    $q$, id_column, ext, model, before, after, rfm_feature_arguments(model, 's'));
END
$fn$;
COMMENT ON FUNCTION rfm_transitions(text, regclass, regclass, text) IS
'How many customers moved from each segment to each other segment between two snapshots with the model''s feature columns (for example as of two dates), both assigned with the active version of model and joined on id_column; customers only in after come from ''(new)'', customers only in before go to ''(gone)'', customers in a snapshot with a NULL feature are ''(unassigned)'' there. The churn-warning signal: Loyal Customers -> At Risk.';

CREATE FUNCTION rfm_profile(model text, source regclass, columns text[])
    RETURNS TABLE (cluster int, label text, customers bigint, share float8, column_name text,
                   mean float8, median float8, top_levels text[], top_shares float8[])
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    ext text := quote_ident('@extschema@');
    args text;
    col text;
    cat text;
    ty text;
    parts text[] := '{}';
BEGIN
    PERFORM rfm_require_features('rfm_profile', rfm_profile.model, source);
    args := rfm_feature_arguments(rfm_profile.model, 's');
    IF cardinality(columns) = 0 THEN
        RAISE EXCEPTION 'rfm_profile: columns must name at least one column of %', source
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH col IN ARRAY columns LOOP
        SELECT t.typcategory::text, format_type(a.atttypid, a.atttypmod) INTO cat, ty
        FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
        JOIN pg_type t ON t.oid = CASE at.typtype WHEN 'd' THEN at.typbasetype ELSE at.oid END
        WHERE a.attrelid = rfm_profile.source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'rfm_profile: column "%" of relation % does not exist', col, source
                USING ERRCODE = 'undefined_column';
        END IF;
        IF cat = 'N' THEN
            parts := parts || format($q$SELECT "pg_rfm cluster" AS cluster, %1$L::text AS column_name,
                avg(%1$I)::float8 AS mean, percentile_cont(0.5) WITHIN GROUP (ORDER BY %1$I::float8) AS median,
                NULL::text[] AS top_levels, NULL::float8[] AS top_shares
                FROM a GROUP BY 1$q$, col);
        ELSIF cat IN ('S', 'B', 'E') THEN
            parts := parts || format($q$SELECT cluster, %1$L::text, NULL::float8, NULL::float8,
                (array_agg(v ORDER BY n DESC, v NULLS LAST))[1:5], (array_agg(n::float8 / t ORDER BY n DESC, v NULLS LAST))[1:5]
                FROM (SELECT "pg_rfm cluster" AS cluster, %1$I::text AS v, count(*) AS n,
                             sum(count(*)) OVER (PARTITION BY "pg_rfm cluster") AS t
                      FROM a GROUP BY 1, 2) x
                GROUP BY 1$q$, col);
        ELSE
            RAISE EXCEPTION 'rfm_profile: column "%" of relation % has type %, neither numeric nor categorical', col, source, ty
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Profile a numeric form of it from a view, for example extract(year FROM ...) of a date.';
        END IF;
    END LOOP;
    RETURN QUERY EXECUTE format($q$
        WITH mm AS MATERIALIZED (SELECT %1$s.rfm_model(%2$L::text) AS m),
             a AS MATERIALIZED (SELECT %1$s.rfm_cluster(mm.m, %3$s) AS "pg_rfm cluster", s.* FROM %4$s s, mm),
             sizes AS (SELECT "pg_rfm cluster" AS cluster, count(*) AS n FROM a
                       WHERE "pg_rfm cluster" IS NOT NULL GROUP BY 1),
             stats AS (%5$s)
        SELECT c.cluster, c.label, coalesce(z.n, 0), coalesce(z.n, 0)::float8 / nullif(sum(z.n) OVER (PARTITION BY st.column_name), 0),
               st.column_name, st.mean, st.median, st.top_levels, st.top_shares
        FROM %1$s.rfm_centroids c
        CROSS JOIN mm
        LEFT JOIN sizes z ON z.cluster = c.cluster
        LEFT JOIN stats st ON st.cluster = c.cluster
        WHERE c.model = %2$L AND c.version = %1$s.rfm_model_version(mm.m)
        ORDER BY c.cluster, array_position(%6$L::text[], st.column_name)
    $q$, ext, rfm_profile.model, args, source, array_to_string(parts, ' UNION ALL '), columns);
END
$fn$;
COMMENT ON FUNCTION rfm_profile(text, regclass, text[]) IS
'Describes each cluster of the active version of model by columns of source, features or not: every row of source is assigned (as rfm_cluster does with the model''s features), then per cluster and column: customers and their share, mean and median for numeric columns (in the column''s own units), the five most frequent values with their shares for text, boolean and enum columns. Rows with a NULL feature are left out.';

CREATE FUNCTION rfm_report(model text, source regclass, columns text[]) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_report';
COMMENT ON FUNCTION rfm_report(text, regclass, text[]) IS
'rfm_report(model) with one more table: the segments described by columns of source, as rfm_profile(model, source, columns) computes them (mean and median of numeric columns, most frequent levels of the others).';
