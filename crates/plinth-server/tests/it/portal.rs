//! The web portal over real loopback HTTP, in-process, on SQLite: every page
//! answers with the expected content, unknown entities get a 404 with
//! suggestions, user data is escaped, the explorer narrows by facet, the
//! relation graph draws at most its cap and groups the rest, and the
//! live-update stream delivers a change after a refresh. With the policy
//! service on (the shipped policies over the demo catalogue), entity pages
//! show catalog-point violations and scorecards, group pages the team
//! roll-up, and `/policies` the loaded policies and load problems. With
//! golden paths on, `/create` lists templates, renders their forms and
//! shows runs.
//!
//! Servers come from `plinth_testkit::TestServer`.

use plinth_app::Caller;
use plinth_testkit::{wait_until, workspace_root, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const FIXTURE: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-pay
  title: Payments Team
spec:
  type: team
  parent: engineering
  children: []
  members: [alice]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: engineering
spec:
  type: department
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alice
spec:
  memberOf: [team-pay]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-shop
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  title: Checkout Service
  description: Turns baskets into orders.
  tags: [java, payments]
  links:
    - url: https://example.com/runbook
      title: Runbook
spec:
  type: service
  lifecycle: production
  owner: team-shop
  dependsOn: [component:payments, component:ghost-service]
  consumesApis: [payments-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  title: "<script>alert('pwned')</script> Payments"
  description: "Moves money <b>safely</b> & \"quickly\""
spec:
  type: service
  lifecycle: production
  owner: team-pay
  providesApis: [payments-api]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: payments-api
  description: Charge cards.
spec:
  type: openapi
  lifecycle: production
  owner: team-pay
  definition: |
    # the payments API
    openapi: 3.0.0
    info:
      title: Payments
      version: "1"
    paths:
      /charges:
        post:
          summary: Create a charge
        get:
          summary: List charges
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: fraud-model
spec:
  type: classifier
  owner: team-pay
  lifecycle: production
  riskTier: high
  dataClassification: confidential
"#;

/// A server with [`FIXTURE`] registered; returns it and the fixture file.
async fn start_portal() -> (TestServer, PathBuf) {
    let server = TestServer::start(Backend::Sqlite).await.expect("a SQLite server");
    let file = server.write("catalog-info.yaml", FIXTURE);
    server.register_new(&file).await;
    (server, file)
}

/// A page that must answer 200.
async fn ok(server: &TestServer, path: &str) -> String {
    let (status, body) = server.text(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_lists_kinds_recent_changes_and_errors() {
    let (portal, _file) = start_portal().await;
    let home = ok(&portal, "/").await;
    assert!(home.contains(r#"<form id="search-form" class="big-search" role="search" action="/search" method="get">"#));
    assert!(home.contains(r#"id="search-input""#));
    assert!(home.contains(r#"id="kind-totals""#));
    assert!(home.contains(r#"href="/catalog?kind=Component""#), "{home}");
    assert!(home.contains(r#"<span class="count">2</span> <span class="kind">Component</span>"#), "{home}");
    assert!(home.contains(r#"id="recent-changes""#));
    assert!(home.contains(r#"href="/catalog/default/component/checkout""#));
    assert!(home.contains(r#"id="ingestion-errors""#));
    assert!(home.contains("/assets/portal.css?v="));
    let css = portal.http.get(portal.url("/assets/portal.css?v=1")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    let js = portal.http.get(portal.url("/assets/portal.js?v=1")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    let favicon = portal.http.get(portal.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(favicon.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_filters_sorts_and_pages() {
    let (portal, _file) = start_portal().await;
    let all = ok(&portal, "/catalog").await;
    assert!(all.contains(r#"<table id="entities">"#));
    assert!(all.contains(r#"id="result-count""#));
    assert!(all.contains("of 8 entities"), "{all}");
    for facet in ["kind", "type", "owner", "lifecycle", "tag", "namespace"] {
        assert!(all.contains(&format!(r#"<section id="facet-{facet}""#)), "facet {facet}");
    }

    let owned = ok(&portal, "/catalog?owner=team-pay").await;
    assert!(owned.contains("of 3 entities"), "{owned}");
    assert_eq!(count(&owned, r#"<td class="name"><a class="entity-link""#), 3);
    assert!(owned.contains(r#"aria-current="true""#));
    assert!(!owned.contains(r#"href="/catalog/default/component/checkout""#));

    // OR within a facet, AND across facets.
    let either = ok(&portal, "/catalog?owner=team-pay&owner=team-shop&kind=Component").await;
    assert!(either.contains("of 2 entities"), "{either}");
    let text = ok(&portal, "/catalog?q=checkout").await;
    assert!(text.contains("of 1 entities"), "{text}");
    let title = ok(&portal, "/catalog?q=CHECKOUT%20serv").await;
    assert!(title.contains("of 1 entities"), "matches titles case-insensitively: {title}");
    let sorted = ok(&portal, "/catalog?kind=component&sort=-name").await;
    let checkout = sorted.find("/catalog/default/component/checkout").unwrap();
    let payments = sorted.find("/catalog/default/component/payments").unwrap();
    assert!(payments < checkout, "descending name order");
    let none = ok(&portal, "/catalog?owner=nobody").await;
    assert!(none.contains(r#"id="empty-state""#));
    assert!(!none.contains("next-page"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_pages_show_facts_relations_and_panels() {
    let (portal, _file) = start_portal().await;
    let checkout = ok(&portal, "/catalog/default/component/checkout").await;
    assert!(checkout.contains(r#"data-entity-ref="component:default/checkout""#));
    assert!(checkout.contains(r#"<h1 id="entity-title">Checkout Service</h1>"#));
    assert!(checkout.contains(r#"<dd id="entity-kind">Component</dd>"#));
    assert!(checkout.contains(r#"id="entity-owner"><a class="entity-link" href="/catalog/default/group/team-shop">"#));
    assert!(checkout.contains(r#"<section data-relation="dependsOn">"#));
    assert!(checkout.contains("not in catalogue"), "dangling target marked");
    assert!(checkout.contains(r#"id="graph-link" class="button" href="/catalog/default/component/checkout/graph""#));
    assert!(checkout.contains(r#"href="https://example.com/runbook""#));
    assert!(checkout.contains(r#"id="source""#));
    assert!(checkout.contains(r#"id="entity-errors""#));
    // Case-insensitive lookups.
    ok(&portal, "/catalog/DEFAULT/Component/CHECKOUT").await;

    let payments = ok(&portal, "/catalog/default/component/payments").await;
    assert!(payments.contains(r#"<span id="impact-count">2</span>"#), "checkout and payments-api depend on payments");

    let api = ok(&portal, "/catalog/default/api/payments-api").await;
    assert!(api.contains(r#"id="api-definition""#));
    assert!(api.contains(r#"<span class="tok-c"># the payments API</span>"#), "{api}");
    assert!(api.contains(r#"<span class="tok-k">openapi</span>"#));
    assert!(api.contains(r#"<table id="api-operations">"#));
    assert!(api.contains("Create a charge") && api.contains("<code>/charges</code>"));

    let group = ok(&portal, "/catalog/default/group/team-pay").await;
    assert!(group.contains(r#"id="group-members""#) && group.contains("/catalog/default/user/alice"));
    assert!(group.contains(r#"id="group-owned""#) && group.contains("/catalog/default/api/payments-api"));
    assert!(group.contains(r#"<section data-relation="ownerOf">"#));

    let model = ok(&portal, "/catalog/default/model/fraud-model").await;
    assert!(model.contains(r#"id="ai-governance""#));
    assert!(model.contains(r#"<dd id="ai-risk-tier">high</dd>"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_data_is_escaped() {
    let (portal, _file) = start_portal().await;
    let payments = ok(&portal, "/catalog/default/component/payments").await;
    assert!(!payments.contains("<script>alert"), "title must be escaped");
    assert!(
        payments.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;&#x2f;script&gt;")
            || payments.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;")
    );
    assert!(payments.contains("Moves money &lt;b&gt;safely&lt;/b&gt; &amp; &quot;quickly&quot;"), "{payments}");
    for path in ["/catalog", "/search?q=payments", "/catalog/default/component/checkout"] {
        let page = ok(&portal, path).await;
        assert!(!page.contains("<script>alert"), "{path}");
        assert!(!page.contains("<b>safely"), "{path}");
    }
    let reflected = ok(&portal, "/search?q=%3Cscript%3Ex").await;
    assert!(!reflected.contains("<script>x"));
    let (status, missing) = portal.text("/catalog/default/component/%3Cimg%20src%3Dx%3E").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!missing.contains("<img src=x>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_page_draws_a_bounded_svg() {
    let (portal, _file) = start_portal().await;
    let graph = ok(&portal, "/catalog/default/component/payments/graph").await;
    // A group (not an image): its nodes are links a keyboard reaches.
    assert!(graph.contains(r#"<svg id="graph" role="group""#));
    assert!(graph.contains(r#"<span id="impact-count">2</span>"#));
    assert!(graph.contains(r#"id="depth-control""#));
    for direction in ["upstream", "downstream", "both"] {
        assert!(graph.contains(&format!(r#"id="direction-{direction}""#)));
    }
    assert!(graph.contains(r#"class="node k-component" href="/catalog/default/component/checkout""#), "{graph}");
    let upstream = ok(&portal, "/catalog/default/component/payments/graph?depth=3&direction=upstream").await;
    assert!(upstream.contains("/catalog/default/component/checkout"));
    assert!(!upstream.contains(r#"href="/catalog/default/group/team-pay""#), "ownership is not a dependency");
    let downstream = ok(&portal, "/catalog/default/component/checkout/graph?depth=1&direction=downstream").await;
    assert!(downstream.contains(r#"href="/catalog/default/component/payments""#));
    assert!(downstream.contains("ghost-service"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_page_ranks_and_counts() {
    let (portal, _file) = start_portal().await;
    let results = ok(&portal, "/search?q=checkout").await;
    assert!(results.contains(r#"id="search-results""#));
    assert!(results.contains(r#"<li class="result">"#));
    assert!(results.contains(r#"<a class="entity-link" href="/catalog/default/component/checkout">"#));
    assert!(results.contains(r#"id="facets""#));
    assert!(results.contains("/catalog?kind=Component&amp;q=checkout"), "{results}");
    let empty = ok(&portal, "/search?q=zzzznothing").await;
    assert!(empty.contains(r#"id="empty-state""#));
    ok(&portal, "/search").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pages_are_404_with_suggestions() {
    let (portal, _file) = start_portal().await;
    let (status, body) = portal.text("/catalog/default/component/checkout-service").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(r#"id="suggestions""#));
    assert!(body.contains(r#"href="/catalog/default/component/checkout""#), "{body}");
    let (status, body) = portal.text("/catalog/default/component/nothing-like-it/graph").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(r#"id="suggestions""#));
    let (status, body) = portal.text("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Not found"));
    let (status, _) = portal.text("/api/catalog/no-such-endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_delivers_changes() {
    let (portal, file) = start_portal().await;
    let mut response = portal
        .http
        .get(portal.url("/api/catalog/events?entityRef=component:default/checkout"))
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    std::fs::write(&file, FIXTURE.replace("Turns baskets into orders.", "Turns baskets into paid orders.")).unwrap();
    let refreshed = portal
        .http
        .post(portal.url("/api/catalog/refresh"))
        .json(&json!({"entityRef": "component:default/checkout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("an event within 60 s");
        received.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("stream open")));
    }
    let data = received.lines().find_map(|l| l.strip_prefix("data:")).expect("a data line");
    let event: Value = serde_json::from_str(data.trim()).unwrap();
    assert_eq!(event["entityRef"], json!("component:default/checkout"));
    assert_eq!(event["op"], json!("upsert"));
    assert!(event["seq"].as_i64().unwrap() > 0);
    let page = ok(&portal, "/catalog/default/component/checkout").await;
    assert!(page.contains("Turns baskets into paid orders."));
    portal.stop().await;
}

/// The graph page draws at most `MAX_DRAWN` = 60 nodes (the entity
/// included) and at most `MAX_PER_COLUMN` = 14 per column
/// (`src/portal/graph.rs`); the rest collapse into one "+N more <kind>"
/// node per column and kind.
///
/// The fixture: `hub` with 20 direct dependents (u1-*), 20 more depending
/// on u1-00 (u2-*) and 20 more on u2-00 (u3-*); `hub` depends on 20
/// components (d1-*), and d1-00 on 20 more (d2-*). Each layer has its own
/// owning group. Within 3 hops in both directions:
/// - column −1: u1-* and g-hub = 21; column +1: d1-* = 20;
/// - column −2: u2-* and g-u1 = 21; column +2: d2-* and g-d1 = 21;
/// - column −3: u3-* and g-u2 = 21; column +3: g-d2 = 1;
///
/// so 105 entities are reached. Drawn: the hub, 14 in each of columns ±1
/// and ±2 (57), then the 3 nearest of the 22 at 3 hops (60, the cap). The
/// other 105 − 59 = 46 are grouped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_of_a_hub_draws_exactly_the_cap_and_groups_the_rest() {
    const MAX_DRAWN: usize = 60;
    const MAX_PER_COLUMN: usize = 14;
    let server = TestServer::start(Backend::Sqlite).await.expect("a SQLite server");
    let mut documents = Vec::new();
    for group in ["g-hub", "g-u1", "g-u2", "g-u3", "g-d1", "g-d2"] {
        documents.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {group}\nspec:\n  type: team\n  children: []\n"
        ));
    }
    let component = |name: &str, owner: &str, depends_on: &[String]| {
        let depends_on =
            if depends_on.is_empty() { String::new() } else { format!("  dependsOn: [{}]\n", depends_on.join(", ")) };
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n{depends_on}"
        )
    };
    let layer = |prefix: &str| (0..20).map(|i| format!("{prefix}-{i:02}")).collect::<Vec<_>>();
    let refs = |names: &[String]| names.iter().map(|n| format!("component:{n}")).collect::<Vec<_>>();
    let (u1, u2, u3, d1, d2) = (layer("u1"), layer("u2"), layer("u3"), layer("d1"), layer("d2"));
    documents.push(component("hub", "g-hub", &refs(&d1)));
    for (names, owner, target) in [(&u1, "g-u1", "hub"), (&u2, "g-u2", "u1-00"), (&u3, "g-u3", "u2-00")] {
        for name in names.iter() {
            documents.push(component(name, owner, &[format!("component:{target}")]));
        }
    }
    for name in &d1 {
        let depends_on = if name == "d1-00" { refs(&d2) } else { Vec::new() };
        documents.push(component(name, "g-d1", &depends_on));
    }
    for name in &d2 {
        documents.push(component(name, "g-d2", &[]));
    }
    assert_eq!(documents.len(), 6 + 1 + 5 * 20);
    let file = server.write("hub/catalog-info.yaml", &documents.join("---\n"));
    let registered = server.register_new(&file).await;
    let location = registered["location"]["id"].as_str().unwrap_or_else(|| panic!("{registered}"));
    assert_eq!(server.errors_of(location).await, Vec::<Value>::new(), "the fixture ingests cleanly");

    let graph = ok(&server, "/catalog/default/component/hub/graph?depth=3&direction=both").await;
    // Everything transitively depending on the hub: u1-*, u2-*, u3-*.
    assert!(graph.contains(r#"<span id="impact-count">60</span>"#), "{graph}");
    assert!(
        graph.contains("105 related entities within 3 hops; the 59 nearest are drawn, the rest are grouped."),
        "{graph}"
    );
    assert!(!graph.contains("walk stopped early"), "{graph}");
    let svg = &graph[graph.find(r#"<svg id="graph""#).unwrap()..graph.find("</svg>").unwrap()];
    // Exactly the cap drawn, the hub among them, each a link to its page.
    assert_eq!(count(svg, r#"<a class="node "#), MAX_DRAWN, "{svg}");
    assert_eq!(count(svg, r#"<a class="node k-component root" href="/catalog/default/component/hub">"#), 1);
    assert!(!svg.contains(" missing\""), "every node is catalogued: {svg}");
    // Per column (x = 20 + 240 × column index): the hub alone in the
    // middle, 14 in each of the four inner columns, 3 in the outer two.
    let mut columns = std::collections::BTreeMap::<i64, usize>::new();
    for node in svg.split(r#"<a class="node "#).skip(1) {
        let x = node.split(r#"<rect x=""#).nth(1).and_then(|r| r.split('"').next()).expect("a node rect");
        *columns.entry(x.parse().expect("x")).or_default() += 1;
    }
    let per_column: Vec<usize> = columns.values().copied().collect();
    assert_eq!(per_column.len(), 7, "columns −3…+3: {columns:?}");
    assert_eq!(&per_column[1..3], &[MAX_PER_COLUMN, MAX_PER_COLUMN], "{columns:?}");
    assert_eq!(per_column[3], 1, "the hub alone in its column: {columns:?}");
    assert_eq!(&per_column[4..6], &[MAX_PER_COLUMN, MAX_PER_COLUMN], "{columns:?}");
    assert_eq!(per_column[0] + per_column[6], 3, "the cap reached at 3 hops: {columns:?}");
    // The rest: "+N more <kind>" nodes, one per column and kind, 46 in all.
    let mut grouped = 0;
    for node in svg.split(r#" collapsed"><title>"#).skip(1) {
        let title = &node[..node.find("</title>").unwrap()];
        let label = node.split("\">").nth(1).and_then(|t| t.split("</text>").next()).expect("a label");
        let (n, kind) =
            label.strip_prefix('+').and_then(|l| l.split_once(" more ")).unwrap_or_else(|| panic!("{label}"));
        let n: usize = n.parse().unwrap_or_else(|_| panic!("an exact count (walk not truncated): {label}"));
        assert!(kind == "Component" || kind == "Group", "{label}");
        assert_eq!(title, format!("{n} more {kind} entities not drawn"));
        grouped += n;
    }
    assert_eq!(grouped, 105 - (MAX_DRAWN - 1), "{svg}");
    server.stop().await;
}

// ---------------------------------------------------------------- policy

/// A server with the policy service over `sources`, serving the catalogue
/// registered from `locations`, once the governance view has evaluated
/// every entity. The catalogue is ingested first; the policy service then
/// starts on it (a restart on the same store), so its first full
/// evaluation already sees every entity and its context.
async fn start_governed(sources: Vec<String>, locations: Vec<PathBuf>) -> TestServer {
    let ingested = TestServer::start_with(Backend::Sqlite, Options::default().with_locations(locations))
        .await
        .expect("a SQLite server");
    let server = ingested.restart(Options::policies(sources)).await;
    let caller = Caller::local();
    wait_until(Duration::from_secs(120), "the governance view evaluating every entity", || async {
        let status = server.platform.policy().status(&caller).expect("the policy service runs");
        let total = server.catalog.read().len() as usize;
        status.complete && total > 0 && status.evaluated == total
    })
    .await;
    server
}

fn shipped_policies() -> String {
    workspace_root().join("policies").to_string_lossy().into_owned()
}

fn entity_ref(text: &str) -> plinth_model::EntityRef {
    plinth_model::parse_ref_lenient(text, None).expect("an entity ref")
}

/// The part of `page` from the element with `id` to the end of its section.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>\n</section>").or_else(|| rest.find("\n</section>")).unwrap_or(rest.len())]
}

/// The `<section …data-scorecard="id">` in `html`, up to its end.
fn scorecard<'a>(html: &'a str, class: &str, id: &str) -> &'a str {
    let opening = format!(r#"<section class="{class}" data-scorecard="{id}">"#);
    let at = html.find(&opening).unwrap_or_else(|| panic!("no {class} {id} in {html}"));
    let rest = &html[at..];
    &rest[..rest.find("</section>").map_or(rest.len(), |end| end + "</section>".len())]
}

/// One row of a roll-up's check table.
fn check_row<'a>(card: &'a str, check: &str) -> &'a str {
    let at = card.find(&format!(r#"<tr data-check="{check}">"#)).unwrap_or_else(|| panic!("no row {check}: {card}"));
    &card[at..at + card[at..].find("</tr>").unwrap_or(card.len() - at)]
}

/// The AI-governance checks of `agent:default/support-copilot-agent`,
/// worked out from `examples/demo/customer-support/catalog-info.yaml` and
/// `policies/scorecards/ai_governance.rego`: riskTier `limited` is one of
/// minimal/limited/high (bronze, pass); dataClassification `confidential`
/// is in `classification_order` (bronze, pass); its four models
/// (anthropic-claude-sonnet, anthropic-claude-haiku, llama-3-1-8b-support,
/// bge-m3-embedding) all set `spec.modelCard` (silver, pass); it has no
/// `plinth.io/audit-log: enabled` annotation (silver, fail) and neither a
/// `plinth.io/evaluations` annotation nor a link titled "evaluation…" (gold,
/// fail). Bronze passes and silver does not: level bronze, 3/5 checks.
const AGENT_CHECKS: [(&str, bool, Option<&str>); 5] = [
    ("risk_tier", true, None),
    ("data_classification", true, None),
    ("model_card", true, None),
    ("audit_logging", false, Some("audit logging is not enabled: set the annotation plinth.io/audit-log: enabled")),
    (
        "evaluations",
        false,
        Some("no evaluation results: set the annotation plinth.io/evaluations or add a link titled Evaluations"),
    ),
];

/// Team `group:default/team-applied-ai` (the agent's owner) in the demo
/// catalogue, check by check. Per scorecard: (id, entities, score shown,
/// [(level, entities)], [(check, entities passing)]).
///
/// AI governance (kinds model and agent): the team owns 6 models
/// (llama-3-1-8b-support, recs-ranking-model, ticket-routing-classifier,
/// churn-prediction-model, review-moderation-classifier,
/// fraud-scoring-model) and 3 agents (support-copilot-agent,
/// shopping-assistant-agent, fraud-investigation-agent) = 9. Every one has
/// a valid riskTier and dataClassification and a model card (models: their
/// own `spec.modelCard`; agents: every model they use has one), and none
/// has audit logging or evaluations: 3 of 5 checks each, all at bronze.
/// Score = mean of 3/5 over 9 entities = 60.0 %.
///
/// Production readiness (kind component): the team owns 10 components
/// (agent-runtime, prompt-registry, guardrails-service, tool-broker,
/// agent-trace-viewer, rag-ingestion-worker, ticket-router,
/// churn-scoring-job, fraud-scoring-service, review-moderation-service).
/// All have an existing owner group, a lifecycle, TechDocs, a Runbook link
/// and a PagerDuty service id; the API check passes for the website
/// agent-trace-viewer and the services providing APIs (agent-runtime,
/// fraud-scoring-service) and fails for the 7 other services, which
/// provide none. So 3 gold (6/6) and 7 silver (5/6); score =
/// (3 × 6/6 + 7 × 5/6) / 10 = 0.8833… → 88.3 %.
#[allow(clippy::type_complexity)]
const TEAM_ROLLUPS: [(&str, usize, &str, &[(&str, usize)], &[(&str, usize)]); 2] = [
    (
        "ai-governance",
        9,
        "60.0",
        &[("bronze", 9)],
        &[("risk_tier", 9), ("data_classification", 9), ("model_card", 9), ("audit_logging", 0), ("evaluations", 0)],
    ),
    (
        "production-readiness",
        10,
        "88.3",
        &[("silver", 7), ("gold", 3)],
        &[("owner", 10), ("lifecycle", 10), ("docs", 10), ("runbook", 10), ("on_call", 10), ("api_definitions", 3)],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_pages_show_policy_results_scorecards_and_team_rollups() {
    let root = workspace_root();
    let governed = start_governed(vec![shipped_policies()], vec![root.join("examples/demo/catalog-info.yaml")]).await;
    let caller = Caller::local();

    // An agent without `plinth.io/tracing: enabled` is denied by PL-AGT-003.
    let agent = ok(&governed, "/catalog/default/agent/support-copilot-agent").await;
    let panel = section(&agent, "policy-panel");
    assert!(panel.contains(r#"data-policy-state="evaluated""#), "{panel}");
    assert!(panel.contains("Policy &amp; scorecards"));
    assert!(
        panel.contains(r#"<span id="policy-result"><span class="badge outcome outcome-deny">deny</span>"#),
        "{panel}"
    );
    assert!(panel.contains(r#"id="policy-violations""#));
    let violation = panel.find(r#"data-policy-id="PL-AGT-003""#).expect("PL-AGT-003 listed");
    let violation = &panel[violation..panel[violation..].find("\n  </li>").map_or(panel.len(), |e| violation + e)];
    assert!(panel.contains(r#"<li class="violation effect-deny" data-policy-id="PL-AGT-003">"#), "{panel}");
    assert!(violation.contains(r#"<code class="policy-id">PL-AGT-003</code>"#), "{violation}");
    assert!(violation.contains(r#"<span class="badge severity severity-high">high</span>"#), "{violation}");
    assert!(violation.contains("does not enable tracing"), "message: {violation}");
    assert!(violation.contains("Agent decision traces"), "rationale: {violation}");
    assert!(violation.contains("<code>EU-AI-Act-Art12</code>"), "controls: {violation}");
    assert!(violation.contains("agent.rego:"), "file:line: {violation}");
    // The agent's scorecards, with the level reached and each check (see
    // AGENT_CHECKS for the arithmetic).
    let cards = section(&agent, "policy-scorecards");
    assert!(cards.contains(r#"<section class="scorecard" data-scorecard=""#), "{cards}");
    assert!(cards.contains(r#"class="badge level level-"#), "{cards}");
    assert!(cards.contains(r#"<li class="check fail""#) || cards.contains(r#"<li class="check pass""#), "{cards}");
    assert_eq!(count(cards, r#"<section class="scorecard" data-scorecard=""#), 1, "one scorecard applies: {cards}");
    let card = scorecard(cards, "scorecard", "ai-governance");
    assert!(card.contains(r#"<span class="badge level level-bronze">bronze</span>"#), "level bronze: {card}");
    assert!(card.contains(r#"<span class="count">3/5 checks</span>"#), "{card}");
    for (check, passed, reason) in AGENT_CHECKS {
        let class = if passed { "pass" } else { "fail" };
        assert!(card.contains(&format!(r#"<li class="check {class}" data-check="{check}">"#)), "{check}: {card}");
        if let Some(reason) = reason {
            assert!(card.contains(reason), "reason {reason:?} shown: {card}");
        }
    }
    assert!(governed.policy().view().get("agent:default/support-copilot-agent").is_some(), "in the view");
    // The use case says the same as the page.
    let governance = governed
        .platform
        .policy()
        .entity(&caller, &entity_ref("agent:default/support-copilot-agent"))
        .expect("evaluated");
    assert_eq!(governance.scorecards.len(), 1);
    let result = &governance.scorecards[0];
    assert_eq!((result.scorecard.as_str(), result.level.as_deref()), ("ai-governance", Some("bronze")));
    assert_eq!((result.passed, result.total), (3, 5));
    let checks: Vec<(&str, bool)> = result.checks.iter().map(|c| (c.id.as_str(), c.passed)).collect();
    assert_eq!(checks, AGENT_CHECKS.iter().map(|(id, passed, _)| (*id, *passed)).collect::<Vec<_>>());
    assert_eq!(governance.owner.as_deref(), Some("group:default/team-applied-ai"));

    // An entity that reaches the top level shows its badge:
    // component:default/agent-runtime has its owner, a lifecycle, TechDocs
    // (bronze), a Runbook link and a PagerDuty id (silver), and is a
    // service providing assistant-api (gold): production readiness gold.
    let leveled_page = ok(&governed, "/catalog/default/component/agent-runtime").await;
    let cards = section(&leveled_page, "policy-scorecards");
    let card = scorecard(cards, "scorecard", "production-readiness");
    assert!(card.contains(r#"<span class="badge level level-gold">gold</span>"#), "agent-runtime at gold: {card}");
    assert!(card.contains(r#"<span class="count">6/6 checks</span>"#), "{card}");
    assert!(!card.contains(r#"<li class="check fail""#), "{card}");

    // The owning team's page rolls its scorecards up (see TEAM_ROLLUPS).
    let team = ok(&governed, "/catalog/default/group/team-applied-ai").await;
    let team_cards = section(&team, "team-scorecards");
    assert_eq!(count(team_cards, r#"<section class="rollup""#), TEAM_ROLLUPS.len(), "{team_cards}");
    for (id, entities, score, levels, checks) in TEAM_ROLLUPS {
        let card = scorecard(team_cards, "rollup", id);
        assert!(card.contains(&format!("score <strong>{score}</strong>%")), "{id} score {score}: {card}");
        assert!(card.contains(&format!("{entities} entities")), "{id}: {card}");
        for (check, passed) in checks {
            let row = check_row(card, check);
            assert!(row.contains(&format!(r#"<span class="count">{passed}/{entities}</span>"#)), "{id} {check}: {row}");
        }
        assert_eq!(count(card, "<tr data-check="), checks.len(), "{id}: {card}");
        for (level, entities_at) in levels.iter() {
            let at =
                card.find(&format!(r#"<li data-level="{level}">"#)).unwrap_or_else(|| panic!("{id} {level}: {card}"));
            let item = &card[at..at + card[at..].find("</li>").unwrap()];
            assert!(item.contains(&format!(r#"<span class="count">{entities_at}</span>"#)), "{id} {level}: {item}");
        }
        assert_eq!(count(card, "<li data-level="), levels.len(), "{id}: only the levels reached: {card}");
    }

    // The nav links the policies page, which counts outcomes: every entity
    // of the catalogue once.
    assert!(agent.contains(r#"<a id="nav-policies" href="/policies">Policies</a>"#));
    let policies = ok(&governed, "/policies").await;
    let outcomes = governed.platform.policy().outcomes(&caller).unwrap();
    assert_eq!(outcomes.values().sum::<usize>(), governed.catalog.read().len() as usize);
    assert!(outcomes.get("deny").is_some_and(|n| *n > 0), "the demo has denials: {outcomes:?}");
    for (result, count) in &outcomes {
        assert!(
            policies.contains(&format!(
                r#"<li data-result="{result}"><span class="count">{count}</span> <span class="badge outcome outcome-{result}">"#
            )),
            "{result}: {count}"
        );
    }
    assert!(policies.contains(r#"<a id="nav-policies" href="/policies" aria-current="page">"#));
}

const BROKEN_POLICY: &str = "package plinth.broken\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := \n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_page_lists_rules_scorecards_waivers_and_load_problems() {
    let scratch = tempfile::TempDir::new().expect("temp dir");
    let broken_dir = scratch.path().join("extra");
    std::fs::create_dir_all(&broken_dir).unwrap();
    std::fs::write(broken_dir.join("broken.rego"), BROKEN_POLICY).unwrap();
    let fixture = scratch.path().join("catalog-info.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let governed =
        start_governed(vec![shipped_policies(), broken_dir.to_string_lossy().into_owned()], vec![fixture]).await;
    let caller = Caller::local();
    let (waiver_status, waiver_body) = governed
        .post(
            "/api/policy/waivers",
            &json!({
                "entity": "component:default/checkout",
                "rule": "PL-BASE-001",
                "owner": "group:default/team-shop",
                "reason": "Legacy image until Q3 <migration>",
                "expiresAt": (time::OffsetDateTime::now_utc() + time::Duration::days(30))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
            }),
        )
        .await;

    let page = ok(&governed, "/policies").await;
    // Load problems first, in red, with file:line and the message.
    let problems = section(&page, "load-problems");
    assert!(problems.contains(r#"id="load-problems" aria-labelledby="load-problems-heading" class="problems">"#));
    assert!(problems.contains("fails closed"), "{problems}");
    let set = governed.platform.policy().policies(&caller).expect("the policy service runs");
    let problem = set.problems.iter().find(|p| p.file.contains("broken.rego")).expect("a load problem");
    let location = match problem.line {
        Some(line) => format!("{}:{line}", problem.file),
        None => problem.file.clone(),
    };
    assert!(problem.line.is_some(), "the problem has a line: {problem:?}");
    assert!(problems.contains(&format!("<td><code>{location}</code></td>")), "{location}: {problems}");
    assert!(page.find(r#"id="load-problems""#) < page.find(r#"id="policy-list""#), "problems come first");

    // Policies by profile, with their rules.
    let list = section(&page, "policy-list");
    assert!(list.contains(r#"<section id="profile-baseline" class="profile" data-profile="baseline">"#), "{list}");
    let at = list.find(r#"<tr data-policy-id="PL-BASE-001">"#).expect("PL-BASE-001 listed");
    let row = &list[at..at + list[at..].find("</tr>").unwrap()];
    assert!(row.contains(r#"<code class="policy-id">PL-BASE-001</code>"#), "{row}");
    assert!(row.contains("containers.rego:"), "file:line: {row}");
    assert!(row.contains(r#"<span class="badge enforcement-enforce">enforce</span>"#), "{row}");
    assert!(row.contains(r#"<span class="badge severity severity-"#), "{row}");
    assert!(row.contains("<ul class=\"controls\"><li><code>"), "controls: {row}");
    assert!(list.contains(r#"data-policy-id="PL-AGT-003""#));
    for summary in &set.policies {
        assert!(list.contains(&format!(r#"data-package="{}""#, summary.package)), "{}", summary.package);
    }

    // Scorecard definitions with their checks: the two shipped scorecards.
    let cards = section(&page, "scorecard-definitions");
    let ids: Vec<&str> = set.scorecards.iter().map(|card| card.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"ai-governance") && ids.contains(&"production-readiness"), "{ids:?}");
    for card in &set.scorecards {
        assert!(cards.contains(&format!(r#"<section class="scorecard-def" data-scorecard="{}">"#, card.id)));
        for check in &card.checks {
            assert!(cards.contains(&format!(r#"<tr data-check="{}">"#, check.id)), "{}", check.id);
        }
    }

    // Outcome counts and the waiver.
    assert!(page.contains(r#"id="outcomes""#));
    assert!(page.contains(r#"<li data-result="deny"><span class="count">"#));
    let waivers = section(&page, "waivers");
    assert!(waiver_status.is_success(), "waiver: {waiver_status} {waiver_body}");
    assert!(waivers.contains("Legacy image until Q3 &lt;migration&gt;"), "{waivers}");
    assert!(waivers.contains(r#"<a class="entity-link" href="/catalog/default/component/checkout">"#), "{waivers}");
    assert!(waivers.contains("<code>PL-BASE-001</code>"));

    // Entity pages point at the load problems.
    let checkout = ok(&governed, "/catalog/default/component/checkout").await;
    assert!(checkout.contains(r#"href="/policies#load-problems""#), "{checkout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_panels_say_when_the_engine_is_off() {
    let (portal, _file) = start_portal().await;
    let checkout = ok(&portal, "/catalog/default/component/checkout").await;
    assert!(checkout
        .contains(r#"<section id="policy-panel" aria-labelledby="policy-heading" data-policy-state="disabled">"#));
    assert!(checkout.contains(r#"id="policy-disabled""#));
    let group = ok(&portal, "/catalog/default/group/team-pay").await;
    assert!(group.contains(r#"id="policy-disabled""#));
    assert!(!group.contains(r#"id="team-scorecards""#));
    let policies = ok(&portal, "/policies").await;
    assert!(policies.contains(r#"id="policy-disabled""#));
    assert!(policies.contains(r#"<a id="nav-policies" href="/policies" aria-current="page">"#));
}

/// Templates of the test's own: one that runs (a `debug:log` step, output
/// links to an entity, a web page and a refused `javascript:` URL), with a
/// title that must be escaped, and one that is invalid.
const TEMPLATES: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: hello-run
  title: "<script>alert('t')</script> Hello run"
  description: Says hello.
  tags: [test]
spec:
  owner: group:default/team-pay
  type: service
  parameters:
    - title: Who
      required: [who]
      properties:
        who:
          title: Who to greet
          type: string
        loud:
          title: Loud
          type: boolean
          default: true
  steps:
    - id: greet
      name: Greet someone
      action: debug:log
      input:
        message: "hello ${{ parameters.who }}"
  output:
    links:
      - title: The team
        entityRef: group:default/team-pay
      - title: Docs
        url: https://example.com/docs
      - title: Sneaky
        url: "javascript:alert(1)"
    text:
      - title: Next steps
        content: "Greeted ${{ parameters.who }}"
---
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: broken-path
  title: Broken path
spec:
  type: service
  steps:
    - id: nope
      action: does:not-exist
"#;

/// A server with golden paths on, the fixture catalogue, the shipped
/// templates and the test's own.
async fn start_golden() -> TestServer {
    let options = Options { scaffolder: true, ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("a SQLite server");
    let file = server.write("catalog-info.yaml", FIXTURE);
    let templates = server.write("templates.yaml", TEMPLATES);
    for target in [file, templates, workspace_root().join("templates/catalog-info.yaml")] {
        server.register_new(&target).await;
    }
    server
}

/// The opening tag of the element with `id`.
fn tag<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id} in {page}"));
    let start = page[..at].rfind('<').expect("tag start");
    &page[start..at + page[at..].find('>').expect("tag end") + 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_page_lists_templates_with_problems_and_escapes_titles() {
    let golden = start_golden().await;
    let page = ok(&golden, "/create").await;
    for (title, name) in [
        ("GPU training environment", "gpu-training-environment"),
        ("Broken path", "broken-path"),
        ("Hello run", "hello-run"),
    ] {
        assert!(page.contains(title), "{title} listed: {page}");
        assert!(page.contains(&format!(r#"href="/create/templates/default/{name}""#)), "{name} linked");
    }
    assert!(count(&page, r#"<li class="template-card"#) >= 10, "every shipped template and ours: {page}");
    assert!(page.contains(r#"aria-current="page">Create</a>"#), "the nav marks Create");
    // The invalid template shows its problem, in the problems box.
    let broken = &page[page.find(r#"data-template-ref="template:default/broken-path""#).expect("broken listed")..];
    let broken = &broken[..broken.find("</li>\n</ul>").or_else(|| broken.find("\n</li>")).unwrap()];
    assert!(broken.contains("template-problems"), "{broken}");
    assert!(broken.contains("unknown action `does:not-exist`"), "{broken}");
    // Titles are escaped, on the list and the template's page.
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; Hello run"), "{page}");
    let form = ok(&golden, "/create/templates/default/hello-run").await;
    assert!(!form.contains("<script>alert"), "{form}");
    assert!(form.contains("<h1>&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; Hello run</h1>"), "{form}");

    let (status, body) = golden.text("/create/templates/default/broken-path").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("does:not-exist"), "{body}");
    let (status, _) = golden.text("/create/templates/default/no-such-template").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Templates are catalogue entities; their page leads to the form.
    let entity = ok(&golden, "/catalog/default/template/gpu-training-environment").await;
    assert!(
        entity.contains(
            r#"id="create-from-template" class="button" href="/create/templates/default/gpu-training-environment""#
        ),
        "{entity}"
    );
    let component = ok(&golden, "/catalog/default/group/team-pay").await;
    assert!(!component.contains("create-from-template"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_page_renders_a_typed_form_with_entity_pickers() {
    let golden = start_golden().await;
    let page = ok(&golden, "/create/templates/default/gpu-training-environment").await;
    assert_eq!(count(&page, "<fieldset"), 4, "one fieldset per page");
    for legend in ["About the environment", "Compute", "Data", "Repository"] {
        assert!(page.contains(&format!("<legend>{legend}</legend>")), "{legend}");
    }
    // A required string with a pattern.
    let name = tag(&page, "field-name");
    assert!(name.starts_with(r#"<input type="text""#), "{name}");
    assert!(name.contains(" required") && name.contains(r#"pattern="^[a-z][a-z0-9\-]{1,40}$""#), "{name}");
    assert!(name.contains(r#"data-type="string""#), "{name}");
    // An enum is a select with the default chosen.
    let gpu_type = tag(&page, "field-gpuType");
    assert!(gpu_type.starts_with("<select"), "{gpu_type}");
    assert!(page.contains(r#"<option value="NVIDIA-A100-SXM4-80GB" selected>"#), "default selected");
    // Integers and numbers: number inputs with bounds and defaults.
    let gpu_count = tag(&page, "field-gpuCount");
    assert!(gpu_count.starts_with(r#"<input type="number""#), "{gpu_count}");
    for attribute in [r#"data-type="integer""#, r#"step="1""#, r#"min="1""#, r#"max="8""#, r#"value="1""#, " required"]
    {
        assert!(gpu_count.contains(attribute), "{attribute} in {gpu_count}");
    }
    let budget = tag(&page, "field-budgetUsd");
    assert!(budget.contains(r#"data-type="number""#) && budget.contains(r#"step="any""#), "{budget}");
    assert!(budget.contains(r#"value="1000""#) && budget.contains(r#"max="25000""#), "{budget}");
    // Optional fields are not required; defaults pre-filled; help shown.
    let image = tag(&page, "field-image");
    assert!(!image.contains(" required") && image.contains(r#"value="nvcr.io/nvidia/pytorch:24.07-py3""#), "{image}");
    assert!(page.contains("Container image with a pinned tag from an approved registry."), "help text");
    // An array of entities: one per line, with a picker to add from.
    let datasets = tag(&page, "field-datasets");
    assert!(datasets.starts_with("<textarea") && datasets.contains(r#"data-widget="lines""#), "{datasets}");
    // The owner picker lists the catalogue's groups (kind Group only).
    let owner = tag(&page, "field-owner");
    let list = owner.split(r#"list=""#).nth(1).and_then(|rest| rest.split('"').next()).expect("owner has a datalist");
    let datalist = &page[page.find(&format!(r#"<datalist id="{list}""#)).expect("datalist rendered")..];
    let datalist = &datalist[..datalist.find("</datalist>").unwrap()];
    for group in ["group:default/team-pay", "group:default/team-shop", "group:default/engineering"] {
        assert!(datalist.contains(&format!(r#"<option value="{group}">"#)), "{group} in {datalist}");
    }
    assert!(!datalist.contains("user:default/alice") && !datalist.contains("component:"), "{datalist}");
    assert!(page.contains("Preview (dry run)</button>") && page.contains(">Create</button>"), "both buttons");
    assert!(page.contains(r#"data-template-ref="template:default/gpu-training-environment""#));

    // A boolean is a checkbox, checked by its default.
    let form = ok(&golden, "/create/templates/default/hello-run").await;
    let loud = tag(&form, "field-loud");
    assert!(loud.contains(r#"type="checkbox""#) && loud.contains(" checked"), "{loud}");
    assert!(tag(&form, "field-who").contains(" required"), "required string");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_pages_show_a_finished_run_with_steps_and_output() {
    let golden = start_golden().await;
    let (status, created) = golden
        .post_with_header(
            "/api/scaffolder/v2/tasks",
            ("x-plinth-user", "user:default/alice"),
            &json!({"templateRef": "template:default/hello-run", "values": {"who": "world"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let path = format!("/api/scaffolder/v2/tasks/{id}");
    wait_until(Duration::from_secs(60), "the run finishing", || async {
        let task = golden.ok(&path).await;
        assert_ne!(task["status"], "failed", "the run failed: {task}");
        task["status"] == "completed"
    })
    .await;
    let page = ok(&golden, &format!("/create/tasks/{id}")).await;
    assert!(page.contains(&format!(r#"data-task-id="{id}""#)) && page.contains(r#"data-finished="true""#), "{page}");
    assert!(tag(&page, "task-status").contains("status-completed"), "{page}");
    assert!(page.contains("<dt>Requested by</dt><dd>user:default/alice</dd>"), "{page}");
    assert!(page.contains(r#"href="/create/templates/default/hello-run">template:default/hello-run</a>"#), "{page}");
    let step = &page[page.find(r#"data-step-id="greet""#).expect("step listed")..];
    assert!(step.contains(r#"data-status="completed""#) && step.contains("Greet someone"), "{step}");
    assert!(page.contains("[greet] hello world"), "log: {page}");
    let result = section(&page, "task-result");
    assert!(!tag(&page, "task-result").contains("hidden"), "result shown");
    assert!(result.contains(r#"href="/catalog/default/group/team-pay">The team</a>"#), "{result}");
    assert!(result.contains(r#"href="https://example.com/docs">Docs</a>"#), "{result}");
    assert!(
        !result.contains(r#"href="javascript:"#) && result.contains("<code>javascript:alert(1)</code>"),
        "{result}"
    );
    assert!(result.contains("Greeted world"), "{result}");

    let list = ok(&golden, "/create/tasks").await;
    assert!(list.contains(&format!(r#"href="/create/tasks/{id}""#)), "{list}");
    assert!(list.contains("status-completed") && list.contains("template:default/hello-run"), "{list}");
    let (status, _) = golden.text("/create/tasks/no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
