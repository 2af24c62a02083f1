//! `/api/policy`: decisions, the Kubernetes admission webhook, the decision
//! log, waivers, policies, and per-entity and per-team governance results.

use super::{PolicyService, RequestContext};
use crate::catalog_api::ref_from_path;
use crate::error::{parse_json, ApiError, ApiResult};
use crate::params::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use plinth_policy::{Outcome, Point, Waiver};
use plinth_store::DecisionQuery;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DEFAULT_DECISIONS: i64 = 50;
const MAX_DECISIONS: i64 = 1000;
/// Longest a waiver may run: exceptions are meant to end.
const MAX_WAIVER_DAYS: i64 = 366;
/// Kubernetes shows warnings up to this length.
const MAX_WARNING_CHARS: usize = 256;

fn service(app: &AppState) -> ApiResult<&Arc<PolicyService>> {
    app.config.policy.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        name: "ServiceUnavailableError",
        message: "the policy engine is not enabled on this server; start it with `plinth serve` (policies load from ./policies or --policy)".into(),
        details: None,
    })
}

/// Who is asking: the `X-Plinth-User` header until API tokens carry identity.
pub(crate) fn requester_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-plinth-user")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn requester(headers: &HeaderMap, fallback: Option<&str>) -> String {
    requester_header(headers).or_else(|| fallback.map(str::to_string)).unwrap_or_else(|| "anonymous".into())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// `catalog`, `provision`, `deploy`, `admission` or `pr`.
    point: String,
    /// The document the policies judge (`input` in Rego).
    #[schema(value_type = Object)]
    input: Value,
    #[serde(default)]
    context: RequestContext,
}

/// `POST /api/policy/evaluate`: one decision.
#[utoipa::path(post, path = "/api/policy/evaluate", tag = "policy", request_body = EvaluateRequest,
    responses((status = 200, description = "`{decisionId, point, result: allow|warn|deny, violations: [{policy, rule, kind, id, severity, controls, message, details, enforcement, effect, waiver, excepted}], policies, revision, durationUs}`", body = serde_json::Value),
              (status = 400, description = "Malformed request")))]
pub async fn evaluate(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let request: EvaluateRequest = parse_json(&body, "the body must be {\"point\", \"input\", \"context\"}")?;
    let point = Point::parse(&request.point).map_err(ApiError::bad_request)?;
    let requested_by = requester(&headers, request.context.user.as_deref());
    let (decision_id, decision) = service.decide(point, request.input, &request.context, &requested_by).await;
    let mut body = serde_json::to_value(&decision).unwrap_or(Value::Null);
    body["decisionId"] = json!(decision_id);
    Ok(Json(body))
}

/// `POST /api/policy/admission`: a Kubernetes validating admission webhook
/// (`AdmissionReview` v1). Denials become the rejection message, warnings
/// admission warnings; `?environment=` says which environment the cluster is.
#[utoipa::path(post, path = "/api/policy/admission", tag = "policy",
    params(("environment" = Option<String>, Query, description = "Environment of the cluster calling (e.g. production)")),
    request_body(content = serde_json::Value, description = "AdmissionReview v1 with `request`"),
    responses((status = 200, description = "AdmissionReview v1 with `response` {uid, allowed, status, warnings, auditAnnotations}", body = serde_json::Value),
              (status = 400, description = "Not an AdmissionReview v1 request")))]
pub async fn admission(State(app): State<AppState>, params: Params, body: Bytes) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let review: Value = parse_json(&body, "the body must be an AdmissionReview")?;
    let api_version = review.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if review.get("kind").and_then(Value::as_str) != Some("AdmissionReview") || api_version != "admission.k8s.io/v1" {
        return Err(ApiError::bad_request(format!(
            "expected kind AdmissionReview with apiVersion admission.k8s.io/v1, got kind {:?} apiVersion {api_version:?}; configure the ValidatingWebhookConfiguration with admissionReviewVersions: [\"v1\"]",
            review.get("kind").and_then(Value::as_str).unwrap_or("")
        )));
    }
    let Some(request) = review.get("request").filter(|r| r.is_object()) else {
        return Err(ApiError::bad_request("AdmissionReview has no `request` object"));
    };
    let Some(uid) = request.get("uid").and_then(Value::as_str).map(str::to_string) else {
        return Err(ApiError::bad_request("AdmissionReview request has no `uid`; the API server always sends one"));
    };
    let user = request.pointer("/userInfo/username").and_then(Value::as_str).map(str::to_string);
    let context = RequestContext {
        environment: params.one("environment").map(str::to_string),
        user: user.clone(),
        profile: None,
        entities: Vec::new(),
        pending: Vec::new(),
    };
    let input = json!({"review": request, "parameters": {}});
    let (decision_id, decision) =
        service.decide(Point::Admission, input, &context, user.as_deref().unwrap_or("kubernetes")).await;
    let allowed = decision.result != Outcome::Deny;
    let describe = |v: &plinth_policy::Violation| match &v.id {
        Some(id) => format!("[{id}] {}", v.message),
        None => v.message.clone(),
    };
    let warnings: Vec<String> = decision.warnings().map(|v| truncate(&describe(v), MAX_WARNING_CHARS)).collect();
    let mut response = json!({
        "uid": uid,
        "allowed": allowed,
        "auditAnnotations": {"plinth.io/decision-id": decision_id, "plinth.io/policy-revision": decision.revision},
    });
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    if !allowed {
        let reasons: Vec<String> = decision.denials().map(describe).collect();
        response["status"] = json!({
            "code": 403,
            "reason": "Forbidden",
            "message": format!("denied by Plinth policy (decision {decision_id}): {}", reasons.join("; ")),
        });
    }
    Ok(Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})))
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn parse_time(params: &Params, key: &str) -> ApiResult<Option<i64>> {
    params
        .one(key)
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339).map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64).map_err(|e| {
                ApiError::bad_request(format!("`{key}` must be an RFC 3339 time like 2026-11-24T10:00:00Z: {e}"))
            })
        })
        .transpose()
}

/// `GET /api/policy/decisions`: the decision log, newest first.
#[utoipa::path(get, path = "/api/policy/decisions", tag = "policy",
    params(("point" = Option<String>, Query), ("entity" = Option<String>, Query, description = "Entity ref involved"),
           ("result" = Option<String>, Query, description = "allow, warn or deny"),
           ("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Events returned (default 50)"), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{items: [OPA decision-log events], nextCursor}`", body = serde_json::Value)))]
pub async fn decisions(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let point = params
        .one("point")
        .map(|p| Point::parse(p).map(|p| p.as_str().to_string()))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let result = params
        .one("result")
        .map(|r| Outcome::parse(r).map(|r| r.as_str().to_string()))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let entity = params
        .one("entity")
        .map(|e| plinth_model::parse_ref_lenient(e, Some("component")).map(|r| r.key()))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let limit = params.int_or("limit", 1..=MAX_DECISIONS, DEFAULT_DECISIONS)?;
    let before = match params.one("cursor") {
        Some(cursor) => {
            let (ts, id) = cursor
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("`cursor` is malformed; pass back nextCursor unchanged"))?;
            Some((
                ts.parse::<i64>()
                    .map_err(|_| ApiError::bad_request("`cursor` is malformed; pass back nextCursor unchanged"))?,
                id.to_string(),
            ))
        }
        None => None,
    };
    let query = DecisionQuery {
        point,
        entity,
        result,
        from_ms: parse_time(&params, "from")?,
        to_ms: parse_time(&params, "to")?,
        before,
        limit: limit + 1,
    };
    let mut rows = service.store().query_decisions(&query).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|(ts, id, _)| format!("{ts}:{id}"))
    });
    let items: Vec<Value> = rows.iter().filter_map(|(_, _, event)| serde_json::from_str(event).ok()).collect();
    Ok(Json(json!({"items": items, "nextCursor": next.flatten()})))
}

/// `GET /api/policy/policies`: the loaded policies, rules, scorecards and
/// load problems.
#[utoipa::path(get, path = "/api/policy/policies", tag = "policy",
    responses((status = 200, description = "`{revision, loadedAt, sources, policies, scorecards, problems}`", body = serde_json::Value)))]
pub async fn policies(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let compiled = service.compiled();
    Ok(Json(json!({
        "revision": compiled.engine.revision(),
        "loadedAt": compiled.loaded_at.format(&Rfc3339).unwrap_or_default(),
        "sources": service.config().sources,
        "policies": compiled.engine.summaries(),
        "scorecards": compiled.scorecards,
        "problems": compiled.engine.problems(),
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWaiver {
    /// Who answers for the exception (user or group ref).
    owner: String,
    /// Why it is acceptable for now.
    reason: String,
    /// The entity it applies to.
    entity: String,
    /// Policy id (`PL-BASE-003`), `package.rule`, or package.
    rule: String,
    /// RFC 3339; at most a year ahead.
    expires_at: String,
}

/// `GET /api/policy/waivers`.
#[utoipa::path(get, path = "/api/policy/waivers", tag = "policy",
    responses((status = 200, description = "`{items: [waiver with active flag]}`", body = serde_json::Value)))]
pub async fn list_waivers(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let now = OffsetDateTime::now_utc();
    let items: Vec<Value> = service
        .waivers()
        .iter()
        .map(|w| {
            let mut v = serde_json::to_value(w).unwrap_or(Value::Null);
            v["active"] = json!(w.expires_at > now);
            v
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

/// `POST /api/policy/waivers`: grant a time-limited exception (audited).
#[utoipa::path(post, path = "/api/policy/waivers", tag = "policy", request_body = NewWaiver,
    responses((status = 201, description = "The waiver", body = serde_json::Value), (status = 400, description = "Invalid waiver")))]
pub async fn create_waiver(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let service = service(&app)?;
    let new: NewWaiver = parse_json(&body, "the body must be {owner, reason, entity, rule, expiresAt}")?;
    for (field, value) in [("owner", &new.owner), ("reason", &new.reason), ("rule", &new.rule)] {
        if value.trim().is_empty() {
            return Err(ApiError::bad_request(format!("`{field}` is required and must not be empty")));
        }
    }
    let entity = plinth_model::parse_ref_lenient(&new.entity, Some("component"))
        .map_err(|e| ApiError::bad_request(format!("`entity`: {e}")))?;
    let expires_at = OffsetDateTime::parse(&new.expires_at, &Rfc3339).map_err(|e| {
        ApiError::bad_request(format!("`expiresAt` must be an RFC 3339 time like 2027-01-31T00:00:00Z: {e}"))
    })?;
    let now = OffsetDateTime::now_utc();
    if expires_at <= now {
        return Err(ApiError::bad_request("`expiresAt` is in the past; a waiver must expire in the future"));
    }
    if expires_at > now + time::Duration::days(MAX_WAIVER_DAYS) {
        return Err(ApiError::bad_request(format!(
            "`expiresAt` is more than {MAX_WAIVER_DAYS} days away; waivers are temporary — renew it when it expires"
        )));
    }
    let waiver = Waiver {
        id: uuid::Uuid::new_v4().to_string(),
        owner: new.owner.trim().to_string(),
        reason: new.reason.trim().to_string(),
        entity: entity.key(),
        rule: new.rule.trim().to_string(),
        expires_at,
        created_by: requester(&headers, None),
        created_at: now,
    };
    service.add_waiver(&waiver).await.map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(target: "plinth::audit", waiver = %waiver.id, entity = %waiver.entity, rule = %waiver.rule, owner = %waiver.owner,
        created_by = %waiver.created_by, expires_at = %new.expires_at, "waiver granted");
    Ok((StatusCode::CREATED, Json(serde_json::to_value(&waiver).unwrap_or(Value::Null))))
}

/// `DELETE /api/policy/waivers/{id}`: revoke a waiver (audited).
#[utoipa::path(delete, path = "/api/policy/waivers/{id}", tag = "policy", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such waiver")))]
pub async fn delete_waiver(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let service = service(&app)?;
    if !service.remove_waiver(&id).await.map_err(|e| ApiError::internal(e.to_string()))? {
        return Err(ApiError::not_found(format!("no waiver with id {id}")));
    }
    tracing::info!(target: "plinth::audit", waiver = %id, by = %requester(&headers, None), "waiver revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/policy/entities/{kind}/{namespace}/{name}`: the entity's
/// catalog-point decision and scorecards.
#[utoipa::path(get, path = "/api/policy/entities/{kind}/{namespace}/{name}", tag = "policy",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "`{entityRef, decision, scorecards: [{scorecard, level, checks: [{id, title, level, passed, reasons}]}]}`", body = serde_json::Value),
              (status = 404, description = "No such entity")))]
pub async fn entity(
    State(app): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    match super::detail(service, &entity_ref.key()) {
        Some(governance) => Ok(Json(serde_json::to_value(&governance).unwrap_or(Value::Null))),
        None => Err(ApiError::not_found(format!("no entity {entity_ref} in the catalogue"))),
    }
}

/// `GET /api/policy/scorecards`: definitions and, per team, roll-ups.
#[utoipa::path(get, path = "/api/policy/scorecards", tag = "policy",
    params(("owner" = Option<String>, Query, description = "Only this team's roll-ups (group ref or name)")),
    responses((status = 200, description = "`{scorecards, teams: [{owner, scorecard, entities, levels, checks, score}], complete}`", body = serde_json::Value)))]
pub async fn scorecards(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let service = service(&app)?;
    let owner = params
        .one("owner")
        .map(|o| plinth_model::parse_ref_lenient(o, Some("group")).map(|r| r.key()))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let compiled = service.compiled();
    let view = service.view();
    Ok(Json(json!({
        "scorecards": compiled.scorecards,
        "teams": view.rollups(owner.as_deref(), &compiled.scorecards),
        "outcomes": view.outcome_counts(),
        "complete": view.complete,
    })))
}
