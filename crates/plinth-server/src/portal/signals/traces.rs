//! Recent traces and the trace waterfall.

use super::chart::round1;
use super::{api_problem, app_problem, disabled, enabled, ms, thousands, usd, TokenCounts, TraceRow};
use crate::error::ApiError;
use crate::params::Params;
use crate::portal::page;
use crate::portal::view::When;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::Caller;
use plinth_telemetry::query::TraceNode;
use serde::Serialize;

const TRACE_LIST: usize = 100;

/// `signals_traces.html`: recent traces, optionally of one service or agent.
#[derive(Serialize)]
struct TracesView<'a> {
    title: &'static str,
    traces: Vec<TraceRow>,
    /// The `service` filter, as given.
    service: Option<&'a str>,
    /// The `agent` filter, as given.
    agent: Option<&'a str>,
}

/// `trace.html` for a stored trace: totals and the span tree as an
/// indented waterfall.
#[derive(Serialize)]
struct TraceView {
    title: String,
    /// Always false: see [`TraceMissingView`].
    missing: bool,
    trace_id: String,
    start: When,
    duration: String,
    span_count: usize,
    services: Vec<String>,
    tokens: TokenCounts,
    cost: String,
    llm_calls: usize,
    tool_calls: usize,
    errors: usize,
    /// Depth first.
    rows: Vec<SpanRow>,
}

/// `trace.html` for a trace that is not stored (or not readable).
#[derive(Serialize)]
struct TraceMissingView<'a> {
    title: &'static str,
    /// Always true.
    missing: bool,
    trace_id: &'a str,
    message: &'a str,
}

/// A span of the waterfall, with its bar placed as a share of the trace.
#[derive(Serialize)]
struct SpanRow {
    span_id: String,
    depth: usize,
    /// Indentation in rem.
    indent: f64,
    name: String,
    /// `gen_ai.operation.name` (empty when none).
    operation: String,
    /// The CSS class of the operation: known ones, `other` or `none`.
    op_class: String,
    /// Start of the bar, % of the trace.
    left: f64,
    /// Width of the bar, % of the trace.
    width: f64,
    offset: String,
    duration: String,
    error: bool,
    error_message: Option<String>,
    model: Option<String>,
    agent: Option<String>,
    prompt: Option<String>,
    tool: Option<String>,
    tool_arguments: Option<String>,
    tool_result: Option<String>,
    data_source: Option<String>,
    tokens: Option<SpanTokens>,
    ttft: Option<String>,
    cost: Option<String>,
    documents: Vec<DocumentRow>,
    evaluations: Vec<EvaluationRow>,
    http: Option<HttpRoute>,
}

#[derive(Serialize)]
struct SpanTokens {
    input: String,
    output: String,
}

/// A retrieved document (`—` without an id).
#[derive(Serialize)]
struct DocumentRow {
    id: String,
    score: Option<String>,
}

#[derive(Serialize)]
struct EvaluationRow {
    name: String,
    score: Option<String>,
    label: Option<String>,
    explanation: Option<String>,
}

/// The server route of a span, and its HTTP status.
#[derive(Serialize)]
struct HttpRoute {
    route: String,
    status: Option<i64>,
}

/// `GET /traces`: recent traces with GenAI work (`service`, `agent`, `limit`).
pub(crate) async fn traces_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let limit = match params.int_or("limit", 1..=500, TRACE_LIST) {
        Ok(limit) => limit,
        Err(error) => return api_problem(error),
    };
    let service = params.one("service").filter(|v| !v.is_empty());
    let agent = params.one("agent").filter(|v| !v.is_empty());
    let traces = match app.platform.signals().traces(&caller, service, agent, limit).await {
        Ok(items) => items.iter().map(TraceRow::of).collect(),
        Err(error) => return app_problem(error),
    };
    let view = TracesView { title: "Traces", traces, service: params.one("service"), agent: params.one("agent") };
    page(StatusCode::OK, "signals_traces.html", &view)
}

/// `GET /traces/{traceId}`: the span tree as an indented waterfall.
pub(crate) async fn trace_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(trace_id): Path<String>,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    match app.platform.signals().trace(&caller, &trace_id).await {
        Ok(trace) => page(StatusCode::OK, "trace.html", &TraceView::of(&trace)),
        Err(error) => {
            let error = ApiError::from(error);
            let view = TraceMissingView {
                title: "Trace not found",
                missing: true,
                trace_id: &trace_id,
                message: &error.message,
            };
            page(error.status, "trace.html", &view)
        }
    }
}

impl TraceView {
    fn of(trace: &plinth_telemetry::query::TraceView) -> TraceView {
        let total = trace.duration_ms.max(0.001);
        let mut rows = Vec::new();
        for root in &trace.roots {
            flatten(root, 0, total, &mut rows);
        }
        TraceView {
            title: format!("Trace {}", trace.trace_id),
            missing: false,
            trace_id: trace.trace_id.clone(),
            start: When::parse(&trace.start),
            duration: ms(Some(trace.duration_ms)),
            span_count: trace.span_count,
            services: trace.services.clone(),
            tokens: TokenCounts::of(&trace.tokens),
            cost: usd(trace.cost_usd),
            llm_calls: trace.llm_calls,
            tool_calls: trace.tool_calls,
            errors: trace.errors,
            rows,
        }
    }
}

/// Depth-first rows, each with its bar placed as a share of the trace.
fn flatten(node: &TraceNode, depth: usize, total_ms: f64, out: &mut Vec<SpanRow>) {
    let left = (node.offset_ms / total_ms * 100.0).clamp(0.0, 100.0);
    let width = (node.duration_ms / total_ms * 100.0).clamp(0.3, 100.0 - left).max(0.3);
    let operation = node.operation.clone().unwrap_or_default();
    let op_class = match operation.as_str() {
        "invoke_agent" | "chat" | "execute_tool" | "retrieval" => operation.clone(),
        "" => "none".to_string(),
        _ => "other".to_string(),
    };
    let score = |s: Option<f64>| s.map(|s| format!("{s:.2}"));
    out.push(SpanRow {
        span_id: node.span_id.clone(),
        depth: depth.min(12),
        indent: depth.min(12) as f64 * 1.1,
        name: node.name.clone(),
        operation,
        op_class,
        left: round1(left),
        width: round1(width),
        offset: ms(Some(node.offset_ms)),
        duration: ms(Some(node.duration_ms)),
        error: node.error,
        error_message: node.error_message.clone(),
        model: node.model.clone(),
        agent: node.agent.clone(),
        prompt: node.prompt.clone(),
        tool: node.tool.clone(),
        tool_arguments: node.tool_arguments.clone(),
        tool_result: node.tool_result.clone(),
        data_source: node.data_source.clone(),
        tokens: node
            .tokens
            .map(|u| SpanTokens { input: thousands(u.input as i64), output: thousands(u.output as i64) }),
        ttft: node.ttft_ms.map(|t| ms(Some(t))),
        cost: node.cost_usd.map(usd),
        documents: node
            .documents
            .iter()
            .map(|d| DocumentRow { id: d.id.as_deref().unwrap_or("—").to_string(), score: score(d.score) })
            .collect(),
        evaluations: node
            .evaluations
            .iter()
            .map(|e| EvaluationRow {
                name: e.name.clone(),
                score: score(e.score),
                label: e.label.clone(),
                explanation: e.explanation.clone(),
            })
            .collect(),
        http: node.http_route.as_ref().map(|r| HttpRoute { route: r.clone(), status: node.http_status }),
    });
    for child in &node.children {
        flatten(child, depth + 1, total_ms, out);
    }
}
