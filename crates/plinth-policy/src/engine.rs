//! The compiled policy set and decisions over it.
//!
//! A `PolicyEngine` is built once per policy revision: every file is parsed
//! by regorus, every rule evaluated once against an empty input so compile
//! errors (unknown functions, unsafe variables) surface at load time, and the
//! files that fail are left out and remembered. Which packages a decision
//! runs — by point, profile, kind and input shape — is worked out here, once
//! per revision, into generated *dispatch* rules compiled to regorus'
//! bytecode VM; a decision converts its input once and runs one or two of
//! them on a pooled VM.

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
    /// `name` as a regorus key (looked up in every decision).
    key: regorus::Value,
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

/// What a package's rules read as `input` when a decision's input is a
/// Kubernetes `AdmissionReview` request (`{"review": request, "parameters":
/// {…}}`, as the admission point builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputShape {
    /// Gatekeeper-shaped: `input.review` and `input.parameters`, as given.
    Review,
    /// conftest-shaped: the object under review itself (`input.kind`,
    /// `input.spec`), with Plinth's context as `input.plinth`.
    Object,
}

impl InputShape {
    pub fn as_str(self) -> &'static str {
        match self {
            InputShape::Review => "review",
            InputShape::Object => "object",
        }
    }

    /// METADATA `custom.input`: `review` (or `gatekeeper`), `object` (or
    /// `manifest`, `conftest`).
    pub fn parse(text: &str) -> Option<InputShape> {
        match text.trim().to_ascii_lowercase().as_str() {
            "review" | "gatekeeper" => Some(InputShape::Review),
            "object" | "manifest" | "conftest" => Some(InputShape::Object),
            _ => None,
        }
    }
}

/// One Rego package and what Plinth evaluates in it.
#[derive(Debug, Clone)]
pub struct PackagePlan {
    pub name: String,
    /// Empty: every point.
    pub points: Vec<Point>,
    pub profile: Option<String>,
    /// Kinds (lower case) of the object a decision is about that the
    /// package applies to (METADATA `custom.kinds`); empty: every input.
    pub kinds: Vec<String>,
    /// What its rules read as `input` on an AdmissionReview input.
    pub input: InputShape,
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
    pub kinds: Vec<String>,
    pub input: InputShape,
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

/// One generated dispatch rule: it gathers every `deny`/`warn`/
/// `violation`/`exception` (or `check_*`) rule of a set of packages in one
/// evaluation, so helpers the packages share are computed once and rules
/// nobody asks for are not computed at all.
pub(crate) struct Dispatch {
    /// `data.plinth_dispatch.decide_3`.
    pub(crate) entry: String,
    /// The packages it gathers (indexes into `packages`) and the key of each
    /// in its value (`{"<index>": {"<rule>": [value] | []}}`).
    pub(crate) packages: Vec<usize>,
    pub(crate) keys: Vec<regorus::Value>,
    /// Its bytecode for regorus' VM (several times faster than the
    /// tree-walking interpreter); `None`: it runs on the interpreter.
    /// Compiled with the engine, or on first use for rules only an unusual
    /// request needs (see `eager`).
    program: OnceLock<Option<Arc<regorus::rvm::program::Program>>>,
    /// Compiled when the engine is built: every rule a point runs on its
    /// usual input. The split rules for an AdmissionReview input at another
    /// point than admission are compiled on first use.
    eager: bool,
    /// Idle VMs with the program and `data` loaded. A VM resets its state
    /// at every run, so one is reused instead of built per decision.
    idle: parking_lot::Mutex<Vec<regorus::rvm::RegoVM>>,
}

/// Most idle VMs kept per dispatch rule (one per concurrent decision).
const MAX_IDLE_VMS: usize = 64;

/// Which dispatch rules a decision runs, for one (point, profile, kind):
/// indexes into `dispatches`, worked out when the engine is built.
#[derive(Debug, Clone, Copy, Default)]
struct Plan {
    /// Every applicable package, on one input (`None`: nothing applies).
    all: Option<usize>,
    /// The input shape when every applicable package has the same one.
    shape: Option<InputShape>,
    /// When shapes are mixed: the Gatekeeper-shaped packages and the
    /// object-shaped ones, run apart on an AdmissionReview input.
    review: Option<usize>,
    object: Option<usize>,
}

/// A prepared policy set.
pub struct PolicyEngine {
    template: regorus::Engine,
    packages: Vec<PackagePlan>,
    /// Generated dispatch rules (decisions and scorecards).
    dispatches: Vec<Dispatch>,
    /// Whether the generated dispatch module compiled; if not, decisions
    /// query the packages themselves (slower, same result).
    dispatch_module: bool,
    /// A plan per (point, profile, kind class), see `plan`.
    plans: Vec<Plan>,
    /// Profiles with a plan of their own: `None` (none asked for), an
    /// unknown one (`"\u{0}none"`), then every profile a package declares.
    profiles: Vec<Option<String>>,
    /// Kinds some package is limited to (lower case); any other kind, or
    /// none, is the last class.
    kind_classes: Vec<String>,
    /// Scorecard dispatch rule by entity kind (`""`: kinds not named).
    scorecard_dispatch: HashMap<String, usize>,
    /// Dispatch rules that did not compile to bytecode (with why).
    interpreted: parking_lot::Mutex<Vec<(String, String)>>,
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
            dispatches: Vec::new(),
            dispatch_module: false,
            plans: Vec::new(),
            profiles: Vec::new(),
            kind_classes: Vec::new(),
            scorecard_dispatch: HashMap::new(),
            interpreted: parking_lot::Mutex::new(Vec::new()),
            vm_runs: AtomicU64::new(0),
            interpreter_runs: AtomicU64::new(0),
            vm_data: regorus::Value::Undefined,
            problems,
            revision: bundle.revision.clone(),
            options,
        };
        engine.add_dispatch();
        engine.compile_programs();
        engine
    }

    /// Compiles the eager dispatch rules to VM bytecode.
    fn compile_programs(&mut self) {
        if !self.options.vm {
            return;
        }
        self.vm_data = self.template.get_data();
        for dispatch in self.dispatches.iter().filter(|d| d.eager) {
            self.program_of(dispatch);
        }
    }

    /// A dispatch rule's bytecode, compiled on first call (`None` when the
    /// VM is off or it does not compile; it then runs on the interpreter).
    fn program_of(&self, dispatch: &Dispatch) -> Option<Arc<regorus::rvm::program::Program>> {
        dispatch
            .program
            .get_or_init(|| {
                if !self.options.vm || !self.dispatch_module {
                    return None;
                }
                let entry = dispatch.entry.as_str();
                let mut engine = self.template.clone();
                let compiled =
                    engine.compile_with_entrypoint(&entry.into()).map_err(|e| e.to_string()).and_then(|policy| {
                        regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[entry])
                            .map_err(|e| e.to_string())
                    });
                match compiled {
                    Ok(program) => Some(program),
                    Err(error) => {
                        tracing::debug!(%error, entry, "dispatch rule runs on the interpreter");
                        self.interpreted.lock().push((entry.to_string(), error));
                        None
                    }
                }
            })
            .clone()
    }

    /// Which dispatch rules run on the VM and which were left to the
    /// interpreter because they did not compile (with the compiler's error).
    /// Rules compiled on first use count once they have been used.
    pub fn vm_coverage(&self) -> VmCoverage {
        let mut compiled: Vec<String> = self
            .dispatches
            .iter()
            .filter(|d| d.program.get().is_some_and(Option::is_some))
            .map(|d| d.entry.clone())
            .collect();
        compiled.sort();
        VmCoverage { compiled, interpreted: self.interpreted.lock().clone() }
    }

    /// How many dispatch runs the VM answered and how many fell to the
    /// interpreter (not compiled, or the VM failed at run time).
    pub fn dispatch_runs(&self) -> DispatchRuns {
        DispatchRuns {
            vm: self.vm_runs.load(Ordering::Relaxed),
            interpreter: self.interpreter_runs.load(Ordering::Relaxed),
        }
    }

    /// A VM with `dispatch`'s program and the data loaded.
    fn vm_for(&self, program: &Arc<regorus::rvm::program::Program>) -> Option<regorus::rvm::RegoVM> {
        let mut vm = regorus::rvm::RegoVM::new();
        vm.load_program(Arc::clone(program));
        vm.set_data(self.vm_data.clone()).ok()?;
        Some(vm)
    }

    /// Evaluates a dispatch rule: on the VM when it compiled, else (or when
    /// the VM fails) on the interpreter — `interpreter`, made on first use —
    /// which also gives the better error. `limit` is the time it may take.
    pub(crate) fn run_dispatch(
        &self,
        dispatch: &Dispatch,
        input: &regorus::Value,
        limit: Duration,
        interpreter: &mut Option<regorus::Engine>,
    ) -> Result<regorus::Value, PolicyError> {
        if let Some(program) = self.program_of(dispatch) {
            let idle = dispatch.idle.lock().pop();
            if let Some(mut vm) = idle.or_else(|| self.vm_for(&program)) {
                vm.set_execution_timer_config(Some(timer(limit)));
                vm.set_input(input.clone());
                let result = vm.execute_entry_point_by_name(&dispatch.entry);
                if let Ok(value) = result {
                    // Keep no reference to this decision's input while idle.
                    vm.set_input(regorus::Value::Null);
                    let mut idle = dispatch.idle.lock();
                    if idle.len() < MAX_IDLE_VMS {
                        idle.push(vm);
                    }
                    drop(idle);
                    self.vm_runs.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
            }
        }
        self.interpreter_runs.fetch_add(1, Ordering::Relaxed);
        let engine = interpreter.get_or_insert_with(|| self.instance());
        engine.set_input(input.clone());
        engine.eval_rule(dispatch.entry.clone()).map_err(|e| PolicyError::Evaluation(e.to_string()))
    }

    /// Generates and compiles the dispatch module, and the plan of every
    /// (point, profile, kind class): which dispatch rules a decision runs.
    fn add_dispatch(&mut self) {
        let mut text = format!("package {DISPATCH_PACKAGE}\n\nready := true\n");
        let mut profiles: Vec<Option<String>> = vec![None, Some("\u{0}none".to_string())];
        let mut kind_classes: Vec<String> = Vec::new();
        for package in self.packages.iter().filter(|p| !p.rules.is_empty()) {
            if let Some(profile) = &package.profile {
                if !profiles.contains(&Some(profile.clone())) {
                    profiles.push(Some(profile.clone()));
                }
            }
            for kind in &package.kinds {
                if !kind_classes.contains(kind) {
                    kind_classes.push(kind.clone());
                }
            }
        }
        let mut by_set: HashMap<Vec<usize>, usize> = HashMap::new();
        let mut dispatches: Vec<Dispatch> = Vec::new();
        let mut dispatch_of = |set: Vec<usize>, text: &mut String, packages: &[PackagePlan], scorecard: bool| {
            if let Some(&n) = by_set.get(&set) {
                return n;
            }
            let n = dispatches.len();
            let entry = if scorecard {
                format!("scorecards_{}", dispatches.iter().filter(|d| d.entry.contains(".scorecards_")).count())
            } else {
                format!("decide_{}", dispatches.iter().filter(|d| d.entry.contains(".decide_")).count())
            };
            let body: Vec<String> = set
                .iter()
                .map(|&i| {
                    let package = &packages[i];
                    let reference = data_ref(&package.name);
                    let gathered = |rule: &str| format!("{rule:?}: [x | x := {reference}.{rule}]");
                    let mut fields: Vec<String> = if scorecard {
                        package.checks.iter().map(|c| gathered(&c.name)).collect()
                    } else {
                        package.rules.iter().map(|r| gathered(&r.name)).collect()
                    };
                    if !scorecard && package.has_exception {
                        fields.push(gathered("exception"));
                    }
                    format!("  \"{i}\": {{{}}}", fields.join(", "))
                })
                .collect();
            text.push_str(&format!("\n{entry} := {{\n{}\n}}\n", body.join(",\n")));
            dispatches.push(Dispatch {
                entry: format!("data.{DISPATCH_PACKAGE}.{entry}"),
                keys: set.iter().map(|i| regorus::Value::from(i.to_string())).collect(),
                packages: set.clone(),
                program: OnceLock::new(),
                eager: false,
                idle: parking_lot::Mutex::new(Vec::new()),
            });
            if !scorecard {
                by_set.insert(set, n);
            }
            n
        };
        let mut plans = Vec::new();
        let mut eager: HashSet<usize> = HashSet::new();
        for point in Point::ALL {
            for profile in &profiles {
                for class in 0..=kind_classes.len() {
                    let kind = kind_classes.get(class);
                    let set: Vec<usize> = self
                        .packages
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| {
                            !p.rules.is_empty()
                                && p.applies(point, profile.as_deref())
                                && (p.kinds.is_empty() || kind.is_some_and(|k| p.kinds.contains(k)))
                        })
                        .map(|(i, _)| i)
                        .collect();
                    let mut plan = Plan::default();
                    if !set.is_empty() {
                        let (review, object): (Vec<usize>, Vec<usize>) =
                            set.iter().partition(|&&i| self.packages[i].input == InputShape::Review);
                        let all = dispatch_of(set, &mut text, &self.packages, false);
                        eager.insert(all);
                        plan.all = Some(all);
                        if review.is_empty() {
                            plan.shape = Some(InputShape::Object);
                        } else if object.is_empty() {
                            plan.shape = Some(InputShape::Review);
                        } else {
                            let review = dispatch_of(review, &mut text, &self.packages, false);
                            let object = dispatch_of(object, &mut text, &self.packages, false);
                            if point == Point::Admission {
                                eager.extend([review, object]);
                            }
                            plan.review = Some(review);
                            plan.object = Some(object);
                        }
                    }
                    plans.push(plan);
                }
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
        for kind in &kinds {
            let set: Vec<usize> = self
                .packages
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.checks.is_empty() && p.scorecard_applies(kind))
                .map(|(i, _)| i)
                .collect();
            let n = dispatch_of(set, &mut text, &self.packages, true);
            eager.insert(n);
            self.scorecard_dispatch.insert(kind.clone(), n);
        }
        for n in eager {
            dispatches[n].eager = true;
        }
        self.dispatches = dispatches;
        self.plans = plans;
        self.profiles = profiles;
        self.kind_classes = kind_classes;
        self.template.set_rego_v0(false);
        let added = self.template.add_policy(DISPATCH_FILE.to_string(), text).and_then(|_| {
            self.template.set_input(regorus::Value::new_object());
            self.template.eval_rule(format!("data.{DISPATCH_PACKAGE}.ready"))
        });
        match added {
            Ok(_) => self.dispatch_module = true,
            Err(error) => {
                // Decisions fall back to one query per package; slower, same result.
                tracing::warn!(%error, "policy dispatch module did not compile");
                self.scorecard_dispatch.clear();
            }
        }
    }

    /// The plan for a decision at `point`, for `profile`, about an object of
    /// `kind`.
    fn plan(&self, point: Point, profile: Option<&str>, kind: Option<&str>) -> Plan {
        let point = Point::ALL.iter().position(|p| *p == point).unwrap_or(0);
        let profile = match profile {
            None => 0,
            Some(wanted) => {
                self.profiles.iter().skip(2).position(|p| p.as_deref() == Some(wanted)).map_or(1, |n| n + 2)
            }
        };
        let classes = self.kind_classes.len() + 1;
        let class = match kind {
            Some(kind) if !self.kind_classes.is_empty() => {
                self.kind_classes.iter().position(|k| k.eq_ignore_ascii_case(kind)).unwrap_or(classes - 1)
            }
            _ => classes - 1,
        };
        self.plans.get((point * self.profiles.len() + profile) * classes + class).copied().unwrap_or_default()
    }

    /// The dispatch rule for scorecards of entities of `kind`.
    pub(crate) fn scorecard_dispatch(&self, kind: &str) -> Option<&Dispatch> {
        self.scorecard_dispatch
            .get(kind)
            .or_else(|| self.scorecard_dispatch.get(""))
            .and_then(|&n| self.dispatches.get(n))
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
                kinds: p.kinds.clone(),
                input: p.input,
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
    ///
    /// The input is converted to regorus' value once. On an AdmissionReview
    /// input (`input.review` an object) Gatekeeper-shaped packages see it as
    /// it is and object-shaped ones see `input.review.object` with
    /// `input.plinth` (none when the request has no object, as for DELETE).
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
        let input = request.input.value().clone();
        let review = matches!(input[&regorus::Value::from("review")], regorus::Value::Object(_));
        let plan = self.plan(request.point, request.profile, subject_kind(&input));
        let object = || review_object(&input);
        let runs: Vec<(usize, regorus::Value)> = match (plan.all, review, plan.shape) {
            (None, _, _) => Vec::new(),
            (Some(all), false, _) | (Some(all), true, Some(InputShape::Review)) => vec![(all, input)],
            (Some(all), true, Some(InputShape::Object)) => object().map(|o| (all, o)).into_iter().collect(),
            (Some(_), true, None) => {
                let object = object();
                let mut runs = Vec::with_capacity(2);
                if let Some(n) = plan.review {
                    runs.push((n, input));
                }
                if let (Some(n), Some(object)) = (plan.object, object) {
                    runs.push((n, object));
                }
                runs
            }
        };
        let mut interpreter: Option<regorus::Engine> = None;
        let mut evaluated = 0;
        for (n, input) in &runs {
            let dispatch = &self.dispatches[*n];
            evaluated += dispatch.packages.len();
            let packages: Vec<&PackagePlan> = dispatch.packages.iter().map(|&i| &self.packages[i]).collect();
            let limit = self.options.time_limit.saturating_sub(started.elapsed());
            // One evaluation over every package: helpers shared between
            // packages (the lib) are evaluated once. Only if it fails are the
            // packages run one by one, so the error names the rule that
            // caused it.
            let done = if self.dispatch_module {
                self.run_dispatch(dispatch, input, limit, &mut interpreter).map(|all| {
                    for (package, key) in packages.iter().zip(&dispatch.keys) {
                        let gathered = &all[key];
                        self.collect(package, |rule| Ok(first(&gathered[&rule.key])), &mut violations);
                    }
                })
            } else {
                let engine = interpreter.get_or_insert_with(|| self.instance());
                engine.set_input(input.clone());
                evaluate_packages(engine, &packages).map(|values| {
                    for (package, value) in packages.iter().zip(values) {
                        self.collect(package, |rule| Ok(value[&rule.key].clone()), &mut violations);
                    }
                })
            };
            if done.is_err() {
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
                    single.set_input(input.clone());
                    self.collect(
                        package,
                        |rule| single.eval_rule(rule.path.clone()).map_err(|e| PolicyError::Evaluation(e.to_string())),
                        &mut violations,
                    );
                }
            }
        }
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
    // Per package: whether its own files read `input.review`, and the
    // `data` paths they refer to (for the packages they use).
    let mut reads_review: BTreeMap<String, bool> = BTreeMap::new();
    let mut refers_to: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let Some(name) = file.scan.package.clone() else { continue };
        *reads_review.entry(name.clone()).or_default() |= file.scan.reads_input_review;
        refers_to.entry(name.clone()).or_default().extend(file.scan.data_refs.iter().cloned());
        let plan = by_name.entry(name.clone()).or_insert_with(|| PackagePlan {
            name: name.clone(),
            points: Vec::new(),
            profile: None,
            kinds: Vec::new(),
            input: InputShape::Object,
            annotations: None,
            rules: Vec::new(),
            has_exception: false,
            checks: Vec::new(),
        });
        if let Some(annotations) = &file.scan.package_annotations {
            plan.points = annotations.custom_list("points").iter().filter_map(|p| Point::parse(p).ok()).collect();
            plan.profile = annotations.custom_str("profile").map(str::to_string);
            plan.kinds = annotations.custom_list("kinds").iter().map(|k| k.to_ascii_lowercase()).collect();
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
                key: regorus::Value::from(rule.name.as_str()),
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
    // A package is Gatekeeper-shaped when it, or a package it uses
    // (through `data.…`, transitively), reads `input.review`; METADATA
    // `custom.input` says so explicitly and wins.
    let names: Vec<String> = by_name.keys().cloned().collect();
    let related = |path: &str, package: &str| {
        path == package
            || path.strip_prefix(package).is_some_and(|rest| rest.starts_with('.'))
            || package.strip_prefix(path).is_some_and(|rest| rest.starts_with('.'))
    };
    loop {
        let mut changed = false;
        for name in &names {
            if reads_review[name] {
                continue;
            }
            let uses_review = refers_to[name]
                .iter()
                .any(|path| names.iter().any(|other| other != name && reads_review[other] && related(path, other)));
            if uses_review {
                reads_review.insert(name.clone(), true);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for plan in by_name.values_mut() {
        let declared = plan.annotations.as_ref().and_then(|a| a.custom_str("input"));
        plan.input = match declared.map(|d| (d, InputShape::parse(d))) {
            Some((_, Some(shape))) => shape,
            Some((text, None)) => {
                tracing::warn!(
                    package = plan.name,
                    input = text,
                    "METADATA custom.input is neither `review` nor `object`; the package's own Rego decides"
                );
                if reads_review[&plan.name] {
                    InputShape::Review
                } else {
                    InputShape::Object
                }
            }
            None if reads_review[&plan.name] => InputShape::Review,
            None => InputShape::Object,
        };
    }
    by_name.into_values().collect()
}

/// One decision request.
pub struct EvalRequest<'a> {
    pub point: Point,
    /// The Rego `input` (context already attached under `plinth`),
    /// converted to the engine's value: from JSON with
    /// [`Input::from_json`], or assembled from parts converted once.
    pub input: &'a Input,
    pub profile: Option<&'a str>,
    pub waivers: &'a [Waiver],
    /// Entity refs the decision is about (waiver scope).
    pub entities: &'a [String],
    pub now: OffsetDateTime,
}

impl<'a> EvalRequest<'a> {
    pub fn new(point: Point, input: &'a Input) -> Self {
        EvalRequest { point, input, profile: None, waivers: &[], entities: &[], now: OffsetDateTime::now_utc() }
    }
}

/// What Plinth attaches to an input under `input.plinth`: where and for
/// whom the decision is made, and the catalogue around its subject. One
/// definition for every point, whether the input is built as JSON (a
/// request) or from parts already converted (the governance view).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub point: Point,
    /// `production`, `staging`, … (for a catalogue entity, its lifecycle).
    pub environment: Option<&'a str>,
    pub user: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub now: OffsetDateTime,
    /// Whether `entities` comes from the catalogue (policies that need it
    /// must not deny on an absence they cannot see otherwise).
    pub catalog: bool,
}

impl Context<'_> {
    fn now_text(&self) -> String {
        self.now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    }

    /// `input.plinth` as JSON, with the entities it names (by key) and,
    /// when given, the subject's documentation facts.
    pub fn to_json(&self, entities: Value, docs: Option<Value>) -> Value {
        let mut context = serde_json::json!({
            "point": self.point.as_str(),
            "environment": self.environment,
            "user": self.user,
            "profile": self.profile,
            "now": self.now_text(),
            "catalog": self.catalog,
            "entities": entities,
        });
        if let Some(docs) = docs {
            context["docs"] = docs;
        }
        context
    }

    /// [`Context::to_json`] assembled from converted parts.
    pub fn to_input(&self, entities: Input, docs: Option<Input>) -> Input {
        let mut context = Input::object();
        context.insert("point", self.point.as_str().into());
        context.insert("environment", self.environment.into());
        context.insert("user", self.user.into());
        context.insert("profile", self.profile.into());
        context.insert("now", self.now_text().as_str().into());
        context.insert("catalog", self.catalog.into());
        context.insert("entities", entities);
        if let Some(docs) = docs {
            context.insert("docs", docs);
        }
        context
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
            key: regorus::Value::from("exception"),
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

/// A rule's value in a dispatch entry, which holds `[value]` (or `[]`
/// when the rule is undefined).
pub(crate) fn first(gathered: &regorus::Value) -> regorus::Value {
    match gathered {
        regorus::Value::Array(items) => items.first().cloned().unwrap_or(regorus::Value::Undefined),
        _ => regorus::Value::Undefined,
    }
}

/// A JSON document as regorus' value, converted from the reference (no
/// copy of the JSON first, no text in between).
pub(crate) fn to_regorus(value: &Value) -> regorus::Value {
    use serde::Deserialize;
    regorus::Value::deserialize(value).unwrap_or(regorus::Value::Undefined)
}

/// A Rego input already converted to the engine's value.
///
/// Converting JSON is a large share of a decision's cost. Callers that build
/// many inputs from the same parts (the governance view attaches the same
/// owner team, system and models to thousands of entities) convert each
/// part once, keep it, and assemble inputs with [`Input::insert`]: cloning
/// an `Input` shares its contents (reference counted), it does not copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Input(regorus::Value);

impl Input {
    pub fn from_json(value: &Value) -> Input {
        Input(to_regorus(value))
    }

    /// Parsed straight from JSON text, without a `serde_json::Value` in
    /// between; `None` when the text is not JSON.
    pub fn parse(text: &str) -> Option<Input> {
        regorus::Value::from_json_str(text).ok().map(Input)
    }

    pub fn object() -> Input {
        Input(regorus::Value::new_object())
    }

    pub fn null() -> Input {
        Input(regorus::Value::Null)
    }

    /// Sets `key` on an object (copying the object's top level only if it
    /// is shared); does nothing on any other value.
    pub fn insert(&mut self, key: &str, value: Input) {
        if let regorus::Value::Object(fields) = &mut self.0 {
            regorus::Rc::make_mut(fields).insert(regorus::Value::from(key), value.0);
        }
    }

    /// The input as JSON (for the decision log). Sets become arrays.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(&self.0).unwrap_or(Value::Null)
    }

    pub(crate) fn value(&self) -> &regorus::Value {
        &self.0
    }
}

impl From<&str> for Input {
    fn from(text: &str) -> Input {
        Input(regorus::Value::from(text))
    }
}

impl From<bool> for Input {
    fn from(value: bool) -> Input {
        Input(regorus::Value::from(value))
    }
}

impl<T: Into<Input>> From<Option<T>> for Input {
    fn from(value: Option<T>) -> Input {
        value.map_or_else(Input::null, Into::into)
    }
}

/// What an object-shaped package sees of an AdmissionReview input: the
/// object under review, with the context (`input.plinth`) the engine was
/// given; `None` when the request carries no object (DELETE, CONNECT).
fn review_object(input: &regorus::Value) -> Option<regorus::Value> {
    let mut object = input[&regorus::Value::from("review")][&regorus::Value::from("object")].clone();
    let context = &input[&regorus::Value::from("plinth")];
    let regorus::Value::Object(fields) = &mut object else { return None };
    if *context != regorus::Value::Undefined {
        regorus::Rc::make_mut(fields).insert(regorus::Value::from("plinth"), context.clone());
    }
    Some(object)
}

/// The kind of the object a decision is about: `input.kind`, or on an
/// AdmissionReview input the object's kind (the request's for DELETE).
fn subject_kind(input: &regorus::Value) -> Option<&str> {
    fn text(value: &regorus::Value) -> Option<&str> {
        match value {
            regorus::Value::String(s) => Some(s.as_ref()),
            _ => None,
        }
    }
    let review = &input[&regorus::Value::from("review")];
    if matches!(review, regorus::Value::Object(_)) {
        let object_kind = &review[&regorus::Value::from("object")][&regorus::Value::from("kind")];
        text(object_kind).or_else(|| text(&review[&regorus::Value::from("kind")][&regorus::Value::from("kind")]))
    } else {
        text(&input[&regorus::Value::from("kind")])
    }
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
    match object {
        regorus::Value::Object(map) => {
            map.get(&regorus::Value::from(key)).cloned().unwrap_or(regorus::Value::Undefined)
        }
        _ => regorus::Value::Undefined,
    }
}
