//! Policy decisions (OPA decision-log events) and waivers. The statements
//! are the same on both backends apart from placeholders, so each is written
//! once with `?` and numbered for PostgreSQL.

use crate::cluster::{Cached, BUMP_REVISION};
use crate::dialect::{on_pool, values};
use crate::{Store, StoreError};

/// One decision-log event to store.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub decision_id: String,
    /// Unix milliseconds.
    pub ts_ms: i64,
    pub point: String,
    pub result: String,
    /// Entity refs the decision is about (lower case).
    pub entities: Vec<String>,
    /// The whole event as JSON.
    pub event: String,
}

/// Filters for listing decisions; newest first.
#[derive(Debug, Clone, Default)]
pub struct DecisionQuery {
    pub point: Option<String>,
    pub entity: Option<String>,
    pub result: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only events older than this (ts_ms, decision_id): the cursor.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// A stored waiver (its body is the JSON the policy crate defines).
#[derive(Debug, Clone)]
pub struct WaiverRecord {
    pub id: String,
    pub entity_ref: String,
    pub expires_ms: i64,
    pub created_ms: i64,
    pub body: String,
}

impl Store {
    /// Appends decisions; an id already stored is ignored (replicas that
    /// make the same deterministic decision record it once).
    pub async fn insert_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Multi-row INSERTs: one statement per 200 decisions (and per 200
        // entity links) instead of one per row, so the writer keeps up with
        // the admission webhook without taking its CPU.
        const ROWS: usize = 200;
        let links: Vec<(&str, i64, &str)> = records
            .iter()
            .flat_map(|r| r.entities.iter().map(move |e| (e.as_str(), r.ts_ms, r.decision_id.as_str())))
            .collect();
        on_pool!(self, pool, d => {
            let mut tx = pool.begin().await?;
            for chunk in records.chunks(ROWS) {
                let text = format!(
                    "INSERT INTO policy_decisions (decision_id, ts_ms, point, result, event) VALUES {} ON CONFLICT DO NOTHING",
                    values(chunk.len(), 5)
                );
                let sql = d.sql(&text);
                let mut query = sqlx::query(&sql);
                for record in chunk {
                    query = query
                        .bind(&record.decision_id)
                        .bind(record.ts_ms)
                        .bind(&record.point)
                        .bind(&record.result)
                        .bind(&record.event);
                }
                query.execute(&mut *tx).await?;
            }
            for chunk in links.chunks(ROWS) {
                let text = format!(
                    "INSERT INTO policy_decision_entities (entity_ref, ts_ms, decision_id) VALUES {} ON CONFLICT DO NOTHING",
                    values(chunk.len(), 3)
                );
                let sql = d.sql(&text);
                let mut query = sqlx::query(&sql);
                for (entity, ts_ms, decision_id) in chunk {
                    query = query.bind(*entity).bind(*ts_ms).bind(*decision_id);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Decision events matching `query`, newest first, with their
    /// (ts_ms, decision_id) for paging.
    pub async fn query_decisions(&self, query: &DecisionQuery) -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut sql = String::from("SELECT d.ts_ms, d.decision_id, d.event FROM policy_decisions d");
        let mut clauses: Vec<&str> = Vec::new();
        if query.entity.is_some() {
            sql.push_str(" JOIN policy_decision_entities e ON e.decision_id = d.decision_id AND e.ts_ms = d.ts_ms");
            clauses.push("e.entity_ref = ?");
        }
        if query.point.is_some() {
            clauses.push("d.point = ?");
        }
        if query.result.is_some() {
            clauses.push("d.result = ?");
        }
        if query.from_ms.is_some() {
            clauses.push("d.ts_ms >= ?");
        }
        if query.to_ms.is_some() {
            clauses.push("d.ts_ms < ?");
        }
        if query.before.is_some() {
            clauses.push("(d.ts_ms < ? OR (d.ts_ms = ? AND d.decision_id < ?))");
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY d.ts_ms DESC, d.decision_id DESC LIMIT ?");
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            // (ts_ms, decision_id, event), as returned.
            let mut q = sqlx::query_as::<_, (i64, String, String)>(&sql);
            if let Some(entity) = &query.entity {
                q = q.bind(entity.to_lowercase());
            }
            if let Some(point) = &query.point {
                q = q.bind(point);
            }
            if let Some(result) = &query.result {
                q = q.bind(result);
            }
            if let Some(from) = query.from_ms {
                q = q.bind(from);
            }
            if let Some(to) = query.to_ms {
                q = q.bind(to);
            }
            if let Some((ts, id)) = &query.before {
                q = q.bind(*ts).bind(*ts).bind(id);
            }
            Ok(q.bind(query.limit.max(1)).fetch_all(pool).await?)
        })
    }

    /// Deletes decisions older than `before_ms`; returns how many.
    pub async fn purge_decisions(&self, before_ms: i64) -> Result<u64, StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin().await?;
            sqlx::query(&d.sql("DELETE FROM policy_decision_entities WHERE ts_ms < ?")).bind(before_ms).execute(&mut *tx).await?;
            let done = sqlx::query(&d.sql("DELETE FROM policy_decisions WHERE ts_ms < ?")).bind(before_ms).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        })
    }

    /// Stores a waiver; bumps the waivers' cache revision in the same
    /// transaction, so every replica reloads them.
    pub async fn put_waiver(&self, waiver: &WaiverRecord) -> Result<(), StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(&d.sql("INSERT INTO policy_waivers (id, entity_ref, expires_ms, created_ms, body) VALUES (?, ?, ?, ?, ?)"))
                .bind(&waiver.id)
                .bind(&waiver.entity_ref)
                .bind(waiver.expires_ms)
                .bind(waiver.created_ms)
                .bind(&waiver.body)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::Waivers.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every waiver body, newest first (expired ones included: they are
    /// history; evaluation ignores them by their expiry).
    pub async fn list_waivers(&self) -> Result<Vec<String>, StoreError> {
        on_pool!(self, pool, d => {
            Ok(sqlx::query_scalar(&d.sql("SELECT body FROM policy_waivers ORDER BY created_ms DESC, id")).fetch_all(pool).await?)
        })
    }

    pub async fn delete_waiver(&self, id: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = sqlx::query(&d.sql("DELETE FROM policy_waivers WHERE id = ?")).bind(id).execute(&mut *tx).await?;
            if done.rows_affected() > 0 {
                sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::Waivers.as_str()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
