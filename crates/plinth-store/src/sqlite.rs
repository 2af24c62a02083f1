//! The SQLite backend: one `plinth.db` file in the data directory, WAL mode,
//! a small pool, background checkpoints, and the catalogue's bulk work:
//! multi-row statements for writes and JSON-aggregated pages for reads (far
//! cheaper than moving rows out one by one). The statements themselves are
//! in `catalog`, beside their PostgreSQL forms.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::Notify;

use crate::catalog::{self, DifferingRecord, EntityRecord, EntityWrites, LogRecord};
use crate::common::{self, etag_of, op_str};
use crate::record::record;
use crate::{ChangeOp, ChangeRecord, EntityUpsert, StoreError, StoredEntity};

/// Bind parameters per statement: below SQLite's default limit of 32,766.
const MAX_PARAMS: usize = 32_000;

/// Rows per page when reading in bulk.
const READ_CHUNK: usize = 2_000;

/// A SQLite-backed store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    checkpointer: Arc<Checkpointer>,
}

/// The shortest time between two background checkpoints.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

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
                    // Notifications while a checkpoint runs, or during the
                    // pause after it, coalesce into one more pass.
                    wake.notified().await;
                    if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                        tracing::warn!(%error, "SQLite WAL checkpoint failed");
                    }
                    // At most one checkpoint a second: each copies the pages
                    // the WAL holds, and back-to-back commits (OTLP group
                    // commits above all) dirty the same pages again and
                    // again. Without this pause, ingest on SQLite spent more
                    // than half its CPU checkpointing (24k vs 57k spans per
                    // CPU-second in `plinth bench signals`).
                    tokio::time::sleep(CHECKPOINT_INTERVAL).await;
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

record! {
    /// The one column of a JSON-aggregated read: a JSON array (of rows).
    struct JsonArray<'r> {
        array: Option<&'r str>,
    }
}

/// Runs a query answering one row with one JSON array column (such as a
/// `json_group_array(...)`) and decodes the array.
async fn fetch_json<'q, T: DeserializeOwned>(
    conn: &mut SqliteConnection,
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
) -> Result<Vec<T>, StoreError> {
    let row = query.fetch_one(conn).await?;
    match JsonArray::from_row(&row)?.array {
        Some(text) => common::from_json(text),
        None => Ok(Vec::new()),
    }
}

/// `inner` (a query of `columns`) with its rows aggregated into one JSON
/// array of arrays, for [`fetch_json`].
fn json_rows(columns: &str, inner: &str) -> String {
    format!("SELECT json_group_array(json_array({columns})) FROM ({inner})")
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
            // 8 MiB of page cache per connection (4 connections): the OS
            // page cache holds the rest; 64 MiB each cost up to 256 MiB of RSS.
            .pragma("cache_size", "-8192")
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

    /// A write transaction that takes the database write lock up front, so
    /// it never fails half-way on a stale read snapshot.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with(crate::dialect::Dialect::Sqlite.begin_write()).await?)
    }

    /// A write transaction of entities and the change log: SQLite has one
    /// writer at a time, so this is [`SqliteStore::begin_write`].
    pub(crate) async fn begin_catalog_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.begin_write().await
    }

    /// Commits a write transaction and schedules a checkpoint.
    pub(crate) async fn commit_write(&self, tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.wrote();
        Ok(())
    }

    /// Schedules a checkpoint after a write outside [`SqliteStore::commit_write`].
    pub(crate) fn wrote(&self) {
        self.checkpointer.wake();
    }

    /// A connection whose commits sync the WAL, until
    /// [`SqliteStore::release_durable`]. The store runs with
    /// `synchronous=NORMAL`, where a WAL commit survives a crash of the
    /// process but not of the machine; a write acknowledged to a sender (a
    /// signal batch) is synced. Per connection, and reset on release.
    pub(crate) async fn acquire_durable(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
        Ok(conn)
    }

    /// Returns a connection from [`SqliteStore::acquire_durable`] to the pool
    /// as it found it.
    pub(crate) async fn release_durable(&self, mut conn: PoolConnection<Sqlite>) -> Result<(), StoreError> {
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
        Ok(())
    }

    /// Schedules a checkpoint after signals were written. Ingest commits
    /// back to back and dirties the same pages again and again, so these
    /// checkpoints run at most once a second, and one at a time (a request
    /// while one runs is dropped; the next ingest asks again): without them
    /// the WAL would grow for as long as only signals are written.
    pub(crate) fn wrote_signals(&self) {
        static LAST_CHECKPOINT_MS: AtomicU64 = AtomicU64::new(0);
        static CHECKPOINT_RUNNING: AtomicBool = AtomicBool::new(false);
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        if now_ms.saturating_sub(LAST_CHECKPOINT_MS.load(Ordering::Acquire)) < 1000 {
            return;
        }
        if CHECKPOINT_RUNNING.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        LAST_CHECKPOINT_MS.store(now_ms, Ordering::Release);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::warn!(%error, "SQLite WAL checkpoint after signal ingest failed");
            }
            CHECKPOINT_RUNNING.store(false, Ordering::Release);
        });
    }

    /// The upserts that would change something (see `catalog::sqlite_differing`).
    /// Unchanged keys are absent, so a refresh that changes nothing reads
    /// almost nothing back.
    pub(crate) async fn differing(
        &self,
        conn: &mut SqliteConnection,
        upserts: &[&EntityUpsert],
    ) -> Result<Vec<DifferingRecord>, StoreError> {
        const COLS: usize = 3;
        let mut differing = Vec::new();
        for chunk in upserts.chunks(MAX_PARAMS / COLS) {
            let sql = catalog::sqlite_differing(chunk.len());
            let mut query = sqlx::query(&sql);
            for u in chunk {
                query = query.bind(u.key.as_str()).bind(u.location_id.as_str()).bind(u.hash.as_str());
            }
            differing.extend(fetch_json::<DifferingRecord>(conn, query).await?);
        }
        Ok(differing)
    }

    /// Writes new and changed entities (see `catalog::sqlite_upsert_entities`).
    pub(crate) async fn write_entities(
        &self,
        conn: &mut SqliteConnection,
        writes: &EntityWrites<'_>,
        now: &str,
    ) -> Result<(), StoreError> {
        const COLS: usize = 10;
        for chunk in writes.rows.chunks(MAX_PARAMS / COLS) {
            let sql = catalog::sqlite_upsert_entities(chunk.len());
            let mut query = sqlx::query(&sql);
            // In `EntityRecord::COLUMNS` order.
            for (u, uid) in chunk {
                query = query
                    .bind(u.key.as_str())
                    .bind(uid.as_str())
                    .bind(etag_of(&u.hash))
                    .bind(u.kind.as_str())
                    .bind(u.namespace.as_str())
                    .bind(u.name.as_str())
                    .bind(u.body.as_str())
                    .bind(u.hash.as_str())
                    .bind(u.location_id.as_str())
                    .bind(now);
            }
            let affected = query.execute(&mut *conn).await?.rows_affected();
            if affected != chunk.len() as u64 {
                return Err(common::unexpected_rows("an entity upsert", chunk.len(), affected));
            }
        }
        Ok(())
    }

    /// Deletes entities by key; returns the keys that were stored.
    pub(crate) async fn delete_entities(
        &self,
        conn: &mut SqliteConnection,
        keys: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        let mut deleted = Vec::new();
        for chunk in keys.chunks(READ_CHUNK) {
            let sql = catalog::sqlite_stored_keys(chunk.len());
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            let existing: Vec<String> = fetch_json(conn, query).await?;
            if existing.is_empty() {
                continue;
            }
            let sql = catalog::sqlite_delete_keys(existing.len());
            let mut query = sqlx::query(&sql);
            for key in &existing {
                query = query.bind(key.as_str());
            }
            let affected = query.execute(&mut *conn).await?.rows_affected();
            if affected != existing.len() as u64 {
                return Err(common::unexpected_rows("an entity delete", existing.len(), affected));
            }
            deleted.extend(existing);
        }
        Ok(deleted)
    }

    /// Deletes the entities of a location; returns their keys.
    pub(crate) async fn delete_location_entities(
        &self,
        conn: &mut SqliteConnection,
        location_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let keys: Vec<String> = fetch_json(conn, sqlx::query(catalog::SQLITE_LOCATION_KEYS).bind(location_id)).await?;
        let affected = sqlx::query(catalog::SQLITE_DELETE_LOCATION_ENTITIES)
            .bind(location_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if affected != keys.len() as u64 {
            return Err(common::unexpected_rows("a location's entity delete", keys.len(), affected));
        }
        Ok(keys)
    }

    /// Appends one change-log row per entry, in order, and returns them. The
    /// caller holds the write lock, so the seqs after the highest one ever
    /// used are ours.
    pub(crate) async fn append_log(
        &self,
        conn: &mut SqliteConnection,
        entries: &[(&str, ChangeOp)],
        at: &common::Now,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let last: i64 = sqlx::query_scalar(catalog::SQLITE_LAST_SEQ_USED).fetch_one(&mut *conn).await?;
        let records = common::log_records(entries, last + 1, at);
        const COLS: usize = 4;
        for chunk in records.chunks(MAX_PARAMS / COLS) {
            let sql = catalog::sqlite_insert_log(chunk.len());
            let mut query = sqlx::query(&sql);
            // In `LogRecord::COLUMNS` order.
            for record in chunk {
                query = query.bind(record.seq).bind(record.key.as_str()).bind(op_str(record.op)).bind(at.text.as_str());
            }
            query.execute(&mut *conn).await?;
        }
        Ok(records)
    }

    /// Inserts a location's errors (their JSON bodies), in order.
    pub(crate) async fn insert_errors(
        &self,
        conn: &mut SqliteConnection,
        location_id: &str,
        bodies: &[String],
    ) -> Result<(), StoreError> {
        for chunk in bodies.chunks(MAX_PARAMS / 2) {
            let sql = catalog::sqlite_insert_errors(chunk.len());
            let mut query = sqlx::query(&sql);
            for body in chunk {
                query = query.bind(location_id).bind(body.as_str());
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn load_entities(&self) -> Result<Vec<StoredEntity>, StoreError> {
        // Pages of rows aggregated into one JSON value each, all read from
        // one snapshot.
        let sql = catalog::sqlite_load_entities(READ_CHUNK);
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::new();
        let mut after = 0_i64;
        loop {
            let page: Vec<(i64, EntityRecord)> = fetch_json(&mut tx, sqlx::query(&sql).bind(after)).await?;
            let Some(last) = page.iter().map(|(rowid, _)| *rowid).max() else { break };
            after = last;
            for (_, row) in page {
                out.push(StoredEntity::try_from(row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) async fn get_entities(&self, keys: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut tx = self.pool.begin().await?;
        for chunk in keys.chunks(READ_CHUNK) {
            let sql = catalog::sqlite_get_entities(chunk.len());
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            let page: Vec<EntityRecord> = fetch_json(&mut tx, query).await?;
            for row in page {
                out.push(StoredEntity::try_from(row)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        // The log is append-only in seq order, so pages need no common snapshot.
        let sql = json_rows(LogRecord::COLUMNS, &catalog::select_changes());
        let mut conn = self.pool.acquire().await?;
        let mut out: Vec<ChangeRecord> = Vec::new();
        let mut cursor = after;
        let mut remaining = limit.max(0);
        while remaining > 0 {
            let page_size = remaining.min(READ_CHUNK as i64);
            let page: Vec<LogRecord> = fetch_json(&mut conn, sqlx::query(&sql).bind(cursor).bind(page_size)).await?;
            let full = page.len() as i64 == page_size;
            let mut records = page.into_iter().map(ChangeRecord::try_from).collect::<Result<Vec<_>, sqlx::Error>>()?;
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
}
