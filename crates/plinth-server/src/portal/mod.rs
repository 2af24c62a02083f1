//! The web portal: server-rendered HTML pages, one folder per capability
//! (`catalog/`: home, explorer, entity pages, relation graphs, search;
//! `policy/`; `golden_paths/`; `signals/`), each calling the application
//! layer's use cases. This module holds what they share: the router, the
//! templates (minijinja, auto-escaping, undefined values refused when
//! printed), the embedded assets, error and not-found pages, and the
//! live-update event stream.

mod catalog;
mod golden_paths;
mod policy;
mod signals;

use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures::Stream;
use plinth_app::Caller;
use plinth_model::{parse_ref_lenient, EntityRef};
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const CSS: &str = include_str!("../../assets/portal.css");
const JS: &str = include_str!("../../assets/portal.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// Routes of the portal, merged into the API router.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(catalog::home))
        .route("/catalog", get(catalog::explorer))
        .route("/catalog/{namespace}/{kind}/{name}", get(catalog::entity_page))
        .route("/catalog/{namespace}/{kind}/{name}/graph", get(catalog::graph_page))
        .route("/catalog/{namespace}/{kind}/{name}/signals", get(signals::entity_signals_page))
        .route("/cost", get(signals::cost_page))
        .route("/cost/teams/{namespace}/{name}", get(signals::team_cost_page))
        .route("/cost/anomalies", get(signals::anomalies_page))
        .route("/traces", get(signals::traces_page))
        .route("/traces/{trace_id}", get(signals::trace_page))
        .route("/prompts/{name}/versions", get(signals::prompt_versions_page))
        .route("/search", get(catalog::search_page))
        .route("/policies", get(policy::policies_page))
        .route("/create", get(golden_paths::templates_page))
        .route("/create/templates/{namespace}/{name}", get(golden_paths::template_page))
        .route("/create/tasks", get(golden_paths::tasks_page))
        .route("/create/tasks/{id}", get(golden_paths::task_page))
        .route("/api/catalog/events", get(events))
        .route("/assets/portal.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/assets/portal.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", FAVICON) }))
        .fallback(fallback)
        .layer(axum::Extension(Arc::new(catalog::NameCache::default())))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")], body)
        .into_response()
}

/// Changes with the assets, so immutable caching is safe.
fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in CSS.bytes().chain(JS.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:x}", hash & 0xffff_ffff)
    })
}

fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // A typo'd variable fails the render (and so a test) instead of
        // printing nothing; `{% if x %}` on an absent value stays allowed.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.set_formatter(html_formatter);
        env.add_filter("urlencode", |value: String| encode(&value));
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("home.html", include_str!("templates/home.html")),
            ("catalog.html", include_str!("templates/catalog.html")),
            ("entity.html", include_str!("templates/entity.html")),
            ("graph.html", include_str!("templates/graph.html")),
            ("search.html", include_str!("templates/search.html")),
            ("not_found.html", include_str!("templates/not_found.html")),
            ("error.html", include_str!("templates/error.html")),
            ("policies.html", include_str!("templates/policies.html")),
            ("create.html", include_str!("templates/create.html")),
            ("create_template.html", include_str!("templates/create_template.html")),
            ("create_task.html", include_str!("templates/create_task.html")),
            ("create_tasks.html", include_str!("templates/create_tasks.html")),
            ("signals_macros.html", include_str!("templates/signals_macros.html")),
            ("signals_error.html", include_str!("templates/signals_error.html")),
            ("signals_entity.html", include_str!("templates/signals_entity.html")),
            ("signals_traces.html", include_str!("templates/signals_traces.html")),
            ("trace.html", include_str!("templates/trace.html")),
            ("cost.html", include_str!("templates/cost.html")),
            ("cost_team.html", include_str!("templates/cost_team.html")),
            ("cost_anomalies.html", include_str!("templates/cost_anomalies.html")),
            ("prompt_versions.html", include_str!("templates/prompt_versions.html")),
        ] {
            if let Err(error) = env.add_template(name, source) {
                tracing::error!(%error, template = name, "portal template does not compile");
            }
        }
        env
    })
}

/// minijinja's HTML escaping, minus `/` (which it escapes as `&#x2f;`):
/// escapes `& < > " '`, enough for text and quoted attributes.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    let plain = value.as_str().map(str::to_string).or_else(|| {
        let simple = !value.is_safe() && !value.is_undefined() && !value.is_none();
        (simple && matches!(value.kind(), minijinja::value::ValueKind::Number | minijinja::value::ValueKind::Bool))
            .then(|| value.to_string())
    });
    match plain {
        Some(text) if !value.is_safe() && !matches!(state.auto_escape(), minijinja::AutoEscape::None) => {
            let mut escaped = String::with_capacity(text.len() + 8);
            for c in text.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#39;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn page(status: StatusCode, template: &str, mut context: Value) -> Response {
    context["asset_version"] = json!(asset_version());
    context["nav"] = json!(match template {
        "catalog.html" | "entity.html" | "graph.html" | "signals_entity.html" | "prompt_versions.html" => "catalog",
        "cost.html" | "cost_team.html" | "cost_anomalies.html" => "cost",
        "search.html" => "search",
        "policies.html" => "policies",
        "create.html" | "create_template.html" | "create_task.html" | "create_tasks.html" => "create",
        _ => "",
    });
    if template == "search.html" {
        context["header_q"] = context["q"].clone();
    }
    let rendered =
        templates().get_template(template).and_then(|t| t.render(minijinja::Value::from_serialize(&context)));
    match rendered {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, template, "portal template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered; see the server log").into_response()
        }
    }
}

/// `/catalog/{namespace}/{kind}/{name}` for a ref `kind:namespace/name`.
pub(crate) fn entity_href(entity_ref: &str) -> String {
    let (kind, rest) = entity_ref.split_once(':').unwrap_or(("component", entity_ref));
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    format!("/catalog/{}/{}/{}", encode(namespace), encode(&kind.to_lowercase()), encode(name))
}

fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn lookup_key(kind: &str, namespace: &str, name: &str) -> String {
    EntityRef::new(kind, namespace, name).key()
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

// ---------------------------------------------------------------- not found

/// A request the portal cannot answer, as a page: what was wrong and how to
/// fix it, with the API error's status.
fn error_page(error: ApiError) -> Response {
    let heading = match error.status {
        StatusCode::BAD_REQUEST => "Invalid request",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Something went wrong",
    };
    page(error.status, "error.html", json!({"title": heading, "heading": heading, "message": error.message}))
}

async fn fallback(State(app): State<AppState>, Extension(caller): Extension<Caller>, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        let body = json!({"error": {"name": "NotFoundError", "message": format!("no API endpoint at {path}")},
                          "response": {"statusCode": 404}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let suggestions = catalog::suggest(&app, &caller, last);
    page(
        StatusCode::NOT_FOUND,
        "not_found.html",
        json!({"title": "Not found", "path": path, "suggestions": suggestions, "query": last}),
    )
}

// ---------------------------------------------------------------- events

/// `GET /api/catalog/events[?entityRef=REF]`: changes as server-sent
/// events (`{seq, entityRef, op}`), with keep-alive comments.
async fn events(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    use futures::StreamExt;
    let wanted = params
        .one("entityRef")
        .filter(|r| !r.is_empty())
        .map(|r| parse_ref_lenient(r, Some("component")).map(|r| r.key()).unwrap_or_else(|_| r.to_lowercase()));
    let receiver = app.platform.catalog().subscribe(&caller);
    let stream = tokio_stream::wrappers::BroadcastStream::new(receiver).filter_map(move |change| {
        let wanted = wanted.clone();
        async move {
            let change = match change {
                Ok(change) => change,
                // Lagged: tell the page to reload what it shows.
                Err(_) => return Some(Ok(Event::default().event("lagged").data("{}"))),
            };
            if let Some(wanted) = &wanted {
                if change.entity_ref.to_lowercase() != *wanted {
                    return None;
                }
            }
            let mut data = Map::new();
            data.insert("seq".into(), json!(change.seq));
            data.insert("entityRef".into(), json!(change.entity_ref));
            data.insert("op".into(), json!(change.op));
            Some(Ok(Event::default().data(Value::Object(data).to_string())))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive"))
}
