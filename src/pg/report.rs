//! rfm_report(model [, source, columns]): the HTML report of the active version, with the
//! clusters described by columns of a source when they are given.

use serde_json::Value;

use super::call::text_datum;
use super::catalog::schema_prefix;
use super::error::null_not_allowed;
use super::spi::select_text;
use super::store;
use crate::core::report::{html, ProfileRow, ReportInput};

/// rfm_profile(model, source, columns) as rows, through SQL (the same numbers the function shows).
fn profile_rows(args: super::call::Args<'_>, name: &str) -> Vec<ProfileRow> {
    let what = args.name;
    let source = args.oid(1).unwrap_or_else(|| null_not_allowed(format!("{what}: source must not be NULL")));
    let columns = args.text_array(2, "columns").unwrap_or_else(|| null_not_allowed(format!("{what}: columns must not be NULL")));
    let schema = schema_prefix(args);
    let text = select_text(
        &format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(p)), '[]')::text
             FROM {schema}.rfm_profile($1, $2::oid::regclass, ARRAY(SELECT jsonb_array_elements_text($3::jsonb))) p
             WHERE p.column_name IS NOT NULL"
        ),
        &[name, &source.to_u32().to_string(), &Value::from(columns).to_string()],
    )
    .unwrap_or_default();
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
    rows.iter()
        .map(|r| ProfileRow {
            cluster: r["cluster"].as_i64().unwrap_or(0) as i32,
            label: r["label"].as_str().unwrap_or_default().to_string(),
            column: r["column_name"].as_str().unwrap_or_default().to_string(),
            mean: r["mean"].as_f64(),
            median: r["median"].as_f64(),
            levels: r["top_levels"].as_array().map_or(vec![], |a| a.iter().map(|v| v.as_str().map(str::to_string)).collect()),
            shares: r["top_shares"].as_array().map_or(vec![], |a| a.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()),
        })
        .collect()
}

pg_v1! {
    // rfm_report(model) and rfm_report(model, source, columns)
    fn rfm_report(call: "rfm_report") -> Datum {
        let args = call.args();
        let name = call.text(0).unwrap_or_else(|| null_not_allowed("rfm_report: model must not be NULL"));
        let stored = store::load(args, &name, None);
        let model = stored.model();
        let columns = if args.nargs() == 3 { profile_rows(args, &name) } else { Vec::new() };
        text_datum(&html(&ReportInput {
            name: &name,
            version: stored.version,
            model: &model,
            curve: &stored.doc.k_search,
            n_rows: stored.doc.n_rows,
            created_at: stored.doc.created_at.as_deref().unwrap_or(""),
            columns: &columns,
        }))
    }
}
