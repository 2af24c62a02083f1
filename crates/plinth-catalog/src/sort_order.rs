//! One sortable key's order: each value, in order, with the entities that
//! hold it.
//!
//! It answers as a sorted set of `(value, node)` pairs would (values
//! ascending, nodes ascending within a value) but holds each value once.
//! Most sortable keys have few values (`kind`, `spec.lifecycle`,
//! `metadata.namespace`, `spec.type`): a set of pairs kept a copy of the
//! value and a B-tree slot per entity, and every insert compared the new
//! value with a dozen or more stored ones. Here an insert finds the value
//! among the few distinct ones and sets a bit, and a page in value order
//! intersects each value's holders with the matches instead of testing the
//! matches one entity at a time.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::graph::NodeId;

/// The entities holding one value: one (most values of names and titles)
/// or a bitmap.
#[derive(Debug)]
enum Holders {
    One(NodeId),
    Many(Box<RoaringBitmap>),
}

impl Holders {
    fn contains(&self, node: NodeId) -> bool {
        match self {
            Holders::One(one) => *one == node,
            Holders::Many(many) => many.contains(node),
        }
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        match self {
            Holders::One(_) => 1,
            Holders::Many(many) => many.len(),
        }
    }

    #[cfg(test)]
    fn iter(&self) -> HolderIter<'_> {
        match self {
            Holders::One(one) => HolderIter::One(Some(*one)),
            Holders::Many(many) => HolderIter::Many(many.iter()),
        }
    }
}

/// The nodes of one [`Holders`], ascending (or descending, reversed).
#[cfg(test)]
enum HolderIter<'a> {
    One(Option<NodeId>),
    Many(roaring::bitmap::Iter<'a>),
}

#[cfg(test)]
impl Iterator for HolderIter<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        match self {
            HolderIter::One(one) => one.take(),
            HolderIter::Many(many) => many.next(),
        }
    }
}

#[cfg(test)]
impl DoubleEndedIterator for HolderIter<'_> {
    fn next_back(&mut self) -> Option<NodeId> {
        match self {
            HolderIter::One(one) => one.take(),
            HolderIter::Many(many) => many.next_back(),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct SortOrder {
    values: BTreeMap<Box<str>, Holders>,
    /// Entries, as the set of pairs would count them.
    len: usize,
}

impl SortOrder {
    /// Adds `(value, node)`; false when it was there already.
    pub(crate) fn insert(&mut self, value: Box<str>, node: NodeId) -> bool {
        let added = match self.values.get_mut(&*value) {
            None => {
                self.values.insert(value, Holders::One(node));
                true
            }
            Some(Holders::One(one)) if *one == node => false,
            Some(holders @ Holders::One(_)) => {
                let Holders::One(one) = *holders else { unreachable!("matched as one") };
                *holders = Holders::Many(Box::new(RoaringBitmap::from_iter([one, node])));
                true
            }
            Some(Holders::Many(many)) => many.insert(node),
        };
        self.len += usize::from(added);
        added
    }

    /// Takes `(value, node)` out; false when it was not there.
    pub(crate) fn remove(&mut self, value: &str, node: NodeId) -> bool {
        let Some(holders) = self.values.get_mut(value) else { return false };
        let (removed, emptied) = match holders {
            Holders::One(one) => (*one == node, *one == node),
            Holders::Many(many) => {
                let removed = many.remove(node);
                match many.len() {
                    0 => (removed, true),
                    // Back to one holder: the common case for a name, kept small.
                    1 => {
                        let last = many.min().unwrap_or(node);
                        *holders = Holders::One(last);
                        (removed, false)
                    }
                    _ => (removed, false),
                }
            }
        };
        if emptied {
            self.values.remove(value);
        }
        self.len -= usize::from(removed);
        removed
    }

    pub(crate) fn contains(&self, value: &str, node: NodeId) -> bool {
        self.values.get(value).is_some_and(|holders| holders.contains(node))
    }

    /// Entries: one per (value, entity).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every entity in order: values ascending and, within a value, nodes
    /// ascending; `descending` reverses both. The walk a sorted set of
    /// pairs would make: what tests hold [`SortOrder::page`] to.
    #[cfg(test)]
    pub(crate) fn iter(&self, descending: bool) -> Box<dyn Iterator<Item = NodeId> + '_> {
        if descending {
            Box::new(self.values.values().rev().flat_map(|holders| holders.iter().rev()))
        } else {
            Box::new(self.values.values().flat_map(Holders::iter))
        }
    }

    /// The first `wanted` of `matched` in this order (entities without the
    /// key are not here: the caller adds them). A value held by many is
    /// intersected with `matched` once, not tested entity by entity.
    pub(crate) fn page(&self, matched: &RoaringBitmap, descending: bool, wanted: usize) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(wanted.min(matched.len() as usize));
        let values: Box<dyn Iterator<Item = &Holders>> =
            if descending { Box::new(self.values.values().rev()) } else { Box::new(self.values.values()) };
        for holders in values {
            // Every match found (each entity holds one value), or enough.
            if out.len() >= wanted || out.len() as u64 >= matched.len() {
                break;
            }
            match holders {
                Holders::One(one) if matched.contains(*one) => out.push(*one),
                Holders::One(_) => {}
                Holders::Many(many) => {
                    let hits = &**many & matched;
                    let room = wanted - out.len();
                    if descending {
                        out.extend(hits.iter().rev().take(room));
                    } else {
                        out.extend(hits.iter().take(room));
                    }
                }
            }
        }
        out
    }

    /// Estimated bytes (see [`crate::footprint`]).
    pub(crate) fn footprint(&self) -> u64 {
        use crate::footprint::{btree, text};
        btree(self.values.len(), std::mem::size_of::<(Box<str>, Holders)>())
            + self
                .values
                .iter()
                .map(|(value, holders)| {
                    text(value.len())
                        + match holders {
                            Holders::One(_) => 0,
                            Holders::Many(many) => 24 + many.serialized_size() as u64,
                        }
                })
                .sum::<u64>()
    }

    /// Holders of the value with the most entities (for tests and
    /// diagnostics).
    #[cfg(test)]
    fn widest(&self) -> u64 {
        self.values.values().map(Holders::len).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Applies the same change to the order and to the sorted set of pairs
    /// it replaces, and checks they agree on the outcome and the count.
    struct Both {
        order: SortOrder,
        reference: BTreeSet<(Box<str>, NodeId)>,
    }

    impl Both {
        fn insert(&mut self, value: &str, node: NodeId) {
            let expected = self.reference.insert((value.into(), node));
            assert_eq!(self.order.insert(value.into(), node), expected, "insert {value} {node}");
            assert_eq!(self.order.len(), self.reference.len());
        }

        fn remove(&mut self, value: &str, node: NodeId) {
            let expected = self.reference.remove(&(value.into(), node));
            assert_eq!(self.order.remove(value, node), expected, "remove {value} {node}");
            assert_eq!(self.order.len(), self.reference.len());
        }

        fn check(&self) {
            for descending in [false, true] {
                let walk: Vec<NodeId> = if descending {
                    self.reference.iter().rev().map(|(_, n)| *n).collect()
                } else {
                    self.reference.iter().map(|(_, n)| *n).collect()
                };
                assert_eq!(self.order.iter(descending).collect::<Vec<_>>(), walk, "descending {descending}");
                // A page is the first entries of the walk that match.
                for stride in [1usize, 2, 5, 17, 101] {
                    let matched: RoaringBitmap = (0..500u32).step_by(stride).collect();
                    let hits: Vec<NodeId> = walk.iter().copied().filter(|n| matched.contains(*n)).collect();
                    for wanted in [0, 1, 3, 20, 1000] {
                        let expected: Vec<NodeId> = hits.iter().copied().take(wanted).collect();
                        assert_eq!(
                            self.order.page(&matched, descending, wanted),
                            expected,
                            "stride {stride} descending {descending} wanted {wanted}"
                        );
                    }
                }
            }
            for (value, node) in &self.reference {
                assert!(self.order.contains(value, *node));
            }
        }
    }

    #[test]
    fn answers_as_the_set_of_pairs_would() {
        // One value per entity, as for a sortable key: few values held by
        // many (a kind), and names held by one or two each.
        let kind = |node: NodeId| ["component", "api", "resource", "user"][(node * 7 % 4) as usize];
        let name = |node: NodeId| format!("svc-{:03}", (node * 37) % 300);
        let mut kinds = Both { order: SortOrder::default(), reference: BTreeSet::new() };
        let mut names = Both { order: SortOrder::default(), reference: BTreeSet::new() };
        for node in 0..400u32 {
            kinds.insert(kind(node), node);
            names.insert(&name(node), node);
        }
        // Repeats change nothing; absent pairs are not removed.
        kinds.insert("api", 1);
        kinds.insert(kind(9), 9);
        kinds.remove("nothing", 1);
        kinds.remove("api", 0);
        names.remove(&name(3), 4);
        assert!(kinds.order.widest() > 1 && names.order.widest() == 2);
        kinds.check();
        names.check();

        // Entities change value, go, and come back; a value is emptied.
        for node in (0..400u32).step_by(3) {
            kinds.remove(kind(node), node);
            kinds.insert("group", node);
            names.remove(&name(node), node);
        }
        for node in 0..400u32 {
            kinds.remove("user", node);
        }
        assert!(!kinds.order.contains("user", 3));
        kinds.insert("user", 5);
        for node in (0..400u32).step_by(6) {
            names.insert(&name(node), node);
        }
        names.insert("svc-new", 450);
        kinds.check();
        names.check();
    }
}
