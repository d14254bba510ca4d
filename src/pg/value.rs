//! The `rfm_model` type: a model version passed as a value (its text form is the model
//! document), `rfm_model(name [, version])` to read one from the tables, and accessors.

use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode;
use rustc_hash::FxHashMap;

use super::assign::ValueCache;
use super::call::*;
use super::error::{null_not_allowed, OrRaise, PgError};
use super::spi::Statement;
use super::store;
use crate::core::document::Document;
use crate::core::value::ModelValue;

/// 22P02 for text that is not a model document, XX001 for a document whose model is
/// inconsistent.
fn from_text(text: &str) -> Vec<u8> {
    let invalid = |msg: String| -> ! {
        PgError::new(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, format!("rfm_model: invalid input: {msg}"))
            .hint("The text form of an rfm_model is a model document, as rfm_model_export or rfm_model(name)::text write it.")
            .raise()
    };
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        // `rfm_model('shop')` with a quoted literal is parsed as a cast of the text to this type
        // (PostgreSQL's rule for typename('literal')), which lands here with a model name.
        let name = trimmed.replace('\'', "''");
        PgError::new(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, format!("rfm_model: invalid input: \"{trimmed}\" is not a model document"))
            .detail("rfm_model('...') with a quoted literal is read by PostgreSQL as a cast of that text to the type rfm_model, not as a call of rfm_model(name).")
            .hint(format!("To read a model as a value, call rfm_model_of('{name}')."))
            .raise();
    }
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| invalid(format!("not JSON ({e})")));
    let doc = Document::parse(value).unwrap_or_else(|e| invalid(e));
    store::check_document("rfm_model", &doc);
    let version = doc.version.unwrap_or(0);
    let version = i32::try_from(version).unwrap_or_else(|_| invalid(format!("version {version} is out of range for integer")));
    ModelValue { name: doc.model.clone(), version, model: doc.model() }.encode()
}

/// A palloc'd C string for an output function.
pub(super) fn cstring_datum(s: &str) -> Datum {
    let s = std::ffi::CString::new(s.replace('\0', "")).unwrap_or_default();
    // SAFETY: pstrdup copies the NUL-terminated string into the current memory context.
    Datum::from(unsafe { pg_sys::pstrdup(s.as_ptr()) })
}

/// What `rfm_model(name [, version])` keeps for a statement at one call site: encoded
/// values by name and version.
struct Encoded {
    statement: Statement,
    values: FxHashMap<(String, Option<i32>), Vec<u8>>,
}

pg_v1! {
    // rfm_model_in(cstring) -> rfm_model
    fn rfm_model_in(call: "rfm_model") -> Datum {
        let Some(text) = call.cstring(0) else { return call.return_null() };
        bytea_datum(&from_text(&String::from_utf8_lossy(text.to_bytes())))
    }

    // rfm_model_out(rfm_model) -> cstring
    fn rfm_model_out(call: "rfm_model") -> Datum {
        let Some(bytes) = call.bytes(0) else { return call.return_null() };
        let value = ModelValue::decode(bytes).or_raise(call.name);
        cstring_datum(&value.to_json().to_string())
    }

    // rfm_model_recv(internal) -> rfm_model
    fn rfm_model_recv(call: "rfm_model") -> Datum {
        let Some(bytes) = call.string_info(0) else { return call.return_null() };
        // The binary form is the value itself: check it before it is stored anywhere.
        ModelValue::decode(&bytes).or_raise(call.name);
        bytea_datum(&bytes)
    }

    // rfm_model_send(rfm_model) -> bytea
    fn rfm_model_send(call: "rfm_model") -> Datum {
        let Some(bytes) = call.bytes(0) else { return call.return_null() };
        bytea_datum(bytes)
    }

    // rfm_model_of(name [, version]) and rfm_model(name text [, version]) -> rfm_model; STABLE
    fn rfm_model_of(call: "rfm_model_of") -> Datum { model_by_name(&mut call) }
    fn rfm_model(call: "rfm_model") -> Datum { model_by_name(&mut call) }


    // rfm_model_version(m rfm_model) -> int; IMMUTABLE STRICT
    fn rfm_model_version(call: "rfm_model_version") -> Datum {
        let args = call.args();
        let Some(bytes) = args.bytes(0) else { return args.return_null() };
        let cache = call.cache(|_| ValueCache::default());
        Datum::from(cache.get(args, bytes).version)
    }

    // rfm_action(m rfm_model, cluster int) -> text; IMMUTABLE STRICT
    fn rfm_action(call: "rfm_action") -> Datum {
        let args = call.args();
        let (Some(bytes), Some(cluster)) = (args.bytes(0), args.i32(1)) else { return args.return_null() };
        let cache = call.cache(|_| ValueCache::default());
        match cache.get(args, bytes).action(cluster) {
            Some(a) if !a.is_empty() => text_datum(a),
            _ => args.return_null(),
        }
    }
}

/// The model (or version) named by the arguments as an `rfm_model` value, read once per
/// statement at each call site.
fn model_by_name(call: &mut Call<'_>) -> Datum {
    let args = call.args();
    let name = args.text(0).unwrap_or_else(|| null_not_allowed(format!("{}: model must not be NULL", args.name)));
    let version = if args.nargs() == 2 {
        Some(args.i32(1).unwrap_or_else(|| null_not_allowed(format!("{}: version must not be NULL", args.name))))
    } else {
        None
    };
    let cache = call.cache(|_| Encoded { statement: Statement::now(), values: FxHashMap::default() });
    if cache.statement.renewed() {
        cache.values.clear();
    }
    let bytes = cache.values.entry((name.clone(), version)).or_insert_with(|| {
        let stored = store::load(args, &name, version);
        ModelValue { name: name.clone(), version: stored.version, model: stored.model() }.encode()
    });
    bytea_datum(bytes)
}

/// The two values' bytes in order (values compare by their encoding: equal values are the
/// same model version).
fn compare(call: &Call<'_>) -> std::cmp::Ordering {
    match (call.bytes(0), call.bytes(1)) {
        (Some(a), Some(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    }
}

pg_v1! {
    fn rfm_model_cmp(call: "rfm_model_cmp") -> Datum {
        Datum::from(compare(&call) as i32)
    }
    fn rfm_model_eq(call: "rfm_model_eq") -> Datum { Datum::from(compare(&call).is_eq()) }
    fn rfm_model_ne(call: "rfm_model_ne") -> Datum { Datum::from(compare(&call).is_ne()) }
    fn rfm_model_lt(call: "rfm_model_lt") -> Datum { Datum::from(compare(&call).is_lt()) }
    fn rfm_model_le(call: "rfm_model_le") -> Datum { Datum::from(compare(&call).is_le()) }
    fn rfm_model_gt(call: "rfm_model_gt") -> Datum { Datum::from(compare(&call).is_gt()) }
    fn rfm_model_ge(call: "rfm_model_ge") -> Datum { Datum::from(compare(&call).is_ge()) }
}
