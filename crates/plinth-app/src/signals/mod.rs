//! Observability with AI signals: OTLP ingest (decoded, attributed,
//! priced and committed durably), summaries and series, traces, prompt
//! versions, retrieval quality, scores, cost and anomalies, alert rules and
//! entity health. One method per use case.

pub mod alerts;
pub mod query;
mod reservation;
pub mod service;

use plinth_store::{Resolution, RollupQuery, RollupRow, ScoreQuery, ScoreRow, SpanBody, SpanQuery};
use plinth_telemetry::anomaly::AnomalyConfig;
use plinth_telemetry::compare::{compare_prompt_versions, retrieval_quality, PromptComparison, RetrievalSource};
use plinth_telemetry::cost::{anomalies, team_costs, CostAnomaly, TeamCost};
use plinth_telemetry::ingest::{prepare, IngestContext};
use plinth_telemetry::otlp::{self, DecodeError, Encoding};
use plinth_telemetry::query::{
    plan_range, rfc3339, series, summarise, SeriesResponse, Summary, TraceView, GROUP_BY, SERIES_METRICS,
};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use alerts::{AlertRule, HealthEntry, Slo};
pub use query::{SignalFilter, SignalQuery, TimeRange};
pub use reservation::reservation_for;
pub use service::{shipped_prices, SignalsConfig, SignalsMetrics, SignalsService};

use crate::access::{Permission, Resource};
use crate::audit::AuditOutcome;
use crate::{AppError, AppResult, Caller, Platform};

/// The longest `step` of a series: the longest range a query may span.
pub const MAX_STEP_SECONDS: i64 = query::MAX_RANGE_DAYS * 86_400;
/// Most points one series may have.
pub const MAX_POINTS: i64 = 2_000;
/// Most scores one request may post.
pub const MAX_SCORES: usize = 10_000;

/// A series request.
#[derive(Debug, Clone, Default)]
pub struct SeriesQuery {
    pub filter: SignalQuery,
    pub range: TimeRange,
    /// One of [`SERIES_METRICS`] (default `requests`).
    pub metric: Option<String>,
    /// One of [`GROUP_BY`] (default `none`).
    pub group_by: Option<String>,
    /// Seconds, whole minutes; default gives about 60 points.
    pub step_seconds: Option<i64>,
}

/// A recent trace (its root span) with GenAI work.
#[derive(Debug, Clone, serde::Serialize)]
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

/// A prompt-version comparison request.
#[derive(Debug, Clone, Default)]
pub struct PromptVersionsQuery {
    /// Prompt name or ref.
    pub prompt: String,
    /// Default: the version with most requests.
    pub baseline: Option<String>,
    /// Significance level, in (0, 1); default 0.05.
    pub alpha: Option<f64>,
    pub range: TimeRange,
}

/// A score to attach: to a trace, a span, or a prompt version.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewScore {
    /// Optional id; the same id twice is stored once (idempotent retries).
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// A number, a boolean, or a short string (categorical).
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

/// Which scores to list.
#[derive(Debug, Clone, Default)]
pub struct ScoreFilter {
    pub trace_id: Option<String>,
    pub prompt: Option<String>,
    pub prompt_version: Option<String>,
    pub limit: usize,
}

/// A stored score.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Score {
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

/// A cost-anomaly request.
#[derive(Debug, Clone, Default)]
pub struct AnomalyQuery {
    pub filter: SignalQuery,
    pub range: TimeRange,
    /// Relative threshold (default 0.5, i.e. +50 %).
    pub relative: Option<f64>,
    /// Dollar floor per hour (default 1.0).
    pub min_usd: Option<f64>,
}

/// Cost anomalies of a window, ranked by dollar impact.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnomalyList {
    pub from: String,
    pub to: String,
    pub relative_threshold: f64,
    pub min_abs_usd: f64,
    pub anomalies: Vec<CostAnomaly>,
}

/// An alert event (firing or resolved).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertEvent {
    pub id: i64,
    pub rule: String,
    pub state: String,
    pub at: String,
    /// What was recorded: the values seen, the rule and the delivery.
    pub body: Value,
}

/// A dashboard of one filter over a window: the summary and a series per
/// metric on one step, from one read of the rollups.
#[derive(Debug, Clone)]
pub struct Overview {
    pub summary: Summary,
    /// No rows matched at all.
    pub empty: bool,
    pub step_seconds: i64,
    /// The start of each step (RFC 3339), oldest first.
    pub steps: Vec<String>,
    /// Per requested metric, one value per step (`None`: no data).
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

/// What an OTLP export left out (partial success).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestAck {
    pub rejected: i64,
    pub rejection: String,
}

/// Why an OTLP export was not taken.
#[derive(Debug)]
pub enum IngestError {
    /// The payload cannot be read (with where).
    Invalid(String),
    /// The inflated payload is over the size limit.
    TooLarge,
    /// The in-flight memory or the queue is full: retry later.
    Busy,
    /// The store could not take the write: retry later.
    Unavailable(String),
    /// The decoder stopped (a bug, not the payload's fault).
    Internal(String),
    /// The caller may not ingest (401 or 403, as the error says).
    Refused(AppError),
}

/// Memory reserved for an OTLP request while it is in flight.
pub struct Reservation(#[allow(dead_code)] Vec<tokio::sync::OwnedSemaphorePermit>);

/// What a caller without `signals.trace.content` sees of a span's
/// contents (tool arguments and results).
pub const REDACTED: &str = "[redacted: only the owning team and admins see trace contents]";

/// The signals use cases.
pub struct Signals<'a> {
    pub(crate) platform: &'a Platform,
}

impl<'a> Signals<'a> {
    fn read(&self, caller: &Caller) -> AppResult<()> {
        self.platform.access.check(caller, Permission::SignalsRead, &Resource::none())
    }

    /// Whether the caller may send OTLP data and scores (before the
    /// payload is even read).
    pub fn authorize_ingest(&self, caller: &Caller) -> AppResult<()> {
        self.platform.access.check(caller, Permission::SignalsIngest, &Resource::none())
    }

    /// Alert rules on an entity are its owners', rules on a team its
    /// members'; rules on anything else (a bare service name) the admins'.
    fn check_rule(&self, caller: &Caller, rule: &AlertRule) -> AppResult<()> {
        let parse = |text: &str, kind| plinth_model::parse_ref_lenient(text, Some(kind)).ok().map(|r| r.key());
        let state = self.platform.catalog.read();
        let resource = match (rule.entity.as_deref(), rule.team.as_deref()) {
            (Some(entity), _) => match parse(entity, "component") {
                Some(key) => Resource::entity(&state, &key),
                None => Resource { reference: entity.to_string(), ..Resource::none() },
            },
            (None, Some(team)) => match parse(team, "group") {
                Some(key) => Resource::team(&state, &key),
                None => Resource { reference: team.to_string(), ..Resource::none() },
            },
            (None, None) => Resource {
                reference: rule.service.clone().unwrap_or_else(|| "all services".into()),
                ..Resource::none()
            },
        };
        drop(state);
        self.platform.access.check(caller, Permission::SignalsAlertWrite, &resource)
    }

    /// Hides tool arguments and results from callers who do not own any
    /// of the trace's services (the owning team and admins see them).
    fn redact_contents(&self, caller: &Caller, view: &mut TraceView) {
        let attribution = match &self.platform.signals {
            Some(service) => service.attribution(),
            None => return,
        };
        let state = self.platform.catalog.read();
        let mut resources: Vec<Resource> = view
            .services
            .iter()
            .filter_map(|name| attribution.service(name))
            .map(|owner| Resource::entity(&state, &owner.component.to_lowercase()))
            .collect();
        drop(state);
        if resources.is_empty() {
            resources.push(Resource { reference: format!("trace {}", view.trace_id), ..Resource::none() });
        }
        let allowed =
            resources.iter().any(|r| self.platform.access.decide(caller, Permission::SignalsTraceContent, r).allow);
        if allowed {
            return;
        }
        fn redact(node: &mut plinth_telemetry::query::TraceNode) {
            for field in [&mut node.tool_arguments, &mut node.tool_result] {
                if field.is_some() {
                    *field = Some(REDACTED.to_string());
                }
            }
            node.children.iter_mut().for_each(redact);
        }
        view.roots.iter_mut().for_each(redact);
    }

    /// The service, or `Unavailable` when the server runs without it.
    pub fn service(&self) -> AppResult<&'a Arc<SignalsService>> {
        self.platform
            .signals
            .as_ref()
            .ok_or_else(|| AppError::unavailable("signals are not enabled on this server; `plinth serve` enables them"))
    }

    /// The configuration the receiver checks requests against.
    pub fn config(&self) -> AppResult<&'a SignalsConfig> {
        Ok(&self.service()?.config)
    }

    pub fn metrics(&self) -> Option<&'a SignalsMetrics> {
        self.platform.signals.as_ref().map(|s| &s.metrics)
    }

    /// Reserves in-flight memory for a request of `bytes`; `None` when the
    /// receiver is at its limit (answer 429).
    pub fn reserve(&self, bytes: usize) -> AppResult<Option<Reservation>> {
        let service = self.service()?;
        match service.reserve(bytes) {
            Some(permit) => Ok(Some(Reservation(vec![permit]))),
            None => {
                service.metrics.requests_throttled.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Adds to a reservation (decoded payloads take about 12× the
    /// protobuf size until the commit); false when the limit is reached.
    pub fn reserve_more(&self, reservation: &mut Reservation, bytes: usize) -> AppResult<bool> {
        let service = self.service()?;
        match service.reserve(bytes) {
            Some(permit) => {
                reservation.0.push(permit);
                Ok(true)
            }
            None => {
                service.metrics.requests_throttled.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
        }
    }

    /// Counts an export that failed before it reached the app (bad body).
    pub fn count_failure(&self) {
        if let Some(service) = &self.platform.signals {
            service.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ingests an OTLP traces export: decoded and normalised off the async
    /// workers, attributed, priced, committed in a group commit. Returns
    /// only once durable.
    pub async fn ingest_traces(
        &self,
        caller: &Caller,
        payload: bytes::Bytes,
        encoding: Encoding,
        _reservation: &Reservation,
    ) -> Result<IngestAck, IngestError> {
        self.authorize_ingest(caller).map_err(IngestError::Refused)?;
        let service = self.service().map_err(|e| IngestError::Unavailable(e.message))?.clone();
        let worker = service.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let request = otlp::decode_traces(&payload, encoding)?;
            let attribution = worker.attribution();
            let ctx = IngestContext {
                attribution: &attribution,
                prices: &worker.config.prices,
                recent: worker.recent(),
                now_s: service::now_s(),
                max_age_s: worker.config.rollup_retention.as_secs() as i64,
            };
            Ok::<_, DecodeError>(prepare(&request, &ctx))
        })
        .await;
        let batch = match prepared {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => return Err(decode_failure(&service, &error)),
            Err(error) => return Err(IngestError::Internal(error.to_string())),
        };
        let ack = IngestAck { rejected: batch.rejected, rejection: batch.rejection.clone() };
        service.metrics.spans_rejected.fetch_add(batch.rejected.max(0) as u64, Ordering::Relaxed);
        if batch.accepted() > 0 {
            match service.commit(batch).await {
                Ok(_) => {}
                Err(None) => {
                    service.metrics.requests_throttled.fetch_add(1, Ordering::Relaxed);
                    return Err(IngestError::Busy);
                }
                Err(Some(error)) => return Err(store_failed(&service, "traces", &error)),
            }
        }
        Ok(ack)
    }

    /// Ingests an OTLP metrics export (GenAI and HTTP/RPC histograms).
    pub async fn ingest_metrics(
        &self,
        caller: &Caller,
        payload: bytes::Bytes,
        encoding: Encoding,
        _reservation: &Reservation,
    ) -> Result<IngestAck, IngestError> {
        self.authorize_ingest(caller).map_err(IngestError::Refused)?;
        let service = self.service().map_err(|e| IngestError::Unavailable(e.message))?.clone();
        let worker = service.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let request = otlp::decode_metrics(&payload, encoding)?;
            let attribution = worker.attribution();
            Ok::<_, DecodeError>(worker.metric_points(&request, &attribution))
        })
        .await;
        let points = match prepared {
            Ok(Ok(points)) => points,
            Ok(Err(error)) => return Err(decode_failure(&service, &error)),
            Err(error) => return Err(IngestError::Internal(error.to_string())),
        };
        let ack = IngestAck { rejected: points.rejected, rejection: points.rejection.clone() };
        service.store_metric_points(points).await.map_err(|e| store_failed(&service, "metrics", &e.to_string()))?;
        Ok(ack)
    }

    /// Requests, errors, latency and TTFT percentiles, tokens and cost.
    pub async fn summary(&self, caller: &Caller, filter: &SignalQuery, range: TimeRange) -> AppResult<Summary> {
        self.read(caller)?;
        let service = self.service()?;
        let filter = SignalFilter::resolve(filter)?;
        let (from, to) = range.resolve(24)?;
        let rows = query::load_rows(service, &filter, from, to).await?;
        let attribution = service.attribution();
        let plan = plan_range(from, to);
        Ok(summarise(&rows, rfc3339(plan.from_s), rfc3339(plan.to_s), &|model| {
            attribution.model_ref(model).map(str::to_string)
        }))
    }

    /// One series per group.
    pub async fn series(&self, caller: &Caller, request: &SeriesQuery) -> AppResult<SeriesResponse> {
        self.read(caller)?;
        let service = self.service()?;
        let filter = SignalFilter::resolve(&request.filter)?;
        let (from, to) = request.range.resolve(24)?;
        let metric = request.metric.as_deref().unwrap_or("requests");
        if !SERIES_METRICS.contains(&metric) {
            return Err(AppError::invalid_field("metric", format!("must be one of {}", SERIES_METRICS.join(", "))));
        }
        let group_by = request.group_by.as_deref().unwrap_or("none");
        if !GROUP_BY.contains(&group_by) {
            return Err(AppError::invalid_field("groupBy", format!("must be one of {}", GROUP_BY.join(", "))));
        }
        let plan = plan_range(from, to);
        let span = plan.to_s - plan.from_s;
        let step = match request.step_seconds {
            None => query::default_step(span),
            Some(step) if (60..=MAX_STEP_SECONDS).contains(&step) && step % 60 == 0 => step,
            Some(_) => {
                return Err(AppError::invalid_field(
                    "step",
                    "must be a whole number of minutes from 1m to 400d (rollups are per minute)",
                ))
            }
        };
        if span / step > MAX_POINTS {
            return Err(AppError::invalid_field(
                "step",
                format!("{} points are too many; use a larger `step` (at most {MAX_POINTS} points)", span / step),
            ));
        }
        let rows = query::series_rows(service, &filter, plan.from_s, plan.to_s, step).await?;
        let series_from = plan.from_s - plan.from_s.rem_euclid(step.min(3600));
        Ok(SeriesResponse {
            metric: metric.to_string(),
            group_by: group_by.to_string(),
            step_seconds: step,
            from: rfc3339(series_from),
            to: rfc3339(plan.to_s),
            series: series(&rows, metric, group_by, series_from, plan.to_s, step, 20),
        })
    }

    /// The summary and the series of `metrics` (each one of
    /// [`SERIES_METRICS`]) at `step_seconds` (whole minutes), for the
    /// Signals tab of an entity and similar dashboards.
    pub async fn overview(
        &self,
        caller: &Caller,
        filter: &SignalQuery,
        range: TimeRange,
        step_seconds: i64,
        metrics: &[&str],
    ) -> AppResult<Overview> {
        self.read(caller)?;
        let service = self.service()?;
        let filter = SignalFilter::resolve(filter)?;
        let (from, to) = range.resolve(24)?;
        let step = step_seconds;
        if !((60..=MAX_STEP_SECONDS).contains(&step) && step % 60 == 0) {
            return Err(AppError::invalid_field("step", "must be a whole number of minutes from 1m to 400d"));
        }
        if let Some(unknown) = metrics.iter().find(|m| !SERIES_METRICS.contains(m)) {
            return Err(AppError::invalid_field(
                "metric",
                format!("`{unknown}` is not one of {}", SERIES_METRICS.join(", ")),
            ));
        }
        let rows = query::load_rows(service, &filter, from, to).await?;
        let plan = plan_range(from, to);
        if (plan.to_s - plan.from_s) / step > MAX_POINTS {
            return Err(AppError::invalid_field("step", format!("too many points; at most {MAX_POINTS}")));
        }
        let summary = {
            let attribution = service.attribution();
            summarise(&rows, rfc3339(plan.from_s), rfc3339(plan.to_s), &|model| {
                attribution.model_ref(model).map(str::to_string)
            })
        };
        let series_rows = query::series_rows(service, &filter, plan.from_s, plan.to_s, step).await?;
        // Series start on a step boundary, as `series` does.
        let series_from = plan.from_s - plan.from_s.rem_euclid(step.min(3600));
        let count = ((plan.to_s - series_from + step - 1) / step).max(0) as usize;
        let steps = (0..count).map(|i| rfc3339(series_from + i as i64 * step)).collect();
        let series = metrics
            .iter()
            .map(|metric| {
                let mut values: Vec<Option<f64>> =
                    series(&series_rows, metric, "none", series_from, plan.to_s, step, 1)
                        .into_iter()
                        .next()
                        .map(|s| s.points.into_iter().map(|p| p.value).collect())
                        .unwrap_or_default();
                values.resize(count, None);
                (metric.to_string(), values)
            })
            .collect();
        Ok(Overview { summary, empty: rows.is_empty(), step_seconds: step, steps, series })
    }

    /// One trace's span tree.
    pub async fn trace(&self, caller: &Caller, trace_id: &str) -> AppResult<TraceView> {
        self.read(caller)?;
        let service = self.service()?;
        let trace_id = trace_id.to_ascii_lowercase();
        if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::invalid_field(
                "traceId",
                format!("`{}` is not a trace id (32 hex digits)", shorten(&trace_id)),
            ));
        }
        let rows = service.store().trace_spans(&trace_id).await?;
        let mut view = plinth_telemetry::query::trace_view(&trace_id, &rows).ok_or_else(|| {
            AppError::not_found(format!(
                "no stored spans for trace {trace_id}; traces are kept {} days, and only traces with a GenAI span",
                service.config.span_retention.as_secs() / 86_400
            ))
        })?;
        self.redact_contents(caller, &mut view);
        Ok(view)
    }

    /// Recent traces (root spans), newest first.
    pub async fn traces(
        &self,
        caller: &Caller,
        service_name: Option<&str>,
        agent: Option<&str>,
        limit: usize,
    ) -> AppResult<Vec<TraceListItem>> {
        self.read(caller)?;
        let service = self.service()?;
        let rows = service.store().recent_traces(service_name, agent, limit as i64).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let facts: Option<plinth_telemetry::genai::SpanFacts> =
                    row.body.as_ref().and_then(SpanBody::whole).and_then(|b| serde_json::from_str(b).ok());
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

    /// Every version of a prompt against its baseline.
    pub async fn prompt_versions(&self, caller: &Caller, request: &PromptVersionsQuery) -> AppResult<PromptComparison> {
        self.read(caller)?;
        let service = self.service()?;
        let name = query::entity_name(&request.prompt, "prompt", "name")?;
        let (from, to) = request.range.resolve(7 * 24)?;
        let alpha = match request.alpha {
            None => 0.05,
            Some(alpha) if alpha > 0.0 && alpha < 1.0 => alpha,
            Some(_) => return Err(AppError::invalid_field("alpha", "must be a number between 0 and 1")),
        };
        let filter = SignalFilter {
            query: RollupQuery { prompt: Some(name.clone()), ..RollupQuery::default() },
            ..SignalFilter::default()
        };
        let rows = query::load_rows(service, &filter, from, to).await?;
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
            .await?;
        let scores = service
            .store()
            .query_scores(&ScoreQuery {
                prompt: Some(name.clone()),
                from_s: Some(from),
                to_s: Some(to),
                limit: 50_000,
                ..ScoreQuery::default()
            })
            .await?;
        let (baseline, versions) = compare_prompt_versions(&rows, &spans, &scores, request.baseline.as_deref(), alpha);
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

    /// Per data source: score distribution, empty results, latency and
    /// evaluation-based relevance.
    pub async fn retrieval(
        &self,
        caller: &Caller,
        service_name: Option<&str>,
        range: TimeRange,
    ) -> AppResult<Vec<RetrievalSource>> {
        self.read(caller)?;
        let service = self.service()?;
        let (from, to) = range.resolve(24)?;
        let spans = service
            .store()
            .query_spans(&SpanQuery {
                from_ns: from.saturating_mul(1_000_000_000),
                to_ns: to.saturating_mul(1_000_000_000),
                operation: Some("retrieval".into()),
                data_source_set: true,
                service: service_name.map(str::to_string),
                only_kept: true,
                limit: 50_000,
                ..SpanQuery::default()
            })
            .await?;
        let scores = service
            .store()
            .query_scores(&ScoreQuery {
                from_s: Some(from),
                to_s: Some(to + 86_400),
                limit: 100_000,
                ..ScoreQuery::default()
            })
            .await?;
        let catalog = self.platform.catalog.clone();
        let resource_ref = move |name: &str| {
            let key = plinth_model::EntityRef::new("resource", "default", name).key();
            catalog.read().get(&key).map(|r| r.entity_ref.to_string())
        };
        Ok(retrieval_quality(&spans, &scores, &resource_ref))
    }

    /// Stores scores (all or none); returns their ids.
    pub async fn add_scores(&self, caller: &Caller, scores: Vec<Value>) -> AppResult<Vec<String>> {
        self.authorize_ingest(caller)?;
        let service = self.service()?;
        if scores.len() > MAX_SCORES {
            return Err(AppError::invalid(format!("at most {MAX_SCORES} scores per request")));
        }
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (i, item) in scores.into_iter().enumerate() {
            match score_row(item) {
                Ok(row) => rows.push(row),
                Err(message) => errors.push(crate::FieldError { field: format!("[{i}]"), message }),
            }
        }
        if !errors.is_empty() {
            let details = json!({"errors": errors.iter().map(|e| json!({"index": e.field.trim_matches(['[', ']']).parse::<usize>().unwrap_or(0), "message": e.message})).collect::<Vec<_>>()});
            return Err(AppError::invalid(format!("{} score(s) are invalid; nothing was stored", errors.len()))
                .with_fields(errors)
                .with_details(details));
        }
        service.store().insert_scores(&rows).await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// Scores, newest first.
    pub async fn scores(&self, caller: &Caller, filter: &ScoreFilter) -> AppResult<Vec<Score>> {
        self.read(caller)?;
        let service = self.service()?;
        let query = ScoreQuery {
            trace_id: filter.trace_id.as_deref().map(str::to_ascii_lowercase),
            prompt: filter.prompt.as_deref().map(|p| query::entity_name(p, "prompt", "prompt")).transpose()?,
            prompt_version: filter.prompt_version.clone(),
            limit: filter.limit as i64,
            ..ScoreQuery::default()
        };
        let rows = service.store().query_scores(&query).await?;
        Ok(rows
            .into_iter()
            .map(|r| Score {
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
            .collect())
    }

    /// Hourly cost anomalies of a window, ranked by dollar impact.
    pub async fn anomalies(&self, caller: &Caller, request: &AnomalyQuery) -> AppResult<AnomalyList> {
        self.read(caller)?;
        let service = self.service()?;
        let (from, to) = request.range.resolve(24)?;
        let from = from - from.rem_euclid(3600);
        // Only whole hours are judged: the hour in progress would read as a drop.
        let now = service::now_s();
        let current_hour = now - now.rem_euclid(3600);
        let to = to.min(current_hour).max(from + 3600);
        let mut config = AnomalyConfig::default();
        let non_negative = |value: Option<f64>, field: &str| -> AppResult<Option<f64>> {
            match value {
                Some(v) if !(v.is_finite() && v >= 0.0) => {
                    Err(AppError::invalid_field(field, "must be a non-negative number"))
                }
                other => Ok(other),
            }
        };
        if let Some(relative) = non_negative(request.relative, "relative")? {
            config.relative_threshold = relative;
        }
        if let Some(floor) = non_negative(request.min_usd, "minUsd")? {
            config.min_abs_usd = floor;
        }
        let mut filter = SignalFilter::resolve(&request.filter)?;
        filter.query.operation = None;
        // History for the seasonal baseline: the configured number of weeks.
        let history_from = from - i64::from(config.lookback_weeks) * 7 * 86_400;
        let rollups = RollupQuery { from_s: history_from, to_s: to, ..filter.query.clone() };
        let rows = service.store().rollups(Resolution::Hour, &rollups).await?;
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

    /// Cost per team over a window (default 30 days).
    pub async fn team_costs(
        &self,
        caller: &Caller,
        filter: &SignalQuery,
        range: TimeRange,
    ) -> AppResult<Vec<TeamCost>> {
        self.read(caller)?;
        let service = self.service()?;
        let (from, to) = range.resolve(30 * 24)?;
        let mut filter = SignalFilter::resolve(filter)?;
        filter.query.operation = None;
        let rows = query::load_rows(service, &filter, from, to).await?;
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

    /// Alert rules with their current state.
    pub fn rules(&self, caller: &Caller) -> AppResult<Vec<(AlertRule, Value)>> {
        self.read(caller)?;
        Ok(self.service()?.alerts.rules_with_state())
    }

    /// Creates or replaces a rule (by id); every problem by field.
    pub async fn put_rule(&self, caller: &Caller, rule: AlertRule) -> AppResult<AlertRule> {
        let service = self.service()?;
        // The new rule's entity, and the one it replaces, must be the caller's.
        let replaced = service.alerts.rules_with_state().into_iter().find(|(r, _)| r.id == rule.id);
        self.check_rule(caller, &rule)?;
        if let Some((old, _)) = &replaced {
            self.check_rule(caller, old)?;
        }
        let rule = rule
            .validated()
            .and_then(|rule| service.alerts.check_webhook(&rule).map(|()| rule).map_err(|error| vec![error]))
            .map_err(|errors| {
                let fields = errors
                    .iter()
                    .map(|e| {
                        let (field, message) = e.split_once(": ").unwrap_or(("", e));
                        crate::FieldError { field: field.to_string(), message: message.to_string() }
                    })
                    .collect();
                AppError::invalid(format!("the alert rule is invalid: {}", errors.join("; ")))
                    .with_fields(fields)
                    .with_details(json!({ "errors": errors }))
            })?;
        service.alerts.put(service.store(), rule.clone()).await?;
        let detail = json!({"entity": rule.entity, "replaced": replaced.is_some()});
        self.platform.record(caller, "signals.alert.write", &rule.id, AuditOutcome::Allowed, detail).await;
        Ok(rule)
    }

    pub async fn delete_rule(&self, caller: &Caller, id: &str) -> AppResult<()> {
        let service = self.service()?;
        let existing = service.alerts.rules_with_state().into_iter().find(|(r, _)| r.id == id);
        let Some((rule, _)) = existing else { return Err(AppError::not_found(format!("no alert rule `{id}`"))) };
        self.check_rule(caller, &rule)?;
        if service.alerts.delete(service.store(), id).await? {
            let detail = json!({"entity": rule.entity});
            self.platform.record(caller, "signals.alert.delete", id, AuditOutcome::Allowed, detail).await;
            Ok(())
        } else {
            Err(AppError::not_found(format!("no alert rule `{id}`")))
        }
    }

    /// Firing and resolved events, newest first.
    pub async fn alert_history(&self, caller: &Caller, rule: Option<&str>, limit: usize) -> AppResult<Vec<AlertEvent>> {
        self.read(caller)?;
        let service = self.service()?;
        let events = service.store().alert_events(rule, limit as i64).await?;
        Ok(events
            .into_iter()
            .map(|e| AlertEvent {
                body: serde_json::from_str(&e.body).unwrap_or(Value::Null),
                id: e.id,
                rule: e.rule_id,
                state: e.state,
                at: rfc3339(e.at_s),
            })
            .collect())
    }

    /// Evaluates every rule now; the rules with their state after.
    pub async fn evaluate_alerts(&self, caller: &Caller) -> AppResult<Vec<(AlertRule, Value)>> {
        self.platform.access.check(caller, Permission::SignalsAlertWrite, &Resource::none())?;
        let service = self.service()?;
        alerts::evaluate_once(service).await;
        Ok(service.alerts.rules_with_state())
    }

    /// Entities whose health alert rules set.
    pub fn health(&self, caller: &Caller) -> AppResult<Vec<HealthEntry>> {
        self.read(caller)?;
        Ok(self.service()?.alerts.health())
    }

    /// One entity's health and the rules behind it.
    pub fn entity_health(&self, caller: &Caller, entity: &plinth_model::EntityRef) -> AppResult<HealthEntry> {
        self.read(caller)?;
        Ok(self.service()?.alerts.health_of(&entity.key()))
    }

    /// The health level and firing rules of an entity, when a rule sets it.
    pub fn health_level(&self, entity_key: &str) -> Option<(String, Vec<String>)> {
        self.platform.signals.as_ref().and_then(|s| s.alerts.level_of(entity_key))
    }
}

fn decode_failure(service: &SignalsService, error: &DecodeError) -> IngestError {
    service.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
    if error.is_too_large() {
        return IngestError::TooLarge;
    }
    IngestError::Invalid(error.to_string())
}

fn store_failed(service: &SignalsService, signal: &str, error: &str) -> IngestError {
    service.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(%error, signal, "OTLP export not stored");
    IngestError::Unavailable("the store could not take the write; retry after the Retry-After delay".to_string())
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 64 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(64).collect::<String>())
    }
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
            Some(id) => Err(format!("`{field}` must be {len} hex digits, not `{}`", shorten(id))),
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
        Some(p) => Some(query::entity_name(p, "prompt", "prompt").map_err(|e| e.message)?),
        None => None,
    };
    Ok(ScoreRow {
        id: score.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        created_s: service::now_s(),
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
