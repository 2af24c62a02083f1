//! Backstage's own catalog client (`@backstage/catalog-client` from npm,
//! unchanged) against a real `plinth serve --demo`: the compatibility claim
//! of the catalog API, checked by the client that Backstage plugins use.

use super::common::{http, plinth_command, repo, Launch, Run, Serve};
use std::process::Command;

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}; install Node.js and npm"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

/// Installs the client once per test binary. `npm ci` deletes and rebuilds
/// `node_modules`, so two tests running it at once in the same directory
/// break each other's install; the lock makes the second wait for the first.
fn install_client() -> std::path::PathBuf {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let client_dir = repo().join("tests/backstage-client");
    let mut installed = INSTALLED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*installed {
        run(
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&client_dir),
            "npm ci (installs @backstage/catalog-client)",
        );
        *installed = true;
    }
    client_dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_catalog_client_works_unchanged() {
    let client_dir = install_client();
    // Ready when the demo catalogue is in.
    let server = Serve::demo().await;
    let check =
        tokio::process::Command::new("node").arg("check.mjs").arg(&server.base).current_dir(&client_dir).output();
    let output = check.await.unwrap_or_else(|e| panic!("node check.mjs: cannot start: {e}; install Node.js and npm"));
    assert!(
        output.status.success(),
        "node check.mjs failed:\n{}\n{}\nplinth log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log_tail()
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

/// The same client with its `token` option against `--auth required`:
/// refused without a token (401), answered with one, refused for a token
/// without the `read` scope (403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_catalog_client_works_with_its_token_option() {
    let client_dir = install_client();
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let launch = Launch { args: &["--demo", "--demo-traffic=false", "--auth", "required"], ..Launch::default() };
    let server = Serve::launch(&data, launch).await;
    let issue = |args: &[&str]| -> String {
        let run: Run =
            plinth_command().args(["token", "create", "--data-dir"]).arg(&data).args(args).output().unwrap().into();
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().last().unwrap().trim().to_string()
    };
    let token = issue(&["--name", "backstage", "--service", "backstage", "--scope", "read"]);
    let narrow = issue(&["--name", "otel", "--service", "otel", "--scope", "signals:ingest"]);
    // Ready when the demo catalogue is in.
    let url = server.url("/api/catalog/entities/by-name/component/default/auth-service");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !http().get(&url).bearer_auth(&token).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(std::time::Instant::now() < deadline, "the demo never came in:\n{}", server.log_tail());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let check = tokio::process::Command::new("node")
        .args(["check-token.mjs", &server.base, &token, &narrow])
        .current_dir(&client_dir)
        .output();
    let output =
        check.await.unwrap_or_else(|e| panic!("node check-token.mjs: cannot start: {e}; install Node.js and npm"));
    assert!(
        output.status.success(),
        "node check-token.mjs failed:\n{}\n{}\nplinth log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log_tail()
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
}
