//! JSON → YAML text for `catalog:write`, through yaml-rust2's emitter.

use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    if emitter.dump(&convert(value)).is_err() {
        return serde_json::to_string_pretty(value).unwrap_or_default();
    }
    // The emitter starts with a document marker; descriptors usually do too.
    out.push('\n');
    out
}

fn convert(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(convert).collect()),
        Value::Object(map) => {
            let mut hash = Hash::new();
            for (key, item) in map {
                hash.insert(Yaml::String(key.clone()), convert(item));
            }
            Yaml::Hash(hash)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_through_the_model_parser() {
        let entity = serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "shop", "annotations": {"a": "yes"}}, "spec": {"replicas": 3, "tags": ["x: y", "true"]}});
        let text = super::to_yaml(&entity);
        let docs = plinth_model::yaml::parse_documents(&text, &Default::default());
        assert_eq!(docs[0].value.as_ref().unwrap(), &entity);
    }
}
