//! Identity and access control end to end, against `plinth serve --auth
//! required`: tokens issued offline with `plinth token create` (as the
//! first admin is bootstrapped), a permission matrix of callers × actions
//! through REST, the CLI and the portal with identical outcomes, revocation
//! and expiry, and the audit log with `plinth audit verify`.

use crate::common::{http, plinth_command, wait_for, write, Launch, Run, Serve};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Who calls, in the matrix.
const CALLERS: [&str; 9] =
    ["viewer", "owner", "parent", "other", "admin", "service", "expired", "revoked", "anonymous"];

/// An outcome every surface must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// 403: the access rules refuse this caller.
    Forbidden,
    /// 401: no identity, or one that does not count.
    Unauthenticated,
}
use Outcome::{Allowed as A, Forbidden as F, Unauthenticated as U};

/// The outcomes, written out by hand per caller (not computed from the
/// rules): viewer, owner, parent, other, admin, service, expired, revoked,
/// anonymous.
fn expected(action: &str) -> [Outcome; 9] {
    match action {
        // Reads: every signed-in caller with the `read` scope.
        "read" => [A, A, A, A, A, F, U, U, U],
        // Delete an entity of team payments.
        "delete-entity" => [F, A, A, F, A, F, U, U, U],
        // Register a location: any user with `write`.
        "register" => [F, A, A, A, A, F, U, U, U],
        // Unregister a location whose entities team payments owns.
        "unregister" => [F, A, A, F, A, F, U, U, U],
        // A waiver on a payments entity.
        "waiver" => [F, A, A, F, A, F, U, U, U],
        // An alert rule on a payments entity.
        "alert-rule" => [F, A, A, F, A, F, U, U, U],
        // The audit log: admins only.
        "audit" => [F, F, F, F, A, F, U, U, U],
        // OTLP ingest: `signals:ingest` (and `write`, which covers it).
        "ingest" => [F, A, A, A, A, A, U, U, U],
        // A token for oneself.
        "own-token" => [F, A, A, A, A, F, U, U, U],
        other => panic!("no expectations for {other}"),
    }
}

fn outcome_of_status(status: StatusCode) -> Outcome {
    match status.as_u16() {
        200..=299 => A,
        401 => U,
        403 => F,
        other => panic!("a status that is not an access outcome: {other}"),
    }
}

fn outcome_of_exit(run: &Run) -> Outcome {
    match run.code {
        0 => A,
        5 => U,
        6 => F,
        other => panic!("exit code {other} is not an access outcome\nstdout: {}\nstderr: {}", run.stdout, run.stderr),
    }
}

/// The organisation: commerce ⊃ payments; finance; platform. Alice is in
/// payments, Lead in commerce (the parent), Bob in finance, Root in
/// platform.
const ORG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: commerce}
spec: {type: department, children: [payments]}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: payments}
spec: {type: team, parent: commerce, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: finance}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: platform}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {profile: {email: alice@example.com}, memberOf: [payments]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: lead}
spec: {memberOf: [commerce]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {memberOf: [finance]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: root}
spec: {memberOf: [platform]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: checkout}
spec: {type: service, lifecycle: production, owner: payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: ledger}
spec: {type: service, lifecycle: production, owner: finance}
"#;

fn component(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\nspec: {{type: service, lifecycle: experimental, owner: payments}}\n"
    )
}

/// Issues a token offline; returns the secret (stdout's last line).
fn issue(data: &Path, args: &[&str]) -> String {
    let run: Run = plinth_command()
        .args(["token", "create", "--data-dir"])
        .arg(data)
        .args(args)
        .output()
        .expect("run plinth token create")
        .into();
    assert_eq!(run.code, 0, "plinth token create {args:?}: {}", run.stderr);
    let secret = run.stdout.lines().last().expect("the secret").trim().to_string();
    assert!(secret.starts_with("plinth_") && secret.len() > 40, "the secret alone on the last line: {secret:?}");
    assert!(!run.stderr.contains(&secret), "the secret is printed once, on stdout");
    secret
}

fn token_id(data: &Path, name: &str) -> String {
    let run: Run =
        plinth_command().args(["token", "ls", "--json", "--data-dir"]).arg(data).output().expect("token ls").into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tokens: Value = serde_json::from_str(&run.stdout).expect("token ls --json");
    assert!(!run.stdout.contains("plinth_"), "token ls never shows a secret");
    tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no token named {name}"))
        .to_string()
}

struct World {
    serve: Serve,
    dir: tempfile::TempDir,
    tokens: BTreeMap<&'static str, Option<String>>,
    /// Location ids by file stem.
    locations: BTreeMap<String, String>,
}

impl World {
    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("catalog").join(name)
    }

    async fn request(&self, caller: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> StatusCode {
        let mut request = http().request(method, self.serve.url(path));
        if let Some(Some(token)) = self.tokens.get(caller) {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
            assert_eq!(challenge, Some("Bearer realm=\"plinth\""), "{caller} {path}: a 401 names the scheme");
            let body: Value = response.json().await.unwrap_or_default();
            let message = body["error"]["message"].as_str().or(body["message"].as_str()).unwrap_or_default();
            assert!(!message.is_empty(), "{caller} {path}: a 401 says why: {body}");
            return status;
        }
        if status == StatusCode::FORBIDDEN {
            let body: Value = response.json().await.unwrap_or_default();
            // Backstage's error body; OTLP's status shape on /v1/*.
            let message = body["error"]["message"].as_str().or(body["message"].as_str()).unwrap_or_default();
            assert!(
                message.contains("may not `") && message.contains("(rule `"),
                "a 403 names the permission and the rule: {body}"
            );
        }
        status
    }

    fn cli(&self, caller: &str, args: &[&str]) -> Run {
        let mut command = plinth_command();
        command.env_remove("PLINTH_TOKEN").args(args).args(["--server", &self.serve.base]);
        if let Some(Some(token)) = self.tokens.get(caller) {
            command.env("PLINTH_TOKEN", token);
        }
        command.output().expect("run plinth").into()
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    let org = write(&catalog.join("org.yaml"), ORG);
    let mut files = vec![org];
    for caller in CALLERS {
        for surface in ["rest", "cli"] {
            files.push(write(
                &catalog.join(format!("ent-{caller}-{surface}.yaml")),
                &component(&format!("ent-{caller}-{surface}")),
            ));
            files.push(write(
                &catalog.join(format!("loc-{caller}-{surface}.yaml")),
                &component(&format!("loc-{caller}-{surface}")),
            ));
            write(
                &catalog.join(format!("new-{caller}-{surface}.yaml")),
                &component(&format!("new-{caller}-{surface}")),
            );
        }
    }
    let locations: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let data = dir.path().join("data");
    let serve =
        Serve::launch(&data, Launch { locations: &locations, args: &["--auth", "required"], ..Launch::default() })
            .await;

    let mut tokens = BTreeMap::new();
    tokens
        .insert("viewer", Some(issue(&data, &["--name", "viewer", "--user", "user:default/alice", "--scope", "read"])));
    tokens.insert("owner", Some(issue(&data, &["--name", "owner", "--user", "user:default/alice"])));
    tokens.insert("parent", Some(issue(&data, &["--name", "parent", "--user", "user:default/lead"])));
    tokens.insert("other", Some(issue(&data, &["--name", "other", "--user", "user:default/bob"])));
    tokens.insert("admin", Some(issue(&data, &["--name", "admin", "--user", "user:default/root", "--admin"])));
    tokens.insert(
        "service",
        Some(issue(&data, &["--name", "otel", "--service", "otel-exporter", "--scope", "signals:ingest"])),
    );
    tokens.insert(
        "expired",
        Some(issue(&data, &["--name", "expired", "--user", "user:default/alice", "--expires-in", "1s"])),
    );
    tokens.insert("revoked", Some(issue(&data, &["--name", "revoked", "--user", "user:default/alice"])));
    tokens.insert("anonymous", None);

    let mut world = World { serve, dir, tokens, locations: BTreeMap::new() };
    // The revoked token works until it is revoked, and not after.
    assert_eq!(world.request("revoked", reqwest::Method::GET, "/api/auth/me", None).await, StatusCode::OK);
    let revoked = token_id(&world.data(), "revoked");
    let run: Run = plinth_command()
        .args(["token", "revoke", "--data-dir"])
        .arg(world.data())
        .arg(&revoked)
        .output()
        .expect("token revoke")
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Revoked offline (another process): the server follows within its poll.
    wait_for(Duration::from_secs(10), "the revocation reaches the server", async || {
        world.request("revoked", reqwest::Method::GET, "/api/auth/me", None).await == StatusCode::UNAUTHORIZED
    })
    .await;
    // The expired token has outlived its second.
    wait_for(Duration::from_secs(10), "the 1-second token expires", async || {
        world.request("expired", reqwest::Method::GET, "/api/auth/me", None).await == StatusCode::UNAUTHORIZED
    })
    .await;
    // Location ids, read as the admin.
    let listed = http()
        .get(world.serve.url("/api/catalog/locations"))
        .bearer_auth(world.tokens["admin"].as_ref().unwrap())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    for item in listed.as_array().expect("locations") {
        let target = item["data"]["target"].as_str().unwrap_or_default();
        let stem = Path::new(target).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        world.locations.insert(stem, item["data"]["id"].as_str().unwrap().to_string());
    }
    world
}

async fn uid_of(world: &World, name: &str) -> String {
    let entity = http()
        .get(world.serve.url(&format!("/api/catalog/entities/by-name/component/default/{name}")))
        .bearer_auth(world.tokens["admin"].as_ref().unwrap())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    entity["metadata"]["uid"].as_str().unwrap_or_else(|| panic!("uid of {name}: {entity}")).to_string()
}

/// Every caller × every action over REST, and the CLI and portal where
/// they offer the action: the outcomes are the hand-written ones, on every
/// surface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_matrix_is_the_same_on_every_surface() {
    let world = world().await;
    let mut cases = 0;
    let mut mismatches = Vec::new();
    let mut check = |surface: &str, action: &str, caller: &str, index: usize, got: Outcome| {
        cases += 1;
        let want = expected(action)[index];
        if got != want {
            mismatches.push(format!("{surface} {action} as {caller}: got {got:?}, want {want:?}"));
        }
    };
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (i, caller) in CALLERS.iter().copied().enumerate() {
        use reqwest::Method;
        let status = world.request(caller, Method::GET, "/api/catalog/entities?limit=5", None).await;
        check("rest", "read", caller, i, outcome_of_status(status));

        let uid = uid_of(&world, &format!("ent-{caller}-rest")).await;
        let status = world.request(caller, Method::DELETE, &format!("/api/catalog/entities/by-uid/{uid}"), None).await;
        check("rest", "delete-entity", caller, i, outcome_of_status(status));

        let target = world.file(&format!("new-{caller}-rest.yaml")).to_string_lossy().to_string();
        let body = json!({"type": "file", "target": target});
        let status = world.request(caller, Method::POST, "/api/catalog/locations", Some(body)).await;
        check("rest", "register", caller, i, outcome_of_status(status));

        let id = &world.locations[&format!("loc-{caller}-rest")];
        let status = world.request(caller, Method::DELETE, &format!("/api/catalog/locations/{id}"), None).await;
        check("rest", "unregister", caller, i, outcome_of_status(status));

        let waiver = json!({"owner": "group:default/payments", "reason": "migrating", "entity": "component:default/checkout",
                            "rule": "PL-BASE-003", "expiresAt": expires});
        let status = world.request(caller, Method::POST, "/api/policy/waivers", Some(waiver)).await;
        check("rest", "waiver", caller, i, outcome_of_status(status));

        let rule = json!({"id": format!("errors-{caller}"), "name": format!("errors {caller}"),
                          "entity": "component:default/checkout", "signal": "error_rate", "op": ">", "threshold": 0.5});
        let status = world.request(caller, Method::POST, "/api/signals/alerts/rules", Some(rule)).await;
        check("rest", "alert-rule", caller, i, outcome_of_status(status));

        let status = world.request(caller, Method::GET, "/api/audit?limit=5", None).await;
        check("rest", "audit", caller, i, outcome_of_status(status));

        let status = world.request(caller, Method::POST, "/v1/traces", Some(json!({"resourceSpans": []}))).await;
        check("rest", "ingest", caller, i, outcome_of_status(status));

        let subject = match caller {
            "service" => json!({"service": "otel-exporter"}),
            "parent" => json!({"user": "user:default/lead"}),
            "other" => json!({"user": "user:default/bob"}),
            "admin" => json!({"user": "user:default/root"}),
            _ => json!({"user": "user:default/alice"}),
        };
        let mut body = json!({"name": format!("{caller} laptop"), "scopes": ["read"]});
        body.as_object_mut().unwrap().extend(subject.as_object().unwrap().clone());
        let status = world.request(caller, Method::POST, "/api/auth/tokens", Some(body)).await;
        check("rest", "own-token", caller, i, outcome_of_status(status));

        // The CLI: the verbs it has.
        let run = world.cli(caller, &["catalog", "ls", "--limit", "5"]);
        check("cli", "read", caller, i, outcome_of_exit(&run));
        let target = world.file(&format!("new-{caller}-cli.yaml"));
        let run = world.cli(caller, &["catalog", "locations", "add", &target.to_string_lossy()]);
        check("cli", "register", caller, i, outcome_of_exit(&run));
        let id = &world.locations[&format!("loc-{caller}-cli")];
        let run = world.cli(caller, &["catalog", "locations", "rm", id]);
        check("cli", "unregister", caller, i, outcome_of_exit(&run));

        // The portal: a page read with the session cookie, and the audit page.
        for (action, path) in [("read", "/catalog"), ("audit", "/audit")] {
            let mut request = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(world.serve.url(path))
                .header("accept", "text/html");
            if let Some(Some(token)) = world.tokens.get(caller) {
                request = request.header("cookie", format!("plinth_session={token}"));
            }
            let response = request.send().await.unwrap();
            let got = match response.status().as_u16() {
                200 => A,
                403 => F,
                // A browser without a valid session is sent to sign in.
                303 | 307 => {
                    let location = response.headers()["location"].to_str().unwrap().to_string();
                    assert!(location.starts_with("/auth/sign-in?next="), "{caller} {path}: {location}");
                    U
                }
                other => panic!("portal {path} as {caller}: {other}"),
            };
            check("portal", action, caller, i, got);
        }
    }
    assert!(mismatches.is_empty(), "{} of {cases} cases differ:\n{}", mismatches.len(), mismatches.join("\n"));
    assert!(cases >= 60, "the matrix has {cases} cases");
    eprintln!("{cases} access cases agree on REST, the CLI and the portal");

    // Every mutation and every refusal is in the audit log, with who did it.
    let admin = world.tokens["admin"].as_ref().unwrap();
    let page: Value = http()
        .get(world.serve.url("/api/audit?limit=1000"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = page["items"].as_array().expect("audit rows");
    let has = |actor: &str, action: &str, outcome: &str| {
        rows.iter().any(|r| r["actor"] == actor && r["action"] == action && r["outcome"] == outcome)
    };
    assert!(has("user:default/alice", "catalog.entity.delete", "allowed"), "the owner's delete");
    assert!(has("user:default/bob", "catalog.entity.delete", "denied"), "the other team's refusal");
    assert!(has("user:default/lead", "catalog.location.delete", "allowed"), "the parent group's unregister");
    assert!(has("service:otel-exporter", "catalog.read", "denied"), "the narrow token's refusal");
    assert!(has("anonymous", "auth.authenticate", "denied"), "a revoked token's use");
    assert!(
        rows.iter()
            .any(|r| r["actor"].as_str().unwrap_or("").starts_with("cli:") && r["action"] == "auth.token.create"),
        "tokens issued offline are audited"
    );
    assert!(!page.to_string().contains("plinth_"), "no secret in the audit log");

    // The chain is intact.
    let run: Run =
        plinth_command().args(["audit", "verify", "--data-dir"]).arg(world.data()).output().expect("verify").into();
    assert_eq!(run.code, 0, "audit verify: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("audit log intact"), "{}", run.stdout);
}

/// A non-loopback listener without `--auth required` refuses to start,
/// naming the flags to use.
#[test]
fn a_public_listener_needs_auth() {
    let dir = tempfile::tempdir().unwrap();
    let run: Run = plinth_command()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("PLINTH_SHIPPED_TEMPLATES", "false")
        .output()
        .expect("run plinth serve")
        .into();
    assert_ne!(run.code, 0, "it must not start");
    assert!(run.stderr.contains("--auth required"), "names the flag: {}", run.stderr);
    assert!(run.stderr.contains("plinth token create"), "says how to get a token: {}", run.stderr);
}

/// Editing one audit row is found by `plinth audit verify`, which names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_audit_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = write(&dir.path().join("org.yaml"), ORG);
    let serve = Serve::launch(&data, Launch { locations: &[org.as_path()], ..Launch::default() }).await;
    // Three audited events: two token issues and a revocation.
    issue(&data, &["--name", "a", "--user", "user:default/alice"]);
    issue(&data, &["--name", "b", "--user", "user:default/bob"]);
    let id = token_id(&data, "b");
    let run: Run =
        plinth_command().args(["token", "revoke", "--data-dir"]).arg(&data).arg(&id).output().unwrap().into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    drop(serve);
    let verify =
        || -> Run { plinth_command().args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap().into() };
    assert_eq!(verify().code, 0, "{}", verify().stderr);
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("plinth.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_log WHERE action = 'auth.token.revoke'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'cli:nobody' WHERE seq = ?")
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let run = verify();
        assert_eq!(run.code, 1, "an edited row fails verification");
        assert!(run.stderr.contains(&format!("seq {seq}")), "names the row: {}", run.stderr);
    }
}

/// Two `plinth serve --auth required` replicas on one PostgreSQL database:
/// a token issued offline works on both; revoked through one, the other
/// refuses it within its poll; both write one audit chain, which verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_tokens_revocations_and_one_audit_chain() {
    let Some(database) = plinth_testkit::PgDatabase::create("it").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let org = write(&dir.path().join("org.yaml"), ORG);
    let launch = Launch {
        database_url: Some(&database.url),
        locations: &[org.as_path()],
        args: &["--auth", "required"],
        ..Launch::default()
    };
    let a = Serve::launch(&dir.path().join("a"), launch).await;
    let launch = Launch {
        database_url: Some(&database.url),
        locations: &[org.as_path()],
        args: &["--auth", "required"],
        ..Launch::default()
    };
    let b = Serve::launch(&dir.path().join("b"), launch).await;
    let cli = |args: &[&str]| -> Run {
        plinth_command().args(args).args(["--database-url", &database.url]).output().expect("run plinth").into()
    };
    let issue_pg = |args: &[&str]| {
        let run = cli(&[&["token", "create"], args].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().last().unwrap().trim().to_string()
    };
    let admin = issue_pg(&["--name", "admin", "--user", "user:default/root", "--admin"]);
    let alice = issue_pg(&["--name", "alice", "--user", "user:default/alice"]);
    let me = |server: &Serve, token: &str| {
        let (url, token) = (server.url("/api/auth/me"), token.to_string());
        async move { http().get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(&a, &alice).await, StatusCode::OK);
    assert_eq!(me(&b, &alice).await, StatusCode::OK);

    // Revoked through A's API by the admin: A refuses it at once, B within
    // its poll of the token table.
    let ls = cli(&["token", "ls", "--json"]);
    let tokens: Value = serde_json::from_str(&ls.stdout).unwrap();
    let id =
        tokens.as_array().unwrap().iter().find(|t| t["name"] == "alice").unwrap()["id"].as_str().unwrap().to_string();
    let revoked = http().delete(a.url(&format!("/api/auth/tokens/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(me(&a, &alice).await, StatusCode::UNAUTHORIZED, "refused on the next request where it was revoked");
    let took = wait_for(Duration::from_secs(10), "B refuses the token A revoked", async || {
        me(&b, &alice).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("B refused the revoked token after {took:?}");

    // Both replicas wrote audit rows; the chain is one and intact.
    let rows: Value =
        http().get(b.url("/api/audit?limit=1000")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> = rows["items"].as_array().unwrap().iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(actions.contains(&"auth.token.revoke") && actions.contains(&"auth.authenticate"), "{actions:?}");
    let verify = cli(&["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}
