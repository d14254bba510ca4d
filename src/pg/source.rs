//! Reading numeric feature columns of a table, view or materialized view through SPI,
//! with the caller's privileges and properly quoted identifiers.

use std::ffi::CString;

use pgrx::pg_sys::{self, Oid};
use pgrx::spi::{Spi, SpiClient, SpiResult};
use pgrx::PgSqlErrorCode;

use super::catalog::quote_ident;
use super::error::{raise, spi_fail};

/// Feature rows of a relation, flat (n rows of d), and how many rows were skipped
/// because a feature was NULL, NaN or infinite.
pub struct Rows {
    pub relation: String,
    pub data: Vec<f64>,
    pub skipped: u64,
}

/// The relation's name as SQL text (quoted, schema-qualified when not on search_path) and
/// its estimated row count, after checking that it has the features as numeric columns.
fn check_relation(what: &str, client: &SpiClient<'_>, source: Oid, features: &[String]) -> SpiResult<(String, usize)> {
    let table = client.select(
        "SELECT c.relkind::text, c.oid::regclass::text, greatest(c.reltuples, 0)::int8
         FROM pg_catalog.pg_class c WHERE c.oid = $1",
        None,
        &[source.into()],
    )?;
    let Some(row) = table.into_iter().next() else {
        raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, format!("{what}: relation with OID {} does not exist", source.to_u32()));
    };
    let kind: String = row.get(1)?.unwrap_or_default();
    let name: String = row.get(2)?.unwrap_or_default();
    let estimate = row.get::<i64>(3)?.unwrap_or(0).max(0) as usize;
    if !matches!(kind.as_str(), "r" | "v" | "m" | "p" | "f") {
        raise(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, format!("{what}: \"{name}\" is not a table, view or materialized view"));
    }
    let cols = client.select(
        "SELECT a.attname::text, t.typcategory::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
        None,
        &[source.into()],
    )?;
    let mut columns: Vec<(String, String, String)> = Vec::new();
    for row in cols {
        columns.push((row.get(1)?.unwrap_or_default(), row.get(2)?.unwrap_or_default(), row.get(3)?.unwrap_or_default()));
    }
    for f in features {
        match columns.iter().find(|(n, _, _)| n == f) {
            None => raise(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, format!("{what}: column \"{f}\" of relation {name} does not exist")),
            Some((_, cat, ty)) if cat != "N" => raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("{what}: column \"{f}\" of relation {name} has type {ty}, not a numeric type"),
            ),
            Some(_) => {}
        }
    }
    Ok((name, estimate))
}

/// Reads `features` of every row of `source` as float8, `check` between batches.
/// Raw SPI with a read-only cursor: each batch is freed once copied, so memory stays at
/// the rows' floats, and the rows are those of the calling statement's snapshot.
pub fn read(what: &str, source: Oid, features: &[String], check: &mut dyn FnMut()) -> Rows {
    let d = features.len();
    let (relation, estimate) = Spi::connect(|client| check_relation(what, client, source, features)).unwrap_or_else(|e| spi_fail(e));
    let cols: Vec<String> = features.iter().map(|f| format!("{}::float8", quote_ident(f))).collect();
    let query = format!("SELECT {} FROM {relation}", cols.join(", "));
    let query =
        CString::new(query).unwrap_or_else(|_| raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, format!("{what}: an identifier contains NUL")));
    let mut data = Vec::with_capacity(estimate.clamp(0, 1 << 28) * d);
    let mut skipped = 0u64;
    let mut values = vec![pg_sys::Datum::from(0usize); d];
    let mut nulls = vec![false; d];
    // SAFETY: SPI is connected and finished in this block; each fetched batch is read
    // (d columns, deformed into buffers of d) and freed before the next fetch.
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            spi_fail("SPI_connect");
        }
        let plan = pg_sys::SPI_prepare(query.as_ptr(), 0, std::ptr::null_mut());
        if plan.is_null() {
            spi_fail("SPI_prepare");
        }
        let portal = pg_sys::SPI_cursor_open(std::ptr::null(), plan, std::ptr::null_mut(), std::ptr::null(), true);
        loop {
            check();
            pg_sys::SPI_cursor_fetch(portal, true, 10_000);
            let table = pg_sys::SPI_tuptable;
            let n = pg_sys::SPI_processed as usize;
            if n == 0 || table.is_null() {
                break;
            }
            for i in 0..n {
                pg_sys::heap_deform_tuple(*(*table).vals.add(i), (*table).tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
                let start = data.len();
                for j in 0..d {
                    let v = f64::from_bits(values[j].value() as u64);
                    if nulls[j] || !v.is_finite() {
                        data.truncate(start);
                        skipped += 1;
                        break;
                    }
                    data.push(v);
                }
            }
            pg_sys::SPI_freetuptable(table);
        }
        pg_sys::SPI_cursor_close(portal);
        pg_sys::SPI_finish();
    }
    data.shrink_to_fit();
    Rows { relation, data, skipped }
}
