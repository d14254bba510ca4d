//! Names for SQL text built at run time: the extension's schema and quoted identifiers.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

use super::call::Args;
use super::error::raise;

/// The schema the running function lives in: the extension's schema.
pub fn own_schema(args: Args<'_>) -> String {
    // SAFETY: get_func_namespace and get_namespace_name take any OID; the name is a
    // palloc'd C string (or NULL when the schema is gone).
    unsafe {
        let nsp = pg_sys::get_func_namespace(args.fn_oid());
        let name = pg_sys::get_namespace_name(nsp);
        if name.is_null() {
            raise(PgSqlErrorCode::ERRCODE_INVALID_SCHEMA_NAME, format!("{}: the extension's schema no longer exists", args.name));
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// `quote_ident` for building SQL text: always quoted, inner quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The extension's schema, quoted, for qualified names in SQL text.
pub fn schema_prefix(args: Args<'_>) -> String {
    quote_ident(&own_schema(args))
}
