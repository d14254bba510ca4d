//! Citus: where a query runs matters. Model and rule tables live on the coordinator; on a
//! worker, functions that would read them refuse (instead of reading the worker's own,
//! empty or stale, copies) and say how to pass the model or the rules as values.

use pgrx::PgSqlErrorCode;

use super::error::PgError;
use super::spi::select_text;

/// True on a node of a Citus cluster that is not the coordinator.
pub fn on_worker() -> bool {
    let has_citus = select_text("SELECT pg_catalog.to_regprocedure('pg_catalog.citus_is_coordinator()') IS NOT NULL", &[]);
    has_citus.as_deref() == Some("t") && select_text("SELECT NOT pg_catalog.citus_is_coordinator()", &[]).as_deref() == Some("t")
}

/// The value form of model queries, for hints.
pub const MODEL_VALUE_FORM: &str = "Pass the model as a value read on the coordinator: WITH m AS MATERIALIZED (SELECT rfm_model_of('name') AS m) SELECT rfm_segment(m.m, recency, frequency, monetary) FROM customers, m.";

/// The same for CLV models.
pub const CLV_MODEL_VALUE_FORM: &str = "Pass the model as a value read on the coordinator: WITH m AS MATERIALIZED (SELECT rfm_clv_model_of('name') AS m) SELECT rfm_clv_p_alive(m.m, frequency, recency, t) FROM customers, m.";

/// The same for basket models.
pub const BASKET_MODEL_VALUE_FORM: &str = "Pass the model as a value read on the coordinator: WITH m AS MATERIALIZED (SELECT rfm_basket_model_of('name') AS m) SELECT customer_id, rfm_recommend(m.m, items, 3) FROM baskets, m.";

/// A name form of a model function called where the model tables are not (a Citus worker).
/// `kind` names the model in the message ("model", "CLV model"); `value_form` is the hint.
pub fn refuse_model_name(what: &str, kind: &str, name: &str, value_form: &str) -> ! {
    PgError::new(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, format!("{what}: {kind} \"{name}\" cannot be read on a Citus worker"))
        .detail(
            "Models are stored on the coordinator; this part of the query runs on a worker, whose model tables are not the coordinator's.",
        )
        .hint(value_form)
        .raise()
}

/// rfm_score without a rules value on a Citus worker.
pub fn refuse_rules(what: &str) -> ! {
    PgError::new(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, format!("{what}: the segment rules cannot be read on a Citus worker"))
        .detail("Segment rules are edited on the coordinator; this part of the query runs on a worker, whose rule tables are not the coordinator's.")
        .hint("Pass the coordinator's rules as a value: CROSS JOIN (SELECT rfm_breaks(recency, frequency, monetary) AS b, rfm_rules() AS rules FROM customers) k ... rfm_score(recency, frequency, monetary, k.b, k.rules).")
        .raise()
}
