//! Raw spans, stored per trace segment: one row holds the spans of one
//! trace, one service and one retention class (kept with bodies, or
//! key-only) that arrived in one ingest transaction, encoded together.
//!
//! A span stored as a row of its own cost the OTLP receiver a table row and
//! five index entries, which profiles put at four fifths of its CPU. A
//! segment costs one row and three index entries for a whole trace's share
//! of an export. What the readers need is kept beside the encoded spans:
//! - `trace_id`, indexed: the trace view, and de-duplication;
//! - `start_ns` and `last_start_ns` (first and last span start), the latter
//!   indexed: time-range queries and retention;
//! - `root_start_ns` and `root_agent` (of the segment's first root span),
//!   with a partial index over kept roots: the trace list;
//! - `tags`: the operations, prompts and agents of the spans, and whether
//!   one names a data source, as `\n`-delimited words that a `LIKE` filter
//!   reads before any span is decoded;
//! - `span_ids`: the span ids, for de-duplication without decoding.
//!
//! The spans themselves are a JSON array of arrays ([`WireSpan`]),
//! LZ4-compressed behind a format byte (see [`pack`]): a third of the
//! bytes, and bytes are what the store's B-tree, WAL and checkpoint pay
//! for. A span's body (itself JSON) is embedded as a JSON value, from
//! migration 11 without the members that repeat the span's columns (see
//! `SpanBody::without_columns`); segments of the first compressed format hold it
//! escaped in a string, and those written before migration 10 hold that
//! JSON uncompressed.
//!
//! De-duplication is by (trace id, span id), as before: the ingest
//! transaction reads the span ids of the batch's traces through the trace
//! index. The transaction serialises with other ingests (SQLite's single
//! writer; on PostgreSQL a transaction-level advisory lock), so a retried
//! export racing its original through another replica is stored once.
//!
//! Retention removes a segment when its last span is past the horizon.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use plinth_telemetry::records::{BodyColumns, SpanBody, SpanRow};
use serde_json::value::RawValue;

use crate::StoreError;

/// The columns of a segment row as ingest writes them.
pub(crate) const SEGMENT_COLUMNS: &str = "trace_id, service, kept, start_ns, last_start_ns, span_count, \
     root_start_ns, root_agent, tags, span_ids, spans";

/// Parameters per segment in an insert.
pub(crate) const SEGMENT_PARAMS: usize = 11;

/// One span in a segment's `spans` column (a JSON array of these, each an
/// array): the fields of [`SpanRow`] that are not the segment's own, the
/// body last (`B`: embedded JSON, or in the older format a string).
/// Written borrowed from the span; read back owned.
#[derive(Serialize, Deserialize)]
struct WireSpan<'a, B>(
    Cow<'a, str>,
    Cow<'a, str>,
    i64,
    i64,
    i64,
    Cow<'a, str>,
    Cow<'a, str>,
    Cow<'a, str>,
    Cow<'a, str>,
    Cow<'a, str>,
    Cow<'a, str>,
    Cow<'a, str>,
    Option<B>,
);

/// A segment to insert.
#[derive(Debug)]
pub(crate) struct NewSegment {
    pub(crate) trace_id: String,
    pub(crate) service: String,
    pub(crate) kept: bool,
    pub(crate) start_ns: i64,
    pub(crate) last_start_ns: i64,
    pub(crate) span_count: i64,
    pub(crate) root_start_ns: Option<i64>,
    pub(crate) root_agent: Option<String>,
    pub(crate) tags: String,
    pub(crate) span_ids: String,
    /// The encoded spans ([`pack`]).
    pub(crate) spans: Vec<u8>,
}

/// The tag word of a span's operation, prompt or agent.
fn tag(kind: char, value: &str) -> String {
    format!("{kind}:{value}")
}

/// The word of a span with a data source.
const DATA_SOURCE_TAG: &str = "d";

/// Groups `spans` (new spans, any order) into segments: one per (trace,
/// service, kept), its spans in start order.
pub(crate) fn build_segments<'a>(spans: &[&'a SpanRow]) -> Result<Vec<NewSegment>, StoreError> {
    // Keyed by the client's ids: foldhash, seeded per process.
    let mut groups: foldhash::HashMap<(&str, &str, bool), Vec<&SpanRow>> = foldhash::HashMap::default();
    for span in spans {
        groups.entry((&span.trace_id, &span.service, span.body.is_some())).or_default().push(span);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    // Trace order: neighbouring inserts land in neighbouring index pages.
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(groups.len());
    for ((trace_id, service, kept), mut spans) in groups {
        spans.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
        let root = spans.iter().find(|s| s.parent_span_id.is_empty());
        let mut words: Vec<String> = Vec::new();
        for s in &spans {
            for (kind, value) in [('o', &s.operation), ('p', &s.prompt), ('a', &s.agent)] {
                if !value.is_empty() {
                    words.push(tag(kind, value));
                }
            }
            if !s.data_source.is_empty() {
                words.push(DATA_SOURCE_TAG.to_string());
            }
        }
        words.sort_unstable();
        words.dedup();
        let mut tags = String::from("\n");
        for word in &words {
            tags.push_str(word);
            tags.push('\n');
        }
        // Bodies without the columns they repeat (format 3), as ingest
        // makes them, when every body of the segment has or allows that
        // form; otherwise all whole (format 2).
        let stripped: Option<Vec<Option<Cow<'_, SpanBody>>>> = spans
            .iter()
            .map(|s| match &s.body {
                Some(body) => body.strip(BodyColumns::of(s)).map(Some),
                None => Some(None),
            })
            .collect();
        let (format, bodies) = match stripped {
            Some(bodies) => (LZ4_JSON_STRIPPED, bodies),
            None => {
                let whole = spans.iter().map(|s| {
                    s.body
                        .as_ref()
                        .map(|body| {
                            body.made_whole(BodyColumns::of(s)).ok_or_else(|| {
                                StoreError::Unstorable(format!("the body of span {}, which lacks its kind", s.span_id))
                            })
                        })
                        .transpose()
                });
                (LZ4_JSON_RAW, whole.collect::<Result<Vec<_>, _>>()?)
            }
        };
        let encoded: Vec<WireSpan<'_, &RawValue>> = spans
            .iter()
            .zip(&bodies)
            .map(|(s, body)| {
                let b = |v: &'a str| Cow::Borrowed(v);
                WireSpan(
                    b(&s.span_id),
                    b(&s.parent_span_id),
                    s.start_ns,
                    s.end_ns,
                    s.received_s,
                    b(&s.name),
                    b(&s.operation),
                    b(&s.model),
                    b(&s.prompt),
                    b(&s.prompt_version),
                    b(&s.agent),
                    b(&s.data_source),
                    body.as_deref().map(SpanBody::raw),
                )
            })
            .collect();
        out.push(NewSegment {
            trace_id: trace_id.to_string(),
            service: service.to_string(),
            kept,
            start_ns: spans.first().map_or(0, |s| s.start_ns),
            last_start_ns: spans.iter().map(|s| s.start_ns).max().unwrap_or(0),
            span_count: spans.len() as i64,
            root_start_ns: root.map(|r| r.start_ns),
            root_agent: root.map(|r| r.agent.clone()),
            tags,
            span_ids: spans.iter().map(|s| s.span_id.as_str()).collect::<Vec<_>>().join(","),
            spans: pack(
                format,
                &serde_json::to_vec(&encoded).map_err(|e| StoreError::Unstorable(format!("a span segment: {e}")))?,
            )?,
        });
    }
    Ok(out)
}

/// The first byte of a segment's `spans` from migration 10: the JSON
/// after it is LZ4-compressed (block format), its length (u32, little
/// endian) first, and each body is a string. Segments written before start
/// with `[`: plain JSON, bodies as strings.
const LZ4_JSON: u8 = 1;
/// As [`LZ4_JSON`], each body embedded as the JSON value it is: writing
/// it costs a copy where escaping it into a string cost a pass over every
/// byte and a write per quote (4 % of the OTLP receiver's CPU).
const LZ4_JSON_RAW: u8 = 2;
/// As [`LZ4_JSON_RAW`], each body without the members that repeat the
/// span's columns (from migration 11): a body is the JSON of the span's
/// `SpanFacts`, which begins with its trace, span and parent ids and name,
/// its kind, then its start, end and service. Those members, all but the
/// kind, were 64 % of the bodies' JSON and the bodies 74 % of a segment's.
/// They are rebuilt from the columns when the segment is read, byte for
/// byte (see `SpanBody::without_columns`).
const LZ4_JSON_STRIPPED: u8 = 3;

/// The largest decoded segment accepted: a damaged length must not size
/// an allocation. An export (and so a segment) is far smaller.
const MAX_SEGMENT_BYTES: usize = 256 << 20;

/// Compresses a segment's JSON for storage, behind `format`.
fn pack(format: u8, json: &[u8]) -> Result<Vec<u8>, StoreError> {
    let len = u32::try_from(json.len()).ok().filter(|n| *n as usize <= MAX_SEGMENT_BYTES).ok_or_else(|| {
        StoreError::Unstorable(format!("a span segment of {} bytes (the limit is {MAX_SEGMENT_BYTES})", json.len()))
    })?;
    let mut out = vec![0; 5 + lz4_flex::block::get_maximum_output_size(json.len())];
    out[0] = format;
    out[1..5].copy_from_slice(&len.to_le_bytes());
    let written = lz4_flex::block::compress_into(json, &mut out[5..])
        .map_err(|e| StoreError::Unstorable(format!("a span segment, which did not compress: {e}")))?;
    out.truncate(5 + written);
    Ok(out)
}

/// How a segment's JSON holds each span's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bodies {
    /// As a string holding the JSON (formats 0 and 1).
    Strings,
    /// As the JSON value itself (format 2).
    Embedded,
    /// As the JSON value without the members its columns hold (format 3).
    Stripped,
}

/// The JSON of a stored segment, as [`pack`] wrote it or (before
/// migration 10) as it is, and how it holds the bodies.
fn unpack<'a>(trace_id: &str, stored: &'a [u8]) -> Result<(Cow<'a, [u8]>, Bodies), StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("span segment of trace {trace_id}: {why}"));
    match stored {
        [b'[', ..] => Ok((Cow::Borrowed(stored), Bodies::Strings)),
        [format @ (LZ4_JSON | LZ4_JSON_RAW | LZ4_JSON_STRIPPED), a, b, c, d, compressed @ ..] => {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            if len > MAX_SEGMENT_BYTES {
                return Err(corrupt(format!("its length {len} is beyond the limit")));
            }
            let mut json = vec![0; len];
            let written =
                lz4_flex::block::decompress_into(compressed, &mut json).map_err(|e| corrupt(e.to_string()))?;
            if written != len {
                return Err(corrupt(format!("{written} bytes decompressed, {len} expected")));
            }
            let bodies = match *format {
                LZ4_JSON_STRIPPED => Bodies::Stripped,
                LZ4_JSON_RAW => Bodies::Embedded,
                _ => Bodies::Strings,
            };
            Ok((Cow::Owned(json), bodies))
        }
        _ => Err(corrupt("unknown encoding".to_string())),
    }
}

/// The spans of a stored segment.
pub(crate) fn decode_segment(trace_id: &str, service: &str, spans: &[u8]) -> Result<Vec<SpanRow>, StoreError> {
    let (json, bodies) = unpack(trace_id, spans)?;
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("span segment of trace {trace_id}: {e}"));
    match bodies {
        Bodies::Embedded => {
            let decoded: Vec<WireSpan<'static, Box<RawValue>>> = serde_json::from_slice(&json).map_err(corrupt)?;
            Ok(decoded.into_iter().map(|d| row(trace_id, service, d, |b| Some(SpanBody::from(b)))).collect())
        }
        Bodies::Stripped => {
            let decoded: Vec<WireSpan<'static, Box<RawValue>>> = serde_json::from_slice(&json).map_err(corrupt)?;
            let mut rows = Vec::with_capacity(decoded.len());
            for d in decoded {
                let body = match &d.12 {
                    Some(stripped) => {
                        let columns = BodyColumns {
                            trace_id,
                            span_id: &d.0,
                            parent_span_id: &d.1,
                            name: &d.5,
                            start_ns: d.2,
                            end_ns: d.3,
                            service,
                        };
                        Some(SpanBody::with_columns(stripped.get(), columns).ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "span segment of trace {trace_id}: the body of span {} is not a stripped body",
                                d.0
                            ))
                        })?)
                    }
                    None => None,
                };
                rows.push(row(trace_id, service, d, move |_| body));
            }
            Ok(rows)
        }
        Bodies::Strings => {
            let decoded: Vec<WireSpan<'static, String>> = serde_json::from_slice(&json).map_err(corrupt)?;
            Ok(decoded.into_iter().map(|d| row(trace_id, service, d, older_body)).collect())
        }
    }
}

/// A body of the older formats (and of the table before segments), a
/// string: the JSON it holds, or (should it hold something else) that
/// text as a JSON string, so that it still reads back as the text stored.
pub(crate) fn older_body(text: String) -> Option<SpanBody> {
    SpanBody::parse(text.clone()).or_else(|_| SpanBody::of(&text)).ok()
}

/// The span row of one decoded span.
fn row<B>(trace_id: &str, service: &str, d: WireSpan<'static, B>, body: impl FnOnce(B) -> Option<SpanBody>) -> SpanRow {
    SpanRow {
        trace_id: trace_id.to_string(),
        span_id: d.0.into_owned(),
        parent_span_id: d.1.into_owned(),
        start_ns: d.2,
        end_ns: d.3,
        received_s: d.4,
        service: service.to_string(),
        name: d.5.into_owned(),
        operation: d.6.into_owned(),
        model: d.7.into_owned(),
        prompt: d.8.into_owned(),
        prompt_version: d.9.into_owned(),
        agent: d.10.into_owned(),
        data_source: d.11.into_owned(),
        body: d.12.and_then(body),
    }
}

/// The stored span ids per trace id (the client's ids: foldhash, seeded
/// per process).
pub(crate) type StoredKeys = foldhash::HashMap<String, foldhash::HashSet<String>>;

/// The stored span ids per trace id, from rows of (trace id, `span_ids`).
pub(crate) fn stored_keys(rows: Vec<(String, String)>) -> StoredKeys {
    let mut keys = StoredKeys::default();
    for (trace_id, span_ids) in rows {
        let ids = keys.entry(trace_id).or_default();
        ids.extend(span_ids.split(',').filter(|s| !s.is_empty()).map(str::to_string));
    }
    keys
}

/// A `LIKE` pattern (escape character `!`) matching segments whose tags
/// hold the word `kind:value`. SQLite's `LIKE` ignores ASCII case, so a
/// match is confirmed on the decoded spans.
pub(crate) fn tag_pattern(kind: char, value: &str) -> String {
    like_word(&tag(kind, value))
}

/// [`tag_pattern`] for spans with a data source.
pub(crate) fn data_source_pattern() -> String {
    like_word(DATA_SOURCE_TAG)
}

fn like_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 4);
    out.push_str("%\n");
    for c in word.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out.push_str("\n%");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, id: &str, parent: &str, start: i64, service: &str, kept: bool) -> SpanRow {
        SpanRow {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            start_ns: start,
            end_ns: start + 5,
            received_s: 9,
            service: service.into(),
            name: format!("n{id}"),
            operation: if parent.is_empty() { String::new() } else { "chat".into() },
            model: String::new(),
            prompt: "a_b%".into(),
            prompt_version: "1".into(),
            agent: if parent.is_empty() { "root-agent".into() } else { String::new() },
            data_source: String::new(),
            body: kept.then(|| SpanBody::parse(r#"{"x":"\"q\""}"#.to_string()).unwrap()),
        }
    }

    #[test]
    fn segments_group_by_trace_service_and_retention_and_round_trip() {
        let rows = [
            span("t1", "b", "a", 20, "s", true),
            span("t1", "a", "", 10, "s", true),
            span("t1", "c", "a", 30, "other", true),
            span("t2", "d", "", 5, "s", false),
        ];
        let refs: Vec<&SpanRow> = rows.iter().collect();
        let segments = build_segments(&refs).unwrap();
        assert_eq!(segments.len(), 3);
        let first = segments.iter().find(|s| s.trace_id == "t1" && s.service == "s").unwrap();
        assert_eq!((first.start_ns, first.last_start_ns, first.span_count), (10, 20, 2));
        assert_eq!((first.root_start_ns, first.root_agent.as_deref()), (Some(10), Some("root-agent")));
        assert_eq!(first.tags, "\na:root-agent\no:chat\np:a_b%\n");
        assert_eq!(first.span_ids, "a,b");
        let decoded = decode_segment("t1", "s", &first.spans).unwrap();
        assert_eq!(decoded, vec![rows[1].clone(), rows[0].clone()]);
        let other = segments.iter().find(|s| s.service == "other").unwrap();
        assert_eq!(other.root_start_ns, None);
        assert!(!segments.iter().find(|s| s.trace_id == "t2").unwrap().kept);
        let keys = stored_keys(vec![("t1".into(), first.span_ids.clone()), ("t1".into(), "e".into())]);
        assert_eq!(keys["t1"], ["a", "b", "e"].map(String::from).into_iter().collect());
    }

    /// A span whose body is its facts' JSON, as ingest writes it.
    fn facts_span(trace: &str, id: &str, parent: &str, name: &str, service: &str, genai: bool) -> SpanRow {
        let facts = plinth_telemetry::genai::SpanFacts {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            name: name.into(),
            kind: "client".into(),
            start_ns: 1_796_620_120_519_291_848,
            end_ns: 1_796_620_122_296_291_848,
            service: service.into(),
            operation: genai.then(|| "chat".into()),
            request_model: genai.then(|| "gpt-4o-mini".into()),
            ttft_ms: genai.then_some(90.0),
            ..Default::default()
        };
        SpanRow {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            start_ns: facts.start_ns,
            end_ns: facts.end_ns,
            received_s: 9,
            service: service.into(),
            name: name.into(),
            operation: facts.operation.clone().unwrap_or_default(),
            model: facts.request_model.clone().unwrap_or_default(),
            prompt: String::new(),
            prompt_version: String::new(),
            agent: String::new(),
            data_source: String::new(),
            body: Some(SpanBody::of(&facts).unwrap()),
        }
    }

    /// `row` with its body as ingest makes it: without its columns.
    fn as_ingested(mut row: SpanRow) -> SpanRow {
        row.body = row.body.as_ref().and_then(|b| b.strip(BodyColumns::of(&row))).map(Cow::into_owned);
        assert!(row.body.as_ref().is_some_and(|b| !b.is_whole()));
        row
    }

    #[test]
    fn bodies_are_stored_without_the_members_their_columns_hold_and_read_back_whole() {
        let rows = [
            // A root; a child whose name needs escaping; a span whose
            // service is its body's last member.
            facts_span("t1", "a", "", "POST /v1/answer", "svc", false),
            facts_span("t1", "b", "a", "chat \"gpt\" \u{e9}\\n\u{7}", "svc", true),
            facts_span("t1", "c", "b", "tool", "svc", false),
        ];
        // Whole bodies are stripped by the store; ingest's are stored as
        // they come. Both read back whole.
        let ingested = rows.clone().map(as_ingested);
        assert_eq!(
            build_segments(&ingested.iter().collect::<Vec<_>>()).unwrap()[0].spans,
            build_segments(&rows.iter().collect::<Vec<_>>()).unwrap()[0].spans
        );
        let refs: Vec<&SpanRow> = ingested.iter().collect();
        let segment = build_segments(&refs).unwrap().remove(0);
        assert_eq!(segment.spans[0], LZ4_JSON_STRIPPED);
        let (json, bodies) = unpack("t1", &segment.spans).unwrap();
        assert_eq!(bodies, Bodies::Stripped);
        let text = String::from_utf8(json.into_owned()).unwrap();
        for member in ["trace_id", "span_id", "name\"", "start_ns", "end_ns", "service"] {
            assert!(!text.contains(member), "{member} in {text}");
        }
        assert!(text.contains(r#"{"kind":"client","operation":"chat","#), "{text}");
        assert!(text.contains(r#"{"kind":"client"}"#), "{text}");
        // Byte for byte: the restored bodies are the bodies ingest wrote.
        let mut expected = rows.to_vec();
        expected.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
        assert_eq!(decode_segment("t1", "svc", &segment.spans).unwrap(), expected);
        // The stored bodies are less than half the bodies ingest wrote.
        let stored: Vec<WireSpan<'static, Box<RawValue>>> = serde_json::from_str(&text).unwrap();
        let stored: usize = stored.iter().filter_map(|d| d.12.as_ref()).map(|b| b.get().len()).sum();
        let whole: usize = rows.iter().filter_map(|r| r.body.as_ref()?.whole()).map(str::len).sum();
        assert!(stored * 2 < whole, "{stored} bytes stored of {whole}");
    }

    #[test]
    fn a_body_that_disagrees_with_its_columns_keeps_its_segment_whole() {
        // Not a span's facts, or facts whose name differs from the column:
        // the segment is written with whole bodies (format 2), as before.
        let mut renamed = facts_span("t1", "a", "", "POST /v1/answer", "svc", true);
        renamed.name = "renamed".into();
        let other = span("t1", "b", "a", 10, "svc", true);
        let ingested = as_ingested(facts_span("t1", "c", "", "x", "svc", true));
        let cases = [
            vec![renamed.clone()],
            vec![facts_span("t1", "c", "", "x", "svc", true), other.clone()],
            // A body without its columns beside one that cannot lose them
            // is made whole again.
            vec![ingested.clone(), other.clone()],
        ];
        for rows in cases {
            let refs: Vec<&SpanRow> = rows.iter().collect();
            let segment = build_segments(&refs).unwrap().remove(0);
            assert_eq!(segment.spans[0], LZ4_JSON_RAW);
            let mut expected: Vec<SpanRow> = rows
                .iter()
                .map(|r| {
                    if r.span_id == ingested.span_id {
                        facts_span("t1", "c", "", "x", "svc", true)
                    } else {
                        r.clone()
                    }
                })
                .collect();
            expected.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
            assert_eq!(decode_segment("t1", "svc", &segment.spans).unwrap(), expected);
        }
        // A stripped segment whose body lacks its kind is an error, not a panic.
        let packed = pack(LZ4_JSON_STRIPPED, br#"[["a","",1,2,3,"n","","","","","","",{"x":1}]]"#).unwrap();
        assert!(decode_segment("t", "s", &packed).is_err());
        let packed = pack(LZ4_JSON_STRIPPED, br#"[["a","",1,2,3,"n","","","","","","",{"kind":"x}]]"#).unwrap();
        assert!(decode_segment("t", "s", &packed).is_err());
    }

    #[test]
    fn a_segment_beyond_the_limit_is_refused_as_unstorable() {
        // Zeroed pages: the check comes before anything is compressed.
        let json = vec![0u8; MAX_SEGMENT_BYTES + 1];
        let error = pack(LZ4_JSON_STRIPPED, &json).unwrap_err();
        assert!(matches!(error, StoreError::Unstorable(_)), "{error:?}");
        assert!(error.to_string().contains("the limit is"), "{error}");
    }

    #[test]
    fn tag_patterns_escape_like_wildcards() {
        assert_eq!(tag_pattern('p', "a_b%"), "%\np:a!_b!%\n%");
        assert_eq!(data_source_pattern(), "%\nd\n%");
    }

    #[test]
    fn a_corrupt_segment_is_an_error_not_a_panic() {
        assert!(decode_segment("t", "s", b"[[1]]").is_err());
        assert!(decode_segment("t", "s", b"").is_err());
        assert!(decode_segment("t", "s", b"{}").is_err());
        // A length beyond the limit is refused before anything is allocated.
        assert!(decode_segment("t", "s", &[LZ4_JSON, 0xff, 0xff, 0xff, 0xff, 0]).is_err());
        // A truncated or damaged body.
        let packed = pack(LZ4_JSON, br#"[["a","",1,2,3,"n","","","","","","",null]]"#).unwrap();
        assert!(decode_segment("t", "s", &packed).is_ok());
        assert!(decode_segment("t", "s", &packed[..packed.len() - 3]).is_err());
        let mut wrong_length = packed.clone();
        wrong_length[1] ^= 1;
        assert!(decode_segment("t", "s", &wrong_length).is_err());
    }

    #[test]
    fn segments_of_every_format_read_back_alike() {
        let row = span("t1", "a", "", 10, "s", true);
        let segment = build_segments(&[&row]).unwrap().remove(0);
        assert_eq!(segment.spans[0], LZ4_JSON_RAW);
        let (json, bodies) = unpack("t1", &segment.spans).unwrap();
        assert_eq!(bodies, Bodies::Embedded);
        assert!(segment.spans.len() < json.len() + 5);
        // The body is embedded as the JSON it is, not escaped into a string.
        let text = String::from_utf8(json.into_owned()).unwrap();
        assert!(text.ends_with(r#""",{"x":"\"q\""}]]"#), "{text}");
        assert_eq!(decode_segment("t1", "s", &segment.spans).unwrap(), vec![row.clone()]);
        // The formats before: bodies as strings, compressed (migration 10)
        // or plain JSON (before it).
        let older = r#"[["a","",10,15,9,"na","","","a_b%","1","root-agent","","{\"x\":\"\\\"q\\\"\"}"]]"#;
        assert_eq!(decode_segment("t1", "s", older.as_bytes()).unwrap(), vec![row.clone()]);
        let compressed = pack(LZ4_JSON, older.as_bytes()).unwrap();
        assert_eq!(decode_segment("t1", "s", &compressed).unwrap(), vec![row.clone()]);
        // A body of an older format that is not JSON reads back as its text
        // (a JSON string), not as an error that would hide the segment.
        let not_json = r#"[["a","",10,15,9,"na","","","a_b%","1","root-agent","","not json"]]"#;
        let decoded = decode_segment("t1", "s", not_json.as_bytes()).unwrap();
        assert_eq!(decoded[0].body.as_ref().and_then(SpanBody::whole), Some(r#""not json""#));
    }
}
