//! Backstage `scaffolder.backstage.io/v1beta3` `Template` entities, checked
//! when they load: steps name known actions, ids are unique, expressions
//! parse, parameter schemas compile. A broken template is refused with
//! every problem at once, never discovered halfway through a run.

use crate::expr::Expressions;
use crate::registry;
use serde::Serialize;
use serde_json::Value;

pub const API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// One step of a template.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub action: String,
    pub input: Value,
    /// `if:` — a boolean or an expression; the step is skipped when falsy.
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// `each:` — an expression yielding a list or object; the step runs
    /// once per item with `each.key`/`each.value` in scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub each: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Template {
    /// `template:namespace/name`.
    pub entity_ref: String,
    pub name: String,
    pub title: String,
    pub description: String,
    /// `spec.type` (service, resource, …).
    pub kind: String,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    /// `plinth.io/profile` annotation: the policy profile for `plinth:policy`.
    pub profile: Option<String>,
    /// Parameter pages (a single schema becomes one page).
    pub parameters: Vec<Value>,
    pub steps: Vec<Step>,
    pub output: Value,
}

/// A problem in a template, with where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateProblem {
    /// The field, e.g. `spec.steps[2].action`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Template {
    /// Reads a Template entity (as JSON), checking everything that can be
    /// checked before a run.
    pub fn from_entity(entity: &Value) -> Result<Template, Vec<TemplateProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(TemplateProblem { field: field.to_string(), message });
        };
        let api_version = entity["apiVersion"].as_str().unwrap_or_default();
        if api_version != API_VERSION {
            problem(
                "apiVersion",
                format!("`{api_version}` is not supported; templates use `{API_VERSION}` (older beta2 templates need the `${{{{ }}}}` syntax upgrade Backstage describes)"),
            );
        }
        if !entity["kind"].as_str().is_some_and(|k| k.eq_ignore_ascii_case("template")) {
            problem("kind", "must be `Template`".into());
        }
        let metadata = &entity["metadata"];
        let name = metadata["name"].as_str().unwrap_or_default().to_string();
        if name.is_empty() {
            problem("metadata.name", "a template needs a name".into());
        }
        let namespace = metadata["namespace"].as_str().unwrap_or("default");
        let spec = &entity["spec"];
        let parameters = match &spec["parameters"] {
            Value::Null => Vec::new(),
            Value::Array(pages) => pages.clone(),
            page @ Value::Object(_) => vec![page.clone()],
            _ => {
                problem("spec.parameters", "must be a JSON Schema object or a list of them (one per form page)".into());
                Vec::new()
            }
        };
        for (index, page) in parameters.iter().enumerate() {
            if !page.is_object() {
                problem(&format!("spec.parameters[{index}]"), "each page must be a JSON Schema object".into());
                continue;
            }
            if let Err(error) = crate::params::compile(page) {
                problem(&format!("spec.parameters[{index}]"), format!("not a valid JSON Schema: {error}"));
            }
        }
        let expressions = Expressions::new();
        let mut steps = Vec::new();
        let mut seen = std::collections::HashSet::new();
        match &spec["steps"] {
            Value::Array(items) => {
                for (index, raw) in items.iter().enumerate() {
                    let at = format!("spec.steps[{index}]");
                    let action = raw["action"].as_str().unwrap_or_default().to_string();
                    let id = raw["id"].as_str().map(str::to_string).unwrap_or_else(|| format!("step-{}", index + 1));
                    if !seen.insert(id.clone()) {
                        problem(
                            &format!("{at}.id"),
                            format!("`{id}` is used by an earlier step; step ids must be unique"),
                        );
                    }
                    if action.is_empty() {
                        problem(&format!("{at}.action"), "every step needs an action".into());
                    } else if registry::describe(&action).is_none() {
                        problem(
                            &format!("{at}.action"),
                            format!("unknown action `{action}`; available: {}", registry::ids().join(", ")),
                        );
                    }
                    let input = raw.get("input").cloned().unwrap_or(Value::Object(Default::default()));
                    if !input.is_object() {
                        problem(&format!("{at}.input"), "must be an object".into());
                    }
                    let mut expression_problems = Vec::new();
                    expressions.check_value(&input, &format!("{at}.input"), &mut expression_problems);
                    for key in ["if", "each"] {
                        if let Some(value) = raw.get(key) {
                            expressions.check_value(value, &format!("{at}.{key}"), &mut expression_problems);
                        }
                    }
                    for (field, message) in expression_problems {
                        problem(&field, format!("expression does not parse: {message}"));
                    }
                    steps.push(Step {
                        name: raw["name"].as_str().map(str::to_string).unwrap_or_else(|| id.clone()),
                        id,
                        action,
                        input,
                        condition: raw.get("if").cloned(),
                        each: raw.get("each").cloned(),
                    });
                }
            }
            Value::Null => problem("spec.steps", "a template needs at least one step".into()),
            _ => problem("spec.steps", "must be a list of steps".into()),
        }
        let output = spec.get("output").cloned().unwrap_or(Value::Null);
        let mut expression_problems = Vec::new();
        expressions.check_value(&output, "spec.output", &mut expression_problems);
        for (field, message) in expression_problems {
            problem(&field, format!("expression does not parse: {message}"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let annotations = &metadata["annotations"];
        Ok(Template {
            entity_ref: format!("template:{namespace}/{name}").to_lowercase(),
            title: metadata["title"].as_str().unwrap_or(&name).to_string(),
            name,
            description: metadata["description"].as_str().unwrap_or_default().to_string(),
            kind: spec["type"].as_str().unwrap_or_default().to_string(),
            owner: spec["owner"].as_str().map(str::to_string),
            tags: metadata["tags"]
                .as_array()
                .map(|tags| tags.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            profile: annotations["plinth.io/profile"].as_str().map(str::to_string),
            parameters,
            steps,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_actions_and_bad_expressions_are_refused_at_load() {
        let entity = json!({
            "apiVersion": API_VERSION, "kind": "Template", "metadata": {"name": "t"},
            "spec": {"steps": [
                {"id": "a", "action": "fetch:template", "input": {"url": "./s"}},
                {"id": "a", "action": "github:repo:create", "input": {}},
                {"id": "c", "action": "debug:log", "input": {"message": "${{ parameters.name | }}"}}
            ]}
        });
        let problems = Template::from_entity(&entity).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["spec.steps[1].id", "spec.steps[1].action", "spec.steps[2].input.message"], "{problems:?}");
        assert!(problems[1].message.contains("unknown action `github:repo:create`"));
    }

    #[test]
    fn a_single_schema_is_one_page() {
        let entity = json!({
            "apiVersion": API_VERSION, "kind": "Template", "metadata": {"name": "t", "annotations": {"plinth.io/profile": "agent"}},
            "spec": {"type": "service", "parameters": {"properties": {"name": {"type": "string"}}},
                     "steps": [{"id": "log", "action": "debug:log", "input": {"message": "hi"}}]}
        });
        let template = Template::from_entity(&entity).unwrap();
        assert_eq!(template.parameters.len(), 1);
        assert_eq!(template.entity_ref, "template:default/t");
        assert_eq!(template.profile.as_deref(), Some("agent"));
    }
}
