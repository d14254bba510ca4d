-- pg_rfm 0.3.0 -> 0.4.0
-- Models are checked wherever they are loaded: rfm_model_export also writes the stored
-- log_features, so a damaged list is found; messages start with the function's name and
-- carry their advice in HINT.

CREATE OR REPLACE FUNCTION rfm_model_export(model text) RETURNS jsonb
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
    WHERE m.model = $1 AND m.active
    $$;

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
    -- Always current: reads the active version of the model at query time.
    body := format($q$
        SELECT s.%1$I AS customer_id, s.recency, s.frequency, s.monetary,
               sc.r, sc.f, sc.m, sc.code,
               c.cluster, c.label AS segment, c.action, c.version AS model_version
        FROM %2$s s
        CROSS JOIN (SELECT %3$s.rfm_breaks(recency, frequency, monetary) AS b FROM %2$s) k
        CROSS JOIN LATERAL %3$s.rfm_score(s.recency, s.frequency, s.monetary, k.b) sc
        LEFT JOIN %3$s.rfm_centroids c
               ON c.model = %4$L
              AND c.version = (SELECT m.version FROM %3$s.rfm_models m WHERE m.model = %4$L AND m.active)
              AND c.cluster = %3$s.rfm_cluster(%4$L, s.recency, s.frequency, s.monetary)
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
        WITH b AS (SELECT %1$I AS id, %2$s.rfm_segment(%3$L, recency, frequency, monetary) AS seg FROM %4$s),
             a AS (SELECT %1$I AS id, %2$s.rfm_segment(%3$L, recency, frequency, monetary) AS seg FROM %5$s),
             moves AS (
                SELECT coalesce(b.seg, '(new)') AS from_segment, coalesce(a.seg, '(gone)') AS to_segment, count(*) AS n
                FROM b FULL JOIN a ON a.id = b.id
                GROUP BY 1, 2)
        SELECT from_segment, to_segment, n, n::float8 / sum(n) OVER (PARTITION BY from_segment)
        FROM moves ORDER BY from_segment, n DESC, to_segment
    $q$, id_column, ext, model, before, after);
END
$fn$;
