//! The PostgreSQL backend, shared by replicas: connections, and the
//! catalogue's bulk work, set-based through arrays (`UNNEST`, `= ANY`) and
//! binary `COPY`. Writers of entities and the change log serialise on an
//! advisory transaction lock, so `seq` order is commit order. The
//! statements themselves are in `catalog`, beside their SQLite forms.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgCopyIn, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::catalog::{self, DifferingRecord, EntityRecord, EntityWrites};
use crate::common::{self, etag_of, op_str};
use crate::{ChangeOp, ChangeRecord, EntityUpsert, StoreError, StoredEntity};

/// How long opening the store waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows per bulk statement.
const CHUNK: usize = 5_000;

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

    /// A write transaction (PostgreSQL locks rows as they are written).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A write transaction of entities and the change log: it holds the
    /// writers' advisory lock (see `catalog::PG_LOCK_WRITERS`) until it ends.
    pub(crate) async fn begin_catalog_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(catalog::PG_LOCK_WRITERS).bind(catalog::PG_WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }

    pub(crate) async fn commit_write(&self, tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
        Ok(tx.commit().await?)
    }

    /// Nothing to do after a write (SQLite schedules a checkpoint here).
    pub(crate) fn wrote(&self) {}

    /// Nothing to do after signals were written (SQLite schedules a
    /// checkpoint here).
    pub(crate) fn wrote_signals(&self) {}

    /// A connection for a write acknowledged to a sender: PostgreSQL's
    /// commits are durable already (with its default `synchronous_commit`).
    pub(crate) async fn acquire_durable(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Returns a connection from [`PgStore::acquire_durable`] to the pool.
    pub(crate) async fn release_durable(&self, conn: PoolConnection<Postgres>) -> Result<(), StoreError> {
        drop(conn);
        Ok(())
    }

    /// The upserts that would change something (see `catalog::PG_DIFFERING`).
    pub(crate) async fn differing(
        &self,
        conn: &mut PgConnection,
        upserts: &[&EntityUpsert],
    ) -> Result<Vec<DifferingRecord>, StoreError> {
        let mut differing = Vec::new();
        for chunk in upserts.chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|u| f(u)).collect::<Vec<&str>>();
            let rows: Vec<DifferingRecord> = sqlx::query_as(catalog::PG_DIFFERING)
                .persistent(false)
                .bind(column(|u| &u.key))
                .bind(column(|u| &u.location_id))
                .bind(column(|u| &u.hash))
                .fetch_all(&mut *conn)
                .await?;
            differing.extend(rows);
        }
        Ok(differing)
    }

    /// Writes new and changed entities: deletes the stored versions of the
    /// changed ones, then copies every row in (see `catalog::PG_DELETE_CHANGED`).
    pub(crate) async fn write_entities(
        &self,
        conn: &mut PgConnection,
        writes: &EntityWrites<'_>,
        now: &str,
    ) -> Result<(), StoreError> {
        for chunk in writes.updates().chunks(CHUNK) {
            let column = |f: fn(&EntityUpsert) -> &str| chunk.iter().map(|(u, _)| f(u)).collect::<Vec<&str>>();
            let affected = sqlx::query(catalog::PG_DELETE_CHANGED)
                .persistent(false)
                .bind(column(|u| &u.key))
                .bind(column(|u| &u.location_id))
                .bind(column(|u| &u.hash))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if affected != chunk.len() as u64 {
                return Err(common::unexpected_rows("an entity replacement", chunk.len(), affected));
            }
        }
        if writes.rows.is_empty() {
            return Ok(());
        }
        let mut copy = BinaryCopy::start(conn, &catalog::pg_copy_entities()).await?;
        for (u, uid) in &writes.rows {
            // In `EntityRecord::COLUMNS` order.
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

    /// Deletes entities by key; returns the keys that were stored.
    pub(crate) async fn delete_entities(
        &self,
        conn: &mut PgConnection,
        keys: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        let mut deleted = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            let rows: Vec<String> =
                sqlx::query_scalar(catalog::PG_DELETE_KEYS).persistent(false).bind(chunk).fetch_all(&mut *conn).await?;
            deleted.extend(rows);
        }
        Ok(deleted)
    }

    /// Deletes the entities of a location; returns their keys.
    pub(crate) async fn delete_location_entities(
        &self,
        conn: &mut PgConnection,
        location_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(catalog::PG_DELETE_LOCATION_ENTITIES).bind(location_id).fetch_all(&mut *conn).await?)
    }

    /// Appends one change-log row per entry, in order, and returns them. The
    /// caller holds the writers' lock, so the reserved seqs are consecutive
    /// and commit in order.
    pub(crate) async fn append_log(
        &self,
        conn: &mut PgConnection,
        entries: &[(&str, ChangeOp)],
        at: &common::Now,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let count = i64::try_from(entries.len()).map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
        let first: i64 = sqlx::query_scalar(catalog::PG_RESERVE_SEQS).bind(count).fetch_one(&mut *conn).await?;
        let records = common::log_records(entries, first, at);
        let mut copy = BinaryCopy::start(conn, &catalog::pg_copy_log()).await?;
        for record in &records {
            // In `LogRecord::COLUMNS` order.
            copy.begin_row(4);
            copy.int8(record.seq);
            copy.text(&record.key)?;
            copy.text(op_str(record.op))?;
            copy.text(&at.text)?;
            copy.maybe_flush().await?;
        }
        copy.finish("a change-log COPY").await?;
        Ok(records)
    }

    /// Inserts a location's errors (their JSON bodies), in order.
    pub(crate) async fn insert_errors(
        &self,
        conn: &mut PgConnection,
        location_id: &str,
        bodies: &[String],
    ) -> Result<(), StoreError> {
        for chunk in bodies.chunks(CHUNK) {
            sqlx::query(catalog::PG_INSERT_ERRORS).bind(location_id).bind(chunk).execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn load_entities(&self) -> Result<Vec<StoredEntity>, StoreError> {
        let rows: Vec<EntityRecord> = sqlx::query_as(&catalog::pg_load_entities()).fetch_all(&self.pool).await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    pub(crate) async fn get_entities(&self, keys: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut conn = self.pool.acquire().await?;
        let sql = catalog::pg_get_entities();
        for chunk in keys.chunks(CHUNK) {
            let rows: Vec<EntityRecord> =
                sqlx::query_as(&sql).persistent(false).bind(chunk).fetch_all(&mut *conn).await?;
            for row in rows {
                out.push(StoredEntity::try_from(row)?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        let rows: Vec<catalog::LogRecord> =
            sqlx::query_as(&crate::dialect::Dialect::Postgres.sql(&catalog::select_changes()))
                .bind(after)
                .bind(limit.max(0))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(ChangeRecord::try_from).collect::<Result<_, _>>()?)
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
