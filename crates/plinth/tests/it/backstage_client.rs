//! Backstage's own catalog client (`@backstage/catalog-client` from npm,
//! unchanged) against a real `plinth serve --demo`: the compatibility claim
//! of the catalog API, checked by the client that Backstage plugins use.

use super::common::{repo, Serve};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_catalog_client_works_unchanged() {
    let client_dir = repo().join("tests/backstage-client");
    run(
        Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(&client_dir),
        "npm ci (installs @backstage/catalog-client)",
    );
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
