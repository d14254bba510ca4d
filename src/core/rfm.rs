//! Per-customer RFM state: update with one row, merge two partial states, finalize.
//!
//! Timestamps are microseconds (PostgreSQL's `timestamptz` representation); the core
//! never needs to know the epoch, only differences.

use std::collections::HashSet;

use rustc_hash::FxBuildHasher;

use super::codec::{Reader, Writer};
use super::error::{invalid, show};
use super::{CoreError, Partial};

pub const USECS_PER_DAY: f64 = 86_400_000_000.0;

/// Compensated (Neumaier) sum, so that summing in any order, as parallel workers do,
/// gives the same value to the last few ulps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    pub fn merge(&mut self, other: &Sum) {
        self.add(other.sum);
        self.add(other.comp);
    }
    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

type OrderSet = HashSet<Box<[u8]>, FxBuildHasher>;

#[derive(Clone, Debug, PartialEq)]
pub struct RfmState {
    as_of: Option<i64>,
    rows: u64,
    purchases: u64,
    monetary: Sum,
    first: i64,
    last: i64,
    /// Distinct order ids of purchase rows (the order-line form of `rfm`).
    orders: Option<OrderSet>,
    /// The id inserted last: order lines usually arrive together, so most rows skip the hash.
    last_order: Option<Vec<u8>>,
}

/// What `rfm(...)` returns for one group. `None` fields are SQL NULLs.
#[derive(Clone, Debug, PartialEq)]
pub struct RfmSummary {
    pub recency: Option<f64>,
    pub frequency: i64,
    pub monetary: f64,
    pub first_purchase: Option<i64>,
    pub last_purchase: Option<i64>,
    pub tenure: Option<f64>,
    pub avg_order_value: Option<f64>,
}

/// PostgreSQL's `-infinity` and `infinity` timestamps.
const TS_NOBEGIN: i64 = i64::MIN;
const TS_NOEND: i64 = i64::MAX;

fn check_ts(what: &str, ts: i64) -> Result<(), CoreError> {
    if ts == TS_NOBEGIN || ts == TS_NOEND {
        Err(invalid(format!("rfm: {what} must be a finite timestamp, got infinity")))
    } else {
        Ok(())
    }
}

impl RfmState {
    /// `with_orders`: true for the order-line form, which counts distinct order ids.
    pub fn new(with_orders: bool) -> Self {
        RfmState {
            as_of: None,
            rows: 0,
            purchases: 0,
            monetary: Sum::default(),
            first: TS_NOEND,
            last: TS_NOBEGIN,
            orders: with_orders.then(OrderSet::default),
            last_order: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn set_as_of(&mut self, as_of: i64) -> Result<(), CoreError> {
        match self.as_of {
            Some(a) if a == as_of => Ok(()),
            Some(_) => Err(invalid("rfm: as_of must be the same for every row of a group")),
            None => {
                check_ts("as_of", as_of)?;
                self.as_of = Some(as_of);
                Ok(())
            }
        }
    }

    /// One transaction row. `order_id` is `Some` only for the order-line form.
    /// A negative amount is a return: it lowers monetary and is not an order.
    #[inline]
    pub fn update(&mut self, ts: i64, amount: f64, order_id: Option<&[u8]>, as_of: i64) -> Result<(), CoreError> {
        self.set_as_of(as_of)?;
        if !amount.is_finite() {
            return Err(invalid(format!("rfm: amount must be a finite number, got {}", show(amount))));
        }
        check_ts("order_ts", ts)?;
        if ts > as_of {
            return Err(invalid(
                "rfm: a row's order_ts is later than as_of; filter rows with order_ts <= as_of or use a later as_of",
            ));
        }
        self.rows += 1;
        self.monetary.add(amount);
        if amount >= 0.0 {
            self.purchases += 1;
            self.first = self.first.min(ts);
            self.last = self.last.max(ts);
            if let (Some(set), Some(id)) = (self.orders.as_mut(), order_id) {
                if self.last_order.as_deref() != Some(id) {
                    if !set.contains(id) {
                        set.insert(id.into());
                    }
                    match &mut self.last_order {
                        Some(v) => {
                            v.clear();
                            v.extend_from_slice(id);
                        }
                        None => self.last_order = Some(id.to_vec()),
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finalize(&self) -> Option<RfmSummary> {
        if self.rows == 0 {
            return None;
        }
        let as_of = self.as_of?;
        let frequency = match &self.orders {
            Some(set) => set.len() as u64,
            None => self.purchases,
        } as i64;
        let monetary = self.monetary.value();
        let bought = self.purchases > 0;
        let days = |ts: i64| (as_of - ts) as f64 / USECS_PER_DAY;
        Some(RfmSummary {
            recency: bought.then(|| days(self.last)),
            frequency,
            monetary,
            first_purchase: bought.then_some(self.first),
            last_purchase: bought.then_some(self.last),
            tenure: bought.then(|| days(self.first)),
            avg_order_value: (frequency > 0).then(|| monetary / frequency as f64),
        })
    }
}

impl Partial for RfmState {
    fn empty() -> Self {
        RfmState::new(false)
    }

    /// Folds `other` into `self`; `other` is left empty (its order ids are moved, not copied).
    fn merge(&mut self, other: &mut RfmState) -> Result<(), CoreError> {
        if let Some(a) = other.as_of {
            self.set_as_of(a)?;
        }
        self.rows += other.rows;
        self.purchases += other.purchases;
        self.monetary.merge(&other.monetary);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        match (self.orders.as_mut(), other.orders.as_mut()) {
            (Some(mine), Some(theirs)) => {
                if mine.len() < theirs.len() {
                    std::mem::swap(mine, theirs);
                }
                mine.extend(theirs.drain());
            }
            (None, Some(theirs)) => self.orders = Some(std::mem::take(theirs)),
            _ => {}
        }
        self.last_order = None;
        *other = RfmState::new(other.orders.is_some());
        Ok(())
    }

    fn serialize(&self) -> Vec<u8> {
        let ids = self.orders.as_ref().map_or(0, |s| s.iter().map(|b| b.len() + 8).sum::<usize>());
        let mut w = Writer::with_capacity(64 + ids);
        w.u8(self.as_of.is_some() as u8 | (self.orders.is_some() as u8) << 1);
        w.i64(self.as_of.unwrap_or(0));
        w.u64(self.rows);
        w.u64(self.purchases);
        w.f64(self.monetary.sum);
        w.f64(self.monetary.comp);
        w.i64(self.first);
        w.i64(self.last);
        if let Some(set) = &self.orders {
            w.u64(set.len() as u64);
            for id in set {
                w.bytes(id);
            }
        }
        w.buf
    }

    fn deserialize(buf: &[u8]) -> Result<RfmState, CoreError> {
        let mut r = Reader::new(buf);
        let flags = r.u8()?;
        if flags > 3 {
            return Err(CoreError::Corrupt("flags"));
        }
        let as_of = r.i64()?;
        let mut s = RfmState::new(flags & 2 != 0);
        s.as_of = (flags & 1 != 0).then_some(as_of);
        s.rows = r.u64()?;
        s.purchases = r.u64()?;
        s.monetary = Sum { sum: r.f64()?, comp: r.f64()? };
        s.first = r.i64()?;
        s.last = r.i64()?;
        if let Some(set) = s.orders.as_mut() {
            let n = r.u64()?;
            for _ in 0..n {
                set.insert(r.bytes()?.into());
            }
        }
        r.finish()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn hand_worked_customer() {
        // Orders on day 0, 10 and 30; a return on day 31; as_of day 40.
        let mut s = RfmState::new(false);
        s.update(0, 100.0, None, 40 * DAY).unwrap();
        s.update(10 * DAY, 50.0, None, 40 * DAY).unwrap();
        s.update(30 * DAY + DAY / 2, 25.0, None, 40 * DAY).unwrap();
        s.update(31 * DAY, -20.0, None, 40 * DAY).unwrap();
        let f = s.finalize().unwrap();
        assert_eq!(f.recency, Some(9.5));
        assert_eq!(f.frequency, 3);
        assert_eq!(f.monetary, 155.0);
        assert_eq!(f.tenure, Some(40.0));
        assert_eq!(f.first_purchase, Some(0));
        assert_eq!(f.last_purchase, Some(30 * DAY + DAY / 2));
        assert!((f.avg_order_value.unwrap() - 155.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn order_lines_count_distinct_orders() {
        let mut s = RfmState::new(true);
        for (id, amt) in [("A", 1.0), ("A", 2.0), ("B", 3.0), ("A", 4.0), ("C", -1.0), ("B", 0.0)] {
            s.update(DAY, amt, Some(id.as_bytes()), 2 * DAY).unwrap();
        }
        let f = s.finalize().unwrap();
        assert_eq!(f.frequency, 2, "A and B; C is only a return");
        assert_eq!(f.monetary, 9.0);
    }

    #[test]
    fn only_returns_and_empty() {
        assert!(RfmState::new(false).finalize().is_none());
        let mut s = RfmState::new(false);
        s.update(DAY, -5.0, None, 2 * DAY).unwrap();
        let f = s.finalize().unwrap();
        assert_eq!((f.recency, f.frequency, f.monetary, f.avg_order_value), (None, 0, -5.0, None));
    }

    #[test]
    fn bad_rows_are_errors() {
        let mut s = RfmState::new(false);
        assert!(s.update(3 * DAY, 1.0, None, 2 * DAY).is_err(), "after as_of");
        assert!(s.update(DAY, f64::NAN, None, 2 * DAY).is_err());
        assert!(s.update(DAY, f64::INFINITY, None, 2 * DAY).is_err());
        assert!(s.update(i64::MIN, 1.0, None, 2 * DAY).is_err());
        assert!(s.update(DAY, 1.0, None, i64::MAX).is_err(), "as_of infinity (fresh state)");
        let mut t = RfmState::new(false);
        t.update(DAY, 1.0, None, 2 * DAY).unwrap();
        assert!(t.update(DAY, 1.0, None, 3 * DAY).is_err(), "as_of changes within a group");
    }

    #[test]
    fn merge_and_serialize_equal_serial() {
        let rows: Vec<(i64, f64, String)> = (0..200)
            .map(|i| ((i * 7919 % 365) as i64 * DAY, ((i * 31) % 97) as f64 - 10.0, format!("o{}", i % 37)))
            .collect();
        let as_of = 400 * DAY;
        let mut serial = RfmState::new(true);
        for (t, a, o) in &rows {
            serial.update(*t, *a, Some(o.as_bytes()), as_of).unwrap();
        }
        for split in [0, 1, 50, 199, 200] {
            let mut a = RfmState::new(true);
            let mut b = RfmState::new(true);
            for (i, (t, am, o)) in rows.iter().enumerate() {
                let s = if i < split { &mut a } else { &mut b };
                s.update(*t, *am, Some(o.as_bytes()), as_of).unwrap();
            }
            let mut b2 = RfmState::deserialize(&b.serialize()).unwrap();
            let mut a2 = RfmState::deserialize(&a.serialize()).unwrap();
            a2.merge(&mut b2).unwrap();
            let (x, y) = (a2.finalize().unwrap(), serial.finalize().unwrap());
            assert_eq!(x.frequency, y.frequency);
            assert_eq!(x.recency, y.recency);
            assert!((x.monetary - y.monetary).abs() < 1e-9);
        }
        assert!(RfmState::deserialize(&[9]).is_err());
    }
}
