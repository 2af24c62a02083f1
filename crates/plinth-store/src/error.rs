//! Store errors.

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open the database at {target}: {source}")]
    Open { target: String, source: sqlx::Error },
    #[error("database migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    /// The database holds a migration this binary does not know: a newer
    /// Plinth wrote it, and this one would misread what it stores.
    #[error(
        "the database was migrated by a newer Plinth (schema version {found}; this binary knows versions up to {known}): run that Plinth or a newer one, or restore a backup taken before the upgrade"
    )]
    Newer { found: i64, known: i64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A row with the same key (an id, or another unique column such as a
    /// token's secret hash) is stored already; the message says which.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value the store wrote could not be read back (a damaged
    /// database); the message says which.
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// A value could not be written in the store's format (too large, or
    /// not encodable); the message says which. Nothing was written.
    #[error("could not store {0}")]
    Unstorable(String),
    #[error("could not create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}
