//! Policy decisions (OPA decision-log events) and waivers. The statements
//! are the same on both backends apart from placeholders, so each is written
//! once with `?` and numbered for PostgreSQL.

use crate::{Store, StoreError};
use sqlx::Row;

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

/// The SQL dialect of a backend (shared with the other portable-SQL modules).
#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Numbers `?` placeholders for PostgreSQL.
    pub(crate) fn sql(self, sql: &str) -> String {
        match self {
            Dialect::Sqlite => sql.to_string(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    fn insert_ignore(self) -> (&'static str, &'static str) {
        match self {
            Dialect::Sqlite => ("INSERT OR IGNORE INTO", ""),
            Dialect::Postgres => ("INSERT INTO", " ON CONFLICT DO NOTHING"),
        }
    }
}

/// Runs `$body` with `$pool` bound to the backend's pool and `$d` to its dialect.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $d:ident => $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.pool;
                let $d = Dialect::Sqlite;
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                let $d = Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Appends decisions; an id already stored is ignored (replicas that
    /// make the same deterministic decision record it once).
    pub async fn insert_decisions(&self, records: &[DecisionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool, d => {
            let (insert, conflict) = d.insert_ignore();
            let decision_sql = d.sql(&format!("{insert} policy_decisions (decision_id, ts_ms, point, result, event) VALUES (?, ?, ?, ?, ?){conflict}"));
            let entity_sql = d.sql(&format!("{insert} policy_decision_entities (entity_ref, ts_ms, decision_id) VALUES (?, ?, ?){conflict}"));
            let mut tx = pool.begin().await?;
            for record in records {
                sqlx::query(&decision_sql)
                    .bind(&record.decision_id)
                    .bind(record.ts_ms)
                    .bind(&record.point)
                    .bind(&record.result)
                    .bind(&record.event)
                    .execute(&mut *tx)
                    .await?;
                for entity in &record.entities {
                    sqlx::query(&entity_sql).bind(entity).bind(record.ts_ms).bind(&record.decision_id).execute(&mut *tx).await?;
                }
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
            let mut q = sqlx::query(&sql);
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
            let rows = q.bind(query.limit.max(1)).fetch_all(pool).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
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

    pub async fn put_waiver(&self, waiver: &WaiverRecord) -> Result<(), StoreError> {
        on_pool!(self, pool, d => {
            sqlx::query(&d.sql("INSERT INTO policy_waivers (id, entity_ref, expires_ms, created_ms, body) VALUES (?, ?, ?, ?, ?)"))
                .bind(&waiver.id)
                .bind(&waiver.entity_ref)
                .bind(waiver.expires_ms)
                .bind(waiver.created_ms)
                .bind(&waiver.body)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Every waiver body, newest first (expired ones included: they are
    /// history; evaluation ignores them by their expiry).
    pub async fn list_waivers(&self) -> Result<Vec<String>, StoreError> {
        on_pool!(self, pool, d => {
            let rows = sqlx::query(&d.sql("SELECT body FROM policy_waivers ORDER BY created_ms DESC, id")).fetch_all(pool).await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    pub async fn delete_waiver(&self, id: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql("DELETE FROM policy_waivers WHERE id = ?")).bind(id).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn numbers_placeholders_for_postgres() {
        assert_eq!(Dialect::Postgres.sql("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(Dialect::Sqlite.sql("a = ?"), "a = ?");
    }
}
