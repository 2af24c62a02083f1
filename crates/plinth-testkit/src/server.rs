//! A whole Plinth server in the test process, on a loopback port, with its
//! own store (SQLite in a temporary directory, or a fresh PostgreSQL
//! database), its own data directory, and the services a test asks for.

use plinth_catalog::{Catalog, CatalogConfig};
use plinth_server::policy::{PolicyConfig, PolicyService};
use plinth_server::scaffolder::{Scaffolder, ScaffolderConfig};
use plinth_server::signals::{SignalsConfig, SignalsService};
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
    pub connections: Option<ConnectionLimits>,
    pub webhook_secret: Option<String>,
}

/// A running server; [`TestServer::stop`] shuts it down gracefully.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub catalog: Arc<Catalog>,
    pub store: Store,
    pub policy: Option<Arc<PolicyService>>,
    pub scaffolder: Option<Arc<Scaffolder>>,
    pub signals: Option<Arc<SignalsService>>,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dir: tempfile::TempDir,
    _database: Option<PgDatabase>,
}

impl TestServer {
    /// The catalogue alone. `None` when PostgreSQL is skipped.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        TestServer::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Option<TestServer> {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let data = dir.path().join("data");
        let (store, database) = match backend {
            Backend::Sqlite => (Store::open_sqlite(&data).await.expect("open SQLite store"), None),
            Backend::Postgres => {
                let database = PgDatabase::create("it").await?;
                let config = StoreConfig::Postgres { url: database.url.clone() };
                (Store::open(&config).await.expect("open PostgreSQL store"), Some(database))
            }
        };
        let catalog = Catalog::open(store.clone(), CatalogConfig::new(&data)).await.expect("open the catalogue");
        catalog.spawn_background();
        let policy = match options.policies {
            Some(sources) => Some(
                PolicyService::start(PolicyConfig::new(sources, data.clone()), store.clone(), catalog.clone()).await,
            ),
            None => None,
        };
        let scaffolder = if options.scaffolder {
            Some(
                Scaffolder::start(ScaffolderConfig::new(data.clone()), store.clone(), catalog.clone(), policy.clone())
                    .await,
            )
        } else {
            None
        };
        let signals = if options.signals {
            let mut config = SignalsConfig {
                // The server listens on loopback only: local mode.
                outbound: Arc::new(plinth_confine::OutboundPolicy::default_for(true)),
                ..SignalsConfig::default()
            };
            if let Some(tweak) = options.signals_config {
                tweak(&mut config);
            }
            Some(SignalsService::start(config, store.clone(), catalog.clone()).await)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_config = ServerConfig {
            webhook_secret: options.webhook_secret.map(Into::into),
            policy: policy.clone(),
            scaffolder: scaffolder.clone(),
            signals: signals.clone(),
            connections: options.connections.unwrap_or_default(),
        };
        let task = tokio::spawn(plinth_server::serve(listener, catalog.clone(), server_config, async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build().expect("client");
        Some(TestServer {
            base: format!("http://{address}"),
            http,
            catalog,
            store,
            policy,
            scaffolder,
            signals,
            backend,
            shutdown: Some(tx),
            task: Some(task),
            dir,
            _database: database,
        })
    }

    /// Shuts the server down; a server that does not stop fails the test.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Ok(joined) => joined.expect("server task").expect("server stopped cleanly"),
                Err(_) => panic!("the server did not stop within 20 s of the shutdown signal"),
            }
        }
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
