//! Principal component analysis of the preprocessed rows: the eigenvectors of the sample
//! covariance matrix (cyclic Jacobi), largest variance first. Projections are centred and
//! not whitened, as scikit-learn's `PCA(whiten=False)`; each component's sign makes its
//! largest loading (in absolute value) positive, as scikit-learn's `svd_flip` does.

use serde::{Deserialize, Serialize};

use super::error::invalid;
use super::CoreError;

/// How many components to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Components {
    Count(usize),
    /// As many as explain more than this share of the variance (scikit-learn's float
    /// `n_components`: the smallest count whose cumulative ratio exceeds it).
    Variance(f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Mean of each preprocessed column, subtracted before projecting.
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub center: Vec<f64>,
    /// One row of loadings per component (length: the encoded columns).
    pub components: Vec<Vec<f64>>,
    /// Each component's share of the total variance.
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub variance_ratio: Vec<f64>,
    /// Each component's variance (sample variance, n - 1).
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub variance: Vec<f64>,
}

/// Eigenvalues (descending) and unit eigenvectors (rows) of the symmetric `a` (d x d).
pub fn symmetric_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..d).flat_map(|p| (0..d).filter(move |q| *q != p).map(move |q| (p, q))).map(|(p, q)| a[p * d + q].powi(2)).sum();
        if off.sqrt() <= 1e-15 * norm.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (a[p * d + p], a[q * d + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|x, y| a[y * d + y].total_cmp(&a[x * d + x]).then(x.cmp(y)));
    let values = order.iter().map(|i| a[i * d + i]).collect();
    let vectors = order.iter().map(|i| (0..d).map(|k| v[k * d + i]).collect()).collect();
    (values, vectors)
}

impl Pca {
    /// Fits on `data` (n rows of d).
    pub fn fit(data: &[f64], d: usize, want: Components, check: &mut dyn FnMut()) -> Result<Pca, CoreError> {
        let n = data.len() / d.max(1);
        if n < 2 {
            return Err(invalid("PCA needs at least 2 rows"));
        }
        let mut center = vec![0.0; d];
        for row in data.chunks_exact(d) {
            center.iter_mut().zip(row).for_each(|(c, x)| *c += x);
        }
        center.iter_mut().for_each(|c| *c /= n as f64);
        let mut cov = vec![0.0; d * d];
        let mut x = vec![0.0; d];
        for (i, row) in data.chunks_exact(d).enumerate() {
            if i % 65_536 == 0 {
                check();
            }
            x.iter_mut().zip(row.iter().zip(&center)).for_each(|(x, (r, c))| *x = r - c);
            for p in 0..d {
                let xp = x[p];
                if xp == 0.0 {
                    continue;
                }
                for q in p..d {
                    cov[p * d + q] += xp * x[q];
                }
            }
        }
        for p in 0..d {
            for q in p..d {
                cov[p * d + q] /= (n - 1) as f64;
                cov[q * d + p] = cov[p * d + q];
            }
        }
        let total: f64 = (0..d).map(|p| cov[p * d + p]).sum();
        if !(total > 0.0 && total.is_finite()) {
            return Err(invalid("PCA needs variation: every feature is constant after preprocessing"));
        }
        let (values, vectors) = symmetric_eigen(cov, d);
        let values: Vec<f64> = values.into_iter().map(|v| v.max(0.0)).collect();
        let ratio: Vec<f64> = values.iter().map(|v| v / total).collect();
        let p = match want {
            Components::Count(p) => {
                if p == 0 || p > d {
                    return Err(invalid(format!("pca must be between 1 and the number of encoded features ({d}), got {p}")));
                }
                p
            }
            Components::Variance(share) => {
                let mut cum = 0.0;
                let mut p = d;
                for (i, r) in ratio.iter().enumerate() {
                    cum += r;
                    if cum > share {
                        p = i + 1;
                        break;
                    }
                }
                p
            }
        };
        let components: Vec<Vec<f64>> = vectors
            .into_iter()
            .take(p)
            .map(|mut v| {
                let big = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
                if big < 0.0 {
                    v.iter_mut().for_each(|x| *x = -*x);
                }
                v
            })
            .collect();
        Ok(Pca { center, components, variance_ratio: ratio[..p].to_vec(), variance: values[..p].to_vec() })
    }

    pub fn dims(&self) -> usize {
        self.components.len()
    }

    /// Projects `x` (preprocessed, the encoded width) onto the components, into `out`.
    #[inline]
    pub fn project(&self, x: &[f64], out: &mut [f64]) {
        for (o, w) in out.iter_mut().zip(&self.components) {
            *o = w.iter().zip(x.iter().zip(&self.center)).map(|(w, (x, c))| w * (x - c)).sum();
        }
    }

    /// Back from the components to the preprocessed space (scikit-learn's inverse_transform).
    pub fn inverse(&self, z: &[f64]) -> Vec<f64> {
        let mut x = self.center.clone();
        for (zi, w) in z.iter().zip(&self.components) {
            x.iter_mut().zip(w).for_each(|(x, w)| *x += zi * w);
        }
        x
    }

    /// Projects every row (n rows of d) into a new flat matrix (n rows of `dims()`).
    pub fn transform(&self, data: &[f64], d: usize) -> Vec<f64> {
        let p = self.dims();
        let mut out = vec![0.0; data.len() / d.max(1) * p];
        for (row, o) in data.chunks_exact(d).zip(out.chunks_exact_mut(p)) {
            self.project(row, o);
        }
        out
    }

    /// Checks a stored PCA against `d` encoded columns.
    pub fn check(&self, d: usize, field: &str) -> Result<(), String> {
        let p = self.components.len();
        if p == 0 || p > d {
            return Err(format!("{field} has {p} components for {d} encoded features"));
        }
        if self.center.len() != d || self.center.iter().any(|x| !x.is_finite()) {
            return Err(format!("{field} center must have {d} finite values"));
        }
        if let Some(i) = self.components.iter().position(|w| w.len() != d || w.iter().any(|x| !x.is_finite())) {
            return Err(format!("{field} component {} must have {d} finite loadings", i + 1));
        }
        if self.variance_ratio.len() != p || self.variance_ratio.iter().any(|r| !(0.0..=1.0 + 1e-9).contains(r)) {
            return Err(format!("{field} variance ratios must be {p} values between 0 and 1"));
        }
        if self.variance.len() != p || self.variance.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(format!("{field} variances must be {p} finite non-negative values"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_by_two_by_hand() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1)/sqrt2 and (1, -1)/sqrt2.
        let (vals, vecs) = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        assert!((vals[0] - 3.0).abs() < 1e-14 && (vals[1] - 1.0).abs() < 1e-14);
        let h = 0.5f64.sqrt();
        assert!((vecs[0][0].abs() - h).abs() < 1e-14 && (vecs[0][0] - vecs[0][1]).abs() < 1e-14);
        assert!((vecs[1][0] + vecs[1][1]).abs() < 1e-14);
    }

    #[test]
    fn pca_of_points_on_a_line_plus_noise() {
        // Points (t, 2t) for t = -2..2 and a small orthogonal offset (+e, -e/2 alternating):
        // all variance but the offset's lies along (1, 2)/sqrt5.
        let mut data = Vec::new();
        for (i, t) in [-2.0, -1.0, 0.0, 1.0, 2.0].iter().enumerate() {
            let e = if i % 2 == 0 { 0.01 } else { -0.01 };
            data.extend([t + 2.0 * e, 2.0 * t - e]);
        }
        let p = Pca::fit(&data, 2, Components::Count(1), &mut || {}).unwrap();
        let s5 = 5f64.sqrt();
        assert!((p.components[0][0] - 1.0 / s5).abs() < 1e-4 && (p.components[0][1] - 2.0 / s5).abs() < 1e-4);
        // Variance along the line: sum of (t * sqrt5)^2 / (n - 1) = 5 * 10 / 4 = 12.5, nearly all of it.
        assert!((p.variance[0] - 12.5).abs() < 0.01, "{:?}", p.variance);
        assert!(p.variance_ratio[0] > 0.999);
        // Variance share 0.9 needs one component; 0.9999999 needs both.
        assert_eq!(Pca::fit(&data, 2, Components::Variance(0.9), &mut || {}).unwrap().dims(), 1);
        assert_eq!(Pca::fit(&data, 2, Components::Variance(0.9999999), &mut || {}).unwrap().dims(), 2);
        // Projection of the centre is 0; inverse of a projection lies on the line.
        let mut z = [1.0];
        p.project(&p.center.clone(), &mut z);
        assert!(z[0].abs() < 1e-12);
        let back = p.inverse(&[s5]);
        assert!(((back[1] - p.center[1]) - 2.0 * (back[0] - p.center[0])).abs() < 1e-3);
        assert!(Pca::fit(&data, 2, Components::Count(3), &mut || {}).is_err());
        assert!(p.check(2, "pca").is_ok() && p.check(3, "pca").is_err());
    }
}
