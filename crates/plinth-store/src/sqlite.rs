//! The SQLite backend: one `plinth.db` file in the data directory, WAL mode,
//! a small pool, and set-based (multi-row) statements for bulk writes.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::common::{self, etag_of, new_uuid, normalize_branch, op_str, parse_op};
use crate::{
    ApplyOutcome, ChangeOp, ChangeRecord, EntityChange, EntityUpsert, IngestionError, LocationRow, LocationStatus,
    NewLocation, StoreError, StoredEntity,
};

/// Bind parameters per statement: below SQLite's default limit of 32,766.
const MAX_PARAMS: usize = 32_000;

const ENTITY_COLUMNS: &str = "entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at";
const LOCATION_COLUMNS: &str = "id, kind, target, branch, created_at, status";

/// A SQLite-backed store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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

fn entity_from_row(row: &SqliteRow) -> Result<StoredEntity, sqlx::Error> {
    Ok(StoredEntity {
        key: row.try_get(0)?,
        uid: row.try_get(1)?,
        etag: row.try_get(2)?,
        kind: row.try_get(3)?,
        namespace: row.try_get(4)?,
        name: row.try_get(5)?,
        body: row.try_get(6)?,
        hash: row.try_get(7)?,
        location_id: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    })
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

fn record_from_row(row: &SqliteRow) -> Result<ChangeRecord, sqlx::Error> {
    let op: String = row.try_get(2)?;
    Ok(ChangeRecord { seq: row.try_get(0)?, key: row.try_get(1)?, op: parse_op(&op)?, at: row.try_get(3)? })
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
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target: target.clone(), source })?;
        let mut conn = pool.acquire().await.map_err(|source| StoreError::Open { target, source })?;
        crate::migrations::run_sqlite(&mut conn).await?;
        drop(conn);
        Ok(SqliteStore { pool })
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

        let mut tx = self.begin_write().await?;
        let mut written: HashSet<String> = HashSet::with_capacity(changes.len());
        let t0 = std::time::Instant::now(); // TIMING

        const UPSERT_COLS: usize = 10;
        for chunk in upserts.chunks(MAX_PARAMS / UPSERT_COLS) {
            let sql = format!(
                "INSERT INTO entities ({ENTITY_COLUMNS}) VALUES {} \
                 ON CONFLICT (entity_key) DO UPDATE SET etag = excluded.etag, kind = excluded.kind, \
                 namespace = excluded.namespace, name = excluded.name, body = excluded.body, hash = excluded.hash, \
                 updated_at = excluded.updated_at \
                 WHERE entities.location_id = excluded.location_id AND entities.hash <> excluded.hash \
                 RETURNING entity_key",
                values_placeholders(chunk.len(), UPSERT_COLS)
            );
            let mut query = sqlx::query(&sql);
            for u in chunk {
                query = query
                    .bind(u.key.as_str())
                    .bind(new_uuid())
                    .bind(etag_of(&u.hash))
                    .bind(u.kind.as_str())
                    .bind(u.namespace.as_str())
                    .bind(u.name.as_str())
                    .bind(u.body.as_str())
                    .bind(u.hash.as_str())
                    .bind(u.location_id.as_str())
                    .bind(now.as_str());
            }
            for row in query.fetch_all(&mut *tx).await? {
                written.insert(row.try_get(0)?);
            }
        }

        for chunk in deletes.chunks(MAX_PARAMS) {
            let sql = format!(
                "DELETE FROM entities WHERE entity_key IN ({}) RETURNING entity_key",
                list_placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *tx).await? {
                written.insert(row.try_get(0)?);
            }
        }

        eprintln!("TIMING write {:?}", t0.elapsed()); // TIMING
        let skipped_upserts: Vec<&str> =
            upserts.iter().map(|u| u.key.as_str()).filter(|k| !written.contains(*k)).collect();
        let owners = owners_of(&mut tx, &skipped_upserts).await?;
        eprintln!("TIMING owners {:?}", t0.elapsed()); // TIMING
        let records = append_log(&mut tx, &common::log_entries(&changes, &written), &now).await?;
        eprintln!("TIMING log {:?}", t0.elapsed()); // TIMING
        tx.commit().await?;
        eprintln!("TIMING commit {:?}", t0.elapsed()); // TIMING
        Ok(common::outcome(&changes, &written, &owners, records))
    }

    pub async fn load_entities(&self) -> Result<Vec<StoredEntity>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ENTITY_COLUMNS} FROM entities")).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(entity_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn get_entities(&self, keys: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut conn = self.pool.acquire().await?;
        for chunk in keys.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT {ENTITY_COLUMNS} FROM entities WHERE entity_key IN ({})",
                list_placeholders(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(&mut *conn).await? {
                out.push(entity_from_row(&row)?);
            }
        }
        Ok(out)
    }

    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        let rows = sqlx::query("SELECT seq, entity_key, op, at FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
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
        tx.commit().await?;
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
        let rows = sqlx::query("DELETE FROM entities WHERE location_id = ? RETURNING entity_key")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let mut keys: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        keys.sort_unstable();
        let entries: Vec<(&str, ChangeOp)> = keys.iter().map(|k| (k.as_str(), ChangeOp::Delete)).collect();
        let mut records = append_log(&mut tx, &entries, &common::now()).await?;
        records.sort_by_key(|r| r.seq);
        sqlx::query("DELETE FROM ingestion_errors WHERE location_id = ?").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(records))
    }

    pub async fn set_location_status(&self, id: &str, status: &LocationStatus) -> Result<(), StoreError> {
        sqlx::query("UPDATE locations SET status = ? WHERE id = ?")
            .bind(common::to_json(status)?)
            .bind(id)
            .execute(&self.pool)
            .await?;
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
        tx.commit().await?;
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

/// The location holding each of these keys.
async fn owners_of(
    tx: &mut Transaction<'static, Sqlite>,
    keys: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    let mut owners = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT entity_key, location_id FROM entities WHERE entity_key IN ({})",
            list_placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(*key);
        }
        for row in query.fetch_all(&mut **tx).await? {
            owners.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(owners)
}

/// Appends one change-log row per entry, in order, and returns them.
async fn append_log(
    tx: &mut Transaction<'static, Sqlite>,
    entries: &[(&str, ChangeOp)],
    at: &str,
) -> Result<Vec<ChangeRecord>, StoreError> {
    const COLS: usize = 3;
    let mut records = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "INSERT INTO change_log (entity_key, op, at) VALUES {} RETURNING seq, entity_key, op, at",
            values_placeholders(chunk.len(), COLS)
        );
        let mut query = sqlx::query(&sql);
        for (key, op) in chunk {
            query = query.bind(*key).bind(op_str(*op)).bind(at);
        }
        for row in query.fetch_all(&mut **tx).await? {
            records.push(record_from_row(&row)?);
        }
    }
    Ok(records)
}
