//! Per-customer RFM state: update with one row, merge two partial states, finalize.
//!
//! Timestamps are microseconds (PostgreSQL's `timestamptz` representation); the core
//! never needs to know the epoch, only differences.

use std::collections::HashSet;
use std::hash::Hasher;

use rustc_hash::FxBuildHasher;
use siphasher::sip128::{Hasher128, SipHasher13};

use super::codec::{Reader, Writer};
use super::error::{corrupt_state, invalid, show};
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
    /// The sum as an unevaluated pair (rounded value, exact remainder), as stored in an
    /// `rfm_state`: normalized, so that sums of the same exact value store the same bits
    /// whatever the order their terms were added in.
    pub fn parts(&self) -> (f64, f64) {
        // TwoSum (Knuth): s + e == sum + comp exactly, s the rounded sum.
        let s = self.sum + self.comp;
        let bb = s - self.sum;
        let e = (self.sum - (s - bb)) + (self.comp - bb);
        (s, e)
    }
    pub fn from_parts(sum: f64, comp: f64) -> Sum {
        Sum { sum, comp }
    }
    /// The running sum and compensation as they are (for partial states).
    pub fn raw(&self) -> (f64, f64) {
        (self.sum, self.comp)
    }
}

/// The RFM state of one customer where each row is one order: a few numbers, no heap
/// memory, so it is cheap to create per group and to ship between parallel workers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RfmCore {
    as_of: Option<i64>,
    rows: u64,
    purchases: u64,
    monetary: Sum,
    first: i64,
    last: i64,
}

/// Distinct order ids, exactly: ids of up to 15 bytes are packed into a u128 (length in
/// the top byte), longer ones are kept as bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderSet {
    short: HashSet<u128, FxBuildHasher>,
    long: HashSet<Box<[u8]>, FxBuildHasher>,
}

#[inline]
pub(super) fn pack(id: &[u8]) -> Option<u128> {
    if id.len() > 15 {
        return None;
    }
    let mut b = [0u8; 16];
    b[..id.len()].copy_from_slice(id);
    b[15] = id.len() as u8;
    Some(u128::from_le_bytes(b))
}

/// The bytes of an id packed by `pack`.
pub(super) fn unpack(p: u128) -> Box<[u8]> {
    let b = p.to_le_bytes();
    b[..b[15] as usize].into()
}

impl OrderSet {
    #[inline]
    pub(super) fn insert(&mut self, id: &[u8]) {
        match pack(id) {
            Some(p) => {
                self.short.insert(p);
            }
            None => {
                if !self.long.contains(id) {
                    self.long.insert(id.into());
                }
            }
        }
    }
    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub(super) fn merge(&mut self, other: &mut OrderSet) {
        if self.short.len() < other.short.len() {
            std::mem::swap(&mut self.short, &mut other.short);
        }
        self.short.extend(other.short.drain());
        self.long.extend(other.long.drain());
    }
    /// Every id, in increasing byte order.
    pub(super) fn sorted_ids(&self) -> Vec<Box<[u8]>> {
        let mut ids: Vec<Box<[u8]>> = self.short.iter().map(|p| unpack(*p)).chain(self.long.iter().cloned()).collect();
        ids.sort_unstable();
        ids
    }
}

/// The RFM state of one customer where rows are order lines: the core numbers plus the
/// distinct order ids of purchase lines.
#[derive(Clone, Debug, PartialEq)]
pub struct RfmLines {
    core: RfmCore,
    orders: OrderSet,
    /// The (packed) id seen last: order lines usually arrive together, so most rows skip
    /// the set. Two u64 halves rather than a u128, to keep the state 8-byte aligned (palloc).
    last: Option<[u64; 2]>,
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
pub(super) const TS_NOBEGIN: i64 = i64::MIN;
pub(super) const TS_NOEND: i64 = i64::MAX;
/// The range of finite timestamps PostgreSQL accepts (MIN_TIMESTAMP, END_TIMESTAMP).
pub(super) const TS_MIN: i64 = -211_813_488_000_000_000;
pub(super) const TS_END: i64 = 9_223_371_331_200_000_000;

pub(super) fn check_ts(what: &str, ts: i64) -> Result<(), CoreError> {
    if ts == TS_NOBEGIN || ts == TS_NOEND {
        Err(invalid(format!("{what} must be a finite timestamp, got infinity")))
    } else {
        Ok(())
    }
}

pub(super) fn check_amount(amount: f64) -> Result<(), CoreError> {
    if amount.is_finite() {
        Ok(())
    } else {
        Err(invalid(format!("amount must be a finite number, got {}", show(amount))))
    }
}

/// The summary of a group with `frequency` orders: `bought` when it has purchases (first and
/// last are theirs), monetary the net sum.
pub(super) fn summary(as_of: i64, bought: bool, first: i64, last: i64, monetary: f64, frequency: u64) -> RfmSummary {
    let frequency = frequency as i64;
    // In i128: as_of late in year 294276 minus a purchase in 4713 BC exceeds i64.
    let days = |ts: i64| (as_of as i128 - ts as i128) as f64 / USECS_PER_DAY;
    RfmSummary {
        recency: bought.then(|| days(last)),
        frequency,
        monetary,
        first_purchase: bought.then_some(first),
        last_purchase: bought.then_some(last),
        tenure: bought.then(|| days(first)),
        avg_order_value: (frequency > 0).then(|| monetary / frequency as f64),
    }
}

impl Default for RfmCore {
    fn default() -> Self {
        RfmCore { as_of: None, rows: 0, purchases: 0, monetary: Sum::default(), first: TS_NOEND, last: TS_NOBEGIN }
    }
}

impl RfmCore {
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    #[inline]
    fn set_as_of(&mut self, as_of: i64) -> Result<(), CoreError> {
        match self.as_of {
            Some(a) if a == as_of => Ok(()),
            Some(_) => Err(invalid("as_of must be the same for every row of a group")),
            None => {
                check_ts("as_of", as_of)?;
                self.as_of = Some(as_of);
                Ok(())
            }
        }
    }

    /// One transaction row; returns whether it is a purchase. A negative amount is a
    /// return: it lowers monetary and is not an order.
    #[inline]
    pub fn update(&mut self, ts: i64, amount: f64, as_of: i64) -> Result<bool, CoreError> {
        self.set_as_of(as_of)?;
        check_amount(amount)?;
        check_ts("order_ts", ts)?;
        if ts > as_of {
            return Err(
                invalid("a row's order_ts is later than as_of").hint("Filter the rows with order_ts <= as_of, or use a later as_of.")
            );
        }
        self.rows += 1;
        self.monetary.add(amount);
        let purchase = amount >= 0.0;
        if purchase {
            self.purchases += 1;
            self.first = self.first.min(ts);
            self.last = self.last.max(ts);
        }
        Ok(purchase)
    }

    fn merge_core(&mut self, other: &RfmCore) -> Result<(), CoreError> {
        if let Some(a) = other.as_of {
            self.set_as_of(a)?;
        }
        self.rows += other.rows;
        self.purchases += other.purchases;
        self.monetary.merge(&other.monetary);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        Ok(())
    }

    /// The summary with `frequency` orders (purchase rows, or distinct order ids).
    pub fn finalize_with(&self, frequency: u64) -> Option<RfmSummary> {
        if self.rows == 0 {
            return None;
        }
        let as_of = self.as_of?;
        Some(summary(as_of, self.purchases > 0, self.first, self.last, self.monetary.value(), frequency))
    }

    pub fn finalize(&self) -> Option<RfmSummary> {
        self.finalize_with(self.purchases)
    }

    fn write(&self, w: &mut Writer) {
        w.u8(self.as_of.is_some() as u8);
        w.i64(self.as_of.unwrap_or(0));
        w.u64(self.rows);
        w.u64(self.purchases);
        w.f64(self.monetary.sum);
        w.f64(self.monetary.comp);
        w.i64(self.first);
        w.i64(self.last);
    }

    fn read(r: &mut Reader<'_>) -> Result<RfmCore, CoreError> {
        let has_as_of = r.u8()?;
        if has_as_of > 1 {
            return Err(corrupt_state("flags"));
        }
        let as_of = r.i64()?;
        Ok(RfmCore {
            as_of: (has_as_of == 1).then_some(as_of),
            rows: r.u64()?,
            purchases: r.u64()?,
            monetary: Sum { sum: r.f64()?, comp: r.f64()? },
            first: r.i64()?,
            last: r.i64()?,
        })
    }
}

impl Partial for RfmCore {
    fn empty() -> Self {
        RfmCore::default()
    }
    fn merge(&mut self, other: &mut RfmCore) -> Result<(), CoreError> {
        self.merge_core(other)
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(64);
        self.write(&mut w);
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<RfmCore, CoreError> {
        let mut r = Reader::new(buf);
        let c = RfmCore::read(&mut r)?;
        r.finish()?;
        Ok(c)
    }
}

impl RfmLines {
    pub fn new() -> Self {
        RfmLines { core: RfmCore::default(), orders: OrderSet::default(), last: None }
    }

    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// One order line. Purchase lines (amount >= 0) add their order id.
    #[inline]
    pub fn update(&mut self, ts: i64, amount: f64, order_id: &[u8], as_of: i64) -> Result<(), CoreError> {
        if self.core.update(ts, amount, as_of)? {
            let packed = pack(order_id).map(|p| [p as u64, (p >> 64) as u64]);
            if packed.is_none() || packed != self.last {
                self.orders.insert(order_id);
                self.last = packed;
            }
        }
        Ok(())
    }

    pub fn finalize(&self) -> Option<RfmSummary> {
        self.core.finalize_with(self.orders.len() as u64)
    }

    fn write(&self, w: &mut Writer) {
        self.core.write(w);
        w.u64(self.orders.short.len() as u64);
        for p in &self.orders.short {
            w.buf.extend_from_slice(&p.to_le_bytes());
        }
        w.u64(self.orders.long.len() as u64);
        for id in &self.orders.long {
            w.bytes(id);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<RfmLines, CoreError> {
        let mut s = RfmLines { core: RfmCore::read(r)?, ..RfmLines::new() };
        let n = r.u64()?;
        for _ in 0..n {
            let (a, b) = (r.u64()?, r.u64()?);
            s.orders.short.insert((b as u128) << 64 | a as u128);
        }
        let n = r.u64()?;
        for _ in 0..n {
            s.orders.long.insert(r.bytes()?.into());
        }
        Ok(s)
    }
}

impl Default for RfmLines {
    fn default() -> Self {
        RfmLines::new()
    }
}

impl Partial for RfmLines {
    fn empty() -> Self {
        RfmLines::new()
    }
    /// `other`'s order ids are moved, not copied.
    fn merge(&mut self, other: &mut RfmLines) -> Result<(), CoreError> {
        self.core.merge_core(&other.core)?;
        self.orders.merge(&mut other.orders);
        self.last = None;
        Ok(())
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(80 + 16 * self.orders.short.len());
        self.write(&mut w);
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<RfmLines, CoreError> {
        let mut r = Reader::new(buf);
        let s = RfmLines::read(&mut r)?;
        r.finish()?;
        Ok(s)
    }
}

/// The RFM state of one customer's order lines counting each distinct line once: the
/// exact duplicate lines of raw retail data (the same line loaded twice) are dropped inside
/// the aggregate, so a whole history needs no `SELECT DISTINCT` first (a sort or hash of
/// every line, which spills to disk at PostgreSQL's default work_mem).
///
/// A line is (order id, timestamp, amount, line key). Each row appends the line's 128-bit
/// SipHash-1-3 and its amount; `compact` sorts them, drops repeated keys and recounts rows,
/// purchases and the amount from the distinct lines in key order, so the result does not
/// depend on the order rows came in or on how parallel workers split them (combining is
/// appending). Duplicates never change first or last purchase or the order ids. Two
/// different lines of one customer collide with probability about n^2 / 2^129 (below
/// 10^-26 for a million lines).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RfmUniqueLines {
    lines: RfmLines,
    /// One per row counted in `lines.core.rows`; sorted and distinct after `compact`.
    keys: Vec<LineKey>,
}

/// A line's 128-bit key (two halves, to keep 8-byte alignment: 24 bytes a line) and amount.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct LineKey {
    pub(super) hi: u64,
    pub(super) lo: u64,
    pub(super) amount: f64,
}

impl LineKey {
    /// The key of one line; the amount is kept with -0.0 as 0.0.
    #[inline]
    pub(super) fn new(ts: i64, amount: f64, order_id: &[u8], line: Option<&[u8]>) -> LineKey {
        let k = line_key(ts, amount, order_id, line);
        LineKey { hi: (k >> 64) as u64, lo: k as u64, amount: amount + 0.0 }
    }
}

/// Sorts line keys, drops repeated ones and returns (distinct lines, purchase lines, the
/// amounts summed in key order): the same numbers whatever order the lines came in.
pub(super) fn compact_lines(keys: &mut Vec<LineKey>) -> (u64, u64, Sum) {
    // Stable sort: it merges the sorted runs that combined states bring.
    keys.sort_by_key(|k| (k.hi, k.lo));
    keys.dedup_by_key(|k| (k.hi, k.lo));
    let mut monetary = Sum::default();
    for k in keys.iter() {
        monetary.add(k.amount);
    }
    (keys.len() as u64, keys.iter().filter(|k| k.amount >= 0.0).count() as u64, monetary)
}

/// The 128-bit key of one line. Lengths are written, so that no two different
/// (order id, line) pairs give the same bytes; a NULL line differs from every text.
#[inline]
pub(super) fn line_key(ts: i64, amount: f64, order_id: &[u8], line: Option<&[u8]>) -> u128 {
    let mut h = SipHasher13::new_with_keys(0x7066_5f72_666d_6c69, 0x6e65_735f_6b65_7973);
    // +0.0 makes -0.0 equal to 0.0, as the amounts compare in SQL.
    let amount = amount + 0.0;
    h.write(&ts.to_le_bytes());
    h.write(&amount.to_bits().to_le_bytes());
    h.write(&(order_id.len() as u64).to_le_bytes());
    h.write(order_id);
    match line {
        Some(l) => {
            h.write(&[1]);
            h.write(&(l.len() as u64).to_le_bytes());
            h.write(l);
        }
        None => h.write(&[0]),
    }
    h.finish128().as_u128()
}

impl RfmUniqueLines {
    pub fn new() -> Self {
        RfmUniqueLines::default()
    }

    /// One order line.
    #[inline]
    pub fn update(&mut self, ts: i64, amount: f64, order_id: &[u8], line: Option<&[u8]>, as_of: i64) -> Result<(), CoreError> {
        self.lines.update(ts, amount, order_id, as_of)?;
        self.keys.push(LineKey::new(ts, amount, order_id, line));
        Ok(())
    }

    /// Sorts the keys, drops repeated ones and recounts rows, purchases and monetary from
    /// the distinct lines, summed in key order. The state means the same before and after.
    pub fn compact(&mut self) {
        let core = &mut self.lines.core;
        (core.rows, core.purchases, core.monetary) = compact_lines(&mut self.keys);
    }

    pub fn finalize(&mut self) -> Option<RfmSummary> {
        self.compact();
        self.lines.finalize()
    }
}

impl Partial for RfmUniqueLines {
    fn empty() -> Self {
        RfmUniqueLines::new()
    }
    /// Appends `other`'s lines; lines both saw count once after `compact`.
    fn merge(&mut self, other: &mut RfmUniqueLines) -> Result<(), CoreError> {
        if self.keys.len() < other.keys.len() {
            std::mem::swap(self, other);
        }
        self.keys.append(&mut other.keys);
        self.lines.merge(&mut other.lines)
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(88 + 16 * self.lines.orders.short.len() + 24 * self.keys.len());
        self.lines.write(&mut w);
        w.u64(self.keys.len() as u64);
        for k in &self.keys {
            w.u64(k.hi);
            w.u64(k.lo);
            w.f64(k.amount);
        }
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<RfmUniqueLines, CoreError> {
        let mut r = Reader::new(buf);
        let lines = RfmLines::read(&mut r)?;
        let n = r.u64()?;
        if n != lines.core.rows || n > (buf.len() / 24) as u64 {
            return Err(corrupt_state("line count"));
        }
        let mut keys = Vec::with_capacity(n as usize);
        for _ in 0..n {
            keys.push(LineKey { hi: r.u64()?, lo: r.u64()?, amount: r.f64()? });
        }
        r.finish()?;
        Ok(RfmUniqueLines { lines, keys })
    }
    fn compact(&mut self) {
        RfmUniqueLines::compact(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn hand_worked_customer() {
        // Orders on day 0, 10 and 30; a return on day 31; as_of day 40.
        let mut s = RfmCore::default();
        s.update(0, 100.0, 40 * DAY).unwrap();
        s.update(10 * DAY, 50.0, 40 * DAY).unwrap();
        s.update(30 * DAY + DAY / 2, 25.0, 40 * DAY).unwrap();
        s.update(31 * DAY, -20.0, 40 * DAY).unwrap();
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
        let mut s = RfmLines::new();
        let long = "an order id longer than fifteen bytes";
        for (id, amt) in [("A", 1.0), ("A", 2.0), ("B", 3.0), ("A", 4.0), ("C", -1.0), ("B", 0.0), (long, 1.0), (long, 1.0), ("", 1.0)] {
            s.update(DAY, amt, id.as_bytes(), 2 * DAY).unwrap();
        }
        let f = s.finalize().unwrap();
        assert_eq!(f.frequency, 4, "A, B, the long id and the empty id; C is only a return");
        assert_eq!(f.monetary, 12.0);
        let back = RfmLines::deserialize(&s.serialize()).unwrap();
        assert_eq!(back.finalize(), s.finalize());
    }

    #[test]
    fn only_returns_and_empty() {
        assert!(RfmCore::default().finalize().is_none());
        assert!(RfmLines::new().finalize().is_none());
        let mut s = RfmCore::default();
        s.update(DAY, -5.0, 2 * DAY).unwrap();
        let f = s.finalize().unwrap();
        assert_eq!((f.recency, f.frequency, f.monetary, f.avg_order_value), (None, 0, -5.0, None));
    }

    #[test]
    fn bad_rows_are_errors() {
        let mut s = RfmCore::default();
        assert!(s.update(3 * DAY, 1.0, 2 * DAY).is_err(), "after as_of");
        assert!(s.update(DAY, f64::NAN, 2 * DAY).is_err());
        assert!(s.update(DAY, f64::INFINITY, 2 * DAY).is_err());
        assert!(s.update(i64::MIN, 1.0, 2 * DAY).is_err());
        assert!(RfmCore::default().update(DAY, 1.0, i64::MAX).is_err(), "as_of infinity");
        let mut t = RfmCore::default();
        t.update(DAY, 1.0, 2 * DAY).unwrap();
        assert!(t.update(DAY, 1.0, 3 * DAY).is_err(), "as_of changes within a group");
    }

    #[test]
    fn merge_and_serialize_equal_serial() {
        let rows: Vec<(i64, f64, String)> =
            (0..200).map(|i| ((i * 7919 % 365) as i64 * DAY, ((i * 31) % 97) as f64 - 10.0, format!("o{}", i % 37))).collect();
        let as_of = 400 * DAY;
        let mut serial = RfmLines::new();
        for (t, a, o) in &rows {
            serial.update(*t, *a, o.as_bytes(), as_of).unwrap();
        }
        for split in [0, 1, 50, 199, 200] {
            let mut a = RfmLines::new();
            let mut b = RfmLines::new();
            for (i, (t, am, o)) in rows.iter().enumerate() {
                let s = if i < split { &mut a } else { &mut b };
                s.update(*t, *am, o.as_bytes(), as_of).unwrap();
            }
            let mut b2 = RfmLines::deserialize(&b.serialize()).unwrap();
            let mut a2 = RfmLines::deserialize(&a.serialize()).unwrap();
            a2.merge(&mut b2).unwrap();
            let (x, y) = (a2.finalize().unwrap(), serial.finalize().unwrap());
            assert_eq!(x.frequency, y.frequency);
            assert_eq!(x.recency, y.recency);
            assert!((x.monetary - y.monetary).abs() < 1e-9);
        }
        assert!(RfmLines::deserialize(&[9]).is_err());
        assert!(RfmCore::deserialize(&[1, 2, 3]).is_err());
    }

    /// Lines with exact duplicates, the duplicates spread over partial states in every way:
    /// the merged summary equals RfmLines over the lines without duplicates (hand-deduplicated).
    #[test]
    fn unique_lines_drop_exact_duplicates_across_partials() {
        let as_of = 400 * DAY;
        // (ts, amount, order, line); line numbers 0-2, a few lines repeated.
        let distinct: Vec<(i64, f64, String, Option<String>)> = (0..120)
            .map(|i| {
                let line = if i % 11 == 0 { None } else { Some(format!("p{}", i % 3)) };
                ((i / 3 * 3) as i64 * DAY, ((i * 37) % 23) as f64 - 4.0 + 0.01 * i as f64, format!("o{}", i / 3), line)
            })
            .collect();
        let mut rows = distinct.clone();
        for i in (0..120).step_by(7) {
            rows.push(distinct[i].clone()); // an exact duplicate, later
        }
        rows.push(distinct[5].clone());
        rows.push(distinct[5].clone()); // three copies
        let mut want = RfmLines::new();
        for (t, a, o, _) in &distinct {
            want.update(*t, *a, o.as_bytes(), as_of).unwrap();
        }
        let want = want.finalize().unwrap();
        let mut one = RfmUniqueLines::new();
        for (t, a, o, l) in rows.iter().rev() {
            one.update(*t, *a, o.as_bytes(), l.as_deref().map(str::as_bytes), as_of).unwrap();
        }
        let want_keyed = one.finalize().unwrap().monetary;
        for stride in [1, 2, 3, 5] {
            let mut parts: Vec<RfmUniqueLines> = (0..stride).map(|_| RfmUniqueLines::new()).collect();
            for (i, (t, a, o, l)) in rows.iter().enumerate() {
                parts[i % stride].update(*t, *a, o.as_bytes(), l.as_deref().map(str::as_bytes), as_of).unwrap();
            }
            let mut all = RfmUniqueLines::new();
            for p in parts {
                let mut p = RfmUniqueLines::deserialize(&p.serialize()).unwrap();
                all.merge(&mut p).unwrap();
            }
            let got = all.finalize().unwrap();
            assert_eq!((got.frequency, got.recency, got.first_purchase), (want.frequency, want.recency, want.first_purchase));
            assert!((got.monetary - want.monetary).abs() < 1e-9, "{} vs {}", got.monetary, want.monetary);
            assert_eq!(all.lines.core.rows, distinct.len() as u64);
            assert_eq!(got.monetary, want_keyed, "the same bits however the rows were split");
        }
    }

    #[test]
    fn line_keys_tell_lines_apart() {
        let k = |o: &str, l: Option<&str>| line_key(DAY, 1.0, o.as_bytes(), l.map(str::as_bytes));
        assert_ne!(k("ab", Some("c")), k("a", Some("bc")), "lengths are part of the key");
        assert_ne!(k("a", None), k("a", Some("")), "NULL line differs from the empty text");
        assert_ne!(line_key(DAY, 1.0, b"a", None), line_key(DAY, 2.0, b"a", None));
        assert_ne!(line_key(DAY, 1.0, b"a", None), line_key(2 * DAY, 1.0, b"a", None));
        assert_eq!(line_key(DAY, 0.0, b"a", None), line_key(DAY, -0.0, b"a", None), "-0 = 0 as in SQL");
        // A damaged partial state: more keys than rows.
        let mut s = RfmUniqueLines::new();
        s.update(DAY, 1.0, b"a", None, 2 * DAY).unwrap();
        let mut b = s.serialize();
        let n = b.len();
        b[n - 24 - 8] = 2; // the key count, now more than the rows
        assert!(RfmUniqueLines::deserialize(&b).is_err());
    }
}
