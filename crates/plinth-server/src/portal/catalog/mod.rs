//! The catalogue's pages: home, the explorer (facet state in the URL),
//! entity pages with kind panels, relation graphs (`graph.rs`), search and
//! "did you mean" suggestions. They read the projection through
//! `platform.catalog()` and never walk the whole catalogue per request.

mod apidoc;
mod entity;
mod graph;
mod highlight;
mod relations;

use super::view::{EntityLink, OwnerLink, When};
use super::NotFoundView;
use super::{entity_href, error_page, lookup_key, page, query, render};
use super::{policy, signals};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
pub(super) use entity::entity_page;
#[cfg(test)]
use entity::EntityView;
use plinth_app::catalog::{CatalogState, Direction, EntityFilter, EntityRecord, FilterGroup, NodeId};
use plinth_app::Caller;
use plinth_model::parse_ref_lenient;
use roaring::RoaringBitmap;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

const PAGE_SIZE: usize = 50;
const FACET_VALUES: usize = 30;
const RECENT: usize = 15;
const ERRORS_ON_HOME: usize = 20;

/// The explorer's facets: URL parameter, filter key, heading.
const FACETS: &[(&str, &str, &str)] = &[
    ("kind", "kind", "Kind"),
    ("type", "spec.type", "Type"),
    ("owner", "spec.owner", "Owner"),
    ("lifecycle", "spec.lifecycle", "Lifecycle"),
    ("tag", "metadata.tags", "Tag"),
    ("namespace", "metadata.namespace", "Namespace"),
];

/// A labelled link that may dangle: an entity page's owner, system and
/// domain, the entity an ingestion error names.
#[derive(Debug, Serialize)]
struct Link {
    label: String,
    href: Option<String>,
    /// A reference to an entity not in the catalogue.
    missing: bool,
}

impl From<EntityLink> for Link {
    fn from(link: EntityLink) -> Link {
        Link { label: link.label, href: link.href, missing: link.missing }
    }
}

impl From<OwnerLink> for Link {
    fn from(owner: OwnerLink) -> Link {
        Link { label: owner.label, href: owner.href, missing: false }
    }
}

// ---------------------------------------------------------------- home

/// The home page: entity counts per kind, recent changes, the latest
/// ingestion errors.
#[derive(Debug, Serialize)]
struct HomeView {
    title: &'static str,
    /// Live entities.
    total: u64,
    kinds: Vec<KindCount>,
    recent: Vec<RecentRow>,
    /// The latest [`ERRORS_ON_HOME`], newest first.
    errors: Vec<ErrorRow>,
    /// All ingestion errors.
    error_count: usize,
}

#[derive(Debug, Serialize)]
struct KindCount {
    kind: String,
    count: u64,
    /// The explorer filtered to the kind.
    href: String,
}

/// A recent change to an entity.
#[derive(Debug, Serialize)]
struct RecentRow {
    #[serde(rename = "ref")]
    entity_ref: String,
    /// `None` when the entity is gone.
    href: Option<String>,
    /// `updated` or `deleted`.
    op: &'static str,
    at: When,
}

/// An ingestion error, as a row of the errors table.
#[derive(Debug, Serialize)]
struct ErrorRow {
    /// `error` or `warning`.
    severity: String,
    location: String,
    line: Option<u32>,
    /// The entity it names, linked when in the catalogue.
    entity: Option<Link>,
    field: Option<String>,
    message: String,
}

impl ErrorRow {
    fn of(state: &CatalogState, error: &plinth_app::catalog::IngestionError) -> ErrorRow {
        let d = &error.diagnostic;
        let entity = d.entity_ref.as_deref().map(|r| {
            let key = parse_ref_lenient(r, Some("component")).map(|r| r.key()).unwrap_or_default();
            let href = state.get(&key).map(|record| entity_href(&record.entity_ref.to_string()));
            Link { label: r.to_string(), missing: href.is_none(), href }
        });
        ErrorRow {
            severity: format!("{:?}", d.severity).to_lowercase(),
            location: d.location.clone(),
            line: d.line,
            entity,
            field: d.field.clone(),
            message: d.message.clone(),
        }
    }
}

pub(super) async fn home(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let errors = app.platform.catalog().errors(&caller, None, None).await.unwrap_or_default();
    let view = {
        let state = match app.platform.catalog().view(&caller) {
            Ok(state) => state,
            Err(error) => return error_page(error.into()),
        };
        let kinds = state
            .facet("kind", state.live())
            .into_iter()
            .map(|(kind, count)| KindCount { href: format!("/catalog?{}", query(&[("kind", &kind)])), kind, count })
            .collect();
        let recent = state
            .recent()
            .take(RECENT)
            .map(|change| {
                let key = parse_ref_lenient(&change.entity_ref, None).map(|r| r.key()).unwrap_or_default();
                let live = state.get(&key).is_some();
                RecentRow {
                    entity_ref: change.entity_ref.clone(),
                    href: live.then(|| entity_href(&change.entity_ref)),
                    op: if live { "updated" } else { "deleted" },
                    at: When::at(change.at),
                }
            })
            .collect();
        HomeView {
            title: "Home",
            total: state.len(),
            kinds,
            recent,
            errors: errors.iter().rev().take(ERRORS_ON_HOME).map(|e| ErrorRow::of(&state, e)).collect(),
            error_count: errors.len(),
        }
    };
    page(StatusCode::OK, "home.html", &view)
}

// ---------------------------------------------------------------- explorer

/// The deepest explorer page (the offset it implies is bounded by the
/// catalogue API's own bound).
const MAX_EXPLORER_PAGE: usize = 100_000;

/// Explorer state from the URL.
struct Explorer {
    selected: Vec<Vec<String>>,
    /// `rel=<type>:<ref>`: entities holding relation `type` to `ref`.
    relation: Option<(&'static str, String)>,
    q: String,
    sort: String,
    page: usize,
}

impl Explorer {
    fn from(params: &Params) -> Result<Explorer, ApiError> {
        Ok(Explorer {
            selected: FACETS
                .iter()
                .map(|(param, _, _)| params.all(param).into_iter().filter(|v| !v.is_empty()).collect())
                .collect(),
            relation: match params.one("rel") {
                Some(value) => Some(relation_param(value)?),
                None => None,
            },
            q: params.one("q").unwrap_or("").trim().to_string(),
            sort: params.one("sort").unwrap_or("").to_string(),
            page: params.int_or("page", 1..=MAX_EXPLORER_PAGE, 1)?,
        })
    }

    /// The URL with facet `toggle` (index, value) flipped, or `page` set.
    fn href(&self, toggle: Option<(usize, &str)>, page: Option<usize>, sort: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (i, (param, _, _)) in FACETS.iter().enumerate() {
            let values = &self.selected[i];
            for value in values {
                if toggle.is_some_and(|(t, v)| t == i && v.eq_ignore_ascii_case(value)) {
                    continue;
                }
                pairs.push((param, value));
            }
            if let Some((t, v)) = toggle {
                if t == i && !values.iter().any(|x| x.eq_ignore_ascii_case(v)) {
                    pairs.push((param, v));
                }
            }
        }
        let rel = self.relation.as_ref().map(|(t, r)| format!("{t}:{r}"));
        if let Some(rel) = &rel {
            pairs.push(("rel", rel));
        }
        if !self.q.is_empty() {
            pairs.push(("q", &self.q));
        }
        let sort = sort.unwrap_or(&self.sort);
        if !sort.is_empty() {
            pairs.push(("sort", sort));
        }
        let page_text = page.filter(|p| *p > 1).map(|p| p.to_string());
        if let Some(p) = &page_text {
            pairs.push(("page", p));
        }
        format!("/catalog?{}", query(&pairs))
    }

    /// Filter of every selected facet except `skip`.
    fn filter(&self, skip: Option<usize>) -> EntityFilter {
        let mut conditions: Vec<plinth_app::catalog::Condition> = FACETS
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip && !self.selected[*i].is_empty())
            .map(|(i, (_, key, _))| plinth_app::catalog::Condition {
                key: key.to_string(),
                values: Some(self.selected[i].iter().map(|v| v.to_lowercase()).collect()),
            })
            .collect();
        if let Some((relation, target)) = &self.relation {
            conditions.push(plinth_app::catalog::Condition {
                key: format!("relations.{}", relation.to_lowercase()),
                values: Some(vec![target.to_lowercase()]),
            });
        }
        if conditions.is_empty() {
            EntityFilter::default()
        } else {
            EntityFilter { any_of: vec![FilterGroup { all_of: conditions }] }
        }
    }

    fn order(&self) -> Option<(&'static str, bool)> {
        let (descending, key) = match self.sort.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, self.sort.as_str()),
        };
        let field = match key {
            "name" => "metadata.name",
            "kind" => "kind",
            "type" => "spec.type",
            "owner" => "spec.owner",
            "lifecycle" => "spec.lifecycle",
            _ => return None,
        };
        Some((field, descending))
    }
}

/// `dependsOn:component:default/x` as a relation type and a full entity
/// reference (kind and namespace filled in).
fn relation_param(value: &str) -> Result<(&'static str, String), ApiError> {
    let bad = || {
        ApiError::from(plinth_app::AppError::invalid_field(
            "rel",
            "write rel as <relation>:<entity ref>, e.g. dependsOn:component:default/auth-service",
        ))
    };
    let (relation, target) = value.split_once(':').ok_or_else(bad)?;
    let relation = relations::canonical(relation.trim()).ok_or_else(bad)?;
    let target = parse_ref_lenient(target.trim(), Some("component")).map_err(|_| bad())?;
    Ok((relation, target.to_string()))
}

/// Lower-case names and titles of every live entity in one string, so the
/// explorer's text filter scans contiguous memory instead of chasing one
/// pointer per entity. Rebuilt when the projection moves on.
#[derive(Default)]
pub(crate) struct NameCache(parking_lot::Mutex<Option<Arc<NameIndex>>>);

pub(crate) struct NameIndex {
    seq: i64,
    len: u64,
    /// `name\ntitle\n` per entity.
    text: String,
    /// Start of each entity's segment in `text`, ascending.
    starts: Vec<(usize, NodeId)>,
}

impl NameCache {
    fn get(&self, state: &CatalogState) -> Arc<NameIndex> {
        let mut cached = self.0.lock();
        if let Some(index) = cached.as_ref().filter(|i| i.seq == state.last_seq && i.len == state.len()) {
            return index.clone();
        }
        let mut text = String::with_capacity(state.len() as usize * 32);
        let mut starts = Vec::with_capacity(state.len() as usize);
        for node in state.live() {
            if let Some(record) = state.entity(node) {
                starts.push((text.len(), node));
                text.push_str(&record.summary.name.to_lowercase());
                text.push('\n');
                if let Some(title) = &record.summary.title {
                    text.push_str(&title.to_lowercase());
                }
                text.push('\n');
            }
        }
        let index = Arc::new(NameIndex { seq: state.last_seq, len: state.len(), text, starts });
        *cached = Some(index.clone());
        index
    }
}

/// Entities whose name or title contains `term`, case-insensitively (the
/// answer `substring_matches` gives over `metadata.name`/`metadata.title`).
fn name_matches(cache: &NameCache, state: &CatalogState, term: &str, within: &RoaringBitmap) -> RoaringBitmap {
    let needle = term.to_lowercase();
    if needle.contains('\n') {
        let keys = ["metadata.name".to_string(), "metadata.title".to_string()];
        return state.substring_matches(term, &keys, within);
    }
    let index = cache.get(state);
    let mut ids = RoaringBitmap::new();
    for (offset, _) in index.text.match_indices(needle.as_str()) {
        let at = index.starts.partition_point(|(start, _)| *start <= offset);
        if let Some((_, node)) = at.checked_sub(1).and_then(|i| index.starts.get(i)) {
            ids.insert(*node);
        }
    }
    ids & within
}

fn matching(state: &CatalogState, filter: &EntityFilter, universe: &RoaringBitmap) -> RoaringBitmap {
    if filter.is_empty() {
        universe.clone()
    } else {
        state.filters().matching(filter, universe)
    }
}

/// The explorer: one page of entities matching the facets and the name
/// filter, with facet counts, sort headers and pager links.
#[derive(Debug, Serialize)]
struct ExplorerView {
    title: &'static str,
    /// The name filter.
    q: String,
    sort: String,
    /// Inputs that keep the selection when the filter form submits.
    hidden: Vec<HiddenInput>,
    total: usize,
    rows: Vec<EntityLink>,
    facets: Vec<Facet>,
    sorts: Vec<SortColumn>,
    /// The selected facet values, as removable chips.
    selected: Vec<Chip>,
    page: usize,
    pages: usize,
    /// Position of the first and last row shown (1-based; 0 when empty).
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
    clear: &'static str,
}

#[derive(Debug, Serialize)]
struct HiddenInput {
    name: &'static str,
    value: String,
}

/// A facet of the explorer or the search page, with its top values.
#[derive(Debug, Serialize)]
struct Facet {
    /// URL parameter.
    param: &'static str,
    heading: &'static str,
    values: Vec<FacetValue>,
}

#[derive(Debug, Serialize)]
struct FacetValue {
    value: String,
    count: u64,
    /// Selected in the explorer (always false on the search page).
    selected: bool,
    /// The explorer with the value toggled.
    href: String,
}

/// A sortable column header.
#[derive(Debug, Serialize)]
struct SortColumn {
    key: &'static str,
    label: &'static str,
    /// Sort by this column (descending when it already sorts ascending).
    href: String,
    /// `aria-sort`: `ascending`, `descending` or `none`.
    aria: &'static str,
}

/// A selected facet value; `href` removes it.
#[derive(Debug, Serialize)]
struct Chip {
    heading: String,
    value: String,
    href: String,
}

pub(super) async fn explorer(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    axum::Extension(names): axum::Extension<Arc<NameCache>>,
    params: Params,
) -> Response {
    let explorer = match Explorer::from(&params) {
        Ok(explorer) => explorer,
        Err(error) => return error_page(error),
    };
    let view = {
        let state = match app.platform.catalog().view(&caller) {
            Ok(state) => state,
            Err(error) => return error_page(error.into()),
        };
        let universe = if explorer.q.is_empty() {
            state.live().clone()
        } else {
            name_matches(&names, &state, &explorer.q, state.live())
        };
        let matched = matching(&state, &explorer.filter(None), &universe);
        let total = matched.len() as usize;
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page_no = explorer.page.min(pages);
        let rows = state
            .ordered_page(&matched, explorer.order(), (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
            .into_iter()
            .filter_map(|n| state.entity(n).map(|r| EntityLink::in_state(&state, r)))
            .collect();
        let facets = FACETS
            .iter()
            .enumerate()
            .map(|(i, &(param, key, heading))| {
                let within = if explorer.selected[i].is_empty() {
                    matched.clone()
                } else {
                    matching(&state, &explorer.filter(Some(i)), &universe)
                };
                let mut counts = state.facet(key, &within);
                counts.truncate(FACET_VALUES);
                // Selected values stay visible even when outside the top values.
                for value in &explorer.selected[i] {
                    if !counts.iter().any(|(v, _)| v.eq_ignore_ascii_case(value)) {
                        counts.push((value.clone(), 0));
                    }
                }
                let values = counts
                    .into_iter()
                    .map(|(value, count)| FacetValue {
                        selected: explorer.selected[i].iter().any(|v| v.eq_ignore_ascii_case(&value)),
                        href: explorer.href(Some((i, &value)), None, None),
                        value,
                        count,
                    })
                    .collect();
                Facet { param, heading, values }
            })
            .collect();
        let sorts =
            [("name", "Name"), ("kind", "Kind"), ("type", "Type"), ("owner", "Owner"), ("lifecycle", "Lifecycle")]
                .into_iter()
                .map(|(key, label)| {
                    let active = explorer.sort == key;
                    let next = if active { format!("-{key}") } else { key.to_string() };
                    let aria = if active {
                        "ascending"
                    } else if explorer.sort.strip_prefix('-') == Some(key) {
                        "descending"
                    } else {
                        "none"
                    };
                    SortColumn { key, label, href: explorer.href(None, None, Some(&next)), aria }
                })
                .collect();
        let mut selected: Vec<Chip> = FACETS
            .iter()
            .enumerate()
            .flat_map(|(i, (_, _, heading))| explorer.selected[i].iter().map(move |v| (i, *heading, v)))
            .map(|(i, heading, value)| Chip {
                heading: heading.to_string(),
                value: value.clone(),
                href: explorer.href(Some((i, value)), None, None),
            })
            .collect();
        if let Some((relation, target)) = &explorer.relation {
            let without = Explorer {
                selected: explorer.selected.clone(),
                relation: None,
                q: explorer.q.clone(),
                sort: explorer.sort.clone(),
                page: 1,
            };
            let key = parse_ref_lenient(target, None).map(|r| r.key()).unwrap_or_default();
            let value = state.get(&key).map_or_else(|| target.clone(), |r| super::view::display_name(r));
            selected.push(Chip { heading: relations::label(relation), value, href: without.href(None, None, None) });
        }
        ExplorerView {
            title: "Catalogue",
            q: explorer.q.clone(),
            sort: explorer.sort.clone(),
            hidden: explorer_hidden(&explorer),
            total,
            rows,
            facets,
            sorts,
            selected,
            page: page_no,
            pages,
            first: if total == 0 { 0 } else { (page_no - 1) * PAGE_SIZE + 1 },
            last: ((page_no - 1) * PAGE_SIZE + PAGE_SIZE).min(total),
            prev: (page_no > 1).then(|| explorer.href(None, Some(page_no - 1), None)),
            next: (page_no < pages).then(|| explorer.href(None, Some(page_no + 1), None)),
            clear: "/catalog",
        }
    };
    page(StatusCode::OK, "catalog.html", &view)
}

/// Hidden inputs that keep the facet selection when the filter form submits.
fn explorer_hidden(explorer: &Explorer) -> Vec<HiddenInput> {
    let mut hidden = Vec::new();
    for (i, (param, _, _)) in FACETS.iter().enumerate() {
        for value in &explorer.selected[i] {
            hidden.push(HiddenInput { name: param, value: value.clone() });
        }
    }
    if !explorer.sort.is_empty() {
        hidden.push(HiddenInput { name: "sort", value: explorer.sort.clone() });
    }
    if let Some((relation, target)) = &explorer.relation {
        hidden.push(HiddenInput { name: "rel", value: format!("{relation}:{target}") });
    }
    hidden
}

// ---------------------------------------------------------------- entity (entity.rs)

// ---------------------------------------------------------------- graph

/// The relation graph of an entity, with depth and direction controls.
#[derive(Debug, Serialize)]
struct GraphView {
    title: String,
    entity: EntityLink,
    #[serde(rename = "ref")]
    entity_ref: String,
    href: String,
    /// Transitive dependents.
    impact: usize,
    depth: u32,
    /// `upstream`, `downstream` or `both`.
    direction: &'static str,
    depths: Vec<DepthChoice>,
    directions: Vec<DirectionChoice>,
    graph: graph::Drawing,
}

#[derive(Debug, Serialize)]
struct DepthChoice {
    depth: u32,
    href: String,
    current: bool,
}

#[derive(Debug, Serialize)]
struct DirectionChoice {
    name: &'static str,
    label: &'static str,
    href: String,
    current: bool,
}

pub(super) async fn graph_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    params: Params,
) -> Response {
    let key = lookup_key(&kind, &namespace, &name);
    let depth = match params.int_or("depth", 1..=4, 2) {
        Ok(depth) => depth,
        Err(error) => return error_page(error),
    };
    let direction = match params.one("direction") {
        Some("upstream") => graph::Mode::Upstream,
        Some("downstream") => graph::Mode::Downstream,
        _ => graph::Mode::Both,
    };
    let view = {
        let state = match app.platform.catalog().view(&caller) {
            Ok(state) => state,
            Err(error) => return error_page(error.into()),
        };
        let Some(record) = state.get(&key).cloned() else {
            drop(state);
            return not_found_entity(&app, &caller, &kind, &namespace, &name);
        };
        let impact = state.impact_count(&record.key, Direction::Dependents).unwrap_or(0);
        let drawn = graph::draw(&state, record.node, depth, direction);
        let entity_ref = record.entity_ref.to_string();
        let href = entity_href(&entity_ref);
        let link = |d: u32, m: graph::Mode| format!("{href}/graph?depth={d}&direction={}", m.name());
        let depths = (1..=4).map(|d| DepthChoice { depth: d, href: link(d, direction), current: d == depth }).collect();
        let directions = [graph::Mode::Upstream, graph::Mode::Both, graph::Mode::Downstream]
            .into_iter()
            .map(|m| DirectionChoice {
                name: m.name(),
                label: m.label(),
                href: link(depth, m),
                current: m == direction,
            })
            .collect();
        GraphView {
            title: format!("Graph of {}", record.summary.title.as_deref().unwrap_or(&record.summary.name)),
            entity: EntityLink::of(&record),
            entity_ref,
            href,
            impact,
            depth,
            direction: direction.name(),
            depths,
            directions,
            graph: drawn,
        }
    };
    page(StatusCode::OK, "graph.html", &view)
}

// ---------------------------------------------------------------- search

const SEARCH_LIMIT: usize = 50;
/// Ranked results go [`plinth_app::catalog::MAX_SEARCH_DEPTH`] deep.
const MAX_SEARCH_PAGE: usize = plinth_app::catalog::MAX_SEARCH_DEPTH / SEARCH_LIMIT;

/// The search page: one page of ranked results with facet counts over all
/// of them. Empty (no facets, no pager) until there is a query.
#[derive(Debug, Serialize)]
struct SearchView {
    title: String,
    q: String,
    results: Vec<EntityLink>,
    total: usize,
    /// Facets over every match; each value opens the explorer.
    facets: Vec<Facet>,
    prev: Option<String>,
    next: Option<String>,
    /// Why the search failed (a query the index cannot parse).
    error: Option<String>,
    /// Docs pages matching the query (first page of results only).
    docs: Vec<DocsResult>,
}

/// A docs page found by the search.
#[derive(Debug, Serialize)]
struct DocsResult {
    title: String,
    href: String,
    entity_title: String,
    entity_href: String,
    snippet: String,
}

/// Docs results shown above the entity results.
const DOCS_RESULTS: usize = 10;

async fn docs_results(app: &AppState, caller: &Caller, q: &str) -> Vec<DocsResult> {
    let (app, caller, q) = (app.clone(), caller.clone(), q.to_string());
    let found =
        tokio::task::spawn_blocking(move || app.platform.catalog().search_docs(&caller, &q, DOCS_RESULTS)).await;
    let Ok(Ok(hits)) = found else { return Vec::new() };
    hits.into_iter()
        .map(|h| {
            let entity_href = entity_href(&h.entity_ref);
            DocsResult {
                href: format!("{entity_href}?{}", query(&[("docs", &h.page)])),
                title: h.title,
                entity_title: h.entity_title,
                entity_href,
                snippet: h.snippet,
            }
        })
        .collect()
}

impl SearchView {
    fn empty(q: String, error: Option<String>) -> SearchView {
        SearchView {
            title: "Search".into(),
            q,
            results: Vec::new(),
            total: 0,
            facets: Vec::new(),
            prev: None,
            next: None,
            error,
            docs: Vec::new(),
        }
    }
}

pub(super) async fn search_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let q = params.one("q").unwrap_or("").trim().to_string();
    let page_no = match params.int_or("page", 1..=MAX_SEARCH_PAGE, 1) {
        Ok(page_no) => page_no,
        Err(error) => return error_page(error),
    };
    if q.is_empty() {
        return page(StatusCode::OK, "search.html", &SearchView::empty(q, None));
    }
    let docs = if page_no == 1 { docs_results(&app, &caller, &q).await } else { Vec::new() };
    let offset = (page_no - 1) * SEARCH_LIMIT;
    let searched = app.platform.catalog().search_index().search(&q, 0, offset + SEARCH_LIMIT);
    let (hits, all) = match searched {
        Ok(found) => found,
        Err(error) => {
            let mut view = SearchView::empty(q, Some(error.to_string()));
            view.docs = docs;
            return render(StatusCode::OK, "search.html", &view, &view.q);
        }
    };
    let view = {
        let state = match app.platform.catalog().view(&caller) {
            Ok(state) => state,
            Err(error) => return error_page(error.into()),
        };
        let matched = all & state.live();
        let results = hits
            .iter()
            .filter(|h| matched.contains(h.id))
            .skip(offset)
            .take(SEARCH_LIMIT)
            .filter_map(|h| state.entity(h.id).map(|r| EntityLink::in_state(&state, r)))
            .collect();
        let facets = FACETS
            .iter()
            .map(|&(param, key, heading)| {
                let values = state
                    .facet(key, &matched)
                    .into_iter()
                    .take(15)
                    .map(|(value, count)| FacetValue {
                        href: format!("/catalog?{}", query(&[(param, &value), ("q", &q)])),
                        value,
                        count,
                        selected: false,
                    })
                    .collect();
                Facet { param, heading, values }
            })
            .collect();
        let total = matched.len() as usize;
        let more = total > offset + SEARCH_LIMIT;
        let page_href = |page: usize| format!("/search?{}", query(&[("q", &q), ("page", &page.to_string())]));
        SearchView {
            title: format!("Search: {q}"),
            results,
            total,
            facets,
            next: more.then(|| page_href(page_no + 1)),
            prev: (page_no > 1).then(|| page_href(page_no - 1)),
            error: None,
            docs,
            q: q.clone(),
        }
    };
    render(StatusCode::OK, "search.html", &view, &view.q)
}

pub(super) fn not_found_entity(app: &AppState, caller: &Caller, kind: &str, namespace: &str, name: &str) -> Response {
    let wanted = format!("{kind}:{namespace}/{name}");
    let suggestions = suggest(app, caller, name);
    let view = NotFoundView { title: "Not found", path: "", wanted: Some(&wanted), suggestions, query: name };
    page(StatusCode::NOT_FOUND, "not_found.html", &view)
}

pub(super) fn suggest(app: &AppState, caller: &Caller, text: &str) -> Vec<EntityLink> {
    let words: String =
        text.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect::<String>().trim().to_string();
    if words.is_empty() {
        return Vec::new();
    }
    // Names close to the one asked for first (typos), then a text search.
    let index = app.platform.catalog().search_index();
    let mut hits = index.suggest(&words, 10).unwrap_or_default();
    if hits.len() < 5 {
        let (more, _) = index.search(&words, 0, 10).unwrap_or_default();
        hits.extend(more.into_iter().filter(|h| !hits.iter().any(|seen| seen.id == h.id)).collect::<Vec<_>>());
    }
    let Ok(state) = app.platform.catalog().view(caller) else { return Vec::new() };
    hits.iter().filter_map(|h| state.entity(h.id).map(|r| EntityLink::of(r))).take(5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, view: &impl Serialize) -> String {
        let chrome = crate::portal::Chrome {
            view,
            asset_version: "test",
            nav: "catalog",
            header_q: "",
            session: Default::default(),
        };
        let found = crate::portal::templates().get_template(template).expect("the template");
        found.render(minijinja::Value::from_serialize(&chrome)).unwrap_or_else(|e| panic!("{template}: {e:#}"))
    }

    fn dangling(entity_ref: &str) -> EntityLink {
        EntityLink {
            entity_ref: entity_ref.into(),
            href: None,
            label: entity_ref.into(),
            name: "x".into(),
            kind: "component".into(),
            spec_type: None,
            lifecycle: None,
            owner: None,
            description: None,
            missing: true,
        }
    }

    fn bare_entity(kind: &str) -> EntityView {
        EntityView {
            title: "x".into(),
            entity_ref: format!("{kind}:default/x"),
            href: format!("/catalog/default/{kind}/x"),
            summary: entity::Facts {
                kind: kind.into(),
                namespace: "default".into(),
                name: "x".into(),
                spec_type: None,
                lifecycle: None,
                description: None,
                tags: Vec::new(),
            },
            owner: None,
            system: None,
            domain: None,
            actions: Vec::new(),
            links: Vec::new(),
            annotations: Vec::new(),
            labels: Vec::new(),
            relations: Vec::new(),
            source: None,
            errors: Vec::new(),
            impact: 0,
            dependencies: 0,
            updated: When::between(
                time::macros::datetime!(2030-01-01 00:00:00 UTC),
                time::macros::datetime!(2030-01-01 00:03:00 UTC),
            ),
            kind_lower: kind.into(),
            policy: policy::PolicyPanel::default(),
            signals_href: None,
            docs_href: None,
            tab: "overview",
            docs: None,
            api: None,
            ai: None,
            star: None,
        }
    }

    fn links(n: usize) -> Vec<relations::KindGroup> {
        vec![relations::KindGroup {
            kind: "component".into(),
            items: (0..n).map(|i| dangling(&format!("component:default/c{i}"))).collect(),
        }]
    }

    /// Strict undefined values: every branch of the entity page must find
    /// its fields, with optional parts present and absent.
    #[test]
    fn entity_page_renders_with_and_without_every_optional_part() {
        let html = render("entity.html", &bare_entity("component"));
        assert!(html.contains(r#"data-policy-state="disabled""#), "{html}");
        assert!(
            html.contains(r#"<time datetime="2030-01-01T00:00:00Z" title="2030-01-01 00:00:00 UTC">3 min ago</time>"#),
            "{html}"
        );

        let mut pending = bare_entity("group");
        pending.policy = policy::tests::pending_panel();
        assert!(render("entity.html", &pending).contains("policy-pending"));

        let mut full = bare_entity("api");
        full.summary.spec_type = Some("openapi".into());
        full.summary.lifecycle = Some("production".into());
        full.summary.description = Some("d".into());
        full.summary.tags = vec!["t".into()];
        full.owner = Some(Link { label: "Team A".into(), href: None, missing: false });
        full.system = Some(Link { label: "s".into(), href: Some("/catalog/default/system/s".into()), missing: false });
        full.domain = Some(Link { label: "d".into(), href: None, missing: true });
        full.actions = entity::actions(
            &serde_json::json!({"backstage.io/source-location": "url:https://x/", "backstage.io/kubernetes-id": "k"}),
            &serde_json::json!([{"url": "https://g/d", "title": "Grafana dashboard"}]),
        );
        full.links = vec![
            entity::ExternalLink { url: Some("https://x".into()), text: "x".into() },
            entity::ExternalLink { url: None, text: "y".into() },
        ];
        full.annotations = vec![entity::KeyValue { key: "a".into(), value: "b".into() }];
        full.relations = vec![
            relations::RelationGroup {
                relation: "dependencyOf".into(),
                label: "Used by".into(),
                count: 201,
                kinds: links(12),
                more: 1,
                collapsed: true,
                explorer: relations::explorer_href("dependencyOf", "api:default/x"),
                list_id: None,
            },
            relations::RelationGroup {
                relation: "hasMember".into(),
                label: "Has members".into(),
                count: 1,
                kinds: links(1),
                more: 0,
                collapsed: false,
                explorer: relations::explorer_href("hasMember", "api:default/x"),
                list_id: Some("group-members"),
            },
        ];
        full.source =
            Some(entity::Source { text: "url:https://x/y.yaml".into(), url: Some("https://x/y.yaml".into()) });
        full.errors = vec![ErrorRow {
            severity: "error".into(),
            location: "y.yaml".into(),
            line: None,
            entity: Some(Link { label: "component:default/x".into(), href: None, missing: true }),
            field: None,
            message: "bad".into(),
        }];
        full.policy = policy::tests::evaluated_panel();
        full.signals_href = Some("/catalog/default/api/x/signals".into());
        full.docs_href = Some("/catalog/default/api/x?docs=index.md".into());
        let mut api = entity::api_panel(
            "openapi: 3.0.0\ninfo: {title: T, version: '1'}\nservers: [{url: 'https://api'}]\npaths:\n  /x/{id}:\n    get:\n      summary: s\n      parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok, content: {application/json: {schema: {type: object, properties: {a: {type: string}}}}}}}\n",
            "openapi",
        );
        api.truncated = true;
        api.channels = entity::api_panel(r#"{"channels": {"c": {"publish": {"message": {"name": "m", "payload": {"properties": {"p": {"type": "string"}}}}}}}}"#, "asyncapi").channels;
        api.services =
            entity::api_panel("service S { rpc A (B) returns (stream C); } message B { string f = 1; }", "grpc")
                .services;
        full.api = Some(api);
        full.ai = Some(entity::AiPanel {
            risk_tier: Some("high".into()),
            data_classification: None,
            residency: None,
            autonomy: None,
            provider: None,
        });
        let html = render("entity.html", &full);
        for id in [
            "api-definition",
            "api-operations",
            "api-channels",
            "api-services",
            "group-members",
            "ai-governance",
            "policy-violations",
            "team-scorecards",
            "annotations",
            "entity-actions",
            "docs-tab",
            r#"data-relation="dependencyOf""#,
            r#"<details class="relation-list">"#,
            "/catalog?rel=dependsOn%3Aapi%3Adefault%2Fx",
            "and 1 more",
            "Used by",
        ] {
            assert!(html.contains(id), "{id} missing: {html}");
        }

        // The Docs tab.
        let mut docs = bare_entity("component");
        docs.tab = "docs";
        docs.docs_href = Some("/catalog/default/component/x?docs=index.md".into());
        docs.docs = Some(entity::DocsTab {
            site_name: "Site".into(),
            nav: vec![entity::NavLink {
                title: "Home".into(),
                href: Some("/h".into()),
                depth: 0,
                current: true,
                external: false,
            }],
            page_title: "Home".into(),
            path: "index.md".into(),
            html: "<h1 id=\"home\">Home</h1>".into(),
            toc: vec![entity::TocEntry { level: 2, text: "Part".into(), id: "part".into() }],
            error: None,
        });
        let html = render("entity.html", &docs);
        assert!(html.contains(r#"<h1 id="home">Home</h1>"#) && html.contains("docs-nav"), "{html}");
        assert!(!html.contains("policy-panel"), "the docs tab shows the docs only: {html}");
    }

    #[test]
    fn list_pages_render_empty_and_full() {
        let home = HomeView {
            title: "Home",
            total: 0,
            kinds: Vec::new(),
            recent: vec![RecentRow {
                entity_ref: "component:default/x".into(),
                href: None,
                op: "deleted",
                at: When::between(
                    time::macros::datetime!(2030-01-01 00:00 UTC),
                    time::macros::datetime!(2030-01-01 00:03 UTC),
                ),
            }],
            errors: Vec::new(),
            error_count: 0,
        };
        let html = render("home.html", &home);
        assert!(html.contains("deleted"), "{html}");
        assert!(
            html.contains(r#"<time datetime="2030-01-01T00:00:00Z" title="2030-01-01 00:00:00 UTC">3 min ago</time>"#),
            "recent changes show relative times: {html}"
        );
        let search = SearchView::empty(String::new(), None);
        assert!(render("search.html", &search).contains("Type a name"));
        let mut failed = SearchView::empty("a:".into(), Some("bad query".into()));
        failed.results = vec![dangling("component:default/x")];
        assert!(render("search.html", &failed).contains("The search failed"));
    }
}
