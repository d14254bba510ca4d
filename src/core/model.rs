//! Training a segmentation model (preprocessing, k choice, KMeans, metrics, cluster
//! profiles and names) and assigning rows to its clusters.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::distance::{dist2, nearest};
use super::encode::{self, Column, Encoding, Input, Kind, Lookup};
use super::error::{invalid, out_of_range, show, sql_array};
use super::kmeans::{self, Label};
use super::metrics::{self, Metrics};
use super::pca::{Components, Pca};
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
    /// Features to log-transform; None: whichever of frequency and monetary are numeric
    /// features.
    pub log_features: Option<Vec<String>>,
    pub standardize: bool,
    /// Principal components to project onto before clustering (None: no PCA).
    pub pca: Option<Components>,
    /// Most one-hot columns per categorical feature.
    pub max_levels: usize,
    pub n_init: usize,
    pub max_iter: usize,
    pub tolerance: f64,
    pub seed: u64,
    /// Threads for the KMeans runs (see kmeans::Params).
    pub threads: usize,
}

impl Options {
    /// The features that are log-transformed: as given, or by default frequency and
    /// monetary when they are numeric features.
    pub fn log_features(&self, enc: &Encoding) -> Vec<String> {
        match &self.log_features {
            Some(v) => v.clone(),
            None => ["frequency", "monetary"]
                .iter()
                .filter(|f| enc.columns.iter().any(|c| c.kind() == Kind::Numeric && c.feature() == **f))
                .map(|f| f.to_string())
                .collect(),
        }
    }

    /// The k values to try, after checking the options against the features and their
    /// encoding (numeric or categorical, when known).
    pub fn validate_with(&self, features: &[String], enc: Option<&Encoding>) -> Result<Vec<usize>, CoreError> {
        let ks = self.validate(features)?;
        encode::check_max_levels(self.max_levels)?;
        match self.pca {
            Some(Components::Count(0)) => return Err(invalid("pca must be at least 1")),
            Some(Components::Variance(v)) if !(v > 0.0 && v < 1.0) => {
                return Err(invalid(format!("pca_variance must be greater than 0 and less than 1, got {}", show(v))))
            }
            _ => {}
        }
        if let (Some(enc), Some(log)) = (enc, &self.log_features) {
            for f in log {
                if enc.columns.iter().any(|c| c.kind() == Kind::Categorical && c.feature() == f) {
                    return Err(invalid(format!("log_features names \"{f}\", which is a categorical feature"))
                        .hint("Only numeric features can be log-transformed."));
                }
            }
        }
        Ok(ks)
    }

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
        for f in self.log_features.iter().flatten() {
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

/// What assignment needs: features, their encoding, preprocessing, PCA and clusters.
///
/// Spaces: the `features` are the input columns; encoding turns them into the encoded
/// columns (`encoded()`: one per numeric feature, one per kept level of a categorical one),
/// on which the scaler works (fences, log, standardization: one entry per encoded column);
/// PCA, when present, projects those onto its components. Centroids (`scaled`) live in
/// the final space (`space()`), cluster statistics (`original`, `mean`, ...) in the encoded
/// columns, in original units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub features: Vec<String>,
    /// One entry per feature (empty: every feature numeric).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encoding: Vec<Column>,
    pub scaler: Scaler,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca: Option<Pca>,
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
    pub fn encoding(&self) -> Encoding {
        Encoding::of(&self.features, &self.encoding)
    }

    /// Names of the encoded columns (the features themselves for a numeric model).
    pub fn encoded(&self) -> Vec<String> {
        if self.encoding.is_empty() {
            self.features.clone()
        } else {
            self.encoding().names()
        }
    }

    /// Names of the dimensions centroids live in: the encoded columns, or PC1..PCn.
    pub fn space(&self) -> Vec<String> {
        match &self.pca {
            Some(p) => (1..=p.dims()).map(|i| format!("PC{i}")).collect(),
            None => self.encoded(),
        }
    }

    /// True when every feature is numeric (rows can be passed as float8[]).
    pub fn is_numeric(&self) -> bool {
        self.encoding.iter().all(|c| c.kind() == Kind::Numeric)
    }

    /// Checks everything assignment, profiles and reports rely on, whatever the model came
    /// from (the tables, an import, a cache): one entry per feature in every preprocessing
    /// array, finite values, positive scales, `declared_k` (when known) clusters numbered
    /// 1..k, every centroid of the model's dimension, unique non-empty labels. Returns the
    /// first problem found, named as `naming` says.
    pub fn check(&self, declared_k: Option<i64>, naming: Naming) -> Result<(), String> {
        if self.features.is_empty() {
            return Err("features is empty".into());
        }
        let listed = sql_array(&self.features);
        for (i, f) in self.features.iter().enumerate() {
            if f.is_empty() {
                return Err(format!("features {listed} has an empty name"));
            }
            if self.features[..i].contains(f) {
                return Err(format!("features {listed} lists \"{f}\" twice"));
            }
        }
        if !self.encoding.is_empty() {
            Encoding { columns: self.encoding.clone() }.check(&self.features, "encoding")?;
        }
        let names = self.encoded();
        let d = names.len();
        let features = sql_array(&names);
        let s = &self.scaler;
        for (field, len) in
            [("lower", s.lower.len()), ("upper", s.upper.len()), ("log", s.log.len()), ("mean", s.mean.len()), ("scale", s.scale.len())]
        {
            if len != d && !(field == "log" && naming == Naming::Tables) {
                return Err(format!("{} has {} for the {d} features {features}", naming.scaler(field), values(len)));
            }
        }
        let one_hot = self.encoding().one_hot();
        for j in 0..d {
            let f = &names[j];
            if one_hot[j] && s.log.get(j) == Some(&true) {
                return Err(format!("{}[{}] ({f}) marks a one-hot column for log1p", naming.scaler("log"), naming.at(j)));
            }
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
        let space = match &self.pca {
            Some(p) => {
                p.check(d, "pca")?;
                p.dims()
            }
            None => d,
        };
        let in_space = |n: usize| match &self.pca {
            Some(_) => format!("has {} for the {space} principal components", values(n)),
            None => format!("has {} for the {d} features {features}", values(n)),
        };
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
            if c.scaled.len() != space {
                return Err(format!("{} {}", at("scaled"), in_space(c.scaled.len())));
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

/// A checked model, laid out for assignment: the encoding, the preprocessing, the PCA and
/// the centroids as flat rows (cluster `i` of the model is row `i`).
pub struct Assigner {
    scaler: Scaler,
    pca: Option<Pca>,
    centroids: Vec<f64>,
    /// Encoded columns.
    d: usize,
    /// Dimensions of the centroids (d, or the PCA components).
    p: usize,
    columns: Vec<Column>,
    lookups: Vec<Option<Lookup>>,
    numeric: bool,
}

/// Why a row got its cluster: the two nearest centroids and the squared differences to the
/// nearest, per dimension of the model's final space.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub best: usize,
    pub distance: f64,
    pub second: usize,
    pub second_distance: f64,
    /// Each dimension's share of the squared distance to the nearest centroid (0 when the
    /// row is exactly on it).
    pub shares: Vec<f64>,
}

impl Assigner {
    /// An assigner for `model`, which must have passed `Model::check`.
    pub fn new(model: &Model) -> Assigner {
        let enc = model.encoding();
        let d = enc.width();
        Assigner {
            scaler: model.scaler.clone(),
            pca: model.pca.clone(),
            centroids: model.centroid_rows(),
            d,
            p: model.pca.as_ref().map_or(d, Pca::dims),
            lookups: enc.columns.iter().map(|c| (c.kind() == Kind::Categorical).then(|| Lookup::new(c))).collect(),
            numeric: enc.is_numeric(),
            columns: enc.columns,
        }
    }

    /// Encoded columns a row has (the features, for a numeric model).
    pub fn dims(&self) -> usize {
        self.d
    }

    pub fn is_numeric(&self) -> bool {
        self.numeric
    }

    /// Kind of each input feature.
    pub fn kinds(&self) -> Vec<Kind> {
        self.columns.iter().map(Column::kind).collect()
    }

    /// Encodes one row of inputs (one per feature, in the model's order) into `out`.
    /// A categorical value not seen in training sets none of its feature's columns.
    pub fn encode(&self, inputs: &[Input<'_>], out: &mut Vec<f64>) -> Result<(), CoreError> {
        if inputs.len() != self.columns.len() {
            return Err(invalid(format!("expected {} feature values, got {}", self.columns.len(), inputs.len())));
        }
        out.clear();
        out.resize(self.d, 0.0);
        let mut at = 0;
        for ((col, lookup), input) in self.columns.iter().zip(&self.lookups).zip(inputs) {
            match (input, lookup) {
                (Input::Num(x), None) => out[at] = *x,
                (Input::Cat(v), Some(l)) => {
                    if let Some(slot) = l.slot(v) {
                        out[at + slot] = 1.0;
                    }
                }
                (Input::Num(_), Some(_)) => return Err(invalid(format!("feature \"{}\" is categorical, got a number", col.feature()))),
                (Input::Cat(_), None) => return Err(invalid(format!("feature \"{}\" is numeric, got text", col.feature()))),
            }
            at += col.width();
        }
        Ok(())
    }

    /// `row` (encoded, original units) in the space the centroids live in: preprocessed in
    /// place, then projected into `out` when the model has a PCA. Returns that space's row.
    #[inline]
    fn place<'a>(&self, row: &'a mut [f64], out: &'a mut [f64]) -> &'a [f64] {
        self.scaler.transform(row);
        match &self.pca {
            None => row,
            Some(p) => {
                p.project(row, &mut out[..self.p]);
                &out[..self.p]
            }
        }
    }

    /// Index into the model's clusters of the centroid nearest to `row` (encoded columns,
    /// original units) after the stored preprocessing; `row` is overwritten with its scaled
    /// form. An out-of-range error when the distances are not finite (possible only for
    /// models trained with outliers => 'keep' and enormous inputs).
    #[inline]
    pub fn assign(&self, row: &mut [f64]) -> Result<usize, CoreError> {
        if row.len() != self.d {
            return Err(invalid(format!("expected {} feature values, got {}", self.d, row.len())));
        }
        if self.pca.is_some() {
            let mut buf = [0.0; 32];
            let mut heap;
            let out: &mut [f64] = if self.p <= buf.len() {
                &mut buf
            } else {
                heap = vec![0.0; self.p];
                &mut heap
            };
            let x = self.place(row, out);
            self.nearest_placed(x)
        } else {
            self.scaler.transform(row);
            self.nearest_placed(row)
        }
    }

    /// Index of the centroid nearest to `x`, a row already in the centroids' space.
    #[inline]
    fn nearest_placed(&self, x: &[f64]) -> Result<usize, CoreError> {
        // Row lengths known at compile time for the usual dimensions: the distance loop unrolls.
        let (i, dd) = match x.len() {
            2 => nearest_fixed::<2>(x, &self.centroids),
            3 => nearest_fixed::<3>(x, &self.centroids),
            4 => nearest_fixed::<4>(x, &self.centroids),
            _ => nearest(x, &self.centroids),
        };
        if dd.is_finite() {
            Ok(i)
        } else {
            Err(out_of_range("feature values are too large for this model (out of range for float8 after preprocessing)"))
        }
    }

    /// The nearest and second-nearest centroids of `row` and each dimension's share of the
    /// distance to the nearest (the nearest is the cluster `assign` gives).
    pub fn explain(&self, row: &mut [f64]) -> Result<Explanation, CoreError> {
        if row.len() != self.d {
            return Err(invalid(format!("expected {} feature values, got {}", self.d, row.len())));
        }
        let mut out = vec![0.0; self.p];
        let x = self.place(row, &mut out).to_vec();
        let (best, d2) = nearest(&x, &self.centroids);
        let mut second = (usize::MAX, f64::INFINITY);
        for (c, cent) in self.centroids.chunks_exact(self.p).enumerate() {
            let dd = dist2(&x, cent);
            if c != best && (dd < second.1 || second.0 == usize::MAX) {
                second = (c, dd);
            }
        }
        if !(d2.is_finite() && second.1.is_finite()) {
            return Err(out_of_range("feature values are too large for this model (out of range for float8 after preprocessing)"));
        }
        let cent = &self.centroids[best * self.p..(best + 1) * self.p];
        let shares = x.iter().zip(cent).map(|(a, b)| if d2 > 0.0 { (a - b) * (a - b) / d2 } else { 0.0 }).collect();
        Ok(Explanation { best, distance: d2.sqrt(), second: second.0, second_distance: second.1.sqrt(), shares })
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

/// Trains a model on `raw` rows (original units, encoded with `encoding`: n rows of its
/// width). `rules` name the clusters of RFM models; `progress` sees each k as it is tried;
/// `check` is called often (the Postgres layer checks for cancellation there).
pub fn train(
    mut raw: Vec<f64>,
    features: &[String],
    encoding: Encoding,
    opts: &Options,
    rules: &[Rule],
    progress: &mut dyn FnMut(&KPoint),
    check: &mut dyn FnMut(),
) -> Result<Trained, CoreError> {
    let ks = opts.validate_with(features, Some(&encoding))?;
    let names = encoding.names();
    let d = names.len();
    sort_rows(&mut raw, d);
    let log_features = opts.log_features(&encoding);
    let one_hot = encoding.one_hot();
    let log: Vec<bool> = names.iter().zip(&one_hot).map(|(f, h)| !h && log_features.contains(f)).collect();
    let (scaler, keep) = Scaler::fit_with(&raw, d, opts.outliers, log, opts.standardize, &one_hot)?;
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
    let pca = match opts.pca {
        Some(want) => Some(Pca::fit(&scaled, d, want, check)?),
        None => None,
    };
    let space = match &pca {
        Some(p) => p.transform(&scaled, d),
        None => scaled.clone(),
    };
    let p = pca.as_ref().map_or(d, Pca::dims);

    let mut curve = Vec::new();
    let mut fits = Vec::new();
    for &k in &ks {
        let started = Instant::now();
        let fit = kmeans::fit(&space, p, &opts.kmeans(k), check)?;
        let m = metrics::all(&space, p, &fit.labels, &fit.centroids, opts.seed, check);
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
    let labels: Vec<Label> = space.chunks_exact(p).map(|x| nearest(x, &centroids).0 as Label).collect();
    let metrics = Metrics {
        inertia: curve[chosen].inertia,
        silhouette: curve[chosen].silhouette,
        davies_bouldin: curve[chosen].davies_bouldin,
        calinski_harabasz: curve[chosen].calinski_harabasz,
    };
    drop(space);
    let distinct = distinctiveness(&scaled, d, &labels, k);
    drop(scaled);

    let space = Space { names: &names, one_hot: &one_hot, scaler: &scaler, pca: pca.as_ref() };
    let clusters = describe(&raw, k, &centroids, &labels, &space, &distinct, rules);
    let encoding = if encoding.is_numeric() { Vec::new() } else { encoding.columns };
    Ok(Trained { model: Model { features: features.to_vec(), encoding, scaler, pca, clusters }, curve, chosen, metrics, n_rows: n })
}

/// How far each cluster's mean lies from the population's, per encoded column, in standard
/// deviations of the preprocessed data (k rows of d).
fn distinctiveness(scaled: &[f64], d: usize, labels: &[Label], k: usize) -> Vec<f64> {
    let n = (scaled.len() / d.max(1)).max(1) as f64;
    let (counts, sums) = metrics::cluster_sums(scaled, d, labels, k);
    let mean: Vec<f64> = (0..d).map(|j| (0..k).map(|c| sums[c * d + j]).sum::<f64>() / n).collect();
    let mut var = vec![0.0; d];
    for row in scaled.chunks_exact(d) {
        var.iter_mut().zip(row.iter().zip(&mean)).for_each(|(v, (x, m))| *v += (x - m) * (x - m));
    }
    let sd: Vec<f64> = var.iter().map(|v| (v / n).sqrt()).collect();
    let mut z = vec![0.0; k * d];
    for c in 0..k {
        for j in 0..d {
            let cm = sums[c * d + j] / counts[c].max(1) as f64;
            z[c * d + j] = if sd[j] > 1e-12 { (cm - mean[j]) / sd[j] } else { 0.0 };
        }
    }
    z
}

/// The encoded columns and the transformations between original units and the centroids' space.
struct Space<'a> {
    names: &'a [String],
    one_hot: &'a [bool],
    scaler: &'a Scaler,
    pca: Option<&'a Pca>,
}

/// Per-cluster statistics, numbering (largest cluster first) and names.
fn describe(
    raw: &[f64],
    k: usize,
    centroids: &[f64],
    labels: &[Label],
    space: &Space<'_>,
    distinct: &[f64],
    rules: &[Rule],
) -> Vec<Cluster> {
    let d = space.names.len();
    let p = space.pca.map_or(d, Pca::dims);
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
            centroids[a * p..(a + 1) * p]
                .iter()
                .zip(&centroids[b * p..(b + 1) * p])
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut clusters: Vec<Cluster> = order
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let scaled = centroids[c * p..(c + 1) * p].to_vec();
            let mut original = match space.pca {
                Some(pca) => pca.inverse(&scaled),
                None => scaled.clone(),
            };
            space.scaler.inverse(&mut original);
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
    let z: Vec<Vec<f64>> = order.iter().map(|&c| distinct[c * d..(c + 1) * d].to_vec()).collect();
    name_clusters(&mut clusters, raw, d, space.names, rules, Some((&z, space.one_hot)));
    clusters
}

/// A column name as words: `mnt_meat_products` -> `mnt meat products`.
fn words(name: &str) -> String {
    name.replace('_', " ")
}

/// A short description of a cluster from its most distinctive encoded columns (`z`: how
/// many standard deviations its mean lies from the population's): "High income, low
/// recency, education: PhD". Only columns at least 0.3 standard deviations off count; a
/// cluster with none is "Average".
fn describe_label(z: &[f64], names: &[String], one_hot: &[bool], take: usize) -> String {
    let mut cands: Vec<usize> = (0..z.len()).filter(|j| z[*j].abs() >= 0.3 && (!one_hot[*j] || z[*j] > 0.0)).collect();
    cands.sort_by(|a, b| z[*b].abs().total_cmp(&z[*a].abs()).then(a.cmp(b)));
    let parts: Vec<String> = cands
        .iter()
        .take(take)
        .map(|&j| {
            if one_hot[j] {
                match names[j].split_once('=') {
                    Some((f, l)) if l == encode::OTHER => format!("{}: other", words(f)),
                    Some((f, l)) => format!("{}: {l}", words(f)),
                    None => words(&names[j]),
                }
            } else if z[j] > 0.0 {
                format!("high {}", words(&names[j]))
            } else {
                format!("low {}", words(&names[j]))
            }
        })
        .collect();
    let label = if parts.is_empty() { "average".to_string() } else { parts.join(", ") };
    let mut chars = label.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => label,
    }
}

/// Names each cluster: for RFM models (recency, frequency and monetary among the encoded
/// columns), the rule its centroid (original units) scores into against the training
/// population's quintiles; otherwise, with `distinct` (per cluster, how far its means lie
/// from the population's, and which columns are one-hot), from its most distinctive
/// columns; else "Cluster i". Clusters that land on the same name are told apart by more
/// columns, then by spend (or size): "(high spend)", "(low spend)", ...
pub fn name_clusters(
    clusters: &mut [Cluster],
    raw: &[f64],
    d: usize,
    features: &[String],
    rules: &[Rule],
    distinct: Option<(&[Vec<f64>], &[bool])>,
) {
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
    } else if let Some((z, one_hot)) = distinct {
        for (c, zc) in clusters.iter_mut().zip(z) {
            c.label = describe_label(zc, features, one_hot, 2);
        }
        // Told apart by a third column where two clusters read the same.
        let first: Vec<String> = clusters.iter().map(|c| c.label.clone()).collect();
        for (i, c) in clusters.iter_mut().enumerate() {
            if first.iter().filter(|l| **l == first[i]).count() > 1 {
                c.label = describe_label(&z[i], features, one_hot, 3);
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
    let assigner = Assigner::new(model);
    let d = assigner.dims();
    let n = raw.len() / d.max(1);
    if n == 0 {
        return Err(invalid("no rows to evaluate on"));
    }
    sort_rows(&mut raw, d);
    let p = assigner.p;
    let mut space = Vec::with_capacity(n * p);
    let mut labels: Vec<Label> = Vec::with_capacity(n);
    let mut out = vec![0.0; p];
    for row in raw.chunks_exact_mut(d) {
        let x = assigner.place(row, &mut out);
        labels.push(assigner.nearest_placed(x)? as Label);
        space.extend_from_slice(x);
    }
    Ok((n, metrics::all(&space, p, &labels, &model.centroid_rows(), seed, check)))
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
            log_features: Some(vec!["frequency".into(), "monetary".into()]),
            standardize: true,
            pca: None,
            max_levels: 20,
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
        let t = train(customers(), &features(), Encoding::numeric(&features()), &opts(None), &rules(), &mut |_| {}, &mut || {}).unwrap();
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
        let a = train(customers(), &features(), Encoding::numeric(&features()), &opts(Some(4)), &rules(), &mut |_| {}, &mut || {}).unwrap();
        let b = train(customers(), &features(), Encoding::numeric(&features()), &opts(Some(4)), &rules(), &mut |_| {}, &mut || {}).unwrap();
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
            let a = train(rows.clone(), &features(), Encoding::numeric(&features()), &opts(k), &rules(), &mut |_| {}, &mut || {}).unwrap();
            let b =
                train(shuffled.clone(), &features(), Encoding::numeric(&features()), &opts(k), &rules(), &mut |_| {}, &mut || {}).unwrap();
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
        let t = train(customers(), &features(), Encoding::numeric(&features()), &opts(Some(3)), &rules(), &mut |_| {}, &mut || {}).unwrap();
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
        o.log_features = Some(vec!["price".into()]);
        assert!(o.validate(&f).is_err());
        assert!(opts(Some(3)).validate(&["a".into(), "a".into()]).is_err());
        assert!(SelectK::parse("gap").is_err());
    }

    #[test]
    fn json_roundtrip_keeps_assignments() {
        let mut o = opts(Some(3));
        o.outliers = Outliers::Keep; // infinite fences go through JSON as null
        let t = train(customers(), &features(), Encoding::numeric(&features()), &o, &rules(), &mut |_| {}, &mut || {}).unwrap();
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
        let t = train(customers(), &features(), Encoding::numeric(&features()), &opts(Some(3)), &rules(), &mut |_| {}, &mut || {}).unwrap();
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
        name_clusters(&mut cs, &raw, 3, &features(), &rules, None);
        let labels: Vec<&str> = cs.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, vec!["Same (low spend)", "Same (high spend)", "Same (mid spend)"]);
    }
}
