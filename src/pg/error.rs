//! Turning problems into PostgreSQL errors with a fitting SQLSTATE.
//!
//! Convention: every message starts with the name of the SQL function or aggregate the
//! user called, then a colon (`rfm_train: k must be between 2 and 50, got 1`); problems of
//! pg_rfm itself rather than of one call start with `pg_rfm:`. The message states the
//! problem; DETAIL adds facts, HINT says what to do.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::core::error::Kind;
use crate::core::CoreError;

/// An ERROR being put together: code, message, optional DETAIL and HINT.
#[must_use = "an error does nothing until it is raised"]
pub struct PgError {
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl PgError {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> PgError {
        PgError { code, message: message.into(), detail: None, hint: None }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> PgError {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> PgError {
        self.hint = Some(hint.into());
        self
    }

    /// Raises the error; never returns.
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.code, self.message, "pg_rfm");
        if let Some(d) = self.detail {
            report = report.set_detail(d);
        }
        if let Some(h) = self.hint {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR returned")
    }
}

/// A NOTICE (progress of long work: reading, fitting, training).
pub fn notice(msg: String) {
    pgrx::ereport!(PgLogLevel::NOTICE, PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, msg);
}

/// Raises `ERROR` with `code`; never returns.
pub fn raise(code: PgSqlErrorCode, msg: impl Into<String>) -> ! {
    PgError::new(code, msg).raise()
}

/// 22023: an argument has a value the function does not accept.
pub fn invalid(msg: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

/// 22004: a NULL where a value is required.
pub fn null_not_allowed(msg: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, msg)
}

/// An SPI call that should not fail did (a bug or a broken catalog, not user input).
pub fn spi_fail(e: impl std::fmt::Display) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("pg_rfm: SPI failed: {e}"))
}

/// The PostgreSQL error for a core error raised on behalf of the SQL function `what`.
pub fn from_core(what: &str, e: CoreError) -> PgError {
    let code = match e.kind {
        Kind::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        Kind::Corrupt => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        Kind::OutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        Kind::OutOfMemory => PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
    };
    let err = PgError::new(code, format!("{what}: {}", e.message));
    match e.hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

pub trait OrRaise<T> {
    /// The value, or the core error raised as a PostgreSQL `ERROR` of the SQL function
    /// `what` (its name starts the message).
    fn or_raise(self, what: &str) -> T;
}

impl<T> OrRaise<T> for Result<T, CoreError> {
    #[inline]
    fn or_raise(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => from_core(what, e).raise(),
        }
    }
}
