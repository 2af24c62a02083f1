//! Entity documentation, TechDocs-style: an entity whose
//! `backstage.io/techdocs-ref` is `dir:<path>` (relative to the directory
//! of the catalog-info file that defines it) names a directory with an
//! `mkdocs.yml` and Markdown pages under its `docs_dir` (`docs` by
//! default). This module finds and reads those sites — every path confined
//! with `plinth-confine` (no `..` out of the root, no absolute paths, no
//! link that leads outside) and every read bounded — and keeps a small
//! full-text index of the pages for the portal's search. Rendering the
//! Markdown is the surface's job.

use super::CatalogUseCases;
use crate::{AppError, AppResult, Caller};
use plinth_catalog::{CatalogState, Condition, EntityFilter, EntityRecord, FilterGroup};
use plinth_confine::path::{check_relative, normalize, Root};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The annotation that points at an entity's documentation.
pub const TECHDOCS_REF: &str = "backstage.io/techdocs-ref";
/// Most Markdown pages one site lists.
pub const MAX_PAGES: usize = 200;
/// Largest Markdown page read.
pub const MAX_PAGE_BYTES: u64 = 512 * 1024;
/// Largest image served from a docs directory.
pub const MAX_ASSET_BYTES: u64 = 5 * 1024 * 1024;
const MAX_MKDOCS_BYTES: u64 = 64 * 1024;
/// Deepest directory level searched for pages.
const MAX_DEPTH: usize = 8;
/// Sites (docs directories) remembered; they are re-read after [`SITE_TTL`].
const MAX_SITES: usize = 4096;
const SITE_TTL: Duration = Duration::from_secs(30);
/// Distinct docs directories one search index covers.
const MAX_INDEXED_SITES: usize = 2000;
/// Text kept per page for search.
const MAX_INDEXED_TEXT: usize = 64 * 1024;
/// Most hits one docs search returns.
pub const MAX_DOCS_HITS: usize = 50;

/// One entry of a site's navigation: a page, or a section of entries
/// (flattened, with its depth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavItem {
    pub title: String,
    /// The page (relative to the docs directory), `None` for a section
    /// heading; an external http(s) link is kept in `url`.
    pub page: Option<String>,
    pub url: Option<String>,
    pub depth: usize,
}

/// A documentation site: `mkdocs.yml`'s name and navigation and the pages
/// found under its docs directory.
#[derive(Debug, Clone)]
pub struct DocsSite {
    pub site_name: String,
    pub nav: Vec<NavItem>,
    /// Markdown pages, relative to the docs directory with `/`, sorted.
    pub pages: Vec<String>,
    docs: Root,
}

/// A page's Markdown and its title (its first `# ` heading, else its nav
/// title, else its file name).
#[derive(Debug, Clone)]
pub struct DocsPage {
    pub path: String,
    pub title: String,
    pub markdown: String,
}

/// An image from a docs directory.
#[derive(Debug, Clone)]
pub struct DocsAsset {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Why documentation could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("the techdocs-ref `{0}` is not a `dir:` reference Plinth can read")]
    UnsupportedRef(String),
    #[error("the entity's source `{0}` is not a local file, so `dir:` cannot be resolved")]
    NotAFile(String),
    #[error(transparent)]
    Path(#[from] plinth_confine::path::PathError),
    #[error("{0} has no mkdocs.yml")]
    NoMkdocs(PathBuf),
    #[error("no page `{0}` in these docs")]
    NoPage(String),
    #[error("`{0}` is not a Markdown page or an image")]
    WrongType(String),
    #[error("`{path}` is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl From<DocsError> for AppError {
    fn from(error: DocsError) -> AppError {
        match error {
            DocsError::NoPage(_) | DocsError::NoMkdocs(_) => AppError::not_found(error),
            DocsError::Io { .. } => AppError::unavailable(error),
            _ => AppError::invalid(error),
        }
    }
}

/// Where git locations are checked out (`<data-dir>/git`), one per platform
/// started in this process (tests start several).
static GIT_CHECKOUTS: parking_lot::RwLock<Vec<PathBuf>> = parking_lot::RwLock::new(Vec::new());

/// Tells docs resolution where the catalogue keeps its git checkouts, so
/// entities read from git locations (golden-path output among them) get
/// their docs from the checkout.
pub fn use_git_checkouts(dir: PathBuf) {
    let mut dirs = GIT_CHECKOUTS.write();
    if !dirs.contains(&dir) {
        dirs.push(dir);
    }
}

/// The docs directory an annotation names: `dir:<relative>` against the
/// directory of the file the entity came from — a `file:` path, or the same
/// path inside the git checkout of a `url:` location
/// (`url:REPO#REV:path/catalog-info.yaml` or
/// `url:https://host/org/repo/blob/REV/path/catalog-info.yaml`) — confined
/// to that directory.
pub fn docs_dir(techdocs_ref: &str, managed_by: &str) -> Result<PathBuf, DocsError> {
    let Some(relative) = techdocs_ref.trim().strip_prefix("dir:") else {
        return Err(DocsError::UnsupportedRef(techdocs_ref.to_string()));
    };
    let relative = if relative.trim().is_empty() { "." } else { relative.trim() };
    if let Some(file) = managed_by.strip_prefix("file:") {
        let base = Path::new(file).parent().ok_or_else(|| DocsError::NotAFile(managed_by.to_string()))?;
        let root = Root::new(base)?;
        return Ok(root.resolve(root.path(), relative)?);
    }
    let checkouts = GIT_CHECKOUTS.read().clone();
    checkouts
        .iter()
        .find_map(|dir| git_docs_dir(dir, managed_by, relative))
        .ok_or_else(|| DocsError::NotAFile(managed_by.to_string()))
}

/// `dir:` of an entity from a git location: the checkout is found by the
/// repository URL (with the revision as branch, or the default branch),
/// and the directory is confined to the checkout.
fn git_docs_dir(checkouts: &Path, managed_by: &str, relative: &str) -> Option<PathBuf> {
    let url = managed_by.strip_prefix("url:")?;
    // Both forms `GitSource::link_to` writes.
    let (repos, revision, file): (Vec<String>, &str, &str) = if let Some((repo, rest)) = url.split_once("/blob/") {
        let (revision, file) = rest.split_once('/')?;
        (vec![repo.to_string(), format!("{repo}.git")], revision, file)
    } else {
        let (repo, rest) = url.rsplit_once('#')?;
        let (revision, file) = rest.split_once(':')?;
        (vec![repo.to_string()], revision, file)
    };
    check_relative(file).ok()?;
    let file_dir = Path::new(file).parent().map(Path::to_path_buf).unwrap_or_default();
    for repo in &repos {
        for branch in [Some(revision), None] {
            let source = plinth_catalog::git::GitSource::from_target(repo, branch);
            let checkout = checkouts.join(source.checkout_name());
            let Ok(root) = Root::new(&checkout) else { continue };
            let Ok(base) = root.resolve(root.path(), &file_dir.to_string_lossy()) else { continue };
            if let Ok(dir) = root.resolve(&base, relative) {
                if dir.is_dir() {
                    return Some(dir);
                }
            }
        }
    }
    None
}

fn read_bounded(path: &Path, limit: u64, shown: &str) -> Result<Vec<u8>, DocsError> {
    use std::io::Read;
    let io = |source| DocsError::Io { path: shown.to_string(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(DocsError::TooLarge { path: shown.to_string(), limit });
    }
    Ok(bytes)
}

/// Reads the site in `dir` (which must hold `mkdocs.yml` or `mkdocs.yaml`).
pub fn open_site(dir: &Path) -> Result<DocsSite, DocsError> {
    let root = Root::new(dir)?;
    let mkdocs = ["mkdocs.yml", "mkdocs.yaml"]
        .iter()
        .map(|name| root.path().join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| DocsError::NoMkdocs(root.path().to_path_buf()))?;
    let mkdocs = root.check(&mkdocs)?;
    let text = String::from_utf8_lossy(&read_bounded(&mkdocs, MAX_MKDOCS_BYTES, "mkdocs.yml")?).into_owned();
    let config = parse_mkdocs(&text);
    let docs_dir = config.docs_dir.as_deref().unwrap_or("docs");
    check_relative(docs_dir)?;
    let docs_path = root.resolve(root.path(), docs_dir)?;
    let docs = Root::new(&docs_path)?;
    let mut pages = Vec::new();
    walk(&docs, docs.path(), "", 0, &mut pages);
    pages.sort();
    let nav = match config.nav {
        Some(nav) if !nav.is_empty() => nav,
        _ => default_nav(&pages),
    };
    let fallback = root.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(DocsSite { site_name: config.site_name.unwrap_or(fallback), nav, pages, docs })
}

fn walk(docs: &Root, dir: &Path, prefix: &str, depth: usize, pages: &mut Vec<String>) {
    if depth > MAX_DEPTH || pages.len() >= MAX_PAGES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if pages.len() >= MAX_PAGES {
            return;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // Links are followed only while they stay inside the docs root.
        let Ok(path) = docs.check(&entry.path()) else { continue };
        let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if path.is_dir() {
            walk(docs, &path, &relative, depth + 1, pages);
        } else if is_markdown(&name) {
            pages.push(relative);
        }
    }
}

fn is_markdown(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

/// What Plinth reads of `mkdocs.yml`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MkdocsConfig {
    pub site_name: Option<String>,
    pub docs_dir: Option<String>,
    pub nav: Option<Vec<NavItem>>,
}

/// Reads `site_name`, `docs_dir` and `nav` from an `mkdocs.yml`. A file
/// that does not parse (mkdocs allows Python tags) gives the defaults.
pub fn parse_mkdocs(text: &str) -> MkdocsConfig {
    let limits = plinth_model::yaml::YamlLimits::default();
    let Some(Ok(value)) = plinth_model::yaml::parse_documents(text, &limits).into_iter().next().map(|d| d.value) else {
        return MkdocsConfig::default();
    };
    let mut nav = Vec::new();
    if let Some(items) = value["nav"].as_array() {
        nav_items(items, 0, &mut nav);
    }
    MkdocsConfig {
        site_name: value["site_name"].as_str().map(str::to_string),
        docs_dir: value["docs_dir"].as_str().map(str::to_string),
        nav: value["nav"].is_array().then_some(nav),
    }
}

fn nav_items(items: &[Value], depth: usize, out: &mut Vec<NavItem>) {
    if depth > MAX_DEPTH {
        return;
    }
    for item in items {
        if out.len() >= MAX_PAGES * 2 {
            return;
        }
        match item {
            Value::String(page) => out.push(nav_entry(&page_title(page), page, depth)),
            Value::Object(map) => {
                for (title, target) in map {
                    match target {
                        Value::String(page) => out.push(nav_entry(title, page, depth)),
                        Value::Array(children) => {
                            out.push(NavItem { title: title.clone(), page: None, url: None, depth });
                            nav_items(children, depth + 1, out);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn nav_entry(title: &str, target: &str, depth: usize) -> NavItem {
    let external = target.starts_with("https://") || target.starts_with("http://");
    NavItem {
        title: title.to_string(),
        page: (!external).then(|| target.trim_start_matches("./").to_string()),
        url: external.then(|| target.to_string()),
        depth,
    }
}

/// `guides/getting-started.md` → `Getting started`; `index.md` → `Home`.
fn page_title(page: &str) -> String {
    let stem = page.rsplit('/').next().unwrap_or(page);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    if stem.eq_ignore_ascii_case("index") || stem.eq_ignore_ascii_case("readme") {
        return if page.contains('/') {
            page_title(page.rsplit_once('/').map_or("", |(dir, _)| dir))
        } else {
            "Home".to_string()
        };
    }
    let words = stem.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Without an mkdocs nav: every page, `index.md` first.
fn default_nav(pages: &[String]) -> Vec<NavItem> {
    let mut sorted: Vec<&String> = pages.iter().collect();
    sorted.sort_by_key(|p| (!p.eq_ignore_ascii_case("index.md"), p.matches('/').count(), (*p).clone()));
    sorted.into_iter().map(|p| nav_entry(&page_title(p), p, p.matches('/').count())).collect()
}

/// A page path from a URL or a link, as a path relative to the docs root:
/// `/` separators, no `.` segments, no `..` or absolute path.
pub fn clean_page_path(path: &str) -> Result<String, DocsError> {
    check_relative(path)?;
    let normal = normalize(Path::new(path.trim()));
    let parts: Vec<String> = normal.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    Ok(parts.join("/"))
}

impl DocsSite {
    /// The page to open first: the nav's first page, else `index.md`, else
    /// the first page.
    pub fn home(&self) -> Option<&str> {
        self.nav
            .iter()
            .filter_map(|n| n.page.as_deref())
            .find(|p| self.pages.iter().any(|x| x == p))
            .or_else(|| self.pages.iter().find(|p| p.eq_ignore_ascii_case("index.md")).map(String::as_str))
            .or_else(|| self.pages.first().map(String::as_str))
    }

    fn file(&self, path: &str) -> Result<(String, PathBuf), DocsError> {
        let clean = clean_page_path(path)?;
        let resolved = self.docs.resolve(self.docs.path(), &clean)?;
        if !resolved.is_file() {
            return Err(DocsError::NoPage(clean));
        }
        Ok((clean, resolved))
    }

    /// One Markdown page (a path relative to the docs directory).
    pub fn page(&self, path: &str) -> Result<DocsPage, DocsError> {
        if !is_markdown(path) {
            return Err(DocsError::WrongType(path.to_string()));
        }
        let (clean, file) = self.file(path)?;
        let markdown = String::from_utf8_lossy(&read_bounded(&file, MAX_PAGE_BYTES, &clean)?).into_owned();
        let nav_title = self.nav.iter().find(|n| n.page.as_deref() == Some(clean.as_str())).map(|n| n.title.clone());
        let title = first_heading(&markdown).or(nav_title).unwrap_or_else(|| page_title(&clean));
        Ok(DocsPage { path: clean, title, markdown })
    }

    /// An image (png, jpg, gif, svg, webp) from the docs directory.
    pub fn asset(&self, path: &str) -> Result<DocsAsset, DocsError> {
        let content_type = image_type(path).ok_or_else(|| DocsError::WrongType(path.to_string()))?;
        let (clean, file) = self.file(path)?;
        Ok(DocsAsset { bytes: read_bounded(&file, MAX_ASSET_BYTES, &clean)?, content_type })
    }
}

/// The content type of an image file name, `None` for anything else.
pub fn image_type(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let ext = lower.rsplit_once('.')?.1;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// The text of the first level-one ATX heading.
fn first_heading(markdown: &str) -> Option<String> {
    let mut fenced = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        }
        if !fenced {
            if let Some(text) = trimmed.strip_prefix("# ") {
                let text = text.trim().trim_end_matches('#').trim();
                if !text.is_empty() {
                    return Some(text.to_string());
                }
            }
        }
    }
    None
}

// ------------------------------------------------------------ the site cache

type SiteCache = parking_lot::Mutex<HashMap<PathBuf, (Instant, Option<Arc<DocsSite>>)>>;

fn sites() -> &'static SiteCache {
    static SITES: OnceLock<SiteCache> = OnceLock::new();
    SITES.get_or_init(Default::default)
}

/// The site in `dir`, read at most every [`SITE_TTL`]; `None` when it has
/// none that Plinth can read.
fn cached_site(dir: &Path) -> Option<Arc<DocsSite>> {
    if let Some((at, site)) = sites().lock().get(dir) {
        if at.elapsed() < SITE_TTL {
            return site.clone();
        }
    }
    let site = open_site(dir).ok().map(Arc::new);
    let mut cache = sites().lock();
    if cache.len() >= MAX_SITES {
        cache.clear();
    }
    cache.insert(dir.to_path_buf(), (Instant::now(), site.clone()));
    site
}

type DirCache = parking_lot::Mutex<HashMap<(String, String), (Instant, Option<PathBuf>)>>;

/// [`docs_dir`] remembered for [`SITE_TTL`]: the policy view asks for every
/// entity, and the entities of one file share their directory.
fn cached_dir(reference: &str, managed_by: &str) -> Option<PathBuf> {
    static DIRS: OnceLock<DirCache> = OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let key = (reference.to_string(), managed_by.to_string());
    if let Some((at, dir)) = dirs.lock().get(&key) {
        if at.elapsed() < SITE_TTL {
            return dir.clone();
        }
    }
    let dir = docs_dir(reference, managed_by).ok();
    let mut cache = dirs.lock();
    if cache.len() >= MAX_SITES * 4 {
        cache.clear();
    }
    cache.insert(key, (Instant::now(), dir.clone()));
    dir
}

/// The techdocs-ref annotation of an entity body.
fn annotation(body: &Value) -> Option<&str> {
    body["metadata"]["annotations"][TECHDOCS_REF].as_str()
}

/// The docs site of an entity: `Ok(None)` when it has no techdocs-ref.
pub fn site_of(record: &EntityRecord) -> Result<Option<Arc<DocsSite>>, DocsError> {
    let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
    let Some(reference) = annotation(&body) else { return Ok(None) };
    let dir = docs_dir(reference, &record.managed_by)?;
    match cached_site(&dir) {
        Some(site) => Ok(Some(site)),
        None => Err(DocsError::NoMkdocs(dir)),
    }
}

/// The documentation facts policy input carries for an entity
/// (`input.plinth.docs`): `{"ref": …, "pages": N}` where `pages` counts the
/// Markdown pages that render (0 when the reference leads nowhere), or
/// `null` without a techdocs-ref.
pub fn policy_fact(entity: &Value, managed_by: &str) -> Value {
    let Some(reference) = annotation(entity) else { return Value::Null };
    let pages = cached_dir(reference, managed_by).and_then(|dir| cached_site(&dir)).map_or(0, |s| s.pages.len());
    serde_json::json!({ "ref": reference, "pages": pages })
}

// ------------------------------------------------------------ search

/// A docs page found by a search.
#[derive(Debug, Clone)]
pub struct DocsHit {
    pub entity_ref: String,
    /// The entity's title, else its name.
    pub entity_title: String,
    pub page: String,
    pub title: String,
    /// Text around the first match.
    pub snippet: String,
    pub score: u32,
}

#[derive(Debug)]
struct IndexedPage {
    entity_ref: String,
    entity_title: String,
    page: String,
    title: String,
    title_lower: String,
    text: String,
    text_lower: String,
}

#[derive(Default)]
struct DocsIndex {
    seq: i64,
    built: Option<Instant>,
    pages: Arc<Vec<IndexedPage>>,
}

fn index() -> &'static parking_lot::Mutex<DocsIndex> {
    static INDEX: OnceLock<parking_lot::Mutex<DocsIndex>> = OnceLock::new();
    INDEX.get_or_init(Default::default)
}

/// Entities with a techdocs-ref, grouped by docs directory (found through
/// the filter index: no entity body is parsed).
fn candidates(state: &CatalogState) -> Vec<(PathBuf, Vec<(String, String)>)> {
    let key = format!("metadata.annotations.{TECHDOCS_REF}");
    let mut by_dir: HashMap<PathBuf, Vec<(String, String)>> = HashMap::new();
    // Many entities share a file and a reference: resolve each pair once.
    let mut resolved: HashMap<(String, String), Option<PathBuf>> = HashMap::new();
    for (value, _) in state.facet(&key, state.live()) {
        let filter = EntityFilter {
            any_of: vec![FilterGroup {
                all_of: vec![Condition { key: key.clone(), values: Some(vec![value.to_lowercase()]) }],
            }],
        };
        for node in &state.filters().matching(&filter, state.live()) {
            let Some(record) = state.entity(node) else { continue };
            let pair = (value.clone(), record.managed_by.to_string());
            let dir = resolved.entry(pair).or_insert_with(|| docs_dir(&value, &record.managed_by).ok()).clone();
            let Some(dir) = dir else { continue };
            if !by_dir.contains_key(&dir) && by_dir.len() >= MAX_INDEXED_SITES {
                continue;
            }
            let title = record.summary.title.clone().unwrap_or_else(|| record.summary.name.clone());
            by_dir.entry(dir).or_default().push((record.entity_ref.to_string(), title));
        }
    }
    by_dir.into_iter().collect()
}

/// Markdown as plain text for the index: markup characters dropped.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len().min(MAX_INDEXED_TEXT));
    for line in markdown.lines() {
        let line = line.trim_start_matches(['#', '>', ' ', '-', '*']);
        for c in line.chars() {
            if out.len() >= MAX_INDEXED_TEXT {
                return out;
            }
            if !matches!(c, '*' | '_' | '`' | '[' | ']' | '<' | '>' | '|') {
                out.push(c);
            }
        }
        out.push(' ');
    }
    out
}

fn build(dirs: Vec<(PathBuf, Vec<(String, String)>)>) -> Vec<IndexedPage> {
    let mut pages = Vec::new();
    for (dir, entities) in dirs {
        let Some(site) = cached_site(&dir) else { continue };
        // Several entities may share one site; it is indexed under the first
        // (by reference) so a search lists each page once.
        let Some((entity_ref, entity_title)) = entities.iter().min_by(|a, b| a.0.cmp(&b.0)) else { continue };
        for path in &site.pages {
            let Ok(page) = site.page(path) else { continue };
            let text = plain_text(&page.markdown);
            pages.push(IndexedPage {
                entity_ref: entity_ref.clone(),
                entity_title: entity_title.clone(),
                page: page.path,
                title_lower: page.title.to_lowercase(),
                title: page.title,
                text_lower: text.to_lowercase(),
                text,
            });
        }
    }
    pages
}

fn snippet(text: &str, lower: &str, word: &str) -> String {
    const AROUND: usize = 80;
    let at = lower.find(word).unwrap_or(0);
    // Lower-casing may change byte lengths; fall back to the start.
    let at = if text.is_char_boundary(at) && text.len() == lower.len() { at } else { 0 };
    let mut start = at.saturating_sub(AROUND);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + AROUND * 2).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(text[start..end].trim());
    if end < text.len() {
        out.push('…');
    }
    out
}

fn search_pages(pages: &[IndexedPage], query: &str, limit: usize) -> Vec<DocsHit> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<DocsHit> = pages
        .iter()
        .filter_map(|p| {
            let mut score = 0u32;
            for word in &words {
                let in_title = p.title_lower.contains(word.as_str());
                let in_text = p.text_lower.matches(word.as_str()).take(20).count() as u32;
                if !in_title && in_text == 0 {
                    return None;
                }
                score += if in_title { 10 } else { 0 } + in_text;
            }
            Some(DocsHit {
                entity_ref: p.entity_ref.clone(),
                entity_title: p.entity_title.clone(),
                page: p.page.clone(),
                title: p.title.clone(),
                snippet: snippet(&p.text, &p.text_lower, &words[0]),
                score,
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.entity_ref.cmp(&b.entity_ref)).then(a.page.cmp(&b.page)));
    hits.truncate(limit);
    hits
}

impl CatalogUseCases<'_> {
    /// The docs site of the entity with `key`: `Ok(None)` when it has no
    /// techdocs-ref; not found when the entity is not in the catalogue.
    pub fn docs(&self, caller: &Caller, key: &str) -> AppResult<Option<Arc<DocsSite>>> {
        let record = {
            let state = self.view(caller)?;
            state.get(key).cloned().ok_or_else(|| AppError::not_found(format!("no entity {key}")))?
        };
        Ok(site_of(&record)?)
    }

    /// Docs pages whose title or text holds every word of `query`, best
    /// first. The index follows the catalogue and re-reads the files at
    /// most every [`SITE_TTL`].
    pub fn search_docs(&self, caller: &Caller, query: &str, limit: usize) -> AppResult<Vec<DocsHit>> {
        let limit = limit.clamp(1, MAX_DOCS_HITS);
        let (seq, dirs) = {
            let state = self.view(caller)?;
            let current = index().lock();
            let fresh = current.seq == state.last_seq && current.built.is_some_and(|b| b.elapsed() < SITE_TTL);
            if fresh {
                let pages = current.pages.clone();
                drop(current);
                drop(state);
                return Ok(search_pages(&pages, query, limit));
            }
            drop(current);
            (state.last_seq, candidates(&state))
        };
        let pages = Arc::new(build(dirs));
        *index().lock() = DocsIndex { seq, built: Some(Instant::now()), pages: pages.clone() };
        Ok(search_pages(&pages, query, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(dir: &Path) {
        std::fs::create_dir_all(dir.join("docs/guides")).unwrap();
        std::fs::write(
            dir.join("mkdocs.yml"),
            "site_name: Auth\nnav:\n  - Home: index.md\n  - Guides:\n      - Setup: guides/setup.md\n  - Status: https://status.example.com\n",
        )
        .unwrap();
        std::fs::write(dir.join("docs/index.md"), "# Auth Service\n\nIssues tokens.\n").unwrap();
        std::fs::write(dir.join("docs/guides/setup.md"), "Intro\n\n```sh\n# not a title\n```\n").unwrap();
        std::fs::write(dir.join("docs/diagram.png"), [0x89, b'P', b'N', b'G']).unwrap();
    }

    #[test]
    fn mkdocs_nav_parses_pages_sections_and_links() {
        let config = parse_mkdocs("site_name: S\ndocs_dir: pages\nnav:\n  - intro.md\n  - Guides:\n    - How: guides/how-to.md\n  - Ext: https://x.example\n");
        assert_eq!(config.site_name.as_deref(), Some("S"));
        assert_eq!(config.docs_dir.as_deref(), Some("pages"));
        let nav = config.nav.unwrap();
        let shape: Vec<(&str, Option<&str>, Option<&str>, usize)> =
            nav.iter().map(|n| (n.title.as_str(), n.page.as_deref(), n.url.as_deref(), n.depth)).collect();
        assert_eq!(
            shape,
            [
                ("Intro", Some("intro.md"), None, 0),
                ("Guides", None, None, 0),
                ("How", Some("guides/how-to.md"), None, 1),
                ("Ext", None, Some("https://x.example"), 0),
            ]
        );
        // Python tags mkdocs allows do not break the page: defaults.
        assert_eq!(parse_mkdocs("a: [unclosed"), MkdocsConfig::default());
    }

    #[test]
    fn site_reads_pages_titles_and_images() {
        let dir = tempfile::tempdir().unwrap();
        site(dir.path());
        let site = open_site(dir.path()).unwrap();
        assert_eq!(site.site_name, "Auth");
        assert_eq!(site.pages, ["guides/setup.md", "index.md"]);
        assert_eq!(site.home(), Some("index.md"));
        assert_eq!(site.page("index.md").unwrap().title, "Auth Service");
        // No level-one heading outside code: the nav title.
        assert_eq!(site.page("./guides/setup.md").unwrap().title, "Setup");
        assert_eq!(site.asset("diagram.png").unwrap().content_type, "image/png");
        assert!(matches!(site.asset("index.md"), Err(DocsError::WrongType(_))));
        assert!(matches!(site.page("missing.md"), Err(DocsError::NoPage(_))));
    }

    #[test]
    fn paths_are_confined() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("repo");
        site(&dir);
        std::fs::write(outer.path().join("secret.md"), "secret").unwrap();
        std::fs::write(outer.path().join("secret.png"), "secret").unwrap();
        let site = open_site(&dir).unwrap();
        assert!(matches!(site.page("../../secret.md"), Err(DocsError::Path(_))));
        assert!(matches!(site.page("/etc/passwd.md"), Err(DocsError::Path(_))));
        assert!(site.asset("../../secret.png").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outer.path().join("secret.md"), dir.join("docs/link.md")).unwrap();
            assert!(matches!(site.page("link.md"), Err(DocsError::Path(_))), "a link out of the docs is refused");
            let listed = open_site(&dir).unwrap();
            assert!(!listed.pages.iter().any(|p| p == "link.md"), "{:?}", listed.pages);
        }
        // techdocs-ref resolution: relative to the catalog file, not above it.
        let file = format!("file:{}", dir.join("catalog-info.yaml").display());
        assert_eq!(docs_dir("dir:.", &file).unwrap(), dir.canonicalize().unwrap());
        assert!(matches!(docs_dir("dir:..", &file), Err(DocsError::Path(_))));
        assert!(matches!(docs_dir("url:https://x", &file), Err(DocsError::UnsupportedRef(_))));
        assert!(matches!(docs_dir("dir:.", "url:https://x/y.yaml"), Err(DocsError::NotAFile(_))));
        assert!(clean_page_path("a/./b/../c.md").unwrap_err().to_string().contains(".."));
        assert_eq!(clean_page_path("./a/b.md").unwrap(), "a/b.md");
    }

    #[test]
    fn policy_fact_counts_pages_that_render() {
        let dir = tempfile::tempdir().unwrap();
        site(dir.path());
        let file = format!("file:{}", dir.path().join("catalog-info.yaml").display());
        let entity = serde_json::json!({"metadata": {"annotations": {TECHDOCS_REF: "dir:."}}});
        assert_eq!(policy_fact(&entity, &file)["pages"], 2);
        let nowhere = serde_json::json!({"metadata": {"annotations": {TECHDOCS_REF: "dir:./nothing"}}});
        assert_eq!(policy_fact(&nowhere, &file)["pages"], 0);
        assert_eq!(policy_fact(&serde_json::json!({"metadata": {}}), &file), Value::Null);
    }

    #[test]
    fn search_ranks_titles_and_needs_every_word() {
        let page = |title: &str, text: &str| IndexedPage {
            entity_ref: "component:default/a".into(),
            entity_title: "A".into(),
            page: format!("{title}.md"),
            title: title.into(),
            title_lower: title.to_lowercase(),
            text: text.into(),
            text_lower: text.to_lowercase(),
        };
        let pages = vec![page("Rotation", "how keys rotate"), page("Other", "we rotate keys daily"), page("X", "none")];
        let hits = search_pages(&pages, "Rotat keys", 10);
        assert_eq!(hits.iter().map(|h| h.title.as_str()).collect::<Vec<_>>(), ["Rotation", "Other"]);
        assert!(hits[1].snippet.contains("rotate keys"), "{}", hits[1].snippet);
        assert!(search_pages(&pages, "  ", 10).is_empty());
        assert_eq!(plain_text("# T\n\n**bold** `code` [l](x)"), "T  bold code l(x) ");
    }

    #[test]
    fn docs_of_an_entity_from_a_git_location_come_from_its_checkout() {
        let checkouts = tempfile::tempdir().unwrap();
        let url = "/srv/repos/shop";
        for (branch, form) in [(Some("main"), format!("url:{url}#main:svc/catalog-info.yaml")), (None, String::new())] {
            let name = plinth_catalog::git::GitSource::from_target(url, branch).checkout_name();
            let dir = checkouts.path().join(name).join("svc");
            std::fs::create_dir_all(dir.join("docs")).unwrap();
            std::fs::write(dir.join("mkdocs.yml"), "site_name: Shop\n").unwrap();
            if form.is_empty() {
                continue;
            }
            let found = git_docs_dir(checkouts.path(), &form, ".").unwrap();
            assert_eq!(found, dir.canonicalize().unwrap());
            // Confined to the checkout: `..` and other repositories fail.
            assert!(git_docs_dir(checkouts.path(), &form, "../..").is_none());
            assert!(
                git_docs_dir(checkouts.path(), &format!("url:{url}#main:../../etc/catalog-info.yaml"), ".").is_none()
            );
            assert!(git_docs_dir(checkouts.path(), "url:/srv/repos/other#main:svc/catalog-info.yaml", ".").is_none());
        }
        // The forge form, with the default branch's checkout.
        let forge = "https://git.example.com/org/shop";
        let name = plinth_catalog::git::GitSource::from_target(&format!("{forge}.git"), None).checkout_name();
        let dir = checkouts.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let found = git_docs_dir(checkouts.path(), &format!("url:{forge}/blob/main/catalog-info.yaml"), ".").unwrap();
        assert_eq!(found, dir.canonicalize().unwrap());
    }
}
