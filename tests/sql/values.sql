-- Models as values (rfm_model) and rules as values (rfm_rules()): the forms for queries
-- whose assignment or scoring runs where the model and rule tables are not (Citus
-- workers). On one node they give exactly what the name forms give.
SET client_min_messages = warning;

-- The value form assigns every customer as the name form does, in both argument forms.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE rfm_segment(m.m, c.recency, c.frequency, c.monetary)
                              IS DISTINCT FROM rfm_segment('shop', c.recency, c.frequency, c.monetary)) AS label_mismatches,
       count(*) FILTER (WHERE rfm_cluster(m.m, ARRAY[c.recency, c.frequency, c.monetary])
                              IS DISTINCT FROM rfm_cluster('shop', c.recency, c.frequency, c.monetary)) AS cluster_mismatches
FROM customer_rfm c, (SELECT rfm_model_of('shop') AS m) m;

-- A value holds one version; rfm_model(name, version) reads any, and its text form (the
-- model document) reads back as the same model.
SELECT rfm_model_version(rfm_model_of('auto')) AS active, rfm_model_version(rfm_model_of('auto', 1)) AS first;
BEGIN;
SELECT rfm_activate('auto', 1);
SELECT count(*) FILTER (WHERE rfm_cluster(v.m, recency, frequency, monetary)
                              IS DISTINCT FROM rfm_cluster('auto', recency, frequency, monetary)) AS mismatches_with_version_1
FROM groups, (SELECT rfm_model_of('auto', 1) AS m) v;
ROLLBACK;
SELECT rfm_model_of('shop')::text::rfm_model::text = rfm_model_of('shop')::text AS text_round_trip,
       rfm_model_export('shop')::text::rfm_model::text = rfm_model_of('shop')::text AS export_reads_as_value,
       (rfm_model_of('shop')::text::jsonb) #>> '{clusters,0,label}' = (SELECT label FROM rfm_centroids c
            JOIN rfm_models m USING (model, version) WHERE m.model = 'shop' AND m.active AND c.cluster = 1) AS text_is_the_document;
SELECT c.cluster, rfm_action(rfm_model_of('shop'), c.cluster) = c.action AS action_matches
FROM rfm_centroids c JOIN rfm_models m USING (model, version) WHERE m.model = 'shop' AND m.active ORDER BY 1;
SELECT rfm_action(rfm_model_of('shop'), 99) IS NULL AS no_such_cluster;

-- Values can be stored, and keep assigning when the model is retrained or dropped.
CREATE TABLE kept_models (name text, m rfm_model);
INSERT INTO kept_models SELECT 'shop', rfm_model_of('shop');
BEGIN;
SELECT rfm_drop_model('shop') AS dropped;
SELECT count(*) FILTER (WHERE rfm_segment(k.m, c.recency, c.frequency, c.monetary) IS NULL) AS unassigned
FROM customer_rfm c, kept_models k;
ROLLBACK;

-- Values compare by their encoding: equal means the same model version.
SELECT rfm_model_of('auto') = rfm_model_of('auto', 2) AS same_version,
       rfm_model_of('auto', 1) <> rfm_model_of('auto', 2) AS other_version,
       count(DISTINCT m) AS distinct_values
FROM (VALUES (rfm_model_of('auto', 1)), (rfm_model_of('auto', 2)), (rfm_model_of('auto'))) v(m);

-- Each distinct value is decoded once per query and call site (DEBUG1 says when).
SET client_min_messages = debug1;
SELECT count(rfm_segment(m.m, c.recency, c.frequency, c.monetary)) AS assigned
FROM customer_rfm c, (SELECT rfm_model_of('shop') AS m) m;
SET client_min_messages = warning;

-- rfm_model_of takes a bare literal, a text column and a parameter; the 0.4.0 spelling
-- rfm_model(name) keeps working with a typed name (and gives the same value).
PREPARE by_param(text) AS SELECT rfm_model_version(rfm_model_of($1)) AS version;
EXECUTE by_param('auto');
SELECT rfm_model_of(n)::text = rfm_model_of('shop')::text AS column_form FROM (VALUES ('shop')) v(n);
SELECT rfm_model('shop'::text) = rfm_model_of('shop') AS old_typed_form,
       rfm_model(model => 'shop') = rfm_model_of('shop') AS old_named_argument_form,
       rfm_model('auto', 1) = rfm_model_of('auto', 1) AS old_version_form,
       rfm_model_of(model => 'auto', version => 1) = rfm_model_of('auto', 1) AS named_version_form;

-- Errors. (A bare literal in the old spelling, rfm_model('shop'), is a cast to the type:
-- the error says so and points to rfm_model_of.)
SELECT * FROM try_sql_verbose($$SELECT rfm_model('shop')$$);
SELECT * FROM try_sql_verbose($$SELECT rfm_model_of(NULL::text)$$);
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_model_of('nope')$$),
    ($$SELECT rfm_model('shop', 99)$$),
    ($$SELECT 'not json'::rfm_model$$),
    ($$SELECT '{"format": "pg_rfm.model", "format_version": 1}'::rfm_model$$),
    ($$SELECT jsonb_set(rfm_model_export('shop'), '{scaler,scale,0}', '0')::text::rfm_model$$),
    ($$SELECT jsonb_set(rfm_model_export('shop'), '{version}', '3000000000')::text::rfm_model$$),
    ($$SELECT rfm_segment(rfm_model_of('shop'), ARRAY[1, 2]::float8[])$$)
) AS cases(q);

-- Rules as a value: rfm_rules() in priority order; the 5-argument rfm_score equals the
-- 4-argument one, also after an edit, and checks what it is given.
SELECT jsonb_array_length(rfm_rules()) AS rules, rfm_rules() -> 0 ->> 'segment' AS first;
BEGIN;
UPDATE rfm_segment_rules SET segment = 'VIP' WHERE priority = 10;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE s4 IS DISTINCT FROM s5) AS mismatches,
       count(*) FILTER (WHERE (s5).segment = 'VIP') > 0 AS edit_seen
FROM (SELECT rfm_score(c.recency, c.frequency, c.monetary, k.b) AS s4,
             rfm_score(c.recency, c.frequency, c.monetary, k.b, k.rules) AS s5
      FROM customer_rfm c CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b, rfm_rules() AS rules
                                      FROM customer_rfm) k) s;
ROLLBACK;
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_score(1, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks, '{"a": 1}')$$),
    ($$SELECT rfm_score(1, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks, '[{"segment": "x", "action": "y"}]')$$),
    ($$SELECT (rfm_score(1, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks, '[]')).segment IS NULL$$)
) AS cases(q);
RESET client_min_messages;
