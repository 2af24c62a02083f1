//! Decisions on regorus' bytecode VM must equal the interpreter's, rule for
//! rule, on the shipped library and its example inputs (the interpreter is
//! the reference: it is what `plinth policy test` runs).

use plinth_policy::{attach_context, EngineOptions, EvalRequest, Point, PolicyBundle, PolicyEngine};
use serde_json::{json, Value};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn documents(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "json") {
        return vec![serde_json::from_str(&text).unwrap()];
    }
    plinth_model::yaml::parse_documents(&text, &Default::default()).into_iter().filter_map(|d| d.value.ok()).collect()
}

#[test]
fn vm_and_interpreter_decide_alike_on_every_example() {
    let bundle = PolicyBundle::load(&[repo().join("policies")]);
    let vm = PolicyEngine::build(&bundle, EngineOptions::default());
    let interpreter = PolicyEngine::build(&bundle, EngineOptions { vm: false, ..Default::default() });
    assert!(vm.problems().is_empty(), "{:?}", vm.problems());
    let mut compared = 0;
    let mut denials = 0;
    for entry in std::fs::read_dir(repo().join("examples/policy-inputs")).unwrap() {
        let path = entry.unwrap().path();
        for document in documents(&path) {
            let document = match document.get("request") {
                Some(request) if document["kind"] == "AdmissionReview" => json!({"review": request, "parameters": {}}),
                _ => document,
            };
            for point in Point::ALL {
                for environment in ["production", "dev"] {
                    let context =
                        json!({"point": point.as_str(), "environment": environment, "catalog": false, "entities": {}});
                    let input = attach_context(document.clone(), context);
                    let a = vm.evaluate(&EvalRequest::new(point, &input));
                    let b = interpreter.evaluate(&EvalRequest::new(point, &input));
                    let strip = |d: &plinth_policy::Decision| (d.result, d.violations.clone(), d.policies);
                    assert_eq!(strip(&a), strip(&b), "{} at {point} ({environment})", path.display());
                    compared += 1;
                    denials += a.denials().count();
                }
            }
        }
    }
    assert!(compared >= 80, "compared {compared} decisions");
    assert!(denials > 20, "the examples should exercise denials, got {denials}");
}
