//! Waivers follow the store: every replica holds them in memory
//! ([`PolicyService::waivers`]) and reloads them when the store's waiver
//! revision moves (`crate::follow`), so a waiver granted or revoked through
//! any replica changes decisions on every replica within a second. After a
//! reload that changed something, the governance view evaluates the
//! entities whose waivers changed again.

use plinth_policy::Waiver;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::service::PolicyService;
use crate::follow::{follow as follow_store, Seen};
use crate::AppResult;

/// Starts following the store's waivers (the first load happened at start).
pub(crate) fn follow(service: &Arc<PolicyService>) {
    let seen: Arc<Seen<i64>> = Arc::new(Seen::new());
    follow_store(service, "waivers", move |service| {
        let seen = Arc::clone(&seen);
        async move { step(&service, &seen).await }
    });
}

async fn step(service: &Arc<PolicyService>, seen: &Seen<i64>) -> AppResult<()> {
    let revision = service.store().cache_revisions().await?.waivers;
    if seen.is(&revision) {
        return Ok(());
    }
    // `None`: a concurrent reload swapped first; the next poll looks again.
    if let Some(changed) = service.reload_waivers().await? {
        reevaluate(service, changed).await;
        seen.set(revision);
    }
    Ok(())
}

/// Has the governance view evaluate again the entities whose waivers
/// changed.
pub(crate) async fn reevaluate(service: &Arc<PolicyService>, keys: Vec<String>) {
    if keys.is_empty() {
        return;
    }
    tracing::debug!(entities = keys.len(), "waivers changed; evaluating their entities again");
    super::governance::reevaluate(service, keys).await;
}

/// The entity keys whose waivers differ between `before` and `after`
/// (added, removed or changed), sorted.
pub(crate) fn changed_entities(before: &[Waiver], after: &[Waiver]) -> Vec<String> {
    let old: HashMap<&str, &Waiver> = before.iter().map(|w| (w.id.as_str(), w)).collect();
    let new: HashMap<&str, &Waiver> = after.iter().map(|w| (w.id.as_str(), w)).collect();
    let mut keys = BTreeSet::new();
    for (id, waiver) in &old {
        if new.get(id) != Some(waiver) {
            keys.insert(entity_key(&waiver.entity));
        }
    }
    for (id, waiver) in &new {
        if old.get(id) != Some(waiver) {
            keys.insert(entity_key(&waiver.entity));
        }
    }
    keys.into_iter().collect()
}

/// The catalogue key of a waiver's entity ref.
fn entity_key(entity: &str) -> String {
    plinth_model::parse_ref_lenient(entity, Some("component"))
        .map(|r| r.key())
        .unwrap_or_else(|_| entity.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn waiver(id: &str, entity: &str, rule: &str) -> Waiver {
        Waiver {
            id: id.into(),
            owner: "group:default/team".into(),
            reason: "r".into(),
            entity: entity.into(),
            rule: rule.into(),
            expires_at: datetime!(2030-01-01 0:00 UTC),
            created_by: "user:default/a".into(),
            created_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    #[test]
    fn changed_entities_are_the_added_removed_and_edited() {
        let a = waiver("1", "component:default/A", "PL-1");
        let b = waiver("2", "component:default/b", "PL-1");
        let c = waiver("3", "api:default/c", "PL-2");
        let b2 = waiver("2", "component:default/b", "PL-9");
        let (ab, ac) = (vec![a.clone(), b.clone()], vec![a.clone(), c]);
        assert_eq!(changed_entities(&ab, &ab), Vec::<String>::new());
        assert_eq!(changed_entities(std::slice::from_ref(&a), &ac), ["api:default/c"]);
        assert_eq!(changed_entities(&ab, &[b2]), ["component:default/a", "component:default/b"]);
        assert_eq!(changed_entities(&[], &[waiver("4", "checkout", "x")]), ["component:default/checkout"]);
    }
}
