//! The audit log: who did what to which target, and whether it was allowed,
//! as a tamper-evident hash chain.
//!
//! Each row carries `seq` (1, 2, 3, … without gaps, assigned by the writer),
//! the `hash` of the row before it (`prev_hash`; [`AUDIT_GENESIS_HASH`] for the
//! first) and its own `hash`:
//!
//! ```text
//! hash = hex(sha256(prev_hash + "\n" + canonical))
//! canonical = [seq,at,actor,token_id,action,target,outcome,request_id,detail]
//! ```
//!
//! `canonical` is the compact JSON array of the row's columns as stored:
//! `at` the stored RFC 3339 text, `token_id` and `request_id` `null` when
//! absent, `outcome` lower case, `detail` the stored JSON text itself (so
//! the hash covers exactly the bytes stored). Editing a row breaks its hash;
//! deleting one breaks the `seq` run at the next; [`Store::verify_audit`]
//! names the first row that does not check.
//!
//! The chain stays linear with several writers: appends take the write lock
//! first (`BEGIN IMMEDIATE` on SQLite; a transaction-level advisory lock on
//! PostgreSQL, where replicas share the table), then read the head, and the
//! `seq` primary key is the backstop. Retention ([`Store::prune_audit`])
//! deletes the oldest rows and appends, in the same transaction, a chained
//! `audit.retention` row recording the last deleted `seq` and its hash, so
//! the rest still verifies.

use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::common::{from_json, parse_stamp, stamp_micros, to_json};
use crate::dialect::{on_pool, on_store, values, Dialect};
use crate::record::record;
use crate::{Store, StoreError};

/// The `prev_hash` of the first row ever written: 64 zeros.
pub const AUDIT_GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of the rows [`Store::prune_audit`] appends.
pub const AUDIT_RETENTION_ACTION: &str = "audit.retention";
/// The actor of the rows [`Store::prune_audit`] appends.
pub const AUDIT_RETENTION_ACTOR: &str = "system:audit";

/// Appenders on PostgreSQL serialise on this transaction-level advisory
/// lock ("plinthau" in ASCII) until they commit.
const PG_AUDIT_LOCK: i64 = 0x706c_696e_7468_6175;
const PG_LOCK_AUDIT: &str = "SELECT pg_advisory_xact_lock($1)";

/// Columns per audit row (those of `AuditRecord`).
const COLUMN_COUNT: usize = 11;
/// Rows per insert statement: 11,000 parameters, below both backends' limits.
const INSERT_CHUNK: usize = 1_000;
/// Rows per page while verifying.
const VERIFY_PAGE: i64 = 10_000;
/// Rows per page of [`Store::audit_entries`] when the query says 0.
const DEFAULT_LIMIT: usize = 100;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// The caller was allowed and the action done.
    Allowed,
    /// Authentication or authorisation refused the caller.
    Denied,
    /// The caller was allowed but the action failed.
    Failed,
}

impl AuditOutcome {
    /// The stored (and serialised, and hashed) form: lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
        }
    }

    /// The inverse of [`AuditOutcome::as_str`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<AuditOutcome> {
        match text {
            "allowed" => Some(AuditOutcome::Allowed),
            "denied" => Some(AuditOutcome::Denied),
            "failed" => Some(AuditOutcome::Failed),
            _ => None,
        }
    }
}

/// An entry to append; the store assigns its `seq` and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// Stored (and hashed) to the microsecond.
    pub at: OffsetDateTime,
    /// `user:default/alice`, `service:otel-exporter`, `anonymous`,
    /// `system:catalog`, …
    pub actor: String,
    /// The token the actor authenticated with, if any.
    pub token_id: Option<String>,
    /// Dotted, capability first: `catalog.location.create`.
    pub action: String,
    /// What the action was on (an entity ref, a location id, …); may be empty.
    pub target: String,
    pub outcome: AuditOutcome,
    pub request_id: Option<String>,
    /// A JSON object; `null` is stored as `{}`, other non-objects are refused.
    pub detail: Value,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub token_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: AuditOutcome,
    pub request_id: Option<String>,
    pub detail: Value,
    /// The `hash` of the row before (`seq - 1`), or [`AUDIT_GENESIS_HASH`].
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this row (see the module docs).
    pub hash: String,
}

/// Filters for reading the audit log, newest first. Filters combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// Actions starting with this text (`catalog.` matches
    /// `catalog.location.create`); case-sensitive on both backends.
    pub action_prefix: Option<String>,
    /// Exactly this target.
    pub target: Option<String>,
    /// Rows at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Rows before this time.
    pub to: Option<OffsetDateTime>,
    /// Rows with `seq` below this: the cursor a previous page returned.
    pub before_seq: Option<i64>,
    /// At most this many rows (the caller bounds it); 0 means 100.
    pub limit: usize,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditVerification {
    /// How many rows verified (those before the problem, if any).
    pub checked: u64,
    /// The `seq` of the oldest row kept; `None` for an empty log.
    pub first_seq: Option<i64>,
    /// The `seq` of the last row that verified (the head when there is no
    /// problem).
    pub last_seq: Option<i64>,
    /// The `hash` of that row.
    pub head_hash: Option<String>,
    /// The first row that does not check, if any; the walk stops there.
    pub problem: Option<AuditProblem>,
}

impl AuditVerification {
    /// Whether the whole log verified.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }
}

/// The first row of the audit log that does not check, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditProblem {
    pub seq: i64,
    pub reason: String,
}

record! {
    /// An `audit_log` row as stored: `at` RFC 3339 text, `detail` JSON text.
    #[derive(Clone)]
    struct AuditRecord {
        seq: i64,
        at: String,
        actor: String,
        token_id: Option<String>,
        action: String,
        target: String,
        outcome: String,
        request_id: Option<String>,
        detail: String,
        prev_hash: String,
        hash: String,
    }
}

impl AuditRecord {
    /// The row's canonical form (see the module docs), or why it has none.
    fn canonical(&self) -> Result<String, &'static str> {
        canonical(
            self.seq,
            &self.at,
            &self.actor,
            self.token_id.as_deref(),
            &self.action,
            &self.target,
            &self.outcome,
            self.request_id.as_deref(),
            &self.detail,
        )
    }
}

impl TryFrom<AuditRecord> for AuditEntry {
    type Error = StoreError;

    fn try_from(r: AuditRecord) -> Result<AuditEntry, StoreError> {
        let what = format!("audit row {}", r.seq);
        let outcome = AuditOutcome::parse(&r.outcome).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Decode(format!("{what} has unknown outcome {:?}", r.outcome).into()))
        })?;
        Ok(AuditEntry {
            seq: r.seq,
            at: parse_stamp(&r.at, &what)?,
            actor: r.actor,
            token_id: r.token_id,
            action: r.action,
            target: r.target,
            outcome,
            request_id: r.request_id,
            detail: from_json(&r.detail)?,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

/// The canonical form of a row: the compact JSON array `[seq, at, actor,
/// token_id, action, target, outcome, request_id, detail]`, with `detail`
/// embedded as the exact JSON text stored. `Err` when `detail` is not one
/// JSON value without surrounding whitespace.
#[allow(clippy::too_many_arguments)]
fn canonical(
    seq: i64,
    at: &str,
    actor: &str,
    token_id: Option<&str>,
    action: &str,
    target: &str,
    outcome: &str,
    request_id: Option<&str>,
    detail: &str,
) -> Result<String, &'static str> {
    let raw: &RawValue = serde_json::from_str(detail).map_err(|_| "detail is not valid JSON")?;
    // The raw value leaves out whitespace around it, which would then go
    // unhashed.
    if raw.get() != detail {
        return Err("detail has whitespace around it");
    }
    let detail = raw;
    serde_json::to_string(&(seq, at, actor, token_id, action, target, outcome, request_id, detail))
        .map_err(|_| "the row cannot be serialised")
}

/// `hex(sha256(prev_hash + "\n" + canonical))`.
fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// An entry with its stored text, ready to chain.
struct Prepared<'a> {
    entry: &'a NewAuditEntry,
    at: String,
    detail: String,
}

fn prepare(entry: &NewAuditEntry) -> Result<Prepared<'_>, StoreError> {
    let detail = match &entry.detail {
        Value::Null => "{}".to_string(),
        object @ Value::Object(_) => to_json(object)?,
        other => {
            return Err(StoreError::Database(sqlx::Error::Encode(
                format!("the detail of audit action {:?} is not a JSON object: {other}", entry.action).into(),
            )))
        }
    };
    Ok(Prepared { entry, at: stamp_micros(entry.at), detail })
}

/// Chains `rows` after `head` (the last stored row's seq and hash, `None`
/// for an empty log).
fn chain(head: Option<(i64, String)>, rows: &[Prepared<'_>]) -> Result<Vec<AuditRecord>, StoreError> {
    let (mut seq, mut prev) = head.unwrap_or_else(|| (0, AUDIT_GENESIS_HASH.to_string()));
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        seq += 1;
        let e = row.entry;
        let record = AuditRecord {
            seq,
            at: row.at.clone(),
            actor: e.actor.clone(),
            token_id: e.token_id.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.as_str().to_string(),
            request_id: e.request_id.clone(),
            detail: row.detail.clone(),
            prev_hash: prev,
            hash: String::new(),
        };
        let canonical = record
            .canonical()
            .map_err(|reason| StoreError::Database(sqlx::Error::Encode(format!("audit row {seq}: {reason}").into())))?;
        let hash = chain_hash(&record.prev_hash, &canonical);
        prev = hash.clone();
        out.push(AuditRecord { hash, ..record });
    }
    Ok(out)
}

/// The last row's seq and hash.
const HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// The head (last seq and hash) read on `$conn`, a write transaction
/// holding the lock.
macro_rules! read_head {
    ($conn:expr) => {{
        let head: Option<(i64, String)> = sqlx::query_as(HEAD).fetch_optional(&mut *$conn).await?;
        head
    }};
}

/// Inserts `$rows` (prepared entries) on `$conn`, chained after `$head`
/// (from [`read_head!`] in the same transaction); evaluates to their seqs.
macro_rules! append_chained {
    ($conn:expr, $d:expr, $head:expr, $rows:expr) => {{
        let d: Dialect = $d;
        let records = chain($head, $rows)?;
        for chunk in records.chunks(INSERT_CHUNK) {
            let sql = d
                .sql(&format!(
                    "INSERT INTO audit_log ({}) VALUES {}",
                    AuditRecord::COLUMNS,
                    values(chunk.len(), COLUMN_COUNT)
                ))
                .into_owned();
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(r.seq)
                    .bind(&r.at)
                    .bind(&r.actor)
                    .bind(r.token_id.as_deref())
                    .bind(&r.action)
                    .bind(&r.target)
                    .bind(&r.outcome)
                    .bind(r.request_id.as_deref())
                    .bind(&r.detail)
                    .bind(&r.prev_hash)
                    .bind(&r.hash);
            }
            query.execute(&mut *$conn).await?;
        }
        records.iter().map(|r| r.seq).collect::<Vec<i64>>()
    }};
}

/// A write transaction on `$s` (a backend store) holding the audit lock.
macro_rules! begin_audit_write {
    ($s:expr, $d:expr) => {{
        let mut tx = $s.begin_write().await?;
        if $d == Dialect::Postgres {
            sqlx::query(PG_LOCK_AUDIT).bind(PG_AUDIT_LOCK).execute(&mut *tx).await?;
        }
        tx
    }};
}

/// A retention row's record of what it deleted.
#[derive(serde::Deserialize)]
struct RetentionDetail {
    deleted_through_seq: i64,
    hash_at_seq: String,
}

/// Where the chain of the rows kept starts.
enum Anchor {
    /// Nothing was pruned: the first row must be seq 1 on [`AUDIT_GENESIS_HASH`].
    Genesis,
    /// Rows up to `first - 1` were pruned; the retention row `marker`
    /// recorded the hash of `first - 1`.
    Retained { marker: i64, hash: String },
    /// Rows before the first are missing and no retention row says why.
    Unexplained,
}

/// The anchor of a chain whose first kept row is `first` (not 1), from the
/// retention rows kept (seq, detail): the latest that recorded deleting
/// through `first - 1`.
fn anchor_of(first: i64, markers: Vec<(i64, String)>) -> Anchor {
    markers
        .into_iter()
        .rev()
        .find_map(|(marker, detail)| {
            let detail: RetentionDetail = serde_json::from_str(&detail).ok()?;
            (detail.deleted_through_seq == first - 1).then_some(Anchor::Retained { marker, hash: detail.hash_at_seq })
        })
        .unwrap_or(Anchor::Unexplained)
}

/// Checks one row against the previous row verified (`prev`: its seq and
/// hash) or, for the first, against `anchor`.
fn check_row(r: &AuditRecord, prev: Option<&(i64, String)>, anchor: &Anchor) -> Result<(), String> {
    match prev {
        Some((prev_seq, prev_hash)) => {
            if r.seq != prev_seq + 1 {
                return Err(format!("seqs {} to {} are missing", prev_seq + 1, r.seq - 1));
            }
            if r.prev_hash != *prev_hash {
                return Err(format!("prev_hash does not match the hash of seq {prev_seq}"));
            }
        }
        None => match anchor {
            Anchor::Genesis if r.prev_hash != AUDIT_GENESIS_HASH => {
                return Err("prev_hash of seq 1 is not the genesis hash".to_string());
            }
            Anchor::Genesis => {}
            Anchor::Retained { marker, hash } if r.prev_hash != *hash => {
                return Err(format!(
                    "prev_hash does not match the hash of seq {} recorded by the retention row {marker}",
                    r.seq - 1
                ));
            }
            Anchor::Retained { .. } => {}
            Anchor::Unexplained => {
                return Err(format!("seqs 1 to {} are missing and no retention row records their deletion", r.seq - 1));
            }
        },
    }
    let canonical = r.canonical()?;
    if chain_hash(&r.prev_hash, &canonical) != r.hash {
        return Err("hash does not match the row".to_string());
    }
    Ok(())
}

impl Store {
    /// Appends `entries`, in order, to the audit log in one transaction and
    /// returns their seqs (consecutive). Safe with several writers, also
    /// across replicas: the chain stays linear.
    pub async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<Vec<i64>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let rows = entries.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        on_store!(self, s, d => {
            let mut tx = begin_audit_write!(s, d);
            let head = read_head!(tx);
            let seqs = append_chained!(tx, d, head, &rows);
            s.commit_write(tx).await?;
            Ok(seqs)
        })
    }

    /// Audit rows matching `query`, newest first, and the cursor of the next
    /// page (`None` when this is the last): pass it as
    /// [`AuditQuery::before_seq`].
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<(Vec<AuditEntry>, Option<i64>), StoreError> {
        let limit = if query.limit == 0 { DEFAULT_LIMIT } else { query.limit };
        let mut clauses: Vec<&str> = Vec::new();
        if query.actor.is_some() {
            clauses.push("actor = ?");
        }
        if query.action.is_some() {
            clauses.push("action = ?");
        }
        // `substr` counts characters on both backends; LIKE would differ
        // (SQLite's ignores ASCII case) and a text range would depend on
        // PostgreSQL's collation.
        if query.action_prefix.is_some() {
            clauses.push("substr(action, 1, ?) = ?");
        }
        if query.target.is_some() {
            clauses.push("target = ?");
        }
        if query.from.is_some() {
            clauses.push("at >= ?");
        }
        if query.to.is_some() {
            clauses.push("at < ?");
        }
        if query.before_seq.is_some() {
            clauses.push("seq < ?");
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let sql = format!("SELECT {} FROM audit_log{filter} ORDER BY seq DESC LIMIT ?", AuditRecord::COLUMNS);
        let prefix = query.action_prefix.as_deref().map(|p| (i32::try_from(p.chars().count()).unwrap_or(i32::MAX), p));
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut q = sqlx::query_as::<_, AuditRecord>(&sql);
            if let Some(actor) = &query.actor {
                q = q.bind(actor);
            }
            if let Some(action) = &query.action {
                q = q.bind(action);
            }
            if let Some((len, prefix)) = prefix {
                q = q.bind(len).bind(prefix);
            }
            if let Some(target) = &query.target {
                q = q.bind(target);
            }
            if let Some(from) = query.from {
                q = q.bind(stamp_micros(from));
            }
            if let Some(to) = query.to {
                q = q.bind(stamp_micros(to));
            }
            if let Some(before) = query.before_seq {
                q = q.bind(before);
            }
            // One row more than asked tells whether there is a next page.
            let mut rows = q.bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)).fetch_all(pool).await?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = if more { rows.last().map(|r| r.seq) } else { None };
            let entries = rows.into_iter().map(AuditEntry::try_from).collect::<Result<Vec<_>, _>>()?;
            Ok((entries, next))
        })
    }

    /// Walks the audit log in seq order (in pages, on one snapshot),
    /// recomputing each hash and checking each link, and reports the first
    /// row that does not check. Rows pruned by [`Store::prune_audit`] are
    /// accounted for by its retention row; any other rows missing before the
    /// first are a problem too.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let page_sql = format!("SELECT {} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", AuditRecord::COLUMNS);
        let markers_sql = "SELECT seq, detail FROM audit_log WHERE action = ? AND actor = ? ORDER BY seq";
        on_pool!(self, pool, d => {
            // One snapshot for the whole walk, so a concurrent prune cannot
            // look like a gap (SQLite's read transaction is a snapshot).
            let begin = match d {
                Dialect::Sqlite => "BEGIN",
                Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            };
            let mut tx = pool.begin_with(begin).await?;
            let page_sql = d.sql(&page_sql);
            let mut result = AuditVerification::default();
            let mut prev: Option<(i64, String)> = None;
            let mut anchor = Anchor::Genesis;
            'pages: loop {
                let after = prev.as_ref().map_or(i64::MIN, |(seq, _)| *seq);
                let page: Vec<AuditRecord> =
                    sqlx::query_as(&page_sql).bind(after).bind(VERIFY_PAGE).fetch_all(&mut *tx).await?;
                if page.is_empty() {
                    break;
                }
                let full = page.len() as i64 == VERIFY_PAGE;
                for r in page {
                    if result.first_seq.is_none() {
                        result.first_seq = Some(r.seq);
                        if r.seq != 1 {
                            let markers: Vec<(i64, String)> = sqlx::query_as(&d.sql(markers_sql))
                                .bind(AUDIT_RETENTION_ACTION)
                                .bind(AUDIT_RETENTION_ACTOR)
                                .fetch_all(&mut *tx)
                                .await?;
                            anchor = anchor_of(r.seq, markers);
                        }
                    }
                    if let Err(reason) = check_row(&r, prev.as_ref(), &anchor) {
                        result.problem = Some(AuditProblem { seq: r.seq, reason });
                        break 'pages;
                    }
                    result.checked += 1;
                    prev = Some((r.seq, r.hash));
                }
                if !full {
                    break;
                }
            }
            tx.rollback().await?;
            if let Some((seq, hash)) = prev {
                result.last_seq = Some(seq);
                result.head_hash = Some(hash);
            }
            Ok(result)
        })
    }

    /// Retention: deletes the oldest rows, those before the first row at or
    /// after `before` (a prefix of the chain, so rows written with an older
    /// `at` after a newer one stay until everything before them goes), and
    /// appends in the same transaction a chained row (actor
    /// [`AUDIT_RETENTION_ACTOR`], action [`AUDIT_RETENTION_ACTION`], detail
    /// `{"deleted_through_seq": N, "hash_at_seq": H}`) so the rows kept still
    /// verify. Returns how many rows were deleted (no row is appended when
    /// none is).
    pub async fn prune_audit(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = stamp_micros(before);
        on_store!(self, s, d => {
            let mut tx = begin_audit_write!(s, d);
            // The head, read before the delete: the retention row chains
            // after it even when every row goes.
            let Some(head) = read_head!(tx) else { return Ok(0) };
            let last = head.0;
            let first: i64 = sqlx::query_scalar("SELECT MIN(seq) FROM audit_log").fetch_one(&mut *tx).await?;
            let keep_from: Option<i64> = sqlx::query_scalar(&d.sql("SELECT MIN(seq) FROM audit_log WHERE at >= ?"))
                .bind(&before)
                .fetch_one(&mut *tx)
                .await?;
            let through = keep_from.map_or(last, |seq| seq - 1);
            if through < first {
                return Ok(0);
            }
            let hash: Option<String> = sqlx::query_scalar(&d.sql("SELECT hash FROM audit_log WHERE seq = ?"))
                .bind(through)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(hash) = hash else {
                return Err(StoreError::Database(sqlx::Error::Protocol(format!(
                    "audit retention: seq {through} is missing from the audit log (run verification)"
                ))));
            };
            let deleted = sqlx::query(&d.sql("DELETE FROM audit_log WHERE seq <= ?"))
                .bind(through)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let marker = NewAuditEntry {
                at: OffsetDateTime::now_utc(),
                actor: AUDIT_RETENTION_ACTOR.to_string(),
                token_id: None,
                action: AUDIT_RETENTION_ACTION.to_string(),
                target: String::new(),
                outcome: AuditOutcome::Allowed,
                request_id: None,
                detail: serde_json::json!({ "deleted_through_seq": through, "hash_at_seq": hash }),
            };
            let rows = [prepare(&marker)?];
            let _marker = append_chained!(tx, d, Some(head), &rows);
            s.commit_write(tx).await?;
            Ok(deleted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry() -> NewAuditEntry {
        NewAuditEntry {
            at: datetime!(2026-01-02 03:04:05.678901 UTC),
            actor: "user:default/alice".to_string(),
            token_id: Some("tok-1".to_string()),
            action: "catalog.location.create".to_string(),
            target: "location:default/repo".to_string(),
            outcome: AuditOutcome::Allowed,
            request_id: Some("req-7".to_string()),
            detail: serde_json::json!({ "url": "https://example.com/x.yaml", "n": 2, "ok": true }),
        }
    }

    #[test]
    fn canonical_form_is_fixed() {
        let first = entry();
        let prepared = prepare(&first).unwrap();
        let records = chain(None, std::slice::from_ref(&prepared)).unwrap();
        assert_eq!(
            records[0].canonical().unwrap(),
            r#"[1,"2026-01-02T03:04:05.678901Z","user:default/alice","tok-1","catalog.location.create","location:default/repo","allowed","req-7",{"url":"https://example.com/x.yaml","n":2,"ok":true}]"#
        );
        let bare = NewAuditEntry {
            token_id: None,
            request_id: None,
            target: String::new(),
            outcome: AuditOutcome::Denied,
            actor: "anonymous".to_string(),
            detail: Value::Null,
            ..entry()
        };
        let prepared = prepare(&bare).unwrap();
        let records = chain(Some((41, "ab".repeat(32))), std::slice::from_ref(&prepared)).unwrap();
        assert_eq!(
            records[0].canonical().unwrap(),
            r#"[42,"2026-01-02T03:04:05.678901Z","anonymous",null,"catalog.location.create","","denied",null,{}]"#
        );
    }

    /// The hashes of a fixed chain: if these change, every stored chain
    /// stops verifying.
    #[test]
    fn chain_hashes_are_fixed() {
        assert_eq!(
            chain_hash(AUDIT_GENESIS_HASH, "[]"),
            "61d6b7dec2b04ce6a07d564fda8533c8721fb30af85045000f1c2c959b3739c2"
        );
        let second = NewAuditEntry { outcome: AuditOutcome::Failed, detail: serde_json::json!({}), ..entry() };
        let first = entry();
        let rows = [prepare(&first).unwrap(), prepare(&second).unwrap()];
        let records = chain(None, &rows).unwrap();
        assert_eq!(records[0].prev_hash, AUDIT_GENESIS_HASH);
        assert_eq!(records[0].hash, "6540fae7dcf103738c5dbac26d2deb7920152b3fcd14108bb510fdad9b5cd13d");
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(
            records[1].canonical().unwrap(),
            r#"[2,"2026-01-02T03:04:05.678901Z","user:default/alice","tok-1","catalog.location.create","location:default/repo","failed","req-7",{}]"#
        );
        assert_eq!(records[1].hash, "b219b3be22a7f0b53272e1ab189db1477f7f6fd48196774bd389dedde79e7a80");
        assert_eq!(records[1].seq, 2);
    }

    #[test]
    fn rows_check_against_their_chain() {
        let entries = [entry(), entry(), entry()];
        let rows = entries.iter().map(|e| prepare(e).unwrap()).collect::<Vec<_>>();
        let records = chain(None, &rows).unwrap();
        let link = |r: &AuditRecord| (r.seq, r.hash.clone());
        assert_eq!(check_row(&records[0], None, &Anchor::Genesis), Ok(()));
        assert_eq!(check_row(&records[1], Some(&link(&records[0])), &Anchor::Genesis), Ok(()));
        // A gap, a broken link, an edited row, a non-compact detail.
        assert!(check_row(&records[2], Some(&link(&records[0])), &Anchor::Genesis).unwrap_err().contains("missing"));
        let wrong = (1, "ff".repeat(32));
        assert!(check_row(&records[1], Some(&wrong), &Anchor::Genesis).unwrap_err().contains("prev_hash"));
        let edited = AuditRecord { target: "other".to_string(), ..records[1].clone() };
        assert!(check_row(&edited, Some(&link(&records[0])), &Anchor::Genesis).unwrap_err().contains("hash does not"));
        let spaced = AuditRecord { detail: format!(" {}", records[1].detail), ..records[1].clone() };
        assert!(check_row(&spaced, Some(&link(&records[0])), &Anchor::Genesis).is_err());
        // The first row kept after retention.
        let kept = Anchor::Retained { marker: 9, hash: records[1].hash.clone() };
        assert_eq!(check_row(&records[2], None, &kept), Ok(()));
        let other = Anchor::Retained { marker: 9, hash: records[0].hash.clone() };
        assert!(check_row(&records[2], None, &other).unwrap_err().contains("retention row 9"));
        assert!(check_row(&records[2], None, &Anchor::Unexplained).unwrap_err().contains("no retention row"));
    }

    #[test]
    fn column_count_matches_the_record() {
        assert_eq!(AuditRecord::COLUMNS.split(", ").count(), COLUMN_COUNT);
    }

    #[test]
    fn details_must_be_objects() {
        assert!(prepare(&NewAuditEntry { detail: serde_json::json!([1]), ..entry() }).is_err());
        assert_eq!(prepare(&NewAuditEntry { detail: Value::Null, ..entry() }).unwrap().detail, "{}");
    }

    #[test]
    fn outcome_round_trips() {
        for outcome in [AuditOutcome::Allowed, AuditOutcome::Denied, AuditOutcome::Failed] {
            assert_eq!(AuditOutcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(serde_json::to_value(outcome).unwrap(), Value::from(outcome.as_str()));
        }
        assert_eq!(AuditOutcome::parse("Allowed"), None);
    }
}
