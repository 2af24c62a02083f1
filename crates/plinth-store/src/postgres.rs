//! The PostgreSQL backend, shared by replicas: writers serialise on an
//! advisory transaction lock (so `seq` order is commit order) and bulk
//! writes go through `UNNEST`ed arrays, a few thousand rows per statement.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};

use crate::common::{self, etag_of, new_uuid, normalize_branch, op_str, parse_op};
use crate::{
    ApplyOutcome, ChangeOp, ChangeRecord, EntityChange, EntityUpsert, IngestionError, LocationRow, LocationStatus,
    NewLocation, StoreError, StoredEntity,
};

/// Transaction-level advisory lock key taken by every writer of entities
/// and the change log ("plinthwr" in ASCII).
const PG_WRITE_LOCK: i64 = 0x706c_696e_7468_7772;

/// How long opening the store waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows per bulk statement.
const CHUNK: usize = 5_000;

const ENTITY_COLUMNS: &str = "entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at";
const LOCATION_COLUMNS: &str = "id, kind, target, branch, created_at, status";

const UPSERT_SQL: &str = "\
INSERT INTO entities (entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at)
SELECT t.k, t.u, t.e, t.ki, t.ns, t.n, t.b, t.h, t.l, $10
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
    AS t(k, u, e, ki, ns, n, b, h, l)
ON CONFLICT (entity_key) DO UPDATE SET
    etag = EXCLUDED.etag, kind = EXCLUDED.kind, namespace = EXCLUDED.namespace, name = EXCLUDED.name,
    body = EXCLUDED.body, hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at
WHERE entities.location_id = EXCLUDED.location_id AND entities.hash <> EXCLUDED.hash
RETURNING entity_key";

const APPEND_LOG_SQL: &str = "\
INSERT INTO change_log (entity_key, op, at)
SELECT t.k, t.o, $3 FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS t(k, o, n) ORDER BY t.n
RETURNING seq, entity_key, op, at";

/// A PostgreSQL-backed store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// The URL without its password (in the user-info or a `password=` query
/// parameter), for error messages.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> =
                query.split('&').filter(|p| !p.to_ascii_lowercase().starts_with("password=")).collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

fn entity_from_row(row: &PgRow) -> Result<StoredEntity, sqlx::Error> {
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

fn location_from_row(row: &PgRow) -> Result<LocationRow, StoreError> {
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

fn record_from_row(row: &PgRow) -> Result<ChangeRecord, sqlx::Error> {
    let op: String = row.try_get(2)?;
    Ok(ChangeRecord { seq: row.try_get(0)?, key: row.try_get(1)?, op: parse_op(&op)?, at: row.try_get(3)? })
}

/// Takes the writers' advisory lock for the rest of the transaction.
async fn lock_writers(tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_WRITE_LOCK).execute(&mut **tx).await?;
    Ok(())
}

impl PgStore {
    /// Connects to `url` (waiting at most 5 s for the server) and migrates.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let target = redact_url(url);
        let open_error = |source| StoreError::Open { target: target.clone(), source };
        let options: PgConnectOptions = url.parse().map_err(open_error)?;
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(conn) => conn.map_err(open_error)?,
            Err(_) => {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                );
                return Err(open_error(sqlx::Error::Io(timed_out)));
            }
        };
        crate::migrations::run_postgres(&mut conn).await?;
        if let Err(error) = conn.close().await {
            tracing::debug!(%error, "closing the migration connection failed");
        }
        let pool =
            PgPoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(30)).connect_lazy_with(options);
        Ok(PgStore { pool })
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

        let mut tx = self.pool.begin().await?;
        lock_writers(&mut tx).await?;
        let mut written: HashSet<String> = HashSet::with_capacity(changes.len());
        let t0 = std::time::Instant::now(); // TIMING

        for chunk in upserts.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let uids: Vec<String> = chunk.iter().map(|_| new_uuid()).collect();
            let rows = sqlx::query(UPSERT_SQL)
                .bind(column(|u| &u.key))
                .bind(uids)
                .bind(column(|u| etag_of(&u.hash)))
                .bind(column(|u| &u.kind))
                .bind(column(|u| &u.namespace))
                .bind(column(|u| &u.name))
                .bind(column(|u| &u.body))
                .bind(column(|u| &u.hash))
                .bind(column(|u| &u.location_id))
                .bind(now.as_str())
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                written.insert(row.try_get(0)?);
            }
        }

        for chunk in deletes.chunks(CHUNK) {
            let rows = sqlx::query("DELETE FROM entities WHERE entity_key = ANY($1::text[]) RETURNING entity_key")
                .bind(chunk)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                written.insert(row.try_get(0)?);
            }
        }

        eprintln!("TIMING write {:?}", t0.elapsed()); // TIMING
        let skipped_upserts: Vec<&str> =
            upserts.iter().map(|u| u.key.as_str()).filter(|k| !written.contains(*k)).collect();
        let mut owners = HashMap::with_capacity(skipped_upserts.len());
        for chunk in skipped_upserts.chunks(CHUNK) {
            let rows = sqlx::query("SELECT entity_key, location_id FROM entities WHERE entity_key = ANY($1::text[])")
                .bind(chunk)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                owners.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }

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
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE entity_key = ANY($1::text[])");
        for chunk in keys.chunks(CHUNK) {
            for row in sqlx::query(&sql).bind(chunk).fetch_all(&mut *conn).await? {
                out.push(entity_from_row(&row)?);
            }
        }
        Ok(out)
    }

    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        let rows = sqlx::query("SELECT seq, entity_key, op, at FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0)::bigint FROM change_log").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    pub async fn add_location(&self, location: &NewLocation) -> Result<(LocationRow, bool), StoreError> {
        let branch = normalize_branch(&location.branch);
        let status = common::to_json(&LocationStatus::default())?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO locations ({LOCATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT DO NOTHING RETURNING {LOCATION_COLUMNS}"
        ))
        .bind(new_uuid())
        .bind(location.kind.as_str())
        .bind(location.target.as_str())
        .bind(branch)
        .bind(common::now())
        .bind(status)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok((location_from_row(&row)?, true));
        }
        // The conflicting row is committed by now: the insert waited for it.
        let row = sqlx::query(&format!(
            "SELECT {LOCATION_COLUMNS} FROM locations \
             WHERE kind = $1 AND target = $2 AND COALESCE(branch, '') = COALESCE($3, '')"
        ))
        .bind(location.kind.as_str())
        .bind(location.target.as_str())
        .bind(branch)
        .fetch_one(&self.pool)
        .await?;
        Ok((location_from_row(&row)?, false))
    }

    pub async fn list_locations(&self) -> Result<Vec<LocationRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {LOCATION_COLUMNS} FROM locations ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(location_from_row).collect()
    }

    pub async fn get_location(&self, id: &str) -> Result<Option<LocationRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {LOCATION_COLUMNS} FROM locations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(location_from_row).transpose()
    }

    pub async fn delete_location(&self, id: &str) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_writers(&mut tx).await?;
        let deleted =
            sqlx::query("DELETE FROM locations WHERE id = $1 RETURNING id").bind(id).fetch_optional(&mut *tx).await?;
        if deleted.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        let rows = sqlx::query("DELETE FROM entities WHERE location_id = $1 RETURNING entity_key")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let mut keys: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        keys.sort_unstable();
        let entries: Vec<(&str, ChangeOp)> = keys.iter().map(|k| (k.as_str(), ChangeOp::Delete)).collect();
        let mut records = append_log(&mut tx, &entries, &common::now()).await?;
        records.sort_by_key(|r| r.seq);
        sqlx::query("DELETE FROM ingestion_errors WHERE location_id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(records))
    }

    pub async fn set_location_status(&self, id: &str, status: &LocationStatus) -> Result<(), StoreError> {
        sqlx::query("UPDATE locations SET status = $1 WHERE id = $2")
            .bind(common::to_json(status)?)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn replace_errors(&self, location_id: &str, errors: &[IngestionError]) -> Result<(), StoreError> {
        let bodies: Vec<String> = errors.iter().map(|e| common::to_json(&e.diagnostic)).collect::<Result<_, _>>()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM ingestion_errors WHERE location_id = $1").bind(location_id).execute(&mut *tx).await?;
        for chunk in bodies.chunks(CHUNK) {
            sqlx::query(
                "INSERT INTO ingestion_errors (location_id, body) \
                 SELECT $1, t.b FROM UNNEST($2::text[]) WITH ORDINALITY AS t(b, n) ORDER BY t.n",
            )
            .bind(location_id)
            .bind(chunk)
            .execute(&mut *tx)
            .await?;
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

/// Appends one change-log row per entry, in order, and returns them. The
/// caller holds the writers' lock.
async fn append_log(
    tx: &mut Transaction<'static, Postgres>,
    entries: &[(&str, ChangeOp)],
    at: &str,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let mut records = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(CHUNK) {
        let keys: Vec<&str> = chunk.iter().map(|(k, _)| *k).collect();
        let ops: Vec<&str> = chunk.iter().map(|(_, op)| op_str(*op)).collect();
        let rows = sqlx::query(APPEND_LOG_SQL).bind(keys).bind(ops).bind(at).fetch_all(&mut **tx).await?;
        for row in rows {
            records.push(record_from_row(&row)?);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@db:5432/plinth"), "postgres://u@db:5432/plinth");
        assert_eq!(redact_url("postgres://u@db/plinth?sslmode=require"), "postgres://u@db/plinth?sslmode=require");
        assert_eq!(redact_url("postgres://db/p?password=x&sslmode=disable"), "postgres://db/p?sslmode=disable");
        assert_eq!(redact_url("postgres://db/p?password=x"), "postgres://db/p");
        assert_eq!(redact_url("postgres://a:b@c@db/p"), "postgres://a@db/p");
    }
}
