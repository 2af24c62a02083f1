//! Drill-downs of the governance view: which entities a rule denies or
//! warns about, which entities fail a scorecard check (per team), and what
//! one team (a Group and every group below it) owns that fails.
//!
//! Scorecard failures come straight from the view's compact summaries.
//! Rule failures need the violations, which the view does not keep: only
//! the entities the view holds as `deny` or `warn` are evaluated (through
//! the same cached [`governance::detail`] the entity pages use), at most
//! [`MAX_EXAMINED`] per request, so a page never evaluates the catalogue.

use super::governance::{self, GovernanceView};
use super::Policy;
use crate::{AppError, AppResult, Caller};
use plinth_catalog::CatalogState;
use plinth_model::EntityRef;
use plinth_policy::scorecard::LEVELS;
use plinth_policy::Outcome;
use std::collections::{BTreeMap, HashSet};

/// Most failing entities evaluated for one drill-down.
pub const MAX_EXAMINED: usize = 500;
/// Most groups one team's tree may hold (a cycle or a huge tree stops here).
pub const MAX_TEAM_GROUPS: usize = 1_000;

/// Which owners a drill-down covers.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every entity of the catalogue.
    All,
    /// Entities owned by these groups (entity keys, lower case), read
    /// through the view's owner index.
    Owners(HashSet<String>),
}

impl Scope {
    /// The view's entities in this scope: all of them, or those of each
    /// owner looked up in the view's owner index.
    fn entities<'v>(
        &'v self,
        view: &'v GovernanceView,
    ) -> Box<dyn Iterator<Item = (&'v str, &'v governance::EntitySummary)> + 'v> {
        match self {
            Scope::All => Box::new(view.iter()),
            Scope::Owners(owners) => Box::new(owners.iter().flat_map(|owner| view.owned_by(owner))),
        }
    }
}

/// One entity a rule denies or warns about.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit {
    /// The entity's key (`component:default/checkout`).
    pub entity: String,
    /// The owner's key, when the entity names one that parses.
    pub owner: Option<String>,
    /// `deny` or `warn`.
    pub effect: Outcome,
    pub message: String,
}

/// The entities one rule denies or warns about.
#[derive(Debug, Clone)]
pub struct RuleFailures {
    /// The policy id (`PL-BASE-003`), else `package.rule`.
    pub rule: String,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub policy: String,
    /// Denied first, then warned; by entity within each.
    pub hits: Vec<RuleHit>,
    pub denied: usize,
    pub warned: usize,
}

/// Rule failures over a scope.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    /// Rules with denials first, then by the number of entities, then id.
    pub rules: Vec<RuleFailures>,
    /// Entities of the scope the view holds as denied / warned.
    pub denied_entities: usize,
    pub warned_entities: usize,
    /// Failing entities left out beyond [`MAX_EXAMINED`].
    pub unexamined: usize,
    /// The governance view finished its first full evaluation.
    pub complete: bool,
}

/// The entities of one team that fail one scorecard check.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamCheckFailures {
    /// The owner's key; `None` for entities without an owner.
    pub owner: Option<String>,
    /// Entity keys, sorted.
    pub entities: Vec<String>,
}

/// One scorecard check and the entities failing it, per team.
#[derive(Debug, Clone)]
pub struct CheckFailures {
    pub scorecard: String,
    pub scorecard_title: String,
    pub check: String,
    pub title: String,
    pub level: String,
    /// Entities the check applies to in the scope.
    pub applies: usize,
    pub failing: usize,
    /// Teams with the most failing entities first.
    pub teams: Vec<TeamCheckFailures>,
}

/// A group and every group below it (`parentOf`), as lower-case keys.
pub fn team_tree(state: &CatalogState, group: &EntityRef) -> HashSet<String> {
    let parent_of = plinth_catalog::RelId::of("parentOf");
    let mut out: HashSet<String> = HashSet::new();
    let mut queue = vec![group.key()];
    while let Some(next) = queue.pop() {
        if out.len() >= MAX_TEAM_GROUPS || !out.insert(next.clone()) {
            continue;
        }
        if let Some(node) = state.node_of(&next) {
            for edge in state.graph().edges(node) {
                if Some(edge.rel) == parent_of {
                    queue.push(state.ref_of(edge.to).to_lowercase());
                }
            }
        }
    }
    out
}

impl Policy<'_> {
    /// The scope of one team: the group, its sub-teams and theirs. Not
    /// found when the catalogue has no such group.
    pub fn team_scope(&self, caller: &Caller, group: &EntityRef) -> AppResult<Scope> {
        self.read(caller)?;
        if !group.kind.eq_ignore_ascii_case("group") {
            return Err(AppError::invalid_field("team", format!("{group} is not a Group")));
        }
        let state = self.platform.catalog.read();
        if state.get(&group.key()).is_none() {
            return Err(AppError::not_found(format!("no group {group} in the catalogue")));
        }
        Ok(Scope::Owners(team_tree(&state, group)))
    }

    /// Per rule, the entities of `scope` it denies or warns about.
    pub fn rule_failures(&self, caller: &Caller, scope: &Scope) -> AppResult<Failures> {
        self.read(caller)?;
        let service = self.service()?;
        let (mut failing, complete) = {
            let view = service.view();
            let failing: Vec<(String, Outcome)> = scope
                .entities(&view)
                .filter(|(_, s)| s.result != Outcome::Allow)
                .map(|(key, s)| (key.to_string(), s.result))
                .collect();
            (failing, view.settled())
        };
        // Denied entities are examined first, so a cut keeps them.
        failing.sort_by(|a, b| (a.1 != Outcome::Deny, &a.0).cmp(&(b.1 != Outcome::Deny, &b.0)));
        let mut out = Failures {
            denied_entities: failing.iter().filter(|f| f.1 == Outcome::Deny).count(),
            warned_entities: failing.iter().filter(|f| f.1 == Outcome::Warn).count(),
            unexamined: failing.len().saturating_sub(MAX_EXAMINED),
            complete,
            ..Failures::default()
        };
        let mut rules: BTreeMap<String, RuleFailures> = BTreeMap::new();
        for (key, _) in failing.iter().take(MAX_EXAMINED) {
            let Some(detail) = governance::detail(service, key) else { continue };
            // Evaluated again now, the entity may no longer fail (its
            // context was still arriving when the view evaluated it): the
            // view and these counts take the fresh outcome.
            if let Some(before) = governance::correct(service, key, &detail) {
                for (outcome, change) in [(before, -1), (detail.decision.result, 1)] {
                    let count = match outcome {
                        Outcome::Deny => &mut out.denied_entities,
                        Outcome::Warn => &mut out.warned_entities,
                        _ => continue,
                    };
                    *count = count.saturating_add_signed(change);
                }
            }
            let mut seen: HashSet<(String, bool)> = HashSet::new();
            for violation in &detail.decision.violations {
                if violation.effect == Outcome::Allow {
                    continue;
                }
                let rule = violation.id.clone().unwrap_or_else(|| format!("{}.{}", violation.policy, violation.rule));
                // One row per (rule, entity): several messages of one rule
                // on one entity are one failure; a deny outranks a warn.
                let deny = violation.effect == Outcome::Deny;
                if !seen.insert((rule.clone(), deny)) {
                    continue;
                }
                let entry = rules.entry(rule.clone()).or_insert_with(|| RuleFailures {
                    rule,
                    title: violation.title.clone(),
                    severity: violation.severity.clone(),
                    policy: violation.policy.clone(),
                    hits: Vec::new(),
                    denied: 0,
                    warned: 0,
                });
                entry.hits.push(RuleHit {
                    entity: key.clone(),
                    owner: detail.owner.clone(),
                    effect: violation.effect,
                    message: violation.message.clone(),
                });
            }
        }
        for rule in rules.values_mut() {
            // A rule that both denies and warns one entity counts it once, as denied.
            let denied: HashSet<String> =
                rule.hits.iter().filter(|h| h.effect == Outcome::Deny).map(|h| h.entity.clone()).collect();
            rule.hits.retain(|h| h.effect == Outcome::Deny || !denied.contains(&h.entity));
            rule.hits
                .sort_by(|a, b| (a.effect != Outcome::Deny, &a.entity).cmp(&(b.effect != Outcome::Deny, &b.entity)));
            rule.denied = denied.len();
            rule.warned = rule.hits.len() - rule.denied;
        }
        let mut rules: Vec<RuleFailures> = rules.into_values().collect();
        rules.sort_by(|a, b| {
            (a.denied == 0, std::cmp::Reverse(a.hits.len()), &a.rule).cmp(&(
                b.denied == 0,
                std::cmp::Reverse(b.hits.len()),
                &b.rule,
            ))
        });
        out.rules = rules;
        Ok(out)
    }

    /// Per scorecard check, the entities of `scope` failing it, per team.
    /// Checks nothing fails are left out.
    pub fn check_failures(&self, caller: &Caller, scope: &Scope) -> AppResult<Vec<CheckFailures>> {
        self.read(caller)?;
        let service = self.service()?;
        let compiled = service.compiled();
        let defs = &compiled.scorecards;
        // (card, check) → owner → entities
        type Teams = BTreeMap<Option<String>, Vec<String>>;
        let mut failing: BTreeMap<(usize, usize), Teams> = BTreeMap::new();
        let mut applies: BTreeMap<usize, usize> = BTreeMap::new();
        {
            let view = service.view();
            for (key, summary) in scope.entities(&view) {
                for card in &summary.cards {
                    let index = card.card as usize;
                    let Some(def) = defs.get(index) else { continue };
                    *applies.entry(index).or_default() += 1;
                    for (i, _) in def.checks.iter().enumerate().take(64) {
                        if card.passed & (1 << i) == 0 {
                            failing
                                .entry((index, i))
                                .or_default()
                                .entry(summary.owner.as_deref().map(str::to_string))
                                .or_default()
                                .push(key.to_string());
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for ((card, check), teams) in failing {
            let (Some(def), Some(check_def)) = (defs.get(card), defs.get(card).and_then(|d| d.checks.get(check)))
            else {
                continue;
            };
            let mut teams: Vec<TeamCheckFailures> = teams
                .into_iter()
                .map(|(owner, mut entities)| {
                    entities.sort();
                    TeamCheckFailures { owner, entities }
                })
                .collect();
            teams.sort_by(|a, b| {
                (std::cmp::Reverse(a.entities.len()), &a.owner).cmp(&(std::cmp::Reverse(b.entities.len()), &b.owner))
            });
            out.push(CheckFailures {
                scorecard: def.id.clone(),
                scorecard_title: def.title.clone(),
                check: check_def.id.clone(),
                title: check_def.title.clone(),
                level: check_def.level.clone(),
                applies: applies.get(&card).copied().unwrap_or(0),
                failing: teams.iter().map(|t| t.entities.len()).sum(),
                teams,
            });
        }
        // Definition order: scorecards, then checks by level, as defined.
        out.sort_by_key(|c| {
            let card = defs.iter().position(|d| d.id == c.scorecard).unwrap_or(usize::MAX);
            let level = LEVELS.iter().position(|l| *l == c.level).unwrap_or(usize::MAX);
            let check = defs.get(card).and_then(|d| d.checks.iter().position(|x| x.id == c.check));
            (card, level, check.unwrap_or(usize::MAX))
        });
        Ok(out)
    }
}
