//! The model document: one model version as JSON, as `rfm_model_export` writes it and
//! `rfm_model_import` reads it. Assignment and reports load models in this form too, so one
//! parser and one check serve every way a model is loaded.

use serde::Deserialize;
use serde_json::Value;

use super::encode::Column;
use super::error::sql_array;
use super::model::{Cluster, KPoint, Model, Naming};
use super::pca::Pca;
use super::scale::Scaler;

pub const FORMAT: &str = "pg_rfm.model";
/// The format version of documents of numeric models without PCA (readable by 0.4.0).
pub const FORMAT_VERSION: i64 = 1;
/// The format version of documents with an encoding or a PCA (pg_rfm 0.5.0 on).
pub const FORMAT_VERSION_EXTENDED: i64 = 2;

#[derive(Deserialize, Debug, Clone)]
pub struct Document {
    pub format: String,
    pub format_version: i64,
    pub model: String,
    #[serde(default)]
    pub version: Option<i64>,
    pub features: Vec<String>,
    #[serde(default)]
    pub k: Option<i64>,
    /// One entry per feature (format_version 2; absent: every feature numeric).
    #[serde(default)]
    pub encoding: Option<Vec<Column>>,
    pub scaler: Scaler,
    /// Principal components (format_version 2; absent: no PCA).
    #[serde(default)]
    pub pca: Option<Pca>,
    pub clusters: Vec<Cluster>,
    /// The stored `log_features` as written (documents from 0.4.0 on); `scaler.log` is
    /// the same as one flag per feature.
    #[serde(default)]
    pub log_features: Option<Vec<String>>,
    /// The stored names of the encoded columns (documents from 0.5.0 on); derived from the
    /// features and their encoding, so they must agree.
    #[serde(default)]
    pub encoded_features: Option<Vec<String>>,
    #[serde(default)]
    pub n_rows: i64,
    #[serde(default)]
    pub n_skipped: i64,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub metrics: DocMetrics,
    #[serde(default)]
    pub options: Value,
    #[serde(default)]
    pub k_search: Vec<KPoint>,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Deserialize, Default, Debug, Clone)]
pub struct DocMetrics {
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub inertia: Option<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub silhouette: Option<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub davies_bouldin: Option<f64>,
    #[serde(default, deserialize_with = "super::serde_f64::option")]
    pub calinski_harabasz: Option<f64>,
}

impl Document {
    /// Reads a document; the error names the key that is wrong, in the document's terms
    /// (`clusters[1].scaled is an object, expected an array of numbers`).
    pub fn parse(value: Value) -> Result<Document, String> {
        if !value.is_object() {
            return Err(format!("the document is {}, expected a JSON object", json_kind(&value)));
        }
        if let Some(format) = value.get("format") {
            if format.as_str() != Some(FORMAT) {
                return Err(format!("format is {format}, expected \"{FORMAT}\""));
            }
        }
        match value.get("format_version") {
            Some(Value::Number(n)) if matches!(n.as_i64(), Some(FORMAT_VERSION | FORMAT_VERSION_EXTENDED)) => {}
            Some(v) => {
                return Err(format!(
                    "format_version is {v}; this version of pg_rfm reads format_version {FORMAT_VERSION} and {FORMAT_VERSION_EXTENDED}"
                ))
            }
            None => {}
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            rephrase(&path, &e.into_inner().to_string())
        })
    }

    /// The model the document describes (features, preprocessing, clusters).
    pub fn model(&self) -> Model {
        Model {
            features: self.features.clone(),
            encoding: self.encoding.clone().unwrap_or_default(),
            scaler: self.scaler.clone(),
            pca: self.pca.clone(),
            clusters: self.clusters.clone(),
        }
    }

    /// `Model::check`, plus the stored `log_features` against the features and the flags.
    pub fn check(&self, naming: Naming) -> Result<(), String> {
        let model = self.model();
        model.check(self.k, naming)?;
        if let Some(stored) = &self.encoded_features {
            let derived = model.encoded();
            if *stored != derived {
                return Err(format!(
                    "encoded_features {} does not match the features and their encoding, which give {}",
                    sql_array(stored),
                    sql_array(&derived)
                ));
            }
        }
        if let Some(log) = &self.log_features {
            let name = "log_features";
            let encoded = model.encoded();
            for (i, f) in log.iter().enumerate() {
                if !self.features.contains(f) {
                    return Err(format!(
                        "{name} {} names \"{f}\", which is not one of the features {}",
                        sql_array(log),
                        sql_array(&self.features)
                    ));
                }
                if log[..i].contains(f) {
                    return Err(format!("{name} {} lists \"{f}\" twice", sql_array(log)));
                }
            }
            if self.scaler.log.len() == encoded.len() {
                for (f, flag) in encoded.iter().zip(&self.scaler.log) {
                    if log.contains(f) != *flag {
                        return Err(format!("{name} {} and scaler.log disagree about \"{f}\"", sql_array(log)));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a JSON value is, in words ("an object", "a string").
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde's words -> the document's words.
fn words(s: &str) -> String {
    let s = s.trim();
    let s = s.replace('`', "");
    match s.as_str() {
        "sequence" | "a sequence" => "an array".into(),
        "map" | "a map" => "an object".into(),
        "f64" | "f32" | "a number" => "a number".into(),
        "i32" | "i64" | "u32" | "u64" => "an integer".into(),
        "usize" => "a non-negative integer".into(),
        "a string" | "string" => "a string".into(),
        "a boolean" | "boolean" | "bool" => "true or false".into(),
        "unit value" => "null".into(),
        _ if s.starts_with("struct ") => "an object".into(),
        _ if s.starts_with("string ") => format!("the string {}", &s[7..]),
        _ if s.starts_with("integer ") || s.starts_with("floating point ") => {
            format!("the number {}", s.rsplit(' ').next().unwrap_or_default())
        }
        _ if s.starts_with("boolean ") => s[8..].to_string(),
        _ => s,
    }
}

/// Rewrites a serde_json error at `path` in the document's terms.
fn rephrase(path: &str, msg: &str) -> String {
    let at = |rest: String| if path == "." || path.is_empty() { format!("the document {rest}") } else { format!("{path} {rest}") };
    if let Some(field) = msg.strip_prefix("missing field ") {
        return at(format!("has no \"{}\" key", field.trim_matches('`')));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((got, want)) = rest.split_once(", expected ") {
                return at(format!("is {}, expected {}", words(got), words(want)));
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        if let Some((got, want)) = rest.split_once(", expected ") {
            let want = want.replace('`', "\"");
            return at(format!("is \"{}\", expected {want}", got.trim_matches('`')));
        }
    }
    at(format!("is not valid: {}", msg.replace('`', "\"")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "format": "pg_rfm.model", "format_version": 1, "model": "m", "version": 2,
            "features": ["recency", "frequency"], "k": 2,
            "scaler": {"outliers": "clip", "lower": [0, null], "upper": [100, null], "log": [false, true],
                       "mean": [10, 1.5], "scale": [5, "NaN"]},
            "log_features": ["frequency"],
            "clusters": [
                {"cluster": 1, "label": "A", "action": "", "scaled": [0, 0], "original": [10, 1], "size": 5},
                {"cluster": 2, "label": "B", "action": "", "scaled": [1, 1], "original": [15, 3], "size": 4}
            ]
        })
    }

    #[test]
    fn parses_and_names_damage_in_document_terms() {
        let d = Document::parse(doc()).unwrap();
        assert_eq!(d.scaler.upper, vec![100.0, f64::INFINITY]);
        assert_eq!(
            d.check(Naming::Document).unwrap_err(),
            "scaler.scale[1] (frequency) is NaN; standard deviations must be positive and finite"
        );
        let mut v = doc();
        v["scaler"]["scale"][1] = json!(2);
        assert_eq!(Document::parse(v.clone()).unwrap().check(Naming::Document), Ok(()));
        v["log_features"] = json!(["frequency", "price"]);
        assert_eq!(
            Document::parse(v).unwrap().check(Naming::Document).unwrap_err(),
            "log_features {frequency,price} names \"price\", which is not one of the features {recency,frequency}"
        );
    }

    #[test]
    fn serde_errors_are_rephrased() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "the document is an array, expected a JSON object"),
            (json!({"format": "other"}), "format is \"other\", expected \"pg_rfm.model\""),
            (
                json!({"format": "pg_rfm.model", "format_version": 3}),
                "format_version is 3; this version of pg_rfm reads format_version 1 and 2",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(Document::parse(v).unwrap_err(), want);
        }
        let mut v = doc();
        v.as_object_mut().unwrap().remove("features");
        assert_eq!(Document::parse(v).unwrap_err(), "the document has no \"features\" key");
        let mut v = doc();
        v["clusters"][1]["scaled"] = json!({"a": 1});
        assert_eq!(Document::parse(v).unwrap_err(), "clusters[1].scaled is an object, expected an array of numbers");
        let mut v = doc();
        v["clusters"][0]["scaled"][1] = json!("abc");
        assert_eq!(Document::parse(v).unwrap_err(), "clusters[0].scaled[1] is the string \"abc\", expected a number");
        let mut v = doc();
        v["scaler"]["outliers"] = json!("winsorize");
        assert_eq!(Document::parse(v).unwrap_err(), "scaler.outliers is \"winsorize\", expected one of \"clip\", \"drop\", \"keep\"");
        let mut v = doc();
        v["clusters"][0]["size"] = json!("big");
        assert_eq!(Document::parse(v).unwrap_err(), "clusters[0].size is the string \"big\", expected an integer");
    }
}
