//! ${{ values.name }}: ${{ values.description }}
//!
//! Created from the Plinth `service` golden path. Traces are exported with
//! OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (default http://localhost:4318).

use axum::{routing::get, Json, Router};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::{trace as sdktrace, Resource};
use serde::Serialize;
use std::net::SocketAddr;
use tower_http::trace::TraceLayer;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

const SERVICE_NAME: &str = "${{ values.name }}";

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", service: SERVICE_NAME, version: env!("CARGO_PKG_VERSION") })
}

#[tracing::instrument]
async fn hello() -> &'static str {
    "hello from ${{ values.name }}\n"
}

pub fn app() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(hello))
        .layer(TraceLayer::new_for_http())
}

fn init_telemetry() -> anyhow::Result<sdktrace::TracerProvider> {
    let provider = opentelemetry_otlp::new_pipeline()
        .tracing()
        .with_exporter(opentelemetry_otlp::new_exporter().http())
        .with_trace_config(sdktrace::Config::default().with_resource(Resource::new([
            KeyValue::new("service.name", SERVICE_NAME),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.namespace", "${{ values.system | parseEntityRef | pick('name') }}"),
        ])))
        .install_batch(opentelemetry_sdk::runtime::Tokio)?;
    let tracer = provider.tracer(SERVICE_NAME);
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info")))
        .with(tracing_subscriber::fmt::layer().json())
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .init();
    Ok(provider)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let provider = init_telemetry()?;
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(${{ values.port }});
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, app())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    provider.shutdown()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn healthz_is_ok() {
        let response = app().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("\"ok\""));
    }
}
