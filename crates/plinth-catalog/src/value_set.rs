//! A key's distinct values, packed: the filter index's value → ids map.
//!
//! Every value lives in one text, after a NUL, so that an exact lookup is a
//! hash probe and a substring search (`fullTextFilterTerm`) is one pass of
//! `memmem` over contiguous memory. The table holds only an offset, a
//! length and the payload (24 bytes for the filter index's ids), not a
//! heap string per value: at a million entities the index holds about nine
//! million distinct values, and a `Box<str>` key each (16 bytes, plus the
//! allocation and its rounding) was most of the index.
//!
//! A removed value's bytes are overwritten with NULs, so a search never
//! finds it; the text is compacted once half of it is such gaps. Values
//! must not contain NUL (the flattening leaves those unindexed, as it does
//! values over 200 characters).

use foldhash::fast::RandomState;
use foldhash::HashMap;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::mem::size_of;

/// Set in `Slot::len` when the value was first written in another case.
const HAS_ORIGINAL: u32 = 1 << 31;

struct Slot<T> {
    /// Where the value starts in `ValueSet::text`.
    at: u32,
    /// Its length in bytes, with `HAS_ORIGINAL`.
    len: u32,
    payload: T,
}

impl<T> Slot<T> {
    fn range(&self) -> std::ops::Range<usize> {
        let at = self.at as usize;
        at..at + (self.len & !HAS_ORIGINAL) as usize
    }
}

/// The table's equality: the slot's text is `value`.
fn holds<'a, T>(text: &'a str, value: &'a str) -> impl Fn(&Slot<T>) -> bool + 'a {
    move |slot| &text[slot.range()] == value
}

pub(crate) struct ValueSet<T> {
    /// Every live value, each after a NUL; removed ones are NULs.
    text: String,
    slots: HashTable<Slot<T>>,
    /// Values as first written, where that differs from the lower-case
    /// value, by the value's offset.
    originals: HashMap<u32, Box<str>>,
    /// Bytes of `text` that are gaps.
    stale: usize,
    hasher: RandomState,
}

impl<T> Default for ValueSet<T> {
    fn default() -> Self {
        ValueSet {
            text: String::new(),
            slots: HashTable::new(),
            originals: HashMap::default(),
            stale: 0,
            hasher: RandomState::default(),
        }
    }
}

impl<T> ValueSet<T> {
    pub(crate) fn get(&self, value: &str) -> Option<&T> {
        let hash = self.hasher.hash_one(value);
        self.slots.find(hash, holds(&self.text, value)).map(|slot| &slot.payload)
    }

    /// Calls `update` on the value's payload, or adds the value with the
    /// payload `new` makes. `original` is the value as written. Returns
    /// false, and leaves the value out, when the text would outgrow the
    /// 32-bit offsets (4 GiB of one key's distinct values).
    pub(crate) fn upsert(
        &mut self,
        value: &str,
        original: &str,
        new: impl FnOnce() -> T,
        update: impl FnOnce(&mut T),
    ) -> bool {
        let ValueSet { text, slots, originals, hasher, .. } = self;
        let hash = hasher.hash_one(value);
        if let Some(slot) = slots.find_mut(hash, holds(text, value)) {
            update(&mut slot.payload);
            return true;
        }
        let start = text.len() + 1;
        let (Ok(at), Ok(mut len)) = (u32::try_from(start), u32::try_from(value.len())) else { return false };
        if start + value.len() > u32::MAX as usize || len & HAS_ORIGINAL != 0 {
            return false;
        }
        text.push('\0');
        text.push_str(value);
        if original != value {
            originals.insert(at, original.into());
            len |= HAS_ORIGINAL;
        }
        let text = &*text;
        slots.insert_unique(hash, Slot { at, len, payload: new() }, |slot| hasher.hash_one(&text[slot.range()]));
        true
    }

    pub(crate) fn get_mut(&mut self, value: &str) -> Option<&mut T> {
        let hash = self.hasher.hash_one(value);
        let text = &self.text;
        self.slots.find_mut(hash, holds(text, value)).map(|slot| &mut slot.payload)
    }

    /// Removes the value; its bytes become a gap.
    pub(crate) fn remove(&mut self, value: &str) -> Option<T> {
        let hash = self.hasher.hash_one(value);
        let text = &self.text;
        let entry = self.slots.find_entry(hash, holds(text, value)).ok()?;
        let (slot, _) = entry.remove();
        let range = slot.range();
        self.stale += range.len() + 1;
        if slot.len & HAS_ORIGINAL != 0 {
            self.originals.remove(&slot.at);
        }
        self.text.replace_range(range.clone(), &"\0".repeat(range.len()));
        if self.stale * 2 > self.text.len() {
            self.compact();
        }
        Some(slot.payload)
    }

    /// Writes the live values end to end again, without the gaps.
    fn compact(&mut self) {
        let mut text = String::with_capacity(self.text.len() - self.stale);
        let mut originals = HashMap::default();
        for slot in self.slots.iter_mut() {
            let range = slot.range();
            text.push('\0');
            // Smaller than the text the offsets were checked against.
            let at = text.len() as u32;
            text.push_str(&self.text[range]);
            if slot.len & HAS_ORIGINAL != 0 {
                if let Some(original) = self.originals.remove(&slot.at) {
                    originals.insert(at, original);
                }
            }
            slot.at = at;
        }
        self.text = text;
        self.originals = originals;
        self.stale = 0;
    }

    /// Every value, as first written, with its payload.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.slots.iter().map(|slot| {
            let written = match slot.len & HAS_ORIGINAL {
                0 => None,
                _ => self.originals.get(&slot.at).map(|o| &**o),
            };
            (written.unwrap_or(&self.text[slot.range()]), &slot.payload)
        })
    }

    /// The payloads of the values that contain `term` (non-empty, no NUL),
    /// each once, in the order the values were written.
    ///
    /// The text is scanned first and the table probed after, each probe
    /// independent of the last: a probe is a cache miss or two, and the
    /// processor overlaps independent misses, where probing between scans
    /// would wait for each in turn.
    pub(crate) fn containing(&self, term: &str) -> Vec<&T> {
        let finder = memchr::memmem::Finder::new(term.as_bytes());
        let bytes = self.text.as_bytes();
        let mut found: Vec<(usize, u64)> = Vec::new();
        let mut from = 0;
        while let Some(offset) = finder.find(&bytes[from..]) {
            let at = from + offset;
            // A match holds no NUL, so it lies within one value.
            let start = memchr::memrchr(0, &bytes[..at]).map_or(0, |nul| nul + 1);
            let end = memchr::memchr(0, &bytes[at..]).map_or(bytes.len(), |nul| at + nul);
            from = end;
            found.push((start, self.hasher.hash_one(&self.text[start..end])));
        }
        found
            .into_iter()
            .filter_map(|(start, hash)| self.slots.find(hash, |slot| slot.at as usize == start))
            .map(|slot| &slot.payload)
            .collect()
    }

    /// Estimated bytes held, besides what each payload owns.
    pub(crate) fn footprint(&self) -> u64 {
        use crate::footprint::{table, text};
        let originals: u64 = self.originals.values().map(|o| text(o.len())).sum();
        text(self.text.capacity())
            + table(self.slots.capacity(), size_of::<Slot<T>>())
            + table(self.originals.capacity(), size_of::<(u32, Box<str>)>())
            + originals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(set: &ValueSet<u32>, term: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = set.containing(term).into_iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn values_are_found_exactly_and_by_substring() {
        let mut set = ValueSet::default();
        for (id, value) in ["checkout-svc", "checkout-api", "payments", ""].into_iter().enumerate() {
            assert!(set.upsert(value, value, || id as u32, |_| unreachable!("new value")));
        }
        assert!(set.upsert("payments", "payments", || unreachable!("known value"), |id| *id += 10));
        assert_eq!(set.slots.len(), 4);
        assert_eq!(set.get("payments"), Some(&12));
        assert_eq!(set.get(""), Some(&3), "the empty value is a value");
        assert_eq!(set.get("checkout"), None, "a prefix is not a value");
        assert_eq!(found(&set, "checkout"), [0, 1]);
        assert_eq!(found(&set, "t-s"), [0]);
        assert_eq!(found(&set, "c"), [0, 1], "each value once, however often it matches");
        assert_eq!(found(&set, "svcche"), Vec::<u32>::new(), "no match across two values");
    }

    #[test]
    fn removed_values_leave_gaps_that_are_never_found_and_are_compacted() {
        let mut set = ValueSet::default();
        set.upsert("alpha", "Alpha", || 1, |_| {});
        set.upsert("beta", "beta", || 2, |_| {});
        set.upsert("gamma", "GAMMA", || 3, |_| {});
        assert_eq!(set.remove("alpha"), Some(1));
        assert_eq!(set.remove("alpha"), None);
        assert_eq!(found(&set, "alpha"), Vec::<u32>::new());
        assert_eq!(found(&set, "a"), [2, 3]);
        // Over half of the text is gaps now: compacted, originals kept.
        assert_eq!(set.remove("beta"), Some(2));
        assert_eq!(set.stale, 0);
        assert_eq!(set.text, "\0gamma");
        assert_eq!(set.iter().collect::<Vec<_>>(), [("GAMMA", &3)]);
        set.upsert("alpha", "alpha", || 4, |_| {});
        let mut written: Vec<_> = set.iter().map(|(v, id)| (v.to_string(), *id)).collect();
        written.sort();
        assert_eq!(written, [("GAMMA".to_string(), 3), ("alpha".to_string(), 4)]);
        assert_eq!(found(&set, "a"), [3, 4]);
        assert_eq!(set.get_mut("gamma").map(|id| std::mem::replace(id, 5)), Some(3));
        assert_eq!(set.get("gamma"), Some(&5));
    }

    #[test]
    fn many_values_survive_growth_removal_and_compaction() {
        let mut set = ValueSet::default();
        let value = |i: u32| format!("component:default/service-{i}");
        for i in 0..20_000 {
            set.upsert(&value(i), &value(i).to_uppercase(), || i, |_| {});
        }
        for i in (0..20_000).filter(|i| i % 3 != 0) {
            assert_eq!(set.remove(&value(i)), Some(i));
        }
        assert_eq!(set.slots.len(), 6_667);
        for i in 0..20_000 {
            assert_eq!(set.get(&value(i)), (i % 3 == 0).then_some(&i), "value {i}");
        }
        assert_eq!(found(&set, "service-1999"), [19_992, 19_995, 19_998]);
        assert!(set.iter().all(|(written, id)| *written == value(*id).to_uppercase()));
    }
}
