//! Plain data crossing the store boundary.

use plinth_model::Diagnostic;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One entity mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityChange {
    Upsert(EntityUpsert),
    Delete { key: String },
}

impl EntityChange {
    pub fn key(&self) -> &str {
        match self {
            EntityChange::Upsert(upsert) => &upsert.key,
            EntityChange::Delete { key } => key,
        }
    }
}

/// An entity to insert or update. `key` is the lower-case ref
/// (`component:default/checkout`); `body` is the entity JSON without uid,
/// etag or relations.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityUpsert {
    pub key: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub body: String,
    pub hash: String,
    /// The registered location that manages this entity.
    pub location_id: String,
}

/// An entity as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntity {
    pub key: String,
    /// Assigned on first insert, kept for the entity's life.
    pub uid: String,
    /// Changes whenever the body changes (derived from the hash).
    pub etag: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub body: String,
    pub hash: String,
    pub location_id: String,
    /// When it was last written (stored to the microsecond).
    pub updated_at: time::OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Upsert,
    Delete,
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub seq: i64,
    pub key: String,
    pub op: ChangeOp,
    /// When it was written (stored to the microsecond).
    pub at: time::OffsetDateTime,
}

/// What [`crate::Store::apply`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyOutcome {
    /// Change-log rows written, in seq order.
    pub written: Vec<ChangeRecord>,
    /// Upserts that wrote nothing: `(key, reason)`.
    pub skipped: Vec<(String, SkipReason)>,
    /// The uid of every upsert that wrote (new, or kept on update), so a
    /// writer can update its own projection without reading rows back.
    pub uids: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Unchanged,
    /// The ref is managed by this other location.
    OwnedBy(String),
    /// A delete of a key that is not stored.
    Missing,
}

/// A location to register. `kind` is `file` (a file or directory path) or
/// `git` (a repository URL or path, with an optional branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLocation {
    pub kind: String,
    pub target: String,
    pub branch: Option<String>,
}

/// What a registered location reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    /// A file or a directory on this machine.
    File,
    /// A git repository (a URL, or a path), optionally a branch and a path in it.
    Git,
}

impl LocationKind {
    /// The stored (and API) name: `file` or `git`.
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::File => "file",
            LocationKind::Git => "git",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<LocationKind> {
        match name {
            "file" => Some(LocationKind::File),
            "git" => Some(LocationKind::Git),
            _ => None,
        }
    }
}

impl std::fmt::Display for LocationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationRow {
    pub id: String,
    pub kind: LocationKind,
    pub target: String,
    pub branch: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    pub status: LocationStatus,
}

/// How the last refresh of a location went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationStatus {
    /// RFC 3339 UTC of the last refresh, if any.
    pub refreshed_at: Option<String>,
    pub entities: i64,
    pub errors: i64,
    /// Git commit the last refresh read, for git locations.
    pub revision: Option<String>,
    /// Set when a refresh starts and cleared when it completes: a location
    /// that still has it after a restart was cut off mid-refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshing_since: Option<String>,
}

impl LocationStatus {
    /// The last refresh did not complete (or none ever ran).
    pub fn interrupted(&self) -> bool {
        self.refreshing_since.is_some() || self.refreshed_at.is_none()
    }
}

/// An ingestion problem, attributed to the registered location whose
/// refresh found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionError {
    pub location_id: String,
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
}
