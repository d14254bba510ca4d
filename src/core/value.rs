//! The `rfm_model` value: one model version as bytes, for queries that pass the model
//! along instead of naming it (Citus workers, which have no model tables). Little-endian
//! and versioned, so a value means the same on every machine.
//!
//! Layout: magic `RFMM`, format byte 1, then name, version, features, the scaler
//! (outliers, fences, log flags, means, sds) and per cluster its number, label, action,
//! size and centroid (scaled and original units). Strings and arrays carry a u64 length.
//! Format 2 (models with categorical features or a PCA) adds, after the scaler, the
//! encoding (per feature: kind 0 numeric or 1 categorical with its levels and grouped
//! levels) and the PCA (a presence byte, then centre, components, ratios and variances).
//! Models without either are written in format 1, as pg_rfm 0.4.0 wrote them.

use serde_json::{json, Value};

use super::codec::{Reader, Writer};
use super::encode::Column;
use super::error::{CoreError, Kind};
use super::model::{Cluster, Model, Naming};
use super::pca::Pca;
use super::scale::{Outliers, Scaler};

const MAGIC: &[u8; 4] = b"RFMM";
const FORMAT: u8 = 1;
const FORMAT_EXTENDED: u8 = 2;

fn strings(w: &mut Writer, v: &[String]) {
    w.u64(v.len() as u64);
    for s in v {
        w.bytes(s.as_bytes());
    }
}

/// A model version as a value.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelValue {
    pub name: String,
    pub version: i32,
    pub model: Model,
}

fn damaged(what: impl Into<String>) -> CoreError {
    CoreError::new(Kind::Corrupt, format!("the rfm_model value is damaged: {}", what.into()))
        .hint("Build it again with rfm_model(name) or from an export with rfm_model_export(name)::text::rfm_model.")
}

fn outliers_code(o: Outliers) -> u8 {
    match o {
        Outliers::Clip => 0,
        Outliers::Drop => 1,
        Outliers::Keep => 2,
    }
}

impl ModelValue {
    pub fn encode(&self) -> Vec<u8> {
        let m = &self.model;
        let s = &m.scaler;
        let mut w = Writer::with_capacity(256 + m.clusters.len() * 64 * (m.features.len() + 1));
        let extended = !m.encoding.is_empty() || m.pca.is_some();
        w.buf.extend_from_slice(MAGIC);
        w.u8(if extended { FORMAT_EXTENDED } else { FORMAT });
        w.bytes(self.name.as_bytes());
        w.i64(self.version as i64);
        w.u64(m.features.len() as u64);
        for f in &m.features {
            w.bytes(f.as_bytes());
        }
        w.u8(outliers_code(s.outliers));
        w.f64s(&s.lower);
        w.f64s(&s.upper);
        w.bytes(&s.log.iter().map(|l| *l as u8).collect::<Vec<u8>>());
        w.f64s(&s.mean);
        w.f64s(&s.scale);
        if extended {
            w.u64(m.encoding.len() as u64);
            for c in &m.encoding {
                match c {
                    Column::Numeric { feature } => {
                        w.u8(0);
                        w.bytes(feature.as_bytes());
                    }
                    Column::Categorical { feature, levels, other } => {
                        w.u8(1);
                        w.bytes(feature.as_bytes());
                        strings(&mut w, levels);
                        strings(&mut w, other);
                    }
                }
            }
            match &m.pca {
                None => w.u8(0),
                Some(p) => {
                    w.u8(1);
                    w.f64s(&p.center);
                    w.u64(p.components.len() as u64);
                    for c in &p.components {
                        w.f64s(c);
                    }
                    w.f64s(&p.variance_ratio);
                    w.f64s(&p.variance);
                }
            }
        }
        w.u64(m.clusters.len() as u64);
        for c in &m.clusters {
            w.i64(c.cluster as i64);
            w.bytes(c.label.as_bytes());
            w.bytes(c.action.as_bytes());
            w.i64(c.size);
            w.f64s(&c.scaled);
            w.f64s(&c.original);
        }
        w.buf
    }

    /// Reads a value and checks the model in it (as a model loaded from the tables is).
    pub fn decode(buf: &[u8]) -> Result<ModelValue, CoreError> {
        let truncated = |_| damaged("it is truncated or has an impossible length");
        let text = |b: &[u8], what: &str| String::from_utf8(b.to_vec()).map_err(|_| damaged(format!("{what} is not UTF-8")));
        if buf.len() < 5 || &buf[..4] != MAGIC {
            return Err(damaged("it does not start with the rfm_model signature"));
        }
        if buf[4] != FORMAT && buf[4] != FORMAT_EXTENDED {
            return Err(damaged(format!("format {} is not one this version of pg_rfm reads (1 or 2)", buf[4])));
        }
        let extended = buf[4] == FORMAT_EXTENDED;
        // A count of items, each at least a byte: more than the bytes left is damage.
        let count = |r: &mut Reader<'_>| -> Result<u64, CoreError> {
            let n = r.u64().map_err(truncated)?;
            if n > buf.len() as u64 {
                return Err(damaged("it is truncated or has an impossible length"));
            }
            Ok(n)
        };
        let mut r = Reader::new(&buf[5..]);
        let name = text(r.bytes().map_err(truncated)?, "the name")?;
        let version = r.i64().map_err(truncated)?;
        let version = i32::try_from(version).map_err(|_| damaged(format!("version {version} is out of range")))?;
        let d = count(&mut r)?;
        let mut features = Vec::with_capacity(d as usize);
        for _ in 0..d {
            features.push(text(r.bytes().map_err(truncated)?, "a feature name")?);
        }
        let outliers = match r.u8().map_err(truncated)? {
            0 => Outliers::Clip,
            1 => Outliers::Drop,
            2 => Outliers::Keep,
            x => return Err(damaged(format!("outlier handling {x} is unknown"))),
        };
        let lower = r.f64s().map_err(truncated)?;
        let upper = r.f64s().map_err(truncated)?;
        let log: Vec<bool> = r.bytes().map_err(truncated)?.iter().map(|b| *b != 0).collect();
        let mean = r.f64s().map_err(truncated)?;
        let scale = r.f64s().map_err(truncated)?;
        let mut encoding = Vec::new();
        let mut pca = None;
        if extended {
            let list = |r: &mut Reader<'_>, what: &str| -> Result<Vec<String>, CoreError> {
                let n = count(r)?;
                (0..n).map(|_| text(r.bytes().map_err(truncated)?, what)).collect()
            };
            for _ in 0..count(&mut r)? {
                let kind = r.u8().map_err(truncated)?;
                let feature = text(r.bytes().map_err(truncated)?, "a feature name")?;
                encoding.push(match kind {
                    0 => Column::Numeric { feature },
                    1 => Column::Categorical { feature, levels: list(&mut r, "a level")?, other: list(&mut r, "a level")? },
                    x => return Err(damaged(format!("feature kind {x} is unknown"))),
                });
            }
            match r.u8().map_err(truncated)? {
                0 => {}
                1 => {
                    let center = r.f64s().map_err(truncated)?;
                    let p = count(&mut r)?;
                    let components = (0..p).map(|_| r.f64s().map_err(truncated)).collect::<Result<Vec<_>, _>>()?;
                    let variance_ratio = r.f64s().map_err(truncated)?;
                    let variance = r.f64s().map_err(truncated)?;
                    pca = Some(Pca { center, components, variance_ratio, variance });
                }
                x => return Err(damaged(format!("PCA marker {x} is unknown"))),
            }
        }
        let k = count(&mut r)?;
        let mut clusters = Vec::with_capacity(k as usize);
        for _ in 0..k {
            let cluster = r.i64().map_err(truncated)?;
            let cluster = i32::try_from(cluster).map_err(|_| damaged(format!("cluster number {cluster} is out of range")))?;
            let label = text(r.bytes().map_err(truncated)?, "a label")?;
            let action = text(r.bytes().map_err(truncated)?, "an action")?;
            let size = r.i64().map_err(truncated)?;
            let scaled = r.f64s().map_err(truncated)?;
            let original = r.f64s().map_err(truncated)?;
            clusters.push(Cluster { cluster, label, action, scaled, original, size, mean: vec![], median: vec![], sum: vec![] });
        }
        r.finish().map_err(|_| damaged("it has bytes after the last cluster"))?;
        let model = Model { features, encoding, scaler: Scaler { outliers, lower, upper, log, mean, scale }, pca, clusters };
        model.check(None, Naming::Document).map_err(damaged)?;
        Ok(ModelValue { name, version, model })
    }

    /// The text form: a pg_rfm.model document (what `rfm_model_export` writes, without the
    /// training statistics), which `rfm_model_import` and the input function read back.
    pub fn to_json(&self) -> Value {
        let m = &self.model;
        let s = &m.scaler;
        // JSON has no infinity: a missing fence is null, as in exported documents.
        let fence = |v: &[f64]| -> Vec<Option<f64>> { v.iter().map(|x| x.is_finite().then_some(*x)).collect() };
        let log_features: Vec<String> = m.encoded().into_iter().zip(&s.log).filter(|(_, l)| **l).map(|(f, _)| f).collect();
        let extended = !m.encoding.is_empty() || m.pca.is_some();
        let mut doc = json!({
            "format": super::document::FORMAT,
            "format_version": if extended { super::document::FORMAT_VERSION_EXTENDED } else { super::document::FORMAT_VERSION },
            "model": self.name,
            "version": self.version,
            "features": m.features,
            "k": m.clusters.len(),
            "scaler": {
                "outliers": s.outliers.name(),
                "lower": fence(&s.lower),
                "upper": fence(&s.upper),
                "log": s.log,
                "mean": s.mean,
                "scale": s.scale,
            },
            "log_features": log_features,
            "clusters": m.clusters.iter().map(|c| json!({
                "cluster": c.cluster, "label": c.label, "action": c.action, "size": c.size,
                "scaled": c.scaled, "original": c.original,
            })).collect::<Vec<_>>(),
        });
        if extended {
            doc["encoding"] = json!(m.encoding);
            doc["pca"] = json!(m.pca);
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::Document;

    fn value() -> ModelValue {
        let c = |n: i32, label: &str, scaled: Vec<f64>| Cluster {
            cluster: n,
            label: label.into(),
            action: format!("act {n}"),
            original: scaled.iter().map(|x| x * 10.0).collect(),
            scaled,
            size: 10 * n as i64,
            mean: vec![],
            median: vec![],
            sum: vec![],
        };
        ModelValue {
            name: "shop \"eu\"".into(),
            version: 3,
            model: Model {
                features: vec!["recency".into(), "frequency".into()],
                encoding: vec![],
                pca: None,
                scaler: Scaler {
                    outliers: Outliers::Clip,
                    lower: vec![-1.5, f64::NEG_INFINITY],
                    upper: vec![400.25, f64::INFINITY],
                    log: vec![false, true],
                    mean: vec![90.0, 1.1],
                    scale: vec![0.1 + 0.2, 1e-300],
                },
                clusters: vec![c(1, "Champions", vec![0.5, -1.0]), c(2, "Lost", vec![-0.25, 2.0 / 3.0])],
            },
        }
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let v = value();
        let bytes = v.encode();
        assert_eq!(&bytes[..5], b"RFMM\x01");
        assert_eq!(ModelValue::decode(&bytes).unwrap(), v);
        // The text form reads back as a document with the same model.
        let doc = Document::parse(v.to_json()).unwrap();
        assert_eq!(doc.check(Naming::Document), Ok(()));
        assert_eq!(doc.model(), v.model);
        assert_eq!(doc.model, v.name);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let bytes = value().encode();
        // Every truncation and every single-byte change either decodes to a checked model or fails cleanly.
        for n in 0..bytes.len() {
            assert!(ModelValue::decode(&bytes[..n]).is_err(), "truncated at {n}");
        }
        for i in 0..bytes.len() {
            for x in [0u8, 1, 0x7f, 0xff] {
                let mut b = bytes.clone();
                b[i] = x;
                if let Ok(v) = ModelValue::decode(&b) {
                    assert_eq!(v.model.check(None, Naming::Document), Ok(()));
                }
            }
        }
        // A version beyond int: an error, not a version clamped to another number.
        let v = value();
        let mut b = v.encode();
        let at = 5 + 8 + v.name.len();
        b[at..at + 8].copy_from_slice(&3_000_000_000i64.to_le_bytes());
        assert_eq!(ModelValue::decode(&b).unwrap_err().message, "the rfm_model value is damaged: version 3000000000 is out of range");
        let mut b = bytes.clone();
        b.push(0);
        assert_eq!(ModelValue::decode(&b).unwrap_err().message, "the rfm_model value is damaged: it has bytes after the last cluster");
        assert!(ModelValue::decode(b"RFMM\x03").unwrap_err().message.contains("format 3"));
    }
}
