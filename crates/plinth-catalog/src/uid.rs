//! An entity's uid as the projection holds it: 16 bytes for the UUIDs the
//! store assigns, instead of a 36-character string (and a second copy as
//! the key of the uid map). At a million entities that is ~90 MiB.

use std::fmt;

/// A uid. [`Uid::new`] keeps a canonical UUID (lower-case, hyphenated, as
/// the store writes them) as its 16 bytes and any other text as written,
/// so that [`Uid::as_str`] always gives back the uid as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uid {
    Uuid(uuid::Uuid),
    Text(Box<str>),
}

/// Room for a UUID's hyphenated text.
pub type UidBuffer = [u8; uuid::fmt::Hyphenated::LENGTH];

/// An empty [`UidBuffer`].
pub fn uid_buffer() -> UidBuffer {
    [0; uuid::fmt::Hyphenated::LENGTH]
}

impl Uid {
    pub fn new(text: &str) -> Uid {
        match uuid::Uuid::try_parse(text) {
            Ok(uuid) if Self::canonical(&uuid, text) => Uid::Uuid(uuid),
            _ => Uid::Text(text.into()),
        }
    }

    /// Whether `text` is the hyphenated lower-case form of `uuid` (a UUID
    /// written in upper case, braced or without hyphens stays text, so it
    /// is served back exactly as stored).
    fn canonical(uuid: &uuid::Uuid, text: &str) -> bool {
        let mut buffer = uid_buffer();
        uuid.hyphenated().encode_lower(&mut buffer) == text
    }

    /// The uid as stored, written into `buffer` when it is a UUID.
    pub fn as_str<'a>(&'a self, buffer: &'a mut UidBuffer) -> &'a str {
        match self {
            Uid::Uuid(uuid) => uuid.hyphenated().encode_lower(buffer),
            Uid::Text(text) => text,
        }
    }

    /// Whether this is the uid `text`.
    pub fn is(&self, text: &str) -> bool {
        self.as_str(&mut uid_buffer()) == text
    }

    /// Heap bytes it owns.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Uid::Uuid(_) => 0,
            Uid::Text(text) => text.len(),
        }
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(&mut uid_buffer()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every uid comes back exactly as stored, and only the store's own
    /// form is packed into 16 bytes.
    #[test]
    fn a_uid_reads_back_as_stored() {
        let v7 = uuid::Uuid::now_v7().to_string();
        let v4 = uuid::Uuid::new_v4().to_string();
        let upper = v4.to_uppercase();
        let simple = uuid::Uuid::new_v4().simple().to_string();
        let braced = format!("{{{v4}}}");
        for (text, packed) in [
            (v7.as_str(), true),
            (v4.as_str(), true),
            (upper.as_str(), false),
            (simple.as_str(), false),
            (braced.as_str(), false),
            ("not-a-uuid", false),
            ("", false),
        ] {
            let uid = Uid::new(text);
            assert_eq!(matches!(uid, Uid::Uuid(_)), packed, "{text}");
            assert_eq!(uid.as_str(&mut uid_buffer()), text);
            assert_eq!(uid.to_string(), text);
            assert!(uid.is(text));
            assert!(!uid.is("something-else"));
            assert_eq!(uid, Uid::new(text), "equal uids for {text}");
        }
        assert_ne!(Uid::new(&v4), Uid::new(&upper), "two texts are two uids, as the store keeps them");
        assert_eq!(std::mem::size_of::<Uid>(), 24);
    }
}
