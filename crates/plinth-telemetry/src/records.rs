//! The records signals are kept as: spans, rollup rows with their
//! dimensions, and evaluation scores. Ingestion builds them, queries read
//! them; the store persists them as they are.

/// One stored span. `body` is the span as JSON; `None` keeps only the key
/// (and the indexed columns) so that a re-delivered span is recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Unix seconds at which the receiver got the span (retention clock).
    pub received_s: i64,
    pub service: String,
    pub name: String,
    /// The GenAI operation; empty when the span is not a GenAI span.
    pub operation: String,
    pub model: String,
    pub prompt: String,
    pub prompt_version: String,
    pub agent: String,
    pub data_source: String,
    pub body: Option<SpanBody>,
}

/// A span's body: JSON, known valid by construction (serialised by
/// serde_json, or checked when parsed), so a stored segment embeds it as
/// it is instead of escaping it into a string. Reads as the JSON text.
#[derive(Debug, Clone)]
pub struct SpanBody(Box<serde_json::value::RawValue>);

impl SpanBody {
    /// The JSON of `value`.
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<SpanBody, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(SpanBody)
    }

    /// `json`, once checked to be one JSON value.
    pub fn parse(json: String) -> Result<SpanBody, serde_json::Error> {
        serde_json::value::RawValue::from_string(json).map(SpanBody)
    }

    /// The JSON as a borrowed value, to embed in a larger document.
    pub fn raw(&self) -> &serde_json::value::RawValue {
        &self.0
    }
}

impl From<Box<serde_json::value::RawValue>> for SpanBody {
    fn from(raw: Box<serde_json::value::RawValue>) -> SpanBody {
        SpanBody(raw)
    }
}

impl std::ops::Deref for SpanBody {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for SpanBody {
    fn eq(&self, other: &SpanBody) -> bool {
        self.0.get() == other.0.get()
    }
}

/// The dimensions of a rollup row; empty strings when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub service: String,
    pub component: String,
    pub team: String,
    pub provider: String,
    pub model: String,
    pub operation: String,
    pub prompt: String,
    pub prompt_version: String,
    pub agent: String,
}

/// One (partial) rollup row: several may exist per (bucket, key) until
/// the store's compaction merges them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupRow {
    /// Unix seconds at the start of the minute or hour.
    pub bucket: i64,
    pub key: RollupKey,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub tool_calls: i64,
    pub cost_usd: f64,
    /// Opaque to the store (the caller's sketch encoding).
    pub duration_sketch: Vec<u8>,
    pub ttft_sketch: Vec<u8>,
}

/// A stored evaluation score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub id: String,
    pub created_s: i64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub prompt: Option<String>,
    pub prompt_version: Option<String>,
    pub name: String,
    /// `numeric`, `boolean` or `categorical`.
    pub data_type: String,
    pub value_num: Option<f64>,
    pub value_str: Option<String>,
    /// `api`, `otel`, ...
    pub source: String,
    pub comment: Option<String>,
}
