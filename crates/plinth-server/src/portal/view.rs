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
            kind: s.kind.to_string(),
            spec_type: s.spec_type.as_deref().map(str::to_string),
            lifecycle: s.lifecycle.as_deref().map(str::to_string),
            owner: s.owner.as_deref().map(|o| OwnerLink::new(o, &s.namespace)),
            description: s.description.clone(),
            missing: false,
        }
    }

    /// A reference the catalogue does not hold, shown as written and
    /// marked missing (no link).
    fn missing(entity_ref: &str) -> EntityLink {
        EntityLink {
            kind: entity_ref.split_once(':').map_or("", |(k, _)| k).to_string(),
            label: entity_ref.to_string(),
            name: entity_ref.rsplit('/').next().unwrap_or_default().to_string(),
            entity_ref: entity_ref.to_string(),
            href: None,
            spec_type: None,
            lifecycle: None,
            owner: None,
            description: None,
            missing: true,
        }
    }

    /// A graph node: the entity, or a dangling reference to one.
    pub(super) fn node(state: &CatalogState, node: NodeId) -> EntityLink {
        match state.entity(node) {
            Some(record) => EntityLink::of(record),
            None => EntityLink::missing(state.ref_of(node)),
        }
    }
}

/// A time as pages show it: RFC 3339 UTC to the second (pages turn it into
/// the reader's local time where scripts run).
pub(super) fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0).unwrap_or(at).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A time as catalogue pages show it: "3 min ago", with the exact UTC time
/// on hover and the machine-readable one in `datetime`. The default is
/// empty, for views that show no time (a disabled page).
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct When {
    /// RFC 3339, to the second.
    pub(super) iso: String,
    /// `2026-12-05 11:30:04 UTC`.
    pub(super) exact: String,
    /// `just now`, `3 min ago`, `2 h ago`, `5 days ago`, `in 4 min`, or the
    /// date for anything older than a month.
    pub(super) relative: String,
}

impl When {
    pub(super) fn at(at: time::OffsetDateTime) -> When {
        When::between(at, time::OffsetDateTime::now_utc())
    }

    /// An RFC 3339 time as written (`2026-12-05T11:30:04.123456789Z`);
    /// text that is not one is shown as it is.
    pub(super) fn parse(text: &str) -> When {
        match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
            Ok(at) => When::at(at),
            Err(_) => When { iso: text.to_string(), exact: text.to_string(), relative: text.to_string() },
        }
    }

    pub(super) fn between(at: time::OffsetDateTime, now: time::OffsetDateTime) -> When {
        let at = at.to_offset(time::UtcOffset::UTC);
        let exact = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        When { iso: timestamp(at), exact, relative: relative(at, now) }
    }
}

/// How long ago `at` was, in the largest whole unit.
pub(super) fn relative(at: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    let seconds = (now - at).whole_seconds();
    let (future, seconds) = (seconds < 0, seconds.unsigned_abs());
    let text = match seconds {
        0..=44 => return "just now".to_string(),
        45..=3_599 => format!("{} min", (seconds + 30) / 60),
        3_600..=86_399 => format!("{} h", seconds / 3_600),
        86_400..=2_591_999 => {
            let days = seconds / 86_400;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        _ => {
            let at = at.to_offset(time::UtcOffset::UTC);
            return format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day());
        }
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// The display name of a group or user: `metadata.title`, else
/// `spec.profile.displayName`, else its name.
pub(super) fn display_name(record: &EntityRecord) -> String {
    if let Some(title) = &record.summary.title {
        return title.clone();
    }
    if matches!(record.summary.kind.to_ascii_lowercase().as_str(), "group" | "user") {
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&record.body) {
            if let Some(name) = body["spec"]["profile"]["displayName"].as_str().filter(|n| !n.trim().is_empty()) {
                return name.to_string();
            }
        }
    }
    record.summary.name.clone()
}

impl OwnerLink {
    /// The owner as catalogue pages show it: the owning team's title,
    /// linked to its page; the reference as written when it is not in the
    /// catalogue.
    pub(super) fn resolved(state: &CatalogState, owner: &str, namespace: &str) -> OwnerLink {
        let parsed = plinth_model::parse_entity_ref(
            owner,
            plinth_model::RefContext { default_kind: Some("group"), default_namespace: namespace },
        );
        match parsed.ok().and_then(|r| state.get(&r.key())) {
            Some(record) => {
                OwnerLink { label: display_name(record), href: Some(entity_href(&record.entity_ref.to_string())) }
            }
            None => OwnerLink::new(owner, namespace),
        }
    }

    /// [`OwnerLink::resolved`] when the catalogue could be read, else the
    /// reference as written.
    pub(super) fn shown(state: Option<&CatalogState>, owner: &str, namespace: &str) -> OwnerLink {
        match state {
            Some(state) => OwnerLink::resolved(state, owner, namespace),
            None => OwnerLink::new(owner, namespace),
        }
    }
}

impl EntityLink {
    /// The entity with lower-case key `key`: its record, else its node
    /// (a relation target the catalogue does not hold), else the key
    /// itself, marked missing.
    pub(super) fn of_key(state: &CatalogState, key: &str) -> EntityLink {
        match state.get(key) {
            Some(record) => EntityLink::in_state(state, record),
            None => match state.node_of(key) {
                Some(node) => EntityLink::node(state, node),
                None => EntityLink::missing(key),
            },
        }
    }

    /// [`EntityLink::of`] with the owner shown by its title.
    pub(super) fn in_state(state: &CatalogState, record: &EntityRecord) -> EntityLink {
        let mut link = EntityLink::of(record);
        link.label = display_name(record);
        link.owner = record.summary.owner.as_deref().map(|o| OwnerLink::resolved(state, o, &record.summary.namespace));
        link
    }

    /// [`EntityLink::node`] with the owner shown by its title.
    pub(super) fn node_in_state(state: &CatalogState, node: NodeId) -> EntityLink {
        match state.entity(node) {
            Some(record) => EntityLink::in_state(state, record),
            None => EntityLink::node(state, node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn relative_times() {
        let now = datetime!(2026-12-05 12:00:00 UTC);
        let ago = |seconds: i64| relative(now - time::Duration::seconds(seconds), now);
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(3 * 3600 + 59), "3 h ago");
        assert_eq!(ago(86_400), "1 day ago");
        assert_eq!(ago(5 * 86_400), "5 days ago");
        assert_eq!(ago(-240), "in 4 min");
        assert_eq!(ago(90 * 86_400), "2026-09-06");
        let when = When::between(datetime!(2026-12-05 11:57:00.123456 UTC), now);
        assert_eq!(when.iso, "2026-12-05T11:57:00Z");
        assert_eq!(when.exact, "2026-12-05 11:57:00 UTC");
        assert_eq!(when.relative, "3 min ago");
        let parsed = When::parse("2020-01-02T03:04:05.123456789Z");
        assert_eq!((parsed.iso.as_str(), parsed.exact.as_str()), ("2020-01-02T03:04:05Z", "2020-01-02 03:04:05 UTC"));
        assert_eq!(parsed.relative, "2020-01-02");
        let text = When::parse("<yesterday>");
        assert_eq!((text.iso.as_str(), text.relative.as_str()), ("<yesterday>", "<yesterday>"));
    }
}
