//! Clustering quality, with scikit-learn's definitions: inertia, silhouette, Davies-Bouldin,
//! Calinski-Harabasz. Clusters without members are ignored, as scikit-learn does.

use super::distance::dist2;
use super::kmeans::Label;
use super::rng::Rng;

/// Silhouette is exact up to this many rows, and computed on a seeded random sample of
/// this many rows above it (like `silhouette_score(..., sample_size=10000)`).
pub const SILHOUETTE_EXACT_MAX: usize = 10_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    pub inertia: f64,
    pub silhouette: Option<f64>,
    pub davies_bouldin: Option<f64>,
    pub calinski_harabasz: Option<f64>,
}

/// Members and per-feature sums of each cluster (k rows of d sums).
pub fn cluster_sums(data: &[f64], d: usize, labels: &[Label], k: usize) -> (Vec<u64>, Vec<f64>) {
    let mut counts = vec![0u64; k];
    let mut sums = vec![0.0; k * d];
    for (x, l) in data.chunks_exact(d).zip(labels) {
        let c = *l as usize;
        counts[c] += 1;
        for j in 0..d {
            sums[c * d + j] += x[j];
        }
    }
    (counts, sums)
}

/// Members and mean of each cluster (mean is meaningless for empty clusters).
fn cluster_means(data: &[f64], d: usize, labels: &[Label], k: usize) -> (Vec<u64>, Vec<f64>) {
    let (counts, mut means) = cluster_sums(data, d, labels, k);
    for c in 0..k {
        if counts[c] > 0 {
            for j in 0..d {
                means[c * d + j] /= counts[c] as f64;
            }
        }
    }
    (counts, means)
}

pub fn inertia(data: &[f64], d: usize, labels: &[Label], centroids: &[f64]) -> f64 {
    data.chunks_exact(d).zip(labels).map(|(x, l)| dist2(x, &centroids[*l as usize * d..(*l as usize + 1) * d])).sum()
}

/// Mean silhouette over `rows` (indices into data). `None` unless 2 <= clusters <= rows - 1.
fn silhouette_rows(data: &[f64], d: usize, labels: &[Label], k: usize, rows: &[usize], check: &mut dyn FnMut()) -> Option<f64> {
    let m = rows.len();
    let mut sizes = vec![0u64; k];
    for &i in rows {
        sizes[labels[i] as usize] += 1;
    }
    let present = sizes.iter().filter(|s| **s > 0).count();
    if present < 2 || present > m - 1 {
        return None;
    }
    // sums[a * k + c]: total distance from row a to the members of cluster c.
    let mut sums = vec![0.0; m * k];
    for a in 0..m {
        if a % 256 == 0 {
            check();
        }
        let xa = &data[rows[a] * d..(rows[a] + 1) * d];
        let la = labels[rows[a]] as usize;
        for b in a + 1..m {
            let xb = &data[rows[b] * d..(rows[b] + 1) * d];
            let dist = dist2(xa, xb).sqrt();
            sums[a * k + labels[rows[b]] as usize] += dist;
            sums[b * k + la] += dist;
        }
    }
    let mut total = 0.0;
    for a in 0..m {
        let la = labels[rows[a]] as usize;
        if sizes[la] <= 1 {
            continue; // a singleton's silhouette is 0
        }
        let intra = sums[a * k + la] / (sizes[la] - 1) as f64;
        let inter = (0..k).filter(|c| *c != la && sizes[*c] > 0).map(|c| sums[a * k + c] / sizes[c] as f64).fold(f64::INFINITY, f64::min);
        let denom = intra.max(inter);
        if denom > 0.0 {
            total += (inter - intra) / denom;
        }
    }
    Some(total / m as f64)
}

/// Silhouette: exact for up to `SILHOUETTE_EXACT_MAX` rows, else on a sample drawn with `seed`.
pub fn silhouette(data: &[f64], d: usize, labels: &[Label], k: usize, seed: u64, check: &mut dyn FnMut()) -> Option<f64> {
    let n = labels.len();
    let rows: Vec<usize> =
        if n <= SILHOUETTE_EXACT_MAX { (0..n).collect() } else { Rng::stream(seed, 0x5111).sample(n, SILHOUETTE_EXACT_MAX) };
    silhouette_rows(data, d, labels, k, &rows, check)
}

pub fn davies_bouldin(data: &[f64], d: usize, labels: &[Label], k: usize) -> Option<f64> {
    let (counts, means) = cluster_means(data, d, labels, k);
    let present: Vec<usize> = (0..k).filter(|c| counts[*c] > 0).collect();
    if present.len() < 2 {
        return None;
    }
    let mut scatter = vec![0.0; k];
    for (x, l) in data.chunks_exact(d).zip(labels) {
        let c = *l as usize;
        scatter[c] += dist2(x, &means[c * d..(c + 1) * d]).sqrt();
    }
    for c in &present {
        scatter[*c] /= counts[*c] as f64;
    }
    if present.iter().all(|c| scatter[*c] == 0.0) {
        return Some(0.0);
    }
    let mut total = 0.0;
    for &a in &present {
        let worst = present
            .iter()
            .filter(|b| **b != a)
            .map(|&b| {
                let sep = dist2(&means[a * d..(a + 1) * d], &means[b * d..(b + 1) * d]).sqrt();
                if sep == 0.0 {
                    0.0
                } else {
                    (scatter[a] + scatter[b]) / sep
                }
            })
            .fold(f64::NEG_INFINITY, f64::max);
        total += worst;
    }
    Some(total / present.len() as f64)
}

pub fn calinski_harabasz(data: &[f64], d: usize, labels: &[Label], k: usize) -> Option<f64> {
    let n = labels.len();
    let (counts, means) = cluster_means(data, d, labels, k);
    let present = counts.iter().filter(|c| **c > 0).count();
    if present < 2 || n <= present {
        return None;
    }
    let mut overall = vec![0.0; d];
    for x in data.chunks_exact(d) {
        for j in 0..d {
            overall[j] += x[j];
        }
    }
    overall.iter_mut().for_each(|v| *v /= n as f64);
    let between: f64 = (0..k).filter(|c| counts[*c] > 0).map(|c| counts[c] as f64 * dist2(&means[c * d..(c + 1) * d], &overall)).sum();
    let within: f64 = data.chunks_exact(d).zip(labels).map(|(x, l)| dist2(x, &means[*l as usize * d..(*l as usize + 1) * d])).sum();
    if within == 0.0 {
        return Some(1.0);
    }
    Some(between * (n - present) as f64 / (within * (present - 1) as f64))
}

pub fn all(data: &[f64], d: usize, labels: &[Label], centroids: &[f64], seed: u64, check: &mut dyn FnMut()) -> Metrics {
    let k = centroids.len() / d;
    Metrics {
        inertia: inertia(data, d, labels, centroids),
        silhouette: silhouette(data, d, labels, k, seed, check),
        davies_bouldin: davies_bouldin(data, d, labels, k),
        calinski_harabasz: calinski_harabasz(data, d, labels, k),
    }
}

/// The knee of a decreasing inertia curve (Kneedle for a convex, decreasing curve): with k
/// and inertia scaled to [0, 1], the point farthest below the chord from the first to the
/// last point. Returns an index into `inertia`; the first point when there is no knee.
pub fn kneedle(ks: &[usize], inertia: &[f64]) -> usize {
    if ks.len() < 3 {
        return 0;
    }
    let (k0, k1) = (ks[0] as f64, ks[ks.len() - 1] as f64);
    let (lo, hi) = inertia.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    if hi <= lo {
        return 0;
    }
    let mut best = (0, 0.0);
    for (i, (k, v)) in ks.iter().zip(inertia).enumerate() {
        let x = (*k as f64 - k0) / (k1 - k0);
        let y = (v - lo) / (hi - lo);
        let gap = (1.0 - x) - y;
        if gap > best.1 {
            best = (i, gap);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_two_clusters() {
        // 1-D points {0, 2} in cluster 0 and {10} in cluster 1.
        let data = [0.0, 2.0, 10.0];
        let labels = [0, 0, 1];
        // Silhouette: point 0: a = 2, b = 10 -> 0.8; point 2: a = 2, b = 8 -> 0.75;
        // point 10 is a singleton -> 0. Mean = 1.55 / 3.
        let s = silhouette(&data, 1, &labels, 2, 0, &mut || {}).unwrap();
        assert!((s - 1.55 / 3.0).abs() < 1e-12);
        // Davies-Bouldin: scatter 1 and 0, centroid distance 9 -> R = 1/9 for both.
        let db = davies_bouldin(&data, 1, &labels, 2).unwrap();
        assert!((db - 1.0 / 9.0).abs() < 1e-12);
        // Calinski-Harabasz: overall mean 4; between = 2 * 9 + 1 * 36 = 54; within = 2;
        // (54 / 1) / (2 / 1) = 27.
        let ch = calinski_harabasz(&data, 1, &labels, 2).unwrap();
        assert!((ch - 27.0).abs() < 1e-12);
        assert_eq!(inertia(&data, 1, &labels, &[1.0, 10.0]), 2.0);
    }

    #[test]
    fn degenerate_cases() {
        let data = [1.0, 2.0, 3.0];
        assert!(silhouette(&data, 1, &[0, 0, 0], 2, 0, &mut || {}).is_none());
        assert!(davies_bouldin(&data, 1, &[0, 0, 0], 2).is_none());
        assert!(calinski_harabasz(&data, 1, &[0, 1, 2], 3).is_none(), "n == clusters");
        assert_eq!(calinski_harabasz(&[1.0, 1.0, 5.0, 5.0], 1, &[0, 0, 1, 1], 2), Some(1.0));
    }

    #[test]
    fn knee() {
        let ks = [2, 3, 4, 5, 6, 7];
        let inertia = [100.0, 60.0, 20.0, 17.0, 15.0, 14.0];
        assert_eq!(ks[kneedle(&ks, &inertia)], 4);
        assert_eq!(kneedle(&ks[..2], &inertia[..2]), 0);
    }

    #[test]
    fn sampled_silhouette_is_deterministic() {
        let n = SILHOUETTE_EXACT_MAX + 500;
        let data: Vec<f64> = (0..n).map(|i| (i % 2) as f64 * 10.0 + (i % 7) as f64 * 0.01).collect();
        let labels: Vec<Label> = (0..n).map(|i| (i % 2) as Label).collect();
        let a = silhouette(&data, 1, &labels, 2, 9, &mut || {}).unwrap();
        let b = silhouette(&data, 1, &labels, 2, 9, &mut || {}).unwrap();
        assert_eq!(a, b);
        assert!(a > 0.99);
    }
}
