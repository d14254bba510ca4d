//! rfm_segment and rfm_cluster: nearest centroid of a model's active version, with the
//! model read once per query and call site (cached in fn_extra).

use pgrx::pg_sys::{Datum, FunctionCallInfo};

use super::error::{invalid, OrRaise};
use super::fmgr::*;
use super::train::load_doc;
use crate::core::error::show;
use crate::core::model::Model;

struct Cached {
    name: Vec<u8>,
    model: Model,
    /// Where recency, frequency and monetary go in the model's feature order.
    rfm: Option<[usize; 3]>,
    row: Vec<f64>,
    /// Each cluster's label as a text datum in fn_mcxt, returned as is by rfm_segment.
    labels: Vec<Datum>,
}

fn load(fcinfo: FunctionCallInfo, name: &[u8]) -> Cached {
    let text = String::from_utf8_lossy(name).into_owned();
    let model: Model = load_doc(fcinfo, &text);
    let pos = |f: &str| model.features.iter().position(|x| x == f);
    let rfm = match (pos("recency"), pos("frequency"), pos("monetary"), model.features.len()) {
        (Some(r), Some(f), Some(m), 3) => Some([r, f, m]),
        _ => None,
    };
    let row = vec![0.0; model.features.len()];
    let labels = unsafe {
        let old = pgrx::pg_sys::MemoryContextSwitchTo((*(*fcinfo).flinfo).fn_mcxt);
        let labels = model.clusters.iter().map(|c| text_datum(&c.label)).collect();
        pgrx::pg_sys::MemoryContextSwitchTo(old);
        labels
    };
    Cached { name: name.to_vec(), model, rfm, row, labels }
}

/// Index into the model's clusters for this call's features; None for a NULL feature.
fn nearest(fcinfo: FunctionCallInfo, what: &str) -> Option<(usize, &'static Cached)> {
    let name = bytes_arg(fcinfo, 0)?;
    let slot: &mut Option<Cached> = fn_cache(fcinfo, || None);
    if slot.as_ref().is_none_or(|c| c.name != name) {
        *slot = Some(load(fcinfo, name));
    }
    let cache = slot.as_mut()?;
    if nargs(fcinfo) == 4 {
        let Some([r, f, m]) = cache.rfm else {
            invalid(format!(
                "{what}: model \"{}\" was trained on features {:?}, not recency, frequency and monetary; pass them as an array in that order",
                String::from_utf8_lossy(name),
                cache.model.features
            ));
        };
        for (slot, arg) in [(r, 1), (f, 2), (m, 3)] {
            cache.row[slot] = f64_arg(fcinfo, arg)?;
        }
    } else {
        let values = f64_array_arg(fcinfo, 1)?;
        if values.len() != cache.row.len() {
            invalid(format!(
                "{what}: model \"{}\" has {} features {:?}, got an array of {}",
                String::from_utf8_lossy(name),
                cache.row.len(),
                cache.model.features,
                values.len()
            ));
        }
        for (slot, v) in cache.row.iter_mut().zip(values) {
            *slot = v?;
        }
    }
    if let Some((j, v)) = cache.row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        invalid(format!("{what}: {} must be a finite number, got {}", cache.model.features[j], show(*v)));
    }
    let mut row = std::mem::take(&mut cache.row);
    let idx = cache.model.try_assign(&mut row).or_raise();
    cache.row = row;
    // SAFETY: the cache lives in fn_mcxt for the whole query, longer than this call.
    Some((idx, unsafe { &*(cache as *const Cached) }))
}

pg_v1! {
    // rfm_segment(model, recency, frequency, monetary) and rfm_segment(model, features[])
    fn rfm_segment(fcinfo) -> Datum {
        match nearest(fcinfo, "rfm_segment") {
            Some((i, c)) => c.labels[i],
            None => return_null(fcinfo),
        }
    }

    // rfm_cluster(model, recency, frequency, monetary) and rfm_cluster(model, features[])
    fn rfm_cluster(fcinfo) -> Datum {
        match nearest(fcinfo, "rfm_cluster") {
            Some((i, c)) => Datum::from(c.model.clusters[i].cluster),
            None => return_null(fcinfo),
        }
    }
}
