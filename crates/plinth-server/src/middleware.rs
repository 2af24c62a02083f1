//! What every request passes through on its way to a handler: who is
//! calling (a [`Caller`] in the request's extensions, with a request id
//! echoed as `X-Request-Id`), and per-route metrics.

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use plinth_app::Caller;
use std::net::SocketAddr;

/// The header a caller may name itself in until sign-in arrives; recorded
/// as the requester, never trusted for a permission.
pub const CLAIMED_USER: &str = "x-plinth-user";
pub const REQUEST_ID: &str = "x-request-id";

/// Builds the [`Caller`] of a request and logs every mutation.
pub(crate) async fn identify(mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let claimed = request.headers().get(CLAIMED_USER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut caller = Caller::anonymous().with_claimed_name(claimed);
    caller.address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    caller.request_id = Some(request_id.clone());
    // Decision requests change nothing; each is recorded in the decision log.
    let decision_only = matches!(request.uri().path(), "/api/policy/evaluate" | "/api/policy/admission");
    let mutating = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !decision_only;
    if mutating {
        tracing::info!(
            target: "plinth::audit",
            method = %request.method(),
            path = %request.uri().path(),
            caller = ?caller.address,
            requester = %caller.requester(),
            request_id = %request_id,
            "mutation"
        );
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
