//! Markdown of an entity's docs as HTML (pulldown-cmark): headings get
//! anchors, fenced code is highlighted, relative links to pages open the
//! Docs tab and relative images are served from the docs directory. Raw
//! HTML is shown as text, never passed through, and only http(s), mailto
//! and in-page links stay links.

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::collections::HashMap;

/// A rendered page: its HTML and its table of contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rendered {
    pub(super) html: String,
    pub(super) headings: Vec<(u8, String, String)>,
}

/// Where links of one page lead: the entity page URL (`?docs=` is added)
/// and the page's own path in the docs directory.
pub(super) struct Target<'a> {
    pub(super) entity_href: &'a str,
    pub(super) page: &'a str,
}

impl Target<'_> {
    fn page_href(&self, path: &str, fragment: Option<&str>) -> String {
        let mut href = format!("{}?{}", self.entity_href, super::super::query(&[("docs", path)]));
        if let Some(f) = fragment.filter(|f| !f.is_empty()) {
            href.push('#');
            href.push_str(&slug(f));
        }
        href
    }

    fn asset_href(&self, path: &str) -> String {
        format!("{}?{}", self.entity_href, super::super::query(&[("docs_asset", path)]))
    }

    /// A link as written in the page, rewritten; `None` drops the link.
    fn link(&self, dest: &str) -> Option<String> {
        let dest = dest.trim();
        if let Some(fragment) = dest.strip_prefix('#') {
            return Some(format!("#{}", slug(fragment)));
        }
        if has_scheme(dest) {
            let lower = dest.to_ascii_lowercase();
            let safe = lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:");
            return safe.then(|| dest.to_string());
        }
        if dest.starts_with("//") {
            return None;
        }
        let (path, fragment) = match dest.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (dest, None),
        };
        let path = path.split('?').next().unwrap_or("");
        if path.is_empty() {
            return Some(self.page_href(self.page, fragment));
        }
        let mut resolved = resolve(self.page, path)?;
        if resolved.is_empty() || dest.ends_with('/') {
            resolved = if resolved.is_empty() { "index.md".to_string() } else { format!("{resolved}/index.md") };
        }
        let lower = resolved.to_ascii_lowercase();
        if lower.ends_with(".md") || lower.ends_with(".markdown") {
            Some(self.page_href(&resolved, fragment))
        } else if plinth_app::catalog::docs::image_type(&resolved).is_some() {
            Some(self.asset_href(&resolved))
        } else {
            None
        }
    }

    fn image(&self, src: &str) -> Option<String> {
        let src = src.trim();
        if has_scheme(src) || src.starts_with("//") {
            return src.to_ascii_lowercase().starts_with("https://").then(|| src.to_string());
        }
        let resolved = resolve(self.page, src.split(['?', '#']).next().unwrap_or(""))?;
        plinth_app::catalog::docs::image_type(&resolved).map(|_| self.asset_href(&resolved))
    }
}

fn has_scheme(dest: &str) -> bool {
    match dest.find(':') {
        Some(colon) => {
            let scheme = &dest[..colon];
            !scheme.is_empty()
                && !scheme.contains('/')
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// `target` written in `page` (both relative to the docs root), as a path
/// relative to the docs root; `None` when it leaves the root or is absolute.
pub(super) fn resolve(page: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\\') || target.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = page.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// A heading's anchor: lower case, words joined by `-`.
pub(super) fn slug(text: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    if out.is_empty() {
        "section".to_string()
    } else {
        out
    }
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A fenced code block as highlighted HTML.
pub(super) fn code_block(lang: &str, code: &str) -> String {
    let lang: String = lang.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '+').collect();
    let mut out = String::with_capacity(code.len() + 64);
    out.push_str("<pre class=\"code\" tabindex=\"0\"");
    if !lang.is_empty() {
        out.push_str(" data-lang=\"");
        out.push_str(&lang);
        out.push('"');
    }
    out.push_str("><code>");
    let comment = match lang.to_ascii_lowercase().as_str() {
        "sh" | "bash" | "shell" | "console" | "yaml" | "yml" | "python" | "py" | "toml" | "dockerfile" => Some("#"),
        "sql" => Some("--"),
        "" | "text" | "txt" | "json" => None,
        _ => Some("//"),
    };
    for (i, line) in code.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        highlight_line(line, comment, &mut out);
    }
    out.push_str("</code></pre>\n");
    out
}

/// Comments, strings and `key:` prefixes become spans.
fn highlight_line(line: &str, comment: Option<&str>, out: &mut String) {
    let trimmed = line.trim_start();
    if let Some(marker) = comment {
        if trimmed.starts_with(marker) {
            out.push_str("<span class=\"tok-c\">");
            escape(line, out);
            out.push_str("</span>");
            return;
        }
    }
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'']) {
        let quote = rest.as_bytes()[start] as char;
        let Some(len) = rest[start + 1..].find(quote) else { break };
        escape(&rest[..start], out);
        out.push_str("<span class=\"tok-s\">");
        escape(&rest[start..start + len + 2], out);
        out.push_str("</span>");
        rest = &rest[start + len + 2..];
    }
    escape(rest, out);
}

/// Renders `markdown` for the Docs tab.
pub(super) fn render(markdown: &str, target: &Target<'_>) -> Rendered {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut headings = Vec::new();
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut parser = Parser::new_ext(markdown, options);
    while let Some(event) = parser.next() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                let mut inner = Vec::new();
                let mut text = String::new();
                for event in parser.by_ref() {
                    match event {
                        Event::End(TagEnd::Heading(_)) => break,
                        Event::Text(ref t) | Event::Code(ref t) => {
                            text.push_str(t);
                            inner.push(event);
                        }
                        other => inner.push(other),
                    }
                }
                let base = slug(&text);
                let n = used.entry(base.clone()).or_insert(0);
                let id = if *n == 0 { base.clone() } else { format!("{base}-{n}") };
                *n += 1;
                headings.push((heading_number(level), text, id.clone()));
                events.push(Event::Start(Tag::Heading {
                    level,
                    id: Some(CowStr::from(id.clone())),
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
                events.extend(inner.into_iter().map(|e| safe_event(e, target)));
                events.push(Event::Html(CowStr::from(format!(
                    "<a class=\"anchor\" href=\"#{id}\" aria-label=\"Link to this section\">#</a>"
                ))));
                events.push(Event::End(TagEnd::Heading(level)));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match &kind {
                    CodeBlockKind::Fenced(info) => info.split_whitespace().next().unwrap_or("").to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let mut code = String::new();
                for event in parser.by_ref() {
                    match event {
                        Event::End(TagEnd::CodeBlock) => break,
                        Event::Text(t) => code.push_str(&t),
                        _ => {}
                    }
                }
                events.push(Event::Html(CowStr::from(code_block(&lang, &code))));
            }
            other => events.push(safe_event(other, target)),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    Rendered { html, headings }
}

fn heading_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Raw HTML becomes text; links and images are rewritten or dropped.
fn safe_event<'a>(event: Event<'a>, target: &Target<'_>) -> Event<'a> {
    match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            let dest = target.link(&dest_url).unwrap_or_default();
            Event::Start(Tag::Link { link_type, dest_url: CowStr::from(dest), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            let dest = target.image(&dest_url).unwrap_or_default();
            Event::Start(Tag::Image { link_type, dest_url: CowStr::from(dest), title, id })
        }
        // Attributes from `{#id .class key=value}` are not passed through.
        Event::Start(Tag::Heading { level, id, .. }) => {
            Event::Start(Tag::Heading { level, id, classes: Vec::new(), attrs: Vec::new() })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HREF: &str = "/catalog/default/component/auth-service";

    fn page(markdown: &str, page: &str) -> Rendered {
        render(markdown, &Target { entity_href: HREF, page })
    }

    #[test]
    fn headings_get_unique_anchors() {
        let out = page("# Auth Service\n\n## Token lifecycle\n\n## Token lifecycle\n", "index.md");
        assert!(
            out.html.contains(r##"<h2 id="token-lifecycle">Token lifecycle<a class="anchor" href="#token-lifecycle""##),
            "{}",
            out.html
        );
        assert!(out.html.contains(r#"id="token-lifecycle-1""#), "{}", out.html);
        assert_eq!(out.headings[0], (1, "Auth Service".to_string(), "auth-service".to_string()));
    }

    #[test]
    fn relative_links_and_images_stay_in_the_docs() {
        let out = page(
            "[a](architecture.md#request-path) [b](../index.md) [c](../../etc/passwd.md) [d](javascript:alert(1)) \
             [e](https://example.com/x) [f](#Top) ![img](../images/diagram.svg) ![bad](/etc/x.png)",
            "guides/concepts.md",
        );
        let html = &out.html;
        assert!(
            html.contains(
                r#"href="/catalog/default/component/auth-service?docs=guides%2Farchitecture.md#request-path""#
            ),
            "{html}"
        );
        assert!(html.contains(r#"href="/catalog/default/component/auth-service?docs=index.md""#), "{html}");
        assert!(html.contains(r#"<a href="">c</a>"#), "escaping link dropped: {html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains(r#"href="https://example.com/x""#), "{html}");
        assert!(html.contains(r##"href="#top""##), "{html}");
        assert!(
            html.contains(r#"src="/catalog/default/component/auth-service?docs_asset=images%2Fdiagram.svg""#),
            "{html}"
        );
        assert!(html.contains(r#"<img src="" alt="bad""#), "{html}");
    }

    #[test]
    fn raw_html_is_text() {
        let out = page("<script>alert(1)</script>\n\nHi <img src=x onerror=alert(1)> there\n", "index.md");
        assert!(!out.html.contains("<script"), "{}", out.html);
        assert!(!out.html.contains("<img"), "{}", out.html);
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
    }

    #[test]
    fn code_is_highlighted_and_escaped() {
        let out = page("```sh\n# roll back\nkubectl rollout undo \"deploy/<x>\"\n```\n", "index.md");
        assert!(
            out.html.contains(
                r#"<pre class="code" tabindex="0" data-lang="sh"><code><span class="tok-c"># roll back</span>"#
            ),
            "{}",
            out.html
        );
        assert!(out.html.contains(r#"<span class="tok-s">&quot;deploy/&lt;x&gt;&quot;</span>"#), "{}", out.html);
    }

    #[test]
    fn resolve_refuses_to_leave_the_root() {
        assert_eq!(resolve("a/b.md", "../c.md").as_deref(), Some("c.md"));
        assert_eq!(resolve("a/b.md", "./d/e.md").as_deref(), Some("a/d/e.md"));
        assert_eq!(resolve("b.md", "../c.md"), None);
        assert_eq!(resolve("b.md", "/etc/c.md"), None);
        assert_eq!(slug("Token lifecycle: v2!"), "token-lifecycle-v2");
    }
}
