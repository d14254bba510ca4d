//! Turning problems into PostgreSQL errors with a fitting SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::core::CoreError;

/// Raises `ERROR` with `code`; never returns.
pub fn raise(code: PgSqlErrorCode, msg: impl Into<String>) -> ! {
    ErrorReport::new(code, msg.into(), "pg_rfm").report(PgLogLevel::ERROR);
    unreachable!("ERROR returned")
}

pub fn invalid(msg: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

pub fn null_not_allowed(msg: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, msg)
}

/// An SPI call that should not fail did (a bug or a broken catalog, not user input).
pub fn spi_fail(e: impl std::fmt::Display) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("pg_rfm: SPI failed: {e}"))
}

pub fn from_core(e: CoreError) -> ! {
    match e {
        CoreError::InvalidParameter(m) => invalid(m),
        CoreError::Corrupt(_) => raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, e.to_string()),
        CoreError::OutOfRange(m) => raise(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, m),
    }
}

pub trait OrRaise<T> {
    /// The value, or the core error raised as a PostgreSQL `ERROR`.
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, CoreError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| from_core(e))
    }
}
