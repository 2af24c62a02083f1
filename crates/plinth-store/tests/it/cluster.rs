//! Replicas coordinating through the store: leases (acquire, renew,
//! release, lapse, take-over, fencing, races), fenced conditional alert
//! transitions with their pending deliveries, and cache revisions. Every
//! scenario runs on SQLite and PostgreSQL.

use std::time::Duration;

use plinth_store::{AlertStateRow, AlertTransition, Cached, NewAlertEvent, WaiverRecord};
use plinth_testkit::{scenarios, Backend};

use crate::common::Harness;

/// Names the PostgreSQL databases of this suite.
const DATABASE: &str = "cluster";

scenarios!(
    a_lease_is_held_by_one_holder_until_released,
    a_lapsed_lease_changes_hands_with_a_new_epoch,
    take_over_ends_the_previous_term,
    racing_acquirers_get_one_lease,
    alert_transitions_are_conditional_and_fenced,
    pending_deliveries_are_finished_once,
    writes_bump_cache_revisions,
);

const TTL: Duration = Duration::from_secs(30);

async fn a_lease_is_held_by_one_holder_until_released(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let a = h.store.try_acquire_lease("alerts", "a", TTL).await.unwrap().expect("a free lease is taken");
    assert_eq!((a.name.as_str(), a.holder.as_str(), a.epoch), ("alerts", "a", 1));
    assert!(a.expires_ms - a.renewed_ms >= 29_000 && a.expires_ms - a.renewed_ms <= 30_000, "{a:?}");
    assert_eq!(a.acquired_ms, a.renewed_ms);
    assert_eq!(h.store.try_acquire_lease("alerts", "b", TTL).await.unwrap(), None, "held by a");
    assert!(h.store.holds_lease(&a.fence()).await.unwrap());

    // The holder acquiring again renews: same epoch, same start.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = h.store.try_acquire_lease("alerts", "a", TTL).await.unwrap().expect("still a's");
    assert_eq!((again.epoch, again.acquired_ms), (1, a.acquired_ms));
    assert!(again.expires_ms > a.expires_ms, "the term is extended");
    let renewed = h.store.renew_lease(&a.fence(), TTL).await.unwrap().expect("renewed");
    assert_eq!(renewed.epoch, 1);

    // Another lease name is independent.
    let other = h.store.try_acquire_lease("refresh", "b", TTL).await.unwrap().expect("another lease");
    assert_eq!(other.epoch, 1);

    // Released: b takes it at once, in a new epoch; a's fence is void.
    assert!(h.store.release_lease("alerts", "a").await.unwrap());
    assert!(!h.store.release_lease("alerts", "a").await.unwrap(), "released already");
    assert!(!h.store.holds_lease(&a.fence()).await.unwrap());
    let b = h.store.try_acquire_lease("alerts", "b", TTL).await.unwrap().expect("b takes the released lease");
    assert_eq!((b.holder.as_str(), b.epoch), ("b", 2));
    assert_eq!(h.store.renew_lease(&a.fence(), TTL).await.unwrap(), None, "a cannot renew b's term");
    assert!(!h.store.release_lease("alerts", "a").await.unwrap(), "a cannot release b's lease");
    assert!(h.store.holds_lease(&b.fence()).await.unwrap());

    let leases = h.store.leases().await.unwrap();
    let names: Vec<(&str, &str, i64)> =
        leases.iter().map(|l| (l.lease.name.as_str(), l.lease.holder.as_str(), l.lease.epoch)).collect();
    assert_eq!(names, [("alerts", "b", 2), ("refresh", "b", 1)]);
    assert!(leases.iter().all(|l| l.in_force()));
}

async fn a_lapsed_lease_changes_hands_with_a_new_epoch(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let short = Duration::from_millis(300);
    let a = h.store.try_acquire_lease("sweeper", "a", short).await.unwrap().expect("taken");
    assert_eq!(h.store.try_acquire_lease("sweeper", "b", short).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(!h.store.holds_lease(&a.fence()).await.unwrap(), "lapsed");
    assert_eq!(h.store.renew_lease(&a.fence(), short).await.unwrap(), None, "a lapsed term is not renewed");
    let views = h.store.leases().await.unwrap();
    assert!(!views[0].in_force(), "{views:?}");
    let b = h.store.try_acquire_lease("sweeper", "b", TTL).await.unwrap().expect("b takes the lapsed lease");
    assert_eq!(b.epoch, 2);
    assert!(b.acquired_ms >= a.expires_ms, "b's term starts after a's ended");
    assert_eq!(h.store.try_acquire_lease("sweeper", "a", TTL).await.unwrap(), None);

    // The same holder taking its own lapsed lease again starts a new term.
    let c1 = h.store.try_acquire_lease("solo", "c", short).await.unwrap().expect("taken");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let c2 = h.store.try_acquire_lease("solo", "c", TTL).await.unwrap().expect("taken again");
    assert_eq!((c1.epoch, c2.epoch), (1, 2));
    assert!(!h.store.holds_lease(&c1.fence()).await.unwrap(), "the old term's fence is void");
}

async fn take_over_ends_the_previous_term(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let a = h.store.try_acquire_lease("refresh", "a", TTL).await.unwrap().expect("taken");
    let b = h.store.take_over_lease("refresh", "b", TTL).await.unwrap();
    assert_eq!((b.holder.as_str(), b.epoch), ("b", 2));
    assert!(!h.store.holds_lease(&a.fence()).await.unwrap());
    assert_eq!(h.store.renew_lease(&a.fence(), TTL).await.unwrap(), None);
    // Taking over what one holds already keeps the term.
    let again = h.store.take_over_lease("refresh", "b", TTL).await.unwrap();
    assert_eq!(again.epoch, 2);
    // A fresh name is taken over like a free lease.
    assert_eq!(h.store.take_over_lease("new", "b", TTL).await.unwrap().epoch, 1);
}

async fn racing_acquirers_get_one_lease(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    for round in 0..5 {
        let name = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, name) = (h.store.clone(), name.clone());
                tokio::spawn(async move { store.try_acquire_lease(&name, &format!("holder-{i}"), TTL).await })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(lease) = task.await.unwrap().unwrap() {
                winners.push(lease);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0].epoch, 1);
    }
}

fn state(rule: &str, state: &str, since_s: i64) -> AlertStateRow {
    AlertStateRow {
        rule_id: rule.to_string(),
        state: state.to_string(),
        since_s,
        body: format!(r#"{{"state":"{state}"}}"#),
    }
}

fn event(at_s: i64, state: &str, webhook: bool) -> Option<NewAlertEvent> {
    Some(NewAlertEvent { at_s, state: state.to_string(), body: format!(r#"{{"state":"{state}"}}"#), webhook })
}

async fn alert_transitions_are_conditional_and_fenced(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let leader = h.store.try_acquire_lease("signals.alerts", "a", TTL).await.unwrap().unwrap().fence();

    // First evaluation: no state row yet; two evaluators race, one stores.
    let first =
        AlertTransition { state: state("r", "firing", 10), from_revision: None, event: event(10, "firing", true) };
    let stored = h.store.transition_alert(&first, Some(&leader)).await.unwrap().expect("stored");
    assert_eq!(stored.revision, 1);
    assert!(stored.event_id.is_some());
    assert_eq!(h.store.transition_alert(&first, None).await.unwrap(), None, "the row exists: not stored twice");
    let events = h.store.alert_events(Some("r"), 0).await.unwrap();
    assert_eq!(events.len(), 1, "one event for one transition");

    // A conditional update names the revision it read.
    let states = h.store.versioned_alert_states().await.unwrap();
    assert_eq!((states[0].row.state.as_str(), states[0].revision), ("firing", 1));
    let resolve =
        AlertTransition { state: state("r", "ok", 20), from_revision: Some(1), event: event(20, "resolved", false) };
    let stale = AlertTransition { from_revision: Some(0), ..resolve.clone() };
    assert_eq!(h.store.transition_alert(&stale, Some(&leader)).await.unwrap(), None, "stale revision");
    let applied = h.store.transition_alert(&resolve, Some(&leader)).await.unwrap().expect("stored");
    assert_eq!(applied.revision, 2);
    assert_eq!(h.store.transition_alert(&resolve, Some(&leader)).await.unwrap(), None, "only once");

    // A replica that lost the lease cannot store anything, even with the
    // right revision; the new holder can.
    assert!(h.store.release_lease("signals.alerts", "a").await.unwrap());
    let b = h.store.try_acquire_lease("signals.alerts", "b", TTL).await.unwrap().unwrap().fence();
    let fire =
        AlertTransition { state: state("r", "firing", 30), from_revision: Some(2), event: event(30, "firing", true) };
    assert_eq!(h.store.transition_alert(&fire, Some(&leader)).await.unwrap(), None, "fenced out");
    let new_rule = AlertTransition { state: state("s", "ok", 30), from_revision: None, event: None };
    assert_eq!(h.store.transition_alert(&new_rule, Some(&leader)).await.unwrap(), None, "fenced out (insert)");
    assert_eq!(h.store.transition_alert(&fire, Some(&b)).await.unwrap().map(|a| a.revision), Some(3));
    let states: Vec<(String, String, i64)> = h
        .store
        .versioned_alert_states()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.row.rule_id, s.row.state, s.revision))
        .collect();
    assert_eq!(states, [("r".to_string(), "firing".to_string(), 3)]);
    let states: Vec<String> = h.store.alert_events(Some("r"), 0).await.unwrap().into_iter().map(|e| e.state).collect();
    assert_eq!(states, ["firing", "resolved", "firing"], "newest first, each transition once");

    // The unconditional setter moves the revision too.
    h.store.set_alert_state(&state("r", "ok", 40)).await.unwrap();
    assert_eq!(h.store.versioned_alert_states().await.unwrap()[0].revision, 4);
    assert_eq!(h.store.alert_states().await.unwrap(), [state("r", "ok", 40)]);
}

async fn pending_deliveries_are_finished_once(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let with_hook =
        AlertTransition { state: state("r", "firing", 100), from_revision: None, event: event(100, "firing", true) };
    let id = h.store.transition_alert(&with_hook, None).await.unwrap().unwrap().event_id.unwrap();
    let without =
        AlertTransition { state: state("q", "firing", 100), from_revision: None, event: event(100, "firing", false) };
    h.store.transition_alert(&without, None).await.unwrap().unwrap();
    let later =
        AlertTransition { state: state("p", "firing", 200), from_revision: None, event: event(200, "firing", true) };
    let later_id = h.store.transition_alert(&later, None).await.unwrap().unwrap().event_id.unwrap();

    let pending: Vec<i64> = h.store.pending_alert_deliveries(150, 10).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(pending, [id], "only webhook events, only those old enough");
    let pending: Vec<i64> = h.store.pending_alert_deliveries(200, 0).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(pending, [id, later_id], "oldest first");

    assert!(h.store.finish_alert_delivery(id, r#"{"webhook":{"delivered":true}}"#).await.unwrap());
    assert!(!h.store.finish_alert_delivery(id, r#"{"webhook":{"delivered":false}}"#).await.unwrap(), "once");
    let events = h.store.alert_events(Some("r"), 0).await.unwrap();
    assert_eq!(events[0].body, r#"{"webhook":{"delivered":true}}"#);
    let pending: Vec<i64> = h.store.pending_alert_deliveries(200, 0).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(pending, [later_id]);
}

async fn writes_bump_cache_revisions(backend: Backend) {
    let Some(h) = Harness::open(backend, DATABASE).await else { return };
    let start = h.store.cache_revisions().await.unwrap();
    assert_eq!((start.alert_rules, start.alert_states, start.waivers), (0, 0, 0));

    h.store.put_alert_rule("r", "{}", 1).await.unwrap();
    h.store.put_alert_rule("r", r#"{"v":2}"#, 1).await.unwrap();
    let after = h.store.cache_revisions().await.unwrap();
    assert_eq!(after.of(Cached::AlertRules), 2, "every write counts, even within one second");
    assert_eq!((after.alert_states, after.waivers), (0, 0));
    assert!(!h.store.delete_alert_rule("missing").await.unwrap());
    assert_eq!(h.store.cache_revisions().await.unwrap().alert_rules, 2, "nothing deleted, nothing bumped");
    assert!(h.store.delete_alert_rule("r").await.unwrap());
    assert_eq!(h.store.cache_revisions().await.unwrap().alert_rules, 3);

    let transition = AlertTransition { state: state("r", "ok", 1), from_revision: None, event: None };
    h.store.transition_alert(&transition, None).await.unwrap().unwrap();
    h.store.set_alert_state(&state("r", "firing", 2)).await.unwrap();
    h.store.delete_alert_state("r").await.unwrap();
    assert_eq!(h.store.cache_revisions().await.unwrap().alert_states, 3);

    let waiver = WaiverRecord {
        id: "w1".into(),
        entity_ref: "component:default/a".into(),
        expires_ms: 2,
        created_ms: 1,
        body: "{}".into(),
    };
    h.store.put_waiver(&waiver).await.unwrap();
    assert!(h.store.delete_waiver("w1").await.unwrap());
    assert!(!h.store.delete_waiver("w1").await.unwrap());
    assert_eq!(h.store.cache_revisions().await.unwrap().waivers, 2);
}
