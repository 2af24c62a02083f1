//! View-model pieces several pages share: links to entities and owners.
//! Every page renders a typed view (a `#[derive(Serialize)]` struct); the
//! templates see exactly its fields, and strict undefined values make a
//! misspelt field a render error.

use super::entity_href;
use plinth_app::catalog::{CatalogState, EntityRecord, NodeId};
use serde::Serialize;

/// A link to an owner (`team-a`, `group:ops/team-a`): the text as written,
/// and the group's page when the value parses as a reference.
#[derive(Debug, Clone, Serialize)]
pub(super) struct OwnerLink {
    pub(super) label: String,
    pub(super) href: Option<String>,
}

impl OwnerLink {
    pub(super) fn new(owner: &str, namespace: &str) -> OwnerLink {
        let parsed = plinth_model::parse_entity_ref(
            owner,
            plinth_model::RefContext { default_kind: Some("group"), default_namespace: namespace },
        );
        OwnerLink { label: owner.to_string(), href: parsed.ok().map(|r| entity_href(&r.to_string())) }
    }
}

/// A link to an entity, with what a list row shows about it. `href` is
/// `None` and `missing` true for a relation target not in the catalogue.
#[derive(Debug, Clone, Serialize)]
pub(super) struct EntityLink {
    #[serde(rename = "ref")]
    pub(super) entity_ref: String,
    pub(super) href: Option<String>,
    pub(super) label: String,
    pub(super) name: String,
    pub(super) kind: String,
    #[serde(rename = "type")]
    pub(super) spec_type: Option<String>,
    pub(super) lifecycle: Option<String>,
    pub(super) owner: Option<OwnerLink>,
    pub(super) description: Option<String>,
    pub(super) missing: bool,
}

impl EntityLink {
    pub(super) fn of(record: &EntityRecord) -> EntityLink {
        let s = &record.summary;
        let entity_ref = record.entity_ref.to_string();
        EntityLink {
            href: Some(entity_href(&entity_ref)),
            entity_ref,
            label: s.title.clone().unwrap_or_else(|| s.name.clone()),
            name: s.name.clone(),
            kind: s.kind.clone(),
            spec_type: s.spec_type.clone(),
            lifecycle: s.lifecycle.clone(),
            owner: s.owner.as_deref().map(|o| OwnerLink::new(o, &s.namespace)),
            description: s.description.clone(),
            missing: false,
        }
    }

    /// A graph node: the entity, or a dangling reference to one.
    pub(super) fn node(state: &CatalogState, node: NodeId) -> EntityLink {
        match state.entity(node) {
            Some(record) => EntityLink::of(record),
            None => {
                let entity_ref = state.ref_of(node).to_string();
                EntityLink {
                    kind: entity_ref.split_once(':').map_or("", |(k, _)| k).to_string(),
                    label: entity_ref.clone(),
                    name: entity_ref.rsplit('/').next().unwrap_or_default().to_string(),
                    entity_ref,
                    href: None,
                    spec_type: None,
                    lifecycle: None,
                    owner: None,
                    description: None,
                    missing: true,
                }
            }
        }
    }
}

/// A time as pages show it: RFC 3339 UTC to the second (pages turn it into
/// the reader's local time where scripts run).
pub(super) fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0).unwrap_or(at).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
