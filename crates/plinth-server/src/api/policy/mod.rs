//! `/api/policy`: decisions, the Kubernetes admission webhook, the decision
//! log, waivers, policies, and per-entity and per-team governance results.

pub(crate) mod dto;

use self::dto::{
    AdmissionResponse, AdmissionReview, AdmissionReviewRequest, AdmissionStatus, DecisionDto, DecisionsDto,
    EntityGovernanceDto, EvaluateRequest, NewWaiverDto, PoliciesDto, PolicyStatusDto, ScorecardsDto, WaiverDto,
    WaiversDto, ADMISSION_API_VERSION, ADMISSION_KIND,
};
use crate::api::catalog::ref_from_path;
use crate::api::schema::{EntityRefText, OutcomeName, PointName};
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{ApiParams, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use plinth_app::policy::{AdmissionRequest, DecisionFilter, NewWaiver, MAX_DECISIONS};
use plinth_app::Caller;
use plinth_policy::{Outcome, Point};
use serde_json::Value;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DEFAULT_DECISIONS: i64 = 50;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/evaluate", post(evaluate))
        .route("/admission", post(admission))
        .route("/decisions", get(decisions))
        .route("/policies", get(policies))
        .route("/waivers", get(list_waivers).post(create_waiver))
        .route("/waivers/{id}", delete(delete_waiver))
        .route("/entities/{kind}/{namespace}/{name}", get(entity))
        .route("/scorecards", get(scorecards))
        .route("/status", get(status))
}

/// `POST /api/policy/evaluate`: one decision.
#[utoipa::path(post, path = "/api/policy/evaluate", tag = "policy", request_body = EvaluateRequest,
    responses((status = 200, description = "The decision, logged under `decisionId`", body = DecisionDto),
              (status = 400, description = "Malformed request, unknown point, or a whole AdmissionReview as the input", body = ErrorBody)))]
pub(crate) async fn evaluate(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<EvaluateRequest>,
) -> ApiResult<Json<DecisionDto>> {
    let point = Point::parse(&request.point).map_err(ApiError::bad_request)?;
    let logged = app.platform.policy().evaluate(&caller, point, request.input, request.context.into()).await?;
    Ok(Json(DecisionDto::new(&logged.decision, Some(logged.decision_id))))
}

/// `POST /api/policy/admission`: a Kubernetes validating admission webhook
/// (`AdmissionReview` v1). Denials become the rejection message, warnings
/// admission warnings; `?environment=` says which environment the cluster is.
#[utoipa::path(post, path = "/api/policy/admission", tag = "policy",
    params(("environment" = Option<String>, Query, description = "Environment of the cluster calling (e.g. production)")),
    request_body(content = AdmissionReviewRequest, description = "AdmissionReview v1 with `request`"),
    responses((status = 200, description = "AdmissionReview v1 with `response`", body = AdmissionReview),
              (status = 400, description = "Not an AdmissionReview v1 request", body = ErrorBody)))]
pub(crate) async fn admission(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
    JsonBody(AdmissionReviewRequest(mut review)): JsonBody<AdmissionReviewRequest>,
) -> ApiResult<Json<AdmissionReview>> {
    let api_version = review.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if review.get("kind").and_then(Value::as_str) != Some(ADMISSION_KIND) || api_version != ADMISSION_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "expected kind AdmissionReview with apiVersion admission.k8s.io/v1, got kind {:?} apiVersion {:?}; configure the ValidatingWebhookConfiguration with admissionReviewVersions: [\"v1\"]",
            crate::params::shorten(review.get("kind").and_then(Value::as_str).unwrap_or("")),
            crate::params::shorten(api_version),
        )));
    }
    let Some(request) = review.get("request").filter(|r| r.is_object()) else {
        return Err(ApiError::bad_request("AdmissionReview has no `request` object"));
    };
    let Some(uid) = request.get("uid").and_then(Value::as_str).map(str::to_string) else {
        return Err(ApiError::bad_request("AdmissionReview request has no `uid`; the API server always sends one"));
    };
    if request.get("userInfo").is_some_and(|u| !u.is_object()) {
        return Err(ApiError::bad_request("AdmissionReview request.userInfo must be an object"));
    }
    let user = match request.pointer("/userInfo/username") {
        None => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(ApiError::bad_request("AdmissionReview request.userInfo.username must be a string")),
    };
    // The request itself, not a copy: it is the bulk of the body.
    let request = review.get_mut("request").map(Value::take).unwrap_or_default();
    let verdict = app
        .platform
        .policy()
        .admission(
            &caller,
            AdmissionRequest { uid, user, request, environment: params.one("environment").map(str::to_string) },
        )
        .await?;
    let response = AdmissionResponse {
        uid: verdict.uid,
        allowed: verdict.allowed,
        status: verdict.denial.map(|message| AdmissionStatus { code: 403, reason: "Forbidden".into(), message }),
        warnings: verdict.warnings,
        audit_annotations: BTreeMap::from([
            ("plinth.io/decision-id".to_string(), verdict.decision_id),
            ("plinth.io/policy-revision".to_string(), verdict.revision),
        ]),
    };
    Ok(Json(AdmissionReview {
        api_version: ADMISSION_API_VERSION.into(),
        kind: ADMISSION_KIND.into(),
        request: None,
        response: Some(response),
    }))
}

pub(crate) fn parse_time(params: &Params, key: &str) -> ApiResult<Option<OffsetDateTime>> {
    params
        .typed(key)
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
                ApiError::bad_request(format!(
                    "query parameter `{key}` must be an RFC 3339 time such as 2026-11-24T10:00:00Z, not `{}`: {e}",
                    crate::params::shorten(t)
                ))
            })
        })
        .transpose()
}

/// `GET /api/policy/decisions`: the decision log, newest first.
#[utoipa::path(get, path = "/api/policy/decisions", tag = "policy",
    params(("point" = Option<PointName>, Query),
           ("entity" = Option<EntityRefText>, Query, description = "Entity ref involved (the kind defaults to Component)"),
           ("result" = Option<OutcomeName>, Query),
           ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339, exclusive"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Events returned (default 50)"),
           ("cursor" = Option<String>, Query, pattern = "^[+-]?[0-9]{1,18}:", description = "The `nextCursor` of the previous page")),
    responses((status = 200, description = "OPA decision-log events, newest first", body = DecisionsDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn decisions(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<DecisionsDto>> {
    let filter = DecisionFilter {
        point: params.typed("point").map(Point::parse).transpose().map_err(ApiError::bad_request)?,
        entity: params
            .typed("entity")
            .map(|e| crate::params::entity_ref(e, Some("component"), "entity"))
            .transpose()?,
        result: params.typed("result").map(Outcome::parse).transpose().map_err(ApiError::bad_request)?,
        from: parse_time(&params, "from")?,
        to: parse_time(&params, "to")?,
        limit: params.int_or("limit", 1..=MAX_DECISIONS, DEFAULT_DECISIONS)?,
        cursor: params.typed("cursor").map(str::to_string),
    };
    Ok(Json(app.platform.policy().decisions(&caller, &filter).await?.into()))
}

/// `GET /api/policy/policies`: the loaded policies, rules, scorecards and
/// load problems.
#[utoipa::path(get, path = "/api/policy/policies", tag = "policy",
    responses((status = 200, description = "The loaded policy set", body = PoliciesDto)))]
pub(crate) async fn policies(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<PoliciesDto>> {
    Ok(Json(app.platform.policy().policies(&caller)?.into()))
}

/// `GET /api/policy/waivers`.
#[utoipa::path(get, path = "/api/policy/waivers", tag = "policy",
    responses((status = 200, description = "Every waiver, with whether it still applies", body = WaiversDto)))]
pub(crate) async fn list_waivers(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<WaiversDto>> {
    let waivers = app.platform.policy().waivers(&caller)?;
    Ok(Json(WaiversDto { items: waivers.iter().map(WaiverDto::from).collect() }))
}

/// `POST /api/policy/waivers`: grant a time-limited exception (audited).
#[utoipa::path(post, path = "/api/policy/waivers", tag = "policy", request_body = NewWaiverDto,
    responses((status = 201, description = "The waiver", body = WaiverDto),
              (status = 400, description = "Invalid waiver, by field", body = ErrorBody)))]
pub(crate) async fn create_waiver(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(new): JsonBody<NewWaiverDto>,
) -> ApiResult<(StatusCode, Json<WaiverDto>)> {
    use crate::params::check_length;
    check_length("owner", &new.owner, 512)?;
    check_length("reason", &new.reason, 4096)?;
    check_length("rule", &new.rule, 512)?;
    crate::params::entity_ref(&new.entity, Some("component"), "entity")?;
    let expires_at = OffsetDateTime::parse(&new.expires_at, &Rfc3339).map_err(|e| {
        ApiError::from(plinth_app::AppError::invalid_field(
            "expiresAt",
            format!("must be an RFC 3339 time like 2027-01-31T00:00:00Z: {e}"),
        ))
    })?;
    let waiver = app
        .platform
        .policy()
        .grant_waiver(
            &caller,
            NewWaiver { owner: new.owner, reason: new.reason, entity: new.entity, rule: new.rule, expires_at },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(WaiverDto::from(&waiver))))
}

/// `DELETE /api/policy/waivers/{id}`: revoke a waiver (audited).
#[utoipa::path(delete, path = "/api/policy/waivers/{id}", tag = "policy", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such waiver", body = ErrorBody)))]
pub(crate) async fn delete_waiver(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.platform.policy().revoke_waiver(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/policy/entities/{kind}/{namespace}/{name}`: the entity's
/// catalog-point decision and scorecards.
#[utoipa::path(get, path = "/api/policy/entities/{kind}/{namespace}/{name}", tag = "policy",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Decision and scorecards", body = EntityGovernanceDto),
              (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn entity(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<EntityGovernanceDto>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    Ok(Json((&app.platform.policy().entity(&caller, &entity_ref)?).into()))
}

/// `GET /api/policy/scorecards`: definitions and, per team, roll-ups.
#[utoipa::path(get, path = "/api/policy/scorecards", tag = "policy",
    params(("owner" = Option<EntityRefText>, Query, description = "Only this team's roll-ups (group ref or name; the kind defaults to Group)")),
    responses((status = 200, description = "Scorecards and per-team roll-ups", body = ScorecardsDto),
              (status = 400, description = "A malformed owner", body = ErrorBody)))]
pub(crate) async fn scorecards(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<ScorecardsDto>> {
    let owner = params.typed("owner").map(|o| crate::params::entity_ref(o, Some("group"), "owner")).transpose()?;
    Ok(Json(app.platform.policy().scorecards(&caller, owner.as_ref())?.into()))
}

/// `GET /api/policy/status`: the loaded revision and whether the governance
/// view has caught up with it (after start or a reload).
#[utoipa::path(get, path = "/api/policy/status", tag = "policy",
    responses((status = 200, description = "Revision and governance view progress", body = PolicyStatusDto)))]
pub(crate) async fn status(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<PolicyStatusDto>> {
    Ok(Json(app.platform.policy().status(&caller)?.into()))
}
