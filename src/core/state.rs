//! The storable per-customer RFM state (SQL type `rfm_state`): what `rfm` keeps for a group,
//! without `as_of`, so that the states of different days fold into one (`rfm_merge`) and are
//! summarized later for any `as_of` (`rfm_summary`).
//!
//! The stored form is canonical (order ids sorted) and machine-independent (little-endian,
//! LEB128 lengths):
//!
//! ```text
//! "RS" 1 kind   magic, format version 1, kind 0 (a row is an order), 1 (distinct order
//!               ids) or 2 (distinct order ids and distinct lines)
//! rows purchases                        LEB128
//! sum comp                              f64: the compensated monetary sum
//! first last latest                     i64: first and last purchase, latest row of any kind
//! [kind 1, 2] n, then n x (len, bytes)  LEB128; ids in strictly increasing byte order
//! [kind 2] m, then m x (hi lo amount)   LEB128, then u64 u64 f64: the 128-bit keys of the
//!                                       distinct lines in strictly increasing order, and
//!                                       their amounts; rows, purchases and the sum are
//!                                       theirs (summed in key order)
//! ```

use super::codec::{Reader, Writer};
use super::error::{invalid, Kind};
use super::rfm::{
    check_amount, check_ts, compact_lines, summary, LineKey, OrderSet, RfmSummary, Sum, TS_END, TS_MIN, TS_NOBEGIN, TS_NOEND,
};
use super::{CoreError, Partial};

const MAGIC: [u8; 2] = *b"RS";
const FORMAT: u8 = 1;

/// What a row of the state is: an order, an order line (orders counted by distinct id), or
/// an order line counted once however often it comes (the `line` form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Rows = 0,
    Orders = 1,
    Lines = 2,
}

impl Form {
    fn of(kind: u8) -> Option<Form> {
        [Form::Rows, Form::Orders, Form::Lines].into_iter().find(|f| *f as u8 == kind)
    }
    fn call(self) -> &'static str {
        match self {
            Form::Rows => "rfm_state(order_ts, amount)",
            Form::Orders => "rfm_state(order_ts, amount, order_id)",
            Form::Lines => "rfm_state(order_ts, amount, order_id, line)",
        }
    }
}

/// One customer's rows folded together: counts, the compensated sum of the amounts, the
/// first and last purchase, the latest row (returns too, for the `as_of` check), and, when
/// orders are counted by id, the distinct ids of purchase rows; in the line form also one key
/// per line, so that a line folded twice counts once.
#[derive(Clone, Debug, PartialEq)]
pub struct RfmState {
    rows: u64,
    purchases: u64,
    monetary: Sum,
    first: i64,
    last: i64,
    latest: i64,
    orders: Option<OrderSet>,
    /// The line form's keys: rows, purchases and monetary are recounted from them by
    /// `compact` (sorted and distinct afterwards; appended to by `update_line` and `fold`).
    lines: Option<Vec<LineKey>>,
}

fn damaged(what: &str) -> CoreError {
    CoreError::new(Kind::Corrupt, format!("damaged rfm_state value: {what}"))
        .hint("An rfm_state is only made by rfm_state() and rfm_merge(); recompute this customer's state from the rows.")
}

impl RfmState {
    /// An empty state of the given form.
    pub fn new(form: Form) -> RfmState {
        RfmState {
            rows: 0,
            purchases: 0,
            monetary: Sum::default(),
            first: TS_NOEND,
            last: TS_NOBEGIN,
            latest: TS_NOBEGIN,
            orders: (form != Form::Rows).then(OrderSet::default),
            lines: (form == Form::Lines).then(Vec::new),
        }
    }

    pub fn form(&self) -> Form {
        match (&self.orders, &self.lines) {
            (None, _) => Form::Rows,
            (Some(_), None) => Form::Orders,
            (Some(_), Some(_)) => Form::Lines,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// One row (rows with a NULL are not passed in). A negative amount is a return: it lowers
    /// monetary, is not an order and does not move the purchase dates, as in `rfm`.
    #[inline]
    pub fn update(&mut self, ts: i64, amount: f64, order_id: Option<&[u8]>) -> Result<(), CoreError> {
        check_amount(amount)?;
        check_ts("order_ts", ts)?;
        self.rows += 1;
        self.monetary.add(amount);
        self.latest = self.latest.max(ts);
        if amount >= 0.0 {
            self.purchases += 1;
            self.first = self.first.min(ts);
            self.last = self.last.max(ts);
            if let (Some(set), Some(id)) = (self.orders.as_mut(), order_id) {
                set.insert(id);
            }
        }
        Ok(())
    }

    /// One order line of the line form: a line with the same order id, timestamp, amount and
    /// `line` as one already folded in counts once (after `compact`).
    #[inline]
    pub fn update_line(&mut self, ts: i64, amount: f64, order_id: &[u8], line: Option<&[u8]>) -> Result<(), CoreError> {
        self.update(ts, amount, Some(order_id))?;
        if let Some(keys) = self.lines.as_mut() {
            keys.push(LineKey::new(ts, amount, order_id, line));
        }
        Ok(())
    }

    /// The line form's smallest equivalent: its keys sorted and distinct, and rows,
    /// purchases and monetary recounted from them. The other forms have nothing to reduce.
    pub fn compact(&mut self) {
        if let Some(keys) = self.lines.as_mut() {
            (self.rows, self.purchases, self.monetary) = compact_lines(keys);
        }
    }

    /// Folds `other` in (its order ids and lines are moved). The line form is left to
    /// `compact`, which `encode` and `summary` call.
    pub fn fold(&mut self, other: &mut RfmState) -> Result<(), CoreError> {
        if other.is_empty() {
            return Ok(());
        }
        if self.is_empty() && self.form() != other.form() {
            // An empty state takes the form of what is folded into it.
            *self = RfmState::new(other.form());
        }
        if self.form() != other.form() {
            return Err(invalid(format!("cannot fold a state made by {} with one made by {}", self.form().call(), other.form().call()))
                .hint("Build every state of a customer with the same form of rfm_state."));
        }
        if let (Some(a), Some(b)) = (&mut self.orders, &mut other.orders) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (&mut self.lines, &mut other.lines) {
            if a.len() < b.len() {
                std::mem::swap(a, b);
            }
            a.append(b);
        }
        self.rows += other.rows;
        self.purchases += other.purchases;
        self.monetary.merge(&other.monetary);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.latest = self.latest.max(other.latest);
        Ok(())
    }

    /// What `rfm` returns for these rows with this `as_of` (None: no rows).
    pub fn summary(&mut self, as_of: i64) -> Result<Option<RfmSummary>, CoreError> {
        self.compact();
        let frequency = self.orders.as_ref().map_or(self.purchases, |o| o.len() as u64);
        self.summary_with(as_of, frequency)
    }

    /// The summary with `frequency` orders (the number of distinct ids, or of purchase rows).
    fn summary_with(&self, as_of: i64, frequency: u64) -> Result<Option<RfmSummary>, CoreError> {
        check_ts("as_of", as_of)?;
        if self.is_empty() {
            return Ok(None);
        }
        if self.latest > as_of {
            return Err(invalid("the state holds a row whose order_ts is later than as_of")
                .hint("Use an as_of at or after the latest row folded into the state."));
        }
        Ok(Some(summary(as_of, self.purchases > 0, self.first, self.last, self.monetary.value(), frequency)))
    }

    /// The stored form (see the module documentation), after `compact`.
    pub fn encode_into(&mut self, out: &mut Vec<u8>) {
        self.compact();
        self.write_compacted(out);
    }

    /// The stored form of a compacted state.
    fn write_compacted(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(64 + self.lines.as_ref().map_or(0, |k| 24 * k.len()));
        w.buf.extend_from_slice(&MAGIC);
        w.u8(FORMAT);
        w.u8(self.form() as u8);
        w.leb128(self.rows);
        w.leb128(self.purchases);
        let (sum, comp) = self.monetary.parts();
        w.f64(sum);
        w.f64(comp);
        w.i64(self.first);
        w.i64(self.last);
        w.i64(self.latest);
        if let Some(orders) = &self.orders {
            let ids = orders.sorted_ids();
            w.leb128(ids.len() as u64);
            for id in ids {
                w.leb128(id.len() as u64);
                w.buf.extend_from_slice(&id);
            }
        }
        if let Some(keys) = &self.lines {
            w.leb128(keys.len() as u64);
            for k in keys {
                w.u64(k.hi);
                w.u64(k.lo);
                w.f64(k.amount);
            }
        }
        *out = w.buf;
    }

    pub fn encode(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// Reads a stored state, checking that it is one `rfm_state` could have made.
    pub fn decode(buf: &[u8]) -> Result<RfmState, CoreError> {
        let mut set = OrderSet::default();
        let mut keys = Vec::new();
        let (mut state, form) = RfmState::read(buf, &mut |id| set.insert(id), &mut |k| keys.push(k))?;
        if form != Form::Rows {
            state.orders = Some(set);
        }
        if form == Form::Lines {
            state.lines = Some(keys);
        }
        Ok(state)
    }

    /// `rfm_summary` of a stored state, checked as `decode` checks it, without building the
    /// set of its order ids (only their number counts).
    pub fn summary_of_stored(buf: &[u8], as_of: i64) -> Result<Option<RfmSummary>, CoreError> {
        let mut n = 0u64;
        let (state, form) = RfmState::read(buf, &mut |_| n += 1, &mut |_| {})?;
        state.summary_with(as_of, if form == Form::Rows { state.purchases } else { n })
    }

    /// Reads a stored state without its order ids and line keys, which go to `id` and `line`
    /// in order; returns the form.
    fn read(buf: &[u8], id: &mut dyn FnMut(&[u8]), line: &mut dyn FnMut(LineKey)) -> Result<(RfmState, Form), CoreError> {
        // The reader's own errors are truncations and overlong numbers.
        let mut r = Reader::new(buf);
        let read = |e: CoreError| damaged(e.message.trim_start_matches("corrupt serialized aggregate state: "));
        if r.take(2).map_err(read)? != MAGIC {
            return Err(damaged("not an rfm_state (wrong magic bytes)"));
        }
        let format = r.u8().map_err(read)?;
        if format != FORMAT {
            return Err(damaged(&format!("unknown format version {format}")));
        }
        let kind = r.u8().map_err(read)?;
        let Some(form) = Form::of(kind) else {
            return Err(damaged(&format!("unknown kind {kind}")));
        };
        let rows = r.leb128().map_err(read)?;
        let purchases = r.leb128().map_err(read)?;
        let (sum, comp) = (r.f64().map_err(read)?, r.f64().map_err(read)?);
        let (first, last, latest) = (r.i64().map_err(read)?, r.i64().map_err(read)?, r.i64().map_err(read)?);
        if rows == 0 || purchases > rows {
            return Err(damaged(&format!("{purchases} purchases among {rows} rows")));
        }
        if !(sum.is_finite() && comp.is_finite()) {
            return Err(damaged("monetary is not a finite number"));
        }
        let finite = |ts: i64| (TS_MIN..TS_END).contains(&ts);
        let dates_ok = if purchases > 0 {
            first <= last && last <= latest && finite(first) && finite(latest)
        } else {
            first == TS_NOEND && last == TS_NOBEGIN && finite(latest)
        };
        if !dates_ok {
            return Err(damaged("inconsistent purchase dates"));
        }
        if form != Form::Rows {
            let n = r.leb128().map_err(read)?;
            if n > purchases {
                return Err(damaged(&format!("{n} order ids for {purchases} purchase rows")));
            }
            let mut prev: Option<&[u8]> = None;
            for _ in 0..n {
                let len = usize::try_from(r.leb128().map_err(read)?).map_err(|_| damaged("order id length"))?;
                let this = r.take(len).map_err(read)?;
                if prev.is_some_and(|p| p >= this) {
                    return Err(damaged("order ids out of order"));
                }
                id(this);
                prev = Some(this);
            }
        }
        if form == Form::Lines {
            // The lines are the state: their count, purchases and sum must be the header's.
            let m = r.leb128().map_err(read)?;
            if m != rows || m > (buf.len() / 24) as u64 {
                return Err(damaged(&format!("{m} lines for {rows} rows")));
            }
            let (mut prev, mut bought, mut total) = (None, 0u64, Sum::default());
            for _ in 0..m {
                let k = LineKey { hi: r.u64().map_err(read)?, lo: r.u64().map_err(read)?, amount: r.f64().map_err(read)? };
                if prev.is_some_and(|p| p >= (k.hi, k.lo)) {
                    return Err(damaged("line keys out of order"));
                }
                if !k.amount.is_finite() || k.amount.to_bits() == (-0.0f64).to_bits() {
                    return Err(damaged("a line amount is not a finite number"));
                }
                prev = Some((k.hi, k.lo));
                bought += (k.amount >= 0.0) as u64;
                total.add(k.amount);
                line(k);
            }
            if bought != purchases || total.parts() != Sum::from_parts(sum, comp).parts() {
                return Err(damaged("the purchases or monetary do not match the lines"));
            }
        }
        if !r.is_empty() {
            return Err(damaged("trailing bytes"));
        }
        let monetary = Sum::from_parts(sum, comp);
        Ok((RfmState { rows, purchases, monetary, first, last, latest, orders: None, lines: None }, form))
    }
}

impl Partial for RfmState {
    fn empty() -> Self {
        RfmState::new(Form::Rows)
    }
    fn merge(&mut self, other: &mut RfmState) -> Result<(), CoreError> {
        self.fold(other)
    }
    /// Called after `compact` (the serial function compacts first).
    fn serialize_into(&self, out: &mut Vec<u8>) {
        // An empty partial state (a worker saw no rows of the group) keeps its form only.
        if self.is_empty() {
            out.push(self.form() as u8);
        } else {
            self.write_compacted(out);
        }
    }
    fn deserialize(buf: &[u8]) -> Result<RfmState, CoreError> {
        match buf {
            [k] => Form::of(*k).map(RfmState::new).ok_or_else(|| damaged(&format!("unknown kind {k}"))),
            _ => RfmState::decode(buf),
        }
    }
    fn compact(&mut self) {
        RfmState::compact(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rfm::{RfmCore, RfmLines, RfmUniqueLines};

    const DAY: i64 = 86_400_000_000;

    /// (ts, amount, order id) rows of one customer: orders over several days, lines of one
    /// order on two days, returns (one after the last purchase).
    fn rows() -> Vec<(i64, f64, &'static [u8])> {
        vec![
            (DAY, 10.25, b"A1"),
            (DAY, 5.5, b"A1"),
            (3 * DAY, 20.0, b"B22"),
            (4 * DAY, -5.5, b"C-ret"),
            (9 * DAY, 7.75, b"A1"),
            (10 * DAY, 100.0, b"an order id longer than fifteen bytes"),
            (12 * DAY, -2.0, b"C-ret2"),
        ]
    }

    fn state(rows: &[(i64, f64, &[u8])], with_orders: bool) -> RfmState {
        let mut s = RfmState::new(if with_orders { Form::Orders } else { Form::Rows });
        for (ts, a, id) in rows {
            s.update(*ts, *a, Some(id)).unwrap();
        }
        s
    }

    /// Folding the states of any split of the rows, in any order, equals one pass of `rfm`.
    #[test]
    fn folds_equal_one_pass() {
        let rows = rows();
        let as_of = 20 * DAY;
        let mut lines = RfmLines::new();
        let mut core = RfmCore::default();
        for (ts, a, id) in &rows {
            lines.update(*ts, *a, id, as_of).unwrap();
            core.update(*ts, *a, as_of).unwrap();
        }
        for split in 1..rows.len() {
            for with_orders in [true, false] {
                let (mut a, mut b) = (state(&rows[..split], with_orders), state(&rows[split..], with_orders));
                // Through the stored form, folded in both orders.
                let mut ab = RfmState::decode(&a.encode()).unwrap();
                ab.fold(&mut RfmState::decode(&b.encode()).unwrap()).unwrap();
                b.fold(&mut a).unwrap();
                let want = if with_orders { lines.finalize() } else { core.finalize() };
                assert_eq!(ab.summary(as_of).unwrap(), want, "split {split}");
                assert_eq!(b.summary(as_of).unwrap(), want, "split {split}");
                assert_eq!(ab.encode(), b.encode());
            }
        }
        // By hand: 3 distinct orders of purchase rows, 4 purchase rows, net 136.0.
        let s = state(&rows, true).summary(as_of).unwrap().unwrap();
        assert_eq!((s.frequency, s.monetary, s.recency), (3, 136.0, Some(10.0)));
        assert_eq!(state(&rows, false).summary(as_of).unwrap().unwrap().frequency, 5);
    }

    #[test]
    fn errors_and_damage() {
        let mut s = state(&rows(), true);
        // A return on day 12 is later than as_of day 11.
        assert!(s.summary(11 * DAY).is_err());
        assert!(s.summary(i64::MAX).is_err());
        let mut other = state(&rows(), false);
        assert!(state(&rows(), true).fold(&mut other).is_err());
        assert!(RfmState::new(Form::Orders).update(i64::MAX, 1.0, None).is_err());
        assert!(RfmState::new(Form::Orders).update(0, f64::NAN, None).is_err());
        let good = s.encode();
        assert_eq!(RfmState::decode(&good).unwrap(), s);
        assert_eq!(RfmState::summary_of_stored(&good, 20 * DAY).unwrap(), s.summary(20 * DAY).unwrap());
        let mut rows_form = state(&rows(), false);
        assert_eq!(RfmState::summary_of_stored(&rows_form.encode(), 20 * DAY).unwrap(), rows_form.summary(20 * DAY).unwrap());
        // Every truncation, and a flipped byte in each header field, is refused.
        for n in 0..good.len() {
            assert_eq!(RfmState::decode(&good[..n]).unwrap_err().kind, Kind::Corrupt, "{n}");
        }
        for i in [0, 2, 3] {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert_eq!(RfmState::decode(&bad).unwrap_err().kind, Kind::Corrupt, "{i}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(RfmState::decode(&trailing).is_err());
        // Purchases > rows.
        let mut bad = good.clone();
        bad[5] = 100;
        assert!(RfmState::decode(&bad).is_err());
        // A first purchase before PostgreSQL's earliest timestamp (4713 BC).
        let mut early = state(&rows(), true);
        early.first = TS_MIN - 1;
        assert_eq!(RfmState::decode(&early.encode()).unwrap_err().kind, Kind::Corrupt);
        // The widest span PostgreSQL allows does not overflow: 4713 BC to 294276 AD.
        let mut wide = state(&rows(), true);
        (wide.first, wide.last, wide.latest) = (TS_MIN, TS_MIN, TS_MIN);
        let s = RfmState::decode(&wide.encode()).unwrap().summary(TS_END - 1).unwrap().unwrap();
        let days = (TS_END as f64 - 1.0 - TS_MIN as f64) / 86_400_000_000.0;
        assert!((s.tenure.unwrap() / days - 1.0).abs() < 1e-12 && s.tenure.unwrap() > 0.0);
    }

    /// (ts, amount, order id, line) of one customer's raw lines: lines repeated within a day
    /// and across days (loaded twice), a return, an order over two days, a NULL line, -0.0.
    /// (ts, amount, order id, line).
    type Line = (i64, f64, &'static [u8], Option<&'static [u8]>);

    fn raw_lines() -> Vec<Line> {
        let mut v: Vec<Line> = vec![
            (DAY, 10.25, b"A1", Some(b"P1")),
            (DAY, 10.25, b"A1", Some(b"P1")),
            (DAY, 5.5, b"A1", Some(b"P2")),
            (DAY, 5.5, b"A1", None),
            (3 * DAY, 0.1, b"B22", Some(b"P1")),
            (3 * DAY, 0.2, b"B22", Some(b"P3")),
            (4 * DAY, -5.5, b"C-ret", Some(b"P2")),
            (9 * DAY, 7.75, b"A1", Some(b"P4")),
            (9 * DAY, -0.0, b"A1", Some(b"P5")),
            (10 * DAY, 1e-17, b"an order id longer than fifteen bytes", Some(b"P1")),
        ];
        // The first four days again, as a batch loaded twice.
        v.extend(v.clone().into_iter().filter(|l| l.0 <= 4 * DAY));
        v
    }

    fn line_state(rows: &[Line]) -> RfmState {
        let mut s = RfmState::new(Form::Lines);
        for (ts, a, id, line) in rows {
            s.update_line(*ts, *a, id, *line).unwrap();
        }
        s
    }

    /// The line form folded from any split into days or batches, also with a batch folded
    /// twice, equals one pass of rfm(order_ts, amount, order_id, line, as_of), to the bit,
    /// and stores the same bytes as one state over all the lines.
    #[test]
    fn line_form_folds_equal_one_pass() {
        let rows = raw_lines();
        let as_of = 20 * DAY;
        let mut one = RfmUniqueLines::new();
        for (ts, a, id, line) in &rows {
            one.update(*ts, *a, id, *line, as_of).unwrap();
        }
        let want = one.finalize().unwrap();
        // By hand: distinct lines A1/P1 10.25, A1/P2 5.5, A1/NULL 5.5, B22 0.1 + 0.2,
        // the return -5.5, A1/P4 7.75, A1/P5 0, the long order 1e-17; orders A1, B22, long.
        assert_eq!(want.frequency, 3);
        assert_eq!(want.monetary, 10.25 + 5.5 + 5.5 + 0.1 + 0.2 - 5.5 + 7.75 + 1e-17);
        let whole = line_state(&rows).encode();
        for split in 1..rows.len() {
            let (mut a, mut b) = (line_state(&rows[..split]), line_state(&rows[split..]));
            let mut ab = RfmState::decode(&a.encode()).unwrap();
            ab.fold(&mut RfmState::decode(&b.encode()).unwrap()).unwrap();
            // The same batch folded a second time changes nothing.
            ab.fold(&mut RfmState::decode(&b.encode()).unwrap()).unwrap();
            b.fold(&mut a).unwrap();
            for s in [&mut ab, &mut b] {
                let got = s.summary(as_of).unwrap().unwrap();
                assert_eq!(got, want, "split {split}");
                assert_eq!(got.monetary.to_bits(), want.monetary.to_bits(), "split {split}");
                assert_eq!(s.encode(), whole, "split {split}");
            }
            assert_eq!(RfmState::summary_of_stored(&whole, as_of).unwrap().unwrap(), want);
        }
        // Through the partial-state path (serial, deserial, combine) as parallel workers do.
        let mut p = line_state(&rows[..5]);
        Partial::compact(&mut p);
        let mut rest = line_state(&rows[5..]);
        Partial::compact(&mut rest);
        let mut q = RfmState::deserialize(&rest.serialize()).unwrap();
        q.merge(&mut RfmState::deserialize(&p.serialize()).unwrap()).unwrap();
        assert_eq!(q.encode(), whole);
        assert_eq!(RfmState::deserialize(&RfmState::new(Form::Lines).serialize()).unwrap().form(), Form::Lines);
    }

    #[test]
    fn line_form_damage_and_mixing() {
        let mut s = line_state(&raw_lines());
        let good = s.encode();
        assert_eq!(RfmState::decode(&good).unwrap().encode(), good);
        for n in 0..good.len() {
            assert_eq!(RfmState::decode(&good[..n]).unwrap_err().kind, Kind::Corrupt, "{n}");
        }
        let keys_at = good.len() - 24 * s.rows as usize;
        // Two keys swapped: out of order.
        let mut swapped = good.clone();
        swapped[keys_at..keys_at + 48].rotate_left(24);
        assert!(RfmState::decode(&swapped).unwrap_err().message.contains("out of order"));
        // An amount changed: the header's monetary no longer matches the lines.
        let amount_at =
            |x: f64| (0..s.rows as usize).map(|i| keys_at + 24 * i + 16).find(|&at| good[at..at + 8] == x.to_le_bytes()).unwrap();
        let mut amount = good.clone();
        let at = amount_at(10.25);
        amount[at..at + 8].copy_from_slice(&11.25f64.to_le_bytes());
        assert!(RfmState::decode(&amount).unwrap_err().message.contains("do not match"));
        // A -0.0 amount (the form stores 0.0).
        let mut neg = good.clone();
        neg[amount_at(0.0) + 7] = 0x80;
        assert_eq!(RfmState::decode(&neg).unwrap_err().kind, Kind::Corrupt);
        // Forms do not mix, in either direction; an empty state takes the other's form.
        let mut orders = state(&rows(), true);
        assert!(s.fold(&mut orders).unwrap_err().message.contains("rfm_state(order_ts, amount, order_id, line)"));
        let mut lines = line_state(&raw_lines());
        assert!(state(&rows(), false).fold(&mut lines).is_err());
        let mut empty = RfmState::new(Form::Rows);
        empty.fold(&mut line_state(&raw_lines())).unwrap();
        assert_eq!(empty.encode(), good);
    }

    #[test]
    fn leb128_round_trips() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::default();
            w.leb128(v);
            assert_eq!(Reader::new(&w.buf).leb128().unwrap(), v);
        }
    }
}
