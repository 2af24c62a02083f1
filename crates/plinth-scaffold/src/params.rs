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
            let message = match error.kind() {
                // Never the raw regular expression: the field's own help,
                // a sentence derived from the pattern, or a plain statement.
                jsonschema::error::ValidationErrorKind::Pattern { pattern } => {
                    pattern_message(property_schema(page, &field), &field, pattern)
                }
                _ => error.to_string(),
            };
            errors.push(FieldError { field, message, page: title.clone() });
        }
    }
    errors
}

/// The schema of a dotted field path inside a page (`properties` of
/// objects, `items` of arrays).
fn property_schema<'p>(page: &'p Value, field: &str) -> Option<&'p Value> {
    let mut schema = page;
    for part in field.split('.').filter(|p| !p.is_empty()) {
        schema = match schema.get("properties").and_then(|p| p.get(part)) {
            Some(next) => next,
            None if part.parse::<usize>().is_ok() => schema.get("items")?,
            None => return None,
        };
    }
    Some(schema)
}

/// What a user reads when a value does not match a field's `pattern`.
fn pattern_message(schema: Option<&Value>, field: &str, pattern: &str) -> String {
    let text =
        |key: &str| schema.and_then(|s| s.get(key)).and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty());
    let label = text("title").unwrap_or(field.rsplit('.').next().unwrap_or(field));
    let derived = describe_pattern(pattern);
    let help = text("ui:help").or_else(|| text("description"));
    match (derived, help) {
        (Some(rule), Some(help)) => format!("{label} must be {rule}. {}", sentence(help)),
        (Some(rule), None) => format!("{label} must be {rule}."),
        (None, Some(help)) => format!("{label} does not have the expected format. {}", sentence(help)),
        (None, None) => format!("{label} does not have the expected format; see the field's description"),
    }
}

fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?', ')']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// A sentence for simple anchored patterns made of literal text and
/// character classes with counts (`^[a-z][a-z0-9-]{1,40}$`, `^cc-[0-9]{4}$`);
/// `None` for anything else (groups, alternatives, escapes other than `\.`).
fn describe_pattern(pattern: &str) -> Option<String> {
    let body = pattern.strip_prefix('^')?.strip_suffix('$')?;
    let chars: Vec<char> = body.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (class, next) = match chars[i] {
            '[' => {
                let end = chars[i..].iter().position(|&c| c == ']')? + i;
                (Some(describe_class(&chars[i + 1..end])?), end + 1)
            }
            '\\' if chars.get(i + 1) == Some(&'.') => {
                literal.push('.');
                i += 2;
                continue;
            }
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '/' || c == ':' || c == '@' => (None, i + 1),
            _ => return None,
        };
        let (count, after) = quantifier(&chars, next)?;
        match class {
            None => {
                if count != Count::One {
                    return None;
                }
                literal.push(chars[i]);
            }
            Some((one, many)) => {
                if !literal.is_empty() {
                    parts.push(format!("`{}`", std::mem::take(&mut literal)));
                }
                parts.push(match count {
                    Count::One => one,
                    Count::Exactly(n) => format!("{n} {many}"),
                    Count::Range(0, None) => format!("any number of {many}"),
                    Count::Range(1, None) => format!("one or more {many}"),
                    Count::Range(m, None) => format!("at least {m} {many}"),
                    Count::Range(0, Some(1)) => format!("optionally {one}"),
                    Count::Range(m, Some(n)) => format!("{m} to {n} {many}"),
                });
            }
        }
        i = after;
    }
    if !literal.is_empty() {
        parts.push(format!("`{literal}`"));
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join(" followed by "))
}

#[derive(Debug, PartialEq)]
enum Count {
    One,
    Exactly(usize),
    Range(usize, Option<usize>),
}

fn quantifier(chars: &[char], at: usize) -> Option<(Count, usize)> {
    match chars.get(at) {
        Some('*') => Some((Count::Range(0, None), at + 1)),
        Some('+') => Some((Count::Range(1, None), at + 1)),
        Some('?') => Some((Count::Range(0, Some(1)), at + 1)),
        Some('{') => {
            let end = chars[at..].iter().position(|&c| c == '}')? + at;
            let inner: String = chars[at + 1..end].iter().collect();
            let count = match inner.split_once(',') {
                None => Count::Exactly(inner.trim().parse().ok()?),
                Some((m, n)) => {
                    let n = n.trim();
                    Count::Range(m.trim().parse().ok()?, if n.is_empty() { None } else { Some(n.parse().ok()?) })
                }
            };
            Some((count, end + 1))
        }
        _ => Some((Count::One, at)),
    }
}

/// `a-z0-9-` → ("a lowercase letter, digit or dash", "lowercase letters, digits or dashes").
fn describe_class(class: &[char]) -> Option<(String, String)> {
    let mut words: Vec<(&str, &str)> = Vec::new();
    let mut i = 0;
    while i < class.len() {
        let range = (class.get(i + 1) == Some(&'-') && i + 2 < class.len()).then(|| (class[i], class[i + 2]));
        let word = match range {
            Some(('a', 'z')) => ("lowercase letter", "lowercase letters"),
            Some(('A', 'Z')) => ("capital letter", "capital letters"),
            Some(('0', '9')) => ("digit", "digits"),
            Some(('1', '9')) => ("digit from 1 to 9", "digits from 1 to 9"),
            Some(('a', 'f')) => ("hexadecimal digit", "hexadecimal digits"),
            Some(_) => return None,
            None => match class[i] {
                '-' => ("dash", "dashes"),
                '_' => ("underscore", "underscores"),
                '.' => ("dot", "dots"),
                '/' => ("slash", "slashes"),
                _ => return None,
            },
        };
        i += if range.is_some() { 3 } else { 1 };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    let join = |list: Vec<&str>| match list.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.to_string(),
        None => String::new(),
    };
    let first = words.first()?.0;
    let article = if first.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    let one = format!("{article} {}", join(words.iter().map(|w| w.0).collect()));
    let many = join(words.iter().map(|w| w.1).collect());
    Some((one, many))
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
        assert!(!errors[0].message.contains("^[a-z-]+$"), "{}", errors[0].message);
    }

    #[test]
    fn pattern_errors_never_show_the_regex() {
        let page = json!({"title": "About", "properties": {
            "name": {"title": "Name", "type": "string", "pattern": "^[a-z][a-z0-9-]{1,40}$", "description": "Unique kebab-case name."},
            "costCentre": {"title": "Cost centre", "type": "string", "pattern": "^cc-[0-9]{4}$"},
            "image": {"title": "Image", "type": "string", "pattern": "^(ghcr\\.io/|nvcr\\.io/)[^:@]+$"},
            "pd": {"title": "PagerDuty service ID", "type": "string", "pattern": "^(P[A-Z0-9]{5,13})?$", "ui:help": "e.g. P7AC60D"},
            "tags": {"type": "array", "items": {"title": "Tag", "type": "string", "pattern": "^[a-z]+$"}}}});
        let errors = validate(
            &[page],
            &json!({"name": "Bad Name", "costCentre": "4120", "image": "docker.io/x", "pd": "x", "tags": ["ok", "NO"]}),
        );
        let by_field: std::collections::BTreeMap<&str, &str> =
            errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            by_field["name"],
            "Name must be a lowercase letter followed by 1 to 40 lowercase letters, digits or dashes. Unique kebab-case name."
        );
        assert_eq!(by_field["costCentre"], "Cost centre must be `cc-` followed by 4 digits.");
        assert_eq!(by_field["image"], "Image does not have the expected format; see the field's description");
        assert_eq!(by_field["pd"], "PagerDuty service ID does not have the expected format. e.g. P7AC60D.");
        assert_eq!(by_field["tags.1"], "Tag must be one or more lowercase letters.");
        for error in &errors {
            assert!(!error.message.contains('^') && !error.message.contains('$'), "{error}");
        }
    }
}
