//! Scaffolder task persistence; every scenario runs on SQLite and
//! PostgreSQL.

use plinth_store::{NewTask, NewTaskEvent, Store, TaskEventType, TaskQuery, TaskStatus};
use plinth_testkit::{scenarios, Backend};
use serde_json::json;
use time::OffsetDateTime;

use crate::common::{raw, Harness};

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "scaffolder";

scenarios!(
    create_get_round_trip,
    status_transitions,
    events_append_in_order_and_page,
    list_filters_pages_and_counts,
    fail_interrupted_tasks_fails_only_running_ones,
    unknown_ids_are_not_errors,
    version_2_database_migrates_to_3,
);

// ---------------------------------------------------------------- helpers --

fn ts(second: u8) -> OffsetDateTime {
    time::macros::datetime!(2024-05-01 12:00 UTC).replace_second(second).expect("a second of a minute")
}

fn new_task(id: &str, created_by: Option<&str>, second: u8) -> NewTask {
    NewTask {
        id: id.to_string(),
        template_ref: "template:default/service".to_string(),
        spec: json!({ "apiVersion": "scaffolder.backstage.io/v1beta3", "steps": [{ "id": "fetch", "input": { "n": 1 } }] }),
        created_by: created_by.map(str::to_string),
        created_at: ts(second),
    }
}

fn event(event_type: TaskEventType, message: &str, second: u8) -> NewTaskEvent {
    NewTaskEvent { event_type, body: json!({ "message": message }), created_at: ts(second) }
}

fn query(created_by: Option<&str>, status: Option<TaskStatus>, limit: usize, offset: usize) -> TaskQuery {
    TaskQuery { created_by: created_by.map(str::to_string), status, limit, offset }
}

async fn ids(store: &Store, q: &TaskQuery) -> (Vec<String>, u64) {
    let (rows, total) = store.list_tasks(q).await.unwrap();
    (rows.into_iter().map(|r| r.id).collect(), total)
}

// ------------------------------------------------------------------ tests --

async fn create_get_round_trip(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let spec = json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "parameters": { "name": "svc", "unicode": "héllo ✓", "nested": [1, 2.5, null, true, { "k": "v" }] },
        "steps": [{ "id": "fetch", "action": "fetch:template", "input": { "url": "./skeleton" } }],
    });
    let task = NewTask { spec: spec.clone(), ..new_task("t1", Some("user:default/ann"), 1) };
    h.store.create_task(&task).await.unwrap();

    let row = h.store.get_task("t1").await.unwrap().expect("stored task");
    assert_eq!(row.id, "t1");
    assert_eq!(row.template_ref, "template:default/service");
    assert_eq!(row.spec, spec);
    assert_eq!(row.created_by.as_deref(), Some("user:default/ann"));
    assert_eq!(row.status, TaskStatus::Open);
    assert_eq!(row.created_at, ts(1));
    assert_eq!(row.last_heartbeat_at, None);
    assert_eq!(row.completed_at, None);
    assert_eq!(row.output, None);
    assert_eq!(row.error, None);

    // No creator is stored as NULL.
    h.store.create_task(&new_task("t2", None, 2)).await.unwrap();
    assert_eq!(h.store.get_task("t2").await.unwrap().unwrap().created_by, None);

    // A duplicate id is an error, not a silent overwrite.
    assert!(h.store.create_task(&new_task("t1", None, 3)).await.is_err());
}

async fn status_transitions(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.create_task(&new_task("t1", None, 1)).await.unwrap();

    assert!(h.store.set_task_status("t1", TaskStatus::Processing, ts(2)).await.unwrap());
    let row = h.store.get_task("t1").await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Processing);
    assert_eq!(row.last_heartbeat_at, Some(ts(2)));

    h.store.heartbeat_task("t1", ts(3)).await.unwrap();
    let row = h.store.get_task("t1").await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Processing);
    assert_eq!(row.last_heartbeat_at, Some(ts(3)));

    let output = json!({ "links": [{ "title": "Repo", "url": "https://example.com/r" }], "text": [] });
    assert!(h.store.finish_task("t1", TaskStatus::Completed, ts(4), Some(&output), None).await.unwrap());
    let row = h.store.get_task("t1").await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Completed);
    assert_eq!(row.completed_at, Some(ts(4)));
    assert_eq!(row.output, Some(output));
    assert_eq!(row.error, None);
    assert_eq!(row.last_heartbeat_at, Some(ts(3)));

    h.store.create_task(&new_task("t2", None, 5)).await.unwrap();
    assert!(h.store.finish_task("t2", TaskStatus::Failed, ts(6), None, Some("step fetch failed")).await.unwrap());
    let row = h.store.get_task("t2").await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Failed);
    assert_eq!(row.output, None);
    assert_eq!(row.error.as_deref(), Some("step fetch failed"));

    h.store.create_task(&new_task("t3", None, 7)).await.unwrap();
    assert!(h.store.finish_task("t3", TaskStatus::Cancelled, ts(8), None, None).await.unwrap());
    assert_eq!(h.store.get_task("t3").await.unwrap().unwrap().status, TaskStatus::Cancelled);
}

async fn events_append_in_order_and_page(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    h.store.create_task(&new_task("t1", None, 1)).await.unwrap();
    h.store.create_task(&new_task("t2", None, 1)).await.unwrap();

    let first = h
        .store
        .append_task_events("t1", &[event(TaskEventType::Log, "a", 2), event(TaskEventType::Log, "b", 3)])
        .await
        .unwrap();
    let other = h.store.append_task_events("t2", &[event(TaskEventType::Log, "other", 3)]).await.unwrap();
    let second = h
        .store
        .append_task_events("t1", &[event(TaskEventType::Log, "c", 4), event(TaskEventType::Completion, "d", 5)])
        .await
        .unwrap();
    assert!(h.store.append_task_events("t1", &[]).await.unwrap().is_empty());
    assert_eq!(first.len(), 2);
    assert_eq!(other.len(), 1);
    assert_eq!(second.len(), 2);
    let all_ids: Vec<i64> = first.iter().chain(&second).copied().collect();
    assert!(all_ids.windows(2).all(|w| w[0] < w[1]), "ids not increasing: {all_ids:?}");
    assert!(first[1] < other[0] && other[0] < second[0]);

    let events = h.store.task_events("t1", None).await.unwrap();
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), all_ids);
    assert_eq!(events.iter().map(|e| e.body["message"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    assert!(events.iter().all(|e| e.task_id == "t1"));
    assert_eq!(events[3].event_type, TaskEventType::Completion);
    assert_eq!(events[0].created_at, ts(2));

    let after = h.store.task_events("t1", Some(first[1])).await.unwrap();
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), second);
    assert!(h.store.task_events("t1", Some(second[1])).await.unwrap().is_empty());
    assert_eq!(h.store.task_events("t1", Some(first[0])).await.unwrap().len(), 3);

    let t2 = h.store.task_events("t2", None).await.unwrap();
    assert_eq!(t2.len(), 1);
    assert_eq!(t2[0].body, json!({ "message": "other" }));
}

async fn list_filters_pages_and_counts(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    // Created at seconds 1..=6; ann owns 1, 2, 4, 6; bob owns 3; 5 has no creator.
    let owners = [Some("ann"), Some("ann"), Some("bob"), Some("ann"), None, Some("ann")];
    for (i, owner) in owners.iter().enumerate() {
        let n = u8::try_from(i).unwrap() + 1;
        h.store.create_task(&new_task(&format!("t{n}"), *owner, n)).await.unwrap();
    }
    h.store.set_task_status("t2", TaskStatus::Processing, ts(10)).await.unwrap();
    h.store.finish_task("t4", TaskStatus::Completed, ts(11), None, None).await.unwrap();

    assert_eq!(
        ids(&h.store, &query(None, None, 0, 0)).await,
        (vec!["t6", "t5", "t4", "t3", "t2", "t1"].into_iter().map(String::from).collect(), 6)
    );
    let (page, total) = ids(&h.store, &query(None, None, 2, 1)).await;
    assert_eq!((page, total), (vec!["t5".to_string(), "t4".to_string()], 6));

    let (ann, total) = ids(&h.store, &query(Some("ann"), None, 10, 0)).await;
    assert_eq!((ann, total), (vec!["t6", "t4", "t2", "t1"].into_iter().map(String::from).collect(), 4));
    let (ann_page, total) = ids(&h.store, &query(Some("ann"), None, 2, 2)).await;
    assert_eq!((ann_page, total), (vec!["t2".to_string(), "t1".to_string()], 4));
    let (beyond, total) = ids(&h.store, &query(Some("ann"), None, 2, 10)).await;
    assert_eq!((beyond.len(), total), (0, 4));

    let (open, total) = ids(&h.store, &query(None, Some(TaskStatus::Open), 10, 0)).await;
    assert_eq!((open, total), (vec!["t6", "t5", "t3", "t1"].into_iter().map(String::from).collect(), 4));
    let (ann_open, total) = ids(&h.store, &query(Some("ann"), Some(TaskStatus::Open), 1, 0)).await;
    assert_eq!((ann_open, total), (vec!["t6".to_string()], 2));
    let (done, total) = ids(&h.store, &query(Some("bob"), Some(TaskStatus::Completed), 10, 0)).await;
    assert_eq!((done.len(), total), (0, 0));

    let (rows, _) = h.store.list_tasks(&query(Some("ann"), Some(TaskStatus::Processing), 10, 0)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, "t2");
    assert_eq!(rows[0].spec, new_task("t2", None, 2).spec);
    assert_eq!(rows[0].last_heartbeat_at, Some(ts(10)));
}

async fn fail_interrupted_tasks_fails_only_running_ones(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    for (i, id) in ["open", "processing", "completed", "failed", "cancelled"].iter().enumerate() {
        h.store.create_task(&new_task(id, None, u8::try_from(i).unwrap())).await.unwrap();
    }
    h.store.set_task_status("processing", TaskStatus::Processing, ts(10)).await.unwrap();
    let output = json!({ "ok": true });
    h.store.finish_task("completed", TaskStatus::Completed, ts(11), Some(&output), None).await.unwrap();
    h.store.finish_task("failed", TaskStatus::Failed, ts(11), None, Some("boom")).await.unwrap();
    h.store.finish_task("cancelled", TaskStatus::Cancelled, ts(11), None, None).await.unwrap();
    h.store.append_task_events("processing", &[event(TaskEventType::Log, "working", 12)]).await.unwrap();

    let reason = "The server restarted while the task was running";
    // Only stale runners: "processing" beat at 10 s, "open" (waiting for a
    // slot) at 12 s, "abandoned" last at 2 s.
    h.store.heartbeat_task("open", ts(12)).await.unwrap();
    h.store.create_task(&new_task("abandoned", None, 1)).await.unwrap();
    h.store.set_task_status("abandoned", TaskStatus::Processing, ts(2)).await.unwrap();
    let stale = h.store.fail_interrupted_tasks("stale", ts(15), Some(ts(5))).await.unwrap();
    assert_eq!(stale, ["abandoned"], "only the task whose heartbeat stopped");
    let mut failed = h.store.fail_interrupted_tasks(reason, ts(20), None).await.unwrap();
    failed.sort();
    assert_eq!(failed, ["open", "processing"]);

    for id in ["open", "processing"] {
        let row = h.store.get_task(id).await.unwrap().unwrap();
        assert_eq!(row.status, TaskStatus::Failed);
        assert_eq!(row.error.as_deref(), Some(reason));
        assert_eq!(row.completed_at, Some(ts(20)));
        let events = h.store.task_events(id, None).await.unwrap();
        let last = events.last().expect("completion event");
        assert_eq!(last.event_type, TaskEventType::Completion);
        assert_eq!(last.created_at, ts(20));
        assert_eq!(
            last.body,
            json!({ "message": reason, "status": "failed", "error": { "name": "ServerRestarted", "message": reason } })
        );
        assert_eq!(events.iter().filter(|e| e.event_type == TaskEventType::Completion).count(), 1);
    }
    assert_eq!(h.store.task_events("processing", None).await.unwrap().len(), 2);

    let completed = h.store.get_task("completed").await.unwrap().unwrap();
    assert_eq!(
        (completed.status, completed.completed_at, completed.output),
        (TaskStatus::Completed, Some(ts(11)), Some(output))
    );
    let earlier_failure = h.store.get_task("failed").await.unwrap().unwrap();
    assert_eq!(earlier_failure.error.as_deref(), Some("boom"));
    assert_eq!(h.store.get_task("cancelled").await.unwrap().unwrap().status, TaskStatus::Cancelled);
    for id in ["completed", "failed", "cancelled"] {
        assert!(h.store.task_events(id, None).await.unwrap().is_empty(), "{id} got an event");
    }

    // Idempotent: nothing left to fail, and no second event.
    assert!(h.store.fail_interrupted_tasks(reason, ts(30), None).await.unwrap().is_empty());
    assert_eq!(h.store.task_events("open", None).await.unwrap().len(), 1);
    assert_eq!(h.store.get_task("open").await.unwrap().unwrap().completed_at, Some(ts(20)));
}

async fn unknown_ids_are_not_errors(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    assert!(h.store.get_task("missing").await.unwrap().is_none());
    assert!(!h.store.set_task_status("missing", TaskStatus::Processing, ts(1)).await.unwrap());
    h.store.heartbeat_task("missing", ts(1)).await.unwrap();
    assert!(!h.store.finish_task("missing", TaskStatus::Completed, ts(1), Some(&json!({})), None).await.unwrap());
    assert!(h.store.task_events("missing", None).await.unwrap().is_empty());
    assert!(h.store.task_events("missing", Some(5)).await.unwrap().is_empty());
    assert_eq!(h.store.list_tasks(&query(Some("nobody"), None, 10, 0)).await.unwrap().1, 0);
    assert!(h.store.fail_interrupted_tasks("restart", ts(1), None).await.unwrap().is_empty());
}

/// A database left at schema version 2 (no scaffolder tables) gains them
/// when opened.
async fn version_2_database_migrates_to_3(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let rollback = "DROP TABLE scaffolder_task_events; DROP TABLE scaffolder_tasks; DELETE FROM plinth_migrations WHERE version = 3";
    raw(&h.config, rollback).await;

    let store = Store::open(&h.config).await.expect("reopen and migrate");
    store.create_task(&new_task("t1", Some("ann"), 1)).await.unwrap();
    let ids = store.append_task_events("t1", &[event(TaskEventType::Log, "a", 2)]).await.unwrap();
    assert_eq!(store.task_events("t1", None).await.unwrap()[0].id, ids[0]);
    assert_eq!(store.get_task("t1").await.unwrap().unwrap().status, TaskStatus::Open);
}
