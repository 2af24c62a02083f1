//! Starred entities: per user (an actor such as `user:default/alice`), the
//! entity keys they starred and when. Migration 7. A star is idempotent:
//! starring twice keeps the first time, unstarring what is not starred is
//! `false`. Statements are written once and numbered for PostgreSQL.

use time::OffsetDateTime;

use crate::common::{parse_stamp, stamp_micros};
use crate::dialect::on_pool;
use crate::record::record;
use crate::{Store, StoreError};

/// One star of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarRow {
    /// Who starred (`user:default/alice`).
    pub actor: String,
    /// The entity's key (`component:default/checkout`).
    pub entity_ref: String,
    /// Stored to the microsecond.
    pub created_at: OffsetDateTime,
}

record! {
    /// A `user_stars` row.
    struct StarRecord {
        actor: String,
        entity_ref: String,
        created_at: String,
    }
}

impl TryFrom<StarRecord> for StarRow {
    type Error = StoreError;

    fn try_from(r: StarRecord) -> Result<StarRow, StoreError> {
        let created_at = parse_stamp(&r.created_at, &format!("star of {} by {}", r.entity_ref, r.actor))?;
        Ok(StarRow { actor: r.actor, entity_ref: r.entity_ref, created_at })
    }
}

impl Store {
    /// Stars `entity_ref` for `actor`. `true` when it was not starred
    /// (a second star keeps the first time).
    pub async fn add_star(&self, actor: &str, entity_ref: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        let sql = "INSERT INTO user_stars (actor, entity_ref, created_at) VALUES (?, ?, ?) \
                   ON CONFLICT (actor, entity_ref) DO NOTHING";
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql(sql))
                .bind(actor)
                .bind(entity_ref)
                .bind(stamp_micros(at))
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Removes a star. `false` when there was none.
    pub async fn remove_star(&self, actor: &str, entity_ref: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql("DELETE FROM user_stars WHERE actor = ? AND entity_ref = ?"))
                .bind(actor)
                .bind(entity_ref)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The stars of `actor`, newest first (ties by entity), at most `limit`.
    pub async fn list_stars(&self, actor: &str, limit: i64) -> Result<Vec<StarRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM user_stars WHERE actor = ? ORDER BY created_at DESC, entity_ref LIMIT ?",
            StarRecord::COLUMNS
        );
        on_pool!(self, pool, d => {
            let rows: Vec<StarRecord> =
                sqlx::query_as(&d.sql(&sql)).bind(actor).bind(limit.max(0)).fetch_all(pool).await?;
            rows.into_iter().map(StarRow::try_from).collect()
        })
    }

    /// Whether `actor` starred `entity_ref`.
    pub async fn is_starred(&self, actor: &str, entity_ref: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let row: Option<(String,)> =
                sqlx::query_as(&d.sql("SELECT actor FROM user_stars WHERE actor = ? AND entity_ref = ?"))
                    .bind(actor)
                    .bind(entity_ref)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.is_some())
        })
    }

    /// How many users starred `entity_ref`.
    pub async fn star_count(&self, entity_ref: &str) -> Result<u64, StoreError> {
        on_pool!(self, pool, d => {
            let (count,): (i64,) = sqlx::query_as(&d.sql("SELECT COUNT(*) FROM user_stars WHERE entity_ref = ?"))
                .bind(entity_ref)
                .fetch_one(pool)
                .await?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
    }
}
