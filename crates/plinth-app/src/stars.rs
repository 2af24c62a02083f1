//! Starred entities and the signed-in user's "My team" home: per user
//! stars (stored, audited like every mutation, access-checked as reads of
//! the entity), and what the user's teams own, what fails, their runs and
//! the recent changes to what they own.

use crate::access::{Permission, Resource};
use crate::audit::AuditOutcome;
use crate::policy::drilldown::{Failures, Scope};
use crate::{AppError, AppResult, Caller, Platform};
use plinth_catalog::{CatalogState, RecentChange, RelId};
use plinth_model::EntityRef;
use plinth_store::{TaskQuery, TaskRow};
use serde_json::json;
use std::collections::HashSet;
use time::OffsetDateTime;

/// Most stars one user keeps (a star beyond it is refused).
pub const MAX_STARS: usize = 500;
/// Most owned entities, runs and changes the home lists.
pub const MAX_OWNED: usize = 200;
pub const MAX_RUNS: usize = 10;
pub const MAX_CHANGES: usize = 20;

/// One starred entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Starred {
    /// The entity's key (`component:default/checkout`).
    pub entity_ref: String,
    pub starred_at: OffsetDateTime,
    /// The catalogue still has it.
    pub present: bool,
}

/// The star use cases of a signed-in user.
pub struct Stars<'a> {
    platform: &'a Platform,
}

/// What the "My team" home shows.
#[derive(Debug, Clone, Default)]
pub struct MyTeam {
    /// The user's groups (`memberOf`), keys, sorted.
    pub teams: Vec<String>,
    /// The teams and every group below them, keys.
    pub groups: usize,
    /// Entities the teams own (directly, or through a sub-team), keys,
    /// sorted by kind then name, at most [`MAX_OWNED`].
    pub owned: Vec<String>,
    pub owned_total: usize,
    /// What fails among them, by rule (`None` without policies).
    pub failures: Option<Failures>,
    /// The user's golden-path runs, newest first (`None` without golden paths).
    pub runs: Option<Vec<TaskRow>>,
    /// Recent catalogue changes to what the teams own, newest first.
    pub changes: Vec<RecentChange>,
    pub stars: Vec<Starred>,
}

impl Platform {
    /// Stars of the signed-in user.
    pub fn stars(&self) -> Stars<'_> {
        Stars { platform: self }
    }

    /// The "My team" home of a signed-in user.
    pub async fn my_team(&self, caller: &Caller) -> AppResult<MyTeam> {
        let user = signed_in(caller)?.to_string();
        self.access.check(caller, Permission::CatalogRead, &Resource::none())?;
        let (teams, groups, owned, owned_total, changes) = {
            let state = self.catalog.read();
            let teams = member_of(&state, &user);
            let groups = team_trees(&state, &teams);
            let mut owned = owned_by(&state, &groups);
            let owned_set: HashSet<&str> = owned.iter().map(String::as_str).collect();
            let changes: Vec<RecentChange> = state
                .recent()
                .filter(|c| owned_set.contains(c.entity_ref.to_lowercase().as_str()))
                .cloned()
                .collect::<Vec<_>>();
            let owned_total = owned.len();
            owned.truncate(MAX_OWNED);
            (teams, groups, owned, owned_total, changes)
        };
        let mut changes = changes;
        changes.sort_by_key(|c| std::cmp::Reverse(c.seq));
        changes.truncate(MAX_CHANGES);
        let failures = match self.policy().service() {
            Ok(_) => Some(self.policy().rule_failures(caller, &Scope::Owners(groups.iter().cloned().collect()))?),
            Err(_) => None,
        };
        let runs = match self.golden_paths().service() {
            Ok(_) => {
                let query =
                    TaskQuery { created_by: Some(caller.requester()), status: None, limit: MAX_RUNS, offset: 0 };
                Some(self.golden_paths().runs(caller, &query).await?.0)
            }
            Err(_) => None,
        };
        let stars = self.stars().list(caller).await?;
        Ok(MyTeam { teams, groups: groups.len(), owned, owned_total, failures, runs, changes, stars })
    }
}

/// The user's entity ref, or 401: stars and the home are per person.
fn signed_in(caller: &Caller) -> AppResult<&str> {
    caller.user_ref().ok_or_else(|| AppError::unauthenticated("sign in as a user to star entities and see your team"))
}

/// The groups a user is a direct member of, keys, sorted.
fn member_of(state: &CatalogState, user: &str) -> Vec<String> {
    let rel = RelId::of("memberOf");
    let Some(node) = state.node_of(&user.to_lowercase()) else { return Vec::new() };
    let mut groups: Vec<String> = state
        .graph()
        .edges(node)
        .iter()
        .filter(|e| Some(e.rel) == rel)
        .map(|e| state.ref_of(e.to).to_lowercase())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The teams and every group below each, keys, sorted.
fn team_trees(state: &CatalogState, teams: &[String]) -> Vec<String> {
    let mut all: HashSet<String> = HashSet::new();
    for team in teams {
        if let Ok(group) = plinth_model::parse_ref_lenient(team, Some("group")) {
            all.extend(crate::policy::drilldown::team_tree(state, &group));
        }
    }
    let mut all: Vec<String> = all.into_iter().collect();
    all.sort();
    all
}

/// Entities the groups own (`ownerOf`), keys, sorted by kind then name.
fn owned_by(state: &CatalogState, groups: &[String]) -> Vec<String> {
    let rel = RelId::of("ownerOf");
    let mut owned: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for group in groups {
        let Some(node) = state.node_of(group) else { continue };
        for edge in state.graph().edges(node) {
            if Some(edge.rel) == rel {
                let key = state.ref_of(edge.to).to_lowercase();
                if seen.insert(key.clone()) {
                    owned.push(key);
                }
            }
        }
    }
    owned.sort_by(|a, b| {
        let split = |k: &str| {
            let (kind, rest) = k.split_once(':').unwrap_or(("", k));
            (kind.to_string(), rest.rsplit('/').next().unwrap_or(rest).to_string())
        };
        split(a).cmp(&split(b))
    });
    owned
}

impl Stars<'_> {
    /// The entity's key and its access resource; not found when the
    /// catalogue does not have it.
    fn resource(&self, caller: &Caller, entity: &EntityRef, permission: Permission) -> AppResult<(String, Resource)> {
        let key = entity.key();
        let resource = {
            let state = self.platform.catalog.read();
            if state.get(&key).is_none() {
                return Err(crate::catalog::entity_not_found(entity));
            }
            Resource::entity(&state, &key)
        };
        self.platform.access.check(caller, permission, &resource)?;
        Ok((key, resource))
    }

    /// Stars an entity (audited). `true` when it was not starred yet.
    pub async fn star(&self, caller: &Caller, entity: &EntityRef) -> AppResult<bool> {
        let user = signed_in(caller)?;
        let (key, resource) = self.resource(caller, entity, Permission::CatalogRead)?;
        let store = self.platform.store();
        if !store.is_starred(user, &key).await? && store.list_stars(user, MAX_STARS as i64).await?.len() >= MAX_STARS {
            return Err(AppError::conflict(format!("at most {MAX_STARS} stars per user; unstar something first")));
        }
        let added = store.add_star(user, &key, OffsetDateTime::now_utc()).await?;
        if added {
            self.platform
                .record(caller, "catalog.star.create", &resource.reference, AuditOutcome::Allowed, json!({}))
                .await;
        }
        Ok(added)
    }

    /// Removes a star (audited). `true` when there was one.
    pub async fn unstar(&self, caller: &Caller, entity: &EntityRef) -> AppResult<bool> {
        let user = signed_in(caller)?;
        // An entity gone from the catalogue can still be unstarred.
        let key = entity.key();
        let resource = {
            let state = self.platform.catalog.read();
            Resource::entity(&state, &key)
        };
        self.platform.access.check(caller, Permission::CatalogRead, &Resource::none())?;
        let removed = self.platform.store().remove_star(user, &key).await?;
        if removed {
            self.platform
                .record(caller, "catalog.star.delete", &resource.reference, AuditOutcome::Allowed, json!({}))
                .await;
        }
        Ok(removed)
    }

    /// Whether the caller starred the entity (`false` for anyone not signed in as a user).
    pub async fn is_starred(&self, caller: &Caller, entity: &EntityRef) -> AppResult<bool> {
        let Some(user) = caller.user_ref() else { return Ok(false) };
        self.platform.access.check(caller, Permission::CatalogRead, &Resource::none())?;
        Ok(self.platform.store().is_starred(user, &entity.key()).await?)
    }

    /// The caller's stars, newest first.
    pub async fn list(&self, caller: &Caller) -> AppResult<Vec<Starred>> {
        let user = signed_in(caller)?;
        self.platform.access.check(caller, Permission::CatalogRead, &Resource::none())?;
        let rows = self.platform.store().list_stars(user, MAX_STARS as i64).await?;
        let state = self.platform.catalog.read();
        Ok(rows
            .into_iter()
            .map(|r| Starred {
                present: state.get(&r.entity_ref).is_some(),
                entity_ref: r.entity_ref,
                starred_at: r.created_at,
            })
            .collect())
    }
}
