//! Error types of the scoring crate.

use std::path::PathBuf;

/// A rubric that cannot be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum RubricError {
    /// The rubric file could not be read.
    #[error("cannot read rubric file {path}: {source}")]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The rubric is not well-formed JSON.
    #[error("rubric is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field is missing, has the wrong type, or breaks a validation rule.
    ///
    /// `path` names the offending field, e.g.
    /// `themes[2].stages[3].criteria[0].patterns`.
    #[error("{path}: {message}")]
    Invalid {
        /// Dotted/indexed path of the offending field.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl RubricError {
    /// Builds an [`RubricError::Invalid`].
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        RubricError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The path of the offending field, for validation errors.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            RubricError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// A scoring request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// A request parameter is out of range or unknown.
    #[error("{field}: {message}")]
    InvalidParam {
        /// The parameter (`k`, `as_of_month`, `themes`, ...).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No chunk of the requested year was supplied.
    #[error("no chunks on file for year {year}")]
    NoChunks {
        /// The requested year.
        year: i32,
    },
}

/// A CSV text that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// A quoted field is not closed before the end of the input.
    #[error("line {line}: unterminated quoted field")]
    UnterminatedQuote {
        /// 1-based line where the field starts.
        line: usize,
    },
    /// A character follows a closing quote without a separator.
    #[error("line {line}: unexpected character {found:?} after closing quote")]
    TrailingAfterQuote {
        /// 1-based line of the character.
        line: usize,
        /// The unexpected character.
        found: char,
    },
}
