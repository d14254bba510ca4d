-- Customer lifetime value: rfm_clv_summary against plain SQL, in serial and parallel plans;
-- rfm_clv_train's storage, versions, export/import, activate, drop; predictions by name and
-- by value against the closed forms computed here (P(alive), expected spend) and a
-- recursive-CTE hypergeometric series (expected purchases); errors and damaged models.
-- Parameters equal to lifetimes' are checked in tests/e2e/test_clv.py.
SET client_min_messages = warning;

------------------------------------------------------------------------------
-- 1. The summary: frequency, recency, t, monetary as plain SQL computes them
------------------------------------------------------------------------------
CREATE TABLE clv_lines AS
SELECT customer_id, invoice_date AS ts, amount FROM clean_lines;
CREATE VIEW clv_plain AS
WITH days AS (
    SELECT customer_id, (ts AT TIME ZONE 'UTC')::date AS day, sum(amount) AS amount
    FROM clv_lines GROUP BY 1, 2),
firsts AS (SELECT customer_id, min(day) AS first, max(day) AS last, count(*) - 1 AS frequency FROM days GROUP BY 1)
SELECT f.customer_id, f.frequency, (f.last - f.first)::float8 AS recency,
       (('2011-12-10 00:00+00'::timestamptz AT TIME ZONE 'UTC')::date - f.first)::float8 AS t,
       coalesce(avg(d.amount) FILTER (WHERE d.day > f.first), 0) AS monetary
FROM firsts f JOIN days d USING (customer_id)
GROUP BY f.customer_id, f.frequency, f.first, f.last;

CREATE TABLE clv_summary AS
SELECT customer_id, (rfm_clv_summary(ts, amount, '2011-12-10 00:00+00')).*
FROM clv_lines GROUP BY customer_id;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE s.frequency = p.frequency AND s.recency = p.recency AND s.t = p.t
                          AND abs(s.monetary - p.monetary) <= 1e-9 * greatest(1, p.monetary)) AS equal,
       count(*) FILTER (WHERE s.frequency = 0) > 0 AS some_one_time,
       count(*) FILTER (WHERE s.frequency > 5) > 0 AS some_regulars
FROM clv_summary s JOIN clv_plain p USING (customer_id);

-- Weeks are days / 7; frequency and monetary do not change.
SELECT count(*) FILTER (WHERE w.frequency = d.frequency AND abs(w.recency - d.recency / 7) < 1e-12
                          AND abs(w.t - d.t / 7) < 1e-12 AND w.monetary = d.monetary) = count(*) AS weeks_ok
FROM (SELECT customer_id, (rfm_clv_summary(ts, amount, '2011-12-10 00:00+00', 'week')).* FROM clv_lines GROUP BY 1) w
JOIN clv_summary d USING (customer_id);

-- A hand-worked customer: 3 + 4 on day 1 (two rows), 2 on day 4, 8 on day 15; as_of day 22
-- at 18:00 UTC. frequency 2, recency 14, t 21, monetary (2 + 8) / 2 = 5.
SELECT (rfm_clv_summary(ts, amount, '2024-01-22 18:00+00')).*
FROM (VALUES ('2024-01-01 10:00+00'::timestamptz, 3.0::float8), ('2024-01-01 23:59+00', 4.0),
             ('2024-01-04 00:00+00', 2.0), ('2024-01-15 12:00+00', 8.0), (NULL, 5.0), ('2024-01-16', NULL)) v(ts, amount);
-- Calendar days are UTC days, whatever the session's time zone.
SET timezone = 'America/Los_Angeles';
SELECT (rfm_clv_summary(ts, amount, '2024-01-22 18:00+00')).frequency AS frequency_in_la
FROM (VALUES ('2024-01-01 10:00+00'::timestamptz, 3.0::float8), ('2024-01-01 23:59+00', 4.0)) v(ts, amount);
RESET timezone;

-- Parallel partial aggregation gives the serial result.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET enable_hashagg = off;
CREATE TEMP TABLE clv_par AS
SELECT (rfm_clv_summary(ts, amount, '2011-12-10 00:00+00')).* FROM clv_lines;
RESET enable_hashagg;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
SELECT p.frequency = s.frequency AND p.recency = s.recency AND p.t = s.t
       AND abs(p.monetary - s.monetary) <= 1e-9 * s.monetary AS parallel_equals_serial
FROM clv_par p,
     (SELECT (rfm_clv_summary(ts, amount, '2011-12-10 00:00+00')).* FROM clv_lines) s;

------------------------------------------------------------------------------
-- 2. Training, storage, versions
------------------------------------------------------------------------------
SELECT model, version, n, n_repeat, r > 0 AS r_ok, alpha > 0 AS alpha_ok, a > 0 AS a_ok, b > 0 AS b_ok,
       q > 1 AS q_ok, loglik < 0 AS loglik_negative, iterations > 0 AS iterated
FROM rfm_clv_train('shop_clv', 'clv_summary');
SELECT n = (SELECT count(*) FROM clv_summary) AS all_customers,
       n_repeat = (SELECT count(*) FROM clv_summary WHERE frequency > 0) AS repeat_customers,
       unit, columns, options, gradient < 1e-7 AS converged, active, created_by = current_user AS by_me
FROM rfm_clv_models WHERE model = 'shop_clv';

-- Weeks: the same customers, recency and t / 7. The BG/NBD likelihood is the same function of
-- (r, a, b) with alpha in weeks: alpha_week = alpha_day / 7, loglik higher by
-- sum(frequency) * ln 7, and the Gamma-Gamma fit does not depend on the unit.
CREATE TABLE clv_summary_w AS
SELECT customer_id, (rfm_clv_summary(ts, amount, '2011-12-10 00:00+00', 'week')).* FROM clv_lines GROUP BY 1;
SELECT version FROM rfm_clv_train('shop_clv', 'clv_summary_w', unit => 'week');
SELECT abs(w.r / d.r - 1) < 1e-5 AS r_same, abs(w.alpha * 7 / d.alpha - 1) < 1e-5 AS alpha_in_weeks,
       abs(w.a / d.a - 1) < 1e-4 AS a_same, abs(w.b / d.b - 1) < 1e-4 AS b_same,
       abs(w.loglik - d.loglik - (SELECT sum(frequency) FROM clv_summary) * ln(7)) < 1e-6 * abs(d.loglik) AS loglik_shift,
       abs(w.p / d.p - 1) < 1e-9 AND abs(w.q / d.q - 1) < 1e-9 AND abs(w.v / d.v - 1) < 1e-9 AS spend_same,
       w.unit, w.active, NOT d.active AS first_inactive
FROM rfm_clv_models d, rfm_clv_models w
WHERE d.model = 'shop_clv' AND d.version = 1 AND w.model = 'shop_clv' AND w.version = 2;
SELECT rfm_clv_activate('shop_clv', 1);
SELECT version, active FROM rfm_clv_models WHERE model = 'shop_clv' ORDER BY version;

-- BG/NBD alone.
SELECT model, n_repeat, p, q, v FROM rfm_clv_train('bg_only', 'clv_summary', monetary => NULL);

------------------------------------------------------------------------------
-- 3. Predictions against closed forms and a series computed here
------------------------------------------------------------------------------
CREATE TABLE clv_params AS SELECT * FROM rfm_clv_models WHERE model = 'shop_clv' AND active;

-- P(alive) = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx))^(r + x)), 1 when x = 0.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(rfm_clv_p_alive('shop_clv', s.frequency, s.recency, s.t)
           - CASE WHEN s.frequency = 0 THEN 1
                  ELSE 1 / (1 + m.a / (m.b + s.frequency - 1) * ((m.alpha + s.t) / (m.alpha + s.recency)) ^ (m.r + s.frequency)) END)
           < 1e-12) AS p_alive_equal,
       count(*) FILTER (WHERE abs(rfm_clv_expected_spend('shop_clv', s.frequency, s.monetary)
           - ((1 - m.p * s.frequency / (m.p * s.frequency + m.q - 1)) * m.v * m.p / (m.q - 1)
              + m.p * s.frequency / (m.p * s.frequency + m.q - 1) * s.monetary))
           < 1e-9 * (1 + s.monetary)) AS spend_equal
FROM clv_summary s, clv_params m;

-- E[X(t) | x, tx, T] = (a + b + x - 1) / (a - 1)
--   * (1 - ((alpha + T) / (alpha + T + t))^(r + x) * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t)))
--   / (1 + [x > 0] a / (b + x - 1) * ((alpha + T) / (alpha + tx))^(r + x)),
-- with 2F1 summed term by term (400 terms) for a few customers and t = 30, 90 days.
CREATE TABLE clv_some AS
SELECT s.*, h.periods FROM clv_summary s, (VALUES (30.0::float8), (90.0)) h(periods)
WHERE s.customer_id IN (SELECT customer_id FROM clv_summary ORDER BY frequency DESC, customer_id LIMIT 3)
   OR s.customer_id IN (SELECT customer_id FROM clv_summary WHERE frequency = 0 ORDER BY customer_id LIMIT 2);
WITH RECURSIVE terms(customer_id, periods, n, term) AS (
    SELECT s.customer_id, s.periods, 0, 1::float8 FROM clv_some s
    UNION ALL
    SELECT t.customer_id, t.periods, t.n + 1,
           t.term * (m.r + s.frequency + t.n) * (m.b + s.frequency + t.n) / ((m.a + m.b + s.frequency - 1 + t.n) * (t.n + 1))
           * (t.periods / (m.alpha + s.t + t.periods))
    FROM terms t JOIN clv_some s USING (customer_id, periods), clv_params m
    WHERE t.n < 400 AND abs(t.term) > 1e-200),
hyp AS (SELECT customer_id, periods, sum(term) AS f FROM terms GROUP BY 1, 2)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE abs(rfm_clv_expected_purchases('shop_clv', s.periods, s.frequency, s.recency, s.t) - e.want)
                              < 1e-9 * e.want) AS equal
FROM clv_some s JOIN hyp h USING (customer_id, periods), clv_params m,
LATERAL (SELECT (m.a + m.b + s.frequency - 1) / (m.a - 1)
                * (1 - ((m.alpha + s.t) / (m.alpha + s.t + s.periods)) ^ (m.r + s.frequency) * h.f)
                / (1 + CASE WHEN s.frequency > 0 THEN m.a / (m.b + s.frequency - 1)
                            * ((m.alpha + s.t) / (m.alpha + s.recency)) ^ (m.r + s.frequency) ELSE 0 END) AS want) e;

-- CLV: the discounted sum over months of expected purchases in the month times expected spend.
SELECT count(*) FILTER (WHERE abs(rfm_clv_value('shop_clv', s.frequency, s.recency, s.t, s.monetary) - c.want) < 1e-9 * c.want) AS clv_equal,
       count(*) AS cases
FROM (SELECT DISTINCT customer_id, frequency, recency, t, monetary FROM clv_some) s,
LATERAL (SELECT sum(rfm_clv_expected_spend('shop_clv', s.frequency, s.monetary)
                    * (rfm_clv_expected_purchases('shop_clv', 30 * i, s.frequency, s.recency, s.t)
                       - rfm_clv_expected_purchases('shop_clv', 30 * (i - 1), s.frequency, s.recency, s.t))
                    / 1.01 ^ i) AS want
         FROM generate_series(1, 12) i) c;
SELECT rfm_clv_value('shop_clv', 3, 50, 100, 20, months => 0) AS zero_months,
       rfm_clv_expected_purchases('shop_clv', 0, 3, 50, 100) AS zero_periods;

-- The value form equals the name form.
WITH m AS MATERIALIZED (SELECT rfm_clv_model_of('shop_clv') AS m)
SELECT count(*) FILTER (WHERE rfm_clv_p_alive(m.m, s.frequency, s.recency, s.t) = rfm_clv_p_alive('shop_clv', s.frequency, s.recency, s.t)
                          AND rfm_clv_value(m.m, s.frequency, s.recency, s.t, s.monetary, 6, 0.02)
                            = rfm_clv_value('shop_clv', s.frequency, s.recency, s.t, s.monetary, 6, 0.02)
                          AND rfm_clv_expected_purchases(m.m, 10, s.frequency, s.recency, s.t)
                            = rfm_clv_expected_purchases('shop_clv', 10, s.frequency, s.recency, s.t)
                          AND rfm_clv_expected_spend(m.m, s.frequency, s.monetary) = rfm_clv_expected_spend('shop_clv', s.frequency, s.monetary))
       = count(*) AS value_form_equal, (m.m).version, (m.m).unit
FROM clv_summary s, m GROUP BY m.m;

-- rfm_clv_model_of(name) is the active row of rfm_clv_models as a value; in a plain
-- per-row call (no CTE) it gives what the name form gives; the 0.6.0 spelling gives the same
-- value (a composite type's name with a bare literal is a function call, not a cast).
SELECT (v.m).model = c.model AND (v.m).version = c.version AND (v.m).unit = c.unit
       AND (v.m).r = c.r AND (v.m).alpha = c.alpha AND (v.m).a = c.a AND (v.m).b = c.b
       AND (v.m).p = c.p AND (v.m).q = c.q AND (v.m).v = c.v AS value_is_the_active_row,
       v.m = rfm_clv_model('shop_clv'::text) AS old_spelling_same,
       v.m = rfm_clv_model(model => 'shop_clv') AS old_named_form_same,
       v.m = rfm_clv_model('shop_clv') AS old_bare_literal_same
FROM (SELECT rfm_clv_model_of('shop_clv') AS m) v, rfm_clv_models c WHERE c.model = 'shop_clv' AND c.active;
SELECT count(*) FILTER (WHERE rfm_clv_value(rfm_clv_model_of('shop_clv'), s.frequency, s.recency, s.t, s.monetary)
                            = rfm_clv_value('shop_clv', s.frequency, s.recency, s.t, s.monetary)) = count(*) AS per_row_form_equal
FROM clv_summary s;
-- Read once per statement: an activation is seen by the next statement.
BEGIN;
SELECT (rfm_clv_model_of('shop_clv')).version AS before_activate;
SELECT rfm_clv_activate('shop_clv', 2);
SELECT (rfm_clv_model_of('shop_clv')).version AS after_activate, (rfm_clv_model_of('shop_clv')).unit;
ROLLBACK;
SELECT (rfm_clv_model_of('shop_clv')).version AS after_rollback;

-- Segments meet CLV: mean predicted CLV and P(alive) per RFM segment, one query.
SELECT model FROM rfm_train('clv_seg', 'customer_rfm', k => 4);
SELECT count(*) > 1 AS segments, bool_and(avg_clv > 0 AND avg_p_alive BETWEEN 0 AND 1) AS sane
FROM (SELECT rfm_segment('clv_seg', r.recency, r.frequency, r.monetary) AS segment,
             avg(rfm_clv_value('shop_clv', s.frequency, s.recency, s.t, s.monetary)) AS avg_clv,
             avg(rfm_clv_p_alive('shop_clv', s.frequency, s.recency, s.t)) AS avg_p_alive
      FROM clv_summary s JOIN customer_rfm r USING (customer_id) GROUP BY 1) x;

------------------------------------------------------------------------------
-- 4. Export, import, drop
------------------------------------------------------------------------------
SELECT model, version, n, r = (SELECT r FROM clv_params) AS same_r, v = (SELECT v FROM clv_params) AS same_v
FROM rfm_clv_model_import(rfm_clv_model_export('shop_clv'), 'shop_clv_copy');
SELECT rfm_clv_value('shop_clv_copy', 3, 50, 100, 20) = rfm_clv_value('shop_clv', 3, 50, 100, 20) AS import_predicts_the_same;
SELECT rfm_clv_model_export('shop_clv') - 'created_at' - 'elapsed_ms' - 'bgnbd' - 'gamma_gamma' AS doc_head;
SELECT rfm_clv_drop_model('shop_clv_copy') AS dropped, rfm_clv_drop_model('shop_clv_copy') AS again;

------------------------------------------------------------------------------
-- 5. Errors
------------------------------------------------------------------------------
CREATE TABLE clv_bad (frequency float8, recency float8, t float8, monetary float8, label text);
INSERT INTO clv_bad VALUES (1, 5, 3, 10, 'x');
CREATE TABLE clv_negative AS SELECT -1::float8 AS frequency, 0::float8 AS recency, 3::float8 AS t, 0::float8 AS monetary;
CREATE TABLE clv_fraction AS SELECT 1.5::float8 AS frequency, 1::float8 AS recency, 3::float8 AS t, 5::float8 AS monetary;
CREATE TABLE clv_free AS SELECT * FROM clv_summary;
UPDATE clv_free SET monetary = 0 WHERE customer_id = (SELECT min(customer_id) FROM clv_summary WHERE frequency > 0);
CREATE TABLE clv_once AS SELECT 0::float8 AS frequency, 0::float8 AS recency, i::float8 AS t, 0::float8 AS monetary
FROM generate_series(1, 50) i;
SELECT q, outcome FROM (VALUES
    ($$SELECT rfm_clv_summary(ts, -amount, '2011-12-10 00:00+00') FROM clv_lines$$),
    ($$SELECT rfm_clv_summary(ts, amount, '2011-01-01 00:00+00') FROM clv_lines$$),
    ($$SELECT rfm_clv_summary(ts, amount, NULL) FROM clv_lines$$),
    ($$SELECT rfm_clv_summary(ts, amount, '2011-12-10 00:00+00', 'month') FROM clv_lines$$),
    ($$SELECT rfm_clv_summary(ts, 'NaN', '2011-12-10 00:00+00') FROM clv_lines$$),
    ($$SELECT rfm_clv_train('x', 'clv_bad')$$),
    ($$SELECT rfm_clv_train('x', 'clv_bad', recency => 't', t => 'recency', frequency => 'monetary')$$),
    ($$SELECT rfm_clv_train('x', 'clv_bad', monetary => 'label')$$),
    ($$SELECT rfm_clv_train('x', 'clv_bad', monetary => 'nope')$$),
    ($$SELECT rfm_clv_train('x', 'clv_once')$$),
    ($$SELECT rfm_clv_train('x', 'clv_negative')$$),
    ($$SELECT rfm_clv_train('x', 'clv_fraction')$$),
    ($$SELECT rfm_clv_train('x', 'clv_free')$$),
    ($$SELECT rfm_clv_train('x', 'clv_summary', unit => 'month')$$),
    ($$SELECT rfm_clv_train('x', 'clv_summary', penalizer => -1)$$),
    ($$SELECT rfm_clv_train('x', 'clv_summary', max_iter => 2)$$),
    ($$SELECT rfm_clv_train(NULL, 'clv_summary')$$),
    ($$SELECT rfm_clv_p_alive('nope', 1, 1, 1)$$),
    ($$SELECT rfm_clv_p_alive('shop_clv', 1, 5, 3)$$),
    ($$SELECT rfm_clv_p_alive('shop_clv', 1.5, 1, 3)$$),
    ($$SELECT rfm_clv_p_alive('shop_clv', 0, 1, 3)$$),
    ($$SELECT rfm_clv_expected_purchases('shop_clv', -1, 1, 1, 3)$$),
    ($$SELECT rfm_clv_expected_purchases('shop_clv', 1e12, 1, 1, 3)$$),
    ($$SELECT rfm_clv_expected_purchases('shop_clv', 1e20, 1, 1, 3)$$),
    ($$SELECT rfm_clv_expected_spend('bg_only', 1, 10)$$),
    ($$SELECT rfm_clv_value('bg_only', 1, 1, 3, 10)$$),
    ($$SELECT rfm_clv_value('shop_clv', 1, 1, 3, 10, -1)$$),
    ($$SELECT rfm_clv_value('shop_clv', 1, 1, 3, 10, 12, -1)$$),
    ($$SELECT rfm_clv_model_of('nope')$$),
    ($$SELECT rfm_clv_p_alive(ROW('m', 1, 'day', -1, 1, 1, 1, NULL, NULL, NULL)::rfm_clv_model, 1, 1, 3)$$),
    ($$SELECT rfm_clv_expected_spend(ROW('m', 1, 'day', 1, 1, 1, 1, 1, 0.5, 1)::rfm_clv_model, 1, 3)$$),
    ($$SELECT rfm_clv_p_alive(ROW('m', 1, 'year', 1, 1, 1, 1, NULL, NULL, NULL)::rfm_clv_model, 1, 1, 3)$$),
    ($$SELECT rfm_clv_model_import('{"format": "pg_rfm.model"}')$$),
    ($$SELECT rfm_clv_model_import(rfm_clv_model_export('shop_clv') || '{"bgnbd": {"r": "x"}}')$$),
    ($$SELECT rfm_clv_model_import(jsonb_set(rfm_clv_model_export('shop_clv'), '{bgnbd,a}', '-2'))$$),
    ($$SELECT rfm_clv_activate('shop_clv', 99)$$)
) AS t(q), LATERAL try_sql(q) AS outcome;

-- A damaged stored model: XX001 naming it, with what to do.
UPDATE rfm_clv_models SET alpha = 'NaN' WHERE model = 'bg_only';
SELECT * FROM try_sql_verbose($$SELECT rfm_clv_p_alive('bg_only', 1, 1, 3)$$);
