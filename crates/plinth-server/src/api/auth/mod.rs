//! `/api/auth`: who am I, and API tokens (issue, list, revoke); `/api/audit`:
//! the tamper-evident audit log (admins).

pub(crate) mod dto;

use self::dto::{AuditEntryDto, AuditPageDto, IssuedTokenDto, MeDto, NewTokenDto, TokenDto, TokensDto};
use crate::api::policy::parse_time;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::ApiParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use plinth_app::audit::{AuditQuery, MAX_AUDIT_PAGE};
use plinth_app::identity::{parse_lifetime, TokenRequest, TokenSubject};
use plinth_app::{AuthMode, Caller, Principal};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/me", get(me))
        .route("/api/auth/tokens", get(list_tokens).post(create_token))
        .route("/api/auth/tokens/{id}", delete(revoke_token))
        .route("/api/audit", get(audit))
}

/// `GET /api/auth/me`: who the server takes the caller to be.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, description = "The caller's identity, scopes and groups", body = MeDto)))]
pub(crate) async fn me(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Json<MeDto> {
    let kind = match &caller.principal {
        Principal::User { .. } => "user",
        Principal::Service { .. } => "service",
        Principal::Local => "local",
        Principal::Anonymous => "anonymous",
        Principal::System(_) => "system",
    };
    let groups = caller.user_ref().map(|user| app.platform.access().groups_of(user)).unwrap_or_default();
    Json(MeDto {
        actor: caller.actor(),
        kind: kind.into(),
        token_id: caller.token_id.clone(),
        scopes: caller.scopes.clone(),
        admin: caller.admin,
        groups,
        mode: match app.platform.auth_mode() {
            AuthMode::Local => "local".into(),
            AuthMode::Required => "required".into(),
        },
    })
}

/// `POST /api/auth/tokens`: issues a token; its secret is in this answer only.
#[utoipa::path(post, path = "/api/auth/tokens", tag = "auth", request_body = NewTokenDto,
    responses((status = 201, description = "The token, with its secret (shown once)", body = IssuedTokenDto),
              (status = 400, description = "A field is invalid", body = ErrorBody),
              (status = 409, description = "A token with that secret exists (retry)", body = ErrorBody)))]
pub(crate) async fn create_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<NewTokenDto>,
) -> ApiResult<(StatusCode, Json<IssuedTokenDto>)> {
    if let Some(user) = &body.user {
        crate::params::check_length("user", user, 512)?;
    }
    if body.scopes.len() > 6 {
        return Err(ApiError::bad_request("`scopes`: at most 6 (each scope once)"));
    }
    if let Some(expires) = &body.expires_in {
        // By characters: the value is arbitrary text, not necessarily ASCII.
        let mut chars = expires.chars();
        let unit = chars.next_back();
        let digits = chars.as_str();
        let well_formed = (1..=6).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && matches!(unit, Some('d' | 'h' | 'm' | 's'));
        if !well_formed {
            return Err(ApiError::bad_request(format!(
                "`expiresIn` must be a number and a unit, such as 90d, 12h or 30m, not `{}`",
                crate::params::shorten(expires)
            )));
        }
    }
    let subject = match (body.user, body.service) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give `user` or `service`, not both")),
        (Some(user), None) => TokenSubject::User(user),
        (None, Some(service)) => TokenSubject::Service(service),
        (None, None) => match caller.user_ref() {
            Some(user) => TokenSubject::User(user.to_string()),
            None => {
                return Err(ApiError::bad_request(
                    "say whose token this is: `user` (a user entity ref) or `service` (a name)",
                ))
            }
        },
    };
    let lifetime = body
        .expires_in
        .as_deref()
        .map(parse_lifetime)
        .transpose()
        .map_err(|e| ApiError::from(plinth_app::AppError::invalid_field("expiresIn", e)))?;
    let request = TokenRequest {
        name: body.name,
        subject,
        scopes: body.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        lifetime,
    };
    let issued = app.platform.tokens().create(&caller, request).await?;
    Ok((StatusCode::CREATED, Json(IssuedTokenDto { token: TokenDto::from(&issued.token), secret: issued.secret })))
}

/// `GET /api/auth/tokens[?all=true]`: the caller's tokens (admins: everyone's).
#[utoipa::path(get, path = "/api/auth/tokens", tag = "auth",
    params(("all" = Option<bool>, Query, description = "Every token (admins)")),
    responses((status = 200, description = "Tokens, newest first, without secrets", body = TokensDto)))]
pub(crate) async fn list_tokens(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<TokensDto>> {
    let all = params.choice("all", &["true", "false"])? == Some("true");
    let tokens = app.platform.tokens().list(&caller, all).await?;
    Ok(Json(TokensDto { items: tokens.iter().map(TokenDto::from).collect() }))
}

/// `DELETE /api/auth/tokens/{id}`: revokes a token; its next use is refused.
#[utoipa::path(delete, path = "/api/auth/tokens/{id}", tag = "auth",
    params(("id" = String, Path, max_length = 64)),
    responses((status = 200, description = "The revoked token", body = TokenDto),
              (status = 404, description = "No such token", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenDto>> {
    crate::params::check_length("id", &id, 64)?;
    let token = app.platform.tokens().revoke(&caller, &id).await?;
    Ok(Json(TokenDto::from(&token)))
}

/// `GET /api/audit`: the audit log, newest first (admins).
#[utoipa::path(get, path = "/api/audit", tag = "auth",
    params(("actor" = Option<String>, Query, max_length = 512, description = "`user:default/alice`, `service:ci`, …"),
           ("action" = Option<String>, Query, max_length = 128, description = "An action, or a prefix ending in `.*` (`catalog.*`)"),
           ("target" = Option<String>, Query, max_length = 1024),
           ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive"),
           ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Rows returned (default 100)"),
           ("cursor" = Option<String>, Query, pattern = "^[1-9][0-9]{0,17}$", description = "The `nextCursor` of the previous page")),
    responses((status = 200, description = "Audit rows, newest first", body = AuditPageDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn audit(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<AuditPageDto>> {
    for (key, max) in [("actor", 512), ("action", 128), ("target", 1024)] {
        if let Some(value) = params.typed(key) {
            crate::params::check_length(key, value, max)?;
        }
    }
    let action = params.typed("action").map(str::to_string);
    let (action, action_prefix) = match action {
        Some(a) if a.ends_with(".*") => (None, Some(a.trim_end_matches('*').to_string())),
        other => (other, None),
    };
    let cursor = match params.typed("cursor") {
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(|| {
            ApiError::bad_request("query parameter `cursor` is malformed; pass back `nextCursor` unchanged")
        })?),
        None => None,
    };
    let query = AuditQuery {
        actor: params.typed("actor").map(str::to_string),
        action,
        action_prefix,
        target: params.typed("target").map(str::to_string),
        from: parse_time(&params, "from")?,
        to: parse_time(&params, "to")?,
        before_seq: cursor,
        limit: params.int_or("limit", 1..=MAX_AUDIT_PAGE, 100)?,
    };
    let (rows, next) = app.platform.audit().entries(&caller, &query).await?;
    Ok(Json(AuditPageDto {
        items: rows.iter().map(AuditEntryDto::from).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}
