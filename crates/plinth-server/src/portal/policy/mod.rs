//! Policy results in the portal: the "Policy & scorecards" panel of entity
//! pages (one look-up in the governance view), the team roll-up of group
//! pages, and the `/policies` page (loaded policies, load problems,
//! scorecard definitions, outcome counts and active waivers).

pub(crate) mod team;

use super::view::{OwnerLink, When};
use super::{entity_href, page};
use crate::params::Params;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::catalog::CatalogState;
use plinth_app::policy::{EntityGovernance, PolicySet, TeamRollup};
use plinth_app::Caller;
use plinth_model::EntityRef;
use plinth_policy::scorecard::{ScorecardDef, LEVELS};
use plinth_policy::{Enforcement, Outcome, Violation};
use serde::Serialize;
use std::collections::BTreeMap;

fn short_revision(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

/// Deny first, then warn, then what did not count.
fn effect_rank(effect: Outcome) -> u8 {
    match effect {
        Outcome::Deny => 0,
        Outcome::Warn => 1,
        Outcome::Allow => 2,
    }
}

fn enforcement_name(enforcement: Enforcement) -> &'static str {
    match enforcement {
        Enforcement::Enforce => "enforce",
        Enforcement::Warn => "warn",
        Enforcement::DryRun => "dry-run",
    }
}

// ---------------------------------------------------------------- entity panel

/// The "Policy & scorecards" panel of an entity page. Only `enabled`
/// matters when the engine is off; the entity's results are filled in
/// when it was `evaluated`; `team` is `Some` on group pages once the
/// governance view is complete.
#[derive(Debug, Default, Serialize)]
pub(super) struct PolicyPanel {
    enabled: bool,
    /// The governance view finished its first full evaluation.
    complete: bool,
    revision: String,
    /// Policies that failed to load (and fail closed).
    problems: usize,
    evaluated: bool,
    /// The decision at the catalog point: `allow`, `warn` or `deny`.
    result: &'static str,
    /// Deny first, then warn, then what did not count.
    violations: Vec<ViolationRow>,
    denials: usize,
    warnings: usize,
    /// Violations that did not count (waived, excepted or dry-run).
    waived: usize,
    /// Packages evaluated.
    policies: usize,
    decision_revision: String,
    scorecards: Vec<ScorecardRow>,
    team: Option<Vec<TeamCard>>,
    /// On group pages: what the team and its sub-teams own that fails
    /// (the `team_failures.html` partial). The group's own result says
    /// nothing about them: a team whose entity is denied is not "allow".
    team_failures: Option<team::TeamFailuresView>,
}

/// One violation of the entity, with its policy's metadata.
#[derive(Debug, Serialize)]
struct ViolationRow {
    policy: String,
    rule: String,
    /// `deny`, `warn`, or `error` when the policy itself failed.
    kind: String,
    id: Option<String>,
    title: Option<String>,
    severity: Option<String>,
    controls: Vec<String>,
    message: String,
    rationale: Option<String>,
    /// `enforce`, `warn` or `dry-run`.
    enforcement: &'static str,
    dry_run: bool,
    /// What it did to the decision: `allow` when it did not count.
    effect: &'static str,
    /// `file:line`.
    location: String,
    excepted: bool,
    waiver: Option<WaiverNote>,
}

/// The waiver that made a violation not count.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WaiverNote {
    id: String,
    owner: OwnerLink,
    reason: String,
    expires_at: When,
}

impl ViolationRow {
    fn of(violation: &Violation, state: Option<&CatalogState>) -> ViolationRow {
        ViolationRow {
            policy: violation.policy.clone(),
            rule: violation.rule.clone(),
            kind: violation.kind.clone(),
            id: violation.id.clone(),
            title: violation.title.clone(),
            severity: violation.severity.clone(),
            controls: violation.controls.clone(),
            message: violation.message.clone(),
            rationale: violation.rationale.clone(),
            enforcement: enforcement_name(violation.enforcement),
            dry_run: violation.enforcement == Enforcement::DryRun,
            effect: violation.effect.as_str(),
            location: match violation.line {
                Some(line) => format!("{}:{line}", violation.file),
                None => violation.file.clone(),
            },
            excepted: violation.excepted,
            waiver: violation.waiver.as_ref().map(|w| WaiverNote {
                id: w.id.clone(),
                owner: OwnerLink::shown(state, &w.owner, "default"),
                reason: w.reason.clone(),
                expires_at: When::at(w.expires_at),
            }),
        }
    }
}

/// One scorecard's result for the entity.
#[derive(Debug, Serialize)]
struct ScorecardRow {
    scorecard: String,
    title: String,
    /// Highest level reached, `none` below the first.
    level: String,
    passed: usize,
    total: usize,
    checks: Vec<CheckRow>,
}

#[derive(Debug, Serialize)]
struct CheckRow {
    id: String,
    title: String,
    level: String,
    passed: bool,
    /// Why it failed.
    reasons: Vec<String>,
}

/// A team's roll-up of one scorecard over the entities it owns.
#[derive(Debug, Serialize)]
struct TeamCard {
    scorecard: String,
    title: String,
    entities: usize,
    /// Share of (entity, check) pairs passing, one decimal.
    score: String,
    /// Highest level first, then `none`, then levels the definitions do not name.
    levels: Vec<LevelCount>,
    /// In definition order, then checks the definition does not name.
    checks: Vec<RollupCheck>,
}

#[derive(Debug, Serialize)]
struct LevelCount {
    level: String,
    count: usize,
    /// Of the team's entities, rounded.
    percent: u64,
}

#[derive(Debug, Serialize)]
struct RollupCheck {
    id: String,
    title: String,
    /// Empty when the definition does not name the check.
    level: String,
    /// Entities passing it.
    passed: usize,
    total: usize,
}

/// The panel of one entity. Reads only that entity (evaluated now) and,
/// for a group, the team's roll-ups.
pub(super) fn entity_panel(app: &AppState, caller: &Caller, entity: &EntityRef) -> PolicyPanel {
    let policy = app.platform.policy();
    let Ok(status) = policy.status(caller) else {
        return PolicyPanel::default();
    };
    let mut panel = PolicyPanel {
        enabled: true,
        complete: status.complete,
        revision: short_revision(&status.view_revision).to_string(),
        problems: status.problems,
        ..PolicyPanel::default()
    };
    // The entity's own results are evaluated now (a fraction of a
    // millisecond), so the panel is exact even mid-reload.
    if let Ok(governance) = policy.entity(caller, entity) {
        let state = app.platform.catalog().view(caller).ok();
        fill_entity(&mut panel, &governance, state.as_deref());
    }
    if entity.kind.eq_ignore_ascii_case("group") && status.complete {
        if let Ok(cards) = policy.scorecards(caller, Some(entity)) {
            panel.team = Some(team_rollups(&cards.teams, &cards.scorecards));
        }
    }
    if entity.kind.eq_ignore_ascii_case("group") {
        panel.team_failures = team::team_failures(app, caller, entity, None).ok();
    }
    panel
}

fn fill_entity(panel: &mut PolicyPanel, governance: &EntityGovernance, state: Option<&CatalogState>) {
    let decision = &governance.decision;
    let mut violations: Vec<&Violation> = decision.violations.iter().collect();
    violations.sort_by_key(|v| (effect_rank(v.effect), v.id.clone(), v.rule.clone()));
    let count = |effect: Outcome| decision.violations.iter().filter(|v| v.effect == effect).count();
    panel.evaluated = true;
    panel.result = decision.result.as_str();
    panel.violations = violations.into_iter().map(|v| ViolationRow::of(v, state)).collect();
    panel.denials = count(Outcome::Deny);
    panel.warnings = count(Outcome::Warn);
    panel.waived = count(Outcome::Allow);
    panel.policies = decision.policies;
    panel.decision_revision = short_revision(&decision.revision).to_string();
    panel.scorecards = governance
        .scorecards
        .iter()
        .map(|card| ScorecardRow {
            scorecard: card.scorecard.clone(),
            title: card.title.clone(),
            level: card.level.clone().unwrap_or_else(|| "none".into()),
            passed: card.passed,
            total: card.total,
            checks: card
                .checks
                .iter()
                .map(|c| CheckRow {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    level: c.level.clone(),
                    passed: c.passed,
                    reasons: c.reasons.clone(),
                })
                .collect(),
        })
        .collect();
}

/// Roll-ups with titles from the definitions, checks in definition order.
fn team_rollups(rollups: &[TeamRollup], defs: &[ScorecardDef]) -> Vec<TeamCard> {
    rollups
        .iter()
        .map(|rollup| {
            let def = defs.iter().find(|d| d.id == rollup.scorecard);
            let mut levels: Vec<(String, usize)> = LEVELS
                .iter()
                .rev()
                .map(|level| (level.to_string(), rollup.levels.get(*level).copied().unwrap_or(0)))
                .collect();
            levels.push(("none".into(), rollup.levels.get("none").copied().unwrap_or(0)));
            for (level, count) in &rollup.levels {
                if level != "none" && !LEVELS.contains(&level.as_str()) {
                    levels.push((level.clone(), *count));
                }
            }
            let total = rollup.entities.max(1) as f64;
            let levels: Vec<LevelCount> = levels
                .into_iter()
                .map(|(level, count)| LevelCount {
                    level,
                    count,
                    percent: (count as f64 / total * 100.0).round() as u64,
                })
                .collect();
            let mut checks: Vec<RollupCheck> = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            if let Some(def) = def {
                for check in &def.checks {
                    if let Some(passed) = rollup.checks.get(&check.id) {
                        seen.push(&check.id);
                        checks.push(RollupCheck {
                            id: check.id.clone(),
                            title: check.title.clone(),
                            level: check.level.clone(),
                            passed: *passed,
                            total: rollup.entities,
                        });
                    }
                }
            }
            for (id, passed) in &rollup.checks {
                if !seen.contains(&id.as_str()) {
                    checks.push(RollupCheck {
                        id: id.clone(),
                        title: id.clone(),
                        level: String::new(),
                        passed: *passed,
                        total: rollup.entities,
                    });
                }
            }
            TeamCard {
                scorecard: rollup.scorecard.clone(),
                title: def.map_or(rollup.scorecard.as_str(), |d| d.title.as_str()).to_string(),
                entities: rollup.entities,
                score: format!("{:.1}", rollup.score),
                levels,
                checks,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- /policies

/// The `/policies` page. Only `title` and `enabled` matter when the engine
/// is off.
#[derive(Debug, Default, Serialize)]
struct PoliciesView {
    title: &'static str,
    enabled: bool,
    /// Revision of the loaded set, shortened.
    revision: String,
    loaded_at: When,
    /// Policy roots (directories, git URLs).
    sources: Vec<String>,
    problems: Vec<ProblemRow>,
    profiles: Vec<ProfileGroup>,
    scorecards: Vec<ScorecardDefRow>,
    /// Catalog-point results, deny, warn and allow.
    outcomes: Vec<OutcomeCount>,
    /// The governance view finished its first full evaluation.
    complete: bool,
    /// Entities evaluated in the governance view.
    evaluated: usize,
    evaluated_at: Option<When>,
    /// Active waivers, soonest expiry first.
    waivers: Vec<WaiverRow>,
    /// Per rule, the entities it denies or warns about.
    failures: team::RuleFailuresView,
    /// Per scorecard check, the failing entities by team.
    checks: team::CheckFailuresView,
}

/// A policy file that failed to load.
#[derive(Debug, Serialize)]
struct ProblemRow {
    /// `file[:line]`.
    location: String,
    message: String,
    package: Option<String>,
    /// Enforcement points depending on it; empty: every point.
    points: Vec<String>,
}

/// The packages of one workload profile (`general`: none declared).
#[derive(Debug, Serialize)]
struct ProfileGroup {
    profile: String,
    packages: Vec<PackageRow>,
    /// Rules over all its packages.
    rules: usize,
}

#[derive(Debug, Serialize)]
struct PackageRow {
    package: String,
    title: Option<String>,
    /// Enforcement points; empty: every point.
    points: Vec<&'static str>,
    rules: Vec<RuleRow>,
}

#[derive(Debug, Serialize)]
struct RuleRow {
    rule: String,
    kind: &'static str,
    id: Option<String>,
    title: Option<String>,
    severity: Option<String>,
    controls: Vec<String>,
    /// `enforce`, `warn` or `dry-run`.
    enforcement: &'static str,
    rationale: Option<String>,
    /// `file:line`.
    location: String,
}

/// A scorecard definition.
#[derive(Debug, Serialize)]
struct ScorecardDefRow {
    id: String,
    title: String,
    description: Option<String>,
    /// Kinds it applies to; empty: every kind.
    kinds: Vec<String>,
    checks: Vec<CheckDefRow>,
}

#[derive(Debug, Serialize)]
struct CheckDefRow {
    id: String,
    title: String,
    level: String,
    description: Option<String>,
}

#[derive(Debug, Serialize)]
struct OutcomeCount {
    result: &'static str,
    count: usize,
}

/// An active waiver.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WaiverRow {
    id: String,
    entity: String,
    /// The entity's page when the reference parses.
    href: Option<String>,
    rule: String,
    owner: OwnerLink,
    reason: String,
    expires_at: When,
}

pub(super) async fn policies_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let policy = app.platform.policy();
    let show = params.one("show");
    let drill = || -> Option<(team::RuleFailuresView, team::CheckFailuresView)> {
        let scope = plinth_app::policy::drilldown::Scope::All;
        let failures = policy.rule_failures(&caller, &scope).ok()?;
        let checks = policy.check_failures(&caller, &scope).ok()?;
        let state = app.platform.catalog().view(&caller).ok()?;
        Some((
            team::rule_view(&state, &failures, "/policies", show),
            team::check_view(&state, &checks, "/policies", show, failures.complete),
        ))
    };
    let (failures, checks) = drill().unwrap_or_default();
    let state = app.platform.catalog().view(&caller).ok();
    let view =
        match (policy.status(&caller), policy.outcomes(&caller), policy.policies(&caller), policy.waivers(&caller)) {
            (Ok(status), Ok(counts), Ok(set), Ok(waivers)) => {
                let outcomes: Vec<OutcomeCount> = ["deny", "warn", "allow"]
                    .into_iter()
                    .map(|result| OutcomeCount { result, count: counts.get(result).copied().unwrap_or(0) })
                    .collect();
                let mut waivers: Vec<WaiverRow> = waivers
                    .iter()
                    .filter(|w| w.active)
                    .map(|w| {
                        let w = &w.waiver;
                        let href = plinth_model::parse_ref_lenient(&w.entity, Some("component"))
                            .ok()
                            .map(|r| entity_href(&r.to_string()));
                        WaiverRow {
                            id: w.id.clone(),
                            entity: w.entity.clone(),
                            href,
                            rule: w.rule.clone(),
                            owner: OwnerLink::shown(state.as_deref(), &w.owner, "default"),
                            reason: w.reason.clone(),
                            expires_at: When::at(w.expires_at),
                        }
                    })
                    .collect();
                waivers.sort_by(|a, b| a.expires_at.iso.cmp(&b.expires_at.iso));
                PoliciesView {
                    title: "Policies",
                    enabled: true,
                    revision: short_revision(&set.revision).to_string(),
                    loaded_at: When::at(set.loaded_at),
                    sources: set.sources.clone(),
                    problems: problem_rows(&set),
                    profiles: profile_groups(&set),
                    scorecards: set.scorecards.iter().map(scorecard_def_row).collect(),
                    outcomes,
                    complete: status.complete,
                    evaluated: status.evaluated,
                    evaluated_at: status.evaluated_at.map(When::at),
                    waivers,
                    failures,
                    checks,
                }
            }
            _ => PoliciesView { title: "Policies", ..PoliciesView::default() },
        };
    page(StatusCode::OK, "policies.html", &view)
}

fn problem_rows(set: &PolicySet) -> Vec<ProblemRow> {
    set.problems
        .iter()
        .map(|p| ProblemRow {
            location: match p.line {
                Some(line) => format!("{}:{line}", p.file),
                None => p.file.clone(),
            },
            message: p.message.clone(),
            package: p.package.clone(),
            points: p.points.clone(),
        })
        .collect()
}

/// Policies grouped by workload profile (`baseline`, `agent`, …); packages
/// without one are listed under "general".
fn profile_groups(set: &PolicySet) -> Vec<ProfileGroup> {
    let mut profiles: BTreeMap<String, Vec<PackageRow>> = BTreeMap::new();
    for summary in &set.policies {
        let rules: Vec<RuleRow> = summary
            .rules
            .iter()
            .map(|r| RuleRow {
                rule: r.rule.clone(),
                kind: r.kind,
                id: r.id.clone(),
                title: r.title.clone(),
                severity: r.severity.clone(),
                controls: r.controls.clone(),
                enforcement: enforcement_name(r.enforcement),
                rationale: r.rationale.clone(),
                location: format!("{}:{}", r.file, r.line),
            })
            .collect();
        let profile = summary.profile.clone().unwrap_or_else(|| "general".into());
        profiles.entry(profile).or_default().push(PackageRow {
            package: summary.package.clone(),
            title: summary.title.clone(),
            points: summary.points.iter().map(|p| p.as_str()).collect(),
            rules,
        });
    }
    profiles
        .into_iter()
        .map(|(profile, packages)| {
            let rules = packages.iter().map(|p| p.rules.len()).sum();
            ProfileGroup { profile, packages, rules }
        })
        .collect()
}

fn scorecard_def_row(def: &ScorecardDef) -> ScorecardDefRow {
    ScorecardDefRow {
        id: def.id.clone(),
        title: def.title.clone(),
        description: def.description.clone(),
        kinds: def.kinds.clone(),
        checks: def
            .checks
            .iter()
            .map(|c| CheckDefRow {
                id: c.id.clone(),
                title: c.title.clone(),
                level: c.level.clone(),
                description: c.description.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An evaluated panel with every optional part present and absent
    /// somewhere: for render tests of the entity page.
    pub(in crate::portal) fn evaluated_panel() -> PolicyPanel {
        let violation = |id: Option<&str>, waived: bool| ViolationRow {
            policy: "plinth.baseline.owners".into(),
            rule: "deny_unowned".into(),
            kind: "deny".into(),
            id: id.map(str::to_string),
            title: id.map(|_| "Has an owner".to_string()),
            severity: id.map(|_| "high".to_string()),
            controls: id.map(|_| vec!["SOC2-CC6.1".to_string()]).unwrap_or_default(),
            message: "no owner".into(),
            rationale: id.map(|_| "someone answers for it".to_string()),
            enforcement: if waived { "dry-run" } else { "enforce" },
            dry_run: waived,
            effect: if waived { "allow" } else { "deny" },
            location: "owners.rego:3".into(),
            excepted: false,
            waiver: waived.then(|| WaiverNote {
                id: "w-1".into(),
                owner: OwnerLink { label: "Operations".into(), href: Some("/catalog/default/group/ops".into()) },
                reason: "migrating".into(),
                expires_at: When::at(time::macros::datetime!(2030-01-01 00:00 UTC)),
            }),
        };
        PolicyPanel {
            enabled: true,
            complete: true,
            revision: "abc".into(),
            problems: 1,
            evaluated: true,
            result: "deny",
            violations: vec![violation(Some("PL-1"), false), violation(None, true)],
            denials: 1,
            warnings: 0,
            waived: 1,
            policies: 3,
            decision_revision: "abc".into(),
            scorecards: vec![ScorecardRow {
                scorecard: "basics".into(),
                title: "Basics".into(),
                level: "none".into(),
                passed: 0,
                total: 1,
                checks: vec![CheckRow {
                    id: "owner".into(),
                    title: "Owner".into(),
                    level: "bronze".into(),
                    passed: false,
                    reasons: vec!["no owner".into()],
                }],
            }],
            team: Some(vec![TeamCard {
                scorecard: "basics".into(),
                title: "Basics".into(),
                entities: 2,
                score: "50.0".into(),
                levels: vec![LevelCount { level: "bronze".into(), count: 1, percent: 50 }],
                checks: vec![RollupCheck {
                    id: "x".into(),
                    title: "x".into(),
                    level: String::new(),
                    passed: 1,
                    total: 2,
                }],
            }]),
            team_failures: Some(team::TeamFailuresView::default()),
        }
    }

    /// A panel of an entity not evaluated yet, mid first evaluation.
    pub(in crate::portal) fn pending_panel() -> PolicyPanel {
        PolicyPanel { enabled: true, team: Some(Vec::new()), ..PolicyPanel::default() }
    }

    fn render(view: &PoliciesView) -> String {
        let chrome = crate::portal::Chrome {
            view,
            asset_version: "test",
            nav: "policies",
            header_q: "",
            session: Default::default(),
        };
        let template = crate::portal::templates().get_template("policies.html").expect("the template");
        template.render(minijinja::Value::from_serialize(&chrome)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn policies_page_renders_every_optional_part() {
        assert!(render(&PoliciesView { title: "Policies", ..PoliciesView::default() }).contains("policy-disabled"));
        let view = PoliciesView {
            title: "Policies",
            enabled: true,
            revision: "abc".into(),
            loaded_at: When::at(time::macros::datetime!(2030-01-01 00:00 UTC)),
            sources: vec!["./policies".into()],
            problems: vec![
                ProblemRow { location: "a.rego:1".into(), message: "bad".into(), package: None, points: Vec::new() },
                ProblemRow {
                    location: "b.rego".into(),
                    message: "bad".into(),
                    package: Some("p".into()),
                    points: vec!["catalog".into()],
                },
            ],
            profiles: vec![ProfileGroup {
                profile: "general".into(),
                packages: vec![PackageRow {
                    package: "p".into(),
                    title: None,
                    points: Vec::new(),
                    rules: vec![RuleRow {
                        rule: "deny_x".into(),
                        kind: "deny",
                        id: None,
                        title: None,
                        severity: None,
                        controls: Vec::new(),
                        enforcement: "dry-run",
                        rationale: None,
                        location: "p.rego:2".into(),
                    }],
                }],
                rules: 1,
            }],
            scorecards: vec![ScorecardDefRow {
                id: "basics".into(),
                title: "Basics".into(),
                description: None,
                kinds: Vec::new(),
                checks: vec![CheckDefRow {
                    id: "owner".into(),
                    title: "Owner".into(),
                    level: "bronze".into(),
                    description: None,
                }],
            }],
            outcomes: vec![OutcomeCount { result: "deny", count: 1 }],
            complete: false,
            evaluated: 1,
            evaluated_at: None,
            waivers: vec![WaiverRow {
                id: "w-1".into(),
                entity: "nonsense ref".into(),
                href: None,
                rule: "PL-1".into(),
                owner: OwnerLink::new("ops", "default"),
                reason: "migrating".into(),
                expires_at: When::at(time::macros::datetime!(2030-01-01 00:00 UTC)),
            }],
            failures: Default::default(),
            checks: Default::default(),
        };
        let html = render(&view);
        assert!(html.contains(r#"data-waiver="w-1""#) && html.contains("every point"), "{html}");
        assert!(
            html.contains(r#"<td><a class="entity-link owner-link" href="/catalog/default/group/ops">ops</a></td>"#),
            "the waiver's owner is shown as every owner is: {html}"
        );
        assert!(html.contains(r#"<time datetime="2030-01-01T00:00:00Z" title="2030-01-01 00:00:00 UTC">"#), "{html}");
    }
}
