//! The harness every store suite shares: each test body runs against SQLite
//! (in a temporary directory) and PostgreSQL (a fresh database per test).
//!
//! PostgreSQL comes from `PLINTH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); set
//! `PLINTH_SKIP_POSTGRES=1` to skip those tests when no server is available.

use plinth_store::{Store, StoreConfig};
use plinth_testkit::PgDatabase;

/// A store under test, plus what it needs to be reopened and cleaned up.
pub struct Harness {
    pub store: Store,
    pub config: StoreConfig,
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

impl Harness {
    /// Opens the same store again (running the migrations again).
    #[allow(dead_code)] // not every suite reopens
    pub async fn reopen(&self) -> Store {
        Store::open(&self.config).await.expect("reopen the store")
    }
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let config = StoreConfig::Sqlite { data_dir: dir.path().join("data") };
    let store = Store::open(&config).await.expect("open SQLite store");
    Harness { store, config, _dir: Some(dir), _database: None }
}

/// A fresh PostgreSQL database (named after `label`) with the store open on
/// it, or `None` (after a loud notice) when `PLINTH_SKIP_POSTGRES=1` is set.
pub async fn postgres(label: &str) -> Option<Harness> {
    let database = PgDatabase::create(label).await?;
    let config = StoreConfig::Postgres { url: database.url.clone() };
    let store = Store::open(&config).await.expect("open PostgreSQL store");
    Some(Harness { store, config, _dir: None, _database: Some(database) })
}

/// Declares each test body (`async fn name(h: &Harness)`) once per backend;
/// `label` names the PostgreSQL databases.
#[macro_export]
macro_rules! on_both_backends {
    ($label:literal: $($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let harness = $crate::common::sqlite().await;
                    super::$name(&harness).await;
                }
            )*
        }
        mod postgres {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(harness) = $crate::common::postgres($label).await else { return };
                    super::$name(&harness).await;
                }
            )*
        }
    };
}
