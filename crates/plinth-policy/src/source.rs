//! What Plinth reads from a Rego file's text before the engine sees it: the
//! package, the top-level rule names (with the line of their first
//! definition) and OPA `# METADATA` annotation blocks.
//!
//! The scan is line-based, which is enough because Rego's top-level rules
//! start at column 0 in every formatter's output and OPA's annotations are
//! comment blocks directly above the package or rule they describe.

use crate::PolicyError;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// One rule name as first defined in a file.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDecl {
    pub name: String,
    pub line: usize,
    /// The `# METADATA` block directly above the first definition, if any.
    pub annotations: Option<Annotations>,
}

/// The parts of an OPA METADATA block Plinth uses; `custom` keeps every key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Annotations {
    pub title: Option<String>,
    pub description: Option<String>,
    pub custom: Map<String, Value>,
}

impl Annotations {
    pub fn custom_str(&self, key: &str) -> Option<&str> {
        self.custom.get(key).and_then(Value::as_str)
    }

    /// A custom key holding a list of strings (a single string counts as one).
    pub fn custom_list(&self, key: &str) -> Vec<String> {
        match self.custom.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

/// A METADATA block that is not valid YAML.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotationError {
    pub line: usize,
    pub message: String,
}

/// The scan of one file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScannedModule {
    /// Dotted package path without `data.` (`plinth.baseline.containers`).
    pub package: Option<String>,
    pub package_line: usize,
    pub package_annotations: Option<Annotations>,
    pub rules: Vec<RuleDecl>,
    pub annotation_errors: Vec<AnnotationError>,
    /// Whether the file imports `rego.v1` (valid in both language versions).
    pub imports_rego_v1: bool,
    /// Whether the code reads `input.review` (Gatekeeper's shape of an
    /// admission request), outside comments and strings.
    pub reads_input_review: bool,
    /// Dotted paths after `data.` the code refers to (imports included),
    /// each once: `plinth.lib.k8s`, `plinth.gpu.quotas`.
    pub data_refs: Vec<String>,
}

impl ScannedModule {
    pub fn rule(&self, name: &str) -> Option<&RuleDecl> {
        self.rules.iter().find(|r| r.name == name)
    }
}

const KEYWORDS: &[&str] =
    &["package", "import", "default", "else", "some", "every", "not", "with", "as", "if", "contains"];

/// Scans Rego source text.
pub fn scan(text: &str) -> ScannedModule {
    let mut module = ScannedModule::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut pending: Option<(usize, Result<Annotations, PolicyError>)> = None;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            if trimmed.trim_start_matches('#').trim() == "METADATA" {
                // 1-based line of the block's first YAML line.
                let start = index + 2;
                let mut yaml = String::new();
                index += 1;
                while index < lines.len() {
                    let Some(rest) = lines[index].trim_start().strip_prefix('#') else { break };
                    yaml.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                    yaml.push('\n');
                    index += 1;
                }
                pending = Some(match parse_annotations(&yaml) {
                    Ok(annotations) => (start, Ok(annotations)),
                    Err((offset, message)) => (start + offset, Err(PolicyError::Annotation(message))),
                });
                continue;
            }
            index += 1;
            continue;
        }
        if trimmed.is_empty() {
            // OPA attaches a block only to the statement right below it.
            if pending.is_some() && line.is_empty() {
                flush_orphan(&mut module, &mut pending);
            }
            index += 1;
            continue;
        }
        let at_column_zero = !line.starts_with(' ') && !line.starts_with('\t');
        let annotations = take_annotations(&mut module, &mut pending);
        if at_column_zero {
            if let Some(rest) = line.strip_prefix("package ") {
                module.package = Some(normalise_package(rest));
                module.package_line = index + 1;
                module.package_annotations = annotations;
            } else if let Some(rest) = line.strip_prefix("import ") {
                if rest.split_whitespace().next() == Some("rego.v1") {
                    module.imports_rego_v1 = true;
                }
            } else if let Some(name) = rule_name(line) {
                if module.rule(&name).is_none() {
                    module.rules.push(RuleDecl { name, line: index + 1, annotations });
                }
            }
        }
        index += 1;
    }
    flush_orphan(&mut module, &mut pending);
    let code = code_only(text);
    module.reads_input_review = reads_input_review(&code);
    module.data_refs = data_refs(&code);
    module
}

/// The text with comments removed and string literals emptied, except
/// those that are a plain key (`"review"`, `"b-c"`), which stay so that
/// `input["review"]` and `data.a["b-c"]` still read as references.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                if chars.by_ref().any(|c| c == '\n') {
                    out.push('\n');
                }
            }
            '"' | '`' => {
                // `"…"` with backslash escapes; `` `…` `` raw.
                let quote = c;
                let mut literal = String::new();
                while let Some(c) = chars.next() {
                    if c == quote {
                        break;
                    }
                    if c == '\\' && quote == '"' {
                        chars.next();
                        literal.push('\\');
                        continue;
                    }
                    literal.push(c);
                }
                out.push('"');
                if !literal.is_empty() && literal.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    out.push_str(&literal);
                }
                out.push('"');
            }
            other => out.push(other),
        }
    }
    out
}

/// `input.review` or `input["review"]`, not as part of a longer name.
fn reads_input_review(code: &str) -> bool {
    static REVIEW: OnceLock<regex::Regex> = OnceLock::new();
    REVIEW
        .get_or_init(|| {
            regex::Regex::new(r#"(?:^|[^\w.])input\s*(?:\.\s*review\b|\[\s*"review"\s*\])"#).expect("static regex")
        })
        .is_match(code)
}

/// Every `data.a.b["c-d"]…` reference as a dotted path (`a.b.c-d`).
fn data_refs(code: &str) -> Vec<String> {
    static DATA: OnceLock<regex::Regex> = OnceLock::new();
    static SEGMENT: OnceLock<regex::Regex> = OnceLock::new();
    let data = DATA.get_or_init(|| {
        regex::Regex::new(r#"(?:^|[^\w.])data((?:\.[A-Za-z_]\w*|\["[\w-]+"\])+)"#).expect("static regex")
    });
    let segment =
        SEGMENT.get_or_init(|| regex::Regex::new(r#"\.([A-Za-z_]\w*)|\["([\w-]+)"\]"#).expect("static regex"));
    let mut refs: Vec<String> = Vec::new();
    for found in data.captures_iter(code) {
        let path: Vec<&str> = segment
            .captures_iter(&found[1])
            .filter_map(|s| s.get(1).or_else(|| s.get(2)).map(|m| m.as_str()))
            .collect();
        let path = path.join(".");
        if !refs.contains(&path) {
            refs.push(path);
        }
    }
    refs
}

fn take_annotations(
    module: &mut ScannedModule,
    pending: &mut Option<(usize, Result<Annotations, PolicyError>)>,
) -> Option<Annotations> {
    match pending.take() {
        Some((_, Ok(annotations))) => Some(annotations),
        Some((line, Err(error))) => {
            module.annotation_errors.push(AnnotationError { line, message: error.to_string() });
            None
        }
        None => None,
    }
}

fn flush_orphan(module: &mut ScannedModule, pending: &mut Option<(usize, Result<Annotations, PolicyError>)>) {
    if let Some((line, Err(error))) = pending.take() {
        module.annotation_errors.push(AnnotationError { line, message: error.to_string() });
    }
}

fn normalise_package(rest: &str) -> String {
    let rest = rest.split('#').next().unwrap_or("").trim();
    // `package a["b-c"].d` → `a.b-c.d`; Plinth only needs a stable display
    // and lookup form, the engine keeps the real one.
    rest.replace("[\"", ".").replace("\"]", "").trim_start_matches("data.").to_string()
}

/// The rule a column-0 line defines, if it defines one.
fn rule_name(line: &str) -> Option<String> {
    let line = line.strip_prefix("default ").unwrap_or(line);
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || KEYWORDS.contains(&name) {
        return None;
    }
    let after = line[end..].trim_start();
    let defines = after.is_empty()
        || after.starts_with('[')
        || after.starts_with('{')
        || after.starts_with('(')
        || after.starts_with(":=")
        || after.starts_with('=') && !after.starts_with("==")
        || after.starts_with("contains ")
        || after.starts_with("if ")
        || after.starts_with("if{")
        || after.starts_with('.');
    defines.then(|| name.to_string())
}

/// Parses a METADATA block; errors carry the line offset within the block.
fn parse_annotations(yaml: &str) -> Result<Annotations, (usize, String)> {
    let docs = yaml_rust2::YamlLoader::load_from_str(yaml)
        .map_err(|e| (e.marker().line().saturating_sub(1), format!("METADATA is not valid YAML: {}", e.info())))?;
    let Some(doc) = docs.into_iter().next() else { return Ok(Annotations::default()) };
    let value = yaml_to_json(doc);
    let Value::Object(map) = value else {
        return Err((0, "METADATA must be a YAML mapping (title, description, custom, ...)".to_string()));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(Annotations {
        title: text("title"),
        description: text("description"),
        custom: match map.get("custom") {
            Some(Value::Object(custom)) => custom.clone(),
            _ => Map::new(),
        },
    })
}

/// YAML (as yaml-rust2 parses it) to JSON; also used for data files.
pub fn yaml_to_json(yaml: yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Real(s) => {
            s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::String(s), Value::Number)
        }
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Hash(hash) => Value::Object(
            hash.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s,
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        Yaml::Real(r) => r,
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_package_rules_and_their_metadata() {
        let module = scan(
            r#"# METADATA
# title: Containers
# custom:
#   points: [admission, deploy]
package plinth.baseline.containers

import rego.v1

# METADATA
# title: No privileged containers
# custom:
#   id: PL-BASE-001
#   severity: high
#   controls: [CIS-5.2.1]
deny_privileged contains msg if {
    some c in input.spec.containers
    msg := "privileged"
}

deny_privileged contains msg if { false; msg := "" }

default allow := false

helper(x) := x
warn[msg] { msg := "v0" }
"#,
        );
        assert_eq!(module.package.as_deref(), Some("plinth.baseline.containers"));
        assert_eq!(module.package_line, 5);
        assert!(module.imports_rego_v1);
        assert_eq!(module.package_annotations.as_ref().unwrap().custom_list("points"), ["admission", "deploy"]);
        let names: Vec<_> = module.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["deny_privileged", "allow", "helper", "warn"]);
        let deny = module.rule("deny_privileged").unwrap();
        assert_eq!(deny.line, 15);
        let annotations = deny.annotations.as_ref().unwrap();
        assert_eq!(annotations.title.as_deref(), Some("No privileged containers"));
        assert_eq!(annotations.custom_str("id"), Some("PL-BASE-001"));
        assert_eq!(annotations.custom_list("controls"), ["CIS-5.2.1"]);
    }

    #[test]
    fn bad_metadata_is_reported_with_its_line() {
        let module = scan("package p\n\n# METADATA\n# title: a: b\ndeny contains 1 if true\n");
        assert_eq!(module.annotation_errors.len(), 1);
        assert_eq!(module.annotation_errors[0].line, 4);
        assert!(module.rule("deny").unwrap().annotations.is_none());
    }

    #[test]
    fn input_review_and_data_references_outside_comments_and_strings() {
        let gatekeeper =
            scan("package k8s\nviolation[{\"msg\": m}] {\n  input.review.object.kind == \"Pod\"\n  m := \"x\"\n}\n");
        assert!(gatekeeper.reads_input_review);
        assert!(scan("package p\nx := input[\"review\"].object\n").reads_input_review);
        assert!(scan("package p\nimport input.review as r\n").reads_input_review);
        let conftest = scan(
            "package main\n# input.review is Gatekeeper's\ndeny contains msg if {\n  input.kind == \"Deployment\"\n  msg := \"not input.review\"\n  not myinput.review\n}\n",
        );
        assert!(!conftest.reads_input_review, "comments, strings and other names do not count");
        let module = scan(
            "package a\nimport data.plinth.lib.k8s\nx := data.plinth.gpu.quotas[k8s.team]\ny := data.a[\"b-c\"].d # data.not.this\nz := \"data.nor.this\"\n",
        );
        assert_eq!(module.data_refs, ["plinth.lib.k8s", "plinth.gpu.quotas", "a.b-c.d"]);
    }

    #[test]
    fn quoted_package_segments() {
        assert_eq!(scan("package data.a[\"b-c\"].d\n").package.as_deref(), Some("a.b-c.d"));
    }
}
