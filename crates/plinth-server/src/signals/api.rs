//! The Signals API: summaries, series, traces, prompt-version comparison,
//! retrieval quality, scores, cost roll-ups and anomalies, alert rules and
//! entity health.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use plinth_model::parse_ref_lenient;
use plinth_store::{Resolution, RollupQuery, RollupRow, ScoreQuery, ScoreRow, SpanQuery};
use plinth_telemetry::anomaly::AnomalyConfig;
use plinth_telemetry::attribution::Attribution;
use plinth_telemetry::compare::{compare_prompt_versions, retrieval_quality, PromptComparison, RetrievalSource};
use plinth_telemetry::cost::{anomalies, team_costs, CostAnomaly, TeamCost};
use plinth_telemetry::metrics::METRICS_PREFIX;
use plinth_telemetry::query::{
    plan_range, rfc3339, series, summarise, SeriesResponse, Summary, TraceView, GROUP_BY, SERIES_METRICS,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::alerts::{AlertRule, HealthEntry};
use super::{now_s, SignalsService};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::params::Params;
use crate::AppState;

pub(crate) fn service(app: &AppState) -> ApiResult<Arc<SignalsService>> {
    app.config.signals.clone().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        name: "ServiceUnavailable",
        message: "signals are not enabled on this server".into(),
        details: None,
    })
}

/// Which rows a request is about, resolved against the catalogue.
#[derive(Debug, Clone, Default)]
pub struct SignalFilter {
    pub query: RollupQuery,
    /// A Model ref: rows whose model name maps to it.
    pub model_ref: Option<String>,
    /// Read metric-derived rows instead of span-derived ones.
    pub metrics: bool,
}

impl SignalFilter {
    fn keeps(&self, row: &RollupRow, attribution: &Attribution) -> bool {
        if row.key.operation.starts_with(METRICS_PREFIX) != self.metrics {
            return false;
        }
        match &self.model_ref {
            Some(model_ref) => attribution.model_ref(&row.key.model) == Some(model_ref.as_str()),
            None => true,
        }
    }
}

/// Parses `from`/`to` (RFC 3339; default: the last 24 hours).
pub(crate) fn time_range(params: &Params, default_hours: i64) -> ApiResult<(i64, i64)> {
    let parse = |key: &str| -> ApiResult<Option<i64>> {
        match params.one(key) {
            None | Some("") => Ok(None),
            Some(raw) => time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "query parameter `{key}` must be an RFC 3339 time such as 2026-11-24T10:00:00Z, not `{raw}`"
                    ))
                }),
        }
    };
    let to = parse("to")?.unwrap_or_else(|| now_s() + 60);
    let from = parse("from")?.unwrap_or(to - default_hours * 3600);
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    if to - from > 400 * 86_400 {
        return Err(ApiError::bad_request("the range may span at most 400 days (rollup retention)"));
    }
    Ok((from, to))
}

fn entity_name(raw: &str, kind: &str) -> ApiResult<String> {
    if raw.contains(':') || raw.contains('/') {
        let entity_ref = parse_ref_lenient(raw, Some(kind))
            .map_err(|e| ApiError::bad_request(format!("`{raw}` is not an entity reference: {e}")))?;
        Ok(entity_ref.name.clone())
    } else {
        Ok(raw.to_string())
    }
}

fn full_ref(raw: &str, kind: &str) -> ApiResult<String> {
    parse_ref_lenient(raw, Some(kind))
        .map(|r| r.to_string())
        .map_err(|e| ApiError::bad_request(format!("`{raw}` is not an entity reference: {e}")))
}

/// Reads the filter parameters shared by every signals endpoint.
pub(crate) fn signal_filter(params: &Params) -> ApiResult<SignalFilter> {
    let mut filter = SignalFilter::default();
    let q = &mut filter.query;
    if let Some(entity) = params.one("entity").filter(|e| !e.is_empty()) {
        let entity_ref = parse_ref_lenient(entity, None)
            .map_err(|e| ApiError::bad_request(format!("`entity={entity}` is not an entity reference: {e}")))?;
        match entity_ref.kind.as_str() {
            "component" => q.component = Some(entity_ref.to_string()),
            "group" => q.team = Some(entity_ref.to_string()),
            "model" => filter.model_ref = Some(entity_ref.to_string()),
            "prompt" => q.prompt = Some(entity_ref.name.clone()),
            "agent" => q.agent = Some(entity_ref.name.clone()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "`entity` of kind {other} has no signals; use a Component, Group, Model, Prompt or Agent"
                )))
            }
        }
    }
    if let Some(service) = params.one("service").filter(|s| !s.is_empty()) {
        if service.contains(':') {
            q.component = Some(full_ref(service, "component")?);
        } else {
            q.service = Some(service.to_string());
        }
    }
    if let Some(team) = params.one("team").filter(|s| !s.is_empty()) {
        q.team = Some(full_ref(team, "group")?);
    }
    if let Some(model) = params.one("model").filter(|s| !s.is_empty()) {
        if model.starts_with("model:") {
            filter.model_ref = Some(full_ref(model, "model")?);
        } else {
            q.model = Some(model.to_string());
        }
    }
    if let Some(prompt) = params.one("prompt").filter(|s| !s.is_empty()) {
        let (name, version) = match prompt.rsplit_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (prompt, None),
        };
        q.prompt = Some(entity_name(name, "prompt")?);
        q.prompt_version = version.map(str::to_string);
    }
    if let Some(version) = params.one("prompt_version").filter(|s| !s.is_empty()) {
        q.prompt_version = Some(version.to_string());
    }
    if let Some(agent) = params.one("agent").filter(|s| !s.is_empty()) {
        q.agent = Some(entity_name(agent, "agent")?);
    }
    if let Some(operation) = params.one("operation").filter(|s| !s.is_empty()) {
        q.operation = Some(operation.to_ascii_lowercase());
    }
    match params.one("source") {
        None | Some("") | Some("spans") => {}
        Some("metrics") => filter.metrics = true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("`source` is `spans` (default) or `metrics`, not `{other}`")))
        }
    }
    if filter.metrics {
        if let Some(op) = filter.query.operation.take() {
            filter.query.operation = Some(format!("{METRICS_PREFIX}{op}"));
        }
    }
    Ok(filter)
}

/// Rows of `[from, to)`: whole hours from the hour table, edges from the
/// minute table; filtered by the request.
pub async fn load_rows(
    service: &SignalsService,
    filter: &SignalFilter,
    from_s: i64,
    to_s: i64,
) -> Result<Vec<RollupRow>, plinth_store::StoreError> {
    load_rows_upto(service, filter, from_s, to_s, 86_400).await
}

/// As [`load_rows`], with buckets no coarser than `coarsest` seconds.
pub async fn load_rows_upto(
    service: &SignalsService,
    filter: &SignalFilter,
    from_s: i64,
    to_s: i64,
    coarsest: i64,
) -> Result<Vec<RollupRow>, plinth_store::StoreError> {
    // A range reaching the present can read the current hour or day as a
    // whole bucket (nothing is stored past now, bar clock skew): far fewer
    // rows than minute-by-minute edges.
    let now = now_s();
    let to_s =
        if to_s >= now && to_s - now <= 3600 { to_s + (coarsest - to_s.rem_euclid(coarsest)) % coarsest } else { to_s };
    let plan = plinth_telemetry::query::plan_range_upto(from_s, to_s, coarsest);
    let mut rows = Vec::new();
    if let Some((from, to)) = plan.days {
        let query = RollupQuery { from_s: from, to_s: to, ..filter.query.clone() };
        rows.extend(service.store().rollups(Resolution::Day, &query).await?);
    }
    for (from, to) in plan.hours {
        let query = RollupQuery { from_s: from, to_s: to, ..filter.query.clone() };
        rows.extend(service.store().rollups(Resolution::Hour, &query).await?);
    }
    for (from, to) in plan.minutes {
        let query = RollupQuery { from_s: from, to_s: to, ..filter.query.clone() };
        rows.extend(service.store().rollups(Resolution::Minute, &query).await?);
    }
    let attribution = service.attribution();
    rows.retain(|row| filter.keeps(row, &attribution));
    if filter.metrics {
        for row in &mut rows {
            if let Some(op) = row.key.operation.strip_prefix(METRICS_PREFIX) {
                row.key.operation = op.to_string();
            }
        }
    }
    Ok(rows)
}

fn store_error(error: plinth_store::StoreError) -> ApiError {
    tracing::error!(%error, "signals query failed");
    ApiError::internal(format!("the store could not answer: {error}"))
}

/// `GET /api/signals/summary`.
#[utoipa::path(get, path = "/api/signals/summary", tag = "signals",
    params(("service" = Option<String>, Query, description = "service.name, or a Component ref"),
           ("team" = Option<String>, Query, description = "Group ref of the owning team"),
           ("model" = Option<String>, Query, description = "Model name as reported, or a Model ref"),
           ("prompt" = Option<String>, Query, description = "Prompt name (or ref), optionally `name@version`"),
           ("agent" = Option<String>, Query, description = "Agent name or ref"),
           ("entity" = Option<String>, Query, description = "Any Component, Group, Model, Prompt or Agent ref"),
           ("operation" = Option<String>, Query, description = "Only this operation (`chat`, `server`, …)"),
           ("source" = Option<String>, Query, description = "`spans` (default) or `metrics`"),
           ("from" = Option<String>, Query, description = "RFC 3339; default 24 h before `to`"),
           ("to" = Option<String>, Query, description = "RFC 3339; default now")),
    responses((status = 200, description = "Requests, errors, latency and TTFT percentiles, tokens and cost of model calls, broken down by model, operation, prompt version, agent and service; RED of server spans", body = Summary),
              (status = 400, description = "A parameter is invalid")))]
pub async fn summary(State(app): State<AppState>, params: Params) -> ApiResult<Json<Summary>> {
    let service = service(&app)?;
    let filter = signal_filter(&params)?;
    let (from, to) = time_range(&params, 24)?;
    let rows = load_rows(&service, &filter, from, to).await.map_err(store_error)?;
    let attribution = service.attribution();
    let plan = plan_range(from, to);
    Ok(Json(summarise(&rows, rfc3339(plan.from_s), rfc3339(plan.to_s), &|model| {
        attribution.model_ref(model).map(str::to_string)
    })))
}

/// `GET /api/signals/series`.
#[utoipa::path(get, path = "/api/signals/series", tag = "signals",
    params(("metric" = String, Query, description = "requests, errors, error_rate, latency_p50|p95|p99, ttft_p50|p95|p99, cost_usd, tokens, input_tokens, output_tokens, cache_read_tokens, reasoning_tokens, tool_calls"),
           ("groupBy" = Option<String>, Query, description = "none, service, team, model, provider, operation, prompt, prompt_version, agent, component"),
           ("step" = Option<String>, Query, description = "Seconds or 1m/5m/1h/1d, from 1m to 400d; default gives about 60 points"),
           ("operation" = Option<String>, Query, description = "Default: model calls; `server` for RED"),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query),
           ("service" = Option<String>, Query), ("team" = Option<String>, Query), ("model" = Option<String>, Query),
           ("prompt" = Option<String>, Query), ("agent" = Option<String>, Query), ("entity" = Option<String>, Query)),
    responses((status = 200, description = "One series per group", body = SeriesResponse), (status = 400, description = "A parameter is invalid")))]
pub async fn series_handler(State(app): State<AppState>, params: Params) -> ApiResult<Json<SeriesResponse>> {
    let service = service(&app)?;
    let filter = signal_filter(&params)?;
    let (from, to) = time_range(&params, 24)?;
    let metric = params.one("metric").unwrap_or("requests");
    if !SERIES_METRICS.contains(&metric) {
        return Err(ApiError::bad_request(format!("`metric` must be one of {}", SERIES_METRICS.join(", "))));
    }
    let group_by = params.one("groupBy").or(params.one("group_by")).unwrap_or("none");
    if !GROUP_BY.contains(&group_by) {
        return Err(ApiError::bad_request(format!("`groupBy` must be one of {}", GROUP_BY.join(", "))));
    }
    let plan = plan_range(from, to);
    let span = plan.to_s - plan.from_s;
    let step = match params.one("step") {
        None | Some("") => default_step(span),
        Some(raw) => parse_step(raw)?,
    };
    if span / step > 2000 {
        return Err(ApiError::bad_request(format!(
            "{} points are too many; use a larger `step` (at most 2000 points)",
            span / step
        )));
    }
    let rows = series_rows(&service, &filter, plan.from_s, plan.to_s, step).await.map_err(store_error)?;
    let series_from = plan.from_s - plan.from_s.rem_euclid(step.min(3600));
    Ok(Json(SeriesResponse {
        metric: metric.to_string(),
        group_by: group_by.to_string(),
        step_seconds: step,
        from: rfc3339(series_from),
        to: rfc3339(plan.to_s),
        series: series(&rows, metric, group_by, series_from, plan.to_s, step, 20),
    }))
}

/// About 60 points over `span` seconds, on a step rollups can serve.
pub(crate) fn default_step(span: i64) -> i64 {
    let raw = (span / 60).max(60);
    [60, 300, 900, 3600, 21_600, 86_400].into_iter().find(|s| *s >= raw).unwrap_or(86_400)
}

/// The rows a series of `step` seconds over a planned range is built from
/// (model calls only unless the filter names an operation).
pub(crate) async fn series_rows(
    service: &SignalsService,
    filter: &SignalFilter,
    from_s: i64,
    to_s: i64,
    step: i64,
) -> Result<Vec<RollupRow>, plinth_store::StoreError> {
    // Day and hour rows only serve steps they divide; finer steps read minutes.
    let rows = if step % 3600 == 0 {
        load_rows_upto(service, filter, from_s, to_s, if step % 86_400 == 0 { 86_400 } else { 3600 }).await
    } else {
        let mut rows = Vec::new();
        let query = RollupQuery { from_s, to_s, ..filter.query.clone() };
        match service.store().rollups(Resolution::Minute, &query).await {
            Ok(found) => {
                let attribution = service.attribution();
                rows.extend(found.into_iter().filter(|r| filter.keeps(r, &attribution)));
                Ok(rows)
            }
            Err(error) => Err(error),
        }
    }?;
    let default_scope = filter.query.operation.is_none();
    Ok(rows
        .into_iter()
        .filter(|r| !default_scope || plinth_telemetry::query::is_model_call(&r.key.operation))
        .collect())
}

/// The longest `step`: the longest range a query may span.
const MAX_STEP_SECONDS: i64 = 400 * 86_400;

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
            return Err(ApiError::bad_request(format!(
                "`step` `{}`: use seconds or a unit of m, h or d",
                crate::params::shorten(raw)
            )))
        }
    };
    // At most the longest range (400 days), so nothing overflows.
    let seconds = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_seconds))
        .filter(|s| (60..=MAX_STEP_SECONDS).contains(s))
        .ok_or_else(|| crate::params::out_of_range("step", raw, "1m", "400d"))?;
    if seconds % 60 != 0 {
        return Err(ApiError::bad_request("`step` must be a whole number of minutes (rollups are per minute)"));
    }
    Ok(seconds)
}

/// `GET /api/traces/{traceId}`.
#[utoipa::path(get, path = "/api/traces/{traceId}", tag = "signals", params(("traceId" = String, Path, description = "32 hex digits")),
    responses((status = 200, description = "The span tree with agent steps, tokens, latency and cost", body = TraceView),
              (status = 404, description = "Unknown, or older than the span retention")))]
pub async fn trace(State(app): State<AppState>, Path(trace_id): Path<String>) -> ApiResult<Json<TraceView>> {
    let service = service(&app)?;
    load_trace(&service, &trace_id).await.map(Json)
}

/// One trace's span tree; 400 for a malformed id, 404 when not stored.
pub(crate) async fn load_trace(service: &SignalsService, trace_id: &str) -> ApiResult<TraceView> {
    let trace_id = trace_id.to_ascii_lowercase();
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!("`{trace_id}` is not a trace id (32 hex digits)")));
    }
    let rows = service.store().trace_spans(&trace_id).await.map_err(store_error)?;
    plinth_telemetry::query::trace_view(&trace_id, &rows).ok_or_else(|| {
        ApiError::not_found(format!(
            "no stored spans for trace {trace_id}; traces are kept {} days, and only traces with a GenAI span",
            service.config.span_retention.as_secs() / 86_400
        ))
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceListItem {
    pub trace_id: String,
    pub name: String,
    pub service: String,
    pub start: String,
    pub duration_ms: f64,
    pub operation: Option<String>,
    pub agent: Option<String>,
    pub error: bool,
}

/// `GET /api/traces`: recent traces (root spans) with GenAI work.
#[utoipa::path(get, path = "/api/traces", tag = "signals",
    params(("service" = Option<String>, Query), ("agent" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, description = "Newest first", body = Vec<TraceListItem>)))]
pub async fn traces(State(app): State<AppState>, params: Params) -> ApiResult<Json<Vec<TraceListItem>>> {
    let service = service(&app)?;
    recent_traces(&service, &params).await.map(Json)
}

/// Recent traces (root spans), newest first, by `service`, `agent`, `limit`.
pub(crate) async fn recent_traces(service: &SignalsService, params: &Params) -> ApiResult<Vec<TraceListItem>> {
    let limit = params.int_or("limit", 1..=500, 50)?;
    let rows =
        service.store().recent_traces(params.one("service"), params.one("agent"), limit).await.map_err(store_error)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let facts: Option<plinth_telemetry::genai::SpanFacts> =
                row.body.as_deref().and_then(|b| serde_json::from_str(b).ok());
            TraceListItem {
                start: plinth_telemetry::query::rfc3339_ns(row.start_ns),
                duration_ms: (row.end_ns - row.start_ns) as f64 / 1e6,
                operation: (!row.operation.is_empty()).then(|| row.operation.clone()),
                agent: (!row.agent.is_empty()).then(|| row.agent.clone()),
                error: facts.is_some_and(|f| f.error),
                trace_id: row.trace_id,
                name: row.name,
                service: row.service,
            }
        })
        .collect())
}

/// `GET /api/signals/prompts/{name}/versions`.
#[utoipa::path(get, path = "/api/signals/prompts/{name}/versions", tag = "signals",
    params(("name" = String, Path, description = "Prompt name or ref"), ("baseline" = Option<String>, Query, description = "Default: the version with most requests"),
           ("alpha" = Option<f64>, Query, description = "Significance level, default 0.05"), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, description = "Each version's volume, latency, tokens and cost per request, error rate and mean evaluation score, with significance against the baseline", body = PromptComparison)))]
pub async fn prompt_versions(
    State(app): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Json<PromptComparison>> {
    let service = service(&app)?;
    compare_versions(&service, &name, &params).await.map(Json)
}

/// Every version of a prompt against its baseline (`baseline`, `alpha`,
/// `from`, `to` from the query).
pub(crate) async fn compare_versions(
    service: &SignalsService,
    name: &str,
    params: &Params,
) -> ApiResult<PromptComparison> {
    let name = entity_name(name, "prompt")?;
    let (from, to) = time_range(params, 7 * 24)?;
    let alpha = match params.one("alpha") {
        None | Some("") => 0.05,
        Some(raw) => raw
            .parse::<f64>()
            .ok()
            .filter(|a| *a > 0.0 && *a < 1.0)
            .ok_or_else(|| ApiError::bad_request("`alpha` must be a number between 0 and 1"))?,
    };
    let filter = SignalFilter {
        query: RollupQuery { prompt: Some(name.clone()), ..RollupQuery::default() },
        ..SignalFilter::default()
    };
    let rows = load_rows(service, &filter, from, to).await.map_err(store_error)?;
    let spans = service
        .store()
        .query_spans(&SpanQuery {
            from_ns: from.saturating_mul(1_000_000_000),
            to_ns: to.saturating_mul(1_000_000_000),
            prompt: Some(name.clone()),
            only_kept: true,
            limit: 20_000,
            ..SpanQuery::default()
        })
        .await
        .map_err(store_error)?;
    let scores = service
        .store()
        .query_scores(&ScoreQuery {
            prompt: Some(name.clone()),
            from_s: Some(from),
            to_s: Some(to),
            limit: 50_000,
            ..ScoreQuery::default()
        })
        .await
        .map_err(store_error)?;
    let (baseline, versions) = compare_prompt_versions(&rows, &spans, &scores, params.one("baseline"), alpha);
    let attribution = service.attribution();
    Ok(PromptComparison {
        prompt_ref: attribution.prompt_ref(&name).map(str::to_string),
        prompt: name,
        from: rfc3339(from),
        to: rfc3339(to),
        alpha,
        baseline,
        versions,
    })
}

/// `GET /api/signals/retrieval`.
#[utoipa::path(get, path = "/api/signals/retrieval", tag = "signals",
    params(("from" = Option<String>, Query, description = "Default: 24 h before `to` (within span retention)"), ("to" = Option<String>, Query), ("service" = Option<String>, Query)),
    responses((status = 200, description = "Per data source: document score distribution, empty results, latency and evaluation-based relevance", body = Vec<RetrievalSource>)))]
pub async fn retrieval(State(app): State<AppState>, params: Params) -> ApiResult<Json<Vec<RetrievalSource>>> {
    let service = service(&app)?;
    let (from, to) = time_range(&params, 24)?;
    let spans = service
        .store()
        .query_spans(&SpanQuery {
            from_ns: from.saturating_mul(1_000_000_000),
            to_ns: to.saturating_mul(1_000_000_000),
            operation: Some("retrieval".into()),
            data_source_set: true,
            service: params.one("service").map(str::to_string),
            only_kept: true,
            limit: 50_000,
            ..SpanQuery::default()
        })
        .await
        .map_err(store_error)?;
    let scores = service
        .store()
        .query_scores(&ScoreQuery {
            from_s: Some(from),
            to_s: Some(to + 86_400),
            limit: 100_000,
            ..ScoreQuery::default()
        })
        .await
        .map_err(store_error)?;
    let catalog = service.catalog().clone();
    let resource_ref = move |name: &str| {
        let key = plinth_model::EntityRef::new("resource", "default", name).key();
        catalog.read().get(&key).map(|r| r.entity_ref.to_string())
    };
    Ok(Json(retrieval_quality(&spans, &scores, &resource_ref)))
}

/// A score to attach: to a trace, a span, or a prompt version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewScore {
    /// Optional id; the same id twice is stored once (idempotent retries).
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// A number, a boolean, or a string (categorical).
    #[schema(value_type = Object)]
    pub value: Value,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub span_id: Option<String>,
    /// Prompt name (or ref), for a score on a prompt version.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub prompt_version: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// `POST /api/signals/scores`: one score or a list.
#[utoipa::path(post, path = "/api/signals/scores", tag = "signals", request_body = NewScore,
    responses((status = 201, description = "Stored; the ids"), (status = 400, description = "What is wrong, per item")))]
pub async fn post_scores(State(app): State<AppState>, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let service = service(&app)?;
    let value: Value = parse_json(&body, "scores")?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    if items.len() > 10_000 {
        return Err(ApiError::bad_request("at most 10,000 scores per request"));
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match score_row(item) {
            Ok(row) => rows.push(row),
            Err(message) => errors.push(json!({ "index": i, "message": message })),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::bad_request(format!("{} score(s) are invalid; nothing was stored", errors.len()))
            .with_details(json!({ "errors": errors })));
    }
    service.store().insert_scores(&rows).await.map_err(store_error)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    Ok((StatusCode::CREATED, Json(json!({ "ids": ids }))))
}

fn score_row(item: Value) -> Result<ScoreRow, String> {
    let score: NewScore = serde_json::from_value(item).map_err(|e| e.to_string())?;
    if score.name.trim().is_empty() {
        return Err("`name` is empty; name the evaluation (e.g. relevance)".into());
    }
    if score.trace_id.is_none() && score.span_id.is_none() && score.prompt.is_none() {
        return Err(
            "attach the score to something: give `traceId` (and optionally `spanId`) or `prompt` + `promptVersion`"
                .into(),
        );
    }
    if score.span_id.is_some() && score.trace_id.is_none() {
        return Err("`spanId` needs its `traceId`".into());
    }
    let hex = |v: &Option<String>, len: usize, field: &str| -> Result<Option<String>, String> {
        match v {
            Some(id) if id.len() == len && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Some(id.to_ascii_lowercase()))
            }
            Some(id) => Err(format!("`{field}` must be {len} hex digits, not `{id}`")),
            None => Ok(None),
        }
    };
    let trace_id = hex(&score.trace_id, 32, "traceId")?;
    let span_id = hex(&score.span_id, 16, "spanId")?;
    let (data_type, value_num, value_str) = match &score.value {
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() => ("numeric", Some(v), None),
            _ => return Err("`value` is not a finite number".into()),
        },
        Value::Bool(b) => ("boolean", Some(if *b { 1.0 } else { 0.0 }), Some(b.to_string())),
        Value::String(s) if !s.is_empty() && s.len() <= 200 => ("categorical", None, Some(s.clone())),
        _ => return Err("`value` must be a number, a boolean or a short string (a category)".into()),
    };
    let prompt = match &score.prompt {
        Some(p) => Some(entity_name(p, "prompt").map_err(|e| e.message)?),
        None => None,
    };
    Ok(ScoreRow {
        id: score.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        created_s: now_s(),
        trace_id,
        span_id,
        prompt,
        prompt_version: score.prompt_version,
        name: score.name.trim().to_string(),
        data_type: data_type.into(),
        value_num,
        value_str,
        source: score.source.unwrap_or_else(|| "api".into()),
        comment: score.comment,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreOut {
    pub id: String,
    pub created: String,
    pub name: String,
    pub data_type: String,
    pub value: Option<f64>,
    pub label: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub prompt: Option<String>,
    pub prompt_version: Option<String>,
    pub source: String,
    pub comment: Option<String>,
}

/// `GET /api/signals/scores`.
#[utoipa::path(get, path = "/api/signals/scores", tag = "signals",
    params(("traceId" = Option<String>, Query), ("prompt" = Option<String>, Query), ("promptVersion" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 5000)),
    responses((status = 200, description = "Scores, newest first", body = Vec<ScoreOut>)))]
pub async fn get_scores(State(app): State<AppState>, params: Params) -> ApiResult<Json<Vec<ScoreOut>>> {
    let service = service(&app)?;
    let query = ScoreQuery {
        trace_id: params.one("traceId").map(str::to_ascii_lowercase),
        prompt: params.one("prompt").map(|p| entity_name(p, "prompt")).transpose()?,
        prompt_version: params.one("promptVersion").map(str::to_string),
        limit: params.int_or("limit", 1..=5000, 200)?,
        ..ScoreQuery::default()
    };
    let rows = service.store().query_scores(&query).await.map_err(store_error)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ScoreOut {
                id: r.id,
                created: rfc3339(r.created_s),
                name: r.name,
                data_type: r.data_type,
                value: r.value_num,
                label: r.value_str,
                trace_id: r.trace_id,
                span_id: r.span_id,
                prompt: r.prompt,
                prompt_version: r.prompt_version,
                source: r.source,
                comment: r.comment,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyList {
    pub from: String,
    pub to: String,
    pub relative_threshold: f64,
    pub min_abs_usd: f64,
    pub anomalies: Vec<CostAnomaly>,
}

/// `GET /api/cost/anomalies`.
#[utoipa::path(get, path = "/api/cost/anomalies", tag = "signals",
    params(("from" = Option<String>, Query, description = "Window start; default 24 h before `to`"), ("to" = Option<String>, Query),
           ("team" = Option<String>, Query), ("service" = Option<String>, Query),
           ("relative" = Option<f64>, Query, description = "Relative threshold, default 0.5 (+50 %)"),
           ("minUsd" = Option<f64>, Query, description = "Dollar floor per hour, default 1.0")),
    responses((status = 200, description = "Hourly cost anomalies per team and service, explained (volume, unit usage, rate/mix) and classified, ranked by dollar impact", body = AnomalyList)))]
pub async fn cost_anomalies(State(app): State<AppState>, params: Params) -> ApiResult<Json<AnomalyList>> {
    let service = service(&app)?;
    find_anomalies(&service, &params).await.map(Json)
}

/// Hourly cost anomalies of the query's window (`from`, `to`, `team`,
/// `service`, `relative`, `minUsd`), ranked by dollar impact.
pub(crate) async fn find_anomalies(service: &SignalsService, params: &Params) -> ApiResult<AnomalyList> {
    let (from, to) = time_range(params, 24)?;
    let from = from - from.rem_euclid(3600);
    // Only whole hours are judged: the hour in progress would read as a drop.
    let current_hour = now_s() - now_s().rem_euclid(3600);
    let to = to.min(current_hour).max(from + 3600);
    let mut config = AnomalyConfig::default();
    let number = |key: &str| -> ApiResult<Option<f64>> {
        match params.one(key) {
            None | Some("") => Ok(None),
            Some(raw) => raw
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("`{key}` must be a non-negative number"))),
        }
    };
    if let Some(relative) = number("relative")? {
        config.relative_threshold = relative;
    }
    if let Some(floor) = number("minUsd")? {
        config.min_abs_usd = floor;
    }
    let mut filter = signal_filter(params)?;
    filter.query.operation = None;
    // History for the seasonal baseline: the configured number of weeks.
    let history_from = from - i64::from(config.lookback_weeks) * 7 * 86_400;
    let query = RollupQuery { from_s: history_from, to_s: to, ..filter.query.clone() };
    let rows = service.store().rollups(Resolution::Hour, &query).await.map_err(store_error)?;
    let attribution = service.attribution();
    let rows: Vec<RollupRow> = rows.into_iter().filter(|r| filter.keeps(r, &attribution)).collect();
    Ok(AnomalyList {
        from: rfc3339(from),
        to: rfc3339(to),
        relative_threshold: config.relative_threshold,
        min_abs_usd: config.min_abs_usd,
        anomalies: anomalies(&rows, from, to, &config),
    })
}

/// `GET /api/cost/teams`.
#[utoipa::path(get, path = "/api/cost/teams", tag = "signals",
    params(("from" = Option<String>, Query, description = "Default: 30 days before `to`"), ("to" = Option<String>, Query), ("team" = Option<String>, Query)),
    responses((status = 200, description = "Cost per team with cost centre, top services and models, daily cost", body = Vec<TeamCost>)))]
pub async fn cost_teams(State(app): State<AppState>, params: Params) -> ApiResult<Json<Vec<TeamCost>>> {
    let service = service(&app)?;
    team_cost_list(&service, &params).await.map(Json)
}

/// Cost per team over the query's window (default 30 days; `team` narrows).
pub(crate) async fn team_cost_list(service: &SignalsService, params: &Params) -> ApiResult<Vec<TeamCost>> {
    let (from, to) = time_range(params, 30 * 24)?;
    let mut filter = signal_filter(params)?;
    filter.query.operation = None;
    let rows = load_rows(service, &filter, from, to).await.map_err(store_error)?;
    let plan = plan_range(from, to);
    let mut teams = team_costs(&rows, plan.from_s, plan.to_s);
    let attribution = service.attribution();
    for team in &mut teams {
        if let Some(info) = team.team.as_deref().and_then(|t| attribution.team(t)) {
            team.title = Some(info.title.clone());
            team.cost_center = info.cost_center.clone();
        }
    }
    Ok(teams)
}

// ------------------------------------------------------------------ alerts --

/// `GET /api/signals/alerts/rules`.
#[utoipa::path(get, path = "/api/signals/alerts/rules", tag = "signals",
    responses((status = 200, description = "Rules with their current state", body = Vec<Value>)))]
pub async fn list_rules(State(app): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let service = service(&app)?;
    Ok(Json(service.alerts.rules_with_state()))
}

/// `POST /api/signals/alerts/rules`: create or replace (by `id`).
#[utoipa::path(post, path = "/api/signals/alerts/rules", tag = "signals", request_body = AlertRule,
    responses((status = 201, description = "Stored", body = AlertRule), (status = 400, description = "What is wrong, by field")))]
pub async fn put_rule(State(app): State<AppState>, body: Bytes) -> ApiResult<(StatusCode, Json<AlertRule>)> {
    let service = service(&app)?;
    let rule: AlertRule = parse_json(&body, "alert rule")?;
    let rule = rule
        .validated()
        .and_then(|rule| service.alerts.check_webhook(&rule).map(|()| rule).map_err(|error| vec![error]))
        .map_err(|errors| {
            ApiError::bad_request(format!("the alert rule is invalid: {}", errors.join("; ")))
                .with_details(json!({ "errors": errors }))
        })?;
    service.alerts.put(service.store(), rule.clone()).await.map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// `DELETE /api/signals/alerts/rules/{id}`.
#[utoipa::path(delete, path = "/api/signals/alerts/rules/{id}", tag = "signals", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such rule")))]
pub async fn delete_rule(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let service = service(&app)?;
    if service.alerts.delete(service.store(), &id).await.map_err(store_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no alert rule `{id}`")))
    }
}

/// `GET /api/signals/alerts/history`.
#[utoipa::path(get, path = "/api/signals/alerts/history", tag = "signals",
    params(("rule" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "Firing and resolved events, newest first", body = Vec<Value>)))]
pub async fn alert_history(State(app): State<AppState>, params: Params) -> ApiResult<Json<Vec<Value>>> {
    let service = service(&app)?;
    let limit = params.int_or("limit", 1..=1000, 100)?;
    let events = service.store().alert_events(params.one("rule"), limit).await.map_err(store_error)?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| {
                let mut body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut body {
                    map.insert("id".into(), json!(e.id));
                    map.insert("rule".into(), json!(e.rule_id));
                    map.insert("state".into(), json!(e.state));
                    map.insert("at".into(), json!(rfc3339(e.at_s)));
                }
                body
            })
            .collect(),
    ))
}

/// `POST /api/signals/alerts/evaluate`: evaluates every rule now.
#[utoipa::path(post, path = "/api/signals/alerts/evaluate", tag = "signals",
    responses((status = 200, description = "Rules with their state after evaluation", body = Vec<Value>)))]
pub async fn evaluate_now(State(app): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let service = service(&app)?;
    super::alerts::evaluate_once(&service).await;
    Ok(Json(service.alerts.rules_with_state()))
}

/// `GET /api/signals/health`.
#[utoipa::path(get, path = "/api/signals/health", tag = "signals",
    responses((status = 200, description = "Entities whose health alert rules set (healthy, degraded, unhealthy)", body = Vec<HealthEntry>)))]
pub async fn health(State(app): State<AppState>) -> ApiResult<Json<Vec<HealthEntry>>> {
    let service = service(&app)?;
    Ok(Json(service.alerts.health()))
}

/// `GET /api/signals/health/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/signals/health/{kind}/{namespace}/{name}", tag = "signals",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity's health and the rules behind it", body = HealthEntry)))]
pub async fn entity_health(
    State(app): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<HealthEntry>> {
    let service = service(&app)?;
    let key = plinth_model::EntityRef::new(&kind, &namespace, &name).key();
    Ok(Json(service.alerts.health_of(&key)))
}
