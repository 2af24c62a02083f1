//! The SQLite backend: one `plinth.db` file in the data directory, WAL mode,
//! a small pool, multi-row statements for bulk writes and JSON-aggregated
//! pages for bulk reads (far cheaper than moving rows out one by one).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::Notify;

use crate::common::{self, etag_of, new_uuid, normalize_branch, op_str, parse_op};
use crate::{
    ApplyOutcome, ChangeOp, ChangeRecord, EntityChange, EntityUpsert, IngestionError, LocationRow, LocationStatus,
    NewLocation, StoreError, StoredEntity,
};

/// Bind parameters per statement: below SQLite's default limit of 32,766.
const MAX_PARAMS: usize = 32_000;

/// Rows per page when reading in bulk.
const READ_CHUNK: usize = 2_000;

const ENTITY_COLUMNS: &str = "entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at";
const LOCATION_COLUMNS: &str = "id, kind, target, branch, created_at, status";

/// A SQLite-backed store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    checkpointer: Arc<Checkpointer>,
}

/// Copies committed WAL frames into the database file in the background
/// after writes, so a large apply does not also pay for its checkpoint (which
/// SQLite would otherwise run inside the commit). Stops when the last clone
/// of the store is dropped.
struct Checkpointer {
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpointer {
    fn spawn(pool: SqlitePool) -> Checkpointer {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn({
            let wake = Arc::clone(&wake);
            async move {
                loop {
                    // Notifications while a checkpoint runs coalesce into one more pass.
                    wake.notified().await;
                    if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                        tracing::warn!(%error, "SQLite WAL checkpoint failed");
                    }
                }
            }
        });
        Checkpointer { wake, task }
    }

    fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `(?, ?, ?), (?, ?, ?)` for `rows` rows of `cols` parameters.
fn values_placeholders(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}

/// `?, ?, ?` for `n` parameters.
fn list_placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// An entity row as `json_array({ENTITY_COLUMNS})`.
type EntityJson = (String, String, String, String, String, String, String, String, String, String);

fn entity_from_json(e: EntityJson) -> StoredEntity {
    let (key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at) = e;
    StoredEntity { key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at }
}

/// Runs a query returning one row with one `json_group_array(...)` column
/// and decodes the array.
async fn fetch_json<'q, T: DeserializeOwned>(
    conn: &mut SqliteConnection,
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
) -> Result<Vec<T>, StoreError> {
    let row = query.fetch_one(conn).await?;
    let text: Option<&str> = row.try_get(0)?;
    match text {
        Some(text) => common::from_json(text),
        None => Ok(Vec::new()),
    }
}

fn location_from_row(row: &SqliteRow) -> Result<LocationRow, StoreError> {
    let status: String = row.try_get(5)?;
    Ok(LocationRow {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        target: row.try_get(2)?,
        branch: row.try_get(3)?,
        created_at: row.try_get(4)?,
        status: common::from_json(&status)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/plinth.db` and migrates it.
    pub async fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
        let path = data_dir.join("plinth.db");
        let target = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .row_buffer_size(1024)
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoints run in the background (see `Checkpointer`), not
            // inside the commit that crosses a threshold.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", "67108864");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target: target.clone(), source })?;
        let mut conn = pool.acquire().await.map_err(|source| StoreError::Open { target, source })?;
        crate::migrations::run_sqlite(&mut conn).await?;
        drop(conn);
        let checkpointer = Arc::new(Checkpointer::spawn(pool.clone()));
        Ok(SqliteStore { pool, checkpointer })
    }

    /// Commits a write transaction and schedules a checkpoint.
    async fn commit_write(&self, tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.checkpointer.wake();
        Ok(())
    }

    /// A write transaction that takes the database write lock up front, so
    /// it never fails half-way on a stale read snapshot.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn apply(&self, changes: &[EntityChange]) -> Result<ApplyOutcome, StoreError> {
        let changes = common::dedupe(changes);
        if changes.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let now = common::now();
        let mut upserts: Vec<&EntityUpsert> = Vec::new();
        let mut deletes: Vec<&str> = Vec::new();
        for change in &changes {
            match change {
                EntityChange::Upsert(u) => upserts.push(u),
                EntityChange::Delete { key } => deletes.push(key),
            }
        }

        // The write lock is held from the start, so what we read is what we
        // overwrite.
        let mut tx = self.begin_write().await?;
        let differing = differing_upserts(&mut tx, &upserts).await?;
        let mut existing_uids: HashMap<String, String> =
            differing.iter().filter_map(|(key, (_, uid))| Some((key.clone(), uid.clone()?))).collect();
        let differing = differing.into_iter().map(|(key, (owner, _))| (key, owner)).collect();
        let common::Classified { inserts, updates, owners } = common::classify(&upserts, differing);
        let mut uids: HashMap<String, String> = HashMap::with_capacity(inserts.len() + updates.len());
        let to_write: Vec<&EntityUpsert> = inserts.into_iter().chain(updates).collect();
        let mut written: HashSet<String> = HashSet::with_capacity(to_write.len() + deletes.len());

        const UPSERT_COLS: usize = 10;
        for chunk in to_write.chunks(MAX_PARAMS / UPSERT_COLS) {
            let sql = format!(
                "INSERT INTO entities ({ENTITY_COLUMNS}) VALUES {} \
                 ON CONFLICT (entity_key) DO UPDATE SET etag = excluded.etag, kind = excluded.kind, \
                 namespace = excluded.namespace, name = excluded.name, body = excluded.body, hash = excluded.hash, \
                 updated_at = excluded.updated_at \
                 WHERE entities.location_id = excluded.location_id AND entities.hash <> excluded.hash",
                values_placeholders(chunk.len(), UPSERT_COLS)
            );
            let mut query = sqlx::query(&sql);
            for u in chunk {
                // An update keeps the stored uid (the upsert never sets it);
                // an insert takes a new one. Either way the caller learns it.
                let uid = existing_uids.remove(&u.key).unwrap_or_else(new_uuid);
                uids.insert(u.key.clone(), uid.clone());
                query = query
                    .bind(u.key.as_str())
                    .bind(uid)
                    .bind(etag_of(&u.hash))
                    .bind(u.kind.as_str())
                    .bind(u.namespace.as_str())
                    .bind(u.name.as_str())
                    .bind(u.body.as_str())
                    .bind(u.hash.as_str())
                    .bind(u.location_id.as_str())
                    .bind(now.as_str());
            }
            let affected = query.execute(&mut *tx).await?.rows_affected();
            if affected != chunk.len() as u64 {
                return Err(common::unexpected_rows("an entity upsert", chunk.len(), affected));
            }
            written.extend(chunk.iter().map(|u| u.key.clone()));
        }

        for chunk in deletes.chunks(READ_CHUNK) {
            let sql = format!(
                "SELECT json_group_array(entity_key) FROM entities WHERE entity_key IN ({})",
                list_placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            let existing: Vec<String> = fetch_json(&mut tx, query).await?;
            if existing.is_empty() {
                continue;
            }
            let sql = format!("DELETE FROM entities WHERE entity_key IN ({})", list_placeholders(existing.len()));
            let mut query = sqlx::query(&sql);
            for key in &existing {
                query = query.bind(key.as_str());
            }
            let affected = query.execute(&mut *tx).await?.rows_affected();
            if affected != existing.len() as u64 {
                return Err(common::unexpected_rows("an entity delete", existing.len(), affected));
            }
            written.extend(existing);
        }

        let records = append_log(&mut tx, &common::log_entries(&changes, &written), &now).await?;
        self.commit_write(tx).await?;
        Ok(ApplyOutcome { uids, ..common::outcome(&changes, &written, &owners, records) })
    }

    pub async fn load_entities(&self) -> Result<Vec<StoredEntity>, StoreError> {
        // Pages of rows aggregated into one JSON value each (moving rows one
        // by one out of SQLite costs more than the JSON), all read from one
        // snapshot.
        let sql = format!(
            "SELECT json_group_array(json_array(rowid, json_array({ENTITY_COLUMNS}))) \
             FROM (SELECT rowid, * FROM entities WHERE rowid > ? ORDER BY rowid LIMIT {READ_CHUNK})"
        );
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::new();
        let mut after = 0_i64;
        loop {
            let page: Vec<(i64, EntityJson)> = fetch_json(&mut tx, sqlx::query(&sql).bind(after)).await?;
            let Some(last) = page.iter().map(|(rowid, _)| *rowid).max() else { break };
            after = last;
            out.extend(page.into_iter().map(|(_, e)| entity_from_json(e)));
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn get_entities(&self, keys: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut tx = self.pool.begin().await?;
        for chunk in keys.chunks(READ_CHUNK) {
            let sql = format!(
                "SELECT json_group_array(json_array({ENTITY_COLUMNS})) FROM entities WHERE entity_key IN ({})",
                list_placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            let page: Vec<EntityJson> = fetch_json(&mut tx, query).await?;
            out.extend(page.into_iter().map(entity_from_json));
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        // The log is append-only in seq order, so pages need no common snapshot.
        let mut conn = self.pool.acquire().await?;
        let mut out: Vec<ChangeRecord> = Vec::new();
        let mut cursor = after;
        let mut remaining = limit.max(0);
        while remaining > 0 {
            let page_size = remaining.min(READ_CHUNK as i64);
            let page: Vec<(i64, String, String, String)> = fetch_json(
                &mut conn,
                sqlx::query(
                    "SELECT json_group_array(json_array(seq, entity_key, op, at)) \
                     FROM (SELECT seq, entity_key, op, at FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?)",
                )
                .bind(cursor)
                .bind(page_size),
            )
            .await?;
            let full = page.len() as i64 == page_size;
            let mut records = page
                .into_iter()
                .map(|(seq, key, op, at)| Ok(ChangeRecord { seq, key, op: parse_op(&op)?, at }))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            records.sort_by_key(|r| r.seq);
            let Some(last) = records.last() else { break };
            cursor = last.seq;
            remaining -= records.len() as i64;
            out.append(&mut records);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM change_log").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    pub async fn add_location(&self, location: &NewLocation) -> Result<(LocationRow, bool), StoreError> {
        let branch = normalize_branch(&location.branch);
        let status = common::to_json(&LocationStatus::default())?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO locations ({LOCATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING RETURNING {LOCATION_COLUMNS}"
        ))
        .bind(new_uuid())
        .bind(location.kind.as_str())
        .bind(location.target.as_str())
        .bind(branch)
        .bind(common::now())
        .bind(status)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match inserted {
            Some(row) => (location_from_row(&row)?, true),
            None => {
                let row = sqlx::query(&format!(
                    "SELECT {LOCATION_COLUMNS} FROM locations \
                     WHERE kind = ? AND target = ? AND COALESCE(branch, '') = COALESCE(?, '')"
                ))
                .bind(location.kind.as_str())
                .bind(location.target.as_str())
                .bind(branch)
                .fetch_one(&mut *tx)
                .await?;
                (location_from_row(&row)?, false)
            }
        };
        self.commit_write(tx).await?;
        Ok(result)
    }

    pub async fn list_locations(&self) -> Result<Vec<LocationRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {LOCATION_COLUMNS} FROM locations ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(location_from_row).collect()
    }

    pub async fn get_location(&self, id: &str) -> Result<Option<LocationRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(location_from_row).transpose()
    }

    pub async fn delete_location(&self, id: &str) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted =
            sqlx::query("DELETE FROM locations WHERE id = ? RETURNING id").bind(id).fetch_optional(&mut *tx).await?;
        if deleted.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut keys: Vec<String> = fetch_json(
            &mut tx,
            sqlx::query("SELECT json_group_array(entity_key) FROM entities WHERE location_id = ?").bind(id),
        )
        .await?;
        let affected =
            sqlx::query("DELETE FROM entities WHERE location_id = ?").bind(id).execute(&mut *tx).await?.rows_affected();
        if affected != keys.len() as u64 {
            return Err(common::unexpected_rows("a location's entity delete", keys.len(), affected));
        }
        keys.sort_unstable();
        let entries: Vec<(&str, ChangeOp)> = keys.iter().map(|k| (k.as_str(), ChangeOp::Delete)).collect();
        let records = append_log(&mut tx, &entries, &common::now()).await?;
        sqlx::query("DELETE FROM ingestion_errors WHERE location_id = ?").bind(id).execute(&mut *tx).await?;
        self.commit_write(tx).await?;
        Ok(Some(records))
    }

    pub async fn set_location_status(&self, id: &str, status: &LocationStatus) -> Result<(), StoreError> {
        sqlx::query("UPDATE locations SET status = ? WHERE id = ?")
            .bind(common::to_json(status)?)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.checkpointer.wake();
        Ok(())
    }

    pub async fn replace_errors(&self, location_id: &str, errors: &[IngestionError]) -> Result<(), StoreError> {
        let bodies: Vec<String> = errors.iter().map(|e| common::to_json(&e.diagnostic)).collect::<Result<_, _>>()?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM ingestion_errors WHERE location_id = ?").bind(location_id).execute(&mut *tx).await?;
        for chunk in bodies.chunks(MAX_PARAMS / 2) {
            let sql = format!(
                "INSERT INTO ingestion_errors (location_id, body) VALUES {}",
                values_placeholders(chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql);
            for body in chunk {
                query = query.bind(location_id).bind(body.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        self.commit_write(tx).await?;
        Ok(())
    }

    pub async fn list_errors(&self) -> Result<Vec<IngestionError>, StoreError> {
        let rows = sqlx::query("SELECT location_id, body FROM ingestion_errors ORDER BY location_id, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let body: String = row.try_get(1)?;
                Ok(IngestionError { location_id: row.try_get(0)?, diagnostic: common::from_json(&body)? })
            })
            .collect()
    }
}

/// The upserts that would change something: new keys (`None`) and keys
/// stored with another hash or location (`Some(owner)`). Unchanged keys are
/// absent, so a refresh that changes nothing reads almost nothing back.
async fn differing_upserts(
    tx: &mut Transaction<'static, Sqlite>,
    upserts: &[&EntityUpsert],
) -> Result<HashMap<String, (Option<String>, Option<String>)>, StoreError> {
    const COLS: usize = 3;
    let mut differing = HashMap::new();
    for chunk in upserts.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "WITH v(k, l, h) AS (VALUES {}) \
             SELECT json_group_array(json_array(v.k, e.location_id, e.uid)) FROM v LEFT JOIN entities e ON e.entity_key = v.k \
             WHERE e.entity_key IS NULL OR e.location_id <> v.l OR e.hash <> v.h",
            values_placeholders(chunk.len(), COLS)
        );
        let mut query = sqlx::query(&sql);
        for u in chunk {
            query = query.bind(u.key.as_str()).bind(u.location_id.as_str()).bind(u.hash.as_str());
        }
        let page: Vec<(String, Option<String>, Option<String>)> = fetch_json(tx, query).await?;
        differing.extend(page.into_iter().map(|(key, owner, uid)| (key, (owner, uid))));
    }
    Ok(differing)
}

/// Appends one change-log row per entry, in order, and returns them. The
/// caller holds the write lock, so the seqs after the highest one ever used
/// are ours.
async fn append_log(
    tx: &mut Transaction<'static, Sqlite>,
    entries: &[(&str, ChangeOp)],
    at: &str,
) -> Result<Vec<ChangeRecord>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let last: i64 = sqlx::query(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0), \
                    COALESCE((SELECT MAX(seq) FROM change_log), 0))",
    )
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    let records = common::log_records(entries, last + 1, at);
    const COLS: usize = 4;
    for chunk in records.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "INSERT INTO change_log (seq, entity_key, op, at) VALUES {}",
            values_placeholders(chunk.len(), COLS)
        );
        let mut query = sqlx::query(&sql);
        for record in chunk {
            query = query.bind(record.seq).bind(record.key.as_str()).bind(op_str(record.op)).bind(at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(records)
}
