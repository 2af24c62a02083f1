//! OpenID Connect, so that any provider works (Keycloak, Dex, Entra ID,
//! Okta, Google): discovery, bearer JWTs on the API, and the portal's
//! authorization-code flow with PKCE.
//!
//! A JWT is accepted only if it is signed with RS256, ES256 or EdDSA by a
//! key of the issuer's JWKS (`none` and HS* are refused before anything
//! else is read), names the issuer, has the client id among its audiences,
//! and is within its lifetime (60 s leeway). The JWKS is cached; a token
//! with a `kid` the cache does not know triggers one re-fetch at most per
//! cooldown, so a key rotation costs no failed request and a storm of
//! forged `kid`s costs at most one fetch per cooldown. Every fetch goes
//! through the outbound allowlist.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::{Mutex, RwLock};
use plinth_confine::OutboundPolicy;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{AppError, AppResult};

/// The algorithms a JWT may be signed with.
const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
/// Longest wait for the provider.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How Plinth talks to the provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL (`https://keycloak.example.com/realms/acme`).
    pub issuer: String,
    pub client_id: String,
    /// For confidential clients; public clients rely on PKCE alone.
    pub client_secret: Option<String>,
    /// Where users reach Plinth (`https://plinth.example.com`): the
    /// redirect URI is `{public_url}/auth/oidc/callback`.
    pub public_url: String,
    /// Fewest time between two JWKS fetches caused by unknown `kid`s.
    pub jwks_cooldown: Duration,
    /// The allowlist every request to the provider passes.
    pub outbound: Arc<OutboundPolicy>,
}

/// The provider's endpoints, from discovery.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// What Plinth reads from an ID token or access token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
}

/// A verified provider connection.
pub struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    discovery: Discovery,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    last_fetch: Mutex<Instant>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("issuer", &self.config.issuer).finish_non_exhaustive()
    }
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> AppError {
    AppError::unavailable(format!("the OpenID Connect provider could not be reached ({what}): {error}"))
}

impl Oidc {
    /// Reads the provider's discovery document and keys.
    pub async fn discover(config: OidcConfig) -> AppResult<Arc<Oidc>> {
        let http = config.outbound.client(TIMEOUT);
        let issuer = config.issuer.trim_end_matches('/').to_string();
        let url = format!("{issuer}/.well-known/openid-configuration");
        config.outbound.check_url(&url).map_err(|e| unavailable("discovery", e))?;
        let discovery: Discovery = http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable("discovery", e))?
            .json()
            .await
            .map_err(|e| unavailable("discovery", e))?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(AppError::invalid(format!(
                "--oidc-issuer is {issuer} but the provider calls itself {}; use its exact issuer URL",
                discovery.issuer
            )));
        }
        let oidc = Arc::new(Oidc {
            config,
            http,
            discovery,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(Instant::now()),
            fetches: AtomicU64::new(0),
        });
        oidc.fetch_keys().await?;
        Ok(oidc)
    }

    /// How many times the JWKS was fetched (for tests and metrics).
    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn fetch_keys(&self) -> AppResult<()> {
        *self.last_fetch.lock() = Instant::now();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.config.outbound.check_url(&self.discovery.jwks_uri).map_err(|e| unavailable("keys", e))?;
        let set: JwkSet = self
            .http
            .get(&self.discovery.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable("keys", e))?
            .json()
            .await
            .map_err(|e| unavailable("keys", e))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let Some(algorithm) = key_algorithm(jwk) else { continue };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, algorithm));
            }
        }
        *self.keys.write() = keys;
        Ok(())
    }

    /// The key a token names, re-fetching the JWKS once per cooldown for
    /// an unknown `kid`.
    async fn key(&self, kid: &str) -> AppResult<(DecodingKey, Algorithm)> {
        if let Some(found) = self.keys.read().get(kid).cloned() {
            return Ok(found);
        }
        let due = self.last_fetch.lock().elapsed() >= self.config.jwks_cooldown;
        if due {
            // Claim the fetch first, so concurrent unknown kids wait for the
            // next cooldown instead of fetching too.
            let claimed = {
                let mut last = self.last_fetch.lock();
                if last.elapsed() >= self.config.jwks_cooldown {
                    *last = Instant::now();
                    true
                } else {
                    false
                }
            };
            if claimed {
                self.fetch_keys().await?;
            }
        }
        self.keys.read().get(kid).cloned().ok_or_else(|| {
            AppError::unauthenticated(format!("the token's signing key `{kid}` is not one of the issuer's keys"))
        })
    }

    /// Verifies a JWT from this issuer for this client; `nonce`, when
    /// given, must match (ID tokens of the sign-in flow).
    pub async fn verify(&self, token: &str, nonce: Option<&str>) -> AppResult<Claims> {
        let refuse = |why: String| AppError::unauthenticated(format!("the token is not valid: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(e.to_string()))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(refuse(format!(
                "{:?} is not accepted; tokens must be signed with RS256, ES256 or EdDSA",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| refuse("it names no signing key (`kid`)".into()))?;
        let (key, algorithm) = self.key(&kid).await?;
        if algorithm != header.alg {
            return Err(refuse(format!("key `{kid}` is for {algorithm:?}, the token says {:?}", header.alg)));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[self.discovery.issuer.as_str(), self.config.issuer.as_str()]);
        validation.set_audience(&[self.config.client_id.as_str()]);
        validation.leeway = 60;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| refuse(e.to_string()))?;
        if let Some(expected) = nonce {
            if data.claims.nonce.as_deref() != Some(expected) {
                return Err(refuse("the nonce does not match this sign-in".into()));
            }
        }
        Ok(data.claims)
    }

    /// The redirect URI registered with the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/oidc/callback", self.config.public_url.trim_end_matches('/'))
    }

    /// Where to send the browser to sign in (authorization code + PKCE S256).
    pub fn authorize_url(&self, state: &str, nonce: &str, verifier: &str) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
        let mut url = reqwest::Url::parse(&self.discovery.authorization_endpoint)
            .unwrap_or_else(|_| reqwest::Url::parse("about:blank").expect("a constant URL"));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri())
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    /// Trades an authorization code for the verified ID token's claims.
    pub async fn exchange(&self, code: &str, verifier: &str, nonce: &str) -> AppResult<Claims> {
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: String,
        }
        let redirect = self.redirect_uri();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        if let Some(secret) = &self.config.client_secret {
            form.push(("client_secret", secret.as_str()));
        }
        self.config.outbound.check_url(&self.discovery.token_endpoint).map_err(|e| unavailable("token", e))?;
        let response = self
            .http
            .post(&self.discovery.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable("token", e))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(AppError::unauthenticated(format!(
                "the provider refused the sign-in code ({status}); start the sign-in again"
            )));
        }
        let tokens: TokenResponse = response.json().await.map_err(|e| unavailable("token", e))?;
        self.verify(&tokens.id_token, Some(nonce)).await
    }
}

/// The algorithm a JWK is for: its `alg`, else what its key type implies.
fn key_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    let stated = jwk.common.key_algorithm.and_then(|a| match a {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    if jwk.common.key_algorithm.is_some() {
        return stated;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Some(Algorithm::ES256),
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Whether a bearer credential looks like a JWT (three dot-separated parts)
/// rather than a Plinth token.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3 && !credential.starts_with(crate::identity::SECRET_PREFIX)
}
