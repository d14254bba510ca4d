-- iqr_bounds(x [, k]), iqr_clip, iqr_is_outlier

-- Quartiles equal percentile_cont on the generated prices (all lines), exactly.
SELECT (b).q1 = p[1] AND (b).median = p[2] AND (b).q3 = p[3] AS quartiles_equal,
       (b).iqr = p[3] - p[1] AS iqr_ok,
       (b).lower = p[1] - 1.5 * (p[3] - p[1]) AND (b).upper = p[3] + 1.5 * (p[3] - p[1]) AS fences_ok,
       (b).n = c AS n_ok, (b).k = 1.5 AS k_ok
FROM (SELECT iqr_bounds(price) AS b,
             percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY price) AS p,
             count(price) AS c
      FROM retail_lines) s;

-- Per group (country, and customers' monetary): every group equal, and k = 3.
SELECT count(*) AS groups,
       count(*) FILTER (WHERE NOT ((b).q1 = p[1] AND (b).median = p[2] AND (b).q3 = p[3]
                                   AND (b).lower = p[1] - 3 * (p[3] - p[1])
                                   AND (b).upper = p[3] + 3 * (p[3] - p[1]))) AS mismatches
FROM (SELECT country, iqr_bounds(quantity * price, 3) AS b,
             percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY quantity * price) AS p
      FROM retail_lines GROUP BY country) s;

-- Ties, one row, two rows, NULLs skipped: against percentile_cont and by hand.
CREATE TEMP TABLE small (g text, x float8);
INSERT INTO small VALUES
  ('ties', 1), ('ties', 1), ('ties', 1), ('ties', 2), ('ties', 2), ('ties', 9), ('ties', 9),
  ('one', 3),
  ('two', 10), ('two', 2),
  ('nulls', 1), ('nulls', NULL), ('nulls', 3),
  ('allnull', NULL);
SELECT g, (iqr_bounds(x)).*,
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY x) AS percentile_cont
FROM small GROUP BY g ORDER BY g;
-- By hand: one row 3 -> all quartiles 3, iqr 0; two rows {2, 10} -> 4, 6, 8;
-- nulls {1, 3} -> 1.5, 2, 2.5 with n = 2; allnull -> NULL.
SELECT (SELECT (iqr_bounds(x)).q1 = 3 AND (iqr_bounds(x)).iqr = 0 FROM small WHERE g = 'one') AS one_row,
       (SELECT iqr_bounds(x) = ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds FROM small WHERE g = 'two') AS two_rows,
       (SELECT (iqr_bounds(x)).n = 2 AND (iqr_bounds(x)).median = 2 FROM small WHERE g = 'nulls') AS nulls_skipped,
       (SELECT iqr_bounds(x) IS NULL FROM small WHERE g = 'allnull') AS all_null,
       (SELECT iqr_bounds(x) IS NULL FROM small WHERE false) AS empty;

-- iqr_clip is least(greatest(x, lower), upper); iqr_is_outlier is x outside [lower, upper].
WITH b AS (SELECT iqr_bounds(monetary) AS b FROM customer_rfm)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE iqr_clip(monetary, b) <> least(greatest(monetary, (b).lower), (b).upper)) AS clip_mismatches,
       count(*) FILTER (WHERE iqr_is_outlier(monetary, b) <> (monetary < (b).lower OR monetary > (b).upper)) AS outlier_mismatches,
       count(*) FILTER (WHERE iqr_is_outlier(monetary, b)) > 0 AS some_outliers
FROM customer_rfm, b;

SELECT iqr_clip(100, ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) AS clipped_high,
       iqr_clip(-100, ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) AS clipped_low,
       iqr_clip(5, ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) AS inside,
       iqr_clip('Infinity', ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) AS inf_clipped,
       iqr_is_outlier(14, ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) AS at_fence,
       iqr_is_outlier(14.5, ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) AS past_fence,
       iqr_clip(NULL, ROW(4, 6, 8, 4, -2, 14, 2, 1.5)::iqr_bounds) IS NULL AS null_in_null_out;
