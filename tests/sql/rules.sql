-- Editing the segment rules through the rfm_segment_rules view. The view must behave like the
-- 0.2.0 table (priority and segment unique, ranges checked, NOT NULL) while storing only the
-- differences from the standard rules in rfm_segment_rule_edits (which pg_dump keeps).

-- Fresh install: the view is exactly the standard rules, and there are no edits.
SELECT (SELECT count(*) FROM rfm_segment_rules) AS rules,
       (SELECT count(*) FROM rfm_segment_rule_edits) AS edits,
       (SELECT count(*) FROM (TABLE rfm_segment_rules EXCEPT TABLE rfm_segment_rule_defaults) x) AS differing;

-- A probe customer per cell of interest, scored on a 1..5 scale with breaks 1.5, 2.5, 3.5, 4.5
-- (score = value; recency is reversed: recency 1 scores 5).
CREATE TEMP VIEW probe AS
SELECT p.name, (rfm_score(6 - p.r, p.f, p.m, ROW(5, '{1.5,2.5,3.5,4.5}', '{1.5,2.5,3.5,4.5}',
                                                  '{1.5,2.5,3.5,4.5}')::rfm_breaks)).*
FROM (VALUES ('r5f5m5', 5, 5, 5), ('r1f1m1', 1, 1, 1), ('r1f1m4', 1, 1, 4), ('r3f3m3', 3, 3, 3)) p(name, r, f, m);
SELECT name, r, f, m, code, segment FROM probe ORDER BY name;

BEGIN;
-- Rename a standard rule: one edit row; rfm_score sees it in the next statement.
UPDATE rfm_segment_rules SET segment = 'VIP', action = 'Call them' WHERE priority = 10 RETURNING priority, segment, action;
SELECT priority, deleted, segment, action, edited_by = current_user AS by_me FROM rfm_segment_rule_edits;
SELECT name, segment, action FROM probe WHERE name = 'r5f5m5';
-- Setting it back to exactly the standard rule removes the edit.
UPDATE rfm_segment_rules d SET segment = s.segment, action = s.action
FROM rfm_segment_rule_defaults s WHERE s.priority = d.priority AND d.priority = 10;
SELECT count(*) AS edits_after_revert FROM rfm_segment_rule_edits;

-- Moving a rule to another priority: the old priority is deleted, the new one added.
-- Hibernating (r 1-2, f 1-2, any m) then wins over Lost (r 1, f 1-2, m 1-2) for r1 f1 m1.
UPDATE rfm_segment_rules SET priority = 5 WHERE segment = 'Hibernating';
SELECT priority, deleted, segment FROM rfm_segment_rule_edits ORDER BY priority;
SELECT priority, segment FROM rfm_segment_rules WHERE priority IN (5, 110) ORDER BY priority;
SELECT count(*) AS rules FROM rfm_segment_rules;
SELECT name, segment FROM probe WHERE name IN ('r1f1m1', 'r1f1m4') ORDER BY name;

-- Deleting a standard rule hides it behind a deleted row. No other rule covers r5 f5, so
-- that customer has no segment.
DELETE FROM rfm_segment_rules WHERE segment = 'Champions';
SELECT priority, deleted, segment FROM rfm_segment_rule_edits ORDER BY priority;
SELECT count(*) AS rules FROM rfm_segment_rules;
SELECT name, segment FROM probe WHERE name = 'r5f5m5';

-- An added rule with a new priority, tried before Need Attention (60).
INSERT INTO rfm_segment_rules (priority, segment, r_min, r_max, f_min, f_max, m_min, m_max, action)
VALUES (55, 'Middle of the road', 3, 3, 3, 3, 3, 3, 'Nudge them');
SELECT name, segment, action FROM probe WHERE name = 'r3f3m3';
-- Deleting an added rule forgets it (no deleted row: there is no standard rule at 55).
DELETE FROM rfm_segment_rules WHERE priority = 55;
SELECT priority, deleted FROM rfm_segment_rule_edits ORDER BY priority;

-- A statement over many rows: each row is an edit, and the command reports them all.
WITH u AS (UPDATE rfm_segment_rules SET action = upper(action) RETURNING 1) SELECT count(*) AS updated FROM u;
SELECT count(*) FILTER (WHERE NOT deleted) AS changed, count(*) FILTER (WHERE deleted) AS deleted
FROM rfm_segment_rule_edits;
SELECT count(*) AS not_upper FROM rfm_segment_rules WHERE action <> upper(action);

-- The table's constraints, enforced on the view (nothing is written by a refused edit).
SELECT q, try_sql(q) AS outcome FROM (VALUES
    ($$INSERT INTO rfm_segment_rules VALUES (20, 'Dup priority', 1, 1, 1, 1, 1, 1, 'x', NULL)$$),
    ($$INSERT INTO rfm_segment_rules VALUES (21, 'At Risk', 1, 1, 1, 1, 1, 1, 'x', NULL)$$),
    ($$UPDATE rfm_segment_rules SET segment = 'Promising' WHERE priority = 20$$),
    ($$UPDATE rfm_segment_rules SET priority = 30 WHERE priority = 20$$),
    ($$INSERT INTO rfm_segment_rules VALUES (22, NULL, 1, 1, 1, 1, 1, 1, 'x', NULL)$$),
    ($$INSERT INTO rfm_segment_rules (priority, segment) VALUES (23, 'Half')$$),
    ($$INSERT INTO rfm_segment_rules VALUES (NULL, 'No priority', 1, 1, 1, 1, 1, 1, 'x', NULL)$$),
    ($$INSERT INTO rfm_segment_rules VALUES (24, 'Bad r', 0, 1, 1, 1, 1, 1, 'x', NULL)$$),
    ($$INSERT INTO rfm_segment_rules VALUES (25, 'Bad f', 1, 1, 4, 2, 1, 1, 'x', NULL)$$),
    ($$UPDATE rfm_segment_rules SET m_max = 6 WHERE priority = 20$$),
    ($$INSERT INTO rfm_segment_rules VALUES (26, 'Robert''); DROP TABLE rfm_models; --', 1, 1, 1, 1, 1, 1, 'x', NULL)$$),
    -- A join that matches one rule twice: a table would apply the first match only; the view
    -- refuses the second (the rule changed after the statement read it) and so the statement.
    ($$UPDATE rfm_segment_rules r SET action = v.x FROM (VALUES ('a'), ('b')) v(x) WHERE r.priority = 30$$),
    -- Upserts need a unique index, which a view does not have.
    ($$INSERT INTO rfm_segment_rules VALUES (27, 'Upsert', 1, 1, 1, 1, 1, 1, 'x', NULL) ON CONFLICT (priority) DO NOTHING$$)
) AS cases(q);
SELECT priority, segment, action FROM rfm_segment_rules WHERE priority IN (20, 21, 22, 23, 24, 25, 26, 27, 30) ORDER BY priority;
SELECT count(*) AS models_table_still_there FROM rfm_models WHERE false;

-- Deleting everything: no rule matches, so no segment.
DELETE FROM rfm_segment_rules;
SELECT count(*) AS rules, (SELECT count(*) FROM rfm_segment_rule_edits WHERE deleted) AS deleted_rows
FROM rfm_segment_rules;
SELECT count(*) FILTER (WHERE segment IS NULL) AS unsegmented FROM probe;

-- rfm_reset_segment_rules() brings the standard rules back.
SELECT rfm_reset_segment_rules() AS edits_removed;
SELECT count(*) AS differing FROM (TABLE rfm_segment_rules EXCEPT TABLE rfm_segment_rule_defaults) x;
SELECT name, segment FROM probe ORDER BY name;
ROLLBACK;

-- Privileges: editing needs write access to the view and to rfm_segment_rule_edits (the
-- trigger runs with the editor's privileges; there is no SECURITY DEFINER).
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rfm_rule_editor;
CREATE ROLE regress_rfm_rule_editor;
GRANT UPDATE ON rfm_segment_rules TO regress_rfm_rule_editor;
GRANT EXECUTE ON FUNCTION try_sql(text) TO PUBLIC;
SET ROLE regress_rfm_rule_editor;
SELECT try_sql($$UPDATE rfm_segment_rules SET action = 'Mine' WHERE priority = 10$$) AS view_only;
SELECT try_sql($$SELECT rfm_reset_segment_rules()$$) AS reset_without_rights;
RESET ROLE;
GRANT INSERT, UPDATE, DELETE ON rfm_segment_rule_edits TO regress_rfm_rule_editor;
SET ROLE regress_rfm_rule_editor;
SELECT try_sql($$UPDATE rfm_segment_rules SET action = 'Mine' WHERE priority = 10$$) AS with_edits_table;
RESET ROLE;
SELECT priority, action, edited_by FROM rfm_segment_rule_edits;
SELECT rfm_reset_segment_rules() AS edits_removed;
REVOKE ALL ON rfm_segment_rules, rfm_segment_rule_edits FROM regress_rfm_rule_editor;
DROP ROLE regress_rfm_rule_editor;
RESET client_min_messages;
