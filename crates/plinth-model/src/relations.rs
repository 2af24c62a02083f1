//! Relation types, in pairs, as Backstage's well-known relations plus
//! Plinth's AI relations.

use crate::EntityRef;
use serde::Serialize;

/// Every relation type and its inverse. Kept as one table so the pairs can
/// never drift apart.
pub const RELATION_PAIRS: &[(&str, &str)] = &[
    ("ownedBy", "ownerOf"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("dependsOn", "dependencyOf"),
    ("parentOf", "childOf"),
    ("memberOf", "hasMember"),
    ("partOf", "hasPart"),
    ("usesModel", "modelUsedBy"),
    ("usesPrompt", "promptUsedBy"),
    ("usesTool", "toolUsedBy"),
    ("trainedOn", "trainingDataFor"),
];

/// The inverse of a relation type (`ownedBy` ↔ `ownerOf`).
pub fn inverse_relation(relation: &str) -> Option<&'static str> {
    RELATION_PAIRS.iter().find_map(|&(a, b)| {
        if a == relation {
            Some(b)
        } else if b == relation {
            Some(a)
        } else {
            None
        }
    })
}

/// Canonical spelling of a relation type (the API accepts any case).
pub fn canonical_relation(relation: &str) -> Option<&'static str> {
    RELATION_PAIRS.iter().flat_map(|&(a, b)| [a, b]).find(|candidate| candidate.eq_ignore_ascii_case(relation))
}

/// Does a relation of this type from X to Y mean "X depends on Y" for impact
/// analysis? X depends on Y when: X dependsOn Y; X consumes an API Y; X is an
/// API provided by Y; X uses model / prompt / tool Y; X was trained on Y.
pub fn is_dependency(relation: &str) -> bool {
    matches!(
        relation,
        "dependsOn" | "consumesApi" | "apiProvidedBy" | "usesModel" | "usesPrompt" | "usesTool" | "trainedOn"
    )
}

/// A relation an entity declares in its spec, from itself to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclaredRelation {
    #[serde(rename = "type")]
    pub relation: &'static str,
    pub target: EntityRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_symmetric() {
        for &(a, b) in RELATION_PAIRS {
            assert_eq!(inverse_relation(a), Some(b));
            assert_eq!(inverse_relation(b), Some(a));
        }
        assert_eq!(inverse_relation("nope"), None);
        assert_eq!(canonical_relation("OWNEDBY"), Some("ownedBy"));
    }

    #[test]
    fn dependency_direction() {
        assert!(is_dependency("dependsOn"));
        assert!(is_dependency("apiProvidedBy"));
        assert!(!is_dependency("providesApi"));
        assert!(!is_dependency("ownedBy"));
        assert!(!is_dependency("dependencyOf"));
    }
}
