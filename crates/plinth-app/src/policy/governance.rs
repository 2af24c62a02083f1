//! The live governance view: for every entity, the `catalog`-point decision
//! and its scorecards. Built from the catalogue projection at start and on
//! every policy reload, then kept current from the catalogue's change stream
//! (an entity and those whose context includes it are re-evaluated).

use super::context;
use super::service::PolicyService;
use plinth_catalog::CatalogState;
use plinth_policy::scorecard::{self, ScorecardDef, ScorecardResult, LEVELS};
use plinth_policy::{attach_context, Decision, EvalRequest, Outcome, Point};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

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
    pub cards: Vec<CardSummary>,
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
    pub entities: HashMap<String, EntitySummary>,
    /// Policy revision the view was computed with.
    pub revision: String,
    /// False while the first full evaluation runs.
    pub complete: bool,
    pub evaluated_at: Option<OffsetDateTime>,
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
        self.entities.get(&key.to_lowercase())
    }

    /// Roll-ups per owner and scorecard; `owner` narrows to one team.
    pub fn rollups(&self, owner: Option<&str>, defs: &[ScorecardDef]) -> Vec<TeamRollup> {
        let owner = owner.map(str::to_lowercase);
        let mut rollups: BTreeMap<(String, u16), TeamRollup> = BTreeMap::new();
        for summary in self.entities.values() {
            let Some(team) = &summary.owner else { continue };
            if owner.as_deref().is_some_and(|o| o != team.as_ref()) {
                continue;
            }
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
        let mut counts = BTreeMap::new();
        for summary in self.entities.values() {
            *counts.entry(summary.result.as_str()).or_default() += 1;
        }
        counts
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

/// The full results of one entity, evaluated now.
pub fn detail(service: &PolicyService, key: &str) -> Option<EntityGovernance> {
    let state = service.catalog.read();
    evaluate_entity(service, &state, &key.to_lowercase()).map(|(governance, _, _)| governance)
}

/// Evaluates one entity (the catalogue read lock held by the caller).
fn evaluate_entity(
    service: &PolicyService,
    state: &CatalogState,
    key: &str,
) -> Option<(EntityGovernance, Value, Vec<String>)> {
    let record = state.get(key)?;
    let compiled = service.compiled.load();
    let entity: Value = serde_json::from_str(&state.render_json(record)).ok()?;
    let mut refs = vec![key.to_string()];
    for r in context::named_refs(&entity, &[]) {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    let entities = context::resolve(state, &refs);
    let now = OffsetDateTime::now_utc();
    let input = attach_context(
        entity,
        json!({
            "point": "catalog",
            "environment": record.summary.lifecycle,
            "user": null,
            "profile": null,
            "now": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "catalog": true,
            "entities": entities,
        }),
    );
    let waivers = service.waivers.load();
    let request = EvalRequest {
        point: Point::Catalog,
        input: &input,
        profile: None,
        waivers: &waivers,
        entities: &refs[..1],
        now,
    };
    let decision = compiled.engine.evaluate(&request);
    let scorecards = scorecard::evaluate(&compiled.engine, &compiled.scorecards, &record.summary.kind, &input);
    let owner = record
        .summary
        .owner
        .as_deref()
        .and_then(|o| plinth_model::parse_ref_lenient(o, Some("group")).ok())
        .map(|r| r.key());
    let governance = EntityGovernance {
        entity_ref: key.to_string(),
        decision,
        scorecards,
        owner,
        kind: record.summary.kind.to_lowercase(),
    };
    Some((governance, input, refs))
}

/// Entities per chunk evaluated under one catalogue read lock.
const CHUNK: usize = 512;

/// Re-evaluates every entity (start, policy reload, lagging behind).
pub async fn rebuild(service: &Arc<PolicyService>) {
    let started = std::time::Instant::now();
    let keys: Vec<String> = service.catalog.read().entities().map(|r| r.key.to_string()).collect();
    let mut fresh = HashMap::with_capacity(keys.len());
    // Chunks run on the blocking pool, as many at once as there are cores,
    // each under its own short catalogue read lock.
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut chunks = keys.chunks(CHUNK).map(<[String]>::to_vec);
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < parallel {
            let Some(chunk) = chunks.next() else { break };
            let service = Arc::clone(service);
            running.spawn_blocking(move || {
                let state = service.catalog.read();
                let compiled = service.compiled.load();
                chunk
                    .iter()
                    .filter_map(|k| {
                        evaluate_entity(&service, &state, k)
                            .map(|(g, _, _)| (k.clone(), summarise(&g, &compiled.scorecards)))
                    })
                    .collect::<Vec<_>>()
            });
        }
        match running.join_next().await {
            Some(results) => fresh.extend(results.unwrap_or_default()),
            None => break,
        }
    }
    let revision = service.compiled.load().engine.revision().to_string();
    let count = fresh.len();
    let mut view = service.view.write();
    view.entities = fresh;
    view.revision = revision;
    view.complete = true;
    view.evaluated_at = Some(OffsetDateTime::now_utc());
    drop(view);
    tracing::info!(entities = count, elapsed_ms = started.elapsed().as_millis() as u64, "governance view evaluated");
}

/// Entities whose context includes `key`: it and those that point at it
/// with one of the relations a context follows.
fn affected(state: &CatalogState, key: &str) -> Vec<String> {
    let mut keys = vec![key.to_string()];
    if let Some(node) = state.node_of(key) {
        for (rel, other) in state.relations_of(node) {
            let incoming = context::OUTGOING.iter().any(|o| plinth_model::inverse_relation(o) == Some(rel.name()));
            if incoming {
                keys.push(state.ref_of(other).to_string());
            }
        }
    }
    keys
}

/// Builds the view, then follows catalogue changes.
pub fn spawn(service: Arc<PolicyService>) {
    let mut changes = service.catalog.subscribe();
    let weak = Arc::downgrade(&service);
    tokio::spawn(async move {
        rebuild(&service).await;
        drop(service);
        loop {
            let first = changes.recv().await;
            let Some(service) = weak.upgrade() else { break };
            let mut keys: Vec<String> = Vec::new();
            let mut lagged = false;
            let mut next = Some(first);
            // Gather a burst (an ingest arrives in chunks) before evaluating:
            // until 500 ms pass without a change, at most 10 s.
            let burst = std::time::Instant::now();
            while let Some(result) = next.take() {
                match result {
                    Ok(change) => keys.push(change.entity_ref.to_lowercase()),
                    Err(RecvError::Lagged(_)) => lagged = true,
                    Err(RecvError::Closed) => return,
                }
                next = match changes.try_recv() {
                    Ok(change) => Some(Ok(change)),
                    Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                    Err(TryRecvError::Closed) => return,
                    Err(TryRecvError::Empty) if burst.elapsed() < std::time::Duration::from_secs(10) => {
                        tokio::time::timeout(std::time::Duration::from_millis(500), changes.recv()).await.ok()
                    }
                    Err(TryRecvError::Empty) => None,
                };
            }
            if lagged || keys.len() > 5_000 {
                rebuild(&service).await;
                continue;
            }
            refresh(&service, keys).await;
        }
    });
}

/// Re-evaluates changed entities and their dependents; logs the changed
/// entities' decisions (ids are deterministic, so replicas log them once).
async fn refresh(service: &Arc<PolicyService>, changed: Vec<String>) {
    let service_for_eval = Arc::clone(service);
    let outcome = tokio::task::spawn_blocking(move || {
        let service = service_for_eval;
        let state = service.catalog.read();
        let mut seen = HashSet::new();
        let mut updated = Vec::new();
        let mut removed = Vec::new();
        let mut logs = Vec::new();
        for key in &changed {
            if state.get(key).is_none() {
                removed.push(key.clone());
            }
            for k in affected(&state, key) {
                if !seen.insert(k.clone()) {
                    continue;
                }
                if let Some((governance, input, refs)) = evaluate_entity(&service, &state, &k) {
                    if changed.contains(&k) {
                        let hash = state.get(&k).map(|r| r.hash.clone()).unwrap_or_default();
                        let digest = Sha256::digest(format!("{k}|{hash}|{}", governance.decision.revision));
                        let id = uuid::Builder::from_random_bytes(digest[..16].try_into().unwrap_or([0; 16]))
                            .into_uuid()
                            .to_string();
                        logs.push((id, governance.decision.clone(), input, refs));
                    }
                    updated.push((k, summarise(&governance, &service.compiled.load().scorecards)));
                }
            }
        }
        (updated, removed, logs)
    })
    .await;
    let Ok((updated, removed, logs)) = outcome else { return };
    {
        let mut view = service.view.write();
        for key in removed {
            view.entities.remove(&key);
        }
        for (key, governance) in updated {
            view.entities.insert(key, governance);
        }
    }
    for (id, decision, input, refs) in logs {
        service.log_decision(&id, &decision, input, refs).await;
    }
}
