-- What a DBA does first with a packaged pg_rfm (scripts/test.sh runs this after installing the
-- .deb or the tarball with no Rust toolchain on PATH, in a new database): install the oldest
-- version, update to the current one, an RFM query, a training and an assignment, each
-- checked against plain SQL or a hand-made answer. Any failed check is an ERROR.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION pg_rfm VERSION '0.1.0';
ALTER EXTENSION pg_rfm UPDATE;
DO $$
BEGIN
    IF (SELECT extversion FROM pg_extension WHERE extname = 'pg_rfm')
       IS DISTINCT FROM (SELECT default_version FROM pg_available_extensions WHERE name = 'pg_rfm') THEN
        RAISE EXCEPTION 'package check: ALTER EXTENSION pg_rfm UPDATE did not reach the default version';
    END IF;
END $$;

-- 300 customers in three kinds: 1 order 300-ish days ago of 10; 5 orders of 20 to 100, the
-- last 100 days ago; 9 orders of 30 to 270, the last 200 days ago.
CREATE TABLE pkg_lines AS
SELECT c AS customer_id, 'o' || c || '-' || k AS order_id,
       timestamptz '2024-01-01 00:00+00' - ((c % 3) * 100 + k) * interval '1 day' AS ts,
       (c % 3 + 1) * 10.0 * k AS amount
FROM generate_series(1, 300) c, generate_series(1, 1 + (c % 3) * 4) k;

CREATE TABLE pkg_rfm AS
SELECT customer_id, (rfm(ts, amount, order_id, '2024-01-01 00:00+00')).*
FROM pkg_lines GROUP BY customer_id;

DO $$
DECLARE
    bad int;
BEGIN
    SELECT count(*) INTO bad
    FROM pkg_rfm r
    FULL JOIN (SELECT customer_id,
                      extract(epoch FROM timestamptz '2024-01-01 00:00+00' - max(ts)) / 86400 AS recency,
                      count(DISTINCT order_id) AS frequency, sum(amount) AS monetary
               FROM pkg_lines GROUP BY customer_id) p USING (customer_id)
    WHERE r.recency IS DISTINCT FROM p.recency::float8 OR r.frequency IS DISTINCT FROM p.frequency
       OR abs(r.monetary - p.monetary) > 1e-9;
    IF bad <> 0 OR (SELECT count(*) FROM pkg_rfm) <> 300 THEN
        RAISE EXCEPTION 'package check: rfm differs from plain SQL for % customers', bad;
    END IF;
END $$;

-- k = 3 on the three kinds: every kind is one cluster, and the clusters differ.
SELECT model, version, k FROM rfm_train('pkg', 'pkg_rfm', k => 3);
DO $$
DECLARE
    kinds int;
    mixed int;
BEGIN
    SELECT count(DISTINCT cluster), count(*) FILTER (WHERE n > 1)
    INTO kinds, mixed
    FROM (SELECT customer_id % 3 AS kind, min(rfm_cluster('pkg', recency, frequency, monetary)) AS cluster,
                 count(DISTINCT rfm_cluster('pkg', recency, frequency, monetary)) AS n
          FROM pkg_rfm GROUP BY 1) x;
    IF kinds <> 3 OR mixed <> 0 THEN
        RAISE EXCEPTION 'package check: the 3 kinds of customers got % clusters (% kinds split)', kinds, mixed;
    END IF;
    IF EXISTS (SELECT 1 FROM pkg_rfm WHERE rfm_segment('pkg', recency, frequency, monetary) IS NULL) THEN
        RAISE EXCEPTION 'package check: rfm_segment gave a customer no segment';
    END IF;
END $$;

SELECT 'package check passed' AS result;
