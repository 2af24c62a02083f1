//! The decision log: multi-row writes keep every decision and entity link,
//! ignore an id already stored, and page newest first; on SQLite and
//! PostgreSQL.

use plinth_store::{DecisionQuery, DecisionRecord};
use plinth_testkit::{scenarios, Backend};

use crate::common::Harness;

const DATABASE: &str = "decisions";

scenarios!(batches_larger_than_one_statement_keep_every_row, a_repeated_decision_is_stored_once);

fn record(n: usize, entities: &[&str]) -> DecisionRecord {
    DecisionRecord {
        decision_id: format!("d-{n:05}"),
        ts_ms: 1_700_000_000_000 + n as i64,
        point: if n.is_multiple_of(2) { "admission".into() } else { "deploy".into() },
        result: if n.is_multiple_of(3) { "deny".into() } else { "allow".into() },
        entities: entities.iter().map(|e| e.to_string()).collect(),
        event: format!("{{\"decision_id\":\"d-{n:05}\"}}"),
    }
}

async fn batches_larger_than_one_statement_keep_every_row(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // 450 decisions (three statements of at most 200) with 900 links.
    let records: Vec<DecisionRecord> =
        (0..450).map(|n| record(n, &["component:default/a", &format!("component:default/c{}", n % 7)])).collect();
    h.store.insert_decisions(&records).await.unwrap();

    let all = h.store.query_decisions(&DecisionQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 450);
    assert_eq!(all[0].1, "d-00449", "newest first");
    let about_a = DecisionQuery { entity: Some("component:default/a".into()), limit: 1000, ..Default::default() };
    assert_eq!(h.store.query_decisions(&about_a).await.unwrap().len(), 450);
    let about_c3 = DecisionQuery { entity: Some("component:default/c3".into()), limit: 1000, ..Default::default() };
    assert_eq!(h.store.query_decisions(&about_c3).await.unwrap().len(), (0..450).filter(|n| n % 7 == 3).count());
    let denied = DecisionQuery {
        result: Some("deny".into()),
        point: Some("admission".into()),
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(h.store.query_decisions(&denied).await.unwrap().len(), (0..450).filter(|n| n % 6 == 0).count());
}

async fn a_repeated_decision_is_stored_once(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // Replicas that make the same deterministic decision record it once,
    // also when both copies arrive in one batch.
    let first = record(1, &["component:default/a"]);
    h.store.insert_decisions(&[first.clone(), first.clone()]).await.unwrap();
    h.store.insert_decisions(&[first, record(2, &[])]).await.unwrap();
    let all = h.store.query_decisions(&DecisionQuery { limit: 10, ..Default::default() }).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(ids, ["d-00002", "d-00001"]);
    let about_a = DecisionQuery { entity: Some("component:default/a".into()), limit: 10, ..Default::default() };
    assert_eq!(h.store.query_decisions(&about_a).await.unwrap().len(), 1);
}
