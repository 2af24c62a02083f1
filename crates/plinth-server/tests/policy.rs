//! The policy service over real loopback HTTP, in-process, on both store
//! backends (SQLite and PostgreSQL): real-world conftest and Gatekeeper (Rego
//! v0) policies, load problems failing closed, the evaluation time limit, the
//! Kubernetes admission webhook against the shipped library, the decision log
//! (filters, paging, OPA's event shape, masking, retention), waivers (with
//! validation and expiry), the catalog point and scorecards, and hot reload
//! from a directory and from a git repository.
//!
//! Every scenario runs twice: `sqlite::<scenario>` and `postgres::<scenario>`.
//! PostgreSQL comes from `PLINTH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `PLINTH_SKIP_POSTGRES=1`
//! skips that half. Fixtures live in `tests/data/policy/`.

use plinth_testkit::git;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod harness {
    use plinth_catalog::{Catalog, CatalogConfig};
    use plinth_server::policy::{PolicyConfig, PolicyService};
    use plinth_server::ServerConfig;
    use plinth_store::{Store, StoreConfig};
    use plinth_testkit::PgDatabase;
    use reqwest::StatusCode;
    use serde_json::Value;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Backend {
        Sqlite,
        Postgres,
    }

    /// A Plinth server with the policy service on a loopback port.
    pub struct Server {
        pub base: String,
        pub http: reqwest::Client,
        pub policy: Arc<PolicyService>,
        pub catalog: Arc<Catalog>,
        pub store: Store,
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
        _database: Option<PgDatabase>,
    }

    impl Server {
        /// `None` when the backend is PostgreSQL and it is skipped. `data`
        /// is the server's data directory (git checkouts go under it).
        pub async fn start(
            backend: Backend,
            data: &Path,
            sources: Vec<String>,
            configure: impl FnOnce(&mut PolicyConfig),
        ) -> Option<Server> {
            let (store, database) = match backend {
                Backend::Sqlite => (Store::open_sqlite(data).await.expect("open SQLite store"), None),
                Backend::Postgres => {
                    let database = PgDatabase::create("policy").await?;
                    let config = StoreConfig::Postgres { url: database.url.clone() };
                    (Store::open(&config).await.expect("open PostgreSQL store"), Some(database))
                }
            };
            let catalog = Catalog::open(store.clone(), CatalogConfig::new(data)).await.expect("open the catalogue");
            catalog.spawn_background();
            let mut config = PolicyConfig::new(sources, data.to_path_buf());
            configure(&mut config);
            let policy = PolicyService::start(config, store.clone(), catalog.clone()).await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
            let address = listener.local_addr().expect("local address");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let server_config = ServerConfig { policy: Some(policy.clone()), ..ServerConfig::default() };
            let task = tokio::spawn(plinth_server::serve(listener, catalog.clone(), server_config, async {
                let _ = rx.await;
            }));
            let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().expect("client");
            Some(Server {
                base: format!("http://{address}"),
                http,
                policy,
                catalog,
                store,
                shutdown: Some(tx),
                task: Some(task),
                _database: database,
            })
        }

        pub async fn stop(mut self) {
            if let Some(tx) = self.shutdown.take() {
                let _ = tx.send(());
            }
            if let Some(task) = self.task.take() {
                match tokio::time::timeout(Duration::from_secs(10), task).await {
                    Ok(joined) => joined.expect("server task").expect("server stopped cleanly"),
                    Err(_) => eprintln!("server did not stop within 10 s"),
                }
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("{}{}", self.base, path)
        }

        async fn body(response: reqwest::Response) -> (StatusCode, Value) {
            let status = response.status();
            let text = response.text().await.expect("response body");
            let value =
                if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
            (status, value)
        }

        pub async fn get_q(&self, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
            let response = self.http.get(self.url(path)).query(query).send().await.expect("GET");
            Self::body(response).await
        }

        /// GET that must answer 200.
        pub async fn ok(&self, path: &str, query: &[(&str, &str)]) -> Value {
            let (status, body) = self.get_q(path, query).await;
            assert_eq!(status, StatusCode::OK, "GET {path} {query:?}: {body}");
            body
        }

        pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
            let response = self.http.post(self.url(path)).json(body).send().await.expect("POST");
            Self::body(response).await
        }

        pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
            let response = self
                .http
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("POST");
            Self::body(response).await
        }

        pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
            let response = self.http.delete(self.url(path)).send().await.expect("DELETE");
            Self::body(response).await
        }

        /// `POST /api/policy/evaluate` that must answer 200.
        pub async fn evaluate(&self, point: &str, input: &Value) -> Value {
            let (status, body) =
                self.post("/api/policy/evaluate", &serde_json::json!({"point": point, "input": input})).await;
            assert_eq!(status, StatusCode::OK, "evaluate at {point}: {body}");
            body
        }

        /// Registers a catalogue file location (201).
        pub async fn register(&self, target: &Path) {
            let (status, body) =
                self.post("/api/catalog/locations", &serde_json::json!({"type": "file", "target": target})).await;
            assert_eq!(status, StatusCode::CREATED, "registering {}: {body}", target.display());
        }
    }
}

use harness::{Backend, Server};

/// Declares each scenario once per backend.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

scenarios!(
    conftest_and_gatekeeper_v0_policies_run_unchanged,
    syntax_error_fails_closed_only_where_the_policy_applies,
    expensive_policy_is_stopped_by_the_time_limit,
    admission_webhook_round_trip_with_the_shipped_library,
    decision_log_filters_pages_masks_and_retains,
    waivers_validate_apply_expire_and_revoke,
    catalog_point_follows_catalogue_changes_with_scorecards,
    hot_reload_from_a_directory,
    git_policy_source_is_fetched_and_applied,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy").join(name).to_string_lossy().into_owned()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
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

fn ids(decision: &Value) -> Vec<String> {
    violations(decision).iter().filter_map(|v| v["id"].as_str().map(str::to_string)).collect()
}

fn error_text(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_default().to_string()
}

/// Polls `probe` until it returns `Some`, failing after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let text = std::fs::read_to_string(repo_root().join("examples/policy-inputs/admission-review.json"))
        .expect("read the example AdmissionReview");
    serde_json::from_str(&text).expect("example AdmissionReview is JSON")
}

/// Decisions from the log (after flushing it).
async fn log(server: &Server, query: &[(&str, &str)]) -> Value {
    server.policy.flush_log().await;
    server.ok("/api/policy/decisions", query).await
}

fn decision_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["decision_id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 1. Real-world policies
// ---------------------------------------------------------------------------

async fn conftest_and_gatekeeper_v0_policies_run_unchanged(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![fixture("real-world")], |_| {}).await
    else {
        return;
    };

    // Both files load (the Gatekeeper one as v0 thanks to the .manifest).
    let policies = server.ok("/api/policy/policies", &[]).await;
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
    let decision = server.evaluate("deploy", &manifest).await;
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
    let decision = server.evaluate("deploy", &manifest).await;
    assert_eq!(with_id(&decision, "ACME-K8S-002")[0]["effect"], json!("deny"), "{decision}");
    assert_eq!(with_id(&decision, "ACME-K8S-002")[0].get("excepted"), None, "{decision}");
    manifest["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = json!("ghcr.io/acme/cart:1.4.2");
    let decision = server.evaluate("deploy", &manifest).await;
    assert_eq!(decision["result"], json!("warn"), "{decision}");
    assert_eq!(violations(&decision).len(), 1, "{decision}");
    manifest["metadata"]["labels"] = json!({"app.kubernetes.io/name": "cart"});
    let decision = server.evaluate("deploy", &manifest).await;
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
    let decision = server.evaluate("admission", &input).await;
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
    let decision = server.evaluate("admission", &explicit).await;
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
    let dir = tempfile::TempDir::new().unwrap();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![fixture("broken")], |_| {}).await else {
        return;
    };
    let broken_line = std::fs::read_to_string(fixture("broken/broken.rego"))
        .unwrap()
        .lines()
        .position(|l| l.contains("== )"))
        .unwrap()
        + 1;

    let policies = server.ok("/api/policy/policies", &[]).await;
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
    let decision = server.evaluate("admission", &json!({"kind": "Pod", "metadata": {"name": "x"}})).await;
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
    let small = server.evaluate("deploy", &json!({"kind": "Deployment", "spec": {"replicas": 3}})).await;
    assert_eq!(small["result"], json!("allow"), "{small}");
    assert_eq!(small["violations"], json!([]));
    assert_eq!(small["policies"], json!(1));
    let big = server.evaluate("deploy", &json!({"kind": "Deployment", "spec": {"replicas": 30}})).await;
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
    let dir = tempfile::TempDir::new().unwrap();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![fixture("slow")], |config| {
        config.time_limit = Duration::from_millis(50);
    })
    .await
    else {
        return;
    };
    assert_eq!(server.ok("/api/policy/policies", &[]).await["problems"], json!([]));

    // Cheap input: the same policy evaluates and allows.
    let decision = server.evaluate("deploy", &json!({"spec": {"size": 5}})).await;
    assert_eq!(decision["result"], json!("allow"), "{decision}");

    // 3000 × 3000 iterations: stopped, failing closed, quickly.
    let started = Instant::now();
    let decision = server.evaluate("deploy", &json!({"spec": {"size": 3000}})).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "the time limit bounds the request: {elapsed:?}");
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
    let dir = tempfile::TempDir::new().unwrap();
    let library = repo_root().join("policies").to_string_lossy().into_owned();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![library], |_| {}).await else {
        return;
    };
    assert_eq!(server.ok("/api/policy/policies", &[]).await["problems"], json!([]), "the shipped library loads");
    let catalog = dir.path().join("catalog/catalog-info.yaml");
    write(&catalog, ORDERS_CATALOG);
    server.register(&catalog).await;

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
    assert_eq!(revision, server.ok("/api/policy/policies", &[]).await["revision"].as_str().unwrap());
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
    let (status, body) = server.post_raw("/api/policy/admission", "{\"apiVersion\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_text(&body).contains("AdmissionReview"), "{body}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 5. Decision log
// ---------------------------------------------------------------------------

const TEAM_X_CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-x
spec:
  type: team
  children: []
"#;

async fn decision_log_filters_pages_masks_and_retains(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![fixture("small")], |config| {
        config.masks = vec!["/input/spec/template/spec/containers/*/env".into()];
    })
    .await
    else {
        return;
    };
    let catalog = dir.path().join("catalog/catalog-info.yaml");
    write(&catalog, TEAM_X_CATALOG);
    server.register(&catalog).await;
    eventually("team-x in the catalogue", Duration::from_secs(30), || async {
        server.catalog.read().get("group:default/team-x").map(|_| ())
    })
    .await;
    // The catalogue change is itself a (catalog-point) decision about team-x;
    // wait for it so it cannot land inside the time range checked below.
    eventually("the catalogue's own decision about team-x", Duration::from_secs(30), || async {
        let page = log(&server, &[("point", "catalog"), ("entity", "group:default/team-x")]).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        items.first().map(|e| assert_eq!(e["requested_by"], json!("plinth:catalog"), "{e}"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.policy.flush_log().await;

    let t0 = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let allow = server.evaluate("deploy", &deployment("a", "ghcr.io/acme/a:1.0.0", 2)).await;
    // Timestamps have millisecond resolution: keep the decisions apart so
    // "newest first" is well defined.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let warn = server.evaluate("deploy", &deployment("b", "ghcr.io/acme/b:1.0.0", 1)).await;
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
    let later = server.evaluate("admission", &secret).await;
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
    let cutoff = OffsetDateTime::now_utc() - server.policy.config().retention;
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
// 6. Waivers
// ---------------------------------------------------------------------------

fn checkout(image: &str) -> Value {
    let mut input = deployment("checkout", image, 2);
    input["metadata"]["labels"]["plinth.io/component"] = json!("checkout");
    input
}

async fn waivers_validate_apply_expire_and_revoke(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![fixture("small")], |_| {}).await else {
        return;
    };
    let bad = checkout("ghcr.io/acme/checkout:latest");
    let before = server.evaluate("deploy", &bad).await;
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
    assert_eq!(server.ok("/api/policy/waivers", &[]).await["items"], json!([]), "nothing was created");
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
    let listed = server.ok("/api/policy/waivers", &[]).await;
    assert_eq!(listed["items"][0]["id"], json!(waiver_id));
    assert_eq!(listed["items"][0]["active"], json!(true));

    let waived = server.evaluate("deploy", &bad).await;
    assert_eq!(waived["result"], json!("allow"), "the only denial is waived: {waived}");
    let violation = &with_id(&waived, "ACME-IMG-001")[0];
    assert_eq!(violation["effect"], json!("allow"));
    assert_eq!(violation["waiver"]["id"], json!(waiver_id));
    assert_eq!(violation["waiver"]["owner"], json!("group:default/team-shop"));
    assert_eq!(violation["waiver"]["reason"], json!("Migrating to pinned tags in Q1"));
    // Scoped to its entity.
    let mut other = bad.clone();
    other["metadata"]["labels"]["plinth.io/component"] = json!("payments");
    let other = server.evaluate("deploy", &other).await;
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
    assert_eq!(server.evaluate("deploy", &bad).await["result"], json!("deny"));

    // A waiver for a `package.rule` path expiring in two seconds: applies,
    // then lapses by itself.
    let expires = OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let mut short = valid(expires);
    short["rule"] = json!("acme.workloads.deny_latest");
    let (status, created) = server.post("/api/policy/waivers", &short).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let decision = server.evaluate("deploy", &bad).await;
    assert_eq!(decision["result"], json!("allow"), "{decision}");
    assert_eq!(with_id(&decision, "ACME-IMG-001")[0]["waiver"]["id"], created["id"]);
    let wait = (expires - OffsetDateTime::now_utc()).unsigned_abs() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    let lapsed = server.evaluate("deploy", &bad).await;
    assert_eq!(lapsed["result"], json!("deny"), "an expired waiver no longer applies: {lapsed}");
    assert!(with_id(&lapsed, "ACME-IMG-001")[0].get("waiver").is_none(), "{lapsed}");
    let listed = server.ok("/api/policy/waivers", &[]).await;
    assert_eq!(listed["items"][0]["active"], json!(false), "kept as history, inactive: {listed}");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 7. Catalog point and scorecards
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
    let dir = tempfile::TempDir::new().unwrap();
    let library = repo_root().join("policies").to_string_lossy().into_owned();
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![library], |_| {}).await else {
        return;
    };
    let file = dir.path().join("catalog/catalog-info.yaml");
    write(&file, &agents_catalog(false));
    server.register(&file).await;

    let path = "/api/policy/entities/agent/default/triage-bot";
    let governance = eventually("the agent's catalog decision", Duration::from_secs(60), || async {
        let (status, body) = server.get_q(path, &[]).await;
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
    let (status, _) = server.get_q("/api/policy/entities/agent/default/nobody", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The change is logged as a catalog-point decision for the agent.
    // (Logged by the governance view once the change burst settles.)
    let page = eventually("the catalog decision in the log", Duration::from_secs(30), || async {
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
    let updated = eventually("PL-AGT-003 to clear", Duration::from_secs(60), || async {
        let body = server.ok(path, &[]).await;
        (body.get("decision").is_some() && with_id(&body["decision"], "PL-AGT-003").is_empty()).then_some(body)
    })
    .await;
    assert_ne!(updated["decision"], governance["decision"]);
    let logged_before = first.len();
    eventually("the re-evaluation in the log", Duration::from_secs(30), || async {
        let page = log(&server, &[("point", "catalog"), ("entity", "agent:default/triage-bot")]).await;
        (page["items"].as_array().unwrap().len() > logged_before).then_some(())
    })
    .await;

    // Team roll-ups for the owner.
    let cards = server.ok("/api/policy/scorecards", &[("owner", "team-agents")]).await;
    let teams = cards["teams"].as_array().unwrap();
    assert!(!teams.is_empty(), "{cards}");
    assert!(teams.iter().all(|t| t["owner"] == json!("group:default/team-agents")), "{cards}");
    let agent_cards = updated["scorecards"].as_array().unwrap();
    for card in agent_cards {
        let name = &card["scorecard"];
        let rollup = teams.iter().find(|t| &t["scorecard"] == name).unwrap_or_else(|| panic!("roll-up of {name}"));
        let level = card["level"].as_str().unwrap_or("none");
        assert!(rollup["levels"][level].as_u64().unwrap_or(0) >= 1, "{rollup} counts the agent at {level}");
        for check in card["checks"].as_array().unwrap() {
            assert!(rollup["checks"].get(check["id"].as_str().unwrap()).is_some(), "{rollup} lacks {check}");
        }
        let score = rollup["score"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&score), "{rollup}");
    }
    let entities: u64 = teams.iter().filter_map(|t| t["entities"].as_u64()).sum();
    assert!(entities >= 2, "the agent and the component are rolled up: {cards}");
    let none = server.ok("/api/policy/scorecards", &[("owner", "group:default/nobody")]).await;
    assert_eq!(none["teams"], json!([]));
    assert!(!cards["scorecards"].as_array().unwrap().is_empty());
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 8. Hot reload
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
    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![source], |config| {
        config.reload_interval = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let input = deployment("big", "ghcr.io/acme/big:1.0.0", 20);
    let first = server.evaluate("deploy", &input).await;
    assert_eq!(first["result"], json!("allow"), "{first}");
    let revision0 = first["revision"].as_str().unwrap().to_string();

    // A new file: picked up within seconds.
    write(&policies.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "10"));
    let denied = eventually("the new policy", Duration::from_secs(10), || async {
        let decision = server.evaluate("deploy", &input).await;
        (decision["result"] == json!("deny")).then_some(decision)
    })
    .await;
    assert_eq!(ids(&denied), ["ACME-REP-001"]);
    assert_eq!(with_id(&denied, "ACME-REP-001")[0]["message"], json!("20 replicas exceed the limit of 10"));
    let revision1 = denied["revision"].as_str().unwrap().to_string();
    assert_ne!(revision1, revision0);
    let listed = server.ok("/api/policy/policies", &[]).await;
    assert_eq!(listed["revision"], json!(revision1));
    assert!(listed["policies"].as_array().unwrap().iter().any(|p| p["package"] == "acme.replicas"));

    // A modified file: the new limit applies.
    write(&policies.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "50"));
    let allowed = eventually("the modified policy", Duration::from_secs(10), || async {
        let decision = server.evaluate("deploy", &input).await;
        (decision["result"] == json!("allow")).then_some(decision)
    })
    .await;
    let revision2 = allowed["revision"].as_str().unwrap().to_string();
    assert!(revision2 != revision1 && revision2 != revision0);
    let over = server.evaluate("deploy", &deployment("huge", "ghcr.io/acme/huge:1.0.0", 60)).await;
    assert_eq!(with_id(&over, "ACME-REP-001")[0]["message"], json!("60 replicas exceed the limit of 50"));

    // A broken edit keeps serving, failing closed at its points with the problem listed.
    write(
        &policies.join("replicas.rego"),
        &REPLICAS_POLICY.replace("LIMIT", "50").replace("deny_too_many contains", "deny_too_many contains contains"),
    );
    let broken = eventually("the broken edit", Duration::from_secs(10), || async {
        let listed = server.ok("/api/policy/policies", &[]).await;
        (listed["problems"].as_array().is_some_and(|p| !p.is_empty())).then_some(listed)
    })
    .await;
    assert!(broken["problems"][0]["file"].as_str().unwrap().ends_with("replicas.rego"), "{broken}");
    let decision = server.evaluate("deploy", &input).await;
    assert_eq!(decision["result"], json!("deny"));
    assert!(violations(&decision).iter().any(|v| v["kind"] == "error"), "{decision}");
    // Removing it restores the original set (and revision).
    std::fs::remove_file(policies.join("replicas.rego")).unwrap();
    let restored = eventually("the removal", Duration::from_secs(10), || async {
        let decision = server.evaluate("deploy", &input).await;
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

    let Some(server) = Server::start(backend, &dir.path().join("data"), vec![url.clone()], |config| {
        config.reload_interval = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let listed = server.ok("/api/policy/policies", &[]).await;
    assert_eq!(listed["problems"], json!([]), "{listed}");
    assert_eq!(listed["sources"], json!([url]));
    let input = deployment("big", "ghcr.io/acme/big:1.0.0", 20);
    let before = server.evaluate("deploy", &input).await;
    assert_eq!(before["result"], json!("deny"), "fetched at start: {before}");
    assert_eq!(with_id(&before, "ACME-REP-001")[0]["message"], json!("20 replicas exceed the limit of 10"));
    assert!(with_id(&before, "ACME-REP-001")[0]["file"].as_str().unwrap().ends_with("replicas.rego"), "{before}");

    // Push a change: not seen until the repository is fetched.
    write(&work.join("replicas.rego"), &REPLICAS_POLICY.replace("LIMIT", "30"));
    git(&work, &["commit", "--quiet", "-am", "replica limit 30"]);
    git(&work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stale = server.evaluate("deploy", &input).await;
    assert_eq!(stale["revision"], before["revision"], "no fetch yet");
    assert!(server.policy.reload_if_changed(true).await, "the fetch brought a change");
    let after = server.evaluate("deploy", &input).await;
    assert_eq!(after["result"], json!("allow"), "{after}");
    assert_ne!(after["revision"], before["revision"]);
    let over = server.evaluate("deploy", &deployment("huge", "ghcr.io/acme/huge:1.0.0", 40)).await;
    assert_eq!(with_id(&over, "ACME-REP-001")[0]["message"], json!("40 replicas exceed the limit of 30"));
    assert!(!server.policy.reload_if_changed(true).await, "nothing new to fetch");
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
    let server = Server::start(Backend::Sqlite, &dir.path().join("data"), vec![source], |config| {
        config.reload_interval = Duration::from_millis(200);
    })
    .await
    .expect("SQLite always runs");
    // Without a manifest the v0 file is a load problem with a hint.
    let listed = server.ok("/api/policy/policies", &[]).await;
    let problems = listed["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{listed}");
    assert!(problems[0]["message"].as_str().unwrap().contains("rego_version"), "{listed}");
    let revision = listed["revision"].clone();

    write(&policies.join(".manifest"), r#"{"rego_version": 0}"#);
    let reloaded = eventually("the .manifest change to be applied", Duration::from_secs(10), || async {
        let listed = server.ok("/api/policy/policies", &[]).await;
        (listed["problems"] == json!([])).then_some(listed)
    })
    .await;
    assert_ne!(reloaded["revision"], revision, "the revision covers the manifest");
    let pod = json!({"kind": "Pod", "metadata": {"name": "web", "labels": {}}});
    let decision = server.evaluate("admission", &json!({"review": {"object": pod}, "parameters": {}})).await;
    assert_eq!(decision["result"], json!("deny"), "{decision}");
    assert_eq!(violations(&decision)[0]["details"], json!({"missing_labels": ["app.kubernetes.io/name", "owner"]}));
    server.stop().await;
}
