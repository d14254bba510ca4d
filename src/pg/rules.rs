//! The segment rules: read from `rfm_segment_rules` (on this node), or passed as the value
//! `rfm_rules()` returns (on the coordinator) so that Citus workers score with them.

use pgrx::PgSqlErrorCode;

use super::call::Args;
use super::catalog::schema_prefix;
use super::error::{raise, PgError};
use super::spi::select_text;
use crate::core::score::{parse_rules, Rule};

/// All rules, in priority order, from the `rfm_segment_rules` view of the extension's schema.
pub fn load(args: Args<'_>) -> Vec<Rule> {
    let sql = format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.priority, r.segment), '[]')::text \
         FROM {}.rfm_segment_rules r",
        schema_prefix(args)
    );
    let json = select_text(&sql, &[]).unwrap_or_else(|| "[]".into());
    let value: serde_json::Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{}: rfm_segment_rules cannot be read: {e}", args.name)));
    parse_rules(&value)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{}: rfm_segment_rules cannot be read: {e}", args.name)))
}

/// Rules passed as a value (argument `i`, jsonb as `rfm_rules()` returns it).
pub fn from_arg(args: Args<'_>, i: usize) -> Vec<Rule> {
    let value = args.jsonb(i).unwrap_or_default();
    parse_rules(&value).unwrap_or_else(|e| {
        PgError::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{}: rules {e}", args.name))
            .hint("Pass the value rfm_rules() returns.")
            .raise()
    })
}
