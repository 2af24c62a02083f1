//! The portal's signals pages over real loopback HTTP, in-process, on
//! SQLite and PostgreSQL, with data sent through the real OTLP/JSON
//! receiver: an entity's Signals tab (numbers, charts, tables, traces,
//! health from a firing alert rule, empty state), the trace waterfall,
//! recent traces, team cost, cost anomalies and prompt-version comparison.
//! Every user-supplied value is escaped.

use plinth_testkit::{scenarios, wait_until, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FIXTURE: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-ai
  title: Applied AI
  annotations:
    plinth.dev/cost-center: CC-4242
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: assistant-api
  title: Assistant API
spec:
  type: service
  lifecycle: production
  owner: team-ai
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: quiet-service
  annotations:
    opentelemetry.io/service-name: quiet-svc
spec:
  type: service
  lifecycle: production
  owner: team-ai
---
apiVersion: plinth.dev/v1alpha1
kind: Prompt
metadata:
  name: support-answer
spec:
  owner: team-ai
  lifecycle: production
  template: "Answer {{ question }}"
"#;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

scenarios!(
    signals_pages_show_what_was_sent,
    prompt_versions_mark_significant_differences,
    cost_anomalies_are_explained
);

/// A server with signals and the fixture registered; attribution knows
/// the fixture before any span arrives.
struct Portal {
    server: TestServer,
}

impl Portal {
    async fn start(backend: Backend) -> Option<Portal> {
        let server = TestServer::start_with(backend, Options { signals: true, ..Options::default() }).await?;
        let file = server.write("catalog-info.yaml", FIXTURE);
        server.register_new(&file).await;
        let catalog = server.catalog.clone();
        wait_until(Duration::from_secs(30), "the fixture's ingestion", || {
            let catalog = catalog.clone();
            async move { catalog.read().get("component:default/assistant-api").is_some() }
        })
        .await;
        server.signals().refresh_attribution();
        Some(Portal { server })
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        self.server.text(path).await
    }

    async fn ok(&self, path: &str) -> String {
        let (status, body) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn send(&self, spans: Vec<Value>) {
        let body = json!({"resourceSpans": [{
            "resource": {"attributes": [attr("service.name", "assistant-api")]},
            "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
        }]});
        let response = self
            .server
            .http
            .post(self.server.url("/v1/traces"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST /v1/traces");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "OTLP export: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let rejected = &answer["partialSuccess"]["rejectedSpans"];
        assert!(rejected.is_null() || rejected == "0" || rejected == 0, "spans rejected: {text}");
    }
}

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn int(key: &str, value: i64) -> Value {
    json!({"key": key, "value": {"intValue": value.to_string()}})
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as i64
}

/// One span; `[trace, span, parent]` ids, and `(base_ns, start_ms, end_ms)`
/// with the start and end as offsets from `base_ns`.
fn span(ids: [&str; 3], name: &str, (base_ns, start_ms, end_ms): (i64, i64, i64), attributes: Vec<Value>) -> Value {
    let [trace, id, parent] = ids;
    json!({
        "traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": 1,
        "startTimeUnixNano": (base_ns + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (base_ns + end_ms * 1_000_000).to_string(),
        "attributes": attributes,
    })
}

fn chat(trace: &str, id: &str, parent: &str, base_ns: i64, input: i64, output: i64, version: &str) -> Value {
    span(
        [trace, id, parent],
        "chat gpt-4o-mini",
        (base_ns, 100, 700),
        vec![
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.provider.name", "openai"),
            attr("gen_ai.request.model", "gpt-4o-mini"),
            int("gen_ai.usage.input_tokens", input),
            int("gen_ai.usage.output_tokens", output),
            attr("gen_ai.agent.name", "helper-agent"),
            attr("gen_ai.prompt.name", "support-answer"),
            attr("gen_ai.prompt.version", version),
        ],
    )
}

/// An agent run: invoke_agent → chat, execute_tool, retrieval.
fn agent_trace(base_ns: i64) -> Vec<Value> {
    vec![
        span(
            [TRACE_ID, "00f067aa0ba902b7", ""],
            "invoke_agent helper-agent",
            (base_ns, 0, 1000),
            vec![attr("gen_ai.operation.name", "invoke_agent"), attr("gen_ai.agent.name", "helper-agent")],
        ),
        chat(TRACE_ID, "00f067aa0ba902b8", "00f067aa0ba902b7", base_ns, 1200, 300, "v1"),
        span(
            [TRACE_ID, "00f067aa0ba902b9", "00f067aa0ba902b7"],
            "execute_tool lookup_order",
            (base_ns, 710, 800),
            vec![
                attr("gen_ai.operation.name", "execute_tool"),
                attr("gen_ai.tool.name", "lookup_order"),
                attr("gen_ai.tool.call.arguments", r#"{"order":"<A&B>"}"#),
            ],
        ),
        span(
            [TRACE_ID, "00f067aa0ba902ba", "00f067aa0ba902b7"],
            "retrieval kb",
            (base_ns, 810, 900),
            vec![
                attr("gen_ai.operation.name", "retrieval"),
                attr("gen_ai.data_source.id", "kb-articles"),
                attr("gen_ai.retrieval.documents", r#"[{"id":"d1","score":0.8}]"#),
            ],
        ),
    ]
}

async fn signals_pages_show_what_was_sent(backend: Backend) {
    let Some(portal) = Portal::start(backend).await else { return };
    let base_ns = now_ns() - 5_000_000_000;
    portal.send(agent_trace(base_ns)).await;

    // The entity page links to its Signals tab.
    let entity = portal.ok("/catalog/default/component/assistant-api").await;
    assert!(entity.contains(r#"id="signals-tab" href="/catalog/default/component/assistant-api/signals""#), "{entity}");
    assert!(entity.contains(r#"id="nav-cost" href="/cost""#), "the Cost nav link");

    // The Signals tab: headline numbers, charts, top tables, traces.
    let tab = portal.ok("/catalog/default/component/assistant-api/signals").await;
    for needle in [
        r#"<li data-stat="requests"><span class="count">1</span> requests</li>"#,
        r#"<span class="count">1,200</span> input tokens"#,
        r#"<span class="count">300</span> output tokens"#,
        // 1200 × $0.15/M + 300 × $0.60/M.
        r#"<span class="count">$0.000360</span> cost"#,
        r#"<tr data-model="gpt-4o-mini">"#,
        r#"<a href="/prompts/support-answer/versions">support-answer@v1</a>"#,
        r#"id="chart-requests""#,
        r#"id="chart-latency""#,
        r#"id="chart-cost""#,
        r#"<rect class="bar s-requests""#,
        r#"<span class="badge health health-unknown">unknown</span>"#,
        &format!(r#"<a class="trace-link" href="/traces/{TRACE_ID}">invoke_agent helper-agent</a>"#),
        r#"<a href="/catalog/default/component/assistant-api/signals?range=7d" data-range="7d">7d</a>"#,
        r#"data-range="24h" aria-current="true""#,
        r#"<tr data-operation="execute_tool">"#,
    ] {
        assert!(tab.contains(needle), "Signals tab lacks {needle}:\n{tab}");
    }
    assert!(!tab.contains("signals-empty"), "data was sent, yet the empty state shows");
    let hour = portal.ok("/catalog/default/component/assistant-api/signals?range=1h").await;
    assert!(hour.contains(r#"data-range="1h" aria-current="true""#) && hour.contains("$0.000360"));

    // A bad range is a 400 page that says what is allowed.
    let (status, bad) = portal.page("/catalog/default/component/assistant-api/signals?range=2w").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("`range` must be one of 1h, 24h, 7d, 30d, not `2w`"), "{bad}");

    // A component with no data explains how to send some, with its service name.
    let quiet = portal.ok("/catalog/default/component/quiet-service/signals").await;
    assert!(quiet.contains(r#"id="signals-empty""#), "{quiet}");
    assert!(quiet.contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:"), "{quiet}");
    assert!(quiet.contains("/v1/traces") && quiet.contains("OTEL_SERVICE_NAME=quiet-svc"), "{quiet}");

    // The team's tab sees the component's calls, and links to its cost.
    let team = portal.ok("/catalog/default/group/team-ai/signals").await;
    assert!(team.contains("$0.000360") && team.contains(r#"href="/cost/teams/default/team-ai""#), "{team}");
    // The prompt's tab links to the version comparison.
    let prompt = portal.ok("/catalog/default/prompt/support-answer/signals").await;
    assert!(
        prompt.contains(r#"id="prompt-versions-link" class="button" href="/prompts/support-answer/versions""#),
        "{prompt}"
    );
    // Kinds without signals get no tab.
    let (status, _) = portal.page("/catalog/default/component/nope/signals").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The trace: totals, and the tree invoke_agent → chat, execute_tool, retrieval.
    let trace = portal.ok(&format!("/traces/{TRACE_ID}")).await;
    assert!(trace.contains(r#"<li data-stat="spans"><span class="count">4</span> spans</li>"#), "{trace}");
    assert!(trace.contains(r#"<span class="count">$0.000360</span> cost"#), "{trace}");
    let order: Vec<usize> = [
        r#"data-depth="0" data-operation="invoke_agent""#,
        r#"data-depth="1" data-operation="chat""#,
        r#"data-depth="1" data-operation="execute_tool""#,
        r#"data-depth="1" data-operation="retrieval""#,
    ]
    .iter()
    .map(|needle| trace.find(needle).unwrap_or_else(|| panic!("trace lacks {needle}:\n{trace}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "rows out of order: {order:?}");
    for needle in [
        r#"<span class="badge op op-execute_tool">execute_tool</span>"#,
        "tool <code>lookup_order</code>",
        // Arguments are escaped, inside a collapsible block.
        r#"<details class="tool-arguments"><summary>Arguments</summary><pre class="wrap">{&quot;order&quot;:&quot;&lt;A&amp;B&gt;&quot;}</pre>"#,
        "source <code>kb-articles</code>",
        r#"<li><code>d1</code> <span class="muted">score</span> 0.80</li>"#,
        "1,200 in / 300 out",
        r#"<span class="span-bar" style="margin-left: 0.0%; width: 100.0%">"#,
    ] {
        assert!(trace.contains(needle), "trace lacks {needle}:\n{trace}");
    }
    assert!(!trace.contains("<A&B>"), "tool arguments must be escaped");

    // A missing trace is a 404 that explains why; a malformed id a 400.
    let (status, missing) = portal.page("/traces/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains(r#"id="trace-missing""#) && missing.contains("traces are kept 7 days"), "{missing}");
    let (status, malformed) = portal.page("/traces/%3Cscript%3E").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(malformed.contains("&lt;script&gt;") && !malformed.contains("<script>alert"), "{malformed}");

    // Recent traces.
    let traces = portal.ok("/traces").await;
    assert!(traces.contains(&format!(r#"<tr data-trace-id="{TRACE_ID}">"#)), "{traces}");
    let filtered = portal.ok("/traces?service=someone-else").await;
    assert!(filtered.contains(r#"id="traces-empty""#), "{filtered}");

    // Team cost: the team with its cost centre, services and models.
    let cost = portal.ok("/cost").await;
    for needle in [
        r#"<tr data-team="group:default/team-ai">"#,
        r#"<a class="team-cost-link" href="/cost/teams/default/team-ai">Applied AI</a>"#,
        "<td>CC-4242</td>",
        "<code>assistant-api</code> $0.000360",
        "<code>gpt-4o-mini</code> $0.000360",
        r#"<rect class="bar s-cost""#,
        r#"<strong id="cost-total">$0.000360</strong>"#,
    ] {
        assert!(cost.contains(needle), "/cost lacks {needle}:\n{cost}");
    }
    let one = portal.ok("/cost/teams/default/team-ai").await;
    assert!(one.contains(r#"<span class="count">CC-4242</span> cost centre"#), "{one}");
    assert!(one.contains(r#"<tr><td><code>assistant-api</code></td><td class="num">1</td><td class="num">1,500</td><td class="num">$0.000360</td></tr>"#), "{one}");
    let nobody = portal.ok("/cost/teams/default/team-nobody").await;
    assert!(nobody.contains(r#"id="cost-empty""#), "{nobody}");

    // A firing alert rule shows on the tab: the health badge, the rule's
    // name (escaped), severity and what it saw.
    let rule = json!({"id": "assistant-busy", "name": "Assistant <busy> & co", "entity": "component:default/assistant-api",
                      "signal": "requests", "threshold": 0, "window": "1h", "severity": "degraded"});
    let (status, body) = portal.server.post("/api/signals/alerts/rules", &rule).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = portal.server.post("/api/signals/alerts/evaluate", &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tab = portal.ok("/catalog/default/component/assistant-api/signals").await;
    for needle in [
        r#"<span class="badge health health-degraded">degraded</span>"#,
        r#"<section id="firing-rules""#,
        r#"<li data-rule="assistant-busy"><strong>Assistant &lt;busy&gt; &amp; co</strong> <span class="badge severity severity-degraded">degraded</span>"#,
        "requests = 1.0000 over 1h (&gt; 0)",
    ] {
        assert!(tab.contains(needle), "Signals tab lacks {needle}:\n{tab}");
    }
    assert!(!tab.contains("<busy>"), "the rule's name must be escaped");
    let quiet = portal.ok("/catalog/default/component/quiet-service/signals").await;
    assert!(quiet.contains("health-unknown") && !quiet.contains("firing-rules"), "{quiet}");
}

async fn prompt_versions_mark_significant_differences(backend: Backend) {
    let Some(portal) = Portal::start(backend).await else { return };
    let base_ns = now_ns() - 60_000_000_000;
    // v1: eight short calls; v2: five calls with about three times the input.
    let mut spans = Vec::new();
    for i in 0..8 {
        let trace = format!("{:032x}", 0xa000 + i);
        spans.push(chat(&trace, &format!("{:016x}", 0xa000 + i), "", base_ns + i * 1_000_000, 1000 + i * 7, 200, "v1"));
    }
    for i in 0..5 {
        let trace = format!("{:032x}", 0xb000 + i);
        spans.push(chat(
            &trace,
            &format!("{:016x}", 0xb000 + i),
            "",
            base_ns + i * 1_000_000,
            3000 + i * 11,
            200,
            "v2",
        ));
    }
    portal.send(spans).await;
    let page = portal.ok("/prompts/support-answer/versions").await;
    for needle in [
        r#"<strong id="baseline-version">v1</strong>"#,
        r#"<tr data-version="v1" class="baseline">"#,
        r#"<tr data-version="v2">"#,
        r#"<td class="num">8</td>"#,
        r#"<td class="num">5</td>"#,
        r#"href="/catalog/default/prompt/support-answer""#,
    ] {
        assert!(page.contains(needle), "versions page lacks {needle}:\n{page}");
    }
    let v2 = &page[page.find(r#"<tr data-version="v2">"#).unwrap_or(0)..];
    let tokens_cell = &v2[v2.find(r#"data-metric="tokens""#).unwrap_or(0)..];
    let tokens_cell = &tokens_cell[..tokens_cell.find("</td>").unwrap_or(tokens_cell.len())];
    assert!(
        tokens_cell.contains(r#"<span class="sig sig-higher""#) && tokens_cell.contains("▲ significant (p"),
        "{tokens_cell}"
    );
    let (status, bad) = portal.page("/prompts/support-answer/versions?alpha=7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
}

async fn cost_anomalies_are_explained(backend: Backend) {
    let Some(portal) = Portal::start(backend).await else { return };
    let now = now_ns();
    // Only whole hours are judged, so the spike is in the previous hour.
    // Same hour on three previous days: one call of a million tokens each.
    // That hour: one call of twenty million tokens, a unit-usage jump.
    let now = now - 3_600_000_000_000;
    let mut spans = Vec::new();
    for day in 1..=3 {
        let at = now - day * 86_400 * 1_000_000_000 - 1_000_000_000;
        spans.push(chat(
            &format!("{:032x}", 0xc000 + day),
            &format!("{:016x}", 0xc000 + day),
            "",
            at,
            1_000_000,
            1000,
            "v1",
        ));
    }
    spans.push(chat(
        &format!("{:032x}", 0xd000),
        &format!("{:016x}", 0xd000),
        "",
        now - 1_000_000_000,
        20_000_000,
        1000,
        "v1",
    ));
    portal.send(spans).await;
    let page = portal.ok("/cost/anomalies").await;
    for needle in [
        r#"<li class="anomaly kind-misconfiguration" id="anomaly-1" data-kind="misconfiguration">"#,
        r#"<span class="badge anomaly-kind kind-misconfiguration">misconfiguration</span>"#,
        "<code>assistant-api</code>",
        r#"<a class="entity-link owner-link" href="/catalog/default/group/team-ai">Applied AI</a>"#,
        r#"<dt>Actual</dt><dd class="actual">$3.00</dd>"#,
        r#"<dt>Expected</dt><dd class="expected">$0.1506"#,
        r#"<td>Tokens per request</td><td class="num">20,001,000</td><td class="num">1,001,000</td>"#,
        r#"<li data-effect="unit">"#,
        r#"class="effects-bar""#,
    ] {
        assert!(page.contains(needle), "anomalies page lacks {needle}:\n{page}");
    }
    let summary = &page[page.find(r#"<p class="anomaly-summary">"#).expect("a summary")..];
    assert!(summary.len() > 40 && !summary.starts_with(r#"<p class="anomaly-summary"></p>"#), "{summary}");
    let (status, _) = portal.page("/cost/anomalies?range=1h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "1h is not offered for anomalies");
}
