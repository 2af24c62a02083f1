//! Request and response bodies of the identity and audit API.

use plinth_app::audit::AuditEntry;
use plinth_app::identity::TokenInfo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::rfc3339;

/// `POST /api/auth/tokens`: a token for the caller (`user` omitted), for
/// another user or for a service (admins).
#[derive(Deserialize, ToSchema)]
#[schema(as = NewToken)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewTokenDto {
    /// What the token is for ("CI deploys", "laptop").
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// A user entity ref; the caller when neither this nor `service` is given.
    #[schema(max_length = 512)]
    pub user: Option<String>,
    /// A service name (admins only).
    #[schema(max_length = 63)]
    pub service: Option<String>,
    /// `read`, `write`, `admin`, `signals:ingest`, `policy:check`, `catalog:refresh`.
    #[schema(min_items = 1, max_items = 6)]
    pub scopes: Vec<ScopeName>,
    /// `90d`, `12h`, `30m` (default 90d, at most 366d).
    #[schema(pattern = r"^[0-9]{1,6}[dhms]$")]
    pub expires_in: Option<String>,
}

/// A token scope.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeName {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "signals:ingest")]
    SignalsIngest,
    #[serde(rename = "policy:check")]
    PolicyCheck,
    #[serde(rename = "catalog:refresh")]
    CatalogRefresh,
}

impl ScopeName {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ScopeName::Read => "read",
            ScopeName::Write => "write",
            ScopeName::Admin => "admin",
            ScopeName::SignalsIngest => "signals:ingest",
            ScopeName::PolicyCheck => "policy:check",
            ScopeName::CatalogRefresh => "catalog:refresh",
        }
    }
}

/// A token, without its secret.
#[derive(Serialize, ToSchema)]
#[schema(as = Token)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenDto {
    pub id: String,
    pub name: String,
    /// `user` or `service`.
    pub subject_kind: String,
    pub subject: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&TokenInfo> for TokenDto {
    fn from(t: &TokenInfo) -> TokenDto {
        TokenDto {
            id: t.id.clone(),
            name: t.name.clone(),
            subject_kind: t.subject_kind.as_str().to_string(),
            subject: t.subject.clone(),
            scopes: t.scopes.clone(),
            created_at: rfc3339(t.created_at),
            created_by: t.created_by.clone(),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
            revoked_by: t.revoked_by.clone(),
            last_used_at: t.last_used_at.map(rfc3339),
        }
    }
}

/// A token just issued: `secret` is shown this once.
#[derive(Serialize, ToSchema)]
#[schema(as = IssuedToken)]
pub(crate) struct IssuedTokenDto {
    pub token: TokenDto,
    /// Send as `Authorization: Bearer <secret>`; it is not stored and
    /// cannot be shown again.
    pub secret: String,
}

/// `GET /api/auth/tokens`.
#[derive(Serialize, ToSchema)]
#[schema(as = TokenList)]
pub(crate) struct TokensDto {
    pub items: Vec<TokenDto>,
}

/// `GET /api/auth/me`: who the server takes the caller to be.
#[derive(Serialize, ToSchema)]
#[schema(as = Me)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeDto {
    /// `user:default/alice`, `service:ci`, `local` or `anonymous`.
    pub actor: String,
    /// `user`, `service`, `local` or `anonymous`.
    pub kind: String,
    pub token_id: Option<String>,
    pub scopes: Vec<String>,
    pub admin: bool,
    /// The user's groups: `memberOf` and every ancestor group.
    pub groups: Vec<String>,
    /// `local` (no auth configured) or `required`.
    pub mode: String,
}

/// One audit row.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEntry)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditEntryDto {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub token_id: Option<String>,
    pub action: String,
    pub target: String,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The hash of the row before (the chain `plinth audit verify` walks).
    pub prev_hash: String,
    pub hash: String,
}

impl From<&AuditEntry> for AuditEntryDto {
    fn from(e: &AuditEntry) -> AuditEntryDto {
        AuditEntryDto {
            seq: e.seq,
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            token_id: e.token_id.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.as_str().to_string(),
            request_id: e.request_id.clone(),
            detail: e.detail.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// `GET /api/audit`: newest first; pass `nextCursor` back as `cursor`.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditPage)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditPageDto {
    pub items: Vec<AuditEntryDto>,
    pub next_cursor: Option<String>,
}
