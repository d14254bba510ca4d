//! Training a segmentation model (preprocessing, k choice, KMeans, metrics, cluster
//! profiles and names) and assigning rows to its clusters.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::distance::nearest;
use super::error::{invalid, out_of_range, show, sql_array};
use super::kmeans::{self, Label};
use super::metrics::{self, Metrics};
use super::quantile::{breaks, percentiles};
use super::scale::{retain_rows, sort_rows, Outliers, Scaler};
use super::score::{self, Breaks, Rule};
use super::CoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectK {
    Silhouette,
    Elbow,
}

impl SelectK {
    pub fn parse(s: &str) -> Result<SelectK, CoreError> {
        match s {
            "silhouette" => Ok(SelectK::Silhouette),
            "elbow" => Ok(SelectK::Elbow),
            _ => Err(invalid(format!("select_k must be 'silhouette' or 'elbow', got '{s}'"))),
        }
    }
}

/// Largest k (and k_max) accepted.
pub const MAX_K: usize = 50;

#[derive(Clone, Debug)]
pub struct Options {
    pub k: Option<usize>,
    pub k_min: usize,
    pub k_max: usize,
    pub select_k: SelectK,
    pub outliers: Outliers,
    pub log_features: Vec<String>,
    pub standardize: bool,
    pub n_init: usize,
    pub max_iter: usize,
    pub tolerance: f64,
    pub seed: u64,
    /// Threads for the KMeans runs (see kmeans::Params).
    pub threads: usize,
}

impl Options {
    /// The k values to try, after checking the options against the feature list.
    pub fn validate(&self, features: &[String]) -> Result<Vec<usize>, CoreError> {
        if features.is_empty() {
            return Err(invalid("features must name at least one column"));
        }
        for (i, f) in features.iter().enumerate() {
            if features[..i].contains(f) {
                return Err(invalid(format!("feature \"{f}\" is listed twice")));
            }
        }
        for f in &self.log_features {
            if !features.contains(f) {
                return Err(invalid(format!("log_features names \"{f}\", which is not one of the features")));
            }
        }
        let ks: Vec<usize> = match self.k {
            Some(k) => vec![k],
            None => {
                if self.k_min < 2 {
                    return Err(invalid(format!("k_min must be at least 2, got {}", self.k_min)));
                }
                if self.k_max < self.k_min {
                    return Err(invalid(format!("k_max ({}) must not be less than k_min ({})", self.k_max, self.k_min)));
                }
                (self.k_min..=self.k_max).collect()
            }
        };
        if let Some(&k) = ks.iter().find(|k| **k < 2 || **k > MAX_K) {
            return Err(invalid(format!("k must be between 2 and {MAX_K}, got {k}")));
        }
        self.kmeans(ks[0]).validate()?;
        Ok(ks)
    }

    fn kmeans(&self, k: usize) -> kmeans::Params {
        kmeans::Params {
            k,
            n_init: self.n_init,
            max_iter: self.max_iter,
            tolerance: self.tolerance,
            seed: self.seed,
            threads: self.threads,
        }
    }
}

/// One point of the k search curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KPoint {
    pub k: usize,
    #[serde(deserialize_with = "super::serde_f64::nan")]
    pub inertia: f64,
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub silhouette: Option<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub davies_bouldin: Option<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub calinski_harabasz: Option<f64>,
    pub iterations: usize,
    pub elapsed_ms: f64,
}

/// One cluster of a trained model. Statistics are in original units over the training
/// rows (before clipping).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub cluster: i32,
    pub label: String,
    pub action: String,
    /// Centroid in the scaled space (what assignment compares against).
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub scaled: Vec<f64>,
    /// Centroid mapped back to original units (of the clipped, logged data).
    #[serde(deserialize_with = "super::serde_f64::nan_vec")]
    pub original: Vec<f64>,
    pub size: i64,
    #[serde(default, deserialize_with = "super::serde_f64::nan_vec")]
    pub mean: Vec<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::nan_vec")]
    pub median: Vec<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::nan_vec")]
    pub sum: Vec<f64>,
}

/// What assignment needs: features, preprocessing and clusters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub features: Vec<String>,
    pub scaler: Scaler,
    pub clusters: Vec<Cluster>,
}

/// How `Model::check` names what it finds wrong: as the columns of the model tables
/// (`scale_sd`, `rfm_centroids.scaled`), or as the keys of an exported document
/// (`scaler.scale`, `clusters[2].scaled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    Tables,
    Document,
}

impl Naming {
    fn scaler(self, field: &str) -> &'static str {
        match (self, field) {
            (Naming::Tables, "lower") => "lower_fence",
            (Naming::Tables, "upper") => "upper_fence",
            (Naming::Tables, "mean") => "scale_mean",
            (Naming::Tables, "scale") => "scale_sd",
            (Naming::Tables, _) => "log_features",
            (Naming::Document, "lower") => "scaler.lower",
            (Naming::Document, "upper") => "scaler.upper",
            (Naming::Document, "mean") => "scaler.mean",
            (Naming::Document, "scale") => "scaler.scale",
            (Naming::Document, _) => "scaler.log",
        }
    }

    /// A field (or, with `element`, one of its elements) of the cluster at `index`
    /// (position in the model) numbered `number`.
    fn cluster(self, index: usize, number: i32, field: &str, element: Option<usize>) -> String {
        let at = element.map_or(String::new(), |j| format!("[{}]", self.at(j)));
        match self {
            Naming::Tables => {
                let column = if field == "sum" { "total" } else { field };
                format!("rfm_centroids.{column}{at} of cluster {number}")
            }
            Naming::Document => format!("clusters[{index}].{field}{at}"),
        }
    }

    /// How element `j` (0-based) of an array is written: SQL arrays count from 1, JSON
    /// arrays (as in `doc->'scaler'->'scale'->0`) from 0.
    fn at(self, j: usize) -> usize {
        match self {
            Naming::Tables => j + 1,
            Naming::Document => j,
        }
    }
}

fn values(n: usize) -> String {
    if n == 1 {
        "1 value".into()
    } else {
        format!("{n} values")
    }
}

impl Model {
    /// Checks everything assignment, profiles and reports rely on, whatever the model came
    /// from (the tables, an import, a cache): one entry per feature in every preprocessing
    /// array, finite values, positive scales, `declared_k` (when known) clusters numbered
    /// 1..k, every centroid of the model's dimension, unique non-empty labels. Returns the
    /// first problem found, named as `naming` says.
    pub fn check(&self, declared_k: Option<i64>, naming: Naming) -> Result<(), String> {
        let d = self.features.len();
        let features = sql_array(&self.features);
        if d == 0 {
            return Err("features is empty".into());
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.is_empty() {
                return Err(format!("features {features} has an empty name"));
            }
            if self.features[..i].contains(f) {
                return Err(format!("features {features} lists \"{f}\" twice"));
            }
        }
        let s = &self.scaler;
        for (field, len) in
            [("lower", s.lower.len()), ("upper", s.upper.len()), ("log", s.log.len()), ("mean", s.mean.len()), ("scale", s.scale.len())]
        {
            if len != d && !(field == "log" && naming == Naming::Tables) {
                return Err(format!("{} has {} for the {d} features {features}", naming.scaler(field), values(len)));
            }
        }
        for j in 0..d {
            let f = &self.features[j];
            let (lo, hi) = (s.lower[j], s.upper[j]);
            let (lower, upper) = (naming.scaler("lower"), naming.scaler("upper"));
            let at = naming.at(j);
            if lo.is_nan() || lo == f64::INFINITY {
                return Err(format!("{lower}[{at}] ({f}) is {}", show(lo)));
            }
            if hi.is_nan() || hi == f64::NEG_INFINITY {
                return Err(format!("{upper}[{at}] ({f}) is {}", show(hi)));
            }
            if lo > hi {
                return Err(format!("{lower}[{at}] ({f}) is {}, above {upper}[{at}] = {}", show(lo), show(hi)));
            }
            if !s.mean[j].is_finite() {
                return Err(format!("{}[{at}] ({f}) is {}", naming.scaler("mean"), show(s.mean[j])));
            }
            if !(s.scale[j].is_finite() && s.scale[j] > 0.0) {
                return Err(format!(
                    "{}[{at}] ({f}) is {}; standard deviations must be positive and finite",
                    naming.scaler("scale"),
                    show(s.scale[j])
                ));
            }
        }
        let k = self.clusters.len();
        if let Some(declared) = declared_k {
            if declared != k as i64 {
                return Err(match naming {
                    Naming::Tables => format!("k is {declared} but rfm_centroids has {k} rows for this version"),
                    Naming::Document => format!("k is {declared} but clusters has {k} entries"),
                });
            }
        }
        if k < 2 {
            return Err(format!("a model needs at least 2 clusters, this one has {k}"));
        }
        let mut numbers: Vec<i32> = self.clusters.iter().map(|c| c.cluster).collect();
        numbers.sort_unstable();
        if numbers.iter().enumerate().any(|(i, n)| *n != i as i32 + 1) {
            let list: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
            return Err(format!("the clusters are numbered {}, expected 1 to {k}", sql_array(&list)));
        }
        for (i, c) in self.clusters.iter().enumerate() {
            let at = |field: &str| naming.cluster(i, c.cluster, field, None);
            if c.scaled.len() != d {
                return Err(format!("{} has {} for the {d} features {features}", at("scaled"), values(c.scaled.len())));
            }
            if let Some(j) = c.scaled.iter().position(|v| !v.is_finite()) {
                return Err(format!("{} is {}", naming.cluster(i, c.cluster, "scaled", Some(j)), show(c.scaled[j])));
            }
            if c.original.len() != d {
                return Err(format!("{} has {} for the {d} features {features}", at("original"), values(c.original.len())));
            }
            for (field, v) in [("mean", &c.mean), ("median", &c.median), ("sum", &c.sum)] {
                if !v.is_empty() && v.len() != d {
                    return Err(format!("{} has {}, expected {d} (or none)", at(field), values(v.len())));
                }
            }
            if c.size < 0 {
                return Err(format!("{} is {}, a cluster size cannot be negative", at("size"), c.size));
            }
            if c.label.trim().is_empty() {
                return Err(format!("{} is empty", at("label")));
            }
            if let Some(other) = self.clusters[..i].iter().find(|o| o.label == c.label) {
                return Err(format!("clusters {} and {} have the same label \"{}\"", other.cluster, c.cluster, c.label));
            }
        }
        Ok(())
    }

    /// Centroids as flat rows, in cluster order.
    pub fn centroid_rows(&self) -> Vec<f64> {
        self.clusters.iter().flat_map(|c| c.scaled.iter().copied()).collect()
    }
}

#[inline(always)]
fn nearest_fixed<const D: usize>(row: &[f64], centroids: &[f64]) -> (usize, f64) {
    let x: [f64; D] = row.try_into().unwrap_or([f64::NAN; D]);
    nearest(&x, centroids)
}

/// A checked model, laid out for assignment: the preprocessing and the centroids as flat
/// rows (cluster `i` of the model is row `i`).
#[derive(Clone, Debug, PartialEq)]
pub struct Assigner {
    scaler: Scaler,
    centroids: Vec<f64>,
    d: usize,
}

impl Assigner {
    /// An assigner for `model`, which must have passed `Model::check`.
    pub fn new(model: &Model) -> Assigner {
        Assigner { scaler: model.scaler.clone(), centroids: model.centroid_rows(), d: model.features.len() }
    }

    pub fn dims(&self) -> usize {
        self.d
    }

    /// Index into the model's clusters of the centroid nearest to `row` (original units)
    /// after the stored preprocessing; `row` is overwritten with its scaled form. An
    /// out-of-range error when the distances are not finite (possible only for models
    /// trained with outliers => 'keep' and enormous inputs).
    #[inline]
    pub fn assign(&self, row: &mut [f64]) -> Result<usize, CoreError> {
        if row.len() != self.d {
            return Err(invalid(format!("expected {} feature values, got {}", self.d, row.len())));
        }
        self.scaler.transform(row);
        // Row lengths known at compile time for the usual dimensions: the distance loop unrolls.
        let (i, dd) = match row.len() {
            2 => nearest_fixed::<2>(row, &self.centroids),
            3 => nearest_fixed::<3>(row, &self.centroids),
            4 => nearest_fixed::<4>(row, &self.centroids),
            _ => nearest(row, &self.centroids),
        };
        if dd.is_finite() {
            Ok(i)
        } else {
            Err(out_of_range("feature values are too large for this model (out of range for float8 after preprocessing)"))
        }
    }
}

pub struct Trained {
    pub model: Model,
    pub curve: Vec<KPoint>,
    pub chosen: usize,
    pub metrics: Metrics,
    pub n_rows: usize,
}

/// Index of recency, frequency and monetary among the features, when all three are there.
fn rfm_columns(features: &[String]) -> Option<[usize; 3]> {
    let pos = |name: &str| features.iter().position(|f| f == name);
    Some([pos("recency")?, pos("frequency")?, pos("monetary")?])
}

/// Trains a model on `raw` rows (original units, n rows of d = features.len()).
/// `rules` name the clusters of RFM models; `progress` sees each k as it is tried;
/// `check` is called often (the Postgres layer checks for cancellation there).
pub fn train(
    mut raw: Vec<f64>,
    features: &[String],
    opts: &Options,
    rules: &[Rule],
    progress: &mut dyn FnMut(&KPoint),
    check: &mut dyn FnMut(),
) -> Result<Trained, CoreError> {
    let d = features.len();
    let ks = opts.validate(features)?;
    sort_rows(&mut raw, d);
    let log: Vec<bool> = features.iter().map(|f| opts.log_features.contains(f)).collect();
    let (scaler, keep) = Scaler::fit(&raw, d, opts.outliers, log, opts.standardize)?;
    retain_rows(&mut raw, d, &keep);
    drop(keep);
    let n = raw.len() / d;
    let mut scaled = raw.clone();
    for row in scaled.chunks_exact_mut(d) {
        scaler.transform(row);
    }
    // Squared distances must stay finite: features near ±1e154 and beyond cannot be clustered.
    if scaled.iter().any(|v| !v.is_finite() || v.abs() > 1e150) {
        return Err(out_of_range("feature values are too large to cluster (out of range for float8 after preprocessing)"));
    }

    let mut curve = Vec::new();
    let mut fits = Vec::new();
    for &k in &ks {
        let started = Instant::now();
        let fit = kmeans::fit(&scaled, d, &opts.kmeans(k), check)?;
        let m = metrics::all(&scaled, d, &fit.labels, &fit.centroids, opts.seed, check);
        let point = KPoint {
            k,
            inertia: m.inertia,
            silhouette: m.silhouette,
            davies_bouldin: m.davies_bouldin,
            calinski_harabasz: m.calinski_harabasz,
            iterations: fit.iterations,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        progress(&point);
        curve.push(point);
        fits.push(fit.centroids);
    }
    let chosen = match (ks.len(), opts.select_k) {
        (1, _) => 0,
        (_, SelectK::Elbow) => metrics::kneedle(&ks, &curve.iter().map(|p| p.inertia).collect::<Vec<_>>()),
        (_, SelectK::Silhouette) => {
            let mut best = 0;
            for (i, p) in curve.iter().enumerate() {
                if p.silhouette.unwrap_or(f64::NEG_INFINITY) > curve[best].silhouette.unwrap_or(f64::NEG_INFINITY) {
                    best = i;
                }
            }
            best
        }
    };
    let centroids = std::mem::take(&mut fits[chosen]);
    let k = ks[chosen];
    let labels: Vec<Label> = scaled.chunks_exact(d).map(|x| nearest(x, &centroids).0 as Label).collect();
    let metrics = Metrics {
        inertia: curve[chosen].inertia,
        silhouette: curve[chosen].silhouette,
        davies_bouldin: curve[chosen].davies_bouldin,
        calinski_harabasz: curve[chosen].calinski_harabasz,
    };
    drop(scaled);

    let clusters = describe(&raw, d, k, &centroids, &labels, &scaler, features, rules);
    Ok(Trained { model: Model { features: features.to_vec(), scaler, clusters }, curve, chosen, metrics, n_rows: n })
}

/// Per-cluster statistics, numbering (largest cluster first) and names.
#[allow(clippy::too_many_arguments)]
fn describe(
    raw: &[f64],
    d: usize,
    k: usize,
    centroids: &[f64],
    labels: &[Label],
    scaler: &Scaler,
    features: &[String],
    rules: &[Rule],
) -> Vec<Cluster> {
    let (counts, sum) = metrics::cluster_sums(raw, d, labels, k);
    let size: Vec<i64> = counts.iter().map(|c| *c as i64).collect();
    let mut median = vec![f64::NAN; k * d];
    let mut per_cluster: Vec<Vec<f64>> = vec![Vec::new(); k];
    for j in 0..d {
        per_cluster.iter_mut().for_each(Vec::clear);
        for (x, l) in raw.chunks_exact(d).zip(labels) {
            per_cluster[*l as usize].push(x[j]);
        }
        for c in 0..k {
            if let Some(m) = percentiles(&mut per_cluster[c], &[0.5]) {
                median[c * d + j] = m[0];
            }
        }
    }
    // Largest cluster first; ties by centroid, so numbering is deterministic.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|a, b| {
        size[*b].cmp(&size[*a]).then_with(|| {
            centroids[a * d..(a + 1) * d]
                .iter()
                .zip(&centroids[b * d..(b + 1) * d])
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut clusters: Vec<Cluster> = order
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let scaled = centroids[c * d..(c + 1) * d].to_vec();
            let mut original = scaled.clone();
            scaler.inverse(&mut original);
            let n = size[c].max(1) as f64;
            Cluster {
                cluster: i as i32 + 1,
                label: String::new(),
                action: String::new(),
                scaled,
                original,
                size: size[c],
                mean: sum[c * d..(c + 1) * d].iter().map(|s| s / n).collect(),
                median: median[c * d..(c + 1) * d].to_vec(),
                sum: sum[c * d..(c + 1) * d].to_vec(),
            }
        })
        .collect();
    name_clusters(&mut clusters, raw, d, features, rules);
    clusters
}

/// Names each cluster: for RFM models, the rule its centroid (original units) scores into
/// against the training population's quintiles; otherwise "Cluster i". Clusters that land
/// on the same name are told apart by spend (or size): "(high spend)", "(low spend)", ...
pub fn name_clusters(clusters: &mut [Cluster], raw: &[f64], d: usize, features: &[String], rules: &[Rule]) {
    let rfm = rfm_columns(features);
    if let Some([ri, fi, mi]) = rfm {
        // One column at a time: each copy is n values.
        let cuts = |j: usize| breaks(&mut raw.iter().skip(j).step_by(d).copied().collect::<Vec<f64>>(), 5);
        let (r, f, m) = (cuts(ri), cuts(fi), cuts(mi));
        if let (Some(recency), Some(frequency), Some(monetary)) = (r, f, m) {
            let b = Breaks { n: 5, recency, frequency, monetary };
            for c in clusters.iter_mut() {
                let o = &c.original;
                if let Ok((r, f, m)) = score::score(&b, o[ri], o[fi], o[mi]) {
                    if let Some(rule) = score::find_rule(rules, r, f, m) {
                        c.label = rule.segment.clone();
                        c.action = rule.action.clone();
                    }
                }
            }
        }
    }
    for c in clusters.iter_mut().filter(|c| c.label.is_empty()) {
        c.label = format!("Cluster {}", c.cluster);
    }
    let spend = |c: &Cluster| rfm.map_or(c.size as f64, |[_, _, mi]| c.original[mi]);
    let mut names: Vec<String> = clusters.iter().map(|c| c.label.clone()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let mut same: Vec<usize> = (0..clusters.len()).filter(|i| clusters[*i].label == name).collect();
        if same.len() < 2 {
            continue;
        }
        same.sort_by(|a, b| spend(&clusters[*b]).total_cmp(&spend(&clusters[*a])).then(a.cmp(b)));
        let what = if rfm.is_some() { "spend" } else { "size" };
        let count = same.len();
        for (rank, i) in same.into_iter().enumerate() {
            let suffix = match (count, rank) {
                (_, 0) => format!("high {what}"),
                (2, _) => format!("low {what}"),
                (3, 1) => format!("mid {what}"),
                (c, r) if r == c - 1 => format!("low {what}"),
                (_, r) => format!("{what} rank {}", r + 1),
            };
            clusters[i].label = format!("{name} ({suffix})");
        }
    }
}

/// Metrics of a model on other rows (original units), e.g. a later period.
pub fn evaluate(model: &Model, mut raw: Vec<f64>, seed: u64, check: &mut dyn FnMut()) -> Result<(usize, Metrics), CoreError> {
    let d = model.features.len();
    let n = raw.len() / d.max(1);
    if n == 0 {
        return Err(invalid("no rows to evaluate on"));
    }
    sort_rows(&mut raw, d);
    let assigner = Assigner::new(model);
    let labels: Vec<Label> = raw.chunks_exact_mut(d).map(|row| assigner.assign(row).map(|i| i as Label)).collect::<Result<_, _>>()?;
    Ok((n, metrics::all(&raw, d, &labels, &model.centroid_rows(), seed, check)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;

    fn rules() -> Vec<Rule> {
        let r = |s: &str, r, f| Rule { segment: s.into(), action: format!("do {s}"), r, f, m: (1, 5) };
        vec![
            r("Champions", (5, 5), (4, 5)),
            r("Loyal Customers", (3, 4), (4, 5)),
            r("Potential Loyalist", (4, 5), (2, 3)),
            r("New Customers", (5, 5), (1, 1)),
            r("Promising", (4, 4), (1, 1)),
            r("Need Attention", (3, 3), (3, 3)),
            r("About To Sleep", (3, 3), (1, 2)),
            r("Can't Lose Them", (1, 2), (5, 5)),
            r("At Risk", (1, 2), (3, 4)),
            r("Hibernating", (1, 2), (1, 2)),
        ]
    }

    fn opts(k: Option<usize>) -> Options {
        Options {
            k,
            k_min: 2,
            k_max: 6,
            select_k: SelectK::Silhouette,
            outliers: Outliers::Clip,
            log_features: vec!["frequency".into(), "monetary".into()],
            standardize: true,
            n_init: 4,
            max_iter: 300,
            tolerance: 1e-4,
            seed: 42,
            threads: 2,
        }
    }

    fn features() -> Vec<String> {
        vec!["recency".into(), "frequency".into(), "monetary".into()]
    }

    /// Three groups of customers: best (recent, frequent, big), middle, lapsed.
    fn customers() -> Vec<f64> {
        let mut rng = Rng::new(5);
        let mut v = Vec::new();
        for (recency, frequency, monetary, n) in [(5.0, 30.0, 5000.0, 120), (90.0, 5.0, 600.0, 200), (400.0, 1.0, 80.0, 180)] {
            for _ in 0..n {
                let jitter = |x: f64, rng: &mut Rng| x * (0.8 + 0.4 * rng.f64());
                v.extend([jitter(recency, &mut rng), jitter(frequency, &mut rng).round().max(1.0), jitter(monetary, &mut rng)]);
            }
        }
        v
    }

    #[test]
    fn finds_the_three_groups_and_names_them() {
        let t = train(customers(), &features(), &opts(None), &rules(), &mut |_| {}, &mut || {}).unwrap();
        assert_eq!(t.curve.len(), 5);
        assert_eq!(t.model.clusters.len(), 3, "silhouette picks k = 3");
        let sizes: Vec<i64> = t.model.clusters.iter().map(|c| c.size).collect();
        assert_eq!(sizes, vec![200, 180, 120], "numbered largest first");
        let best = &t.model.clusters[2];
        assert_eq!(best.label, "Champions");
        assert_eq!(t.model.clusters[1].label, "Hibernating");
        // Means are means of the member rows, in original units.
        assert!((best.mean[1] - 30.0).abs() < 3.0 && (best.mean[2] - 5000.0).abs() < 300.0);
    }

    #[test]
    fn fixed_k_and_deterministic() {
        let a = train(customers(), &features(), &opts(Some(4)), &rules(), &mut |_| {}, &mut || {}).unwrap();
        let b = train(customers(), &features(), &opts(Some(4)), &rules(), &mut |_| {}, &mut || {}).unwrap();
        assert_eq!(a.model, b.model);
        assert_eq!(a.curve.len(), 1);
        let mut labels: Vec<&str> = a.model.clusters.iter().map(|c| c.label.as_str()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), 4, "labels are unique: {:?}", a.model.clusters.iter().map(|c| &c.label).collect::<Vec<_>>());
    }

    /// The same rows in any order give the same model, bit for bit.
    #[test]
    fn row_order_does_not_matter() {
        let rows = customers();
        let mut shuffled: Vec<[f64; 3]> = rows.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect();
        let mut rng = Rng::new(99);
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let shuffled: Vec<f64> = shuffled.concat();
        assert_ne!(shuffled, rows);
        for k in [None, Some(4)] {
            let a = train(rows.clone(), &features(), &opts(k), &rules(), &mut |_| {}, &mut || {}).unwrap();
            let b = train(shuffled.clone(), &features(), &opts(k), &rules(), &mut |_| {}, &mut || {}).unwrap();
            assert_eq!(a.model, b.model);
            assert_eq!(a.metrics.inertia.to_bits(), b.metrics.inertia.to_bits());
            assert_eq!(
                a.curve.iter().map(|p| p.inertia.to_bits()).collect::<Vec<_>>(),
                b.curve.iter().map(|p| p.inertia.to_bits()).collect::<Vec<_>>()
            );
            let (_, ea) = evaluate(&a.model, rows.clone(), 7, &mut || {}).unwrap();
            let (_, eb) = evaluate(&a.model, shuffled.clone(), 7, &mut || {}).unwrap();
            assert_eq!(ea, eb);
        }
    }

    #[test]
    fn assignment_equals_brute_force() {
        let t = train(customers(), &features(), &opts(Some(3)), &rules(), &mut |_| {}, &mut || {}).unwrap();
        let m = &t.model;
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let raw = [rng.f64() * 600.0, (rng.f64() * 40.0).round(), rng.f64() * 9000.0];
            let mut row = raw;
            let got = Assigner::new(m).assign(&mut row).unwrap();
            // Brute force: preprocess by hand, then the nearest centroid.
            let s = &m.scaler;
            let x: Vec<f64> = (0..3)
                .map(|j| {
                    let mut v = raw[j].clamp(s.lower[j], s.upper[j]);
                    if s.log[j] {
                        v = (1.0 + v).ln();
                    }
                    (v - s.mean[j]) / s.scale[j]
                })
                .collect();
            let want = (0..3)
                .min_by(|a, b| {
                    let da: f64 = x.iter().zip(&m.clusters[*a].scaled).map(|(p, q)| (p - q).powi(2)).sum();
                    let db: f64 = x.iter().zip(&m.clusters[*b].scaled).map(|(p, q)| (p - q).powi(2)).sum();
                    da.total_cmp(&db)
                })
                .unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn option_errors() {
        let f = features();
        let mut o = opts(None);
        o.k_min = 5;
        o.k_max = 3;
        assert!(o.validate(&f).is_err());
        let mut o = opts(Some(0));
        assert!(o.validate(&f).is_err());
        o.k = Some(51);
        assert!(o.validate(&f).is_err());
        let mut o = opts(Some(3));
        o.log_features = vec!["price".into()];
        assert!(o.validate(&f).is_err());
        assert!(opts(Some(3)).validate(&["a".into(), "a".into()]).is_err());
        assert!(SelectK::parse("gap").is_err());
    }

    #[test]
    fn json_roundtrip_keeps_assignments() {
        let mut o = opts(Some(3));
        o.outliers = Outliers::Keep; // infinite fences go through JSON as null
        let t = train(customers(), &features(), &o, &rules(), &mut |_| {}, &mut || {}).unwrap();
        let json = serde_json::to_string(&t.model).unwrap();
        let back: Model = serde_json::from_str(&json).unwrap();
        assert_eq!(back.scaler.lower, vec![f64::NEG_INFINITY; 3]);
        assert_eq!(back.scaler.upper, vec![f64::INFINITY; 3]);
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let row = [rng.f64() * 500.0, rng.f64() * 30.0, rng.f64() * 6000.0];
            let (mut a, mut b) = (row, row);
            assert_eq!(Assigner::new(&t.model).assign(&mut a), Assigner::new(&back).assign(&mut b));
        }
        assert_eq!(back.check(Some(3), Naming::Document), Ok(()));
        let mut broken = back.clone();
        broken.clusters[0].scaled.pop();
        assert!(broken.check(Some(3), Naming::Document).is_err());
    }

    /// Each kind of damage, one at a time, is found and named (hand-written expectations).
    #[test]
    fn check_names_each_kind_of_damage() {
        let t = train(customers(), &features(), &opts(Some(3)), &rules(), &mut |_| {}, &mut || {}).unwrap();
        let good = t.model;
        assert_eq!(good.check(Some(3), Naming::Tables), Ok(()));
        type Damage = fn(&mut Model);
        let cases: Vec<(Damage, Option<i64>, Naming, &str)> = vec![
            (
                |m| {
                    m.scaler.mean.pop();
                },
                Some(3),
                Naming::Tables,
                "scale_mean has 2 values for the 3 features {recency,frequency,monetary}",
            ),
            (
                |m| m.scaler.scale.clear(),
                Some(3),
                Naming::Document,
                "scaler.scale has 0 values for the 3 features {recency,frequency,monetary}",
            ),
            (
                |m| m.scaler.scale[1] = 0.0,
                Some(3),
                Naming::Tables,
                "scale_sd[2] (frequency) is 0; standard deviations must be positive and finite",
            ),
            (|m| m.scaler.mean[2] = f64::NAN, Some(3), Naming::Tables, "scale_mean[3] (monetary) is NaN"),
            (|m| m.scaler.lower[0] = f64::NAN, Some(3), Naming::Tables, "lower_fence[1] (recency) is NaN"),
            (
                |m| {
                    m.scaler.lower[0] = 10.0;
                    m.scaler.upper[0] = 5.0;
                },
                Some(3),
                Naming::Tables,
                "lower_fence[1] (recency) is 10, above upper_fence[1] = 5",
            ),
            (
                |m| {
                    m.clusters.pop();
                },
                Some(3),
                Naming::Tables,
                "k is 3 but rfm_centroids has 2 rows for this version",
            ),
            (|_| {}, Some(7), Naming::Tables, "k is 7 but rfm_centroids has 3 rows for this version"),
            (|m| m.clusters[1].cluster = 4, Some(3), Naming::Tables, "the clusters are numbered {1,3,4}, expected 1 to 3"),
            (
                |m| {
                    m.clusters[1].scaled.pop();
                },
                Some(3),
                Naming::Tables,
                "rfm_centroids.scaled of cluster 2 has 2 values for the 3 features {recency,frequency,monetary}",
            ),
            (|m| m.clusters[2].scaled[0] = f64::INFINITY, Some(3), Naming::Document, "clusters[2].scaled[0] is Infinity"),
            (|m| m.clusters[0].label = m.clusters[2].label.clone(), Some(3), Naming::Tables, "same label"),
            (|m| m.clusters[0].label = " ".into(), Some(3), Naming::Tables, "rfm_centroids.label of cluster 1 is empty"),
            (
                |m| m.clusters[0].sum = vec![1.0],
                Some(3),
                Naming::Tables,
                "rfm_centroids.total of cluster 1 has 1 value, expected 3 (or none)",
            ),
            (|m| m.features[2] = "recency".into(), Some(3), Naming::Tables, "features {recency,frequency,recency} lists \"recency\" twice"),
        ];
        for (damage, k, naming, want) in cases {
            let mut m = good.clone();
            damage(&mut m);
            let got = m.check(k, naming).unwrap_err();
            assert!(got.contains(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn duplicate_names_are_told_apart() {
        let mk = |i: i32, m: f64| Cluster {
            cluster: i,
            label: String::new(),
            action: String::new(),
            scaled: vec![0.0; 3],
            original: vec![10.0, 10.0, m],
            size: 10,
            mean: vec![],
            median: vec![],
            sum: vec![],
        };
        // Every customer identical except spend: all clusters score the same rule.
        let raw: Vec<f64> = (0..50).flat_map(|i| [10.0, 10.0, i as f64]).collect();
        let mut cs = vec![mk(1, 20.0), mk(2, 30.0), mk(3, 25.0)];
        let rules = vec![Rule { segment: "Same".into(), action: "a".into(), r: (1, 5), f: (1, 5), m: (1, 5) }];
        name_clusters(&mut cs, &raw, 3, &features(), &rules);
        let labels: Vec<&str> = cs.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, vec!["Same (low spend)", "Same (high spend)", "Same (mid spend)"]);
    }
}
