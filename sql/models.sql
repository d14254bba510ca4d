-- pg_rfm models: KMeans segmentation models stored in ordinary tables, training,
-- assignment inside queries, inspection, export and import.

------------------------------------------------------------------------------
-- Storage
------------------------------------------------------------------------------
CREATE TABLE rfm_models (
    model             text        NOT NULL,
    version           int         NOT NULL,
    active            boolean     NOT NULL DEFAULT false,
    features          text[]      NOT NULL,
    k                 int         NOT NULL,
    n_rows            bigint      NOT NULL,
    n_skipped         bigint      NOT NULL DEFAULT 0,
    source            text,
    outliers          text        NOT NULL CHECK (outliers IN ('clip', 'drop', 'keep')),
    lower_fence       float8[]    NOT NULL,
    upper_fence       float8[]    NOT NULL,
    log_features      text[]      NOT NULL,
    scale_mean        float8[]    NOT NULL,
    scale_sd          float8[]    NOT NULL,
    inertia           float8,
    silhouette        float8,
    davies_bouldin    float8,
    calinski_harabasz float8,
    options           jsonb       NOT NULL DEFAULT '{}',
    elapsed_ms        float8,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        name        NOT NULL DEFAULT current_user,
    encoded_features  text[]      NOT NULL,
    encoding          jsonb       NOT NULL DEFAULT '[]',
    pca_center        float8[],
    pca_components    float8[],
    pca_variance_ratio float8[],
    pca_variance      float8[],
    PRIMARY KEY (model, version),
    CHECK (version >= 1),
    CHECK (k >= 2)
);
CREATE UNIQUE INDEX rfm_models_one_active ON rfm_models (model) WHERE active;
COMMENT ON TABLE rfm_models IS
'One row per version of each segmentation model: features, preprocessing (IQR fences, log features, standardization), k, training metrics, options, who trained it and when. Exactly one version per model is active; rfm_segment and rfm_cluster use it.';
COMMENT ON COLUMN rfm_models.active IS 'The version rfm_segment / rfm_cluster assign with (at most one per model).';
COMMENT ON COLUMN rfm_models.lower_fence IS 'Per feature IQR lower fence applied before assignment (NULL element: none).';
COMMENT ON COLUMN rfm_models.upper_fence IS 'Per feature IQR upper fence applied before assignment (NULL element: none).';
COMMENT ON COLUMN rfm_models.scale_mean IS 'Per feature mean subtracted after clipping and log (0 when not standardized).';
COMMENT ON COLUMN rfm_models.scale_sd IS 'Per feature population standard deviation divided by (1 when not standardized or constant).';
COMMENT ON COLUMN rfm_models.n_skipped IS 'Source rows left out because a feature was NULL, NaN or infinite.';
COMMENT ON COLUMN rfm_models.features IS 'The source columns the model was trained on (numeric, or categorical: text, boolean or enum).';
COMMENT ON COLUMN rfm_models.encoded_features IS 'The columns the preprocessing works on: each numeric feature, and one 0/1 column feature=level per kept level of each categorical feature (feature=(other) for grouped levels). lower_fence, upper_fence, scale_mean, scale_sd and the centroids'' original, mean, median and total follow this order.';
COMMENT ON COLUMN rfm_models.encoding IS 'Per feature: {"feature", "kind": "numeric"} or {"feature", "kind": "categorical", "levels": [...], "other": [...]} (the vocabulary; rfm_model_levels lists it as rows). Empty: every feature numeric.';
COMMENT ON COLUMN rfm_models.pca_center IS 'PCA: mean of each encoded column after preprocessing, subtracted before projecting (NULL: no PCA).';
COMMENT ON COLUMN rfm_models.pca_components IS 'PCA: the loadings, one row per principal component (components x encoded_features); projections are not whitened.';
COMMENT ON COLUMN rfm_models.pca_variance_ratio IS 'PCA: each component''s share of the total variance of the preprocessed data.';
COMMENT ON COLUMN rfm_models.pca_variance IS 'PCA: each component''s variance (sample variance).';

CREATE TABLE rfm_centroids (
    model    text     NOT NULL,
    version  int      NOT NULL,
    cluster  int      NOT NULL,
    label    text     NOT NULL,
    action   text,
    size     bigint   NOT NULL,
    scaled   float8[] NOT NULL,
    original float8[] NOT NULL,
    mean     float8[],
    median   float8[],
    total    float8[],
    PRIMARY KEY (model, version, cluster),
    UNIQUE (model, version, label),
    FOREIGN KEY (model, version) REFERENCES rfm_models ON DELETE CASCADE ON UPDATE CASCADE
);
COMMENT ON TABLE rfm_centroids IS
'One row per cluster of each model version: centroid in the scaled space (the principal components for PCA models) and in original units, size, per encoded feature mean, median and total of the training rows, the cluster''s unique human label and recommended action.';

CREATE TABLE rfm_k_search (
    model             text    NOT NULL,
    version           int     NOT NULL,
    k                 int     NOT NULL,
    inertia           float8  NOT NULL,
    silhouette        float8,
    davies_bouldin    float8,
    calinski_harabasz float8,
    iterations        int,
    elapsed_ms        float8,
    chosen            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (model, version, k),
    FOREIGN KEY (model, version) REFERENCES rfm_models ON DELETE CASCADE ON UPDATE CASCADE
);
COMMENT ON TABLE rfm_k_search IS
'The k search curve of each model version (elbow and silhouette plots): inertia, silhouette, Davies-Bouldin and Calinski-Harabasz per k tried; chosen marks the k the model uses.';

SELECT pg_catalog.pg_extension_config_dump('rfm_models', '');
SELECT pg_catalog.pg_extension_config_dump('rfm_centroids', '');
SELECT pg_catalog.pg_extension_config_dump('rfm_k_search', '');

CREATE VIEW rfm_model_summary AS
SELECT m.model, m.version AS active_version, m.k, m.features, m.n_rows,
       m.inertia, m.silhouette, m.davies_bouldin, m.calinski_harabasz,
       m.created_at, m.created_by,
       (SELECT count(*) FROM rfm_models v WHERE v.model = m.model) AS versions,
       (SELECT array_agg(c.label ORDER BY c.cluster) FROM rfm_centroids c
         WHERE c.model = m.model AND c.version = m.version) AS segments
FROM rfm_models m
WHERE m.active;
COMMENT ON VIEW rfm_model_summary IS
'Each model with its active version, k, features, training metrics, number of versions and segment labels.';

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

GRANT SELECT ON rfm_models, rfm_centroids, rfm_k_search, rfm_model_summary, rfm_model_levels TO PUBLIC;

------------------------------------------------------------------------------
-- Training and evaluation (C, VOLATILE, run with the caller's privileges)
------------------------------------------------------------------------------
CREATE TYPE rfm_train_result AS (
    model             text,
    version           int,
    k                 int,
    n_rows            bigint,
    inertia           float8,
    silhouette        float8,
    davies_bouldin    float8,
    calinski_harabasz float8,
    elapsed_ms        float8
);
COMMENT ON TYPE rfm_train_result IS 'Result of rfm_train: the new active version, its k, rows used and training metrics.';

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

CREATE FUNCTION rfm_evaluate(model text, source regclass)
    RETURNS TABLE (model text, version int, n_rows bigint, n_skipped bigint, inertia float8,
                   silhouette float8, davies_bouldin float8, calinski_harabasz float8)
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_evaluate';
COMMENT ON FUNCTION rfm_evaluate(text, regclass) IS
'Metrics of the active version of model on the rows of source (for example a later period): each row is encoded, preprocessed and assigned as rfm_cluster does, then inertia, silhouette, Davies-Bouldin and Calinski-Harabasz are computed in the model''s space (the principal components for PCA models).';

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

------------------------------------------------------------------------------
-- Assignment (C, STABLE: the active version is read once per query)
------------------------------------------------------------------------------
CREATE FUNCTION rfm_segment(model text, recency float8, frequency float8, monetary float8) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_segment';
CREATE FUNCTION rfm_cluster(model text, recency float8, frequency float8, monetary float8) RETURNS int
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_cluster';
CREATE FUNCTION rfm_segment(model text, features float8[]) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_segment';
CREATE FUNCTION rfm_cluster(model text, features float8[]) RETURNS int
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_cluster';
COMMENT ON FUNCTION rfm_segment(text, float8, float8, float8) IS
'Segment label of the nearest centroid of the active version of model, after the model''s stored preprocessing (clip, log, standardize). The model must have recency, frequency and monetary among its features. Reads the model once per query. NULL in, NULL out; unknown model: ERROR 42704; NaN or infinite input: ERROR 22023.';
COMMENT ON FUNCTION rfm_cluster(text, float8, float8, float8) IS
'Cluster number (1 = largest training cluster) of the nearest centroid of the active version of model, after its stored preprocessing. Same rules as rfm_segment.';
COMMENT ON FUNCTION rfm_segment(text, float8[]) IS
'Segment label for a model trained on any numeric features: features in the model''s feature order (ERROR 22023 on a wrong length). A NULL element gives NULL.';
COMMENT ON FUNCTION rfm_cluster(text, float8[]) IS
'Cluster number for a model trained on any numeric features: features in the model''s feature order. A NULL element gives NULL.';
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

------------------------------------------------------------------------------
-- Models as values (rfm_model): for queries that pass the model along instead of naming
-- it, such as queries over Citus distributed tables, whose workers have no model tables.
------------------------------------------------------------------------------
CREATE TYPE rfm_model;
CREATE FUNCTION rfm_model_in(cstring) RETURNS rfm_model
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_in';
CREATE FUNCTION rfm_model_out(rfm_model) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_out';
CREATE FUNCTION rfm_model_recv(internal) RETURNS rfm_model
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_recv';
CREATE FUNCTION rfm_model_send(rfm_model) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_send';
CREATE TYPE rfm_model (
    INPUT = rfm_model_in, OUTPUT = rfm_model_out, RECEIVE = rfm_model_recv, SEND = rfm_model_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE rfm_model IS
'One version of a segmentation model as a value: name, version, features, preprocessing, centroids, labels and actions, in a machine-independent binary form (text form: the model document of rfm_model_export). Build it with rfm_model(name) on the node that stores the model and pass it to rfm_segment / rfm_cluster, for example to Citus workers. Checked when read: a damaged value raises XX001.';
COMMENT ON FUNCTION rfm_model_in(cstring) IS 'Input function of rfm_model: reads a model document (ERROR 22P02 when it is not one, XX001 when its model is inconsistent).';
COMMENT ON FUNCTION rfm_model_out(rfm_model) IS 'Output function of rfm_model: the model document.';
COMMENT ON FUNCTION rfm_model_recv(internal) IS 'Binary input function of rfm_model: the value''s own little-endian encoding, checked.';
COMMENT ON FUNCTION rfm_model_send(rfm_model) IS 'Binary output function of rfm_model: the value''s own little-endian encoding.';

-- Values compare by their encoding (equal: the same model version), so they can be grouped,
-- sorted and joined on, also inside distributed plans.
CREATE FUNCTION rfm_model_cmp(rfm_model, rfm_model) RETURNS int
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_cmp';
CREATE FUNCTION rfm_model_eq(rfm_model, rfm_model) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_eq';
CREATE FUNCTION rfm_model_ne(rfm_model, rfm_model) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_ne';
CREATE FUNCTION rfm_model_lt(rfm_model, rfm_model) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_lt';
CREATE FUNCTION rfm_model_le(rfm_model, rfm_model) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_le';
CREATE FUNCTION rfm_model_gt(rfm_model, rfm_model) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_gt';
CREATE FUNCTION rfm_model_ge(rfm_model, rfm_model) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_ge';
CREATE OPERATOR = (LEFTARG = rfm_model, RIGHTARG = rfm_model, FUNCTION = rfm_model_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, MERGES);
CREATE OPERATOR <> (LEFTARG = rfm_model, RIGHTARG = rfm_model, FUNCTION = rfm_model_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR < (LEFTARG = rfm_model, RIGHTARG = rfm_model, FUNCTION = rfm_model_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = rfm_model, RIGHTARG = rfm_model, FUNCTION = rfm_model_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR > (LEFTARG = rfm_model, RIGHTARG = rfm_model, FUNCTION = rfm_model_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR >= (LEFTARG = rfm_model, RIGHTARG = rfm_model, FUNCTION = rfm_model_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR CLASS rfm_model_ops DEFAULT FOR TYPE rfm_model USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 rfm_model_cmp(rfm_model, rfm_model);
COMMENT ON FUNCTION rfm_model_cmp(rfm_model, rfm_model) IS 'Order of two rfm_model values by their encoding (btree support).';
COMMENT ON FUNCTION rfm_model_eq(rfm_model, rfm_model) IS 'True when two rfm_model values are the same model version (same encoding).';
COMMENT ON FUNCTION rfm_model_ne(rfm_model, rfm_model) IS 'True when two rfm_model values differ.';
COMMENT ON FUNCTION rfm_model_lt(rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON FUNCTION rfm_model_le(rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON FUNCTION rfm_model_gt(rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON FUNCTION rfm_model_ge(rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON OPERATOR = (rfm_model, rfm_model) IS 'Same model version (same encoding).';
COMMENT ON OPERATOR <> (rfm_model, rfm_model) IS 'Different rfm_model values.';
COMMENT ON OPERATOR < (rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON OPERATOR <= (rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON OPERATOR > (rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON OPERATOR >= (rfm_model, rfm_model) IS 'Order of rfm_model values by their encoding.';
COMMENT ON OPERATOR CLASS rfm_model_ops USING btree IS 'Default btree order of rfm_model values (by encoding): DISTINCT, GROUP BY, ORDER BY and sorted plans on model values.';
COMMENT ON OPERATOR FAMILY rfm_model_ops USING btree IS 'Default btree order of rfm_model values (by encoding).';

CREATE FUNCTION rfm_model_of(model text) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_of';
CREATE FUNCTION rfm_model_of(model text, version int) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_of';
CREATE FUNCTION rfm_model(model text) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model';
CREATE FUNCTION rfm_model(model text, version int) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model';
COMMENT ON FUNCTION rfm_model_of(text) IS
'The active version of model as an rfm_model value, read once per statement at each call site: rfm_segment(rfm_model_of(''shop''), recency, frequency, monetary). Use it where the model tables cannot be read, for example with Citus: WITH m AS MATERIALIZED (SELECT rfm_model_of(''name'') AS m) SELECT rfm_segment(m.m, recency, frequency, monetary) FROM customers, m. Unknown model: ERROR 42704; on a Citus worker: ERROR 0A000.';
COMMENT ON FUNCTION rfm_model_of(text, int) IS
'Version version of model (active or not) as an rfm_model value. Unknown version: ERROR 42704.';
COMMENT ON FUNCTION rfm_model(text) IS
'rfm_model_of(model), under the type''s name (kept from 0.4.0). A bare literal rfm_model(''name'') is read by PostgreSQL as a cast to the type rfm_model, so this form needs a typed name (''name''::text); write rfm_model_of(''name'').';
COMMENT ON FUNCTION rfm_model(text, int) IS
'rfm_model_of(model, version), under the type''s name (kept from 0.4.0).';

CREATE FUNCTION rfm_segment(m rfm_model, recency float8, frequency float8, monetary float8) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_segment_value';
CREATE FUNCTION rfm_cluster(m rfm_model, recency float8, frequency float8, monetary float8) RETURNS int
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_cluster_value';
CREATE FUNCTION rfm_segment(m rfm_model, features float8[]) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_segment_value';
CREATE FUNCTION rfm_cluster(m rfm_model, features float8[]) RETURNS int
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_cluster_value';
COMMENT ON FUNCTION rfm_segment(rfm_model, float8, float8, float8) IS
'Segment label of the nearest centroid of the model value m, after its preprocessing; the same answer as rfm_segment(name, ...) for the version in m. Each distinct value is decoded once per query and call site. NULL in, NULL out.';
COMMENT ON FUNCTION rfm_cluster(rfm_model, float8, float8, float8) IS
'Cluster number of the nearest centroid of the model value m, after its preprocessing.';
COMMENT ON FUNCTION rfm_segment(rfm_model, float8[]) IS
'Segment label for a model value trained on any numeric features, in its feature order.';
COMMENT ON FUNCTION rfm_cluster(rfm_model, float8[]) IS
'Cluster number for a model value trained on any numeric features, in its feature order.';
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

CREATE FUNCTION rfm_model_version(m rfm_model) RETURNS int
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_version';
COMMENT ON FUNCTION rfm_model_version(rfm_model) IS 'The version number of the model in the value m.';
CREATE FUNCTION rfm_action(m rfm_model, cluster int) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_action';
COMMENT ON FUNCTION rfm_action(rfm_model, int) IS
'The recommended action of cluster number cluster of the model value m (NULL for no such cluster or no action).';

------------------------------------------------------------------------------
-- Inspection, export, import, drop
------------------------------------------------------------------------------
CREATE FUNCTION rfm_model_export(model text, version int) RETURNS jsonb
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
COMMENT ON FUNCTION rfm_model_export(text, int) IS
'Version version of model (active or not) as one jsonb document, as rfm_model_export(model) writes the active one. NULL when there is no such version.';

CREATE FUNCTION rfm_model_export(model text) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT rfm_model_export(m.model, m.version) FROM rfm_models m WHERE m.model = $1 AND m.active
    $$;

COMMENT ON FUNCTION rfm_model_export(text) IS
'The active version of model as one jsonb document (features, encoding of categorical features, preprocessing, PCA, clusters with labels and actions, metrics, options, k search curve), for rfm_model_import in another database. NULL when the model does not exist. Models with categorical features or a PCA are written as format_version 2, which pg_rfm 0.5.0 and later read.';

CREATE FUNCTION rfm_model_import(doc jsonb, model text DEFAULT NULL) RETURNS rfm_train_result
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'rfm_model_import';
COMMENT ON FUNCTION rfm_model_import(jsonb, text) IS
'Stores a model exported by rfm_model_export as a new active version (of the exported model name, or of model when given). The document is checked: ERROR 22023 when it is not a pg_rfm model document (naming the key at fault), XX001 when its model is inconsistent. Assignments equal those in the exporting database.';

CREATE FUNCTION rfm_drop_model(model text) RETURNS int
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    WITH gone AS (DELETE FROM rfm_models m WHERE m.model = $1 RETURNING 1)
    SELECT count(*)::int FROM gone
    $$;
COMMENT ON FUNCTION rfm_drop_model(text) IS
'Deletes every version of model (centroids and k search curve included); returns the number of versions deleted (0 when there was none).';

CREATE FUNCTION rfm_profile(model text)
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

CREATE FUNCTION rfm_activate(model text, version int) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
BEGIN
    PERFORM 1 FROM rfm_models m
    WHERE m.model = rfm_activate.model AND m.version = rfm_activate.version
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rfm_activate: model "%" has no version %', rfm_activate.model, rfm_activate.version
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT version, active, created_at FROM rfm_models WHERE model = ... lists the versions of a model.';
    END IF;
    UPDATE rfm_models m SET active = false
    WHERE m.model = rfm_activate.model AND m.active AND m.version <> rfm_activate.version;
    UPDATE rfm_models m SET active = true
    WHERE m.model = rfm_activate.model AND m.version = rfm_activate.version;
END
$$;
COMMENT ON FUNCTION rfm_activate(text, int) IS
'Makes version the active version of model (for rollback to an earlier version).';
