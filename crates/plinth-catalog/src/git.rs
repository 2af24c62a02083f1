//! Git sources: shallow clones kept under the data directory and brought up
//! to date with the real `git` client. Also the URL forms used to match
//! webhook payloads to registered repositories.

use plinth_confine::git::{GitCommand, GitError, GitRef, GitUrl};
use plinth_confine::path::{PathError, Root};
use std::path::{Path, PathBuf};

/// A repository location: a URL (or local path) and a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    pub url: String,
    pub branch: Option<String>,
    /// A file or folder inside the repository to read (default: the whole
    /// repository, every `catalog-info.yaml`).
    pub path: Option<String>,
}

impl GitSource {
    /// Parses a stored target: `URL[#path]`.
    pub fn from_target(target: &str, branch: Option<&str>) -> GitSource {
        let (url, path) = match target.split_once('#') {
            Some((url, path)) if !path.is_empty() => (url.to_string(), Some(path.trim_start_matches('/').to_string())),
            _ => (target.trim_end_matches('#').to_string(), None),
        };
        GitSource { url, branch: branch.map(str::to_string), path }
    }

    /// Directory name of the checkout: stable per URL and branch.
    pub fn checkout_name(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}#{}", self.url, self.branch.as_deref().unwrap_or("")));
        hex::encode(&digest[..8])
    }

    /// A web link to a file in the repository at a revision, when the URL
    /// looks like a forge's (`https://host/org/repo(.git)`); otherwise the
    /// git URL with the path.
    pub fn link_to(&self, relative: &str, revision: &str) -> String {
        let base = self.url.trim_end_matches('/').trim_end_matches(".git");
        if base.starts_with("http://") || base.starts_with("https://") {
            format!("url:{base}/blob/{revision}/{relative}")
        } else {
            format!("url:{}#{revision}:{relative}", self.url)
        }
    }
}

/// Lower-case, scheme- and `.git`-less form of a repository URL, so
/// `https://github.com/Org/Repo.git`, `git@github.com:org/repo` and
/// `ssh://git@github.com/org/repo` compare equal.
pub fn normalize_repo_url(url: &str) -> String {
    let mut s = url.trim().to_lowercase();
    for prefix in ["git+", "https://", "http://", "ssh://", "git://", "file://"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
        }
    }
    if let Some((user, rest)) = s.split_once('@') {
        if !user.contains('/') {
            s = rest.to_string();
        }
    }
    if let Some((host, rest)) = s.split_once(':') {
        if !host.contains('/') && !rest.starts_with("//") && !rest.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            s = format!("{host}/{rest}");
        }
    }
    s.trim_end_matches('/').trim_end_matches(".git").trim_end_matches('/').to_string()
}

impl GitSource {
    /// The URL and branch, validated: what git is given can never be read
    /// as an option, and only allowed transports are used.
    pub fn validate(&self) -> Result<(GitUrl, Option<GitRef>), GitError> {
        let url = GitUrl::parse(&self.url)?;
        let branch = self.branch.as_deref().map(GitRef::parse).transpose()?;
        Ok((url, branch))
    }

    /// The folder `#path` names inside a checkout, confined to it.
    pub fn subdir(&self, checkout: &Path) -> Result<PathBuf, SyncError> {
        let Some(path) = &self.path else { return Ok(checkout.to_path_buf()) };
        let in_path =
            |source| SyncError::Path { url: GitUrl::parse(&self.url).map(|u| u.display()).unwrap_or_default(), source };
        let root = Root::new(checkout).map_err(in_path)?;
        let root_path = root.path().to_path_buf();
        root.resolve(&root_path, path).map_err(in_path)
    }
}

/// Clones or fetches `source` into `dir` and returns the checked-out commit.
/// Errors say what git said and how to fix it.
pub async fn sync(source: &GitSource, dir: &Path) -> Result<String, SyncError> {
    let (url, branch) = source.validate()?;
    if dir.join(".git").exists() {
        let fetch = GitCommand::new("fetch")
            .current_dir(dir)
            .arg("--depth=1")
            .arg("--quiet")
            .arg("--no-tags")
            .allow(url.transport())
            .operand("origin");
        let fetch = match &branch {
            Some(branch) => fetch.operand(branch.as_str()),
            None => fetch.operand("HEAD"),
        };
        run(fetch).await?;
        run(GitCommand::new("reset").current_dir(dir).arg("--hard").arg("--quiet").arg("FETCH_HEAD")).await?;
        run(GitCommand::new("clean").current_dir(dir).arg("-f").arg("-d").arg("-x").arg("--quiet")).await?;
    } else {
        if let Some(parent) = dir.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| SyncError::Io { what: format!("cannot create {}", parent.display()), source })?;
        }
        let staging = staging_dir(dir);
        let _ = tokio::fs::remove_dir_all(&staging).await;
        let mut clone = GitCommand::new("clone").arg("--depth=1").arg("--quiet").arg("--no-tags");
        if let Some(branch) = &branch {
            clone = clone.value("--branch", branch.as_str());
        }
        let clone = clone.remote(&clone_url(url)?).operand(&staging);
        if let Err(error) = run(clone).await {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(error);
        }
        tokio::fs::rename(&staging, dir)
            .await
            .map_err(|source| SyncError::Io { what: "cannot move the clone into place".into(), source })?;
    }
    let head = run(GitCommand::new("rev-parse").current_dir(dir).arg("HEAD")).await?;
    Ok(head.trim().to_string())
}

fn staging_dir(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".cloning");
    dir.with_file_name(name)
}

/// Local paths are cloned through `file://` so that `--depth` applies.
fn clone_url(url: GitUrl) -> Result<GitUrl, GitError> {
    if url.as_str().starts_with('/') {
        GitUrl::parse(&format!("file://{}", url.as_str()))
    } else {
        Ok(url)
    }
}

async fn run(command: GitCommand) -> Result<String, SyncError> {
    Ok(command.run().await?)
}

/// Why a git source could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("`git {command}` failed: {said}; check that the repository URL and branch are right and reachable from this server")]
    Failed { command: String, said: String },
    #[error(transparent)]
    Git(GitError),
    #[error("the path after `#` in {url}: {source}")]
    Path { url: String, source: PathError },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl From<GitError> for SyncError {
    fn from(error: GitError) -> Self {
        match error {
            GitError::Failed { command, said } => SyncError::Failed { command, said },
            other => SyncError::Git(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls_normalize_to_one_form() {
        let forms = [
            "https://github.com/Org/Repo.git",
            "https://github.com/org/repo",
            "git@github.com:org/repo.git",
            "ssh://git@github.com/org/repo",
            "http://github.com/org/repo/",
        ];
        for form in forms {
            assert_eq!(normalize_repo_url(form), "github.com/org/repo", "{form}");
        }
        assert_eq!(normalize_repo_url("/srv/git/repo.git"), "/srv/git/repo");
        assert_eq!(normalize_repo_url("file:///srv/git/repo"), "/srv/git/repo");
        assert_eq!(normalize_repo_url("https://host:8443/a/b.git"), "host:8443/a/b");
    }

    #[test]
    fn targets_and_links() {
        let s = GitSource::from_target("https://github.com/org/repo.git#catalog/all.yaml", Some("main"));
        assert_eq!(s.url, "https://github.com/org/repo.git");
        assert_eq!(s.path.as_deref(), Some("catalog/all.yaml"));
        assert_eq!(
            s.link_to("a/catalog-info.yaml", "main"),
            "url:https://github.com/org/repo/blob/main/a/catalog-info.yaml"
        );
    }
}
