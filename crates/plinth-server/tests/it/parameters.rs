//! Every query (and path) parameter the OpenAPI document lists, and those
//! of every portal page, driven with extreme values — 0, -1, 2^63, 2^64, huge and hostile strings — and then
//! with random ones: no answer is a 5xx, no connection drops, and the
//! server stays alive. A number out of its range is a 400 that names the
//! parameter.

use plinth_testkit::{Backend, Options, TestServer};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// One operation of the document: method, path template and parameters.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    path: String,
    query: Vec<Parameter>,
    path_params: Vec<String>,
}

#[derive(Debug, Clone)]
struct Parameter {
    name: String,
    required: bool,
    integer: bool,
}

fn operations(document: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let mut query = Vec::new();
            let mut path_params = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap().to_string();
                match parameter["in"].as_str() {
                    Some("query") => {
                        let schema = &parameter["schema"];
                        let integer = schema["type"] == "integer"
                            || schema["type"].as_array().is_some_and(|t| t.contains(&json!("integer")));
                        query.push(Parameter { name, required: parameter["required"] == true, integer });
                    }
                    Some("path") => path_params.push(name),
                    _ => {}
                }
            }
            out.push(Operation { method, path: path.clone(), query, path_params });
        }
    }
    out
}

/// The portal's pages and the query parameters they read (the portal is
/// not in the API document, but it is just as reachable).
fn portal_pages() -> Vec<Operation> {
    let page = |path: &str, params: &[(&str, bool)]| Operation {
        method: Method::GET,
        path: path.to_string(),
        query: params
            .iter()
            .map(|(name, integer)| Parameter { name: name.to_string(), required: false, integer: *integer })
            .collect(),
        path_params: path
            .split('/')
            .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(str::to_string)
            .collect(),
    };
    let window: &[(&str, bool)] = &[("range", false), ("from", false), ("to", false)];
    vec![
        page("/", &[]),
        page(
            "/catalog",
            &[("page", true), ("q", false), ("sort", false), ("kind", false), ("owner", false), ("tag", false)],
        ),
        page("/catalog/{namespace}/{kind}/{name}", &[]),
        page("/catalog/{namespace}/{kind}/{name}/graph", &[("depth", true), ("direction", false)]),
        page("/catalog/{namespace}/{kind}/{name}/signals", window),
        page("/cost", window),
        page("/cost/teams/{namespace}/{name}", window),
        page(
            "/cost/anomalies",
            &[("range", false), ("from", false), ("to", false), ("relative", false), ("minUsd", false)],
        ),
        page("/traces", &[("limit", true), ("service", false), ("agent", false)]),
        page("/traces/{traceId}", &[]),
        page(
            "/prompts/{name}/versions",
            &[("range", false), ("from", false), ("to", false), ("baseline", false), ("alpha", false)],
        ),
        page("/search", &[("q", false), ("page", true)]),
        page("/policies", &[]),
        page("/create", &[]),
        page("/create/templates/{namespace}/{name}", &[]),
        page("/create/tasks", &[]),
        page("/create/tasks/{id}", &[]),
    ]
}

/// A value that names something real in the demo catalogue.
fn sample_path_value(name: &str) -> &'static str {
    match name {
        "kind" => "component",
        "namespace" => "default",
        "name" => "auth-service",
        "traceId" => "0123456789abcdef0123456789abcdef",
        _ => "x",
    }
}

/// A value a required query parameter takes when it is not the one driven.
fn sample_query_value(name: &str) -> &'static str {
    match name {
        "q" => "checkout",
        "facet" => "kind",
        _ => "1",
    }
}

fn extremes() -> Vec<String> {
    let mut values: Vec<String> = [
        "0",
        "-1",
        "1",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "4294967296",
        "1e308",
        "1e309",
        "-0",
        "NaN",
        "inf",
        "",
        " ",
        "true",
        "null",
        "\u{0}",
        "../../../../etc/passwd",
        "/proc/self/environ",
        "--upload-pack=touch /tmp/plinth-pwned",
        "<script>alert(1)</script>",
        "{{7*7}}",
        "'; DROP TABLE entities; --",
        "kind=component,metadata.name=",
        "20000000000000d",
        "99999999999999999999m",
        "2026-13-45T99:99:99Z",
        "-271821-04-20T00:00:00Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push("9".repeat(10_000));
    values.push("a".repeat(10_000));
    values.push("💥".repeat(2_000));
    values.push("x".repeat(70_000));
    values
}

struct Driver<'a> {
    server: &'a TestServer,
}

impl Driver<'_> {
    /// Sends `operation` with `driven` set to `value` (other required query
    /// parameters filled with samples, path parameters as given).
    async fn send(
        &self,
        operation: &Operation,
        path_values: &[(String, String)],
        driven: Option<(&str, &str)>,
    ) -> Result<(StatusCode, String), String> {
        let mut path = operation.path.clone();
        for (name, value) in path_values {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            path = path.replace(&format!("{{{name}}}"), &encoded);
        }
        let mut query: Vec<(String, String)> = operation
            .query
            .iter()
            .filter(|p| p.required && Some(p.name.as_str()) != driven.map(|d| d.0))
            .map(|p| (p.name.clone(), sample_query_value(&p.name).to_string()))
            .collect();
        if let Some((name, value)) = driven {
            query.push((name.to_string(), value.to_string()));
        }
        let mut request = self.server.http.request(operation.method.clone(), self.server.url(&path)).query(&query);
        if operation.method != Method::GET && operation.method != Method::DELETE {
            request = request.json(&json!({}));
        }
        let response = request.send().await.map_err(|e| {
            let shown: String = format!("{path} {query:?}").chars().take(300).collect();
            format!("{} {shown}: {e}", operation.method)
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Ok((status, text))
    }

    async fn check(
        &self,
        operation: &Operation,
        path_values: &[(String, String)],
        driven: Option<(&str, &str)>,
    ) -> (StatusCode, String) {
        let shown = driven.map(|(k, v)| (k, v.chars().take(60).collect::<String>()));
        match self.send(operation, path_values, driven).await {
            Ok((status, text)) => {
                assert!(
                    !status.is_server_error(),
                    "{} {} with {shown:?} answered {status}: {}",
                    operation.method,
                    operation.path,
                    text.chars().take(400).collect::<String>()
                );
                (status, text)
            }
            // A request line beyond hyper's URI limit (64 KiB) is answered
            // 414 and the connection closed while the client still sends:
            // the client sees a reset. The server must still be up.
            Err(_) if driven.is_some_and(|(_, v)| v.len() > 60_000) => {
                let alive = self.server.http.get(self.server.url("/healthz")).send().await;
                assert!(alive.is_ok_and(|r| r.status().is_success()), "the server died after a huge request line");
                (StatusCode::URI_TOO_LONG, String::new())
            }
            Err(error) => panic!("the connection failed (did the server crash?): {error}"),
        }
    }
}

/// Operations whose query parameters are driven. Streams are left out (an
/// event stream answers forever by design); mutations are driven only
/// through their query parameters, with an empty body.
fn driven_operations(document: &Value) -> Vec<Operation> {
    operations(document)
        .into_iter()
        .filter(|op| !op.path.ends_with("/eventstream"))
        .filter(|op| op.path != "/v1/traces" && op.path != "/v1/metrics")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openapi_query_parameter_survives_extreme_values() {
    let root = repo_root();
    let options = Options {
        policies: Some(vec![root.join("policies").to_string_lossy().into_owned()]),
        scaffolder: true,
        signals: true,
        ..Options::default()
    };
    let server = TestServer::start_with(Backend::Sqlite, options).await.unwrap();
    let (status, body) = server.register(&root.join("examples/demo/catalog-info.yaml")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.register(&root.join("templates/catalog-info.yaml")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let document = server.ok("/api/openapi.json").await;
    let mut operations = driven_operations(&document);
    assert!(operations.len() >= 40, "the document lists {} operations", operations.len());
    operations.extend(portal_pages());
    let driver = Driver { server: &server };
    let values = extremes();
    let mut requests = 0usize;
    let mut named = 0usize;

    for operation in &operations {
        let samples: Vec<(String, String)> =
            operation.path_params.iter().map(|p| (p.clone(), sample_path_value(p).to_string())).collect();
        let (baseline, _) = driver.check(operation, &samples, None).await;
        for parameter in &operation.query {
            for value in &values {
                let (status, text) = driver.check(operation, &samples, Some((&parameter.name, value))).await;
                requests += 1;
                // An integer out of any range is a 400 that names the
                // parameter (when the operation itself succeeds without it).
                let out_of_range = ["-1", "9223372036854775808", "18446744073709551616"].contains(&value.as_str());
                if parameter.integer && out_of_range && baseline.is_success() {
                    assert_eq!(
                        status,
                        StatusCode::BAD_REQUEST,
                        "{} {}?{}={value}: {text}",
                        operation.method,
                        operation.path,
                        parameter.name
                    );
                    assert!(
                        text.contains(&format!("`{}`", parameter.name)),
                        "the 400 for {}={value} on {} does not name the parameter: {text}",
                        parameter.name,
                        operation.path
                    );
                    named += 1;
                }
            }
        }
        // Path parameters get the hostile strings too.
        for name in &operation.path_params {
            for value in values.iter().filter(|v| v.len() < 20_000) {
                let mut driven = samples.clone();
                if let Some(slot) = driven.iter_mut().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                }
                driver.check(operation, &driven, None).await;
                requests += 1;
            }
        }
        assert_eq!(server.get("/healthz").await.0, StatusCode::OK, "after {}", operation.path);
    }
    assert!(named >= 20, "only {named} integer parameters were checked for a naming 400");

    // Random values for random parameters.
    let with_query: Vec<&Operation> = operations.iter().filter(|op| !op.query.is_empty()).collect();
    let mut runner = TestRunner::deterministic();
    let value_strategy = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "\\PC{0,64}",
        "[0-9]{15,40}",
        "[-a-z0-9:/.,=_]{0,48}",
    ];
    let case_strategy = (0..with_query.len(), 0usize..16, value_strategy);
    for _ in 0..600 {
        let (op_index, param_pick, value) = case_strategy.new_tree(&mut runner).expect("a case").current();
        let operation = with_query[op_index];
        let parameter = &operation.query[param_pick % operation.query.len()];
        let samples: Vec<(String, String)> =
            operation.path_params.iter().map(|p| (p.clone(), sample_path_value(p).to_string())).collect();
        driver.check(operation, &samples, Some((&parameter.name, &value))).await;
        requests += 1;
    }
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    eprintln!(
        "{requests} requests over {} operations; {named} out-of-range integers named their parameter",
        operations.len()
    );
    server.stop().await;
}

/// The OpenAPI document is whole: every `$ref` names a schema it defines,
/// every operation answers some 2xx, and every 2xx answer with a body has a
/// schema, so a client generator and Schemathesis' response checks have
/// something to hold the server to. The document itself is a snapshot
/// (`snapshots/`): a change to the API is a reviewed diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_whole_and_reviewed() {
    let options = Options { scaffolder: true, signals: true, ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.unwrap();
    let document = server.ok("/api/openapi.json").await;
    server.stop().await;

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = Vec::new();
    refs(&document, &mut targets);
    assert!(targets.len() > 50, "only {} $refs", targets.len());
    let schemas = document["components"]["schemas"].as_object().expect("components.schemas");
    let dangling: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| t.strip_prefix("#/components/schemas/").is_none_or(|name| !schemas.contains_key(name)))
        .collect();
    assert!(dangling.is_empty(), "$refs to schemas the document does not define: {dangling:?}");

    let mut untyped = Vec::new();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = operation["responses"].as_object().expect("responses");
            let success: Vec<(&String, &Value)> =
                responses.iter().filter(|(status, _)| status.starts_with('2')).collect();
            assert!(!success.is_empty(), "{method} {path} lists no 2xx answer");
            for (status, response) in success {
                if status == "204" {
                    continue;
                }
                let content = response["content"].as_object();
                let typed = content.is_some_and(|c| !c.is_empty() && c.values().all(|m| m.get("schema").is_some()));
                if !typed {
                    untyped.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(operations >= 50, "the document lists {operations} operations");
    assert!(untyped.is_empty(), "2xx answers without a schema: {untyped:#?}");

    insta::assert_json_snapshot!("openapi", document);
}

/// The error bodies clients meet most, as reviewed snapshots: Backstage's
/// shape (`error`, `request`, `response`), a message that says what was
/// wrong and how to fix it, and field details where there are fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_are_reviewed_snapshots() {
    let options = Options { scaffolder: true, signals: true, ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.unwrap();
    let mut bodies = serde_json::Map::new();
    let mut record = |name: &str, status: StatusCode, body: Value| {
        bodies.insert(name.to_string(), json!({"status": status.as_u16(), "body": body}));
    };
    let (status, body) = server.get("/api/catalog/entities/by-name/component/default/no-such-thing").await;
    record("not_found", status, body);
    let (status, body) = server.get("/api/catalog/search?q=x&offset=9223372036854775807").await;
    record("parameter_out_of_range", status, body);
    let (status, body) = server.get("/api/catalog/entities?filter=%3D").await;
    record("malformed_filter", status, body);
    let (status, body) = server.post_raw("/api/catalog/locations", "text/plain", "target: x").await;
    record("not_json", status, body);
    let (status, body) = server.post_raw("/api/catalog/locations", "application/json", "{\"target\": ").await;
    record("json_syntax", status, body);
    let (status, body) = server.post("/api/catalog/locations", &json!({"target": "x", "tpye": "file"})).await;
    record("unknown_field", status, body);
    let (status, body) = server.post("/api/catalog/entities/by-refs", &json!({"entityRefs": ["no kind"]})).await;
    record("bad_ref", status, body);
    let (status, body) = server
        .post(
            "/api/signals/alerts/rules",
            &json!({"name": "r", "signal": "error_rate", "threshold": 0.5, "window": "5m"}),
        )
        .await;
    record("invalid_rule_fields", status, body);
    server.stop().await;
    insta::assert_json_snapshot!("error_bodies", Value::Object(bodies));
}
