//! The one authorisation layer every mutating endpoint passes through.
//! Tokens and roles arrive in a later slice; today it admits every caller
//! and logs who it was, so securing the API later is a change here only.

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

/// Who is calling, as far as we can tell today.
#[derive(Debug, Clone)]
pub struct Caller {
    pub address: Option<SocketAddr>,
    pub user_agent: Option<String>,
    pub has_token: bool,
}

pub async fn authorize(request: Request, next: Next) -> Response {
    // Decision requests change nothing; each is recorded in the decision log.
    let decision_only = matches!(request.uri().path(), "/api/policy/evaluate" | "/api/policy/admission");
    let mutating = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !decision_only;
    if mutating {
        let caller = Caller {
            address: request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            user_agent: request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
            has_token: request.headers().contains_key(header::AUTHORIZATION),
        };
        tracing::info!(
            target: "plinth::audit",
            method = %request.method(),
            path = %request.uri().path(),
            caller = ?caller.address,
            user_agent = caller.user_agent.as_deref().unwrap_or("-"),
            token = caller.has_token,
            "mutation allowed"
        );
    }
    next.run(request).await
}
