//! The OpenTelemetry GenAI semantic conventions, normalised.
//!
//! Instrumentations disagree on names: the conventions renamed
//! `gen_ai.system` to `gen_ai.provider.name` and `prompt_tokens` to
//! `input_tokens`, OpenLLMetry writes `llm.*` and `traceloop.*`, and cache
//! counters have had three spellings. [`extract`] reads every spelling into
//! one [`SpanFacts`], so the rest of Plinth sees a single vocabulary.
//!
//! Token counts follow the conventions: cache reads and cache writes are
//! *parts of* `input_tokens`, reasoning tokens *part of* `output_tokens`.
//! They are never added on top; an instrumentation that reports the parts
//! larger than the total gets the total raised to the parts.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use serde::{Deserialize, Serialize};

/// Longest tool argument or result kept on a span, in bytes.
pub const MAX_CAPTURED_TEXT: usize = 4096;

/// Token usage of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input: u64,
    /// All output tokens, reasoning ones included.
    pub output: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: u64,
    /// Output tokens spent on reasoning.
    pub reasoning: u64,
}

impl Usage {
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// One retrieved document of a retrieval operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievedDocument {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A `gen_ai.evaluation.result` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// Everything Plinth reads from one span, in one vocabulary. Serialised as
/// the body of a stored span (`None` fields are left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanFacts {
    pub trace_id: String,
    pub span_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent_span_id: String,
    pub name: String,
    pub kind: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub service: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// `gen_ai.operation.name`, lower-case (`chat`, `embeddings`,
    /// `execute_tool`, `invoke_agent`, `retrieval`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    #[serde(default, skip_serializing_if = "Usage::is_empty")]
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_arguments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<RetrievedDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<Evaluation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finish_reasons: Vec<String>,
    /// Cost the instrumentation reported (it wins over the price table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost_usd: Option<f64>,
    /// The cost counted for this span (reported, else computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `reported` or `computed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<String>,
    /// The price-table entry a computed cost used (`<table version>:<pattern>@<from>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i64>,
}

impl SpanFacts {
    pub fn duration_ms(&self) -> f64 {
        (self.end_ns - self.start_ns).max(0) as f64 / 1e6
    }

    /// Whether the span is a GenAI operation (any GenAI attribute at all).
    pub fn is_genai(&self) -> bool {
        self.operation.is_some()
    }

    /// The model the call ran on: the response model when reported (it
    /// names the exact version), else the requested one.
    pub fn model(&self) -> Option<&str> {
        self.response_model.as_deref().or(self.request_model.as_deref())
    }

    /// Whether this operation's tokens are billed here. Agent, tool and
    /// retrieval spans may repeat their children's usage as a total, so only
    /// model calls count toward sums — otherwise an agent run would be
    /// billed twice.
    pub fn bills_tokens(&self) -> bool {
        match self.operation.as_deref() {
            Some(op) => !matches!(op, "invoke_agent" | "create_agent" | "execute_tool" | "retrieval" | "workflow"),
            None => false,
        }
    }

    /// A server-side span of an ordinary service: it feeds the RED metrics.
    pub fn is_server(&self) -> bool {
        self.kind == "server" || self.kind == "consumer"
    }
}

/// [`SpanFacts`] without the members a stored span's columns hold (trace,
/// span and parent ids, name, start, end, service): its JSON is what
/// `SpanFacts` writes from `kind` on, less `start_ns`, `end_ns` and
/// `service`. See `records::SpanBody::without_columns`; a test there checks
/// that the two give the whole body back byte for byte, and names every
/// field, so a field added to `SpanFacts` must be added here too.
pub struct WithoutColumns<'a>(&'a SpanFacts);

impl SpanFacts {
    /// These facts, to be serialised without their columns.
    pub fn without_columns(&self) -> WithoutColumns<'_> {
        WithoutColumns(self)
    }
}

impl Serialize for WithoutColumns<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let f = self.0;
        let mut out = serializer.serialize_struct("SpanFacts", 30)?;
        out.serialize_field("kind", &f.kind)?;
        if f.error {
            out.serialize_field("error", &f.error)?;
        }
        // In `SpanFacts`' order, each left out as its `skip_serializing_if` says.
        macro_rules! unless {
            ($empty:expr, $($field:ident),+) => {
                $(if !$empty(&f.$field) {
                    out.serialize_field(stringify!($field), &f.$field)?;
                })+
            };
        }
        unless!(Option::is_none, error_message, operation, provider, request_model, response_model);
        unless!(Usage::is_empty, usage);
        unless!(Option::is_none, ttft_ms, conversation_id, agent_id, agent_name, tool_name, tool_call_id, tool_type);
        unless!(Option::is_none, tool_arguments, tool_result, prompt_name, prompt_version, data_source);
        unless!(Vec::is_empty, documents, evaluations, finish_reasons);
        unless!(Option::is_none, reported_cost_usd, cost_usd, cost_source, price_version, http_method, http_route);
        unless!(Option::is_none, http_status);
        out.end()
    }
}

/// Lower-case hex of `bytes`, as `hex::encode` gives it, written into a
/// buffer rather than collected a `char` at a time (three ids per span: that
/// collecting was 1.4 % of the receiver's CPU).
fn hex_of(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    // The buffer is twice the input, the one length `encode_to_slice`
    // accepts, and hex digits are ASCII: neither fallback is taken.
    if hex::encode_to_slice(bytes, &mut out).is_err() {
        return hex::encode(bytes);
    }
    String::from_utf8(out).unwrap_or_else(|_| hex::encode(bytes))
}

/// Reads one span. `service` is the resource's `service.name`.
pub fn extract(service: &str, span: &Span) -> SpanFacts {
    let mut facts = SpanFacts {
        trace_id: hex_of(&span.trace_id),
        span_id: hex_of(&span.span_id),
        parent_span_id: hex_of(&span.parent_span_id),
        name: span.name.clone(),
        kind: kind_name(span.kind).to_string(),
        start_ns: clamp_ns(span.start_time_unix_nano),
        end_ns: clamp_ns(span.end_time_unix_nano.max(span.start_time_unix_nano)),
        service: service.to_string(),
        ..SpanFacts::default()
    };
    if let Some(status) = &span.status {
        if status.code == StatusCode::Error as i32 {
            facts.error = true;
            if !status.message.is_empty() {
                facts.error_message = Some(status.message.clone());
            }
        }
    }

    // Seen values; later fallbacks never override a current name.
    let mut system: Option<String> = None;
    let mut legacy_request_type: Option<String> = None;
    let mut has_genai = false;
    let mut deprecated_input: Option<u64> = None;
    let mut deprecated_output: Option<u64> = None;
    let mut cache_read_alt: Option<u64> = None;
    let mut cache_write_alt: Option<u64> = None;
    let mut reasoning_alt: Option<u64> = None;
    let mut ttft_s: Option<f64> = None;
    let mut traceloop_prompt: Option<String> = None;
    let mut traceloop_version: Option<String> = None;
    let mut error_type: Option<String> = None;
    let mut rpc_status: Option<i64> = None;

    for KeyValue { key, value, .. } in &span.attributes {
        let Some(value) = value.as_ref() else { continue };
        if key.starts_with("gen_ai.") || key.starts_with("llm.") {
            has_genai = true;
        }
        match key.as_str() {
            "gen_ai.operation.name" => facts.operation = text(value).map(|s| s.to_ascii_lowercase()),
            "gen_ai.provider.name" => facts.provider = text(value),
            "gen_ai.system" | "llm.vendor" => system = system.or(text(value)),
            "llm.request.type" => legacy_request_type = text(value),
            "gen_ai.request.model" | "llm.request.model" => {
                facts.request_model = facts.request_model.take().or(text(value))
            }
            "gen_ai.response.model" | "llm.response.model" => {
                facts.response_model = facts.response_model.take().or(text(value))
            }
            "gen_ai.usage.input_tokens" => facts.usage.input = integer(value).unwrap_or(0),
            "gen_ai.usage.output_tokens" => facts.usage.output = integer(value).unwrap_or(0),
            "gen_ai.usage.prompt_tokens" | "llm.usage.prompt_tokens" => deprecated_input = integer(value),
            "gen_ai.usage.completion_tokens" | "llm.usage.completion_tokens" => deprecated_output = integer(value),
            "gen_ai.usage.cache_read.input_tokens" => facts.usage.cache_read = integer(value).unwrap_or(0),
            "gen_ai.usage.cache_read_input_tokens" | "llm.usage.cache_read_input_tokens" => {
                cache_read_alt = integer(value)
            }
            "gen_ai.usage.cache_creation.input_tokens" => facts.usage.cache_write = integer(value).unwrap_or(0),
            "gen_ai.usage.cache_creation_input_tokens"
            | "gen_ai.usage.cache_write.input_tokens"
            | "gen_ai.usage.cache_write_input_tokens"
            | "llm.usage.cache_creation_input_tokens" => cache_write_alt = integer(value),
            "gen_ai.usage.reasoning.output_tokens" => facts.usage.reasoning = integer(value).unwrap_or(0),
            "gen_ai.usage.reasoning_tokens" | "llm.usage.reasoning_tokens" => reasoning_alt = integer(value),
            "gen_ai.response.time_to_first_chunk"
            | "gen_ai.response.time_to_first_token"
            | "gen_ai.server.time_to_first_token" => ttft_s = ttft_s.or(number(value)),
            "gen_ai.conversation.id" | "session.id" => {
                facts.conversation_id = facts.conversation_id.take().or(text(value))
            }
            "gen_ai.agent.id" => facts.agent_id = text(value),
            "gen_ai.agent.name" => facts.agent_name = text(value),
            "gen_ai.tool.name" => facts.tool_name = text(value),
            "gen_ai.tool.call.id" => facts.tool_call_id = text(value),
            "gen_ai.tool.type" => facts.tool_type = text(value),
            "gen_ai.tool.call.arguments" => facts.tool_arguments = text(value).map(truncate),
            "gen_ai.tool.call.result" => facts.tool_result = text(value).map(truncate),
            "gen_ai.prompt.name" => facts.prompt_name = text(value),
            "gen_ai.prompt.version" => facts.prompt_version = text(value),
            "traceloop.prompt.name" | "traceloop.prompt.key" => traceloop_prompt = traceloop_prompt.or(text(value)),
            "traceloop.prompt.version" => traceloop_version = text(value),
            "gen_ai.data_source.id" | "db.collection.name" => {
                facts.data_source = facts.data_source.take().or(text(value))
            }
            "gen_ai.retrieval.documents" => facts.documents = documents(value),
            "gen_ai.response.finish_reasons" => facts.finish_reasons = texts(value),
            "gen_ai.usage.cost" | "gen_ai.usage.cost_usd" | "gen_ai.cost.total_usd" | "llm.usage.cost" => {
                facts.reported_cost_usd = number(value).filter(|c| c.is_finite() && *c >= 0.0)
            }
            "http.request.method" | "http.method" => facts.http_method = facts.http_method.take().or(text(value)),
            "http.route" => facts.http_route = text(value),
            "http.response.status_code" | "http.status_code" => {
                facts.http_status = facts.http_status.or(integer(value).map(|v| v as i64))
            }
            "rpc.grpc.status_code" => rpc_status = integer(value).map(|v| v as i64),
            "error.type" => error_type = text(value),
            _ => {}
        }
    }

    for event in &span.events {
        if event.name == "gen_ai.evaluation.result" {
            facts.evaluations.push(evaluation(&event.attributes));
            has_genai = true;
        }
    }

    // Deprecated names fill in what the current names left empty.
    if facts.provider.is_none() {
        facts.provider = system;
    }
    if facts.usage.input == 0 {
        facts.usage.input = deprecated_input.unwrap_or(0);
    }
    if facts.usage.output == 0 {
        facts.usage.output = deprecated_output.unwrap_or(0);
    }
    if facts.usage.cache_read == 0 {
        facts.usage.cache_read = cache_read_alt.unwrap_or(0);
    }
    if facts.usage.cache_write == 0 {
        facts.usage.cache_write = cache_write_alt.unwrap_or(0);
    }
    if facts.usage.reasoning == 0 {
        facts.usage.reasoning = reasoning_alt.unwrap_or(0);
    }
    // Parts never exceed their totals (see the module comment).
    facts.usage.input = facts.usage.input.max(facts.usage.cache_read + facts.usage.cache_write);
    facts.usage.output = facts.usage.output.max(facts.usage.reasoning);
    if facts.prompt_name.is_none() {
        facts.prompt_name = traceloop_prompt;
    }
    if facts.prompt_version.is_none() {
        facts.prompt_version = traceloop_version;
    }
    facts.ttft_ms = ttft_s.filter(|s| s.is_finite() && *s >= 0.0).map(|s| s * 1000.0);

    if facts.operation.is_none() && has_genai {
        facts.operation = Some(infer_operation(legacy_request_type.as_deref(), &span.name, &facts));
    }
    if let Some(op) = facts.operation.as_mut() {
        // Older names of the same operations.
        match op.as_str() {
            "completion" => *op = "text_completion".to_string(),
            "embedding" => *op = "embeddings".to_string(),
            _ => {}
        }
    }

    // Errors: status ERROR, a 5xx server response, a failing gRPC code or
    // `error.type` on a GenAI call.
    if !facts.error {
        let server_5xx = facts.is_server() && facts.http_status.is_some_and(|s| s >= 500);
        let grpc_failure = facts.is_server() && rpc_status.is_some_and(|c| matches!(c, 2 | 4 | 12 | 13 | 14 | 15));
        let genai_error = facts.operation.is_some() && error_type.is_some();
        if server_5xx || grpc_failure || genai_error {
            facts.error = true;
            facts.error_message = error_type;
        }
    }
    facts
}

fn infer_operation(request_type: Option<&str>, span_name: &str, facts: &SpanFacts) -> String {
    if let Some(kind) = request_type {
        return kind.to_ascii_lowercase();
    }
    let first_word = span_name.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    let known = [
        "chat",
        "text_completion",
        "generate_content",
        "embeddings",
        "retrieval",
        "execute_tool",
        "invoke_agent",
        "create_agent",
    ];
    if known.contains(&first_word.as_str()) {
        return first_word;
    }
    if facts.tool_name.is_some() {
        "execute_tool".to_string()
    } else if facts.agent_name.is_some() && facts.request_model.is_none() {
        "invoke_agent".to_string()
    } else if facts.data_source.is_some() || !facts.documents.is_empty() {
        "retrieval".to_string()
    } else {
        "chat".to_string()
    }
}

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        Ok(SpanKind::Internal) => "internal",
        _ => "unspecified",
    }
}

fn clamp_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_CAPTURED_TEXT {
        let mut cut = MAX_CAPTURED_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// A string value (numbers and booleans rendered).
fn text(value: &AnyValue) -> Option<String> {
    match value.value.as_ref()? {
        Value::StringValue(s) if !s.is_empty() => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::ArrayValue(_) | Value::KvlistValue(_) => Some(to_json(value).to_string()),
        _ => None,
    }
}

fn texts(value: &AnyValue) -> Vec<String> {
    match value.value.as_ref() {
        Some(Value::ArrayValue(array)) => array.values.iter().filter_map(text).collect(),
        _ => text(value).into_iter().collect(),
    }
}

/// A non-negative integer; strings and whole doubles are accepted
/// because some SDKs send counts as either.
fn integer(value: &AnyValue) -> Option<u64> {
    match value.value.as_ref()? {
        Value::IntValue(i) => u64::try_from(*i).ok(),
        Value::DoubleValue(d) if d.is_finite() && *d >= 0.0 => Some(d.round() as u64),
        Value::StringValue(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

fn number(value: &AnyValue) -> Option<f64> {
    match value.value.as_ref()? {
        Value::IntValue(i) => Some(*i as f64),
        Value::DoubleValue(d) => Some(*d),
        Value::StringValue(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// An OTLP value as JSON (for structured attributes).
pub fn to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value.value.as_ref() {
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map(J::Number).unwrap_or(J::Null),
        Some(Value::ArrayValue(array)) => J::Array(array.values.iter().map(to_json).collect()),
        Some(Value::KvlistValue(list)) => J::Object(
            list.values.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map(to_json).unwrap_or(J::Null))).collect(),
        ),
        Some(Value::BytesValue(bytes)) => J::String(hex_of(bytes)),
        _ => J::Null,
    }
}

/// Retrieved documents: a JSON string (`[{"id":…,"score":…}]`) or an OTLP
/// array of key/value lists.
fn documents(value: &AnyValue) -> Vec<RetrievedDocument> {
    let json = match value.value.as_ref() {
        Some(Value::StringValue(s)) => serde_json::from_str(s).unwrap_or(serde_json::Value::Null),
        _ => to_json(value),
    };
    let serde_json::Value::Array(items) = json else { return Vec::new() };
    items
        .iter()
        .map(|item| RetrievedDocument {
            id: item
                .get("id")
                .and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_i64().map(|i| i.to_string()))),
            score: item.get("score").and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))),
        })
        .collect()
}

fn evaluation(attributes: &[KeyValue]) -> Evaluation {
    let mut result = Evaluation { name: String::new(), score: None, label: None, explanation: None };
    for KeyValue { key, value, .. } in attributes {
        let Some(value) = value.as_ref() else { continue };
        match key.as_str() {
            "gen_ai.evaluation.name" => result.name = text(value).unwrap_or_default(),
            "gen_ai.evaluation.score.value" | "gen_ai.evaluation.score" => result.score = number(value),
            "gen_ai.evaluation.score.label" | "gen_ai.evaluation.label" => result.label = text(value),
            "gen_ai.evaluation.explanation" => result.explanation = text(value).map(truncate),
            _ => {}
        }
    }
    if result.score.is_none() {
        // Boolean labels score as 1/0 so they average.
        result.score = match result.label.as_deref() {
            Some("true" | "pass" | "passed" | "relevant") => Some(1.0),
            Some("false" | "fail" | "failed" | "irrelevant") => Some(0.0),
            _ => None,
        };
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{span::Event, Status};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }
    fn s(key: &str, v: &str) -> KeyValue {
        kv(key, Value::StringValue(v.to_string()))
    }
    fn i(key: &str, v: i64) -> KeyValue {
        kv(key, Value::IntValue(v))
    }
    fn span(attributes: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "chat gpt-4o".into(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_250_000_000,
            attributes,
            ..Default::default()
        }
    }

    #[test]
    fn ids_are_hex_as_the_hex_crate_writes_them() {
        let every_byte: Vec<u8> = (0..=255).collect();
        for bytes in [&[][..], &[0x00], &[0xab, 0xcd], &[0xff; 16], &every_byte] {
            assert_eq!(hex_of(bytes), hex::encode(bytes));
        }
        assert_eq!(hex_of(&[0x5b, 0x8e, 0xff, 0x07]), "5b8eff07");
    }

    #[test]
    fn current_and_deprecated_names_agree() {
        let current = extract(
            "svc",
            &span(vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.request.model", "gpt-4o"),
                i("gen_ai.usage.input_tokens", 1000),
                i("gen_ai.usage.output_tokens", 200),
                i("gen_ai.usage.cache_read.input_tokens", 600),
                i("gen_ai.usage.reasoning.output_tokens", 50),
            ]),
        );
        let deprecated = extract(
            "svc",
            &span(vec![
                s("gen_ai.system", "openai"),
                s("gen_ai.request.model", "gpt-4o"),
                i("gen_ai.usage.prompt_tokens", 1000),
                i("gen_ai.usage.completion_tokens", 200),
                i("gen_ai.usage.cache_read_input_tokens", 600),
                i("gen_ai.usage.reasoning_tokens", 50),
            ]),
        );
        assert_eq!(current.usage, deprecated.usage);
        assert_eq!(current.provider, deprecated.provider);
        assert_eq!(deprecated.operation.as_deref(), Some("chat"));
        assert_eq!(current.usage, Usage { input: 1000, output: 200, cache_read: 600, cache_write: 0, reasoning: 50 });
        assert_eq!(current.duration_ms(), 250.0);
    }

    #[test]
    fn parts_never_exceed_totals() {
        let facts = extract(
            "svc",
            &span(vec![
                s("gen_ai.operation.name", "chat"),
                i("gen_ai.usage.input_tokens", 10),
                i("gen_ai.usage.cache_read.input_tokens", 30),
                i("gen_ai.usage.cache_creation.input_tokens", 5),
            ]),
        );
        assert_eq!(facts.usage.input, 35);
    }

    #[test]
    fn agent_tool_retrieval_and_evaluations() {
        let mut tool = span(vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "get_weather"),
            s("gen_ai.tool.call.arguments", &"x".repeat(10_000)),
            s("traceloop.prompt.key", "support-answer"),
            s("traceloop.prompt.version", "3"),
        ]);
        tool.events.push(Event {
            name: "gen_ai.evaluation.result".into(),
            attributes: vec![s("gen_ai.evaluation.name", "relevance"), s("gen_ai.evaluation.score.label", "pass")],
            ..Default::default()
        });
        let facts = extract("svc", &tool);
        assert_eq!(facts.tool_name.as_deref(), Some("get_weather"));
        assert!(facts.tool_arguments.as_ref().unwrap().len() <= MAX_CAPTURED_TEXT + 3);
        assert_eq!(facts.prompt_name.as_deref(), Some("support-answer"));
        assert_eq!(facts.evaluations[0].score, Some(1.0));
        assert!(!facts.bills_tokens());

        let retrieval = extract(
            "svc",
            &span(vec![
                s("gen_ai.operation.name", "retrieval"),
                s("gen_ai.data_source.id", "kb-qdrant"),
                s("gen_ai.retrieval.documents", r#"[{"id":"a","score":0.9},{"id":"b","score":"0.4"}]"#),
            ]),
        );
        assert_eq!(retrieval.documents.len(), 2);
        assert_eq!(retrieval.documents[1].score, Some(0.4));
    }

    #[test]
    fn server_spans_and_errors() {
        let mut server = span(vec![s("http.route", "/orders"), i("http.response.status_code", 503)]);
        server.kind = SpanKind::Server as i32;
        let facts = extract("orders", &server);
        assert!(facts.is_server() && facts.error && !facts.is_genai());

        let mut failed = span(vec![s("gen_ai.operation.name", "chat")]);
        failed.status = Some(Status { code: StatusCode::Error as i32, message: "rate limited".into() });
        let facts = extract("svc", &failed);
        assert!(facts.error);
        assert_eq!(facts.error_message.as_deref(), Some("rate limited"));
    }

    #[test]
    fn ttft_in_seconds_becomes_ms() {
        let facts = extract(
            "svc",
            &span(vec![
                s("gen_ai.operation.name", "chat"),
                kv("gen_ai.response.time_to_first_chunk", Value::DoubleValue(0.125)),
            ]),
        );
        assert_eq!(facts.ttft_ms, Some(125.0));
    }
}
