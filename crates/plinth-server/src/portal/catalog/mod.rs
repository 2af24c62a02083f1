//! The catalogue's pages: home, the explorer (facet state in the URL),
//! entity pages with kind panels, relation graphs (`graph.rs`), search and
//! "did you mean" suggestions. They read the projection through
//! `platform.catalog()` and never walk the whole catalogue per request.

mod graph;
mod highlight;

use super::{entity_href, error_page, lookup_key, page, query};
use super::{policy, signals};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::catalog::{CatalogState, Direction, EntityFilter, EntityRecord, FilterGroup, NodeId};
use plinth_app::Caller;
use plinth_model::parse_ref_lenient;
use roaring::RoaringBitmap;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const PAGE_SIZE: usize = 50;
const FACET_VALUES: usize = 30;
const RECENT: usize = 15;
const ERRORS_ON_HOME: usize = 20;
/// Targets listed per relation type on an entity page.
const RELATION_TARGETS: usize = 200;

/// The explorer's facets: URL parameter, filter key, heading.
const FACETS: &[(&str, &str, &str)] = &[
    ("kind", "kind", "Kind"),
    ("type", "spec.type", "Type"),
    ("owner", "spec.owner", "Owner"),
    ("lifecycle", "spec.lifecycle", "Lifecycle"),
    ("tag", "metadata.tags", "Tag"),
    ("namespace", "metadata.namespace", "Namespace"),
];

/// A link to a node: `{ref, href, label, kind, title, description, missing}`.
fn node_link(state: &CatalogState, node: NodeId) -> Value {
    let entity_ref = state.ref_of(node);
    match state.entity(node) {
        Some(record) => record_link(record),
        None => json!({"ref": entity_ref, "label": entity_ref, "missing": true,
                       "kind": entity_ref.split_once(':').map_or("", |(k, _)| k)}),
    }
}

fn record_link(record: &EntityRecord) -> Value {
    let s = &record.summary;
    let entity_ref = record.entity_ref.to_string();
    json!({
        "ref": entity_ref,
        "href": entity_href(&entity_ref),
        "label": s.title.as_deref().unwrap_or(&s.name),
        "name": s.name,
        "kind": s.kind,
        "type": s.spec_type,
        "lifecycle": s.lifecycle,
        "owner": s.owner.as_deref().map(|o| owner_link(o, &s.namespace)),
        "description": s.description,
    })
}

/// An owner value (`team-a`, `group:ops/team-a`) as a link to the group.
fn owner_link(owner: &str, namespace: &str) -> Value {
    let parsed = plinth_model::parse_entity_ref(
        owner,
        plinth_model::RefContext { default_kind: Some("group"), default_namespace: namespace },
    );
    match parsed {
        Ok(entity_ref) => json!({"label": owner, "href": entity_href(&entity_ref.to_string())}),
        Err(_) => json!({"label": owner}),
    }
}

// ---------------------------------------------------------------- home

pub(super) async fn home(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    let errors = app.platform.catalog().errors(&caller, None, None).await.unwrap_or_default();
    let error_count = errors.len();
    let context = {
        let state = app.platform.catalog().view(&caller);
        let kinds: Vec<Value> = state
            .facet("kind", state.live())
            .into_iter()
            .map(|(kind, count)| {
                json!({"kind": kind, "count": count, "href": format!("/catalog?{}", query(&[("kind", &kind)]))})
            })
            .collect();
        let recent: Vec<Value> = state
            .recent()
            .take(RECENT)
            .map(|change| {
                let key = parse_ref_lenient(&change.entity_ref, None).map(|r| r.key()).unwrap_or_default();
                let live = state.get(&key).is_some();
                json!({
                    "ref": change.entity_ref,
                    "href": live.then(|| entity_href(&change.entity_ref)),
                    "op": if live { "updated" } else { "deleted" },
                    "at": change.at,
                })
            })
            .collect();
        let shown: Vec<Value> = errors.iter().rev().take(ERRORS_ON_HOME).map(|e| error_json(&state, e)).collect();
        json!({
            "title": "Home",
            "total": state.len(),
            "kinds": kinds,
            "recent": recent,
            "errors": shown,
            "error_count": error_count,
        })
    };
    page(StatusCode::OK, "home.html", context)
}

fn error_json(state: &CatalogState, error: &plinth_app::catalog::IngestionError) -> Value {
    let d = &error.diagnostic;
    let entity = d.entity_ref.as_deref().map(|r| {
        let key = parse_ref_lenient(r, Some("component")).map(|r| r.key()).unwrap_or_default();
        match state.get(&key) {
            Some(record) => json!({"label": r, "href": entity_href(&record.entity_ref.to_string())}),
            None => json!({"label": r}),
        }
    });
    json!({
        "severity": format!("{:?}", d.severity).to_lowercase(),
        "location": d.location,
        "line": d.line,
        "entity": entity,
        "field": d.field,
        "message": d.message,
    })
}

// ---------------------------------------------------------------- explorer

/// The deepest explorer page (the offset it implies is bounded by the
/// catalogue API's own bound).
const MAX_EXPLORER_PAGE: usize = 100_000;

/// Explorer state from the URL.
struct Explorer {
    selected: Vec<Vec<String>>,
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
        let conditions: Vec<plinth_app::catalog::Condition> = FACETS
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip && !self.selected[*i].is_empty())
            .map(|(i, (_, key, _))| plinth_app::catalog::Condition {
                key: key.to_string(),
                values: Some(self.selected[i].iter().map(|v| v.to_lowercase()).collect()),
            })
            .collect();
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
    let context = {
        let state = app.platform.catalog().view(&caller);
        let universe = if explorer.q.is_empty() {
            state.live().clone()
        } else {
            name_matches(&names, &state, &explorer.q, state.live())
        };
        let matched = matching(&state, &explorer.filter(None), &universe);
        let total = matched.len() as usize;
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page_no = explorer.page.min(pages);
        let rows: Vec<Value> = state
            .ordered_page(&matched, explorer.order(), (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
            .into_iter()
            .filter_map(|n| state.entity(n).map(|r| record_link(r)))
            .collect();
        let facets: Vec<Value> = FACETS
            .iter()
            .enumerate()
            .map(|(i, (param, key, heading))| {
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
                let values: Vec<Value> = counts
                    .into_iter()
                    .map(|(value, count)| {
                        let selected = explorer.selected[i].iter().any(|v| v.eq_ignore_ascii_case(&value));
                        json!({"value": value, "count": count, "selected": selected,
                               "href": explorer.href(Some((i, &value)), None, None)})
                    })
                    .collect();
                json!({"param": param, "heading": heading, "values": values})
            })
            .collect();
        let sorts: Vec<Value> = [
            ("name", "Name"),
            ("kind", "Kind"),
            ("type", "Type"),
            ("owner", "Owner"),
            ("lifecycle", "Lifecycle"),
        ]
        .iter()
        .map(|(key, label)| {
            let active = explorer.sort == *key;
            let next = if active { format!("-{key}") } else { key.to_string() };
            let direction = if active {
                "ascending"
            } else if explorer.sort.strip_prefix('-') == Some(key) {
                "descending"
            } else {
                "none"
            };
            json!({"key": key, "label": label, "href": explorer.href(None, None, Some(&next)), "aria": direction})
        })
        .collect();
        let selected: Vec<Value> = FACETS
            .iter()
            .enumerate()
            .flat_map(|(i, (_, _, heading))| {
                explorer.selected[i].iter().map(move |v| (i, *heading, v.clone())).collect::<Vec<_>>()
            })
            .map(|(i, heading, value)| {
                json!({"heading": heading, "value": value, "href": explorer.href(Some((i, &value)), None, None)})
            })
            .collect();
        json!({
            "title": "Catalogue",
            "q": explorer.q,
            "sort": explorer.sort,
            "hidden": explorer_hidden(&explorer),
            "total": total,
            "rows": rows,
            "facets": facets,
            "sorts": sorts,
            "selected": selected,
            "page": page_no,
            "pages": pages,
            "first": if total == 0 { 0 } else { (page_no - 1) * PAGE_SIZE + 1 },
            "last": ((page_no - 1) * PAGE_SIZE + PAGE_SIZE).min(total),
            "prev": (page_no > 1).then(|| explorer.href(None, Some(page_no - 1), None)),
            "next": (page_no < pages).then(|| explorer.href(None, Some(page_no + 1), None)),
            "clear": "/catalog",
        })
    };
    page(StatusCode::OK, "catalog.html", context)
}

/// Hidden inputs that keep the facet selection when the filter form submits.
fn explorer_hidden(explorer: &Explorer) -> Vec<Value> {
    let mut hidden = Vec::new();
    for (i, (param, _, _)) in FACETS.iter().enumerate() {
        for value in &explorer.selected[i] {
            hidden.push(json!({"name": param, "value": value}));
        }
    }
    if !explorer.sort.is_empty() {
        hidden.push(json!({"name": "sort", "value": explorer.sort}));
    }
    hidden
}

// ---------------------------------------------------------------- entity

pub(super) async fn entity_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Response {
    let key = lookup_key(&kind, &namespace, &name);
    let errors = app.platform.catalog().errors(&caller, None, None).await.unwrap_or_default();
    let (mut context, entity_ref) = {
        let state = app.platform.catalog().view(&caller);
        let Some(record) = state.get(&key).cloned() else {
            drop(state);
            return not_found_entity(&app, &caller, &kind, &namespace, &name);
        };
        let own_errors: Vec<Value> = errors
            .iter()
            .filter(|e| {
                e.diagnostic.entity_ref.as_deref().is_some_and(|r| {
                    parse_ref_lenient(r, Some("component")).map(|r| r.key()).unwrap_or_else(|_| r.to_lowercase()) == key
                })
            })
            .map(|e| error_json(&state, e))
            .collect();
        (entity_context(&state, &record, own_errors), record.entity_ref.clone())
    };
    let kind_lower = context["kind_lower"].as_str().unwrap_or("").to_string();
    context["policy"] = policy::entity_panel(&app, &caller, &entity_ref);
    if signals::SIGNAL_KINDS.contains(&kind_lower.as_str()) {
        context["signals_href"] = json!(format!("{}/signals", context["href"].as_str().unwrap_or_default()));
    }
    page(StatusCode::OK, "entity.html", context)
}

fn entity_context(state: &CatalogState, record: &EntityRecord, errors: Vec<Value>) -> Value {
    let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
    let s = &record.summary;
    let entity_ref = record.entity_ref.to_string();
    let href = entity_href(&entity_ref);
    let relations = state.relations_of(record.node);

    let mut by_type: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for (rel, target) in &relations {
        by_type.entry(rel.name()).or_default().push(*target);
    }
    let relation_groups: Vec<Value> = by_type
        .iter()
        .map(|(rel, targets)| {
            let shown: Vec<Value> = targets.iter().take(RELATION_TARGETS).map(|n| node_link(state, *n)).collect();
            json!({"type": rel, "targets": shown, "more": targets.len().saturating_sub(RELATION_TARGETS),
                   "count": targets.len()})
        })
        .collect();
    let first_of = |rel: &str| by_type.get(rel).and_then(|t| t.first()).map(|n| node_link(state, *n));
    let owner = first_of("ownedBy").or_else(|| s.owner.as_deref().map(|o| owner_link(o, &s.namespace)));

    let metadata = &body["metadata"];
    let spec = &body["spec"];
    let links: Vec<Value> = metadata["links"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter_map(|l| {
                    let url = l["url"].as_str()?;
                    let safe = url.starts_with("https://") || url.starts_with("http://");
                    Some(json!({"url": safe.then_some(url), "text": l["title"].as_str().unwrap_or(url)}))
                })
                .collect()
        })
        .unwrap_or_default();
    let annotations: Vec<Value> = metadata["annotations"]
        .as_object()
        .map(|a| a.iter().map(|(k, v)| json!({"key": k, "value": value_text(v)})).collect())
        .unwrap_or_default();
    let labels: Vec<Value> = metadata["labels"]
        .as_object()
        .map(|a| a.iter().map(|(k, v)| json!({"key": k, "value": value_text(v)})).collect())
        .unwrap_or_default();
    let spec_ref = |field: &str, default_kind: &str| -> Option<Value> {
        let text = spec[field].as_str()?;
        let parsed = plinth_model::parse_entity_ref(
            text,
            plinth_model::RefContext { default_kind: Some(default_kind), default_namespace: &s.namespace },
        )
        .ok()?;
        let exists = state.get(&parsed.key()).is_some();
        Some(json!({"label": text, "href": exists.then(|| entity_href(&parsed.to_string())), "missing": !exists}))
    };
    let impact = state.impact(&record.key, Direction::Dependents, None).map_or(0, |i| i.reached.len());
    let dependencies = state.impact(&record.key, Direction::Dependencies, None).map_or(0, |i| i.reached.len());

    let kind = s.kind.to_lowercase();
    let mut context = json!({
        "title": s.title.as_deref().unwrap_or(&s.name),
        "ref": entity_ref,
        "href": href,
        "summary": s,
        "owner": owner,
        "system": spec_ref("system", "system"),
        "domain": spec_ref("domain", "domain"),
        "links": links,
        "annotations": annotations,
        "labels": labels,
        "relations": relation_groups,
        "source": source_json(&record.managed_by),
        "errors": errors,
        "impact": impact,
        "dependencies": dependencies,
        "updated_at": record.updated_at,
        "kind_lower": kind,
    });

    match kind.as_str() {
        "api" => {
            let definition = spec["definition"].as_str().unwrap_or("");
            context["api"] = api_panel(definition, s.spec_type.as_deref().unwrap_or(""));
        }
        "group" => {
            let list = |rel: &str| -> Vec<Value> {
                by_type
                    .get(rel)
                    .map(|t| t.iter().take(RELATION_TARGETS).map(|n| node_link(state, *n)).collect())
                    .unwrap_or_default()
            };
            let mut owned: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for node in by_type.get("ownerOf").into_iter().flatten().take(1000) {
                let link = node_link(state, *node);
                let kind = link["kind"].as_str().unwrap_or("").to_string();
                owned.entry(kind).or_default().push(link);
            }
            let owned: Vec<Value> =
                owned.into_iter().map(|(kind, items)| json!({"kind": kind, "items": items})).collect();
            context["group"] = json!({
                "members": list("hasMember"),
                "parent": list("childOf"),
                "children": list("parentOf"),
                "owned": owned,
                "profile": spec["profile"],
            });
        }
        "model" | "dataset" | "prompt" | "agent" | "tool" => {
            let list = |rels: &[&str]| -> Vec<Value> {
                rels.iter()
                    .flat_map(|rel| by_type.get(rel).into_iter().flatten())
                    .take(RELATION_TARGETS)
                    .map(|n| {
                        let mut link = node_link(state, *n);
                        link["via"] = json!("");
                        link
                    })
                    .collect()
            };
            let field = |name: &str| -> Option<String> {
                match &spec[name] {
                    Value::Null => None,
                    Value::Array(items) => Some(items.iter().map(value_text).collect::<Vec<_>>().join(", ")),
                    other => Some(value_text(other)),
                }
            };
            context["ai"] = json!({
                "riskTier": field("riskTier"),
                "dataClassification": field("dataClassification"),
                "residency": field("residency"),
                "autonomy": field("autonomy"),
                "provider": field("provider"),
                "models": list(&["usesModel"]),
                "prompts": list(&["usesPrompt"]),
                "tools": list(&["usesTool"]),
                "trainedOn": list(&["trainedOn"]),
                "usedBy": list(&["modelUsedBy", "promptUsedBy", "toolUsedBy", "trainingDataFor"]),
            });
        }
        _ => {}
    }
    context
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `url:https://…/blob/…` as a link; anything else as text.
fn source_json(managed_by: &str) -> Value {
    if managed_by.is_empty() {
        return Value::Null;
    }
    let url = managed_by.strip_prefix("url:").filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    json!({"text": managed_by, "url": url})
}

const MAX_DEFINITION_BYTES: usize = 120 * 1024;
const MAX_OPERATIONS: usize = 300;

fn api_panel(definition: &str, api_type: &str) -> Value {
    let truncated = definition.len() > MAX_DEFINITION_BYTES;
    let mut shown = definition;
    if truncated {
        let mut cut = MAX_DEFINITION_BYTES;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown = &shown[..cut];
    }
    let operations = if api_type.eq_ignore_ascii_case("openapi") { openapi_operations(definition) } else { None };
    json!({
        "lines": highlight::lines(shown),
        "truncated": truncated,
        "bytes": definition.len(),
        "operations": operations,
    })
}

fn openapi_operations(definition: &str) -> Option<Vec<Value>> {
    let document: Value = if definition.trim_start().starts_with('{') {
        serde_json::from_str(definition).ok()?
    } else {
        let limits = plinth_model::yaml::YamlLimits::default();
        plinth_model::yaml::parse_documents(definition, &limits).into_iter().next()?.value.ok()?
    };
    let paths = document["paths"].as_object()?;
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch", "head", "options", "trace"] {
            if let Some(op) = item.get(method) {
                let summary = op["summary"].as_str().or_else(|| op["operationId"].as_str()).unwrap_or("");
                operations.push(json!({"method": method.to_uppercase(), "path": path, "summary": summary}));
                if operations.len() >= MAX_OPERATIONS {
                    return Some(operations);
                }
            }
        }
    }
    Some(operations)
}

// ---------------------------------------------------------------- graph

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
    let context = {
        let state = app.platform.catalog().view(&caller);
        let Some(record) = state.get(&key).cloned() else {
            drop(state);
            return not_found_entity(&app, &caller, &kind, &namespace, &name);
        };
        let impact = state.impact(&record.key, Direction::Dependents, None).map_or(0, |i| i.reached.len());
        let drawn = graph::draw(&state, record.node, depth, direction);
        let entity_ref = record.entity_ref.to_string();
        let href = entity_href(&entity_ref);
        let link = |d: u32, m: graph::Mode| format!("{href}/graph?depth={d}&direction={}", m.name());
        let depths: Vec<Value> =
            (1..=4).map(|d| json!({"depth": d, "href": link(d, direction), "current": d == depth})).collect();
        let directions: Vec<Value> = [graph::Mode::Upstream, graph::Mode::Both, graph::Mode::Downstream]
            .iter()
            .map(|m| json!({"name": m.name(), "label": m.label(), "href": link(depth, *m), "current": *m == direction}))
            .collect();
        json!({
            "title": format!("Graph of {}", record.summary.title.as_deref().unwrap_or(&record.summary.name)),
            "entity": record_link(&record),
            "ref": entity_ref,
            "href": href,
            "impact": impact,
            "depth": depth,
            "direction": direction.name(),
            "depths": depths,
            "directions": directions,
            "graph": drawn,
        })
    };
    page(StatusCode::OK, "graph.html", context)
}

// ---------------------------------------------------------------- search

const SEARCH_LIMIT: usize = 50;
/// Ranked results go [`plinth_app::catalog::MAX_SEARCH_DEPTH`] deep.
const MAX_SEARCH_PAGE: usize = plinth_app::catalog::MAX_SEARCH_DEPTH / SEARCH_LIMIT;

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
        return page(StatusCode::OK, "search.html", json!({"title": "Search", "q": "", "results": [], "total": 0}));
    }
    let offset = (page_no - 1) * SEARCH_LIMIT;
    let searched = app.platform.catalog().search_index().search(&q, 0, offset + SEARCH_LIMIT);
    let (hits, all) = match searched {
        Ok(found) => found,
        Err(error) => {
            let context = json!({"title": "Search", "q": q, "results": [], "total": 0, "error": error.to_string()});
            return page(StatusCode::OK, "search.html", context);
        }
    };
    let context = {
        let state = app.platform.catalog().view(&caller);
        let matched = all & state.live();
        let results: Vec<Value> = hits
            .iter()
            .filter(|h| matched.contains(h.id))
            .skip(offset)
            .take(SEARCH_LIMIT)
            .filter_map(|h| state.entity(h.id).map(|r| record_link(r)))
            .collect();
        let facets: Vec<Value> = FACETS
            .iter()
            .map(|(param, key, heading)| {
                let values: Vec<Value> = state
                    .facet(key, &matched)
                    .into_iter()
                    .take(15)
                    .map(|(value, count)| {
                        json!({"value": value, "count": count,
                               "href": format!("/catalog?{}", query(&[(param, &value), ("q", &q)]))})
                    })
                    .collect();
                json!({"param": param, "heading": heading, "values": values})
            })
            .collect();
        let total = matched.len() as usize;
        let more = total > offset + SEARCH_LIMIT;
        json!({
            "title": format!("Search: {q}"),
            "q": q,
            "results": results,
            "total": total,
            "facets": facets,
            "next": more.then(|| format!("/search?{}", query(&[("q", &q), ("page", &(page_no + 1).to_string())]))),
            "prev": (page_no > 1).then(|| format!("/search?{}", query(&[("q", &q), ("page", &(page_no - 1).to_string())]))),
        })
    };
    page(StatusCode::OK, "search.html", context)
}

pub(super) fn not_found_entity(app: &AppState, caller: &Caller, kind: &str, namespace: &str, name: &str) -> Response {
    let wanted = format!("{kind}:{namespace}/{name}");
    let suggestions = suggest(app, caller, name);
    page(
        StatusCode::NOT_FOUND,
        "not_found.html",
        json!({"title": "Not found", "wanted": wanted, "suggestions": suggestions, "query": name}),
    )
}

pub(super) fn suggest(app: &AppState, caller: &Caller, text: &str) -> Vec<Value> {
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
    let state = app.platform.catalog().view(caller);
    hits.iter().filter_map(|h| state.entity(h.id).map(|r| record_link(r))).take(5).collect()
}
