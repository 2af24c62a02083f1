//! The content Plinth ships with, compiled into the binary: the demo
//! catalogue (with its docs and its policy data), the golden-path templates,
//! the policy library and the example policy inputs. (The price table and
//! the portal's assets are compiled in where they are used.)
//!
//! Catalogue locations, template fetches and policy bundles read
//! directories, so the embedded trees are written out once per binary
//! version to a private directory and used from there:
//! `<root>/<version>-<digest>/{demo,templates,policies,policy-inputs}`. The
//! root is the server's data directory (`<data-dir>/shipped`) when `serve`
//! sets it, else `$PLINTH_SHIPPED_DIR`, `$XDG_CACHE_HOME/plinth`,
//! `~/.cache/plinth` or the temporary directory. A tree already written is
//! reused only when it holds exactly the embedded files, byte for byte (no
//! extra file, no symlink), so an edited or planted file never reaches the
//! policy engine; otherwise it is written again.
//!
//! Directories on disk override the embedded content:
//! `PLINTH_DEMO_DIR`, `PLINTH_TEMPLATES_DIR`, `PLINTH_POLICY_DIR` and
//! `PLINTH_POLICY_INPUTS_DIR` (and `serve --policy` for the policy library).

use include_dir::{include_dir, Dir, DirEntry};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static DEMO: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/demo");
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../templates");
static POLICIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../policies");
static POLICY_INPUTS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/policy-inputs");

/// The embedded trees and the sub-directory each is written to.
static TREES: [(&str, &Dir<'static>); 4] =
    [("demo", &DEMO), ("templates", &TEMPLATES), ("policies", &POLICIES), ("policy-inputs", &POLICY_INPUTS)];

/// Where the embedded trees are written, when a caller (serve) chose it.
static ROOT: OnceLock<PathBuf> = OnceLock::new();
/// The directory the trees were written to, once written.
static WRITTEN: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Writes the embedded content under `root` instead of the user's cache
/// directory. Takes effect only before the first use of any shipped
/// directory; returns false when too late or already set.
pub fn use_root(root: PathBuf) -> bool {
    let root = std::path::absolute(&root).unwrap_or(root);
    WRITTEN.get().is_none() && ROOT.set(root).is_ok()
}

/// The demo catalogue (`PLINTH_DEMO_DIR` overrides).
pub fn demo_dir() -> PathBuf {
    shipped("PLINTH_DEMO_DIR", "demo")
}

/// Policy data that belongs to the demo company only (its registries, its
/// teams' GPU quotas), layered over the neutral shipped defaults when the
/// demo runs. `None` when an overriding demo directory has none.
pub fn demo_policy_data_dir() -> Option<PathBuf> {
    let dir = demo_dir().join("policy-data");
    dir.is_dir().then_some(dir)
}

/// The policy sources used when none are given: the shipped library and,
/// for the demo, its company's data layered over the neutral defaults.
pub fn default_policy_sources(demo: bool) -> Vec<String> {
    let mut sources = vec![policies_dir()];
    if demo {
        sources.extend(demo_policy_data_dir());
    }
    sources.into_iter().map(|d| d.to_string_lossy().to_string()).collect()
}

/// The shipped golden-path templates (`PLINTH_TEMPLATES_DIR` overrides).
pub fn templates_dir() -> PathBuf {
    shipped("PLINTH_TEMPLATES_DIR", "templates")
}

/// The shipped policy library (`PLINTH_POLICY_DIR` overrides).
pub fn policies_dir() -> PathBuf {
    shipped("PLINTH_POLICY_DIR", "policies")
}

/// Example admission and check inputs (`PLINTH_POLICY_INPUTS_DIR` overrides).
pub fn policy_inputs_dir() -> PathBuf {
    shipped("PLINTH_POLICY_INPUTS_DIR", "policy-inputs")
}

/// Where the embedded content was written, or why it could not be.
pub fn written_root() -> Result<PathBuf, String> {
    WRITTEN.get_or_init(write_all).clone()
}

fn shipped(env_var: &str, tree: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(env_var).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match written_root() {
        Ok(root) => root.join(tree),
        Err(reason) => {
            // Every candidate directory refused; the caller reports the
            // missing directory with this path, and the log says why.
            tracing::error!(%reason, "the shipped content could not be written out; set {env_var} to a directory");
            PathBuf::from(tree)
        }
    }
}

/// Every embedded file as (path under the version directory, contents),
/// sorted by path.
fn files() -> Vec<(PathBuf, &'static [u8])> {
    fn walk(dir: &'static Dir<'static>, prefix: &Path, out: &mut Vec<(PathBuf, &'static [u8])>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => walk(sub, prefix, out),
                DirEntry::File(file) => out.push((prefix.join(file.path()), file.contents())),
            }
        }
    }
    let mut out = Vec::new();
    for (name, dir) in &TREES {
        walk(dir, Path::new(name), &mut out);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A short digest of the embedded content: a rebuilt binary with other
/// content gets another directory.
fn digest(files: &[(PathBuf, &[u8])]) -> String {
    let mut hasher = Sha256::new();
    for (path, contents) in files {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(contents);
    }
    hex::encode(&hasher.finalize()[..8])
}

fn candidate_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(root) = ROOT.get() {
        roots.push(root.clone());
    }
    if let Some(dir) = std::env::var_os("PLINTH_SHIPPED_DIR").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(dir).join("plinth"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(home).join(".cache").join("plinth"));
    }
    let user = std::env::var("USER").unwrap_or_default();
    let user: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    roots.push(std::env::temp_dir().join(format!("plinth-shipped-{user}")));
    roots
}

fn write_all() -> Result<PathBuf, String> {
    let files = files();
    let version = format!("{}-{}", env!("CARGO_PKG_VERSION"), digest(&files));
    let mut reasons = Vec::new();
    for root in candidate_roots() {
        match write_under(&root, &version, &files) {
            Ok(dir) => return Ok(dir),
            Err(reason) => reasons.push(format!("{}: {reason}", root.display())),
        }
    }
    Err(reasons.join("; "))
}

fn write_under(root: &Path, version: &str, files: &[(PathBuf, &[u8])]) -> Result<PathBuf, String> {
    private_dir(root)?;
    let target = root.join(version);
    if target.exists() && holds_exactly(&target, files) {
        return Ok(target);
    }
    let staging = root.join(format!(
        ".staging-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    let result = write_tree(&staging, files).and_then(|()| {
        if target.exists() {
            // Another process finished first (then it is whole), or the
            // tree was edited: replace an edited one.
            if holds_exactly(&target, files) {
                let _ = std::fs::remove_dir_all(&staging);
                return Ok(target.clone());
            }
            std::fs::remove_dir_all(&target).map_err(|e| format!("removing the edited {}: {e}", target.display()))?;
        }
        match std::fs::rename(&staging, &target) {
            Ok(()) => Ok(target.clone()),
            Err(_) if holds_exactly(&target, files) => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(target.clone())
            }
            Err(e) => Err(format!("renaming into {}: {e}", target.display())),
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Creates `dir` readable by its owner only, or checks that an existing one
/// cannot be written by others (a planted directory in a shared temporary
/// directory is refused).
fn private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(dir).map_err(|e| format!("creating the directory: {e}"))?;
        let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err("not a directory".into());
        }
        if meta.mode() & 0o022 != 0 {
            return Err("the directory can be written by other users; refusing to use it".into());
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| format!("creating the directory: {e}"))?;
    Ok(())
}

fn write_tree(dir: &Path, files: &[(PathBuf, &[u8])]) -> Result<(), String> {
    for (path, contents) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&target, contents).map_err(|e| format!("writing {}: {e}", target.display()))?;
    }
    Ok(())
}

/// True when `dir` holds exactly `files`: the same paths, the same bytes,
/// nothing else, and no symlink anywhere.
fn holds_exactly(dir: &Path, files: &[(PathBuf, &[u8])]) -> bool {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), base, out)?;
            } else if kind.is_file() {
                out.push(entry.path().strip_prefix(base).map(Path::to_path_buf).unwrap_or_default());
            } else {
                return Err(std::io::Error::other("not a plain file"));
            }
        }
        Ok(())
    }
    let mut present = Vec::new();
    if walk(dir, dir, &mut present).is_err() {
        return false;
    }
    present.sort();
    present.len() == files.len()
        && present.iter().zip(files).all(|(path, (expected, contents))| {
            path == expected && std::fs::read(dir.join(path)).is_ok_and(|bytes| bytes == *contents)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_carries_the_demo_templates_and_policies() {
        let files = files();
        let has = |p: &str| files.iter().any(|(path, _)| path == Path::new(p));
        assert!(has("demo/catalog-info.yaml"));
        assert!(has("templates/catalog-info.yaml"));
        assert!(has("policies/data.yaml"));
        assert!(has("demo/policy-data/data.yaml"));
        assert!(files.iter().any(|(p, _)| p.starts_with("policy-inputs") && p.extension().is_some()));
    }

    #[test]
    fn written_once_reused_and_rewritten_when_edited() {
        let root = tempfile::tempdir().unwrap();
        let files = files();
        let first = write_under(root.path(), "v-test", &files).unwrap();
        assert!(holds_exactly(&first, &files));
        assert_eq!(write_under(root.path(), "v-test", &files).unwrap(), first);

        // A planted policy and an edited file are both noticed and undone.
        std::fs::write(first.join("policies/planted.rego"), "package planted\nallow := true\n").unwrap();
        assert!(!holds_exactly(&first, &files));
        assert_eq!(write_under(root.path(), "v-test", &files).unwrap(), first);
        assert!(!first.join("policies/planted.rego").exists());
        std::fs::write(first.join("policies/data.yaml"), "plinth: {}\n").unwrap();
        write_under(root.path(), "v-test", &files).unwrap();
        assert!(holds_exactly(&first, &files));
        let leftovers: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = write_under(&shared, "v-test", &files()).unwrap_err();
        assert!(error.contains("other users"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_the_tree_is_not_trusted() {
        let root = tempfile::tempdir().unwrap();
        let files = files();
        let dir = write_under(root.path(), "v-test", &files).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.rego"), "package x\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("policies/linked")).unwrap();
        assert!(!holds_exactly(&dir, &files));
        write_under(root.path(), "v-test", &files).unwrap();
        assert!(holds_exactly(&dir, &files));
    }
}
