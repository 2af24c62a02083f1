//! OpenTelemetry signals: spans (stored per trace segment, see
//! `segments.rs`; kept bodies, and key-only spans used for de-duplication),
//! per-minute and per-hour rollups written as partial rows and merged later
//! by compaction, evaluation scores, and alerting (rules, an event log and
//! the current state per rule).
//!
//! Span ingestion is on the hot path of the OTLP receiver, so it is
//! set-based: one probe of the batch's trace ids finds the span ids stored
//! already (how a retried export is stored once), then SQLite gets
//! multi-row `INSERT … VALUES` statements of segments, PostgreSQL one array
//! per column unpacked by `UNNEST` (the two forms, and those of the rollup
//! inserts, are side by side below). The other statements are written once
//! with `?` placeholders and numbered for PostgreSQL.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::{PgConnection, SqliteConnection};

use crate::cluster::{with_now, Cached, Fence, BUMP_REVISION, FENCE};
use crate::dialect::{list, on_pool, on_store, values, Dialect};
use crate::postgres::PgStore;
use crate::record::record;
use crate::segments::{self, NewSegment, SEGMENT_COLUMNS, SEGMENT_PARAMS};
use crate::sqlite::SqliteStore;
use crate::{Store, StoreError};

pub use plinth_telemetry::records::{RollupKey, RollupRow, ScoreRow, SpanBody, SpanRow};

/// The granularity of a rollup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
    /// Day rows are written from the hour rows of each batch (bucket
    /// floored to the UTC day, merged per day and key) and merged across
    /// batches by compaction, so long-range summaries read 24× fewer rows.
    Day,
}

impl Resolution {
    /// The table holding rows of this resolution.
    pub fn table(self) -> &'static str {
        match self {
            Resolution::Minute => "signal_rollups_minute",
            Resolution::Hour => "signal_rollups_hour",
            Resolution::Day => "signal_rollups_day",
        }
    }

    /// The width of a bucket.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
            Resolution::Day => 86_400,
        }
    }
}

/// Which rollup rows to read: bucket in [from_s, to_s) and every given dimension equal.
#[derive(Debug, Clone, Default)]
pub struct RollupQuery {
    pub from_s: i64,
    pub to_s: i64,
    pub service: Option<String>,
    pub component: Option<String>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub prompt_version: Option<String>,
    pub agent: Option<String>,
    pub operation: Option<String>,
}

/// What [`Store::ingest_signals`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalBatchOutcome {
    /// Spans newly stored.
    pub inserted: usize,
    /// Spans already stored, or repeated earlier in the same batch.
    pub duplicates: usize,
}

/// Which spans to list: start_ns in [from_ns, to_ns), every given filter
/// equal; newest first.
#[derive(Debug, Clone, Default)]
pub struct SpanQuery {
    pub from_ns: i64,
    pub to_ns: i64,
    pub operation: Option<String>,
    pub service: Option<String>,
    pub prompt: Option<String>,
    pub agent: Option<String>,
    /// Only rows with a data source (`data_source <> ''`).
    pub data_source_set: bool,
    /// Only rows with a body (not key-only).
    pub only_kept: bool,
    /// At most this many rows; 0 (or less) means no limit.
    pub limit: i64,
}

/// Which scores to list: every given filter equal, created_s in
/// [from_s, to_s) when given; newest first.
#[derive(Debug, Clone, Default)]
pub struct ScoreQuery {
    pub trace_id: Option<String>,
    pub prompt: Option<String>,
    pub prompt_version: Option<String>,
    pub from_s: Option<i64>,
    pub to_s: Option<i64>,
    /// At most this many rows; 0 (or less) means no limit.
    pub limit: i64,
}

/// One entry of the alert event log; `id` increases in append order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEventRow {
    pub id: i64,
    pub rule_id: String,
    pub at_s: i64,
    /// `firing` or `resolved`.
    pub state: String,
    pub body: String,
}

/// The current state of one alert rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertStateRow {
    pub rule_id: String,
    pub state: String,
    pub since_s: i64,
    pub body: String,
}

/// A rule's stored state with its revision: the revision grows with every
/// write of the state, and a conditional update ([`Store::transition_alert`])
/// names the one it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedAlertState {
    pub row: AlertStateRow,
    pub revision: i64,
}

/// A rule's move from the state an evaluation read to the one it computed,
/// with the event it records (firing or resolved) when the rule changed so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTransition {
    pub state: AlertStateRow,
    /// The revision the evaluation read; `None`: the rule had no state row.
    pub from_revision: Option<i64>,
    pub event: Option<NewAlertEvent>,
}

/// An alert event to append with a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertEvent {
    pub at_s: i64,
    /// `firing` or `resolved`.
    pub state: String,
    pub body: String,
    /// The rule has a webhook: the event is stored with its delivery pending
    /// (see [`Store::pending_alert_deliveries`]).
    pub webhook: bool,
}

/// What a transition stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionApplied {
    /// The state's new revision.
    pub revision: i64,
    /// The appended event.
    pub event_id: Option<i64>,
}

record! {
    /// A `signal_spans` row.
    struct SpanRecord {
        trace_id: String,
        span_id: String,
        parent_span_id: String,
        start_ns: i64,
        end_ns: i64,
        received_s: i64,
        service: String,
        name: String,
        operation: String,
        model: String,
        prompt: String,
        prompt_version: String,
        agent: String,
        data_source: String,
        body: Option<String>,
    }
}

impl From<SpanRecord> for SpanRow {
    fn from(r: SpanRecord) -> SpanRow {
        SpanRow {
            trace_id: r.trace_id,
            span_id: r.span_id,
            parent_span_id: r.parent_span_id,
            start_ns: r.start_ns,
            end_ns: r.end_ns,
            received_s: r.received_s,
            service: r.service,
            name: r.name,
            operation: r.operation,
            model: r.model,
            prompt: r.prompt,
            prompt_version: r.prompt_version,
            agent: r.agent,
            data_source: r.data_source,
            body: r.body.and_then(segments::older_body),
        }
    }
}

record! {
    /// A row of a rollup table.
    struct RollupRecord {
        bucket: i64,
        service: String,
        component: String,
        team: String,
        provider: String,
        model: String,
        operation: String,
        prompt: String,
        prompt_version: String,
        agent: String,
        requests: i64,
        errors: i64,
        input_tokens: i64,
        output_tokens: i64,
        cache_read_tokens: i64,
        cache_write_tokens: i64,
        reasoning_tokens: i64,
        tool_calls: i64,
        cost_usd: f64,
        duration_sketch: Vec<u8>,
        ttft_sketch: Vec<u8>,
    }
}

impl From<RollupRecord> for RollupRow {
    fn from(r: RollupRecord) -> RollupRow {
        RollupRow {
            bucket: r.bucket,
            key: RollupKey {
                service: r.service,
                component: r.component,
                team: r.team,
                provider: r.provider,
                model: r.model,
                operation: r.operation,
                prompt: r.prompt,
                prompt_version: r.prompt_version,
                agent: r.agent,
            },
            requests: r.requests,
            errors: r.errors,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            tool_calls: r.tool_calls,
            cost_usd: r.cost_usd,
            duration_sketch: r.duration_sketch,
            ttft_sketch: r.ttft_sketch,
        }
    }
}

/// The rollup dimensions, in [`RollupRecord::COLUMNS`] order (after `bucket`).
const ROLLUP_KEY_COLUMNS: &str = "service, component, team, provider, model, operation, prompt, prompt_version, agent";

record! {
    /// A `signal_scores` row.
    struct ScoreRecord -> ScoreRow {
        id: String,
        created_s: i64,
        trace_id: Option<String>,
        span_id: Option<String>,
        prompt: Option<String>,
        prompt_version: Option<String>,
        name: String,
        data_type: String,
        value_num: Option<f64>,
        value_str: Option<String>,
        source: String,
        comment: Option<String>,
    }
}

record! {
    /// An `alert_events` row.
    struct AlertEventRecord -> AlertEventRow {
        id: i64,
        rule_id: String,
        at_s: i64,
        state: String,
        body: String,
    }
}

record! {
    /// An `alert_states` row.
    struct AlertStateRecord -> AlertStateRow {
        rule_id: String,
        state: String,
        since_s: i64,
        body: String,
    }
}

record! {
    /// An `alert_states` row with its revision.
    struct VersionedAlertStateRecord {
        rule_id: String,
        state: String,
        since_s: i64,
        body: String,
        revision: i64,
    }
}

record! {
    /// An `alert_rules` row, as far as it is read.
    struct AlertRuleRecord {
        id: String,
        body: String,
    }
}

// ---------------------------------- inserts per dialect, side by side --
//
// SQLite has no array parameters: it binds every row of a multi-row
// `VALUES`, in chunks below its limit of 32,766 parameters. PostgreSQL binds
// one array per column and unpacks them with `UNNEST`: one statement and one
// plan per batch however large.

/// Segments per SQLite insert ([`SEGMENT_PARAMS`] parameters each, below
/// SQLite's limit of 32,766).
const SQLITE_SEGMENT_CHUNK: usize = 1_024;

/// Trace ids per SQLite de-duplication probe.
const SQLITE_PROBE_CHUNK: usize = 512;

/// Rollup rows per SQLite multi-row insert: 21 parameters each, well
/// below SQLite's limit of 32,766.
const SQLITE_ROLLUP_CHUNK: usize = 1_000;

/// Serialises span ingest transactions on PostgreSQL ("plinthsp" in
/// ASCII), so that the de-duplication read and the insert of one are not
/// interleaved with another's (see `segments.rs`).
const PG_SPANS_LOCK: i64 = 0x706c_696e_7468_7370;

/// Segments per PostgreSQL insert (one array per column).
const PG_SEGMENT_CHUNK: usize = 5_000;

fn sqlite_segments_insert(rows: usize) -> String {
    format!("INSERT INTO signal_segments ({SEGMENT_COLUMNS}) VALUES {}", values(rows, SEGMENT_PARAMS))
}

fn sqlite_probe(traces: usize) -> String {
    format!("SELECT trace_id, span_ids FROM signal_segments WHERE trace_id IN ({})", list(traces))
}

const PG_PROBE: &str = "SELECT trace_id, span_ids FROM signal_segments WHERE trace_id = ANY($1)";

fn pg_segments_insert() -> String {
    format!(
        "INSERT INTO signal_segments ({SEGMENT_COLUMNS}) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
         $8::text[], $9::text[], $10::text[], $11::bytea[])"
    )
}

/// Appends `rows` rows ([`RollupRecord::COLUMNS`] each) to a rollup table.
fn sqlite_rollups_insert(table: &str, rows: usize) -> String {
    format!("INSERT INTO {table} ({}) VALUES {}", RollupRecord::COLUMNS, values(rows, 21))
}
/// PostgreSQL form of [`sqlite_rollups_insert`]: one array per column.
fn pg_rollups_insert(table: &str) -> String {
    format!(
        "INSERT INTO {table} ({}) SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int8[], $12::int8[], \
         $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::float8[], $20::bytea[], \
         $21::bytea[])",
        RollupRecord::COLUMNS
    )
}

/// A non-positive limit means "no limit".
fn limit_or_all(limit: i64) -> i64 {
    if limit > 0 {
        limit
    } else {
        i64::MAX
    }
}

/// The spans of a batch to insert: the first occurrence of every key, with
/// its index in the batch.
struct UniqueSpans<'a> {
    /// In (trace id, span id) order.
    rows: Vec<&'a SpanRow>,
    /// Keyed by the client's ids: foldhash, seeded per process (SipHash
    /// was 2 % of the OTLP receiver's CPU; an unseeded hash would let a
    /// client choose colliding ids).
    index: foldhash::HashMap<(&'a str, &'a str), usize>,
}

impl<'a> UniqueSpans<'a> {
    fn new(spans: &'a [SpanRow]) -> UniqueSpans<'a> {
        let mut index = foldhash::HashMap::with_capacity_and_hasher(spans.len(), Default::default());
        let mut rows = Vec::with_capacity(spans.len());
        for (i, span) in spans.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                index.entry((span.trace_id.as_str(), span.span_id.as_str()))
            {
                slot.insert(i);
                rows.push(span);
            }
        }
        rows.sort_unstable_by(|a, b| (&a.trace_id, &a.span_id).cmp(&(&b.trace_id, &b.span_id)));
        UniqueSpans { rows, index }
    }

    /// The distinct trace ids, in order.
    fn trace_ids(&self) -> Vec<&'a str> {
        let mut ids: Vec<&str> = self.rows.iter().map(|s| s.trace_id.as_str()).collect();
        ids.dedup();
        ids
    }

    /// The spans not among `stored`, each marked in `mask`.
    fn new_spans(&self, stored: &segments::StoredKeys, mask: &mut [bool]) -> Vec<&'a SpanRow> {
        let mut new = Vec::with_capacity(self.rows.len());
        for span in &self.rows {
            if stored.get(&span.trace_id).is_some_and(|ids| ids.contains(&span.span_id)) {
                continue;
            }
            if let Some(&i) = self.index.get(&(span.trace_id.as_str(), span.span_id.as_str())) {
                mask[i] = true;
            }
            new.push(*span);
        }
        new
    }
}

// The inserts of `ingest_signals` and `compact_rollups`, named alike on both
// backends so that those are written once.

impl SqliteStore {
    /// Stores the spans not stored yet as segments and marks them in `mask`.
    async fn insert_spans(
        &self,
        conn: &mut SqliteConnection,
        unique: &UniqueSpans<'_>,
        mask: &mut [bool],
    ) -> Result<(), StoreError> {
        let mut found = Vec::new();
        for chunk in unique.trace_ids().chunks(SQLITE_PROBE_CHUNK) {
            let sql = sqlite_probe(chunk.len());
            let mut query = sqlx::query_as::<_, (String, String)>(&sql).persistent(chunk.len() == SQLITE_PROBE_CHUNK);
            for id in chunk {
                query = query.bind(*id);
            }
            found.extend(query.fetch_all(&mut *conn).await?);
        }
        let new = unique.new_spans(&segments::stored_keys(found), mask);
        let segments = segments::build_segments(&new)?;
        for chunk in segments.chunks(SQLITE_SEGMENT_CHUNK) {
            let sql = sqlite_segments_insert(chunk.len());
            let mut query = sqlx::query(&sql).persistent(chunk.len() == SQLITE_SEGMENT_CHUNK);
            // In `SEGMENT_COLUMNS` order.
            for g in chunk {
                query = query
                    .bind(&g.trace_id)
                    .bind(&g.service)
                    .bind(g.kept)
                    .bind(g.start_ns)
                    .bind(g.last_start_ns)
                    .bind(g.span_count)
                    .bind(g.root_start_ns)
                    .bind(g.root_agent.as_deref())
                    .bind(&g.tags)
                    .bind(&g.span_ids)
                    .bind(&g.spans);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Appends rollup rows ([`sqlite_rollups_insert`]; few rows per batch;
    /// binds keep `cost_usd` and the sketches exact).
    async fn insert_rollups(
        &self,
        conn: &mut SqliteConnection,
        table: &str,
        rows: &[RollupRow],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(SQLITE_ROLLUP_CHUNK) {
            let sql = sqlite_rollups_insert(table, chunk.len());
            let mut query = sqlx::query(&sql).persistent(chunk.len() == SQLITE_ROLLUP_CHUNK);
            // In `RollupRecord::COLUMNS` order.
            for r in chunk {
                let k = &r.key;
                query = query
                    .bind(r.bucket)
                    .bind(&k.service)
                    .bind(&k.component)
                    .bind(&k.team)
                    .bind(&k.provider)
                    .bind(&k.model)
                    .bind(&k.operation)
                    .bind(&k.prompt)
                    .bind(&k.prompt_version)
                    .bind(&k.agent)
                    .bind(r.requests)
                    .bind(r.errors)
                    .bind(r.input_tokens)
                    .bind(r.output_tokens)
                    .bind(r.cache_read_tokens)
                    .bind(r.cache_write_tokens)
                    .bind(r.reasoning_tokens)
                    .bind(r.tool_calls)
                    .bind(r.cost_usd)
                    .bind(r.duration_sketch.as_slice())
                    .bind(r.ttft_sketch.as_slice());
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

impl PgStore {
    /// Stores the spans not stored yet as segments and marks them in `mask`,
    /// holding [`PG_SPANS_LOCK`] to the end of the transaction.
    async fn insert_spans(
        &self,
        conn: &mut PgConnection,
        unique: &UniqueSpans<'_>,
        mask: &mut [bool],
    ) -> Result<(), StoreError> {
        if unique.rows.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_SPANS_LOCK).execute(&mut *conn).await?;
        let found: Vec<(String, String)> =
            sqlx::query_as(PG_PROBE).bind(unique.trace_ids()).fetch_all(&mut *conn).await?;
        let new = unique.new_spans(&segments::stored_keys(found), mask);
        let segments = segments::build_segments(&new)?;
        let sql = pg_segments_insert();
        for chunk in segments.chunks(PG_SEGMENT_CHUNK) {
            let text = |f: fn(&NewSegment) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
            let int = |f: fn(&NewSegment) -> i64| chunk.iter().map(f).collect::<Vec<i64>>();
            sqlx::query(&sql)
                .bind(text(|g| &g.trace_id))
                .bind(text(|g| &g.service))
                .bind(chunk.iter().map(|g| g.kept).collect::<Vec<bool>>())
                .bind(int(|g| g.start_ns))
                .bind(int(|g| g.last_start_ns))
                .bind(int(|g| g.span_count))
                .bind(chunk.iter().map(|g| g.root_start_ns).collect::<Vec<Option<i64>>>())
                .bind(chunk.iter().map(|g| g.root_agent.as_deref()).collect::<Vec<Option<&str>>>())
                .bind(text(|g| &g.tags))
                .bind(text(|g| &g.span_ids))
                .bind(chunk.iter().map(|g| g.spans.as_slice()).collect::<Vec<&[u8]>>())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Appends rollup rows ([`pg_rollups_insert`]).
    async fn insert_rollups(&self, conn: &mut PgConnection, table: &str, rows: &[RollupRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = pg_rollups_insert(table);
        let text = |f: fn(&RollupKey) -> &str| rows.iter().map(|r| f(&r.key)).collect::<Vec<&str>>();
        let int = |f: fn(&RollupRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        sqlx::query(&sql)
            .bind(int(|r| r.bucket))
            .bind(text(|k| &k.service))
            .bind(text(|k| &k.component))
            .bind(text(|k| &k.team))
            .bind(text(|k| &k.provider))
            .bind(text(|k| &k.model))
            .bind(text(|k| &k.operation))
            .bind(text(|k| &k.prompt))
            .bind(text(|k| &k.prompt_version))
            .bind(text(|k| &k.agent))
            .bind(int(|r| r.requests))
            .bind(int(|r| r.errors))
            .bind(int(|r| r.input_tokens))
            .bind(int(|r| r.output_tokens))
            .bind(int(|r| r.cache_read_tokens))
            .bind(int(|r| r.cache_write_tokens))
            .bind(int(|r| r.reasoning_tokens))
            .bind(int(|r| r.tool_calls))
            .bind(rows.iter().map(|r| r.cost_usd).collect::<Vec<f64>>())
            .bind(rows.iter().map(|r| r.duration_sketch.as_slice()).collect::<Vec<&[u8]>>())
            .bind(rows.iter().map(|r| r.ttft_sketch.as_slice()).collect::<Vec<&[u8]>>())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Groups the rows a compaction delete returned by (bucket, key) and merges
/// every group of two or more; a lone row (the rest of its group was taken
/// by a concurrent compaction) goes back unchanged. Returns the rows to
/// insert and how many groups were merged.
fn merge_groups<F>(deleted: Vec<RollupRow>, merge: &F) -> (Vec<RollupRow>, usize)
where
    F: Fn(Vec<RollupRow>) -> RollupRow,
{
    let mut groups: HashMap<(i64, RollupKey), Vec<RollupRow>> = HashMap::new();
    for row in deleted {
        groups.entry((row.bucket, row.key.clone())).or_default().push(row);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged_groups = 0;
    let mut out = Vec::with_capacity(groups.len());
    for (_, mut rows) in groups {
        if rows.len() == 1 {
            out.append(&mut rows);
        } else {
            merged_groups += 1;
            out.push(merge(rows));
        }
    }
    (out, merged_groups)
}

/// Dirty markers per insert statement (2 parameters each).
const DIRTY_MARK_CHUNK: usize = 1_000;
/// Dirty buckets one compaction call claims at most.
const DIRTY_CLAIM: usize = 5_000;
/// Dirty buckets per compaction statement (each bound twice).
const DIRTY_BUCKETS_PER_STATEMENT: usize = 500;

/// Deletes, and returns, every row of the first `?` (bound last) groups of
/// (bucket, key) with more than one row among the rows matching `scope` (its
/// parameters are bound twice: for the delete and for the groups), oldest
/// bucket first. `scope` on the delete too lets it find the rows by bucket.
fn compaction_sql(table: &str, scope: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE {scope} AND (bucket, {ROLLUP_KEY_COLUMNS}) IN (\
         SELECT bucket, {ROLLUP_KEY_COLUMNS} FROM {table} WHERE {scope} \
         GROUP BY bucket, {ROLLUP_KEY_COLUMNS} HAVING COUNT(*) > 1 ORDER BY bucket LIMIT ?) \
         RETURNING {}",
        RollupRecord::COLUMNS
    )
}

/// Marks `n` (resolution, bucket) pairs dirty; a marked one stays as is.
fn mark_dirty_sql(n: usize) -> String {
    format!("INSERT INTO signal_rollup_dirty (resolution, bucket) VALUES {} ON CONFLICT DO NOTHING", values(n, 2))
}

/// The (resolution, bucket) of every row, distinct and sorted: the
/// buckets a batch appended to.
fn dirty_markers(rows: [(Resolution, &[RollupRow]); 3]) -> Vec<(&'static str, i64)> {
    let mut markers: Vec<(&'static str, i64)> =
        rows.iter().flat_map(|(resolution, rows)| rows.iter().map(|r| (resolution.table(), r.bucket))).collect();
    markers.sort_unstable();
    markers.dedup();
    markers
}

/// Counts the former span table (0 or 1) in the store's schema.
fn legacy_table_count(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'signal_spans'",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'signal_spans'"
        }
    }
}

/// A batch's day rows: its hour rows re-bucketed to their UTC day, the
/// hours of one (day, key) merged into one row. An export of spans spread
/// over many hours (a backfill, a collector catching up) then appends one
/// day row per key and day rather than one per hour, which a summary over
/// days reads until compaction has merged them.
fn day_rows(hours: &[RollupRow]) -> Vec<RollupRow> {
    let days = hours.iter().map(|row| RollupRow { bucket: row.bucket - row.bucket.rem_euclid(86_400), ..row.clone() });
    merge_groups(days.collect(), &plinth_telemetry::rollup::merge_rows).0
}

impl Store {
    /// Stores a batch of spans and the rollup rows derived from them in ONE
    /// transaction. A span whose (trace_id, span_id) is already stored, or
    /// appeared earlier in `spans`, is not stored again. `rollups` gets the
    /// mask of spans newly stored (`mask[i]` for `spans[i]`), so only those
    /// are counted, and returns the (minute, hour) partial rows to append.
    /// Nothing is written if any statement fails; when this returns `Ok`
    /// the batch is committed durably (on SQLite this commit syncs the WAL,
    /// although the store otherwise runs with `synchronous=NORMAL`).
    pub async fn ingest_signals<F>(&self, spans: &[SpanRow], rollups: F) -> Result<SignalBatchOutcome, StoreError>
    where
        F: FnOnce(&[bool]) -> (Vec<RollupRow>, Vec<RollupRow>) + Send,
    {
        let unique = UniqueSpans::new(spans);
        let mut mask = vec![false; spans.len()];
        let mut dirty = Vec::new();
        on_store!(self, s, d => {
            // This batch is acknowledged to the sender once we return, so its
            // commit must survive a crash of the machine (see `acquire_durable`).
            let mut conn = s.acquire_durable().await?;
            let result = async {
                let mut tx = sqlx::Connection::begin_with(&mut *conn, d.begin_write()).await?;
                s.insert_spans(&mut tx, &unique, &mut mask).await?;
                let (minute, hour) = rollups(&mask);
                let day = day_rows(&hour);
                s.insert_rollups(&mut tx, Resolution::Minute.table(), &minute).await?;
                s.insert_rollups(&mut tx, Resolution::Hour.table(), &hour).await?;
                s.insert_rollups(&mut tx, Resolution::Day.table(), &day).await?;
                tx.commit().await?;
                dirty = dirty_markers([(Resolution::Minute, &minute), (Resolution::Hour, &hour), (Resolution::Day, &day)]);
                Ok::<(), StoreError>(())
            }
            .await;
            let released = s.release_durable(conn).await;
            result?;
            released?;
            s.wrote_signals();
        });
        // After the commit, in a statement of its own: a marker is a hint for
        // compaction, not part of the data, and replicas marking the same
        // bucket then never wait on each other's open transactions. If it is
        // lost (a crash in between), the hourly sweep compacts the bucket.
        if let Err(error) = self.mark_dirty(&dirty).await {
            tracing::warn!(%error, "marking rollup buckets for compaction failed; the hourly sweep will compact them");
        }
        let inserted = mask.iter().filter(|&&m| m).count();
        Ok(SignalBatchOutcome { inserted, duplicates: spans.len() - inserted })
    }

    /// The rollup rows (partials included, not merged) matching `query`,
    /// ordered by bucket then key.
    pub async fn rollups(&self, resolution: Resolution, query: &RollupQuery) -> Result<Vec<RollupRow>, StoreError> {
        let filters: [(&str, &Option<String>); 8] = [
            ("service", &query.service),
            ("component", &query.component),
            ("team", &query.team),
            ("model", &query.model),
            ("prompt", &query.prompt),
            ("prompt_version", &query.prompt_version),
            ("agent", &query.agent),
            ("operation", &query.operation),
        ];
        let mut sql =
            format!("SELECT {} FROM {} WHERE bucket >= ? AND bucket < ?", RollupRecord::COLUMNS, resolution.table());
        for (column, value) in &filters {
            if value.is_some() {
                sql.push_str(&format!(" AND {column} = ?"));
            }
        }
        sql.push_str(" ORDER BY bucket");
        let rows = on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut q = sqlx::query_as::<_, RollupRecord>(&sql).bind(query.from_s).bind(query.to_s);
            for (_, value) in &filters {
                if let Some(value) = value {
                    q = q.bind(value.as_str());
                }
            }
            q.fetch_all(pool).await?
        });
        let mut rows: Vec<RollupRow> = rows.into_iter().map(RollupRow::from).collect();
        // In Rust rather than SQL: PostgreSQL's text order follows the
        // database collation, and both backends should answer alike.
        rows.sort_by(|a, b| (a.bucket, &a.key).cmp(&(b.bucket, &b.key)));
        Ok(rows)
    }

    /// Merges the partial rows of every (bucket, key) with bucket <
    /// `before_s` that has more than one row into one row made by `merge`
    /// (given all rows of one group), at most `max_groups` groups per call;
    /// returns how many groups were merged.
    ///
    /// Safe with several replicas compacting at once: one transaction
    /// deletes the groups' rows with `DELETE … RETURNING` and inserts the
    /// merges of exactly what that delete returned, so a row is never
    /// merged twice nor lost.
    pub async fn compact_rollups<F>(
        &self,
        resolution: Resolution,
        before_s: i64,
        max_groups: usize,
        merge: F,
    ) -> Result<usize, StoreError>
    where
        F: Fn(Vec<RollupRow>) -> RollupRow + Send + Sync,
    {
        if max_groups == 0 {
            return Ok(0);
        }
        let table = resolution.table();
        let sql = compaction_sql(table, "bucket < ?");
        let limit = i64::try_from(max_groups).unwrap_or(i64::MAX);
        on_store!(self, s, d => {
            let mut tx = s.begin_write().await?;
            let deleted: Vec<RollupRecord> = sqlx::query_as(&d.sql(&sql))
                .bind(before_s)
                .bind(before_s)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            let (rows, merged) = merge_groups(deleted.into_iter().map(RollupRow::from).collect(), &merge);
            s.insert_rollups(&mut tx, table, &rows).await?;
            tx.commit().await?;
            s.wrote_signals();
            Ok(merged)
        })
    }

    /// Marks buckets as holding rows appended since their last compaction.
    async fn mark_dirty(&self, markers: &[(&'static str, i64)]) -> Result<(), StoreError> {
        for chunk in markers.chunks(DIRTY_MARK_CHUNK) {
            let sql = mark_dirty_sql(chunk.len());
            on_store!(self, s, d => {
                let sql = d.sql(&sql);
                let mut query = sqlx::query(&sql);
                for (resolution, bucket) in chunk {
                    query = query.bind(*resolution).bind(*bucket);
                }
                query.execute(&s.pool).await?;
                s.wrote_signals();
            });
        }
        Ok(())
    }

    /// Compacts what was appended since the last compaction: merges the
    /// partial rows of every (bucket, key) with more than one row, in the
    /// buckets marked dirty by [`Store::ingest_signals`], at most
    /// `max_groups` groups per call; returns how many groups were merged.
    ///
    /// The work is proportional to the new rows, not to the history: a
    /// table of a year of rollups with nothing new costs one empty read of
    /// the markers. The markers are claimed and the buckets compacted in one
    /// transaction, and the buckets the call did not finish are marked
    /// again in it, so a marker is never lost by a compaction. Rows whose
    /// marker never got written (a crash after the ingest's commit) are
    /// left to [`Store::compact_rollups`], the full sweep.
    pub async fn compact_dirty_rollups<F>(
        &self,
        resolution: Resolution,
        max_groups: usize,
        merge: F,
    ) -> Result<usize, StoreError>
    where
        F: Fn(Vec<RollupRow>) -> RollupRow + Send + Sync,
    {
        if max_groups == 0 {
            return Ok(0);
        }
        let table = resolution.table();
        let claim = format!(
            "DELETE FROM signal_rollup_dirty WHERE resolution = ? AND bucket IN (\
             SELECT bucket FROM signal_rollup_dirty WHERE resolution = ? ORDER BY bucket LIMIT {DIRTY_CLAIM}) \
             RETURNING bucket"
        );
        on_store!(self, s, d => {
            let mut tx = s.begin_write().await?;
            let mut claimed: Vec<i64> =
                sqlx::query_scalar(&d.sql(&claim)).bind(table).bind(table).fetch_all(&mut *tx).await?;
            if claimed.is_empty() {
                return Ok(0);
            }
            claimed.sort_unstable();
            let mut merged = 0;
            // Groups taken: merged ones, and lone rows a concurrent
            // compaction left (see `merge_groups`); the budget counts both.
            let mut taken = 0;
            let mut finished = 0;
            for chunk in claimed.chunks(DIRTY_BUCKETS_PER_STATEMENT) {
                let budget = max_groups - taken;
                let sql = compaction_sql(table, &format!("bucket IN ({})", crate::dialect::list(chunk.len())));
                let sql = d.sql(&sql);
                let mut query = sqlx::query_as::<_, RollupRecord>(&sql);
                for bucket in chunk.iter().chain(chunk) {
                    query = query.bind(*bucket);
                }
                let deleted = query.bind(i64::try_from(budget).unwrap_or(i64::MAX)).fetch_all(&mut *tx).await?;
                let last = deleted.iter().map(|r| r.bucket).max();
                let (rows, groups) = merge_groups(deleted.into_iter().map(RollupRow::from).collect(), &merge);
                // `rows` holds one row per group taken (merged or lone).
                let this = rows.len();
                s.insert_rollups(&mut tx, table, &rows).await?;
                merged += groups;
                taken += this;
                if this < budget {
                    finished += chunk.len();
                } else {
                    // The budget ran out in bucket `last`: the buckets before
                    // it are done, and it and those after stay dirty.
                    finished += chunk.iter().take_while(|b| Some(**b) < last).count();
                    break;
                }
            }
            let unfinished = &claimed[finished..];
            for part in unfinished.chunks(DIRTY_MARK_CHUNK) {
                let sql = mark_dirty_sql(part.len());
                let sql = d.sql(&sql);
                let mut query = sqlx::query(&sql);
                for bucket in part {
                    query = query.bind(table).bind(*bucket);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            s.wrote_signals();
            Ok(merged)
        })
    }

    /// Moves the rows of the former one-row-per-span table (`signal_spans`,
    /// before migration 9) into segments, 5,000 per transaction, then drops
    /// that table. Idempotent, and safe to run from several replicas at
    /// once: each chunk is deleted and re-inserted in one transaction that
    /// holds the span ingest lock. Returns the number of spans moved.
    pub(crate) async fn move_legacy_spans(&self) -> Result<u64, StoreError> {
        const CHUNK: i64 = 5_000;
        let take = format!(
            "DELETE FROM signal_spans WHERE (trace_id, span_id) IN \
             (SELECT trace_id, span_id FROM signal_spans LIMIT ?) RETURNING {}",
            SpanRecord::COLUMNS
        );
        // A plain read first: a store without the old table (every store
        // made since migration 9) opens without taking the write lock.
        let exists: i64 = on_pool!(self, pool, d => {
            sqlx::query_scalar(legacy_table_count(d)).fetch_one(pool).await?
        });
        if exists == 0 {
            return Ok(0);
        }
        let mut moved = 0u64;
        loop {
            let done = on_store!(self, s, d => {
                let mut tx = s.pool.begin_with(d.begin_write()).await?;
                // Again under the lock: another replica may have finished.
                let exists: i64 = sqlx::query_scalar(legacy_table_count(d)).fetch_one(&mut *tx).await?;
                if exists == 0 {
                    tx.commit().await?;
                    true
                } else {
                    let rows: Vec<SpanRecord> =
                        sqlx::query_as(&d.sql(&take)).bind(CHUNK).fetch_all(&mut *tx).await?;
                    if rows.is_empty() {
                        sqlx::query("DROP TABLE signal_spans").execute(&mut *tx).await?;
                    } else {
                        let spans: Vec<SpanRow> = rows.into_iter().map(SpanRow::from).collect();
                        let unique = UniqueSpans::new(&spans);
                        let mut mask = vec![false; spans.len()];
                        s.insert_spans(&mut tx, &unique, &mut mask).await?;
                        moved += spans.len() as u64;
                    }
                    tx.commit().await?;
                    false
                }
            });
            if done {
                break;
            }
        }
        if moved > 0 {
            tracing::info!(moved, "moved stored spans into trace segments");
        }
        Ok(moved)
    }

    /// Every stored span of a trace, ordered by start time.
    pub async fn trace_spans(&self, trace_id: &str) -> Result<Vec<SpanRow>, StoreError> {
        const SQL: &str = "SELECT trace_id, service, spans FROM signal_segments WHERE trace_id = ?";
        let rows: Vec<(String, String, Vec<u8>)> = on_pool!(self, pool, d => {
            sqlx::query_as(&d.sql(SQL)).bind(trace_id).fetch_all(pool).await?
        });
        let mut spans = Vec::new();
        for (trace_id, service, encoded) in &rows {
            spans.extend(segments::decode_segment(trace_id, service, encoded)?);
        }
        spans.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
        Ok(spans)
    }

    /// Spans matching `query`, newest first (by start time, then trace id
    /// and span id, descending). Segments are read newest last start first,
    /// their tags filtering before any span is decoded, and reading stops
    /// once `limit` spans are held that start after every span still unread.
    pub async fn query_spans(&self, query: &SpanQuery) -> Result<Vec<SpanRow>, StoreError> {
        let limit = usize::try_from(limit_or_all(query.limit)).unwrap_or(usize::MAX);
        let mut sql = String::from(
            "SELECT trace_id, service, last_start_ns, spans FROM signal_segments WHERE last_start_ns >= ? AND start_ns < ?",
        );
        let mut patterns = Vec::new();
        if query.service.is_some() {
            sql.push_str(" AND service = ?");
        }
        if query.only_kept {
            sql.push_str(" AND kept");
        }
        for (kind, value) in [('o', &query.operation), ('p', &query.prompt), ('a', &query.agent)] {
            if let Some(value) = value {
                patterns.push(segments::tag_pattern(kind, value));
            }
        }
        if query.data_source_set {
            patterns.push(segments::data_source_pattern());
        }
        for _ in &patterns {
            sql.push_str(" AND tags LIKE ? ESCAPE '!'");
        }
        sql.push_str(" ORDER BY last_start_ns DESC");
        let keep = |s: &SpanRow| {
            s.start_ns >= query.from_ns
                && s.start_ns < query.to_ns
                && query.operation.as_ref().is_none_or(|v| &s.operation == v)
                && query.prompt.as_ref().is_none_or(|v| &s.prompt == v && !v.is_empty())
                && query.agent.as_ref().is_none_or(|v| &s.agent == v)
                && (!query.data_source_set || !s.data_source.is_empty())
                && (!query.only_kept || s.body.is_some())
        };
        let newest_first = |a: &SpanRow, b: &SpanRow| {
            (b.start_ns, &b.trace_id, &b.span_id).cmp(&(a.start_ns, &a.trace_id, &a.span_id))
        };
        let mut out: Vec<SpanRow> = Vec::new();
        // The start of the `limit`-th newest span held when `out` was last
        // cut to `limit`; cutting only at twice the limit keeps the sorting
        // linear in what is read.
        let mut threshold: Option<i64> = None;
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut q = sqlx::query_as::<_, (String, String, i64, Vec<u8>)>(&sql).bind(query.from_ns).bind(query.to_ns);
            if let Some(service) = &query.service {
                q = q.bind(service.as_str());
            }
            for pattern in &patterns {
                q = q.bind(pattern.as_str());
            }
            let mut rows = q.fetch(pool);
            while let Some((trace_id, service, last_start_ns, encoded)) = rows.try_next().await? {
                // Every unread span starts at or before `last_start_ns`.
                if threshold.is_some_and(|t| t > last_start_ns) {
                    break;
                }
                out.extend(segments::decode_segment(&trace_id, &service, &encoded)?.into_iter().filter(|s| keep(s)));
                if out.len() >= limit.saturating_mul(2) {
                    out.sort_by(newest_first);
                    out.truncate(limit);
                    threshold = out.last().map(|s| s.start_ns);
                }
            }
        });
        out.sort_by(newest_first);
        out.truncate(limit);
        Ok(out)
    }

    /// The most recent root spans (no parent) of kept traces (with a
    /// body), optionally of one service and/or agent, newest first: the
    /// rows of a trace list, one per segment holding a root (its first). A
    /// non-positive `limit` means no limit.
    pub async fn recent_traces(
        &self,
        service: Option<&str>,
        agent: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SpanRow>, StoreError> {
        // The two conditions match the partial index
        // `signal_segments_kept_roots`.
        let mut sql = String::from(
            "SELECT trace_id, service, root_start_ns, spans FROM signal_segments \
             WHERE root_start_ns IS NOT NULL AND kept",
        );
        if service.is_some() {
            sql.push_str(" AND service = ?");
        }
        if agent.is_some() {
            sql.push_str(" AND root_agent = ?");
        }
        sql.push_str(" ORDER BY root_start_ns DESC, trace_id DESC LIMIT ?");
        let rows: Vec<(String, String, i64, Vec<u8>)> = on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut q = sqlx::query_as(&sql);
            if let Some(service) = service {
                q = q.bind(service);
            }
            if let Some(agent) = agent {
                q = q.bind(agent);
            }
            q.bind(limit_or_all(limit)).fetch_all(pool).await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for (trace_id, service, root_start_ns, encoded) in &rows {
            let root = segments::decode_segment(trace_id, service, encoded)?
                .into_iter()
                .find(|s| s.parent_span_id.is_empty() && s.start_ns == *root_start_ns)
                .ok_or_else(|| StoreError::Corrupt(format!("span segment of trace {trace_id}: its root is missing")))?;
            out.push(root);
        }
        Ok(out)
    }

    /// Retention: deletes the segments of key-only spans whose last span
    /// started before `keyonly_before_s`, those of kept spans before
    /// `kept_before_s`, and rollup rows of every resolution with bucket <
    /// `rollups_before_s`, in one transaction. Returns the number of spans
    /// and rollup rows deleted.
    pub async fn purge_signals(
        &self,
        keyonly_before_s: i64,
        kept_before_s: i64,
        rollups_before_s: i64,
    ) -> Result<u64, StoreError> {
        // By last start (indexed; no received-time index to maintain on ingest).
        let segments: [(&str, i64); 2] = [
            (
                "DELETE FROM signal_segments WHERE last_start_ns < ? AND NOT kept RETURNING span_count",
                keyonly_before_s.saturating_mul(1_000_000_000),
            ),
            (
                "DELETE FROM signal_segments WHERE last_start_ns < ? AND kept RETURNING span_count",
                kept_before_s.saturating_mul(1_000_000_000),
            ),
        ];
        let rollups: [(&str, i64); 3] = [
            ("DELETE FROM signal_rollups_minute WHERE bucket < ?", rollups_before_s),
            ("DELETE FROM signal_rollups_hour WHERE bucket < ?", rollups_before_s),
            ("DELETE FROM signal_rollups_day WHERE bucket < ?", rollups_before_s),
        ];
        // With the rows they point at; not counted, as they are not data.
        let markers = "DELETE FROM signal_rollup_dirty WHERE bucket < ?";
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let mut deleted = 0;
            for (sql, before) in segments {
                let counts: Vec<i64> = sqlx::query_scalar(&d.sql(sql)).bind(before).fetch_all(&mut *tx).await?;
                deleted += counts.iter().map(|&n| n.max(0) as u64).sum::<u64>();
            }
            for (sql, before) in rollups {
                deleted += sqlx::query(&d.sql(sql)).bind(before).execute(&mut *tx).await?.rows_affected();
            }
            sqlx::query(&d.sql(markers)).bind(rollups_before_s).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }

    /// Stores scores; an id already stored is ignored (a re-delivered
    /// score is recorded once).
    pub async fn insert_scores(&self, scores: &[ScoreRow]) -> Result<(), StoreError> {
        if scores.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO signal_scores ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            ScoreRecord::COLUMNS,
            crate::dialect::list(12)
        );
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut tx = pool.begin_with(d.begin_write()).await?;
            // In `ScoreRecord::COLUMNS` order.
            for s in scores {
                sqlx::query(&sql)
                    .bind(&s.id)
                    .bind(s.created_s)
                    .bind(s.trace_id.as_deref())
                    .bind(s.span_id.as_deref())
                    .bind(s.prompt.as_deref())
                    .bind(s.prompt_version.as_deref())
                    .bind(&s.name)
                    .bind(&s.data_type)
                    .bind(s.value_num)
                    .bind(s.value_str.as_deref())
                    .bind(&s.source)
                    .bind(s.comment.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Scores matching `query`, newest first.
    pub async fn query_scores(&self, query: &ScoreQuery) -> Result<Vec<ScoreRow>, StoreError> {
        let mut clauses: Vec<&str> = Vec::new();
        if query.trace_id.is_some() {
            clauses.push("trace_id = ?");
        }
        if query.prompt.is_some() {
            clauses.push("prompt = ?");
        }
        if query.prompt_version.is_some() {
            clauses.push("prompt_version = ?");
        }
        if query.from_s.is_some() {
            clauses.push("created_s >= ?");
        }
        if query.to_s.is_some() {
            clauses.push("created_s < ?");
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let sql = format!(
            "SELECT {} FROM signal_scores{filter} ORDER BY created_s DESC, id DESC LIMIT ?",
            ScoreRecord::COLUMNS
        );
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut q = sqlx::query_as::<_, ScoreRecord>(&sql);
            for value in [&query.trace_id, &query.prompt, &query.prompt_version].into_iter().flatten() {
                q = q.bind(value.as_str());
            }
            for value in [query.from_s, query.to_s].into_iter().flatten() {
                q = q.bind(value);
            }
            let rows = q.bind(limit_or_all(query.limit)).fetch_all(pool).await?;
            Ok(rows.into_iter().map(ScoreRow::from).collect())
        })
    }

    /// Creates or replaces an alert rule (its JSON body); `now_s` becomes
    /// its update time, and its creation time when new. Bumps the rules'
    /// cache revision in the same transaction.
    pub async fn put_alert_rule(&self, id: &str, body: &str, now_s: i64) -> Result<(), StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(&d.sql(
                "INSERT INTO alert_rules (id, body, created_s, updated_s) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_s = excluded.updated_s",
            ))
            .bind(id)
            .bind(body)
            .bind(now_s)
            .bind(now_s)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::AlertRules.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every alert rule as (id, body), ordered by id.
    pub async fn list_alert_rules(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = format!("SELECT {} FROM alert_rules", AlertRuleRecord::COLUMNS);
        let rows: Vec<AlertRuleRecord> = on_pool!(self, pool, _d => sqlx::query_as(&sql).fetch_all(pool).await?);
        let mut rules: Vec<(String, String)> = rows.into_iter().map(|r| (r.id, r.body)).collect();
        // Byte order on both backends (PostgreSQL would use its collation).
        rules.sort();
        Ok(rules)
    }

    /// Deletes an alert rule; `false` when there was none.
    pub async fn delete_alert_rule(&self, id: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = sqlx::query(&d.sql("DELETE FROM alert_rules WHERE id = ?")).bind(id).execute(&mut *tx).await?;
            if done.rows_affected() > 0 {
                sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::AlertRules.as_str()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Appends to the alert event log; returns the new event's id.
    pub async fn append_alert_event(
        &self,
        rule_id: &str,
        at_s: i64,
        state: &str,
        body: &str,
    ) -> Result<i64, StoreError> {
        on_pool!(self, pool, d => {
            let sql = d.sql("INSERT INTO alert_events (rule_id, at_s, state, body) VALUES (?, ?, ?, ?) RETURNING id");
            Ok(sqlx::query_scalar(&sql).bind(rule_id).bind(at_s).bind(state).bind(body).fetch_one(pool).await?)
        })
    }

    /// Alert events, of one rule or all, newest first. A non-positive
    /// `limit` means no limit.
    pub async fn alert_events(&self, rule_id: Option<&str>, limit: i64) -> Result<Vec<AlertEventRow>, StoreError> {
        let filter = if rule_id.is_some() { " WHERE rule_id = ?" } else { "" };
        let sql = format!("SELECT {} FROM alert_events{filter} ORDER BY id DESC LIMIT ?", AlertEventRecord::COLUMNS);
        on_pool!(self, pool, d => {
            let sql = d.sql(&sql);
            let mut q = sqlx::query_as::<_, AlertEventRecord>(&sql);
            if let Some(rule_id) = rule_id {
                q = q.bind(rule_id);
            }
            let rows = q.bind(limit_or_all(limit)).fetch_all(pool).await?;
            Ok(rows.into_iter().map(AlertEventRow::from).collect())
        })
    }

    /// Creates or replaces the state of a rule, unconditionally (its
    /// revision grows). Evaluations use [`Store::transition_alert`].
    pub async fn set_alert_state(&self, row: &AlertStateRow) -> Result<(), StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            sqlx::query(&d.sql(
                "INSERT INTO alert_states (rule_id, state, since_s, body, revision) VALUES (?, ?, ?, ?, 1) \
                 ON CONFLICT (rule_id) DO UPDATE SET state = excluded.state, since_s = excluded.since_s, \
                 body = excluded.body, revision = alert_states.revision + 1",
            ))
            .bind(&row.rule_id)
            .bind(&row.state)
            .bind(row.since_s)
            .bind(&row.body)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::AlertStates.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The state of every rule that has one, with its revision, ordered by
    /// rule id.
    pub async fn versioned_alert_states(&self) -> Result<Vec<VersionedAlertState>, StoreError> {
        let sql = format!("SELECT {} FROM alert_states", VersionedAlertStateRecord::COLUMNS);
        let rows: Vec<VersionedAlertStateRecord> =
            on_pool!(self, pool, _d => sqlx::query_as(&sql).fetch_all(pool).await?);
        let mut states: Vec<VersionedAlertState> = rows
            .into_iter()
            .map(|r| VersionedAlertState {
                row: AlertStateRow { rule_id: r.rule_id, state: r.state, since_s: r.since_s, body: r.body },
                revision: r.revision,
            })
            .collect();
        states.sort_by(|a, b| a.row.rule_id.cmp(&b.row.rule_id));
        Ok(states)
    }

    /// Stores a rule's new state only if its stored revision is still the
    /// one the evaluation read (no row, for `from_revision: None`) and, with
    /// a `fence`, only while that lease term is current; appends the event
    /// (delivery pending when the rule has a webhook) in the same
    /// transaction. `None` when the condition failed: another evaluation
    /// stored a transition first, or the lease was lost; nothing is written
    /// then, so each transition is stored exactly once.
    pub async fn transition_alert(
        &self,
        transition: &AlertTransition,
        fence: Option<&Fence>,
    ) -> Result<Option<TransitionApplied>, StoreError> {
        let condition = if fence.is_some() { FENCE } else { "1 = 1" };
        let row = &transition.state;
        let write = match transition.from_revision {
            None => format!(
                "INSERT INTO alert_states (rule_id, state, since_s, body, revision) SELECT ?, ?, ?, ?, 1 \
                 WHERE {condition} ON CONFLICT (rule_id) DO NOTHING RETURNING revision"
            ),
            Some(_) => format!(
                "UPDATE alert_states SET state = ?, since_s = ?, body = ?, revision = revision + 1 \
                 WHERE rule_id = ? AND revision = ? AND {condition} RETURNING revision"
            ),
        };
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let sql = with_now(d, &write);
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            query = match transition.from_revision {
                None => query.bind(&row.rule_id).bind(&row.state).bind(row.since_s).bind(&row.body),
                Some(revision) => {
                    query.bind(&row.state).bind(row.since_s).bind(&row.body).bind(&row.rule_id).bind(revision)
                }
            };
            if let Some(fence) = fence {
                query = query.bind(&fence.name).bind(&fence.holder).bind(fence.epoch);
            }
            let Some(revision) = query.fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let mut event_id = None;
            if let Some(event) = &transition.event {
                let sql = d.sql(
                    "INSERT INTO alert_events (rule_id, at_s, state, body, delivery) VALUES (?, ?, ?, ?, ?) RETURNING id",
                );
                let id: i64 = sqlx::query_scalar(&sql)
                    .bind(&row.rule_id)
                    .bind(event.at_s)
                    .bind(&event.state)
                    .bind(&event.body)
                    .bind(event.webhook.then_some("pending"))
                    .fetch_one(&mut *tx)
                    .await?;
                event_id = Some(id);
            }
            sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::AlertStates.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(TransitionApplied { revision, event_id }))
        })
    }

    /// Events whose webhook delivery is still pending and that were recorded
    /// at or before `at_or_before_s`, oldest first, at most `limit`.
    pub async fn pending_alert_deliveries(
        &self,
        at_or_before_s: i64,
        limit: i64,
    ) -> Result<Vec<AlertEventRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM alert_events WHERE delivery = 'pending' AND at_s <= ? ORDER BY id LIMIT ?",
            AlertEventRecord::COLUMNS
        );
        on_pool!(self, pool, d => {
            let rows: Vec<AlertEventRecord> =
                sqlx::query_as(&d.sql(&sql)).bind(at_or_before_s).bind(limit_or_all(limit)).fetch_all(pool).await?;
            Ok(rows.into_iter().map(AlertEventRow::from).collect())
        })
    }

    /// Records how a pending delivery went (`body`: the event with the
    /// outcome) and marks it done. `false` when it was not pending (another
    /// replica finished it).
    pub async fn finish_alert_delivery(&self, id: i64, body: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool, d => {
            let done = sqlx::query(&d.sql(
                "UPDATE alert_events SET body = ?, delivery = 'done' WHERE id = ? AND delivery = 'pending'",
            ))
            .bind(body)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The state of every rule that has one, ordered by rule id.
    pub async fn alert_states(&self) -> Result<Vec<AlertStateRow>, StoreError> {
        let sql = format!("SELECT {} FROM alert_states", AlertStateRecord::COLUMNS);
        let rows: Vec<AlertStateRecord> = on_pool!(self, pool, _d => sqlx::query_as(&sql).fetch_all(pool).await?);
        let mut states: Vec<AlertStateRow> = rows.into_iter().map(AlertStateRow::from).collect();
        states.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        Ok(states)
    }

    /// Forgets the state of a rule (nothing happens when it has none).
    pub async fn delete_alert_state(&self, rule_id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool, d => {
            let mut tx = pool.begin_with(d.begin_write()).await?;
            let done = sqlx::query(&d.sql("DELETE FROM alert_states WHERE rule_id = ?"))
                .bind(rule_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() > 0 {
                sqlx::query(&d.sql(BUMP_REVISION)).bind(Cached::AlertStates.as_str()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{merge_groups, Resolution, RollupKey, RollupRow};

    #[test]
    fn resolution_tables_and_widths() {
        assert_eq!((Resolution::Minute.table(), Resolution::Minute.seconds()), ("signal_rollups_minute", 60));
        assert_eq!((Resolution::Hour.table(), Resolution::Hour.seconds()), ("signal_rollups_hour", 3600));
    }

    #[test]
    fn lone_rows_are_returned_unmerged() {
        let key = RollupKey { service: "a".into(), ..RollupKey::default() };
        let row = |bucket, requests| RollupRow { bucket, key: key.clone(), requests, ..RollupRow::default() };
        let merge =
            |rows: Vec<RollupRow>| RollupRow { requests: rows.iter().map(|r| r.requests).sum(), ..rows[0].clone() };
        let (rows, merged) = merge_groups(vec![row(60, 1), row(0, 2), row(60, 3)], &merge);
        assert_eq!(merged, 1);
        assert_eq!(rows, vec![row(0, 2), row(60, 4)]);
    }
}
