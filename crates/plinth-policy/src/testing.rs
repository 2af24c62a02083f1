//! `plinth policy test`: runs `test_` rules as `opa test` does. A test passes
//! when its rule evaluates to `true`; `todo_` rules are reported as skipped.
//! Mocks use Rego's own `with` keyword, so nothing here knows about them.

use crate::bundle::{LoadProblem, PolicyBundle};
use crate::engine::{locate_error, EngineOptions, PolicyEngine};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// `data.plinth.baseline.containers_test.test_privileged_denied`.
    pub name: String,
    pub package: String,
    pub file: String,
    pub line: usize,
    pub outcome: TestOutcome,
    pub duration_us: u64,
    /// Why it failed (the value it produced, or the error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the test printed with `print`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    Pass,
    Fail,
    Error,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
    /// Files that did not load: a broken policy fails the run.
    pub problems: Vec<LoadProblem>,
}

impl TestReport {
    pub fn count(&self, outcome: TestOutcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }

    pub fn success(&self) -> bool {
        self.problems.is_empty() && self.count(TestOutcome::Fail) == 0 && self.count(TestOutcome::Error) == 0
    }
}

/// Runs the tests in `bundle`; `filter` is `--run`, matched against the
/// full test name (`data.pkg.test_x`).
pub fn run_tests(bundle: &PolicyBundle, filter: Option<&regex::Regex>, options: EngineOptions) -> TestReport {
    let engine = PolicyEngine::build_with_tests(bundle, options);
    let loaded: std::collections::HashSet<&str> = bundle
        .files
        .iter()
        .map(|f| f.display.as_str())
        .filter(|d| !engine.problems().iter().any(|p| p.file == *d))
        .collect();
    let mut results = Vec::new();
    for file in bundle.files.iter().filter(|f| loaded.contains(f.display.as_str())) {
        let Some(package) = &file.scan.package else { continue };
        for rule in &file.scan.rules {
            let skip = rule.name.starts_with("todo_");
            if !skip && !rule.name.starts_with("test_") {
                continue;
            }
            let name = format!("data.{package}.{}", rule.name);
            if filter.is_some_and(|f| !f.is_match(&name)) {
                continue;
            }
            if skip {
                results.push(TestResult {
                    name,
                    package: package.clone(),
                    file: file.display.clone(),
                    line: rule.line,
                    outcome: TestOutcome::Skip,
                    duration_us: 0,
                    message: None,
                    output: Vec::new(),
                });
                continue;
            }
            let mut instance = engine.instance();
            instance.set_input(regorus::Value::Undefined);
            let started = Instant::now();
            let value = instance.eval_rule(name.clone());
            let duration_us = started.elapsed().as_micros() as u64;
            let output = instance.take_prints().unwrap_or_default();
            let (outcome, message) = match value {
                Ok(regorus::Value::Bool(true)) => (TestOutcome::Pass, None),
                Ok(regorus::Value::Undefined) => {
                    (TestOutcome::Fail, Some("the test's body was not satisfied (undefined)".to_string()))
                }
                Ok(other) => (
                    TestOutcome::Fail,
                    Some(format!("expected true, got {}", other.to_json_str().unwrap_or_default().trim())),
                ),
                Err(error) => {
                    let (_, line, message) = locate_error(&error.to_string());
                    let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
                    (TestOutcome::Error, Some(format!("{message}{at}")))
                }
            };
            results.push(TestResult {
                name,
                package: package.clone(),
                file: file.display.clone(),
                line: rule.line,
                outcome,
                duration_us,
                message,
                output,
            });
        }
    }
    TestReport { results, problems: engine.problems().to_vec() }
}
