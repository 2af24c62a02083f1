//! Two replicas (whole platforms with their own caches, over real HTTP) on
//! one PostgreSQL database see the same state within a second: an alert
//! rule created through one is listed and evaluated on the other, its state
//! and the health it sets follow, a rule deleted through one is gone from
//! the other (and no longer evaluated), a waiver granted through one turns
//! the other's deny into an allow (and back when revoked), and a token
//! revoked through one is refused by the other. Every delay is measured
//! and printed, and must stay under [`BOUND`].

use std::time::{Duration, Instant};

use plinth_app::identity::{issue_token, TokenRequest, TokenSubject};
use plinth_app::signals::SignalsConfig;
use plinth_app::{AuthConfig, AuthMode};
use plinth_testkit::{Backend, Options, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// What "visible on every replica" allows.
const BOUND: Duration = Duration::from_secs(1);

fn options() -> Options {
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy/small");
    Options {
        signals: true,
        // Rules are evaluated by the test, not by the clock.
        signals_config: Some(Box::new(|config: &mut SignalsConfig| config.alert_interval = Duration::from_secs(3600))),
        policies: Some(vec![policies.to_string_lossy().into_owned()]),
        auth: Some(AuthConfig { mode: AuthMode::Required, ..AuthConfig::default() }),
        ..Options::default()
    }
}

/// A request with a bearer token; the status and the body (JSON, or text).
async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = server.http.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    TestServer::body(request.send().await.expect("request")).await
}

async fn issue(server: &TestServer, user: &str, scopes: &[&str]) -> (String, String) {
    let request = TokenRequest {
        name: format!("{user} in the replica test"),
        subject: TokenSubject::User(user.to_string()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        lifetime: None,
    };
    let issued = issue_token(&server.store, request, "test").await.expect("issue a token");
    (issued.token.id, issued.secret)
}

/// Polls `check` every 10 ms until it holds; returns how long that took
/// after `since` (when the change was answered). Panics naming `what` after
/// 10 s; the caller asserts the bound, so a slow case reports its time.
async fn propagation(what: &str, since: Instant, mut check: impl AsyncFnMut() -> bool) -> Duration {
    loop {
        if check().await {
            let took = since.elapsed();
            eprintln!("PROPAGATION {what}: {took:?}");
            return took;
        }
        assert!(since.elapsed() < Duration::from_secs(10), "{what}: not visible after 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The rule `id` as the replica lists it (`None` when it does not).
async fn listed_rule(server: &TestServer, token: &str, id: &str) -> Option<Value> {
    let (status, rules) = call(server, token, Method::GET, "/api/signals/alerts/rules", None).await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    rules.as_array().expect("a list").iter().find(|r| r["id"] == id).cloned()
}

/// Four chat calls of the `checkout` service, just now, as OTLP/JSON.
fn chat_calls(trace: u64) -> Value {
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let text = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
    let spans: Vec<Value> = (1..=4)
        .map(|i: i64| {
            let start = now_ns - 5_000_000_000 + i * 10_000_000;
            json!({"traceId": format!("{trace:032x}"), "spanId": format!("{:016x}", trace * 16 + i as u64),
                   "name": "chat gpt-4o", "kind": 3,
                   "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 100_000_000).to_string(),
                   "attributes": [text("gen_ai.operation.name", "chat"), text("gen_ai.request.model", "gpt-4o")]})
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [text("service.name", "checkout")]},
        "scopeSpans": [{"scope": {"name": "replica-test"}, "spans": spans}],
    }]})
}

fn checkout_deployment(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop",
                     "labels": {"app.kubernetes.io/name": "checkout", "plinth.io/component": "checkout"}},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "checkout"}},
                "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "checkout", "image": image}]}
            }
        }
    })
}

/// How many events the history of the test's rule holds.
async fn history(server: &TestServer, token: &str) -> usize {
    let path = "/api/signals/alerts/history?rule=checkout-calls";
    let (status, events) = call(server, token, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events.as_array().expect("a list").len()
}

async fn decision(server: &TestServer, token: &str, input: &Value) -> String {
    let body = json!({"point": "deploy", "input": input});
    let (status, answer) = call(server, token, Method::POST, "/api/policy/evaluate", Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["result"].as_str().expect("a result").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cached_state_reaches_the_other_replica_within_a_second() {
    let Some(a) = TestServer::start_with(Backend::Postgres, options()).await else { return };
    let b = a.replica(options()).await;
    let (_, admin) = issue(&a, "user:default/root", &["admin"]).await;
    let mut took = Vec::new();

    // An alert rule created through A is listed by B.
    let rule = json!({"id": "checkout-calls", "name": "Checkout calls", "service": "checkout", "signal": "requests",
                      "op": ">=", "threshold": 1, "window": "1h"});
    let (status, body) = call(&a, &admin, Method::POST, "/api/signals/alerts/rules", Some(&rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let since = Instant::now();
    took.push(
        propagation("alert rule created on A, listed on B", since, async || {
            listed_rule(&b, &admin, "checkout-calls").await.is_some()
        })
        .await,
    );

    // B evaluates it: the state it stores is what A shows.
    let (status, body) = call(&a, &admin, Method::POST, "/v1/traces", Some(&chat_calls(0xa1))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, rules) = call(&b, &admin, Method::POST, "/api/signals/alerts/evaluate", None).await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    let since = Instant::now();
    let fired = rules.as_array().unwrap().iter().find(|r| r["id"] == "checkout-calls").unwrap()["status"].clone();
    assert_eq!(fired["state"], "firing", "{rules}");
    took.push(
        propagation("alert state stored by B, shown on A", since, async || {
            listed_rule(&a, &admin, "checkout-calls").await.is_some_and(|r| r["status"]["state"] == "firing")
        })
        .await,
    );
    // Evaluating again on A continues from B's stored state: no second firing.
    let (status, _) = call(&a, &admin, Method::POST, "/api/signals/alerts/evaluate", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history(&a, &admin).await, 1, "one transition, recorded once");

    // Deleted through B: gone from A, and A no longer evaluates it.
    let (status, body) = call(&b, &admin, Method::DELETE, "/api/signals/alerts/rules/checkout-calls", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let since = Instant::now();
    took.push(
        propagation("alert rule deleted on B, gone from A", since, async || {
            listed_rule(&a, &admin, "checkout-calls").await.is_none()
        })
        .await,
    );
    let (status, rules) = call(&a, &admin, Method::POST, "/api/signals/alerts/evaluate", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rules, json!([]), "A evaluates no deleted rule");
    assert_eq!(history(&a, &admin).await, 1);

    // A waiver granted through A turns B's deny into an allow; revoked
    // through B, A denies again.
    let bad = checkout_deployment("ghcr.io/acme/checkout:latest");
    assert_eq!(decision(&b, &admin, &bad).await, "deny");
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    let waiver = json!({"owner": "group:default/team-shop", "reason": "pinning tags this quarter",
                        "entity": "component:default/checkout", "rule": "ACME-IMG-001",
                        "expiresAt": expires.format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, created) = call(&a, &admin, Method::POST, "/api/policy/waivers", Some(&waiver)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let since = Instant::now();
    took.push(
        propagation("waiver granted on A, applied on B", since, async || decision(&b, &admin, &bad).await == "allow")
            .await,
    );
    let id = created["id"].as_str().unwrap();
    let (status, body) = call(&b, &admin, Method::DELETE, &format!("/api/policy/waivers/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let since = Instant::now();
    took.push(
        propagation("waiver revoked on B, gone on A", since, async || decision(&a, &admin, &bad).await == "deny").await,
    );

    // A token revoked through A is refused by B.
    let (alice_id, alice) = issue(&a, "user:default/alice", &["read"]).await;
    for server in [&a, &b] {
        assert_eq!(call(server, &alice, Method::GET, "/api/auth/me", None).await.0, StatusCode::OK);
    }
    let (status, body) = call(&a, &admin, Method::DELETE, &format!("/api/auth/tokens/{alice_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let since = Instant::now();
    took.push(
        propagation("token revoked on A, refused by B", since, async || {
            call(&b, &alice, Method::GET, "/api/auth/me", None).await.0 == StatusCode::UNAUTHORIZED
        })
        .await,
    );

    let slowest = took.iter().max().copied().unwrap_or_default();
    assert!(slowest <= BOUND, "every change must reach the other replica within {BOUND:?}; took {took:?}");
    b.stop().await;
    a.stop().await;
}
