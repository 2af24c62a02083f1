//! OpenID Connect against a provider running in the test process
//! (`plinth_testkit::oidc::Provider`): bearer JWTs (RS256, ES256) mapped to
//! catalogue users, the refusals (`none`, HS256, another audience, expired,
//! another issuer), key rotation without a failed request, forged key ids
//! without a fetch storm, and the portal's authorization-code + PKCE
//! sign-in.

use plinth_app::oidc::OidcConfig;
use plinth_app::{AuthConfig, AuthMode};
use plinth_testkit::oidc::{Key, Provider, CLIENT_ID};
use plinth_testkit::{Backend, Options, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const ORG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: payments}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {profile: {email: Alice@Example.com}, memberOf: [payments]}
"#;

async fn server(provider: &Provider, cooldown: Duration) -> (TestServer, tempfile::TempDir) {
    server_at(provider, cooldown, "http://plinth.test").await
}

/// `public_url` empty: the server's own address.
async fn server_at(provider: &Provider, cooldown: Duration, public_url: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org.yaml");
    std::fs::write(&org, ORG).unwrap();
    let oidc = OidcConfig {
        issuer: provider.issuer().to_string(),
        client_id: CLIENT_ID.into(),
        client_secret: None,
        public_url: public_url.into(),
        jwks_cooldown: cooldown,
        outbound: Arc::new(plinth_confine::OutboundPolicy::default_for(true)),
    };
    let options = Options {
        auth: Some(AuthConfig { mode: AuthMode::Required, oidc: Some(oidc), ..AuthConfig::default() }),
        ..Options::default().with_locations([org])
    };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("SQLite always runs");
    (server, dir)
}

async fn me(server: &TestServer, bearer: &str) -> (StatusCode, Value) {
    let response = server.http.get(format!("{}/api/auth/me", server.base)).bearer_auth(bearer).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_jwts_from_the_issuer_are_users_of_the_catalogue() {
    let provider = Provider::start(&[Key::Rsa1, Key::Ec1], json!({})).await;
    let (server, _dir) = server(&provider, Duration::from_secs(60)).await;
    for key in [Key::Rsa1, Key::Ec1] {
        let token = provider.token(key, json!({"email": "alice@example.com", "email_verified": true}));
        let (status, body) = me(&server, &token).await;
        assert_eq!(status, StatusCode::OK, "{key:?}: {body}");
        assert_eq!(body["actor"], "user:default/alice", "matched by email, ignoring case");
        assert_eq!(body["groups"], json!(["group:default/payments"]));
    }
    // No catalogue match: a signed-in user by name, with no groups.
    let token = provider.token(Key::Rsa1, json!({"sub": "x", "preferred_username": "Zed"}));
    let (status, body) = me(&server, &token).await;
    assert_eq!((status, body["actor"].as_str()), (StatusCode::OK, Some("user:default/zed")));
    assert_eq!(body["groups"], json!([]));
    // An unverified email does not match.
    let token = provider.token(
        Key::Rsa1,
        json!({"email": "alice@example.com", "email_verified": false, "preferred_username": "mallory"}),
    );
    assert_eq!(me(&server, &token).await.1["actor"], "user:default/mallory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_hs256_other_audiences_issuers_and_expired_tokens_are_refused() {
    use base64::Engine as _;
    let provider = Provider::start(&[Key::Rsa1], json!({})).await;
    let (server, _dir) = server(&provider, Duration::from_secs(60)).await;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = provider.claims(json!({"email": "alice@example.com"}));
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})), b64(&claims));
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        // Signed with the public key's text as the HMAC secret: the classic
        // algorithm-confusion forgery.
        let secret = include_str!("../../../plinth-testkit/fixtures/oidc/rsa-1.jwk.json");
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).unwrap()
    };
    let other_audience = provider.token(Key::Rsa1, json!({"aud": "another-app"}));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expired = provider.token(Key::Rsa1, json!({"exp": now - 3600, "iat": now - 7200}));
    let other_issuer = provider.token(Key::Rsa1, json!({"iss": "https://evil.example"}));
    let unsigned_by_key = {
        let mut parts: Vec<String> = provider.token(Key::Rsa1, json!({})).split('.').map(str::to_string).collect();
        parts[1] = b64(&provider.claims(json!({"sub": "root"})));
        parts.join(".")
    };
    for (what, token) in [
        ("alg none", none),
        ("HS256", hs256),
        ("another audience", other_audience),
        ("expired", expired),
        ("another issuer", other_issuer),
        ("payload swapped under a valid signature", unsigned_by_key),
    ] {
        let (status, body) = me(&server, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {status} {body}");
        assert!(body["error"]["message"].as_str().unwrap_or("").contains("not valid"), "{what}: {body}");
    }
}

/// The provider publishes a new key, then signs with it, while requests
/// keep coming: none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_causes_no_failed_request() {
    let provider = Provider::start(&[Key::Rsa1], json!({})).await;
    let (server, _dir) = server(&provider, Duration::from_millis(200)).await;
    let mut failures = Vec::new();
    let mut requests = 0;
    for round in 0..300 {
        if round == 100 {
            provider.publish(&[Key::Rsa1, Key::Rsa2]);
        }
        let key = if round < 150 { Key::Rsa1 } else { Key::Rsa2 };
        if round == 200 {
            provider.publish(&[Key::Rsa2]);
        }
        let token = provider.token(key, json!({"email": "alice@example.com"}));
        let (status, body) = me(&server, &token).await;
        requests += 1;
        if status != StatusCode::OK {
            failures.push(format!("round {round} ({key:?}): {status} {body}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(failures.is_empty(), "{} of {requests} requests failed:\n{}", failures.len(), failures.join("\n"));
    assert!(provider.jwks_fetches() >= 2, "the new key was fetched");
}

/// 1,000 tokens naming key ids the issuer never had: all refused, and the
/// key set is fetched at most once per cooldown (here: not again at all
/// within the minute after start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_key_ids_cause_no_fetch_storm() {
    let provider = Provider::start(&[Key::Rsa1], json!({})).await;
    let (server, _dir) = server(&provider, Duration::from_secs(60)).await;
    let before = provider.jwks_fetches();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let token = provider.token_with_kid(Key::Rsa1, &format!("forged-{i}"), json!({}));
        let (http, url) = (server.http.clone(), format!("{}/api/auth/me", server.base));
        tasks.push(tokio::spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap().status() }));
        if tasks.len() >= 50 {
            for task in tasks.drain(..) {
                assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
            }
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let fetched = provider.jwks_fetches() - before;
    assert!(fetched <= 1, "1,000 forged kids caused {fetched} key-set fetches within one cooldown");
}

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// The portal's sign-in: authorization code with PKCE, state bound to the
/// browser, the ID token's nonce checked, a session cookie, sign-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_signs_in_with_pkce_and_out() {
    let provider = Provider::start(&[Key::Rsa1], json!({"sub": "alice-sub", "email": "alice@example.com"})).await;
    let (server, _dir) = server(&provider, Duration::from_secs(60)).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // A page without a session sends the browser to sign in.
    let response = browser.get(format!("{}/catalog", server.base)).header("accept", "text/html").send().await.unwrap();
    assert!(response.status().is_redirection());
    let sign_in = browser.get(format!("{}/auth/sign-in?next=%2Fcatalog", server.base)).send().await.unwrap();
    let page = sign_in.text().await.unwrap();
    assert!(page.contains("/auth/oidc/start?next=%2Fcatalog"), "the sign-in page offers single sign-on");

    let start = browser.get(format!("{}/auth/oidc/start?next=%2Fcatalog", server.base)).send().await.unwrap();
    assert!(start.status().is_redirection());
    let flow = cookie_of(&start, "plinth_oidc").expect("the flow cookie");
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&authorize).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], "http://plinth.test/auth/oidc/callback");
    assert!(query["code_challenge"].len() == 43 && query["state"].len() >= 43 && query["nonce"].len() >= 43);

    let provider_answer = browser.get(&authorize).send().await.unwrap();
    let back = reqwest::Url::parse(provider_answer.headers()["location"].to_str().unwrap()).unwrap();
    let callback = format!("{}{}?{}", server.base, back.path(), back.query().unwrap());

    // A forged state (or none) is refused, and nothing is signed in.
    let forged = callback.replace(&format!("state={}", query["state"]), "state=forged");
    let refused = browser.get(&forged).header("cookie", &flow).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_of(&refused, "plinth_session").is_none());
    let refused = browser.get(&callback).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "without the flow cookie");

    // The real callback (the code is still unused: the refusals above
    // never reached the provider).
    let done = browser.get(&callback).header("cookie", &flow).send().await.unwrap();
    assert!(done.status().is_redirection(), "{}", done.status());
    assert_eq!(done.headers()["location"], "/catalog");
    let session = cookie_of(&done, "plinth_session").expect("a session cookie");
    let set = done.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(set
        .iter()
        .any(|c| c.starts_with("plinth_session=") && c.contains("HttpOnly") && c.contains("SameSite=Strict")));

    let page = browser.get(format!("{}/catalog", server.base)).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("user:default/alice"), "the header names who is signed in");

    // A change riding on the cookie from another site is refused.
    let cross = browser
        .post(format!("{}/api/auth/tokens", server.base))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .json(&json!({"name": "x", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);

    // Signing out revokes the session.
    let out = browser.post(format!("{}/auth/sign-out", server.base)).header("cookie", &session).send().await.unwrap();
    assert!(out.status().is_redirection());
    let after = browser
        .get(format!("{}/catalog", server.base))
        .header("cookie", &session)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(after.status().is_redirection(), "the ended session no longer counts");

    let audit =
        server.store.audit_entries(&plinth_store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap().0;
    assert!(audit.iter().any(|e| e.action == "auth.sign_in" && e.actor == "user:default/alice"));
    assert!(audit.iter().any(|e| e.action == "auth.sign_out" && e.actor == "user:default/alice"));
}

/// The same sign-in in headless Chromium: the portal sends the browser to
/// the provider and back, and the page shows who signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_with_the_provider() {
    let provider = Provider::start(&[Key::Ec1], json!({"sub": "alice-sub", "email": "alice@example.com"})).await;
    let (server, _dir) = server_at(&provider, Duration::from_secs(60), "").await;
    let b = plinth_testkit::browser::Browser::open().await;
    b.goto(&format!("{}/catalog", server.base)).await;
    let sso = b.wait("#sign-in-sso").await;
    assert!(b.current_url().await.contains("/auth/sign-in?next=%2Fcatalog"), "{}", b.current_url().await);
    b.follow(&sso, "#session .who").await;
    assert_eq!(plinth_testkit::browser::url_path(&b.current_url().await), "/catalog");
    assert!(b.text_of("#session .who").await.contains("user:default/alice"));
    // The session cookie is out of the page's reach (HttpOnly).
    let cookies = b.script("return document.cookie", json!([])).await;
    assert!(!cookies.as_str().unwrap_or("").contains("plinth_session"), "{cookies}");
}
