//! Plinth's additions beside Backstage's catalog API: impact analysis,
//! neighbourhood graphs, ranked search with facets, ingestion errors, and
//! the git webhook.

use crate::catalog_api::{not_found, ref_from_path};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use hmac::{Hmac, Mac};
use plinth_catalog::{Direction, EntityFilter, RelId};
use serde_json::{json, Value};
use sha2::Sha256;

const DEFAULT_IMPACT_LIMIT: usize = 100;
const MAX_IMPACT_LIMIT: usize = 10_000;
const MAX_IMPACT_DEPTH: u32 = 1_000;
const MAX_NEIGHBOURHOOD_DEPTH: u32 = 6;
const DEFAULT_SEARCH_LIMIT: usize = 20;
const MAX_SEARCH_LIMIT: usize = 500;
const MAX_NEIGHBOURHOOD_NODES: usize = 2_000;
const DEFAULT_NEIGHBOURHOOD_NODES: usize = 200;

/// `GET /api/catalog/impact/{kind}/{namespace}/{name}`: everything that
/// depends on the entity (or that it depends on), transitively.
#[utoipa::path(get, path = "/api/catalog/impact/{kind}/{namespace}/{name}", tag = "plinth",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path),
           ("direction" = Option<String>, Query, description = "`dependents` (default) or `dependencies`"),
           ("maxDepth" = Option<u32>, Query, minimum = 1, maximum = 1000),
           ("limit" = Option<usize>, Query, minimum = 0, maximum = 10_000, description = "Items returned (default 100); `count` is always the full count")),
    responses((status = 200, description = "`{entityRef, direction, count, items: [{entityRef, depth, path}], cycles}`, nearest first", body = serde_json::Value),
              (status = 404, description = "No such entity")))]
pub async fn impact(
    State(app): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let direction = match params.one("direction").unwrap_or("dependents") {
        "dependents" => Direction::Dependents,
        "dependencies" => Direction::Dependencies,
        other => {
            return Err(ApiError::bad_request(format!(
                "direction must be `dependents` or `dependencies`, not `{other}`"
            )))
        }
    };
    let max_depth = params.int("maxDepth", 1..=MAX_IMPACT_DEPTH)?;
    let limit = params.int_or("limit", 0..=MAX_IMPACT_LIMIT, DEFAULT_IMPACT_LIMIT)?;
    let state = app.catalog.read();
    let impact = state.impact(&entity_ref.key(), direction, max_depth).ok_or_else(|| not_found(&entity_ref))?;
    let start_ref = state.get(&entity_ref.key()).map(|r| r.entity_ref.to_string()).unwrap_or_default();
    let items: Vec<Value> = impact
        .reached
        .iter()
        .take(limit)
        .map(|reached| {
            let path: Vec<&str> = impact.path(reached.node).into_iter().map(|n| state.ref_of(n)).collect();
            json!({"entityRef": state.ref_of(reached.node), "depth": reached.depth, "path": path})
        })
        .collect();
    let cycles: Vec<Vec<&str>> =
        impact.cycles.iter().map(|cycle| cycle.iter().map(|n| state.ref_of(*n)).collect()).collect();
    let direction_name = match direction {
        Direction::Dependents => "dependents",
        Direction::Dependencies => "dependencies",
    };
    Ok(Json(json!({
        "entityRef": start_ref,
        "direction": direction_name,
        "count": impact.reached.len(),
        "maxDepthReached": impact.truncated_by_depth,
        "items": items,
        "cycles": cycles,
    })))
}

/// `GET /api/catalog/neighbourhood/{kind}/{namespace}/{name}?depth=2`:
/// nodes and edges within N hops, for drawing graphs.
#[utoipa::path(get, path = "/api/catalog/neighbourhood/{kind}/{namespace}/{name}", tag = "plinth",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path),
           ("depth" = Option<u32>, Query, minimum = 0, maximum = 6, description = "Hops (default 1, at most 6)"),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 2000, description = "Most nodes returned (default 200, at most 2000)"),
           ("relation" = Option<Vec<String>>, Query, description = "Only these relation types (either direction)")),
    responses((status = 200, description = "`{root, nodes, edges, truncated}`", body = serde_json::Value), (status = 404, description = "No such entity")))]
pub async fn neighbourhood(
    State(app): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let depth = params.int_or("depth", 0..=MAX_NEIGHBOURHOOD_DEPTH, 1)?;
    let limit = params.int_or("limit", 1..=MAX_NEIGHBOURHOOD_NODES, DEFAULT_NEIGHBOURHOOD_NODES)?;
    let relations: Vec<RelId> = params
        .all("relation")
        .iter()
        .map(|r| {
            plinth_model::canonical_relation(r)
                .and_then(RelId::of)
                .ok_or_else(|| ApiError::bad_request(format!("unknown relation type `{r}`")))
        })
        .collect::<ApiResult<_>>()?;
    let state = app.catalog.read();
    let root = state
        .node_of(&entity_ref.key())
        .filter(|n| state.entity(*n).is_some())
        .ok_or_else(|| not_found(&entity_ref))?;
    let filter = (!relations.is_empty()).then_some(relations.as_slice());
    let (nodes, truncated) = state.graph().neighbourhood(root, depth, limit, filter);
    let included: std::collections::HashSet<u32> = nodes.iter().map(|(n, _)| *n).collect();
    let mut edges = Vec::new();
    let mut node_values = Vec::with_capacity(nodes.len());
    for (node, distance) in &nodes {
        let mut hidden = 0usize;
        for edge in state.graph().edges(*node) {
            if let Some(filter) = filter {
                if !filter.contains(&edge.rel) && !filter.contains(&edge.rel.inverse()) {
                    continue;
                }
            }
            if !included.contains(&edge.to) {
                hidden += 1;
                continue;
            }
            if edge.rel.is_canonical() {
                edges.push(
                    json!({"source": state.ref_of(*node), "type": edge.rel.name(), "target": state.ref_of(edge.to)}),
                );
            }
        }
        let mut value = json!({"entityRef": state.ref_of(*node), "distance": distance, "hiddenRelations": hidden});
        match state.entity(*node) {
            Some(record) => value["summary"] = json!(record.summary),
            None => value["missing"] = json!(true),
        }
        node_values.push(value);
    }
    edges.sort_by_cached_key(|edge| edge.to_string());
    edges.dedup();
    Ok(Json(
        json!({"root": state.ref_of(root), "depth": depth, "nodes": node_values, "edges": edges, "truncated": truncated}),
    ))
}

/// Facets returned with search results.
pub const SEARCH_FACETS: &[&str] =
    &["kind", "spec.type", "spec.owner", "spec.lifecycle", "metadata.tags", "metadata.namespace"];

/// `GET /api/catalog/search?q=…`: ranked full-text search with facet counts
/// over all hits; `filter` narrows as in by-query.
#[utoipa::path(get, path = "/api/catalog/search", tag = "plinth",
    params(("q" = String, Query), ("filter" = Option<Vec<String>>, Query),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 500, description = "Hits returned (default 20)"),
           ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000, description = "Hits skipped; ranked results go 10,000 deep")),
    responses((status = 200, description = "`{query, totalItems, items: [{entityRef, score, summary}], facets}`", body = serde_json::Value)))]
pub async fn search(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let query = params.one("q").unwrap_or("").trim().to_string();
    let limit = params.int_or("limit", 1..=MAX_SEARCH_LIMIT, DEFAULT_SEARCH_LIMIT)?;
    let offset = params.int_or("offset", 0..=plinth_catalog::MAX_SEARCH_DEPTH, 0)?;
    let filter = EntityFilter::parse(&params.all("filter")).map_err(ApiError::bad_request)?;
    if query.is_empty() {
        return Err(ApiError::bad_request("give a search text in `q`, e.g. `/api/catalog/search?q=checkout`"));
    }
    // Rank more than a page when filtering, so filtered pages stay full.
    let window = if filter.is_empty() { offset + limit } else { (offset + limit).max(2_000) };
    let window = window.min(plinth_catalog::MAX_SEARCH_DEPTH + MAX_SEARCH_LIMIT);
    let (hits, all) =
        app.catalog.search_index().search(&query, 0, window).map_err(|e| ApiError::internal(e.to_string()))?;
    let state = app.catalog.read();
    let matched =
        if filter.is_empty() { all & state.live() } else { state.filters().matching(&filter, &(all & state.live())) };
    let items: Vec<Value> = hits
        .iter()
        .filter(|h| matched.contains(h.id))
        .skip(offset)
        .take(limit)
        .filter_map(|h| state.entity(h.id).map(|r| (h, r)))
        .map(|(hit, record)| json!({"entityRef": record.entity_ref.to_string(), "score": hit.score, "summary": record.summary}))
        .collect();
    let mut facets = serde_json::Map::new();
    for facet in SEARCH_FACETS {
        let counts: Vec<Value> =
            state.facet(facet, &matched).into_iter().take(50).map(|(v, c)| json!({"value": v, "count": c})).collect();
        facets.insert(facet.to_string(), Value::Array(counts));
    }
    Ok(Json(json!({"query": query, "totalItems": matched.len(), "items": items, "facets": facets})))
}

/// `GET /api/catalog/errors[?location=ID][&entityRef=REF]`: ingestion
/// problems, each with its file, line, field and how to fix it.
#[utoipa::path(get, path = "/api/catalog/errors", tag = "plinth",
    params(("location" = Option<String>, Query), ("entityRef" = Option<String>, Query)),
    responses((status = 200, description = "`{items: [{locationId, severity, location, line, entityRef, field, message}]}`", body = serde_json::Value)))]
pub async fn errors(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let mut errors = app.catalog.store().list_errors().await.map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(location) = params.one("location") {
        errors.retain(|e| e.location_id == location);
    }
    if let Some(entity_ref) = params.one("entityRef") {
        let wanted =
            plinth_model::parse_ref_lenient(entity_ref, Some("component")).map_err(ApiError::bad_request)?.key();
        errors.retain(|e| e.diagnostic.entity_ref.as_deref().is_some_and(|r| r.to_lowercase() == wanted));
    }
    Ok(Json(json!({"totalItems": errors.len(), "items": errors})))
}

/// `POST /api/catalog/webhook`: a GitHub or GitLab push event, or
/// `{"repository": URL, "branch": NAME}`; refreshes the matching git
/// locations and returns what changed.
#[utoipa::path(post, path = "/api/catalog/webhook", tag = "plinth", request_body = serde_json::Value,
    responses((status = 200, description = "`{repositories, branch, refreshed: [report]}`", body = serde_json::Value),
              (status = 401, description = "Bad signature or token")))]
pub async fn webhook(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    if let Some(secret) = &app.config.webhook_secret {
        verify_webhook(&headers, &body, secrecy::ExposeSecret::expose_secret(secret))?;
    }
    let event = headers
        .get("x-github-event")
        .or_else(|| headers.get("x-gitlab-event"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if event == "ping" {
        return Ok(Json(json!({"ok": true, "event": "ping"})));
    }
    let payload: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("webhook body is not JSON: {e}")))?;
    let (urls, branch) = push_target(&payload);
    if urls.is_empty() {
        return Err(ApiError::bad_request(
            "webhook names no repository; send a GitHub or GitLab push event, or {\"repository\": URL, \"branch\": NAME}",
        ));
    }
    let reports = app.catalog.refresh_repositories(&urls, branch.as_deref()).await?;
    Ok(Json(json!({"repositories": urls, "branch": branch, "refreshed": reports})))
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
            for key in ["clone_url", "html_url", "ssh_url", "git_url", "url", "git_http_url", "git_ssh_url", "homepage"]
            {
                if let Some(v) = repo.get(key) {
                    add(v);
                }
            }
        }
        _ => {}
    }
    for key in ["git_http_url", "git_ssh_url", "web_url", "http_url"] {
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
