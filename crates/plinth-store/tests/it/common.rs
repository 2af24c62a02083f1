//! The harness every suite shares: a fresh store on the backend a scenario
//! runs on (plinth-testkit's `scenarios!` runs each on both), SQLite in a
//! temporary directory or PostgreSQL in a fresh database.

use plinth_store::{Store, StoreConfig};
use plinth_testkit::{Backend, PgDatabase};

/// A store under test, plus what it needs to be reopened and cleaned up.
pub(crate) struct Harness {
    pub store: Store,
    pub config: StoreConfig,
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

impl Harness {
    /// A fresh store on `backend` (`label` names the PostgreSQL database),
    /// or `None` (after a loud notice) when `PLINTH_SKIP_POSTGRES=1` skips
    /// the PostgreSQL scenarios.
    pub(crate) async fn open(backend: Backend, label: &str) -> Option<Harness> {
        match backend {
            Backend::Sqlite => Some(Harness::sqlite().await),
            Backend::Postgres => Harness::postgres(label).await,
        }
    }

    async fn sqlite() -> Harness {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let config = StoreConfig::Sqlite { data_dir: dir.path().join("data") };
        let store = Store::open(&config).await.expect("open SQLite store");
        Harness { store, config, _dir: Some(dir), _database: None }
    }

    async fn postgres(label: &str) -> Option<Harness> {
        let database = PgDatabase::create(label).await?;
        let config = StoreConfig::Postgres { url: database.url.clone() };
        let store = Store::open(&config).await.expect("open PostgreSQL store");
        Some(Harness { store, config, _dir: None, _database: Some(database) })
    }

    /// Opens the same store again (running the migrations again).
    pub(crate) async fn reopen(&self) -> Store {
        Store::open(&self.config).await.expect("reopen the store")
    }
}

/// Runs `sql` on the store's database over a connection of its own (as
/// someone with database access, not through the store, would).
pub(crate) async fn raw(config: &StoreConfig, sql: &str) {
    use sqlx::Connection;
    match config {
        StoreConfig::Sqlite { data_dir } => {
            let url = format!("sqlite://{}", data_dir.join("plinth.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        StoreConfig::Postgres { url } => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}
