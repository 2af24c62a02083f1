//! The demo's traffic generator. With `plinth serve --demo` the demo
//! company's agents call their models, tools and vector stores, and their
//! telemetry reaches the server the way any application's would: OTLP/HTTP
//! (protobuf) over loopback to `/v1/traces`, through the official
//! OpenTelemetry exporter, following the GenAI semantic conventions. Cost,
//! traces, prompt comparison, anomalies and alerts show believable data
//! within a minute of start. `--demo-traffic=false` turns it off.
//!
//! The traffic is a deterministic schedule. Every hour (counted from the
//! epoch) has its agent runs, drawn from a generator seeded with the hour,
//! so a restart sends the same trace and span ids again and the receiver
//! counts them once. At start the last [`BACKFILL_HOURS`] hours are sent,
//! backdated (charts get a history, anomaly detection a baseline); after
//! that, once a second, the runs that ended since — about one span every few
//! seconds, following the time of day. On top of the steady traffic:
//!
//! - `support-console` A/B tests two versions of the `support-reply-draft`
//!   prompt: version 4 scores clearly higher and answers shorter, so the
//!   prompt comparison shows significant differences;
//! - `catalog-enrichment-worker` ran into a tool loop two hours before start
//!   (every run calls gpt-4o eight times with a growing context): a cost
//!   anomaly;
//! - from 90 minutes before start on, `refund-agent`'s gpt-4o calls are
//!   rate-limited: the alert rule [`ALERT_RULE_ID`] (created when the server
//!   has no alert rules) fires.
//!
//! The generator authorises as a real exporter would: nothing in local mode;
//! with `--auth required` a service token with the `signals:ingest` scope,
//! issued at start (and every 12 hours), revoked on shutdown.

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;
use plinth_app::identity::{TokenRequest, TokenSubject};
use plinth_app::signals::AlertRule;
use plinth_app::{AuthMode, Caller, Platform};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Hours of history sent at start: more than the 24 hours the anomaly page
/// judges, so its baseline has hours before the window.
pub(crate) const BACKFILL_HOURS: i64 = 28;
/// The alert rule the demo creates when the server has none.
pub(crate) const ALERT_RULE_ID: &str = "demo-refund-agent-errors";
/// The prompt whose two versions are A/B tested.
pub(crate) const AB_PROMPT: &str = "support-reply-draft";
/// The service whose tool loop is the cost anomaly.
pub(crate) const ANOMALY_SERVICE: &str = "catalog-enrichment-worker";
/// The anomaly is in the hour this many hours before the hour of start.
const ANOMALY_HOURS_BEFORE_START: i64 = 2;
/// The rate-limit incident of refund-agent began this long before start.
const INCIDENT_BEFORE_START: Duration = Duration::from_secs(90 * 60);
/// Share of refund-agent's gpt-4o calls refused during the incident.
const INCIDENT_ERROR_SHARE: f64 = 0.6;
/// How often finished runs are sent.
const TICK: Duration = Duration::from_secs(1);
/// Most spans in one export (whole runs are never split).
const MAX_SPANS_PER_EXPORT: usize = 2000;
/// Tries per export before its runs are dropped (429, 503, a token not yet
/// known to the server).
const EXPORT_TRIES: u32 = 4;
/// How long start waits for the demo catalogue to be attributed.
const CATALOGUE_WAIT: Duration = Duration::from_secs(120);
/// Attribution unchanged this long with some demo services known: the
/// catalogue is in.
const CATALOGUE_SETTLED: Duration = Duration::from_secs(5);
/// A token is replaced after this long (it lives a day).
const TOKEN_ROTATION: Duration = Duration::from_secs(12 * 3600);
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const NS_PER_HOUR: i64 = 3_600_000_000_000;
const NS_PER_MS: i64 = 1_000_000;

// --- The demo company's models, as their SDKs report them ---------------

/// A model as an instrumentation reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Llm {
    provider: &'static str,
    request: &'static str,
    response: &'static str,
    /// USD per million (input, output) tokens reported with each call, for
    /// self-hosted models no price table knows; `None`: the server prices
    /// the call from its table.
    reported: Option<(f64, f64)>,
    /// Generation time per output token.
    ms_per_token: f64,
}

const GPT_4O: Llm =
    Llm { provider: "openai", request: "gpt-4o", response: "gpt-4o-2024-08-06", reported: None, ms_per_token: 11.0 };
const SONNET: Llm = Llm {
    provider: "anthropic",
    request: "claude-sonnet-4-5",
    response: "claude-sonnet-4-5-20250929",
    reported: None,
    ms_per_token: 14.0,
};
const HAIKU: Llm = Llm {
    provider: "anthropic",
    request: "claude-haiku-4-5",
    response: "claude-haiku-4-5-20251001",
    reported: None,
    ms_per_token: 6.0,
};
const LLAMA_SUPPORT: Llm = Llm {
    provider: "vllm",
    request: "llama-3-1-8b-support",
    response: "llama-3-1-8b-support",
    reported: Some((0.05, 0.10)),
    ms_per_token: 8.0,
};
const GEMINI_PRO: Llm = Llm {
    provider: "gcp.vertex_ai",
    request: "gemini-pro",
    response: "gemini-pro-002",
    reported: Some((1.25, 5.0)),
    ms_per_token: 9.0,
};
const BGE_M3: Llm = Llm {
    provider: "vllm",
    request: "bge-m3-embedding",
    response: "bge-m3-embedding",
    reported: Some((0.01, 0.0)),
    ms_per_token: 0.0,
};
const PRODUCT_EMBEDDING: Llm = Llm {
    provider: "vllm",
    request: "product-embedding-model",
    response: "product-embedding-model",
    reported: Some((0.01, 0.0)),
    ms_per_token: 0.0,
};

// --- What each agent does -------------------------------------------------

/// One step of an agent run.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A model call with a catalogued prompt; `evaluation` names the
    /// online evaluation attached to it and its usual mean score.
    Chat {
        llm: Llm,
        prompt: &'static str,
        version: &'static str,
        input: (u64, u64),
        output: (u64, u64),
        evaluation: Option<(&'static str, f64)>,
    },
    /// A tool call; `{n}` in the arguments and result becomes a number.
    Tool { name: &'static str, arguments: &'static str, result: &'static str },
    /// An embedding of the query, then a vector search in `source` (a
    /// catalogued Resource).
    Retrieve { source: &'static str, embedder: Llm },
}

/// An agent of the demo catalogue and the Component that runs it.
#[derive(Debug)]
struct Profile {
    agent: &'static str,
    /// `service.name`: the Component hosting the agent.
    service: &'static str,
    /// Runs per hour at the busiest time of day.
    per_hour: f64,
    steps: &'static [Step],
}

const PROFILES: &[Profile] = &[
    Profile {
        agent: "support-copilot-agent",
        service: "support-console",
        per_hour: 40.0,
        steps: &[
            Step::Tool {
                name: "get_ticket",
                arguments: r#"{"ticket_id":"SUP-{n}"}"#,
                result: r#"{"status":"open","channel":"email","messages":4}"#,
            },
            Step::Chat {
                llm: HAIKU,
                prompt: "support-ticket-summary",
                version: "2",
                input: (1400, 3200),
                output: (120, 260),
                evaluation: None,
            },
            Step::Tool {
                name: "get_order",
                arguments: r#"{"order_id":"NW-{n}"}"#,
                result: r#"{"status":"delivered","items":3,"total":"89.40 EUR"}"#,
            },
            Step::Retrieve { source: "knowledge-base-vectors", embedder: BGE_M3 },
            Step::Chat {
                llm: LLAMA_SUPPORT,
                prompt: "support-kb-answer",
                version: "5",
                input: (1800, 3600),
                output: (80, 220),
                evaluation: Some(("groundedness", 0.82)),
            },
            Step::Chat {
                llm: SONNET,
                prompt: AB_PROMPT,
                version: "3",
                input: (2600, 4400),
                output: (260, 420),
                evaluation: Some(("helpfulness", 0.64)),
            },
        ],
    },
    Profile {
        agent: "shopping-assistant-agent",
        service: "shopping-assistant-service",
        per_hour: 30.0,
        steps: &[
            Step::Chat {
                llm: HAIKU,
                prompt: "search-query-rewrite",
                version: "7",
                input: (600, 1100),
                output: (40, 120),
                evaluation: None,
            },
            Step::Retrieve { source: "product-vectors", embedder: PRODUCT_EMBEDDING },
            Step::Tool {
                name: "search_products",
                arguments: r#"{"query":"tent 2 person","limit":{n}}"#,
                result: r#"{"hits":8}"#,
            },
            Step::Tool {
                name: "get_recommendations",
                arguments: r#"{"product_id":"P-{n}"}"#,
                result: r#"{"items":5}"#,
            },
            Step::Chat {
                llm: SONNET,
                prompt: "shopping-assistant-system",
                version: "12",
                input: (1800, 3400),
                output: (120, 300),
                evaluation: Some(("helpfulness", 0.78)),
            },
        ],
    },
    Profile {
        agent: "refund-agent",
        service: "refund-orchestrator",
        per_hour: 36.0,
        steps: &[
            Step::Tool {
                name: "get_order",
                arguments: r#"{"order_id":"NW-{n}"}"#,
                result: r#"{"status":"delivered","paid":"129.00 EUR"}"#,
            },
            Step::Chat {
                llm: GPT_4O,
                prompt: "refund-eligibility-check",
                version: "4",
                input: (1600, 2800),
                output: (90, 220),
                evaluation: None,
            },
            Step::Tool {
                name: "get_fraud_score",
                arguments: r#"{"payment_id":"pay_{n}"}"#,
                result: r#"{"score":0.07,"decision":"approve"}"#,
            },
            Step::Tool {
                name: "issue_refund",
                arguments: r#"{"order_id":"NW-{n}","amount":"129.00"}"#,
                result: r#"{"refund_id":"re_{n}","state":"pending"}"#,
            },
            Step::Chat {
                llm: HAIKU,
                prompt: "refund-customer-message",
                version: "2",
                input: (400, 800),
                output: (60, 140),
                evaluation: None,
            },
        ],
    },
    Profile {
        agent: "chargeback-dispute-agent",
        service: "chargeback-dispute-worker",
        per_hour: 8.0,
        steps: &[
            Step::Tool {
                name: "get_dispute",
                arguments: r#"{"dispute_id":"dp_{n}"}"#,
                result: r#"{"reason_code":"13.1","amount":"64.00"}"#,
            },
            Step::Tool { name: "get_tracking", arguments: r#"{"order_id":"NW-{n}"}"#, result: r#"{"delivered":true}"# },
            Step::Chat {
                llm: GPT_4O,
                prompt: "chargeback-dispute-letter",
                version: "3",
                input: (3500, 6500),
                output: (450, 800),
                evaluation: None,
            },
        ],
    },
    Profile {
        agent: "catalog-enrichment-agent",
        service: ANOMALY_SERVICE,
        per_hour: 20.0,
        steps: &[
            Step::Tool {
                name: "get_product",
                arguments: r#"{"sku":"SKU-{n}"}"#,
                result: r#"{"title":"Trail tent 2P","attributes":14}"#,
            },
            Step::Chat {
                llm: HAIKU,
                prompt: "product-attribute-extraction",
                version: "6",
                input: (900, 1800),
                output: (150, 300),
                evaluation: None,
            },
            Step::Chat {
                llm: GPT_4O,
                prompt: "product-description-generator",
                version: "9",
                input: (900, 1600),
                output: (220, 380),
                evaluation: Some(("brand_voice", 0.81)),
            },
            Step::Tool { name: "update_product", arguments: r#"{"sku":"SKU-{n}"}"#, result: r#"{"updated":true}"# },
        ],
    },
    Profile {
        agent: "code-review-agent",
        service: "code-review-bot",
        per_hour: 15.0,
        steps: &[
            Step::Tool {
                name: "get_pull_request_diff",
                arguments: r#"{"pull_request":{n}}"#,
                result: r#"{"files":6,"lines":240}"#,
            },
            Step::Chat {
                llm: HAIKU,
                prompt: "code-review-pr-summary",
                version: "3",
                input: (2500, 5000),
                output: (120, 250),
                evaluation: None,
            },
            Step::Chat {
                llm: SONNET,
                prompt: "code-review-comment",
                version: "8",
                input: (5000, 10000),
                output: (250, 600),
                evaluation: Some(("precision", 0.74)),
            },
        ],
    },
    Profile {
        agent: "analytics-copilot-agent",
        service: "analytics-copilot",
        per_hour: 12.0,
        steps: &[
            Step::Tool {
                name: "get_metric_definitions",
                arguments: r#"{"domain":"orders"}"#,
                result: r#"{"metrics":12}"#,
            },
            Step::Chat {
                llm: GPT_4O,
                prompt: "sql-analyst-query",
                version: "5",
                input: (2500, 4500),
                output: (150, 350),
                evaluation: Some(("sql_valid", 0.9)),
            },
            Step::Tool { name: "run_query", arguments: r#"{"limit":{n}}"#, result: r#"{"rows":42}"# },
        ],
    },
    Profile {
        agent: "incident-triage-agent",
        service: "incident-bot",
        per_hour: 6.0,
        steps: &[
            Step::Tool { name: "get_alerts", arguments: r#"{"since":"15m"}"#, result: r#"{"firing":3}"# },
            Step::Tool {
                name: "get_recent_deployments",
                arguments: r#"{"window":"1h"}"#,
                result: r#"{"deployments":2}"#,
            },
            Step::Chat {
                llm: SONNET,
                prompt: "incident-triage-summary",
                version: "2",
                input: (3000, 6000),
                output: (200, 450),
                evaluation: None,
            },
        ],
    },
    Profile {
        agent: "marketing-copy-agent",
        service: "marketing-copy-worker",
        per_hour: 4.0,
        steps: &[
            Step::Tool {
                name: "get_campaign",
                arguments: r#"{"campaign_id":"cmp-{n}"}"#,
                result: r#"{"segment":"outdoor-enthusiasts"}"#,
            },
            Step::Chat {
                llm: GEMINI_PRO,
                prompt: "marketing-email-copy",
                version: "4",
                input: (1200, 2200),
                output: (500, 900),
                evaluation: Some(("brand_voice", 0.77)),
            },
        ],
    },
];

/// The A/B tested versions of [`AB_PROMPT`]: (version, mean evaluation
/// score, output length factor, latency factor).
const AB_VERSIONS: [(&str, f64, f64, f64); 2] = [("3", 0.64, 1.0, 1.0), ("4", 0.86, 0.7, 0.8)];

// --- A small deterministic generator -------------------------------------

/// SplitMix64: tiny, fast and deterministic for a seed; enough for traffic.
struct Rng(u64);

impl Rng {
    fn seeded(parts: &[i64]) -> Rng {
        let mut state = 0x5DEE_CE66_D1CE_4E5Bu64;
        for part in parts {
            state = mix(state ^ (*part as u64));
        }
        Rng(state)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn range(&mut self, (low, high): (u64, u64)) -> u64 {
        low + self.next() % (high.saturating_sub(low) + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Roughly normal (sum of uniforms), mean 0, standard deviation 1.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }

    fn span_id(&mut self) -> SpanId {
        SpanId::from_bytes(self.next().max(1).to_be_bytes())
    }

    fn trace_id(&mut self) -> TraceId {
        let high = u128::from(self.next().max(1));
        TraceId::from_bytes(((high << 64) | u128::from(self.next())).to_be_bytes())
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// --- The schedule ------------------------------------------------------------

/// What this start of the demo adds to the steady traffic.
#[derive(Debug, Clone)]
struct Scenario {
    /// Profiles in the catalogue (indices into [`PROFILES`]).
    profiles: Vec<usize>,
    /// Hour index (hours since the epoch) of the tool loop.
    anomaly_hour: i64,
    /// Runs of refund-agent starting from here on are rate-limited.
    incident_from_ns: i64,
}

impl Scenario {
    fn new(start_ns: i64, profiles: Vec<usize>) -> Scenario {
        Scenario {
            profiles,
            anomaly_hour: start_ns.div_euclid(NS_PER_HOUR) - ANOMALY_HOURS_BEFORE_START,
            incident_from_ns: start_ns - INCIDENT_BEFORE_START.as_nanos() as i64,
        }
    }
}

/// One agent run: its spans (root last) and when it ended.
struct Run {
    end_ns: i64,
    service: &'static str,
    spans: Vec<SpanData>,
}

/// Busier in the European afternoon, quiet at night: 0.3 to 1.
fn time_of_day_factor(hour: i64) -> f64 {
    let hour_of_day = hour.rem_euclid(24) as f64;
    0.65 + 0.35 * (std::f64::consts::TAU * (hour_of_day - 14.0) / 24.0).cos()
}

/// Every run starting in `hour` (hours since the epoch).
fn hour_runs(hour: i64, scenario: &Scenario) -> Vec<Run> {
    scenario.profiles.iter().flat_map(|&index| profile_runs(hour, index, scenario)).collect()
}

/// The runs of one agent starting in `hour`, by start time.
fn profile_runs(hour: i64, index: usize, scenario: &Scenario) -> Vec<Run> {
    let profile = &PROFILES[index];
    let mut rng = Rng::seeded(&[hour, index as i64]);
    let count = (profile.per_hour * time_of_day_factor(hour) * rng.between(0.85, 1.15)).round() as i64;
    let mut starts: Vec<i64> =
        (0..count.max(0)).map(|_| hour * NS_PER_HOUR + (rng.unit() * NS_PER_HOUR as f64) as i64).collect();
    starts.sort_unstable();
    starts
        .into_iter()
        .enumerate()
        .map(|(i, start_ns)| {
            let mut run_rng = Rng::seeded(&[hour, index as i64, i as i64]);
            let looping = profile.service == ANOMALY_SERVICE && hour == scenario.anomaly_hour;
            let incident = profile.agent == "refund-agent" && start_ns >= scenario.incident_from_ns;
            agent_run(profile, start_ns, &mut run_rng, looping, incident)
        })
        .collect()
}

fn span_events(events: Vec<opentelemetry::trace::Event>) -> SpanEvents {
    let mut list = SpanEvents::default();
    list.events = events;
    list
}

fn to_time(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

/// Builds the spans of one run as an instrumented agent framework would.
struct RunBuilder {
    trace_id: TraceId,
    root_id: SpanId,
    profile: &'static Profile,
    conversation: String,
    spans: Vec<SpanData>,
}

impl RunBuilder {
    #[allow(clippy::too_many_arguments)]
    fn span(
        &mut self,
        id: SpanId,
        parent: SpanId,
        name: String,
        kind: SpanKind,
        (start_ns, end_ns): (i64, i64),
        mut attributes: Vec<KeyValue>,
        events: Vec<opentelemetry::trace::Event>,
        error: Option<&'static str>,
    ) {
        attributes.push(KeyValue::new("gen_ai.agent.name", self.profile.agent));
        attributes.push(KeyValue::new("gen_ai.conversation.id", self.conversation.clone()));
        self.spans.push(SpanData {
            span_context: SpanContext::new(self.trace_id, id, TraceFlags::SAMPLED, false, TraceState::default()),
            parent_span_id: parent,
            parent_span_is_remote: false,
            span_kind: kind,
            name: name.into(),
            start_time: to_time(start_ns),
            end_time: to_time(end_ns),
            attributes,
            dropped_attributes_count: 0,
            events: span_events(events),
            links: SpanLinks::default(),
            status: match error {
                Some(message) => Status::error(message),
                None => Status::Unset,
            },
            instrumentation_scope: InstrumentationScope::builder("plinth-demo-traffic")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        });
    }

    /// A model call starting at `start_ns`; returns its end and whether it failed.
    #[allow(clippy::too_many_arguments)]
    fn chat(
        &mut self,
        rng: &mut Rng,
        start_ns: i64,
        llm: Llm,
        prompt: (&'static str, &str),
        (input, output): (u64, u64),
        latency_factor: f64,
        evaluation: Option<(&'static str, f64)>,
        refused: bool,
    ) -> i64 {
        let id = rng.span_id();
        let root = self.root_id;
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", llm.provider),
            KeyValue::new("gen_ai.request.model", llm.request),
            KeyValue::new("gen_ai.prompt.name", prompt.0),
            KeyValue::new("gen_ai.prompt.version", prompt.1.to_string()),
        ];
        if refused {
            let end_ns = start_ns + (rng.between(60.0, 180.0) * NS_PER_MS as f64) as i64;
            attributes.push(KeyValue::new("error.type", "rate_limit_exceeded"));
            attributes.push(KeyValue::new("http.response.status_code", 429i64));
            self.span(
                id,
                root,
                format!("chat {}", llm.request),
                SpanKind::Client,
                (start_ns, end_ns),
                attributes,
                Vec::new(),
                Some("Rate limit reached for gpt-4o on tokens per minute (TPM); retry after 20s"),
            );
            return end_ns;
        }
        let ttft_s = rng.between(0.15, 0.6) * latency_factor;
        let generation_ms = output as f64 * llm.ms_per_token * rng.between(0.8, 1.25) * latency_factor;
        let end_ns = start_ns + ((ttft_s * 1000.0 + generation_ms) * NS_PER_MS as f64) as i64;
        // Providers cache the stable head of long prompts.
        let cache_read = if input > 2000 && rng.chance(0.4) { input / 2 } else { 0 };
        attributes.extend([
            KeyValue::new("gen_ai.response.model", llm.response),
            KeyValue::new("gen_ai.usage.input_tokens", input as i64),
            KeyValue::new("gen_ai.usage.output_tokens", output as i64),
            KeyValue::new("gen_ai.usage.cache_read.input_tokens", cache_read as i64),
            KeyValue::new("gen_ai.response.time_to_first_chunk", ttft_s),
            KeyValue::new("gen_ai.response.finish_reasons", Value::Array(Array::String(vec!["stop".into()]))),
        ]);
        if let Some((per_m_input, per_m_output)) = llm.reported {
            let cost = (input as f64 * per_m_input + output as f64 * per_m_output) / 1e6;
            attributes.push(KeyValue::new("gen_ai.usage.cost", cost));
        }
        let mut events = Vec::new();
        if let Some((name, mean)) = evaluation {
            let score = (mean + 0.1 * rng.normal()).clamp(0.0, 1.0);
            events.push(opentelemetry::trace::Event::new(
                "gen_ai.evaluation.result",
                to_time(end_ns),
                vec![
                    KeyValue::new("gen_ai.evaluation.name", name),
                    KeyValue::new("gen_ai.evaluation.score.value", (score * 1000.0).round() / 1000.0),
                ],
                0,
            ));
        }
        self.span(
            id,
            root,
            format!("chat {}", llm.request),
            SpanKind::Client,
            (start_ns, end_ns),
            attributes,
            events,
            None,
        );
        end_ns
    }

    fn tool(&mut self, rng: &mut Rng, start_ns: i64, name: &'static str, arguments: &str, result: &str) -> i64 {
        let id = rng.span_id();
        let root = self.root_id;
        let end_ns = start_ns + (rng.between(40.0, 420.0) * NS_PER_MS as f64) as i64;
        let n = rng.range((1000, 999_999)).to_string();
        let call_id = format!("call_{:016x}", rng.next());
        let attributes = vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", name),
            KeyValue::new("gen_ai.tool.type", "function"),
            KeyValue::new("gen_ai.tool.call.id", call_id),
            KeyValue::new("gen_ai.tool.call.arguments", arguments.replace("{n}", &n)),
            KeyValue::new("gen_ai.tool.call.result", result.replace("{n}", &n)),
        ];
        self.span(
            id,
            root,
            format!("execute_tool {name}"),
            SpanKind::Internal,
            (start_ns, end_ns),
            attributes,
            Vec::new(),
            None,
        );
        end_ns
    }

    fn retrieve(&mut self, rng: &mut Rng, start_ns: i64, source: &'static str, embedder: Llm) -> i64 {
        let root = self.root_id;
        // The query's embedding: a (cheap) model call of its own.
        let id = rng.span_id();
        let tokens = rng.range((12, 60));
        let embedded_ns = start_ns + (rng.between(15.0, 60.0) * NS_PER_MS as f64) as i64;
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", "embeddings"),
            KeyValue::new("gen_ai.provider.name", embedder.provider),
            KeyValue::new("gen_ai.request.model", embedder.request),
            KeyValue::new("gen_ai.response.model", embedder.response),
            KeyValue::new("gen_ai.usage.input_tokens", tokens as i64),
        ];
        if let Some((per_m_input, _)) = embedder.reported {
            attributes.push(KeyValue::new("gen_ai.usage.cost", tokens as f64 * per_m_input / 1e6));
        }
        self.span(
            id,
            root,
            format!("embeddings {}", embedder.request),
            SpanKind::Client,
            (start_ns, embedded_ns),
            attributes,
            Vec::new(),
            None,
        );
        let id = rng.span_id();
        let end_ns = embedded_ns + (rng.between(25.0, 160.0) * NS_PER_MS as f64) as i64;
        // One retrieval in twenty finds nothing relevant.
        let found = if rng.chance(0.05) { 0 } else { rng.range((3, 6)) };
        let top = rng.between(0.55, 0.95);
        let documents: Vec<serde_json::Value> = (0..found)
            .map(|i| {
                let score = (top - 0.08 * i as f64 - rng.between(0.0, 0.05)).max(0.05);
                serde_json::json!({"id": format!("{source}-{}", rng.range((100, 9999))), "score": (score * 1000.0).round() / 1000.0})
            })
            .collect();
        let attributes = vec![
            KeyValue::new("gen_ai.operation.name", "retrieval"),
            KeyValue::new("gen_ai.data_source.id", source),
            KeyValue::new("gen_ai.retrieval.documents", serde_json::Value::Array(documents).to_string()),
        ];
        self.span(
            id,
            root,
            format!("retrieval {source}"),
            SpanKind::Client,
            (embedded_ns, end_ns),
            attributes,
            Vec::new(),
            None,
        );
        end_ns
    }
}

/// One run of `profile`'s agent: `invoke_agent` with its model calls, tool
/// calls and retrievals as children.
fn agent_run(profile: &'static Profile, start_ns: i64, rng: &mut Rng, looping: bool, incident: bool) -> Run {
    let mut builder = RunBuilder {
        trace_id: rng.trace_id(),
        root_id: rng.span_id(),
        profile,
        conversation: format!("conv-{:012x}", rng.next() >> 16),
        spans: Vec::new(),
    };
    let mut t = start_ns + (rng.between(3.0, 30.0) * NS_PER_MS as f64) as i64;
    let mut failed = false;
    let gap = |rng: &mut Rng| (rng.between(2.0, 25.0) * NS_PER_MS as f64) as i64;
    for step in profile.steps {
        match *step {
            Step::Chat { llm, prompt, version, input, output, evaluation } => {
                let (mut version, mut output_factor, mut latency_factor, mut evaluation) =
                    (version.to_string(), 1.0, 1.0, evaluation);
                if prompt == AB_PROMPT {
                    let (ab_version, mean, out, latency) = AB_VERSIONS[usize::from(rng.chance(0.5))];
                    version = ab_version.to_string();
                    output_factor = out;
                    latency_factor = latency;
                    evaluation = evaluation.map(|(name, _)| (name, mean));
                }
                let tokens = (rng.range(input), (rng.range(output) as f64 * output_factor) as u64);
                let refused = incident && llm == GPT_4O && rng.chance(INCIDENT_ERROR_SHARE);
                t = builder.chat(rng, t, llm, (prompt, &version), tokens, latency_factor, evaluation, refused);
                if refused {
                    failed = true;
                    break;
                }
                if looping && prompt == "product-description-generator" {
                    // The tool loop: the agent keeps looking up similar
                    // products and re-asking gpt-4o with the whole history.
                    for round in 0..8u64 {
                        t += gap(rng);
                        t = builder.tool(
                            rng,
                            t,
                            "search_similar_products",
                            r#"{"sku":"SKU-{n}","limit":50}"#,
                            r#"{"hits":50}"#,
                        );
                        t += gap(rng);
                        let context = 18_000 + 6_000 * round + rng.range((0, 2_000));
                        let tokens = (context, rng.range((300, 600)));
                        t = builder.chat(rng, t, llm, (prompt, &version), tokens, 1.0, None, false);
                    }
                }
            }
            Step::Tool { name, arguments, result } => t = builder.tool(rng, t, name, arguments, result),
            Step::Retrieve { source, embedder } => t = builder.retrieve(rng, t, source, embedder),
        }
        t += gap(rng);
    }
    let end_ns = t + (rng.between(2.0, 12.0) * NS_PER_MS as f64) as i64;
    let root = builder.root_id;
    builder.span(
        root,
        SpanId::INVALID,
        format!("invoke_agent {}", profile.agent),
        SpanKind::Internal,
        (start_ns, end_ns),
        vec![
            KeyValue::new("gen_ai.operation.name", "invoke_agent"),
            KeyValue::new("gen_ai.agent.id", format!("agent:default/{}", profile.agent)),
        ],
        Vec::new(),
        failed.then_some("the model call was refused; the run stopped"),
    );
    Run { end_ns, service: profile.service, spans: builder.spans }
}

// --- Sending -------------------------------------------------------------

/// A running generator; [`DemoTraffic::stop`] ends it.
pub(crate) struct DemoTraffic {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the generator for the server listening on `listening`. It waits
/// for the demo catalogue, then sends; failures are logged, never fatal.
pub(crate) fn start(platform: Arc<Platform>, listening: SocketAddr) -> DemoTraffic {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(platform, listening, stopped));
    DemoTraffic { stop, task }
}

impl DemoTraffic {
    /// Stops sending (an export in flight is abandoned) and revokes the
    /// generator's token.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// The address to reach a listener from this machine.
fn loopback_target(listening: SocketAddr) -> SocketAddr {
    let mut target = listening;
    if listening.ip().is_unspecified() {
        target.set_ip(if listening.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    target
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Waits until `stop` turns true or `delay` passes; true when stopping.
async fn pause(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
        _ = tokio::time::sleep(delay) => false,
    }
}

/// The profiles whose service the catalogue knows: once it knows them all,
/// or once what it knows has not changed for [`CATALOGUE_SETTLED`] (a demo
/// catalogue edited to lack some), or after [`CATALOGUE_WAIT`].
async fn wait_for_catalogue(platform: &Platform, stop: &mut watch::Receiver<bool>) -> Option<Vec<usize>> {
    let started = Instant::now();
    let mut known: Vec<usize> = Vec::new();
    let mut changed = Instant::now();
    loop {
        let now_known: Vec<usize> = match platform.signals().service() {
            Ok(service) => {
                let attribution = service.attribution();
                (0..PROFILES.len()).filter(|&i| attribution.service(PROFILES[i].service).is_some()).collect()
            }
            Err(_) => return None,
        };
        if now_known != known {
            known = now_known;
            changed = Instant::now();
        }
        if known.len() == PROFILES.len() {
            return Some(known);
        }
        let settled = !known.is_empty() && changed.elapsed() > CATALOGUE_SETTLED;
        if settled || started.elapsed() > CATALOGUE_WAIT {
            let missing: Vec<&str> =
                PROFILES.iter().enumerate().filter(|(i, _)| !known.contains(i)).map(|(_, p)| p.service).collect();
            tracing::warn!(?missing, "demo traffic: these services are not in the catalogue; sending the others");
            return Some(if known.is_empty() { (0..PROFILES.len()).collect() } else { known });
        }
        if pause(stop, Duration::from_millis(250)).await {
            return None;
        }
    }
}

/// The demo's alert rule: refund-agent's model calls failing.
fn alert_rule() -> AlertRule {
    AlertRule {
        id: ALERT_RULE_ID.into(),
        name: "Refund agent model errors".into(),
        entity: Some("agent:default/refund-agent".into()),
        team: None,
        service: None,
        signal: "error_rate".into(),
        scope: "model_calls".into(),
        op: ">".into(),
        threshold: Some(0.2),
        slo: None,
        window: "1h".into(),
        severity: "degraded".into(),
        min_requests: 5,
        webhook: None,
        enabled: true,
    }
}

/// Creates the demo's alert rule when the server has none.
async fn ensure_alert_rule(platform: &Platform, caller: &Caller) {
    let signals = platform.signals();
    match signals.rules(caller) {
        Ok(rules) if rules.is_empty() => {
            if let Err(error) = signals.put_rule(caller, alert_rule()).await {
                tracing::warn!(error = %error.message, "demo traffic: cannot create the demo alert rule");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %error.message, "demo traffic: cannot read the alert rules"),
    }
}

/// The exporter and the token it presents.
struct Sender {
    exporter: opentelemetry_otlp::SpanExporter,
    token_id: Option<String>,
    issued: Instant,
}

async fn sender(platform: &Platform, caller: &Caller, endpoint: &str) -> Result<Sender, String> {
    let mut headers = HashMap::new();
    let mut token_id = None;
    if platform.auth_mode() == AuthMode::Required {
        let request = TokenRequest {
            name: "demo-traffic".into(),
            subject: TokenSubject::Service("plinth-demo-traffic".into()),
            scopes: vec!["signals:ingest".into()],
            lifetime: Some(TOKEN_LIFETIME),
        };
        let issued = platform.tokens().create(caller, request).await.map_err(|e| e.message)?;
        headers.insert("authorization".to_string(), format!("Bearer {}", issued.secret));
        token_id = Some(issued.token.id);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(30))
        .with_headers(headers)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Sender { exporter, token_id, issued: Instant::now() })
}

async fn revoke(platform: &Platform, caller: &Caller, sender: &Sender) {
    if let Some(id) = &sender.token_id {
        if let Err(error) = platform.tokens().revoke(caller, id).await {
            tracing::warn!(error = %error.message, "demo traffic: cannot revoke its token");
        }
    }
}

/// Sends `runs` (grouped by service, whole runs per export); false when
/// stopping.
async fn send(sender: &mut Sender, runs: Vec<Run>, stop: &mut watch::Receiver<bool>, failures: &mut Failures) -> bool {
    let mut by_service: BTreeMap<&'static str, Vec<Run>> = BTreeMap::new();
    for run in runs {
        by_service.entry(run.service).or_default().push(run);
    }
    for (service, runs) in by_service {
        sender.exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(service)
                .with_attribute(KeyValue::new("deployment.environment.name", "demo"))
                .build(),
        );
        let mut batch: Vec<SpanData> = Vec::new();
        for run in runs {
            let full = !batch.is_empty() && batch.len() + run.spans.len() > MAX_SPANS_PER_EXPORT;
            if full && !export(sender, std::mem::take(&mut batch), stop, failures).await {
                return false;
            }
            batch.extend(run.spans);
        }
        if !batch.is_empty() && !export(sender, batch, stop, failures).await {
            return false;
        }
    }
    true
}

/// Failed exports, logged at most once a minute.
#[derive(Default)]
struct Failures {
    dropped_spans: u64,
    last_logged: Option<Instant>,
}

async fn export(
    sender: &Sender,
    batch: Vec<SpanData>,
    stop: &mut watch::Receiver<bool>,
    failures: &mut Failures,
) -> bool {
    let spans = batch.len() as u64;
    let mut last_error = String::new();
    for attempt in 0..EXPORT_TRIES {
        if attempt > 0 && pause(stop, Duration::from_secs(1 << attempt)).await {
            return false;
        }
        let result = tokio::select! {
            result = sender.exporter.export(batch.clone()) => result,
            _ = stop.changed() => return false,
        };
        match result {
            Ok(()) => return true,
            Err(error) => last_error = error.to_string(),
        }
    }
    failures.dropped_spans += spans;
    if failures.last_logged.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
        failures.last_logged = Some(Instant::now());
        tracing::warn!(error = %last_error, dropped_spans = failures.dropped_spans, "demo traffic: the receiver refused an export");
    }
    !*stop.borrow()
}

async fn run(platform: Arc<Platform>, listening: SocketAddr, mut stop: watch::Receiver<bool>) {
    let caller = Caller::system("demo-traffic");
    let Some(profiles) = wait_for_catalogue(&platform, &mut stop).await else { return };
    let start_ns = now_ns();
    let scenario = Scenario::new(start_ns, profiles);
    if scenario.profiles.iter().any(|&i| PROFILES[i].agent == "refund-agent") {
        ensure_alert_rule(&platform, &caller).await;
    }
    let endpoint = format!("http://{}/v1/traces", loopback_target(listening));
    let mut sender = match sender(&platform, &caller, &endpoint).await {
        Ok(sender) => sender,
        Err(error) => {
            tracing::warn!(%error, "demo traffic: cannot set up the OTLP exporter; no demo traffic");
            return;
        }
    };
    tracing::info!(
        %endpoint,
        agents = scenario.profiles.len(),
        backfill_hours = BACKFILL_HOURS,
        "demo traffic: the demo's agents send OTLP to this server (turn off with --demo-traffic=false)"
    );
    let mut pending: BTreeMap<i64, Vec<Run>> = BTreeMap::new();
    let mut next_hour = start_ns.div_euclid(NS_PER_HOUR) - BACKFILL_HOURS;
    let mut failures = Failures::default();
    loop {
        if sender.issued.elapsed() > TOKEN_ROTATION && sender.token_id.is_some() {
            match self::sender(&platform, &caller, &endpoint).await {
                Ok(fresh) => revoke(&platform, &caller, &std::mem::replace(&mut sender, fresh)).await,
                Err(error) => tracing::warn!(%error, "demo traffic: cannot issue a fresh token"),
            }
        }
        let now = now_ns();
        let current_hour = now.div_euclid(NS_PER_HOUR);
        while next_hour <= current_hour {
            pending.insert(next_hour, hour_runs(next_hour, &scenario));
            next_hour += 1;
        }
        let mut ready = Vec::new();
        for runs in pending.values_mut() {
            let (done, waiting): (Vec<Run>, Vec<Run>) = std::mem::take(runs).into_iter().partition(|r| r.end_ns <= now);
            ready.extend(done);
            *runs = waiting;
        }
        pending.retain(|_, runs| !runs.is_empty());
        if !ready.is_empty() && !send(&mut sender, ready, &mut stop, &mut failures).await {
            break;
        }
        if pause(&mut stop, TICK).await {
            break;
        }
    }
    revoke(&platform, &caller, &sender).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_deterministic_and_runs_are_trees() {
        let start = 1_764_900_000 * 1_000_000_000i64;
        let scenario = Scenario::new(start, (0..PROFILES.len()).collect());
        let hour = start.div_euclid(NS_PER_HOUR) - 5;
        let first = hour_runs(hour, &scenario);
        let again = hour_runs(hour, &scenario);
        assert!(first.len() > 20, "{} runs in an hour", first.len());
        let ids = |runs: &[Run]| -> Vec<(TraceId, SpanId)> {
            runs.iter()
                .flat_map(|r| r.spans.iter().map(|s| (s.span_context.trace_id(), s.span_context.span_id())))
                .collect()
        };
        assert_eq!(ids(&first), ids(&again), "a restart sends the same ids");
        for run in &first {
            let root = run.spans.last().unwrap();
            assert_eq!(root.parent_span_id, SpanId::INVALID);
            assert!(root.name.starts_with("invoke_agent "));
            assert!(run.spans[..run.spans.len() - 1].iter().all(|s| s.parent_span_id == root.span_context.span_id()));
            assert!(run.spans.iter().all(|s| s.start_time <= s.end_time && s.end_time <= root.end_time));
            assert_eq!(to_time(run.end_ns), root.end_time);
        }
    }

    /// A span's cost as the server counts it: the reported cost, else the
    /// shipped price table; only model calls are billed.
    fn span_cost(span: &SpanData, prices: &plinth_telemetry::prices::PriceTable) -> f64 {
        let get = |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value);
        let operation = get("gen_ai.operation.name").map(|v| v.as_str().to_string()).unwrap_or_default();
        if !matches!(operation.as_str(), "chat" | "embeddings") {
            return 0.0;
        }
        if let Some(Value::F64(cost)) = get("gen_ai.usage.cost") {
            return *cost;
        }
        let int = |key: &str| match get(key) {
            Some(Value::I64(v)) => *v as u64,
            _ => 0,
        };
        let usage = plinth_telemetry::genai::Usage {
            input: int("gen_ai.usage.input_tokens"),
            output: int("gen_ai.usage.output_tokens"),
            cache_read: int("gen_ai.usage.cache_read.input_tokens"),
            ..Default::default()
        };
        let model = get("gen_ai.response.model").or(get("gen_ai.request.model")).map(|v| v.as_str().to_string());
        let provider = get("gen_ai.provider.name").map(|v| v.as_str().to_string());
        let at = span.start_time.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        prices.cost(provider.as_deref(), &model.unwrap_or_default(), &usage, at).map_or(0.0, |p| p.cost_usd)
    }

    /// What the anomaly page would find, at start and later, for a start at
    /// any hour of the day: the planned tool loop, and nothing else (the
    /// steady traffic's hour-to-hour changes stay below the page's
    /// thresholds).
    #[test]
    fn the_anomaly_page_finds_the_planned_anomaly_and_nothing_else() {
        use plinth_telemetry::anomaly::{detect, AnomalyConfig, HourlyCell};
        let prices = plinth_app::signals::shipped_prices();
        let all: Vec<usize> = (0..PROFILES.len()).collect();
        let cost = |runs: Vec<Run>| -> f64 { runs.iter().flat_map(|r| &r.spans).map(|s| span_cost(s, &prices)).sum() };
        let day = 1_764_892_800 / 3600; // 2025-12-05T00:00Z, in hours
        let neutral = Scenario { profiles: all.clone(), anomaly_hour: i64::MIN, incident_from_ns: i64::MAX };
        let mut steady: HashMap<(usize, i64), f64> = HashMap::new();
        for hour in day - BACKFILL_HOURS - 1..day + 48 {
            for &i in &all {
                steady.insert((i, hour), cost(profile_runs(hour, i, &neutral)));
            }
        }
        let peak = steady.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        eprintln!("costliest steady hour of a service: ${:.2} ({})", peak.1, PROFILES[peak.0 .0].service);
        let refund = all.iter().position(|&i| PROFILES[i].agent == "refund-agent").unwrap();
        let looping = all.iter().position(|&i| PROFILES[i].service == ANOMALY_SERVICE).unwrap();
        for start_hour in day..day + 24 {
            let start_ns = start_hour * NS_PER_HOUR + 35 * 60 * 1_000_000_000;
            let scenario = Scenario::new(start_ns, all.clone());
            for viewed_after in [0, 6, 21] {
                let now_hour = start_hour + viewed_after;
                for &i in &all {
                    let cells: Vec<HourlyCell> = (start_hour - BACKFILL_HOURS..now_hour)
                        .map(|hour| {
                            let special = (i == looping && hour == scenario.anomaly_hour)
                                || (i == refund && (hour + 1) * NS_PER_HOUR > scenario.incident_from_ns);
                            let cost_usd =
                                if special { cost(profile_runs(hour, i, &scenario)) } else { steady[&(i, hour)] };
                            HourlyCell { hour_s: hour * 3600, cost_usd, requests: 1.0, ..HourlyCell::default() }
                        })
                        .collect();
                    let found: Vec<i64> =
                        detect(&cells, (now_hour - 24) * 3600, now_hour * 3600, &AnomalyConfig::default())
                            .iter()
                            .map(|a| a.hour_s / 3600)
                            .collect();
                    let expected: Vec<i64> = if i == looping && scenario.anomaly_hour >= now_hour - 24 {
                        vec![scenario.anomaly_hour]
                    } else {
                        vec![]
                    };
                    let costs: Vec<String> = cells.iter().map(|c| format!("{:.2}", c.cost_usd)).collect();
                    assert_eq!(
                        found,
                        expected,
                        "{} started at {}:35 UTC, viewed {viewed_after} h later; hourly costs {costs:?}",
                        PROFILES[i].service,
                        start_hour.rem_euclid(24)
                    );
                }
            }
        }
    }

    #[test]
    fn the_tool_loop_and_the_incident_happen_where_planned() {
        let start = 1_764_900_000 * 1_000_000_000i64;
        let scenario = Scenario::new(start, (0..PROFILES.len()).collect());
        let count = |runs: &[Run], service: &str| -> usize {
            runs.iter().filter(|r| r.service == service).map(|r| r.spans.len()).sum()
        };
        let normal = hour_runs(scenario.anomaly_hour - 24, &scenario);
        let looping = hour_runs(scenario.anomaly_hour, &scenario);
        assert!(count(&looping, ANOMALY_SERVICE) > 3 * count(&normal, ANOMALY_SERVICE));
        let errors = |runs: &[Run]| {
            runs.iter()
                .filter(|r| r.service == "refund-orchestrator")
                .flat_map(|r| r.spans.iter())
                .filter(|s| matches!(s.status, Status::Error { .. }) && s.name.starts_with("chat"))
                .count()
        };
        assert_eq!(errors(&normal), 0);
        let current = hour_runs(start.div_euclid(NS_PER_HOUR), &scenario);
        assert!(errors(&current) > 0);
    }
}
