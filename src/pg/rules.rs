//! The editable segment rule table, read once per query by `rfm_score`.

use pgrx::pg_sys::FunctionCallInfo;
use pgrx::spi::{Spi, SpiResult};
use pgrx::PgSqlErrorCode;

use super::error::raise;
use super::fmgr::{own_schema, quote_ident};
use crate::core::score::Rule;

/// All rules, in priority order, from the `rfm_segment_rules` table of the extension's schema.
pub fn load(fcinfo: FunctionCallInfo) -> Vec<Rule> {
    let sql = format!(
        "SELECT segment, action, r_min, r_max, f_min, f_max, m_min, m_max \
         FROM {}.rfm_segment_rules ORDER BY priority, segment",
        quote_ident(&own_schema(fcinfo))
    );
    let rows: SpiResult<Vec<Rule>> = Spi::connect(|client| {
        let mut rules = Vec::new();
        for row in client.select(sql.as_str(), None, &[])? {
            let int = |i: usize| -> SpiResult<i32> { Ok(row.get::<i32>(i)?.unwrap_or(0)) };
            rules.push(Rule {
                segment: row.get::<String>(1)?.unwrap_or_default(),
                action: row.get::<String>(2)?.unwrap_or_default(),
                r: (int(3)?, int(4)?),
                f: (int(5)?, int(6)?),
                m: (int(7)?, int(8)?),
            });
        }
        Ok(rules)
    });
    rows.unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("pg_rfm: reading rfm_segment_rules failed: {e}")))
}
