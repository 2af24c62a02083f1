//! YAML loading for catalogue files: multi-document, bounded, with lines.
//!
//! Built on `yaml-rust2`'s event parser rather than a serde deserialiser so
//! that (a) each `---` document is parsed on its own and a syntax error in one
//! never hides the others, (b) alias expansion is counted and a "billion
//! laughs" bomb is refused instead of exhausting memory, and (c) the line of
//! any field can be recovered for error messages. Scalars resolve with the
//! YAML 1.2 core schema, as Backstage's own loader does (`yes` is a string).

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::ops::Range;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Bounds that keep hostile input from exhausting memory or the stack.
#[derive(Debug, Clone, Copy)]
pub struct YamlLimits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Most nodes one document may expand to, aliases included.
    pub max_nodes: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits { max_file_bytes: 8 * 1024 * 1024, max_nodes: 100_000, max_depth: 64 }
    }
}

/// One `---`-separated document of a file.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    /// 1-based line of the document's first content in the file.
    pub line: u32,
    /// 1-based line where the document's text (`span`) starts.
    start_line: u32,
    /// Byte range of the document in the file, to re-read it for positions.
    pub span: Range<usize>,
    /// The document as JSON, or why it could not be read.
    pub value: Result<Value, YamlError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line in the file, when known.
    pub line: Option<u32>,
    pub message: String,
}

/// A file over the size limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("file is {len} bytes, over the {limit} byte limit for catalogue files; split it into several files (or raise `plinth serve --max-catalog-file-mib`)")]
pub struct TooLarge {
    pub len: usize,
    pub limit: usize,
}

/// Refuses a file that is larger than the limit, with a message saying so.
pub fn check_size(len: usize, limits: &YamlLimits) -> Result<(), TooLarge> {
    if len > limits.max_file_bytes {
        return Err(TooLarge { len, limit: limits.max_file_bytes });
    }
    Ok(())
}

/// Parses every document of `text`. Empty documents are skipped.
pub fn parse_documents(text: &str, limits: &YamlLimits) -> Vec<YamlDocument> {
    let mut docs = Vec::new();
    for (span, start_line, line) in split_documents(text) {
        let chunk = &text[span.clone()];
        let value = match build(chunk, start_line, limits, None) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => continue,
            Err(error) => Err(error),
        };
        docs.push(YamlDocument { line, start_line, span, value });
    }
    docs
}

/// The one document of a JSON or YAML text (the first, when YAML holds
/// several), as JSON: what `--input` files and policy test inputs are.
pub fn parse_document(text: &str) -> Result<Value, YamlError> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    match parse_documents(text, &YamlLimits::default()).into_iter().next() {
        Some(doc) => doc.value,
        None => Err(YamlError { line: None, message: "holds no document".to_string() }),
    }
}

/// Lines of every field of one document, keyed by dotted path
/// (`spec.owner`, `metadata.tags[1]`). Only used when reporting errors, so
/// the fast path never pays for it.
pub fn field_lines(text: &str, doc: &YamlDocument, limits: &YamlLimits) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    let _ = build(&text[doc.span.clone()], doc.start_line, limits, Some(&mut lines));
    lines
}

/// Splits at `---` lines (column 0), keeping leading comments and directives
/// with the document that follows them.
fn split_documents(text: &str) -> Vec<(Range<usize>, u32, u32)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u32;
    let mut content_line = 1u32;
    let mut has_content = false;
    let mut chunk_has_marker = false;
    let mut offset = 0usize;
    for (line_no, line) in (1u32..).zip(text.split_inclusive('\n')) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_marker = trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        let is_end = trimmed == "...";
        if is_marker && (has_content || chunk_has_marker) {
            // A marker after an empty document restarts the chunk there.
            if has_content {
                out.push((start..offset, start_line, content_line));
            }
            start = offset;
            start_line = line_no;
            has_content = false;
        }
        if is_marker {
            chunk_has_marker = true;
        }
        if is_end {
            if has_content {
                out.push((start..offset + line.len(), start_line, content_line));
            }
            start = offset + line.len();
            start_line = line_no + 1;
            has_content = false;
            chunk_has_marker = false;
        } else if !is_marker {
            let t = trimmed.trim_start();
            if !(t.is_empty() || t.starts_with('#') || (t.starts_with('%') && trimmed.starts_with('%'))) {
                if !has_content {
                    content_line = line_no;
                }
                has_content = true;
            }
        } else if trimmed.len() > 3 {
            // `--- value` carries content on the marker line itself.
            let rest = trimmed[3..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                if !has_content {
                    content_line = line_no;
                }
                has_content = true;
            }
        }
        offset += line.len();
    }
    if has_content {
        out.push((start..text.len(), start_line, content_line));
    }
    out
}

enum Frame {
    Seq { items: Vec<Value>, anchor: usize, path: String },
    Map { map: Map<String, Value>, key: Option<(String, bool)>, anchor: usize, path: String, merged: Vec<String> },
}

struct Builder<'a> {
    limits: &'a YamlLimits,
    nodes: usize,
    anchors: HashMap<usize, (Value, usize)>,
    stack: Vec<Frame>,
    root: Option<Value>,
    line_base: u32,
    positions: Option<&'a mut HashMap<String, u32>>,
    pending_line: u32,
}

fn build(
    chunk: &str,
    first_line: u32,
    limits: &YamlLimits,
    positions: Option<&mut HashMap<String, u32>>,
) -> Result<Option<Value>, YamlError> {
    let mut parser = Parser::new_from_str(chunk);
    let mut b = Builder {
        limits,
        nodes: 0,
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        line_base: first_line.saturating_sub(1),
        positions,
        pending_line: first_line,
    };
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|error| YamlError {
            line: Some(b.line_of(error.marker())),
            message: format!("YAML syntax error: {}", error.info()),
        })?;
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        line: Some(b.line_of(&mark)),
                        message: "unexpected second document; separate documents with a `---` line".into(),
                    });
                }
            }
            other => b.on_event(other, &mark)?,
        }
    }
    Ok(b.root.filter(|v| !v.is_null()))
}

impl Builder<'_> {
    fn line_of(&self, mark: &Marker) -> u32 {
        self.line_base + mark.line() as u32
    }

    fn count(&mut self, n: usize, mark: &Marker) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError {
                line: Some(self.line_of(mark)),
                message: format!(
                    "document expands to more than {} nodes (a YAML alias bomb?); remove the repeated aliases or split the document",
                    self.limits.max_nodes
                ),
            });
        }
        Ok(())
    }

    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { items, path, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Map { key: Some((key, _)), path, .. }) => {
                if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                }
            }
            Some(Frame::Map { path, .. }) => path.clone(),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn on_event(&mut self, event: Event, mark: &Marker) -> Result<(), YamlError> {
        self.pending_line = self.line_of(mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expecting_key() {
                    self.count(1, mark)?;
                    let merge = text == "<<" && style == TScalarStyle::Plain;
                    let line = self.line_of(mark);
                    if let Some(Frame::Map { key, path, .. }) = self.stack.last_mut() {
                        if let Some(positions) = self.positions.as_deref_mut() {
                            let full = if path.is_empty() { text.clone() } else { format!("{path}.{text}") };
                            positions.insert(full, line);
                        }
                        *key = Some((text, merge));
                    }
                    if anchor > 0 {
                        // An anchored key is unusual but legal; it aliases as a string.
                        if let Some(Frame::Map { key: Some((k, _)), .. }) = self.stack.last() {
                            self.anchors.insert(anchor, (Value::String(k.clone()), 1));
                        }
                    }
                    return Ok(());
                }
                self.count(1, mark)?;
                let value = resolve_scalar(text, style, tag.as_ref());
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                self.push_value(value, mark)
            }
            Event::Alias(id) => {
                if self.expecting_key() {
                    let key = match self.anchors.get(&id) {
                        Some((Value::String(s), _)) => s.clone(),
                        _ => {
                            return Err(YamlError {
                                line: Some(self.line_of(mark)),
                                message: "an alias used as a mapping key must refer to a string".into(),
                            })
                        }
                    };
                    if let Some(Frame::Map { key: slot, .. }) = self.stack.last_mut() {
                        *slot = Some((key, false));
                    }
                    return Ok(());
                }
                let Some((value, size)) = self.anchors.get(&id).cloned() else {
                    return Err(YamlError {
                        line: Some(self.line_of(mark)),
                        message: "alias refers to an unknown anchor; define `&name` before using `*name`".into(),
                    });
                };
                self.count(size, mark)?;
                self.push_value(value, mark)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    return Err(YamlError {
                        line: Some(self.line_of(mark)),
                        message: "mapping keys must be plain strings, not lists or maps".into(),
                    });
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(YamlError {
                        line: Some(self.line_of(mark)),
                        message: format!("nesting deeper than {} levels; flatten the document", self.limits.max_depth),
                    });
                }
                self.count(1, mark)?;
                let path = if self.positions.is_some() { self.child_path() } else { String::new() };
                if self.positions.is_some() && !path.is_empty() {
                    let line = self.line_of(mark);
                    if let Some(positions) = self.positions.as_deref_mut() {
                        positions.entry(path.clone()).or_insert(line);
                    }
                }
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq { items: Vec::new(), anchor, path }
                } else {
                    Frame::Map { map: Map::new(), key: None, anchor, path, merged: Vec::new() }
                };
                self.stack.push(frame);
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map { map, anchor, .. }) => (Value::Object(map), anchor),
                    None => return Ok(()),
                };
                if anchor > 0 {
                    let size = node_count(&value);
                    self.anchors.insert(anchor, (value.clone(), size));
                }
                self.push_value(value, mark)
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {
                Ok(())
            }
        }
    }

    fn push_value(&mut self, value: Value, mark: &Marker) -> Result<(), YamlError> {
        let line = self.line_of(mark);
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(())
            }
            Some(Frame::Seq { items, path, .. }) => {
                if let Some(positions) = self.positions.as_deref_mut() {
                    positions.entry(format!("{path}[{}]", items.len())).or_insert(line);
                }
                items.push(value);
                Ok(())
            }
            Some(Frame::Map { map, key, merged, .. }) => {
                let (key, merge) = key.take().unwrap_or_default();
                if merge {
                    return merge_into(map, merged, value)
                        .map_err(|message| YamlError { line: Some(line), message: message.to_string() });
                }
                if let Some(i) = merged.iter().position(|k| *k == key) {
                    // An explicit key overrides one that a merge brought in.
                    merged.swap_remove(i);
                } else if map.contains_key(&key) {
                    return Err(YamlError {
                        line: Some(line),
                        message: format!("duplicate key `{key}`; each key may appear once in a mapping"),
                    });
                }
                map.insert(key, value);
                Ok(())
            }
        }
    }
}

/// YAML merge keys (`<<: *defaults`): keys already present win.
fn merge_into(map: &mut Map<String, Value>, merged: &mut Vec<String>, value: Value) -> Result<(), &'static str> {
    const NOT_A_MAPPING: &str = "a merge key (`<<`) takes a mapping or a list of mappings";
    let sources = match value {
        Value::Object(source) => vec![source],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(source) => Ok(source),
                _ => Err(NOT_A_MAPPING),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(NOT_A_MAPPING),
    };
    for source in sources {
        for (k, v) in source {
            if !map.contains_key(&k) {
                merged.push(k.clone());
                map.insert(k, v);
            }
        }
    }
    Ok(())
}

fn node_count(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(|v| 1 + node_count(v)).sum::<usize>(),
        _ => 1,
    }
}

/// YAML 1.2 core schema resolution of a scalar.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag {
        if tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:" {
            return match tag.suffix.as_str() {
                "str" => Value::String(text),
                "null" => Value::Null,
                "bool" => parse_bool(&text).map(Value::Bool).unwrap_or(Value::String(text)),
                "int" | "float" => parse_number(&text).unwrap_or(Value::String(text)),
                _ => Value::String(text),
            };
        }
        return Value::String(text);
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        _ => {}
    }
    if let Some(b) = parse_bool(&text) {
        return Value::Bool(b);
    }
    parse_number(&text).unwrap_or(Value::String(text))
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_number(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok().map(Value::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
    }
    // Core-schema floats; `.inf`/`.nan` have no JSON form and stay strings.
    let is_float = digits.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|c| c.is_ascii_digit());
    if is_float {
        if let Ok(f) = text.parse::<f64>() {
            return Number::from_f64(f).map(Value::Number);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Vec<YamlDocument> {
        parse_documents(text, &YamlLimits::default())
    }

    #[test]
    fn multi_document_with_lines() {
        let text = "# leading comment\na: 1\n---\nb: [x, y]\n---\n\n---\nc: yes\nd: ~\ne: 1.5\nf: '3'\n";
        let docs = parse(text);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[0].value, Ok(json!({"a": 1})));
        assert_eq!(docs[1].line, 4);
        assert_eq!(docs[1].value, Ok(json!({"b": ["x", "y"]})));
        assert_eq!(docs[2].line, 8);
        assert_eq!(docs[2].value, Ok(json!({"c": "yes", "d": null, "e": 1.5, "f": "3"})));
    }

    #[test]
    fn a_syntax_error_stays_in_its_document() {
        let text = "a: 1\n---\nb: [unclosed\nc: 2\n---\nd: 4\n";
        let docs = parse(text);
        assert_eq!(docs.len(), 3);
        assert!(docs[0].value.is_ok());
        let err = docs[1].value.as_ref().unwrap_err();
        assert!(err.message.contains("syntax"), "{err:?}");
        assert!(matches!(err.line, Some(3..=5)), "{err:?}");
        assert_eq!(docs[2].value, Ok(json!({"d": 4})));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            text.push_str(&format!("{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = n;
        }
        let docs = parse(&text);
        let err = docs[0].value.as_ref().unwrap_err();
        assert!(err.message.contains("alias bomb"), "{err:?}");
    }

    #[test]
    fn anchors_and_merge_keys() {
        let docs = parse("base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n");
        assert_eq!(docs[0].value, Ok(json!({"base": {"x": 1, "y": 2}, "thing": {"x": 1, "y": 3}})));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let docs = parse("a: 1\nb: 2\na: 3\n");
        let err = docs[0].value.as_ref().unwrap_err();
        assert!(err.message.contains("duplicate key `a`"));
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200) + &"]".repeat(200);
        let err = parse(&text)[0].value.clone().unwrap_err();
        assert!(err.message.contains("nesting"));
    }

    #[test]
    fn field_lines_are_recorded() {
        let text =
            "x: 0\n---\napiVersion: v1\nmetadata:\n  name: a\n  tags:\n    - one\n    - two\nspec:\n  owner: me\n";
        let docs = parse(text);
        let lines = field_lines(text, &docs[1], &YamlLimits::default());
        assert_eq!(lines["metadata.name"], 5);
        assert_eq!(lines["metadata.tags[1]"], 8);
        assert_eq!(lines["spec.owner"], 10);
    }

    #[test]
    fn scalars_resolve_with_the_core_schema() {
        let docs = parse("a: 0x1f\nb: -12\nc: on\nd: 1e3\ne: .inf\nf: !!str 12\ng: \"true\"\nh: 01\n");
        assert_eq!(
            docs[0].value,
            Ok(json!({"a": 31, "b": -12, "c": "on", "d": 1000.0, "e": ".inf", "f": "12", "g": "true", "h": 1}))
        );
    }

    #[test]
    fn oversized_files_are_refused() {
        let limits = YamlLimits { max_file_bytes: 10, ..YamlLimits::default() };
        assert!(check_size(11, &limits).unwrap_err().to_string().contains("over the 10 byte limit"));
    }
}
