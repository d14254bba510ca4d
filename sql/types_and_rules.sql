-- pg_rfm bootstrap: composite types and the editable segment rules.
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

-- Segment rules. The standard rules live in rfm_segment_rule_defaults (written by the
-- extension script, never dumped); a user's changes live in rfm_segment_rule_edits (one row
-- per changed, added or deleted priority; registered with pg_extension_config_dump, so
-- pg_dump keeps them and a restore does not collide with the re-inserted defaults). Users
-- read and edit the view rfm_segment_rules, which merges the two.
CREATE TABLE rfm_segment_rule_defaults (
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
    CONSTRAINT rfm_segment_rule_defaults_r CHECK (1 <= r_min AND r_min <= r_max AND r_max <= 5),
    CONSTRAINT rfm_segment_rule_defaults_f CHECK (1 <= f_min AND f_min <= f_max AND f_max <= 5),
    CONSTRAINT rfm_segment_rule_defaults_m CHECK (1 <= m_min AND m_min <= m_max AND m_max <= 5)
);
COMMENT ON TABLE rfm_segment_rule_defaults IS
'The standard RFM segment rules shipped with pg_rfm, written by CREATE EXTENSION and ALTER EXTENSION UPDATE. Do not edit: edit rfm_segment_rules, which keeps your changes in rfm_segment_rule_edits.';

-- The practitioners' standard segments, on recency and frequency scores
-- (monetary only separates Lost from Hibernating). Every (r, f, m) in 1..5 matches a rule.
INSERT INTO rfm_segment_rule_defaults (priority, segment, r_min, r_max, f_min, f_max, m_min, m_max, action, description) VALUES
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


CREATE TABLE rfm_segment_rule_edits (
    priority    int         PRIMARY KEY,
    deleted     boolean     NOT NULL DEFAULT false,
    segment     text,
    r_min       int,
    r_max       int,
    f_min       int,
    f_max       int,
    m_min       int,
    m_max       int,
    action      text,
    description text,
    edited_at   timestamptz NOT NULL DEFAULT now(),
    edited_by   name        NOT NULL DEFAULT current_user,
    CONSTRAINT rfm_segment_rule_edits_complete CHECK (deleted OR (segment IS NOT NULL AND action IS NOT NULL
        AND r_min IS NOT NULL AND r_max IS NOT NULL AND f_min IS NOT NULL AND f_max IS NOT NULL
        AND m_min IS NOT NULL AND m_max IS NOT NULL)),
    CONSTRAINT rfm_segment_rule_edits_r CHECK (1 <= r_min AND r_min <= r_max AND r_max <= 5),
    CONSTRAINT rfm_segment_rule_edits_f CHECK (1 <= f_min AND f_min <= f_max AND f_max <= 5),
    CONSTRAINT rfm_segment_rule_edits_m CHECK (1 <= m_min AND m_min <= m_max AND m_max <= 5)
);
COMMENT ON TABLE rfm_segment_rule_edits IS
'Your changes to the standard segment rules, one row per priority: a replacement or added rule, or (deleted) a removed standard rule. Written by INSERT, UPDATE and DELETE on rfm_segment_rules; dumped by pg_dump. Empty means the standard rules.';
COMMENT ON COLUMN rfm_segment_rule_edits.deleted IS 'The standard rule of this priority is removed.';
-- Segment names of edits are unique among themselves (concurrent edits included); the trigger
-- checks them against the standard rules.
CREATE UNIQUE INDEX rfm_segment_rule_edits_segment ON rfm_segment_rule_edits (segment) WHERE NOT deleted;
SELECT pg_catalog.pg_extension_config_dump('rfm_segment_rule_edits', '');

CREATE VIEW rfm_segment_rules AS
SELECT e.priority, e.segment, e.r_min, e.r_max, e.f_min, e.f_max, e.m_min, e.m_max, e.action, e.description
FROM rfm_segment_rule_edits e
WHERE NOT e.deleted
UNION ALL
SELECT d.priority, d.segment, d.r_min, d.r_max, d.f_min, d.f_max, d.m_min, d.m_max, d.action, d.description
FROM rfm_segment_rule_defaults d
WHERE NOT EXISTS (SELECT 1 FROM rfm_segment_rule_edits e WHERE e.priority = d.priority);
COMMENT ON VIEW rfm_segment_rules IS
'Editable RFM segment rules: score ranges (inclusive, on a 1..5 scale) and a recommended marketing action. rfm_score takes the first rule, by ascending priority, whose ranges hold the customer''s scores. INSERT, UPDATE and DELETE work as on a table (priority and segment unique, 1 <= min <= max <= 5); changes are stored in rfm_segment_rule_edits, survive pg_dump and upgrades, and are seen by the next statement. rfm_reset_segment_rules() restores the standard rules.';
COMMENT ON COLUMN rfm_segment_rules.priority IS 'Lower is tried first; the first matching rule wins.';
COMMENT ON COLUMN rfm_segment_rules.segment IS 'Segment name shown by rfm_score.';
COMMENT ON COLUMN rfm_segment_rules.action IS 'Recommended marketing action for the segment.';

CREATE FUNCTION rfm_segment_rules_edit() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = @extschema@, pg_catalog
    AS $$
DECLARE
    missing text;
    axis text;
    lo int;
    hi int;
    other int;
    current_rule rfm_segment_rules;
    standard rfm_segment_rule_defaults;
BEGIN
    -- Edits of the rules are serialized (readers are not blocked), and every check below
    -- reads the latest committed rules: a second editor waits, then sees the first one's
    -- changes. Under REPEATABLE READ or SERIALIZABLE the snapshot cannot move, so a rule
    -- changed since it was taken makes the row lock fail with 40001 instead.
    LOCK TABLE rfm_segment_rule_edits IN SHARE ROW EXCLUSIVE MODE;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM 1 FROM rfm_segment_rule_edits e FOR UPDATE;
    END IF;

    -- The rule this statement read must still be the rule: never undo a change made since.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT * INTO current_rule FROM rfm_segment_rules r WHERE r.priority = OLD.priority;
        IF NOT FOUND OR current_rule IS DISTINCT FROM OLD THEN
            RAISE EXCEPTION 'rfm_segment_rules: the rule with priority % changed after this statement read it (in another transaction, or earlier in this statement)',
                    OLD.priority
                USING ERRCODE = 'serialization_failure', HINT = 'Retry the statement.';
        END IF;
    END IF;

    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT string_agg(j.key, ', ' ORDER BY j.key) INTO missing
        FROM jsonb_each(to_jsonb(NEW)) j
        WHERE j.value = 'null'::jsonb AND j.key <> 'description';
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'rfm_segment_rules: % cannot be NULL', missing
                USING ERRCODE = 'not_null_violation';
        END IF;
        FOREACH axis IN ARRAY ARRAY['r', 'f', 'm'] LOOP
            lo := (to_jsonb(NEW) ->> (axis || '_min'))::int;
            hi := (to_jsonb(NEW) ->> (axis || '_max'))::int;
            IF NOT (1 <= lo AND lo <= hi AND hi <= 5) THEN
                RAISE EXCEPTION 'rfm_segment_rules: % must satisfy 1 <= %_min <= %_max <= 5, got % and %',
                        axis, axis, axis, lo, hi
                    USING ERRCODE = 'check_violation';
            END IF;
        END LOOP;
        IF TG_OP = 'INSERT' OR NEW.priority <> OLD.priority THEN
            PERFORM 1 FROM rfm_segment_rules r WHERE r.priority = NEW.priority;
            IF FOUND THEN
                RAISE EXCEPTION 'rfm_segment_rules: a rule with priority % already exists', NEW.priority
                    USING ERRCODE = 'unique_violation';
            END IF;
        END IF;
        SELECT r.priority INTO other FROM rfm_segment_rules r
        WHERE r.segment = NEW.segment AND r.priority <> NEW.priority
          AND (TG_OP = 'INSERT' OR r.priority <> OLD.priority);
        IF other IS NOT NULL THEN
            RAISE EXCEPTION 'rfm_segment_rules: segment "%" already exists (priority %)', NEW.segment, other
                USING ERRCODE = 'unique_violation';
        END IF;
    END IF;

    -- Remove the old rule: hide a standard rule behind a deleted row, or forget an edit.
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.priority <> OLD.priority) THEN
        IF EXISTS (SELECT 1 FROM rfm_segment_rule_defaults d WHERE d.priority = OLD.priority) THEN
            INSERT INTO rfm_segment_rule_edits AS e (priority, deleted) VALUES (OLD.priority, true)
            ON CONFLICT (priority) DO UPDATE
            SET deleted = true, segment = NULL, r_min = NULL, r_max = NULL, f_min = NULL, f_max = NULL,
                m_min = NULL, m_max = NULL, action = NULL, description = NULL,
                edited_at = now(), edited_by = current_user;
        ELSE
            DELETE FROM rfm_segment_rule_edits e WHERE e.priority = OLD.priority;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;

    -- Store the new rule, unless it is exactly the standard rule of its priority.
    SELECT * INTO standard FROM rfm_segment_rule_defaults d WHERE d.priority = NEW.priority;
    IF FOUND AND (standard.segment, standard.r_min, standard.r_max, standard.f_min, standard.f_max,
                  standard.m_min, standard.m_max, standard.action, standard.description)
                 IS NOT DISTINCT FROM
                 (NEW.segment, NEW.r_min, NEW.r_max, NEW.f_min, NEW.f_max,
                  NEW.m_min, NEW.m_max, NEW.action, NEW.description) THEN
        DELETE FROM rfm_segment_rule_edits e WHERE e.priority = NEW.priority;
    ELSE
        INSERT INTO rfm_segment_rule_edits AS e
            (priority, deleted, segment, r_min, r_max, f_min, f_max, m_min, m_max, action, description)
        VALUES (NEW.priority, false, NEW.segment, NEW.r_min, NEW.r_max, NEW.f_min, NEW.f_max,
                NEW.m_min, NEW.m_max, NEW.action, NEW.description)
        ON CONFLICT (priority) DO UPDATE
        SET deleted = false, segment = EXCLUDED.segment, r_min = EXCLUDED.r_min, r_max = EXCLUDED.r_max,
            f_min = EXCLUDED.f_min, f_max = EXCLUDED.f_max, m_min = EXCLUDED.m_min, m_max = EXCLUDED.m_max,
            action = EXCLUDED.action, description = EXCLUDED.description,
            edited_at = now(), edited_by = current_user;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION rfm_segment_rules_edit() IS
'INSTEAD OF trigger of the rfm_segment_rules view: serializes rule edits (SHARE ROW EXCLUSIVE lock on rfm_segment_rule_edits; readers are not blocked), checks a changed rule as the table constraints would (NOT NULL 23502, ranges 23514, unique priority and segment 23505, against the latest committed rules; 40001 when the rule changed after the statement read it) and records it in rfm_segment_rule_edits. Runs with the privileges of the editing role, which needs INSERT, UPDATE and DELETE on rfm_segment_rule_edits as well as on the view.';

CREATE TRIGGER rfm_segment_rules_edit
    INSTEAD OF INSERT OR UPDATE OR DELETE ON rfm_segment_rules
    FOR EACH ROW EXECUTE FUNCTION rfm_segment_rules_edit();

CREATE FUNCTION rfm_reset_segment_rules() RETURNS int
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    LOCK TABLE rfm_segment_rule_edits IN SHARE ROW EXCLUSIVE MODE;
    WITH gone AS (DELETE FROM rfm_segment_rule_edits RETURNING 1)
    SELECT count(*)::int FROM gone;
    $$;
COMMENT ON FUNCTION rfm_reset_segment_rules() IS
'Restores the standard segment rules: deletes every row of rfm_segment_rule_edits and returns how many there were.';

GRANT SELECT ON rfm_segment_rule_defaults, rfm_segment_rule_edits, rfm_segment_rules TO PUBLIC;
