//! Backstage's own catalog client (`@backstage/catalog-client` from npm,
//! unchanged) against a real `plinth serve --demo`: the compatibility claim
//! of the catalog API, checked by the client that Backstage plugins use.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

#[test]
fn backstage_catalog_client_works_unchanged() {
    let client_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/backstage-client");
    run(
        Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(&client_dir),
        "npm ci (installs @backstage/catalog-client)",
    );
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start plinth serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    // Ready when the demo catalogue is in (its root Location is ingested last).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new("curl")
            .args(["-sf", &format!("{base}/api/catalog/entities/by-name/component/default/auth-service")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "plinth serve --demo did not load the demo catalogue within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    run(Command::new("node").arg("check.mjs").arg(&base).current_dir(&client_dir), "node check.mjs");
    drop(server);
}
