//! `plinth bench scaffold`: the golden-path bar of DESIGN.md §6 — request →
//! policy → commit → registered for the service template, and dry runs —
//! against a real `plinth serve` child over loopback (shipped templates and
//! policies, the demo catalogue, optionally a large generated catalogue too).

use crate::common::{peak_rss_mib, percentile, rss_mib, start};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchScaffoldArgs {
    /// Golden-path runs of the service template (each a new repository).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Dry runs of the service template.
    #[arg(long, default_value_t = 50)]
    dry_runs: usize,
    /// Also register this catalogue (a file, a directory, or the output of
    /// shared/bench/gen_catalog.py) before measuring, to measure at scale.
    #[arg(long)]
    extra_catalog: Option<PathBuf>,
    /// Use PostgreSQL (a database URL) instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
    /// Write the markdown report here too.
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: BenchScaffoldArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> Result<f64> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return Ok(started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not happen within {}s", timeout.as_secs())
}

async fn status_of(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

fn service_values(name: &str) -> Value {
    json!({
        "name": name, "description": "Benchmark service", "owner": "group:default/team-orders",
        "system": "system:default/orders", "lifecycle": "experimental", "language": "rust",
        "port": 8080, "costCentre": "cc-4120", "minReplicas": 2, "maxReplicas": 6, "repoUrl": name,
    })
}

async fn bench(args: BenchScaffoldArgs) -> Result<ExitCode> {
    let work = tempfile::tempdir()?;
    let demo = plinth_app::shipped::demo_dir().join("catalog-info.yaml");
    let log = work.path().join("server.log");
    let server = start(&work.path().join("data"), args.database_url.as_deref(), Some(&demo), &log, &[])?;
    let base = server.base.clone();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build()?;
    let ready = format!("{base}/api/catalog/entities/by-name/group/default/team-orders");
    let template = format!("{base}/api/catalog/entities/by-name/template/default/service");
    wait_until("the demo catalogue and shipped templates loading", Duration::from_secs(120), async || {
        status_of(&client, &ready).await == 200 && status_of(&client, &template).await == 200
    })
    .await
    .with_context(|| format!("see the server log at {}", log.display()))?;
    let mut entities = 0u64;
    if let Some(extra) = &args.extra_catalog {
        // A generated catalogue (gen_catalog.py) has its root in all.yaml.
        let root = extra.join("all.yaml");
        let extra = if root.is_file() { &root } else { extra };
        eprintln!("registering {} …", extra.display());
        let response = client
            .post(format!("{base}/api/catalog/locations"))
            .json(&json!({"type": "file", "target": extra.canonicalize()?.to_string_lossy()}))
            .timeout(Duration::from_secs(1800))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("registering {}: {}", extra.display(), response.text().await?);
        }
    }
    // Measure a settled server: the projection has caught up (the count has
    // stopped moving) before the first run.
    let mut stable = 0;
    while stable < 3 {
        let facets: Value =
            client.get(format!("{base}/api/catalog/entity-facets?facet=kind")).send().await?.json().await?;
        let count: u64 = facets["facets"]["kind"]
            .as_array()
            .map(|k| k.iter().filter_map(|k| k["count"].as_u64()).sum())
            .unwrap_or(0);
        stable = if count == entities { stable + 1 } else { 0 };
        entities = count;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // …and the background policy evaluation of the whole catalogue is done.
    let governance = format!("{base}/api/policy/scorecards?owner=group:default/nobody");
    wait_until("the governance view covering the catalogue", Duration::from_secs(900), async || {
        let view: Value = match client.get(&governance).send().await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => return false,
        };
        let covered: u64 =
            view["outcomes"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
        covered >= entities
    })
    .await?;

    let (settled_peak, settled_rss) = (peak_rss_mib(server.child.id()), rss_mib(server.child.id()));
    // Warm-up run (first git invocation, first policy evaluation of the template).
    let mut end_to_end = Vec::new();
    let mut steps: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for index in 0..=args.runs {
        let name = format!("bench-svc-{index}");
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/scaffolder/v2/tasks"))
            .json(&json!({"templateRef": "template:default/service", "values": service_values(&name)}))
            .send()
            .await?;
        if response.status().as_u16() != 201 {
            bail!("POST /tasks answered {}: {}", response.status(), response.text().await?);
        }
        let id = response.json::<Value>().await?["id"].as_str().unwrap_or_default().to_string();
        let entity = format!("{base}/api/catalog/entities/by-name/component/default/{name}");
        loop {
            if status_of(&client, &entity).await == 200 {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let task: Value =
                    client.get(format!("{base}/api/scaffolder/v2/tasks/{id}")).send().await?.json().await?;
                bail!("run {id} did not register {name} within 60 s: {}", task["error"]);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let task: Value = loop {
            let task: Value = client.get(format!("{base}/api/scaffolder/v2/tasks/{id}")).send().await?.json().await?;
            if task["status"] == "completed" || task["status"] == "failed" {
                break task;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if task["status"] != "completed" {
            bail!("run {id} failed: {}", task["error"]);
        }
        if index == 0 {
            continue;
        }
        end_to_end.push(elapsed);
        for step in task["output"]["steps"].as_array().into_iter().flatten() {
            if let (Some(id), Some(ms)) = (step["id"].as_str(), step["durationMs"].as_f64()) {
                if step["status"] == "completed" {
                    steps.entry(id.to_string()).or_default().push(ms);
                }
            }
        }
    }
    end_to_end.sort_by(f64::total_cmp);

    let mut dry = Vec::new();
    for index in 0..=args.dry_runs {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/scaffolder/v2/dry-run"))
            .json(
                &json!({"templateRef": "template:default/service", "values": service_values(&format!("dry-{index}"))}),
            )
            .send()
            .await?;
        let body: Value = response.json().await?;
        if body["completed"] != true {
            bail!("dry run failed: {}", body["error"]);
        }
        if index > 0 {
            dry.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    dry.sort_by(f64::total_cmp);
    let (rss, rss_after) = (peak_rss_mib(server.child.id()), rss_mib(server.child.id()));

    let machine =
        format!("{} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), std::env::consts::ARCH);
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let mut report =
        format!("## Golden paths (`plinth bench scaffold`, {machine}, {backend}, {entities} entities)\n\n");
    report.push_str("| measure | p50 | p95 | max | bar |\n|---|---|---|---|---|\n");
    let verdict = |p50: f64, bar: f64| if p50 <= bar { "✓" } else { "✗ missed" };
    let (p50, p95, max) =
        (percentile(&end_to_end, 0.5), percentile(&end_to_end, 0.95), end_to_end.last().copied().unwrap_or(0.0));
    report.push_str(&format!(
        "| service template: request → policy → commit → registered ({} runs) | {p50:.0} ms | {p95:.0} ms | {max:.0} ms | ≤ 2000 ms {} |\n",
        end_to_end.len(),
        verdict(p50, 2000.0)
    ));
    let (d50, d95, dmax) = (percentile(&dry, 0.5), percentile(&dry, 0.95), dry.last().copied().unwrap_or(0.0));
    report.push_str(&format!(
        "| service template: dry run ({} runs) | {d50:.0} ms | {d95:.0} ms | {dmax:.0} ms | ≤ 300 ms {} |\n",
        dry.len(),
        verdict(d50, 300.0)
    ));
    for (step, mut times) in steps {
        times.sort_by(f64::total_cmp);
        report.push_str(&format!(
            "| step `{step}` | {:.1} ms | {:.1} ms | {:.1} ms | |\n",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times.last().copied().unwrap_or(0.0)
        ));
    }
    report.push_str(&format!(
        "\nServer RSS: {settled_rss:.0} MiB once the catalogue had settled (peak so far {settled_peak:.0} MiB), \
         {rss_after:.0} MiB after the runs; peak {rss:.0} MiB.\n"
    ));
    println!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}
