//! The records signals are kept as: spans, rollup rows with their
//! dimensions, and evaluation scores. Ingestion builds them, queries read
//! them; the store persists them as they are.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::genai::SpanFacts;

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
/// it is instead of escaping it into a string.
///
/// A body is either whole (what queries read) or, as ingest makes it for
/// the store, without the members its span's columns already hold (see
/// [`SpanBody::without_columns`]): the store keeps those once, as
/// columns, and [`SpanBody::with_columns`] makes the whole body again.
#[derive(Debug, Clone)]
pub struct SpanBody {
    json: Box<RawValue>,
    whole: bool,
}

/// The members of a whole body that its span's columns hold, as the store
/// keeps them.
#[derive(Debug, Clone, Copy)]
pub struct BodyColumns<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub parent_span_id: &'a str,
    pub name: &'a str,
    pub start_ns: i64,
    pub end_ns: i64,
    pub service: &'a str,
}

impl<'a> BodyColumns<'a> {
    /// The columns of `span`.
    pub fn of(span: &'a SpanRow) -> BodyColumns<'a> {
        BodyColumns {
            trace_id: &span.trace_id,
            span_id: &span.span_id,
            parent_span_id: &span.parent_span_id,
            name: &span.name,
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            service: &span.service,
        }
    }

    /// `{"trace_id":…,"span_id":…,["parent_span_id":…,]"name":…,` and
    /// `"start_ns":…,"end_ns":…,"service":…`: what [`SpanFacts`]' JSON
    /// has before and after its `kind`, byte for byte.
    fn members(&self) -> (Vec<u8>, Vec<u8>) {
        // Writing a string into a Vec cannot fail.
        let text = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        let mut before = Vec::with_capacity(96 + self.name.len());
        before.extend_from_slice(b"{\"trace_id\":");
        text(&mut before, self.trace_id);
        before.extend_from_slice(b",\"span_id\":");
        text(&mut before, self.span_id);
        if !self.parent_span_id.is_empty() {
            before.extend_from_slice(b",\"parent_span_id\":");
            text(&mut before, self.parent_span_id);
        }
        before.extend_from_slice(b",\"name\":");
        text(&mut before, self.name);
        before.push(b',');
        let mut after = Vec::with_capacity(64 + self.service.len());
        after.extend_from_slice(
            format!("\"start_ns\":{},\"end_ns\":{},\"service\":", self.start_ns, self.end_ns).as_bytes(),
        );
        text(&mut after, self.service);
        (before, after)
    }
}

/// The opening of a body without its columns: its kind comes first.
const KIND_MEMBER: &str = "{\"kind\":";

/// The JSON string token at the start of `text` (with its quotes) and
/// what follows it.
fn split_string_token(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(text.split_at(i + 1)),
            _ => i += 1,
        }
    }
    None
}

impl SpanBody {
    /// The JSON of `value`, whole.
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<SpanBody, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(|json| SpanBody { json, whole: true })
    }

    /// `json`, once checked to be one JSON value, whole.
    pub fn parse(json: String) -> Result<SpanBody, serde_json::Error> {
        RawValue::from_string(json).map(|json| SpanBody { json, whole: true })
    }

    /// The body of `facts` without the members its span's columns hold
    /// (ids, name, start, end, service): `{"kind":…` and the rest, in one
    /// serialisation. Ingest stores this; it costs neither a second pass
    /// nor a copy of those members, which were 64 % of a body's JSON.
    pub fn without_columns(facts: &SpanFacts) -> Result<SpanBody, serde_json::Error> {
        serde_json::value::to_raw_value(&facts.without_columns()).map(|json| SpanBody { json, whole: false })
    }

    /// A body without its columns, as stored, made whole again from them.
    /// `None` when `stored` is not such a body.
    pub fn with_columns(stored: &str, columns: BodyColumns<'_>) -> Option<SpanBody> {
        let (kind, tail) = split_string_token(stored.strip_prefix(KIND_MEMBER)?)?;
        if !(tail.starts_with(',') || tail.starts_with('}')) {
            return None;
        }
        let (mut json, after) = columns.members();
        json.reserve(kind.len() + after.len() + tail.len() + 10);
        json.extend_from_slice(b"\"kind\":");
        json.extend_from_slice(kind.as_bytes());
        json.push(b',');
        json.extend_from_slice(&after);
        json.extend_from_slice(tail.as_bytes());
        SpanBody::parse(String::from_utf8(json).ok()?).ok()
    }

    /// This body without the members `columns` hold: borrowed when it is
    /// already without them (as ingest makes it), stripped when it is whole
    /// with exactly the shape of a span's facts and agrees with them;
    /// `None` otherwise (the store then keeps it whole).
    pub fn strip(&self, columns: BodyColumns<'_>) -> Option<Cow<'_, SpanBody>> {
        if !self.whole {
            return Some(Cow::Borrowed(self));
        }
        let (before, after) = columns.members();
        let text = self.json.get();
        let rest = text.as_bytes().strip_prefix(before.as_slice())?.strip_prefix(b"\"kind\":")?;
        let (kind, tail) = split_string_token(std::str::from_utf8(rest).ok()?)?;
        let tail = tail.strip_prefix(',')?.as_bytes().strip_prefix(after.as_slice())?;
        if !(tail.starts_with(b",") || tail.starts_with(b"}")) {
            return None;
        }
        let tail = std::str::from_utf8(tail).ok()?;
        RawValue::from_string(format!("{KIND_MEMBER}{kind}{tail}"))
            .ok()
            .map(|json| Cow::Owned(SpanBody { json, whole: false }))
    }

    /// This body whole: borrowed when it is, rebuilt from `columns` when
    /// it is without them; `None` when it is neither (a damaged body).
    pub fn made_whole(&self, columns: BodyColumns<'_>) -> Option<Cow<'_, SpanBody>> {
        if self.whole {
            return Some(Cow::Borrowed(self));
        }
        SpanBody::with_columns(self.json.get(), columns).map(Cow::Owned)
    }

    /// The whole body's JSON; `None` for a body without its columns.
    pub fn whole(&self) -> Option<&str> {
        self.whole.then(|| self.json.get())
    }

    /// Whether this body holds the members its columns also hold.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// The JSON as a borrowed value, to embed in a larger document.
    pub fn raw(&self) -> &RawValue {
        &self.json
    }
}

impl From<Box<RawValue>> for SpanBody {
    /// A whole body as a segment of format 2 holds it.
    fn from(json: Box<RawValue>) -> SpanBody {
        SpanBody { json, whole: true }
    }
}

impl PartialEq for SpanBody {
    fn eq(&self, other: &SpanBody) -> bool {
        self.whole == other.whole && self.json.get() == other.json.get()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genai::{Evaluation, RetrievedDocument, Usage};

    /// Every field set (no `..Default::default()`: a field added to
    /// `SpanFacts` must be named here, and so in `WithoutColumns`).
    fn every_field(parent_span_id: &str, name: &str) -> SpanFacts {
        let text = |s: &str| Some(s.to_string());
        SpanFacts {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: parent_span_id.into(),
            name: name.into(),
            kind: "client".into(),
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_250_000_000,
            service: "chat \"bot\"".into(),
            error: true,
            error_message: text("rate limited"),
            operation: text("chat"),
            provider: text("openai"),
            request_model: text("gpt-4o"),
            response_model: text("gpt-4o-2024-08-06"),
            usage: Usage { input: 10, output: 20, cache_read: 3, cache_write: 1, reasoning: 5 },
            ttft_ms: Some(12.5),
            conversation_id: text("c1"),
            agent_id: text("a1"),
            agent_name: text("planner"),
            tool_name: text("search"),
            tool_call_id: text("t1"),
            tool_type: text("function"),
            tool_arguments: text("{\"q\":1}"),
            tool_result: text("ok"),
            prompt_name: text("support"),
            prompt_version: text("3"),
            data_source: text("kb"),
            documents: vec![RetrievedDocument { id: text("d1"), score: Some(0.5) }],
            evaluations: vec![Evaluation {
                name: "relevance".into(),
                score: Some(0.9),
                label: None,
                explanation: text("fine"),
            }],
            finish_reasons: vec!["stop".into()],
            reported_cost_usd: Some(0.01),
            cost_usd: Some(0.01),
            cost_source: text("reported"),
            price_version: text("v1:gpt-4o@2024"),
            http_method: text("POST"),
            http_route: text("/chat"),
            http_status: Some(429),
        }
    }

    fn columns(facts: &SpanFacts) -> BodyColumns<'_> {
        BodyColumns {
            trace_id: &facts.trace_id,
            span_id: &facts.span_id,
            parent_span_id: &facts.parent_span_id,
            name: &facts.name,
            start_ns: facts.start_ns,
            end_ns: facts.end_ns,
            service: &facts.service,
        }
    }

    #[test]
    fn a_body_without_its_columns_is_made_whole_byte_for_byte() {
        let bare = SpanFacts { kind: "internal".into(), ..SpanFacts::default() };
        for facts in [every_field("", "root"), every_field("b7ad6b7169203331", "é \\ \u{1} \"q\""), bare] {
            let whole = SpanBody::of(&facts).unwrap();
            let without = SpanBody::without_columns(&facts).unwrap();
            assert!(!without.is_whole() && without.whole().is_none(), "the columnless form is never read as whole");
            assert!(without.raw().get().len() < whole.raw().get().len());
            assert!(!without.raw().get().contains(&facts.trace_id) || facts.trace_id.is_empty());
            let restored = SpanBody::with_columns(without.raw().get(), columns(&facts)).unwrap();
            assert_eq!(restored.whole(), whole.whole());
            // Stripping the whole body gives the same columnless body.
            assert_eq!(*whole.strip(columns(&facts)).unwrap(), without);
            // And each form turns into the other, borrowing where it can.
            assert!(matches!(without.strip(columns(&facts)), Some(Cow::Borrowed(_))));
            assert!(matches!(whole.made_whole(columns(&facts)), Some(Cow::Borrowed(_))));
            assert_eq!(*without.made_whole(columns(&facts)).unwrap(), whole);
            // And the whole body reads back as the same facts.
            assert_eq!(serde_json::from_str::<SpanFacts>(restored.whole().unwrap()).unwrap(), facts);
        }
    }

    #[test]
    fn a_body_that_disagrees_with_its_columns_is_not_stripped() {
        let facts = every_field("", "root");
        let whole = SpanBody::of(&facts).unwrap();
        let mut other = facts.clone();
        other.end_ns += 1;
        assert!(whole.strip(columns(&other)).is_none());
        other = facts.clone();
        other.name = "renamed".into();
        assert!(whole.strip(columns(&other)).is_none());
        assert!(SpanBody::parse(r#"{"x":1}"#.into()).unwrap().strip(columns(&facts)).is_none());
    }

    #[test]
    fn a_damaged_columnless_body_is_refused_not_a_panic() {
        let facts = every_field("", "root");
        for stored in [r#"{"x":1}"#, r#"{"kind":"x}"#, r#"{"kind":"a\"#, r#"{"kind":"a"x"#, r#"{"kind":"a","#, ""] {
            assert!(SpanBody::with_columns(stored, columns(&facts)).is_none(), "{stored}");
        }
    }
}
