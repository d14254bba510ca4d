//! rfm_train, rfm_k_search, rfm_evaluate and rfm_model_import: reading rows, calling the
//! core, and storing model versions in the extension's tables.

use std::time::Instant;

use pgrx::pg_sys::{Datum, FunctionCallInfo};
use pgrx::spi::{Spi, SpiResult};
use pgrx::{PgSqlErrorCode, PgLogLevel};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{invalid, null_not_allowed, raise, spi_fail, OrRaise};
use super::fmgr::*;
use super::spi::select_text;
use super::{rules, source};
use crate::core::metrics::Metrics;
use crate::core::model::{self, KPoint, Model, Options, SelectK};
use crate::core::scale::Outliers;

fn check() {
    pgrx::check_for_interrupts!();
}

fn notice(msg: String) {
    pgrx::ereport!(PgLogLevel::NOTICE, PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, msg);
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |v| format!("{v:.4}"))
}

fn required<T>(v: Option<T>, what: &str) -> T {
    v.unwrap_or_else(|| null_not_allowed(format!("{what} must not be NULL")))
}

fn count(v: Option<i32>, what: &str) -> usize {
    let v = required(v, what);
    usize::try_from(v).unwrap_or_else(|_| invalid(format!("{what} must not be negative, got {v}")))
}

/// Options shared by rfm_train (from argument `first`) and rfm_k_search.
/// Layout: k_min, k_max, [select_k], outliers, log_features, standardize, n_init, max_iter, tolerance, seed.
fn options(fcinfo: FunctionCallInfo, k: Option<usize>, first: usize, with_select: bool) -> Options {
    let mut i = first;
    let mut next = || {
        i += 1;
        i - 1
    };
    let k_min = count(i32_arg(fcinfo, next()), "k_min");
    let k_max = count(i32_arg(fcinfo, next()), "k_max");
    let select_k = if with_select {
        SelectK::parse(&required(text_arg(fcinfo, next()), "select_k")).or_raise()
    } else {
        SelectK::Silhouette
    };
    let outliers = Outliers::parse(&required(text_arg(fcinfo, next()), "outliers")).or_raise();
    let log_features = required(text_array_arg(fcinfo, next(), "log_features"), "log_features");
    let standardize = required(bool_arg(fcinfo, next()), "standardize");
    let n_init = count(i32_arg(fcinfo, next()), "n_init");
    let max_iter = count(i32_arg(fcinfo, next()), "max_iter");
    let tolerance = required(f64_arg(fcinfo, next()), "tolerance");
    let seed = required(i64_arg(fcinfo, next()), "seed") as u64;
    let threads = super::gucs::threads();
    Options { k, k_min, k_max, select_k, outliers, log_features, standardize, n_init, max_iter, tolerance, seed, threads }
}

fn options_json(o: &Options) -> Value {
    json!({
        "k": o.k, "k_min": o.k_min, "k_max": o.k_max,
        "select_k": match o.select_k { SelectK::Silhouette => "silhouette", SelectK::Elbow => "elbow" },
        "outliers": o.outliers.name(), "log_features": o.log_features, "standardize": o.standardize,
        "n_init": o.n_init, "max_iter": o.max_iter, "tolerance": o.tolerance, "seed": o.seed as i64,
    })
}

fn features_arg(fcinfo: FunctionCallInfo, i: usize) -> Vec<String> {
    let f = required(text_array_arg(fcinfo, i, "features"), "features");
    if f.is_empty() {
        invalid("features must name at least one column");
    }
    f
}

fn model_name(fcinfo: FunctionCallInfo, i: usize) -> String {
    let name = required(text_arg(fcinfo, i), "model");
    if name.trim().is_empty() || name.len() > 200 {
        invalid("model name must be non-empty text of at most 200 bytes");
    }
    name
}

fn read_rows(fcinfo: FunctionCallInfo, i: usize, features: &[String], what: &str) -> source::Rows {
    let oid = required(oid_arg(fcinfo, i), "source");
    let rows = source::read(oid, features, &mut check);
    if rows.skipped > 0 {
        notice(format!(
            "{what}: skipped {} rows of {} with a NULL, NaN or infinite feature",
            rows.skipped, rows.relation
        ));
    }
    if rows.data.is_empty() {
        invalid(format!("{what}: {} has no rows with finite values of all features", rows.relation));
    }
    rows
}

/// Fails fast, before any training work, when the caller may not write model versions.
fn check_can_store(fcinfo: FunctionCallInfo, what: &str) {
    let schema = quote_ident(&own_schema(fcinfo));
    let ok = select_text(
        "SELECT pg_catalog.has_table_privilege($1 || '.rfm_models', 'INSERT, UPDATE')
            AND pg_catalog.has_table_privilege($1 || '.rfm_centroids', 'INSERT')
            AND pg_catalog.has_table_privilege($1 || '.rfm_k_search', 'INSERT')",
        &[&schema],
    );
    if ok.as_deref() != Some("t") {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("{what}: permission denied to store models (needs INSERT and UPDATE on rfm_models, INSERT on rfm_centroids and rfm_k_search)"),
        );
    }
}

/// Everything a stored version holds.
struct Version<'a> {
    name: &'a str,
    model: &'a Model,
    n_rows: i64,
    n_skipped: i64,
    source: Option<&'a str>,
    metrics: &'a Metrics,
    options: Value,
    curve: &'a [KPoint],
    chosen_k: usize,
    elapsed_ms: f64,
}

/// Inserts JSON objects whose keys are the table's column names.
fn insert_rows(client: &mut pgrx::spi::SpiClient<'_>, schema: &str, table: &str, rows: Vec<Value>) -> SpiResult<()> {
    client.update(
        format!(
            "INSERT INTO {schema}.{table}
             SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::{schema}.{table}, $1::jsonb)"
        )
        .as_str(),
        None,
        &[Value::Array(rows).to_string().into()],
    )?;
    Ok(())
}

/// Writes a new version and makes it the active one; returns its number.
fn store(fcinfo: FunctionCallInfo, v: &Version<'_>) -> i32 {
    let schema = quote_ident(&own_schema(fcinfo));
    let s = &v.model.scaler;
    let log_features: Vec<&String> = v.model.features.iter().zip(&s.log).filter(|(_, l)| **l).map(|(f, _)| f).collect();
    let finite = |x: &[f64]| -> Vec<Option<f64>> { x.iter().map(|v| v.is_finite().then_some(*v)).collect() };
    let result: SpiResult<i32> = Spi::connect_mut(|client| {
        client.update(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('pg_rfm model ' || $1, 0))",
            None,
            &[v.name.into()],
        )?;
        let version: i32 = client
            .update(
                format!("SELECT (coalesce(max(version), 0) + 1)::int FROM {schema}.rfm_models WHERE model = $1").as_str(),
                None,
                &[v.name.into()],
            )?
            .first()
            .get_one::<i32>()?
            .unwrap_or(1);
        client.update(
            format!("UPDATE {schema}.rfm_models SET active = false WHERE model = $1 AND active").as_str(),
            None,
            &[v.name.into()],
        )?;
        let row = json!({
            "model": v.name, "version": version, "active": true, "features": v.model.features,
            "k": v.model.clusters.len(), "n_rows": v.n_rows, "n_skipped": v.n_skipped, "source": v.source,
            "outliers": s.outliers.name(), "lower_fence": finite(&s.lower), "upper_fence": finite(&s.upper),
            "log_features": log_features, "scale_mean": s.mean, "scale_sd": s.scale,
            "inertia": v.metrics.inertia, "silhouette": v.metrics.silhouette,
            "davies_bouldin": v.metrics.davies_bouldin, "calinski_harabasz": v.metrics.calinski_harabasz,
            "options": v.options, "elapsed_ms": v.elapsed_ms,
        });
        client.update(
            format!(
                "INSERT INTO {schema}.rfm_models (model, version, active, features, k, n_rows, n_skipped, source,
                     outliers, lower_fence, upper_fence, log_features, scale_mean, scale_sd, inertia, silhouette,
                     davies_bouldin, calinski_harabasz, options, elapsed_ms)
                 SELECT model, version, active, features, k, n_rows, n_skipped, source, outliers, lower_fence,
                     upper_fence, log_features, scale_mean, scale_sd, inertia, silhouette, davies_bouldin,
                     calinski_harabasz, options, elapsed_ms
                 FROM pg_catalog.jsonb_populate_record(NULL::{schema}.rfm_models, $1::jsonb)"
            )
            .as_str(),
            None,
            &[row.to_string().into()],
        )?;
        let clusters: Vec<Value> = v
            .model
            .clusters
            .iter()
            .map(|c| {
                json!({
                    "model": v.name, "version": version, "cluster": c.cluster, "label": c.label,
                    "action": (!c.action.is_empty()).then_some(&c.action), "size": c.size,
                    "scaled": c.scaled, "original": c.original, "mean": c.mean, "median": c.median, "total": c.sum,
                })
            })
            .collect();
        insert_rows(client, &schema, "rfm_centroids", clusters)?;
        let curve: Vec<Value> = v
            .curve
            .iter()
            .map(|p| {
                json!({
                    "model": v.name, "version": version, "k": p.k, "inertia": p.inertia,
                    "silhouette": p.silhouette, "davies_bouldin": p.davies_bouldin,
                    "calinski_harabasz": p.calinski_harabasz, "iterations": p.iterations,
                    "elapsed_ms": p.elapsed_ms, "chosen": p.k == v.chosen_k,
                })
            })
            .collect();
        insert_rows(client, &schema, "rfm_k_search", curve)?;
        Ok(version)
    });
    result.unwrap_or_else(|e| spi_fail(e))
}

fn train_result(fcinfo: FunctionCallInfo, name: &str, version: i32, k: usize, n_rows: i64, m: &Metrics, elapsed_ms: f64) -> Datum {
    let td = result_tupdesc(fcinfo);
    composite(
        td,
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

/// The exported document of a model, parsed; errors when the model does not exist.
pub fn load_doc<T: for<'de> Deserialize<'de>>(fcinfo: FunctionCallInfo, name: &str) -> T {
    let schema = quote_ident(&own_schema(fcinfo));
    let doc = select_text(&format!("SELECT {schema}.rfm_model_export($1)::text"), &[name]).unwrap_or_else(|| {
        raise(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("model \"{name}\" does not exist (no active version)"))
    });
    serde_json::from_str(&doc).unwrap_or_else(|e| {
        raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("model \"{name}\" is stored inconsistently: {e}"))
    })
}

/// The parts of an exported document import needs (see rfm_model_export).
#[derive(Deserialize)]
struct Doc {
    format: String,
    format_version: i64,
    model: String,
    #[serde(flatten)]
    body: Model,
    #[serde(default)]
    n_rows: i64,
    #[serde(default)]
    n_skipped: i64,
    source: Option<String>,
    #[serde(default)]
    metrics: DocMetrics,
    #[serde(default)]
    options: Value,
    #[serde(default)]
    k_search: Vec<KPoint>,
}

#[derive(Deserialize, Default)]
struct DocMetrics {
    inertia: Option<f64>,
    silhouette: Option<f64>,
    davies_bouldin: Option<f64>,
    calinski_harabasz: Option<f64>,
}

pg_v1! {
    // rfm_train(model, source, k, features, k_min, k_max, select_k, outliers, log_features,
    //           standardize, n_init, max_iter, tolerance, seed) -> rfm_train_result
    fn rfm_train(fcinfo) -> Datum {
        let started = Instant::now();
        let name = model_name(fcinfo, 0);
        let k = i32_arg(fcinfo, 2).map(|k| {
            usize::try_from(k).unwrap_or_else(|_| invalid(format!("k must be between 2 and {}, got {k}", model::MAX_K)))
        });
        let features = features_arg(fcinfo, 3);
        let opts = options(fcinfo, k, 4, true);
        opts.validate(&features).or_raise();
        check_can_store(fcinfo, "rfm_train");
        let rules = rules::load(fcinfo);
        let rows = read_rows(fcinfo, 1, &features, "rfm_train");
        notice(format!(
            "rfm_train: {} rows of {}, {} features, k {}",
            rows.data.len() / features.len(),
            rows.relation,
            features.len(),
            k.map_or(format!("{}..{} by {}", opts.k_min, opts.k_max, if opts.select_k == SelectK::Elbow { "elbow" } else { "silhouette" }), |k| k.to_string())
        ));
        let mut progress = |p: &KPoint| {
            notice(format!(
                "rfm_train: k = {}: inertia {:.4}, silhouette {}, {} iterations, {:.0} ms",
                p.k, p.inertia, fmt_opt(p.silhouette), p.iterations, p.elapsed_ms
            ))
        };
        let t = model::train(rows.data, &features, &opts, &rules, &mut progress, &mut check).or_raise();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let chosen_k = t.model.clusters.len();
        let version = store(fcinfo, &Version {
            name: &name,
            model: &t.model,
            n_rows: t.n_rows as i64,
            n_skipped: rows.skipped as i64,
            source: Some(&rows.relation),
            metrics: &t.metrics,
            options: options_json(&opts),
            curve: &t.curve,
            chosen_k,
            elapsed_ms,
        });
        train_result(fcinfo, &name, version, chosen_k, t.n_rows as i64, &t.metrics, elapsed_ms)
    }

    // rfm_k_search(source, features, k_min, k_max, outliers, log_features, standardize,
    //              n_init, max_iter, tolerance, seed) -> SETOF (k, inertia, ...)
    fn rfm_k_search(fcinfo) -> Datum {
        let features = features_arg(fcinfo, 1);
        let opts = options(fcinfo, None, 2, false);
        opts.validate(&features).or_raise();
        let rows = read_rows(fcinfo, 0, &features, "rfm_k_search");
        let t = model::train(rows.data, &features, &opts, &[], &mut |_| {}, &mut check).or_raise();
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
        materialize(fcinfo, &out)
    }

    // rfm_evaluate(model, source) -> SETOF (model, version, n_rows, n_skipped, metrics...)
    fn rfm_evaluate(fcinfo) -> Datum {
        #[derive(Deserialize)]
        struct Active {
            version: i32,
            #[serde(flatten)]
            model: Model,
        }
        let name = model_name(fcinfo, 0);
        let active: Active = load_doc(fcinfo, &name);
        let rows = read_rows(fcinfo, 1, &active.model.features, "rfm_evaluate");
        let seed = 42;
        let (n, m) = model::evaluate(&active.model, rows.data, seed, &mut check).or_raise();
        materialize(fcinfo, &[vec![
            Some(text_datum(&name)),
            Some(Datum::from(active.version)),
            Some(Datum::from(n as i64)),
            Some(Datum::from(rows.skipped as i64)),
            Some(f64_datum(m.inertia)),
            m.silhouette.map(f64_datum),
            m.davies_bouldin.map(f64_datum),
            m.calinski_harabasz.map(f64_datum),
        ]])
    }

    // rfm_model_import(doc jsonb, model text DEFAULT NULL) -> rfm_train_result
    fn rfm_model_import(fcinfo) -> Datum {
        let started = Instant::now();
        check_can_store(fcinfo, "rfm_model_import");
        let doc: Doc = serde_json::from_value(jsonb_arg(fcinfo, 0))
            .unwrap_or_else(|e| invalid(format!("rfm_model_import: not a pg_rfm model document: {e}")));
        if doc.format != "pg_rfm.model" || doc.format_version != 1 {
            invalid(format!(
                "rfm_model_import: expected format \"pg_rfm.model\" version 1, got \"{}\" version {}",
                doc.format, doc.format_version
            ));
        }
        doc.body.validate().or_raise();
        let mut labels: Vec<&str> = doc.body.clusters.iter().map(|c| c.label.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.len() != doc.body.clusters.len() {
            invalid("rfm_model_import: cluster labels must be unique");
        }
        let name = match text_arg(fcinfo, 1) {
            Some(_) => model_name(fcinfo, 1),
            None => doc.model.clone(),
        };
        let metrics = Metrics {
            inertia: doc.metrics.inertia.unwrap_or(f64::NAN),
            silhouette: doc.metrics.silhouette,
            davies_bouldin: doc.metrics.davies_bouldin,
            calinski_harabasz: doc.metrics.calinski_harabasz,
        };
        let k = doc.body.clusters.len();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let version = store(fcinfo, &Version {
            name: &name,
            model: &doc.body,
            n_rows: doc.n_rows,
            n_skipped: doc.n_skipped,
            source: doc.source.as_deref(),
            metrics: &metrics,
            options: doc.options.clone(),
            curve: &doc.k_search,
            chosen_k: k,
            elapsed_ms,
        });
        train_result(fcinfo, &name, version, k, doc.n_rows, &metrics, elapsed_ms)
    }
}

/// A jsonb argument as a serde value.
fn jsonb_arg(fcinfo: FunctionCallInfo, i: usize) -> Value {
    let d = datum(fcinfo, i).unwrap_or_else(|| null_not_allowed("doc must not be NULL"));
    let v = unsafe { <pgrx::JsonB as pgrx::FromDatum>::from_datum(d, false) };
    v.map(|j| j.0).unwrap_or(Value::Null)
}
