-- pg_rfm in production: publishing segments for BI tools, holdout checks, segment
-- movement and the visual report.

------------------------------------------------------------------------------
-- BI views
------------------------------------------------------------------------------
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

------------------------------------------------------------------------------
-- Profiles on any column
------------------------------------------------------------------------------
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

------------------------------------------------------------------------------
-- Visual report
------------------------------------------------------------------------------
CREATE FUNCTION rfm_report(model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_report';
CREATE FUNCTION rfm_report(model text, source regclass, columns text[]) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_report';
COMMENT ON FUNCTION rfm_report(text, regclass, text[]) IS
'rfm_report(model) with one more table: the segments described by columns of source, as rfm_profile(model, source, columns) computes them (mean and median of numeric columns, most frequent levels of the others).';
COMMENT ON FUNCTION rfm_report(text) IS
'One self-contained HTML page (inline SVG, no scripts, no network) about the active version of model: elbow curve with the chosen k, silhouette by k, segment sizes and revenue shares, each segment''s R/F/M profile and the table of segments with recommended actions.';
