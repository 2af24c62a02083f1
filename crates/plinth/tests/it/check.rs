//! `plinth check`, end to end: the real binary on temporary directories
//! with conftest-style policies written here, multi-document manifests,
//! catalogue descriptors, a Terraform plan, golden-path parameters, every
//! output format (SARIF validated against the official schema), `--diff` in
//! a real git repository, and broken policies failing closed.

use super::common::{nth_line_of, plinth_command, repo, write, Run, Serve};
use plinth_testkit::git;
use serde_json::{json, Value};
use std::path::Path;

const K8S_POLICY: &str = r#"# METADATA
# title: Kubernetes workload rules
# custom:
#   points: [pr, admission]
package test.k8s

import rego.v1

# METADATA
# title: Containers must not be privileged
# description: A privileged container can take over its node.
# custom:
#   id: PL-TEST-001
#   severity: critical
#   controls: [CIS-5.2.1]
deny_privileged contains msg if {
	input.kind == "Deployment"
	some i
	c := input.spec.template.spec.containers[i]
	c.securityContext.privileged == true
	msg := {
		"msg": sprintf("container %s is privileged", [c.name]),
		"details": {"field": sprintf("spec.template.spec.containers[%d].securityContext.privileged", [i])},
	}
}

# METADATA
# title: Images should be pinned
# custom:
#   id: PL-TEST-002
#   severity: medium
warn_latest contains msg if {
	some c in input.spec.template.spec.containers
	endswith(c.image, ":latest")
	msg := sprintf("container %s uses a :latest image", [c.name])
}

exception contains rules if {
	input.metadata.annotations["plinth.dev/exempt"] == "privileged"
	rules := ["privileged"]
}
"#;

const TERRAFORM_POLICY: &str = r#"# METADATA
# title: Terraform plan rules
# custom:
#   points: [pr]
package test.terraform

import rego.v1

# METADATA
# title: Buckets must not be public
# custom:
#   id: PL-TF-001
#   severity: high
deny_public_bucket contains msg if {
	some rc in input.resource_changes
	rc.type == "aws_s3_bucket_acl"
	rc.change.after.acl == "public-read"
	msg := sprintf("%s makes a bucket public", [rc.address])
}
"#;

const CATALOG_POLICY: &str = r#"# METADATA
# title: Catalogue rules
# custom:
#   points: [pr, catalog]
package test.catalog

import rego.v1

# METADATA
# title: Components need an owner
# custom:
#   id: PL-CAT-001
#   severity: medium
deny_owner contains msg if {
	input.apiVersion == "backstage.io/v1alpha1"
	input.kind == "Component"
	not input.spec.owner
	msg := {"msg": sprintf("component %s has no owner", [input.metadata.name]), "details": {"path": ["spec", "lifecycle"]}}
}

# METADATA
# title: Golden paths cap GPUs
# custom:
#   id: PL-GP-001
#   severity: high
deny_gpus contains msg if {
	input.template == "gpu-training"
	input.parameters.gpus > data.limits.max_gpus
	msg := sprintf("%d GPUs requested; at most %d", [input.parameters.gpus, data.limits.max_gpus])
}
"#;

/// Applies only to the `llm` workload profile, and reports the context the
/// check attached to the input.
const LLM_POLICY: &str = r#"# METADATA
# title: LLM serving rules
# custom:
#   points: [pr]
#   profile: llm
package test.llm

import rego.v1

# METADATA
# title: Model endpoints are reviewed
# custom:
#   id: PL-LLM-001
#   severity: low
warn_context contains msg if {
	input.kind == "Deployment"
	msg := sprintf("point=%s profile=%s catalog=%v", [input.plinth.point, input.plinth.profile, input.plinth.catalog])
}
"#;

const MANIFESTS: &str = r#"# a leading comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: sidecar
          image: envoy:1.31
        - name: app
          image: nginx:latest
          securityContext:
            privileged: true
---
apiVersion: v1
kind: ConfigMap
metadata: {name: [broken
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: exempt
  annotations:
    plinth.dev/exempt: privileged
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx:1.27
          securityContext:
            privileged: true
"#;

const CLEAN: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: clean
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx:1.27
"#;

const PRIVILEGED: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx:1.27
          securityContext:
            privileged: true
"#;

const CATALOG_INFO: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
spec:
  type: service
  lifecycle: production
"#;

fn terraform_plan() -> Value {
    json!({
        "format_version": "1.2",
        "terraform_version": "1.9.5",
        "resource_changes": [
            {"address": "aws_s3_bucket.logs", "type": "aws_s3_bucket", "change": {"actions": ["create"], "after": {"bucket": "logs"}}},
            {"address": "aws_s3_bucket_acl.logs", "type": "aws_s3_bucket_acl", "change": {"actions": ["create"], "after": {"acl": "public-read"}}}
        ]
    })
}

fn policies(root: &Path) {
    write(&root.join("policies/k8s.rego"), K8S_POLICY);
    write(&root.join("policies/terraform.rego"), TERRAFORM_POLICY);
    write(&root.join("policies/catalog.rego"), CATALOG_POLICY);
    write(&root.join("policies/llm.rego"), LLM_POLICY);
    write(&root.join("policies/data.json"), r#"{"limits": {"max_gpus": 8}}"#);
}

/// `plinth ARGS…` run in `dir`.
fn plinth(dir: &Path, args: &[&str]) -> Run {
    Run::from(plinth_command().current_dir(dir).args(args).output().expect("run plinth"))
}

fn sarif_schema_errors(sarif: &Value) -> Vec<String> {
    let path = repo().join("crates/plinth-policy/tests/data/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    validator.iter_errors(sarif).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

/// A workspace with every kind of input.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    policies(root);
    write(&root.join("repo/k8s/deploy.yaml"), MANIFESTS);
    write(&root.join("repo/k8s/clean.yml"), CLEAN);
    write(&root.join("repo/catalog-info.yaml"), CATALOG_INFO);
    write(&root.join("repo/infra/plan.json"), &serde_json::to_string_pretty(&terraform_plan()).unwrap());
    write(&root.join("repo/golden/params.yaml"), "template: gpu-training\nparameters:\n  gpus: 16\n  owner: team-ml\n");
    // Never searched: dependency, build and VCS directories; nor other extensions.
    write(&root.join("repo/node_modules/pkg/bad.yaml"), PRIVILEGED);
    write(&root.join("repo/target/debug/bad.yaml"), PRIVILEGED);
    write(&root.join("repo/.git/bad.yaml"), PRIVILEGED);
    write(&root.join("repo/k8s/notes.txt"), "privileged: true");
    dir
}

#[test]
fn text_output_reports_every_document_with_file_and_line_and_exits_1() {
    let dir = workspace();
    let run = plinth(dir.path(), &["check", "--policy", "policies", "repo"]);
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let lines: Vec<&str> = out.lines().collect();
    // The violation points at the field named in its details: the second
    // container's `privileged: true`, not the start of the document.
    let privileged = nth_line_of(MANIFESTS, "privileged: true", 0);
    assert!(
        lines.contains(
            &format!("FAIL - repo/k8s/deploy.yaml:{privileged} - PL-TEST-001 - container app is privileged").as_str()
        ),
        "{out}"
    );
    // Warnings without a field point at the document's first line (after the comment).
    assert!(
        lines.contains(&"WARN - repo/k8s/deploy.yaml:2 - PL-TEST-002 - container app uses a :latest image"),
        "{out}"
    );
    // The broken document is reported at its line; the documents after it are still checked.
    // (The parser notices the unclosed `[` where the document ends, a line on.)
    let broken = nth_line_of(MANIFESTS, "[broken", 0) + 1;
    assert!(
        lines.iter().any(|l| l
            .starts_with(&format!("FAIL - repo/k8s/deploy.yaml:{broken} - plinth.input-error - YAML syntax error"))),
        "{out}"
    );
    // The third document is checked: its exempted container points at its own field.
    let exempt = nth_line_of(MANIFESTS, "privileged: true", 1);
    assert!(
        lines.iter().any(|l| l
            .starts_with(&format!("EXCP - repo/k8s/deploy.yaml:{exempt} - PL-TEST-001 - container app is privileged"))),
        "{out}"
    );
    // Terraform plan (JSON), catalogue descriptor (path details → line of
    // `spec.lifecycle`), golden-path parameters with a limit from data.json.
    assert!(
        lines.contains(&"FAIL - repo/infra/plan.json:1 - PL-TF-001 - aws_s3_bucket_acl.logs makes a bucket public"),
        "{out}"
    );
    let lifecycle = nth_line_of(CATALOG_INFO, "lifecycle:", 0);
    assert!(
        lines.contains(
            &format!("FAIL - repo/catalog-info.yaml:{lifecycle} - PL-CAT-001 - component payments has no owner")
                .as_str()
        ),
        "{out}"
    );
    assert!(lines.contains(&"FAIL - repo/golden/params.yaml:1 - PL-GP-001 - 16 GPUs requested; at most 8"), "{out}");
    // Skipped directories and other extensions are never read.
    for skipped in ["node_modules", "target/", ".git/", "notes.txt"] {
        assert!(!out.contains(skipped), "{skipped} was checked:\n{out}");
    }
    // No --profile: every profile's policies apply, with the context attached.
    assert!(out.contains("WARN - repo/k8s/clean.yml:1 - PL-LLM-001 - point=pr profile=null catalog=false"), "{out}");
    // Documents evaluated: deploy.yaml #1 and #3, clean.yml, catalog-info, plan, params = 6,
    // each against 6 rules, plus 1 unreadable document.
    // Failures: privileged, plan, owner, gpus + the unreadable one = 5.
    // Warnings: latest (deploy #1) + the llm context rule on the 3 deployments = 4.
    // Exceptions: the exempted privileged container = 1.
    let summary = lines.last().unwrap();
    assert_eq!(*summary, "37 tests, 27 passed, 4 warnings, 5 failures, 1 exceptions/waivers", "{out}");
}

#[test]
fn exit_0_when_nothing_is_denied_and_2_on_usage_errors() {
    let dir = workspace();
    let root = dir.path();
    let ok = plinth(root, &["check", "--policy", "policies", "repo/k8s/clean.yml"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.ends_with("0 failures, 0 exceptions/waivers\n"), "{}", ok.stdout);
    // Warnings alone do not fail the check.
    write(&root.join("warn-only.yaml"), &CLEAN.replace("nginx:1.27", "nginx:latest"));
    let warned = plinth(root, &["check", "--policy", "policies", "warn-only.yaml"]);
    assert_eq!(warned.code, 0, "{}", warned.stdout);
    assert!(warned.stdout.starts_with("WARN - warn-only.yaml:1 - PL-TEST-002"), "{}", warned.stdout);

    let missing = plinth(root, &["check", "--policy", "policies", "repo/nope.yaml"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("repo/nope.yaml does not exist"), "{}", missing.stderr);
    let no_policies = plinth(root, &["check", "--policy", "nowhere", "repo"]);
    assert_eq!(no_policies.code, 2);
    assert!(no_policies.stderr.contains("nowhere"), "{}", no_policies.stderr);
    // Without --policy the shipped library applies, from any directory
    // (clean.yml has no owner label, which the shipped baseline denies).
    let default = plinth(&root.join("repo"), &["check", "k8s/clean.yml"]);
    assert_eq!(default.code, 1, "{}{}", default.stdout, default.stderr);
    assert!(default.stdout.contains("PL-BASE-010"), "{}", default.stdout);
    assert_eq!(plinth(root, &["check", "--output", "xml", "repo"]).code, 2);
    assert_eq!(plinth(root, &["check"]).code, 2);
}

#[test]
fn profile_selects_policies_and_reaches_the_input_context() {
    let dir = workspace();
    let root = dir.path();
    let llm = plinth(root, &["check", "--policy", "policies", "--profile", "llm", "repo/k8s/clean.yml"]);
    assert_eq!(llm.code, 0);
    assert!(
        llm.stdout.contains("WARN - repo/k8s/clean.yml:1 - PL-LLM-001 - point=pr profile=llm catalog=false"),
        "{}",
        llm.stdout
    );
    let other = plinth(root, &["check", "--policy", "policies", "--profile", "training", "repo/k8s/clean.yml"]);
    assert_eq!(other.code, 0);
    assert!(!other.stdout.contains("PL-LLM-001"), "{}", other.stdout);
}

#[test]
fn extra_data_files_reach_the_policies() {
    let dir = workspace();
    let root = dir.path();
    // Without policies/data.json the limit comes from --data.
    std::fs::remove_file(root.join("policies/data.json")).unwrap();
    write(&root.join("limits.yaml"), "limits:\n  max_gpus: 32\n");
    let run = plinth(root, &["check", "--policy", "policies", "--data", "limits.yaml", "repo/golden"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    write(&root.join("limits.yaml"), "limits:\n  max_gpus: 4\n");
    let run = plinth(root, &["check", "--policy", "policies", "--data", "limits.yaml", "repo/golden"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("16 GPUs requested; at most 4"), "{}", run.stdout);
    write(&root.join("list.json"), "[1, 2]");
    assert_eq!(plinth(root, &["check", "--policy", "policies", "--data", "list.json", "repo/golden"]).code, 2);
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let dir = workspace();
    let run = plinth(dir.path(), &["check", "--policy", "policies", "--output", "sarif", "repo"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let sarif: Value = serde_json::from_str(&run.stdout).expect("SARIF is JSON");
    let errors = sarif_schema_errors(&sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "plinth");
    assert_eq!(run0["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    for id in ["PL-TEST-001", "PL-TEST-002", "PL-TF-001", "PL-CAT-001", "PL-GP-001", "PL-LLM-001"] {
        assert!(rules.iter().any(|r| r["id"] == id), "{id} missing from rules");
    }
    let results = run0["results"].as_array().unwrap();
    let privileged: Vec<_> = results.iter().filter(|r| r["ruleId"] == "PL-TEST-001").collect();
    assert_eq!(privileged.len(), 2);
    let denied = privileged.iter().find(|r| r["level"] == "error").unwrap();
    let location = &denied["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "repo/k8s/deploy.yaml");
    assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(location["region"]["startLine"], nth_line_of(MANIFESTS, "privileged: true", 0));
    let excepted = privileged.iter().find(|r| r["level"] == "note").unwrap();
    assert_eq!(excepted["suppressions"][0]["kind"], "inSource");
    let plan = results.iter().find(|r| r["ruleId"] == "PL-TF-001").unwrap();
    assert_eq!(plan["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "repo/infra/plan.json");
    assert!(results.iter().any(|r| r["ruleId"] == "plinth.input-error" && r["level"] == "error"));
    let rule = &rules[denied["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], "PL-TEST-001");
    assert_eq!(rule["properties"]["security-severity"], "9.5");
    assert_eq!(rule["properties"]["tags"], json!(["CIS-5.2.1"]));
    // Same input, same fingerprints.
    let again = plinth(dir.path(), &["check", "--policy", "policies", "--output", "sarif", "repo"]);
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    let prints = |s: &Value| -> Vec<Value> {
        s["runs"][0]["results"].as_array().unwrap().iter().map(|r| r["partialFingerprints"].clone()).collect()
    };
    assert_eq!(prints(&sarif), prints(&again));
}

#[test]
fn json_and_junit_outputs() {
    let dir = workspace();
    let run =
        plinth(dir.path(), &["check", "--policy", "policies", "-o", "json", "repo/k8s/deploy.yaml", "repo/infra"]);
    assert_eq!(run.code, 1);
    let entries: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let summary: Vec<(String, u64, String)> = entries
        .iter()
        .map(|e| {
            let outcome = match (&e["decision"]["result"], &e["error"]) {
                (Value::String(r), _) => r.clone(),
                (_, Value::Object(_)) => "unreadable".into(),
                _ => panic!("{e}"),
            };
            (e["file"].as_str().unwrap().to_string(), e["document"].as_u64().unwrap(), outcome)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("repo/infra/plan.json".into(), 1, "deny".into()),
            ("repo/k8s/deploy.yaml".into(), 1, "deny".into()),
            ("repo/k8s/deploy.yaml".into(), 2, "unreadable".into()),
            ("repo/k8s/deploy.yaml".into(), 3, "warn".into()),
        ]
    );
    assert_eq!(entries[0]["input"], "terraform-plan");
    assert_eq!(entries[1]["name"], "Deployment/web");
    assert_eq!(entries[2]["error"]["line"], nth_line_of(MANIFESTS, "[broken", 0) + 1);
    assert_eq!(entries[2]["line"], nth_line_of(MANIFESTS, "kind: ConfigMap", 0) - 1);

    let run = plinth(dir.path(), &["check", "--policy", "policies", "-o", "junit", "repo/k8s/deploy.yaml"]);
    assert_eq!(run.code, 1);
    let xml = run.stdout;
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"));
    assert_eq!(xml.matches("<testsuite ").count(), 1);
    // 2 evaluated documents x 6 rules + the unreadable document.
    assert_eq!(xml.matches("<testcase ").count(), 13, "{xml}");
    assert!(xml.contains("<failure message=\"repo/k8s/deploy.yaml:"), "{xml}");
    assert!(xml.contains("type=\"input-error\""), "{xml}");
    assert!(xml.contains("<system-out>WARN - "), "{xml}");
    assert!(xml.contains("<skipped message="), "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), xml.matches("</testsuite>").count());
}

fn checked_files(run: &Run) -> Vec<String> {
    let entries: Vec<Value> =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    let mut files: Vec<String> = entries.iter().map(|e| e["file"].as_str().unwrap().to_string()).collect();
    files.dedup();
    files
}

#[test]
fn diff_checks_only_files_changed_since_the_base_revision() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    policies(root);
    for name in ["unchanged", "modified", "staged", "deleted", "renamed"] {
        write(&root.join(format!("deploy/{name}.yaml")), PRIVILEGED);
    }
    write(&root.join("other/outside.yaml"), CLEAN);
    write(&root.join(".gitignore"), "deploy/ignored.yaml\n");
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "base"]);
    write(&root.join("deploy/modified.yaml"), &PRIVILEGED.replace("name: bad", "name: modified"));
    write(&root.join("deploy/staged.yaml"), &PRIVILEGED.replace("name: bad", "name: staged"));
    git(root, &["add", "deploy/staged.yaml"]);
    std::fs::remove_file(root.join("deploy/deleted.yaml")).unwrap();
    git(root, &["mv", "deploy/renamed.yaml", "deploy/moved.yaml"]);
    write(&root.join("deploy/untracked.yaml"), PRIVILEGED);
    write(&root.join("deploy/ignored.yaml"), PRIVILEGED);
    write(&root.join("other/outside.yaml"), PRIVILEGED);

    let run = plinth(root, &["check", "--policy", "policies", "--diff", "HEAD", "-o", "json", "deploy"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Changed (staged or not), renamed-to and untracked files under the PATH;
    // not the unchanged, deleted, ignored or outside ones.
    assert_eq!(
        checked_files(&run),
        vec!["deploy/modified.yaml", "deploy/moved.yaml", "deploy/staged.yaml", "deploy/untracked.yaml"]
    );
    // An explicit file that did not change is not checked.
    let run = plinth(root, &["check", "--policy", "policies", "--diff", "HEAD", "-o", "json", "deploy/unchanged.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(checked_files(&run), Vec::<String>::new());
    let text = plinth(root, &["check", "--policy", "policies", "--diff", "HEAD", "deploy/unchanged.yaml"]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.starts_with("no files to check\n"), "{}", text.stdout);

    // A base further back includes what later commits changed.
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "second"]);
    write(&root.join("deploy/unchanged.yaml"), CLEAN);
    let run = plinth(root, &["check", "--policy", "policies", "--diff", "HEAD", "-o", "json", "deploy", "other"]);
    assert_eq!(checked_files(&run), vec!["deploy/unchanged.yaml"]);
    assert_eq!(run.code, 0);
    let run = plinth(root, &["check", "--policy", "policies", "--diff", "HEAD~1", "-o", "json", "deploy", "other"]);
    assert_eq!(run.code, 1);
    // deploy/ignored.yaml is ignored, so never committed nor listed as untracked.
    assert_eq!(
        checked_files(&run),
        vec![
            "deploy/modified.yaml",
            "deploy/moved.yaml",
            "deploy/staged.yaml",
            "deploy/unchanged.yaml",
            "deploy/untracked.yaml",
            "other/outside.yaml",
        ]
    );
    // From a subdirectory, paths are relative to where plinth runs.
    let run = plinth(&root.join("deploy"), &["check", "--policy", "../policies", "--diff", "HEAD", "-o", "json", "."]);
    assert_eq!(checked_files(&run), vec!["unchanged.yaml"]);

    let bad = plinth(root, &["check", "--policy", "policies", "--diff", "no-such-rev", "deploy"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no-such-rev"), "{}", bad.stderr);
    // A base that looks like an option is a revision to git, never an option.
    let marker = root.join("written-by-git");
    let injected = format!("--diff=--output={}", marker.display());
    let bad = plinth(root, &["check", "--policy", "policies", &injected, "deploy"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a revision"), "{}", bad.stderr);
    assert!(!marker.exists(), "git took the base as an option and wrote a file");
    let outside = tempfile::tempdir().unwrap();
    policies(outside.path());
    write(&outside.path().join("a.yaml"), CLEAN);
    let not_git = plinth(outside.path(), &["check", "--diff", "HEAD", "a.yaml"]);
    assert_eq!(not_git.code, 2, "{}", not_git.stdout);
    assert!(not_git.stderr.contains("git"), "{}", not_git.stderr);
}

#[test]
fn broken_policies_fail_closed_with_file_and_line() {
    let dir = workspace();
    let root = dir.path();
    let unknown_function = "# METADATA\n# custom:\n#   points: [pr]\npackage test.broken\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := no_such_function(input)\n}\n";
    write(&root.join("policies/broken.rego"), unknown_function);
    let run = plinth(root, &["check", "--policy", "policies", "repo/k8s/clean.yml"]);
    assert_eq!(run.code, 1, "a clean file must fail when a policy is broken:\n{}", run.stdout);
    let line = nth_line_of(unknown_function, "no_such_function", 0);
    let at = format!("policies/broken.rego:{line}");
    assert!(run.stderr.contains("error: policy failed to load") && run.stderr.contains(&at), "{}", run.stderr);
    assert!(run.stdout.lines().any(|l| l.starts_with("ERROR - ") && l.contains(&at)), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL - repo/k8s/clean.yml:1 - test.broken.load - policy failed to load")
                && l.contains(&at)),
        "{}",
        run.stdout
    );

    // A syntax error too, and SARIF says so validly.
    write(
        &root.join("policies/syntax.rego"),
        "package test.syntax\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := \"x\"\n",
    );
    let run = plinth(root, &["check", "--policy", "policies", "-o", "sarif", "repo/k8s/clean.yml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("policies/syntax.rego"), "{}", run.stderr);
    let sarif: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(sarif_schema_errors(&sarif).is_empty());
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert_eq!(invocation["toolExecutionNotifications"].as_array().unwrap().len(), 2);
    let errors: Vec<_> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["properties"]["kind"] == "error" && r["level"] == "error")
        .collect();
    assert_eq!(errors.len(), 2, "{sarif:#}");
}

/// The shipped policy library (part of the repository: missing is a failure).
#[test]
fn shipped_library_denies_the_bad_example() {
    let repo = repo();
    let library = repo.join("policies");
    let example = repo.join("examples/policy-inputs/deployment-bad.yaml");
    assert!(library.is_dir(), "the shipped policy library is missing at {}", library.display());
    assert!(example.is_file(), "the bad example is missing at {}", example.display());
    let run = plinth(&repo, &["check", "--policy", "policies", "examples/policy-inputs/deployment-bad.yaml"]);
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("FAIL - examples/policy-inputs/deployment-bad.yaml:")),
        "{}",
        run.stdout
    );
    // The whole example set, as SARIF: valid against the schema with the real library's metadata.
    let run = plinth(&repo, &["check", "--policy", "policies", "-o", "sarif", "examples/policy-inputs"]);
    let sarif: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    let errors = sarif_schema_errors(&sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
}

/// A conftest policy as platform teams write them: `package main`, the
/// manifest itself as `input`.
const CONFTEST_MAIN: &str = r#"package main

import rego.v1

deny contains msg if {
	input.kind == "Deployment"
	some c in input.spec.template.spec.containers
	c.securityContext.privileged == true
	msg := sprintf("Deployment %s: container %s must not run privileged", [input.metadata.name, c.name])
}
"#;

/// A Gatekeeper ConstraintTemplate's Rego: the admission request as
/// `input.review`, the constraint's parameters as `input.parameters`.
const GATEKEEPER_LABELS: &str = r#"package k8srequiredlabels

import rego.v1

violation contains {"msg": msg} if {
	provided := {label | some label, _ in input.review.object.metadata.labels}
	required := {label | some label in input.parameters.labels}
	missing := required - provided
	count(missing) > 0
	msg := sprintf("you must provide labels: %v", [missing])
}
"#;

/// "Write once, enforce at PR and at admission": the same conftest policy
/// denies the same privileged Deployment in `plinth check` (the real
/// binary) and at `POST /api/policy/admission` of a real `plinth serve`
/// (over HTTP), and a Gatekeeper policy beside it keeps `input.review`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conftest_policy_denies_the_same_deployment_in_check_and_at_admission() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("policy/conftest/deployment.rego"), CONFTEST_MAIN);
    write(&root.join("policy/gatekeeper/k8srequiredlabels.rego"), GATEKEEPER_LABELS);
    write(&root.join("repo/deploy.yaml"), PRIVILEGED);
    let message = "Deployment bad: container app must not run privileged";

    // At PR: `plinth check`.
    let run = plinth(root, &["check", "--policy", "policy", "-o", "json", "repo"]);
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let text = report.to_string();
    assert!(text.contains(message), "plinth check denies with the conftest message: {report:#}");
    assert!(!text.contains("you must provide labels"), "no review, no Gatekeeper violation at PR: {report:#}");

    // At admission: the same manifest in an AdmissionReview, over HTTP.
    let policy = root.join("policy");
    let policy = policy.to_str().unwrap();
    let server = Serve::start_with(&root.join("data"), None, &[], &["--policy", policy], &[]).await;
    let manifest = yaml_document(PRIVILEGED);
    let review = |uid: &str, object: &Value| {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "operation": "CREATE", "userInfo": {"username": "alice"}, "object": object}
        })
    };
    let (status, body) = server.post("/api/policy/admission", &review("priv-1", &manifest)).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}\n{}", server.log_tail());
    let response = &body["response"];
    assert_eq!(response["uid"], json!("priv-1"), "{body}");
    assert_eq!(response["allowed"], json!(false), "the admission webhook denies it too: {body}");
    assert_eq!(response["status"]["code"], json!(403), "{body}");
    let reason = response["status"]["message"].as_str().unwrap_or_default();
    assert!(reason.contains(message), "the same message: {reason}");

    // Fixed, it is admitted.
    let mut fixed = manifest.clone();
    fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = json!(false);
    let (status, body) = server.post("/api/policy/admission", &review("fixed-1", &fixed)).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["response"]["allowed"], json!(true), "{body}");

    // The Gatekeeper policy in the same directory still reads the review
    // and its parameters: through the evaluate API with parameters.
    let (status, decision) = server
        .post(
            "/api/policy/evaluate",
            &json!({"point": "admission", "input": {"review": review("gk-1", &fixed)["request"], "parameters": {"labels": ["owner"]}}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{decision}");
    let messages: Vec<&str> =
        decision["violations"].as_array().unwrap().iter().filter_map(|v| v["message"].as_str()).collect();
    assert_eq!(messages, [r#"you must provide labels: {"owner"}"#], "{decision}");
    let policies = server.ok("/api/policy/policies", &[]).await;
    let input_of = |package: &str| {
        policies["policies"].as_array().unwrap().iter().find(|p| p["package"] == package).map(|p| p["input"].clone())
    };
    assert_eq!(input_of("main"), Some(json!("object")), "{policies}");
    assert_eq!(input_of("k8srequiredlabels"), Some(json!("review")), "{policies}");
}

fn yaml_document(text: &str) -> Value {
    plinth_model::yaml::parse_document(text).unwrap_or_else(|e| panic!("{text}: {}", e.message))
}
