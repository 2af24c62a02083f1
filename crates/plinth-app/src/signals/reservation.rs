//! The OTLP receiver's memory reservation: what an export will take until
//! its commit, read from the payload before it is decoded.

use plinth_store::ScoreRow;
use plinth_telemetry::otlp::Encoding;

/// Bytes to reserve, on top of the body as read, for an OTLP traces export
/// whose inflated payload is `payload`, so the in-flight limit bounds what
/// the export really takes until its commit: the inflated copy of a
/// compressed body, the decoded request, the normalised spans, the rows
/// and their bodies. Measured with dhat by tests/otlp_memory.rs, which
/// checks it against every export shape there.
///
/// No single multiple of the size holds: a tiny span takes ~25× its wire
/// size, a span of nothing 170×, a 256 KiB prompt ~1.5×, and a long
/// `service.name` or agent name is copied into every span of its export.
/// So the payload is walked (no allocation for protobuf, a few small ones
/// for JSON) and each part is weighed by what `prepare` makes of it.
pub fn reservation_for(payload: &[u8], encoding: Encoding) -> usize {
    let tally = match encoding {
        Encoding::Protobuf => {
            let mut tally = Tally::default();
            wire::request(&mut tally, payload);
            tally
        }
        Encoding::Json => json_tally(payload),
    };
    tally.total(payload.len())
}

/// Per span with ids (one `prepare` keeps) beyond its structs: hex ids in
/// facts and row, the fixed part of the JSON body (256), the rollup-key and
/// ancestor indexes, the recent-trace set.
const SPAN_EXTRA: usize = 1_024;
/// Per attribute beyond its struct (its key and value are in the payload).
const KEY_VALUE_EXTRA: usize = 32;
/// A number or boolean kept as text is at most this long.
const NUMBER_TEXT: usize = 24;
/// Per event beyond its structs: a score row's id and copied strings.
const EVENT_EXTRA: usize = 384;
/// Per value inside an array or key-value list: its `serde_json::Value`
/// when rendered as text, and a retrieved document when it is one.
const NESTED_EXTRA: usize = 192;
/// Per byte of `gen_ai.retrieval.documents`: parsed into a JSON value and
/// a document per item (`[0,0,…]` is two bytes per document).
const DOCUMENTS: usize = 128;
/// An array or list value is rendered as JSON text of at most this many
/// bytes per encoded byte (an empty value is `null`, a control character
/// `\u0001`), plus [`NUMBER_TEXT`].
const RENDERED_PROTOBUF: usize = 6;
const RENDERED_JSON: usize = 3;
/// Prost's recursion limit: a deeper payload fails to decode.
const MAX_DEPTH: usize = 100;

/// A text the normaliser may keep: its length and its length once escaped
/// in a JSON body (at most 6× for control characters; for OTLP/JSON at
/// most its length as sent, which had to escape the same characters).
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Text {
    len: usize,
    escaped: usize,
}

impl Text {
    fn number() -> Text {
        Text { len: NUMBER_TEXT, escaped: NUMBER_TEXT }
    }

    /// A protobuf string.
    fn of(bytes: &[u8]) -> Text {
        // Most texts escape nothing: a count with no branch per byte finds
        // those, and only the others are weighed byte by byte.
        let special =
            bytes.iter().fold(0usize, |n, &byte| n + usize::from(byte < 0x20 || byte == b'"' || byte == b'\\'));
        if special == 0 {
            return Text { len: bytes.len(), escaped: bytes.len() };
        }
        let escaped = bytes.iter().fold(0usize, |sum, byte| {
            sum + match byte {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..=0x1f => 6,
                _ => 1,
            }
        });
        Text { len: bytes.len(), escaped }
    }

    /// An OTLP/JSON string, `raw` bytes between its quotes.
    fn json(raw: usize) -> Text {
        Text { len: raw, escaped: raw }
    }

    /// An array or list rendered as JSON text.
    fn rendered(encoded: usize, factor: usize) -> Text {
        let len = encoded.saturating_mul(factor).saturating_add(NUMBER_TEXT);
        Text { len, escaped: len.saturating_mul(2) }
    }

    fn max(self, other: Text) -> Text {
        Text { len: self.len.max(other.len), escaped: self.escaped.max(other.escaped) }
    }

    /// Kept in the span's facts, its row or a score row, a rollup key, and
    /// its JSON body, whose buffer grows up to twice what it holds.
    fn kept(self) -> usize {
        self.len.saturating_mul(3).saturating_add(self.escaped.saturating_mul(2))
    }
}

/// Attribute values the normaliser does not read (message contents).
fn ignored_key(key: &[u8]) -> bool {
    matches!(
        key,
        b"gen_ai.prompt"
            | b"gen_ai.completion"
            | b"gen_ai.input.messages"
            | b"gen_ai.output.messages"
            | b"gen_ai.system_instructions"
            | b"gen_ai.tool.definitions"
    ) || ((key.starts_with(b"gen_ai.prompt.") || key.starts_with(b"gen_ai.completion."))
        && !matches!(key, b"gen_ai.prompt.name" | b"gen_ai.prompt.version"))
}

/// Attribute values the normaliser keeps only the first
/// `MAX_CAPTURED_TEXT` bytes of.
fn truncated_key(key: &[u8]) -> bool {
    matches!(key, b"gen_ai.tool.call.arguments" | b"gen_ai.tool.call.result" | b"gen_ai.evaluation.explanation")
}

/// Which inherited field an attribute feeds: a GenAI span without an agent
/// or prompt copies its nearest ancestor's.
fn inherited_key(key: &[u8]) -> Option<usize> {
    match key {
        b"gen_ai.agent.name" => Some(0),
        b"gen_ai.prompt.name" | b"traceloop.prompt.name" | b"traceloop.prompt.key" => Some(1),
        b"gen_ai.prompt.version" | b"traceloop.prompt.version" => Some(2),
        _ => None,
    }
}

/// What a span or event attribute costs once the normaliser has read it,
/// by its key; `text` is `None` for a value with no text (nothing kept,
/// or a number or boolean: `Text::number`). The value itself, decoded,
/// is counted with the payload.
fn kept_cost(key: &[u8], text: Option<Text>, encoded: usize) -> usize {
    if ignored_key(key) {
        return 0;
    }
    let text = text.unwrap_or_else(Text::number);
    let kept = if truncated_key(key) {
        // Cloned whole and truncated without giving the capacity back; a
        // score row (explanations) and the body hold the first
        // `MAX_CAPTURED_TEXT` bytes.
        let limit = plinth_telemetry::genai::MAX_CAPTURED_TEXT + 4;
        text.len.saturating_add(text.len.min(limit)).saturating_add(text.escaped.min(6 * limit).saturating_mul(2))
    } else {
        text.kept()
    };
    let documents = if key == b"gen_ai.retrieval.documents" { encoded.saturating_mul(DOCUMENTS) } else { 0 };
    kept.saturating_add(documents)
}

/// The capacity of a vector built by pushing `n` items: Rust doubles it,
/// from 4 (prost and serde push decoded items one by one).
fn capacity(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        n.checked_next_power_of_two().unwrap_or(usize::MAX).max(4)
    }
}

/// The reservation being added up.
#[derive(Default)]
struct Tally {
    bytes: usize,
    /// Spans `prepare` keeps, and events (each may become a score).
    spans: usize,
    events: usize,
    /// Longest agent name, prompt name and prompt version.
    inherited: [Text; 3],
}

impl Tally {
    fn add(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// A vector of `n` decoded `T`s.
    fn items<T>(&mut self, n: usize) {
        self.add(capacity(n).saturating_mul(std::mem::size_of::<T>()));
    }

    /// A span `prepare` keeps (one with ids of the right length): its row
    /// (the rows are reserved exactly) and what else it takes; its facts
    /// and rollup key are counted in `total`.
    fn prepared_span(&mut self) {
        self.spans += 1;
        self.add(std::mem::size_of::<plinth_telemetry::records::SpanRow>() + SPAN_EXTRA);
    }

    /// A span's `n` events: each may be an evaluation result, with its
    /// evaluation in the facts, a score row and the row's id.
    fn events(&mut self, n: usize) {
        self.events = self.events.saturating_add(n);
        self.items::<opentelemetry_proto::tonic::trace::v1::span::Event>(n);
        self.items::<plinth_telemetry::genai::Evaluation>(n);
        self.add(n.saturating_mul(EVENT_EXTRA));
    }

    /// A span or event attribute.
    fn attribute(&mut self, key: &[u8], text: Option<Text>, encoded: usize) {
        self.add(kept_cost(key, text, encoded));
        if let Some(slot) = inherited_key(key) {
            self.inherited[slot] = self.inherited[slot].max(text.unwrap_or_else(Text::number));
        }
    }

    /// `spans` spans of one resource, each with a copy of its service name.
    fn service(&mut self, name: Option<Text>, spans: usize) {
        let name = name.unwrap_or(Text::json("unknown_service".len()));
        self.add(name.kept().saturating_mul(spans));
    }

    /// The inflated copy and the decoded strings (at most the payload each),
    /// what was weighed, the per-export vectors of `prepare` and the
    /// inherited texts every span may copy.
    fn total(mut self, payload: usize) -> usize {
        self.items::<plinth_telemetry::genai::SpanFacts>(self.spans);
        self.items::<plinth_telemetry::records::RollupKey>(self.spans);
        self.items::<ScoreRow>(self.events);
        let inherited = self.inherited.iter().fold(0usize, |sum, text| sum.saturating_add(text.kept()));
        // Each score row copies its span's prompt name and version.
        let prompt = self.inherited[1].len.saturating_add(self.inherited[2].len);
        payload
            .saturating_mul(2)
            .saturating_add(self.bytes)
            .saturating_add(self.spans.saturating_mul(inherited))
            .saturating_add(self.events.saturating_mul(prompt))
    }
}

/// The protobuf walk: the OTLP trace messages prost decodes, field by field,
/// without decoding them. A malformed field stops the walk of its message
/// (prost stops there too, after allocating what came before).
mod wire {
    use super::{Tally, Text, KEY_VALUE_EXTRA, MAX_DEPTH, NESTED_EXTRA, RENDERED_PROTOBUF};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, EntityRef, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::span::Link;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    /// A field's value: a number, or length-delimited bytes.
    enum Value<'a> {
        Number,
        Bytes(&'a [u8]),
    }

    struct Fields<'a>(&'a [u8]);

    fn varint(buf: &mut &[u8]) -> Option<u64> {
        // Tags and short lengths are one byte.
        if let Some((&byte, rest)) = buf.split_first() {
            if byte < 0x80 {
                *buf = rest;
                return Some(u64::from(byte));
            }
        }
        let mut value = 0u64;
        for shift in 0..10 {
            let (&byte, rest) = buf.split_first()?;
            *buf = rest;
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    impl<'a> Iterator for Fields<'a> {
        type Item = (u64, Value<'a>);

        fn next(&mut self) -> Option<Self::Item> {
            loop {
                let key = varint(&mut self.0)?;
                let value = match key & 7 {
                    0 => varint(&mut self.0).map(|_| Value::Number)?,
                    1 => {
                        self.0 = self.0.get(8..)?;
                        Value::Number
                    }
                    2 => {
                        let len = usize::try_from(varint(&mut self.0)?).ok()?;
                        let value = self.0.get(..len)?;
                        self.0 = &self.0[len..];
                        Value::Bytes(value)
                    }
                    5 => {
                        self.0 = self.0.get(4..)?;
                        Value::Number
                    }
                    // Group markers: prost skips groups; their fields are
                    // weighed as if they were the message's (more, not less).
                    3 | 4 => continue,
                    _ => return None,
                };
                return Some((key >> 3, value));
            }
        }
    }

    /// Length-delimited fields, by number.
    fn bytes(buf: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
        Fields(buf).filter_map(|(field, value)| match value {
            Value::Bytes(bytes) => Some((field, bytes)),
            Value::Number => None,
        })
    }

    /// Weighs the key-values in field `number` of `buf`, as `each` says;
    /// returns how many there were.
    fn key_values<'a>(
        tally: &mut Tally,
        buf: &'a [u8],
        number: u64,
        mut each: impl FnMut(&mut Tally, &'a [u8], Option<Text>, usize),
    ) -> usize {
        let mut count = 0;
        for (_, item) in bytes(buf).filter(|(field, _)| *field == number) {
            count += 1;
            let (key, text) = key_value(tally, item, 0);
            each(tally, key, text, item.len());
        }
        tally.items::<KeyValue>(count);
        count
    }

    pub(super) fn request(tally: &mut Tally, buf: &[u8]) {
        let mut count = 0;
        for (_, resource_spans) in bytes(buf).filter(|(field, _)| *field == 1) {
            count += 1;
            let mut service: Option<Text> = None;
            let (mut scopes, mut spans) = (0, 0);
            for (field, value) in bytes(resource_spans) {
                match field {
                    1 => {
                        key_values(tally, value, 1, |_, key, text, _| {
                            if key == b"service.name" {
                                let text = text.unwrap_or_else(Text::number);
                                service = Some(service.map_or(text, |s| s.max(text)));
                            }
                        });
                        // Entity references: a few strings each (two bytes at
                        // least apiece, in vectors that may double).
                        let mut entities = 0;
                        for (_, entity) in bytes(value).filter(|(field, _)| *field == 3) {
                            entities += 1;
                            tally.add(entity.len().saturating_mul(std::mem::size_of::<String>()));
                        }
                        tally.items::<EntityRef>(entities);
                    }
                    2 => {
                        scopes += 1;
                        spans += scope_spans(tally, value);
                    }
                    _ => {}
                }
            }
            tally.items::<ScopeSpans>(scopes);
            tally.service(service, spans);
        }
        tally.items::<ResourceSpans>(count);
    }

    /// Returns the number of spans `prepare` keeps.
    fn scope_spans(tally: &mut Tally, buf: &[u8]) -> usize {
        let (mut spans, mut kept) = (0, 0);
        for (field, value) in bytes(buf) {
            match field {
                1 => {
                    key_values(tally, value, 3, |_, _, _, _| {});
                }
                2 => {
                    spans += 1;
                    kept += span(tally, value);
                }
                _ => {}
            }
        }
        tally.items::<Span>(spans);
        kept
    }

    /// Returns 1 when `prepare` keeps the span (ids of the right length).
    /// One pass over the span's fields, its attributes among them (the
    /// walk runs on every export, before it is decoded).
    fn span(tally: &mut Tally, buf: &[u8]) -> usize {
        let (mut trace_id, mut span_id) = (0, 0);
        let (mut attributes, mut events, mut links) = (0, 0, 0);
        let attribute =
            |tally: &mut Tally, key: &[u8], text: Option<Text>, encoded: usize| tally.attribute(key, text, encoded);
        for (field, value) in bytes(buf) {
            match field {
                1 => trace_id = value.len(),
                2 => span_id = value.len(),
                9 => {
                    attributes += 1;
                    let (key, text) = key_value(tally, value, 0);
                    tally.attribute(key, text, value.len());
                }
                // Any length, kept in hex (facts, row, body).
                4 => tally.add(Text::of(value).kept().saturating_mul(2)),
                // The name is kept (facts, row, body).
                5 => tally.add(Text::of(value).kept()),
                11 => {
                    events += 1;
                    key_values(tally, value, 3, attribute);
                }
                13 => {
                    links += 1;
                    key_values(tally, value, 4, |_, _, _, _| {});
                }
                15 => {
                    for (_, message) in bytes(value).filter(|(field, _)| *field == 2) {
                        tally.add(Text::of(message).kept());
                    }
                }
                _ => {}
            }
        }
        tally.items::<KeyValue>(attributes);
        tally.events(events);
        tally.items::<Link>(links);
        if trace_id == 16 && span_id == 8 {
            tally.prepared_span();
            1
        } else {
            0
        }
    }

    /// Weighs a key-value (its struct is its vector's); returns its key and
    /// its value as text (`None`: a number, a boolean or nothing).
    fn key_value<'a>(tally: &mut Tally, buf: &'a [u8], depth: usize) -> (&'a [u8], Option<Text>) {
        tally.add(KEY_VALUE_EXTRA);
        let mut key: &[u8] = &[];
        let mut text = None;
        for (field, value) in bytes(buf) {
            match field {
                1 => key = value,
                2 => text = any_value(tally, value, depth + 1),
                _ => {}
            }
        }
        (key, text)
    }

    /// Weighs a value (its struct is its owner's); returns it as text
    /// (`None`: a number, a boolean or nothing).
    fn any_value(tally: &mut Tally, buf: &[u8], depth: usize) -> Option<Text> {
        let mut text: Option<Text> = None;
        if depth > MAX_DEPTH {
            return text;
        }
        for (field, value) in bytes(buf) {
            let this = match field {
                1 => Text::of(value),
                5 | 6 => {
                    let mut count = 0;
                    for (_, item) in bytes(value).filter(|(field, _)| *field == 1) {
                        count += 1;
                        tally.add(NESTED_EXTRA);
                        if field == 5 {
                            any_value(tally, item, depth + 1);
                        } else {
                            key_value(tally, item, depth + 1);
                        }
                    }
                    if field == 5 {
                        tally.items::<AnyValue>(count);
                    } else {
                        tally.items::<KeyValue>(count);
                    }
                    Text::rendered(value.len(), RENDERED_PROTOBUF)
                }
                _ => continue,
            };
            text = Some(text.map_or(this, |t| t.max(this)));
        }
        text
    }
}

/// Per `AnyValue` object in OTLP/JSON beyond its struct: serde buffers a
/// flattened field's whole object before decoding it.
const JSON_ANY_EXTRA: usize = 384;
/// Per JSON node (object, array, member or element) inside an `AnyValue`,
/// per `AnyValue` around it: each level of a nested value buffers its
/// subtree again while it decodes it.
const JSON_CONTENT: usize = 128;
/// Deeper JSON is not followed (serde_json refuses it at 128 levels).
const JSON_MAX_FRAMES: usize = 256;

/// What an object or array of an OTLP/JSON traces export decodes to.
#[derive(Clone, Copy, PartialEq, Debug)]
enum JsonNode {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    /// A key-value, with what owns it.
    KeyValue(Owner),
    AnyValue,
    ArrayValue,
    KeyValueList,
    /// An array, with the member it is the value of and the object owning it.
    Array(Member, Owner),
    Other,
}

/// What owns a key-value: whether the normaliser reads its value.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Owner {
    Resource,
    /// Span or event attributes.
    Read,
    /// Scope, link, or inside another value.
    Ignored,
    Other(JsonNodeKind),
}

/// `JsonNode` without payload (to keep `Owner` small).
#[derive(Clone, Copy, PartialEq, Debug)]
enum JsonNodeKind {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    AnyValue,
    ArrayValue,
    KeyValueList,
    Other,
}

/// The member names that matter (OTLP/JSON is camelCase, matched exactly
/// after unescaping, as serde does).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Member {
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Spans,
    Attributes,
    Events,
    Links,
    Status,
    Value,
    Values,
    ArrayValue,
    KvlistValue,
    EntityRefs,
    Key,
    Name,
    Message,
    StringValue,
    TraceId,
    SpanId,
    ParentSpanId,
    Other,
}

fn member(name: &[u8]) -> Member {
    match name {
        b"resourceSpans" => Member::ResourceSpans,
        b"resource" => Member::Resource,
        b"scopeSpans" => Member::ScopeSpans,
        b"scope" => Member::Scope,
        b"spans" => Member::Spans,
        b"attributes" => Member::Attributes,
        b"events" => Member::Events,
        b"links" => Member::Links,
        b"status" => Member::Status,
        b"value" => Member::Value,
        b"values" => Member::Values,
        b"arrayValue" => Member::ArrayValue,
        b"kvlistValue" => Member::KvlistValue,
        b"entityRefs" => Member::EntityRefs,
        b"key" => Member::Key,
        b"name" => Member::Name,
        b"message" => Member::Message,
        b"stringValue" => Member::StringValue,
        b"traceId" => Member::TraceId,
        b"spanId" => Member::SpanId,
        b"parentSpanId" => Member::ParentSpanId,
        _ => Member::Other,
    }
}

impl JsonNode {
    fn kind(self) -> JsonNodeKind {
        match self {
            JsonNode::Request => JsonNodeKind::Request,
            JsonNode::ResourceSpans => JsonNodeKind::ResourceSpans,
            JsonNode::Resource => JsonNodeKind::Resource,
            JsonNode::ScopeSpans => JsonNodeKind::ScopeSpans,
            JsonNode::Scope => JsonNodeKind::Scope,
            JsonNode::Span => JsonNodeKind::Span,
            JsonNode::Event => JsonNodeKind::Event,
            JsonNode::Link => JsonNodeKind::Link,
            JsonNode::AnyValue => JsonNodeKind::AnyValue,
            JsonNode::ArrayValue => JsonNodeKind::ArrayValue,
            JsonNode::KeyValueList => JsonNodeKind::KeyValueList,
            _ => JsonNodeKind::Other,
        }
    }

    /// What an object decodes to, as the value of `member` of `self` (an
    /// object) or as an element of `self` (an array).
    fn child(self, member: Member) -> JsonNode {
        use JsonNodeKind as K;
        match (self, member) {
            (JsonNode::Request, Member::ResourceSpans) => JsonNode::Array(member, Owner::Other(K::Request)),
            (JsonNode::ResourceSpans, Member::Resource) => JsonNode::Resource,
            (JsonNode::ResourceSpans, Member::ScopeSpans) => JsonNode::Array(member, Owner::Other(K::ResourceSpans)),
            (JsonNode::ScopeSpans, Member::Scope) => JsonNode::Scope,
            (JsonNode::ScopeSpans, Member::Spans) => JsonNode::Array(member, Owner::Other(K::ScopeSpans)),
            (JsonNode::Span, Member::Status) => JsonNode::Status,
            (JsonNode::KeyValue(_), Member::Value) => JsonNode::AnyValue,
            (JsonNode::AnyValue, Member::ArrayValue) => JsonNode::ArrayValue,
            (JsonNode::AnyValue, Member::KvlistValue) => JsonNode::KeyValueList,
            (node, Member::Attributes) => JsonNode::Array(member, Owner::Other(node.kind())),
            (node @ (JsonNode::Span | JsonNode::Resource), Member::Events | Member::Links | Member::EntityRefs) => {
                JsonNode::Array(member, Owner::Other(node.kind()))
            }
            (node @ (JsonNode::ArrayValue | JsonNode::KeyValueList), Member::Values) => {
                JsonNode::Array(member, Owner::Other(node.kind()))
            }
            (JsonNode::Array(Member::ResourceSpans, _), _) => JsonNode::ResourceSpans,
            (JsonNode::Array(Member::ScopeSpans, _), _) => JsonNode::ScopeSpans,
            (JsonNode::Array(Member::Spans, _), _) => JsonNode::Span,
            (JsonNode::Array(Member::Events, _), _) => JsonNode::Event,
            (JsonNode::Array(Member::Links, _), _) => JsonNode::Link,
            (JsonNode::Array(Member::Attributes, Owner::Other(owner)), _) => JsonNode::KeyValue(match owner {
                K::Resource => Owner::Resource,
                K::Span | K::Event => Owner::Read,
                _ => Owner::Ignored,
            }),
            (JsonNode::Array(Member::Values, Owner::Other(K::ArrayValue)), _) => JsonNode::AnyValue,
            (JsonNode::Array(Member::Values, Owner::Other(K::KeyValueList)), _) => JsonNode::KeyValue(Owner::Ignored),
            _ => JsonNode::Other,
        }
    }
}

/// An open object or array while scanning OTLP/JSON.
struct Frame<'a> {
    node: JsonNode,
    start: usize,
    /// Objects: the member whose value comes next, and whether a key is due.
    member: Member,
    expecting_key: bool,
    /// `AnyValue`s around and including this frame.
    values: usize,
    /// Key-values: the key, the longest string in the value, and whether
    /// the value is an array or list (rendered as JSON text).
    key: std::borrow::Cow<'a, [u8]>,
    longest: Option<usize>,
    nested: bool,
    /// Spans: the length of the ids as sent (hex).
    ids: (usize, usize),
    /// Arrays: the objects in it.
    count: usize,
    /// Resource spans: spans seen and the longest `service.name`.
    spans: usize,
    service: Option<Text>,
}

/// The JSON walk: one pass over the bytes, tracking objects and arrays
/// with what they decode to. Allocates only its frame stack and unescaped
/// member names.
fn json_tally(payload: &[u8]) -> Tally {
    let mut tally = Tally::default();
    // The inflated copy and decoded strings are counted twice by `total`;
    // escaped strings are buffered once more while they decode.
    tally.add(payload.len());
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut overflow = 0usize;
    let mut at = 0usize;
    while at < payload.len() {
        let byte = payload[at];
        match byte {
            b'"' => {
                let mut end = at + 1;
                let mut escaped = false;
                while end < payload.len() && payload[end] != b'"' {
                    if payload[end] == b'\\' {
                        escaped = true;
                        end += 1;
                    }
                    end += 1;
                }
                if end >= payload.len() {
                    break;
                }
                let raw = &payload[at + 1..end];
                let text = || -> std::borrow::Cow<'_, [u8]> {
                    if escaped {
                        let decoded: String = serde_json::from_slice(&payload[at..=end]).unwrap_or_default();
                        std::borrow::Cow::Owned(decoded.into_bytes())
                    } else {
                        std::borrow::Cow::Borrowed(raw)
                    }
                };
                if overflow == 0 {
                    json_string(&mut tally, &mut stack, raw.len(), text);
                }
                at = end + 1;
                continue;
            }
            b'{' | b'[' => {
                let parent = stack.last();
                let node = match parent {
                    None if byte == b'{' => JsonNode::Request,
                    None => JsonNode::Other,
                    Some(frame) if frame.expecting_key => JsonNode::Other,
                    Some(frame) => frame.node.child(frame.member),
                };
                let node = if byte == b'[' && !matches!(node, JsonNode::Array(..)) { JsonNode::Other } else { node };
                let node = if byte == b'{' && matches!(node, JsonNode::Array(..)) { JsonNode::Other } else { node };
                let values = parent.map_or(0, |frame| frame.values) + usize::from(node == JsonNode::AnyValue);
                tally.add(JSON_CONTENT.saturating_mul(values));
                if overflow > 0 || stack.len() >= JSON_MAX_FRAMES {
                    overflow += 1;
                    // Whatever it is, no more than a span.
                    tally.add(2 * std::mem::size_of::<opentelemetry_proto::tonic::trace::v1::Span>());
                } else {
                    if let Some(Frame { node: JsonNode::Array(..), count, .. }) = stack.last_mut() {
                        *count += usize::from(byte == b'{');
                    }
                    json_open(&mut tally, &mut stack, node);
                    stack.push(Frame {
                        node,
                        start: at,
                        member: Member::Other,
                        expecting_key: byte == b'{',
                        values,
                        key: std::borrow::Cow::Borrowed(&[]),
                        longest: None,
                        nested: false,
                        ids: (0, 0),
                        count: 0,
                        spans: 0,
                        service: None,
                    });
                }
            }
            b'}' | b']' => {
                if overflow > 0 {
                    overflow -= 1;
                } else if let Some(frame) = stack.pop() {
                    json_close(&mut tally, &mut stack, frame, at);
                }
            }
            b':' | b',' => {
                if let Some(frame) = stack.last_mut() {
                    tally.add(JSON_CONTENT.saturating_mul(frame.values));
                    if overflow == 0 && !matches!(frame.node, JsonNode::Array(..)) {
                        frame.expecting_key = byte == b',';
                        if byte == b',' {
                            frame.member = Member::Other;
                        }
                    }
                }
            }
            _ => {}
        }
        at += 1;
    }
    tally
}

fn nearest<'s, 'a>(stack: &'s mut [Frame<'a>], wanted: fn(JsonNode) -> bool) -> Option<&'s mut Frame<'a>> {
    stack.iter_mut().rev().find(|frame| wanted(frame.node))
}

fn json_open(tally: &mut Tally, stack: &mut [Frame<'_>], node: JsonNode) {
    if matches!(stack.last().map(|f| f.node), Some(JsonNode::Array(Member::Values, _))) {
        tally.add(NESTED_EXTRA);
    }
    // The structs are counted with their vectors (`json_close`) or owners.
    match node {
        JsonNode::KeyValue(_) => tally.add(KEY_VALUE_EXTRA),
        JsonNode::AnyValue => tally.add(JSON_ANY_EXTRA),
        JsonNode::ArrayValue | JsonNode::KeyValueList => {
            if let Some(key_value) = nearest(stack, |node| matches!(node, JsonNode::KeyValue(_))) {
                key_value.nested = true;
            }
        }
        // Unknown members are skipped by serde; a few strings at most.
        JsonNode::Other => tally.add(2 * std::mem::size_of::<opentelemetry_proto::tonic::common::v1::AnyValue>()),
        _ => {}
    }
}

fn json_string<'a>(
    tally: &mut Tally,
    stack: &mut [Frame<'a>],
    len: usize,
    text: impl FnOnce() -> std::borrow::Cow<'a, [u8]>,
) {
    let Some(frame) = stack.last_mut() else { return };
    tally.add(len.saturating_mul(frame.values));
    if matches!(frame.node, JsonNode::Array(..)) {
        // A string element (entity reference keys).
        tally.add(2 * std::mem::size_of::<String>());
        return;
    }
    if frame.expecting_key {
        frame.member = member(&text());
        return;
    }
    match (frame.node, frame.member) {
        (JsonNode::KeyValue(_), Member::Key) => frame.key = text(),
        (JsonNode::Span, Member::Name | Member::ParentSpanId) | (JsonNode::Status, Member::Message) => {
            tally.add(Text::json(len).kept())
        }
        (JsonNode::Span, Member::TraceId) => frame.ids.0 = len,
        (JsonNode::Span, Member::SpanId) => frame.ids.1 = len,
        (JsonNode::AnyValue, Member::StringValue) => {
            if let Some(key_value) = nearest(stack, |node| matches!(node, JsonNode::KeyValue(_))) {
                key_value.longest = Some(key_value.longest.unwrap_or(0).max(len));
            }
        }
        _ => {}
    }
}

fn json_close(tally: &mut Tally, stack: &mut [Frame<'_>], frame: Frame<'_>, end: usize) {
    match frame.node {
        JsonNode::KeyValue(owner) => {
            let encoded = end + 1 - frame.start;
            let text =
                if frame.nested { Some(Text::rendered(encoded, RENDERED_JSON)) } else { frame.longest.map(Text::json) };
            match owner {
                Owner::Read => tally.attribute(&frame.key, text, encoded),
                Owner::Resource if &*frame.key == b"service.name" => {
                    if let Some(resource_spans) = nearest(stack, |node| node == JsonNode::ResourceSpans) {
                        let text = text.unwrap_or_else(Text::number);
                        resource_spans.service = Some(resource_spans.service.map_or(text, |s| s.max(text)));
                    }
                }
                _ => {}
            }
        }
        // Hex ids of 32 and 16 digits (escapes only make them longer).
        JsonNode::Span if frame.ids.0 >= 32 && frame.ids.1 >= 16 => {
            tally.prepared_span();
            if let Some(resource_spans) = nearest(stack, |node| node == JsonNode::ResourceSpans) {
                resource_spans.spans += 1;
            }
        }
        JsonNode::ResourceSpans => tally.service(frame.service, frame.spans),
        JsonNode::Array(member, Owner::Other(owner)) => {
            use opentelemetry_proto::tonic::common::v1::{AnyValue, EntityRef, KeyValue};
            use opentelemetry_proto::tonic::trace::v1::{span::Link, ResourceSpans, ScopeSpans, Span};
            let count = frame.count;
            match (member, owner) {
                (Member::ResourceSpans, _) => tally.items::<ResourceSpans>(count),
                (Member::ScopeSpans, _) => tally.items::<ScopeSpans>(count),
                (Member::Spans, _) => tally.items::<Span>(count),
                (Member::Attributes, _) => tally.items::<KeyValue>(count),
                (Member::Events, _) => tally.events(count),
                (Member::Links, _) => tally.items::<Link>(count),
                (Member::Values, JsonNodeKind::ArrayValue) => tally.items::<AnyValue>(count),
                (Member::Values, _) => tally.items::<KeyValue>(count),
                (Member::EntityRefs, _) => tally.items::<EntityRef>(count),
                _ => {}
            }
        }
        _ => {}
    }
}
