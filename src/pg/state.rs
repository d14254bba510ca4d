//! The storable RFM state (`rfm_state`, declared in `sql/state.sql`): the aggregates
//! `rfm_state(order_ts, amount [, order_id])` and `rfm_merge(rfm_state)`, the function
//! `rfm_merge(a, b)`, `rfm_summary(state, as_of)` and the type's input and output functions.
//! The value is the core's stored form in a varlena (`src/core/state.rs`).

use pgrx::pg_sys::Datum;
use pgrx::PgSqlErrorCode;

use super::aggregates::{combine, deserial, serial, summary_datum};
use super::call::*;
use super::error::{null_not_allowed, OrRaise, PgError};
use super::value::cstring_datum;
use crate::core::state::{Form, RfmState};

// SAFETY (for every `state` / `state_or_new` below): the SQL declarations in sql/state.sql
// give each support function's `internal` arguments the RfmState made by these functions in
// the aggregate's context, one support call at a time.

/// The state's text form: its stored bytes in hexadecimal.
pub(super) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// 22P02 for text that is not hexadecimal (the text form of the type `what`); the caller
/// then checks the bytes.
pub(super) fn from_hex(what: &str, text: &str) -> Vec<u8> {
    let invalid = |msg: &str| -> ! {
        PgError::new(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, format!("{what}: invalid input: {msg}"))
            .hint(format!("The text form of an {what} is its stored bytes in hexadecimal, as {what} values print."))
            .raise()
    };
    let digits = text.trim().as_bytes();
    if !digits.len().is_multiple_of(2) {
        invalid("an odd number of hexadecimal digits");
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => invalid(&format!("{:?} is not a hexadecimal digit", c as char)),
    };
    digits.chunks_exact(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])).collect()
}

fn state_value(state: &mut RfmState) -> Datum {
    bytea_datum(&state.encode())
}

pg_v1! {
    // rfm_state_in(cstring) -> rfm_state
    fn rfm_state_in(call: "rfm_state") -> Datum {
        let Some(text) = call.cstring(0) else { return call.return_null() };
        let bytes = from_hex("rfm_state", &String::from_utf8_lossy(text.to_bytes()));
        RfmState::decode(&bytes).or_raise(call.name);
        bytea_datum(&bytes)
    }

    // rfm_state_out(rfm_state) -> cstring
    fn rfm_state_out(call: "rfm_state") -> Datum {
        let Some(bytes) = call.bytes(0) else { return call.return_null() };
        cstring_datum(&to_hex(bytes))
    }

    // rfm_state_recv(internal) -> rfm_state: the stored bytes, checked.
    fn rfm_state_recv(call: "rfm_state") -> Datum {
        let Some(bytes) = call.string_info(0) else { return call.return_null() };
        RfmState::decode(&bytes).or_raise(call.name);
        bytea_datum(&bytes)
    }

    // rfm_state_send(rfm_state) -> bytea
    fn rfm_state_send(call: "rfm_state") -> Datum {
        let Some(bytes) = call.bytes(0) else { return call.return_null() };
        bytea_datum(bytes)
    }

    // rfm_state(order_ts, amount): one order per row
    fn rfm_state_trans(call: "rfm_state") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, || RfmState::new(Form::Rows)) };
        if let (Some(ts), Some(amount)) = (call.i64(1), call.f64(2)) {
            state.update(ts, amount, None).or_raise(call.name);
        }
        state_datum(state)
    }

    // rfm_state(order_ts, amount, order_id): distinct order ids
    fn rfm_state_lines_trans(call: "rfm_state") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, || RfmState::new(Form::Orders)) };
        if let (Some(ts), Some(amount), Some(id)) = (call.i64(1), call.f64(2), call.bytes(3)) {
            state.update(ts, amount, Some(id)).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }

    // rfm_state(order_ts, amount, order_id, line): distinct order ids, each distinct line once
    fn rfm_state_unique_lines_trans(call: "rfm_state") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, || RfmState::new(Form::Lines)) };
        if let (Some(ts), Some(amount), Some(id)) = (call.i64(1), call.f64(2), call.bytes(3)) {
            state.update_line(ts, amount, id, call.bytes(4)).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }

    // rfm_merge(rfm_state) aggregate: folds the states of its rows
    fn rfm_merge_trans(call: "rfm_merge") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, || RfmState::new(Form::Rows)) };
        if let Some(bytes) = call.bytes(1) {
            let mut other = RfmState::decode(bytes).or_raise(call.name);
            state.fold(&mut other).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }

    fn rfm_state_combine(call: "rfm_state") -> Datum { combine::<RfmState>(&call) }
    fn rfm_state_serial(call: "rfm_state") -> Datum { serial::<RfmState>(&mut call) }
    fn rfm_state_deserial(call: "rfm_state") -> Datum { deserial::<RfmState>(&mut call) }

    // final function of rfm_state and rfm_merge: NULL when no row had all its values
    fn rfm_state_final(call: "rfm_state") -> Datum {
        let args = call.args();
        // SAFETY: see above.
        match unsafe { args.state::<RfmState>(0) } {
            Some(s) if !s.is_empty() => state_value(s),
            _ => args.return_null(),
        }
    }

    // rfm_merge(a rfm_state, b rfm_state) -> rfm_state; a NULL side gives the other
    fn rfm_merge_states(call: "rfm_merge") -> Datum {
        match (call.bytes(0), call.bytes(1)) {
            (Some(a), Some(b)) => {
                let mut a = RfmState::decode(a).or_raise(call.name);
                a.fold(&mut RfmState::decode(b).or_raise(call.name)).or_raise(call.name);
                state_value(&mut a)
            }
            (Some(one), None) | (None, Some(one)) => {
                RfmState::decode(one).or_raise(call.name);
                bytea_datum(one)
            }
            (None, None) => call.return_null(),
        }
    }

    // rfm_summary(s rfm_state, as_of timestamptz) -> rfm_summary
    fn rfm_summary_of_state(call: "rfm_summary") -> Datum {
        let args = call.args();
        let Some(bytes) = args.bytes(0) else { return args.return_null() };
        let as_of = args.i64(1).unwrap_or_else(|| null_not_allowed("rfm_summary: as_of must not be NULL"));
        let summary = RfmState::summary_of_stored(bytes, as_of).or_raise(args.name);
        summary_datum(&mut call, summary)
    }
}
