//! Where an experiment's assignments live: one partition of `rfm_experiment_assignments`
//! per experiment (declared in `sql/experiments.sql`). `rfm_experiment_create` writes the
//! partition's rows while it is still a plain table, builds its primary key from the sorted
//! rows in one pass and attaches it; `rfm_experiment_drop` drops it whole. Row by row index
//! insertion of a million text keys took 2.3 s against 0.6 s for the build, and deleting them
//! left a million dead rows for vacuum.
//!
//! The partitions belong to the owner of `rfm_experiment_assignments` (as the parent does),
//! so that any role granted INSERT and DELETE on it can create and drop experiments without
//! CREATE on the extension's schema: the DDL runs as that owner, in a security-restricted
//! operation with `search_path = pg_catalog, pg_temp`, the way PostgreSQL runs an index
//! build or `REFRESH MATERIALIZED VIEW` as a table's owner. Callers check the caller's
//! privileges first, and every statement run as the owner is fixed text with quoted names.

use std::ffi::{CStr, CString};

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;

use super::catalog::quote_ident;
use super::error::{raise, PgError};
use super::spi::{select_text, select_text_fresh};

/// The name of the table that holds experiment `name`'s assignments: the letters and digits
/// of the name (for people reading `\dt`) and a 48-bit FNV-1a hash of all of it (so names
/// that read the same differ).
pub fn partition_name(name: &str) -> String {
    let readable: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(24).collect();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("rfm_assignments_{readable}_{:012x}", h >> 16)
}

/// A string constant for SQL text (`quote_literal`, which writes E'' when it must).
fn literal(s: &str) -> String {
    let c = CString::new(s).unwrap_or_else(|_| raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, "pg_rfm: a name contains NUL"));
    // SAFETY: quote_literal_cstr takes a C string and returns a palloc'd C string.
    unsafe { CStr::from_ptr(pg_sys::quote_literal_cstr(c.as_ptr())).to_string_lossy().into_owned() }
}

/// Runs a statement that writes (read-write SPI), with parameters.
fn run(query: &str, params: &[(Oid, Datum)]) {
    super::spi::run(query, params, false, 0, |_| Ok(()))
}

/// Runs `f` as the owner of `schema`.rfm_experiment_assignments (see the module's text).
/// An error inside `f` ends the (sub)transaction, which restores the user and search_path.
fn as_owner<R>(schema: &str, f: impl FnOnce() -> R) -> R {
    let owner = select_text(
        "SELECT c.relowner::pg_catalog.int8::pg_catalog.text FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass",
        &[&format!("{schema}.rfm_experiment_assignments")],
    )
    .and_then(|o| o.parse::<u32>().ok())
    .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, "pg_rfm: the table rfm_experiment_assignments is missing"));
    // SAFETY: the user id and security context are saved and restored around f; on an error
    // the transaction machinery restores both (and the GUC nest level), as for an index build.
    unsafe {
        let (mut user, mut sec) = (Oid::INVALID, 0i32);
        pg_sys::GetUserIdAndSecContext(&mut user, &mut sec);
        pg_sys::SetUserIdAndSecContext(
            Oid::from(owner),
            sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let out = f();
        pg_sys::AtEOXact_GUC(true, level);
        pg_sys::SetUserIdAndSecContext(user, sec);
        out
    }
}

/// Writes `rows` into the new, unindexed table `relid` the way COPY does (table_multi_insert
/// with a bulk-insert state: a WAL record per page, not per row). The table has no triggers,
/// indexes or rules yet; its constraints (NOT NULL, experiment = name) hold by construction.
fn insert(relid: Oid, name: &str, rows: &[Row<'_>], check: &mut dyn FnMut()) {
    const BATCH: usize = 1000;
    let text = |b: &[u8]| {
        // SAFETY: cstring_to_text_with_len copies len bytes into a palloc'd text.
        Datum::from(unsafe { pg_sys::cstring_to_text_with_len(b.as_ptr() as *const std::ffi::c_char, b.len() as i32) })
    };
    // SAFETY: the relation is opened and closed here (its lock is kept to the end of the
    // transaction); every slot is made for its tuple descriptor (4 columns) and dropped at the
    // end; the datums of a batch live in `batch`, reset only after table_multi_insert copied
    // them into tuples.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        if (*(*rel).rd_att).natts != 4 {
            raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "pg_rfm: the assignments table does not have 4 columns");
        }
        let cid = pg_sys::GetCurrentCommandId(true);
        let bistate = pg_sys::GetBulkInsertState();
        let mut slots: Vec<*mut pg_sys::TupleTableSlot> =
            (0..BATCH.min(rows.len())).map(|_| pg_sys::table_slot_create(rel, std::ptr::null_mut())).collect();
        let mut batch = pgrx::PgMemoryContexts::new("pg_rfm assignments");
        let experiment = batch.switch_to(|_| text(name.as_bytes()));
        let mut keep = pgrx::PgMemoryContexts::new("pg_rfm assignments batch");
        for chunk in rows.chunks(BATCH) {
            check();
            keep.switch_to(|_| {
                for (k, r) in chunk.iter().enumerate() {
                    let slot = slots[k];
                    pg_sys::ExecClearTuple(slot);
                    let values = std::slice::from_raw_parts_mut((*slot).tts_values, 4);
                    let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, 4);
                    values[0] = experiment;
                    nulls[0] = false;
                    values[1] = text(r.0);
                    nulls[1] = false;
                    match r.1 {
                        Some(s) => {
                            values[2] = text(s);
                            nulls[2] = false;
                        }
                        None => {
                            values[2] = Datum::from(0usize);
                            nulls[2] = true;
                        }
                    }
                    values[3] = text(r.2);
                    nulls[3] = false;
                    pg_sys::ExecStoreVirtualTuple(slot);
                }
                pg_sys::table_multi_insert(rel, slots.as_mut_ptr(), chunk.len() as i32, cid, 0, bistate);
            });
            keep.reset();
        }
        for slot in slots {
            pg_sys::ExecDropSingleTupleTableSlot(slot);
        }
        pg_sys::FreeBulkInsertState(bistate);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        drop(batch);
    }
}

/// One row to store: the customer id, its stratum (None: NULL) and its arm's name.
pub type Row<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

/// Makes experiment `name`'s partition from `rows` (in customer id byte order, each id once)
/// and attaches it. `check` is called between batches (cancellation).
pub fn store<'a>(what: &str, schema: &str, name: &str, rows: &[Row<'a>], check: &mut dyn FnMut()) {
    let part = partition_name(name);
    let table = format!("{schema}.{}", quote_ident(&part));
    if select_text_fresh("SELECT pg_catalog.to_regclass($1)::pg_catalog.text", &[&table]).is_some() {
        PgError::new(PgSqlErrorCode::ERRCODE_DUPLICATE_TABLE, format!("{what}: the table {part} for experiment \"{name}\" already exists"))
            .detail("Each experiment's assignments are a partition of rfm_experiment_assignments named after the experiment; a table of that name is in the way (left by hand, or detached).")
            .hint(format!("Choose another name, or have the extension's owner drop table {part} if it holds nothing you need."))
            .raise();
    }
    as_owner(schema, || {
        // The CHECK makes the attach skip its scan of the rows; NOT NULL comes with LIKE.
        run(
            &format!("CREATE TABLE {table} (LIKE {schema}.rfm_experiment_assignments, CHECK (experiment = {})) USING heap", literal(name)),
            &[],
        );
        let relid = select_text_fresh("SELECT $1::pg_catalog.regclass::pg_catalog.oid::pg_catalog.text", &[&table])
            .and_then(|o| o.parse::<u32>().ok())
            .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, format!("{what}: the new table {part} is missing")));
        insert(Oid::from(relid), name, rows, check);
        check();
        run(&format!("ALTER TABLE {table} ADD PRIMARY KEY (experiment, customer_id)"), &[]);
        run(&format!("ALTER TABLE {schema}.rfm_experiment_assignments ATTACH PARTITION {table} FOR VALUES IN ({})", literal(name)), &[]);
        run(
            &format!(
                "COMMENT ON TABLE {table} IS {}",
                literal(&format!(
                    "The assignments of experiment \"{name}\": a partition of rfm_experiment_assignments (read them there), made by rfm_experiment_create and dropped by rfm_experiment_drop."
                ))
            ),
            &[],
        );
    });
}

/// Drops experiment `name`'s partition, if it has one; returns how many rows it held.
pub fn drop_partition(schema: &str, name: &str) -> i64 {
    // The partition its rows are in; for a partition with no rows left, the one of its name.
    let found = select_text_fresh(
        &format!(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) || ' ' || coalesce(
                    (SELECT pg_catalog.count(*) FROM {schema}.rfm_experiment_assignments a WHERE a.experiment = $1), 0)
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
             WHERE i.inhparent = $2::pg_catalog.regclass
               AND (c.oid = (SELECT a.tableoid FROM {schema}.rfm_experiment_assignments a WHERE a.experiment = $1 LIMIT 1)
                    OR c.relname = $3)
             ORDER BY c.relname = $3
             LIMIT 1"
        ),
        &[name, &format!("{schema}.rfm_experiment_assignments"), &partition_name(name)],
    );
    let Some(found) = found else { return 0 };
    let (table, count) = found.rsplit_once(' ').unwrap_or((&found, "0"));
    let count = count.parse::<i64>().unwrap_or(0);
    as_owner(schema, || run(&format!("DROP TABLE {table}"), &[]));
    count
}
