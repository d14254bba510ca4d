//! Baskets (declared in `sql/basket.sql`): mining association rules from order lines
//! (`rfm_basket_train`), storing them as versions of a basket model, reading a version back
//! checked, as a value (`rfm_basket_model`), and recommending (`rfm_recommend`,
//! `rfm_recommendations`). The mining and the rules are in `core::basket`.

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::spi::Spi;
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;
use serde_json::{json, Value};

use super::call::*;
use super::catalog::schema_prefix;
use super::error::{notice, null_not_allowed, raise, spi_fail, OrRaise, PgError};
use super::experiment::for_each_row;
use super::spi::{select_text, Statement};
use super::value::cstring_datum;
use crate::core::basket::{self, BasketModel, Budget, RuleIndex, Thresholds};

fn check() {
    pgrx::check_for_interrupts!();
}

fn invalid(what: &str, msg: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{what}: {}", msg.into()))
}

fn text_arg(args: &Args<'_>, i: usize, what: &str) -> String {
    args.text(i).unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not be NULL", args.name)))
}

// ---------------------------------------------------------------------------- training

const TRAIN_RESULT: [Oid; 8] = [
    pg_sys::TEXTOID,
    pg_sys::INT4OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::INT4OID,
    pg_sys::FLOAT8OID,
];

/// One mined scope (all orders, or a segment's): its orders, the distinct items among them,
/// its customers, itemsets and rules.
struct Mined {
    segment: Option<String>,
    orders: usize,
    items: usize,
    customers: Option<usize>,
    itemsets: usize,
    rules: Vec<basket::Rule>,
}

fn check_can_store(what: &str, schema: &str) {
    let ok = select_text(
        "SELECT pg_catalog.has_table_privilege($1 || '.rfm_basket_models', 'INSERT, UPDATE')
            AND pg_catalog.has_table_privilege($1 || '.rfm_basket_rules', 'INSERT')",
        &[schema],
    );
    if ok.as_deref() != Some("t") {
        PgError::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("{what}: permission denied to store basket models"))
            .detail("Storing a basket model version needs INSERT and UPDATE on rfm_basket_models, and INSERT on rfm_basket_rules.")
            .hint("Ask the owner of the extension for these privileges, or train as a role that has them.")
            .raise();
    }
}

/// Mines one scope: the orders (item id lists) with their customers.
fn mine(
    what: &str,
    segment: Option<String>,
    orders: &[Vec<u32>],
    customers: Option<usize>,
    n_items: usize,
    opts: (Thresholds, f64),
    budget: &mut Budget,
) -> Mined {
    let (t, min_confidence) = opts;
    let mut seen = vec![false; n_items];
    for o in orders {
        for &i in o {
            seen[i as usize] = true;
        }
    }
    let items = seen.iter().filter(|s| **s).count();
    let sets = basket::frequent_itemsets(orders, n_items, &t, budget, &mut check).or_raise(what);
    let rules = basket::rules(&sets, orders.len(), min_confidence, budget, &mut check).or_raise(what);
    let label = segment.as_deref().map_or("all orders".to_string(), |s| format!("segment \"{s}\""));
    notice(format!("{what}: {label}: {} orders, {items} items, {} frequent itemsets, {} rules", orders.len(), sets.len(), rules.len()));
    Mined { segment, orders: orders.len(), items, customers, itemsets: sets.len(), rules }
}

pg_v1! {
    // rfm_basket_train(name, source, order_column, item_column, min_support, min_confidence,
    //                  max_len, segment_column, customer_column)
    fn rfm_basket_train(call: "rfm_basket_train") -> Datum {
        let args = call.args();
        let what = args.name;
        let started = std::time::Instant::now();
        let name = text_arg(&args, 0, "name");
        let source = args.oid(1).unwrap_or_else(|| null_not_allowed(format!("{what}: source must not be NULL")));
        let order_column = text_arg(&args, 2, "order_column");
        let item_column = text_arg(&args, 3, "item_column");
        let t = thresholds(&args, 4, 6, 9);
        let min_confidence = args.f64(5).unwrap_or_else(|| null_not_allowed(format!("{what}: min_confidence must not be NULL")));
        let segment_column = args.text(7);
        let customer_column = args.text(8);
        if name.is_empty() {
            invalid(what, "name must not be empty");
        }
        if !(0.0..=1.0).contains(&min_confidence) {
            invalid(what, format!("min_confidence must be in [0, 1], got {min_confidence}"));
        }
        let schema = schema_prefix(args);
        check_can_store(what, &schema);
        let read = read_orders(what, source, &order_column, &item_column, segment_column.as_deref(), customer_column.as_deref());
        let Orders { relation, names, scopes, .. } = read;
        let with_customers = customer_column.is_some();
        let opts = (t, min_confidence);
        let mut budget = Budget::new(super::gucs::basket_memory().saturating_sub(super::heap::held()));
        let n_items = names.len();
        let mut mined = Vec::with_capacity(scopes.len());
        for sc in scopes {
            let customers = with_customers.then_some(sc.customers);
            mined.push(mine(what, sc.segment, &sc.orders, customers, n_items, opts, &mut budget));
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let version = store(what, &schema, &name, &relation, (&order_column, &item_column, segment_column.as_deref(), customer_column.as_deref()),
                            opts, &names, &mined, elapsed_ms);
        let total_rules: usize = mined.iter().map(|m| m.rules.len()).sum();
        let result = call.cache(|a| Composite::for_result(a, &TRAIN_RESULT));
        result.form(what, &[
            Some(text_datum(&name)),
            Some(Datum::from(version)),
            Some(Datum::from(mined[0].orders as i64)),
            Some(Datum::from(mined[0].items as i64)),
            Some(Datum::from(mined.iter().map(|m| m.itemsets as i64).sum::<i64>())),
            Some(Datum::from(total_rules as i64)),
            Some(Datum::from((mined.len() - 1) as i32)),
            Some(f64_datum(elapsed_ms)),
        ])
    }
}

/// The orders of one scope (all orders first, then each segment in name order): each a list
/// of distinct item ids (ids in item name order), and how many distinct customers they have.
struct Scope {
    segment: Option<String>,
    orders: Vec<Vec<u32>>,
    customers: usize,
}

/// The lines of `source` read as orders: item names in order, and the scopes.
struct Orders {
    relation: String,
    names: Vec<String>,
    scopes: Vec<Scope>,
}

/// Reads the lines of `source` (order, item, and optionally segment and customer columns;
/// lines with a NULL order or item are left out), bounded by pg_rfm.basket_memory.
fn read_orders(
    what: &str,
    source: Oid,
    order_column: &str,
    item_column: &str,
    segment_column: Option<&str>,
    customer_column: Option<&str>,
) -> Orders {
    let rel = super::experiment::Relation::of(what, source);
    let o = rel.column(what, order_column, &[], "");
    let i = rel.column(what, item_column, &[], "");
    let s = segment_column.map(|c| rel.column(what, c, &[], ""));
    let c = customer_column.map(|c| rel.column(what, c, &[], ""));
    // Orders of each scope: all orders, and per segment the orders of its lines.
    let mut items: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
    let mut item_names: Vec<Box<[u8]>> = Vec::new();
    let mut segments: FxHashMap<Box<[u8]>, usize> = FxHashMap::default();
    let mut segment_names: Vec<Box<[u8]>> = Vec::new();
    // (scope, order) -> index of the order in its scope; scope 0 is all orders.
    let mut order_index: Vec<FxHashMap<Box<[u8]>, u32>> = vec![FxHashMap::default()];
    let mut orders: Vec<Vec<Vec<u32>>> = vec![Vec::new()];
    let mut customers: Vec<FxHashMap<Box<[u8]>, ()>> = vec![FxHashMap::default()];
    let mut lines = 0u64;
    let query = format!(
        "SELECT {o}::text, {i}::text, {}::text, {}::text FROM {} WHERE {o} IS NOT NULL AND {i} IS NOT NULL",
        s.as_deref().unwrap_or("NULL"),
        c.as_deref().unwrap_or("NULL"),
        rel.name
    );
    let mem_limit = super::gucs::basket_memory();
    for_each_row(&query, &[], 4, &mut |v, nulls| {
        lines += 1;
        // SAFETY of the text reads: the query casts these columns to text.
        let (ob, ib) = (text_of(v[0]), text_of(v[1]));
        let item = match items.get(ib) {
            Some(&x) => x,
            None => {
                let x = item_names.len() as u32;
                items.insert(ib.into(), x);
                item_names.push(ib.into());
                x
            }
        };
        let mut scopes = [0usize, usize::MAX];
        if !nulls[2] {
            let sb = text_of(v[2]);
            let sx = match segments.get(sb) {
                Some(&x) => x,
                None => {
                    segment_names.push(sb.into());
                    segments.insert(sb.into(), segment_names.len());
                    order_index.push(FxHashMap::default());
                    orders.push(Vec::new());
                    customers.push(FxHashMap::default());
                    segment_names.len()
                }
            };
            scopes[1] = sx;
        }
        for &sc in scopes.iter().filter(|s| **s != usize::MAX) {
            let next = orders[sc].len() as u32;
            let k = *order_index[sc].entry(ob.into()).or_insert(next);
            if k == next {
                orders[sc].push(Vec::new());
            }
            orders[sc][k as usize].push(item);
            if !nulls[3] {
                customers[sc].entry(text_of(v[3]).into()).or_insert(());
            }
        }
        if lines.is_multiple_of(65536) && super::heap::held() > mem_limit {
            PgError::new(
                PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
                format!("{what}: the orders read so far ({lines} lines) would exceed pg_rfm.basket_memory ({} MB)", mem_limit >> 20),
            )
            .hint("Train on fewer lines (a recent period, or one country), or raise pg_rfm.basket_memory if the server has the memory.")
            .raise();
        }
    });
    if orders[0].is_empty() {
        invalid(what, format!("{} has no order with an item", rel.name));
    }
    // Item ids in name order: sorted names give each item its final id.
    let mut by_name: Vec<u32> = (0..item_names.len() as u32).collect();
    by_name.sort_by(|a, b| item_names[*a as usize].cmp(&item_names[*b as usize]));
    let mut new_id = vec![0u32; item_names.len()];
    for (k, &old) in by_name.iter().enumerate() {
        new_id[old as usize] = k as u32;
    }
    for scope in orders.iter_mut() {
        for o in scope.iter_mut() {
            for x in o.iter_mut() {
                *x = new_id[*x as usize];
            }
            o.sort_unstable();
            o.dedup();
        }
    }
    let names: Vec<String> = by_name.iter().map(|&k| String::from_utf8_lossy(&item_names[k as usize]).into_owned()).collect();
    notice(format!(
        "{what}: read {lines} lines of {}: {} orders, {} items, {} segments",
        rel.name,
        orders[0].len(),
        names.len(),
        segment_names.len()
    ));
    // Scopes: all orders, then the segments in name order.
    let mut seg_order: Vec<usize> = (1..orders.len()).collect();
    seg_order.sort_by(|a, b| segment_names[a - 1].cmp(&segment_names[b - 1]));
    let mut taken: Vec<Option<Vec<Vec<u32>>>> = orders.into_iter().map(Some).collect();
    let mut scopes = vec![Scope { segment: None, orders: taken[0].take().unwrap_or_default(), customers: customers[0].len() }];
    for sc in seg_order {
        scopes.push(Scope {
            segment: Some(String::from_utf8_lossy(&segment_names[sc - 1]).into_owned()),
            orders: taken[sc].take().unwrap_or_default(),
            customers: customers[sc].len(),
        });
    }
    Orders { relation: rel.name, names, scopes }
}

const ITEMSETS: [Oid; 4] = [pg_sys::TEXTOID, pg_sys::TEXTARRAYOID, pg_sys::FLOAT8OID, pg_sys::INT8OID];

/// min_support, max_len and min_orders (arguments at these positions), checked.
fn thresholds(args: &Args<'_>, support_at: usize, len_at: usize, orders_at: usize) -> Thresholds {
    let what = args.name;
    let min_support = args.f64(support_at).unwrap_or_else(|| null_not_allowed(format!("{what}: min_support must not be NULL")));
    let max_len = args.i32(len_at).unwrap_or_else(|| null_not_allowed(format!("{what}: max_len must not be NULL")));
    let min_orders = args.i32(orders_at).unwrap_or_else(|| null_not_allowed(format!("{what}: min_orders must not be NULL")));
    if !(min_support > 0.0 && min_support <= 1.0) {
        invalid(what, format!("min_support must be in (0, 1], got {min_support}"));
    }
    if !(1..=16).contains(&max_len) {
        invalid(what, format!("max_len must be between 1 and 16, got {max_len}"));
    }
    if min_orders < 1 {
        invalid(what, format!("min_orders must be at least 1, got {min_orders}"));
    }
    Thresholds { min_support, min_orders: min_orders as u64, max_len: max_len as usize }
}

pg_v1! {
    // rfm_basket_itemsets(source, order_column, item_column, min_support, max_len, segment_column)
    fn rfm_basket_itemsets(call: "rfm_basket_itemsets") -> Datum {
        let args = call.args();
        let what = args.name;
        let source = args.oid(0).unwrap_or_else(|| null_not_allowed(format!("{what}: source must not be NULL")));
        let (order_column, item_column) = (text_arg(&args, 1, "order_column"), text_arg(&args, 2, "item_column"));
        let t = thresholds(&args, 3, 4, 6);
        let segment_column = args.text(5);
        let Orders { names, scopes, .. } = read_orders(what, source, &order_column, &item_column, segment_column.as_deref(), None);
        let mut budget = Budget::new(super::gucs::basket_memory().saturating_sub(super::heap::held()));
        let mut rows = Vec::new();
        for sc in &scopes {
            let sets = basket::frequent_itemsets(&sc.orders, names.len(), &t, &mut budget, &mut check).or_raise(what);
            for set in sets {
                let items: Vec<String> = set.items.iter().map(|&i| names[i as usize].clone()).collect();
                rows.push(vec![
                    sc.segment.as_deref().map(text_datum),
                    pgrx::IntoDatum::into_datum(items),
                    Some(f64_datum(set.count as f64 / sc.orders.len() as f64)),
                    Some(Datum::from(set.count as i64)),
                ]);
            }
        }
        materialize(args, &ITEMSETS, &rows)
    }
}

/// The bytes of a text value read by `for_each_row`.
fn text_of<'a>(d: Datum) -> &'a [u8] {
    // SAFETY: the queries cast these columns to text; the value lives during the row call.
    unsafe { varlena_bytes(d) }
}

/// Writes a new version (the model row, then its rules) and makes it active; its number.
#[allow(clippy::too_many_arguments)]
fn store(
    what: &str,
    schema: &str,
    name: &str,
    source: &str,
    columns: (&str, &str, Option<&str>, Option<&str>),
    opts: (Thresholds, f64),
    names: &[String],
    mined: &[Mined],
    elapsed_ms: f64,
) -> i32 {
    let side = |s: &[u32]| -> Vec<&str> { s.iter().map(|&i| names[i as usize].as_str()).collect() };
    let finite = |x: f64| x.is_finite().then_some(x);
    let result = Spi::connect_mut(|client| {
        client.update(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_rfm.basket'), pg_catalog.hashtext($1))",
            None,
            &[name.into()],
        )?;
        let version: i32 = client
            .update(
                format!("SELECT (coalesce(max(version), 0) + 1)::int FROM {schema}.rfm_basket_models WHERE name = $1").as_str(),
                None,
                &[name.into()],
            )?
            .first()
            .get_one::<i32>()?
            .unwrap_or(1);
        client.update(
            format!("UPDATE {schema}.rfm_basket_models SET active = false WHERE name = $1 AND active").as_str(),
            None,
            &[name.into()],
        )?;
        let segments: Vec<Value> = mined[1..]
            .iter()
            .map(|m| json!({"segment": m.segment, "orders": m.orders, "items": m.items, "itemsets": m.itemsets, "rules": m.rules.len(), "customers": m.customers}))
            .collect();
        let row = json!({
            "name": name, "version": version, "active": true, "source": source,
            "order_column": columns.0, "item_column": columns.1, "segment_column": columns.2, "customer_column": columns.3,
            "min_support": opts.0.min_support, "min_confidence": opts.1, "max_len": opts.0.max_len, "min_orders": opts.0.min_orders,
            "orders": mined[0].orders, "items": mined[0].items, "customers": mined[0].customers,
            "itemsets": mined.iter().map(|m| m.itemsets).sum::<usize>(), "rules": mined.iter().map(|m| m.rules.len()).sum::<usize>(),
            "segments": segments, "elapsed_ms": elapsed_ms,
        });
        client.update(
            format!(
                "INSERT INTO {schema}.rfm_basket_models SELECT (pg_catalog.jsonb_populate_record(NULL::{schema}.rfm_basket_models,
                 $1::jsonb || pg_catalog.jsonb_build_object('created_at', now(), 'created_by', current_user))).*"
            )
            .as_str(),
            None,
            &[row.to_string().into()],
        )?;
        for m in mined {
            for chunk in m.rules.chunks(20_000) {
                check();
                let rows: Vec<Value> = chunk
                    .iter()
                    .map(|r| {
                        json!({
                            "name": name, "version": version, "segment": m.segment,
                            "antecedent": side(&r.antecedent), "consequent": side(&r.consequent),
                            "antecedent_support": r.antecedent_support, "consequent_support": r.consequent_support,
                            "support": r.support, "confidence": r.confidence, "lift": r.lift, "leverage": r.leverage,
                            "conviction": r.conviction.and_then(finite), "orders": r.orders,
                        })
                    })
                    .collect();
                client.update(
                    format!(
                        "INSERT INTO {schema}.rfm_basket_rules
                         SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::{schema}.rfm_basket_rules, $1::jsonb)"
                    )
                    .as_str(),
                    None,
                    &[Value::Array(rows).to_string().into()],
                )?;
            }
        }
        Ok::<i32, pgrx::spi::Error>(version)
    });
    let version = result.unwrap_or_else(|e| spi_fail(e));
    notice(format!("{what}: basket model \"{name}\" version {version} stored"));
    version
}

// ---------------------------------------------------------------------------- loading

/// XX001 for a stored basket model version that cannot be used.
fn damaged(what: &str, name: &str, version: i32, problem: &str) -> ! {
    PgError::new(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{what}: basket model \"{name}\" version {version} is damaged: {problem}"))
        .detail("Its rows in rfm_basket_models and rfm_basket_rules do not form a usable model (edited by hand, or restored from an incompatible dump).")
        .hint(format!(
            "Train it again with rfm_basket_train, or make an earlier version active with rfm_basket_activate('{}', version).",
            name.replace('\'', "''")
        ))
        .raise()
}

/// A rule row as read: segment, antecedent, consequent, the six metrics, conviction, orders.
type RawRule = (Option<String>, Vec<String>, Vec<String>, [f64; 6], Option<f64>, i64);

/// Version `version` (None: the active one) of basket model `name`, read and checked.
fn load(args: Args<'_>, name: &str, version: Option<i32>) -> BasketModel {
    let what = args.name;
    if super::citus::on_worker() {
        super::citus::refuse_model_name(what, "basket model", name, super::citus::BASKET_MODEL_VALUE_FORM);
    }
    let schema = schema_prefix(args);
    let v = match version {
        None => select_text(&format!("SELECT version FROM {schema}.rfm_basket_models WHERE name = $1 AND active"), &[name]),
        Some(v) => select_text(
            &format!("SELECT version FROM {schema}.rfm_basket_models WHERE name = $1 AND version = $2::int"),
            &[name, &v.to_string()],
        ),
    }
    .and_then(|t| t.parse::<i32>().ok())
    .unwrap_or_else(|| {
        let msg = match version {
            None => format!("{what}: basket model \"{name}\" does not exist (no active version)"),
            Some(v) => format!("{what}: basket model \"{name}\" has no version {v}"),
        };
        PgError::new(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, msg)
            .hint("SELECT name, version, active FROM rfm_basket_models lists them; rfm_basket_train makes one.")
            .raise()
    });
    // Items: every item named by a rule of the version, in name order.
    let mut item_set: Vec<String> = Vec::new();
    let mut raw: Vec<RawRule> = Vec::new();
    let query = format!(
        "SELECT segment, antecedent, consequent, antecedent_support, consequent_support, support, confidence, lift, leverage,
                conviction, orders
         FROM {schema}.rfm_basket_rules WHERE name = $1 AND version = $2
         ORDER BY segment NULLS FIRST, antecedent, consequent"
    );
    let mut problem: Option<String> = None;
    for_each_row(&query, &[(pg_sys::TEXTOID, text_datum(name)), (pg_sys::INT4OID, Datum::from(v))], 11, &mut |vals, nulls| {
        let seg = (!nulls[0]).then(|| String::from_utf8_lossy(text_of(vals[0])).into_owned());
        let arr = |i: usize| -> Option<Vec<String>> {
            if nulls[i] {
                return None;
            }
            // SAFETY: the column has type text[].
            let a = unsafe { <pgrx::Array<String> as pgrx::FromDatum>::from_datum(vals[i], false) }?;
            a.iter().collect::<Option<Vec<String>>>()
        };
        let (Some(a), Some(c)) = (arr(1), arr(2)) else {
            problem.get_or_insert_with(|| "a rule has a NULL item".into());
            return;
        };
        let f = |i: usize| if nulls[i] { f64::NAN } else { f64::from_bits(vals[i].value() as u64) };
        let conviction = (!nulls[9]).then(|| f(9));
        item_set.extend(a.iter().cloned());
        item_set.extend(c.iter().cloned());
        raw.push((seg, a, c, [f(3), f(4), f(5), f(6), f(7), f(8)], conviction, vals[10].value() as i64));
    });
    if let Some(p) = problem {
        damaged(what, name, v, &p);
    }
    item_set.sort_unstable();
    item_set.dedup();
    let id = |s: &String| item_set.binary_search(s).unwrap_or(0) as u32;
    let mut segments: Vec<(Option<String>, Vec<basket::Rule>)> = Vec::new();
    for (seg, a, c, m, conviction, orders) in raw {
        let ids = |x: &[String]| -> Vec<u32> {
            let mut v: Vec<u32> = x.iter().map(id).collect();
            v.sort_unstable();
            v
        };
        let rule = basket::Rule {
            antecedent: ids(&a),
            consequent: ids(&c),
            antecedent_support: m[0],
            consequent_support: m[1],
            support: m[2],
            confidence: m[3],
            lift: m[4],
            leverage: m[5],
            conviction,
            orders: u64::try_from(orders).unwrap_or(0),
        };
        if let Err(p) = rule.check(item_set.len()) {
            damaged(what, name, v, &p);
        }
        match segments.last_mut() {
            Some((s, rules)) if *s == seg => rules.push(rule),
            _ => segments.push((seg, vec![rule])),
        }
    }
    BasketModel { name: name.to_string(), version: v, items: item_set, segments }
}

/// A decoded model ready to recommend with: item ids by name, and per segment its rules' index.
struct Ready {
    model: BasketModel,
    ids: FxHashMap<String, u32>,
    indexes: Vec<RuleIndex>,
}

impl Ready {
    fn new(model: BasketModel) -> Ready {
        let ids = model.items.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
        let indexes = model.segments.iter().map(|(_, r)| RuleIndex::new(r)).collect();
        Ready { model, ids, indexes }
    }

    /// The recommendations for a basket in a segment (None: all orders).
    fn recommend(&self, basket: &[String], n: usize, segment: Option<&str>) -> Vec<(basket::Scored, usize)> {
        let Some(s) = self.model.segments.iter().position(|(seg, _)| seg.as_deref() == segment) else { return Vec::new() };
        let mut ids: Vec<u32> = basket.iter().filter_map(|b| self.ids.get(b).copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        self.indexes[s].recommend(&self.model.segments[s].1, &ids, n).into_iter().map(|x| (x, s)).collect()
    }
}

// ---------------------------------------------------------------------------- SQL functions

/// What a call site keeps: models by name for the current statement, the last value.
struct Cache {
    statement: Statement,
    named: FxHashMap<String, Ready>,
    value: Option<([u8; 16], Ready)>,
}

fn cache<'c>(call: &'c mut Call<'_>) -> &'c mut Cache {
    call.cache(|_| Cache { statement: Statement::now(), named: FxHashMap::default(), value: None })
}

/// The model of this call: argument 0 is a name or, with `by_value`, an rfm_basket_model.
fn ready<'c>(args: Args<'_>, cache: &'c mut Cache, by_value: bool) -> &'c Ready {
    if by_value {
        let bytes = args.bytes(0).unwrap_or_else(|| null_not_allowed(format!("{}: the model must not be NULL", args.name)));
        let key = basket::identity(bytes).unwrap_or([0; 16]);
        if !matches!(&cache.value, Some((k, _)) if *k == key) {
            cache.value = None;
        }
        &cache.value.get_or_insert_with(|| (key, Ready::new(BasketModel::decode(bytes).or_raise(args.name)))).1
    } else {
        if cache.statement.renewed() {
            cache.named.clear();
        }
        let name = args.text(0).unwrap_or_else(|| null_not_allowed(format!("{}: name must not be NULL", args.name)));
        cache.named.entry(name.clone()).or_insert_with(|| Ready::new(load(args, &name, None)))
    }
}

fn n_arg(args: &Args<'_>) -> usize {
    let n = args.i32(2).unwrap_or_else(|| null_not_allowed(format!("{}: n must not be NULL", args.name)));
    if n < 0 {
        invalid(args.name, format!("n must be >= 0, got {n}"));
    }
    n as usize
}

fn recommend(call: &mut Call<'_>, by_value: bool) -> Datum {
    let args = call.args();
    let Some(basket) = args.text_array(1, "basket") else { return args.return_null() };
    let n = n_arg(&args);
    let segment = args.text(3);
    let c = cache(call);
    let r = ready(args, c, by_value);
    let items: Vec<String> =
        r.recommend(&basket, n, segment.as_deref()).into_iter().map(|(s, _)| r.model.items[s.item as usize].clone()).collect();
    pgrx::IntoDatum::into_datum(items).unwrap_or_else(|| args.return_null())
}

const RECOMMENDATIONS: [Oid; 7] =
    [pg_sys::INT4OID, pg_sys::TEXTOID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID, pg_sys::TEXTARRAYOID, pg_sys::TEXTARRAYOID, pg_sys::FLOAT8OID];

pg_v1! {
    // rfm_recommend(name, basket, n, segment) -> text[]; STABLE
    fn rfm_recommend(call: "rfm_recommend") -> Datum { recommend(&mut call, false) }
    // rfm_recommend(m rfm_basket_model, basket, n, segment) -> text[]; IMMUTABLE
    fn rfm_recommend_value(call: "rfm_recommend") -> Datum { recommend(&mut call, true) }

    // rfm_recommendations(name, basket, n, segment) -> rows
    fn rfm_recommendations(call: "rfm_recommendations") -> Datum {
        let args = call.args();
        let Some(basket) = args.text_array(1, "basket") else { return materialize(args, &RECOMMENDATIONS, &[]) };
        let n = n_arg(&args);
        let segment = args.text(3);
        let c = cache(&mut call);
        let r = ready(args, c, false);
        let side = |s: &[u32]| pgrx::IntoDatum::into_datum(s.iter().map(|&i| r.model.items[i as usize].clone()).collect::<Vec<String>>());
        let rows: Vec<Vec<Option<Datum>>> = r
            .recommend(&basket, n, segment.as_deref())
            .into_iter()
            .enumerate()
            .map(|(k, (s, seg))| {
                let rule = &r.model.segments[seg].1[s.rule];
                vec![
                    Some(Datum::from(k as i32 + 1)),
                    Some(text_datum(&r.model.items[s.item as usize])),
                    Some(f64_datum(s.confidence)),
                    Some(f64_datum(s.lift)),
                    side(&rule.antecedent),
                    side(&rule.consequent),
                    Some(f64_datum(rule.support)),
                ]
            })
            .collect();
        materialize(args, &RECOMMENDATIONS, &rows)
    }

    // rfm_basket_check(name, version): XX001 when the stored version is damaged
    fn rfm_basket_check(call: "rfm_basket_check") -> Datum {
        let args = call.args();
        let name = text_arg(&args, 0, "name");
        let version = args.i32(1).unwrap_or_else(|| null_not_allowed("rfm_basket_check: version must not be NULL"));
        load(args, &name, Some(version));
        args.return_null()
    }

    // rfm_basket_model_of(name [, version]) -> rfm_basket_model; STABLE
    fn rfm_basket_model_of(call: "rfm_basket_model_of") -> Datum {
        let args = call.args();
        let name = text_arg(&args, 0, "name");
        let version = if args.nargs() == 2 { Some(args.i32(1).unwrap_or_else(|| null_not_allowed("rfm_basket_model_of: version must not be NULL"))) } else { None };
        struct Values {
            statement: Statement,
            values: FxHashMap<(String, Option<i32>), Vec<u8>>,
        }
        let cache = call.cache(|_| Values { statement: Statement::now(), values: FxHashMap::default() });
        if cache.statement.renewed() {
            cache.values.clear();
        }
        let bytes = cache.values.entry((name.clone(), version)).or_insert_with(|| load(args, &name, version).encode());
        bytea_datum(bytes)
    }

    // rfm_basket_model_in(cstring) -> rfm_basket_model: hexadecimal, checked
    fn rfm_basket_model_in(call: "rfm_basket_model") -> Datum {
        let Some(text) = call.cstring(0) else { return call.return_null() };
        let bytes = super::state::from_hex("rfm_basket_model", &String::from_utf8_lossy(text.to_bytes()));
        BasketModel::decode(&bytes).or_raise(call.name);
        bytea_datum(&bytes)
    }

    fn rfm_basket_model_out(call: "rfm_basket_model") -> Datum {
        let Some(bytes) = call.bytes(0) else { return call.return_null() };
        cstring_datum(&super::state::to_hex(bytes))
    }

    fn rfm_basket_model_recv(call: "rfm_basket_model") -> Datum {
        let Some(bytes) = call.string_info(0) else { return call.return_null() };
        BasketModel::decode(&bytes).or_raise(call.name);
        bytea_datum(&bytes)
    }

    fn rfm_basket_model_send(call: "rfm_basket_model") -> Datum {
        let Some(bytes) = call.bytes(0) else { return call.return_null() };
        bytea_datum(bytes)
    }
}
