//! Reading numeric feature columns of a table, view or materialized view through SPI,
//! with the caller's privileges and properly quoted identifiers.

use pgrx::pg_sys::Oid;
use pgrx::spi::{Spi, SpiClient, SpiResult};
use pgrx::PgSqlErrorCode;

use super::error::raise;
use super::fmgr::quote_ident;

/// Feature rows of a relation, flat (n rows of d), and how many rows were skipped
/// because a feature was NULL, NaN or infinite.
pub struct Rows {
    pub relation: String,
    pub data: Vec<f64>,
    pub skipped: u64,
}

fn spi_fail(e: impl std::fmt::Display) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("pg_rfm: SPI failed: {e}"))
}

/// The relation's name as SQL text (quoted, schema-qualified when not on search_path),
/// after checking that it can be read from and has the features as numeric columns.
fn check_relation(client: &SpiClient<'_>, source: Oid, features: &[String]) -> SpiResult<String> {
    let table = client.select(
        "SELECT c.relkind::text, c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.oid = $1",
        None,
        &[source.into()],
    )?;
    let Some(row) = table.into_iter().next() else {
        raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, format!("relation with OID {} does not exist", source.to_u32()));
    };
    let kind: String = row.get(1)?.unwrap_or_default();
    let name: String = row.get(2)?.unwrap_or_default();
    if !matches!(kind.as_str(), "r" | "v" | "m" | "p" | "f") {
        raise(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, format!("\"{name}\" is not a table, view or materialized view"));
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
            None => raise(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, format!("column \"{f}\" of relation {name} does not exist")),
            Some((_, cat, ty)) if cat != "N" => raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("column \"{f}\" of relation {name} has type {ty}, not a numeric type"),
            ),
            Some(_) => {}
        }
    }
    Ok(name)
}

/// Reads `features` of every row of `source` as float8, `check` between batches.
pub fn read(source: Oid, features: &[String], check: &mut dyn FnMut()) -> Rows {
    let d = features.len();
    let result: SpiResult<Rows> = Spi::connect(|client| {
        let relation = check_relation(client, source, features)?;
        let cols: Vec<String> = features.iter().map(|f| format!("{}::float8", quote_ident(f))).collect();
        let query = format!("SELECT {} FROM {relation}", cols.join(", "));
        let mut cursor = client.try_open_cursor(query.as_str(), &[])?;
        let mut data = Vec::new();
        let mut skipped = 0u64;
        let mut row_buf = vec![0.0; d];
        loop {
            check();
            let batch = cursor.fetch(20_000)?;
            if batch.is_empty() {
                break;
            }
            'rows: for row in batch {
                for (j, slot) in row_buf.iter_mut().enumerate() {
                    match row.get::<f64>(j + 1)? {
                        Some(v) if v.is_finite() => *slot = v,
                        _ => {
                            skipped += 1;
                            continue 'rows;
                        }
                    }
                }
                data.extend_from_slice(&row_buf);
            }
        }
        Ok(Rows { relation, data, skipped })
    });
    result.unwrap_or_else(|e| spi_fail(e))
}
