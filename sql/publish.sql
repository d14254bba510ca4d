-- pg_rfm in production: publishing segments for BI tools, holdout checks, segment
-- movement and the visual report.

------------------------------------------------------------------------------
-- BI views
------------------------------------------------------------------------------
CREATE FUNCTION rfm_publish(model text, source regclass, view_name text, id_column text DEFAULT 'customer_id')
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

------------------------------------------------------------------------------
-- Holdout check and segment movement
------------------------------------------------------------------------------
CREATE FUNCTION rfm_holdout(model text, holdout regclass)
    RETURNS TABLE (period text, version int, n_rows bigint, inertia_per_row float8,
                   silhouette float8, davies_bouldin float8, calinski_harabasz float8)
    LANGUAGE sql STABLE STRICT PARALLEL RESTRICTED
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT 'training', m.version, m.n_rows, m.inertia / m.n_rows, m.silhouette, m.davies_bouldin, m.calinski_harabasz
    FROM rfm_models m WHERE m.model = $1 AND m.active
    UNION ALL
    SELECT 'holdout', e.version, e.n_rows, e.inertia / e.n_rows, e.silhouette, e.davies_bouldin, e.calinski_harabasz
    FROM rfm_evaluate($1, $2) e
    $$;
COMMENT ON FUNCTION rfm_holdout(text, regclass) IS
'Training metrics of the active version of model next to its metrics on holdout (for example RFM of a later period): rows, inertia per row, silhouette, Davies-Bouldin, Calinski-Harabasz. A holdout silhouette close to the training one means the segmentation still holds.';

CREATE FUNCTION rfm_transitions(model text, before regclass, after regclass, id_column text DEFAULT 'customer_id')
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
COMMENT ON FUNCTION rfm_transitions(text, regclass, regclass, text) IS
'How many customers moved from each segment to each other segment between two RFM snapshots (for example as of two dates), both assigned with the active version of model and joined on id_column; customers only in after come from ''(new)'', customers only in before go to ''(gone)''. The churn-warning signal: Loyal Customers -> At Risk.';

------------------------------------------------------------------------------
-- Visual report
------------------------------------------------------------------------------
CREATE FUNCTION rfm_report(model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_report';
COMMENT ON FUNCTION rfm_report(text) IS
'One self-contained HTML page (inline SVG, no scripts, no network) about the active version of model: elbow curve with the chosen k, silhouette by k, segment sizes and revenue shares, each segment''s R/F/M profile and the table of segments with recommended actions.';
