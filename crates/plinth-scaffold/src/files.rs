//! Where a template's own files (skeletons) come from: the directory its
//! YAML file lives in, or — for a dry run — the files posted with the
//! request (Backstage's `directoryContents`).

use crate::error::ScaffoldError;
use crate::log::Redactor;
use crate::workspace::{check_relative, resolve_within};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Most files and bytes one `fetch:*` may read from a template.
const MAX_TREE_FILES: usize = 5_000;
const MAX_TREE_BYTES: u64 = 64 * 1024 * 1024;

/// One file as Backstage's dry-run API carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntry {
    pub path: String,
    pub base64_content: String,
    #[serde(default)]
    pub executable: bool,
}

/// A file read from a template: (path relative to the fetched directory,
/// contents, executable).
pub(crate) type TreeFile = (String, Vec<u8>, bool);

#[derive(Debug, Clone, Default)]
pub enum TemplateFiles {
    /// The directory holding the template's YAML file.
    Dir(PathBuf),
    /// Files by path relative to the template's directory.
    Inline(BTreeMap<String, (Vec<u8>, bool)>),
    /// The template has no files of its own (e.g. registered from a URL we
    /// do not read): `fetch:*` with a relative URL fails with a clear error.
    #[default]
    None,
}

impl TemplateFiles {
    pub fn from_entries(entries: &[DirectoryEntry]) -> Result<TemplateFiles, ScaffoldError> {
        let mut files = BTreeMap::new();
        for entry in entries {
            let bytes = base64::engine::general_purpose::STANDARD.decode(entry.base64_content.trim()).map_err(|e| {
                ScaffoldError::Input(format!("directoryContents `{}`: base64Content is not base64: {e}", entry.path))
            })?;
            let path = normalise(&entry.path);
            check_relative(&path).map_err(|e| ScaffoldError::from(e).context("directoryContents"))?;
            files.insert(path, (bytes, entry.executable));
        }
        Ok(TemplateFiles::Inline(files))
    }

    /// The files under `url` (a directory or one file, relative to the
    /// template), refusing paths that leave the template's directory.
    pub fn read_tree(&self, url: &str) -> Result<Vec<TreeFile>, ScaffoldError> {
        if url.contains("://") {
            return Err(ScaffoldError::Files(format!(
                "`{url}` is a remote URL; fetch actions read the template's own directory — keep the skeleton beside template.yaml and use a relative path such as ./skeleton"
            )));
        }
        let prefix = normalise(url);
        match self {
            TemplateFiles::None => Err(ScaffoldError::Files(format!(
                "this template has no directory of its own to read `{url}` from (it was not registered from a file or git location)"
            ))),
            TemplateFiles::Inline(files) => {
                let mut out = Vec::new();
                for (path, (bytes, executable)) in files {
                    let relative = if prefix.is_empty() {
                        Some(path.as_str())
                    } else if path == &prefix {
                        path.rsplit('/').next()
                    } else {
                        path.strip_prefix(&format!("{prefix}/"))
                    };
                    if let Some(relative) = relative {
                        out.push((relative.to_string(), bytes.clone(), *executable));
                    }
                }
                if out.is_empty() {
                    return Err(ScaffoldError::Files(format!(
                        "`{url}` matches no file in the template's directoryContents"
                    )));
                }
                Ok(out)
            }
            TemplateFiles::Dir(base) => {
                let root = resolve_within(base, &prefix).map_err(|e| ScaffoldError::from(e).context("fetch url"))?;
                let meta = std::fs::symlink_metadata(&root).map_err(ScaffoldError::io(format!(
                    "cannot read `{url}` beside the template ({})",
                    root.display()
                )))?;
                if meta.is_file() {
                    let name = root.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    let bytes =
                        std::fs::read(&root).map_err(ScaffoldError::io(format!("cannot read {}", root.display())))?;
                    return Ok(vec![(name, bytes, is_executable(&meta))]);
                }
                let mut out = Vec::new();
                let mut total = 0u64;
                for entry in walkdir::WalkDir::new(&root).follow_links(false).sort_by_file_name() {
                    let entry = entry.map_err(|e| ScaffoldError::Files(format!("cannot read `{url}`: {e}")))?;
                    let relative = entry.path().strip_prefix(&root).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
                    if entry.file_type().is_symlink() {
                        return Err(ScaffoldError::Files(format!(
                            "`{url}/{relative}` is a symbolic link; skeletons may not contain links"
                        )));
                    }
                    if !entry.file_type().is_file() {
                        continue;
                    }
                    let meta = entry.metadata().map_err(|e| ScaffoldError::Files(format!("cannot read `{url}`: {e}")))?;
                    total += meta.len();
                    if out.len() >= MAX_TREE_FILES || total > MAX_TREE_BYTES {
                        return Err(ScaffoldError::Limit(format!(
                            "`{url}` holds more than {MAX_TREE_FILES} files or 64 MiB; templates are limited to that"
                        )));
                    }
                    let bytes =
                        std::fs::read(entry.path()).map_err(ScaffoldError::io(format!("cannot read {relative}")))?;
                    out.push((relative, bytes, is_executable(&meta)));
                }
                Ok(out)
            }
        }
    }
}

fn normalise(path: &str) -> String {
    let trimmed = path.trim().trim_start_matches("./").trim_end_matches('/');
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Reads the workspace back as Backstage's `directoryContents`, secrets
/// redacted from text files.
pub(crate) fn directory_contents(root: &std::path::Path, redactor: &Redactor) -> Vec<DirectoryEntry> {
    crate::workspace::list_files(root)
        .into_iter()
        .filter_map(|(path, absolute)| {
            let bytes = std::fs::read(&absolute).ok()?;
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => redactor.text(&text).into_bytes(),
                Err(binary) => binary.into_bytes(),
            };
            let meta = std::fs::metadata(&absolute).ok()?;
            Some(DirectoryEntry {
                path,
                base64_content: base64::engine::general_purpose::STANDARD.encode(bytes),
                executable: is_executable(&meta),
            })
        })
        .collect()
}
