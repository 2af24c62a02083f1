//! `plinth bench scaffold`: the golden-path bar of DESIGN.md §6 — request →
//! policy → commit → registered, and dry runs — for **every shipped
//! template**, against a real `plinth serve` child over loopback (shipped
//! templates and policies, the demo catalogue, optionally a large generated
//! catalogue too), measured as a user meets it: the first run starts as
//! soon as the templates answer, while the server is still projecting the
//! catalogue and evaluating its policies in the background. Every answer is
//! checked (status, run outcome, registered entity).

use crate::common::{peak_rss_mib, percentile, rss_mib, start};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The golden-path bar (request → registered) and the dry-run bar, ms.
const RUN_BAR_MS: f64 = 2000.0;
const DRY_RUN_BAR_MS: f64 = 300.0;
/// Bounds on the counts a user can ask for.
const MAX_ROUNDS: usize = 200;
const MAX_DRY_RUNS: usize = 500;

#[derive(clap::Args)]
pub struct BenchScaffoldArgs {
    /// Rounds of runs: each round runs every template once (each run a new
    /// repository). The first round is the first use after start.
    #[arg(long, default_value_t = 6)]
    rounds: usize,
    /// Dry runs of each template.
    #[arg(long, default_value_t = 10)]
    dry_runs: usize,
    /// Only these templates (comma-separated names); default: every
    /// template the server lists.
    #[arg(long, value_delimiter = ',')]
    templates: Vec<String>,
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
    if args.rounds == 0 || args.rounds > MAX_ROUNDS {
        bail!("--rounds must be between 1 and {MAX_ROUNDS}, not {}", args.rounds);
    }
    if args.dry_runs > MAX_DRY_RUNS {
        bail!("--dry-runs must be at most {MAX_DRY_RUNS}, not {}", args.dry_runs);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> Result<f64> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return Ok(started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{what} did not happen within {}s", timeout.as_secs())
}

async fn status_of(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Values a platform user would give each shipped template (the same
/// choices as the scaffolder's integration tests), made unique per run:
/// `name` and `repoUrl` get the run's suffix.
fn values(template: &str, suffix: &str) -> Option<Value> {
    let mut values = match template {
        "service" => {
            json!({"name": "loyalty-points", "description": "Tracks loyalty points earned on orders.", "owner": "group:default/team-orders", "system": "system:default/orders", "lifecycle": "experimental", "language": "rust", "port": 8080, "costCentre": "cc-4120", "minReplicas": 2, "maxReplicas": 6})
        }
        "postgresql-database" => {
            json!({"name": "loyalty-db", "description": "Loyalty points ledger.", "owner": "group:default/team-orders", "system": "system:default/orders", "dependencyOf": ["component:default/order-service"], "namespace": "team-orders", "postgresVersion": "16", "instances": 3, "storageSize": "50Gi", "backupRetentionDays": 30, "region": "eu-west-1", "costCentre": "cc-4120"})
        }
        "kubernetes-namespace" => {
            json!({"name": "loyalty-staging", "description": "Staging namespace for the loyalty services.", "owner": "group:default/team-orders", "system": "system:default/orders", "environment": "staging", "cluster": "eu-west-1-nonprod", "cpu": 8, "memory": 32, "maxPods": 50, "teamRole": "edit", "costCentre": "cc-4120"})
        }
        "ci-pipeline" => {
            json!({"component": "component:default/order-service", "owner": "group:default/team-orders", "language": "python", "workingDirectory": ".", "manifestsPath": "deploy catalog-info.yaml", "imageName": "ghcr.io/northwind-labs/order-service"})
        }
        "gpu-training-environment" => {
            json!({"name": "ranker-experiments", "owner": "group:default/team-search", "system": "system:default/search", "gpuType": "NVIDIA-A100-SXM4-80GB", "gpuCount": 4, "nodes": 1, "region": "eu-west-1", "datasets": ["dataset:default/search-clickstream", "dataset:default/search-relevance-judgments"], "dataClassification": "confidential", "purpose": "Train the learning-to-rank reranker on pseudonymised clickstream and relevance judgments", "maxRuntimeHours": 48, "budgetUsd": 6000, "costCentre": "cc-4120", "image": "nvcr.io/nvidia/pytorch:24.07-py3", "dataVolumeSize": "500Gi", "mlflowExperiment": ""})
        }
        "vector-database" => {
            json!({"name": "support-kb-vectors", "description": "Help-centre and ticket embeddings for the support copilot.", "owner": "group:default/team-support-tools", "system": "system:default/customer-support", "embeddingModel": "model:default/bge-m3-embedding", "vectorSize": 1024, "distance": "Cosine", "datasets": ["dataset:default/help-center-articles", "dataset:default/support-tickets-2023"], "dataClassification": "confidential", "region": "eu-west-1", "namespace": "team-support-tools", "replicas": 3, "storageSize": "50Gi", "costCentre": "cc-4120"})
        }
        "model-serving-endpoint" => {
            json!({"name": "support-llm", "owner": "group:default/team-applied-ai", "system": "system:default/ai-assistants", "model": "model:default/llama-3-1-8b-support", "lifecycle": "production", "variant": "kserve", "namespace": "team-applied-ai", "region": "eu-west-1", "dataClassification": "confidential", "minReplicas": 1, "maxReplicas": 4, "gpuType": "NVIDIA-L4", "gpuCount": 1, "storageUri": "", "costCentre": "cc-4120", "auditLog": "enabled", "auditLogRetentionDays": 180})
        }
        "ai-agent" => {
            json!({"name": "order-status-agent", "description": "Answers customer questions about order and shipment status.", "owner": "group:default/team-support-tools", "system": "system:default/customer-support", "lifecycle": "experimental", "model": "model:default/anthropic-claude-haiku", "systemPrompt": "You help support agents answer questions about where an order is. Use the orders and shipping tools, quote order numbers exactly and never promise delivery dates the shipping API does not give.", "tools": ["api:default/orders-api", "api:default/shipping-api", "api:default/support-tickets-api"], "temperature": 0.2, "autonomy": "supervised", "humanApproval": true, "riskTier": "limited", "dataClassification": "confidential", "tokenBudgetPerRun": 50000, "maxSteps": 15})
        }
        _ => return None,
    };
    let base = values["name"].as_str().unwrap_or(template).to_string();
    if values.get("name").is_some() {
        values["name"] = json!(format!("{base}-{suffix}"));
    }
    values["repoUrl"] = json!(format!("{base}-{suffix}"));
    Some(values)
}

/// One finished run: its outcome, time to registered, and step timings.
struct Timed {
    ms: f64,
    steps: Vec<(String, f64)>,
}

/// Runs `template` once: POST the task, wait for it to end, check it
/// completed, then wait until every entity it registered answers by name.
async fn run_once(client: &reqwest::Client, base: &str, template: &str, values: Value) -> Result<Timed> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/scaffolder/v2/tasks"))
        .json(&json!({"templateRef": format!("template:default/{template}"), "values": values}))
        .send()
        .await?;
    if response.status().as_u16() != 201 {
        bail!("{template}: POST /tasks answered {}: {}", response.status(), response.text().await?);
    }
    let id = response.json::<Value>().await?["id"].as_str().unwrap_or_default().to_string();
    let task_url = format!("{base}/api/scaffolder/v2/tasks/{id}");
    let task: Value = loop {
        let response = client.get(&task_url).send().await?;
        if !response.status().is_success() {
            bail!("{template}: GET {task_url} answered {}", response.status());
        }
        let task: Value = response.json().await?;
        if task["status"] == "completed" || task["status"] == "failed" {
            break task;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{template}: run {id} did not end within 60 s (status {})", task["status"]);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    if task["status"] != "completed" {
        bail!("{template}: run {id} failed: {}", task["error"]);
    }
    // What the run registered: the output links' entity refs.
    let registered: Vec<String> = task["output"]["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link["entityRef"].as_str())
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    for entity in &registered {
        let Some((kind, rest)) = entity.split_once(':') else { bail!("{template}: bad entity ref {entity}") };
        let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
        let url = format!("{base}/api/catalog/entities/by-name/{kind}/{namespace}/{name}");
        while status_of(client, &url).await != 200 {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{template}: run {id} completed but {entity} is not in the catalogue after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let steps = task["output"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|step| step["status"] == "completed")
        .filter_map(|step| {
            Some((step["action"].as_str().or(step["id"].as_str())?.to_string(), step["durationMs"].as_f64()?))
        })
        .collect();
    Ok(Timed { ms, steps })
}

async fn dry_run_once(client: &reqwest::Client, base: &str, template: &str, values: Value) -> Result<f64> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/scaffolder/v2/dry-run"))
        .json(&json!({"templateRef": format!("template:default/{template}"), "values": values}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() || body["completed"] != true {
        bail!("{template}: dry run answered {status}: {}", body["error"]);
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// The governance view's state: (covered, entities, complete). Tells the
/// report whether the runs met a server still evaluating its catalogue.
async fn governance_coverage(client: &reqwest::Client, base: &str) -> (u64, u64, bool) {
    let facets: Value = match client.get(format!("{base}/api/catalog/entity-facets?facet=kind")).send().await {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => Value::Null,
    };
    let entities: u64 =
        facets["facets"]["kind"].as_array().map(|k| k.iter().filter_map(|k| k["count"].as_u64()).sum()).unwrap_or(0);
    let view: Value = match client.get(format!("{base}/api/policy/scorecards?owner=group:default/nobody")).send().await
    {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => Value::Null,
    };
    let covered = view["outcomes"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
    (covered, entities, view["complete"] == true)
}

fn stats(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(samples, 0.5), percentile(samples, 0.95), samples.last().copied().unwrap_or(0.0))
}

async fn bench(args: BenchScaffoldArgs) -> Result<ExitCode> {
    let work = tempfile::tempdir()?;
    let demo = plinth_app::shipped::demo_dir().join("catalog-info.yaml");
    let log = work.path().join("server.log");
    let spawned = Instant::now();
    let server = start(&work.path().join("data"), args.database_url.as_deref(), Some(&demo), &log, &[])?;
    let base = server.base.clone();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build()?;

    // Ready for a user: the templates are listed and the demo's teams exist.
    let mut templates: Vec<String> = Vec::new();
    let team = format!("{base}/api/catalog/entities/by-name/group/default/team-orders");
    wait_until("the shipped templates and the demo catalogue loading", Duration::from_secs(120), async || {
        let Ok(response) = client.get(format!("{base}/api/scaffolder/v2/templates")).send().await else {
            return false;
        };
        let listed: Value = response.json().await.unwrap_or_default();
        templates = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["valid"] == true)
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        templates.len() >= 8 && status_of(&client, &team).await == 200
    })
    .await
    .with_context(|| format!("see the server log at {}", log.display()))?;
    let ready_s = spawned.elapsed().as_secs_f64();
    if !args.templates.is_empty() {
        for wanted in &args.templates {
            if !templates.contains(wanted) {
                bail!("no template named `{wanted}`; the server lists: {}", templates.join(", "));
            }
        }
        templates.retain(|t| args.templates.contains(t));
    }
    let unknown: Vec<&String> = templates.iter().filter(|t| values(t, "x").is_none()).collect();
    if !unknown.is_empty() {
        bail!("the bench has no values for the templates {unknown:?}: add them to crates/plinth-bench/src/scaffold.rs");
    }
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
    let first_run_at = spawned.elapsed().as_secs_f64();
    let (covered_at_start, entities_at_start, complete_at_start) = governance_coverage(&client, &base).await;

    // No warm-up and no settling: round 1 is the first use.
    let mut runs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut first: BTreeMap<String, f64> = BTreeMap::new();
    let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 0..args.rounds {
        for template in &templates {
            let suffix = format!("b{round}");
            let values = values(template, &suffix).unwrap_or_default();
            let timed = run_once(&client, &base, template, values).await?;
            if round == 0 {
                first.insert(template.clone(), timed.ms);
            }
            runs.entry(template.clone()).or_default().push(timed.ms);
            for (step, ms) in timed.steps {
                steps.entry(step).or_default().push(ms);
            }
        }
    }
    let runs_done_at = spawned.elapsed().as_secs_f64();
    let (covered_after_runs, entities_after_runs, complete_after_runs) = governance_coverage(&client, &base).await;
    let mut dry: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for index in 0..args.dry_runs {
        for template in &templates {
            let values = values(template, &format!("dry{index}")).unwrap_or_default();
            dry.entry(template.clone()).or_default().push(dry_run_once(&client, &base, template, values).await?);
        }
    }
    let (rss, rss_after) = (peak_rss_mib(server.child.id()), rss_mib(server.child.id()));

    let machine = crate::common::machine();
    let backend = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let mut report = format!(
        "## Golden paths (`plinth bench scaffold`, {machine}, {backend}, {entities_after_runs} entities)\n\n\
         Start → templates answer: {ready_s:.2} s. First run at {first_run_at:.2} s after start, when the \
         governance view had published {covered_at_start} of {entities_at_start} entities' results ({}); after \
         the runs ({runs_done_at:.1} s): {covered_after_runs} of {entities_after_runs} ({}). Each run is timed from \
         `POST /api/scaffolder/v2/tasks` until every entity it registered answers by name (a run that \
         registers nothing, such as `ci-pipeline`, until it has completed). Bars: run p95 ≤ {RUN_BAR_MS:.0} ms, \
         dry run p95 ≤ {DRY_RUN_BAR_MS:.0} ms.\n\n",
        if complete_at_start { "first evaluation complete" } else { "first evaluation still running" },
        if complete_after_runs { "complete" } else { "still running" },
    );
    report.push_str(
        "| template | first run ms | runs | run p50 / p95 / max ms | dry runs | dry run p50 / p95 / max ms | verdict |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut all_met = true;
    for template in &templates {
        let mut samples = runs.remove(template).unwrap_or_default();
        let count = samples.len();
        let (p50, p95, max) = stats(&mut samples);
        let mut dry_samples = dry.remove(template).unwrap_or_default();
        let dry_count = dry_samples.len();
        let (d50, d95, dmax) = stats(&mut dry_samples);
        let met = p95 <= RUN_BAR_MS && (dry_count == 0 || d95 <= DRY_RUN_BAR_MS);
        all_met &= met;
        report.push_str(&format!(
            "| `{template}` | {:.0} | {count} | {p50:.0} / {p95:.0} / {max:.0} | {dry_count} | {d50:.0} / {d95:.0} / {dmax:.0} | {} |\n",
            first.get(template).copied().unwrap_or(0.0),
            if met { "meets" } else { "MISSES" }
        ));
    }
    report.push_str("\n| step (all templates) | count | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|\n");
    for (step, mut times) in steps {
        let count = times.len();
        let (p50, p95, max) = stats(&mut times);
        report.push_str(&format!("| `{step}` | {count} | {p50:.1} | {p95:.1} | {max:.1} |\n"));
    }
    report.push_str(&format!("\nServer RSS: {rss_after:.0} MiB after the runs; peak {rss:.0} MiB.\n"));
    println!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report)?;
    }
    Ok(if all_met { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
