//! The CLI's one grammar, verb by verb: `--output text|json|yaml` (and the
//! hidden `--json`), shortened refs, "did you mean" suggestions with the
//! not-found exit code, quiet exits on closed pipes, errors printed once,
//! `--allow-missing`/`--allow-empty`, the shipped policy library as the
//! default, completions, the man page and the exit codes in `--help`.
//!
//! Offline verbs are snapshot files in `tests/cmd/*.toml` (trycmd); verbs
//! against a server run here with assert_cmd against `plinth serve --demo`.

use crate::common::{Serve, BIN};
use assert_cmd::Command;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// `plinth` with nothing in the environment that points it elsewhere.
fn plinth() -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("PLINTH_URL").env_remove("PLINTH_TOKEN").env_remove("RUST_LOG");
    command.env_remove("PLINTH_POLICY_DIR");
    command
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Out {
    let output = plinth().args(args).output().expect("run plinth");
    Out {
        code: output.status.code().unwrap_or_else(|| panic!("plinth {args:?} ended by a signal")),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// `args` against `server`, expecting `code`.
fn expect(server: &Serve, args: &[&str], code: i32) -> Out {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--server", server.base.as_str()]);
    let out = run(&all);
    assert_eq!(out.code, code, "plinth {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "plinth {args:?} panicked:\n{}", out.stderr);
    out
}

fn json(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout))
}

fn yaml(out: &Out) -> Value {
    plinth_model::yaml::parse_document(&out.stdout).unwrap_or_else(|e| panic!("not YAML ({e:?}):\n{}", out.stdout))
}

/// The offline verbs (`catalog validate`, `check`, `policy test|eval`,
/// usage errors) against their snapshot files.
#[test]
fn offline_verbs_match_their_snapshots() {
    trycmd::TestCases::new()
        .register_bin("plinth", std::path::Path::new(BIN))
        .env("NO_COLOR", "1")
        .case("tests/cmd/*.toml");
}

#[test]
fn help_documents_exit_codes_and_every_verb_takes_output() {
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    for needed in
        ["Exit codes:", "0  success", "2  usage error", "or an unknown entity", "8  the server is unavailable"]
    {
        assert!(help.stdout.contains(needed), "`{needed}` missing from --help:\n{}", help.stdout);
    }
    for verb in [
        &["catalog", "validate"][..],
        &["catalog", "ls"],
        &["catalog", "get"],
        &["catalog", "impact"],
        &["catalog", "search"],
        &["catalog", "refresh"],
        &["catalog", "errors"],
        &["catalog", "locations", "add"],
        &["catalog", "locations", "ls"],
        &["catalog", "locations", "rm"],
        &["template", "ls"],
        &["new"],
        &["check"],
        &["policy", "test"],
        &["policy", "eval"],
        &["token", "create"],
        &["token", "ls"],
        &["token", "revoke"],
        &["audit", "verify"],
    ] {
        let out = run(&[verb, &["--help"]].concat());
        assert_eq!(out.code, 0, "{verb:?} --help: {}", out.stderr);
        assert!(out.stdout.contains("--output <FORMAT>"), "{verb:?} has no --output:\n{}", out.stdout);
        assert!(out.stdout.contains("yaml"), "{verb:?} --output lacks yaml:\n{}", out.stdout);
    }
    // A usage error exits 2, with clap's message, once.
    let out = run(&["catalog", "ls", "--output", "xml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.matches("invalid value 'xml'").count(), 1, "{}", out.stderr);
}

#[test]
fn completions_and_man_pages() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef plinth"), ("fish", "complete -c plinth")] {
        let out = run(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(marker), "{shell} script lacks `{marker}`");
        assert!(out.stdout.contains("locations"), "{shell} script knows the nested verbs");
    }
    assert_eq!(run(&["completions", "tcsh"]).code, 2);

    let page = run(&["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(page.stdout.starts_with(".ie") || page.stdout.contains(".TH plinth"), "not roff:\n{}", page.stdout);
    assert!(page.stdout.contains("Exit codes"), "the man page documents the exit codes");

    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for page in ["plinth.1", "plinth-catalog.1", "plinth-catalog-ls.1", "plinth-check.1"] {
        assert!(dir.path().join(page).is_file(), "{page} not written: {}", out.stdout);
    }
}

/// `plinth check` and `plinth policy test` outside the repository find the
/// shipped policy library.
#[test]
fn offline_verbs_use_the_shipped_policies_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("k8s/deployment.yaml");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:latest\n          securityContext:\n            privileged: true\n",
    )
    .unwrap();
    let out = plinth().current_dir(dir.path()).args(["check", "k8s/", "-o", "json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a privileged container is denied\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("does not exist"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report.to_string().contains("privileged"), "the shipped baseline denies it: {report}");

    let out = plinth().current_dir(dir.path()).args(["policy", "test", "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["results"].as_array().is_some_and(|r| r.len() > 20), "the shipped tests ran: {report}");
}

/// `plinth catalog ls | head -1`: the reader goes away after one line of a
/// long answer; plinth ends quietly (exit 0, no panic, nothing on stderr).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_verbs_against_the_demo() {
    let server = Serve::demo().await;
    let s = &server;

    // ls: a table, JSON (also through the hidden --json) and YAML.
    let text = expect(s, &["catalog", "ls", "--kind", "component", "--limit", "500"], 0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[0].starts_with("ENTITY") && lines[0].contains("OWNER"), "{}", text.stdout);
    assert!(lines.iter().any(|l| l.starts_with("component:default/checkout-service ")), "{}", text.stdout);
    let listed = json(&expect(s, &["catalog", "ls", "--kind", "component", "--limit", "500", "-o", "json"], 0));
    let alias = json(&expect(s, &["catalog", "ls", "--kind", "component", "--limit", "500", "--json"], 0));
    assert_eq!(listed["totalItems"], alias["totalItems"]);
    assert_eq!(lines.len() - 2, listed["items"].as_array().unwrap().len(), "one row per entity");
    let as_yaml = yaml(&expect(s, &["catalog", "ls", "--kind", "component", "--limit", "500", "-o", "yaml"], 0));
    assert_eq!(as_yaml, listed, "YAML says what JSON says");

    // Shortened owner refs resolve, in both forms, and a kind in any case.
    let short = json(&expect(s, &["catalog", "ls", "--owner", "team-payments", "-o", "json"], 0));
    let full = json(&expect(s, &["catalog", "ls", "--owner", "group:default/team-payments", "-o", "json"], 0));
    let partial = json(&expect(s, &["catalog", "ls", "--owner", "group:team-payments", "-o", "json"], 0));
    assert!(short["totalItems"].as_u64().unwrap() >= 20, "team-payments owns the demo's payments: {short}");
    assert_eq!(short["totalItems"], full["totalItems"]);
    assert_eq!(short["totalItems"], partial["totalItems"]);
    let components =
        json(&expect(s, &["catalog", "ls", "--kind", "COMPONENT", "--owner", "team-payments", "-o", "json"], 0));
    assert!(components["items"].as_array().unwrap().iter().all(|e| e["kind"] == "Component"), "{components}");

    // Typos: exit 1, with suggestions, never an empty success.
    let out = expect(s, &["catalog", "ls", "--kind", "componnet"], 1);
    assert!(out.stderr.contains("did you mean `Component`"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = expect(s, &["catalog", "ls", "--owner", "team-paymnts"], 1);
    assert!(out.stderr.contains("group:default/team-payments"), "{}", out.stderr);
    let out = expect(s, &["catalog", "get", "checkout-servce"], 1);
    assert!(
        out.stderr.contains("did you mean") && out.stderr.contains("component:default/checkout-service"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "one error line: {}", out.stderr);
    // A bare name is a component's; the same name of another kind is suggested.
    let out = expect(s, &["catalog", "get", "checkout-db"], 1);
    assert!(out.stderr.contains("did you mean `resource:default/checkout-db`"), "{}", out.stderr);
    let out = expect(s, &["catalog", "impact", "paymnts-service"], 1);
    assert!(out.stderr.contains("component:default/payments-service"), "{}", out.stderr);
    expect(s, &["catalog", "refresh", "checkout-servce"], 1);

    // get: a summary card in text, the whole entity in JSON and YAML.
    let card = expect(s, &["catalog", "get", "checkout-service"], 0);
    assert!(card.stdout.starts_with("component:default/checkout-service"), "{}", card.stdout);
    for field in ["kind", "owner", "lifecycle", "relations"] {
        assert!(card.stdout.lines().any(|l| l.trim_start().starts_with(field)), "no {field}:\n{}", card.stdout);
    }
    assert!(card.stdout.lines().count() < 30, "a card, not a dump:\n{}", card.stdout);
    let entity = json(&expect(s, &["catalog", "get", "component:default/checkout-service", "-o", "json"], 0));
    assert_eq!(entity["metadata"]["name"], "checkout-service");
    assert_eq!(yaml(&expect(s, &["catalog", "get", "checkout-service", "-o", "yaml"], 0)), entity);

    // The other verbs in each format.
    for verb in [
        &["catalog", "impact", "checkout-service"][..],
        &["catalog", "search", "checkout"],
        &["catalog", "locations", "ls"],
        &["template", "ls"],
    ] {
        let text = expect(s, verb, 0);
        assert!(!text.stdout.trim().is_empty(), "{verb:?} printed nothing");
        assert!(!text.stdout.trim_start().starts_with('{'), "{verb:?} text is not JSON:\n{}", text.stdout);
        let as_json = json(&expect(s, &[verb, &["-o", "json"]].concat(), 0));
        assert_eq!(yaml(&expect(s, &[verb, &["-o", "yaml"]].concat(), 0)), as_json, "{verb:?}");
    }
    let errors = run(&["catalog", "errors", "--server", &server.base, "-o", "json"]);
    assert!(errors.code == 0 || errors.code == 1, "{}", errors.stderr);
    json(&errors);
    let refreshed = expect(s, &["catalog", "refresh", "checkout-service"], 0);
    assert!(refreshed.stdout.starts_with("refreshed component:default/checkout-service:"), "{}", refreshed.stdout);
    let report = json(&expect(s, &["catalog", "refresh", "checkout-service", "-o", "json"], 0));
    assert!(report["filesRead"].as_u64().is_some(), "{report}");

    // locations add: a missing target fails unless --allow-missing.
    let scratch = tempfile::tempdir().unwrap();
    let nope = scratch.path().join("nope.yaml");
    let out = expect(s, &["catalog", "locations", "add", nope.to_str().unwrap()], 1);
    assert!(out.stderr.contains("does not exist") && out.stderr.contains("--allow-missing"), "{}", out.stderr);
    let listed = json(&expect(s, &["catalog", "locations", "ls", "-o", "json"], 0));
    assert!(!listed.to_string().contains("nope.yaml"), "nothing was registered: {listed}");
    let added =
        json(&expect(s, &["catalog", "locations", "add", nope.to_str().unwrap(), "--allow-missing", "-o", "json"], 0));
    let id = added["location"]["id"].as_str().expect("a location id").to_string();
    let removed = json(&expect(s, &["catalog", "locations", "rm", &id, "-o", "json"], 0));
    assert_eq!(removed["removed"], id.as_str());
    let out = expect(s, &["catalog", "locations", "rm", "../../entities"], 1);
    assert!(out.stderr.contains("locations ls"), "{}", out.stderr);

    // `plinth new` with no values: each field error once; exit 2.
    let out = expect(s, &["new", "service"], 2);
    for field in ["name:", "owner:"] {
        assert_eq!(out.stderr.matches(field).count(), 1, "`{field}` not printed exactly once:\n{}", out.stderr);
    }
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
    let out = expect(s, &["new", "servce"], 1);
    assert!(out.stderr.contains("did you mean `service`"), "{}", out.stderr);

    // A server that is not there: unavailable (8), one line.
    let out = run(&["catalog", "ls", "--server", "http://127.0.0.1:9"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    // A closed pipe: more than a pipe buffer of output, the reader leaves
    // after the first line.
    let full = expect(s, &["catalog", "ls", "--limit", "10000", "-o", "json"], 0);
    assert!(full.stdout.len() > 256 * 1024, "the answer must outgrow the pipe buffer: {} bytes", full.stdout.len());
    for format in ["json", "text"] {
        let mut child = std::process::Command::new(BIN)
            .args(["catalog", "ls", "--limit", "10000", "-o", format, "--server", &server.base])
            .env_remove("PLINTH_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        // The reader (and the pipe's read end) is dropped here.
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "quiet exit on a closed pipe ({format}): {stderr}");
        assert!(stderr.is_empty(), "nothing on stderr ({format}): {stderr}");
    }
}
