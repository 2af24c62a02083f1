//! The real `plinth` binary as separate processes: offline `catalog validate`, a `kill -9` during ingestion on SQLite and PostgreSQL, two `plinth serve` replicas sharing one PostgreSQL database, and the client verbs against a running server.
//!
//! PostgreSQL comes from `PLINTH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own
//! database and drops it afterwards. `PLINTH_SKIP_POSTGRES=1` skips the
//! PostgreSQL tests with a loud notice; otherwise an unreachable server fails
//! them. The crash tests need `python3` and `shared/bench/gen_catalog.py`
//! beside the repository.

use super::common::{generate_catalog, http, line_of, plinth_command, repo, wait_for, write, Launch, Run, Serve};
use plinth_testkit::PgDatabase;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs `plinth ARGS…` to completion: (exit code, stdout, stderr).
async fn plinth(args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::from(plinth_command()).args(args).output().await.expect("run plinth");
    let run = Run::from(output);
    (run.code, run.stdout, run.stderr)
}

fn component(name: &str, description: &str, extra: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n{extra}"
    )
}

/// A small catalogue: a root Location, services with an API and a database,
/// and (optionally) one invalid entity. Returns the root file.
fn small_catalog(dir: &Path, with_invalid: bool) -> PathBuf {
    let services = [
        component("checkout", "Turns baskets into orders", "  providesApis: [checkout-api]\n  dependsOn: [component:payments, resource:orders-db]\n"),
        component("payments", "Charges cards", "  dependsOn: [resource:orders-db]\n"),
        component("web-frontend", "The storefront", "  consumesApis: [checkout-api]\n").replace("type: service", "type: website"),
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: checkout-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition: 'openapi: 3.0.0'\n".to_string(),
        "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: orders-db\nspec:\n  type: database\n  owner: team-b\n".to_string(),
    ]
    .join("---\n");
    write(&dir.join("services/catalog-info.yaml"), &services);
    let mut targets = vec!["./services/catalog-info.yaml"];
    if with_invalid {
        write(
            &dir.join("broken/catalog-info.yaml"),
            &component("bad-one", "Broken", "").replace("lifecycle: production", "lifecycle: [production]"),
        );
        targets.push("./broken/catalog-info.yaml");
    }
    let root = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: small-root\nspec:\n  targets:\n{}",
        targets.iter().map(|t| format!("    - {t}\n")).collect::<String>()
    );
    write(&dir.join("catalog-info.yaml"), &root)
}

// ---------------------------------------------------------------------------
// Offline validation
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_file_line_and_field_and_exits_nonzero() {
    let dir = tempfile::TempDir::new().unwrap();
    let text = format!(
        "{}---\n{}",
        component("good-one", "Fine", ""),
        component("bad-one", "Broken", "").replace("lifecycle: production", "lifecycle: [production]")
    );
    let file = write(&dir.path().join("catalog-info.yaml"), &text);
    let line = line_of(&text, "lifecycle: [production]");

    let (code, stdout, stderr) = plinth(&["catalog", "validate", dir.path().to_str().unwrap()]).await;
    assert_eq!(code, 1, "invalid input must exit 1\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let expected = format!("{}:{line}: error:", file.display());
    let reported =
        stdout.lines().find(|l| l.contains(&expected)).unwrap_or_else(|| panic!("no `{expected}` line in:\n{stdout}"));
    assert!(reported.contains("spec.lifecycle") && reported.contains("bad-one"), "{reported}");
    assert!(stdout.contains("1 error(s)"), "{stdout}");

    let (code, stdout, _) = plinth(&["catalog", "validate", "--output", "json", file.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("--output json is not JSON ({e}):\n{stdout}"));
    assert_eq!(report["valid"], json!(false));
    assert_eq!(report["errors"], json!(1));
    assert_eq!(report["entities"], json!(1), "the valid entity still counts");
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["line"], json!(line));
    assert_eq!(diagnostic["field"], json!("spec.lifecycle"));
    assert_eq!(diagnostic["severity"], json!("error"));
    assert!(diagnostic["location"].as_str().unwrap().ends_with("catalog-info.yaml"));

    // The demo catalogue is valid.
    let demo = repo().join("examples/demo");
    let (code, stdout, stderr) = plinth(&["catalog", "validate", demo.to_str().unwrap()]).await;
    assert_eq!(code, 0, "examples/demo must validate\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(" 0 error(s)"), "{stdout}");
    let (code, stdout, _) = plinth(&["catalog", "validate", "--output", "json", demo.to_str().unwrap()]).await;
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["valid"], json!(true));
    assert!(report["entities"].as_u64().unwrap() > 50, "{}", report["entities"]);

    // A path that does not exist is an error, not a pass.
    let (code, _, _) = plinth(&["catalog", "validate", dir.path().join("nope.yaml").to_str().unwrap()]).await;
    assert_ne!(code, 0, "validating a missing file must fail");
}

// ---------------------------------------------------------------------------
// kill -9 during ingestion
// ---------------------------------------------------------------------------

/// The refresh status (`data.status`) of the only location, once registered.
async fn location_status(server: &Serve) -> Option<Value> {
    let locations = server.ok("/api/catalog/locations", &[]).await;
    let locations = locations.as_array().unwrap_or_else(|| panic!("not a list: {locations}"));
    assert!(locations.len() <= 1, "{locations:?}");
    locations.first().map(|l| l["data"]["status"].clone())
}

/// The default log plus the catalogue's debug lines on a refresh's stages
/// (`read location`, `reconciled`, `stored`, `projected`).
const INGEST_LOG: (&str, &str) = ("PLINTH_LOG", "info,tantivy=warn,sqlx=warn,plinth_catalog=debug");
/// Logged when a refresh completes; never by one that was cut off.
const REFRESHED: &str = "refreshed location";
/// Logged by a restarted server for a location whose refresh was cut off.
const RESUMING: &str = "resuming a refresh that did not complete";

/// What a server shows of the ingest it is about to be killed in: the
/// location's refresh is marked as under way and not complete, not every
/// entity is visible, and the log has no completed refresh. Returns the
/// entities visible.
async fn assert_mid_ingest(victim: &Serve, total: u64, stage: &str) -> u64 {
    let status = location_status(victim).await.unwrap_or_else(|| panic!("{stage}: no location registered"));
    assert!(
        status["refreshingSince"].is_string() && status["refreshedAt"].is_null(),
        "{stage}: the location's refresh is not under way: {status}"
    );
    let visible: u64 = victim.kind_counts().await.values().sum();
    assert!(visible < total, "{stage}: all {total} entities are already visible");
    assert!(!victim.log_text().contains(REFRESHED), "{stage}: the refresh completed:\n{}", victim.log_tail());
    visible
}

/// Generates a 20k-entity catalogue and cuts its first ingest off twice
/// with `kill -9`: once as soon as the refresh is under way (reading the
/// files), once, after a restart, while the resumed refresh writes to the
/// store. Each kill is checked to have landed mid-ingest. A third start
/// must then reach the whole catalogue, consistent.
async fn kill_during_ingestion_then_restart(database_url: Option<&str>) {
    let dir = tempfile::TempDir::new().unwrap();
    let catalog = dir.path().join("catalog");
    let manifest = generate_catalog(&catalog, 20_000);
    let declared = manifest["entities"].as_u64().unwrap();
    // The generated entities plus the root Location that lists their files.
    let total = declared + 1;
    let all = catalog.join("all.yaml");
    let data = dir.path().join("data");
    let locations: [&Path; 1] = [&all];
    let launch = || Launch { database_url, locations: &locations, env: &[INGEST_LOG], ..Launch::default() };

    // Kill 1: as soon as the refresh is marked as under way.
    let mut victim = Serve::launch(&data, launch()).await;
    wait_for(Duration::from_secs(120), "the first ingest to get under way", async || {
        location_status(&victim).await.is_some_and(|status| status["refreshingSince"].is_string())
    })
    .await;
    let visible = assert_mid_ingest(&victim, total, "before the first kill").await;
    victim.kill();
    assert!(
        !victim.log_text().contains(REFRESHED),
        "the first ingest completed before the kill landed:\n{}",
        victim.log_tail()
    );
    eprintln!("killed plinth serve while its first refresh read the files, with {visible} of {total} entities visible");

    // Kill 2: the restarted server resumes the refresh; killed once it has
    // read and reconciled the files and is writing the changes.
    let mut victim = Serve::launch(&data, launch()).await;
    wait_for(Duration::from_secs(180), "the resumed ingest to write to the store", async || {
        victim.log_text().contains("reconciled")
    })
    .await;
    let visible = assert_mid_ingest(&victim, total, "before the second kill").await;
    victim.kill();
    let log = victim.log_text();
    assert!(!log.contains(REFRESHED), "the resumed ingest completed before the kill landed:\n{}", victim.log_tail());
    assert!(log.contains(RESUMING), "the first kill did not leave an interrupted refresh:\n{}", victim.log_tail());
    eprintln!(
        "killed plinth serve while its resumed refresh wrote to the store, with {visible} of {total} entities visible"
    );

    let second = Serve::start(&data, database_url, &[&all]).await;
    let started = Instant::now();
    let mut seen = 0;
    while started.elapsed() < Duration::from_secs(120) {
        seen = second.kind_counts().await.values().sum();
        if seen >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        seen,
        total,
        "after a restart the catalogue must reach the manifest's total\nlog:\n{}",
        second.log_tail()
    );
    eprintln!("restarted server had all {total} entities after {:?}", started.elapsed());
    assert!(
        second.log_text().contains(RESUMING),
        "the second kill did not leave an interrupted refresh:\n{}",
        second.log_tail()
    );

    // Consistent: per-kind counts, totals, relations, no errors.
    let counts = second.kind_counts().await;
    for (kind, count) in manifest["counts"].as_object().unwrap() {
        assert_eq!(counts.get(kind).copied(), count.as_u64(), "count of {kind}");
    }
    assert_eq!(counts.get("Location"), Some(&1));
    let page = second.ok("/api/catalog/entities/by-query", &[("limit", "1")]).await;
    assert_eq!(page["totalItems"], json!(total));
    let groups_and_users = manifest["counts"]["Group"].as_u64().unwrap() + manifest["counts"]["User"].as_u64().unwrap();
    let owned = second.ok("/api/catalog/entities/by-query", &[("filter", "relations.ownedby"), ("limit", "1")]).await;
    assert_eq!(owned["totalItems"], json!(declared - groups_and_users), "every owned entity has its ownedBy relation");
    let members = second
        .ok("/api/catalog/entities/by-query", &[("filter", "kind=user,relations.memberof"), ("limit", "1")])
        .await;
    assert_eq!(members["totalItems"], manifest["counts"]["User"], "every user has its memberOf relation");
    let hub = manifest["most_depended_upon"].as_str().unwrap();
    let direct = second
        .ok("/api/catalog/entities/by-query", &[("filter", &format!("relations.dependson={hub}")), ("limit", "1")])
        .await;
    assert_eq!(direct["totalItems"], manifest["most_depended_upon_direct_dependents"], "direct dependents of {hub}");
    let hub_path = hub.replacen(':', "/", 1);
    let impact = second.ok(&format!("/api/catalog/impact/{hub_path}"), &[("limit", "1")]).await;
    let transitive = manifest["most_depended_upon_transitive_dependents"].as_u64().unwrap();
    assert!(impact["count"].as_u64().unwrap() >= transitive, "impact of {hub}: {} < {transitive}", impact["count"]);
    let errors = second.ok("/api/catalog/errors", &[]).await;
    assert_eq!(errors["totalItems"], json!(0), "{errors}");
    // The location's status catches up when its refresh finishes.
    let started = Instant::now();
    loop {
        let locations = second.ok("/api/catalog/locations", &[]).await;
        assert_eq!(locations.as_array().map(Vec::len), Some(1), "{locations}");
        let status = &locations[0]["data"]["status"];
        if status["entities"] == json!(total)
            && status["refreshedAt"].is_string()
            && status["refreshingSince"].is_null()
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "location status never caught up: {locations}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_kill_9_during_ingestion() {
    kill_during_ingestion_then_restart(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_kill_9_during_ingestion() {
    let Some(database) = PgDatabase::create("it").await else { return };
    kill_during_ingestion_then_restart(Some(&database.url)).await;
}

/// A location registered through the API (so no `--location` flag brings
/// it back) is cut off by `kill -9` in the middle of its first ingest; the
/// restarted server resumes it at once, long before the periodic refresh.
async fn location_cut_off_mid_ingest_resumes_at_start(database_url: Option<&str>) {
    let dir = tempfile::TempDir::new().unwrap();
    let catalog = dir.path().join("catalog");
    let manifest = generate_catalog(&catalog, 20_000);
    let total = manifest["entities"].as_u64().unwrap() + 1;
    let all = catalog.join("all.yaml");
    let data = dir.path().join("data");
    let hour = [("PLINTH_REFRESH_INTERVAL", "3600")];
    let mut victim = Serve::start_with(&data, database_url, &[], &[], &hour).await;
    let registering = {
        let url = format!("{}/api/catalog/locations", victim.base);
        let body = json!({"type": "file", "target": all});
        tokio::spawn(async move { http().post(url).json(&body).send().await })
    };
    // Kill as soon as the refresh is under way (marked, not yet complete).
    let started = Instant::now();
    loop {
        let locations = victim.ok("/api/catalog/locations", &[]).await;
        if locations[0]["data"]["status"]["refreshingSince"].is_string() {
            victim.kill();
            break;
        }
        assert!(
            locations[0]["data"]["status"]["refreshedAt"].is_null(),
            "the ingest finished before it could be cut off"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "the ingest never got under way");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    registering.abort();
    eprintln!("killed plinth serve while its refresh was under way");

    let restarted = Serve::start_with(&data, database_url, &[], &[], &hour).await;
    let took = wait_for(Duration::from_secs(300), "the interrupted location to be resumed", async || {
        restarted.kind_counts().await.values().sum::<u64>() == total
    })
    .await;
    eprintln!("the restarted server resumed the location: all {total} entities after {took:?}");
    // The restart found the refresh cut off (the kill landed mid-ingest).
    assert!(
        restarted.log_text().contains(RESUMING),
        "the restarted server did not see an interrupted refresh:\n{}",
        restarted.log_tail()
    );
    // The location's status records the completed refresh.
    wait_for(Duration::from_secs(150), "the resumed refresh to complete", async || {
        let locations = restarted.ok("/api/catalog/locations", &[]).await;
        let status = &locations[0]["data"]["status"];
        status["refreshedAt"].is_string() && status["refreshingSince"].is_null() && status["entities"] == json!(total)
    })
    .await;
    // Registering it again is still a conflict, as in Backstage, and says how to refresh.
    let (code, body) = restarted.post("/api/catalog/locations", &json!({"type": "file", "target": all})).await;
    assert_eq!(code, reqwest::StatusCode::CONFLICT, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_location_cut_off_mid_ingest_resumes_at_start() {
    location_cut_off_mid_ingest_resumes_at_start(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_location_cut_off_mid_ingest_resumes_at_start() {
    let Some(database) = PgDatabase::create("it").await else { return };
    location_cut_off_mid_ingest_resumes_at_start(Some(&database.url)).await;
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secret_from_a_file_is_enforced_and_never_leaks() {
    use hmac::Mac;
    let dir = tempfile::TempDir::new().unwrap();
    let secret = "whsec-5ecret-9f2c41";
    let file = write(&dir.path().join("webhook-secret"), &format!("{secret}\n"));
    let server =
        Serve::start_with(&dir.path().join("data"), None, &[], &["--webhook-secret-file", file.to_str().unwrap()], &[])
            .await;
    let payload = json!({"repository": "https://example.com/org/repo.git", "ref": "refs/heads/main"}).to_string();
    let post = |headers: Vec<(&'static str, String)>| {
        let url = format!("{}/api/catalog/webhook", server.base);
        let payload = payload.clone();
        async move {
            let mut request = http().post(url).header("content-type", "application/json").body(payload);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.expect("POST");
            (response.status(), response.text().await.unwrap_or_default())
        }
    };
    let (status, body) = post(vec![]).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "an unsigned push: {body}");
    let (status, body) = post(vec![("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))]).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "a wrong GitHub signature: {body}");
    let (status, body) = post(vec![("x-gitlab-token", "not-the-secret".into())]).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "a wrong GitLab token: {body}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (status, body) = post(vec![("x-hub-signature-256", signature), ("x-github-event", "push".into())]).await;
    assert_eq!(status, reqwest::StatusCode::OK, "a signed push: {body}");
    let (status, body) = post(vec![("x-gitlab-token", secret.into())]).await;
    assert_eq!(status, reqwest::StatusCode::OK, "the right GitLab token: {body}");
    // The secret is in neither the process environment nor the log, nor
    // any answer — including a dry run that tries to read the environment.
    #[cfg(target_os = "linux")]
    {
        let environ = std::fs::read(format!("/proc/{}/environ", server.pid())).unwrap();
        assert!(!String::from_utf8_lossy(&environ).contains(secret), "the secret is in the environment");
    }
    let location =
        write(&dir.path().join("probe/catalog-info.yaml"), &component("probe", "{$text: /proc/self/environ}", ""));
    let (status, body) =
        server.post("/api/catalog/locations?dryRun=true", &json!({"type": "file", "target": location})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    assert!(!body.to_string().contains(secret) && !body.to_string().contains("PATH="), "{body}");
    assert!(!server.log_text().contains(secret), "the secret is in the log:\n{}", server.log_tail());

    // Given through the environment instead, it is still never logged.
    let env_server =
        Serve::start_with(&dir.path().join("data-env"), None, &[], &[], &[("PLINTH_WEBHOOK_SECRET", secret)]).await;
    let response = http()
        .post(format!("{}/api/catalog/webhook", env_server.base))
        .header("x-gitlab-token", "wrong")
        .json(&json!({"repository": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(!env_server.log_text().contains(secret), "the secret is in the log");
    let (code, help, _) = plinth(&["serve", "--help"]).await;
    assert_eq!(code, 0);
    assert!(help.contains("--webhook-secret-file") && help.contains("--outbound-allow"), "{help}");
}

// ---------------------------------------------------------------------------
// Replicas on one PostgreSQL database
// ---------------------------------------------------------------------------

/// Two `plinth serve` replicas on one PostgreSQL database, neither
/// refreshing on its own (hourly refresh): each sees what the other writes
/// — registrations, edits, deletes, and what follows from them (graph,
/// search) — because it follows the shared change log. A generous bound on
/// each wait; how fast is for the benchmarks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_database_see_each_others_writes() {
    let Some(database) = PgDatabase::create("it").await else { return };
    let dir = tempfile::TempDir::new().unwrap();
    let hour = [("PLINTH_REFRESH_INTERVAL", "3600")];
    let a = Serve::start_with(&dir.path().join("a"), Some(&database.url), &[], &[], &hour).await;
    let b = Serve::start_with(&dir.path().join("b"), Some(&database.url), &[], &[], &hour).await;
    let root = small_catalog(&dir.path().join("catalog"), false);
    let bound = Duration::from_secs(60);

    let entity = |server: &Serve, name: &str| {
        let url = server.url(&format!("/api/catalog/entities/by-name/component/default/{name}"));
        async move {
            let response = http().get(url).send().await.expect("GET");
            match response.status() {
                reqwest::StatusCode::OK => Some(response.json::<Value>().await.unwrap()),
                _ => None,
            }
        }
    };
    let description = |server: &Serve| {
        let lookup = entity(server, "checkout");
        async move { lookup.await.map(|e| e["metadata"]["description"].clone()) }
    };
    // A replica has applied everything in the change log when its position
    // is the other's and both are past `since`.
    let caught_up = async |reader: &Serve, writer: &Serve, since: f64| {
        let position = "plinth_catalog_change_log_position";
        let (read, written) = (reader.metric(position).await, writer.metric(position).await);
        read == written && read > since
    };
    let refreshes = "plinth_ingest_refreshes_total";

    // Register through A; B sees it.
    let (status, body) = a.post("/api/catalog/locations", &json!({"type": "file", "target": root})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let location_id = body["location"]["id"].as_str().unwrap().to_string();
    let took =
        wait_for(bound, "a location registered on A, on B", async || entity(&b, "checkout").await.is_some()).await;
    eprintln!("B saw A's registration after {took:?}");
    let on_a = entity(&a, "checkout").await.unwrap();
    let on_b = entity(&b, "checkout").await.unwrap();
    assert_eq!(on_a["metadata"]["uid"], on_b["metadata"]["uid"], "one store, one uid");
    let on_b_locations = b.ok("/api/catalog/locations", &[]).await;
    assert_eq!(on_b_locations[0]["data"]["id"], json!(location_id));

    // Edit + refresh through A; B shows it.
    let services = dir.path().join("catalog/services/catalog-info.yaml");
    let text = std::fs::read_to_string(&services).unwrap();
    std::fs::write(&services, text.replace("Turns baskets into orders", "Turns baskets into paid orders")).unwrap();
    let (status, report) = a.post("/api/catalog/refresh", &json!({"entityRef": "component:default/checkout"})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{report}");
    assert_eq!(report["written"], json!(1), "{report}");
    let took = wait_for(bound, "A's edit on B", async || {
        description(&b).await == Some(json!("Turns baskets into paid orders"))
    })
    .await;
    eprintln!("B showed A's edit {took:?} after A answered");
    let impact = b.ok("/api/catalog/impact/resource/default/orders-db", &[]).await;
    assert_eq!(impact["count"], json!(4), "B's graph follows A's writes: {impact}");
    // B learnt all of it from the change log: it refreshed nothing itself.
    wait_for(bound, "B to apply A's change log", async || caught_up(&b, &a, 0.0).await).await;
    assert_eq!(b.metric(refreshes).await, 0.0, "B refreshed a location itself");
    assert!(b.metric("plinth_catalog_changes_applied_total").await > 0.0, "B applied no change-log row");

    // Edit + refresh through B; A shows it, without refreshing again.
    let a_refreshes = a.metric(refreshes).await;
    let a_position = a.metric("plinth_catalog_change_log_position").await;
    std::fs::write(&services, text.replace("Turns baskets into orders", "Turns baskets into refunds")).unwrap();
    let (status, report) = b.post("/api/catalog/refresh", &json!({"entityRef": "component:default/checkout"})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{report}");
    assert_eq!(report["written"], json!(1), "{report}");
    let took =
        wait_for(bound, "B's edit on A", async || description(&a).await == Some(json!("Turns baskets into refunds")))
            .await;
    eprintln!("A showed B's edit {took:?} after B answered");
    wait_for(bound, "A to apply B's change log", async || caught_up(&a, &b, a_position).await).await;
    assert_eq!(a.metric(refreshes).await, a_refreshes, "A refreshed a location itself");
    let found = a.ok("/api/catalog/search", &[("q", "refunds")]).await;
    assert_eq!(found["totalItems"], json!(1), "A's search index follows B's writes: {found}");

    // A delete through A disappears from B.
    let uid = on_a["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(a.delete(&format!("/api/catalog/entities/by-uid/{uid}")).await, reqwest::StatusCode::NO_CONTENT);
    wait_for(bound, "A's entity delete on B", async || entity(&b, "checkout").await.is_none()).await;
    assert_eq!(a.delete(&format!("/api/catalog/locations/{location_id}")).await, reqwest::StatusCode::NO_CONTENT);
    wait_for(bound, "A's location delete on B", async || {
        b.ok("/api/catalog/entities", &[]).await.as_array().is_some_and(Vec::is_empty)
    })
    .await;
    let found = b.ok("/api/catalog/search", &[("q", "payments")]).await;
    assert_eq!(found["totalItems"], json!(0), "B's search index follows deletes: {found}");
    assert_eq!(b.metric(refreshes).await, 1.0, "B ran only the refresh it was asked for");
    drop((a, b));
    drop(database);
}

// ---------------------------------------------------------------------------
// Client verbs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_verbs_talk_to_a_running_server() {
    let dir = tempfile::TempDir::new().unwrap();
    let server = Serve::start(&dir.path().join("data"), None, &[]).await;
    let root = small_catalog(&dir.path().join("catalog"), true);
    let url = server.base.clone();
    let s = url.as_str();

    let (code, stdout, stderr) = plinth(&["catalog", "locations", "add", root.to_str().unwrap(), "--server", s]).await;
    assert_eq!(code, 0, "locations add\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("registered "), "{stdout}");
    assert!(stdout.contains(root.to_str().unwrap()), "{stdout}");
    assert!(stdout.contains("6 entities written, 1 errors"), "{stdout}");
    let (code, stdout, _) = plinth(&["catalog", "locations", "add", root.to_str().unwrap(), "--server", s]).await;
    assert_eq!(code, 0);
    assert!(stdout.starts_with("already registered"), "{stdout}");

    let (code, stdout, stderr) = plinth(&["catalog", "ls", "--kind", "component", "--server", s]).await;
    assert_eq!(code, 0, "ls\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ENTITY"), "{stdout}");
    let checkout =
        lines.iter().find(|l| l.starts_with("component:default/checkout ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(checkout.contains("service") && checkout.contains("team-a"), "{checkout}");
    assert!(lines.iter().any(|l| l.starts_with("component:default/web-frontend") && l.contains("website")), "{stdout}");
    assert!(!stdout.contains("api:default/checkout-api") && !stdout.contains("resource:"), "only components: {stdout}");
    assert_eq!(lines.last(), Some(&"(3 of 3)"), "{stdout}");
    // An owner the catalogue does not know is an error (1), not an empty list.
    let (code, _, stderr) = plinth(&["catalog", "ls", "--kind", "component", "--owner", "nobody", "--server", s]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no owner `group:default/nobody`"), "{stderr}");

    let (code, stdout, stderr) = plinth(&["catalog", "get", "checkout", "--server", s]).await;
    assert_eq!(code, 0, "get\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("component:default/checkout"), "get prints a summary card: {stdout}");
    let (code, stdout, _) = plinth(&["catalog", "get", "checkout", "-o", "json", "--server", s]).await;
    assert_eq!(code, 0);
    let entity: Value = serde_json::from_str(&stdout).expect("get -o json prints the entity as JSON");
    assert_eq!(entity["metadata"]["name"], json!("checkout"));
    assert!(
        entity["relations"].as_array().is_some_and(|r| r.iter().any(|r| r["type"] == json!("dependsOn"))),
        "{entity}"
    );
    let (code, _, stderr) = plinth(&["catalog", "get", "component:default/nope", "--server", s]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("404") && stderr.contains("nope"), "{stderr}");

    let (code, stdout, stderr) = plinth(&["catalog", "impact", "resource:orders-db", "--server", s]).await;
    assert_eq!(code, 0, "impact\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("resource:default/orders-db dependents: 4 entities"), "{stdout}");
    let frontend =
        stdout.lines().find(|l| l.contains("component:default/web-frontend")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(frontend.trim_start().starts_with('3'), "web-frontend is 3 hops away: {frontend}");
    assert!(frontend.contains("api:default/checkout-api"), "the path goes through the API: {frontend}");
    let (code, stdout, _) = plinth(&[
        "catalog",
        "impact",
        "web-frontend",
        "--direction",
        "dependencies",
        "--max-depth",
        "1",
        "--server",
        s,
    ])
    .await;
    assert_eq!(code, 0);
    assert!(stdout.starts_with("component:default/web-frontend dependencies: 1 entities"), "{stdout}");

    let (code, stdout, stderr) = plinth(&["catalog", "search", "checkout", "--server", s]).await;
    assert_eq!(code, 0, "search\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let first = stdout.lines().next().unwrap_or("");
    assert!(first.contains("component:default/checkout ") && first.contains("Turns baskets into orders"), "{stdout}");
    assert!(stdout.contains("api:default/checkout-api"), "{stdout}");
    assert!(stdout.trim_end().ends_with("matches)"), "{stdout}");

    let (code, stdout, _) = plinth(&["catalog", "errors", "--server", s]).await;
    assert_eq!(code, 1, "errors exits 1 while there are problems: {stdout}");
    let broken = dir.path().join("catalog/broken/catalog-info.yaml").canonicalize().unwrap();
    let text = std::fs::read_to_string(&broken).unwrap();
    let expected = format!("{}:{}: error:", broken.display(), line_of(&text, "lifecycle: [production]"));
    let reported =
        stdout.lines().find(|l| l.contains(&expected)).unwrap_or_else(|| panic!("no `{expected}` in:\n{stdout}"));
    assert!(reported.contains("component:default/bad-one") && reported.contains("spec.lifecycle"), "{reported}");
    assert!(stdout.contains("(1 problem(s))"), "{stdout}");

    let (code, stdout, _) = plinth(&["catalog", "locations", "ls", "--server", s]).await;
    assert_eq!(code, 0);
    let row = stdout.lines().find(|l| l.contains(root.to_str().unwrap())).unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cells[2], cells[3]), ("6", "1"), "entities and errors: {row}");

    let (code, stdout, _) = plinth(&["catalog", "refresh", "checkout", "--server", s]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("refreshed component:default/checkout:"), "{stdout}");
    let (code, stdout, _) = plinth(&["catalog", "refresh", "checkout", "-o", "json", "--server", s]).await;
    assert_eq!(code, 0, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("refresh -o json prints its report as JSON");
    assert_eq!(report["written"], json!(0), "{report}");

    // No server: the unavailable exit code.
    let (code, _, stderr) = plinth(&["catalog", "ls", "--server", "http://127.0.0.1:9"]).await;
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.contains("cannot reach the Plinth server"), "{stderr}");
}

fn demo_catalog() -> PathBuf {
    repo().join("examples/demo/catalog-info.yaml")
}

/// `plinth template ls` and `plinth new` (dry run, a real run, a policy
/// denial, parameter errors) against a real server with the demo catalogue
/// and the shipped templates and policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_paths_from_the_command_line() {
    let dir = tempfile::TempDir::new().unwrap();
    let demo = demo_catalog();
    let templates = repo().join("templates/catalog-info.yaml");
    let server = Serve::start(&dir.path().join("data"), None, &[&demo, &templates]).await;
    let s = server.base.clone();
    let s = s.as_str();
    // Wait for the demo catalogue and the shipped templates.
    wait_for(Duration::from_secs(300), "the demo catalogue and templates", async || {
        server.get("/api/catalog/entities/by-name/group/default/team-orders", &[]).await.0.is_success()
            && server.get("/api/catalog/entities/by-name/template/default/service", &[]).await.0.is_success()
    })
    .await;

    let (code, stdout, stderr) = plinth(&["template", "ls", "--server", s]).await;
    assert_eq!(code, 0, "template ls\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("NAME"), "{stdout}");
    for name in ["service", "gpu-training-environment", "ai-agent", "vector-database"] {
        assert!(stdout.lines().any(|l| l.starts_with(name)), "{name} not listed:\n{stdout}");
    }

    let common = ["--set", "owner=group:default/team-orders", "--set", "system=system:default/orders", "--server", s];
    let (code, stdout, stderr) = plinth(
        &[&["new", "service", "--set", "name=cli-svc", "--set", "repoUrl=cli-svc", "--dry-run"][..], &common[..]]
            .concat(),
    )
    .await;
    assert_eq!(code, 0, "dry run\n{stdout}\n{stderr}");
    assert!(stdout.contains("policy: allow") && stdout.contains("deploy/deployment.yaml"), "{stdout}");
    assert!(stdout.contains("nothing was published"), "{stdout}");
    assert!(!dir.path().join("data/repos/cli-svc").exists());

    let (code, stdout, stderr) = plinth(
        &[
            &[
                "new",
                "service",
                "--set",
                "name=cli-svc",
                "--set",
                "repoUrl=cli-svc",
                "--set",
                "language=python",
                "--user",
                "user:default/alice",
            ][..],
            &common[..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code, 0, "run\n{stdout}\n{stderr}");
    assert!(stderr.contains("▶ Check policies") && stderr.contains("✓ Publish to git"), "progress shown: {stderr}");
    assert!(stderr.contains("– skipped: fetch-rust"), "{stderr}");
    assert!(stdout.contains("component:default/cli-svc"), "{stdout}");
    let repo = dir.path().join("data/repos/cli-svc");
    assert!(repo.join("app/main.py").is_file(), "python skeleton committed");
    let (_, task_list) = server.get("/api/scaffolder/v2/tasks", &[("createdBy", "user:default/alice")]).await;
    assert_eq!(task_list["totalTasks"], json!(1), "the requester is recorded: {task_list}");
    let component = server.ok("/api/catalog/entities/by-name/component/default/cli-svc", &[]).await;
    assert_eq!(component["spec"]["owner"], json!("group:default/team-orders"));

    // A policy denial: exit 1 with the rule's message; nothing published.
    let values = dir.path().join("gpu.json");
    std::fs::write(
        &values,
        r#"{"name": "cli-gpu", "owner": "group:default/team-analytics", "system": "system:default/analytics",
            "gpuType": "NVIDIA-A100-SXM4-80GB", "gpuCount": 8, "nodes": 2, "region": "eu-west-1",
            "datasets": ["dataset:default/search-clickstream"], "dataClassification": "confidential",
            "purpose": "Train a big model", "maxRuntimeHours": 24, "budgetUsd": 5000, "repoUrl": "cli-gpu"}"#,
    )
    .unwrap();
    let (code, stdout, stderr) =
        plinth(&["new", "gpu-training-environment", "--values", values.to_str().unwrap(), "--server", s]).await;
    assert_eq!(code, 1, "denied\n{stdout}\n{stderr}");
    assert!(stdout.contains("PL-TRN-001") && stdout.contains("denied by policy"), "{stdout}");
    assert!(!dir.path().join("data/repos/cli-gpu").exists(), "a denied run published");

    // Parameter errors name the field; exit 2.
    let (code, _, stderr) = plinth(&["new", "service", "--set", "name=Bad Name", "--server", s]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("name:") && stderr.contains("owner:") && stderr.contains("repoUrl:"), "{stderr}");
}

/// A run cut off by a crash is reported as failed with the reason after the
/// restart, never silently lost: the server is killed (SIGKILL) while a run
/// waits on a git remote that never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_a_crash_is_failed_with_a_reason_after_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    // A "git server" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let remote = format!("git://127.0.0.1:{}/slow.git", silent.local_addr().unwrap().port());
    let template = write(
        &dir.path().join("templates/slow/template.yaml"),
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: slow\nspec:\n  type: test\n  parameters:\n    properties:\n      remote: {type: string}\n  steps:\n    - {id: log, action: debug:log, input: {message: started}}\n    - {id: publish, action: publish:git, input: {repoUrl: '${{ parameters.remote }}'}}\n",
    );
    let data = dir.path().join("data");
    let mut server = Serve::start(&data, None, &[&template]).await;
    wait_for(Duration::from_secs(150), "the template", async || {
        server.get("/api/catalog/entities/by-name/template/default/slow", &[]).await.0.is_success()
    })
    .await;
    let (status, created) = server
        .post(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/slow", "values": {"remote": remote}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    wait_for(Duration::from_secs(150), "the run reaching publish", async || {
        let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events"), &[]).await;
        events.to_string().contains("Beginning step publish")
    })
    .await;
    server.kill();
    let server = Serve::start(&data, None, &[&template]).await;
    let task = server.ok(&format!("/api/scaffolder/v2/tasks/{id}"), &[]).await;
    assert_eq!(task["status"], json!("failed"), "{task}");
    assert!(task["error"]["message"].as_str().unwrap().contains("server restarted"), "{task}");
    let (_, events) = server.get(&format!("/api/scaffolder/v2/tasks/{id}/events"), &[]).await;
    let events = events.as_array().unwrap().clone();
    assert!(events.iter().any(|e| e["body"]["message"] == json!("started")), "events before the crash are kept");
    assert_eq!(events.last().unwrap()["type"], json!("completion"));
    drop(silent);
}
