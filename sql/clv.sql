-- Customer lifetime value: the per-customer summary aggregate, BG/NBD and Gamma-Gamma
-- models fitted in the database and stored in versioned tables, and their predictions.

------------------------------------------------------------------------------
-- rfm_clv_summary(order_ts, amount, as_of [, unit])
------------------------------------------------------------------------------
CREATE TYPE rfm_clv_summary AS (frequency bigint, recency float8, t float8, monetary float8);
COMMENT ON TYPE rfm_clv_summary IS
'What rfm_clv_summary returns per customer, as lifetimes'' summary_data_from_transaction_data with daily periods: frequency (repeat purchase days: distinct UTC calendar days with a purchase, minus one), recency (first to last purchase day), t (first purchase day to as_of''s day), both in the unit, and monetary (mean amount per repeat purchase day; 0 without repeats).';

CREATE FUNCTION rfm_clv_trans(internal, timestamptz, float8, timestamptz) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_trans';
CREATE FUNCTION rfm_clv_trans(internal, timestamptz, float8, timestamptz, text) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_trans';
CREATE FUNCTION rfm_clv_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_combine';
CREATE FUNCTION rfm_clv_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_serial';
CREATE FUNCTION rfm_clv_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_deserial';
CREATE FUNCTION rfm_clv_final(internal) RETURNS rfm_clv_summary
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_final';

CREATE AGGREGATE rfm_clv_summary(order_ts timestamptz, amount float8, as_of timestamptz) (
    SFUNC = rfm_clv_trans, STYPE = internal, SSPACE = 256,
    FINALFUNC = rfm_clv_final,
    COMBINEFUNC = rfm_clv_combine, SERIALFUNC = rfm_clv_serial, DESERIALFUNC = rfm_clv_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE rfm_clv_summary(order_ts timestamptz, amount float8, as_of timestamptz, unit text) (
    SFUNC = rfm_clv_trans, STYPE = internal, SSPACE = 256,
    FINALFUNC = rfm_clv_final,
    COMBINEFUNC = rfm_clv_combine, SERIALFUNC = rfm_clv_serial, DESERIALFUNC = rfm_clv_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE rfm_clv_summary(timestamptz, float8, timestamptz) IS
'The BG/NBD and Gamma-Gamma inputs of a group (customer) whose rows are purchases: frequency, recency, t (in days) and monetary, as lifetimes'' summary_data_from_transaction_data with daily periods (days are UTC calendar days; amounts of one day are added up). Rows with a NULL timestamp or amount are skipped. ERROR 22023 for a negative, NaN or infinite amount, a row later than as_of, or as_of varying within a group; 22004 for a NULL as_of.';
COMMENT ON AGGREGATE rfm_clv_summary(timestamptz, float8, timestamptz, text) IS
'rfm_clv_summary(order_ts, amount, as_of) with recency and t in unit: ''day'' or ''week'' (7 days, fractional; lifetimes'' freq_multiplier = 7).';
COMMENT ON FUNCTION rfm_clv_trans(internal, timestamptz, float8, timestamptz) IS 'Transition function of rfm_clv_summary(order_ts, amount, as_of).';
COMMENT ON FUNCTION rfm_clv_trans(internal, timestamptz, float8, timestamptz, text) IS 'Transition function of rfm_clv_summary(order_ts, amount, as_of, unit).';
COMMENT ON FUNCTION rfm_clv_combine(internal, internal) IS 'Combine function of rfm_clv_summary: merges the purchase days of partial states.';
COMMENT ON FUNCTION rfm_clv_serial(internal) IS 'Serial function of rfm_clv_summary: partial state to bytea.';
COMMENT ON FUNCTION rfm_clv_deserial(bytea, internal) IS 'Deserial function of rfm_clv_summary: bytea to partial state.';
COMMENT ON FUNCTION rfm_clv_final(internal) IS 'Final function of rfm_clv_summary: builds the rfm_clv_summary.';

------------------------------------------------------------------------------
-- Stored models
------------------------------------------------------------------------------
CREATE TABLE rfm_clv_models (
    model          text        NOT NULL,
    version        int         NOT NULL,
    unit           text        NOT NULL CHECK (unit IN ('day', 'week')),
    source         text,
    columns        jsonb       NOT NULL,
    n              bigint      NOT NULL,
    r              float8      NOT NULL,
    alpha          float8      NOT NULL,
    a              float8      NOT NULL,
    b              float8      NOT NULL,
    loglik         float8      NOT NULL,
    iterations     int         NOT NULL,
    gradient       float8      NOT NULL,
    n_repeat       bigint,
    p              float8,
    q              float8,
    v              float8,
    loglik_spend   float8,
    iterations_spend int,
    gradient_spend float8,
    options        jsonb       NOT NULL,
    elapsed_ms     float8,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     name        NOT NULL DEFAULT current_user,
    active         boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (model, version),
    CHECK ((p IS NULL) = (q IS NULL) AND (q IS NULL) = (v IS NULL))
);
CREATE UNIQUE INDEX rfm_clv_models_one_active ON rfm_clv_models (model) WHERE active;
COMMENT ON TABLE rfm_clv_models IS
'One row per version of each customer lifetime value model: the BG/NBD parameters (r, alpha, a, b) of repeat purchases and, unless fitted without monetary, the Gamma-Gamma parameters (p, q, v) of spend per purchase, with log-likelihoods, customer counts, convergence diagnostics, options, who fitted it and when. Exactly one version per model is active; the rfm_clv_* predictions use it.';
COMMENT ON COLUMN rfm_clv_models.unit IS 'The time unit of recency, t and periods: day or week. alpha is in this unit.';
COMMENT ON COLUMN rfm_clv_models.columns IS 'The source columns read: {"frequency", "recency", "t", "monetary"} (monetary null when only BG/NBD was fitted).';
COMMENT ON COLUMN rfm_clv_models.n IS 'Customers the BG/NBD model was fitted on (rows with a NULL input left out).';
COMMENT ON COLUMN rfm_clv_models.loglik IS 'Total BG/NBD log-likelihood of the n customers at the fitted parameters, in the unit (as Fader, Hardie and Lee 2005 report it: -9582.4 on their CDNOW cohort in weeks).';
COMMENT ON COLUMN rfm_clv_models.iterations IS 'BFGS iterations of the BG/NBD fit.';
COMMENT ON COLUMN rfm_clv_models.gradient IS 'Largest absolute gradient component of the BG/NBD objective (mean negative log-likelihood per customer, log parameters) at the optimum: below 1e-7, usually near 1e-10 where the fit stops.';
COMMENT ON COLUMN rfm_clv_models.n_repeat IS 'Customers with frequency > 0, on whom Gamma-Gamma was fitted (NULL: not fitted).';
COMMENT ON COLUMN rfm_clv_models.loglik_spend IS 'Total Gamma-Gamma log-likelihood of the n_repeat customers.';
COMMENT ON COLUMN rfm_clv_models.options IS 'The fit options: penalizer, max_iter.';
COMMENT ON COLUMN rfm_clv_models.active IS 'The version the rfm_clv_* predictions use (at most one per model).';
SELECT pg_catalog.pg_extension_config_dump('rfm_clv_models', '');
GRANT SELECT ON rfm_clv_models TO PUBLIC;

CREATE TYPE rfm_clv_model AS (
    model text, version int, unit text,
    r float8, alpha float8, a float8, b float8,
    p float8, q float8, v float8);
COMMENT ON TYPE rfm_clv_model IS
'A CLV model version as a value (rfm_clv_model_of(name)): name, version, unit and parameters. The predictions take it in place of a model name where the model tables cannot be read (Citus workers), or to read the model once per query.';

CREATE TYPE rfm_clv_train_result AS (
    model text, version int, n bigint, r float8, alpha float8, a float8, b float8, loglik float8,
    n_repeat bigint, p float8, q float8, v float8, loglik_spend float8,
    iterations int, elapsed_ms float8);
COMMENT ON TYPE rfm_clv_train_result IS 'The row rfm_clv_train returns.';

CREATE TYPE rfm_clv_fit_result AS (
    n bigint, skipped bigint, r float8, alpha float8, a float8, b float8, loglik float8,
    iterations int, gradient float8,
    n_repeat bigint, p float8, q float8, v float8, loglik_spend float8,
    iterations_spend int, gradient_spend float8);
COMMENT ON TYPE rfm_clv_fit_result IS 'The row rfm_clv_fit returns and rfm_clv_store stores.';

CREATE FUNCTION rfm_clv_fit(source regclass, frequency text, recency text, t text, monetary text,
                            penalizer float8, max_iter int) RETURNS rfm_clv_fit_result
    LANGUAGE c VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'rfm_clv_fit';
COMMENT ON FUNCTION rfm_clv_fit(regclass, text, text, text, text, float8, int) IS
'Fits BG/NBD (and Gamma-Gamma unless monetary is NULL) on the columns of source and returns the parameters without storing them; rfm_clv_train stores them as a model version.';

CREATE FUNCTION rfm_clv_store(model text, unit text, source text, columns jsonb, fit rfm_clv_fit_result,
                              options jsonb, elapsed_ms float8) RETURNS rfm_clv_train_result
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    next_version int;
    result rfm_clv_train_result;
BEGIN
    -- One writer of a model's versions at a time, so the version numbers stay dense.
    PERFORM pg_advisory_xact_lock(hashtext('pg_rfm.clv'), hashtext(rfm_clv_store.model));
    SELECT coalesce(max(m.version), 0) + 1 INTO next_version FROM rfm_clv_models m WHERE m.model = rfm_clv_store.model;
    UPDATE rfm_clv_models m SET active = false WHERE m.model = rfm_clv_store.model AND m.active;
    INSERT INTO rfm_clv_models (model, version, unit, source, columns, n, r, alpha, a, b, loglik, iterations, gradient,
                                n_repeat, p, q, v, loglik_spend, iterations_spend, gradient_spend, options, elapsed_ms, active)
    VALUES (rfm_clv_store.model, next_version, unit, source, columns,
            fit.n, fit.r, fit.alpha, fit.a, fit.b, fit.loglik, fit.iterations, fit.gradient,
            fit.n_repeat, fit.p, fit.q, fit.v, fit.loglik_spend, fit.iterations_spend, fit.gradient_spend,
            options, elapsed_ms, true);
    result := (rfm_clv_store.model, next_version, fit.n, fit.r, fit.alpha, fit.a, fit.b, fit.loglik,
               fit.n_repeat, fit.p, fit.q, fit.v, fit.loglik_spend,
               fit.iterations + coalesce(fit.iterations_spend, 0), elapsed_ms);
    RETURN result;
END
$fn$;
COMMENT ON FUNCTION rfm_clv_store(text, text, text, jsonb, rfm_clv_fit_result, jsonb, float8) IS
'Stores a fitted CLV model as the new active version of model (the next version number, under an advisory lock) and returns the row rfm_clv_train returns. rfm_clv_train and rfm_clv_model_import write versions through it.';

CREATE FUNCTION rfm_clv_train(model text, source regclass,
                              frequency text DEFAULT 'frequency', recency text DEFAULT 'recency',
                              t text DEFAULT 't', monetary text DEFAULT 'monetary',
                              unit text DEFAULT 'day', penalizer float8 DEFAULT 0,
                              max_iter int DEFAULT 1000)
    RETURNS rfm_clv_train_result
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    started timestamptz := clock_timestamp();
    fit rfm_clv_fit_result;
    result rfm_clv_train_result;
BEGIN
    IF model IS NULL OR source IS NULL OR frequency IS NULL OR recency IS NULL OR t IS NULL
       OR unit IS NULL OR penalizer IS NULL OR max_iter IS NULL THEN
        RAISE EXCEPTION 'rfm_clv_train: only monetary may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF unit NOT IN ('day', 'week') THEN
        RAISE EXCEPTION 'rfm_clv_train: unit must be ''day'' or ''week'', got ''%''', unit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_iter < 1 THEN
        RAISE EXCEPTION 'rfm_clv_train: max_iter must be at least 1, got %', max_iter
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Refused before any work when the caller could not store the result.
    IF NOT has_table_privilege('rfm_clv_models', 'INSERT, UPDATE') THEN
        RAISE EXCEPTION 'rfm_clv_train: permission denied to store models'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Storing a CLV model version needs INSERT and UPDATE on rfm_clv_models.',
                  HINT = 'Ask the owner of the extension for these privileges, or train as a role that has them.';
    END IF;
    -- One training of a model at a time; the version numbers stay dense.
    PERFORM pg_advisory_xact_lock(hashtext('pg_rfm.clv'), hashtext(rfm_clv_train.model));
    fit := rfm_clv_fit(source, frequency, recency, t, monetary, penalizer, max_iter);
    result := rfm_clv_store(rfm_clv_train.model, unit, source::text,
                            jsonb_build_object('frequency', frequency, 'recency', recency, 't', t, 'monetary', monetary),
                            fit, jsonb_build_object('penalizer', penalizer, 'max_iter', max_iter),
                            1000 * extract(epoch FROM clock_timestamp() - started));
    RAISE NOTICE 'rfm_clv_train: model "%" version %: % customers (% skipped), r = %, alpha = %, a = %, b = %, log-likelihood %',
        rfm_clv_train.model, result.version, fit.n, fit.skipped, round(fit.r::numeric, 4), round(fit.alpha::numeric, 4),
        round(fit.a::numeric, 4), round(fit.b::numeric, 4), round(fit.loglik::numeric, 2);
    RETURN result;
END
$fn$;
COMMENT ON FUNCTION rfm_clv_train(text, regclass, text, text, text, text, text, float8, int) IS
'Fits BG/NBD (r, alpha, a, b; Fader, Hardie and Lee 2005) by maximum likelihood on every customer of source (columns frequency, recency and t, as rfm_clv_summary returns them, in unit) and, unless monetary is NULL, Gamma-Gamma (p, q, v) on the customers with frequency > 0, as lifetimes'' BetaGeoFitter and GammaGammaFitter do (penalizer as theirs), and stores them as a new active version of model. Rows with a NULL input are skipped. ERROR 22023 for negative or non-whole inputs, recency > t, no repeat customer; 22003 for a fit that does not converge.';

CREATE FUNCTION rfm_clv_model_export(model text, version int) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT jsonb_build_object(
        'format', 'pg_rfm.clv_model', 'format_version', 1,
        'model', m.model, 'version', m.version, 'unit', m.unit, 'source', m.source, 'columns', m.columns,
        'bgnbd', jsonb_build_object('r', m.r, 'alpha', m.alpha, 'a', m.a, 'b', m.b, 'n', m.n, 'loglik', m.loglik,
                                    'iterations', m.iterations, 'gradient', m.gradient),
        'gamma_gamma', CASE WHEN m.p IS NOT NULL THEN
                           jsonb_build_object('p', m.p, 'q', m.q, 'v', m.v, 'n', m.n_repeat, 'loglik', m.loglik_spend,
                                              'iterations', m.iterations_spend, 'gradient', m.gradient_spend) END,
        'options', m.options, 'elapsed_ms', m.elapsed_ms, 'created_at', m.created_at, 'created_by', m.created_by)
    FROM rfm_clv_models m WHERE m.model = $1 AND m.version = $2
    $$;
COMMENT ON FUNCTION rfm_clv_model_export(text, int) IS
'Version version of CLV model (active or not) as one jsonb document; NULL when there is no such version.';
CREATE FUNCTION rfm_clv_model_export(model text) RETURNS jsonb
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    SELECT rfm_clv_model_export(m.model, m.version) FROM rfm_clv_models m WHERE m.model = $1 AND m.active
    $$;
COMMENT ON FUNCTION rfm_clv_model_export(text) IS
'The active version of CLV model as one jsonb document (format pg_rfm.clv_model: unit, parameters, log-likelihoods, counts, diagnostics, options), for rfm_clv_model_import in another database. NULL when the model does not exist.';

CREATE FUNCTION rfm_clv_model_import(doc jsonb, model text DEFAULT NULL) RETURNS rfm_clv_train_result
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $fn$
DECLARE
    name text := coalesce(rfm_clv_model_import.model, doc->>'model');
    bg jsonb := doc->'bgnbd';
    gg jsonb := doc->'gamma_gamma';
    key text;
BEGIN
    IF doc IS NULL OR jsonb_typeof(doc) <> 'object' OR doc->>'format' IS DISTINCT FROM 'pg_rfm.clv_model' THEN
        RAISE EXCEPTION 'rfm_clv_model_import: not a pg_rfm CLV model document (format must be "pg_rfm.clv_model")'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'rfm_clv_model_export writes such documents.';
    END IF;
    IF doc->'format_version' IS DISTINCT FROM '1'::jsonb THEN
        RAISE EXCEPTION 'rfm_clv_model_import: format_version % is not one this version of pg_rfm reads (1)', doc->'format_version'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'rfm_clv_model_import: the document names no model; pass model'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF doc->>'unit' IS NULL OR doc->>'unit' NOT IN ('day', 'week') THEN
        RAISE EXCEPTION 'rfm_clv_model_import: unit must be "day" or "week", got %', coalesce(doc->'unit', 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH key IN ARRAY ARRAY['r', 'alpha', 'a', 'b', 'n', 'loglik', 'iterations', 'gradient'] LOOP
        IF jsonb_typeof(bg->key) IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'rfm_clv_model_import: bgnbd.% must be a number, got %', key, coalesce(bg->key, 'null')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF gg IS NOT NULL AND jsonb_typeof(gg) <> 'null' THEN
        FOREACH key IN ARRAY ARRAY['p', 'q', 'v', 'n', 'loglik', 'iterations', 'gradient'] LOOP
            IF jsonb_typeof(gg->key) IS DISTINCT FROM 'number' THEN
                RAISE EXCEPTION 'rfm_clv_model_import: gamma_gamma.% must be a number, got %', key, coalesce(gg->key, 'null')
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
    ELSE
        gg := NULL;
    END IF;
    -- The parameters must make a usable model.
    FOREACH key IN ARRAY ARRAY['bgnbd.r', 'bgnbd.alpha', 'bgnbd.a', 'bgnbd.b', 'gamma_gamma.p', 'gamma_gamma.q', 'gamma_gamma.v'] LOOP
        CONTINUE WHEN key LIKE 'gamma_gamma.%' AND gg IS NULL;
        IF NOT ((doc #>> string_to_array(key, '.'))::float8 > (CASE WHEN key = 'gamma_gamma.q' THEN 1 ELSE 0 END)) THEN
            RAISE EXCEPTION 'rfm_clv_model_import: % must be greater than %, got %', key,
                (CASE WHEN key = 'gamma_gamma.q' THEN 1 ELSE 0 END), doc #> string_to_array(key, '.')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    RETURN rfm_clv_store(name, doc->>'unit', doc->>'source', coalesce(doc->'columns', '{}'),
                         ROW((bg->>'n')::bigint, NULL, (bg->>'r')::float8, (bg->>'alpha')::float8, (bg->>'a')::float8,
                             (bg->>'b')::float8, (bg->>'loglik')::float8, (bg->>'iterations')::int, (bg->>'gradient')::float8,
                             (gg->>'n')::bigint, (gg->>'p')::float8, (gg->>'q')::float8, (gg->>'v')::float8,
                             (gg->>'loglik')::float8, (gg->>'iterations')::int, (gg->>'gradient')::float8)::rfm_clv_fit_result,
                         coalesce(doc->'options', '{}'), (doc->>'elapsed_ms')::float8);
END
$fn$;
COMMENT ON FUNCTION rfm_clv_model_import(jsonb, text) IS
'Stores a CLV model exported by rfm_clv_model_export as a new active version (of the exported name, or of model when given). ERROR 22023 naming the key at fault when the document is not a pg_rfm CLV model document or its parameters are not a usable model.';

CREATE FUNCTION rfm_clv_activate(model text, version int) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
BEGIN
    PERFORM 1 FROM rfm_clv_models m
    WHERE m.model = rfm_clv_activate.model AND m.version = rfm_clv_activate.version
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rfm_clv_activate: CLV model "%" has no version %', rfm_clv_activate.model, rfm_clv_activate.version
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT version, active, created_at FROM rfm_clv_models WHERE model = ... lists the versions of a model.';
    END IF;
    UPDATE rfm_clv_models m SET active = false
    WHERE m.model = rfm_clv_activate.model AND m.active AND m.version <> rfm_clv_activate.version;
    UPDATE rfm_clv_models m SET active = true
    WHERE m.model = rfm_clv_activate.model AND m.version = rfm_clv_activate.version;
END
$$;
COMMENT ON FUNCTION rfm_clv_activate(text, int) IS
'Makes version the active version of CLV model (for rollback to an earlier version).';

CREATE FUNCTION rfm_clv_drop_model(model text) RETURNS int
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = @extschema@, pg_catalog
    AS $$
    WITH gone AS (DELETE FROM rfm_clv_models m WHERE m.model = $1 RETURNING 1)
    SELECT count(*)::int FROM gone
    $$;
COMMENT ON FUNCTION rfm_clv_drop_model(text) IS
'Deletes every version of CLV model; returns the number of versions deleted (0 when there was none).';

CREATE FUNCTION rfm_clv_model_of(model text) RETURNS rfm_clv_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_model_of';
CREATE FUNCTION rfm_clv_model(model text) RETURNS rfm_clv_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_model';
COMMENT ON FUNCTION rfm_clv_model_of(text) IS
'The active version of CLV model as an rfm_clv_model value, read once per statement at each call site: rfm_clv_value(rfm_clv_model_of(''clv''), frequency, recency, t, monetary). Where the model tables cannot be read (Citus workers): WITH m AS MATERIALIZED (SELECT rfm_clv_model_of(''name'') AS m) SELECT rfm_clv_p_alive(m.m, frequency, recency, t) FROM customers, m. Unknown model: ERROR 42704; on a Citus worker: ERROR 0A000.';
COMMENT ON FUNCTION rfm_clv_model(text) IS
'rfm_clv_model_of(model), under the type''s name (kept from 0.6.0; a C function with the same per-statement cache since 0.7.0).';

------------------------------------------------------------------------------
-- Predictions
------------------------------------------------------------------------------
CREATE FUNCTION rfm_clv_expected_purchases(model text, periods float8, frequency float8, recency float8, t float8) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_expected_purchases';
CREATE FUNCTION rfm_clv_expected_purchases(m rfm_clv_model, periods float8, frequency float8, recency float8, t float8) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_expected_purchases_value';
CREATE FUNCTION rfm_clv_p_alive(model text, frequency float8, recency float8, t float8) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_p_alive';
CREATE FUNCTION rfm_clv_p_alive(m rfm_clv_model, frequency float8, recency float8, t float8) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_p_alive_value';
CREATE FUNCTION rfm_clv_expected_spend(model text, frequency float8, monetary float8) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_expected_spend';
CREATE FUNCTION rfm_clv_expected_spend(m rfm_clv_model, frequency float8, monetary float8) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_expected_spend_value';
CREATE FUNCTION rfm_clv_value(model text, frequency float8, recency float8, t float8, monetary float8,
                              months int DEFAULT 12, monthly_discount float8 DEFAULT 0.01) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_value';
CREATE FUNCTION rfm_clv_value(m rfm_clv_model, frequency float8, recency float8, t float8, monetary float8,
                              months int DEFAULT 12, monthly_discount float8 DEFAULT 0.01) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_value_value';
COMMENT ON FUNCTION rfm_clv_expected_purchases(text, float8, float8, float8, float8) IS
'Expected repeat purchases in the next periods units (the model''s unit) of a customer with frequency, recency and t, by the active version of BG/NBD model (lifetimes'' conditional_expected_number_of_purchases_up_to_time). The model is read once per statement.';
COMMENT ON FUNCTION rfm_clv_expected_purchases(rfm_clv_model, float8, float8, float8, float8) IS
'rfm_clv_expected_purchases with the model given as a value (rfm_clv_model(name)).';
COMMENT ON FUNCTION rfm_clv_p_alive(text, float8, float8, float8) IS
'Probability that a customer with frequency, recency and t is still active, by the active version of BG/NBD model (lifetimes'' conditional_probability_alive; 1 without repeat purchases).';
COMMENT ON FUNCTION rfm_clv_p_alive(rfm_clv_model, float8, float8, float8) IS
'rfm_clv_p_alive with the model given as a value (rfm_clv_model(name)).';
COMMENT ON FUNCTION rfm_clv_expected_spend(text, float8, float8) IS
'Expected spend per purchase of a customer with frequency repeat purchases of mean monetary, by the Gamma-Gamma part of the active version of model (lifetimes'' conditional_expected_average_profit). ERROR 0A000 when the model was fitted without monetary.';
COMMENT ON FUNCTION rfm_clv_expected_spend(rfm_clv_model, float8, float8) IS
'rfm_clv_expected_spend with the model given as a value (rfm_clv_model(name)).';
COMMENT ON FUNCTION rfm_clv_value(text, float8, float8, float8, float8, int, float8) IS
'Customer lifetime value over months months: the sum, month by month, of expected purchases in the month times expected spend, discounted by (1 + monthly_discount)^month, as lifetimes'' customer_lifetime_value (a month is 30 days, or 4.345 weeks). Needs a model fitted with monetary.';
COMMENT ON FUNCTION rfm_clv_value(rfm_clv_model, float8, float8, float8, float8, int, float8) IS
'rfm_clv_value with the model given as a value (rfm_clv_model(name)).';
