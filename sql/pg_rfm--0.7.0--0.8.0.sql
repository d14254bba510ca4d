-- pg_rfm 0.7.0 -> 0.8.0
-- Campaigns: rfm_experiment_size, rfm_experiment_size_mean, rfm_experiment_plan,
-- rfm_experiment_create, rfm_experiment_arm, rfm_experiment_end, rfm_experiment_drop,
-- rfm_experiment_results, rfm_experiment_report; tables rfm_experiments and
-- rfm_experiment_assignments. Cross-sell: rfm_basket_train, rfm_basket_itemsets,
-- rfm_basket_rules, rfm_recommend, rfm_recommendations, rfm_basket_model_of,
-- rfm_basket_activate, rfm_basket_drop, rfm_basket_export, rfm_basket_import,
-- rfm_segment_items; tables rfm_basket_models and rfm_basket_rules; view rfm_basket_summary.

------------------------------------------------------------------------------
-- Planning
------------------------------------------------------------------------------
CREATE FUNCTION rfm_experiment_size(baseline float8, min_lift float8, alpha float8 DEFAULT 0.05,
                                    power float8 DEFAULT 0.8, ratio float8 DEFAULT 1,
                                    OUT control bigint, OUT treatment bigint)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_size';
COMMENT ON FUNCTION rfm_experiment_size(float8, float8, float8, float8, float8) IS
'Customers per arm to detect a relative lift min_lift on a conversion rate baseline (baseline x (1 + min_lift) against baseline) with a two-sided two-proportion test of size alpha and this power, treatment = ratio x control: statsmodels'' NormalIndPower().solve_power(effect_size=proportion_effectsize(baseline * (1 + min_lift), baseline), alpha, power, ratio) rounded up, and ratio times that rounded up. ERROR 22023 for rates outside (0, 1), a lift of 0, power <= alpha or ratio <= 0.';

CREATE FUNCTION rfm_experiment_size_mean(sd float8, min_diff float8, alpha float8 DEFAULT 0.05,
                                         power float8 DEFAULT 0.8, ratio float8 DEFAULT 1,
                                         OUT control bigint, OUT treatment bigint)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_size_mean';
COMMENT ON FUNCTION rfm_experiment_size_mean(float8, float8, float8, float8, float8) IS
'Customers per arm to detect a difference min_diff in a mean (revenue per customer) whose standard deviation is sd, two-sided: NormalIndPower().solve_power(effect_size = min_diff / sd, alpha, power, ratio) rounded up, treatment = ratio x control rounded up.';

CREATE FUNCTION rfm_experiment_plan(source regclass, customer_column text, segment_column text,
                                    outcomes regclass, ts_column text, amount_column text,
                                    starts timestamptz, ends timestamptz,
                                    min_lift float8 DEFAULT 0.1, alpha float8 DEFAULT 0.05,
                                    power float8 DEFAULT 0.8, ratio float8 DEFAULT 1)
    RETURNS TABLE (segment text, customers bigint, converted bigint, baseline_rate float8,
                   revenue_mean float8, revenue_sd float8,
                   control bigint, treatment bigint, revenue_control bigint, revenue_treatment bigint,
                   enough boolean, detectable_lift float8, revenue_detectable_lift float8)
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_experiment_plan';
COMMENT ON FUNCTION rfm_experiment_plan(regclass, text, text, regclass, text, text, timestamptz, timestamptz, float8, float8, float8, float8) IS
'Plans a test per segment from past orders: for each segment of source (segment_column; NULL: all customers as one), the customers who ordered in [starts, ends) in outcomes (a customer_column, ts_column and amount_column of its own), the baseline conversion rate, the mean and standard deviation of revenue per customer (0 without orders, returns net), the customers per arm rfm_experiment_size gives for a relative lift min_lift in conversion and rfm_experiment_size_mean for the same relative lift in revenue, whether the segment has enough customers for the conversion test, and the smallest relative lifts detectable with all of them (split by ratio).';

------------------------------------------------------------------------------
-- Storage
------------------------------------------------------------------------------
CREATE TABLE rfm_experiments (
    name            text        PRIMARY KEY,
    arms            jsonb       NOT NULL,
    control_arm     text        NOT NULL,
    stratum_column  text,
    seed            bigint      NOT NULL,
    source          text        NOT NULL,
    customer_column text        NOT NULL,
    customers       bigint      NOT NULL,
    strata          int         NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      name        NOT NULL DEFAULT current_user,
    status          text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ended')),
    ended_at        timestamptz,
    CHECK ((status = 'ended') = (ended_at IS NOT NULL))
);
COMMENT ON TABLE rfm_experiments IS
'One row per experiment (A/B test) made by rfm_experiment_create: its arms and shares, control arm, stratum column, seed, the source relation and customer column it assigned, how many customers and strata, who created it and when, and its status (running, or ended by rfm_experiment_end).';
COMMENT ON COLUMN rfm_experiments.arms IS 'The arms in order with their shares: [["control", 0.5], ["offer", 0.5]].';
COMMENT ON COLUMN rfm_experiments.seed IS 'The seed of the keyed hash that orders customers (with the name): the same name, seed and customers give the same assignment.';
COMMENT ON COLUMN rfm_experiments.source IS 'The relation the customers were read from (as written at creation); rfm_experiment_results reads covariates from it.';

CREATE TABLE rfm_experiment_assignments (
    experiment  text NOT NULL,
    customer_id text NOT NULL,
    stratum     text,
    arm         text NOT NULL
) PARTITION BY LIST (experiment);
COMMENT ON TABLE rfm_experiment_assignments IS
'One row per customer of each experiment: the customer id (as text), its stratum (NULL without a stratum column, or for a NULL stratum value) and its arm. Within each stratum every arm has its share of the customers to less than one customer. Each experiment''s rows are one partition, a table named rfm_assignments_<name>_<hash> owned by this table''s owner with the primary key (experiment, customer_id): rfm_experiment_create writes it and builds its index in one pass, rfm_experiment_drop drops it whole. Read it through this table.';

SELECT pg_catalog.pg_extension_config_dump('rfm_experiments', '');
GRANT SELECT ON rfm_experiments, rfm_experiment_assignments TO PUBLIC;

------------------------------------------------------------------------------
-- Assignment
------------------------------------------------------------------------------
CREATE FUNCTION rfm_experiment_create(name text, source regclass, customer_column text, arms jsonb,
                                      stratum_column text DEFAULT NULL, seed bigint DEFAULT 0,
                                      control_arm text DEFAULT 'control')
    RETURNS TABLE (stratum text, arm text, customers bigint, share float8, expected float8)
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'rfm_experiment_create';
COMMENT ON FUNCTION rfm_experiment_create(text, regclass, text, jsonb, text, bigint, text) IS
'Creates experiment name: assigns every customer of source (customer_column, read as text; NULL ids and ids given twice are refused) to an arm of arms ({"control": 0.5, "offer": 0.5}, or [["control", 0.5], ["offer", 0.5]] to keep their order; 2 to 10 arms, shares summing to 1, one named control_arm). Within each stratum (the values of stratum_column; NULL: one stratum) customers are ordered by a keyed hash of (name, seed, customer id) and dealt out so that every arm has its share to less than one customer. Stores rfm_experiments and rfm_experiment_assignments, and returns the counts per stratum and arm with share x stratum size. The same inputs give the same assignment on every run, PostgreSQL version and Citus. ERROR 42710 if the experiment exists.';

CREATE FUNCTION rfm_experiment_arm(name text, customer_id text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_arm';
COMMENT ON FUNCTION rfm_experiment_arm(text, text) IS
'The arm of customer_id in experiment name: the stored one, or for a customer not assigned at creation (arrived later) an arm drawn from a keyed hash of the id with the experiment''s shares (unstratified, the same on every call). For a campaign job: SELECT ... WHERE rfm_experiment_arm(''winback'', id::text) = ''offer''. Reads the experiment once per statement; past a thousand customers in a statement, all its assignments at once. Unknown experiment: ERROR 42704; on a Citus worker: ERROR 0A000.';

CREATE FUNCTION rfm_experiment_end(name text) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
BEGIN
    UPDATE rfm_experiments e SET status = 'ended', ended_at = now()
    WHERE e.name = rfm_experiment_end.name AND e.status = 'running';
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM rfm_experiments e WHERE e.name = rfm_experiment_end.name) THEN
        RAISE EXCEPTION 'rfm_experiment_end: experiment "%" does not exist', rfm_experiment_end.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION rfm_experiment_end(text) IS
'Marks experiment name ended (status, ended_at). Its assignments and rfm_experiment_arm stay as they are.';

CREATE FUNCTION rfm_experiment_drop(name text) RETURNS bigint
    LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'rfm_experiment_drop';
COMMENT ON FUNCTION rfm_experiment_drop(text) IS
'Deletes experiment name and drops the partition of rfm_experiment_assignments that holds its assignments; returns the number of assignments dropped (0 when there was no such experiment). Needs DELETE on rfm_experiments and rfm_experiment_assignments; waits for queries reading rfm_experiment_assignments to end.';

------------------------------------------------------------------------------
-- Results
------------------------------------------------------------------------------
CREATE FUNCTION rfm_experiment_lines_trans(internal, text, float8) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_lines_trans';
CREATE FUNCTION rfm_experiment_lines_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_lines_combine';
CREATE FUNCTION rfm_experiment_lines_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_lines_serial';
CREATE FUNCTION rfm_experiment_lines_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_lines_deserial';
CREATE FUNCTION rfm_experiment_lines_final(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_experiment_lines_final';
CREATE AGGREGATE rfm_experiment_lines(customer text, amount float8) (
    SFUNC = rfm_experiment_lines_trans, STYPE = internal, SSPACE = 100000,
    FINALFUNC = rfm_experiment_lines_final,
    COMBINEFUNC = rfm_experiment_lines_combine, SERIALFUNC = rfm_experiment_lines_serial,
    DESERIALFUNC = rfm_experiment_lines_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE rfm_experiment_lines(text, float8) IS
'Per customer, the net sum of amount and whether a line had amount >= 0, in a serialized form: what rfm_experiment_results and rfm_experiment_plan read from the order lines of their window, summed by the executor (in parallel workers too). Rows with a NULL are skipped; a NaN or infinite amount is ERROR 22023.';
COMMENT ON FUNCTION rfm_experiment_lines_trans(internal, text, float8) IS 'Transition function of rfm_experiment_lines.';
COMMENT ON FUNCTION rfm_experiment_lines_combine(internal, internal) IS 'Combine function of rfm_experiment_lines.';
COMMENT ON FUNCTION rfm_experiment_lines_serial(internal) IS 'Serial function of rfm_experiment_lines.';
COMMENT ON FUNCTION rfm_experiment_lines_deserial(bytea, internal) IS 'Deserial function of rfm_experiment_lines.';
COMMENT ON FUNCTION rfm_experiment_lines_final(internal) IS 'Final function of rfm_experiment_lines: the totals, serialized.';

CREATE FUNCTION rfm_experiment_results(name text, outcomes regclass, customer_column text, ts_column text,
                                       amount_column text, starts timestamptz, ends timestamptz,
                                       covariate_column text DEFAULT NULL)
    RETURNS TABLE (stratum text, arm text, overall boolean, customers bigint, converted bigint, conversion_rate float8,
                   revenue float8, revenue_per_customer float8, revenue_sd float8,
                   lift_abs float8, lift_rel float8, ci_low float8, ci_high float8,
                   p_value float8, p_adjusted float8,
                   revenue_diff float8, revenue_ci_low float8, revenue_ci_high float8,
                   revenue_p_value float8, revenue_p_adjusted float8,
                   cuped_revenue_diff float8, cuped_ci_low float8, cuped_ci_high float8,
                   cuped_p_value float8, variance_reduction float8, theta float8,
                   srm_p_value float8)
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_experiment_results';
COMMENT ON FUNCTION rfm_experiment_results(text, regclass, text, text, text, timestamptz, timestamptz, text) IS
'The results of experiment name from the order lines of outcomes in [starts, ends): one row per arm overall (stratum NULL, overall true), then per stratum and arm (overall false; a stratum NULL there is the customers whose stratum value was NULL). A customer converted with at least one line of amount >= 0 in the window; revenue is the net sum of its amounts (returns net in; no line: not converted, revenue 0); customers in no arm are ignored. Each treatment arm against control: lift_abs, lift_rel, ci_low/ci_high (95%, Newcomb''s hybrid score interval of the difference, statsmodels'' confint_proportions_2indep method newcomb), p_value (pooled two-proportion z-test, statsmodels'' proportions_ztest), p_adjusted (Holm over the strata of that arm; overall: over the treatment arms), revenue_diff with Welch''s t interval and p-value (scipy''s ttest_ind(equal_var=False)), and with covariate_column (a column of the experiment''s source: a value per customer from before the start) the CUPED difference theta = cov(Y, X) / var(X) over both arms, its Welch interval and p-value and the variance reduction. srm_p_value: chi-square of the arm counts against the shares (WARNING below 0.001). Statistics without variance are NULL, with a NOTICE.';

CREATE FUNCTION rfm_experiment_report(name text, outcomes regclass, customer_column text, ts_column text,
                                      amount_column text, starts timestamptz, ends timestamptz,
                                      covariate_column text DEFAULT NULL) RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_experiment_report';
COMMENT ON FUNCTION rfm_experiment_report(text, regclass, text, text, text, timestamptz, timestamptz, text) IS
'One self-contained HTML page (inline SVG, no scripts) of rfm_experiment_results with the same arguments: per treatment arm, the difference to control with its 95% interval overall and per stratum for conversion, revenue per customer and (with covariate_column) CUPED revenue, and the table of every row.';

-- ---------------------------------------------------------------------------- baskets
-- Cross-sell and up-sell (0.8.0): association rules per segment mined by FP-growth where
-- the order lines are, stored as versions of a basket model; recommendations in queries;
-- segment x product affinity.

------------------------------------------------------------------------------
-- Storage
------------------------------------------------------------------------------
CREATE TABLE rfm_basket_models (
    name            text        NOT NULL,
    version         int         NOT NULL CHECK (version >= 1),
    active          boolean     NOT NULL DEFAULT false,
    source          text,
    order_column    text        NOT NULL,
    item_column     text        NOT NULL,
    segment_column  text,
    customer_column text,
    min_support     float8      NOT NULL,
    min_confidence  float8      NOT NULL,
    max_len         int         NOT NULL,
    min_orders      int         NOT NULL DEFAULT 1,
    orders          bigint      NOT NULL,
    items           bigint      NOT NULL,
    customers       bigint,
    itemsets        bigint      NOT NULL,
    rules           bigint      NOT NULL,
    segments        jsonb       NOT NULL DEFAULT '[]',
    elapsed_ms      float8,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      name        NOT NULL DEFAULT current_user,
    PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX rfm_basket_models_one_active ON rfm_basket_models (name) WHERE active;
COMMENT ON TABLE rfm_basket_models IS
'One row per version of each basket model made by rfm_basket_train: where it was mined from (source, order, item, segment and customer columns), the thresholds (min_support, min_confidence, max_len), what it found (orders, distinct items, customers, frequent itemsets, rules; per segment in segments), who made it and when. Exactly one version per name is active; rfm_recommend and rfm_basket_rules use it.';
COMMENT ON COLUMN rfm_basket_models.segments IS 'Per segment mined (segment_column given): [{"segment": ..., "orders": n, "items": k, "itemsets": i, "rules": r, "customers": c}, ...]; the model''s own columns count all orders.';

CREATE TABLE rfm_basket_rules (
    name               text     NOT NULL,
    version            int      NOT NULL,
    segment            text,
    antecedent         text[]   NOT NULL,
    consequent         text[]   NOT NULL,
    antecedent_support float8   NOT NULL,
    consequent_support float8   NOT NULL,
    support            float8   NOT NULL,
    confidence         float8   NOT NULL,
    lift               float8   NOT NULL,
    leverage           float8   NOT NULL,
    conviction         float8,
    orders             bigint   NOT NULL,
    FOREIGN KEY (name, version) REFERENCES rfm_basket_models (name, version) ON DELETE CASCADE
);
CREATE INDEX rfm_basket_rules_model ON rfm_basket_rules (name, version, segment);
COMMENT ON TABLE rfm_basket_rules IS
'The association rules of each basket model version: segment (NULL: all orders), antecedent -> consequent (item arrays, sorted) with mlxtend''s metrics: support (orders with every item / orders of the segment), antecedent and consequent support, confidence, lift, leverage, conviction (NULL where it is infinite: confidence 1) and orders (the count behind support).';
COMMENT ON COLUMN rfm_basket_rules.conviction IS '(1 - consequent_support) / (1 - confidence); NULL where confidence is 1 (mlxtend: inf).';

SELECT pg_catalog.pg_extension_config_dump('rfm_basket_models', '');
SELECT pg_catalog.pg_extension_config_dump('rfm_basket_rules', '');
GRANT SELECT ON rfm_basket_models, rfm_basket_rules TO PUBLIC;

CREATE VIEW rfm_basket_summary AS
SELECT m.name, m.version, s.segment, s.orders, s.items, s.rules,
       (SELECT array_to_string(r.antecedent, ', ') || ' -> ' || array_to_string(r.consequent, ', ')
        FROM rfm_basket_rules r
        WHERE r.name = m.name AND r.version = m.version AND r.segment IS NOT DISTINCT FROM s.segment
        ORDER BY r.lift DESC, r.confidence DESC, r.antecedent, r.consequent LIMIT 1) AS top_rule,
       (SELECT max(r.lift) FROM rfm_basket_rules r
        WHERE r.name = m.name AND r.version = m.version AND r.segment IS NOT DISTINCT FROM s.segment) AS max_lift,
       m.min_support, m.min_confidence, m.max_len, m.min_orders, m.created_at
FROM rfm_basket_models m
CROSS JOIN LATERAL (
    SELECT NULL::text AS segment, m.orders, m.items,
           (SELECT count(*) FROM rfm_basket_rules r WHERE r.name = m.name AND r.version = m.version AND r.segment IS NULL) AS rules
    UNION ALL
    SELECT e ->> 'segment', (e ->> 'orders')::bigint, (e ->> 'items')::bigint, (e ->> 'rules')::bigint
    FROM jsonb_array_elements(m.segments) e
) s
WHERE m.active;
COMMENT ON VIEW rfm_basket_summary IS
'The active version of each basket model, one row for all orders (segment NULL) and one per segment mined: orders, distinct items, rules, the rule of highest lift, the thresholds and when it was made.';
GRANT SELECT ON rfm_basket_summary TO PUBLIC;

------------------------------------------------------------------------------
-- Training
------------------------------------------------------------------------------
CREATE TYPE rfm_basket_train_result AS (
    name text, version int, orders bigint, items bigint, itemsets bigint, rules bigint,
    segments int, elapsed_ms float8);
COMMENT ON TYPE rfm_basket_train_result IS 'The row rfm_basket_train returns.';

CREATE FUNCTION rfm_basket_train(name text, source regclass, order_column text, item_column text,
                                 min_support float8 DEFAULT 0.01, min_confidence float8 DEFAULT 0.2,
                                 max_len int DEFAULT 3, segment_column text DEFAULT NULL,
                                 customer_column text DEFAULT NULL, min_orders int DEFAULT 1)
    RETURNS rfm_basket_train_result
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'rfm_basket_train';
COMMENT ON FUNCTION rfm_basket_train(text, regclass, text, text, float8, float8, int, text, text, int) IS
'Mines a new version of basket model name from the lines of source: each order (order_column) is the set of its distinct items (item_column; NULL items ignored, an item repeated in an order counted once); frequent itemsets of up to max_len items with support >= min_support by FP-growth, and every rule A -> C (any split of a frequent itemset) with confidence >= min_confidence, with support, confidence, lift, leverage and conviction as mlxtend''s fpgrowth and association_rules compute them. With segment_column, also per segment (support within the segment''s orders). customer_column adds customer counts. min_orders (default 1: mlxtend''s rule alone) is a floor in orders an itemset needs besides min_support, so that the few orders of a small segment do not make every chance pair a rule. Stores rfm_basket_models and rfm_basket_rules and makes the version active. Memory is bounded by pg_rfm.basket_memory (ERROR 53200 naming the count reached, before memory runs out).';

CREATE FUNCTION rfm_basket_itemsets(source regclass, order_column text, item_column text,
                                    min_support float8 DEFAULT 0.01, max_len int DEFAULT 3,
                                    segment_column text DEFAULT NULL, min_orders int DEFAULT 1)
    RETURNS TABLE (segment text, itemset text[], support float8, orders bigint)
    LANGUAGE c STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'rfm_basket_itemsets';
COMMENT ON FUNCTION rfm_basket_itemsets(regclass, text, text, float8, int, text, int) IS
'The frequent itemsets rfm_basket_train finds (FP-growth over the distinct items of each order, as mlxtend''s fpgrowth), without storing a model: segment (NULL: all orders), the items (sorted), support and the count of orders. Ordered by segment, size, items.';

CREATE FUNCTION rfm_basket_activate(name text, version int) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pg_rfm.basket'), hashtext(rfm_basket_activate.name));
    IF NOT EXISTS (SELECT 1 FROM rfm_basket_models m WHERE m.name = rfm_basket_activate.name AND m.version = rfm_basket_activate.version) THEN
        RAISE EXCEPTION 'rfm_basket_activate: basket model "%" has no version %', rfm_basket_activate.name, rfm_basket_activate.version
            USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE rfm_basket_models m SET active = false
    WHERE m.name = rfm_basket_activate.name AND m.active AND m.version <> rfm_basket_activate.version;
    UPDATE rfm_basket_models m SET active = true
    WHERE m.name = rfm_basket_activate.name AND m.version = rfm_basket_activate.version;
END
$$;
COMMENT ON FUNCTION rfm_basket_activate(text, int) IS
'Makes version the active version of basket model name (for rollback to an earlier version).';

CREATE FUNCTION rfm_basket_drop(name text) RETURNS int
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    WITH gone AS (DELETE FROM rfm_basket_models m WHERE m.name = $1 RETURNING 1)
    SELECT count(*)::int FROM gone
    $$;
COMMENT ON FUNCTION rfm_basket_drop(text) IS
'Deletes every version of basket model name and its rules; returns the number of versions deleted (0 when there was none).';

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------
CREATE FUNCTION rfm_basket_rules(name text)
    RETURNS TABLE (segment text, antecedent text[], consequent text[], support float8, confidence float8,
                   lift float8, leverage float8, conviction float8, orders bigint,
                   antecedent_support float8, consequent_support float8)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT r.segment, r.antecedent, r.consequent, r.support, r.confidence, r.lift, r.leverage, r.conviction,
           r.orders, r.antecedent_support, r.consequent_support
    FROM rfm_basket_rules r JOIN rfm_basket_models m USING (name, version)
    WHERE m.name = $1 AND m.active
    ORDER BY r.lift DESC, r.confidence DESC, r.segment NULLS FIRST, r.antecedent, r.consequent
    $$;
COMMENT ON FUNCTION rfm_basket_rules(text) IS
'Every rule of the active version of basket model name, all orders (segment NULL) and each segment, ordered by lift (then confidence).';

CREATE FUNCTION rfm_basket_rules(name text, segment text)
    RETURNS TABLE (segment text, antecedent text[], consequent text[], support float8, confidence float8,
                   lift float8, leverage float8, conviction float8, orders bigint,
                   antecedent_support float8, consequent_support float8)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT r.segment, r.antecedent, r.consequent, r.support, r.confidence, r.lift, r.leverage, r.conviction,
           r.orders, r.antecedent_support, r.consequent_support
    FROM rfm_basket_rules r JOIN rfm_basket_models m USING (name, version)
    WHERE m.name = $1 AND m.active AND r.segment IS NOT DISTINCT FROM $2
    ORDER BY r.lift DESC, r.confidence DESC, r.antecedent, r.consequent
    $$;
COMMENT ON FUNCTION rfm_basket_rules(text, text) IS
'The rules of one segment of the active version of basket model name (NULL: the rules over all orders), ordered by lift (then confidence).';

CREATE FUNCTION rfm_basket_export(name text) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT jsonb_build_object('format', 'pg_rfm.basket_model', 'format_version', 1, 'model', to_jsonb(m),
           'rules', coalesce((
                SELECT jsonb_agg(to_jsonb(r) - 'name' - 'version' ORDER BY r.segment NULLS FIRST, r.antecedent, r.consequent)
                FROM rfm_basket_rules r WHERE r.name = m.name AND r.version = m.version), '[]'))
    FROM rfm_basket_models m WHERE m.name = $1 AND m.active
    $$;
COMMENT ON FUNCTION rfm_basket_export(text) IS
'The active version of basket model name as a jsonb document: {"format": "pg_rfm.basket_model", "format_version": 1, "model": the rfm_basket_models row, "rules": its rfm_basket_rules rows}. rfm_basket_import stores it elsewhere.';

CREATE FUNCTION rfm_basket_import(doc jsonb, name text DEFAULT NULL) RETURNS int
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
DECLARE
    target text := coalesce(rfm_basket_import.name, doc #>> '{model,name}');
    next_version int;
BEGIN
    IF doc IS NULL OR doc ->> 'format' IS DISTINCT FROM 'pg_rfm.basket_model' OR doc ->> 'format_version' IS DISTINCT FROM '1'
       OR jsonb_typeof(doc -> 'model') IS DISTINCT FROM 'object' OR jsonb_typeof(doc -> 'rules') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'rfm_basket_import: not a basket model document (format pg_rfm.basket_model, format_version 1)'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Export one with rfm_basket_export(name).';
    END IF;
    IF target IS NULL THEN
        RAISE EXCEPTION 'rfm_basket_import: the document has no name; give one' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pg_rfm.basket'), hashtext(target));
    SELECT coalesce(max(m.version), 0) + 1 INTO next_version FROM rfm_basket_models m WHERE m.name = target;
    UPDATE rfm_basket_models m SET active = false WHERE m.name = target AND m.active;
    INSERT INTO rfm_basket_models
    SELECT (jsonb_populate_record(NULL::rfm_basket_models,
            (doc -> 'model') || jsonb_build_object('name', target, 'version', next_version, 'active', true,
                                                   'created_at', now(), 'created_by', current_user))).*;
    INSERT INTO rfm_basket_rules
    SELECT (jsonb_populate_record(NULL::rfm_basket_rules, e || jsonb_build_object('name', target, 'version', next_version))).*
    FROM jsonb_array_elements(doc -> 'rules') e;
    PERFORM rfm_basket_check(target, next_version);
    RETURN next_version;
END
$$;
COMMENT ON FUNCTION rfm_basket_import(jsonb, text) IS
'Stores an exported basket model document as a new active version of its own name (or of name), checked as rfm_recommend checks a stored version (XX001 for a damaged document); returns the version.';

CREATE FUNCTION rfm_basket_check(name text, version int) RETURNS void
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_check';
COMMENT ON FUNCTION rfm_basket_check(text, int) IS
'Loads version of basket model name as rfm_recommend does and raises XX001 naming it if its rules are damaged (empty or overlapping sides, NULL items, metrics out of range).';

------------------------------------------------------------------------------
-- Recommending
------------------------------------------------------------------------------
CREATE TYPE rfm_basket_model;
CREATE FUNCTION rfm_basket_model_in(cstring) RETURNS rfm_basket_model
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_model_in';
CREATE FUNCTION rfm_basket_model_out(rfm_basket_model) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_model_out';
CREATE FUNCTION rfm_basket_model_recv(internal) RETURNS rfm_basket_model
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_model_recv';
CREATE FUNCTION rfm_basket_model_send(rfm_basket_model) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_model_send';
CREATE TYPE rfm_basket_model (
    INPUT = rfm_basket_model_in, OUTPUT = rfm_basket_model_out,
    RECEIVE = rfm_basket_model_recv, SEND = rfm_basket_model_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE rfm_basket_model IS
'A basket model version as a value (rfm_basket_model_of(name)): its items and rules per segment in a compact, machine-independent form with a content hash, for rfm_recommend where the model tables cannot be read (Citus workers). The text form is its bytes in hexadecimal.';
COMMENT ON FUNCTION rfm_basket_model_in(cstring) IS 'Input function of rfm_basket_model: hexadecimal bytes, checked (22P02, XX001).';
COMMENT ON FUNCTION rfm_basket_model_out(rfm_basket_model) IS 'Output function of rfm_basket_model: the bytes in hexadecimal.';
COMMENT ON FUNCTION rfm_basket_model_recv(internal) IS 'Binary input function of rfm_basket_model: the bytes, checked.';
COMMENT ON FUNCTION rfm_basket_model_send(rfm_basket_model) IS 'Binary output function of rfm_basket_model: the bytes.';

CREATE FUNCTION rfm_basket_model_of(name text) RETURNS rfm_basket_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_model_of';
CREATE FUNCTION rfm_basket_model_of(name text, version int) RETURNS rfm_basket_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_basket_model_of';
COMMENT ON FUNCTION rfm_basket_model_of(text) IS
'The active version of basket model name as an rfm_basket_model value, read once per statement at each call site. On Citus: WITH m AS MATERIALIZED (SELECT rfm_basket_model_of(''retail'') AS m) SELECT customer_id, rfm_recommend(m.m, items, 3) FROM baskets, m.';
COMMENT ON FUNCTION rfm_basket_model_of(text, int) IS 'Version version of basket model name as an rfm_basket_model value.';

CREATE FUNCTION rfm_recommend(name text, basket text[], n int DEFAULT 5, segment text DEFAULT NULL) RETURNS text[]
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_recommend';
CREATE FUNCTION rfm_recommend(m rfm_basket_model, basket text[], n int DEFAULT 5, segment text DEFAULT NULL) RETURNS text[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_recommend_value';
COMMENT ON FUNCTION rfm_recommend(text, text[], int, text) IS
'The top n items not in basket, from the rules of the active version of basket model name (of segment; NULL: the rules over all orders) whose antecedent basket holds, each scored by the best confidence of such a rule, ties by lift, then by item. NULL for a NULL basket; an empty array when no rule applies. The model is read once per statement. Typical use: SELECT customer_id, rfm_recommend(''retail'', array_agg(DISTINCT stock_code), 3, segment) FROM lines JOIN segments USING (customer_id) GROUP BY customer_id, segment.';
COMMENT ON FUNCTION rfm_recommend(rfm_basket_model, text[], int, text) IS
'rfm_recommend with the model given as a value (rfm_basket_model_of(name)), for Citus workers; each distinct value is decoded once per query and call site.';

CREATE FUNCTION rfm_recommendations(name text, basket text[], n int DEFAULT 5, segment text DEFAULT NULL)
    RETURNS TABLE (rank int, item text, confidence float8, lift float8, antecedent text[], consequent text[], support float8)
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_recommendations';
COMMENT ON FUNCTION rfm_recommendations(text, text[], int, text) IS
'rfm_recommend as rows: rank, item, and the rule that gave it its score (confidence, lift, antecedent, consequent, support).';

------------------------------------------------------------------------------
-- Segment x item affinity
------------------------------------------------------------------------------
CREATE FUNCTION rfm_segment_items(source regclass, customer_column text, item_column text, segment_column text,
                                  amount_column text DEFAULT NULL)
    RETURNS TABLE (segment text, item text, customers bigint, share float8, share_overall float8,
                   affinity float8, revenue float8)
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    cols text[];
BEGIN
    IF source IS NULL OR customer_column IS NULL OR item_column IS NULL OR segment_column IS NULL THEN
        RAISE EXCEPTION 'rfm_segment_items: only amount_column may be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT array_agg(a.attname::text) INTO cols FROM pg_attribute a
    WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT (customer_column = ANY (cols)) OR NOT (item_column = ANY (cols)) OR NOT (segment_column = ANY (cols))
       OR (amount_column IS NOT NULL AND NOT (amount_column = ANY (cols))) THEN
        RAISE EXCEPTION 'rfm_segment_items: relation % has no column %', source,
            (SELECT c FROM unnest(ARRAY[customer_column, item_column, segment_column, amount_column]) c
             WHERE c IS NOT NULL AND NOT (c = ANY (cols)) LIMIT 1)
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH l AS (SELECT %1$I::text AS c, %2$I::text AS i, %3$I::text AS s, %4$s AS a FROM %5$s
                   WHERE %1$I IS NOT NULL AND %2$I IS NOT NULL AND %3$I IS NOT NULL),
             seg AS (SELECT s, count(DISTINCT c) AS n FROM l GROUP BY s),
             total AS (SELECT count(DISTINCT c) AS n FROM l),
             item_all AS (SELECT i, count(DISTINCT c) AS n FROM l GROUP BY i),
             seg_item AS (SELECT s, i, count(DISTINCT c) AS n, sum(a) AS revenue FROM l GROUP BY s, i)
        SELECT si.s, si.i, si.n, si.n::float8 / seg.n, ia.n::float8 / total.n,
               (si.n::float8 / seg.n) / (ia.n::float8 / total.n), si.revenue
        FROM seg_item si JOIN seg USING (s) JOIN item_all ia USING (i) CROSS JOIN total
        ORDER BY si.s, (si.n::float8 / seg.n) / (ia.n::float8 / total.n) DESC, si.n DESC, si.i$q$,
        customer_column, item_column, segment_column,
        CASE WHEN amount_column IS NULL THEN 'NULL::float8' ELSE format('%I::float8', amount_column) END, source);
END
$fn$;
COMMENT ON FUNCTION rfm_segment_items(regclass, text, text, text, text) IS
'Per segment and item of the lines of source: customers (of the segment who bought the item), share (those / the segment''s customers), share_overall (customers who bought it / all customers), affinity (share / share_overall: above 1, the segment buys it more than the rest), revenue (sum of amount_column; NULL without it). Lines with a NULL customer, item or segment are left out. Ordered by segment, then affinity.';
