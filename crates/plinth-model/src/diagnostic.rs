//! Diagnostics: what was wrong with user input, where, and how to fix it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a diagnostic is. Errors keep an entity out of the catalogue;
/// warnings are shown but the entity still ingests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in user input. `location` is the file path or URL it
/// came from; `line` is 1-based when known; `field` is a dotted path such as
/// `spec.owner` or `metadata.tags[1]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(location: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location: location.into(),
            line: None,
            entity_ref: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn warning(location: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Self::error(location, message) }
    }

    pub fn at_line(mut self, line: Option<u32>) -> Self {
        self.line = line;
        self
    }

    pub fn for_entity(mut self, entity_ref: Option<String>) -> Self {
        self.entity_ref = entity_ref;
        self
    }

    pub fn on_field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line: error: [entity] field: message`, the shape compilers use,
    /// so editors can jump to the spot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {level}:")?;
        if let Some(entity) = &self.entity_ref {
            write!(f, " {entity}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " {field}:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// A problem with one field of one entity, before it is placed in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub field: String,
    pub message: String,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldIssue { field: field.into(), message: message.into() }
    }
}
