//! The platform: the catalogue and the capability services around it,
//! started together, reached through one value.

use plinth_catalog::{Catalog, CatalogConfig};
use plinth_store::Store;
use std::sync::Arc;

use crate::access::{AccessControl, AuthMode};
use crate::audit::{Audit, AuditLog};
use crate::catalog::CatalogUseCases;
use crate::golden_paths::{GoldenPaths, GoldenPathsConfig, Scaffolder};
use crate::identity::{Identity, Tokens};
use crate::policy::{Policy, PolicyConfig, PolicyService};
use crate::signals::{Signals, SignalsConfig, SignalsService};
use crate::{AppError, AppResult, Caller};

/// What to run: the catalogue always; each capability when configured.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub catalog: CatalogConfig,
    pub policy: Option<PolicyConfig>,
    pub golden_paths: Option<GoldenPathsConfig>,
    pub signals: Option<SignalsConfig>,
    pub auth: AuthConfig,
}

/// Identity, access rules and the audit log.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// A directory of access rules (`package plinth.access`) replacing the
    /// shipped ones.
    pub access_rules: Option<std::path::PathBuf>,
    /// Groups whose members (and members of their child groups) are
    /// platform admins.
    pub admin_groups: Vec<String>,
    /// Audit rows older than this are deleted (with a chained marker row).
    pub audit_retention: Option<std::time::Duration>,
    /// Where callers other than admins may register sources from.
    pub sources: crate::access::SourcePolicy,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Local,
            access_rules: None,
            admin_groups: Vec::new(),
            audit_retention: None,
            sources: crate::access::SourcePolicy::default(),
        }
    }
}

impl PlatformConfig {
    /// The catalogue alone, with its data under `data_dir`.
    pub fn catalog_only(data_dir: impl Into<std::path::PathBuf>) -> PlatformConfig {
        PlatformConfig {
            catalog: CatalogConfig::new(data_dir),
            policy: None,
            golden_paths: None,
            signals: None,
            auth: AuthConfig::default(),
        }
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
    pub(crate) access: Arc<AccessControl>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) identity: Arc<Identity>,
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
        let rules = match &config.auth.access_rules {
            Some(dir) => plinth_policy::AccessPolicy::from_dir(dir),
            None => plinth_policy::AccessPolicy::builtin(),
        }
        .map_err(|e| AppError::invalid(format!("the access rules do not load: {e}")))?;
        let catalog = Catalog::open(store.clone(), config.catalog).await?;
        catalog.spawn_background();
        let audit = AuditLog::start(store.clone(), config.auth.audit_retention);
        let access = Arc::new(AccessControl::new(
            config.auth.mode,
            rules,
            catalog.clone(),
            audit.clone(),
            config.auth.admin_groups,
            config.auth.sources,
        ));
        let identity = Identity::start(store.clone()).await?;
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
        Ok(Arc::new(Platform { catalog, policy, golden_paths, signals, access, audit, identity }))
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

    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { identity: &self.identity, access: &self.access, audit: &self.audit }
    }

    pub fn audit(&self) -> Audit<'_> {
        Audit { log: &self.audit, access: &self.access }
    }

    /// The access rules (the portal asks them what to show).
    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    /// How identity is enforced.
    pub fn auth_mode(&self) -> AuthMode {
        self.access.mode()
    }

    /// The caller a bearer token stands for; 401 when it is unknown,
    /// expired or revoked (the failure is audited).
    pub async fn authenticate(&self, secret: &str, mut unverified: Caller) -> AppResult<Caller> {
        match self.identity.authenticate(secret, &self.access).await {
            Ok(mut caller) => {
                caller.address = unverified.address;
                caller.request_id = unverified.request_id.take();
                caller.claimed_name = unverified.claimed_name.take();
                Ok(caller)
            }
            Err(error) => {
                let detail = serde_json::json!({"reason": error.message});
                self.audit
                    .record(&unverified, "auth.authenticate", "", crate::audit::AuditOutcome::Denied, detail)
                    .await;
                Err(error)
            }
        }
    }

    /// Records an event in the audit log and waits until it is stored.
    pub async fn record(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        outcome: crate::audit::AuditOutcome,
        detail: serde_json::Value,
    ) {
        self.audit.record(caller, action, target, outcome, detail).await;
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
