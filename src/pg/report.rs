//! rfm_report(model): the HTML report of the active version.

use serde::Deserialize;

use super::error::null_not_allowed;
use super::fmgr::*;
use super::train::load_doc;
use crate::core::model::{KPoint, Model};
use crate::core::report::{html, ReportInput};

#[derive(Deserialize)]
struct Doc {
    version: i32,
    #[serde(flatten)]
    model: Model,
    #[serde(default)]
    k_search: Vec<KPoint>,
    #[serde(default)]
    n_rows: i64,
    #[serde(default)]
    created_at: String,
}

pg_v1! {
    fn rfm_report(fcinfo) -> Datum {
        let name = text_arg(fcinfo, 0).unwrap_or_else(|| null_not_allowed("model must not be NULL"));
        let doc: Doc = load_doc(fcinfo, &name);
        text_datum(&html(&ReportInput {
            name: &name,
            version: doc.version,
            model: &doc.model,
            curve: &doc.k_search,
            n_rows: doc.n_rows,
            created_at: &doc.created_at,
        }))
    }
}
