//! rfm_segment and rfm_cluster: the nearest centroid of a model, named (its active version,
//! read from the tables) or passed as an `rfm_model` value. Each call site keeps the models
//! it has seen in a small LRU (one load or decode per model and statement), so a query that
//! names a different model on every row stays as fast as one with a single model.

use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;

use super::call::{text_datum, Args, Call};
use super::error::{invalid, OrRaise, PgError};
use super::spi::Statement;
use super::store;
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
    /// Where recency, frequency and monetary go in the model's feature order.
    rfm: Option<[usize; 3]>,
    clusters: Vec<i32>,
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
            (Some(r), Some(f), Some(m), 3) => Some([r, f, m]),
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
        Loaded {
            name,
            version,
            assigner: Assigner::new(&model),
            rfm,
            clusters: model.clusters.iter().map(|c| c.cluster).collect(),
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
}

impl ModelCache {
    fn new() -> ModelCache {
        ModelCache {
            statement: Statement::now(),
            models: Lru::new(MODELS_PER_CALL_SITE),
            values: ValueCache::default(),
            versions: FxHashMap::default(),
            row: Vec::new(),
        }
    }
}

/// The assigned cluster's label datum and number; None for a NULL feature value. The first
/// argument is a model name, or (`by_value`) an `rfm_model` value.
fn assign(call: &mut Call<'_>, by_value: bool) -> Option<(Datum, i32)> {
    let args = call.args();
    let what = args.name;
    let key = args.bytes(0)?;
    let cache = call.cache(|_| ModelCache::new());
    let ModelCache { statement, models, values, versions, row } = cache;
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
    if args.nargs() == 4 {
        let Some([r, f, mo]) = m.rfm else {
            PgError::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{what}: model \"{}\" was not trained on recency, frequency and monetary", m.name),
            )
            .detail(format!("Its features are {}.", sql_array(&m.features)))
            .hint(format!("Pass the values as an array in that order: {what}(model, ARRAY[...])."))
            .raise();
        };
        row.resize(3, 0.0);
        for (slot, arg) in [(r, 1), (f, 2), (mo, 3)] {
            row[slot] = args.f64(arg)?;
        }
    } else {
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
    if let Some((j, v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        invalid(format!("{what}: {} must be a finite number, got {}", m.features[j], show(*v)));
    }
    let i = m.assigner.assign(row).or_raise(what);
    Some((m.labels.0[i], m.clusters[i]))
}

pg_v1! {
    // rfm_segment(model, recency, frequency, monetary) and rfm_segment(model, features[])
    fn rfm_segment(call: "rfm_segment") -> Datum {
        match assign(&mut call, false) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(model, recency, frequency, monetary) and rfm_cluster(model, features[])
    fn rfm_cluster(call: "rfm_cluster") -> Datum {
        match assign(&mut call, false) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }

    // rfm_segment(m rfm_model, recency, frequency, monetary) and rfm_segment(m rfm_model, features[])
    fn rfm_segment_value(call: "rfm_segment") -> Datum {
        match assign(&mut call, true) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(m rfm_model, recency, frequency, monetary) and rfm_cluster(m rfm_model, features[])
    fn rfm_cluster_value(call: "rfm_cluster") -> Datum {
        match assign(&mut call, true) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }
}
