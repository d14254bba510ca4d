-- pg_rfm bootstrap: composite types and the editable segment rule table.
-- Runs first; functions and aggregates follow in functions.sql.

CREATE TYPE rfm_summary AS (
    recency         float8,       -- days from the last purchase to as_of (fractional)
    frequency       bigint,       -- orders: purchase rows, or distinct order ids
    monetary        float8,       -- net sum of amounts (returns subtract)
    first_purchase  timestamptz,
    last_purchase   timestamptz,
    tenure          float8,       -- days from the first purchase to as_of
    avg_order_value float8        -- monetary / frequency
);
COMMENT ON TYPE rfm_summary IS
'Result of the rfm aggregate for one customer: recency and tenure in days before as_of, frequency (orders), monetary (net amount), first and last purchase, average order value. recency, tenure and the purchase dates are NULL for a customer with returns only.';

CREATE TYPE rfm_breaks AS (
    n         int,        -- number of score classes
    recency   float8[],   -- n - 1 cut points, ascending
    frequency float8[],
    monetary  float8[]
);
COMMENT ON TYPE rfm_breaks IS
'Quantile cut points of a customer population (from the rfm_breaks aggregate): n - 1 ascending cuts for each of recency, frequency and monetary, at probabilities 1/n .. (n-1)/n, with percentile_cont interpolation.';

CREATE TYPE rfm_score AS (
    r       int,    -- 1..n, n = most recent
    f       int,    -- 1..n, n = most frequent
    m       int,    -- 1..n, n = highest spend
    code    text,   -- r, f, m as digits, e.g. '545' ('10-3-7' when n > 9)
    segment text,   -- first matching rule of rfm_segment_rules
    action  text    -- that rule's recommended marketing action
);
COMMENT ON TYPE rfm_score IS
'Result of rfm_score: R, F and M scores in 1..n (n best; low recency scores high), the code such as ''545'', and the segment and recommended action of the first matching rule in rfm_segment_rules (NULL when no rule matches).';

CREATE TYPE iqr_bounds AS (
    q1     float8,
    median float8,
    q3     float8,
    iqr    float8,    -- q3 - q1
    lower  float8,    -- q1 - k * iqr
    upper  float8,    -- q3 + k * iqr
    n      bigint,    -- values seen
    k      float8     -- the multiplier used
);
COMMENT ON TYPE iqr_bounds IS
'Result of the iqr_bounds aggregate: exact quartiles (as percentile_cont), the interquartile range, Tukey fences lower = q1 - k*iqr and upper = q3 + k*iqr, the number of values and k.';

CREATE TABLE rfm_segment_rules (
    priority    int  PRIMARY KEY,
    segment     text NOT NULL UNIQUE,
    r_min       int  NOT NULL,
    r_max       int  NOT NULL,
    f_min       int  NOT NULL,
    f_max       int  NOT NULL,
    m_min       int  NOT NULL,
    m_max       int  NOT NULL,
    action      text NOT NULL,
    description text,
    CONSTRAINT rfm_segment_rules_r CHECK (1 <= r_min AND r_min <= r_max AND r_max <= 5),
    CONSTRAINT rfm_segment_rules_f CHECK (1 <= f_min AND f_min <= f_max AND f_max <= 5),
    CONSTRAINT rfm_segment_rules_m CHECK (1 <= m_min AND m_min <= m_max AND m_max <= 5)
);
COMMENT ON TABLE rfm_segment_rules IS
'Editable RFM segment rules: score ranges (inclusive, on a 1..5 scale) and a recommended marketing action. rfm_score takes the first rule, by ascending priority, whose ranges hold the customer''s scores. Edits are seen by the next statement.';
COMMENT ON COLUMN rfm_segment_rules.priority IS 'Lower is tried first; the first matching rule wins.';
COMMENT ON COLUMN rfm_segment_rules.segment IS 'Segment name shown by rfm_score.';
COMMENT ON COLUMN rfm_segment_rules.action IS 'Recommended marketing action for the segment.';

-- The practitioners' standard segments, on recency and frequency scores
-- (monetary only separates Lost from Hibernating). Every (r, f, m) in 1..5 matches a rule.
INSERT INTO rfm_segment_rules (priority, segment, r_min, r_max, f_min, f_max, m_min, m_max, action, description) VALUES
(10,  'Champions',          5, 5, 4, 5, 1, 5, 'Reward them: loyalty perks, early access to new products; ask for reviews and referrals.', 'Bought recently, buy often and spend the most.'),
(20,  'Loyal Customers',    3, 4, 4, 5, 1, 5, 'Upsell higher-value products, ask for reviews, keep them engaged with a loyalty programme.', 'Buy regularly; responsive to promotions.'),
(30,  'Potential Loyalist', 4, 5, 2, 3, 1, 5, 'Offer membership or a loyalty programme and recommend related products.', 'Recent customers with average frequency.'),
(40,  'New Customers',      5, 5, 1, 1, 1, 5, 'Onboard them: welcome series, early support, build the relationship.', 'Bought most recently, but only once.'),
(50,  'Promising',          4, 4, 1, 1, 1, 5, 'Build brand awareness with free trials or samples.', 'Recent shoppers who have not bought much yet.'),
(60,  'Need Attention',     3, 3, 3, 3, 1, 5, 'Make limited-time offers and recommendations based on past purchases.', 'Above-average recency and frequency, slipping.'),
(70,  'About To Sleep',     3, 3, 1, 2, 1, 5, 'Share valuable content and popular products at a discount; reconnect before they lapse.', 'Below-average recency and frequency.'),
(80,  'Can''t Lose Them',   1, 2, 5, 5, 1, 5, 'Win them back with renewals or new products; talk to them, do not lose them to a competitor.', 'Bought often and spent a lot, but long ago.'),
(90,  'At Risk',            1, 2, 3, 4, 1, 5, 'Send personalised emails to reconnect, offer renewals and helpful resources.', 'Spent well and often, but long ago.'),
(100, 'Lost',               1, 1, 1, 2, 1, 2, 'Revive interest with a reach-out campaign; otherwise ignore.', 'Lowest recency, frequency and monetary scores.'),
(110, 'Hibernating',        1, 2, 1, 2, 1, 5, 'Offer other relevant products and special discounts; recreate brand value.', 'Last purchase long ago, few orders.');

GRANT SELECT ON rfm_segment_rules TO PUBLIC;
