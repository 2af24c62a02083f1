//! Backstage's entity filters over an in-memory inverted index.
//!
//! Every entity is flattened the way Backstage's `buildEntitySearch` does
//! it: each leaf becomes a `(dotted.key, value)` pair, lists give one pair
//! per item, `relations.<type>` pairs carry relation targets, keys and values
//! compare in lower case, and values over 200 characters are indexed as
//! "present" only. A filter is an OR of groups; a group is an AND of
//! `key[=value[,value…]]` conditions. Postings are roaring bitmaps of entity
//! ids, so AND/OR/facet counts at 100k entities are set operations.

use crate::value_set::ValueSet;
use roaring::RoaringBitmap;
use serde_json::Value;
// Keyed by catalogue text: foldhash (seeded per process) rather than SipHash.
use foldhash::HashMap;
use std::mem::size_of;

const MAX_KEY_LENGTH: usize = 200;
const MAX_VALUE_LENGTH: usize = 200;
/// Keys Backstage leaves out of its search table or adds separately.
const SKIPPED_KEYS: &[&str] = &["attachments", "relations", "status"];

/// One flattened pair: lower-case key, and the value (lower-case and as
/// written) when it is a short scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: Option<(String, String)>,
}

/// Flattens an entity body plus its relations `(type, targetRef)`.
pub(crate) fn flatten(body: &Value, relations: &[(&str, String)]) -> Vec<Pair> {
    let mut pairs = Vec::with_capacity(48);
    visit("", body, &mut pairs);
    for (relation, target) in relations {
        push(&mut pairs, &format!("relations.{relation}"), Some(target));
    }
    pairs.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.value.cmp(&b.value)));
    pairs.dedup();
    pairs
}

fn visit(path: &str, value: &Value, pairs: &mut Vec<Pair>) {
    if SKIPPED_KEYS.contains(&path) {
        return;
    }
    match value {
        Value::Null => push(pairs, path, None),
        Value::Bool(b) => push(pairs, path, Some(if *b { "true" } else { "false" })),
        Value::Number(n) => push(pairs, path, Some(&n.to_string())),
        Value::String(s) => push(pairs, path, Some(s)),
        Value::Array(items) => {
            for item in items {
                visit(path, item, pairs);
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                if path.is_empty() {
                    visit(key, child, pairs);
                } else {
                    visit(&format!("{path}.{key}"), child, pairs);
                }
            }
        }
    }
}

fn push(pairs: &mut Vec<Pair>, key: &str, value: Option<&str>) {
    if key.is_empty() || key.len() > MAX_KEY_LENGTH {
        return;
    }
    // A value holding NUL is indexed as present only, like a long one:
    // the value set keeps its values NUL-separated.
    let value =
        value.filter(|v| v.len() <= MAX_VALUE_LENGTH && !v.contains('\0')).map(|v| (v.to_lowercase(), v.to_string()));
    pairs.push(Pair { key: key.to_lowercase(), value });
}

/// A parsed filter: any of the groups matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityFilter {
    pub any_of: Vec<FilterGroup>,
}

/// All conditions of a group must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterGroup {
    pub all_of: Vec<Condition>,
}

/// `key` exists, or `key` has one of `values` (lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: String,
    pub values: Option<Vec<String>>,
}

/// A `filter` parameter that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter `{0}` has a condition with no key; write it as `key=value`")]
    NoKey(String),
}

impl EntityFilter {
    pub fn is_empty(&self) -> bool {
        self.any_of.is_empty()
    }

    /// Parses Backstage's `filter` query parameters: each parameter is a
    /// group, `a=b,c=d` within it are ANDed, a key repeated within a group
    /// matches any of its values, and a bare `key` means "has the key".
    pub fn parse(params: &[String]) -> Result<EntityFilter, FilterError> {
        let mut any_of = Vec::new();
        for param in params {
            let mut group: Vec<Condition> = Vec::new();
            for statement in param.split(',') {
                let statement = statement.trim();
                if statement.is_empty() {
                    continue;
                }
                let (key, value) = match statement.split_once('=') {
                    Some((key, value)) => (key.trim(), Some(value.trim())),
                    None => (statement, None),
                };
                if key.is_empty() {
                    return Err(FilterError::NoKey(param.clone()));
                }
                let key = key.to_lowercase();
                let value = value.map(str::to_lowercase);
                match group.iter_mut().find(|c| c.key == key) {
                    Some(existing) => match (&mut existing.values, value) {
                        (Some(values), Some(value)) => values.push(value),
                        (values, _) => *values = None,
                    },
                    None => group.push(Condition { key, values: value.map(|v| vec![v]) }),
                }
            }
            if !group.is_empty() {
                any_of.push(FilterGroup { all_of: group });
            }
        }
        Ok(EntityFilter { any_of })
    }

    /// One condition: `key=value`.
    pub fn equals(key: &str, value: &str) -> EntityFilter {
        EntityFilter {
            any_of: vec![FilterGroup {
                all_of: vec![Condition { key: key.to_lowercase(), values: Some(vec![value.to_lowercase()]) }],
            }],
        }
    }

    /// Both filters must hold.
    pub fn and(self, other: EntityFilter) -> EntityFilter {
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        let mut any_of = Vec::new();
        for a in &self.any_of {
            for b in &other.any_of {
                let mut all_of = a.all_of.clone();
                all_of.extend(b.all_of.iter().cloned());
                any_of.push(FilterGroup { all_of });
            }
        }
        EntityFilter { any_of }
    }
}

/// Most values (names, uids, URLs) belong to one entity; a bitmap each
/// would cost ~100 bytes more per value at 100k entities. Boxed, the
/// bitmap keeps a value's slot at 24 bytes.
enum Ids {
    One(u32),
    Many(Box<RoaringBitmap>),
}

impl Ids {
    fn insert(&mut self, id: u32) {
        match self {
            Ids::One(existing) if *existing == id => {}
            Ids::One(existing) => {
                let bitmap: RoaringBitmap = [*existing, id].into_iter().collect();
                *self = Ids::Many(Box::new(bitmap));
            }
            Ids::Many(bitmap) => {
                bitmap.insert(id);
            }
        }
    }

    /// Removes `id`; true when nothing is left.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            Ids::One(existing) => *existing == id,
            Ids::Many(bitmap) => {
                bitmap.remove(id);
                bitmap.is_empty()
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Ids::One(_) => 1,
            Ids::Many(bitmap) => bitmap.len(),
        }
    }

    fn intersection_len(&self, other: &RoaringBitmap) -> u64 {
        match self {
            Ids::One(id) => other.contains(*id) as u64,
            Ids::Many(bitmap) => bitmap.intersection_len(other),
        }
    }

    fn add_to(&self, out: &mut RoaringBitmap) {
        match self {
            Ids::One(id) => {
                out.insert(*id);
            }
            Ids::Many(bitmap) => *out |= &**bitmap,
        }
    }
}

#[derive(Default)]
struct KeyPostings {
    all: RoaringBitmap,
    /// Lower-case value → ids, values also searchable by substring.
    values: ValueSet<Ids>,
}

/// The inverted index: key → value → ids.
#[derive(Default)]
pub struct FilterIndex {
    keys: HashMap<Box<str>, KeyPostings>,
}

impl FilterIndex {
    pub fn insert(&mut self, id: u32, pairs: &[Pair]) {
        for pair in pairs {
            let postings = match self.keys.get_mut(pair.key.as_str()) {
                Some(postings) => postings,
                None => self.keys.entry(pair.key.clone().into_boxed_str()).or_default(),
            };
            postings.all.insert(id);
            if let Some((lower, original)) = &pair.value {
                // Past 4 GiB of one key's distinct values, a value is
                // indexed as present only.
                postings.values.upsert(lower, original, || Ids::One(id), |ids| ids.insert(id));
            }
        }
    }

    /// Removes every pair of an entity's body: the entity has no value
    /// left under any of their keys.
    pub fn remove(&mut self, id: u32, pairs: &[Pair]) {
        for pair in pairs {
            self.remove_value(id, pair, false);
        }
    }

    /// Removes one pair of an entity; `keeps_key` says whether the entity
    /// still has another value under the pair's key (a relation type with
    /// other targets), and then it stays among the key's holders.
    pub fn remove_value(&mut self, id: u32, pair: &Pair, keeps_key: bool) {
        let Some(postings) = self.keys.get_mut(pair.key.as_str()) else { return };
        if !keeps_key {
            postings.all.remove(id);
        }
        if let Some((lower, _)) = &pair.value {
            if postings.values.get_mut(lower).is_some_and(|ids| ids.remove(id)) {
                postings.values.remove(lower);
            }
        }
        if postings.all.is_empty() {
            self.keys.remove(pair.key.as_str());
        }
    }

    /// Ids matching the filter, within `universe` (every live entity).
    pub fn matching(&self, filter: &EntityFilter, universe: &RoaringBitmap) -> RoaringBitmap {
        if filter.is_empty() {
            return universe.clone();
        }
        let mut result = RoaringBitmap::new();
        for group in &filter.any_of {
            let mut group_ids: Option<RoaringBitmap> = None;
            for condition in &group.all_of {
                let ids = self.condition(condition);
                group_ids = Some(match group_ids {
                    None => ids,
                    Some(acc) => acc & ids,
                });
                if group_ids.as_ref().is_some_and(RoaringBitmap::is_empty) {
                    break;
                }
            }
            if let Some(ids) = group_ids {
                result |= ids;
            }
        }
        result & universe
    }

    fn condition(&self, condition: &Condition) -> RoaringBitmap {
        if let Some(postings) = self.keys.get(condition.key.as_str()) {
            return match &condition.values {
                None => postings.all.clone(),
                Some(values) => {
                    let mut ids = RoaringBitmap::new();
                    for value in values {
                        if let Some(v) = postings.values.get(value) {
                            v.add_to(&mut ids);
                        }
                    }
                    ids
                }
            };
        }
        // Backstage also indexes `list.item = true` for string list items
        // (`metadata.tags.java`); answer those from the list's own postings
        // instead of storing a key per item.
        let wants_presence = condition.values.as_ref().is_none_or(|values| values.iter().any(|v| v == "true"));
        if !wants_presence {
            return RoaringBitmap::new();
        }
        let mut ids = RoaringBitmap::new();
        for (split, _) in condition.key.match_indices('.') {
            let (list_key, item) = (&condition.key[..split], &condition.key[split + 1..]);
            if let Some(value) = self.keys.get(list_key).and_then(|p| p.values.get(item)) {
                value.add_to(&mut ids);
            }
        }
        ids
    }

    /// Ids with a value for `key` that contains `term` (already lower
    /// case): Backstage's `fullTextFilterTerm`, answered like Backstage's
    /// search table does, from the indexed values (long values are indexed
    /// as present only, so they do not match). Scans the key's distinct
    /// values, not the entities.
    pub fn containing(&self, key: &str, term: &str) -> RoaringBitmap {
        let mut ids = RoaringBitmap::new();
        let Some(postings) = self.keys.get(key) else { return ids };
        if term.is_empty() || term.contains('\0') {
            return if term.is_empty() { postings.all.clone() } else { ids };
        }
        for value in postings.values.containing(term) {
            value.add_to(&mut ids);
        }
        ids
    }

    /// Counts per value of `key` among `within`, most frequent first; values
    /// keep the case they were first written in.
    pub fn facet(&self, key: &str, within: &RoaringBitmap, all: bool) -> Vec<(String, u64)> {
        let Some(postings) = self.keys.get(key.to_lowercase().as_str()) else { return Vec::new() };
        let mut counts: Vec<(String, u64)> = postings
            .values
            .iter()
            .filter_map(|(written, ids)| {
                let count = if all { ids.len() } else { ids.intersection_len(within) };
                (count > 0).then(|| (written.to_string(), count))
            })
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// The lower-case values `id` has for `key`, looked up through the
    /// postings (used only for small result sets).
    pub fn distinct_keys(&self) -> usize {
        self.keys.len()
    }

    /// Estimated bytes held: keys and values, and their postings.
    pub(crate) fn footprint(&self) -> u64 {
        use crate::footprint::{table, text};
        let mut bytes = table(self.keys.capacity(), size_of::<(Box<str>, KeyPostings)>());
        for (key, postings) in &self.keys {
            bytes += text(key.len()) + postings.all.serialized_size() as u64;
            bytes += postings.values.footprint();
            for (_, ids) in postings.values.iter() {
                if let Ids::Many(ids) = ids {
                    bytes += (size_of::<RoaringBitmap>() + ids.serialized_size()) as u64;
                }
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> (FilterIndex, RoaringBitmap) {
        let mut index = FilterIndex::default();
        let a = json!({"kind": "Component", "metadata": {"name": "A", "tags": ["java", "web"]}, "spec": {"type": "service", "owner": "team-a"}});
        let b = json!({"kind": "Component", "metadata": {"name": "b", "tags": ["go"]}, "spec": {"type": "website", "owner": "team-b"}});
        let c = json!({"kind": "API", "metadata": {"name": "c", "description": "x".repeat(300)}, "spec": {"type": "openapi"}});
        index.insert(1, &flatten(&a, &[("ownedBy", "group:default/team-a".into())]));
        index.insert(2, &flatten(&b, &[("ownedBy", "group:default/team-b".into())]));
        index.insert(3, &flatten(&c, &[]));
        (index, [1, 2, 3].into_iter().collect())
    }

    fn ids(index: &FilterIndex, universe: &RoaringBitmap, params: &[&str]) -> Vec<u32> {
        let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
        index.matching(&EntityFilter::parse(&params).unwrap(), universe).iter().collect()
    }

    #[test]
    fn backstage_filter_semantics() {
        let (index, all) = index();
        assert_eq!(ids(&index, &all, &["kind=component"]), [1, 2]);
        assert_eq!(ids(&index, &all, &["kind=Component,spec.type=service"]), [1]);
        assert_eq!(ids(&index, &all, &["kind=component,spec.type=service", "kind=api"]), [1, 3]);
        assert_eq!(ids(&index, &all, &["spec.type=service,spec.type=openapi"]), [1, 3]);
        assert_eq!(ids(&index, &all, &["metadata.tags=java"]), [1]);
        assert_eq!(ids(&index, &all, &["metadata.tags.go"]), [2]);
        assert_eq!(ids(&index, &all, &["metadata.tags.go=true"]), [2]);
        assert_eq!(ids(&index, &all, &["spec.owner"]), [1, 2]);
        assert_eq!(ids(&index, &all, &["relations.ownedby=group:default/team-b"]), [2]);
        assert_eq!(ids(&index, &all, &["metadata.description"]), [3]);
        assert_eq!(ids(&index, &all, &["kind=nothing"]), Vec::<u32>::new());
        assert_eq!(ids(&index, &all, &[]), [1, 2, 3]);
        assert!(EntityFilter::parse(&["=x".to_string()]).is_err());
    }

    #[test]
    fn substring_from_the_index() {
        let (index, _) = index();
        let found = |key: &str, term: &str| index.containing(key, term).iter().collect::<Vec<_>>();
        assert_eq!(found("spec.owner", "team"), [1, 2]);
        assert_eq!(found("spec.owner", "m-b"), [2]);
        assert_eq!(found("metadata.name", "a"), [1], "values compare in lower case");
        assert_eq!(found("metadata.tags", "av"), [1], "list items match one by one");
        // Like Backstage's search table: a value over 200 characters is
        // indexed as present only, so it is not searched.
        assert_eq!(found("metadata.description", "xxx"), Vec::<u32>::new());

        assert_eq!(found("no.such.key", "a"), Vec::<u32>::new());
    }

    #[test]
    fn a_value_holding_nul_is_indexed_as_present_only() {
        let (mut index, _) = index();
        let nul = json!({"kind": "Component", "metadata": {"name": "d", "title": "a\u{0}b"}});
        index.insert(4, &flatten(&nul, &[]));
        assert_eq!(index.containing("metadata.title", "a").len(), 0);
        assert_eq!(index.containing("metadata.name", "d").iter().collect::<Vec<_>>(), [4]);
        let all: RoaringBitmap = [1, 2, 3, 4].into_iter().collect();
        assert_eq!(ids(&index, &all, &["metadata.title"]), [4]);
        assert_eq!(ids(&index, &all, &["metadata.title=a\u{0}b"]), Vec::<u32>::new());
    }

    #[test]
    fn substring_search_follows_inserts_and_removals() {
        let mut index = FilterIndex::default();
        let entity = |name: &str| json!({"kind": "Component", "metadata": {"name": name}});
        for (id, name) in [(1, "checkout-svc"), (2, "checkout-api"), (3, "payments")] {
            index.insert(id, &flatten(&entity(name), &[]));
        }
        let found =
            |index: &FilterIndex, term: &str| index.containing("metadata.name", term).iter().collect::<Vec<_>>();
        assert_eq!(found(&index, "checkout"), [1, 2]);
        assert_eq!(found(&index, "t-s"), [1], "a match inside one value");
        assert_eq!(found(&index, "svccheck"), Vec::<u32>::new(), "no match across two values");
        // The search follows changes.
        index.insert(4, &flatten(&entity("checkout-web"), &[]));
        index.remove(1, &flatten(&entity("checkout-svc"), &[]));
        assert_eq!(found(&index, "checkout"), [2, 4]);
        index.remove(2, &flatten(&entity("checkout-api"), &[]));
        index.remove(3, &flatten(&entity("payments"), &[]));
        assert_eq!(found(&index, "checkout"), [4], "rebuilt once half was stale");
        index.insert(1, &flatten(&entity("checkout-svc"), &[]));
        assert_eq!(found(&index, "svc"), [1], "a value removed and added again");
        assert_eq!(found(&index, ""), [1, 4], "an empty term matches every entity with the key");
    }

    #[test]
    fn facets_and_removal() {
        let (mut index, all) = index();
        assert_eq!(index.facet("kind", &all, false), [("Component".to_string(), 2), ("API".to_string(), 1)]);
        let only_b: RoaringBitmap = [2].into_iter().collect();
        assert_eq!(index.facet("spec.type", &only_b, false), [("website".to_string(), 1)]);
        let b = json!({"kind": "Component", "metadata": {"name": "b", "tags": ["go"]}, "spec": {"type": "website", "owner": "team-b"}});
        index.remove(2, &flatten(&b, &[("ownedBy", "group:default/team-b".into())]));
        let remaining: RoaringBitmap = [1, 3].into_iter().collect();
        assert_eq!(ids(&index, &remaining, &["spec.type=website"]), Vec::<u32>::new());
        assert_eq!(index.facet("kind", &remaining, false), [("API".to_string(), 1), ("Component".to_string(), 1)]);
    }
}
