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

mod common;
mod error;
mod migrations;
mod policy;
pub use policy::{DecisionQuery, DecisionRecord, WaiverRecord};
mod postgres;
mod scaffolder;
pub use scaffolder::{NewTask, NewTaskEvent, TaskEventRow, TaskQuery, TaskRow, TaskStatus};
mod signals;
pub use signals::{
    AlertEventRow, AlertStateRow, Resolution, RollupKey, RollupQuery, RollupRow, ScoreQuery, ScoreRow,
    SignalBatchOutcome, SpanQuery, SpanRow,
};
mod sqlite;
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

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
            Store::Postgres($s) => $body,
        }
    };
}

impl Store {
    /// Opens (creating if needed) and migrates the store.
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        match config {
            StoreConfig::Sqlite { data_dir } => Ok(Store::Sqlite(sqlite::SqliteStore::open(data_dir).await?)),
            StoreConfig::Postgres { url } => Ok(Store::Postgres(postgres::PgStore::open(url).await?)),
        }
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

    /// Applies entity changes in one transaction and appends one change-log
    /// row per change that actually wrote. An upsert whose ref belongs to
    /// another location, or whose hash equals the stored one, writes
    /// nothing and is reported in [`ApplyOutcome::skipped`]. A delete of a
    /// missing ref writes nothing.
    pub async fn apply(&self, changes: &[EntityChange]) -> Result<ApplyOutcome, StoreError> {
        dispatch!(self, s => s.apply(changes).await)
    }

    /// Every entity, for building projections at start.
    pub async fn load_entities(&self) -> Result<Vec<StoredEntity>, StoreError> {
        dispatch!(self, s => s.load_entities().await)
    }

    /// The entities with these keys (lower-case refs); missing keys are absent.
    pub async fn get_entities(&self, keys: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        dispatch!(self, s => s.get_entities(keys).await)
    }

    /// Change-log rows with `seq > after`, in order, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        dispatch!(self, s => s.changes_since(after, limit).await)
    }

    /// The highest `seq` in the change log (0 when empty).
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.last_seq().await)
    }

    /// Registers a location. Registering the same (type, target, branch)
    /// twice returns the existing row with `created == false`.
    pub async fn add_location(&self, location: &NewLocation) -> Result<(LocationRow, bool), StoreError> {
        dispatch!(self, s => s.add_location(location).await)
    }

    pub async fn list_locations(&self) -> Result<Vec<LocationRow>, StoreError> {
        dispatch!(self, s => s.list_locations().await)
    }

    pub async fn get_location(&self, id: &str) -> Result<Option<LocationRow>, StoreError> {
        dispatch!(self, s => s.get_location(id).await)
    }

    /// Removes a location and, in the same transaction, every entity it
    /// manages (each with a change-log row) and its errors. Returns the
    /// change-log rows written, or `None` when there was no such location.
    pub async fn delete_location(&self, id: &str) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        dispatch!(self, s => s.delete_location(id).await)
    }

    /// Records the outcome of a refresh of a location.
    pub async fn set_location_status(&self, id: &str, status: &LocationStatus) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_location_status(id, status).await)
    }

    /// Replaces the ingestion errors of a location with these.
    pub async fn replace_errors(&self, location_id: &str, errors: &[IngestionError]) -> Result<(), StoreError> {
        dispatch!(self, s => s.replace_errors(location_id, errors).await)
    }

    /// Every ingestion error, ordered by location id then insertion order.
    pub async fn list_errors(&self) -> Result<Vec<IngestionError>, StoreError> {
        dispatch!(self, s => s.list_errors().await)
    }
}
