//! Transition, combine, serial, deserial and final functions of the aggregates
//! `rfm`, `rfm_breaks` and `iqr_bounds` (declared in `sql/aggregates.sql`).

use pgrx::pg_sys::{Datum, FunctionCallInfo};

use pgrx::PgSqlErrorCode;

use super::error::{null_not_allowed, raise, OrRaise};
use super::fmgr::*;
use crate::core::quantile::{BreaksState, IqrState};
use crate::core::rfm::{RfmCore, RfmLines, RfmSummary};
use crate::core::Partial;

fn combine<T: Partial>(fcinfo: FunctionCallInfo, name: &str) -> Datum {
    match (state_arg::<T>(fcinfo, 0), state_arg::<T>(fcinfo, 1)) {
        (Some(a), Some(b)) => {
            a.merge(b).or_raise();
            state_datum(a)
        }
        (Some(a), None) => state_datum(a),
        (None, Some(b)) => {
            // `b` lives in a short-lived context: move its contents into the aggregate's.
            let a = unsafe { &mut *alloc_in(agg_context(fcinfo, name), T::empty()) };
            a.merge(b).or_raise();
            state_datum(a)
        }
        (None, None) => return_null(fcinfo),
    }
}

fn serial<T: Partial>(fcinfo: FunctionCallInfo) -> Datum {
    match state_arg::<T>(fcinfo, 0) {
        Some(s) => {
            // One buffer per call site, reused for every group.
            let buf: &mut Vec<u8> = fn_cache(fcinfo, Vec::new);
            buf.clear();
            s.serialize_into(buf);
            bytea_datum(buf)
        }
        None => return_null(fcinfo),
    }
}

/// Deserializes into a buffer kept in fn_extra and reused for every row: PostgreSQL hands
/// the value straight to the combine function, which moves its contents into the group's
/// own state, so no allocation per partial state is needed.
fn deserial<T: Partial + 'static>(fcinfo: FunctionCallInfo) -> Datum {
    let Some(b) = bytes_arg(fcinfo, 0) else { return return_null(fcinfo) };
    let slot: &mut Option<T> = fn_cache(fcinfo, || None);
    state_datum(slot.insert(T::deserialize(b).or_raise()))
}

fn rfm_final_with<T>(fcinfo: FunctionCallInfo, summary: impl Fn(&T) -> Option<RfmSummary>) -> Datum {
    let Some(summary) = state_arg::<T>(fcinfo, 0).and_then(|s| summary(s)) else {
        return return_null(fcinfo);
    };
    if !summary.monetary.is_finite() {
        raise(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "rfm: monetary is out of range for float8");
    }
    let td = *fn_cache(fcinfo, || result_tupdesc(fcinfo));
    composite(td, &[
        summary.recency.map(f64_datum),
        Some(Datum::from(summary.frequency)),
        Some(f64_datum(summary.monetary)),
        summary.first_purchase.map(Datum::from),
        summary.last_purchase.map(Datum::from),
        summary.tenure.map(f64_datum),
        summary.avg_order_value.map(f64_datum),
    ])
}

fn as_of_arg(fcinfo: FunctionCallInfo) -> i64 {
    i64_arg(fcinfo, nargs(fcinfo) - 1).unwrap_or_else(|| null_not_allowed("rfm: as_of must not be NULL"))
}

pg_v1! {
    // rfm(order_ts, amount, as_of): one order per row
    fn rfm_trans(fcinfo) -> Datum {
        let state = agg_state(fcinfo, 0, "rfm", RfmCore::default);
        let as_of = as_of_arg(fcinfo);
        if let (Some(ts), Some(amount)) = (i64_arg(fcinfo, 1), f64_arg(fcinfo, 2)) {
            state.update(ts, amount, as_of).or_raise();
        }
        state_datum(state)
    }

    fn rfm_combine(fcinfo) -> Datum { combine::<RfmCore>(fcinfo, "rfm") }
    fn rfm_serial(fcinfo) -> Datum { serial::<RfmCore>(fcinfo) }
    fn rfm_deserial(fcinfo) -> Datum { deserial::<RfmCore>(fcinfo) }
    fn rfm_final(fcinfo) -> Datum { rfm_final_with::<RfmCore>(fcinfo, RfmCore::finalize) }

    // rfm(order_ts, amount, order_id, as_of): rows are order lines
    fn rfm_lines_trans(fcinfo) -> Datum {
        let state = agg_state(fcinfo, 0, "rfm", RfmLines::new);
        let as_of = as_of_arg(fcinfo);
        if let (Some(ts), Some(amount), Some(id)) = (i64_arg(fcinfo, 1), f64_arg(fcinfo, 2), bytes_arg(fcinfo, 3)) {
            state.update(ts, amount, id, as_of).or_raise();
        }
        state_datum(state)
    }

    fn rfm_lines_combine(fcinfo) -> Datum { combine::<RfmLines>(fcinfo, "rfm") }
    fn rfm_lines_serial(fcinfo) -> Datum { serial::<RfmLines>(fcinfo) }
    fn rfm_lines_deserial(fcinfo) -> Datum { deserial::<RfmLines>(fcinfo) }
    fn rfm_lines_final(fcinfo) -> Datum { rfm_final_with::<RfmLines>(fcinfo, RfmLines::finalize) }

    // iqr_bounds(x) and iqr_bounds(x, k)
    fn iqr_trans(fcinfo) -> Datum {
        let k = if nargs(fcinfo) == 3 {
            f64_arg(fcinfo, 2).unwrap_or_else(|| null_not_allowed("iqr_bounds: k must not be NULL"))
        } else {
            1.5
        };
        match (state_arg::<IqrState>(fcinfo, 0), f64_arg(fcinfo, 1)) {
            (state, Some(x)) => {
                let state = match state {
                    Some(s) => s,
                    None => agg_state(fcinfo, 0, "iqr_bounds", IqrState::default),
                };
                state.update(x, k).or_raise();
                state_datum(state)
            }
            (Some(state), None) => state_datum(state),
            (None, None) => return_null(fcinfo),
        }
    }

    fn iqr_combine(fcinfo) -> Datum { combine::<IqrState>(fcinfo, "iqr_bounds") }
    fn iqr_serial(fcinfo) -> Datum { serial::<IqrState>(fcinfo) }
    fn iqr_deserial(fcinfo) -> Datum { deserial::<IqrState>(fcinfo) }

    fn iqr_final(fcinfo) -> Datum {
        let Some(b) = state_arg::<IqrState>(fcinfo, 0).and_then(|s| s.finalize().or_raise()) else {
            return return_null(fcinfo);
        };
        let td = *fn_cache(fcinfo, || result_tupdesc(fcinfo));
        composite(td, &[
            Some(f64_datum(b.q1)),
            Some(f64_datum(b.median)),
            Some(f64_datum(b.q3)),
            Some(f64_datum(b.iqr)),
            Some(f64_datum(b.lower)),
            Some(f64_datum(b.upper)),
            Some(Datum::from(b.n as i64)),
            Some(f64_datum(b.k)),
        ])
    }

    // rfm_breaks(recency, frequency, monetary) and rfm_breaks(recency, frequency, monetary, n)
    fn rfm_breaks_trans(fcinfo) -> Datum {
        let n = if nargs(fcinfo) == 5 {
            i32_arg(fcinfo, 4).unwrap_or_else(|| null_not_allowed("rfm_breaks: n must not be NULL"))
        } else {
            5
        };
        let (r, f, m) = (f64_arg(fcinfo, 1), f64_arg(fcinfo, 2), f64_arg(fcinfo, 3));
        let existing = state_arg::<BreaksState>(fcinfo, 0);
        if r.is_none() && f.is_none() && m.is_none() {
            return match existing {
                Some(s) => state_datum(s),
                None => return_null(fcinfo),
            };
        }
        let state = match existing {
            Some(s) => s,
            None => agg_state(fcinfo, 0, "rfm_breaks", BreaksState::default),
        };
        state.update(r, f, m, n).or_raise();
        state_datum(state)
    }

    fn rfm_breaks_combine(fcinfo) -> Datum { combine::<BreaksState>(fcinfo, "rfm_breaks") }
    fn rfm_breaks_serial(fcinfo) -> Datum { serial::<BreaksState>(fcinfo) }
    fn rfm_breaks_deserial(fcinfo) -> Datum { deserial::<BreaksState>(fcinfo) }

    fn rfm_breaks_final(fcinfo) -> Datum {
        let Some(state) = state_arg::<BreaksState>(fcinfo, 0) else {
            return return_null(fcinfo);
        };
        let (n, cuts) = state.finalize().or_raise();
        let td = *fn_cache(fcinfo, || result_tupdesc(fcinfo));
        let [r, f, m] = cuts.map(|c| c.map(|c| f64_array_datum(&c)));
        composite(td, &[Some(Datum::from(n)), r, f, m])
    }
}
