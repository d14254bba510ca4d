//! Preprocessing fitted on training rows and applied at assignment: IQR outlier handling,
//! log transform, standardization. Rows are flat: `data[i * d + j]` is feature `j` of row `i`.

use serde::{Deserialize, Serialize};

use super::error::invalid;
use super::quantile::IqrBounds;
use super::CoreError;

/// The IQR multiplier used for outlier handling in training (Tukey's 1.5).
pub const OUTLIER_K: f64 = 1.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outliers {
    /// Cap every value into the IQR fences (winsorize), in training and in assignment.
    Clip,
    /// Leave outlying rows out of training; assignment caps them into the fences.
    Drop,
    /// Leave values as they are.
    Keep,
}

impl Outliers {
    pub fn parse(s: &str) -> Result<Outliers, CoreError> {
        match s {
            "clip" => Ok(Outliers::Clip),
            "drop" => Ok(Outliers::Drop),
            "keep" => Ok(Outliers::Keep),
            _ => Err(invalid(format!("outliers must be 'clip', 'drop' or 'keep', got '{s}'"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Outliers::Clip => "clip",
            Outliers::Drop => "drop",
            Outliers::Keep => "keep",
        }
    }
}

/// Fitted preprocessing for `d` features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub outliers: Outliers,
    /// IQR fences per feature (-inf/+inf when outliers = keep).
    #[serde(deserialize_with = "super::serde_f64::lower_fence")]
    pub lower: Vec<f64>,
    #[serde(deserialize_with = "super::serde_f64::upper_fence")]
    pub upper: Vec<f64>,
    /// Signed log1p per feature: sign(x) * ln(1 + |x|), equal to ln(1 + x) for x >= 0.
    pub log: Vec<bool>,
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub mean: Vec<f64>,
    /// Population standard deviation (as scikit-learn's StandardScaler); 1 for a constant
    /// feature or when standardization is off.
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub scale: Vec<f64>,
}

#[inline]
pub fn slog1p(x: f64) -> f64 {
    if x >= 0.0 {
        x.ln_1p()
    } else {
        -(-x).ln_1p()
    }
}

#[inline]
pub fn sexpm1(y: f64) -> f64 {
    if y >= 0.0 {
        y.exp_m1()
    } else {
        -(-y).exp_m1()
    }
}

impl Scaler {
    pub fn dims(&self) -> usize {
        self.mean.len()
    }

    /// Fits on `raw` (n rows of `d`, original units). Returns the scaler and which rows
    /// training keeps (all of them unless `Outliers::Drop`).
    pub fn fit(raw: &[f64], d: usize, outliers: Outliers, log: Vec<bool>, standardize: bool) -> Result<(Scaler, Vec<bool>), CoreError> {
        Scaler::fit_with(raw, d, outliers, log, standardize, &vec![false; d])
    }

    /// As `fit`, leaving the columns flagged in `unfenced` (the 0/1 columns of categorical
    /// features) without IQR fences: a rare level's 1s are not outliers.
    pub fn fit_with(
        raw: &[f64],
        d: usize,
        outliers: Outliers,
        log: Vec<bool>,
        standardize: bool,
        unfenced: &[bool],
    ) -> Result<(Scaler, Vec<bool>), CoreError> {
        let n = raw.len() / d;
        if n == 0 {
            return Err(invalid("no rows to train on"));
        }
        let (mut lower, mut upper) = (vec![f64::NEG_INFINITY; d], vec![f64::INFINITY; d]);
        if outliers != Outliers::Keep {
            let mut col = Vec::with_capacity(n);
            for j in (0..d).filter(|j| !unfenced.get(*j).copied().unwrap_or(false)) {
                col.clear();
                col.extend(raw.iter().skip(j).step_by(d));
                if let Some(b) = IqrBounds::compute(&mut col, OUTLIER_K) {
                    lower[j] = b.lower;
                    upper[j] = b.upper;
                }
            }
        }
        let keep: Vec<bool> = raw
            .chunks_exact(d)
            .map(|row| outliers != Outliers::Drop || row.iter().enumerate().all(|(j, x)| *x >= lower[j] && *x <= upper[j]))
            .collect();
        let kept = keep.iter().filter(|k| **k).count();
        if kept == 0 {
            return Err(invalid("outliers => 'drop' left no rows to train on"));
        }
        let mut s = Scaler { outliers, lower, upper, log, mean: vec![0.0; d], scale: vec![1.0; d] };
        if standardize {
            // Two passes over the clipped, logged values of the kept rows.
            let mut tmp = vec![0.0; d];
            let mut sum = vec![0.0; d];
            for row in raw.chunks_exact(d).zip(&keep).filter(|(_, k)| **k).map(|(r, _)| r) {
                tmp.copy_from_slice(row);
                s.clip_log(&mut tmp);
                sum.iter_mut().zip(&tmp).for_each(|(a, v)| *a += v);
            }
            let mean: Vec<f64> = sum.iter().map(|v| v / kept as f64).collect();
            let mut var = vec![0.0; d];
            for row in raw.chunks_exact(d).zip(&keep).filter(|(_, k)| **k).map(|(r, _)| r) {
                tmp.copy_from_slice(row);
                s.clip_log(&mut tmp);
                var.iter_mut().zip(tmp.iter().zip(&mean)).for_each(|(a, (v, m))| *a += (v - m) * (v - m));
            }
            for j in 0..d {
                let v = var[j] / kept as f64;
                s.mean[j] = mean[j];
                s.scale[j] = if v > 0.0 && v.is_finite() { v.sqrt() } else { 1.0 };
            }
        }
        Ok((s, keep))
    }

    /// Fits on `data`, drops the rows training leaves out, and transforms the rest in place.
    pub fn fit_transform(
        data: &mut Vec<f64>,
        d: usize,
        outliers: Outliers,
        log: Vec<bool>,
        standardize: bool,
    ) -> Result<Scaler, CoreError> {
        let (s, keep) = Scaler::fit(data, d, outliers, log, standardize)?;
        retain_rows(data, d, &keep);
        for row in data.chunks_exact_mut(d) {
            s.transform(row);
        }
        Ok(s)
    }

    #[inline]
    fn clip_log(&self, row: &mut [f64]) {
        for (j, x) in row.iter_mut().enumerate() {
            if self.outliers != Outliers::Keep {
                *x = x.clamp(self.lower[j], self.upper[j]);
            }
            if self.log[j] {
                *x = slog1p(*x);
            }
        }
    }

    /// Original units -> the space the centroids live in.
    #[inline]
    pub fn transform(&self, row: &mut [f64]) {
        self.clip_log(row);
        for (j, x) in row.iter_mut().enumerate() {
            *x = (*x - self.mean[j]) / self.scale[j];
        }
    }

    /// Scaled space -> original units (of the clipped data).
    pub fn inverse(&self, row: &mut [f64]) {
        for (j, x) in row.iter_mut().enumerate() {
            *x = *x * self.scale[j] + self.mean[j];
            if self.log[j] {
                *x = sexpm1(*x);
            }
        }
    }
}

/// Lexicographic order of two rows by value (`total_cmp`, so the order is total).
fn cmp_rows(a: &[f64], b: &[f64]) -> std::cmp::Ordering {
    a.iter().zip(b).map(|(x, y)| x.total_cmp(y)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
}

fn sort_fixed<const D: usize>(data: &mut [f64]) {
    let (rows, _) = data.as_chunks_mut::<D>();
    rows.sort_unstable_by(|a, b| cmp_rows(a, b));
}

/// Sorts the rows of `data` (n rows of `d`) into one canonical order, lexicographic by
/// value. Training starts from it, so the rows' physical order (a table rewritten, shards
/// answering in any order) cannot change the model: rows that compare equal are equal
/// bit for bit. In place for up to 8 features.
pub fn sort_rows(data: &mut Vec<f64>, d: usize) {
    match d {
        0 => {}
        1 => data.sort_unstable_by(|a, b| a.total_cmp(b)),
        2 => sort_fixed::<2>(data),
        3 => sort_fixed::<3>(data),
        4 => sort_fixed::<4>(data),
        5 => sort_fixed::<5>(data),
        6 => sort_fixed::<6>(data),
        7 => sort_fixed::<7>(data),
        8 => sort_fixed::<8>(data),
        _ => {
            let mut order: Vec<usize> = (0..data.len() / d).collect();
            order.sort_unstable_by(|a, b| cmp_rows(&data[a * d..(a + 1) * d], &data[b * d..(b + 1) * d]));
            let sorted: Vec<f64> = order.iter().flat_map(|i| data[i * d..(i + 1) * d].iter().copied()).collect();
            *data = sorted;
        }
    }
}

/// Keeps the rows of `data` whose `keep` flag is set, in order.
pub fn retain_rows(data: &mut Vec<f64>, d: usize, keep: &[bool]) {
    let mut w = 0;
    for (i, k) in keep.iter().enumerate() {
        if *k {
            data.copy_within(i * d..(i + 1) * d, w * d);
            w += 1;
        }
    }
    data.truncate(w * d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardize_by_hand() {
        // Feature 0: 1, 2, 3 -> mean 2, population sd sqrt(2/3); feature 1 constant.
        let mut data = vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0];
        let s = Scaler::fit_transform(&mut data, 2, Outliers::Keep, vec![false, false], true).unwrap();
        let sd = (2.0f64 / 3.0).sqrt();
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert!((s.scale[0] - sd).abs() < 1e-15);
        assert_eq!(s.scale[1], 1.0, "constant feature keeps scale 1");
        assert!((data[0] + 1.0 / sd).abs() < 1e-12 && data[2] == 0.0 && data[1] == 0.0);
        let mut row = [3.0, 5.0];
        s.transform(&mut row);
        assert!((row[0] - 1.0 / sd).abs() < 1e-12);
        s.inverse(&mut row);
        assert!((row[0] - 3.0).abs() < 1e-12 && row[1] == 5.0);
    }

    #[test]
    fn clip_drop_and_log() {
        // 1..=8 and one outlier 100: sorted positions 2 and 6 of 0..8 give q1 = 3, q3 = 7,
        // iqr 4, fences 3 - 6 = -3 and 7 + 6 = 13.
        let base: Vec<f64> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0];
        let mut data = base.clone();
        let s = Scaler::fit_transform(&mut data, 1, Outliers::Clip, vec![false], false).unwrap();
        assert_eq!((s.lower[0], s.upper[0]), (-3.0, 13.0));
        assert_eq!(data[8], 13.0);
        let mut data = base.clone();
        Scaler::fit_transform(&mut data, 1, Outliers::Drop, vec![false], false).unwrap();
        assert_eq!(data.len(), 8);
        let mut data = base;
        let s = Scaler::fit_transform(&mut data, 1, Outliers::Keep, vec![true], false).unwrap();
        assert!((data[8] - 101f64.ln()).abs() < 1e-12);
        let mut row = [-3.0];
        s.transform(&mut row);
        assert!((row[0] + 4f64.ln()).abs() < 1e-12, "signed log keeps negatives finite");
        s.inverse(&mut row);
        assert!((row[0] + 3.0).abs() < 1e-12);
    }

    #[test]
    fn rows_sort_into_one_order() {
        // Hand-worked: rows (2, 1), (1, 5), (1, 3), (-0.0, 9), (0.0, 0) sort by the first
        // value, then the second; -0 comes before +0 (total order).
        let mut data = vec![2.0, 1.0, 1.0, 5.0, 1.0, 3.0, 0.0, 0.0, -0.0, 9.0];
        sort_rows(&mut data, 2);
        assert_eq!(data, vec![-0.0, 9.0, 0.0, 0.0, 1.0, 3.0, 1.0, 5.0, 2.0, 1.0]);
        assert!(data[0].is_sign_negative());
        // Wide rows (more than 8 features) take the general path: same answer as by hand.
        let rows: Vec<Vec<f64>> = vec![vec![3.0; 10], vec![1.0; 10], vec![2.0; 10]];
        let mut wide: Vec<f64> = rows.concat();
        sort_rows(&mut wide, 10);
        assert_eq!(wide, [vec![1.0; 10], vec![2.0; 10], vec![3.0; 10]].concat());
    }

    #[test]
    fn options() {
        assert_eq!(Outliers::parse("drop").unwrap(), Outliers::Drop);
        assert!(Outliers::parse("DROP").is_err());
        let mut empty: Vec<f64> = vec![];
        assert!(Scaler::fit_transform(&mut empty, 3, Outliers::Clip, vec![false; 3], true).is_err());
    }
}
