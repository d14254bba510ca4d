//! The storable per-customer RFM state (SQL type `rfm_state`): what `rfm` keeps for a group,
//! without `as_of`, so that the states of different days fold into one (`rfm_merge`) and are
//! summarized later for any `as_of` (`rfm_summary`).
//!
//! The stored form is canonical (order ids sorted) and machine-independent (little-endian,
//! LEB128 lengths):
//!
//! ```text
//! "RS" 1 kind   magic, format version 1, kind 0 (a row is an order) or 1 (distinct order ids)
//! rows purchases                        LEB128
//! sum comp                              f64: the compensated monetary sum
//! first last latest                     i64: first and last purchase, latest row of any kind
//! [kind 1] n, then n x (len, bytes)     LEB128; ids in strictly increasing byte order
//! ```

use super::codec::{Reader, Writer};
use super::error::{invalid, Kind};
use super::rfm::{check_amount, check_ts, summary, OrderSet, RfmSummary, Sum, TS_END, TS_MIN, TS_NOBEGIN, TS_NOEND};
use super::{CoreError, Partial};

const MAGIC: [u8; 2] = *b"RS";
const FORMAT: u8 = 1;

/// One customer's rows folded together: counts, the compensated sum of the amounts, the
/// first and last purchase, the latest row (returns too, for the `as_of` check), and, when
/// orders are counted by id, the distinct ids of purchase rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RfmState {
    rows: u64,
    purchases: u64,
    monetary: Sum,
    first: i64,
    last: i64,
    latest: i64,
    orders: Option<OrderSet>,
}

fn damaged(what: &str) -> CoreError {
    CoreError::new(Kind::Corrupt, format!("damaged rfm_state value: {what}"))
        .hint("An rfm_state is only made by rfm_state() and rfm_merge(); recompute this customer's state from the rows.")
}

impl RfmState {
    /// An empty state: `with_orders` for the form that counts distinct order ids.
    pub fn new(with_orders: bool) -> RfmState {
        RfmState {
            rows: 0,
            purchases: 0,
            monetary: Sum::default(),
            first: TS_NOEND,
            last: TS_NOBEGIN,
            latest: TS_NOBEGIN,
            orders: with_orders.then(OrderSet::default),
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

    /// Folds `other` in (its order ids are moved).
    pub fn fold(&mut self, other: &mut RfmState) -> Result<(), CoreError> {
        if other.is_empty() {
            return Ok(());
        }
        if self.is_empty() && self.orders.is_some() != other.orders.is_some() {
            // An empty state takes the kind of what is folded into it.
            self.orders = other.orders.as_ref().map(|_| OrderSet::default());
        }
        match (&mut self.orders, &mut other.orders) {
            (Some(a), Some(b)) => a.merge(b),
            (None, None) => {}
            _ => return Err(invalid("cannot fold a state that counts orders by order_id with one that counts rows as orders").hint(
                "Build every state of a customer with the same form: rfm_state(order_ts, amount, order_id) or rfm_state(order_ts, amount).",
            )),
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
    pub fn summary(&self, as_of: i64) -> Result<Option<RfmSummary>, CoreError> {
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

    /// The stored form (see the module documentation).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.extend_from_slice(&MAGIC);
        w.u8(FORMAT);
        w.u8(self.orders.is_some() as u8);
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
        *out = w.buf;
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// Reads a stored state, checking that it is one `rfm_state` could have made.
    pub fn decode(buf: &[u8]) -> Result<RfmState, CoreError> {
        let mut set = OrderSet::default();
        let (mut state, kind) = RfmState::read(buf, &mut |id| set.insert(id))?;
        if kind == 1 {
            state.orders = Some(set);
        }
        Ok(state)
    }

    /// `rfm_summary` of a stored state, checked as `decode` checks it, without building the
    /// set of its order ids (only their number counts).
    pub fn summary_of_stored(buf: &[u8], as_of: i64) -> Result<Option<RfmSummary>, CoreError> {
        let mut n = 0u64;
        let (state, kind) = RfmState::read(buf, &mut |_| n += 1)?;
        state.summary_with(as_of, if kind == 1 { n } else { state.purchases })
    }

    /// Reads a stored state without its order ids, which go to `id` in order; returns the kind.
    fn read(buf: &[u8], id: &mut dyn FnMut(&[u8])) -> Result<(RfmState, u8), CoreError> {
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
        if kind > 1 {
            return Err(damaged(&format!("unknown kind {kind}")));
        }
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
        if kind == 1 {
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
        if !r.is_empty() {
            return Err(damaged("trailing bytes"));
        }
        let monetary = Sum::from_parts(sum, comp);
        Ok((RfmState { rows, purchases, monetary, first, last, latest, orders: None }, kind))
    }
}

impl Partial for RfmState {
    fn empty() -> Self {
        RfmState::new(false)
    }
    fn merge(&mut self, other: &mut RfmState) -> Result<(), CoreError> {
        self.fold(other)
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        // An empty partial state (a worker saw no rows of the group) keeps its kind only.
        if self.is_empty() {
            out.push(self.orders.is_some() as u8);
        } else {
            self.encode_into(out);
        }
    }
    fn deserialize(buf: &[u8]) -> Result<RfmState, CoreError> {
        match buf {
            [k @ (0 | 1)] => Ok(RfmState::new(*k == 1)),
            _ => RfmState::decode(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rfm::{RfmCore, RfmLines};

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
        let mut s = RfmState::new(with_orders);
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
        let s = state(&rows(), true);
        // A return on day 12 is later than as_of day 11.
        assert!(s.summary(11 * DAY).is_err());
        assert!(s.summary(i64::MAX).is_err());
        let mut other = state(&rows(), false);
        assert!(state(&rows(), true).fold(&mut other).is_err());
        assert!(RfmState::new(true).update(i64::MAX, 1.0, None).is_err());
        assert!(RfmState::new(true).update(0, f64::NAN, None).is_err());
        let good = s.encode();
        assert_eq!(RfmState::decode(&good).unwrap(), s);
        assert_eq!(RfmState::summary_of_stored(&good, 20 * DAY).unwrap(), s.summary(20 * DAY).unwrap());
        let rows_form = state(&rows(), false);
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

    #[test]
    fn leb128_round_trips() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::default();
            w.leb128(v);
            assert_eq!(Reader::new(&w.buf).leb128().unwrap(), v);
        }
    }
}
