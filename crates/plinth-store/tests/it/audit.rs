//! The audit log's hash chain; every scenario runs on SQLite and
//! PostgreSQL.

use plinth_store::{
    AuditEntry, AuditOutcome, AuditQuery, NewAuditEntry, Store, AUDIT_GENESIS_HASH, AUDIT_RETENTION_ACTION,
    AUDIT_RETENTION_ACTOR,
};
use plinth_testkit::{scenarios, Backend};
use serde_json::json;
use time::OffsetDateTime;

use crate::common::{raw, Harness};

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "audit";

scenarios!(
    appends_are_gapless_and_chained,
    concurrent_appends_stay_linear,
    tampering_is_found_at_the_first_bad_row,
    queries_filter_and_page,
    prune_keeps_the_chain_verifiable,
    verification_spans_pages,
);

// ---------------------------------------------------------------- helpers --

/// Minute `minute` after 2024-05-01 12:00 UTC.
fn at(minute: i64) -> OffsetDateTime {
    time::macros::datetime!(2024-05-01 12:00 UTC) + time::Duration::minutes(minute)
}

fn entry(minute: i64, actor: &str, action: &str, target: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: at(minute),
        actor: actor.to_string(),
        token_id: None,
        action: action.to_string(),
        target: target.to_string(),
        outcome: AuditOutcome::Allowed,
        request_id: None,
        detail: json!({}),
    }
}

/// `n` entries at minutes `from..from + n`.
fn entries(from: i64, n: i64) -> Vec<NewAuditEntry> {
    (from..from + n).map(|m| entry(m, "user:default/alice", "catalog.location.create", &format!("loc-{m}"))).collect()
}

/// Every row, oldest first.
async fn all(store: &Store) -> Vec<AuditEntry> {
    let (mut rows, next) = store.audit_entries(&AuditQuery { limit: 100_000, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(next, None);
    rows.reverse();
    rows
}

fn seqs(rows: &[AuditEntry]) -> Vec<i64> {
    rows.iter().map(|r| r.seq).collect()
}

/// Asserts the log verifies, and that it holds `first..=last`.
async fn assert_valid(store: &Store, first: i64, last: i64) {
    let v = store.verify_audit().await.unwrap();
    assert_eq!(v.problem, None, "{v:?}");
    assert!(v.is_valid());
    assert_eq!((v.first_seq, v.last_seq), (Some(first), Some(last)), "{v:?}");
    assert_eq!(v.checked, u64::try_from(last - first + 1).unwrap());
    let head = store.audit_entries(&AuditQuery { limit: 1, ..AuditQuery::default() }).await.unwrap().0;
    assert_eq!(v.head_hash.as_deref(), Some(head[0].hash.as_str()));
}

/// The seq `verify_audit` names as the first bad row.
async fn first_bad(store: &Store) -> i64 {
    let v = store.verify_audit().await.unwrap();
    match v.problem {
        Some(problem) => problem.seq,
        None => panic!("verification passed: {v:?}"),
    }
}

// ------------------------------------------------------------------ tests --

async fn appends_are_gapless_and_chained(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let empty = h.store.verify_audit().await.unwrap();
    assert_eq!(
        (empty.checked, empty.first_seq, empty.last_seq, empty.head_hash, empty.problem),
        (0, None, None, None, None)
    );
    assert!(h.store.append_audit(&[]).await.unwrap().is_empty());

    let full = NewAuditEntry {
        at: time::macros::datetime!(2024-05-01 12:00:00.654321 +02:00),
        actor: "service:otel-exporter".to_string(),
        token_id: Some("tok-1".to_string()),
        action: "signals.traces.ingest".to_string(),
        target: String::new(),
        outcome: AuditOutcome::Denied,
        request_id: Some("req-1".to_string()),
        detail: json!({ "reason": "scope missing", "scopes": ["signals:write"], "n": 1.5, "unicode": "héllo ✓" }),
    };
    assert_eq!(h.store.append_audit(&[full.clone(), entries(1, 1).remove(0)]).await.unwrap(), [1, 2]);
    assert_eq!(h.store.append_audit(&entries(2, 1)).await.unwrap(), [3]);
    assert_eq!(h.store.append_audit(&entries(3, 3)).await.unwrap(), [4, 5, 6]);
    // A null detail is stored as an empty object; other non-objects are refused.
    let null_detail =
        NewAuditEntry { detail: serde_json::Value::Null, outcome: AuditOutcome::Failed, ..entries(6, 1).remove(0) };
    assert_eq!(h.store.append_audit(&[null_detail]).await.unwrap(), [7]);
    assert!(h.store.append_audit(&[NewAuditEntry { detail: json!("text"), ..entries(7, 1).remove(0) }]).await.is_err());

    let rows = all(&h.store).await;
    assert_eq!(seqs(&rows), [1, 2, 3, 4, 5, 6, 7]);
    let first = &rows[0];
    assert_eq!(first.at, full.at);
    assert_eq!(
        (first.actor.as_str(), first.token_id.as_deref(), first.action.as_str(), first.target.as_str()),
        ("service:otel-exporter", Some("tok-1"), "signals.traces.ingest", "")
    );
    assert_eq!((first.outcome, first.request_id.as_deref()), (AuditOutcome::Denied, Some("req-1")));
    assert_eq!(first.detail, full.detail);
    // Key order is kept as written.
    assert_eq!(first.detail.as_object().unwrap().keys().collect::<Vec<_>>(), ["reason", "scopes", "n", "unicode"]);
    assert_eq!(first.prev_hash, AUDIT_GENESIS_HASH);
    assert_eq!((rows[6].outcome, &rows[6].detail), (AuditOutcome::Failed, &json!({})));
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_ne!(pair[1].hash, pair[0].hash);
    }
    assert!(rows.iter().all(|r| r.hash.len() == 64 && r.hash.bytes().all(|b| b.is_ascii_hexdigit())));
    assert_valid(&h.store, 1, 7).await;

    // Another handle (a replica) continues the same chain.
    let other = h.reopen().await;
    assert_eq!(other.append_audit(&entries(10, 2)).await.unwrap(), [8, 9]);
    assert_valid(&h.store, 1, 9).await;
}

async fn concurrent_appends_stay_linear(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // Two handles with pools of their own, as two replicas (or processes)
    // would have; on SQLite two pools on the same file.
    let stores = [h.store.clone(), h.reopen().await];
    const TASKS: usize = 8;
    const ROUNDS: i64 = 10;
    const BATCH: i64 = 3;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = stores[task % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for round in 0..ROUNDS {
                let batch: Vec<NewAuditEntry> = (0..BATCH)
                    .map(|i| entry(round, &format!("service:task-{task}"), "test.append", &format!("{round}-{i}")))
                    .collect();
                let seqs = store.append_audit(&batch).await.unwrap();
                assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "a batch is consecutive: {seqs:?}");
                got.extend(seqs);
            }
            got
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    let total = i64::try_from(TASKS).unwrap() * ROUNDS * BATCH;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    assert_valid(&h.store, 1, total).await;
    assert_valid(&stores[1], 1, total).await;
    // Each task's rows are in its order.
    let rows = all(&h.store).await;
    for task in 0..TASKS {
        let actor = format!("service:task-{task}");
        let targets: Vec<&str> = rows.iter().filter(|r| r.actor == actor).map(|r| r.target.as_str()).collect();
        let expected: Vec<String> = (0..ROUNDS).flat_map(|r| (0..BATCH).map(move |i| format!("{r}-{i}"))).collect();
        assert_eq!(targets, expected);
    }
}

async fn tampering_is_found_at_the_first_bad_row(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.append_audit(&entries(0, 6)).await.unwrap();
    h.store.append_audit(&entries(6, 4)).await.unwrap();
    assert_valid(&h.store, 1, 10).await;

    // (a) An edited row: its own hash no longer matches.
    raw(&h.config, "UPDATE audit_log SET target = 'elsewhere' WHERE seq = 4").await;
    assert_eq!(first_bad(&h.store).await, 4);
    let v = h.store.verify_audit().await.unwrap();
    assert_eq!((v.checked, v.last_seq), (3, Some(3)));
    // Two edits: the first is named.
    raw(&h.config, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 8").await;
    assert_eq!(first_bad(&h.store).await, 4);
    raw(
        &h.config,
        "UPDATE audit_log SET target = 'loc-3' WHERE seq = 4; UPDATE audit_log SET outcome = 'allowed' WHERE seq = 8",
    )
    .await;
    assert_valid(&h.store, 1, 10).await;
    // The detail text is hashed as stored, whitespace included.
    raw(&h.config, "UPDATE audit_log SET detail = '{ }' WHERE seq = 2").await;
    assert_eq!(first_bad(&h.store).await, 2);
    raw(&h.config, "UPDATE audit_log SET detail = '{}' WHERE seq = 2").await;
    assert_valid(&h.store, 1, 10).await;

    // (c) A changed hash: that row fails; a row "re-hashed" to match its
    // edit breaks the link of the next one instead.
    let rows = all(&h.store).await;
    raw(&h.config, &format!("UPDATE audit_log SET hash = '{}' WHERE seq = 7", rows[7].hash)).await;
    assert_eq!(first_bad(&h.store).await, 7);
    raw(&h.config, &format!("UPDATE audit_log SET hash = '{}' WHERE seq = 7", rows[6].hash)).await;
    assert_valid(&h.store, 1, 10).await;
    raw(&h.config, &format!("UPDATE audit_log SET prev_hash = '{}' WHERE seq = 9", AUDIT_GENESIS_HASH)).await;
    assert_eq!(first_bad(&h.store).await, 9);
    raw(&h.config, &format!("UPDATE audit_log SET prev_hash = '{}' WHERE seq = 9", rows[7].hash)).await;
    assert_valid(&h.store, 1, 10).await;

    // (b) A deleted middle row: the next row is where the run breaks.
    raw(&h.config, "DELETE FROM audit_log WHERE seq = 5").await;
    let v = h.store.verify_audit().await.unwrap();
    let problem = v.problem.expect("a gap");
    assert_eq!(problem.seq, 6, "{problem:?}");
    assert!(problem.reason.contains('5'), "{}", problem.reason);
    assert_eq!((v.checked, v.first_seq, v.last_seq), (4, Some(1), Some(4)));

    // A deleted first row without a retention record is found too.
    raw(&h.config, "DELETE FROM audit_log WHERE seq < 6").await;
    assert_eq!(first_bad(&h.store).await, 6);
    // A deleted head cannot be told from a shorter log: the chain verifies.
    raw(&h.config, "DELETE FROM audit_log").await;
    h.store.append_audit(&entries(0, 3)).await.unwrap();
    raw(&h.config, "DELETE FROM audit_log WHERE seq = 3").await;
    assert_valid(&h.store, 1, 2).await;
}

async fn queries_filter_and_page(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let mut batch = vec![
        entry(1, "user:default/alice", "catalog.location.create", "loc-a"), // 1
        entry(2, "user:default/bob", "catalog.location.delete", "loc-a"),   // 2
        entry(3, "user:default/alice", "policy.waiver.create", "waiver-1"), // 3
        entry(4, "anonymous", "catalog.entity.read", ""),                   // 4
        entry(5, "user:default/alice", "catalog.location.create", "loc-b"), // 5
        entry(6, "system:catalog", "catalogx.other", "loc-b"),              // 6
        entry(7, "user:default/bob", "Catalog.location.create", "loc-c"),   // 7
    ];
    batch[3].outcome = AuditOutcome::Denied;
    h.store.append_audit(&batch).await.unwrap();

    let q = |f: fn(&mut AuditQuery)| {
        let mut query = AuditQuery::default();
        f(&mut query);
        query
    };
    let run = |query: AuditQuery| {
        let store = h.store.clone();
        async move { seqs(&store.audit_entries(&query).await.unwrap().0) }
    };
    assert_eq!(run(AuditQuery::default()).await, [7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(run(q(|q| q.actor = Some("user:default/alice".into()))).await, [5, 3, 1]);
    assert_eq!(run(q(|q| q.action = Some("catalog.location.create".into()))).await, [5, 1]);
    assert_eq!(run(q(|q| q.action = Some("catalog.location".into()))).await, Vec::<i64>::new());
    assert_eq!(run(q(|q| q.action_prefix = Some("catalog.".into()))).await, [5, 4, 2, 1]);
    assert_eq!(run(q(|q| q.action_prefix = Some("catalog".into()))).await, [6, 5, 4, 2, 1]);
    assert_eq!(run(q(|q| q.action_prefix = Some("catalog.location.".into()))).await, [5, 2, 1]);
    assert_eq!(run(q(|q| q.target = Some("loc-a".into()))).await, [2, 1]);
    assert_eq!(run(q(|q| q.target = Some(String::new()))).await, [4]);
    assert_eq!(run(q(|q| q.from = Some(at(3)))).await, [7, 6, 5, 4, 3]);
    assert_eq!(run(q(|q| q.to = Some(at(3)))).await, [2, 1]);
    assert_eq!(
        run(q(|q| {
            q.from = Some(at(2));
            q.to = Some(at(6));
            q.actor = Some("user:default/alice".into());
            q.action_prefix = Some("catalog.".into());
        }))
        .await,
        [5]
    );
    assert_eq!(run(q(|q| q.before_seq = Some(3))).await, [2, 1]);

    // Paging: cursor to cursor until there is none.
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let query = AuditQuery { limit: 3, before_seq: cursor, ..AuditQuery::default() };
        let (rows, next) = h.store.audit_entries(&query).await.unwrap();
        pages.push(seqs(&rows));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    // A page that ends exactly at the last row has no next cursor.
    let (rows, next) = h.store.audit_entries(&AuditQuery { limit: 7, ..AuditQuery::default() }).await.unwrap();
    assert_eq!((rows.len(), next), (7, None));
    let filtered = AuditQuery { limit: 1, actor: Some("user:default/bob".into()), ..AuditQuery::default() };
    let (rows, next) = h.store.audit_entries(&filtered).await.unwrap();
    assert_eq!((seqs(&rows), next), (vec![7], Some(7)));
    let (rows, next) = h.store.audit_entries(&AuditQuery { before_seq: next, ..filtered }).await.unwrap();
    assert_eq!((seqs(&rows), next), (vec![2], None));

    // A limit of 0 means 100.
    h.store.append_audit(&entries(10, 150)).await.unwrap();
    let (rows, next) = h.store.audit_entries(&AuditQuery::default()).await.unwrap();
    assert_eq!((rows.len(), rows[0].seq, next), (100, 157, Some(58)));
}

async fn prune_keeps_the_chain_verifiable(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    assert_eq!(h.store.prune_audit(at(100)).await.unwrap(), 0, "an empty log has nothing to prune");
    assert!(all(&h.store).await.is_empty());

    // Minutes 0..10 as seqs 1..=10, then seq 11 written late with minute 2.
    h.store.append_audit(&entries(0, 10)).await.unwrap();
    h.store.append_audit(&entries(2, 1)).await.unwrap();
    assert_eq!(h.store.prune_audit(at(0)).await.unwrap(), 0, "nothing is older");
    assert_eq!(seqs(&all(&h.store).await), (1..=11).collect::<Vec<_>>(), "and no retention row either");

    assert_eq!(h.store.prune_audit(at(4)).await.unwrap(), 4);
    let rows = all(&h.store).await;
    assert_eq!(seqs(&rows), (5..=12).collect::<Vec<_>>());
    let marker = rows.last().unwrap();
    assert_eq!((marker.actor.as_str(), marker.action.as_str()), (AUDIT_RETENTION_ACTOR, AUDIT_RETENTION_ACTION));
    assert_eq!(marker.outcome, AuditOutcome::Allowed);
    assert_eq!(marker.prev_hash, rows[rows.len() - 2].hash, "the retention row is chained");
    let hash_at_4 = rows[0].prev_hash.clone();
    assert_eq!(marker.detail, json!({ "deleted_through_seq": 4, "hash_at_seq": hash_at_4 }));
    assert_valid(&h.store, 5, 12).await;

    // Only a prefix goes: seq 11 (minute 2) waits for the rows before it.
    assert_eq!(h.store.prune_audit(at(7)).await.unwrap(), 3);
    assert_eq!(seqs(&all(&h.store).await), (8..=13).collect::<Vec<_>>());
    assert_valid(&h.store, 8, 13).await;

    // Appends continue the chain after retention.
    assert_eq!(h.store.append_audit(&entries(20, 2)).await.unwrap(), [14, 15]);
    assert_valid(&h.store, 8, 15).await;

    // The first row kept must link to the hash the retention row recorded.
    raw(&h.config, &format!("UPDATE audit_log SET prev_hash = '{AUDIT_GENESIS_HASH}' WHERE seq = 8")).await;
    let problem = h.store.verify_audit().await.unwrap().problem.expect("a broken anchor");
    assert_eq!(problem.seq, 8);
    assert!(problem.reason.contains("retention"), "{}", problem.reason);
    let kept = all(&h.store).await;
    let recorded =
        kept.iter().rev().find(|r| r.action == AUDIT_RETENTION_ACTION).unwrap().detail["hash_at_seq"].clone();
    raw(&h.config, &format!("UPDATE audit_log SET prev_hash = '{}' WHERE seq = 8", recorded.as_str().unwrap())).await;
    assert_valid(&h.store, 8, 15).await;

    // Everything older than now: every row goes, retention rows included,
    // and one new retention row carries the chain.
    let future = OffsetDateTime::now_utc() + time::Duration::days(1);
    assert_eq!(h.store.prune_audit(future).await.unwrap(), 8);
    let rows = all(&h.store).await;
    assert_eq!(seqs(&rows), [16]);
    assert_eq!(rows[0].detail["deleted_through_seq"], json!(15));
    assert_valid(&h.store, 16, 16).await;
    assert_eq!(h.store.append_audit(&entries(30, 1)).await.unwrap(), [17]);
    assert_valid(&h.store, 16, 17).await;
}

/// More rows than one verification page (10,000) and one insert statement.
async fn verification_spans_pages(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let seqs = h.store.append_audit(&entries(0, 10_050)).await.unwrap();
    assert_eq!((seqs.first(), seqs.last(), seqs.len()), (Some(&1), Some(&10_050), 10_050));
    assert_valid(&h.store, 1, 10_050).await;
    raw(&h.config, "UPDATE audit_log SET actor = 'user:default/mallory' WHERE seq = 10020").await;
    assert_eq!(first_bad(&h.store).await, 10_020);
    raw(
        &h.config,
        "UPDATE audit_log SET actor = 'user:default/alice' WHERE seq = 10020; DELETE FROM audit_log WHERE seq = 10001",
    )
    .await;
    assert_eq!(first_bad(&h.store).await, 10_002);
}
