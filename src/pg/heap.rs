//! The Rust heap of this process, counted, and the limit on what aggregate states may hold.
//!
//! Aggregate states that grow (order-id sets, line keys, the values of exact quantiles, CLV
//! purchase days) live in Rust's heap, which PostgreSQL's memory accounting does not see:
//! `work_mem` and hash aggregation's spilling do not bound them. The global allocator counts
//! the bytes the library holds, and the transition and combine functions of those
//! aggregates stop the query with a clear ERROR once the count passes
//! `pg_rfm.max_state_memory`, before the operating system kills the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use pgrx::PgSqlErrorCode;

use super::error::PgError;
use super::gucs;

struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the same arguments; only a
// counter is updated beside it (an atomic, as training threads allocate too).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promises for `alloc`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promises for `alloc_zeroed`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated by `alloc` with this layout (the caller's promise).
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as the caller promises for `realloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_add(new_size, Relaxed);
            HELD.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes the library holds in Rust's heap in this process now.
pub fn held() -> usize {
    HELD.load(Relaxed)
}

/// Called by the transition and combine functions of aggregates whose states grow: an
/// ERROR (53200) once the library holds more than `pg_rfm.max_state_memory`.
#[inline]
pub fn check(what: &str) {
    let held = held();
    if held > gucs::max_state_memory() {
        over(what, held)
    }
}

#[cold]
fn over(what: &str, held: usize) -> ! {
    let mb = |b: usize| b as f64 / (1024.0 * 1024.0);
    PgError::new(
        PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        format!(
            "{what}: the aggregate states of this query hold {:.0} MB, more than pg_rfm.max_state_memory ({:.0} MB)",
            mb(held),
            mb(gucs::max_state_memory())
        ),
    )
    .detail(
        "pg_rfm's aggregate states (order ids, line keys, the values of exact quantiles, purchase days) grow outside \
         PostgreSQL's memory contexts, so work_mem and hash aggregation do not bound them; the query was stopped \
         before the process could run out of memory.",
    )
    .hint(
        "Let PostgreSQL group by sorting (SET enable_hashagg = off), which holds one group's state at a time; or \
         aggregate fewer groups per query; or raise pg_rfm.max_state_memory where the server has the memory.",
    )
    .raise()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_what_is_held() {
        let before = super::held();
        let v: Vec<u8> = Vec::with_capacity(64 << 20);
        // Other tests run in parallel threads and allocate too: only a lower bound holds.
        assert!(super::held() >= 64 << 20, "{} {}", before, super::held());
        drop(v);
    }
}
