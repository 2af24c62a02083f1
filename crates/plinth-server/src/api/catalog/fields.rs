//! Backstage's `fields` parameter: keep only the named dotted paths of an
//! entity (`metadata.name,kind,spec.owner`).

use serde_json::{Map, Value};

/// Parsed `fields` parameters (comma-separated, repeatable).
#[derive(Debug, Clone, Default)]
pub(super) struct FieldSet(Vec<Vec<String>>);

impl FieldSet {
    pub(super) fn parse(params: &[String]) -> Option<FieldSet> {
        let paths: Vec<Vec<String>> = params
            .iter()
            .flat_map(|p| p.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.split('.').map(str::to_string).collect())
            .collect();
        (!paths.is_empty()).then_some(FieldSet(paths))
    }

    pub(super) fn apply(&self, value: Value) -> Value {
        let mut out = Value::Object(Map::new());
        for path in &self.0 {
            if let Some(found) = lookup(&value, path) {
                insert(&mut out, path, found.clone());
            }
        }
        out
    }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = value;
    for part in path {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn insert(out: &mut Value, path: &[String], value: Value) {
    let mut current = out;
    for (i, part) in path.iter().enumerate() {
        let Value::Object(map) = current else { return };
        if i + 1 == path.len() {
            map.insert(part.clone(), value);
            return;
        }
        current = map.entry(part.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_named_paths() {
        let fields = FieldSet::parse(&["kind,metadata.name".into(), "spec.owner".into()]).unwrap();
        let entity = json!({"kind": "Component", "metadata": {"name": "a", "uid": "u"}, "spec": {"type": "x"}});
        assert_eq!(fields.apply(entity), json!({"kind": "Component", "metadata": {"name": "a"}}));
        assert!(FieldSet::parse(&[" , ".into()]).is_none());
    }
}
