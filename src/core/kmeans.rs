//! KMeans: greedy k-means++ initialisation (as scikit-learn) and a tight Lloyd loop over
//! flat rows, best of `n_init` runs. Deterministic for a given seed.

use std::sync::atomic::{AtomicBool, Ordering};

use super::distance::{dist2, nearest};
use super::error::invalid;
use super::rng::Rng;
use super::CoreError;

/// A cluster index per row: one byte, since k is at most 255 (rfm_train allows 50).
pub type Label = u8;

#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub k: usize,
    pub n_init: usize,
    pub max_iter: usize,
    /// Relative tolerance: training stops when the centroids move (sum of squared shifts)
    /// less than `tolerance` times the mean per-feature variance of the data.
    pub tolerance: f64,
    pub seed: u64,
    /// Worker threads for the n_init runs (1: run them in the calling thread).
    pub threads: usize,
}

impl Params {
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.k < 2 || self.k > Label::MAX as usize - 1 {
            return Err(invalid(format!("k must be between 2 and {}, got {}", Label::MAX - 1, self.k)));
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
    pub labels: Vec<Label>,
    pub inertia: f64,
    pub iterations: usize,
}

/// Greedy k-means++ (scikit-learn's variant: 2 + ln k candidates per step, keep the one
/// that lowers the potential most). Memory: one distance per row.
fn kmeans_pp(data: &[f64], d: usize, k: usize, rng: &mut Rng) -> Result<Vec<f64>, CoreError> {
    let n = data.len() / d;
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let mut centers = Vec::with_capacity(k * d);
    centers.extend_from_slice(row(rng.below(n as u64) as usize));
    // f32 is plenty for sampling weights and halves the memory per row.
    let mut closest: Vec<f32> = (0..n).map(|i| dist2(row(i), &centers[..d]) as f32).collect();
    let mut potential: f64 = closest.iter().map(|v| *v as f64).sum();
    let trials = 2 + (k as f64).ln() as usize;
    for c in 1..k {
        if potential <= 0.0 {
            return Err(invalid(format!("k = {k} is more than the {c} distinct points in the data")));
        }
        // Candidates drawn with probability proportional to their squared distance.
        let mut targets: Vec<(f64, usize)> = (0..trials).map(|t| (rng.f64() * potential, t)).collect();
        targets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut candidates = vec![n - 1; trials];
        let (mut acc, mut next) = (0.0, 0);
        for (i, v) in closest.iter().enumerate() {
            acc += *v as f64;
            while next < trials && targets[next].0 < acc {
                candidates[targets[next].1] = i;
                next += 1;
            }
            if next == trials {
                break;
            }
        }
        // The candidate that lowers the potential most (first one on ties).
        let mut best = (candidates[0], f64::INFINITY);
        for &cand in &candidates {
            let pot: f64 = closest.iter().enumerate().map(|(i, cl)| (*cl as f64).min(dist2(row(i), row(cand)))).sum();
            if pot < best.1 {
                best = (cand, pot);
            }
        }
        let chosen = row(best.0).to_vec();
        for (i, cl) in closest.iter_mut().enumerate() {
            *cl = cl.min(dist2(row(i), &chosen) as f32);
        }
        potential = closest.iter().map(|v| *v as f64).sum();
        centers.extend_from_slice(&chosen);
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

/// Assigns every row to its nearest centroid; returns the inertia and whether any label
/// changed, and fills per-cluster sums and counts (the next centroids).
fn assign(data: &[f64], d: usize, centroids: &[f64], labels: &mut [Label], sums: &mut [f64], counts: &mut [u64]) -> (f64, bool) {
    sums.iter_mut().for_each(|s| *s = 0.0);
    counts.iter_mut().for_each(|c| *c = 0);
    match d {
        1 => assign_fixed::<1>(data, centroids, labels, sums, counts),
        2 => assign_fixed::<2>(data, centroids, labels, sums, counts),
        3 => assign_fixed::<3>(data, centroids, labels, sums, counts),
        4 => assign_fixed::<4>(data, centroids, labels, sums, counts),
        _ => {
            let mut inertia = 0.0;
            let mut changed = false;
            for (x, label) in data.chunks_exact(d).zip(labels.iter_mut()) {
                let (c, dd) = nearest(x, centroids);
                inertia += dd;
                changed |= *label != c as Label;
                *label = c as Label;
                counts[c] += 1;
                for (s, v) in sums[c * d..(c + 1) * d].iter_mut().zip(x) {
                    *s += v;
                }
            }
            (inertia, changed)
        }
    }
}

/// `assign` for a dimension known at compile time: rows and centroids as fixed arrays, so
/// the distance loop unrolls and stays in registers.
#[inline(never)]
fn assign_fixed<const D: usize>(
    data: &[f64],
    centroids: &[f64],
    labels: &mut [Label],
    sums: &mut [f64],
    counts: &mut [u64],
) -> (f64, bool) {
    let mut acc: Vec<[f64; D]> = vec![[0.0; D]; centroids.len() / D];
    let mut inertia = 0.0;
    let mut changed = false;
    for (x, label) in data.chunks_exact(D).zip(labels.iter_mut()) {
        let x: [f64; D] = x.try_into().unwrap_or([0.0; D]);
        let (best, best_d) = nearest(&x, centroids);
        inertia += best_d;
        changed |= *label != best as Label;
        *label = best as Label;
        counts[best] += 1;
        for j in 0..D {
            acc[best][j] += x[j];
        }
    }
    for (c, a) in acc.iter().enumerate() {
        sums[c * D..(c + 1) * D].copy_from_slice(a);
    }
    (inertia, changed)
}

/// One Lloyd run from the given initial centroids; `None` when `stop` says so.
fn lloyd(data: &[f64], d: usize, mut centroids: Vec<f64>, p: &Params, tol: f64, stop: &mut dyn FnMut() -> bool) -> Option<Fit> {
    let n = data.len() / d;
    let k = centroids.len() / d;
    let mut labels = vec![Label::MAX; n];
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0u64; k];
    let mut iterations = 0;
    while iterations < p.max_iter {
        if stop() {
            return None;
        }
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
    Some(Fit { centroids, labels, inertia, iterations })
}

/// The row farthest from the mean of its cluster (used to refill an empty cluster).
fn farthest(data: &[f64], d: usize, sums: &[f64], counts: &[u64], labels: &[Label]) -> usize {
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

/// Sets the flag when dropped, also while unwinding from a cancelled query, so that
/// worker threads stop at their next iteration.
struct CancelOnDrop<'a>(&'a AtomicBool);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The better of two runs: lower inertia, then lower run number (so that the result does
/// not depend on which thread ran which run). Only the best is kept, not every run's labels.
fn keep_best(best: &mut Option<(usize, Fit)>, run: usize, fit: Fit) {
    if best.as_ref().is_none_or(|(b_run, b)| fit.inertia < b.inertia || (fit.inertia == b.inertia && run < *b_run)) {
        *best = Some((run, fit));
    }
}

fn one_run(data: &[f64], d: usize, p: &Params, tol: f64, run: usize, stop: &mut dyn FnMut() -> bool) -> Result<Option<Fit>, CoreError> {
    let mut rng = Rng::stream(p.seed, run as u64);
    let init = kmeans_pp(data, d, p.k, &mut rng)?;
    Ok(lloyd(data, d, init, p, tol, stop))
}

/// Best of `n_init` k-means++ + Lloyd runs (lowest inertia, then lowest run number), so
/// the result does not depend on how runs are spread over threads. `check` is called from
/// the calling thread only, often: the Postgres layer checks for cancellation there (and
/// may unwind; worker threads then stop at their next iteration).
pub fn fit(data: &[f64], d: usize, p: &Params, check: &mut dyn FnMut()) -> Result<Fit, CoreError> {
    p.validate()?;
    let n = data.len() / d;
    if n < p.k {
        return Err(invalid(format!("k = {} is more than the {n} rows to cluster", p.k)));
    }
    let tol = p.tolerance * mean_variance(data, d);
    let threads = p.threads.clamp(1, p.n_init);
    let mut best: Option<(usize, Fit)> = None;
    if threads == 1 {
        for run in 0..p.n_init {
            check();
            let stop = &mut || {
                check();
                false
            };
            if let Some(fit) = one_run(data, d, p, tol, run, stop)? {
                keep_best(&mut best, run, fit);
            }
        }
    } else {
        let cancel = AtomicBool::new(false);
        let mut outcomes: Vec<Result<Option<(usize, Fit)>, CoreError>> = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let cancel = &cancel;
                    s.spawn(move || -> Result<Option<(usize, Fit)>, CoreError> {
                        let mut mine = None;
                        for run in (t..p.n_init).step_by(threads) {
                            if cancel.load(Ordering::Relaxed) {
                                break;
                            }
                            if let Some(fit) = one_run(data, d, p, tol, run, &mut || cancel.load(Ordering::Relaxed))? {
                                keep_best(&mut mine, run, fit);
                            }
                        }
                        Ok(mine)
                    })
                })
                .collect();
            let _stop_workers_if_unwinding = CancelOnDrop(&cancel);
            while !handles.iter().all(|h| h.is_finished()) {
                check();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            for h in handles {
                match h.join() {
                    Ok(v) => outcomes.push(v),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        check();
        for outcome in outcomes {
            if let Some((run, fit)) = outcome? {
                keep_best(&mut best, run, fit);
            }
        }
    }
    best.map(|(_, f)| f).ok_or_else(|| invalid("training was stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize) -> Params {
        Params { k, n_init: 5, max_iter: 300, tolerance: 1e-4, seed: 42, threads: 1 }
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
        let direct: f64 =
            data.chunks_exact(2).zip(&fit.labels).map(|(x, l)| dist2(x, &fit.centroids[*l as usize * 2..*l as usize * 2 + 2])).sum();
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
            let ours = fit(&data, 3, &Params { k, n_init: 10, max_iter: 300, tolerance: 1e-4, seed: 42, threads: 2 }, &mut || {}).unwrap();
            let ds = DatasetBase::from(Array2::from_shape_vec((n, 3), data.clone()).unwrap());
            let reference = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(42))
                .n_runs(10)
                .tolerance(1e-4)
                .max_n_iterations(300)
                .fit(&ds)
                .unwrap();
            let cents: Vec<f64> = reference.centroids().iter().copied().collect();
            let theirs: f64 = data.chunks_exact(3).map(|x| crate::core::distance::nearest(x, &cents).1).sum();
            assert!(ours.inertia <= theirs * 1.01, "k = {k}: ours {} vs linfa {theirs}", ours.inertia);
            assert!(ours.inertia >= theirs * 0.95, "k = {k}: ours {} suspiciously below linfa {theirs}", ours.inertia);
        }
    }

    #[test]
    fn threads_give_the_same_model() {
        let data = rfm_like(2000);
        let mut p = params(4);
        p.n_init = 7;
        let one = fit(&data, 3, &p, &mut || {}).unwrap();
        for threads in [2, 3, 8] {
            p.threads = threads;
            assert_eq!(fit(&data, 3, &p, &mut || {}).unwrap(), one, "threads = {threads}");
        }
    }

    #[test]
    fn a_panicking_check_stops_the_workers() {
        let data = rfm_like(20_000);
        let mut p = params(6);
        p.n_init = 50;
        p.threads = 2;
        let mut calls = 0;
        let started = std::time::Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fit(&data, 3, &p, &mut || {
                calls += 1;
                if calls == 3 {
                    panic!("query cancelled");
                }
            })
        }));
        assert!(r.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "workers stopped promptly");
    }

    #[test]
    fn check_is_called() {
        let (data, _) = blobs();
        let mut calls = 0;
        fit(&data, 2, &params(3), &mut || calls += 1).unwrap();
        assert!(calls >= 5);
    }
}
