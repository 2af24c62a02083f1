//! Plinth's additions beside Backstage's catalog API: impact analysis,
//! neighbourhood graphs, ranked search with facets, ingestion errors, and
//! the git webhook (GitHub HMAC or GitLab token checked here, at the edge).

use super::backstage::ref_from_path;
use super::dto::{
    DiagnosticDto, ErrorsDto, ImpactDto, NeighbourhoodDto, RefreshReportDto, SearchDto, WebhookDto, WebhookPayload,
    PROJECT_KEYS, REPOSITORY_KEYS,
};
use crate::api::schema::{EntityRefText, ImpactDirection, RelationType};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::ApiParams;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use hmac::{Hmac, Mac};
use plinth_app::catalog::{Direction, MAX_SEARCH_DEPTH};
use plinth_app::catalog::{
    SearchQuery, MAX_IMPACT_DEPTH, MAX_IMPACT_ITEMS, MAX_NEIGHBOURHOOD_DEPTH, MAX_NEIGHBOURHOOD_NODES, MAX_SEARCH_LIMIT,
};
use plinth_app::Caller;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::Sha256;

const DEFAULT_IMPACT_LIMIT: usize = 100;
const DEFAULT_NEIGHBOURHOOD_NODES: usize = 200;
const DEFAULT_SEARCH_LIMIT: usize = 20;

/// `GET /api/catalog/impact/{kind}/{namespace}/{name}`: everything that
/// depends on the entity (or that it depends on), transitively.
#[utoipa::path(get, path = "/api/catalog/impact/{kind}/{namespace}/{name}", tag = "plinth",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path),
           ("direction" = Option<ImpactDirection>, Query, description = "`dependents` (default) or `dependencies`"),
           ("maxDepth" = Option<u32>, Query, minimum = 1, maximum = 1000),
           ("limit" = Option<usize>, Query, minimum = 0, maximum = 10_000, description = "Items returned (default 100); `count` is always the full count")),
    responses((status = 200, description = "Nearest first, with paths and cycles", body = ImpactDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn impact(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<ImpactDto>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let direction = match params.choice("direction", &["dependents", "dependencies"])? {
        None | Some("dependents") => Direction::Dependents,
        Some(_) => Direction::Dependencies,
    };
    let max_depth = params.int("maxDepth", 1..=MAX_IMPACT_DEPTH)?;
    let limit = params.int_or("limit", 0..=MAX_IMPACT_ITEMS, DEFAULT_IMPACT_LIMIT)?;
    let answer = app.platform.catalog().impact(&caller, &entity_ref, direction, max_depth, limit)?;
    Ok(Json(answer.into()))
}

/// `GET /api/catalog/neighbourhood/{kind}/{namespace}/{name}?depth=2`:
/// nodes and edges within N hops, for drawing graphs.
#[utoipa::path(get, path = "/api/catalog/neighbourhood/{kind}/{namespace}/{name}", tag = "plinth",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path),
           ("depth" = Option<u32>, Query, minimum = 0, maximum = 6, description = "Hops (default 1, at most 6)"),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 2000, description = "Most nodes returned (default 200, at most 2000)"),
           ("relation" = Option<Vec<RelationType>>, Query, description = "Only these relation types (either direction)")),
    responses((status = 200, description = "Nodes and edges", body = NeighbourhoodDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn neighbourhood(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<NeighbourhoodDto>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let depth = params.int_or("depth", 0..=MAX_NEIGHBOURHOOD_DEPTH, 1)?;
    let limit = params.int_or("limit", 1..=MAX_NEIGHBOURHOOD_NODES, DEFAULT_NEIGHBOURHOOD_NODES)?;
    let answer =
        app.platform.catalog().neighbourhood(&caller, &entity_ref, depth, limit, &params.typed_all("relation"))?;
    Ok(Json(answer.into()))
}

/// `GET /api/catalog/search?q=…`: ranked full-text search with facet counts
/// over all hits; `filter` narrows as in by-query.
#[utoipa::path(get, path = "/api/catalog/search", tag = "plinth",
    params(("q" = String, Query, pattern = r"\S", description = "Words (not only whitespace); the last one also matches as a prefix"), ("filter" = Option<Vec<String>>, Query),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 500, description = "Hits returned (default 20)"),
           ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000, description = "Hits skipped; ranked results go 10,000 deep")),
    responses((status = 200, description = "Ranked hits and facets", body = SearchDto),
              (status = 400, description = "No text, or a parameter is invalid", body = ErrorBody)))]
pub(crate) async fn search(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<SearchDto>> {
    let query = SearchQuery {
        text: params.typed("q").unwrap_or("").to_string(),
        filter: params.all("filter"),
        limit: params.int_or("limit", 1..=MAX_SEARCH_LIMIT, DEFAULT_SEARCH_LIMIT)?,
        offset: params.int_or("offset", 0..=MAX_SEARCH_DEPTH, 0)?,
    };
    Ok(Json(app.platform.catalog().search(&caller, &query)?.into()))
}

/// `GET /api/catalog/errors[?location=ID][&entityRef=REF]`: ingestion
/// problems, each with its file, line, field and how to fix it.
#[utoipa::path(get, path = "/api/catalog/errors", tag = "plinth",
    params(("location" = Option<String>, Query, description = "A location id"),
           ("entityRef" = Option<EntityRefText>, Query, description = "Only this entity's problems (the kind defaults to Component)")),
    responses((status = 200, description = "Problems with file, line, field and fix", body = ErrorsDto),
              (status = 400, description = "A malformed ref", body = ErrorBody)))]
pub(crate) async fn errors(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<ErrorsDto>> {
    let entity =
        params.typed("entityRef").map(|r| crate::params::entity_ref(r, Some("component"), "entityRef")).transpose()?;
    let errors = app.platform.catalog().errors(&caller, params.one("location"), entity.as_ref()).await?;
    Ok(Json(ErrorsDto { total_items: errors.len(), items: errors.iter().map(DiagnosticDto::from).collect() }))
}

/// `POST /api/catalog/webhook`: a GitHub or GitLab push event, or
/// `{"repository": URL, "branch": NAME}`; refreshes the matching git
/// locations and returns what changed.
#[utoipa::path(post, path = "/api/catalog/webhook", tag = "plinth",
    request_body(content = WebhookPayload, description = "A GitHub or GitLab push event, or `{repository, branch}`"),
    responses((status = 200, description = "What was refreshed", body = WebhookDto),
              (status = 400, description = "Not JSON, or no repository named", body = ErrorBody),
              (status = 401, description = "Bad signature or token", body = ErrorBody)))]
pub(crate) async fn webhook(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookDto>> {
    // A signed push is Plinth's own business (a refresh); without a
    // secret the caller needs a token with `catalog:refresh`.
    let caller = match &app.config.webhook_secret {
        Some(secret) => {
            verify_webhook(&headers, &body, secret.expose_secret())?;
            let mut system = Caller::system("webhook");
            system.request_id = caller.request_id.clone();
            system.address = caller.address;
            system
        }
        None => caller,
    };
    let event = headers
        .get("x-github-event")
        .or_else(|| headers.get("x-gitlab-event"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if event == "ping" {
        return Ok(Json(WebhookDto {
            repositories: Vec::new(),
            branch: None,
            refreshed: Vec::new(),
            event: Some("ping".into()),
        }));
    }
    let payload: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("webhook body is not JSON: {e}")))?;
    let (urls, branch) = push_target(&payload);
    let reports = app.platform.catalog().refresh_repositories(&caller, &urls, branch.as_deref()).await?;
    Ok(Json(WebhookDto {
        repositories: urls,
        branch,
        refreshed: reports.iter().map(RefreshReportDto::from).collect(),
        event: None,
    }))
}

/// Repository URLs and branch named by a GitHub push, a GitLab push, or the
/// plain form.
fn push_target(payload: &Value) -> (Vec<String>, Option<String>) {
    let mut urls = Vec::new();
    let mut add = |v: &Value| {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            urls.push(s.to_string());
        }
    };
    match &payload["repository"] {
        Value::String(_) => add(&payload["repository"]),
        Value::Object(repo) => {
            for key in REPOSITORY_KEYS {
                if let Some(v) = repo.get(key) {
                    add(v);
                }
            }
        }
        _ => {}
    }
    for key in PROJECT_KEYS {
        add(&payload["project"][key]);
    }
    add(&payload["url"]);
    let branch = payload["branch"]
        .as_str()
        .map(str::to_string)
        .or_else(|| payload["ref"].as_str().map(|r| r.strip_prefix("refs/heads/").unwrap_or(r).to_string()));
    (urls, branch)
}

fn verify_webhook(headers: &HeaderMap, body: &[u8], secret: &str) -> ApiResult<()> {
    if let Some(token) = headers.get("x-gitlab-token").and_then(|v| v.to_str().ok()) {
        return if constant_time_eq(token.as_bytes(), secret.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("X-Gitlab-Token does not match the configured webhook secret"))
        };
    }
    if let Some(signature) = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()) {
        let expected = signature.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()).unwrap_or_default();
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| ApiError::internal(e.to_string()))?;
        mac.update(body);
        return mac.verify_slice(&expected).map_err(|_| {
            ApiError::unauthorized("X-Hub-Signature-256 does not match the body and the configured webhook secret")
        });
    }
    Err(ApiError::unauthorized(
        "this server requires a signed webhook: set the secret in GitHub (X-Hub-Signature-256) or GitLab (X-Gitlab-Token)",
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_payloads() {
        let github = json!({"ref": "refs/heads/main", "repository": {"clone_url": "https://github.com/o/r.git", "ssh_url": "git@github.com:o/r.git"}});
        let (urls, branch) = push_target(&github);
        assert_eq!(urls, ["https://github.com/o/r.git", "git@github.com:o/r.git"]);
        assert_eq!(branch.as_deref(), Some("main"));
        let gitlab = json!({"ref": "refs/heads/dev", "project": {"git_http_url": "https://gitlab.com/o/r.git"}});
        let (urls, branch) = push_target(&gitlab);
        assert_eq!(urls, ["https://gitlab.com/o/r.git"]);
        assert_eq!(branch.as_deref(), Some("dev"));
        let plain = json!({"repository": "/srv/repo", "branch": "main"});
        assert_eq!(push_target(&plain), (vec!["/srv/repo".to_string()], Some("main".to_string())));
    }

    #[test]
    fn signatures() {
        let mut headers = HeaderMap::new();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{}");
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        headers.insert("x-hub-signature-256", sig.parse().unwrap());
        assert!(verify_webhook(&headers, b"{}", "s3cret").is_ok());
        assert!(verify_webhook(&headers, b"{ }", "s3cret").is_err());
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-token", "s3cret".parse().unwrap());
        assert!(verify_webhook(&headers, b"", "s3cret").is_ok());
        assert!(verify_webhook(&HeaderMap::new(), b"", "s3cret").is_err());
    }
}
