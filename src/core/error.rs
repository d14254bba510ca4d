use std::fmt;

/// What kind of problem an error is; the Postgres layer maps each to a SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An argument has a value the function does not accept (22023).
    InvalidParameter,
    /// Stored or serialized data is truncated or inconsistent (XX001, data_corrupted).
    Corrupt,
    /// A result does not fit in a float8 (22003).
    OutOfRange,
    /// The work would need more memory than its setting allows (53200).
    OutOfMemory,
}

/// An error of the numeric core: a kind, a message without the SQL function's name (the
/// Postgres layer adds it), and optional advice for the HINT.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreError {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl CoreError {
    pub fn new(kind: Kind, message: impl Into<String>) -> CoreError {
        CoreError { kind, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CoreError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CoreError {}

pub fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::new(Kind::InvalidParameter, msg)
}

pub fn out_of_range(msg: impl Into<String>) -> CoreError {
    CoreError::new(Kind::OutOfRange, msg)
}

/// A serialized aggregate state that cannot be read back.
pub fn corrupt_state(what: &str) -> CoreError {
    CoreError::new(Kind::Corrupt, format!("corrupt serialized aggregate state: {what}"))
}

/// A float as PostgreSQL prints it in messages: `NaN`, `Infinity`, `-Infinity`, or the number.
pub fn show(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        x.to_string()
    }
}

/// A list of names as a SQL text array literal: `{recency,frequency}`, quoting elements
/// the way PostgreSQL's array output does.
pub fn sql_array<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| {
            let s = s.as_ref();
            let plain = !s.is_empty()
                && !s.eq_ignore_ascii_case("null")
                && !s.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
            if plain {
                s.to_string()
            } else {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_print_as_postgres_does() {
        // Expected values are what `SELECT ARRAY[...]::text[]` prints in psql.
        assert_eq!(sql_array(&["recency", "frequency"]), "{recency,frequency}");
        assert_eq!(sql_array(&["a b", "x,y", "q\"t", "", "NULL"]), r#"{"a b","x,y","q\"t","","NULL"}"#);
        assert_eq!(sql_array::<&str>(&[]), "{}");
    }
}
