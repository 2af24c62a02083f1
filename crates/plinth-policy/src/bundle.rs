//! Reading policy sources from disk: `.rego` files, data files and OPA's
//! bundle `.manifest` (for the Rego language version), scanned for
//! packages, rules and METADATA. No evaluation happens here.

use crate::source::{scan, yaml_to_json, ScannedModule};
use crate::PolicyError;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Largest policy or data file read (a policy library is text, not data dumps).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One `.rego` file.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Path shown in messages: relative to its source root, prefixed by the
    /// root as given (`policies/baseline/containers.rego`).
    pub display: String,
    pub text: String,
    pub scan: ScannedModule,
    /// Parse with Rego v0 syntax (asked for by the bundle `.manifest`).
    pub rego_v0: bool,
    /// `*_test.rego`: loaded by `plinth policy test`, not for decisions.
    pub is_test: bool,
}

/// Something wrong with the policy sources, with where it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadProblem {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
    /// The package of the file when known, so decisions can name what is
    /// failing closed.
    pub package: Option<String>,
    /// The enforcement points that depend on the file (from its package
    /// METADATA `custom.points`); empty means every point.
    pub points: Vec<String>,
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Everything read from the policy roots.
#[derive(Debug, Clone, Default)]
pub struct PolicyBundle {
    pub roots: Vec<PathBuf>,
    pub files: Vec<PolicyFile>,
    /// Data files merged at the root of `data`.
    pub data: Value,
    pub problems: Vec<LoadProblem>,
    /// Hash of every file read: the policy version recorded with decisions.
    pub revision: String,
}

impl PolicyBundle {
    /// Reads every root (a directory searched recursively, or one file).
    /// Unreadable or invalid files become problems; the rest still load.
    pub fn load(roots: &[PathBuf]) -> PolicyBundle {
        let mut bundle =
            PolicyBundle { roots: roots.to_vec(), data: Value::Object(Default::default()), ..Default::default() };
        let mut hasher = Sha256::new();
        for root in roots {
            bundle.load_root(root, &mut hasher);
        }
        bundle.revision = hex::encode(&hasher.finalize()[..8]);
        bundle
    }

    /// Files used for decisions (tests excluded).
    pub fn decision_files(&self) -> impl Iterator<Item = &PolicyFile> {
        self.files.iter().filter(|f| !f.is_test)
    }

    fn load_root(&mut self, root: &Path, hasher: &mut Sha256) {
        if !root.exists() {
            self.problems.push(problem(
                root.display().to_string(),
                None,
                "policy path does not exist; pass a directory of .rego files or a .rego file".into(),
            ));
            return;
        }
        // The manifest decides how files parse, so it is part of the revision.
        if let Ok(text) = std::fs::read_to_string(root.join(".manifest")) {
            hasher.update(b".manifest");
            hasher.update(text.as_bytes());
        }
        let manifest = read_manifest(root).unwrap_or_else(|message| {
            self.problems.push(problem(root.join(".manifest").display().to_string(), None, message.to_string()));
            Manifest::default()
        });
        let mut paths: Vec<PathBuf> = if root.is_file() {
            vec![root.to_path_buf()]
        } else {
            walkdir::WalkDir::new(root)
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect()
        };
        paths.sort();
        for path in paths {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let is_rego = name.ends_with(".rego");
            let is_data = matches!(name.as_str(), "data.json" | "data.yaml" | "data.yml");
            if !is_rego && !is_data {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let display = if root.is_file() {
                root.display().to_string()
            } else {
                format!("{}/{}", root.display().to_string().trim_end_matches('/'), relative)
            };
            let text = match read_bounded(&path) {
                Ok(text) => text,
                Err(message) => {
                    self.problems.push(problem(display, None, message.to_string()));
                    continue;
                }
            };
            hasher.update(display.as_bytes());
            hasher.update(text.as_bytes());
            if is_data {
                match parse_data(&name, &text) {
                    Ok(value) => {
                        if let Err(message) = merge(&mut self.data, value, "data") {
                            self.problems.push(problem(display, None, message.to_string()));
                        }
                    }
                    Err((line, message)) => self.problems.push(problem(display, line, message)),
                }
                continue;
            }
            let scan = scan(&text);
            for error in &scan.annotation_errors {
                self.problems.push(LoadProblem {
                    file: display.clone(),
                    line: Some(error.line),
                    message: error.message.clone(),
                    package: scan.package.clone(),
                    points: package_points(&scan),
                });
            }
            let rego_v0 = manifest.is_v0(&relative) && !scan.imports_rego_v1;
            self.files.push(PolicyFile { display, is_test: name.ends_with("_test.rego"), text, scan, rego_v0 });
        }
    }
}

/// The points a module's package METADATA restricts it to (empty: all).
pub fn package_points(scan: &ScannedModule) -> Vec<String> {
    scan.package_annotations.as_ref().map(|a| a.custom_list("points")).unwrap_or_default()
}

fn problem(file: String, line: Option<usize>, message: String) -> LoadProblem {
    LoadProblem { file, line, message, package: None, points: Vec::new() }
}

fn read_bounded(path: &Path) -> Result<String, PolicyError> {
    let meta = std::fs::metadata(path).map_err(|e| PolicyError::Read(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(PolicyError::Read(format!(
            "file is {} bytes; policy and data files are limited to {MAX_FILE_BYTES} bytes",
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| PolicyError::Read(format!("cannot read as UTF-8 text: {e}")))
}

fn parse_data(name: &str, text: &str) -> Result<Value, (Option<usize>, String)> {
    let value = if name.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| (Some(e.line()), format!("invalid JSON: {e}")))?
    } else {
        let docs = yaml_rust2::YamlLoader::load_from_str(text)
            .map_err(|e| (Some(e.marker().line()), format!("invalid YAML: {}", e.info())))?;
        docs.into_iter().next().map(yaml_to_json).unwrap_or(Value::Object(Default::default()))
    };
    if !value.is_object() {
        return Err((None, "a data file must hold a mapping; its keys are merged into `data`".into()));
    }
    Ok(value)
}

/// Deep-merges `value` into `target`; two files giving different values at
/// one path is an error naming the path.
fn merge(target: &mut Value, value: Value, path: &str) -> Result<(), PolicyError> {
    match (target, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                let child = format!("{path}.{key}");
                match into.get_mut(&key) {
                    Some(existing) => merge(existing, value, &child)?,
                    None => {
                        into.insert(key, value);
                    }
                }
            }
            Ok(())
        }
        (existing, value) if *existing == value => Ok(()),
        _ => Err(PolicyError::DataConflict(path.to_string())),
    }
}

/// OPA's bundle manifest: only the language-version keys matter here.
#[derive(Debug, Default)]
struct Manifest {
    rego_version: Option<i64>,
    file_rego_versions: Vec<(String, i64)>,
}

impl Manifest {
    fn is_v0(&self, relative: &str) -> bool {
        let per_file =
            self.file_rego_versions.iter().find(|(pattern, _)| glob_match(pattern.trim_start_matches('/'), relative));
        per_file.map(|(_, v)| *v).or(self.rego_version) == Some(0)
    }
}

fn read_manifest(root: &Path) -> Result<Manifest, PolicyError> {
    let path = root.join(".manifest");
    if !root.is_dir() || !path.is_file() {
        return Ok(Manifest::default());
    }
    let text = read_bounded(&path)?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| PolicyError::Read(format!("invalid JSON in bundle manifest: {e}")))?;
    let mut manifest =
        Manifest { rego_version: json.get("rego_version").and_then(Value::as_i64), ..Default::default() };
    if let Some(Value::Object(map)) = json.get("file_rego_versions") {
        for (pattern, version) in map {
            if let Some(version) = version.as_i64() {
                manifest.file_rego_versions.push((pattern.clone(), version));
            }
        }
    }
    Ok(manifest)
}

/// `*` matches any run of characters (including `/`), as OPA's manifest
/// globs are used in practice.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("legacy/*", "legacy/a/b.rego"));
        assert!(glob_match("*.rego", "x.rego"));
        assert!(!glob_match("legacy/*", "new/a.rego"));
        assert!(glob_match("a.rego", "a.rego"));
    }

    #[test]
    fn data_conflicts_name_the_path() {
        let mut target = serde_json::json!({"a": {"b": 1}});
        assert!(merge(&mut target, serde_json::json!({"a": {"c": 2}}), "data").is_ok());
        let error = merge(&mut target, serde_json::json!({"a": {"b": 2}}), "data").unwrap_err();
        assert_eq!(error, PolicyError::DataConflict("data.a.b".into()));
    }
}
