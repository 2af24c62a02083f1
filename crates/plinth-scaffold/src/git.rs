//! `publish:git` with the real `git` client: a new repository gets its first
//! commit on the default branch; an existing one gets a new branch, ready
//! for review, pushed next to its other branches.

use crate::run::Logger;
use crate::workspace::{list_files, resolve_within};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

pub struct PublishRequest {
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
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
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
pub enum Destination {
    Local(PathBuf),
    Remote(String),
}

impl Destination {
    pub fn resolve(repo_url: &str, root: &Path) -> Result<Destination, String> {
        let url = repo_url.trim();
        if url.starts_with("git@") || (url.contains("://") && !url.starts_with("file://")) {
            if url.starts_with("ext::") || url.contains("--upload-pack") {
                return Err(format!("`{url}` is not a repository URL"));
            }
            return Ok(Destination::Remote(url.to_string()));
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.starts_with('-') {
            return Err(format!("`{url}` is not a repository path"));
        }
        let root_canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let candidate = Path::new(path);
        if candidate.is_absolute() {
            let absolute = candidate.to_path_buf();
            let mut existing = absolute.as_path();
            // The deepest part that exists, resolved, must be inside the root.
            while !existing.exists() {
                existing = existing.parent().unwrap_or(Path::new("/"));
            }
            let resolved = existing.canonicalize().map_err(|e| e.to_string())?;
            if !resolved.starts_with(&root_canonical) || absolute.components().any(|c| c.as_os_str() == "..") {
                return Err(format!(
                    "`{url}` is outside the repository root {}; local repositories must live there (pass a relative path, or start the server with --scaffolder-repo-root)",
                    root_canonical.display()
                ));
            }
            return Ok(Destination::Local(absolute));
        }
        let local = resolve_within(&root_canonical, path).map_err(|e| format!("repoUrl {e}"))?;
        Ok(Destination::Local(local))
    }

    /// What git is given.
    fn git_target(&self) -> String {
        match self {
            Destination::Local(path) => path.to_string_lossy().to_string(),
            Destination::Remote(url) => url.clone(),
        }
    }

    /// What people see (outputs, logs): credentials in a URL hidden.
    pub fn display(&self) -> String {
        hide_credentials(&self.git_target())
    }
}

/// `https://user:token@host/…` → `https://***@host/…`, anywhere in `text`.
pub fn hide_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme + 3);
        out.push_str(head);
        let authority_end = tail.find(|c: char| c == '/' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..authority_end]);
            }
            None => out.push_str(&tail[..authority_end]),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

pub async fn publish(
    destination: &Destination,
    request: &PublishRequest,
    logger: &Logger,
) -> Result<Published, String> {
    let existing = match destination {
        Destination::Local(path) => {
            path.join(".git").exists() || (path.join("HEAD").is_file() && path.join("objects").is_dir())
        }
        Destination::Remote(url) => !git(None, &["ls-remote", "--heads", "--", url], request).await?.trim().is_empty(),
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
) -> Result<Published, String> {
    let branch = request.default_branch.clone();
    check_branch_name(&branch)?;
    let repo = match destination {
        Destination::Local(path) => {
            if path.exists() && std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(false) {
                return Err(format!(
                    "{} exists and is not a git repository; choose another repository name or remove it",
                    path.display()
                ));
            }
            path.clone()
        }
        Destination::Remote(_) => staging.to_path_buf(),
    };
    std::fs::create_dir_all(&repo).map_err(|e| format!("cannot create {}: {e}", repo.display()))?;
    git(Some(&repo), &["init", "--quiet", "-b", &branch], request).await?;
    copy_tree(&request.source, &repo.join(request.target_path.trim_start_matches("./")))?;
    git(Some(&repo), &["add", "--all"], request).await?;
    git(Some(&repo), &["commit", "--quiet", "-m", &request.message], request).await?;
    if let Destination::Remote(url) = destination {
        git(Some(&repo), &["push", "--quiet", "--", url, &format!("HEAD:refs/heads/{branch}")], request).await?;
    }
    let commit = git(Some(&repo), &["rev-parse", "HEAD"], request).await?.trim().to_string();
    logger.log(&format!(
        "created repository {} with commit {} on {branch}",
        destination.display(),
        &commit[..8.min(commit.len())]
    ));
    Ok(published(destination, branch, commit, true))
}

async fn publish_branch(
    destination: &Destination,
    request: &PublishRequest,
    staging: &Path,
    logger: &Logger,
) -> Result<Published, String> {
    let branch = request.branch.clone().unwrap_or_else(|| request.review_branch.clone());
    check_branch_name(&branch)?;
    let source = destination.display();
    let target = destination.git_target();
    git(None, &["clone", "--quiet", "--depth", "1", "--", &target, &staging.to_string_lossy()], request).await?;
    git(Some(staging), &["checkout", "--quiet", "-b", &branch], request).await?;
    copy_tree(&request.source, &staging.join(request.target_path.trim_start_matches("./")))?;
    git(Some(staging), &["add", "--all"], request).await?;
    if git(Some(staging), &["status", "--porcelain"], request).await?.trim().is_empty() {
        return Err(format!("{source} already holds exactly these files; there is nothing to commit"));
    }
    git(Some(staging), &["commit", "--quiet", "-m", &request.message], request).await?;
    git(Some(staging), &["push", "--quiet", "origin", &format!("HEAD:refs/heads/{branch}")], request).await?;
    let commit = git(Some(staging), &["rev-parse", "HEAD"], request).await?.trim().to_string();
    logger.log(&format!(
        "pushed branch {branch} to {source} ({}); open a pull/merge request from it",
        &commit[..8.min(commit.len())]
    ));
    Ok(published(destination, branch, commit, false))
}

fn published(destination: &Destination, branch: String, commit_hash: String, created: bool) -> Published {
    let remote_url = destination.display();
    Published { repo_contents_url: format!("{remote_url}/blob/{branch}"), remote_url, commit_hash, branch, created }
}

fn check_branch_name(branch: &str) -> Result<(), String> {
    let bad = branch.is_empty()
        || branch.starts_with('-')
        || branch.contains("..")
        || branch.chars().any(|c| c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(format!("`{branch}` is not a valid branch name"));
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for (relative, absolute) in list_files(from) {
        let destination = to.join(&relative);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::copy(&absolute, &destination).map_err(|e| format!("cannot copy {relative}: {e}"))?;
    }
    Ok(())
}

/// Runs git with the run's identity, no prompts and no user configuration
/// that could sign or rewrite the commit.
async fn git(dir: Option<&Path>, args: &[&str], request: &PublishRequest) -> Result<String, String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .args(["-c", &format!("user.name={}", request.author_name)])
        .args(["-c", &format!("user.email={}", request.author_email)])
        .args(["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .kill_on_drop(true);
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("git {} took longer than {}s and was stopped", args[0], GIT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot run git ({e}); is git installed?"))?;
    if !output.status.success() {
        let said = hide_credentials(String::from_utf8_lossy(&output.stderr).trim());
        return Err(format!("git {} failed: {said}", args[0]));
    }
    Ok(String::from_utf8_lossy(&output.stdout).to_string())
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
        assert!(Destination::resolve("/etc/shop", root.path()).unwrap_err().contains("outside the repository root"));
        assert!(Destination::resolve("../shop", root.path()).is_err());
        assert!(Destination::resolve("--upload-pack=x", root.path()).is_err());
        let remote = Destination::resolve("https://bot:t0ken@git.example.com/o/r.git", root.path()).unwrap();
        assert_eq!(remote.display(), "https://***@git.example.com/o/r.git");
        assert_eq!(
            hide_credentials("fatal: https://a:b@h/x failed; ssh://git@h2/y"),
            "fatal: https://***@h/x failed; ssh://***@h2/y"
        );
        assert_eq!(
            Destination::resolve("https://git.example.com/o/r.git", root.path()).unwrap(),
            Destination::Remote("https://git.example.com/o/r.git".into())
        );
    }
}
