//! JSON has no NaN or Infinity: serde_json writes them as null. These read null back as
//! the value it stood for.

use serde::{Deserialize, Deserializer};

fn with_default<'de, D: Deserializer<'de>>(d: D, missing: f64) -> Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(missing)).collect())
}

/// null -> NaN (statistics of an empty cluster).
pub fn nan_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    with_default(d, f64::NAN)
}

/// null -> -Infinity (no lower fence).
pub fn lower_fence<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    with_default(d, f64::NEG_INFINITY)
}

/// null -> +Infinity (no upper fence).
pub fn upper_fence<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    with_default(d, f64::INFINITY)
}
