//! A whole Plinth server in the test process, on a loopback port, with its
//! own store (SQLite in a temporary directory, or a fresh PostgreSQL
//! database), its own data directory, and the services a test asks for.

use plinth_app::golden_paths::{GoldenPathsConfig, Scaffolder};
use plinth_app::policy::{PolicyConfig, PolicyService};
use plinth_app::signals::{SignalsConfig, SignalsService};
use plinth_app::{Platform, PlatformConfig};
use plinth_catalog::{Catalog, CatalogConfig};
use plinth_server::{ConnectionLimits, ServerConfig};
use plinth_store::{Store, StoreConfig};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::PgDatabase;

/// The store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Changes a test makes to the signals configuration.
pub type SignalsTweak = Box<dyn FnOnce(&mut SignalsConfig) + Send>;
/// Changes a test makes to the policy configuration.
pub type PolicyTweak = Box<dyn FnOnce(&mut PolicyConfig) + Send>;
/// Changes a test makes to the catalogue configuration.
pub type CatalogTweak = Box<dyn FnOnce(&mut CatalogConfig) + Send>;
/// Changes a test makes to the golden-paths configuration.
pub type GoldenPathsTweak = Box<dyn FnOnce(&mut GoldenPathsConfig) + Send>;

/// What to run besides the catalogue.
#[derive(Default)]
pub struct Options {
    /// Policy sources (the policy service runs when `Some`).
    pub policies: Option<Vec<String>>,
    /// Golden paths (with the policy service, when it runs).
    pub scaffolder: bool,
    /// The OTLP receiver and signals API.
    pub signals: bool,
    /// Overrides of the signals defaults (local-mode outbound already set).
    pub signals_config: Option<SignalsTweak>,
    /// Overrides of the catalogue defaults (refresh interval, …).
    pub catalog_config: Option<CatalogTweak>,
    /// Overrides of the policy defaults.
    pub policy_config: Option<PolicyTweak>,
    /// Overrides of the golden-paths defaults.
    pub golden_paths_config: Option<GoldenPathsTweak>,
    /// Files or directories registered (and ingested) before the server
    /// answers its first request.
    pub locations: Vec<PathBuf>,
    pub connections: Option<ConnectionLimits>,
    pub webhook_secret: Option<String>,
    /// Identity, access rules and audit (default: local mode).
    pub auth: Option<plinth_app::AuthConfig>,
    /// How the server holds leases on cluster-wide jobs (default: 10 s).
    pub lease: Option<plinth_app::lease::LeaseConfig>,
}

impl Options {
    /// Policy with the given sources.
    pub fn policies(sources: Vec<String>) -> Options {
        Options { policies: Some(sources), ..Options::default() }
    }

    /// Locations to register before serving.
    pub fn with_locations(mut self, locations: impl IntoIterator<Item = PathBuf>) -> Options {
        self.locations.extend(locations);
        self
    }
}

/// The repository's root (examples, shipped policies and templates).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// A running server; [`TestServer::stop`] shuts it down gracefully.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    /// The platform the server serves (tests call use cases directly too).
    pub platform: Arc<Platform>,
    pub catalog: Arc<Catalog>,
    pub store: Store,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dir: tempfile::TempDir,
    database: Option<PgDatabase>,
    /// The database of the server this one is a replica of.
    shared_url: Option<String>,
}

impl TestServer {
    /// The catalogue alone. `None` when PostgreSQL is skipped.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        TestServer::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Option<TestServer> {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create("it").await?),
        };
        Some(TestServer::launch(backend, dir, database, None, options).await)
    }

    /// Another replica on this server's PostgreSQL database: its own
    /// platform (caches, leases, background work), data directory and
    /// port, the same store. Stopping it leaves the database to this server.
    pub async fn replica(&self, options: Options) -> TestServer {
        let url = self.database_url().expect("replicas share a PostgreSQL database").to_string();
        let dir = tempfile::TempDir::new().expect("temp dir");
        TestServer::launch(Backend::Postgres, dir, None, Some(url), options).await
    }

    /// Stops the server and starts a new one on the same store and data
    /// directory (what a restart or a second replica sees).
    pub async fn restart(self, options: Options) -> TestServer {
        let mut this = self;
        this.shutdown_and_wait().await;
        let dir = std::mem::replace(&mut this.dir, tempfile::TempDir::new().expect("temp dir"));
        let database = this.database.take();
        let shared_url = this.shared_url.take();
        let backend = this.backend;
        drop(this);
        TestServer::launch(backend, dir, database, shared_url, options).await
    }

    async fn launch(
        backend: Backend,
        dir: tempfile::TempDir,
        database: Option<PgDatabase>,
        shared_url: Option<String>,
        options: Options,
    ) -> TestServer {
        let data = dir.path().join("data");
        let url = database.as_ref().map(|d| d.url.clone()).or_else(|| shared_url.clone());
        let store = match url {
            None => Store::open_sqlite(&data).await.expect("open SQLite store"),
            Some(url) => Store::open(&StoreConfig::Postgres { url }).await.expect("open PostgreSQL store"),
        };
        let signals = options.signals.then(|| {
            let mut config = SignalsConfig {
                // The server listens on loopback only: local mode.
                outbound: Arc::new(plinth_confine::OutboundPolicy::default_for(true)),
                ..SignalsConfig::default()
            };
            if let Some(tweak) = options.signals_config {
                tweak(&mut config);
            }
            config
        });
        // Bound first, so an OpenID Connect redirect URI can name it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let mut auth = options.auth.unwrap_or_default();
        if let Some(oidc) = auth.oidc.as_mut().filter(|o| o.public_url.is_empty()) {
            oidc.public_url = format!("http://{address}");
        }
        let mut catalog_config = CatalogConfig::new(&data);
        if let Some(tweak) = options.catalog_config {
            tweak(&mut catalog_config);
        }
        let config = PlatformConfig {
            catalog: catalog_config,
            policy: options.policies.map(|sources| {
                let mut config = PolicyConfig::new(sources, data.clone());
                if let Some(tweak) = options.policy_config {
                    tweak(&mut config);
                }
                config
            }),
            golden_paths: options.scaffolder.then(|| {
                let mut config = GoldenPathsConfig::new(data.clone());
                if let Some(tweak) = options.golden_paths_config {
                    tweak(&mut config);
                }
                config
            }),
            signals,
            auth,
            lease: options.lease.unwrap_or_default(),
        };
        let platform = Platform::start(store.clone(), config).await.expect("start the platform");
        let catalog = platform.catalog_service().clone();
        let caller = plinth_app::Caller::system("test");
        for target in &options.locations {
            let location = plinth_app::catalog::NewLocation {
                kind: String::new(),
                target: target.to_string_lossy().to_string(),
                branch: None,
            };
            if let Err(error) = platform.catalog().ensure_location(&caller, location).await {
                panic!("registering {}: {}", target.display(), error.message);
            }
        }
        if let Ok(signals) = platform.signals().service() {
            // Attribution knows the catalogue before the first span arrives.
            signals.refresh_attribution();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_config = ServerConfig {
            webhook_secret: options.webhook_secret.map(Into::into),
            connections: options.connections.unwrap_or_default(),
        };
        let task = tokio::spawn(plinth_server::serve(listener, platform.clone(), server_config, async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().expect("client");
        TestServer {
            base: format!("http://{address}"),
            http,
            platform,
            catalog,
            store,
            backend,
            shutdown: Some(tx),
            task: Some(task),
            dir,
            database,
            shared_url,
        }
    }

    /// The policy service (the server must run it).
    pub fn policy(&self) -> &Arc<PolicyService> {
        self.platform.policy().service().expect("this server runs the policy service")
    }

    /// The golden-paths service (the server must run it).
    pub fn scaffolder(&self) -> &Arc<Scaffolder> {
        self.platform.golden_paths().service().expect("this server runs golden paths")
    }

    /// The signals service (the server must run it).
    pub fn signals(&self) -> &Arc<SignalsService> {
        self.platform.signals().service().expect("this server runs signals")
    }

    /// Shuts the server down; a server that does not stop fails the test.
    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(joined) => joined.expect("server task").expect("server stopped cleanly"),
                Err(_) => panic!("the server did not stop within 20 s of the shutdown signal"),
            }
            // As `plinth serve` does: the next server takes the leases at once.
            self.platform.leadership().release_all().await;
        }
    }

    /// The PostgreSQL URL of this server's database (`None` on SQLite).
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.url.as_str()).or(self.shared_url.as_deref())
    }

    /// The test's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's data directory (store, git checkouts, repositories).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().expect("server address")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Status and body (JSON when it parses, else a string).
    pub async fn body(response: reqwest::Response) -> (StatusCode, Value) {
        let status = response.status();
        let text = response.text().await.expect("response body");
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        TestServer::body(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    pub async fn get_q(&self, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        TestServer::body(self.http.get(self.url(path)).query(query).send().await.expect("GET")).await
    }

    /// GET that must answer 200.
    pub async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        TestServer::body(self.http.post(self.url(path)).json(body).send().await.expect("POST")).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        TestServer::body(self.http.delete(self.url(path)).send().await.expect("DELETE")).await
    }

    /// Registers a file or directory; returns the status and the answer.
    pub async fn register(&self, target: &Path) -> (StatusCode, Value) {
        self.post("/api/catalog/locations", &serde_json::json!({"type": "file", "target": target})).await
    }

    /// Registers a new file or directory, which must answer 201.
    pub async fn register_new(&self, target: &Path) -> Value {
        let (status, body) = self.register(target).await;
        assert_eq!(status, StatusCode::CREATED, "registering {}: {body}", target.display());
        body
    }

    /// Writes `content` to `name` under the test's scratch directory.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture directory");
        }
        std::fs::write(&path, content).expect("write fixture");
        path
    }

    /// GET with a query that must answer 200.
    pub async fn ok_q(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (status, body) = self.get_q(path, query).await;
        assert_eq!(status, StatusCode::OK, "GET {path} {query:?}: {body}");
        body
    }

    /// Status and body as text (pages, metrics).
    pub async fn text(&self, path: &str) -> (StatusCode, String) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status();
        (status, response.text().await.expect("text body"))
    }

    /// POST of raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let request = self.http.post(self.url(path)).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        TestServer::body(request.send().await.expect("POST")).await
    }

    /// POST of JSON with one extra header.
    pub async fn post_with_header(&self, path: &str, header: (&str, &str), body: &Value) -> (StatusCode, Value) {
        let request = self.http.post(self.url(path)).header(header.0, header.1).json(body);
        TestServer::body(request.send().await.expect("POST")).await
    }

    /// The entity `kind:default/name`, or `None` on 404.
    pub async fn entity(&self, kind: &str, name: &str) -> Option<Value> {
        let (status, body) = self.get(&format!("/api/catalog/entities/by-name/{kind}/default/{name}")).await;
        match status {
            StatusCode::OK => Some(body),
            StatusCode::NOT_FOUND => None,
            other => panic!("by-name {kind}/{name}: unexpected {other}: {body}"),
        }
    }

    /// The ingestion errors of one location.
    pub async fn errors_of(&self, location_id: &str) -> Vec<Value> {
        let body = self.ok_q("/api/catalog/errors", &[("location", location_id)]).await;
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// An unlabelled series from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (status, text) = self.text("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("metric {name} missing from /metrics:\n{text}"))
            .trim()
            .parse()
            .expect("numeric metric")
    }
}

/// Runs each named scenario `async fn name(backend: Backend)` twice, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Waits until `condition` holds, checking every 50 ms; panics naming
/// `what` after `limit` (a generous bound on a condition, not a timing
/// assertion).
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if condition().await {
            return;
        }
        assert!(started.elapsed() < limit, "{what} did not happen within {} s", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
