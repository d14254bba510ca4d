//! The Postgres layer: converts types, keeps per-call caches, raises errors.
//! Every SQL object is declared by hand in `sql/`; the functions here are raw
//! version-1 C functions so that aggregates can use `internal` states.

pub mod error;
pub mod gucs;
#[macro_use]
pub mod call;
pub mod aggregates;
pub mod assign;
pub mod assignments;
pub mod basket;
pub mod catalog;
pub mod citus;
pub mod clv;
pub mod experiment;
pub mod heap;
pub mod report;
pub mod rules;
pub mod scalars;
pub mod source;
pub mod spi;
pub mod state;
pub mod store;
pub mod train;
pub mod value;
