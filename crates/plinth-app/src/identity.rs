//! API tokens: issued for a user or a service with scopes and an expiry,
//! 256 random bits, stored only as a SHA-256 hash and shown once. Each
//! process keeps the token table in memory and follows a fingerprint of it
//! (`crate::follow`, every [`POLL`]), so a token revoked on any replica
//! stops working there within one poll, and at once on the replica that
//! revoked it.

use parking_lot::{Mutex, RwLock};
use plinth_store::{NewAuditEntry, NewToken, Store, StoreError, TokenRow, TokensFingerprint};

pub use plinth_store::SubjectKind;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

use crate::access::{AccessControl, Permission, Resource};
use crate::audit::{AuditLog, AuditOutcome};
use crate::follow::Seen;
use crate::{AppError, AppResult, Caller, FieldError, Principal};

/// How often each process checks the token table for changes.
pub const POLL: Duration = crate::follow::POLL;
/// Every secret starts so, which makes leaked ones easy to scan for.
pub const SECRET_PREFIX: &str = "plinth_";
/// How long a token lives unless asked otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// The longest lifetime a token may be given.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// The scopes a token may carry.
pub const SCOPES: [&str; 6] = ["read", "write", "admin", "signals:ingest", "policy:check", "catalog:refresh"];
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Who a token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSubject {
    /// A user entity ref (`user:default/alice`).
    User(String),
    /// A service name (`otel-exporter`).
    Service(String),
}

impl TokenSubject {
    fn kind(&self) -> SubjectKind {
        match self {
            TokenSubject::User(_) => SubjectKind::User,
            TokenSubject::Service(_) => SubjectKind::Service,
        }
    }

    fn name(&self) -> &str {
        match self {
            TokenSubject::User(name) | TokenSubject::Service(name) => name,
        }
    }

    /// The actor a token of this subject acts as.
    pub fn actor(&self) -> String {
        match self {
            TokenSubject::User(entity_ref) => entity_ref.clone(),
            TokenSubject::Service(name) => format!("service:{name}"),
        }
    }
}

/// A token to issue.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub name: String,
    pub subject: TokenSubject,
    pub scopes: Vec<String>,
    /// `None`: [`DEFAULT_LIFETIME`].
    pub lifetime: Option<Duration>,
}

/// A token as listed: everything but its secret and hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub subject_kind: SubjectKind,
    pub subject: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<&TokenRow> for TokenInfo {
    fn from(row: &TokenRow) -> TokenInfo {
        TokenInfo {
            id: row.id.clone(),
            name: row.name.clone(),
            subject_kind: row.subject_kind,
            subject: row.subject.clone(),
            scopes: row.scopes.clone(),
            created_at: row.created_at,
            created_by: row.created_by.clone(),
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            revoked_by: row.revoked_by.clone(),
            last_used_at: row.last_used_at,
        }
    }
}

/// A token just issued: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: TokenInfo,
    pub secret: String,
}

/// Hex SHA-256 of a secret: what the store keeps. A token has 256 random
/// bits, so a fast hash is enough (no password stretching is needed).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> AppResult<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(format!("no randomness for a token: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Parses a lifetime: `90d`, `12h`, `30m`, `3600s`.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a lifetime; write e.g. 90d, 12h or 30m"))?;
    let seconds = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => return Err(format!("`{text}`: the unit must be d, h, m or s (e.g. 90d)")),
    };
    let lifetime = Duration::from_secs(seconds.ok_or_else(|| format!("`{text}` is too long"))?);
    if lifetime.is_zero() {
        return Err("a lifetime must be longer than zero".into());
    }
    Ok(lifetime)
}

/// Checks a request's fields; every problem, by field.
fn validate(request: &TokenRequest) -> Result<(), AppError> {
    let mut problems = Vec::new();
    let mut field = |field: &str, message: String| problems.push(FieldError { field: field.into(), message });
    if request.name.trim().is_empty() || request.name.chars().count() > 200 {
        field("name", "give the token a name of 1 to 200 characters (what it is for)".into());
    }
    match &request.subject {
        TokenSubject::User(entity_ref) => {
            if plinth_model::parse_entity_ref(
                entity_ref,
                plinth_model::RefContext { default_kind: None, default_namespace: plinth_model::DEFAULT_NAMESPACE },
            )
            .map(|r| !r.kind.eq_ignore_ascii_case("user"))
            .unwrap_or(true)
            {
                field("user", format!("`{entity_ref}` is not a user reference; write user:NAMESPACE/NAME"));
            }
        }
        TokenSubject::Service(name) => {
            if !plinth_model::is_valid_name(name) {
                field("service", format!("`{name}` is not a valid name (letters, digits, `-`, `_`, `.`; up to 63)"));
            }
        }
    }
    if request.scopes.is_empty() {
        field("scopes", format!("give at least one scope: {}", SCOPES.join(", ")));
    }
    for scope in &request.scopes {
        if !SCOPES.contains(&scope.as_str()) {
            field("scopes", format!("unknown scope `{scope}`; use {}", SCOPES.join(", ")));
        }
    }
    if matches!(request.subject, TokenSubject::Service(_)) && request.scopes.iter().any(|s| s == "admin") {
        field("scopes", "service tokens cannot be admins; give them only the scopes they use".into());
    }
    if request.lifetime.is_some_and(|l| l > MAX_LIFETIME) {
        field("expiresIn", "a token lives at most 366 days; issue a new one before it expires".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let message = problems.iter().map(|p| format!("`{}`: {}", p.field, p.message)).collect::<Vec<_>>().join("; ");
        Err(AppError::invalid(message).with_fields(problems))
    }
}

/// Issues a token straight against the store, with its audit row: how
/// `plinth token create` bootstraps the first admin without a server.
pub async fn issue_token(store: &Store, request: TokenRequest, created_by: &str) -> AppResult<IssuedToken> {
    validate(&request)?;
    let secret = new_secret()?;
    let now = OffsetDateTime::now_utc();
    let mut scopes = request.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let row = NewToken {
        id: format!("tok_{}", uuid::Uuid::now_v7().simple()),
        name: request.name.trim().to_string(),
        subject_kind: request.subject.kind(),
        subject: request.subject.name().to_string(),
        scopes,
        secret_hash: hash_secret(&secret),
        created_at: now,
        created_by: created_by.to_string(),
        expires_at: Some(now + request.lifetime.unwrap_or(DEFAULT_LIFETIME)),
    };
    store.create_token(&row).await.map_err(|e| match e {
        StoreError::Conflict(what) => AppError::conflict(what),
        other => other.into(),
    })?;
    let token = store.get_token(&row.id).await?.ok_or_else(|| AppError::internal("the token just stored is gone"))?;
    Ok(IssuedToken { token: TokenInfo::from(&token), secret })
}

/// The audit row of a token event written without a running platform.
pub fn token_audit_entry(actor: &str, action: &str, token: &TokenInfo) -> NewAuditEntry {
    NewAuditEntry {
        at: OffsetDateTime::now_utc(),
        actor: actor.to_string(),
        token_id: None,
        action: action.to_string(),
        target: token.id.clone(),
        outcome: AuditOutcome::Allowed,
        request_id: None,
        detail: json!({"name": token.name, "subject": token.subject, "subjectKind": token.subject_kind,
                       "scopes": token.scopes}),
    }
}

/// The tokens this process knows, by hash, following the store.
pub struct Identity {
    store: Store,
    tokens: RwLock<HashMap<String, Arc<TokenRow>>>,
    fingerprint: Seen<TokensFingerprint>,
    touched: Mutex<HashMap<String, std::time::Instant>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("tokens", &self.tokens.read().len()).finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the token table and starts following it.
    pub(crate) async fn start(store: Store) -> AppResult<Arc<Identity>> {
        let identity = Arc::new(Identity {
            store,
            tokens: RwLock::new(HashMap::new()),
            fingerprint: Seen::new(),
            touched: Mutex::new(HashMap::new()),
        });
        identity.reload_if_changed().await?;
        crate::follow::follow(&identity, "tokens", |identity| async move { identity.reload_if_changed().await });
        Ok(identity)
    }

    async fn reload_if_changed(&self) -> AppResult<()> {
        let fingerprint = self.store.tokens_fingerprint().await?;
        if self.fingerprint.is(&fingerprint) {
            return Ok(());
        }
        let rows = self.store.all_tokens().await?;
        let map = rows.into_iter().map(|row| (row.secret_hash.clone(), Arc::new(row))).collect();
        *self.tokens.write() = map;
        self.fingerprint.set(fingerprint);
        Ok(())
    }

    /// The caller a bearer secret stands for, or why it does not count.
    pub(crate) async fn authenticate(&self, secret: &str, access: &AccessControl) -> AppResult<Caller> {
        let hash = hash_secret(secret);
        let cached = self.tokens.read().get(&hash).cloned();
        let token = match cached {
            Some(token) => token,
            // Issued on another replica since the last poll, or unknown.
            None => match self.store.token_by_hash(&hash).await? {
                Some(row) => {
                    let row = Arc::new(row);
                    self.tokens.write().insert(hash, row.clone());
                    row
                }
                None => return Err(AppError::unauthenticated("the token is not valid; check it or issue a new one")),
            },
        };
        let now = OffsetDateTime::now_utc();
        if let Some(at) = token.revoked_at {
            return Err(AppError::unauthenticated(format!(
                "token {} was revoked at {}; issue a new one",
                token.id,
                rfc3339(at)
            )));
        }
        if let Some(at) = token.expires_at.filter(|at| *at <= now) {
            return Err(AppError::unauthenticated(format!(
                "token {} expired at {}; issue a new one",
                token.id,
                rfc3339(at)
            )));
        }
        self.touch(&token.id, now);
        let mut caller = match token.subject_kind {
            SubjectKind::User => {
                let admin = token.scopes.iter().any(|s| s == "admin") || access.is_admin_user(&token.subject);
                Caller::user(token.subject.clone(), token.scopes.clone(), admin)
            }
            SubjectKind::Service => Caller::service(token.subject.clone(), token.scopes.clone()),
        };
        caller.token_id = Some(token.id.clone());
        Ok(caller)
    }

    /// Records the token's last use, at most once a minute.
    fn touch(&self, id: &str, now: OffsetDateTime) {
        {
            let mut touched = self.touched.lock();
            if touched.get(id).is_some_and(|at| at.elapsed() < TOUCH_EVERY) {
                return;
            }
            if touched.len() > 100_000 {
                touched.clear();
            }
            touched.insert(id.to_string(), std::time::Instant::now());
        }
        let (store, id) = (self.store.clone(), id.to_string());
        tokio::spawn(async move {
            if let Err(error) = store.touch_token(&id, now).await {
                tracing::debug!(%error, token = %id, "token last use not recorded");
            }
        });
    }

    /// Forgets the cached table so the next poll reloads it (after a
    /// revocation here, so it takes effect on the next request).
    pub(crate) fn revoked(&self, hash: &str, at: OffsetDateTime, by: &str) {
        if let Some(row) = self.tokens.write().get_mut(hash) {
            let mut updated = (**row).clone();
            updated.revoked_at = Some(at);
            updated.revoked_by = Some(by.to_string());
            *row = Arc::new(updated);
        }
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Token use cases.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) access: &'a AccessControl,
    pub(crate) audit: &'a AuditLog,
}

impl<'a> Tokens<'a> {
    /// Issues a token. A user may issue tokens for themself with at most
    /// their own scopes; admins for anyone and for services.
    pub async fn create(&self, caller: &Caller, request: TokenRequest) -> AppResult<IssuedToken> {
        let subject = request.subject.actor();
        self.access.check(caller, Permission::AuthTokenCreate, &Resource::of_subject("new token", &subject))?;
        if !matches!(caller.principal, Principal::Local | Principal::System(_)) && !caller.admin {
            if let Some(extra) = request.scopes.iter().find(|s| !grants(&caller.scopes, s)) {
                let error = AppError::forbidden(format!(
                    "{} may not issue a token with scope `{extra}`: a token gets at most its creator's scopes",
                    caller.actor()
                ));
                self.audit
                    .record(caller, "auth.token.create", &subject, AuditOutcome::Denied, json!({"scope": extra}))
                    .await;
                return Err(error);
            }
        }
        let issued = issue_token(&self.identity.store, request, &caller.actor()).await?;
        self.audit
            .record(
                caller,
                "auth.token.create",
                &issued.token.id,
                AuditOutcome::Allowed,
                json!({"name": issued.token.name, "subject": issued.token.subject, "scopes": issued.token.scopes}),
            )
            .await;
        Ok(issued)
    }

    /// The caller's tokens; admins see everyone's with `all`.
    pub async fn list(&self, caller: &Caller, all: bool) -> AppResult<Vec<TokenInfo>> {
        if all {
            self.access.check(caller, Permission::AuthTokenList, &Resource::of_subject("tokens", "*"))?;
            let rows = self.identity.store.list_tokens(None).await?;
            return Ok(rows.iter().map(TokenInfo::from).collect());
        }
        let actor = caller.actor();
        self.access.check(caller, Permission::AuthTokenList, &Resource::of_subject("tokens", &actor))?;
        let rows = match &caller.principal {
            Principal::User { entity_ref } => {
                self.identity.store.list_tokens(Some((SubjectKind::User, entity_ref))).await?
            }
            Principal::Service { name } => self.identity.store.list_tokens(Some((SubjectKind::Service, name))).await?,
            _ => self.identity.store.list_tokens(None).await?,
        };
        Ok(rows.iter().map(TokenInfo::from).collect())
    }

    /// Revokes a token: the next request with it is refused.
    pub async fn revoke(&self, caller: &Caller, id: &str) -> AppResult<TokenInfo> {
        let row = self
            .identity
            .store
            .get_token(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no token `{id}`; `plinth token ls` lists the ids")))?;
        let subject = match row.subject_kind {
            SubjectKind::User => row.subject.clone(),
            SubjectKind::Service => format!("service:{}", row.subject),
        };
        self.access.check(caller, Permission::AuthTokenRevoke, &Resource::of_subject(id, subject))?;
        let now = OffsetDateTime::now_utc();
        let revoked = self.identity.store.revoke_token(id, now, &caller.actor()).await?;
        if !revoked {
            return Err(AppError::conflict(format!("token `{id}` is already revoked")));
        }
        self.identity.revoked(&row.secret_hash, now, &caller.actor());
        self.audit.record(caller, "auth.token.revoke", id, AuditOutcome::Allowed, json!({"name": row.name})).await;
        let row = self.identity.store.get_token(id).await?.unwrap_or(row);
        Ok(TokenInfo::from(&row))
    }
}

/// Whether holding `held` scopes covers `wanted` (as the access rules'
/// `implied` table says).
fn grants(held: &[String], wanted: &str) -> bool {
    held.iter().any(|h| {
        h == wanted
            || h == "admin"
            || (h == "write" && matches!(wanted, "read" | "signals:ingest" | "policy:check" | "catalog:refresh"))
            || (h == "read" && wanted == "policy:check")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_lifetime("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_lifetime("30m"), Ok(Duration::from_secs(1_800)));
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("90").unwrap_err().contains("unit"));
        assert!(parse_lifetime("d").is_err());
        assert!(parse_lifetime("9\u{80}").is_err(), "a non-ASCII unit is refused, not split mid-character");
        assert!(parse_lifetime("99999999999999999999d").is_err());
    }

    #[test]
    fn secrets_have_256_bits_and_a_prefix() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43, "32 bytes in unpadded base64url");
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let bad = TokenRequest {
            name: " ".into(),
            subject: TokenSubject::Service("otel exporter".into()),
            scopes: vec!["admin".into(), "root".into()],
            lifetime: Some(Duration::from_secs(400 * 86_400)),
        };
        let error = validate(&bad).unwrap_err();
        let fields: Vec<&str> = error.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "service", "scopes", "scopes", "expiresIn"]);
        let user = TokenRequest {
            name: "laptop".into(),
            subject: TokenSubject::User("group:default/team".into()),
            scopes: vec!["read".into()],
            lifetime: None,
        };
        assert_eq!(validate(&user).unwrap_err().fields[0].field, "user");
    }

    #[test]
    fn a_token_gets_at_most_its_creators_scopes() {
        let write = vec!["write".to_string()];
        assert!(grants(&write, "read") && grants(&write, "signals:ingest") && !grants(&write, "admin"));
        assert!(!grants(&["read".to_string()], "write"));
        assert!(grants(&["admin".to_string()], "write"));
    }
}
