//! Minimal highlighting for API definitions (YAML or JSON): keys and
//! comments become separate tokens; the template escapes and wraps them.

use serde::Serialize;

/// One line of a definition: `lead`, then either a `comment`, or an
/// optional `key` followed by the `rest` of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Line {
    /// Indentation (and a list dash) before the token.
    lead: String,
    /// The whole line after `lead` when it is a comment.
    comment: Option<String>,
    /// A leading mapping key (without its colon).
    key: Option<String>,
    /// What follows the key, or the whole line when there is no key.
    rest: String,
}

pub(super) fn lines(text: &str) -> Vec<Line> {
    text.lines().map(line).collect()
}

fn line(text: &str) -> Line {
    let trimmed = text.trim_start();
    let indent = &text[..text.len() - trimmed.len()];
    if trimmed.starts_with('#') || trimmed.starts_with("//") {
        return Line { lead: indent.to_string(), comment: Some(trimmed.to_string()), key: None, rest: String::new() };
    }
    let (dash, body) = match trimmed.strip_prefix("- ") {
        Some(rest) => ("- ", rest),
        None => ("", trimmed),
    };
    if let Some(colon) = key_end(body) {
        let (key, rest) = body.split_at(colon);
        return Line {
            lead: format!("{indent}{dash}"),
            comment: None,
            key: Some(key.to_string()),
            rest: rest.to_string(),
        };
    }
    Line { lead: String::new(), comment: None, key: None, rest: text.to_string() }
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

    fn keyed(lead: &str, key: &str, rest: &str) -> Line {
        Line { lead: lead.into(), comment: None, key: Some(key.into()), rest: rest.into() }
    }

    #[test]
    fn keys_and_comments() {
        assert_eq!(line("  title: Pay"), keyed("  ", "title", ": Pay"));
        assert_eq!(
            line("# note"),
            Line { lead: "".into(), comment: Some("# note".into()), key: None, rest: "".into() }
        );
        assert_eq!(line("  - name: x"), keyed("  - ", "name", ": x"));
        assert_eq!(line(r#"  "paths": {"#), keyed("  ", "\"paths\"", ": {"));
        assert_eq!(line("url: http://x"), keyed("", "url", ": http://x"));
        assert_eq!(line("just text"), Line { lead: "".into(), comment: None, key: None, rest: "just text".into() });
    }
}
