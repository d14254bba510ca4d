-- Publishing segments (rfm_publish), holdout checks, segment movement, the HTML report.
SET client_min_messages = warning;

-- RFM as of two dates: train on the period up to 2011-09-10, hold out the last 90 days.
CREATE TABLE rfm_sep AS
SELECT customer_id, (rfm(invoice_date, amount, invoice, '2011-09-10 00:00+00')).*
FROM clean_lines WHERE invoice_date < '2011-09-10 00:00+00' GROUP BY customer_id;
CREATE TABLE rfm_dec AS
SELECT customer_id, (rfm(invoice_date, amount, invoice, '2011-12-10 00:00+00')).*
FROM clean_lines GROUP BY customer_id;
SELECT k FROM rfm_train('q3', 'rfm_sep', k => 4);

-- rfm_holdout: the training row is the stored version, the holdout row rfm_evaluate.
SELECT h.period, h.version, h.n_rows,
       h.n_rows = CASE h.period WHEN 'training' THEN (SELECT count(*) FROM rfm_sep)
                                ELSE (SELECT count(*) FROM rfm_dec) END AS rows_ok,
       CASE h.period
           WHEN 'training' THEN abs(h.inertia_per_row - m.inertia / m.n_rows) < 1e-12 AND h.silhouette = m.silhouette
           ELSE abs(h.inertia_per_row * h.n_rows - e.inertia) < 1e-6 * e.inertia AND h.silhouette = e.silhouette
       END AS metrics_ok,
       h.silhouette BETWEEN -1 AND 1 AS silhouette_in_range
FROM rfm_holdout('q3', 'rfm_dec') h
CROSS JOIN (SELECT * FROM rfm_models WHERE model = 'q3' AND active) m
CROSS JOIN rfm_evaluate('q3', 'rfm_dec') e
ORDER BY h.period DESC;

-- rfm_transitions equals a plain SQL join of the two snapshots' segments.
WITH b AS (SELECT customer_id, rfm_segment('q3', recency, frequency, monetary) AS seg FROM rfm_sep),
     a AS (SELECT customer_id, rfm_segment('q3', recency, frequency, monetary) AS seg FROM rfm_dec),
     plain AS (SELECT coalesce(b.seg, '(new)') AS f, coalesce(a.seg, '(gone)') AS t, count(*) AS n
               FROM b FULL JOIN a USING (customer_id) GROUP BY 1, 2)
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE t.customers IS DISTINCT FROM p.n) AS mismatches,
       sum(t.customers) = (SELECT count(*) FROM (SELECT customer_id FROM rfm_sep UNION SELECT customer_id FROM rfm_dec) u) AS all_customers,
       bool_and(abs(s.total - 1) < 1e-12) AS shares_sum_to_one
FROM rfm_transitions('q3', 'rfm_sep', 'rfm_dec') t
FULL JOIN plain p ON p.f = t.from_segment AND p.t = t.to_segment
CROSS JOIN LATERAL (SELECT sum(share_of_from) AS total FROM rfm_transitions('q3', 'rfm_sep', 'rfm_dec') x
                    WHERE x.from_segment = t.from_segment) s;
SELECT count(*) > 0 AS some_customers_are_new FROM rfm_transitions('q3', 'rfm_sep', 'rfm_dec') WHERE from_segment = '(new)';

-- rfm_publish: a view (always current) and a materialized view with a unique index.
SELECT * FROM rfm_publish('q3', 'rfm_dec', 'customer_segments');
SELECT count(*) AS customers,
       count(*) FILTER (WHERE v.segment IS DISTINCT FROM rfm_segment('q3', d.recency, d.frequency, d.monetary)
                           OR v.cluster IS DISTINCT FROM rfm_cluster('q3', d.recency, d.frequency, d.monetary)
                           OR (v.r, v.f, v.m, v.code) IS DISTINCT FROM (s.r, s.f, s.m, s.code)
                           OR v.action IS DISTINCT FROM c.action
                           OR v.model_version <> 1) AS mismatches
FROM customer_segments v
JOIN rfm_dec d USING (customer_id)
CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM rfm_dec) k
CROSS JOIN LATERAL rfm_score(d.recency, d.frequency, d.monetary, k.b) s
JOIN rfm_centroids c ON c.model = 'q3' AND c.version = 1 AND c.label = v.segment;
SELECT (SELECT count(*) FROM customer_segments_mv) = (SELECT count(*) FROM rfm_dec) AS mv_complete,
       (SELECT count(*) FROM (SELECT * FROM customer_segments EXCEPT SELECT * FROM customer_segments_mv) d) AS mv_differs;

-- After a retrain the view is current at once; the materialized view after a refresh.
SELECT version FROM rfm_train('q3', 'rfm_dec', k => 3);
SELECT (SELECT min(model_version) FROM customer_segments) AS view_version,
       (SELECT min(model_version) FROM customer_segments_mv) AS mv_version_before_refresh;
REFRESH MATERIALIZED VIEW CONCURRENTLY customer_segments_mv;
SELECT (SELECT min(model_version) FROM customer_segments_mv) AS mv_version_after_refresh,
       (SELECT count(*) FROM (SELECT * FROM customer_segments EXCEPT SELECT * FROM customer_segments_mv) d) AS mv_differs;

-- Bad input.
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$SELECT rfm_publish('nope', 'rfm_dec', 'v')$$),
    ($$SELECT rfm_publish('q3', 'rfm_dec', 'v', 'no_such_column')$$),
    ($$SELECT rfm_publish('q3', 'rfm_dec', 'a.b.c')$$),
    ($$SELECT rfm_holdout('nope', 'rfm_dec')$$),
    ($$SELECT rfm_transitions('q3', 'rfm_sep', 'rfm_dec', 'nope')$$),
    ($$SELECT rfm_report('nope')$$)
) AS cases(q);
-- A view name with odd characters is quoted, not executed.
SELECT object FROM rfm_publish('q3', 'rfm_dec', 'Segments; DROP TABLE rfm_dec');
SELECT count(*) > 0 AS rfm_dec_still_there FROM rfm_dec;

-- The report: one HTML page, inline SVG only: 4 charts, one table row per segment.
SELECT (length(r) - length(replace(r, '<svg', ''))) / 4 AS charts,
       (length(r) - length(replace(r, '<tr class="segment"', ''))) / 19 AS segment_rows,
       r LIKE '<!DOCTYPE html>%' AS is_html,
       position('<script' IN r) = 0 AS no_scripts,
       position('class="chosen"' IN r) > 0 AS chosen_k_marked
FROM (SELECT rfm_report('q3') AS r) x;
RESET client_min_messages;
