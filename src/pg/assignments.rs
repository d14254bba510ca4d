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
//! build or `REFRESH MATERIALIZED VIEW` as a table's owner. What decides what runs as the
//! owner is found without SQL in the caller's context, where the caller's operators on
//! their search_path would take part: the tables, their owner and the caller's privileges
//! by OID from the catalogs, the partition to drop by its bound inside the owner's context,
//! and every name put into SQL text is quoted from catalog values or a fixed pattern.
//!
//! The rows are written without the executor: the new table has no triggers, policies or
//! indexes yet, and its constraints (NOT NULL, experiment = name) hold by construction; the
//! CHECK lets the attach skip its scan. Row triggers an owner puts on the parent are cloned
//! to the partition when it is attached, after its rows are in: they do not fire for them.

use std::ffi::{CStr, CString};

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;

use super::call::Args;
use super::catalog::{quote_ident, schema_prefix};
use super::error::{raise, PgError};
use super::spi::select_text_fresh;

/// The experiment tables of the extension's schema, by OID, and the owner of the
/// assignments table (who owns the partitions).
pub struct Storage {
    /// The extension's schema, quoted, for SQL text run as the caller.
    pub schema: String,
    nsp: Oid,
    parent: Oid,
    experiments: Oid,
    owner: Oid,
}

impl Storage {
    pub fn of(what: &str, args: Args<'_>) -> Storage {
        // SAFETY: get_func_namespace and get_relname_relid take any OID and a C string; the
        // relation is opened only to read its owner and closed (the lock kept to the end of
        // the transaction, so the owner cannot change under us).
        unsafe {
            let nsp = pg_sys::get_func_namespace(args.fn_oid());
            let parent = pg_sys::get_relname_relid(c"rfm_experiment_assignments".as_ptr(), nsp);
            let experiments = pg_sys::get_relname_relid(c"rfm_experiments".as_ptr(), nsp);
            if parent == Oid::INVALID || experiments == Oid::INVALID {
                raise(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                    format!("{what}: the tables rfm_experiments and rfm_experiment_assignments are missing from the extension's schema"),
                );
            }
            let rel = pg_sys::table_open(parent, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let owner = (*(*rel).rd_rel).relowner;
            pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
            Storage { schema: schema_prefix(args), nsp, parent, experiments, owner }
        }
    }

    /// Raises 42501 unless the current user has `mode` (ACL_INSERT, ACL_DELETE) on both
    /// experiment tables, before any work.
    pub fn check_may(&self, what: &str, mode: u32, doing: &str) {
        // SAFETY: pg_class_aclcheck takes OIDs of existing relations (found above).
        let ok = unsafe {
            let user = pg_sys::GetUserId();
            pg_sys::pg_class_aclcheck(self.experiments, user, mode as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
                && pg_sys::pg_class_aclcheck(self.parent, user, mode as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
        };
        if !ok {
            let privilege = if mode == pg_sys::ACL_DELETE { "DELETE" } else { "INSERT" };
            PgError::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("{what}: permission denied to {doing} experiments"))
                .detail(format!("This needs {privilege} on rfm_experiments and rfm_experiment_assignments."))
                .hint("Ask the owner of the extension for these privileges, or run it as a role that has them.")
                .raise();
        }
    }

    /// The qualified, quoted name of relation `oid` (None when it is gone).
    fn name_of(oid: Oid) -> Option<String> {
        // SAFETY: the lsyscache lookups take any OID and return palloc'd C strings or NULL.
        unsafe {
            let rel = pg_sys::get_rel_name(oid);
            let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid));
            if rel.is_null() || nsp.is_null() {
                return None;
            }
            Some(format!("{}.{}", quote_ident(&CStr::from_ptr(nsp).to_string_lossy()), quote_ident(&CStr::from_ptr(rel).to_string_lossy())))
        }
    }

    /// The OID of relation `name` in the extension's schema (InvalidOid when there is none).
    fn relid(&self, name: &str) -> Oid {
        let c = CString::new(name).unwrap_or_else(|_| raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, "pg_rfm: a name contains NUL"));
        // SAFETY: a C string and a namespace OID; the cache sees this transaction's commands
        // once CommandCounterIncrement made them visible.
        unsafe {
            pg_sys::CommandCounterIncrement();
            pg_sys::get_relname_relid(c.as_ptr(), self.nsp)
        }
    }
}

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

/// Runs `f` as `owner` (see the module's text), with search_path `pg_catalog, pg_temp`
/// (pg_temp is never searched for functions and operators) and standard_conforming_strings
/// on (so that deparsed bounds are predictable). An error inside `f` ends the
/// (sub)transaction, which restores the user, security context and settings.
fn as_owner<R>(owner: Oid, f: impl FnOnce() -> R) -> R {
    // SAFETY: the user id and security context are saved and restored around f; on an error
    // the transaction machinery restores both (and the GUC nest level), as for an index build.
    unsafe {
        let (mut user, mut sec) = (Oid::INVALID, 0i32);
        pg_sys::GetUserIdAndSecContext(&mut user, &mut sec);
        pg_sys::SetUserIdAndSecContext(
            owner,
            sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let level = pg_sys::NewGUCNestLevel();
        for (name, value) in [(c"search_path", c"pg_catalog, pg_temp"), (c"standard_conforming_strings", c"on")] {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        let out = f();
        pg_sys::AtEOXact_GUC(false, level);
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
        let desc = pgrx::PgTupleDesc::from_pg_unchecked((*rel).rd_att);
        let columns: Vec<(String, Oid)> = desc.iter().map(|att| (att.name().to_string(), att.atttypid)).collect();
        drop(desc);
        let want = ["experiment", "customer_id", "stratum", "arm"];
        if columns.len() != 4 || columns.iter().zip(want).any(|((n, t), w)| n != w || *t != pg_sys::TEXTOID) {
            raise(
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                "pg_rfm: rfm_experiment_assignments does not have the text columns experiment, customer_id, stratum, arm",
            );
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
pub fn store(storage: &Storage, what: &str, name: &str, rows: &[Row<'_>], check: &mut dyn FnMut()) {
    let part = partition_name(name);
    let schema = &storage.schema;
    let table = format!("{schema}.{}", quote_ident(&part));
    if storage.relid(&part) != Oid::INVALID {
        PgError::new(PgSqlErrorCode::ERRCODE_DUPLICATE_TABLE, format!("{what}: the table {part} for experiment \"{name}\" already exists"))
            .detail("Each experiment's assignments are a partition of rfm_experiment_assignments named after the experiment; a table of that name is in the way (left by hand, or detached).")
            .hint(format!("Choose another name, or have the extension's owner drop table {part} if it holds nothing you need."))
            .raise();
    }
    as_owner(storage.owner, || {
        // The CHECK makes the attach skip its scan of the rows; NOT NULL comes with LIKE.
        run(
            &format!("CREATE TABLE {table} (LIKE {schema}.rfm_experiment_assignments, CHECK (experiment = {})) USING heap", literal(name)),
            &[],
        );
        let relid = storage.relid(&part);
        if relid == Oid::INVALID {
            raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, format!("{what}: the new table {part} is missing"));
        }
        insert(relid, name, rows, check);
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

/// Whether experiment `name` has a row in rfm_experiments, as the owner sees it (whatever
/// row security shows the caller).
pub fn experiment_exists(storage: &Storage, name: &str) -> bool {
    as_owner(storage.owner, || {
        select_text_fresh(
            &format!("SELECT pg_catalog.count(*)::pg_catalog.text FROM {}.rfm_experiments e WHERE e.name = $1", storage.schema),
            &[name],
        )
        .as_deref()
            != Some("0")
    })
}

/// Drops experiment `name`'s partition: the partition of rfm_experiment_assignments whose
/// bound is exactly this name (not the default partition, nor one of several names), found
/// and dropped as the owner; returns how many rows it held (0 without one).
pub fn drop_partition(storage: &Storage, name: &str) -> i64 {
    // Deparsed as ruleutils does with standard_conforming_strings on (set by as_owner).
    let bound = format!("FOR VALUES IN ('{}')", name.replace('\'', "''"));
    as_owner(storage.owner, || {
        let found = select_text_fresh(
            "SELECT c.oid::pg_catalog.text FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::pg_catalog.oid AND c.relispartition
               AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) = $2",
            &[&storage.parent.to_u32().to_string(), &bound],
        );
        let Some(oid) = found.and_then(|o| o.parse::<u32>().ok()).map(Oid::from) else { return 0 };
        let Some(table) = Storage::name_of(oid) else { return 0 };
        let count = select_text_fresh(&format!("SELECT pg_catalog.count(*)::pg_catalog.text FROM {table}"), &[])
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(0);
        run(&format!("DROP TABLE {table}"), &[]);
        count
    })
}
