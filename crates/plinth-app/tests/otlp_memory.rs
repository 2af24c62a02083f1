//! The OTLP receiver reserves in-flight memory for a traces export before it
//! decodes it (`plinth_app::signals::reservation_for`). This measures, with
//! dhat's heap profiler, the peak heap the export really takes on its way
//! from the inflated payload to the rows handed to the writer — the same
//! code the server runs: `otlp::decode_traces` (prost or serde) and
//! `ingest::prepare` (normalise, attribute, price, build rows and bodies) —
//! for several shapes of export, and checks the reservation covers it.
//!
//! One test function on purpose: dhat counts every thread's allocations, so
//! nothing else may run in this process while a measurement is taken.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, ArrayValue, EntityRef, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use plinth_app::signals::reservation_for;
use plinth_telemetry::attribution::Attribution;
use plinth_telemetry::ingest::{prepare, IngestContext, RecentTraces};
use plinth_telemetry::otlp::{decode_traces, Encoding};
use plinth_telemetry::prices::{PriceTable, SHIPPED};
use prost::Message;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Span start times are relative to this (fixed, so the run is the same
/// every time); `prepare` is given a clock one minute later.
const NOW_S: i64 = 1_800_000_000;
const MS: u64 = 1_000_000;

/// Deterministic pseudo-random numbers (the bench's generator).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kv(key: &str, value: V) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}
fn s(key: &str, value: &str) -> KeyValue {
    kv(key, V::StringValue(value.to_string()))
}
fn i(key: &str, value: i64) -> KeyValue {
    kv(key, V::IntValue(value))
}

fn start_ns() -> u64 {
    (NOW_S as u64 - 60) * 1_000_000_000
}

/// A span with valid ids: trace `trace`, span number `n` (1-based) and
/// parent number `parent` (0 for a root).
fn span(trace: u64, n: u64, parent: u64, name: &str, attributes: Vec<KeyValue>) -> Span {
    let trace_id = (u128::from(trace) + 1).to_be_bytes().to_vec();
    let id = |n: u64| ((trace + 1) << 20 | n).to_be_bytes().to_vec();
    Span {
        trace_id,
        span_id: id(n),
        parent_span_id: if parent == 0 { Vec::new() } else { id(parent) },
        name: name.to_string(),
        kind: 1,
        start_time_unix_nano: start_ns() + n * MS,
        end_time_unix_nano: start_ns() + (n + 5) * MS,
        attributes,
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", service), s("telemetry.sdk.language", "python")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

const MODELS: &[(&str, &str)] =
    &[("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1")];
const TOOLS: &[&str] = &["lookup_order", "search_docs", "create_ticket", "get_weather"];

/// The bench's agent trace (`plinth bench signals`, crates/plinth-bench/src/
/// signals.rs `agent_trace`): server span → invoke_agent → chat →
/// execute_tool → retrieval → chat, the attributes as the bench sends them.
fn agent_trace(rng: &mut Lcg, trace: u64, out: &mut Vec<Span>) {
    let (provider, model) = MODELS[rng.below(MODELS.len() as u64) as usize];
    let version = (1 + rng.below(3)).to_string();
    let prompt = [s("gen_ai.prompt.name", "support-answer"), s("gen_ai.prompt.version", &version)];
    let llm = |rng: &mut Lcg| {
        let input = 800 + rng.below(2_000) as i64;
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", provider),
            s("gen_ai.request.model", model),
            i("gen_ai.usage.input_tokens", input),
            i("gen_ai.usage.output_tokens", 50 + rng.below(400) as i64),
            i("gen_ai.usage.cache_read.input_tokens", input / 3),
            kv("gen_ai.response.time_to_first_chunk", V::DoubleValue(0.05 + rng.below(300) as f64 / 1000.0)),
            s("gen_ai.response.finish_reasons", "stop"),
        ]
    };
    let status = if rng.below(100) == 0 { 500 } else { 200 };
    out.push(span(
        trace,
        1,
        0,
        "POST /v1/answer",
        vec![s("http.request.method", "POST"), s("http.route", "/v1/answer"), i("http.response.status_code", status)],
    ));
    out.push(span(
        trace,
        2,
        1,
        "invoke_agent support-agent",
        vec![
            s("gen_ai.operation.name", "invoke_agent"),
            s("gen_ai.agent.name", "support-agent"),
            s("gen_ai.conversation.id", &format!("conv-{}", rng.below(10_000))),
        ],
    ));
    let mut attributes = llm(rng);
    attributes.extend(prompt.iter().cloned());
    out.push(span(trace, 3, 2, &format!("chat {model}"), attributes));
    out.push(span(
        trace,
        4,
        2,
        "execute_tool",
        vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", TOOLS[rng.below(TOOLS.len() as u64) as usize]),
            s("gen_ai.tool.call.arguments", r#"{"id":"A-17","verbose":false}"#),
        ],
    ));
    out.push(span(
        trace,
        5,
        2,
        "retrieval kb",
        vec![
            s("gen_ai.operation.name", "retrieval"),
            s("gen_ai.data_source.id", "kb-qdrant"),
            s("gen_ai.retrieval.documents", r#"[{"id":"faq-1","score":0.82},{"id":"faq-9","score":0.41}]"#),
        ],
    ));
    let mut attributes = llm(rng);
    attributes.extend(prompt.iter().cloned());
    out.push(span(trace, 6, 2, &format!("chat {model}"), attributes));
}

/// Text of `len` bytes that varies (so nothing shares or compresses it).
fn text(rng: &mut Lcg, len: usize) -> String {
    const WORDS: &[&str] = &["the ", "order ", "A-17 ", "was ", "shipped ", "on ", "Tuesday; ", "refund? ", "\"ok\" "];
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    out.truncate(len);
    out
}

/// The shapes measured, each one export as a client would send it.
fn shapes() -> Vec<(&'static str, ExportTraceServiceRequest)> {
    let mut rng = Lcg(7);
    let mut shapes = Vec::new();

    // (a) The bench's shape: 2,000 spans per export (its default batch).
    let mut spans = Vec::new();
    for trace in 0..334 {
        agent_trace(&mut rng, trace, &mut spans);
    }
    shapes.push(("bench agent traces (2,004 spans)", request("checkout", spans)));

    // (b) Many tiny spans: short names, no or one attribute, 10 per trace.
    let spans = (0..8_000u64)
        .map(|n| {
            let attributes = if n % 2 == 0 { vec![i("n", n as i64)] } else { Vec::new() };
            span(n / 10, n % 10 + 1, if n % 10 == 0 { 0 } else { 1 }, "op", attributes)
        })
        .collect();
    shapes.push(("tiny spans (8,000)", request("svc", spans)));

    // (b') Tiny GenAI spans: each gets a body and a rollup key.
    let spans =
        (0..8_000u64).map(|n| span(n / 10, n % 10 + 1, 0, "c", vec![s("gen_ai.operation.name", "chat")])).collect();
    shapes.push(("tiny GenAI spans (8,000)", request("svc", spans)));

    // (c) Few spans with large values: prompts, completions, tool calls.
    let mut spans = Vec::new();
    for trace in 0..4u64 {
        let mut attributes = vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", "gpt-4o"),
            i("gen_ai.usage.input_tokens", 60_000),
            i("gen_ai.usage.output_tokens", 12_000),
        ];
        attributes.push(s("gen_ai.prompt", &text(&mut rng, 256 * 1024)));
        attributes.push(s("gen_ai.completion", &text(&mut rng, 64 * 1024)));
        spans.push(span(trace, 1, 0, "chat gpt-4o", attributes));
        let attributes = vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "search_docs"),
            s("gen_ai.tool.call.arguments", &text(&mut rng, 128 * 1024)),
            s("gen_ai.tool.call.result", &text(&mut rng, 192 * 1024)),
        ];
        spans.push(span(trace, 2, 1, "execute_tool search_docs", attributes));
    }
    shapes.push(("large values (8 spans, 64-256 KiB each)", request("rag", spans)));

    // (d) Many attributes: 100 small ones per span.
    let spans = (0..300u64)
        .map(|n| {
            let mut attributes = vec![s("gen_ai.operation.name", "chat")];
            for a in 0..100 {
                attributes.push(match a % 3 {
                    0 => i(&format!("app.k{a}"), a),
                    1 => s(&format!("app.k{a}"), "v"),
                    _ => kv(&format!("app.k{a}"), V::BoolValue(true)),
                });
            }
            span(n / 6, n % 6 + 1, 0, "chat", attributes)
        })
        .collect();
    shapes.push(("many attributes (300 spans x 100)", request("svc", spans)));

    // (e) Many events and links: 40 events (a quarter of them evaluation
    // results, which become scores) and 20 links per span.
    let spans = (0..200u64)
        .map(|n| {
            let mut span = span(n / 4, n % 4 + 1, 0, "invoke_agent", vec![s("gen_ai.operation.name", "invoke_agent")]);
            span.events = (0..40)
                .map(|e| Event {
                    time_unix_nano: start_ns() + e,
                    name: if e % 4 == 0 { "gen_ai.evaluation.result".into() } else { format!("step {e}") },
                    attributes: vec![s("gen_ai.evaluation.name", "relevance"), i("gen_ai.evaluation.score.value", 1)],
                    ..Default::default()
                })
                .collect();
            span.links = (0..20u64)
                .map(|l| Link {
                    trace_id: (u128::from(l) + 99).to_be_bytes().to_vec(),
                    span_id: (l + 1).to_be_bytes().to_vec(),
                    attributes: vec![s("link.kind", "follows")],
                    ..Default::default()
                })
                .collect();
            span
        })
        .collect();
    shapes.push(("many events and links (200 spans x 40 + 20)", request("svc", spans)));

    // Shapes a client can send on purpose (or a broken exporter by accident).
    // Empty spans: two bytes each on the wire, refused by `prepare`, but
    // prost decodes every one.
    shapes.push(("empty spans (50,000, all refused)", request("svc", vec![Span::default(); 50_000])));

    // Names of control characters: six bytes each in the JSON body.
    let spans =
        (0..64u64).map(|n| span(n, 1, 0, &"\u{1}".repeat(4096), vec![s("gen_ai.operation.name", "chat")])).collect();
    shapes.push(("control-character names (64 x 4 KiB)", request("svc", spans)));

    // Retrieval documents given as one JSON string of many tiny items.
    let documents = format!("[{}0]", "0,".repeat(64 * 1024));
    let spans = vec![span(
        1,
        1,
        0,
        "retrieval",
        vec![s("gen_ai.operation.name", "retrieval"), s("gen_ai.retrieval.documents", &documents)],
    )];
    shapes.push(("retrieval documents (64 Ki items in one string)", request("svc", spans)));

    // An array value on an attribute the normaliser renders as text.
    let values = vec![AnyValue { value: Some(V::IntValue(0)) }; 32 * 1024];
    let spans = vec![span(
        1,
        1,
        0,
        "chat",
        vec![
            s("gen_ai.operation.name", "chat"),
            kv("gen_ai.response.finish_reasons", V::ArrayValue(ArrayValue { values })),
        ],
    )];
    shapes.push(("array attribute value (32 Ki elements)", request("svc", spans)));

    // A long service name: every span's facts, row and body carry a copy.
    let spans = (0..500u64).map(|n| span(n, 1, 0, "c", vec![s("gen_ai.operation.name", "chat")])).collect();
    shapes.push(("long service.name (4 KiB) x 500 spans", request(&"s".repeat(4096), spans)));

    // A long agent name on the root: its GenAI children inherit a copy.
    let mut spans = vec![span(
        1,
        1,
        0,
        "invoke_agent",
        vec![s("gen_ai.operation.name", "invoke_agent"), s("gen_ai.agent.name", &"a".repeat(4096))],
    )];
    spans.extend((2..502u64).map(|n| span(1, n, 1, "c", vec![s("gen_ai.operation.name", "chat")])));
    shapes.push(("long agent name (4 KiB) inherited by 500 spans", request("svc", spans)));

    // Parent ids of any length are kept, in hex.
    let spans = (0..16u64)
        .map(|n| {
            let mut child = span(n, 1, 0, "chat", vec![s("gen_ai.operation.name", "chat")]);
            child.parent_span_id = vec![0xab; 64 * 1024];
            child
        })
        .collect();
    shapes.push(("long parent span ids (16 x 64 KiB)", request("svc", spans)));

    // Evaluation results: each score row copies the span's prompt name.
    let mut evaluated =
        span(1, 1, 0, "chat", vec![s("gen_ai.operation.name", "chat"), s("gen_ai.prompt.name", &"p".repeat(4096))]);
    evaluated.events = (0..500)
        .map(|e| Event {
            time_unix_nano: start_ns() + e,
            name: "gen_ai.evaluation.result".into(),
            attributes: vec![s("gen_ai.evaluation.name", "relevance"), s("gen_ai.evaluation.score.label", "pass")],
            ..Default::default()
        })
        .collect();
    shapes.push(("500 evaluations of a span with a 4 KiB prompt name", request("svc", vec![evaluated])));

    // Entity references on the resource: empty ones are two bytes each.
    let mut refs = request("svc", vec![span(1, 1, 0, "op", Vec::new())]);
    if let Some(resource) = refs.resource_spans[0].resource.as_mut() {
        resource.entity_refs = vec![EntityRef { id_keys: vec![String::new(); 4], ..Default::default() }; 20_000];
    }
    shapes.push(("entity references (20,000 with 4 keys)", refs));

    // Arrays in arrays: each level of an OTLP/JSON value buffers its subtree.
    let mut value = V::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(V::IntValue(7)) }; 4096] });
    for _ in 0..30 {
        value = V::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(value) }] });
    }
    let spans = vec![span(
        1,
        1,
        0,
        "chat",
        vec![s("gen_ai.operation.name", "chat"), kv("gen_ai.response.finish_reasons", value)],
    )];
    shapes.push(("arrays nested 30 deep (4 Ki elements)", request("svc", spans)));

    shapes
}

/// Peak heap, in bytes above what was live before, of decoding `payload`
/// and preparing its rows, as `Signals::ingest_traces` does before the
/// commit (the prepared batch is still held at the end, as it is until
/// the writer commits it).
fn peak_of_ingest(payload: &[u8], encoding: Encoding) -> (usize, usize) {
    let attribution = Attribution::default().finish();
    let prices = PriceTable::parse("prices.yaml", SHIPPED).expect("the shipped price table parses");
    let recent = RecentTraces::new(200_000);
    let ctx = IngestContext {
        attribution: &attribution,
        prices: &prices,
        recent: &recent,
        now_s: NOW_S,
        max_age_s: 400 * 86_400,
    };
    let profiler = dhat::Profiler::builder().testing().build();
    let request = decode_traces(payload, encoding).expect("the test's own export decodes");
    let batch = prepare(&request, &ctx);
    drop(request);
    let peak = dhat::HeapStats::get().max_bytes;
    drop(profiler);
    (peak, batch.accepted())
}

/// Each shape as OTLP/protobuf and OTLP/JSON, and JSON a serialiser would
/// not write (every default left out).
fn payloads() -> Vec<(&'static str, Encoding, Vec<u8>)> {
    let mut payloads = Vec::new();
    for (name, request) in shapes() {
        payloads.push((name, Encoding::Protobuf, request.encode_to_vec()));
        payloads.push((
            name,
            Encoding::Json,
            serde_json::to_vec(&request).expect("the request serialises as OTLP/JSON"),
        ));
    }
    let spans = vec!["{}"; 100_000].join(",");
    let json = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#);
    payloads.push(("empty spans (100,000, as `{}`)", Encoding::Json, json.into_bytes()));
    let spans: Vec<String> = (0..20_000u64)
        .map(|n| {
            format!(r#"{{"traceId":"{:032x}","spanId":"{:016x}","startTimeUnixNano":"{}"}}"#, n + 1, n + 1, start_ns())
        })
        .collect();
    let json = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#, spans.join(","));
    payloads.push(("minimal spans with ids (20,000)", Encoding::Json, json.into_bytes()));
    payloads
}

#[test]
fn the_reservation_covers_the_peak_heap_of_every_export_shape() {
    let started = std::time::Instant::now();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut estimating = std::time::Duration::ZERO;
    {
        use std::mem::size_of;
        eprintln!(
            "sizes: Span {}, KeyValue {}, AnyValue {}, Event {}, Link {}, SpanFacts {}, SpanRow {}",
            size_of::<Span>(),
            size_of::<KeyValue>(),
            size_of::<AnyValue>(),
            size_of::<Event>(),
            size_of::<Link>(),
            size_of::<plinth_telemetry::genai::SpanFacts>(),
            size_of::<plinth_telemetry::records::SpanRow>()
        );
    }
    for (name, encoding, payload) in payloads() {
        let (peak, accepted) = peak_of_ingest(&payload, encoding);
        let timer = std::time::Instant::now();
        let reserved = reservation_for(&payload, encoding);
        estimating += timer.elapsed();
        // The receiver's first reservation covers the body as read; a
        // compressed body is inflated into a second buffer, so the estimate
        // must cover that copy as well as the peak.
        let needed = peak + payload.len();
        let line = format!(
            "{name:<50} {encoding:?}: {bytes:>9} B, {accepted:>6} rows, peak {peak:>10} B = {ratio:5.1}x, \
             reserved {reserved:>11} B = {reserved_ratio:5.1}x (12x covers the peak: {old})",
            bytes = payload.len(),
            ratio = peak as f64 / payload.len() as f64,
            reserved_ratio = reserved as f64 / payload.len() as f64,
            old = if payload.len() * 12 >= peak { "yes" } else { "NO" },
        );
        if reserved < needed {
            failures.push(format!("{line}: needs {needed} B"));
        }
        // Reserving far more than an export takes throttles good clients.
        if reserved > 8 * needed {
            failures.push(format!("{line}: over 8x the {needed} B it needs"));
        }
        report.push(line);
    }
    eprintln!("{}", report.join("\n"));
    eprintln!(
        "measured in {:.1} s, of which reservation_for {:.1} ms (debug build)",
        started.elapsed().as_secs_f64(),
        estimating.as_secs_f64() * 1000.0
    );
    assert!(
        failures.is_empty(),
        "reservation_for (crates/plinth-app/src/signals/mod.rs) is off for these exports (they need the peak \
         heap of decode + prepare plus the inflated body); adjust its weights:\n{}",
        failures.join("\n")
    );
}
