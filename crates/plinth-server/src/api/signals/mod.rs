//! The Signals API: summaries, series, traces, prompt-version comparison,
//! retrieval quality, scores, cost roll-ups and anomalies, alert rules and
//! entity health; and the OTLP/HTTP receiver.

pub(crate) mod dto;
pub(crate) mod receiver;

use self::dto::{
    alert_window_ok, AlertEventDto, AlertRuleBody, AlertRuleDto, AlertRuleStateDto, AnomalyListDto, HealthEntryDto,
    NewScoresBody, PromptComparisonDto, RetrievalSourceDto, ScoreDto, ScoresStored, SeriesResponseDto, SummaryDto,
    TeamCostDto, TraceListItemDto, TraceViewDto, MAX_SCORE_TEXT,
};
use crate::api::catalog::ref_from_path;
use crate::api::schema::{
    EntityRefText, NameOrRefText, PromptText, SeriesGroupBy, SeriesMetric, SignalEntityText, SignalModelText,
    SignalServiceText, SignalSource,
};
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{entity_ref, out_of_range, ref_parts, ref_shaped, shorten, ApiParams, Params, MAX_REF};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use plinth_app::signals::{
    AnomalyQuery, PromptVersionsQuery, ScoreFilter, SeriesQuery, SignalQuery, TimeRange, MAX_STEP_SECONDS,
};
use plinth_app::Caller;
use plinth_telemetry::query::{GROUP_BY, SERIES_METRICS};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/summary", get(summary))
        .route("/series", get(series))
        .route("/prompts/{name}/versions", get(prompt_versions))
        .route("/retrieval", get(retrieval))
        .route("/scores", get(get_scores).post(post_scores))
        .route("/alerts/rules", get(list_rules).post(put_rule))
        .route("/alerts/rules/{id}", delete(delete_rule))
        .route("/alerts/history", get(alert_history))
        .route("/alerts/evaluate", post(evaluate_now))
        .route("/health", get(health))
        .route("/health/{kind}/{namespace}/{name}", get(entity_health))
}

/// The filter parameters shared by every signals endpoint, each checked
/// against the shape the document states (the application layer reads
/// them as it always has).
pub(crate) fn signal_query(params: &Params) -> ApiResult<SignalQuery> {
    let one = |key: &str| params.one(key).map(str::to_string);
    let query = SignalQuery {
        entity: params.typed("entity").map(str::to_string),
        service: one("service"),
        team: params.typed("team").map(str::to_string),
        model: one("model"),
        prompt: one("prompt"),
        prompt_version: one("prompt_version"),
        agent: one("agent"),
        operation: one("operation"),
        source: params.choice("source", &["spans", "metrics"])?.map(str::to_string),
    };
    if let Some(entity) = &query.entity {
        let kind_ok = entity.trim().split_once(':').is_some_and(|(kind, _)| {
            ["component", "group", "model", "prompt", "agent"].contains(&kind.to_ascii_lowercase().as_str())
        });
        if !kind_ok || entity.chars().count() > MAX_REF || !ref_shaped(entity, true) {
            return Err(malformed(
                "entity",
                entity,
                "a Component, Group, Model, Prompt or Agent ref, `kind:[namespace/]name`",
            ));
        }
    }
    if let Some(service) = &query.service {
        if service.contains(':') && !ref_shaped(service, true) {
            return Err(malformed(
                "service",
                service,
                "a `service.name` (no `:`) or a Component ref `kind:[namespace/]name`",
            ));
        }
    }
    if let Some(team) = &query.team {
        entity_ref(team, Some("group"), "team")?;
    }
    if let Some(model) = &query.model {
        if model.trim_start().starts_with("model:") && !ref_shaped(model, true) {
            return Err(malformed("model", model, "a model name, or a Model ref `model:[namespace/]name`"));
        }
    }
    if let Some(prompt) = &query.prompt {
        check_prompt(prompt, true)?;
    }
    if let Some(agent) = &query.agent {
        check_name_or_ref("agent", agent)?;
    }
    Ok(query)
}

fn malformed(field: &str, raw: &str, what: &str) -> ApiError {
    let message = format!("`{}` is not {what}", shorten(raw));
    ApiError::bad_request(format!("`{field}`: {message}"))
        .with_details(serde_json::json!({"fields": [{"field": field, "message": message}]}))
}

/// A name, or (holding `:` or `/`) a ref (`schema::NAME_OR_REF`).
fn check_name_or_ref(field: &str, raw: &str) -> ApiResult<()> {
    if raw.contains([':', '/']) && !ref_shaped(raw, false) {
        return Err(malformed(field, raw, "a name, or a ref `[kind:][namespace/]name`"));
    }
    Ok(())
}

/// A Prompt name or ref, with `@version` when `versioned`
/// (`schema::PROMPT_AT_VERSION`).
fn check_prompt(raw: &str, versioned: bool) -> ApiResult<()> {
    if !versioned {
        return check_name_or_ref("prompt", raw);
    }
    let text = raw.trim();
    let mut parts = text.split('@');
    let name = parts.next().unwrap_or_default();
    let ok = parts.count() <= 1 && (!name.contains([':', '/']) || ref_parts(name.trim(), false, &['@']));
    if !ok {
        return Err(malformed("prompt", raw, "a Prompt name or ref, optionally `@version`"));
    }
    Ok(())
}

/// `from`/`to` (RFC 3339).
pub(crate) fn time_range(params: &Params) -> ApiResult<TimeRange> {
    let parse = |key: &str| -> ApiResult<Option<OffsetDateTime>> {
        match params.typed(key) {
            None => Ok(None),
            Some(raw) => OffsetDateTime::parse(raw, &Rfc3339).map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter `{key}` must be an RFC 3339 time such as 2026-11-24T10:00:00Z, not `{}`",
                    shorten(raw)
                ))
            }),
        }
    };
    Ok(TimeRange { from: parse("from")?, to: parse("to")? })
}

/// `step`: seconds, or a number with a unit of m, h or d (1m to 400d).
fn parse_step(raw: &str) -> ApiResult<i64> {
    let (number, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&raw[..i], &raw[i..]),
        None => (raw, "s"),
    };
    let unit_seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(ApiError::bad_request(format!("`step` `{}`: use seconds or a unit of m, h or d", shorten(raw))))
        }
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_seconds))
        .filter(|s| (60..=MAX_STEP_SECONDS).contains(s))
        .ok_or_else(|| out_of_range("step", raw, "1m", "400d"))
}

const FILTER_PARAMS: &str = "service, team, model, prompt, agent, entity, operation, source";

/// `GET /api/signals/summary`.
#[utoipa::path(get, path = "/api/signals/summary", tag = "signals",
    params(("service" = Option<SignalServiceText>, Query, description = "service.name, or a Component ref"),
           ("team" = Option<EntityRefText>, Query, description = "Group ref of the owning team (the kind defaults to Group)"),
           ("model" = Option<SignalModelText>, Query, description = "Model name as reported, or a Model ref"),
           ("prompt" = Option<PromptText>, Query, description = "Prompt name (or ref), optionally `name@version`"),
           ("prompt_version" = Option<String>, Query),
           ("agent" = Option<NameOrRefText>, Query, description = "Agent name or ref"),
           ("entity" = Option<SignalEntityText>, Query, description = "Any Component, Group, Model, Prompt or Agent ref"),
           ("operation" = Option<String>, Query, description = "Only this operation (`chat`, `server`, …)"),
           ("source" = Option<SignalSource>, Query),
           ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339; default 24 h before `to`"),
           ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339; default now")),
    responses((status = 200, description = "Totals and breakdowns of model calls; RED of server spans", body = SummaryDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn summary(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<SummaryDto>> {
    let summary = app.platform.signals().summary(&caller, &signal_query(&params)?, time_range(&params)?).await?;
    Ok(Json((&summary).into()))
}

/// `GET /api/signals/series`.
#[utoipa::path(get, path = "/api/signals/series", tag = "signals",
    params(("metric" = Option<SeriesMetric>, Query),
           ("groupBy" = Option<SeriesGroupBy>, Query),
           ("step" = Option<String>, Query, pattern = "^[0-9]+[smhd]?$", description = "Seconds (`s` or no unit), or minutes, hours or days (`5m`, `1h`, `1d`): whole minutes from 1m to 400d, and at most 2,000 points over the range; default gives about 60 points"),
           ("operation" = Option<String>, Query, description = "Default: model calls; `server` for RED"),
           ("from" = Option<String>, Query, format = DateTime), ("to" = Option<String>, Query, format = DateTime),
           ("service" = Option<SignalServiceText>, Query), ("team" = Option<EntityRefText>, Query), ("model" = Option<SignalModelText>, Query),
           ("prompt" = Option<PromptText>, Query), ("agent" = Option<NameOrRefText>, Query), ("entity" = Option<SignalEntityText>, Query),
           ("source" = Option<SignalSource>, Query)),
    responses((status = 200, description = "One series per group", body = SeriesResponseDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn series(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<SeriesResponseDto>> {
    let request = SeriesQuery {
        filter: signal_query(&params)?,
        range: time_range(&params)?,
        metric: params.choice("metric", SERIES_METRICS)?.map(str::to_string),
        group_by: match params.choice("groupBy", GROUP_BY)? {
            Some(group) => Some(group.to_string()),
            None => params.choice("group_by", GROUP_BY)?.map(str::to_string),
        },
        step_seconds: match params.typed("step") {
            None => None,
            Some(raw) => Some(parse_step(raw)?),
        },
    };
    Ok(Json((&app.platform.signals().series(&caller, &request).await?).into()))
}

/// `GET /api/traces/{traceId}`.
#[utoipa::path(get, path = "/api/traces/{traceId}", tag = "signals", params(("traceId" = String, Path, pattern = "^[0-9a-fA-F]{32}$", description = "32 hex digits")),
    responses((status = 200, description = "The span tree with agent steps, tokens, latency and cost", body = TraceViewDto),
              (status = 400, description = "Not a trace id", body = ErrorBody),
              (status = 404, description = "Unknown, or older than the span retention", body = ErrorBody)))]
pub(crate) async fn trace(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<TraceViewDto>> {
    Ok(Json((&app.platform.signals().trace(&caller, &trace_id).await?).into()))
}

/// `GET /api/traces`: recent traces (root spans) with GenAI work.
#[utoipa::path(get, path = "/api/traces", tag = "signals",
    params(("service" = Option<String>, Query), ("agent" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, description = "Newest first", body = Vec<TraceListItemDto>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn traces(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<Vec<TraceListItemDto>>> {
    let limit = params.int_or("limit", 1..=500, 50)?;
    let items = app.platform.signals().traces(&caller, params.one("service"), params.one("agent"), limit).await?;
    Ok(Json(items.iter().map(Into::into).collect()))
}

/// `GET /api/signals/prompts/{name}/versions`.
#[utoipa::path(get, path = "/api/signals/prompts/{name}/versions", tag = "signals",
    params(("name" = NameOrRefText, Path, description = "Prompt name or ref"), ("baseline" = Option<String>, Query, description = "Default: the version with most requests"),
           ("alpha" = Option<f64>, Query, exclusive_minimum = 0, exclusive_maximum = 1, description = "Significance level, default 0.05"), ("from" = Option<String>, Query, format = DateTime), ("to" = Option<String>, Query, format = DateTime)),
    responses((status = 200, description = "Each version's volume, latency, tokens and cost per request, error rate and mean evaluation score, with significance against the baseline", body = PromptComparisonDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn prompt_versions(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<PromptComparisonDto>> {
    check_name_or_ref("name", &name)?;
    let request = PromptVersionsQuery {
        prompt: name,
        baseline: params.one("baseline").filter(|b| !b.is_empty()).map(str::to_string),
        alpha: number(&params, "alpha")?,
        range: time_range(&params)?,
    };
    Ok(Json((&app.platform.signals().prompt_versions(&caller, &request).await?).into()))
}

/// A decimal parameter; anything else is a 400 naming it.
pub(crate) fn number(params: &Params, key: &str) -> ApiResult<Option<f64>> {
    params.number(key)
}

/// `GET /api/signals/retrieval`.
#[utoipa::path(get, path = "/api/signals/retrieval", tag = "signals",
    params(("from" = Option<String>, Query, format = DateTime, description = "Default: 24 h before `to` (within span retention)"), ("to" = Option<String>, Query, format = DateTime), ("service" = Option<String>, Query)),
    responses((status = 200, description = "Per data source: document score distribution, empty results, latency and evaluation-based relevance", body = Vec<RetrievalSourceDto>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn retrieval(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<Vec<RetrievalSourceDto>>> {
    let sources = app.platform.signals().retrieval(&caller, params.one("service"), time_range(&params)?).await?;
    Ok(Json(sources.iter().map(Into::into).collect()))
}

/// `POST /api/signals/scores`: one score or a list (all or nothing).
#[utoipa::path(post, path = "/api/signals/scores", tag = "signals", request_body = NewScoresBody,
    responses((status = 201, description = "Stored; the ids", body = ScoresStored),
              (status = 400, description = "What is wrong, per item", body = ErrorBody)))]
pub(crate) async fn post_scores(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(value): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<ScoresStored>)> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for (i, item) in items.iter().enumerate() {
        if let Some(name) = item.get("name").and_then(Value::as_str) {
            crate::params::check_length(&format!("[{i}].name"), name, MAX_SCORE_TEXT)?;
        }
        if let Some(prompt) = item.get("prompt").and_then(Value::as_str) {
            check_name_or_ref(&format!("[{i}].prompt"), prompt)?;
        }
    }
    let ids = app.platform.signals().add_scores(&caller, items).await?;
    Ok((StatusCode::CREATED, Json(ScoresStored { ids })))
}

/// `GET /api/signals/scores`.
#[utoipa::path(get, path = "/api/signals/scores", tag = "signals",
    params(("traceId" = Option<String>, Query), ("prompt" = Option<NameOrRefText>, Query, description = "Prompt name or ref"), ("promptVersion" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 5000)),
    responses((status = 200, description = "Scores, newest first", body = Vec<ScoreDto>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn get_scores(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<Vec<ScoreDto>>> {
    if let Some(prompt) = params.one("prompt") {
        check_prompt(prompt, false)?;
    }
    let filter = ScoreFilter {
        trace_id: params.one("traceId").map(str::to_string),
        prompt: params.one("prompt").map(str::to_string),
        prompt_version: params.one("promptVersion").map(str::to_string),
        limit: params.int_or("limit", 1..=5000, 200)?,
    };
    let scores = app.platform.signals().scores(&caller, &filter).await?;
    Ok(Json(scores.iter().map(Into::into).collect()))
}

/// `GET /api/cost/anomalies`.
#[utoipa::path(get, path = "/api/cost/anomalies", tag = "signals",
    params(("from" = Option<String>, Query, format = DateTime, description = "Window start; default 24 h before `to`"), ("to" = Option<String>, Query, format = DateTime),
           ("team" = Option<EntityRefText>, Query, description = "Group ref (the kind defaults to Group)"), ("service" = Option<SignalServiceText>, Query),
           ("relative" = Option<f64>, Query, minimum = 0, description = "Relative threshold, default 0.5 (+50 %)"),
           ("minUsd" = Option<f64>, Query, minimum = 0, description = "Dollar floor per hour, default 1.0")),
    responses((status = 200, description = "Hourly cost anomalies per team and service, explained and classified, ranked by dollar impact", body = AnomalyListDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn cost_anomalies(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<AnomalyListDto>> {
    let request = anomaly_query(&params)?;
    Ok(Json((&app.platform.signals().anomalies(&caller, &request).await?).into()))
}

/// The anomaly request a query string asks for.
pub(crate) fn anomaly_query(params: &Params) -> ApiResult<AnomalyQuery> {
    Ok(AnomalyQuery {
        filter: signal_query(params)?,
        range: time_range(params)?,
        relative: number(params, "relative")?,
        min_usd: number(params, "minUsd")?,
    })
}

/// `GET /api/cost/teams`.
#[utoipa::path(get, path = "/api/cost/teams", tag = "signals",
    params(("from" = Option<String>, Query, format = DateTime, description = "Default: 30 days before `to`"), ("to" = Option<String>, Query, format = DateTime), ("team" = Option<EntityRefText>, Query, description = "Group ref (the kind defaults to Group)")),
    responses((status = 200, description = "Cost per team with cost centre, top services and models, daily cost", body = Vec<TeamCostDto>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn cost_teams(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<Vec<TeamCostDto>>> {
    let teams = app.platform.signals().team_costs(&caller, &signal_query(&params)?, time_range(&params)?).await?;
    Ok(Json(teams.iter().map(Into::into).collect()))
}

/// `GET /api/signals/alerts/rules`.
#[utoipa::path(get, path = "/api/signals/alerts/rules", tag = "signals",
    responses((status = 200, description = "Rules with their current state", body = Vec<AlertRuleStateDto>)))]
pub(crate) async fn list_rules(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<AlertRuleStateDto>>> {
    let rules = app.platform.signals().rules(&caller)?;
    Ok(Json(
        rules.iter().map(|(rule, status)| AlertRuleStateDto { rule: rule.into(), status: status.clone() }).collect(),
    ))
}

/// `POST /api/signals/alerts/rules`: create or replace (by `id`).
#[utoipa::path(post, path = "/api/signals/alerts/rules", tag = "signals", request_body = AlertRuleBody,
    responses((status = 201, description = "Stored", body = AlertRuleDto),
              (status = 400, description = "What is wrong, by field", body = ErrorBody)))]
pub(crate) async fn put_rule(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(rule): JsonBody<AlertRuleDto>,
) -> ApiResult<(StatusCode, Json<AlertRuleDto>)> {
    check_rule(&rule)?;
    let rule = rule.into_rule().map_err(|e| ApiError::bad_request(format!("alert rule: {e}")))?;
    let stored = app.platform.signals().put_rule(&caller, rule).await?;
    Ok((StatusCode::CREATED, Json((&stored).into())))
}

/// What the document states of a rule beyond its types, checked before the
/// application layer's own validation (which lists every problem).
fn check_rule(rule: &AlertRuleDto) -> ApiResult<()> {
    if let Some(entity) = &rule.entity {
        let kind_ok = entity.trim().split_once(':').is_none_or(|(kind, _)| {
            ["component", "model", "prompt", "agent", "group"].contains(&kind.to_ascii_lowercase().as_str())
        });
        if !kind_ok || entity.chars().count() > MAX_REF || !ref_shaped(entity, false) {
            return Err(malformed("entity", entity, "a Component, Model, Prompt, Agent or Group ref"));
        }
    }
    if let Some(team) = &rule.team {
        entity_ref(team, Some("group"), "team")?;
    }
    if let Some(window) = &rule.window {
        if !alert_window_ok(window) {
            return Err(malformed("window", window, "a window from 1m to 7d, e.g. 5m or 1h"));
        }
    }
    if let Some(webhook) = &rule.webhook {
        // Only the shape here: which hosts and addresses may be posted to
        // is the outbound allowlist's answer, given by the application layer.
        let http = webhook.strip_prefix("http://").or_else(|| webhook.strip_prefix("https://"));
        if http.is_none_or(|rest| rest.is_empty() || rest.chars().any(char::is_whitespace)) {
            return Err(malformed("webhook", webhook, "an http(s) URL"));
        }
    }
    Ok(())
}

/// `DELETE /api/signals/alerts/rules/{id}`.
#[utoipa::path(delete, path = "/api/signals/alerts/rules/{id}", tag = "signals", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such rule", body = ErrorBody)))]
pub(crate) async fn delete_rule(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.platform.signals().delete_rule(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/signals/alerts/history`.
#[utoipa::path(get, path = "/api/signals/alerts/history", tag = "signals",
    params(("rule" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "Firing and resolved events, newest first", body = Vec<AlertEventDto>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn alert_history(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<Vec<AlertEventDto>>> {
    let limit = params.int_or("limit", 1..=1000, 100)?;
    let events = app.platform.signals().alert_history(&caller, params.one("rule"), limit).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// `POST /api/signals/alerts/evaluate`: evaluates every rule now.
#[utoipa::path(post, path = "/api/signals/alerts/evaluate", tag = "signals",
    responses((status = 200, description = "Rules with their state after evaluation", body = Vec<AlertRuleStateDto>)))]
pub(crate) async fn evaluate_now(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<AlertRuleStateDto>>> {
    let rules = app.platform.signals().evaluate_alerts(&caller).await?;
    Ok(Json(
        rules.iter().map(|(rule, status)| AlertRuleStateDto { rule: rule.into(), status: status.clone() }).collect(),
    ))
}

/// `GET /api/signals/health`.
#[utoipa::path(get, path = "/api/signals/health", tag = "signals",
    responses((status = 200, description = "Entities whose health alert rules set", body = Vec<HealthEntryDto>)))]
pub(crate) async fn health(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<HealthEntryDto>>> {
    Ok(Json(app.platform.signals().health(&caller)?.iter().map(Into::into).collect()))
}

/// `GET /api/signals/health/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/signals/health/{kind}/{namespace}/{name}", tag = "signals",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity's health and the rules behind it", body = HealthEntryDto)))]
pub(crate) async fn entity_health(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<HealthEntryDto>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    Ok(Json((&app.platform.signals().entity_health(&caller, &entity_ref)?).into()))
}

#[allow(dead_code)]
const _: &str = FILTER_PARAMS;
