//! Read-only SPI for code that may run inside parallel query (assignment, scoring):
//! pgrx's SPI client runs queries read-write once the transaction has an xid, and
//! read-write SPI is refused in parallel mode. Read-only SPI also uses the calling
//! statement's snapshot, so a model or rule change is seen by the next statement only.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

use super::call::text_datum;
use super::error::{raise, spi_fail};

/// First column of the first row of a read-only query with text parameters ($1, $2, ...),
/// as text; `None` when there is no row or the value is NULL.
pub fn select_text(query: &str, args: &[&str]) -> Option<String> {
    select_text_with(query, args, true)
}

/// `select_text` for code that writes (never in parallel mode): read-write SPI, which sees
/// what earlier commands of the same statement changed (a new snapshot per query).
pub fn select_text_fresh(query: &str, args: &[&str]) -> Option<String> {
    select_text_with(query, args, false)
}

fn select_text_with(query: &str, args: &[&str], read_only: bool) -> Option<String> {
    let params: Vec<(pg_sys::Oid, pg_sys::Datum)> = args.iter().map(|a| (pg_sys::TEXTOID, text_datum(a))).collect();
    run(query, &params, read_only, 1, |rc| {
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            return Err(rc);
        }
        // SAFETY: run calls this while SPI's result table is valid; the value is copied out.
        unsafe {
            let table = pg_sys::SPI_tuptable;
            if pg_sys::SPI_processed > 0 && !table.is_null() {
                let v = pg_sys::SPI_getvalue(*(*table).vals, (*table).tupdesc, 1);
                if !v.is_null() {
                    return Ok(Some(CStr::from_ptr(v).to_string_lossy().into_owned()));
                }
            }
        }
        Ok(None)
    })
}

/// Connects SPI, runs `query` with parameters ($1, $2, ... of the given types; `limit` rows
/// at most, 0 for all: a limit keeps the planner from using parallel workers), hands the
/// result code to `read` while SPI's result table is valid, and finishes SPI. `read`
/// returning Err(rc) raises "query returned rc".
pub fn run<R>(
    query: &str,
    params: &[(pg_sys::Oid, pg_sys::Datum)],
    read_only: bool,
    limit: i64,
    read: impl FnOnce(i32) -> Result<R, i32>,
) -> R {
    let q = CString::new(query).unwrap_or_else(|_| raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, "pg_rfm: a name in a query contains NUL"));
    let mut types: Vec<pg_sys::Oid> = params.iter().map(|p| p.0).collect();
    let mut values: Vec<pg_sys::Datum> = params.iter().map(|p| p.1).collect();
    // SAFETY: SPI is connected and finished in this block; the query and parameter arrays
    // outlive the call; `read` copies out what it keeps before SPI_finish frees it.
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            spi_fail("SPI_connect");
        }
        let rc = pg_sys::SPI_execute_with_args(
            q.as_ptr(),
            params.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            std::ptr::null(),
            read_only,
            limit,
        );
        let out = if rc < 0 { Err(rc) } else { read(rc) };
        pg_sys::SPI_finish();
        out.unwrap_or_else(|rc| spi_fail(format!("query returned {rc}")))
    }
}

/// The active snapshot's identity: it changes with every new statement (and with every
/// command of a transaction), and stays the same for the whole of one statement, in
/// parallel workers and across the fetches of a cursor. `None` outside a snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp(u32, u32, u32);

// Unguarded bindings for the per-row statement check: pgrx wraps every pg_sys call in a
// sigsetjmp, which is measurable per row. Neither function can raise an error
// (snapmgr.c: a flag test and a pointer read).
unsafe extern "C" {
    fn ActiveSnapshotSet() -> bool;
    fn GetActiveSnapshot() -> pg_sys::Snapshot;
}

/// Tells a per-call-site cache when a new statement began: a call site can outlive a
/// statement (PL/pgSQL keeps simple expressions for the whole transaction), and what it
/// read from tables must then be read again so that retrains and rule edits are seen.
pub struct Statement(Option<Stamp>);

impl Statement {
    pub fn now() -> Statement {
        Statement(statement_stamp())
    }

    /// True (once) when the active statement differs from the one last seen.
    #[inline]
    pub fn renewed(&mut self) -> bool {
        let now = statement_stamp();
        if now == self.0 {
            false
        } else {
            self.0 = now;
            true
        }
    }
}

#[inline]
fn statement_stamp() -> Option<Stamp> {
    // SAFETY: both functions only read snapmgr's state and cannot fail; GetActiveSnapshot
    // is only called when a snapshot is active, and the snapshot is read before anything
    // can pop it.
    unsafe {
        if !ActiveSnapshotSet() {
            return None;
        }
        let s = GetActiveSnapshot();
        Some(Stamp((*s).xmin.into_inner(), (*s).xmax.into_inner(), (*s).curcid))
    }
}
