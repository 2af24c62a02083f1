//! Signing in to the portal: with the OpenID Connect provider
//! (authorization code + PKCE; the provider's ID token becomes a 12-hour
//! session token), or with an API token pasted into the form. Either way the
//! session is an HTTP-only, SameSite=Strict cookie; signing out ends it
//! (and revokes a session the provider's sign-in issued).

pub(crate) mod my_team;
pub(super) mod tokens;

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
    /// `/auth/oidc/start?next=…` when a provider is configured.
    sso: Option<String>,
}

fn sso_link(app: &AppState, next: &str) -> Option<String> {
    app.platform.oidc().map(|_| format!("/auth/oidc/start?{}", super::next_query(next)))
}

/// The cookie that carries a sign-in in progress (state, nonce, PKCE
/// verifier, where to go after) from the start to the callback.
const FLOW_COOKIE: &str = "plinth_oidc";

fn random_text() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    // Falls back to a v4 UUID's randomness if the OS source fails.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Starts a sign-in with the provider: a fresh state, nonce and PKCE
/// verifier in a short-lived cookie, and a redirect to the provider.
pub(super) async fn oidc_start(State(app): State<AppState>, Query(query): Query<Next>) -> Response {
    let Some(oidc) = app.platform.oidc() else {
        return super::error_page(crate::error::ApiError::not_found("no OpenID Connect provider is configured"));
    };
    let (state, nonce, verifier) = (random_text(), random_text(), random_text());
    let next = safe_next(query.next.as_deref());
    use base64::Engine as _;
    let next_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(next);
    let cookie = format!(
        "{FLOW_COOKIE}={state}.{nonce}.{verifier}.{next_b64}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600"
    );
    let mut response = Redirect::to(&oidc.authorize_url(&state, &nonce, &verifier)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The provider's redirect back: the state must match the cookie's, then
/// the code is exchanged and the ID token verified.
pub(super) async fn oidc_callback(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let flow = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == FLOW_COOKIE)
        .map(|(_, value)| value.to_string());
    let fail = |message: String| {
        let view = SignInView {
            title: "Sign in",
            next: "/",
            problem: Some(message),
            local_mode: false,
            sso: sso_link(&app, "/"),
        };
        page(StatusCode::UNAUTHORIZED, "auth_sign_in.html", &view)
    };
    if let Some(error) = callback.error {
        let description = callback.error_description.unwrap_or_default();
        return fail(format!("the provider did not sign you in: {error} {description}"));
    }
    let parts: Vec<&str> = flow.as_deref().unwrap_or("").split('.').collect();
    let [state, nonce, verifier, next_b64] = parts[..] else {
        return fail("this sign-in expired or was started in another browser; start again".into());
    };
    if callback.state.as_deref() != Some(state) {
        return fail("the sign-in's state does not match (a forged or stale redirect); start again".into());
    }
    let Some(code) = callback.code else { return fail("the provider sent no code; start again".into()) };
    use base64::Engine as _;
    let next = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(next_b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| "/".into());
    let next = safe_next(Some(&next)).to_string();
    match app.platform.sign_in_with_oidc(&code, verifier, nonce, caller).await {
        Ok((_, secret)) => {
            let mut response = Redirect::to(&next).into_response();
            let cookies = [
                session_cookie(&secret, is_https(&headers)),
                format!("{FLOW_COOKIE}=; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=0"),
            ];
            for cookie in cookies {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(error) => fail(error.message),
    }
}

fn session_cookie(secret: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    )
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
    let next = safe_next(query.next.as_deref());
    let view = SignInView {
        title: "Sign in",
        next,
        problem: None,
        local_mode: app.platform.auth_mode() == plinth_app::AuthMode::Local,
        sso: sso_link(&app, next),
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
            let cookie = session_cookie(secret, is_https(&headers));
            let mut response = Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => {
            let view = SignInView {
                title: "Sign in",
                problem: Some(error.message),
                local_mode: app.platform.auth_mode() == plinth_app::AuthMode::Local,
                sso: sso_link(&app, &next),
                next: &next,
            };
            page(StatusCode::UNAUTHORIZED, "auth_sign_in.html", &view)
        }
    }
}

pub(super) async fn sign_out(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    if caller.is_authenticated() {
        app.platform.sign_out(&caller).await;
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
