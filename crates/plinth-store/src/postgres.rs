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

/// Inserts new entities; the caller checked under the writers' lock that
/// none of the keys exists.
const INSERT_SQL: &str = "\
INSERT INTO entities (entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at)
SELECT t.k, t.u, t.e, t.ki, t.ns, t.n, t.b, t.h, t.l, $10
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
    AS t(k, u, e, ki, ns, n, b, h, l)";

/// Updates changed entities of the same location; the uid is kept.
const UPDATE_SQL: &str = "\
UPDATE entities SET
    etag = t.e, kind = t.ki, namespace = t.ns, name = t.n, body = t.b, hash = t.h, updated_at = $9
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
    AS t(k, e, ki, ns, n, b, h, l)
WHERE entities.entity_key = t.k AND entities.location_id = t.l AND entities.hash <> t.h";

/// The upserts that would change something: new keys (NULL owner) and keys
/// stored with another hash or location.
const DIFFERING_SQL: &str = "\
SELECT t.k, e.location_id
FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(k, l, h)
LEFT JOIN entities e ON e.entity_key = t.k
WHERE e.entity_key IS NULL OR e.location_id <> t.l OR e.hash <> t.h";

/// Reserves `$1` consecutive change-log seqs and returns the first. Only
/// writers holding [`PG_WRITE_LOCK`] call this, so nothing interleaves.
const RESERVE_SEQS_SQL: &str = "\
WITH s AS (SELECT pg_get_serial_sequence('change_log', 'seq')::regclass AS name),
     f AS (SELECT nextval(s.name) AS first, s.name FROM s)
SELECT f.first, setval(f.name, f.first + $1 - 1) FROM f";

const APPEND_LOG_SQL: &str = "\
INSERT INTO change_log (seq, entity_key, op, at)
SELECT t.s, t.k, t.o, $4 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS t(s, k, o)";

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

        let t0 = std::time::Instant::now(); // TIMING
        let mut tx = self.pool.begin().await?;
        lock_writers(&mut tx).await?;
        eprintln!("TIMING locked {:?}", t0.elapsed()); // TIMING
        let mut differing = HashMap::new();
        for chunk in upserts.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let rows = sqlx::query(DIFFERING_SQL).persistent(false)
                .bind(column(|u| &u.key))
                .bind(column(|u| &u.location_id))
                .bind(column(|u| &u.hash))
                .fetch_all(&mut *tx)
                .await?;
            eprintln!("TIMING chunk {:?}", t0.elapsed()); // TIMING
            for row in rows {
                differing.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        let common::Classified { inserts, updates, owners } = common::classify(&upserts, differing);
        eprintln!("TIMING classify {:?}", t0.elapsed()); // TIMING
        let mut written: HashSet<String> = HashSet::with_capacity(inserts.len() + updates.len() + deletes.len());

        if std::env::var("PGMODE").is_ok_and(|m| m == "copy") {
            copy_entities(&mut tx, &inserts, &now).await?;
            written.extend(inserts.iter().map(|u| u.key.clone()));
        } else {
        for chunk in inserts.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let uids: Vec<String> = chunk.iter().map(|_| new_uuid()).collect();
            let affected = sqlx::query(INSERT_SQL).persistent(false)
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
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if affected != chunk.len() as u64 {
                return Err(common::unexpected_rows("an entity insert", chunk.len(), affected));
            }
            written.extend(chunk.iter().map(|u| u.key.clone()));
        }
        }
        eprintln!("TIMING inserts {:?}", t0.elapsed()); // TIMING

        for chunk in updates.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let affected = sqlx::query(UPDATE_SQL).persistent(false)
                .bind(column(|u| &u.key))
                .bind(column(|u| etag_of(&u.hash)))
                .bind(column(|u| &u.kind))
                .bind(column(|u| &u.namespace))
                .bind(column(|u| &u.name))
                .bind(column(|u| &u.body))
                .bind(column(|u| &u.hash))
                .bind(column(|u| &u.location_id))
                .bind(now.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if affected != chunk.len() as u64 {
                return Err(common::unexpected_rows("an entity update", chunk.len(), affected));
            }
            written.extend(chunk.iter().map(|u| u.key.clone()));
        }

        for chunk in deletes.chunks(CHUNK) {
            let rows = sqlx::query("DELETE FROM entities WHERE entity_key = ANY($1::text[]) RETURNING entity_key").persistent(false)
                .bind(chunk)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                written.insert(row.try_get(0)?);
            }
        }

        eprintln!("TIMING write {:?}", t0.elapsed()); // TIMING
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
            for row in sqlx::query(&sql).persistent(false).bind(chunk).fetch_all(&mut *conn).await? {
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
        let records = append_log(&mut tx, &entries, &common::now()).await?;
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

/// COPY (binary) of new entities.
async fn copy_entities(tx: &mut Transaction<'static, Postgres>, rows: &[&EntityUpsert], now: &str) -> Result<(), StoreError> {
    if rows.is_empty() { return Ok(()); }
    let mut copy = tx.copy_in_raw("COPY entities (entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at) FROM STDIN (FORMAT binary)").await?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 21);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for u in rows {
        buf.extend_from_slice(&10i16.to_be_bytes());
        let uid = new_uuid();
        for f in [u.key.as_str(), &uid, etag_of(&u.hash), &u.kind, &u.namespace, &u.name, &u.body, &u.hash, &u.location_id, now] {
            buf.extend_from_slice(&(f.len() as i32).to_be_bytes());
            buf.extend_from_slice(f.as_bytes());
        }
        if buf.len() >= 1 << 20 { copy.send(std::mem::take(&mut buf)).await?; buf.reserve(1 << 21); }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf).await?;
    copy.finish().await?;
    Ok(())
}

/// Appends one change-log row per entry, in order, and returns them. The
/// caller holds the writers' lock.
async fn append_log(
    tx: &mut Transaction<'static, Postgres>,
    entries: &[(&str, ChangeOp)],
    at: &str,
) -> Result<Vec<ChangeRecord>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let count = i64::try_from(entries.len()).map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    let first: i64 = sqlx::query(RESERVE_SEQS_SQL).bind(count).fetch_one(&mut **tx).await?.try_get(0)?;
    let records = common::log_records(entries, first, at);
    for chunk in records.chunks(CHUNK) {
        let seqs: Vec<i64> = chunk.iter().map(|r| r.seq).collect();
        let keys: Vec<&str> = chunk.iter().map(|r| r.key.as_str()).collect();
        let ops: Vec<&str> = chunk.iter().map(|r| op_str(r.op)).collect();
        sqlx::query(APPEND_LOG_SQL).persistent(false).bind(seqs).bind(keys).bind(ops).bind(at).execute(&mut **tx).await?;
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
