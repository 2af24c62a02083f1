//! Who may do what: every use case asks [`AccessControl::check`] with the
//! caller, a [`Permission`] and the [`Resource`] it touches, so REST, the
//! portal, the CLI and agents get the same answer.
//!
//! The rules are Rego (`package plinth.access`, shipped in
//! `policies/access/`, replaceable without a rebuild), evaluated by the
//! policy engine. What they see of the caller comes from the catalogue:
//! the user's groups (`memberOf`) and, for a resource, its owners and every
//! ancestor group of each owner (`spec.parent`), so ownership is transitive
//! down the group tree.
//!
//! Decisions are cached per (caller, permission, resource) until the
//! catalogue or the rules change; a denial is audited.

mod permission;
mod sources;

pub use permission::Permission;
pub use sources::SourcePolicy;

use parking_lot::{Mutex, RwLock};
use plinth_catalog::RelId;
use plinth_catalog::{Catalog, CatalogState};
use plinth_policy::{AccessDecision, AccessPolicy};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::{AuditLog, AuditOutcome};
use crate::{AppError, AppResult, Caller, Principal};

/// How identity is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No auth configured (a loopback listener only): a caller without
    /// identity is allowed everything; tokens presented still count.
    Local,
    /// Every caller must prove an identity; the access rules decide.
    Required,
}

/// What a permission is asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resource {
    /// The entity (or run, token, location) reference, for messages.
    pub reference: String,
    /// Who owns it (owner refs, as the catalogue resolved them).
    pub owners: Vec<String>,
    /// The owners and every ancestor group of each.
    pub owner_chain: Vec<String>,
    /// Who created it (golden-path runs).
    pub created_by: Option<String>,
    /// Whose it is (tokens).
    pub subject: Option<String>,
}

impl Resource {
    /// Nothing in particular (reads, creating something new).
    pub fn none() -> Resource {
        Resource::default()
    }

    /// A resource created by someone (a golden-path run).
    pub fn created_by(reference: impl Into<String>, created_by: Option<String>) -> Resource {
        Resource { reference: reference.into(), created_by, ..Resource::default() }
    }

    /// Something that belongs to one subject (a token).
    pub fn of_subject(reference: impl Into<String>, subject: impl Into<String>) -> Resource {
        Resource { reference: reference.into(), subject: Some(subject.into()), ..Resource::default() }
    }

    /// An entity, with its owners and their ancestor groups from the
    /// catalogue. An entity not in the catalogue has no owner (only admins
    /// may act on it).
    pub fn entity(state: &CatalogState, key: &str) -> Resource {
        let reference = state.get(key).map(|r| r.entity_ref.to_string()).unwrap_or_else(|| key.to_string());
        let mut resource = Resource { reference, ..Resource::default() };
        let Some(node) = state.node_of(key) else { return resource };
        let owned_by = RelId::of("ownedBy");
        for edge in state.graph().edges(node) {
            if Some(edge.rel) == owned_by {
                let owner = state.ref_of(edge.to).to_string();
                if !resource.owners.contains(&owner) {
                    resource.owners.push(owner);
                }
            }
        }
        resource.owner_chain = ancestors(state, &resource.owners);
        resource
    }

    /// A team (a Group): its members, and members of its ancestors, own it.
    pub fn team(state: &CatalogState, team_key: &str) -> Resource {
        let reference = state.get(team_key).map(|r| r.entity_ref.to_string()).unwrap_or_else(|| team_key.to_string());
        let owners = vec![reference.clone()];
        Resource { owner_chain: ancestors(state, &owners), owners, reference, ..Resource::default() }
    }

    /// Several entities at once (a location's): owned by whoever owns all
    /// of them — a caller must own every entity to act on the whole.
    pub fn entities(state: &CatalogState, reference: impl Into<String>, keys: &[String]) -> Vec<Resource> {
        let reference = reference.into();
        keys.iter().map(|key| Resource { reference: reference.clone(), ..Resource::entity(state, key) }).collect()
    }

    fn input(&self) -> Value {
        json!({
            "ref": self.reference,
            "owners": self.owners,
            "ownerChain": self.owner_chain,
            "createdBy": self.created_by,
            "subject": self.subject,
        })
    }
}

/// `refs` and every group above each through `childOf` (`spec.parent`),
/// in order, once each.
fn ancestors(state: &CatalogState, refs: &[String]) -> Vec<String> {
    let child_of = RelId::of("childOf");
    let mut out: Vec<String> = Vec::new();
    let mut queue: Vec<String> = refs.to_vec();
    while let Some(next) = queue.pop() {
        if out.contains(&next) || out.len() >= 64 {
            continue;
        }
        if let Some(node) = state.node_of(&next.to_lowercase()) {
            for edge in state.graph().edges(node) {
                if Some(edge.rel) == child_of {
                    queue.push(state.ref_of(edge.to).to_string());
                }
            }
        }
        out.push(next);
    }
    out
}

/// The groups a user entity is a direct member of (`memberOf`).
fn member_of(state: &CatalogState, user_ref: &str) -> Vec<String> {
    let member_of = RelId::of("memberOf");
    let Some(node) = state.node_of(&user_ref.to_lowercase()) else { return Vec::new() };
    let mut groups: Vec<String> = state
        .graph()
        .edges(node)
        .iter()
        .filter(|e| Some(e.rel) == member_of)
        .map(|e| state.ref_of(e.to).to_string())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// One cached decision's key: everything the rules see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    actor: String,
    scopes: Vec<String>,
    admin: bool,
    permission: Permission,
    resource: Resource,
}

/// The most decisions kept; the cache is cleared when it is full.
const CACHE_LIMIT: usize = 50_000;

/// The access rules and the decisions made with them.
pub struct AccessControl {
    mode: AuthMode,
    rules: RwLock<Arc<AccessPolicy>>,
    catalog: Arc<Catalog>,
    audit: Arc<AuditLog>,
    /// Groups whose members are platform admins.
    admin_groups: Vec<String>,
    sources: SourcePolicy,
    cache: Mutex<DecisionCache>,
}

#[derive(Default)]
struct DecisionCache {
    /// The catalogue sequence and rules generation the entries hold for.
    seq: i64,
    generation: u64,
    entries: HashMap<CacheKey, AccessDecision>,
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessControl").field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl AccessControl {
    pub(crate) fn new(
        mode: AuthMode,
        rules: AccessPolicy,
        catalog: Arc<Catalog>,
        audit: Arc<AuditLog>,
        admin_groups: Vec<String>,
        sources: SourcePolicy,
    ) -> AccessControl {
        AccessControl {
            mode,
            rules: RwLock::new(Arc::new(rules)),
            catalog,
            audit,
            admin_groups: admin_groups.into_iter().map(|g| g.to_lowercase()).collect(),
            sources,
            cache: Mutex::new(DecisionCache::default()),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Where the rules in force came from.
    pub fn rules_origin(&self) -> String {
        self.rules.read().origin().to_string()
    }

    /// Replaces the rules (a reload); cached decisions are dropped.
    pub fn set_rules(&self, rules: AccessPolicy) {
        *self.rules.write() = Arc::new(rules);
        let mut cache = self.cache.lock();
        cache.generation += 1;
        cache.entries.clear();
    }

    /// Refuses a source (a normalised location) the caller may not
    /// register: outside the allowed roots, or a git URL no pattern allows.
    /// Admins, Plinth itself and local mode may register anything.
    pub fn check_source(&self, caller: &Caller, kind: &str, target: &str) -> AppResult<()> {
        let exempt = matches!(caller.principal, Principal::System(_))
            || (matches!(caller.principal, Principal::Local) && self.mode == AuthMode::Local)
            || (caller.admin && caller.scopes.iter().any(|s| s == "admin"));
        if exempt {
            return Ok(());
        }
        self.sources.check(kind, target).map_err(AppError::forbidden)
    }

    /// Whether a user entity is a platform admin by group membership.
    pub fn is_admin_user(&self, user_ref: &str) -> bool {
        if self.admin_groups.is_empty() {
            return false;
        }
        let state = self.catalog.read();
        ancestors(&state, &member_of(&state, user_ref)).iter().any(|g| self.admin_groups.contains(&g.to_lowercase()))
    }

    /// The user's groups: `memberOf` and every ancestor of each.
    pub fn groups_of(&self, user_ref: &str) -> Vec<String> {
        let state = self.catalog.read();
        ancestors(&state, &member_of(&state, user_ref))
    }

    /// Decides without recording anything (the portal hides what a caller
    /// may not do).
    pub fn decide(&self, caller: &Caller, permission: Permission, resource: &Resource) -> AccessDecision {
        match (&caller.principal, self.mode) {
            (Principal::System(_), _) | (Principal::Local, AuthMode::Local) => {
                return AccessDecision { allow: true, rule: "local".into(), reason: String::new() }
            }
            (Principal::Local | Principal::Anonymous, _) => {
                return AccessDecision {
                    allow: false,
                    rule: "sign-in".into(),
                    reason: "sign in, or present a token (Authorization: Bearer …)".into(),
                }
            }
            _ => {}
        }
        let key = CacheKey {
            actor: caller.actor(),
            scopes: caller.scopes.clone(),
            admin: caller.admin,
            permission,
            resource: resource.clone(),
        };
        let seq = self.catalog.read().last_seq;
        {
            let mut cache = self.cache.lock();
            if cache.seq != seq {
                cache.seq = seq;
                cache.entries.clear();
            }
            if let Some(decision) = cache.entries.get(&key) {
                return decision.clone();
            }
        }
        let generation = self.cache.lock().generation;
        let input = self.input(caller, permission, resource);
        let decision = self.rules.read().decide(&input);
        let mut cache = self.cache.lock();
        if cache.generation == generation && cache.seq == seq {
            if cache.entries.len() >= CACHE_LIMIT {
                cache.entries.clear();
            }
            cache.entries.insert(key, decision.clone());
        }
        decision
    }

    /// The rules' input for one question.
    fn input(&self, caller: &Caller, permission: Permission, resource: &Resource) -> Value {
        let (kind, member_of) = match &caller.principal {
            Principal::User { entity_ref } => {
                let state = self.catalog.read();
                ("user", member_of(&state, entity_ref))
            }
            Principal::Service { .. } => ("service", Vec::new()),
            _ => ("anonymous", Vec::new()),
        };
        json!({
            "caller": {
                "kind": kind,
                "ref": caller.actor(),
                "admin": caller.admin,
                "scopes": caller.scopes,
                "memberOf": member_of,
            },
            "permission": permission.as_str(),
            "resource": resource.input(),
        })
    }

    /// Allows the call or refuses it: 401 without an identity, 403 naming
    /// the permission and the rule that refused. A refusal is audited (in
    /// the background: the refusal itself changes nothing).
    pub fn check(&self, caller: &Caller, permission: Permission, resource: &Resource) -> AppResult<()> {
        let decision = self.decide(caller, permission, resource);
        if decision.allow {
            return Ok(());
        }
        let (audit, who, target) = (self.audit.clone(), caller.clone(), resource.reference.clone());
        let detail = json!({"rule": decision.rule, "reason": decision.reason});
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                audit.record(&who, permission.as_str(), &target, AuditOutcome::Denied, detail).await;
            });
        }
        Err(refusal(caller, permission, &decision))
    }

    /// [`AccessControl::check`] for each of several resources (all must
    /// pass).
    pub fn check_all(&self, caller: &Caller, permission: Permission, resources: &[Resource]) -> AppResult<()> {
        resources.iter().try_for_each(|resource| self.check(caller, permission, resource))
    }
}

/// The error a refusal becomes.
fn refusal(caller: &Caller, permission: Permission, decision: &AccessDecision) -> AppError {
    if !caller.is_authenticated() {
        return AppError::unauthenticated(format!(
            "`{}` needs a signed-in caller: {}",
            permission.as_str(),
            decision.reason
        ));
    }
    AppError::forbidden(format!(
        "{} may not `{}` (rule `{}`): {}",
        caller.actor(),
        permission.as_str(),
        decision.rule,
        decision.reason
    ))
}
