//! Plinth's persistent store: SQLite (embedded default) or PostgreSQL
//! (shared by replicas), behind one API, with an ordered change log written
//! in the same transaction as every entity mutation.
//!
//! Invariants:
//! - every entity write appends exactly one `change_log` row in the same
//!   transaction; followers replay the log in `seq` order;
//! - on PostgreSQL, writers serialise on an advisory lock so `seq` order is
//!   commit order and a follower never skips a row that commits late;
//! - an upsert never takes an entity from another location (the first
//!   location to claim a ref keeps it) and never writes an unchanged hash.

mod audit;
pub use audit::{
    AuditEntry, AuditOutcome, AuditProblem, AuditQuery, AuditVerification, NewAuditEntry, AUDIT_GENESIS_HASH,
    AUDIT_RETENTION_ACTION, AUDIT_RETENTION_ACTOR,
};
mod auth;
pub use auth::{NewToken, SubjectKind, TokenRow, TokensFingerprint};
mod catalog;
mod cluster;
pub use cluster::{CacheRevisions, Cached, Fence, Lease, LeaseView};
mod common;
mod dialect;
mod error;
mod migrations;
mod policy;
mod record;
pub use policy::{DecisionQuery, DecisionRecord, WaiverRecord};
mod postgres;
mod scaffolder;
mod segments;
pub use scaffolder::{NewTask, NewTaskEvent, TaskEventRow, TaskEventType, TaskQuery, TaskRow, TaskStatus};
mod signals;
pub use signals::{
    AlertEventRow, AlertStateRow, AlertTransition, NewAlertEvent, Resolution, RollupKey, RollupQuery, RollupRow,
    ScoreQuery, ScoreRow, SignalBatchOutcome, SpanBody, SpanQuery, SpanRow, TransitionApplied, VersionedAlertState,
};
mod sqlite;
mod stars;
pub use stars::StarRow;
mod types;

pub use error::StoreError;
pub use types::*;

use std::path::Path;

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// `plinth.db` under this directory (created if missing).
    Sqlite { data_dir: std::path::PathBuf },
    /// A `postgres://` URL.
    Postgres { url: String },
}

/// The store. Cheap to clone (a pool inside).
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating if needed) and migrates the store.
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let store = match config {
            StoreConfig::Sqlite { data_dir } => Store::Sqlite(sqlite::SqliteStore::open(data_dir).await?),
            StoreConfig::Postgres { url } => Store::Postgres(postgres::PgStore::open(url).await?),
        };
        store.move_legacy_spans().await?;
        Ok(store)
    }

    pub async fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        Self::open(&StoreConfig::Sqlite { data_dir: data_dir.to_path_buf() }).await
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }
}
