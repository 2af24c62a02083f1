//! `plinth bench auth`: what identity and access control cost a request.
//!
//! 1. In-process, on the demo catalogue with `--auth required`: resolving a
//!    bearer token, an access decision the cache answers, a decision the
//!    rules must evaluate (a resource not asked about before), and the two
//!    together as every request pays them (bars: decision p99 ≤ 0.2 ms;
//!    authentication plus permission p99 ≤ 0.1 ms added to a request).
//! 2. Over loopback: the same `GET` by-name requests to `plinth serve`
//!    in local mode and with `--auth required` and a token; the difference
//!    of the percentiles is what a user pays.

use crate::common::{free_port, percentile};
use anyhow::{bail, Context, Result};
use plinth_app::access::{Permission, Resource};
use plinth_app::catalog::NewLocation;
use plinth_app::identity::{issue_token, TokenRequest, TokenSubject};
use plinth_app::{AuthConfig, AuthMode, Caller, Platform, PlatformConfig};
use plinth_store::Store;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchAuthArgs {
    /// Samples per in-process measurement.
    #[arg(long, default_value_t = 20_000)]
    samples: usize,
    /// Sequential requests per server over loopback.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Write the markdown report here too.
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: BenchAuthArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99), samples.last().copied().unwrap_or_default())
}

async fn bench(args: BenchAuthArgs) -> Result<ExitCode> {
    let machine = crate::common::machine();
    let mut report = format!("## Identity and access (`plinth bench auth`, {machine})\n\n");
    let demo = plinth_app::shipped::demo_dir().join("catalog-info.yaml");

    // 1. In-process.
    let data = tempfile::tempdir()?;
    let store = Store::open_sqlite(data.path()).await?;
    let config = PlatformConfig {
        auth: AuthConfig { mode: AuthMode::Required, ..AuthConfig::default() },
        ..PlatformConfig::catalog_only(data.path())
    };
    let platform = Platform::start(store.clone(), config).await?;
    let system = Caller::system("bench");
    let location = NewLocation { kind: String::new(), target: demo.to_string_lossy().to_string(), branch: None };
    platform.catalog().ensure_location(&system, location).await?;
    let (user, keys) = {
        let state = platform.catalog().view(&system)?;
        let user = state
            .entities()
            .find(|r| r.summary.kind.eq_ignore_ascii_case("user"))
            .map(|r| r.entity_ref.to_string())
            .context("the demo has no User")?;
        let keys: Vec<String> = state.entities().map(|r| r.key.to_string()).collect();
        (user, keys)
    };
    let request = TokenRequest {
        name: "bench".into(),
        subject: TokenSubject::User(user.clone()),
        scopes: vec!["read".into(), "write".into()],
        lifetime: None,
    };
    let secret = issue_token(&store, request, "bench").await?.secret;
    let unverified = Caller::anonymous();
    let caller = platform.authenticate(&secret, unverified.clone()).await?;
    let resources: Vec<Resource> = {
        let state = platform.catalog().view(&system)?;
        keys.iter().map(|k| Resource::entity(&state, k)).collect()
    };
    report.push_str(&format!(
        "In-process, demo catalogue ({} entities), token of `{user}`, rules: {} ({}):\n\n",
        keys.len(),
        platform.access().rules_origin(),
        if plinth_policy::AccessPolicy::builtin()?.on_vm() { "regorus VM" } else { "interpreter" }
    ));
    report.push_str("| what | p50 ms | p99 ms | max ms | bar |\n|---|---|---|---|---|\n");

    // Uncached decisions: every entity once (each a resource the cache has
    // not seen), the rules evaluated each time.
    let mut uncached = Vec::with_capacity(resources.len());
    for resource in &resources {
        let started = Instant::now();
        let _ = platform.access().decide(&caller, Permission::CatalogEntityDelete, resource);
        uncached.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut authenticate = Vec::with_capacity(args.samples);
    let mut cached = Vec::with_capacity(args.samples);
    let mut both = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let resource = &resources[i % resources.len()];
        let started = Instant::now();
        let who = platform.authenticate(&secret, unverified.clone()).await?;
        let middle = Instant::now();
        let _ = platform.access().decide(&who, Permission::CatalogEntityDelete, resource);
        let done = Instant::now();
        authenticate.push((middle - started).as_secs_f64() * 1000.0);
        cached.push((done - middle).as_secs_f64() * 1000.0);
        both.push((done - started).as_secs_f64() * 1000.0);
    }
    let rows = [
        ("permission decision, rules evaluated (first ask per resource)", stats(uncached), "p99 ≤ 0.2 ms"),
        ("permission decision, cached", stats(cached), "p99 ≤ 0.2 ms"),
        ("bearer token → caller", stats(authenticate), ""),
        ("authentication + permission, per request", stats(both), "p99 ≤ 0.1 ms"),
    ];
    for (what, (p50, p99, max), bar) in rows {
        report.push_str(&format!("| {what} | {p50:.4} | {p99:.4} | {max:.3} | {bar} |\n"));
    }

    // 2. Over loopback: local mode vs --auth required with a token.
    report.push_str(&format!(
        "\nOver loopback, {} sequential `GET /api/catalog/entities/by-name/…` per server (release build, demo catalogue):\n\n",
        args.requests
    ));
    report.push_str("| server | p50 ms | p99 ms |\n|---|---|---|\n");
    let mut p99s = Vec::new();
    for required in [false, true] {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let port = free_port()?;
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--refresh-interval", "3600"]);
        command.arg("--data-dir").arg(&data).arg("--location").arg(&demo);
        if required {
            command.args(["--auth", "required"]);
        }
        command.stdout(Stdio::null()).stderr(std::fs::File::create(dir.path().join("serve.log"))?);
        let mut child = command.spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        while client.get(format!("{base}/readyz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                bail!("the server did not start; see {}", dir.path().join("serve.log").display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let token = if required {
            let store = Store::open_sqlite(&data).await?;
            let request = TokenRequest {
                name: "bench".into(),
                subject: TokenSubject::User(user.clone()),
                scopes: vec!["read".into()],
                lifetime: None,
            };
            Some(issue_token(&store, request, "bench").await?.secret)
        } else {
            None
        };
        let url = format!("{base}/api/catalog/entities/by-name/component/default/checkout-service");
        let get = || {
            let request = client.get(&url);
            match &token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        // Until the entity is in (and, with auth, the token is known).
        while !get().send().await.map(|r| r.status().is_success()).unwrap_or(false) {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                bail!("{url} never answered 200");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut samples = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let t = Instant::now();
            let response = get().send().await?;
            let _ = response.bytes().await?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let _ = child.kill();
        let _ = child.wait();
        let (p50, p99, _) = stats(samples);
        p99s.push(p99);
        let name = if required { "`--auth required`, bearer token" } else { "local mode, no token" };
        report.push_str(&format!("| {name} | {p50:.3} | {p99:.3} |\n"));
    }
    report.push_str(&format!(
        "\nAdded by identity and access over loopback: p99 {:+.3} ms (bar: ≤ 0.1 ms; noise between two runs of the same server is of the same order).\n",
        p99s[1] - p99s[0]
    ));
    println!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}
