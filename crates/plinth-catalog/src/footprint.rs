//! What each structure of the catalogue holds in memory, estimated by
//! walking it: the heap its values own plus its containers' slots. The
//! allocator's own slack and freed-but-kept pages are not included, so the
//! sum is below the process's RSS; the split is what says which structure
//! grows with the catalogue.

use serde::Serialize;
use std::mem::size_of;

/// One structure's estimated bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Footprint {
    pub structure: &'static str,
    pub bytes: u64,
}

/// Bytes a `String`/`Box<str>`-like value owns on the heap.
pub(crate) fn text(len: usize) -> u64 {
    len as u64
}

/// Slots of a hash table of `capacity` entries of `entry` bytes (one
/// control byte each).
pub(crate) fn table(capacity: usize, entry: usize) -> u64 {
    (capacity * (entry + 1)) as u64
}

/// A B-tree set or map: entries plus about a third for nodes' slack.
pub(crate) fn btree(len: usize, entry: usize) -> u64 {
    (len * entry) as u64 * 4 / 3
}

/// A vector's buffer.
pub(crate) fn vec<T>(capacity: usize) -> u64 {
    (capacity * size_of::<T>()) as u64
}
