//! Golden paths over real loopback HTTP with the real `git` client and the
//! shipped policy library: every shipped template end to end (run → policy
//! → commit in a git repository → entities in the catalogue with their
//! relations), policy denials that publish nothing, a Backstage-format
//! template run unchanged, dry runs, the event stream, runs interrupted by a
//! restart, the run time limit, the limit on runs executing at once, and the
//! safety properties (path escapes, secrets, bad input).
//!
//! Servers come from `plinth_testkit::TestServer`; the core scenarios run on
//! SQLite and PostgreSQL (`PLINTH_SKIP_POSTGRES=1` skips the latter loudly).
//! Fixtures live in `tests/data/scaffolder/`.

use plinth_testkit::{git, scenarios, wait_until, workspace_root, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

scenarios!(
    shipped_templates_run_end_to_end,
    policy_denials_publish_nothing,
    restarts_fail_unfinished_runs_with_a_reason,
    a_run_longer_than_the_run_timeout_fails_naming_it,
    runs_beyond_the_concurrency_limit_wait_their_turn_and_all_complete,
    invalid_parameters_are_a_400_naming_each_field_on_runs_and_dry_runs,
);

/// The demo catalogue, the shipped templates (plus `extra` locations) and
/// the shipped policies, with golden paths on.
fn golden_paths(extra: &[PathBuf]) -> Options {
    let root = workspace_root();
    let mut locations = vec![root.join("examples/demo/catalog-info.yaml"), root.join("templates/catalog-info.yaml")];
    locations.extend(extra.iter().cloned());
    Options {
        // The shipped library with the demo company's data (its GPU quotas),
        // as `serve --demo` loads it.
        policies: Some(vec![
            root.join("policies").to_string_lossy().into_owned(),
            root.join("examples/demo/policy-data").to_string_lossy().into_owned(),
        ]),
        scaffolder: true,
        golden_paths_config: Some(Box::new(|config| config.run_timeout = Duration::from_secs(60))),
        locations,
        ..Options::default()
    }
}

/// Where `publish:git` creates local repositories.
fn repos(server: &TestServer) -> PathBuf {
    let root = server.scaffolder().config().repo_root.clone();
    root.canonicalize().unwrap_or(root)
}

/// A POST as alice (runs record who asked).
async fn post(server: &TestServer, path: &str, body: &Value) -> (StatusCode, Value) {
    server.post_with_header(path, ("x-plinth-user", "user:default/alice"), body).await
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/scaffolder").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

/// Starts a run and waits for it to finish; returns the task.
async fn run(server: &TestServer, template: &str, values: Value) -> Value {
    run_with(server, json!({"templateRef": template, "values": values})).await
}

async fn run_with(server: &TestServer, request: Value) -> Value {
    let (status, body) = post(server, "/api/scaffolder/v2/tasks", &request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().expect("task id").to_string();
    wait(server, &id).await
}

/// The run, once it has ended (`completed` or `failed`).
async fn wait(server: &TestServer, id: &str) -> Value {
    let path = format!("/api/scaffolder/v2/tasks/{id}");
    wait_until(Duration::from_secs(120), &format!("run {id} ending"), || async {
        let (status, task) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{task}");
        matches!(task["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    let (_, task) = server.get(&path).await;
    // Whoever sees the final status sees the whole log: every step that
    // finished has its "Finished step" event stored already.
    let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
    let events = events.to_string();
    for step in task["output"]["steps"].as_array().into_iter().flatten() {
        if step["status"] == "completed" {
            let finished = format!("Finished step {}", step["name"].as_str().unwrap_or_default());
            assert!(events.contains(&finished), "{id}: `{finished}` not stored when the run ended: {events}");
        }
    }
    task
}

/// The run, once its status is `expected`.
async fn wait_for_status(server: &TestServer, id: &str, expected: &str) -> Value {
    let path = format!("/api/scaffolder/v2/tasks/{id}");
    wait_until(Duration::from_secs(60), &format!("run {id} becoming {expected}"), || async {
        server.get(&path).await.1["status"] == expected
    })
    .await;
    server.get(&path).await.1
}

/// Waits until the run's stored events mention `text`.
async fn wait_for_event(server: &TestServer, id: &str, text: &str) {
    let path = format!("/api/scaffolder/v2/tasks/{id}/events");
    wait_until(Duration::from_secs(60), &format!("run {id} logging `{text}`"), || async {
        server.get(&path).await.1.to_string().contains(text)
    })
    .await;
}

fn assert_completed(task: &Value) {
    assert_eq!(task["status"], "completed", "run failed: {}", task["error"]);
}

async fn entity(server: &TestServer, reference: &str) -> Value {
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
    let Some(server) = TestServer::start_with(backend, golden_paths(&[])).await else { return };
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
        let repo = repos(&server).join(values["repoUrl"].as_str().unwrap());
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
    let repo = repos(&server).join(values["repoUrl"].as_str().unwrap());
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
    let Some(server) = TestServer::start_with(backend, golden_paths(&[])).await else { return };
    for (fixture_name, template, rule) in [
        ("gpu-training-environment-denied.json", "gpu-training-environment", "PL-TRN-001"),
        ("model-serving-endpoint-denied.json", "model-serving-endpoint", "PL-INF-002"),
    ] {
        let values = values_of(fixture_name);
        let task = run(&server, &format!("template:default/{template}"), values.clone()).await;
        assert_eq!(task["status"], "failed", "{fixture_name}: {task}");
        let message = task["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(rule) && message.contains("denied by policy"), "{fixture_name}: {message}");
        let repo = repos(&server).join(values["repoUrl"].as_str().unwrap());
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
    let (_, metrics) = server.text("/metrics").await;
    assert!(metrics.contains("plinth_golden_path_runs_denied_total 2"), "{metrics}");
    assert!(metrics.contains("plinth_golden_path_runs_total{status=\"failed\"} 2"), "{metrics}");
    server.stop().await;
}

async fn restarts_fail_unfinished_runs_with_a_reason(backend: Backend) {
    // The first process: a store, and nothing running golden paths yet.
    let Some(first) = TestServer::start(backend).await else { return };
    let store = first.store.clone();
    // A run the previous process had started and not finished (its last
    // heartbeat long ago), and — on PostgreSQL — one another replica is
    // running right now (heartbeat fresh), which must be left alone.
    let now = time::OffsetDateTime::now_utc();
    for (id, heartbeat) in
        [("0193-interrupted", time::macros::datetime!(2020-01-01 00:00:01 UTC)), ("0193-elsewhere", now)]
    {
        store
            .create_task(&plinth_store::NewTask {
                id: id.into(),
                template_ref: "template:default/service".into(),
                spec: json!({"templateInfo": {"entityRef": "template:default/service"}, "parameters": {"name": "x"}}),
                created_by: Some("user:default/alice".into()),
                created_at: time::macros::datetime!(2020-01-01 00:00 UTC),
            })
            .await
            .unwrap();
        store.set_task_status(id, plinth_store::TaskStatus::Processing, heartbeat).await.unwrap();
    }
    // The next process on the same store starts golden paths (at once: the
    // other replica's run must still look alive, heartbeat under 20 s old).
    let server = first.restart(Options { scaffolder: true, ..Options::default() }).await;
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

fn backstage_template_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/scaffolder/backstage-template")
}

/// A template written for Backstage runs unchanged: pages, fetch:template
/// with copyWithoutTemplating, `if`, `each`, filters, publish and register.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backstage_template_runs_unchanged() {
    let extra = [backstage_template_dir().join("catalog-info.yaml")];
    let server = TestServer::start_with(Backend::Sqlite, golden_paths(&extra)).await.unwrap();
    let (status, schema) =
        server.get("/api/scaffolder/v2/templates/default/template/nodejs-library/parameter-schema").await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert_eq!(schema["steps"].as_array().unwrap().len(), 2, "two form pages: {schema}");
    assert_eq!(schema["steps"][0]["schema"]["properties"]["owner"]["ui:field"], "OwnerPicker");

    let (status, created) = post(&server,
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
    let repo = repos(&server).join("ui-kit");
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
    let server = TestServer::start_with(Backend::Sqlite, golden_paths(&[])).await.unwrap();
    let dir = backstage_template_dir();
    let request = json!({
        "template": yaml_to_json(&dir.join("template.yaml")),
        "values": {"name": "dry-kit", "owner": "group:default/team-web", "repoUrl": "dry-kit", "withDocs": false},
        "secrets": {},
        "directoryContents": inline_directory(&dir),
    });
    let (status, body) = post(&server, "/api/scaffolder/v2/dry-run", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["completed"], true, "{body}");
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
    assert!(!repos(&server).join("dry-kit").exists(), "a dry run published");
    let (status, _) = server.get("/api/catalog/entities/by-name/component/default/dry-kit").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a dry run registered");

    // A catalogued template by ref, with its own files; the policy decision is shown.
    let mut values = values_of("gpu-training-environment-denied.json");
    values["repoUrl"] = json!("never-created");
    let (status, body) = post(
        &server,
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
    assert!(!repos(&server).join("never-created").exists());
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
    let server = TestServer::start_with(Backend::Sqlite, golden_paths(&[location])).await.unwrap();
    // Next to the data directory, outside the repository root under it.
    let outside = server.dir().join("outside");

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
    let (_, dry) = post(
        &server,
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
    let (status, body) = post(
        &server,
        "/api/scaffolder/v2/tasks",
        &json!({"templateRef": "template:default/unknown-action", "values": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown action `github:repo:create`"), "{body}");

    // Parameters are validated before a run is recorded; errors name the field.
    let (status, body) = post(
        &server,
        "/api/scaffolder/v2/tasks",
        &json!({"templateRef": "template:default/service", "values": {"name": "Bad Name!", "repoUrl": "x"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> =
        body["error"]["details"]["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert!(fields.contains(&"name") && fields.contains(&"owner") && fields.contains(&"system"), "{fields:?}");
    let (status, body) =
        post(&server, "/api/scaffolder/v2/tasks", &json!({"templateRef": "template:default/nope", "values": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server.post_raw("/api/scaffolder/v2/tasks", "application/json", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("line 1"), "JSON errors say where: {body}");
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

/// Steps of a template whose `publish` waits on a git remote that never
/// answers, and a step after it that must never run.
const SLOW_STEPS: &str = "    - {id: fetch, action: fetch:template, input: {url: ./skeleton}}\n    - {id: publish, action: publish:git, input: {repoUrl: '${{ parameters.target }}'}}\n    - {id: after, action: debug:log, input: {message: never}}\n";

/// A git remote that accepts connections and never answers.
fn silent_remote() -> (std::net::TcpListener, String) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = format!("git://127.0.0.1:{}/slow.git", silent.local_addr().unwrap().port());
    (silent, remote)
}

fn status_of(task: &Value, step: &str) -> Value {
    let steps = task["output"]["steps"].as_array().unwrap_or_else(|| panic!("no steps: {task}"));
    steps.iter().find(|s| s["id"] == step).map(|s| s["status"].clone()).unwrap_or_default()
}

/// Backstage's cancel: the step in progress (here git waiting on a remote
/// that never answers) is stopped, nothing after it runs, the run ends
/// `cancelled`, and a finished run cannot be cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_stops_it() {
    let templates = tempfile::tempdir().expect("tempdir");
    let (silent, remote) = silent_remote();
    let template = write_template(templates.path(), "slow", SLOW_STEPS, &[("a.txt", "x\n")]);
    let server = TestServer::start_with(Backend::Sqlite, golden_paths(&[template])).await.unwrap();
    let (status, created) = post(
        &server,
        "/api/scaffolder/v2/tasks",
        &json!({"templateRef": "template:default/slow", "values": {"target": remote}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    wait_for_event(&server, &id, "Beginning step publish").await;
    // The portal's run page offers to cancel while the run is in progress…
    let (_, page) = server.get(&format!("/create/tasks/{id}")).await;
    assert!(page.as_str().unwrap().contains(r#"id="cancel-run""#), "{page}");
    let (status, body) = post(&server, &format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task = wait_for_status(&server, &id, "cancelled").await;
    assert!(task["error"]["message"].as_str().unwrap().contains("cancelled"), "{task}");
    assert_eq!(
        (status_of(&task, "fetch"), status_of(&task, "publish"), status_of(&task, "after")),
        (json!("completed"), json!("cancelled"), json!("open"))
    );
    let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
    assert!(!events.to_string().contains("never"), "a step after the cancel ran");
    assert_eq!(events.as_array().unwrap().last().unwrap()["body"]["status"], "cancelled");
    let (status, body) = post(&server, &format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // …and not once it has ended.
    let (_, page) = server.get(&format!("/create/tasks/{id}")).await;
    let page = page.as_str().unwrap();
    assert!(!page.contains(r#"id="cancel-run""#) && page.contains("cancelled"), "{page}");
    let (status, _) = post(&server, "/api/scaffolder/v2/tasks/nope/cancel", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(silent);
    server.stop().await;
}

/// A second replica on the store of a running [`TestServer`]: its own
/// process state (platform, golden-path runner, data directory), the same
/// database.
struct Replica {
    base: String,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Replica {
    async fn on(store: plinth_store::Store) -> Replica {
        use plinth_app::golden_paths::GoldenPathsConfig;
        use plinth_app::{Platform, PlatformConfig};
        let dir = tempfile::TempDir::new().expect("temp dir");
        let data = dir.path().join("data");
        let config = PlatformConfig {
            golden_paths: Some(GoldenPathsConfig::new(data.clone())),
            ..PlatformConfig::catalog_only(&data)
        };
        let platform = Platform::start(store, config).await.expect("start the second replica");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task =
            tokio::spawn(plinth_server::serve(listener, platform, plinth_server::ServerConfig::default(), async {
                let _ = rx.await;
            }));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().expect("client");
        Replica { base, http, shutdown: Some(tx), task: Some(task), _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        TestServer::body(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let request = self.http.post(self.url(path)).header("x-plinth-user", "user:default/alice").json(body);
        TestServer::body(request.send().await.expect("POST")).await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = tokio::time::timeout(Duration::from_secs(20), task).await;
            stopped.expect("the second replica stops").expect("server task").expect("stopped cleanly");
        }
    }
}

/// Two replicas on one PostgreSQL database: a run executing on A is
/// followed to its end through B's event stream (B polls the store), and B
/// refuses to cancel what it does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_one_replica_streams_through_another() {
    let templates = tempfile::tempdir().expect("tempdir");
    let (silent, remote) = silent_remote();
    let template = write_template(templates.path(), "slow", SLOW_STEPS, &[("a.txt", "x\n")]);
    let Some(a) = TestServer::start_with(Backend::Postgres, golden_paths(&[template])).await else { return };
    let b = Replica::on(a.store.clone()).await;

    let (status, created) = post(
        &a,
        "/api/scaffolder/v2/tasks",
        &json!({"templateRef": "template:default/slow", "values": {"target": remote}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let stream = b.http.get(b.url(&format!("/api/scaffolder/v2/tasks/{id}/eventstream"))).send().await.unwrap();
    let reader = tokio::spawn(async move { stream.text().await.unwrap() });
    let events = format!("/api/scaffolder/v2/tasks/{id}/events");
    wait_until(Duration::from_secs(60), "B seeing the publish step begin", || async {
        b.get(&events).await.1.to_string().contains("Beginning step publish")
    })
    .await;
    let (status, body) = b.post(&format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "B does not run it: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("another replica"), "{body}");
    let (status, body) = post(&a, &format!("/api/scaffolder/v2/tasks/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("B's stream ends").unwrap();
    for expected in ["Beginning step fetch", "Beginning step publish", "event: completion", "\"status\":\"cancelled\""]
    {
        assert!(text.contains(expected), "B's stream lacks {expected}:\n{text}");
    }
    // The step after the cancelled one never ran, as B's stream shows too.
    assert!(!text.contains("never"), "a step after the cancel ran:\n{text}");
    drop(silent);
    b.stop().await;
    a.stop().await;
}

// ---------------------------------------------------------------- limits

/// `run_timeout` bounds a whole run: a step still going when it passes is
/// stopped, nothing after it runs, and the run fails saying why.
async fn a_run_longer_than_the_run_timeout_fails_naming_it(backend: Backend) {
    let templates = tempfile::tempdir().expect("tempdir");
    let (silent, remote) = silent_remote();
    let template = write_template(templates.path(), "slow", SLOW_STEPS, &[("a.txt", "x\n")]);
    let options = Options {
        scaffolder: true,
        golden_paths_config: Some(Box::new(|config| config.run_timeout = Duration::from_secs(5))),
        locations: vec![template],
        ..Options::default()
    };
    let Some(server) = TestServer::start_with(backend, options).await else { return };
    let task = run_with(&server, json!({"templateRef": "template:default/slow", "values": {"target": remote}})).await;
    assert_eq!(task["status"], "failed", "{task}");
    let message = task["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "the run took longer than 5s and was stopped", "{task}");
    // The remote never answered: the time limit, not git, ended the run.
    assert_eq!(
        (status_of(&task, "fetch"), status_of(&task, "publish"), status_of(&task, "after")),
        (json!("completed"), json!("failed"), json!("open")),
        "{task}"
    );
    let id = task["id"].as_str().unwrap();
    let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["type"].as_str(), last["body"]["status"].as_str()), (Some("completion"), Some("failed")));
    assert!(last["body"]["error"]["message"].as_str().unwrap_or_default().contains("took longer than 5s"), "{last}");
    assert!(!events.to_string().contains("never"), "a step after the timeout ran: {events}");
    let (_, metrics) = server.text("/metrics").await;
    assert!(metrics.contains("plinth_golden_path_runs_total{status=\"failed\"} 1"), "{metrics}");
    drop(silent);
    server.stop().await;
}

/// A loopback git remote that holds every connection until the test lets it
/// through, then serves it with `git daemon --inetd` from `base` (pushes
/// allowed). A run held here is executing (it holds a run permit).
struct Gate {
    port: u16,
    held: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<tokio::sync::oneshot::Sender<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn open(base: PathBuf) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the gate");
        let port = listener.local_addr().expect("gate address").port();
        let held: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<_>>> = Default::default();
        let queue = held.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (pass, passed) = tokio::sync::oneshot::channel::<()>();
                queue.lock().unwrap().push_back(pass);
                let base = base.clone();
                tokio::spawn(async move {
                    if passed.await.is_ok() {
                        serve_git(socket, &base).await;
                    }
                });
            }
        });
        Gate { port, held, accept }
    }

    fn url(&self, repository: &str) -> String {
        format!("git://127.0.0.1:{}/{repository}", self.port)
    }

    /// Connections waiting at the gate.
    fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Lets the longest-waiting connection through.
    fn release_one(&self) {
        let pass = self.held.lock().unwrap().pop_front().expect("a connection to release");
        pass.send(()).expect("the connection is still waiting");
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One git protocol connection served by `git daemon --inetd`.
async fn serve_git(socket: tokio::net::TcpStream, base: &Path) {
    use tokio::io::AsyncWriteExt;
    let mut daemon = tokio::process::Command::new("git")
        .args(["daemon", "--inetd", "--export-all", "--enable=receive-pack", "--informative-errors"])
        .arg(format!("--base-path={}", base.display()))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run git daemon");
    let (mut stdin, mut stdout) = (daemon.stdin.take().unwrap(), daemon.stdout.take().unwrap());
    let (mut from_client, mut to_client) = socket.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
        drop(stdin);
    };
    let down = async move {
        let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
    let _ = daemon.wait().await;
}

/// Statuses of the runs `ids`, in order.
/// The status of each run in `ids`, read in one request (one store query):
/// reading them one by one could see a run still processing and, a moment
/// later, the run that started when it finished, so more runs than were
/// ever executing at once.
async fn statuses(server: &TestServer, ids: &[String]) -> Vec<String> {
    let (status, list) = server.get("/api/scaffolder/v2/tasks?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let tasks = list["tasks"].as_array().expect("a task list");
    let mut out = Vec::new();
    for id in ids {
        let task =
            tasks.iter().find(|t| t["id"] == id.as_str()).unwrap_or_else(|| panic!("run {id} not listed: {list}"));
        assert_ne!(task["status"], "failed", "run {id} failed: {task}");
        out.push(task["status"].as_str().unwrap_or_default().to_string());
    }
    out
}

fn count(statuses: &[String], wanted: &str) -> usize {
    statuses.iter().filter(|s| *s == wanted).count()
}

/// `concurrency` bounds the runs executing at once; the others wait their
/// turn as `open` and start as permits free up. Five runs, a limit of two:
/// every run's git traffic is held at a gate, so the test sees the limit
/// reached and never exceeded at each step, and lets the runs through one
/// connection at a time until all have completed.
async fn runs_beyond_the_concurrency_limit_wait_their_turn_and_all_complete(backend: Backend) {
    const LIMIT: usize = 2;
    const RUNS: usize = 5;
    let templates = tempfile::tempdir().expect("tempdir");
    let template = write_template(
        templates.path(),
        "gated",
        "    - {id: fetch, action: fetch:template, input: {url: ./skeleton}}\n    - {id: publish, action: publish:git, input: {repoUrl: '${{ parameters.target }}'}}\n",
        &[("a.txt", "x\n")],
    );
    let remotes = tempfile::tempdir().expect("tempdir");
    for i in 0..RUNS {
        let repository = remotes.path().join(format!("r{i}.git"));
        std::fs::create_dir_all(&repository).unwrap();
        git(&repository, &["init", "--quiet", "--bare", "-b", "main"]);
    }
    let gate = Gate::open(remotes.path().to_path_buf()).await;
    let options = Options {
        scaffolder: true,
        golden_paths_config: Some(Box::new(|config| {
            config.concurrency = LIMIT;
            config.run_timeout = Duration::from_secs(120);
        })),
        locations: vec![template],
        ..Options::default()
    };
    let Some(server) = TestServer::start_with(backend, options).await else { return };
    assert_eq!(server.scaffolder().config().concurrency, LIMIT);
    let mut ids = Vec::new();
    for i in 0..RUNS {
        let request =
            json!({"templateRef": "template:default/gated", "values": {"target": gate.url(&format!("r{i}.git"))}});
        let (status, created) = post(&server, "/api/scaffolder/v2/tasks", &request).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    // Each run talks to its remote twice (ls-remote, then push); each time,
    // wait until every executing run is held at the gate, check, let one
    // connection through.
    let mut released = 0;
    loop {
        wait_until(Duration::from_secs(60), "every executing run waiting at the gate", || async {
            let now = statuses(&server, &ids).await;
            let processing = count(&now, "processing");
            assert!(processing <= LIMIT, "{processing} runs executing at once, the limit is {LIMIT}: {now:?}");
            assert!(gate.held() <= LIMIT, "{} runs reached their remote at once: {now:?}", gate.held());
            let unfinished = count(&now, "open") + processing;
            processing == LIMIT.min(unfinished) && gate.held() == processing
        })
        .await;
        let now = statuses(&server, &ids).await;
        let (open, processing, completed) = (count(&now, "open"), count(&now, "processing"), count(&now, "completed"));
        assert_eq!(open + processing + completed, RUNS, "{now:?}");
        assert_eq!(processing, LIMIT.min(RUNS - completed), "the limit is used, never exceeded: {now:?}");
        if completed == RUNS {
            break;
        }
        gate.release_one();
        released += 1;
    }
    assert_eq!(released, 2 * RUNS, "every run reached its remote twice, one after another");
    for (i, id) in ids.iter().enumerate() {
        let task = wait(&server, id).await;
        assert_completed(&task);
        let log = git(&remotes.path().join(format!("r{i}.git")), &["log", "-1", "--format=%s", "main"]);
        assert_eq!(log.trim(), "Initial commit from golden path template:default/gated", "r{i}.git");
    }
    let (_, metrics) = server.text("/metrics").await;
    assert!(metrics.contains(&format!("plinth_golden_path_runs_total{{status=\"completed\"}} {RUNS}")), "{metrics}");
    server.stop().await;
}

/// Invalid parameters are refused before anything runs or is recorded, with
/// a 400 whose field errors name each bad field — for a run and for a dry
/// run alike (as Backstage answers both).
async fn invalid_parameters_are_a_400_naming_each_field_on_runs_and_dry_runs(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, golden_paths(&[])).await else { return };
    // `name` breaks its pattern; `owner` and `system` are required and missing.
    let request = json!({"templateRef": "template:default/service", "values": {"name": "Bad Name!", "repoUrl": "x"}});
    for path in ["/api/scaffolder/v2/tasks", "/api/scaffolder/v2/dry-run"] {
        let (status, body) = post(&server, path, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["name"], "InputError", "{path}: {body}");
        let fields = body["error"]["details"]["fields"].as_array().unwrap_or_else(|| panic!("{path}: {body}"));
        let named: Vec<&str> = fields.iter().filter_map(|f| f["field"].as_str()).collect();
        for field in ["name", "owner", "system"] {
            assert!(named.contains(&field), "{path}: no error for `{field}`: {body}");
        }
        assert!(!named.contains(&"repoUrl"), "{path}: a valid field is not an error: {body}");
        assert!(fields.iter().all(|f| !f["message"].as_str().unwrap_or_default().is_empty()), "{path}: {body}");
    }
    // An inline template is checked the same way.
    let inline = json!({
        "template": yaml_to_json(&backstage_template_dir().join("template.yaml")),
        "values": {"owner": "group:default/team-web", "repoUrl": "inline-kit"},
        "directoryContents": inline_directory(&backstage_template_dir()),
    });
    let (status, body) = post(&server, "/api/scaffolder/v2/dry-run", &inline).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let named: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(named, ["name"], "{body}");
    // Nothing was recorded, run or published.
    let (_, tasks) = server.get("/api/scaffolder/v2/tasks").await;
    assert_eq!(tasks["totalTasks"], 0, "{tasks}");
    assert!(!repos(&server).join("x").exists() && !repos(&server).join("inline-kit").exists());
    server.stop().await;
}
