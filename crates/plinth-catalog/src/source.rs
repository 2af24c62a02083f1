//! Reading a registered location: files, directories and the Location
//! entities inside them, followed recursively, into processed entities and
//! diagnostics. Pure file-system work; git checkouts are prepared by
//! [`crate::git`] and then read the same way.
//!
//! Each file is parsed at most once per content: a cache keyed by path and
//! content hash makes an unchanged re-read cost one read and one hash.

use parking_lot::Mutex;
use plinth_confine::path::{PathError, Root};
use plinth_model::yaml::{self, YamlLimits};
use plinth_model::{entity_ref_of, process_entity, Diagnostic, EntityRef, FieldIssue, Origin, ProcessedEntity};
use rayon::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names read from a directory source.
pub(crate) const CATALOG_FILE_NAMES: &[&str] = &["catalog-info.yaml", "catalog-info.yml"];
const MAX_LOCATION_DEPTH: usize = 32;
const SKIPPED_DIRS: &[&str] = &[".git", "node_modules", "target", ".venv"];

/// How a path inside the source is named in annotations and errors, and
/// what the source may read.
pub trait Namer: Send + Sync {
    /// Backstage's `type:target` form for a file (`file:/abs`, `url:https://…`).
    fn location_of(&self, path: &Path) -> String;
    /// Where the source may be read: Location targets and placeholders may
    /// not leave it. `None`: the directory of the registered file (or the
    /// registered directory).
    fn root(&self) -> Option<&Path> {
        None
    }
    /// A placeholder's URL as a file of this source, when the URL points
    /// into the source itself (the same repository); other URLs are not
    /// fetched.
    fn file_of_url(&self, _url: &str) -> Option<PathBuf> {
        None
    }
}

/// Plain files: `file:/absolute/path`.
pub struct FileNamer;

impl Namer for FileNamer {
    fn location_of(&self, path: &Path) -> String {
        format!("file:{}", path.display())
    }
}

/// An entity as read: its ref, kind as written, content hash and body as
/// compact JSON. Kept as text (not a JSON tree) so the parse cache of a
/// 100k-entity catalogue stays small.
#[derive(Debug)]
pub struct ReadEntity {
    pub entity_ref: EntityRef,
    pub kind: String,
    pub hash: String,
    pub body: Arc<str>,
}

impl ReadEntity {
    fn from_processed(entity: ProcessedEntity) -> ReadEntity {
        ReadEntity {
            kind: entity.body["kind"].as_str().unwrap_or_default().to_string(),
            body: Arc::from(serde_json::to_string(&entity.body).unwrap_or_default()),
            entity_ref: entity.entity_ref,
            hash: entity.hash,
        }
    }
}

/// An entity read from a file, with the line its document starts on.
#[derive(Debug, Clone)]
pub struct Found {
    pub entity: Arc<ReadEntity>,
    /// The file's name, shared by the entities read from it.
    pub location: Arc<str>,
    pub line: u32,
}

/// Everything one read of a location produced.
#[derive(Debug, Default)]
pub struct SourceRead {
    pub entities: Vec<Found>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files (by location string) that could not be read completely: their
    /// previous entities are kept rather than deleted.
    pub incomplete_files: HashSet<String>,
    /// Refs of entities that failed validation: their previous version is
    /// kept rather than deleted.
    pub invalid_refs: HashSet<String>,
    /// The root itself could not be read: nothing may be deleted.
    pub root_failed: bool,
    pub files_read: usize,
}

#[derive(Debug, Default)]
struct FileOutcome {
    entities: Vec<(Arc<ReadEntity>, u32)>,
    diagnostics: Vec<Diagnostic>,
    invalid_refs: Vec<String>,
    incomplete: bool,
    targets: Vec<Target>,
    /// The file inlines other files (`$text` and friends): its parse
    /// depends on more than its own content, so it is never reused.
    uses_placeholders: bool,
}

/// What a read may touch: the confinement root and the source's namer.
struct ReadScope<'a> {
    root: &'a Root,
    namer: &'a dyn Namer,
}

#[derive(Debug, Clone)]
struct Target {
    raw: String,
    optional: bool,
    line: u32,
}

/// A file as read for one registered location: (path, origin).
type CacheKey = (PathBuf, String);
/// The content hash a file had when parsed, and what parsing produced.
type CachedFile = ([u8; 32], Arc<FileOutcome>);

/// A file to read in one level of the Location walk: its path, the chain of
/// Location files that led to it, whether it is optional, and the file and
/// line of the target that named it.
struct Pending {
    path: PathBuf,
    chain: Vec<PathBuf>,
    optional: bool,
    from: Option<(String, u32)>,
}

/// Parsed files by (path, origin), reused while their content is unchanged.
#[derive(Default)]
pub struct FileCache {
    files: Mutex<HashMap<CacheKey, CachedFile>>,
}

impl FileCache {
    pub fn len(&self) -> usize {
        self.files.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held beyond the entity bodies (which the projection
    /// shares and counts): paths, per-entity handles, refs and hashes.
    pub(crate) fn footprint(&self) -> u64 {
        use crate::footprint::{table, text, vec};
        use std::mem::size_of;
        let files = self.files.lock();
        let mut bytes = table(files.capacity(), size_of::<(CacheKey, CachedFile)>());
        for ((path, origin), (_, outcome)) in files.iter() {
            bytes += text(path.as_os_str().len() + origin.len()) + 16 + size_of::<FileOutcome>() as u64;
            bytes += vec::<(Arc<ReadEntity>, u32)>(outcome.entities.capacity());
            for (entity, _) in &outcome.entities {
                let r = &entity.entity_ref;
                bytes += 16
                    + size_of::<ReadEntity>() as u64
                    + text(r.kind.len() + r.namespace.len() + r.name.len() + entity.kind.len() + entity.hash.len());
            }
        }
        bytes
    }
}

/// Reads a location rooted at `root` (a file, or a directory searched for
/// `catalog-info.yaml`), following Location entities. Everything it reads
/// stays inside the source's root ([`Namer::root`], else the directory of
/// `root`).
pub fn read_location(root: &Path, namer: &dyn Namer, cache: &FileCache, limits: &YamlLimits) -> SourceRead {
    let mut read = SourceRead::default();
    let origin = namer.location_of(root);
    let Ok(canonical) = root.canonicalize() else {
        read.root_failed = true;
        read.diagnostics.push(Diagnostic::error(
            origin,
            format!("{} does not exist; check the path, or remove this location", root.display()),
        ));
        return read;
    };
    let confine_dir = match namer.root() {
        Some(dir) => dir.to_path_buf(),
        None if canonical.is_dir() => canonical.clone(),
        None => canonical.parent().map(Path::to_path_buf).unwrap_or_else(|| canonical.clone()),
    };
    let confined = Root::new(&confine_dir).and_then(|confine| confine.check(&canonical).map(|_| confine));
    let confine = match confined {
        Ok(confine) => confine,
        Err(error) => {
            read.root_failed = true;
            read.diagnostics.push(Diagnostic::error(origin, error.to_string()));
            return read;
        }
    };
    let scope = ReadScope { root: &confine, namer };
    let roots: Vec<PathBuf> = if canonical.is_dir() {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&canonical)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir() && SKIPPED_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
            })
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_type().is_file() && CATALOG_FILE_NAMES.contains(&e.file_name().to_string_lossy().as_ref())
            })
            .map(|e| e.into_path())
            .collect();
        files.sort();
        if files.is_empty() {
            read.diagnostics.push(Diagnostic::warning(
                origin.clone(),
                "directory has no catalog-info.yaml files; add one, or register the file itself",
            ));
        }
        files
    } else {
        vec![canonical]
    };

    let mut visited: HashSet<PathBuf> = HashSet::new();
    let mut level: Vec<Pending> =
        roots.into_iter().map(|path| Pending { path, chain: Vec::new(), optional: false, from: None }).collect();
    let origin = namer.location_of(root);
    while !level.is_empty() {
        let mut batch = Vec::new();
        for Pending { path, chain, optional, from } in level.drain(..) {
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if chain.contains(&canonical) {
                let mut cycle: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
                cycle.push(canonical.display().to_string());
                let (file, line) = from.clone().unwrap_or((namer.location_of(&path), 0));
                read.diagnostics.push(
                    Diagnostic::error(
                        file,
                        format!("Location cycle: {}; remove the target that points back", cycle.join(" -> ")),
                    )
                    .at_line(Some(line).filter(|l| *l > 0)),
                );
                continue;
            }
            if !visited.insert(canonical.clone()) {
                continue;
            }
            if chain.len() >= MAX_LOCATION_DEPTH {
                let (file, line) = from.clone().unwrap_or((namer.location_of(&path), 0));
                read.diagnostics.push(
                    Diagnostic::error(
                        file,
                        format!("Locations nest deeper than {MAX_LOCATION_DEPTH} levels; flatten them"),
                    )
                    .at_line(Some(line).filter(|l| *l > 0)),
                );
                continue;
            }
            batch.push((path, canonical, chain, optional, from));
        }
        let outcomes: Vec<_> = batch
            .par_iter()
            .map(|(path, _, _, optional, from)| {
                let location = namer.location_of(path);
                (read_file(path, &location, &origin, &scope, cache, limits, *optional, from.as_ref()), location)
            })
            .collect();
        for ((path, canonical, chain, _, _), (outcome, location)) in batch.into_iter().zip(outcomes) {
            read.files_read += 1;
            let shared: Arc<str> = Arc::from(location.as_str());
            read.entities.extend(outcome.entities.iter().map(|(entity, line)| Found {
                entity: entity.clone(),
                location: shared.clone(),
                line: *line,
            }));
            read.diagnostics.extend(outcome.diagnostics.iter().cloned());
            read.invalid_refs.extend(outcome.invalid_refs.iter().cloned());
            if outcome.incomplete {
                read.incomplete_files.insert(location.clone());
            }
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut next_chain = chain.clone();
            next_chain.push(canonical);
            for target in &outcome.targets {
                match resolve_target(&base, &target.raw, &confine) {
                    Ok(paths) => {
                        if paths.is_empty() && !target.optional {
                            read.diagnostics.push(
                                Diagnostic::error(
                                    location.clone(),
                                    format!("target `{}` matches no files; fix the pattern or mark the Location `presence: optional`", target.raw),
                                )
                                .at_line(Some(target.line))
                                .on_field(Some("spec.targets".into())),
                            );
                        }
                        for p in paths {
                            level.push(Pending {
                                path: p,
                                chain: next_chain.clone(),
                                optional: target.optional,
                                from: Some((location.clone(), target.line)),
                            });
                        }
                    }
                    Err(message) => {
                        read.diagnostics.push(
                            Diagnostic::error(location.clone(), message.to_string())
                                .at_line(Some(target.line))
                                .on_field(Some("spec.targets".into())),
                        );
                    }
                }
            }
        }
    }
    read
}

#[allow(clippy::too_many_arguments)]
fn read_file(
    path: &Path,
    location: &str,
    origin: &str,
    scope: &ReadScope<'_>,
    cache: &FileCache,
    limits: &YamlLimits,
    optional: bool,
    from: Option<&(String, u32)>,
) -> Arc<FileOutcome> {
    let failed = |message: String| {
        let (file, line) = match from {
            Some((file, line)) => (file.clone(), Some(*line)),
            None => (location.to_string(), None),
        };
        Arc::new(FileOutcome {
            diagnostics: vec![Diagnostic::error(file, message).at_line(line)],
            incomplete: true,
            ..FileOutcome::default()
        })
    };
    let bytes = match std::fs::metadata(path) {
        Ok(meta) if meta.len() as usize > limits.max_file_bytes => {
            return failed(format!(
                "{}: {}",
                path.display(),
                yaml::check_size(meta.len() as usize, limits).unwrap_err()
            ))
        }
        Ok(meta) if meta.is_dir() => {
            return failed(format!(
                "{} is a directory; a Location target must be a file or a glob such as `./*/catalog-info.yaml`",
                path.display()
            ))
        }
        Ok(_) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => return failed(format!("cannot read {}: {error}", path.display())),
        },
        Err(_) if optional => return Arc::new(FileOutcome::default()),
        Err(error) => {
            return failed(format!(
                "cannot read {}: {error}; fix the target path, or mark the Location `presence: optional`",
                path.display()
            ))
        }
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let cache_key = (path.to_path_buf(), origin.to_string());
    if let Some((cached_digest, outcome)) = cache.files.lock().get(&cache_key) {
        if *cached_digest == digest && !outcome.uses_placeholders {
            return outcome.clone();
        }
    }
    let outcome = Arc::new(parse_file(path, &bytes, location, origin, scope, limits));
    cache.files.lock().insert(cache_key, (digest, outcome.clone()));
    outcome
}

fn parse_file(
    path: &Path,
    bytes: &[u8],
    location: &str,
    origin: &str,
    scope: &ReadScope<'_>,
    limits: &YamlLimits,
) -> FileOutcome {
    let mut outcome = FileOutcome::default();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            outcome.incomplete = true;
            outcome
                .diagnostics
                .push(Diagnostic::error(location, format!("file is not UTF-8 text ({error}); save it as UTF-8")));
            return outcome;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let entity_origin = Origin { managed_by: location.to_string(), origin: origin.to_string() };
    for doc in yaml::parse_documents(text, limits) {
        let mut value = match &doc.value {
            Ok(value) => value.clone(),
            Err(error) => {
                outcome.incomplete = true;
                outcome
                    .diagnostics
                    .push(Diagnostic::error(location, error.message.clone()).at_line(error.line.or(Some(doc.line))));
                continue;
            }
        };
        let mut issues = Vec::new();
        let mut warnings = Vec::new();
        let mut placeholders =
            Placeholders { base, scope, limits, issues: &mut issues, warnings: &mut warnings, used: false };
        placeholders.resolve(&mut value, "");
        outcome.uses_placeholders |= placeholders.used;
        let entity_ref = entity_ref_of(&value).map(|r| r.to_string());
        if !warnings.is_empty() {
            let lines = yaml::field_lines(text, &doc, limits);
            for warning in warnings {
                let line = lines.get(&warning.field).copied().unwrap_or(doc.line);
                outcome.diagnostics.push(
                    Diagnostic::warning(location, warning.message)
                        .at_line(Some(line))
                        .for_entity(entity_ref.clone())
                        .on_field(Some(warning.field)),
                );
            }
        }
        let result = if issues.is_empty() { process_entity(value, &entity_origin) } else { Err(issues) };
        match result {
            Ok(entity) => {
                if entity.entity_ref.kind == "location" {
                    collect_targets(&entity.body, text, &doc, limits, &mut outcome.targets);
                }
                outcome.entities.push((Arc::new(ReadEntity::from_processed(entity)), doc.line));
            }
            Err(issues) => {
                let lines = yaml::field_lines(text, &doc, limits);
                if let Some(r) = &entity_ref {
                    outcome.invalid_refs.push(r.to_lowercase());
                } else {
                    outcome.incomplete = true;
                }
                for issue in issues {
                    let line = lines
                        .get(&issue.field)
                        .copied()
                        .or_else(|| nearest_line(&lines, &issue.field))
                        .unwrap_or(doc.line);
                    outcome.diagnostics.push(
                        Diagnostic::error(location, issue.message)
                            .at_line(Some(line))
                            .for_entity(entity_ref.clone())
                            .on_field(Some(issue.field).filter(|f| !f.is_empty())),
                    );
                }
            }
        }
    }
    outcome
}

/// For a missing field, the line of its closest present parent.
fn nearest_line(lines: &HashMap<String, u32>, field: &str) -> Option<u32> {
    let mut path = field;
    while let Some((parent, _)) = path.rsplit_once(['.', '[']) {
        if let Some(line) = lines.get(parent) {
            return Some(*line);
        }
        path = parent;
    }
    None
}

fn collect_targets(body: &Value, text: &str, doc: &yaml::YamlDocument, limits: &YamlLimits, out: &mut Vec<Target>) {
    let spec = &body["spec"];
    let optional = spec["presence"].as_str() == Some("optional");
    let lines = yaml::field_lines(text, doc, limits);
    if let Some(target) = spec["target"].as_str() {
        out.push(Target {
            raw: target.to_string(),
            optional,
            line: lines.get("spec.target").copied().unwrap_or(doc.line),
        });
    }
    if let Some(targets) = spec["targets"].as_array() {
        for (i, target) in targets.iter().enumerate() {
            if let Some(target) = target.as_str() {
                let line = lines.get(&format!("spec.targets[{i}]")).copied().unwrap_or(doc.line);
                out.push(Target { raw: target.to_string(), optional, line });
            }
        }
    }
}

/// Resolves a Location target against the directory of the file that holds
/// it, inside the source's root. Globs (`*`, `**`) expand to the files they
/// match.
fn resolve_target(base: &Path, raw: &str, root: &Root) -> Result<Vec<PathBuf>, ReadError> {
    let target = raw.strip_prefix("file:").unwrap_or(raw);
    if target.starts_with("http://") || target.starts_with("https://") {
        return Err(ReadError::UrlTarget(raw.to_string()));
    }
    let refused = ReadError::Target;
    let resolved = root.resolve(base, target).map_err(refused)?;
    if !target.contains('*') {
        return Ok(vec![resolved]);
    }
    let text = resolved.to_string_lossy().to_string();
    let star = text.find('*').unwrap_or(text.len());
    let dir = Path::new(&text[..star]).parent().map(Path::to_path_buf).unwrap_or_else(|| base.to_path_buf());
    let mut matches: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !(e.file_type().is_dir() && SKIPPED_DIRS.contains(&e.file_name().to_string_lossy().as_ref())))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && glob_match(&text, &e.path().to_string_lossy()))
        .map(|e| e.into_path())
        .collect();
    matches.sort();
    matches.into_iter().map(|path| root.check(&path).map_err(refused)).collect()
}

/// `*` matches within one path segment, `**` across segments.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') => (0..=t.len()).take_while(|&i| i == 0 || t[i - 1] != b'/').any(|i| go(&p[1..], &t[i..])),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Why a Location target or a placeholder could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("target `{0}` is a URL; Plinth reads URLs through git: register the repository with `plinth catalog locations add <repo-url>`")]
    UrlTarget(String),
    #[error("target {0}")]
    Target(PathError),
    #[error("placeholder `{key}` takes a path string")]
    PlaceholderArgument { key: String },
    #[error("unknown placeholder `{key}`; use $text, $json or $yaml")]
    UnknownPlaceholder { key: String },
    #[error("placeholder `{key}`: {source}")]
    PlaceholderPath { key: String, source: PathError },
    #[error("placeholder `{key}`: {} {problem}", path.display())]
    Placeholder { key: String, path: PathBuf, problem: String },
}

/// Backstage's placeholders: `{$text: ./file}`, `{$json: …}`, `{$yaml: …}`
/// (and `$openapi`/`$asyncapi`, read as text), resolved relative to the
/// file that holds them and never outside the source's root. A URL is
/// read only when it points into the source itself.
struct Placeholders<'a, 'b> {
    base: &'a Path,
    scope: &'a ReadScope<'b>,
    limits: &'a YamlLimits,
    issues: &'a mut Vec<FieldIssue>,
    warnings: &'a mut Vec<FieldIssue>,
    used: bool,
}

impl Placeholders<'_, '_> {
    fn resolve(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::Object(map) => {
                if map.len() == 1 {
                    let (key, arg) = map.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
                    if key.starts_with('$') {
                        self.used = true;
                        match self.placeholder(&key, &arg, path) {
                            Ok(resolved) => *value = resolved,
                            Err(error) => self.issues.push(FieldIssue::new(path, error.to_string())),
                        }
                        return;
                    }
                }
                for (key, child) in map.iter_mut() {
                    let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    self.resolve(child, &child_path);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.resolve(item, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }

    fn placeholder(&mut self, key: &str, arg: &Value, field: &str) -> Result<Value, ReadError> {
        let key = key.to_string();
        let Some(target) = arg.as_str() else {
            return Err(ReadError::PlaceholderArgument { key });
        };
        if !matches!(key.as_str(), "$text" | "$json" | "$yaml" | "$openapi" | "$asyncapi") {
            return Err(ReadError::UnknownPlaceholder { key });
        }
        let confined = |source| ReadError::PlaceholderPath { key: key.clone(), source };
        let path = if target.starts_with("http://") || target.starts_with("https://") {
            match self.scope.namer.file_of_url(target) {
                Some(file) => self.scope.root.check(&file).map_err(confined)?,
                None => {
                    // Not a file of this source: the server does not fetch
                    // arbitrary URLs; the entity keeps the URL and ingests.
                    self.warnings.push(FieldIssue::new(
                        field,
                        format!("placeholder `{key}: {target}` was not fetched: Plinth reads only files of the entity's own source, so the field holds the URL; put the file in the repository and use a relative path to inline it"),
                    ));
                    return Ok(Value::String(target.to_string()));
                }
            }
        } else {
            self.scope.root.resolve(self.base, target).map_err(confined)?
        };
        let limits = self.limits;
        let unreadable = |problem: String| ReadError::Placeholder { key: key.clone(), path: path.clone(), problem };
        let meta = std::fs::metadata(&path).map_err(|e| unreadable(format!("cannot be read: {e}")))?;
        if !meta.is_file() {
            return Err(unreadable("is not a file".into()));
        }
        if meta.len() as usize > limits.max_file_bytes {
            return Err(unreadable(format!("is larger than {} bytes", limits.max_file_bytes)));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(format!("cannot be read: {e}")))?;
        match key.as_str() {
            "$json" => serde_json::from_str(&text).map_err(|e| unreadable(format!("is not JSON: {e}"))),
            "$yaml" => {
                let docs = yaml::parse_documents(&text, limits);
                match docs.into_iter().next().map(|d| d.value) {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(e)) => Err(unreadable(format!("is not YAML: {}", e.message))),
                    None => Ok(Value::Null),
                }
            }
            _ => Ok(Value::String(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("/a/*/catalog-info.yaml", "/a/b/catalog-info.yaml"));
        assert!(!glob_match("/a/*/catalog-info.yaml", "/a/b/c/catalog-info.yaml"));
        assert!(glob_match("/a/**/catalog-info.yaml", "/a/b/c/catalog-info.yaml"));
        assert!(glob_match("/a/**/catalog-info.yaml", "/a/catalog-info.yaml"));
        assert!(glob_match("/a/*.yaml", "/a/x.yaml"));
    }
}
