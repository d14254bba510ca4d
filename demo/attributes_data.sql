-- marketing_customers: 2,240 generated customers shaped like the Kaggle "Customer
-- Personality Analysis" marketing campaign data (one row per customer: demographics,
-- two years of spend per product line, purchases per channel, campaign responses).
--
-- Plain SQL, deterministic: setseed, then random() in a single-process INSERT. The rows come
-- from four latent customer types, which the data does not record:
--   affluent  (~24%) born 1944-1970, high income, no young children, spends on wine and
--             meat through the catalogue and the store, answers campaigns;
--   family    (~38%) young children, lower income, little spend, buys on deals, visits the
--             web site often;
--   teens     (~20%) parents of teenagers, middle income, moderate spend, the most deals;
--   young     (~18%) born 1976-1996, mostly single, middle income, buys on the web.
-- Noise is log-normal on amounts and Gaussian on the rest, so the types overlap. A few
-- oddities of the original are kept: ~1% NULL income, one income of 666,666, three birth
-- years before 1901 and the rare marital statuses 'Alone', 'Absurd' and 'YOLO'.
\set ON_ERROR_STOP on

SELECT setseed(0.42);

DROP TABLE IF EXISTS marketing_customers CASCADE;  -- and the views of a previous run
CREATE TABLE marketing_customers (
    customer_id           int PRIMARY KEY,
    year_birth            int NOT NULL,
    education             text NOT NULL,
    marital_status        text NOT NULL,
    income                numeric,
    kidhome               int NOT NULL,
    teenhome              int NOT NULL,
    dt_customer           date NOT NULL,
    recency               int NOT NULL,
    mnt_wines             numeric NOT NULL,
    mnt_fruits            numeric NOT NULL,
    mnt_meat              numeric NOT NULL,
    mnt_fish              numeric NOT NULL,
    mnt_sweets            numeric NOT NULL,
    mnt_gold              numeric NOT NULL,
    num_deals_purchases   int NOT NULL,
    num_web_purchases     int NOT NULL,
    num_catalog_purchases int NOT NULL,
    num_store_purchases   int NOT NULL,
    num_web_visits_month  int NOT NULL,
    accepted_cmp1         boolean NOT NULL,
    accepted_cmp2         boolean NOT NULL,
    accepted_cmp3         boolean NOT NULL,
    accepted_cmp4         boolean NOT NULL,
    accepted_cmp5         boolean NOT NULL,
    response              boolean NOT NULL
);

-- A standard normal draw (Box-Muller).
CREATE FUNCTION pg_temp.gauss() RETURNS float8 LANGUAGE sql VOLATILE
    AS $$ SELECT sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) $$;

INSERT INTO marketing_customers
WITH persona AS MATERIALIZED (
    -- 1. The latent type of each customer.
    SELECT i, CASE WHEN u < 0.24 THEN 'affluent' WHEN u < 0.62 THEN 'family'
                   WHEN u < 0.82 THEN 'teens' ELSE 'young' END AS persona
    FROM (SELECT i, random() AS u FROM generate_series(1, 2240) AS i) s
), person AS MATERIALIZED (
    -- 2. Demographics, and one spending propensity per customer shared by every product
    --    line (so that the lines are correlated, as in the real data).
    SELECT i, persona,
           CASE persona WHEN 'affluent' THEN 1944 + floor(27 * random())
                        WHEN 'family'   THEN 1962 + floor(28 * random())
                        WHEN 'teens'    THEN 1948 + floor(22 * random())
                        ELSE                 1976 + floor(21 * random()) END::int AS year_birth,
           CASE persona WHEN 'affluent' THEN 76000 + 11000 * pg_temp.gauss()
                        WHEN 'family'   THEN 35000 +  9000 * pg_temp.gauss()
                        WHEN 'teens'    THEN 57000 +  9000 * pg_temp.gauss()
                        ELSE                 47000 + 10000 * pg_temp.gauss() END AS income,
           CASE persona WHEN 'family' THEN CASE WHEN random() < 0.68 THEN 1 ELSE 2 END
                        WHEN 'young'  THEN CASE WHEN random() < 0.12 THEN 1 ELSE 0 END
                        WHEN 'teens'  THEN CASE WHEN random() < 0.08 THEN 1 ELSE 0 END
                        ELSE 0 END AS kidhome,
           CASE persona WHEN 'teens'    THEN CASE WHEN random() < 0.75 THEN 1 ELSE 2 END
                        WHEN 'family'   THEN CASE WHEN random() < 0.30 THEN 1 ELSE 0 END
                        WHEN 'affluent' THEN CASE WHEN random() < 0.15 THEN 1 ELSE 0 END
                        ELSE 0 END AS teenhome,
           (SELECT CASE WHEN u < p[1] THEN 'Basic' WHEN u < p[2] THEN '2n Cycle'
                        WHEN u < p[3] THEN 'Graduation' WHEN u < p[4] THEN 'Master' ELSE 'PhD' END
            FROM (SELECT random() AS u,
                         CASE persona WHEN 'affluent' THEN ARRAY[0.00, 0.03, 0.43, 0.63]
                                      WHEN 'family'   THEN ARRAY[0.06, 0.20, 0.72, 0.86]
                                      WHEN 'teens'    THEN ARRAY[0.01, 0.09, 0.57, 0.74]
                                      ELSE                 ARRAY[0.04, 0.15, 0.72, 0.88] END AS p) e
           ) AS education,
           CASE WHEN i IN (131, 1105, 1987) THEN 'Alone'
                WHEN i IN (447, 1630) THEN 'Absurd'
                WHEN i IN (829, 2077) THEN 'YOLO'
                ELSE (SELECT CASE WHEN u < p[1] THEN 'Single' WHEN u < p[2] THEN 'Together'
                                  WHEN u < p[3] THEN 'Married' WHEN u < p[4] THEN 'Divorced' ELSE 'Widow' END
                      FROM (SELECT random() AS u,
                                   CASE persona WHEN 'affluent' THEN ARRAY[0.18, 0.40, 0.77, 0.92]
                                                WHEN 'family'   THEN ARRAY[0.10, 0.42, 0.90, 0.99]
                                                WHEN 'teens'    THEN ARRAY[0.12, 0.37, 0.79, 0.95]
                                                ELSE                 ARRAY[0.58, 0.80, 0.94, 0.995] END AS p) m)
           END AS marital_status,
           exp(0.45 * pg_temp.gauss()) AS appetite
    FROM persona
)
-- 3. Spend per product line (2 years), purchases per channel and campaign answers.
SELECT i AS customer_id,
       CASE i WHEN 240 THEN 1893 WHEN 340 THEN 1899 WHEN 1151 THEN 1900 ELSE year_birth END,
       education,
       marital_status,
       CASE WHEN i = 2234 THEN 666666
            WHEN random() < 0.011 THEN NULL
            ELSE round(greatest(income, 4000)::numeric) END,
       kidhome,
       teenhome,
       date '2012-07-30' + floor(700 * random())::int,
       floor(100 * random())::int,
       -- spend: type mean x appetite x line noise, capped like the original maxima
       least(1490, round((CASE persona WHEN 'affluent' THEN 620 WHEN 'family' THEN 28
                                       WHEN 'teens' THEN 330 ELSE 150 END
                          * appetite * exp(0.5 * pg_temp.gauss()))::numeric)),
       least(199, round((CASE persona WHEN 'affluent' THEN 55 WHEN 'family' THEN 3
                                      WHEN 'teens' THEN 12 ELSE 15 END
                         * appetite * exp(0.8 * pg_temp.gauss()) - 1)::numeric)),
       least(1725, round((CASE persona WHEN 'affluent' THEN 480 WHEN 'family' THEN 18
                                       WHEN 'teens' THEN 100 ELSE 90 END
                          * appetite * exp(0.55 * pg_temp.gauss()))::numeric)),
       least(259, round((CASE persona WHEN 'affluent' THEN 80 WHEN 'family' THEN 4
                                      WHEN 'teens' THEN 16 ELSE 20 END
                         * appetite * exp(0.8 * pg_temp.gauss()) - 1)::numeric)),
       least(262, round((CASE persona WHEN 'affluent' THEN 55 WHEN 'family' THEN 3
                                      WHEN 'teens' THEN 12 ELSE 16 END
                         * appetite * exp(0.8 * pg_temp.gauss()) - 1)::numeric)),
       least(321, round((CASE persona WHEN 'affluent' THEN 65 WHEN 'family' THEN 10
                                      WHEN 'teens' THEN 40 ELSE 45 END
                         * appetite * exp(0.7 * pg_temp.gauss()))::numeric)),
       -- purchases per channel and web visits
       greatest(0, round(CASE persona WHEN 'affluent' THEN 1.0 WHEN 'family' THEN 2.0
                                      WHEN 'teens' THEN 4.5 ELSE 2.0 END + 1.2 * pg_temp.gauss()))::int,
       greatest(0, round(CASE persona WHEN 'affluent' THEN 5.0 WHEN 'family' THEN 2.0
                                      WHEN 'teens' THEN 6.0 ELSE 6.5 END + 1.8 * pg_temp.gauss()))::int,
       greatest(0, round(CASE persona WHEN 'affluent' THEN 6.0 WHEN 'family' THEN 0.4
                                      WHEN 'teens' THEN 2.5 ELSE 1.5 END + 1.5 * pg_temp.gauss()))::int,
       least(13, greatest(0, round(CASE persona WHEN 'affluent' THEN 8.5 WHEN 'family' THEN 3.0
                                                WHEN 'teens' THEN 7.5 ELSE 5.0 END + 1.8 * pg_temp.gauss())))::int,
       least(20, greatest(0, round(CASE persona WHEN 'affluent' THEN 2.5 WHEN 'family' THEN 7.0
                                                WHEN 'teens' THEN 5.5 ELSE 6.5 END + 1.5 * pg_temp.gauss())))::int,
       -- campaign answers: the affluent answer most, the young the last campaign
       random() < CASE persona WHEN 'affluent' THEN 0.20 WHEN 'family' THEN 0.003 WHEN 'teens' THEN 0.03 ELSE 0.04 END,
       random() < CASE persona WHEN 'affluent' THEN 0.04 WHEN 'family' THEN 0.002 WHEN 'teens' THEN 0.01 ELSE 0.005 END,
       random() < CASE persona WHEN 'affluent' THEN 0.08 WHEN 'family' THEN 0.07 WHEN 'teens' THEN 0.05 ELSE 0.09 END,
       random() < CASE persona WHEN 'affluent' THEN 0.15 WHEN 'family' THEN 0.01 WHEN 'teens' THEN 0.11 ELSE 0.05 END,
       random() < CASE persona WHEN 'affluent' THEN 0.27 WHEN 'family' THEN 0.002 WHEN 'teens' THEN 0.02 ELSE 0.02 END,
       random() < CASE persona WHEN 'affluent' THEN 0.28 WHEN 'family' THEN 0.08 WHEN 'teens' THEN 0.09 ELSE 0.21 END
FROM person
ORDER BY i;

ANALYZE marketing_customers;

SELECT count(*) AS customers,
       count(*) FILTER (WHERE income IS NULL) AS income_null,
       round(avg(income)) AS avg_income,
       round(avg(mnt_wines + mnt_fruits + mnt_meat + mnt_fish + mnt_sweets + mnt_gold)) AS avg_spend,
       round(100.0 * avg(response::int), 1) AS pct_response
FROM marketing_customers;
