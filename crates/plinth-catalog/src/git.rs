//! Git sources: shallow clones kept under the data directory and brought up
//! to date with the real `git` client. Also the URL forms used to match
//! webhook payloads to registered repositories.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

/// How long one git command may take before it is stopped.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

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

/// Clones or fetches `source` into `dir` and returns the checked-out commit.
/// Errors say what git said and how to fix it.
pub async fn sync(source: &GitSource, dir: &Path) -> Result<String, String> {
    if dir.join(".git").exists() {
        let refspec = source.branch.clone().unwrap_or_else(|| "HEAD".to_string());
        run(Some(dir), &["fetch", "--depth", "1", "--quiet", "origin", &refspec]).await?;
        run(Some(dir), &["reset", "--hard", "--quiet", "FETCH_HEAD"]).await?;
        run(Some(dir), &["clean", "-fdxq"]).await?;
    } else {
        if let Some(parent) = dir.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let staging = staging_dir(dir);
        let _ = tokio::fs::remove_dir_all(&staging).await;
        let url = clone_url(&source.url);
        let staging_str = staging.to_string_lossy().to_string();
        let mut args = vec!["clone", "--depth", "1", "--quiet", "--no-tags"];
        if let Some(branch) = &source.branch {
            args.extend(["--branch", branch.as_str()]);
        }
        args.extend([url.as_str(), staging_str.as_str()]);
        if let Err(error) = run(None, &args).await {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(error);
        }
        tokio::fs::rename(&staging, dir).await.map_err(|e| format!("cannot move the clone into place: {e}"))?;
    }
    let head = run(Some(dir), &["rev-parse", "HEAD"]).await?;
    Ok(head.trim().to_string())
}

fn staging_dir(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".cloning");
    dir.with_file_name(name)
}

/// Local paths are cloned through `file://` so that `--depth` applies.
fn clone_url(url: &str) -> String {
    if url.starts_with('/') {
        format!("file://{url}")
    } else {
        url.to_string()
    }
}

async fn run(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=15")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(GIT_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(format!("cannot run git ({error}); install git and make sure it is on PATH")),
        Err(_) => {
            return Err(format!("`git {}` took longer than {}s and was stopped", args.join(" "), GIT_TIMEOUT.as_secs()))
        }
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).to_string())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string();
        Err(format!(
            "`git {}` failed: {detail}; check that the repository URL and branch are right and reachable from this server",
            args.first().unwrap_or(&"")
        ))
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
