//! The shipped policy library (`policies/`) passes its own unit tests, and
//! every rule and scorecard check is tested both ways: its unit tests
//! depend on it firing for some input and on it staying quiet for another,
//! and the engine, given those same inputs, reports the rule's id for the
//! first and not for the second.

use plinth_policy::testing::{run_tests, TestOutcome};
use plinth_policy::{scorecard, EngineOptions, EvalRequest, Input, Point, PolicyBundle, PolicyEngine};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The shipped library: part of the repository, so a missing one fails.
fn policies() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    assert!(dir.is_dir(), "the shipped policy library is missing at {}", dir.display());
    dir
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

// ---------------------------------------------------------------------------
// Tested both ways: mutants of each rule, killed by the unit tests
// ---------------------------------------------------------------------------

/// A rule or scorecard check: `(package, rule name)`.
type Target = (String, String);

const MARK: &str = "PLINTH-MUTANT";
const RENAMED: &str = "__plinth_orig_";

/// What replaces a rule `R` (renamed `__plinth_orig_R`): the same value
/// unless `data.__plinth_mutant` names it. The `never` mutant suppresses
/// every value it produces; the `always` mutant makes it fire where it was
/// quiet. Each mutant prints the input on which it changed the value.
const WRAPPER: &str = r#"
RULE := ORIG if {
	not data.__plinth_mutant.target == "KEY"
}

RULE := set() if {
	data.__plinth_mutant == {"target": "KEY", "mode": "never"}
	count(ORIG) > 0
	print("MARK", json.marshal(input))
}

RULE := ORIG if {
	data.__plinth_mutant == {"target": "KEY", "mode": "never"}
	count(ORIG) == 0
}

RULE := {"plinth mutant"} if {
	data.__plinth_mutant == {"target": "KEY", "mode": "always"}
	count(ORIG) == 0
	print("MARK", json.marshal(input))
}

RULE := ORIG if {
	data.__plinth_mutant == {"target": "KEY", "mode": "always"}
	count(ORIG) > 0
}
"#;

/// A column-0 rule head of `rule` (`rule contains msg if {`).
fn is_head(line: &str, rule: &str) -> bool {
    line.strip_prefix(rule).is_some_and(|rest| rest.starts_with([' ', '[', '\t']))
}

/// Copies the library from `source` to `target` with every target rule
/// renamed and replaced by [`WRAPPER`]. Returns the rule heads renamed per
/// target.
fn instrument(source: &Path, target: &Path, targets: &BTreeSet<Target>) -> BTreeMap<Target, usize> {
    let mut renamed: BTreeMap<Target, usize> = targets.iter().map(|t| (t.clone(), 0)).collect();
    let mut wrapped: BTreeSet<Target> = BTreeSet::new();
    let mut stack = vec![source.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let destination = target.join(path.strip_prefix(source).unwrap());
            if path.is_dir() {
                std::fs::create_dir_all(&destination).unwrap();
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rego") || name.ends_with("_test.rego") {
                std::fs::copy(&path, &destination).unwrap();
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let package = text
                .lines()
                .find_map(|l| l.strip_prefix("package "))
                .unwrap_or_else(|| panic!("{} has no package line", path.display()))
                .trim()
                .to_string();
            let mine: Vec<&Target> = targets.iter().filter(|(p, _)| *p == package).collect();
            let mut out = String::with_capacity(text.len() + 1024);
            for line in text.lines() {
                if let Some(target) = mine.iter().find(|(_, rule)| is_head(line, rule)) {
                    *renamed.get_mut(*target).unwrap() += 1;
                    out.push_str(RENAMED);
                }
                out.push_str(line);
                out.push('\n');
            }
            for target in mine {
                let rule = &target.1;
                if text.lines().any(|l| is_head(l, rule)) && wrapped.insert(target.clone()) {
                    out.push_str(
                        &WRAPPER
                            .replace("ORIG", &format!("{RENAMED}{rule}"))
                            .replace("RULE", rule)
                            .replace("KEY", &format!("{package}/{rule}"))
                            .replace("MARK", MARK),
                    );
                }
            }
            std::fs::write(&destination, out).unwrap();
        }
    }
    renamed
}

/// The unit tests of the instrumented library, run as `plinth policy test`
/// runs them: a test passes when its rule evaluates to `true`.
struct UnitTests {
    template: regorus::Engine,
    /// `(data.pkg.test_x, text of its file)`.
    tests: Vec<(String, String)>,
}

impl UnitTests {
    fn load(library: &Path) -> UnitTests {
        let bundle = PolicyBundle::load(&[library.to_path_buf()]);
        let engine = PolicyEngine::build_with_tests(&bundle, EngineOptions { vm: false, ..Default::default() });
        assert!(engine.problems().is_empty(), "the instrumented library did not load: {:?}", engine.problems());
        let mut tests = Vec::new();
        for file in bundle.files.iter().filter(|f| f.is_test) {
            let package = file.scan.package.as_deref().unwrap_or_else(|| panic!("{} has no package", file.display));
            for rule in file.scan.rules.iter().filter(|r| r.name.starts_with("test_")) {
                tests.push((format!("data.{package}.{}", rule.name), file.text.clone()));
            }
        }
        UnitTests { template: engine.debug_instance(), tests }
    }

    /// Runs the tests (only those in files that name `rule`, when given)
    /// with `data.__plinth_mutant` set to `mutant`; returns the failing
    /// tests with the inputs the mutant changed a value for.
    fn failures(&self, mutant: Option<Value>, rule: Option<&str>) -> Vec<(String, Vec<String>)> {
        let mut template = self.template.clone();
        if let Some(mutant) = mutant {
            template.add_data(regorus::Value::from(json!({"__plinth_mutant": mutant}))).unwrap();
        }
        let mut failures = Vec::new();
        for (name, _) in self.tests.iter().filter(|(_, text)| rule.is_none_or(|r| text.contains(r))) {
            let mut instance = template.clone();
            // The prepared engine keeps what the load-time probe printed.
            instance.take_prints().unwrap();
            instance.set_input(regorus::Value::Undefined);
            if matches!(instance.eval_rule(name.clone()), Ok(regorus::Value::Bool(true))) {
                continue;
            }
            let inputs = instance
                .take_prints()
                .unwrap()
                .iter()
                .filter_map(|line| line.split_once(MARK).map(|(_, input)| input.trim().to_string()))
                .filter(|input| input != "<undefined>")
                .collect();
            failures.push((name.clone(), inputs));
        }
        failures
    }
}

/// Whether the engine's decision on `input` at any of `points` carries a
/// deny or warn violation with policy id `id`.
fn fires(engine: &PolicyEngine, points: &[Point], input: &Value, id: &str) -> bool {
    points.iter().any(|point| {
        engine
            .evaluate(&EvalRequest::new(*point, &Input::from_json(input)))
            .violations
            .iter()
            .any(|v| v.id.as_deref() == Some(id) && (v.kind == "deny" || v.kind == "warn"))
    })
}

/// Whether the check `check` of `card` fails on `input` (`None`: the
/// scorecard does not apply to the input's kind).
fn check_fails(
    engine: &PolicyEngine,
    cards: &[scorecard::ScorecardDef],
    card: &str,
    check: &str,
    input: &Value,
) -> Option<bool> {
    let kind = input["kind"].as_str().unwrap_or("");
    let results = scorecard::evaluate(engine, cards, kind, &Input::from_json(input));
    let result = results.iter().find(|r| r.scorecard == card)?;
    let check = result.checks.iter().find(|c| c.id == check)?;
    Some(!check.passed)
}

#[test]
fn every_rule_has_metadata_and_is_tested_both_ways() {
    // The library's unit tests that set data with `with` use the demo
    // company's registries and quotas; the engine that must agree with them
    // loads the same data over the neutral defaults.
    let demo_data = policies().join("../examples/demo/policy-data");
    let bundle = PolicyBundle::load(&[policies(), demo_data]);
    let engine = PolicyEngine::build(&bundle, EngineOptions::default());
    assert!(engine.problems().is_empty(), "{:?}", engine.problems());
    let summaries = engine.summaries();
    let scorecards = scorecard::definitions(&engine);

    // Metadata.
    let mut ids = BTreeSet::new();
    let mut targets: BTreeSet<Target> = BTreeSet::new();
    for policy in &summaries {
        for rule in &policy.rules {
            let id =
                rule.id.as_deref().unwrap_or_else(|| panic!("{}.{} has no METADATA id", policy.package, rule.rule));
            assert!(ids.insert(id.to_string()), "policy id {id} is used twice");
            assert!(rule.severity.is_some(), "{id} has no severity");
            assert!(!rule.controls.is_empty(), "{id} lists no controls");
            assert!(rule.rationale.as_deref().is_some_and(|r| !r.is_empty()), "{id} has no rationale");
            targets.insert((policy.package.clone(), rule.rule.clone()));
        }
    }
    assert!(ids.len() >= 35, "{} rules", ids.len());
    let titles: Vec<&str> = scorecards.iter().map(|s| s.title.as_str()).collect();
    assert!(titles.contains(&"Production readiness") && titles.contains(&"AI governance"), "{titles:?}");
    for card in &scorecards {
        for check in &card.checks {
            targets.insert((card.package.clone(), format!("check_{}", check.id)));
        }
    }

    // The instrumented copy behaves as the library does until a mutant is on.
    let copy = tempfile::tempdir().unwrap();
    for (target, heads) in instrument(&policies(), copy.path(), &targets) {
        assert!(heads > 0, "no rule head of {}.{} found to instrument", target.0, target.1);
    }
    let tests = UnitTests::load(copy.path());
    assert!(tests.tests.len() >= 140, "only {} unit tests", tests.tests.len());
    let failing = tests.failures(None, None);
    assert!(failing.is_empty(), "unit tests fail on the instrumented library: {failing:?}");

    // For each rule, both mutants must be killed, and the engine must agree
    // with the killing tests on an input the mutant changed.
    let mut problems = Vec::new();
    for (package, rule) in &targets {
        let key = format!("{package}/{rule}");
        let policy = summaries.iter().find(|p| p.package == *package);
        let summary = policy.and_then(|p| p.rules.iter().find(|r| r.rule == *rule));
        let points = match policy {
            Some(p) if !p.points.is_empty() => p.points.clone(),
            _ => Point::ALL.to_vec(),
        };
        let card = scorecards.iter().find(|c| c.package == *package);
        for (mode, fired) in [("never", true), ("always", false)] {
            let killers = tests.failures(Some(json!({"target": key, "mode": mode})), Some(rule));
            let way = if fired { "fires" } else { "stays quiet" };
            if killers.is_empty() {
                problems.push(format!("{package}.{rule}: no unit test depends on it when it {way}"));
                continue;
            }
            let inputs: BTreeSet<&String> = killers.iter().flat_map(|(_, inputs)| inputs).collect();
            let agrees = |text: &&String| -> bool {
                let input: Value = serde_json::from_str(text).unwrap();
                match (summary, card) {
                    (Some(summary), _) => fires(&engine, &points, &input, summary.id.as_deref().unwrap()) == fired,
                    (None, Some(card)) => {
                        check_fails(&engine, &scorecards, &card.id, rule.trim_start_matches("check_"), &input)
                            == Some(fired)
                    }
                    (None, None) => unreachable!("{package}.{rule} is neither a rule nor a check"),
                }
            };
            if !inputs.iter().any(agrees) {
                let names: Vec<&String> = killers.iter().map(|(name, _)| name).collect();
                problems.push(format!(
                    "{package}.{rule}: the unit tests that depend on it when it {way} ({names:?}) use no input \
                     on which the engine {}",
                    if fired { "reports it" } else { "leaves it out" }
                ));
            }
        }
    }
    assert!(problems.is_empty(), "rules not tested both ways:\n  {}", problems.join("\n  "));
}
