//! From an OTLP export to store rows: normalise every span, attribute it,
//! price it, decide whether its body is kept, and (once the store has said
//! which spans are new) roll the new ones up.
//!
//! Pure apart from the [`RecentTraces`] memory; the server owns the I/O.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::records::{RollupKey, RollupRow, ScoreRow, SpanBody, SpanRow};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

use crate::attribution::Attribution;
use crate::genai::{extract, SpanFacts};
use crate::prices::PriceTable;
use crate::rollup::{RollupBuilder, SERVER_OPERATION};

/// Everything `prepare` needs besides the request.
pub struct IngestContext<'a> {
    pub attribution: &'a Attribution,
    pub prices: &'a PriceTable,
    pub recent: &'a RecentTraces,
    pub now_s: i64,
    /// Spans that started longer ago than this are refused (they would fall
    /// outside rollup retention at once).
    pub max_age_s: i64,
}

/// How far in the future a span may start (clock skew) before it is refused.
const MAX_FUTURE_S: i64 = 3600;
/// How many rejection reasons are spelled out in the partial-success message.
const REASONS_SHOWN: usize = 3;

/// One export, ready for the store.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    /// One row per accepted span, in request order.
    pub rows: Vec<SpanRow>,
    facts: Vec<SpanFacts>,
    /// Per span, the index of its rollup key in `distinct` (none for spans
    /// that feed no rollup).
    keys: Vec<Option<u32>>,
    distinct: Vec<RollupKey>,
    /// `gen_ai.evaluation.result` events, as scores (idempotent ids).
    pub scores: Vec<ScoreRow>,
    pub rejected: i64,
    /// Why spans were refused (the first few reasons), for partial success.
    pub rejection: String,
}

impl PreparedBatch {
    pub fn accepted(&self) -> usize {
        self.rows.len()
    }

    /// Rollup rows (minute, hour) of the spans the store newly inserted.
    pub fn rollups(&self, inserted: &[bool]) -> (Vec<RollupRow>, Vec<RollupRow>) {
        // Exports merged for one commit may repeat keys: fold them together.
        let mut canonical: foldhash::HashMap<&RollupKey, u32> = foldhash::HashMap::default();
        let remap: Vec<u32> = self
            .distinct
            .iter()
            .map(|key| {
                let next = canonical.len() as u32;
                *canonical.entry(key).or_insert(next)
            })
            .collect();
        let mut keys: Vec<RollupKey> = vec![RollupKey::default(); canonical.len()];
        for (key, index) in canonical {
            keys[index as usize] = key.clone();
        }
        let mut builder = RollupBuilder::default();
        for ((facts, key), new) in self.facts.iter().zip(&self.keys).zip(inserted) {
            if let (Some(key), true) = (key, new) {
                builder.add(remap[*key as usize], facts);
            }
        }
        builder.into_rows(&keys)
    }

    /// Appends another export (for group commit); row order is kept, so
    /// a mask over the whole can be split back per export.
    pub fn absorb(&mut self, other: PreparedBatch) {
        let offset = self.distinct.len() as u32;
        self.rows.extend(other.rows);
        self.facts.extend(other.facts);
        self.keys.extend(other.keys.into_iter().map(|k| k.map(|k| k + offset)));
        self.distinct.extend(other.distinct);
        self.scores.extend(other.scores);
        self.rejected += other.rejected;
    }

    /// The normalised spans (same order as `rows`).
    pub fn facts(&self) -> &[SpanFacts] {
        &self.facts
    }
}

pub fn prepare(request: &ExportTraceServiceRequest, ctx: &IngestContext<'_>) -> PreparedBatch {
    let mut batch = PreparedBatch::default();
    let mut reasons: Vec<String> = Vec::new();
    let oldest_ns = (ctx.now_s - ctx.max_age_s).saturating_mul(1_000_000_000);
    let newest_ns = (ctx.now_s + MAX_FUTURE_S).saturating_mul(1_000_000_000);

    for (r, resource_spans) in request.resource_spans.iter().enumerate() {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|resource| resource.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            })
            .unwrap_or("unknown_service");
        for (s, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            for (k, span) in scope_spans.spans.iter().enumerate() {
                let at = || format!("resourceSpans[{r}].scopeSpans[{s}].spans[{k}]");
                let problem = if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
                    Some(format!("{}: traceId must be 16 non-zero bytes (got {})", at(), span.trace_id.len()))
                } else if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
                    Some(format!("{}: spanId must be 8 non-zero bytes (got {})", at(), span.span_id.len()))
                } else {
                    let start = i64::try_from(span.start_time_unix_nano).unwrap_or(i64::MAX);
                    if start < oldest_ns {
                        Some(format!(
                            "{}: startTimeUnixNano is older than the {}-day retention",
                            at(),
                            ctx.max_age_s / 86_400
                        ))
                    } else if start > newest_ns {
                        Some(format!("{}: startTimeUnixNano is more than an hour in the future; check the clock", at()))
                    } else {
                        None
                    }
                };
                if let Some(problem) = problem {
                    batch.rejected += 1;
                    if reasons.len() < REASONS_SHOWN {
                        reasons.push(problem);
                    }
                    continue;
                }
                batch.facts.push(extract(service, span));
            }
        }
    }
    if batch.rejected > 0 {
        batch.rejection = format!("{} span(s) rejected: {}", batch.rejected, reasons.join("; "));
    }

    inherit_from_ancestors(&mut batch.facts);
    for facts in &mut batch.facts {
        price(facts, ctx.prices);
    }

    // Traces with a GenAI span keep every span's body (for trace views).
    let genai_traces: HashSet<&str> =
        batch.facts.iter().filter(|f| f.is_genai()).map(|f| f.trace_id.as_str()).collect();
    ctx.recent.remember(genai_traces.iter().copied());

    // Distinct rollup keys, looked up by borrowed parts (no allocation per
    // span). The parts are the client's text: foldhash, seeded per process.
    let mut key_index: foldhash::HashMap<[&str; 9], u32> = foldhash::HashMap::default();
    batch.keys.reserve(batch.facts.len());
    batch.rows.reserve(batch.facts.len());
    for facts in &batch.facts {
        let kept =
            facts.is_genai() || genai_traces.contains(facts.trace_id.as_str()) || ctx.recent.contains(&facts.trace_id);
        let key = rollup_parts(facts, ctx.attribution).map(|parts| {
            *key_index.entry(parts).or_insert_with(|| {
                batch.distinct.push(RollupKey {
                    service: parts[0].to_string(),
                    component: parts[1].to_string(),
                    team: parts[2].to_string(),
                    provider: parts[3].to_string(),
                    model: parts[4].to_string(),
                    operation: parts[5].to_string(),
                    prompt: parts[6].to_string(),
                    prompt_version: parts[7].to_string(),
                    agent: parts[8].to_string(),
                });
                (batch.distinct.len() - 1) as u32
            })
        });
        batch.keys.push(key);
        for (i, evaluation) in facts.evaluations.iter().enumerate() {
            batch.scores.push(ScoreRow {
                id: format!("otel:{}:{}:{i}", facts.trace_id, facts.span_id),
                created_s: facts.end_ns / 1_000_000_000,
                trace_id: Some(facts.trace_id.clone()),
                span_id: Some(facts.span_id.clone()),
                prompt: facts.prompt_name.clone(),
                prompt_version: facts.prompt_version.clone(),
                name: if evaluation.name.is_empty() { "evaluation".into() } else { evaluation.name.clone() },
                data_type: if evaluation.score.is_some() { "numeric".into() } else { "categorical".into() },
                value_num: evaluation.score,
                value_str: evaluation.label.clone(),
                source: "otel".into(),
                comment: evaluation.explanation.clone(),
            });
        }
        batch.rows.push(SpanRow {
            trace_id: facts.trace_id.clone(),
            span_id: facts.span_id.clone(),
            parent_span_id: facts.parent_span_id.clone(),
            start_ns: facts.start_ns,
            end_ns: facts.end_ns,
            received_s: ctx.now_s,
            service: facts.service.clone(),
            name: facts.name.clone(),
            operation: facts.operation.clone().unwrap_or_default(),
            model: facts.model().unwrap_or_default().to_string(),
            prompt: facts.prompt_name.clone().unwrap_or_default(),
            prompt_version: facts.prompt_version.clone().unwrap_or_default(),
            agent: facts.agent_name.clone().unwrap_or_default(),
            data_source: facts.data_source.clone().unwrap_or_default(),
            // (A span whose facts cannot be written as JSON, which serde
            // does not do for these types, is kept by its key alone.)
            body: if kept { SpanBody::without_columns(facts).ok() } else { None },
        });
    }
    batch
}

/// Model calls inside an agent run rarely repeat the agent's name or the
/// prompt; they inherit them from the nearest ancestor in the same export.
fn inherit_from_ancestors(spans: &mut [SpanFacts]) {
    // Keyed by the client's ids: foldhash, seeded per process.
    let index: foldhash::HashMap<(&str, &str), usize> =
        spans.iter().enumerate().map(|(i, f)| ((f.trace_id.as_str(), f.span_id.as_str()), i)).collect();
    /// (span index, inherited agent, inherited prompt name and version)
    type Inherited = (usize, Option<String>, Option<(String, Option<String>)>);
    let mut inherited: Vec<Inherited> = Vec::new();
    for (i, facts) in spans.iter().enumerate() {
        if !facts.is_genai() || (facts.agent_name.is_some() && facts.prompt_name.is_some()) {
            continue;
        }
        let mut agent = None;
        let mut prompt = None;
        let mut parent = facts.parent_span_id.as_str();
        for _ in 0..32 {
            let Some(&p) = index.get(&(facts.trace_id.as_str(), parent)) else { break };
            let ancestor = &spans[p];
            if agent.is_none() && facts.agent_name.is_none() {
                agent = ancestor.agent_name.clone();
            }
            if prompt.is_none() && facts.prompt_name.is_none() {
                prompt = ancestor.prompt_name.clone().map(|name| (name, ancestor.prompt_version.clone()));
            }
            parent = ancestor.parent_span_id.as_str();
        }
        if agent.is_some() || prompt.is_some() {
            inherited.push((i, agent, prompt));
        }
    }
    for (i, agent, prompt) in inherited {
        if agent.is_some() {
            spans[i].agent_name = agent;
        }
        if let Some((name, version)) = prompt {
            spans[i].prompt_name = Some(name);
            spans[i].prompt_version = version;
        }
    }
}

/// A reported cost wins; otherwise the price table prices billed tokens.
fn price(facts: &mut SpanFacts, prices: &PriceTable) {
    if let Some(reported) = facts.reported_cost_usd {
        facts.cost_usd = Some(reported);
        facts.cost_source = Some("reported".into());
        return;
    }
    if !facts.bills_tokens() || facts.usage.is_empty() {
        return;
    }
    let Some(model) = facts.model() else { return };
    if let Some(priced) = prices.cost(facts.provider.as_deref(), model, &facts.usage, facts.start_ns) {
        facts.cost_usd = Some(priced.cost_usd);
        facts.cost_source = Some("computed".into());
        facts.price_version = Some(priced.price_version);
    }
}

/// The parts of a span's rollup key (service, component, team, provider,
/// model, operation, prompt, prompt version, agent), or `None` for spans
/// that feed no rollup (internal and client spans of ordinary code).
pub fn rollup_parts<'a>(facts: &'a SpanFacts, attribution: &'a Attribution) -> Option<[&'a str; 9]> {
    let operation = match &facts.operation {
        Some(op) => op.as_str(),
        None if facts.is_server() => SERVER_OPERATION,
        None => return None,
    };
    let owner = attribution.service(&facts.service);
    Some([
        facts.service.as_str(),
        owner.map_or("", |o| o.component.as_str()),
        owner.map_or("", |o| o.team.as_str()),
        facts.provider.as_deref().unwrap_or(""),
        facts.model().unwrap_or(""),
        operation,
        facts.prompt_name.as_deref().unwrap_or(""),
        facts.prompt_version.as_deref().unwrap_or(""),
        facts.agent_name.as_deref().unwrap_or(""),
    ])
}

/// Trace ids that recently had a GenAI span, so spans of the same trace
/// arriving in a later export keep their bodies too. Two generations of at
/// most `capacity` ids each: memory is bounded, recent ids are remembered.
pub struct RecentTraces {
    capacity: usize,
    generations: Mutex<(HashSet<String>, HashSet<String>)>,
}

impl RecentTraces {
    pub fn new(capacity: usize) -> RecentTraces {
        RecentTraces { capacity: capacity.max(1), generations: Mutex::new((HashSet::new(), HashSet::new())) }
    }

    pub fn remember<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let mut guard = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if guard.0.len() >= self.capacity {
                let current = std::mem::take(&mut guard.0);
                guard.1 = current;
            }
            guard.0.insert(id.to_string());
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        let guard = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.contains(id) || guard.1.contains(id)
    }
}
