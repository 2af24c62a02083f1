//! The live governance view: for every entity, the `catalog`-point decision
//! and its scorecards. Built from the catalogue projection at start and on
//! every policy reload, then kept current from the catalogue's change stream
//! (an entity and those whose context includes it are re-evaluated).

use super::context;
use super::service::PolicyService;
use indexmap::IndexMap;
use plinth_catalog::CatalogState;
use plinth_policy::scorecard::{self, ScorecardDef, ScorecardResult, LEVELS};
use plinth_policy::{Context, Decision, EvalRequest, Input, Outcome, Point};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use time::OffsetDateTime;

/// One entity's governance results in full (computed on demand).
#[derive(Debug, Clone, Serialize)]
pub struct EntityGovernance {
    #[serde(rename = "entityRef")]
    pub entity_ref: String,
    pub decision: Decision,
    pub scorecards: Vec<ScorecardResult>,
    #[serde(skip)]
    pub owner: Option<String>,
    #[serde(skip)]
    pub kind: String,
}

/// What the view keeps per entity: enough for roll-ups and counts, a few
/// dozen bytes, so 100k entities cost megabytes, not hundreds of them. The
/// full results are evaluated again when a page or the API asks.
#[derive(Debug, Clone)]
pub struct EntitySummary {
    pub result: Outcome,
    pub owner: Option<Arc<str>>,
    pub cards: Box<[CardSummary]>,
}

#[derive(Debug, Clone, Copy)]
pub struct CardSummary {
    /// Index into the compiled scorecard definitions.
    pub card: u16,
    /// Index into `LEVELS` of the level reached.
    pub level: Option<u8>,
    /// Bit `i` set: the definition's check `i` passes.
    pub passed: u64,
}

#[derive(Debug, Default)]
pub struct GovernanceView {
    /// Per entity key, its summary. Changed only through [`Self::insert`],
    /// [`Self::remove`] and [`Self::retain`], which keep the two indexes
    /// below in step. An `IndexMap`: its entries sit in one vector (64
    /// bytes each, its spare capacity never touched) beside a table of
    /// indexes (9 bytes a slot). A `HashMap` keeps the entries themselves
    /// in a table at most 7/8 full and grown by doubling: for a million
    /// entities 2^21 slots of 65 bytes (136 MB, every page touched), and
    /// growing into it held the old table as well, the moment of the
    /// million's peak memory. Here the million costs about 83 MB.
    entities: IndexMap<Arc<str>, EntitySummary>,
    /// Per owner, the keys of the entities it owns: a team's page reads
    /// its own entities, not the whole view. The owner `Arc` is shared
    /// with the summaries.
    by_owner: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Entities per catalog-point outcome.
    outcomes: BTreeMap<&'static str, usize>,
    /// Policy revision the view was computed with.
    pub revision: String,
    /// False while the first full evaluation runs.
    pub complete: bool,
    /// Entities queued for evaluation or being evaluated now (after a
    /// catalogue change, a reload or a waiver change).
    pub pending: usize,
    pub evaluated_at: Option<OffsetDateTime>,
}

impl GovernanceView {
    /// Whether the results are those of the whole catalogue as it is: the
    /// first full evaluation has finished and nothing is queued. The first
    /// evaluation can finish on a catalogue still being ingested (it starts
    /// with the server), so `complete` alone is not enough: every ingest
    /// chunk, reload or waiver change counts its entities as pending.
    pub fn settled(&self) -> bool {
        self.complete && self.pending == 0
    }
}

/// Per team (owner) roll-up of one scorecard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TeamRollup {
    pub owner: String,
    pub scorecard: String,
    pub entities: usize,
    /// Entities per level reached (`none` for below bronze).
    pub levels: BTreeMap<String, usize>,
    /// Per check: how many entities pass it.
    pub checks: BTreeMap<String, usize>,
    /// Share of (entity, check) pairs passing, 0–100.
    pub score: f64,
}

impl GovernanceView {
    pub fn get(&self, key: &str) -> Option<&EntitySummary> {
        self.entities.get(key.to_lowercase().as_str())
    }

    /// Entities with results.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every entity's key and summary, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &EntitySummary)> {
        self.entities.iter().map(|(k, s)| (&**k, s))
    }

    /// The entities `owner` (a lower-case key) owns, in no order.
    pub fn owned_by<'a>(&'a self, owner: &str) -> impl Iterator<Item = (&'a str, &'a EntitySummary)> + 'a {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|key| self.entities.get_key_value(key).map(|(k, s)| (&**k, s)))
    }

    /// Puts (or replaces) an entity's summary. The key is best the
    /// catalogue's own `Arc` (as [`evaluate_keys`] passes it): the view then
    /// holds no copy of a million keys.
    pub(crate) fn insert(&mut self, key: impl Into<Arc<str>>, mut summary: EntitySummary) {
        let key: Arc<str> = key.into();
        self.remove(&key);
        if let Some(owner) = summary.owner.take() {
            let owner = match self.by_owner.get_key_value(&*owner) {
                Some((shared, _)) => shared.clone(),
                None => owner,
            };
            self.by_owner.entry(owner.clone()).or_default().insert(key.clone());
            summary.owner = Some(owner);
        }
        *self.outcomes.entry(summary.result.as_str()).or_default() += 1;
        self.entities.insert(key, summary);
    }

    /// Takes an entity out; returns its summary when it had one.
    pub(crate) fn remove(&mut self, key: &str) -> Option<EntitySummary> {
        let (key, summary) = self.entities.swap_remove_entry(key)?;
        if let Some(owner) = &summary.owner {
            if let Some(keys) = self.by_owner.get_mut(&**owner) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.by_owner.remove(&**owner);
                }
            }
        }
        if let Some(count) = self.outcomes.get_mut(summary.result.as_str()) {
            *count -= 1;
            if *count == 0 {
                self.outcomes.remove(summary.result.as_str());
            }
        }
        Some(summary)
    }

    /// Keeps only the entities `keep` says yes to.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<Arc<str>> = self.entities.keys().filter(|k| !keep(k)).cloned().collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// Roll-ups per owner and scorecard; `owner` narrows to one team.
    pub fn rollups(&self, owner: Option<&str>, defs: &[ScorecardDef]) -> Vec<TeamRollup> {
        let owner = owner.map(str::to_lowercase);
        let mut rollups: BTreeMap<(String, u16), TeamRollup> = BTreeMap::new();
        let summaries: Box<dyn Iterator<Item = &EntitySummary>> = match &owner {
            Some(owner) => Box::new(self.owned_by(owner).map(|(_, s)| s)),
            None => Box::new(self.entities.values()),
        };
        for summary in summaries {
            let Some(team) = &summary.owner else { continue };
            for card in &summary.cards {
                let Some(def) = defs.get(card.card as usize) else { continue };
                let rollup = rollups.entry((team.to_string(), card.card)).or_insert_with(|| TeamRollup {
                    owner: team.to_string(),
                    scorecard: def.id.clone(),
                    entities: 0,
                    levels: BTreeMap::new(),
                    checks: def.checks.iter().map(|c| (c.id.clone(), 0)).collect(),
                    score: 0.0,
                });
                rollup.entities += 1;
                let level = card.level.and_then(|l| LEVELS.get(l as usize)).map_or("none", |l| l);
                *rollup.levels.entry(level.to_string()).or_default() += 1;
                let mut passed = 0;
                for (i, check) in def.checks.iter().enumerate().take(64) {
                    if card.passed & (1 << i) != 0 {
                        passed += 1;
                        *rollup.checks.entry(check.id.clone()).or_default() += 1;
                    }
                }
                rollup.score += passed as f64 / def.checks.len().max(1) as f64;
            }
        }
        rollups
            .into_values()
            .map(|mut r| {
                r.score = (r.score / r.entities.max(1) as f64 * 1000.0).round() / 10.0;
                r
            })
            .collect()
    }

    /// Counts of catalog-point results.
    pub fn outcome_counts(&self) -> BTreeMap<&'static str, usize> {
        self.outcomes.clone()
    }
}

/// The compact form of an entity's results.
fn summarise(governance: &EntityGovernance, defs: &[ScorecardDef]) -> EntitySummary {
    let cards = governance
        .scorecards
        .iter()
        .filter_map(|result| {
            let card = defs.iter().position(|d| d.id == result.scorecard)?;
            let mut passed = 0u64;
            for (i, check) in defs[card].checks.iter().enumerate().take(64) {
                if result.checks.iter().any(|c| c.id == check.id && c.passed) {
                    passed |= 1 << i;
                }
            }
            let level = result.level.as_deref().and_then(|l| LEVELS.iter().position(|x| *x == l)).map(|l| l as u8);
            Some(CardSummary { card: card as u16, level, passed })
        })
        .collect();
    EntitySummary { result: governance.decision.result, owner: governance.owner.as_deref().map(Arc::from), cards }
}

/// The full results of one entity: evaluated now, or remembered from an
/// evaluation against the same catalogue, policies and waivers (a hub's
/// context makes its evaluation cost tens of milliseconds per page view).
pub fn detail(service: &PolicyService, key: &str) -> Option<EntityGovernance> {
    let key = key.to_lowercase();
    let now = OffsetDateTime::now_utc();
    let (revision, waivers) = (service.compiled.load().engine.revision().to_string(), service.waivers.load_full());
    let stamp = |seq| DetailStamp {
        seq,
        revision: revision.clone(),
        waivers: waivers.clone(),
        minute: now.unix_timestamp() / 60,
    };
    // Looked up before the input is read: reading a hub's input (its body
    // with every relation, and its context) is most of the evaluation.
    let current = stamp(service.catalog.read().last_seq);
    if let Some((at, governance)) = service.details.lock().get(&key) {
        if *at == current {
            return Some(governance.clone());
        }
    }
    let (prepared, seq) = {
        let state = service.catalog.read();
        (prepare(&state, &service.context_cache, &key, now), state.last_seq)
    };
    let stamp = stamp(seq);
    let governance = evaluate_prepared(service, &prepared?, now);
    let mut details = service.details.lock();
    if details.len() >= MAX_DETAILS {
        details.clear();
    }
    details.insert(key, (stamp, governance.clone()));
    Some(governance)
}

/// Puts a fresh [`detail`] of `key` into the view when the view holds an
/// older outcome for it. The view's result for an entity can lag behind
/// the catalogue while the entities its context names are still arriving
/// (a first ingest), until their change reaches it; a page that has just
/// evaluated the entity again should not show counts that its own rule
/// list contradicts. Returns the outcome the view held before, if it
/// changed.
pub fn correct(service: &PolicyService, key: &str, governance: &EntityGovernance) -> Option<Outcome> {
    let defs = &service.compiled.load().scorecards;
    let mut view = service.view.write();
    let (key, before) = view.entities.get_key_value(key).map(|(k, s)| (Arc::clone(k), s.result))?;
    if before == governance.decision.result {
        return None;
    }
    view.insert(key, summarise(governance, defs));
    Some(before)
}

/// What a remembered [`detail`] was computed from. Rules may read the
/// time, so results are not reused across minutes.
/// The stamp holds the waiver list it saw, so its address cannot be
/// reused by a later list while the stamp exists.
#[derive(Debug, Clone)]
pub(crate) struct DetailStamp {
    seq: i64,
    revision: String,
    waivers: Arc<Vec<plinth_policy::Waiver>>,
    minute: i64,
}

impl PartialEq for DetailStamp {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.revision == other.revision
            && Arc::ptr_eq(&self.waivers, &other.waivers)
            && self.minute == other.minute
    }
}

/// Most entities whose full results are remembered.
const MAX_DETAILS: usize = 512;

/// What evaluating one entity needs from the catalogue, read under its
/// lock; the evaluation itself runs after the lock is released.
struct Prepared {
    /// The catalogue's key (shared with its record).
    key: Arc<str>,
    /// The entity with its context under `plinth`, converted for the engine
    /// from parts the context cache shares between entities.
    input: Input,
    refs: Vec<String>,
    kind: String,
    owner: Option<String>,
    /// The entity's content hash (decision-log ids derive from it).
    hash: String,
}

fn prepare(state: &CatalogState, cache: &context::ContextCache, key: &str, now: OffsetDateTime) -> Option<Prepared> {
    let record = state.get(key)?;
    let entity: Value = serde_json::from_str(&state.render_json(record)).ok()?;
    let mut refs = vec![key.to_string()];
    for r in context::named_refs(&entity, &[]) {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    let docs = crate::catalog::docs::policy_fact(&entity, &record.managed_by);
    let plinth = Context {
        point: Point::Catalog,
        environment: record.summary.lifecycle.as_deref(),
        user: None,
        profile: None,
        now,
        catalog: true,
    }
    .to_input(context::resolve_input(state, &refs, Some(key), cache), Some(Input::from_json(&docs)));
    let mut input = Input::from_json(&entity);
    input.insert("plinth", plinth);
    let owner = record
        .summary
        .owner
        .as_deref()
        .and_then(|o| plinth_model::parse_ref_lenient(o, Some("group")).ok())
        .map(|r| r.key());
    Some(Prepared {
        key: Arc::clone(&record.key),
        input,
        refs,
        kind: record.summary.kind.to_lowercase(),
        owner,
        hash: record.hash.clone(),
    })
}

fn evaluate_prepared(service: &PolicyService, prepared: &Prepared, now: OffsetDateTime) -> EntityGovernance {
    let compiled = service.compiled.load();
    let waivers = service.waivers.load();
    let request = EvalRequest {
        point: Point::Catalog,
        input: &prepared.input,
        profile: None,
        waivers: &waivers,
        entities: &prepared.refs[..1],
        now,
    };
    let decision = compiled.engine.evaluate(&request);
    let scorecards = scorecard::evaluate(&compiled.engine, &compiled.scorecards, &prepared.kind, &prepared.input);
    EntityGovernance {
        entity_ref: prepared.key.to_string(),
        decision,
        scorecards,
        owner: prepared.owner.clone(),
        kind: prepared.kind.clone(),
    }
}

/// Entities evaluated per background slice. A slice takes a few tens of
/// milliseconds of one core, offering it to requests between entities
/// ([`crate::background::give_way`]).
const SLICE: usize = 48;

/// One entity's new results (`None`: it is gone) and, for an entity that
/// itself changed, its decision-log record. The record is made in the
/// slice that evaluated it, as JSON text: the input with its context as a
/// `serde_json::Value` is about five times larger, and a burst logs up to
/// 5,000 decisions (measured at 10k entities: 160 MB of such values alive
/// at once, most of the server's peak heap).
struct Evaluated {
    key: Arc<str>,
    summary: Option<EntitySummary>,
    log: Option<plinth_store::DecisionRecord>,
}

/// Evaluates `keys` on the background pool, in slices that give way to
/// requests; entities in `logged` also yield their decision-log record
/// (ids are deterministic, so replicas log a change once).
/// The caller counts the keys as pending before (see [`count_pending`])
/// and takes them off when their results are in the view (see [`apply`]).
async fn evaluate_keys(service: &Arc<PolicyService>, keys: Vec<Arc<str>>, logged: HashSet<String>) -> Vec<Evaluated> {
    let for_slices = Arc::clone(service);
    let evaluated = service
        .background
        .map_slices(keys, SLICE, move |slice: &[Arc<str>]| {
            let service = &for_slices;
            let now = OffsetDateTime::now_utc();
            let compiled = service.compiled.load();
            slice
                .iter()
                .map(|key| {
                    // Each entity is read under the catalogue's lock on its
                    // own, and the core is offered to requests between steps.
                    crate::background::give_way();
                    let prepared = prepare(&service.catalog.read(), &service.context_cache, key, now);
                    crate::background::give_way();
                    let Some(prepared) = prepared else {
                        return Evaluated { key: Arc::clone(key), summary: None, log: None };
                    };
                    let key = Arc::clone(&prepared.key);
                    let governance = evaluate_prepared(service, &prepared, now);
                    let log = logged.contains(&*key).then(|| {
                        let digest =
                            Sha256::digest(format!("{key}|{}|{}", prepared.hash, governance.decision.revision));
                        let id = uuid::Builder::from_random_bytes(digest[..16].try_into().unwrap_or([0; 16]))
                            .into_uuid()
                            .to_string();
                        service.record(
                            &id,
                            &governance.decision,
                            prepared.input.to_json(),
                            prepared.refs,
                            "plinth:catalog",
                            now,
                        )
                    });
                    Evaluated { key, summary: Some(summarise(&governance, &compiled.scorecards)), log }
                })
                .collect()
        })
        .await;
    evaluated
}

/// Counts `n` entities as pending in the view: it is not settled until
/// [`apply`] (or [`rebuild`]) takes them off again.
fn count_pending(service: &PolicyService, n: usize) {
    service.view.write().pending += n;
}

/// Which entities a policy reload must evaluate again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Nothing the catalog point or a scorecard reads changed.
    Nothing,
    /// Only packages that declare these kinds (lower case) changed.
    Kinds(std::collections::BTreeSet<String>),
    Everything,
}

/// The scope of a reload from `old` to `new`: packages whose sources
/// changed, and the data. A changed package that applies only to other
/// points re-evaluates nothing; one that declares `kinds` (the custom
/// annotation scorecards use too) re-evaluates those kinds; a changed
/// library package (no rules of its own), changed data or a changed
/// manifest re-evaluates everything.
pub fn reload_scope(old: &super::service::Compiled, new: &super::service::Compiled) -> Scope {
    if old.digests.data != new.digests.data || old.digests.other != new.digests.other {
        return Scope::Everything;
    }
    let mut names: HashSet<&String> = HashSet::new();
    for (name, digest) in &new.digests.packages {
        if old.digests.packages.get(name) != Some(digest) {
            names.insert(name);
        }
    }
    for name in old.digests.packages.keys() {
        if !new.digests.packages.contains_key(name) {
            names.insert(name);
        }
    }
    let mut kinds = std::collections::BTreeSet::new();
    for name in names {
        let plans = [old, new].map(|c| c.engine.packages().iter().find(|p| &p.name == name));
        if plans.iter().all(Option::is_none) {
            return Scope::Everything;
        }
        for plan in plans.into_iter().flatten() {
            let scorecard = [old, new].iter().any(|c| c.scorecards.iter().any(|d| &d.package == name));
            if !scorecard && !plan.points.is_empty() && !plan.points.contains(&Point::Catalog) {
                continue;
            }
            let declared = plan.annotations.as_ref().map(|a| a.custom_list("kinds")).unwrap_or_default();
            if declared.is_empty() {
                return Scope::Everything;
            }
            kinds.extend(declared.iter().map(|k| k.to_ascii_lowercase()));
        }
    }
    if kinds.is_empty() {
        Scope::Nothing
    } else {
        Scope::Kinds(kinds)
    }
}

/// Evaluates every entity (start, lagging behind the change stream) or
/// those a reload's scope names, in background slices; the view keeps
/// answering with its previous results until each is replaced.
pub async fn rebuild(service: &Arc<PolicyService>, scope: Scope) {
    let started = std::time::Instant::now();
    let keys: Vec<Arc<str>> = {
        let state = service.catalog.read();
        match &scope {
            Scope::Nothing => Vec::new(),
            Scope::Everything => state.entities().map(|r| Arc::clone(&r.key)).collect(),
            Scope::Kinds(kinds) => state
                .entities()
                .filter(|r| kinds.contains(&r.summary.kind.to_lowercase()))
                .map(|r| Arc::clone(&r.key))
                .collect(),
        }
    };
    let count = keys.len();
    count_pending(service, count);
    evaluate_in_chunks(service, keys, None).await;
    let revision = service.compiled.load().engine.revision().to_string();
    if scope == Scope::Everything {
        drop_departed(service);
    }
    let mut view = service.view.write();
    view.revision = revision;
    view.complete = true;
    view.evaluated_at = Some(OffsetDateTime::now_utc());
    drop(view);
    tracing::info!(
        scope = ?scope,
        entities = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "governance view evaluated"
    );
}

/// Re-evaluates the given entities only (a waiver changed); nothing is
/// logged, since the entities themselves did not change.
pub async fn reevaluate(service: &Arc<PolicyService>, keys: Vec<String>) {
    let keys: Vec<Arc<str>> = keys.into_iter().map(|k| Arc::from(k.to_lowercase())).collect();
    count_pending(service, keys.len());
    evaluate_in_chunks(service, keys, None).await;
}

/// Evaluates `keys` (counted as pending by the caller) a chunk at a time:
/// each chunk's results go into the view, and the decision records of its
/// entities in `logged` to the log, before the next chunk is evaluated.
/// At most a chunk's results wait in memory: at a million entities, the
/// results of all of them held at once were ~400 MiB, the server's peak.
/// The view answers with each entity's previous results until its chunk
/// is in.
async fn evaluate_in_chunks(service: &Arc<PolicyService>, keys: Vec<Arc<str>>, logged: Option<&HashSet<String>>) {
    // A logged chunk's records are several kB of JSON each.
    let chunk_len = if logged.is_some() { LOGGED_CHUNK } else { QUIET_CHUNK };
    for chunk in keys.chunks(chunk_len) {
        let logged: HashSet<String> = match logged {
            Some(logged) => chunk.iter().filter(|k| logged.contains(&***k)).map(|k| k.to_string()).collect(),
            None => HashSet::new(),
        };
        let evaluated = evaluate_keys(service, chunk.to_vec(), logged).await;
        apply(service, evaluated, chunk.len()).await;
    }
}

/// Entities per chunk of [`evaluate_in_chunks`] when nothing is logged: a
/// hundred slices, so that the wait for a chunk's last slice (when the
/// pool has fewer slices left than workers) costs about 1 %.
const QUIET_CHUNK: usize = 100 * SLICE;

/// Takes out of the view the entities the catalogue no longer holds (they
/// left while a full evaluation ran, or while the view lagged behind the
/// change stream). The view's keys are copied out first (an `Arc` each),
/// so that the view's lock and the catalogue's are never held together.
fn drop_departed(service: &PolicyService) {
    let keys: Vec<Arc<str>> = service.view.read().entities.keys().cloned().collect();
    let departed: HashSet<Arc<str>> = {
        let state = service.catalog.read();
        keys.into_iter().filter(|key| state.get(key).is_none()).collect()
    };
    if !departed.is_empty() {
        service.view.write().retain(|key| !departed.contains(key));
    }
}

/// Entities whose context includes `key`: it and those that point at it
/// with one of the relations a context follows.
fn affected(state: &CatalogState, key: &str) -> Vec<Arc<str>> {
    // The catalogue's own key where the entity exists: a burst of a
    // million changes then copies no key (a removed entity's is copied).
    let shared = |node: Option<plinth_catalog::NodeId>, key: &str| -> Arc<str> {
        node.and_then(|n| state.entity(n)).map_or_else(|| Arc::from(key), |record| Arc::clone(&record.key))
    };
    let node = state.node_of(key);
    let mut keys = vec![shared(node, key)];
    if let Some(node) = node {
        for (rel, other) in state.relations_of(node) {
            let incoming = context::OUTGOING.iter().any(|o| plinth_model::inverse_relation(o) == Some(rel.name()));
            if incoming {
                keys.push(shared(Some(other), state.ref_of(other)));
            }
        }
    }
    keys
}

/// Builds the view, then follows catalogue changes.
pub fn spawn(service: Arc<PolicyService>) {
    let mut bursts = crate::burst::Bursts::new(service.catalog.subscribe());
    let weak = Arc::downgrade(&service);
    tokio::spawn(async move {
        rebuild(&service, Scope::Everything).await;
        drop(service);
        while let Some(burst) = bursts.next().await {
            let Some(service) = weak.upgrade() else { break };
            let lagged = burst.lagged;
            let keys: Vec<String> = burst.changes.into_iter().map(|c| c.entity_ref.to_lowercase()).collect();
            if lagged {
                // Changes were missed: which entities they touched is unknown.
                rebuild(&service, Scope::Everything).await;
                continue;
            }
            // A bulk change (a first ingest, a big refresh) is evaluated
            // but not logged entity by entity.
            let logged = keys.len() <= MAX_LOGGED_BURST;
            refresh(&service, keys, logged).await;
        }
    });
}

/// Changed entities in one burst whose decisions are logged.
const MAX_LOGGED_BURST: usize = 5_000;

/// Re-evaluates changed entities and those whose context includes them,
/// and logs the changed entities' decisions.
async fn refresh(service: &Arc<PolicyService>, changed: Vec<String>, logged: bool) {
    let keys: Vec<Arc<str>> = {
        let state = service.catalog.read();
        let mut seen: HashSet<Arc<str>> = HashSet::new();
        let mut keys = Vec::new();
        for key in &changed {
            for k in affected(&state, key) {
                if seen.insert(Arc::clone(&k)) {
                    keys.push(k);
                }
            }
        }
        keys
    };
    // Only a logged burst (a few thousand at most) needs its changed keys
    // as a set.
    let logged: Option<HashSet<String>> = logged.then(|| changed.into_iter().collect());
    // Every key counts as pending from the start: the view is not settled
    // between chunks.
    count_pending(service, keys.len());
    evaluate_in_chunks(service, keys, logged.as_ref()).await;
}

/// Entities per chunk of a logged burst (see [`evaluate_in_chunks`]): ten
/// slices.
const LOGGED_CHUNK: usize = 10 * SLICE;

/// Puts results into the view, takes `settled` entities off the pending
/// count, and queues the decision-log records.
async fn apply(service: &Arc<PolicyService>, evaluated: Vec<Evaluated>, settled: usize) {
    let mut logs = Vec::new();
    {
        let mut view = service.view.write();
        view.pending = view.pending.saturating_sub(settled);
        for e in evaluated {
            match e.summary {
                Some(summary) => view.insert(e.key, summary),
                None => drop(view.remove(&e.key)),
            };
            logs.extend(e.log);
        }
    }
    for record in logs {
        service.log_decision(record).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::service::compile_dir;
    use std::path::Path;

    /// The view's per-entity cost (see `GovernanceView::entities`): a
    /// summary is the outcome, a shared owner and the boxed cards.
    #[test]
    fn a_summary_stays_forty_bytes() {
        assert_eq!(std::mem::size_of::<EntitySummary>(), 40);
    }

    /// The owner index and the outcome counts always say what a scan of
    /// every summary says, through inserts, replacements that change the
    /// owner or the outcome, removals and a retain.
    #[test]
    fn the_view_indexes_follow_every_change() {
        fn summary(owner: Option<&str>, result: Outcome) -> EntitySummary {
            EntitySummary { result, owner: owner.map(Arc::from), cards: Box::default() }
        }
        fn check(view: &GovernanceView, step: usize) {
            for owner in ["group:default/a", "group:default/b", "group:default/c"] {
                let mut indexed: Vec<&str> = view.owned_by(owner).map(|(k, _)| k).collect();
                let mut scanned: Vec<&str> =
                    view.iter().filter(|(_, s)| s.owner.as_deref() == Some(owner)).map(|(k, _)| k).collect();
                indexed.sort_unstable();
                scanned.sort_unstable();
                assert_eq!(indexed, scanned, "{owner} after step {step}");
            }
            let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
            for (_, s) in view.iter() {
                *counts.entry(s.result.as_str()).or_default() += 1;
            }
            assert_eq!(view.outcome_counts(), counts, "outcomes after step {step}");
            assert!(view.by_owner.values().all(|keys| !keys.is_empty()), "no empty owner left after step {step}");
        }
        let owners = [Some("group:default/a"), Some("group:default/b"), None, Some("group:default/c")];
        let results = [Outcome::Allow, Outcome::Warn, Outcome::Deny];
        let mut view = GovernanceView::default();
        for step in 0..600usize {
            let key = format!("component:default/svc-{}", (step * 7) % 97);
            match step % 5 {
                0..=2 => view.insert(key, summary(owners[(step / 3) % 4], results[step % 3])),
                3 => drop(view.remove(&key)),
                _ => view.insert(key, summary(owners[step % 4], results[(step / 5) % 3])),
            }
            check(&view, step);
        }
        view.retain(|key| key.ends_with('1') || key.ends_with('3'));
        check(&view, 600);
        assert!(view.iter().all(|(k, _)| k.ends_with('1') || k.ends_with('3')));
        // Summaries of one owner share one allocation of its name.
        let shared: Vec<&Arc<str>> =
            view.iter().filter_map(|(_, s)| s.owner.as_ref()).filter(|o| &***o == "group:default/a").collect();
        assert!(shared.len() > 1 && shared.windows(2).all(|w| Arc::ptr_eq(w[0], w[1])));
    }

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    fn append(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        let mut current = std::fs::read_to_string(&path).unwrap();
        current.push_str(text);
        std::fs::write(path, current).unwrap();
    }

    /// The shipped library, edited one way at a time: each edit reaches
    /// only the entities its packages can judge.
    #[test]
    fn a_reload_re_evaluates_what_its_changed_packages_reach() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("policies");
        copy(&crate::shipped::policies_dir(), &dir);
        let scope_after = |file: &str, text: &str| {
            let before = compile_dir(&dir);
            append(&dir, file, text);
            let after = compile_dir(&dir);
            assert_ne!(before.engine.revision(), after.engine.revision());
            reload_scope(&before, &after)
        };
        // Any edit to a file changes its package; a package of other
        // points only re-evaluates nothing.
        assert_eq!(scope_after("baseline/ownership.rego", "\n# edited\n"), Scope::Nothing);
        // A scorecard that declares its kinds re-evaluates those kinds.
        assert_eq!(
            scope_after("scorecards/production_readiness.rego", "\n# edited\n"),
            Scope::Kinds(["component".to_string()].into_iter().collect())
        );
        assert_eq!(
            scope_after("scorecards/ai_governance.rego", "\n# edited\n"),
            Scope::Kinds(["agent".to_string(), "model".to_string()].into_iter().collect())
        );
        // A catalog-point package without kinds, a library every package
        // may import, and the data re-evaluate everything.
        assert_eq!(scope_after("architecture/architecture.rego", "\n# edited\n"), Scope::Everything);
        assert_eq!(scope_after("lib/catalog.rego", "\n# edited\n"), Scope::Everything);
        assert_eq!(scope_after("data.yaml", "\nbench_marker: 1\n"), Scope::Everything);
        // A new package of other points: nothing; a new catalog-point one: everything.
        std::fs::write(
            dir.join("extra.rego"),
            "# METADATA\n# custom:\n#   points: [deploy]\npackage plinth.extra\n\nimport rego.v1\n\ndeny contains \"x\" if input.never\n",
        )
        .unwrap();
        let before = compile_dir(&dir);
        let _ = std::fs::remove_file(dir.join("extra.rego"));
        assert_eq!(reload_scope(&before, &compile_dir(&dir)), Scope::Nothing, "removing a deploy-only package");
    }

    /// A policy service with the shipped library over a SQLite store whose
    /// catalogue is `yaml`, one file registered as a location (the temp
    /// dir holds both; keep it alive).
    async fn service_over(yaml: &str) -> (tempfile::TempDir, Arc<plinth_catalog::Catalog>, Arc<PolicyService>) {
        let work = tempfile::tempdir().unwrap();
        let store = plinth_store::Store::open_sqlite(work.path()).await.unwrap();
        let data = work.path().join("data");
        let catalog = plinth_catalog::Catalog::open(store.clone(), plinth_catalog::CatalogConfig::new(data.clone()))
            .await
            .unwrap();
        let file = work.path().join("catalog-info.yaml");
        std::fs::write(&file, yaml).unwrap();
        catalog
            .add_location(plinth_store::NewLocation {
                kind: "file".into(),
                target: file.to_string_lossy().into_owned(),
                branch: None,
            })
            .await
            .unwrap();
        let policies = crate::shipped::policies_dir().to_string_lossy().into_owned();
        let service = PolicyService::start(
            crate::policy::service::PolicyConfig::new(vec![policies], data),
            store.clone(),
            Arc::clone(&catalog),
            crate::background::Background::new().unwrap(),
            crate::lease::Leadership::start(store, &crate::lease::LeaseConfig::default()),
        )
        .await;
        (work, catalog, service)
    }

    /// `correct` puts a fresh evaluation into the view only where the view
    /// holds a different outcome, and says what it held; an entity the
    /// view does not hold is left alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn correct_replaces_only_a_differing_outcome() {
        let (_work, _catalog, service) = service_over(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: orphan}\n\
             spec: {type: service, lifecycle: production, owner: nobody}\n",
        )
        .await;
        let key = "component:default/orphan";
        let held = || service.view.read().entities.get(key).map(|s| s.result);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while held().is_none() {
            assert!(std::time::Instant::now() < deadline, "the view never evaluated {key}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let fresh = detail(&service, key).unwrap();
        let outcome = fresh.decision.result;
        assert_eq!(held(), Some(outcome));
        let stale = if outcome == Outcome::Allow { Outcome::Deny } else { Outcome::Allow };

        // The same outcome: nothing to correct.
        assert_eq!(correct(&service, key, &fresh), None);
        // A stale outcome (its context was still arriving): replaced, and
        // the view's counts follow.
        service
            .view
            .write()
            .insert(key.to_string(), EntitySummary { result: stale, owner: None, cards: Box::default() });
        assert_eq!(service.view.read().outcome_counts().get(outcome.as_str()), None);
        assert_eq!(correct(&service, key, &fresh), Some(stale));
        assert_eq!(held(), Some(outcome));
        assert_eq!(service.view.read().outcome_counts().get(outcome.as_str()), Some(&1));
        assert_eq!(service.view.read().outcome_counts().get(stale.as_str()), None);
        assert_eq!(correct(&service, key, &fresh), None);
        // An entity the view does not hold is not added.
        assert_eq!(correct(&service, "component:default/elsewhere", &fresh), None);
        assert!(!service.view.read().entities.contains_key("component:default/elsewhere"));
    }

    /// A full evaluation of more entities than a chunk puts every entity in
    /// the view under the catalogue's own key (no copy of it), settles, and
    /// takes out an entity the catalogue no longer holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_evaluation_goes_by_chunks_and_drops_the_departed() {
        let n = QUIET_CHUNK + QUIET_CHUNK / 2;
        let mut yaml = String::new();
        for i in 0..n {
            yaml.push_str(&format!(
                "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: svc-{i}}}\n\
                 spec: {{type: service, lifecycle: production, owner: team-{}}}\n",
                i % 7
            ));
        }
        let (_work, catalog, service) = service_over(&yaml).await;
        let settled_with = |count: usize| {
            let view = service.view.read();
            view.settled() && view.len() == count
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !settled_with(n) {
            assert!(std::time::Instant::now() < deadline, "the view never settled on {n} entities");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let shares_keys = || {
            let view = service.view.read();
            let state = catalog.read();
            view.entities.keys().all(|key| state.get(key).is_some_and(|record| Arc::ptr_eq(&record.key, key)))
        };
        assert!(shares_keys(), "every key in the view is the catalogue's own");

        // An entity the catalogue does not hold (it left while the view
        // lagged) goes with the next full evaluation.
        let ghost = "component:default/ghost";
        service.view.write().insert(ghost, EntitySummary { result: Outcome::Deny, owner: None, cards: Box::default() });
        rebuild(&service, Scope::Everything).await;
        let view = service.view.read();
        assert!(view.get(ghost).is_none());
        assert_eq!(view.len(), n);
        assert_eq!(view.pending, 0);
        assert!(view.settled());
        assert_eq!(view.outcome_counts().values().sum::<usize>(), n);
        drop(view);
        assert!(shares_keys(), "replaced results keep the catalogue's keys");
    }

    /// The input the view assembles from cached, converted parts is the
    /// document the JSON path (`attach_context`) makes, on the first pass
    /// and when every part comes from the cache, and after a part changed.
    #[tokio::test]
    async fn the_assembled_input_is_the_attached_json() {
        let work = tempfile::tempdir().unwrap();
        let store = plinth_store::Store::open_sqlite(work.path()).await.unwrap();
        let catalog =
            plinth_catalog::Catalog::open(store, plinth_catalog::CatalogConfig::new(work.path().join("data")))
                .await
                .unwrap();
        let file = work.path().join("catalog-info.yaml");
        let write = |description: &str| {
            std::fs::write(
                &file,
                format!(
                    "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: team-a, description: {description}}}\nspec: {{type: team, children: []}}\n---\n\
                     apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {{name: shop}}\nspec: {{owner: team-a}}\n---\n\
                     apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: lib, labels: {{plinth.io/model: gpt}}}}\n\
                     spec: {{type: library, lifecycle: production, owner: team-a, system: shop}}\n---\n\
                     apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: web, annotations: {{plinth.io/datasets: 'docs, faq'}}}}\n\
                     spec: {{type: service, lifecycle: experimental, owner: team-a, system: shop, dependsOn: [component:lib]}}\n"
                ),
            )
            .unwrap();
        };
        write("first");
        let location = plinth_store::NewLocation {
            kind: "file".into(),
            target: file.to_string_lossy().into_owned(),
            branch: None,
        };
        catalog.add_location(location.clone()).await.unwrap();
        let cache = context::ContextCache::default();
        let now = OffsetDateTime::now_utc();
        let check = |cache: &context::ContextCache| {
            let state = catalog.read();
            let keys: Vec<String> = state.entities().map(|r| r.key.to_string()).collect();
            assert_eq!(keys.len(), 4);
            for key in keys {
                let record = state.get(&key).unwrap();
                let entity: Value = serde_json::from_str(&state.render_json(record)).unwrap();
                let prepared = prepare(&state, cache, &key, now).unwrap();
                let expected = plinth_policy::attach_context(
                    entity.clone(),
                    serde_json::json!({
                        "point": "catalog",
                        "environment": record.summary.lifecycle,
                        "user": null,
                        "profile": null,
                        "now": now.format(&time::format_description::well_known::Rfc3339).unwrap(),
                        "catalog": true,
                        "entities": context::resolve(&state, &prepared.refs),
                        "docs": crate::catalog::docs::policy_fact(&entity, &record.managed_by),
                    }),
                );
                assert_eq!(prepared.input, Input::from_json(&expected), "{key}");
                assert_eq!(prepared.input.to_json(), expected, "{key}");
            }
        };
        check(&cache);
        check(&cache);
        // The team changes: its cached conversion is not used again.
        write("second");
        catalog.add_location(location).await.unwrap();
        assert!(catalog.read().get("group:default/team-a").unwrap().body.contains("second"));
        check(&cache);
    }
}
