//! Regression tests for what an anonymous caller could do to a running
//! server (issue 7): crash it with one number, run commands through a git
//! branch, URL or path, read its files through placeholders, Location
//! targets and links, exhaust it with slow sockets, and make it post to
//! metadata addresses. Each test is named after the finding it pins; those
//! that touch the store run on SQLite and PostgreSQL.

use plinth_testkit::{git, scenarios, wait_until, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

scenarios!(
    git_branch_named_upload_pack_runs_nothing,
    git_urls_and_paths_that_look_like_options_are_refused,
    placeholders_cannot_read_files_outside_their_location,
    location_targets_cannot_leave_their_location,
    git_source_links_and_paths_cannot_leave_the_checkout,
    publish_git_refuses_options_in_url_branch_and_path,
    publishing_the_same_content_again_succeeds,
);

/// A directory whose path has no component starting with `.` (git refs
/// may not contain one), under the system temp dir.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("plinth-sec-").tempdir().expect("temp dir")
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn component(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n{extra}spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

/// A git repository with one commit holding `files`.
fn repository(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "-b", "main"]);
    for (path, text) in files {
        write(&dir.join(path), text);
    }
    git(dir, &["add", "--all"]);
    git(dir, &["commit", "--quiet", "-m", "catalogue"]);
    dir.to_path_buf()
}

/// Every string in `value`, joined, to search a response for leaks.
fn text_of(value: &Value) -> String {
    value.to_string()
}

// ---------------------------------------------------------------------------
// Finding 1: one GET kills the process
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_offset_of_a_quadrillion_is_a_400_and_the_server_lives() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let file = write(&server.dir().join("cat/catalog-info.yaml"), &component("checkout-api", ""));
    assert_eq!(server.register(&file).await.0, StatusCode::CREATED);

    let (status, body) = server.get("/api/catalog/search?q=checkout&offset=1000000000000000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`offset`") && message.contains("0 to 10000"), "{message}");
    assert_eq!(body["error"]["name"], "InputError");

    let response = server.http.get(server.url("/search?q=checkout&page=20000000000000")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("`page`") && page.contains("from 1 to 200"), "{page}");

    for path in [
        "/api/catalog/entities/by-query?offset=9223372036854775808",
        "/api/catalog/entities/by-query?limit=18446744073709551615",
        "/api/catalog/entities?offset=18446744073709551615&limit=18446744073709551615",
        "/api/catalog/search?q=checkout&limit=-1",
        "/api/catalog/impact/component/default/checkout-api?limit=9223372036854775808",
        "/api/catalog/impact/component/default/checkout-api?maxDepth=4294967296",
        "/api/catalog/neighbourhood/component/default/checkout-api?depth=9999999999",
        "/catalog?page=18446744073709551615",
        "/catalog/default/component/checkout-api/graph?depth=4294967297",
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // Within the bounds, the same endpoints answer.
    let hits = server.ok("/api/catalog/search?q=checkout&offset=0&limit=500").await;
    assert_eq!(hits["items"][0]["entityRef"], "component:default/checkout-api");
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Finding 2: command execution through a git branch name (and URL, path)
// ---------------------------------------------------------------------------

async fn git_branch_named_upload_pack_runs_nothing(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let scratch = scratch();
    let marker = scratch.path().join("pwned");
    let repo = repository(&scratch.path().join("repo"), &[("catalog-info.yaml", &component("svc", ""))]);
    let evil = format!("--upload-pack=touch${{IFS}}{}", marker.display());
    // The ref exists in the repository, as an attacker would push it.
    git(&repo, &["update-ref", &format!("refs/heads/{evil}"), "HEAD"]);

    // Registering it is refused, naming the rule.
    let (status, body) =
        server.post("/api/catalog/locations", &json!({"type": "url", "target": repo, "branch": evil})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(text_of(&body).contains("starts with `-`"), "{body}");
    let (status, body) = server
        .post("/api/catalog/locations?dryRun=true", &json!({"type": "url", "target": repo, "branch": evil}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A location stored before this check (or any caller of the git
    // source) is refused at clone and at fetch, the path the timer and
    // webhooks take.
    let checkout = server.data_dir().join("git-direct");
    let legit = plinth_catalog::git::GitSource::from_target(&repo.to_string_lossy(), Some("main"));
    plinth_catalog::git::sync(&legit, &checkout).await.expect("a legitimate clone works");
    let source = plinth_catalog::git::GitSource::from_target(&repo.to_string_lossy(), Some(&evil));
    let error = plinth_catalog::git::sync(&source, &checkout).await.unwrap_err();
    assert!(error.to_string().contains("starts with `-`"), "{error}");
    let error = plinth_catalog::git::sync(&source, &server.data_dir().join("git-fresh")).await.unwrap_err();
    assert!(error.to_string().contains("starts with `-`"), "{error}");

    // The legitimate branch still registers and refreshes by webhook.
    let (status, body) =
        server.post("/api/catalog/locations", &json!({"type": "url", "target": repo, "branch": "main"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = server.post("/api/catalog/webhook", &json!({"repository": repo, "branch": evil})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!marker.exists(), "git ran the injected command");
    server.stop().await;
}

async fn git_urls_and_paths_that_look_like_options_are_refused(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let scratch = scratch();
    let marker = scratch.path().join("pwned");
    let touch = format!("touch {}", marker.display());
    for (target, rule) in [
        (format!("--upload-pack={touch}"), "starts with `-`"),
        (format!("ext::sh -c {}", touch.replace(' ', "% ")), "remote helpers"),
        ("ssh://-oProxyCommand=x/repo.git".to_string(), "starts with `-`"),
        ("git@-oProxyCommand=x:org/repo.git".to_string(), "starts with `-`"),
        ("http://example.com/org/repo.git".to_string(), "plain `http`"),
        ("https://example.com/org/repo.git#../../../../etc".to_string(), "`..`"),
    ] {
        let (status, body) = server.post("/api/catalog/locations", &json!({"type": "git", "target": target})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}: {body}");
        assert!(text_of(&body).contains(rule), "{target}: expected `{rule}` in {body}");
    }
    assert!(!marker.exists(), "git ran the injected command");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Finding 3: reading any file on the server
// ---------------------------------------------------------------------------

async fn placeholders_cannot_read_files_outside_their_location(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let scratch = scratch();
    let secret = write(&scratch.path().join("secret.txt"), "TOP-SECRET-7d1f");
    let dir = scratch.path().join("location");
    let link = dir.join("link.txt");
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    write(&dir.join("docs/api.txt"), "the api description");
    let file = write(
        &dir.join("catalog-info.yaml"),
        &[
            component("reads-passwd", "  description: {$text: /etc/passwd}\n"),
            component("reads-hostname", "  description: {$text: ../../../../../../../../etc/hostname}\n"),
            component("reads-environ", "  description: {$text: /proc/self/environ}\n"),
            component("reads-link", "  description: {$text: ./link.txt}\n"),
            component("reads-yaml", "  annotations: {$yaml: ../secret.txt}\n"),
            component("reads-inside", "  description: {$text: ./docs/api.txt}\n"),
        ]
        .join("---\n"),
    );
    let (status, preview) =
        server.post("/api/catalog/locations?dryRun=true", &json!({"type": "file", "target": file})).await;
    assert_eq!(status, StatusCode::CREATED, "{preview}");
    let everything = text_of(&preview);
    for leaked in ["root:x:0", "TOP-SECRET-7d1f", "PATH=", "PLINTH_"] {
        assert!(!everything.contains(leaked), "`{leaked}` leaked: {everything}");
    }
    let errors = preview["errors"].as_array().unwrap();
    let error_for = |name: &str| -> String {
        errors
            .iter()
            .find(|e| e["entityRef"].as_str().is_some_and(|r| r.ends_with(name)))
            .map(|e| format!("{} {}", e["field"], e["message"]))
            .unwrap_or_else(|| panic!("no error for {name}: {preview}"))
    };
    assert!(error_for("reads-passwd").contains("absolute path outside"), "{}", error_for("reads-passwd"));
    assert!(error_for("reads-passwd").contains("metadata.description"));
    assert!(error_for("reads-hostname").contains("uses `..` to leave"));
    assert!(error_for("reads-environ").contains("absolute path outside"));
    #[cfg(unix)]
    assert!(error_for("reads-link").contains("symbolic link"), "{}", error_for("reads-link"));
    assert!(error_for("reads-yaml").contains("uses `..` to leave"));
    let inside = preview["entities"].as_array().unwrap().iter().find(|e| e["metadata"]["name"] == "reads-inside");
    assert_eq!(inside.unwrap()["metadata"]["description"], "the api description");

    // Registered for real: the refused ones are reported, the good one ingests.
    assert_eq!(server.register(&file).await.0, StatusCode::CREATED);
    let errors = server.ok("/api/catalog/errors").await;
    assert!(text_of(&errors).contains("reads-environ"), "{errors}");
    assert!(!text_of(&errors).contains("TOP-SECRET-7d1f"));
    server.ok("/api/catalog/entities/by-name/component/default/reads-inside").await;
    server.stop().await;
}

async fn location_targets_cannot_leave_their_location(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let scratch = scratch();
    let outside = write(&scratch.path().join("outside/catalog-info.yaml"), &component("outsider", ""));
    let dir = scratch.path().join("location");
    write(&dir.join("team/catalog-info.yaml"), &component("insider", ""));
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, dir.join("linked.yaml")).unwrap();
    let root = write(
        &dir.join("catalog-info.yaml"),
        &format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  targets:\n    - ./team/catalog-info.yaml\n    - ../outside/catalog-info.yaml\n    - {}\n    - ./linked.yaml\n",
            outside.display()
        ),
    );
    let (status, body) = server.register(&root).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.ok("/api/catalog/entities/by-name/component/default/insider").await;
    assert_eq!(server.get("/api/catalog/entities/by-name/component/default/outsider").await.0, StatusCode::NOT_FOUND);
    let errors = text_of(&server.ok("/api/catalog/errors").await);
    assert!(errors.contains("uses `..` to leave"), "{errors}");
    assert!(errors.contains("absolute path outside"), "{errors}");
    #[cfg(unix)]
    assert!(errors.contains("symbolic link"), "{errors}");
    server.stop().await;
}

async fn git_source_links_and_paths_cannot_leave_the_checkout(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let scratch = scratch();
    let repo = scratch.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    // A repository that carries a link to a file of the server.
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", repo.join("passwd")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", repo.join("etc")).unwrap();
    let repo = repository(
        &repo,
        &[(
            "catalog-info.yaml",
            &[
                component("via-link", "  description: {$text: ./passwd}\n"),
                component("via-dir-link", "  description: {$text: ./etc/hostname}\n"),
                component("plain", ""),
            ]
            .join("---\n"),
        )],
    );
    let (status, body) = server.post("/api/catalog/locations", &json!({"type": "url", "target": repo})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(!text_of(&body).contains("root:x:0"), "{body}");
    let errors = text_of(&server.ok("/api/catalog/errors").await);
    #[cfg(unix)]
    assert!(errors.contains("symbolic link"), "{errors}");
    server.ok("/api/catalog/entities/by-name/component/default/plain").await;
    // `#path` through a link out of the checkout reads nothing.
    let (status, body) = server
        .post("/api/catalog/locations", &json!({"type": "url", "target": format!("{}#etc", repo.display())}))
        .await;
    assert!(status.is_success(), "{body}");
    assert_eq!(body["refresh"]["entitiesFound"], 0, "{body}");
    assert!(text_of(&server.ok("/api/catalog/errors").await).contains("leads through a symbolic link"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_git_source_path_cannot_leave_its_checkout() {
    let scratch = scratch();
    let repo = repository(
        &scratch.path().join("policies"),
        &[("deny.rego", "package plinth.escape\nimport rego.v1\ndeny contains \"x\" if false\n")],
    );
    write(
        &scratch.path().join("outside/evil.rego"),
        "package evil\nimport rego.v1\ndeny contains \"loaded from outside\" if true\n",
    );
    let source = format!("file://{}#../outside", repo.display());
    let server =
        TestServer::start_with(Backend::Sqlite, Options { policies: Some(vec![source]), ..Options::default() })
            .await
            .unwrap();
    let policy = server.policy();
    let compiled = policy.compiled();
    assert!(
        compiled.engine.packages().iter().all(|p| !p.name.contains("evil")),
        "a package from outside the checkout loaded"
    );
    assert!(!compiled.engine.problems().is_empty(), "the refused source must fail closed with a problem");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Golden paths: publish:git with hostile input, and publishing twice
// ---------------------------------------------------------------------------

fn publish_template(dir: &Path) -> PathBuf {
    write(&dir.join("publish/skeleton/catalog-info.yaml"), &component("${{ values.name }}", ""));
    write(
        &dir.join("publish/template.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: publish\nspec:\n  owner: group:default/team-a\n  type: service\n  parameters:\n    properties:\n      name: {type: string}\n      repoUrl: {type: string}\n      branch: {type: string}\n      targetPath: {type: string}\n  steps:\n    - {id: fetch, action: fetch:template, input: {url: ./skeleton, values: {name: '${{ parameters.name }}'}}}\n    - id: publish\n      action: publish:git\n      input:\n        repoUrl: ${{ parameters.repoUrl }}\n        branch: ${{ parameters.branch or none }}\n        targetPath: ${{ parameters.targetPath or '.' }}\n    - {id: register, action: catalog:register, input: {repoContentsUrl: '${{ steps.publish.output.repoContentsUrl }}', catalogInfoPath: /catalog-info.yaml}}\n",
    );
    write(
        &dir.join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: templates\nspec:\n  targets:\n    - ./publish/template.yaml\n",
    )
}

async fn run_template(server: &TestServer, values: Value) -> Value {
    let (status, created) = server
        .post("/api/scaffolder/v2/tasks", &json!({"templateRef": "template:default/publish", "values": values}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let task = server.ok(&format!("/api/scaffolder/v2/tasks/{id}")).await;
        if matches!(task["status"].as_str(), Some("completed" | "failed" | "cancelled")) {
            return task;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the run did not finish within 60 s: {task}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scaffolder_server(backend: Backend, templates: &Path) -> Option<TestServer> {
    let server = TestServer::start_with(backend, Options { scaffolder: true, ..Options::default() }).await?;
    let location = publish_template(templates);
    assert_eq!(server.register(&location).await.0, StatusCode::CREATED);
    Some(server)
}

async fn publish_git_refuses_options_in_url_branch_and_path(backend: Backend) {
    let scratch = scratch();
    let Some(server) = scaffolder_server(backend, &scratch.path().join("templates")).await else { return };
    let marker = scratch.path().join("pwned");
    let touch = format!("touch {}", marker.display());
    let cases = [
        (json!({"name": "a", "repoUrl": format!("--upload-pack={touch}")}), "starts with `-`"),
        (json!({"name": "a", "repoUrl": "ext::sh -c touch% /tmp/x"}), "remote helpers"),
        (json!({"name": "a", "repoUrl": "ssh://-oProxyCommand=x/r.git"}), "starts with `-`"),
        (json!({"name": "a", "repoUrl": "../../outside"}), "`..`"),
        (json!({"name": "a", "repoUrl": "/etc/plinth-outside"}), "outside the repository root"),
        (json!({"name": "a", "repoUrl": "shop", "targetPath": "../../x"}), "`..`"),
    ];
    for (values, rule) in cases {
        let task = run_template(&server, values.clone()).await;
        assert_eq!(task["status"], "failed", "{values}: {task}");
        assert!(text_of(&task["error"]).contains(rule), "{values}: expected `{rule}` in {}", task["error"]);
    }
    // An existing repository and a branch that looks like an option.
    let first = run_template(&server, json!({"name": "shop", "repoUrl": "shop"})).await;
    assert_eq!(first["status"], "completed", "{first}");
    let task =
        run_template(&server, json!({"name": "shop2", "repoUrl": "shop", "branch": format!("--upload-pack={touch}")}))
            .await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(text_of(&task["error"]).contains("starts with `-`"), "{task}");
    assert!(!marker.exists(), "git ran the injected command");
    server.stop().await;
}

async fn publishing_the_same_content_again_succeeds(backend: Backend) {
    let scratch = scratch();
    let Some(server) = scaffolder_server(backend, &scratch.path().join("templates")).await else { return };
    let values = json!({"name": "orders", "repoUrl": "orders"});
    let first = run_template(&server, values.clone()).await;
    assert_eq!(first["status"], "completed", "{first}");
    // Started again with the same values (as after a crash during
    // catalog:register): the repository already holds these files.
    let again = run_template(&server, values).await;
    assert_eq!(again["status"], "completed", "{again}");
    let publish =
        &again["output"]["steps"].as_array().unwrap().iter().find(|s| s["id"] == "publish").unwrap()["output"];
    assert_eq!(publish["created"], false, "{again}");
    assert_eq!(publish["branch"], "main", "{again}");
    server.ok("/api/catalog/entities/by-name/component/default/orders").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Slow and idle connections
// ---------------------------------------------------------------------------

/// Opens `n` sockets that each send half a request header and stop.
async fn slow_sockets(address: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let mut socket = tokio::net::TcpStream::connect(address).await.expect("connect");
        socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("write");
        sockets.push(socket);
    }
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_100ms_while_1000_slow_sockets_are_open() {
    // Both ends of 1,000 sockets live in this process.
    rlimit::increase_nofile_limit(8_192).expect("raise the open-file limit");
    let limits = plinth_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(120),
        ..plinth_server::ConnectionLimits::default()
    };
    let server = TestServer::start_with(Backend::Sqlite, Options { connections: Some(limits), ..Options::default() })
        .await
        .unwrap();
    let sockets = slow_sockets(server.address(), 1_000).await;
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let response = client.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(median < Duration::from_millis(100), "median {median:?} with 1,000 slow sockets open: {times:?}");
    assert!(times[times.len() - 1] < Duration::from_secs(1), "slowest {:?}: {times:?}", times[times.len() - 1]);
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let open: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plinth_http_connections_open "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(open >= 1_000.0, "the slow sockets are counted as open: {open}");
    drop(sockets);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_sockets_are_closed_and_the_cap_answers_503() {
    let limits = plinth_server::ConnectionLimits {
        max_connections: 50,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
    };
    let server = TestServer::start_with(Backend::Sqlite, Options { connections: Some(limits), ..Options::default() })
        .await
        .unwrap();
    // 60 half-sent requests against a cap of 50: whichever 10 the server
    // accepts last are answered 503 with Retry-After at once; the 50 it
    // serves are closed when the header-read timeout passes.
    let mut sockets = slow_sockets(server.address(), 60).await;
    let mut rejected = 0;
    for socket in &mut sockets {
        let answer = tokio::time::timeout(Duration::from_secs(15), read_all(socket))
            .await
            .expect("a slow socket was not closed after the header-read timeout");
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("Retry-After: 1") && answer.contains("ServiceUnavailableError"), "{answer}");
            rejected += 1;
        }
    }
    assert_eq!(rejected, 10, "connections beyond the cap of 50 are answered 503");
    // With the slots free again, requests are served.
    wait_until(Duration::from_secs(10), "the server to accept again", || async {
        server.http.get(server.url("/healthz")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    // An idle keep-alive connection is closed, too.
    let mut idle = tokio::net::TcpStream::connect(server.address()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), read_all(&mut idle)).await;
    assert!(closed.expect("the idle connection was closed").starts_with("HTTP/1.1 200"));
    // A fresh connection: the shared client's pooled one may just have been
    // closed by the same idle timeout, and reusing it races the close.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let metrics = fresh.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("plinth_http_connections_rejected_total 10"), "{metrics}");
    server.stop().await;
}

async fn read_all(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let _ = socket.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Outbound requests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_webhooks_to_metadata_and_private_addresses_are_refused() {
    let options = Options {
        signals: true,
        // As on a server reachable beyond loopback: not local mode.
        signals_config: Some(Box::new(|config| {
            config.outbound = std::sync::Arc::new(plinth_confine::OutboundPolicy::default_for(false));
        })),
        ..Options::default()
    };
    let server = TestServer::start_with(Backend::Sqlite, options).await.unwrap();
    for (url, rule) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://10.0.0.1/hook", "private"),
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("file:///etc/passwd", "http(s) URL"),
    ] {
        let rule_body = json!({"name": "r", "service": "checkout", "signal": "error_rate",
                               "threshold": 0.5, "window": "5m", "webhook": url});
        let (status, body) = server.post("/api/signals/alerts/rules", &rule_body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(text_of(&body).contains(rule), "{url}: expected `{rule}` in {body}");
    }
    server.stop().await;
}
