//! What the test modules share: the `plinth` binary as a command or as a
//! running `plinth serve` child ([`Serve`]), free loopback ports, an HTTP
//! client, files, the catalogue generator, and a bounded wait.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_plinth");

/// The repository's root (examples, shipped policies and templates).
pub(crate) fn repo() -> PathBuf {
    plinth_testkit::workspace_root()
}

/// A port nobody listens on right now (it can be taken before it is bound).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP client for loopback servers (no proxy), 30 s per request.
pub(crate) fn http() -> reqwest::Client {
    http_with_timeout(Duration::from_secs(30))
}

pub(crate) fn http_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(timeout).build().expect("HTTP client")
}

/// Writes `content` to `path`, creating its directory; returns the path.
pub(crate) fn write(path: &Path, content: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    path.to_path_buf()
}

/// 1-based line of the first line of `text` containing `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> usize {
    nth_line_of(text, needle, 0)
}

/// 1-based line of the `nth` (0-based) line of `text` containing `needle`.
pub(crate) fn nth_line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no {nth}th line with `{needle}` in the fixture"))
}

/// `plinth` with no input and none of the environment that would point it
/// elsewhere (`PLINTH_URL`) or change its logging (`RUST_LOG`).
pub(crate) fn plinth_command() -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("PLINTH_URL").env_remove("RUST_LOG").stdin(Stdio::null());
    command
}

/// A finished `plinth` run.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        Run {
            code: output
                .status
                .code()
                .unwrap_or_else(|| panic!("plinth ended without an exit code: {}", output.status)),
            stdout: String::from_utf8(output.stdout).expect("plinth's stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("plinth's stderr is UTF-8"),
        }
    }
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after
/// `bound` (a generous bound on a condition, not a timing assertion).
/// Returns how long it took, for the log.
pub(crate) async fn wait_for(bound: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < bound, "{what}: still not the case after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Generates an AI catalogue of `entities` entities into `out` with
/// `shared/bench/gen_catalog.py` (beside the repository); returns its
/// manifest. Its root is `out/all.yaml`.
pub(crate) fn generate_catalog(out: &Path, entities: u64) -> Value {
    let script = repo().join("../shared/bench/gen_catalog.py");
    assert!(
        script.is_file(),
        "the catalogue generator is missing at {}; expected shared/ beside the repository",
        script.display()
    );
    let output = Command::new("python3")
        .arg(&script)
        .args(["--entities", &entities.to_string(), "--ai", "--out"])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); these tests need python3 on PATH"));
    assert!(output.status.success(), "gen_catalog.py failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).expect("manifest.json")
}

/// How to start `plinth serve`.
pub(crate) struct Launch<'a> {
    pub database_url: Option<&'a str>,
    pub locations: &'a [&'a Path],
    /// More arguments (`--demo`, `--webhook-secret-file F`, …).
    pub args: &'a [&'a str],
    /// Environment variables, set last.
    pub env: &'a [(&'a str, &'a str)],
    /// Register the shipped golden-path templates (off: only the named
    /// locations are in the catalogue).
    pub shipped_templates: bool,
    /// How long `/readyz` may take to answer.
    pub ready_within: Duration,
}

impl Default for Launch<'_> {
    fn default() -> Self {
        Launch {
            database_url: None,
            locations: &[],
            args: &[],
            env: &[],
            shipped_templates: false,
            ready_within: Duration::from_secs(60),
        }
    }
}

/// A `plinth serve` child process on a free loopback port, logging to a
/// file beside its data directory; killed (SIGKILL) when dropped.
pub(crate) struct Serve {
    child: Child,
    pub base: String,
    log: PathBuf,
    /// The data directory and log of [`Serve::demo`], removed after the kill.
    _scratch: Option<tempfile::TempDir>,
}

impl Serve {
    /// Starts `plinth serve` and waits until `/readyz` answers 200.
    pub(crate) async fn start(data_dir: &Path, database_url: Option<&str>, locations: &[&Path]) -> Serve {
        Serve::launch(data_dir, Launch { database_url, locations, ..Launch::default() }).await
    }

    /// [`Serve::start`] with extra arguments and environment variables.
    pub(crate) async fn start_with(
        data_dir: &Path,
        database_url: Option<&str>,
        locations: &[&Path],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        Serve::launch(data_dir, Launch { database_url, locations, args, env, ..Launch::default() }).await
    }

    /// `plinth serve --demo` (with the shipped templates) in a scratch
    /// directory, once the demo catalogue is in (its `auth-service` is).
    /// The demo's own traffic is off: these tests send the telemetry they
    /// assert on (`demo_traffic` tests the generator).
    pub(crate) async fn demo() -> Serve {
        Serve::demo_with(&["--demo", "--demo-traffic=false"]).await
    }

    /// [`Serve::demo`] with these `serve` arguments (`--demo` among them).
    pub(crate) async fn demo_with(args: &[&str]) -> Serve {
        let scratch = tempfile::tempdir().unwrap();
        let launch = Launch { args, shipped_templates: true, ..Launch::default() };
        let mut serve = Serve::launch(&scratch.path().join("data"), launch).await;
        serve._scratch = Some(scratch);
        serve.wait_ok("/api/catalog/entities/by-name/component/default/auth-service", Duration::from_secs(60)).await;
        serve
    }

    pub(crate) async fn launch(data_dir: &Path, launch: Launch<'_>) -> Serve {
        let mut last_log = String::new();
        // A free port can be taken between probing and binding: retry.
        for attempt in 0..3 {
            let port = free_port();
            std::fs::create_dir_all(data_dir).unwrap();
            let log = data_dir.with_file_name(format!(
                "{}-serve-{port}-{attempt}.log",
                data_dir.file_name().unwrap().to_string_lossy()
            ));
            let mut command = Command::new(BIN);
            command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir);
            if let Some(url) = launch.database_url {
                command.args(["--database-url", url]);
            }
            for location in launch.locations {
                command.arg("--location").arg(location);
            }
            command.args(launch.args);
            for var in [
                "PLINTH_DATABASE_URL",
                "PLINTH_LISTEN",
                "PLINTH_DATA_DIR",
                "PLINTH_REFRESH_INTERVAL",
                "PLINTH_WEBHOOK_SECRET",
                "PLINTH_WEBHOOK_SECRET_FILE",
                "PLINTH_URL",
            ] {
                command.env_remove(var);
            }
            command.env("PLINTH_LOG", "info,tantivy=warn,sqlx=warn");
            command.env("PLINTH_SHIPPED_TEMPLATES", if launch.shipped_templates { "true" } else { "false" });
            command.envs(launch.env.iter().copied());
            let file = std::fs::File::create(&log).unwrap();
            command.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file);
            let child = command.spawn().expect("spawn plinth serve");
            let mut serve = Serve { child, base: format!("http://127.0.0.1:{port}"), log, _scratch: None };
            if serve.wait_ready(launch.ready_within).await {
                return serve;
            }
            last_log = serve.log_tail();
            serve.kill();
        }
        panic!("plinth serve did not become ready; its log ends:\n{last_log}");
    }

    /// Polls `/readyz`; false if the process exits or the time runs out.
    async fn wait_ready(&mut self, timeout: Duration) -> bool {
        let client = http();
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.exit_status() {
                eprintln!("plinth serve exited early with {status}");
                return false;
            }
            if let Ok(response) = client.get(format!("{}/readyz", self.base)).send().await {
                if response.status().is_success() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits until GET `path` answers 200; panics with the log otherwise.
    pub(crate) async fn wait_ok(&mut self, path: &str, timeout: Duration) {
        let client = http();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                panic!("plinth serve exited ({status}) before {path} answered; its log:\n{}", self.log_tail());
            }
            if let Ok(response) = client.get(self.url(path)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("{path} did not answer 200 within {timeout:?}; plinth log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The exit status, once the process has ended.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last 40 lines of the log.
    pub(crate) fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
        let response = http().get(self.url(path)).query(query).send().await.expect("GET");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET that must succeed; the body as JSON.
    pub(crate) async fn ok(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(path, query).await;
        assert!(status.is_success(), "GET {path} {query:?}: {status} {body}\nserver log:\n{}", self.log_tail());
        body
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        let response = http().post(self.url(path)).json(body).send().await.expect("POST");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn delete(&self, path: &str) -> reqwest::StatusCode {
        http().delete(self.url(path)).send().await.expect("DELETE").status()
    }

    /// Entities per kind, from the facets endpoint.
    pub(crate) async fn kind_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let body = self.ok("/api/catalog/entity-facets", &[("facet", "kind")]).await;
        body["facets"]["kind"]
            .as_array()
            .expect("kind facet")
            .iter()
            .map(|f| (f["value"].as_str().unwrap().to_string(), f["count"].as_u64().unwrap()))
            .collect()
    }

    /// An unlabelled series from `/metrics`.
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        let response = http().get(self.url("/metrics")).send().await.expect("GET /metrics");
        assert!(response.status().is_success(), "GET /metrics: {}", response.status());
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("metric {name} missing from /metrics:\n{text}"))
            .trim()
            .parse()
            .expect("numeric metric")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}
