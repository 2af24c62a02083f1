//! Tokens from the portal: a signed-in user issues one (its secret shown
//! once), uses it, and revokes it; a cross-site form post is refused. The
//! sources a user registers stay inside the allowed roots.

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

/// A user may register sources only under the allowed roots (links
/// followed) and git URLs only by pattern; each refusal says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_outside_the_allowed_roots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let secret = dir.path().join("secret");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    let entity = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: NAME}\nspec: {type: service, lifecycle: production, owner: team}\n";
    std::fs::write(allowed.join("ok.yaml"), entity.replace("NAME", "ok")).unwrap();
    std::fs::write(secret.join("hidden.yaml"), entity.replace("NAME", "hidden")).unwrap();
    std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
    let sources = plinth_app::access::SourcePolicy {
        roots: vec![allowed.clone()],
        git_patterns: vec!["https://git.example/acme/*".into()],
    };
    let options = Options {
        auth: Some(AuthConfig { mode: AuthMode::Required, sources, ..AuthConfig::default() }),
        ..Options::default()
    };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("SQLite always runs");
    let request = TokenRequest {
        name: "laptop".into(),
        subject: TokenSubject::User("user:default/alice".into()),
        scopes: vec!["write".into()],
        lifetime: None,
    };
    let token = issue_token(&server.store, request, "test").await.unwrap().secret;
    let register = |target: String| {
        let (http, base, token) = (server.http.clone(), server.base.clone(), token.clone());
        async move {
            let response = http
                .post(format!("{base}/api/catalog/locations"))
                .bearer_auth(token)
                .json(&serde_json::json!({"type": "url", "target": target}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (status, _) = register(allowed.join("ok.yaml").to_string_lossy().to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "inside the root");
    for (what, target) in [
        ("an absolute path elsewhere", "/etc/passwd".to_string()),
        ("`..` out of the root", format!("{}/../secret/hidden.yaml", allowed.display())),
        ("a link out of the root", allowed.join("link/hidden.yaml").to_string_lossy().to_string()),
        ("a git URL no pattern allows", "https://evil.example/repo.git".to_string()),
        ("a local repository outside the roots", format!("file://{}", secret.display())),
    ] {
        let (status, body) = register(target).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("--allowed-location-root") || message.contains("--allowed-git-url"),
            "{what}: {message}"
        );
    }
    let hidden = server
        .http
        .get(format!("{}/api/catalog/entities/by-name/component/default/hidden", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "nothing outside the root was read");
}
