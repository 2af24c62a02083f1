//! Response and request bodies of the signals API, each with its schema.
//! Signals answer in snake_case, as they always have.

use plinth_app::signals::{AlertEvent, AlertRule, AnomalyList, HealthEntry, Score, Slo, TraceListItem};
use plinth_telemetry::compare::{PromptComparison, RetrievalSource, ScoreDistribution, Significance, VersionStats};
use plinth_telemetry::cost::{CostAnomaly, CostLine, TeamCost};
use plinth_telemetry::query::{
    ModelTotals, NamedTotals, OperationTotals, Percentiles, Series, SeriesResponse, ServiceTotals, Summary, Tokens,
    Totals, TraceNode, TraceView,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[schema(as = Percentiles)]
pub(crate) struct PercentilesDto {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl From<&Percentiles> for PercentilesDto {
    fn from(p: &Percentiles) -> Self {
        PercentilesDto { p50: p.p50, p95: p.p95, p99: p.p99 }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = Tokens)]
pub(crate) struct TokensDto {
    /// All input tokens (cache reads and writes included).
    pub input: i64,
    /// All output tokens (reasoning included).
    pub output: i64,
    pub cache_read: i64,
    pub cache_write: i64,
    pub reasoning: i64,
}

impl From<&Tokens> for TokensDto {
    fn from(t: &Tokens) -> Self {
        TokensDto {
            input: t.input,
            output: t.output,
            cache_read: t.cache_read,
            cache_write: t.cache_write,
            reasoning: t.reasoning,
        }
    }
}

/// Totals of a set of calls.
#[derive(Serialize, ToSchema)]
#[schema(as = Totals)]
pub(crate) struct TotalsDto {
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub latency_ms: PercentilesDto,
    pub ttft_ms: PercentilesDto,
    pub tokens: TokensDto,
    pub cost_usd: f64,
    pub tool_calls: i64,
}

impl From<&Totals> for TotalsDto {
    fn from(t: &Totals) -> Self {
        TotalsDto {
            requests: t.requests,
            errors: t.errors,
            error_rate: t.error_rate,
            latency_ms: (&t.latency_ms).into(),
            ttft_ms: (&t.ttft_ms).into(),
            tokens: (&t.tokens).into(),
            cost_usd: t.cost_usd,
            tool_calls: t.tool_calls,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = ModelTotals)]
pub(crate) struct ModelTotalsDto {
    pub model: String,
    pub provider: String,
    /// The catalogued Model this name maps to.
    pub model_ref: Option<String>,
    #[serde(flatten)]
    pub totals: TotalsDto,
}

#[derive(Serialize, ToSchema)]
#[schema(as = OperationTotals)]
pub(crate) struct OperationTotalsDto {
    pub operation: String,
    pub requests: i64,
    pub errors: i64,
    pub latency_ms: PercentilesDto,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NamedTotals)]
pub(crate) struct NamedTotalsDto {
    pub name: String,
    #[serde(flatten)]
    pub totals: TotalsDto,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ServiceTotals)]
pub(crate) struct ServiceTotalsDto {
    pub service: String,
    pub component: Option<String>,
    pub team: Option<String>,
    #[serde(flatten)]
    pub totals: TotalsDto,
}

/// Requests, errors, latency and TTFT, tokens and cost of model calls,
/// broken down; RED of server spans.
#[derive(Serialize, ToSchema)]
#[schema(as = Summary)]
pub(crate) struct SummaryDto {
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub totals: TotalsDto,
    pub by_model: Vec<ModelTotalsDto>,
    pub by_operation: Vec<OperationTotalsDto>,
    pub by_prompt_version: Vec<NamedTotalsDto>,
    pub by_agent: Vec<NamedTotalsDto>,
    pub by_service: Vec<ServiceTotalsDto>,
    pub server: TotalsDto,
    pub agent_runs: i64,
}

impl From<&ModelTotals> for ModelTotalsDto {
    fn from(m: &ModelTotals) -> Self {
        ModelTotalsDto {
            model: m.model.clone(),
            provider: m.provider.clone(),
            model_ref: m.model_ref.clone(),
            totals: (&m.totals).into(),
        }
    }
}

impl From<&OperationTotals> for OperationTotalsDto {
    fn from(o: &OperationTotals) -> Self {
        OperationTotalsDto {
            operation: o.operation.clone(),
            requests: o.requests,
            errors: o.errors,
            latency_ms: (&o.latency_ms).into(),
        }
    }
}

impl From<&NamedTotals> for NamedTotalsDto {
    fn from(n: &NamedTotals) -> Self {
        NamedTotalsDto { name: n.name.clone(), totals: (&n.totals).into() }
    }
}

impl From<&ServiceTotals> for ServiceTotalsDto {
    fn from(s: &ServiceTotals) -> Self {
        ServiceTotalsDto {
            service: s.service.clone(),
            component: s.component.clone(),
            team: s.team.clone(),
            totals: (&s.totals).into(),
        }
    }
}

impl From<&Summary> for SummaryDto {
    fn from(s: &Summary) -> Self {
        SummaryDto {
            from: s.from.clone(),
            to: s.to.clone(),
            totals: (&s.totals).into(),
            by_model: s.by_model.iter().map(Into::into).collect(),
            by_operation: s.by_operation.iter().map(Into::into).collect(),
            by_prompt_version: s.by_prompt_version.iter().map(Into::into).collect(),
            by_agent: s.by_agent.iter().map(Into::into).collect(),
            by_service: s.by_service.iter().map(Into::into).collect(),
            server: (&s.server).into(),
            agent_runs: s.agent_runs,
        }
    }
}

/// One series per group.
#[derive(Serialize, ToSchema)]
#[schema(as = SeriesResponse)]
pub(crate) struct SeriesResponseDto {
    pub metric: String,
    pub group_by: String,
    pub step_seconds: i64,
    pub from: String,
    pub to: String,
    pub series: Vec<SeriesDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Series)]
pub(crate) struct SeriesDto {
    pub group: String,
    pub points: Vec<SeriesPointDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SeriesPoint)]
pub(crate) struct SeriesPointDto {
    /// Start of the step (RFC 3339).
    pub t: String,
    pub value: Option<f64>,
}

impl From<&Series> for SeriesDto {
    fn from(s: &Series) -> Self {
        SeriesDto {
            group: s.group.clone(),
            points: s.points.iter().map(|p| SeriesPointDto { t: p.t.clone(), value: p.value }).collect(),
        }
    }
}

impl From<&SeriesResponse> for SeriesResponseDto {
    fn from(s: &SeriesResponse) -> Self {
        SeriesResponseDto {
            metric: s.metric.clone(),
            group_by: s.group_by.clone(),
            step_seconds: s.step_seconds,
            from: s.from.clone(),
            to: s.to.clone(),
            series: s.series.iter().map(Into::into).collect(),
        }
    }
}

/// A trace's span tree with agent steps, tokens, latency and cost.
#[derive(Serialize, ToSchema)]
#[schema(as = TraceView)]
pub(crate) struct TraceViewDto {
    pub trace_id: String,
    pub span_count: usize,
    pub start: String,
    pub duration_ms: f64,
    pub services: Vec<String>,
    /// Sums over model calls (agent and tool spans repeat their children).
    pub tokens: TokensDto,
    pub cost_usd: f64,
    pub llm_calls: usize,
    pub tool_calls: usize,
    pub errors: usize,
    pub roots: Vec<TraceNodeDto>,
}

/// One span of a trace view.
#[derive(Serialize, ToSchema)]
#[schema(as = TraceNode)]
pub(crate) struct TraceNodeDto {
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
    pub tokens: Option<UsageDto>,
    pub ttft_ms: Option<f64>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    pub price_version: Option<String>,
    pub documents: Vec<DocumentDto>,
    pub evaluations: Vec<EvaluationDto>,
    pub http_route: Option<String>,
    pub http_status: Option<i64>,
    #[schema(no_recursion)]
    pub children: Vec<TraceNodeDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Usage)]
pub(crate) struct UsageDto {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Document)]
pub(crate) struct DocumentDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Evaluation)]
pub(crate) struct EvaluationDto {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl From<&TraceNode> for TraceNodeDto {
    fn from(n: &TraceNode) -> Self {
        TraceNodeDto {
            span_id: n.span_id.clone(),
            parent_span_id: n.parent_span_id.clone(),
            name: n.name.clone(),
            service: n.service.clone(),
            kind: n.kind.clone(),
            operation: n.operation.clone(),
            start: n.start.clone(),
            offset_ms: n.offset_ms,
            duration_ms: n.duration_ms,
            error: n.error,
            error_message: n.error_message.clone(),
            provider: n.provider.clone(),
            model: n.model.clone(),
            agent: n.agent.clone(),
            prompt: n.prompt.clone(),
            tool: n.tool.clone(),
            tool_arguments: n.tool_arguments.clone(),
            tool_result: n.tool_result.clone(),
            data_source: n.data_source.clone(),
            tokens: n.tokens.as_ref().map(|u| UsageDto {
                input: u.input,
                output: u.output,
                cache_read: u.cache_read,
                cache_write: u.cache_write,
                reasoning: u.reasoning,
            }),
            ttft_ms: n.ttft_ms,
            cost_usd: n.cost_usd,
            cost_source: n.cost_source.clone(),
            price_version: n.price_version.clone(),
            documents: n.documents.iter().map(|d| DocumentDto { id: d.id.clone(), score: d.score }).collect(),
            evaluations: n
                .evaluations
                .iter()
                .map(|e| EvaluationDto {
                    name: e.name.clone(),
                    score: e.score,
                    label: e.label.clone(),
                    explanation: e.explanation.clone(),
                })
                .collect(),
            http_route: n.http_route.clone(),
            http_status: n.http_status,
            children: n.children.iter().map(Into::into).collect(),
        }
    }
}

impl From<&TraceView> for TraceViewDto {
    fn from(t: &TraceView) -> Self {
        TraceViewDto {
            trace_id: t.trace_id.clone(),
            span_count: t.span_count,
            start: t.start.clone(),
            duration_ms: t.duration_ms,
            services: t.services.clone(),
            tokens: (&t.tokens).into(),
            cost_usd: t.cost_usd,
            llm_calls: t.llm_calls,
            tool_calls: t.tool_calls,
            errors: t.errors,
            roots: t.roots.iter().map(Into::into).collect(),
        }
    }
}

/// A recent trace (its root span) with GenAI work.
#[derive(Serialize, ToSchema)]
#[schema(as = TraceListItem)]
pub(crate) struct TraceListItemDto {
    pub trace_id: String,
    pub name: String,
    pub service: String,
    pub start: String,
    pub duration_ms: f64,
    pub operation: Option<String>,
    pub agent: Option<String>,
    pub error: bool,
}

impl From<&TraceListItem> for TraceListItemDto {
    fn from(t: &TraceListItem) -> Self {
        TraceListItemDto {
            trace_id: t.trace_id.clone(),
            name: t.name.clone(),
            service: t.service.clone(),
            start: t.start.clone(),
            duration_ms: t.duration_ms,
            operation: t.operation.clone(),
            agent: t.agent.clone(),
            error: t.error,
        }
    }
}

/// Every version of a prompt against its baseline.
#[derive(Serialize, ToSchema)]
#[schema(as = PromptComparison)]
pub(crate) struct PromptComparisonDto {
    pub prompt: String,
    pub prompt_ref: Option<String>,
    pub from: String,
    pub to: String,
    pub alpha: f64,
    pub baseline: Option<String>,
    pub versions: Vec<VersionStatsDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = VersionStats)]
pub(crate) struct VersionStatsDto {
    pub version: String,
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub latency_ms: PercentilesDto,
    pub tokens_per_request: f64,
    pub cost_per_request_usd: f64,
    /// Mean of numeric evaluation scores (booleans count as 0/1).
    pub mean_score: Option<f64>,
    pub scores: usize,
    /// Raw calls sampled for the tests.
    pub samples: usize,
    pub baseline: bool,
    /// Tests against the baseline (empty for the baseline itself).
    pub differences: Vec<SignificanceDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Significance)]
pub(crate) struct SignificanceDto {
    pub metric: String,
    pub test: String,
    pub p_value: f64,
    pub significant: bool,
    /// `higher` or `lower` than the baseline.
    pub direction: String,
}

impl From<&Significance> for SignificanceDto {
    fn from(s: &Significance) -> Self {
        SignificanceDto {
            metric: s.metric.clone(),
            test: s.test.clone(),
            p_value: s.p_value,
            significant: s.significant,
            direction: s.direction.clone(),
        }
    }
}

impl From<&VersionStats> for VersionStatsDto {
    fn from(v: &VersionStats) -> Self {
        VersionStatsDto {
            version: v.version.clone(),
            requests: v.requests,
            errors: v.errors,
            error_rate: v.error_rate,
            latency_ms: (&v.latency_ms).into(),
            tokens_per_request: v.tokens_per_request,
            cost_per_request_usd: v.cost_per_request_usd,
            mean_score: v.mean_score,
            scores: v.scores,
            samples: v.samples,
            baseline: v.baseline,
            differences: v.differences.iter().map(Into::into).collect(),
        }
    }
}

impl From<&PromptComparison> for PromptComparisonDto {
    fn from(p: &PromptComparison) -> Self {
        PromptComparisonDto {
            prompt: p.prompt.clone(),
            prompt_ref: p.prompt_ref.clone(),
            from: p.from.clone(),
            to: p.to.clone(),
            alpha: p.alpha,
            baseline: p.baseline.clone(),
            versions: p.versions.iter().map(Into::into).collect(),
        }
    }
}

/// Retrieval quality of one data source.
#[derive(Serialize, ToSchema)]
#[schema(as = RetrievalSource)]
pub(crate) struct RetrievalSourceDto {
    pub data_source: String,
    /// The catalogued vector store, when the name matches a Resource.
    pub resource_ref: Option<String>,
    pub retrievals: usize,
    pub errors: usize,
    pub latency_ms: PercentilesDto,
    pub documents_per_retrieval: f64,
    pub document_scores: ScoreDistributionDto,
    pub top_scores: ScoreDistributionDto,
    pub empty_rate: f64,
    /// Mean evaluation score per evaluation name.
    pub evaluations: BTreeMap<String, f64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ScoreDistribution)]
pub(crate) struct ScoreDistributionDto {
    pub count: usize,
    pub mean: Option<f64>,
    pub p10: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    /// Ten equal-width bins over [0, 1].
    pub histogram: Vec<usize>,
}

impl From<&ScoreDistribution> for ScoreDistributionDto {
    fn from(d: &ScoreDistribution) -> Self {
        ScoreDistributionDto {
            count: d.count,
            mean: d.mean,
            p10: d.p10,
            p50: d.p50,
            p90: d.p90,
            histogram: d.histogram.clone(),
        }
    }
}

impl From<&RetrievalSource> for RetrievalSourceDto {
    fn from(r: &RetrievalSource) -> Self {
        RetrievalSourceDto {
            data_source: r.data_source.clone(),
            resource_ref: r.resource_ref.clone(),
            retrievals: r.retrievals,
            errors: r.errors,
            latency_ms: (&r.latency_ms).into(),
            documents_per_retrieval: r.documents_per_retrieval,
            document_scores: (&r.document_scores).into(),
            top_scores: (&r.top_scores).into(),
            empty_rate: r.empty_rate,
            evaluations: r.evaluations.clone(),
        }
    }
}

/// A score to attach: to a trace (and a span of it) or to a prompt
/// (version). The application layer reads each item, so a bad one is
/// reported by index.
pub(crate) enum NewScoreDto {}

/// Most characters of a score's name and of a categorical value.
pub(crate) const MAX_SCORE_TEXT: usize = 200;

impl utoipa::PartialSchema for NewScoreDto {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let text = json!({"type": ["string", "null"]});
        crate::api::schema::from_json(json!({
            "description": "A score on a trace (`traceId`, optionally `spanId`) or on a prompt (`prompt`, usually with `promptVersion`)",
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "value"],
            "properties": {
                "id": {"type": ["string", "null"], "description": "Optional id; the same id twice is stored once (idempotent retries)"},
                "name": {"type": "string", "maxLength": MAX_SCORE_TEXT, "pattern": r"\S", "description": "The evaluation (e.g. relevance)"},
                "value": {
                    "description": "A number, a boolean, or a short string (a category)",
                    "oneOf": [
                        {"type": "number"},
                        {"type": "boolean"},
                        {"type": "string", "minLength": 1, "maxLength": MAX_SCORE_TEXT}
                    ]
                },
                "traceId": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{32}$", "description": "32 hex digits"},
                "spanId": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{16}$", "description": "16 hex digits; needs `traceId`"},
                "prompt": {"type": ["string", "null"], "pattern": crate::api::schema::NAME_OR_REF, "description": "Prompt name or ref"},
                "promptVersion": text,
                "comment": text,
                "source": {"type": ["string", "null"], "description": "Default `api`"}
            },
            "anyOf": [
                {"title": "OnTrace", "required": ["traceId"], "properties": {"traceId": {"type": "string"}}},
                {"title": "OnPrompt", "required": ["prompt"], "properties": {"prompt": {"type": "string"}, "spanId": {"type": "null"}}}
            ]
        }))
    }
}

impl ToSchema for NewScoreDto {
    fn name() -> std::borrow::Cow<'static, str> {
        "NewScore".into()
    }
}

/// `POST /scores`: one score or a list (all or nothing).
pub(crate) struct NewScoresBody;

impl utoipa::PartialSchema for NewScoresBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        crate::api::schema::from_json(json!({
            "description": "One score, or a list of at most 10,000 (stored all or none)",
            "oneOf": [
                {"$ref": "#/components/schemas/NewScore"},
                {"type": "array", "maxItems": plinth_app::signals::MAX_SCORES, "items": {"$ref": "#/components/schemas/NewScore"}}
            ]
        }))
    }
}

impl ToSchema for NewScoresBody {}

/// The ids of the stored scores.
#[derive(Serialize, ToSchema)]
pub(crate) struct ScoresStored {
    pub ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Score)]
pub(crate) struct ScoreDto {
    pub id: String,
    pub created: String,
    pub name: String,
    /// `numeric`, `boolean` or `categorical`.
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

impl From<&Score> for ScoreDto {
    fn from(s: &Score) -> Self {
        ScoreDto {
            id: s.id.clone(),
            created: s.created.clone(),
            name: s.name.clone(),
            data_type: s.data_type.clone(),
            value: s.value,
            label: s.label.clone(),
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            prompt: s.prompt.clone(),
            prompt_version: s.prompt_version.clone(),
            source: s.source.clone(),
            comment: s.comment.clone(),
        }
    }
}

/// Cost anomalies of a window, ranked by dollar impact.
#[derive(Serialize, ToSchema)]
#[schema(as = AnomalyList)]
pub(crate) struct AnomalyListDto {
    pub from: String,
    pub to: String,
    pub relative_threshold: f64,
    pub min_abs_usd: f64,
    pub anomalies: Vec<CostAnomalyDto>,
}

/// One anomalous hour of a team's service, explained.
#[derive(Serialize, ToSchema)]
#[schema(as = CostAnomaly)]
pub(crate) struct CostAnomalyDto {
    pub team: Option<String>,
    pub service: String,
    /// Start of the anomalous hour (RFC 3339).
    pub hour: String,
    /// Models that carried the cost, most expensive first.
    pub models: Vec<String>,
    pub hour_s: i64,
    pub actual_usd: f64,
    pub expected_usd: f64,
    /// |actual − expected|: what the list is ranked by.
    pub impact_usd: f64,
    /// (actual − expected) / expected; `null` when nothing was expected.
    pub relative_change: Option<f64>,
    /// `up` or `down`.
    pub direction: String,
    /// `traffic_spike`, `misconfiguration`, `price_or_model_change` or `mixed`.
    pub kind: String,
    /// `same_hour_of_week`, `same_hour_of_day` or `trailing_24h`.
    pub baseline: String,
    /// The LMDI decomposition: volume, unit usage and rate/mix effects.
    #[schema(value_type = Object)]
    pub effects: Value,
    /// Drivers, actual against expected (tokens, cache hits, model shares).
    #[schema(value_type = Object)]
    pub drivers: Value,
    pub summary: String,
}

impl From<&CostAnomaly> for CostAnomalyDto {
    fn from(c: &CostAnomaly) -> Self {
        let a = &c.anomaly;
        CostAnomalyDto {
            team: c.team.clone(),
            service: c.service.clone(),
            hour: c.hour.clone(),
            models: c.models.clone(),
            hour_s: a.hour_s,
            actual_usd: a.actual_usd,
            expected_usd: a.expected_usd,
            impact_usd: a.impact_usd,
            relative_change: a.relative_change.is_finite().then_some(a.relative_change),
            direction: a.direction.clone(),
            kind: serde_json::to_value(a.kind).ok().and_then(|k| k.as_str().map(str::to_string)).unwrap_or_default(),
            baseline: a.baseline.clone(),
            effects: serde_json::to_value(a.effects).unwrap_or_default(),
            drivers: serde_json::to_value(&a.drivers).unwrap_or_default(),
            summary: a.summary.clone(),
        }
    }
}

impl From<&AnomalyList> for AnomalyListDto {
    fn from(a: &AnomalyList) -> Self {
        AnomalyListDto {
            from: a.from.clone(),
            to: a.to.clone(),
            relative_threshold: a.relative_threshold,
            min_abs_usd: a.min_abs_usd,
            anomalies: a.anomalies.iter().map(Into::into).collect(),
        }
    }
}

/// A team's cost over a range.
#[derive(Serialize, ToSchema)]
#[schema(as = TeamCost)]
pub(crate) struct TeamCostDto {
    /// The owning Group's ref; `null` for services no Component claims.
    pub team: Option<String>,
    pub title: Option<String>,
    pub cost_center: Option<String>,
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
    pub services: Vec<CostLineDto>,
    pub models: Vec<CostLineDto>,
    /// Daily cost: `[day start (RFC 3339), USD]`.
    #[schema(schema_with = daily_pairs)]
    pub daily: Vec<(String, f64)>,
}

/// `[[day start, USD], …]`: pairs of an RFC 3339 time and a number.
fn daily_pairs() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::api::schema::from_json(serde_json::json!({
        "type": "array",
        "description": "Daily cost: `[day start (RFC 3339), USD]` pairs.",
        "items": {
            "type": "array",
            "prefixItems": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "minItems": 2,
            "maxItems": 2
        }
    }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = CostLine)]
pub(crate) struct CostLineDto {
    pub name: String,
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

impl From<&CostLine> for CostLineDto {
    fn from(l: &CostLine) -> Self {
        CostLineDto { name: l.name.clone(), requests: l.requests, tokens: l.tokens, cost_usd: l.cost_usd }
    }
}

impl From<&TeamCost> for TeamCostDto {
    fn from(t: &TeamCost) -> Self {
        TeamCostDto {
            team: t.team.clone(),
            title: t.title.clone(),
            cost_center: t.cost_center.clone(),
            requests: t.requests,
            tokens: t.tokens,
            cost_usd: t.cost_usd,
            services: t.services.iter().map(Into::into).collect(),
            models: t.models.iter().map(Into::into).collect(),
            daily: t.daily.clone(),
        }
    }
}

/// The scopes an alert rule may watch (as `AlertRule::validated` checks).
pub(crate) const ALERT_SCOPES: &[&str] = &[
    "model_calls",
    "server",
    "all",
    "chat",
    "text_completion",
    "generate_content",
    "embeddings",
    "invoke_agent",
    "create_agent",
    "execute_tool",
    "retrieval",
];

/// The entity an alert rule sets the health of: a Component (the default
/// kind), Model, Prompt, Agent or Group ref.
pub(crate) const ALERT_ENTITY: &str = r"^\s*(?:(?:component|model|prompt|agent|group):)?(?:[^\s:/]+/)?[^\s:/]+\s*$";

/// A rule's window, `N` + `s`, `m`, `h` or `d`, from 1m to 7d.
pub(crate) const ALERT_WINDOW: &str = concat!(
    "^0*(?:(?:[6-9][0-9]|[1-9][0-9]{2,4}|[1-5][0-9]{5}|60[0-3][0-9]{3}|604[0-7][0-9]{2}|604800)s",
    "|(?:[1-9][0-9]{0,3}|100[0-7][0-9]|10080)m",
    "|(?:[1-9]|[1-9][0-9]|1[0-5][0-9]|16[0-8])h",
    "|[1-7]d)$"
);

/// A webhook URL the rule can post to: http(s), a host name (not an
/// address, not `localhost`), an optional port, no whitespace.
pub(crate) const ALERT_WEBHOOK: &str = concat!(
    r"^https?://(?!(?:[^/?#:]*\.)?localhost(?:[:/?#]|$))",
    r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?:\.[a-z][a-z0-9]*(?:-[a-z0-9]+)*)*",
    r"(?::[0-9]{1,4})?(?:[/?#]\S*)?$"
);

/// Seconds of a window the way the rule reads it; `None` when malformed
/// or out of range (never overflowing).
pub(crate) fn alert_window_ok(window: &str) -> bool {
    let Some(split) = window.find(|c: char| !c.is_ascii_digit()) else { return false };
    let (number, unit) = window.split_at(split);
    let Ok(n) = number.parse::<i64>() else { return false };
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return false,
    };
    n.checked_mul(unit_seconds).is_some_and(|s| (60..=7 * 86_400).contains(&s))
}

/// `POST /alerts/rules`: what the document says of a rule (the response
/// is [`AlertRuleDto`], every default filled in).
pub(crate) struct AlertRuleBody;

impl utoipa::PartialSchema for AlertRuleBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let metrics = plinth_telemetry::query::SERIES_METRICS;
        let mut signals: Vec<&str> = metrics.to_vec();
        signals.push("availability");
        let nullable_enum = |values: &[&str]| {
            let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            values.push(Value::Null);
            json!({"type": ["string", "null"], "enum": values})
        };
        let mut scope = nullable_enum(ALERT_SCOPES);
        scope["description"] = json!("`model_calls` (default), `server` (HTTP/RPC RED), `all` or a GenAI operation");
        let mut op = nullable_enum(&[">", ">=", "<", "<="]);
        op["description"] = json!("Default `>`");
        let mut severity = nullable_enum(&["degraded", "unhealthy"]);
        severity["description"] = json!("Health while firing (default `unhealthy`)");
        crate::api::schema::from_json(json!({
            "description": "An alert rule: a threshold (`signal` one of the series metrics, with `threshold`) or an availability SLO (`signal: availability` with `slo`), over a `window`, on exactly one of `entity`, `team` or `service`",
            "type": "object",
            "required": ["name", "signal"],
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "description": "Stable id (letters, digits, `-`, `_`); derived from `name` when empty or absent"},
                "name": {"type": "string", "pattern": r"\S"},
                "entity": {"type": ["string", "null"], "pattern": ALERT_ENTITY, "maxLength": crate::params::MAX_REF, "description": "A Component (the default kind), Model, Prompt, Agent or Group ref: the entity whose health the rule sets"},
                "team": {"type": ["string", "null"], "pattern": crate::params::REF, "maxLength": crate::params::MAX_REF, "description": "A team (Group ref): the rule watches everything the team owns"},
                "service": {"type": ["string", "null"], "description": "A `service.name` (for services not in the catalogue)"},
                "signal": {"type": "string", "enum": signals, "description": "A series metric with `threshold`, or `availability` with `slo`"},
                "scope": scope,
                "op": op,
                "threshold": {"type": ["number", "null"]},
                "slo": {
                    "type": ["object", "null"],
                    "required": ["objective"],
                    "properties": {
                        "objective": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "description": "Share of requests that must succeed, e.g. 0.995"},
                        "burn_rate": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "Default 1 (exactly on budget); 14.4 is the usual one-hour fast-burn page"}
                    }
                },
                "window": {"type": ["string", "null"], "pattern": ALERT_WINDOW, "description": "`N` + `s`, `m`, `h` or `d`, from 1m to 7d (default 5m)"},
                "severity": severity,
                "min_requests": {"type": ["integer", "null"], "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX, "description": "Below this many requests in the window the rule does not judge (default 1)"},
                "webhook": {"type": ["string", "null"], "pattern": ALERT_WEBHOOK, "description": "Posted (JSON) on firing and on resolution: an http(s) URL naming a host; the outbound allowlist decides which hosts and addresses may be posted to (by default public ones only)"},
                "enabled": {"type": ["boolean", "null"]}
            },
            "allOf": [
                {"oneOf": [
                    {"title": "OnEntity", "required": ["entity"], "properties": {"entity": {"type": "string"}}},
                    {"title": "OnTeam", "required": ["team"], "properties": {"team": {"type": "string"}}},
                    {"title": "OnService", "required": ["service"], "properties": {"service": {"type": "string"}}}
                ]},
                {"oneOf": [
                    {"title": "SloRule", "required": ["slo"], "properties": {"signal": {"const": "availability"}, "slo": {"type": "object"}}},
                    {"title": "ThresholdRule", "required": ["threshold"], "properties": {"signal": {"enum": metrics}, "threshold": {"type": "number"}, "slo": {"type": "null"}}}
                ]},
                {"anyOf": [
                    {"title": "WithId", "required": ["id"], "properties": {"id": {"minLength": 1}}},
                    {"title": "IdFromName", "properties": {"name": {"pattern": "[A-Za-z0-9]"}}}
                ]}
            ]
        }))
    }
}

impl ToSchema for AlertRuleBody {}

/// An alert rule: a threshold or an SLO burn rate over a window, on a
/// service, an entity or everything a team owns.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AlertRule)]
pub(crate) struct AlertRuleDto {
    /// Stable id (letters, digits, `-`, `_`); derived from `name` when empty.
    #[serde(default)]
    pub id: String,
    #[schema(min_length = 1)]
    pub name: String,
    /// A Component, Model, Prompt, Agent or Group ref.
    #[serde(default)]
    pub entity: Option<String>,
    /// A team (Group ref): the rule watches everything the team owns.
    #[serde(default)]
    pub team: Option<String>,
    /// A `service.name` (for services not in the catalogue).
    #[serde(default)]
    pub service: Option<String>,
    /// requests, errors, error_rate, latency_p50|p95|p99, ttft_p50|p95|p99,
    /// cost_usd, tokens, tool_calls — or `availability` with `slo`.
    pub signal: String,
    /// `model_calls` (default), `server` (HTTP/RPC RED) or a GenAI operation.
    #[serde(default)]
    pub scope: Option<String>,
    /// `>`, `>=`, `<` or `<=`.
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub slo: Option<SloDto>,
    /// Window such as `5m`, `1h` (1m to 7d).
    #[serde(default)]
    pub window: Option<String>,
    /// Health while firing: `degraded` or `unhealthy`.
    #[serde(default)]
    pub severity: Option<String>,
    /// Below this many requests in the window the rule does not judge.
    #[serde(default)]
    pub min_requests: Option<i64>,
    /// Posted (JSON) on firing and on resolution; must pass the outbound allowlist.
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Slo)]
pub(crate) struct SloDto {
    /// Share of requests that must succeed, e.g. 0.995.
    pub objective: f64,
    /// 1 = exactly on budget; 14.4 is the usual one-hour fast-burn page.
    #[serde(default)]
    pub burn_rate: Option<f64>,
}

impl AlertRuleDto {
    /// The rule as the application layer takes it (its defaults applied).
    pub(crate) fn into_rule(self) -> Result<AlertRule, serde_json::Error> {
        let mut value = serde_json::to_value(&self)?;
        if let Value::Object(map) = &mut value {
            map.retain(|_, v| !v.is_null());
            if let Some(Value::Object(slo)) = map.get_mut("slo") {
                slo.retain(|_, v| !v.is_null());
            }
        }
        serde_json::from_value(value)
    }
}

impl From<&AlertRule> for AlertRuleDto {
    fn from(r: &AlertRule) -> Self {
        AlertRuleDto {
            id: r.id.clone(),
            name: r.name.clone(),
            entity: r.entity.clone(),
            team: r.team.clone(),
            service: r.service.clone(),
            signal: r.signal.clone(),
            scope: Some(r.scope.clone()),
            op: Some(r.op.clone()),
            threshold: r.threshold,
            slo: r.slo.as_ref().map(|s: &Slo| SloDto { objective: s.objective, burn_rate: Some(s.burn_rate) }),
            window: Some(r.window.clone()),
            severity: Some(r.severity.clone()),
            min_requests: Some(r.min_requests),
            webhook: r.webhook.clone(),
            enabled: Some(r.enabled),
        }
    }
}

/// A rule with its current state: the rule's fields and `status`.
#[derive(Serialize)]
pub(crate) struct AlertRuleStateDto {
    #[serde(flatten)]
    pub rule: AlertRuleDto,
    /// The last evaluation: firing or not, the value seen, since when
    /// (`null` before the first evaluation).
    pub status: Value,
}

/// The rule's own schema (closed: no other property) with `status` added.
/// A derived `allOf` of the closed rule schema and `status` would refuse
/// every answer, since the closed half forbids `status`.
impl utoipa::PartialSchema for AlertRuleStateDto {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let rule = serde_json::to_value(<AlertRuleDto as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null);
        let mut schema = match rule {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        schema.insert("description".into(), Value::from("An alert rule with its current state."));
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            properties.insert(
                "status".into(),
                serde_json::json!({
                    "type": ["object", "null"],
                    "description": "The last evaluation: firing or not, the value seen, since when (`null` before the first evaluation)."
                }),
            );
        }
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.push(Value::from("status"));
        }
        crate::api::schema::from_json(Value::Object(schema))
    }
}

impl ToSchema for AlertRuleStateDto {
    fn name() -> std::borrow::Cow<'static, str> {
        "AlertRuleState".into()
    }
}

/// A firing or resolved event.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertEvent)]
pub(crate) struct AlertEventDto {
    pub id: i64,
    pub rule: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub at: String,
    /// Values seen, the rule, and the webhook delivery.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub body: Value,
}

impl From<AlertEvent> for AlertEventDto {
    fn from(e: AlertEvent) -> Self {
        let mut body = e.body;
        if let Value::Object(map) = &mut body {
            for key in ["id", "rule", "state", "at"] {
                map.remove(key);
            }
        } else {
            body = Value::Object(Default::default());
        }
        AlertEventDto { id: e.id, rule: e.rule, state: e.state, at: e.at, body }
    }
}

/// An entity's health, and the rules behind it.
#[derive(Serialize, ToSchema)]
#[schema(as = HealthEntry)]
pub(crate) struct HealthEntryDto {
    pub entity: String,
    /// `healthy`, `degraded` or `unhealthy`; `unknown` when no rule watches it.
    pub health: String,
    pub firing: Vec<String>,
    pub rules: Vec<String>,
}

impl From<&HealthEntry> for HealthEntryDto {
    fn from(h: &HealthEntry) -> Self {
        HealthEntryDto {
            entity: h.entity.clone(),
            health: h.health.clone(),
            firing: h.firing.clone(),
            rules: h.rules.clone(),
        }
    }
}
