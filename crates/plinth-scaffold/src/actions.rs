//! The built-in actions. The set is fixed and known when a template loads,
//! so a template naming an unknown action is refused before it runs.

use crate::error::ScaffoldError;
use crate::expr::Expressions;
use crate::files::TemplateFiles;
use crate::git;
use crate::host::{Host, PolicyRequest, RegisterTarget};
use crate::log::Logger;
use crate::template::Template;
use crate::workspace::{check_relative, list_files, resolve_within, Workspace};
use plinth_policy::Outcome;
use serde_json::{json, Value};

type Result<T, E = ScaffoldError> = std::result::Result<T, E>;

/// Everything an action may touch.
pub(crate) struct ActionContext<'a> {
    pub workspace: &'a mut Workspace,
    pub files: &'a TemplateFiles,
    pub expressions: &'a Expressions,
    pub host: &'a dyn Host,
    pub logger: &'a Logger,
    pub dry_run: bool,
    pub template: &'a Template,
    pub parameters: &'a Value,
    pub task_id: &'a str,
    pub user_ref: Option<&'a str>,
    /// Policy decisions taken during the run (for the task and dry-run).
    pub decisions: &'a mut Vec<Value>,
}

/// Runs one action; returns its outputs.
pub(crate) async fn run(id: &str, ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    match id {
        "fetch:template" => fetch(ctx, input, true),
        "fetch:plain" => fetch(ctx, input, false),
        "fs:rename" => rename(ctx, input),
        "fs:delete" => delete(ctx, input),
        "catalog:write" => catalog_write(ctx, input),
        "plinth:policy" => policy(ctx, input).await,
        "publish:git" => publish(ctx, input).await,
        "publish:github" => crate::publish_forge::github(ctx, input).await,
        "publish:gitlab" => crate::publish_forge::gitlab(ctx, input).await,
        "publish:github:pull-request" => crate::publish_forge::github_pull_request(ctx, input).await,
        "publish:gitlab:merge-request" => crate::publish_forge::gitlab_merge_request(ctx, input).await,
        "catalog:register" => register(ctx, input).await,
        "debug:log" => debug_log(ctx, input),
        other => Err(ScaffoldError::Input(format!("unknown action `{other}`"))),
    }
}

pub(crate) fn str_input<'v>(input: &'v Value, key: &str) -> Option<&'v str> {
    input.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) fn required<'v>(input: &'v Value, key: &str) -> Result<&'v str> {
    str_input(input, key).ok_or_else(|| ScaffoldError::Input(format!("input `{key}` is required")))
}

fn glob_set(patterns: &[String]) -> Result<globset::GlobSet> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = pattern.trim_start_matches("./");
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .map_err(|e| ScaffoldError::Input(format!("glob `{pattern}`: {e}")))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| ScaffoldError::Input(e.to_string()))
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn fetch(ctx: &mut ActionContext<'_>, input: &Value, render: bool) -> Result<Value> {
    let url = required(input, "url")?;
    let target = str_input(input, "targetPath").unwrap_or(".");
    let tree = ctx.files.read_tree(url)?;
    let values = json!({"values": input.get("values").cloned().unwrap_or(json!({}))});
    let verbatim = glob_set(&string_list(input.get("copyWithoutTemplating")))?;
    let extension = match input.get("templateFileExtension") {
        Some(Value::Bool(true)) => Some(".njk".to_string()),
        Some(Value::String(ext)) if !ext.is_empty() => {
            Some(if ext.starts_with('.') { ext.clone() } else { format!(".{ext}") })
        }
        _ => None,
    };
    if input.get("cookiecutterCompat").and_then(Value::as_bool) == Some(true) {
        ctx.logger.log(
            "cookiecutterCompat is not supported; `{{ cookiecutter.x }}` is left as written — use ${{ values.x }}",
        );
    }
    let mut written = 0usize;
    for (relative, bytes, executable) in tree {
        let (mut path, mut templated) = (relative.clone(), render && !verbatim.is_match(&relative));
        if let Some(extension) = &extension {
            match path.strip_suffix(extension.as_str()) {
                Some(stripped) => path = stripped.to_string(),
                None => templated = false,
            }
        }
        if render {
            path = ctx
                .expressions
                .render_text(&path, &values)
                .map_err(|e| e.context(format!("{url}/{relative}: file name")))?;
            // A path part that renders empty (a conditional directory) drops the file.
            if path.split('/').any(|part| part.trim().is_empty()) {
                continue;
            }
        }
        let contents = match (templated, std::str::from_utf8(&bytes)) {
            (true, Ok(text)) => ctx
                .expressions
                .render_text(text, &values)
                .map_err(|e| e.context(format!("{url}/{relative}")))?
                .into_bytes(),
            _ => bytes,
        };
        let destination = join(target, &path);
        ctx.workspace.write(&destination, &contents, executable).map_err(|e| e.context(format!("{url}/{relative}")))?;
        written += 1;
    }
    ctx.logger.log(&format!("fetched {written} file(s) from {url} into {target}"));
    Ok(json!({}))
}

fn join(base: &str, path: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.is_empty() || base == "." {
        path.to_string()
    } else {
        format!("{base}/{path}")
    }
}

fn rename(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let input_error = |message: String| ScaffoldError::Input(message);
    let files = input
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| input_error("input `files` must be a list of {from, to}".into()))?;
    for (index, file) in files.iter().enumerate() {
        let from = str_input(file, "from").ok_or_else(|| input_error(format!("files[{index}].from is required")))?;
        let to = str_input(file, "to").ok_or_else(|| input_error(format!("files[{index}].to is required")))?;
        let (source, destination) = (ctx.workspace.resolve(from)?, ctx.workspace.resolve(to)?);
        if !source.exists() {
            return Err(input_error(format!("files[{index}]: `{from}` does not exist in the workspace")));
        }
        if destination.exists() && file.get("overwrite").and_then(Value::as_bool) != Some(true) {
            return Err(input_error(format!(
                "files[{index}]: `{to}` already exists; set overwrite: true to replace it"
            )));
        }
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .map_err(ScaffoldError::io(format!("cannot create {}", parent.display())))?;
        }
        std::fs::rename(&source, &destination).map_err(ScaffoldError::io(format!("cannot rename {from} to {to}")))?;
        ctx.logger.log(&format!("renamed {from} to {to}"));
    }
    Ok(json!({}))
}

fn delete(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let patterns = string_list(input.get("files"));
    if patterns.is_empty() {
        return Err(ScaffoldError::Input("input `files` must list paths or globs".into()));
    }
    for pattern in &patterns {
        ctx.workspace.resolve(pattern.trim_start_matches("./").split(['*', '?', '[']).next().unwrap_or(""))?;
    }
    let set = glob_set(&patterns)?;
    let root = ctx.workspace.root().to_path_buf();
    let mut deleted = 0;
    for pattern in &patterns {
        let path = ctx.workspace.resolve(pattern)?;
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(ScaffoldError::io(format!("cannot delete {pattern}")))?;
            deleted += 1;
        }
    }
    for (relative, absolute) in list_files(&root) {
        if set.is_match(&relative) {
            std::fs::remove_file(&absolute).map_err(ScaffoldError::io(format!("cannot delete {relative}")))?;
            deleted += 1;
        }
    }
    ctx.logger.log(&format!("deleted {deleted} path(s)"));
    Ok(json!({}))
}

fn catalog_write(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let path = str_input(input, "filePath").unwrap_or("catalog-info.yaml");
    let entity = input
        .get("entity")
        .filter(|e| e.is_object())
        .ok_or_else(|| ScaffoldError::Input("input `entity` must be an object".into()))?;
    let text = crate::yaml::to_yaml(entity);
    ctx.workspace.write(path, text.as_bytes(), false)?;
    ctx.logger.log(&format!("wrote {path}"));
    Ok(json!({}))
}

/// Most documents `plinth:policy` evaluates in one step.
const MAX_POLICY_DOCUMENTS: usize = 500;

async fn policy(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let mut request = PolicyRequest {
        pending_entities: Vec::new(),
        environment: str_input(input, "environment")
            .or_else(|| str_input(ctx.parameters, "environment"))
            .map(str::to_string),
        profile: str_input(input, "profile").map(str::to_string).or_else(|| ctx.template.profile.clone()),
        user: ctx.user_ref.map(str::to_string),
    };
    let parameters = input.get("parameters").filter(|p| p.is_object()).unwrap_or(ctx.parameters);
    let mut subjects =
        vec![("parameters".to_string(), json!({"template": ctx.template.entity_ref, "parameters": parameters}))];
    let patterns = string_list(input.get("files"));
    let patterns =
        if patterns.is_empty() { vec!["**/*.yaml".into(), "**/*.yml".into(), "**/*.json".into()] } else { patterns };
    let set = glob_set(&patterns)?;
    for (relative, absolute) in ctx.workspace.files() {
        if !set.is_match(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(&absolute).map_err(ScaffoldError::io(format!("cannot read {relative}")))?;
        if relative.ends_with(".json") {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                ScaffoldError::Publish(format!("{relative}:{}: the rendered file is not valid JSON: {e}", e.line()))
            })?;
            subjects.push((relative, value));
            continue;
        }
        let documents = plinth_model::yaml::parse_documents(&text, &Default::default());
        let several = documents.len() > 1;
        for (index, document) in documents.into_iter().enumerate() {
            let value = document.value.map_err(|e| {
                ScaffoldError::Publish(format!(
                    "{relative}:{}: the rendered file is not valid YAML: {}",
                    e.line.unwrap_or(document.line),
                    e.message
                ))
            })?;
            if value.is_null() {
                continue;
            }
            let subject = if several { format!("{relative}#{}", index + 1) } else { relative.clone() };
            subjects.push((subject, value));
        }
    }
    request.pending_entities = subjects.iter().map(|(_, doc)| doc).filter(|doc| is_entity(doc)).cloned().collect();
    if subjects.len() > MAX_POLICY_DOCUMENTS {
        return Err(ScaffoldError::Limit(format!(
            "the run produced {} documents; plinth:policy checks at most {MAX_POLICY_DOCUMENTS}",
            subjects.len()
        )));
    }
    let mut worst = Outcome::Allow;
    let mut ids = Vec::new();
    let mut violations = Vec::new();
    let mut denials = Vec::new();
    for (subject, document) in subjects {
        let (decision_id, decision) = ctx.host.decide(document, &request).await?;
        for violation in &decision.violations {
            let label = violation.id.clone().unwrap_or_else(|| format!("{}.{}", violation.policy, violation.rule));
            match violation.effect {
                Outcome::Deny => {
                    ctx.logger.log(&format!("✗ deny [{label}] {subject}: {}", violation.message));
                    denials.push(format!("[{label}] {subject}: {}", violation.message));
                }
                Outcome::Warn => ctx.logger.log(&format!("! warn [{label}] {subject}: {}", violation.message)),
                Outcome::Allow => {}
            }
            let mut item = serde_json::to_value(violation).unwrap_or(Value::Null);
            item["subject"] = json!(subject);
            violations.push(item);
        }
        worst = worst.max(decision.result);
        ctx.decisions.push(json!({
            "subject": subject, "decisionId": decision_id, "result": decision.result,
            "revision": decision.revision, "violations": decision.violations,
        }));
        ids.push(decision_id);
    }
    ctx.logger.log(&format!("policy: {} document(s) checked, result {}", ids.len(), outcome_name(worst)));
    if !denials.is_empty() {
        return Err(ScaffoldError::Denied(format!(
            "denied by policy ({} violation(s)): {}",
            denials.len(),
            denials.join("; ")
        )));
    }
    Ok(json!({"result": outcome_name(worst), "decisionIds": ids, "violations": violations}))
}

/// A catalogue descriptor (not a Kubernetes object): Backstage's or
/// Plinth's API group, a kind and a name.
fn is_entity(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    (api.starts_with("backstage.io/") || api.starts_with("plinth.dev/"))
        && doc["kind"].is_string()
        && doc["metadata"]["name"].is_string()
}

fn outcome_name(outcome: Outcome) -> &'static str {
    outcome.as_str()
}

async fn publish(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let request = git::PublishRequest {
        repo_url: required(input, "repoUrl")?.to_string(),
        default_branch: str_input(input, "defaultBranch").unwrap_or("main").to_string(),
        branch: str_input(input, "branch").map(str::to_string),
        source: ctx.workspace.resolve(str_input(input, "sourcePath").unwrap_or("."))?,
        target_path: str_input(input, "targetPath").unwrap_or(".").to_string(),
        message: str_input(input, "commitMessage")
            .map(str::to_string)
            .unwrap_or_else(|| format!("Initial commit from golden path {}", ctx.template.entity_ref)),
        author_name: str_input(input, "gitAuthorName").unwrap_or("Plinth").to_string(),
        author_email: str_input(input, "gitAuthorEmail").unwrap_or("plinth@localhost").to_string(),
        review_branch: format!("plinth/{}-{}", ctx.template.name, &ctx.task_id[ctx.task_id.len().saturating_sub(8)..]),
        base_branch: None,
        auth_header: None,
    };
    check_relative(&request.target_path).map_err(|e| ScaffoldError::from(e).context("targetPath"))?;
    let destination = git::Destination::resolve(&request.repo_url, &ctx.host.repo_root())?;
    if ctx.dry_run {
        ctx.logger.log(&format!("dry run: would commit the workspace to {}", destination.display()));
        let branch = request.default_branch.clone();
        return Ok(json!({
            "remoteUrl": destination.display(), "repoContentsUrl": format!("{}/blob/{branch}", destination.display()),
            "commitHash": "0000000000000000000000000000000000000000", "branch": branch, "created": true,
        }));
    }
    let published = git::publish(&destination, &request, ctx.logger).await?;
    Ok(serde_json::to_value(published).unwrap_or(Value::Null))
}

/// `<repo>/blob/<branch>` (+ a path) → the repository, branch and file.
fn parse_contents_url(url: &str, path: Option<&str>) -> Result<RegisterTarget> {
    let (repo, rest) = url.split_once("/blob/").ok_or_else(|| {
        ScaffoldError::Input(format!("`{url}` is not a repository contents URL (`<repository>/blob/<branch>`)"))
    })?;
    // GitLab writes `<project>/-/blob/<branch>`.
    let repo = repo.strip_suffix("/-").unwrap_or(repo);
    let (branch, file) = match path {
        Some(path) => (rest.trim_end_matches('/'), path.trim_start_matches('/')),
        None => rest
            .split_once('/')
            .ok_or_else(|| ScaffoldError::Input(format!("`{url}` names no file after the branch")))?,
    };
    Ok(RegisterTarget { repo: repo.to_string(), path: file.to_string(), branch: Some(branch.to_string()) })
}

async fn register(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let optional = input.get("optional").and_then(Value::as_bool) == Some(true);
    let target = match (str_input(input, "catalogInfoUrl"), str_input(input, "repoContentsUrl")) {
        (Some(url), _) => parse_contents_url(url, None),
        (None, Some(contents)) => {
            parse_contents_url(contents, Some(str_input(input, "catalogInfoPath").unwrap_or("/catalog-info.yaml")))
        }
        (None, None) => {
            Err(ScaffoldError::Input("give `catalogInfoUrl`, or `repoContentsUrl` with `catalogInfoPath`".into()))
        }
    }?;
    let catalog_info_url =
        format!("{}/blob/{}/{}", target.repo, target.branch.as_deref().unwrap_or_default(), target.path);
    let refs = if ctx.dry_run {
        // What would be registered: the descriptor as rendered in the workspace.
        let refs = workspace_refs(ctx.workspace, &target.path);
        ctx.logger.log(&format!("dry run: would register {catalog_info_url} ({})", refs.join(", ")));
        refs
    } else {
        // The descriptor's own order: its first entity is the run's main one.
        let declared = workspace_refs(ctx.workspace, &target.path);
        match ctx.host.register(target).await {
            Ok(mut refs) => {
                refs.sort_by_key(|r| declared.iter().position(|d| d == r).unwrap_or(usize::MAX));
                refs
            }
            Err(error) if optional => {
                ctx.logger.log(&format!("could not register {catalog_info_url} (optional): {error}"));
                Vec::new()
            }
            Err(error) => return Err(error),
        }
    };
    let main = refs
        .iter()
        .find(|r| !r.starts_with("location:") && !r.starts_with("template:"))
        .or(refs.first())
        .cloned()
        .unwrap_or_default();
    if !ctx.dry_run {
        ctx.logger.log(&format!("registered {catalog_info_url}: {}", refs.join(", ")));
    }
    Ok(json!({"entityRef": main, "entityRefs": refs, "catalogInfoUrl": catalog_info_url}))
}

/// Entity refs declared by a descriptor in the workspace (by file name when
/// the path does not match: the repository may nest it differently).
fn workspace_refs(workspace: &Workspace, path: &str) -> Vec<String> {
    let relative = path.trim_start_matches('/');
    let file = resolve_within(workspace.root(), relative).ok().filter(|p| p.is_file()).or_else(|| {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        workspace.files().into_iter().find(|(r, _)| r.rsplit('/').next() == Some(name)).map(|(_, p)| p)
    });
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else { return Vec::new() };
    plinth_model::yaml::parse_documents(&text, &Default::default())
        .into_iter()
        .filter_map(|d| d.value.ok())
        .filter_map(|entity| {
            let kind = entity["kind"].as_str()?.to_lowercase();
            let name = entity["metadata"]["name"].as_str()?;
            let namespace = entity["metadata"]["namespace"].as_str().unwrap_or("default");
            Some(format!("{kind}:{namespace}/{name}").to_lowercase())
        })
        .collect()
}

fn debug_log(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    if let Some(message) = input.get("message").filter(|m| !m.is_null()) {
        let text = message.as_str().map(str::to_string).unwrap_or_else(|| message.to_string());
        ctx.logger.log(&text);
    }
    let listing = input.get("listWorkspace");
    if listing.is_some_and(|l| l.as_bool() == Some(true) || l.is_string()) {
        let with_contents = listing.and_then(Value::as_str) == Some("with-contents");
        for (relative, absolute) in ctx.workspace.files() {
            if with_contents {
                let text = std::fs::read_to_string(&absolute).unwrap_or_else(|_| "(binary)".into());
                ctx.logger.log(&format!("{relative}:\n{text}"));
            } else {
                ctx.logger.log(&relative);
            }
        }
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::parse_contents_url;

    #[test]
    fn contents_urls_split_into_repository_branch_and_file() {
        let t = parse_contents_url("/srv/repos/shop/blob/main", Some("/catalog-info.yaml")).unwrap();
        assert_eq!(
            (t.repo.as_str(), t.branch.as_deref(), t.path.as_str()),
            ("/srv/repos/shop", Some("main"), "catalog-info.yaml")
        );
        let t =
            parse_contents_url("https://git.example.com/o/r/blob/plinth/svc-1234", Some("catalog-info.yaml")).unwrap();
        assert_eq!(t.branch.as_deref(), Some("plinth/svc-1234"));
        let t = parse_contents_url("https://git.example.com/o/r/blob/main/deploy/catalog-info.yaml", None).unwrap();
        assert_eq!(t.path, "deploy/catalog-info.yaml");
        assert!(parse_contents_url("https://git.example.com/o/r", None).is_err());
        let t = parse_contents_url("https://gitlab.example.com/g/r/-/blob/main", Some("/catalog-info.yaml")).unwrap();
        assert_eq!((t.repo.as_str(), t.branch.as_deref()), ("https://gitlab.example.com/g/r", Some("main")));
    }
}
