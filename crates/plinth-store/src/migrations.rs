//! A tiny schema-migration runner: an ordered list of versioned migrations
//! (scripts per backend), each applied once, in its own transaction, and recorded in
//! `plinth_migrations`. On PostgreSQL the run holds an advisory lock so
//! replicas starting together do not race.

use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::dialect::Dialect;
use crate::StoreError;

/// Session-level advisory lock key held while migrating PostgreSQL
/// ("plinthmg" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x706c_696e_7468_6d67;

struct Migration {
    version: i64,
    /// Scripts run in order, in the migration's transaction.
    sqlite: &'static [&'static str],
    postgres: &'static [&'static str],
}

const BOOTSTRAP: &str =
    "CREATE TABLE IF NOT EXISTS plinth_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)";

/// Decision log and waivers: portable SQL, the same on both backends.
const POLICY_TABLES: &str = r#"
CREATE TABLE policy_decisions (
    decision_id TEXT PRIMARY KEY NOT NULL,
    ts_ms       BIGINT NOT NULL,
    point       TEXT NOT NULL,
    result      TEXT NOT NULL,
    event       TEXT NOT NULL
);
CREATE INDEX policy_decisions_ts ON policy_decisions (ts_ms);
CREATE INDEX policy_decisions_point_ts ON policy_decisions (point, ts_ms);

CREATE TABLE policy_decision_entities (
    entity_ref  TEXT NOT NULL,
    ts_ms       BIGINT NOT NULL,
    decision_id TEXT NOT NULL,
    PRIMARY KEY (entity_ref, ts_ms, decision_id)
);
CREATE INDEX policy_decision_entities_ts ON policy_decision_entities (ts_ms);

CREATE TABLE policy_waivers (
    id          TEXT PRIMARY KEY NOT NULL,
    entity_ref  TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    body        TEXT NOT NULL
);
"#;

/// Golden-path (scaffolder) task runs: portable SQL, the same on both
/// backends. The event table needs a per-backend auto-increment key, so it
/// is in `SCAFFOLDER_EVENTS_*`, run after this in the same migration.
const SCAFFOLDER_TABLES: &str = r#"
CREATE TABLE scaffolder_tasks (
    id                TEXT PRIMARY KEY NOT NULL,
    template_ref      TEXT NOT NULL,
    spec              TEXT NOT NULL,
    created_by        TEXT,
    status            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    last_heartbeat_at TEXT,
    completed_at      TEXT,
    output            TEXT,
    error             TEXT
);
CREATE INDEX scaffolder_tasks_created_by_created_at ON scaffolder_tasks (created_by, created_at);
CREATE INDEX scaffolder_tasks_status ON scaffolder_tasks (status);
"#;

const SCAFFOLDER_EVENTS_SQLITE: &str = r#"
CREATE TABLE scaffolder_task_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX scaffolder_task_events_task_id_id ON scaffolder_task_events (task_id, id);
"#;

const SCAFFOLDER_EVENTS_POSTGRES: &str = r#"
CREATE TABLE scaffolder_task_events (
    id         BIGSERIAL PRIMARY KEY,
    task_id    TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX scaffolder_task_events_task_id_id ON scaffolder_task_events (task_id, id);
"#;

/// OpenTelemetry signals: spans, scores and alerting, portable SQL, the same
/// on both backends. The rollup tables (binary sketches) and the alert event
/// log (auto-increment key) differ per backend and follow in
/// `SIGNAL_ROLLUPS_*` / `ALERT_EVENTS_*`.
const SIGNAL_TABLES: &str = r#"
CREATE TABLE signal_spans (
    trace_id       TEXT NOT NULL,
    span_id        TEXT NOT NULL,
    parent_span_id TEXT NOT NULL,
    start_ns       BIGINT NOT NULL,
    end_ns         BIGINT NOT NULL,
    received_s     BIGINT NOT NULL,
    service        TEXT NOT NULL,
    name           TEXT NOT NULL,
    operation      TEXT NOT NULL,
    model          TEXT NOT NULL,
    prompt         TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    agent          TEXT NOT NULL,
    data_source    TEXT NOT NULL,
    body           TEXT,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX signal_spans_start_ns ON signal_spans (start_ns);
CREATE INDEX signal_spans_data_source_start_ns ON signal_spans (data_source, start_ns) WHERE data_source <> '';
CREATE INDEX signal_spans_prompt_start_ns ON signal_spans (prompt, start_ns) WHERE prompt <> '';
CREATE INDEX signal_spans_kept_roots ON signal_spans (start_ns) WHERE parent_span_id = '' AND body IS NOT NULL;

CREATE TABLE signal_scores (
    id             TEXT PRIMARY KEY NOT NULL,
    created_s      BIGINT NOT NULL,
    trace_id       TEXT,
    span_id        TEXT,
    prompt         TEXT,
    prompt_version TEXT,
    name           TEXT NOT NULL,
    data_type      TEXT NOT NULL,
    value_num      DOUBLE PRECISION,
    value_str      TEXT,
    source         TEXT NOT NULL,
    comment        TEXT
);
CREATE INDEX signal_scores_prompt_version ON signal_scores (prompt, prompt_version);
CREATE INDEX signal_scores_trace_id ON signal_scores (trace_id);
CREATE INDEX signal_scores_created_s ON signal_scores (created_s);

CREATE TABLE alert_rules (
    id        TEXT PRIMARY KEY NOT NULL,
    body      TEXT NOT NULL,
    created_s BIGINT NOT NULL,
    updated_s BIGINT NOT NULL
);

CREATE TABLE alert_states (
    rule_id TEXT PRIMARY KEY NOT NULL,
    state   TEXT NOT NULL,
    since_s BIGINT NOT NULL,
    body    TEXT NOT NULL
);
"#;

/// One rollup table (`$table`) with its indexes; `$blob` is the backend's
/// binary type. Rows are partials, so there is no unique key.
macro_rules! rollup_table {
    ($table:literal, $blob:literal) => {
        concat!(
            "CREATE TABLE ",
            $table,
            " (
    bucket             BIGINT NOT NULL,
    service            TEXT NOT NULL,
    component          TEXT NOT NULL,
    team               TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    operation          TEXT NOT NULL,
    prompt             TEXT NOT NULL,
    prompt_version     TEXT NOT NULL,
    agent              TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens   BIGINT NOT NULL,
    tool_calls         BIGINT NOT NULL,
    cost_usd           DOUBLE PRECISION NOT NULL,
    duration_sketch    ",
            $blob,
            " NOT NULL,
    ttft_sketch        ",
            $blob,
            " NOT NULL
);
CREATE INDEX ",
            $table,
            "_bucket ON ",
            $table,
            " (bucket);
CREATE INDEX ",
            $table,
            "_team_bucket ON ",
            $table,
            " (team, bucket);
CREATE INDEX ",
            $table,
            "_service_bucket ON ",
            $table,
            " (service, bucket);
CREATE INDEX ",
            $table,
            "_model_bucket ON ",
            $table,
            " (model, bucket);
"
        )
    };
}

const SIGNAL_ROLLUPS_SQLITE: &str = concat!(
    rollup_table!("signal_rollups_minute", "BLOB"),
    rollup_table!("signal_rollups_hour", "BLOB"),
    rollup_table!("signal_rollups_day", "BLOB")
);

const SIGNAL_ROLLUPS_POSTGRES: &str = concat!(
    rollup_table!("signal_rollups_minute", "BYTEA"),
    rollup_table!("signal_rollups_hour", "BYTEA"),
    rollup_table!("signal_rollups_day", "BYTEA")
);

const ALERT_EVENTS_SQLITE: &str = r#"
CREATE TABLE alert_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL,
    at_s    BIGINT NOT NULL,
    state   TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX alert_events_rule_id_id ON alert_events (rule_id, id);
"#;

const ALERT_EVENTS_POSTGRES: &str = r#"
CREATE TABLE alert_events (
    id      BIGSERIAL PRIMARY KEY,
    rule_id TEXT NOT NULL,
    at_s    BIGINT NOT NULL,
    state   TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX alert_events_rule_id_id ON alert_events (rule_id, id);
"#;

/// The catalogue: entities and locations, portable SQL (PostgreSQL's
/// `PRIMARY KEY` implies the `NOT NULL` that SQLite needs spelled out). The
/// change log and the error table need a per-backend auto-increment key, so
/// they are in `CATALOG_LOGS_*`, run after this in the same migration.
const CATALOG_TABLES: &str = r#"
CREATE TABLE entities (
    entity_key  TEXT PRIMARY KEY NOT NULL,
    uid         TEXT NOT NULL UNIQUE,
    etag        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    location_id TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX entities_location_id ON entities (location_id);

CREATE TABLE locations (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    branch     TEXT,
    created_at TEXT NOT NULL,
    status     TEXT NOT NULL
);
CREATE UNIQUE INDEX locations_identity ON locations (kind, target, COALESCE(branch, ''));
"#;

/// `AUTOINCREMENT` also keeps SQLite from reusing the seq of a deleted last
/// row (the change-log appender reads `sqlite_sequence`).
const CATALOG_LOGS_SQLITE: &str = r#"
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_key TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    at         TEXT NOT NULL
);

CREATE TABLE ingestion_errors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    location_id TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX ingestion_errors_location_id ON ingestion_errors (location_id);
"#;

const CATALOG_LOGS_POSTGRES: &str = r#"
CREATE TABLE change_log (
    seq        BIGSERIAL PRIMARY KEY,
    entity_key TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    at         TEXT NOT NULL
);

CREATE TABLE ingestion_errors (
    id          BIGSERIAL PRIMARY KEY,
    location_id TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX ingestion_errors_location_id ON ingestion_errors (location_id);
"#;

/// API tokens: portable SQL, the same on both backends. The store keeps only
/// the hex SHA-256 of each secret (`secret_hash`), never the secret.
const AUTH_TABLES: &str = r#"
CREATE TABLE auth_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'service')),
    subject      TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    revoked_by   TEXT,
    last_used_at TEXT
);
CREATE INDEX auth_tokens_subject ON auth_tokens (subject_kind, subject, created_at);
CREATE INDEX auth_tokens_created_at ON auth_tokens (created_at);
"#;

/// The audit log, a hash chain (`audit`): `seq` is assigned by the writer
/// (1, 2, 3, … without gaps), not by the database. On SQLite an `INTEGER
/// PRIMARY KEY` is the rowid itself (no second index); PostgreSQL spells the
/// same 64-bit key `BIGINT`. Everything else is in `AUDIT_INDEXES`.
const AUDIT_LOG_SQLITE: &str = r#"
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    token_id   TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    request_id TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
"#;

const AUDIT_LOG_POSTGRES: &str = r#"
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    token_id   TEXT,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    request_id TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
"#;

/// Filters of the audit log read newest first (`seq` descending), so each
/// index ends in `seq`; retention deletes by `at`.
const AUDIT_INDEXES: &str = r#"
CREATE INDEX audit_log_actor_seq ON audit_log (actor, seq);
CREATE INDEX audit_log_action_seq ON audit_log (action, seq);
CREATE INDEX audit_log_at ON audit_log (at);
"#;

/// Replicas coordinating through the store (`cluster`): leases for
/// cluster-wide jobs (times in ms since the Unix epoch, database clock) and
/// a revision per cached table, bumped in the transaction that writes it.
/// Alert states gain the revision their conditional update names, and alert
/// events a delivery state (NULL: no webhook; `pending`; `done`), so a
/// transition, its event and its pending delivery are stored together.
/// Portable SQL, the same on both backends.
const CLUSTER_TABLES: &str = r#"
CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    renewed_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);

CREATE TABLE cache_revisions (
    name     TEXT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
INSERT INTO cache_revisions (name, revision) VALUES ('alert_rules', 0), ('alert_states', 0), ('policy_waivers', 0);

ALTER TABLE alert_states ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alert_events ADD COLUMN delivery TEXT;
CREATE INDEX alert_events_pending ON alert_events (id) WHERE delivery = 'pending';
"#;

/// Starred entities, per user (`stars.rs`): portable SQL.
const STAR_TABLES: &str = r#"
CREATE TABLE user_stars (
    actor       TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (actor, entity_ref)
);
CREATE INDEX user_stars_entity ON user_stars (entity_ref);
"#;

/// Buckets with rollup rows appended since they were last compacted
/// (`signals.rs`): portable SQL. `resolution` is the rollup table's name.
const ROLLUP_DIRTY_TABLE: &str = r#"
CREATE TABLE signal_rollup_dirty (
    resolution TEXT NOT NULL,
    bucket     BIGINT NOT NULL,
    PRIMARY KEY (resolution, bucket)
);
"#;

/// Raw spans stored per trace segment (`segments.rs`); the key column
/// differs per backend. Rows of the former `signal_spans` are moved into
/// segments when the store opens, and that table is then dropped.
macro_rules! segment_table {
    ($id:literal) => {
        concat!(
            "CREATE TABLE signal_segments (
    id            ",
            $id,
            ",
    trace_id      TEXT NOT NULL,
    service       TEXT NOT NULL,
    kept          BOOLEAN NOT NULL,
    start_ns      BIGINT NOT NULL,
    last_start_ns BIGINT NOT NULL,
    span_count    BIGINT NOT NULL,
    root_start_ns BIGINT,
    root_agent    TEXT,
    tags          TEXT NOT NULL,
    span_ids      TEXT NOT NULL,
    spans         TEXT NOT NULL
);
CREATE INDEX signal_segments_trace_id ON signal_segments (trace_id);
CREATE INDEX signal_segments_last_start_ns ON signal_segments (last_start_ns);
CREATE INDEX signal_segments_kept_roots ON signal_segments (root_start_ns) WHERE root_start_ns IS NOT NULL AND kept;
"
        )
    };
}

const SEGMENTS_SQLITE: &str = segment_table!("INTEGER PRIMARY KEY");
const SEGMENTS_POSTGRES: &str = segment_table!("BIGSERIAL PRIMARY KEY");

/// A segment's `spans` become bytes: LZ4-compressed JSON from now on
/// (`segments.rs`), the JSON of older segments kept as its UTF-8 bytes.
/// SQLite's `TEXT` column already holds either (no type is enforced), so
/// only PostgreSQL changes the column's type.
const SEGMENT_BYTES_POSTGRES: &str =
    "ALTER TABLE signal_segments ALTER COLUMN spans TYPE BYTEA USING convert_to(spans, 'UTF8');";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: &[CATALOG_TABLES, CATALOG_LOGS_SQLITE],
        postgres: &[CATALOG_TABLES, CATALOG_LOGS_POSTGRES],
    },
    Migration { version: 2, sqlite: &[POLICY_TABLES], postgres: &[POLICY_TABLES] },
    Migration {
        version: 3,
        sqlite: &[SCAFFOLDER_TABLES, SCAFFOLDER_EVENTS_SQLITE],
        postgres: &[SCAFFOLDER_TABLES, SCAFFOLDER_EVENTS_POSTGRES],
    },
    Migration {
        version: 4,
        sqlite: &[SIGNAL_TABLES, SIGNAL_ROLLUPS_SQLITE, ALERT_EVENTS_SQLITE],
        postgres: &[SIGNAL_TABLES, SIGNAL_ROLLUPS_POSTGRES, ALERT_EVENTS_POSTGRES],
    },
    Migration {
        version: 5,
        sqlite: &[AUTH_TABLES, AUDIT_LOG_SQLITE, AUDIT_INDEXES],
        postgres: &[AUTH_TABLES, AUDIT_LOG_POSTGRES, AUDIT_INDEXES],
    },
    Migration { version: 6, sqlite: &[CLUSTER_TABLES], postgres: &[CLUSTER_TABLES] },
    Migration { version: 7, sqlite: &[STAR_TABLES], postgres: &[STAR_TABLES] },
    Migration { version: 8, sqlite: &[ROLLUP_DIRTY_TABLE], postgres: &[ROLLUP_DIRTY_TABLE] },
    Migration { version: 9, sqlite: &[SEGMENTS_SQLITE], postgres: &[SEGMENTS_POSTGRES] },
    Migration { version: 10, sqlite: &[], postgres: &[SEGMENT_BYTES_POSTGRES] },
    // No schema change: span segments of format 3 (bodies without the
    // members their columns hold, `segments.rs`) are written from here on,
    // and a binary that cannot read them must refuse the store.
    Migration { version: 11, sqlite: &[], postgres: &[] },
];

fn failed(version: i64) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Migration { version, source }
}

/// The newest migration recorded.
const NEWEST: &str = "SELECT MAX(version) FROM plinth_migrations";
/// Whether a migration is recorded as applied.
const IS_APPLIED: &str = "SELECT COUNT(*) FROM plinth_migrations WHERE version = ?";
/// Records a migration as applied.
const RECORD: &str = "INSERT INTO plinth_migrations (version, applied_at) VALUES (?, ?)";

/// Applies the missing migrations on `$conn` (a connection of dialect
/// `$d`), each in its own write transaction with its `$scripts` (the
/// migration's field for that dialect): written once, compiled per backend.
macro_rules! run_migrations {
    ($conn:expr, $d:expr, $scripts:ident) => {{
        let conn = $conn;
        let d: Dialect = $d;
        sqlx::raw_sql(BOOTSTRAP).execute(&mut *conn).await.map_err(failed(0))?;
        // An older binary must not run on a store a newer one migrated: it
        // would misread what that one writes (a segment format, a column).
        let newest: Option<i64> = sqlx::query_scalar(NEWEST).fetch_one(&mut *conn).await.map_err(failed(0))?;
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if let Some(found) = newest.filter(|v| *v > known) {
            return Err(StoreError::Newer { found, known });
        }
        for migration in MIGRATIONS {
            let version = migration.version;
            // On SQLite, IMMEDIATE takes the write lock first, so a second
            // process opening the same file waits and then sees the version
            // as applied; PostgreSQL runs hold the migration lock.
            let mut tx = conn.begin_with(d.begin_write()).await.map_err(failed(version))?;
            let applied: i64 = sqlx::query_scalar(&d.sql(IS_APPLIED))
                .bind(version)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed(version))?;
            if applied > 0 {
                continue;
            }
            for script in migration.$scripts {
                sqlx::raw_sql(script).execute(&mut *tx).await.map_err(failed(version))?;
            }
            sqlx::query(&d.sql(RECORD))
                .bind(version)
                .bind(crate::common::now().text)
                .execute(&mut *tx)
                .await
                .map_err(failed(version))?;
            tx.commit().await.map_err(failed(version))?;
            tracing::info!(version, dialect = ?d, "applied migration");
        }
        Ok(())
    }};
}

/// Applies the missing migrations to a SQLite database.
pub(crate) async fn run_sqlite(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    run_migrations!(conn, Dialect::Sqlite, sqlite)
}

/// Applies the missing migrations to a PostgreSQL database, holding the
/// migration advisory lock throughout (replicas starting together wait for
/// each other; SQLite's write lock does this per migration).
pub(crate) async fn run_postgres(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await.map_err(failed(0))?;
    let result = run_postgres_locked(conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(failed(0));
    result?;
    unlocked.map(|_| ())
}

async fn run_postgres_locked(conn: &mut PgConnection) -> Result<(), StoreError> {
    run_migrations!(conn, Dialect::Postgres, postgres)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_are_strictly_increasing() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert!(MIGRATIONS.first().is_some_and(|m| m.version >= 1));
    }
}
