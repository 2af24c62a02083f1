//! Why a template, a step or a run failed. Every message says what to fix;
//! the kind says whose problem it is (the template's author, the caller,
//! the policies, the machine).

use plinth_confine::{GitError, PathError};

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// An action's input is missing or has the wrong shape.
    #[error("{0}")]
    Input(String),
    /// A `${{ }}` expression does not parse or fails to evaluate.
    #[error("{0}")]
    Expression(String),
    /// A JSON Schema of a parameter page does not compile.
    #[error("{0}")]
    Schema(String),
    /// A path leaves its root (workspace, template directory, repositories).
    #[error(transparent)]
    Path(#[from] PathError),
    /// git refused an input, or failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A template's own files (skeletons) are missing or unusable.
    #[error("{0}")]
    Files(String),
    /// What the run produced, or wants to publish, is not acceptable.
    #[error("{0}")]
    Publish(String),
    /// A bound of the run: files, bytes, documents.
    #[error("{0}")]
    Limit(String),
    /// A policy denied the run.
    #[error("{0}")]
    Denied(String),
    /// The host (policy service, catalogue) could not do what was asked.
    #[error("{0}")]
    Host(String),
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Another error, with where it happened (`step x (action)`, a file).
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<ScaffoldError>,
    },
}

impl ScaffoldError {
    /// The same error, said to have happened at `context`.
    pub fn context(self, context: impl Into<String>) -> ScaffoldError {
        ScaffoldError::Context { context: context.into(), source: Box::new(self) }
    }

    /// An I/O failure with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ScaffoldError {
        let what = what.into();
        move |source| ScaffoldError::Io { what, source }
    }
}
