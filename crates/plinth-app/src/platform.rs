//! The platform: the catalogue and the capability services around it,
//! started together, reached through one value.

use plinth_catalog::{Catalog, CatalogConfig};
use plinth_store::Store;
use std::sync::Arc;

use crate::catalog::CatalogUseCases;
use crate::golden_paths::{GoldenPaths, GoldenPathsConfig, Scaffolder};
use crate::policy::{Policy, PolicyConfig, PolicyService};
use crate::signals::{Signals, SignalsConfig, SignalsService};
use crate::AppResult;

/// What to run: the catalogue always; each capability when configured.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub catalog: CatalogConfig,
    pub policy: Option<PolicyConfig>,
    pub golden_paths: Option<GoldenPathsConfig>,
    pub signals: Option<SignalsConfig>,
}

impl PlatformConfig {
    /// The catalogue alone, with its data under `data_dir`.
    pub fn catalog_only(data_dir: impl Into<std::path::PathBuf>) -> PlatformConfig {
        PlatformConfig { catalog: CatalogConfig::new(data_dir), policy: None, golden_paths: None, signals: None }
    }
}

/// Every capability of Plinth behind one value. Surfaces (HTTP, portal,
/// CLI, MCP) call its use cases: `platform.catalog()`, `.policy()`,
/// `.golden_paths()`, `.signals()`.
pub struct Platform {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) policy: Option<Arc<PolicyService>>,
    pub(crate) golden_paths: Option<Arc<Scaffolder>>,
    pub(crate) signals: Option<Arc<SignalsService>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("policy", &self.policy.is_some())
            .field("golden_paths", &self.golden_paths.is_some())
            .field("signals", &self.signals.is_some())
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// Opens the catalogue from the store and starts each configured
    /// capability with its background work (change-log follower, periodic
    /// refresh and resumption of cut-off refreshes; policy reload, decision
    /// log and governance view; the run sweeper; OTLP writers, compaction,
    /// retention and alerts).
    pub async fn start(store: Store, config: PlatformConfig) -> AppResult<Arc<Platform>> {
        let catalog = Catalog::open(store.clone(), config.catalog).await?;
        catalog.spawn_background();
        let policy = match config.policy {
            Some(policy) => Some(PolicyService::start(policy, store.clone(), catalog.clone()).await),
            None => None,
        };
        let golden_paths = match config.golden_paths {
            Some(golden_paths) => {
                Some(Scaffolder::start(golden_paths, store.clone(), catalog.clone(), policy.clone()).await)
            }
            None => None,
        };
        let signals = match config.signals {
            Some(signals) => Some(SignalsService::start(signals, store, catalog.clone()).await),
            None => None,
        };
        Ok(Arc::new(Platform { catalog, policy, golden_paths, signals }))
    }

    pub fn catalog(&self) -> CatalogUseCases<'_> {
        CatalogUseCases { platform: self }
    }

    pub fn policy(&self) -> Policy<'_> {
        Policy { platform: self }
    }

    pub fn golden_paths(&self) -> GoldenPaths<'_> {
        GoldenPaths { platform: self }
    }

    pub fn signals(&self) -> Signals<'_> {
        Signals { platform: self }
    }

    /// The catalogue service itself (operations metrics, tests, benches).
    pub fn catalog_service(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The store everything is kept in.
    pub fn store(&self) -> &Store {
        self.catalog.store()
    }

    /// Waits for what must be durable before the process ends (the
    /// decision log).
    pub async fn shutdown(&self) {
        if let Some(policy) = &self.policy {
            policy.flush_log().await;
        }
    }
}
