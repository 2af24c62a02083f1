//! The application layer's one error type. Its kinds are few and
//! deliberate; every surface maps each kind to exactly one answer:
//!
//! | kind | HTTP | CLI exit | MCP |
//! |---|---|---|---|
//! | `NotFound` | 404 | 1 | `isError` |
//! | `InvalidInput` | 400 (with field errors) | 2 | `isError` |
//! | `Conflict` | 409 | 4 | `isError` |
//! | `Unauthenticated` | 401 | 5 | `isError` |
//! | `Forbidden` | 403 | 6 | `isError` |
//! | `Overloaded` | 429 + `Retry-After` | 7 | `isError` |
//! | `Unavailable` | 503 + `Retry-After` | 8 | `isError` |
//! | `Internal` | 500 | 9 | `isError` |
//!
//! The message says what was wrong and how to fix it; field errors name
//! the field.

use serde::Serialize;
use std::fmt;

/// The kind of an [`AppError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    NotFound,
    InvalidInput,
    Conflict,
    Unauthenticated,
    Forbidden,
    Overloaded,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The process exit code a CLI verb ends with.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::InvalidInput => 2,
            // As the issue asks and as kubectl and gh do: a name that does
            // not exist is a problem the verb found (1); the message names it
            // and suggests the closest ones.
            ErrorKind::NotFound => 1,
            ErrorKind::Conflict => 4,
            ErrorKind::Unauthenticated => 5,
            ErrorKind::Forbidden => 6,
            ErrorKind::Overloaded => 7,
            ErrorKind::Unavailable => 8,
            ErrorKind::Internal => 9,
        }
    }
}

/// A problem with one field of an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as a dotted path (`spec.owner`, `values.name`).
    pub field: String,
    pub message: String,
}

/// Why a use case could not be done.
#[derive(Debug, Clone, PartialEq)]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    /// Per-field problems of an invalid input.
    pub fields: Vec<FieldError>,
    /// Structured detail for the caller (problems of a template, …).
    /// Boxed: errors travel in every `Result`, and most have none.
    pub details: Option<Box<serde_json::Value>>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> AppError {
        AppError { kind, message: message.to_string(), fields: Vec::new(), details: None }
    }
    pub fn not_found(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::NotFound, message)
    }
    pub fn invalid(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::InvalidInput, message)
    }
    /// An invalid input with the problem of one field.
    pub fn invalid_field(field: &str, message: impl fmt::Display) -> AppError {
        let message = message.to_string();
        AppError {
            kind: ErrorKind::InvalidInput,
            message: format!("`{field}`: {message}"),
            fields: vec![FieldError { field: field.to_string(), message }],
            details: None,
        }
    }
    pub fn unauthenticated(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::Unauthenticated, message)
    }
    pub fn forbidden(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::Forbidden, message)
    }
    pub fn conflict(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::Conflict, message)
    }
    pub fn unavailable(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::Unavailable, message)
    }
    pub fn overloaded(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::Overloaded, message)
    }
    pub fn internal(message: impl fmt::Display) -> AppError {
        AppError::new(ErrorKind::Internal, message)
    }
    pub fn with_fields(mut self, fields: Vec<FieldError>) -> AppError {
        self.fields = fields;
        self
    }
    pub fn with_details(mut self, details: serde_json::Value) -> AppError {
        self.details = Some(Box::new(details));
        self
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl From<plinth_store::StoreError> for AppError {
    fn from(error: plinth_store::StoreError) -> Self {
        tracing::error!(%error, "store error");
        AppError::unavailable(format!("the store could not answer: {error}"))
    }
}

impl From<plinth_catalog::CatalogError> for AppError {
    fn from(error: plinth_catalog::CatalogError) -> Self {
        use plinth_catalog::CatalogError;
        match error {
            CatalogError::UnknownLocation(_) => AppError::not_found(error),
            CatalogError::BadLocation(_) => AppError::invalid(error),
            CatalogError::Store(store) => store.into(),
            other => {
                tracing::error!(error = %other, "catalogue error");
                AppError::internal(other)
            }
        }
    }
}

impl From<plinth_model::RefError> for AppError {
    fn from(error: plinth_model::RefError) -> Self {
        AppError::invalid(error)
    }
}

impl From<plinth_policy::PolicyError> for AppError {
    fn from(error: plinth_policy::PolicyError) -> Self {
        AppError::invalid(error)
    }
}
