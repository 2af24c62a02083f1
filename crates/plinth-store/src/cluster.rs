//! What replicas sharing one store use to coordinate: leases, so that one
//! replica at a time runs each cluster-wide job, and cache revisions, so that
//! every replica learns cheaply that a cached table changed.
//!
//! A lease is a row (`leases`): its name, the holder, an `epoch` (the fencing
//! token: it grows by one each time the lease changes hands or lapses), when
//! the current term began and when it ends. Times are milliseconds since the
//! Unix epoch on the *database's* clock (`NOW_MS` below), so replicas whose
//! clocks disagree still agree on who holds a lease. A lease is never deleted:
//! releasing it ends its term now, so epochs only grow and the row shows who
//! held it last.
//!
//! A write that must only happen while its writer holds a lease names a
//! [`Fence`]; the statement checks the lease in the same transaction
//! ([`FENCE`]), so a replica that lost its lease while paused cannot act on
//! stale state.
//!
//! As elsewhere, each statement is written once, with `?` placeholders
//! numbered for PostgreSQL; `NOW_MS` is the one expression that differs.

use std::time::Duration;

use crate::dialect::{on_pool, Dialect};
use crate::record::record;
use crate::{Store, StoreError};

/// A lease as stored: who holds it, in which term, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// The fencing token: grows by one whenever the lease changes hands or
    /// lapses, never otherwise.
    pub epoch: i64,
    /// When the current term began (ms since the Unix epoch, database clock).
    pub acquired_ms: i64,
    /// When the holder last renewed it.
    pub renewed_ms: i64,
    /// When the term ends unless renewed.
    pub expires_ms: i64,
}

impl Lease {
    /// The fence of this term, for writes that must only happen while it lasts.
    pub fn fence(&self) -> Fence {
        Fence { name: self.name.clone(), holder: self.holder.clone(), epoch: self.epoch }
    }
}

/// A lease term a fenced write depends on: the write happens only when, at
/// that moment, `holder` still holds `name` in `epoch` and it has not expired.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
}

/// A lease and the database's time when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub lease: Lease,
    pub now_ms: i64,
}

impl LeaseView {
    /// Whether the lease is in force (held and not expired).
    pub fn in_force(&self) -> bool {
        self.lease.expires_ms > self.now_ms
    }
}

/// Tables cached in every replica's memory whose writes bump a revision
/// (in the same transaction), so a replica polls one small row set to learn
/// whether to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cached {
    AlertRules,
    AlertStates,
    Waivers,
}

impl Cached {
    pub fn as_str(self) -> &'static str {
        match self {
            Cached::AlertRules => "alert_rules",
            Cached::AlertStates => "alert_states",
            Cached::Waivers => "policy_waivers",
        }
    }
}

/// The revision of every cached table: compare to the one a cache was
/// loaded with; any difference means reload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheRevisions {
    pub alert_rules: i64,
    pub alert_states: i64,
    pub waivers: i64,
}

impl CacheRevisions {
    pub fn of(&self, table: Cached) -> i64 {
        match table {
            Cached::AlertRules => self.alert_rules,
            Cached::AlertStates => self.alert_states,
            Cached::Waivers => self.waivers,
        }
    }
}

record! {
    /// A `leases` row.
    struct LeaseRecord -> Lease {
        name: String,
        holder: String,
        epoch: i64,
        acquired_ms: i64,
        renewed_ms: i64,
        expires_ms: i64,
    }
}

record! {
    /// A `leases` row with the database's time.
    struct LeaseViewRecord {
        name: String,
        holder: String,
        epoch: i64,
        acquired_ms: i64,
        renewed_ms: i64,
        expires_ms: i64,
        now_ms: i64,
    }
}

/// Stands for the database's current time in ms since the Unix epoch;
/// [`with_now`] replaces it per dialect.
const NOW: &str = "NOW_MS";

/// The statement in `d`'s dialect: `NOW_MS` replaced by the database's
/// clock, placeholders numbered for PostgreSQL.
pub(crate) fn with_now(d: Dialect, sql: &str) -> String {
    let now = match d {
        // The wall clock to the millisecond (SQLite ≥ 3.42).
        Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
        // The statement's start: one value however often a statement names
        // it (as SQLite's 'now'), unlike now(), the transaction's start.
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)",
    };
    d.sql(&sql.replace(NOW, now)).into_owned()
}

/// The condition of a fenced write: the fence's term is current. Binds
/// name, holder, epoch (in that order).
pub(crate) const FENCE: &str =
    "EXISTS (SELECT 1 FROM leases WHERE name = ? AND holder = ? AND epoch = ? AND expires_ms > NOW_MS)";

/// Takes a lease that is free, lapsed or already the holder's (renewing it),
/// or, with the last parameter true, whoever holds it. The epoch grows when
/// the holder changes or the term had lapsed. `excluded.renewed_ms` is the
/// statement's "now". Returns the row when the caller holds the lease.
const ACQUIRE: &str = "INSERT INTO leases (name, holder, epoch, acquired_ms, renewed_ms, expires_ms) \
     VALUES (?, ?, 1, NOW_MS, NOW_MS, NOW_MS + ?) \
     ON CONFLICT (name) DO UPDATE SET \
     epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_ms > excluded.renewed_ms \
                  THEN leases.epoch ELSE leases.epoch + 1 END, \
     acquired_ms = CASE WHEN leases.holder = excluded.holder AND leases.expires_ms > excluded.renewed_ms \
                  THEN leases.acquired_ms ELSE excluded.acquired_ms END, \
     holder = excluded.holder, renewed_ms = excluded.renewed_ms, expires_ms = excluded.expires_ms \
     WHERE leases.holder = excluded.holder OR leases.expires_ms <= excluded.renewed_ms OR ? \
     RETURNING name, holder, epoch, acquired_ms, renewed_ms, expires_ms";

/// Extends the holder's current term; nothing when it lapsed or changed hands.
const RENEW: &str = "UPDATE leases SET renewed_ms = NOW_MS, expires_ms = NOW_MS + ? \
     WHERE name = ? AND holder = ? AND epoch = ? AND expires_ms > NOW_MS \
     RETURNING name, holder, epoch, acquired_ms, renewed_ms, expires_ms";

/// Ends the holder's term now (the row stays, with its epoch).
const RELEASE: &str = "UPDATE leases SET expires_ms = NOW_MS WHERE name = ? AND holder = ? AND expires_ms > NOW_MS";

/// Bumps the revision of a cached table; run in the writing transaction.
pub(crate) const BUMP_REVISION: &str = "INSERT INTO cache_revisions (name, revision) VALUES (?, 1) \
     ON CONFLICT (name) DO UPDATE SET revision = cache_revisions.revision + 1";

/// A lease duration in ms, at least 1.
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4).clamp(1, i64::MAX / 4)
}

impl Store {
    /// Takes the lease `name` for `holder` for `ttl` when it is free, has
    /// lapsed or is `holder`'s already (then this renews it). `Some` with the
    /// row when `holder` holds it afterwards; `None` when someone else does.
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.acquire(name, holder, ttl, false).await
    }

    /// Takes the lease `name` for `holder` whoever holds it (a new epoch
    /// unless `holder` held it already): for a store only this process uses
    /// (SQLite), where a lease left by a killed predecessor must not delay
    /// the restart.
    pub async fn take_over_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.acquire(name, holder, ttl, true).await?.ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(format!("taking over lease {name} returned no row")))
        })
    }

    async fn acquire(&self, name: &str, holder: &str, ttl: Duration, force: bool) -> Result<Option<Lease>, StoreError> {
        on_pool!(self, pool, d => {
            let row: Option<LeaseRecord> = sqlx::query_as(&with_now(d, ACQUIRE))
                .bind(name)
                .bind(holder)
                .bind(ttl_ms(ttl))
                .bind(force)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(Lease::from))
        })
    }

    /// Extends `lease`'s term by `ttl` from now. `None` when the term has
    /// lapsed or the lease changed hands (take it again with
    /// [`Store::try_acquire_lease`], which starts a new epoch).
    pub async fn renew_lease(&self, lease: &Fence, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        on_pool!(self, pool, d => {
            let row: Option<LeaseRecord> = sqlx::query_as(&with_now(d, RENEW))
                .bind(ttl_ms(ttl))
                .bind(&lease.name)
                .bind(&lease.holder)
                .bind(lease.epoch)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(Lease::from))
        })
    }

    /// Ends `holder`'s term of `name` now, so another replica can take it at
    /// once. `false` when `holder` did not hold it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let done = sqlx::query(&with_now(d, RELEASE)).bind(name).bind(holder).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Every lease, by name, with the database's time.
    pub async fn leases(&self) -> Result<Vec<LeaseView>, StoreError> {
        let sql = format!("SELECT {}, NOW_MS AS now_ms FROM leases ORDER BY name", LeaseRecord::COLUMNS);
        on_pool!(self, pool, d => {
            let rows: Vec<LeaseViewRecord> = sqlx::query_as(&with_now(d, &sql)).fetch_all(pool).await?;
            Ok(rows
                .into_iter()
                .map(|r| LeaseView {
                    lease: Lease {
                        name: r.name,
                        holder: r.holder,
                        epoch: r.epoch,
                        acquired_ms: r.acquired_ms,
                        renewed_ms: r.renewed_ms,
                        expires_ms: r.expires_ms,
                    },
                    now_ms: r.now_ms,
                })
                .collect())
        })
    }

    /// Whether `fence`'s term is current at this moment.
    pub async fn holds_lease(&self, fence: &Fence) -> Result<bool, StoreError> {
        let sql = format!("SELECT {FENCE}");
        on_pool!(self, pool, d => {
            let held: bool = sqlx::query_scalar(&with_now(d, &sql))
                .bind(&fence.name)
                .bind(&fence.holder)
                .bind(fence.epoch)
                .fetch_one(pool)
                .await?;
            Ok(held)
        })
    }

    /// The revision of every cached table (0 for one never written).
    pub async fn cache_revisions(&self) -> Result<CacheRevisions, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool, _d => {
            sqlx::query_as("SELECT name, revision FROM cache_revisions").fetch_all(pool).await?
        });
        let mut revisions = CacheRevisions::default();
        for (name, revision) in rows {
            match name.as_str() {
                "alert_rules" => revisions.alert_rules = revision,
                "alert_states" => revisions.alert_states = revision,
                "policy_waivers" => revisions.waivers = revision,
                _ => {}
            }
        }
        Ok(revisions)
    }
}
