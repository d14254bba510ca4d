//! Market-basket analysis: frequent itemsets by FP-growth (Han, Pei and Yin 2000) over the
//! distinct items of each order, and association rules A -> C with their metrics, as mlxtend
//! 0.25 computes them (`fpgrowth(df, min_support, max_len, use_colnames=True)` then
//! `association_rules(itemsets, num_itemsets=orders, metric="confidence", min_threshold)`).
//!
//! mlxtend's thresholds, kept exactly: a single item is frequent when count / orders >=
//! min_support; a larger itemset when also count >= ceil(min_support x orders) (its
//! conditional trees prune at that count). Memory is bounded by a budget in bytes, counted
//! as itemsets, rules and tree nodes are made; past it, the work stops with an error that
//! says how far it got.

use rustc_hash::FxHashMap;

use super::error::{CoreError, Kind};

/// Bytes of memory the mining may use, and what it has used.
pub struct Budget {
    pub limit: usize,
    pub used: usize,
    pub itemsets: usize,
    pub rules: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget { limit, used: 0, itemsets: 0, rules: 0 }
    }

    fn spend(&mut self, bytes: usize) -> Result<(), CoreError> {
        self.used += bytes;
        if self.used > self.limit {
            return Err(CoreError::new(
                Kind::OutOfMemory,
                format!(
                    "the frequent itemsets and rules would exceed pg_rfm.basket_memory ({} MB): {} itemsets and {} rules \
                     reached",
                    self.limit >> 20,
                    self.itemsets,
                    self.rules
                ),
            )
            .hint("Raise min_support or lower max_len (or raise pg_rfm.basket_memory if the server has the memory)."));
        }
        Ok(())
    }
}

/// A frequent itemset: its items (ascending ids) and the number of orders that hold them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Itemset {
    pub items: Vec<u32>,
    pub count: u64,
}

/// The FP-tree: nodes in arrays, children as linked lists, a node list per item.
struct Tree {
    item: Vec<u32>,
    count: Vec<u64>,
    parent: Vec<u32>,
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
    /// Per item of the tree (by position in `items`), its nodes.
    nodes: Vec<Vec<u32>>,
    /// The tree's items (ids) and each one's position, in rank order (most frequent first).
    items: Vec<u32>,
    slot: FxHashMap<u32, usize>,
}

const NONE: u32 = u32::MAX;
const NODE_BYTES: usize = 4 * 5 + 8;

impl Tree {
    /// A tree over `items` (in rank order).
    fn new(items: Vec<u32>) -> Tree {
        let slot = items.iter().enumerate().map(|(i, &it)| (it, i)).collect();
        Tree {
            item: vec![NONE],
            count: vec![0],
            parent: vec![NONE],
            first_child: vec![NONE],
            next_sibling: vec![NONE],
            nodes: vec![Vec::new(); items.len()],
            items,
            slot,
        }
    }

    /// Inserts a path of items (already in rank order) with a count.
    fn insert(&mut self, path: &[u32], count: u64, budget: &mut Budget) -> Result<(), CoreError> {
        let mut node = 0u32;
        for &it in path {
            let mut child = self.first_child[node as usize];
            while child != NONE && self.item[child as usize] != it {
                child = self.next_sibling[child as usize];
            }
            if child == NONE {
                budget.spend(NODE_BYTES)?;
                child = self.item.len() as u32;
                self.item.push(it);
                self.count.push(0);
                self.parent.push(node);
                self.first_child.push(NONE);
                self.next_sibling.push(self.first_child[node as usize]);
                self.first_child[node as usize] = child;
                self.nodes[self.slot[&it]].push(child);
            }
            self.count[child as usize] += count;
            node = child;
        }
        Ok(())
    }

    fn release(&self, budget: &mut Budget) {
        budget.used = budget.used.saturating_sub(NODE_BYTES * (self.item.len() - 1));
    }
}

/// What makes an itemset frequent: support at least `min_support` (as mlxtend decides it),
/// at least `min_orders` orders (1: mlxtend's rule alone; more keeps small segments from
/// counting every chance pair), at most `max_len` items.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub min_support: f64,
    pub min_orders: u64,
    pub max_len: usize,
}

/// Frequent itemsets of the orders (each a list of distinct item ids below `n_items`), with
/// mlxtend's thresholds and the floor of `min_orders`. `check` is called often (cancellation).
pub fn frequent_itemsets(
    orders: &[Vec<u32>],
    n_items: usize,
    t: &Thresholds,
    budget: &mut Budget,
    check: &mut dyn FnMut(),
) -> Result<Vec<Itemset>, CoreError> {
    let (min_support, max_len) = (t.min_support, t.max_len);
    let n = orders.len();
    let mut out = Vec::new();
    if n == 0 || max_len == 0 {
        return Ok(out);
    }
    let mut counts = vec![0u64; n_items];
    for o in orders {
        for &i in o {
            counts[i as usize] += 1;
        }
    }
    // Single items: support >= min_support, as mlxtend's setup_fptree filters them.
    let mut frequent: Vec<u32> = (0..n_items as u32)
        .filter(|&i| counts[i as usize] as f64 / n as f64 >= min_support && counts[i as usize] >= t.min_orders)
        .collect();
    frequent.sort_by(|a, b| counts[*b as usize].cmp(&counts[*a as usize]).then(a.cmp(b)));
    let min_count = ((min_support * n as f64).ceil() as u64).max(t.min_orders).max(1);
    for &i in &frequent {
        budget.spend(40)?;
        budget.itemsets += 1;
        out.push(Itemset { items: vec![i], count: counts[i as usize] });
    }
    if max_len == 1 || frequent.is_empty() {
        return Ok(out);
    }
    let mut rank = vec![u32::MAX; n_items];
    for (r, &i) in frequent.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    let mut tree = Tree::new(frequent.clone());
    let mut path = Vec::new();
    for (k, o) in orders.iter().enumerate() {
        if k % 4096 == 0 {
            check();
        }
        path.clear();
        path.extend(o.iter().copied().filter(|&i| rank[i as usize] != u32::MAX));
        path.sort_by_key(|&i| rank[i as usize]);
        tree.insert(&path, 1, budget)?;
    }
    let mut prefix = Vec::new();
    let mut steps = 0u64;
    mine(&tree, &mut prefix, min_count, min_support, n, max_len, budget, &mut out, check, &mut steps)?;
    tree.release(budget);
    // Canonical order: by size, then items.
    for s in out.iter_mut() {
        s.items.sort_unstable();
    }
    out.sort_by(|a, b| a.items.len().cmp(&b.items.len()).then_with(|| a.items.cmp(&b.items)));
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn mine(
    tree: &Tree,
    prefix: &mut Vec<u32>,
    min_count: u64,
    min_support: f64,
    n: usize,
    max_len: usize,
    budget: &mut Budget,
    out: &mut Vec<Itemset>,
    check: &mut dyn FnMut(),
    steps: &mut u64,
) -> Result<(), CoreError> {
    // Items from the least frequent up: each one's conditional pattern base.
    for pos in (0..tree.items.len()).rev() {
        let item = tree.items[pos];
        let count: u64 = tree.nodes[pos].iter().map(|&nd| tree.count[nd as usize]).sum();
        if prefix.is_empty() {
            // Top level: the single items were emitted already.
        } else {
            if count < min_count || (count as f64 / n as f64) < min_support {
                continue;
            }
            let mut items = prefix.clone();
            items.push(item);
            budget.spend(32 + 4 * items.len())?;
            budget.itemsets += 1;
            out.push(Itemset { items, count });
        }
        if prefix.len() + 1 >= max_len {
            continue;
        }
        // The conditional tree of `item`: the paths above its nodes.
        let mut cond_counts: FxHashMap<u32, u64> = FxHashMap::default();
        for &nd in &tree.nodes[pos] {
            let c = tree.count[nd as usize];
            let mut p = tree.parent[nd as usize];
            while p != 0 {
                *cond_counts.entry(tree.item[p as usize]).or_default() += c;
                p = tree.parent[p as usize];
                *steps += 1;
                if (*steps).is_multiple_of(65536) {
                    check();
                }
            }
        }
        let keep: Vec<u32> = tree.items[..pos].iter().copied().filter(|i| cond_counts.get(i).is_some_and(|&c| c >= min_count)).collect();
        if keep.is_empty() {
            continue;
        }
        let mut cond = Tree::new(keep);
        let mut path = Vec::new();
        for &nd in &tree.nodes[pos] {
            let c = tree.count[nd as usize];
            path.clear();
            let mut p = tree.parent[nd as usize];
            while p != 0 {
                let it = tree.item[p as usize];
                if cond.slot.contains_key(&it) {
                    path.push(it);
                }
                p = tree.parent[p as usize];
            }
            path.reverse();
            cond.insert(&path, c, budget)?;
        }
        prefix.push(item);
        mine(&cond, prefix, min_count, min_support, n, max_len, budget, out, check, steps)?;
        prefix.pop();
        cond.release(budget);
    }
    Ok(())
}

/// A rule A -> C with mlxtend's metrics (conviction None where it is infinite, confidence 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub antecedent: Vec<u32>,
    pub consequent: Vec<u32>,
    pub antecedent_support: f64,
    pub consequent_support: f64,
    pub support: f64,
    pub confidence: f64,
    pub lift: f64,
    pub leverage: f64,
    pub conviction: Option<f64>,
    pub orders: u64,
}

/// Every rule of the itemsets (each split into a non-empty antecedent and consequent) whose
/// confidence is at least `min_confidence`, with the metrics computed as mlxtend does.
pub fn rules(
    itemsets: &[Itemset],
    orders: usize,
    min_confidence: f64,
    budget: &mut Budget,
    check: &mut dyn FnMut(),
) -> Result<Vec<Rule>, CoreError> {
    let n = orders as f64;
    let support: FxHashMap<&[u32], f64> = itemsets.iter().map(|s| (s.items.as_slice(), s.count as f64 / n)).collect();
    let mut out = Vec::new();
    for (k, set) in itemsets.iter().enumerate() {
        if k % 1024 == 0 {
            check();
        }
        let m = set.items.len();
        if m < 2 {
            continue;
        }
        let s_ac = set.count as f64 / n;
        // Every non-empty proper subset as the antecedent (bit masks; m <= 31).
        for mask in 1u32..((1u32 << m) - 1) {
            let (mut a, mut c) = (Vec::with_capacity(m), Vec::with_capacity(m));
            for (b, &it) in set.items.iter().enumerate() {
                if mask & (1 << b) != 0 {
                    a.push(it);
                } else {
                    c.push(it);
                }
            }
            let (Some(&s_a), Some(&s_c)) = (support.get(a.as_slice()), support.get(c.as_slice())) else {
                continue;
            };
            let confidence = (s_ac * n) / (s_a * n);
            if confidence < min_confidence {
                continue;
            }
            budget.spend(96 + 4 * m)?;
            budget.rules += 1;
            out.push(Rule {
                lift: confidence / s_c,
                leverage: s_ac - s_a * s_c,
                conviction: (confidence < 1.0).then(|| (1.0 - s_c) / (1.0 - confidence)),
                antecedent: a,
                consequent: c,
                antecedent_support: s_a,
                consequent_support: s_c,
                support: s_ac,
                confidence,
                orders: set.count,
            });
        }
    }
    Ok(out)
}

/// A recommended item, scored by the best confidence of a rule that recommends it (ties by
/// lift), with that rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub item: u32,
    pub confidence: f64,
    pub lift: f64,
    pub rule: usize,
}

// ---------------------------------------------------------------------------- model values

/// A basket model version as recommendation needs it: its items (sorted by name, so that id
/// order is name order) and per segment (None: all orders) its rules, indexed by the first
/// item of their antecedent.
#[derive(Clone, Debug, PartialEq)]
pub struct BasketModel {
    pub name: String,
    pub version: i32,
    pub items: Vec<String>,
    pub segments: Vec<(Option<String>, Vec<Rule>)>,
}

const MAGIC: [u8; 2] = *b"RB";
const FORMAT: u8 = 1;

fn damaged(what: impl Into<String>) -> CoreError {
    CoreError::new(Kind::Corrupt, what.into())
}

impl Rule {
    /// Whether the rule is one rfm_basket_train could have made (over `n_items` items).
    pub fn check(&self, n_items: usize) -> Result<(), String> {
        let side = |s: &[u32], what: &str| -> Result<(), String> {
            if s.is_empty() {
                return Err(format!("a rule has an empty {what}"));
            }
            if s.windows(2).any(|w| w[0] >= w[1]) || s.iter().any(|&i| i as usize >= n_items) {
                return Err(format!("a rule's {what} is not a set of the model's items"));
            }
            Ok(())
        };
        side(&self.antecedent, "antecedent")?;
        side(&self.consequent, "consequent")?;
        if self.antecedent.iter().any(|i| self.consequent.binary_search(i).is_ok()) {
            return Err("a rule has an item on both sides".into());
        }
        let unit = |v: f64| v.is_finite() && v > 0.0 && v <= 1.0 + 1e-12;
        if !(unit(self.support) && unit(self.confidence) && unit(self.antecedent_support) && unit(self.consequent_support)) {
            return Err("a rule's support or confidence is not in (0, 1]".into());
        }
        if !(self.lift.is_finite() && self.lift > 0.0 && self.leverage.is_finite() && self.orders >= 1) {
            return Err("a rule's lift, leverage or order count is out of range".into());
        }
        if self.conviction.is_some_and(|c| !c.is_finite()) {
            return Err("a rule's conviction is not a finite number (infinite conviction is stored as NULL)".into());
        }
        Ok(())
    }
}

impl BasketModel {
    pub fn check(&self) -> Result<(), String> {
        if self.items.windows(2).any(|w| w[0] >= w[1]) {
            return Err("the item list is not sorted and distinct".into());
        }
        for (_, rules) in &self.segments {
            for r in rules {
                r.check(self.items.len())?;
            }
        }
        Ok(())
    }

    /// The stored value: magic, format, name, version, items, segments with their rules,
    /// then a 128-bit SipHash of all of it (the value's identity for per-call caches).
    pub fn encode(&self) -> Vec<u8> {
        use super::codec::Writer;
        let mut w = Writer::default();
        w.buf.extend_from_slice(&MAGIC);
        w.u8(FORMAT);
        let text = |w: &mut Writer, s: &str| {
            w.leb128(s.len() as u64);
            w.buf.extend_from_slice(s.as_bytes());
        };
        text(&mut w, &self.name);
        w.i64(self.version as i64);
        w.leb128(self.items.len() as u64);
        for it in &self.items {
            text(&mut w, it);
        }
        w.leb128(self.segments.len() as u64);
        for (seg, rules) in &self.segments {
            match seg {
                Some(s) => {
                    w.u8(1);
                    text(&mut w, s);
                }
                None => w.u8(0),
            }
            w.leb128(rules.len() as u64);
            for r in rules {
                for side in [&r.antecedent, &r.consequent] {
                    w.leb128(side.len() as u64);
                    for &i in side {
                        w.leb128(i as u64);
                    }
                }
                for v in [r.antecedent_support, r.consequent_support, r.support, r.confidence, r.lift, r.leverage] {
                    w.f64(v);
                }
                w.f64(r.conviction.unwrap_or(f64::INFINITY));
                w.leb128(r.orders);
            }
        }
        let h = hash(&w.buf);
        w.buf.extend_from_slice(&h);
        w.buf
    }

    pub fn decode(buf: &[u8]) -> Result<BasketModel, CoreError> {
        use super::codec::Reader;
        if buf.len() < 19 || buf[..2] != MAGIC {
            return Err(damaged("not an rfm_basket_model value (wrong magic bytes)"));
        }
        let (body, tail) = buf.split_at(buf.len() - 16);
        if hash(body) != tail {
            return Err(damaged("the value's content hash does not match (a damaged value)"));
        }
        let mut r = Reader::new(body);
        let bad = |e: CoreError| damaged(format!("damaged rfm_basket_model value: {}", e.message));
        r.take(2).map_err(bad)?;
        let format = r.u8().map_err(bad)?;
        if format != FORMAT {
            return Err(damaged(format!("unknown rfm_basket_model format {format}")));
        }
        let text = |r: &mut Reader<'_>| -> Result<String, CoreError> {
            let n = r.leb128().map_err(bad)? as usize;
            let b = r.take(n).map_err(bad)?;
            String::from_utf8(b.to_vec()).map_err(|_| damaged("damaged rfm_basket_model value: text is not UTF-8"))
        };
        let name = text(&mut r)?;
        let version = i32::try_from(r.i64().map_err(bad)?).map_err(|_| damaged("damaged rfm_basket_model value: version"))?;
        let n_items = r.leb128().map_err(bad)? as usize;
        if n_items > body.len() {
            return Err(damaged("damaged rfm_basket_model value: item count"));
        }
        let mut items = Vec::with_capacity(n_items);
        for _ in 0..n_items {
            items.push(text(&mut r)?);
        }
        let n_seg = r.leb128().map_err(bad)? as usize;
        if n_seg > body.len() {
            return Err(damaged("damaged rfm_basket_model value: segment count"));
        }
        let mut segments = Vec::with_capacity(n_seg);
        for _ in 0..n_seg {
            let seg = match r.u8().map_err(bad)? {
                0 => None,
                1 => Some(text(&mut r)?),
                k => return Err(damaged(format!("damaged rfm_basket_model value: segment flag {k}"))),
            };
            let n_rules = r.leb128().map_err(bad)? as usize;
            if n_rules > body.len() {
                return Err(damaged("damaged rfm_basket_model value: rule count"));
            }
            let mut rules = Vec::with_capacity(n_rules);
            for _ in 0..n_rules {
                let mut sides = [Vec::new(), Vec::new()];
                for side in sides.iter_mut() {
                    let n = r.leb128().map_err(bad)? as usize;
                    if n > 64 {
                        return Err(damaged("damaged rfm_basket_model value: rule size"));
                    }
                    for _ in 0..n {
                        side.push(u32::try_from(r.leb128().map_err(bad)?).map_err(|_| damaged("damaged rfm_basket_model value: item id"))?);
                    }
                }
                let mut v = [0f64; 7];
                for x in v.iter_mut() {
                    *x = r.f64().map_err(bad)?;
                }
                let [consequent, antecedent] = [sides[1].clone(), sides[0].clone()];
                rules.push(Rule {
                    antecedent,
                    consequent,
                    antecedent_support: v[0],
                    consequent_support: v[1],
                    support: v[2],
                    confidence: v[3],
                    lift: v[4],
                    leverage: v[5],
                    conviction: v[6].is_finite().then_some(v[6]),
                    orders: r.leb128().map_err(bad)?,
                });
            }
            segments.push((seg, rules));
        }
        if !r.is_empty() {
            return Err(damaged("damaged rfm_basket_model value: trailing bytes"));
        }
        let m = BasketModel { name, version, items, segments };
        m.check().map_err(|e| damaged(format!("damaged rfm_basket_model value: {e}")))?;
        Ok(m)
    }
}

fn hash(b: &[u8]) -> [u8; 16] {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let mut h = SipHasher13::new_with_keys(0x7067_5f72_666d_6261, 0x736b_6574_5f76_616c);
    h.write(b);
    h.finish128().as_u128().to_le_bytes()
}

/// The last 16 bytes of an encoded value: its content hash.
pub fn identity(buf: &[u8]) -> Option<[u8; 16]> {
    (buf.len() >= 16).then(|| buf[buf.len() - 16..].try_into().unwrap_or([0; 16]))
}

/// One segment's rules, indexed by the first (smallest) item of their antecedent, so that a
/// basket looks only at rules that can apply.
pub struct RuleIndex {
    by_first: FxHashMap<u32, Vec<usize>>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> RuleIndex {
        let mut by_first: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
        for (i, r) in rules.iter().enumerate() {
            by_first.entry(r.antecedent[0]).or_default().push(i);
        }
        RuleIndex { by_first }
    }

    /// `recommend` over the indexed rules.
    pub fn recommend(&self, rules: &[Rule], basket: &[u32], n: usize) -> Vec<Scored> {
        let mut best: FxHashMap<u32, Scored> = FxHashMap::default();
        for item in basket {
            let Some(cands) = self.by_first.get(item) else { continue };
            for &ri in cands {
                let rule = &rules[ri];
                if !rule.antecedent.iter().all(|i| basket.binary_search(i).is_ok()) {
                    continue;
                }
                for &c in &rule.consequent {
                    if basket.binary_search(&c).is_ok() {
                        continue;
                    }
                    let cand = Scored { item: c, confidence: rule.confidence, lift: rule.lift, rule: ri };
                    let better = match best.get(&c) {
                        Some(b) => {
                            (cand.confidence, cand.lift) > (b.confidence, b.lift)
                                || ((cand.confidence, cand.lift) == (b.confidence, b.lift) && ri < b.rule)
                        }
                        None => true,
                    };
                    if better {
                        best.insert(c, cand);
                    }
                }
            }
        }
        let mut v: Vec<Scored> = best.into_values().collect();
        v.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(b.lift.total_cmp(&a.lift)).then(a.item.cmp(&b.item)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rng::Rng;

    fn th(min_support: f64, max_len: usize) -> Thresholds {
        Thresholds { min_support, min_orders: 1, max_len }
    }

    /// All itemsets by brute force: every subset of frequent size-1 items, counted directly.
    fn brute(orders: &[Vec<u32>], n_items: usize, ms: f64, max_len: usize) -> Vec<Itemset> {
        let n = orders.len();
        let min_count = (ms * n as f64).ceil() as u64;
        let single: Vec<u32> =
            (0..n_items as u32).filter(|&i| orders.iter().filter(|o| o.contains(&i)).count() as f64 / n as f64 >= ms).collect();
        let mut out = Vec::new();
        for mask in 1u64..(1 << single.len()) {
            let items: Vec<u32> = (0..single.len()).filter(|b| mask & (1 << b) != 0).map(|b| single[b]).collect();
            if items.len() > max_len {
                continue;
            }
            let count = orders.iter().filter(|o| items.iter().all(|i| o.contains(i))).count() as u64;
            if count as f64 / n as f64 >= ms && (items.len() == 1 || count >= min_count) {
                out.push(Itemset { items, count });
            }
        }
        out.sort_by(|a, b| a.items.len().cmp(&b.items.len()).then_with(|| a.items.cmp(&b.items)));
        out
    }

    fn random_orders(seed: u64, n: usize, n_items: u32) -> Vec<Vec<u32>> {
        let mut r = Rng::new(seed);
        (0..n)
            .map(|_| {
                let mut o: Vec<u32> = (0..1 + r.below(8)).map(|_| (r.f64() * r.f64() * n_items as f64) as u32).collect();
                // Planted: 1 pulls in 2, 3 pulls in 4 and 5.
                if o.contains(&1) && r.f64() < 0.7 {
                    o.push(2);
                }
                if o.contains(&3) && r.f64() < 0.6 {
                    o.extend([4, 5]);
                }
                o.sort_unstable();
                o.dedup();
                o
            })
            .collect()
    }

    #[test]
    fn fpgrowth_equals_brute_force() {
        for (seed, ms, max_len) in [(1, 0.02, 3), (2, 0.05, 2), (3, 0.01, 4), (4, 0.3, 3), (5, 0.07, 3)] {
            let orders = random_orders(seed, 700, 14);
            let mut budget = Budget::new(1 << 30);
            let got = frequent_itemsets(&orders, 14, &th(ms, max_len), &mut budget, &mut || {}).unwrap();
            assert_eq!(got, brute(&orders, 14, ms, max_len), "seed {seed}");
        }
    }

    #[test]
    fn min_orders_is_a_floor() {
        let orders = random_orders(6, 400, 14);
        let mut budget = Budget::new(1 << 30);
        let all = frequent_itemsets(&orders, 14, &th(0.005, 3), &mut budget, &mut || {}).unwrap();
        let floor = frequent_itemsets(&orders, 14, &Thresholds { min_orders: 9, ..th(0.005, 3) }, &mut budget, &mut || {}).unwrap();
        let want: Vec<Itemset> = all.into_iter().filter(|s| s.count >= 9).collect();
        assert!(want.len() < 400 && !want.is_empty());
        assert_eq!(floor, want);
    }

    #[test]
    fn rules_by_hand() {
        // 4 orders: {0,1}, {0,1}, {0,2}, {1}. Frequent at 0.5: {0} 3, {1} 3, {0,1} 2.
        let orders = vec![vec![0, 1], vec![0, 1], vec![0, 2], vec![1]];
        let mut budget = Budget::new(1 << 20);
        let sets = frequent_itemsets(&orders, 3, &th(0.5, 3), &mut budget, &mut || {}).unwrap();
        assert_eq!(sets.iter().map(|s| (s.items.clone(), s.count)).collect::<Vec<_>>(), vec![(vec![0], 3), (vec![1], 3), (vec![0, 1], 2)]);
        let rules = rules(&sets, 4, 0.5, &mut budget, &mut || {}).unwrap();
        assert_eq!(rules.len(), 2);
        let r = &rules[0];
        // 0 -> 1: support 0.5, confidence 2/3, lift (2/3) / 0.75, leverage 0.5 - 0.5625,
        // conviction 0.25 / (1/3).
        assert_eq!((r.antecedent.clone(), r.consequent.clone()), (vec![0], vec![1]));
        assert!((r.confidence - 2.0 / 3.0).abs() < 1e-15 && (r.lift - 8.0 / 9.0).abs() < 1e-15);
        assert!((r.leverage + 0.0625).abs() < 1e-15 && (r.conviction.unwrap() - 0.75).abs() < 1e-15);
        // Confidence 1: conviction is infinite (None).
        let sure = vec![vec![0, 1], vec![0, 1], vec![1]];
        let sets = frequent_itemsets(&sure, 2, &th(0.5, 2), &mut budget, &mut || {}).unwrap();
        let rs = super::rules(&sets, 3, 0.9, &mut budget, &mut || {}).unwrap();
        assert_eq!(rs.len(), 1);
        assert_eq!((rs[0].confidence, rs[0].conviction), (1.0, None));
    }

    #[test]
    fn model_values_round_trip_and_refuse_damage() {
        let orders = random_orders(3, 500, 12);
        let mut budget = Budget::new(1 << 30);
        let sets = frequent_itemsets(&orders, 12, &th(0.02, 3), &mut budget, &mut || {}).unwrap();
        let rules = rules(&sets, orders.len(), 0.3, &mut budget, &mut || {}).unwrap();
        assert!(rules.len() > 5);
        let m = BasketModel {
            name: "m".into(),
            version: 3,
            items: (0..12).map(|i| format!("item{i:02}")).collect(),
            segments: vec![(None, rules.clone()), (Some("VIP".into()), rules[..2].to_vec())],
        };
        let bytes = m.encode();
        assert_eq!(BasketModel::decode(&bytes).unwrap(), m);
        assert_eq!(identity(&bytes).unwrap(), bytes[bytes.len() - 16..]);
        for n in 0..bytes.len() {
            assert_eq!(BasketModel::decode(&bytes[..n]).unwrap_err().kind, Kind::Corrupt, "{n}");
        }
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert!(BasketModel::decode(&flipped).unwrap_err().message.contains("hash"));
        let mut bad = m.clone();
        bad.segments[0].1[0].consequent = bad.segments[0].1[0].antecedent.clone();
        assert!(BasketModel::decode(&bad.encode()).unwrap_err().message.contains("both sides"));
    }

    #[test]
    fn budget_stops_early() {
        let orders = random_orders(9, 2000, 40);
        let mut budget = Budget::new(4096);
        let e = frequent_itemsets(&orders, 40, &th(0.001, 4), &mut budget, &mut || {}).unwrap_err();
        assert_eq!(e.kind, Kind::OutOfMemory);
        assert!(e.message.contains("itemsets and"), "{}", e.message);
    }

    #[test]
    fn recommendations_by_confidence_then_lift_then_name() {
        let mk = |a: Vec<u32>, c: Vec<u32>, conf: f64, lift: f64| Rule {
            antecedent: a,
            consequent: c,
            antecedent_support: 0.1,
            consequent_support: 0.1,
            support: 0.05,
            confidence: conf,
            lift,
            leverage: 0.0,
            conviction: None,
            orders: 5,
        };
        let rules = vec![
            mk(vec![1], vec![5], 0.6, 2.0),
            mk(vec![1, 2], vec![6], 0.8, 1.5),
            mk(vec![1], vec![6], 0.4, 3.0),
            mk(vec![3], vec![7], 0.9, 9.0),  // antecedent not in the basket
            mk(vec![2], vec![1], 0.95, 4.0), // consequent already in the basket
            mk(vec![2], vec![8], 0.6, 2.0),  // ties rule 0 on confidence and lift: by item
        ];
        let index = RuleIndex::new(&rules);
        let got = index.recommend(&rules, &[1, 2], 5);
        assert_eq!(got.iter().map(|s| (s.item, s.rule)).collect::<Vec<_>>(), vec![(6, 1), (5, 0), (8, 5)]);
        assert_eq!(index.recommend(&rules, &[1, 2], 1).len(), 1);
        assert!(index.recommend(&rules, &[9], 5).is_empty());
    }
}
