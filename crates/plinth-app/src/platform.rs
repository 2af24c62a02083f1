//! The platform: the catalogue and the capability services around it,
//! started together, reached through one value.

use plinth_catalog::{Catalog, CatalogConfig};
use plinth_store::Store;
use std::sync::Arc;

use crate::access::{AccessControl, AuthMode};
use crate::audit::{Audit, AuditLog};
use crate::background::{Background, ForegroundGuard};
use crate::catalog::CatalogUseCases;
use crate::golden_paths::{GoldenPaths, GoldenPathsConfig, Scaffolder};
use crate::identity::{Identity, Tokens};
use crate::lease::{Leadership, LeaseConfig};
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
    /// How replicas choose the one that runs each cluster-wide job.
    pub lease: LeaseConfig,
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
    /// An OpenID Connect provider for sign-in and bearer JWTs.
    pub oidc: Option<crate::oidc::OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Local,
            access_rules: None,
            admin_groups: Vec::new(),
            audit_retention: None,
            sources: crate::access::SourcePolicy::default(),
            oidc: None,
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
            lease: LeaseConfig::default(),
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
    pub(crate) oidc: Option<Arc<crate::oidc::Oidc>>,
    pub(crate) background: Arc<Background>,
    pub(crate) leadership: Arc<Leadership>,
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
        let background =
            Background::new().map_err(|e| AppError::internal(format!("cannot start the background threads: {e}")))?;
        crate::catalog::docs::use_git_checkouts(config.catalog.data_dir.join("git"));
        let catalog = Catalog::open(store.clone(), config.catalog).await?;
        catalog.spawn_follower();
        let leadership = Leadership::start(store.clone(), &config.lease);
        crate::catalog::spawn_refresh(&catalog, &leadership);
        let audit = AuditLog::start(store.clone(), config.auth.audit_retention, &leadership);
        let access = Arc::new(AccessControl::new(
            config.auth.mode,
            rules,
            catalog.clone(),
            audit.clone(),
            config.auth.admin_groups,
            config.auth.sources,
        ));
        let identity = Identity::start(store.clone()).await?;
        let oidc = match config.auth.oidc {
            Some(oidc) => Some(crate::oidc::Oidc::discover(oidc).await?),
            None => None,
        };
        let policy = match config.policy {
            Some(policy) => Some(
                PolicyService::start(policy, store.clone(), catalog.clone(), background.clone(), leadership.clone())
                    .await,
            ),
            None => None,
        };
        let golden_paths = match config.golden_paths {
            Some(golden_paths) => {
                Some(Scaffolder::start(golden_paths, store.clone(), catalog.clone(), policy.clone(), &leadership).await)
            }
            None => None,
        };
        let signals = match config.signals {
            Some(signals) => Some(SignalsService::start(signals, store, catalog.clone(), leadership.clone()).await),
            None => None,
        };
        if let Some(policy) = &policy {
            crate::policy::waivers::follow(policy);
        }
        Ok(Arc::new(Platform {
            catalog,
            policy,
            golden_paths,
            signals,
            access,
            audit,
            identity,
            oidc,
            background,
            leadership,
        }))
    }

    /// Marks a request in flight: background work (the governance view)
    /// runs one slice at a time until it and the others end.
    pub fn foreground(&self) -> ForegroundGuard {
        self.background.foreground()
    }

    /// The background pool (its counters are in `/metrics`).
    pub fn background(&self) -> &Background {
        &self.background
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
        let verified = match &self.oidc {
            Some(oidc) if crate::oidc::looks_like_jwt(secret) => match oidc.verify(secret, None).await {
                Ok(claims) => Ok(self.oidc_caller(&claims)),
                Err(error) => Err(error),
            },
            _ => self.identity.authenticate(secret, &self.access).await,
        };
        match verified {
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

    /// The OpenID Connect provider, when one is configured.
    pub fn oidc(&self) -> Option<&Arc<crate::oidc::Oidc>> {
        self.oidc.as_ref()
    }

    /// The caller an OpenID Connect identity stands for: the `User` entity
    /// whose `spec.profile.email` is the (verified) email claim, else the
    /// one named by `preferred_username`; a user the catalogue does not
    /// know is signed in with no groups.
    fn oidc_caller(&self, claims: &crate::oidc::Claims) -> Caller {
        let entity_ref = self.user_for(claims);
        let admin = self.access.is_admin_user(&entity_ref);
        let mut scopes = vec!["read".to_string(), "write".to_string()];
        if admin {
            scopes.push("admin".into());
        }
        Caller::user(entity_ref, scopes, admin)
    }

    fn user_for(&self, claims: &crate::oidc::Claims) -> String {
        let state = self.catalog.read();
        let users = || state.entities().filter(|r| r.summary.kind.eq_ignore_ascii_case("user"));
        if let Some(email) = claims.email.as_deref().filter(|_| claims.email_verified != Some(false)) {
            let email = email.to_lowercase();
            let found = users().find(|r| {
                serde_json::from_str::<serde_json::Value>(&r.body).ok().is_some_and(|body| {
                    body["spec"]["profile"]["email"].as_str().is_some_and(|e| e.to_lowercase() == email)
                })
            });
            if let Some(record) = found {
                return record.entity_ref.to_string();
            }
        }
        let name = claims.preferred_username.clone().unwrap_or_else(|| {
            claims.email.as_deref().and_then(|e| e.split('@').next()).unwrap_or(&claims.sub).to_string()
        });
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' })
            .take(63)
            .collect();
        format!("user:default/{}", name.to_lowercase())
    }

    /// Finishes an OpenID Connect sign-in: the code is exchanged, the ID
    /// token verified (nonce included), and a 12-hour session token issued
    /// for the user; returns the caller and the session secret.
    pub async fn sign_in_with_oidc(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        mut unverified: Caller,
    ) -> AppResult<(Caller, String)> {
        let oidc =
            self.oidc.as_ref().ok_or_else(|| AppError::unavailable("no OpenID Connect provider is configured"))?;
        let claims = match oidc.exchange(code, verifier, nonce).await {
            Ok(claims) => claims,
            Err(error) => {
                let detail = serde_json::json!({"reason": error.message});
                self.audit
                    .record(&unverified, "auth.sign_in", "oidc", crate::audit::AuditOutcome::Denied, detail)
                    .await;
                return Err(error);
            }
        };
        let mut caller = self.oidc_caller(&claims);
        let request = crate::identity::TokenRequest {
            name: "portal session (OpenID Connect)".into(),
            subject: crate::identity::TokenSubject::User(caller.actor()),
            scopes: caller.scopes.clone(),
            lifetime: Some(std::time::Duration::from_secs(12 * 3600)),
        };
        let issued = crate::identity::issue_token(self.store(), request, "oidc").await?;
        caller.token_id = Some(issued.token.id.clone());
        caller.request_id = unverified.request_id.take();
        caller.address = unverified.address;
        let detail = serde_json::json!({"sub": claims.sub, "email": claims.email, "session": issued.token.id});
        self.audit.record(&caller, "auth.sign_in", "oidc", crate::audit::AuditOutcome::Allowed, detail).await;
        Ok((caller, issued.secret))
    }

    /// Ends a portal session: its token is revoked.
    pub async fn sign_out(&self, caller: &Caller) {
        // Only a session the sign-in issued ends with it; a token the user
        // pasted in stays theirs.
        let session = match &caller.token_id {
            Some(id) => self.store().get_token(id).await.ok().flatten().filter(|t| t.created_by == "oidc"),
            None => None,
        };
        if let Some(token) = session {
            let now = time::OffsetDateTime::now_utc();
            match self.store().revoke_token(&token.id, now, &caller.actor()).await {
                Ok(_) => self.identity.revoked(&token.secret_hash, now, &caller.actor()),
                Err(error) => tracing::warn!(%error, "the session token could not be revoked at sign-out"),
            }
        }
        self.audit
            .record(caller, "auth.sign_out", "portal", crate::audit::AuditOutcome::Allowed, serde_json::json!({}))
            .await;
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

    /// This replica's part in choosing who runs each cluster-wide job.
    pub fn leadership(&self) -> &Arc<Leadership> {
        &self.leadership
    }

    /// The store everything is kept in.
    pub fn store(&self) -> &Store {
        self.catalog.store()
    }

    /// Waits for what must be durable before the process ends (the
    /// decision log), and releases this replica's leases so another takes
    /// its cluster-wide jobs over at once.
    pub async fn shutdown(&self) {
        if let Some(policy) = &self.policy {
            policy.flush_log().await;
        }
        self.leadership.release_all().await;
    }
}
