//! Relations as an entity page shows them: human labels ("Depends on",
//! "Used by"), a fixed reading order, targets sorted and grouped by kind,
//! and long lists collapsed behind a count with a link to the explorer
//! filtered to the same relation.

use super::super::query;
use super::EntityLink;
use plinth_app::catalog::{CatalogState, NodeId, RelId};
use serde::Serialize;
use std::collections::BTreeMap;

/// Lists longer than this collapse.
pub(super) const COLLAPSE_OVER: usize = 10;
/// Targets listed per relation (the explorer link shows them all).
pub(super) const MAX_LISTED: usize = 200;

/// Every relation type: its label and its place on the page (lower first).
const LABELS: &[(&str, &str)] = &[
    ("ownedBy", "Owned by"),
    ("ownerOf", "Owns"),
    ("partOf", "Part of"),
    ("hasPart", "Has parts"),
    ("childOf", "Child of"),
    ("parentOf", "Parent of"),
    ("memberOf", "Member of"),
    ("hasMember", "Has members"),
    ("providesApi", "Provides API"),
    ("apiProvidedBy", "Provided by"),
    ("consumesApi", "Consumes API"),
    ("apiConsumedBy", "Consumed by"),
    ("dependsOn", "Depends on"),
    ("dependencyOf", "Used by"),
    ("usesModel", "Uses model"),
    ("modelUsedBy", "Model used by"),
    ("usesPrompt", "Uses prompt"),
    ("promptUsedBy", "Prompt used by"),
    ("usesTool", "Uses tool"),
    ("toolUsedBy", "Tool used by"),
    ("trainedOn", "Trained on"),
    ("trainingDataFor", "Training data for"),
];

/// The human label of a relation type (the type itself when unknown).
pub(super) fn label(relation: &str) -> String {
    LABELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(relation))
        .map_or_else(|| relation.to_string(), |(_, label)| label.to_string())
}

fn order(relation: &str) -> usize {
    LABELS.iter().position(|(name, _)| *name == relation).unwrap_or(LABELS.len())
}

/// The relation type written as in Backstage (`dependsOn`), for a type as
/// written in a URL in any case.
pub(super) fn canonical(relation: &str) -> Option<&'static str> {
    LABELS.iter().find(|(name, _)| name.eq_ignore_ascii_case(relation)).map(|(name, _)| *name)
}

/// One relation type of an entity.
#[derive(Debug, Serialize)]
pub(super) struct RelationGroup {
    /// The relation type (`dependencyOf`).
    #[serde(rename = "type")]
    pub(super) relation: String,
    /// `Used by`.
    pub(super) label: String,
    pub(super) count: usize,
    /// Targets by kind, kinds and targets sorted.
    pub(super) kinds: Vec<KindGroup>,
    /// Targets not listed (beyond [`MAX_LISTED`]).
    pub(super) more: usize,
    /// More than [`COLLAPSE_OVER`]: the list starts closed.
    pub(super) collapsed: bool,
    /// The explorer filtered to the entities in this list.
    pub(super) explorer: String,
    /// An element id some pages and tests address (`group-members`).
    pub(super) list_id: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub(super) struct KindGroup {
    pub(super) kind: String,
    pub(super) items: Vec<EntityLink>,
}

/// The explorer URL listing the entities that `entity_ref` relates to by
/// `relation`: they hold the inverse relation to it.
pub(super) fn explorer_href(relation: &str, entity_ref: &str) -> String {
    let inverse = plinth_model::inverse_relation(relation).unwrap_or(relation);
    format!("/catalog?{}", query(&[("rel", &format!("{inverse}:{entity_ref}"))]))
}

/// The relations of `node`, grouped and labelled.
pub(super) fn groups(state: &CatalogState, node: NodeId, relations: &[(RelId, NodeId)]) -> Vec<RelationGroup> {
    let entity_ref = state.ref_of(node).to_string();
    let mut by_type: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for (rel, target) in relations {
        by_type.entry(rel.name()).or_default().push(*target);
    }
    let mut types: Vec<(&str, Vec<NodeId>)> = by_type.into_iter().collect();
    types.sort_by_key(|(name, _)| (order(name), name.to_string()));
    types
        .into_iter()
        .map(|(relation, targets)| {
            let mut links: Vec<EntityLink> =
                targets.iter().take(MAX_LISTED).map(|n| EntityLink::node_in_state(state, *n)).collect();
            sort_links(&mut links);
            RelationGroup {
                relation: relation.to_string(),
                label: label(relation),
                count: targets.len(),
                kinds: by_kind(links),
                more: targets.len().saturating_sub(MAX_LISTED),
                collapsed: targets.len() > COLLAPSE_OVER,
                explorer: explorer_href(relation, &entity_ref),
                list_id: match relation {
                    "hasMember" => Some("group-members"),
                    "ownerOf" => Some("group-owned"),
                    "childOf" => Some("group-parent"),
                    "parentOf" => Some("group-children"),
                    _ => None,
                },
            }
        })
        .collect()
}

/// By kind, then by label, case-insensitively.
pub(super) fn sort_links(links: &mut [EntityLink]) {
    links.sort_by(|a, b| {
        (a.kind.to_lowercase(), a.label.to_lowercase(), &a.entity_ref).cmp(&(
            b.kind.to_lowercase(),
            b.label.to_lowercase(),
            &b.entity_ref,
        ))
    });
}

/// Consecutive links of one kind (the input is sorted by kind).
pub(super) fn by_kind(links: Vec<EntityLink>) -> Vec<KindGroup> {
    let mut groups: Vec<KindGroup> = Vec::new();
    for link in links {
        let kind = if link.kind.is_empty() { "entity".to_string() } else { link.kind.to_lowercase() };
        match groups.last_mut() {
            Some(group) if group.kind == kind => group.items.push(link),
            _ => groups.push(KindGroup { kind, items: vec![link] }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(kind: &str, label: &str) -> EntityLink {
        EntityLink {
            entity_ref: format!("{kind}:default/{label}"),
            href: None,
            label: label.into(),
            name: label.into(),
            kind: kind.into(),
            spec_type: None,
            lifecycle: None,
            owner: None,
            description: None,
            missing: false,
        }
    }

    #[test]
    fn labels_cover_every_relation_pair() {
        for (a, b) in plinth_model::RELATION_PAIRS {
            assert_ne!(label(a), *a, "{a} has no label");
            assert_ne!(label(b), *b, "{b} has no label");
        }
        assert_eq!(label("dependencyOf"), "Used by");
        assert_eq!(label("usesModel"), "Uses model");
        assert_eq!(label("ownerOf"), "Owns");
        assert_eq!(label("somethingNew"), "somethingNew");
        assert_eq!(canonical("DEPENDSON"), Some("dependsOn"));
        assert!(order("ownedBy") < order("dependsOn") && order("dependsOn") < order("usesModel"));
    }

    #[test]
    fn targets_sort_and_group_by_kind() {
        let mut links = vec![link("Resource", "db"), link("Component", "zeta"), link("component", "Alpha")];
        sort_links(&mut links);
        let groups = by_kind(links);
        let shape: Vec<(&str, Vec<&str>)> =
            groups.iter().map(|g| (g.kind.as_str(), g.items.iter().map(|l| l.label.as_str()).collect())).collect();
        assert_eq!(shape, [("component", vec!["Alpha", "zeta"]), ("resource", vec!["db"])]);
    }

    #[test]
    fn explorer_link_filters_by_the_inverse_relation() {
        assert_eq!(
            explorer_href("dependencyOf", "component:default/auth-service"),
            "/catalog?rel=dependsOn%3Acomponent%3Adefault%2Fauth-service"
        );
    }
}
