//! `plinth bench catalog`: the catalogue benchmark of DESIGN.md §6. It
//! generates a catalogue with `gen_catalog.py`, starts a real `plinth serve`
//! (this binary) on SQLite or PostgreSQL, and measures over loopback HTTP:
//! time to fully queryable, unchanged re-ingest, change visibility after a
//! refresh, per-endpoint latency percentiles and the server's peak RSS.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::common::{peak_rss_mib, start, Server};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchCatalogArgs {
    /// Entities to generate.
    #[arg(long, default_value_t = 100_000)]
    entities: usize,
    /// Use an already generated catalogue (a gen_catalog.py --out folder).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// The generator (default: ../shared/bench/gen_catalog.py from here or the source tree).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// Benchmark on PostgreSQL: an admin URL; a fresh database is created and dropped.
    #[arg(long)]
    postgres: Option<String>,
    /// Requests per latency measurement.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Serve with `--auth required` and send a token on every request (what
    /// identity and access control cost at scale).
    #[arg(long)]
    auth: bool,
    /// Write the markdown report here too.
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: BenchCatalogArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(args))
}

fn generator_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let candidates = [
        PathBuf::from("../shared/bench/gen_catalog.py"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen_catalog.py"),
    ];
    candidates.into_iter().find(|p| p.exists()).context("cannot find gen_catalog.py; pass --generator PATH")
}

async fn create_database(admin_url: &str) -> Result<(String, String)> {
    use sqlx::Connection;
    let name = format!("plinth_bench_{}", std::process::id());
    let mut conn =
        sqlx::PgConnection::connect(admin_url).await.with_context(|| format!("cannot connect to {admin_url}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
    Ok((format!("{base}/{name}"), name))
}

async fn drop_database(admin_url: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let response = client.get(url).send().await?;
    if !response.status().is_success() {
        bail!("{url}: {}", response.status());
    }
    Ok(response.json().await?)
}

async fn total_entities(client: &reqwest::Client, base: &str) -> Option<u64> {
    let facets = get_json(client, &format!("{base}/api/catalog/entity-facets?facet=kind")).await.ok()?;
    Some(facets["facets"]["kind"].as_array()?.iter().filter_map(|v| v["count"].as_u64()).sum())
}

struct Latency {
    name: String,
    bar_ms: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

async fn measure(client: &reqwest::Client, name: &str, bar_ms: f64, urls: &[String]) -> Result<Latency> {
    // Warm up connections and caches.
    for url in urls.iter().take(20) {
        client.get(url).send().await?.bytes().await?;
    }
    let mut samples = Vec::with_capacity(urls.len());
    for url in urls {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        let status = response.status();
        response.bytes().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            bail!("{name}: {url} answered {status}");
        }
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Ok(Latency {
        name: name.into(),
        bar_ms,
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: *samples.last().unwrap_or(&0.0),
    })
}

/// A generated catalogue served by a fresh `plinth serve`, fully ingested.
struct Setup {
    _work: tempfile::TempDir,
    catalog_dir: PathBuf,
    manifest: Value,
    expected: u64,
    hub: String,
    hub_path: String,
    backend: &'static str,
    database_name: Option<String>,
    client: reqwest::Client,
    server: Server,
    ingest_s: f64,
    /// Start → the governance view (catalog-point policy results and
    /// scorecards) covers every entity.
    governance_s: f64,
}

/// Generates (or reuses) the catalogue, starts the server on a fresh store
/// and waits until every entity is queryable with relations, search and
/// facets.
async fn setup(args: &BenchCatalogArgs) -> Result<Setup> {
    let work = tempfile::tempdir()?;
    let catalog_dir = match &args.catalog {
        Some(dir) => dir.clone(),
        None => {
            let out = work.path().join("catalog");
            let generator = generator_path(args.generator.as_deref())?;
            eprintln!("generating {} entities with {}", args.entities, generator.display());
            let status = Command::new("python3")
                .arg(&generator)
                .args(["--entities", &args.entities.to_string(), "--ai", "--out"])
                .arg(&out)
                .stdout(Stdio::null())
                .status()
                .context("cannot run python3")?;
            if !status.success() {
                bail!("gen_catalog.py failed");
            }
            out
        }
    };
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(catalog_dir.join("manifest.json"))?)?;
    let expected = manifest["entities"].as_u64().context("manifest has no entity count")?;
    let hub = manifest["most_depended_upon"].as_str().context("manifest has no hub")?.to_string();
    let (database_url, database_name) = match &args.postgres {
        Some(admin) => {
            let (url, name) = create_database(admin).await?;
            (Some(url), Some(name))
        }
        None => (None, None),
    };
    let backend = if database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let data_dir = work.path().join("data");
    let log = work.path().join("serve.log");
    let mut headers = reqwest::header::HeaderMap::new();
    if args.auth {
        // The store is created (and migrated) here so that the token exists
        // before the server answers its first request.
        let config = match &database_url {
            Some(url) => plinth_store::StoreConfig::Postgres { url: url.clone() },
            None => plinth_store::StoreConfig::Sqlite { data_dir: data_dir.clone() },
        };
        let store = plinth_store::Store::open(&config).await?;
        let request = plinth_app::identity::TokenRequest {
            name: "bench".into(),
            subject: plinth_app::identity::TokenSubject::User("user:default/bench".into()),
            scopes: vec!["read".into(), "write".into(), "admin".into()],
            lifetime: None,
        };
        let secret = plinth_app::identity::issue_token(&store, request, "bench").await?.secret;
        drop(store);
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {secret}").parse()?);
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(4).default_headers(headers).build()?;
    let root = catalog_dir.join("all.yaml");

    // 1. Start → every entity queryable with relations, search and facets.
    let started = Instant::now();
    let extra: &[&str] = if args.auth { &["--auth", "required"] } else { &[] };
    let server = start(&data_dir, database_url.as_deref(), Some(&root), &log, extra)?;
    let hub_path = hub.replacen(':', "/", 1);
    let deadline = started + Duration::from_secs(600);
    loop {
        if Instant::now() > deadline {
            bail!("the catalogue was not fully queryable after 600 s; see {}", log.display());
        }
        if total_entities(&client, &server.base).await == Some(expected) {
            let impact = get_json(&client, &format!("{}/api/catalog/impact/{hub_path}?limit=1", server.base)).await;
            let search = get_json(&client, &format!("{}/api/catalog/search?q=payment&limit=1", server.base)).await;
            if impact.is_ok_and(|i| i["count"].as_u64() > Some(0))
                && search.is_ok_and(|s| s["totalItems"].as_u64() > Some(0))
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ingest_s = started.elapsed().as_secs_f64();
    eprintln!("ingest: {ingest_s:.2} s");
    // The latency measurements run once the background policy evaluation
    // of the whole catalogue has finished; its duration is reported too.
    loop {
        if Instant::now() > deadline {
            bail!("the governance view did not cover the catalogue after 600 s; see {}", log.display());
        }
        let view =
            get_json(&client, &format!("{}/api/policy/scorecards?owner=group:default/nobody", server.base)).await;
        let covered: u64 = view
            .as_ref()
            .ok()
            .and_then(|v| v["outcomes"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum()))
            .unwrap_or(0);
        if covered >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let governance_s = started.elapsed().as_secs_f64();
    eprintln!("governance view: {governance_s:.2} s");

    Ok(Setup {
        _work: work,
        catalog_dir,
        manifest,
        expected,
        hub,
        hub_path,
        backend,
        database_name,
        client,
        server,
        ingest_s,
        governance_s,
    })
}

async fn bench(args: BenchCatalogArgs) -> Result<ExitCode> {
    let Setup {
        _work,
        catalog_dir,
        manifest,
        expected,
        hub,
        hub_path,
        backend,
        database_name,
        client,
        server,
        ingest_s,
        governance_s,
    } = setup(&args).await?;
    // 2. Unchanged re-ingest of the whole location: zero writes.
    let some_component = hub.clone();
    let refresh_url = format!("{}/api/catalog/refresh", server.base);
    let body = serde_json::json!({"entityRef": some_component});
    let t = Instant::now();
    let report: Value = client.post(&refresh_url).json(&body).send().await?.json().await?;
    let reingest_s = t.elapsed().as_secs_f64();
    let reingest_writes = report["written"].as_u64().unwrap_or(u64::MAX) + report["deleted"].as_u64().unwrap_or(0);
    eprintln!("unchanged re-ingest: {reingest_s:.2} s, {reingest_writes} writes");

    // 3. A changed file is visible after POST /refresh.
    let repo_file = std::fs::read_dir(catalog_dir.join("repos"))?
        .filter_map(Result::ok)
        .map(|e| e.path().join("catalog-info.yaml"))
        .find(|p| p.exists())
        .context("no repos in the catalogue")?;
    let text = std::fs::read_to_string(&repo_file)?;
    let system_name = text
        .lines()
        .skip_while(|l| !l.contains("kind: \"System\""))
        .find_map(|l| l.trim().strip_prefix("name: "))
        .map(|n| n.trim_matches('"').to_string())
        .context("no System in the repo file")?;
    let marker = format!("changed-{}", std::process::id());
    let changed = text.replacen(
        &format!("  name: \"{system_name}\"\n"),
        &format!("  name: \"{system_name}\"\n  description: \"{marker}\"\n"),
        1,
    );
    std::fs::write(&repo_file, changed)?;
    let system_ref = format!("system:default/{system_name}");
    let t = Instant::now();
    client.post(&refresh_url).json(&serde_json::json!({"entityRef": system_ref})).send().await?;
    let by_name = format!("{}/api/catalog/entities/by-name/system/default/{system_name}", server.base);
    loop {
        let entity = get_json(&client, &by_name).await?;
        if entity["metadata"]["description"].as_str() == Some(marker.as_str()) {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the change was not visible after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let change_s = t.elapsed().as_secs_f64();
    eprintln!("change visible: {change_s:.3} s");
    std::fs::write(&repo_file, text)?;

    // 4. Latencies.
    let n = args.requests;
    let components: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{}/api/catalog/entities/by-name/user/default/user-{}",
                server.base,
                (i * 7919) % (expected as usize / 8)
            )
        })
        .collect();
    let lifecycles = ["production", "experimental", "deprecated"];
    let queries: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{}/api/catalog/entities/by-query?filter=kind=component,spec.lifecycle={}&filter=kind=api,spec.owner=team-{}&limit=100&offset={}",
                server.base,
                lifecycles[i % 3],
                i % 50,
                (i * 100) % 5000
            )
        })
        .collect();
    let facets: Vec<String> = (0..n)
        .map(|i| {
            let filter = if i % 2 == 0 { String::new() } else { format!("&filter=spec.owner=team-{}", i % 200) };
            format!("{}/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=spec.lifecycle&facet=spec.owner&facet=metadata.tags{filter}", server.base)
        })
        .collect();
    let impacts: Vec<String> =
        (0..n).map(|_| format!("{}/api/catalog/impact/{hub_path}?limit=100", server.base)).collect();
    let words = [
        "payment",
        "checkout service",
        "fraud",
        "search ranking",
        "team-12",
        "java",
        "ledger api",
        "embedding model",
        "stream",
        "notification email",
    ];
    let searches: Vec<String> = (0..n)
        .map(|i| format!("{}/api/catalog/search?q={}&limit=20", server.base, words[i % words.len()].replace(' ', "+")))
        .collect();
    let impact_count = get_json(&client, &impacts[0]).await?["count"].as_u64().unwrap_or(0);
    let latencies = vec![
        measure(&client, "by-name", 2.0, &components).await?,
        measure(&client, "by-query, filtered page of 100", 20.0, &queries).await?,
        measure(&client, "entity-facets (5 facets)", 20.0, &facets).await?,
        measure(&client, &format!("impact of the hub ({impact_count} dependents, limit=100)"), 20.0, &impacts).await?,
        measure(&client, "search (ranked, with facets)", 20.0, &searches).await?,
    ];
    let rss = peak_rss_mib(server.child.id());
    drop(server);
    if let (Some(admin), Some(name)) = (&args.postgres, &database_name) {
        drop_database(admin, name).await;
    }

    // Report.
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut md = String::new();
    md.push_str(&format!(
        "### Catalogue, {expected} entities, {backend}{}\n\nMachine: {cores} cores ({cpu}). Command: `plinth bench catalog --entities {}{}{}`. Generated with `gen_catalog.py --entities {} --ai` ({} files).\n\n",
        if args.auth { ", `--auth required` with a token on every request" } else { "" },
        args.entities,
        if args.postgres.is_some() { " --postgres URL" } else { "" },
        if args.auth { " --auth" } else { "" },
        args.entities,
        manifest["files"]
    ));
    md.push_str("| measure | result | bar | verdict |\n|---|---|---|---|\n");
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    md.push_str(&format!(
        "| start → all entities queryable (relations, search, facets) | {ingest_s:.2} s | ≤ 10 s | {} |\n",
        verdict(ingest_s <= 10.0)
    ));
    md.push_str(&format!(
        "| start → policy results and scorecards of every entity (background) | {governance_s:.2} s | — | — |\n"
    ));
    md.push_str(&format!(
        "| unchanged re-ingest (POST /refresh of the root) | {reingest_s:.2} s, {reingest_writes} writes | ≤ 3 s, 0 writes | {} |\n",
        verdict(reingest_s <= 3.0 && reingest_writes == 0)
    ));
    md.push_str(&format!(
        "| changed file visible after POST /refresh | {:.0} ms | ≤ 2 s | {} |\n",
        change_s * 1000.0,
        verdict(change_s <= 2.0)
    ));
    for l in &latencies {
        md.push_str(&format!(
            "| {} p50 / p95 / p99 (max) | {:.2} / {:.2} / {:.2} ms ({:.1}) | p99 ≤ {} ms | {} |\n",
            l.name,
            l.p50,
            l.p95,
            l.p99,
            l.max,
            l.bar_ms,
            verdict(l.p99 <= l.bar_ms)
        ));
    }
    md.push_str(&format!("| peak RSS of the server | {rss:.0} MiB | ≤ 1024 MiB | {} |\n", verdict(rss <= 1024.0)));
    println!("{md}");
    if let Some(path) = &args.report {
        std::fs::write(path, &md)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `plinth bench portal`: server time and bytes per portal page type at
/// scale (DESIGN.md: p95 ≤ 50 ms per page at 100k entities; aim for under
/// 200 kB on first load).
pub fn run_portal(args: BenchCatalogArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench_portal(args))
}

/// One page fetch: time to the last byte and bytes on the wire (gzip).
async fn fetch_page(client: &reqwest::Client, url: &str) -> Result<(f64, usize, reqwest::StatusCode)> {
    let started = Instant::now();
    let response = client.get(url).header("accept-encoding", "gzip").send().await?;
    let status = response.status();
    let bytes = response.bytes().await?.len();
    Ok((started.elapsed().as_secs_f64() * 1000.0, bytes, status))
}

async fn bench_portal(args: BenchCatalogArgs) -> Result<ExitCode> {
    let setup = setup(&args).await?;
    let base = setup.server.base.clone();
    let client = &setup.client;
    // Asset URLs as the home page links them (versioned), for first-load bytes.
    let home = client.get(format!("{base}/")).send().await?.text().await?;
    let assets: Vec<String> = home
        .split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .map(|part| format!("{base}{part}"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut asset_bytes = 0;
    for asset in &assets {
        let (_, bytes, status) = fetch_page(client, asset).await?;
        if !status.is_success() {
            bail!("{asset} answered {status}");
        }
        asset_bytes += bytes;
    }
    let n = args.requests.max(20);
    let teams = |i: usize| format!("team-{}", (i * 37) % 2000);
    let component = |i: usize| {
        let list = [
            "component/default/account-lib-0",
            "user/default/user-7",
            "api/default/account-api-0",
            "group/default/team-3",
        ];
        list[i % list.len()].to_string()
    };
    let hub_page = setup.hub_path.replace("component/default/", "default/component/");
    let pages: Vec<(&str, Vec<String>)> = vec![
        ("home", vec![format!("{base}/"); n]),
        (
            "explorer (facets, page of 50)",
            (0..n)
                .map(|i| match i % 4 {
                    0 => format!("{base}/catalog"),
                    1 => format!("{base}/catalog?kind=component&owner={}", teams(i)),
                    2 => format!("{base}/catalog?kind=api&sort=-name&page=3"),
                    _ => format!("{base}/catalog?lifecycle=production&tag=java&q=svc"),
                })
                .collect(),
        ),
        (
            "entity page",
            (0..n)
                .map(|i| {
                    let path = component(i);
                    let (kind, rest) = path.split_once('/').unwrap_or(("component", "default/x"));
                    let (namespace, name) = rest.split_once('/').unwrap_or(("default", "x"));
                    format!("{base}/catalog/{namespace}/{kind}/{name}")
                })
                .collect(),
        ),
        ("entity page of the hub (23k dependents)", vec![format!("{base}/catalog/{hub_page}"); n]),
        (
            "graph page",
            (0..n)
                .map(|i| {
                    format!(
                        "{base}/catalog/default/component/{}/graph?depth={}",
                        ["email-svc-1802", "account-lib-0"][i % 2],
                        1 + i % 3
                    )
                })
                .collect(),
        ),
        ("graph page of the hub", vec![format!("{base}/catalog/{hub_page}/graph?depth=2"); n]),
        (
            "search",
            (0..n)
                .map(|i| format!("{base}/search?q={}", ["payment", "checkout+service", "fraud", "stream"][i % 4]))
                .collect(),
        ),
        ("not found (with suggestions)", vec![format!("{base}/catalog/default/component/paymnt-svc-1"); n]),
    ];
    let mut md = String::new();
    md.push_str(&format!(
        "### Portal, {} entities, {}\n\nCommand: `plinth bench portal --entities {} --requests {n}`. Time is to the last byte over loopback (server time plus ~0.1 ms of transport); bytes are gzip bodies. First load adds the page's assets ({} files, {:.1} kB); later loads use the cached, immutable assets.\n\n",
        setup.expected,
        setup.backend,
        args.entities,
        assets.len(),
        asset_bytes as f64 / 1024.0
    ));
    md.push_str(
        "| page | p50 | p95 | max | bytes (page) | first load | bar | verdict |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (name, urls) in &pages {
        // Warm up.
        for url in urls.iter().take(5) {
            fetch_page(client, url).await?;
        }
        let mut times = Vec::with_capacity(urls.len());
        let mut bytes = Vec::with_capacity(urls.len());
        for url in urls {
            let (ms, size, status) = fetch_page(client, url).await?;
            let expected_status = if name.starts_with("not found") { 404 } else { 200 };
            if status.as_u16() != expected_status {
                bail!("{url} answered {status}, expected {expected_status}");
            }
            times.push(ms);
            bytes.push(size);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        let page_kb = bytes.iter().max().copied().unwrap_or(0) as f64 / 1024.0;
        let first_kb = page_kb + asset_bytes as f64 / 1024.0;
        let ok = at(0.95) <= 50.0 && first_kb <= 200.0;
        md.push_str(&format!(
            "| {name} | {:.2} ms | {:.2} ms | {:.1} ms | {page_kb:.1} kB | {first_kb:.1} kB | p95 ≤ 50 ms, < 200 kB | {} |\n",
            at(0.5),
            at(0.95),
            times.last().copied().unwrap_or(0.0),
            if ok { "meets" } else { "MISSES" }
        ));
    }
    let rss = peak_rss_mib(setup.server.child.id());
    md.push_str(&format!("\nIngest before measuring: {:.2} s; server peak RSS {rss:.0} MiB.\n", setup.ingest_s));
    println!("{md}");
    if let Some(path) = &args.report {
        std::fs::write(path, &md)?;
    }
    if let (Some(admin), Some(name)) = (&args.postgres, &setup.database_name) {
        drop_database(admin, name).await;
    }
    Ok(ExitCode::SUCCESS)
}
