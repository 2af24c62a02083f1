//! The whole HTTP API over real loopback HTTP, in-process, on both store backends (SQLite and PostgreSQL): locations, Backstage's entity queries, relations, impact, neighbourhood, search, ingestion errors, refresh (on request and periodic), conflicts, deletes, git sources and webhooks (with the webhook secret enforced), Location cycles, operations endpoints, and Backstage's own example catalogue.
//!
//! Servers come from `plinth_testkit::TestServer`. Every scenario runs
//! twice: `sqlite::<scenario>` and `postgres::<scenario>`.
//! PostgreSQL comes from `PLINTH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own
//! database and drops it afterwards. Set `PLINTH_SKIP_POSTGRES=1` to skip the
//! PostgreSQL half when no server is available; otherwise an unreachable
//! server fails those tests.

use hmac::{Hmac, Mac};
use plinth_testkit::{git, scenarios, wait_until, Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

scenarios!(
    locations_register_duplicate_and_dry_run,
    entities_filters_fields_order_and_paging,
    by_query_totals_order_text_and_cursors,
    lookups_by_name_uid_refs_and_facets,
    relations_in_both_directions,
    refresh_shows_edits_removals_and_writes_nothing_when_unchanged,
    impact_dependents_dependencies_limits_and_cycles,
    neighbourhood_and_ranked_search,
    ingestion_errors_are_reported_and_isolated,
    conflicting_locations_first_one_keeps_the_entity,
    deleting_locations_and_entities,
    validate_entity_and_operations_endpoints,
    git_location_follows_pushes_through_webhooks,
    unreachable_git_repository_is_reported,
    backstage_examples_ingest_without_errors,
    backstage_invalid_component_is_reported_with_fields_and_lines,
    webhook_secret_is_enforced_for_github_and_gitlab,
    location_cycles_are_reported_and_ingestion_ends,
    periodic_refresh_shows_edits_made_on_disk,
);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const ROOT_LOCATION: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: fixture-root
  description: Every file of the test fixture
spec:
  targets:
    - ./org/org.yaml
    - ./services/catalog-info.yaml
    - ./ai/catalog-info.yaml
";

const ORG: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
  members: [alice]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-b
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alice
spec:
  memberOf: [team-a]
";

const SERVICES: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: commerce
spec:
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: shop
spec:
  owner: team-a
  domain: commerce
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  title: Checkout Service
  description: Turns baskets into orders
  tags: [java, web]
spec:
  type: service
  lifecycle: production
  owner: team-a
  system: shop
  providesApis: [checkout-api]
  dependsOn: [component:payments, resource:orders-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  description: Charges cards for orders
  tags: [go]
spec:
  type: service
  lifecycle: production
  owner: team-b
  system: shop
  dependsOn: [resource:orders-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: web-frontend
  description: The storefront customers browse
  tags: [typescript, web]
spec:
  type: website
  lifecycle: experimental
  owner: team-a
  system: shop
  consumesApis: [checkout-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-lib
  description: Shared basket maths
  tags: [java]
spec:
  type: library
  lifecycle: production
  owner: team-b
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: checkout-api
  description: Places orders
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  system: shop
  definition: 'openapi: 3.0.0'
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: orders-db
  description: One row per order
spec:
  type: database
  owner: team-b
  system: shop
";

const AI: &str = "\
apiVersion: plinth.dev/v1alpha1
kind: Dataset
metadata:
  name: tickets
  description: Historic support tickets
spec:
  type: table
  owner: team-a
  lifecycle: production
  dataClassification: internal
---
apiVersion: plinth.dev/v1alpha1
kind: Model
metadata:
  name: gpt-support
  description: Answers support questions
spec:
  type: llm
  owner: team-a
  lifecycle: production
  riskTier: limited
  trainedOn: [tickets]
---
apiVersion: plinth.dev/v1alpha1
kind: Prompt
metadata:
  name: triage-prompt
spec:
  owner: team-a
  lifecycle: production
  model: gpt-support
  template: 'Classify {{ ticket }}'
---
apiVersion: plinth.dev/v1alpha1
kind: Agent
metadata:
  name: support-agent
spec:
  type: assistant
  owner: team-a
  lifecycle: production
  autonomy: supervised
  models: [gpt-support]
  prompts: [triage-prompt]
  tools: [checkout-api]
";

/// Entities in the standard fixture (the root Location included).
const FIXTURE_ENTITIES: usize = 16;

fn write(path: &Path, content: &str) -> PathBuf {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create fixture directory");
    }
    std::fs::write(path, content).expect("write fixture");
    path.to_path_buf()
}

/// Writes the standard fixture under `dir` and returns its root Location file.
fn write_fixture(dir: &Path) -> PathBuf {
    write(&dir.join("org/org.yaml"), ORG);
    write(&dir.join("services/catalog-info.yaml"), SERVICES);
    write(&dir.join("ai/catalog-info.yaml"), AI);
    write(&dir.join("catalog-info.yaml"), ROOT_LOCATION)
}

/// Writes and registers the standard fixture; returns the location id.
async fn register_fixture(server: &TestServer) -> String {
    let root = write_fixture(&server.dir().join("catalog"));
    let body = server.register_new(&root).await;
    assert_eq!(body["refresh"]["errors"], json!(0), "the fixture is valid: {body}");
    body["location"]["id"].as_str().expect("location id").to_string()
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not in fixture")) as u64 + 1
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {items}"))
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap_or_else(|| panic!("entity without a name: {e}")).to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Asserts a Backstage error body: `{error: {name, message}, request:
/// {method, url}, response: {statusCode}}`, the status matching the name.
fn assert_backstage_error(body: &Value, name: &str) {
    assert_eq!(body["error"]["name"], json!(name), "error shape: {body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "error without a message: {body}");
    let method = body["request"]["method"].as_str().unwrap_or("");
    assert!(["GET", "POST", "DELETE"].contains(&method), "error without its request method: {body}");
    assert!(body["request"]["url"].as_str().is_some_and(|u| u.starts_with("/api/")), "error without its URL: {body}");
    let status = match name {
        "InputError" => 400,
        "AuthenticationError" => 401,
        "NotFoundError" => 404,
        "ConflictError" => 409,
        other => panic!("no status known for {other}"),
    };
    assert_eq!(body["response"]["statusCode"], json!(status), "error shape: {body}");
}

/// Awaits `future`, which must end: a bound against hangs (an endless walk
/// or expansion), generous enough to say nothing about speed, and below the
/// client's own 120 s timeout so a hang fails with this message.
async fn terminates<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(100), future).await.unwrap_or_else(|_| panic!("{what} did not terminate"))
}

fn has_relation(entity: &Value, relation: &str, target: &str) -> bool {
    entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["type"] == json!(relation) && r["targetRef"] == json!(target))
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

async fn locations_register_duplicate_and_dry_run(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let root = write_fixture(&server.dir().join("catalog"));

    // A dry run reads everything and writes nothing.
    let (status, body) = server
        .http
        .post(server.url("/api/catalog/locations"))
        .query(&[("dryRun", "true")])
        .json(&json!({"type": "file", "target": root}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .expect("POST dry run");
    let body: Value = body.json().await.expect("dry-run JSON");
    assert_eq!(status, StatusCode::CREATED, "dry run: {body}");
    assert_eq!(body["exists"], json!(false));
    assert_eq!(body["entities"].as_array().map(Vec::len), Some(FIXTURE_ENTITIES), "dry run lists what it would ingest");
    assert!(names(&body["entities"]).contains(&"checkout".to_string()));
    assert!(server.ok("/api/catalog/entities").await.as_array().is_some_and(Vec::is_empty), "dry run wrote entities");
    assert!(
        server.ok("/api/catalog/locations").await.as_array().is_some_and(Vec::is_empty),
        "dry run registered a location"
    );
    assert_eq!(server.metric("plinth_catalog_change_log_position").await, 0.0, "dry run wrote to the change log");

    // Registration: 201, the entities are there.
    let body = server.register_new(&root).await;
    let id = body["location"]["id"].as_str().expect("location id").to_string();
    assert_eq!(body["exists"], json!(false));
    assert_eq!(body["location"]["type"], json!("file"));
    assert_eq!(body["location"]["target"], json!(root.canonicalize().unwrap().to_string_lossy()));
    assert_eq!(body["entities"].as_array().map(Vec::len), Some(FIXTURE_ENTITIES));
    assert_eq!(body["refresh"]["written"], json!(FIXTURE_ENTITIES));
    let all = server.ok("/api/catalog/entities").await;
    assert_eq!(all.as_array().map(Vec::len), Some(FIXTURE_ENTITIES));
    let checkout = server.entity("component", "checkout").await.expect("checkout ingested");
    assert_eq!(checkout["metadata"]["description"], json!("Turns baskets into orders"));
    assert_eq!(checkout["spec"]["owner"], json!("team-a"));

    // Registering it again is a conflict, as in Backstage, naming the
    // existing location; a dry run says it exists.
    let (status, again) = server.post("/api/catalog/locations", &json!({"type": "file", "target": root})).await;
    assert_eq!(status, StatusCode::CONFLICT, "duplicate registration: {again}");
    assert_eq!(again["error"]["name"], json!("ConflictError"));
    assert_backstage_error(&again, "ConflictError");
    assert!(again["error"]["message"].as_str().unwrap_or("").contains(&id), "{again}");
    let (status, dry) =
        server.post("/api/catalog/locations?dryRun=true", &json!({"type": "file", "target": root})).await;
    assert_eq!(status, StatusCode::CREATED, "{dry}");
    assert_eq!(dry["exists"], json!(true));
    let locations = server.ok("/api/catalog/locations").await;
    assert_eq!(locations.as_array().map(Vec::len), Some(1), "{locations}");
    assert_eq!(locations[0]["data"]["id"], json!(id));
    assert_eq!(locations[0]["data"]["status"]["entities"], json!(FIXTURE_ENTITIES));

    let location = server.ok(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(location["id"], json!(id));
    let by_entity = server.ok("/api/catalog/locations/by-entity/component/default/checkout").await;
    assert_eq!(by_entity["id"], json!(id));

    // Bad requests answer in Backstage's error shape.
    let (status, body) = server.post("/api/catalog/locations", &json!({"type": "bogus", "target": root})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    let (status, body) = server.post("/api/catalog/locations", &json!({"type": "file", "target": "  "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    let (status, body) = server.get("/api/catalog/locations/no-such-location").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_backstage_error(&body, "NotFoundError");
    server.stop().await;
}

async fn entities_filters_fields_order_and_paging(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;
    let shared = &server;
    let list = |query: Vec<(&'static str, &'static str)>| async move {
        let body = shared.ok_q("/api/catalog/entities", &query).await;
        sorted(names(&body))
    };

    // AND within a parameter.
    assert_eq!(list(vec![("filter", "kind=component,spec.type=service")]).await, strs(&["checkout", "payments"]));
    // OR across parameters.
    assert_eq!(
        list(vec![("filter", "kind=component,spec.type=service"), ("filter", "kind=api")]).await,
        strs(&["checkout", "checkout-api", "payments"])
    );
    // A key repeated within a parameter matches any of its values.
    assert_eq!(
        list(vec![("filter", "kind=component,spec.type=website,spec.type=library")]).await,
        strs(&["checkout-lib", "web-frontend"])
    );
    // Case-insensitive keys and values.
    assert_eq!(list(vec![("filter", "KIND=Component,Spec.Owner=TEAM-B")]).await, strs(&["checkout-lib", "payments"]));
    // Existence filters, including Backstage's `list.item` form for tags.
    assert_eq!(list(vec![("filter", "metadata.tags.java")]).await, strs(&["checkout", "checkout-lib"]));
    assert_eq!(list(vec![("filter", "metadata.tags=web")]).await, strs(&["checkout", "web-frontend"]));
    assert_eq!(list(vec![("filter", "spec.dependsOn")]).await, strs(&["checkout", "payments"]));
    assert_eq!(list(vec![("filter", "kind=nothing")]).await, Vec::<String>::new());

    // Fields projection keeps only the named paths.
    let body = server.ok_q("/api/catalog/entities", &[("filter", "kind=api"), ("fields", "kind,metadata.name")]).await;
    assert_eq!(body, json!([{"kind": "API", "metadata": {"name": "checkout-api"}}]));
    let body = server
        .ok_q(
            "/api/catalog/entities",
            &[("filter", "kind=component"), ("fields", "metadata.name"), ("fields", "spec.owner")],
        )
        .await;
    for item in body.as_array().expect("array") {
        let keys: Vec<&String> = item.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["metadata", "spec"], "{item}");
        assert!(
            item["spec"]["owner"].is_string() && item["metadata"].as_object().map(|m| m.len()) == Some(1),
            "{item}"
        );
    }

    // Order, limit, offset.
    let body =
        server.ok_q("/api/catalog/entities", &[("filter", "kind=component"), ("order", "asc:metadata.name")]).await;
    assert_eq!(names(&body), strs(&["checkout", "checkout-lib", "payments", "web-frontend"]));
    let body =
        server.ok_q("/api/catalog/entities", &[("filter", "kind=component"), ("order", "desc:metadata.name")]).await;
    assert_eq!(names(&body), strs(&["web-frontend", "payments", "checkout-lib", "checkout"]));
    let body = server
        .ok_q(
            "/api/catalog/entities",
            &[("filter", "kind=component"), ("order", "asc:metadata.name"), ("limit", "2"), ("offset", "1")],
        )
        .await;
    assert_eq!(names(&body), strs(&["checkout-lib", "payments"]));
    let body = server.ok_q("/api/catalog/entities", &[("limit", "3")]).await;
    assert_eq!(body.as_array().map(Vec::len), Some(3));
    let body = server.ok_q("/api/catalog/entities", &[("offset", "15")]).await;
    assert_eq!(body.as_array().map(Vec::len), Some(FIXTURE_ENTITIES - 15));

    // Malformed parameters are 400s in Backstage's shape.
    let (status, body) = server.get_q("/api/catalog/entities", &[("limit", "many")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    let (status, body) = server.get_q("/api/catalog/entities", &[("filter", "=x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    server.stop().await;
}

async fn by_query_totals_order_text_and_cursors(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;
    let path = "/api/catalog/entities/by-query";

    let page = server.ok_q(path, &[("filter", "kind=component"), ("limit", "2")]).await;
    assert_eq!(page["totalItems"], json!(4));
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert!(page["pageInfo"]["nextCursor"].is_string(), "{page}");
    assert!(page["pageInfo"].get("prevCursor").is_none(), "first page has no prevCursor: {page}");

    // orderField desc, followed through its cursor.
    let page =
        server.ok_q(path, &[("filter", "kind=component"), ("orderField", "metadata.name,desc"), ("limit", "3")]).await;
    assert_eq!(names(&page["items"]), strs(&["web-frontend", "payments", "checkout-lib"]));
    let next = page["pageInfo"]["nextCursor"].as_str().expect("nextCursor").to_string();
    let page = server.ok_q(path, &[("cursor", &next), ("limit", "3")]).await;
    assert_eq!(names(&page["items"]), strs(&["checkout"]));
    assert_eq!(page["totalItems"], json!(4));
    assert!(page["pageInfo"].get("nextCursor").is_none(), "last page has no nextCursor: {page}");
    let prev = page["pageInfo"]["prevCursor"].as_str().expect("prevCursor").to_string();
    let back = server.ok_q(path, &[("cursor", &prev), ("limit", "3")]).await;
    assert_eq!(names(&back["items"]), strs(&["web-frontend", "payments", "checkout-lib"]));

    // Full-text filter over name and title (case-insensitive substring).
    let page = server.ok_q(path, &[("fullTextFilterTerm", "CHECK")]).await;
    assert_eq!(page["totalItems"], json!(3), "{page}");
    assert_eq!(sorted(names(&page["items"])), strs(&["checkout", "checkout-api", "checkout-lib"]));
    let page =
        server.ok_q(path, &[("fullTextFilterTerm", "service"), ("fullTextFilterFields", "metadata.title")]).await;
    assert_eq!(names(&page["items"]), strs(&["checkout"]));
    let page = server.ok_q(path, &[("fullTextFilterTerm", "check"), ("filter", "kind=api")]).await;
    assert_eq!(names(&page["items"]), strs(&["checkout-api"]));

    // Cursor paging through everything returns each entity exactly once.
    let mut seen: Vec<String> = Vec::new();
    let mut page = server.ok_q(path, &[("limit", "5"), ("fields", "metadata.uid,metadata.name")]).await;
    let mut pages = 1;
    loop {
        assert_eq!(page["totalItems"], json!(FIXTURE_ENTITIES));
        for item in page["items"].as_array().expect("items") {
            seen.push(item["metadata"]["uid"].as_str().expect("uid projected").to_string());
        }
        let Some(next) = page["pageInfo"]["nextCursor"].as_str().map(str::to_string) else { break };
        assert!(pages < 10, "cursor paging does not end");
        page = server.ok_q(path, &[("cursor", &next), ("limit", "5")]).await;
        pages += 1;
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), FIXTURE_ENTITIES, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), FIXTURE_ENTITIES, "an entity came twice: {seen:?}");

    // Malformed cursor: 400 in Backstage's error shape.
    let (status, body) = server.get_q(path, &[("cursor", "not-a-cursor!!")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    assert!(body["error"]["message"].as_str().unwrap().contains("cursor"), "{body}");
    let (status, body) = server.get_q(path, &[("orderField", "metadata.name,sideways")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    server.stop().await;
}

async fn lookups_by_name_uid_refs_and_facets(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;

    // by-name is case-insensitive in kind, namespace and name.
    let entity = server.ok("/api/catalog/entities/by-name/COMPONENT/Default/CheckOut").await;
    assert_eq!(entity["metadata"]["name"], json!("checkout"));
    assert_eq!(entity["kind"], json!("Component"));
    assert_eq!(entity["metadata"]["namespace"], json!("default"));
    let uid = entity["metadata"]["uid"].as_str().expect("uid").to_string();
    assert!(entity["metadata"]["etag"].is_string());
    assert!(
        entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
            .as_str()
            .is_some_and(|l| l.starts_with("file:")),
        "{entity}"
    );
    let (status, body) = server.get("/api/catalog/entities/by-name/component/default/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_backstage_error(&body, "NotFoundError");

    // by-uid.
    let by_uid = server.ok(&format!("/api/catalog/entities/by-uid/{uid}")).await;
    assert_eq!(by_uid["metadata"]["name"], json!("checkout"));
    assert_eq!(by_uid, entity);
    let (status, body) = server.get("/api/catalog/entities/by-uid/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_backstage_error(&body, "NotFoundError");

    // by-refs keeps the request order and answers null for missing refs.
    let (status, body) = server
        .post(
            "/api/catalog/entities/by-refs",
            &json!({"entityRefs": ["api:checkout-api", "component:default/nope", "Component:Default/Payments", "group:team-a"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["metadata"]["name"], json!("checkout-api"));
    assert!(items[1].is_null(), "{body}");
    assert_eq!(items[2]["metadata"]["name"], json!("payments"));
    assert_eq!(items[3]["kind"], json!("Group"));
    let (status, body) = server
        .post(
            "/api/catalog/entities/by-refs",
            &json!({"entityRefs": ["component:checkout"], "fields": ["metadata.name"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"items": [{"metadata": {"name": "checkout"}}]}));

    // Facets.
    let facets = server.ok_q("/api/catalog/entity-facets", &[("facet", "kind")]).await;
    let kinds: BTreeMap<String, u64> = facets["facets"]["kind"]
        .as_array()
        .expect("kind facet")
        .iter()
        .map(|f| (f["value"].as_str().unwrap().to_string(), f["count"].as_u64().unwrap()))
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("API", 1),
        ("Agent", 1),
        ("Component", 4),
        ("Dataset", 1),
        ("Domain", 1),
        ("Group", 2),
        ("Location", 1),
        ("Model", 1),
        ("Prompt", 1),
        ("Resource", 1),
        ("System", 1),
        ("User", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(kinds, expected);
    assert_eq!(facets["facets"]["kind"][0], json!({"value": "Component", "count": 4}), "most frequent first");

    let facets = server
        .ok_q(
            "/api/catalog/entity-facets",
            &[("facet", "spec.type"), ("facet", "metadata.tags"), ("filter", "kind=component")],
        )
        .await;
    let types: BTreeSet<(String, u64)> = facets["facets"]["spec.type"]
        .as_array()
        .expect("spec.type facet")
        .iter()
        .map(|f| (f["value"].as_str().unwrap().to_string(), f["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        types,
        [("library".to_string(), 1), ("service".to_string(), 2), ("website".to_string(), 1)].into_iter().collect()
    );
    let tags: BTreeSet<(String, u64)> = facets["facets"]["metadata.tags"]
        .as_array()
        .expect("tags facet")
        .iter()
        .map(|f| (f["value"].as_str().unwrap().to_string(), f["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        tags,
        [("go".to_string(), 1), ("java".to_string(), 2), ("typescript".to_string(), 1), ("web".to_string(), 2)]
            .into_iter()
            .collect()
    );
    let (status, body) = server.get("/api/catalog/entity-facets").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    server.stop().await;
}

async fn relations_in_both_directions(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;
    let expected: &[(&str, &str, &str, &str)] = &[
        ("component", "checkout", "ownedBy", "group:default/team-a"),
        ("group", "team-a", "ownerOf", "component:default/checkout"),
        ("component", "checkout", "partOf", "system:default/shop"),
        ("system", "shop", "hasPart", "component:default/checkout"),
        ("system", "shop", "partOf", "domain:default/commerce"),
        ("domain", "commerce", "hasPart", "system:default/shop"),
        ("component", "checkout", "dependsOn", "component:default/payments"),
        ("component", "payments", "dependencyOf", "component:default/checkout"),
        ("component", "checkout", "dependsOn", "resource:default/orders-db"),
        ("resource", "orders-db", "dependencyOf", "component:default/payments"),
        ("component", "checkout", "providesApi", "api:default/checkout-api"),
        ("api", "checkout-api", "apiProvidedBy", "component:default/checkout"),
        ("component", "web-frontend", "consumesApi", "api:default/checkout-api"),
        ("api", "checkout-api", "apiConsumedBy", "component:default/web-frontend"),
        ("user", "alice", "memberOf", "group:default/team-a"),
        ("group", "team-a", "hasMember", "user:default/alice"),
        ("model", "gpt-support", "trainedOn", "dataset:default/tickets"),
        ("dataset", "tickets", "trainingDataFor", "model:default/gpt-support"),
        ("prompt", "triage-prompt", "usesModel", "model:default/gpt-support"),
        ("model", "gpt-support", "modelUsedBy", "prompt:default/triage-prompt"),
        ("agent", "support-agent", "usesModel", "model:default/gpt-support"),
        ("model", "gpt-support", "modelUsedBy", "agent:default/support-agent"),
        ("agent", "support-agent", "usesPrompt", "prompt:default/triage-prompt"),
        ("prompt", "triage-prompt", "promptUsedBy", "agent:default/support-agent"),
        ("agent", "support-agent", "usesTool", "api:default/checkout-api"),
        ("api", "checkout-api", "toolUsedBy", "agent:default/support-agent"),
        ("agent", "support-agent", "ownedBy", "group:default/team-a"),
    ];
    for (kind, name, relation, target) in expected {
        let entity = server.entity(kind, name).await.unwrap_or_else(|| panic!("{kind}:{name} missing"));
        assert!(
            has_relation(&entity, relation, target),
            "{kind}:{name} lacks {relation} {target}: {}",
            entity["relations"]
        );
    }
    // Relations carry Backstage's structured target too, and appear once each.
    let checkout = server.entity("component", "checkout").await.unwrap();
    let owned_by: Vec<&Value> =
        checkout["relations"].as_array().unwrap().iter().filter(|r| r["type"] == json!("ownedBy")).collect();
    assert_eq!(owned_by.len(), 1, "{}", checkout["relations"]);
    assert_eq!(owned_by[0]["target"], json!({"kind": "group", "namespace": "default", "name": "team-a"}));
    let team_a = server.entity("group", "team-a").await.unwrap();
    let members: Vec<&Value> =
        team_a["relations"].as_array().unwrap().iter().filter(|r| r["type"] == json!("hasMember")).collect();
    assert_eq!(members.len(), 1, "declared on both sides, listed once: {}", team_a["relations"]);

    // Relations are filterable, as in Backstage.
    let owned = server.ok_q("/api/catalog/entities", &[("filter", "relations.ownedby=group:default/team-b")]).await;
    assert_eq!(sorted(names(&owned)), strs(&["checkout-lib", "orders-db", "payments"]));
    let users =
        server.ok_q("/api/catalog/entities", &[("filter", "relations.modelusedby=agent:default/support-agent")]).await;
    assert_eq!(names(&users), strs(&["gpt-support"]));
    server.stop().await;
}

async fn refresh_shows_edits_removals_and_writes_nothing_when_unchanged(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;
    let services = server.dir().join("catalog").join("services/catalog-info.yaml");
    let before = server.entity("component", "checkout").await.unwrap();
    let uid = before["metadata"]["uid"].clone();
    let etag = before["metadata"]["etag"].clone();

    // Edit: visible as soon as the refresh answers; uid kept, etag changed.
    write(&services, &SERVICES.replace("Turns baskets into orders", "Turns baskets into paid orders"));
    let (status, report) =
        server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/checkout"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["written"], json!(1), "{report}");
    assert_eq!(report["deleted"], json!(0), "{report}");
    let after = server.entity("component", "checkout").await.unwrap();
    assert_eq!(after["metadata"]["description"], json!("Turns baskets into paid orders"));
    assert_eq!(after["metadata"]["uid"], uid, "uid must survive an update");
    assert_ne!(after["metadata"]["etag"], etag, "etag must change with the content");
    let other = server.entity("component", "payments").await.unwrap();
    let found = server.ok_q("/api/catalog/search", &[("q", "paid")]).await;
    assert_eq!(found["items"][0]["entityRef"], json!("component:default/checkout"), "search follows edits: {found}");

    // Removal: gone as soon as the refresh answers, with its relations.
    let without_frontend: String = SERVICES
        .replace("Turns baskets into orders", "Turns baskets into paid orders")
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: web-frontend"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    write(&services, &without_frontend);
    let (status, report) = server.post("/api/catalog/refresh", &json!({"entityRef": "checkout"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["deleted"], json!(1), "{report}");
    assert_eq!(report["written"], json!(0), "{report}");
    assert!(server.entity("component", "web-frontend").await.is_none(), "removed entity still served");
    let api = server.entity("api", "checkout-api").await.unwrap();
    assert!(
        !has_relation(&api, "apiConsumedBy", "component:default/web-frontend"),
        "stale relation: {}",
        api["relations"]
    );
    let found = server.ok_q("/api/catalog/search", &[("q", "storefront")]).await;
    assert_eq!(found["totalItems"], json!(0), "search still finds a removed entity: {found}");
    assert_eq!(server.ok("/api/catalog/entities").await.as_array().map(Vec::len), Some(FIXTURE_ENTITIES - 1));

    // Unchanged: nothing written, nothing appended to the change log.
    let written = server.metric("plinth_ingest_entities_written_total").await;
    let position = server.metric("plinth_catalog_change_log_position").await;
    let (status, report) =
        server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/checkout"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["written"], json!(0), "{report}");
    assert_eq!(report["deleted"], json!(0), "{report}");
    assert_eq!(report["unchanged"], json!(FIXTURE_ENTITIES - 1), "{report}");
    assert_eq!(server.metric("plinth_ingest_entities_written_total").await, written);
    assert_eq!(server.metric("plinth_catalog_change_log_position").await, position);
    let unchanged = server.entity("component", "payments").await.unwrap();
    assert_eq!(unchanged["metadata"]["etag"], other["metadata"]["etag"]);

    // Refreshing an unknown entity is a 404.
    let (status, body) = server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/nope"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_backstage_error(&body, "NotFoundError");
    server.stop().await;
}

fn impact_refs(body: &Value) -> Vec<(String, u64)> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("impact without items: {body}"))
        .iter()
        .map(|i| (i["entityRef"].as_str().unwrap().to_string(), i["depth"].as_u64().unwrap()))
        .collect()
}

async fn impact_dependents_dependencies_limits_and_cycles(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;
    let path = "/api/catalog/impact/resource/default/orders-db";

    let impact = server.ok(path).await;
    assert_eq!(impact["entityRef"], json!("resource:default/orders-db"));
    assert_eq!(impact["direction"], json!("dependents"));
    assert_eq!(impact["count"], json!(5), "{impact}");
    assert_eq!(impact["cycles"], json!([]));
    let items = impact_refs(&impact);
    let depths: Vec<u64> = items.iter().map(|(_, d)| *d).collect();
    assert!(depths.windows(2).all(|w| w[0] <= w[1]), "nearest first: {items:?}");
    let by_ref: BTreeMap<String, u64> = items.into_iter().collect();
    let expected: BTreeMap<String, u64> = [
        ("component:default/checkout", 1),
        ("component:default/payments", 1),
        ("api:default/checkout-api", 2),
        ("component:default/web-frontend", 3),
        ("agent:default/support-agent", 3),
    ]
    .into_iter()
    .map(|(r, d)| (r.to_string(), d))
    .collect();
    assert_eq!(by_ref, expected);
    let frontend = impact["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["entityRef"] == json!("component:default/web-frontend"))
        .unwrap();
    assert_eq!(
        frontend["path"],
        json!([
            "resource:default/orders-db",
            "component:default/checkout",
            "api:default/checkout-api",
            "component:default/web-frontend"
        ])
    );

    // maxDepth and limit.
    let shallow = server.ok_q(path, &[("maxDepth", "1")]).await;
    assert_eq!(shallow["count"], json!(2), "{shallow}");
    assert_eq!(shallow["maxDepthReached"], json!(true));
    assert!(impact_refs(&shallow).iter().all(|(_, d)| *d == 1));
    let limited = server.ok_q(path, &[("limit", "2")]).await;
    assert_eq!(limited["count"], json!(5), "count stays the full count: {limited}");
    assert_eq!(limited["items"].as_array().map(Vec::len), Some(2));
    assert!(impact_refs(&limited).iter().all(|(_, d)| *d == 1), "the nearest come first: {limited}");

    // Dependencies.
    let deps =
        server.ok_q("/api/catalog/impact/component/default/web-frontend", &[("direction", "dependencies")]).await;
    assert_eq!(deps["direction"], json!("dependencies"));
    let by_ref: BTreeMap<String, u64> = impact_refs(&deps).into_iter().collect();
    let expected: BTreeMap<String, u64> = [
        ("api:default/checkout-api", 1),
        ("component:default/checkout", 2),
        ("component:default/payments", 3),
        ("resource:default/orders-db", 3),
    ]
    .into_iter()
    .map(|(r, d)| (r.to_string(), d))
    .collect();
    assert_eq!(by_ref, expected, "{deps}");
    // AI relations count as dependencies too.
    let model = server.ok("/api/catalog/impact/model/default/gpt-support").await;
    let refs: BTreeSet<String> = impact_refs(&model).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        refs,
        ["agent:default/support-agent", "prompt:default/triage-prompt"].iter().map(|s| s.to_string()).collect()
    );
    let agent = server.ok_q("/api/catalog/impact/agent/default/support-agent", &[("direction", "dependencies")]).await;
    let refs: BTreeSet<String> = impact_refs(&agent).into_iter().map(|(r, _)| r).collect();
    assert!(refs.contains("dataset:default/tickets") && refs.contains("resource:default/orders-db"), "{agent}");
    assert_eq!(agent["count"], json!(7), "{agent}");

    // Errors.
    let (status, body) = server.get("/api/catalog/impact/component/default/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_backstage_error(&body, "NotFoundError");
    let (status, body) = server.get_q(path, &[("direction", "sideways")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");

    // A dependency cycle is reported, and the walk ends.
    let cycle = write(
        &server.dir().join("cycle/catalog-info.yaml"),
        &["a:b", "b:c", "c:a"]
            .iter()
            .map(|pair| {
                let (name, dep) = pair.split_once(':').unwrap();
                format!(
                    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: cyc-{name}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n  dependsOn: [component:cyc-{dep}]\n"
                )
            })
            .collect::<Vec<_>>()
            .join("---\n"),
    );
    server.register_new(&cycle).await;
    let answer = terminates("impact over a cycle", server.ok("/api/catalog/impact/component/default/cyc-a")).await;
    assert_eq!(answer["count"], json!(2), "{answer}");
    let by_ref: BTreeMap<String, u64> = impact_refs(&answer).into_iter().collect();
    assert_eq!(by_ref.get("component:default/cyc-c"), Some(&1));
    assert_eq!(by_ref.get("component:default/cyc-b"), Some(&2));
    let cycles = answer["cycles"].as_array().expect("cycles");
    assert!(!cycles.is_empty(), "cycle not reported: {answer}");
    let first: Vec<&str> = cycles[0].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(first.first(), first.last(), "a cycle starts and ends on the same entity: {first:?}");
    for name in ["cyc-a", "cyc-b", "cyc-c"] {
        assert!(first.contains(&format!("component:default/{name}").as_str()), "{first:?}");
    }
    server.stop().await;
}

async fn neighbourhood_and_ranked_search(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    register_fixture(&server).await;

    let hood = server.ok("/api/catalog/neighbourhood/component/default/checkout").await;
    assert_eq!(hood["root"], json!("component:default/checkout"));
    let nodes: BTreeMap<String, u64> = hood["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["entityRef"].as_str().unwrap().to_string(), n["distance"].as_u64().unwrap()))
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("component:default/checkout", 0),
        ("group:default/team-a", 1),
        ("system:default/shop", 1),
        ("api:default/checkout-api", 1),
        ("component:default/payments", 1),
        ("resource:default/orders-db", 1),
    ]
    .into_iter()
    .map(|(r, d)| (r.to_string(), d))
    .collect();
    assert_eq!(nodes, expected, "{hood}");
    let edges = hood["edges"].as_array().expect("edges");
    for (source, relation, target) in [
        ("component:default/checkout", "dependsOn", "component:default/payments"),
        ("component:default/checkout", "ownedBy", "group:default/team-a"),
        ("component:default/payments", "dependsOn", "resource:default/orders-db"),
    ] {
        assert!(
            edges.contains(&json!({"source": source, "type": relation, "target": target})),
            "missing edge {source} {relation} {target}: {edges:?}"
        );
    }
    assert!(hood["nodes"][0]["summary"]["name"].is_string(), "{hood}");

    let hood = server.ok_q("/api/catalog/neighbourhood/component/default/checkout", &[("depth", "2")]).await;
    let nodes: BTreeMap<String, u64> = hood["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["entityRef"].as_str().unwrap().to_string(), n["distance"].as_u64().unwrap()))
        .collect();
    assert_eq!(nodes.get("component:default/web-frontend"), Some(&2), "{hood}");
    assert_eq!(nodes.get("agent:default/support-agent"), Some(&2), "{hood}");
    assert_eq!(nodes.get("domain:default/commerce"), Some(&2), "{hood}");
    assert_eq!(nodes.get("component:default/checkout"), Some(&0));

    let deps = server
        .ok_q("/api/catalog/neighbourhood/component/default/checkout", &[("depth", "3"), ("relation", "dependsOn")])
        .await;
    let refs: BTreeSet<String> =
        deps["nodes"].as_array().unwrap().iter().map(|n| n["entityRef"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        refs,
        ["component:default/checkout", "component:default/payments", "resource:default/orders-db"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let (status, body) = server.get("/api/catalog/neighbourhood/component/default/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Search: the exact name first, with facets over every hit.
    let found = server.ok_q("/api/catalog/search", &[("q", "checkout")]).await;
    assert_eq!(found["query"], json!("checkout"));
    let refs: Vec<&str> = found["items"].as_array().unwrap().iter().map(|i| i["entityRef"].as_str().unwrap()).collect();
    assert_eq!(refs.first(), Some(&"component:default/checkout"), "exact name match must rank first: {refs:?}");
    assert!(refs.contains(&"api:default/checkout-api") && refs.contains(&"component:default/checkout-lib"), "{refs:?}");
    assert!(found["totalItems"].as_u64().unwrap() >= 3, "{found}");
    let scores: Vec<f64> = found["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked by score: {scores:?}");
    let kinds = found["facets"]["kind"].as_array().expect("kind facet");
    assert!(kinds.iter().any(|f| f["value"] == json!("Component") && f["count"].as_u64().unwrap() >= 2), "{kinds:?}");
    assert!(kinds.iter().any(|f| f["value"] == json!("API") && f["count"] == json!(1)), "{kinds:?}");
    for facet in ["spec.type", "spec.owner", "spec.lifecycle", "metadata.tags", "metadata.namespace"] {
        assert!(found["facets"][facet].is_array(), "facet {facet} missing: {found}");
    }
    assert_eq!(found["items"][0]["summary"]["name"], json!("checkout"));

    let filtered = server.ok_q("/api/catalog/search", &[("q", "checkout"), ("filter", "kind=api")]).await;
    let refs: Vec<&str> =
        filtered["items"].as_array().unwrap().iter().map(|i| i["entityRef"].as_str().unwrap()).collect();
    assert_eq!(refs, ["api:default/checkout-api"]);
    assert_eq!(filtered["totalItems"], json!(1));

    let prefix = server.ok_q("/api/catalog/search", &[("q", "paym")]).await;
    assert_eq!(prefix["items"][0]["entityRef"], json!("component:default/payments"), "{prefix}");
    let described = server.ok_q("/api/catalog/search", &[("q", "storefront customers")]).await;
    assert_eq!(described["items"][0]["entityRef"], json!("component:default/web-frontend"), "{described}");
    let nothing = server.ok_q("/api/catalog/search", &[("q", "zzzzqqq")]).await;
    assert_eq!(nothing["totalItems"], json!(0));
    let (status, body) = server.get_q("/api/catalog/search", &[("q", "  ")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    server.stop().await;
}

const MIXED: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good-one
spec:
  type: service
  lifecycle: production
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: bad-one
spec:
  type: service
  lifecycle: [production]
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good-two
spec:
  type: service
  lifecycle: production
  owner: team-a
";

const SYNTAX: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good-three
spec:
  type: service
  lifecycle: production
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: broken
  tags: [unclosed
spec:
  type: service
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good-four
spec:
  type: service
  lifecycle: production
  owner: team-a
";

const BOMB: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: bomb
  annotations:
    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
spec:
  type: service
  lifecycle: production
  owner: team-a
";

const ERROR_ROOT: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: error-fixtures
spec:
  targets:
    - ./mixed.yaml
    - ./syntax.yaml
    - ./bomb.yaml
    - ./huge.yaml
    - ./missing.yaml
";

fn find_error<'a>(errors: &'a [Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    errors
        .iter()
        .find(|e| pred(e))
        .unwrap_or_else(|| panic!("no error for {what}: {}", serde_json::to_string_pretty(errors).unwrap()))
}

/// Whether an error is located in `file` (its `location` ends with it).
fn located_in(error: &Value, file: &str) -> bool {
    error["location"].as_str().is_some_and(|l| l.ends_with(file))
}

/// Whether an error is about `file`: located in it, or naming it.
fn about(error: &Value, file: &str) -> bool {
    located_in(error, file) || error["message"].as_str().is_some_and(|m| m.contains(file))
}

async fn ingestion_errors_are_reported_and_isolated(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let dir = server.dir().join("errors");
    write(&dir.join("mixed.yaml"), MIXED);
    write(&dir.join("syntax.yaml"), SYNTAX);
    write(&dir.join("bomb.yaml"), BOMB);
    let mut huge = String::from(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: huge\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
    );
    let filler = format!("# {}\n", "x".repeat(1022));
    while huge.len() <= 9 * 1024 * 1024 {
        huge.push_str(&filler);
    }
    write(&dir.join("huge.yaml"), &huge);
    let root = write(&dir.join("catalog-info.yaml"), ERROR_ROOT);

    let body = terminates("registering hostile input", server.register_new(&root)).await;
    let id = body["location"]["id"].as_str().unwrap().to_string();
    assert!(body["refresh"]["errors"].as_u64().unwrap() >= 5, "{body}");

    // Every good entity ingests; the bad ones do not.
    for name in ["good-one", "good-two", "good-three", "good-four"] {
        assert!(server.entity("component", name).await.is_some(), "{name} must ingest beside the broken documents");
    }
    for name in ["bad-one", "broken", "bomb", "huge"] {
        assert!(server.entity("component", name).await.is_none(), "{name} must not ingest");
    }

    let errors = server.errors_of(&id).await;
    for error in &errors {
        assert_eq!(error["locationId"], json!(id));
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
        assert_eq!(error["severity"], json!("error"), "{error}");
    }

    // The invalid entity: file, line, field, entity and message.
    let invalid = find_error(&errors, "the invalid lifecycle", |e| {
        located_in(e, "/mixed.yaml") && e["field"] == json!("spec.lifecycle")
    });
    assert_eq!(invalid["line"], json!(line_of(MIXED, "lifecycle: [production]")), "{invalid}");
    assert_eq!(invalid["entityRef"], json!("component:default/bad-one"), "{invalid}");
    assert!(invalid["location"].as_str().unwrap().starts_with("file:/"), "{invalid}");

    // The YAML syntax error, at its line, without hiding its neighbours.
    let syntax = find_error(&errors, "the syntax error", |e| located_in(e, "/syntax.yaml"));
    let line = syntax["line"].as_u64().expect("syntax error has a line");
    let doc_start = line_of(SYNTAX, "name: broken") - 3;
    let doc_end = line_of(SYNTAX, "name: good-four") - 3;
    assert!((doc_start..doc_end).contains(&line), "syntax error at line {line}, outside its document: {syntax}");

    // The alias bomb and the oversized file are refused with clear errors.
    let bomb = find_error(&errors, "the alias bomb", |e| about(e, "/bomb.yaml"));
    let message = bomb["message"].as_str().unwrap();
    assert!(message.contains("alias") && message.contains("nodes"), "{bomb}");
    let huge = find_error(&errors, "the oversized file", |e| about(e, "/huge.yaml"));
    let message = huge["message"].as_str().unwrap();
    assert!(message.contains("bytes") && message.contains("limit"), "{huge}");

    // The missing target, reported where it is declared.
    let missing = find_error(&errors, "the missing target", |e| about(e, "/missing.yaml"));
    assert_eq!(missing["line"], json!(line_of(ERROR_ROOT, "./missing.yaml")), "{missing}");

    let all = server.ok("/api/catalog/errors").await;
    assert_eq!(all["totalItems"].as_u64(), Some(errors.len() as u64));
    let for_entity = server.ok_q("/api/catalog/errors", &[("entityRef", "component:default/bad-one")]).await;
    assert_eq!(for_entity["totalItems"], json!(1), "{for_entity}");

    // The server is still healthy, and still answers.
    let (status, _) = server.text("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.metric("plinth_catalog_entities").await, 5.0, "the Location and the four good components");
    // Where the catalogue's memory goes, per structure.
    for structure in ["entity bodies", "entity records", "filter index", "search index"] {
        let bytes = server.metric(&format!("plinth_catalog_memory_bytes{{structure=\"{structure}\"}}")).await;
        assert!(bytes > 0.0, "{structure}: {bytes} bytes");
    }

    // Fixing the invalid entity clears its error and ingests it.
    write(&dir.join("mixed.yaml"), &MIXED.replace("lifecycle: [production]", "lifecycle: production"));
    let (status, report) =
        server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/good-one"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(server.entity("component", "bad-one").await.is_some());
    let errors = server.errors_of(&id).await;
    assert!(!errors.iter().any(|e| e["location"].as_str().unwrap_or("").ends_with("/mixed.yaml")), "{errors:?}");
    server.stop().await;
}

async fn conflicting_locations_first_one_keeps_the_entity(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let dir = server.dir().join("conflict");
    let component = |name: &str, description: &str| {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    };
    let first = write(&dir.join("first/catalog-info.yaml"), &component("shared", "from first"));
    let second = write(
        &dir.join("second/catalog-info.yaml"),
        &format!("{}---\n{}", component("shared", "from second"), component("only-second", "mine")),
    );
    let first_id = server.register_new(&first).await["location"]["id"].as_str().unwrap().to_string();
    let second_id = server.register_new(&second).await["location"]["id"].as_str().unwrap().to_string();

    let shared = server.entity("component", "shared").await.unwrap();
    assert_eq!(shared["metadata"]["description"], json!("from first"));
    assert!(server.entity("component", "only-second").await.is_some());
    assert!(server.errors_of(&first_id).await.is_empty());
    let errors = server.errors_of(&second_id).await;
    let conflict = errors
        .iter()
        .find(|e| e["entityRef"].as_str().is_some_and(|r| r.eq_ignore_ascii_case("component:default/shared")))
        .unwrap_or_else(|| panic!("conflict not listed: {errors:?}"));
    assert!(conflict["message"].as_str().unwrap().contains("already defined"), "{conflict}");
    assert!(conflict["location"].as_str().unwrap().contains("second"), "{conflict}");

    // Refreshing the second location does not take it over.
    let (status, _) = server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/only-second"})).await;
    assert_eq!(status, StatusCode::OK);
    let shared = server.entity("component", "shared").await.unwrap();
    assert_eq!(shared["metadata"]["description"], json!("from first"));
    assert_eq!(server.errors_of(&second_id).await.len(), 1);

    // Once the first location is gone, the second one's definition wins.
    let (status, _) = server.delete(&format!("/api/catalog/locations/{first_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/only-second"})).await;
    assert_eq!(status, StatusCode::OK);
    let shared = server.entity("component", "shared").await.expect("the second location now defines it");
    assert_eq!(shared["metadata"]["description"], json!("from second"));
    assert!(server.errors_of(&second_id).await.is_empty());
    server.stop().await;
}

async fn deleting_locations_and_entities(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let id = register_fixture(&server).await;
    let payments = server.entity("component", "payments").await.unwrap();
    let uid = payments["metadata"]["uid"].as_str().unwrap().to_string();

    let (status, body) = server.delete(&format!("/api/catalog/entities/by-uid/{uid}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server.get(&format!("/api/catalog/entities/by-uid/{uid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(server.entity("component", "payments").await.is_none());
    let (status, body) = server.delete(&format!("/api/catalog/entities/by-uid/{uid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_backstage_error(&body, "NotFoundError");
    assert_eq!(server.ok("/api/catalog/entities").await.as_array().map(Vec::len), Some(FIXTURE_ENTITIES - 1));

    // As in Backstage, it returns on the next refresh while its source declares it.
    let (status, _) = server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/checkout"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        server.entity("component", "payments").await.is_some(),
        "a deleted entity returns when its source is refreshed"
    );

    // Deleting the location removes every entity it manages.
    let (status, body) = server.delete(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(server.ok("/api/catalog/entities").await.as_array().is_some_and(Vec::is_empty));
    assert!(server.ok("/api/catalog/locations").await.as_array().is_some_and(Vec::is_empty));
    assert!(server.entity("component", "checkout").await.is_none());
    let found = server.ok_q("/api/catalog/search", &[("q", "checkout")]).await;
    assert_eq!(found["totalItems"], json!(0), "search still finds entities of a deleted location: {found}");
    let (status, _) = server.get("/api/catalog/impact/resource/default/orders-db").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.metric("plinth_catalog_entities").await, 0.0);
    let (status, body) = server.delete(&format!("/api/catalog/locations/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_backstage_error(&body, "NotFoundError");
    server.stop().await;
}

async fn validate_entity_and_operations_endpoints(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let valid = json!({"entity": {
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "fine"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
    }});
    let (status, body) = server.post("/api/catalog/validate-entity", &valid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invalid = json!({"entity": {
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "not a valid name!"}, "spec": {"type": "service"}
    }, "location": "url:https://example.com/catalog-info.yaml"});
    let (status, body) = server.post("/api/catalog/validate-entity", &invalid).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let errors = body["errors"].as_array().expect("errors list");
    let fields: BTreeSet<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    for field in ["metadata.name", "spec.lifecycle", "spec.owner"] {
        assert!(fields.contains(field), "no error for {field}: {body}");
    }
    for error in errors {
        assert_eq!(error["name"], json!("InputError"));
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = server.post("/api/catalog/validate-entity", &json!({"entity": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(server.ok("/api/catalog/entities").await.as_array().is_some_and(Vec::is_empty), "validation wrote nothing");

    let (status, text) = server.text("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("ok"), "{text}");
    let (status, text) = server.text("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{text}");

    register_fixture(&server).await;
    assert_eq!(server.metric("plinth_catalog_entities").await, FIXTURE_ENTITIES as f64);
    let (_, metrics) = server.text("/metrics").await;
    assert!(metrics.contains("# TYPE plinth_catalog_entities gauge"), "{metrics}");
    assert!(
        metrics
            .contains("plinth_http_requests_total{method=\"POST\",route=\"/api/catalog/locations\",status=\"201\"} 1"),
        "{metrics}"
    );
    assert!(server.metric("plinth_ingest_refreshes_total").await >= 1.0);
    assert!(server.metric("plinth_catalog_change_log_position").await >= FIXTURE_ENTITIES as f64);

    let (status, text) = server.text("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&text).expect("the OpenAPI document is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/catalog/entities",
        "/api/catalog/entities/by-query",
        "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
        "/api/catalog/entities/by-refs",
        "/api/catalog/entity-facets",
        "/api/catalog/locations",
        "/api/catalog/refresh",
        "/api/catalog/validate-entity",
        "/api/catalog/impact/{kind}/{namespace}/{name}",
        "/api/catalog/search",
        "/api/catalog/webhook",
    ] {
        assert!(paths.contains_key(path), "OpenAPI lacks {path}: {:?}", paths.keys().collect::<Vec<_>>());
    }
    server.stop().await;
}

fn git_component(name: &str, description: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
    )
}

/// A bare repository (`repo.git`) and a working clone with one commit.
fn git_repository(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "--bare", "--initial-branch=main", "repo.git"]);
    let bare = dir.join("repo.git");
    git(dir, &["clone", "--quiet", bare.to_str().unwrap(), "work"]);
    let work = dir.join("work");
    write(&work.join("catalog-info.yaml"), &git_component("git-service", "version one"));
    commit_and_push(&work, "first");
    (bare, work)
}

fn commit_and_push(work: &Path, message: &str) {
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", message]);
    git(work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
}

async fn git_location_follows_pushes_through_webhooks(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let (bare, work) = git_repository(&server.dir().join("git"));
    let url = format!("file://{}", bare.display());
    let (status, body) = server.post("/api/catalog/locations", &json!({"type": "url", "target": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["location"]["type"], json!("url"), "{body}");
    assert_eq!(body["location"]["plinthType"], json!("git"), "{body}");
    assert_eq!(body["refresh"]["errors"], json!(0), "{body}");
    let id = body["location"]["id"].as_str().unwrap().to_string();
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(body["refresh"]["revision"], json!(head), "{body}");
    let entity = server.entity("component", "git-service").await.expect("ingested from git");
    assert_eq!(entity["metadata"]["description"], json!("version one"));
    let managed_by = entity["metadata"]["annotations"]["backstage.io/managed-by-location"].as_str().unwrap_or("");
    assert!(managed_by.starts_with("url:") && managed_by.contains("catalog-info.yaml"), "{managed_by}");

    // Push, then a GitHub push event: the change is visible when it answers.
    write(&work.join("catalog-info.yaml"), &git_component("git-service", "version two"));
    commit_and_push(&work, "second");
    let payload = json!({"ref": "refs/heads/main", "repository": {"clone_url": url, "full_name": "test/repo"}});
    let (status, body) = server.post_with_header("/api/catalog/webhook", ("X-GitHub-Event", "push"), &payload).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["branch"], json!("main"));
    let refreshed = body["refreshed"].as_array().expect("refreshed reports");
    assert_eq!(refreshed.len(), 1, "{body}");
    assert_eq!(refreshed[0]["locationId"], json!(id));
    assert_eq!(refreshed[0]["written"], json!(1), "{body}");
    let entity = server.entity("component", "git-service").await.unwrap();
    assert_eq!(entity["metadata"]["description"], json!("version two"));

    // The plain form, with a new file in a subdirectory.
    write(&work.join("catalog-info.yaml"), &git_component("git-service", "version three"));
    write(&work.join("extra/catalog-info.yaml"), &git_component("git-extra", "added later"));
    commit_and_push(&work, "third");
    let (status, body) =
        server.post("/api/catalog/webhook", &json!({"repository": bare.to_string_lossy(), "branch": "main"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["refreshed"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(
        server.entity("component", "git-service").await.unwrap()["metadata"]["description"],
        json!("version three")
    );
    assert!(server.entity("component", "git-extra").await.is_some(), "new file in the repository not ingested");

    // Removing a file from the repository removes its entities.
    std::fs::remove_dir_all(work.join("extra")).unwrap();
    commit_and_push(&work, "fourth");
    let (status, body) = server.post("/api/catalog/webhook", &json!({"repository": url, "branch": "main"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(server.entity("component", "git-extra").await.is_none(), "entity of a deleted file still served");

    // A location registered with `type: git` and a branch works the same way
    // (it declares the same entity, so the first location keeps it).
    let (status, body) =
        server.post("/api/catalog/locations", &json!({"type": "git", "target": url, "branch": "main"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["location"]["branch"], json!("main"), "{body}");
    assert_eq!(body["location"]["plinthType"], json!("git"), "{body}");
    let main_id = body["location"]["id"].as_str().unwrap().to_string();
    assert!(server.errors_of(&id).await.is_empty());

    // A push to another branch does not refresh a location that tracks main,
    // and changes nothing; a push to another repository refreshes nothing.
    let (status, body) = server.post("/api/catalog/webhook", &json!({"repository": url, "branch": "feature"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed = body["refreshed"].as_array().expect("refreshed reports");
    assert!(
        !refreshed.iter().any(|r| r["locationId"] == json!(main_id)),
        "a push to `feature` refreshed the `main` location: {body}"
    );
    assert!(refreshed.iter().all(|r| r["written"] == json!(0) && r["deleted"] == json!(0)), "{body}");
    let (status, body) =
        server.post("/api/catalog/webhook", &json!({"repository": "https://example.com/other/repo.git"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["refreshed"], json!([]), "{body}");
    let (status, body) = server.post("/api/catalog/webhook", &json!({"hello": "world"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_backstage_error(&body, "InputError");
    let (status, body) =
        server.post_with_header("/api/catalog/webhook", ("X-GitHub-Event", "ping"), &json!({"zen": "hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.entity("component", "git-service").await.unwrap()["metadata"]["description"],
        json!("version three")
    );
    server.stop().await;
}

async fn unreachable_git_repository_is_reported(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let fixture_id = register_fixture(&server).await;
    let (status, body) =
        server.post("/api/catalog/locations", &json!({"type": "url", "target": "file:///nonexistent.git"})).await;
    assert_eq!(status, StatusCode::CREATED, "an unreachable repository is registered and reported: {body}");
    let id = body["location"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["refresh"]["errors"], json!(1), "{body}");
    let errors = server.errors_of(&id).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]["location"].as_str().unwrap().contains("nonexistent.git"), "{}", errors[0]);
    assert!(errors[0]["message"].as_str().unwrap().contains("git"), "{}", errors[0]);
    let locations = server.ok("/api/catalog/locations").await;
    let status_of = locations
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["data"]["id"] == json!(id))
        .map(|l| l["data"]["status"].clone())
        .expect("listed");
    assert_eq!(status_of["errors"], json!(1), "{status_of}");
    assert!(server.metric("plinth_ingest_refresh_failures_total").await >= 1.0);

    // Other locations are unaffected, before and after a webhook for the broken one.
    let (status, body) = server.post("/api/catalog/webhook", &json!({"repository": "file:///nonexistent.git"})).await;
    assert_eq!(status, StatusCode::OK, "a failing repository still answers the webhook: {body}");
    assert_eq!(server.ok("/api/catalog/entities").await.as_array().map(Vec::len), Some(FIXTURE_ENTITIES));
    assert!(server.errors_of(&fixture_id).await.is_empty());
    let (status, report) =
        server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/checkout"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["errors"], json!(0));
    let (status, _) = server.text("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// Backstage's example catalogue, beside the repository (`../shared/data/backstage-examples`).
fn backstage_examples() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/backstage-examples");
    assert!(
        dir.join("all.yaml").is_file(),
        "Backstage's example catalogue is missing at {}; these tests expect shared/ beside the repository",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

/// `(kind, name)` of every entity reachable from a Location file, read with a
/// small line-based reader that is enough for Backstage's example files.
fn entities_reachable_from(file: &Path, out: &mut BTreeSet<(String, String)>, seen: &mut HashSet<PathBuf>) {
    let file = file.canonicalize().unwrap_or_else(|_| panic!("target {} does not exist", file.display()));
    if !seen.insert(file.clone()) {
        return;
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for doc in text.split("\n---") {
        let mut kind = None;
        let mut name = None;
        let mut targets = Vec::new();
        let mut in_metadata = false;
        let mut in_targets = false;
        for line in doc.lines() {
            if let Some(k) = line.strip_prefix("kind:") {
                kind = Some(k.trim().trim_matches('"').to_string());
            }
            if !line.starts_with(' ') {
                in_metadata = line.starts_with("metadata:");
            }
            if in_metadata && name.is_none() {
                if let Some(n) = line.strip_prefix("  name:") {
                    name = Some(n.trim().trim_matches('"').to_string());
                }
            }
            if line.trim_start().starts_with("targets:") {
                in_targets = true;
                continue;
            }
            if in_targets {
                match line.trim_start().strip_prefix("- ") {
                    Some(target) => targets.push(target.trim().trim_matches('"').to_string()),
                    None => in_targets = false,
                }
            }
            if let Some(target) = line.trim_start().strip_prefix("target:") {
                targets.push(target.trim().trim_matches('"').to_string());
            }
        }
        if let (Some(kind), Some(name)) = (kind, name) {
            if kind == "Location" {
                for target in &targets {
                    entities_reachable_from(&file.parent().unwrap().join(target), out, seen);
                }
            }
            out.insert((kind, name));
        }
    }
}

async fn backstage_examples_ingest_without_errors(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let all = backstage_examples().join("all.yaml");
    let mut expected = BTreeSet::new();
    entities_reachable_from(&all, &mut expected, &mut HashSet::new());
    let kinds: BTreeSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["API", "Component", "Domain", "Location", "Resource", "System"].into_iter().collect());

    let body = server.register_new(&all).await;
    let id = body["location"]["id"].as_str().unwrap().to_string();
    let errors: Vec<Value> =
        server.errors_of(&id).await.into_iter().filter(|e| e["severity"] == json!("error")).collect();
    assert!(
        errors.is_empty(),
        "Backstage's examples must ingest without errors: {}",
        serde_json::to_string_pretty(&errors).unwrap()
    );
    assert_eq!(body["refresh"]["errors"], json!(0), "{}", body["refresh"]);

    let page = server
        .ok_q(
            "/api/catalog/entities/by-query",
            &[("limit", "1000"), ("fields", "kind,metadata.name,metadata.namespace")],
        )
        .await;
    assert_eq!(page["totalItems"], json!(expected.len()), "every reachable entity ingests");
    let ingested: BTreeSet<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["metadata"]["name"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ingested, expected);

    // Placeholders resolve, and the graph is connected as Backstage draws it.
    let petstore_api = server.entity("api", "petstore").await.expect("petstore API");
    assert!(
        petstore_api["spec"]["definition"].as_str().is_some_and(|d| d.contains("openapi")),
        "definition unresolved"
    );
    let petstore = server.entity("component", "petstore").await.expect("petstore component");
    assert!(has_relation(&petstore, "providesApi", "api:default/petstore"), "{}", petstore["relations"]);
    let facets = server.ok_q("/api/catalog/entity-facets", &[("facet", "kind")]).await;
    let total: u64 = facets["facets"]["kind"].as_array().unwrap().iter().map(|f| f["count"].as_u64().unwrap()).sum();
    assert_eq!(total, expected.len() as u64);
    server.stop().await;
}

async fn backstage_invalid_component_is_reported_with_fields_and_lines(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let file = backstage_examples().join("components/invalid-component.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let body = server.register_new(&file).await;
    let id = body["location"]["id"].as_str().unwrap().to_string();
    assert!(body["entities"].as_array().is_some_and(Vec::is_empty), "{body}");
    let errors = server.errors_of(&id).await;
    let name = find_error(&errors, "metadata.name", |e| {
        located_in(e, "/invalid-component.yaml") && e["field"] == json!("metadata.name")
    });
    assert_eq!(name["line"], json!(line_of(&text, "name: invalid component")), "{name}");
    let tag = find_error(&errors, "metadata.tags[1]", |e| {
        located_in(e, "/invalid-component.yaml") && e["field"] == json!("metadata.tags[1]")
    });
    assert_eq!(tag["line"], json!(line_of(&text, "- go 1.15.3")), "{tag}");
    for error in [name, tag] {
        assert!(error["message"].as_str().is_some_and(|m| m.len() > 10), "{error}");
        assert_eq!(error["severity"], json!("error"));
    }
    assert_eq!(server.ok("/api/catalog/entities").await, json!([]));
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Webhook secret, Location cycles, periodic refresh
// ---------------------------------------------------------------------------

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs a delivery.
fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` (sent byte for byte, as JSON) to the webhook with `headers`.
async fn post_webhook(server: &TestServer, headers: &[(&str, &str)], body: &[u8]) -> (StatusCode, Value) {
    let mut request = server
        .http
        .post(server.url("/api/catalog/webhook"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TestServer::body(request.send().await.expect("POST webhook")).await
}

/// A refused webhook: 401 with the whole Backstage error body, and without
/// the secret in it.
fn assert_unauthorized(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_backstage_error(body, "AuthenticationError");
    assert_eq!(body["request"], json!({"method": "POST", "url": "/api/catalog/webhook"}), "{what}: {body}");
    assert_eq!(body["response"], json!({"statusCode": 401}), "{what}: {body}");
    assert!(!body.to_string().contains(WEBHOOK_SECRET), "{what}: the answer shows the secret: {body}");
}

const WEBHOOK_SECRET: &str = "s3cret";

async fn webhook_secret_is_enforced_for_github_and_gitlab(backend: Backend) {
    let options = Options { webhook_secret: Some(WEBHOOK_SECRET.into()), ..Options::default() };
    let Some(server) = TestServer::start_with(backend, options).await else { return };
    let (bare, work) = git_repository(&server.dir().join("git"));
    let url = format!("file://{}", bare.display());
    let (status, body) = server.post("/api/catalog/locations", &json!({"type": "url", "target": url})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["location"]["id"].as_str().unwrap().to_string();
    let description = |entity: Option<Value>| entity.expect("git-service ingested")["metadata"]["description"].clone();
    assert_eq!(description(server.entity("component", "git-service").await), json!("version one"));

    // A push the server has not seen yet: refused deliveries must not fetch it.
    write(&work.join("catalog-info.yaml"), &git_component("git-service", "version two"));
    commit_and_push(&work, "second");
    let push = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "repository": {"clone_url": url, "full_name": "test/repo"}
    }))
    .unwrap();

    let (status, body) = post_webhook(&server, &[("X-GitHub-Event", "push")], &push).await;
    assert_unauthorized(status, &body, "an unsigned GitHub push");
    let wrong = github_signature("not-the-secret", &push);
    let (status, body) =
        post_webhook(&server, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &wrong)], &push).await;
    assert_unauthorized(status, &body, "a GitHub push signed with another secret");
    let (status, body) =
        post_webhook(&server, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", "sha256=not-hex-at-all")], &push)
            .await;
    assert_unauthorized(status, &body, "a malformed X-Hub-Signature-256");
    let tampered = serde_json::to_vec(&json!({"ref": "refs/heads/main", "repository": {"clone_url": url}})).unwrap();
    let signed_for_other_body = github_signature(WEBHOOK_SECRET, &tampered);
    let (status, body) =
        post_webhook(&server, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &signed_for_other_body)], &push)
            .await;
    assert_unauthorized(status, &body, "a signature of another body");
    let (status, body) =
        post_webhook(&server, &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "not-the-secret")], &push).await;
    assert_unauthorized(status, &body, "a GitLab push with a wrong token");
    let plain = serde_json::to_vec(&json!({"repository": url, "branch": "main"})).unwrap();
    let (status, body) = post_webhook(&server, &[], &plain).await;
    assert_unauthorized(status, &body, "an unsigned plain refresh request");
    let (status, body) = post_webhook(&server, &[("X-GitHub-Event", "ping")], br#"{"zen": "hi"}"#).await;
    assert_unauthorized(status, &body, "an unsigned ping");
    assert_eq!(
        description(server.entity("component", "git-service").await),
        json!("version one"),
        "a refused webhook refreshed the location"
    );

    // A correctly signed GitHub push is accepted and refreshes the location.
    let signature = github_signature(WEBHOOK_SECRET, &push);
    let (status, body) =
        post_webhook(&server, &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &signature)], &push).await;
    assert_eq!(status, StatusCode::OK, "a signed GitHub push: {body}");
    assert_eq!(body["branch"], json!("main"), "{body}");
    let refreshed = body["refreshed"].as_array().expect("refreshed reports");
    assert_eq!(refreshed.len(), 1, "{body}");
    assert_eq!(refreshed[0]["locationId"], json!(id), "{body}");
    assert_eq!(refreshed[0]["written"], json!(1), "{body}");
    assert_eq!(description(server.entity("component", "git-service").await), json!("version two"));

    // A GitLab push with the right token is accepted too.
    write(&work.join("catalog-info.yaml"), &git_component("git-service", "version three"));
    commit_and_push(&work, "third");
    let gitlab = serde_json::to_vec(&json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "project": {"git_http_url": url, "path_with_namespace": "test/repo"}
    }))
    .unwrap();
    let (status, body) =
        post_webhook(&server, &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", WEBHOOK_SECRET)], &gitlab).await;
    assert_eq!(status, StatusCode::OK, "a GitLab push with the right token: {body}");
    assert_eq!(body["branch"], json!("main"), "{body}");
    let refreshed = body["refreshed"].as_array().expect("refreshed reports");
    assert_eq!(refreshed.len(), 1, "{body}");
    assert_eq!(refreshed[0]["locationId"], json!(id), "{body}");
    assert_eq!(refreshed[0]["written"], json!(1), "{body}");
    assert_eq!(description(server.entity("component", "git-service").await), json!("version three"));

    // A signed ping is answered.
    let ping = br#"{"zen": "hi"}"#;
    let signature = github_signature(WEBHOOK_SECRET, ping);
    let (status, body) =
        post_webhook(&server, &[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", &signature)], ping).await;
    assert_eq!(status, StatusCode::OK, "a signed ping: {body}");
    assert!(server.errors_of(&id).await.is_empty());
    server.stop().await;
}

fn location(name: &str, targets: &[&str]) -> String {
    let targets: String = targets.iter().map(|t| format!("    - {t}\n")).collect();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  targets:\n{targets}"
    )
}

async fn location_cycles_are_reported_and_ingestion_ends(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else { return };
    let dir = server.dir().join("loop");
    // A -> B -> A, each file with a component beside its Location.
    let a_text = format!("{}---\n{}", location("loop-a", &["./b.yaml"]), git_component("in-a", "declared in A"));
    let b_text =
        format!("{}---\n{}", location("loop-b", &["./catalog-info.yaml"]), git_component("in-b", "declared in B"));
    let a = write(&dir.join("catalog-info.yaml"), &a_text);
    let b = write(&dir.join("b.yaml"), &b_text);
    let (a, b) = (a.canonicalize().unwrap(), b.canonicalize().unwrap());

    let body = terminates("registering a Location cycle", server.register_new(&a)).await;
    let id = body["location"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["refresh"]["errors"], json!(1), "the cycle is one error: {body}");
    let entities = sorted(names(&body["entities"]));
    assert_eq!(entities, strs(&["in-a", "in-b", "loop-a", "loop-b"]), "each entity once: {body}");

    // The documented error: at the target that points back, naming the chain.
    let expected_message = format!(
        "Location cycle: {} -> {} -> {}; remove the target that points back",
        a.display(),
        b.display(),
        a.display()
    );
    let errors = server.errors_of(&id).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let cycle = &errors[0];
    assert_eq!(cycle["message"], json!(expected_message), "{cycle}");
    assert_eq!(cycle["severity"], json!("error"), "{cycle}");
    assert_eq!(cycle["location"], json!(format!("file:{}", b.display())), "{cycle}");
    assert_eq!(cycle["line"], json!(line_of(&b_text, "- ./catalog-info.yaml")), "{cycle}");
    assert_eq!(cycle["locationId"], json!(id), "{cycle}");

    // Everything in the loop is served, once.
    for (kind, name) in [("location", "loop-a"), ("location", "loop-b"), ("component", "in-a"), ("component", "in-b")] {
        assert!(server.entity(kind, name).await.is_some(), "{kind}:{name} not ingested");
    }
    assert_eq!(server.ok("/api/catalog/entities").await.as_array().map(Vec::len), Some(4));

    // A refresh ends too, and reports the cycle once, not once more per pass.
    let (status, report) = terminates(
        "refreshing a Location cycle",
        server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/in-b"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["errors"], json!(1), "{report}");
    assert_eq!(report["written"], json!(0), "{report}");
    let errors = server.errors_of(&id).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["message"], json!(expected_message));

    // A Location that targets itself is the shortest cycle.
    let selfish_text = location("selfish", &["./catalog-info.yaml"]);
    let selfish = write(&server.dir().join("selfish/catalog-info.yaml"), &selfish_text).canonicalize().unwrap();
    let body = terminates("registering a self-targeting Location", server.register_new(&selfish)).await;
    let selfish_id = body["location"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["refresh"]["errors"], json!(1), "{body}");
    assert_eq!(names(&body["entities"]), strs(&["selfish"]));
    let errors = server.errors_of(&selfish_id).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0]["message"],
        json!(format!(
            "Location cycle: {} -> {}; remove the target that points back",
            selfish.display(),
            selfish.display()
        ))
    );
    assert_eq!(errors[0]["location"], json!(format!("file:{}", selfish.display())));
    assert_eq!(errors[0]["line"], json!(line_of(&selfish_text, "- ./catalog-info.yaml")));

    // Fixing the loop clears the error.
    write(&b, &format!("{}---\n{}", location("loop-b", &[]), git_component("in-b", "declared in B")));
    let (status, report) = server.post("/api/catalog/refresh", &json!({"entityRef": "component:default/in-b"})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["errors"], json!(0), "{report}");
    assert!(server.errors_of(&id).await.is_empty());
    server.stop().await;
}

async fn periodic_refresh_shows_edits_made_on_disk(backend: Backend) {
    let options = Options {
        catalog_config: Some(Box::new(|c| c.refresh_interval = Duration::from_secs(1))),
        ..Options::default()
    };
    let Some(server) = TestServer::start_with(backend, options).await else { return };
    let file = write(
        &server.dir().join("periodic/catalog-info.yaml"),
        &format!("{}---\n{}", git_component("ticking", "before the edit"), git_component("doomed", "removed later")),
    );
    let body = server.register_new(&file).await;
    assert_eq!(body["refresh"]["errors"], json!(0), "{body}");
    let description = |entity: Option<Value>| entity.map(|e| e["metadata"]["description"].clone());
    assert_eq!(description(server.entity("component", "ticking").await), Some(json!("before the edit")));
    let uid = server.entity("component", "ticking").await.unwrap()["metadata"]["uid"].clone();

    // An edit on disk, and no API call: the timer picks it up.
    write(
        &file,
        &format!("{}---\n{}", git_component("ticking", "after the edit"), git_component("doomed", "removed later")),
    );
    wait_until(Duration::from_secs(30), "the periodic refresh showing an edit", || async {
        description(server.entity("component", "ticking").await) == Some(json!("after the edit"))
    })
    .await;
    let edited = server.entity("component", "ticking").await.unwrap();
    assert_eq!(edited["metadata"]["uid"], uid, "uid must survive a periodic refresh");
    let found = server.ok_q("/api/catalog/search", &[("q", "after the edit")]).await;
    assert_eq!(found["items"][0]["entityRef"], json!("component:default/ticking"), "{found}");

    // A removal on disk disappears the same way.
    write(&file, &git_component("ticking", "after the edit"));
    wait_until(Duration::from_secs(30), "the periodic refresh removing an entity", || async {
        server.entity("component", "doomed").await.is_none()
    })
    .await;
    assert_eq!(
        description(server.entity("component", "ticking").await),
        Some(json!("after the edit")),
        "the remaining entity stays"
    );
    // The counter moves at the very end of a refresh, after the projection.
    wait_until(Duration::from_secs(30), "the periodic refreshes being counted", || async {
        server.metric("plinth_ingest_refreshes_total").await >= 3.0
    })
    .await;
    server.stop().await;
}
