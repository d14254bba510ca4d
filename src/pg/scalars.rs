//! `rfm_score`, `iqr_clip` and `iqr_is_outlier` (declared in `sql/functions.sql`).

use pgrx::pg_sys::{self, Datum, Oid};

use super::aggregates::{IQR_BOUNDS, RFM_BREAKS};
use super::call::*;
use super::error::{invalid, null_not_allowed, OrRaise};
use super::rules;
use super::spi::Statement;
use crate::core::error::show;
use crate::core::score::{self, Breaks, Rule};

/// Attribute types of `rfm_score`.
const RFM_SCORE: [Oid; 6] = [pg_sys::INT4OID, pg_sys::INT4OID, pg_sys::INT4OID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID];

/// What `rfm_score` keeps for the length of one statement at one call site.
struct ScoreCache {
    result: Composite,
    breaks_type: RowType,
    statement: Statement,
    rules: Vec<Rule>,
    /// With a rules argument: the last one seen, as raw jsonb bytes.
    rules_raw: Vec<u8>,
    /// The last `breaks` argument seen, as raw bytes, and its parsed form.
    breaks_raw: Vec<u8>,
    breaks: Option<Breaks>,
}

fn parse_breaks(row: &Row<'_>) -> Breaks {
    let n = row.i32_attr(1).unwrap_or_else(|| null_not_allowed("rfm_score: breaks.n must not be NULL"));
    let cuts = |attno: i16, name: &str| {
        row.f64_array_attr(attno, &format!("rfm_score: breaks.{name}"))
            .unwrap_or_else(|| null_not_allowed(format!("rfm_score: breaks.{name} is NULL (rfm_breaks saw no non-NULL {name} values)")))
    };
    let b = Breaks { n, recency: cuts(2, "recency"), frequency: cuts(3, "frequency"), monetary: cuts(4, "monetary") };
    b.validate().or_raise("rfm_score");
    b
}

/// Bounds (lower, upper) of the `iqr_bounds` argument, checked.
fn bounds(call: &mut Call<'_>) -> (f64, f64) {
    let args = call.args();
    let what = args.name;
    let ty = call.cache(|_| RowType::new("iqr_bounds", &IQR_BOUNDS));
    let row = args.row(1, ty).unwrap_or_else(|| null_not_allowed(format!("{what}: b must not be NULL")));
    let (Some(lower), Some(upper)) = (row.f64_attr(5), row.f64_attr(6)) else {
        null_not_allowed(format!("{what}: b.lower and b.upper must not be NULL"));
    };
    if lower.is_nan() || upper.is_nan() || lower > upper {
        invalid(format!("{what}: need b.lower <= b.upper, got lower = {}, upper = {}", show(lower), show(upper)));
    }
    (lower, upper)
}

fn x_arg(call: &Call<'_>) -> f64 {
    let x = call.f64(0).unwrap_or_else(|| null_not_allowed(format!("{}: x must not be NULL", call.name)));
    if x.is_nan() {
        invalid(format!("{}: x is NaN", call.name));
    }
    x
}

/// The rules of this node's `rfm_segment_rules`; refused on a Citus worker, whose rule
/// tables are not the coordinator's.
fn local_rules(args: Args<'_>) -> Vec<Rule> {
    if super::citus::on_worker() {
        super::citus::refuse_rules(args.name);
    }
    rules::load(args)
}

pg_v1! {
    // rfm_score(recency, frequency, monetary, breaks rfm_breaks [, rules jsonb]) -> rfm_score; STRICT
    fn rfm_score(call: "rfm_score") -> Datum {
        let args = call.args();
        let with_rules = args.nargs() == 5;
        let cache = call.cache(|a| ScoreCache {
            result: Composite::for_result(a, &RFM_SCORE),
            breaks_type: RowType::new("rfm_breaks", &RFM_BREAKS),
            statement: Statement::now(),
            rules: if with_rules { Vec::new() } else { local_rules(a) },
            rules_raw: Vec::new(),
            breaks_raw: Vec::new(),
            breaks: None,
        });
        if with_rules {
            let raw = args.bytes(4).unwrap_or_else(|| null_not_allowed("rfm_score: rules must not be NULL"));
            if cache.rules_raw.as_slice() != raw || cache.rules_raw.is_empty() {
                cache.rules = rules::from_arg(args, 4);
                cache.rules_raw.clear();
                cache.rules_raw.extend_from_slice(raw);
            }
        } else {
            // Reread the rules when a new statement (which may follow a rule edit) runs.
            if cache.statement.renewed() {
                cache.rules = local_rules(args);
            }
        }
        let row = args.row(3, &mut cache.breaks_type).unwrap_or_else(|| null_not_allowed("rfm_score: breaks must not be NULL"));
        if cache.breaks.is_none() || cache.breaks_raw != row.bytes() {
            cache.breaks = Some(parse_breaks(&row));
            cache.breaks_raw.clear();
            cache.breaks_raw.extend_from_slice(row.bytes());
        }
        let Some(b) = cache.breaks.as_ref() else { return args.return_null() };
        let value = |i: usize| args.f64(i).unwrap_or(f64::NAN);
        let (r, f, m) = score::score(b, value(0), value(1), value(2)).or_raise(args.name);
        let n = b.n;
        let rule = score::find_rule(&cache.rules, score::to_five(r, n), score::to_five(f, n), score::to_five(m, n));
        cache.result.form(args.name, &[
            Some(Datum::from(r)),
            Some(Datum::from(f)),
            Some(Datum::from(m)),
            Some(text_datum(&score::code(r, f, m, n))),
            rule.map(|r| text_datum(&r.segment)),
            rule.map(|r| text_datum(&r.action)),
        ])
    }

    // iqr_clip(x, b iqr_bounds) -> float8; STRICT
    fn iqr_clip(call: "iqr_clip") -> Datum {
        let x = x_arg(&call);
        let (lower, upper) = bounds(&mut call);
        f64_datum(x.clamp(lower, upper))
    }

    // iqr_is_outlier(x, b iqr_bounds) -> bool; STRICT
    fn iqr_is_outlier(call: "iqr_is_outlier") -> Datum {
        let x = x_arg(&call);
        let (lower, upper) = bounds(&mut call);
        Datum::from(x < lower || x > upper)
    }
}
