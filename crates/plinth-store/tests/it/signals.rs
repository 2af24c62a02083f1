//! Signal persistence (spans, rollups, scores, alerting); every scenario
//! runs on SQLite and PostgreSQL.

use std::time::Instant;

use plinth_store::{
    AlertStateRow, Resolution, RollupKey, RollupQuery, RollupRow, ScoreQuery, ScoreRow, SpanBody, SpanQuery, SpanRow,
    Store,
};
use plinth_testkit::{scenarios, Backend};

use crate::common::{raw, Harness};

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "signals";

scenarios!(
    ingest_round_trips_spans_and_rollups,
    duplicates_are_stored_once_and_masked,
    failed_batch_writes_nothing,
    rollup_query_filters_and_bounds,
    compaction_merges_partials,
    dirty_compaction_takes_only_new_buckets,
    a_batch_appends_one_day_row_per_day_and_key,
    concurrent_compactions_merge_each_row_once,
    concurrent_dirty_compactions_merge_each_row_once,
    concurrent_overlapping_batches_store_each_span_once,
    retried_exports_store_each_span_once,
    trace_and_span_queries,
    span_query_limit_keeps_the_newest_across_segments,
    rows_of_the_former_span_table_move_into_segments,
    segments_stored_as_plain_json_read_after_migration_10,
    purge_applies_retention,
    scores_insert_and_query,
    alert_rules_events_and_states,
    ingest_50k_spans_timing,
    version_3_database_migrates_to_4,
);

// ---------------------------------------------------------------- helpers --

fn trace_id(n: u64) -> String {
    format!("{n:032x}")
}

/// A span body from JSON text (which the tests write valid).
fn body(json: impl Into<String>) -> SpanBody {
    SpanBody::parse(json.into()).expect("a test body is JSON")
}

fn span_id(n: u64) -> String {
    format!("{n:016x}")
}

/// A kept GenAI span of trace `t`, span `s`, starting at `start_ns`.
fn span(t: u64, s: u64, start_ns: i64) -> SpanRow {
    SpanRow {
        trace_id: trace_id(t),
        span_id: span_id(s),
        parent_span_id: String::new(),
        start_ns,
        end_ns: start_ns + 1_000,
        received_s: 1_000,
        service: "checkout".to_string(),
        name: "chat gpt-4o".to_string(),
        operation: "chat".to_string(),
        model: "gpt-4o".to_string(),
        prompt: "greeting".to_string(),
        prompt_version: "3".to_string(),
        agent: "helper".to_string(),
        data_source: String::new(),
        body: Some(body(format!(r#"{{"name":"chat","trace":"{t}","span":{s},"text":"héllo ✓"}}"#))),
    }
}

fn key(service: &str, team: &str, model: &str) -> RollupKey {
    RollupKey {
        service: service.to_string(),
        team: team.to_string(),
        model: model.to_string(),
        operation: "chat".to_string(),
        ..RollupKey::default()
    }
}

fn rollup(bucket: i64, key: &RollupKey, requests: i64, sketch: &[u8]) -> RollupRow {
    RollupRow {
        bucket,
        key: key.clone(),
        requests,
        errors: requests / 2,
        input_tokens: 10 * requests,
        output_tokens: 20 * requests,
        cache_read_tokens: 3,
        cache_write_tokens: 4,
        reasoning_tokens: 5,
        tool_calls: 6,
        cost_usd: 0.1 * requests as f64,
        duration_sketch: sketch.to_vec(),
        ttft_sketch: sketch.iter().rev().copied().collect(),
    }
}

/// Sums every counter and concatenates the sketches, in the given order.
fn sum_rows(rows: Vec<RollupRow>) -> RollupRow {
    let mut out = RollupRow { bucket: rows[0].bucket, key: rows[0].key.clone(), ..RollupRow::default() };
    for r in rows {
        out.requests += r.requests;
        out.errors += r.errors;
        out.input_tokens += r.input_tokens;
        out.output_tokens += r.output_tokens;
        out.cache_read_tokens += r.cache_read_tokens;
        out.cache_write_tokens += r.cache_write_tokens;
        out.reasoning_tokens += r.reasoning_tokens;
        out.tool_calls += r.tool_calls;
        out.cost_usd += r.cost_usd;
        out.duration_sketch.extend(r.duration_sketch);
        out.ttft_sketch.extend(r.ttft_sketch);
    }
    out
}

/// A batch's hour rows become day rows merged per (day, key) at ingest,
/// so a backfill of many hours appends one day row per day and key, not
/// one per hour, and a summary over days reads that before compaction.
async fn a_batch_appends_one_day_row_per_day_and_key(backend: Backend) {
    use plinth_telemetry::rollup::Sketch;
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let (a, b) = (key("checkout", "pay", "gpt-4o"), key("search", "find", "claude"));
    let hour = |bucket: i64, key: &RollupKey, ms: f64| {
        let mut sketch = Sketch::default();
        sketch.add(ms);
        RollupRow { duration_sketch: sketch.to_bytes(), ..rollup(bucket, key, 1, &[]) }
    };
    let hours = vec![
        hour(0, &a, 10.0),
        hour(3_600, &a, 20.0),
        hour(82_800, &a, 30.0),
        hour(86_400, &a, 40.0),
        hour(7_200, &b, 50.0),
    ];
    ingest_rollups(&h.store, vec![], hours).await;
    let days = h.store.rollups(Resolution::Day, &all(0, 2 * 86_400)).await.unwrap();
    let summary: Vec<(i64, &str, i64, usize)> = days
        .iter()
        .map(|r| (r.bucket, r.key.service.as_str(), r.requests, Sketch::from_bytes(&r.duration_sketch).count()))
        .collect();
    assert_eq!(summary, [(0, "checkout", 3, 3), (0, "search", 1, 1), (86_400, "checkout", 1, 1)]);
    let day0 = Sketch::from_bytes(&days[0].duration_sketch);
    assert!((day0.quantile(1.0).unwrap() - 30.0).abs() < 0.5, "{day0:?}");
    assert!((days[0].cost_usd - 0.3).abs() < 1e-9);
    // The hour table keeps its five rows.
    assert_eq!(h.store.rollups(Resolution::Hour, &all(0, 2 * 86_400)).await.unwrap().len(), 5);
}

async fn ingest_rollups(store: &Store, minute: Vec<RollupRow>, hour: Vec<RollupRow>) {
    store.ingest_signals(&[], move |_| (minute, hour)).await.unwrap();
}

fn all(from_s: i64, to_s: i64) -> RollupQuery {
    RollupQuery { from_s, to_s, ..RollupQuery::default() }
}

async fn count_spans(store: &Store) -> usize {
    store.query_spans(&SpanQuery { from_ns: i64::MIN, to_ns: i64::MAX, ..SpanQuery::default() }).await.unwrap().len()
}

fn score(id: &str, created_s: i64, trace: Option<&str>, prompt: Option<(&str, &str)>) -> ScoreRow {
    ScoreRow {
        id: id.to_string(),
        created_s,
        trace_id: trace.map(str::to_string),
        span_id: trace.map(|_| span_id(1)),
        prompt: prompt.map(|p| p.0.to_string()),
        prompt_version: prompt.map(|p| p.1.to_string()),
        name: "helpfulness".to_string(),
        data_type: "numeric".to_string(),
        value_num: Some(0.1 + 0.2),
        value_str: None,
        source: "api".to_string(),
        comment: Some("good".to_string()),
    }
}

// ------------------------------------------------------------------ tests --

async fn ingest_round_trips_spans_and_rollups(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let root = span(1, 1, 100);
    let child = SpanRow {
        parent_span_id: span_id(1),
        start_ns: 150,
        operation: String::new(),
        data_source: "orders-db".to_string(),
        body: None,
        ..span(1, 2, 150)
    };
    let minute = vec![rollup(60, &key("checkout", "pay", "gpt-4o"), 2, &[0, 1, 2, 255])];
    let hour = vec![rollup(0, &key("checkout", "pay", "gpt-4o"), 2, &[])];
    let (m, hr) = (minute.clone(), hour.clone());
    let mut seen = None;
    let outcome = h
        .store
        .ingest_signals(&[root.clone(), child.clone()], |mask| {
            seen = Some(mask.to_vec());
            (m, hr)
        })
        .await
        .unwrap();
    assert_eq!(seen, Some(vec![true, true]));
    assert_eq!((outcome.inserted, outcome.duplicates), (2, 0));

    assert_eq!(h.store.trace_spans(&trace_id(1)).await.unwrap(), vec![root, child]);
    assert!(h.store.trace_spans(&trace_id(2)).await.unwrap().is_empty());
    // f64 and bytes survive exactly.
    assert_eq!(h.store.rollups(Resolution::Minute, &all(0, 3600)).await.unwrap(), minute);
    assert_eq!(h.store.rollups(Resolution::Hour, &all(0, 3600)).await.unwrap(), hour);

    // An empty batch with no rollups is fine and writes nothing.
    let outcome = h.store.ingest_signals(&[], |mask| (assert!(mask.is_empty()), (vec![], vec![])).1).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 0));
}

async fn duplicates_are_stored_once_and_masked(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let first = span(1, 1, 100);
    let again = SpanRow { name: "second copy".to_string(), ..first.clone() };
    let mut masks = Vec::new();
    let outcome = h
        .store
        .ingest_signals(&[first.clone(), span(1, 2, 200), again.clone(), span(2, 1, 300)], |mask| {
            masks.push(mask.to_vec());
            (vec![], vec![])
        })
        .await
        .unwrap();
    assert_eq!(masks[0], [true, true, false, true], "the first occurrence wins");
    assert_eq!((outcome.inserted, outcome.duplicates), (3, 1));
    assert_eq!(h.store.trace_spans(&trace_id(1)).await.unwrap()[0], first);

    // Across calls: only the new span is stored and reported.
    let outcome = h
        .store
        .ingest_signals(&[span(3, 1, 400), again, span(1, 2, 200), span(3, 1, 400)], |mask| {
            masks.push(mask.to_vec());
            (vec![], vec![])
        })
        .await
        .unwrap();
    assert_eq!(masks[1], [true, false, false, false]);
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 3));
    assert_eq!(count_spans(&h.store).await, 4);
    assert_eq!(h.store.trace_spans(&trace_id(1)).await.unwrap()[0].name, "chat gpt-4o");
}

async fn failed_batch_writes_nothing(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.ingest_signals(&[span(1, 1, 100)], |_| (vec![], vec![])).await.unwrap();

    // The rollup closure runs after the spans were inserted in the
    // transaction: if it panics, none of them may stay.
    let store = h.store.clone();
    let panicked = tokio::spawn(async move {
        store
            .ingest_signals(&[span(2, 1, 100), span(2, 2, 100)], |_| -> (Vec<RollupRow>, Vec<RollupRow>) {
                panic!("rollup closure failed")
            })
            .await
    })
    .await;
    assert!(panicked.is_err());
    assert!(h.store.trace_spans(&trace_id(2)).await.unwrap().is_empty(), "spans rolled back");

    if matches!(h.store.backend(), plinth_store::Backend::Postgres) {
        // A failing statement after the span insert: PostgreSQL rejects NUL
        // in text, so the hour rollup fails and the spans and the minute
        // rollup go with it.
        let k = key("a", "t", "m");
        let bad = RollupRow { key: key("a\0b", "t", "m"), ..rollup(0, &k, 1, &[1]) };
        let result = h.store.ingest_signals(&[span(3, 1, 100)], |_| (vec![rollup(60, &k, 1, &[1])], vec![bad])).await;
        assert!(result.is_err());
        assert!(h.store.trace_spans(&trace_id(3)).await.unwrap().is_empty(), "spans rolled back");
        assert!(h.store.rollups(Resolution::Minute, &all(0, 3600)).await.unwrap().is_empty(), "rollups rolled back");
    }

    // A rolled-back batch counts as new when retried.
    let outcome = h.store.ingest_signals(&[span(2, 1, 100), span(3, 1, 100)], |_| (vec![], vec![])).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (2, 0));
    assert_eq!(count_spans(&h.store).await, 3);
}

async fn rollup_query_filters_and_bounds(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let a = key("checkout", "pay", "gpt-4o");
    let b = key("search", "find", "claude");
    let c = RollupKey {
        prompt: "greeting".into(),
        prompt_version: "2".into(),
        agent: "bot".into(),
        ..key("search", "find", "gpt-4o")
    };
    ingest_rollups(
        &h.store,
        vec![rollup(0, &a, 1, &[1]), rollup(60, &a, 2, &[2]), rollup(60, &b, 3, &[3]), rollup(120, &c, 4, &[4])],
        vec![rollup(0, &a, 3, &[9])],
    )
    .await;
    ingest_rollups(&h.store, vec![rollup(60, &a, 5, &[5])], vec![]).await;

    let requests = |rows: Vec<RollupRow>| rows.iter().map(|r| (r.bucket, r.requests)).collect::<Vec<_>>();
    let q = |f: fn(&mut RollupQuery)| {
        let mut q = all(0, 180);
        f(&mut q);
        q
    };
    let minute = |q: RollupQuery| {
        let store = h.store.clone();
        async move { requests(store.rollups(Resolution::Minute, &q).await.unwrap()) }
    };
    // Partials are returned unmerged; ordered by bucket then key.
    let everything = minute(all(0, 180)).await;
    assert_eq!(everything.len(), 5);
    assert_eq!(everything[0], (0, 1));
    assert_eq!(everything[4], (120, 4));
    // [from, to): 60 is in, 120 is out.
    let mut mid = minute(all(60, 120)).await;
    mid.sort();
    assert_eq!(mid, [(60, 2), (60, 3), (60, 5)]);
    assert!(minute(all(180, 240)).await.is_empty());
    let mut checkout = minute(q(|q| q.service = Some("checkout".into()))).await;
    checkout.sort();
    assert_eq!(checkout, [(0, 1), (60, 2), (60, 5)]);
    assert_eq!(minute(q(|q| q.team = Some("find".into()))).await, [(60, 3), (120, 4)]);
    assert_eq!(minute(q(|q| q.model = Some("claude".into()))).await, [(60, 3)]);
    assert_eq!(minute(q(|q| q.prompt = Some("greeting".into()))).await, [(120, 4)]);
    assert_eq!(minute(q(|q| q.prompt_version = Some("2".into()))).await, [(120, 4)]);
    assert_eq!(minute(q(|q| q.agent = Some("bot".into()))).await, [(120, 4)]);
    assert_eq!(minute(q(|q| q.component = Some(String::new()))).await.len(), 5);
    assert_eq!(minute(q(|q| q.operation = Some("embed".into()))).await, []);
    assert_eq!(
        minute(q(|q| {
            q.service = Some("search".into());
            q.model = Some("gpt-4o".into());
        }))
        .await,
        [(120, 4)]
    );
    assert_eq!(requests(h.store.rollups(Resolution::Hour, &all(0, 3600)).await.unwrap()), [(0, 3)]);
}

async fn compaction_merges_partials(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let a = key("checkout", "pay", "gpt-4o");
    let b = key("search", "find", "claude");
    // Three batches: bucket 0 gets 3 partials of a and 1 of b; bucket 60
    // gets 2 of a; bucket 120 (not before the cut) gets 2 of a.
    ingest_rollups(&h.store, vec![rollup(0, &a, 1, &[1]), rollup(0, &b, 7, &[7]), rollup(60, &a, 1, &[6])], vec![])
        .await;
    ingest_rollups(&h.store, vec![rollup(0, &a, 2, &[2]), rollup(60, &a, 2, &[6]), rollup(120, &a, 1, &[8])], vec![])
        .await;
    ingest_rollups(&h.store, vec![rollup(0, &a, 3, &[3]), rollup(120, &a, 1, &[8])], vec![]).await;

    // At most one group per call.
    assert_eq!(h.store.compact_rollups(Resolution::Minute, 120, 1, sum_rows).await.unwrap(), 1);
    assert_eq!(h.store.compact_rollups(Resolution::Minute, 120, 10, sum_rows).await.unwrap(), 1);
    assert_eq!(h.store.compact_rollups(Resolution::Minute, 120, 10, sum_rows).await.unwrap(), 0);
    assert_eq!(h.store.compact_rollups(Resolution::Minute, 120, 0, sum_rows).await.unwrap(), 0);

    let rows = h.store.rollups(Resolution::Minute, &all(0, 180)).await.unwrap();
    let of = |bucket: i64, k: &RollupKey| rows.iter().filter(|r| r.bucket == bucket && &r.key == k).collect::<Vec<_>>();
    let merged = of(0, &a);
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].requests, 6);
    assert_eq!(merged[0].input_tokens, 60);
    assert_eq!(merged[0].tool_calls, 18);
    assert!((merged[0].cost_usd - 0.6).abs() < 1e-9);
    let mut sketch = merged[0].duration_sketch.clone();
    sketch.sort();
    assert_eq!(sketch, [1, 2, 3], "every partial's sketch was merged once");
    assert_eq!(of(0, &b).len(), 1, "a lone row is left alone");
    assert_eq!(of(0, &b)[0].requests, 7);
    let sixty = of(60, &a);
    assert_eq!((sixty.len(), sixty[0].requests, sixty[0].duration_sketch.clone()), (1, 3, vec![6, 6]));
    assert_eq!(of(120, &a).len(), 2, "buckets at or after the cut are not compacted");
    assert_eq!(rows.len(), 5);
    // The hour table is separate.
    assert!(h.store.rollups(Resolution::Hour, &all(0, 3600)).await.unwrap().is_empty());
    assert_eq!(h.store.compact_rollups(Resolution::Hour, 7200, 10, sum_rows).await.unwrap(), 0);
}

/// Each tick's compaction reads only the buckets that received rows since
/// the last one (their dirty markers), finishes what a small budget left
/// for the next call, and leaves rows without a marker to the full sweep.
async fn dirty_compaction_takes_only_new_buckets(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let a = key("checkout", "pay", "gpt-4o");
    let b = key("search", "find", "claude");
    let minute = |h: &Harness| {
        let store = h.store.clone();
        async move { store.rollups(Resolution::Minute, &all(0, 100_000)).await.unwrap() }
    };
    ingest_rollups(&h.store, vec![rollup(0, &a, 1, &[1]), rollup(0, &b, 7, &[7]), rollup(60, &a, 1, &[6])], vec![])
        .await;
    ingest_rollups(&h.store, vec![rollup(0, &a, 2, &[2]), rollup(60, &a, 2, &[6]), rollup(120, &a, 1, &[8])], vec![])
        .await;
    ingest_rollups(&h.store, vec![rollup(0, &a, 3, &[3]), rollup(120, &a, 1, &[8])], vec![]).await;

    // A budget of one group per call: the buckets are finished in order,
    // and the unfinished ones stay marked.
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 1, sum_rows).await.unwrap(), 1);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 1, sum_rows).await.unwrap(), 1);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 1, sum_rows).await.unwrap(), 1);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 1, sum_rows).await.unwrap(), 0);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 0, sum_rows).await.unwrap(), 0);
    let rows = minute(&h).await;
    assert_eq!(rows.len(), 4, "one row per (bucket, key): {rows:?}");
    let of = |bucket: i64, k: &RollupKey| rows.iter().find(|r| r.bucket == bucket && &r.key == k).unwrap().clone();
    assert_eq!(of(0, &a).requests, 6);
    let mut sketch = of(0, &a).duration_sketch;
    sketch.sort();
    assert_eq!(sketch, [1, 2, 3], "every partial's sketch was merged once");
    assert_eq!((of(0, &b).requests, of(60, &a).requests, of(120, &a).requests), (7, 3, 2));
    // Nothing new: nothing to do, and no marker left behind.
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 10, sum_rows).await.unwrap(), 0);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Hour, 10, sum_rows).await.unwrap(), 0);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Day, 10, sum_rows).await.unwrap(), 0);

    // New rows in bucket 60 only: the next call merges that group, and the
    // hour and day tables get their own markers.
    ingest_rollups(&h.store, vec![rollup(60, &a, 4, &[9])], vec![rollup(0, &a, 1, &[1])]).await;
    ingest_rollups(&h.store, vec![], vec![rollup(0, &a, 2, &[2])]).await;
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 10, sum_rows).await.unwrap(), 1);
    assert_eq!(minute(&h).await.iter().find(|r| r.bucket == 60).unwrap().requests, 7);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Hour, 10, sum_rows).await.unwrap(), 1);
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Day, 10, sum_rows).await.unwrap(), 1);
    let day = h.store.rollups(Resolution::Day, &all(0, 86_400)).await.unwrap();
    assert_eq!(day.iter().map(|r| (r.bucket, r.requests)).collect::<Vec<_>>(), [(0, 3)]);

    // Partials whose marker was lost (a crash between the ingest's commit
    // and the marker) are not seen by the tick, and the full sweep takes
    // them.
    ingest_rollups(&h.store, vec![rollup(180, &a, 1, &[1])], vec![]).await;
    ingest_rollups(&h.store, vec![rollup(180, &a, 1, &[1])], vec![]).await;
    raw(&h.config, "DELETE FROM signal_rollup_dirty").await;
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 10, sum_rows).await.unwrap(), 0);
    assert_eq!(h.store.compact_rollups(Resolution::Minute, 100_000, 10, sum_rows).await.unwrap(), 1);
    assert_eq!(minute(&h).await.len(), 5);

    // Retention drops markers with the rows they point at.
    ingest_rollups(&h.store, vec![rollup(240, &a, 1, &[1]), rollup(240, &a, 1, &[1])], vec![]).await;
    h.store.purge_signals(0, 0, 300).await.unwrap();
    assert_eq!(h.store.compact_dirty_rollups(Resolution::Minute, 10, sum_rows).await.unwrap(), 0);
    assert!(minute(&h).await.is_empty());
}

/// Several replicas compacting the same table at once: every partial ends
/// up in exactly one merged row.
async fn concurrent_compactions_merge_each_row_once(backend: Backend) {
    concurrent_compactions(backend, false).await;
}

/// The same, through the dirty markers (a leader's tick overlapping the
/// next leader's after a failover): no row merged twice, none left.
async fn concurrent_dirty_compactions_merge_each_row_once(backend: Backend) {
    concurrent_compactions(backend, true).await;
}

async fn concurrent_compactions(backend: Backend, dirty: bool) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let keys: Vec<RollupKey> = (0..20).map(|i| key(&format!("svc{i}"), "team", "model")).collect();
    for batch in 1..=3 {
        let rows = keys.iter().flat_map(|k| (0..5).map(move |b| rollup(b * 60, k, batch, &[batch as u8]))).collect();
        ingest_rollups(&h.store, rows, vec![]).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut merged = 0;
            loop {
                let round = match dirty {
                    true => store.compact_dirty_rollups(Resolution::Minute, 7, sum_rows).await,
                    false => store.compact_rollups(Resolution::Minute, 300, 7, sum_rows).await,
                };
                match round.unwrap() {
                    0 => return merged,
                    n => merged += n,
                }
            }
        }));
    }
    let mut merged = 0;
    for task in tasks {
        merged += task.await.unwrap();
    }
    assert_eq!(merged, 100, "each of the 100 groups merged once");
    let rows = h.store.rollups(Resolution::Minute, &all(0, 300)).await.unwrap();
    assert_eq!(rows.len(), 100);
    for row in rows {
        assert_eq!(row.requests, 6, "{row:?}");
        let mut sketch = row.duration_sketch.clone();
        sketch.sort();
        assert_eq!(sketch, [1, 2, 3]);
    }
}

/// Concurrent batches with overlapping spans, in different orders: each
/// span is reported as inserted by exactly one of them (and no deadlock).
async fn concurrent_overlapping_batches_store_each_span_once(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let store = h.store.clone();
        let mut spans: Vec<SpanRow> = (0..2_000u64).map(|i| span(i % 50, i + t * 500, 0)).collect();
        if t % 2 == 1 {
            spans.reverse();
        }
        tasks.push(tokio::spawn(
            async move { store.ingest_signals(&spans, |_| (vec![], vec![])).await.unwrap().inserted },
        ));
    }
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.unwrap();
    }
    // Span ids 0..3500 (batch t covers t*500 .. t*500+2000).
    assert_eq!(inserted, 3_500);
    assert_eq!(count_spans(&h.store).await, 3_500);
}

/// An export of a Collector's size (1,998 spans, six per trace), retried
/// whole and then again with new spans mixed in: every span is stored once,
/// the mask names exactly the new ones (also in statement chunks that hold
/// both), and each trace reads back whole.
async fn retried_exports_store_each_span_once(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let export = |traces: std::ops::Range<u64>| -> Vec<SpanRow> {
        traces
            .flat_map(|t| {
                (0..6u64).map(move |s| SpanRow {
                    parent_span_id: if s == 0 { String::new() } else { span_id(t * 8) },
                    ..span(t, t * 8 + s, (t * 1_000 + (5 - s) * 10) as i64)
                })
            })
            .collect()
    };
    let first = export(0..333);
    let ingest = |spans: Vec<SpanRow>| {
        let store = h.store.clone();
        async move {
            let mut mask = Vec::new();
            let outcome = store
                .ingest_signals(&spans, |m| {
                    mask = m.to_vec();
                    (vec![], vec![])
                })
                .await
                .unwrap();
            (outcome, mask)
        }
    };
    let (outcome, mask) = ingest(first.clone()).await;
    assert_eq!((outcome.inserted, outcome.duplicates), (1_998, 0));
    assert!(mask.iter().all(|&m| m));

    // The sender retries the acknowledged export: nothing is stored again.
    let (outcome, mask) = ingest(first.clone()).await;
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 1_998));
    assert!(mask.iter().all(|&m| !m));
    assert_eq!(count_spans(&h.store).await, 1_998);

    // Half of it again, then 250 new traces (1,500 spans).
    let mut mixed = first[..999].to_vec();
    mixed.extend(export(333..583));
    let (outcome, mask) = ingest(mixed.clone()).await;
    assert_eq!((outcome.inserted, outcome.duplicates), (1_500, 999));
    let expected: Vec<bool> = (0..mixed.len()).map(|i| i >= 999).collect();
    assert_eq!(mask, expected);
    assert_eq!(count_spans(&h.store).await, 3_498);

    // A trace reads back whole, ordered by start time.
    for t in [0u64, 166, 332, 333, 582] {
        let mut spans = export(t..t + 1);
        spans.sort_by_key(|s| s.start_ns);
        assert_eq!(h.store.trace_spans(&trace_id(t)).await.unwrap(), spans, "trace {t}");
    }
}

async fn trace_and_span_queries(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let root1 = span(1, 1, 1_000);
    let child1 = SpanRow { parent_span_id: span_id(1), operation: String::new(), ..span(1, 2, 1_100) };
    let db1 = SpanRow {
        parent_span_id: span_id(2),
        data_source: "orders-db".into(),
        body: None,
        operation: String::new(),
        ..span(1, 3, 1_050)
    };
    let root2 = SpanRow { service: "search".into(), agent: "finder".into(), ..span(2, 1, 2_000) };
    let root3_keyonly = SpanRow { body: None, ..span(3, 1, 3_000) };
    let root4 = SpanRow { prompt: "farewell".into(), ..span(4, 1, 4_000) };
    let batch = [root1.clone(), child1.clone(), db1.clone(), root2.clone(), root3_keyonly.clone(), root4.clone()];
    h.store.ingest_signals(&batch, |_| (vec![], vec![])).await.unwrap();

    assert_eq!(h.store.trace_spans(&trace_id(1)).await.unwrap(), vec![root1.clone(), db1.clone(), child1.clone()]);

    let ids = |rows: Vec<SpanRow>| rows.into_iter().map(|r| (r.trace_id, r.span_id)).collect::<Vec<_>>();
    let key = |s: &SpanRow| (s.trace_id.clone(), s.span_id.clone());
    let range = |from_ns, to_ns| SpanQuery { from_ns, to_ns, ..SpanQuery::default() };
    let q = |q: SpanQuery| {
        let store = h.store.clone();
        async move { ids(store.query_spans(&q).await.unwrap()) }
    };
    assert_eq!(
        q(range(0, 10_000)).await,
        [key(&root4), key(&root3_keyonly), key(&root2), key(&child1), key(&db1), key(&root1)],
        "newest first"
    );
    assert_eq!(q(range(1_000, 2_000)).await, [key(&child1), key(&db1), key(&root1)], "[from, to)");
    assert_eq!(q(SpanQuery { limit: 2, ..range(0, 10_000) }).await, [key(&root4), key(&root3_keyonly)]);
    assert_eq!(q(SpanQuery { operation: Some("chat".into()), ..range(0, 10_000) }).await.len(), 4);
    assert_eq!(q(SpanQuery { service: Some("search".into()), ..range(0, 10_000) }).await, [key(&root2)]);
    assert_eq!(q(SpanQuery { prompt: Some("farewell".into()), ..range(0, 10_000) }).await, [key(&root4)]);
    assert_eq!(q(SpanQuery { agent: Some("finder".into()), ..range(0, 10_000) }).await, [key(&root2)]);
    assert_eq!(q(SpanQuery { data_source_set: true, ..range(0, 10_000) }).await, [key(&db1)]);
    assert_eq!(q(SpanQuery { only_kept: true, ..range(0, 10_000) }).await.len(), 4);
    assert_eq!(q(SpanQuery { only_kept: true, data_source_set: true, ..range(0, 10_000) }).await, []);
    let rows = h.store.query_spans(&SpanQuery { data_source_set: true, ..range(0, 10_000) }).await.unwrap();
    assert_eq!(rows, vec![db1]);

    // Trace list: kept roots only, newest first.
    assert_eq!(ids(h.store.recent_traces(None, None, 10).await.unwrap()), [key(&root4), key(&root2), key(&root1)]);
    assert_eq!(ids(h.store.recent_traces(None, None, 2).await.unwrap()), [key(&root4), key(&root2)]);
    assert_eq!(ids(h.store.recent_traces(Some("search"), None, 10).await.unwrap()), [key(&root2)]);
    assert_eq!(ids(h.store.recent_traces(None, Some("helper"), 0).await.unwrap()), [key(&root4), key(&root1)]);
    assert!(h.store.recent_traces(Some("checkout"), Some("finder"), 10).await.unwrap().is_empty());
    assert_eq!(h.store.recent_traces(Some("search"), Some("finder"), 10).await.unwrap(), vec![root2]);
}

/// Many segments whose time ranges overlap: a limited query gives exactly
/// the newest spans of the full ordering, whatever the limit.
async fn span_query_limit_keeps_the_newest_across_segments(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // 60 traces of 5 spans each, in 3 batches: each trace's spans are spread
    // over a long range, so segments overlap in time.
    let mut all = Vec::new();
    for batch in 0..3u64 {
        let mut spans = Vec::new();
        for t in batch * 20..batch * 20 + 20 {
            for s in 1..=5u64 {
                let start = ((t * 7_919 + s * 104_729) % 10_000) as i64;
                let kept = (t + s) % 4 != 0;
                let data_source = if s == 3 { "kb".to_string() } else { String::new() };
                spans.push(SpanRow { body: kept.then(|| body("{}")), data_source, ..span(t, s, start) });
            }
        }
        h.store.ingest_signals(&spans, |_| (vec![], vec![])).await.unwrap();
        all.extend(spans);
    }
    let newest_first = |rows: &mut Vec<SpanRow>| {
        rows.sort_by(|a, b| (b.start_ns, &b.trace_id, &b.span_id).cmp(&(a.start_ns, &a.trace_id, &a.span_id)))
    };
    let key = |rows: &[SpanRow]| rows.iter().map(|r| (r.trace_id.clone(), r.span_id.clone())).collect::<Vec<_>>();
    for (query, filter) in [
        (SpanQuery { from_ns: 0, to_ns: 10_000, ..SpanQuery::default() }, (|_: &SpanRow| true) as fn(&SpanRow) -> bool),
        (SpanQuery { from_ns: 2_000, to_ns: 7_000, only_kept: true, ..SpanQuery::default() }, |s: &SpanRow| {
            (2_000..7_000).contains(&s.start_ns) && s.body.is_some()
        }),
        (SpanQuery { from_ns: 0, to_ns: 10_000, data_source_set: true, ..SpanQuery::default() }, |s: &SpanRow| {
            !s.data_source.is_empty()
        }),
    ] {
        let mut expected: Vec<SpanRow> = all.iter().filter(|s| filter(s)).cloned().collect();
        newest_first(&mut expected);
        for limit in [1, 7, 50, 299, 0] {
            let rows = h.store.query_spans(&SpanQuery { limit, ..query.clone() }).await.unwrap();
            let n = if limit > 0 { (limit as usize).min(expected.len()) } else { expected.len() };
            assert_eq!(key(&rows), key(&expected[..n]), "limit {limit}, {query:?}");
        }
    }
}

/// A store written before migration 9 kept one row per span in
/// `signal_spans`; opening it moves those rows into segments, drops the
/// table, and the spans are found (and recognised as duplicates) as before.
async fn rows_of_the_former_span_table_move_into_segments(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let legacy = "CREATE TABLE signal_spans (
        trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT NOT NULL,
        start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL, received_s BIGINT NOT NULL,
        service TEXT NOT NULL, name TEXT NOT NULL, operation TEXT NOT NULL, model TEXT NOT NULL,
        prompt TEXT NOT NULL, prompt_version TEXT NOT NULL, agent TEXT NOT NULL, data_source TEXT NOT NULL,
        body TEXT, PRIMARY KEY (trace_id, span_id));";
    let mut sql = legacy.to_string();
    let mut expected = Vec::new();
    for t in 1..=3u64 {
        for s in 1..=4u64 {
            let row = SpanRow {
                parent_span_id: if s == 1 { String::new() } else { span_id(1) },
                body: (t != 3).then(|| body(format!(r#"{{"t":{t},"s":{s},"q":"it's"}}"#))),
                ..span(t, s, (t * 100 + s) as i64)
            };
            let text = |v: &str| format!("'{}'", v.replace('\'', "''"));
            sql.push_str(&format!(
                "INSERT INTO signal_spans VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});",
                text(&row.trace_id),
                text(&row.span_id),
                text(&row.parent_span_id),
                row.start_ns,
                row.end_ns,
                row.received_s,
                text(&row.service),
                text(&row.name),
                text(&row.operation),
                text(&row.model),
                text(&row.prompt),
                text(&row.prompt_version),
                text(&row.agent),
                text(&row.data_source),
                row.body.as_ref().and_then(SpanBody::whole).map_or("NULL".to_string(), text),
            ));
            expected.push(row);
        }
    }
    raw(&h.config, &sql).await;

    let store = Store::open(&h.config).await.expect("reopen and move the rows");
    for t in 1..=3u64 {
        let want: Vec<SpanRow> = expected.iter().filter(|s| s.trace_id == trace_id(t)).cloned().collect();
        assert_eq!(store.trace_spans(&trace_id(t)).await.unwrap(), want, "trace {t}");
    }
    assert_eq!(count_spans(&store).await, 12);
    let roots = store.recent_traces(None, None, 10).await.unwrap();
    assert_eq!(roots.iter().map(|r| r.trace_id.clone()).collect::<Vec<_>>(), [trace_id(2), trace_id(1)]);
    // Moved spans are recognised when an export is retried.
    let again = store.ingest_signals(&expected[..5], |_| (vec![], vec![])).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 5));
    // The table is gone, so opening again moves nothing.
    drop(store);
    let store = Store::open(&h.config).await.expect("reopen");
    assert_eq!(count_spans(&store).await, 12);
}

/// Segments written before migration 10 hold their spans as plain JSON
/// text; after it (PostgreSQL's column becomes `BYTEA`), they read as
/// before, beside the compressed segments written since, in one trace.
async fn segments_stored_as_plain_json_read_after_migration_10(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // Back to version 9: a text column holding one segment of plain JSON.
    let old = SpanRow { body: Some(body(r#"{"q":"it's \"quoted\""}"#)), ..span(1, 1, 100) };
    let json = format!(
        r#"[["{}","",{},{},{},"{}","{}","{}","{}","{}","{}","",{}]]"#,
        old.span_id,
        old.start_ns,
        old.end_ns,
        old.received_s,
        old.name,
        old.operation,
        old.model,
        old.prompt,
        old.prompt_version,
        old.agent,
        serde_json::to_string(old.body.as_ref().and_then(SpanBody::whole).unwrap()).unwrap(),
    );
    let back = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => "DELETE FROM signal_segments; \
             ALTER TABLE signal_segments ALTER COLUMN spans TYPE TEXT USING convert_from(spans, 'UTF8'); "
            .to_string(),
    };
    raw(
        &h.config,
        &format!(
            "{back}DELETE FROM plinth_migrations WHERE version = 10; \
             INSERT INTO signal_segments (trace_id, service, kept, start_ns, last_start_ns, span_count, \
             root_start_ns, root_agent, tags, span_ids, spans) VALUES ('{}', '{}', TRUE, {}, {}, 1, {}, '{}', \
             '\no:chat\np:greeting\na:helper\n', '{}', '{}')",
            old.trace_id,
            old.service,
            old.start_ns,
            old.start_ns,
            old.start_ns,
            old.agent,
            old.span_id,
            json.replace('\'', "''"),
        ),
    )
    .await;

    let store = Store::open(&h.config).await.expect("reopen and migrate");
    assert_eq!(store.trace_spans(&old.trace_id).await.unwrap(), vec![old.clone()]);
    // The same trace gains a compressed segment; both read back together.
    let new = SpanRow { parent_span_id: old.span_id.clone(), ..span(1, 2, 200) };
    let outcome = store.ingest_signals(&[old.clone(), new.clone()], |_| (vec![], vec![])).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (1, 1));
    assert_eq!(store.trace_spans(&old.trace_id).await.unwrap(), vec![old.clone(), new.clone()]);
    let query = SpanQuery { from_ns: 0, to_ns: 1_000, prompt: Some("greeting".into()), ..SpanQuery::default() };
    assert_eq!(store.query_spans(&query).await.unwrap(), vec![new, old.clone()]);
    assert_eq!(store.recent_traces(None, None, 5).await.unwrap(), vec![old]);
}

async fn purge_applies_retention(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // Retention goes by the span's start time (indexed), in seconds here.
    let at = |t: u64, start_s: i64, kept: bool| SpanRow {
        body: if kept { Some(body("{}")) } else { None },
        ..span(t, 1, start_s * 1_000_000_000)
    };
    let spans = [at(1, 100, false), at(2, 300, false), at(3, 100, true), at(4, 300, true), at(5, 600, true)];
    let k = key("a", "b", "c");
    h.store
        .ingest_signals(&spans, |_| {
            (vec![rollup(0, &k, 1, &[]), rollup(60, &k, 1, &[]), rollup(120, &k, 1, &[])], vec![rollup(0, &k, 1, &[])])
        })
        .await
        .unwrap();
    // Key-only before 200 (t1), kept before 400 (t3, t4), rollups before
    // 120 (two minute rows, the hour row and the day row written from it).
    assert_eq!(h.store.purge_signals(200, 400, 120).await.unwrap(), 3 + 2 + 1 + 1);
    let left: Vec<String> = h
        .store
        .query_spans(&SpanQuery { from_ns: 0, to_ns: 1_000_000_000_000, ..SpanQuery::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.trace_id)
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, [trace_id(2), trace_id(5)]);
    let minute: Vec<i64> =
        h.store.rollups(Resolution::Minute, &all(0, 3600)).await.unwrap().iter().map(|r| r.bucket).collect();
    assert_eq!(minute, [120]);
    assert!(h.store.rollups(Resolution::Hour, &all(0, 3600)).await.unwrap().is_empty());
    assert_eq!(h.store.purge_signals(200, 400, 120).await.unwrap(), 0);
    // A purged span can be ingested again.
    assert_eq!(h.store.ingest_signals(&[at(1, 700, false)], |_| (vec![], vec![])).await.unwrap().inserted, 1);
}

async fn scores_insert_and_query(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let t1 = trace_id(1);
    let s1 = score("s1", 100, Some(&t1), Some(("greeting", "3")));
    let s2 = ScoreRow {
        data_type: "categorical".into(),
        value_num: None,
        value_str: Some("polite".into()),
        source: "otel".into(),
        comment: None,
        ..score("s2", 200, Some(&t1), Some(("greeting", "4")))
    };
    let s3 = ScoreRow {
        data_type: "boolean".into(),
        value_num: Some(1.0),
        ..score("s3", 300, None, Some(("farewell", "1")))
    };
    let s4 = score("s4", 400, None, None);
    h.store.insert_scores(&[s1.clone(), s2.clone()]).await.unwrap();
    // The duplicate id is ignored, not an error, and does not overwrite.
    let dup = ScoreRow { value_num: Some(9.0), ..s1.clone() };
    h.store.insert_scores(&[dup, s3.clone(), s4.clone()]).await.unwrap();
    h.store.insert_scores(&[]).await.unwrap();

    let q = |q: ScoreQuery| {
        let store = h.store.clone();
        async move { store.query_scores(&q).await.unwrap() }
    };
    assert_eq!(q(ScoreQuery::default()).await, vec![s4.clone(), s3.clone(), s2.clone(), s1.clone()]);
    assert_eq!(q(ScoreQuery { limit: 1, ..ScoreQuery::default() }).await, vec![s4.clone()]);
    assert_eq!(
        q(ScoreQuery { trace_id: Some(t1.clone()), ..ScoreQuery::default() }).await,
        vec![s2.clone(), s1.clone()]
    );
    assert_eq!(
        q(ScoreQuery { prompt: Some("greeting".into()), ..ScoreQuery::default() }).await,
        vec![s2.clone(), s1.clone()]
    );
    assert_eq!(
        q(ScoreQuery { prompt: Some("greeting".into()), prompt_version: Some("3".into()), ..ScoreQuery::default() })
            .await,
        vec![s1.clone()]
    );
    assert_eq!(
        q(ScoreQuery { from_s: Some(200), to_s: Some(400), ..ScoreQuery::default() }).await,
        vec![s3.clone(), s2.clone()],
        "[from, to)"
    );
    assert_eq!(q(ScoreQuery { from_s: Some(300), ..ScoreQuery::default() }).await, vec![s4, s3]);
    assert_eq!(q(ScoreQuery { to_s: Some(200), ..ScoreQuery::default() }).await, vec![s1]);
}

async fn alert_rules_events_and_states(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // Rules: upsert, list ordered by id, delete.
    h.store.put_alert_rule("r2", r#"{"v":1}"#, 10).await.unwrap();
    h.store.put_alert_rule("r1", r#"{"v":1}"#, 11).await.unwrap();
    h.store.put_alert_rule("r2", r#"{"v":2}"#, 12).await.unwrap();
    assert_eq!(
        h.store.list_alert_rules().await.unwrap(),
        vec![("r1".to_string(), r#"{"v":1}"#.to_string()), ("r2".to_string(), r#"{"v":2}"#.to_string())]
    );
    assert!(h.store.delete_alert_rule("r1").await.unwrap());
    assert!(!h.store.delete_alert_rule("r1").await.unwrap());
    assert_eq!(h.store.list_alert_rules().await.unwrap().len(), 1);

    // Events: increasing ids, newest first, per rule, limit.
    let e1 = h.store.append_alert_event("r2", 100, "firing", "{}").await.unwrap();
    let e2 = h.store.append_alert_event("r3", 110, "firing", "{}").await.unwrap();
    let e3 = h.store.append_alert_event("r2", 120, "resolved", r#"{"value":1}"#).await.unwrap();
    assert!(e1 < e2 && e2 < e3);
    let all = h.store.alert_events(None, 0).await.unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [e3, e2, e1]);
    let r2 = h.store.alert_events(Some("r2"), 10).await.unwrap();
    assert_eq!(r2.iter().map(|e| e.id).collect::<Vec<_>>(), [e3, e1]);
    assert_eq!(
        (r2[0].rule_id.as_str(), r2[0].at_s, r2[0].state.as_str(), r2[0].body.as_str()),
        ("r2", 120, "resolved", r#"{"value":1}"#)
    );
    assert_eq!(h.store.alert_events(Some("r2"), 1).await.unwrap().len(), 1);
    assert!(h.store.alert_events(Some("none"), 10).await.unwrap().is_empty());

    // States: upsert, list ordered by rule id, delete.
    let state = |rule_id: &str, state: &str, since_s| AlertStateRow {
        rule_id: rule_id.to_string(),
        state: state.to_string(),
        since_s,
        body: format!(r#"{{"since":{since_s}}}"#),
    };
    h.store.set_alert_state(&state("r3", "firing", 110)).await.unwrap();
    h.store.set_alert_state(&state("r2", "firing", 100)).await.unwrap();
    h.store.set_alert_state(&state("r2", "resolved", 120)).await.unwrap();
    assert_eq!(h.store.alert_states().await.unwrap(), vec![state("r2", "resolved", 120), state("r3", "firing", 110)]);
    h.store.delete_alert_state("r3").await.unwrap();
    h.store.delete_alert_state("missing").await.unwrap();
    assert_eq!(h.store.alert_states().await.unwrap(), vec![state("r2", "resolved", 120)]);
}

/// Not a benchmark (nothing is asserted about time): prints how long one
/// 50,000-span batch with ~300-byte bodies takes to ingest.
async fn ingest_50k_spans_timing(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let body = body(format!(r#"{{"attributes":{{"gen_ai.system":"openai","text":"{}"}}}}"#, "x".repeat(250)));
    let spans: Vec<SpanRow> = (0..50_000u64)
        .map(|i| SpanRow {
            parent_span_id: if i % 10 == 0 { String::new() } else { span_id(i - i % 10 + 1) },
            body: Some(body.clone()),
            ..span(i / 10, i + 1, i64::try_from(i).unwrap() * 1_000)
        })
        .collect();
    let rollups: Vec<RollupRow> =
        (0..50).map(|i| rollup(i * 60, &key("checkout", "pay", "gpt-4o"), 1_000, &[7; 64])).collect();
    let started = Instant::now();
    let outcome = h.store.ingest_signals(&spans, |_| (rollups.clone(), rollups[..1].to_vec())).await.unwrap();
    let first = started.elapsed();
    assert_eq!((outcome.inserted, outcome.duplicates), (50_000, 0));
    let started = Instant::now();
    let outcome = h.store.ingest_signals(&spans, |_| (vec![], vec![])).await.unwrap();
    let again = started.elapsed();
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 50_000));
    eprintln!(
        "TIMING {:?}: 50,000 new spans in {first:?} ({:.0} spans/s); the same 50,000 again (all duplicates) in {again:?}",
        h.store.backend(),
        50_000.0 / first.as_secs_f64(),
    );
    assert_eq!(count_spans(&h.store).await, 50_000);
}

/// A database left at schema version 3 (no signal tables) gains them when
/// opened (and migration 6, which alters two of them, runs after; so does
/// migration 9, whose segments replace the span table migration 4 makes,
/// and 10, which alters them).
async fn version_3_database_migrates_to_4(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let rollback = "DROP TABLE signal_segments; DROP TABLE signal_rollups_minute; DROP TABLE signal_rollups_hour; DROP TABLE signal_rollups_day; \
                    DROP TABLE signal_scores; DROP TABLE alert_rules; DROP TABLE alert_events; DROP TABLE alert_states; \
                    DROP TABLE leases; DROP TABLE cache_revisions; \
                    DELETE FROM plinth_migrations WHERE version IN (4, 6, 9, 10)";
    raw(&h.config, rollback).await;

    let store = Store::open(&h.config).await.expect("reopen and migrate");
    let outcome = store
        .ingest_signals(&[span(1, 1, 100)], |_| (vec![rollup(0, &key("a", "b", "c"), 1, &[1])], vec![]))
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 1);
    assert_eq!(store.trace_spans(&trace_id(1)).await.unwrap().len(), 1);
    assert_eq!(store.rollups(Resolution::Minute, &all(0, 60)).await.unwrap().len(), 1);
    store.put_alert_rule("r", "{}", 1).await.unwrap();
    assert_eq!(store.append_alert_event("r", 1, "firing", "{}").await.unwrap(), 1);
    store.insert_scores(&[score("s", 1, None, None)]).await.unwrap();
    store
        .set_alert_state(&AlertStateRow { rule_id: "r".into(), state: "firing".into(), since_s: 1, body: "{}".into() })
        .await
        .unwrap();
}
