//! The engine alone on the shipped library: `PolicyEngine::evaluate` over
//! every example input at its natural point, without catalogue context.
//! A quick loop for profiling the engine (`perf record -g`) without building
//! the whole binary; `plinth bench policy` is the figure that counts.
//!
//! ```sh
//! cargo run --release -p plinth-policy --example decide -- [DECISIONS]
//! ```

use plinth_policy::{attach_context, EngineOptions, EvalRequest, Input, Point, PolicyBundle, PolicyEngine};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let decisions: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(5000);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let started = Instant::now();
    let bundle = PolicyBundle::load(&[repo.join("policies")]);
    let engine = PolicyEngine::build(&bundle, EngineOptions::default());
    println!(
        "built the engine in {:?} ({} problems, {} dispatch rules on the VM)",
        started.elapsed(),
        engine.problems().len(),
        engine.vm_coverage().compiled.len()
    );
    for policy in engine.summaries() {
        println!("  {:<34} input: {}", policy.package, policy.input.as_str());
    }
    let inputs = repo.join("examples/policy-inputs");
    let cases: [(&str, Point); 6] = [
        ("provision-params.json", Point::Provision),
        ("training-job.yaml", Point::Provision),
        ("inference-service.yaml", Point::Deploy),
        ("deployment-bad.yaml", Point::Deploy),
        ("admission-review.json", Point::Admission),
        ("agent-deployment.yaml", Point::Admission),
    ];
    for (file, point) in cases {
        let text = std::fs::read_to_string(inputs.join(file)).expect("example input");
        let document = plinth_model::yaml::parse_document(&text).expect("example parses");
        let document = match document.get("request") {
            Some(request) if document["kind"] == "AdmissionReview" => json!({"review": request, "parameters": {}}),
            _ => document,
        };
        let context = json!({"point": point.as_str(), "environment": "production", "catalog": false, "entities": {}});
        let input = Input::from_json(&attach_context(document, context));
        for _ in 0..decisions / 10 {
            engine.evaluate(&EvalRequest::new(point, &input));
        }
        let mut samples = Vec::with_capacity(decisions);
        let mut last = None;
        for _ in 0..decisions {
            let at = Instant::now();
            let decision = engine.evaluate(&EvalRequest::new(point, &input));
            samples.push(at.elapsed().as_secs_f64() * 1000.0);
            last = Some(decision);
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let decision = last.expect("decisions ran");
        println!(
            "{file:<24} {point:<9} {:<5} violations {:>2} packages {} p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
            decision.result.as_str(),
            decision.violations.len(),
            decision.policies,
            at(0.5),
            at(0.99),
            samples[samples.len() - 1]
        );
    }
    let runs = engine.dispatch_runs();
    println!("dispatch runs: vm {} interpreter {}", runs.vm, runs.interpreter);
}
