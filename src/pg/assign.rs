//! rfm_segment and rfm_cluster: the nearest centroid of a model, named (its active version,
//! read from the tables) or passed as an `rfm_model` value. Each call site keeps the models
//! it has seen in a small LRU (one load or decode per model and statement), so a query that
//! names a different model on every row stays as fast as one with a single model.

use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;

use serde_json::Value;

use super::call::{f64_array_datum, f64_datum, text_datum, Args, Call, Composite};
use super::error::{invalid, OrRaise, PgError};
use super::spi::Statement;
use super::store;
use crate::core::document::json_kind;
use crate::core::encode::{Input, Kind};
use crate::core::error::{show, sql_array};
use crate::core::lru::Lru;
use crate::core::model::{Assigner, Model};
use crate::core::value::ModelValue;

/// Models one call site keeps; a query naming more distinct models reloads the least
/// recently used ones (always the same version within a statement).
pub const MODELS_PER_CALL_SITE: usize = 64;

/// Label datums of one loaded model, allocated in `fn_mcxt` and freed when the model
/// leaves the cache (or with `fn_mcxt`).
struct Labels(Vec<Datum>);

impl Drop for Labels {
    fn drop(&mut self) {
        for d in &self.0 {
            // SAFETY: each datum was palloc'd in fn_mcxt by `Loaded::new` and is freed once;
            // when fn_mcxt is reset, its reset callbacks (which drop the cache) run before
            // its memory is released. A label returned for an earlier row is no longer in
            // use: the executor copies what it keeps beyond the row.
            unsafe { pg_sys::pfree(d.cast_mut_ptr()) };
        }
    }
}

pub struct Loaded {
    pub name: String,
    pub version: i32,
    assigner: Assigner,
    features: Vec<String>,
    /// Names of the encoded columns, and of the dimensions `rfm_explain` reports.
    encoded: Vec<String>,
    space: Vec<String>,
    kinds: Vec<Kind>,
    /// Where recency, frequency and monetary go in the model's feature order.
    rfm: Option<[usize; 3]>,
    clusters: Vec<i32>,
    label_text: Vec<String>,
    actions: Vec<String>,
    labels: Labels,
}

impl Loaded {
    /// The active version of model `name`, from the tables.
    fn named(args: Args<'_>, name: &str) -> Loaded {
        let stored = store::load(args, name, None);
        Loaded::new(args, name.to_string(), stored.version, stored.model())
    }

    /// The model in an `rfm_model` value (checked as it is decoded).
    pub fn from_value(args: Args<'_>, bytes: &[u8]) -> Loaded {
        let v = ModelValue::decode(bytes).or_raise(args.name);
        Loaded::new(args, v.name, v.version, v.model)
    }

    fn new(args: Args<'_>, name: String, version: i32, model: Model) -> Loaded {
        pgrx::debug1!("{}: loaded model \"{name}\" version {version}", args.name);
        let pos = |f: &str| model.features.iter().position(|x| x == f);
        let rfm = match (pos("recency"), pos("frequency"), pos("monetary"), model.features.len()) {
            (Some(r), Some(f), Some(m), 3) if model.is_numeric() => Some([r, f, m]),
            _ => None,
        };
        // SAFETY: fn_mcxt lives for the query; the datums are freed by `Labels` at the latest
        // when it is reset.
        let labels = unsafe {
            let old = pg_sys::MemoryContextSwitchTo(args.fn_mcxt());
            let labels = model.clusters.iter().map(|c| text_datum(&c.label)).collect();
            pg_sys::MemoryContextSwitchTo(old);
            labels
        };
        let assigner = Assigner::new(&model);
        Loaded {
            name,
            version,
            kinds: assigner.kinds(),
            assigner,
            encoded: model.encoded(),
            space: model.space(),
            rfm,
            clusters: model.clusters.iter().map(|c| c.cluster).collect(),
            label_text: model.clusters.iter().map(|c| c.label.clone()).collect(),
            actions: model.clusters.iter().map(|c| c.action.clone()).collect(),
            features: model.features,
            labels: Labels(labels),
        }
    }

    /// The recommended action of cluster number `cluster`, if the model has it.
    pub fn action(&self, cluster: i32) -> Option<&str> {
        self.clusters.iter().position(|c| *c == cluster).map(|i| self.actions[i].as_str())
    }
}

/// Decoded `rfm_model` values of one call site, keyed by their bytes (a value decodes the
/// same wherever it is used, so no statement check is needed).
pub struct ValueCache {
    models: Lru<Loaded>,
}

impl Default for ValueCache {
    fn default() -> ValueCache {
        ValueCache { models: Lru::new(MODELS_PER_CALL_SITE) }
    }
}

impl ValueCache {
    pub fn get(&mut self, args: Args<'_>, bytes: &[u8]) -> &Loaded {
        self.models.get_or_insert_with(bytes, || Loaded::from_value(args, bytes))
    }
}

/// What one call site keeps for the length of a statement (name form), or for the query
/// (value form).
struct ModelCache {
    statement: Statement,
    models: Lru<Loaded>,
    values: ValueCache,
    /// The version each model name resolved to in this statement, so that a model that
    /// left the LRU comes back as the same version.
    versions: FxHashMap<Box<[u8]>, i32>,
    row: Vec<f64>,
    /// The result type of rfm_explain.
    result: Option<Composite>,
}

impl ModelCache {
    fn new() -> ModelCache {
        ModelCache {
            statement: Statement::now(),
            models: Lru::new(MODELS_PER_CALL_SITE),
            values: ValueCache::default(),
            versions: FxHashMap::default(),
            row: Vec::new(),
            result: None,
        }
    }
}

/// How a call passes the row: recency, frequency and monetary; a float8[] in the model's
/// feature order; or a jsonb object keyed by feature name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Rfm,
    Array,
    Json,
}

impl Form {
    fn of(args: &Args<'_>, json: bool) -> Form {
        match (json, args.nargs()) {
            (true, _) => Form::Json,
            (false, 4) => Form::Rfm,
            _ => Form::Array,
        }
    }
}

/// A jsonb value as the text of a categorical feature, or None for JSON null.
fn json_text(what: &str, feature: &str, v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => invalid(format!("{what}: feature \"{feature}\" must be text, a boolean or a number, got {}", json_kind(v))),
    }
}

/// A jsonb value as the number of a numeric feature, or None for JSON null.
fn json_number(what: &str, feature: &str, v: &Value) -> Option<f64> {
    match v {
        Value::Null => None,
        Value::Number(n) => n.as_f64(),
        // to_jsonb writes NaN and infinities of float8 columns as strings.
        Value::String(s) => Some(
            s.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| invalid(format!("{what}: feature \"{feature}\" must be a number, got the string \"{s}\""))),
        ),
        _ => invalid(format!("{what}: feature \"{feature}\" must be a number, got {}", json_kind(v))),
    }
}

/// Loads the model of this call (a name, or with `by_value` an `rfm_model` value), reads the
/// row in its `form`, encodes it and hands both to `f`; None for a NULL feature value.
fn with_row<R>(
    call: &mut Call<'_>,
    by_value: bool,
    json: bool,
    f: impl FnOnce(&Loaded, &mut Vec<f64>, &mut Option<Composite>) -> R,
) -> Option<R> {
    let args = call.args();
    let what = args.name;
    let form = Form::of(&args, json);
    let key = args.bytes(0)?;
    let cache = call.cache(|_| ModelCache::new());
    let ModelCache { statement, models, values, versions, row, result } = cache;
    let m = if by_value {
        values.get(args, key)
    } else {
        // A new statement starts from an empty cache, so it sees retrains.
        if statement.renewed() {
            models.clear();
            versions.clear();
        }
        &*models.get_or_insert_with(key, || {
            let text = String::from_utf8_lossy(key);
            let loaded = Loaded::named(args, &text);
            match versions.get(key) {
                Some(v) if *v != loaded.version => PgError::new(
                    PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                    format!("{what}: model \"{text}\" changed from version {v} to {} during the statement", loaded.version),
                )
                .hint("Run the statement again.")
                .raise(),
                Some(_) => {}
                None => {
                    versions.insert(key.into(), loaded.version);
                }
            }
            loaded
        })
    };
    row.clear();
    match form {
        Form::Rfm => {
            let Some([r, f, mo]) = m.rfm else {
                PgError::new(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("{what}: model \"{}\" was not trained on recency, frequency and monetary", m.name),
                )
                .detail(format!("Its features are {}.", sql_array(&m.features)))
                .hint(if m.assigner.is_numeric() {
                    format!(
                        "Pass the values as an array in that order: {what}(model, ARRAY[...]), or as jsonb: {what}(model, to_jsonb(row))."
                    )
                } else {
                    format!("Pass the row as jsonb keyed by feature name: {what}(model, to_jsonb(row)).")
                })
                .raise();
            };
            row.resize(3, 0.0);
            for (slot, arg) in [(r, 1), (f, 2), (mo, 3)] {
                row[slot] = args.f64(arg)?;
            }
        }
        Form::Array => {
            if !m.assigner.is_numeric() {
                PgError::new(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("{what}: model \"{}\" has categorical features, which a float8[] cannot hold", m.name),
                )
                .detail(format!("Its features are {}.", sql_array(&m.features)))
                .hint(format!("Pass the row as jsonb keyed by feature name: {what}(model, to_jsonb(row)) or jsonb_build_object(...)."))
                .raise();
            }
            let values = args.f64_array(1)?;
            if values.len() != m.features.len() {
                PgError::new(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("{what}: model \"{}\" has {} features, got an array of {} values", m.name, m.features.len(), values.len()),
                )
                .detail(format!("Its features are {}.", sql_array(&m.features)))
                .hint("Pass one value per feature, in the model's feature order.")
                .raise();
            }
            for v in values {
                row.push(v?);
            }
        }
        Form::Json => {
            let doc = args.jsonb(1)?;
            let Value::Object(obj) = &doc else {
                invalid(format!("{what}: the row must be a jsonb object keyed by feature name, got {}", json_kind(&doc)));
            };
            let mut texts: Vec<Option<String>> = Vec::with_capacity(m.features.len());
            let mut numbers: Vec<f64> = Vec::with_capacity(m.features.len());
            for (f, kind) in m.features.iter().zip(&m.kinds) {
                let v = obj.get(f.as_str()).unwrap_or(&Value::Null);
                match kind {
                    Kind::Numeric => {
                        numbers.push(json_number(what, f, v)?);
                        texts.push(None);
                    }
                    Kind::Categorical => {
                        numbers.push(0.0);
                        texts.push(Some(json_text(what, f, v)?));
                    }
                }
            }
            let inputs: Vec<Input<'_>> = numbers
                .iter()
                .zip(&texts)
                .map(|(x, t)| match t {
                    Some(t) => Input::Cat(t),
                    None => Input::Num(*x),
                })
                .collect();
            m.assigner.encode(&inputs, row).or_raise(what);
        }
    }
    if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        invalid(format!("{what}: {} must be a finite number, got {}", m.encoded[j], show(*v)));
    }
    Some(f(m, row, result))
}

/// The assigned cluster's label datum and number; None for a NULL feature value.
fn assign(call: &mut Call<'_>, by_value: bool, json: bool) -> Option<(Datum, i32)> {
    let what = call.name;
    with_row(call, by_value, json, |m, row, _| {
        let i = m.assigner.assign(row).or_raise(what);
        (m.labels.0[i], m.clusters[i])
    })
}

/// Attribute types of `rfm_explanation`.
const EXPLANATION: [pg_sys::Oid; 9] = [
    pg_sys::INT4OID,
    pg_sys::TEXTOID,
    pg_sys::FLOAT8OID,
    pg_sys::INT4OID,
    pg_sys::TEXTOID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::TEXTARRAYOID,
    pg_sys::FLOAT8ARRAYOID,
];

/// rfm_explain: the nearest and the runner-up cluster, the margin and each dimension's share.
fn explain(call: &mut Call<'_>, by_value: bool, json: bool) -> Option<Datum> {
    let args = call.args();
    let what = call.name;
    with_row(call, by_value, json, |m, row, result| {
        let e = m.assigner.explain(row).or_raise(what);
        let result = result.get_or_insert_with(|| Composite::for_result(args, &EXPLANATION));
        result.form(
            what,
            &[
                Some(Datum::from(m.clusters[e.best])),
                Some(text_datum(&m.label_text[e.best])),
                Some(f64_datum(e.distance)),
                Some(Datum::from(m.clusters[e.second])),
                Some(text_datum(&m.label_text[e.second])),
                Some(f64_datum(e.second_distance)),
                Some(f64_datum(e.second_distance - e.distance)),
                pgrx::IntoDatum::into_datum(m.space.clone()),
                Some(f64_array_datum(&e.shares)),
            ],
        )
    })
}

pg_v1! {
    // rfm_segment(model, recency, frequency, monetary) and rfm_segment(model, features[])
    fn rfm_segment(call: "rfm_segment") -> Datum {
        match assign(&mut call, false, false) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(model, recency, frequency, monetary) and rfm_cluster(model, features[])
    fn rfm_cluster(call: "rfm_cluster") -> Datum {
        match assign(&mut call, false, false) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }

    // rfm_segment(m rfm_model, recency, frequency, monetary) and rfm_segment(m rfm_model, features[])
    fn rfm_segment_value(call: "rfm_segment") -> Datum {
        match assign(&mut call, true, false) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(m rfm_model, recency, frequency, monetary) and rfm_cluster(m rfm_model, features[])
    fn rfm_cluster_value(call: "rfm_cluster") -> Datum {
        match assign(&mut call, true, false) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }

    // rfm_segment(model, row jsonb)
    fn rfm_segment_jsonb(call: "rfm_segment") -> Datum {
        match assign(&mut call, false, true) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(model, row jsonb)
    fn rfm_cluster_jsonb(call: "rfm_cluster") -> Datum {
        match assign(&mut call, false, true) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }

    // rfm_segment(m rfm_model, row jsonb)
    fn rfm_segment_value_jsonb(call: "rfm_segment") -> Datum {
        match assign(&mut call, true, true) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(m rfm_model, row jsonb)
    fn rfm_cluster_value_jsonb(call: "rfm_cluster") -> Datum {
        match assign(&mut call, true, true) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }

    // rfm_explain(model, recency, frequency, monetary) and rfm_explain(model, features[])
    fn rfm_explain(call: "rfm_explain") -> Datum {
        explain(&mut call, false, false).unwrap_or_else(|| call.return_null())
    }

    // rfm_explain(model, row jsonb)
    fn rfm_explain_jsonb(call: "rfm_explain") -> Datum {
        explain(&mut call, false, true).unwrap_or_else(|| call.return_null())
    }

    // rfm_explain(m rfm_model, ...) in the forms above
    fn rfm_explain_value(call: "rfm_explain") -> Datum {
        explain(&mut call, true, false).unwrap_or_else(|| call.return_null())
    }

    fn rfm_explain_value_jsonb(call: "rfm_explain") -> Datum {
        explain(&mut call, true, true).unwrap_or_else(|| call.return_null())
    }
}
