//! Plinth's HTTP surface: the JSON API (Backstage-compatible catalogue and
//! scaffolder, policy, signals), the OTLP/HTTP receiver, the portal's
//! pages, operations endpoints and the OpenAPI document.
//!
//! Every handler is thin: it parses the request, calls one use case of the
//! [`plinth_app::Platform`] with the [`plinth_app::Caller`] the middleware
//! identified, and shapes the answer. Application errors become HTTP
//! statuses in one place ([`error::status_of`]). Only this crate knows HTTP.

mod api;
mod error;
mod listen;
mod middleware;
mod openapi;
mod ops;
mod params;
mod portal;

use plinth_app::Platform;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use error::{status_of, ApiError};
pub use listen::{ConnectionLimits, ConnectionStats};
pub use middleware::{CLAIMED_USER, REQUEST_ID};
pub use openapi::openapi_json;

/// Settings of the HTTP surface itself (the platform has its own).
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Shared secret for webhook signatures (GitHub HMAC or GitLab token);
    /// `None` accepts unsigned webhooks.
    pub webhook_secret: Option<secrecy::SecretString>,
    /// Connection cap and timeouts.
    pub connections: ConnectionLimits,
}

/// What every handler is given: the platform and the server's settings.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) platform: Arc<Platform>,
    pub(crate) config: Arc<ServerConfig>,
    http_metrics: Arc<ops::HttpMetrics>,
    connections: Arc<ConnectionStats>,
}

/// The whole HTTP application over `platform`.
pub fn router(platform: Arc<Platform>, config: ServerConfig) -> axum::Router {
    router_with_stats(platform, config, Arc::default())
}

fn router_with_stats(platform: Arc<Platform>, config: ServerConfig, connections: Arc<ConnectionStats>) -> axum::Router {
    use axum::routing::get;
    let state = AppState { platform, config: Arc::new(config), http_metrics: Arc::default(), connections };
    axum::Router::new()
        .merge(api::router())
        .route("/api/openapi.json", get(openapi::serve))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(portal::router())
        .layer(RequestBodyLimitLayer::new(api::MAX_JSON_BODY))
        .merge(api::otlp_router())
        .layer(axum::middleware::from_fn(error::backstage_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::identify))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    platform: Arc<Platform>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(vec![listener], platform, config, shutdown).await
}

/// Serves the same application on several listeners (the API port and,
/// for instance, the standard OTLP/HTTP port 4318), with the connection
/// cap and timeouts of `config.connections`.
pub async fn serve_on(
    listeners: Vec<tokio::net::TcpListener>,
    platform: Arc<Platform>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = config.connections;
    let platform_mode = platform.auth_mode();
    let stats = Arc::new(ConnectionStats::default());
    let app = router_with_stats(platform, config, stats.clone());
    for listener in &listeners {
        if let Ok(address) = listener.local_addr() {
            if !address.ip().is_loopback() && platform_mode == plinth_app::AuthMode::Local {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "refusing to listen on {address} without authentication: anyone who can reach it could change \
                         anything. Start with `--auth required` (and create a token with `plinth token create --admin`), \
                         or listen on 127.0.0.1"
                    ),
                ));
            }
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(listen::serve(listeners, app, limits, stats, stopped));
    shutdown.await;
    let _ = stop.send(true);
    serving.await.map_err(std::io::Error::other)?
}
