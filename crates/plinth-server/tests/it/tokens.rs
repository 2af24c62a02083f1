//! Tokens from the portal: a signed-in user issues one (its secret shown
//! once), uses it, and revokes it; a cross-site form post is refused.

use plinth_app::identity::{issue_token, TokenRequest, TokenSubject};
use plinth_app::{AuthConfig, AuthMode};
use plinth_testkit::{Backend, Options, TestServer};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_issues_uses_and_revokes_a_token_in_the_portal() {
    let options =
        Options { auth: Some(AuthConfig { mode: AuthMode::Required, ..AuthConfig::default() }), ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("SQLite always runs");
    let request = TokenRequest {
        name: "laptop".into(),
        subject: TokenSubject::User("user:default/alice".into()),
        scopes: vec!["read".into(), "write".into()],
        lifetime: None,
    };
    let session = issue_token(&server.store, request, "test").await.unwrap().secret;
    let cookie = format!("plinth_session={session}");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let host = server.base.trim_start_matches("http://").to_string();

    let page = browser.get(format!("{}/tokens", server.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("laptop"), "the session's own token is listed");

    // A form post from another site is refused before anything happens.
    let cross = browser
        .post(format!("{}/tokens", server.base))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=evil&scope=write")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);

    // From the page itself: issued, the secret shown once.
    let issued = browser
        .post(format!("{}/tokens", server.base))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=ci+job&scope=read&scope=signals%3Aingest&expires_in=12h")
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), StatusCode::CREATED);
    let html = issued.text().await.unwrap();
    let start =
        html.find("<code id=\"issued-secret\">").expect("the secret is shown") + "<code id=\"issued-secret\">".len();
    let secret = &html[start..start + html[start..].find('<').unwrap()];
    assert!(secret.starts_with("plinth_"), "{secret}");
    let me = browser.get(format!("{}/api/auth/me", server.base)).bearer_auth(secret).send().await.unwrap();
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["actor"], "user:default/alice");
    assert_eq!(body["scopes"], serde_json::json!(["read", "signals:ingest"]));

    // A scope the user does not hold is refused.
    let too_much = browser
        .post(format!("{}/tokens", server.base))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=root&scope=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(too_much.status(), StatusCode::FORBIDDEN);
    assert!(too_much.text().await.unwrap().contains("at most its creator"));

    // A lifetime that is not ASCII is a clear 400 (it once split a
    // character in two and crashed the handler).
    for expires in ["\u{80}", "9\u{80}", "9dd", ""] {
        let body =
            serde_json::json!({"name": "x", "user": "user:default/alice", "scopes": ["read"], "expiresIn": expires});
        let answer = browser
            .post(format!("{}/api/auth/tokens", server.base))
            .bearer_auth(&session)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "expiresIn {expires:?}");
    }

    // Revoked from the page: refused at once.
    let id = body["tokenId"].as_str().unwrap().to_string();
    let revoke = browser
        .post(format!("{}/tokens/{id}/revoke", server.base))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_redirection(), "{}", revoke.status());
    let after = browser.get(format!("{}/api/auth/me", server.base)).bearer_auth(secret).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}
