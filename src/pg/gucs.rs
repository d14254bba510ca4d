//! Settings of pg_rfm (`SET pg_rfm.threads = 1`, or in postgresql.conf).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Worker threads rfm_train may use for the KMeans runs; 0 means one per CPU core.
pub static THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);

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
}

/// The number of threads to use now.
pub fn threads() -> usize {
    match THREADS.get() {
        n if n > 0 => n as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}
