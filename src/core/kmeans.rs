//! KMeans: greedy k-means++ initialisation (as scikit-learn) and a tight Lloyd loop over
//! flat rows, best of `n_init` runs. Deterministic for a given seed.

use super::error::invalid;
use super::rng::Rng;
use super::CoreError;

#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub k: usize,
    pub n_init: usize,
    pub max_iter: usize,
    /// Relative tolerance: training stops when the centroids move (sum of squared shifts)
    /// less than `tolerance` times the mean per-feature variance of the data.
    pub tolerance: f64,
    pub seed: u64,
}

impl Params {
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.k < 2 {
            return Err(invalid(format!("k must be at least 2, got {}", self.k)));
        }
        if self.n_init < 1 || self.n_init > 1000 {
            return Err(invalid(format!("n_init must be between 1 and 1000, got {}", self.n_init)));
        }
        if self.max_iter < 1 || self.max_iter > 100_000 {
            return Err(invalid(format!("max_iter must be between 1 and 100000, got {}", self.max_iter)));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(invalid(format!("tolerance must be a finite number >= 0, got {}", self.tolerance)));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// k rows of d.
    pub centroids: Vec<f64>,
    pub labels: Vec<u32>,
    pub inertia: f64,
    pub iterations: usize,
}

#[inline(always)]
fn dist2(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// Index and squared distance of the centroid nearest to `x` (lowest index on ties).
#[inline(always)]
pub fn nearest(x: &[f64], centroids: &[f64], d: usize) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, cent) in centroids.chunks_exact(d).enumerate() {
        let dd = dist2(x, cent);
        if dd < best.1 {
            best = (c, dd);
        }
    }
    best
}

/// Greedy k-means++ (scikit-learn's variant: 2 + ln k candidates per step, keep the one
/// that lowers the potential most).
fn kmeans_pp(data: &[f64], d: usize, k: usize, rng: &mut Rng) -> Result<Vec<f64>, CoreError> {
    let n = data.len() / d;
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let mut centers = Vec::with_capacity(k * d);
    centers.extend_from_slice(row(rng.below(n as u64) as usize));
    let mut closest: Vec<f64> = (0..n).map(|i| dist2(row(i), &centers[..d])).collect();
    let mut potential: f64 = closest.iter().sum();
    let trials = 2 + (k as f64).ln() as usize;
    let mut cumulative = vec![0.0; n];
    let mut candidate_dist = vec![0.0; n];
    let mut best_dist = vec![0.0; n];
    for c in 1..k {
        if potential <= 0.0 {
            return Err(invalid(format!("k = {k} is more than the {c} distinct points in the data")));
        }
        let mut acc = 0.0;
        for (cum, v) in cumulative.iter_mut().zip(&closest) {
            acc += v;
            *cum = acc;
        }
        let mut best: Option<(usize, f64)> = None;
        for _ in 0..trials {
            let target = rng.f64() * acc;
            let cand = cumulative.partition_point(|v| *v <= target).min(n - 1);
            let mut pot = 0.0;
            for (i, (cd, cl)) in candidate_dist.iter_mut().zip(&closest).enumerate() {
                *cd = cl.min(dist2(row(i), row(cand)));
                pot += *cd;
            }
            if best.is_none_or(|(_, p)| pot < p) {
                best = Some((cand, pot));
                std::mem::swap(&mut best_dist, &mut candidate_dist);
            }
        }
        let Some((cand, pot)) = best else { unreachable!("at least two trials") };
        centers.extend_from_slice(row(cand));
        std::mem::swap(&mut closest, &mut best_dist);
        potential = pot;
    }
    Ok(centers)
}

/// Mean over features of the population variance: scikit-learn's tolerance scale.
fn mean_variance(data: &[f64], d: usize) -> f64 {
    let n = (data.len() / d) as f64;
    (0..d)
        .map(|j| {
            let mean = data.iter().skip(j).step_by(d).sum::<f64>() / n;
            data.iter().skip(j).step_by(d).map(|x| (x - mean).powi(2)).sum::<f64>() / n
        })
        .sum::<f64>()
        / d as f64
}

/// Assigns every row to its nearest centroid; returns the inertia. Fills per-cluster sums
/// and counts when given.
fn assign(data: &[f64], d: usize, centroids: &[f64], labels: &mut [u32], sums: &mut [f64], counts: &mut [u64]) -> (f64, bool) {
    sums.iter_mut().for_each(|s| *s = 0.0);
    counts.iter_mut().for_each(|c| *c = 0);
    let mut inertia = 0.0;
    let mut changed = false;
    for (x, label) in data.chunks_exact(d).zip(labels.iter_mut()) {
        let (c, dd) = nearest(x, centroids, d);
        inertia += dd;
        changed |= *label != c as u32;
        *label = c as u32;
        counts[c] += 1;
        for (s, v) in sums[c * d..(c + 1) * d].iter_mut().zip(x) {
            *s += v;
        }
    }
    (inertia, changed)
}

/// One Lloyd run from the given initial centroids.
fn lloyd(data: &[f64], d: usize, mut centroids: Vec<f64>, p: &Params, tol: f64, check: &mut dyn FnMut()) -> Fit {
    let n = data.len() / d;
    let k = centroids.len() / d;
    let mut labels = vec![u32::MAX; n];
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0u64; k];
    let mut iterations = 0;
    while iterations < p.max_iter {
        check();
        iterations += 1;
        let (_, changed) = assign(data, d, &centroids, &mut labels, &mut sums, &mut counts);
        if !changed {
            break;
        }
        let mut shift = 0.0;
        for c in 0..k {
            let cent = &mut centroids[c * d..(c + 1) * d];
            if counts[c] == 0 {
                // An empty cluster takes the row farthest from its own centroid.
                let far = farthest(data, d, &sums, &counts, &labels);
                cent.copy_from_slice(&data[far * d..(far + 1) * d]);
                shift = f64::INFINITY;
                continue;
            }
            for (j, v) in cent.iter_mut().enumerate() {
                let new = sums[c * d + j] / counts[c] as f64;
                shift += (new - *v) * (new - *v);
                *v = new;
            }
        }
        if shift <= tol {
            break;
        }
    }
    // Final assignment against the final centroids, so labels are nearest-centroid labels.
    let (inertia, _) = assign(data, d, &centroids, &mut labels, &mut sums, &mut counts);
    Fit { centroids, labels, inertia, iterations }
}

/// The row farthest from the mean of its cluster (used to refill an empty cluster).
fn farthest(data: &[f64], d: usize, sums: &[f64], counts: &[u64], labels: &[u32]) -> usize {
    let mut best = (0, -1.0);
    for (i, x) in data.chunks_exact(d).enumerate() {
        let c = labels[i] as usize;
        if counts[c] == 0 {
            continue;
        }
        let dd: f64 = (0..d).map(|j| (x[j] - sums[c * d + j] / counts[c] as f64).powi(2)).sum();
        if dd > best.1 {
            best = (i, dd);
        }
    }
    best.0
}

/// Best of `n_init` k-means++ + Lloyd runs. `check` is called between iterations (the
/// Postgres layer checks for query cancellation there).
pub fn fit(data: &[f64], d: usize, p: &Params, check: &mut dyn FnMut()) -> Result<Fit, CoreError> {
    p.validate()?;
    let n = data.len() / d;
    if n < p.k {
        return Err(invalid(format!("k = {} is more than the {n} rows to cluster", p.k)));
    }
    let tol = p.tolerance * mean_variance(data, d);
    let mut best: Option<Fit> = None;
    for run in 0..p.n_init {
        check();
        let mut rng = Rng::stream(p.seed, run as u64);
        let init = kmeans_pp(data, d, p.k, &mut rng)?;
        let fit = lloyd(data, d, init, p, tol, check);
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    best.ok_or_else(|| invalid("n_init must be at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize) -> Params {
        Params { k, n_init: 5, max_iter: 300, tolerance: 1e-4, seed: 42 }
    }

    /// Three tight, well separated blobs of known centres.
    fn blobs() -> (Vec<f64>, Vec<[f64; 2]>) {
        let centres = vec![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut rng = Rng::new(7);
        let mut data = Vec::new();
        for c in &centres {
            for _ in 0..100 {
                data.push(c[0] + rng.f64() - 0.5);
                data.push(c[1] + rng.f64() - 0.5);
            }
        }
        (data, centres)
    }

    #[test]
    fn finds_known_blobs() {
        let (data, centres) = blobs();
        let fit = fit(&data, 2, &params(3), &mut || {}).unwrap();
        for c in &centres {
            let found = fit.centroids.chunks_exact(2).any(|f| dist2(f, c) < 0.05);
            assert!(found, "centre {c:?} not found in {:?}", fit.centroids);
        }
        // Each blob is one cluster.
        for b in 0..3 {
            let l = fit.labels[b * 100];
            assert!(fit.labels[b * 100..(b + 1) * 100].iter().all(|x| *x == l));
        }
        // Inertia equals the sum of squared distances to the assigned centroids.
        let direct: f64 = data
            .chunks_exact(2)
            .zip(&fit.labels)
            .map(|(x, l)| dist2(x, &fit.centroids[*l as usize * 2..*l as usize * 2 + 2]))
            .sum();
        assert!((direct - fit.inertia).abs() < 1e-9);
    }

    #[test]
    fn hand_worked_one_dimension() {
        // {0, 1, 10, 11} with k = 2: centroids 0.5 and 10.5, inertia 4 * 0.25 = 1.
        let data = [0.0, 1.0, 10.0, 11.0];
        let fit = fit(&data, 1, &params(2), &mut || {}).unwrap();
        let mut c = fit.centroids.clone();
        c.sort_by(f64::total_cmp);
        assert_eq!(c, vec![0.5, 10.5]);
        assert_eq!(fit.inertia, 1.0);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let (data, _) = blobs();
        let a = fit(&data, 2, &params(4), &mut || {}).unwrap();
        let b = fit(&data, 2, &params(4), &mut || {}).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn too_few_distinct_points() {
        let data = [1.0, 1.0, 1.0, 2.0, 2.0];
        assert!(fit(&data, 1, &params(3), &mut || {}).is_err());
        assert!(fit(&data[..1], 1, &params(2), &mut || {}).is_err());
        let mut p = params(1);
        assert!(p.validate().is_err());
        p.k = 2;
        p.n_init = 0;
        assert!(p.validate().is_err());
    }

    /// RFM-like data: skewed, overlapping groups, as after log + standardization.
    fn rfm_like(n: usize) -> Vec<f64> {
        let mut rng = Rng::new(99);
        let mut data = Vec::with_capacity(n * 3);
        for i in 0..n {
            let g = (i % 4) as f64;
            let noise = |rng: &mut Rng| (rng.f64() + rng.f64() + rng.f64() - 1.5) * 0.8;
            data.extend([g * 0.7 + noise(&mut rng), (3.0 - g) * 0.5 + noise(&mut rng), g * g * 0.2 + noise(&mut rng)]);
        }
        data
    }

    #[test]
    fn inertia_at_least_as_good_as_linfa() {
        use linfa::prelude::*;
        use linfa_clustering::KMeans;
        use ndarray::Array2;
        use rand_xoshiro::rand_core::SeedableRng;
        use rand_xoshiro::Xoshiro256Plus;

        let n = 3000;
        let data = rfm_like(n);
        for k in [3, 4, 6] {
            let ours = fit(&data, 3, &Params { k, n_init: 10, max_iter: 300, tolerance: 1e-4, seed: 42 }, &mut || {}).unwrap();
            let ds = DatasetBase::from(Array2::from_shape_vec((n, 3), data.clone()).unwrap());
            let reference = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(42))
                .n_runs(10)
                .tolerance(1e-4)
                .max_n_iterations(300)
                .fit(&ds)
                .unwrap();
            let cents: Vec<f64> = reference.centroids().iter().copied().collect();
            let theirs: f64 = data.chunks_exact(3).map(|x| nearest(x, &cents, 3).1).sum();
            assert!(ours.inertia <= theirs * 1.01, "k = {k}: ours {} vs linfa {theirs}", ours.inertia);
            assert!(ours.inertia >= theirs * 0.95, "k = {k}: ours {} suspiciously below linfa {theirs}", ours.inertia);
        }
    }

    #[test]
    fn check_is_called() {
        let (data, _) = blobs();
        let mut calls = 0;
        fit(&data, 2, &params(3), &mut || calls += 1).unwrap();
        assert!(calls >= 5);
    }
}
