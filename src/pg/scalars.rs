//! `rfm_score`, `iqr_clip` and `iqr_is_outlier` (declared in `sql/scalars.sql`).

use pgrx::pg_sys::{Datum, FunctionCallInfo, TupleDesc};

use super::error::{invalid, null_not_allowed, OrRaise};
use super::fmgr::*;
use super::rules;
use crate::core::error::show;
use crate::core::score::{self, Breaks, Rule};

/// What `rfm_score` keeps for the length of one query at one call site.
struct ScoreCache {
    td: TupleDesc,
    rules: Vec<Rule>,
    /// The last `breaks` argument seen, as raw bytes, and its parsed form.
    breaks_raw: Vec<u8>,
    breaks: Option<Breaks>,
}

fn parse_breaks(row: &Row) -> Breaks {
    let n = row
        .attr(1)
        .map(|d| d.value() as i32)
        .unwrap_or_else(|| null_not_allowed("rfm_score: breaks.n must not be NULL"));
    let cuts = |attno: i16, name: &str| {
        let d = row.attr(attno).unwrap_or_else(|| {
            null_not_allowed(format!(
                "rfm_score: breaks.{name} is NULL (rfm_breaks saw no non-NULL {name} values)"
            ))
        });
        f64_array(d, &format!("rfm_score: breaks.{name}"))
    };
    let b = Breaks { n, recency: cuts(2, "recency"), frequency: cuts(3, "frequency"), monetary: cuts(4, "monetary") };
    b.validate().or_raise();
    b
}

/// Bounds (lower, upper) of an `iqr_bounds` value, checked; `what` names the caller.
fn bounds(fcinfo: FunctionCallInfo, what: &str) -> (f64, f64) {
    let row = Row::arg(fcinfo, 1).unwrap_or_else(|| null_not_allowed(format!("{what}: b must not be NULL")));
    let (Some(lower), Some(upper)) = (row.f64_attr(5), row.f64_attr(6)) else {
        null_not_allowed(format!("{what}: b.lower and b.upper must not be NULL"));
    };
    if lower.is_nan() || upper.is_nan() || lower > upper {
        invalid(format!("{what}: need b.lower <= b.upper, got lower = {}, upper = {}", show(lower), show(upper)));
    }
    (lower, upper)
}

fn x_arg(fcinfo: FunctionCallInfo, what: &str) -> f64 {
    let x = f64_arg(fcinfo, 0).unwrap_or_else(|| null_not_allowed(format!("{what}: x must not be NULL")));
    if x.is_nan() {
        invalid(format!("{what}: x is NaN"));
    }
    x
}

pg_v1! {
    // rfm_score(recency, frequency, monetary, breaks rfm_breaks) -> rfm_score; STRICT
    fn rfm_score(fcinfo) -> Datum {
        let cache = fn_cache(fcinfo, || ScoreCache {
            td: result_tupdesc(fcinfo),
            rules: rules::load(fcinfo),
            breaks_raw: Vec::new(),
            breaks: None,
        });
        let row = Row::arg(fcinfo, 3).unwrap_or_else(|| null_not_allowed("rfm_score: breaks must not be NULL"));
        if cache.breaks.is_none() || cache.breaks_raw != row.bytes() {
            cache.breaks = Some(parse_breaks(&row));
            cache.breaks_raw.clear();
            cache.breaks_raw.extend_from_slice(row.bytes());
        }
        let Some(b) = cache.breaks.as_ref() else { return return_null(fcinfo) };
        let value = |i: usize| f64_arg(fcinfo, i).unwrap_or(f64::NAN);
        let (r, f, m) = score::score(b, value(0), value(1), value(2)).or_raise();
        let n = b.n;
        let rule = score::find_rule(&cache.rules, score::to_five(r, n), score::to_five(f, n), score::to_five(m, n));
        composite(cache.td, &[
            Some(Datum::from(r)),
            Some(Datum::from(f)),
            Some(Datum::from(m)),
            Some(text_datum(&score::code(r, f, m, n))),
            rule.map(|r| text_datum(&r.segment)),
            rule.map(|r| text_datum(&r.action)),
        ])
    }

    // iqr_clip(x, b iqr_bounds) -> float8; STRICT
    fn iqr_clip(fcinfo) -> Datum {
        let x = x_arg(fcinfo, "iqr_clip");
        let (lower, upper) = bounds(fcinfo, "iqr_clip");
        f64_datum(x.clamp(lower, upper))
    }

    // iqr_is_outlier(x, b iqr_bounds) -> bool; STRICT
    fn iqr_is_outlier(fcinfo) -> Datum {
        let x = x_arg(fcinfo, "iqr_is_outlier");
        let (lower, upper) = bounds(fcinfo, "iqr_is_outlier");
        Datum::from(x < lower || x > upper)
    }
}
