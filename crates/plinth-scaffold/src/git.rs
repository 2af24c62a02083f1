//! `publish:git` with the real `git` client: a new repository gets its first
//! commit on the default branch; an existing one gets a new branch, ready
//! for review, pushed next to its other branches.

use crate::error::ScaffoldError;
use crate::log::Logger;
use crate::workspace::list_files;
use plinth_confine::git::{GitCommand, GitRef, GitUrl, Transport};
use plinth_confine::path::{join_strict, PathError, Root};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub(crate) struct PublishRequest {
    pub repo_url: String,
    pub default_branch: String,
    /// Branch for an existing repository (default `review_branch`).
    pub branch: Option<String>,
    /// Workspace directory to publish.
    pub source: PathBuf,
    /// Directory inside the repository.
    pub target_path: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    pub review_branch: String,
    /// Branch of an existing repository the new branch starts from
    /// (default: its default branch).
    pub base_branch: Option<String>,
    /// `Authorization: …` header git sends over https (a forge token);
    /// given to git in its environment, never on its command line.
    pub auth_header: Option<SecretString>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Published {
    pub remote_url: String,
    pub repo_contents_url: String,
    pub commit_hash: String,
    pub branch: String,
    /// True when the repository was created by this run.
    pub created: bool,
}

/// Where to publish: a local path (always under the repository root) or a
/// remote URL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Destination {
    Local(PathBuf),
    Remote(GitUrl),
}

impl Destination {
    pub(crate) fn resolve(repo_url: &str, root: &Path) -> Result<Destination, ScaffoldError> {
        let url = repo_url.trim();
        if url.starts_with('-') {
            return Err(ScaffoldError::Input(format!("`{url}` is not a repository URL or path: it starts with `-`")));
        }
        let remote = url.starts_with("git@") || (url.contains("://") && !url.starts_with("file://"));
        if remote || url.contains("::") {
            return GitUrl::parse(url).map(Destination::Remote).map_err(|e| ScaffoldError::from(e).context("repoUrl"));
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(root).map_err(ScaffoldError::io("cannot create the repository root"))?;
        let root = Root::new(root)?;
        let outside = |_| {
            ScaffoldError::Input(format!(
                "`{url}` is outside the repository root {}; local repositories must live there (pass a relative path, or start the server with --scaffolder-repo-root)",
                root.path().display()
            ))
        };
        if Path::new(path).is_absolute() {
            return root.resolve(root.path(), path).map(Destination::Local).map_err(outside);
        }
        join_strict(root.path(), path)
            .map(Destination::Local)
            .map_err(|e: PathError| ScaffoldError::from(e).context("repoUrl"))
    }

    /// What people see (outputs, logs): credentials in a URL hidden.
    pub(crate) fn display(&self) -> String {
        match self {
            Destination::Local(path) => path.to_string_lossy().into_owned(),
            Destination::Remote(url) => url.display(),
        }
    }

    /// The transport git uses to reach it.
    fn transport(&self) -> Transport {
        match self {
            Destination::Local(_) => Transport::File,
            Destination::Remote(url) => url.transport(),
        }
    }

    /// The destination as a clone/push operand.
    fn operand(&self) -> std::ffi::OsString {
        match self {
            Destination::Local(path) => path.as_os_str().to_os_string(),
            Destination::Remote(url) => url.as_str().into(),
        }
    }
}

pub(crate) async fn publish(
    destination: &Destination,
    request: &PublishRequest,
    logger: &Logger,
) -> Result<Published, ScaffoldError> {
    let existing = match destination {
        Destination::Local(path) => {
            path.join(".git").exists() || (path.join("HEAD").is_file() && path.join("objects").is_dir())
        }
        Destination::Remote(url) => !run(git(request, "ls-remote").arg("--heads").remote(url)).await?.trim().is_empty(),
    };
    let staging = request.source.with_extension("publish");
    let _ = std::fs::remove_dir_all(&staging);
    let result = if existing {
        publish_branch(destination, request, &staging, logger).await
    } else {
        publish_new(destination, request, &staging, logger).await
    };
    let _ = std::fs::remove_dir_all(&staging);
    result
}

async fn publish_new(
    destination: &Destination,
    request: &PublishRequest,
    staging: &Path,
    logger: &Logger,
) -> Result<Published, ScaffoldError> {
    let branch = branch_name(&request.default_branch, "defaultBranch")?;
    let repo = match destination {
        Destination::Local(path) => {
            if path.exists() && std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(false) {
                return Err(ScaffoldError::Publish(format!(
                    "{} exists and is not a git repository; choose another repository name or remove it",
                    path.display()
                )));
            }
            path.clone()
        }
        Destination::Remote(_) => staging.to_path_buf(),
    };
    std::fs::create_dir_all(&repo).map_err(ScaffoldError::io(format!("cannot create {}", repo.display())))?;
    run(git(request, "init").current_dir(&repo).arg("--quiet").value("--initial-branch", branch.as_str())).await?;
    copy_tree(&request.source, &repo, &request.target_path)?;
    run(git(request, "add").current_dir(&repo).arg("--all")).await?;
    run(git(request, "commit").current_dir(&repo).arg("--quiet").value("--message", &request.message)).await?;
    if let Destination::Remote(url) = destination {
        let refspec = format!("HEAD:refs/heads/{branch}");
        run(git(request, "push").current_dir(&repo).arg("--quiet").remote(url).operand(refspec)).await?;
    }
    let commit = run(git(request, "rev-parse").current_dir(&repo).arg("HEAD")).await?.trim().to_string();
    logger.log(&format!(
        "created repository {} with commit {} on {branch}",
        destination.display(),
        &commit[..8.min(commit.len())]
    ));
    Ok(published(destination, branch.to_string(), commit, true))
}

async fn publish_branch(
    destination: &Destination,
    request: &PublishRequest,
    staging: &Path,
    logger: &Logger,
) -> Result<Published, ScaffoldError> {
    let branch = match &request.branch {
        Some(branch) => branch_name(branch, "branch")?,
        None => branch_name(&request.review_branch, "branch")?,
    };
    let source = destination.display();
    let transport = destination.transport();
    let mut clone = git(request, "clone").arg("--quiet").arg("--depth=1");
    if let Some(base) = &request.base_branch {
        clone = clone.value("--branch", branch_name(base, "targetBranchName")?.as_str());
    }
    run(clone.allow(transport).operand(destination.operand()).operand(staging)).await?;
    let base = run(git(request, "rev-parse").current_dir(staging).arg("--abbrev-ref").arg("HEAD")).await?;
    let base = base.trim().to_string();
    run(git(request, "switch").current_dir(staging).arg("--quiet").value("--create", branch.as_str())).await?;
    copy_tree(&request.source, staging, &request.target_path)?;
    run(git(request, "add").current_dir(staging).arg("--all")).await?;
    if run(git(request, "status").current_dir(staging).arg("--porcelain")).await?.trim().is_empty() {
        // The repository already holds exactly these files: a run started
        // again after an earlier one published and was cut off. Publishing
        // the same content again succeeds without a new commit.
        let commit = run(git(request, "rev-parse").current_dir(staging).arg("HEAD")).await?.trim().to_string();
        logger.log(&format!(
            "{source} already holds exactly these files on {base} ({}); nothing new to commit",
            &commit[..8.min(commit.len())]
        ));
        return Ok(published(destination, base, commit, false));
    }
    run(git(request, "commit").current_dir(staging).arg("--quiet").value("--message", &request.message)).await?;
    let remote_ref = format!("refs/heads/{branch}");
    let listed =
        run(git(request, "ls-remote").current_dir(staging).allow(transport).operand("origin").operand(&remote_ref))
            .await?;
    if !listed.trim().is_empty() {
        // The branch is there already: the same files mean an earlier run
        // pushed it before it was cut off; other files are a conflict.
        run(git(request, "fetch")
            .current_dir(staging)
            .arg("--quiet")
            .arg("--depth=1")
            .allow(transport)
            .operand("origin")
            .operand(&remote_ref))
        .await?;
        let theirs = run(git(request, "rev-parse").current_dir(staging).arg("FETCH_HEAD^{tree}")).await?;
        let ours = run(git(request, "rev-parse").current_dir(staging).arg("HEAD^{tree}")).await?;
        if theirs.trim() != ours.trim() {
            return Err(ScaffoldError::Publish(format!(
                "{source} already has a branch {branch} with other files; choose another branch name, or delete that branch"
            )));
        }
        let commit = run(git(request, "rev-parse").current_dir(staging).arg("FETCH_HEAD")).await?.trim().to_string();
        logger.log(&format!(
            "{source} already has branch {branch} with exactly these files ({})",
            &commit[..8.min(commit.len())]
        ));
        return Ok(published(destination, branch.to_string(), commit, false));
    }
    let refspec = format!("HEAD:{remote_ref}");
    run(git(request, "push").current_dir(staging).arg("--quiet").allow(transport).operand("origin").operand(refspec))
        .await?;
    let commit = run(git(request, "rev-parse").current_dir(staging).arg("HEAD")).await?.trim().to_string();
    logger.log(&format!(
        "pushed branch {branch} to {source} ({}); open a pull/merge request from it",
        &commit[..8.min(commit.len())]
    ));
    Ok(published(destination, branch.to_string(), commit, false))
}

fn published(destination: &Destination, branch: String, commit_hash: String, created: bool) -> Published {
    let remote_url = destination.display();
    Published { repo_contents_url: format!("{remote_url}/blob/{branch}"), remote_url, commit_hash, branch, created }
}

fn branch_name(name: &str, field: &str) -> Result<GitRef, ScaffoldError> {
    GitRef::parse(name).map_err(|e| ScaffoldError::from(e).context(field))
}

/// Copies the workspace files into `repo` under `target_path`, never
/// through a link or out of the repository (a cloned repository may hold
/// links of its own).
fn copy_tree(from: &Path, repo: &Path, target_path: &str) -> Result<(), ScaffoldError> {
    let target = join_strict(repo, target_path.trim_start_matches("./"))
        .map_err(|e| ScaffoldError::from(e).context("targetPath"))?;
    for (relative, absolute) in list_files(from) {
        let destination = join_strict(&target, &relative)
            .map_err(|e| ScaffoldError::from(e).context(format!("cannot publish {relative}")))?;
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .map_err(ScaffoldError::io(format!("cannot create {}", parent.display())))?;
        }
        std::fs::copy(&absolute, &destination).map_err(ScaffoldError::io(format!("cannot copy {relative}")))?;
    }
    Ok(())
}

/// git with the run's identity, no system configuration, and nothing that
/// could sign or rewrite the commit.
fn git(request: &PublishRequest, subcommand: &'static str) -> GitCommand {
    let command = GitCommand::new(subcommand)
        .config("user.name", &request.author_name)
        .config("user.email", &request.author_email)
        .config("commit.gpgsign", "false")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    match &request.auth_header {
        // Configuration from the environment: not visible in the process
        // list, and not part of any message git prints.
        Some(header) => command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", header.expose_secret()),
        None => command,
    }
}

async fn run(command: GitCommand) -> Result<String, ScaffoldError> {
    Ok(command.run().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_destinations_stay_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let canonical = root.path().canonicalize().unwrap();
        assert_eq!(Destination::resolve("shop", root.path()).unwrap(), Destination::Local(canonical.join("shop")));
        let inside = canonical.join("team/shop");
        assert_eq!(Destination::resolve(&inside.to_string_lossy(), root.path()).unwrap(), Destination::Local(inside));
        assert!(Destination::resolve("/etc/shop", root.path())
            .unwrap_err()
            .to_string()
            .contains("outside the repository root"));
        assert!(Destination::resolve("../shop", root.path()).is_err());
        for injected in ["--upload-pack=x", "-oProxyCommand=x", "ext::sh -c touch% /tmp/x", "ssh://-oProxyCommand=x/r"]
        {
            assert!(Destination::resolve(injected, root.path()).is_err(), "{injected}");
        }
        let remote = Destination::resolve("https://bot:t0ken@git.example.com/o/r.git", root.path()).unwrap();
        assert_eq!(remote.display(), "https://***@git.example.com/o/r.git");
        assert_eq!(
            Destination::resolve("https://git.example.com/o/r.git", root.path()).unwrap(),
            Destination::Remote(GitUrl::parse("https://git.example.com/o/r.git").unwrap())
        );
    }
}
