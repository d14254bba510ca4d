//! Version-1 function-call plumbing: argument access, aggregate states, per-call caches,
//! composite results.

use std::ffi::{c_void, CStr};

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::PgSqlErrorCode;

use super::error::raise;

/// Declares `extern "C"` version-1 functions named after the SQL symbols in `sql/`.
/// Rust panics and Postgres errors inside the body are caught and re-raised as `ERROR`.
macro_rules! pg_v1 {
    ($(fn $name:ident($fcinfo:ident) -> Datum $body:block)*) => {$(
        paste::paste! {
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub unsafe extern "C-unwind" fn $name($fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
                #[allow(unused_unsafe)]
                unsafe { pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(move || $body) }
            }
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn [<pg_finfo_ $name>]() -> &'static pgrx::pg_sys::Pg_finfo_record {
                const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }
        }
    )*};
}

#[inline]
fn arg(fcinfo: FunctionCallInfo, i: usize) -> pg_sys::NullableDatum {
    // SAFETY: Postgres hands every V1 function a valid fcinfo with `nargs` arguments;
    // each caller's SQL declaration fixes how many there are.
    unsafe {
        let args = std::slice::from_raw_parts((*fcinfo).args.as_ptr(), (*fcinfo).nargs as usize);
        args[i]
    }
}

#[inline]
pub fn nargs(fcinfo: FunctionCallInfo) -> usize {
    unsafe { (*fcinfo).nargs as usize }
}

#[inline]
pub fn is_null(fcinfo: FunctionCallInfo, i: usize) -> bool {
    arg(fcinfo, i).isnull
}

#[inline]
pub fn datum(fcinfo: FunctionCallInfo, i: usize) -> Option<Datum> {
    let a = arg(fcinfo, i);
    (!a.isnull).then_some(a.value)
}

#[inline]
pub fn f64_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<f64> {
    datum(fcinfo, i).map(|d| f64::from_bits(d.value() as u64))
}

#[inline]
pub fn i64_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<i64> {
    datum(fcinfo, i).map(|d| d.value() as i64)
}

#[inline]
pub fn i32_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<i32> {
    datum(fcinfo, i).map(|d| d.value() as i32)
}

/// The bytes of a `text` or `bytea` argument, detoasted (short values are not copied).
/// Valid until the current memory context is reset. In-line values (the usual case, and
/// the hot path of the order-line `rfm`) are read without calling into Postgres.
#[inline]
pub fn bytes_arg<'a>(fcinfo: FunctionCallInfo, i: usize) -> Option<&'a [u8]> {
    use pgrx::varlena::{varatt_is_1b_e, varatt_is_4b_c, varlena_to_byte_slice};
    datum(fcinfo, i).map(|d| unsafe {
        let v = d.cast_mut_ptr::<pg_sys::varlena>();
        if varatt_is_1b_e(v) || varatt_is_4b_c(v) {
            varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(v))
        } else {
            varlena_to_byte_slice(v)
        }
    })
}

#[inline]
pub fn f64_datum(x: f64) -> Datum {
    Datum::from(x.to_bits())
}

pub fn text_datum(s: &str) -> Datum {
    Datum::from(pgrx::varlena::rust_str_to_text_p(s).into_pg())
}

pub fn bytea_datum(b: &[u8]) -> Datum {
    Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(b).into_pg())
}

pub fn return_null(fcinfo: FunctionCallInfo) -> Datum {
    unsafe { (*fcinfo).isnull = true };
    Datum::from(0usize)
}

/// Moves `value` into memory owned by `ctx`; it is dropped when `ctx` is reset or deleted.
/// Allocating with palloc keeps the state visible to Postgres' memory accounting.
pub fn alloc_in<T>(ctx: pg_sys::MemoryContext, value: T) -> *mut T {
    const { assert!(std::mem::align_of::<T>() <= 8, "palloc gives 8-byte alignment") };
    unsafe extern "C-unwind" fn drop_it<T>(p: *mut c_void) {
        // SAFETY: registered once, for the value written below, and run once by Postgres.
        unsafe { std::ptr::drop_in_place(p as *mut T) }
    }
    unsafe {
        let p = pg_sys::MemoryContextAlloc(ctx, std::mem::size_of::<T>().max(1)) as *mut T;
        p.write(value);
        if std::mem::needs_drop::<T>() {
            let cb = pg_sys::MemoryContextAlloc(ctx, std::mem::size_of::<pg_sys::MemoryContextCallback>())
                as *mut pg_sys::MemoryContextCallback;
            (*cb).func = Some(drop_it::<T>);
            (*cb).arg = p as *mut c_void;
            pg_sys::MemoryContextRegisterResetCallback(ctx, cb);
        }
        p
    }
}

/// The aggregate's own memory context; raises an error when called outside an aggregate.
pub fn agg_context(fcinfo: FunctionCallInfo, name: &str) -> pg_sys::MemoryContext {
    let mut ctx: pg_sys::MemoryContext = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 || ctx.is_null() {
        raise(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, format!("{name} called in non-aggregate context"));
    }
    ctx
}

/// The transition state in argument `i`, created in the aggregate context by `make` on the
/// first row of a group.
pub fn agg_state<'a, T>(fcinfo: FunctionCallInfo, i: usize, name: &str, make: impl FnOnce() -> T) -> &'a mut T {
    match datum(fcinfo, i) {
        Some(d) => unsafe { &mut *(d.cast_mut_ptr::<T>()) },
        None => unsafe { &mut *alloc_in(agg_context(fcinfo, name), make()) },
    }
}

/// A state pointer argument that may be NULL (combine functions).
pub fn state_arg<'a, T>(fcinfo: FunctionCallInfo, i: usize) -> Option<&'a mut T> {
    datum(fcinfo, i).map(|d| unsafe { &mut *(d.cast_mut_ptr::<T>()) })
}

pub fn state_datum<T>(s: &mut T) -> Datum {
    Datum::from(s as *mut T)
}

/// A per-call-site cache in `flinfo->fn_extra`, living in `fn_mcxt` (one query).
pub fn fn_cache<'a, T>(fcinfo: FunctionCallInfo, init: impl FnOnce() -> T) -> &'a mut T {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if (*flinfo).fn_extra.is_null() {
            let value = init();
            (*flinfo).fn_extra = alloc_in((*flinfo).fn_mcxt, value) as *mut c_void;
        }
        &mut *((*flinfo).fn_extra as *mut T)
    }
}

/// The blessed tuple descriptor of the function's declared composite result type,
/// copied into the function's long-lived context.
pub fn result_tupdesc(fcinfo: FunctionCallInfo) -> pg_sys::TupleDesc {
    unsafe {
        let old = pg_sys::MemoryContextSwitchTo((*(*fcinfo).flinfo).fn_mcxt);
        let mut td: pg_sys::TupleDesc = std::ptr::null_mut();
        let kind = pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut td);
        let td = if kind == pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE && !td.is_null() {
            pg_sys::BlessTupleDesc(td)
        } else {
            std::ptr::null_mut()
        };
        pg_sys::MemoryContextSwitchTo(old);
        if td.is_null() {
            raise(PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, "function returning a composite type called in a context that cannot accept it");
        }
        td
    }
}

/// Forms a composite datum from `values` (None = NULL) in the current memory context.
/// (Up to 16 attributes, on the stack: final functions call this once per group.)
pub fn composite(td: pg_sys::TupleDesc, values: &[Option<Datum>]) -> Datum {
    const MAX: usize = 16;
    let n = values.len().min(MAX);
    let mut vals = [Datum::from(0usize); MAX];
    let mut nulls = [false; MAX];
    for (i, v) in values.iter().take(n).enumerate() {
        match v {
            Some(d) => vals[i] = *d,
            None => nulls[i] = true,
        }
    }
    unsafe {
        let tuple = pg_sys::heap_form_tuple(td, vals.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
    }
}

/// A composite argument: `attr(n)` reads its 1-based attribute `n`.
pub struct Row {
    header: pg_sys::HeapTupleHeader,
}

impl Row {
    pub fn arg(fcinfo: FunctionCallInfo, i: usize) -> Option<Row> {
        datum(fcinfo, i).map(|d| Row {
            header: unsafe { pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as pg_sys::HeapTupleHeader },
        })
    }

    pub fn attr(&self, n: i16) -> Option<Datum> {
        let mut isnull = false;
        let d = unsafe { pg_sys::GetAttributeByNum(self.header, n, &mut isnull) };
        (!isnull).then_some(d)
    }

    pub fn f64_attr(&self, n: i16) -> Option<f64> {
        self.attr(n).map(|d| f64::from_bits(d.value() as u64))
    }

    /// The raw bytes of the composite value, for cheap "same as last row?" checks.
    pub fn bytes(&self) -> &[u8] {
        unsafe { pgrx::varlena::varlena_to_byte_slice(self.header as *const pg_sys::varlena) }
    }
}

/// A `float8[]` datum as a vector; NULL elements are reported as an error naming `what`.
pub fn f64_array(d: Datum, what: &str) -> Vec<f64> {
    let arr = unsafe { <pgrx::Array<f64> as pgrx::FromDatum>::from_datum(d, false) };
    let Some(arr) = arr else { return Vec::new() };
    arr.iter()
        .map(|x| x.unwrap_or_else(|| super::error::null_not_allowed(format!("{what} must not contain NULL elements"))))
        .collect()
}

pub fn f64_array_datum(v: &[f64]) -> Datum {
    pgrx::IntoDatum::into_datum(v.to_vec()).unwrap_or(Datum::from(0usize))
}

/// Name of the schema a function lives in: the extension's schema.
pub fn own_schema(fcinfo: FunctionCallInfo) -> String {
    unsafe {
        let nsp = pg_sys::get_func_namespace((*(*fcinfo).flinfo).fn_oid);
        let name = pg_sys::get_namespace_name(nsp);
        if name.is_null() {
            raise(PgSqlErrorCode::ERRCODE_INVALID_SCHEMA_NAME, "pg_rfm: the extension's schema no longer exists");
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// `quote_ident` for building SQL text.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn text_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<String> {
    bytes_arg(fcinfo, i).map(|b| String::from_utf8_lossy(b).into_owned())
}

#[inline]
pub fn bool_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<bool> {
    datum(fcinfo, i).map(|d| d.value() != 0)
}

#[inline]
pub fn oid_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<pg_sys::Oid> {
    datum(fcinfo, i).map(|d| pg_sys::Oid::from(d.value() as u32))
}

/// A `text[]` argument; NULL elements are an error naming `what`.
pub fn text_array_arg(fcinfo: FunctionCallInfo, i: usize, what: &str) -> Option<Vec<String>> {
    let d = datum(fcinfo, i)?;
    let arr = unsafe { <pgrx::Array<String> as pgrx::FromDatum>::from_datum(d, false) }?;
    Some(
        arr.iter()
            .map(|x| x.unwrap_or_else(|| super::error::null_not_allowed(format!("{what} must not contain NULL elements"))))
            .collect(),
    )
}

/// A `float8[]` argument with NULL elements kept as `None`.
pub fn f64_array_arg(fcinfo: FunctionCallInfo, i: usize) -> Option<Vec<Option<f64>>> {
    let d = datum(fcinfo, i)?;
    let arr = unsafe { <pgrx::Array<f64> as pgrx::FromDatum>::from_datum(d, false) }?;
    Some(arr.iter().collect())
}

/// Returns `rows` as the result set of a set-returning function (materialize mode).
pub fn materialize(fcinfo: FunctionCallInfo, rows: &[Vec<Option<Datum>>]) -> Datum {
    unsafe {
        pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
        for row in rows {
            let mut vals: Vec<Datum> = row.iter().map(|v| v.unwrap_or(Datum::from(0usize))).collect();
            let mut nulls: Vec<bool> = row.iter().map(Option::is_none).collect();
            pg_sys::tuplestore_putvalues((*rsinfo).setResult, (*rsinfo).setDesc, vals.as_mut_ptr(), nulls.as_mut_ptr());
        }
    }
    Datum::from(0usize)
}
