//! Signals in the portal: an entity's "Signals" tab (headline numbers,
//! charts, top models and prompt versions, RED of server spans, health,
//! recent traces), team cost, cost anomalies with their explanation, the
//! trace waterfall and prompt-version comparison.
//!
//! Every number comes from the same code the JSON API runs
//! (`signals::api`); this module only shapes it for the templates. Charts
//! are inline SVG: the geometry is computed here, drawn (and escaped) by
//! the `chart` macro of `signals_macros.html`.

use super::catalog::not_found_entity;
use super::{encode, entity_href, lookup_key, page, query};
use crate::api::signals::{number, time_range};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use plinth_app::signals::{AnomalyQuery, PromptVersionsQuery, SignalQuery, TimeRange};
use plinth_app::{AppError, Caller};
use plinth_telemetry::cost::{CostAnomaly, CostLine, TeamCost};
use plinth_telemetry::query::{rfc3339, Percentiles, TraceNode, TraceView};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Kinds with a Signals tab.
pub(super) const SIGNAL_KINDS: &[&str] = &["component", "group", "model", "prompt", "agent"];

/// The range selector: name, hours, series step (about 24–60 points each).
const RANGES: &[(&str, i64, i64)] =
    &[("1h", 1, 60), ("24h", 24, 3600), ("7d", 7 * 24, 21_600), ("30d", 30 * 24, 86_400)];

/// Cost, anomalies and prompt versions: hour rollups make 1h too coarse.
const LONG_RANGES: &[&str] = &["24h", "7d", "30d"];

const RECENT_TRACES: usize = 20;
const TRACE_LIST: usize = 100;
/// Services and models named per team on `/cost`.
const TOP_LINES: usize = 3;

// ---------------------------------------------------------------- shared

/// Whether this server runs the signals capability.
fn enabled(app: &AppState) -> bool {
    app.platform.signals().config().is_ok()
}

/// The page shown when signals are off, a parameter is wrong, or the store fails.
fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, "signals_error.html", json!({"title": title, "heading": title, "message": message}))
}

fn disabled() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Signals are not enabled",
        "This server runs without the signals service, so there is no telemetry to show. `plinth serve` enables it.",
    )
}

fn app_problem(error: AppError) -> Response {
    api_problem(ApiError::from(error))
}

fn api_problem(error: ApiError) -> Response {
    let title = match error.status {
        StatusCode::BAD_REQUEST => "Invalid request",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Signals are unavailable",
    };
    problem(error.status, title, &error.message)
}

/// The selected range (`?range=`, default `default`) and the request's
/// `[from, to)` window; a range outside [`RANGES`] is a 400.
struct Window {
    name: &'static str,
    range: TimeRange,
    offered: &'static [&'static str],
    step: i64,
    from_s: i64,
    to_s: i64,
}

impl Window {
    /// `offered`: the ranges this page offers (all when empty).
    fn from(params: &Params, default: &'static str, offered: &'static [&'static str]) -> Result<Window, ApiError> {
        let wanted = params.one("range").filter(|r| !r.is_empty()).unwrap_or(default);
        let choices: Vec<&str> = RANGES
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| offered.is_empty() || offered.contains(name))
            .collect();
        let found = RANGES.iter().find(|(name, _, _)| *name == wanted && choices.contains(name));
        let Some(&(name, hours, step)) = found else {
            return Err(ApiError::bad_request(format!(
                "`range` must be one of {}, not `{wanted}`",
                choices.join(", ")
            )));
        };
        let mut range = time_range(params)?;
        if range.from.is_none() {
            let to = range.to.unwrap_or_else(|| OffsetDateTime::now_utc() + time::Duration::minutes(1));
            range = TimeRange { from: Some(to - time::Duration::hours(hours)), to: Some(to) };
        }
        let (from_s, to_s) = range.resolve(hours).map_err(ApiError::from)?;
        Ok(Window { name, range, offered, step, from_s, to_s })
    }

    /// Links of the range selector, `base` being the page's path.
    fn selector(&self, base: &str) -> Vec<Value> {
        RANGES
            .iter()
            .filter(|(name, _, _)| self.offered.is_empty() || self.offered.contains(name))
            .map(|(name, _, _)| {
                json!({"name": name, "href": format!("{base}?{}", query(&[("range", name)])), "current": *name == self.name})
            })
            .collect()
    }
}

// ---------------------------------------------------------------- formatting

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn count(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        thousands(value.round() as i64)
    } else {
        format!("{value:.1}")
    }
}

/// Dollars with enough digits that a single call's cost is not `$0.00`.
fn usd(value: f64) -> String {
    let sign = if value < 0.0 { "-" } else { "" };
    let value = value.abs();
    if value == 0.0 {
        "$0.00".to_string()
    } else if value >= 1.0 {
        format!("{sign}${}.{:02}", thousands(value.trunc() as i64), ((value.fract() * 100.0).round() as i64).min(99))
    } else if value >= 0.01 {
        format!("{sign}${value:.4}")
    } else {
        format!("{sign}${value:.6}")
    }
}

fn ms(value: Option<f64>) -> String {
    match value {
        None => "—".to_string(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

fn percent(ratio: f64) -> String {
    let value = ratio * 100.0;
    if value == 0.0 || value >= 10.0 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else {
        format!("p={p:.3}")
    }
}

/// `12:00` for sub-day steps, `11-24` for days.
fn time_label(rfc: &str, step: i64) -> String {
    let range = if step >= 86_400 { 5..10 } else { 11..16 };
    rfc.get(range).unwrap_or(rfc).to_string()
}

fn latency(p: &Percentiles) -> Value {
    json!({"p50": ms(p.p50), "p95": ms(p.p95), "p99": ms(p.p99)})
}

// ---------------------------------------------------------------- charts

/// One series of a chart: its legend label, CSS class and values (a gap
/// where `None`).
pub(super) struct Plot {
    pub label: String,
    pub class: &'static str,
    pub values: Vec<Option<f64>>,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum ChartKind {
    Line,
    Bar,
}

const CHART_WIDTH: f64 = 520.0;
const CHART_HEIGHT: f64 = 170.0;
const PAD_LEFT: f64 = 62.0;
const PAD_RIGHT: f64 = 8.0;
const PAD_TOP: f64 = 10.0;
const PAD_BOTTOM: f64 = 22.0;

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The geometry of a small chart over `labels` (one per point): axes
/// ticks, a path (lines) or rectangles (bars, first series only) per
/// series, and a text summary for screen readers. `format` prints values.
pub(super) fn chart(
    id: &str,
    title: &str,
    kind: ChartKind,
    labels: &[String],
    plots: &[Plot],
    format: fn(f64) -> String,
) -> Value {
    let plot_w = CHART_WIDTH - PAD_LEFT - PAD_RIGHT;
    let plot_h = CHART_HEIGHT - PAD_TOP - PAD_BOTTOM;
    let points = labels.len().max(1);
    let max = plots.iter().flat_map(|p| p.values.iter().flatten()).fold(0.0_f64, |a, b| a.max(*b));
    let has_data = plots.iter().any(|p| p.values.iter().flatten().any(|v| *v != 0.0));
    let top = if max > 0.0 { max } else { 1.0 };
    let slot = plot_w / points as f64;
    let x_of = |i: usize| PAD_LEFT + (i as f64 + 0.5) * slot;
    let y_of = |v: f64| PAD_TOP + plot_h - (v.max(0.0) / top) * plot_h;

    let y_ticks: Vec<Value> =
        [0.0, 0.5, 1.0].iter().map(|f| json!({"y": round1(y_of(top * f)), "label": format(top * f)})).collect();
    // Five labels at most along the time axis.
    let every = points.div_ceil(5).max(1);
    let x_ticks: Vec<Value> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, label)| json!({"x": round1(x_of(i)), "label": label}))
        .collect();

    let mut paths = Vec::new();
    let mut dots = Vec::new();
    let mut bars = Vec::new();
    for (n, plot) in plots.iter().enumerate() {
        if kind == ChartKind::Bar && n == 0 {
            let width = (slot * 0.7).max(1.0);
            for (i, value) in plot.values.iter().enumerate() {
                let Some(v) = value.filter(|v| *v > 0.0) else { continue };
                let y = y_of(v);
                bars.push(json!({
                    "x": round1(x_of(i) - width / 2.0), "y": round1(y), "w": round1(width),
                    "h": round1(PAD_TOP + plot_h - y).max(0.5), "class": plot.class,
                    "title": format!("{}: {}", labels.get(i).map_or("", String::as_str), format(v)),
                }));
            }
            continue;
        }
        // Lines break at gaps; each point also gets a dot, so a lone point shows.
        let mut d = String::new();
        let mut pen_down = false;
        for (i, value) in plot.values.iter().enumerate() {
            match value {
                Some(v) => {
                    let (x, y) = (round1(x_of(i)), round1(y_of(*v)));
                    d.push_str(&format!("{}{x} {y} ", if pen_down { "L" } else { "M" }));
                    pen_down = true;
                    if *v != 0.0 {
                        dots.push(json!({"x": x, "y": y, "class": plot.class,
                                         "title": format!("{} {}: {}", plot.label, labels.get(i).map_or("", String::as_str), format(*v))}));
                    }
                }
                None => pen_down = false,
            }
        }
        paths.push(json!({"d": d.trim_end(), "class": plot.class}));
    }
    let summary: Vec<String> = plots
        .iter()
        .map(|p| {
            let values: Vec<f64> = p.values.iter().flatten().copied().collect();
            let peak = values.iter().copied().fold(0.0_f64, f64::max);
            format!("{} peaks at {}", p.label, format(peak))
        })
        .collect();
    json!({
        "id": id,
        "title": title,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PAD_LEFT,
        "right": CHART_WIDTH - PAD_RIGHT,
        "bottom": PAD_TOP + plot_h,
        "label_y": CHART_HEIGHT - 6.0,
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "paths": paths,
        "dots": dots,
        "bars": bars,
        "legend": plots.iter().map(|p| json!({"label": p.label, "class": p.class})).collect::<Vec<_>>(),
        "has_data": has_data,
        "summary": format!("{title}: {}.", summary.join("; ")),
    })
}

fn usd_axis(v: f64) -> String {
    usd(v)
}

fn ms_axis(v: f64) -> String {
    ms(Some(v))
}

// ---------------------------------------------------------------- entity tab

/// `GET /catalog/{namespace}/{kind}/{name}/signals`.
pub(super) async fn entity_signals_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let key = lookup_key(&kind, &namespace, &name);
    // Cloned out, so the read lock is released before any other look-up.
    let record = app.platform.catalog().view(&caller).get(&key).cloned();
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
    let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
    // The name spans carry: the annotation wins over the Component's name.
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
                Ok(items) => Some(items.iter().map(trace_item).collect::<Vec<_>>()),
                Err(error) => return app_problem(error),
            }
        }
        None => None,
    };
    let traces_href = traces_filter.map(|(param, value)| format!("/traces?{}", query(&[(param, value)])));
    let health = health_panel(&app, &caller, &record.entity_ref);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost:7007").to_string();
    let title = record.summary.title.clone().unwrap_or_else(|| record.summary.name.clone());
    let context = json!({
        "title": format!("Signals of {title}"),
        "entity_title": title,
        "ref": entity_ref,
        "href": href,
        "summary": record.summary,
        "kind_lower": kind_lower,
        "ranges": window.selector(&format!("{href}/signals")),
        "range": window.name,
        "signals": signals,
        "health": health,
        "traces": traces,
        "traces_href": traces_href,
        "host": host,
        "service_name": service_name,
        "prompt_href": (kind_lower == "prompt").then(|| format!("/prompts/{}/versions", encode(&record.summary.name))),
        "cost_href": (kind_lower == "group").then(|| format!("/cost/teams/{}/{}", encode(&record.summary.namespace), encode(&record.summary.name))),
    });
    page(StatusCode::OK, "signals_entity.html", context)
}

/// Headline numbers, charts and breakdowns of one filter over a window.
async fn entity_signals(
    app: &AppState,
    caller: &Caller,
    filter: &SignalQuery,
    window: &Window,
) -> Result<Value, AppError> {
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
    let models: Vec<Value> = summary
        .by_model
        .iter()
        .map(|m| {
            json!({
                "model": m.model, "provider": m.provider,
                "href": m.model_ref.as_deref().map(entity_href),
                "requests": thousands(m.totals.requests), "error_rate": percent(m.totals.error_rate),
                "latency": latency(&m.totals.latency_ms),
                "tokens": thousands(m.totals.tokens.input + m.totals.tokens.output),
                "cost": usd(m.totals.cost_usd),
            })
        })
        .collect();
    let prompts: Vec<Value> = summary
        .by_prompt_version
        .iter()
        .map(|p| {
            let name = p.name.split_once('@').map_or(p.name.as_str(), |(name, _)| name);
            json!({
                "name": p.name,
                "href": format!("/prompts/{}/versions", encode(name)),
                "requests": thousands(p.totals.requests), "error_rate": percent(p.totals.error_rate),
                "latency": latency(&p.totals.latency_ms),
                "tokens": thousands(p.totals.tokens.input + p.totals.tokens.output),
                "cost": usd(p.totals.cost_usd),
            })
        })
        .collect();
    let operations: Vec<Value> = summary
        .by_operation
        .iter()
        .map(|o| json!({"operation": o.operation, "requests": thousands(o.requests), "errors": thousands(o.errors), "latency": latency(&o.latency_ms)}))
        .collect();
    let server = &summary.server;
    let empty = overview.empty;
    Ok(json!({
        "empty": empty,
        "from": summary.from,
        "to": summary.to,
        "requests": thousands(t.requests),
        "errors": thousands(t.errors),
        "error_rate": percent(t.error_rate),
        "latency": latency(&t.latency_ms),
        "ttft_p95": ms(t.ttft_ms.p95),
        "tokens": {
            "input": thousands(t.tokens.input), "output": thousands(t.tokens.output),
            "cache_read": thousands(t.tokens.cache_read), "reasoning": thousands(t.tokens.reasoning),
        },
        "cost": usd(t.cost_usd),
        "tool_calls": thousands(t.tool_calls),
        "agent_runs": thousands(summary.agent_runs),
        "charts": charts,
        "models": models,
        "prompts": prompts,
        "operations": operations,
        "server": {
            "present": server.requests > 0,
            "requests": thousands(server.requests),
            "errors": thousands(server.errors),
            "error_rate": percent(server.error_rate),
            "latency": latency(&server.latency_ms),
        },
    }))
}

/// Health from alert rules, with the firing rules' names and messages.
fn health_panel(app: &AppState, caller: &Caller, entity: &plinth_model::EntityRef) -> Value {
    let signals = app.platform.signals();
    let (Ok(entry), Ok(rules)) = (signals.entity_health(caller, entity), signals.rules(caller)) else {
        return Value::Null;
    };
    let describe = |id: &String| -> Value {
        let found = rules.iter().find(|(rule, _)| rule.id == *id);
        json!({
            "id": id,
            "name": found.map_or(id.as_str(), |(rule, _)| rule.name.as_str()),
            "severity": found.map(|(rule, _)| rule.severity.clone()),
            "message": found.and_then(|(_, status)| status["message"].as_str()),
        })
    };
    json!({
        "health": entry.health,
        "firing": entry.firing.iter().map(describe).collect::<Vec<_>>(),
        "rules": entry.rules.len(),
    })
}

/// A row of a trace list.
fn trace_item(item: &plinth_app::signals::TraceListItem) -> Value {
    json!({
        "trace_id": item.trace_id,
        "href": format!("/traces/{}", encode(&item.trace_id)),
        "name": item.name,
        "service": item.service,
        "agent": item.agent,
        "operation": item.operation,
        "start": item.start,
        "duration": ms(Some(item.duration_ms)),
        "error": item.error,
    })
}

// ---------------------------------------------------------------- traces

/// `GET /traces`: recent traces with GenAI work (`service`, `agent`, `limit`).
pub(super) async fn traces_page(
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
    let rows: Vec<Value> = match app.platform.signals().traces(&caller, service, agent, limit).await {
        Ok(items) => items.iter().map(trace_item).collect(),
        Err(error) => return app_problem(error),
    };
    let context = json!({
        "title": "Traces",
        "traces": rows,
        "service": params.one("service"),
        "agent": params.one("agent"),
    });
    page(StatusCode::OK, "signals_traces.html", context)
}

/// `GET /traces/{traceId}`: the span tree as an indented waterfall.
pub(super) async fn trace_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(trace_id): Path<String>,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    match app.platform.signals().trace(&caller, &trace_id).await {
        Ok(view) => page(StatusCode::OK, "trace.html", trace_context(&view)),
        Err(error) => {
            let error = ApiError::from(error);
            let status = error.status;
            page(
                status,
                "trace.html",
                json!({"title": "Trace not found", "missing": true, "trace_id": trace_id, "message": error.message}),
            )
        }
    }
}

fn trace_context(view: &TraceView) -> Value {
    let total = view.duration_ms.max(0.001);
    let mut rows = Vec::new();
    for root in &view.roots {
        flatten(root, 0, total, &mut rows);
    }
    json!({
        "title": format!("Trace {}", view.trace_id),
        "trace_id": view.trace_id,
        "start": view.start,
        "duration": ms(Some(view.duration_ms)),
        "span_count": view.span_count,
        "services": view.services,
        "tokens": {
            "input": thousands(view.tokens.input), "output": thousands(view.tokens.output),
            "cache_read": thousands(view.tokens.cache_read), "reasoning": thousands(view.tokens.reasoning),
        },
        "cost": usd(view.cost_usd),
        "llm_calls": view.llm_calls,
        "tool_calls": view.tool_calls,
        "errors": view.errors,
        "rows": rows,
    })
}

/// Depth-first rows, each with its bar placed as a share of the trace.
fn flatten(node: &TraceNode, depth: usize, total_ms: f64, out: &mut Vec<Value>) {
    let left = (node.offset_ms / total_ms * 100.0).clamp(0.0, 100.0);
    let width = (node.duration_ms / total_ms * 100.0).clamp(0.3, 100.0 - left).max(0.3);
    let operation = node.operation.clone().unwrap_or_default();
    let op_class = match operation.as_str() {
        "invoke_agent" | "chat" | "execute_tool" | "retrieval" => operation.clone(),
        "" => "none".to_string(),
        _ => "other".to_string(),
    };
    let tokens = node.tokens.map(|u| {
        json!({"input": thousands(u.input as i64), "output": thousands(u.output as i64),
               "cache_read": u.cache_read, "reasoning": u.reasoning})
    });
    let documents: Vec<Value> = node
        .documents
        .iter()
        .map(|d| json!({"id": d.id.as_deref().unwrap_or("—"), "score": d.score.map(|s| format!("{s:.2}"))}))
        .collect();
    let evaluations: Vec<Value> = node
        .evaluations
        .iter()
        .map(|e| json!({"name": e.name, "score": e.score.map(|s| format!("{s:.2}")), "label": e.label, "explanation": e.explanation}))
        .collect();
    out.push(json!({
        "span_id": node.span_id,
        "depth": depth.min(12),
        "indent": depth.min(12) as f64 * 1.1,
        "name": node.name,
        "service": node.service,
        "operation": operation,
        "op_class": op_class,
        "left": round1(left),
        "width": round1(width),
        "offset": ms(Some(node.offset_ms)),
        "duration": ms(Some(node.duration_ms)),
        "error": node.error,
        "error_message": node.error_message,
        "model": node.model,
        "provider": node.provider,
        "agent": node.agent,
        "prompt": node.prompt,
        "tool": node.tool,
        "tool_arguments": node.tool_arguments,
        "tool_result": node.tool_result,
        "data_source": node.data_source,
        "tokens": tokens,
        "ttft": node.ttft_ms.map(|t| ms(Some(t))),
        "cost": node.cost_usd.map(usd),
        "documents": documents,
        "evaluations": evaluations,
        "http": node.http_route.as_ref().map(|r| json!({"route": r, "status": node.http_status})),
    }));
    for child in &node.children {
        flatten(child, depth + 1, total_ms, out);
    }
}

// ---------------------------------------------------------------- cost

/// `GET /cost`: every team's cost over the window (default 30 days).
pub(super) async fn cost_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    cost_view(app, caller, params, None).await
}

/// `GET /cost/teams/{namespace}/{name}`: one team.
pub(super) async fn team_cost_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    params: Params,
) -> Response {
    cost_view(app, caller, params, Some(format!("group:{namespace}/{name}"))).await
}

async fn cost_view(app: AppState, caller: Caller, params: Params, team: Option<String>) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "30d", LONG_RANGES) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let filter = SignalQuery { team: team.clone(), ..SignalQuery::default() };
    let teams = match app.platform.signals().team_costs(&caller, &filter, window.range).await {
        Ok(teams) => teams,
        Err(error) => return app_problem(error),
    };
    // Every day of the window gets a bar, spent or not.
    let first_day = window.from_s - window.from_s.rem_euclid(86_400);
    let days: Vec<i64> = (0..).map(|i| first_day + i * 86_400).take_while(|d| *d < window.to_s).take(400).collect();
    let lines = if team.is_some() { usize::MAX } else { TOP_LINES };
    let rows: Vec<Value> = teams.iter().map(|t| team_json(t, &days, lines)).collect();
    let total: f64 = teams.iter().map(|t| t.cost_usd).sum();
    let base = match &team {
        Some(t) => team_cost_href(t),
        None => "/cost".to_string(),
    };
    let team_link = team.as_deref().map(|t| json!({"label": t, "href": entity_href(t)}));
    let context = json!({
        "title": match &team { Some(t) => format!("Cost of {t}"), None => "Cost".to_string() },
        "team": team_link,
        "teams": rows,
        "total": usd(total),
        "ranges": window.selector(&base),
        "from": rfc3339(window.from_s),
        "to": rfc3339(window.to_s),
    });
    page(StatusCode::OK, if team.is_some() { "cost_team.html" } else { "cost.html" }, context)
}

fn team_cost_href(team_ref: &str) -> String {
    let rest = team_ref.split_once(':').map_or(team_ref, |(_, rest)| rest);
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    format!("/cost/teams/{}/{}", encode(namespace), encode(name))
}

fn team_json(team: &TeamCost, days: &[i64], lines: usize) -> Value {
    let line = |l: &CostLine| json!({"name": l.name, "requests": thousands(l.requests), "tokens": thousands(l.tokens), "cost": usd(l.cost_usd)});
    let labels: Vec<String> = days.iter().map(|d| time_label(&rfc3339(*d), 86_400)).collect();
    let values: Vec<Option<f64>> = days
        .iter()
        .map(|d| {
            let day = rfc3339(*d);
            Some(team.daily.iter().find(|(t, _)| *t == day).map_or(0.0, |(_, usd)| *usd))
        })
        .collect();
    let id = team.team.as_deref().unwrap_or("unattributed").replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    json!({
        "team": team.team,
        "href": team.team.as_deref().map(entity_href),
        "cost_href": team.team.as_deref().map(team_cost_href),
        "title": team.title.as_deref().or(team.team.as_deref()).unwrap_or("Unattributed services"),
        "cost_center": team.cost_center,
        "requests": thousands(team.requests),
        "tokens": thousands(team.tokens),
        "cost": usd(team.cost_usd),
        "services": team.services.iter().take(lines).map(line).collect::<Vec<_>>(),
        "models": team.models.iter().take(lines).map(line).collect::<Vec<_>>(),
        "more_services": team.services.len().saturating_sub(lines),
        "more_models": team.models.len().saturating_sub(lines),
        "daily": chart(&format!("daily-{id}"), "Daily cost", ChartKind::Bar, &labels,
                       &[Plot { label: "cost".into(), class: "s-cost", values }], usd_axis),
    })
}

/// `GET /cost/anomalies`: hourly cost anomalies, explained.
pub(super) async fn anomalies_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "24h", LONG_RANGES) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let request = match (number(&params, "relative"), number(&params, "minUsd")) {
        (Ok(relative), Ok(min_usd)) => AnomalyQuery {
            filter: SignalQuery {
                team: params.one("team").filter(|v| !v.is_empty()).map(str::to_string),
                service: params.one("service").filter(|v| !v.is_empty()).map(str::to_string),
                ..SignalQuery::default()
            },
            range: window.range,
            relative,
            min_usd,
        },
        (Err(error), _) | (_, Err(error)) => return api_problem(error),
    };
    let list = match app.platform.signals().anomalies(&caller, &request).await {
        Ok(list) => list,
        Err(error) => return app_problem(error),
    };
    let anomalies: Vec<Value> = list.anomalies.iter().enumerate().map(|(i, a)| anomaly_json(i, a)).collect();
    let context = json!({
        "title": "Cost anomalies",
        "anomalies": anomalies,
        "from": list.from,
        "to": list.to,
        "relative": percent(list.relative_threshold),
        "min_usd": usd(list.min_abs_usd),
        "ranges": window.selector("/cost/anomalies"),
    });
    page(StatusCode::OK, "cost_anomalies.html", context)
}

fn anomaly_json(index: usize, found: &CostAnomaly) -> Value {
    let a = &found.anomaly;
    let kind = serde_json::to_value(a.kind).ok().and_then(|k| k.as_str().map(str::to_string)).unwrap_or_default();
    let kind_label = match kind.as_str() {
        "traffic_spike" => "traffic spike",
        "misconfiguration" => "misconfiguration",
        "price_or_model_change" => "price or model change",
        _ => "mixed",
    };
    let effects = [
        ("volume", "Volume (requests)", a.effects.volume_usd),
        ("unit", "Unit usage (tokens/request)", a.effects.unit_usage_usd),
        ("rate", "Rate and model mix ($/token)", a.effects.rate_mix_usd),
    ];
    let magnitude: f64 = effects.iter().map(|(_, _, v)| v.abs()).sum::<f64>().max(1e-12);
    let effects: Vec<Value> = effects
        .iter()
        .map(|(class, label, v)| {
            json!({"class": class, "label": label, "usd": usd(*v), "share": round1(v.abs() / magnitude * 100.0)})
        })
        .collect();
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("—".to_string(), f);
    let (act, exp) = (&a.drivers.actual, &a.drivers.expected);
    let drivers = vec![
        json!({"name": "Requests", "actual": count(act.requests), "expected": count(exp.requests)}),
        json!({"name": "Tokens per request", "actual": opt(act.tokens_per_request, count), "expected": opt(exp.tokens_per_request, count)}),
        json!({"name": "Billed tokens per request", "actual": opt(act.billed_tokens_per_request, count), "expected": opt(exp.billed_tokens_per_request, count)}),
        json!({"name": "Cost per 1k billed tokens", "actual": opt(act.cost_per_1k_billed_tokens, usd), "expected": opt(exp.cost_per_1k_billed_tokens, usd)}),
        json!({"name": "Cache hit ratio", "actual": opt(act.cache_hit_ratio, percent), "expected": opt(exp.cache_hit_ratio, percent)}),
        json!({"name": "Tool calls per agent run", "actual": opt(act.tool_calls_per_agent_run, count), "expected": opt(exp.tool_calls_per_agent_run, count)}),
    ];
    let shares: Vec<Value> = a
        .drivers
        .model_shares
        .iter()
        .map(|m| json!({"model": m.model, "actual": percent(m.actual_share), "expected": percent(m.expected_share)}))
        .collect();
    json!({
        "id": format!("anomaly-{}", index + 1),
        "hour": found.hour,
        "team": found.team.as_deref().map(|t| json!({"label": t, "href": entity_href(t), "cost_href": team_cost_href(t)})),
        "service": found.service,
        "models": found.models,
        "actual": usd(a.actual_usd),
        "expected": usd(a.expected_usd),
        "impact": usd(a.impact_usd),
        "change": if a.relative_change.is_finite() { format!("{}{}", if a.relative_change >= 0.0 { "+" } else { "" }, percent(a.relative_change)) } else { "new spend".to_string() },
        "direction": a.direction,
        "kind": kind,
        "kind_label": kind_label,
        "baseline": a.baseline.replace('_', " "),
        "effects": effects,
        "drivers": drivers,
        "shares": shares,
        "summary": a.summary,
    })
}

// ---------------------------------------------------------------- prompts

/// `GET /prompts/{name}/versions`: versions against the baseline.
pub(super) async fn prompt_versions_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "7d", LONG_RANGES) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let alpha = match number(&params, "alpha") {
        Ok(alpha) => alpha,
        Err(error) => return api_problem(error),
    };
    let request = PromptVersionsQuery {
        prompt: name,
        baseline: params.one("baseline").filter(|b| !b.is_empty()).map(str::to_string),
        alpha,
        range: window.range,
    };
    let comparison = match app.platform.signals().prompt_versions(&caller, &request).await {
        Ok(comparison) => comparison,
        Err(error) => return app_problem(error),
    };
    let versions: Vec<Value> = comparison
        .versions
        .iter()
        .map(|v| {
            // A marker per compared metric: direction, significance, p-value.
            let marker = |metric: &str| -> Value {
                match v.differences.iter().find(|d| d.metric == metric) {
                    Some(d) => json!({
                        "arrow": if d.direction == "higher" { "▲" } else { "▼" },
                        "significant": d.significant,
                        "direction": d.direction,
                        "p": p_value(d.p_value),
                        "test": d.test,
                    }),
                    None => Value::Null,
                }
            };
            json!({
                "version": v.version,
                "baseline": v.baseline,
                "requests": thousands(v.requests),
                "latency": latency(&v.latency_ms),
                "tokens_per_request": count((v.tokens_per_request * 10.0).round() / 10.0),
                "cost_per_request": usd(v.cost_per_request_usd),
                "error_rate": percent(v.error_rate),
                "mean_score": v.mean_score.map(|s| format!("{s:.2}")),
                "scores": v.scores,
                "samples": v.samples,
                "marks": {
                    "latency": marker("latency"),
                    "tokens": marker("tokens_per_request"),
                    "cost": marker("cost_per_request"),
                    "errors": marker("error_rate"),
                    "score": marker("evaluation_score"),
                },
            })
        })
        .collect();
    let base = format!("/prompts/{}/versions", encode(&comparison.prompt));
    let context = json!({
        "title": format!("Versions of {}", comparison.prompt),
        "prompt": comparison.prompt,
        "prompt_href": comparison.prompt_ref.as_deref().map(entity_href),
        "baseline": comparison.baseline,
        "alpha": comparison.alpha,
        "from": comparison.from,
        "to": comparison.to,
        "versions": versions,
        "ranges": window.selector(&base),
    });
    page(StatusCode::OK, "prompt_versions.html", context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_for_people() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1200), "-1,200");
        assert_eq!(usd(0.00036), "$0.000360");
        assert_eq!(usd(0.125), "$0.1250");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(ms(Some(1500.0)), "1.50 s");
        assert_eq!(ms(Some(120.0)), "120 ms");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(p_value(0.0031), "p=0.003");
    }

    #[test]
    fn charts_scale_to_the_largest_value() {
        let labels: Vec<String> = (0..4).map(|i| format!("{i:02}:00")).collect();
        let plots = [Plot {
            label: "requests".into(),
            class: "s-requests",
            values: vec![Some(0.0), Some(2.0), None, Some(4.0)],
        }];
        let bars = chart("c", "Requests", ChartKind::Bar, &labels, &plots, count);
        assert_eq!(bars["bars"].as_array().map(Vec::len), Some(2), "zero and missing steps draw no bar");
        assert_eq!(bars["y_ticks"][2]["label"], "4");
        let line = chart("c", "Requests", ChartKind::Line, &labels, &plots, count);
        let d = line["paths"][0]["d"].as_str().unwrap_or_default();
        assert_eq!(d.matches('M').count(), 2, "a gap starts a new segment: {d}");
        let empty = chart("c", "Requests", ChartKind::Bar, &labels, &[], count);
        assert_eq!(empty["has_data"], false);
    }
}
