//! Helpers shared by the SQLite and PostgreSQL backends: timestamps, etags,
//! de-duplication of change slices, JSON columns and apply outcomes.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{ApplyOutcome, ChangeOp, ChangeRecord, EntityChange, EntityUpsert, SkipReason, StoreError};

/// Fixed-width RFC 3339 UTC (microseconds, `Z`), so that text ordering is
/// time ordering.
const TIMESTAMP: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// The current time, and its stored form (RFC 3339 UTC, fixed-width
/// microseconds, so text order is time order).
#[derive(Debug, Clone)]
pub(crate) struct Now {
    pub(crate) text: String,
    pub(crate) time: OffsetDateTime,
}

/// The current time (see [`Now`]).
pub(crate) fn now() -> Now {
    let time = OffsetDateTime::now_utc();
    let time = time.replace_nanosecond(time.nanosecond() / 1_000 * 1_000).unwrap_or(time);
    Now { text: stamp_micros(time), time }
}

/// `at` as stored by the auth and audit tables: fixed-width RFC 3339 UTC
/// with microseconds (as [`now`]), so text order is time order in both
/// dialects. Finer digits are dropped.
pub(crate) fn stamp_micros(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(TIMESTAMP).or_else(|_| at.format(&Rfc3339)).unwrap_or_default()
}

/// A stored time; a malformed one is a decode error naming `what`.
pub(crate) fn parse_stamp(text: &str, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StoreError::Database(sqlx::Error::Decode(format!("{what} has time `{text}`: {e}").into())))
}

/// A fresh location id (UUID v4).
pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh entity uid: a UUID v7, whose leading bits are the time, so
/// uids made later sort later. The `uid` unique index then grows at its
/// end: with v4 every insert landed on a random leaf, which at a million
/// entities meant reading and rewriting a page per new entity (SQLite's
/// page cache holds 8 MiB of the index's ~50 MiB). Still an opaque RFC 9562
/// UUID to every reader; the process-wide v7 context keeps uids made within
/// one millisecond in order too.
pub(crate) fn new_entity_uid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The etag of an entity: the first 16 characters of its hash.
pub(crate) fn etag_of(hash: &str) -> &str {
    match hash.char_indices().nth(16) {
        Some((end, _)) => &hash[..end],
        None => hash,
    }
}

pub(crate) fn op_str(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Upsert => "upsert",
        ChangeOp::Delete => "delete",
    }
}

pub(crate) fn parse_op(op: &str) -> Result<ChangeOp, sqlx::Error> {
    match op {
        "upsert" => Ok(ChangeOp::Upsert),
        "delete" => Ok(ChangeOp::Delete),
        other => Err(sqlx::Error::Decode(format!("unknown change-log op {other:?}").into())),
    }
}

/// An empty branch means "no branch": both are stored as NULL.
pub(crate) fn normalize_branch(branch: &Option<String>) -> Option<&str> {
    branch.as_deref().filter(|b| !b.is_empty())
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// The changes with one entry per key, the last occurrence winning, in the
/// order of those last occurrences.
pub(crate) fn dedupe(changes: &[EntityChange]) -> Vec<&EntityChange> {
    let mut seen = HashSet::with_capacity(changes.len());
    let mut out: Vec<&EntityChange> = changes.iter().rev().filter(|c| seen.insert(c.key())).collect();
    out.reverse();
    out
}

/// The change-log rows to append: one per change that wrote, in slice order.
pub(crate) fn log_entries<'a>(changes: &[&'a EntityChange], written: &HashSet<String>) -> Vec<(&'a str, ChangeOp)> {
    changes
        .iter()
        .filter(|c| written.contains(c.key()))
        .map(|c| match c {
            EntityChange::Upsert(u) => (u.key.as_str(), ChangeOp::Upsert),
            EntityChange::Delete { key } => (key.as_str(), ChangeOp::Delete),
        })
        .collect()
}

/// Change-log records for `entries` given consecutive seqs from `first`.
pub(crate) fn log_records(entries: &[(&str, ChangeOp)], first: i64, at: &Now) -> Vec<ChangeRecord> {
    (first..)
        .zip(entries)
        .map(|(seq, (key, op))| ChangeRecord { seq, key: (*key).to_string(), op: *op, at: at.time })
        .collect()
}

/// The upserts of one apply, split by what the store holds.
pub(crate) struct Classified<'a> {
    /// Keys not stored yet.
    pub inserts: Vec<&'a EntityUpsert>,
    /// Keys stored for the same location with another hash.
    pub updates: Vec<&'a EntityUpsert>,
    /// Keys held by another location, with that location.
    pub owners: HashMap<String, String>,
}

/// Splits upserts by what the store holds. `differing` maps every key that
/// is new (`None`), or stored with another hash or location (`Some(owner)`);
/// keys it lacks are unchanged.
pub(crate) fn classify<'a>(upserts: &[&'a EntityUpsert], differing: HashMap<String, Option<String>>) -> Classified<'a> {
    let mut classified = Classified { inserts: Vec::new(), updates: Vec::new(), owners: HashMap::new() };
    for u in upserts {
        match differing.get(&u.key) {
            None => {}
            Some(None) => classified.inserts.push(*u),
            Some(Some(owner)) if *owner == u.location_id => classified.updates.push(*u),
            Some(Some(owner)) => {
                classified.owners.insert(u.key.clone(), owner.clone());
            }
        }
    }
    classified
}

/// The error for a bulk statement that touched an unexpected number of rows,
/// which would mean someone wrote without taking the store's write lock.
pub(crate) fn unexpected_rows(what: &str, expected: usize, actual: u64) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!(
        "{what} affected {actual} rows instead of {expected}: the entities changed under the write lock"
    )))
}

/// Assembles what an apply did. `owners` maps the keys of skipped upserts to
/// the location that holds them.
pub(crate) fn outcome(
    changes: &[&EntityChange],
    written: &HashSet<String>,
    owners: &HashMap<String, String>,
    mut records: Vec<ChangeRecord>,
) -> ApplyOutcome {
    records.sort_by_key(|r| r.seq);
    let skipped = changes
        .iter()
        .filter(|c| !written.contains(c.key()))
        .map(|c| match c {
            EntityChange::Upsert(u) => {
                let reason = match owners.get(&u.key) {
                    Some(owner) if *owner != u.location_id => SkipReason::OwnedBy(owner.clone()),
                    _ => SkipReason::Unchanged,
                };
                (u.key.clone(), reason)
            }
            EntityChange::Delete { key } => (key.clone(), SkipReason::Missing),
        })
        .collect();
    ApplyOutcome { written: records, skipped, uids: HashMap::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_a_prefix() {
        assert_eq!(etag_of("0123456789abcdef0123"), "0123456789abcdef");
        assert_eq!(etag_of("abc"), "abc");
    }

    #[test]
    fn timestamps_are_fixed_width() {
        let t = now();
        assert_eq!(t.text.len(), "2024-01-01T00:00:00.000000Z".len(), "{}", t.text);
        assert_eq!(OffsetDateTime::parse(&t.text, &Rfc3339).unwrap(), t.time, "the text is the time");
    }

    #[test]
    fn micro_stamps_are_fixed_width_utc() {
        use time::macros::datetime;
        assert_eq!(stamp_micros(datetime!(2026-12-05 06:07:08.5 +02:00)), "2026-12-05T04:07:08.500000Z");
        assert_eq!(stamp_micros(datetime!(2026-12-05 06:07:08.123456789 UTC)), "2026-12-05T06:07:08.123456Z");
        let back = parse_stamp("2026-12-05T04:07:08.500000Z", "test").unwrap();
        assert_eq!(back, datetime!(2026-12-05 04:07:08.5 UTC));
        assert!(parse_stamp("yesterday", "test").is_err());
    }

    #[test]
    fn dedupe_keeps_the_last() {
        let changes = vec![
            EntityChange::Delete { key: "a".into() },
            EntityChange::Delete { key: "b".into() },
            EntityChange::Delete { key: "a".into() },
        ];
        let keys: Vec<&str> = dedupe(&changes).iter().map(|c| c.key()).collect();
        assert_eq!(keys, ["b", "a"]);
    }
}
