use std::fmt;

/// Errors the numeric core can report. The Postgres layer maps each to a SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// An argument has a value the function does not accept (SQLSTATE 22023).
    InvalidParameter(String),
    /// A serialized aggregate state is truncated or malformed (SQLSTATE XX001-like, data corrupted).
    Corrupt(&'static str),
    /// A result does not fit in a float8 (SQLSTATE 22003).
    OutOfRange(String),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidParameter(m) => f.write_str(m),
            CoreError::Corrupt(what) => write!(f, "corrupt serialized aggregate state: {what}"),
            CoreError::OutOfRange(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CoreError {}

pub fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::InvalidParameter(msg.into())
}

/// A float as PostgreSQL prints it in messages: `NaN`, `Infinity`, `-Infinity`, or the number.
pub fn show(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        x.to_string()
    }
}

pub fn out_of_range(msg: impl Into<String>) -> CoreError {
    CoreError::OutOfRange(msg.into())
}
