-- pg_rfm 0.6.0 -> 0.7.0
-- Incremental RFM: the type rfm_state, the aggregates rfm_state(order_ts, amount
-- [, order_id [, line]]) and rfm_merge(rfm_state), rfm_merge(a, b) and rfm_summary(state,
-- as_of); rfm(order_ts, amount, order_id, line, as_of) over distinct order lines;
-- rfm_model_of(name [, version]) and rfm_clv_model_of(name), which take a bare literal;
-- rfm_clv_model(name) becomes a C function read once per statement.


CREATE TYPE rfm_state;
CREATE FUNCTION rfm_state_in(cstring) RETURNS rfm_state
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_in';
CREATE FUNCTION rfm_state_out(rfm_state) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_out';
CREATE FUNCTION rfm_state_recv(internal) RETURNS rfm_state
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_recv';
CREATE FUNCTION rfm_state_send(rfm_state) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_send';
CREATE TYPE rfm_state (
    INPUT = rfm_state_in, OUTPUT = rfm_state_out, RECEIVE = rfm_state_recv, SEND = rfm_state_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE rfm_state IS 'One customer''s rows folded for RFM without an as_of: counts, the compensated sum of the amounts, first and last purchase, latest row, (order_id form) the distinct order ids and (line form) a key of each distinct line. Made by the aggregate rfm_state, folded by rfm_merge, read by rfm_summary(state, as_of). Stored compactly and machine-independently; the text form is its bytes in hexadecimal.';
COMMENT ON FUNCTION rfm_state_in(cstring) IS 'Input function of rfm_state: hexadecimal bytes (ERROR 22P02 when not hexadecimal, XX001 when the bytes are not a consistent state).';
COMMENT ON FUNCTION rfm_state_out(rfm_state) IS 'Output function of rfm_state: the stored bytes in hexadecimal.';
COMMENT ON FUNCTION rfm_state_recv(internal) IS 'Binary input function of rfm_state: the stored bytes, checked (XX001 when inconsistent).';
COMMENT ON FUNCTION rfm_state_send(rfm_state) IS 'Binary output function of rfm_state: the stored bytes.';

CREATE FUNCTION rfm_state_trans(internal, timestamptz, float8) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_trans';
CREATE FUNCTION rfm_state_lines_trans(internal, timestamptz, float8, text) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_lines_trans';
CREATE FUNCTION rfm_state_unique_lines_trans(internal, timestamptz, float8, text, text) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_unique_lines_trans';
CREATE FUNCTION rfm_merge_trans(internal, rfm_state) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_merge_trans';
CREATE FUNCTION rfm_state_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_combine';
CREATE FUNCTION rfm_state_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_serial';
CREATE FUNCTION rfm_state_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_deserial';
CREATE FUNCTION rfm_state_final(internal) RETURNS rfm_state
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_state_final';

CREATE AGGREGATE rfm_state(order_ts timestamptz, amount float8) (
    SFUNC = rfm_state_trans, STYPE = internal, SSPACE = 80,
    FINALFUNC = rfm_state_final,
    COMBINEFUNC = rfm_state_combine, SERIALFUNC = rfm_state_serial, DESERIALFUNC = rfm_state_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE rfm_state(order_ts timestamptz, amount float8, order_id text) (
    SFUNC = rfm_state_lines_trans, STYPE = internal, SSPACE = 512,
    FINALFUNC = rfm_state_final,
    COMBINEFUNC = rfm_state_combine, SERIALFUNC = rfm_state_serial, DESERIALFUNC = rfm_state_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE rfm_state(order_ts timestamptz, amount float8, order_id text, line text) (
    SFUNC = rfm_state_unique_lines_trans, STYPE = internal, SSPACE = 2048,
    FINALFUNC = rfm_state_final,
    COMBINEFUNC = rfm_state_combine, SERIALFUNC = rfm_state_serial, DESERIALFUNC = rfm_state_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE rfm_merge(rfm_state) (
    SFUNC = rfm_merge_trans, STYPE = internal, SSPACE = 512,
    FINALFUNC = rfm_state_final,
    COMBINEFUNC = rfm_state_combine, SERIALFUNC = rfm_state_serial, DESERIALFUNC = rfm_state_deserial,
    PARALLEL = SAFE
);
CREATE FUNCTION rfm_merge(a rfm_state, b rfm_state) RETURNS rfm_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_merge_states';
CREATE FUNCTION rfm_summary(s rfm_state, as_of timestamptz) RETURNS rfm_summary
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_summary_of_state';

COMMENT ON AGGREGATE rfm_state(timestamptz, float8) IS 'The storable RFM state of a group''s rows, one order per row (as rfm(order_ts, amount, as_of)); no as_of: give it to rfm_summary. Returns are negative amounts. NULL for a group without rows.';
COMMENT ON AGGREGATE rfm_state(timestamptz, float8, text) IS 'The storable RFM state of a group''s order lines, keeping the distinct order ids of purchase lines (as rfm(order_ts, amount, order_id, as_of)), so that an order split across days or batches counts once when states are folded.';
COMMENT ON AGGREGATE rfm_state(timestamptz, float8, text, text) IS 'The storable RFM state of a group''s raw order lines counting each distinct line once (as rfm(order_ts, amount, order_id, line, as_of)): it keeps the distinct order ids and a 24-byte key of every distinct line (order_id, order_ts, amount, line), so that a line that arrives twice, in one batch or in two, or a batch folded twice, counts once when states are folded. The state grows with the customer''s distinct lines.';
COMMENT ON AGGREGATE rfm_merge(rfm_state) IS 'Folds the rfm_state values of a group into one: the same state as one rfm_state over all their rows, in any grouping and order. All must be of one form (ERROR 22023 otherwise).';
COMMENT ON FUNCTION rfm_merge(rfm_state, rfm_state) IS 'Folds two rfm_state values into one (a NULL side gives the other), for INSERT ... ON CONFLICT DO UPDATE SET s = rfm_merge(states.s, excluded.s).';
COMMENT ON FUNCTION rfm_summary(rfm_state, timestamptz) IS 'The rfm_summary of a state at as_of: exactly what rfm over the folded rows returns with that as_of. ERROR 22023 when the state holds a row later than as_of, XX001 for a damaged state.';
COMMENT ON FUNCTION rfm_state_trans(internal, timestamptz, float8) IS 'Transition function of rfm_state(order_ts, amount).';
COMMENT ON FUNCTION rfm_state_lines_trans(internal, timestamptz, float8, text) IS 'Transition function of rfm_state(order_ts, amount, order_id).';
COMMENT ON FUNCTION rfm_state_unique_lines_trans(internal, timestamptz, float8, text, text) IS 'Transition function of rfm_state(order_ts, amount, order_id, line).';
COMMENT ON FUNCTION rfm_merge_trans(internal, rfm_state) IS 'Transition function of the rfm_merge aggregate.';
COMMENT ON FUNCTION rfm_state_combine(internal, internal) IS 'Combine function of rfm_state and rfm_merge (parallel aggregation).';
COMMENT ON FUNCTION rfm_state_serial(internal) IS 'Serial function of rfm_state and rfm_merge (parallel aggregation).';
COMMENT ON FUNCTION rfm_state_deserial(bytea, internal) IS 'Deserial function of rfm_state and rfm_merge (parallel aggregation).';
COMMENT ON FUNCTION rfm_state_final(internal) IS 'Final function of rfm_state and rfm_merge: the stored state.';

-- ---------------------------------------------------------------------------- rfm over distinct lines
-- rfm(order_ts, amount, order_id, line, as_of) (0.7.0): raw order lines with exact duplicates,
-- without a SELECT DISTINCT over every line first.
CREATE FUNCTION rfm_unique_lines_trans(internal, timestamptz, float8, text, text, timestamptz) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_unique_lines_trans';
CREATE FUNCTION rfm_unique_lines_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_unique_lines_combine';
CREATE FUNCTION rfm_unique_lines_serial(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_unique_lines_serial';
CREATE FUNCTION rfm_unique_lines_deserial(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_unique_lines_deserial';
CREATE FUNCTION rfm_unique_lines_final(internal) RETURNS rfm_summary
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_unique_lines_final';
CREATE AGGREGATE rfm(order_ts timestamptz, amount float8, order_id text, line text, as_of timestamptz) (
    SFUNC = rfm_unique_lines_trans, STYPE = internal, SSPACE = 2048,
    FINALFUNC = rfm_unique_lines_final,
    COMBINEFUNC = rfm_unique_lines_combine, SERIALFUNC = rfm_unique_lines_serial,
    DESERIALFUNC = rfm_unique_lines_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE rfm(timestamptz, float8, text, text, timestamptz) IS
'RFM of a group (customer) over its distinct order lines: like rfm(order_ts, amount, order_id, as_of), but rows with the same order_id, order_ts, amount and line (the line''s identity within its order, for example its product code; NULL is a value of its own) count once, as after SELECT DISTINCT. Needs memory for every distinct line of the groups in flight (about 40 bytes a line).';
COMMENT ON FUNCTION rfm_unique_lines_trans(internal, timestamptz, float8, text, text, timestamptz) IS 'Transition function of rfm(order_ts, amount, order_id, line, as_of).';
COMMENT ON FUNCTION rfm_unique_lines_combine(internal, internal) IS 'Combine function of rfm(order_ts, amount, order_id, line, as_of): merges partial states, counting a line both saw once.';
COMMENT ON FUNCTION rfm_unique_lines_serial(internal) IS 'Serial function of rfm(order_ts, amount, order_id, line, as_of).';
COMMENT ON FUNCTION rfm_unique_lines_deserial(bytea, internal) IS 'Deserial function of rfm(order_ts, amount, order_id, line, as_of).';
COMMENT ON FUNCTION rfm_unique_lines_final(internal) IS 'Final function of rfm(order_ts, amount, order_id, line, as_of).';

-- ---------------------------------------------------------------------------- models as values
CREATE FUNCTION rfm_model_of(model text) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_of';
CREATE FUNCTION rfm_model_of(model text, version int) RETURNS rfm_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_model_of';
COMMENT ON FUNCTION rfm_model_of(text) IS
'The active version of model as an rfm_model value, read once per statement at each call site: rfm_segment(rfm_model_of(''shop''), recency, frequency, monetary). Use it where the model tables cannot be read, for example with Citus: WITH m AS MATERIALIZED (SELECT rfm_model_of(''name'') AS m) SELECT rfm_segment(m.m, recency, frequency, monetary) FROM customers, m. Unknown model: ERROR 42704; on a Citus worker: ERROR 0A000.';
COMMENT ON FUNCTION rfm_model_of(text, int) IS
'Version version of model (active or not) as an rfm_model value. Unknown version: ERROR 42704.';
COMMENT ON FUNCTION rfm_model(text) IS
'rfm_model_of(model), under the type''s name (kept from 0.4.0). A bare literal rfm_model(''name'') is read by PostgreSQL as a cast to the type rfm_model, so this form needs a typed name (''name''::text); write rfm_model_of(''name'').';
COMMENT ON FUNCTION rfm_model(text, int) IS
'rfm_model_of(model, version), under the type''s name (kept from 0.4.0).';

-- ---------------------------------------------------------------------------- CLV models as values
CREATE FUNCTION rfm_clv_model_of(model text) RETURNS rfm_clv_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_model_of';
CREATE OR REPLACE FUNCTION rfm_clv_model(model text) RETURNS rfm_clv_model
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'rfm_clv_model';
COMMENT ON FUNCTION rfm_clv_model_of(text) IS
'The active version of CLV model as an rfm_clv_model value, read once per statement at each call site: rfm_clv_value(rfm_clv_model_of(''clv''), frequency, recency, t, monetary). Where the model tables cannot be read (Citus workers): WITH m AS MATERIALIZED (SELECT rfm_clv_model_of(''name'') AS m) SELECT rfm_clv_p_alive(m.m, frequency, recency, t) FROM customers, m. Unknown model: ERROR 42704; on a Citus worker: ERROR 0A000.';
COMMENT ON FUNCTION rfm_clv_model(text) IS
'rfm_clv_model_of(model), under the type''s name (kept from 0.6.0; a C function with the same per-statement cache since 0.7.0).';
COMMENT ON TYPE rfm_clv_model IS
'A CLV model version as a value (rfm_clv_model_of(name)): name, version, unit and parameters. The predictions take it in place of a model name where the model tables cannot be read (Citus workers), or to read the model once per query.';
