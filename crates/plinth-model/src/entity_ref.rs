//! Entity references: `[kind:][namespace/]name`, compared case-insensitively.

use std::fmt;

/// A reference to an entity. `kind` and `namespace` are kept lower-case (as
/// Backstage's `stringifyEntityRef` writes them); `name` keeps its case for
/// display, while [`EntityRef::key`] gives the case-insensitive identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

pub const DEFAULT_NAMESPACE: &str = "default";

impl EntityRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        EntityRef { kind: kind.to_ascii_lowercase(), namespace: namespace.to_ascii_lowercase(), name: name.to_string() }
    }

    /// The identity used for lookups: the whole ref in lower case.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(self.kind.len() + self.namespace.len() + self.name.len() + 2);
        key.push_str(&self.kind);
        key.push(':');
        key.push_str(&self.namespace);
        key.push('/');
        for c in self.name.chars() {
            key.push(c.to_ascii_lowercase());
        }
        key
    }

    /// Whether `key` is this ref's [`EntityRef::key`], without building it.
    pub fn has_key(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(self.kind.as_str()).and_then(|rest| rest.strip_prefix(':')) else {
            return false;
        };
        let Some(name) = rest.strip_prefix(self.namespace.as_str()).and_then(|rest| rest.strip_prefix('/')) else {
            return false;
        };
        // ASCII lower-casing keeps every byte's length, and leaves the
        // bytes of other characters as they are.
        name.len() == self.name.len() && name.bytes().zip(self.name.bytes()).all(|(k, n)| k == n.to_ascii_lowercase())
    }
}

impl serde::Serialize for EntityRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What a ref field defaults to when the ref leaves parts out: Backstage
/// takes the kind from the field (`owner` means a Group) and the namespace
/// from the entity that holds the field.
#[derive(Debug, Clone, Copy)]
pub struct RefContext<'a> {
    pub default_kind: Option<&'a str>,
    pub default_namespace: &'a str,
}

/// Why an entity reference could not be read; each says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("entity reference is empty; write it as `[kind:][namespace/]name`")]
    Empty,
    #[error("entity reference `{0}` has an empty kind before `:`")]
    EmptyKind(String),
    #[error("entity reference `{0}` has no kind and this field has no default; write it as `kind:{0}`, e.g. `component:{0}` or `resource:{0}`")]
    NoKind(String),
    #[error("entity reference `{0}` has an empty namespace before `/`")]
    EmptyNamespace(String),
    #[error("entity reference `{0}` has an empty name")]
    EmptyName(String),
    #[error("entity reference `{0}` is malformed; write it as `[kind:][namespace/]name`")]
    Malformed(String),
}

/// Parses `[kind:][namespace/]name`. The error says how to write it right.
pub fn parse_entity_ref(text: &str, context: RefContext<'_>) -> Result<EntityRef, RefError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RefError::Empty);
    }
    let (kind, rest) = match text.split_once(':') {
        Some((kind, rest)) => (Some(kind), rest),
        None => (None, text),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, rest),
    };
    let kind = match kind {
        Some("") => return Err(RefError::EmptyKind(text.to_string())),
        Some(kind) => kind,
        None => match context.default_kind {
            Some(kind) => kind,
            None => return Err(RefError::NoKind(text.to_string())),
        },
    };
    let namespace = match namespace {
        Some("") => return Err(RefError::EmptyNamespace(text.to_string())),
        Some(namespace) => namespace,
        None => context.default_namespace,
    };
    if name.is_empty() {
        return Err(RefError::EmptyName(text.to_string()));
    }
    if name.contains(['/', ':']) {
        return Err(RefError::Malformed(text.to_string()));
    }
    Ok(EntityRef::new(kind, namespace, name))
}

/// Parses a ref written in full or in part with no field context; used by
/// the API, where `component:default/x` and `component:x` both name `x`.
pub fn parse_ref_lenient(text: &str, default_kind: Option<&str>) -> Result<EntityRef, RefError> {
    parse_entity_ref(text, RefContext { default_kind, default_namespace: DEFAULT_NAMESPACE })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(kind: Option<&'static str>, ns: &'static str) -> RefContext<'static> {
        RefContext { default_kind: kind, default_namespace: ns }
    }

    #[test]
    fn has_key_agrees_with_key() {
        let refs = [
            EntityRef::new("component", "prod", "Checkout"),
            EntityRef::new("user", "default", "Zoë-ÄB"),
            EntityRef::new("api", "a", ""),
        ];
        for r in &refs {
            assert!(r.has_key(&r.key()), "{r}");
            for other in &refs {
                assert_eq!(r.has_key(&other.key()), r.key() == other.key(), "{r} / {other}");
            }
        }
        let r = &refs[0];
        for near in [
            "component:prod/checkou",
            "component:prod/checkoutx",
            "component:prod:checkout",
            "component:prodcheckout",
            "component/prod/checkout",
            "component:prod/Checkout",
            "componentx:prod/checkout",
            "",
            "component:",
        ] {
            assert!(!r.has_key(near), "{near}");
        }
    }

    #[test]
    fn full_partial_and_defaulted_refs() {
        let r = parse_entity_ref("Component:Prod/Checkout", ctx(None, "default")).unwrap();
        assert_eq!(r.to_string(), "component:prod/Checkout");
        assert_eq!(r.key(), "component:prod/checkout");
        let r = parse_entity_ref("team-a", ctx(Some("Group"), "ops")).unwrap();
        assert_eq!(r.to_string(), "group:ops/team-a");
        let r = parse_entity_ref("user:guest", ctx(Some("group"), "default")).unwrap();
        assert_eq!(r.to_string(), "user:default/guest");
        let r = parse_entity_ref("other/x", ctx(Some("api"), "default")).unwrap();
        assert_eq!(r.to_string(), "api:other/x");
    }

    #[test]
    fn bad_refs_explain_themselves() {
        let e = parse_entity_ref("orders-db", ctx(None, "default")).unwrap_err();
        assert!(e.to_string().contains("write it as `kind:orders-db`"), "{e}");
        assert_eq!(parse_entity_ref(":x", ctx(None, "default")), Err(RefError::EmptyKind(":x".into())));
        assert_eq!(parse_entity_ref("a:/x", ctx(None, "default")), Err(RefError::EmptyNamespace("a:/x".into())));
        assert_eq!(parse_entity_ref("a:b/", ctx(None, "default")), Err(RefError::EmptyName("a:b/".into())));
        assert_eq!(parse_entity_ref("a:b/c/d", ctx(None, "default")), Err(RefError::Malformed("a:b/c/d".into())));
        assert_eq!(parse_entity_ref("  ", ctx(None, "default")), Err(RefError::Empty));
    }

    #[test]
    fn comparison_is_case_insensitive() {
        let a = parse_entity_ref("Group:Default/Team-A", ctx(None, "default")).unwrap();
        let b = parse_entity_ref("group:default/team-a", ctx(None, "default")).unwrap();
        assert_eq!(a.key(), b.key());
    }
}
