//! Building a decision's context from the catalogue: which entities an
//! input names (labels, annotations, golden-path parameters, an entity's own
//! relations) and their catalogue data; and masking the decision log.

use lru::LruCache;
use parking_lot::Mutex;
use plinth_catalog::{CatalogState, EntityRecord};
use plinth_model::parse_ref_lenient;
use plinth_policy::Input;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::num::NonZeroUsize;

/// Most entities attached to one decision's context.
pub const MAX_CONTEXT_ENTITIES: usize = 200;

/// Label keys naming an entity, with the kind a bare name defaults to.
const LABEL_REFS: &[(&str, &str)] = &[
    ("plinth.io/owner", "group"),
    ("plinth.io/team", "group"),
    ("plinth.io/component", "component"),
    ("plinth.io/system", "system"),
    ("plinth.io/model", "model"),
    ("plinth.io/embedding-model", "model"),
    ("plinth.io/agent", "agent"),
];

/// Annotation keys holding comma-separated names.
const ANNOTATION_REFS: &[(&str, &str)] = &[
    ("plinth.io/datasets", "dataset"),
    ("plinth.io/prompts", "prompt"),
    ("plinth.io/tools", "api"),
    ("plinth.io/model", "model"),
    ("plinth.io/embedding-model", "model"),
    ("plinth.io/owner", "group"),
];

/// Golden-path parameter keys naming entities.
const PARAMETER_REFS: &[(&str, &str)] = &[
    ("owner", "group"),
    ("system", "system"),
    ("component", "component"),
    ("model", "model"),
    ("embeddingModel", "model"),
    ("datasets", "dataset"),
    ("dataset", "dataset"),
    ("prompts", "prompt"),
    ("tools", "api"),
    ("agent", "agent"),
];

/// Relations that point from an entity at what it uses (its context);
/// the inverse ones (ownerOf, dependencyOf…) would drag in whole teams.
pub(crate) const OUTGOING: &[&str] = &[
    "ownedBy",
    "partOf",
    "dependsOn",
    "consumesApi",
    "providesApi",
    "usesModel",
    "usesPrompt",
    "usesTool",
    "trainedOn",
    "childOf",
    "memberOf",
];

/// The Kubernetes object inside an input: AdmissionReview request's object,
/// or the input itself.
pub fn subject(input: &Value) -> &Value {
    input.pointer("/review/object").or_else(|| input.pointer("/request/object")).unwrap_or(input)
}

/// Adds the refs in `text` (comma-separated) to `refs`, once each.
fn push_refs(refs: &mut Vec<String>, text: &str, default_kind: &str) {
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Ok(entity_ref) = parse_ref_lenient(part, Some(default_kind)) {
            let key = entity_ref.key();
            if !refs.contains(&key) {
                refs.push(key);
            }
        }
    }
}

/// Calls `push` with the value and default kind of each of `keys` found in
/// the object's labels or its pod template's labels.
fn labelled(object: &Value, keys: &[(&str, &str)], push: &mut impl FnMut(&str, &str)) {
    let label_maps =
        ["/metadata/labels", "/spec/template/metadata/labels", "/spec/jobTemplate/spec/template/metadata/labels"];
    for pointer in label_maps {
        if let Some(labels) = object.pointer(pointer).and_then(Value::as_object) {
            for (key, kind) in keys {
                if let Some(value) = labels.get(*key).and_then(Value::as_str) {
                    push(value, kind);
                }
            }
        }
    }
}

/// Entity refs (lower-case keys) an input names, in order, without duplicates.
pub fn named_refs(input: &Value, explicit: &[String]) -> Vec<String> {
    let mut refs = Vec::new();
    let mut push = |text: &str, default_kind: &str| push_refs(&mut refs, text, default_kind);
    for text in explicit {
        push(text, "component");
    }
    let object = subject(input);
    labelled(object, LABEL_REFS, &mut push);
    for pointer in ["/metadata/annotations", "/spec/template/metadata/annotations"] {
        if let Some(annotations) = object.pointer(pointer).and_then(Value::as_object) {
            for (key, kind) in ANNOTATION_REFS {
                if let Some(value) = annotations.get(*key).and_then(Value::as_str) {
                    push(value, kind);
                }
            }
        }
    }
    if let Some(parameters) = input.get("parameters").and_then(Value::as_object) {
        for (key, kind) in PARAMETER_REFS {
            match parameters.get(*key) {
                Some(Value::String(s)) => push(s, kind),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(|s| push(s, kind)),
                _ => {}
            }
        }
    }
    // A catalogue descriptor: its own spec references.
    if object.get("spec").is_some() && object.pointer("/metadata/name").is_some() {
        if let Some(me) = plinth_model::entity_ref_of(object) {
            if let Ok(relations) = plinth_model::declared_relations(object, &me) {
                for relation in relations {
                    let key = relation.target.key();
                    if !refs.contains(&key) {
                        refs.push(key);
                    }
                }
            }
        }
    }
    refs
}

/// Label keys that name the workload itself (not what it uses).
const SUBJECT_LABELS: &[(&str, &str)] = &[("plinth.io/component", "component"), ("plinth.io/agent", "agent")];

/// The entities a decision is *about* — the scope waivers match: refs the
/// caller listed, the workload's own component/agent label, a catalogue
/// descriptor itself. Owners, models, tools and datasets are context, not
/// subjects, so a waiver granted to a team or a tool does not leak to
/// everything that uses it.
pub fn subject_refs(input: &Value, explicit: &[String]) -> Vec<String> {
    let mut refs: Vec<String> = Vec::new();
    let mut push = |text: &str, default_kind: &str| push_refs(&mut refs, text, default_kind);
    for text in explicit {
        push(text, "component");
    }
    let object = subject(input);
    labelled(object, SUBJECT_LABELS, &mut push);
    if object.get("spec").is_some() {
        if let Some(me) = plinth_model::entity_ref_of(object) {
            if object
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("backstage.io/") || v.starts_with("plinth.dev/"))
            {
                push(&me.key(), "component");
            }
        }
    }
    refs
}

/// The catalogue data of `refs` and of what they use (one more hop), as
/// `{ref: entity}` (the descriptor as stored, without `relations`); refs not
/// in the catalogue are absent.
pub fn resolve(state: &CatalogState, refs: &[String]) -> Map<String, Value> {
    let mut entities = Map::new();
    walk(state, refs, |key, record| {
        entities.insert(key.to_string(), stored_json(record));
    });
    entities
}

/// [`resolve`] and [`resolve_input`] in one walk of the catalogue: a
/// decision needs the JSON for its log and the converted form for the
/// engine.
pub fn resolve_both(
    state: &CatalogState,
    refs: &[String],
    subject: Option<&str>,
    cache: &ContextCache,
) -> (Map<String, Value>, Input) {
    let (mut json, mut converted) = (Map::new(), Input::object());
    walk(state, refs, |key, record| {
        json.insert(key.to_string(), stored_json(record));
        converted.insert(key, cache.get(key, record, Some(key) != subject));
    });
    (json, converted)
}

/// An entity's stored body (without `relations`) as JSON.
fn stored_json(record: &EntityRecord) -> Value {
    serde_json::from_str(&record.body).unwrap_or(Value::Null)
}

/// [`resolve`] as a policy input already converted, each entity taken from
/// `cache` when it holds the entity as it is now.
/// `subject` is an entity a pass over the catalogue meets once, as the
/// decision's subject: it is converted without being kept, so it does not
/// push out the teams and systems that recur.
pub fn resolve_input(state: &CatalogState, refs: &[String], subject: Option<&str>, cache: &ContextCache) -> Input {
    let mut entities = Input::object();
    walk(state, refs, |key, record| entities.insert(key, cache.get(key, record, Some(key) != subject)));
    entities
}

/// Visits the entities [`resolve`] attaches, each once, in order.
fn walk(state: &CatalogState, refs: &[String], mut visit: impl FnMut(&str, &EntityRecord)) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut frontier: Vec<String> = refs.to_vec();
    for hop in 0..2 {
        let mut next = Vec::new();
        for key in frontier {
            if seen.len() >= MAX_CONTEXT_ENTITIES || seen.contains(&key) {
                continue;
            }
            let Some(record) = state.get(&key) else { continue };
            // The stored body (without `relations`): a team's relations list
            // every entity it owns, which no rule reads and which would make
            // each decision about one of its services cost milliseconds.
            visit(&key, record);
            if hop == 0 {
                // Only the few outgoing edges, picked from the adjacency
                // list: `relations_of` would sort every edge by its
                // target's ref, and a team's list holds every entity it
                // owns, so each decision about one of its entities paid for
                // a sort that grows with the catalogue.
                let mut outgoing: Vec<(&str, &str)> = state
                    .graph()
                    .edges(record.node)
                    .iter()
                    .filter(|edge| OUTGOING.contains(&edge.rel.name()))
                    .map(|edge| (edge.rel.name(), state.ref_of(edge.to)))
                    .collect();
                outgoing.sort_unstable();
                outgoing.dedup();
                next.extend(outgoing.into_iter().map(|(_, target)| target.to_string()));
            }
            seen.insert(key);
        }
        frontier = next;
    }
}

/// Entities kept converted by [`ContextCache`]: the teams, systems, models
/// and shared libraries that thousands of decisions attach. A few kB each.
const CONTEXT_CACHE_ENTRIES: usize = 4_096;

/// Context entities already converted to policy input, by ref, with the
/// content hash they were converted from (a changed entity is converted
/// again). Least recently used entries go first.
///
/// An entity is kept only when it is missed a second time while its first
/// miss is still remembered: most dependencies are attached to a handful of
/// decisions, and keeping each would push out the teams and systems that
/// recur thousands of times (measured at 100k: the cache then cost more in
/// evictions than it saved).
pub struct ContextCache {
    entries: Mutex<Entries>,
}

struct Entries {
    kept: LruCache<String, (String, Input)>,
    /// Refs missed once (cleared when it reaches the cache's size).
    missed: HashSet<String>,
}

impl Default for ContextCache {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(CONTEXT_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        ContextCache { entries: Mutex::new(Entries { kept: LruCache::new(capacity), missed: HashSet::new() }) }
    }
}

impl std::fmt::Debug for ContextCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextCache").field("entries", &self.entries.lock().kept.len()).finish()
    }
}

impl ContextCache {
    /// `record`'s stored body as input: from the cache if it holds this
    /// version, else parsed (outside the cache's lock) and, if `keep`, kept.
    pub fn get(&self, key: &str, record: &EntityRecord, keep: bool) -> Input {
        let admit = {
            let mut entries = self.entries.lock();
            if let Some((hash, input)) = entries.kept.get(key) {
                if *hash == record.hash {
                    return input.clone();
                }
            }
            if entries.missed.len() >= CONTEXT_CACHE_ENTRIES {
                entries.missed.clear();
            }
            keep && !entries.missed.insert(key.to_string())
        };
        let input = Input::parse(&record.body).unwrap_or_else(Input::null);
        if admit {
            let mut entries = self.entries.lock();
            entries.missed.remove(key);
            entries.kept.put(key.to_string(), (record.hash.clone(), input.clone()));
        }
        input
    }
}

/// Removes the values at `paths` (JSON pointers into the event, `*` for
/// any array element or key) and returns the pointers actually erased.
pub fn erase(event: &mut Value, paths: &[String]) -> Vec<String> {
    let mut erased = Vec::new();
    for path in paths {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        erase_at(event, &segments, String::new(), &mut erased);
    }
    erased
}

fn erase_at(value: &mut Value, segments: &[&str], at: String, erased: &mut Vec<String>) {
    let Some((first, rest)) = segments.split_first() else { return };
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = if *first == "*" { map.keys().cloned().collect() } else { vec![unescape(first)] };
            for key in keys {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                if rest.is_empty() {
                    if map.remove(&key).is_some() {
                        erased.push(here);
                    }
                } else if let Some(child) = map.get_mut(&key) {
                    erase_at(child, rest, here, erased);
                }
            }
        }
        Value::Array(items) => {
            let indexes: Vec<usize> =
                if *first == "*" { (0..items.len()).collect() } else { first.parse().ok().into_iter().collect() };
            for index in indexes.into_iter().rev() {
                let here = format!("{at}/{index}");
                if rest.is_empty() {
                    if index < items.len() {
                        items[index] = Value::Null;
                        erased.push(here);
                    }
                } else if let Some(child) = items.get_mut(index) {
                    erase_at(child, rest, here, erased);
                }
            }
        }
        _ => {}
    }
}

/// Masks every decision log gets whatever the configuration: Kubernetes
/// Secret payloads.
pub fn default_masks(input: &Value) -> Vec<String> {
    let mut masks = Vec::new();
    if input.get("kind").and_then(Value::as_str) == Some("Secret") {
        masks.extend(["/input/data".to_string(), "/input/stringData".to_string()]);
    }
    if input.pointer("/review/object/kind").and_then(Value::as_str) == Some("Secret")
        || input.pointer("/review/kind/kind").and_then(Value::as_str) == Some("Secret")
    {
        for side in ["object", "oldObject"] {
            masks.push(format!("/input/review/{side}/data"));
            masks.push(format!("/input/review/{side}/stringData"));
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_from_labels_annotations_and_parameters() {
        let input = json!({
            "review": {"object": {
                "metadata": {"labels": {"plinth.io/owner": "team-ml", "plinth.io/model": "model:default/llama"},
                             "annotations": {"plinth.io/datasets": "tickets, dataset:prod/faq"}},
            }},
            "parameters": {"tools": ["search-api"], "owner": "group:team-ml"}
        });
        assert_eq!(
            named_refs(&input, &["system:billing".into()]),
            [
                "system:default/billing",
                "group:default/team-ml",
                "model:default/llama",
                "dataset:default/tickets",
                "dataset:prod/faq",
                "api:default/search-api"
            ]
        );
    }

    #[test]
    fn waiver_scope_is_the_workload_not_what_it_uses() {
        let input = json!({"metadata": {"labels": {"plinth.io/component": "checkout", "plinth.io/owner": "team-a"},
                                        "annotations": {"plinth.io/tools": "search-api"}}});
        assert_eq!(subject_refs(&input, &[]), ["component:default/checkout"]);
        let entity = json!({"apiVersion": "plinth.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "bot"}, "spec": {"owner": "team-a"}});
        assert_eq!(subject_refs(&entity, &["system:pay".into()]), ["system:default/pay", "agent:default/bot"]);
    }

    #[test]
    fn erasing_with_wildcards_reports_what_went() {
        let mut event =
            json!({"input": {"spec": {"containers": [{"env": [1]}, {"env": [2]}, {"name": "x"}]}, "token": "s"}});
        let erased =
            erase(&mut event, &["/input/spec/containers/*/env".into(), "/input/token".into(), "/input/missing".into()]);
        assert_eq!(erased, ["/input/spec/containers/1/env", "/input/spec/containers/0/env", "/input/token"]);
        assert_eq!(event, json!({"input": {"spec": {"containers": [{}, {}, {"name": "x"}]}}}));
    }
}
