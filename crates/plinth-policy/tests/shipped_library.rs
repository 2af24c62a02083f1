//! The shipped policy library (`policies/`) passes its own unit tests, and
//! every rule and scorecard check is exercised by them.

use plinth_policy::testing::{run_tests, TestOutcome};
use plinth_policy::{EngineOptions, PolicyBundle, PolicyEngine};
use std::path::PathBuf;

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[test]
fn shipped_policy_tests_pass() {
    let bundle = PolicyBundle::load(&[policies()]);
    let report = run_tests(&bundle, None, EngineOptions::default());
    let failures: Vec<_> =
        report.results.iter().filter(|r| !matches!(r.outcome, TestOutcome::Pass | TestOutcome::Skip)).collect();
    assert!(report.problems.is_empty(), "policy files failed to load: {:?}", report.problems);
    assert!(failures.is_empty(), "failing policy tests: {failures:#?}");
    assert!(report.count(TestOutcome::Pass) >= 140, "only {} tests passed", report.count(TestOutcome::Pass));
}

#[test]
fn every_rule_has_metadata_and_is_tested_both_ways() {
    let bundle = PolicyBundle::load(&[policies()]);
    let engine = PolicyEngine::build(&bundle, EngineOptions::default());
    let tests: String =
        bundle.files.iter().filter(|f| f.is_test).map(|f| f.text.as_str()).collect::<Vec<_>>().join("\n");
    let mut ids = std::collections::HashSet::new();
    for policy in engine.summaries() {
        for rule in &policy.rules {
            let id =
                rule.id.as_deref().unwrap_or_else(|| panic!("{}.{} has no METADATA id", policy.package, rule.rule));
            assert!(ids.insert(id.to_string()), "policy id {id} is used twice");
            assert!(rule.severity.is_some(), "{id} has no severity");
            assert!(!rule.controls.is_empty(), "{id} lists no controls");
            assert!(rule.rationale.as_deref().is_some_and(|r| !r.is_empty()), "{id} has no rationale");
            let mentions = tests.matches(rule.rule.as_str()).count();
            assert!(
                mentions >= 2,
                "{id} ({}) is referenced by {mentions} test(s); each rule needs a passing and a failing case",
                rule.rule
            );
        }
    }
    assert!(ids.len() >= 35, "{} rules", ids.len());
    let scorecards = plinth_policy::scorecard::definitions(&engine);
    let titles: Vec<&str> = scorecards.iter().map(|s| s.title.as_str()).collect();
    assert!(titles.contains(&"Production readiness") && titles.contains(&"AI governance"), "{titles:?}");
    for card in &scorecards {
        for check in &card.checks {
            let rule = format!("check_{}", check.id);
            assert!(tests.matches(rule.as_str()).count() >= 2, "{} {rule} needs a passing and a failing test", card.id);
        }
    }
}
