//! rfm_train, rfm_k_search, rfm_evaluate and rfm_model_import: reading rows, calling the
//! core, and handing new versions to the model store.

use std::time::Instant;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;
use serde_json::{json, Value};

use super::call::*;
use super::error::{invalid, notice, null_not_allowed, OrRaise, PgError};
use super::store::{self, Version};
use super::{rules, source};
use crate::core::document::Document;
use crate::core::encode::{self, Column, Encoding, Kind};
use crate::core::metrics::Metrics;
use crate::core::model::{self, KPoint, Options, SelectK};
use crate::core::pca::Components;
use crate::core::scale::Outliers;

/// Attribute types of `rfm_train_result`, and the columns of `rfm_k_search` and `rfm_evaluate`.
const TRAIN_RESULT: [Oid; 9] = [
    pg_sys::TEXTOID,
    pg_sys::INT4OID,
    pg_sys::INT4OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
];
const K_SEARCH: [Oid; 7] =
    [pg_sys::INT4OID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID, pg_sys::INT4OID, pg_sys::FLOAT8OID];
const EVALUATE: [Oid; 8] = [
    pg_sys::TEXTOID,
    pg_sys::INT4OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
];

fn check() {
    pgrx::check_for_interrupts!();
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.4}"))
}

fn required<T>(args: &Args<'_>, v: Option<T>, what: &str) -> T {
    v.unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not be NULL", args.name)))
}

fn count(args: &Args<'_>, v: Option<i32>, what: &str) -> usize {
    let v = required(args, v, what);
    usize::try_from(v).unwrap_or_else(|_| invalid(format!("{}: {what} must not be negative, got {v}", args.name)))
}

/// Options shared by rfm_train (from argument `first`) and rfm_k_search.
/// Layout: k_min, k_max, [select_k], outliers, log_features, standardize, n_init, max_iter, tolerance, seed,
/// pca, pca_variance, max_levels.
fn options(args: &Args<'_>, k: Option<usize>, first: usize, with_select: bool) -> Options {
    let mut i = first;
    let mut next = || {
        i += 1;
        i - 1
    };
    let what = args.name;
    let k_min = count(args, args.i32(next()), "k_min");
    let k_max = count(args, args.i32(next()), "k_max");
    let select_k =
        if with_select { SelectK::parse(&required(args, args.text(next()), "select_k")).or_raise(what) } else { SelectK::Silhouette };
    let outliers = Outliers::parse(&required(args, args.text(next()), "outliers")).or_raise(what);
    let log_features = args.text_array(next(), "log_features");
    let standardize = required(args, args.bool(next()), "standardize");
    let n_init = count(args, args.i32(next()), "n_init");
    let max_iter = count(args, args.i32(next()), "max_iter");
    let tolerance = required(args, args.f64(next()), "tolerance");
    let seed = required(args, args.i64(next()), "seed") as u64;
    // Declarations before 0.5.0 (a database not yet updated) end at seed.
    let extended = args.nargs() > first + if with_select { 10 } else { 9 };
    let pca_count = if extended { args.i32(next()) } else { None };
    let pca_variance = if extended { args.f64(next()) } else { None };
    let pca = match (pca_count, pca_variance) {
        (Some(_), Some(_)) => invalid(format!("{what}: pass pca or pca_variance, not both")),
        (Some(n), None) => Some(Components::Count(
            usize::try_from(n).ok().filter(|n| *n > 0).unwrap_or_else(|| invalid(format!("{what}: pca must be at least 1, got {n}"))),
        )),
        (None, Some(v)) => Some(Components::Variance(v)),
        (None, None) => None,
    };
    let max_levels = if extended { count(args, args.i32(next()), "max_levels") } else { 20 };
    let threads = super::gucs::threads();
    Options { k, k_min, k_max, select_k, outliers, log_features, standardize, n_init, max_iter, tolerance, seed, threads, pca, max_levels }
}

fn options_json(o: &Options, enc: &Encoding) -> Value {
    let mut v = json!({
        "k": o.k, "k_min": o.k_min, "k_max": o.k_max,
        "select_k": match o.select_k { SelectK::Silhouette => "silhouette", SelectK::Elbow => "elbow" },
        "outliers": o.outliers.name(), "log_features": o.log_features(enc), "standardize": o.standardize,
        "n_init": o.n_init, "max_iter": o.max_iter, "tolerance": o.tolerance, "seed": o.seed as i64,
    });
    match o.pca {
        Some(Components::Count(n)) => v["pca"] = json!(n),
        Some(Components::Variance(x)) => v["pca_variance"] = json!(x),
        None => {}
    }
    if !enc.is_numeric() {
        v["max_levels"] = json!(o.max_levels);
    }
    v
}

fn features_arg(args: &Args<'_>, i: usize) -> Vec<String> {
    let f = required(args, args.text_array(i, "features"), "features");
    if f.is_empty() {
        invalid(format!("{}: features must name at least one column", args.name));
    }
    f
}

/// Fits the encoding of the features (one-hot for categorical ones) and encodes the rows.
fn encode(args: &Args<'_>, features: &[String], rows: source::Rows, opts: &Options) -> (Encoding, Vec<f64>) {
    let encoding = rows.table.fit(features, opts.max_levels).or_raise(args.name);
    opts.validate_with(features, Some(&encoding)).or_raise(args.name);
    for c in &encoding.columns {
        if let Column::Categorical { feature, levels, other } = c {
            let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            notice(format!(
                "{}: {feature}: {}{}",
                args.name,
                plural(levels.len(), "level", "levels"),
                if other.is_empty() {
                    String::new()
                } else {
                    format!(", {} grouped as {}", plural(other.len(), "rarer one", "rarer ones"), encode::OTHER)
                }
            ));
        }
    }
    let data = rows.table.encode(&encoding).or_raise(args.name);
    (encoding, data)
}

fn model_name(args: &Args<'_>, i: usize) -> String {
    let name = required(args, args.text(i), "model");
    if name.trim().is_empty() || name.len() > 200 {
        invalid(format!("{}: model name must be non-empty text of at most 200 bytes", args.name));
    }
    name
}

fn read_rows(args: &Args<'_>, i: usize, features: &[String], expect: Option<&[Kind]>) -> source::Rows {
    let what = args.name;
    let oid = required(args, args.oid(i), "source");
    let rows = source::read(what, oid, features, expect, &mut check);
    if rows.skipped > 0 {
        notice(format!("{what}: skipped {} rows of {} with a NULL, NaN or infinite feature", rows.skipped, rows.relation));
    }
    if rows.table.rows() == 0 {
        invalid(format!("{what}: {} has no rows with finite values of all features", rows.relation));
    }
    rows
}

fn train_result(call: &mut Call<'_>, name: &str, version: i32, k: usize, n_rows: i64, m: &Metrics, elapsed_ms: f64) -> Datum {
    let what = call.name;
    let result = call.cache(|a| Composite::for_result(a, &TRAIN_RESULT));
    result.form(
        what,
        &[
            Some(text_datum(name)),
            Some(Datum::from(version)),
            Some(Datum::from(k as i32)),
            Some(Datum::from(n_rows)),
            Some(f64_datum(m.inertia)),
            m.silhouette.map(f64_datum),
            m.davies_bouldin.map(f64_datum),
            m.calinski_harabasz.map(f64_datum),
            Some(f64_datum(elapsed_ms)),
        ],
    )
}

pg_v1! {
    // rfm_train(model, source, k, features, k_min, k_max, select_k, outliers, log_features,
    //           standardize, n_init, max_iter, tolerance, seed) -> rfm_train_result
    fn rfm_train(call: "rfm_train") -> Datum {
        let started = Instant::now();
        let args = call.args();
        let what = args.name;
        let name = model_name(&args, 0);
        let k = args.i32(2).map(|k| {
            usize::try_from(k).unwrap_or_else(|_| invalid(format!("{what}: k must be between 2 and {}, got {k}", model::MAX_K)))
        });
        let features = features_arg(&args, 3);
        let opts = options(&args, k, 4, true);
        opts.validate_with(&features, None).or_raise(what);
        store::check_can_store(args);
        let rules = rules::load(args);
        let rows = read_rows(&args, 1, &features, None);
        let (relation, skipped) = (rows.relation.clone(), rows.skipped);
        let (encoding, data) = encode(&args, &features, rows, &opts);
        notice(format!(
            "{what}: {} rows of {relation}, {} features{}, k {}",
            data.len() / encoding.width(),
            features.len(),
            if encoding.is_numeric() { String::new() } else { format!(" ({} encoded columns)", encoding.width()) },
            k.map_or(format!("{}..{} by {}", opts.k_min, opts.k_max, if opts.select_k == SelectK::Elbow { "elbow" } else { "silhouette" }), |k| k.to_string())
        ));
        let mut progress = |p: &KPoint| {
            notice(format!(
                "{what}: k = {}: inertia {:.4}, silhouette {}, {} iterations, {:.0} ms",
                p.k, p.inertia, fmt_opt(p.silhouette), p.iterations, p.elapsed_ms
            ))
        };
        let options = options_json(&opts, &encoding);
        let t = model::train(data, &features, encoding, &opts, &rules, &mut progress, &mut check).or_raise(what);
        if let Some(p) = &t.model.pca {
            notice(format!(
                "{what}: {} principal components explain {:.1}% of the variance",
                p.dims(),
                100.0 * p.variance_ratio.iter().sum::<f64>()
            ));
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let chosen_k = t.model.clusters.len();
        let version = store::store(args, &Version {
            name: &name,
            model: &t.model,
            n_rows: t.n_rows as i64,
            n_skipped: skipped as i64,
            source: Some(&relation),
            metrics: &t.metrics,
            options,
            curve: &t.curve,
            chosen_k,
            elapsed_ms,
        });
        train_result(&mut call, &name, version, chosen_k, t.n_rows as i64, &t.metrics, elapsed_ms)
    }

    // rfm_k_search(source, features, k_min, k_max, outliers, log_features, standardize,
    //              n_init, max_iter, tolerance, seed) -> SETOF (k, inertia, ...)
    fn rfm_k_search(call: "rfm_k_search") -> Datum {
        let args = call.args();
        let features = features_arg(&args, 1);
        let opts = options(&args, None, 2, false);
        opts.validate_with(&features, None).or_raise(args.name);
        let rows = read_rows(&args, 0, &features, None);
        let (encoding, data) = encode(&args, &features, rows, &opts);
        let t = model::train(data, &features, encoding, &opts, &[], &mut |_| {}, &mut check).or_raise(args.name);
        let out: Vec<Vec<Option<Datum>>> = t
            .curve
            .iter()
            .map(|p| {
                vec![
                    Some(Datum::from(p.k as i32)),
                    Some(f64_datum(p.inertia)),
                    p.silhouette.map(f64_datum),
                    p.davies_bouldin.map(f64_datum),
                    p.calinski_harabasz.map(f64_datum),
                    Some(Datum::from(p.iterations as i32)),
                    Some(f64_datum(p.elapsed_ms)),
                ]
            })
            .collect();
        materialize(args, &K_SEARCH, &out)
    }

    // rfm_evaluate(model, source) -> SETOF (model, version, n_rows, n_skipped, metrics...)
    fn rfm_evaluate(call: "rfm_evaluate") -> Datum {
        let args = call.args();
        let name = model_name(&args, 0);
        let stored = store::load(args, &name, None);
        let model = stored.model();
        let encoding = model.encoding();
        let kinds: Vec<Kind> = encoding.columns.iter().map(|c| c.kind()).collect();
        let rows = read_rows(&args, 1, &model.features, Some(&kinds));
        let skipped = rows.skipped;
        let data = rows.table.encode(&encoding).or_raise(args.name);
        let seed = 42;
        let (n, m) = model::evaluate(&model, data, seed, &mut check).or_raise(args.name);
        materialize(args, &EVALUATE, &[vec![
            Some(text_datum(&name)),
            Some(Datum::from(stored.version)),
            Some(Datum::from(n as i64)),
            Some(Datum::from(skipped as i64)),
            Some(f64_datum(m.inertia)),
            m.silhouette.map(f64_datum),
            m.davies_bouldin.map(f64_datum),
            m.calinski_harabasz.map(f64_datum),
        ]])
    }

    // rfm_model_import(doc jsonb, model text DEFAULT NULL) -> rfm_train_result
    fn rfm_model_import(call: "rfm_model_import") -> Datum {
        let started = Instant::now();
        let args = call.args();
        let what = args.name;
        store::check_can_store(args);
        let value = args.jsonb(0).unwrap_or_else(|| null_not_allowed(format!("{what}: doc must not be NULL")));
        let doc = Document::parse(value).unwrap_or_else(|e| {
            PgError::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{what}: not a pg_rfm model document: {e}"))
                .hint("Pass a document written by rfm_model_export, unchanged.")
                .raise()
        });
        store::check_document(what, &doc);
        let name = match args.text(1) {
            Some(_) => model_name(&args, 1),
            None => doc.model.clone(),
        };
        let metrics = Metrics {
            inertia: doc.metrics.inertia.unwrap_or(f64::NAN),
            silhouette: doc.metrics.silhouette,
            davies_bouldin: doc.metrics.davies_bouldin,
            calinski_harabasz: doc.metrics.calinski_harabasz,
        };
        let model = doc.model();
        let k = model.clusters.len();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let version = store::store(args, &Version {
            name: &name,
            model: &model,
            n_rows: doc.n_rows,
            n_skipped: doc.n_skipped,
            source: doc.source.as_deref(),
            metrics: &metrics,
            options: doc.options.clone(),
            curve: &doc.k_search,
            chosen_k: k,
            elapsed_ms,
        });
        train_result(&mut call, &name, version, k, doc.n_rows, &metrics, elapsed_ms)
    }
}
