//! The reconcile rules: what one read of a location changes in the
//! catalogue, decided from the read and what the projection holds, with no
//! I/O. The catalogue service applies the plan through the store.
//!
//! - an entity defined twice in one location keeps its first definition;
//! - an entity another location already holds stays with it (first claim
//!   wins), and the later claim is reported;
//! - an unchanged entity (same content hash) is not written;
//! - an entity the location held and no longer declares is deleted — unless
//!   the root could not be read, its file could not be read completely, or
//!   it is still declared but turned invalid (the last good version stays).

use crate::source::{Found, ReadEntity, SourceRead};
use foldhash::fast::RandomState;
use foldhash::HashMap;
use plinth_model::Diagnostic;
use std::hash::BuildHasher;
use std::sync::Arc;

/// What the projection holds of one entity, as reconciliation needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held<'a> {
    pub location_id: &'a str,
    pub managed_by: &'a str,
    pub hash: &'a str,
}

/// A change decided by reconciliation.
#[derive(Debug)]
pub(crate) enum Planned {
    Upsert(Arc<ReadEntity>),
    Delete(String),
}

/// The plan for `location_id` after `read`: the changes, and how many
/// declared entities were unchanged. `held` looks an entity up by key;
/// `owned` lists `(key, managed_by)` of every entity the location holds.
pub(crate) fn plan<'s>(
    location_id: &str,
    read: &SourceRead,
    held: impl Fn(&str) -> Option<Held<'s>>,
    owned: impl Iterator<Item = (&'s str, &'s str)>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<Planned>, usize) {
    let mut changes = Vec::new();
    let mut unchanged = 0;
    let mut first_seen = FirstSeen::new(&read.entities);
    for (index, found) in read.entities.iter().enumerate() {
        let key = found.entity.entity_ref.key();
        if let Some(first) = first_seen.insert(&key, index) {
            diagnostics.push(defined_twice(found, &first.location, first.line));
            continue;
        }
        if let Some(existing) = held(&key) {
            if existing.location_id != location_id {
                diagnostics.push(
                    conflict(&found.entity.entity_ref.to_string(), existing.managed_by, &found.location)
                        .at_line(Some(found.line)),
                );
                continue;
            }
            if existing.hash == found.entity.hash {
                unchanged += 1;
                continue;
            }
        }
        changes.push(Planned::Upsert(found.entity.clone()));
    }
    if !read.root_failed {
        for (key, managed_by) in owned {
            if first_seen.get(key).is_none()
                && !read.invalid_refs.contains(key)
                && !read.incomplete_files.contains(managed_by)
            {
                changes.push(Planned::Delete(key.to_string()));
            }
        }
    }
    (changes, unchanged)
}

/// Where each key was first declared in a read, held as a 64-bit hash of
/// the key and the index of its [`Found`] rather than a copy of every key
/// and file name (at a million entities that copy was ~200 MiB on every
/// refresh). Keys whose hashes collide with another key's are kept by
/// text, so the answers are exact.
struct FirstSeen<'r> {
    entities: &'r [Found],
    /// `usize` indexes cost nothing over `u32` here: the entry is padded
    /// to 16 bytes either way.
    by_hash: HashMap<u64, usize>,
    collided: HashMap<String, usize>,
    hasher: RandomState,
}

impl<'r> FirstSeen<'r> {
    fn new(entities: &'r [Found]) -> FirstSeen<'r> {
        FirstSeen {
            entities,
            by_hash: HashMap::with_capacity_and_hasher(entities.len(), Default::default()),
            collided: HashMap::default(),
            hasher: RandomState::default(),
        }
    }

    fn at(&self, index: usize) -> &'r Found {
        &self.entities[index]
    }

    /// The first declaration of `key`.
    fn get(&self, key: &str) -> Option<&'r Found> {
        self.lookup(key, self.hasher.hash_one(key))
    }

    /// [`FirstSeen::get`] of a key whose hash is `hash`.
    fn lookup(&self, key: &str, hash: u64) -> Option<&'r Found> {
        if let Some(&index) = self.collided.get(key) {
            return Some(self.at(index));
        }
        let &index = self.by_hash.get(&hash)?;
        let found = self.at(index);
        found.entity.entity_ref.has_key(key).then_some(found)
    }

    /// Records that `entities[index]` declares `key`; returns the first
    /// declaration when there was one.
    fn insert(&mut self, key: &str, index: usize) -> Option<&'r Found> {
        let hash = self.hasher.hash_one(key);
        if let Some(first) = self.lookup(key, hash) {
            return Some(first);
        }
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.insert(key.to_string(), index);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
        None
    }
}

/// The error for `found`, a second definition of an entity first defined
/// at `file`:`line` (which is the one kept): in one location's read, and
/// across the paths `plinth catalog validate` checks together.
pub fn defined_twice(found: &Found, file: &str, line: u32) -> Diagnostic {
    Diagnostic::error(
        found.location.to_string(),
        // The entity is the diagnostic's own field, shown before the
        // message: `file:line: error: <entity> is defined twice; …`.
        format!("is defined twice; the definition at {file}:{line} is kept; remove one of them"),
    )
    .at_line(Some(found.line))
    .for_entity(Some(found.entity.entity_ref.to_string()))
}

pub(crate) fn conflict(entity: &str, owner: &str, claimant: &str) -> Diagnostic {
    Diagnostic::error(
        claimant.to_string(),
        format!(
            "{entity} is already defined by {owner}; the first location keeps it, so this definition is ignored. Remove one of the two definitions"
        ),
    )
    .for_entity(Some(entity.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Found;
    use plinth_model::EntityRef;

    fn found(name: &str, hash: &str, file: &str, line: u32) -> Found {
        Found {
            entity: Arc::new(ReadEntity {
                entity_ref: EntityRef::new("component", "default", name),
                kind: "Component".into(),
                hash: hash.into(),
                body: Arc::from("{}"),
            }),
            location: Arc::from(file),
            line,
        }
    }

    #[test]
    fn first_declarations_are_found_exactly_even_when_hashes_collide() {
        let entities: Vec<Found> = (0..1000).map(|i| found(&format!("e{i}"), "h", &format!("f{i}"), i)).collect();
        let mut seen = FirstSeen::new(&entities);
        for (index, entity) in entities.iter().enumerate() {
            assert!(seen.insert(&entity.entity.entity_ref.key(), index).is_none());
        }
        // Force a collision: another key under an existing key's hash.
        let hash = seen.hasher.hash_one(key("e1").as_str());
        seen.by_hash.insert(hash, 2);
        assert!(seen.get(&key("e1")).is_none(), "a colliding key is not taken for another");
        seen.by_hash.insert(hash, 1);
        seen.collided.insert(key("other"), 7);
        assert_eq!(seen.get(&key("other")).map(|f| f.line), Some(7));
        assert_eq!(seen.insert(&key("e5"), 999).map(|f| &*f.location), Some("f5"), "the first declaration wins");
        // A new key under a taken hash is kept by text.
        let taken = seen.hasher.hash_one(key("new").as_str());
        seen.by_hash.insert(taken, 3);
        assert!(seen.insert(&key("new"), 500).is_none());
        assert_eq!(seen.get(&key("new")).map(|f| f.line), Some(500));
        assert_eq!(seen.get(&key("e3")).map(|f| f.line), Some(3));
        assert!(seen.get(&key("e1000")).is_none());
        assert_eq!(seen.get(&key("e999")).map(|f| f.line), Some(999));
    }

    fn key(name: &str) -> String {
        EntityRef::new("component", "default", name).key()
    }

    /// The projection: (key, location id, managed_by file, hash).
    struct Projection(Vec<(String, &'static str, &'static str, &'static str)>);

    impl Projection {
        fn plan(&self, location: &str, read: &SourceRead) -> (Vec<String>, usize, Vec<Diagnostic>) {
            let mut diagnostics = Vec::new();
            let held = |k: &str| {
                self.0.iter().find(|e| e.0 == k).map(|e| Held { location_id: e.1, managed_by: e.2, hash: e.3 })
            };
            let owned = self.0.iter().filter(|e| e.1 == location).map(|e| (e.0.as_str(), e.2));
            let (changes, unchanged) = plan(location, read, held, owned, &mut diagnostics);
            let changes = changes
                .iter()
                .map(|c| match c {
                    Planned::Upsert(e) => format!("upsert {}", e.entity_ref.name),
                    Planned::Delete(k) => format!("delete {k}"),
                })
                .collect();
            (changes, unchanged, diagnostics)
        }
    }

    #[test]
    fn new_entities_are_written_and_unchanged_ones_are_not() {
        let projection = Projection(vec![(key("a"), "loc", "a.yaml", "h1")]);
        let read = SourceRead {
            entities: vec![found("a", "h1", "a.yaml", 1), found("b", "h2", "b.yaml", 1)],
            ..SourceRead::default()
        };
        let (changes, unchanged, diagnostics) = projection.plan("loc", &read);
        assert_eq!(changes, ["upsert b"]);
        assert_eq!(unchanged, 1);
        assert!(diagnostics.is_empty());
    }

    #[test]
    fn a_changed_hash_is_rewritten() {
        let projection = Projection(vec![(key("a"), "loc", "a.yaml", "h1")]);
        let read = SourceRead { entities: vec![found("a", "h9", "a.yaml", 1)], ..SourceRead::default() };
        assert_eq!(projection.plan("loc", &read).0, ["upsert a"]);
    }

    #[test]
    fn the_first_location_keeps_an_entity_and_the_second_claim_is_reported() {
        let projection = Projection(vec![(key("a"), "first", "first/a.yaml", "h1")]);
        let read = SourceRead { entities: vec![found("a", "h2", "second/a.yaml", 7)], ..SourceRead::default() };
        let (changes, unchanged, diagnostics) = projection.plan("second", &read);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(unchanged, 0);
        assert_eq!(diagnostics.len(), 1);
        let message = &diagnostics[0].message;
        assert!(message.contains("already defined by first/a.yaml"), "{message}");
        assert_eq!(diagnostics[0].line, Some(7));
    }

    #[test]
    fn a_duplicate_in_one_location_keeps_the_first_definition() {
        let projection = Projection(vec![]);
        let read = SourceRead {
            entities: vec![found("a", "h1", "x.yaml", 3), found("a", "h2", "y.yaml", 9)],
            ..SourceRead::default()
        };
        let (changes, _, diagnostics) = projection.plan("loc", &read);
        assert_eq!(changes, ["upsert a"]);
        let (planned, _) = plan("loc", &read, |_| None, std::iter::empty(), &mut Vec::new());
        assert!(matches!(&planned[..], [Planned::Upsert(e)] if e.hash == "h1"), "the first definition is written");
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].message.contains("defined twice; the definition at x.yaml:3 is kept"));
        assert_eq!(diagnostics[0].line, Some(9));
    }

    #[test]
    fn an_entity_no_longer_declared_is_deleted() {
        let projection = Projection(vec![(key("a"), "loc", "a.yaml", "h1"), (key("gone"), "loc", "gone.yaml", "h2")]);
        let read = SourceRead { entities: vec![found("a", "h1", "a.yaml", 1)], ..SourceRead::default() };
        assert_eq!(projection.plan("loc", &read).0, [format!("delete {}", key("gone"))]);
    }

    #[test]
    fn nothing_is_deleted_when_the_root_failed() {
        let projection = Projection(vec![(key("a"), "loc", "a.yaml", "h1")]);
        let read = SourceRead { root_failed: true, ..SourceRead::default() };
        assert!(projection.plan("loc", &read).0.is_empty());
    }

    #[test]
    fn entities_of_an_unreadable_file_or_turned_invalid_keep_their_last_version() {
        let projection = Projection(vec![
            (key("in-broken-file"), "loc", "broken.yaml", "h1"),
            (key("now-invalid"), "loc", "ok.yaml", "h2"),
            (key("removed"), "loc", "ok.yaml", "h3"),
        ]);
        let read = SourceRead {
            incomplete_files: ["broken.yaml".to_string()].into(),
            invalid_refs: [key("now-invalid")].into(),
            ..SourceRead::default()
        };
        assert_eq!(projection.plan("loc", &read).0, [format!("delete {}", key("removed"))]);
    }

    #[test]
    fn another_locations_entities_are_never_deleted() {
        let projection = Projection(vec![(key("theirs"), "other", "theirs.yaml", "h1")]);
        let read = SourceRead::default();
        assert!(projection.plan("loc", &read).0.is_empty());
    }
}
