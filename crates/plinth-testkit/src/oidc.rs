//! An OpenID Connect provider in the test process: discovery, a JWKS whose
//! keys a test can rotate, the authorization endpoint (it signs in one
//! configured user at once, checking PKCE S256) and the token endpoint,
//! with RS256 and ES256 keys from `fixtures/oidc` (test-only keys).

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const RSA_1: &str = include_str!("../fixtures/oidc/rsa-1.pem");
const RSA_2: &str = include_str!("../fixtures/oidc/rsa-2.pem");
const EC_1: &str = include_str!("../fixtures/oidc/ec-1.pem");
const RSA_1_JWK: &str = include_str!("../fixtures/oidc/rsa-1.jwk.json");
const RSA_2_JWK: &str = include_str!("../fixtures/oidc/rsa-2.jwk.json");
const EC_1_JWK: &str = include_str!("../fixtures/oidc/ec-1.jwk.json");

/// The client id the provider knows.
pub const CLIENT_ID: &str = "plinth";

/// A signing key of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Rsa1,
    Rsa2,
    Ec1,
}

impl Key {
    pub fn kid(self) -> &'static str {
        match self {
            Key::Rsa1 => "rsa-1",
            Key::Rsa2 => "rsa-2",
            Key::Ec1 => "ec-1",
        }
    }

    fn jwk(self) -> Value {
        let text = match self {
            Key::Rsa1 => RSA_1_JWK,
            Key::Rsa2 => RSA_2_JWK,
            Key::Ec1 => EC_1_JWK,
        };
        serde_json::from_str(text).expect("fixture JWK")
    }

    fn encoding(self) -> (EncodingKey, Algorithm) {
        match self {
            Key::Rsa1 => (EncodingKey::from_rsa_pem(RSA_1.as_bytes()).expect("fixture key"), Algorithm::RS256),
            Key::Rsa2 => (EncodingKey::from_rsa_pem(RSA_2.as_bytes()).expect("fixture key"), Algorithm::RS256),
            Key::Ec1 => (EncodingKey::from_ec_pem(EC_1.as_bytes()).expect("fixture key"), Algorithm::ES256),
        }
    }
}

struct Inner {
    base: String,
    published: Mutex<Vec<Key>>,
    jwks_fetches: AtomicU64,
    /// code → (challenge, nonce, redirect URI)
    codes: Mutex<HashMap<String, (String, String, String)>>,
    user: Mutex<Value>,
}

/// The provider; stops when dropped.
pub struct Provider {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// Starts on a loopback port, publishing `keys`, signing in `claims`
    /// (`sub`, `email`, …) at its authorization endpoint.
    pub async fn start(keys: &[Key], claims: Value) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let inner = Arc::new(Inner {
            base,
            published: Mutex::new(keys.to_vec()),
            jwks_fetches: AtomicU64::new(0),
            codes: Mutex::new(HashMap::new()),
            user: Mutex::new(claims),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Provider { inner, task }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.inner.base
    }

    /// Replaces the published key set (rotation).
    pub fn publish(&self, keys: &[Key]) {
        *self.inner.published.lock() = keys.to_vec();
    }

    /// How many times the key set was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// A token signed with `key`, for the client, with `claims` added to
    /// the standard ones (issuer, audience, an hour of life).
    pub fn token(&self, key: Key, claims: Value) -> String {
        self.token_with_kid(key, key.kid(), claims)
    }

    /// As [`Provider::token`], naming another `kid` (a forgery).
    pub fn token_with_kid(&self, key: Key, kid: &str, claims: Value) -> String {
        let (encoding, algorithm) = key.encoding();
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, &self.claims(claims), &encoding).expect("sign")
    }

    /// The standard claims with `extra` over them.
    pub fn claims(&self, extra: Value) -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
        let mut claims =
            json!({"iss": self.inner.base, "aud": CLIENT_ID, "iat": now, "exp": now + 3600, "sub": "alice-sub"});
        if let (Some(base), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        claims
    }
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let base = &inner.base;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Json<Value> {
    inner.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    let keys: Vec<Value> = inner.published.lock().iter().map(|k| k.jwk()).collect();
    Json(json!({ "keys": keys }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
}

async fn authorize(State(inner): State<Arc<Inner>>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type != "code" || q.client_id != CLIENT_ID || q.code_challenge_method != "S256" {
        return (StatusCode::BAD_REQUEST, "expected response_type=code, the client id and PKCE S256").into_response();
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    inner.codes.lock().insert(code.clone(), (q.code_challenge, q.nonce, q.redirect_uri.clone()));
    let separator = if q.redirect_uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{}{separator}code={code}&state={}", q.redirect_uri, q.state)).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
}

async fn token(State(inner): State<Arc<Inner>>, Form(form): Form<TokenForm>) -> Response {
    use base64::Engine as _;
    use sha2::Digest as _;
    let Some((challenge, nonce, redirect)) = inner.codes.lock().remove(&form.code) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&form.code_verifier));
    if form.grant_type != "authorization_code"
        || form.client_id != CLIENT_ID
        || form.redirect_uri != redirect
        || computed != challenge
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"})),
        )
            .into_response();
    }
    let key = inner.published.lock().first().copied().unwrap_or(Key::Rsa1);
    let provider_claims = {
        let mut claims = inner.user.lock().clone();
        claims["nonce"] = json!(nonce);
        claims
    };
    let (encoding, algorithm) = key.encoding();
    let mut header = Header::new(algorithm);
    header.kid = Some(key.kid().to_string());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let mut claims = json!({"iss": inner.base, "aud": CLIENT_ID, "iat": now, "exp": now + 3600});
    for (k, v) in provider_claims.as_object().into_iter().flatten() {
        claims[k] = v.clone();
    }
    let id_token = jsonwebtoken::encode(&header, &claims, &encoding).expect("sign");
    Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})).into_response()
}
