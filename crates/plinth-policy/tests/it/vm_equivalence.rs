//! Decisions on regorus' bytecode VM must equal the interpreter's, rule for
//! rule, on the shipped library and its example inputs (the interpreter is
//! the reference: it is what `plinth policy test` runs) — and they must
//! really be the VM's: the engine falls back to the interpreter silently,
//! so equal decisions alone would prove nothing if no rule ran on the VM.
//!
//! The engine says which dispatch rules compiled to bytecode
//! (`PolicyEngine::vm_coverage()`) and how many runs the VM and the
//! interpreter answered (`PolicyEngine::dispatch_runs()`); the first test
//! asserts on both. The second establishes it from outside as well:
//! - building the engine logs nothing about a dispatch rule left to the
//!   interpreter (the engine's only trace of a compile-time fallback);
//! - every dispatch rule of the engine's generated module, compiled as the
//!   engine compiles it and run as the engine runs it (same data, input and
//!   time limit), succeeds on the VM for every example input — so the
//!   engine's own run, which falls back only on a VM error, takes the VM —
//!   and equals the interpreter's value;
//! - together those VM runs evaluate every `deny`/`warn` rule and every
//!   scorecard check of the library.
//!
//! An engine that never tried the VM would show no compiled rule and no VM
//! run, which the first test refuses.

use plinth_policy::engine::DEFAULT_TIME_LIMIT;
use plinth_policy::{attach_context, EngineOptions, EvalRequest, Input, Point, PolicyBundle, PolicyEngine};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn library() -> PathBuf {
    let dir = repo().join("policies");
    assert!(dir.is_dir(), "the shipped policy library is missing at {}", dir.display());
    dir
}

fn documents(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "json") {
        return vec![serde_json::from_str(&text).unwrap()];
    }
    plinth_model::yaml::parse_documents(&text, &Default::default()).into_iter().filter_map(|d| d.value.ok()).collect()
}

/// Every example input, at every point and in two environments, with the
/// context attached as the server attaches it.
fn example_inputs() -> Vec<(String, Point, Value)> {
    let mut inputs = Vec::new();
    let dir = repo().join("examples/policy-inputs");
    assert!(dir.is_dir(), "the example inputs are missing at {}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        for document in documents(&path) {
            let document = match document.get("request") {
                Some(request) if document["kind"] == "AdmissionReview" => json!({"review": request, "parameters": {}}),
                _ => document,
            };
            for point in Point::ALL {
                for environment in ["production", "dev"] {
                    let context =
                        json!({"point": point.as_str(), "environment": environment, "catalog": false, "entities": {}});
                    let label = format!("{} at {point} ({environment})", path.display());
                    inputs.push((label, point, attach_context(document.clone(), context)));
                }
            }
        }
    }
    inputs
}

#[test]
fn vm_and_interpreter_decide_alike_on_every_example() {
    let bundle = PolicyBundle::load(&[library()]);
    let vm = PolicyEngine::build(&bundle, EngineOptions::default());
    let interpreter = PolicyEngine::build(&bundle, EngineOptions { vm: false, ..Default::default() });
    assert!(vm.problems().is_empty(), "{:?}", vm.problems());
    let mut compared: u64 = 0;
    let mut denials = 0;
    for (label, point, input) in example_inputs() {
        let converted = Input::from_json(&input);
        let a = vm.evaluate(&EvalRequest::new(point, &converted));
        let b = interpreter.evaluate(&EvalRequest::new(point, &converted));
        let strip = |d: &plinth_policy::Decision| (d.result, d.violations.clone(), d.policies);
        assert_eq!(strip(&a), strip(&b), "{label}");
        compared += 1;
        denials += a.denials().count();
    }
    assert!(compared >= 80, "compared {compared} decisions");
    assert!(denials > 20, "the examples should exercise denials, got {denials}");
    // The equal decisions must really be the VM's: every dispatch rule
    // compiled, and no run fell back to the interpreter.
    let coverage = vm.vm_coverage();
    assert!(coverage.interpreted.is_empty(), "dispatch rules left to the interpreter: {:#?}", coverage.interpreted);
    assert!(!coverage.compiled.is_empty(), "no dispatch rule compiled to bytecode");
    let runs = vm.dispatch_runs();
    assert_eq!(runs.interpreter, 0, "{runs:?}: decisions fell back to the interpreter");
    assert!(runs.vm >= compared, "{runs:?}: fewer VM runs than decisions ({compared})");
    // And the reference really is the interpreter.
    let reference = interpreter.dispatch_runs();
    assert_eq!(reference.vm, 0, "{reference:?}");
    assert!(interpreter.vm_coverage().compiled.is_empty());
}

// ---------------------------------------------------------------------------
// Every rule runs on the VM
// ---------------------------------------------------------------------------

/// A `tracing` subscriber that keeps every event's fields as text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(format!("{} {}: ", event.metadata().level(), event.metadata().target()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The dispatch rules the engine generated (`data.plinth_dispatch.*`): each
/// gathers the `deny`/`warn`/`exception` rules of a set of packages, or the
/// `check_*` rules of the scorecards for a kind. Read from the module text.
// Couples to the engine's internals (the module's package and rule names);
// the proposed `PolicyEngine::vm_coverage()` would replace this.
fn dispatch_entries(template: &regorus::Engine) -> Vec<String> {
    let sources: Vec<Value> = serde_json::from_str(&template.get_policies_as_json().unwrap()).unwrap();
    let module = sources
        .iter()
        .filter_map(|s| s["contents"].as_str())
        .find(|text| text.starts_with("package plinth_dispatch"))
        .expect("the engine has no generated dispatch module: every decision ran on the interpreter");
    module
        .lines()
        .filter_map(|line| line.split_once(" := {").map(|(name, _)| name))
        .filter(|name| name.starts_with("decide_") || name.starts_with("scorecards_"))
        .map(|name| format!("data.plinth_dispatch.{name}"))
        .collect()
}

/// The dispatch rule compiled to VM bytecode exactly as the engine compiles it.
fn compile(template: &regorus::Engine, entry: &str) -> Result<Arc<regorus::rvm::program::Program>, String> {
    let mut engine = template.clone();
    let policy = engine.compile_with_entrypoint(&entry.into()).map_err(|e| e.to_string())?;
    regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[entry]).map_err(|e| e.to_string())
}

#[test]
fn every_rule_runs_on_the_vm() {
    let bundle = PolicyBundle::load(&[library()]);
    let recorder = Recorder::default();
    let vm = tracing::subscriber::with_default(recorder.clone(), || {
        // Proves the recorder sees debug events in this build (no static
        // level filter compiled them out), so silence below means something.
        tracing::debug!(probe = true, "recorder check");
        PolicyEngine::build(&bundle, EngineOptions::default())
    });
    assert!(vm.problems().is_empty(), "{:?}", vm.problems());
    let events = recorder.0.lock().unwrap().clone();
    assert!(events.iter().any(|e| e.contains("recorder check")), "the recorder saw no debug event: {events:?}");
    let fallbacks: Vec<&String> = events
        .iter()
        .filter(|e| e.contains("runs on the interpreter") || e.contains("dispatch module did not compile"))
        .collect();
    assert!(fallbacks.is_empty(), "the engine left dispatch rules to the interpreter:\n{fallbacks:#?}");

    let template = vm.debug_instance();
    let entries = dispatch_entries(&template);
    assert!(entries.iter().any(|e| e.contains(".decide_")), "no decision dispatch rule: {entries:?}");
    assert!(entries.iter().any(|e| e.contains(".scorecards_")), "no scorecard dispatch rule: {entries:?}");
    let data = template.get_data();
    let programs: Vec<(String, Arc<regorus::rvm::program::Program>)> = entries
        .iter()
        .map(|entry| match compile(&template, entry) {
            Ok(program) => (entry.clone(), program),
            Err(error) => panic!("{entry} does not compile to VM bytecode: {error}"),
        })
        .collect();

    // Every (package, rule) the VM evaluated, from the values it returned:
    // `{"<package index>": {"<rule>": [value] | [], ...}, ...}`.
    let mut evaluated: BTreeSet<(String, String)> = BTreeSet::new();
    let mut runs = 0;
    for (label, _, input) in example_inputs() {
        let input = regorus::Value::from(input);
        for (entry, program) in &programs {
            let mut machine = regorus::rvm::RegoVM::new();
            machine.load_program(Arc::clone(program));
            machine.set_execution_timer_config(Some(regorus::utils::limits::ExecutionTimerConfig {
                limit: DEFAULT_TIME_LIMIT,
                check_interval: std::num::NonZeroU32::new(64).unwrap(),
            }));
            machine.set_data(data.clone()).unwrap_or_else(|e| panic!("{entry}: the VM refused the data: {e}"));
            machine.set_input(input.clone());
            let on_vm = machine
                .execute_entry_point_by_name(entry)
                .unwrap_or_else(|e| panic!("{entry} failed on the VM for {label} (the engine would fall back): {e}"));
            let mut interpreter = template.clone();
            interpreter.set_input(input.clone());
            let reference = interpreter.eval_rule(entry.clone()).unwrap_or_else(|e| panic!("{entry}, {label}: {e}"));
            assert_eq!(on_vm, reference, "{entry} on the VM differs from the interpreter for {label}");
            runs += 1;
            let value = serde_json::to_value(&on_vm).unwrap();
            let packages = value.as_object().unwrap_or_else(|| panic!("{entry}: not an object: {value}"));
            for (index, rules) in packages {
                let package = &vm.packages()[index.parse::<usize>().unwrap()].name;
                for rule in rules.as_object().unwrap().keys() {
                    evaluated.insert((package.clone(), rule.clone()));
                }
            }
        }
    }
    assert!(runs > 0, "nothing ran on the VM");
    let mut missing = Vec::new();
    for policy in vm.summaries() {
        for rule in &policy.rules {
            if !evaluated.contains(&(policy.package.clone(), rule.rule.clone())) {
                missing.push(format!("{}.{}", policy.package, rule.rule));
            }
        }
    }
    for card in plinth_policy::scorecard::definitions(&vm) {
        for check in &card.checks {
            if !evaluated.contains(&(card.package.clone(), format!("check_{}", check.id))) {
                missing.push(format!("{}.check_{}", card.package, check.id));
            }
        }
    }
    assert!(missing.is_empty(), "rules that never ran on the VM: {missing:?}");
}
