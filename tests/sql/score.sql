-- rfm_breaks, rfm_score and the segment rule table

-- Breaks equal percentile_cont at 1/n .. (n-1)/n, for n = 5 (default), 3 and 10.
SELECT v.classes,
       (x.b).n = v.classes AND (x.b).recency = p.r AND (x.b).frequency = p.f
       AND (x.b).monetary = p.m AS breaks_equal
FROM (VALUES (3), (5), (10)) AS v(classes)
CROSS JOIN LATERAL (SELECT CASE WHEN v.classes = 5 THEN rfm_breaks(recency, frequency, monetary)
                                ELSE rfm_breaks(recency, frequency, monetary, v.classes) END AS b
                    FROM customer_rfm) x
CROSS JOIN LATERAL (
    SELECT percentile_cont(ps) WITHIN GROUP (ORDER BY recency) AS r,
           percentile_cont(ps) WITHIN GROUP (ORDER BY frequency) AS f,
           percentile_cont(ps) WITHIN GROUP (ORDER BY monetary) AS m
    FROM customer_rfm,
         (SELECT array_agg(i::float8 / v.classes ORDER BY i) AS ps FROM generate_series(1, v.classes - 1) i) q
    GROUP BY q.ps
) p
ORDER BY v.classes;

CREATE TABLE scored AS
SELECT c.*, (rfm_score(recency, frequency, monetary, b)).*
FROM customer_rfm c, (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM customer_rfm) k;

-- Scores against an independent formula: class = 1 + number of cut points strictly
-- below the value (R reversed: n + 1 - class), and the code is the three digits.
WITH k AS (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM customer_rfm)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE s.r <> 5 - (SELECT count(*) FROM unnest((k.b).recency) c WHERE c < s.recency)
                           OR s.f <> 1 + (SELECT count(*) FROM unnest((k.b).frequency) c WHERE c < s.frequency)
                           OR s.m <> 1 + (SELECT count(*) FROM unnest((k.b).monetary) c WHERE c < s.monetary)
                           OR s.code <> s.r::text || s.f::text || s.m::text) AS mismatches,
       min(least(s.r, s.f, s.m)) >= 1 AND max(greatest(s.r, s.f, s.m)) <= 5 AS scores_in_range
FROM scored s, k;

-- Ties: customers with the same (recency, frequency, monetary) share one score.
SELECT count(*) AS tied_groups_with_different_scores
FROM (SELECT recency, frequency, monetary FROM scored
      GROUP BY 1, 2, 3 HAVING count(DISTINCT (r, f, m)) > 1) t;
SELECT count(*) AS frequency_ties_split
FROM (SELECT frequency FROM scored GROUP BY 1 HAVING count(DISTINCT f) > 1) t;

-- Collapsed quantiles, by hand: 70 customers bought once, 20 twice, 10 five times.
-- Cut points at 0.2, 0.4, 0.6 all fall on 1; at 0.8 (position 79.2) on 2: {1,1,1,2}.
-- So F = 1 -> 1, F = 2 -> 1 + 3 = 4, F = 5 -> 5; classes 2 and 3 stay unused.
CREATE TEMP TABLE few AS
SELECT i, CASE WHEN i <= 70 THEN 1 WHEN i <= 90 THEN 2 ELSE 5 END::float8 AS frequency
FROM generate_series(1, 100) i;
SELECT (b).frequency AS cuts,
       (rfm_score(10, 1, 10, b)).f AS f_of_1,
       (rfm_score(10, 2, 10, b)).f AS f_of_2,
       (rfm_score(10, 5, 10, b)).f AS f_of_5
FROM (SELECT rfm_breaks(i, frequency, i) AS b FROM few) k;

-- Every (r, f, m) in 1..5 is covered by a rule; 11 standard segments.
SELECT count(*) AS uncovered
FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
WHERE NOT EXISTS (SELECT 1 FROM rfm_segment_rules
                  WHERE r BETWEEN r_min AND r_max AND f BETWEEN f_min AND f_max AND m BETWEEN m_min AND m_max);
SELECT priority, segment FROM rfm_segment_rules ORDER BY priority;

-- The segment is the first matching rule by priority (looked up here in plain SQL).
SELECT count(*) FILTER (WHERE s.segment IS DISTINCT FROM l.segment OR s.action IS DISTINCT FROM l.action) AS mismatches,
       count(DISTINCT s.segment) >= 9 AS heterogeneous
FROM scored s
CROSS JOIN LATERAL (SELECT segment, action FROM rfm_segment_rules
                    WHERE s.r BETWEEN r_min AND r_max AND s.f BETWEEN f_min AND f_max
                      AND s.m BETWEEN m_min AND m_max
                    ORDER BY priority LIMIT 1) l;

-- Scores for n <> 5 map to the rules' 1..5 scale as 1 + round((s - 1) * 4 / (n - 1)).
WITH k AS (SELECT rfm_breaks(recency, frequency, monetary, 3) AS b FROM customer_rfm),
     s AS (SELECT (rfm_score(recency, frequency, monetary, k.b)).* FROM customer_rfm, k)
SELECT min(least(r, f, m)) AS lowest, max(greatest(r, f, m)) AS highest,
       count(*) FILTER (WHERE segment IS DISTINCT FROM (
           SELECT segment FROM rfm_segment_rules
           WHERE 1 + round((r - 1) * 4 / 2.0) BETWEEN r_min AND r_max
             AND 1 + round((f - 1) * 4 / 2.0) BETWEEN f_min AND f_max
             AND 1 + round((m - 1) * 4 / 2.0) BETWEEN m_min AND m_max
           ORDER BY priority LIMIT 1)) AS mismatches
FROM s;

-- Editing the rule table is seen by the next statement.
BEGIN;
UPDATE rfm_segment_rules SET segment = 'VIP', action = 'Call them personally' WHERE segment = 'Champions';
WITH k AS (SELECT rfm_breaks(recency, frequency, monetary) AS b FROM customer_rfm)
SELECT (SELECT count(*) FROM customer_rfm c, k WHERE (rfm_score(recency, frequency, monetary, k.b)).segment = 'VIP')
     = (SELECT count(*) FROM scored WHERE segment = 'Champions') AS renamed,
       (SELECT count(*) FROM scored WHERE segment = 'Champions') > 0 AS champions_exist;
DELETE FROM rfm_segment_rules;
SELECT (rfm_score(1, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks)).* AS no_rules_no_segment;
ROLLBACK;

-- NULL in, NULL out (a customer with returns only has no recency).
SELECT rfm_score(NULL, 1, 1, ROW(2, '{5}', '{5}', '{5}')::rfm_breaks) IS NULL AS null_recency;
