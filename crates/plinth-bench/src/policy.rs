//! `plinth bench policy`: the policy bars of DESIGN.md §6.
//!
//! 1. In-process: the full shipped library deciding realistic inputs
//!    (golden-path parameters, a GPU training job, a KServe service, an
//!    admission review) with catalogue context resolved from the demo
//!    catalogue, through the same `PolicyService::evaluate` the API uses.
//! 2. Over loopback: a real `plinth serve --demo` answering the admission
//!    webhook to N concurrent clients; latency percentiles and throughput.

use crate::common::{peak_rss_mib, percentile, start};
use anyhow::{bail, Context, Result};
use plinth_app::catalog::NewLocation;
use plinth_app::policy::{PolicyConfig, RequestContext};
use plinth_app::{Caller, Platform, PlatformConfig};
use plinth_policy::Point;
use plinth_store::Store;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchPolicyArgs {
    /// Decisions per input in the in-process measurement.
    #[arg(long, default_value_t = 5000)]
    decisions: usize,
    /// Admission requests over loopback.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent admission clients.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Write the markdown report here too.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn examples_dir() -> PathBuf {
    plinth_app::shipped::examples_dir()
}

fn read_document(path: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    plinth_model::yaml::parse_document(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), e.line.unwrap_or(0), e.message))
}

pub fn run(args: BenchPolicyArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: BenchPolicyArgs) -> Result<ExitCode> {
    let mut report = String::new();
    let machine =
        format!("{} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), std::env::consts::ARCH);
    report.push_str(&format!("## Policy (`plinth bench policy`, {machine})\n\n"));

    // 1. In-process decisions with catalogue context.
    let data = tempfile::tempdir()?;
    let store = Store::open_sqlite(data.path()).await?;
    let policies = vec![plinth_app::shipped::policies_dir().to_string_lossy().to_string()];
    let config = PlatformConfig {
        policy: Some(PolicyConfig::new(policies, data.path().to_path_buf())),
        ..PlatformConfig::catalog_only(data.path())
    };
    let platform = Platform::start(store, config).await?;
    let caller = Caller::system("bench");
    let demo = examples_dir().join("demo/catalog-info.yaml");
    let location = NewLocation { kind: String::new(), target: demo.to_string_lossy().to_string(), branch: None };
    platform.catalog().ensure_location(&caller, location).await?;
    let service = platform.policy().service()?;
    let compiled = service.compiled();
    if !compiled.engine.problems().is_empty() {
        bail!("the shipped policies do not load: {:?}", compiled.engine.problems());
    }
    let rules: usize = compiled.engine.summaries().iter().map(|p| p.rules.len()).sum();
    report.push_str(&format!(
        "Shipped library: {} policy packages, {rules} rules, {} scorecards; demo catalogue of {} entities for context.\n\n",
        compiled.engine.summaries().len(),
        compiled.scorecards.len(),
        platform.catalog().view(&caller).map(|s| s.len()).unwrap_or_default()
    ));
    let inputs_dir = examples_dir().join("policy-inputs");
    let production = RequestContext { environment: Some("production".into()), ..Default::default() };
    let cases: Vec<(&str, Point, Value)> = vec![
        (
            "golden-path parameters (GPU training env)",
            Point::Provision,
            read_document(&inputs_dir.join("provision-params.json"))?,
        ),
        ("PyTorchJob, 24 GPUs", Point::Provision, read_document(&inputs_dir.join("training-job.yaml"))?),
        ("KServe InferenceService", Point::Deploy, read_document(&inputs_dir.join("inference-service.yaml"))?),
        ("Deployment with 16 violations", Point::Deploy, read_document(&inputs_dir.join("deployment-bad.yaml"))?),
        ("AdmissionReview (Deployment)", Point::Admission, {
            let review = read_document(&inputs_dir.join("admission-review.json"))?;
            serde_json::json!({"review": review["request"], "parameters": {}})
        }),
    ];
    report.push_str("In-process decisions (context resolution + every applicable package; bar: p99 ≤ 1 ms):\n\n");
    report.push_str("| input | point | result | violations | packages | context entities | p50 ms | p99 ms | max ms | engine only p50 / p99 ms |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let mut worst_p99: f64 = 0.0;
    for (name, point, input) in &cases {
        for _ in 0..200 {
            service.evaluate(*point, input.clone(), &production);
        }
        let mut samples = Vec::with_capacity(args.decisions);
        let mut last = None;
        for _ in 0..args.decisions {
            let input = input.clone();
            let started = Instant::now();
            let (decision, _, _) = service.evaluate(*point, input, &production);
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            last = Some(decision);
        }
        samples.sort_by(f64::total_cmp);
        let decision = last.context("no decisions")?;
        // The engine alone, on the input with its context already attached.
        let (_, full_input, refs) = service.evaluate(*point, input.clone(), &production);
        let mut engine_only = Vec::with_capacity(args.decisions);
        for _ in 0..args.decisions {
            let request =
                plinth_policy::EvalRequest { entities: &refs, ..plinth_policy::EvalRequest::new(*point, &full_input) };
            let started = Instant::now();
            compiled.engine.evaluate(&request);
            engine_only.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        engine_only.sort_by(f64::total_cmp);
        let p99 = percentile(&samples, 0.99);
        worst_p99 = worst_p99.max(p99);
        report.push_str(&format!(
            "| {name} | {point} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} |\n",
            decision.result.as_str(),
            decision.violations.len(),
            decision.policies,
            full_input["plinth"]["entities"].as_object().map_or(0, |m| m.len()),
            percentile(&samples, 0.5),
            p99,
            samples.last().copied().unwrap_or(0.0),
            percentile(&engine_only, 0.5),
            percentile(&engine_only, 0.99),
        ));
    }
    report.push_str(&format!("\nWorst in-process p99: **{worst_p99:.3} ms** (bar 1 ms).\n\n"));
    drop(compiled);

    // 2. The admission webhook over loopback.
    let server_dir = tempfile::tempdir()?;
    let log = server_dir.path().join("serve.log");
    let mut server = start(&server_dir.path().join("data"), None, Some(&demo), &log, &[])?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let ready = Instant::now();
    loop {
        let ok = client
            .get(format!("{}/api/policy/scorecards", server.base))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success());
        if let Some(response) = ok {
            let body: Value = response.json().await.unwrap_or_default();
            if body["complete"] == true && body["outcomes"].as_object().is_some_and(|o| !o.is_empty()) {
                break;
            }
        }
        if ready.elapsed() > Duration::from_secs(120) {
            bail!("server did not become ready; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let good = std::fs::read(inputs_dir.join("admission-review.json"))?;
    let bad = {
        let mut review = read_document(&inputs_dir.join("admission-review.json"))?;
        review["request"]["object"] = read_document(&inputs_dir.join("deployment-bad.yaml"))?;
        serde_json::to_vec(&review)?
    };
    let url = format!("{}/api/policy/admission?environment=production", server.base);
    let bodies = Arc::new([good, bad]);
    let per_client = args.requests.div_ceil(args.concurrency);
    // Warm-up: open every connection.
    let mut warm = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, body) = (client.clone(), url.clone(), bodies[0].clone());
        warm.push(tokio::spawn(async move {
            client.post(&url).header("content-type", "application/json").body(body).send().await
        }));
    }
    for task in warm {
        task.await??;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            let mut denied = 0usize;
            for i in 0..per_client {
                let body = bodies[(worker + i) % 2].clone();
                let sent = Instant::now();
                let response = client.post(&url).header("content-type", "application/json").body(body).send().await?;
                let review: Value = response.json().await?;
                samples.push(sent.elapsed().as_secs_f64() * 1000.0);
                if review["response"]["allowed"] == false {
                    denied += 1;
                }
            }
            anyhow::Ok((samples, denied))
        }));
    }
    let mut samples = Vec::new();
    let mut denied = 0;
    for task in tasks {
        let (s, d) = task.await??;
        samples.extend(s);
        denied += d;
    }
    let elapsed = started.elapsed().as_secs_f64();
    samples.sort_by(f64::total_cmp);
    let rss = peak_rss_mib(server.child.id());
    report.push_str(&format!(
        "Admission webhook over loopback (`POST /api/policy/admission`, AdmissionReview v1, half compliant / half denied, every decision logged; bar: p99 ≤ 10 ms at {} clients):\n\n",
        args.concurrency
    ));
    report.push_str("| clients | requests | denied | throughput req/s | p50 ms | p95 ms | p99 ms | max ms | server peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n");
    report.push_str(&format!(
        "| {} | {} | {denied} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {rss:.0} |\n",
        args.concurrency,
        samples.len(),
        samples.len() as f64 / elapsed,
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0)
    ));
    let _ = server.child.kill();
    println!("{report}");
    if let Some(path) = args.report {
        std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
