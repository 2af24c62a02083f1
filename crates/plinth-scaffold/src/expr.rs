//! `${{ … }}` expressions: Backstage's nunjucks dialect, evaluated with
//! minijinja (Jinja2 semantics, sandboxed: no file, network or environment
//! access; a fuel limit bounds the work one expression may do).

use crate::error::ScaffoldError;
use minijinja::value::{Kwargs, Value as JinjaValue};
use minijinja::{Environment, Error as JinjaError, ErrorKind};
use serde_json::{Map, Value};

/// Work allowed for rendering one string or file (minijinja fuel units,
/// roughly one per instruction): plenty for templates, a stop for loops
/// that would run for minutes.
const FUEL: u64 = 2_000_000;

/// The expression environment: Jinja built-ins plus Backstage's filters.
pub struct Expressions {
    env: Environment<'static>,
}

impl Default for Expressions {
    fn default() -> Self {
        Self::new()
    }
}

impl Expressions {
    pub fn new() -> Expressions {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .variable_delimiters("${{", "}}")
            .block_delimiters("{%", "%}")
            .comment_delimiters("{#", "#}")
            .build()
            .expect("static syntax is valid");
        env.set_syntax(syntax);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(FUEL));
        env.add_filter("parseRepoUrl", parse_repo_url);
        env.add_filter("parseEntityRef", parse_entity_ref);
        env.add_filter("pick", pick);
        env.add_filter("projectSlug", project_slug);
        // nunjucks' JSON filter, common in Backstage skeletons.
        env.add_filter("dump", dump);
        Expressions { env }
    }

    /// Checks that `text` parses, without evaluating it.
    pub fn check(&self, text: &str) -> Result<(), ScaffoldError> {
        if let Some(expr) = whole_expression(text) {
            return self.env.compile_expression(expr).map(|_| ()).map_err(describe);
        }
        self.env.template_from_str(text).map(|_| ()).map_err(describe)
    }

    /// Renders a string. A string that is exactly one `${{ … }}` keeps the
    /// value's type (a list stays a list); anything else renders to text.
    pub fn render_str(&self, text: &str, scope: &Value) -> Result<Value, ScaffoldError> {
        if !text.contains("${{") && !text.contains("{%") {
            return Ok(Value::String(text.to_string()));
        }
        if let Some(expr) = whole_expression(text) {
            let compiled = self.env.compile_expression(expr).map_err(describe)?;
            let value = compiled.eval(JinjaValue::from_serialize(scope)).map_err(describe)?;
            if value.is_undefined() || value.is_none() {
                return Ok(Value::Null);
            }
            return serde_json::to_value(&value).map_err(|e| ScaffoldError::Expression(e.to_string()));
        }
        self.render_text(text, scope).map(Value::String)
    }

    /// Renders text (file contents, file names) to text.
    pub fn render_text(&self, text: &str, scope: &Value) -> Result<String, ScaffoldError> {
        self.env.render_str(text, scope).map_err(describe)
    }

    /// Renders every string inside a JSON value.
    pub fn render_value(&self, value: &Value, scope: &Value) -> Result<Value, ScaffoldError> {
        Ok(match value {
            Value::String(text) => self.render_str(text, scope)?,
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.render_value(item, scope)).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, item) in map {
                    out.insert(key.clone(), self.render_value(item, scope).map_err(|e| e.context(key.clone()))?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Every expression inside a JSON value parses (template load check).
    pub fn check_value(&self, value: &Value, path: &str, problems: &mut Vec<(String, String)>) {
        match value {
            Value::String(text) if text.contains("${{") || text.contains("{%") => {
                if let Err(error) = self.check(text) {
                    problems.push((path.to_string(), error.to_string()));
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.check_value(item, &format!("{path}[{index}]"), problems);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.check_value(item, &format!("{path}.{key}"), problems);
                }
            }
            _ => {}
        }
    }
}

/// Jinja truthiness of a rendered `if:` value, as nunjucks sees it.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `"${{ expr }}"` (nothing else around it) → `expr`.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("${{")?.strip_suffix("}}")?;
    if inner.contains("${{") || inner.contains("}}") {
        return None;
    }
    Some(inner.trim())
}

fn describe(error: JinjaError) -> ScaffoldError {
    let mut message = match error.kind() {
        ErrorKind::OutOfFuel => "the expression did too much work (a loop too long?) and was stopped".to_string(),
        _ => error.detail().map(str::to_string).unwrap_or_else(|| error.kind().to_string()),
    };
    if let Some(line) = error.line() {
        message = format!("line {line}: {message}");
    }
    ScaffoldError::Expression(message)
}

/// Backstage's `parseRepoUrl`: `github.com?owner=o&repo=r` (RepoUrlPicker's
/// form) or an ordinary repository URL → {host, owner, repo, organization,
/// workspace, project}.
fn parse_repo_url(url: String) -> Result<JinjaValue, JinjaError> {
    let mut out = std::collections::BTreeMap::new();
    if let Some((host, query)) = url.split_once('?') {
        out.insert("host".to_string(), host.to_string());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            out.insert(key.to_string(), value.to_string());
        }
    } else {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(&url);
        let rest = rest.trim_end_matches('/').trim_end_matches(".git");
        let mut parts = rest.split('/');
        out.insert("host".into(), parts.next().unwrap_or_default().to_string());
        let segments: Vec<&str> = parts.collect();
        if segments.len() >= 2 {
            out.insert("owner".into(), segments[segments.len() - 2].to_string());
            out.insert("repo".into(), segments[segments.len() - 1].to_string());
        } else if let Some(repo) = segments.first() {
            out.insert("repo".into(), repo.to_string());
        }
    }
    if !out.contains_key("repo") {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!(
                "parseRepoUrl: `{url}` names no repository (expected host?owner=…&repo=… or https://host/owner/repo)"
            ),
        ));
    }
    Ok(JinjaValue::from_serialize(&out))
}

/// Backstage's `parseEntityRef`: `kind:namespace/name` → {kind, namespace,
/// name}; `defaultKind`/`defaultNamespace` keyword arguments fill gaps.
fn parse_entity_ref(text: String, kwargs: Kwargs) -> Result<JinjaValue, JinjaError> {
    let default_kind: Option<String> = kwargs.get("defaultKind")?;
    let default_namespace: Option<String> = kwargs.get("defaultNamespace")?;
    kwargs.assert_all_used()?;
    let (kind, rest) = match text.split_once(':') {
        Some((kind, rest)) => (Some(kind.to_string()), rest),
        None => (default_kind, text.as_str()),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((namespace, name)) => (namespace.to_string(), name.to_string()),
        None => (default_namespace.unwrap_or_else(|| "default".into()), rest.to_string()),
    };
    if name.is_empty() {
        return Err(JinjaError::new(ErrorKind::InvalidOperation, format!("parseEntityRef: `{text}` has no name")));
    }
    let mut out = std::collections::BTreeMap::new();
    if let Some(kind) = kind {
        out.insert("kind", kind.to_lowercase());
    }
    out.insert("namespace", namespace);
    out.insert("name", name);
    Ok(JinjaValue::from_serialize(&out))
}

/// nunjucks' `dump`: the value as JSON text.
fn dump(value: JinjaValue) -> Result<String, JinjaError> {
    serde_json::to_string(&value).map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// Backstage's `pick`: one key of an object.
fn pick(value: JinjaValue, key: String) -> Result<JinjaValue, JinjaError> {
    value.get_attr(&key)
}

/// Backstage's `projectSlug`: `owner/repo` of a repository URL.
fn project_slug(url: String) -> Result<String, JinjaError> {
    let parsed = parse_repo_url(url)?;
    let owner = parsed.get_attr("owner")?;
    let repo = parsed.get_attr("repo")?;
    Ok(if owner.is_undefined() { repo.to_string() } else { format!("{owner}/{repo}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_whole_expression_keeps_its_type() {
        let expressions = Expressions::new();
        let scope = json!({"parameters": {"tags": ["a", "b"], "count": 3, "on": true}});
        assert_eq!(expressions.render_str("${{ parameters.tags }}", &scope).unwrap(), json!(["a", "b"]));
        assert_eq!(expressions.render_str(" ${{ parameters.count }} ", &scope).unwrap(), json!(3));
        assert_eq!(expressions.render_str("n=${{ parameters.count }}", &scope).unwrap(), json!("n=3"));
        assert_eq!(expressions.render_str("${{ parameters.missing }}", &scope).unwrap(), Value::Null);
    }

    #[test]
    fn backstage_filters() {
        let expressions = Expressions::new();
        let scope =
            json!({"parameters": {"repoUrl": "github.com?owner=acme&repo=shop", "owner": "group:default/team-a"}});
        let slug = expressions.render_str("${{ parameters.repoUrl | projectSlug }}", &scope).unwrap();
        assert_eq!(slug, json!("acme/shop"));
        let name = expressions.render_str("${{ (parameters.owner | parseEntityRef).name }}", &scope).unwrap();
        assert_eq!(name, json!("team-a"));
        let host = expressions.render_str("${{ parameters.repoUrl | parseRepoUrl | pick('host') }}", &scope).unwrap();
        assert_eq!(host, json!("github.com"));
    }

    #[test]
    fn runaway_loops_are_stopped_and_files_cannot_be_read() {
        let expressions = Expressions::new();
        let err = expressions
            .render_text(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &json!({}),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("too much work") || err.contains("range"), "{err}");
        // No include/import loader is configured: templates cannot reach the file system.
        let err = expressions.render_text("{% include '/etc/passwd' %}", &json!({})).unwrap_err().to_string();
        assert!(err.contains("not found") || err.contains("template"), "{err}");
    }

    #[test]
    fn syntax_errors_are_reported_with_a_line() {
        let expressions = Expressions::new();
        let err = expressions.check("a\n${{ parameters.name | }}").unwrap_err();
        assert!(matches!(err, ScaffoldError::Expression(_)), "{err}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
