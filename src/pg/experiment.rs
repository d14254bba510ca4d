//! Experiments (declared in `sql/experiments.sql`): sample sizes, planning from past orders,
//! the stored assignment (`rfm_experiment_create`), the arm of a customer for campaign jobs
//! (`rfm_experiment_arm`) and the results (`rfm_experiment_results`). The statistics and the
//! assignment are in `core::stats` and `core::experiment`; this layer reads relations
//! through SPI and stores rows.

use std::ffi::CString;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::spi::Spi;
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::assignments::{self, Storage};
use super::call::*;
use super::catalog::{quote_ident, schema_prefix};
use super::error::{notice, null_not_allowed, raise, spi_fail, OrRaise, PgError};
use super::spi::{select_text, Statement};
use crate::core::experiment::{self, ArmData, ArmRow, Arms, Customer, Key, Totals};
use crate::core::rfm::Sum;
use crate::core::stats;
use crate::core::Partial;

const SIZE: [Oid; 2] = [pg_sys::INT8OID, pg_sys::INT8OID];
const ALPHA: f64 = 0.05;

fn check() {
    pgrx::check_for_interrupts!();
}

fn warning(msg: String) {
    pgrx::ereport!(pgrx::PgLogLevel::WARNING, PgSqlErrorCode::ERRCODE_WARNING, msg);
}

fn invalid(what: &str, msg: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{what}: {}", msg.into()))
}

fn text_arg(args: &Args<'_>, i: usize, what: &str) -> String {
    args.text(i).unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not be NULL", args.name)))
}

fn f64_arg(args: &Args<'_>, i: usize, what: &str) -> f64 {
    args.f64(i).unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not be NULL", args.name)))
}

fn ts_arg(args: &Args<'_>, i: usize, what: &str) -> i64 {
    let ts = args.i64(i).unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not be NULL", args.name)));
    if ts == i64::MIN || ts == i64::MAX {
        invalid(args.name, format!("{what} must be a finite timestamp"));
    }
    ts
}

// ---------------------------------------------------------------------------- relations

/// A relation read by name: its SQL name (quoted, qualified when not on search_path) and its
/// columns with their type category and type name.
pub(super) struct Relation {
    pub(super) name: String,
    columns: Vec<(String, String, String)>,
}

impl Relation {
    pub(super) fn of(what: &str, oid: Oid) -> Relation {
        let d = Spi::connect(|client| super::source::describe(what, client, oid)).unwrap_or_else(|e| spi_fail(e));
        Relation { name: d.name, columns: d.columns }
    }

    /// The column, quoted, after checking it exists and (with `categories`) that its type is
    /// of one of them (`describe` says which in the error).
    pub(super) fn column(&self, what: &str, col: &str, categories: &[&str], describe: &str) -> String {
        let Some((_, cat, ty)) = self.columns.iter().find(|(n, _, _)| n == col) else {
            raise(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, format!("{what}: column \"{col}\" of relation {} does not exist", self.name))
        };
        if !categories.is_empty() && !categories.contains(&cat.as_str()) {
            raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("{what}: column \"{col}\" of relation {} has type {ty}; {describe}", self.name),
            );
        }
        quote_ident(col)
    }
}

/// Runs a read-only query with parameters through an SPI cursor and hands each row's values
/// and NULL flags to `row`. Text values are valid only during the call.
pub(super) fn for_each_row(query: &str, params: &[(Oid, Datum)], ncols: usize, row: &mut dyn FnMut(&[Datum], &[bool])) {
    let q = CString::new(query).unwrap_or_else(|_| raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, "pg_rfm: an identifier contains NUL"));
    let mut types: Vec<Oid> = params.iter().map(|p| p.0).collect();
    let mut values: Vec<Datum> = params.iter().map(|p| p.1).collect();
    let mut vals = vec![Datum::from(0usize); ncols];
    let mut nulls = vec![false; ncols];
    // SAFETY: SPI is connected and finished in this block; each batch is read and freed
    // before the next fetch; the tuples have ncols attributes (the query selects them).
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            spi_fail("SPI_connect");
        }
        let portal = pg_sys::SPI_cursor_open_with_args(
            std::ptr::null(),
            q.as_ptr(),
            params.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            std::ptr::null(),
            true,
            0,
        );
        if portal.is_null() {
            spi_fail("SPI_cursor_open_with_args");
        }
        loop {
            check();
            pg_sys::SPI_cursor_fetch(portal, true, 10_000);
            let table = pg_sys::SPI_tuptable;
            let n = pg_sys::SPI_processed as usize;
            if n == 0 || table.is_null() {
                break;
            }
            if (*(*table).tupdesc).natts as usize != ncols {
                spi_fail("unexpected number of columns");
            }
            for i in 0..n {
                pg_sys::heap_deform_tuple(*(*table).vals.add(i), (*table).tupdesc, vals.as_mut_ptr(), nulls.as_mut_ptr());
                row(&vals, &nulls);
            }
            pg_sys::SPI_freetuptable(table);
        }
        pg_sys::SPI_cursor_close(portal);
        pg_sys::SPI_finish();
    }
}

/// The bytea of the one row of a read-only query with parameters (None: no row or NULL),
/// through SPI_execute without a row limit, which lets the query run in parallel workers.
fn select_bytes(query: &str, params: &[(Oid, Datum)]) -> Option<Vec<u8>> {
    super::spi::run(query, params, true, 0, |rc| {
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            return Err(rc);
        }
        // SAFETY: run calls this while SPI's result table is valid; the bytes are copied out.
        unsafe {
            let table = pg_sys::SPI_tuptable;
            if pg_sys::SPI_processed > 0 && !table.is_null() {
                let mut isnull = false;
                let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
                if !isnull {
                    return Ok(Some(varlena_bytes(d).to_vec()));
                }
            }
        }
        Ok(None)
    })
}

/// The bytes of a text value from `for_each_row`.
fn text_of<'a>(d: Datum) -> &'a [u8] {
    // SAFETY: the queries cast these columns to text; the value lives during the row call.
    unsafe { varlena_bytes(d) }
}

/// Interns byte strings (customer ids, strata) as numbers.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<[u8]>, u32>,
    values: Vec<Box<[u8]>>,
}

impl Interner {
    fn get_or_add(&mut self, b: &[u8]) -> u32 {
        if let Some(&i) = self.ids.get(b) {
            return i;
        }
        let i = self.values.len() as u32;
        self.values.push(b.into());
        self.ids.insert(b.into(), i);
        i
    }
}

// ---------------------------------------------------------------------------- sizes

fn size_result(call: &mut Call<'_>, effect: f64, alpha: f64, power: f64, ratio: f64) -> Datum {
    let args = call.args();
    let (control, treatment, _) = stats::sample_size(effect, alpha, power, ratio).or_raise(args.name);
    let result = call.cache(|a| Composite::for_result(a, &SIZE));
    result.form(args.name, &[Some(Datum::from(control as i64)), Some(Datum::from(treatment as i64))])
}

/// Cohen's h for a relative lift on a baseline rate, checked.
fn lift_effect(what: &str, baseline: f64, min_lift: f64) -> f64 {
    if !(baseline.is_finite() && baseline > 0.0 && baseline < 1.0) {
        invalid(what, format!("baseline must be a conversion rate between 0 and 1 (exclusive), got {baseline}"));
    }
    let p1 = baseline * (1.0 + min_lift);
    if !min_lift.is_finite() || min_lift == 0.0 {
        invalid(what, format!("min_lift must be a finite relative lift other than 0, got {min_lift}"));
    }
    if !(p1 > 0.0 && p1 < 1.0) {
        invalid(what, format!("baseline x (1 + min_lift) = {p1} is not a conversion rate between 0 and 1"));
    }
    stats::proportion_effectsize(p1, baseline)
}

/// Cohen's d for a difference of means, checked.
fn mean_effect(what: &str, sd: f64, min_diff: f64) -> f64 {
    if !(sd.is_finite() && sd > 0.0) {
        invalid(what, format!("sd must be a finite number > 0, got {sd}"));
    }
    if !min_diff.is_finite() || min_diff == 0.0 {
        invalid(what, format!("min_diff must be a finite number other than 0, got {min_diff}"));
    }
    min_diff / sd
}

pg_v1! {
    // rfm_experiment_size(baseline, min_lift, alpha, power, ratio) -> (control, treatment)
    fn rfm_experiment_size(call: "rfm_experiment_size") -> Datum {
        let args = call.args();
        let h = lift_effect(args.name, f64_arg(&args, 0, "baseline"), f64_arg(&args, 1, "min_lift"));
        let (alpha, power, ratio) = (f64_arg(&args, 2, "alpha"), f64_arg(&args, 3, "power"), f64_arg(&args, 4, "ratio"));
        size_result(&mut call, h, alpha, power, ratio)
    }

    // rfm_experiment_size_mean(sd, min_diff, alpha, power, ratio) -> (control, treatment)
    fn rfm_experiment_size_mean(call: "rfm_experiment_size_mean") -> Datum {
        let args = call.args();
        let d = mean_effect(args.name, f64_arg(&args, 0, "sd"), f64_arg(&args, 1, "min_diff"));
        let (alpha, power, ratio) = (f64_arg(&args, 2, "alpha"), f64_arg(&args, 3, "power"), f64_arg(&args, 4, "ratio"));
        size_result(&mut call, d, alpha, power, ratio)
    }
}

// ---------------------------------------------------------------------------- outcomes

/// Per customer (numbered by an interner of ids): whether it converted in the window and
/// its net revenue, read from `outcomes` lines with [starts, ends).
struct Outcomes {
    converted: Vec<bool>,
    revenue: Vec<Sum>,
    lines: u64,
}

#[allow(clippy::too_many_arguments)]
fn read_outcomes(
    what: &str,
    schema: &str,
    outcomes: Oid,
    customer_column: &str,
    ts_column: &str,
    amount_column: &str,
    starts: i64,
    ends: i64,
    customers: &FxHashMap<Box<[u8]>, u32>,
    n: usize,
) -> Outcomes {
    if starts >= ends {
        invalid(what, "the window is empty: starts must be earlier than ends");
    }
    let rel = Relation::of(what, outcomes);
    let c = rel.column(what, customer_column, &[], "");
    let t = rel.column(what, ts_column, &["D"], "ts_column must be a date, timestamp or timestamptz column");
    let a = rel.column(what, amount_column, &["N"], "amount_column must be a numeric column");
    // The executor sums each customer's lines (the aggregate runs in parallel workers too);
    // only the per-customer totals come back.
    let query = format!("SELECT {schema}.rfm_experiment_lines({c}::text, {a}::float8) FROM {} WHERE {t} >= $1 AND {t} < $2", rel.name);
    let mut out = Outcomes { converted: vec![false; n], revenue: vec![Sum::default(); n], lines: 0 };
    let params = [(pg_sys::TIMESTAMPTZOID, Datum::from(starts)), (pg_sys::TIMESTAMPTZOID, Datum::from(ends))];
    let Some(bytes) = select_bytes(&query, &params) else { return out };
    let totals = Totals::deserialize(&bytes).or_raise(what);
    drop(bytes);
    for (k, sum, converted) in totals.into_entries() {
        if let Some(&i) = customers.get(&k) {
            out.revenue[i as usize] = sum;
            out.converted[i as usize] = converted;
            out.lines += 1;
        }
    }
    out
}

// SAFETY (for every `state` / `state_or_new` below): the declarations in sql/experiments.sql
// give each support function's `internal` arguments the Totals made by these functions.
pg_v1! {
    // rfm_experiment_lines(customer text, amount float8): per customer totals of lines
    fn rfm_experiment_lines_trans(call: "rfm_experiment_lines") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, Totals::default) };
        if let (Some(c), Some(a)) = (call.bytes(1), call.f64(2)) {
            state.update(c, a).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }
    fn rfm_experiment_lines_combine(call: "rfm_experiment_lines") -> Datum { super::aggregates::combine::<Totals>(&call) }
    fn rfm_experiment_lines_serial(call: "rfm_experiment_lines") -> Datum { super::aggregates::serial::<Totals>(&mut call) }
    fn rfm_experiment_lines_deserial(call: "rfm_experiment_lines") -> Datum { super::aggregates::deserial::<Totals>(&mut call) }
    // final: the totals in their serialized form (bytea)
    fn rfm_experiment_lines_final(call: "rfm_experiment_lines") -> Datum {
        let args = call.args();
        // SAFETY: see above.
        match unsafe { args.state::<Totals>(0) } {
            Some(s) => bytea_datum(&s.serialize()),
            None => args.return_null(),
        }
    }
}

// ---------------------------------------------------------------------------- plan

const PLAN: [Oid; 13] = [
    pg_sys::TEXTOID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::BOOLOID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
];

fn opt_f64(x: Option<f64>) -> Option<Datum> {
    x.filter(|v| v.is_finite()).map(f64_datum)
}

pg_v1! {
    // rfm_experiment_plan(source, customer_column, segment_column, outcomes, ts_column,
    //                     amount_column, starts, ends, min_lift, alpha, power, ratio)
    fn rfm_experiment_plan(call: "rfm_experiment_plan") -> Datum {
        let args = call.args();
        let what = args.name;
        let source = args.oid(0).unwrap_or_else(|| null_not_allowed(format!("{what}: source must not be NULL")));
        let customer_column = text_arg(&args, 1, "customer_column");
        let segment_column = args.text(2);
        let outcomes = args.oid(3).unwrap_or_else(|| null_not_allowed(format!("{what}: outcomes must not be NULL")));
        let (ts_column, amount_column) = (text_arg(&args, 4, "ts_column"), text_arg(&args, 5, "amount_column"));
        let (starts, ends) = (ts_arg(&args, 6, "starts"), ts_arg(&args, 7, "ends"));
        let min_lift = f64_arg(&args, 8, "min_lift");
        let (alpha, power, ratio) = (f64_arg(&args, 9, "alpha"), f64_arg(&args, 10, "power"), f64_arg(&args, 11, "ratio"));
        // Checked before reading anything.
        stats::sample_size(0.1, alpha, power, ratio).or_raise(what);
        if !min_lift.is_finite() || min_lift == 0.0 {
            invalid(what, format!("min_lift must be a finite relative lift other than 0, got {min_lift}"));
        }
        let rel = Relation::of(what, source);
        let c = rel.column(what, &customer_column, &[], "");
        let seg = segment_column.as_deref().map(|s| rel.column(what, s, &[], ""));
        let mut customers = Interner::default();
        let mut segments = Interner::default();
        let mut segment_of: Vec<u32> = Vec::new();
        let query = format!("SELECT {c}::text, {}::text FROM {}", seg.as_deref().unwrap_or("NULL"), rel.name);
        for_each_row(&query, &[], 2, &mut |v, nulls| {
            if nulls[0] {
                null_not_allowed(format!("{what}: a row of {} has a NULL {customer_column}", rel.name));
            }
            let before = customers.values.len();
            let i = customers.get_or_add(text_of(v[0]));
            let s = if nulls[1] { u32::MAX } else { segments.get_or_add(text_of(v[1])) };
            if (i as usize) < before {
                if segment_of[i as usize] != s {
                    raise(PgSqlErrorCode::ERRCODE_CARDINALITY_VIOLATION,
                          format!("{what}: customer \"{}\" of {} is in two segments", String::from_utf8_lossy(text_of(v[0])), rel.name));
                }
                return;
            }
            segment_of.push(s);
        });
        if customers.values.is_empty() {
            invalid(what, format!("{} has no customers", rel.name));
        }
        let schema = schema_prefix(args);
        let o = read_outcomes(what, &schema, outcomes, &customer_column, &ts_column, &amount_column, starts, ends, &customers.ids, customers.values.len());
        // Segments in their sorted order, the NULL segment last.
        let mut order: Vec<u32> = (0..segments.values.len() as u32).collect();
        order.sort_by(|a, b| segments.values[*a as usize].cmp(&segments.values[*b as usize]));
        if segment_of.contains(&u32::MAX) {
            order.push(u32::MAX);
        }
        let mut members_of: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
        for (i, s) in segment_of.iter().enumerate() {
            members_of.entry(*s).or_default().push(i);
        }
        let mut rows = Vec::new();
        for s in order {
            check();
            let members = members_of.remove(&s).unwrap_or_default();
            let n = members.len() as u64;
            let conv = members.iter().filter(|&&i| o.converted[i]).count() as u64;
            let rev: Vec<f64> = members.iter().map(|&i| o.revenue[i].value()).collect();
            let m = stats::moments(&rev);
            let rate = conv as f64 / n as f64;
            let sd = m.var.sqrt();
            let conv_size = (rate > 0.0 && rate * (1.0 + min_lift) < 1.0 && rate * (1.0 + min_lift) > 0.0)
                .then(|| stats::sample_size(stats::proportion_effectsize(rate * (1.0 + min_lift), rate), alpha, power, ratio).ok())
                .flatten();
            let rev_size = (sd > 0.0 && m.mean != 0.0)
                .then(|| stats::sample_size(min_lift * m.mean / sd, alpha, power, ratio).ok())
                .flatten();
            // With all n customers split control : treatment = 1 : ratio.
            let n1 = n as f64 / (1.0 + ratio);
            let detectable = stats::detectable_effect(n1, alpha, power, ratio).and_then(|h| {
                (rate > 0.0 && rate < 1.0).then(|| {
                    let p1 = ((h + 2.0 * rate.sqrt().asin()) / 2.0).sin().powi(2);
                    if h + 2.0 * rate.sqrt().asin() >= std::f64::consts::PI { f64::NAN } else { p1 / rate - 1.0 }
                })
            });
            let rev_detectable = stats::detectable_effect(n1, alpha, power, ratio)
                .and_then(|d| (sd > 0.0 && m.mean != 0.0).then(|| d * sd / m.mean.abs()));
            let segment = (s != u32::MAX).then(|| text_datum(&String::from_utf8_lossy(&segments.values[s as usize])));
            rows.push(vec![
                segment,
                Some(Datum::from(n as i64)),
                Some(Datum::from(conv as i64)),
                opt_f64(Some(rate)),
                opt_f64(Some(m.mean)),
                opt_f64((n > 1).then_some(sd)),
                conv_size.map(|s| Datum::from(s.0 as i64)),
                conv_size.map(|s| Datum::from(s.1 as i64)),
                rev_size.map(|s| Datum::from(s.0 as i64)),
                rev_size.map(|s| Datum::from(s.1 as i64)),
                conv_size.map(|s| Datum::from(s.0 + s.1 <= n)),
                opt_f64(detectable),
                opt_f64(rev_detectable),
            ]);
        }
        materialize(args, &PLAN, &rows)
    }
}

// ---------------------------------------------------------------------------- create

const CREATED: [Oid; 5] = [pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID];

/// Takes the lock that makes one creation or drop of experiment `name` run at a time.
fn lock_name(name: &str) {
    Spi::connect_mut(|client| {
        client.update(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('pg_rfm experiment ' OPERATOR(pg_catalog.||) $1, 0))",
            None,
            &[name.into()],
        )?;
        Ok::<(), pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| spi_fail(e));
}

pg_v1! {
    // rfm_experiment_drop(name) -> bigint: the assignments dropped
    fn rfm_experiment_drop(call: "rfm_experiment_drop") -> Datum {
        let args = call.args();
        let what = args.name;
        let Some(name) = args.text(0) else { return args.return_null() };
        let storage = Storage::of(what, args);
        storage.check_may(what, pg_sys::ACL_DELETE, "drop");
        lock_name(&name);
        let schema = &storage.schema;
        let deleted = Spi::connect_mut(|client| {
            Ok::<usize, pgrx::spi::Error>(
                client
                    .update(
                        format!("DELETE FROM {schema}.rfm_experiments e WHERE e.name OPERATOR(pg_catalog.=) $1 RETURNING 1").as_str(),
                        None,
                        &[name.as_str().into()],
                    )?
                    .len(),
            )
        })
        .unwrap_or_else(|e| spi_fail(e));
        // A row the caller could not delete (row security) keeps its assignments; a partition
        // left without its row is dropped.
        if deleted == 0 && assignments::experiment_exists(&storage, &name) {
            return Datum::from(0i64);
        }
        Datum::from(assignments::drop_partition(&storage, &name))
    }
}

pg_v1! {
    // rfm_experiment_create(name, source, customer_column, arms, stratum_column, seed, control_arm)
    fn rfm_experiment_create(call: "rfm_experiment_create") -> Datum {
        let args = call.args();
        let what = args.name;
        let started = std::time::Instant::now();
        let name = text_arg(&args, 0, "name");
        let source = args.oid(1).unwrap_or_else(|| null_not_allowed(format!("{what}: source must not be NULL")));
        let customer_column = text_arg(&args, 2, "customer_column");
        let arms_json = args.jsonb(3).unwrap_or_else(|| null_not_allowed(format!("{what}: arms must not be NULL")));
        let stratum_column = args.text(4);
        let seed = args.i64(5).unwrap_or_else(|| null_not_allowed(format!("{what}: seed must not be NULL")));
        let control = text_arg(&args, 6, "control_arm");
        if name.is_empty() {
            invalid(what, "name must not be empty");
        }
        let arms = Arms::parse(&arms_json, &control).or_raise(what);
        let storage = Storage::of(what, args);
        storage.check_may(what, pg_sys::ACL_INSERT, "store");
        let schema = storage.schema.clone();
        // One creation of a name at a time; then it must not exist yet.
        lock_name(&name);
        let exists = Spi::connect_mut(|client| {
            client
                .update(
                    format!("SELECT EXISTS (SELECT 1 FROM {schema}.rfm_experiments WHERE name OPERATOR(pg_catalog.=) $1)").as_str(),
                    None,
                    &[name.as_str().into()],
                )?
                .first()
                .get_one::<bool>()
        })
        .unwrap_or_else(|e| spi_fail(e));
        if exists == Some(true) {
            PgError::new(PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT, format!("{what}: experiment \"{name}\" already exists"))
                .hint(format!("An experiment's assignment never changes: choose another name, or drop it first with rfm_experiment_drop('{}').", name.replace('\'', "''")))
                .raise();
        }
        let rel = Relation::of(what, source);
        let c = rel.column(what, &customer_column, &[], "");
        let s = stratum_column.as_deref().map(|s| rel.column(what, s, &[], ""));
        // Customer ids in one buffer, strata interned (u32::MAX: the NULL stratum).
        let (mut buf, mut ends): (Vec<u8>, Vec<usize>) = (Vec::new(), Vec::new());
        let mut strata = Interner::default();
        let mut stratum_of: Vec<u32> = Vec::new();
        let query = format!("SELECT {c}::text, {}::text FROM {}", s.as_deref().unwrap_or("NULL"), rel.name);
        for_each_row(&query, &[], 2, &mut |v, nulls| {
            if nulls[0] {
                null_not_allowed(format!("{what}: a row of {} has a NULL {customer_column}", rel.name));
            }
            buf.extend_from_slice(text_of(v[0]));
            ends.push(buf.len());
            stratum_of.push(if nulls[1] { u32::MAX } else { strata.get_or_add(text_of(v[1])) });
        });
        let n = ends.len();
        let read_ms = started.elapsed().as_millis();
        if n == 0 {
            invalid(what, format!("{} has no customers", rel.name));
        }
        let id = |i: usize| &buf[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
        // Ids sorted (the order rows are stored in), and each at most once.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by(|a, b| id(*a as usize).cmp(id(*b as usize)));
        for w in order.windows(2) {
            if id(w[0] as usize) == id(w[1] as usize) {
                raise(PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
                      format!("{what}: customer \"{}\" appears more than once in {}", String::from_utf8_lossy(id(w[0] as usize)), rel.name));
            }
        }
        check();
        let null_stratum = stratum_of.contains(&u32::MAX);
        let mut stratum_bytes: Vec<Option<Vec<u8>>> = strata.values.iter().map(|v| Some(v.to_vec())).collect();
        if null_stratum {
            stratum_bytes.push(None);
        }
        let null_index = strata.values.len() as u32;
        let key = Key::new(&name, seed);
        let customers: Vec<Customer<'_>> = (0..n)
            .map(|i| Customer { id: id(i), stratum: if stratum_of[i] == u32::MAX { null_index } else { stratum_of[i] } })
            .collect();
        let assigned = experiment::assign(&key, &arms, &customers, &stratum_bytes, &mut check);
        let assign_ms = started.elapsed().as_millis() - read_ms;
        // Store: the experiment, then the assignments in id order, in batches.
        let stored = Spi::connect_mut(|client| {
            client.update(
                format!(
                    "INSERT INTO {schema}.rfm_experiments (name, arms, control_arm, stratum_column, seed, source, customer_column, customers, strata)
                     VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9)"
                )
                .as_str(),
                None,
                &[
                    name.as_str().into(),
                    arms.to_json().to_string().into(),
                    control.as_str().into(),
                    stratum_column.clone().into(),
                    seed.into(),
                    rel.name.as_str().into(),
                    customer_column.as_str().into(),
                    (n as i64).into(),
                    (stratum_bytes.len() as i32).into(),
                ],
            )?;
            Ok::<(), pgrx::spi::Error>(())
        });
        stored.unwrap_or_else(|e| spi_fail(e));
        let stratum_of_row = |i: usize| (stratum_of[i] != u32::MAX).then(|| &*strata.values[stratum_of[i] as usize]);
        let rows: Vec<assignments::Row<'_>> = order
            .iter()
            .map(|&i| (id(i as usize), stratum_of_row(i as usize), arms.names[assigned[i as usize] as usize].as_bytes()))
            .collect();
        assignments::store(&storage, what, &name, &rows, &mut check);
        drop(rows);
        // Counts per stratum (sorted, NULL last) and arm.
        let k = arms.names.len();
        let mut counts = vec![vec![0u64; k]; stratum_bytes.len()];
        for (i, &a) in assigned.iter().enumerate() {
            counts[customers[i].stratum as usize][a as usize] += 1;
        }
        let mut sorder: Vec<usize> = (0..stratum_bytes.len()).collect();
        sorder.sort_by(|a, b| match (&stratum_bytes[*a], &stratum_bytes[*b]) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, None) => std::cmp::Ordering::Equal,
        });
        let mut rows = Vec::new();
        for s in sorder {
            let size: u64 = counts[s].iter().sum();
            for (a, count) in counts[s].iter().enumerate() {
                rows.push(vec![
                    stratum_bytes[s].as_ref().map(|b| text_datum(&String::from_utf8_lossy(b))),
                    Some(text_datum(&arms.names[a])),
                    Some(Datum::from(*count as i64)),
                    Some(f64_datum(arms.shares[a])),
                    Some(f64_datum(arms.shares[a] * size as f64)),
                ]);
            }
        }
        let total_ms = started.elapsed().as_millis();
        notice(format!(
            "{what}: experiment \"{name}\": {n} customers of {} in {} strata assigned to {} arms in {total_ms} ms \
             (read {read_ms}, assign {assign_ms}, store {})",
            rel.name,
            stratum_bytes.len(),
            k,
            total_ms - read_ms - assign_ms
        ));
        materialize(args, &CREATED, &rows)
    }
}

// ---------------------------------------------------------------------------- stored experiments

/// An experiment's row of rfm_experiments.
struct Stored {
    name: String,
    arms: Arms,
    key: Key,
    source: String,
    customer_column: String,
}

fn load(what: &str, schema: &str, name: &str) -> Stored {
    let text = select_text(&format!("SELECT pg_catalog.to_jsonb(e)::text FROM {schema}.rfm_experiments e WHERE e.name = $1"), &[name])
        .unwrap_or_else(|| {
            PgError::new(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("{what}: experiment \"{name}\" does not exist"))
                .hint("SELECT name, status, created_at FROM rfm_experiments lists the experiments; rfm_experiment_create makes one.")
                .raise()
        });
    let damaged = |problem: &str| -> ! {
        PgError::new(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{what}: experiment \"{name}\" is damaged: {problem}"))
            .detail(
                "Its row in rfm_experiments does not describe a usable experiment (edited by hand, or restored from an incompatible dump).",
            )
            .hint("Drop it with rfm_experiment_drop and create it again (the same name, seed and customers give the same assignment).")
            .raise()
    };
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| damaged(&e.to_string()));
    let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let control = get("control_arm").unwrap_or_else(|| damaged("control_arm is missing"));
    let arms = Arms::parse(v.get("arms").unwrap_or(&Value::Null), &control).unwrap_or_else(|e| damaged(&e.message));
    let seed = v.get("seed").and_then(Value::as_i64).unwrap_or_else(|| damaged("seed is missing"));
    Stored {
        name: name.to_string(),
        key: Key::new(name, seed),
        arms,
        source: get("source").unwrap_or_else(|| damaged("source is missing")),
        customer_column: get("customer_column").unwrap_or_else(|| damaged("customer_column is missing")),
    }
}

/// The stored assignment: customer ids interned in reading order, each one's stratum and
/// arm; strata interned (u32::MAX: the NULL stratum).
struct Assignment {
    customers: Interner,
    stratum: Vec<u32>,
    arm: Vec<u8>,
    strata: Interner,
}

fn read_assignment(what: &str, schema: &str, e: &Stored) -> Assignment {
    let mut a = Assignment { customers: Interner::default(), stratum: Vec::new(), arm: Vec::new(), strata: Interner::default() };
    let query = format!("SELECT customer_id, stratum, arm FROM {schema}.rfm_experiment_assignments WHERE experiment = $1");
    let name = text_datum(&e.name);
    let mut bad: Option<String> = None;
    for_each_row(&query, &[(pg_sys::TEXTOID, name)], 3, &mut |v, nulls| {
        a.customers.get_or_add(text_of(v[0]));
        a.stratum.push(if nulls[1] { u32::MAX } else { a.strata.get_or_add(text_of(v[1])) });
        match e.arms.index(&String::from_utf8_lossy(text_of(v[2]))) {
            Some(i) => a.arm.push(i as u8),
            None => {
                bad.get_or_insert_with(|| String::from_utf8_lossy(text_of(v[2])).into_owned());
                a.arm.push(0);
            }
        }
    });
    if let Some(arm) = bad {
        PgError::new(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("{what}: experiment \"{}\" is damaged: an assignment names arm \"{arm}\", which the experiment does not have", e.name),
        )
        .hint("Drop it with rfm_experiment_drop and create it again.")
        .raise();
    }
    a
}

// ---------------------------------------------------------------------------- arm

/// What one call site of rfm_experiment_arm keeps for a statement: per experiment, its row,
/// and the assignments looked up one by one or, past `BULK` lookups, all read at once.
struct ArmCache {
    statement: Statement,
    experiments: FxHashMap<String, ArmExperiment>,
}

struct ArmExperiment {
    stored: Stored,
    lookups: u32,
    all: Option<FxHashMap<Box<[u8]>, u8>>,
}

const BULK: u32 = 1000;

pg_v1! {
    // rfm_experiment_arm(name, customer_id) -> text; STABLE
    fn rfm_experiment_arm(call: "rfm_experiment_arm") -> Datum {
        let args = call.args();
        let what = args.name;
        let (Some(name), Some(id)) = (args.text(0), args.bytes(1)) else { return args.return_null() };
        let cache = call.cache(|_| ArmCache { statement: Statement::now(), experiments: FxHashMap::default() });
        if cache.statement.renewed() {
            cache.experiments.clear();
        }
        if !cache.experiments.contains_key(&name) {
            if super::citus::on_worker() {
                PgError::new(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, format!("{what}: experiment \"{name}\" cannot be read on a Citus worker"))
                    .detail("Experiments are stored on the coordinator; this part of the query runs on a worker.")
                    .hint("Join rfm_experiment_assignments on the coordinator instead: ... JOIN rfm_experiment_assignments a ON a.experiment = 'name' AND a.customer_id = c.id::text.")
                    .raise();
            }
            let schema = schema_prefix(args);
            let stored = load(what, &schema, &name);
            cache.experiments.insert(name.clone(), ArmExperiment { stored, lookups: 0, all: None });
        }
        let Some(e) = cache.experiments.get_mut(&name) else { return args.return_null() };
        e.lookups += 1;
        if e.all.is_none() && e.lookups > BULK {
            let schema = schema_prefix(args);
            let a = read_assignment(what, &schema, &e.stored);
            let map: FxHashMap<Box<[u8]>, u8> = a.customers.values.into_iter().zip(a.arm).collect();
            e.all = Some(map);
        }
        let arm = match &e.all {
            Some(map) => map.get(id).map(|a| *a as usize),
            None => {
                let schema = schema_prefix(args);
                let id = String::from_utf8_lossy(id);
                select_text(
                    &format!("SELECT arm FROM {schema}.rfm_experiment_assignments WHERE experiment = $1 AND customer_id = $2"),
                    &[&name, &id],
                )
                .map(|a| e.stored.arms.index(&a).unwrap_or_else(|| {
                    PgError::new(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                                 format!("{what}: experiment \"{name}\" is damaged: customer \"{id}\" has arm \"{a}\", which the experiment does not have"))
                        .raise()
                }))
            }
        };
        let arm = arm.unwrap_or_else(|| e.stored.key.draw(&e.stored.arms, id));
        text_datum(&e.stored.arms.names[arm])
    }
}

// ---------------------------------------------------------------------------- results

const RESULTS: [Oid; 27] = [
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::BOOLOID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
];

/// The arguments of rfm_experiment_results and rfm_experiment_report: (name, outcomes,
/// customer_column, ts_column, amount_column, starts, ends, covariate_column).
struct ResultArgs {
    name: String,
    outcomes: Oid,
    customer_column: String,
    ts_column: String,
    amount_column: String,
    starts: i64,
    ends: i64,
    covariate_column: Option<String>,
}

impl ResultArgs {
    fn of(args: &Args<'_>) -> ResultArgs {
        let what = args.name;
        let r = ResultArgs {
            name: text_arg(args, 0, "name"),
            outcomes: args.oid(1).unwrap_or_else(|| null_not_allowed(format!("{what}: outcomes must not be NULL"))),
            customer_column: text_arg(args, 2, "customer_column"),
            ts_column: text_arg(args, 3, "ts_column"),
            amount_column: text_arg(args, 4, "amount_column"),
            starts: ts_arg(args, 5, "starts"),
            ends: ts_arg(args, 6, "ends"),
            covariate_column: args.text(7),
        };
        if r.starts >= r.ends {
            invalid(what, "the window is empty: starts must be earlier than ends");
        }
        r
    }
}

/// One scope of the results: overall or a stratum (None: the NULL stratum), and per arm the
/// rows computed.
struct Scope {
    overall: bool,
    stratum: Option<String>,
    rows: Vec<ArmRow>,
    srm: Option<f64>,
}

/// The results of every scope of an experiment, with Holm's adjustments: per treatment arm
/// over the strata; overall over the treatment arms.
fn adjusted(scopes: &[Scope], arms: &Arms, pick: impl Fn(&ArmRow) -> Option<f64>) -> Vec<Vec<Option<f64>>> {
    let k = arms.names.len();
    let mut out: Vec<Vec<Option<f64>>> = scopes.iter().map(|_| vec![None; k]).collect();
    let overall: Vec<Option<f64>> = (0..k).map(|a| if a == arms.control { None } else { pick(&scopes[0].rows[a]) }).collect();
    out[0] = stats::holm(&overall);
    for a in (0..k).filter(|&a| a != arms.control) {
        let ps: Vec<Option<f64>> = scopes[1..].iter().map(|s| pick(&s.rows[a])).collect();
        for (i, p) in stats::holm(&ps).into_iter().enumerate() {
            out[i + 1][a] = p;
        }
    }
    out
}

pg_v1! {
    // rfm_experiment_results(name, outcomes, customer_column, ts_column, amount_column, starts, ends, covariate_column)
    fn rfm_experiment_results(call: "rfm_experiment_results") -> Datum {
        let args = call.args();
        let what = args.name;
        let ResultArgs { name, outcomes, customer_column, ts_column, amount_column, starts, ends, covariate_column } =
            ResultArgs::of(&args);
        let schema = schema_prefix(args);
        let started = std::time::Instant::now();
        let e = load(what, &schema, &name);
        let a = read_assignment(what, &schema, &e);
        let n = a.arm.len();
        let read_ms = started.elapsed().as_millis();
        let o = read_outcomes(what, &schema, outcomes, &customer_column, &ts_column, &amount_column, starts, ends, &a.customers.ids, n);
        let lines_ms = started.elapsed().as_millis() - read_ms;
        if o.lines == 0 {
            notice(format!("{what}: no customer of experiment \"{name}\" has a line in {} in the window", Relation::of(what, outcomes).name));
        }
        // The covariate, from the experiment's source: NULL or missing values take the
        // mean, so that they are not adjusted.
        let covariate: Option<Vec<f64>> = covariate_column.as_deref().map(|col| {
            let oid = select_text("SELECT pg_catalog.to_regclass($1)::oid::text", &[&e.source])
                .and_then(|t| t.parse::<u32>().ok())
                .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                                         format!("{what}: the experiment's source {} no longer exists, so covariate_column cannot be read", e.source)));
            let rel = Relation::of(what, Oid::from(oid));
            let c = rel.column(what, &e.customer_column, &[], "");
            let x = rel.column(what, col, &["N"], "covariate_column must be a numeric column");
            let mut vals = vec![f64::NAN; n];
            for_each_row(&format!("SELECT {c}::text, {x}::float8 FROM {}", rel.name), &[], 2, &mut |v, nulls| {
                if nulls[0] || nulls[1] {
                    return;
                }
                if let Some(&i) = a.customers.ids.get(text_of(v[0])) {
                    vals[i as usize] = f64::from_bits(v[1].value() as u64);
                }
            });
            let known: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
            let missing = n - known.len();
            let mean = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
            if missing > 0 {
                notice(format!("{what}: {missing} customers have no {col} in {}: their covariate is the mean, {mean}", rel.name));
            }
            vals.into_iter().map(|v| if v.is_finite() { v } else { mean }).collect()
        });
        // Scopes: overall, then strata in sorted order (NULL last).
        let k = e.arms.names.len();
        let mut sorder: Vec<u32> = (0..a.strata.values.len() as u32).collect();
        sorder.sort_by(|x, y| a.strata.values[*x as usize].cmp(&a.strata.values[*y as usize]));
        if a.stratum.contains(&u32::MAX) && !a.strata.values.is_empty() {
            sorder.push(u32::MAX);
        }
        let scope_of = |filter: Option<u32>| -> Vec<ArmData> {
            let mut data: Vec<ArmData> = vec![ArmData::default(); k];
            for i in 0..n {
                if filter.is_some_and(|s| a.stratum[i] != s) {
                    continue;
                }
                let d = &mut data[a.arm[i] as usize];
                d.revenue.push(o.revenue[i].value());
                d.converted += o.converted[i] as u64;
                if let Some(x) = &covariate {
                    d.covariate.push(x[i]);
                }
            }
            data
        };
        let mut notices = Vec::new();
        let mut scopes = Vec::new();
        let filters: Vec<Option<u32>> = std::iter::once(None).chain(sorder.iter().map(|s| Some(*s))).collect();
        for f in filters {
            check();
            let label = match f {
                None => "overall".to_string(),
                Some(u32::MAX) => "stratum NULL".to_string(),
                Some(s) => format!("stratum \"{}\"", String::from_utf8_lossy(&a.strata.values[s as usize])),
            };
            let data = scope_of(f);
            let counts: Vec<u64> = data.iter().map(|d| d.revenue.len() as u64).collect();
            let rows = experiment::scope_results(&e.arms, &data, covariate.is_some(), ALPHA, &label, &mut notices);
            let stratum = f.map(|s| if s == u32::MAX { None } else { Some(String::from_utf8_lossy(&a.strata.values[s as usize]).into_owned()) });
            scopes.push(Scope { overall: f.is_none(), stratum: stratum.flatten(), rows, srm: stats::chisquare(&counts, &e.arms.shares) });
        }
        if let Some(p) = scopes[0].srm.filter(|p| *p < 0.001) {
            warning(format!(
                "{what}: sample ratio mismatch in experiment \"{name}\": the arm counts do not follow the shares (chi-square p = {p:.2e})"
            ));
        }
        notices.dedup();
        for msg in notices.iter().take(20) {
            notice(format!("{what}: {msg}"));
        }
        if notices.len() > 20 {
            notice(format!("{what}: and {} more such notices", notices.len() - 20));
        }
        let p_adj = adjusted(&scopes, &e.arms, |r| r.p_value);
        let rev_adj = adjusted(&scopes, &e.arms, |r| r.revenue_p_value);
        let mut rows = Vec::new();
        for (si, s) in scopes.iter().enumerate() {
            for (ai, r) in s.rows.iter().enumerate() {
                let pair = |x: Option<(f64, f64)>| (opt_f64(x.map(|v| v.0)), opt_f64(x.map(|v| v.1)));
                let (ci_low, ci_high) = pair(r.ci);
                let (rlow, rhigh) = pair(r.revenue_ci);
                let (clow, chigh) = pair(r.cuped_ci);
                rows.push(vec![
                    s.stratum.as_deref().map(text_datum),
                    Some(text_datum(&e.arms.names[ai])),
                    Some(Datum::from(s.overall)),
                    Some(Datum::from(r.customers as i64)),
                    Some(Datum::from(r.converted as i64)),
                    opt_f64(r.conversion_rate),
                    opt_f64(Some(r.revenue)),
                    opt_f64(r.revenue_per_customer),
                    opt_f64(r.revenue_sd),
                    opt_f64(r.lift_abs),
                    opt_f64(r.lift_rel),
                    ci_low,
                    ci_high,
                    opt_f64(r.p_value),
                    opt_f64(p_adj[si][ai]),
                    opt_f64(r.revenue_diff),
                    rlow,
                    rhigh,
                    opt_f64(r.revenue_p_value),
                    opt_f64(rev_adj[si][ai]),
                    opt_f64(r.cuped_diff),
                    clow,
                    chigh,
                    opt_f64(r.cuped_p_value),
                    opt_f64(r.variance_reduction),
                    opt_f64(r.theta),
                    opt_f64(s.srm),
                ]);
            }
        }
        let total_ms = started.elapsed().as_millis();
        notice(format!(
            "{what}: experiment \"{name}\": {n} customers, {} with lines in the window, in {total_ms} ms (assignment {read_ms}, lines {lines_ms}, \
             statistics {})",
            o.lines,
            total_ms - read_ms - lines_ms
        ));
        materialize(args, &RESULTS, &rows)
    }
}

// ---------------------------------------------------------------------------- report

pg_v1! {
    // rfm_experiment_report(name, outcomes, customer_column, ts_column, amount_column, starts, ends, covariate_column) -> text
    fn rfm_experiment_report(call: "rfm_experiment_report") -> Datum {
        use crate::core::experiment_report::{html, ExperimentReport, ResultRow};
        let args = call.args();
        let what = args.name;
        let ResultArgs { name, outcomes, customer_column, ts_column, amount_column, starts, ends, covariate_column: covariate } =
            ResultArgs::of(&args);
        let schema = schema_prefix(args);
        let e = load(what, &schema, &name);
        let (s, t) = (starts.to_string(), ends.to_string());
        let text = select_text(
            &format!(
                "SELECT pg_catalog.jsonb_build_object('rows', coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]'),
                        'window', pg_catalog.concat('[', $6::bigint * interval '1 microsecond' + 'epoch'::timestamptz, ', ',
                                                    $7::bigint * interval '1 microsecond' + 'epoch'::timestamptz, ')'))::text
                 FROM {schema}.rfm_experiment_results($1, $2::oid::regclass, $3, $4, $5,
                      $6::bigint * interval '1 microsecond' + 'epoch'::timestamptz,
                      $7::bigint * interval '1 microsecond' + 'epoch'::timestamptz, NULLIF($8, '')) r"
            ),
            &[&name, &outcomes.to_u32().to_string(), &customer_column, &ts_column, &amount_column, &s, &t, covariate.as_deref().unwrap_or("")],
        )
        .unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let f = |r: &Value, k: &str| r.get(k).and_then(Value::as_f64);
        let pair = |r: &Value, a: &str, b: &str| f(r, a).zip(f(r, b));
        let rows: Vec<ResultRow> = v["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| ResultRow {
                        stratum: r["stratum"].as_str().map(str::to_string),
                        overall: r["overall"].as_bool().unwrap_or(false),
                        arm: r["arm"].as_str().unwrap_or_default().to_string(),
                        customers: r["customers"].as_i64().unwrap_or(0),
                        conversion_rate: f(r, "conversion_rate"),
                        revenue_per_customer: f(r, "revenue_per_customer"),
                        lift_abs: f(r, "lift_abs"),
                        ci: pair(r, "ci_low", "ci_high"),
                        p_value: f(r, "p_value"),
                        p_adjusted: f(r, "p_adjusted"),
                        revenue_diff: f(r, "revenue_diff"),
                        revenue_ci: pair(r, "revenue_ci_low", "revenue_ci_high"),
                        revenue_p_value: f(r, "revenue_p_value"),
                        cuped_diff: f(r, "cuped_revenue_diff"),
                        cuped_ci: pair(r, "cuped_ci_low", "cuped_ci_high"),
                        srm_p_value: f(r, "srm_p_value"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let window = v["window"].as_str().unwrap_or_default().to_string();
        text_datum(&html(&ExperimentReport { name: &name, window: &window, control: &e.arms.names[e.arms.control], rows: &rows }))
    }
}
