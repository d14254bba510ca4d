//! Settings of pg_rfm (`SET pg_rfm.threads = 1`, or in postgresql.conf).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Worker threads rfm_train may use for the KMeans runs; 0 means one per CPU core.
pub static THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);

/// The most memory rfm_basket_train may use for orders, itemsets and rules, in kB.
pub static BASKET_MEMORY: GucSetting<i32> = GucSetting::<i32>::new(256 * 1024);

/// The most the aggregate states of one process may hold in Rust's heap, in kB.
pub static MAX_STATE_MEMORY: GucSetting<i32> = GucSetting::<i32>::new(2 * 1024 * 1024);

pub fn init() {
    GucRegistry::define_int_guc(
        c"pg_rfm.threads",
        c"Threads rfm_train uses for its KMeans runs (0: one per CPU core).",
        c"rfm_train spreads its n_init KMeans runs over this many threads inside the backend. \
          The threads only compute; they never touch the database. 1 keeps training in the \
          backend's own thread.",
        &THREADS,
        0,
        64,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_rfm.max_state_memory",
        c"The most memory pg_rfm's aggregate states may hold in one process (backend or parallel worker).",
        c"Order-id sets, line keys, the values of exact quantiles and CLV purchase days grow outside \
          PostgreSQL's memory contexts, so work_mem does not bound them. A query whose states pass this \
          amount stops with ERROR 53200 (out of memory) instead of exhausting the server's memory.",
        &MAX_STATE_MEMORY,
        1024,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pg_rfm.basket_memory",
        c"The most memory rfm_basket_train may use for the orders it reads, their frequent itemsets and rules.",
        c"Mining stops with ERROR 53200, saying how many itemsets and rules it reached, once it would need more: \
          raise min_support or lower max_len, or raise this setting.",
        &BASKET_MEMORY,
        1024,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
}

/// `pg_rfm.basket_memory` in bytes.
pub fn basket_memory() -> usize {
    BASKET_MEMORY.get().max(1024) as usize * 1024
}

/// `pg_rfm.max_state_memory` in bytes.
#[inline]
pub fn max_state_memory() -> usize {
    MAX_STATE_MEMORY.get().max(1024) as usize * 1024
}

/// The number of threads to use now.
pub fn threads() -> usize {
    match THREADS.get() {
        n if n > 0 => n as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}
