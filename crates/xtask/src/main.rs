//! `cargo xtask test`: the README's test command. It does the set-up the
//! suite needs on a fresh machine — PostgreSQL on 127.0.0.1:5432 (started
//! when it is down), Chromium and chromedriver for the portal's browser
//! tests (installed with apt when missing), axe-core for their
//! accessibility audit (from npm into `target/xtask/axe`, its path passed
//! as `PLINTH_AXE_CORE`) — names exactly what is missing
//! when it cannot, then runs every test of the workspace and the shipped
//! policy library's own tests.
//!
//! `cargo xtask api-check`: runs Schemathesis (installed from PyPI into
//! `target/xtask/venv`) with every check against `/api/openapi.json` of a
//! `plinth serve --demo`, and fails on any failure it reports.
//!
//! Only the standard library: this builds in seconds on a fresh clone.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const POSTGRES: &str = "127.0.0.1:5432";
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("api-check") => api_check(),
        _ => Err(Problem("usage: cargo xtask test [-- <cargo test arguments>] | cargo xtask api-check".to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Problem(message)) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What stopped a task, said so a person can act on it.
struct Problem(String);

type Result<T> = std::result::Result<T, Problem>;

fn problem(message: impl Into<String>) -> Problem {
    Problem(message.into())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

fn step(what: &str) {
    eprintln!("== {what}");
}

fn on_path(tool: &str) -> bool {
    Command::new("sh").args(["-c", "command -v \"$1\" >/dev/null 2>&1", "sh", tool]).status().is_ok_and(|s| s.success())
}

/// Runs a command, failing with what it was when it does not succeed.
fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command.status().map_err(|e| problem(format!("cannot run {shown}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(problem(format!("{shown} failed ({status})")))
    }
}

fn test(extra: &[String]) -> Result<()> {
    let root = workspace_root();
    step("tools the tests use");
    let missing: Vec<&str> = ["git", "python3", "node", "npm"].into_iter().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        return Err(problem(format!(
            "missing on PATH: {} (git for the git sources, python3 for the catalogue generator, Node.js with npm for \
             the check that drives Plinth with Backstage's own catalog-client); install them and run again",
            missing.join(", ")
        )));
    }
    let database_url = std::env::var("PLINTH_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
    step("PostgreSQL");
    ensure_postgres(&database_url)?;
    step("Chromium and chromedriver");
    ensure_browser()?;
    step("axe-core (npm) for the portal's accessibility audit");
    let axe = ensure_axe(&root)?;
    step("cargo test --workspace");
    let extra = extra.strip_prefix(&["--".to_string()]).unwrap_or(extra);
    run(Command::new(cargo())
        .current_dir(&root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("PLINTH_TEST_DATABASE_URL", &database_url)
        .env(AXE_ENV, &axe)
        .env_remove("PLINTH_SKIP_POSTGRES"))?;
    step("the shipped policy library's own tests, as a user runs them");
    run(Command::new(cargo()).current_dir(&root).args([
        "run",
        "--quiet",
        "-p",
        "plinth",
        "--",
        "policy",
        "test",
        "policies/",
    ]))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn postgres_address(url: &str) -> Option<SocketAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().ok()
}

fn reachable(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

fn ensure_postgres(url: &str) -> Result<()> {
    let address = postgres_address(url).ok_or_else(|| {
        problem(format!("PLINTH_TEST_DATABASE_URL `{url}` is not postgres://user@host:port/database"))
    })?;
    if reachable(address) {
        eprintln!("PostgreSQL answers on {address}");
        return Ok(());
    }
    if address.to_string() != POSTGRES {
        return Err(problem(format!("PostgreSQL at {address} (PLINTH_TEST_DATABASE_URL) does not answer; start it")));
    }
    eprintln!("PostgreSQL is down on {POSTGRES}; starting it");
    let clusters = std::fs::read_dir("/etc/postgresql")
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect::<Vec<_>>())
        .unwrap_or_default();
    let newest = clusters.iter().max_by_key(|v| v.parse::<u32>().unwrap_or(0)).cloned();
    match (on_path("pg_ctlcluster"), newest) {
        (true, Some(version)) => {
            let mut command = Command::new("pg_ctlcluster");
            command.args(["--skip-systemctl-redirect", &version, "main", "start"]);
            let _ = command.status();
        }
        _ => {
            return Err(problem(
                "PostgreSQL is not running on 127.0.0.1:5432 and no Debian cluster (pg_ctlcluster, /etc/postgresql) \
                 was found to start: install PostgreSQL (apt-get install postgresql), allow trust auth for \
                 127.0.0.1 in pg_hba.conf, or point PLINTH_TEST_DATABASE_URL at a server",
            ))
        }
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if reachable(address) {
            eprintln!("PostgreSQL started");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(problem(
        "PostgreSQL was started but does not answer on 127.0.0.1:5432 after 30 s; see its log in /var/log/postgresql",
    ))
}

/// The axe-core version the accessibility audit runs (npm).
const AXE_VERSION: &str = "4.10.3";
/// Where the tests find `axe.min.js`.
const AXE_ENV: &str = "PLINTH_AXE_CORE";

/// Installs axe-core from npm into `target/xtask/axe` (once per version)
/// and returns the path of its `axe.min.js`, which the portal's browser
/// tests inject into each page (`PLINTH_AXE_CORE`).
fn ensure_axe(root: &Path) -> Result<PathBuf> {
    if let Ok(given) = std::env::var(AXE_ENV) {
        let given = PathBuf::from(given);
        if given.is_file() {
            eprintln!("axe-core from {AXE_ENV}: {}", given.display());
            return Ok(given);
        }
        return Err(problem(format!("{AXE_ENV} names {}, which is not a file", given.display())));
    }
    let dir = root.join("target/xtask/axe").join(AXE_VERSION);
    let script = dir.join("node_modules/axe-core/axe.min.js");
    if script.is_file() {
        eprintln!("found axe-core {AXE_VERSION} in {}", dir.display());
        return Ok(script);
    }
    std::fs::create_dir_all(&dir).map_err(|e| problem(format!("cannot create {}: {e}", dir.display())))?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-save", "--prefix"])
        .arg(&dir)
        .arg(format!("axe-core@{AXE_VERSION}")))
    .map_err(|Problem(message)| {
        problem(format!(
            "{message}; install axe-core by hand (npm install --prefix {} axe-core@{AXE_VERSION}) or set {AXE_ENV} to \
             an axe.min.js",
            dir.display()
        ))
    })?;
    if !script.is_file() {
        return Err(problem(format!("npm installed axe-core but {} is missing", script.display())));
    }
    Ok(script)
}

fn ensure_browser() -> Result<()> {
    if on_path("chromedriver") && (on_path("chromium") || Path::new("/usr/bin/chromium").exists()) {
        eprintln!("found chromium and chromedriver");
        return Ok(());
    }
    if !on_path("apt-get") {
        return Err(problem(
            "Chromium and chromedriver are missing and apt-get is not available to install them: install Debian's \
             `chromium` and `chromium-driver` (or put a chromium and a matching chromedriver on PATH)",
        ));
    }
    eprintln!("installing chromium and chromium-driver with apt-get");
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| -> Command {
        let mut command = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    let known = Command::new("apt-cache")
        .args(["show", "chromium-driver"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !known {
        run(&mut apt(&["update"]))?;
    }
    run(&mut apt(&["install", "-y", "chromium", "chromium-driver"])).map_err(|Problem(message)| {
        problem(format!("{message}; install Debian's `chromium` and `chromium-driver` by hand and run again"))
    })
}

/// A `plinth serve --demo` child, stopped when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn api_check() -> Result<()> {
    let root = workspace_root();
    let target = root.join("target/xtask");
    std::fs::create_dir_all(&target).map_err(|e| problem(format!("cannot create {}: {e}", target.display())))?;
    step("Schemathesis (PyPI) in target/xtask/venv");
    let venv = target.join("venv");
    let st = venv.join("bin/st");
    if !st.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).map_err(|Problem(m)| {
            problem(format!("{m}; python3 needs the venv module (Debian: apt-get install python3-venv)"))
        })?;
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "schemathesis==4.*"]))?;
    }
    step("plinth serve --demo");
    run(Command::new(cargo()).current_dir(&root).args(["build", "--quiet", "-p", "plinth"]))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| problem(format!("no free port: {e}")))?
        .port();
    let data = target.join("api-check-data");
    let _ = std::fs::remove_dir_all(&data);
    let log = std::fs::File::create(target.join("api-check-serve.log")).map_err(|e| problem(e.to_string()))?;
    let child = Command::new(root.join("target/debug/plinth"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| problem(format!("cannot start plinth serve: {e}")))?;
    let _serve = Serve(child);
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Instant::now();
    while !reachable(address) {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(problem(
                "plinth serve --demo did not listen within 120 s; see target/xtask/api-check-serve.log",
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The demo catalogue registers in the background; give it its seconds.
    std::thread::sleep(Duration::from_secs(5));
    // A fixed seed makes CI reproducible; PLINTH_API_CHECK_SEED=random (or
    // another number) explores further.
    let seed = std::env::var("PLINTH_API_CHECK_SEED").unwrap_or_else(|_| "20261205".to_string());
    step(&format!("st run --checks all (seed {seed})"));
    let base = format!("http://127.0.0.1:{port}");
    run(Command::new(&st)
        .current_dir(&target)
        .arg("--config-file")
        .arg(root.join("schemathesis.toml"))
        .args(["run", &format!("{base}/api/openapi.json"), "--url", &base, "--checks", "all"])
        .args(["--max-examples", "25", "--workers", "1", "--phases", "examples,coverage,fuzzing"])
        .args(["--exclude-path-regex", "eventstream$"])
        .args(if seed == "random" { vec![] } else { vec!["--seed".to_string(), seed.clone()] })
        .env("SCHEMATHESIS_HOOKS", ""))
}
