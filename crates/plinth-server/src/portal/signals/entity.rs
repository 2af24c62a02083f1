//! An entity's Signals tab: headline numbers, charts, top models and
//! prompt versions, RED of server spans, health and recent traces.

use super::chart::{chart, ms_axis, usd_axis, Chart, ChartKind, Plot};
use super::{
    api_problem, app_problem, count, disabled, enabled, ms, percent, problem, thousands, time_label, usd, Latency,
    RangeLink, TokenCounts, TraceRow, Window, SIGNAL_KINDS,
};
use crate::params::Params;
use crate::portal::catalog::not_found_entity;
use crate::portal::{encode, entity_href, lookup_key, page, query};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use plinth_app::signals::SignalQuery;
use plinth_app::{AppError, Caller};
use serde::Serialize;

const RECENT_TRACES: usize = 20;

/// `signals_entity.html`: the Signals tab of a Component, Group, Model,
/// Prompt or Agent.
#[derive(Serialize)]
struct EntitySignalsView {
    title: String,
    entity_title: String,
    #[serde(rename = "ref")]
    entity_ref: String,
    /// The entity's page.
    href: String,
    /// Kind and name as the catalogue spells them (breadcrumbs).
    summary: Heading,
    kind_lower: String,
    ranges: Vec<RangeLink>,
    signals: EntitySignals,
    health: HealthPanel,
    /// Recent traces: Components (by service name) and Agents only.
    traces: Option<Vec<TraceRow>>,
    traces_href: Option<String>,
    /// This server's `Host`, for the exporter set-up of the empty state.
    host: String,
    /// The `service.name` spans of this entity carry.
    service_name: String,
    /// Prompts: the version comparison.
    prompt_href: Option<String>,
    /// Groups: the team's cost page.
    cost_href: Option<String>,
}

#[derive(Serialize)]
struct Heading {
    kind: String,
    name: String,
}

/// Headline numbers, charts and breakdowns of one filter over a window.
#[derive(Serialize)]
struct EntitySignals {
    /// No rows matched at all.
    empty: bool,
    from: String,
    to: String,
    requests: String,
    errors: String,
    error_rate: String,
    latency: Latency,
    ttft_p95: String,
    tokens: TokenCounts,
    cost: String,
    tool_calls: String,
    agent_runs: String,
    charts: Vec<Chart>,
    models: Vec<ModelRow>,
    prompts: Vec<PromptRow>,
    operations: Vec<OperationRow>,
    server: ServerSpans,
}

/// A row of "Top models".
#[derive(Serialize)]
struct ModelRow {
    model: String,
    provider: String,
    /// The Model entity, when the name maps to one.
    href: Option<String>,
    requests: String,
    error_rate: String,
    latency: Latency,
    tokens: String,
    cost: String,
}

/// A row of "Top prompt versions".
#[derive(Serialize)]
struct PromptRow {
    /// `name@version`.
    name: String,
    /// The prompt's version comparison.
    href: String,
    requests: String,
    error_rate: String,
    latency: Latency,
    tokens: String,
    cost: String,
}

/// A row of "Operations".
#[derive(Serialize)]
struct OperationRow {
    operation: String,
    requests: String,
    errors: String,
    latency: Latency,
}

/// RED of server (HTTP/RPC) spans.
#[derive(Serialize)]
struct ServerSpans {
    /// Whether there were any.
    present: bool,
    requests: String,
    errors: String,
    error_rate: String,
    latency: Latency,
}

/// Health from alert rules, with the firing rules' names and messages.
#[derive(Serialize)]
struct HealthPanel {
    /// `healthy`, `degraded`, `unhealthy` or `unknown`.
    health: String,
    firing: Vec<FiringRule>,
    /// How many rules watch the entity.
    rules: usize,
}

#[derive(Serialize)]
struct FiringRule {
    id: String,
    name: String,
    severity: Option<String>,
    message: Option<String>,
}

/// `GET /catalog/{namespace}/{kind}/{name}/signals`.
pub(crate) async fn entity_signals_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let key = lookup_key(&kind, &namespace, &name);
    // Cloned out, so the read lock is released before any other look-up.
    let record = match app.platform.catalog().view(&caller) {
        Ok(state) => state.get(&key).cloned(),
        Err(error) => return super::super::error_page(error.into()),
    };
    let Some(record) = record else {
        return not_found_entity(&app, &caller, &kind, &namespace, &name);
    };
    let kind_lower = record.summary.kind.to_lowercase();
    let entity_ref = record.entity_ref.to_string();
    let href = entity_href(&entity_ref);
    if !SIGNAL_KINDS.contains(&kind_lower.as_str()) {
        return problem(
            StatusCode::NOT_FOUND,
            "No signals for this kind",
            &format!(
                "{} is a {}; signals are shown for Components, Groups, Models, Prompts and Agents.",
                entity_ref, record.summary.kind
            ),
        );
    }
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "24h", &[]) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let filter = SignalQuery { entity: Some(entity_ref.clone()), ..SignalQuery::default() };
    // The entity's document is free-form YAML-turned-JSON: read the one
    // annotation wanted. The name spans carry: the annotation wins over
    // the Component's name.
    let body: serde_json::Value = serde_json::from_str(&record.body).unwrap_or_default();
    let service_name = body["metadata"]["annotations"]["opentelemetry.io/service-name"]
        .as_str()
        .unwrap_or(&record.summary.name)
        .to_string();

    let signals = match entity_signals(&app, &caller, &filter, &window).await {
        Ok(signals) => signals,
        Err(error) => return app_problem(error),
    };
    let traces_filter: Option<(&str, &str)> = match kind_lower.as_str() {
        "component" => Some(("service", service_name.as_str())),
        "agent" => Some(("agent", record.summary.name.as_str())),
        _ => None,
    };
    let traces = match traces_filter {
        Some((param, value)) => {
            let (service_name, agent) = if param == "service" { (Some(value), None) } else { (None, Some(value)) };
            match app.platform.signals().traces(&caller, service_name, agent, RECENT_TRACES).await {
                Ok(items) => Some(items.iter().map(TraceRow::of).collect()),
                Err(error) => return app_problem(error),
            }
        }
        None => None,
    };
    let traces_href = traces_filter.map(|(param, value)| format!("/traces?{}", query(&[(param, value)])));
    let health = health_panel(&app, &caller, &record.entity_ref);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost:7007").to_string();
    let title = record.summary.title.clone().unwrap_or_else(|| record.summary.name.clone());
    let view = EntitySignalsView {
        title: format!("Signals of {title}"),
        entity_title: title,
        ranges: window.selector(&format!("{href}/signals")),
        href,
        entity_ref,
        summary: Heading { kind: record.summary.kind.to_string(), name: record.summary.name.clone() },
        signals,
        health,
        traces,
        traces_href,
        host,
        service_name,
        prompt_href: (kind_lower == "prompt").then(|| format!("/prompts/{}/versions", encode(&record.summary.name))),
        cost_href: (kind_lower == "group")
            .then(|| format!("/cost/teams/{}/{}", encode(&record.summary.namespace), encode(&record.summary.name))),
        kind_lower,
    };
    page(StatusCode::OK, "signals_entity.html", &view)
}

/// Headline numbers, charts and breakdowns of one filter over a window.
async fn entity_signals(
    app: &AppState,
    caller: &Caller,
    filter: &SignalQuery,
    window: &Window,
) -> Result<EntitySignals, AppError> {
    const METRICS: &[&str] = &[
        "requests",
        "errors",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ];
    let overview = app.platform.signals().overview(caller, filter, window.range, window.step, METRICS).await?;
    let summary = &overview.summary;
    let labels: Vec<String> = overview.steps.iter().map(|at| time_label(at, window.step)).collect();
    // Counts are zero where nothing happened; latencies have gaps.
    let plot = |label: &str, class: &'static str, metric: &str, fill: Option<f64>| Plot {
        label: label.to_string(),
        class,
        values: overview
            .series
            .iter()
            .find(|(name, _)| name == metric)
            .map(|(_, values)| values.iter().map(|v| v.or(fill)).collect())
            .unwrap_or_default(),
    };
    let charts = vec![
        chart(
            "chart-requests",
            "Requests",
            ChartKind::Bar,
            &labels,
            &[plot("requests", "s-requests", "requests", Some(0.0))],
            count,
        ),
        chart(
            "chart-errors",
            "Errors",
            ChartKind::Bar,
            &labels,
            &[plot("errors", "s-errors", "errors", Some(0.0))],
            count,
        ),
        chart(
            "chart-latency",
            "Latency",
            ChartKind::Line,
            &labels,
            &[
                plot("p50", "s-p50", "latency_p50", None),
                plot("p95", "s-p95", "latency_p95", None),
                plot("p99", "s-p99", "latency_p99", None),
            ],
            ms_axis,
        ),
        chart(
            "chart-tokens",
            "Tokens",
            ChartKind::Line,
            &labels,
            &[
                plot("input", "s-input", "input_tokens", Some(0.0)),
                plot("output", "s-output", "output_tokens", Some(0.0)),
            ],
            count,
        ),
        chart(
            "chart-cost",
            "Cost",
            ChartKind::Bar,
            &labels,
            &[plot("cost", "s-cost", "cost_usd", Some(0.0))],
            usd_axis,
        ),
    ];
    let t = &summary.totals;
    let models = summary
        .by_model
        .iter()
        .map(|m| ModelRow {
            model: m.model.clone(),
            provider: m.provider.clone(),
            href: m.model_ref.as_deref().map(entity_href),
            requests: thousands(m.totals.requests),
            error_rate: percent(m.totals.error_rate),
            latency: Latency::of(&m.totals.latency_ms),
            tokens: thousands(m.totals.tokens.input + m.totals.tokens.output),
            cost: usd(m.totals.cost_usd),
        })
        .collect();
    let prompts = summary
        .by_prompt_version
        .iter()
        .map(|p| {
            let name = p.name.split_once('@').map_or(p.name.as_str(), |(name, _)| name);
            PromptRow {
                name: p.name.clone(),
                href: format!("/prompts/{}/versions", encode(name)),
                requests: thousands(p.totals.requests),
                error_rate: percent(p.totals.error_rate),
                latency: Latency::of(&p.totals.latency_ms),
                tokens: thousands(p.totals.tokens.input + p.totals.tokens.output),
                cost: usd(p.totals.cost_usd),
            }
        })
        .collect();
    let operations = summary
        .by_operation
        .iter()
        .map(|o| OperationRow {
            operation: o.operation.clone(),
            requests: thousands(o.requests),
            errors: thousands(o.errors),
            latency: Latency::of(&o.latency_ms),
        })
        .collect();
    let server = &summary.server;
    Ok(EntitySignals {
        empty: overview.empty,
        from: summary.from.clone(),
        to: summary.to.clone(),
        requests: thousands(t.requests),
        errors: thousands(t.errors),
        error_rate: percent(t.error_rate),
        latency: Latency::of(&t.latency_ms),
        ttft_p95: ms(t.ttft_ms.p95),
        tokens: TokenCounts::of(&t.tokens),
        cost: usd(t.cost_usd),
        tool_calls: thousands(t.tool_calls),
        agent_runs: thousands(summary.agent_runs),
        charts,
        models,
        prompts,
        operations,
        server: ServerSpans {
            present: server.requests > 0,
            requests: thousands(server.requests),
            errors: thousands(server.errors),
            error_rate: percent(server.error_rate),
            latency: Latency::of(&server.latency_ms),
        },
    })
}

/// Health from alert rules, with the firing rules' names and messages;
/// `unknown` when the rules cannot be read.
fn health_panel(app: &AppState, caller: &Caller, entity: &plinth_model::EntityRef) -> HealthPanel {
    let signals = app.platform.signals();
    let (Ok(entry), Ok(rules)) = (signals.entity_health(caller, entity), signals.rules(caller)) else {
        return HealthPanel { health: "unknown".to_string(), firing: Vec::new(), rules: 0 };
    };
    let describe = |id: &String| {
        let found = rules.iter().find(|(rule, _)| rule.id == *id);
        FiringRule {
            id: id.clone(),
            name: found.map_or(id.as_str(), |(rule, _)| rule.name.as_str()).to_string(),
            severity: found.map(|(rule, _)| rule.severity.clone()),
            // The rule's state is free-form JSON.
            message: found.and_then(|(_, status)| status["message"].as_str()).map(str::to_string),
        }
    };
    HealthPanel { health: entry.health, firing: entry.firing.iter().map(describe).collect(), rules: entry.rules.len() }
}
