//! The relation graph: adjacency lists over interned entity refs, with
//! transitive impact ("blast radius") and neighbourhood queries.
//!
//! Every declared relation is stored twice, once from each end, with the
//! inverse type on the far end (`ownedBy` here, `ownerOf` there), so a node's
//! list is exactly its Backstage `relations`. Nodes exist for refs that no
//! entity defines yet (dangling targets); queries skip them in results.

use plinth_model::{is_dependency, RELATION_PAIRS};
use std::collections::VecDeque;
use std::sync::OnceLock;

pub type NodeId = u32;

/// A relation type as a small integer; `id ^ 1` is its inverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelId(pub u8);

impl RelId {
    pub fn of(name: &str) -> Option<RelId> {
        relation_names().iter().position(|n| *n == name).map(|i| RelId(i as u8))
    }
    pub fn name(self) -> &'static str {
        relation_names()[self.0 as usize]
    }
    pub fn inverse(self) -> RelId {
        RelId(self.0 ^ 1)
    }
    /// "from depends on to" for impact analysis.
    pub fn is_dependency(self) -> bool {
        relation_table().dependency[self.0 as usize]
    }
    /// "to depends on from": the inverse of a dependency.
    pub fn is_dependent(self) -> bool {
        relation_table().dependency[self.inverse().0 as usize]
    }
    /// The first of its pair; used to draw each relation once.
    pub fn is_canonical(self) -> bool {
        self.0 & 1 == 0
    }
}

struct RelationTable {
    names: Vec<&'static str>,
    /// Looked up per edge in impact walks, so precomputed.
    dependency: Vec<bool>,
}

fn relation_table() -> &'static RelationTable {
    static TABLE: OnceLock<RelationTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let names: Vec<&'static str> = RELATION_PAIRS.iter().flat_map(|&(a, b)| [a, b]).collect();
        let dependency = names.iter().map(|n| is_dependency(n)).collect();
        RelationTable { names, dependency }
    })
}

fn relation_names() -> &'static [&'static str] {
    &relation_table().names
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub rel: RelId,
    pub to: NodeId,
}

#[derive(Default)]
pub struct Graph {
    adjacency: Vec<Vec<Edge>>,
}

/// Which way impact analysis walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Everything with a dependency path to the start.
    Dependents,
    /// Everything reachable from the start along dependencies.
    Dependencies,
}

/// A node reached by impact analysis: its depth and the node it was reached
/// from (for the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub node: NodeId,
    pub depth: u32,
}

pub struct Impact {
    /// Reached nodes, nearest first.
    pub reached: Vec<Reached>,
    parents: Vec<NodeId>,
    /// Dependency cycles met on the way, each as a path of nodes that
    /// starts and ends on the same node.
    pub cycles: Vec<Vec<NodeId>>,
    /// True when `max_depth` stopped the walk with nodes left unvisited.
    pub truncated_by_depth: bool,
}

const NONE: NodeId = NodeId::MAX;
const MAX_CYCLES: usize = 20;

impl Impact {
    /// The nodes from the start to `node`, inclusive.
    pub fn path(&self, node: NodeId) -> Vec<NodeId> {
        let mut path = vec![node];
        let mut current = node;
        while let Some(&parent) = self.parents.get(current as usize) {
            if parent == NONE || path.len() > 10_000 {
                break;
            }
            path.push(parent);
            current = parent;
        }
        path.reverse();
        path
    }
}

impl Graph {
    fn ensure(&mut self, node: NodeId) {
        let needed = node as usize + 1;
        if self.adjacency.len() < needed {
            self.adjacency.resize_with(needed, Vec::new);
        }
    }

    pub fn node_count(&self) -> usize {
        self.adjacency.len()
    }

    pub fn add(&mut self, from: NodeId, rel: RelId, to: NodeId) {
        self.ensure(from.max(to));
        self.adjacency[from as usize].push(Edge { rel, to });
        self.adjacency[to as usize].push(Edge { rel: rel.inverse(), to: from });
    }

    pub fn remove(&mut self, from: NodeId, rel: RelId, to: NodeId) {
        let remove_one = |edges: &mut Vec<Edge>, edge: Edge| {
            if let Some(i) = edges.iter().position(|e| *e == edge) {
                edges.swap_remove(i);
            }
        };
        if let Some(edges) = self.adjacency.get_mut(from as usize) {
            remove_one(edges, Edge { rel, to });
        }
        if let Some(edges) = self.adjacency.get_mut(to as usize) {
            remove_one(edges, Edge { rel: rel.inverse(), to: from });
        }
    }

    /// Estimated bytes held by the adjacency lists.
    pub(crate) fn footprint(&self) -> u64 {
        use crate::footprint::vec;
        vec::<Vec<Edge>>(self.adjacency.capacity())
            + self.adjacency.iter().map(|e| vec::<Edge>(e.capacity())).sum::<u64>()
    }

    pub fn edges(&self, node: NodeId) -> &[Edge] {
        self.adjacency.get(node as usize).map_or(&[], Vec::as_slice)
    }

    /// Breadth-first impact walk from `start`. `counts` says which nodes are
    /// real entities (dangling refs are walked through but not reported).
    pub fn impact(
        &self,
        start: NodeId,
        direction: Direction,
        max_depth: Option<u32>,
        counts: impl Fn(NodeId) -> bool,
    ) -> Impact {
        let n = self.adjacency.len().max(start as usize + 1);
        let mut parents = vec![NONE; n];
        let mut depth_of = vec![u32::MAX; n];
        depth_of[start as usize] = 0;
        let mut queue = VecDeque::from([start]);
        let mut reached = Vec::new();
        let mut cycles = Vec::new();
        let mut truncated_by_depth = false;
        let follows = |edge: &Edge| match direction {
            Direction::Dependents => edge.rel.is_dependent(),
            Direction::Dependencies => edge.rel.is_dependency(),
        };
        while let Some(node) = queue.pop_front() {
            let depth = depth_of[node as usize];
            for edge in self.edges(node).iter().filter(|e| follows(e)) {
                let next = edge.to as usize;
                if depth_of[next] != u32::MAX {
                    // Already seen: a cycle if `next` is on the path to `node`
                    // (only a node shallower than `node` can be).
                    if cycles.len() < MAX_CYCLES
                        && depth_of[next] < depth.max(1)
                        && (edge.to == start || is_ancestor(&parents, node, edge.to))
                    {
                        let mut cycle = path_between(&parents, edge.to, node);
                        cycle.push(edge.to);
                        if !cycles.contains(&cycle) {
                            cycles.push(cycle);
                        }
                    }
                    continue;
                }
                if max_depth.is_some_and(|max| depth >= max) {
                    truncated_by_depth = true;
                    continue;
                }
                depth_of[next] = depth + 1;
                parents[next] = node;
                queue.push_back(edge.to);
                if counts(edge.to) {
                    reached.push(Reached { node: edge.to, depth: depth + 1 });
                }
            }
        }
        Impact { reached, parents, cycles, truncated_by_depth }
    }

    /// Every node within `depth` hops along any relation (optionally only
    /// the given types), nearest first, at most `max_nodes`. Returns the
    /// nodes with their distance and whether the limit cut the walk short.
    pub fn neighbourhood(
        &self,
        start: NodeId,
        depth: u32,
        max_nodes: usize,
        relation_filter: Option<&[RelId]>,
    ) -> (Vec<(NodeId, u32)>, bool) {
        let n = self.adjacency.len().max(start as usize + 1);
        let mut seen = vec![u32::MAX; n];
        seen[start as usize] = 0;
        let mut queue = VecDeque::from([start]);
        let mut nodes = vec![(start, 0)];
        let mut truncated = false;
        while let Some(node) = queue.pop_front() {
            let d = seen[node as usize];
            if d >= depth {
                continue;
            }
            for edge in self.edges(node) {
                if let Some(filter) = relation_filter {
                    if !filter.contains(&edge.rel) && !filter.contains(&edge.rel.inverse()) {
                        continue;
                    }
                }
                if seen[edge.to as usize] != u32::MAX {
                    continue;
                }
                if nodes.len() >= max_nodes {
                    truncated = true;
                    break;
                }
                seen[edge.to as usize] = d + 1;
                nodes.push((edge.to, d + 1));
                queue.push_back(edge.to);
            }
        }
        (nodes, truncated)
    }
}

fn is_ancestor(parents: &[NodeId], node: NodeId, candidate: NodeId) -> bool {
    let mut current = node;
    let mut steps = 0;
    while current != NONE && steps < 10_000 {
        if current == candidate {
            return true;
        }
        current = parents[current as usize];
        steps += 1;
    }
    false
}

/// Nodes from `ancestor` down to `node` along parent pointers.
fn path_between(parents: &[NodeId], ancestor: NodeId, node: NodeId) -> Vec<NodeId> {
    let mut path = vec![node];
    let mut current = node;
    while current != ancestor && current != NONE && path.len() < 10_000 {
        current = parents[current as usize];
        if current != NONE {
            path.push(current);
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(name: &str) -> RelId {
        RelId::of(name).unwrap()
    }

    #[test]
    fn relation_ids_pair_up() {
        assert_eq!(rel("ownedBy").inverse(), rel("ownerOf"));
        assert!(rel("dependsOn").is_dependency());
        assert!(rel("dependencyOf").is_dependent());
        assert!(rel("providesApi").is_dependent());
        assert!(rel("apiProvidedBy").is_dependency());
    }

    #[test]
    fn impact_walks_dependency_edges_both_ways() {
        // 1 dependsOn 0; 2 consumesApi 3; 3 apiProvidedBy 1 (1 providesApi 3).
        let mut g = Graph::default();
        g.add(1, rel("dependsOn"), 0);
        g.add(1, rel("providesApi"), 3);
        g.add(2, rel("consumesApi"), 3);
        g.add(4, rel("ownedBy"), 0);
        let impact = g.impact(0, Direction::Dependents, None, |_| true);
        let reached: Vec<(u32, u32)> = impact.reached.iter().map(|r| (r.node, r.depth)).collect();
        assert_eq!(reached, [(1, 1), (3, 2), (2, 3)]);
        assert_eq!(impact.path(2), [0, 1, 3, 2]);
        assert!(impact.cycles.is_empty());
        let deps = g.impact(2, Direction::Dependencies, None, |_| true);
        assert_eq!(deps.reached.iter().map(|r| r.node).collect::<Vec<_>>(), [3, 1, 0]);
        let shallow = g.impact(0, Direction::Dependents, Some(1), |_| true);
        assert_eq!(shallow.reached.len(), 1);
        assert!(shallow.truncated_by_depth);
    }

    #[test]
    fn cycles_are_reported_not_followed() {
        let mut g = Graph::default();
        g.add(1, rel("dependsOn"), 0);
        g.add(2, rel("dependsOn"), 1);
        g.add(0, rel("dependsOn"), 2);
        let impact = g.impact(0, Direction::Dependents, None, |_| true);
        assert_eq!(impact.reached.len(), 2);
        assert_eq!(impact.cycles, vec![vec![0, 1, 2, 0]]);
    }

    #[test]
    fn removal_and_neighbourhood() {
        let mut g = Graph::default();
        g.add(0, rel("ownedBy"), 1);
        g.add(2, rel("ownedBy"), 1);
        g.add(2, rel("dependsOn"), 3);
        let (nodes, truncated) = g.neighbourhood(0, 2, 100, None);
        assert_eq!(nodes, [(0, 0), (1, 1), (2, 2)]);
        assert!(!truncated);
        let (nodes, truncated) = g.neighbourhood(1, 1, 2, None);
        assert_eq!(nodes.len(), 2);
        assert!(truncated);
        g.remove(0, rel("ownedBy"), 1);
        assert!(g.edges(0).is_empty());
        assert_eq!(g.edges(1).len(), 1);
    }
}
