//! The in-memory projection of the catalogue: entities by ref and uid, the
//! relation graph, the filter index, sort orders and the search index.
//! Built from the store at start, then kept current by applying change-log
//! rows in order. Readers take a read lock; only the follower writes.

use crate::filters::{flatten, FilterIndex, Pair};
use crate::footprint::Footprint;
use crate::graph::{Direction, Graph, NodeId, RelId};
use crate::search::SearchDoc;
use crate::sort_order::SortOrder;
use crate::uid::{uid_buffer, Uid};
use plinth_model::{declared_relations, EntityRef, ANNOTATION_MANAGED_BY_LOCATION};
use plinth_store::StoredEntity;
use roaring::RoaringBitmap;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Keys with a maintained sort order (others sort by reading bodies).
pub const SORTABLE_KEYS: &[&str] =
    &["metadata.name", "metadata.title", "kind", "spec.type", "spec.lifecycle", "spec.owner", "metadata.namespace"];

/// One entity as the projection holds it.
#[derive(Debug)]
pub struct EntityRecord {
    pub node: NodeId,
    pub key: Arc<str>,
    pub entity_ref: EntityRef,
    pub uid: Uid,
    pub body: Arc<str>,
    pub hash: String,
    pub location_id: Arc<str>,
    /// The `backstage.io/managed-by-location` target: one text per source
    /// file, shared by the entities read from it.
    pub managed_by: Arc<str>,
    pub updated_at: time::OffsetDateTime,
    pub summary: Summary,
    declared: Vec<(RelId, NodeId)>,
}

impl EntityRecord {
    /// `metadata.etag`: the first 16 characters of the content hash, as
    /// the store writes it (derived, not held: 40 bytes an entity).
    pub fn etag(&self) -> &str {
        self.hash.get(..16).unwrap_or(&self.hash)
    }
}

/// Fields shown in lists, extracted once. The few-valued ones (kind,
/// namespace, type, lifecycle, owner) are shared texts: every record of a
/// catalogue points at one copy of `Component` or `production` (about
/// 100 bytes an entity).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub kind: Arc<str>,
    pub namespace: Arc<str>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub spec_type: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A recent change, for "recently changed" views and live updates.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentChange {
    pub seq: i64,
    pub entity_ref: String,
    pub op: plinth_store::ChangeOp,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

pub struct CatalogState {
    /// Keyed by catalogue text, as `uids`: foldhash, seeded per process.
    nodes: foldhash::HashMap<Arc<str>, NodeId>,
    node_refs: Vec<Arc<str>>,
    entities: Vec<Option<Arc<EntityRecord>>>,
    uids: foldhash::HashMap<Uid, NodeId>,
    live: RoaringBitmap,
    graph: Graph,
    filters: FilterIndex,
    sorted: HashMap<&'static str, SortOrder>,
    /// Per sortable key, the nodes that have an entry in `sorted`.
    keyed: HashMap<&'static str, RoaringBitmap>,
    by_ref: BTreeSet<(Arc<str>, NodeId)>,
    facet_codes: FacetCodes,
    /// Location ids and managed-by targets, one allocation each, shared
    /// by their entities.
    shared_texts: HashSet<Arc<str>>,
    pub last_seq: i64,
    recent: VecDeque<RecentChange>,
    /// Transitive counts of whole-graph impact walks, per (node, dependents?),
    /// until the next change: a hub's page asks for them on every view.
    impact_counts: parking_lot::Mutex<HashMap<(NodeId, bool), usize>>,
}

/// Most impact counts kept between two changes.
const MAX_IMPACT_COUNTS: usize = 4096;

const RECENT_CAPACITY: usize = 500;

impl Default for CatalogState {
    fn default() -> Self {
        Self::new()
    }
}

impl CatalogState {
    pub fn new() -> Self {
        CatalogState {
            nodes: Default::default(),
            node_refs: Vec::new(),
            entities: Vec::new(),
            uids: Default::default(),
            live: RoaringBitmap::new(),
            graph: Graph::default(),
            filters: FilterIndex::default(),
            sorted: SORTABLE_KEYS.iter().map(|k| (*k, SortOrder::default())).collect(),
            keyed: SORTABLE_KEYS.iter().map(|k| (*k, RoaringBitmap::new())).collect(),
            by_ref: BTreeSet::new(),
            facet_codes: FacetCodes::default(),
            shared_texts: HashSet::new(),
            last_seq: 0,
            impact_counts: parking_lot::Mutex::new(HashMap::new()),
            recent: VecDeque::new(),
        }
    }

    fn intern(&mut self, entity_ref: &EntityRef) -> NodeId {
        let key = entity_ref.key();
        if let Some(&node) = self.nodes.get(key.as_str()) {
            return node;
        }
        let node = self.node_refs.len() as NodeId;
        self.nodes.insert(Arc::from(key), node);
        self.node_refs.push(Arc::from(entity_ref.to_string()));
        self.entities.push(None);
        node
    }

    pub fn len(&self) -> u64 {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    pub fn node_of(&self, key: &str) -> Option<NodeId> {
        self.nodes.get(key).copied()
    }

    pub fn ref_of(&self, node: NodeId) -> &str {
        &self.node_refs[node as usize]
    }

    pub fn get(&self, key: &str) -> Option<&Arc<EntityRecord>> {
        self.node_of(key).and_then(|n| self.entity(n))
    }

    pub fn entity(&self, node: NodeId) -> Option<&Arc<EntityRecord>> {
        self.entities.get(node as usize).and_then(Option::as_ref)
    }

    pub fn get_by_uid(&self, uid: &str) -> Option<&Arc<EntityRecord>> {
        self.uids.get(&Uid::new(uid)).and_then(|&n| self.entity(n))
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn filters(&self) -> &FilterIndex {
        &self.filters
    }

    pub fn recent(&self) -> impl Iterator<Item = &RecentChange> {
        self.recent.iter().rev()
    }

    pub fn entities(&self) -> impl Iterator<Item = &Arc<EntityRecord>> {
        self.entities.iter().flatten()
    }

    /// Estimated bytes per structure of the projection (see
    /// [`crate::footprint`]): entity bodies, the records around them, the
    /// key maps, the graph, the filter index, the sort orders and the
    /// facet codes.
    pub fn footprint(&self) -> Vec<Footprint> {
        use crate::footprint::{btree, table, text, vec};
        use std::mem::size_of;
        let arc_str = |s: &str| 16 + text(s.len());
        let mut bodies = 0;
        let mut records = vec::<Option<Arc<EntityRecord>>>(self.entities.capacity());
        for record in self.entities.iter().flatten() {
            bodies += arc_str(&record.body);
            let r = &**record;
            let summary = &r.summary;
            // The few-valued texts are counted once, in `shared_texts`.
            let optional = |o: &Option<String>| o.as_ref().map_or(0, |s| text(s.len()));
            records += 16
                + size_of::<EntityRecord>() as u64
                + text(r.entity_ref.kind.len() + r.entity_ref.namespace.len() + r.entity_ref.name.len())
                + text(r.uid.heap_bytes() + r.hash.len())
                + text(summary.name.len())
                + optional(&summary.title)
                + optional(&summary.description)
                + vec::<String>(summary.tags.capacity())
                + summary.tags.iter().map(|t| text(t.len())).sum::<u64>()
                + vec::<(RelId, NodeId)>(r.declared.capacity());
        }
        let keys = table(self.nodes.capacity(), size_of::<(Arc<str>, NodeId)>())
            + self.nodes.keys().map(|k| arc_str(k)).sum::<u64>()
            + vec::<Arc<str>>(self.node_refs.capacity())
            + self.node_refs.iter().map(|r| arc_str(r)).sum::<u64>()
            + table(self.uids.capacity(), size_of::<(Uid, NodeId)>())
            + self.uids.keys().map(|u| text(u.heap_bytes())).sum::<u64>()
            + btree(self.by_ref.len(), size_of::<(Arc<str>, NodeId)>())
            + table(self.shared_texts.capacity(), size_of::<Arc<str>>())
            + self.shared_texts.iter().map(|t| arc_str(t)).sum::<u64>()
            + self.live.serialized_size() as u64;
        let sorting = self.sorted.values().map(SortOrder::footprint).sum::<u64>()
            + self.keyed.values().map(|ids| ids.serialized_size() as u64).sum::<u64>();
        vec![
            Footprint { structure: "entity bodies", bytes: bodies },
            Footprint { structure: "entity records", bytes: records },
            Footprint { structure: "keys and ids", bytes: keys },
            Footprint { structure: "relation graph", bytes: self.graph.footprint() },
            Footprint { structure: "filter index", bytes: self.filters.footprint() },
            Footprint { structure: "sort orders", bytes: sorting },
            Footprint { structure: "facet codes", bytes: self.facet_codes.footprint() },
        ]
    }

    /// Records a change-log row as seen.
    pub fn note_change(&mut self, change: RecentChange) {
        self.last_seq = self.last_seq.max(change.seq);
        if self.recent.len() == RECENT_CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(change);
    }

    /// Applies a prepared entity; returns its node so the caller can update
    /// the search index outside the lock.
    pub fn apply(&mut self, prepared: Prepared) -> NodeId {
        let mut applied = self.apply_batch(vec![prepared]);
        applied.pop().map(|a| a.node).unwrap_or_default()
    }

    /// Applies prepared entities as [`CatalogState::apply`] would one after
    /// the other, and returns what the search index needs for each. When a
    /// key occurs more than once, only its last occurrence is applied (and
    /// returned): the earlier ones would be replaced within the batch.
    ///
    /// Nodes are interned and replaced entities taken out first, in order.
    /// Then the filter index (about half of the work: a map lookup per
    /// flattened pair) is updated on one core while every other structure
    /// is updated on another, so a bulk ingest holds the write lock for
    /// about half as long.
    pub fn apply_batch(&mut self, batch: Vec<Prepared>) -> Vec<Applied> {
        self.impact_counts.get_mut().clear();
        let batch = last_of_each_key(batch);
        let mut filtered = Vec::with_capacity(batch.len());
        let mut structural = Vec::with_capacity(batch.len());
        let mut applied = Vec::with_capacity(batch.len());
        for prepared in batch {
            let Prepared { stored, body, entity_ref, pairs, edges, sort_values, summary, managed_by, search_doc } =
                prepared;
            let node = self.intern(&entity_ref);
            let replaced = self.entities[node as usize].is_some();
            if replaced {
                self.remove_node(node);
            }
            let mut declared = Vec::with_capacity(edges.len());
            let mut edge_pairs = Vec::with_capacity(edges.len());
            for edge in edges {
                let target = self.intern(&edge.target);
                declared.push((edge.rel, target));
                edge_pairs.push((target, edge.forward, edge.backward));
            }
            filtered.push((node, pairs, edge_pairs));
            structural.push((node, stored, body, entity_ref, sort_values, summary, managed_by, declared));
            applied.push(Applied { node, replaced, search_doc });
        }
        let CatalogState {
            nodes,
            entities,
            uids,
            live,
            graph,
            filters,
            sorted,
            keyed,
            by_ref,
            facet_codes,
            shared_texts,
            ..
        } = self;
        rayon::join(
            || {
                for (node, pairs, edge_pairs) in filtered {
                    filters.insert(node, &pairs);
                    // Inserting a pair the index holds already changes
                    // nothing, so a relation declared twice needs no check.
                    for (target, forward, backward) in edge_pairs {
                        filters.insert(node, std::slice::from_ref(&forward));
                        filters.insert(target, std::slice::from_ref(&backward));
                    }
                }
            },
            || {
                for (node, stored, body, entity_ref, sort_values, summary, managed_by, declared) in structural {
                    for &(rel, target) in &declared {
                        graph.add(node, rel, target);
                    }
                    for (key, value) in sort_values {
                        if let Some(set) = sorted.get_mut(key) {
                            set.insert(value, node);
                        }
                        if let Some(ids) = keyed.get_mut(key) {
                            ids.insert(node);
                        }
                    }
                    facet_codes.set(node, &summary);
                    // The record shares the key the node map holds (the same text).
                    let key: Arc<str> = match nodes.get_key_value(stored.key.as_str()) {
                        Some((key, _)) => key.clone(),
                        None => Arc::from(stored.key.as_str()),
                    };
                    let location_id = share(shared_texts, &stored.location_id);
                    let managed_by = share(shared_texts, &managed_by);
                    let summary = summary.shared(|text| share(shared_texts, text));
                    by_ref.insert((key.clone(), node));
                    let uid = Uid::new(&stored.uid);
                    uids.insert(uid.clone(), node);
                    live.insert(node);
                    entities[node as usize] = Some(Arc::new(EntityRecord {
                        node,
                        key,
                        entity_ref,
                        uid,
                        body,
                        hash: stored.hash,
                        location_id,
                        managed_by,
                        updated_at: stored.updated_at,
                        summary,
                        declared,
                    }));
                }
            },
        );
        applied
    }

    /// Removes an entity; returns its node when there was one.
    pub fn delete(&mut self, key: &str) -> Option<NodeId> {
        self.impact_counts.get_mut().clear();
        let node = self.node_of(key)?;
        self.entities[node as usize].as_ref()?;
        self.remove_node(node);
        Some(node)
    }

    fn remove_node(&mut self, node: NodeId) {
        let Some(record) = self.entities[node as usize].take() else { return };
        // A shared text held only by the set and this record goes with it,
        // so files renamed or removed over months do not accumulate.
        let summary = &record.summary;
        let optional = [&summary.spec_type, &summary.lifecycle, &summary.owner];
        let texts = [&record.location_id, &record.managed_by, &summary.kind, &summary.namespace];
        let texts: Vec<&Arc<str>> = texts.into_iter().chain(optional.into_iter().flatten()).collect();
        for text in &texts {
            // The record may hold one text twice (a kind that is also a type).
            let here = texts.iter().filter(|other| Arc::ptr_eq(text, other)).count();
            if Arc::strong_count(text) == 1 + here {
                self.shared_texts.remove(&***text);
            }
        }
        for &(rel, target) in &record.declared {
            self.remove_edge(node, rel, target);
        }
        if let Ok(body) = serde_json::from_str::<Value>(&record.body) {
            let pairs = flatten(&body, &[]);
            self.filters.remove(node, &pairs);
            for key in SORTABLE_KEYS {
                if let Some(value) = sort_value(&pairs, key) {
                    if let Some(set) = self.sorted.get_mut(key) {
                        set.remove(&value, node);
                    }
                    if let Some(ids) = self.keyed.get_mut(key) {
                        ids.remove(node);
                    }
                }
            }
        }
        self.by_ref.remove(&(record.key.clone(), node));
        self.uids.remove(&record.uid);
        self.live.remove(node);
    }

    fn relation_pair(&self, rel: RelId, target: NodeId) -> Pair {
        relation_pair(rel, self.node_refs[target as usize].to_string())
    }

    fn remove_edge(&mut self, from: NodeId, rel: RelId, to: NodeId) {
        self.graph.remove(from, rel, to);
        let still_there = self.graph.edges(from).iter().any(|e| e.rel == rel && e.to == to);
        if !still_there {
            // Either end may still have other relations of the type, whose
            // values (and place among the key's holders) must stay.
            let forward = self.relation_pair(rel, to);
            let backward = self.relation_pair(rel.inverse(), from);
            let from_keeps = self.graph.edges(from).iter().any(|e| e.rel == rel);
            let to_keeps = self.graph.edges(to).iter().any(|e| e.rel == rel.inverse());
            self.filters.remove_value(from, &forward, from_keeps);
            self.filters.remove_value(to, &backward, to_keeps);
        }
    }

    /// The entity's Backstage `relations`: every edge at its node, sorted,
    /// once each.
    pub fn relations_of(&self, node: NodeId) -> Vec<(RelId, NodeId)> {
        let mut relations: Vec<(RelId, NodeId)> = self.graph.edges(node).iter().map(|e| (e.rel, e.to)).collect();
        relations
            .sort_unstable_by(|a, b| a.0.name().cmp(b.0.name()).then_with(|| self.ref_of(a.1).cmp(self.ref_of(b.1))));
        relations.dedup();
        relations
    }

    /// The entity as served: body plus `metadata.uid`, `metadata.etag` and
    /// `relations`.
    pub fn render(&self, record: &EntityRecord) -> Value {
        let mut body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
        if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("uid".into(), Value::String(record.uid.to_string()));
            metadata.insert("etag".into(), Value::String(record.etag().to_string()));
        }
        let relations: Vec<Value> = self
            .relations_of(record.node)
            .into_iter()
            .map(|(rel, target)| {
                let target_ref = self.ref_of(target);
                let mut relation = Map::new();
                relation.insert("type".into(), Value::String(rel.name().to_string()));
                relation.insert("targetRef".into(), Value::String(target_ref.to_string()));
                if let Some((kind, rest)) = target_ref.split_once(':') {
                    if let Some((namespace, name)) = rest.split_once('/') {
                        relation.insert(
                            "target".into(),
                            serde_json::json!({"kind": kind, "namespace": namespace, "name": name}),
                        );
                    }
                }
                Value::Object(relation)
            })
            .collect();
        if let Value::Object(root) = &mut body {
            root.insert("relations".into(), Value::Array(relations));
        }
        body
    }

    /// The entity as served, straight to JSON text: the stored body with
    /// `metadata.uid`/`metadata.etag` added and `relations` appended. Only
    /// the top level and `metadata` are parsed (the rest is copied as raw
    /// JSON), so an entity with thousands of relations renders in well
    /// under a millisecond.
    pub fn render_json(&self, record: &EntityRecord) -> String {
        type RawMap = indexmap::IndexMap<String, Box<serde_json::value::RawValue>>;
        let mut out = String::with_capacity(record.body.len() + 256);
        let Ok(top) = serde_json::from_str::<RawMap>(&record.body) else {
            return serde_json::to_string(&self.render(record)).unwrap_or_default();
        };
        out.push('{');
        for (i, (key, value)) in top.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, key);
            out.push(':');
            if key == "metadata" {
                match serde_json::from_str::<RawMap>(value.get()) {
                    Ok(mut metadata) => {
                        metadata.shift_remove("uid");
                        metadata.shift_remove("etag");
                        out.push('{');
                        for (key, value) in &metadata {
                            push_json_str(&mut out, key);
                            out.push(':');
                            out.push_str(value.get());
                            out.push(',');
                        }
                        out.push_str("\"uid\":");
                        push_json_str(&mut out, record.uid.as_str(&mut uid_buffer()));
                        out.push_str(",\"etag\":");
                        push_json_str(&mut out, record.etag());
                        out.push('}');
                    }
                    Err(_) => out.push_str(value.get()),
                }
            } else {
                out.push_str(value.get());
            }
        }
        out.push_str(",\"relations\":[");
        for (i, (rel, target)) in self.relations_of(record.node).into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let target_ref = self.ref_of(target);
            out.push_str("{\"type\":");
            push_json_str(&mut out, rel.name());
            out.push_str(",\"targetRef\":");
            push_json_str(&mut out, target_ref);
            if let Some((kind, rest)) = target_ref.split_once(':') {
                if let Some((namespace, name)) = rest.split_once('/') {
                    out.push_str(",\"target\":{\"kind\":");
                    push_json_str(&mut out, kind);
                    out.push_str(",\"namespace\":");
                    push_json_str(&mut out, namespace);
                    out.push_str(",\"name\":");
                    push_json_str(&mut out, name);
                    out.push('}');
                }
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }

    /// The first `wanted` of a few matches in `set`'s order, found by
    /// looking each match up instead of walking the whole set (which, for
    /// a handful of matches among 100k entities, reads most of it). Each
    /// entity's sort value is its summary's, lower-cased, and is used only
    /// if the set holds exactly that entry; `None` (walk the set) when the
    /// matches are too many for lookups to win or one is not found so
    /// (a number, a list, an over-long value).
    fn sparse_page(
        &self,
        set: &SortOrder,
        key: &str,
        matched: &RoaringBitmap,
        descending: bool,
        wanted: usize,
    ) -> Option<Vec<NodeId>> {
        // m lookups cost about 32 entries' worth of walking each. A walk
        // reads `wanted / m` of the set's n entries when the matches are
        // spread through it, but all of it when they sit together near its
        // end (names sharing a word: `payment-…`), so lookups are taken
        // whenever they cost less than the walk's worst case either way.
        let m = matched.len() as usize;
        let n = set.len();
        let spread = m.saturating_mul(m).saturating_mul(32) <= wanted.saturating_mul(n);
        if !spread && m.saturating_mul(64) > n {
            return None;
        }
        let has_key = self.keyed.get(key)?;
        let mut keyed = Vec::with_capacity(m);
        let mut keyless = Vec::new();
        for node in matched {
            if !has_key.contains(node) {
                keyless.push(node);
                continue;
            }
            let summary = &self.entity(node)?.summary;
            let value: Box<str> = match key {
                "metadata.name" => Some(summary.name.as_str()),
                "metadata.namespace" => Some(&*summary.namespace),
                "kind" => Some(&*summary.kind),
                "metadata.title" => summary.title.as_deref(),
                "spec.type" => summary.spec_type.as_deref(),
                "spec.lifecycle" => summary.lifecycle.as_deref(),
                "spec.owner" => summary.owner.as_deref(),
                _ => None,
            }?
            .to_lowercase()
            .into();
            if !set.contains(&value, node) {
                return None;
            }
            keyed.push((value, node));
        }
        sort_head_by(&mut keyed, wanted, |a, b| if descending { b.cmp(a) } else { a.cmp(b) });
        // As in the walk, entities without the key come last, by ref.
        let mut page: Vec<NodeId> = keyed.into_iter().map(|(_, node)| node).collect();
        if page.len() < wanted {
            page.extend(self.first_by_ref(keyless, wanted - page.len()));
        }
        Some(page)
    }

    /// Ids matching `filter`, ordered by `order` (key, descending), paged.
    /// Entities without the sort key come last; ties break by ref.
    pub fn ordered_page(
        &self,
        matched: &RoaringBitmap,
        order: Option<(&str, bool)>,
        offset: usize,
        limit: usize,
    ) -> Vec<NodeId> {
        let wanted = offset.saturating_add(limit);
        let mut out = Vec::with_capacity(limit.min(matched.len() as usize));
        match order {
            None => {
                if matched.len() < 4096 {
                    let ids = self.first_by_ref(matched.iter().collect(), wanted);
                    return ids.into_iter().skip(offset).take(limit).collect();
                }
                for (_, node) in self.by_ref.iter().filter(|(_, n)| matched.contains(*n)).take(wanted) {
                    out.push(*node);
                }
            }
            Some((key, descending)) => {
                if let Some(set) = self.sorted.get(key) {
                    if let Some(page) = self.sparse_page(set, key, matched, descending, wanted) {
                        return page.into_iter().skip(offset).take(limit).collect();
                    }
                    out = set.page(matched, descending, wanted);
                } else {
                    // Unindexed key: read the values from the bodies.
                    let mut keyed: Vec<(Option<String>, NodeId)> =
                        matched.iter().map(|n| (self.value_from_body(n, key), n)).collect();
                    keyed.sort_by(|a, b| match (&a.0, &b.0) {
                        (Some(x), Some(y)) => {
                            let ord = x.cmp(y);
                            if descending {
                                ord.reverse()
                            } else {
                                ord
                            }
                        }
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => self.key_of(a.1).cmp(self.key_of(b.1)),
                    });
                    return keyed.into_iter().map(|(_, n)| n).skip(offset).take(limit).collect();
                }
                if out.len() < wanted {
                    let seen: RoaringBitmap = out.iter().copied().collect();
                    let rest = matched - &seen;
                    out.extend(self.first_by_ref(rest.iter().collect(), wanted - out.len()));
                }
            }
        }
        out.into_iter().skip(offset).take(limit).collect()
    }

    /// The first `wanted` of `nodes` in the order of their entity's ref
    /// (the tie-break of every page and the order of entities without the
    /// sort key), sorted. Only those are sorted: a page of 20 among a few
    /// thousand matches costs a selection, not a sort of them all. Each
    /// ref is looked up once, not once per comparison.
    fn first_by_ref(&self, nodes: Vec<NodeId>, wanted: usize) -> Vec<NodeId> {
        let mut keyed: Vec<(&str, NodeId)> = nodes.into_iter().map(|n| (self.key_of(n), n)).collect();
        sort_head_by(&mut keyed, wanted, Ord::cmp);
        keyed.into_iter().map(|(_, n)| n).collect()
    }

    fn key_of(&self, node: NodeId) -> &str {
        self.entity(node).map_or("", |r| &r.key)
    }

    fn value_from_body(&self, node: NodeId, key: &str) -> Option<String> {
        let record = self.entity(node)?;
        let body: Value = serde_json::from_str(&record.body).ok()?;
        let mut current = &body;
        for part in key.split('.') {
            current = match current {
                Value::Object(map) => map.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)).map(|(_, v)| v)?,
                _ => return None,
            };
        }
        match current {
            Value::String(s) => Some(s.to_lowercase()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Ids whose values for any of `keys` contain `term` (case-insensitive):
    /// Backstage's `fullTextFilterTerm`, served from the filter index.
    pub fn substring_matches(&self, term: &str, keys: &[String], within: &RoaringBitmap) -> RoaringBitmap {
        let term = term.to_lowercase();
        let mut ids = RoaringBitmap::new();
        for key in keys {
            ids |= self.filters.containing(&key.to_lowercase(), &term);
        }
        ids & within
    }

    /// Facet counts of `key` within `within`, from whichever source reads
    /// less: the entities' dense facet codes (one array read per entity of
    /// `within`) or the filter index (one intersection with `within` per
    /// distinct value, or only each value's count when `within` is every
    /// entity). Keys without facet codes come from the filter index.
    pub fn facet(&self, key: &str, within: &RoaringBitmap) -> Vec<(String, u64)> {
        let key = key.to_lowercase();
        let field = FACET_FIELDS.iter().position(|f| *f == key);
        let is_tags = key == "metadata.tags";
        let all = within.len() == self.live.len();
        let interner = match field {
            Some(i) => &self.facet_codes.interners[i],
            None if is_tags => &self.facet_codes.tag_interner,
            None => return self.filters.facet(&key, within, all),
        };
        // An intersection costs about what reading a few hundred codes
        // does (more for a value held by many entities). An owner facet at
        // a million entities has tens of thousands of values: reading a
        // large result's codes wins. A kind facet has a dozen: the index
        // wins.
        if all || within.len() / FACET_CODES_PER_INTERSECTION > interner.values.len() as u64 {
            return self.filters.facet(&key, within, all);
        }
        // Dense per-entity codes: counting is array reads, no hashing and
        // no pointer chasing into entity records.
        let mut counts = vec![0u64; interner.values.len()];
        for node in within {
            match field {
                Some(i) => {
                    let code = self.facet_codes.codes.get(node as usize).map_or(NO_CODE, |c| c[i]);
                    if code != NO_CODE {
                        counts[code as usize] += 1;
                    }
                }
                None => {
                    if let Some(tags) = self.facet_codes.tags.get(node as usize) {
                        for &code in tags.iter() {
                            counts[code as usize] += 1;
                        }
                    }
                }
            }
        }
        let mut out: Vec<(String, u64)> = counts
            .into_iter()
            .enumerate()
            .filter(|(_, count)| *count > 0)
            .map(|(code, count)| (interner.values[code].clone(), count))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// How many entities the whole-graph impact walk from `key` reaches;
    /// remembered until the catalogue next changes.
    pub fn impact_count(&self, key: &str, direction: Direction) -> Option<usize> {
        let node = self.node_of(key)?;
        self.entity(node)?;
        let slot = (node, matches!(direction, Direction::Dependents));
        if let Some(count) = self.impact_counts.lock().get(&slot) {
            return Some(*count);
        }
        let count = self.graph.impact(node, direction, None, |n| self.live.contains(n)).reached.len();
        let mut counts = self.impact_counts.lock();
        if counts.len() >= MAX_IMPACT_COUNTS {
            counts.clear();
        }
        counts.insert(slot, count);
        Some(count)
    }

    /// Impact analysis from an entity; `None` when the ref is unknown.
    pub fn impact(&self, key: &str, direction: Direction, max_depth: Option<u32>) -> Option<crate::graph::Impact> {
        let node = self.node_of(key)?;
        self.entity(node)?;
        Some(self.graph.impact(node, direction, max_depth, |n| self.live.contains(n)))
    }
}

/// How many entities' facet codes are read in the time of one
/// intersection of a value's ids with a set (see `CatalogState::facet`).
const FACET_CODES_PER_INTERSECTION: u64 = 256;
/// Summary fields counted as facets from dense codes.
const FACET_FIELDS: [&str; 5] = ["kind", "metadata.namespace", "spec.type", "spec.lifecycle", "spec.owner"];
const NO_CODE: u32 = u32::MAX;

/// Case-insensitive value → code, keeping the first spelling seen.
#[derive(Default)]
struct ValueInterner {
    codes: HashMap<String, u32>,
    values: Vec<String>,
}

impl ValueInterner {
    fn code(&mut self, value: Option<&str>) -> u32 {
        let Some(value) = value else { return NO_CODE };
        let lower = value.to_lowercase();
        if let Some(&code) = self.codes.get(&lower) {
            return code;
        }
        let code = self.values.len() as u32;
        self.values.push(value.to_string());
        self.codes.insert(lower, code);
        code
    }
}

/// Per-entity facet codes, indexed by node.
#[derive(Default)]
struct FacetCodes {
    interners: [ValueInterner; 5],
    tag_interner: ValueInterner,
    codes: Vec<[u32; 5]>,
    tags: Vec<Box<[u32]>>,
}

impl FacetCodes {
    fn footprint(&self) -> u64 {
        use crate::footprint::{table, text, vec};
        let interner = |i: &ValueInterner| {
            table(i.codes.capacity(), std::mem::size_of::<(String, u32)>())
                + vec::<String>(i.values.capacity())
                + 2 * i.values.iter().map(|v| text(v.len())).sum::<u64>()
        };
        self.interners.iter().map(interner).sum::<u64>()
            + interner(&self.tag_interner)
            + vec::<[u32; 5]>(self.codes.capacity())
            + vec::<Box<[u32]>>(self.tags.capacity())
            + self.tags.iter().map(|t| vec::<u32>(t.len())).sum::<u64>()
    }

    fn set(&mut self, node: NodeId, summary: &Summary) {
        let n = node as usize;
        if self.codes.len() <= n {
            self.codes.resize(n + 1, [NO_CODE; 5]);
            self.tags.resize_with(n + 1, Default::default);
        }
        let fields = [
            Some(&*summary.kind),
            Some(&*summary.namespace),
            summary.spec_type.as_deref(),
            summary.lifecycle.as_deref(),
            summary.owner.as_deref(),
        ];
        for (i, value) in fields.into_iter().enumerate() {
            self.codes[n][i] = self.interners[i].code(value);
        }
        let mut tags: Vec<u32> = summary.tags.iter().map(|t| self.tag_interner.code(Some(t))).collect();
        tags.sort_unstable();
        tags.dedup();
        self.tags[n] = tags.into_boxed_slice();
    }
}

/// An entity parsed and flattened outside the state lock (in parallel),
/// ready for [`CatalogState::apply`].
pub struct Prepared {
    /// The stored row; its `body` is moved to `body`.
    stored: StoredEntity,
    /// The body as the projection keeps it: the same allocation as the
    /// parse cache's copy when the row was just written by this process.
    body: Arc<str>,
    entity_ref: EntityRef,
    pairs: Vec<Pair>,
    edges: Vec<DeclaredEdge>,
    /// The lower-case value of each of [`SORTABLE_KEYS`] the entity has.
    sort_values: Vec<(&'static str, Box<str>)>,
    summary: Summary,
    managed_by: String,
    pub search_doc: SearchDoc,
}

impl Prepared {
    pub fn key(&self) -> &str {
        &self.stored.key
    }
}

/// A stored entity whose body is not JSON (the ingest path never writes one).
#[derive(Debug, Clone, thiserror::Error)]
#[error("stored entity {key} has a body that is not JSON: {message}")]
pub(crate) struct StoredBodyError {
    pub key: String,
    pub message: String,
}

/// Parses and flattens a stored entity. A body that is not JSON (which the
/// ingest path never writes) is an error for that entity only.
#[cfg(test)]
pub(crate) fn prepare(stored: StoredEntity) -> Result<Prepared, StoredBodyError> {
    prepare_shared(stored, None)
}

/// [`prepare`], keeping `shared` as the body when given: the text the
/// parse cache already holds for this very row (`stored.body` is equal to
/// it), so that the catalogue's bodies are in memory once, not twice.
pub(crate) fn prepare_shared(mut stored: StoredEntity, shared: Option<Arc<str>>) -> Result<Prepared, StoredBodyError> {
    let text: Arc<str> = match shared {
        Some(shared) => {
            stored.body = String::new();
            shared
        }
        None => Arc::from(std::mem::take(&mut stored.body)),
    };
    let body: Value = serde_json::from_str(&text)
        .map_err(|error| StoredBodyError { key: stored.key.clone(), message: error.to_string() })?;
    let entity_ref = EntityRef::new(&stored.kind, &stored.namespace, &stored.name);
    let own_ref = entity_ref.to_string();
    let edges = declared_relations(&body, &entity_ref)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|relation| {
            let rel = RelId::of(relation.relation)?;
            let forward = relation_pair(rel, relation.target.to_string());
            let backward = relation_pair(rel.inverse(), own_ref.clone());
            Some(DeclaredEdge { rel, target: relation.target, forward, backward })
        })
        .collect();
    let pairs = flatten(&body, &[]);
    let sort_values =
        SORTABLE_KEYS.iter().filter_map(|key| Some((*key, sort_value(&pairs, key)?.into_boxed_str()))).collect();
    let summary = summarize(&body);
    let search_doc = search_doc(&body, &summary);
    let managed_by = body["metadata"]["annotations"][ANNOTATION_MANAGED_BY_LOCATION].as_str().unwrap_or("").to_string();
    Ok(Prepared { stored, body: text, entity_ref, pairs, edges, sort_values, summary, managed_by, search_doc })
}

/// A declared relation, with the filter pairs it adds: `relations.<type>`
/// naming the target on the entity, and the inverse naming the entity on
/// the target. Made with the rest of [`Prepared`], outside the lock.
struct DeclaredEdge {
    rel: RelId,
    target: EntityRef,
    forward: Pair,
    backward: Pair,
}

/// The filter pair `relations.<type>` = `target_ref`.
fn relation_pair(rel: RelId, target_ref: String) -> Pair {
    Pair {
        key: format!("relations.{}", rel.name().to_lowercase()),
        value: Some((target_ref.to_lowercase(), target_ref)),
    }
}

/// What the search index needs of an applied entity.
pub struct Applied {
    pub node: NodeId,
    /// It replaced an entity of the same key (whose document is indexed).
    pub replaced: bool,
    pub search_doc: SearchDoc,
}

/// The batch without the entities a later one of the same key replaces,
/// in order.
fn last_of_each_key(batch: Vec<Prepared>) -> Vec<Prepared> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (i, prepared) in batch.iter().enumerate() {
        last.insert(prepared.key(), i);
    }
    if last.len() == batch.len() {
        return batch;
    }
    let keep: HashSet<usize> = last.into_values().collect();
    batch.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, p)| p).collect()
}

/// Leaves the first `wanted` of `items` under `cmp`, in order: a selection
/// (linear) and a sort of the head, not a sort of everything.
fn sort_head_by<T>(items: &mut Vec<T>, wanted: usize, mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    if wanted == 0 {
        items.clear();
        return;
    }
    if wanted < items.len() {
        items.select_nth_unstable_by(wanted - 1, &mut cmp);
        items.truncate(wanted);
    }
    items.sort_unstable_by(cmp);
}

fn push_json_str(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_default());
    }
}

fn sort_value(pairs: &[Pair], key: &str) -> Option<String> {
    pairs.iter().find(|p| p.key == key).and_then(|p| p.value.as_ref()).map(|(lower, _)| lower.clone())
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// The copy of `text` the catalogue shares, added when it is new.
fn share(shared_texts: &mut HashSet<Arc<str>>, text: &str) -> Arc<str> {
    match shared_texts.get(text) {
        Some(shared) => shared.clone(),
        None => {
            let shared: Arc<str> = Arc::from(text);
            shared_texts.insert(shared.clone());
            shared
        }
    }
}

impl Summary {
    /// The same summary with its few-valued texts replaced by shared ones.
    fn shared(self, mut share: impl FnMut(&str) -> Arc<str>) -> Summary {
        let mut optional = |text: Option<Arc<str>>| text.map(|text| share(&text));
        Summary {
            spec_type: optional(self.spec_type),
            lifecycle: optional(self.lifecycle),
            owner: optional(self.owner),
            kind: share(&self.kind),
            namespace: share(&self.namespace),
            ..self
        }
    }
}

fn shared_text(value: &Value) -> Option<Arc<str>> {
    value.as_str().map(Arc::from)
}

fn summarize(body: &Value) -> Summary {
    let metadata = &body["metadata"];
    let spec = &body["spec"];
    Summary {
        kind: Arc::from(body["kind"].as_str().unwrap_or_default()),
        namespace: Arc::from(metadata["namespace"].as_str().unwrap_or("default")),
        name: metadata["name"].as_str().unwrap_or_default().to_string(),
        title: text(&metadata["title"]),
        description: text(&metadata["description"]),
        spec_type: shared_text(&spec["type"]),
        lifecycle: shared_text(&spec["lifecycle"]),
        owner: shared_text(&spec["owner"]),
        tags: metadata["tags"].as_array().map(|t| t.iter().filter_map(text).collect()).unwrap_or_default(),
    }
}

/// Spec text is capped so one huge API definition cannot dominate memory.
const MAX_SPEC_TEXT: usize = 16 * 1024;

fn search_doc(body: &Value, summary: &Summary) -> SearchDoc {
    let mut spec_text = String::new();
    collect_text(&body["spec"], &mut spec_text);
    if spec_text.len() > MAX_SPEC_TEXT {
        let mut cut = MAX_SPEC_TEXT;
        while !spec_text.is_char_boundary(cut) {
            cut -= 1;
        }
        spec_text.truncate(cut);
    }
    let display_name = body["spec"]["profile"]["displayName"].as_str().unwrap_or_default();
    SearchDoc {
        name: format!("{} {}", summary.name, summary.kind),
        title: format!("{} {display_name}", summary.title.as_deref().unwrap_or_default()),
        description: summary.description.clone().unwrap_or_default(),
        tags: summary.tags.join(" "),
        owner: summary.owner.as_deref().unwrap_or_default().to_string(),
        text: spec_text,
    }
}

fn collect_text(value: &Value, out: &mut String) {
    if out.len() > MAX_SPEC_TEXT {
        return;
    }
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(kind: &str, name: &str, body: serde_json::Value) -> StoredEntity {
        // A hash of the store's shape (hex), and its etag as the store
        // writes it: the first 16 characters.
        let hash = format!("{:x}{:0>62}", kind.len(), name.bytes().map(|b| format!("{b:02x}")).collect::<String>());
        StoredEntity {
            key: format!("{}:default/{}", kind.to_lowercase(), name.to_lowercase()),
            uid: format!("uid-{name}"),
            etag: hash[..16].to_string(),
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            body: body.to_string(),
            hash,
            location_id: "loc".into(),
            updated_at: time::macros::datetime!(2026-01-01 00:00 UTC),
        }
    }

    #[test]
    fn the_head_of_a_sort_is_the_sorts_first_items() {
        // A fixed shuffle with repeats, so ties are exercised too.
        let items: Vec<u32> = (0..500u32).map(|i| i.wrapping_mul(2_654_435_761) % 97).collect();
        let mut sorted = items.clone();
        sorted.sort_unstable();
        for wanted in [0, 1, 2, 20, 96, 97, 499, 500, 501, 10_000] {
            let mut head = items.clone();
            sort_head_by(&mut head, wanted, Ord::cmp);
            assert_eq!(head, sorted[..wanted.min(500)], "wanted {wanted}");
            let mut descending = items.clone();
            sort_head_by(&mut descending, wanted, |a, b| b.cmp(a));
            let expected: Vec<u32> = sorted.iter().rev().take(wanted).copied().collect();
            assert_eq!(descending, expected, "wanted {wanted}, descending");
        }
        let mut empty: Vec<u32> = Vec::new();
        sort_head_by(&mut empty, 20, Ord::cmp);
        assert!(empty.is_empty());
    }

    #[test]
    fn the_footprint_grows_with_the_entities_and_shrinks_when_they_go() {
        let component = |i: usize| {
            serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default", "description": "x".repeat(200)},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", "dependsOn": [format!("component:svc-{}", i + 1)]}})
        };
        let total = |state: &CatalogState, structure: &str| {
            state.footprint().into_iter().find(|f| f.structure == structure).map(|f| f.bytes).unwrap()
        };
        let mut state = CatalogState::new();
        for i in 0..10 {
            state.apply(prepare(stored("Component", &format!("svc-{i}"), component(i))).unwrap());
        }
        let small: Vec<Footprint> = state.footprint();
        for i in 10..1000 {
            state.apply(prepare(stored("Component", &format!("svc-{i}"), component(i))).unwrap());
        }
        // Each body is a little over 300 bytes of JSON: a thousand of them
        // are counted, and every structure grew.
        let bodies = total(&state, "entity bodies");
        assert!((300_000..600_000).contains(&bodies), "{bodies} bytes of bodies");
        for (before, after) in small.iter().zip(state.footprint()) {
            assert!(
                after.bytes > before.bytes,
                "{} did not grow: {} -> {}",
                after.structure,
                before.bytes,
                after.bytes
            );
        }
        for i in 0..1000 {
            state.delete(&format!("component:default/svc-{i}"));
        }
        assert_eq!(total(&state, "entity bodies"), 0);
        assert!(total(&state, "entity records") < 1000 * 16, "only the emptied slots remain");
    }

    /// When one relation of a type goes, both ends keep their other
    /// relations of that type: the values, and the key itself (once, a
    /// removal dropped the entity from the key's holders, and the key's
    /// last holder going dropped every value of every entity with it).
    #[test]
    fn a_removed_relation_leaves_the_others_of_its_type() {
        let component = |name: &str, depends: &[&str]| {
            serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", "dependsOn": depends}})
        };
        let mut state = CatalogState::new();
        let entities = [("b", &[][..]), ("x", &[]), ("c", &["component:b"]), ("a", &["component:b", "component:x"])];
        for (name, depends) in entities {
            state.apply(prepare(stored("Component", name, component(name, depends))).unwrap());
        }
        let matching = |state: &CatalogState, filter: &str| -> Vec<String> {
            let filter = crate::filters::EntityFilter::parse(&[filter.to_string()]).unwrap();
            state.filters().matching(&filter, state.live()).iter().map(|n| state.ref_of(n).to_string()).collect()
        };
        assert_eq!(matching(&state, "relations.dependencyof"), ["component:default/b", "component:default/x"]);
        // `a` depends on nothing any more: `b` is still a dependency of `c`.
        state.apply(prepare(stored("Component", "a", component("a", &[]))).unwrap());
        assert_eq!(matching(&state, "relations.dependencyof=component:default/c"), ["component:default/b"]);
        assert_eq!(matching(&state, "relations.dependencyof"), ["component:default/b"]);
        assert!(matching(&state, "relations.dependencyof=component:default/a").is_empty());
        assert_eq!(matching(&state, "relations.dependson"), ["component:default/c"]);
    }

    /// A batch is applied as one entity at a time would be: relations
    /// between its entities, an entity it replaces, and a key it holds
    /// twice (the later wins, and the earlier leaves nothing behind).
    #[test]
    fn a_batch_applies_as_one_entity_at_a_time_would() {
        let component = |name: &str, owner: &str, depends: &[&str]| {
            serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": "default", "tags": [owner]},
                "spec": {"type": "service", "lifecycle": "production", "owner": owner,
                         "dependsOn": depends, "providesApis": ["pay-api"]}})
        };
        let api = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "pay-api", "namespace": "default"},
            "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a", "definition": "x"}});
        let before =
            || vec![prepare(stored("Component", "old", component("old", "team-z", &["component:a"]))).unwrap()];
        let batch = || {
            vec![
                prepare(stored("Component", "a", component("a", "team-a", &["component:b", "component:b"]))).unwrap(),
                prepare(stored("Component", "b", component("b", "team-a", &["component:a"]))).unwrap(),
                prepare(stored("API", "pay-api", api.clone())).unwrap(),
                prepare(stored("Component", "old", component("old", "team-b", &["component:b"]))).unwrap(),
                prepare(stored("Component", "a", component("a", "team-c", &["component:old"]))).unwrap(),
            ]
        };
        let mut one_by_one = CatalogState::new();
        let mut batched = CatalogState::new();
        for p in before() {
            one_by_one.apply(p);
        }
        batched.apply_batch(before());
        for p in batch() {
            one_by_one.apply(p);
        }
        let applied = batched.apply_batch(batch());
        assert_eq!(applied.len(), 4, "the first `a` is replaced within the batch");
        let replaced: Vec<bool> = applied.iter().map(|a| a.replaced).collect();
        assert_eq!(replaced, [false, false, true, false], "b, pay-api, old (stored before), a");

        let matching = |state: &CatalogState, filter: &str| -> Vec<String> {
            let filter = crate::filters::EntityFilter::parse(&[filter.to_string()]).unwrap();
            state.filters().matching(&filter, state.live()).iter().map(|n| state.ref_of(n).to_string()).collect()
        };
        for filter in [
            "spec.owner=team-a",
            "spec.owner=team-c",
            "metadata.tags=team-a",
            "relations.dependson=component:default/b",
            "relations.dependencyof=component:default/a",
            "relations.dependencyof=component:default/old",
            "relations.dependson=component:default/a",
            "relations.providesapi=api:default/pay-api",
            "relations.apiprovidedby=component:default/a",
            "kind=component",
        ] {
            assert_eq!(matching(&batched, filter), matching(&one_by_one, filter), "{filter}");
        }
        assert!(matching(&batched, "spec.owner=team-a").iter().all(|r| r != "component:default/a"));
        assert_eq!(matching(&batched, "relations.dependson=component:default/a"), ["component:default/b"]);
        for key in ["component:default/a", "component:default/b", "component:default/old", "api:default/pay-api"] {
            let render = |state: &CatalogState| state.render(state.get(key).unwrap());
            assert_eq!(render(&batched), render(&one_by_one), "{key}");
        }
        assert_eq!(batched.len(), one_by_one.len());
    }

    /// A few matches are ordered by looking each up; the page must be the
    /// one walking the whole sorted set gives, for every sortable key,
    /// both directions, entities without the key, mixed case, and values
    /// the summary cannot give (numbers, lists, over-long text).
    #[test]
    fn a_page_of_few_matches_is_the_walked_page() {
        let mut state = CatalogState::new();
        for i in 0..3000usize {
            let lifecycle = ["production", "Experimental", "deprecated"][i % 3];
            let mut spec = serde_json::json!({ "lifecycle": lifecycle });
            match i % 7 {
                0 => {}
                1 => spec["type"] = serde_json::json!(i % 5),
                2 => spec["type"] = serde_json::json!(["b", "a"]),
                _ => spec["type"] = serde_json::json!(["Service", "website", "LIBRARY"][i % 3]),
            }
            if i % 4 != 0 {
                spec["owner"] = serde_json::json!(format!("Team-{}", i % 11));
            }
            let mut metadata =
                serde_json::json!({"name": format!("Svc-{:04}", (i * 7919) % 3000), "namespace": "default"});
            if i % 3 == 0 {
                metadata["title"] =
                    serde_json::json!(if i % 9 == 0 { "t".repeat(5000) } else { format!("Title {}", i % 13) });
            }
            let name = metadata["name"].as_str().unwrap().to_string();
            let body = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": metadata, "spec": spec});
            state.apply(prepare(stored("Component", &name, body)).unwrap());
        }
        let walked = |key: &str, matched: &RoaringBitmap, descending: bool, wanted: usize| -> Vec<NodeId> {
            let mut seen = RoaringBitmap::new();
            let mut out: Vec<NodeId> =
                state.sorted[key].iter(descending).filter(|n| matched.contains(*n) && seen.insert(*n)).collect();
            let mut missing: Vec<NodeId> = (matched - &seen).iter().collect();
            missing.sort_by(|a, b| state.key_of(*a).cmp(state.key_of(*b)));
            out.extend(missing);
            out.truncate(wanted);
            out
        };
        let mut sparse_used = 0;
        for (round, step) in [1u32, 97, 331, 1009, 2999].into_iter().enumerate() {
            let matched: RoaringBitmap = state.live().iter().step_by(step as usize).collect();
            for key in SORTABLE_KEYS {
                for descending in [false, true] {
                    for (offset, limit) in [(0, 20), (5, 3), (0, 1000)] {
                        let page = state.ordered_page(&matched, Some((key, descending)), offset, limit);
                        let expected: Vec<NodeId> =
                            walked(key, &matched, descending, offset + limit).into_iter().skip(offset).collect();
                        assert_eq!(
                            page,
                            expected,
                            "{key} desc={descending} offset={offset} matches={} round {round}",
                            matched.len()
                        );
                        if state.sparse_page(&state.sorted[key], key, &matched, descending, offset + limit).is_some() {
                            sparse_used += 1;
                        }
                    }
                }
            }
            // Without an order, pages are in ref order.
            let mut by_ref: Vec<NodeId> = matched.iter().collect();
            by_ref.sort_by(|a, b| state.key_of(*a).cmp(state.key_of(*b)));
            for (offset, limit) in [(0, 20), (5, 3), (0, 1000), (2990, 20)] {
                let expected: Vec<NodeId> = by_ref.iter().skip(offset).take(limit).copied().collect();
                assert_eq!(state.ordered_page(&matched, None, offset, limit), expected, "unordered, round {round}");
            }
        }
        assert!(sparse_used > 0, "the lookup path was never taken");
        // Matches without a title (two in three here) no longer send a
        // page ordered by title back to the walk.
        let few: RoaringBitmap = state.live().iter().step_by(331).collect();
        assert!(few.iter().any(|n| !state.keyed["metadata.title"].contains(n)));
        assert!(state.sparse_page(&state.sorted["metadata.title"], "metadata.title", &few, false, 20).is_some());
        let none = RoaringBitmap::new();
        assert!(state.ordered_page(&none, Some(("metadata.name", false)), 0, 20).is_empty());
    }

    #[test]
    fn a_shared_text_goes_with_its_last_entity() {
        let mut state = CatalogState::new();
        let body = |name: &str, file: &str| {
            serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "annotations": {ANNOTATION_MANAGED_BY_LOCATION: file}},
                "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}})
        };
        state.apply(prepare(stored("Component", "a", body("a", "file:/one.yaml"))).unwrap());
        state.apply(prepare(stored("Component", "b", body("b", "file:/one.yaml"))).unwrap());
        let (a, b) = (state.get("component:default/a").unwrap().clone(), state.get("component:default/b").unwrap());
        assert!(Arc::ptr_eq(&a.managed_by, &b.managed_by), "one text for the entities of a file");
        for (x, y) in [(&a.summary.kind, &b.summary.kind), (&a.summary.namespace, &b.summary.namespace)] {
            assert!(Arc::ptr_eq(x, y), "one text for a kind or namespace");
        }
        for (x, y) in [(&a.summary.owner, &b.summary.owner), (&a.summary.lifecycle, &b.summary.lifecycle)] {
            assert!(Arc::ptr_eq(x.as_ref().unwrap(), y.as_ref().unwrap()), "one text for an owner or lifecycle");
        }
        drop(a);
        state.delete("component:default/a");
        assert!(state.shared_texts.contains("file:/one.yaml"), "b still holds it");
        // Moved to another file, then gone: neither text is kept.
        state.apply(prepare(stored("Component", "b", body("b", "file:/two.yaml"))).unwrap());
        assert!(!state.shared_texts.contains("file:/one.yaml"));
        state.delete("component:default/b");
        assert!(!state.shared_texts.contains("file:/two.yaml"));
        assert!(!state.shared_texts.contains("loc"), "the location id goes with its last entity too");
        assert!(state.shared_texts.is_empty(), "the summaries' texts go too: {:?}", state.shared_texts);
        // One record holding a text twice (its type is its kind) lets go of it.
        let twice = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "c"}, "spec": {"type": "Component", "owner": "Component"}});
        state.apply(prepare(stored("Component", "c", twice)).unwrap());
        assert!(state.shared_texts.contains("Component"));
        state.delete("component:default/c");
        assert!(state.shared_texts.is_empty(), "{:?}", state.shared_texts);
    }

    #[test]
    fn text_rendering_matches_the_tree_rendering() {
        let mut state = CatalogState::new();
        let api = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "pay-api", "namespace": "default", "uid": "stale", "description": "quote \" and \\ slash"},
            "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a", "definition": "openapi: 3.0.0\n"}});
        let component = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "pay", "namespace": "default"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", "providesApis": ["pay-api"]}});
        let (api, component) = (stored("API", "pay-api", api), stored("Component", "pay", component));
        let etags = [api.etag.clone(), component.etag.clone()];
        state.apply(prepare(api).unwrap());
        state.apply(prepare(component).unwrap());
        for (key, etag) in ["api:default/pay-api", "component:default/pay"].into_iter().zip(etags) {
            let record = state.get(key).unwrap().clone();
            let text: Value = serde_json::from_str(&state.render_json(&record)).unwrap();
            assert_eq!(text, state.render(&record), "{key}");
            assert_eq!(text["metadata"]["uid"], record.uid.to_string().as_str());
            // The etag served is the one the store holds (derived, not kept).
            assert_eq!(text["metadata"]["etag"], etag.as_str());
        }
        let api = state.get("api:default/pay-api").unwrap().clone();
        let rendered: Value = serde_json::from_str(&state.render_json(&api)).unwrap();
        let relations: Vec<String> = rendered["relations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r["type"].as_str().unwrap(), r["targetRef"].as_str().unwrap()))
            .collect();
        assert_eq!(relations, ["apiProvidedBy component:default/pay", "ownedBy group:default/team-a"]);
    }

    #[test]
    fn facets_from_codes_match_the_index() {
        let mut state = CatalogState::new();
        for (i, (kind, tag)) in [("Component", "Java"), ("component", "java"), ("API", "go")].into_iter().enumerate() {
            let name = format!("e{i}");
            let body = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind,
                "metadata": {"name": name, "namespace": "default", "tags": [tag, tag.to_lowercase()]},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", "definition": "x"}});
            state.apply(prepare(stored(kind, &name, body)).unwrap());
        }
        let all = state.live().clone();
        let ids: Vec<NodeId> = all.iter().collect();
        // Every entity (counted from the index) and strict subsets (from
        // the codes) against intersections with the index.
        let subsets: Vec<RoaringBitmap> =
            vec![all.clone(), ids[..2].iter().copied().collect(), ids[1..].iter().copied().collect(), [ids[2]].into()];
        for within in &subsets {
            for key in ["kind", "metadata.tags", "spec.owner", "spec.type"] {
                let counted = state.facet(key, within);
                let mut from_index = state.filters().facet(key, within, false);
                from_index.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                assert_eq!(counted, from_index, "{key} within {within:?}");
            }
        }
        assert_eq!(state.facet("kind", &all), [("Component".to_string(), 2), ("API".to_string(), 1)]);
    }
}
