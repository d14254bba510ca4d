//! The model store: model versions in the extension's tables (`rfm_models`,
//! `rfm_centroids`, `rfm_k_search`). Loading reads a version in the export document's
//! form and checks it, so a damaged version raises XX001 instead of assigning wrongly;
//! storing writes a new version and makes it active.

use pgrx::spi::{Spi, SpiResult};
use pgrx::PgSqlErrorCode;
use serde_json::{json, Value};

use super::call::Args;
use super::catalog::schema_prefix;
use super::error::{spi_fail, PgError};
use super::spi::select_text;
use crate::core::document::Document;
use crate::core::metrics::Metrics;
use crate::core::model::{KPoint, Model, Naming};

/// A checked model version loaded from the tables.
pub struct Stored {
    pub name: String,
    pub version: i32,
    pub doc: Document,
}

impl Stored {
    pub fn model(&self) -> Model {
        self.doc.model()
    }
}

/// XX001 for a stored version that cannot be used, with what to do about it.
pub fn damaged(what: &str, name: &str, version: Option<i64>, problem: &str) -> ! {
    let v = version.map_or(String::new(), |v| format!(" version {v}"));
    PgError::new(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{what}: model \"{name}\"{v} is damaged: {problem}"))
        .detail("Its rows in rfm_models and rfm_centroids do not form a usable model (edited by hand, restored from an incompatible dump, or imported from a damaged document).")
        .hint(format!(
            "Retrain it with rfm_train, make an earlier version active with rfm_activate('{}', version), or import a good export with rfm_model_import.",
            name.replace('\'', "''")
        ))
        .raise()
}

/// XX001 when a model document (imported, or typed in as an `rfm_model`) holds an
/// inconsistent model; `what` is the function reading it.
pub fn check_document(what: &str, doc: &Document) {
    if let Err(e) = doc.check(Naming::Document) {
        let v = doc.version.map_or(String::new(), |v| format!(" version {v}"));
        PgError::new(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{what}: the document's model \"{}\"{v} is damaged: {e}", doc.model))
            .hint("Export the model again with rfm_model_export in the database it comes from.")
            .raise();
    }
}

/// The model (or the version asked for) does not exist.
pub fn not_found(what: &str, name: &str, version: Option<i32>) -> ! {
    let err = match version {
        None => {
            PgError::new(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("{what}: model \"{name}\" does not exist (no active version)"))
                .hint("SELECT model FROM rfm_model_summary lists the models with an active version; rfm_train creates one.")
        }
        Some(v) => PgError::new(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("{what}: model \"{name}\" has no version {v}"))
            .hint("SELECT version, active, created_at FROM rfm_models WHERE model = ... lists the versions of a model."),
    };
    err.raise()
}

/// The active version of model `name` (or `version` of it), checked; `what` is the SQL
/// function loading it. Refused on a Citus worker, whose tables are not the coordinator's.
pub fn load(args: Args<'_>, name: &str, version: Option<i32>) -> Stored {
    let what = args.name;
    if super::citus::on_worker() {
        super::citus::refuse_model_name(what, "model", name, super::citus::MODEL_VALUE_FORM);
    }
    let schema = schema_prefix(args);
    let text = match version {
        None => select_text(&format!("SELECT {schema}.rfm_model_export($1)::text"), &[name]),
        Some(v) => select_text(&format!("SELECT {schema}.rfm_model_export($1, $2::int)::text"), &[name, &v.to_string()]),
    }
    .unwrap_or_else(|| not_found(what, name, version));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| damaged(what, name, None, &e.to_string()));
    let version = value.get("version").and_then(Value::as_i64);
    let doc = Document::parse(value).unwrap_or_else(|e| damaged(what, name, version, &e));
    doc.check(Naming::Tables).unwrap_or_else(|e| damaged(what, name, version, &e));
    let version = version.and_then(|v| i32::try_from(v).ok()).unwrap_or_else(|| damaged(what, name, None, "the version number is missing"));
    Stored { name: name.to_string(), version, doc }
}

/// Fails fast, before any training work, when the caller may not write model versions.
pub fn check_can_store(args: Args<'_>) {
    let schema = schema_prefix(args);
    let ok = select_text(
        "SELECT pg_catalog.has_table_privilege($1 || '.rfm_models', 'INSERT, UPDATE')
            AND pg_catalog.has_table_privilege($1 || '.rfm_centroids', 'INSERT')
            AND pg_catalog.has_table_privilege($1 || '.rfm_k_search', 'INSERT')",
        &[&schema],
    );
    if ok.as_deref() != Some("t") {
        PgError::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("{}: permission denied to store models", args.name))
            .detail("Storing a model version needs INSERT and UPDATE on rfm_models, and INSERT on rfm_centroids and rfm_k_search.")
            .hint("Ask the owner of the extension for these privileges, or train as a role that has them.")
            .raise();
    }
}

/// Everything a stored version holds.
pub struct Version<'a> {
    pub name: &'a str,
    pub model: &'a Model,
    pub n_rows: i64,
    pub n_skipped: i64,
    pub source: Option<&'a str>,
    pub metrics: &'a Metrics,
    pub options: Value,
    pub curve: &'a [KPoint],
    pub chosen_k: usize,
    pub elapsed_ms: f64,
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
pub fn store(args: Args<'_>, v: &Version<'_>) -> i32 {
    let schema = schema_prefix(args);
    let s = &v.model.scaler;
    let encoded = v.model.encoded();
    let log_features: Vec<&String> = encoded.iter().zip(&s.log).filter(|(_, l)| **l).map(|(f, _)| f).collect();
    let pca = v.model.pca.as_ref();
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
            "encoded_features": encoded, "encoding": v.model.encoding,
            "pca_center": pca.map(|p| &p.center), "pca_components": pca.map(|p| &p.components),
            "pca_variance_ratio": pca.map(|p| &p.variance_ratio), "pca_variance": pca.map(|p| &p.variance),
        });
        // A database still on a version before 0.5.0 (not yet updated) has no columns for
        // the encoding and the PCA: numeric models are stored without them.
        let extended = client
            .select(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = ($1 || '.rfm_models')::pg_catalog.regclass
                                AND attname = 'encoded_features' AND NOT attisdropped)",
                None,
                &[schema.as_str().into()],
            )?
            .first()
            .get_one::<bool>()?
            .unwrap_or(true);
        if !extended && (!v.model.encoding.is_empty() || v.model.pca.is_some()) {
            PgError::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("{}: models with categorical features or PCA need pg_rfm 0.5.0's tables", args.name),
            )
            .hint("Run ALTER EXTENSION pg_rfm UPDATE.")
            .raise();
        }
        let new_columns =
            if extended { ", encoded_features, encoding, pca_center, pca_components, pca_variance_ratio, pca_variance" } else { "" };
        client.update(
            format!(
                "INSERT INTO {schema}.rfm_models (model, version, active, features, k, n_rows, n_skipped, source,
                     outliers, lower_fence, upper_fence, log_features, scale_mean, scale_sd, inertia, silhouette,
                     davies_bouldin, calinski_harabasz, options, elapsed_ms{new_columns})
                 SELECT model, version, active, features, k, n_rows, n_skipped, source, outliers, lower_fence,
                     upper_fence, log_features, scale_mean, scale_sd, inertia, silhouette, davies_bouldin,
                     calinski_harabasz, options, elapsed_ms{new_columns}
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
