//! Signals end to end over loopback HTTP, with the official OpenTelemetry
//! Rust exporter (`opentelemetry-otlp`, HTTP/protobuf and HTTP/JSON) as the
//! client: exact token, cost and latency figures from the summary, old and
//! new attribute names, cache tokens counted once, duplicates counted once,
//! malformed / oversized / overloaded requests, agent trace trees, prompt
//! comparison, scores, alerts with a webhook, metrics, and cost anomalies
//! through the API. The core cases run on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;
use plinth_catalog::{Catalog, CatalogConfig};
use plinth_server::signals::{SignalsConfig, SignalsService};
use plinth_server::ServerConfig;
use plinth_store::{NewLocation, Store, StoreConfig};
use plinth_telemetry::prices::PriceTable;
use plinth_testkit::PgDatabase;
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

struct Server {
    base: String,
    http: reqwest::Client,
    service: Arc<SignalsService>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    _database: Option<PgDatabase>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn start(backend: Backend, tweak: impl FnOnce(&mut SignalsConfig)) -> Option<Server> {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let (config, database) = match backend {
        Backend::Sqlite => (StoreConfig::Sqlite { data_dir: data.clone() }, None),
        Backend::Postgres => {
            let database = PgDatabase::create("signals").await?;
            (StoreConfig::Postgres { url: database.url.clone() }, Some(database))
        }
    };
    let store = Store::open(&config).await.expect("open store");
    let catalog = Catalog::open(store.clone(), CatalogConfig::new(&data)).await.expect("catalogue");
    catalog.spawn_background();
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(&file, CATALOG).unwrap();
    catalog
        .add_location(NewLocation { kind: String::new(), target: file.to_string_lossy().into(), branch: None })
        .await
        .expect("register");
    let mut signals_config = SignalsConfig {
        prices: Arc::new(PriceTable::parse("prices.yaml", PRICES).expect("test prices")),
        alert_interval: Duration::from_secs(3600),
        // The server listens on loopback only: local mode, where webhooks
        // to loopback receivers are allowed.
        outbound: Arc::new(plinth_confine::OutboundPolicy::default_for(true)),
        ..SignalsConfig::default()
    };
    tweak(&mut signals_config);
    let service = SignalsService::start(signals_config, store, catalog.clone()).await;
    service.refresh_attribution();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server_config = ServerConfig { signals: Some(service.clone()), ..ServerConfig::default() };
    tokio::spawn(plinth_server::serve(listener, catalog, server_config, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    Some(Server { base, http, service, shutdown: Some(tx), _dir: dir, _database: database })
}

impl Server {
    async fn get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    fn exporter(&self, protocol: Protocol, service: &str, gzip: bool) -> opentelemetry_otlp::SpanExporter {
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("{}/v1/traces", self.base))
            .with_timeout(Duration::from_secs(10));
        if gzip {
            builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
        }
        let mut exporter = builder.build().expect("exporter");
        exporter.set_resource(&Resource::builder_empty().with_service_name(service.to_string()).build());
        exporter
    }
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

async fn exact_figures(server: Server, protocol: Protocol, gzip: bool) {
    let exporter = server.exporter(protocol, "checkout", gzip);
    exporter.export(reference_spans(0xabc, true)).await.expect("export accepted");
    // Queryable at once: the 200 came after the commit.
    let summary = server.get(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_reference_summary(&summary);
    // Attribution: the team and the Model entity see the same calls.
    let team = server.get(&format!("/api/signals/summary?team=group:default/team-pay&{}", range())).await;
    assert_reference_summary(&team);
    let model = server.get(&format!("/api/signals/summary?model=model:default/openai-gpt-4o&{}", range())).await;
    assert_eq!(model["requests"], json!(2), "gpt-4o and gpt-4o-2024-08-06 map to the Model: {model}");
    assert!(close(&model["cost_usd"], 0.012, 1e-9));
    let gpt4o = model["by_model"].as_array().unwrap();
    assert!(gpt4o.iter().all(|m| m["model_ref"] == "model:default/openai-gpt-4o"), "{model}");
    let prompt = server.get(&format!("/api/signals/summary?prompt=support-answer@3&{}", range())).await;
    assert_eq!(prompt["requests"], json!(1));
    let agent = server.get(&format!("/api/signals/summary?agent=support-agent&{}", range())).await;
    assert_eq!(agent["requests"], json!(3), "model calls inherit the agent of their parent: {agent}");
    // The trace records the price version of each computed cost.
    let trace = server.get(&format!("/api/traces/{:032x}", 0xabc)).await;
    let root = &trace["roots"][0];
    assert_eq!(root["operation"], "invoke_agent");
    assert_eq!(root["children"].as_array().unwrap().len(), 3);
    assert_eq!(root["children"][0]["price_version"], "test-1:gpt-4o*@2020-01-01");
    assert_eq!(root["children"][2]["cost_source"], "reported");
    assert_eq!(trace["tokens"]["input"], json!(3010));
}

async fn check_old_and_new_names(server: Server) {
    let new = server.exporter(Protocol::HttpBinary, "checkout", false);
    new.export(reference_spans(0x1, true)).await.unwrap();
    let old = server.exporter(Protocol::HttpBinary, "legacy-svc", false);
    old.export(reference_spans(0x2, false)).await.unwrap();
    let a = server.get(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    let b = server.get(&format!("/api/signals/summary?service=legacy-svc&{}", range())).await;
    assert_reference_summary(&b);
    for field in ["requests", "tokens", "cost_usd", "latency_ms", "ttft_ms"] {
        assert_eq!(a[field], b[field], "{field} differs between current and deprecated names");
    }
    // An unknown service is shown, not dropped, with no team.
    let services = server.get(&format!("/api/signals/summary?{}", range())).await;
    let legacy = services["by_service"].as_array().unwrap().iter().find(|s| s["service"] == "legacy-svc").unwrap();
    assert_eq!(legacy["team"], Value::Null);
    let checkout = services["by_service"].as_array().unwrap().iter().find(|s| s["service"] == "checkout").unwrap();
    assert_eq!(checkout["team"], "group:default/team-pay");
}

async fn check_duplicates(server: Server) {
    let exporter = server.exporter(Protocol::HttpBinary, "checkout", false);
    exporter.export(reference_spans(0xd, true)).await.unwrap();
    exporter.export(reference_spans(0xd, true)).await.unwrap();
    let json_exporter = server.exporter(Protocol::HttpJson, "checkout", false);
    json_exporter.export(reference_spans(0xd, true)).await.unwrap();
    let summary = server.get(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_reference_summary(&summary);
    let metrics = server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("plinth_otlp_spans_duplicate_total 8"), "{metrics}");
}

on_both_backends!(
    exact_figures_protobuf => |s| exact_figures(s, Protocol::HttpBinary, false),
    exact_figures_json => |s| exact_figures(s, Protocol::HttpJson, false),
    exact_figures_protobuf_gzip => |s| exact_figures(s, Protocol::HttpBinary, true),
    old_and_new_names_agree => check_old_and_new_names,
    duplicates_count_once => check_duplicates,
);

macro_rules! on_both_backends {
    ($($name:ident => $body:expr),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = start(Backend::Sqlite, |_| {}).await.unwrap();
                    ($body)(server).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(server) = start(Backend::Postgres, |_| {}).await else { return };
                    ($body)(server).await;
                }
            )*
        }
    };
}
use on_both_backends;

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

async fn post(server: &Server, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request =
        server.http.post(format!("{}/v1/traces", server.base)).header("content-type", content_type).body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_clear_statuses() {
    let server = start(Backend::Sqlite, |c| c.max_body_bytes = 64 * 1024).await.unwrap();
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
    assert_eq!(post(&server, "application/x-protobuf", None, proto_request(1, 1, 100_000)).await.status(), 413);
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
    let summary = server.get(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_eq!(summary["requests"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_429_and_loses_nothing_acknowledged() {
    // 8 MiB of in-flight memory; 24 concurrent ~200 KiB exports (each
    // reserving ~12× its size for decoding) cannot all fit.
    let server = start(Backend::Sqlite, |c| c.max_inflight_bytes = 8 * 1024 * 1024).await.unwrap();
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
    let summary = server.get(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_eq!(summary["requests"], json!(acknowledged * 100), "every acknowledged span is stored, once");
}

// ------------------------------------------------------------ agent traces --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_trace_tree_with_tools_and_retrieval() {
    let server = start(Backend::Sqlite, |_| {}).await.unwrap();
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
    server.exporter(Protocol::HttpBinary, "support-bot-svc", false).export(spans).await.unwrap();
    let view = server.get(&format!("/api/traces/{trace:032x}")).await;
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
    let summary = server.get(&format!("/api/signals/summary?entity=component:default/support-bot&{}", range())).await;
    assert_eq!(summary["server"]["requests"], json!(1));
    assert_eq!(summary["requests"], json!(2));
    assert_eq!(summary["tool_calls"], json!(1));
    // Retrieval quality per data source.
    let retrieval = server.get(&format!("/api/signals/retrieval?{}", range())).await;
    let kb = &retrieval[0];
    assert_eq!(kb["data_source"], "kb-qdrant");
    assert_eq!(kb["documents_per_retrieval"], json!(2.0));
    assert_eq!(kb["top_scores"]["mean"], json!(0.91));
    // Listed among recent traces; 404 with a reason for an unknown one.
    let traces = server.get("/api/traces?service=support-bot-svc").await;
    assert_eq!(traces[0]["trace_id"], format!("{trace:032x}"));
    let missing = server.http.get(format!("{}/api/traces/{:032x}", server.base, 999)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

// --------------------------------------------------- prompts, scores, series --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_versions_compare_with_significance_and_scores() {
    let server = start(Backend::Sqlite, |_| {}).await.unwrap();
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
    server.exporter(Protocol::HttpBinary, "checkout", false).export(spans).await.unwrap();
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

    let comparison = server.get(&format!("/api/signals/prompts/support-answer/versions?baseline=1&{}", range())).await;
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
        server.get(&format!("/api/signals/series?metric=requests&groupBy=prompt_version&step=1m&{}", range())).await;
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

    let server = start(Backend::Sqlite, |_| {}).await.unwrap();
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
    server.exporter(Protocol::HttpBinary, "checkout", false).export(spans).await.unwrap();
    let rules = server.http.post(format!("{}/api/signals/alerts/evaluate", server.base)).send().await.unwrap();
    let rules: Value = rules.json().await.unwrap();
    assert_eq!(rules[0]["status"]["state"], "firing", "{rules}");
    assert_eq!(rules[0]["status"]["value"], json!(0.5));
    let health = server.get("/api/signals/health/component/default/checkout").await;
    assert_eq!(health["health"], "degraded");
    assert_eq!(health["firing"][0], "checkout-model-errors");
    let hooks = received.lock().await.clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["state"], "firing");
    assert_eq!(hooks[0]["entity"], "component:default/checkout");

    // Raise the threshold: the rule resolves, the webhook hears it, history keeps both.
    let relaxed = json!({"id": "checkout-model-errors", "name": "Checkout model errors", "entity": "component:default/checkout",
                         "signal": "error_rate", "threshold": 0.9, "window": "1h", "severity": "degraded", "webhook": hook});
    server.http.post(format!("{}/api/signals/alerts/rules", server.base)).json(&relaxed).send().await.unwrap();
    server.http.post(format!("{}/api/signals/alerts/evaluate", server.base)).send().await.unwrap();
    assert_eq!(server.get("/api/signals/health/component/default/checkout").await["health"], "healthy");
    let history = server.get("/api/signals/alerts/history?rule=checkout-model-errors").await;
    let states: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["resolved", "firing"]);
    assert_eq!(history[1]["webhook"]["delivered"], json!(true));
    assert_eq!(received.lock().await.len(), 2);

    // Health is live metadata on the entity itself (Backstage's status items).
    let rule = json!({"name": "Checkout latency", "entity": "component:default/checkout", "signal": "latency_p50",
                      "threshold": 50, "window": "1h"});
    server.http.post(format!("{}/api/signals/alerts/rules", server.base)).json(&rule).send().await.unwrap();
    server.service.alerts_evaluate_now().await;
    let entity = server.get("/api/catalog/entities/by-name/component/default/checkout").await;
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
    let server = start(Backend::Sqlite, |_| {}).await.unwrap();
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
    let summary = server.get(&format!("/api/signals/summary?service=checkout&source=metrics&{}", range())).await;
    assert_eq!(summary["requests"], json!(4));
    assert_eq!(summary["tokens"]["input"], json!(4000));
    assert_eq!(summary["tokens"]["output"], json!(800));
    assert!(close(&summary["cost_usd"], (4000.0 * 2.5 + 800.0 * 10.0) / 1e6, 1e-9), "{summary}");
    assert!(close(&summary["latency_ms"]["p50"], 300.0, 0.011), "bucket midpoint: {}", summary["latency_ms"]);
    // Span-derived summaries are not mixed with metric-derived ones.
    let spans = server.get(&format!("/api/signals/summary?service=checkout&{}", range())).await;
    assert_eq!(spans["requests"], json!(0));
}

// --------------------------------------------------------- cost anomalies --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_anomalies_api_explains_a_traffic_spike() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as Kv};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let server = start(Backend::Sqlite, |_| {}).await.unwrap();
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
    let anomalies = server.get("/api/cost/anomalies").await;
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
    let teams = server.get("/api/cost/teams").await;
    let pay = teams.as_array().unwrap().iter().find(|t| t["team"] == "group:default/team-pay").unwrap();
    assert_eq!(pay["cost_center"], "CC-1042");
}
