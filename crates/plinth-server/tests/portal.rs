//! The web portal over real loopback HTTP, in-process, on SQLite: every page
//! answers with the expected content, unknown entities get a 404 with
//! suggestions, user data is escaped, the explorer narrows by facet, and the
//! live-update stream delivers a change after a refresh.

use plinth_catalog::{Catalog, CatalogConfig};
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
