//! pg_rfm: customer segmentation inside PostgreSQL.
//! `core` holds the numeric work (no Postgres types); `pg` is the thin Postgres layer.

pub mod core;
pub mod pg;

::pgrx::pg_module_magic!();

#[allow(non_snake_case)]
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pg::gucs::init();
}

::pgrx::extension_sql_file!("../sql/types_and_rules.sql", name = "types_and_rules", bootstrap);
::pgrx::extension_sql_file!("../sql/functions.sql", name = "functions", requires = ["types_and_rules"]);
::pgrx::extension_sql_file!("../sql/models.sql", name = "models", requires = ["functions"]);
::pgrx::extension_sql_file!("../sql/clv.sql", name = "clv", requires = ["models"]);
::pgrx::extension_sql_file!("../sql/state.sql", name = "state", requires = ["clv"]);
::pgrx::extension_sql_file!("../sql/experiments.sql", name = "experiments", requires = ["state"]);
::pgrx::extension_sql_file!("../sql/basket.sql", name = "basket", requires = ["experiments"]);
::pgrx::extension_sql_file!("../sql/publish.sql", name = "publish", finalize);
