//! `publish:github`, `publish:gitlab`, `publish:github:pull-request` and
//! `publish:gitlab:merge-request`, with Backstage's input and output names.
//! The forge's REST API creates the repository, protects its default
//! branch and opens the pull/merge request; the real git client pushes.
//!
//! Forge calls, in order:
//!
//! - `publish:github`: `GET /users/{owner}`; `POST /orgs/{owner}/repos`
//!   (an organisation) or `POST /user/repos` (the token's user); git push
//!   of the default branch; `PUT /repos/{owner}/{repo}/branches/{branch}/protection`.
//! - `publish:gitlab`: `GET /namespaces/{owner}`; `POST /projects`; git
//!   push; `POST /projects/{id}/protected_branches`.
//! - `publish:github:pull-request`: `GET /repos/{owner}/{repo}`; git push
//!   of a new branch; `POST /repos/{owner}/{repo}/pulls` (an open pull
//!   request from the same branch is found with `GET …/pulls?head=…`).
//! - `publish:gitlab:merge-request`: `GET /projects/{owner%2Frepo}`; git
//!   push of a new branch; `POST /projects/{id}/merge_requests` (an open one
//!   from the same branch is found with `GET …/merge_requests?source_branch=…`).

use crate::actions::{str_input, ActionContext};
use crate::error::ScaffoldError;
use crate::forge::{encode, git_auth_header, ForgeCall, ForgeIntegration, ForgeKind, RepoSpec};
use crate::git::{self, Destination, PublishRequest};
use crate::workspace::check_relative;
use plinth_confine::{GitRef, GitUrl};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

type Result<T, E = ScaffoldError> = std::result::Result<T, E>;

/// Most required approving reviews a protection rule may ask for (GitHub's own bound).
const MAX_APPROVALS: u64 = 6;

/// What every forge action starts from: the repository, the forge and the token.
struct Target {
    action: &'static str,
    spec: RepoSpec,
    integration: ForgeIntegration,
    token: SecretString,
}

impl Target {
    fn call(&self) -> ForgeCall<'_> {
        ForgeCall { action: self.action, integration: &self.integration, token: &self.token }
    }

    /// Where git pushes: `<git_base>/<owner>/<repo>.git`.
    fn push_url(&self) -> Result<Destination> {
        let url = format!("{}/{}.git", self.integration.git_base, self.spec.full_name());
        GitUrl::parse(&url).map(Destination::Remote).map_err(|e| {
            ScaffoldError::from(e).context(format!("{}: the push URL of {}", self.action, self.spec.full_name()))
        })
    }
}

fn target(ctx: &ActionContext<'_>, input: &Value, action: &'static str, kind: ForgeKind) -> Result<Target> {
    let raw = str_input(input, "repoUrl")
        .ok_or_else(|| ScaffoldError::Input(format!("{action}: input `repoUrl` is required")))?;
    let spec = RepoSpec::parse(raw, kind).map_err(|e| e.context(action))?;
    let integration = ctx.host.forges().find(kind, &spec.host).map_err(|e| e.context(action))?;
    let token = match str_input(input, "token") {
        Some(token) => SecretString::from(token.to_string()),
        // A dry run calls no forge: it needs no token.
        None if ctx.dry_run => integration.token.clone().unwrap_or_else(|| SecretString::from(String::new())),
        None => integration.token.clone().ok_or_else(|| {
            ScaffoldError::Input(format!(
                "{action}: token: no token for {}; pass `token: ${{{{ secrets.<name> }}}}` or configure the {} integration's token",
                spec.host,
                kind.name()
            ))
        })?,
    };
    Ok(Target { action, spec, integration, token })
}

fn publish_request(ctx: &ActionContext<'_>, input: &Value, target: &Target, message: String) -> Result<PublishRequest> {
    let target_path = str_input(input, "targetPath").unwrap_or(".").to_string();
    check_relative(&target_path)
        .map_err(|e| ScaffoldError::from(e).context(format!("{}: targetPath", target.action)))?;
    Ok(PublishRequest {
        repo_url: target.spec.full_name(),
        default_branch: str_input(input, "defaultBranch").unwrap_or("main").to_string(),
        branch: str_input(input, "branchName").map(str::to_string),
        source: ctx
            .workspace
            .resolve(str_input(input, "sourcePath").unwrap_or("."))
            .map_err(|e| ScaffoldError::from(e).context(format!("{}: sourcePath", target.action)))?,
        target_path,
        message: str_input(input, "gitCommitMessage")
            .or_else(|| str_input(input, "commitMessage"))
            .map(str::to_string)
            .unwrap_or(message),
        author_name: str_input(input, "gitAuthorName").unwrap_or("Plinth").to_string(),
        author_email: str_input(input, "gitAuthorEmail").unwrap_or("plinth@localhost").to_string(),
        review_branch: format!("plinth/{}-{}", ctx.template.name, &ctx.task_id[ctx.task_id.len().saturating_sub(8)..]),
        base_branch: None,
        auth_header: Some(git_auth_header(target.integration.kind, &target.token)),
    })
}

fn branch(name: &str, action: &str, field: &str) -> Result<GitRef> {
    GitRef::parse(name).map_err(|e| ScaffoldError::from(e).context(format!("{action}: {field}")))
}

fn bool_input(input: &Value, key: &str, default: bool) -> bool {
    input.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn visibility(input: &Value, action: &str) -> Result<&'static str> {
    match str_input(input, "repoVisibility").unwrap_or("private") {
        "private" => Ok("private"),
        "internal" => Ok("internal"),
        "public" => Ok("public"),
        other => Err(ScaffoldError::Input(format!(
            "{action}: repoVisibility: `{}` is not private, internal or public",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

/// The stand-in outputs of a dry run (nothing is created or pushed).
fn dry_run(ctx: &ActionContext<'_>, target: &Target, what: &str, outputs: Value) -> Result<Value> {
    ctx.logger.log(&format!("dry run: would {what} on {} ({})", target.call().forge(), target.spec.full_name()));
    Ok(outputs)
}

pub(crate) async fn github(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let action = "publish:github";
    let target = target(ctx, input, action, ForgeKind::GitHub)?;
    let visibility = visibility(input, action)?;
    let default_branch = branch(str_input(input, "defaultBranch").unwrap_or("main"), action, "defaultBranch")?;
    let request =
        publish_request(ctx, input, &target, format!("Initial commit from golden path {}", ctx.template.entity_ref))?;
    let approvals = input.get("requiredApprovingReviewCount").and_then(Value::as_u64).unwrap_or(1);
    if approvals > MAX_APPROVALS {
        return Err(ScaffoldError::Input(format!(
            "{action}: requiredApprovingReviewCount: {approvals} is more than {MAX_APPROVALS}"
        )));
    }
    let (owner, repo) = (&target.spec.owner, &target.spec.repo);
    if ctx.dry_run {
        let web = format!("https://{}/{owner}/{repo}", target.spec.host);
        return dry_run(
            ctx,
            &target,
            "create the repository and push to it",
            json!({
                "remoteUrl": format!("{web}.git"), "repoContentsUrl": format!("{web}/blob/{default_branch}"),
                "commitHash": "0000000000000000000000000000000000000000", "created": true,
            }),
        );
    }
    let forges = ctx.host.forges();
    let call = target.call();
    let (status, user) = forges.call(&call, Method::GET, &format!("/users/{}", encode(owner)), None).await?;
    if status != 200 {
        return Err(call.refused("repoUrl", &format!("looking up the owner {owner}"), status, &user));
    }
    let organisation = user["type"].as_str() == Some("Organization");
    let mut body = json!({
        "name": repo,
        "description": str_input(input, "description").unwrap_or_default(),
        "private": visibility != "public",
        "auto_init": false,
    });
    if let Some(homepage) = str_input(input, "homepage") {
        body["homepage"] = json!(homepage);
    }
    let path = if organisation {
        body["visibility"] = json!(visibility);
        format!("/orgs/{}/repos", encode(owner))
    } else {
        "/user/repos".to_string()
    };
    let (status, created) = forges.call(&call, Method::POST, &path, Some(&body)).await?;
    if status != 201 {
        let what = format!("creating the repository {owner}/{repo}");
        return Err(match status {
            422 => ScaffoldError::Publish(format!(
                "{action}: repoUrl: {what} failed: {} answered 422: {}; a repository of that name probably exists already — choose another name, or use publish:github:pull-request to change it",
                call.forge(),
                crate::forge::forge_message(&created)
            )),
            _ => call.refused("repoUrl", &what, status, &created),
        });
    }
    ctx.logger.log(&format!("created the {visibility} repository {owner}/{repo} on {}", call.forge()));
    let destination = target.push_url()?;
    let published = git::publish(&destination, &request, ctx.logger).await.map_err(|e| e.context(action))?;
    if bool_input(input, "protectDefaultBranch", true) {
        let checks: Vec<String> = input
            .get("requiredStatusCheckContexts")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let protection = json!({
            "required_status_checks": if checks.is_empty() { Value::Null } else { json!({"strict": true, "contexts": checks}) },
            "enforce_admins": bool_input(input, "enforceAdmins", true),
            "required_pull_request_reviews": {
                "required_approving_review_count": approvals,
                "require_code_owner_reviews": bool_input(input, "requireCodeOwnerReviews", false),
                "dismiss_stale_reviews": bool_input(input, "dismissStaleReviews", false),
            },
            "restrictions": Value::Null,
        });
        let path = format!(
            "/repos/{}/{}/branches/{}/protection",
            encode(owner),
            encode(repo),
            encode(default_branch.as_str())
        );
        let (status, answer) = forges.call(&call, Method::PUT, &path, Some(&protection)).await?;
        if status != 200 {
            return Err(call.refused(
                "protectDefaultBranch",
                &format!("protecting {default_branch} of {owner}/{repo} (the repository was created and pushed)"),
                status,
                &answer,
            ));
        }
        ctx.logger.log(&format!(
            "protected {default_branch}: pull requests with {approvals} approving review(s){}",
            if bool_input(input, "enforceAdmins", true) { ", admins included" } else { "" }
        ));
    }
    let html = created["html_url"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://{}/{owner}/{repo}", target.spec.host));
    let remote = created["clone_url"].as_str().map(str::to_string).unwrap_or_else(|| format!("{html}.git"));
    Ok(json!({
        "remoteUrl": remote,
        "repoContentsUrl": format!("{html}/blob/{}", published.branch),
        "commitHash": published.commit_hash,
        "created": true,
    }))
}

pub(crate) async fn gitlab(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let action = "publish:gitlab";
    let target = target(ctx, input, action, ForgeKind::GitLab)?;
    let visibility = visibility(input, action)?;
    let default_branch = branch(str_input(input, "defaultBranch").unwrap_or("main"), action, "defaultBranch")?;
    let request =
        publish_request(ctx, input, &target, format!("Initial commit from golden path {}", ctx.template.entity_ref))?;
    let (owner, repo) = (&target.spec.owner, &target.spec.repo);
    if ctx.dry_run {
        let web = format!("https://{}/{owner}/{repo}", target.spec.host);
        return dry_run(
            ctx,
            &target,
            "create the project and push to it",
            json!({
                "remoteUrl": format!("{web}.git"), "repoContentsUrl": format!("{web}/-/blob/{default_branch}"),
                "projectId": 0, "commitHash": "0000000000000000000000000000000000000000", "created": true,
            }),
        );
    }
    let forges = ctx.host.forges();
    let call = target.call();
    let (status, namespace) = forges.call(&call, Method::GET, &format!("/namespaces/{}", encode(owner)), None).await?;
    if status != 200 {
        return Err(call.refused("repoUrl", &format!("looking up the group or user {owner}"), status, &namespace));
    }
    let namespace_id = namespace["id"].as_u64().ok_or_else(|| {
        ScaffoldError::Publish(format!(
            "{action}: repoUrl: {} answered the namespace {owner} without an id",
            call.forge()
        ))
    })?;
    let body = json!({
        "name": repo, "path": repo, "namespace_id": namespace_id, "visibility": visibility,
        "description": str_input(input, "description").unwrap_or_default(),
    });
    let (status, project) = forges.call(&call, Method::POST, "/projects", Some(&body)).await?;
    if status != 201 {
        let what = format!("creating the project {owner}/{repo}");
        let taken = crate::forge::forge_message(&project).contains("has already been taken");
        return Err(if taken {
            ScaffoldError::Publish(format!(
                "{action}: repoUrl: {what} failed: {} answered {status}: {}; choose another name, or use publish:gitlab:merge-request to change it",
                call.forge(),
                crate::forge::forge_message(&project)
            ))
        } else {
            call.refused("repoUrl", &what, status, &project)
        });
    }
    let project_id = project["id"].as_u64().unwrap_or_default();
    ctx.logger.log(&format!("created the {visibility} project {owner}/{repo} ({project_id}) on {}", call.forge()));
    let destination = target.push_url()?;
    let published = git::publish(&destination, &request, ctx.logger).await.map_err(|e| e.context(action))?;
    if bool_input(input, "protectDefaultBranch", true) {
        // Maintainers push; developers and maintainers merge.
        let body = json!({"name": default_branch.as_str(), "push_access_level": 40, "merge_access_level": 30});
        let path = format!("/projects/{project_id}/protected_branches");
        let (status, answer) = forges.call(&call, Method::POST, &path, Some(&body)).await?;
        match status {
            201 => ctx.logger.log(&format!("protected {default_branch}: maintainers push, developers merge")),
            // GitLab protects a project's first branch itself.
            409 => ctx.logger.log(&format!("{default_branch} is protected already")),
            _ => {
                return Err(call.refused(
                    "protectDefaultBranch",
                    &format!("protecting {default_branch} of {owner}/{repo} (the project was created and pushed)"),
                    status,
                    &answer,
                ))
            }
        }
    }
    let web = project["web_url"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://{}/{owner}/{repo}", target.spec.host));
    let remote = project["http_url_to_repo"].as_str().map(str::to_string).unwrap_or_else(|| format!("{web}.git"));
    Ok(json!({
        "remoteUrl": remote,
        "repoContentsUrl": format!("{web}/-/blob/{}", published.branch),
        "projectId": project_id,
        "commitHash": published.commit_hash,
        "created": true,
    }))
}

/// `branchName` and `title`, both required for a pull/merge request.
fn change_inputs(input: &Value, action: &str) -> Result<(GitRef, String)> {
    let name = str_input(input, "branchName")
        .ok_or_else(|| ScaffoldError::Input(format!("{action}: input `branchName` is required")))?;
    let title = str_input(input, "title")
        .ok_or_else(|| ScaffoldError::Input(format!("{action}: input `title` is required")))?;
    Ok((branch(name, action, "branchName")?, title.chars().take(256).collect()))
}

pub(crate) async fn github_pull_request(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let action = "publish:github:pull-request";
    let target = target(ctx, input, action, ForgeKind::GitHub)?;
    let (head, title) = change_inputs(input, action)?;
    let mut request = publish_request(ctx, input, &target, title.clone())?;
    request.branch = Some(head.to_string());
    let (owner, repo) = (&target.spec.owner, &target.spec.repo);
    if ctx.dry_run {
        return dry_run(
            ctx,
            &target,
            &format!("push {head} and open a pull request"),
            json!({
                "remoteUrl": format!("https://{}/{owner}/{repo}/pull/0", target.spec.host),
                "pullRequestUrl": format!("https://{}/{owner}/{repo}/pull/0", target.spec.host),
                "pullRequestNumber": 0, "targetBranchName": str_input(input, "targetBranchName").unwrap_or("main"),
            }),
        );
    }
    let forges = ctx.host.forges();
    let call = target.call();
    let repo_path = format!("/repos/{}/{}", encode(owner), encode(repo));
    let (status, repository) = forges.call(&call, Method::GET, &repo_path, None).await?;
    if status != 200 {
        return Err(call.refused("repoUrl", &format!("looking up the repository {owner}/{repo}"), status, &repository));
    }
    let base = match str_input(input, "targetBranchName") {
        Some(name) => branch(name, action, "targetBranchName")?.to_string(),
        None => repository["default_branch"].as_str().unwrap_or("main").to_string(),
    };
    request.base_branch = Some(base.clone());
    let published = git::publish(&target.push_url()?, &request, ctx.logger).await.map_err(|e| e.context(action))?;
    if published.branch != head.as_str() {
        return Err(ScaffoldError::Publish(format!(
            "{action}: {owner}/{repo} already holds exactly these files on {base}; there is nothing to review, so no pull request was opened"
        )));
    }
    let body = json!({
        "title": title, "head": head.as_str(), "base": base,
        "body": str_input(input, "description").unwrap_or_default(),
        "draft": bool_input(input, "draft", false),
    });
    let (status, pull) = forges.call(&call, Method::POST, &format!("{repo_path}/pulls"), Some(&body)).await?;
    let pull = match status {
        201 => {
            ctx.logger.log(&format!("opened pull request #{} from {head} into {base}", pull["number"]));
            pull
        }
        // The same branch has an open pull request: an earlier run opened it.
        422 if crate::forge::forge_message(&pull).contains("already exists") => {
            let query = format!("{repo_path}/pulls?state=open&head={}", encode(&format!("{owner}:{head}")));
            let (status, list) = forges.call(&call, Method::GET, &query, None).await?;
            match list.as_array().and_then(|l| l.first()).filter(|_| status == 200) {
                Some(existing) => {
                    ctx.logger.log(&format!("pull request #{} from {head} is open already", existing["number"]));
                    existing.clone()
                }
                None => return Err(call.refused("branchName", "opening the pull request", 422, &pull)),
            }
        }
        _ => {
            return Err(call.refused(
                "branchName",
                &format!("opening a pull request from {head} into {base}"),
                status,
                &pull,
            ))
        }
    };
    let url = pull["html_url"].as_str().unwrap_or_default().to_string();
    Ok(json!({
        "remoteUrl": url, "pullRequestUrl": url, "pullRequestNumber": pull["number"],
        "targetBranchName": base, "branchName": head.as_str(), "commitHash": published.commit_hash,
    }))
}

pub(crate) async fn gitlab_merge_request(ctx: &mut ActionContext<'_>, input: &Value) -> Result<Value> {
    let action = "publish:gitlab:merge-request";
    let target = target(ctx, input, action, ForgeKind::GitLab)?;
    let (source, title) = change_inputs(input, action)?;
    let mut request = publish_request(ctx, input, &target, title.clone())?;
    request.branch = Some(source.to_string());
    let (owner, repo) = (&target.spec.owner, &target.spec.repo);
    if ctx.dry_run {
        return dry_run(
            ctx,
            &target,
            &format!("push {source} and open a merge request"),
            json!({
                "mergeRequestUrl": format!("https://{}/{owner}/{repo}/-/merge_requests/0", target.spec.host),
                "projectid": 0, "projectPath": target.spec.full_name(),
                "targetBranchName": str_input(input, "targetBranchName").unwrap_or("main"),
            }),
        );
    }
    let forges = ctx.host.forges();
    let call = target.call();
    let (status, project) =
        forges.call(&call, Method::GET, &format!("/projects/{}", encode(&target.spec.full_name())), None).await?;
    if status != 200 {
        return Err(call.refused("repoUrl", &format!("looking up the project {owner}/{repo}"), status, &project));
    }
    let project_id = project["id"].as_u64().unwrap_or_default();
    let base = match str_input(input, "targetBranchName") {
        Some(name) => branch(name, action, "targetBranchName")?.to_string(),
        None => project["default_branch"].as_str().unwrap_or("main").to_string(),
    };
    request.base_branch = Some(base.clone());
    let published = git::publish(&target.push_url()?, &request, ctx.logger).await.map_err(|e| e.context(action))?;
    if published.branch != source.as_str() {
        return Err(ScaffoldError::Publish(format!(
            "{action}: {owner}/{repo} already holds exactly these files on {base}; there is nothing to review, so no merge request was opened"
        )));
    }
    let body = json!({
        "source_branch": source.as_str(), "target_branch": base, "title": title,
        "description": str_input(input, "description").unwrap_or_default(),
        "remove_source_branch": bool_input(input, "removeSourceBranch", true),
    });
    let path = format!("/projects/{project_id}/merge_requests");
    let (status, merge) = forges.call(&call, Method::POST, &path, Some(&body)).await?;
    let merge = match status {
        201 => {
            ctx.logger.log(&format!("opened merge request !{} from {source} into {base}", merge["iid"]));
            merge
        }
        409 => {
            let query = format!("{path}?state=opened&source_branch={}", encode(source.as_str()));
            let (status, list) = forges.call(&call, Method::GET, &query, None).await?;
            match list.as_array().and_then(|l| l.first()).filter(|_| status == 200) {
                Some(existing) => {
                    ctx.logger.log(&format!("merge request !{} from {source} is open already", existing["iid"]));
                    existing.clone()
                }
                None => return Err(call.refused("branchName", "opening the merge request", 409, &merge)),
            }
        }
        _ => {
            return Err(call.refused(
                "branchName",
                &format!("opening a merge request from {source} into {base}"),
                status,
                &merge,
            ))
        }
    };
    Ok(json!({
        "mergeRequestUrl": merge["web_url"], "projectid": project_id,
        "projectPath": project["path_with_namespace"].as_str().unwrap_or(&target.spec.full_name()),
        "targetBranchName": base, "branchName": source.as_str(), "commitHash": published.commit_hash,
    }))
}
