//! Numeric core of pg_rfm: plain Rust, no Postgres types, tested with `cargo test`.

#![forbid(unsafe_code)]

pub mod basket;
pub mod clv;
pub mod codec;
pub mod distance;
pub mod document;
pub mod encode;
pub mod error;
pub mod experiment;
pub mod experiment_report;
pub mod kmeans;
pub mod lru;
pub mod metrics;
pub mod model;
pub mod pca;
#[cfg(test)]
mod proptests;
pub mod quantile;
pub mod report;
pub mod rfm;
pub mod rng;
pub mod scale;
pub mod score;
pub mod serde_f64;
pub mod state;
pub mod stats;
pub mod value;

pub use error::CoreError;

/// A partial aggregate state: what parallel workers (and Citus shards) build, ship as
/// bytes, and merge in any order.
pub trait Partial: Sized {
    fn empty() -> Self;
    /// Folds `other` in; `other` may be left emptied.
    fn merge(&mut self, other: &mut Self) -> Result<(), CoreError>;
    /// Appends the serialized state to `out`.
    fn serialize_into(&self, out: &mut Vec<u8>);
    fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.serialize_into(&mut out);
        out
    }
    fn deserialize(buf: &[u8]) -> Result<Self, CoreError>;
    /// Brings the state to its smallest equivalent form before it is serialized (a state
    /// may keep raw material that a later step reduces; most keep nothing to reduce).
    fn compact(&mut self) {}
}
