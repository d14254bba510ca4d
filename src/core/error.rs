use std::fmt;

/// Errors the numeric core can report. The Postgres layer maps each to a SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// An argument has a value the function does not accept (SQLSTATE 22023).
    InvalidParameter(String),
    /// A serialized aggregate state is truncated or malformed (SQLSTATE XX001-like, data corrupted).
    Corrupt(&'static str),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidParameter(m) => f.write_str(m),
            CoreError::Corrupt(what) => write!(f, "corrupt serialized aggregate state: {what}"),
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
