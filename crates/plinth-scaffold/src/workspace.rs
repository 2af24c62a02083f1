//! The run's workspace: a private directory that every path a template
//! writes is resolved inside. Absolute paths, `..` and symlinks are refused,
//! and the total size is bounded.

use crate::error::ScaffoldError;
use plinth_confine::PathError;
use std::path::{Path, PathBuf};

/// Bounds on what one run may write.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_files: 5_000, max_bytes: 64 * 1024 * 1024 }
    }
}

pub(crate) struct Workspace {
    root: PathBuf,
    limits: Limits,
    files: usize,
    bytes: u64,
}

impl Workspace {
    pub(crate) fn new(root: PathBuf, limits: Limits) -> Workspace {
        Workspace { root, limits, files: 0, bytes: 0 }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `relative` inside the workspace, or an error saying why not.
    pub(crate) fn resolve(&self, relative: &str) -> Result<PathBuf, PathError> {
        resolve_within(&self.root, relative)
    }

    /// Writes a file, creating directories, counting it against the limits.
    pub(crate) fn write(
        &mut self,
        relative: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<PathBuf, ScaffoldError> {
        let path = self.resolve(relative)?;
        self.files += 1;
        self.bytes += contents.len() as u64;
        if self.files > self.limits.max_files {
            return Err(ScaffoldError::Limit(format!(
                "the run wrote more than {} files; templates are limited to that",
                self.limits.max_files
            )));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(ScaffoldError::Limit(format!(
                "the run wrote more than {} MiB; templates are limited to that",
                self.limits.max_bytes / (1024 * 1024)
            )));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(ScaffoldError::io(format!("cannot create {}", parent.display())))?;
        }
        std::fs::write(&path, contents).map_err(ScaffoldError::io(format!("cannot write {relative}")))?;
        #[cfg(unix)]
        if executable {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        #[cfg(not(unix))]
        let _ = executable;
        Ok(path)
    }

    /// Every regular file, as (relative path with `/`, absolute path), sorted.
    pub(crate) fn files(&self) -> Vec<(String, PathBuf)> {
        list_files(&self.root)
    }
}

/// Joins `relative` onto `root`, refusing anything that could leave it: an
/// absolute path, a `..` component, or an existing symlink on the way.
pub(crate) fn resolve_within(root: &Path, relative: &str) -> Result<PathBuf, PathError> {
    plinth_confine::path::join_strict(root, relative)
}

/// Refuses, without touching the disk, a relative path that could leave the
/// folder it is joined to (absolute, or with `..`).
pub(crate) fn check_relative(relative: &str) -> Result<(), PathError> {
    plinth_confine::path::check_relative(relative)
}

/// Regular files under `root` (symlinks are not followed), sorted.
pub(crate) fn list_files(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.path().components().any(|c| c.as_os_str() == ".git"))
        .filter_map(|e| {
            let relative = e.path().strip_prefix(root).ok()?.to_string_lossy().replace('\\', "/");
            Some((relative, e.path().to_path_buf()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(resolve_within(root, "a/b.txt").is_ok());
        assert!(resolve_within(root, "./a").is_ok());
        assert!(resolve_within(root, "../x").unwrap_err().to_string().contains(".."));
        assert!(resolve_within(root, "a/../../x").unwrap_err().to_string().contains(".."));
        assert!(resolve_within(root, "/etc/passwd").unwrap_err().to_string().contains("absolute"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/tmp", root.join("link")).unwrap();
            assert!(resolve_within(root, "link/x").unwrap_err().to_string().contains("symbolic link"));
        }
    }

    #[test]
    fn limits_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let mut workspace = Workspace::new(dir.path().to_path_buf(), Limits { max_files: 2, max_bytes: 10 });
        workspace.write("a", b"12345", false).unwrap();
        assert!(workspace.write("b", b"123456", false).unwrap_err().to_string().contains("MiB"));
        let mut workspace = Workspace::new(dir.path().to_path_buf(), Limits { max_files: 1, max_bytes: 100 });
        workspace.write("a", b"1", false).unwrap();
        assert!(workspace.write("b", b"1", false).unwrap_err().to_string().contains("files"));
    }
}
