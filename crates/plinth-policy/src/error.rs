//! What can go wrong in the policy crate, each with what to do about it.

/// Errors of parsing names, reading policy sources and evaluating Rego.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown enforcement point `{0}`; use one of catalog, provision, deploy, admission, pr")]
    UnknownPoint(String),
    #[error("unknown result `{0}`; use allow, warn or deny")]
    UnknownOutcome(String),
    #[error("unknown enforcement mode `{0}`; use enforce, warn or dry-run")]
    UnknownEnforcement(String),
    /// A policy, data or manifest file could not be read.
    #[error("{0}")]
    Read(String),
    /// Two data files give different values at one path.
    #[error("`{0}` is already defined by another data file with a different value")]
    DataConflict(String),
    /// A `# METADATA` block is not valid YAML of the expected shape.
    #[error("{0}")]
    Annotation(String),
    /// Rego evaluation failed (regorus says why, with file and line).
    #[error("{0}")]
    Evaluation(String),
    #[error("query `{query}` failed: {message}")]
    Query { query: String, message: String },
}
