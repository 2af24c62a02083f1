//! The PostgreSQL backend, shared by replicas: writers serialise on an
//! advisory transaction lock (so `seq` order is commit order), compare
//! hashes set-wise through `UNNEST`ed arrays, and write new rows and the
//! change log with binary `COPY`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgCopyIn, PgPoolOptions, PgRow};
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

const COPY_ENTITIES_SQL: &str = "\
COPY entities (entity_key, uid, etag, kind, namespace, name, body, hash, location_id, updated_at)
FROM STDIN (FORMAT binary)";

/// Deletes the stored versions of changed entities of the same location,
/// returning their uids so that the new versions keep them.
const DELETE_CHANGED_SQL: &str = "\
DELETE FROM entities e
USING UNNEST($1::text[], $2::text[], $3::text[]) AS t(k, l, h)
WHERE e.entity_key = t.k AND e.location_id = t.l AND e.hash <> t.h
RETURNING e.entity_key, e.uid";

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

const COPY_LOG_SQL: &str = "COPY change_log (seq, entity_key, op, at) FROM STDIN (FORMAT binary)";

/// A PostgreSQL-backed store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
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
        // Bulk statements are planned per execution (`persistent(false)`), and
        // JIT-compiling each of them would cost more than it saves.
        let options = options.options([("jit", "off")]);
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
        let mut differing = HashMap::new();
        for chunk in upserts.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let rows = sqlx::query(DIFFERING_SQL)
                .persistent(false)
                .bind(column(|u| &u.key))
                .bind(column(|u| &u.location_id))
                .bind(column(|u| &u.hash))
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                differing.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        let common::Classified { inserts, updates, owners } = common::classify(&upserts, differing);
        let mut written: HashSet<String> = HashSet::with_capacity(inserts.len() + updates.len() + deletes.len());

        // Changed rows are replaced (delete, then insert with the same uid):
        // in bulk that is much cheaper in PostgreSQL than UPDATE, and the
        // writers' lock means nobody else sees or touches them in between.
        let mut kept_uids: HashMap<String, String> = HashMap::with_capacity(updates.len());
        for chunk in updates.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let rows = sqlx::query(DELETE_CHANGED_SQL)
                .persistent(false)
                .bind(column(|u| &u.key))
                .bind(column(|u| &u.location_id))
                .bind(column(|u| &u.hash))
                .fetch_all(&mut *tx)
                .await?;
            if rows.len() != chunk.len() {
                return Err(common::unexpected_rows("an entity replacement", chunk.len(), rows.len() as u64));
            }
            for row in rows {
                kept_uids.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        let mut rows: Vec<(&EntityUpsert, String)> = Vec::with_capacity(inserts.len() + updates.len());
        rows.extend(inserts.iter().map(|u| (*u, new_uuid())));
        for u in &updates {
            let uid = kept_uids.remove(&u.key).ok_or_else(|| common::unexpected_rows("an entity replacement", 1, 0))?;
            rows.push((*u, uid));
        }
        copy_entities(&mut tx, &rows, &now).await?;
        written.extend(rows.iter().map(|(u, _)| u.key.clone()));
        let uids: HashMap<String, String> = rows.into_iter().map(|(u, uid)| (u.key.clone(), uid)).collect();

        for chunk in deletes.chunks(CHUNK) {
            let rows = sqlx::query("DELETE FROM entities WHERE entity_key = ANY($1::text[]) RETURNING entity_key")
                .persistent(false)
                .bind(chunk)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                written.insert(row.try_get(0)?);
            }
        }

        let records = append_log(&mut tx, &common::log_entries(&changes, &written), &now).await?;
        tx.commit().await?;
        Ok(ApplyOutcome { uids, ..common::outcome(&changes, &written, &owners, records) })
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

/// A `COPY ... FROM STDIN (FORMAT binary)` in progress: rows are encoded
/// into a buffer that is sent whenever it grows past a megabyte.
struct BinaryCopy<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: Vec<u8>,
    rows: usize,
}

impl<'c> BinaryCopy<'c> {
    /// Bytes buffered before a `CopyData` message goes out.
    const FLUSH_AT: usize = 1 << 20;

    async fn start(conn: &'c mut PgConnection, statement: &str) -> Result<BinaryCopy<'c>, StoreError> {
        let copy = conn.copy_in_raw(statement).await?;
        let mut buf = Vec::with_capacity(2 * Self::FLUSH_AT);
        // Signature, flags, header-extension length.
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0_i32.to_be_bytes());
        buf.extend_from_slice(&0_i32.to_be_bytes());
        Ok(BinaryCopy { copy, buf, rows: 0 })
    }

    fn begin_row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
    }

    fn text(&mut self, value: &str) -> Result<(), StoreError> {
        let len = i32::try_from(value.len()).map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn int8(&mut self, value: i64) {
        self.buf.extend_from_slice(&8_i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Sends the buffer if it is big enough; call between rows.
    async fn maybe_flush(&mut self) -> Result<(), StoreError> {
        if self.buf.len() >= Self::FLUSH_AT {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(2 * Self::FLUSH_AT));
            self.copy.send(full).await?;
        }
        Ok(())
    }

    /// Ends the copy and checks that the server took every row.
    async fn finish(mut self, what: &str) -> Result<(), StoreError> {
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        self.copy.send(self.buf).await?;
        let copied = self.copy.finish().await?;
        if copied != self.rows as u64 {
            return Err(common::unexpected_rows(what, self.rows, copied));
        }
        Ok(())
    }
}

/// Inserts entities that are not stored (checked under the writers' lock),
/// each with its uid.
async fn copy_entities(
    tx: &mut Transaction<'static, Postgres>,
    rows: &[(&EntityUpsert, String)],
    now: &str,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = BinaryCopy::start(tx, COPY_ENTITIES_SQL).await?;
    for (u, uid) in rows {
        copy.begin_row(10);
        for field in
            [&u.key, uid, etag_of(&u.hash), &u.kind, &u.namespace, &u.name, &u.body, &u.hash, &u.location_id, now]
        {
            copy.text(field)?;
        }
        copy.maybe_flush().await?;
    }
    copy.finish("an entity COPY").await
}

/// Appends one change-log row per entry, in order, and returns them. The
/// caller holds the writers' lock, so the reserved seqs are consecutive and
/// commit in order.
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
    let mut copy = BinaryCopy::start(tx, COPY_LOG_SQL).await?;
    for record in &records {
        copy.begin_row(4);
        copy.int8(record.seq);
        copy.text(&record.key)?;
        copy.text(op_str(record.op))?;
        copy.text(at)?;
        copy.maybe_flush().await?;
    }
    copy.finish("a change-log COPY").await?;
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
