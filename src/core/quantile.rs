//! Exact quantiles with the same interpolation as PostgreSQL's `percentile_cont`,
//! IQR bounds, and RFM quantile breaks.

use super::codec::{Reader, Writer};
use super::error::{corrupt_state, invalid, out_of_range, show};
use super::{CoreError, Partial};

/// Positions of `percentile_cont(p)` over `n` sorted values: (lower index, upper index, fraction).
fn position(n: usize, p: f64) -> (usize, usize, f64) {
    let pos = p * (n - 1) as f64;
    let lo = pos.floor();
    let hi = pos.ceil();
    (lo as usize, hi as usize, pos - lo)
}

/// PostgreSQL's float8 interpolation (`float8_lerp` in orderedsetaggs.c), kept bit-for-bit.
fn lerp(lo: f64, hi: f64, frac: f64) -> f64 {
    if frac == 0.0 {
        lo
    } else {
        lo + (hi - lo) * frac
    }
}

/// The values at the given ascending, de-duplicated ranks, found by repeated selection
/// (O(n) per rank) instead of a full sort. Reorders `values`.
fn order_statistics(values: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(ranks.len());
    let mut start = 0usize;
    for &r in ranks {
        let slice = &mut values[start..];
        let (_, v, _) = slice.select_nth_unstable_by(r - start, f64::total_cmp);
        out.push(*v);
        start = r;
    }
    out
}

/// `percentile_cont` for each of `ps` (each in [0, 1]) over finite `values`.
/// Returns `None` for an empty input. Reorders `values`.
pub fn percentiles(values: &mut [f64], ps: &[f64]) -> Option<Vec<f64>> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mut ranks: Vec<usize> = ps
        .iter()
        .flat_map(|&p| {
            let (lo, hi, _) = position(n, p);
            [lo, hi]
        })
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let stats = order_statistics(values, &ranks);
    let at = |r: usize| stats[ranks.binary_search(&r).unwrap_or(0)];
    Some(
        ps.iter()
            .map(|&p| {
                let (lo, hi, frac) = position(n, p);
                lerp(at(lo), at(hi), frac)
            })
            .collect(),
    )
}

/// Checks that a value fed to a quantile aggregate is usable.
pub fn check_finite(what: &str, x: f64) -> Result<(), CoreError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(invalid(format!("{what} must be a finite number, got {}", show(x))))
    }
}

/// The IQR multiplier (`k`, 1.5 by default) must be a finite, non-negative number.
pub fn check_iqr_k(k: f64) -> Result<(), CoreError> {
    if k.is_finite() && k >= 0.0 {
        Ok(())
    } else {
        Err(invalid(format!("k must be a finite number >= 0, got {}", show(k))))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IqrBounds {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub iqr: f64,
    pub lower: f64,
    pub upper: f64,
    pub n: u64,
    pub k: f64,
}

impl IqrBounds {
    pub fn compute(values: &mut [f64], k: f64) -> Option<IqrBounds> {
        let q = percentiles(values, &[0.25, 0.5, 0.75])?;
        let iqr = q[2] - q[0];
        Some(IqrBounds { q1: q[0], median: q[1], q3: q[2], iqr, lower: q[0] - k * iqr, upper: q[2] + k * iqr, n: values.len() as u64, k })
    }

    pub fn clip(&self, x: f64) -> f64 {
        x.max(self.lower).min(self.upper)
    }

    pub fn is_outlier(&self, x: f64) -> bool {
        x < self.lower || x > self.upper
    }
}

/// Smallest and largest number of score classes `rfm_breaks` accepts.
pub const MIN_CLASSES: i32 = 2;
pub const MAX_CLASSES: i32 = 100;

/// `what` names the argument in the message, e.g. `rfm_breaks: n`.
pub fn check_classes(what: &str, n: i32) -> Result<(), CoreError> {
    if (MIN_CLASSES..=MAX_CLASSES).contains(&n) {
        Ok(())
    } else {
        Err(invalid(format!("{what} must be between {MIN_CLASSES} and {MAX_CLASSES}, got {n}")))
    }
}

/// The `n - 1` inner cut points at probabilities 1/n, 2/n, ... (n-1)/n.
pub fn breaks(values: &mut [f64], n: i32) -> Option<Vec<f64>> {
    let ps: Vec<f64> = (1..n).map(|i| i as f64 / n as f64).collect();
    percentiles(values, &ps)
}

/// A parameter that must be the same on every row of a group (`k`, `n`).
fn same<T: PartialEq + Copy + std::fmt::Display>(slot: &mut Option<T>, v: T, what: &str) -> Result<(), CoreError> {
    match *slot {
        Some(old) if old != v => Err(invalid(format!("{what} must be the same for every row of a group ({old} then {v})"))),
        Some(_) => Ok(()),
        None => {
            *slot = Some(v);
            Ok(())
        }
    }
}

/// State of `iqr_bounds`: every value of the group (exact quantiles need them all).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IqrState {
    pub values: Vec<f64>,
    pub k: Option<f64>,
}

impl IqrState {
    #[inline]
    pub fn update(&mut self, x: f64, k: f64) -> Result<(), CoreError> {
        if self.k != Some(k) {
            check_iqr_k(k)?;
            same(&mut self.k, k, "k")?;
        }
        check_finite("x", x)?;
        self.values.push(x);
        Ok(())
    }

    /// The bounds; an error when they overflow float8 (values near ±1e308).
    pub fn finalize(&mut self) -> Result<Option<IqrBounds>, CoreError> {
        let b = IqrBounds::compute(&mut self.values, self.k.unwrap_or(1.5));
        if let Some(b) = &b {
            if [b.q1, b.median, b.q3, b.iqr, b.lower, b.upper].iter().any(|v| !v.is_finite()) {
                return Err(out_of_range("result is out of range for float8"));
            }
        }
        Ok(b)
    }
}

impl Partial for IqrState {
    fn empty() -> Self {
        IqrState::default()
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), CoreError> {
        if let Some(k) = other.k {
            same(&mut self.k, k, "k")?;
        }
        if self.values.len() < other.values.len() {
            std::mem::swap(&mut self.values, &mut other.values);
        }
        self.values.append(&mut other.values);
        Ok(())
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(24 + 8 * self.values.len());
        w.u8(self.k.is_some() as u8);
        w.f64(self.k.unwrap_or(0.0));
        w.f64s(&self.values);
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<Self, CoreError> {
        let mut r = Reader::new(buf);
        let has_k = r.u8()? != 0;
        let k = r.f64()?;
        let values = r.f64s()?;
        r.finish()?;
        Ok(IqrState { values, k: has_k.then_some(k) })
    }
}

/// State of `rfm_breaks`: the non-NULL values of each of R, F and M.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BreaksState {
    pub recency: Vec<f64>,
    pub frequency: Vec<f64>,
    pub monetary: Vec<f64>,
    pub n: Option<i32>,
}

impl BreaksState {
    #[inline]
    pub fn update(&mut self, r: Option<f64>, f: Option<f64>, m: Option<f64>, n: i32) -> Result<(), CoreError> {
        if self.n != Some(n) {
            check_classes("n", n)?;
            same(&mut self.n, n, "n")?;
        }
        for (name, v, col) in
            [("recency", r, &mut self.recency), ("frequency", f, &mut self.frequency), ("monetary", m, &mut self.monetary)]
        {
            if let Some(v) = v {
                check_finite(name, v)?;
                col.push(v);
            }
        }
        Ok(())
    }

    /// The number of classes and the cut points of recency, frequency and monetary; a
    /// feature with no values gets `None`. An error when a cut point overflows float8
    /// (values near ±1e308).
    pub fn finalize(&mut self) -> Result<(i32, [Cuts; 3]), CoreError> {
        let n = self.n.unwrap_or(5);
        let cuts = [breaks(&mut self.recency, n), breaks(&mut self.frequency, n), breaks(&mut self.monetary, n)];
        if cuts.iter().flatten().flatten().any(|v| !v.is_finite()) {
            return Err(out_of_range("a cut point is out of range for float8"));
        }
        Ok((n, cuts))
    }
}

/// The n - 1 cut points of one feature, `None` when it had no values.
pub type Cuts = Option<Vec<f64>>;

impl Partial for BreaksState {
    fn empty() -> Self {
        BreaksState::default()
    }
    fn merge(&mut self, other: &mut Self) -> Result<(), CoreError> {
        if let Some(n) = other.n {
            same(&mut self.n, n, "n")?;
        }
        for (mine, theirs) in [
            (&mut self.recency, &mut other.recency),
            (&mut self.frequency, &mut other.frequency),
            (&mut self.monetary, &mut other.monetary),
        ] {
            if mine.len() < theirs.len() {
                std::mem::swap(mine, theirs);
            }
            mine.append(theirs);
        }
        Ok(())
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let len = self.recency.len() + self.frequency.len() + self.monetary.len();
        let mut w = Writer { buf: std::mem::take(out) };
        w.buf.reserve(48 + 8 * len);
        w.i64(self.n.map_or(-1, i64::from));
        w.f64s(&self.recency);
        w.f64s(&self.frequency);
        w.f64s(&self.monetary);
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<Self, CoreError> {
        let mut r = Reader::new(buf);
        let n = r.i64()?;
        let n = if n < 0 { None } else { Some(i32::try_from(n).map_err(|_| corrupt_state("n"))?) };
        let s = BreaksState { recency: r.f64s()?, frequency: r.f64s()?, monetary: r.f64s()?, n };
        r.finish()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: sort, then the textbook definition of percentile_cont.
    fn reference(values: &[f64], p: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let pos = p * (v.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        if lo == hi {
            v[lo]
        } else {
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        }
    }

    #[test]
    fn hand_worked_quartiles() {
        // 1..=8: positions 1.75, 3.5, 5.25 -> 2.75, 4.5, 6.25
        let mut v: Vec<f64> = (1..=8).rev().map(f64::from).collect();
        let b = IqrBounds::compute(&mut v, 1.5).unwrap();
        assert_eq!((b.q1, b.median, b.q3), (2.75, 4.5, 6.25));
        assert_eq!(b.iqr, 3.5);
        assert_eq!((b.lower, b.upper), (2.75 - 5.25, 6.25 + 5.25));
        assert_eq!(b.n, 8);
        assert_eq!(b.clip(100.0), b.upper);
        assert!(b.is_outlier(-3.0) && !b.is_outlier(4.0));
    }

    #[test]
    fn one_and_two_rows() {
        let b = IqrBounds::compute(&mut [3.0], 1.5).unwrap();
        assert_eq!((b.q1, b.median, b.q3, b.iqr), (3.0, 3.0, 3.0, 0.0));
        let b = IqrBounds::compute(&mut [10.0, 2.0], 1.5).unwrap();
        assert_eq!((b.q1, b.median, b.q3), (4.0, 6.0, 8.0));
        assert!(IqrBounds::compute(&mut [], 1.5).is_none());
    }

    #[test]
    fn matches_sort_reference_with_ties() {
        let mut seed = 12345u64;
        for len in [1usize, 2, 3, 4, 5, 7, 10, 33, 100, 1001] {
            let data: Vec<f64> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 33) % 17) as f64 * 0.5 // many ties
                })
                .collect();
            let ps = [0.0, 0.1, 0.2, 0.25, 0.5, 0.6, 0.75, 0.8, 1.0];
            let got = percentiles(&mut data.clone(), &ps).unwrap();
            for (p, g) in ps.iter().zip(got) {
                assert_eq!(g, reference(&data, *p), "len {len} p {p}");
            }
        }
    }

    #[test]
    fn breaks_and_class_limits() {
        let mut v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(breaks(&mut v, 5).unwrap(), vec![3.0, 5.0, 7.0, 9.0]);
        assert!(check_classes("n", 1).is_err() && check_classes("n", 101).is_err() && check_classes("n", 5).is_ok());
        assert!(check_iqr_k(-1.0).is_err() && check_iqr_k(f64::NAN).is_err() && check_iqr_k(0.0).is_ok());
    }

    #[test]
    fn states_merge_in_any_split() {
        let data: Vec<f64> = (0..97).map(|i| ((i * 37) % 23) as f64).collect();
        let mut serial = IqrState::default();
        data.iter().for_each(|x| serial.update(*x, 1.5).unwrap());
        let want = serial.finalize().unwrap().unwrap();
        for split in [0, 1, 40, 96, 97] {
            let (mut a, mut b) = (IqrState::default(), IqrState::default());
            data[..split].iter().for_each(|x| a.update(*x, 1.5).unwrap());
            data[split..].iter().for_each(|x| b.update(*x, 1.5).unwrap());
            let mut b = IqrState::deserialize(&b.serialize()).unwrap();
            let mut a = IqrState::deserialize(&a.serialize()).unwrap();
            b.merge(&mut a).unwrap();
            assert_eq!(b.finalize().unwrap().unwrap(), want);
        }
        let mut a = IqrState::default();
        a.update(1.0, 1.5).unwrap();
        assert!(a.update(2.0, 3.0).is_err(), "k changes within a group");
        assert!(a.update(f64::NAN, 1.5).is_err());
        let mut b = IqrState::default();
        b.update(1.0, 3.0).unwrap();
        assert!(a.merge(&mut b).is_err());
    }

    #[test]
    fn breaks_state_skips_nulls_per_feature() {
        let mut s = BreaksState::default();
        for i in 1..=11 {
            s.update(if i % 2 == 0 { None } else { Some(i as f64) }, Some(i as f64), None, 5).unwrap();
        }
        let (n, [r, f, m]) = s.finalize().unwrap();
        assert_eq!(n, 5);
        // recency holds 1,3,5,7,9,11: positions 1,2,3,4 of 0..5 -> 3,5,7,9
        assert_eq!(r.unwrap(), vec![3.0, 5.0, 7.0, 9.0]);
        assert_eq!(f.unwrap(), vec![3.0, 5.0, 7.0, 9.0]);
        assert!(m.is_none());
        assert!(BreaksState::default().update(Some(1.0), None, None, 1).is_err());
        let mut t = BreaksState::deserialize(&s.serialize()).unwrap();
        assert_eq!(t.finalize().unwrap().1[0], Some(vec![3.0, 5.0, 7.0, 9.0]));
        let mut huge = IqrState::default();
        huge.update(-1e308, 1.5).unwrap();
        huge.update(1e308, 1.5).unwrap();
        assert!(matches!(huge.finalize(), Err(e) if e.kind == crate::core::error::Kind::OutOfRange));
    }
}
