//! Answers from rollups and stored spans: summaries, series, trace trees.
//!
//! Pure functions over rows; the server fetches the rows (hour rows for
//! whole hours, minute rows for the edges, see [`plan_range`]).

use std::collections::BTreeMap;

use crate::records::{RollupKey, RollupRow, SpanRow};
use serde::Serialize;

use crate::genai::SpanFacts;
use crate::rollup::{Cell, Sketch, SERVER_OPERATION};

/// Whether an operation is a call to a model (the default scope of
/// summaries: requests, latency, tokens and cost of model calls).
pub fn is_model_call(operation: &str) -> bool {
    !operation.starts_with(crate::metrics::METRICS_PREFIX)
        && !matches!(
            operation,
            "invoke_agent" | "create_agent" | "execute_tool" | "retrieval" | "workflow" | SERVER_OPERATION
        )
}

/// Which rows of a range to read: whole days from the day table, whole
/// hours at their edges from the hour table, the ragged minutes from the
/// minute table. `from`/`to` are aligned to minutes (`from` down, `to` up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    pub from_s: i64,
    pub to_s: i64,
    /// Day-table range, if any whole day is inside.
    pub days: Option<(i64, i64)>,
    /// Hour-table ranges.
    pub hours: Vec<(i64, i64)>,
    /// Minute-table ranges.
    pub minutes: Vec<(i64, i64)>,
}

fn align_up(t: i64, step: i64) -> i64 {
    if t.rem_euclid(step) == 0 {
        t
    } else {
        t - t.rem_euclid(step) + step
    }
}

fn align_down(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

/// Splits `[from, to)` into the coarsest buckets that fit: `(from, to)` of
/// whole `step`s inside, and the edges left over.
type Span = (i64, i64);

fn split(from: i64, to: i64, step: i64) -> Option<(Span, Vec<Span>)> {
    let (first, last) = (align_up(from, step), align_down(to, step));
    if first >= last {
        return None;
    }
    let edges = [(from, first), (last, to)].into_iter().filter(|(a, b)| a < b).collect();
    Some(((first, last), edges))
}

pub fn plan_range(from_s: i64, to_s: i64) -> RangePlan {
    plan_range_upto(from_s, to_s, 86_400)
}

/// As [`plan_range`], using buckets no coarser than `coarsest` seconds
/// (a series with hourly points must not read day rows).
pub fn plan_range_upto(from_s: i64, to_s: i64, coarsest: i64) -> RangePlan {
    let from_s = align_down(from_s, 60);
    let to_s = align_up(to_s, 60);
    let mut plan = RangePlan { from_s, to_s, days: None, hours: Vec::new(), minutes: Vec::new() };
    let day_split = if coarsest >= 86_400 { split(from_s, to_s, 86_400) } else { None };
    let hour_spans = match day_split {
        Some((days, edges)) => {
            plan.days = Some(days);
            edges
        }
        None => vec![(from_s, to_s)],
    };
    for (from, to) in hour_spans {
        match split(from, to, 3600) {
            Some((hours, edges)) => {
                plan.hours.push(hours);
                plan.minutes.extend(edges);
            }
            None => plan.minutes.push((from, to)),
        }
    }
    plan
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(sketch: &Sketch) -> Percentiles {
        let round = |v: Option<f64>| v.map(|x| (x * 1000.0).round() / 1000.0);
        Percentiles {
            p50: round(sketch.quantile(0.50)),
            p95: round(sketch.quantile(0.95)),
            p99: round(sketch.quantile(0.99)),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tokens {
    /// All input tokens (cache reads and writes included).
    pub input: i64,
    /// All output tokens (reasoning included).
    pub output: i64,
    pub cache_read: i64,
    pub cache_write: i64,
    pub reasoning: i64,
}

/// Totals of a set of calls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub latency_ms: Percentiles,
    pub ttft_ms: Percentiles,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub tool_calls: i64,
}

impl Totals {
    pub fn of(cell: &Cell) -> Totals {
        Totals {
            requests: cell.requests,
            errors: cell.errors,
            error_rate: if cell.requests > 0 { cell.errors as f64 / cell.requests as f64 } else { 0.0 },
            latency_ms: Percentiles::of(&cell.duration),
            ttft_ms: Percentiles::of(&cell.ttft),
            tokens: Tokens {
                input: cell.input_tokens,
                output: cell.output_tokens,
                cache_read: cell.cache_read_tokens,
                cache_write: cell.cache_write_tokens,
                reasoning: cell.reasoning_tokens,
            },
            cost_usd: round_usd(cell.cost_usd),
            tool_calls: cell.tool_calls,
        }
    }
}

/// Dollars to a millionth of a cent, so sums print cleanly.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e8).round() / 1e8
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelTotals {
    pub model: String,
    pub provider: String,
    /// The catalogued Model this name maps to, when there is one.
    pub model_ref: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationTotals {
    pub operation: String,
    pub requests: i64,
    pub errors: i64,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamedTotals {
    pub name: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// `GET /api/signals/summary`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub from: String,
    pub to: String,
    /// Model calls (chat, completions, embeddings, …) in scope.
    #[serde(flatten)]
    pub totals: Totals,
    pub by_model: Vec<ModelTotals>,
    /// Every GenAI operation (agent runs, tool calls, retrievals too).
    pub by_operation: Vec<OperationTotals>,
    /// Prompt versions of the calls in scope.
    pub by_prompt_version: Vec<NamedTotals>,
    /// Agents of the calls in scope.
    pub by_agent: Vec<NamedTotals>,
    /// Services of the calls in scope, with their Component and team.
    pub by_service: Vec<ServiceTotals>,
    /// Rate, errors and duration of server spans (HTTP/RPC) in scope.
    pub server: Totals,
    /// Agent runs (`invoke_agent`) in scope.
    pub agent_runs: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceTotals {
    pub service: String,
    pub component: Option<String>,
    pub team: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Folds rows into a summary. `model_ref` maps a model name to its Model.
pub fn summarise(rows: &[RollupRow], from: String, to: String, model_ref: &dyn Fn(&str) -> Option<String>) -> Summary {
    let mut calls = Cell::default();
    let mut server = Cell::default();
    let mut by_model: BTreeMap<(String, String), Cell> = BTreeMap::new();
    let mut by_op: BTreeMap<String, Cell> = BTreeMap::new();
    let mut by_prompt: BTreeMap<String, Cell> = BTreeMap::new();
    let mut by_agent: BTreeMap<String, Cell> = BTreeMap::new();
    let mut by_service: BTreeMap<(String, String, String), Cell> = BTreeMap::new();
    let mut agent_runs = 0;
    // Merge rows of the same key first (many buckets, few keys), so each
    // breakdown below merges one cell per key instead of one per row.
    let mut by_key: rustc_hash::FxHashMap<&RollupKey, Cell> = rustc_hash::FxHashMap::default();
    for row in rows {
        match by_key.get_mut(&row.key) {
            Some(cell) => cell.merge_row(row),
            None => {
                by_key.insert(&row.key, Cell::from_row(row));
            }
        }
    }
    for (key, cell) in &by_key {
        let key: &RollupKey = key;
        if key.operation == SERVER_OPERATION {
            server.merge(cell);
            continue;
        }
        by_op.entry(key.operation.clone()).or_default().merge(cell);
        if key.operation == "invoke_agent" {
            agent_runs += cell.requests;
        }
        if key.operation == "execute_tool" {
            calls.tool_calls += cell.tool_calls;
        }
        if !is_model_call(&key.operation) {
            continue;
        }
        calls.merge(cell);
        by_model.entry((key.model.clone(), key.provider.clone())).or_default().merge(cell);
        if !key.prompt.is_empty() {
            let name = if key.prompt_version.is_empty() {
                key.prompt.clone()
            } else {
                format!("{}@{}", key.prompt, key.prompt_version)
            };
            by_prompt.entry(name).or_default().merge(cell);
        }
        if !key.agent.is_empty() {
            by_agent.entry(key.agent.clone()).or_default().merge(cell);
        }
        by_service.entry((key.service.clone(), key.component.clone(), key.team.clone())).or_default().merge(cell);
    }
    let mut by_model: Vec<ModelTotals> = by_model
        .into_iter()
        .map(|((model, provider), cell)| ModelTotals {
            model_ref: model_ref(&model),
            model,
            provider,
            totals: Totals::of(&cell),
        })
        .collect();
    by_model.sort_by(|a, b| {
        b.totals.cost_usd.total_cmp(&a.totals.cost_usd).then(b.totals.requests.cmp(&a.totals.requests))
    });
    let named = |map: BTreeMap<String, Cell>| {
        let mut out: Vec<NamedTotals> =
            map.into_iter().map(|(name, cell)| NamedTotals { name, totals: Totals::of(&cell) }).collect();
        out.sort_by_key(|n| std::cmp::Reverse(n.totals.requests));
        out
    };
    let mut by_service: Vec<ServiceTotals> = by_service
        .into_iter()
        .map(|((service, component, team), cell)| ServiceTotals {
            service,
            component: (!component.is_empty()).then_some(component),
            team: (!team.is_empty()).then_some(team),
            totals: Totals::of(&cell),
        })
        .collect();
    by_service.sort_by(|a, b| b.totals.cost_usd.total_cmp(&a.totals.cost_usd));
    Summary {
        from,
        to,
        totals: Totals::of(&calls),
        by_model,
        by_operation: by_op
            .into_iter()
            .map(|(operation, cell)| OperationTotals {
                operation,
                requests: cell.requests,
                errors: cell.errors,
                latency_ms: Percentiles::of(&cell.duration),
            })
            .collect(),
        by_prompt_version: named(by_prompt),
        by_agent: named(by_agent),
        by_service,
        server: Totals::of(&server),
        agent_runs,
    }
}

/// The metrics a series can plot.
pub const SERIES_METRICS: &[&str] = &[
    "requests",
    "errors",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "ttft_p50",
    "ttft_p95",
    "ttft_p99",
    "cost_usd",
    "tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "tool_calls",
];

/// The dimensions a series can group by.
pub const GROUP_BY: &[&str] =
    &["none", "service", "team", "model", "provider", "operation", "prompt", "prompt_version", "agent", "component"];

pub fn group_value(key: &RollupKey, group_by: &str) -> String {
    match group_by {
        "service" => key.service.clone(),
        "team" => key.team.clone(),
        "model" => key.model.clone(),
        "provider" => key.provider.clone(),
        "operation" => key.operation.clone(),
        "prompt" => key.prompt.clone(),
        "prompt_version" => {
            if key.prompt.is_empty() {
                String::new()
            } else {
                format!("{}@{}", key.prompt, key.prompt_version)
            }
        }
        "agent" => key.agent.clone(),
        "component" => key.component.clone(),
        _ => "all".to_string(),
    }
}

pub fn metric_value(cell: &Cell, metric: &str) -> Option<f64> {
    let value = match metric {
        "requests" => cell.requests as f64,
        "errors" => cell.errors as f64,
        "error_rate" => {
            if cell.requests == 0 {
                return None;
            }
            cell.errors as f64 / cell.requests as f64
        }
        "latency_p50" => return cell.duration.quantile(0.5),
        "latency_p95" => return cell.duration.quantile(0.95),
        "latency_p99" => return cell.duration.quantile(0.99),
        "ttft_p50" => return cell.ttft.quantile(0.5),
        "ttft_p95" => return cell.ttft.quantile(0.95),
        "ttft_p99" => return cell.ttft.quantile(0.99),
        "cost_usd" => round_usd(cell.cost_usd),
        "tokens" => (cell.input_tokens + cell.output_tokens) as f64,
        "input_tokens" => cell.input_tokens as f64,
        "output_tokens" => cell.output_tokens as f64,
        "cache_read_tokens" => cell.cache_read_tokens as f64,
        "reasoning_tokens" => cell.reasoning_tokens as f64,
        "tool_calls" => cell.tool_calls as f64,
        _ => return None,
    };
    Some(value)
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    /// Start of the step (RFC 3339).
    pub t: String,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub group: String,
    pub points: Vec<SeriesPoint>,
}

/// `GET /api/signals/series`.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesResponse {
    pub metric: String,
    pub group_by: String,
    pub step_seconds: i64,
    pub from: String,
    pub to: String,
    pub series: Vec<Series>,
}

/// Buckets rows into `step`-second points per group; every group gets
/// every step (empty steps are 0 for counts, `null` for percentiles).
/// At most `max_groups` groups (largest by requests) are returned.
pub fn series(
    rows: &[RollupRow],
    metric: &str,
    group_by: &str,
    from_s: i64,
    to_s: i64,
    step_s: i64,
    max_groups: usize,
) -> Vec<Series> {
    let step_s = step_s.max(60);
    let steps = ((to_s - from_s + step_s - 1) / step_s).max(0) as usize;
    let mut groups: BTreeMap<String, Vec<Cell>> = BTreeMap::new();
    for row in rows {
        if row.bucket < from_s || row.bucket >= to_s {
            continue;
        }
        let index = ((row.bucket - from_s) / step_s) as usize;
        let cells = groups.entry(group_value(&row.key, group_by)).or_insert_with(|| vec![Cell::default(); steps]);
        if let Some(cell) = cells.get_mut(index) {
            cell.merge(&Cell::from_row(row));
        }
    }
    let mut ranked: Vec<(String, Vec<Cell>)> = groups.into_iter().collect();
    ranked.sort_by_key(|(_, cells)| std::cmp::Reverse(cells.iter().map(|c| c.requests).sum::<i64>()));
    ranked.truncate(max_groups);
    ranked
        .into_iter()
        .map(|(group, cells)| Series {
            group,
            points: cells
                .iter()
                .enumerate()
                .map(|(i, cell)| SeriesPoint {
                    t: rfc3339(from_s + i as i64 * step_s),
                    value: metric_value(cell, metric).or(if cell.requests == 0 && !metric.contains("_p") {
                        Some(0.0)
                    } else {
                        None
                    }),
                })
                .collect(),
        })
        .collect()
}

pub fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn rfc3339_ns(unix_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ns as i128)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

// ------------------------------------------------------------------ traces --

/// One span of a trace view.
#[derive(Debug, Clone, Serialize)]
pub struct TraceNode {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub service: String,
    pub kind: String,
    /// GenAI operation (`invoke_agent`, `chat`, `execute_tool`, `retrieval`, …).
    pub operation: Option<String>,
    pub start: String,
    /// Milliseconds after the trace's first span started.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub error: bool,
    pub error_message: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub agent: Option<String>,
    pub prompt: Option<String>,
    pub tool: Option<String>,
    pub tool_arguments: Option<String>,
    pub tool_result: Option<String>,
    pub data_source: Option<String>,
    pub tokens: Option<crate::genai::Usage>,
    pub ttft_ms: Option<f64>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    pub price_version: Option<String>,
    pub documents: Vec<crate::genai::RetrievedDocument>,
    pub evaluations: Vec<crate::genai::Evaluation>,
    pub http_route: Option<String>,
    pub http_status: Option<i64>,
    pub children: Vec<TraceNode>,
}

/// `GET /api/traces/{traceId}`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceView {
    pub trace_id: String,
    pub span_count: usize,
    pub start: String,
    pub duration_ms: f64,
    pub services: Vec<String>,
    /// Sums over model calls (agent and tool spans repeat their children).
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub llm_calls: usize,
    pub tool_calls: usize,
    pub errors: usize,
    pub roots: Vec<TraceNode>,
}

/// Builds the span tree; spans whose parent is missing become roots.
/// `None` when no stored span has a body.
pub fn trace_view(trace_id: &str, rows: &[SpanRow]) -> Option<TraceView> {
    let mut facts: Vec<SpanFacts> =
        rows.iter().filter_map(|r| r.body.as_ref()?.whole()).filter_map(|b| serde_json::from_str(b).ok()).collect();
    if facts.is_empty() {
        return None;
    }
    facts.sort_by_key(|f| f.start_ns);
    let start_ns = facts.iter().map(|f| f.start_ns).min().unwrap_or(0);
    let end_ns = facts.iter().map(|f| f.end_ns).max().unwrap_or(start_ns);
    let ids: std::collections::HashSet<&str> = facts.iter().map(|f| f.span_id.as_str()).collect();
    let mut children: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        if !f.parent_span_id.is_empty() && ids.contains(f.parent_span_id.as_str()) && f.parent_span_id != f.span_id {
            children.entry(f.parent_span_id.clone()).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let mut tokens = Tokens::default();
    let mut cost = 0.0;
    let mut llm_calls = 0;
    for f in &facts {
        if f.bills_tokens() {
            llm_calls += 1;
            tokens.input += f.usage.input as i64;
            tokens.output += f.usage.output as i64;
            tokens.cache_read += f.usage.cache_read as i64;
            tokens.cache_write += f.usage.cache_write as i64;
            tokens.reasoning += f.usage.reasoning as i64;
            cost += f.cost_usd.unwrap_or(0.0);
        }
    }
    let mut services: Vec<String> = facts.iter().map(|f| f.service.clone()).collect();
    services.sort();
    services.dedup();
    let mut visited = vec![false; facts.len()];
    let built: Vec<TraceNode> =
        roots.iter().map(|&i| build_node(i, &facts, &children, start_ns, &mut visited, 0)).collect();
    Some(TraceView {
        trace_id: trace_id.to_string(),
        span_count: facts.len(),
        start: rfc3339_ns(start_ns),
        duration_ms: (end_ns - start_ns) as f64 / 1e6,
        services,
        tokens,
        cost_usd: round_usd(cost),
        llm_calls,
        tool_calls: facts.iter().filter(|f| f.operation.as_deref() == Some("execute_tool")).count(),
        errors: facts.iter().filter(|f| f.error).count(),
        roots: built,
    })
}

fn build_node(
    i: usize,
    facts: &[SpanFacts],
    children: &BTreeMap<String, Vec<usize>>,
    trace_start: i64,
    visited: &mut [bool],
    depth: usize,
) -> TraceNode {
    visited[i] = true;
    let f = &facts[i];
    let kids = if depth < 64 {
        children
            .get(&f.span_id)
            .map(|list| {
                list.iter()
                    .filter(|&&c| !visited[c])
                    .copied()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|c| build_node(c, facts, children, trace_start, visited, depth + 1))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    TraceNode {
        span_id: f.span_id.clone(),
        parent_span_id: (!f.parent_span_id.is_empty()).then(|| f.parent_span_id.clone()),
        name: f.name.clone(),
        service: f.service.clone(),
        kind: f.kind.clone(),
        operation: f.operation.clone(),
        start: rfc3339_ns(f.start_ns),
        offset_ms: (f.start_ns - trace_start) as f64 / 1e6,
        duration_ms: f.duration_ms(),
        error: f.error,
        error_message: f.error_message.clone(),
        provider: f.provider.clone(),
        model: f.model().map(str::to_string),
        agent: f.agent_name.clone(),
        prompt: f.prompt_name.clone().map(|p| match &f.prompt_version {
            Some(v) => format!("{p}@{v}"),
            None => p,
        }),
        tool: f.tool_name.clone(),
        tool_arguments: f.tool_arguments.clone(),
        tool_result: f.tool_result.clone(),
        data_source: f.data_source.clone(),
        tokens: (!f.usage.is_empty()).then_some(f.usage),
        ttft_ms: f.ttft_ms,
        cost_usd: f.cost_usd,
        cost_source: f.cost_source.clone(),
        price_version: f.price_version.clone(),
        documents: f.documents.clone(),
        evaluations: f.evaluations.clone(),
        http_route: f.http_route.clone(),
        http_status: f.http_status,
        children: kids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_plans() {
        let plan = plan_range(3600 * 10 + 90, 3600 * 13 + 30);
        assert_eq!(plan.from_s, 3600 * 10 + 60);
        assert_eq!(plan.to_s, 3600 * 13 + 60);
        assert_eq!(plan.days, None);
        assert_eq!(plan.hours, vec![(3600 * 11, 3600 * 13)]);
        assert_eq!(plan.minutes, vec![(3600 * 10 + 60, 3600 * 11), (3600 * 13, 3600 * 13 + 60)]);
        let short = plan_range(3600 * 10 + 60, 3600 * 10 + 600);
        assert!(short.hours.is_empty() && short.days.is_none());
        let aligned = plan_range(0, 7200);
        assert_eq!(aligned.hours, vec![(0, 7200)]);
        assert!(aligned.minutes.is_empty());
        // 30 days from mid-day: days inside, hours and minutes at both edges.
        let day = 86_400;
        let month = plan_range(day + 3600 * 5 + 120, 31 * day + 3600 * 7 + 60);
        assert_eq!(month.days, Some((2 * day, 31 * day)));
        assert_eq!(month.hours, vec![(day + 3600 * 6, 2 * day), (31 * day, 31 * day + 3600 * 7)]);
        assert_eq!(
            month.minutes,
            vec![(day + 3600 * 5 + 120, day + 3600 * 6), (31 * day + 3600 * 7, 31 * day + 3600 * 7 + 60)]
        );
        // The pieces cover the range exactly once.
        let covered: i64 = month.days.iter().chain(&month.hours).chain(&month.minutes).map(|(a, b)| b - a).sum();
        assert_eq!(covered, month.to_s - month.from_s);
    }
}
