//! Template parameters: JSON Schema pages (validated with the `jsonschema`
//! crate; `ui:*` keys are form hints and ignored here), defaults filled in
//! as Backstage's form does, and errors that name the field.

use serde::Serialize;
use serde_json::{Map, Value};

/// Largest parameter set accepted, serialised.
pub const MAX_VALUES_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// The parameter, as a dotted path (`resources.gpuCount`), or empty for
    /// the whole set.
    pub field: String,
    pub message: String,
    /// Title of the form page that holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "parameter `{}`: {}", self.field, self.message)
        }
    }
}

pub fn compile(page: &Value) -> Result<jsonschema::Validator, crate::ScaffoldError> {
    jsonschema::validator_for(page).map_err(|e| crate::ScaffoldError::Schema(e.to_string()))
}

/// Fills absent top-level properties that declare a `default`, page by page.
pub fn apply_defaults(pages: &[Value], values: &Value) -> Value {
    let mut out = values.as_object().cloned().unwrap_or_default();
    for page in pages {
        fill(page, &mut out);
    }
    Value::Object(out)
}

fn fill(schema: &Value, out: &mut Map<String, Value>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(default) = property.get("default") {
                out.entry(name.clone()).or_insert_with(|| default.clone());
            }
        }
    }
    // Properties shown conditionally (dependencies/allOf branches) keep
    // their defaults only when their branch applies: leave them to the form.
}

/// Validates values against every page; every problem is reported.
pub fn validate(pages: &[Value], values: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !values.is_object() {
        errors.push(FieldError { field: String::new(), message: "values must be a JSON object".into(), page: None });
        return errors;
    }
    if serde_json::to_vec(values).map(|v| v.len()).unwrap_or(0) > MAX_VALUES_BYTES {
        errors.push(FieldError {
            field: String::new(),
            message: format!(
                "the parameters are larger than {} KiB; pass references, not contents",
                MAX_VALUES_BYTES / 1024
            ),
            page: None,
        });
        return errors;
    }
    for page in pages {
        let title = page["title"].as_str().map(str::to_string);
        let validator = match compile(page) {
            Ok(validator) => validator,
            Err(message) => {
                errors.push(FieldError { field: String::new(), message: message.to_string(), page: title });
                continue;
            }
        };
        for error in validator.iter_errors(values) {
            let mut field = error.instance_path().as_str().trim_start_matches('/').replace('/', ".");
            if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
                let property = property.as_str().unwrap_or_default();
                field = if field.is_empty() { property.to_string() } else { format!("{field}.{property}") };
                let label = page["properties"][property]["title"].as_str().unwrap_or(property);
                errors.push(FieldError {
                    field,
                    message: format!("{label} is required; set it (e.g. `--set {property}=…`)"),
                    page: title.clone(),
                });
                continue;
            }
            errors.push(FieldError { field, message: error.to_string(), page: title.clone() });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field_and_defaults_fill_gaps() {
        let pages = vec![
            json!({"title": "About", "required": ["name"], "properties": {"name": {"type": "string", "pattern": "^[a-z-]+$", "ui:autofocus": true}}}),
            json!({"title": "Compute", "properties": {"gpuCount": {"type": "integer", "maximum": 8, "default": 1}}}),
        ];
        let values = apply_defaults(&pages, &json!({}));
        assert_eq!(values, json!({"gpuCount": 1}));
        let errors = validate(&pages, &values);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[0].page.as_deref(), Some("About"));
        let errors = validate(&pages, &json!({"name": "Bad Name", "gpuCount": 80}));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "gpuCount"], "{errors:?}");
        assert!(errors[1].message.contains("80"), "{}", errors[1].message);
    }
}
