//! The web portal over real loopback HTTP, in-process, on SQLite: every page
//! answers with the expected content, unknown entities get a 404 with
//! suggestions, user data is escaped, the explorer narrows by facet, and the
//! live-update stream delivers a change after a refresh. With the policy
//! service on (the shipped policies over the demo catalogue), entity pages
//! show catalog-point violations and scorecards, group pages the team
//! roll-up, and `/policies` the loaded policies and load problems.

use plinth_catalog::{Catalog, CatalogConfig};
use plinth_server::policy::{PolicyConfig, PolicyService};
use plinth_server::ServerConfig;
use plinth_store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
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

struct Portal {
    base: String,
    http: reqwest::Client,
    catalog: Arc<Catalog>,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Portal {
    async fn start() -> Portal {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let data = dir.path().join("data");
        let store = Store::open_sqlite(&data).await.expect("open SQLite store");
        let catalog = Catalog::open(store, CatalogConfig::new(&data)).await.expect("open the catalogue");
        catalog.spawn_background();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(plinth_server::serve(listener, catalog.clone(), ServerConfig::default(), std::future::pending()));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        let file = dir.path().join("catalog-info.yaml");
        std::fs::write(&file, FIXTURE).expect("write fixture");
        let portal = Portal { base: format!("http://{address}"), http, catalog, file, _dir: dir };
        let response = portal
            .http
            .post(portal.url("/api/catalog/locations"))
            .json(&json!({"type": "file", "target": portal.file.to_string_lossy()}))
            .send()
            .await
            .expect("register");
        assert!(response.status().is_success(), "register: {}", response.text().await.unwrap_or_default());
        portal
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn ok(&self, path: &str) -> String {
        let (status, body) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test]
async fn home_lists_kinds_recent_changes_and_errors() {
    let portal = Portal::start().await;
    let home = portal.ok("/").await;
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

#[tokio::test]
async fn explorer_filters_sorts_and_pages() {
    let portal = Portal::start().await;
    let all = portal.ok("/catalog").await;
    assert!(all.contains(r#"<table id="entities">"#));
    assert!(all.contains(r#"id="result-count""#));
    assert!(all.contains("of 8 entities"), "{all}");
    for facet in ["kind", "type", "owner", "lifecycle", "tag", "namespace"] {
        assert!(all.contains(&format!(r#"<section id="facet-{facet}""#)), "facet {facet}");
    }

    let owned = portal.ok("/catalog?owner=team-pay").await;
    assert!(owned.contains("of 3 entities"), "{owned}");
    assert_eq!(count(&owned, r#"<td class="name"><a class="entity-link""#), 3);
    assert!(owned.contains(r#"aria-current="true""#));
    assert!(!owned.contains(r#"href="/catalog/default/component/checkout""#));

    // OR within a facet, AND across facets.
    let either = portal.ok("/catalog?owner=team-pay&owner=team-shop&kind=Component").await;
    assert!(either.contains("of 2 entities"), "{either}");
    let text = portal.ok("/catalog?q=checkout").await;
    assert!(text.contains("of 1 entities"), "{text}");
    let title = portal.ok("/catalog?q=CHECKOUT%20serv").await;
    assert!(title.contains("of 1 entities"), "matches titles case-insensitively: {title}");
    let sorted = portal.ok("/catalog?kind=component&sort=-name").await;
    let checkout = sorted.find("/catalog/default/component/checkout").unwrap();
    let payments = sorted.find("/catalog/default/component/payments").unwrap();
    assert!(payments < checkout, "descending name order");
    let none = portal.ok("/catalog?owner=nobody").await;
    assert!(none.contains(r#"id="empty-state""#));
    assert!(!none.contains("next-page"));
}

#[tokio::test]
async fn entity_pages_show_facts_relations_and_panels() {
    let portal = Portal::start().await;
    let checkout = portal.ok("/catalog/default/component/checkout").await;
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
    portal.ok("/catalog/DEFAULT/Component/CHECKOUT").await;

    let payments = portal.ok("/catalog/default/component/payments").await;
    assert!(payments.contains(r#"<span id="impact-count">2</span>"#), "checkout and payments-api depend on payments");

    let api = portal.ok("/catalog/default/api/payments-api").await;
    assert!(api.contains(r#"id="api-definition""#));
    assert!(api.contains(r#"<span class="tok-c"># the payments API</span>"#), "{api}");
    assert!(api.contains(r#"<span class="tok-k">openapi</span>"#));
    assert!(api.contains(r#"<table id="api-operations">"#));
    assert!(api.contains("Create a charge") && api.contains("<code>/charges</code>"));

    let group = portal.ok("/catalog/default/group/team-pay").await;
    assert!(group.contains(r#"id="group-members""#) && group.contains("/catalog/default/user/alice"));
    assert!(group.contains(r#"id="group-owned""#) && group.contains("/catalog/default/api/payments-api"));
    assert!(group.contains(r#"<section data-relation="ownerOf">"#));

    let model = portal.ok("/catalog/default/model/fraud-model").await;
    assert!(model.contains(r#"id="ai-governance""#));
    assert!(model.contains(r#"<dd id="ai-risk-tier">high</dd>"#));
}

#[tokio::test]
async fn user_data_is_escaped() {
    let portal = Portal::start().await;
    let payments = portal.ok("/catalog/default/component/payments").await;
    assert!(!payments.contains("<script>alert"), "title must be escaped");
    assert!(
        payments.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;&#x2f;script&gt;")
            || payments.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;")
    );
    assert!(payments.contains("Moves money &lt;b&gt;safely&lt;/b&gt; &amp; &quot;quickly&quot;"), "{payments}");
    for path in ["/catalog", "/search?q=payments", "/catalog/default/component/checkout"] {
        let page = portal.ok(path).await;
        assert!(!page.contains("<script>alert"), "{path}");
        assert!(!page.contains("<b>safely"), "{path}");
    }
    let reflected = portal.ok("/search?q=%3Cscript%3Ex").await;
    assert!(!reflected.contains("<script>x"));
    let (status, missing) = portal.page("/catalog/default/component/%3Cimg%20src%3Dx%3E").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!missing.contains("<img src=x>"));
}

#[tokio::test]
async fn graph_page_draws_a_bounded_svg() {
    let portal = Portal::start().await;
    let graph = portal.ok("/catalog/default/component/payments/graph").await;
    assert!(graph.contains(r#"<svg id="graph" role="img""#));
    assert!(graph.contains(r#"<span id="impact-count">2</span>"#));
    assert!(graph.contains(r#"id="depth-control""#));
    for direction in ["upstream", "downstream", "both"] {
        assert!(graph.contains(&format!(r#"id="direction-{direction}""#)));
    }
    assert!(graph.contains(r#"class="node k-component" href="/catalog/default/component/checkout""#), "{graph}");
    let upstream = portal.ok("/catalog/default/component/payments/graph?depth=3&direction=upstream").await;
    assert!(upstream.contains("/catalog/default/component/checkout"));
    assert!(!upstream.contains(r#"href="/catalog/default/group/team-pay""#), "ownership is not a dependency");
    let downstream = portal.ok("/catalog/default/component/checkout/graph?depth=1&direction=downstream").await;
    assert!(downstream.contains(r#"href="/catalog/default/component/payments""#));
    assert!(downstream.contains("ghost-service"));
}

#[tokio::test]
async fn search_page_ranks_and_counts() {
    let portal = Portal::start().await;
    let results = portal.ok("/search?q=checkout").await;
    assert!(results.contains(r#"id="search-results""#));
    assert!(results.contains(r#"<li class="result">"#));
    assert!(results.contains(r#"<a class="entity-link" href="/catalog/default/component/checkout">"#));
    assert!(results.contains(r#"id="facets""#));
    assert!(results.contains("/catalog?kind=Component&amp;q=checkout"), "{results}");
    let empty = portal.ok("/search?q=zzzznothing").await;
    assert!(empty.contains(r#"id="empty-state""#));
    portal.ok("/search").await;
}

#[tokio::test]
async fn unknown_pages_are_404_with_suggestions() {
    let portal = Portal::start().await;
    let (status, body) = portal.page("/catalog/default/component/checkout-service").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(r#"id="suggestions""#));
    assert!(body.contains(r#"href="/catalog/default/component/checkout""#), "{body}");
    let (status, body) = portal.page("/catalog/default/component/nothing-like-it/graph").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains(r#"id="suggestions""#));
    let (status, body) = portal.page("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Not found"));
    let (status, _) = portal.page("/api/catalog/no-such-endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_stream_delivers_changes() {
    let portal = Portal::start().await;
    let mut response = portal
        .http
        .get(portal.url("/api/catalog/events?entityRef=component:default/checkout"))
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    std::fs::write(&portal.file, FIXTURE.replace("Turns baskets into orders.", "Turns baskets into paid orders."))
        .unwrap();
    let refreshed = portal
        .http
        .post(portal.url("/api/catalog/refresh"))
        .json(&json!({"entityRef": "component:default/checkout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await.expect("an event within 10 s");
        received.push_str(&String::from_utf8_lossy(&chunk.unwrap().expect("stream open")));
    }
    let data = received.lines().find_map(|l| l.strip_prefix("data:")).expect("a data line");
    let event: Value = serde_json::from_str(data.trim()).unwrap();
    assert_eq!(event["entityRef"], json!("component:default/checkout"));
    assert_eq!(event["op"], json!("upsert"));
    assert!(event["seq"].as_i64().unwrap() > 0);
    let page = portal.ok("/catalog/default/component/checkout").await;
    assert!(page.contains("Turns baskets into paid orders."));
    drop(portal.catalog);
}

// ---------------------------------------------------------------- policy

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// A portal with the policy service over `policy_sources`, serving the
/// catalogue registered from `location`, once the governance view has
/// evaluated every entity.
struct Governed {
    base: String,
    http: reqwest::Client,
    policy: Arc<PolicyService>,
    _dir: tempfile::TempDir,
}

impl Governed {
    async fn start(policy_sources: Vec<String>, location: &std::path::Path) -> Governed {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let data = dir.path().join("data");
        let store = Store::open_sqlite(&data).await.expect("open SQLite store");
        let catalog = Catalog::open(store, CatalogConfig::new(&data)).await.expect("open the catalogue");
        catalog.spawn_background();
        let policy = PolicyService::start(
            PolicyConfig::new(policy_sources, data.clone()),
            catalog.store().clone(),
            catalog.clone(),
        )
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let config = ServerConfig { policy: Some(policy.clone()), ..ServerConfig::default() };
        tokio::spawn(plinth_server::serve(listener, catalog.clone(), config, std::future::pending()));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        let governed = Governed { base: format!("http://{address}"), http, policy, _dir: dir };
        let response = governed
            .http
            .post(format!("{}/api/catalog/locations", governed.base))
            .json(&json!({"type": "file", "target": location.to_string_lossy()}))
            .send()
            .await
            .expect("register");
        assert!(response.status().is_success(), "register: {}", response.text().await.unwrap_or_default());
        // Every entity evaluated: the view is complete, and it holds as many
        // entities as the catalogue, unchanged for a moment.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut stable = 0;
        let mut last = 0;
        loop {
            let total = catalog.read().len() as usize;
            let (complete, evaluated) = {
                let view = governed.policy.view();
                (view.complete, view.entities.len())
            };
            if complete && evaluated == total && total > 0 && evaluated == last {
                stable += 1;
                if stable >= 5 {
                    break;
                }
            } else {
                stable = 0;
            }
            last = evaluated;
            assert!(
                tokio::time::Instant::now() < deadline,
                "governance view: complete {complete}, {evaluated} of {total} entities evaluated after 120 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        governed
    }

    async fn ok(&self, path: &str) -> String {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

/// The part of `page` from the element with `id` to the end of its section.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>\n</section>").or_else(|| rest.find("\n</section>")).unwrap_or(rest.len())]
}

#[tokio::test]
async fn entity_pages_show_policy_results_scorecards_and_team_rollups() {
    let root = repo_root();
    let governed = Governed::start(
        vec![root.join("policies").to_string_lossy().into_owned()],
        &root.join("examples/demo/catalog-info.yaml"),
    )
    .await;

    // An agent without `plinth.io/tracing: enabled` is denied by PL-AGT-003.
    let agent = governed.ok("/catalog/default/agent/support-copilot-agent").await;
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
    // The agent's scorecards, with the level reached and each check.
    let cards = section(&agent, "policy-scorecards");
    assert!(cards.contains(r#"<section class="scorecard" data-scorecard=""#), "{cards}");
    assert!(cards.contains(r#"class="badge level level-"#), "{cards}");
    assert!(cards.contains(r#"<li class="check fail""#) || cards.contains(r#"<li class="check pass""#), "{cards}");
    assert!(governed.policy.view().get("agent:default/support-copilot-agent").is_some(), "in the view");
    let governance =
        plinth_server::policy::detail(&governed.policy, "agent:default/support-copilot-agent").expect("evaluated");
    let card = &governance.scorecards[0];
    let level = card.level.as_deref().unwrap_or("none");
    assert!(
        cards.contains(&format!(r#"data-scorecard="{}""#, card.scorecard))
            && cards.contains(&format!(r#"<span class="badge level level-{level}">"#)),
        "scorecard {} at level {level}: {cards}",
        card.scorecard
    );
    for check in card.checks.iter().filter(|c| !c.passed) {
        assert!(cards.contains(&format!(r#"<li class="check fail" data-check="{}">"#, check.id)), "{}", check.id);
        for reason in &check.reasons {
            let escaped = reason.replace('&', "&amp;").replace('"', "&quot;").replace('\'', "&#39;");
            let escaped = escaped.replace('<', "&lt;").replace('>', "&gt;");
            assert!(cards.contains(&escaped), "reason {reason:?} shown");
        }
    }

    // Some entity in the demo reaches a level: its page shows the badge.
    let leveled = {
        let defs = governed.policy.compiled().scorecards.clone();
        let view = governed.policy.view();
        view.entities
            .iter()
            .find_map(|(key, summary)| {
                summary.cards.iter().find_map(|c| {
                    let level = plinth_policy::scorecard::LEVELS[c.level? as usize];
                    Some((key.clone(), defs[c.card as usize].id.clone(), level.to_string()))
                })
            })
            .expect("an entity of the demo reaches a scorecard level")
    };
    let (entity_ref, scorecard, level) = leveled;
    let (kind, rest) = entity_ref.split_once(':').unwrap();
    let (namespace, name) = rest.split_once('/').unwrap();
    let leveled_page = governed.ok(&format!("/catalog/{namespace}/{kind}/{name}")).await;
    let cards = section(&leveled_page, "policy-scorecards");
    let at = cards.find(&format!(r#"data-scorecard="{scorecard}""#)).expect("scorecard shown");
    assert!(
        cards[at..].contains(&format!(r#"<span class="badge level level-{level}">{level}</span>"#)),
        "{entity_ref}: {scorecard} at {level}: {cards}"
    );

    // The owning team's page rolls its scorecards up.
    let owner = governance.owner.clone().expect("the agent has an owner");
    let rollups = governed.policy.view().rollups(Some(&owner), &governed.policy.compiled().scorecards);
    assert!(!rollups.is_empty());
    let (kind, rest) = owner.split_once(':').unwrap();
    let (namespace, name) = rest.split_once('/').unwrap();
    let team = governed.ok(&format!("/catalog/{namespace}/{kind}/{name}")).await;
    let team_cards = section(&team, "team-scorecards");
    for rollup in &rollups {
        let at = team_cards.find(&format!(r#"<section class="rollup" data-scorecard="{}">"#, rollup.scorecard));
        let at = at.unwrap_or_else(|| panic!("roll-up of {} on {owner}: {team_cards}", rollup.scorecard));
        let card = &team_cards[at..];
        assert!(card.contains(&format!("score <strong>{:.1}</strong>%", rollup.score)), "{card}");
        assert!(card.contains(&format!("{} entities", rollup.entities)), "{card}");
        for (check, passed) in &rollup.checks {
            assert!(
                card.contains(&format!(r#"<tr data-check="{check}">"#))
                    && card.contains(&format!(r#"<span class="count">{passed}/{}</span>"#, rollup.entities)),
                "check {check}: {card}"
            );
        }
        for (level, count) in rollup.levels.iter().filter(|(_, c)| **c > 0) {
            assert!(card.contains(&format!(r#"<li data-level="{level}">"#)), "level {level} ({count}): {card}");
        }
    }

    // The nav links the policies page, which counts outcomes.
    assert!(agent.contains(r#"<a id="nav-policies" href="/policies">Policies</a>"#));
    let policies = governed.ok("/policies").await;
    let counts = governed.policy.view().outcome_counts();
    for (result, count) in &counts {
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

#[tokio::test]
async fn policies_page_lists_rules_scorecards_waivers_and_load_problems() {
    let root = repo_root();
    let scratch = tempfile::TempDir::new().expect("temp dir");
    let broken_dir = scratch.path().join("extra");
    std::fs::create_dir_all(&broken_dir).unwrap();
    std::fs::write(broken_dir.join("broken.rego"), BROKEN_POLICY).unwrap();
    let fixture = scratch.path().join("catalog-info.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let governed = Governed::start(
        vec![root.join("policies").to_string_lossy().into_owned(), broken_dir.to_string_lossy().into_owned()],
        &fixture,
    )
    .await;
    let waiver = governed
        .http
        .post(format!("{}/api/policy/waivers", governed.base))
        .json(&json!({
            "entity": "component:default/checkout",
            "rule": "PL-BASE-001",
            "owner": "group:default/team-shop",
            "reason": "Legacy image until Q3 <migration>",
            "expiresAt": (time::OffsetDateTime::now_utc() + time::Duration::days(30))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        }))
        .send()
        .await
        .expect("create a waiver");
    let waiver_status = waiver.status();
    let waiver_body = waiver.text().await.unwrap_or_default();

    let page = governed.ok("/policies").await;
    // Load problems first, in red, with file:line and the message.
    let problems = section(&page, "load-problems");
    assert!(problems.contains(r#"id="load-problems" aria-labelledby="load-problems-heading" class="problems">"#));
    assert!(problems.contains("fails closed"), "{problems}");
    let compiled = governed.policy.compiled();
    let problem = compiled.engine.problems().iter().find(|p| p.file.contains("broken.rego")).expect("a load problem");
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
    for summary in compiled.engine.summaries() {
        assert!(list.contains(&format!(r#"data-package="{}""#, summary.package)), "{}", summary.package);
    }

    // Scorecard definitions with their checks.
    let cards = section(&page, "scorecard-definitions");
    assert!(!compiled.scorecards.is_empty());
    for card in &compiled.scorecards {
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
    let checkout = governed.ok("/catalog/default/component/checkout").await;
    assert!(checkout.contains(r#"href="/policies#load-problems""#), "{checkout}");
}

#[tokio::test]
async fn policy_panels_say_when_the_engine_is_off() {
    let portal = Portal::start().await;
    let checkout = portal.ok("/catalog/default/component/checkout").await;
    assert!(checkout
        .contains(r#"<section id="policy-panel" aria-labelledby="policy-heading" data-policy-state="disabled">"#));
    assert!(checkout.contains(r#"id="policy-disabled""#));
    let group = portal.ok("/catalog/default/group/team-pay").await;
    assert!(group.contains(r#"id="policy-disabled""#));
    assert!(!group.contains(r#"id="team-scorecards""#));
    let policies = portal.ok("/policies").await;
    assert!(policies.contains(r#"id="policy-disabled""#));
    assert!(policies.contains(r#"<a id="nav-policies" href="/policies" aria-current="page">"#));
}

// ---------------------------------------------------------------- golden paths

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

struct Golden {
    portal: Portal,
}

impl Golden {
    /// A portal with golden paths on, the fixture catalogue, the shipped
    /// templates and the test's own.
    async fn start() -> Golden {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let data = dir.path().join("data");
        let store = Store::open_sqlite(&data).await.expect("open SQLite store");
        let catalog = Catalog::open(store, CatalogConfig::new(&data)).await.expect("open the catalogue");
        catalog.spawn_background();
        let scaffolder = plinth_server::scaffolder::Scaffolder::start(
            plinth_server::scaffolder::ScaffolderConfig::new(dir.path().join("scaffolder")),
            catalog.store().clone(),
            catalog.clone(),
            None,
        )
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let config = ServerConfig { scaffolder: Some(scaffolder), ..ServerConfig::default() };
        tokio::spawn(plinth_server::serve(listener, catalog.clone(), config, std::future::pending()));
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        let file = dir.path().join("catalog-info.yaml");
        std::fs::write(&file, FIXTURE).expect("write fixture");
        let templates = dir.path().join("templates.yaml");
        std::fs::write(&templates, TEMPLATES).expect("write templates");
        let portal = Portal { base: format!("http://{address}"), http, catalog, file, _dir: dir };
        let shipped = repo_root().join("templates/catalog-info.yaml");
        for target in [portal.file.clone(), templates, shipped] {
            let response = portal
                .http
                .post(portal.url("/api/catalog/locations"))
                .json(&json!({"type": "file", "target": target.to_string_lossy()}))
                .send()
                .await
                .expect("register");
            assert!(response.status().is_success(), "register: {}", response.text().await.unwrap_or_default());
        }
        Golden { portal }
    }
}

/// The opening tag of the element with `id`.
fn tag<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id} in {page}"));
    let start = page[..at].rfind('<').expect("tag start");
    &page[start..at + page[at..].find('>').expect("tag end") + 1]
}

#[tokio::test]
async fn create_page_lists_templates_with_problems_and_escapes_titles() {
    let golden = Golden::start().await;
    let page = golden.portal.ok("/create").await;
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
    let form = golden.portal.ok("/create/templates/default/hello-run").await;
    assert!(!form.contains("<script>alert"), "{form}");
    assert!(form.contains("<h1>&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; Hello run</h1>"), "{form}");

    let (status, body) = golden.portal.page("/create/templates/default/broken-path").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("does:not-exist"), "{body}");
    let (status, _) = golden.portal.page("/create/templates/default/no-such-template").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Templates are catalogue entities; their page leads to the form.
    let entity = golden.portal.ok("/catalog/default/template/gpu-training-environment").await;
    assert!(
        entity.contains(
            r#"id="create-from-template" class="button" href="/create/templates/default/gpu-training-environment""#
        ),
        "{entity}"
    );
    let component = golden.portal.ok("/catalog/default/group/team-pay").await;
    assert!(!component.contains("create-from-template"));
}

#[tokio::test]
async fn template_page_renders_a_typed_form_with_entity_pickers() {
    let golden = Golden::start().await;
    let page = golden.portal.ok("/create/templates/default/gpu-training-environment").await;
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
    let form = golden.portal.ok("/create/templates/default/hello-run").await;
    let loud = tag(&form, "field-loud");
    assert!(loud.contains(r#"type="checkbox""#) && loud.contains(" checked"), "{loud}");
    assert!(tag(&form, "field-who").contains(" required"), "required string");
}

#[tokio::test]
async fn task_pages_show_a_finished_run_with_steps_and_output() {
    let golden = Golden::start().await;
    let portal = &golden.portal;
    let response = portal
        .http
        .post(portal.url("/api/scaffolder/v2/tasks"))
        .header("x-plinth-user", "user:default/alice")
        .json(&json!({"templateRef": "template:default/hello-run", "values": {"who": "world"}}))
        .send()
        .await
        .expect("create task");
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task: Value = portal
            .http
            .get(portal.url(&format!("/api/scaffolder/v2/tasks/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match task["status"].as_str() {
            Some("completed") => break,
            Some("failed") => panic!("the run failed: {task}"),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "run not finished: {task}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = portal.ok(&format!("/create/tasks/{id}")).await;
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

    let list = portal.ok("/create/tasks").await;
    assert!(list.contains(&format!(r#"href="/create/tasks/{id}""#)), "{list}");
    assert!(list.contains("status-completed") && list.contains("template:default/hello-run"), "{list}");
    let (status, _) = portal.page("/create/tasks/no-such-run").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
