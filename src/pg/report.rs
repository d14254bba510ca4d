//! rfm_report(model): the HTML report of the active version.

use super::call::text_datum;
use super::error::null_not_allowed;
use super::store;
use crate::core::report::{html, ReportInput};

pg_v1! {
    fn rfm_report(call: "rfm_report") -> Datum {
        let name = call.text(0).unwrap_or_else(|| null_not_allowed("rfm_report: model must not be NULL"));
        let stored = store::load(call.args(), &name, None);
        let model = stored.model();
        text_datum(&html(&ReportInput {
            name: &name,
            version: stored.version,
            model: &model,
            curve: &stored.doc.k_search,
            n_rows: stored.doc.n_rows,
            created_at: stored.doc.created_at.as_deref().unwrap_or(""),
        }))
    }
}
