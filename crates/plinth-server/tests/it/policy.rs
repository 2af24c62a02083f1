//! The policy service over real loopback HTTP, in-process, on both store
//! backends (SQLite and PostgreSQL): real-world conftest and Gatekeeper (Rego
//! v0) policies, load problems failing closed, the evaluation time limit, the
//! Kubernetes admission webhook against the shipped library, enforcement
//! modes (`warn` and `dry-run`, declared in METADATA or overridden as
//! `plinth serve --policy-mode ID=MODE` does), the decision log (filters,
//! paging, OPA's event shape, masking, retention), waivers (with validation
//! and expiry), the catalog point and scorecards, and hot reload from a
//! directory and from a git repository.
//!
//! Servers come from `plinth_testkit::TestServer`. Every scenario runs twice:
//! `sqlite::<scenario>` and `postgres::<scenario>`. PostgreSQL comes from
//! `PLINTH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `PLINTH_SKIP_POSTGRES=1`
//! skips that half. Fixtures live in `tests/data/policy/`.
//!
//! Nothing here asserts how long something takes: background work (reloads,
//! the governance view, the decision-log writer) is awaited as a condition
//! with a generous bound, and the waiver expiry is checked against the clock
//! the engine itself used for each decision.

use plinth_policy::{Enforcement, Waiver};
use plinth_testkit::server::PolicyTweak;
use plinth_testkit::{git, scenarios, wait_until, workspace_root, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

scenarios!(
    conftest_and_gatekeeper_v0_policies_run_unchanged,
    syntax_error_fails_closed_only_where_the_policy_applies,
    expensive_policy_is_stopped_by_the_time_limit,
    admission_webhook_round_trip_with_the_shipped_library,
    warn_enforcement_mode_warns_at_the_api_and_in_the_webhook,
    policy_mode_overrides_by_id_rule_and_package,
    decision_log_filters_pages_masks_and_retains,
    waivers_validate_apply_expire_and_revoke,
    catalog_point_follows_catalogue_changes_with_scorecards,
    hot_reload_from_a_directory,
    git_policy_source_is_fetched_and_applied,
);

/// How long background work (ingestion, reloads, the governance view, the
/// decision log) may take before a test gives up: a bound on a condition,
/// generous for a loaded two-core machine, never a timing assertion.
const LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy").join(name).to_string_lossy().into_owned()
}

/// A server running the policy service on `sources`, with `tweak` applied
/// to the policy configuration. `None` when PostgreSQL is skipped.
async fn start(
    backend: Backend,
    sources: Vec<String>,
    tweak: impl FnOnce(&mut plinth_app::policy::PolicyConfig) + Send + 'static,
) -> Option<TestServer> {
    TestServer::start_with(backend, Options { policy_config: Some(Box::new(tweak)), ..Options::policies(sources) })
        .await
}

/// The policy configuration tweak `plinth serve --policy-mode ID=MODE …`
/// makes (parsed as `crates/plinth/src/serve.rs` does).
fn policy_modes(modes: &[&str]) -> Option<PolicyTweak> {
    let modes: Vec<(String, Enforcement)> = modes
        .iter()
        .map(|mode| {
            let (id, value) = mode.split_once('=').unwrap_or_else(|| panic!("--policy-mode `{mode}` is ID=MODE"));
            (id.trim().to_string(), Enforcement::parse(value).unwrap_or_else(|e| panic!("{mode}: {e}")))
        })
        .collect();
    Some(Box::new(move |config| config.enforcement.extend(modes)))
}

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create directory");
    }
    std::fs::write(path, content).expect("write file");
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("format time")
}

fn violations(decision: &Value) -> Vec<Value> {
    decision["violations"].as_array().cloned().unwrap_or_default()
}

/// The violations of `decision` with METADATA id `id`.
fn with_id(decision: &Value, id: &str) -> Vec<Value> {
    violations(decision).into_iter().filter(|v| v["id"] == json!(id)).collect()
}

/// The one violation of `decision` with METADATA id `id`.
fn one(decision: &Value, id: &str) -> Value {
    let found = with_id(decision, id);
    assert_eq!(found.len(), 1, "one {id} violation: {decision}");
    found.into_iter().next().unwrap()
}

fn ids(decision: &Value) -> Vec<String> {
    violations(decision).iter().filter_map(|v| v["id"].as_str().map(str::to_string)).collect()
}

fn error_text(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

/// Polls `probe` (through `wait_until`) until it returns `Some`; panics
/// naming `what` after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let found = Arc::new(Mutex::new(None));
    wait_until(limit, what, || {
        let found = Arc::clone(&found);
        let probe = probe();
        async move {
            let value = probe.await;
            let done = value.is_some();
            *found.lock().unwrap() = value;
            done
        }
    })
    .await;
    let value = found.lock().unwrap().take();
    value.expect("wait_until returned, so the probe answered")
}

/// `POST /api/policy/evaluate`, which must answer 200.
async fn evaluate(server: &TestServer, point: &str, input: &Value) -> Value {
    let (status, body) = server.post("/api/policy/evaluate", &json!({"point": point, "input": input})).await;
    assert_eq!(status, StatusCode::OK, "evaluate at {point}: {body}");
    body
}

/// `POST /api/policy/admission`, which must answer 200; the `response`.
async fn admit(server: &TestServer, review: &Value) -> Value {
    let (status, body) = server.post("/api/policy/admission", review).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["apiVersion"], json!("admission.k8s.io/v1"), "{body}");
    assert_eq!(body["kind"], json!("AdmissionReview"), "{body}");
    assert_eq!(body["response"]["uid"], review["request"]["uid"], "the uid is echoed: {body}");
    body["response"].clone()
}

/// A Deployment as conftest sees it (the manifest itself is the input).
fn deployment(name: &str, image: &str, replicas: u64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {
                    "securityContext": {"runAsNonRoot": true},
                    "containers": [{"name": name, "image": image}]
                }
            }
        }
    })
}

fn admission_review_base() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("examples/policy-inputs/admission-review.json"))
        .expect("read the example AdmissionReview");
    serde_json::from_str(&text).expect("example AdmissionReview is JSON")
}

/// An `AdmissionReview` v1 request for `object`.
fn review_of(uid: &str, object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "operation": "CREATE", "userInfo": {"username": "alice"}, "object": object}
    })
}

/// Decisions from the log (after flushing it).
async fn log(server: &TestServer, query: &[(&str, &str)]) -> Value {
    server.policy().flush_log().await;
    server.ok_q("/api/policy/decisions", query).await
}

/// The logged event of one decision.
async fn logged(server: &TestServer, point: &str, decision_id: &str) -> Value {
    let page = log(server, &[("point", point), ("limit", "1000")]).await;
    let event = page["items"].as_array().unwrap().iter().find(|e| e["decision_id"] == json!(decision_id)).cloned();
    event.unwrap_or_else(|| panic!("decision {decision_id} is logged at {point}: {page}"))
}

/// The clock the engine judged a decision by (`input.plinth.now` in its
/// logged event).
async fn engine_clock(server: &TestServer, decision: &Value) -> OffsetDateTime {
    let id = decision["decisionId"].as_str().expect("a decision id");
    let event = logged(server, decision["point"].as_str().expect("a point"), id).await;
    let now = event["input"]["plinth"]["now"].as_str().unwrap_or_else(|| panic!("input.plinth.now: {event}"));
    OffsetDateTime::parse(now, &Rfc3339).expect("an RFC 3339 time")
}

fn decision_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["decision_id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Enforcement mode of each rule of `package`, as `GET /api/policy/policies`
/// lists them.
fn rule_modes(policies: &Value, package: &str) -> Vec<(String, String)> {
    let policy = policies["policies"].as_array().unwrap().iter().find(|p| p["package"] == json!(package));
    let policy = policy.unwrap_or_else(|| panic!("{package} is loaded: {policies}"));
    let mut modes: Vec<(String, String)> = policy["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap().to_string(), r["enforcement"].as_str().unwrap().to_string()))
        .collect();
    modes.sort();
    modes
}

fn modes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(rule, mode)| (rule.to_string(), mode.to_string())).collect()
}

// ---------------------------------------------------------------------------
// 1. Real-world policies
// ---------------------------------------------------------------------------

async fn conftest_and_gatekeeper_v0_policies_run_unchanged(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, Options::policies(vec![fixture("real-world")])).await else {
        return;
    };

    // Both files load (the Gatekeeper one as v0 thanks to the .manifest).
    let policies = server.ok("/api/policy/policies").await;
    assert_eq!(policies["problems"], json!([]), "no load problems: {policies}");
    let packages: Vec<&str> =
        policies["policies"].as_array().unwrap().iter().filter_map(|p| p["package"].as_str()).collect();
    assert!(packages.contains(&"main") && packages.contains(&"k8srequiredlabels"), "{packages:?}");
    let main = policies["policies"].as_array().unwrap().iter().find(|p| p["package"] == "main").unwrap();
    let deny = main["rules"].as_array().unwrap().iter().find(|r| r["rule"] == "deny").expect("deny rule listed");
    assert_eq!(deny["id"], json!("ACME-K8S-001"));
    assert_eq!(deny["severity"], json!("critical"));
    assert_eq!(deny["controls"], json!(["CIS-K8S-5.2.6", "ACME-SEC-12"]));
    assert!(deny["file"].as_str().unwrap().ends_with("conftest/deployment.rego"), "{deny}");
    assert_eq!(deny["line"], json!(12), "{deny}");

    // conftest: a Deployment running as root with a :latest image, excepted
    // by annotation, and without the recommended label.
    let mut manifest = deployment("cart", "ghcr.io/acme/cart:latest", 2);
    manifest["metadata"]["labels"] = json!({});
    manifest["metadata"]["annotations"] = json!({"acme.io/allow-latest": "true"});
    manifest["spec"]["template"]["spec"]["securityContext"] = json!({});
    let decision = evaluate(&server, "deploy", &manifest).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert!(decision["decisionId"].as_str().is_some_and(|id| !id.is_empty()), "{decision}");
    assert!(
        violations(&decision).iter().all(|v| v["policy"] == "main"),
        "the Gatekeeper policy does not fire on a non-admission input: {decision}"
    );
    let root = with_id(&decision, "ACME-K8S-001");
    assert_eq!(root.len(), 1, "{decision}");
    let root = &root[0];
    assert_eq!(root["rule"], json!("deny"));
    assert_eq!(root["kind"], json!("deny"));
    assert_eq!(root["severity"], json!("critical"));
    assert_eq!(root["controls"], json!(["CIS-K8S-5.2.6", "ACME-SEC-12"]));
    assert_eq!(root["title"], json!("Containers must not run as root"));
    assert_eq!(root["effect"], json!("deny"));
    assert!(root["message"].as_str().unwrap().starts_with("Deployment cart: containers must not run as root"));
    assert_eq!(root.get("excepted"), None, "not excepted: {root}");
    let latest = with_id(&decision, "ACME-K8S-002");
    assert_eq!(latest.len(), 1, "{decision}");
    let latest = &latest[0];
    assert_eq!(latest["excepted"], json!(true), "exception contains [\"latest\"] excepts deny_latest: {latest}");
    assert_eq!(latest["effect"], json!("allow"), "an excepted violation does not deny: {latest}");
    assert_eq!(latest["message"], json!("container cart uses the mutable image ghcr.io/acme/cart:latest"));
    assert_eq!(latest["details"], json!({"container": "cart", "image": "ghcr.io/acme/cart:latest"}));
    let warns: Vec<Value> = violations(&decision).into_iter().filter(|v| v["rule"] == "warn").collect();
    assert_eq!(warns.len(), 1, "{decision}");
    assert_eq!(warns[0]["kind"], json!("warn"));
    assert_eq!(warns[0]["effect"], json!("warn"));
    assert!(warns[0]["message"].as_str().unwrap().contains("app.kubernetes.io/name"));

    // Without the exception annotation the :latest image denies too; fixed,
    // only the warning is left and the decision is `warn`.
    manifest["metadata"]["annotations"] = json!({});
    let decision = evaluate(&server, "deploy", &manifest).await;
    assert_eq!(with_id(&decision, "ACME-K8S-002")[0]["effect"], json!("deny"), "{decision}");
    assert_eq!(with_id(&decision, "ACME-K8S-002")[0].get("excepted"), None, "{decision}");
    manifest["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ghcr.io/acme/cart:1.4.2");
    let decision = evaluate(&server, "deploy", &manifest).await;
    assert_eq!(decision["result"], json!("warn"), "{decision}");
    assert_eq!(violations(&decision).len(), 1, "{decision}");
    manifest["metadata"]["labels"] = json!({"app.kubernetes.io/name": "cart"});
    let decision = evaluate(&server, "deploy", &manifest).await;
    assert_eq!(decision["result"], json!("allow"), "{decision}");
    assert_eq!(decision["violations"], json!([]));

    // Gatekeeper: the required labels default from data.yaml because the
    // admission point sends `parameters: {}`.
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"containers": [{"name": "web", "image": "ghcr.io/acme/web:1.0.0"}]}
    });
    let input = json!({"review": {"kind": {"kind": "Pod"}, "object": pod}, "parameters": {}});
    let decision = evaluate(&server, "admission", &input).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    let gk: Vec<Value> = violations(&decision).into_iter().filter(|v| v["policy"] == "k8srequiredlabels").collect();
    assert_eq!(gk.len(), 1, "{decision}");
    assert_eq!(gk[0]["rule"], json!("violation"));
    assert_eq!(gk[0]["kind"], json!("deny"), "Gatekeeper's violation counts as deny");
    assert_eq!(gk[0]["message"], json!(r#"you must provide labels: {"owner"}"#), "{}", gk[0]);
    assert_eq!(gk[0]["details"], json!({"missing_labels": ["owner"]}));
    assert!(gk[0]["file"].as_str().unwrap().ends_with("gatekeeper/k8srequiredlabels.rego"));
    // Constraint parameters given explicitly win over the defaults, with the
    // custom message.
    let explicit = json!({"review": {"object": pod}, "parameters": {"labels": ["tier", "app.kubernetes.io/name"], "message": "label your pods"}});
    let decision = evaluate(&server, "admission", &explicit).await;
    let gk = violations(&decision);
    assert_eq!(gk.len(), 1, "{decision}");
    assert_eq!(gk[0]["message"], json!("label your pods"));
    assert_eq!(gk[0]["details"], json!({"missing_labels": ["tier"]}));

    // The same through the admission webhook.
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "gk-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
                    "userInfo": {"username": "alice"}, "object": pod}
    });
    let (status, body) = server.post("/api/policy/admission", &review).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = &body["response"];
    assert_eq!(response["uid"], json!("gk-1"));
    assert_eq!(response["allowed"], json!(false), "{body}");
    assert_eq!(response["status"]["code"], json!(403));
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains(r#"you must provide labels: {"owner"}"#), "{message}");
    let mut labelled = pod.clone();
    labelled["metadata"]["labels"]["owner"] = json!("team-shop");
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "gk-2", "operation": "CREATE", "object": labelled}});
    let (status, body) = server.post("/api/policy/admission", &review).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["allowed"], json!(true), "{body}");
    assert_eq!(body["response"]["uid"], json!("gk-2"));
    assert!(body["response"].get("status").is_none(), "{body}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 2. Syntax errors fail closed
// ---------------------------------------------------------------------------

async fn syntax_error_fails_closed_only_where_the_policy_applies(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, Options::policies(vec![fixture("broken")])).await else {
        return;
    };
    let broken_line = std::fs::read_to_string(fixture("broken/broken.rego"))
        .unwrap()
        .lines()
        .position(|l| l.contains("== )"))
        .unwrap()
        + 1;

    let policies = server.ok("/api/policy/policies").await;
    let problems = policies["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{policies}");
    let problem = &problems[0];
    assert!(problem["file"].as_str().unwrap().ends_with("broken/broken.rego"), "{problem}");
    assert_eq!(problem["line"], json!(broken_line), "the problem names the line: {problem}");
    assert_eq!(problem["package"], json!("acme.broken"));
    assert_eq!(problem["points"], json!(["admission"]));
    assert!(!problem["message"].as_str().unwrap().is_empty());
    let packages: Vec<&str> =
        policies["policies"].as_array().unwrap().iter().filter_map(|p| p["package"].as_str()).collect();
    assert_eq!(packages, ["acme.good"], "the broken package is left out, the good one loads");

    // The point the broken file covers fails closed, naming file:line.
    let decision = evaluate(&server, "admission", &json!({"kind": "Pod", "metadata": {"name": "x"}})).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    let errors: Vec<Value> = violations(&decision).into_iter().filter(|v| v["kind"] == "error").collect();
    assert_eq!(errors.len(), 1, "{decision}");
    let error = &errors[0];
    assert_eq!(error["effect"], json!("deny"));
    assert_eq!(error["policy"], json!("acme.broken"));
    assert!(error["file"].as_str().unwrap().ends_with("broken/broken.rego"), "{error}");
    assert_eq!(error["line"], json!(broken_line));
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(&format!("broken/broken.rego:{broken_line}")), "message names file:line: {message}");
    assert!(message.contains("fails closed"), "{message}");

    // A point it does not cover evaluates the other policies normally.
    let small = evaluate(&server, "deploy", &json!({"kind": "Deployment", "spec": {"replicas": 3}})).await;
    assert_eq!(small["result"], json!("allow"), "{small}");
    assert_eq!(small["violations"], json!([]));
    assert_eq!(small["policies"], json!(1));
    let big = evaluate(&server, "deploy", &json!({"kind": "Deployment", "spec": {"replicas": 30}})).await;
    assert_eq!(big["result"], json!("deny"), "{big}");
    assert_eq!(ids(&big), ["ACME-GOOD-001"]);
    assert_eq!(with_id(&big, "ACME-GOOD-001")[0]["message"], json!("30 replicas is more than the 10 allowed"));
    assert!(violations(&big).iter().all(|v| v["kind"] != "error"), "{big}");

    // The fail-closed decision is in the log as a denial.
    let page = log(&server, &[("point", "admission"), ("result", "deny")]).await;
    assert_eq!(decision_ids(&page), [decision["decisionId"].as_str().unwrap()]);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Time limit
// ---------------------------------------------------------------------------

async fn expensive_policy_is_stopped_by_the_time_limit(backend: Backend) {
    let Some(server) = start(backend, vec![fixture("slow")], |config| {
        config.time_limit = Duration::from_millis(50);
    })
    .await
    else {
        return;
    };
    assert_eq!(server.ok("/api/policy/policies").await["problems"], json!([]));

    // Cheap input: the same policy evaluates and allows.
    let decision = evaluate(&server, "deploy", &json!({"spec": {"size": 5}})).await;
    assert_eq!(decision["result"], json!("allow"), "{decision}");

    // 3000 × 3000 iterations: stopped, failing closed. (How quickly is a
    // benchmark's business, not this test's.)
    let decision = evaluate(&server, "deploy", &json!({"spec": {"size": 3000}})).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    let errors: Vec<Value> = violations(&decision).into_iter().filter(|v| v["kind"] == "error").collect();
    assert_eq!(errors.len(), 1, "{decision}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("time limit") && message.contains("50 ms"), "{message}");
    assert!(message.contains("fails closed"), "{message}");
    assert_eq!(errors[0]["effect"], json!("deny"));
    assert_eq!(errors[0]["policy"], json!("acme.slow"));
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 4. Admission webhook against the shipped library
// ---------------------------------------------------------------------------

const ORDERS_CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-orders
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: orders
spec:
  owner: team-orders
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: orders-api
spec:
  type: service
  lifecycle: production
  owner: team-orders
  system: orders
"#;

async fn admission_webhook_round_trip_with_the_shipped_library(backend: Backend) {
    let library = workspace_root().join("policies").to_string_lossy().into_owned();
    let Some(server) = TestServer::start_with(backend, Options::policies(vec![library])).await else {
        return;
    };
    assert_eq!(server.ok("/api/policy/policies").await["problems"], json!([]), "the shipped library loads");
    let catalog = server.write("catalog/catalog-info.yaml", ORDERS_CATALOG);
    server.register_new(&catalog).await;

    // The example review is admitted: the uid is echoed and the decision id
    // is an audit annotation that leads to the logged decision.
    let review = admission_review_base();
    let uid = review["request"]["uid"].as_str().unwrap().to_string();
    let (status, body) = server.post("/api/policy/admission", &review).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["apiVersion"], json!("admission.k8s.io/v1"));
    assert_eq!(body["kind"], json!("AdmissionReview"));
    let response = &body["response"];
    assert_eq!(response["uid"], json!(uid));
    assert_eq!(response["allowed"], json!(true), "{body}");
    assert!(response.get("status").is_none(), "{body}");
    assert!(response.get("warnings").is_none(), "the example is clean: {body}");
    let decision_id = response["auditAnnotations"]["plinth.io/decision-id"].as_str().expect("decision id").to_string();
    let revision = response["auditAnnotations"]["plinth.io/policy-revision"].as_str().unwrap();
    assert_eq!(revision, server.ok("/api/policy/policies").await["revision"].as_str().unwrap());
    let page = log(&server, &[("point", "admission")]).await;
    let event = page["items"].as_array().unwrap().iter().find(|e| e["decision_id"] == json!(decision_id));
    let event = event.unwrap_or_else(|| panic!("decision {decision_id} logged: {page}"));
    assert_eq!(event["result"]["result"], json!("allow"));
    assert_eq!(event["requested_by"], json!("system:serviceaccount:argocd:argocd-application-controller"));
    assert_eq!(event["input"]["review"]["uid"], json!(uid));

    // Privileged: denied with 403 and PL-BASE-001 in the message.
    let mut privileged = admission_review_base();
    privileged["request"]["uid"] = json!("priv-0001");
    privileged["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] =
        json!(true);
    let (status, body) = server.post("/api/policy/admission", &privileged).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = &body["response"];
    assert_eq!(response["uid"], json!("priv-0001"));
    assert_eq!(response["allowed"], json!(false), "{body}");
    assert_eq!(response["status"]["code"], json!(403));
    assert_eq!(response["status"]["reason"], json!("Forbidden"));
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("[PL-BASE-001]"), "{message}");
    assert!(message.contains("runs privileged"), "{message}");
    let denied_id = response["auditAnnotations"]["plinth.io/decision-id"].as_str().unwrap();
    assert!(message.contains(denied_id), "the message names the decision: {message}");

    // Privilege escalation allowed: admitted with a warning.
    let mut escalating = admission_review_base();
    escalating["request"]["uid"] = json!("warn-0001");
    escalating["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("allowPrivilegeEscalation");
    let (status, body) = server.post("/api/policy/admission", &escalating).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["allowed"], json!(true), "{body}");
    let warnings = body["response"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{body}");
    assert!(warnings[0].as_str().unwrap().starts_with("[PL-BASE-006] "), "{warnings:?}");

    // Malformed reviews: 400 saying what is wrong.
    let mut old = admission_review_base();
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, body) = server.post("/api/policy/admission", &old).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = error_text(&body);
    assert!(message.contains("admission.k8s.io/v1beta1") && message.contains("admissionReviewVersions"), "{message}");
    let mut no_uid = admission_review_base();
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let (status, body) = server.post("/api/policy/admission", &no_uid).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_text(&body).contains("no `uid`"), "{body}");
    let (status, body) = server
        .post("/api/policy/admission", &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_text(&body).contains("no `request`"), "{body}");
    let (status, body) = server.post_raw("/api/policy/admission", "application/json", "{\"apiVersion\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_text(&body).contains("AdmissionReview"), "{body}");

    // The evaluate API at the admission point: the review's request as
    // `review` is decided as the webhook decides it; a whole AdmissionReview
    // is refused (at any point), not allowed unread by every policy.
    let decision = evaluate(&server, "admission", &json!({"review": privileged["request"], "parameters": {}})).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert!(ids(&decision).contains(&"PL-BASE-001".to_string()), "{decision}");
    let logged_count = |page: Value| page["items"].as_array().map(Vec::len);
    let decisions_before = logged_count(log(&server, &[("limit", "1000")]).await);
    for (point, instead) in [("admission", "POST /api/policy/admission"), ("deploy", "request.object")] {
        let (status, body) = server.post("/api/policy/evaluate", &json!({"point": point, "input": privileged})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = error_text(&body);
        assert!(message.contains("a whole AdmissionReview") && message.contains(instead), "{message}");
    }
    let decisions_after = logged_count(log(&server, &[("limit", "1000")]).await);
    assert_eq!(decisions_after, decisions_before, "a refused input is not a decision");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 5. Enforcement modes: `warn` and `dry-run`, in METADATA and overridden
// ---------------------------------------------------------------------------

/// A Deployment for the `modes` fixture (package `acme.rollout`): with or
/// without resource limits (ACME-RES-001, `enforcement: warn`), privileged
/// or not (ACME-PRIV-001, enforced), with `image` (ACME-TAG-001, enforced,
/// denies `:latest`).
fn rollout(image: &str, limits: bool, privileged: bool) -> Value {
    let mut container = json!({"name": "api", "image": image, "securityContext": {"privileged": privileged}});
    if limits {
        container["resources"] = json!({"limits": {"cpu": "1", "memory": "512Mi"}});
    }
    let mut manifest = deployment("api", image, 2);
    manifest["spec"]["template"]["spec"]["containers"] = json!([container]);
    manifest
}

const NO_LIMITS: &str = "container api declares no resource limits";
const PRIVILEGED: &str = "container api runs privileged";
const LATEST: &str = "container api uses the mutable image ghcr.io/acme/api:latest";

/// Checks one violation's kind, mode, effect and message.
fn assert_violation(decision: &Value, id: &str, enforcement: &str, effect: &str, message: &str) {
    let violation = one(decision, id);
    assert_eq!(violation["kind"], json!("deny"), "a deny rule whatever its mode: {violation}");
    assert_eq!(violation["enforcement"], json!(enforcement), "{violation}");
    assert_eq!(violation["effect"], json!(effect), "{violation}");
    assert_eq!(violation["message"], json!(message), "{violation}");
    assert_eq!(violation["policy"], json!("acme.rollout"), "{violation}");
    assert!(violation.get("excepted").is_none() && violation.get("waiver").is_none(), "{violation}");
}

/// A rule declared `enforcement: warn` in its METADATA warns instead of
/// denying: `result: warn` with the violation listed as a warning at
/// `POST /api/policy/evaluate`, and an admitted request with the violation
/// in `warnings` at the admission webhook.
async fn warn_enforcement_mode_warns_at_the_api_and_in_the_webhook(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, Options::policies(vec![fixture("modes")])).await else {
        return;
    };
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(listed["problems"], json!([]), "{listed}");
    assert_eq!(
        rule_modes(&listed, "acme.rollout"),
        modes(&[("deny_latest", "enforce"), ("deny_no_limits", "warn"), ("deny_privileged", "enforce")]),
        "{listed}"
    );

    // No limits: the only violation warns, so the decision is `warn`.
    let decision = evaluate(&server, "deploy", &rollout("ghcr.io/acme/api:1.0.0", false, false)).await;
    assert_eq!(decision["result"], json!("warn"), "{decision}");
    assert_eq!(ids(&decision), ["ACME-RES-001"], "{decision}");
    assert_violation(&decision, "ACME-RES-001", "warn", "warn", NO_LIMITS);
    assert_eq!(one(&decision, "ACME-RES-001")["severity"], json!("medium"));
    assert_eq!(one(&decision, "ACME-RES-001")["rationale"], json!("Being rolled out, so it only warns for now."));
    // Logged as a warning, not a denial.
    let warned = decision["decisionId"].as_str().unwrap();
    assert_eq!(decision_ids(&log(&server, &[("point", "deploy"), ("result", "warn")]).await), [warned]);
    assert_eq!(decision_ids(&log(&server, &[("point", "deploy"), ("result", "deny")]).await), Vec::<String>::new());
    let event = logged(&server, "deploy", warned).await;
    assert_eq!(event["result"]["result"], json!("warn"), "{event}");
    assert_eq!(one(&event["result"], "ACME-RES-001")["effect"], json!("warn"), "{event}");
    // Limits set: allowed.
    let clean = evaluate(&server, "deploy", &rollout("ghcr.io/acme/api:1.0.0", true, false)).await;
    assert_eq!(clean["result"], json!("allow"), "{clean}");
    assert_eq!(clean["violations"], json!([]), "{clean}");
    // Next to an enforced rule that fires, the decision denies; the
    // warn-mode violation still only warns.
    let both = evaluate(&server, "deploy", &rollout("ghcr.io/acme/api:1.0.0", false, true)).await;
    assert_eq!(both["result"], json!("deny"), "{both}");
    assert_violation(&both, "ACME-RES-001", "warn", "warn", NO_LIMITS);
    assert_violation(&both, "ACME-PRIV-001", "enforce", "deny", PRIVILEGED);

    // The admission webhook admits it, with the violation as a warning.
    let response = admit(&server, &review_of("warn-mode-1", &rollout("ghcr.io/acme/api:1.0.0", false, false))).await;
    assert_eq!(response["allowed"], json!(true), "{response}");
    assert!(response.get("status").is_none(), "{response}");
    assert_eq!(response["warnings"], json!([format!("[ACME-RES-001] {NO_LIMITS}")]), "{response}");
    let admitted = response["auditAnnotations"]["plinth.io/decision-id"].as_str().expect("decision id");
    let event = logged(&server, "admission", admitted).await;
    assert_eq!(event["result"]["result"], json!("warn"), "{event}");
    assert_eq!(event["requested_by"], json!("alice"));
    // Denied by the enforced rule, it still carries the warning, and the
    // rejection names only what denied it.
    let response = admit(&server, &review_of("warn-mode-2", &rollout("ghcr.io/acme/api:1.0.0", false, true))).await;
    assert_eq!(response["allowed"], json!(false), "{response}");
    assert_eq!(response["status"]["code"], json!(403), "{response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("[ACME-PRIV-001] {PRIVILEGED}")), "{message}");
    assert!(!message.contains("ACME-RES-001"), "a warning does not deny: {message}");
    assert_eq!(response["warnings"], json!([format!("[ACME-RES-001] {NO_LIMITS}")]), "{response}");
    // Clean: admitted without warnings.
    let response = admit(&server, &review_of("warn-mode-3", &rollout("ghcr.io/acme/api:1.0.0", true, false))).await;
    assert_eq!(response["allowed"], json!(true), "{response}");
    assert!(response.get("warnings").is_none() && response.get("status").is_none(), "{response}");
    server.stop().await;
}

/// `plinth serve --policy-mode ID=MODE` overrides a rule's enforcement by
/// policy id, by `package.rule` and by package: `warn` turns a denial into
/// a warning, `dry-run` allows while the would-be violation stays in the
/// decision (and its logged event); the most specific override wins and
/// overrides win over METADATA.
async fn policy_mode_overrides_by_id_rule_and_package(backend: Backend) {
    let sources = vec![fixture("modes")];
    let options =
        |overrides: &[&str]| Options { policy_config: policy_modes(overrides), ..Options::policies(sources.clone()) };
    let latest = rollout("ghcr.io/acme/api:latest", true, false);
    let everything = rollout("ghcr.io/acme/api:latest", false, true);

    // Without overrides, `:latest` denies.
    let Some(server) = TestServer::start_with(backend, options(&[])).await else {
        return;
    };
    let decision = evaluate(&server, "deploy", &latest).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert_violation(&decision, "ACME-TAG-001", "enforce", "deny", LATEST);

    // By policy id, to `warn`: the decision only warns.
    let server = server.restart(options(&["ACME-TAG-001=warn"])).await;
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(
        rule_modes(&listed, "acme.rollout"),
        modes(&[("deny_latest", "warn"), ("deny_no_limits", "warn"), ("deny_privileged", "enforce")]),
        "{listed}"
    );
    let decision = evaluate(&server, "deploy", &latest).await;
    assert_eq!(decision["result"], json!("warn"), "{decision}");
    assert_eq!(ids(&decision), ["ACME-TAG-001"], "{decision}");
    assert_violation(&decision, "ACME-TAG-001", "warn", "warn", LATEST);
    // The other rules keep their modes.
    let decision = evaluate(&server, "deploy", &everything).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert_violation(&decision, "ACME-TAG-001", "warn", "warn", LATEST);
    assert_violation(&decision, "ACME-PRIV-001", "enforce", "deny", PRIVILEGED);
    assert_violation(&decision, "ACME-RES-001", "warn", "warn", NO_LIMITS);
    // The webhook admits with a warning.
    let response = admit(&server, &review_of("mode-id-1", &latest)).await;
    assert_eq!(response["allowed"], json!(true), "{response}");
    assert!(response.get("status").is_none(), "{response}");
    assert_eq!(response["warnings"], json!([format!("[ACME-TAG-001] {LATEST}")]), "{response}");

    // By `package.rule`, to `dry-run`: allowed, the would-be violation
    // recorded in the decision and its logged event, with no warning.
    let server = server.restart(options(&["acme.rollout.deny_latest=dry-run"])).await;
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(
        rule_modes(&listed, "acme.rollout"),
        modes(&[("deny_latest", "dry-run"), ("deny_no_limits", "warn"), ("deny_privileged", "enforce")]),
        "{listed}"
    );
    let decision = evaluate(&server, "deploy", &latest).await;
    assert_eq!(decision["result"], json!("allow"), "{decision}");
    assert_eq!(ids(&decision), ["ACME-TAG-001"], "the dry-run violation is still listed: {decision}");
    assert_violation(&decision, "ACME-TAG-001", "dry-run", "allow", LATEST);
    assert_eq!(one(&decision, "ACME-TAG-001")["severity"], json!("high"));
    let event = logged(&server, "deploy", decision["decisionId"].as_str().unwrap()).await;
    assert_eq!(event["result"]["result"], json!("allow"), "{event}");
    let recorded = one(&event["result"], "ACME-TAG-001");
    assert_eq!((&recorded["enforcement"], &recorded["effect"]), (&json!("dry-run"), &json!("allow")), "{event}");
    assert_eq!(recorded["message"], json!(LATEST), "{event}");
    let allowed = log(&server, &[("point", "deploy"), ("result", "allow"), ("limit", "1000")]).await;
    assert!(decision_ids(&allowed).contains(&decision["decisionId"].as_str().unwrap().to_string()), "{allowed}");
    // The other rules keep their modes.
    let decision = evaluate(&server, "deploy", &everything).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert_violation(&decision, "ACME-TAG-001", "dry-run", "allow", LATEST);
    assert_violation(&decision, "ACME-PRIV-001", "enforce", "deny", PRIVILEGED);
    // The webhook admits without a warning, and the logged decision keeps
    // the would-be violation.
    let response = admit(&server, &review_of("mode-rule-1", &latest)).await;
    assert_eq!(response["allowed"], json!(true), "{response}");
    assert!(response.get("status").is_none() && response.get("warnings").is_none(), "{response}");
    let admitted = response["auditAnnotations"]["plinth.io/decision-id"].as_str().unwrap();
    let event = logged(&server, "admission", admitted).await;
    assert_eq!(event["result"]["result"], json!("allow"), "{event}");
    let recorded = one(&event["result"], "ACME-TAG-001");
    assert_eq!((&recorded["enforcement"], &recorded["effect"]), (&json!("dry-run"), &json!("allow")), "{event}");

    // By package, to `warn`: every rule of it, whatever its METADATA says.
    let server = server.restart(options(&["acme.rollout=warn"])).await;
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(
        rule_modes(&listed, "acme.rollout"),
        modes(&[("deny_latest", "warn"), ("deny_no_limits", "warn"), ("deny_privileged", "warn")]),
        "{listed}"
    );
    let decision = evaluate(&server, "deploy", &everything).await;
    assert_eq!(decision["result"], json!("warn"), "{decision}");
    assert_violation(&decision, "ACME-TAG-001", "warn", "warn", LATEST);
    assert_violation(&decision, "ACME-PRIV-001", "warn", "warn", PRIVILEGED);
    assert_violation(&decision, "ACME-RES-001", "warn", "warn", NO_LIMITS);
    let response = admit(&server, &review_of("mode-package-1", &everything)).await;
    assert_eq!(response["allowed"], json!(true), "{response}");
    assert!(response.get("status").is_none(), "{response}");
    let mut warnings: Vec<String> =
        response["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            format!("[ACME-PRIV-001] {PRIVILEGED}"),
            format!("[ACME-RES-001] {NO_LIMITS}"),
            format!("[ACME-TAG-001] {LATEST}")
        ]
    );

    // The most specific override wins (id over `package.rule` over
    // package), and an override wins over METADATA (ACME-RES-001 is
    // declared `warn`).
    let server = server
        .restart(options(&[
            "acme.rollout=dry-run",
            "acme.rollout.deny_privileged=warn",
            "ACME-RES-001=enforce",
            "acme.rollout.deny_no_limits=dry-run",
        ]))
        .await;
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(
        rule_modes(&listed, "acme.rollout"),
        modes(&[("deny_latest", "dry-run"), ("deny_no_limits", "enforce"), ("deny_privileged", "warn")]),
        "{listed}"
    );
    let decision = evaluate(&server, "deploy", &everything).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert_violation(&decision, "ACME-RES-001", "enforce", "deny", NO_LIMITS);
    assert_violation(&decision, "ACME-PRIV-001", "warn", "warn", PRIVILEGED);
    assert_violation(&decision, "ACME-TAG-001", "dry-run", "allow", LATEST);
    let response = admit(&server, &review_of("mode-precedence-1", &everything)).await;
    assert_eq!(response["allowed"], json!(false), "{response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("[ACME-RES-001] {NO_LIMITS}")), "{message}");
    assert!(!message.contains("ACME-PRIV-001") && !message.contains("ACME-TAG-001"), "{message}");
    assert_eq!(response["warnings"], json!([format!("[ACME-PRIV-001] {PRIVILEGED}")]), "{response}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 6. Decision log
// ---------------------------------------------------------------------------

const TEAM_X_CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-x
spec:
  type: team
  children: []
"#;

/// Waits until every entity in the catalogue has its catalog-point decision
/// in the log (the governance view logs them after a change burst settles).
async fn catalogue_decisions_logged(server: &TestServer) {
    wait_until(LIMIT, "a logged catalog decision for every entity", || async {
        let keys: Vec<String> = server.catalog.read().entities().map(|r| r.key.to_string()).collect();
        for key in keys {
            let page = log(server, &[("point", "catalog"), ("entity", &key), ("limit", "1")]).await;
            if decision_ids(&page).is_empty() {
                return false;
            }
        }
        true
    })
    .await;
    server.policy().flush_log().await;
}

async fn decision_log_filters_pages_masks_and_retains(backend: Backend) {
    let Some(server) = start(backend, vec![fixture("small")], |config| {
        config.masks = vec!["/input/spec/template/spec/containers/*/env".into()];
    })
    .await
    else {
        return;
    };
    let catalog = server.write("catalog/catalog-info.yaml", TEAM_X_CATALOG);
    server.register_new(&catalog).await;
    eventually(LIMIT, "team-x in the catalogue", || async {
        server.catalog.read().get("group:default/team-x").map(|_| ())
    })
    .await;
    // The catalogue change is itself a (catalog-point) decision about team-x;
    // wait for it so it cannot land inside the time range checked below.
    eventually(LIMIT, "the catalogue's own decision about team-x", || async {
        let page = log(&server, &[("point", "catalog"), ("entity", "group:default/team-x")]).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        items.first().map(|e| assert_eq!(e["requested_by"], json!("plinth:catalog"), "{e}"))
    })
    .await;
    // And for the catalogue's decisions about every other entity the
    // registration made, logged with it.
    catalogue_decisions_logged(&server).await;

    let t0 = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let allow = evaluate(&server, "deploy", &deployment("a", "ghcr.io/acme/a:1.0.0", 2)).await;
    // Timestamps have millisecond resolution: keep the decisions apart so
    // "newest first" is well defined.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let warn = evaluate(&server, "deploy", &deployment("b", "ghcr.io/acme/b:1.0.0", 1)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut owned = deployment("c", "ghcr.io/acme/c:latest", 2);
    owned["metadata"]["labels"]["plinth.io/owner"] = json!("team-x");
    owned["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "c", "image": "ghcr.io/acme/c:latest", "env": [{"name": "DB_PASSWORD", "value": "hunter2"}]},
        {"name": "sidecar", "image": "ghcr.io/acme/proxy:2.0.0", "env": [{"name": "TOKEN", "value": "s3cr3t-token"}]}
    ]);
    let response = server
        .http
        .post(server.url("/api/policy/evaluate"))
        .header("x-plinth-user", "carol@acme.example")
        .json(&json!({"point": "deploy", "input": owned, "context": {"environment": "production"}}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::OK);
    let deny: Value = response.json().await.unwrap();
    assert_eq!(
        (allow["result"].as_str(), warn["result"].as_str(), deny["result"].as_str()),
        (Some("allow"), Some("warn"), Some("deny"))
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t1 = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                        "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"});
    let later = evaluate(&server, "admission", &secret).await;
    let [allow_id, warn_id, deny_id, later_id] =
        [&allow, &warn, &deny, &later].map(|d| d["decisionId"].as_str().unwrap().to_string());
    let (allow_id, warn_id, deny_id, later_id) =
        (allow_id.as_str(), warn_id.as_str(), deny_id.as_str(), later_id.as_str());

    // Point and result filters.
    let deploys = log(&server, &[("point", "deploy")]).await;
    assert_eq!(decision_ids(&deploys), [deny_id, warn_id, allow_id], "newest first: {deploys}");
    assert_eq!(deploys["nextCursor"], Value::Null);
    assert_eq!(decision_ids(&log(&server, &[("result", "warn")]).await), [warn_id]);
    assert_eq!(decision_ids(&log(&server, &[("point", "deploy"), ("result", "deny")]).await), [deny_id]);
    assert_eq!(decision_ids(&log(&server, &[("point", "admission")]).await), [later_id]);
    // Entity: only the decision whose labels name team-x.
    let owned_page = log(&server, &[("entity", "group:default/team-x"), ("point", "deploy")]).await;
    assert_eq!(decision_ids(&owned_page), [deny_id], "{owned_page}");
    let any_point = log(&server, &[("entity", "group:team-x")]).await;
    let any_ids = decision_ids(&any_point);
    assert!(
        any_ids.iter().any(|i| i == deny_id) && !any_ids.iter().any(|i| i == allow_id || i == warn_id),
        "{any_point}"
    );
    // Time range: [t0, t1) holds exactly the three deploy decisions.
    let (from, to) = (rfc3339(t0), rfc3339(t1));
    let range = log(&server, &[("from", &from), ("to", &to)]).await;
    assert_eq!(decision_ids(&range), [deny_id, warn_id, allow_id], "{range}");
    assert_eq!(decision_ids(&log(&server, &[("from", &to)]).await), [later_id]);
    let (status, body) = server.get_q("/api/policy/decisions", &[("from", "yesterday")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&body).contains("`from`"), "{body}");
    // Paging: limit 2 then the cursor.
    let first = log(&server, &[("point", "deploy"), ("limit", "2")]).await;
    assert_eq!(decision_ids(&first), [deny_id, warn_id]);
    let cursor = first["nextCursor"].as_str().expect("a next cursor").to_string();
    let second = log(&server, &[("point", "deploy"), ("limit", "2"), ("cursor", &cursor)]).await;
    assert_eq!(decision_ids(&second), [allow_id]);
    assert_eq!(second["nextCursor"], Value::Null);
    let (status, _) = server.get_q("/api/policy/decisions", &[("cursor", "garbage")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // OPA's event shape.
    let event = owned_page["items"][0].clone();
    assert_eq!(event["decision_id"], json!(deny_id));
    assert_eq!(event["path"], json!("plinth/deploy"));
    assert_eq!(event["requested_by"], json!("carol@acme.example"));
    assert_eq!(event["result"]["result"], json!("deny"));
    assert_eq!(event["result"]["point"], json!("deploy"));
    assert_eq!(with_id(&event["result"], "ACME-IMG-001").len(), 1, "{event}");
    assert_eq!(event["labels"]["point"], json!("deploy"));
    assert!(event["labels"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(event["labels"]["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(event["bundles"]["policies"]["revision"], deny["revision"]);
    assert!(event["metrics"]["timer_rego_query_eval_ns"].as_u64().is_some(), "{event}");
    let ts = OffsetDateTime::parse(event["timestamp"].as_str().unwrap(), &Rfc3339).expect("RFC 3339 timestamp");
    assert!(ts >= t0 - time::Duration::seconds(1) && ts <= t1 + time::Duration::seconds(1), "{ts}");
    assert_eq!(event["input"]["metadata"]["name"], json!("c"));
    assert_eq!(event["input"]["plinth"]["environment"], json!("production"));
    assert!(event["input"]["plinth"]["entities"]["group:default/team-x"].is_object(), "catalogue context: {event}");
    // Masking: the env values are gone and listed, the rest stays.
    let text = event.to_string();
    assert!(!text.contains("hunter2") && !text.contains("s3cr3t-token"), "masked values leaked: {text}");
    let containers = &event["input"]["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], json!("ghcr.io/acme/c:latest"));
    assert!(containers[0].get("env").is_none() && containers[1].get("env").is_none(), "{containers}");
    let mut erased: Vec<String> =
        event["erased"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
    erased.sort();
    assert_eq!(erased, ["/input/spec/template/spec/containers/0/env", "/input/spec/template/spec/containers/1/env"]);
    // Kubernetes Secrets lose their data whatever the configuration.
    let page = log(&server, &[("point", "admission")]).await;
    let secret_event = &page["items"][0];
    assert!(secret_event["input"].get("data").is_none(), "{secret_event}");
    assert!(!secret_event.to_string().contains("aHVudGVyMg=="));
    assert_eq!(secret_event["input"]["type"], json!("Opaque"));
    assert_eq!(secret_event["erased"], json!(["/input/data"]));
    // Events without anything masked carry no `erased`.
    let plain = log(&server, &[("result", "allow"), ("point", "deploy")]).await;
    assert!(plain["items"][0].get("erased").is_none(), "{plain}");

    // Retention: a 200-day-old decision is purged, fresh ones stay.
    let old_ms = (OffsetDateTime::now_utc() - time::Duration::days(200)).unix_timestamp_nanos() / 1_000_000;
    let old = plinth_store::DecisionRecord {
        decision_id: "00000000-old0-0000-0000-000000000000".into(),
        ts_ms: old_ms as i64,
        point: "deploy".into(),
        result: "deny".into(),
        entities: vec!["group:default/team-x".into()],
        event: json!({"decision_id": "00000000-old0-0000-0000-000000000000", "path": "plinth/deploy"}).to_string(),
    };
    server.store.insert_decisions(std::slice::from_ref(&old)).await.expect("insert an old decision");
    // Inserting the same id again is ignored.
    server.store.insert_decisions(std::slice::from_ref(&old)).await.expect("insert it again");
    let all_deploys = log(&server, &[("point", "deploy"), ("limit", "100")]).await;
    assert_eq!(decision_ids(&all_deploys).len(), 4, "{all_deploys}");
    assert_eq!(decision_ids(&all_deploys)[3], old.decision_id);
    let cutoff = OffsetDateTime::now_utc() - server.policy().config().retention;
    let purged = server.store.purge_decisions((cutoff.unix_timestamp_nanos() / 1_000_000) as i64).await.unwrap();
    assert_eq!(purged, 1);
    assert_eq!(decision_ids(&log(&server, &[("point", "deploy")]).await), [deny_id, warn_id, allow_id]);
    assert_eq!(
        decision_ids(&log(&server, &[("entity", "group:default/team-x"), ("point", "deploy")]).await),
        [deny_id]
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 7. Waivers
// ---------------------------------------------------------------------------

fn checkout(image: &str) -> Value {
    let mut input = deployment("checkout", image, 2);
    input["metadata"]["labels"]["plinth.io/component"] = json!("checkout");
    input
}

async fn waivers_validate_apply_expire_and_revoke(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, Options::policies(vec![fixture("small")])).await else {
        return;
    };
    let bad = checkout("ghcr.io/acme/checkout:latest");
    let before = evaluate(&server, "deploy", &bad).await;
    assert_eq!(before["result"], json!("deny"), "{before}");
    assert_eq!(ids(&before), ["ACME-IMG-001"]);

    let valid = |expires: OffsetDateTime| {
        json!({
            "owner": "group:default/team-shop",
            "reason": "Migrating to pinned tags in Q1",
            "entity": "component:default/checkout",
            "rule": "ACME-IMG-001",
            "expiresAt": rfc3339(expires),
        })
    };
    // Validation: each names the field.
    let now = OffsetDateTime::now_utc();
    let cases: Vec<(Value, &str)> = vec![
        (valid(now - time::Duration::hours(1)), "`expiresAt`"),
        (valid(now + time::Duration::days(400)), "`expiresAt`"),
        (
            {
                let mut w = valid(now + time::Duration::days(1));
                w["expiresAt"] = json!("next week");
                w
            },
            "`expiresAt`",
        ),
        (
            {
                let mut w = valid(now + time::Duration::days(1));
                w["entity"] = json!("component:default/");
                w
            },
            "`entity`",
        ),
        (
            {
                let mut w = valid(now + time::Duration::days(1));
                w["owner"] = json!("  ");
                w
            },
            "`owner`",
        ),
        (
            {
                let mut w = valid(now + time::Duration::days(1));
                w.as_object_mut().unwrap().remove("reason");
                w
            },
            "`reason`",
        ),
        (
            {
                let mut w = valid(now + time::Duration::days(1));
                w.as_object_mut().unwrap().remove("rule");
                w
            },
            "`rule`",
        ),
        (
            {
                let mut w = valid(now + time::Duration::days(1));
                w["extra"] = json!(1);
                w
            },
            "`extra`",
        ),
    ];
    for (body, field) in &cases {
        let (status, answer) = server.post("/api/policy/waivers", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        let message = error_text(&answer);
        assert!(message.contains(field), "{body}: the error names {field}: {message}");
    }
    assert_eq!(server.ok("/api/policy/waivers").await["items"], json!([]), "nothing was created");
    assert!(server.store.list_waivers().await.unwrap().is_empty());

    // A valid waiver: 201, stored, and the violation is waived.
    let expires = now + time::Duration::days(30);
    let response = server
        .http
        .post(server.url("/api/policy/waivers"))
        .header("x-plinth-user", "dana@acme.example")
        .json(&valid(expires))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let waiver: Value = response.json().await.unwrap();
    let waiver_id = waiver["id"].as_str().expect("id").to_string();
    assert_eq!(waiver["entity"], json!("component:default/checkout"));
    assert_eq!(waiver["rule"], json!("ACME-IMG-001"));
    assert_eq!(waiver["createdBy"], json!("dana@acme.example"));
    let stored = server.store.list_waivers().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].contains(&waiver_id));
    let listed = server.ok("/api/policy/waivers").await;
    assert_eq!(listed["items"][0]["id"], json!(waiver_id));
    assert_eq!(listed["items"][0]["active"], json!(true));

    let waived = evaluate(&server, "deploy", &bad).await;
    assert_eq!(waived["result"], json!("allow"), "the only denial is waived: {waived}");
    let violation = &with_id(&waived, "ACME-IMG-001")[0];
    assert_eq!(violation["effect"], json!("allow"));
    assert_eq!(violation["waiver"]["id"], json!(waiver_id));
    assert_eq!(violation["waiver"]["owner"], json!("group:default/team-shop"));
    assert_eq!(violation["waiver"]["reason"], json!("Migrating to pinned tags in Q1"));
    // Scoped to its entity.
    let mut other = bad.clone();
    other["metadata"]["labels"]["plinth.io/component"] = json!("payments");
    let other = evaluate(&server, "deploy", &other).await;
    assert_eq!(other["result"], json!("deny"), "another entity is not waived: {other}");
    assert!(with_id(&other, "ACME-IMG-001")[0].get("waiver").is_none());
    // Logged with the waiver.
    let page = log(&server, &[("entity", "component:default/checkout"), ("result", "allow")]).await;
    assert_eq!(decision_ids(&page), [waived["decisionId"].as_str().unwrap()]);
    assert_eq!(with_id(&page["items"][0]["result"], "ACME-IMG-001")[0]["waiver"]["id"], json!(waiver_id));

    // Revoke: 204, then 404; the denial is back.
    let (status, _) = server.delete(&format!("/api/policy/waivers/{waiver_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.delete(&format!("/api/policy/waivers/{waiver_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(error_text(&body).contains(&waiver_id), "{body}");
    assert!(server.store.list_waivers().await.unwrap().is_empty());
    assert_eq!(evaluate(&server, "deploy", &bad).await["result"], json!("deny"));

    // A waiver for a `package.rule` path, granted through the API, applies
    // like one for the policy id.
    let mut by_path = valid(OffsetDateTime::now_utc() + time::Duration::days(1));
    by_path["rule"] = json!("acme.workloads.deny_latest");
    let (status, created) = server.post("/api/policy/waivers", &by_path).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["rule"], json!("acme.workloads.deny_latest"));
    let decision = evaluate(&server, "deploy", &bad).await;
    assert_eq!(decision["result"], json!("allow"), "{decision}");
    assert_eq!(one(&decision, "ACME-IMG-001")["waiver"]["id"], created["id"]);
    let (status, _) = server.delete(&format!("/api/policy/waivers/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(evaluate(&server, "deploy", &bad).await["result"], json!("deny"));

    // A waiver lapses by itself at `expiresAt`: no revocation, no reload.
    // One that expires two seconds after it is granted (through the policy
    // service, so a slow machine cannot turn the grant itself into a 400
    // "in the past") applies until then and not after. Each decision is
    // judged against the clock the engine used for it (`input.plinth.now`
    // in its logged event), so nothing depends on how fast this machine
    // runs; a grant that a stall let expire before its first decision is
    // revoked and granted again.
    let (short, expires) = eventually(LIMIT, "a short-lived waiver seen applying", || async {
        let granted = OffsetDateTime::now_utc();
        let expires = granted + time::Duration::seconds(2);
        let short = Waiver {
            id: uuid::Uuid::new_v4().to_string(),
            owner: "group:default/team-shop".into(),
            reason: "Migrating to pinned tags in Q1".into(),
            entity: "component:default/checkout".into(),
            rule: "acme.workloads.deny_latest".into(),
            expires_at: expires,
            created_by: "policy-test".into(),
            created_at: granted,
        };
        server.policy().add_waiver(&short).await.expect("grant a waiver");
        let decision = evaluate(&server, "deploy", &bad).await;
        if engine_clock(&server, &decision).await < expires {
            assert_eq!(decision["result"], json!("allow"), "waived until {expires}: {decision}");
            assert_eq!(one(&decision, "ACME-IMG-001")["waiver"]["id"], json!(short.id), "{decision}");
            Some((short, expires))
        } else {
            assert_eq!(decision["result"], json!("deny"), "expired before its first decision: {decision}");
            assert!(server.policy().remove_waiver(&short.id).await.expect("revoke a waiver"));
            None
        }
    })
    .await;
    let lapsed = eventually(LIMIT, "the short-lived waiver to lapse", || async {
        let decision = evaluate(&server, "deploy", &bad).await;
        if engine_clock(&server, &decision).await < expires {
            assert_eq!(decision["result"], json!("allow"), "still waived before {expires}: {decision}");
            assert_eq!(one(&decision, "ACME-IMG-001")["waiver"]["id"], json!(short.id), "{decision}");
            None
        } else {
            Some(decision)
        }
    })
    .await;
    assert_eq!(lapsed["result"], json!("deny"), "an expired waiver no longer applies: {lapsed}");
    assert!(one(&lapsed, "ACME-IMG-001").get("waiver").is_none(), "{lapsed}");
    assert_eq!(one(&lapsed, "ACME-IMG-001")["effect"], json!("deny"), "{lapsed}");
    let listed = server.ok("/api/policy/waivers").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], json!(short.id), "{listed}");
    assert_eq!(listed["items"][0]["active"], json!(false), "kept as history, inactive: {listed}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 8. Catalog point and scorecards
// ---------------------------------------------------------------------------

fn agents_catalog(tracing: bool) -> String {
    let tracing = if tracing { "\n    plinth.io/tracing: enabled" } else { "" };
    format!(
        r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-agents
spec:
  type: team
  children: []
---
apiVersion: plinth.dev/v1alpha1
kind: Agent
metadata:
  name: triage-bot
  description: Triages support tickets.
  annotations:
    plinth.io/token-budget-per-run: "20000"{tracing}
spec:
  type: assistant
  owner: team-agents
  lifecycle: experimental
  autonomy: supervised
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: triage-ui
  description: The triage console.
spec:
  type: website
  lifecycle: production
  owner: team-agents
"#
    )
}

async fn catalog_point_follows_catalogue_changes_with_scorecards(backend: Backend) {
    let library = workspace_root().join("policies").to_string_lossy().into_owned();
    let Some(server) = TestServer::start_with(backend, Options::policies(vec![library])).await else {
        return;
    };
    let file = server.write("catalog/catalog-info.yaml", &agents_catalog(false));
    server.register_new(&file).await;

    let path = "/api/policy/entities/agent/default/triage-bot";
    let governance = eventually(LIMIT, "the agent's catalog decision", || async {
        let (status, body) = server.get(path).await;
        (status == StatusCode::OK && body.get("decision").is_some()).then_some(body)
    })
    .await;
    assert_eq!(governance["entityRef"], json!("agent:default/triage-bot"));
    let decision = &governance["decision"];
    assert_eq!(decision["point"], json!("catalog"));
    assert_eq!(decision["result"], json!("deny"), "{governance}");
    let tracing = with_id(decision, "PL-AGT-003");
    assert_eq!(tracing.len(), 1, "{governance}");
    assert_eq!(tracing[0]["effect"], json!("deny"));
    assert_eq!(tracing[0]["severity"], json!("high"));
    assert!(tracing[0]["message"].as_str().unwrap().contains("does not enable tracing"));
    let scorecards = governance["scorecards"].as_array().expect("scorecards");
    assert!(!scorecards.is_empty(), "{governance}");
    assert!(scorecards.iter().all(|c| c["checks"].as_array().is_some_and(|checks| !checks.is_empty())), "{governance}");

    // An unknown entity is a 404.
    let (status, _) = server.get("/api/policy/entities/agent/default/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The change is logged as a catalog-point decision for the agent.
    // (Logged by the governance view once the change burst settles.)
    let page = eventually(LIMIT, "the catalog decision in the log", || async {
        let page = log(&server, &[("point", "catalog"), ("entity", "agent:default/triage-bot")]).await;
        (!page["items"].as_array().unwrap().is_empty()).then_some(page)
    })
    .await;
    let first = page["items"].as_array().unwrap();
    assert_eq!(first[0]["requested_by"], json!("plinth:catalog"));
    assert_eq!(first[0]["result"]["result"], json!("deny"));

    // Enable tracing, refresh: the result follows.
    write(&file, &agents_catalog(true));
    let (status, report) = server.post("/api/catalog/refresh", &json!({"entityRef": "agent:default/triage-bot"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let updated = eventually(LIMIT, "PL-AGT-003 to clear", || async {
        let body = server.ok(path).await;
        (body.get("decision").is_some() && with_id(&body["decision"], "PL-AGT-003").is_empty()).then_some(body)
    })
    .await;
    assert_ne!(updated["decision"], governance["decision"]);
    let logged_before = first.len();
    eventually(LIMIT, "the re-evaluation in the log", || async {
        let page = log(&server, &[("point", "catalog"), ("entity", "agent:default/triage-bot")]).await;
        (page["items"].as_array().unwrap().len() > logged_before).then_some(())
    })
    .await;

    // Team roll-ups for the owner.
    let cards = server.ok_q("/api/policy/scorecards", &[("owner", "team-agents")]).await;
    let teams = cards["teams"].as_array().unwrap();
    assert!(!teams.is_empty(), "{cards}");
    assert!(teams.iter().all(|t| t["owner"] == json!("group:default/team-agents")), "{cards}");
    // Stated from the shipped scorecards, not read back: the agent has no
    // risk tier, data classification, audit logging or evaluations, and
    // passes only the model-card check (1/5 = 20 %, below bronze); the
    // console has an owner, a lifecycle and no APIs to define, but no docs,
    // runbook or on-call (3/6 = 50 %, below bronze, which needs docs).
    let expected = [
        (
            "ai-governance",
            20.0,
            vec![
                ("audit_logging", 0),
                ("data_classification", 0),
                ("evaluations", 0),
                ("model_card", 1),
                ("risk_tier", 0),
            ],
        ),
        (
            "production-readiness",
            50.0,
            vec![("api_definitions", 1), ("docs", 0), ("lifecycle", 1), ("on_call", 0), ("owner", 1), ("runbook", 0)],
        ),
    ];
    assert_eq!(teams.len(), expected.len(), "{cards}");
    for (scorecard, score, checks) in expected {
        let rollup =
            teams.iter().find(|t| t["scorecard"] == json!(scorecard)).unwrap_or_else(|| panic!("{scorecard}: {cards}"));
        assert_eq!(rollup["entities"], json!(1), "{rollup}");
        assert_eq!(rollup["score"].as_f64(), Some(score), "{rollup}");
        assert_eq!(rollup["levels"], json!({"none": 1}), "{rollup}");
        let want: serde_json::Map<String, Value> = checks.into_iter().map(|(c, n)| (c.to_string(), json!(n))).collect();
        assert_eq!(rollup["checks"], Value::Object(want), "{rollup}");
    }
    let agent_card = &updated["scorecards"].as_array().unwrap()[0];
    assert_eq!((agent_card["scorecard"].as_str(), agent_card["passed"].as_u64()), (Some("ai-governance"), Some(1)));
    assert!(agent_card["level"].is_null(), "{agent_card}");
    let entities: u64 = teams.iter().filter_map(|t| t["entities"].as_u64()).sum();
    assert!(entities >= 2, "the agent and the component are rolled up: {cards}");
    let none = server.ok_q("/api/policy/scorecards", &[("owner", "group:default/nobody")]).await;
    assert_eq!(none["teams"], json!([]));
    assert!(!cards["scorecards"].as_array().unwrap().is_empty());
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 9. Hot reload
// ---------------------------------------------------------------------------

const REPLICAS_POLICY: &str = r#"# METADATA
# title: Replica limits
# custom:
#   points: [deploy]
package acme.replicas

import rego.v1

# METADATA
# title: At most LIMIT replicas
# custom:
#   id: ACME-REP-001
#   severity: medium
deny_too_many contains msg if {
	input.spec.replicas > LIMIT
	msg := sprintf("%d replicas exceed the limit of LIMIT", [input.spec.replicas])
}
"#;

async fn hot_reload_from_a_directory(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::copy(fixture("small/workloads.rego"), policies.join("workloads.rego")).unwrap();
    let source = policies.to_string_lossy().into_owned();
    let Some(server) = start(backend, vec![source], |config| {
        config.reload_interval = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let input = deployment("big", "ghcr.io/acme/big:1.0.0", 20);
    let first = evaluate(&server, "deploy", &input).await;
    assert_eq!(first["result"], json!("allow"), "{first}");
    let revision0 = first["revision"].as_str().unwrap().to_string();

    // A new file: picked up within seconds.
    write(&policies.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "10"));
    let denied = eventually(LIMIT, "the new policy", || async {
        let decision = evaluate(&server, "deploy", &input).await;
        (decision["result"] == json!("deny")).then_some(decision)
    })
    .await;
    assert_eq!(ids(&denied), ["ACME-REP-001"]);
    assert_eq!(with_id(&denied, "ACME-REP-001")[0]["message"], json!("20 replicas exceed the limit of 10"));
    let revision1 = denied["revision"].as_str().unwrap().to_string();
    assert_ne!(revision1, revision0);
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(listed["revision"], json!(revision1));
    assert!(listed["policies"].as_array().unwrap().iter().any(|p| p["package"] == "acme.replicas"));

    // A modified file: the new limit applies.
    write(&policies.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "50"));
    let allowed = eventually(LIMIT, "the modified policy", || async {
        let decision = evaluate(&server, "deploy", &input).await;
        (decision["result"] == json!("allow")).then_some(decision)
    })
    .await;
    let revision2 = allowed["revision"].as_str().unwrap().to_string();
    assert!(revision2 != revision1 && revision2 != revision0);
    let over = evaluate(&server, "deploy", &deployment("huge", "ghcr.io/acme/huge:1.0.0", 60)).await;
    assert_eq!(with_id(&over, "ACME-REP-001")[0]["message"], json!("60 replicas exceed the limit of 50"));

    // A broken edit keeps serving, failing closed at its points with the problem listed.
    write(
        &policies.join("replicas.rego"),
        &REPLICAS_POLICY.replace("LIMIT", "50").replace("deny_too_many contains", "deny_too_many contains contains"),
    );
    let broken = eventually(LIMIT, "the broken edit", || async {
        let listed = server.ok("/api/policy/policies").await;
        (listed["problems"].as_array().is_some_and(|p| !p.is_empty())).then_some(listed)
    })
    .await;
    assert!(broken["problems"][0]["file"].as_str().unwrap().ends_with("replicas.rego"), "{broken}");
    let decision = evaluate(&server, "deploy", &input).await;
    assert_eq!(decision["result"], json!("deny"));
    assert!(violations(&decision).iter().any(|v| v["kind"] == "error"), "{decision}");
    // Removing it restores the original set (and revision).
    std::fs::remove_file(policies.join("replicas.rego")).unwrap();
    let restored = eventually(LIMIT, "the removal", || async {
        let decision = evaluate(&server, "deploy", &input).await;
        (decision["result"] == json!("allow")).then_some(decision)
    })
    .await;
    assert_eq!(restored["revision"], json!(revision0));
    server.stop().await;
}

async fn git_policy_source_is_fetched_and_applied(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let git_dir = dir.path().join("git");
    std::fs::create_dir_all(&git_dir).unwrap();
    git(&git_dir, &["init", "--quiet", "--bare", "--initial-branch=main", "policies.git"]);
    let bare = git_dir.join("policies.git");
    git(&git_dir, &["clone", "--quiet", bare.to_str().unwrap(), "work"]);
    let work = git_dir.join("work");
    write(&work.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "10"));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "--quiet", "-m", "replica limit 10"]);
    git(&work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    let url = format!("file://{}", bare.display());

    let Some(server) = start(backend, vec![url.clone()], |config| {
        config.reload_interval = Duration::from_millis(200);
        // Fetched only when the test says so, however slowly it runs.
        config.git_interval = Duration::from_secs(24 * 3600);
    })
    .await
    else {
        return;
    };
    let listed = server.ok("/api/policy/policies").await;
    assert_eq!(listed["problems"], json!([]), "{listed}");
    assert_eq!(listed["sources"], json!([url]));
    let input = deployment("big", "ghcr.io/acme/big:1.0.0", 20);
    let before = evaluate(&server, "deploy", &input).await;
    assert_eq!(before["result"], json!("deny"), "fetched at start: {before}");
    assert_eq!(with_id(&before, "ACME-REP-001")[0]["message"], json!("20 replicas exceed the limit of 10"));
    assert!(with_id(&before, "ACME-REP-001")[0]["file"].as_str().unwrap().ends_with("replicas.rego"), "{before}");

    // Push a change: not seen until the repository is fetched.
    write(&work.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "30"));
    git(&work, &["commit", "--quiet", "-am", "replica limit 30"]);
    git(&work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    // Give the background reloader a few ticks to (wrongly) pick it up: a
    // negative check, which a slow machine can only make vacuous, never
    // fail. Then a reload without a fetch, as the reloader does between
    // fetches, finds nothing new.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(server.policy().reload_if_changed(false).await.is_none(), "no fetch, no change");
    let stale = evaluate(&server, "deploy", &input).await;
    assert_eq!(stale["revision"], before["revision"], "no fetch yet");
    assert!(server.policy().reload_if_changed(true).await.is_some(), "the fetch brought a change");
    let after = evaluate(&server, "deploy", &input).await;
    assert_eq!(after["result"], json!("allow"), "{after}");
    assert_ne!(after["revision"], before["revision"]);
    let over = evaluate(&server, "deploy", &deployment("huge", "ghcr.io/acme/huge:1.0.0", 40)).await;
    assert_eq!(with_id(&over, "ACME-REP-001")[0]["message"], json!("40 replicas exceed the limit of 30"));
    assert!(server.policy().reload_if_changed(true).await.is_none(), "nothing new to fetch");
    server.stop().await;
}

/// Marking a file as Rego v0 in the bundle `.manifest` is a policy change
/// like any other: the running server must pick it up. (Store-independent,
/// so SQLite only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_change_is_hot_reloaded() {
    let dir = tempfile::TempDir::new().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("gatekeeper")).unwrap();
    for file in ["k8srequiredlabels.rego", "data.yaml"] {
        std::fs::copy(fixture(&format!("real-world/gatekeeper/{file}")), policies.join("gatekeeper").join(file))
            .unwrap();
    }
    let source = policies.to_string_lossy().into_owned();
    let server = start(Backend::Sqlite, vec![source], |config| {
        config.reload_interval = Duration::from_millis(200);
    })
    .await
    .expect("SQLite always runs");
    // Without a manifest the v0 file is a load problem with a hint.
    let listed = server.ok("/api/policy/policies").await;
    let problems = listed["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{listed}");
    assert!(problems[0]["message"].as_str().unwrap().contains("rego_version"), "{listed}");
    let revision = listed["revision"].clone();

    write(&policies.join(".manifest"), r#"{"rego_version": 0}"#);
    let reloaded = eventually(LIMIT, "the .manifest change to be applied", || async {
        let listed = server.ok("/api/policy/policies").await;
        (listed["problems"] == json!([])).then_some(listed)
    })
    .await;
    assert_ne!(reloaded["revision"], revision, "the revision covers the manifest");
    let pod = json!({"kind": "Pod", "metadata": {"name": "web", "labels": {}}});
    let decision = evaluate(&server, "admission", &json!({"review": {"object": pod}, "parameters": {}})).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert_eq!(violations(&decision)[0]["details"], json!({"missing_labels": ["app.kubernetes.io/name", "owner"]}));
    server.stop().await;
}
