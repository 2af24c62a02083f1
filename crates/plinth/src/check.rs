//! `plinth check`: the pull-request check. Evaluates Kubernetes manifests,
//! catalogue descriptors, Terraform plans (`terraform show -json`) and
//! golden-path parameters against the policies of the `pr` enforcement
//! point, offline, and reports as text, JSON, SARIF or JUnit (conftest
//! semantics: every YAML document is its own `input`).
//!
//! Exit codes: 0 nothing denied, 1 something denied (or unreadable, or a
//! policy failed to load), 2 usage errors.

use crate::client::Failure;
use crate::output::{out, outln};
use anyhow::{bail, Context};
use clap::Args;
use plinth_confine::git::GitCommand;
use plinth_model::yaml::{check_size, field_lines, parse_documents, YamlLimits};
use plinth_policy::report::{self, CheckReport, DocumentResult, InputError, SarifTool};
use plinth_policy::{attach_context, EngineOptions, EvalRequest, Input, Point, PolicyBundle, PolicyEngine};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Directories never searched.
const SKIPPED_DIRS: &[&str] = &[".git", "node_modules", "target"];

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Files or directories to check (directories are searched for .yaml, .yml and .json files).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Policy directories or files (repeatable; default: the policy library
    /// shipped with Plinth, or PLINTH_POLICY_DIR).
    #[arg(long = "policy", short = 'p')]
    pub policies: Vec<PathBuf>,
    /// Extra data files (JSON or YAML mappings), merged into `data`.
    #[arg(long, short = 'd')]
    pub data: Vec<PathBuf>,
    /// Workload profile: only policies of this profile (and baseline/architecture ones) apply.
    #[arg(long)]
    pub profile: Option<String>,
    /// Output format: text, json, yaml, sarif (code scanning) or junit (CI test reports).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text, value_name = "FORMAT")]
    pub output: Output,
    /// Same as `--output json`.
    #[arg(long, hide = true)]
    pub json: bool,
    /// Succeed when a path holds no YAML or JSON files (by default that is
    /// an error: a wrong path in CI must not pass silently).
    #[arg(long)]
    pub allow_empty: bool,
    /// Only check files changed since this git revision (tracked changes and untracked files).
    #[arg(long, value_name = "BASE")]
    pub diff: Option<String>,
    /// Time limit per document, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
    Yaml,
    Sarif,
    Junit,
}

pub(crate) fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    for path in &args.paths {
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
    }
    let policies =
        if args.policies.is_empty() { vec![plinth_app::shipped::policies_dir()] } else { args.policies.clone() };
    for path in &policies {
        if !path.exists() {
            bail!(
                "policy path {} does not exist; pass --policy DIR (default: the shipped policy library)",
                path.display()
            );
        }
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mut files = Vec::new();
    for path in &args.paths {
        let found = collect_files(std::slice::from_ref(path))?;
        if found.is_empty() && !args.allow_empty {
            return Err(Failure::findings(format!(
                "{} holds no YAML or JSON files to check; check the path, or pass --allow-empty",
                path.display()
            ))
            .into());
        }
        files.extend(found);
    }
    let mut files = collect_files(&files)?;
    if let Some(base) = &args.diff {
        let changed = changed_files(base, &cwd)?;
        files.retain(|f| std::fs::canonicalize(f).map(|c| changed.contains(&c)).unwrap_or(false));
    }

    let mut bundle = PolicyBundle::load(&policies);
    for path in &args.data {
        let value = crate::policy_cli::read_document(path)?;
        if !value.is_object() {
            bail!("{}: a data file must hold a mapping; its keys are merged into `data`", path.display());
        }
        merge_data(&mut bundle.data, value, "data").with_context(|| format!("merging {}", path.display()))?;
    }
    let engine = PolicyEngine::build(
        &bundle,
        EngineOptions { time_limit: Duration::from_millis(args.timeout_ms), ..Default::default() },
    );
    for problem in engine.problems() {
        eprintln!("error: policy failed to load, so the decisions it covers fail closed: {problem}");
    }

    let limits = YamlLimits::default();
    let mut documents = Vec::new();
    for file in &files {
        documents.extend(check_file(&engine, file, &display_path(file, &cwd), args.profile.as_deref(), &limits));
    }
    let report = CheckReport {
        point: Point::Pr,
        profile: args.profile.clone(),
        documents,
        problems: engine.problems().to_vec(),
    };
    let summaries = engine.summaries();
    let output = if args.json { Output::Json } else { args.output };
    match output {
        Output::Text => {
            if files.is_empty() {
                outln!("no files to check");
            }
            out!("{}", report::render_text(&report, &summaries));
        }
        Output::Json => crate::output::print_json(&report::render_json(&report)),
        Output::Yaml => crate::output::print_yaml(&report::render_json(&report)),
        Output::Sarif => crate::output::print_json(&report::render_sarif(&report, &summaries, &SarifTool::default())),
        Output::Junit => out!("{}", report::render_junit(&report, &summaries)),
    }
    Ok(if report.failed() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Files named on the command line, and .yaml/.yml/.json files under the
/// directories named, sorted and without duplicates.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = BTreeSet::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found).with_context(|| format!("cannot search {}", path.display()))?;
        } else {
            found.insert(path.clone());
        }
    }
    // One file reached through two arguments is checked once.
    let mut seen = BTreeSet::new();
    Ok(found.into_iter().filter(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))).collect())
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let name = entry.file_name().to_string_lossy().to_string();
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(&path, found)?;
            }
        } else if kind.is_file() && [".yaml", ".yml", ".json"].iter().any(|ext| name.ends_with(ext)) {
            found.insert(path);
        }
    }
    Ok(())
}

/// Canonical paths of the files changed between `base` and the working tree
/// (staged or not), plus untracked files; deleted files are left out.
fn changed_files(base: &str, cwd: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let root = git(GitCommand::new("rev-parse").current_dir(cwd).arg("--show-toplevel"))
        .context("--diff needs a git repository")?;
    let root = PathBuf::from(root.trim_end_matches(['\n', '\r']));
    let revision = format!("{base}^{{commit}}");
    git(GitCommand::new("rev-parse").current_dir(&root).arg("--verify").arg("--quiet").rev(&revision))
        .with_context(|| format!("--diff {base}: not a revision of this repository"))?;
    let tracked = git(GitCommand::new("diff")
        .current_dir(&root)
        .arg("--name-only")
        .arg("--no-renames")
        .arg("--diff-filter=d")
        .arg("-z")
        .rev(base)
        .operand("."))?;
    let untracked = git(GitCommand::new("ls-files")
        .current_dir(&root)
        .arg("--others")
        .arg("--exclude-standard")
        .arg("--full-name")
        .arg("-z"))?;
    Ok(tracked
        .split('\0')
        .chain(untracked.split('\0'))
        .filter(|p| !p.is_empty())
        .map(|p| root.join(p))
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect())
}

/// Runs one git command to its end (the CLI has no runtime of its own).
fn git(command: GitCommand) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(command.run())?)
}

/// The path shown in reports: relative to the working directory when
/// inside it, with forward slashes.
fn display_path(path: &Path, cwd: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let shown = absolute.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(absolute);
    let text = shown.to_string_lossy().replace('\\', "/");
    text.strip_prefix("./").unwrap_or(&text).to_string()
}

fn check_file(
    engine: &PolicyEngine,
    path: &Path,
    shown: &str,
    profile: Option<&str>,
    limits: &YamlLimits,
) -> Vec<DocumentResult> {
    let unreadable = |line: usize, message: String| DocumentResult {
        file: shown.to_string(),
        document: 1,
        line,
        input: "other".into(),
        name: None,
        error: Some(InputError { line, message }),
        decision: None,
        locations: Vec::new(),
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => return vec![unreadable(1, format!("cannot read: {error}"))],
    };
    if let Err(message) = check_size(bytes.len(), limits) {
        return vec![unreadable(1, message.to_string())];
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return vec![unreadable(1, "not UTF-8 text".into())];
    };
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || (path.extension().is_none() && text.trim_start().starts_with(['{', '[']));
    if is_json {
        return match serde_json::from_str::<Value>(&text) {
            Ok(value) => vec![evaluate(engine, shown, 1, 1, value, profile, |_| None)],
            Err(error) => vec![unreadable(error.line().max(1), format!("invalid JSON: {error}"))],
        };
    }
    let docs = parse_documents(&text, limits);
    let mut results = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let line = doc.line as usize;
        match &doc.value {
            Ok(value) => {
                let mut lines: Option<HashMap<String, u32>> = None;
                let locate = |field: &str| -> Option<usize> {
                    let lines = lines.get_or_insert_with(|| field_lines(&text, doc, limits));
                    find_line(lines, field)
                };
                results.push(evaluate(engine, shown, index + 1, line, value.clone(), profile, locate));
            }
            Err(error) => {
                let at = error.line.map(|l| l as usize).unwrap_or(line).max(1);
                results.push(DocumentResult { document: index + 1, line, ..unreadable(at, error.message.clone()) })
            }
        }
    }
    results
}

fn evaluate(
    engine: &PolicyEngine,
    shown: &str,
    document: usize,
    line: usize,
    value: Value,
    profile: Option<&str>,
    mut locate: impl FnMut(&str) -> Option<usize>,
) -> DocumentResult {
    let (input_kind, name) = describe(&value);
    let now = time::OffsetDateTime::now_utc();
    let input = Input::from_json(&attach_context(value, report::pr_context(profile, now)));
    let request = EvalRequest { point: Point::Pr, input: &input, profile, waivers: &[], entities: &[], now };
    let decision = engine.evaluate(&request);
    let locations = decision
        .violations
        .iter()
        .map(|v| field_of(v.details.as_ref()).and_then(|f| locate(&f)).unwrap_or(line))
        .collect();
    DocumentResult {
        file: shown.to_string(),
        document,
        line,
        input: input_kind.into(),
        name,
        error: None,
        decision: Some(decision),
        locations,
    }
}

/// What kind of input a document is, and a readable name for it.
fn describe(value: &Value) -> (&'static str, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let Some(map) = value.as_object() else { return ("other", None) };
    if map.contains_key("format_version") && map.contains_key("resource_changes") {
        return ("terraform-plan", None);
    }
    if map.contains_key("template") && map.get("parameters").is_some_and(Value::is_object) {
        return ("golden-path", text(map.get("template")).map(|t| format!("template {t}")));
    }
    let api_version = text(map.get("apiVersion")).unwrap_or_default();
    let kind = text(map.get("kind"));
    let name = text(map.get("metadata").and_then(|m| m.get("name")));
    if api_version.starts_with("backstage.io/")
        || api_version.starts_with("plinth.dev/")
        || api_version.starts_with("scaffolder.backstage.io/")
    {
        let reference = match (&kind, &name) {
            (Some(kind), Some(name)) => Some(format!("{}:{name}", kind.to_ascii_lowercase())),
            _ => None,
        };
        return ("catalog", reference);
    }
    if !api_version.is_empty() && kind.is_some() {
        let reference = match (&kind, &name) {
            (Some(kind), Some(name)) => Some(format!("{kind}/{name}")),
            (Some(kind), None) => Some(kind.clone()),
            _ => None,
        };
        return ("kubernetes", reference);
    }
    ("other", None)
}

/// The field a violation's details point at: `field` or `path`, as a dotted
/// string (`spec.containers[0].image`, `input.` optional) or a list of keys
/// and indexes.
fn field_of(details: Option<&Value>) -> Option<String> {
    let details = details?.as_object()?;
    let value = details.get("field").or_else(|| details.get("path"))?;
    let path = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Array(parts) => {
            let mut path = String::new();
            for part in parts {
                match part {
                    Value::Number(n) => path.push_str(&format!("[{n}]")),
                    Value::String(s) => {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(s);
                    }
                    _ => return None,
                }
            }
            path
        }
        _ => return None,
    };
    let path = path.strip_prefix("input.").unwrap_or(&path).trim_start_matches('.').replace(".[", "[");
    (!path.is_empty()).then_some(path)
}

/// The line of `field`, or of its nearest parent that has one.
fn find_line(lines: &HashMap<String, u32>, field: &str) -> Option<usize> {
    let mut field = field;
    loop {
        if let Some(line) = lines.get(field) {
            return Some(*line as usize);
        }
        let cut = field.rfind(['.', '['])?;
        field = &field[..cut];
        if field.is_empty() {
            return None;
        }
    }
}

/// Deep-merges an extra data file into the bundle's data; a different value
/// at a path already defined is an error.
fn merge_data(target: &mut Value, value: Value, path: &str) -> anyhow::Result<()> {
    match (target, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                let child = format!("{path}.{key}");
                match into.get_mut(&key) {
                    Some(existing) => merge_data(existing, value, &child)?,
                    None => {
                        into.insert(key, value);
                    }
                }
            }
            Ok(())
        }
        (existing, value) if *existing == value => Ok(()),
        _ => bail!("`{path}` is already defined with a different value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_paths_normalise() {
        assert_eq!(
            field_of(Some(&json!({"field": "input.spec.containers[0].image"}))).as_deref(),
            Some("spec.containers[0].image")
        );
        assert_eq!(
            field_of(Some(&json!({"path": ["spec", "containers", 0, "image"]}))).as_deref(),
            Some("spec.containers[0].image")
        );
        assert_eq!(field_of(Some(&json!({"other": 1}))), None);
        let lines: HashMap<String, u32> =
            [("spec".to_string(), 3), ("spec.containers".to_string(), 4), ("spec.containers[0]".to_string(), 5)]
                .into_iter()
                .collect();
        assert_eq!(find_line(&lines, "spec.containers[0].securityContext.privileged"), Some(5));
        assert_eq!(find_line(&lines, "metadata.name"), None);
    }

    #[test]
    fn inputs_are_recognised() {
        assert_eq!(describe(&json!({"format_version": "1.2", "resource_changes": []})).0, "terraform-plan");
        assert_eq!(describe(&json!({"template": "service", "parameters": {}})).0, "golden-path");
        assert_eq!(
            describe(&json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a"}})),
            ("catalog", Some("component:a".to_string()))
        );
        assert_eq!(
            describe(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})),
            ("kubernetes", Some("Deployment/web".to_string()))
        );
    }
}
