//! Signals end to end over loopback HTTP, with the official OpenTelemetry
//! Rust exporter (`opentelemetry-otlp`, HTTP/protobuf and HTTP/JSON) as the
//! client: exact token, cost and latency figures from the summary, old and
//! new attribute names, cache tokens counted once, duplicates counted once,
//! malformed / oversized / overloaded requests, agent trace trees, prompt
//! comparison, scores, alerts with a webhook, SLO burn-rate alerts,
//! metrics, cost anomalies through the API, and a store that cannot take
//! the write (503, nothing acknowledged). The core cases run on SQLite and
//! PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;
use plinth_app::signals::SignalsConfig;
use plinth_telemetry::prices::PriceTable;
use plinth_testkit::{scenarios, wait_until, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-pay
  title: Payments
  annotations:
    plinth.dev/cost-center: CC-1042
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
spec:
  type: service
  lifecycle: production
  owner: team-pay
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: support-bot
  annotations:
    opentelemetry.io/service-name: support-bot-svc
spec:
  type: service
  lifecycle: production
  owner: team-pay
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: openai-gpt-4o
spec:
  type: llm
  owner: team-pay
  lifecycle: production
  provider: openai
---
apiVersion: plinth.dev/v1alpha1
kind: Prompt
metadata:
  name: support-answer
spec:
  owner: team-pay
  lifecycle: production
  model: model:openai-gpt-4o
  template: "Answer {{question}}"
"#;

/// Round numbers so every expected figure is easy to check by hand.
const PRICES: &str = r#"
version: "test-1"
models:
  - match: "gpt-4o-mini*"
    prices:
      - { from: 2020-01-01, input: 0.15, output: 0.60 }
  - match: "gpt-4o*"
    prices:
      - { from: 2020-01-01, input: 2.50, output: 10.00, cache_read: 1.25 }
"#;

/// A server with signals (test prices, alerts evaluated on demand) and
/// the catalogue above registered, attribution refreshed.
async fn start(backend: Backend, tweak: impl FnOnce(&mut SignalsConfig) + Send + 'static) -> Option<TestServer> {
    let options = Options {
        signals: true,
        signals_config: Some(Box::new(move |config: &mut SignalsConfig| {
            config.prices = Arc::new(PriceTable::parse("prices.yaml", PRICES).expect("test prices"));
            // Rules are evaluated by the tests, not by the clock.
            config.alert_interval = Duration::from_secs(3600);
            tweak(config);
        })),
        ..Options::default()
    };
    let server = TestServer::start_with(backend, options).await?;
    let file = server.write("catalogue/catalog-info.yaml", CATALOG);
    server.register_new(&file).await;
    // Attribution knows the catalogue before the first span arrives.
    server.signals().refresh_attribution();
    Some(server)
}

/// The official OTLP/HTTP span exporter, pointed at the server.
fn exporter(server: &TestServer, protocol: Protocol, service: &str, gzip: bool) -> opentelemetry_otlp::SpanExporter {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(server.url("/v1/traces"))
        .with_timeout(Duration::from_secs(10));
    if gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    let mut exporter = builder.build().expect("exporter");
    exporter.set_resource(&Resource::builder_empty().with_service_name(service.to_string()).build());
    exporter
}

/// A span of a test trace.
struct S {
    trace: u128,
    id: u64,
    parent: u64,
    name: &'static str,
    kind: SpanKind,
    start_ms: i64,
    duration_ms: i64,
    attributes: Vec<KeyValue>,
    error: bool,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A minute-aligned instant a few minutes ago, so every span of a test
/// lands in one rollup minute regardless of when the test runs.
fn base_ms() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(60_000) - 180_000
}

fn span_data(s: S) -> SpanData {
    let to_time = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms as u64);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(s.trace.to_be_bytes()),
            SpanId::from_bytes(s.id.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::from_bytes(s.parent.to_be_bytes()),
        parent_span_is_remote: false,
        span_kind: s.kind,
        name: s.name.into(),
        start_time: to_time(s.start_ms),
        end_time: to_time(s.start_ms + s.duration_ms),
        attributes: s.attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if s.error { Status::error("upstream failed") } else { Status::Unset },
        instrumentation_scope: InstrumentationScope::builder("plinth-test").build(),
    }
}

fn chat(trace: u128, id: u64, parent: u64, start_ms: i64, duration_ms: i64, attributes: Vec<KeyValue>) -> SpanData {
    span_data(S {
        trace,
        id,
        parent,
        name: "chat gpt-4o",
        kind: SpanKind::Client,
        start_ms,
        duration_ms,
        attributes,
        error: false,
    })
}

/// The reference workload: two priced gpt-4o calls (one with cache and
/// reasoning tokens), one call with a provider-reported cost, and an agent
/// span that repeats the totals (never billed).
fn reference_spans(trace: u128, new_names: bool) -> Vec<SpanData> {
    let t = base_ms();
    let (provider, input, output, cache, reasoning) = if new_names {
        (
            "gen_ai.provider.name",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.reasoning.output_tokens",
        )
    } else {
        (
            "gen_ai.system",
            "gen_ai.usage.prompt_tokens",
            "gen_ai.usage.completion_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "gen_ai.usage.reasoning_tokens",
        )
    };
    let op = |name: &'static str| -> Vec<KeyValue> {
        if new_names {
            vec![KeyValue::new("gen_ai.operation.name", name)]
        } else {
            vec![]
        }
    };
    let mut first = op("chat");
    first.extend([
        KeyValue::new(provider, "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o"),
        KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"),
        KeyValue::new(input, 1000i64),
        KeyValue::new(output, 200i64),
        KeyValue::new(cache, 400i64),
        KeyValue::new(reasoning, 50i64),
        KeyValue::new("gen_ai.response.time_to_first_chunk", 0.05),
        KeyValue::new("gen_ai.prompt.name", "support-answer"),
        KeyValue::new("gen_ai.prompt.version", "3"),
    ]);
    let mut second = op("chat");
    second.extend([
        KeyValue::new(provider, "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o"),
        KeyValue::new(input, 2000i64),
        KeyValue::new(output, 300i64),
        KeyValue::new("gen_ai.response.time_to_first_chunk", 0.1),
    ]);
    let mut reported = op("chat");
    reported.extend([
        KeyValue::new(provider, "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
        KeyValue::new(input, 10i64),
        KeyValue::new(output, 10i64),
        KeyValue::new("gen_ai.usage.cost", 0.5),
    ]);
    let mut agent = vec![
        KeyValue::new("gen_ai.operation.name", "invoke_agent"),
        KeyValue::new("gen_ai.agent.name", "support-agent"),
        KeyValue::new("gen_ai.usage.input_tokens", 3010i64),
        KeyValue::new("gen_ai.usage.output_tokens", 510i64),
    ];
    agent.push(KeyValue::new(provider, "openai"));
    vec![
        span_data(S {
            trace,
            id: 1,
            parent: 0,
            name: "invoke_agent support-agent",
            kind: SpanKind::Internal,
            start_ms: t,
            duration_ms: 1000,
            attributes: agent,
            error: false,
        }),
        chat(trace, 2, 1, t + 10, 100, first),
        chat(trace, 3, 1, t + 200, 300, second),
        chat(trace, 4, 1, t + 600, 200, reported),
    ]
}

fn close(actual: &Value, expected: f64, relative: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() <= expected.abs() * relative + 1e-12)
}

/// Expected figures of the reference workload (see `reference_spans`):
/// cost = (600×2.5 + 400×1.25 + 150×10 + 50×10)/1e6 + (2000×2.5 + 300×10)/1e6 + 0.5.
fn assert_reference_summary(summary: &Value) {
    assert_eq!(summary["requests"], json!(3), "{summary}");
    assert_eq!(summary["errors"], json!(0));
    assert_eq!(summary["tokens"]["input"], json!(3010), "agent totals must not be added: {summary}");
    assert_eq!(summary["tokens"]["output"], json!(510));
    assert_eq!(summary["tokens"]["cache_read"], json!(400));
    assert_eq!(summary["tokens"]["reasoning"], json!(50));
    assert!(close(&summary["cost_usd"], 0.004 + 0.008 + 0.5, 1e-9), "cost {}", summary["cost_usd"]);
    // Latencies 100, 200, 300 ms: the sketch answers within 1 %.
    assert!(close(&summary["latency_ms"]["p50"], 200.0, 0.011), "{}", summary["latency_ms"]);
    // (With three samples DDSketch's rank for p99 is the second value.)
    let p99 = summary["latency_ms"]["p99"].as_f64().unwrap();
    assert!((198.0..=303.0).contains(&p99), "{}", summary["latency_ms"]);
    assert!(close(&summary["ttft_ms"]["p50"], 50.0, 0.011), "{}", summary["ttft_ms"]);
    let ttft_p99 = summary["ttft_ms"]["p99"].as_f64().unwrap();
    assert!((49.5..=101.0).contains(&ttft_p99), "{}", summary["ttft_ms"]);
    assert_eq!(summary["agent_runs"], json!(1));
    let by_model = summary["by_model"].as_array().unwrap();
    let mini = by_model.iter().find(|m| m["model"] == "gpt-4o-mini").expect("gpt-4o-mini row");
    assert!(close(&mini["cost_usd"], 0.5, 1e-9), "the reported cost wins: {mini}");
}

fn range() -> String {
    let from = (base_ms() / 1000) - 3600;
    let to = from + 7200;
    let fmt = |s: i64| {
        time::OffsetDateTime::from_unix_timestamp(s)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    format!("from={}&to={}", fmt(from), fmt(to))
}

async fn exact_figures(server: TestServer, protocol: Protocol, gzip: bool) {
    let client = exporter(&server, protocol, "checkout", gzip);
    client.export(reference_spans(0xabc, true)).await.expect("export accepted");
    // Queryable at once: the 200 came after the commit.
    let summary = server.ok(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_reference_summary(&summary);
    // Attribution: the team and the Model entity see the same calls.
    let team = server.ok(&format!("/api/signals/summary?team=group:default/team-pay&{}", range())).await;
    assert_reference_summary(&team);
    let model = server.ok(&format!("/api/signals/summary?model=model:default/openai-gpt-4o&{}", range())).await;
    assert_eq!(model["requests"], json!(2), "gpt-4o and gpt-4o-2024-08-06 map to the Model: {model}");
    assert!(close(&model["cost_usd"], 0.012, 1e-9));
    let gpt4o = model["by_model"].as_array().unwrap();
    assert!(gpt4o.iter().all(|m| m["model_ref"] == "model:default/openai-gpt-4o"), "{model}");
    let prompt = server.ok(&format!("/api/signals/summary?prompt=support-answer@3&{}", range())).await;
    assert_eq!(prompt["requests"], json!(1));
    let agent = server.ok(&format!("/api/signals/summary?agent=support-agent&{}", range())).await;
    assert_eq!(agent["requests"], json!(3), "model calls inherit the agent of their parent: {agent}");
    // The trace records the price version of each computed cost.
    let trace = server.ok(&format!("/api/traces/{:032x}", 0xabc)).await;
    let root = &trace["roots"][0];
    assert_eq!(root["operation"], "invoke_agent");
    assert_eq!(root["children"].as_array().unwrap().len(), 3);
    assert_eq!(root["children"][0]["price_version"], "test-1:gpt-4o*@2020-01-01");
    assert_eq!(root["children"][2]["cost_source"], "reported");
    assert_eq!(trace["tokens"]["input"], json!(3010));
}

async fn check_old_and_new_names(server: TestServer) {
    let new = exporter(&server, Protocol::HttpBinary, "checkout", false);
    new.export(reference_spans(0x1, true)).await.unwrap();
    let old = exporter(&server, Protocol::HttpBinary, "legacy-svc", false);
    old.export(reference_spans(0x2, false)).await.unwrap();
    let a = server.ok(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    let b = server.ok(&format!("/api/signals/summary?service=legacy-svc&{}", range())).await;
    assert_reference_summary(&b);
    for field in ["requests", "tokens", "cost_usd", "latency_ms", "ttft_ms"] {
        assert_eq!(a[field], b[field], "{field} differs between current and deprecated names");
    }
    // An unknown service is shown, not dropped, with no team.
    let services = server.ok(&format!("/api/signals/summary?{}", range())).await;
    let legacy = services["by_service"].as_array().unwrap().iter().find(|s| s["service"] == "legacy-svc").unwrap();
    assert_eq!(legacy["team"], Value::Null);
    let checkout = services["by_service"].as_array().unwrap().iter().find(|s| s["service"] == "checkout").unwrap();
    assert_eq!(checkout["team"], "group:default/team-pay");
}

async fn check_duplicates(server: TestServer) {
    let binary = exporter(&server, Protocol::HttpBinary, "checkout", false);
    binary.export(reference_spans(0xd, true)).await.unwrap();
    binary.export(reference_spans(0xd, true)).await.unwrap();
    let json_exporter = exporter(&server, Protocol::HttpJson, "checkout", false);
    json_exporter.export(reference_spans(0xd, true)).await.unwrap();
    let summary = server.ok(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_reference_summary(&summary);
    let metrics = server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("plinth_otlp_spans_duplicate_total 8"), "{metrics}");
}

scenarios!(
    exact_figures_protobuf,
    exact_figures_json,
    exact_figures_protobuf_gzip,
    old_and_new_names_agree,
    duplicates_count_once,
    slo_burn_rate_alert_fires_only_when_the_budget_burns_too_fast,
    store_failure_answers_503_and_acknowledges_nothing,
);

async fn exact_figures_protobuf(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    exact_figures(server, Protocol::HttpBinary, false).await;
}

async fn exact_figures_json(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    exact_figures(server, Protocol::HttpJson, false).await;
}

async fn exact_figures_protobuf_gzip(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    exact_figures(server, Protocol::HttpBinary, true).await;
}

async fn old_and_new_names_agree(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    check_old_and_new_names(server).await;
}

async fn duplicates_count_once(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    check_duplicates(server).await;
}

// ------------------------------------------------------------ bad requests --

fn proto_request(trace: u128, spans: u64, pad: usize) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as Kv};
    use opentelemetry_proto::tonic::resource::v1::Resource as R;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let t = base_ms() as u64 * 1_000_000;
    let kv = |k: &str, v: any_value::Value| Kv {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: trace.to_be_bytes().to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: "chat".into(),
            kind: 3,
            start_time_unix_nano: t,
            end_time_unix_nano: t + 1_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", any_value::Value::StringValue("chat".into())),
                kv("gen_ai.request.model", any_value::Value::StringValue("gpt-4o".into())),
                kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(10)),
                kv("padding", any_value::Value::StringValue("x".repeat(pad))),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(R {
                attributes: vec![kv("service.name", any_value::Value::StringValue("checkout".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

async fn post(server: &TestServer, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = server.http.post(server.url("/v1/traces")).header("content-type", content_type).body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_clear_statuses() {
    let server = start(Backend::Sqlite, |c| c.max_body_bytes = 64 * 1024).await.expect("SQLite server");
    // Malformed protobuf: 400 with what was wrong.
    let response = post(&server, "application/x-protobuf", None, vec![0x0a, 0xff, 0xff, 0xff]).await;
    assert_eq!(response.status(), 400);
    let status = <plinth_telemetry::otlp::Status as prost::Message>::decode(response.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("ExportTraceServiceRequest"), "{}", status.message);
    // Malformed JSON: 400 with line and column.
    let response =
        post(&server, "application/json", None, b"{\n  \"resourceSpans\": [ {\"scopeSpans\": 7} ]\n}".to_vec()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("line 2"), "{body}");
    // Another content type: 415.
    assert_eq!(post(&server, "text/plain", None, b"hi".to_vec()).await.status(), 415);
    // Oversized, plain and as a small gzip that inflates past the limit: 413.
    let response = post(&server, "application/x-protobuf", None, proto_request(1, 1, 100_000)).await;
    assert_eq!(response.status(), 413);
    // In the request's encoding (an OTLP exporter decodes it), not the API's JSON error.
    let status = <plinth_telemetry::otlp::Status as prost::Message>::decode(response.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("65536-byte limit"), "{}", status.message);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &proto_request(1, 1, 200_000)).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    assert_eq!(post(&server, "application/x-protobuf", Some("gzip"), bomb).await.status(), 413);
    // Spans with bad ids are refused one by one (partial success); the rest land.
    let mut json_body: Value = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
    "scopeSpans": [{"spans": [
        {"traceId": format!("{:032x}", 77), "spanId": "0000000000000001", "name": "chat", "kind": 3,
         "startTimeUnixNano": (base_ms() * 1_000_000).to_string(), "endTimeUnixNano": (base_ms() * 1_000_000 + 5_000_000).to_string(),
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]},
        {"traceId": "", "spanId": "0000000000000002", "name": "broken"}
    ]}]}]});
    let response = post(&server, "application/json", None, serde_json::to_vec(&json_body).unwrap()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], json!(1), "{body}");
    assert!(body["partialSuccess"]["errorMessage"].as_str().unwrap().contains("spans[1]: traceId"), "{body}");
    json_body["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array_mut().unwrap().truncate(1);
    let summary = server.ok(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_eq!(summary["requests"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_that_could_never_fit_in_memory_gets_413_not_429() {
    // 1 MiB in flight. 2,000 small spans are ~200 kB on the wire and take
    // many times that once decoded and normalised: more than the whole
    // limit, so a 429 would have the client retry forever.
    let server = start(Backend::Sqlite, |c| {
        c.max_inflight_bytes = 1024 * 1024;
        c.max_body_bytes = 512 * 1024;
    })
    .await
    .expect("SQLite server");
    let body = proto_request(1, 2_000, 0);
    assert!(body.len() < 512 * 1024, "{} bytes", body.len());
    let response = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(response.status(), 413);
    let bytes = response.bytes().await.unwrap();
    let status = <plinth_telemetry::otlp::Status as prost::Message>::decode(bytes.clone())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    assert!(
        status.message.contains("in-flight limit") && status.message.contains("--otlp-max-inflight-mib"),
        "{}",
        status.message
    );
    // A small export of the same shape lands.
    assert_eq!(post(&server, "application/x-protobuf", None, proto_request(2, 20, 0)).await.status(), 200);
    let summary = server.ok(&format!("/api/signals/summary?{}", range())).await;
    assert_eq!(summary["requests"], json!(20), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_429_and_loses_nothing_acknowledged() {
    // 8 MiB of in-flight memory; 24 concurrent ~200 KiB exports (each
    // reserving ~12× its size for decoding) cannot all fit.
    let server = start(Backend::Sqlite, |c| c.max_inflight_bytes = 8 * 1024 * 1024).await.expect("SQLite server");
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for i in 0..24u128 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let body = proto_request(1000 + i, 100, 2000);
            let response = post(&server, "application/x-protobuf", None, body).await;
            (response.status().as_u16(), response.headers().get("retry-after").cloned())
        }));
    }
    let mut acknowledged = 0;
    let mut throttled = 0;
    for task in tasks {
        let (status, retry_after) = task.await.unwrap();
        match status {
            200 => acknowledged += 1,
            429 => {
                throttled += 1;
                assert!(retry_after.is_some(), "429 must carry Retry-After");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(throttled > 0, "the in-flight limit never applied");
    assert!(acknowledged > 0);
    let summary = server.ok(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_eq!(summary["requests"], json!(acknowledged * 100), "every acknowledged span is stored, once");
}

// ------------------------------------------------------------ agent traces --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_trace_tree_with_tools_and_retrieval() {
    let server = start(Backend::Sqlite, |_| {}).await.expect("SQLite server");
    let t = base_ms();
    let trace = 0x5eed_u128;
    let spans = vec![
        span_data(S {
            trace,
            id: 10,
            parent: 0,
            name: "POST /support",
            kind: SpanKind::Server,
            start_ms: t,
            duration_ms: 1500,
            attributes: vec![
                KeyValue::new("http.route", "/support"),
                KeyValue::new("http.response.status_code", 200i64),
            ],
            error: false,
        }),
        span_data(S {
            trace,
            id: 11,
            parent: 10,
            name: "invoke_agent support-agent",
            kind: SpanKind::Internal,
            start_ms: t + 5,
            duration_ms: 1400,
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                KeyValue::new("gen_ai.agent.name", "support-agent"),
                KeyValue::new("gen_ai.conversation.id", "conv-1"),
            ],
            error: false,
        }),
        chat(
            trace,
            12,
            11,
            t + 10,
            400,
            vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.request.model", "gpt-4o"),
                KeyValue::new("gen_ai.usage.input_tokens", 500i64),
                KeyValue::new("gen_ai.usage.output_tokens", 40i64),
                KeyValue::new("gen_ai.response.finish_reasons", "tool_calls"),
            ],
        ),
        span_data(S {
            trace,
            id: 13,
            parent: 11,
            name: "execute_tool lookup_order",
            kind: SpanKind::Internal,
            start_ms: t + 420,
            duration_ms: 80,
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", "lookup_order"),
                KeyValue::new("gen_ai.tool.call.arguments", r#"{"order":"A-17"}"#),
                KeyValue::new("gen_ai.tool.call.result", r#"{"status":"shipped"}"#),
            ],
            error: false,
        }),
        span_data(S {
            trace,
            id: 14,
            parent: 11,
            name: "retrieval kb",
            kind: SpanKind::Client,
            start_ms: t + 510,
            duration_ms: 60,
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "retrieval"),
                KeyValue::new("gen_ai.data_source.id", "kb-qdrant"),
                KeyValue::new(
                    "gen_ai.retrieval.documents",
                    r#"[{"id":"faq-1","score":0.91},{"id":"faq-7","score":0.42}]"#,
                ),
            ],
            error: false,
        }),
        chat(
            trace,
            15,
            11,
            t + 600,
            700,
            vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.request.model", "gpt-4o"),
                KeyValue::new("gen_ai.usage.input_tokens", 900i64),
                KeyValue::new("gen_ai.usage.output_tokens", 120i64),
            ],
        ),
    ];
    exporter(&server, Protocol::HttpBinary, "support-bot-svc", false).export(spans).await.unwrap();
    let view = server.ok(&format!("/api/traces/{trace:032x}")).await;
    assert_eq!(view["span_count"], json!(6));
    assert_eq!(view["llm_calls"], json!(2));
    assert_eq!(view["tool_calls"], json!(1));
    let root = &view["roots"][0];
    assert_eq!(root["http_route"], "/support");
    let agent = &root["children"][0];
    assert_eq!(agent["operation"], "invoke_agent");
    let steps: Vec<&str> =
        agent["children"].as_array().unwrap().iter().map(|c| c["operation"].as_str().unwrap()).collect();
    assert_eq!(steps, vec!["chat", "execute_tool", "retrieval", "chat"]);
    assert_eq!(agent["children"][1]["tool_arguments"], r#"{"order":"A-17"}"#);
    assert_eq!(agent["children"][1]["tool_result"], r#"{"status":"shipped"}"#);
    assert_eq!(agent["children"][2]["documents"][0]["score"], json!(0.91));
    assert!(close(&view["cost_usd"], (500.0 * 2.5 + 40.0 * 10.0 + 900.0 * 2.5 + 120.0 * 10.0) / 1e6, 1e-9));
    // The annotation maps the service to its Component; RED from the server span.
    let summary = server.ok(&format!("/api/signals/summary?entity=component:default/support-bot&{}", range())).await;
    assert_eq!(summary["server"]["requests"], json!(1));
    assert_eq!(summary["requests"], json!(2));
    assert_eq!(summary["tool_calls"], json!(1));
    // Retrieval quality per data source.
    let retrieval = server.ok(&format!("/api/signals/retrieval?{}", range())).await;
    let kb = &retrieval[0];
    assert_eq!(kb["data_source"], "kb-qdrant");
    assert_eq!(kb["documents_per_retrieval"], json!(2.0));
    assert_eq!(kb["top_scores"]["mean"], json!(0.91));
    // Listed among recent traces; 404 with a reason for an unknown one.
    let traces = server.ok("/api/traces?service=support-bot-svc").await;
    assert_eq!(traces[0]["trace_id"], format!("{trace:032x}"));
    let missing = server.http.get(format!("{}/api/traces/{:032x}", server.base, 999)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

// --------------------------------------------------- prompts, scores, series --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_versions_compare_with_significance_and_scores() {
    let server = start(Backend::Sqlite, |_| {}).await.expect("SQLite server");
    let t = base_ms();
    let mut spans = Vec::new();
    for i in 0..60u64 {
        for (version, latency, tokens) in
            [("1", 200 + (i % 7) as i64 * 5, 500i64), ("2", 400 + (i % 7) as i64 * 5, 1500)]
        {
            let id = if version == "1" { i + 1 } else { 1000 + i };
            spans.push(chat(
                0x77,
                id,
                0,
                t + i as i64,
                latency,
                vec![
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.request.model", "gpt-4o"),
                    KeyValue::new("gen_ai.usage.input_tokens", tokens),
                    KeyValue::new("gen_ai.usage.output_tokens", 100i64),
                    KeyValue::new("gen_ai.prompt.name", "support-answer"),
                    KeyValue::new("gen_ai.prompt.version", version),
                ],
            ));
        }
    }
    exporter(&server, Protocol::HttpBinary, "checkout", false).export(spans).await.unwrap();
    // Scores: numeric per prompt version, a boolean on a span, and a category.
    let mut scores = Vec::new();
    for i in 0..20 {
        scores.push(json!({"name": "helpfulness", "value": 0.9 - (i % 3) as f64 * 0.01, "prompt": "prompt:default/support-answer", "promptVersion": "1"}));
        scores.push(json!({"name": "helpfulness", "value": 0.6 - (i % 3) as f64 * 0.01, "prompt": "support-answer", "promptVersion": "2"}));
    }
    scores.push(json!({"name": "resolved", "value": true, "traceId": format!("{:032x}", 0x77), "spanId": format!("{:016x}", 1)}));
    scores.push(json!({"name": "tone", "value": "friendly", "traceId": format!("{:032x}", 0x77)}));
    let response = server.http.post(format!("{}/api/signals/scores", server.base)).json(&scores).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let bad = server
        .http
        .post(format!("{}/api/signals/scores", server.base))
        .json(&json!({"name": "x", "value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("traceId"));

    let comparison = server.ok(&format!("/api/signals/prompts/support-answer/versions?baseline=1&{}", range())).await;
    assert_eq!(comparison["prompt_ref"], "prompt:default/support-answer");
    let versions = comparison["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let v2 = &versions[1];
    assert_eq!(v2["version"], "2");
    assert_eq!(v2["requests"], json!(60));
    assert_eq!(v2["tokens_per_request"], json!(1600.0));
    let significant: Vec<&str> = v2["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["significant"] == true)
        .map(|d| d["metric"].as_str().unwrap())
        .collect();
    for metric in ["latency", "tokens_per_request", "cost_per_request", "evaluation_score"] {
        assert!(significant.contains(&metric), "{metric} should differ significantly: {v2}");
    }
    assert!(!significant.contains(&"error_rate"));
    assert!(close(&v2["mean_score"], 0.59, 0.01));

    let series =
        server.ok(&format!("/api/signals/series?metric=requests&groupBy=prompt_version&step=1m&{}", range())).await;
    let groups: Vec<&str> = series["series"].as_array().unwrap().iter().map(|s| s["group"].as_str().unwrap()).collect();
    assert!(groups.contains(&"support-answer@1") && groups.contains(&"support-answer@2"), "{series}");
    let total: f64 = series["series"][0]["points"].as_array().unwrap().iter().filter_map(|p| p["value"].as_f64()).sum();
    assert_eq!(total, 60.0);
    let bad = server.http.get(format!("{}/api/signals/series?metric=nope", server.base)).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

// ------------------------------------------------------------------ alerts --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rule_fires_sets_health_posts_webhook_and_resolves() {
    // A webhook receiver on loopback.
    let received = Arc::new(tokio::sync::Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().await.push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = start(Backend::Sqlite, |_| {}).await.expect("SQLite server");
    let rule = json!({"name": "Checkout model errors", "entity": "component:default/checkout", "signal": "error_rate",
                      "threshold": 0.2, "window": "1h", "severity": "degraded", "webhook": hook});
    let response =
        server.http.post(format!("{}/api/signals/alerts/rules", server.base)).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let bad = json!({"name": "x", "signal": "nope", "threshold": 1});
    let response =
        server.http.post(format!("{}/api/signals/alerts/rules", server.base)).json(&bad).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("signal: `nope`") && text.contains("exactly one target"), "{text}");

    // 4 calls, 2 failing: 50 % errors.
    let t = now_ms() - 5_000;
    let spans: Vec<SpanData> = (0..4u64)
        .map(|i| {
            span_data(S {
                trace: 0xe,
                id: i + 1,
                parent: 0,
                name: "chat gpt-4o",
                kind: SpanKind::Client,
                start_ms: t,
                duration_ms: 100,
                attributes: vec![
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.request.model", "gpt-4o"),
                ],
                error: i < 2,
            })
        })
        .collect();
    exporter(&server, Protocol::HttpBinary, "checkout", false).export(spans).await.unwrap();
    let rules = server.http.post(format!("{}/api/signals/alerts/evaluate", server.base)).send().await.unwrap();
    let rules: Value = rules.json().await.unwrap();
    assert_eq!(rules[0]["status"]["state"], "firing", "{rules}");
    assert_eq!(rules[0]["status"]["value"], json!(0.5));
    let health = server.ok("/api/signals/health/component/default/checkout").await;
    assert_eq!(health["health"], "degraded");
    assert_eq!(health["firing"][0], "checkout-model-errors");
    let hooks = received.lock().await.clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["state"], "firing");
    assert_eq!(hooks[0]["entity"], "component:default/checkout");

    // Raise the threshold: the rule resolves, the webhook hears it, history keeps both.
    let relaxed = json!({"id": "checkout-model-errors", "name": "Checkout model errors", "entity": "component:default/checkout",
                         "signal": "error_rate", "threshold": 0.9, "window": "1h", "severity": "degraded", "webhook": hook});
    let (status, body) = server.post("/api/signals/alerts/rules", &relaxed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.post("/api/signals/alerts/evaluate", &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.ok("/api/signals/health/component/default/checkout").await["health"], "healthy");
    let history = server.ok("/api/signals/alerts/history?rule=checkout-model-errors").await;
    let states: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["resolved", "firing"]);
    assert_eq!(history[1]["webhook"]["delivered"], json!(true));
    assert_eq!(received.lock().await.len(), 2);

    // Health is live metadata on the entity itself (Backstage's status items).
    let rule = json!({"name": "Checkout latency", "entity": "component:default/checkout", "signal": "latency_p50",
                      "threshold": 50, "window": "1h"});
    let (status, body) = server.post("/api/signals/alerts/rules", &rule).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.signals().alerts_evaluate_now().await;
    let entity = server.ok("/api/catalog/entities/by-name/component/default/checkout").await;
    let item = &entity["status"]["items"][0];
    assert_eq!(item["type"], "plinth.dev/health");
    assert_eq!(item["level"], "error");
    assert_eq!(item["health"], "unhealthy");
    assert!(item["message"].as_str().unwrap().contains("checkout-latency"), "{item}");
}

// ----------------------------------------------------------------- metrics --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genai_metrics_become_rollups() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as Kv};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    };
    use prost::Message;
    let server = start(Backend::Sqlite, |_| {}).await.expect("SQLite server");
    let kv = |k: &str, v: &str| Kv {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    };
    let t = base_ms() as u64 * 1_000_000;
    // The series started after the server did, so its first cumulative
    // point counts in full (an older series' first point is a reference).
    let series_start = now_ms() as u64 * 1_000_000;
    let point = |token_type: &str, count: u64, sum: f64| HistogramDataPoint {
        attributes: vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.request.model", "gpt-4o"),
            kv("gen_ai.token.type", token_type),
        ],
        start_time_unix_nano: series_start,
        time_unix_nano: t,
        count,
        sum: Some(sum),
        ..Default::default()
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", "checkout")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "gen_ai.client.token.usage".into(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: vec![point("input", 4, 4000.0), point("output", 4, 800.0)],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "gen_ai.client.operation.duration".into(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![
                                    kv("gen_ai.operation.name", "chat"),
                                    kv("gen_ai.request.model", "gpt-4o"),
                                ],
                                start_time_unix_nano: series_start,
                                time_unix_nano: t,
                                count: 4,
                                sum: Some(1.2),
                                bucket_counts: vec![0, 4, 0],
                                explicit_bounds: vec![0.2, 0.4],
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let response = server
        .http
        .post(format!("{}/v1/metrics", server.base))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let summary = server.ok(&format!("/api/signals/summary?service=checkout&source=metrics&{}", range())).await;
    assert_eq!(summary["requests"], json!(4));
    assert_eq!(summary["tokens"]["input"], json!(4000));
    assert_eq!(summary["tokens"]["output"], json!(800));
    assert!(close(&summary["cost_usd"], (4000.0 * 2.5 + 800.0 * 10.0) / 1e6, 1e-9), "{summary}");
    assert!(close(&summary["latency_ms"]["p50"], 300.0, 0.011), "bucket midpoint: {}", summary["latency_ms"]);
    // Span-derived summaries are not mixed with metric-derived ones.
    let spans = server.ok(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_eq!(spans["requests"], json!(0));
}

// --------------------------------------------------------- cost anomalies --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_anomalies_api_explains_a_traffic_spike() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as Kv};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let server = start(Backend::Sqlite, |_| {}).await.expect("SQLite server");
    let kv = |k: &str, v: any_value::Value| Kv {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    // Three weeks of flat hourly traffic (10 calls/h, $0.25 per call), then
    // one hour with 3× the calls at the same unit cost.
    let now_s = now_ms() / 1000;
    let spike_hour = now_s - now_s.rem_euclid(3600) - 3600;
    let first_hour = spike_hour - 21 * 24 * 3600;
    let mut spans = Vec::new();
    let mut id = 0u64;
    let mut hour = first_hour;
    while hour <= spike_hour {
        let calls = if hour == spike_hour { 30 } else { 10 };
        for _ in 0..calls {
            id += 1;
            spans.push(Span {
                trace_id: (0xc0_5700_u128 + id as u128).to_be_bytes().to_vec(),
                span_id: id.to_be_bytes().to_vec(),
                name: "chat".into(),
                kind: 3,
                start_time_unix_nano: (hour as u64 + 60) * 1_000_000_000,
                end_time_unix_nano: (hour as u64 + 61) * 1_000_000_000,
                attributes: vec![
                    kv("gen_ai.operation.name", any_value::Value::StringValue("chat".into())),
                    kv("gen_ai.request.model", any_value::Value::StringValue("gpt-4o".into())),
                    kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(60_000)),
                    kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(10_000)),
                ],
                ..Default::default()
            });
        }
        hour += 3600;
    }
    for chunk in spans.chunks(2000) {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![kv("service.name", any_value::Value::StringValue("checkout".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans: chunk.to_vec(), ..Default::default() }],
                ..Default::default()
            }],
        };
        let response = post(&server, "application/x-protobuf", None, request.encode_to_vec()).await;
        assert_eq!(response.status(), 200);
    }
    let anomalies = server.ok("/api/cost/anomalies").await;
    let list = anomalies["anomalies"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{anomalies}");
    let spike = &list[0];
    assert_eq!(spike["kind"], "traffic_spike");
    assert_eq!(spike["team"], "group:default/team-pay");
    assert_eq!(spike["service"], "checkout");
    assert!(close(&spike["actual_usd"], 30.0 * 0.25, 1e-6), "{spike}");
    assert!(close(&spike["expected_usd"], 10.0 * 0.25, 1e-6), "{spike}");
    assert!(spike["summary"].as_str().unwrap().contains("requests"), "{spike}");
    // The team cost page data: cost centre from the Group annotation.
    let teams = server.ok("/api/cost/teams").await;
    let pay = teams.as_array().unwrap().iter().find(|t| t["team"] == "group:default/team-pay").unwrap();
    assert_eq!(pay["cost_center"], "CC-1042");
}

// ------------------------------------------------------- SLO burn-rate alerts --

/// `calls` chat calls of `checkout` in trace `trace`, the first `errors` of
/// them failing, a few seconds ago (inside any alert window).
async fn send_calls(server: &TestServer, trace: u128, calls: u64, errors: u64) {
    let t = now_ms() - 5_000;
    let spans: Vec<SpanData> = (0..calls)
        .map(|i| {
            span_data(S {
                trace,
                id: i + 1,
                parent: 0,
                name: "chat gpt-4o",
                kind: SpanKind::Client,
                start_ms: t,
                duration_ms: 100,
                attributes: vec![
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.request.model", "gpt-4o"),
                ],
                error: i < errors,
            })
        })
        .collect();
    exporter(server, Protocol::HttpBinary, "checkout", false).export(spans).await.expect("export accepted");
}

/// Evaluates every rule now; the state of rule `id` afterwards.
async fn evaluate(server: &TestServer, id: &str) -> Value {
    let (status, rules) = server.post("/api/signals/alerts/evaluate", &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    let rule = rules.as_array().expect("a list of rules").iter().find(|r| r["id"] == id).cloned();
    rule.unwrap_or_else(|| panic!("rule {id} missing from {rules}"))["status"].clone()
}

/// The error budget of an availability SLO: a rule fires when errors eat it
/// at least `burn_rate` times faster than the objective allows, and sets
/// its entity's health; below that rate it stays quiet, however many
/// errors there are.
async fn slo_burn_rate_alert_fires_only_when_the_budget_burns_too_fast(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    let rules = "/api/signals/alerts/rules";
    let health = "/api/signals/health/component/default/checkout";

    // An SLO goes with `availability`, and `availability` needs an SLO.
    let (status, body) = server
        .post(
            rules,
            &json!({"name": "x", "entity": "component:default/checkout", "signal": "error_rate",
                    "slo": {"objective": 0.99, "burn_rate": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("an SLO rule uses `availability`, not `error_rate`"), "{body}");
    let (status, body) = server
        .post(
            rules,
            &json!({"name": "x", "entity": "component:default/checkout", "signal": "availability", "threshold": 0.9}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("(or `availability` with `slo`)"), "{body}");
    let (status, body) = server
        .post(
            rules,
            &json!({"name": "x", "entity": "component:default/checkout", "signal": "availability",
                    "slo": {"objective": 1.5, "burn_rate": 0}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = body.to_string();
    assert!(text.contains("slo.objective") && text.contains("slo.burn_rate"), "{body}");
    assert!(server.ok(rules).await.as_array().unwrap().is_empty(), "an invalid rule was stored");

    // 99 % of calls must succeed: a budget of 1 % errors, paged at 14.4×.
    let rule = json!({"name": "Checkout availability", "entity": "component:default/checkout",
                      "signal": "availability", "slo": {"objective": 0.99, "burn_rate": 14.4}, "window": "1h"});
    let (status, body) = server.post(rules, &rule).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], "checkout-availability");
    assert_eq!(body["slo"]["burn_rate"], json!(14.4));
    assert_eq!(body["severity"], "unhealthy", "the default severity");
    let id = "checkout-availability";
    let before = server.ok(health).await;
    assert_eq!(before["health"], "unknown", "nothing evaluated yet: {before}");
    // No calls yet: no data, nothing fires.
    let state = evaluate(&server, id).await;
    assert_eq!(state["state"], "no_data", "{state}");
    assert_eq!(server.ok(health).await["health"], "healthy");

    // 1 error in 200 calls: 0.5 % errors burn the budget at 0.5×.
    send_calls(&server, 0x5100, 200, 1).await;
    let state = evaluate(&server, id).await;
    assert_eq!(state["state"], "ok", "{state}");
    assert!(close(&state["value"], 0.5, 1e-9), "{state}");
    assert!(state["message"].as_str().unwrap().contains("burning at 0.50×"), "{state}");
    let quiet = server.ok(health).await;
    assert_eq!(quiet["health"], "healthy", "{quiet}");
    assert_eq!(quiet["firing"], json!([]));
    assert_eq!(quiet["rules"], json!([id]));

    // 30 more errors in 100 calls: 31 of 300 (10.3 %), 10.3× the budget,
    // many errors but still under the 14.4× limit.
    send_calls(&server, 0x5200, 100, 30).await;
    let state = evaluate(&server, id).await;
    assert_eq!(state["state"], "ok", "{state}");
    assert!(close(&state["value"], 31.0 / 300.0 / 0.01, 1e-9), "{state}");
    assert_eq!(server.ok(health).await["health"], "healthy");
    let history = server.ok_q("/api/signals/alerts/history", &[("rule", id)]).await;
    assert_eq!(history, json!([]), "a quiet rule records nothing");

    // 60 more in 100: 91 of 400 (22.75 %) burn at 22.75×: the rule fires.
    send_calls(&server, 0x5300, 100, 60).await;
    let state = evaluate(&server, id).await;
    assert_eq!(state["state"], "firing", "{state}");
    assert!(close(&state["value"], 91.0 / 400.0 / 0.01, 1e-9), "{state}");
    let message = state["message"].as_str().unwrap();
    assert!(
        message.contains("availability 0.7725") && message.contains("burning at 22.75× (limit 14.4×)"),
        "{message}"
    );
    let firing = server.ok(health).await;
    assert_eq!(firing["health"], "unhealthy", "{firing}");
    assert_eq!(firing["firing"], json!([id]));
    let all = server.ok("/api/signals/health").await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["entity"] == "component:default/checkout" && e["health"] == "unhealthy"),
        "{all}"
    );
    let entity = server.entity("component", "checkout").await.expect("the component");
    let item = &entity["status"]["items"][0];
    assert_eq!(item["type"], "plinth.dev/health", "{entity}");
    assert_eq!(item["health"], "unhealthy");
    assert_eq!(item["level"], "error");
    // Evaluating again changes nothing: one firing event.
    assert_eq!(evaluate(&server, id).await["state"], "firing");
    let history = server.ok_q("/api/signals/alerts/history", &[("rule", id)]).await;
    let states: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["firing"], "{history}");

    // A page only above 30×: the same burn resolves the rule.
    let relaxed = json!({"id": id, "name": "Checkout availability", "entity": "component:default/checkout",
                         "signal": "availability", "slo": {"objective": 0.99, "burn_rate": 30}, "window": "1h"});
    let (status, body) = server.post(rules, &relaxed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let state = evaluate(&server, id).await;
    assert_eq!(state["state"], "ok", "{state}");
    assert_eq!(server.ok(health).await["health"], "healthy");
    let history = server.ok_q("/api/signals/alerts/history", &[("rule", id)]).await;
    let states: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["resolved", "firing"], "{history}");
}

// ---------------------------------------------------------- store failure --

/// A real write failure of the store: another connection holds the lock
/// the signals writer needs.
enum StoreOutage {
    /// `BEGIN EXCLUSIVE` on the database file: the writer's `BEGIN
    /// IMMEDIATE` gives up after the store's busy timeout (10 s).
    Sqlite(sqlx::SqliteConnection),
    /// `ACCESS EXCLUSIVE` on `signal_segments`, in an open transaction; the
    /// writer's INSERT waits on it until it is cancelled, which is what a
    /// statement or lock timeout does (the store sets neither).
    Postgres { lock: sqlx::PgConnection, monitor: sqlx::PgPool },
}

impl StoreOutage {
    async fn begin(server: &TestServer) -> StoreOutage {
        use sqlx::Connection;
        match server.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(server.data_dir().join("plinth.db"))
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(60));
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await.expect("open the SQLite file");
                sqlx::raw_sql("BEGIN EXCLUSIVE").execute(&mut conn).await.expect("take the write lock");
                StoreOutage::Sqlite(conn)
            }
            Backend::Postgres => {
                let url = server.database_url().expect("a PostgreSQL server").to_string();
                let mut lock = sqlx::PgConnection::connect(&url).await.expect("connect");
                sqlx::raw_sql("BEGIN; LOCK TABLE signal_segments IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut lock)
                    .await
                    .expect("lock signal_segments");
                let monitor =
                    sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.expect("connect");
                StoreOutage::Postgres { lock, monitor }
            }
        }
    }

    /// Sends `body` to `/v1/traces` while the store is down; the response.
    async fn export(&mut self, server: &TestServer, body: Vec<u8>) -> reqwest::Response {
        let request = server
            .http
            .post(server.url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send();
        match self {
            StoreOutage::Sqlite(_) => request.await.expect("POST /v1/traces"),
            StoreOutage::Postgres { monitor, .. } => {
                let request = tokio::spawn(request);
                let waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                               AND wait_event_type = 'Lock' AND query LIKE 'SELECT trace_id, span_ids FROM signal_segments%'";
                wait_until(Duration::from_secs(60), "the signals writer waiting on the lock", || {
                    let monitor = monitor.clone();
                    async move {
                        let found = sqlx::query_scalar::<_, i32>(waiting).fetch_optional(&monitor).await;
                        found.expect("pg_stat_activity").is_some()
                    }
                })
                .await;
                // The lock is still held, so the writer is still waiting.
                let writer: i32 = sqlx::query_scalar(waiting).fetch_one(&*monitor).await.expect("the writer's backend");
                let cancelled: bool = sqlx::query_scalar("SELECT pg_cancel_backend($1)")
                    .bind(writer)
                    .fetch_one(&*monitor)
                    .await
                    .expect("cancel the writer's statement");
                assert!(cancelled, "the writer's statement was not cancelled");
                request.await.expect("request task").expect("POST /v1/traces")
            }
        }
    }

    /// The store recovers.
    async fn end(self) {
        use sqlx::Connection;
        match self {
            StoreOutage::Sqlite(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.expect("release the write lock");
                let _ = conn.close().await;
            }
            StoreOutage::Postgres { mut lock, monitor } => {
                sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.expect("release the lock");
                let _ = lock.close().await;
                monitor.close().await;
            }
        }
    }
}

/// A store that cannot take the write: `POST /v1/traces` answers 503 with
/// `Retry-After` and acknowledges nothing; once the store is back the
/// spans are still absent (other exports land), and the client's retry
/// stores them exactly once.
async fn store_failure_answers_503_and_acknowledges_nothing(backend: Backend) {
    let Some(server) = start(backend, |_| {}).await else { return };
    let summary = format!("/api/signals/summary?service=checkout&{}", range());
    let failed = proto_request(0xfa11, 5, 0);
    let mut outage = StoreOutage::begin(&server).await;
    let response = outage.export(&server, failed.clone()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = response.headers().get("retry-after").expect("503 must carry Retry-After");
    let seconds: u64 = retry_after.to_str().unwrap().parse().expect("Retry-After in seconds");
    assert!(seconds >= 1, "{retry_after:?}");
    assert_eq!(response.headers().get("content-type").unwrap(), "application/x-protobuf");
    let status = <plinth_telemetry::otlp::Status as prost::Message>::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, plinth_telemetry::otlp::CODE_UNAVAILABLE, "{}", status.message);
    assert!(status.message.contains("retry"), "{}", status.message);
    outage.end().await;

    // Nothing of the refused export was stored.
    let (status, body) = server.get(&format!("/api/traces/{:032x}", 0xfa11)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the refused spans were stored: {body}");
    assert_eq!(server.ok(&summary).await["requests"], json!(0));
    assert_eq!(server.metric("plinth_otlp_requests_failed_total").await, 1.0);
    assert_eq!(server.metric("plinth_otlp_spans_accepted_total").await, 0.0);
    // The store is back: another export lands, the refused one stays absent.
    let other = post(&server, "application/x-protobuf", None, proto_request(0x0b, 3, 0)).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(server.ok(&summary).await["requests"], json!(3));
    assert_eq!(server.get(&format!("/api/traces/{:032x}", 0xfa11)).await.0, StatusCode::NOT_FOUND);

    // The client retries: stored, once; a second retry is a duplicate.
    let retry = post(&server, "application/x-protobuf", None, failed.clone()).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(server.ok(&summary).await["requests"], json!(8));
    let trace = server.ok(&format!("/api/traces/{:032x}", 0xfa11)).await;
    assert_eq!(trace["span_count"], json!(5), "{trace}");
    assert_eq!(server.metric("plinth_otlp_spans_accepted_total").await, 8.0);
    assert_eq!(server.metric("plinth_otlp_spans_duplicate_total").await, 0.0);
    let again = post(&server, "application/x-protobuf", None, failed).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(server.ok(&summary).await["requests"], json!(8));
    assert_eq!(server.metric("plinth_otlp_spans_duplicate_total").await, 5.0);
    server.stop().await;
}

/// A misspelt field is refused, not dropped: an SLO with `burnRate` would
/// otherwise page at the default 1× burn instead of the 14.4× asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_refuse_unknown_fields() {
    let server = start(Backend::Sqlite, |_| {}).await.expect("SQLite server");
    let rules = "/api/signals/alerts/rules";
    let misspelt_slo = json!({"name": "Checkout availability", "entity": "component:default/checkout",
                              "signal": "availability", "slo": {"objective": 0.99, "burnRate": 14.4}, "window": "1h"});
    let (status, body) = server.post(rules, &misspelt_slo).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("burnRate"), "{body}");
    let misspelt_rule = json!({"name": "Checkout errors", "entity": "component:default/checkout",
                               "signal": "error_rate", "threshold": 0.2, "windw": "1h"});
    let (status, body) = server.post(rules, &misspelt_rule).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("windw"), "{body}");
    assert!(server.ok(rules).await.as_array().unwrap().is_empty(), "a misspelt rule was stored");
}
