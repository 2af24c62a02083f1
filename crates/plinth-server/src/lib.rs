//! Plinth's HTTP server: the Backstage-compatible catalog API, Plinth's
//! additions (impact, neighbourhood, search, errors, webhook), operations
//! endpoints and the OpenAPI document. Only this crate knows HTTP.

mod auth;
mod catalog_api;
mod error;
mod fields;
mod listen;
mod ops;
mod params;
mod plinth_api;
pub mod policy;
mod portal;
pub mod scaffolder;
pub mod signals;

use axum::routing::{get, post};
use axum::Router;
use plinth_catalog::Catalog;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi;

pub use error::ApiError;
pub use listen::{ConnectionLimits, ConnectionStats};

/// Server settings that are not the catalogue's.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Shared secret for webhook signatures (GitHub HMAC or GitLab token);
    /// `None` accepts unsigned webhooks.
    pub webhook_secret: Option<secrecy::SecretString>,
    /// The policy service; `None` answers policy endpoints with 503.
    pub policy: Option<Arc<policy::PolicyService>>,
    /// Golden paths; `None` answers scaffolder endpoints with 503.
    pub scaffolder: Option<Arc<scaffolder::Scaffolder>>,
    /// Signals (OTLP receiver and API); `None` answers them with 503.
    pub signals: Option<Arc<signals::SignalsService>>,
    /// Connection cap and timeouts.
    pub connections: ConnectionLimits,
}

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub config: Arc<ServerConfig>,
    http_metrics: Arc<ops::HttpMetrics>,
    connections: Arc<ConnectionStats>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Plinth API", description = "Plinth's API: Backstage-compatible catalogue endpoints under /api/catalog plus impact, neighbourhood, search, errors and webhooks; policy decisions, admission, decision log, waivers and scorecards under /api/policy; golden paths (Backstage scaffolder v2) under /api/scaffolder/v2; OTLP/HTTP at /v1/traces and /v1/metrics, signals under /api/signals, /api/traces and /api/cost."),
    paths(
        catalog_api::list_entities, catalog_api::query_entities, catalog_api::entity_by_name, catalog_api::entity_by_uid,
        catalog_api::delete_entity_by_uid, catalog_api::entities_by_refs, catalog_api::entity_facets,
        catalog_api::list_locations, catalog_api::get_location, catalog_api::add_location, catalog_api::delete_location,
        catalog_api::location_by_entity, catalog_api::refresh, catalog_api::validate_entity,
        plinth_api::impact, plinth_api::neighbourhood, plinth_api::search, plinth_api::errors, plinth_api::webhook,
        policy::api::evaluate, policy::api::admission, policy::api::decisions, policy::api::policies,
        policy::api::list_waivers, policy::api::create_waiver, policy::api::delete_waiver, policy::api::entity, policy::api::scorecards,
        scaffolder::api::templates, scaffolder::api::parameter_schema, scaffolder::api::actions, scaffolder::api::create_task,
        scaffolder::api::list_tasks, scaffolder::api::task, scaffolder::api::cancel, scaffolder::api::events, scaffolder::api::eventstream, scaffolder::api::dry_run,
        signals::receiver::traces, signals::receiver::metrics, signals::api::summary, signals::api::series_handler, signals::api::trace,
        signals::api::traces, signals::api::prompt_versions, signals::api::retrieval, signals::api::post_scores, signals::api::get_scores,
        signals::api::cost_anomalies, signals::api::cost_teams, signals::api::list_rules, signals::api::put_rule, signals::api::delete_rule,
        signals::api::alert_history, signals::api::evaluate_now, signals::api::health, signals::api::entity_health,
    ),
    components(schemas(policy::api::EvaluateRequest, policy::api::NewWaiver, policy::RequestContext, scaffolder::api::NewTask, scaffolder::api::DryRunRequest, signals::api::NewScore, signals::alerts::AlertRule, signals::alerts::Slo)),
    tags((name = "catalog", description = "Backstage's catalog API"), (name = "plinth", description = "Plinth's additions"),
         (name = "policy", description = "Policy-as-code: decisions, admission, decision log, waivers, scorecards"),
         (name = "scaffolder", description = "Golden paths: Backstage's scaffolder API (templates, tasks, event stream, dry run, actions)"),
         (name = "signals", description = "Observability with AI signals: OTLP/HTTP receiver, summaries, series, traces, prompt versions, retrieval quality, scores, cost and anomalies, alerts and health"))
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi_json())
}

/// Largest request body accepted (entity validation, webhooks).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub fn router(catalog: Arc<Catalog>, config: ServerConfig) -> Router {
    router_with_stats(catalog, config, Arc::default())
}

fn router_with_stats(catalog: Arc<Catalog>, config: ServerConfig, connections: Arc<ConnectionStats>) -> Router {
    let state = AppState { catalog, config: Arc::new(config), http_metrics: Arc::default(), connections };
    let catalog_routes = Router::new()
        .route("/entities", get(catalog_api::list_entities))
        .route("/entities/by-query", get(catalog_api::query_entities))
        .route("/entities/by-name/{kind}/{namespace}/{name}", get(catalog_api::entity_by_name))
        .route("/entities/by-uid/{uid}", get(catalog_api::entity_by_uid).delete(catalog_api::delete_entity_by_uid))
        .route("/entities/by-refs", post(catalog_api::entities_by_refs))
        .route("/entity-facets", get(catalog_api::entity_facets))
        .route("/locations", get(catalog_api::list_locations).post(catalog_api::add_location))
        .route("/locations/{id}", get(catalog_api::get_location).delete(catalog_api::delete_location))
        .route("/locations/by-entity/{kind}/{namespace}/{name}", get(catalog_api::location_by_entity))
        .route("/refresh", post(catalog_api::refresh))
        .route("/validate-entity", post(catalog_api::validate_entity))
        .route("/impact/{kind}/{namespace}/{name}", get(plinth_api::impact))
        .route("/neighbourhood/{kind}/{namespace}/{name}", get(plinth_api::neighbourhood))
        .route("/search", get(plinth_api::search))
        .route("/errors", get(plinth_api::errors))
        .route("/webhook", post(plinth_api::webhook));
    let policy_routes = Router::new()
        .route("/evaluate", post(policy::api::evaluate))
        .route("/admission", post(policy::api::admission))
        .route("/decisions", get(policy::api::decisions))
        .route("/policies", get(policy::api::policies))
        .route("/waivers", get(policy::api::list_waivers).post(policy::api::create_waiver))
        .route("/waivers/{id}", axum::routing::delete(policy::api::delete_waiver))
        .route("/entities/{kind}/{namespace}/{name}", get(policy::api::entity))
        .route("/scorecards", get(policy::api::scorecards));
    let scaffolder_routes = Router::new()
        .route("/templates", get(scaffolder::api::templates))
        .route("/templates/{namespace}/{kind}/{name}/parameter-schema", get(scaffolder::api::parameter_schema))
        .route("/actions", get(scaffolder::api::actions))
        .route("/tasks", get(scaffolder::api::list_tasks).post(scaffolder::api::create_task))
        .route("/tasks/{id}", get(scaffolder::api::task))
        .route("/tasks/{id}/cancel", post(scaffolder::api::cancel))
        .route("/tasks/{id}/events", get(scaffolder::api::events))
        .route("/tasks/{id}/eventstream", get(scaffolder::api::eventstream))
        .route("/dry-run", post(scaffolder::api::dry_run));
    let signals_routes = Router::new()
        .route("/summary", get(signals::api::summary))
        .route("/series", get(signals::api::series_handler))
        .route("/prompts/{name}/versions", get(signals::api::prompt_versions))
        .route("/retrieval", get(signals::api::retrieval))
        .route("/scores", get(signals::api::get_scores).post(signals::api::post_scores))
        .route("/alerts/rules", get(signals::api::list_rules).post(signals::api::put_rule))
        .route("/alerts/rules/{id}", axum::routing::delete(signals::api::delete_rule))
        .route("/alerts/history", get(signals::api::alert_history))
        .route("/alerts/evaluate", post(signals::api::evaluate_now))
        .route("/health", get(signals::api::health))
        .route("/health/{kind}/{namespace}/{name}", get(signals::api::entity_health));
    // OTLP bodies have their own (configurable) limit, checked by the receiver.
    let otlp_routes = Router::new()
        .route("/v1/traces", post(signals::receiver::traces))
        .route("/v1/metrics", post(signals::receiver::metrics));
    Router::new()
        .nest("/api/catalog", catalog_routes)
        .nest("/api/policy", policy_routes)
        .nest("/api/scaffolder/v2", scaffolder_routes)
        .nest("/api/signals", signals_routes)
        .route("/api/traces", get(signals::api::traces))
        .route("/api/traces/{trace_id}", get(signals::api::trace))
        .route("/api/cost/anomalies", get(signals::api::cost_anomalies))
        .route("/api/cost/teams", get(signals::api::cost_teams))
        .route("/api/openapi.json", get(openapi))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(portal::router())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .merge(otlp_routes)
        .layer(axum::middleware::from_fn(auth::authorize))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    catalog: Arc<Catalog>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(vec![listener], catalog, config, shutdown).await
}

/// Serves the same application on several listeners (the API port and,
/// for instance, the standard OTLP/HTTP port 4318), with the connection
/// cap and timeouts of `config.connections`.
pub async fn serve_on(
    listeners: Vec<tokio::net::TcpListener>,
    catalog: Arc<Catalog>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = config.connections;
    let stats = Arc::new(ConnectionStats::default());
    let app = router_with_stats(catalog, config, stats.clone());
    for listener in &listeners {
        if let Ok(address) = listener.local_addr() {
            if !address.ip().is_loopback() {
                tracing::warn!(%address, "listening beyond loopback: mutations are not yet authenticated (API tokens arrive in a later release)");
            }
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(listen::serve(listeners, app, limits, stats, stopped));
    shutdown.await;
    let _ = stop.send(true);
    serving.await.map_err(std::io::Error::other)?
}
