//! RFM scores from quantile breaks, and the segment rule lookup.

use super::error::{invalid, show};
use super::quantile::check_classes;
use super::CoreError;

/// Cut points of one population: `n - 1` non-decreasing cuts for each of R, F and M.
#[derive(Clone, Debug, PartialEq)]
pub struct Breaks {
    pub n: i32,
    pub recency: Vec<f64>,
    pub frequency: Vec<f64>,
    pub monetary: Vec<f64>,
}

impl Breaks {
    /// Rejects breaks a user assembled by hand that `rfm_breaks` could not have produced.
    pub fn validate(&self) -> Result<(), CoreError> {
        check_classes("breaks.n", self.n)?;
        let want = (self.n - 1) as usize;
        for (name, cuts) in [("recency", &self.recency), ("frequency", &self.frequency), ("monetary", &self.monetary)] {
            if cuts.len() != want {
                return Err(invalid(format!("breaks.{name} has {} cut points, expected n - 1 = {want}", cuts.len())));
            }
            if cuts.iter().any(|c| !c.is_finite()) || cuts.windows(2).any(|w| w[0] > w[1]) {
                return Err(invalid(format!("breaks.{name} must be finite and non-decreasing")));
            }
        }
        Ok(())
    }
}

/// Class of `x` among cuts: 1 + the number of cut points strictly below `x`.
/// A value equal to a cut point falls into the lower class, like `(c[i-1], c[i]]` intervals,
/// so equal values always share a class, and collapsed (equal) cuts leave classes unused
/// instead of splitting ties.
#[inline]
pub fn class_of(x: f64, cuts: &[f64]) -> i32 {
    1 + cuts.partition_point(|c| *c < x) as i32
}

/// (r, f, m) scores in 1..=n, n best. Low recency is best, so R is reversed.
pub fn score(b: &Breaks, recency: f64, frequency: f64, monetary: f64) -> Result<(i32, i32, i32), CoreError> {
    for (name, v) in [("recency", recency), ("frequency", frequency), ("monetary", monetary)] {
        if !v.is_finite() {
            return Err(invalid(format!("{name} must be a finite number, got {}", show(v))));
        }
    }
    Ok((b.n + 1 - class_of(recency, &b.recency), class_of(frequency, &b.frequency), class_of(monetary, &b.monetary)))
}

/// Scores are looked up in the rule table on a 1..5 scale whatever n is.
pub fn to_five(score: i32, n: i32) -> i32 {
    if n == 5 {
        return score;
    }
    1 + ((score - 1) as f64 * 4.0 / (n - 1) as f64).round() as i32
}

/// `'545'` for n <= 9; with two-digit scores, `'10-3-7'` so codes stay unambiguous.
pub fn code(r: i32, f: i32, m: i32, n: i32) -> String {
    if n <= 9 {
        format!("{r}{f}{m}")
    } else {
        format!("{r}-{f}-{m}")
    }
}

/// One row of the segment rule table (score ranges inclusive, on the 1..5 scale).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub segment: String,
    pub action: String,
    pub r: (i32, i32),
    pub f: (i32, i32),
    pub m: (i32, i32),
}

impl Rule {
    pub fn matches(&self, r: i32, f: i32, m: i32) -> bool {
        let inside = |(lo, hi): (i32, i32), v: i32| lo <= v && v <= hi;
        inside(self.r, r) && inside(self.f, f) && inside(self.m, m)
    }
}

/// Reads rules from JSON as `rfm_rules()` writes them: an array of objects with `segment`,
/// `action` and `r_min` .. `m_max`, in priority order (`priority` and other keys are
/// ignored). The error names the element and key at fault.
pub fn parse_rules(value: &serde_json::Value) -> Result<Vec<Rule>, String> {
    let items = value.as_array().ok_or("must be a JSON array of rules, as rfm_rules() returns")?;
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let text = |key: &str| -> Result<String, String> {
            match item.get(key) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                _ => Err(format!("element {i} has no \"{key}\" text")),
            }
        };
        let range = |what: &str| -> Result<(i32, i32), String> {
            let bound = |key: String| -> Result<i32, String> {
                item.get(&key)
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or(format!("element {i} has no integer \"{key}\""))
            };
            let (lo, hi) = (bound(format!("{what}_min"))?, bound(format!("{what}_max"))?);
            if 1 <= lo && lo <= hi && hi <= 5 {
                Ok((lo, hi))
            } else {
                Err(format!("element {i} needs 1 <= {what}_min <= {what}_max <= 5, got {lo} and {hi}"))
            }
        };
        rules.push(Rule { segment: text("segment")?, action: text("action")?, r: range("r")?, f: range("f")?, m: range("m")? });
    }
    Ok(rules)
}

/// First rule, in the given (priority) order, whose ranges hold the 1..5 scores.
pub fn find_rule(rules: &[Rule], r5: i32, f5: i32, m5: i32) -> Option<&Rule> {
    rules.iter().find(|rule| rule.matches(r5, f5, m5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b5() -> Breaks {
        Breaks {
            n: 5,
            recency: vec![10.0, 20.0, 30.0, 40.0],
            frequency: vec![1.0, 1.0, 1.0, 3.0],
            monetary: vec![100.0, 200.0, 300.0, 400.0],
        }
    }

    #[test]
    fn classes_and_ties() {
        let c = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(class_of(5.0, &c), 1);
        assert_eq!(class_of(10.0, &c), 1, "a value at a cut takes the lower class");
        assert_eq!(class_of(10.5, &c), 2);
        assert_eq!(class_of(40.0, &c), 4);
        assert_eq!(class_of(41.0, &c), 5);
    }

    #[test]
    fn recency_is_reversed_and_collapsed_cuts_stay_in_range() {
        let b = b5();
        // recency 5 days is the best class; frequency 1 sits on three collapsed cuts -> 1;
        // frequency 2 is above all three -> 4; frequency 4 -> 5.
        assert_eq!(score(&b, 5.0, 1.0, 450.0).unwrap(), (5, 1, 5));
        assert_eq!(score(&b, 45.0, 2.0, 50.0).unwrap(), (1, 4, 1));
        assert_eq!(score(&b, 25.0, 4.0, 250.0).unwrap(), (3, 5, 3));
        assert!(score(&b, f64::NAN, 1.0, 1.0).is_err());
    }

    #[test]
    fn validation() {
        assert!(b5().validate().is_ok());
        let mut b = b5();
        b.monetary.pop();
        assert!(b.validate().is_err());
        let mut b = b5();
        b.recency = vec![4.0, 3.0, 2.0, 1.0];
        assert!(b.validate().is_err());
        let mut b = b5();
        b.n = 1;
        assert!(b.validate().is_err());
    }

    #[test]
    fn scale_and_code() {
        assert_eq!((1..=3).map(|s| to_five(s, 3)).collect::<Vec<_>>(), vec![1, 3, 5]);
        assert_eq!((1..=10).map(|s| to_five(s, 10)).collect::<Vec<_>>(), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert_eq!(code(5, 4, 5, 5), "545");
        assert_eq!(code(10, 3, 7, 10), "10-3-7");
    }

    #[test]
    fn rules_from_json() {
        let v = serde_json::json!([
            {"priority": 10, "segment": "VIP", "action": "Call", "r_min": 5, "r_max": 5, "f_min": 4, "f_max": 5, "m_min": 1, "m_max": 5},
            {"segment": "Rest", "action": "", "r_min": 1, "r_max": 5, "f_min": 1, "f_max": 5, "m_min": 1, "m_max": 5, "description": null}
        ]);
        let rules = parse_rules(&v).unwrap();
        assert_eq!(rules[0], Rule { segment: "VIP".into(), action: "Call".into(), r: (5, 5), f: (4, 5), m: (1, 5) });
        assert_eq!(find_rule(&rules, 4, 4, 4).unwrap().segment, "Rest");
        assert_eq!(parse_rules(&serde_json::json!({"a": 1})).unwrap_err(), "must be a JSON array of rules, as rfm_rules() returns");
        let mut bad = v.clone();
        bad[1]["f_max"] = serde_json::json!(6);
        assert_eq!(parse_rules(&bad).unwrap_err(), "element 1 needs 1 <= f_min <= f_max <= 5, got 1 and 6");
        bad[0].as_object_mut().unwrap().remove("segment");
        assert_eq!(parse_rules(&bad).unwrap_err(), "element 0 has no \"segment\" text");
    }

    #[test]
    fn first_rule_wins() {
        let rule = |s: &str, r, f, m| Rule { segment: s.into(), action: String::new(), r, f, m };
        let rules = vec![rule("A", (5, 5), (1, 5), (1, 5)), rule("B", (1, 5), (1, 5), (1, 5))];
        assert_eq!(find_rule(&rules, 5, 1, 1).unwrap().segment, "A");
        assert_eq!(find_rule(&rules, 4, 1, 1).unwrap().segment, "B");
        assert!(find_rule(&rules[..1], 4, 1, 1).is_none());
    }
}
