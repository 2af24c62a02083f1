//! Policy results in the portal: the "Policy & scorecards" panel of entity
//! pages (one look-up in the governance view), the team roll-up of group
//! pages, and the `/policies` page (loaded policies, load problems,
//! scorecard definitions, outcome counts and active waivers).

use super::{entity_href, page};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::policy::{EntityGovernance, PolicySet, TeamRollup};
use plinth_app::Caller;
use plinth_model::EntityRef;
use plinth_policy::scorecard::{ScorecardDef, LEVELS};
use plinth_policy::{Outcome, Violation};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_default()
}

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

fn violation_json(violation: &Violation) -> Value {
    let mut value = serde_json::to_value(violation).unwrap_or(Value::Null);
    value["location"] = json!(match violation.line {
        Some(line) => format!("{}:{line}", violation.file),
        None => violation.file.clone(),
    });
    value["dry_run"] = json!(violation.enforcement == plinth_policy::Enforcement::DryRun);
    if let Some(waiver) = &violation.waiver {
        value["waiver"]["expiresAt"] = json!(rfc3339(waiver.expires_at));
    }
    value
}

/// The panel of one entity. Reads only that entity (evaluated now) and,
/// for a group, the team's roll-ups.
pub(super) fn entity_panel(app: &AppState, caller: &Caller, entity: &EntityRef) -> Value {
    let policy = app.platform.policy();
    let Ok(status) = policy.status(caller) else {
        return json!({"enabled": false});
    };
    let mut panel = json!({
        "enabled": true,
        "complete": status.complete,
        "revision": short_revision(&status.view_revision),
        "problems": status.problems,
    });
    // The entity's own results are evaluated now (a fraction of a
    // millisecond), so the panel is exact even mid-reload.
    if let Ok(governance) = policy.entity(caller, entity) {
        panel["evaluated"] = json!(true);
        fill_entity(&mut panel, &governance);
    }
    if entity.kind.eq_ignore_ascii_case("group") && status.complete {
        if let Ok(cards) = policy.scorecards(caller, Some(entity)) {
            panel["team"] = team_rollups(&cards.teams, &cards.scorecards);
        }
    }
    panel
}

fn fill_entity(panel: &mut Value, governance: &EntityGovernance) {
    let decision = &governance.decision;
    let mut violations: Vec<&Violation> = decision.violations.iter().collect();
    violations.sort_by_key(|v| (effect_rank(v.effect), v.id.clone(), v.rule.clone()));
    let count = |effect: Outcome| decision.violations.iter().filter(|v| v.effect == effect).count();
    let scorecards: Vec<Value> = governance
        .scorecards
        .iter()
        .map(|card| {
            let checks: Vec<Value> = card
                .checks
                .iter()
                .map(|c| {
                    json!({"id": c.id, "title": c.title, "level": c.level, "passed": c.passed, "reasons": c.reasons})
                })
                .collect();
            json!({
                "scorecard": card.scorecard,
                "title": card.title,
                "level": card.level.as_deref().unwrap_or("none"),
                "passed": card.passed,
                "total": card.total,
                "checks": checks,
            })
        })
        .collect();
    panel["result"] = json!(decision.result.as_str());
    panel["violations"] = Value::Array(violations.into_iter().map(violation_json).collect());
    panel["denials"] = json!(count(Outcome::Deny));
    panel["warnings"] = json!(count(Outcome::Warn));
    panel["waived"] = json!(count(Outcome::Allow));
    panel["policies"] = json!(decision.policies);
    panel["decision_revision"] = json!(short_revision(&decision.revision));
    panel["scorecards"] = Value::Array(scorecards);
}

/// Roll-ups with titles from the definitions, checks in definition order.
fn team_rollups(rollups: &[TeamRollup], defs: &[ScorecardDef]) -> Value {
    let cards: Vec<Value> = rollups
        .iter()
        .map(|rollup| {
            let def = defs.iter().find(|d| d.id == rollup.scorecard);
            let mut levels: Vec<Value> = LEVELS
                .iter()
                .rev()
                .map(|level| json!({"level": level, "count": rollup.levels.get(*level).copied().unwrap_or(0)}))
                .collect();
            levels.push(json!({"level": "none", "count": rollup.levels.get("none").copied().unwrap_or(0)}));
            for (level, count) in &rollup.levels {
                if level != "none" && !LEVELS.contains(&level.as_str()) {
                    levels.push(json!({"level": level, "count": count}));
                }
            }
            let total = rollup.entities.max(1) as f64;
            let levels: Vec<Value> = levels
                .into_iter()
                .map(|mut l| {
                    let count = l["count"].as_u64().unwrap_or(0) as f64;
                    l["percent"] = json!((count / total * 100.0).round() as u64);
                    l
                })
                .collect();
            let mut checks: Vec<Value> = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            if let Some(def) = def {
                for check in &def.checks {
                    if let Some(passed) = rollup.checks.get(&check.id) {
                        seen.push(&check.id);
                        checks.push(json!({"id": check.id, "title": check.title, "level": check.level,
                                           "passed": passed, "total": rollup.entities}));
                    }
                }
            }
            for (id, passed) in &rollup.checks {
                if !seen.contains(&id.as_str()) {
                    checks
                        .push(json!({"id": id, "title": id, "level": "", "passed": passed, "total": rollup.entities}));
                }
            }
            json!({
                "scorecard": rollup.scorecard,
                "title": def.map_or(rollup.scorecard.as_str(), |d| d.title.as_str()),
                "entities": rollup.entities,
                "score": format!("{:.1}", rollup.score),
                "levels": levels,
                "checks": checks,
            })
        })
        .collect();
    Value::Array(cards)
}

// ---------------------------------------------------------------- /policies

pub(super) async fn policies_page(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let policy = app.platform.policy();
    let context =
        match (policy.status(&caller), policy.outcomes(&caller), policy.policies(&caller), policy.waivers(&caller)) {
            (Ok(status), Ok(counts), Ok(set), Ok(waivers)) => {
                let outcomes: Vec<Value> = ["deny", "warn", "allow"]
                    .iter()
                    .map(|o| json!({"result": o, "count": counts.get(o).copied().unwrap_or(0)}))
                    .collect();
                let mut waivers: Vec<Value> = waivers
                    .iter()
                    .filter(|w| w.active)
                    .map(|w| {
                        let w = &w.waiver;
                        let href = plinth_model::parse_ref_lenient(&w.entity, Some("component"))
                            .ok()
                            .map(|r| entity_href(&r.to_string()));
                        json!({
                            "id": w.id,
                            "entity": w.entity,
                            "href": href,
                            "rule": w.rule,
                            "owner": w.owner,
                            "reason": w.reason,
                            "expiresAt": rfc3339(w.expires_at),
                            "createdBy": w.created_by,
                            "createdAt": rfc3339(w.created_at),
                        })
                    })
                    .collect();
                waivers.sort_by(|a, b| a["expiresAt"].as_str().cmp(&b["expiresAt"].as_str()));
                json!({
                    "title": "Policies",
                    "enabled": true,
                    "revision": short_revision(&set.revision),
                    "view_revision": short_revision(&status.view_revision),
                    "loaded_at": rfc3339(set.loaded_at),
                    "sources": set.sources,
                    "problems": problems_json(&set),
                    "profiles": profiles_json(&set),
                    "scorecards": set.scorecards,
                    "outcomes": outcomes,
                    "complete": status.complete,
                    "evaluated": status.evaluated,
                    "evaluated_at": status.evaluated_at.map(rfc3339),
                    "waivers": waivers,
                })
            }
            _ => json!({"title": "Policies", "enabled": false}),
        };
    page(StatusCode::OK, "policies.html", context)
}

fn problems_json(set: &PolicySet) -> Vec<Value> {
    set.problems
        .iter()
        .map(|p| {
            json!({
                "location": match p.line {
                    Some(line) => format!("{}:{line}", p.file),
                    None => p.file.clone(),
                },
                "message": p.message,
                "package": p.package,
                "points": p.points,
            })
        })
        .collect()
}

/// Policies grouped by workload profile (`baseline`, `agent`, …); packages
/// without one are listed under "general".
fn profiles_json(set: &PolicySet) -> Vec<Value> {
    let mut profiles: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for summary in &set.policies {
        let rules: Vec<Value> = summary
            .rules
            .iter()
            .map(|r| {
                json!({
                    "rule": r.rule,
                    "kind": r.kind,
                    "id": r.id,
                    "title": r.title,
                    "severity": r.severity,
                    "controls": r.controls,
                    "enforcement": r.enforcement,
                    "rationale": r.rationale,
                    "location": format!("{}:{}", r.file, r.line),
                })
            })
            .collect();
        let points: Vec<&str> = summary.points.iter().map(|p| p.as_str()).collect();
        let profile = summary.profile.clone().unwrap_or_else(|| "general".into());
        profiles.entry(profile).or_default().push(json!({
            "package": summary.package,
            "title": summary.title,
            "points": points,
            "rules": rules,
        }));
    }
    profiles
        .into_iter()
        .map(|(profile, packages)| {
            let rules: usize = packages.iter().map(|p| p["rules"].as_array().map_or(0, Vec::len)).sum();
            json!({"profile": profile, "packages": packages, "rules": rules})
        })
        .collect()
}
