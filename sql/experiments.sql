-- ---------------------------------------------------------------------------- experiments
-- Campaigns (0.8.0): plan, assign and measure A/B tests of segment actions. Statistics as
-- statsmodels and scipy compute them; assignment stored like models (pg_dump, privileges).

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
