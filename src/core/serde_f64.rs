//! Floats in JSON documents. serde_json writes NaN and ±Infinity as null; PostgreSQL's
//! `to_jsonb` writes them as the strings "NaN", "Infinity" and "-Infinity". Both read back
//! here, so that a damaged value reaches `Model::check`, which names it, instead of
//! failing as a type error.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// One float: a number, one of the three strings, or null (`None`).
struct Float;

impl<'de> Visitor<'de> for Float {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v {
            "NaN" => Ok(Some(f64::NAN)),
            "Infinity" => Ok(Some(f64::INFINITY)),
            "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
            _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
}

struct Floats(f64);

impl<'de> Visitor<'de> for Floats {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(x) = seq.next_element::<OneFloat>()? {
            out.push(x.0.unwrap_or(self.0));
        }
        Ok(out)
    }
}

struct OneFloat(Option<f64>);

impl<'de> serde::Deserialize<'de> for OneFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Float).map(OneFloat)
    }
}

fn with_default<'de, D: Deserializer<'de>>(d: D, missing: f64) -> Result<Vec<f64>, D::Error> {
    d.deserialize_seq(Floats(missing))
}

/// An array of floats; null -> NaN (statistics of an empty cluster, or damage to report).
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

/// One float; null -> NaN.
pub fn nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(Float).map(|v| v.unwrap_or(f64::NAN))
}

/// One optional float (null stays None).
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(Float)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "super::nan_vec")]
        v: Vec<f64>,
        #[serde(deserialize_with = "super::lower_fence")]
        lo: Vec<f64>,
        #[serde(default, deserialize_with = "super::option")]
        o: Option<f64>,
    }

    #[test]
    fn reads_what_postgres_and_serde_json_write() {
        let t: T = serde_json::from_str(r#"{"v": [1, 2.5, null, "NaN", "Infinity", "-Infinity"], "lo": [null, 3], "o": "NaN"}"#).unwrap();
        assert_eq!(&t.v[..2], &[1.0, 2.5]);
        assert!(t.v[2].is_nan() && t.v[3].is_nan());
        assert_eq!(&t.v[4..], &[f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!(t.lo, vec![f64::NEG_INFINITY, 3.0]);
        assert!(t.o.unwrap().is_nan());
        let err = serde_json::from_str::<T>(r#"{"v": ["x"], "lo": []}"#).unwrap_err().to_string();
        assert!(err.contains("expected a number"), "{err}");
    }
}
