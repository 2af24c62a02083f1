//! Golden paths over real loopback HTTP with the real `git` client and the
//! shipped policy library: every shipped template end to end (run → policy
//! → commit in a git repository → entities in the catalogue with their
//! relations), policy denials that publish nothing, a Backstage-format
//! template run unchanged, dry runs, the event stream, runs interrupted by a
//! restart, and the safety properties (path escapes, secrets, bad input).
//!
//! The core scenarios run on SQLite and PostgreSQL (`PLINTH_SKIP_POSTGRES=1`
//! skips the latter loudly). Fixtures live in `tests/data/scaffolder/`.

use plinth_testkit::git;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod harness {
    use plinth_catalog::{Catalog, CatalogConfig};
    use plinth_server::policy::{PolicyConfig, PolicyService};
    use plinth_server::scaffolder::{Scaffolder, ScaffolderConfig};
    use plinth_server::ServerConfig;
    use plinth_store::{NewLocation, Store, StoreConfig};
    use plinth_testkit::PgDatabase;
    use reqwest::StatusCode;
    use serde_json::Value;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Backend {
        Sqlite,
        Postgres,
    }

    pub fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
    }

    pub struct Server {
        pub base: String,
        pub http: reqwest::Client,
        pub store: Store,
        pub repos: PathBuf,
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
        _database: Option<Arc<PgDatabase>>,
    }

    /// A store for a scenario: SQLite in `data`, or a fresh PostgreSQL
    /// database (`None` when PostgreSQL is skipped).
    pub async fn store(backend: Backend, data: &Path) -> Option<(Store, Option<Arc<PgDatabase>>)> {
        Some(match backend {
            Backend::Sqlite => (Store::open_sqlite(data).await.expect("open SQLite store"), None),
            Backend::Postgres => {
                let database = PgDatabase::create("scaffolder").await?;
                let config = StoreConfig::Postgres { url: database.url.clone() };
                (Store::open(&config).await.expect("open PostgreSQL store"), Some(Arc::new(database)))
            }
        })
    }

    impl Server {
        /// A server with the demo catalogue, the shipped templates (plus
        /// `extra` locations) and the shipped policies.
        pub async fn start(backend: Backend, data: &Path, extra: &[PathBuf]) -> Option<Server> {
            let (store, database) = store(backend, data).await?;
            Some(Server::on(store, database, data, extra, true).await)
        }

        pub async fn on(
            store: Store,
            database: Option<Arc<PgDatabase>>,
            data: &Path,
            extra: &[PathBuf],
            register: bool,
        ) -> Server {
            let root = workspace_root();
            let catalog = Catalog::open(store.clone(), CatalogConfig::new(data)).await.expect("open the catalogue");
            catalog.spawn_background();
            if register {
                let mut locations =
                    vec![root.join("examples/demo/catalog-info.yaml"), root.join("templates/catalog-info.yaml")];
                locations.extend(extra.iter().cloned());
                for target in locations {
                    let location =
                        NewLocation { kind: String::new(), target: target.to_string_lossy().to_string(), branch: None };
                    catalog.add_location(location).await.expect("register location");
                }
            }
            let policy = PolicyService::start(
                PolicyConfig::new(vec![root.join("policies").to_string_lossy().to_string()], data.to_path_buf()),
                store.clone(),
                catalog.clone(),
            )
            .await;
            let mut config = ScaffolderConfig::new(data.to_path_buf());
            config.run_timeout = Duration::from_secs(60);
            let repos = config.repo_root.clone();
            let scaffolder = Scaffolder::start(config, store.clone(), catalog.clone(), Some(policy.clone())).await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
            let address = listener.local_addr().expect("local address");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let server_config =
                ServerConfig { policy: Some(policy), scaffolder: Some(scaffolder.clone()), ..ServerConfig::default() };
            let task = tokio::spawn(plinth_server::serve(listener, catalog.clone(), server_config, async {
                let _ = rx.await;
            }));
            let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().expect("client");
            Server {
                base: format!("http://{address}"),
                http,
                store,
                repos: repos.canonicalize().unwrap_or(repos),
                shutdown: Some(tx),
                task: Some(task),
                _database: database,
            }
        }

        pub async fn stop(mut self) -> (Store, Option<Arc<PgDatabase>>) {
            if let Some(tx) = self.shutdown.take() {
                let _ = tx.send(());
            }
            if let Some(task) = self.task.take() {
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            }
            (self.store.clone(), self._database.take())
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

        pub async fn get(&self, path: &str) -> (StatusCode, Value) {
            Self::body(self.http.get(self.url(path)).send().await.expect("GET")).await
        }

        pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
            let request = self.http.post(self.url(path)).header("x-plinth-user", "user:default/alice").json(body);
            Self::body(request.send().await.expect("POST")).await
        }
    }
}

use harness::{Backend, Server};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/scaffolder").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

/// Starts a run and waits for it to finish; returns the task.
async fn run(server: &Server, template: &str, values: Value) -> Value {
    run_with(server, json!({"templateRef": template, "values": values})).await
}

async fn run_with(server: &Server, request: Value) -> Value {
    let (status, body) = server.post("/api/scaffolder/v2/tasks", &request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().expect("task id").to_string();
    wait(server, &id).await
}

async fn wait(server: &Server, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, task) = server.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{task}");
        if matches!(task["status"].as_str(), Some("completed" | "failed")) {
            // Whoever sees the final status sees the whole log: every step
            // that finished has its "Finished step" event stored already.
            let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
            let events = events.to_string();
            for step in task["output"]["steps"].as_array().into_iter().flatten() {
                if step["status"] == "completed" {
                    let finished = format!("Finished step {}", step["name"].as_str().unwrap_or_default());
                    assert!(events.contains(&finished), "{id}: `{finished}` not stored when the run ended: {events}");
                }
            }
            return task;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "task {id} did not finish: {task}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_completed(task: &Value) {
    assert_eq!(task["status"], "completed", "run failed: {}", task["error"]);
}

async fn entity(server: &Server, reference: &str) -> Value {
    let (kind, rest) = reference.split_once(':').expect("kind");
    let (namespace, name) = rest.split_once('/').expect("namespace");
    let (status, body) = server.get(&format!("/api/catalog/entities/by-name/{kind}/{namespace}/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{reference} is not in the catalogue: {body}");
    body
}

fn relations(entity: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["type"].as_str().unwrap_or_default().to_string(),
                r["targetRef"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn assert_relations(entity: &Value, expected: &[(&str, &str)]) {
    let actual = relations(entity);
    for (kind, target) in expected {
        assert!(
            actual.iter().any(|(k, t)| k == kind && t == target),
            "{} lacks relation {kind} → {target}; has {actual:?}",
            entity["metadata"]["name"]
        );
    }
}

fn last_commit(repo: &Path, branch: &str) -> String {
    git(repo, &["log", "-1", "--format=%s", branch]).trim().to_string()
}

fn files_at(repo: &Path, branch: &str) -> Vec<String> {
    git(repo, &["ls-tree", "-r", "--name-only", branch]).lines().map(str::to_string).collect()
}

/// What each shipped template must produce.
struct Expectation {
    fixture: &'static str,
    template: &'static str,
    entity: &'static str,
    files: &'static [&'static str],
    relations: &'static [(&'static str, &'static str)],
}

const EXPECTATIONS: &[Expectation] = &[
    Expectation {
        fixture: "service.json",
        template: "service",
        entity: "component:default/loyalty-points",
        files: &[
            "src/main.rs",
            "Cargo.toml",
            "Dockerfile",
            ".github/workflows/ci.yaml",
            "deploy/deployment.yaml",
            "deploy/service.yaml",
            "deploy/hpa.yaml",
            "deploy/argocd-application.yaml",
            "catalog-info.yaml",
        ],
        relations: &[
            ("ownedBy", "group:default/team-orders"),
            ("partOf", "system:default/orders"),
            ("providesApi", "api:default/loyalty-points-api"),
        ],
    },
    Expectation {
        fixture: "service-python.json",
        template: "service",
        entity: "component:default/loyalty-api-py",
        files: &[
            "app/main.py",
            "pyproject.toml",
            "Dockerfile",
            ".github/workflows/ci.yaml",
            "deploy/hpa.yaml",
            "catalog-info.yaml",
        ],
        relations: &[("ownedBy", "group:default/team-orders")],
    },
    Expectation {
        fixture: "postgresql-database.json",
        template: "postgresql-database",
        entity: "resource:default/loyalty-db",
        files: &["deploy/cluster.yaml", "deploy/scheduled-backup.yaml", "catalog-info.yaml"],
        relations: &[("ownedBy", "group:default/team-orders"), ("dependencyOf", "component:default/order-service")],
    },
    Expectation {
        fixture: "kubernetes-namespace.json",
        template: "kubernetes-namespace",
        entity: "resource:default/loyalty-staging",
        files: &["deploy/namespace.yaml", "catalog-info.yaml"],
        relations: &[("ownedBy", "group:default/team-orders"), ("partOf", "system:default/orders")],
    },
    Expectation {
        fixture: "gpu-training-environment.json",
        template: "gpu-training-environment",
        entity: "resource:default/ranker-experiments",
        files: &[
            "deploy/namespace.yaml",
            "deploy/training-job.yaml",
            "deploy/data-pvc.yaml",
            "deploy/mlflow-configmap.yaml",
            "catalog-info.yaml",
        ],
        relations: &[("ownedBy", "group:default/team-search"), ("dependsOn", "dataset:default/search-clickstream")],
    },
    Expectation {
        fixture: "vector-database.json",
        template: "vector-database",
        entity: "resource:default/support-kb-vectors",
        files: &["deploy/qdrant-values.yaml", "qdrant/collection.json", "catalog-info.yaml"],
        relations: &[
            ("ownedBy", "group:default/team-support-tools"),
            ("dependsOn", "model:default/bge-m3-embedding"),
            ("dependsOn", "dataset:default/help-center-articles"),
        ],
    },
    Expectation {
        fixture: "model-serving-endpoint.json",
        template: "model-serving-endpoint",
        entity: "component:default/support-llm",
        files: &["deploy/inference-service.yaml", "catalog-info.yaml"],
        relations: &[("ownedBy", "group:default/team-applied-ai"), ("dependsOn", "model:default/llama-3-1-8b-support")],
    },
    Expectation {
        fixture: "model-serving-endpoint-vllm.json",
        template: "model-serving-endpoint",
        entity: "component:default/support-llm-vllm",
        files: &["deploy/deployment.yaml", "catalog-info.yaml"],
        relations: &[("dependsOn", "model:default/llama-3-1-8b-support")],
    },
    Expectation {
        fixture: "ai-agent.json",
        template: "ai-agent",
        entity: "agent:default/order-status-agent",
        files: &["config/agent.yaml", "prompts/system.md", "catalog-info.yaml"],
        relations: &[
            ("ownedBy", "group:default/team-support-tools"),
            ("usesModel", "model:default/anthropic-claude-haiku"),
            ("usesPrompt", "prompt:default/order-status-agent-system"),
            ("usesTool", "api:default/orders-api"),
            ("usesTool", "api:default/shipping-api"),
        ],
    },
];

fn values_of(fixture_name: &str) -> Value {
    let value = fixture(fixture_name);
    if value.get("parameters").is_some() {
        value["parameters"].clone()
    } else {
        value
    }
}

async fn shipped_templates_run_end_to_end(backend: Backend) {
    let data = tempfile::tempdir().expect("tempdir");
    let Some(server) = Server::start(backend, data.path(), &[]).await else { return };
    let (status, listed) = server.get("/api/scaffolder/v2/templates").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in [
        "service",
        "postgresql-database",
        "kubernetes-namespace",
        "ci-pipeline",
        "gpu-training-environment",
        "vector-database",
        "model-serving-endpoint",
        "ai-agent",
    ] {
        assert!(names.contains(&expected), "{expected} not listed: {names:?}");
    }
    assert!(listed["items"].as_array().unwrap().iter().all(|t| t["valid"] == true), "{listed}");

    for expectation in EXPECTATIONS {
        let values = values_of(expectation.fixture);
        let task = run(&server, &format!("template:default/{}", expectation.template), values.clone()).await;
        assert_completed(&task);
        // The commit, in a real repository under the repository root.
        let repo = server.repos.join(values["repoUrl"].as_str().unwrap());
        assert!(repo.join(".git").is_dir(), "{}: no repository at {}", expectation.fixture, repo.display());
        let subject = last_commit(&repo, "main");
        assert!(!subject.is_empty(), "{}: no commit", expectation.fixture);
        let files = files_at(&repo, "main");
        for file in expectation.files {
            assert!(
                files.iter().any(|f| f == file),
                "{}: {file} not committed; committed {files:?}",
                expectation.fixture
            );
        }
        // Every committed file passed the policies and contains no unrendered expression.
        for file in &files {
            let text = std::fs::read_to_string(repo.join(file)).unwrap_or_default();
            assert!(!text.contains("${{ values."), "{}: {file} has an unrendered expression", expectation.fixture);
        }
        let decisions = task["output"]["policy"].as_array().expect("policy decisions recorded");
        assert!(
            decisions.len() > 1,
            "{}: policy checked the parameters and the files: {decisions:?}",
            expectation.fixture
        );
        assert!(decisions.iter().all(|d| d["result"] != "deny"));
        // The entities are in the catalogue at once, with their relations.
        let links = task["output"]["links"].as_array().expect("output links");
        assert!(
            links.iter().any(|l| l["entityRef"].as_str() == Some(expectation.entity)),
            "{}: output links {links:?} lack {}",
            expectation.fixture,
            expectation.entity
        );
        let created = entity(&server, expectation.entity).await;
        assert_relations(&created, expectation.relations);
    }

    // CI pipeline: an existing repository gets a review branch; main is untouched.
    let values = values_of("ci-pipeline.json");
    let repo = server.repos.join(values["repoUrl"].as_str().unwrap());
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "order service\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "existing history"]);
    let task = run(&server, "template:default/ci-pipeline", values).await;
    assert_completed(&task);
    assert_eq!(last_commit(&repo, "main"), "existing history", "main must not change");
    let branches = git(&repo, &["branch", "--format=%(refname:short)"]);
    let branch = branches
        .lines()
        .find(|b| b.starts_with("plinth/ci-pipeline-"))
        .unwrap_or_else(|| panic!("no review branch: {branches}"));
    let files = files_at(&repo, branch);
    assert!(files.iter().any(|f| f.starts_with(".github/workflows/")), "{files:?}");
    assert!(files.contains(&"README.md".to_string()), "the branch builds on the existing history");
    let workflow = files.iter().find(|f| f.starts_with(".github/workflows/")).unwrap();
    let text = git(&repo, &["show", &format!("{branch}:{workflow}")]);
    assert!(text.contains("plinth check"), "the pipeline runs the policy check: {text}");
    assert!(text.contains("${{"), "GitHub expressions survive rendering: {text}");
    server.stop().await;
}

async fn policy_denials_publish_nothing(backend: Backend) {
    let data = tempfile::tempdir().expect("tempdir");
    let Some(server) = Server::start(backend, data.path(), &[]).await else { return };
    for (fixture_name, template, rule) in [
        ("gpu-training-environment-denied.json", "gpu-training-environment", "PL-TRN-001"),
        ("model-serving-endpoint-denied.json", "model-serving-endpoint", "PL-INF-002"),
    ] {
        let values = values_of(fixture_name);
        let task = run(&server, &format!("template:default/{template}"), values.clone()).await;
        assert_eq!(task["status"], "failed", "{fixture_name}: {task}");
        let message = task["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(rule) && message.contains("denied by policy"), "{fixture_name}: {message}");
        let repo = server.repos.join(values["repoUrl"].as_str().unwrap());
        assert!(!repo.exists(), "{fixture_name}: a denied run published {}", repo.display());
        let steps = task["output"]["steps"].as_array().unwrap();
        let status_of =
            |id: &str| steps.iter().find(|s| s["id"] == id).map(|s| s["status"].clone()).unwrap_or_default();
        assert_eq!(status_of("policy"), "failed");
        assert_eq!(status_of("publish"), "open", "publish never started");
        // The decisions are in the decision log.
        let (_, log) = server.get("/api/policy/decisions?point=provision&result=deny").await;
        assert!(log.to_string().contains(rule), "{rule} not in the decision log");
    }
    // Operators see denials in /metrics.
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("plinth_golden_path_runs_denied_total 2"), "{metrics}");
    assert!(metrics.contains("plinth_golden_path_runs_total{status=\"failed\"} 2"), "{metrics}");
    server.stop().await;
}

async fn restarts_fail_unfinished_runs_with_a_reason(backend: Backend) {
    let data = tempfile::tempdir().expect("tempdir");
    let Some((store, database)) = harness::store(backend, data.path()).await else { return };
    // A run the previous process had started and not finished (its last
    // heartbeat long ago), and — on PostgreSQL — one another replica is
    // running right now (heartbeat fresh), which must be left alone.
    let now = plinth_scaffold::now();
    for (id, heartbeat) in [("0193-interrupted", "2020-01-01T00:00:01.000Z"), ("0193-elsewhere", now.as_str())] {
        store
            .create_task(&plinth_store::NewTask {
                id: id.into(),
                template_ref: "template:default/service".into(),
                spec: json!({"templateInfo": {"entityRef": "template:default/service"}, "parameters": {"name": "x"}}),
                created_by: Some("user:default/alice".into()),
                created_at: "2020-01-01T00:00:00.000Z".into(),
            })
            .await
            .unwrap();
        store.set_task_status(id, plinth_store::TaskStatus::Processing, heartbeat).await.unwrap();
    }
    let server = Server::on(store, database, data.path(), &[], false).await;
    let (_, elsewhere) = server.get("/api/scaffolder/v2/tasks/0193-elsewhere").await;
    let expected = if backend == Backend::Sqlite { "failed" } else { "processing" };
    assert_eq!(elsewhere["status"], expected, "SQLite is one process's alone; PostgreSQL is shared: {elsewhere}");
    let (status, task) = server.get("/api/scaffolder/v2/tasks/0193-interrupted").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["status"], "failed");
    assert!(task["error"]["message"].as_str().unwrap().contains("server restarted"), "{task}");
    let (_, events) = server.get("/api/scaffolder/v2/tasks/0193-interrupted/events").await;
    assert_eq!(events.as_array().unwrap().last().unwrap()["type"], "completion", "{events}");
    // The stream of a finished run replays and ends.
    let text = server
        .http
        .get(server.url("/api/scaffolder/v2/tasks/0193-interrupted/eventstream"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("event: completion") && text.contains("server restarted"), "{text}");
    server.stop().await;
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shipped_templates_run_end_to_end() {
        super::shipped_templates_run_end_to_end(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn policy_denials_publish_nothing() {
        super::policy_denials_publish_nothing(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restarts_fail_unfinished_runs_with_a_reason() {
        super::restarts_fail_unfinished_runs_with_a_reason(Backend::Sqlite).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shipped_templates_run_end_to_end() {
        super::shipped_templates_run_end_to_end(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn policy_denials_publish_nothing() {
        super::policy_denials_publish_nothing(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restarts_fail_unfinished_runs_with_a_reason() {
        super::restarts_fail_unfinished_runs_with_a_reason(Backend::Postgres).await;
    }
}

fn backstage_template_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/scaffolder/backstage-template")
}

/// A template written for Backstage runs unchanged: pages, fetch:template
/// with copyWithoutTemplating, `if`, `each`, filters, publish and register.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backstage_template_runs_unchanged() {
    let data = tempfile::tempdir().expect("tempdir");
    let extra = [backstage_template_dir().join("catalog-info.yaml")];
    let server = Server::start(Backend::Sqlite, data.path(), &extra).await.unwrap();
    let (status, schema) =
        server.get("/api/scaffolder/v2/templates/default/template/nodejs-library/parameter-schema").await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert_eq!(schema["steps"].as_array().unwrap().len(), 2, "two form pages: {schema}");
    assert_eq!(schema["steps"][0]["schema"]["properties"]["owner"]["ui:field"], "OwnerPicker");

    let (status, created) = server
        .post(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/nodejs-library", "values": {"name": "ui-kit", "owner": "group:default/team-web", "repoUrl": "ui-kit"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // Follow the event stream to the end, as the portal and Backstage's UI do.
    let stream =
        server.http.get(server.url(&format!("/api/scaffolder/v2/tasks/{id}/eventstream"))).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(60), stream.text()).await.expect("stream ends").unwrap();
    for expected in [
        "Beginning step Fetch Base",
        "Finished step Fetch Base",
        "Skipping step Drop the docs folder",
        "label 0: frontend",
        "label 1: shared",
        "event: completion",
        "Run completed with status: completed",
    ] {
        assert!(text.contains(expected), "event stream lacks `{expected}`:\n{text}");
    }
    let task = wait(&server, &id).await;
    assert_completed(&task);
    assert_eq!(task["createdBy"], "user:default/alice");
    let repo = server.repos.join("ui-kit");
    let files = files_at(&repo, "main");
    for file in [
        ".npmrc",
        "package.json",
        "index.js",
        "docs/index.md",
        "docs/getting-started.md",
        ".github/workflows/ci.yml",
        "catalog-info.yaml",
    ] {
        assert!(files.iter().any(|f| f == file), "{file} missing: {files:?}");
    }
    let read = |f: &str| std::fs::read_to_string(repo.join(f)).unwrap();
    assert!(read("index.js").contains("// ui_kit"), "filters apply: {}", read("index.js"));
    assert!(read(".github/workflows/ci.yml").contains("${{ github.sha }}"), "copied without templating");
    assert!(read("docs/getting-started.md").contains("${{ values.name }}"), "fetch:plain does not render");
    let component = entity(&server, "component:default/ui-kit").await;
    assert_eq!(component["metadata"]["tags"], json!(["frontend", "shared"]));
    assert_eq!(component["metadata"]["annotations"]["backstage.io/techdocs-ref"], "dir:.");
    assert_relations(&component, &[("ownedBy", "group:default/team-web")]);
    assert_eq!(task["output"]["links"][1]["entityRef"], "component:default/ui-kit");
    server.stop().await;
}

fn inline_directory(dir: &Path) -> Vec<Value> {
    use base64::Engine;
    walk(dir)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(dir).unwrap().to_string_lossy().to_string();
            json!({"path": relative, "base64Content": base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap()), "executable": false})
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn yaml_to_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    plinth_model::yaml::parse_documents(&text, &Default::default()).remove(0).value.unwrap()
}

/// Backstage's dry-run shapes: inline template + directoryContents in; log,
/// directoryContents, output and steps out, plus the policy decision;
/// nothing published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_show_files_and_the_policy_decision_and_publish_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(Backend::Sqlite, data.path(), &[]).await.unwrap();
    let dir = backstage_template_dir();
    let request = json!({
        "template": yaml_to_json(&dir.join("template.yaml")),
        "values": {"name": "dry-kit", "owner": "group:default/team-web", "repoUrl": "dry-kit", "withDocs": false},
        "secrets": {},
        "directoryContents": inline_directory(&dir),
    });
    let started = Instant::now();
    let (status, body) = server.post("/api/scaffolder/v2/dry-run", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["completed"], true, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let paths: Vec<&str> =
        body["directoryContents"].as_array().unwrap().iter().filter_map(|f| f["path"].as_str()).collect();
    assert!(paths.contains(&"package.json") && paths.contains(&".npmrc"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("docs/")), "withDocs=false drops docs: {paths:?}");
    let log = body["log"].as_array().unwrap();
    assert!(
        log.iter().any(|l| l["body"]["message"].as_str().unwrap_or("").contains("dry run: would commit")),
        "{log:?}"
    );
    assert_eq!(body["steps"].as_array().unwrap().len(), 7);
    assert_eq!(body["output"]["links"][1]["entityRef"], "component:default/dry-kit", "{}", body["output"]);
    assert!(!server.repos.join("dry-kit").exists(), "a dry run published");
    let (status, _) = server.get("/api/catalog/entities/by-name/component/default/dry-kit").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a dry run registered");

    // A catalogued template by ref, with its own files; the policy decision is shown.
    let mut values = values_of("gpu-training-environment-denied.json");
    values["repoUrl"] = json!("never-created");
    let (status, body) = server
        .post(
            "/api/scaffolder/v2/dry-run",
            &json!({"templateRef": "template:default/gpu-training-environment", "values": values}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["completed"], false);
    assert_eq!(body["policy"]["result"], "deny", "{}", body["policy"]);
    let violations = body["policy"]["violations"].as_array().unwrap();
    assert!(violations.iter().any(|v| v["id"] == "PL-TRN-001" && v["subject"] == "parameters"), "{violations:?}");
    assert!(
        violations.iter().any(|v| v["id"] == "PL-TRN-001" && v["subject"] == "deploy/training-job.yaml"),
        "{violations:?}"
    );
    assert!(!server.repos.join("never-created").exists());
    server.stop().await;
}

/// A template of our own, written to a temporary directory and registered.
fn write_template(dir: &Path, name: &str, steps: &str, skeleton: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("skeleton")).unwrap();
    std::fs::write(
        root.join("template.yaml"),
        format!(
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: {name}\nspec:\n  owner: group:default/team-web\n  type: test\n  parameters:\n    properties:\n      name: {{type: string}}\n      target: {{type: string}}\n  steps:\n{steps}"
        ),
    )
    .unwrap();
    for (path, contents) in skeleton {
        let file = root.join("skeleton").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }
    root.join("template.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_templates_and_inputs_fail_safely() {
    let data = tempfile::tempdir().expect("tempdir");
    let templates = tempfile::tempdir().expect("tempdir");
    let t = templates.path();
    let escape_name = write_template(
        t,
        "escape-name",
        "    - {id: fetch, action: fetch:template, input: {url: ./skeleton, values: {name: '${{ parameters.name }}'}}}\n",
        &[("${{ values.name }}.txt", "pwned\n")],
    );
    let escape_target = write_template(
        t,
        "escape-target",
        "    - {id: fetch, action: fetch:template, input: {url: ./skeleton, targetPath: '${{ parameters.target }}'}}\n",
        &[("a.txt", "x\n")],
    );
    let escape_url =
        write_template(t, "escape-url", "    - {id: fetch, action: fetch:plain, input: {url: ../../../../etc}}\n", &[]);
    let symlink = write_template(
        t,
        "symlink",
        "    - {id: fetch, action: fetch:plain, input: {url: ./skeleton}}\n",
        &[("ok.txt", "x")],
    );
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", t.join("symlink/skeleton/passwd")).unwrap();
    let secrets = write_template(
        t,
        "secrets",
        "    - {id: log, action: debug:log, input: {message: 'token is ${{ secrets.apiToken }}'}}\n    - {id: write, action: fetch:template, input: {url: ./skeleton, values: {token: '${{ secrets.apiToken }}'}}}\n    - {id: fail, action: fs:rename, input: {files: [{from: 'missing-${{ secrets.apiToken }}', to: b}]}}\n",
        &[("config.txt", "token=${{ values.token }}\n")],
    );
    let publish_outside = write_template(
        t,
        "publish-outside",
        "    - {id: fetch, action: fetch:template, input: {url: ./skeleton}}\n    - {id: publish, action: publish:git, input: {repoUrl: '${{ parameters.target }}'}}\n",
        &[("a.txt", "x\n")],
    );
    let unknown =
        write_template(t, "unknown-action", "    - {id: create, action: github:repo:create, input: {}}\n", &[]);
    let files_expr = write_template(
        t,
        "read-files",
        "    - {id: log, action: debug:log, input: {message: \"${{ include('/etc/passwd') }}\"}}\n",
        &[],
    );
    let location = t.join("catalog-info.yaml");
    let targets: Vec<String> =
        [&escape_name, &escape_target, &escape_url, &symlink, &secrets, &publish_outside, &unknown, &files_expr]
            .iter()
            .map(|p| format!("    - {}", p.display()))
            .collect();
    std::fs::write(
        &location,
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: unsafe\nspec:\n  targets:\n{}\n",
            targets.join("\n")
        ),
    )
    .unwrap();
    let server = Server::start(Backend::Sqlite, data.path(), &[location]).await.unwrap();
    let outside = data.path().join("outside");

    let task = run(&server, "template:default/escape-name", json!({"name": "../../../outside"})).await;
    assert_eq!(task["status"], "failed");
    assert!(task["error"]["message"].as_str().unwrap().contains(".."), "{task}");
    let task = run(&server, "template:default/escape-target", json!({"target": "/tmp/plinth-escape"})).await;
    assert!(task["error"]["message"].as_str().unwrap().contains("absolute"), "{task}");
    assert!(!Path::new("/tmp/plinth-escape").exists());
    let task = run(&server, "template:default/escape-url", json!({})).await;
    assert!(task["error"]["message"].as_str().unwrap().contains(".."), "{task}");
    let task = run(&server, "template:default/symlink", json!({})).await;
    assert!(task["error"]["message"].as_str().unwrap().contains("symbolic link"), "{task}");
    let task = run(&server, "template:default/publish-outside", json!({"target": outside.to_string_lossy()})).await;
    assert!(task["error"]["message"].as_str().unwrap().contains("outside the repository root"), "{task}");
    assert!(!outside.exists());
    let task = run(&server, "template:default/read-files", json!({})).await;
    assert_eq!(task["status"], "failed", "expressions cannot read files: {task}");
    assert!(!task.to_string().contains("root:x:0"), "file contents leaked: {task}");

    // Secrets: usable by steps, never in logs, outputs, the stored task or its errors.
    let secret = "s3cr3t-TOKEN-4242";
    let task = run_with(
        &server,
        json!({"templateRef": "template:default/secrets", "values": {}, "secrets": {"apiToken": secret}}),
    )
    .await;
    assert_eq!(task["status"], "failed");
    let id = task["id"].as_str().unwrap();
    let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
    let everything = format!("{task}{events}");
    assert!(!everything.contains(secret), "secret leaked: {everything}");
    assert!(events.to_string().contains("token is ***"), "{events}");
    assert!(task["error"]["message"].as_str().unwrap().contains("missing-***"), "{task}");
    // …nor in a dry run's files.
    let (_, dry) = server
        .post(
            "/api/scaffolder/v2/dry-run",
            &json!({"templateRef": "template:default/secrets", "values": {}, "secrets": {"apiToken": secret}}),
        )
        .await;
    let config =
        dry["directoryContents"].as_array().unwrap().iter().find(|f| f["path"] == "config.txt").expect("config.txt");
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.decode(config["base64Content"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), "token=***\n");
    assert!(!dry.to_string().contains(secret), "secret leaked from a dry run");

    // Unknown actions are refused when the template loads, before any run.
    let (_, listed) = server.get("/api/scaffolder/v2/templates").await;
    let broken = listed["items"].as_array().unwrap().iter().find(|t| t["name"] == "unknown-action").unwrap().clone();
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["problems"][0]["field"], "spec.steps[0].action");
    let (status, body) = server
        .post("/api/scaffolder/v2/tasks", &json!({"templateRef": "template:default/unknown-action", "values": {}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown action `github:repo:create`"), "{body}");

    // Parameters are validated before a run is recorded; errors name the field.
    let (status, body) = server
        .post(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/service", "values": {"name": "Bad Name!", "repoUrl": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> =
        body["error"]["details"]["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert!(fields.contains(&"name") && fields.contains(&"owner") && fields.contains(&"system"), "{fields:?}");
    let (status, body) =
        server.post("/api/scaffolder/v2/tasks", &json!({"templateRef": "template:default/nope", "values": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let response = server.http.post(server.url("/api/scaffolder/v2/tasks")).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("line 1"), "JSON errors say where");
    let (_, tasks) = server.get("/api/scaffolder/v2/tasks?createdBy=user:default/alice&limit=3").await;
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 3);
    assert!(tasks["totalTasks"].as_u64().unwrap() >= 7, "{tasks}");
    let (_, actions) = server.get("/api/scaffolder/v2/actions").await;
    let ids: Vec<&str> = actions.as_array().unwrap().iter().filter_map(|a| a["id"].as_str()).collect();
    for id in [
        "fetch:template",
        "fetch:plain",
        "fs:rename",
        "fs:delete",
        "publish:git",
        "catalog:register",
        "catalog:write",
        "plinth:policy",
        "debug:log",
    ] {
        assert!(ids.contains(&id), "{id} not listed");
    }
    server.stop().await;
}

/// Backstage's cancel: the step in progress (here git waiting on a remote
/// that never answers) is stopped, nothing after it runs, the run ends
/// `cancelled`, and a finished run cannot be cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_stops_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let templates = tempfile::tempdir().expect("tempdir");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = format!("git://127.0.0.1:{}/slow.git", silent.local_addr().unwrap().port());
    let template = write_template(
        templates.path(),
        "slow",
        "    - {id: fetch, action: fetch:template, input: {url: ./skeleton}}\n    - {id: publish, action: publish:git, input: {repoUrl: '${{ parameters.target }}'}}\n    - {id: after, action: debug:log, input: {message: never}}\n",
        &[("a.txt", "x\n")],
    );
    let server = Server::start(Backend::Sqlite, data.path(), &[template]).await.unwrap();
    let (status, created) = server
        .post(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/slow", "values": {"target": remote}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
        if events.to_string().contains("Beginning step publish") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "publish never began: {events}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The portal's run page offers to cancel while the run is in progress…
    let (_, page) = server.get(&format!("/create/tasks/{id}")).await;
    assert!(page.as_str().unwrap().contains(r#"id="cancel-run""#), "{page}");
    let (status, body) = server.post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task = wait_for_status(&server, &id, "cancelled").await;
    assert!(task["error"]["message"].as_str().unwrap().contains("cancelled"), "{task}");
    let steps = task["output"]["steps"].as_array().unwrap();
    let status_of = |id: &str| steps.iter().find(|s| s["id"] == id).map(|s| s["status"].clone()).unwrap_or_default();
    assert_eq!(
        (status_of("fetch"), status_of("publish"), status_of("after")),
        (json!("completed"), json!("cancelled"), json!("open"))
    );
    let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
    assert!(!events.to_string().contains("never"), "a step after the cancel ran");
    assert_eq!(events.as_array().unwrap().last().unwrap()["body"]["status"], "cancelled");
    let (status, body) = server.post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // …and not once it has ended.
    let (_, page) = server.get(&format!("/create/tasks/{id}")).await;
    let page = page.as_str().unwrap();
    assert!(!page.contains(r#"id="cancel-run""#) && page.contains("cancelled"), "{page}");
    let (status, _) = server.post("/api/scaffolder/v2/tasks/nope/cancel", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(silent);
    server.stop().await;
}

async fn wait_for_status(server: &Server, id: &str, expected: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, task) = server.get(&format!("/api/scaffolder/v2/tasks/{id}")).await;
        if task["status"] == expected {
            return task;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "task {id} never became {expected}: {task}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two replicas on one PostgreSQL database: a run executing on A is
/// followed to its end through B's event stream (B polls the store), and B
/// refuses to cancel what it does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_one_replica_streams_through_another() {
    let templates = tempfile::tempdir().expect("tempdir");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = format!("git://127.0.0.1:{}/slow.git", silent.local_addr().unwrap().port());
    let template = write_template(
        templates.path(),
        "slow",
        "    - {id: fetch, action: fetch:template, input: {url: ./skeleton}}\n    - {id: publish, action: publish:git, input: {repoUrl: '${{ parameters.target }}'}}\n",
        &[("a.txt", "x\n")],
    );
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some((store_a, database)) = harness::store(Backend::Postgres, data_a.path()).await else { return };
    let url = database.as_ref().unwrap().url.clone();
    let store_b =
        plinth_store::Store::open(&plinth_store::StoreConfig::Postgres { url }).await.expect("second connection");
    let a = Server::on(store_a, database, data_a.path(), std::slice::from_ref(&template), true).await;
    let b = Server::on(store_b, None, data_b.path(), &[template], true).await;

    let (status, created) = a
        .post(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/slow", "values": {"target": remote}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let stream = b.http.get(b.url(&format!("/api/scaffolder/v2/tasks/{id}/eventstream"))).send().await.unwrap();
    let reader = tokio::spawn(async move { stream.text().await.unwrap() });
    let started = Instant::now();
    loop {
        let (_, events) = b.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
        if events.to_string().contains("Beginning step publish") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "publish never began: {events}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = b.post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "B does not run it: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("another replica"), "{body}");
    let (status, body) = a.post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = tokio::time::timeout(Duration::from_secs(20), reader).await.expect("B's stream ends").unwrap();
    for expected in ["Beginning step fetch", "Beginning step publish", "event: completion", "\"status\":\"cancelled\""]
    {
        assert!(text.contains(expected), "B's stream lacks {expected}:\n{text}");
    }
    drop(silent);
    a.stop().await;
    b.stop().await;
}
