//! Markdown as HTML (pulldown-cmark), the one renderer of the portal: an
//! entity's docs pages (the Docs tab) and a template run's output ("Next
//! steps"). Both share the bound on input size, raw HTML shown as text and
//! one URL check ([`safe_url`]); what links and images may lead to is the
//! caller's [`Links`] policy:
//!
//! - [`Links::Docs`]: headings get anchors and a table of contents, fenced
//!   code is highlighted, relative links to pages open the Docs tab and
//!   relative images are served by the entity page's `docs_asset` route;
//! - [`Links::Inert`]: the text never makes the reader's browser fetch
//!   anything: links only to http(s), mailto and this site, images shown as
//!   links to their source.
//!
//! A link or image whose target the policy refuses becomes its text.

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};
use std::collections::HashMap;

/// Longest Markdown rendered (the largest docs page read); beyond it the
/// text is cut.
const MAX_MARKDOWN: usize = plinth_app::catalog::docs::MAX_PAGE_BYTES as usize;

/// What the links and images of a text may lead to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Links<'a> {
    /// A page of an entity's docs: `entity_href` is the entity page (`?docs=`
    /// and `?docs_asset=` are added), `page` the page's own path in the
    /// docs directory, against which relative links and images resolve.
    Docs { entity_href: &'a str, page: &'a str },
    /// Text written by someone else (a template's output): links to
    /// http(s), mailto and this site stay, images become links.
    Inert,
}

/// A rendered text: its HTML and, for docs, its headings (level, text,
/// anchor) for a table of contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rendered {
    pub(super) html: String,
    pub(super) headings: Vec<(u8, String, String)>,
}

/// Whether a URL is safe to follow: http(s), mailto, or a path, fragment or
/// query of this site (never `javascript:`, `data:`, `//host`).
pub(super) fn safe_url(url: &str) -> bool {
    let url = url.trim();
    if external(url) {
        return true;
    }
    if url.starts_with("//") || url.starts_with("/\\") {
        return false;
    }
    // A relative reference has no scheme before its first `/`, `?` or `#`.
    let head = url.split(['/', '?', '#']).next().unwrap_or("");
    !head.contains(':')
}

/// http(s) or mailto.
fn external(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

/// What a link or image becomes.
enum Rewrite {
    Link(String),
    Image(String),
    Text,
}

impl Links<'_> {
    fn link(&self, dest: &str) -> Rewrite {
        if !safe_url(dest) {
            return Rewrite::Text;
        }
        match *self {
            Links::Inert => Rewrite::Link(dest.to_string()),
            Links::Docs { entity_href, page } => {
                docs_link(entity_href, page, dest.trim()).map_or(Rewrite::Text, Rewrite::Link)
            }
        }
    }

    fn image(&self, src: &str) -> Rewrite {
        if !safe_url(src) {
            return Rewrite::Text;
        }
        match *self {
            Links::Inert => Rewrite::Link(src.to_string()),
            Links::Docs { entity_href, page } => {
                let src = src.trim();
                if external(src) {
                    return if src.to_ascii_lowercase().starts_with("https://") {
                        Rewrite::Image(src.to_string())
                    } else {
                        Rewrite::Text
                    };
                }
                resolve(page, src.split(['?', '#']).next().unwrap_or(""))
                    .filter(|resolved| plinth_app::catalog::docs::image_type(resolved).is_some())
                    .map_or(Rewrite::Text, |resolved| Rewrite::Image(asset_href(entity_href, &resolved)))
            }
        }
    }

    fn docs(&self) -> bool {
        matches!(self, Links::Docs { .. })
    }
}

/// The Docs tab showing `path`, at `fragment`'s heading.
fn page_href(entity_href: &str, path: &str, fragment: Option<&str>) -> String {
    let mut href = format!("{entity_href}?{}", super::query(&[("docs", path)]));
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        href.push('#');
        href.push_str(&slug(f));
    }
    href
}

fn asset_href(entity_href: &str, path: &str) -> String {
    format!("{entity_href}?{}", super::query(&[("docs_asset", path)]))
}

/// A safe link written in docs `page`, rewritten: external links as they
/// are, fragments to the heading's anchor, pages to the Docs tab, images to
/// the asset route; `None` for anything else (paths outside the docs, other
/// files).
fn docs_link(entity_href: &str, page: &str, dest: &str) -> Option<String> {
    if let Some(fragment) = dest.strip_prefix('#') {
        return Some(format!("#{}", slug(fragment)));
    }
    if external(dest) {
        return Some(dest.to_string());
    }
    let (path, fragment) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() {
        return Some(page_href(entity_href, page, fragment));
    }
    let mut resolved = resolve(page, path)?;
    if resolved.is_empty() || dest.ends_with('/') {
        resolved = if resolved.is_empty() { "index.md".to_string() } else { format!("{resolved}/index.md") };
    }
    let lower = resolved.to_ascii_lowercase();
    if lower.ends_with(".md") || lower.ends_with(".markdown") {
        Some(page_href(entity_href, &resolved, fragment))
    } else if plinth_app::catalog::docs::image_type(&resolved).is_some() {
        Some(asset_href(entity_href, &resolved))
    } else {
        None
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

/// Comments and quoted strings become spans.
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

/// `markdown` (cut at [`MAX_MARKDOWN`]) as HTML that is safe to insert as
/// is, with links and images as `links` allows.
pub(super) fn render(markdown: &str, links: Links<'_>) -> Rendered {
    let mut end = markdown.len().min(MAX_MARKDOWN);
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    let markdown = &markdown[..end];
    let mut options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    if links.docs() {
        options |= Options::ENABLE_TASKLISTS | Options::ENABLE_FOOTNOTES | Options::ENABLE_HEADING_ATTRIBUTES;
    }
    let mut filter = Filter { links, open: Vec::new() };
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut headings = Vec::new();
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut parser = Parser::new_ext(markdown, options);
    while let Some(event) = parser.next() {
        match event {
            Event::Start(Tag::Heading { level, .. }) if links.docs() => {
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
                events.extend(inner.into_iter().filter_map(|e| filter.event(e)));
                events.push(Event::Html(CowStr::from(format!(
                    "<a class=\"anchor\" href=\"#{id}\" aria-label=\"Link to this section\">#</a>"
                ))));
                events.push(Event::End(TagEnd::Heading(level)));
            }
            Event::Start(Tag::CodeBlock(kind)) if links.docs() => {
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
            other => events.extend(filter.event(other)),
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

/// Raw HTML becomes text; links and images are rewritten as the policy
/// says, or dropped: the events between their start and end stay (as
/// text), the tags go.
struct Filter<'l> {
    links: Links<'l>,
    /// For each open link or image: the end tag to write, `None` when its
    /// tags were dropped.
    open: Vec<Option<TagEnd>>,
}

impl Filter<'_> {
    fn event<'a>(&mut self, event: Event<'a>) -> Option<Event<'a>> {
        match event {
            Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
            Event::Start(Tag::HtmlBlock) | Event::End(TagEnd::HtmlBlock) => None,
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                let rewritten = self.links.link(&dest_url);
                self.open(rewritten, link_type, title, id)
            }
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                let rewritten = self.links.image(&dest_url);
                // An image shown as a link is an inline link to its source.
                let link_type = if matches!(rewritten, Rewrite::Link(_)) { LinkType::Inline } else { link_type };
                self.open(rewritten, link_type, title, id)
            }
            Event::End(TagEnd::Link | TagEnd::Image) => self.open.pop().flatten().map(Event::End),
            // Attributes from `{#id .class key=value}` are not passed through.
            Event::Start(Tag::Heading { level, id, .. }) => Some(Event::Start(Tag::Heading {
                level,
                id: id.filter(|_| self.links.docs()),
                classes: Vec::new(),
                attrs: Vec::new(),
            })),
            other => Some(other),
        }
    }

    fn open<'a>(
        &mut self,
        rewritten: Rewrite,
        link_type: LinkType,
        title: CowStr<'a>,
        id: CowStr<'a>,
    ) -> Option<Event<'a>> {
        let (end, start) = match rewritten {
            Rewrite::Link(dest) => {
                (Some(TagEnd::Link), Some(Tag::Link { link_type, dest_url: CowStr::from(dest), title, id }))
            }
            Rewrite::Image(src) => {
                (Some(TagEnd::Image), Some(Tag::Image { link_type, dest_url: CowStr::from(src), title, id }))
            }
            Rewrite::Text => (None, None),
        };
        self.open.push(end);
        start.map(Event::Start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HREF: &str = "/catalog/default/component/auth-service";

    fn page(markdown: &str, page: &str) -> Rendered {
        render(markdown, Links::Docs { entity_href: HREF, page })
    }

    fn inert(markdown: &str) -> String {
        let rendered = render(markdown, Links::Inert);
        assert!(rendered.headings.is_empty(), "{rendered:?}");
        rendered.html
    }

    // ---- docs pages

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
        // Refused links and images keep their text and lose their tags.
        assert!(html.contains("</a> c d <a"), "escaping link dropped: {html}");
        assert!(!html.contains(r#"href="""#) && !html.contains(r#"src="""#), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains(r#"href="https://example.com/x""#), "{html}");
        assert!(html.contains(r##"href="#top""##), "{html}");
        assert!(
            html.contains(r#"src="/catalog/default/component/auth-service?docs_asset=images%2Fdiagram.svg""#),
            "{html}"
        );
        assert!(html.contains(r#"alt="img" /> bad</p>"#), "a refused image is its alt text: {html}");
        assert_eq!(html.matches("<img").count(), 1, "{html}");
    }

    #[test]
    fn docs_refuse_scripts_other_hosts_and_data_images() {
        let out = page(
            "[js](JavaScript:alert(1)) [host](//evil.example/x.md) [slash](/\\evil.example/x.md) [abs](/etc/a.md) \
             [q](?x=1#Intro) [dir](sub/) [file](notes.txt) ![data](data:image/png;base64,AAAA) \
             ![remote](https://cdn.example/a.png) ![plain](http://cdn.example/a.png) ![host](//evil.example/a.png) \
             ![other](diagram.pdf)",
            "guides/concepts.md",
        );
        let html = &out.html;
        for refused in ["javascript", "JavaScript", "evil", "/etc/", "data:", "http://cdn", "notes.txt", "pdf"] {
            assert!(!html.contains(refused), "{refused}: {html}");
        }
        assert!(
            html.contains(r##"href="/catalog/default/component/auth-service?docs=guides%2Fconcepts.md#intro""##),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/catalog/default/component/auth-service?docs=guides%2Fsub%2Findex.md""#),
            "{html}"
        );
        assert!(html.contains(r#"<img src="https://cdn.example/a.png" alt="remote" />"#), "{html}");
        assert_eq!(html.matches("<img").count(), 1, "{html}");
        assert_eq!(html.matches("<a ").count(), 2, "{html}");
        // Refused links and images are their text.
        assert!(html.starts_with("<p>js host slash abs <a "), "{html}");
        assert!(html.contains("</a> file data <img ") && html.contains(" /> plain host other</p>"), "{html}");
    }

    #[test]
    fn raw_html_is_text() {
        let out = page("<script>alert(1)</script>\n\nHi <img src=x onerror=alert(1)> there\n", "index.md");
        assert!(!out.html.contains("<script"), "{}", out.html);
        assert!(!out.html.contains("<img"), "{}", out.html);
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
    }

    #[test]
    fn heading_attributes_are_not_passed_through() {
        let out = page("## Setup {#custom .evil onclick=x}\n", "index.md");
        assert!(out.html.starts_with(r#"<h2 id="setup">Setup<a class="anchor""#), "{}", out.html);
        assert!(
            !out.html.contains("evil") && !out.html.contains("onclick") && !out.html.contains("custom"),
            "{}",
            out.html
        );
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

    // ---- a template's output

    #[test]
    fn renders_markdown_and_escapes_raw_html() {
        let html = inert("## Next steps\n\n1. Run `make`\n2. Open [the repo](https://example.com/r)\n\n<script>alert(1)</script>\n\n**bold** <b onclick=x>hi</b>");
        assert!(html.contains("<h2>Next steps</h2>"), "{html}");
        assert!(html.contains("<ol>") && html.contains("<code>make</code>"), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/r">the repo</a>"#), "{html}");
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script"), "{html}");
        assert!(html.contains("&lt;b onclick=x&gt;") && html.contains("<strong>bold</strong>"), "{html}");
    }

    #[test]
    fn unsafe_links_become_text_and_images_links() {
        let html =
            inert("[x](javascript:alert(1)) [y](//evil.example/) ![logo](https://example.com/l.png) [z](/catalog)");
        assert!(!html.contains("javascript:") && !html.contains("//evil"), "{html}");
        assert!(html.contains("<p>x y "), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/l.png">logo</a>"#) && !html.contains("<img"), "{html}");
        assert!(html.contains(r#"<a href="/catalog">z</a>"#), "{html}");
    }

    #[test]
    fn output_never_fetches_images() {
        let html = inert(
            "![a](https://example.com/a.png) ![b](data:image/png;base64,AAAA) ![c](diagram.svg) \
             ![d](//evil.example/d.png) [![e](https://example.com/e.png)](https://example.com/)",
        );
        assert!(!html.contains("<img") && !html.contains("src="), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/a.png">a</a>"#), "{html}");
        assert!(html.contains(" b "), "a data: image is text: {html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(html.contains(r#"<a href="diagram.svg">c</a>"#), "a relative image is a link on this site: {html}");
        assert!(html.contains(" d ") && !html.contains("evil"), "{html}");
        assert!(html.contains("<a href=\"https://example.com/e.png\">e</a>"), "{html}");
    }

    #[test]
    fn output_has_no_anchors_highlighting_or_footnotes() {
        let html = inert("# Title {#x}\n\n```sh\n# c\n```\n\nA[^1]\n\n[^1]: note\n\n- [ ] task\n");
        assert!(html.contains("<h1>Title {#x}</h1>"), "{html}");
        assert!(html.contains("<pre><code class=\"language-sh\"># c\n</code></pre>"), "{html}");
        assert!(!html.contains("footnote") && !html.contains("checkbox"), "{html}");
    }

    #[test]
    fn input_is_bounded() {
        let long = format!("{}é tail", "a".repeat(MAX_MARKDOWN - 1));
        let html = inert(&long);
        assert!(!html.contains("tail") && !html.contains('é'), "cut at a character boundary");
        assert!(html.len() >= MAX_MARKDOWN - 1);
        let out = page(&long, "index.md");
        assert!(!out.html.contains("tail"));
    }

    #[test]
    fn safe_urls() {
        for ok in ["https://a", "http://a", "mailto:a@b", "/x", "x/y", "#top", "?q=1", "docs/a:b", " HTTPS://a"] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in
            ["javascript:x", "JaVaScRiPt:x", " javascript:x", "data:text/html,x", "//evil", "/\\evil", "vbscript:x"]
        {
            assert!(!safe_url(bad), "{bad}");
        }
    }
}
