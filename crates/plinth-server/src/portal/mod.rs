//! The web portal: server-rendered HTML pages, one folder per capability
//! (`catalog/`: home, explorer, entity pages, relation graphs, search;
//! `policy/`; `golden_paths/`; `signals/`), each calling the application
//! layer's use cases. This module holds what they share: the router, the
//! templates (minijinja, auto-escaping, undefined values refused when
//! printed), the embedded assets, error and not-found pages, and the
//! live-update event stream.

mod audit;
mod auth;
mod catalog;
mod golden_paths;
mod markdown;
mod policy;
mod signals;
mod view;

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

const CSS: &str = concat!(include_str!("../../assets/portal.css"), include_str!("../../assets/entity.css"));
const JS: &str = concat!(include_str!("../../assets/portal.js"), include_str!("../../assets/entity.js"));
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// Routes of the portal, merged into the API router.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(auth::my_team::home))
        .route("/stars/{namespace}/{kind}/{name}", axum::routing::post(auth::my_team::toggle_star))
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
        .route("/teams/{namespace}/{name}/failing", get(policy::team::team_failing_page))
        .route("/create", get(golden_paths::templates_page))
        .route("/create/templates/{namespace}/{name}", get(golden_paths::template_page))
        .route("/create/tasks", get(golden_paths::tasks_page))
        .route("/create/tasks/{id}", get(golden_paths::task_page))
        .route("/audit", get(audit::audit_page))
        .route("/auth/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/auth/sign-out", axum::routing::post(auth::sign_out))
        .route("/auth/oidc/start", get(auth::oidc_start))
        .route("/tokens", get(auth::tokens::tokens_page).post(auth::tokens::create_token))
        .route("/tokens/{id}/revoke", axum::routing::post(auth::tokens::revoke_token))
        .route("/auth/oidc/callback", get(auth::oidc_callback))
        .route("/api/catalog/events", get(events))
        .route("/assets/portal.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/assets/portal.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", FAVICON) }))
        .fallback(fallback)
        .layer(axum::middleware::from_fn(session_scope))
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
        // Every page renders a typed view: a typo'd variable or field fails
        // the render (and so a test) instead of printing nothing or
        // silently taking the `else` branch.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
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
            ("auth_sign_in.html", include_str!("templates/auth_sign_in.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("tokens.html", include_str!("templates/tokens.html")),
            ("rule_failures.html", include_str!("templates/rule_failures.html")),
            ("check_failures.html", include_str!("templates/check_failures.html")),
            ("team_failures.html", include_str!("templates/team_failures.html")),
            ("team_failing.html", include_str!("templates/team_failing.html")),
            ("my_team.html", include_str!("templates/my_team.html")),
            ("star_button.html", include_str!("templates/star_button.html")),
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

/// Who is signed in, as every page's header shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Session {
    /// The server runs in local mode (no sign-in).
    local_mode: bool,
    /// `user:default/alice`, `service:ci`; `None` when nobody is signed in.
    actor: Option<String>,
    admin: bool,
}

tokio::task_local! {
    /// The caller of the page being rendered.
    static SESSION: Session;
}

/// Makes the caller known to [`render`] for the request's page.
async fn session_scope(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let session = match request.extensions().get::<Caller>() {
        Some(caller) => Session {
            local_mode: matches!(caller.principal, plinth_app::Principal::Local),
            actor: caller.is_authenticated().then(|| caller.actor()),
            admin: caller.admin,
        },
        None => Session::default(),
    };
    SESSION.scope(session, next.run(request)).await
}

/// What every page shows around its own view: the navigation tab, the
/// asset version, the header search box and who is signed in.
#[derive(serde::Serialize)]
struct Chrome<'a, T: serde::Serialize> {
    #[serde(flatten)]
    view: &'a T,
    asset_version: &'static str,
    nav: &'static str,
    header_q: &'a str,
    session: Session,
}

/// Renders `template` with a typed view model. Templates run with strict
/// undefined values: a field the view does not have fails the render (and
/// so a test) instead of printing nothing.
fn page<T: serde::Serialize>(status: StatusCode, template: &str, view: &T) -> Response {
    render(status, template, view, "")
}

/// [`page`] with the header search box pre-filled (the search page).
fn render<T: serde::Serialize>(status: StatusCode, template: &str, view: &T, header_q: &str) -> Response {
    let nav = match template {
        "catalog.html" | "entity.html" | "graph.html" | "signals_entity.html" | "prompt_versions.html" => "catalog",
        "cost.html" | "cost_team.html" | "cost_anomalies.html" => "cost",
        "search.html" => "search",
        "policies.html" | "team_failing.html" => "policies",
        "create.html" | "create_template.html" | "create_task.html" | "create_tasks.html" => "create",
        _ => "",
    };
    let session = SESSION.try_with(Session::clone).unwrap_or_default();
    let chrome = Chrome { view, asset_version: asset_version(), nav, header_q, session };
    let rendered = templates().get_template(template).and_then(|t| t.render(minijinja::Value::from_serialize(&chrome)));
    match rendered {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), template, "portal template failed");
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

/// `next=PATH` for the sign-in page, to come back after signing in.
pub(crate) fn next_query(path: &str) -> String {
    query(&[("next", path)])
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
        StatusCode::UNAUTHORIZED => "Sign in",
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    page(error.status, "error.html", &ErrorView { title: heading, heading, message: &error.message })
}

#[derive(serde::Serialize)]
struct ErrorView<'a> {
    title: &'a str,
    heading: &'a str,
    message: &'a str,
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
        &&NotFoundView { title: "Not found", path, wanted: None, suggestions, query: last },
    )
}

/// A page or entity that does not exist, with the closest names.
#[derive(serde::Serialize)]
struct NotFoundView<'a> {
    title: &'a str,
    path: &'a str,
    /// The entity reference asked for, when the path named one.
    wanted: Option<&'a str>,
    suggestions: Vec<view::EntityLink>,
    query: &'a str,
}

// ---------------------------------------------------------------- events

/// `GET /api/catalog/events[?entityRef=REF]`: changes as server-sent
/// events (`{seq, entityRef, op}`), with keep-alive comments.
async fn events(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    use futures::StreamExt;
    let wanted = params
        .one("entityRef")
        .filter(|r| !r.is_empty())
        .map(|r| parse_ref_lenient(r, Some("component")).map(|r| r.key()).unwrap_or_else(|_| r.to_lowercase()));
    let receiver = app.platform.catalog().subscribe(&caller)?;
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}
