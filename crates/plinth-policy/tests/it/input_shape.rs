//! What a package sees as `input` on an AdmissionReview input: conftest
//! policies (`package main`, `input.kind`, `input.spec`) see the object
//! under review, Gatekeeper policies (`input.review`) the review — decided
//! per package from its Rego (and the packages it uses) or METADATA
//! `custom.input` — on the VM and the interpreter alike; and packages
//! limited to kinds (METADATA `custom.kinds`) are skipped for other kinds.

use plinth_policy::{
    attach_context, Decision, EngineOptions, EvalRequest, Input, InputShape, Point, PolicyBundle, PolicyEngine,
};
use serde_json::{json, Value};

const CONFTEST: &str = r#"package main

import rego.v1

deny contains msg if {
	input.kind == "Deployment"
	some c in input.spec.template.spec.containers
	c.securityContext.privileged == true
	msg := sprintf("container %s is privileged (env %s)", [c.name, input.plinth.environment])
}
"#;

const GATEKEEPER: &str = r#"package k8sprivileged

import rego.v1

violation contains {"msg": msg} if {
	some c in input.review.object.spec.template.spec.containers
	c.securityContext.privileged
	not input.parameters.allowPrivileged
	msg := sprintf("gatekeeper: %s is privileged", [c.name])
}
"#;

/// A helper library reading `input.review`, and a package using it through
/// an import alias: the package is Gatekeeper-shaped by what it uses.
const LIB: &str = r#"package acme.lib

import rego.v1

object := input.review.object if input.review.object != null
else := input

containers contains c if some c in object.spec.template.spec.containers
"#;

const USES_LIB: &str = r#"package acme.privileged

import rego.v1

import data.acme.lib

deny contains msg if {
	some c in lib.containers
	c.securityContext.privileged == true
	msg := sprintf("lib: %s is privileged", [c.name])
}
"#;

/// Reads nothing of `input.review` but says it is Gatekeeper-shaped.
const DECLARED: &str = r#"# METADATA
# custom:
#   input: review
package acme.declared

import rego.v1

deny contains "declared: the review has no object" if not input.object
"#;

/// Only for Pods: skipped for anything else.
const PODS_ONLY: &str = r#"# METADATA
# custom:
#   kinds: [Pod]
package acme.pods

import rego.v1

deny contains "pods: always" if true
"#;

fn deployment(privileged: bool) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "ghcr.io/acme/web:1.0.0", "securityContext": {"privileged": privileged}}
        ]}}}
    })
}

/// The input the admission point builds from an AdmissionReview request,
/// with the context attached as the service attaches it.
fn admission(object: Option<Value>, operation: &str) -> Value {
    let mut request =
        json!({"uid": "u-1", "operation": operation, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}});
    if let Some(object) = object {
        request["object"] = object;
    }
    attach_context(json!({"review": request, "parameters": {}}), json!({"environment": "production"}))
}

fn engines(files: &[(&str, &str)]) -> (tempfile::TempDir, [PolicyEngine; 2]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let bundle = PolicyBundle::load(&[dir.path().to_path_buf()]);
    let vm = PolicyEngine::build(&bundle, EngineOptions::default());
    let interpreter = PolicyEngine::build(&bundle, EngineOptions { vm: false, ..Default::default() });
    assert!(vm.problems().is_empty(), "{:?}", vm.problems());
    (dir, [vm, interpreter])
}

fn messages(decision: &Decision) -> Vec<String> {
    let mut messages: Vec<String> = decision.violations.iter().map(|v| v.message.clone()).collect();
    messages.sort();
    messages
}

/// Decides on both engines, checks they agree, returns the VM's decision.
fn decide(engines: &[PolicyEngine; 2], point: Point, input: &Value) -> Decision {
    let [vm, interpreter] = engines;
    let converted = Input::from_json(input);
    let a = vm.evaluate(&EvalRequest::new(point, &converted));
    let b = interpreter.evaluate(&EvalRequest::new(point, &converted));
    assert_eq!((a.result, &a.violations, a.policies), (b.result, &b.violations, b.policies), "{input}");
    a
}

fn shape(engine: &PolicyEngine, package: &str) -> InputShape {
    engine.packages().iter().find(|p| p.name == package).unwrap_or_else(|| panic!("{package} is loaded")).input
}

#[test]
fn the_shape_of_each_package_is_read_from_its_rego_and_metadata() {
    let (_dir, engines) = engines(&[
        ("conftest.rego", CONFTEST),
        ("gatekeeper.rego", GATEKEEPER),
        ("lib.rego", LIB),
        ("uses_lib.rego", USES_LIB),
        ("declared.rego", DECLARED),
    ]);
    let [vm, _] = &engines;
    assert_eq!(shape(vm, "main"), InputShape::Object);
    assert_eq!(shape(vm, "k8sprivileged"), InputShape::Review);
    assert_eq!(shape(vm, "acme.lib"), InputShape::Review);
    assert_eq!(shape(vm, "acme.privileged"), InputShape::Review, "it uses a package that reads input.review");
    assert_eq!(shape(vm, "acme.declared"), InputShape::Review, "METADATA custom.input wins");
    let summary = vm.summaries().into_iter().find(|p| p.package == "main").unwrap();
    assert_eq!(summary.input, InputShape::Object);
}

#[test]
fn conftest_and_gatekeeper_policies_both_judge_an_admission_review() {
    let (_dir, engines) = engines(&[
        ("conftest.rego", CONFTEST),
        ("gatekeeper.rego", GATEKEEPER),
        ("lib.rego", LIB),
        ("uses_lib.rego", USES_LIB),
    ]);
    // The manifest itself (plinth check, the deploy point): the conftest
    // policy and the library-based one deny; Gatekeeper's needs a review.
    let manifest = attach_context(deployment(true), json!({"environment": "production"}));
    let decision = decide(&engines, Point::Pr, &manifest);
    assert_eq!(
        messages(&decision),
        ["container web is privileged (env production)", "lib: web is privileged"],
        "{decision:?}"
    );
    // The same object in an AdmissionReview: every one of them denies it.
    let review = admission(Some(deployment(true)), "CREATE");
    for point in [Point::Admission, Point::Deploy] {
        let decision = decide(&engines, point, &review);
        assert_eq!(decision.result, plinth_policy::Outcome::Deny);
        assert_eq!(
            messages(&decision),
            ["container web is privileged (env production)", "gatekeeper: web is privileged", "lib: web is privileged",],
            "at {point}: {decision:?}"
        );
        assert_eq!(decision.policies, 3, "{decision:?}");
    }
    // Gatekeeper's parameters still reach Gatekeeper's policy.
    let mut allowed = review.clone();
    allowed["parameters"] = json!({"allowPrivileged": true});
    let decision = decide(&engines, Point::Admission, &allowed);
    assert!(!messages(&decision).iter().any(|m| m.starts_with("gatekeeper")), "{decision:?}");
    // Compliant: allowed.
    let decision = decide(&engines, Point::Admission, &admission(Some(deployment(false)), "CREATE"));
    assert_eq!(decision.result, plinth_policy::Outcome::Allow, "{decision:?}");
    // A DELETE carries no object: object-shaped packages have nothing to
    // judge and are not evaluated; Gatekeeper-shaped ones are.
    let decision = decide(&engines, Point::Admission, &admission(None, "DELETE"));
    assert_eq!(decision.result, plinth_policy::Outcome::Allow, "{decision:?}");
    assert_eq!(decision.policies, 2, "main is skipped without an object: {decision:?}");
    // Every decision ran on the VM.
    let runs = engines[0].dispatch_runs();
    assert!(runs.vm > 0 && runs.interpreter == 0, "{runs:?}");
    assert!(engines[0].vm_coverage().interpreted.is_empty(), "{:?}", engines[0].vm_coverage());
}

#[test]
fn packages_limited_to_kinds_are_skipped_for_other_kinds() {
    let (_dir, engines) = engines(&[("conftest.rego", CONFTEST), ("pods.rego", PODS_ONLY)]);
    let [vm, _] = &engines;
    assert_eq!(vm.packages().iter().find(|p| p.name == "acme.pods").unwrap().kinds, ["pod"]);
    let decision = decide(&engines, Point::Deploy, &deployment(false));
    assert_eq!((decision.policies, decision.violations.len()), (1, 0), "{decision:?}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let decision = decide(&engines, Point::Deploy, &pod);
    assert_eq!(messages(&decision), ["pods: always"], "{decision:?}");
    assert_eq!(decision.policies, 2);
    // On an AdmissionReview, the kind is the object's.
    let decision = decide(&engines, Point::Admission, &admission(Some(pod), "CREATE"));
    assert_eq!(messages(&decision), ["pods: always"], "{decision:?}");
    // Inputs without a kind (golden-path parameters) match no kind.
    let decision = decide(&engines, Point::Provision, &json!({"template": "x", "parameters": {}}));
    assert_eq!(decision.policies, 1, "{decision:?}");
}

/// Import aliases compile to direct rule calls in the patched regorus
/// (patches/README.md): every way of using an alias must still mean what it
/// means on the interpreter.
#[test]
fn import_aliases_mean_the_same_on_the_vm() {
    const ALIASES: &str = r#"package acme.alias

import rego.v1

import data.acme.lib
import data.acme.limits
import data.acme.lib.containers as cs

# A rule through the alias, with a dynamic index after it.
deny contains sprintf("first container %s", [lib.object.spec.template.spec.containers[0].name]) if true

# The whole package as a value.
warn contains sprintf("lib has %d rules", [count(object.keys(lib))]) if true

# Plain data through an alias, indexed by a variable.
warn contains sprintf("limit %s = %v", [k, limits[k]]) if some k, _ in limits

# An alias of a rule itself.
warn contains sprintf("%d containers", [count(cs)]) if true

# Undefined through an alias stays undefined.
deny contains "never" if lib.no_such_rule
"#;
    let (dir, _) = engines(&[("lib.rego", LIB), ("alias.rego", ALIASES)]);
    std::fs::write(dir.path().join("data.json"), r#"{"acme": {"limits": {"cpu": 2, "gpu": 0}}}"#).unwrap();
    let bundle = PolicyBundle::load(&[dir.path().to_path_buf()]);
    let engines = [
        PolicyEngine::build(&bundle, EngineOptions::default()),
        PolicyEngine::build(&bundle, EngineOptions { vm: false, ..Default::default() }),
    ];
    drop(dir);
    for input in [admission(Some(deployment(true)), "CREATE"), deployment(false)] {
        let decision = decide(&engines, Point::Deploy, &input);
        assert_eq!(
            messages(&decision),
            ["1 containers", "first container web", "lib has 2 rules", "limit cpu = 2", "limit gpu = 0"],
            "{decision:?}"
        );
    }
    assert_eq!(engines[0].dispatch_runs().interpreter, 0, "{:?}", engines[0].vm_coverage());
}

/// `input.plinth` is the same document whether a request builds it as
/// JSON or the governance view assembles it from converted parts.
#[test]
fn the_context_is_one_document_in_both_forms() {
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let context = plinth_policy::Context {
        point: Point::Catalog,
        environment: Some("production"),
        user: None,
        profile: Some("inference"),
        now,
        catalog: true,
    };
    let entities = json!({"group:default/team-a": {"kind": "Group", "metadata": {"name": "team-a"}}});
    let docs = json!({"present": true, "pages": 3});
    for docs in [None, Some(docs)] {
        let as_json = context.to_json(entities.clone(), docs.clone());
        let assembled = context.to_input(Input::from_json(&entities), docs.as_ref().map(Input::from_json));
        assert_eq!(assembled, Input::from_json(&as_json));
        assert_eq!(as_json["now"], "2027-01-15T08:00:00Z");
        assert_eq!(as_json["user"], Value::Null);
        assert_eq!(as_json.get("docs").is_some(), docs.is_some());
    }
}
