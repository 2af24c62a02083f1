//! Signing in to the portal with an API token: the page, the form that
//! checks the token and keeps it in an HTTP-only, SameSite=Strict session
//! cookie, and signing out. (OpenID Connect sign-in arrives with the
//! `--oidc-*` flags.)

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use plinth_app::Caller;
use serde::Deserialize;

use super::page;
use crate::middleware::SESSION_COOKIE;
use crate::AppState;

/// How long the session cookie lives (the token's own expiry still rules).
const SESSION_SECONDS: u64 = 12 * 3600;

#[derive(Debug, Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SignInForm {
    token: String,
    next: Option<String>,
}

/// The sign-in page.
#[derive(serde::Serialize)]
struct SignInView<'a> {
    title: &'static str,
    next: &'a str,
    problem: Option<String>,
    local_mode: bool,
}

/// Where to go after signing in: a path on this server only (never
/// another site).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/",
    }
}

pub(super) async fn sign_in_page(State(app): State<AppState>, Query(query): Query<Next>) -> Response {
    let view = SignInView {
        title: "Sign in",
        next: safe_next(query.next.as_deref()),
        problem: None,
        local_mode: app.platform.auth_mode() == plinth_app::AuthMode::Local,
    };
    page(StatusCode::OK, "auth_sign_in.html", &view)
}

pub(super) async fn sign_in(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let secret = form.token.trim();
    match app.platform.authenticate(secret, caller).await {
        Ok(user) => {
            app.platform
                .record(
                    &user,
                    "auth.sign_in",
                    "portal",
                    plinth_app::audit::AuditOutcome::Allowed,
                    serde_json::json!({}),
                )
                .await;
            let secure = is_https(&headers);
            let cookie = format!(
                "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
                if secure { "; Secure" } else { "" }
            );
            let mut response = Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => {
            let view = SignInView {
                title: "Sign in",
                next: &next,
                problem: Some(error.message),
                local_mode: app.platform.auth_mode() == plinth_app::AuthMode::Local,
            };
            page(StatusCode::UNAUTHORIZED, "auth_sign_in.html", &view)
        }
    }
}

pub(super) async fn sign_out(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    if caller.is_authenticated() {
        app.platform
            .record(&caller, "auth.sign_out", "portal", plinth_app::audit::AuditOutcome::Allowed, serde_json::json!({}))
            .await;
    }
    let mut response = Redirect::to("/auth/sign-in").into_response();
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether the request reached us over TLS (directly or through a proxy
/// that says so).
fn is_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/catalog?kind=api")), "/catalog?kind=api");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
