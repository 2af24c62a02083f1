//! Paths from user input, confined to a root directory.
//!
//! A [`Root`] is a canonicalised directory. Two ways in:
//!
//! - [`Root::resolve`] is for *reading* what a source names (Location
//!   targets, `$text`/`$json`/`$yaml` placeholders, a path inside a git
//!   checkout): relative to the naming file's directory, `..` allowed while
//!   the result stays inside, absolute paths allowed only inside, and the
//!   canonical result (every symbolic link followed) must be inside too.
//! - [`Root::join_strict`] is for *writing* (a golden-path workspace, a
//!   repository root): no `..`, no absolute path, and no symbolic link on
//!   the way at all.
//!
//! Either way, a path that leaves the root is an error that names the path,
//! the root and how it tried to leave.

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(
        "`{target}` is an absolute path outside {root}; write it relative to the file that names it, inside {root}"
    )]
    AbsoluteOutside { target: String, root: PathBuf },
    #[error("`{target}` uses `..` to leave {root}; paths must stay inside it")]
    ParentEscape { target: String, root: PathBuf },
    #[error("`{target}` leads through a symbolic link to {resolved}, outside {root}; links must stay inside it")]
    SymlinkEscape { target: String, resolved: PathBuf, root: PathBuf },
    #[error("`{target}` contains `..`; paths must stay inside {within}")]
    Parent { target: String, within: String },
    #[error("`{target}` is absolute; use a path relative to {within}")]
    Absolute { target: String, within: String },
    #[error("`{target}` goes through a symbolic link; links are not followed here")]
    Symlink { target: String },
    #[error("`{target}` contains a NUL byte")]
    Nul { target: String },
    #[error("cannot use {path} as a root: {source}")]
    Root { path: PathBuf, source: std::io::Error },
}

/// A directory that paths from user input must stay inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// The root at `dir`, canonicalised; `dir` must exist.
    pub fn new(dir: &Path) -> Result<Root, PathError> {
        let path = dir.canonicalize().map_err(|source| PathError::Root { path: dir.to_path_buf(), source })?;
        if !path.is_dir() {
            let source = std::io::Error::other("not a directory");
            return Err(PathError::Root { path, source });
        }
        Ok(Root { path })
    }

    /// The canonical directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `path` (taken as it is, without resolving links) lies inside
    /// the root. For checks that need links resolved, use [`Root::check`].
    pub fn contains_lexically(&self, path: &Path) -> bool {
        normalize(path).starts_with(&self.path)
    }

    /// Resolves `target`, written in a file whose directory is `base`, for
    /// reading. Returns the canonical path when the target exists, else the
    /// normalised path (whose nearest existing ancestor is inside the root),
    /// so the caller reports "not found" in its own words.
    pub fn resolve(&self, base: &Path, target: &str) -> Result<PathBuf, PathError> {
        if target.contains('\0') {
            return Err(PathError::Nul { target: target.to_string() });
        }
        let written = Path::new(target);
        let joined = if written.is_absolute() { written.to_path_buf() } else { base.join(written) };
        let lexical = normalize(&joined);
        if !lexical.starts_with(&self.path) {
            // The same place written through another name of the root
            // (a link above it, a relative base) is still inside.
            if let Ok(resolved) = lexical.canonicalize() {
                if resolved.starts_with(&self.path) {
                    return Ok(resolved);
                }
            }
            return Err(if written.is_absolute() {
                PathError::AbsoluteOutside { target: target.to_string(), root: self.path.clone() }
            } else {
                PathError::ParentEscape { target: target.to_string(), root: self.path.clone() }
            });
        }
        self.check_as(&lexical, target)
    }

    /// Checks that an existing `path` is inside the root once every link is
    /// followed, returning its canonical form. A path that does not exist
    /// is checked through its nearest existing ancestor.
    pub fn check(&self, path: &Path) -> Result<PathBuf, PathError> {
        let target = path.to_string_lossy();
        let lexical = normalize(path);
        if !lexical.starts_with(&self.path) {
            return match path.canonicalize() {
                Ok(resolved) if resolved.starts_with(&self.path) => Ok(resolved),
                _ => Err(PathError::ParentEscape { target: target.into_owned(), root: self.path.clone() }),
            };
        }
        self.check_as(&lexical, &target)
    }

    fn check_as(&self, lexical: &Path, target: &str) -> Result<PathBuf, PathError> {
        let mut existing = lexical;
        let resolved = loop {
            match existing.canonicalize() {
                Ok(resolved) => break resolved,
                Err(_) => match existing.parent() {
                    Some(parent) => existing = parent,
                    None => return Ok(lexical.to_path_buf()),
                },
            }
        };
        if !resolved.starts_with(&self.path) {
            return Err(PathError::SymlinkEscape { target: target.to_string(), resolved, root: self.path.clone() });
        }
        if existing == lexical {
            Ok(resolved)
        } else {
            Ok(lexical.to_path_buf())
        }
    }

    /// Joins `relative` onto the root for writing: an absolute path, a `..`
    /// component or a symbolic link anywhere on the way is refused.
    pub fn join_strict(&self, relative: &str) -> Result<PathBuf, PathError> {
        join_strict(&self.path, relative)
    }
}

/// [`Root::join_strict`] on a directory that need not exist yet (a run's
/// workspace before its first file).
pub fn join_strict(root: &Path, relative: &str) -> Result<PathBuf, PathError> {
    let relative = relative.trim();
    if relative.contains('\0') {
        return Err(PathError::Nul { target: relative.to_string() });
    }
    let mut out = root.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                if out.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(PathError::Symlink { target: relative.to_string() });
                }
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(PathError::Parent { target: relative.to_string(), within: root.display().to_string() })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(PathError::Absolute { target: relative.to_string(), within: root.display().to_string() })
            }
        }
    }
    Ok(out)
}

const RELATIVE: &str = "the folder it is relative to";

/// Checks, without touching the file system, that `relative` is a path
/// that cannot leave the folder it is joined to: not absolute, no `..`.
pub fn check_relative(relative: &str) -> Result<(), PathError> {
    if relative.contains('\0') {
        return Err(PathError::Nul { target: relative.to_string() });
    }
    for component in Path::new(relative.trim()).components() {
        match component {
            Component::ParentDir => {
                return Err(PathError::Parent { target: relative.to_string(), within: RELATIVE.into() })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(PathError::Absolute { target: relative.to_string(), within: RELATIVE.into() })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes `.` and `..` without touching the file system (`..` at the top
/// stays at the top).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(root_dir.join("a/b")).unwrap();
        std::fs::write(root_dir.join("a/b/file.yaml"), "x").unwrap();
        std::fs::write(root_dir.join("top.yaml"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let root = Root::new(&root_dir).unwrap();
        (dir, root)
    }

    #[test]
    fn relative_paths_inside_resolve() {
        let (_dir, root) = fixture();
        let base = root.path().join("a/b");
        assert_eq!(root.resolve(&base, "file.yaml").unwrap(), root.path().join("a/b/file.yaml"));
        assert_eq!(root.resolve(&base, "./file.yaml").unwrap(), root.path().join("a/b/file.yaml"));
        assert_eq!(root.resolve(&base, "../../top.yaml").unwrap(), root.path().join("top.yaml"));
        let inside = root.path().join("top.yaml");
        assert_eq!(root.resolve(&base, &inside.to_string_lossy()).unwrap(), inside);
        // Missing files inside are not refused (the reader reports them).
        assert_eq!(root.resolve(&base, "missing.yaml").unwrap(), root.path().join("a/b/missing.yaml"));
    }

    #[test]
    fn escapes_are_refused_with_the_way_out() {
        let (dir, root) = fixture();
        let base = root.path().join("a/b");
        let error = root.resolve(&base, "/etc/passwd").unwrap_err();
        assert!(matches!(error, PathError::AbsoluteOutside { .. }), "{error}");
        assert!(error.to_string().contains("/etc/passwd"), "{error}");
        let error = root.resolve(&base, "../../../secret").unwrap_err();
        assert!(matches!(error, PathError::ParentEscape { .. }), "{error}");
        let error = root.resolve(&base, "../../../../../../../../etc/hostname").unwrap_err();
        assert!(matches!(error, PathError::ParentEscape { .. }), "{error}");
        let error = root.resolve(&base, "/proc/self/environ").unwrap_err();
        assert!(matches!(error, PathError::AbsoluteOutside { .. }), "{error}");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), root.path().join("link")).unwrap();
            std::os::unix::fs::symlink(dir.path(), root.path().join("dirlink")).unwrap();
            let error = root.resolve(root.path(), "link").unwrap_err();
            assert!(matches!(error, PathError::SymlinkEscape { .. }), "{error}");
            let error = root.resolve(root.path(), "dirlink/secret").unwrap_err();
            assert!(matches!(error, PathError::SymlinkEscape { .. }), "{error}");
            // Through a link to a directory outside, even to a file that does not exist.
            let error = root.resolve(root.path(), "dirlink/nothing-here").unwrap_err();
            assert!(matches!(error, PathError::SymlinkEscape { .. }), "{error}");
            // A link that stays inside is fine.
            std::os::unix::fs::symlink(root.path().join("top.yaml"), root.path().join("inner")).unwrap();
            assert_eq!(root.resolve(root.path(), "inner").unwrap(), root.path().join("top.yaml"));
        }
        assert!(matches!(root.resolve(&base, "a\0b").unwrap_err(), PathError::Nul { .. }));
        let error = root.check(&root.path().join("a/../../secret")).unwrap_err();
        assert!(matches!(error, PathError::ParentEscape { .. }), "{error}");
        assert_eq!(root.check(&root.path().join("a/../top.yaml")).unwrap(), root.path().join("top.yaml"));
    }

    #[test]
    fn strict_joins_refuse_parents_absolutes_and_links() {
        let (dir, root) = fixture();
        assert_eq!(root.join_strict("a/new.txt").unwrap(), root.path().join("a/new.txt"));
        assert!(root.join_strict("../x").unwrap_err().to_string().contains(".."));
        assert!(root.join_strict("a/../../x").unwrap_err().to_string().contains(".."));
        assert!(root.join_strict("/etc/x").unwrap_err().to_string().contains("absolute"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), root.path().join("out")).unwrap();
            assert!(root.join_strict("out/x").unwrap_err().to_string().contains("symbolic link"));
        }
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(normalize(Path::new("/../../etc")), PathBuf::from("/etc"));
    }
}
