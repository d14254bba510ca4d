-- pg_rfm 0.3.0 -> 0.4.0
-- Models are checked wherever they are loaded (rfm_model_export also writes the stored
-- log_features); messages start with the function's name and carry advice in HINT. Models
-- and rules can be passed as values (rfm_model, rfm_rules()), so that assignment, scoring,
-- rfm_publish and rfm_transitions work on Citus distributed tables.

CREATE FUNCTION rfm_model_export(model text, version int) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT jsonb_build_object(
        'format', 'pg_rfm.model',
        'format_version', 1,
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
                    FROM unnest(m.features) WITH ORDINALITY AS u(f, i)),
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
        'created_by', m.created_by)
    FROM rfm_models m
    WHERE m.model = $1 AND m.version = $2
    $$;
COMMENT ON FUNCTION rfm_model_export(text, int) IS
'Version version of model (active or not) as one jsonb document, as rfm_model_export(model) writes the active one. NULL when there is no such version.';

CREATE OR REPLACE FUNCTION rfm_model_export(model text) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT rfm_model_export(m.model, m.version) FROM rfm_models m WHERE m.model = $1 AND m.active
    $$;

COMMENT ON FUNCTION rfm_model_import(jsonb, text) IS
'Stores a model exported by rfm_model_export as a new active version (of the exported model name, or of model when given). The document is checked: ERROR 22023 when it is not a pg_rfm model document (naming the key at fault), XX001 when its model is inconsistent. Assignments equal those in the exporting database.';

CREATE OR REPLACE FUNCTION rfm_activate(model text, version int) RETURNS void
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

CREATE FUNCTION rfm_model(model text) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model';
CREATE FUNCTION rfm_model(model text, version int) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model';
COMMENT ON FUNCTION rfm_model(text) IS
'The active version of model as an rfm_model value, read once per statement. Use it where the model tables cannot be read, for example with Citus: WITH m AS MATERIALIZED (SELECT rfm_model(''name''::text) AS m) SELECT rfm_segment(m.m, recency, frequency, monetary) FROM customers, m. Give a literal name a type (''name''::text, or model => ''name''): rfm_model(''name'') with a bare literal is a cast to the type rfm_model. Unknown model: ERROR 42704; on a Citus worker: ERROR 0A000.';
COMMENT ON FUNCTION rfm_model(text, int) IS
'Version version of model (active or not) as an rfm_model value. Unknown version: ERROR 42704.';

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

CREATE FUNCTION rfm_model_version(m rfm_model) RETURNS int
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_version';
COMMENT ON FUNCTION rfm_model_version(rfm_model) IS 'The version number of the model in the value m.';
CREATE FUNCTION rfm_action(m rfm_model, cluster int) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_action';
COMMENT ON FUNCTION rfm_action(rfm_model, int) IS
'The recommended action of cluster number cluster of the model value m (NULL for no such cluster or no action).';

CREATE FUNCTION rfm_rules() RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'priority', r.priority, 'segment', r.segment, 'action', r.action,
               'r_min', r.r_min, 'r_max', r.r_max, 'f_min', r.f_min, 'f_max', r.f_max,
               'm_min', r.m_min, 'm_max', r.m_max) ORDER BY r.priority, r.segment), '[]')
    FROM rfm_segment_rules r
    $$;
COMMENT ON FUNCTION rfm_rules() IS
'The segment rules in force (rfm_segment_rules, in priority order) as one jsonb value, for rfm_score(recency, frequency, monetary, breaks, rules): computed where the query is issued, it carries the rules to where scoring runs, for example Citus workers.';

CREATE FUNCTION rfm_score(recency float8, frequency float8, monetary float8, breaks rfm_breaks, rules jsonb)
    RETURNS rfm_score
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_score';
COMMENT ON FUNCTION rfm_score(float8, float8, float8, rfm_breaks, jsonb) IS
'rfm_score with the segment rules passed as a value (what rfm_rules() returns) instead of read from rfm_segment_rules: the form for queries whose scoring runs elsewhere, such as over Citus distributed tables (CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b, rfm_rules() AS rules FROM customers) k). Malformed rules: ERROR 22023.';

COMMENT ON FUNCTION rfm_score(float8, float8, float8, rfm_breaks) IS
'R, F and M scores (1..n, n best; low recency scores high) of one customer against population breaks: a value''s class is 1 + the number of cut points strictly below it, so ties share a score and collapsed cut points leave classes unused. segment and action come from the first matching rule of rfm_segment_rules (scores mapped to 1..5 when n <> 5). STABLE: reads the rule table once per statement. On a Citus worker, whose rule table is not the coordinator''s, ERROR 0A000: pass rfm_rules() as a fifth argument.';

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
BEGIN
    IF NOT EXISTS (SELECT 1 FROM rfm_models m WHERE m.model = rfm_publish.model AND m.active) THEN
        RAISE EXCEPTION 'rfm_publish: model "%" does not exist (no active version)', rfm_publish.model
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT model FROM rfm_model_summary lists the models with an active version; rfm_train creates one.';
    END IF;
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
    v := array_to_string(ARRAY(SELECT quote_ident(p) FROM unnest(parts) p), '.');
    mv := array_to_string(ARRAY(SELECT quote_ident(p) FROM unnest(parts[1:array_length(parts, 1) - 1]) p)
                          || quote_ident(parts[array_length(parts, 1)] || '_mv'), '.');
    idx := quote_ident(parts[array_length(parts, 1)] || '_mv_id');
    -- Always current: reads the active version of the model and the rules in force at query
    -- time, once, on the node where the query is issued, and passes them as values (so the
    -- view works on Citus distributed tables, whose workers have no model or rule tables).
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
'Publishes the segments of the customers in source (columns id_column, recency, frequency, monetary) for BI tools: a view view_name (always current: R/F/M scores and code, cluster, segment label, recommended action and model version of the active version) and a materialized view view_name_mv with a unique index on customer_id, for REFRESH MATERIALIZED VIEW CONCURRENTLY after each retrain. The view reads the model and the rules once per query and passes them as values, so source may be a Citus distributed table.';

CREATE OR REPLACE FUNCTION rfm_transitions(model text, before regclass, after regclass, id_column text DEFAULT 'customer_id')
    RETURNS TABLE (from_segment text, to_segment text, customers bigint, share_of_from float8)
    LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    ext text := quote_ident('@extschema@');
    rel regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM rfm_models m WHERE m.model = rfm_transitions.model AND m.active) THEN
        RAISE EXCEPTION 'rfm_transitions: model "%" does not exist (no active version)', rfm_transitions.model
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT model FROM rfm_model_summary lists the models with an active version; rfm_train creates one.';
    END IF;
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
             b AS (SELECT s.%1$I AS id, %2$s.rfm_segment(mm.m, s.recency, s.frequency, s.monetary) AS seg FROM %4$s s, mm),
             a AS (SELECT s.%1$I AS id, %2$s.rfm_segment(mm.m, s.recency, s.frequency, s.monetary) AS seg FROM %5$s s, mm),
             moves AS (
                SELECT coalesce(b.seg, '(new)') AS from_segment, coalesce(a.seg, '(gone)') AS to_segment, count(*) AS n
                FROM b FULL JOIN a ON a.id = b.id
                GROUP BY 1, 2)
        SELECT from_segment, to_segment, n, n::float8 / sum(n) OVER (PARTITION BY from_segment)
        FROM moves ORDER BY from_segment, n DESC, to_segment
    $q$, id_column, ext, model, before, after);
END
$fn$;
