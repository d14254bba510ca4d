//! One-hot encoding of categorical features (text, boolean and enum columns).
//!
//! A model's input features are numeric or categorical. Each numeric feature is one
//! encoded column; each categorical feature is one 0/1 column per level kept in training
//! (alphabetical), plus one `(other)` column when `max_levels` grouped the rarer levels.
//! A value seen in training lands in its level's column (or in `(other)` when it was
//! grouped); a value never seen in training encodes as all zeros.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::error::{invalid, sql_array};
use super::CoreError;

/// Name of the column that collects grouped levels.
pub const OTHER: &str = "(other)";

/// Most distinct values a categorical feature may have in training (an id column is not a
/// category).
pub const MAX_DISTINCT: usize = 10_000;

/// Most one-hot columns a categorical feature may be given.
pub const MAX_LEVELS: usize = 100;

/// How one input feature is encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Column {
    Numeric {
        feature: String,
    },
    Categorical {
        feature: String,
        /// The levels with a column of their own, in column order (alphabetical).
        levels: Vec<String>,
        /// Levels seen in training and grouped into the `(other)` column (none: no such column).
        #[serde(default)]
        other: Vec<String>,
    },
}

/// What a source column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Numeric,
    Categorical,
}

impl Column {
    pub fn feature(&self) -> &str {
        match self {
            Column::Numeric { feature } | Column::Categorical { feature, .. } => feature,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Column::Numeric { .. } => Kind::Numeric,
            Column::Categorical { .. } => Kind::Categorical,
        }
    }

    /// How many encoded columns this feature becomes.
    pub fn width(&self) -> usize {
        match self {
            Column::Numeric { .. } => 1,
            Column::Categorical { levels, other, .. } => levels.len() + usize::from(!other.is_empty()),
        }
    }

    /// Names of the encoded columns: the feature, or `feature=level` per level.
    pub fn names(&self) -> Vec<String> {
        match self {
            Column::Numeric { feature } => vec![feature.clone()],
            Column::Categorical { feature, levels, other } => {
                let mut v: Vec<String> = levels.iter().map(|l| format!("{feature}={l}")).collect();
                if !other.is_empty() {
                    v.push(format!("{feature}={OTHER}"));
                }
                v
            }
        }
    }

    /// Fits a categorical column: `counts[i]` is how often `dict[i]` occurs. Keeps the
    /// `max_levels` most frequent levels (ties alphabetically); with more levels than that,
    /// the `max_levels - 1` most frequent keep a column and the rest share `(other)`.
    pub fn fit_categorical(feature: &str, dict: &[String], counts: &[u64], max_levels: usize) -> Result<Column, CoreError> {
        if dict.len() > MAX_DISTINCT {
            return Err(invalid(format!(
                "categorical feature \"{feature}\" has {} distinct values, more than the {MAX_DISTINCT} a category may have",
                dict.len()
            ))
            .hint("An identifier or free text is not a category: leave the column out of features, or group its values in a view."));
        }
        let mut order: Vec<usize> = (0..dict.len()).filter(|i| counts[*i] > 0).collect();
        order.sort_by(|a, b| counts[*b].cmp(&counts[*a]).then_with(|| dict[*a].cmp(&dict[*b])));
        let keep = if order.len() > max_levels { max_levels.saturating_sub(1) } else { order.len() };
        let mut levels: Vec<String> = order[..keep].iter().map(|i| dict[*i].clone()).collect();
        let mut other: Vec<String> = order[keep..].iter().map(|i| dict[*i].clone()).collect();
        levels.sort();
        other.sort();
        Ok(Column::Categorical { feature: feature.to_string(), levels, other })
    }
}

/// The encoding of a model's features (empty: every feature numeric, the form of models
/// trained before 0.5.0).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Encoding {
    pub columns: Vec<Column>,
}

/// Where a categorical value goes: its column within the feature's block, or nowhere.
pub struct Lookup {
    slots: FxHashMap<String, usize>,
}

impl Lookup {
    pub fn new(col: &Column) -> Lookup {
        let mut slots = FxHashMap::default();
        if let Column::Categorical { levels, other, .. } = col {
            for (i, l) in levels.iter().enumerate() {
                slots.insert(l.clone(), i);
            }
            for l in other {
                slots.insert(l.clone(), levels.len());
            }
        }
        Lookup { slots }
    }

    #[inline]
    pub fn slot(&self, value: &str) -> Option<usize> {
        self.slots.get(value).copied()
    }
}

impl Encoding {
    /// Every feature numeric.
    pub fn numeric(features: &[String]) -> Encoding {
        Encoding { columns: features.iter().map(|f| Column::Numeric { feature: f.clone() }).collect() }
    }

    /// The encoding of a model with `features` (an empty stored encoding means all numeric).
    pub fn of(features: &[String], stored: &[Column]) -> Encoding {
        if stored.is_empty() {
            Encoding::numeric(features)
        } else {
            Encoding { columns: stored.to_vec() }
        }
    }

    pub fn is_numeric(&self) -> bool {
        self.columns.iter().all(|c| c.kind() == Kind::Numeric)
    }

    pub fn width(&self) -> usize {
        self.columns.iter().map(Column::width).sum()
    }

    pub fn names(&self) -> Vec<String> {
        self.columns.iter().flat_map(Column::names).collect()
    }

    /// One flag per encoded column: true for the 0/1 columns of categorical features.
    pub fn one_hot(&self) -> Vec<bool> {
        self.columns.iter().flat_map(|c| std::iter::repeat_n(c.kind() == Kind::Categorical, c.width())).collect()
    }

    /// Checks the encoding against the model's features; the error says what is wrong.
    pub fn check(&self, features: &[String], field: &str) -> Result<(), String> {
        if self.columns.len() != features.len() {
            return Err(format!("{field} has {} entries for the {} features {}", self.columns.len(), features.len(), sql_array(features)));
        }
        for (i, (c, f)) in self.columns.iter().zip(features).enumerate() {
            if c.feature() != f {
                return Err(format!("{field}[{i}] is for feature \"{}\", expected \"{f}\"", c.feature()));
            }
            if let Column::Categorical { levels, other, .. } = c {
                if levels.is_empty() && other.is_empty() {
                    return Err(format!("{field}[{i}] ({f}) has no levels"));
                }
                let mut all: Vec<&String> = levels.iter().chain(other).collect();
                all.sort();
                if let Some(w) = all.windows(2).find(|w| w[0] == w[1]) {
                    return Err(format!("{field}[{i}] ({f}) lists the level \"{}\" twice", w[0]));
                }
                if levels.len() > MAX_LEVELS + 1 || other.len() > MAX_DISTINCT {
                    return Err(format!("{field}[{i}] ({f}) has more levels than pg_rfm allows"));
                }
            }
        }
        Ok(())
    }
}

/// Validates `max_levels`.
pub fn check_max_levels(max_levels: usize) -> Result<(), CoreError> {
    if (2..=MAX_LEVELS).contains(&max_levels) {
        Ok(())
    } else {
        Err(invalid(format!("max_levels must be between 2 and {MAX_LEVELS}, got {max_levels}")))
    }
}

/// Rows read from a source: numeric features as floats and categorical features as codes
/// into one dictionary per categorical feature, both flat (n rows).
#[derive(Default, Debug, Clone)]
pub struct Table {
    pub kinds: Vec<Kind>,
    pub numeric: Vec<f64>,
    pub codes: Vec<u32>,
    pub dicts: Vec<Vec<String>>,
}

impl Table {
    pub fn rows(&self) -> usize {
        let dn = self.kinds.iter().filter(|k| **k == Kind::Numeric).count();
        let dc = self.kinds.len() - dn;
        self.numeric.len().checked_div(dn).or(self.codes.len().checked_div(dc)).unwrap_or(0)
    }

    /// Fits the encoding of the table's features (training).
    pub fn fit(&self, features: &[String], max_levels: usize) -> Result<Encoding, CoreError> {
        let dc = self.kinds.iter().filter(|k| **k == Kind::Categorical).count();
        let mut columns = Vec::with_capacity(features.len());
        let mut c = 0;
        for (f, kind) in features.iter().zip(&self.kinds) {
            match kind {
                Kind::Numeric => columns.push(Column::Numeric { feature: f.clone() }),
                Kind::Categorical => {
                    let mut counts = vec![0u64; self.dicts[c].len()];
                    for code in self.codes.iter().skip(c).step_by(dc) {
                        counts[*code as usize] += 1;
                    }
                    columns.push(Column::fit_categorical(f, &self.dicts[c], &counts, max_levels)?);
                    c += 1;
                }
            }
        }
        Ok(Encoding { columns })
    }

    /// The rows encoded with `enc` (flat, `enc.width()` columns). With every feature numeric
    /// this is the numeric block itself.
    pub fn encode(self, enc: &Encoding) -> Result<Vec<f64>, CoreError> {
        if self.kinds.iter().all(|k| *k == Kind::Numeric) {
            return Ok(self.numeric);
        }
        let n = self.rows();
        let (dn, dc) = (self.kinds.iter().filter(|k| **k == Kind::Numeric).count(), self.dicts.len());
        let width = enc.width();
        // Per categorical feature: dictionary code -> slot within its block.
        let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(dc);
        let mut c = 0;
        for col in &enc.columns {
            if col.kind() == Kind::Categorical {
                let lookup = Lookup::new(col);
                let dict = self.dicts.get(c).ok_or_else(|| invalid("the source has fewer categorical columns than the model"))?;
                maps.push(dict.iter().map(|v| lookup.slot(v)).collect());
                c += 1;
            }
        }
        let mut out = vec![0.0; n * width];
        for i in 0..n {
            let row = &mut out[i * width..(i + 1) * width];
            let (mut at, mut jn, mut jc) = (0, 0, 0);
            for col in &enc.columns {
                match col.kind() {
                    Kind::Numeric => {
                        row[at] = self.numeric[i * dn + jn];
                        jn += 1;
                    }
                    Kind::Categorical => {
                        if let Some(s) = maps[jc][self.codes[i * dc + jc] as usize] {
                            row[at + s] = 1.0;
                        }
                        jc += 1;
                    }
                }
                at += col.width();
            }
        }
        Ok(out)
    }
}

/// One input value of a row to assign.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Num(f64),
    Cat(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn levels_are_capped_by_frequency_and_sorted() {
        // Counts: PhD 5, Master 3, Basic 1, Graduation 7, 2n Cycle 1 (ties alphabetical).
        let dict = s(&["PhD", "Master", "Basic", "Graduation", "2n Cycle"]);
        let c = Column::fit_categorical("education", &dict, &[5, 3, 1, 7, 1], 10).unwrap();
        assert_eq!(c.names(), s(&["education=2n Cycle", "education=Basic", "education=Graduation", "education=Master", "education=PhD"]));
        let c = Column::fit_categorical("education", &dict, &[5, 3, 1, 7, 1], 3).unwrap();
        assert_eq!(
            c,
            Column::Categorical {
                feature: "education".into(),
                levels: s(&["Graduation", "PhD"]),
                other: s(&["2n Cycle", "Basic", "Master"])
            }
        );
        assert_eq!(c.names(), s(&["education=Graduation", "education=PhD", "education=(other)"]));
        assert_eq!(c.width(), 3);
    }

    #[test]
    fn table_encodes_one_hot_and_unseen_as_zeros() {
        // Two features: income (numeric) and status (categorical), three rows.
        let t = Table {
            kinds: vec![Kind::Numeric, Kind::Categorical],
            numeric: vec![10.0, 20.0, 30.0],
            codes: vec![0, 1, 0],
            dicts: vec![s(&["Single", "Married"])],
        };
        let enc = t.fit(&s(&["income", "status"]), 10).unwrap();
        assert_eq!(enc.names(), s(&["income", "status=Married", "status=Single"]));
        assert_eq!(enc.one_hot(), vec![false, true, true]);
        let out = t.clone().encode(&enc).unwrap();
        assert_eq!(out, vec![10.0, 0.0, 1.0, 20.0, 1.0, 0.0, 30.0, 0.0, 1.0]);
        // A source whose dictionary has a value the model never saw: all zeros.
        let other = Table { dicts: vec![s(&["Widow", "Married"])], ..t };
        assert_eq!(other.encode(&enc).unwrap(), vec![10.0, 0.0, 0.0, 20.0, 1.0, 0.0, 30.0, 0.0, 0.0]);
        assert!(enc.check(&s(&["income", "status"]), "encoding").is_ok());
        assert!(enc.check(&s(&["income", "marital"]), "encoding").unwrap_err().contains("expected \"marital\""));
        assert!(check_max_levels(1).is_err() && check_max_levels(20).is_ok());
    }
}
