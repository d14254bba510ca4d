//! rfm_segment and rfm_cluster: the nearest centroid of a model's active version. Each call
//! site keeps the models it has seen in a small LRU (one load per model and statement),
//! so a query that names a different model on every row stays as fast as one with a
//! single model.

use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;

use super::call::{text_datum, Args, Call};
use super::error::{invalid, OrRaise, PgError};
use super::spi::{statement_stamp, Stamp};
use super::store;
use crate::core::error::{show, sql_array};
use crate::core::lru::Lru;
use crate::core::model::Assigner;

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

struct Loaded {
    version: i32,
    assigner: Assigner,
    features: Vec<String>,
    /// Where recency, frequency and monetary go in the model's feature order.
    rfm: Option<[usize; 3]>,
    clusters: Vec<i32>,
    labels: Labels,
}

impl Loaded {
    fn new(args: Args<'_>, name: &str) -> Loaded {
        let stored = store::load(args, name);
        let model = stored.model();
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
            version: stored.version,
            assigner: Assigner::new(&model),
            rfm,
            clusters: model.clusters.iter().map(|c| c.cluster).collect(),
            features: model.features,
            labels: Labels(labels),
        }
    }
}

/// What one call site keeps for the length of a statement.
struct ModelCache {
    stamp: Option<Stamp>,
    models: Lru<Loaded>,
    /// The version each model name resolved to in this statement, so that a model that
    /// left the LRU comes back as the same version.
    versions: FxHashMap<Box<[u8]>, i32>,
    row: Vec<f64>,
}

impl ModelCache {
    fn new() -> ModelCache {
        ModelCache { stamp: statement_stamp(), models: Lru::new(MODELS_PER_CALL_SITE), versions: FxHashMap::default(), row: Vec::new() }
    }
}

/// The assigned cluster's label datum and number; None for a NULL feature value.
fn assign(call: &mut Call<'_>) -> Option<(Datum, i32)> {
    let args = call.args();
    let what = args.name;
    let name = args.bytes(0)?;
    let cache = call.cache(|_| ModelCache::new());
    // A call site can outlive a statement (PL/pgSQL keeps simple expressions for the whole
    // transaction): a new statement starts from an empty cache, so it sees retrains.
    let stamp = statement_stamp();
    if stamp != cache.stamp {
        cache.models.clear();
        cache.versions.clear();
        cache.stamp = stamp;
    }
    let ModelCache { models, versions, row, .. } = cache;
    let m = models
        .get_or_load(name, || {
            let text = String::from_utf8_lossy(name);
            let loaded = Loaded::new(args, &text);
            match versions.get(name) {
                Some(v) if *v != loaded.version => PgError::new(
                    PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                    format!("{what}: model \"{text}\" changed from version {v} to {} during the statement", loaded.version),
                )
                .hint("Run the statement again.")
                .raise(),
                Some(_) => {}
                None => {
                    versions.insert(name.into(), loaded.version);
                }
            }
            Ok::<_, ()>(loaded)
        })
        .ok()?;
    row.clear();
    if args.nargs() == 4 {
        let Some([r, f, mo]) = m.rfm else {
            PgError::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{what}: model \"{}\" was not trained on recency, frequency and monetary", String::from_utf8_lossy(name)),
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
                format!(
                    "{what}: model \"{}\" has {} features, got an array of {} values",
                    String::from_utf8_lossy(name),
                    m.features.len(),
                    values.len()
                ),
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
        match assign(&mut call) {
            Some((label, _)) => label,
            None => call.return_null(),
        }
    }

    // rfm_cluster(model, recency, frequency, monetary) and rfm_cluster(model, features[])
    fn rfm_cluster(call: "rfm_cluster") -> Datum {
        match assign(&mut call) {
            Some((_, cluster)) => Datum::from(cluster),
            None => call.return_null(),
        }
    }
}
