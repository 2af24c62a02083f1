//! The catalogue: entities, their change log, locations and ingestion
//! errors.
//!
//! Every statement that is the same on both backends is written here once
//! (with `?` placeholders, numbered for PostgreSQL by [`Dialect::sql`]), and
//! so is every use case, `apply` included. What differs is the bulk work
//! (comparing, writing, deleting and reading many entities, appending to the
//! change log), which each engine does set-wise in its own way. Those
//! statements are at the end of this file, the SQLite and PostgreSQL forms
//! side by side with why they differ; the backend modules bind and run them.
//!
//! [`Dialect::sql`]: crate::dialect::Dialect::sql

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::{self, new_entity_uid, new_uuid, normalize_branch, parse_op};
use crate::dialect::{list, on_pool, on_store, values};
use crate::record::record;
use crate::{
    ApplyOutcome, ChangeOp, ChangeRecord, EntityChange, EntityUpsert, IngestionError, LocationKind, LocationRow,
    LocationStatus, NewLocation, Store, StoreError, StoredEntity,
};

// ------------------------------------------------------------------ rows --

record! {
    /// An `entities` row. PostgreSQL decodes it from rows; SQLite from the
    /// JSON arrays its bulk reads aggregate rows into (`json_array` of
    /// [`EntityRecord::COLUMNS`], read in field order).
    #[derive(Deserialize)]
    pub(crate) struct EntityRecord {
        entity_key: String,
        uid: String,
        etag: String,
        kind: String,
        namespace: String,
        name: String,
        body: String,
        hash: String,
        location_id: String,
        updated_at: String,
    }
}

impl TryFrom<EntityRecord> for StoredEntity {
    type Error = StoreError;

    fn try_from(r: EntityRecord) -> Result<StoredEntity, StoreError> {
        let updated_at = common::parse_stamp(&r.updated_at, &format!("entity {}", r.entity_key))?;
        Ok(StoredEntity {
            key: r.entity_key,
            uid: r.uid,
            etag: r.etag,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
            body: r.body,
            hash: r.hash,
            location_id: r.location_id,
            updated_at,
        })
    }
}

record! {
    /// A `change_log` row (as JSON on SQLite, as for entities).
    #[derive(Deserialize)]
    pub(crate) struct LogRecord {
        seq: i64,
        entity_key: String,
        op: String,
        at: String,
    }
}

impl TryFrom<LogRecord> for ChangeRecord {
    type Error = sqlx::Error;

    fn try_from(r: LogRecord) -> Result<ChangeRecord, sqlx::Error> {
        let at = OffsetDateTime::parse(&r.at, &Rfc3339)
            .map_err(|e| sqlx::Error::Decode(format!("change {} has time `{}`: {e}", r.seq, r.at).into()))?;
        Ok(ChangeRecord { seq: r.seq, key: r.entity_key, op: parse_op(&r.op)?, at })
    }
}

record! {
    /// An upsert of an apply that would change something: a new key
    /// (`location_id` and `uid` NULL) or a key stored with another hash or
    /// location (its owner and uid).
    #[derive(Deserialize)]
    pub(crate) struct DifferingRecord {
        entity_key: String,
        location_id: Option<String>,
        uid: Option<String>,
    }
}

record! {
    /// A `locations` row; `status` is a [`LocationStatus`] as JSON.
    struct LocationRecord {
        id: String,
        kind: String,
        target: String,
        branch: Option<String>,
        created_at: String,
        status: String,
    }
}

impl TryFrom<LocationRecord> for LocationRow {
    type Error = StoreError;

    fn try_from(r: LocationRecord) -> Result<LocationRow, StoreError> {
        let decode = |what: String| StoreError::Database(sqlx::Error::Decode(what.into()));
        let kind = LocationKind::parse(&r.kind)
            .ok_or_else(|| decode(format!("location {} has an unknown kind `{}`", r.id, r.kind)))?;
        let created_at = OffsetDateTime::parse(&r.created_at, &Rfc3339)
            .map_err(|e| decode(format!("location {} has created_at `{}`: {e}", r.id, r.created_at)))?;
        Ok(LocationRow {
            id: r.id,
            kind,
            target: r.target,
            branch: r.branch,
            created_at,
            status: common::from_json(&r.status)?,
        })
    }
}

record! {
    /// An `ingestion_errors` row; `body` is the diagnostic as JSON.
    struct ErrorRecord {
        location_id: String,
        body: String,
    }
}

impl TryFrom<ErrorRecord> for IngestionError {
    type Error = StoreError;

    fn try_from(r: ErrorRecord) -> Result<IngestionError, StoreError> {
        Ok(IngestionError { location_id: r.location_id, diagnostic: common::from_json(&r.body)? })
    }
}

/// What an apply writes, as given to the backends' `write_entities`: the
/// upserts with their uids, new keys first.
pub(crate) struct EntityWrites<'a> {
    /// `(upsert, uid)`: the first `inserts` are new keys (with a new uid),
    /// the rest replace the stored version of the same location (keeping
    /// its uid).
    pub rows: Vec<(&'a EntityUpsert, String)>,
    pub inserts: usize,
}

impl EntityWrites<'_> {
    pub(crate) fn updates(&self) -> &[(&EntityUpsert, String)] {
        &self.rows[self.inserts..]
    }
}

// ----------------------------------------------------- use cases, written once --

impl Store {
    /// Applies entity changes in one transaction and appends one change-log
    /// row per change that actually wrote. An upsert whose ref belongs to
    /// another location, or whose hash equals the stored one, writes
    /// nothing and is reported in [`ApplyOutcome::skipped`]. A delete of a
    /// missing ref writes nothing.
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
        on_store!(self, s, _d => {
            // Writers are serialised from here on, so what we read is what we
            // overwrite, and change-log seqs commit in order.
            let mut tx = s.begin_catalog_write().await?;
            let differing = s.differing(&mut tx, &upserts).await?;
            let (writes, owners) = plan_writes(&upserts, differing)?;
            s.write_entities(&mut tx, &writes, &now.text).await?;
            let deleted = s.delete_entities(&mut tx, &deletes).await?;
            let uids: HashMap<String, String> =
                writes.rows.into_iter().map(|(u, uid)| (u.key.clone(), uid)).collect();
            let mut written: HashSet<String> = HashSet::with_capacity(uids.len() + deleted.len());
            written.extend(uids.keys().cloned());
            written.extend(deleted);
            let records = s.append_log(&mut tx, &common::log_entries(&changes, &written), &now).await?;
            s.commit_write(tx).await?;
            Ok(ApplyOutcome { uids, ..common::outcome(&changes, &written, &owners, records) })
        })
    }

    /// Every entity, for building projections at start.
    pub async fn load_entities(&self) -> Result<Vec<StoredEntity>, StoreError> {
        on_store!(self, s, _d => s.load_entities().await)
    }

    /// The entities with these keys (lower-case refs); missing keys are absent.
    pub async fn get_entities(&self, keys: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        on_store!(self, s, _d => s.get_entities(keys).await)
    }

    /// Change-log rows with `seq > after`, in order, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        on_store!(self, s, _d => s.changes_since(after, limit).await)
    }

    /// The highest `seq` in the change log (0 when empty).
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        on_store!(self, s, d => {
            let sql = d.sql("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM change_log");
            Ok(sqlx::query_scalar(&sql).fetch_one(&s.pool).await?)
        })
    }

    /// Registers a location. Registering the same (type, target, branch)
    /// twice returns the existing row with `created == false`.
    pub async fn add_location(&self, location: &NewLocation) -> Result<(LocationRow, bool), StoreError> {
        let branch = normalize_branch(&location.branch);
        let status = common::to_json(&LocationStatus::default())?;
        let columns = LocationRecord::COLUMNS;
        let insert = format!(
            "INSERT INTO locations ({columns}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING {columns}"
        );
        let existing = format!(
            "SELECT {columns} FROM locations WHERE kind = ? AND target = ? AND COALESCE(branch, '') = COALESCE(?, '')"
        );
        on_store!(self, s, d => {
            let mut tx = s.begin_write().await?;
            let inserted: Option<LocationRecord> = sqlx::query_as(&d.sql(&insert))
                .bind(new_uuid())
                .bind(location.kind.as_str())
                .bind(location.target.as_str())
                .bind(branch)
                .bind(common::now().text)
                .bind(status)
                .fetch_optional(&mut *tx)
                .await?;
            let result = match inserted {
                Some(row) => (row.try_into()?, true),
                // The conflicting row is committed: SQLite has one writer at
                // a time and PostgreSQL's insert waited for it.
                None => {
                    let row: LocationRecord = sqlx::query_as(&d.sql(&existing))
                        .bind(location.kind.as_str())
                        .bind(location.target.as_str())
                        .bind(branch)
                        .fetch_one(&mut *tx)
                        .await?;
                    (row.try_into()?, false)
                }
            };
            s.commit_write(tx).await?;
            Ok(result)
        })
    }

    pub async fn list_locations(&self) -> Result<Vec<LocationRow>, StoreError> {
        let sql = format!("SELECT {} FROM locations ORDER BY created_at, id", LocationRecord::COLUMNS);
        let rows: Vec<LocationRecord> = on_pool!(self, pool, _d => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(LocationRow::try_from).collect()
    }

    pub async fn get_location(&self, id: &str) -> Result<Option<LocationRow>, StoreError> {
        let sql = format!("SELECT {} FROM locations WHERE id = ?", LocationRecord::COLUMNS);
        let row: Option<LocationRecord> = on_pool!(self, pool, d => {
            sqlx::query_as(&d.sql(&sql)).bind(id).fetch_optional(pool).await?
        });
        row.map(LocationRow::try_from).transpose()
    }

    /// Removes a location and, in the same transaction, every entity it
    /// manages (each with a change-log row) and its errors. Returns the
    /// change-log rows written, or `None` when there was no such location.
    pub async fn delete_location(&self, id: &str) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        on_store!(self, s, d => {
            let mut tx = s.begin_catalog_write().await?;
            let deleted =
                sqlx::query(&d.sql("DELETE FROM locations WHERE id = ?")).bind(id).execute(&mut *tx).await?;
            if deleted.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let mut keys = s.delete_location_entities(&mut tx, id).await?;
            keys.sort_unstable();
            let entries: Vec<(&str, ChangeOp)> = keys.iter().map(|k| (k.as_str(), ChangeOp::Delete)).collect();
            let records = s.append_log(&mut tx, &entries, &common::now()).await?;
            sqlx::query(&d.sql(DELETE_ERRORS)).bind(id).execute(&mut *tx).await?;
            s.commit_write(tx).await?;
            Ok(Some(records))
        })
    }

    /// Records the outcome of a refresh of a location.
    pub async fn set_location_status(&self, id: &str, status: &LocationStatus) -> Result<(), StoreError> {
        let status = common::to_json(status)?;
        on_store!(self, s, d => {
            sqlx::query(&d.sql("UPDATE locations SET status = ? WHERE id = ?"))
                .bind(status)
                .bind(id)
                .execute(&s.pool)
                .await?;
            s.wrote();
            Ok(())
        })
    }

    /// Replaces the ingestion errors of a location with these.
    pub async fn replace_errors(&self, location_id: &str, errors: &[IngestionError]) -> Result<(), StoreError> {
        let bodies: Vec<String> = errors.iter().map(|e| common::to_json(&e.diagnostic)).collect::<Result<_, _>>()?;
        on_store!(self, s, d => {
            let mut tx = s.begin_write().await?;
            sqlx::query(&d.sql(DELETE_ERRORS)).bind(location_id).execute(&mut *tx).await?;
            s.insert_errors(&mut tx, location_id, &bodies).await?;
            s.commit_write(tx).await
        })
    }

    /// Every ingestion error, ordered by location id then insertion order.
    pub async fn list_errors(&self) -> Result<Vec<IngestionError>, StoreError> {
        let sql = format!("SELECT {} FROM ingestion_errors ORDER BY location_id, id", ErrorRecord::COLUMNS);
        let rows: Vec<ErrorRecord> = on_pool!(self, pool, _d => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(IngestionError::try_from).collect()
    }
}

/// Decides what an apply writes from what the store holds (`differing`:
/// the upserts that would change something). New keys get a new uid,
/// changed keys of the same location keep theirs; keys held by another
/// location are returned with that location.
fn plan_writes<'a>(
    upserts: &[&'a EntityUpsert],
    differing: Vec<DifferingRecord>,
) -> Result<(EntityWrites<'a>, HashMap<String, String>), StoreError> {
    let mut uids: HashMap<String, String> = HashMap::new();
    let mut owners: HashMap<String, Option<String>> = HashMap::with_capacity(differing.len());
    for r in differing {
        if let Some(uid) = r.uid {
            uids.insert(r.entity_key.clone(), uid);
        }
        owners.insert(r.entity_key, r.location_id);
    }
    let common::Classified { inserts, updates, owners } = common::classify(upserts, owners);
    let mut rows = Vec::with_capacity(inserts.len() + updates.len());
    rows.extend(inserts.iter().map(|u| (*u, new_entity_uid())));
    for u in updates {
        // A stored row always has a uid: one missing means the entities
        // changed between the comparison and now.
        let uid = uids.remove(&u.key).ok_or_else(|| common::unexpected_rows("an entity comparison", 1, 0))?;
        rows.push((u, uid));
    }
    Ok((EntityWrites { rows, inserts: inserts.len() }, owners))
}

/// Deletes a location's ingestion errors.
const DELETE_ERRORS: &str = "DELETE FROM ingestion_errors WHERE location_id = ?";

/// Change-log rows after a seq, in order, at most a limit. PostgreSQL runs
/// it as it is; SQLite runs it in pages aggregated to JSON
/// (`sqlite::json_rows`).
pub(crate) fn select_changes() -> String {
    format!("SELECT {} FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?", LogRecord::COLUMNS)
}

// ------------------------------------ statements per dialect, side by side --
//
// SQLite has no array parameters: its statements take one placeholder group
// per row ([`values`]), in chunks below its limit of 32,766 parameters, and
// its bulk reads aggregate rows into one JSON value, because moving rows out
// of SQLite one by one costs more than the JSON. PostgreSQL takes one array
// per column (`UNNEST`, `= ANY`), planned per execution, and writes rows with
// binary `COPY`, its fastest way in.

/// Writers of entities and the change log serialise for the rest of their
/// transaction, so that `seq` order is commit order and a follower never
/// skips a row that commits late. SQLite has one writer at a time anyway
/// (`BEGIN IMMEDIATE`); PostgreSQL takes a transaction-level advisory lock
/// on [`PG_WRITE_LOCK`].
pub(crate) const PG_LOCK_WRITERS: &str = "SELECT pg_advisory_xact_lock($1)";
/// The key of [`PG_LOCK_WRITERS`] ("plinthwr" in ASCII).
pub(crate) const PG_WRITE_LOCK: i64 = 0x706c_696e_7468_7772;

/// Which upserts would change something ([`DifferingRecord`]): rows of
/// (key, location, hash), `rows` of them on SQLite.
pub(crate) fn sqlite_differing(rows: usize) -> String {
    format!(
        "WITH v(k, l, h) AS (VALUES {}) \
         SELECT json_group_array(json_array(v.k, e.location_id, e.uid)) \
         FROM v LEFT JOIN entities e ON e.entity_key = v.k \
         WHERE e.entity_key IS NULL OR e.location_id <> v.l OR e.hash <> v.h",
        values(rows, 3)
    )
}
/// PostgreSQL form of [`sqlite_differing`]: arrays of keys, locations, hashes.
pub(crate) const PG_DIFFERING: &str = "\
SELECT t.k, e.location_id, e.uid
FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(k, l, h)
LEFT JOIN entities e ON e.entity_key = t.k
WHERE e.entity_key IS NULL OR e.location_id <> t.l OR e.hash <> t.h";

/// Writes new and changed entities ([`EntityRecord::COLUMNS`] per row,
/// `rows` rows). SQLite upserts (cheap there); the `WHERE` makes an upsert
/// that would take another location's entity, or rewrite an unchanged one,
/// touch nothing, which the caller detects by the count. The uid is only
/// set on insert.
pub(crate) fn sqlite_upsert_entities(rows: usize) -> String {
    format!(
        "INSERT INTO entities ({}) VALUES {} \
         ON CONFLICT (entity_key) DO UPDATE SET etag = excluded.etag, kind = excluded.kind, \
         namespace = excluded.namespace, name = excluded.name, body = excluded.body, hash = excluded.hash, \
         updated_at = excluded.updated_at \
         WHERE entities.location_id = excluded.location_id AND entities.hash <> excluded.hash",
        EntityRecord::COLUMNS,
        values(rows, 10)
    )
}
/// PostgreSQL form of [`sqlite_upsert_entities`], in two steps: changed
/// rows are deleted (arrays of keys, locations, hashes) and every row is
/// then `COPY`d in with its uid ([`pg_copy_entities`]). In bulk that is much
/// cheaper in PostgreSQL than `UPDATE`, and the writers' lock means nobody
/// else sees or touches the rows in between.
pub(crate) const PG_DELETE_CHANGED: &str = "\
DELETE FROM entities e
USING UNNEST($1::text[], $2::text[], $3::text[]) AS t(k, l, h)
WHERE e.entity_key = t.k AND e.location_id = t.l AND e.hash <> t.h";
/// See [`PG_DELETE_CHANGED`].
pub(crate) fn pg_copy_entities() -> String {
    format!("COPY entities ({}) FROM STDIN (FORMAT binary)", EntityRecord::COLUMNS)
}

/// Deletes entities by key, answering the keys that were stored. SQLite
/// reads the stored keys among `n` as JSON, then deletes those.
pub(crate) fn sqlite_stored_keys(n: usize) -> String {
    format!("SELECT json_group_array(entity_key) FROM entities WHERE entity_key IN ({})", list(n))
}
/// See [`sqlite_stored_keys`].
pub(crate) fn sqlite_delete_keys(n: usize) -> String {
    format!("DELETE FROM entities WHERE entity_key IN ({})", list(n))
}
/// PostgreSQL form of [`sqlite_stored_keys`] and [`sqlite_delete_keys`]:
/// one statement with an array of keys, `RETURNING` the deleted ones.
pub(crate) const PG_DELETE_KEYS: &str = "DELETE FROM entities WHERE entity_key = ANY($1::text[]) RETURNING entity_key";

/// Deletes the entities of a location, answering their keys. SQLite reads
/// the keys as JSON first (rather than `RETURNING` them one row at a time).
pub(crate) const SQLITE_LOCATION_KEYS: &str = "SELECT json_group_array(entity_key) FROM entities WHERE location_id = ?";
/// See [`SQLITE_LOCATION_KEYS`].
pub(crate) const SQLITE_DELETE_LOCATION_ENTITIES: &str = "DELETE FROM entities WHERE location_id = ?";
/// PostgreSQL form of [`SQLITE_LOCATION_KEYS`] and
/// [`SQLITE_DELETE_LOCATION_ENTITIES`]: one statement.
pub(crate) const PG_DELETE_LOCATION_ENTITIES: &str = "DELETE FROM entities WHERE location_id = $1 RETURNING entity_key";

/// Every entity. SQLite reads pages of `limit` rows after a rowid, each as
/// one JSON array of `[rowid, entity]`, in one read transaction.
pub(crate) fn sqlite_load_entities(limit: usize) -> String {
    format!(
        "SELECT json_group_array(json_array(rowid, json_array({}))) \
         FROM (SELECT rowid, * FROM entities WHERE rowid > ? ORDER BY rowid LIMIT {limit})",
        EntityRecord::COLUMNS
    )
}
/// PostgreSQL form of [`sqlite_load_entities`]: one plain read.
pub(crate) fn pg_load_entities() -> String {
    format!("SELECT {} FROM entities", EntityRecord::COLUMNS)
}

/// The entities with some keys: `n` keys, answered as one JSON array on
/// SQLite.
pub(crate) fn sqlite_get_entities(n: usize) -> String {
    format!(
        "SELECT json_group_array(json_array({})) FROM entities WHERE entity_key IN ({})",
        EntityRecord::COLUMNS,
        list(n)
    )
}
/// PostgreSQL form of [`sqlite_get_entities`]: an array of keys.
pub(crate) fn pg_get_entities() -> String {
    format!("SELECT {} FROM entities WHERE entity_key = ANY($1::text[])", EntityRecord::COLUMNS)
}

/// The last change-log seq ever used, after which an appender (holding the
/// writers' lock) numbers its rows itself. SQLite's `AUTOINCREMENT` keeps
/// it in `sqlite_sequence` (a seq used by a row since deleted is not
/// reused).
pub(crate) const SQLITE_LAST_SEQ_USED: &str = "\
SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0),
           COALESCE((SELECT MAX(seq) FROM change_log), 0))";
/// PostgreSQL form of [`SQLITE_LAST_SEQ_USED`]: reserves `$1` consecutive
/// seqs from the column's sequence and answers the first.
pub(crate) const PG_RESERVE_SEQS: &str = "\
WITH s AS (SELECT pg_get_serial_sequence('change_log', 'seq')::regclass AS name),
     f AS (SELECT nextval(s.name) AS first, s.name FROM s)
SELECT f.first, setval(f.name, f.first + $1 - 1) FROM f";

/// Appends `rows` change-log rows ([`LogRecord::COLUMNS`]) with their seqs.
pub(crate) fn sqlite_insert_log(rows: usize) -> String {
    format!("INSERT INTO change_log ({}) VALUES {}", LogRecord::COLUMNS, values(rows, 4))
}
/// PostgreSQL form of [`sqlite_insert_log`].
pub(crate) fn pg_copy_log() -> String {
    format!("COPY change_log ({}) FROM STDIN (FORMAT binary)", LogRecord::COLUMNS)
}

/// Inserts a location's errors, in order: `rows` of (location, body) on
/// SQLite.
pub(crate) fn sqlite_insert_errors(rows: usize) -> String {
    format!("INSERT INTO ingestion_errors (location_id, body) VALUES {}", values(rows, 2))
}
/// PostgreSQL form of [`sqlite_insert_errors`]: the location once and an
/// array of bodies, inserted in array order (the ids keep that order).
pub(crate) const PG_INSERT_ERRORS: &str = "\
INSERT INTO ingestion_errors (location_id, body)
SELECT $1, t.b FROM UNNEST($2::text[]) WITH ORDINALITY AS t(b, n) ORDER BY t.n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statements_have_one_placeholder_per_parameter() {
        let count = |sql: &str| sql.matches('?').count();
        assert_eq!(count(&sqlite_differing(3)), 9);
        assert_eq!(count(&sqlite_upsert_entities(2)), 20);
        assert_eq!(count(&sqlite_stored_keys(4)), 4);
        assert_eq!(count(&sqlite_get_entities(5)), 5);
        assert_eq!(count(&sqlite_insert_log(2)), 8);
        assert_eq!(count(&sqlite_insert_errors(3)), 6);
    }
}
