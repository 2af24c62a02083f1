//! The binary carries its content: a copy of `plinth` in an empty
//! directory, with no `PLINTH_*` variable and a fresh home, serves the demo
//! (catalogue, templates, policies with the demo's data, portal) and checks
//! manifests offline against the shipped library. The shipped content is
//! written under the data directory and nowhere near the source tree.

use crate::common::{free_port, http, wait_for, BIN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A copy of the binary under test in `dir`, run from `dir` with a home of
/// its own and none of the variables that point at content on disk.
fn copied(dir: &Path) -> (PathBuf, impl Fn(&[&str]) -> Command) {
    let bin = dir.join("bin").join("plinth");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(BIN, &bin).unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let run_bin = bin.clone();
    let command = move |args: &[&str]| {
        let mut command = Command::new(&run_bin);
        command.args(args).current_dir(&work).env_clear().env("HOME", &home).env("PATH", "/usr/bin:/bin");
        command.env("PLINTH_LOG", "info,tantivy=warn,sqlx=warn").stdin(Stdio::null());
        command
    };
    (bin, command)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_binary_serves_the_demo_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (_, command) = copied(dir.path());
    let port = free_port();
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = command(&["serve", "--demo", "--demo-traffic=false", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let _child = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = http();
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let response = client.get(url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            response.json::<Value>().await.ok()
        }
    };
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // The whole demo, and the shipped templates, as catalogue entities.
    let mut counts = Value::Null;
    wait_for(Duration::from_secs(90), "the demo catalogue", async || {
        counts = get("/api/catalog/entity-facets?facet=kind").await.unwrap_or(Value::Null);
        let kinds = counts["facets"]["kind"].as_array().cloned().unwrap_or_default();
        let count = |kind: &str| {
            kinds.iter().find(|f| f["value"].as_str() == Some(kind)).and_then(|f| f["count"].as_u64()).unwrap_or(0)
        };
        count("Component") > 20 && count("Template") >= 8 && count("Group") > 5
    })
    .await;

    // Where the demo came from: written out under the data directory.
    let locations = get("/api/catalog/locations").await.expect("locations");
    let data_dir = dir.path().join("work").join("plinth-data").canonicalize().unwrap();
    let targets: Vec<String> = locations
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["data"]["target"].as_str().or(l["target"].as_str()).map(str::to_string))
        .collect();
    assert!(
        targets.iter().any(|t| t.contains("plinth-data/shipped/") && t.ends_with("demo/catalog-info.yaml")),
        "the demo location should be the copy under {}: {targets:?}\n{}",
        data_dir.display(),
        log_text()
    );
    let source_tree = crate::common::repo().to_string_lossy().to_string();
    assert!(
        targets.iter().all(|t| !t.starts_with(&source_tree)),
        "a location points into the source tree: {targets:?}"
    );

    // The policy library and the demo's policy data loaded without problems.
    let policies = get("/api/policy/policies").await.expect("policies");
    let problems = policies["problems"].as_array().cloned().unwrap_or_default();
    assert!(problems.is_empty(), "policy load problems: {problems:?}");
    assert!(policies["policies"].as_array().map(Vec::len).unwrap_or(0) >= 9, "{policies}");
    let sources = policies["sources"].as_array().cloned().unwrap_or_default();
    assert!(sources.iter().any(|s| s.as_str().unwrap_or("").ends_with("demo/policy-data")), "{sources:?}");
    assert!(
        sources.iter().all(|s| s.as_str().unwrap_or("").starts_with(&data_dir.to_string_lossy().to_string())),
        "{sources:?}"
    );

    // The demo company's registries apply to the demo: an image from a
    // public registry is denied at admission.
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": "CREATE", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "object": deployment("docker.io/library/nginx:1.27.0")}
    });
    let answer: Value =
        client.post(format!("{base}/api/policy/admission")).json(&review).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(answer.to_string().contains("registry"), "{answer}");

    // The golden paths and the portal.
    let templates = get("/api/scaffolder/v2/templates").await.expect("templates");
    assert!(templates.to_string().contains("service"), "{templates}");
    let home = client.get(format!("{base}/")).send().await.unwrap();
    assert!(home.status().is_success());
    let css = client.get(format!("{base}/assets/portal.css")).send().await.unwrap();
    assert!(css.status().is_success() && css.text().await.unwrap().len() > 1000);
    let page = client.get(format!("{base}/catalog/default/component/checkout-service")).send().await.unwrap();
    assert!(page.status().is_success(), "checkout-service page: {}", page.status());
}

#[test]
fn a_copied_binary_checks_manifests_offline_against_the_shipped_library() {
    let dir = tempfile::tempdir().unwrap();
    let (_, command) = copied(dir.path());
    let work = dir.path().join("work");
    let k8s = work.join("k8s");
    std::fs::create_dir_all(&k8s).unwrap();
    // Neutral defaults: an image from any registry passes once pinned…
    std::fs::write(k8s.join("ok.yaml"), serde_yaml_like(&deployment("docker.io/library/nginx:1.27.0"))).unwrap();
    let ok = command(&["check", "k8s/"]).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
    assert!(ok.status.success(), "a compliant manifest should pass with the shipped library:\n{out}");
    assert!(!out.contains("does not exist"), "{out}");

    // …and a privileged container is denied by the shipped library.
    let mut bad = deployment("docker.io/library/nginx:1.27.0");
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = Value::Bool(true);
    std::fs::write(k8s.join("bad.yaml"), serde_yaml_like(&bad)).unwrap();
    let denied = command(&["check", "k8s/"]).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&denied.stdout), String::from_utf8_lossy(&denied.stderr));
    assert_eq!(denied.status.code(), Some(1), "{out}");
    assert!(out.contains("privileged"), "{out}");
    assert!(out.contains("bad.yaml"), "{out}");

    // The shipped content went to the cache under this home, not next to
    // the source tree.
    let cache = dir.path().join("home").join(".cache").join("plinth");
    let written: Vec<_> = std::fs::read_dir(&cache).unwrap().filter_map(Result::ok).collect();
    assert!(written.iter().any(|e| e.path().join("policies").join("data.yaml").is_file()), "{cache:?}");
}

/// Plinth's own deployment manifests pass Plinth's own policies: every
/// workload in `deploy/` (the PostgreSQL component included) is checked
/// and allowed, with no warning.
#[test]
fn the_kubernetes_manifests_in_deploy_pass_the_shipped_policies() {
    let deploy = crate::common::repo().join("deploy");
    let output = crate::common::plinth_command().args(["check", "--output", "json"]).arg(&deploy).output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "plinth check deploy/ failed:\n{out}{}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<Value> = serde_json::from_str(&out).expect("check -o json");
    let names: Vec<&str> = results.iter().filter_map(|r| r["name"].as_str()).collect();
    for workload in ["Deployment/plinth", "StatefulSet/postgres", "Service/plinth", "NetworkPolicy/plinth"] {
        assert!(names.contains(&workload), "{workload} not checked: {names:?}");
    }
    for result in &results {
        assert_eq!(result["decision"]["result"], "allow", "{result}");
        assert_eq!(result["decision"]["violations"], Value::Array(Vec::new()), "{result}");
    }
}

fn deployment(image: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web",
            "labels": {"plinth.io/owner": "team-web", "plinth.io/cost-centre": "cc-1"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web", "plinth.io/owner": "team-web", "plinth.io/cost-centre": "cc-1"}},
            "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10001},
                "containers": [{"name": "web", "image": image,
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true},
                    "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}}]}}}
    })
}

/// JSON is YAML: the manifest as one JSON document.
fn serde_yaml_like(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}
