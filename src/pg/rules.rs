//! The editable segment rule table, read once per query by `rfm_score` and `rfm_train`.

use pgrx::PgSqlErrorCode;
use serde::Deserialize;

use super::call::Args;
use super::catalog::schema_prefix;
use super::error::raise;
use super::spi::select_text;
use crate::core::score::Rule;

#[derive(Deserialize)]
struct Row {
    segment: String,
    action: String,
    r_min: i32,
    r_max: i32,
    f_min: i32,
    f_max: i32,
    m_min: i32,
    m_max: i32,
}

/// All rules, in priority order, from the `rfm_segment_rules` table of the extension's schema.
pub fn load(args: Args<'_>) -> Vec<Rule> {
    let sql = format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.priority, r.segment), '[]')::text \
         FROM {}.rfm_segment_rules r",
        schema_prefix(args)
    );
    let json = select_text(&sql, &[]).unwrap_or_else(|| "[]".into());
    let rows: Vec<Row> = serde_json::from_str(&json)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{}: rfm_segment_rules cannot be read: {e}", args.name)));
    rows.into_iter()
        .map(|r| Rule { segment: r.segment, action: r.action, r: (r.r_min, r.r_max), f: (r.f_min, r.f_max), m: (r.m_min, r.m_max) })
        .collect()
}
