//! `plinth policy test` and `plinth policy eval`: offline, no server.

use crate::output::{outln, Format, OutputArgs};
use anyhow::{bail, Context};
use clap::Args;
use plinth_policy::testing::{run_tests, TestOutcome};
use plinth_policy::{EngineOptions, PolicyBundle, PolicyEngine};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub(crate) struct TestArgs {
    /// Policy directories or files (default: the policy library shipped
    /// with Plinth, or PLINTH_POLICY_DIR).
    pub paths: Vec<PathBuf>,
    /// Only run tests whose full name (`data.pkg.test_x`) matches this regex.
    #[arg(long)]
    pub run: Option<String>,
    /// Print every test, not only failures and the summary.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Same as `--output` (text or json), kept for scripts written before it.
    #[arg(long, value_enum, hide = true)]
    pub format: Option<Format>,
    /// Time limit per test, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

pub(crate) fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() { vec![plinth_app::shipped::policies_dir()] } else { args.paths.clone() };
    let filter =
        args.run.as_deref().map(regex::Regex::new).transpose().context("--run is not a valid regular expression")?;
    let bundle = PolicyBundle::load(&paths);
    let options = EngineOptions { time_limit: Duration::from_millis(args.timeout_ms), ..Default::default() };
    let report = run_tests(&bundle, filter.as_ref(), options);
    let format = args.format.unwrap_or_else(|| args.output.format());
    match format {
        Format::Json => crate::output::print_json(&serde_json::to_value(&report)?),
        Format::Yaml => crate::output::print_yaml(&serde_json::to_value(&report)?),
        Format::Text => {
            for problem in &report.problems {
                outln!("{problem}");
            }
            for result in &report.results {
                let show = args.verbose || matches!(result.outcome, TestOutcome::Fail | TestOutcome::Error);
                if !show {
                    continue;
                }
                let label = match result.outcome {
                    TestOutcome::Pass => "PASS",
                    TestOutcome::Fail => "FAIL",
                    TestOutcome::Error => "ERROR",
                    TestOutcome::Skip => "SKIPPED",
                };
                outln!("{}:{}: {}: {label} ({} µs)", result.file, result.line, result.name, result.duration_us);
                if let Some(message) = &result.message {
                    outln!("    {message}");
                }
                for line in &result.output {
                    outln!("    | {line}");
                }
            }
            let total = report.results.len();
            outln!("--------------------------------------------------------------------------------");
            outln!(
                "PASS: {}/{total}  FAIL: {}  ERROR: {}  SKIPPED: {}{}",
                report.count(TestOutcome::Pass),
                report.count(TestOutcome::Fail),
                report.count(TestOutcome::Error),
                report.count(TestOutcome::Skip),
                if report.problems.is_empty() {
                    String::new()
                } else {
                    format!("  BROKEN FILES: {}", report.problems.len())
                }
            );
            if total == 0 && report.problems.is_empty() {
                outln!("no tests found (test rules are named test_* in *_test.rego files)");
            }
        }
    }
    Ok(if report.success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// Policy directories or files (repeatable; default: the policy library
    /// shipped with Plinth, or PLINTH_POLICY_DIR).
    #[arg(long = "policy", short = 'p')]
    pub policies: Vec<PathBuf>,
    /// The input document (JSON or YAML; the first YAML document).
    #[arg(long, short = 'i')]
    pub input: Option<PathBuf>,
    /// Extra data files (JSON or YAML), merged into `data`.
    #[arg(long, short = 'd')]
    pub data: Vec<PathBuf>,
    /// The query, e.g. `data.plinth.baseline.containers.deny`.
    pub query: String,
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// The result as JSON (text and json) or YAML.
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let policies =
        if args.policies.is_empty() { vec![plinth_app::shipped::policies_dir()] } else { args.policies.clone() };
    for path in &policies {
        if !path.exists() {
            bail!("policy path {} does not exist", path.display());
        }
    }
    let mut bundle = PolicyBundle::load(&policies);
    for path in &args.data {
        let value = read_document(path)?;
        let extra = PolicyBundle { data: value, ..Default::default() };
        merge_data(&mut bundle, extra.data).with_context(|| format!("merging {}", path.display()))?;
    }
    let engine = PolicyEngine::build(
        &bundle,
        EngineOptions { time_limit: Duration::from_millis(args.timeout_ms), ..Default::default() },
    );
    if !engine.problems().is_empty() {
        let problems: Vec<String> = engine.problems().iter().map(ToString::to_string).collect();
        return Err(crate::client::Failure::findings(format!(
            "{} policy file(s) failed to load:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
        .into());
    }
    let input = args.input.as_deref().map(read_document).transpose()?;
    match engine.query(&args.query, input.as_ref()) {
        Ok(result) => {
            let result = serde_json::to_value(&result)?;
            if !args.output.structured(&result) {
                crate::output::print_json(&result);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => Err(crate::client::Failure::findings(message.to_string()).into()),
    }
}

fn merge_data(bundle: &mut PolicyBundle, data: serde_json::Value) -> anyhow::Result<()> {
    let serde_json::Value::Object(extra) = data else { bail!("a data file must hold a mapping") };
    let target = bundle.data.as_object_mut().context("policy data is not a mapping")?;
    for (key, value) in extra {
        if target.contains_key(&key) {
            bail!("`data.{key}` is already defined by the policy directory's data files");
        }
        target.insert(key, value);
    }
    Ok(())
}

/// Reads a JSON or YAML file (the first document of a YAML stream).
pub(crate) fn read_document(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    plinth_model::yaml::parse_document(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", path.display(), e.line.unwrap_or(0), e.message))
}
