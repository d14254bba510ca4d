-- pg_rfm 0.2.0 -> 0.3.0
--
-- 0.3.0 makes edits to the segment rules survive pg_dump and restore. The 0.2.0 table
-- rfm_segment_rules becomes:
--   rfm_segment_rule_defaults  the standard rules (written by the extension, not dumped)
--   rfm_segment_rule_edits     your changes, one row per priority (config-dumped)
--   rfm_segment_rules          a view merging the two; INSERT, UPDATE and DELETE on it work
--                              as on the old table (an INSTEAD OF trigger records them)
-- This script moves every difference between the 0.2.0 table and the standard rules into
-- rfm_segment_rule_edits, so rfm_segment_rules shows the same rows after the update.
--
-- Objects of yours that use the old table (views, foreign keys, functions of its row type,
-- triggers) would be dropped with it: the update refuses (2BP01) and names them.
--
-- Privileges on the 0.2.0 table are not carried over: grants and revokes made inside an
-- extension script are recorded as the extension's initial privileges, which pg_dump does
-- not dump, so a carried privilege would be lost at the next restore. Instead the update
-- raises a WARNING with the GRANT and REVOKE statements to run afterwards.
--
-- Released scripts are never edited: later changes go into a new pg_rfm--0.3.0--x.sql.
\echo Use "ALTER EXTENSION pg_rfm UPDATE TO '0.3.0'" to load this file. \quit

DO $$
DECLARE
    users text;
BEGIN
    SELECT string_agg(o, '; ' ORDER BY o) INTO users FROM (
        SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
                             THEN (SELECT 'view ' || r.ev_class::regclass::text FROM pg_rewrite r WHERE r.oid = d.objid)
                             ELSE pg_describe_object(d.classid, d.objid, 0) END AS o
        FROM pg_depend d
        WHERE d.deptype = 'n'
          AND ((d.refclassid = 'pg_class'::regclass
                AND (d.refobjid = 'rfm_segment_rules'::regclass
                     OR d.refobjid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = 'rfm_segment_rules'::regclass)))
               OR (d.refclassid = 'pg_type'::regclass
                   AND d.refobjid = (SELECT c.reltype FROM pg_class c WHERE c.oid = 'rfm_segment_rules'::regclass)))
          AND NOT (d.classid = 'pg_constraint'::regclass
                   AND d.objid IN (SELECT co.oid FROM pg_constraint co WHERE co.conrelid = 'rfm_segment_rules'::regclass))
        UNION
        SELECT pg_describe_object('pg_trigger'::regclass, t.oid, 0)
        FROM pg_trigger t
        WHERE t.tgrelid = 'rfm_segment_rules'::regclass AND NOT t.tgisinternal
    ) u;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'pg_rfm 0.3.0 replaces the table rfm_segment_rules by a view; these objects use the table: %', users
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop them, run ALTER EXTENSION pg_rfm UPDATE again, then create them again over the view rfm_segment_rules (a view cannot have ordinary triggers or be referenced by a foreign key).';
    END IF;
END
$$;

ALTER TABLE rfm_segment_rules RENAME TO rfm_segment_rules_0_2_0;

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

-- Differences between the 0.2.0 table and the standard rules become edits.
INSERT INTO rfm_segment_rule_edits
    (priority, deleted, segment, r_min, r_max, f_min, f_max, m_min, m_max, action, description)
SELECT o.priority, false, o.segment, o.r_min, o.r_max, o.f_min, o.f_max, o.m_min, o.m_max, o.action, o.description
FROM rfm_segment_rules_0_2_0 o
WHERE NOT EXISTS (
    SELECT 1 FROM rfm_segment_rule_defaults d
    WHERE (d.priority, d.segment, d.r_min, d.r_max, d.f_min, d.f_max, d.m_min, d.m_max, d.action, d.description)
          IS NOT DISTINCT FROM
          (o.priority, o.segment, o.r_min, o.r_max, o.f_min, o.f_max, o.m_min, o.m_max, o.action, o.description));
INSERT INTO rfm_segment_rule_edits (priority, deleted)
SELECT d.priority, true
FROM rfm_segment_rule_defaults d
WHERE NOT EXISTS (SELECT 1 FROM rfm_segment_rules_0_2_0 o WHERE o.priority = d.priority);

-- Privileges of the 0.2.0 table that differ from what the extension granted (SELECT to
-- PUBLIC), as statements to run after the update: table and column grants (with their
-- grant option); for every role that could write the rules, access to the two tables the
-- editing trigger uses with that role's privileges; and a REVOKE when PUBLIC could not read
-- the rules.
DO $$
DECLARE
    old oid := 'rfm_segment_rules_0_2_0'::regclass;
    schema_name text;
    todo text;
BEGIN
    SELECT n.nspname INTO schema_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = old;
    WITH acl AS (
        SELECT a.grantee, a.privilege_type, a.is_grantable, NULL::name AS col
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = old AND a.grantee <> c.relowner
        UNION ALL
        SELECT a.grantee, a.privilege_type, a.is_grantable, att.attname
        FROM pg_class c, pg_attribute att, aclexplode(att.attacl) a
        WHERE c.oid = old AND att.attrelid = old AND att.attnum > 0 AND NOT att.attisdropped
          AND a.grantee <> c.relowner
    ), named AS (
        SELECT CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(acl.grantee)) END AS who, acl.*
        FROM acl
        WHERE acl.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
          AND NOT (acl.grantee = 0 AND acl.privilege_type = 'SELECT' AND acl.col IS NULL)
    )
    SELECT string_agg(s.stmt, ' ' ORDER BY s.ord, s.stmt) INTO todo FROM (
        SELECT 1 AS ord, format('GRANT %s%s ON %I.rfm_segment_rules TO %s%s;', n.privilege_type,
                                coalesce(' (' || quote_ident(n.col) || ')', ''), schema_name, n.who,
                                CASE WHEN n.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS stmt
        FROM named n
        UNION
        SELECT 2, format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.rfm_segment_rule_edits TO %s;'
                         ' GRANT SELECT ON %I.rfm_segment_rule_defaults TO %s;', schema_name, n.who, schema_name, n.who)
        FROM named n WHERE n.privilege_type IN ('INSERT', 'UPDATE', 'DELETE')
        UNION
        SELECT 3, format('REVOKE SELECT ON %I.rfm_segment_rules, %I.rfm_segment_rule_edits, %I.rfm_segment_rule_defaults FROM PUBLIC;',
                         schema_name, schema_name, schema_name)
        WHERE NOT EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                          WHERE c.oid = old AND a.grantee = 0 AND a.privilege_type = 'SELECT')
    ) s;
    IF todo IS NOT NULL THEN
        RAISE WARNING 'pg_rfm 0.3.0: rfm_segment_rules is now a view; privileges on the 0.2.0 table were not carried over'
            USING DETAIL = 'To restore them, run after the update: ' || todo;
    END IF;
END
$$;

DROP TABLE rfm_segment_rules_0_2_0;
