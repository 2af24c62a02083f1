//! Which sources a caller may register: file and directory locations only
//! under the roots an admin allows (`--allowed-location-root`), git URLs
//! only when a pattern allows them (`--allowed-git-url`). Paths are
//! checked after every link is followed, so `..` and symbolic links that
//! leave a root are refused.

use plinth_confine::Root;
use std::path::{Path, PathBuf};

/// The roots and URL patterns sources may come from.
#[derive(Debug, Clone, Default)]
pub struct SourcePolicy {
    /// Directories file locations must lie in.
    pub roots: Vec<PathBuf>,
    /// Git URL patterns (`*` matches any run of characters):
    /// `https://github.com/acme/*`.
    pub git_patterns: Vec<String>,
}

impl SourcePolicy {
    /// `Err` with what to do when `target` (a normalised location of
    /// `kind` `file` or `git`) is not allowed.
    pub fn check(&self, kind: &str, target: &str) -> Result<(), String> {
        let local = match kind {
            "git" => target.strip_prefix("file://").map(|p| p.split('#').next().unwrap_or(p).to_string()),
            _ => Some(target.to_string()),
        };
        match local {
            Some(path) => self.check_path(Path::new(&path)),
            None => self.check_url(target),
        }
    }

    fn check_path(&self, path: &Path) -> Result<(), String> {
        for root in &self.roots {
            if let Ok(root) = Root::new(root) {
                if root.check(path).is_ok() {
                    return Ok(());
                }
            }
        }
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        Err(if roots.is_empty() {
            format!(
                "`{}` is a path on the server, and no directory is open to registration; an admin can allow one with --allowed-location-root DIR",
                path.display()
            )
        } else {
            format!(
                "`{}` is outside the directories open to registration ({}); put the file there, or ask an admin to add --allowed-location-root",
                path.display(),
                roots.join(", ")
            )
        })
    }

    fn check_url(&self, url: &str) -> Result<(), String> {
        let base = url.split('#').next().unwrap_or(url);
        if self.git_patterns.iter().any(|p| glob_matches(p, base)) {
            return Ok(());
        }
        Err(format!(
            "git URL `{}` matches none of the allowed patterns ({}); an admin can add one with --allowed-git-url",
            plinth_confine::git::hide_credentials(base),
            if self.git_patterns.is_empty() { "none".to_string() } else { self.git_patterns.join(", ") }
        ))
    }
}

/// `*` matches any run of characters (including `/`); everything else
/// matches itself, ignoring ASCII case.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((first, rest)) = parts.split_first() else { return text.is_empty() };
    let Some(mut remaining) = text.strip_prefix(first) else { return false };
    let Some((last, middle)) = rest.split_last() else { return remaining.is_empty() };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_matches("https://github.com/acme/*", "https://github.com/acme/shop.git"));
        assert!(glob_matches("https://github.com/acme/*", "https://GitHub.com/acme/a/b.git"));
        assert!(!glob_matches("https://github.com/acme/*", "https://github.com/evil/acme/x.git"));
        assert!(glob_matches("*.git", "ssh://host/x.git"));
        assert!(!glob_matches("https://*.example/*", "https://example/x"));
        assert!(glob_matches("exact", "exact") && !glob_matches("exact", "exactly"));
    }

    #[test]
    fn paths_must_stay_in_a_root_after_links() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        let secret = dir.path().join("secret");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(allowed.join("ok.yaml"), "x").unwrap();
        std::fs::write(secret.join("passwd.yaml"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
        let policy = SourcePolicy { roots: vec![allowed.clone()], git_patterns: vec!["https://git.example/*".into()] };
        assert!(policy.check("file", &allowed.join("ok.yaml").to_string_lossy()).is_ok());
        let escape = format!("{}/../secret/passwd.yaml", allowed.display());
        assert!(policy.check("file", &escape).unwrap_err().contains("outside the directories"));
        #[cfg(unix)]
        assert!(policy.check("file", &allowed.join("link/passwd.yaml").to_string_lossy()).is_err(), "a link out");
        assert!(policy.check("file", "/etc/passwd").is_err());
        assert!(policy.check("git", "https://git.example/team/repo.git").is_ok());
        assert!(policy.check("git", "https://elsewhere.example/repo.git").unwrap_err().contains("--allowed-git-url"));
        let local_repo = format!("file://{}", secret.display());
        assert!(policy.check("git", &local_repo).is_err(), "a local repository is a path");
        assert!(SourcePolicy::default().check("file", "/tmp/x.yaml").unwrap_err().contains("--allowed-location-root"));
    }
}
