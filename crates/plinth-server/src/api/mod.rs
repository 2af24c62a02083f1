//! The JSON API, one folder per capability: `mod.rs` holds the router and
//! handlers (thin: parse, call the application layer, shape the answer),
//! `dto.rs` the request and response bodies with their schemas.

pub(crate) mod auth;
pub(crate) mod catalog;
pub(crate) mod golden_paths;
pub(crate) mod policy;
pub(crate) mod schema;
pub(crate) mod signals;
pub(crate) mod stars;

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

/// A time as the API writes it: RFC 3339.
pub(crate) fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Most bytes of a JSON request body (entity validation, webhooks, tasks).
pub(crate) const MAX_JSON_BODY: usize = 8 * 1024 * 1024;

/// A JSON request body whose problems are answered in Backstage's error
/// shape (400 naming the line and column, 415 for another content type),
/// never axum's plain-text rejections.
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type =
            request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(mime == "application/json" || mime.ends_with("+json")) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "InputError",
                format!(
                    "the body must be JSON (Content-Type: application/json), not `{}`",
                    crate::params::shorten(&content_type)
                ),
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    e.status(),
                    "PayloadTooLargeError",
                    format!("the body is larger than {} MiB; send less at a time", MAX_JSON_BODY / (1024 * 1024)),
                )
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        // serde_json's message ends with the line and column.
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the body must be {}: {e}", body_name::<T>())))?;
        Ok(JsonBody(value))
    }
}

/// What a body of type `T` is called in an error: its type's name without
/// the transport suffixes (`EvaluateRequest` → "an Evaluate",
/// `AdmissionReviewBody` → "an AdmissionReview"), "JSON" for a free value.
fn body_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    let last = base.rsplit("::").next().unwrap_or(base);
    if last == "Value" {
        return "JSON".to_string();
    }
    let name = ["Dto", "Request", "Body"].iter().find_map(|suffix| last.strip_suffix(suffix)).unwrap_or(last);
    let article = if name.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
    format!("{article} {name}")
}

/// Every JSON API route, under its capability's prefix.
pub(crate) fn router() -> axum::Router<crate::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .merge(auth::router())
        .merge(stars::router())
        .nest("/api/catalog", catalog::router())
        .nest("/api/policy", policy::router())
        .nest("/api/scaffolder/v2", golden_paths::router())
        .nest("/api/signals", signals::router())
        .route("/api/traces", get(signals::traces))
        .route("/api/traces/{trace_id}", get(signals::trace))
        .route("/api/cost/anomalies", get(signals::cost_anomalies))
        .route("/api/cost/teams", get(signals::cost_teams))
}

/// The OTLP/HTTP receiver's routes; their bodies have their own
/// (configurable) limit, checked by the receiver.
pub(crate) fn otlp_router() -> axum::Router<crate::AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/traces", post(signals::receiver::traces))
        .route("/v1/metrics", post(signals::receiver::metrics))
}
