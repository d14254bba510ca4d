//! Version-1 function-call plumbing. Every function body gets a [`Call`]: a handle on one
//! call, through which it reads arguments and aggregate states, keeps its per-call-site
//! cache and forms results. What the handle gives out lives no longer than the call (or,
//! for the cache, than the exclusive borrow of the handle); the raw `FunctionCallInfo`
//! never reaches safe code.

use std::any::TypeId;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::{PgSqlErrorCode, PgTupleDesc};

use super::error::{null_not_allowed, PgError};

/// Declares `extern "C"` version-1 functions named after the SQL symbols in `sql/`:
/// `fn rfm_trans(call: "rfm") -> Datum { ... }` gives the body a [`Call`] named `call`
/// whose messages start with the SQL name `rfm`. Rust panics and PostgreSQL errors inside
/// the body are caught and re-raised as `ERROR`.
macro_rules! pg_v1 {
    ($($(#[$attr:meta])* fn $name:ident($call:ident: $sql:literal) -> Datum $body:block)*) => {$(
        paste::paste! {
            $(#[$attr])*
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub unsafe extern "C-unwind" fn $name(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> pgrx::pg_sys::Datum {
                #[allow(unused_mut)]
                fn body(mut $call: $crate::pg::call::Call<'_>) -> pgrx::pg_sys::Datum $body
                // SAFETY: PostgreSQL's function manager calls this with the fcinfo of one
                // call, valid until it returns; the handle is dropped when `body` returns.
                unsafe {
                    pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(move || body($crate::pg::call::Call::new(fcinfo, $sql)))
                }
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

/// A read-only view of one call: arguments, aggregate states, the function's identity and
/// result type. `Copy`, so it can be used while the call's cache is borrowed.
#[derive(Clone, Copy)]
pub struct Args<'fc> {
    fcinfo: NonNull<pg_sys::FunctionCallInfoBaseData>,
    /// The SQL name of the function or aggregate, which starts every message.
    pub name: &'static str,
    _call: PhantomData<&'fc pg_sys::FunctionCallInfoBaseData>,
}

/// One call of a version-1 function. Derefs to [`Args`]; owns the per-call-site cache.
pub struct Call<'fc> {
    args: Args<'fc>,
}

impl<'fc> Deref for Call<'fc> {
    type Target = Args<'fc>;
    fn deref(&self) -> &Args<'fc> {
        &self.args
    }
}

fn internal(msg: String) -> ! {
    PgError::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, msg)
        .hint("The SQL declarations do not match the installed library: run ALTER EXTENSION pg_rfm UPDATE, or reinstall pg_rfm.")
        .raise()
}

impl<'fc> Call<'fc> {
    /// # Safety
    /// `fcinfo` is the `FunctionCallInfo` PostgreSQL passed to the running version-1
    /// function, and the handle (with everything it hands out) is dropped before that
    /// function returns.
    pub unsafe fn new(fcinfo: pg_sys::FunctionCallInfo, name: &'static str) -> Call<'fc> {
        let Some(fcinfo) = NonNull::new(fcinfo) else { internal(format!("pg_rfm: {name} called without call information")) };
        Call { args: Args { fcinfo, name, _call: PhantomData } }
    }

    /// The copyable view of this call, for use while the cache is borrowed.
    pub fn args(&self) -> Args<'fc> {
        self.args
    }

    /// The per-call-site cache (`flinfo->fn_extra`): made by `init` on the first call of a
    /// query at this call site, kept in `fn_mcxt` (one query) and dropped with it. Borrowing
    /// the handle mutably makes the returned reference the only one to the cache.
    pub fn cache<T: 'static>(&mut self, init: impl FnOnce(Args<'fc>) -> T) -> &mut T {
        /// A cached value with its type, so a slot is never read as another type.
        #[repr(C)]
        struct Slot<T> {
            type_id: TypeId,
            value: T,
        }
        let flinfo = self.flinfo();
        // SAFETY: flinfo is this call's FmgrInfo (valid for the call). fn_extra is either
        // null or a Slot written below for this call site; type_id sits at offset 0 of every
        // Slot (repr(C)), so it can be read before the type is known. `init` only gets
        // `Args`, which cannot reach fn_extra, and `&mut self` rules out a second live
        // reference, so the `&mut` returned is unique.
        unsafe {
            if (*flinfo).fn_extra.is_null() {
                let value = init(self.args);
                let slot = alloc_in((*flinfo).fn_mcxt, Slot { type_id: TypeId::of::<T>(), value });
                (*flinfo).fn_extra = slot as *mut c_void;
            }
            let slot = (*flinfo).fn_extra as *mut Slot<T>;
            if *(slot as *const TypeId) != TypeId::of::<T>() {
                internal(format!("pg_rfm: {}: the per-call cache holds another type", self.name));
            }
            &mut (*slot).value
        }
    }
}

impl<'fc> Args<'fc> {
    #[inline]
    fn raw(&self) -> *mut pg_sys::FunctionCallInfoBaseData {
        self.fcinfo.as_ptr()
    }

    fn flinfo(&self) -> *mut pg_sys::FmgrInfo {
        // SAFETY: fcinfo is valid for the call ('fc).
        let flinfo = unsafe { (*self.raw()).flinfo };
        if flinfo.is_null() {
            internal(format!("pg_rfm: {} called without function information", self.name));
        }
        flinfo
    }

    pub fn nargs(&self) -> usize {
        // SAFETY: fcinfo is valid for the call.
        unsafe { (*self.raw()).nargs.max(0) as usize }
    }

    #[inline]
    fn arg(&self, i: usize) -> pg_sys::NullableDatum {
        let n = self.nargs();
        if i >= n {
            internal(format!("pg_rfm: {} reads argument {} but was called with {n}", self.name, i + 1));
        }
        // SAFETY: i < nargs, and fcinfo holds nargs arguments.
        unsafe { *(*self.raw()).args.as_ptr().add(i) }
    }

    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        self.arg(i).isnull
    }

    #[inline]
    pub fn datum(&self, i: usize) -> Option<Datum> {
        let a = self.arg(i);
        (!a.isnull).then_some(a.value)
    }

    #[inline]
    pub fn f64(&self, i: usize) -> Option<f64> {
        self.datum(i).map(|d| f64::from_bits(d.value() as u64))
    }

    #[inline]
    pub fn i64(&self, i: usize) -> Option<i64> {
        self.datum(i).map(|d| d.value() as i64)
    }

    #[inline]
    pub fn i32(&self, i: usize) -> Option<i32> {
        self.datum(i).map(|d| d.value() as i32)
    }

    #[inline]
    pub fn bool(&self, i: usize) -> Option<bool> {
        self.datum(i).map(|d| d.value() != 0)
    }

    #[inline]
    pub fn oid(&self, i: usize) -> Option<Oid> {
        self.datum(i).map(|d| Oid::from(d.value() as u32))
    }

    /// The bytes of a `text` or `bytea` argument, detoasted. In-line values (the usual
    /// case, and the hot path of the order-line `rfm`) are read in place; others are
    /// detoasted into the current memory context, which outlives the call.
    #[inline]
    pub fn bytes(&self, i: usize) -> Option<&'fc [u8]> {
        // SAFETY: the SQL declarations give this argument a varlena type (text or bytea);
        // a non-null varlena argument is valid for the call.
        self.datum(i).map(|d| unsafe { varlena_bytes(d) })
    }

    /// A `cstring` argument (type input functions).
    pub fn cstring(&self, i: usize) -> Option<&'fc std::ffi::CStr> {
        // SAFETY: the SQL declarations give this argument the type cstring: a NUL-terminated
        // string valid for the call.
        self.datum(i).map(|d| unsafe { std::ffi::CStr::from_ptr(d.cast_mut_ptr::<std::ffi::c_char>()) })
    }

    /// The unread bytes of an `internal` StringInfo argument (type receive functions), which
    /// are marked as read.
    pub fn string_info(&self, i: usize) -> Option<Vec<u8>> {
        let d = self.datum(i)?;
        // SAFETY: the SQL declarations make this a receive function, whose argument is a
        // StringInfo with `cursor <= len`; the bytes are copied before the cursor moves.
        unsafe {
            let buf = d.cast_mut_ptr::<pg_sys::StringInfoData>();
            let (cursor, len) = ((*buf).cursor.max(0) as usize, (*buf).len.max(0) as usize);
            let bytes = if cursor < len {
                std::slice::from_raw_parts((*buf).data.add(cursor) as *const u8, len - cursor).to_vec()
            } else {
                Vec::new()
            };
            (*buf).cursor = (*buf).len;
            Some(bytes)
        }
    }

    pub fn text(&self, i: usize) -> Option<String> {
        self.bytes(i).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A `text[]` argument; NULL elements are an error naming `what`.
    pub fn text_array(&self, i: usize, what: &str) -> Option<Vec<String>> {
        let d = self.datum(i)?;
        // SAFETY: the SQL declarations give this argument the type text[].
        let arr = unsafe { <pgrx::Array<String> as pgrx::FromDatum>::from_datum(d, false) }?;
        Some(
            arr.iter()
                .map(|x| x.unwrap_or_else(|| null_not_allowed(format!("{}: {what} must not contain NULL elements", self.name))))
                .collect(),
        )
    }

    /// A `float8[]` argument, NULL elements kept as `None`.
    pub fn f64_array(&self, i: usize) -> Option<Vec<Option<f64>>> {
        let d = self.datum(i)?;
        // SAFETY: the SQL declarations give this argument the type float8[].
        let arr = unsafe { <pgrx::Array<f64> as pgrx::FromDatum>::from_datum(d, false) }?;
        Some(arr.iter().collect())
    }

    /// A `jsonb` argument as a serde value.
    pub fn jsonb(&self, i: usize) -> Option<serde_json::Value> {
        let d = self.datum(i)?;
        // SAFETY: the SQL declarations give this argument the type jsonb.
        unsafe { <pgrx::JsonB as pgrx::FromDatum>::from_datum(d, false) }.map(|j| j.0)
    }

    /// Sets the result to NULL; return what this returns.
    pub fn return_null(&self) -> Datum {
        // SAFETY: fcinfo is valid for the call; isnull is the call's result flag.
        unsafe { (*self.raw()).isnull = true };
        Datum::from(0usize)
    }

    /// OID of the running function (pg_proc).
    pub fn fn_oid(&self) -> Oid {
        // SAFETY: flinfo is valid for the call.
        unsafe { (*self.flinfo()).fn_oid }
    }

    /// The memory context of the per-call-site cache: lives for the query.
    pub fn fn_mcxt(&self) -> pg_sys::MemoryContext {
        // SAFETY: flinfo is valid for the call.
        unsafe { (*self.flinfo()).fn_mcxt }
    }

    /// The aggregate's own memory context; an error outside an aggregate.
    pub fn agg_context(&self) -> pg_sys::MemoryContext {
        let mut ctx: pg_sys::MemoryContext = std::ptr::null_mut();
        // SAFETY: fcinfo is valid for the call.
        if unsafe { pg_sys::AggCheckCallContext(self.raw(), &mut ctx) } == 0 || ctx.is_null() {
            PgError::new(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, format!("{}: called in non-aggregate context", self.name))
                .hint("This is a support function of an aggregate; call the aggregate instead.")
                .raise();
        }
        ctx
    }

    /// The transition state in argument `i` (an `internal`), or `None` when it is NULL.
    ///
    /// # Safety
    /// Argument `i` is an `internal` state made by this module's aggregate support
    /// functions as a `T` in the aggregate's memory context, and no other reference to
    /// that state is live during the call (PostgreSQL passes each state to one call at a
    /// time; a combine function gets two different states).
    #[inline]
    pub unsafe fn state<T>(&self, i: usize) -> Option<&'fc mut T> {
        // SAFETY: as the caller promises.
        self.datum(i).map(|d| unsafe { &mut *(d.cast_mut_ptr::<T>()) })
    }

    /// A new state in the aggregate's memory context, dropped when that context is reset.
    pub fn new_state<T>(&self, value: T) -> &'fc mut T {
        let ctx = self.agg_context();
        // SAFETY: ctx is the aggregate's context, which outlives the call; the memory is
        // fresh, so the reference is unique.
        unsafe { &mut *alloc_in(ctx, value) }
    }

    /// The state in argument `i`, or a new one made by `make` on the first row of a group.
    ///
    /// # Safety
    /// As for [`Args::state`].
    #[inline]
    pub unsafe fn state_or_new<T>(&self, i: usize, make: impl FnOnce() -> T) -> &'fc mut T {
        // SAFETY: as the caller promises.
        match unsafe { self.state::<T>(i) } {
            Some(s) => s,
            None => self.new_state(make()),
        }
    }

    /// A composite argument (NULL: `None`), checked against `ty` as [`RowType`] does.
    pub fn row(&self, i: usize, ty: &mut RowType) -> Option<Row<'fc>> {
        let d = self.datum(i)?;
        // SAFETY: the SQL declarations give this argument a composite type; detoasting
        // a composite datum gives its tuple header, valid for the call.
        let header = unsafe { pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as pg_sys::HeapTupleHeader };
        let row = Row { header, _call: PhantomData };
        ty.check(self.name, &row);
        Some(row)
    }
}

/// Moves `value` into memory owned by `ctx`; it is dropped when `ctx` is reset or deleted.
/// Allocating with palloc keeps the state visible to PostgreSQL's memory accounting.
///
/// # Safety
/// `ctx` is a valid memory context, and the pointer is not used after `ctx` is reset.
pub unsafe fn alloc_in<T>(ctx: pg_sys::MemoryContext, value: T) -> *mut T {
    const { assert!(std::mem::align_of::<T>() <= 8, "palloc gives 8-byte alignment") };
    unsafe extern "C-unwind" fn drop_it<T>(p: *mut c_void) {
        // SAFETY: registered once, for the value written below, and run once by PostgreSQL.
        unsafe { std::ptr::drop_in_place(p as *mut T) }
    }
    // SAFETY: ctx is valid (caller); the allocation is large enough and 8-byte aligned.
    unsafe {
        let p = pg_sys::MemoryContextAlloc(ctx, std::mem::size_of::<T>().max(1)) as *mut T;
        p.write(value);
        if std::mem::needs_drop::<T>() {
            let cb =
                pg_sys::MemoryContextAlloc(ctx, std::mem::size_of::<pg_sys::MemoryContextCallback>()) as *mut pg_sys::MemoryContextCallback;
            (*cb).func = Some(drop_it::<T>);
            (*cb).arg = p as *mut c_void;
            pg_sys::MemoryContextRegisterResetCallback(ctx, cb);
        }
        p
    }
}

/// The datum of an aggregate state, to return from a support function.
/// The bytes of a `text` or `bytea` datum. In-line values are read in place; compressed or
/// out-of-line ones are detoasted into the current memory context.
///
/// # Safety
/// `d` must be a non-null varlena datum, valid (with the current memory context) for `'a`.
#[inline]
pub unsafe fn varlena_bytes<'a>(d: Datum) -> &'a [u8] {
    use pgrx::varlena::{varatt_is_1b_e, varatt_is_4b_c, varlena_to_byte_slice};
    let v = d.cast_mut_ptr::<pg_sys::varlena>();
    if varatt_is_1b_e(v) || varatt_is_4b_c(v) {
        varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(v))
    } else {
        varlena_to_byte_slice(v)
    }
}

/// The whole of a varlena datum (header included), for keeping a formed value beyond the
/// call; `varlena_datum` gives a copy of it back.
///
/// # Safety
/// `d` must be a non-null, in-line, uncompressed varlena with a 4-byte header (a freshly
/// formed composite or array datum), valid for the call.
pub unsafe fn varlena_copy(d: Datum) -> Vec<u8> {
    // SAFETY: as the caller promises; VARSIZE covers the header and the data.
    unsafe {
        let p = d.cast_mut_ptr::<u8>();
        let len = pgrx::varlena::varsize_4b(p as *const pg_sys::varlena);
        std::slice::from_raw_parts(p, len).to_vec()
    }
}

/// A palloc'd copy of a varlena kept by `varlena_copy`, in the current memory context.
pub fn varlena_datum(bytes: &[u8]) -> Datum {
    // SAFETY: palloc gives at least bytes.len() bytes (or raises); the bytes are a whole
    // varlena, header included, so the copy is one too.
    unsafe {
        let p = pg_sys::palloc(bytes.len().max(1)) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        Datum::from(p)
    }
}

pub fn state_datum<T>(s: &mut T) -> Datum {
    Datum::from(s as *mut T)
}

#[inline]
pub fn f64_datum(x: f64) -> Datum {
    Datum::from(x.to_bits())
}

pub fn text_datum(s: &str) -> Datum {
    Datum::from(pgrx::varlena::rust_str_to_text_p(s).into_pg())
}

/// A one-dimensional `text[]` of the items (None: NULL elements), built in the current memory
/// context without a Rust `String` per element.
pub fn text_array_datum<'a>(items: impl ExactSizeIterator<Item = Option<&'a [u8]>>) -> Datum {
    let n = items.len();
    let mut elems: Vec<Datum> = Vec::with_capacity(n);
    let mut nulls: Vec<bool> = Vec::with_capacity(n);
    for it in items {
        match it {
            // SAFETY: cstring_to_text_with_len copies len bytes into a palloc'd text.
            Some(b) => {
                elems.push(Datum::from(unsafe { pg_sys::cstring_to_text_with_len(b.as_ptr() as *const std::ffi::c_char, b.len() as i32) }))
            }
            None => elems.push(Datum::from(0usize)),
        }
        nulls.push(it.is_none());
    }
    let (mut dims, mut lbs) = ([n as i32], [1i32]);
    // SAFETY: elems and nulls hold n entries each; text is a varlena (len -1, by reference,
    // 'i' alignment); the array is copied into the current memory context.
    unsafe {
        Datum::from(pg_sys::construct_md_array(
            elems.as_mut_ptr(),
            nulls.as_mut_ptr(),
            1,
            dims.as_mut_ptr(),
            lbs.as_mut_ptr(),
            pg_sys::TEXTOID,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        ))
    }
}

pub fn bytea_datum(b: &[u8]) -> Datum {
    Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(b).into_pg())
}

pub fn f64_array_datum(v: &[f64]) -> Datum {
    pgrx::IntoDatum::into_datum(v.to_vec()).unwrap_or(Datum::from(0usize))
}

/// Names of the types pg_rfm builds values of, for messages.
fn type_name(oid: Oid) -> String {
    // SAFETY: format_type_be accepts any OID (unknown ones print as "???").
    unsafe {
        let p = pg_sys::format_type_be(oid);
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Compares a tuple descriptor with the attribute types the library works with; the
/// first difference, in words, or `None`.
fn mismatch(td: pg_sys::TupleDesc, types: &[Oid]) -> Option<String> {
    // SAFETY: td is a valid tuple descriptor (caller); it is not released here.
    let desc = unsafe { PgTupleDesc::from_pg_unchecked(td) };
    let want: Vec<String> = types.iter().map(|t| type_name(*t)).collect();
    let got: Vec<String> = desc.iter().map(|a| if a.is_dropped() { "(dropped)".to_string() } else { type_name(a.atttypid) }).collect();
    (got != want).then(|| format!("has the attributes ({}); pg_rfm expects ({})", got.join(", "), want.join(", ")))
}

/// 42804 for SQL objects that differ from what the library builds or reads.
fn differs(message: String, detail: String) -> ! {
    PgError::new(PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, message)
        .detail(detail)
        .hint("The extension's SQL objects and the installed library differ: run ALTER EXTENSION pg_rfm UPDATE, or reinstall pg_rfm.")
        .raise()
}

/// The composite type a function returns, checked once against what the library forms.
pub struct Composite {
    td: pg_sys::TupleDesc,
    natts: usize,
}

impl Composite {
    /// The function's declared composite result type (blessed, copied into `fn_mcxt`),
    /// which must have exactly the attribute types `types`; an ERROR otherwise. Keep it in
    /// the call's cache: it lives as long as `fn_mcxt`.
    pub fn for_result(args: Args<'_>, types: &[Oid]) -> Composite {
        let mut td: pg_sys::TupleDesc = std::ptr::null_mut();
        // SAFETY: fcinfo and flinfo are valid for the call; the descriptor is copied into
        // fn_mcxt, which outlives every use of it (it lives in the same call site's cache).
        let kind = unsafe {
            let old = pg_sys::MemoryContextSwitchTo(args.fn_mcxt());
            let kind = pg_sys::get_call_result_type(args.raw(), std::ptr::null_mut(), &mut td);
            if kind == pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE && !td.is_null() {
                td = pg_sys::BlessTupleDesc(td);
            }
            pg_sys::MemoryContextSwitchTo(old);
            kind
        };
        if kind != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || td.is_null() {
            PgError::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("{}: function returning a composite type called in a context that cannot accept it", args.name),
            )
            .raise();
        }
        if let Some(m) = mismatch(td, types) {
            differs(format!("{}: the declared result type does not match the library", args.name), format!("The result type {m}."));
        }
        Composite { td, natts: types.len() }
    }

    /// Forms a composite datum from `values` (None = NULL) in the current memory context.
    /// The number of values must be the number of attributes.
    pub fn form(&self, what: &str, values: &[Option<Datum>]) -> Datum {
        if values.len() != self.natts {
            PgError::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("pg_rfm: {what} built {} values for a result of {} attributes", values.len(), self.natts),
            )
            .raise();
        }
        const STACK: usize = 16;
        let mut vals = [Datum::from(0usize); STACK];
        let mut nulls = [false; STACK];
        let (mut heap_vals, mut heap_nulls) = (Vec::new(), Vec::new());
        let (vals, nulls): (&mut [Datum], &mut [bool]) = if values.len() <= STACK {
            (&mut vals[..values.len()], &mut nulls[..values.len()])
        } else {
            heap_vals.resize(values.len(), Datum::from(0usize));
            heap_nulls.resize(values.len(), false);
            (&mut heap_vals, &mut heap_nulls)
        };
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(d) => vals[i] = *d,
                None => nulls[i] = true,
            }
        }
        // SAFETY: td is the blessed descriptor of this call site's result type (valid while
        // fn_mcxt lives), with exactly `natts` attributes, and vals/nulls have that length.
        unsafe {
            let tuple = pg_sys::heap_form_tuple(self.td, vals.as_mut_ptr(), nulls.as_mut_ptr());
            pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
        }
    }
}

/// Returns `rows` as the result set of a set-returning function (materialize mode). The
/// columns must have the types `types`, and every row one value per column.
pub fn materialize(args: Args<'_>, types: &[Oid], rows: &[Vec<Option<Datum>>]) -> Datum {
    // SAFETY: fcinfo is valid for the call; InitMaterializedSRF checks that the caller
    // accepts a set and sets up rsinfo->setResult and setDesc.
    let (store, desc) = unsafe {
        pg_sys::InitMaterializedSRF(args.raw(), 0);
        let rsinfo = (*args.raw()).resultinfo as *mut pg_sys::ReturnSetInfo;
        ((*rsinfo).setResult, (*rsinfo).setDesc)
    };
    if let Some(m) = mismatch(desc, types) {
        differs(format!("{}: the declared result columns do not match the library", args.name), format!("The result row type {m}."));
    }
    for row in rows {
        if row.len() != types.len() {
            PgError::new(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("pg_rfm: {} built {} values for a row of {} columns", args.name, row.len(), types.len()),
            )
            .raise();
        }
        let mut vals: Vec<Datum> = row.iter().map(|v| v.unwrap_or(Datum::from(0usize))).collect();
        let mut nulls: Vec<bool> = row.iter().map(Option::is_none).collect();
        // SAFETY: store and desc come from InitMaterializedSRF; desc has exactly
        // types.len() attributes (checked above), the length of vals and nulls.
        unsafe { pg_sys::tuplestore_putvalues(store, desc, vals.as_mut_ptr(), nulls.as_mut_ptr()) };
    }
    Datum::from(0usize)
}

/// What a composite argument must look like, and the last row type found to match (so
/// the check runs once per call site and type, not once per row).
pub struct RowType {
    what: &'static str,
    types: &'static [Oid],
    verified: Option<(Oid, i32)>,
}

impl RowType {
    /// `what` names the argument's SQL type in messages (`rfm_breaks`).
    pub const fn new(what: &'static str, types: &'static [Oid]) -> RowType {
        RowType { what, types, verified: None }
    }

    fn check(&mut self, fname: &str, row: &Row<'_>) {
        // SAFETY: header is a valid detoasted composite datum.
        let key = unsafe { ((*row.header).t_choice.t_datum.datum_typeid, (*row.header).t_choice.t_datum.datum_typmod) };
        if self.verified == Some(key) {
            return;
        }
        // SAFETY: lookup_rowtype_tupdesc returns a reference-counted descriptor of a row
        // type (or raises); PgTupleDesc::from_pg releases it when dropped.
        let desc = unsafe { PgTupleDesc::from_pg(pg_sys::lookup_rowtype_tupdesc(key.0, key.1)) };
        if let Some(m) = mismatch(desc.as_ptr(), self.types) {
            differs(
                format!("{fname}: the {} argument does not have the type pg_rfm expects", self.what),
                format!("The argument's row type {m}."),
            );
        }
        self.verified = Some(key);
    }
}

/// A composite argument whose type was checked by [`RowType`]; `attr(n)` reads its 1-based
/// attribute `n`.
pub struct Row<'fc> {
    header: pg_sys::HeapTupleHeader,
    _call: PhantomData<&'fc pg_sys::HeapTupleHeaderData>,
}

impl Row<'_> {
    fn attr(&self, n: i16) -> Option<Datum> {
        let mut isnull = false;
        // SAFETY: header is a valid composite datum whose type has at least n attributes
        // (checked by RowType against the attribute list the caller reads).
        let d = unsafe { pg_sys::GetAttributeByNum(self.header, n, &mut isnull) };
        (!isnull).then_some(d)
    }

    pub fn f64_attr(&self, n: i16) -> Option<f64> {
        self.attr(n).map(|d| f64::from_bits(d.value() as u64))
    }

    /// A `text` attribute (checked to be one by RowType).
    pub fn text_attr(&self, n: i16) -> Option<String> {
        // SAFETY: RowType checked that attribute n is text; the datum lives for the call.
        self.attr(n).map(|d| String::from_utf8_lossy(unsafe { varlena_bytes(d) }).into_owned())
    }

    pub fn i32_attr(&self, n: i16) -> Option<i32> {
        self.attr(n).map(|d| d.value() as i32)
    }

    /// A `float8[]` attribute (checked to be one by RowType); NULL elements are an error
    /// naming `what`.
    pub fn f64_array_attr(&self, n: i16, what: &str) -> Option<Vec<f64>> {
        let d = self.attr(n)?;
        // SAFETY: RowType checked that attribute n is float8[].
        let arr = unsafe { <pgrx::Array<f64> as pgrx::FromDatum>::from_datum(d, false) }?;
        Some(arr.iter().map(|x| x.unwrap_or_else(|| null_not_allowed(format!("{what} must not contain NULL elements")))).collect())
    }

    /// The raw bytes of the composite value, for cheap "same as last row?" checks.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: a detoasted composite datum is a 4-byte-header varlena.
        unsafe { pgrx::varlena::varlena_to_byte_slice(self.header as *const pg_sys::varlena) }
    }
}
