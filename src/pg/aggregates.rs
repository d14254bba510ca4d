//! Transition, combine, serial, deserial and final functions of the aggregates `rfm`,
//! `rfm_breaks` and `iqr_bounds` (declared in `sql/functions.sql`; the distinct-lines form
//! of `rfm` in `sql/state.sql`).

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;

use super::call::*;
use super::error::{null_not_allowed, raise, OrRaise};
use crate::core::quantile::{BreaksState, IqrState};
use crate::core::rfm::{RfmCore, RfmLines, RfmSummary, RfmUniqueLines};
use crate::core::Partial;

/// Attribute types of `rfm_summary`, `iqr_bounds` and `rfm_breaks`, as the library forms them.
pub const RFM_SUMMARY: [Oid; 7] = [
    pg_sys::FLOAT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::TIMESTAMPTZOID,
    pg_sys::TIMESTAMPTZOID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
];
pub const IQR_BOUNDS: [Oid; 8] = [
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
];
pub const RFM_BREAKS: [Oid; 4] = [pg_sys::INT4OID, pg_sys::FLOAT8ARRAYOID, pg_sys::FLOAT8ARRAYOID, pg_sys::FLOAT8ARRAYOID];

// SAFETY (for every `state` / `state_or_new` below): the SQL declarations in
// sql/functions.sql give each support function's `internal` arguments the state type of
// its own aggregate, made by these functions in the aggregate's context, and PostgreSQL
// passes a state to one support call at a time (a combine call gets two different ones).

pub(super) fn combine<T: Partial>(call: &Call<'_>) -> Datum {
    // SAFETY: see above.
    let (a, b) = unsafe { (call.state::<T>(0), call.state::<T>(1)) };
    match (a, b) {
        (Some(a), Some(b)) => {
            a.merge(b).or_raise(call.name);
            super::heap::check(call.name);
            state_datum(a)
        }
        (Some(a), None) => state_datum(a),
        (None, Some(b)) => {
            // `b` lives in a short-lived context: move its contents into the aggregate's.
            let a = call.new_state(T::empty());
            a.merge(b).or_raise(call.name);
            state_datum(a)
        }
        (None, None) => call.return_null(),
    }
}

pub(super) fn serial<T: Partial>(call: &mut Call<'_>) -> Datum {
    let args = call.args();
    // SAFETY: see above.
    let Some(s) = (unsafe { args.state::<T>(0) }) else { return args.return_null() };
    // One buffer per call site, reused for every group.
    let buf: &mut Vec<u8> = call.cache(|_| Vec::new());
    buf.clear();
    s.compact();
    s.serialize_into(buf);
    bytea_datum(buf)
}

/// Deserializes into a buffer kept in fn_extra and reused for every row: PostgreSQL hands
/// the value straight to the combine function, which moves its contents into the group's
/// own state, so no allocation per partial state is needed.
pub(super) fn deserial<T: Partial + 'static>(call: &mut Call<'_>) -> Datum {
    let args = call.args();
    let Some(b) = args.bytes(0) else { return args.return_null() };
    let slot: &mut Option<T> = call.cache(|_| None);
    state_datum(slot.insert(T::deserialize(b).or_raise(args.name)))
}

fn rfm_final_with<T: 'static>(call: &mut Call<'_>, summary: impl Fn(&mut T) -> Option<RfmSummary>) -> Datum {
    let args = call.args();
    // SAFETY: see above.
    let summary = (unsafe { args.state::<T>(0) }).and_then(summary);
    summary_datum(call, summary)
}

/// An `rfm_summary` row (NULL for None), as `rfm` and `rfm_summary(state, as_of)` return it.
pub(super) fn summary_datum(call: &mut Call<'_>, summary: Option<RfmSummary>) -> Datum {
    let args = call.args();
    let Some(summary) = summary else {
        return args.return_null();
    };
    if !summary.monetary.is_finite() {
        raise(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, format!("{}: monetary is out of range for float8", args.name));
    }
    let result = call.cache(|a| Composite::for_result(a, &RFM_SUMMARY));
    result.form(
        args.name,
        &[
            summary.recency.map(f64_datum),
            Some(Datum::from(summary.frequency)),
            Some(f64_datum(summary.monetary)),
            summary.first_purchase.map(Datum::from),
            summary.last_purchase.map(Datum::from),
            summary.tenure.map(f64_datum),
            summary.avg_order_value.map(f64_datum),
        ],
    )
}

fn as_of_arg(call: &Call<'_>) -> i64 {
    call.i64(call.nargs() - 1).unwrap_or_else(|| null_not_allowed(format!("{}: as_of must not be NULL", call.name)))
}

pg_v1! {
    // rfm(order_ts, amount, as_of): one order per row
    fn rfm_trans(call: "rfm") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, RfmCore::default) };
        let as_of = as_of_arg(&call);
        if let (Some(ts), Some(amount)) = (call.i64(1), call.f64(2)) {
            state.update(ts, amount, as_of).or_raise(call.name);
        }
        state_datum(state)
    }

    fn rfm_combine(call: "rfm") -> Datum { combine::<RfmCore>(&call) }
    fn rfm_serial(call: "rfm") -> Datum { serial::<RfmCore>(&mut call) }
    fn rfm_deserial(call: "rfm") -> Datum { deserial::<RfmCore>(&mut call) }
    fn rfm_final(call: "rfm") -> Datum { rfm_final_with::<RfmCore>(&mut call, |s| s.finalize()) }

    // rfm(order_ts, amount, order_id, as_of): rows are order lines
    fn rfm_lines_trans(call: "rfm") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, RfmLines::new) };
        let as_of = as_of_arg(&call);
        if let (Some(ts), Some(amount), Some(id)) = (call.i64(1), call.f64(2), call.bytes(3)) {
            state.update(ts, amount, id, as_of).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }

    fn rfm_lines_combine(call: "rfm") -> Datum { combine::<RfmLines>(&call) }
    fn rfm_lines_serial(call: "rfm") -> Datum { serial::<RfmLines>(&mut call) }
    fn rfm_lines_deserial(call: "rfm") -> Datum { deserial::<RfmLines>(&mut call) }
    fn rfm_lines_final(call: "rfm") -> Datum { rfm_final_with::<RfmLines>(&mut call, |s| s.finalize()) }

    // rfm(order_ts, amount, order_id, line, as_of): order lines, each distinct line once
    fn rfm_unique_lines_trans(call: "rfm") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, RfmUniqueLines::new) };
        let as_of = as_of_arg(&call);
        if let (Some(ts), Some(amount), Some(id)) = (call.i64(1), call.f64(2), call.bytes(3)) {
            state.update(ts, amount, id, call.bytes(4), as_of).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }

    fn rfm_unique_lines_combine(call: "rfm") -> Datum { combine::<RfmUniqueLines>(&call) }
    fn rfm_unique_lines_serial(call: "rfm") -> Datum { serial::<RfmUniqueLines>(&mut call) }
    fn rfm_unique_lines_deserial(call: "rfm") -> Datum { deserial::<RfmUniqueLines>(&mut call) }
    fn rfm_unique_lines_final(call: "rfm") -> Datum {
        // `finalize` compacts the state, which keeps its meaning: the aggregate stays READ_ONLY
        // for PostgreSQL (a later transition or final call sees an equivalent state).
        rfm_final_with::<RfmUniqueLines>(&mut call, RfmUniqueLines::finalize)
    }

    // iqr_bounds(x) and iqr_bounds(x, k)
    fn iqr_trans(call: "iqr_bounds") -> Datum {
        let k = if call.nargs() == 3 {
            call.f64(2).unwrap_or_else(|| null_not_allowed("iqr_bounds: k must not be NULL"))
        } else {
            1.5
        };
        // SAFETY: see above.
        match (unsafe { call.state::<IqrState>(0) }, call.f64(1)) {
            (state, Some(x)) => {
                let state = match state {
                    Some(s) => s,
                    None => call.new_state(IqrState::default()),
                };
                state.update(x, k).or_raise(call.name);
                super::heap::check(call.name);
                state_datum(state)
            }
            (Some(state), None) => state_datum(state),
            (None, None) => call.return_null(),
        }
    }

    fn iqr_combine(call: "iqr_bounds") -> Datum { combine::<IqrState>(&call) }
    fn iqr_serial(call: "iqr_bounds") -> Datum { serial::<IqrState>(&mut call) }
    fn iqr_deserial(call: "iqr_bounds") -> Datum { deserial::<IqrState>(&mut call) }

    fn iqr_final(call: "iqr_bounds") -> Datum {
        let args = call.args();
        // SAFETY: see above.
        let Some(b) = (unsafe { args.state::<IqrState>(0) }).and_then(|s| s.finalize().or_raise(args.name)) else {
            return args.return_null();
        };
        let result = call.cache(|a| Composite::for_result(a, &IQR_BOUNDS));
        result.form(args.name, &[
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
    fn rfm_breaks_trans(call: "rfm_breaks") -> Datum {
        let n = if call.nargs() == 5 {
            call.i32(4).unwrap_or_else(|| null_not_allowed("rfm_breaks: n must not be NULL"))
        } else {
            5
        };
        let (r, f, m) = (call.f64(1), call.f64(2), call.f64(3));
        // SAFETY: see above.
        let existing = unsafe { call.state::<BreaksState>(0) };
        if r.is_none() && f.is_none() && m.is_none() {
            return match existing {
                Some(s) => state_datum(s),
                None => call.return_null(),
            };
        }
        let state = match existing {
            Some(s) => s,
            None => call.new_state(BreaksState::default()),
        };
        state.update(r, f, m, n).or_raise(call.name);
        super::heap::check(call.name);
        state_datum(state)
    }

    fn rfm_breaks_combine(call: "rfm_breaks") -> Datum { combine::<BreaksState>(&call) }
    fn rfm_breaks_serial(call: "rfm_breaks") -> Datum { serial::<BreaksState>(&mut call) }
    fn rfm_breaks_deserial(call: "rfm_breaks") -> Datum { deserial::<BreaksState>(&mut call) }

    fn rfm_breaks_final(call: "rfm_breaks") -> Datum {
        let args = call.args();
        // SAFETY: see above.
        let Some(state) = (unsafe { args.state::<BreaksState>(0) }) else {
            return args.return_null();
        };
        let (n, cuts) = state.finalize().or_raise(args.name);
        let result = call.cache(|a| Composite::for_result(a, &RFM_BREAKS));
        let [r, f, m] = cuts.map(|c| c.map(|c| f64_array_datum(&c)));
        result.form(args.name, &[Some(Datum::from(n)), r, f, m])
    }
}
