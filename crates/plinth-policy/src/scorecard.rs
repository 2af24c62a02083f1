//! Scorecards: packages of `check_*` rules, each with a level (bronze,
//! silver, gold) in its METADATA. A check yields the reasons it fails (a set
//! of strings, like `deny`); no reasons means it passes. An entity reaches a
//! level when every check of that level and the ones below pass.

use crate::engine::{data_ref, first, locate_error, package_field, PolicyEngine};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const LEVELS: [&str; 3] = ["bronze", "silver", "gold"];

fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| l.eq_ignore_ascii_case(level)).unwrap_or(0)
}

/// A scorecard as declared by its package METADATA.
#[derive(Debug, Clone, Serialize)]
pub struct ScorecardDef {
    pub id: String,
    pub package: String,
    pub title: String,
    pub description: Option<String>,
    /// Entity kinds it applies to (lower case); empty: every kind.
    pub kinds: Vec<String>,
    pub checks: Vec<CheckDef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckDef {
    pub id: String,
    pub title: String,
    pub level: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub level: String,
    pub passed: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScorecardResult {
    pub scorecard: String,
    pub title: String,
    /// Highest level reached (`None`: not even bronze).
    pub level: Option<String>,
    pub passed: usize,
    pub total: usize,
    pub checks: Vec<CheckResult>,
}

/// The scorecards in a compiled policy set.
pub fn definitions(engine: &PolicyEngine) -> Vec<ScorecardDef> {
    engine
        .packages()
        .iter()
        .filter(|p| !p.checks.is_empty())
        .map(|p| {
            let annotations = p.annotations.clone().unwrap_or_default();
            let last = p.name.rsplit('.').next().unwrap_or(&p.name).to_string();
            let mut checks: Vec<CheckDef> = p
                .checks
                .iter()
                .map(|c| CheckDef {
                    id: c.name.trim_start_matches("check_").to_string(),
                    title: c.title.clone().unwrap_or_else(|| c.name.trim_start_matches("check_").replace('_', " ")),
                    level: c.level.to_ascii_lowercase(),
                    description: c.description.clone(),
                })
                .collect();
            checks.sort_by_key(|c| level_rank(&c.level));
            ScorecardDef {
                id: annotations.custom_str("scorecard").map(str::to_string).unwrap_or(last.replace('_', "-")),
                package: p.name.clone(),
                title: annotations.title.clone().unwrap_or_else(|| last.replace('_', " ")),
                description: annotations.description.clone(),
                kinds: annotations.custom_list("kinds").iter().map(|k| k.to_ascii_lowercase()).collect(),
                checks,
            }
        })
        .collect()
}

/// Evaluates every scorecard that applies to an entity of `kind`; `input`
/// is the entity with its catalogue context attached.
pub fn evaluate(
    engine: &PolicyEngine,
    defs: &[ScorecardDef],
    kind: &str,
    input: &crate::engine::Input,
) -> Vec<ScorecardResult> {
    let kind = kind.to_ascii_lowercase();
    let applicable: Vec<&ScorecardDef> =
        defs.iter().filter(|d| d.kinds.is_empty() || d.kinds.contains(&kind)).collect();
    if applicable.is_empty() {
        return Vec::new();
    }
    // One evaluation for every scorecard (the input converted once); on
    // failure each check is run alone so the failure is reported on the
    // check that caused it.
    let input = input.value();
    let mut interpreter: Option<regorus::Engine> = None;
    let gathered: Option<regorus::Value> = engine
        .scorecard_dispatch(&kind)
        .and_then(|dispatch| engine.run_dispatch(dispatch, input, engine.time_limit(), &mut interpreter).ok());
    let mut results = Vec::new();
    for def in applicable {
        let index = engine.packages().iter().position(|p| p.name == def.package).unwrap_or(usize::MAX);
        let package = gathered.as_ref().map(|all| package_field(all, &index.to_string()));
        let mut checks = Vec::with_capacity(def.checks.len());
        for check in &def.checks {
            let rule = format!("check_{}", check.id);
            let reasons = match &package {
                Some(value) => reasons(&first(&package_field(value, &rule))),
                None => match interpreter
                    .get_or_insert_with(|| {
                        let mut instance = engine.instance();
                        instance.set_input(input.clone());
                        instance
                    })
                    .eval_rule(format!("{}.{rule}", data_ref(&def.package)))
                {
                    Ok(value) => reasons(&value),
                    Err(error) => vec![format!("the check failed to evaluate: {}", locate_error(&error.to_string()).2)],
                },
            };
            checks.push(CheckResult {
                id: check.id.clone(),
                title: check.title.clone(),
                level: check.level.clone(),
                passed: reasons.is_empty(),
                reasons,
            });
        }
        let mut level = None;
        for (rank, name) in LEVELS.iter().enumerate() {
            let all_pass = checks.iter().filter(|c| level_rank(&c.level) <= rank).all(|c| c.passed);
            let has_checks = checks.iter().any(|c| level_rank(&c.level) == rank);
            if !all_pass {
                break;
            }
            if has_checks {
                level = Some(name.to_string());
            }
        }
        results.push(ScorecardResult {
            scorecard: def.id.clone(),
            title: def.title.clone(),
            level,
            passed: checks.iter().filter(|c| c.passed).count(),
            total: checks.len(),
            checks,
        });
    }
    results
}

fn reasons(value: &regorus::Value) -> Vec<String> {
    match serde_json::to_value(value).unwrap_or(Value::Null) {
        Value::Bool(false) => vec!["not met".to_string()],
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => s,
                Value::Object(map) => map
                    .get("msg")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| Value::Object(map).to_string()),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => vec![s],
        _ => Vec::new(),
    }
}
