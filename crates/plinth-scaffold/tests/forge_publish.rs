//! `publish:github`, `publish:gitlab`, `publish:github:pull-request` and
//! `publish:gitlab:merge-request` against a fake forge started here: real
//! HTTP on loopback implementing the few GitHub and GitLab REST endpoints
//! the actions call, with real bare git repositories (pushed to over the
//! file transport by the real git client) behind them. The fake checks what
//! a forge checks (the token, that a repository does not exist yet, that a
//! branch exists before it is protected or proposed) and answers as the
//! forge does.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::future::BoxFuture;
use plinth_confine::OutboundPolicy;
use plinth_policy::Decision;
use plinth_scaffold::{
    ForgeIntegration, Forges, Host, Limits, PolicyRequest, RegisterTarget, RunReport, RunRequest, ScaffoldError,
    Template, TemplateFiles,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "ghp_fakeforge_T0KEN_never_shown";

// ---------------------------------------------------------------------------
// The fake forge
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Recorded {
    /// (method, path) of every authenticated call, in order.
    calls: Vec<(String, String)>,
    /// Branch protections: (repository, branch, body).
    protections: Vec<(String, String, Value)>,
    /// Pull/merge requests: (repository, head, base, title).
    changes: Vec<(String, String, String, String)>,
    gitlab_projects: HashMap<u64, String>,
}

#[derive(Clone)]
struct Forge {
    root: PathBuf,
    base: String,
    recorded: Arc<Mutex<Recorded>>,
}

type Answer = (StatusCode, Json<Value>);

fn answer(status: u16, body: Value) -> Answer {
    (StatusCode::from_u16(status).unwrap(), Json(body))
}

impl Forge {
    fn bare(&self, forge: &str, full_name: &str) -> PathBuf {
        self.root.join(forge).join(format!("{full_name}.git"))
    }

    fn has_branch(&self, repo: &Path, branch: &str) -> bool {
        std::process::Command::new("git")
            .arg("--git-dir")
            .arg(repo)
            .args(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn create_bare(&self, path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// GitHub: `Authorization: Bearer <token>`; GitLab: `PRIVATE-TOKEN`.
    fn authorised(&self, headers: &HeaderMap, method: &str, path: String) -> Result<(), Answer> {
        let github = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
        let gitlab = headers.get("private-token").and_then(|v| v.to_str().ok()) == Some(TOKEN);
        if !(github || gitlab) {
            let message = if path.starts_with("/gl") { "401 Unauthorized" } else { "Bad credentials" };
            return Err(answer(401, json!({"message": message})));
        }
        self.recorded.lock().unwrap().calls.push((method.to_string(), path));
        Ok(())
    }

    fn github_repo(&self, full_name: &str) -> Value {
        json!({
            "full_name": full_name, "default_branch": "main",
            "html_url": format!("{}/gh/{full_name}", self.base),
            "clone_url": format!("{}/gh/{full_name}.git", self.base),
        })
    }
}

async fn gh_user(State(f): State<Forge>, headers: HeaderMap, UrlPath(owner): UrlPath<String>) -> Answer {
    if let Err(a) = f.authorised(&headers, "GET", format!("/gh/users/{owner}")) {
        return a;
    }
    match owner.as_str() {
        "acme" => answer(200, json!({"login": "acme", "type": "Organization"})),
        "octocat" => answer(200, json!({"login": "octocat", "type": "User"})),
        _ => answer(404, json!({"message": "Not Found"})),
    }
}

async fn gh_create(f: Forge, headers: HeaderMap, owner: String, path: String, body: Value) -> Answer {
    if let Err(a) = f.authorised(&headers, "POST", path) {
        return a;
    }
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let full = format!("{owner}/{name}");
    let bare = f.bare("gh", &full);
    if bare.exists() {
        return answer(
            422,
            json!({"message": "Repository creation failed.", "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}]}),
        );
    }
    f.create_bare(&bare);
    let mut repo = f.github_repo(&full);
    repo["private"] = body["private"].clone();
    repo["visibility"] = body["visibility"].clone();
    answer(201, repo)
}

async fn gh_create_org(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath(org): UrlPath<String>,
    Json(body): Json<Value>,
) -> Answer {
    gh_create(f, headers, org.clone(), format!("/gh/orgs/{org}/repos"), body).await
}

async fn gh_create_user(State(f): State<Forge>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    gh_create(f, headers, "octocat".into(), "/gh/user/repos".into(), body).await
}

async fn gh_protect(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath((owner, repo, branch)): UrlPath<(String, String, String)>,
    Json(body): Json<Value>,
) -> Answer {
    let full = format!("{owner}/{repo}");
    if let Err(a) = f.authorised(&headers, "PUT", format!("/gh/repos/{full}/branches/{branch}/protection")) {
        return a;
    }
    if !f.has_branch(&f.bare("gh", &full), &branch) {
        return answer(404, json!({"message": "Branch not found"}));
    }
    f.recorded.lock().unwrap().protections.push((full, branch, body));
    answer(200, json!({"url": "protection"}))
}

async fn gh_repo(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
) -> Answer {
    let full = format!("{owner}/{repo}");
    if let Err(a) = f.authorised(&headers, "GET", format!("/gh/repos/{full}")) {
        return a;
    }
    if !f.bare("gh", &full).exists() {
        return answer(404, json!({"message": "Not Found"}));
    }
    answer(200, f.github_repo(&full))
}

async fn gh_pull(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Answer {
    let full = format!("{owner}/{repo}");
    if let Err(a) = f.authorised(&headers, "POST", format!("/gh/repos/{full}/pulls")) {
        return a;
    }
    let (head, base) = (body["head"].as_str().unwrap_or_default(), body["base"].as_str().unwrap_or_default());
    let bare = f.bare("gh", &full);
    if !f.has_branch(&bare, head) || !f.has_branch(&bare, base) {
        return answer(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}),
        );
    }
    let mut recorded = f.recorded.lock().unwrap();
    if recorded.changes.iter().any(|c| c.0 == full && c.1 == head) {
        return answer(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {owner}:{head}.")}]}),
        );
    }
    recorded.changes.push((full.clone(), head.into(), base.into(), body["title"].as_str().unwrap_or_default().into()));
    let number = recorded.changes.len();
    answer(
        201,
        json!({"number": number, "html_url": format!("{}/gh/{full}/pull/{number}", f.base), "draft": body["draft"]}),
    )
}

async fn gl_namespace(State(f): State<Forge>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Answer {
    if let Err(a) = f.authorised(&headers, "GET", format!("/gl/namespaces/{id}")) {
        return a;
    }
    match id.as_str() {
        "acme" => answer(200, json!({"id": 7, "full_path": "acme", "kind": "group"})),
        "acme/platform" => answer(200, json!({"id": 8, "full_path": "acme/platform", "kind": "group"})),
        _ => answer(404, json!({"message": "404 Namespace Not Found"})),
    }
}

fn gl_project_json(f: &Forge, id: u64, full: &str) -> Value {
    json!({
        "id": id, "path_with_namespace": full, "default_branch": "main",
        "web_url": format!("{}/gl/{full}", f.base), "http_url_to_repo": format!("{}/gl/{full}.git", f.base),
    })
}

async fn gl_create(State(f): State<Forge>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    if let Err(a) = f.authorised(&headers, "POST", "/gl/projects".into()) {
        return a;
    }
    let namespace = match body["namespace_id"].as_u64() {
        Some(7) => "acme",
        Some(8) => "acme/platform",
        _ => return answer(400, json!({"message": {"namespace": ["is not valid"]}})),
    };
    let full = format!("{namespace}/{}", body["path"].as_str().unwrap_or_default());
    let bare = f.bare("gl", &full);
    if bare.exists() {
        return answer(
            400,
            json!({"message": {"name": ["has already been taken"], "path": ["has already been taken"]}}),
        );
    }
    f.create_bare(&bare);
    let mut recorded = f.recorded.lock().unwrap();
    let id = 100 + recorded.gitlab_projects.len() as u64;
    recorded.gitlab_projects.insert(id, full.clone());
    answer(201, gl_project_json(&f, id, &full))
}

async fn gl_project(State(f): State<Forge>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Answer {
    if let Err(a) = f.authorised(&headers, "GET", format!("/gl/projects/{id}")) {
        return a;
    }
    let recorded = f.recorded.lock().unwrap();
    match recorded.gitlab_projects.iter().find(|(n, full)| **full == id || n.to_string() == id) {
        Some((n, full)) => answer(200, gl_project_json(&f, *n, full)),
        None => answer(404, json!({"message": "404 Project Not Found"})),
    }
}

fn gl_full(f: &Forge, id: u64) -> Option<String> {
    f.recorded.lock().unwrap().gitlab_projects.get(&id).cloned()
}

async fn gl_protect(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<u64>,
    Json(body): Json<Value>,
) -> Answer {
    if let Err(a) = f.authorised(&headers, "POST", format!("/gl/projects/{id}/protected_branches")) {
        return a;
    }
    let Some(full) = gl_full(&f, id) else { return answer(404, json!({"message": "404 Project Not Found"})) };
    let branch = body["name"].as_str().unwrap_or_default().to_string();
    if !f.has_branch(&f.bare("gl", &full), &branch) {
        return answer(404, json!({"message": "404 Branch Not Found"}));
    }
    f.recorded.lock().unwrap().protections.push((full, branch, body));
    answer(201, json!({"name": "main"}))
}

async fn gl_merge(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<u64>,
    Json(body): Json<Value>,
) -> Answer {
    if let Err(a) = f.authorised(&headers, "POST", format!("/gl/projects/{id}/merge_requests")) {
        return a;
    }
    let Some(full) = gl_full(&f, id) else { return answer(404, json!({"message": "404 Project Not Found"})) };
    let (source, target) =
        (body["source_branch"].as_str().unwrap_or_default(), body["target_branch"].as_str().unwrap_or_default());
    if !f.has_branch(&f.bare("gl", &full), source) {
        return answer(400, json!({"message": ["Source branch does not exist"]}));
    }
    let mut recorded = f.recorded.lock().unwrap();
    recorded.changes.push((
        full.clone(),
        source.into(),
        target.into(),
        body["title"].as_str().unwrap_or_default().into(),
    ));
    let iid = recorded.changes.len();
    answer(201, json!({"iid": iid, "web_url": format!("{}/gl/{full}/-/merge_requests/{iid}", f.base)}))
}

async fn gh_pulls_list(
    State(f): State<Forge>,
    headers: HeaderMap,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Answer {
    let full = format!("{owner}/{repo}");
    if let Err(a) = f.authorised(&headers, "GET", format!("/gh/repos/{full}/pulls")) {
        return a;
    }
    let head = query.get("head").and_then(|h| h.split_once(':')).map(|(_, b)| b.to_string()).unwrap_or_default();
    let recorded = f.recorded.lock().unwrap();
    let list: Vec<Value> = recorded
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.0 == full && c.1 == head)
        .map(|(i, _)| json!({"number": i + 1, "html_url": format!("{}/gh/{full}/pull/{}", f.base, i + 1)}))
        .collect();
    answer(200, json!(list))
}

async fn start_forge(root: &Path) -> Forge {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let forge = Forge { root: root.to_path_buf(), base, recorded: Default::default() };
    let app = Router::new()
        .route("/gh/api/v3/users/{owner}", get(gh_user))
        .route("/gh/api/v3/orgs/{org}/repos", post(gh_create_org))
        .route("/gh/api/v3/user/repos", post(gh_create_user))
        .route("/gh/api/v3/repos/{owner}/{repo}", get(gh_repo))
        .route("/gh/api/v3/repos/{owner}/{repo}/branches/{branch}/protection", put(gh_protect))
        .route("/gh/api/v3/repos/{owner}/{repo}/pulls", post(gh_pull).get(gh_pulls_list))
        .route("/gl/api/v4/namespaces/{id}", get(gl_namespace))
        .route("/gl/api/v4/projects", post(gl_create))
        .route("/gl/api/v4/projects/{id}", get(gl_project))
        .route("/gl/api/v4/projects/{id}/protected_branches", post(gl_protect))
        .route("/gl/api/v4/projects/{id}/merge_requests", post(gl_merge))
        .with_state(forge.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    forge
}

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

/// The engine's host here: the forges (the fake one, allowed by the
/// outbound allowlist by address). No step of these templates asks for a
/// policy decision or a registration.
struct ForgeHost {
    forges: Arc<Forges>,
    repo_root: PathBuf,
}

impl Host for ForgeHost {
    fn decide<'a>(
        &'a self,
        _: Value,
        _: &'a PolicyRequest,
    ) -> BoxFuture<'a, Result<(String, Decision), ScaffoldError>> {
        Box::pin(async { Err(ScaffoldError::Host("these templates have no plinth:policy step".into())) })
    }

    fn register<'a>(&'a self, _: RegisterTarget) -> BoxFuture<'a, Result<Vec<String>, ScaffoldError>> {
        Box::pin(async { Err(ScaffoldError::Host("these templates have no catalog:register step".into())) })
    }

    fn repo_root(&self) -> PathBuf {
        self.repo_root.clone()
    }

    fn forges(&self) -> Arc<Forges> {
        self.forges.clone()
    }
}

fn host(forge: &Forge, outbound: OutboundPolicy, token: Option<&str>) -> ForgeHost {
    let token = token.map(|t| SecretString::from(t.to_string()));
    let github = ForgeIntegration::github("github.forge.test", token.clone())
        .with_api_base(&format!("{}/gh/api/v3", forge.base))
        .with_git_base(&format!("file://{}/gh", forge.root.display()));
    let gitlab = ForgeIntegration::gitlab("gitlab.forge.test", token)
        .with_api_base(&format!("{}/gl/api/v4", forge.base))
        .with_git_base(&format!("file://{}/gl", forge.root.display()));
    ForgeHost {
        forges: Arc::new(Forges::new(vec![github, gitlab], Arc::new(outbound))),
        repo_root: forge.root.join("local"),
    }
}

fn loopback_allowed() -> OutboundPolicy {
    OutboundPolicy::new(&["127.0.0.1".to_string()], false).unwrap()
}

/// A template that renders a small service and runs one publishing step.
fn template(step: Value) -> Template {
    let entity = json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
        "metadata": {"name": "forge-test", "title": "Forge test"},
        "spec": {"owner": "team-a", "type": "service",
            "parameters": [{"properties": {"name": {"type": "string"}}}],
            "steps": [
                {"id": "fetch", "name": "Render", "action": "fetch:template", "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}}},
                step,
            ],
            "output": {"links": [{"title": "Repository", "url": "${{ steps.publish.output.remoteUrl }}"}]}}
    });
    Template::from_entity(&entity).unwrap_or_else(|p| panic!("{p:?}"))
}

struct Outcome {
    report: RunReport,
    /// Everything that left the run: events, log, outputs, error.
    leaked: String,
}

async fn run(host: &ForgeHost, step: Value, secrets: &[(&str, &str)], dir: &Path) -> Outcome {
    run_as(host, step, secrets, dir, false).await
}

async fn run_as(host: &ForgeHost, step: Value, secrets: &[(&str, &str)], dir: &Path, dry_run: bool) -> Outcome {
    let files = dir.join("template");
    std::fs::create_dir_all(files.join("skeleton")).unwrap();
    std::fs::write(
        files.join("skeleton/catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${{ values.name }}\nspec:\n  type: service\n  owner: team-a\n  lifecycle: experimental\n",
    )
    .unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let request = RunRequest {
        task_id: uuid::Uuid::now_v7().to_string(),
        template: Arc::new(template(step)),
        files: TemplateFiles::Dir(files),
        values: json!({"name": "shop"}),
        secrets: secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        user_ref: None,
        user_entity: None,
        dry_run,
        workspace_dir: dir.join(format!("work-{}", uuid::Uuid::now_v7())),
        limits: Limits::default(),
        timeout: Duration::from_secs(60),
        cancel: None,
    };
    let report = plinth_scaffold::run(request, host, Some(sender)).await;
    let mut leaked = serde_json::to_string(&report).unwrap();
    while let Ok(event) = receiver.try_recv() {
        leaked.push_str(&serde_json::to_string(&event).unwrap());
    }
    Outcome { report, leaked }
}

fn show(bare: &Path, spec: &str) -> String {
    let out = std::process::Command::new("git").arg("--git-dir").arg(bare).args(["show", spec]).output().unwrap();
    assert!(out.status.success(), "git show {spec} in {}: {}", bare.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_token(outcome: &Outcome) {
    assert!(!outcome.leaked.contains(TOKEN), "the token left the run: {}", outcome.leaked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_repository_created_pushed_and_protected_then_a_pull_request() {
    let dir = tempfile::tempdir().unwrap();
    let forge = start_forge(dir.path()).await;
    let host = host(&forge, loopback_allowed(), Some(TOKEN));

    // A new repository in an organisation, token from the integration.
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=acme&repo=${{ parameters.name }}", "description": "The shop",
        "repoVisibility": "internal", "defaultBranch": "main", "requiredApprovingReviewCount": 2}});
    let outcome = run(&host, step.clone(), &[], dir.path()).await;
    assert!(outcome.report.completed, "{:?}\n{}", outcome.report.error, outcome.report.log.join("\n"));
    assert_no_token(&outcome);
    let output = &outcome.report.steps[1].output;
    assert_eq!(output["remoteUrl"], json!(format!("{}/gh/acme/shop.git", forge.base)));
    assert_eq!(output["repoContentsUrl"], json!(format!("{}/gh/acme/shop/blob/main", forge.base)));
    let bare = forge.bare("gh", "acme/shop");
    assert!(show(&bare, "main:catalog-info.yaml").contains("name: shop"));
    let commit = show(&bare, "--no-patch").to_string();
    assert!(commit.contains(output["commitHash"].as_str().unwrap()), "{commit}");
    {
        let recorded = forge.recorded.lock().unwrap();
        let calls: Vec<String> = recorded.calls.iter().map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            calls,
            ["GET /gh/users/acme", "POST /gh/orgs/acme/repos", "PUT /gh/repos/acme/shop/branches/main/protection"]
        );
        let (repo, branch, protection) = &recorded.protections[0];
        assert_eq!((repo.as_str(), branch.as_str()), ("acme/shop", "main"));
        assert_eq!(protection["required_pull_request_reviews"]["required_approving_review_count"], 2);
        assert_eq!(protection["enforce_admins"], true);
    }

    // The same repository again: GitHub's 422, said clearly.
    let outcome = run(&host, step, &[], dir.path()).await;
    let error = outcome.report.error.clone().unwrap();
    eprintln!("422: {error}");
    for part in ["publish:github", "repoUrl", "422", "name already exists on this account", "choose another name"] {
        assert!(error.contains(part), "{part} not in: {error}");
    }
    assert_no_token(&outcome);

    // A pull request with a change to it, token from the run's secrets.
    let step = json!({"id": "publish", "name": "Propose", "action": "publish:github:pull-request", "input": {
        "repoUrl": "github.forge.test?owner=acme&repo=shop", "branchName": "plinth/add-docs", "title": "Add the docs",
        "description": "Adds docs", "targetPath": "services/shop", "token": "${{ secrets.forgeToken }}"}});
    let outcome = run(&host, step.clone(), &[("forgeToken", TOKEN)], dir.path()).await;
    assert!(outcome.report.completed, "{:?}\n{}", outcome.report.error, outcome.report.log.join("\n"));
    assert_no_token(&outcome);
    let output = &outcome.report.steps[1].output;
    assert_eq!(output["pullRequestUrl"], json!(format!("{}/gh/acme/shop/pull/1", forge.base)));
    assert_eq!(output["remoteUrl"], output["pullRequestUrl"]);
    assert_eq!((output["pullRequestNumber"].as_u64(), output["targetBranchName"].as_str()), (Some(1), Some("main")));
    assert!(show(&bare, "plinth/add-docs:services/shop/catalog-info.yaml").contains("name: shop"));
    assert_eq!(
        forge.recorded.lock().unwrap().changes[0],
        ("acme/shop".into(), "plinth/add-docs".into(), "main".into(), "Add the docs".into())
    );

    // Run again (a retried run): the branch holds the same files and the
    // pull request is open already; the same one is answered.
    let outcome = run(&host, step, &[("forgeToken", TOKEN)], dir.path()).await;
    assert!(outcome.report.completed, "{:?}\n{}", outcome.report.error, outcome.report.log.join("\n"));
    assert_eq!(outcome.report.steps[1].output["pullRequestNumber"], 1);
    assert_eq!(forge.recorded.lock().unwrap().changes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_failures_name_the_action_the_field_and_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let forge = start_forge(dir.path()).await;

    // A wrong token: 401, and the wrong token is not repeated.
    let host_without_token = host(&forge, loopback_allowed(), None);
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=octocat&repo=shop", "token": "${{ secrets.forgeToken }}"}});
    let outcome = run(&host_without_token, step.clone(), &[("forgeToken", "wrong-T0KEN-value")], dir.path()).await;
    let error = outcome.report.error.clone().unwrap();
    eprintln!("401: {error}");
    for part in ["publish:github", "repoUrl", "401", "Bad credentials", "token"] {
        assert!(error.contains(part), "{part} not in: {error}");
    }
    assert!(!outcome.leaked.contains("wrong-T0KEN-value"), "{}", outcome.leaked);
    assert!(!forge.bare("gh", "octocat/shop").exists());

    // No token at all: refused before any call.
    let step_without = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=octocat&repo=shop"}});
    let error = run(&host_without_token, step_without, &[], dir.path()).await.report.error.unwrap();
    assert!(error.contains("publish:github: token: no token for github.forge.test"), "{error}");

    // An owner the forge does not know: 404 with the hint.
    let host = host(&forge, loopback_allowed(), Some(TOKEN));
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=nobody&repo=shop"}});
    let error = run(&host, step, &[], dir.path()).await.report.error.unwrap();
    assert!(error.contains("looking up the owner nobody") && error.contains("404"), "{error}");

    // A host with no integration, and a malformed repoUrl.
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "git.elsewhere.test?owner=acme&repo=shop"}});
    let error = run(&host, step, &[], dir.path()).await.report.error.unwrap();
    assert!(error.contains("no GitHub integration for the host git.elsewhere.test"), "{error}");
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=acme&repo=../etc"}});
    let error = run(&host, step, &[], dir.path()).await.report.error.unwrap();
    assert!(error.contains("repoUrl") && error.contains("`repo` must be"), "{error}");

    // A dry run calls no forge and needs no token; it shows what would happen.
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=acme&repo=dry"}});
    let outcome = run_as(&host_without_token, step, &[], dir.path(), true).await;
    assert!(outcome.report.completed, "{:?}", outcome.report.error);
    assert!(outcome.leaked.contains("dry run: would create the repository"), "{}", outcome.leaked);
    assert_eq!(outcome.report.steps[1].output["repoContentsUrl"], "https://github.forge.test/acme/dry/blob/main");
    assert!(!forge.bare("gh", "acme/dry").exists());
    assert!(!forge.recorded.lock().unwrap().calls.iter().any(|(_, p)| p.contains("dry")));

    // The outbound allowlist: loopback is refused unless allowed.
    let refused = self::host(&forge, OutboundPolicy::default_for(false), Some(TOKEN));
    let step = json!({"id": "publish", "name": "Publish", "action": "publish:github", "input": {
        "repoUrl": "github.forge.test?owner=acme&repo=other"}});
    let outcome = run(&refused, step, &[], dir.path()).await;
    let error = outcome.report.error.clone().unwrap();
    eprintln!("outbound: {error}");
    assert!(error.contains("publish:github") && error.contains("loopback"), "{error}");
    assert!(!forge.bare("gh", "acme/other").exists());
    assert_no_token(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_project_created_pushed_and_protected_then_a_merge_request() {
    let dir = tempfile::tempdir().unwrap();
    let forge = start_forge(dir.path()).await;
    let host = host(&forge, loopback_allowed(), Some(TOKEN));

    let step = json!({"id": "publish", "name": "Publish", "action": "publish:gitlab", "input": {
        "repoUrl": "gitlab.forge.test?owner=acme/platform&repo=${{ parameters.name }}", "repoVisibility": "private"}});
    let outcome = run(&host, step.clone(), &[], dir.path()).await;
    assert!(outcome.report.completed, "{:?}\n{}", outcome.report.error, outcome.report.log.join("\n"));
    assert_no_token(&outcome);
    let output = &outcome.report.steps[1].output;
    assert_eq!(output["repoContentsUrl"], json!(format!("{}/gl/acme/platform/shop/-/blob/main", forge.base)));
    assert_eq!(output["projectId"], 100);
    let bare = forge.bare("gl", "acme/platform/shop");
    assert!(show(&bare, "main:catalog-info.yaml").contains("name: shop"));
    {
        let recorded = forge.recorded.lock().unwrap();
        let calls: Vec<String> = recorded.calls.iter().map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            calls,
            ["GET /gl/namespaces/acme/platform", "POST /gl/projects", "POST /gl/projects/100/protected_branches"]
        );
        assert_eq!(recorded.protections[0].1, "main");
        assert_eq!(recorded.protections[0].2["push_access_level"], 40);
    }

    // Taken: GitLab's 400 with its field messages.
    let error = run(&host, step, &[], dir.path()).await.report.error.unwrap();
    for part in ["publish:gitlab", "repoUrl", "400", "has already been taken", "choose another name"] {
        assert!(error.contains(part), "{part} not in: {error}");
    }

    // A merge request into the project.
    let step = json!({"id": "publish", "name": "Propose", "action": "publish:gitlab:merge-request", "input": {
        "repoUrl": "gitlab.forge.test?owner=acme/platform&repo=shop", "branchName": "plinth/change", "title": "Change it",
        "targetPath": "deploy"}});
    let outcome = run(&host, step, &[], dir.path()).await;
    assert!(outcome.report.completed, "{:?}\n{}", outcome.report.error, outcome.report.log.join("\n"));
    assert_no_token(&outcome);
    let output = &outcome.report.steps[1].output;
    assert_eq!(output["mergeRequestUrl"], json!(format!("{}/gl/acme/platform/shop/-/merge_requests/1", forge.base)));
    assert_eq!((output["projectid"].as_u64(), output["projectPath"].as_str()), (Some(100), Some("acme/platform/shop")));
    assert!(show(&bare, "plinth/change:deploy/catalog-info.yaml").contains("name: shop"));
    assert_eq!(forge.recorded.lock().unwrap().changes[0].1, "plinth/change");

    // A wrong token on GitLab: 401 from GitLab, said as such.
    let host_without_token = self::host(&forge, loopback_allowed(), None);
    let step = json!({"id": "publish", "name": "Propose", "action": "publish:gitlab:merge-request", "input": {
        "repoUrl": "gitlab.forge.test?owner=acme/platform&repo=shop", "branchName": "x", "title": "X",
        "token": "${{ secrets.t }}"}});
    let error = run(&host_without_token, step, &[("t", "nope-nope-nope")], dir.path()).await.report.error.unwrap();
    for part in
        ["publish:gitlab:merge-request", "repoUrl", "GitLab (gitlab.forge.test) answered 401", "401 Unauthorized"]
    {
        assert!(error.contains(part), "{part} not in: {error}");
    }
}

// ---------------------------------------------------------------------------
// The shipped service golden path, published to GitHub
// ---------------------------------------------------------------------------

/// The fake forge's host plus the shipped policies (real engine) and a
/// registration that reads the catalogue file from the forge's repository.
struct ServiceHost {
    forge: Forge,
    forges: Arc<Forges>,
    engine: plinth_policy::PolicyEngine,
}

impl Host for ServiceHost {
    fn decide<'a>(
        &'a self,
        input: Value,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Result<(String, Decision), ScaffoldError>> {
        Box::pin(async move {
            let input = plinth_policy::engine::attach_context(input, json!({"point": "provision", "catalog": false}));
            let input = plinth_policy::Input::from_json(&input);
            let mut eval = plinth_policy::EvalRequest::new(plinth_policy::Point::Provision, &input);
            eval.profile = request.profile.as_deref();
            Ok((uuid::Uuid::now_v7().to_string(), self.engine.evaluate(&eval)))
        })
    }

    fn register<'a>(&'a self, target: RegisterTarget) -> BoxFuture<'a, Result<Vec<String>, ScaffoldError>> {
        Box::pin(async move {
            let full = target
                .repo
                .strip_prefix(&format!("{}/gh/", self.forge.base))
                .ok_or_else(|| ScaffoldError::Host(format!("{} is not on the fake forge", target.repo)))?;
            let spec = format!("{}:{}", target.branch.as_deref().unwrap_or("main"), target.path);
            let text = show(&self.forge.bare("gh", full), &spec);
            let documents = plinth_model::yaml::parse_documents(&text, &Default::default());
            Ok(documents
                .into_iter()
                .filter_map(|d| d.value.ok())
                .map(|e| {
                    format!(
                        "{}:default/{}",
                        e["kind"].as_str().unwrap_or_default().to_lowercase(),
                        e["metadata"]["name"].as_str().unwrap_or_default()
                    )
                })
                .collect())
        })
    }

    fn repo_root(&self) -> PathBuf {
        self.forge.root.join("local")
    }

    fn forges(&self) -> Arc<Forges> {
        self.forges.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_golden_path_creates_a_protected_github_repository() {
    let dir = tempfile::tempdir().unwrap();
    let forge = start_forge(dir.path()).await;
    let repo_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bundle = plinth_policy::PolicyBundle::load(&[repo_dir.join("policies")]);
    let engine = plinth_policy::PolicyEngine::build(&bundle, plinth_policy::EngineOptions::default());
    let forges = host(&forge, loopback_allowed(), None).forges;
    let host = ServiceHost { forge: forge.clone(), forges, engine };

    let file = repo_dir.join("templates/service/template.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let entity = plinth_model::yaml::parse_documents(&text, &Default::default()).remove(0).value.unwrap();
    let template = Template::from_entity(&entity).unwrap_or_else(|p| panic!("{p:?}"));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let request = RunRequest {
        task_id: uuid::Uuid::now_v7().to_string(),
        template: Arc::new(template),
        files: TemplateFiles::Dir(file.parent().unwrap().to_path_buf()),
        values: json!({"name": "loyalty-api", "owner": "group:default/team-payments", "system": "system:default/payments",
            "publishTo": "github", "repoUrl": "github.forge.test?owner=acme&repo=loyalty-api"}),
        secrets: BTreeMap::from([("GITHUB_TOKEN".to_string(), TOKEN.to_string())]),
        user_ref: None,
        user_entity: None,
        dry_run: false,
        workspace_dir: dir.path().join("work"),
        limits: Limits::default(),
        timeout: Duration::from_secs(120),
        cancel: None,
    };
    let report = plinth_scaffold::run(request, &host, Some(sender)).await;
    let mut leaked = serde_json::to_string(&report).unwrap();
    while let Ok(event) = receiver.try_recv() {
        leaked.push_str(&serde_json::to_string(&event).unwrap());
    }
    assert!(report.completed, "{:?}\n{leaked}", report.error);
    assert!(!leaked.contains(TOKEN), "the token left the run");
    let statuses: Vec<(&str, String)> =
        report.steps.iter().map(|s| (s.id.as_str(), format!("{:?}", s.status).to_lowercase())).collect();
    assert!(
        statuses.contains(&("publish", "skipped".into())) && statuses.contains(&("publish-github", "completed".into())),
        "{statuses:?}"
    );
    assert_eq!(
        report.steps.iter().find(|s| s.id == "register").unwrap().output["entityRef"],
        "component:default/loyalty-api"
    );
    assert_eq!(report.output["links"][0]["url"], json!(format!("{}/gh/acme/loyalty-api.git", forge.base)));
    // The repository holds the service with its docs and runbook link, and main is protected.
    let bare = forge.bare("gh", "acme/loyalty-api");
    let catalog = show(&bare, "main:catalog-info.yaml");
    assert!(catalog.contains("backstage.io/techdocs-ref: dir:.") && catalog.contains("title: Runbook"), "{catalog}");
    assert!(catalog.contains("https://github.forge.test/acme/loyalty-api/blob/main/docs/runbook.md"), "{catalog}");
    assert!(show(&bare, "main:mkdocs.yml").contains("site_name: loyalty-api"));
    assert!(show(&bare, "main:docs/runbook.md").starts_with("# Runbook: loyalty-api"));
    let recorded = forge.recorded.lock().unwrap();
    assert_eq!(recorded.protections.len(), 1);
    assert_eq!((recorded.protections[0].0.as_str(), recorded.protections[0].1.as_str()), ("acme/loyalty-api", "main"));
}
