//! Markdown of a template's output ("Next steps") as HTML: CommonMark with
//! tables and strikethrough, raw HTML shown as text, links and images only
//! to http(s), mailto and this site, images shown as links (a template must
//! not make the reader's browser fetch anything).

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

/// Longest Markdown rendered; beyond it the text is cut.
const MAX_MARKDOWN: usize = 64 * 1024;

/// Whether a link target is safe to follow: http(s), mailto, or a path,
/// fragment or query of this site (never `javascript:`, `data:`, `//host`).
pub(super) fn safe_url(url: &str) -> bool {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:") {
        return true;
    }
    if url.starts_with("//") || url.starts_with("/\\") {
        return false;
    }
    // A relative reference has no scheme before its first `/`, `?` or `#`.
    let head = url.split(['/', '?', '#']).next().unwrap_or("");
    !head.contains(':')
}

/// `source` rendered to HTML that is safe to insert as is.
pub(super) fn to_html(source: &str) -> String {
    let mut end = source.len().min(MAX_MARKDOWN);
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let source = &source[..end];
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // Link and image targets that are not safe become plain text: the
    // events between their start and end stay, the tags go.
    let mut dropped: Vec<bool> = Vec::new();
    let events = Parser::new_ext(source, options).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            let safe = safe_url(&dest_url);
            dropped.push(!safe);
            safe.then_some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        Event::End(TagEnd::Link) => {
            let was_dropped = dropped.pop().unwrap_or(false);
            (!was_dropped).then_some(Event::End(TagEnd::Link))
        }
        Event::Start(Tag::Image { dest_url, title, id, .. }) => {
            let safe = safe_url(&dest_url);
            dropped.push(!safe);
            safe.then_some(Event::Start(Tag::Link { link_type: LinkType::Inline, dest_url, title, id }))
        }
        Event::End(TagEnd::Image) => {
            let was_dropped = dropped.pop().unwrap_or(false);
            (!was_dropped).then_some(Event::End(TagEnd::Link))
        }
        Event::Start(Tag::HtmlBlock) | Event::End(TagEnd::HtmlBlock) => None,
        other => Some(other),
    });
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown_and_escapes_raw_html() {
        let html = to_html("## Next steps\n\n1. Run `make`\n2. Open [the repo](https://example.com/r)\n\n<script>alert(1)</script>\n\n**bold** <b onclick=x>hi</b>");
        assert!(html.contains("<h2>Next steps</h2>"), "{html}");
        assert!(html.contains("<ol>") && html.contains("<code>make</code>"), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/r">the repo</a>"#), "{html}");
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script"), "{html}");
        assert!(html.contains("&lt;b onclick=x&gt;") && html.contains("<strong>bold</strong>"), "{html}");
    }

    #[test]
    fn unsafe_links_become_text_and_images_links() {
        let html =
            to_html("[x](javascript:alert(1)) [y](//evil.example/) ![logo](https://example.com/l.png) [z](/catalog)");
        assert!(!html.contains("javascript:") && !html.contains("//evil"), "{html}");
        assert!(html.contains("<p>x y "), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/l.png">logo</a>"#) && !html.contains("<img"), "{html}");
        assert!(html.contains(r#"<a href="/catalog">z</a>"#), "{html}");
    }

    #[test]
    fn safe_urls() {
        for ok in ["https://a", "http://a", "mailto:a@b", "/x", "x/y", "#top", "?q=1", "docs/a:b"] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in ["javascript:x", "JaVaScRiPt:x", "data:text/html,x", "//evil", "/\\evil", "vbscript:x"] {
            assert!(!safe_url(bad), "{bad}");
        }
    }
}
