//! Experiments (A/B tests of segment actions): the arms and their shares, the keyed hash that
//! orders customers, the blocked assignment within each stratum, and the statistics of the
//! results (`stats`).
//!
//! Assignment: within a stratum, customers are ordered by a 64-bit SipHash-1-3 of their id,
//! keyed by the experiment's name and seed (ties by the id's bytes), then dealt out by
//! smooth weighted round robin: each customer adds every arm's share to that arm's credit
//! and goes to the arm with the most credit, which pays 1. After any number of customers,
//! each arm's count differs from share x customers by less than one. Ties between arms go to
//! the arm first in an order drawn per stratum, so that the first customers of small strata
//! do not all go to the same arm. Nothing depends on the order rows are read in.

use std::hash::Hasher;

use serde_json::Value;
use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as Sip128};

use super::error::invalid;
use super::stats::{self, Moments};
use super::CoreError;

pub const MAX_ARMS: usize = 10;

/// The arms of an experiment, in their order (the object form's keys in jsonb's order).
#[derive(Clone, Debug, PartialEq)]
pub struct Arms {
    pub names: Vec<String>,
    pub shares: Vec<f64>,
    pub control: usize,
}

impl Arms {
    /// `{"control": 0.5, "offer": 0.5}` or `[["control", 0.5], ["offer", 0.5]]` or
    /// `[{"arm": "control", "share": 0.5}, ...]` (the array forms keep their order and let
    /// a name given twice be seen); `control` names the control arm.
    pub fn parse(v: &Value, control: &str) -> Result<Arms, CoreError> {
        let form = "arms is a JSON object of arm names and shares, {\"control\": 0.5, \"offer\": 0.5}, or an array [[\"control\", 0.5], [\"offer\", 0.5]]";
        let mut pairs: Vec<(String, f64)> = Vec::new();
        let share = |name: &str, s: &Value| -> Result<f64, CoreError> {
            s.as_f64().ok_or_else(|| invalid(format!("the share of arm \"{name}\" must be a number, got {s}")).hint(form))
        };
        match v {
            Value::Object(m) => {
                for (k, s) in m {
                    pairs.push((k.clone(), share(k, s)?));
                }
            }
            Value::Array(items) => {
                for item in items {
                    let (name, s) = match item {
                        Value::Array(p) if p.len() == 2 => (p[0].as_str(), &p[1]),
                        Value::Object(o) => (o.get("arm").and_then(Value::as_str), o.get("share").unwrap_or(&Value::Null)),
                        _ => (None, &Value::Null),
                    };
                    let name = name.ok_or_else(|| invalid(format!("arms: {item} is not an arm name and a share")).hint(form))?;
                    pairs.push((name.to_string(), share(name, s)?));
                }
            }
            _ => return Err(invalid(format!("arms must be a JSON object or array, got {v}")).hint(form)),
        }
        if !(2..=MAX_ARMS).contains(&pairs.len()) {
            return Err(invalid(format!("an experiment has 2 to {MAX_ARMS} arms, got {}", pairs.len())).hint(form));
        }
        for (i, (name, s)) in pairs.iter().enumerate() {
            if name.is_empty() {
                return Err(invalid("an arm name must not be empty"));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(invalid(format!("arm \"{name}\" is named twice")));
            }
            if !(s.is_finite() && *s > 0.0 && *s < 1.0) {
                return Err(invalid(format!("the share of arm \"{name}\" must be between 0 and 1 (exclusive), got {s}")));
            }
        }
        let total: f64 = pairs.iter().map(|p| p.1).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(invalid(format!("the shares of the arms must sum to 1, got {total}"))
                .hint("Give each arm its share of the customers, for example {\"control\": 0.2, \"offer\": 0.8}."));
        }
        let Some(control) = pairs.iter().position(|(n, _)| n == control) else {
            return Err(invalid(format!("there is no arm named \"{control}\" to be the control"))
                .hint("Name the control arm \"control\", or give its name as control_arm."));
        };
        Ok(Arms { names: pairs.iter().map(|p| p.0.clone()).collect(), shares: pairs.iter().map(|p| p.1).collect(), control })
    }

    /// The stored form: an array of [name, share] in order.
    pub fn to_json(&self) -> Value {
        Value::Array(self.names.iter().zip(&self.shares).map(|(n, s)| serde_json::json!([n, s])).collect())
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// The hash key of an experiment: its name and seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Key {
    k0: u64,
    k1: u64,
}

impl Key {
    pub fn new(name: &str, seed: i64) -> Key {
        let mut h = Sip128::new_with_keys(0x7067_5f72_666d_6578, 0x7065_7269_6d65_6e74);
        h.write(&(name.len() as u64).to_le_bytes());
        h.write(name.as_bytes());
        h.write(&seed.to_le_bytes());
        let k = h.finish128().as_u128();
        Key { k0: (k >> 64) as u64, k1: k as u64 }
    }

    /// The 64-bit hash of a customer id (or of another byte string: strata, arms).
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(bytes);
        h.finish()
    }

    /// The arm of a customer who is not in the stored assignment (arrived after creation):
    /// drawn from the customer's hash with the experiment's shares, unstratified.
    pub fn draw(&self, arms: &Arms, customer: &[u8]) -> usize {
        // A hash of its own (a prefix byte), so that it is independent of the ordering hash.
        let mut h = SipHasher13::new_with_keys(self.k1, self.k0);
        h.write(b"d");
        h.write(customer);
        let u = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        let mut acc = 0.0;
        for (i, s) in arms.shares.iter().enumerate() {
            acc += s;
            if u < acc {
                return i;
            }
        }
        arms.shares.len() - 1
    }
}

/// Deals `n` customers (already in their hash order) out to the arms by smooth weighted
/// round robin; `tie` orders the arms for ties. Returns each customer's arm.
pub fn deal(n: usize, shares: &[f64], tie: &[usize]) -> Vec<u8> {
    let mut credit = vec![0.0f64; shares.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut best = tie[0];
        for (a, c) in credit.iter_mut().enumerate() {
            *c += shares[a];
        }
        for &a in tie {
            if credit[a] > credit[best] {
                best = a;
            }
        }
        credit[best] -= 1.0;
        out.push(best as u8);
    }
    out
}

/// The order in which the arms win ties in one stratum: arms sorted by a hash of the stratum
/// and the arm's name.
pub fn tie_order(key: &Key, arms: &Arms, stratum: Option<&[u8]>) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = arms
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut b = Vec::with_capacity(name.len() + 16);
            match stratum {
                Some(s) => {
                    b.push(1);
                    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
                    b.extend_from_slice(s);
                }
                None => b.push(0),
            }
            b.extend_from_slice(name.as_bytes());
            (key.hash(&b), i)
        })
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

/// One customer to assign: id bytes and stratum number.
pub struct Customer<'a> {
    pub id: &'a [u8],
    pub stratum: u32,
}

/// The assignment of every customer (an arm index per customer, in the input order), strata
/// numbered 0..strata.len() with their bytes (None: the NULL stratum).
pub fn assign(key: &Key, arms: &Arms, customers: &[Customer<'_>], strata: &[Option<Vec<u8>>], check: &mut dyn FnMut()) -> Vec<u8> {
    let mut by_stratum: Vec<Vec<(u64, usize)>> = vec![Vec::new(); strata.len()];
    for (i, c) in customers.iter().enumerate() {
        by_stratum[c.stratum as usize].push((key.hash(c.id), i));
        if i % 65536 == 0 {
            check();
        }
    }
    let mut out = vec![0u8; customers.len()];
    for (s, members) in by_stratum.iter_mut().enumerate() {
        check();
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| customers[a.1].id.cmp(customers[b.1].id)));
        let tie = tie_order(key, arms, strata[s].as_deref());
        for (&(_, i), arm) in members.iter().zip(deal(members.len(), &arms.shares, &tie)) {
            out[i] = arm;
        }
    }
    out
}

// ---------------------------------------------------------------------------- results

/// The outcomes of the customers of one arm in one scope (a stratum, or all): revenue per
/// customer, whether each converted, and the covariate (CUPED) if any.
#[derive(Clone, Debug, Default)]
pub struct ArmData {
    pub revenue: Vec<f64>,
    pub converted: u64,
    pub covariate: Vec<f64>,
}

/// One arm's row of the results: its own numbers and, for a treatment arm, the comparison
/// with control. None: NULL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmRow {
    pub customers: u64,
    pub converted: u64,
    pub conversion_rate: Option<f64>,
    pub revenue: f64,
    pub revenue_per_customer: Option<f64>,
    pub revenue_sd: Option<f64>,
    pub lift_abs: Option<f64>,
    pub lift_rel: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub revenue_diff: Option<f64>,
    pub revenue_ci: Option<(f64, f64)>,
    pub revenue_p_value: Option<f64>,
    pub cuped_diff: Option<f64>,
    pub cuped_ci: Option<(f64, f64)>,
    pub cuped_p_value: Option<f64>,
    pub variance_reduction: Option<f64>,
    pub theta: Option<f64>,
}

/// The results of one scope: a row per arm (control's has no comparison), and the notices
/// of statistics left NULL and why.
pub fn scope_results(arms: &Arms, data: &[ArmData], cuped: bool, alpha: f64, scope: &str, notices: &mut Vec<String>) -> Vec<ArmRow> {
    let c = &data[arms.control];
    let mut rows = Vec::with_capacity(data.len());
    for (a, d) in data.iter().enumerate() {
        let n = d.revenue.len() as u64;
        let m = stats::moments(&d.revenue);
        let mut row = ArmRow {
            customers: n,
            converted: d.converted,
            conversion_rate: (n > 0).then(|| d.converted as f64 / n as f64),
            revenue: d.revenue.iter().sum(),
            revenue_per_customer: (n > 0).then_some(m.mean),
            revenue_sd: (n > 1).then(|| m.var.sqrt()),
            ..ArmRow::default()
        };
        if a != arms.control {
            compare(&mut row, arms, a, c, d, cuped, alpha, scope, notices);
        } else if n == 0 {
            notices.push(format!("{scope}: the control arm \"{}\" has no customers: no comparison", arms.names[a]));
        }
        rows.push(row);
    }
    rows
}

#[allow(clippy::too_many_arguments)]
fn compare(
    row: &mut ArmRow,
    arms: &Arms,
    a: usize,
    c: &ArmData,
    t: &ArmData,
    cuped: bool,
    alpha: f64,
    scope: &str,
    notices: &mut Vec<String>,
) {
    let arm = &arms.names[a];
    let (nt, nc) = (t.revenue.len() as u64, c.revenue.len() as u64);
    if nt == 0 || nc == 0 {
        if nt == 0 {
            notices.push(format!("{scope}: arm \"{arm}\" has no customers: its comparison is NULL"));
        }
        return;
    }
    let (pt, pc) = (t.converted as f64 / nt as f64, c.converted as f64 / nc as f64);
    row.lift_abs = Some(pt - pc);
    row.lift_rel = (pc > 0.0).then(|| (pt - pc) / pc);
    row.ci = stats::newcomb_diff(t.converted, nt, c.converted, nc, alpha);
    match stats::proportions_ztest(t.converted, nt, c.converted, nc) {
        Some(z) => row.p_value = Some(z.p_value),
        None => notices.push(format!(
            "{scope}: arm \"{arm}\": every customer of both arms {} converted: the conversion test has no variance (p_value NULL)",
            if t.converted == 0 { "not" } else { "" }
        )),
    }
    let (mt, mc) = (stats::moments(&t.revenue), stats::moments(&c.revenue));
    row.revenue_diff = Some(mt.mean - mc.mean);
    match stats::welch(&mt, &mc, alpha) {
        Some((test, _df, ci)) => {
            row.revenue_p_value = Some(test.p_value);
            row.revenue_ci = Some(ci);
        }
        None => notices.push(format!(
            "{scope}: arm \"{arm}\": revenue has no variance, or an arm has fewer than 2 customers: the revenue test is NULL"
        )),
    }
    if cuped {
        cuped_compare(row, t, c, alpha, scope, arm, notices);
    }
}

/// CUPED (Deng et al. 2013): Y' = Y - theta (X - mean X), theta = cov(Y, X) / var(X) over the
/// customers of both arms; the revenue difference of Y' with Welch's test, and the variance
/// reduction 1 - var(Y') / var(Y) over both arms.
fn cuped_compare(row: &mut ArmRow, t: &ArmData, c: &ArmData, alpha: f64, scope: &str, arm: &str, notices: &mut Vec<String>) {
    let ys: Vec<f64> = t.revenue.iter().chain(&c.revenue).copied().collect();
    let xs: Vec<f64> = t.covariate.iter().chain(&c.covariate).copied().collect();
    let n = ys.len();
    if n < 3 || xs.len() != n {
        return;
    }
    let (my, mx) = (ys.iter().sum::<f64>() / n as f64, xs.iter().sum::<f64>() / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (y, x) in ys.iter().zip(&xs) {
        sxy += (y - my) * (x - mx);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx.is_nan() || sxx <= 0.0 {
        notices.push(format!("{scope}: arm \"{arm}\": the covariate has no variance: the CUPED columns are NULL"));
        return;
    }
    let theta = sxy / sxx;
    let adjust = |d: &ArmData| -> Vec<f64> { d.revenue.iter().zip(&d.covariate).map(|(y, x)| y - theta * (x - mx)).collect() };
    let (at, ac) = (adjust(t), adjust(c));
    let (mt, mc) = (stats::moments(&at), stats::moments(&ac));
    row.theta = Some(theta);
    row.cuped_diff = Some(mt.mean - mc.mean);
    let all: Vec<f64> = at.iter().chain(&ac).copied().collect();
    let adj = stats::moments(&all);
    if syy > 0.0 {
        row.variance_reduction = Some(1.0 - adj.var / (syy / (n - 1) as f64));
    }
    if let Some((test, _, ci)) = stats::welch(&mt, &mc, alpha) {
        row.cuped_p_value = Some(test.p_value);
        row.cuped_ci = Some(ci);
    }
}

/// Moments of a slice, for callers that pool.
pub fn moments(x: &[f64]) -> Moments {
    stats::moments(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;

    fn arms(v: &str) -> Result<Arms, CoreError> {
        Arms::parse(&serde_json::from_str(v).unwrap(), "control")
    }

    #[test]
    fn arms_parse_and_refuse() {
        let a = arms(r#"{"control": 0.5, "offer": 0.5}"#).unwrap();
        assert_eq!((a.names.len(), a.control), (2, 0));
        let b = arms(r#"[["offer", 0.3], ["control", 0.7]]"#).unwrap();
        assert_eq!((b.names[0].as_str(), b.control), ("offer", 1));
        assert_eq!(arms(r#"[{"arm": "offer", "share": 0.3}, {"arm": "control", "share": 0.7}]"#).unwrap(), b);
        for (bad, says) in [
            (r#"{"control": 0.5, "offer": 0.4}"#, "sum to 1"),
            (r#"[["control", 0.5], ["control", 0.5]]"#, "named twice"),
            (r#"{"control": 1}"#, "2 to 10"),
            (r#"{"a": 0.5, "b": 0.5}"#, "no arm named \"control\""),
            (r#"{"control": 0.5, "offer": "half"}"#, "must be a number"),
            (r#"{"control": 1.5, "offer": -0.5}"#, "between 0 and 1"),
            (r#""control""#, "object or array"),
            (r#"[["control"], ["offer", 1]]"#, "not an arm name"),
        ] {
            let e = arms(bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }

    /// After any prefix, every arm is within one customer of its share, for random shares.
    #[test]
    fn dealing_keeps_every_prefix_balanced() {
        let mut rng = Rng::new(7);
        for trial in 0..200 {
            let k = 2 + (trial % 9);
            let mut w: Vec<f64> = (0..k).map(|_| 0.05 + rng.f64()).collect();
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|x| *x /= total);
            let tie: Vec<usize> = (0..k).rev().collect();
            let arms = deal(3000, &w, &tie);
            let mut counts = vec![0f64; k];
            for (i, &a) in arms.iter().enumerate() {
                counts[a as usize] += 1.0;
                for (c, s) in counts.iter().zip(&w) {
                    assert!((c - s * (i + 1) as f64).abs() < 1.0 + 1e-9, "trial {trial} after {}", i + 1);
                }
            }
        }
    }

    #[test]
    fn assignment_is_deterministic_and_order_free() {
        let arms = arms(r#"{"control": 0.5, "offer": 0.3, "other": 0.2}"#).unwrap();
        let key = Key::new("winback", 42);
        let ids: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        let strata = vec![Some(b"A".to_vec()), Some(b"B".to_vec()), None];
        let customers: Vec<Customer> =
            ids.iter().enumerate().map(|(i, id)| Customer { id: id.as_bytes(), stratum: (i % 3) as u32 }).collect();
        let a = assign(&key, &arms, &customers, &strata, &mut || {});
        // Reversed input: each customer gets the same arm.
        let rev: Vec<Customer> = customers.iter().rev().map(|c| Customer { id: c.id, stratum: c.stratum }).collect();
        let b = assign(&key, &arms, &rev, &strata, &mut || {});
        let b: Vec<u8> = b.into_iter().rev().collect();
        assert_eq!(a, b);
        // Another seed: another assignment.
        assert_ne!(a, assign(&Key::new("winback", 43), &arms, &customers, &strata, &mut || {}));
        // Balanced per stratum.
        for s in 0..3u32 {
            let n = customers.iter().filter(|c| c.stratum == s).count() as f64;
            for arm in 0..3u8 {
                let got = customers.iter().zip(&a).filter(|(c, x)| c.stratum == s && **x == arm).count() as f64;
                assert!((got - arms.shares[arm as usize] * n).abs() < 1.0, "stratum {s} arm {arm}: {got} of {n}");
            }
        }
        // Draws for late customers follow the shares.
        let mut counts = [0u32; 3];
        for i in 0..30000 {
            counts[key.draw(&arms, format!("late{i}").as_bytes())] += 1;
        }
        for (c, s) in counts.iter().zip(&arms.shares) {
            assert!((*c as f64 / 30000.0 - s).abs() < 0.01, "{counts:?}");
        }
    }
}

// ---------------------------------------------------------------------------- outcome totals

/// Per customer id, the net sum of its amounts and whether one of them was a purchase
/// (amount >= 0): the partial state of `rfm_experiment_lines`, so that the order lines of a
/// window are summed by the executor (in parallel workers too) instead of being fetched.
/// Ids of up to 15 bytes are packed into a u128 key (no allocation, one memory access).
#[derive(Clone, Debug, Default)]
pub struct Totals {
    short: rustc_hash::FxHashMap<u128, (super::rfm::Sum, bool)>,
    long: rustc_hash::FxHashMap<Box<[u8]>, (super::rfm::Sum, bool)>,
}

impl Totals {
    #[inline]
    pub fn update(&mut self, customer: &[u8], amount: f64) -> Result<(), CoreError> {
        if !amount.is_finite() {
            return Err(invalid(format!(
                "the amount of a line of customer \"{}\" is not a finite number",
                String::from_utf8_lossy(customer)
            )));
        }
        let e = match super::rfm::pack(customer) {
            Some(p) => self.short.entry(p).or_default(),
            None => match self.long.get_mut(customer) {
                Some(e) => e,
                None => self.long.entry(customer.into()).or_default(),
            },
        };
        e.0.add(amount);
        e.1 |= amount >= 0.0;
        Ok(())
    }

    /// Every customer's (id, sum, converted).
    pub fn into_entries(self) -> impl Iterator<Item = (Box<[u8]>, super::rfm::Sum, bool)> {
        self.short.into_iter().map(|(p, (s, c))| (super::rfm::unpack(p), s, c)).chain(self.long.into_iter().map(|(k, (s, c))| (k, s, c)))
    }

    fn entries(&self) -> impl Iterator<Item = (Box<[u8]>, &(super::rfm::Sum, bool))> {
        self.short.iter().map(|(p, e)| (super::rfm::unpack(*p), e)).chain(self.long.iter().map(|(k, e)| (k.clone(), e)))
    }

    fn insert(&mut self, k: &[u8], e: (super::rfm::Sum, bool)) {
        let slot = match super::rfm::pack(k) {
            Some(p) => self.short.entry(p).or_default(),
            None => self.long.entry(k.into()).or_default(),
        };
        slot.0.merge(&e.0);
        slot.1 |= e.1;
    }
}

impl super::Partial for Totals {
    fn empty() -> Self {
        Totals::default()
    }
    fn merge(&mut self, other: &mut Totals) -> Result<(), CoreError> {
        if self.short.len() + self.long.len() < other.short.len() + other.long.len() {
            std::mem::swap(self, other);
        }
        for (p, e) in other.short.drain() {
            let slot = self.short.entry(p).or_default();
            slot.0.merge(&e.0);
            slot.1 |= e.1;
        }
        for (k, e) in other.long.drain() {
            let slot = self.long.entry(k).or_default();
            slot.0.merge(&e.0);
            slot.1 |= e.1;
        }
        Ok(())
    }
    fn serialize_into(&self, out: &mut Vec<u8>) {
        let mut w = super::codec::Writer { buf: std::mem::take(out) };
        w.buf.reserve((self.short.len() + self.long.len()) * 32);
        w.leb128((self.short.len() + self.long.len()) as u64);
        for (k, (s, c)) in self.entries() {
            w.leb128(k.len() as u64);
            w.buf.extend_from_slice(&k);
            let (a, b) = s.raw();
            w.f64(a);
            w.f64(b);
            w.u8(*c as u8);
        }
        *out = w.buf;
    }
    fn deserialize(buf: &[u8]) -> Result<Totals, CoreError> {
        let mut r = super::codec::Reader::new(buf);
        let n = r.leb128()? as usize;
        if n > buf.len() {
            return Err(super::error::corrupt_state("customer count"));
        }
        let mut t = Totals::default();
        t.short.reserve(n);
        for _ in 0..n {
            let len = r.leb128()? as usize;
            let k = r.take(len)?;
            let (a, b) = (r.f64()?, r.f64()?);
            let c = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(super::error::corrupt_state("converted flag")),
            };
            t.insert(k, (super::rfm::Sum::from_parts(a, b), c));
        }
        r.finish()?;
        Ok(t)
    }
}
