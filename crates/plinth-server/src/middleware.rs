//! What every request passes through on its way to a handler: who is
//! calling (a [`Caller`] in the request's extensions, with a request id
//! echoed as `X-Request-Id`), and per-route metrics.
//!
//! Identity comes from `Authorization: Bearer <token>` (the API, the CLI,
//! OTLP exporters, Backstage's `catalog-client`) or the portal's session
//! cookie. A token that does not count is a 401 whatever the mode. Without
//! one, a local-mode server treats the caller as the local developer; a
//! server with `--auth required` answers 401 (the portal: the sign-in
//! page), except for the few public paths (health, metrics, the OpenAPI
//! document, assets, sign-in, signed webhooks).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use plinth_app::{AppError, AuthMode, Caller};
use std::net::SocketAddr;

use crate::error::ApiError;
use crate::AppState;

/// The header a caller may name itself in. Recorded beside the identity;
/// only in local mode is it the requester.
pub const CLAIMED_USER: &str = "x-plinth-user";
pub const REQUEST_ID: &str = "x-request-id";
/// The portal's session cookie (HTTP-only, SameSite=Strict).
pub(crate) const SESSION_COOKIE: &str = "plinth_session";
/// What a 401 says about how to authenticate (RFC 6750).
pub(crate) const CHALLENGE: &str = "Bearer realm=\"plinth\"";

/// Paths answered without identity even with `--auth required`.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/api/openapi.json" | "/favicon.ico" | "/api/catalog/webhook")
        || path.starts_with("/assets/")
        || path.starts_with("/auth/")
}

/// Where a request's secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Header,
    Cookie,
}

/// The bearer secret of a request: the `Authorization` header, or the
/// portal's session cookie.
fn presented_secret(headers: &HeaderMap) -> Option<(String, Carrier)> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, secret) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() {
            return Some((secret.trim().to_string(), Carrier::Header));
        }
    }
    session_secret(headers).map(|secret| (secret, Carrier::Cookie))
}

/// Whether a request that rides on the session cookie came from a page
/// of this server (CSRF): the browser's `Sec-Fetch-Site`, else `Origin`
/// naming the `Host` it was sent to. The cookie is SameSite=Strict too;
/// this holds where that is not honoured.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), host) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, rest)| rest == host),
        // No Origin: not a cross-site form or script (browsers send it on
        // every cross-site POST).
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// The secret in the session cookie, if any.
pub(crate) fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// Whether a request wants a page (the portal) rather than JSON.
fn wants_page(request: &Request) -> bool {
    let path = request.uri().path();
    !path.starts_with("/api/")
        && !path.starts_with("/v1/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|accept| accept.contains("text/html") || accept.contains("*/*"))
}

/// Builds the [`Caller`] of a request.
pub(crate) async fn identify(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let claimed = request.headers().get(CLAIMED_USER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mode = app.platform.auth_mode();
    let mut unverified = match mode {
        AuthMode::Local => Caller::local(),
        AuthMode::Required => Caller::anonymous(),
    }
    .with_claimed_name(claimed);
    unverified.address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    unverified.request_id = Some(request_id.clone());
    let public = is_public(request.uri().path());
    let mutating = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let presented = presented_secret(request.headers());
    if let Some((_, Carrier::Cookie)) = &presented {
        if mutating && !same_origin(request.headers()) && request.uri().path() != "/auth/sign-out" {
            let error = AppError::forbidden(
                "a change riding on the portal's session must come from a Plinth page (cross-site request refused)",
            );
            let url = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
            let response = crate::error::respond(ApiError::from(error), request.method(), &url);
            return with_request_id(response, &request_id);
        }
    }
    let caller = match presented.map(|(secret, _)| secret) {
        Some(secret) => match app.platform.authenticate(&secret, unverified).await {
            Ok(caller) => caller,
            Err(error) if public => {
                tracing::debug!(%error, "a public path was sent a token that does not count");
                let mut anonymous = Caller::anonymous();
                anonymous.request_id = Some(request_id.clone());
                anonymous
            }
            Err(error) => return with_request_id(refuse(&request, error), &request_id),
        },
        None if mode == AuthMode::Required && !public => {
            let error = AppError::unauthenticated(
                "sign in, or send a token: `Authorization: Bearer <token>` (create one with `plinth token create`)",
            );
            return with_request_id(refuse(&request, error), &request_id);
        }
        None => unverified,
    };
    // Decision requests change nothing; each is recorded in the decision log.
    let decision_only = matches!(request.uri().path(), "/api/policy/evaluate" | "/api/policy/admission");
    if mutating && !decision_only {
        tracing::debug!(
            method = %request.method(), path = %request.uri().path(), actor = %caller.actor(),
            request_id = %request_id, "mutation requested"
        );
    }
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    with_request_id(response, &request_id)
}

/// A 401: the sign-in page for a browser, else the API error with a
/// `WWW-Authenticate` challenge.
fn refuse(request: &Request, error: AppError) -> Response {
    if wants_page(request) {
        let back = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let target = format!("/auth/sign-in?{}", crate::portal::next_query(back));
        return Redirect::to(&target).into_response();
    }
    let url = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut response = crate::error::respond(ApiError::from(error), request.method(), url);
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    }
    response
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if response.status() == StatusCode::UNAUTHORIZED && !response.headers().contains_key(header::WWW_AUTHENTICATE) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    }
    response
}
