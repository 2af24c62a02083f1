//! Conformance suite: entities, the change log, locations and errors; every
//! scenario runs on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use plinth_model::Diagnostic;
use plinth_store::{
    ChangeOp, ChangeRecord, EntityChange, EntityUpsert, IngestionError, LocationStatus, NewLocation, SkipReason, Store,
    StoreConfig,
};
use plinth_testkit::{scenarios, Backend};

use crate::common::Harness;

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "test";

scenarios!(
    insert_update_unchanged_delete,
    uid_kept_and_etag_follows_hash,
    ownership_conflict,
    dedupe_within_slice,
    mixed_slice_logs_in_slice_order,
    bodies_round_trip_exactly,
    paging_and_chunking,
    delete_location_removes_its_entities,
    locations_detect_duplicates,
    errors_replace_and_list,
    reopen_keeps_data,
    concurrent_applies_keep_an_ordered_log,
    bulk_apply_20k,
    a_store_migrated_by_a_newer_plinth_is_refused,
);

// ---------------------------------------------------------------- helpers --

fn hash_of(text: &str) -> String {
    // Not cryptographic; only needs to differ when the text differs.
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in text.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5);
    }
    format!("{a:016x}{b:016x}")
}

fn upsert(key: &str, body: &str, location: &str) -> EntityChange {
    let (kind, rest) = key.split_once(':').unwrap_or(("component", key));
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    EntityChange::Upsert(EntityUpsert {
        key: key.to_string(),
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        body: body.to_string(),
        hash: hash_of(body),
        location_id: location.to_string(),
    })
}

fn delete(key: &str) -> EntityChange {
    EntityChange::Delete { key: key.to_string() }
}

fn keys(records: &[ChangeRecord]) -> Vec<(&str, ChangeOp)> {
    records.iter().map(|r| (r.key.as_str(), r.op)).collect()
}

fn assert_strictly_increasing(records: &[ChangeRecord]) {
    assert!(records.windows(2).all(|w| w[0].seq < w[1].seq), "seqs not increasing: {records:?}");
}

async fn entity(store: &Store, key: &str) -> Option<plinth_store::StoredEntity> {
    store.get_entities(&[key.to_string()]).await.unwrap().into_iter().next()
}

async fn entity_of(store: &Store, key: &str) -> plinth_store::StoredEntity {
    entity(store, key).await.unwrap_or_else(|| panic!("{key} is not stored"))
}

/// A ~1.5 KB entity body.
fn big_body(i: usize, version: u32) -> String {
    let mut body = format!(
        r#"{{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{{"name":"svc-{i}","namespace":"default","description":"Service number {i}, version {version}","annotations":{{"#
    );
    let mut n = 0;
    while body.len() < 1400 {
        body.push_str(&format!(r#""example.com/annotation-{n}":"value {n} for service {i} with some padding text","#));
        n += 1;
    }
    body.push_str(r#""end":"1"}},"spec":{"type":"service","lifecycle":"production","owner":"team-a"}}"#);
    body
}

fn bulk_changes(count: usize, version: u32) -> Vec<EntityChange> {
    (0..count).map(|i| upsert(&format!("component:default/svc-{i}"), &big_body(i, version), "loc-bulk")).collect()
}

// ----------------------------------------------------------------- bodies --

async fn insert_update_unchanged_delete(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    assert_eq!(store.last_seq().await.unwrap(), 0);
    assert!(store.changes_since(0, 100).await.unwrap().is_empty());

    let first = store
        .apply(&[upsert("component:default/a", "a1", "loc-1"), upsert("component:default/b", "b1", "loc-1")])
        .await
        .unwrap();
    assert_eq!(
        keys(&first.written),
        [("component:default/a", ChangeOp::Upsert), ("component:default/b", ChangeOp::Upsert)]
    );
    assert!(first.skipped.is_empty());
    assert_strictly_increasing(&first.written);
    assert!(first.written[0].seq > 0);
    assert_eq!(store.last_seq().await.unwrap(), first.written[1].seq);

    let a = entity(store, "component:default/a").await.expect("a is stored");
    assert_eq!((a.kind.as_str(), a.namespace.as_str(), a.name.as_str()), ("component", "default", "a"));
    assert_eq!(a.body, "a1");
    assert_eq!(a.hash, hash_of("a1"));
    assert_eq!(a.location_id, "loc-1");
    // The row's time is the change's, read back exactly (microseconds).
    assert_eq!(a.updated_at, first.written[0].at);
    let age = time::OffsetDateTime::now_utc() - a.updated_at;
    assert!(age >= time::Duration::ZERO && age < time::Duration::minutes(10), "written just now: {}", a.updated_at);

    let update = store.apply(&[upsert("component:default/a", "a2", "loc-1")]).await.unwrap();
    assert_eq!(keys(&update.written), [("component:default/a", ChangeOp::Upsert)]);
    assert!(update.written[0].seq > first.written[1].seq);
    assert_eq!(entity(store, "component:default/a").await.unwrap().body, "a2");

    let unchanged = store
        .apply(&[upsert("component:default/a", "a2", "loc-1"), upsert("component:default/b", "b1", "loc-1")])
        .await
        .unwrap();
    assert!(unchanged.written.is_empty());
    assert_eq!(
        unchanged.skipped,
        [
            ("component:default/a".to_string(), SkipReason::Unchanged),
            ("component:default/b".to_string(), SkipReason::Unchanged)
        ]
    );
    assert_eq!(store.last_seq().await.unwrap(), update.written[0].seq);

    let deleted = store.apply(&[delete("component:default/a"), delete("component:default/zzz")]).await.unwrap();
    assert_eq!(keys(&deleted.written), [("component:default/a", ChangeOp::Delete)]);
    assert_eq!(deleted.skipped, [("component:default/zzz".to_string(), SkipReason::Missing)]);
    assert!(entity(store, "component:default/a").await.is_none());

    let all: Vec<ChangeRecord> = [first.written, update.written, deleted.written].concat();
    assert_strictly_increasing(&all);
    assert_eq!(store.changes_since(0, 100).await.unwrap(), all);
    assert_eq!(store.changes_since(all[0].seq, 1).await.unwrap(), all[1..2]);
    assert_eq!(store.changes_since(all[3].seq, 100).await.unwrap(), []);
    assert_eq!(store.last_seq().await.unwrap(), all[3].seq);

    let loaded = store.load_entities().await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].key, "component:default/b");

    let mut got =
        store.get_entities(&["component:default/b".into(), "component:default/a".into(), "nope".into()]).await.unwrap();
    got.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(got, loaded);
    assert!(store.apply(&[]).await.unwrap().written.is_empty());
}

async fn uid_kept_and_etag_follows_hash(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let inserted = store
        .apply(&[upsert("component:default/a", "v1", "loc-1"), upsert("component:default/b", "v1", "loc-1")])
        .await
        .unwrap();
    let a1 = entity(store, "component:default/a").await.unwrap();
    let b1 = entity(store, "component:default/b").await.unwrap();
    // The outcome reports the uids it wrote, so writers need not read back.
    assert_eq!(inserted.uids["component:default/a"], a1.uid);
    assert_eq!(inserted.uids["component:default/b"], b1.uid);
    assert_ne!(a1.uid, b1.uid);
    // A v7 uid: time-ordered, so the uid index grows at its end.
    assert_eq!(uuid::Uuid::parse_str(&a1.uid).unwrap().get_version_num(), 7);
    let later = store.apply(&[upsert("component:default/c", "v1", "loc-1")]).await.unwrap();
    let c1 = &later.uids["component:default/c"];
    assert!(c1.as_str() > a1.uid.as_str() && c1.as_str() > b1.uid.as_str(), "a later uid sorts later");
    assert_eq!(a1.etag, a1.hash[..16]);

    let updated = store.apply(&[upsert("component:default/a", "v2", "loc-1")]).await.unwrap();
    let a2 = entity(store, "component:default/a").await.unwrap();
    assert_eq!(a2.uid, a1.uid, "uid must survive updates");
    assert_eq!(updated.uids["component:default/a"], a1.uid);
    assert_ne!(a2.etag, a1.etag);
    assert_eq!(a2.etag, a2.hash[..16]);
    assert!(a2.updated_at >= a1.updated_at);

    // Unchanged upserts leave the row alone entirely.
    store.apply(&[upsert("component:default/a", "v2", "loc-1")]).await.unwrap();
    assert_eq!(entity(store, "component:default/a").await.unwrap(), a2);

    // After a delete, a re-insert is a new entity with a new uid.
    store.apply(&[delete("component:default/a")]).await.unwrap();
    store.apply(&[upsert("component:default/a", "v2", "loc-1")]).await.unwrap();
    assert_ne!(entity(store, "component:default/a").await.unwrap().uid, a1.uid);
}

async fn ownership_conflict(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let first = store.apply(&[upsert("component:default/x", "from-a", "loc-a")]).await.unwrap();
    assert_eq!(first.written.len(), 1);
    let before = entity(store, "component:default/x").await.unwrap();

    let taken = store
        .apply(&[upsert("component:default/x", "from-b", "loc-b"), upsert("component:default/y", "from-b", "loc-b")])
        .await
        .unwrap();
    assert_eq!(keys(&taken.written), [("component:default/y", ChangeOp::Upsert)]);
    assert_eq!(taken.skipped, [("component:default/x".to_string(), SkipReason::OwnedBy("loc-a".to_string()))]);
    assert_eq!(entity(store, "component:default/x").await.unwrap(), before);

    // Same body from another location: still owned, not "unchanged".
    let same = store.apply(&[upsert("component:default/x", "from-a", "loc-b")]).await.unwrap();
    assert_eq!(same.skipped, [("component:default/x".to_string(), SkipReason::OwnedBy("loc-a".to_string()))]);

    // The owner can still update it.
    let owner = store.apply(&[upsert("component:default/x", "from-a-2", "loc-a")]).await.unwrap();
    assert_eq!(owner.written.len(), 1);
    assert_eq!(entity(store, "component:default/x").await.unwrap().location_id, "loc-a");
}

async fn dedupe_within_slice(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    store.apply(&[upsert("component:default/b", "b0", "loc-1")]).await.unwrap();
    let outcome = store
        .apply(&[
            upsert("component:default/a", "a1", "loc-1"),
            upsert("component:default/b", "b1", "loc-1"),
            upsert("component:default/a", "a2", "loc-1"),
            delete("component:default/b"),
            upsert("component:default/c", "c1", "loc-1"),
            delete("component:default/c"),
        ])
        .await
        .unwrap();
    assert_eq!(
        keys(&outcome.written),
        [("component:default/a", ChangeOp::Upsert), ("component:default/b", ChangeOp::Delete)]
    );
    assert_eq!(outcome.skipped, [("component:default/c".to_string(), SkipReason::Missing)]);
    assert_eq!(entity(store, "component:default/a").await.unwrap().body, "a2");
    assert!(entity(store, "component:default/b").await.is_none());
    assert!(entity(store, "component:default/c").await.is_none());
    assert_eq!(store.changes_since(0, 100).await.unwrap().len(), 3);
}

async fn mixed_slice_logs_in_slice_order(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    store
        .apply(&[upsert("component:default/a", "a", "loc-1"), upsert("component:default/b", "b", "loc-1")])
        .await
        .unwrap();
    let outcome = store
        .apply(&[
            upsert("component:default/c", "c", "loc-1"),
            delete("component:default/b"),
            upsert("component:default/a", "a2", "loc-1"),
            upsert("component:default/x", "x", "loc-2"),
            delete("component:default/nope"),
        ])
        .await
        .unwrap();
    assert_eq!(
        keys(&outcome.written),
        [
            ("component:default/c", ChangeOp::Upsert),
            ("component:default/b", ChangeOp::Delete),
            ("component:default/a", ChangeOp::Upsert),
            ("component:default/x", ChangeOp::Upsert),
        ]
    );
    assert_strictly_increasing(&outcome.written);
    assert_eq!(outcome.skipped, [("component:default/nope".to_string(), SkipReason::Missing)]);
    let first = outcome.written[0].seq;
    let seqs: Vec<i64> = outcome.written.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (first..first + 4).collect::<Vec<_>>(), "one apply writes consecutive seqs");
    assert!(outcome.written.iter().all(|r| r.at == outcome.written[0].at));
}

async fn bodies_round_trip_exactly(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let tricky = [
        r#"{"description":"quotes \" and backslashes \\ and a slash /"}"#.to_string(),
        r"a literal backslash-n \n and backslash-u \u0041 stay as typed".to_string(),
        "real newline\nand tab\tand bell\u{7}".to_string(),
        "unicode: żółć, 日本語, emoji 🚀, combining é".to_string(),
        "{\"nested\":{\"json\":[1,2,3]},\"null\":null}".to_string(),
        String::new(),
        (1_u8..0x20).map(char::from).chain(['\u{7f}', '\u{2028}', '\u{feff}', '\u{10ffff}']).collect::<String>(),
        "x".repeat(200_000),
    ];
    let changes: Vec<EntityChange> =
        tricky.iter().enumerate().map(|(i, b)| upsert(&format!("component:default/t{i}"), b, "loc-1")).collect();
    assert_eq!(store.apply(&changes).await.unwrap().written.len(), tricky.len());
    let mut loaded = store.load_entities().await.unwrap();
    loaded.sort_by(|a, b| a.key.cmp(&b.key));
    for (i, body) in tricky.iter().enumerate() {
        let key = format!("component:default/t{i}");
        let entity = loaded.iter().find(|e| e.key == key).expect("loaded");
        assert_eq!(&entity.body, body, "body {i} changed on the way through load_entities");
        let got = entity_of(store, &key).await;
        assert_eq!(&got.body, body, "body {i} changed on the way through get_entities");
    }
    // Unicode in keys and names too.
    store.apply(&[upsert("component:default/żółw", "turtle", "loc-ü")]).await.unwrap();
    let turtle = entity_of(store, "component:default/żółw").await;
    assert_eq!((turtle.name.as_str(), turtle.location_id.as_str()), ("żółw", "loc-ü"));
}

async fn paging_and_chunking(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    // More rows than any internal page or chunk size, and in several applies.
    let count = 7_500;
    for part in 0..3 {
        let changes: Vec<EntityChange> = (part * 2_500..(part + 1) * 2_500)
            .map(|i| upsert(&format!("component:default/p{i:05}"), &format!("body {i}"), "loc-1"))
            .collect();
        assert_eq!(store.apply(&changes).await.unwrap().written.len(), 2_500);
    }
    let all = store.changes_since(0, i64::MAX).await.unwrap();
    assert_eq!(all.len(), count);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=count as i64).collect::<Vec<_>>());
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());
    assert!(store.changes_since(count as i64, 10).await.unwrap().is_empty());
    // Page through the log the way a follower does.
    let mut cursor = 0;
    let mut paged = Vec::new();
    loop {
        let page = store.changes_since(cursor, 1_234).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 1_234);
        cursor = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert_eq!(store.changes_since(100, 4_000).await.unwrap(), all[100..4_100]);

    let loaded = store.load_entities().await.unwrap();
    assert_eq!(loaded.len(), count);
    let distinct: HashSet<&str> = loaded.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(distinct.len(), count);

    let mut wanted: Vec<String> = (0..count).step_by(2).map(|i| format!("component:default/p{i:05}")).collect();
    wanted.push("component:default/missing".into());
    let got = store.get_entities(&wanted).await.unwrap();
    assert_eq!(got.len(), count.div_ceil(2));
    assert!(store.get_entities(&[]).await.unwrap().is_empty());

    let deletes: Vec<EntityChange> = wanted.iter().map(|k| delete(k)).collect();
    let outcome = store.apply(&deletes).await.unwrap();
    assert_eq!(outcome.written.len(), count.div_ceil(2));
    assert_eq!(outcome.skipped, [("component:default/missing".to_string(), SkipReason::Missing)]);
    assert_eq!(store.load_entities().await.unwrap().len(), count / 2);
}

async fn delete_location_removes_its_entities(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let (one, _) =
        store.add_location(&NewLocation { kind: "file".into(), target: "/one".into(), branch: None }).await.unwrap();
    let (two, _) =
        store.add_location(&NewLocation { kind: "file".into(), target: "/two".into(), branch: None }).await.unwrap();
    store
        .apply(&[
            upsert("component:default/one-b", "1", &one.id),
            upsert("component:default/one-a", "1", &one.id),
            upsert("component:default/two", "2", &two.id),
        ])
        .await
        .unwrap();
    store
        .replace_errors(
            &one.id,
            &[IngestionError { location_id: one.id.clone(), diagnostic: Diagnostic::error("/one/x.yaml", "bad") }],
        )
        .await
        .unwrap();
    store
        .replace_errors(
            &two.id,
            &[IngestionError { location_id: two.id.clone(), diagnostic: Diagnostic::error("/two/x.yaml", "bad") }],
        )
        .await
        .unwrap();
    let before = store.last_seq().await.unwrap();

    let records = store.delete_location(&one.id).await.unwrap().expect("location existed");
    let mut deleted: Vec<(&str, ChangeOp)> = keys(&records);
    deleted.sort_by_key(|(key, _)| *key);
    assert_eq!(deleted, [("component:default/one-a", ChangeOp::Delete), ("component:default/one-b", ChangeOp::Delete)]);
    assert_strictly_increasing(&records);
    assert!(records[0].seq > before);
    assert_eq!(store.changes_since(before, 100).await.unwrap(), records);

    let remaining: Vec<String> = store.load_entities().await.unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(remaining, ["component:default/two"]);
    assert!(store.get_location(&one.id).await.unwrap().is_none());
    assert_eq!(store.list_locations().await.unwrap(), std::slice::from_ref(&two));
    let errors = store.list_errors().await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].location_id, two.id);

    assert_eq!(store.delete_location(&one.id).await.unwrap(), None);
    assert_eq!(store.delete_location("no-such-location").await.unwrap(), None);

    // A location without entities deletes with no log rows.
    assert_eq!(store.delete_location(&two.id).await.unwrap().map(|r| r.len()), Some(1));
    let (three, _) =
        store.add_location(&NewLocation { kind: "file".into(), target: "/three".into(), branch: None }).await.unwrap();
    assert_eq!(store.delete_location(&three.id).await.unwrap(), Some(vec![]));
}

async fn locations_detect_duplicates(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let git_main =
        NewLocation { kind: "git".into(), target: "https://example.com/r.git".into(), branch: Some("main".into()) };
    let (first, created) = store.add_location(&git_main).await.unwrap();
    assert!(created);
    assert_eq!(uuid::Uuid::parse_str(&first.id).unwrap().get_version_num(), 4);
    assert_eq!(
        (first.kind.as_str(), first.target.as_str(), first.branch.as_deref()),
        ("git", "https://example.com/r.git", Some("main"))
    );
    assert_eq!(first.status, LocationStatus::default());

    let (again, created) = store.add_location(&git_main).await.unwrap();
    assert!(!created);
    assert_eq!(again, first);

    let no_branch = NewLocation { branch: None, ..git_main.clone() };
    let (other, created) = store.add_location(&no_branch).await.unwrap();
    assert!(created);
    assert_ne!(other.id, first.id);
    assert_eq!(other.branch, None);
    let (same, created) = store.add_location(&no_branch).await.unwrap();
    assert!(!created);
    assert_eq!(same.id, other.id);

    let file = NewLocation { kind: "file".into(), target: "https://example.com/r.git".into(), branch: None };
    let (third, created) = store.add_location(&file).await.unwrap();
    assert!(created);

    let listed = store.list_locations().await.unwrap();
    assert_eq!(listed, [first.clone(), other.clone(), third.clone()]);
    assert_eq!(store.get_location(&other.id).await.unwrap(), Some(other.clone()));
    assert_eq!(store.get_location("missing").await.unwrap(), None);

    let status = LocationStatus {
        refreshed_at: Some("2024-05-01T10:00:00.000000Z".into()),
        entities: 12,
        errors: 3,
        revision: Some("abc123".into()),
        refreshing_since: None,
    };
    store.set_location_status(&first.id, &status).await.unwrap();
    let updated = store.get_location(&first.id).await.unwrap().unwrap();
    assert_eq!(updated.status, status);
    assert_eq!(updated.created_at, first.created_at);
    assert!(!updated.status.interrupted());
    let marked = LocationStatus { refreshing_since: Some("2024-05-01T10:05:00Z".into()), ..status.clone() };
    store.set_location_status(&first.id, &marked).await.unwrap();
    let updated = store.get_location(&first.id).await.unwrap().unwrap();
    assert_eq!(updated.status, marked);
    assert!(updated.status.interrupted(), "a refresh marked and not completed is interrupted");
    assert!(store.get_location(&other.id).await.unwrap().unwrap().status.interrupted(), "never refreshed");
    store.set_location_status("missing", &status).await.unwrap();
}

async fn errors_replace_and_list(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let detailed = Diagnostic::error("/repo/catalog-info.yaml", "spec.owner is required").at_line(Some(7));
    let mut with_field = Diagnostic::warning("/repo/other.yaml", "unknown field");
    with_field.field = Some("metadata.tags[1]".into());
    with_field.entity_ref = Some("component:default/x".into());
    let err = |loc: &str, d: &Diagnostic| IngestionError { location_id: loc.to_string(), diagnostic: d.clone() };

    store.replace_errors("loc-b", &[err("loc-b", &detailed), err("loc-b", &with_field)]).await.unwrap();
    store.replace_errors("loc-a", &[err("loc-a", &with_field)]).await.unwrap();
    assert_eq!(
        store.list_errors().await.unwrap(),
        [err("loc-a", &with_field), err("loc-b", &detailed), err("loc-b", &with_field)]
    );

    let third = Diagnostic::error("/repo/third.yaml", "third");
    store.replace_errors("loc-b", &[err("loc-b", &third)]).await.unwrap();
    assert_eq!(store.list_errors().await.unwrap(), [err("loc-a", &with_field), err("loc-b", &third)]);

    store.replace_errors("loc-a", &[]).await.unwrap();
    assert_eq!(store.list_errors().await.unwrap(), [err("loc-b", &third)]);
}

async fn reopen_keeps_data(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let store = &h.store;
    let (location, _) =
        store.add_location(&NewLocation { kind: "file".into(), target: "/x".into(), branch: None }).await.unwrap();
    let written = store.apply(&[upsert("component:default/a", "a", &location.id)]).await.unwrap().written;
    store
        .replace_errors(
            &location.id,
            &[IngestionError { location_id: location.id.clone(), diagnostic: Diagnostic::error("/x", "e") }],
        )
        .await
        .unwrap();
    let entities = store.load_entities().await.unwrap();

    for _ in 0..2 {
        let reopened = h.reopen().await;
        assert_eq!(reopened.backend(), store.backend());
        assert_eq!(reopened.load_entities().await.unwrap(), entities);
        assert_eq!(reopened.list_locations().await.unwrap(), std::slice::from_ref(&location));
        assert_eq!(reopened.changes_since(0, 10).await.unwrap(), written);
        assert_eq!(reopened.list_errors().await.unwrap().len(), 1);
    }
    let reopened = h.reopen().await;
    let next = reopened.apply(&[upsert("component:default/b", "b", &location.id)]).await.unwrap().written;
    assert!(next[0].seq > written[0].seq);
    assert_eq!(store.last_seq().await.unwrap(), next[0].seq);
}

async fn concurrent_applies_keep_an_ordered_log(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    const WRITERS: usize = 2;
    const BATCHES: usize = 40;
    const PER_BATCH: usize = 50;
    let total = (WRITERS * BATCHES * PER_BATCH) as i64;

    let follower = {
        let store = h.store.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while (seen.len() as i64) < total {
                assert!(Instant::now() < deadline, "follower saw only {} of {total} rows", seen.len());
                let page = store.changes_since(cursor, 173).await.unwrap();
                for record in page {
                    assert_eq!(record.seq, cursor + 1, "the follower skipped or reordered a change-log row");
                    cursor = record.seq;
                    seen.push(record);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = h.store.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for b in 0..BATCHES {
                    let changes: Vec<EntityChange> = (0..PER_BATCH)
                        .map(|i| {
                            upsert(
                                &format!("component:w{w}/e-{b}-{i}"),
                                &format!("body {w} {b} {i}"),
                                &format!("loc-{w}"),
                            )
                        })
                        .collect();
                    let outcome = store.apply(&changes).await.unwrap();
                    assert_eq!(outcome.written.len(), PER_BATCH);
                    assert_strictly_increasing(&outcome.written);
                    written.extend(outcome.written);
                }
                written
            })
        })
        .collect();

    let mut all_written = Vec::new();
    for writer in writers {
        all_written.extend(writer.await.unwrap());
    }
    let seen = follower.await.unwrap();

    all_written.sort_by_key(|r| r.seq);
    let seqs: Vec<i64> = all_written.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "the log has gaps or duplicates");
    assert_eq!(seen, all_written);
    assert_eq!(h.store.changes_since(0, total + 10).await.unwrap(), all_written);
    let distinct: HashSet<&str> = all_written.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(distinct.len() as i64, total);
    assert_eq!(h.store.last_seq().await.unwrap(), total);
}

async fn bulk_apply(h: &Harness, count: usize) {
    let store = &h.store;
    let backend = format!("{:?}", store.backend());
    let changes = bulk_changes(count, 1);

    let started = Instant::now();
    let outcome = store.apply(&changes).await.unwrap();
    eprintln!("[{backend}] apply of {count} new entities: {:?}", started.elapsed());
    assert_eq!(outcome.written.len(), count);
    assert!(outcome.skipped.is_empty());
    assert_strictly_increasing(&outcome.written);

    let started = Instant::now();
    let loaded = store.load_entities().await.unwrap();
    eprintln!("[{backend}] load_entities of {count}: {:?}", started.elapsed());
    assert_eq!(loaded.len(), count);

    let started = Instant::now();
    let again = store.apply(&changes).await.unwrap();
    eprintln!("[{backend}] apply of {count} unchanged entities: {:?}", started.elapsed());
    assert!(again.written.is_empty());
    assert_eq!(again.skipped.len(), count);

    let updated = bulk_changes(count, 2);
    let started = Instant::now();
    let outcome = store.apply(&updated).await.unwrap();
    eprintln!("[{backend}] apply of {count} updated entities: {:?}", started.elapsed());
    assert_eq!(outcome.written.len(), count);

    let all_keys: Vec<String> = updated.iter().map(|c| c.key().to_string()).collect();
    let started = Instant::now();
    let got = store.get_entities(&all_keys).await.unwrap();
    eprintln!("[{backend}] get_entities of {count}: {:?}", started.elapsed());
    assert_eq!(got.len(), count);

    let started = Instant::now();
    let page = store.changes_since(0, count as i64 * 2).await.unwrap();
    eprintln!("[{backend}] changes_since of {}: {:?}", page.len(), started.elapsed());
    assert_eq!(page.len(), count * 2);

    let deletes: Vec<EntityChange> = all_keys.iter().map(|k| delete(k)).collect();
    let started = Instant::now();
    let outcome = store.apply(&deletes).await.unwrap();
    eprintln!("[{backend}] apply of {count} deletes: {:?}", started.elapsed());
    assert_eq!(outcome.written.len(), count);
    assert!(store.load_entities().await.unwrap().is_empty());
}

async fn bulk_apply_20k(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    bulk_apply(&h, 20_000).await;
}

// ------------------------------------------------- backend-specific tests --

#[tokio::test]
async fn sqlite_data_dir_that_is_a_file_is_reported() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let error = Store::open(&StoreConfig::Sqlite { data_dir: file.clone() }).await.err().expect("open must fail");
    assert!(matches!(error, plinth_store::StoreError::DataDir { .. }), "{error:?}");
    assert!(error.to_string().contains("not-a-dir"), "{error}");
}

#[tokio::test]
async fn unreachable_postgres_is_reported_without_the_password() {
    // Port 1 on loopback refuses connections straight away.
    let url = "postgres://plinth:hunter2@127.0.0.1:1/plinth";
    let started = Instant::now();
    let error = Store::open(&StoreConfig::Postgres { url: url.into() }).await.err().expect("open must fail");
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = error.to_string();
    assert!(matches!(error, plinth_store::StoreError::Open { .. }), "{error:?}");
    assert!(message.contains("postgres://plinth@127.0.0.1:1/plinth"), "{message}");
    assert!(!message.contains("hunter2"), "the password leaked: {message}");
}

async fn a_store_migrated_by_a_newer_plinth_is_refused(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // A newer binary recorded a migration this one does not know.
    crate::common::raw(&h.config, "INSERT INTO plinth_migrations (version, applied_at) VALUES (9999, 'later')").await;
    let error = Store::open(&h.config).await.err().expect("an older binary must not open a newer store");
    assert!(matches!(error, plinth_store::StoreError::Newer { found: 9999, .. }), "{error:?}");
    assert!(error.to_string().contains("schema version 9999"), "{error}");
    // Nothing was changed: the store opens again once the newer binary's
    // migration is gone (as after restoring a backup).
    crate::common::raw(&h.config, "DELETE FROM plinth_migrations WHERE version = 9999").await;
    h.reopen().await;
}
