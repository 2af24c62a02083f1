//! The compiled policy set and decisions over it.
//!
//! A `PolicyEngine` is built once per policy revision: every file is parsed
//! by regorus, every rule evaluated once against an empty input so compile
//! errors (unknown functions, unsafe variables) surface at load time, and the
//! files that fail are left out and remembered. A decision clones the
//! prepared regorus engine (microseconds), sets the input and evaluates the
//! conftest/Gatekeeper rules of each package that applies to the point.

use crate::bundle::{package_points, LoadProblem, PolicyBundle};
use crate::decision::{AppliedWaiver, Decision, Enforcement, Outcome, Point, Violation, Waiver};
use crate::source::Annotations;
use crate::PolicyError;
use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Default time limit for one decision.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Limit for one decision (all packages together).
    pub time_limit: Duration,
    /// Enforcement mode by policy id, `package.rule` or package; wins over
    /// METADATA `custom.enforcement`.
    pub enforcement: HashMap<String, Enforcement>,
    /// Run decisions on regorus' bytecode VM (the interpreter stays the
    /// fallback and the reference the tests compare against).
    pub vm: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { time_limit: DEFAULT_TIME_LIMIT, enforcement: HashMap::new(), vm: true }
    }
}

/// A conftest rule family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Deny,
    Warn,
}

#[derive(Debug, Clone)]
struct RulePlan {
    path: String,
    name: String,
    kind: RuleKind,
    /// `privileged` for `deny_privileged`; empty for `deny`.
    suffix: String,
    id: Option<String>,
    title: Option<String>,
    severity: Option<String>,
    controls: Vec<String>,
    rationale: Option<String>,
    enforcement: Enforcement,
    file: String,
    line: usize,
}

/// One Rego package and what Plinth evaluates in it.
#[derive(Debug, Clone)]
pub struct PackagePlan {
    pub name: String,
    /// Empty: every point.
    pub points: Vec<Point>,
    pub profile: Option<String>,
    pub annotations: Option<Annotations>,
    rules: Vec<RulePlan>,
    has_exception: bool,
    /// `check_*` rules (scorecards).
    pub(crate) checks: Vec<CheckPlan>,
}

#[derive(Debug, Clone)]
pub(crate) struct CheckPlan {
    pub name: String,
    pub title: Option<String>,
    pub level: String,
    pub description: Option<String>,
}

/// Summary of a loaded policy, for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicySummary {
    pub package: String,
    pub title: Option<String>,
    pub points: Vec<Point>,
    pub profile: Option<String>,
    pub rules: Vec<RuleSummary>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleSummary {
    pub rule: String,
    pub kind: &'static str,
    pub id: Option<String>,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub controls: Vec<String>,
    pub enforcement: Enforcement,
    pub rationale: Option<String>,
    pub file: String,
    pub line: usize,
}

/// The dispatch rules compiled to VM bytecode, and those left to the
/// interpreter with the compiler's reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmCoverage {
    pub compiled: Vec<String>,
    pub interpreted: Vec<(String, String)>,
}

/// Dispatch runs by where they ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchRuns {
    pub vm: u64,
    pub interpreter: u64,
}

/// A prepared policy set.
pub struct PolicyEngine {
    template: regorus::Engine,
    packages: Vec<PackagePlan>,
    /// Generated dispatch rules: for a set of package indexes (those that
    /// apply to a point and profile), the rule that evaluates all their
    /// conftest rules in one pass.
    dispatch: HashMap<Vec<usize>, String>,
    /// Scorecard dispatch rule by entity kind (`""`: kinds not named).
    scorecard_dispatch: HashMap<String, String>,
    /// Bytecode of each dispatch rule for regorus' VM (several times faster
    /// than the tree-walking interpreter); rules it cannot compile use the
    /// interpreter.
    programs: HashMap<String, Arc<regorus::rvm::program::Program>>,
    /// Dispatch rules that did not compile to bytecode (with why).
    interpreted: Vec<(String, String)>,
    /// Dispatch runs answered by the VM and by the interpreter.
    vm_runs: AtomicU64,
    interpreter_runs: AtomicU64,
    /// `data` as the VM needs it.
    vm_data: regorus::Value,
    problems: Vec<LoadProblem>,
    revision: String,
    options: EngineOptions,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("packages", &self.packages.len())
            .field("problems", &self.problems)
            .finish()
    }
}

/// Extracts `file:line` and the message from a regorus error.
pub(crate) fn locate_error(error: &str) -> (Option<String>, Option<usize>, String) {
    static LOCATION: OnceLock<regex::Regex> = OnceLock::new();
    let location = LOCATION.get_or_init(|| regex::Regex::new(r"-->\s*(.+?):(\d+):(\d+)").expect("static regex"));
    let message =
        error.lines().rev().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or(error.trim()).to_string();
    match location.captures(error) {
        Some(c) => (Some(c[1].to_string()), c[2].parse().ok(), message),
        None => (None, None, message),
    }
}

fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig { limit, check_interval: NonZeroU32::new(64).expect("non-zero") }
}

/// Compile errors are what evaluating against an empty input reports with a
/// source location; anything else (a type error on missing input) is left
/// for real inputs to decide.
fn is_compile_error(message: &str) -> bool {
    message.contains("-->")
        && [
            "could not find function",
            "unsafe",
            "undefined",
            "recursion",
            "invalid",
            "not a valid",
            "conflict",
            "unknown",
        ]
        .iter()
        .any(|needle| message.contains(needle))
}

impl PolicyEngine {
    /// Compiles a bundle. Never fails: broken files become problems and the
    /// points that depend on them fail closed.
    pub fn build(bundle: &PolicyBundle, options: EngineOptions) -> PolicyEngine {
        // The access rules (policies/access/) live beside the library but
        // are their own rule set (`AccessPolicy`); decisions never read them.
        Self::build_filtered(bundle, options, |f| {
            !f.is_test && !crate::access::is_access_package(f.scan.package.as_deref())
        })
    }

    /// As `build`, with the test files too (for `plinth policy test`).
    pub fn build_with_tests(bundle: &PolicyBundle, options: EngineOptions) -> PolicyEngine {
        Self::build_filtered(bundle, options, |_| true)
    }

    fn build_filtered(
        bundle: &PolicyBundle,
        options: EngineOptions,
        include: impl Fn(&crate::bundle::PolicyFile) -> bool,
    ) -> PolicyEngine {
        let mut problems = bundle.problems.clone();
        let mut excluded: HashSet<String> = HashSet::new();
        let files: Vec<_> = bundle.files.iter().filter(|f| include(f)).collect();
        // Adding a file can only fail on syntax; compile errors show up on the
        // first evaluation. Rebuild without each offender until clean.
        let template = loop {
            let mut engine = regorus::Engine::new();
            engine.set_execution_timer_config(timer(options.time_limit));
            engine.set_gather_prints(true);
            if let Err(error) = engine.add_data(regorus::Value::from(bundle.data.clone())) {
                problems.push(LoadProblem {
                    file: "data".into(),
                    line: None,
                    message: format!("policy data rejected: {error}"),
                    package: None,
                    points: Vec::new(),
                });
            }
            let candidates: Vec<_> = files.iter().filter(|f| !excluded.contains(&f.display)).copied().collect();
            for file in candidates {
                engine.set_rego_v0(file.rego_v0);
                if let Err(error) = engine.add_policy(file.display.clone(), file.text.clone()) {
                    let (_, line, message) = locate_error(&error.to_string());
                    let hint = if !file.rego_v0
                        && (message.contains("`if` keyword") || message.contains("`contains` keyword"))
                    {
                        " (this looks like Rego v0 syntax: add `import rego.v1` and the v1 keywords, or mark the file as v0 in the bundle's .manifest with \"rego_version\": 0)"
                    } else {
                        ""
                    };
                    problems.push(LoadProblem {
                        file: file.display.clone(),
                        line,
                        message: format!("{message}{hint}"),
                        package: file.scan.package.clone(),
                        points: package_points(&file.scan),
                    });
                    excluded.insert(file.display.clone());
                }
            }
            engine.set_input(regorus::Value::new_object());
            let mut offender = None;
            'probe: for file in files.iter().filter(|f| !excluded.contains(&f.display)) {
                let Some(package) = &file.scan.package else { continue };
                for rule in &file.scan.rules {
                    if let Err(error) = engine.eval_rule(format!("data.{package}.{}", rule.name)) {
                        let text = error.to_string();
                        if is_compile_error(&text) {
                            let (at_file, line, message) = locate_error(&text);
                            let culprit =
                                at_file.and_then(|f| files.iter().find(|c| c.display == f)).copied().unwrap_or(file);
                            offender = Some((culprit, line, message));
                            break 'probe;
                        }
                    }
                }
            }
            match offender {
                None => break engine,
                Some((file, line, message)) => {
                    problems.push(LoadProblem {
                        file: file.display.clone(),
                        line,
                        message,
                        package: file.scan.package.clone(),
                        points: package_points(&file.scan),
                    });
                    excluded.insert(file.display.clone());
                }
            }
        };
        let packages =
            plan_packages(files.iter().copied().filter(|f| !excluded.contains(&f.display) && !f.is_test), &options);
        let mut engine = PolicyEngine {
            template,
            packages,
            dispatch: HashMap::new(),
            scorecard_dispatch: HashMap::new(),
            programs: HashMap::new(),
            interpreted: Vec::new(),
            vm_runs: AtomicU64::new(0),
            interpreter_runs: AtomicU64::new(0),
            vm_data: regorus::Value::Undefined,
            problems,
            revision: bundle.revision.clone(),
            options,
        };
        engine.add_dispatch();
        if engine.options.vm {
            engine.compile_programs();
        }
        engine
    }

    /// Compiles every dispatch rule to VM bytecode.
    fn compile_programs(&mut self) {
        self.vm_data = self.template.get_data();
        let rules: Vec<String> = self.dispatch.values().chain(self.scorecard_dispatch.values()).cloned().collect();
        for rule in rules {
            let entry = format!("data.{DISPATCH_PACKAGE}.{rule}");
            let mut engine = self.template.clone();
            let compiled =
                engine.compile_with_entrypoint(&entry.as_str().into()).map_err(|e| e.to_string()).and_then(|policy| {
                    regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[entry.as_str()])
                        .map_err(|e| e.to_string())
                });
            match compiled {
                Ok(program) => {
                    self.programs.insert(entry, program);
                }
                Err(error) => {
                    tracing::debug!(%error, entry, "dispatch rule runs on the interpreter");
                    self.interpreted.push((entry, error));
                }
            }
        }
    }

    /// Which dispatch rules run on the VM and which were left to the
    /// interpreter because they did not compile (with the compiler's error).
    pub fn vm_coverage(&self) -> VmCoverage {
        let mut compiled: Vec<String> = self.programs.keys().cloned().collect();
        compiled.sort();
        VmCoverage { compiled, interpreted: self.interpreted.clone() }
    }

    /// How many dispatch runs the VM answered and how many fell to the
    /// interpreter (not compiled, or the VM failed at run time).
    pub fn dispatch_runs(&self) -> DispatchRuns {
        DispatchRuns {
            vm: self.vm_runs.load(Ordering::Relaxed),
            interpreter: self.interpreter_runs.load(Ordering::Relaxed),
        }
    }

    /// Evaluates a dispatch rule: on the VM when it compiled, else (or when
    /// the VM fails) on the interpreter, which also gives the better error.
    pub(crate) fn run_dispatch(
        &self,
        engine: &mut regorus::Engine,
        input: &regorus::Value,
        entry: &str,
    ) -> Result<regorus::Value, PolicyError> {
        if let Some(program) = self.programs.get(entry) {
            let mut vm = regorus::rvm::RegoVM::new();
            vm.load_program(Arc::clone(program));
            vm.set_execution_timer_config(Some(timer(self.options.time_limit)));
            if vm.set_data(self.vm_data.clone()).is_ok() {
                vm.set_input(input.clone());
                if let Ok(value) = vm.execute_entry_point_by_name(entry) {
                    self.vm_runs.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
            }
        }
        self.interpreter_runs.fetch_add(1, Ordering::Relaxed);
        engine.set_input(input.clone());
        engine.eval_rule(entry.to_string()).map_err(|e| PolicyError::Evaluation(e.to_string()))
    }

    /// Generates and compiles the dispatch module. Evaluating one rule that
    /// gathers every applicable `deny`/`warn`/`violation`/`exception` keeps
    /// the interpreter's rule cache for the whole decision, so helpers the
    /// packages share are computed once, and rules nobody asks for are not
    /// computed at all.
    fn add_dispatch(&mut self) {
        let mut text = format!("package {DISPATCH_PACKAGE}\n\nready := true\n");
        let mut profiles: Vec<Option<&str>> = vec![None, Some("\u{0}none")];
        for package in &self.packages {
            if let Some(profile) = package.profile.as_deref() {
                if !profiles.contains(&Some(profile)) {
                    profiles.push(Some(profile));
                }
            }
        }
        for point in Point::ALL {
            for profile in &profiles {
                let set: Vec<usize> = self
                    .packages
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.rules.is_empty() && p.applies(point, *profile))
                    .map(|(i, _)| i)
                    .collect();
                if set.is_empty() || self.dispatch.contains_key(&set) {
                    continue;
                }
                let name = format!("decide_{}", self.dispatch.len());
                let body: Vec<String> = set
                    .iter()
                    .map(|&i| {
                        let package = &self.packages[i];
                        let reference = data_ref(&package.name);
                        let mut fields: Vec<String> = package
                            .rules
                            .iter()
                            .map(|r| format!("{:?}: [x | x := {reference}.{}]", r.name, r.name))
                            .collect();
                        if package.has_exception {
                            fields.push(format!("\"exception\": [x | x := {reference}.exception]"));
                        }
                        format!("  \"{i}\": {{{}}}", fields.join(", "))
                    })
                    .collect();
                text.push_str(&format!("\n{name} := {{\n{}\n}}\n", body.join(",\n")));
                self.dispatch.insert(set, name);
            }
        }
        let mut kinds: Vec<String> = vec![String::new()];
        for package in self.packages.iter().filter(|p| !p.checks.is_empty()) {
            for kind in package.annotations.as_ref().map(|a| a.custom_list("kinds")).unwrap_or_default() {
                let kind = kind.to_ascii_lowercase();
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        for (n, kind) in kinds.iter().enumerate() {
            let body: Vec<String> = self
                .packages
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.checks.is_empty() && p.scorecard_applies(kind))
                .map(|(i, package)| {
                    let reference = data_ref(&package.name);
                    let fields: Vec<String> = package
                        .checks
                        .iter()
                        .map(|c| format!("{:?}: [x | x := {reference}.{}]", c.name, c.name))
                        .collect();
                    format!("  \"{i}\": {{{}}}", fields.join(", "))
                })
                .collect();
            let name = format!("scorecards_{n}");
            text.push_str(&format!("\n{name} := {{\n{}\n}}\n", body.join(",\n")));
            self.scorecard_dispatch.insert(kind.clone(), name);
        }
        self.template.set_rego_v0(false);
        let added = self.template.add_policy(DISPATCH_FILE.to_string(), text).and_then(|_| {
            self.template.set_input(regorus::Value::new_object());
            self.template.eval_rule(format!("data.{DISPATCH_PACKAGE}.ready"))
        });
        if let Err(error) = added {
            // Decisions fall back to one query per package; slower, same result.
            tracing::warn!(%error, "policy dispatch module did not compile");
            self.dispatch.clear();
            self.scorecard_dispatch.clear();
        }
    }

    /// The dispatch rule for scorecards of entities of `kind`.
    pub(crate) fn scorecard_rule(&self, kind: &str) -> Option<String> {
        // (entry path; evaluate it with `run_dispatch`)
        self.scorecard_dispatch
            .get(kind)
            .or_else(|| self.scorecard_dispatch.get(""))
            .map(|rule| format!("data.{DISPATCH_PACKAGE}.{rule}"))
    }

    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn packages(&self) -> &[PackagePlan] {
        &self.packages
    }

    pub fn time_limit(&self) -> Duration {
        self.options.time_limit
    }

    /// A fresh engine for one evaluation (a cheap copy of the prepared one).
    pub(crate) fn instance(&self) -> regorus::Engine {
        self.template.clone()
    }

    #[doc(hidden)]
    pub fn debug_instance(&self) -> regorus::Engine {
        self.instance()
    }

    /// The policies and rules, for listings and the portal.
    pub fn summaries(&self) -> Vec<PolicySummary> {
        self.packages
            .iter()
            .filter(|p| !p.rules.is_empty())
            .map(|p| PolicySummary {
                package: p.name.clone(),
                title: p.annotations.as_ref().and_then(|a| a.title.clone()),
                points: p.points.clone(),
                profile: p.profile.clone(),
                rules: p
                    .rules
                    .iter()
                    .map(|r| RuleSummary {
                        rule: r.name.clone(),
                        kind: if r.kind == RuleKind::Deny { "deny" } else { "warn" },
                        id: r.id.clone(),
                        title: r.title.clone(),
                        severity: r.severity.clone(),
                        controls: r.controls.clone(),
                        enforcement: r.enforcement,
                        rationale: r.rationale.clone(),
                        file: r.file.clone(),
                        line: r.line,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Evaluates every package that applies to `point` (and `profile`, when
    /// given) against `input`.
    pub fn evaluate(&self, request: &EvalRequest<'_>) -> Decision {
        let started = Instant::now();
        let mut violations = Vec::new();
        for problem in &self.problems {
            let applies = problem.points.is_empty() || problem.points.iter().any(|p| p == request.point.as_str());
            if applies {
                violations.push(error_violation(
                    problem.package.clone().unwrap_or_else(|| problem.file.clone()),
                    "load",
                    format!("policy failed to load, so this point fails closed: {problem}"),
                    problem.file.clone(),
                    problem.line,
                ));
            }
        }
        let mut engine = self.instance();
        let input = regorus::Value::from(request.input.clone());
        engine.set_input(input.clone());
        let packages: Vec<&PackagePlan> =
            self.packages.iter().filter(|p| !p.rules.is_empty() && p.applies(request.point, request.profile)).collect();
        // One query over every package: helpers shared between packages (the
        // lib) are evaluated once. Only if it fails are the packages run one
        // by one, so the error names the rule that caused it.
        let indexes: Vec<usize> =
            packages.iter().map(|p| self.packages.iter().position(|q| std::ptr::eq(*p, q)).unwrap_or(0)).collect();
        let gathered = match self.dispatch.get(&indexes) {
            Some(rule) => self
                .run_dispatch(&mut engine, &input, &format!("data.{DISPATCH_PACKAGE}.{rule}"))
                .map(|all| indexes.iter().map(|i| package_field(&all, &i.to_string())).map(unwrap_gathered).collect()),
            None => evaluate_packages(&mut engine, &packages),
        };
        match gathered {
            Ok(values) => {
                for (package, value) in packages.iter().zip(values) {
                    self.collect(package, |rule| Ok(package_field(&value, &rule.name)), &mut violations);
                }
            }
            Err(_) => {
                for package in &packages {
                    if started.elapsed() > self.options.time_limit {
                        violations.push(error_violation(
                            package.name.clone(),
                            "time-limit",
                            format!("policy evaluation exceeded the {} ms time limit before this policy ran; the decision fails closed", self.options.time_limit.as_millis()),
                            String::new(),
                            None,
                        ));
                        break;
                    }
                    let mut single = self.instance();
                    single.set_input(regorus::Value::from(request.input.clone()));
                    self.collect(
                        package,
                        |rule| single.eval_rule(rule.path.clone()).map_err(|e| PolicyError::Evaluation(e.to_string())),
                        &mut violations,
                    );
                }
            }
        }
        let evaluated = packages.len();
        let now = request.now;
        for violation in &mut violations {
            violation.waiver =
                request.waivers.iter().find(|w| w.covers(violation, request.entities, now)).map(|w| AppliedWaiver {
                    id: w.id.clone(),
                    owner: w.owner.clone(),
                    reason: w.reason.clone(),
                    expires_at: w.expires_at,
                });
            violation.effect = effect(violation);
        }
        let result = violations.iter().map(|v| v.effect).max().unwrap_or(Outcome::Allow);
        Decision {
            point: request.point,
            result,
            violations,
            policies: evaluated,
            revision: self.revision.clone(),
            duration_us: started.elapsed().as_micros() as u64,
        }
    }

    /// Turns one package's rule values into violations; `value_of` gives a
    /// rule's value (or the error evaluating it).
    fn collect(
        &self,
        package: &PackagePlan,
        mut value_of: impl FnMut(&RulePlan) -> Result<regorus::Value, PolicyError>,
        violations: &mut Vec<Violation>,
    ) {
        let exceptions = if package.has_exception {
            value_of(&RulePlan::exception(&package.name)).map(|v| exception_names(&v)).unwrap_or_default()
        } else {
            HashSet::new()
        };
        for rule in &package.rules {
            match value_of(rule) {
                Ok(value) => {
                    for (message, details) in messages(&value, rule) {
                        violations.push(Violation {
                            policy: package.name.clone(),
                            rule: rule.name.clone(),
                            kind: if rule.kind == RuleKind::Deny { "deny".into() } else { "warn".into() },
                            id: rule.id.clone(),
                            title: rule.title.clone(),
                            severity: rule.severity.clone(),
                            controls: rule.controls.clone(),
                            message,
                            details,
                            enforcement: rule.enforcement,
                            effect: Outcome::Allow,
                            file: rule.file.clone(),
                            line: Some(rule.line),
                            rationale: rule.rationale.clone(),
                            excepted: exceptions.contains(&rule.suffix),
                            waiver: None,
                        });
                    }
                }
                Err(error) => {
                    let text = error.to_string();
                    let message = if text.contains("time limit") {
                        format!(
                            "`{}` exceeded the {} ms evaluation time limit; the decision fails closed",
                            rule.path,
                            self.options.time_limit.as_millis()
                        )
                    } else {
                        let (_, _, message) = locate_error(&text);
                        format!("`{}` failed: {message}; the decision fails closed", rule.path)
                    };
                    let mut violation =
                        error_violation(package.name.clone(), &rule.name, message, rule.file.clone(), Some(rule.line));
                    violation.enforcement = rule.enforcement;
                    violations.push(violation);
                }
            }
        }
    }

    /// Evaluates a query (`data.x.y`, or any Rego expression) like `opa eval`.
    pub fn query(&self, query: &str, input: Option<&Value>) -> Result<Value, PolicyError> {
        let mut engine = self.instance();
        if let Some(input) = input {
            engine.set_input(regorus::Value::from(input.clone()));
        }
        let failed = |message: String| PolicyError::Query { query: query.to_string(), message };
        let results = engine.eval_query(query.to_string(), false).map_err(|e| {
            let (_, _, message) = locate_error(&e.to_string());
            failed(message)
        })?;
        serde_json::to_value(&results).map_err(|e| failed(e.to_string()))
    }
}

fn effect(violation: &Violation) -> Outcome {
    if violation.excepted || violation.waiver.is_some() || violation.enforcement == Enforcement::DryRun {
        return Outcome::Allow;
    }
    match (violation.kind.as_str(), violation.enforcement) {
        ("deny" | "error", Enforcement::Enforce) => Outcome::Deny,
        _ => Outcome::Warn,
    }
}

fn error_violation(policy: String, rule: &str, message: String, file: String, line: Option<usize>) -> Violation {
    Violation {
        policy,
        rule: rule.to_string(),
        kind: "error".into(),
        id: None,
        title: None,
        severity: Some("critical".into()),
        controls: Vec::new(),
        message,
        details: None,
        enforcement: Enforcement::Enforce,
        effect: Outcome::Deny,
        file,
        line,
        rationale: None,
        excepted: false,
        waiver: None,
    }
}

/// The rule-name suffixes excepted by the package's `exception` rule
/// (conftest: `exception contains rules if { rules := ["privileged"] }`;
/// `""` excepts the bare `deny`).
fn exception_names(value: &regorus::Value) -> HashSet<String> {
    let json = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut names = HashSet::new();
    let mut collect = |v: &Value| match v {
        Value::String(s) => {
            names.insert(s.clone());
        }
        Value::Array(items) => names.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string))),
        _ => {}
    };
    match &json {
        Value::Array(items) => items.iter().for_each(&mut collect),
        other => collect(other),
    }
    names
}

/// The messages a rule produced: strings, `{msg, details}` objects (other
/// keys are kept as details), `true` for boolean rules.
fn messages(value: &regorus::Value, rule: &RulePlan) -> Vec<(String, Option<Value>)> {
    let json = serde_json::to_value(value).unwrap_or(Value::Null);
    let fallback = || rule.title.clone().unwrap_or_else(|| format!("{} is violated", rule.name));
    let one = |item: &Value| -> Option<(String, Option<Value>)> {
        match item {
            Value::String(s) => Some((s.clone(), None)),
            Value::Bool(true) => Some((fallback(), None)),
            Value::Bool(false) | Value::Null => None,
            Value::Object(map) => {
                let message = map.get("msg").or_else(|| map.get("message")).and_then(Value::as_str).map(str::to_string);
                let details = match map.get("details") {
                    Some(details) => Some(details.clone()),
                    None => {
                        let rest: serde_json::Map<_, _> = map
                            .iter()
                            .filter(|(k, _)| *k != "msg" && *k != "message")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        (!rest.is_empty()).then_some(Value::Object(rest))
                    }
                };
                Some((message.unwrap_or_else(|| item.to_string()), details))
            }
            other => Some((other.to_string(), None)),
        }
    };
    match &json {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        Value::Object(map) if !map.contains_key("msg") && !map.contains_key("message") => {
            // A partial object rule (`deny[key] := msg`): each value is a message.
            map.values().filter_map(one).collect()
        }
        other => one(other).into_iter().collect(),
    }
}

impl PackagePlan {
    fn scorecard_applies(&self, kind: &str) -> bool {
        let kinds = self.annotations.as_ref().map(|a| a.custom_list("kinds")).unwrap_or_default();
        kinds.is_empty() || kinds.iter().any(|k| k.eq_ignore_ascii_case(kind))
    }

    fn applies(&self, point: Point, profile: Option<&str>) -> bool {
        let point_ok = self.points.is_empty() || self.points.contains(&point);
        let profile_ok = match (profile, self.profile.as_deref()) {
            (None, _) | (_, None) => true,
            (Some(wanted), Some(own)) => own == wanted || own == "baseline" || own == "architecture",
        };
        point_ok && profile_ok
    }
}

fn rule_family(name: &str) -> Option<(RuleKind, String)> {
    for (prefix, kind) in [("deny", RuleKind::Deny), ("violation", RuleKind::Deny), ("warn", RuleKind::Warn)] {
        if name == prefix {
            return Some((kind, String::new()));
        }
        if let Some(suffix) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) {
            return Some((kind, suffix.to_string()));
        }
    }
    None
}

fn plan_packages<'a>(
    files: impl Iterator<Item = &'a crate::bundle::PolicyFile>,
    options: &EngineOptions,
) -> Vec<PackagePlan> {
    let mut by_name: BTreeMap<String, PackagePlan> = BTreeMap::new();
    for file in files {
        let Some(name) = file.scan.package.clone() else { continue };
        let plan = by_name.entry(name.clone()).or_insert_with(|| PackagePlan {
            name: name.clone(),
            points: Vec::new(),
            profile: None,
            annotations: None,
            rules: Vec::new(),
            has_exception: false,
            checks: Vec::new(),
        });
        if let Some(annotations) = &file.scan.package_annotations {
            plan.points = annotations.custom_list("points").iter().filter_map(|p| Point::parse(p).ok()).collect();
            plan.profile = annotations.custom_str("profile").map(str::to_string);
            plan.annotations = Some(annotations.clone());
        }
        let package_custom = file.scan.package_annotations.as_ref();
        for rule in &file.scan.rules {
            if plan.rules.iter().any(|r| r.name == rule.name) || plan.checks.iter().any(|c| c.name == rule.name) {
                continue;
            }
            if rule.name == "exception" {
                plan.has_exception = true;
                continue;
            }
            let annotations = rule.annotations.as_ref();
            let custom = |key: &str| {
                annotations.and_then(|a| a.custom_str(key)).or_else(|| package_custom.and_then(|a| a.custom_str(key)))
            };
            if rule.name.starts_with("check_") {
                plan.checks.push(CheckPlan {
                    name: rule.name.clone(),
                    title: annotations.and_then(|a| a.title.clone()),
                    level: custom("level").unwrap_or("bronze").to_string(),
                    description: annotations.and_then(|a| a.description.clone()),
                });
                continue;
            }
            let Some((kind, suffix)) = rule_family(&rule.name) else { continue };
            let id = annotations.and_then(|a| a.custom_str("id")).map(str::to_string);
            let path = format!("data.{name}.{}", rule.name);
            let mut enforcement = custom("enforcement").and_then(|e| Enforcement::parse(e).ok()).unwrap_or_default();
            for key in [id.as_deref(), Some(&path[5..]), Some(name.as_str())].into_iter().flatten() {
                if let Some(mode) = options.enforcement.get(key) {
                    enforcement = *mode;
                    break;
                }
            }
            plan.rules.push(RulePlan {
                path,
                name: rule.name.clone(),
                kind,
                suffix,
                id,
                title: annotations.and_then(|a| a.title.clone()),
                severity: custom("severity").map(str::to_string),
                controls: annotations.map(|a| a.custom_list("controls")).unwrap_or_default(),
                rationale: annotations.and_then(|a| a.description.clone()),
                enforcement,
                file: file.display.clone(),
                line: rule.line,
            });
        }
    }
    by_name.into_values().collect()
}

/// One decision request.
pub struct EvalRequest<'a> {
    pub point: Point,
    /// The Rego `input` (context already attached under `plinth`).
    pub input: &'a Value,
    pub profile: Option<&'a str>,
    pub waivers: &'a [Waiver],
    /// Entity refs the decision is about (waiver scope).
    pub entities: &'a [String],
    pub now: OffsetDateTime,
}

impl<'a> EvalRequest<'a> {
    pub fn new(point: Point, input: &'a Value) -> Self {
        EvalRequest { point, input, profile: None, waivers: &[], entities: &[], now: OffsetDateTime::now_utc() }
    }
}

/// Attaches Plinth's context to an input document under `input.plinth`,
/// where conftest- and Gatekeeper-style policies never look.
pub fn attach_context(mut input: Value, context: Value) -> Value {
    if let Value::Object(map) = &mut input {
        map.insert("plinth".into(), context);
    }
    input
}

impl RulePlan {
    /// A stand-in plan for the package's `exception` rule.
    fn exception(package: &str) -> RulePlan {
        RulePlan {
            path: format!("data.{package}.exception"),
            name: "exception".into(),
            kind: RuleKind::Deny,
            suffix: String::new(),
            id: None,
            title: None,
            severity: None,
            controls: Vec::new(),
            rationale: None,
            enforcement: Enforcement::Enforce,
            file: String::new(),
            line: 0,
        }
    }
}

const DISPATCH_PACKAGE: &str = "plinth_dispatch";
const DISPATCH_FILE: &str = "<plinth dispatch>";

/// A dispatch entry maps rule name → `[value]` (or `[]` when undefined);
/// turn it into rule name → value.
pub(crate) fn unwrap_gathered(entry: regorus::Value) -> regorus::Value {
    let Ok(map) = entry.as_object() else { return regorus::Value::Undefined };
    let mut out = regorus::Value::new_object();
    if let Ok(target) = out.as_object_mut() {
        for (key, value) in map.iter() {
            if let Some(first) = value.as_array().ok().and_then(|items| items.first()) {
                target.insert(key.clone(), first.clone());
            }
        }
    }
    out
}

/// `data.a.b` written so that any segment works (`data.a["b-c"]`).
pub(crate) fn data_ref(package: &str) -> String {
    let mut out = String::from("data");
    for segment in package.split('.') {
        if !segment.is_empty()
            && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !segment.starts_with(|c: char| c.is_ascii_digit())
        {
            out.push('.');
            out.push_str(segment);
        } else {
            out.push_str(&format!("[{}]", Value::String(segment.to_string())));
        }
    }
    out
}

/// Evaluates whole packages in one query and returns their values in order.
pub(crate) fn evaluate_packages(
    engine: &mut regorus::Engine,
    packages: &[&PackagePlan],
) -> Result<Vec<regorus::Value>, PolicyError> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let query: Vec<String> =
        packages.iter().enumerate().map(|(i, p)| format!("p{i} := {}", data_ref(&p.name))).collect();
    let results = engine.eval_query(query.join("; "), false).map_err(|e| PolicyError::Evaluation(e.to_string()))?;
    let bindings = results
        .result
        .into_iter()
        .next()
        .map(|r| r.bindings)
        .ok_or_else(|| PolicyError::Evaluation("the policy query was undefined".into()))?;
    Ok((0..packages.len()).map(|i| package_field(&bindings, &format!("p{i}"))).collect())
}

/// A field of an object value (`Undefined` when absent).
pub(crate) fn package_field(object: &regorus::Value, key: &str) -> regorus::Value {
    object
        .as_object()
        .ok()
        .and_then(|map| map.get(&regorus::Value::from(key)).cloned())
        .unwrap_or(regorus::Value::Undefined)
}
