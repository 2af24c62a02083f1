//! Golden-path (scaffolder) task runs and their event logs. As in
//! `policy`, each statement is written once with `?` placeholders and
//! numbered for PostgreSQL; JSON columns are stored as text.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::{from_json, to_json};
use crate::dialect::on_pool;
use crate::record::record;
use crate::{Store, StoreError};

/// Where a task run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Open,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    /// The stored (and serialised) form: lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Processing => "processing",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// The inverse of [`TaskStatus::as_str`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        match text {
            "open" => Some(TaskStatus::Open),
            "processing" => Some(TaskStatus::Processing),
            "completed" => Some(TaskStatus::Completed),
            "failed" => Some(TaskStatus::Failed),
            "cancelled" => Some(TaskStatus::Cancelled),
            _ => None,
        }
    }
}

/// What a task event records, as Backstage's scaffolder event stream names
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskEventType {
    /// A log line of a step or of the run (`body.message`, `body.stepId`).
    Log,
    /// The run ended (`body.status`, `body.error` or `body.output`); the last
    /// event of a task.
    Completion,
}

impl TaskEventType {
    /// The stored (and serialised) form: lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskEventType::Log => "log",
            TaskEventType::Completion => "completion",
        }
    }

    /// The inverse of [`TaskEventType::as_str`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<TaskEventType> {
        match text {
            "log" => Some(TaskEventType::Log),
            "completion" => Some(TaskEventType::Completion),
            _ => None,
        }
    }
}

/// A task run to create (it starts [`TaskStatus::Open`]).
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub template_ref: String,
    pub spec: Value,
    pub created_by: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A stored task run. Times are stored as fixed-width RFC 3339 UTC text
/// (milliseconds), so they order correctly as text in both dialects.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub template_ref: String,
    pub spec: Value,
    pub created_by: Option<String>,
    pub status: TaskStatus,
    pub created_at: OffsetDateTime,
    pub last_heartbeat_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    pub output: Option<Value>,
    pub error: Option<String>,
}

/// An event to append to a task's log.
#[derive(Debug, Clone)]
pub struct NewTaskEvent {
    pub event_type: TaskEventType,
    pub body: Value,
    pub created_at: OffsetDateTime,
}

/// A stored task event; `id` increases in append order.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEventRow {
    pub id: i64,
    pub task_id: String,
    pub event_type: TaskEventType,
    pub body: Value,
    pub created_at: OffsetDateTime,
}

/// A task time as stored: RFC 3339 UTC with exactly three fractional
/// digits, so stored times compare correctly as text.
fn stamp(at: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(FORMAT).or_else(|_| at.format(&Rfc3339)).unwrap_or_default()
}

/// A stored task time; a malformed one is a decode error naming the row.
fn parse_stamp(text: &str, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| StoreError::Database(sqlx::Error::Decode(format!("{what} has time `{text}`: {e}").into())))
}

/// Filters for listing tasks; newest first.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub created_by: Option<String>,
    pub status: Option<TaskStatus>,
    /// At most this many rows; 0 means no limit.
    pub limit: usize,
    pub offset: usize,
}

/// The `error.name` of the completion event written for interrupted tasks.
const INTERRUPTED_ERROR_NAME: &str = "ServerRestarted";

record! {
    /// A `scaffolder_tasks` row; `spec` and `output` are JSON.
    struct TaskRecord {
        id: String,
        template_ref: String,
        spec: String,
        created_by: Option<String>,
        status: String,
        created_at: String,
        last_heartbeat_at: Option<String>,
        completed_at: Option<String>,
        output: Option<String>,
        error: Option<String>,
    }
}

impl TryFrom<TaskRecord> for TaskRow {
    type Error = StoreError;

    fn try_from(r: TaskRecord) -> Result<TaskRow, StoreError> {
        let status = TaskStatus::parse(&r.status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown scaffolder task status {:?}", r.status).into()))?;
        let what = format!("task {}", r.id);
        Ok(TaskRow {
            template_ref: r.template_ref,
            spec: from_json(&r.spec)?,
            created_by: r.created_by,
            status,
            created_at: parse_stamp(&r.created_at, &what)?,
            last_heartbeat_at: r.last_heartbeat_at.as_deref().map(|t| parse_stamp(t, &what)).transpose()?,
            completed_at: r.completed_at.as_deref().map(|t| parse_stamp(t, &what)).transpose()?,
            output: r.output.as_deref().map(from_json).transpose()?,
            error: r.error,
            id: r.id,
        })
    }
}

record! {
    /// A `scaffolder_task_events` row; `body` is JSON.
    struct TaskEventRecord {
        id: i64,
        task_id: String,
        event_type: String,
        body: String,
        created_at: String,
    }
}

impl TryFrom<TaskEventRecord> for TaskEventRow {
    type Error = StoreError;

    fn try_from(r: TaskEventRecord) -> Result<TaskEventRow, StoreError> {
        let what = format!("event {} of task {}", r.id, r.task_id);
        let event_type = TaskEventType::parse(&r.event_type).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Decode(format!("{what} has unknown type {:?}", r.event_type).into()))
        })?;
        Ok(TaskEventRow {
            event_type,
            body: from_json(&r.body)?,
            created_at: parse_stamp(&r.created_at, &what)?,
            id: r.id,
            task_id: r.task_id,
        })
    }
}

/// A `usize` as a SQL integer (saturating).
fn sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates a task run in status [`TaskStatus::Open`].
    pub async fn create_task(&self, task: &NewTask) -> Result<(), StoreError> {
        let spec = to_json(&task.spec)?;
        on_pool!(self, pool, d => {
            sqlx::query(&d.sql(
                "INSERT INTO scaffolder_tasks (id, template_ref, spec, created_by, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(&task.id)
            .bind(&task.template_ref)
            .bind(&spec)
            .bind(task.created_by.as_deref())
            .bind(TaskStatus::Open.as_str())
            .bind(stamp(task.created_at))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Sets a task's status and its heartbeat; `false` when there is no such task.
    pub async fn set_task_status(
        &self,
        id: &str,
        status: TaskStatus,
        heartbeat_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql("UPDATE scaffolder_tasks SET status = ?, last_heartbeat_at = ? WHERE id = ?"))
                .bind(status.as_str())
                .bind(stamp(heartbeat_at))
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Records that a task's worker is alive (nothing happens for an unknown id).
    pub async fn heartbeat_task(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        on_pool!(self, pool, d => {
            sqlx::query(&d.sql("UPDATE scaffolder_tasks SET last_heartbeat_at = ? WHERE id = ?"))
                .bind(stamp(at))
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ends a task with `status`, its output and error; `false` when there
    /// is no such task.
    pub async fn finish_task(
        &self,
        id: &str,
        status: TaskStatus,
        completed_at: OffsetDateTime,
        output: Option<&Value>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let output = output.map(to_json).transpose()?;
        let completed_at = stamp(completed_at);
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql(
                "UPDATE scaffolder_tasks SET status = ?, completed_at = ?, output = ?, error = ? WHERE id = ?",
            ))
            .bind(status.as_str())
            .bind(&completed_at)
            .bind(output.as_deref())
            .bind(error)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    pub async fn get_task(&self, id: &str) -> Result<Option<TaskRow>, StoreError> {
        let sql = format!("SELECT {} FROM scaffolder_tasks WHERE id = ?", TaskRecord::COLUMNS);
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let row: Option<TaskRecord> = sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?;
            row.map(TaskRow::try_from).transpose()
        })
    }

    /// The tasks matching `query`, newest first, and how many match in all
    /// (ignoring limit and offset).
    pub async fn list_tasks(&self, query: &TaskQuery) -> Result<(Vec<TaskRow>, u64), StoreError> {
        let mut clauses: Vec<&str> = Vec::new();
        if query.created_by.is_some() {
            clauses.push("created_by = ?");
        }
        if query.status.is_some() {
            clauses.push("status = ?");
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let limit = if query.limit == 0 { i64::MAX } else { sql_int(query.limit) };
        let count_sql = format!("SELECT COUNT(*) FROM scaffolder_tasks{filter}");
        let list_sql = format!(
            "SELECT {} FROM scaffolder_tasks{filter} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            TaskRecord::COLUMNS
        );
        on_pool!(self, pool, d => {
            let count_sql = d.sql(&count_sql);
            let list_sql = d.sql(&list_sql);
            let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
            let mut list = sqlx::query_as::<_, TaskRecord>(&list_sql);
            if let Some(created_by) = &query.created_by {
                count = count.bind(created_by);
                list = list.bind(created_by);
            }
            if let Some(status) = query.status {
                count = count.bind(status.as_str());
                list = list.bind(status.as_str());
            }
            let total = count.fetch_one(pool).await?;
            let rows = list.bind(limit).bind(sql_int(query.offset)).fetch_all(pool).await?;
            let tasks = rows.into_iter().map(TaskRow::try_from).collect::<Result<Vec<_>, _>>()?;
            Ok((tasks, u64::try_from(total).unwrap_or_default()))
        })
    }

    /// Appends events to a task's log in one transaction; returns their
    /// ids, in order.
    pub async fn append_task_events(&self, task_id: &str, events: &[NewTaskEvent]) -> Result<Vec<i64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let bodies = events.iter().map(|e| to_json(&e.body)).collect::<Result<Vec<_>, _>>()?;
        on_pool!(self, pool, d => {
            let sql = d.sql(
                "INSERT INTO scaffolder_task_events (task_id, event_type, body, created_at) VALUES (?, ?, ?, ?) RETURNING id",
            );
            let mut tx = pool.begin().await?;
            let mut ids = Vec::with_capacity(events.len());
            for (event, body) in events.iter().zip(&bodies) {
                let id: i64 = sqlx::query_scalar(&sql)
                    .bind(task_id)
                    .bind(event.event_type.as_str())
                    .bind(body)
                    .bind(stamp(event.created_at))
                    .fetch_one(&mut *tx)
                    .await?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// A task's events with `id > after` (all when `None`), in id order.
    pub async fn task_events(&self, task_id: &str, after: Option<i64>) -> Result<Vec<TaskEventRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM scaffolder_task_events WHERE task_id = ? AND id > ? ORDER BY id",
            TaskEventRecord::COLUMNS
        );
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let rows: Vec<TaskEventRecord> =
                sqlx::query_as(&sql).bind(task_id).bind(after.unwrap_or(i64::MIN)).fetch_all(pool).await?;
            rows.into_iter().map(TaskEventRow::try_from).collect()
        })
    }

    /// Tasks still open or processing whose runner is gone become failed
    /// (error `reason`, completed at `at`) with a `completion` event, in one
    /// transaction; returns their ids (sorted). With `stale_before`, only
    /// those whose last heartbeat (or creation) is older than it — runners
    /// on other replicas keep theirs fresh; without, every one (a process
    /// that owns the store alone, at start).
    pub async fn fail_interrupted_tasks(
        &self,
        reason: &str,
        at: OffsetDateTime,
        stale_before: Option<OffsetDateTime>,
    ) -> Result<Vec<String>, StoreError> {
        let at = stamp(at);
        let stale_before = stale_before.map(stamp);
        let body = to_json(&serde_json::json!({
            "message": reason,
            "status": TaskStatus::Failed.as_str(),
            "error": { "name": INTERRUPTED_ERROR_NAME, "message": reason },
        }))?;
        on_pool!(self, pool, d => {
            let mut tx = pool.begin().await?;
            // One UPDATE … RETURNING: on PostgreSQL a concurrent caller waits
            // on the row locks and then no longer matches these rows.
            let mut sql = String::from(
                "UPDATE scaffolder_tasks SET status = ?, error = ?, completed_at = ? WHERE status IN (?, ?)",
            );
            if stale_before.is_some() {
                sql.push_str(" AND COALESCE(last_heartbeat_at, created_at) < ?");
            }
            sql.push_str(" RETURNING id");
            let sql = d.sql(&sql);
            let mut query = sqlx::query_scalar::<_, String>(&sql)
                .bind(TaskStatus::Failed.as_str())
                .bind(reason)
                .bind(&at)
                .bind(TaskStatus::Open.as_str())
                .bind(TaskStatus::Processing.as_str());
            if let Some(stale_before) = stale_before {
                query = query.bind(stale_before);
            }
            let mut ids = query.fetch_all(&mut *tx).await?;
            ids.sort();
            let insert = d.sql("INSERT INTO scaffolder_task_events (task_id, event_type, body, created_at) VALUES (?, ?, ?, ?)");
            for id in &ids {
                sqlx::query(&insert).bind(id).bind(TaskEventType::Completion.as_str()).bind(&body).bind(&at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(ids)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{stamp, TaskEventType, TaskStatus};
    use time::macros::datetime;

    #[test]
    fn status_round_trips() {
        for status in
            [TaskStatus::Open, TaskStatus::Processing, TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled]
        {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::Value::from(status.as_str()));
        }
        assert_eq!(TaskStatus::parse("Open"), None);
    }

    #[test]
    fn event_type_round_trips() {
        for event_type in [TaskEventType::Log, TaskEventType::Completion] {
            assert_eq!(TaskEventType::parse(event_type.as_str()), Some(event_type));
            assert_eq!(serde_json::to_value(event_type).unwrap(), serde_json::Value::from(event_type.as_str()));
        }
        assert_eq!(TaskEventType::parse("cancelled"), None);
    }

    #[test]
    fn stamps_are_fixed_width_utc() {
        assert_eq!(stamp(datetime!(2026-12-05 06:07:08.5 +02:00)), "2026-12-05T04:07:08.500Z");
        assert_eq!(stamp(datetime!(2026-12-05 06:07:08 UTC)), "2026-12-05T06:07:08.000Z");
    }
}
