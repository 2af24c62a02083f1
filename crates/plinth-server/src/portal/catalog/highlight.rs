//! Minimal highlighting for API definitions (YAML or JSON): keys and
//! comments become separate tokens; the template escapes and wraps them.

use serde_json::{json, Value};

/// One line as `{lead, key, rest}` or `{comment}`.
pub(super) fn lines(text: &str) -> Vec<Value> {
    text.lines().map(line).collect()
}

fn line(text: &str) -> Value {
    let trimmed = text.trim_start();
    let indent = &text[..text.len() - trimmed.len()];
    if trimmed.starts_with('#') || trimmed.starts_with("//") {
        return json!({"lead": indent, "comment": trimmed});
    }
    let (dash, body) = match trimmed.strip_prefix("- ") {
        Some(rest) => ("- ", rest),
        None => ("", trimmed),
    };
    if let Some(colon) = key_end(body) {
        let (key, rest) = body.split_at(colon);
        return json!({"lead": format!("{indent}{dash}"), "key": key, "rest": rest});
    }
    json!({"lead": "", "rest": text})
}

/// Where a leading `key:` ends (the colon's index), for plain or quoted keys.
fn key_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let end = if let Some(quote @ (b'"' | b'\'')) = bytes.first().copied() {
        let close = body[1..].find(quote as char)? + 1;
        close + 1
    } else {
        body.find(':')?
    };
    let after = body.get(end..)?;
    let key = &body[..end];
    if key.is_empty() || !after.starts_with(':') || key.contains(' ') && !key.starts_with(['"', '\'']) {
        return None;
    }
    match after.as_bytes().get(1) {
        None | Some(b' ') | Some(b'\t') => Some(end),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_comments() {
        assert_eq!(line("  title: Pay"), json!({"lead": "  ", "key": "title", "rest": ": Pay"}));
        assert_eq!(line("# note"), json!({"lead": "", "comment": "# note"}));
        assert_eq!(line("  - name: x"), json!({"lead": "  - ", "key": "name", "rest": ": x"}));
        assert_eq!(line(r#"  "paths": {"#), json!({"lead": "  ", "key": "\"paths\"", "rest": ": {"}));
        assert_eq!(line("url: http://x"), json!({"lead": "", "key": "url", "rest": ": http://x"}));
        assert_eq!(line("just text"), json!({"lead": "", "rest": "just text"}));
    }
}
