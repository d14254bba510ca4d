//! Customer lifetime value: the support functions of `rfm_clv_summary`, `rfm_clv_fit`
//! (called by `rfm_clv_train`, which stores the result) and the predictions, by model name
//! (read once per statement) or by `rfm_clv_model` value (declared in `sql/clv.sql`).

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;

use super::aggregates::{combine, deserial, serial};
use super::call::*;
use super::catalog::schema_prefix;
use super::error::{notice, null_not_allowed, raise, OrRaise, PgError};
use super::spi::{select_text, Statement};
use super::{citus, source};
use crate::core::clv::{self, BgData, BgNbd, ClvState, GammaGamma, GgData, Unit};
use crate::core::encode::Kind;

const CLV_SUMMARY: [Oid; 4] = [pg_sys::INT8OID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID, pg_sys::FLOAT8OID];
const FIT_RESULT: [Oid; 16] = [
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::INT4OID,
    pg_sys::FLOAT8OID,
    pg_sys::INT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::INT4OID,
    pg_sys::FLOAT8OID,
];
const CLV_MODEL: [Oid; 10] = [
    pg_sys::TEXTOID,
    pg_sys::INT4OID,
    pg_sys::TEXTOID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
    pg_sys::FLOAT8OID,
];

// ---------------------------------------------------------------------------- aggregate

fn unit_arg(call: &Call<'_>, i: usize) -> Unit {
    match call.bytes(i) {
        None => null_not_allowed(format!("{}: unit must not be NULL", call.name)),
        Some(b"day") => Unit::Day,
        Some(b"week") => Unit::Week,
        Some(other) => Unit::parse(&String::from_utf8_lossy(other)).or_raise(call.name),
    }
}

pg_v1! {
    // rfm_clv_summary(order_ts, amount, as_of [, unit]); SAFETY of the state arguments as in
    // aggregates.rs: the declarations give them this aggregate's state type.
    fn rfm_clv_trans(call: "rfm_clv_summary") -> Datum {
        // SAFETY: see above.
        let state = unsafe { call.state_or_new(0, ClvState::default) };
        let as_of = call.i64(3).unwrap_or_else(|| null_not_allowed(format!("{}: as_of must not be NULL", call.name)));
        let unit = if call.nargs() > 4 { unit_arg(&call, 4) } else { Unit::Day };
        if let (Some(ts), Some(amount)) = (call.i64(1), call.f64(2)) {
            state.update(ts, amount, as_of, unit).or_raise(call.name);
        }
        super::heap::check(call.name);
        state_datum(state)
    }

    fn rfm_clv_combine(call: "rfm_clv_summary") -> Datum { combine::<ClvState>(&call) }
    fn rfm_clv_serial(call: "rfm_clv_summary") -> Datum { serial::<ClvState>(&mut call) }
    fn rfm_clv_deserial(call: "rfm_clv_summary") -> Datum { deserial::<ClvState>(&mut call) }

    fn rfm_clv_final(call: "rfm_clv_summary") -> Datum {
        let args = call.args();
        // SAFETY: see above. Merging the state's days in place keeps it equivalent, so a
        // later transition or final call sees the same customer.
        let Some(s) = (unsafe { args.state::<ClvState>(0) }).and_then(ClvState::finalize) else {
            return args.return_null();
        };
        if !s.monetary.is_finite() {
            raise(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, format!("{}: monetary is out of range for float8", args.name));
        }
        let result = call.cache(|a| Composite::for_result(a, &CLV_SUMMARY));
        result.form(
            args.name,
            &[Some(Datum::from(s.frequency)), Some(f64_datum(s.recency)), Some(f64_datum(s.t)), Some(f64_datum(s.monetary))],
        )
    }
}

// ---------------------------------------------------------------------------- fitting

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// "25 iterations, 29 evaluations of the likelihood", with the iterations on the sample of the
/// warm start when there was one.
fn effort<P>(fit: &clv::Fit<P>) -> String {
    let on_sample = match fit.sample_iterations {
        0 => String::new(),
        k => format!(" ({k} on a 1/{} sample of the customers first)", clv::WARM_STRIDE),
    };
    format!("{} iterations{on_sample}, {} evaluations of the likelihood", fit.iterations, fit.evaluations)
}

fn text_arg(args: &Args<'_>, i: usize, what: &str) -> String {
    args.text(i).unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not be NULL", args.name)))
}

pg_v1! {
    // rfm_clv_fit(source, frequency, recency, t, monetary, penalizer, max_iter)
    fn rfm_clv_fit(call: "rfm_clv_train") -> Datum {
        let args = call.args();
        let what = args.name;
        let source = args.oid(0).unwrap_or_else(|| null_not_allowed(format!("{what}: source must not be NULL")));
        let mut columns = vec![text_arg(&args, 1, "frequency"), text_arg(&args, 2, "recency"), text_arg(&args, 3, "t")];
        let monetary = args.text(4);
        if let Some(m) = &monetary {
            columns.push(m.clone());
        }
        let penalizer = args.f64(5).unwrap_or_else(|| null_not_allowed(format!("{what}: penalizer must not be NULL")));
        let max_iter = args.i32(6).unwrap_or_else(|| null_not_allowed(format!("{what}: max_iter must not be NULL")));
        let max_iter = usize::try_from(max_iter).ok().filter(|m| *m > 0)
            .unwrap_or_else(|| super::error::invalid(format!("{what}: max_iter must be at least 1, got {max_iter}")));
        let mut check = || {
            pgrx::check_for_interrupts!();
        };
        let started = std::time::Instant::now();
        let rows = source::read(what, source, &columns, None, &mut check);
        let read = started.elapsed();
        if let Some(i) = rows.table.kinds.iter().position(|k| *k != Kind::Numeric) {
            raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("{what}: column \"{}\" of relation {} is not numeric", columns[i], rows.relation),
            );
        }
        let d = columns.len();
        let data = &rows.table.numeric;
        let bg = BgData::new(data.chunks_exact(d).map(|r| (r[0], r[1], r[2]))).or_raise(what);
        let grouped = started.elapsed();
        notice(format!(
            "{what}: read {} customers from {} in {:.0} ms ({} skipped for a NULL), {} distinct (frequency, recency, t) in {:.0} ms",
            bg.n, rows.relation, ms(read), rows.skipped, bg.patterns(), ms(grouped - read)
        ));
        let threads = super::gucs::threads();
        let fit = clv::fit_bgnbd(&bg, penalizer, max_iter, threads, &mut check).or_raise(what);
        let fitted = started.elapsed();
        notice(format!("{what}: BG/NBD fitted in {:.0} ms ({})", ms(fitted - grouped), effort(&fit)));
        let spend = if monetary.is_some() {
            let gg = GgData::new(data.chunks_exact(d).map(|r| (r[0], r[3]))).or_raise(what);
            let s = clv::fit_gamma_gamma(&gg, penalizer, max_iter, threads, &mut check).or_raise(what);
            notice(format!(
                "{what}: Gamma-Gamma fitted on {} repeat customers in {:.0} ms ({})",
                s.n,
                ms(started.elapsed() - fitted),
                effort(&s)
            ));
            Some(s)
        } else {
            None
        };
        let p = fit.params;
        let result = call.cache(|a| Composite::for_result(a, &FIT_RESULT));
        let opt = |x: Option<f64>| x.map(f64_datum);
        result.form(what, &[
            Some(Datum::from(fit.n as i64)),
            Some(Datum::from(rows.skipped as i64)),
            Some(f64_datum(p.r)),
            Some(f64_datum(p.alpha)),
            Some(f64_datum(p.a)),
            Some(f64_datum(p.b)),
            Some(f64_datum(fit.loglik)),
            Some(Datum::from(fit.iterations as i32)),
            Some(f64_datum(fit.gradient)),
            spend.as_ref().map(|s| Datum::from(s.n as i64)),
            opt(spend.as_ref().map(|s| s.params.p)),
            opt(spend.as_ref().map(|s| s.params.q)),
            opt(spend.as_ref().map(|s| s.params.v)),
            opt(spend.as_ref().map(|s| s.loglik)),
            spend.as_ref().map(|s| Datum::from(s.iterations as i32)),
            opt(spend.as_ref().map(|s| s.gradient)),
        ])
    }
}

// ---------------------------------------------------------------------------- models

/// A CLV model ready to predict with.
#[derive(Clone)]
struct Loaded {
    name: String,
    unit: Unit,
    bg: BgNbd,
    gg: Option<GammaGamma>,
}

impl Loaded {
    fn spend(&self, what: &str) -> &GammaGamma {
        self.gg.as_ref().unwrap_or_else(|| {
            PgError::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("{what}: CLV model \"{}\" has no spend model (it was fitted with monetary => NULL)", self.name),
            )
            .hint("Retrain it with a monetary column: rfm_clv_train(model, source, monetary => 'monetary').")
            .raise()
        })
    }
}

/// XX001 for a stored CLV model version that cannot be used.
fn damaged(what: &str, name: &str, problem: &str) -> ! {
    PgError::new(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{what}: CLV model \"{name}\" is damaged: {problem}"))
        .detail("Its row in rfm_clv_models does not form a usable model (edited by hand, or restored from an incompatible dump).")
        .hint(format!(
            "Retrain it with rfm_clv_train, or make an earlier version active with rfm_clv_activate('{}', version).",
            name.replace('\'', "''")
        ))
        .raise()
}

impl Loaded {
    /// A model from its unit and parameters (BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v, all
    /// three or none), checked; Err says what is wrong, for the caller's error.
    fn build(name: String, unit: Option<&str>, bg: [Option<f64>; 4], gg: [Option<f64>; 3]) -> Result<Loaded, String> {
        let unit = unit.and_then(|u| Unit::parse(u).ok()).ok_or("unit is not day or week")?;
        let [r, alpha, a, b] = bg;
        let need = |v: Option<f64>, key: &str| v.ok_or(format!("{key} is missing"));
        let bg = BgNbd { r: need(r, "r")?, alpha: need(alpha, "alpha")?, a: need(a, "a")?, b: need(b, "b")? };
        bg.check().map_err(|e| e.message)?;
        let gg = match gg {
            [None, None, None] => None,
            [Some(p), Some(q), Some(v)] => {
                let gg = GammaGamma { p, q, v };
                gg.check().map_err(|e| e.message)?;
                Some(gg)
            }
            _ => return Err("p, q and v must be all missing or all numbers".into()),
        };
        Ok(Loaded { name, unit, bg, gg })
    }
}

/// The active version of CLV model `name`, read from rfm_clv_models.
fn load_named(args: Args<'_>, name: &str) -> Loaded {
    load_versioned(args, name).0
}

/// The active version of CLV model `name` and its version number.
fn load_versioned(args: Args<'_>, name: &str) -> (Loaded, i32) {
    let what = args.name;
    if citus::on_worker() {
        citus::refuse_model_name(what, "CLV model", name, citus::CLV_MODEL_VALUE_FORM);
    }
    let schema = schema_prefix(args);
    // The parameters as float8 text (shortest exact form), parsed exactly: the same doubles
    // as an rfm_clv_model value read from the table.
    let text = select_text(
        &format!(
            "SELECT concat_ws(' ', m.unit, m.r, m.alpha, m.a, m.b, coalesce(m.p::text, '-'), coalesce(m.q::text, '-'),
                              coalesce(m.v::text, '-'), m.version)
             FROM {schema}.rfm_clv_models m WHERE m.model = $1 AND m.active"
        ),
        &[name],
    )
    .unwrap_or_else(|| {
        PgError::new(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("{what}: CLV model \"{name}\" does not exist (no active version)"))
            .hint("SELECT model, version FROM rfm_clv_models WHERE active lists them; rfm_clv_train creates one.")
            .raise()
    });
    let parts: Vec<&str> = text.split(' ').collect();
    if parts.len() != 9 {
        damaged(what, name, "its row does not have the expected columns");
    }
    let num = |i: usize, key: &str| match parts[i] {
        "-" => None,
        v => Some(v.parse::<f64>().unwrap_or_else(|_| damaged(what, name, &format!("{key} is not a number")))),
    };
    let bg = [num(1, "r"), num(2, "alpha"), num(3, "a"), num(4, "b")];
    let gg = [num(5, "p"), num(6, "q"), num(7, "v")];
    let version = parts[8].parse::<i32>().unwrap_or_else(|_| damaged(what, name, "the version is not a number"));
    (Loaded::build(name.to_string(), Some(parts[0]), bg, gg).unwrap_or_else(|m| damaged(what, name, &m)), version)
}

/// What `rfm_clv_model(name)` keeps at one call site for the current statement: the formed
/// values (whole tuple datums) by name, handed out as copies.
struct ClvValues {
    statement: Statement,
    result: Composite,
    values: FxHashMap<Box<[u8]>, Vec<u8>>,
}

/// `rfm_clv_model(name)`: the active version as an `rfm_clv_model` value, read once per
/// statement at each call site (a C function, so that the planner cannot inline it and run
/// a query per row). Argument 0 is text, or with `literal` an unknown-type literal (cstring).
fn model_value(call: &mut Call<'_>, literal: bool) -> Datum {
    let args = call.args();
    let key: &[u8] = if literal { args.cstring(0).map(|c| c.to_bytes()) } else { args.bytes(0) }
        .unwrap_or_else(|| null_not_allowed(format!("{}: model must not be NULL", args.name)));
    let ClvValues { statement, result, values } = call.cache(|a| ClvValues {
        statement: Statement::now(),
        result: Composite::for_result(a, &CLV_MODEL),
        values: FxHashMap::default(),
    });
    if statement.renewed() {
        values.clear();
    }
    let tuple = values.entry(key.into()).or_insert_with(|| {
        let name = String::from_utf8_lossy(key);
        let (m, version) = load_versioned(args, &name);
        let gg = m.gg.as_ref();
        let datum = result.form(
            args.name,
            &[
                Some(text_datum(&name)),
                Some(Datum::from(version)),
                Some(text_datum(m.unit.name())),
                Some(f64_datum(m.bg.r)),
                Some(f64_datum(m.bg.alpha)),
                Some(f64_datum(m.bg.a)),
                Some(f64_datum(m.bg.b)),
                gg.map(|g| f64_datum(g.p)),
                gg.map(|g| f64_datum(g.q)),
                gg.map(|g| f64_datum(g.v)),
            ],
        );
        // SAFETY: a freshly formed composite datum is a plain 4-byte-header varlena.
        unsafe { varlena_copy(datum) }
    });
    varlena_datum(tuple)
}

/// An `rfm_clv_model` value, checked (22023 for a value that is not a usable model).
fn from_row(what: &str, row: &Row<'_>) -> Loaded {
    let bg = [row.f64_attr(4), row.f64_attr(5), row.f64_attr(6), row.f64_attr(7)];
    let gg = [row.f64_attr(8), row.f64_attr(9), row.f64_attr(10)];
    Loaded::build(row.text_attr(1).unwrap_or_default(), row.text_attr(3).as_deref(), bg, gg).unwrap_or_else(|m| {
        PgError::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{what}: the rfm_clv_model value is not a usable model: {m}"))
            .hint("Read models with rfm_clv_model_of('name').")
            .raise()
    })
}

/// What a call site keeps: models by name for the current statement, the last value.
struct ClvCache {
    statement: Statement,
    named: FxHashMap<Box<[u8]>, Loaded>,
    value: Option<(Vec<u8>, Loaded)>,
    row_type: RowType,
}

/// The model of this call: argument 0 is a name, or with `by_value` an `rfm_clv_model`.
fn model<'c>(call: &'c mut Call<'_>, by_value: bool) -> &'c Loaded {
    let args = call.args();
    let cache = call.cache(|_| ClvCache {
        statement: Statement::now(),
        named: FxHashMap::default(),
        value: None,
        row_type: RowType::new("rfm_clv_model", &CLV_MODEL),
    });
    if by_value {
        let Some(row) = args.row(0, &mut cache.row_type) else { null_not_allowed(format!("{}: the model must not be NULL", args.name)) };
        if !matches!(&cache.value, Some((b, _)) if b.as_slice() == row.bytes()) {
            cache.value = None;
        }
        &cache.value.get_or_insert_with(|| (row.bytes().to_vec(), from_row(args.name, &row))).1
    } else {
        if cache.statement.renewed() {
            cache.named.clear();
        }
        let key = args.bytes(0).unwrap_or_else(|| null_not_allowed(format!("{}: model must not be NULL", args.name)));
        cache.named.entry(key.into()).or_insert_with(|| load_named(args, &String::from_utf8_lossy(key)))
    }
}

fn num(args: &Args<'_>, i: usize) -> f64 {
    // The functions are STRICT: a NULL argument never reaches them.
    args.f64(i).unwrap_or(f64::NAN)
}

fn expected_purchases(call: &mut Call<'_>, by_value: bool) -> Datum {
    let args = call.args();
    let m = model(call, by_value);
    let v = m.bg.expected_purchases(num(&args, 1), num(&args, 2), num(&args, 3), num(&args, 4)).or_raise(args.name);
    f64_datum(v)
}

fn p_alive(call: &mut Call<'_>, by_value: bool) -> Datum {
    let args = call.args();
    let m = model(call, by_value);
    f64_datum(m.bg.p_alive(num(&args, 1), num(&args, 2), num(&args, 3)).or_raise(args.name))
}

fn expected_spend(call: &mut Call<'_>, by_value: bool) -> Datum {
    let args = call.args();
    let m = model(call, by_value);
    f64_datum(m.spend(args.name).expected_spend(num(&args, 1), num(&args, 2)).or_raise(args.name))
}

fn value(call: &mut Call<'_>, by_value: bool) -> Datum {
    let args = call.args();
    let m = model(call, by_value);
    let months = args.i32(5).unwrap_or(12);
    let v = clv::clv(&m.bg, m.spend(args.name), m.unit, num(&args, 1), num(&args, 2), num(&args, 3), num(&args, 4), months, num(&args, 6))
        .or_raise(args.name);
    f64_datum(v)
}

pg_v1! {
    fn rfm_clv_expected_purchases(call: "rfm_clv_expected_purchases") -> Datum { expected_purchases(&mut call, false) }
    fn rfm_clv_expected_purchases_value(call: "rfm_clv_expected_purchases") -> Datum { expected_purchases(&mut call, true) }
    fn rfm_clv_p_alive(call: "rfm_clv_p_alive") -> Datum { p_alive(&mut call, false) }
    fn rfm_clv_p_alive_value(call: "rfm_clv_p_alive") -> Datum { p_alive(&mut call, true) }
    fn rfm_clv_expected_spend(call: "rfm_clv_expected_spend") -> Datum { expected_spend(&mut call, false) }
    fn rfm_clv_expected_spend_value(call: "rfm_clv_expected_spend") -> Datum { expected_spend(&mut call, true) }
    fn rfm_clv_value(call: "rfm_clv_value") -> Datum { value(&mut call, false) }
    fn rfm_clv_value_value(call: "rfm_clv_value") -> Datum { value(&mut call, true) }
    // rfm_clv_model(model text) and rfm_clv_model_of(model text) -> rfm_clv_model; STABLE
    fn rfm_clv_model(call: "rfm_clv_model") -> Datum { model_value(&mut call, false) }
    fn rfm_clv_model_of(call: "rfm_clv_model_of") -> Datum { model_value(&mut call, false) }
}
