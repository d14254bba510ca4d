//! Reading numeric feature columns of a table, view or materialized view through SPI,
//! with the caller's privileges and properly quoted identifiers.

use std::ffi::CString;

use pgrx::pg_sys::{self, Oid};
use pgrx::spi::{Spi, SpiClient, SpiResult};
use pgrx::PgSqlErrorCode;

use rustc_hash::FxHashMap;

use super::call::varlena_bytes;
use super::catalog::quote_ident;
use super::error::{raise, spi_fail, PgError};
use crate::core::encode::{Kind, Table};

/// Feature rows of a relation (numeric and categorical features apart, see
/// `encode::Table`), and how many rows were skipped because a feature was NULL, NaN or
/// infinite.
pub struct Rows {
    pub relation: String,
    pub table: Table,
    pub skipped: u64,
}

/// How a column of a given type category is used: numeric (`N`), categorical (string,
/// boolean, enum), or not at all.
fn kind_of(category: &str) -> Option<Kind> {
    match category {
        "N" => Some(Kind::Numeric),
        "S" | "B" | "E" => Some(Kind::Categorical),
        _ => None,
    }
}

/// A relation read by name: its SQL name (quoted, schema-qualified when not on search_path),
/// its estimated row count, and its columns with their type category (of the base type for
/// domains) and type name.
pub struct Described {
    pub name: String,
    pub estimate: usize,
    pub columns: Vec<(String, String, String)>,
}

/// Describes `source` after checking that it is a table, view or materialized view.
pub fn describe(what: &str, client: &SpiClient<'_>, source: Oid) -> SpiResult<Described> {
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
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
         JOIN pg_catalog.pg_type t ON t.oid = CASE at.typtype WHEN 'd' THEN at.typbasetype ELSE at.oid END
         WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
        None,
        &[source.into()],
    )?;
    let mut columns: Vec<(String, String, String)> = Vec::new();
    for row in cols {
        columns.push((row.get(1)?.unwrap_or_default(), row.get(2)?.unwrap_or_default(), row.get(3)?.unwrap_or_default()));
    }
    Ok(Described { name, estimate, columns })
}

/// The relation's name as SQL text, its estimated row count and the kind of each feature,
/// after checking that the features are numeric or categorical columns (of the kinds
/// `expect` says, for a trained model).
fn check_relation(
    what: &str,
    client: &SpiClient<'_>,
    source: Oid,
    features: &[String],
    expect: Option<&[Kind]>,
) -> SpiResult<(String, usize, Vec<Kind>)> {
    let Described { name, estimate, columns } = describe(what, client, source)?;
    let mut kinds = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let Some((_, cat, ty)) = columns.iter().find(|(n, _, _)| n == f) else {
            raise(PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, format!("{what}: column \"{f}\" of relation {name} does not exist"))
        };
        let Some(kind) = kind_of(cat) else {
            PgError::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("{what}: column \"{f}\" of relation {name} has type {ty}, neither numeric nor categorical"),
            )
            .detail("Features are numeric columns, or categorical columns of a text, boolean or enum type (one-hot encoded).")
            .hint("Give the column a numeric form in a view, for example extract(year FROM ...) of a date.")
            .raise()
        };
        match expect.map(|e| e[i]) {
            Some(Kind::Numeric) if kind != Kind::Numeric => raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("{what}: column \"{f}\" of relation {name} has type {ty}, but the model uses it as a numeric feature"),
            ),
            Some(Kind::Categorical) if kind != Kind::Categorical => raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!("{what}: column \"{f}\" of relation {name} has type {ty}, but the model uses it as a categorical feature"),
            ),
            _ => {}
        }
        kinds.push(kind);
    }
    Ok((name, estimate, kinds))
}

/// Reads `features` of every row of `source` (numeric ones as float8, categorical ones as
/// text), `check` between batches. `expect` gives the kinds a trained model needs.
/// Raw SPI with a read-only cursor: each batch is freed once copied, so memory stays at
/// the rows' values, and the rows are those of the calling statement's snapshot.
pub fn read(what: &str, source: Oid, features: &[String], expect: Option<&[Kind]>, check: &mut dyn FnMut()) -> Rows {
    let d = features.len();
    let (relation, estimate, kinds) =
        Spi::connect(|client| check_relation(what, client, source, features, expect)).unwrap_or_else(|e| spi_fail(e));
    let cols: Vec<String> = features
        .iter()
        .zip(&kinds)
        .map(|(f, k)| match k {
            Kind::Numeric => format!("{}::float8", quote_ident(f)),
            Kind::Categorical => format!("{}::text", quote_ident(f)),
        })
        .collect();
    let query = format!("SELECT {} FROM {relation}", cols.join(", "));
    let query =
        CString::new(query).unwrap_or_else(|_| raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, format!("{what}: an identifier contains NUL")));
    let dn = kinds.iter().filter(|k| **k == Kind::Numeric).count();
    let dc = d - dn;
    let mut numeric = Vec::with_capacity(estimate.clamp(0, 1 << 28) * dn);
    let mut codes: Vec<u32> = Vec::with_capacity(if dc > 0 { estimate.clamp(0, 1 << 28) * dc } else { 0 });
    let mut interned: Vec<FxHashMap<Box<[u8]>, u32>> = vec![FxHashMap::default(); dc];
    let mut dicts: Vec<Vec<String>> = vec![Vec::new(); dc];
    let mut skipped = 0u64;
    let mut values = vec![pg_sys::Datum::from(0usize); d];
    let mut nulls = vec![false; d];
    let mut row_codes = vec![0u32; dc];
    // SAFETY: SPI is connected and finished in this block; each fetched batch is read
    // (d columns, deformed into buffers of d) and freed before the next fetch. Columns are
    // float8 or text as the query casts them.
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
            'rows: for i in 0..n {
                pg_sys::heap_deform_tuple(*(*table).vals.add(i), (*table).tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
                let start = numeric.len();
                let mut c = 0;
                for j in 0..d {
                    if nulls[j] {
                        numeric.truncate(start);
                        skipped += 1;
                        continue 'rows;
                    }
                    match kinds[j] {
                        Kind::Numeric => {
                            let v = f64::from_bits(values[j].value() as u64);
                            if !v.is_finite() {
                                numeric.truncate(start);
                                skipped += 1;
                                continue 'rows;
                            }
                            numeric.push(v);
                        }
                        Kind::Categorical => {
                            let bytes = varlena_bytes(values[j]);
                            let next = dicts[c].len() as u32;
                            row_codes[c] = match interned[c].get(bytes) {
                                Some(code) => *code,
                                None => {
                                    interned[c].insert(bytes.into(), next);
                                    dicts[c].push(String::from_utf8_lossy(bytes).into_owned());
                                    next
                                }
                            };
                            c += 1;
                        }
                    }
                }
                codes.extend_from_slice(&row_codes);
            }
            pg_sys::SPI_freetuptable(table);
        }
        pg_sys::SPI_cursor_close(portal);
        pg_sys::SPI_finish();
    }
    numeric.shrink_to_fit();
    Rows { relation, table: Table { kinds, numeric, codes, dicts }, skipped }
}
