//! Validation and processing of one entity descriptor: from a parsed YAML
//! document to a normalised entity with its declared relations and hash.

use crate::diagnostic::FieldIssue;
use crate::entity_ref::{parse_entity_ref, EntityRef, RefContext, DEFAULT_NAMESPACE};
use crate::kinds::{kind_names, kind_spec, Field, Shape};
use crate::relations::DeclaredRelation;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const ANNOTATION_MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
pub const ANNOTATION_MANAGED_BY_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";
pub const ANNOTATION_SOURCE_LOCATION: &str = "backstage.io/source-location";

/// Where an entity was read from, in Backstage's `type:target` form
/// (`file:/abs/path.yaml`, `url:https://…`), and the registered location it
/// was reached from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub managed_by: String,
    pub origin: String,
}

/// An entity ready for the store: the body as it will be served (without
/// `uid`, `etag` and `relations`, which the catalogue adds), its ref, the
/// relations it declares, and a hash of the body so an unchanged entity
/// causes no write.
#[derive(Debug, Clone)]
pub struct ProcessedEntity {
    pub entity_ref: EntityRef,
    pub body: Value,
    pub hash: String,
    pub relations: Vec<DeclaredRelation>,
}

/// The ref of an entity document, if it has enough of one to name.
pub fn entity_ref_of(value: &Value) -> Option<EntityRef> {
    let kind = value.get("kind")?.as_str()?;
    let metadata = value.get("metadata")?;
    let name = metadata.get("name")?.as_str()?;
    let namespace = metadata.get("namespace").and_then(Value::as_str).unwrap_or(DEFAULT_NAMESPACE);
    Some(EntityRef::new(kind, namespace, name))
}

/// Validates and normalises one entity. Every problem is returned, not just
/// the first, so a user fixes a file in one pass.
pub fn process_entity(mut value: Value, origin: &Origin) -> Result<ProcessedEntity, Vec<FieldIssue>> {
    let mut issues = validate_entity(&value);
    if !issues.is_empty() {
        return Err(issues);
    }
    let entity_ref = entity_ref_of(&value).expect("validated entities have a ref");
    let relations = match declared_relations(&value, &entity_ref) {
        Ok(relations) => relations,
        Err(mut more) => {
            issues.append(&mut more);
            return Err(issues);
        }
    };
    let metadata = value["metadata"].as_object_mut().expect("validated");
    metadata.insert("namespace".into(), Value::String(entity_ref.namespace.clone()));
    // Identity is assigned by the store; whatever a file says is dropped.
    metadata.remove("uid");
    metadata.remove("etag");
    metadata.remove("generation");
    let annotations = metadata.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(annotations) = annotations {
        annotations.insert(ANNOTATION_MANAGED_BY_LOCATION.into(), Value::String(origin.managed_by.clone()));
        annotations.insert(ANNOTATION_MANAGED_BY_ORIGIN_LOCATION.into(), Value::String(origin.origin.clone()));
    }
    if let Value::Object(root) = &mut value {
        root.remove("relations");
        root.remove("status");
    }
    let hash = content_hash(&value);
    Ok(ProcessedEntity { entity_ref, body: value, hash, relations })
}

/// A short, stable hash of an entity body.
pub fn content_hash(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).expect("JSON values serialise");
    let digest = Sha256::digest(&bytes);
    hex::encode(&digest[..16])
}

/// Checks the envelope, metadata and the kind's spec.
pub fn validate_entity(value: &Value) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    let Some(root) = value.as_object() else {
        issues.push(FieldIssue::new(
            "",
            format!(
                "document is {}, not an entity; each document must be a mapping with apiVersion, kind, metadata and spec",
                type_name(value)
            ),
        ));
        return issues;
    };
    let kind = match root.get("kind") {
        Some(Value::String(kind)) if !kind.is_empty() => Some(kind.as_str()),
        Some(other) => {
            issues.push(FieldIssue::new(
                "kind",
                format!("must be a string such as `Component`, not {}", type_name(other)),
            ));
            None
        }
        None => {
            issues.push(FieldIssue::new("kind", "is missing; add e.g. `kind: Component`"));
            None
        }
    };
    let spec_of_kind = kind.and_then(kind_spec);
    if let (Some(kind), None) = (kind, spec_of_kind) {
        issues.push(FieldIssue::new(
            "kind",
            format!("`{kind}` is not a kind Plinth knows; use one of {}", kind_names().join(", ")),
        ));
    }
    match root.get("apiVersion") {
        Some(Value::String(api_version)) => {
            if let Some(spec) = spec_of_kind {
                if !spec.api_versions.contains(&api_version.as_str()) {
                    issues.push(FieldIssue::new(
                        "apiVersion",
                        format!(
                            "`{api_version}` does not define kind {}; use `apiVersion: {}`",
                            spec.kind, spec.api_versions[0]
                        ),
                    ));
                }
            }
        }
        Some(other) => {
            issues.push(FieldIssue::new("apiVersion", format!("must be a string, not {}", type_name(other))))
        }
        None => issues.push(FieldIssue::new(
            "apiVersion",
            format!(
                "is missing; add e.g. `apiVersion: {}`",
                spec_of_kind.map_or("backstage.io/v1alpha1", |spec| spec.api_versions[0])
            ),
        )),
    }
    match root.get("metadata") {
        Some(Value::Object(metadata)) => validate_metadata(metadata, &mut issues),
        Some(other) => issues.push(FieldIssue::new("metadata", format!("must be a mapping, not {}", type_name(other)))),
        None => issues.push(FieldIssue::new("metadata", "is missing; add `metadata:` with at least `name:`")),
    }
    if let Some(spec) = spec_of_kind {
        match root.get("spec") {
            Some(Value::Object(fields)) => validate_spec(spec.fields, fields, &mut issues),
            Some(other) => issues.push(FieldIssue::new("spec", format!("must be a mapping, not {}", type_name(other)))),
            None => {
                let required: Vec<_> = spec.fields.iter().filter(|f| f.required).map(|f| f.name).collect();
                let hint = if required.is_empty() {
                    String::from("add `spec: {}`")
                } else {
                    format!("add `spec:` with {}", required.join(", "))
                };
                issues.push(FieldIssue::new("spec", format!("is missing; {hint}")));
            }
        }
    }
    issues
}

fn validate_metadata(metadata: &Map<String, Value>, issues: &mut Vec<FieldIssue>) {
    match metadata.get("name") {
        Some(Value::String(name)) => {
            if !is_valid_name(name) {
                issues.push(FieldIssue::new(
                    "metadata.name",
                    format!(
                        "`{name}` is not a valid name: use 1-63 letters and digits separated by single `-`, `_` or `.`, e.g. `{}`",
                        suggest_name(name)
                    ),
                ));
            }
        }
        Some(other) => {
            issues.push(FieldIssue::new("metadata.name", format!("must be a string, not {}", type_name(other))))
        }
        None => issues.push(FieldIssue::new("metadata.name", "is missing; every entity needs a name")),
    }
    if let Some(namespace) = metadata.get("namespace") {
        match namespace.as_str() {
            Some(ns) if is_valid_dns_label(ns) => {}
            Some(ns) => issues.push(FieldIssue::new(
                "metadata.namespace",
                format!(
                    "`{ns}` is not a valid namespace: use 1-63 lower-case letters and digits separated by `-`, e.g. `{}`",
                    suggest_name(ns).to_ascii_lowercase().replace(['_', '.'], "-")
                ),
            )),
            None => issues.push(FieldIssue::new("metadata.namespace", "must be a string")),
        }
    }
    for field in ["title", "description"] {
        if let Some(value) = metadata.get(field) {
            if !value.is_string() {
                issues.push(FieldIssue::new(
                    format!("metadata.{field}"),
                    format!("must be a string, not {}", type_name(value)),
                ));
            }
        }
    }
    for (field, values_must_be_labels) in [("labels", true), ("annotations", false)] {
        match metadata.get(field) {
            None => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    let path = format!("metadata.{field}.{key}");
                    if !is_valid_qualified_key(key) {
                        issues.push(FieldIssue::new(
                            path.clone(),
                            format!("`{key}` is not a valid key: use `[prefix/]name` where prefix is a DNS name and name is 1-63 letters and digits separated by `-`, `_` or `.`"),
                        ));
                    }
                    match value.as_str() {
                        Some(v) if values_must_be_labels && !(v.is_empty() || is_valid_name(v)) => {
                            issues.push(FieldIssue::new(
                                path,
                                format!("label value `{v}` is not valid: use up to 63 letters and digits separated by `-`, `_` or `.`; put free text in an annotation"),
                            ))
                        }
                        Some(_) => {}
                        None => issues.push(FieldIssue::new(path, format!("must be a string, not {}; quote it", type_name(value)))),
                    }
                }
            }
            Some(other) => issues.push(FieldIssue::new(
                format!("metadata.{field}"),
                format!("must be a mapping, not {}", type_name(other)),
            )),
        }
    }
    match metadata.get("tags") {
        None => {}
        Some(Value::Array(tags)) => {
            for (i, tag) in tags.iter().enumerate() {
                match tag.as_str() {
                    Some(t) if is_valid_tag(t) => {}
                    Some(t) => issues.push(FieldIssue::new(
                        format!("metadata.tags[{i}]"),
                        format!(
                            "`{t}` is not a valid tag: use 1-63 lower-case letters, digits, `:`, `+` or `#`, joined by single `-`, e.g. `{}`",
                            suggest_tag(t)
                        ),
                    )),
                    None => issues.push(FieldIssue::new(format!("metadata.tags[{i}]"), format!("must be a string, not {}", type_name(tag)))),
                }
            }
        }
        Some(other) => issues
            .push(FieldIssue::new("metadata.tags", format!("must be a list of strings, not {}", type_name(other)))),
    }
    match metadata.get("links") {
        None => {}
        Some(Value::Array(links)) => {
            for (i, link) in links.iter().enumerate() {
                match link.as_object() {
                    Some(link) => match link.get("url") {
                        Some(Value::String(url)) if !url.is_empty() => {}
                        _ => issues.push(FieldIssue::new(
                            format!("metadata.links[{i}].url"),
                            "is missing; every link needs a `url`",
                        )),
                    },
                    None => issues.push(FieldIssue::new(
                        format!("metadata.links[{i}]"),
                        "must be a mapping with `url` and optional `title`, `icon`, `type`",
                    )),
                }
            }
        }
        Some(other) => {
            issues.push(FieldIssue::new("metadata.links", format!("must be a list, not {}", type_name(other))))
        }
    }
}

fn validate_spec(fields: &[Field], spec: &Map<String, Value>, issues: &mut Vec<FieldIssue>) {
    for field in fields {
        let path = format!("spec.{}", field.name);
        let Some(value) = spec.get(field.name).filter(|v| !v.is_null()) else {
            let excused = field.unless.is_some_and(|other| spec.get(other).is_some_and(|v| !v.is_null()));
            if field.required && !excused {
                issues.push(FieldIssue::new(path, format!("is missing; {}", describe_required(field))));
            }
            continue;
        };
        let ok = match field.shape {
            Shape::String | Shape::Ref(_) => value.as_str().is_some_and(|s| !s.trim().is_empty()),
            Shape::StringList | Shape::RefList(_) => value
                .as_array()
                .is_some_and(|items| items.iter().all(|item| item.as_str().is_some_and(|s| !s.is_empty()))),
            Shape::Bool => value.is_boolean(),
            Shape::Object => value.is_object(),
            Shape::ObjectOrList => value.is_object() || value.is_array(),
            Shape::List => value.is_array(),
            Shape::Enum(allowed) => value.as_str().is_some_and(|s| allowed.contains(&s)),
        };
        if !ok {
            let expected = match field.shape {
                Shape::String => "a non-empty string".to_string(),
                Shape::Ref(_) => "an entity reference string".to_string(),
                Shape::StringList => "a list of strings".to_string(),
                Shape::RefList(_) => "a list of entity reference strings".to_string(),
                Shape::Bool => "true or false".to_string(),
                Shape::Object => "a mapping".to_string(),
                Shape::ObjectOrList => "a mapping or a list".to_string(),
                Shape::List => "a list".to_string(),
                Shape::Enum(allowed) => format!("one of {}", allowed.join(", ")),
            };
            let got = match value {
                Value::String(s) => format!("`{s}`"),
                other => type_name(other).to_string(),
            };
            issues.push(FieldIssue::new(path, format!("must be {expected}, not {got}")));
        }
    }
}

fn describe_required(field: &Field) -> String {
    match field.shape {
        Shape::Ref(Some(kind)) => format!("add the {kind} this belongs to, e.g. `{}: my-{kind}`", field.name),
        Shape::RefList(_) | Shape::StringList | Shape::List => format!("add `{}: []` if there are none", field.name),
        Shape::Enum(allowed) => format!("add `{}:` with one of {}", field.name, allowed.join(", ")),
        _ => format!("add `{}:`", field.name),
    }
}

/// The relations declared by the spec's ref fields. A malformed ref is an
/// error on its field.
pub fn declared_relations(value: &Value, me: &EntityRef) -> Result<Vec<DeclaredRelation>, Vec<FieldIssue>> {
    let mut relations = Vec::new();
    let mut issues = Vec::new();
    let Some(spec_of_kind) = value.get("kind").and_then(Value::as_str).and_then(kind_spec) else {
        return Ok(relations);
    };
    let spec = value.get("spec").and_then(Value::as_object);
    for field in spec_of_kind.fields {
        let Some(relation) = field.relation else { continue };
        let Some(raw) = spec.and_then(|s| s.get(field.name)) else { continue };
        let (default_kind, refs): (Option<&str>, Vec<(String, &Value)>) = match field.shape {
            Shape::Ref(kind) => (kind, vec![(format!("spec.{}", field.name), raw)]),
            Shape::RefList(kind) => (
                kind,
                raw.as_array()
                    .map(|items| {
                        items.iter().enumerate().map(|(i, v)| (format!("spec.{}[{i}]", field.name), v)).collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => continue,
        };
        let context = RefContext { default_kind, default_namespace: &me.namespace };
        for (path, item) in refs {
            let Some(text) = item.as_str() else { continue };
            match parse_entity_ref(text, context) {
                Ok(target) => {
                    let relation = DeclaredRelation { relation, target };
                    if !relations.contains(&relation) {
                        relations.push(relation);
                    }
                }
                Err(error) => issues.push(FieldIssue::new(path, error.to_string())),
            }
        }
    }
    if issues.is_empty() {
        Ok(relations)
    } else {
        Err(issues)
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Backstage's object-name rule: `^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$`, 1-63.
pub fn is_valid_name(name: &str) -> bool {
    is_separated(name, 63, |c| c.is_ascii_alphanumeric(), |c| matches!(c, '-' | '_' | '.'))
}

/// A DNS label: `^[a-z0-9]+(-[a-z0-9]+)*$`, 1-63.
pub fn is_valid_dns_label(label: &str) -> bool {
    is_separated(label, 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), |c| c == '-')
}

/// Backstage's tag rule: `^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$`, 1-63.
pub fn is_valid_tag(tag: &str) -> bool {
    is_separated(
        tag,
        63,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '+' | '#'),
        |c| c == '-',
    )
}

/// `[prefix/]name`: prefix a DNS subdomain (≤253), name an object name.
pub(crate) fn is_valid_qualified_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253
                && !prefix.is_empty()
                && prefix.split('.').all(is_valid_dns_label)
                && is_valid_name(name)
        }
        None => is_valid_name(key),
    }
}

fn is_separated(text: &str, max: usize, word: impl Fn(char) -> bool, separator: impl Fn(char) -> bool) -> bool {
    if text.is_empty() || text.len() > max {
        return false;
    }
    let mut previous_was_separator = true;
    for c in text.chars() {
        if word(c) {
            previous_was_separator = false;
        } else if separator(c) && !previous_was_separator {
            previous_was_separator = true;
        } else {
            return false;
        }
    }
    !previous_was_separator
}

fn suggest_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(['-', '_', '.']) {
            out.push(if matches!(c, '_' | '.') { c } else { '-' });
        }
    }
    let out = out.trim_end_matches(['-', '_', '.']).chars().take(63).collect::<String>();
    if out.is_empty() {
        "my-entity".into()
    } else {
        out
    }
}

fn suggest_tag(tag: &str) -> String {
    let mut out = String::new();
    for c in tag.to_ascii_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '+' | '#') {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').chars().take(63).collect::<String>();
    if out.is_empty() {
        "my-tag".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> Origin {
        Origin { managed_by: "file:/x/catalog-info.yaml".into(), origin: "file:/x/catalog-info.yaml".into() }
    }

    fn component(spec: Value) -> Value {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "checkout"}, "spec": spec})
    }

    fn fields(issues: &[FieldIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.field.as_str()).collect()
    }

    #[test]
    fn a_valid_component_gets_namespace_annotations_relations_and_hash() {
        let entity = process_entity(
            component(json!({"type": "service", "lifecycle": "production", "owner": "team-a", "system": "shop",
                "dependsOn": ["resource:orders-db", "Component:Other/Pricing"], "providesApis": ["checkout-api"]})),
            &origin(),
        )
        .unwrap();
        assert_eq!(entity.entity_ref.to_string(), "component:default/checkout");
        assert_eq!(entity.body["metadata"]["namespace"], "default");
        assert_eq!(entity.body["metadata"]["annotations"][ANNOTATION_MANAGED_BY_LOCATION], "file:/x/catalog-info.yaml");
        let rels: Vec<String> = entity.relations.iter().map(|r| format!("{} {}", r.relation, r.target)).collect();
        assert_eq!(
            rels,
            [
                "ownedBy group:default/team-a",
                "partOf system:default/shop",
                "providesApi api:default/checkout-api",
                "dependsOn resource:default/orders-db",
                "dependsOn component:other/Pricing",
            ]
        );
        assert_eq!(entity.hash.len(), 32);
    }

    #[test]
    fn the_same_content_hashes_the_same() {
        let a =
            process_entity(component(json!({"type": "service", "lifecycle": "production", "owner": "t"})), &origin())
                .unwrap();
        let b =
            process_entity(component(json!({"type": "service", "lifecycle": "production", "owner": "t"})), &origin())
                .unwrap();
        let c =
            process_entity(component(json!({"type": "website", "lifecycle": "production", "owner": "t"})), &origin())
                .unwrap();
        assert_eq!(a.hash, b.hash);
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn backstage_invalid_component_is_reported_field_by_field() {
        let value = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "invalid component", "labels": {"goVersion": "go1.15.3"}, "tags": ["go", "go 1.15.3"]},
            "spec": {"type": "service", "lifecycle": "production", "owner": "user:guest"}});
        let issues = process_entity(value, &origin()).unwrap_err();
        assert_eq!(fields(&issues), ["metadata.name", "metadata.tags[1]"]);
        assert!(issues[0].message.contains("e.g. `invalid-component`"), "{}", issues[0].message);
        assert!(issues[1].message.contains("e.g. `go-1-15-3`"), "{}", issues[1].message);
    }

    #[test]
    fn missing_and_mistyped_fields() {
        let issues = validate_entity(
            &json!({"kind": "API", "metadata": {"name": "x", "tags": "a"}, "spec": {"type": 3, "owner": "t"}}),
        );
        assert_eq!(fields(&issues), ["apiVersion", "metadata.tags", "spec.type", "spec.lifecycle", "spec.definition"]);
        assert!(issues[0].message.contains("backstage.io/v1alpha1"));
    }

    #[test]
    fn unknown_kind_and_wrong_api_version() {
        let issues =
            validate_entity(&json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}));
        assert_eq!(fields(&issues), ["kind"]);
        assert!(issues[0].message.contains("Component"));
        let issues =
            validate_entity(&json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Model", "metadata": {"name": "m"},
            "spec": {"type": "llm", "owner": "t", "lifecycle": "production"}}));
        assert_eq!(fields(&issues), ["apiVersion"]);
        assert!(issues[0].message.contains("plinth.dev/v1alpha1"));
    }

    #[test]
    fn enums_of_ai_kinds() {
        let issues = validate_entity(
            &json!({"apiVersion": "plinth.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "a"},
            "spec": {"type": "assistant", "owner": "t", "lifecycle": "production", "autonomy": "yolo", "riskTier": "high"}}),
        );
        assert_eq!(fields(&issues), ["spec.autonomy"]);
        assert!(issues[0].message.contains("suggest, supervised, autonomous"));
    }

    #[test]
    fn ai_relations() {
        let agent = json!({"apiVersion": "plinth.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "a", "namespace": "ml"},
            "spec": {"type": "assistant", "owner": "t", "lifecycle": "production", "models": ["gpt"], "prompts": ["p"],
                     "tools": ["orders-api", "component:default/refunds"]}});
        let e = process_entity(agent, &origin()).unwrap();
        let rels: Vec<String> = e.relations.iter().map(|r| format!("{} {}", r.relation, r.target)).collect();
        assert_eq!(
            rels,
            [
                "ownedBy group:ml/t",
                "usesModel model:ml/gpt",
                "usesPrompt prompt:ml/p",
                "usesTool api:ml/orders-api",
                "usesTool component:default/refunds"
            ]
        );
    }

    #[test]
    fn mcp_server_apis_need_remotes_or_a_definition() {
        let api = |spec: Value| json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "m"}, "spec": spec});
        let base = json!({"type": "mcp-server", "lifecycle": "production", "owner": "t"});
        assert_eq!(fields(&validate_entity(&api(base.clone()))), ["spec.definition"]);
        let mut with_remotes = base;
        with_remotes["remotes"] = json!([{"type": "streamable-http", "url": "https://x/mcp"}]);
        assert_eq!(validate_entity(&api(with_remotes)), vec![]);
    }

    #[test]
    fn depends_on_needs_a_kind() {
        let issues = process_entity(
            component(json!({"type": "service", "lifecycle": "production", "owner": "t", "dependsOn": ["orders-db"]})),
            &origin(),
        )
        .unwrap_err();
        assert_eq!(fields(&issues), ["spec.dependsOn[0]"]);
        assert!(issues[0].message.contains("resource:orders-db"));
    }

    #[test]
    fn name_rules() {
        for ok in ["a", "a-b", "a_b.c", "A1", &"x".repeat(63)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a b", "ä", &"x".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_tag("c++") && is_valid_tag("java:11") && !is_valid_tag("Java") && !is_valid_tag("a.b"));
        assert!(is_valid_qualified_key("backstage.io/managed-by-location") && !is_valid_qualified_key("a/b/c"));
        assert!(is_valid_dns_label("prod-eu") && !is_valid_dns_label("Prod"));
    }

    #[test]
    fn document_that_is_not_a_mapping() {
        let issues = validate_entity(&json!(["a"]));
        assert!(issues[0].message.contains("not an entity"));
    }
}
