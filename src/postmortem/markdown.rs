//! Authored text (written sections, status updates, notes, action items) is Markdown.
//!
//! - For the `.md` output it stays Markdown, with raw HTML neutralised (a docs site that
//!   renders the file must not run an author's `<script>`) and, inside list items, its
//!   continuation lines indented so a multi-line text stays in its item.
//! - For HTML it goes through pulldown-cmark, with raw HTML shown as text, and the result
//!   through ammonia: no scripts, no event handlers, only safe link schemes, and links
//!   that cannot reach back into the page (`rel="noopener noreferrer"`).

use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Built once: a builder allocates its tag and attribute sets.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"));
    b
});

/// Characters that can make Markdown (or HTML) out of text; a text with none of them is
/// plain, and its HTML is the text escaped.
const MARKUP: &[char] = &[
    '*', '_', '`', '[', ']', '<', '>', '&', '!', '#', '|', '~', '\\', '\n', '"', '\'',
];

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// Markdown for the `.md` output: the author's text, kept as Markdown, made safe for any
/// renderer a docs site may use: raw HTML (block or inline) and `<`/`>` in text become
/// entities, a link or image to anything but http, https or mailto becomes text, and a
/// line break typed inside a paragraph stays one (a hard break). Lines after the first are
/// indented by `indent` spaces (the width of the list marker the text sits after; 0 for a
/// section).
pub fn to_markdown(text: &str, indent: usize) -> String {
    let text = text.trim().replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut in_code = false;
    for (event, range) in Parser::new_ext(&text, options()).into_offset_iter() {
        match &event {
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            _ => {}
        }
        if range.start < last {
            continue;
        }
        let source = &text[range.clone()];
        let replacement = match &event {
            Event::Html(_) | Event::InlineHtml(_) => Some(escape_html_chars(source)),
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. })
                if !is_safe_url(dest_url) =>
            {
                Some(defuse_link(source))
            }
            Event::Text(_) if !in_code && source.contains(['<', '>']) => {
                Some(source.replace('<', "&lt;").replace('>', "&gt;"))
            }
            Event::SoftBreak => Some("  \n".to_string()),
            _ => None,
        };
        if let Some(replacement) = replacement {
            out.push_str(&text[last..range.start]);
            out.push_str(&replacement);
            last = range.end;
        }
    }
    out.push_str(&text[last..]);
    if indent == 0 {
        return out;
    }
    let pad = format!("\n{}", " ".repeat(indent));
    out.lines()
        .map(|line| if line.trim().is_empty() { "" } else { line })
        .collect::<Vec<_>>()
        .join("\n")
        .replace('\n', &pad)
        .replace(&format!("{pad}\n"), "\n\n")
}

/// Whether a link may stay a link: http, https and mailto only (what the HTML allows).
fn is_safe_url(url: &str) -> bool {
    let url = url.trim().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// A link's Markdown as plain text: its brackets escaped so it is no longer a link, and
/// angle brackets as entities so nothing in it can become HTML.
fn defuse_link(source: &str) -> String {
    source
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// A block of HTML for a section: paragraphs, lists, links, code.
pub fn to_html(text: &str) -> String {
    to_html_many(&[text]).pop().unwrap_or_default()
}

/// [`to_html`] for many texts, sanitized together: one pass of the sanitizer over all of
/// them costs far less than one pass each (it parses a whole HTML document every time).
pub fn to_html_many(texts: &[&str]) -> Vec<String> {
    let mut out = vec![String::new(); texts.len()];
    // Only written texts go through (a timeline's rows mostly have no body).
    let written: Vec<(usize, &str)> = texts
        .iter()
        .map(|t| t.trim())
        .enumerate()
        .filter(|(_, t)| !t.is_empty())
        .collect();
    if written.is_empty() {
        return out;
    }
    let mut joined = String::new();
    for (n, (_, text)) in written.iter().enumerate() {
        if n > 0 {
            joined.push(SEPARATOR);
        }
        let text = text.replace(SEPARATOR, "");
        let text = text.as_str();
        if is_plain(text) {
            joined.push_str("<p>");
            joined.push_str(text);
            joined.push_str("</p>\n");
            continue;
        }
        pulldown_cmark::html::push_html(&mut joined, safe_events(text));
    }
    // Every piece is whole HTML from pulldown-cmark (its tags balanced, its text escaped),
    // and text keeps the separator, so splitting after sanitizing gives each piece back.
    let clean = sanitize(&joined);
    let pieces: Vec<&str> = clean.split(SEPARATOR).collect();
    if pieces.len() != written.len() {
        tracing::warn!(
            "sanitizing authored text in one pass lost a boundary; doing it text by text"
        );
        return texts.iter().map(|t| one_by_one(t)).collect();
    }
    for ((i, _), piece) in written.iter().zip(pieces) {
        out[*i] = piece.to_string();
    }
    out
}

/// [`to_html`] of one text, sanitized on its own (the fallback of [`to_html_many`]).
fn one_by_one(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, safe_events(text));
    sanitize(&html)
}

/// Containers (quotes, lists, items) nested deeper than this are flattened: a section of
/// 20,000 `>` would otherwise be 20,000 nested elements, which the sanitizer's HTML parser
/// takes seconds over.
const MAX_DEPTH: usize = 16;

/// The text's Markdown events, with raw HTML turned into text and containers beyond
/// [`MAX_DEPTH`] left out (their content stays).
fn safe_events(text: &str) -> impl Iterator<Item = Event<'_>> {
    let mut open: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    Parser::new_ext(text, options()).filter_map(move |e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Some(Event::Text(h)),
        // A line break typed inside a paragraph is kept.
        Event::SoftBreak => Some(Event::HardBreak),
        Event::Start(tag) => {
            let container = is_container(&tag.to_end());
            let keep = !container || depth < MAX_DEPTH;
            depth += usize::from(container);
            open.push(keep);
            keep.then_some(Event::Start(tag))
        }
        Event::End(tag) => {
            let container = is_container(&tag);
            depth = depth.saturating_sub(usize::from(container));
            open.pop().unwrap_or(true).then_some(Event::End(tag))
        }
        e => Some(e),
    })
}

fn is_container(tag: &pulldown_cmark::TagEnd) -> bool {
    matches!(
        tag,
        pulldown_cmark::TagEnd::BlockQuote(_)
            | pulldown_cmark::TagEnd::List(_)
            | pulldown_cmark::TagEnd::Item
    )
}

/// Between texts sanitized together: a private-use character no one types, and which the
/// text pipeline would keep out of stored text anyway.
const SEPARATOR: char = '\u{F8FF}';

/// HTML for a text that sits inside a line (a timeline row, an action item): a single
/// paragraph loses its `<p>`; anything longer keeps its blocks.
pub fn to_inline_html(text: &str) -> String {
    to_inline_html_many(&[text]).pop().unwrap_or_default()
}

/// [`to_inline_html`] for many texts at once (see [`to_html_many`]).
pub fn to_inline_html_many(texts: &[&str]) -> Vec<String> {
    to_html_many(texts)
        .into_iter()
        .map(unwrap_paragraph)
        .collect()
}

fn unwrap_paragraph(html: String) -> String {
    let trimmed = html.trim_end();
    match trimmed
        .strip_prefix("<p>")
        .and_then(|s| s.strip_suffix("</p>"))
    {
        Some(inner) if !inner.contains("<p>") => inner.to_string(),
        _ => html,
    }
}

fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// No markup at all, and nothing a list or a numbered item could start with.
fn is_plain(text: &str) -> bool {
    !text.contains(MARKUP)
        && !text.starts_with(['-', '+', '='])
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && !text.contains("://")
        && !text.contains('@')
}

fn escape_html_chars(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a docs site's renderer could turn into HTML or a link: nothing from a hostile
    /// text survives in the `.md` (checked with pulldown-cmark, a CommonMark renderer).
    #[test]
    fn the_markdown_output_carries_no_live_html_or_unsafe_link() {
        let hostile = "A [z](data:x,<script>alert(61)</script>) B [x](javascript:alert(3)) \
                       ![i](JaVaScRiPt:alert(4)) <javascript:alert(5)> [rel](/admin) \
                       \\<script>alert(67)</script> ok [fine](https://example.com)";
        let md = to_markdown(hostile, 0);
        let mut live = Vec::new();
        for event in Parser::new_ext(&md, options()) {
            match event {
                Event::Html(h) | Event::InlineHtml(h) => live.push(h.to_string()),
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    live.push(dest_url.to_string())
                }
                _ => {}
            }
        }
        assert_eq!(live, ["https://example.com"], "{md}");
        assert!(!md.contains("<script"), "{md}");
    }

    #[test]
    fn a_typed_line_break_stays_a_line_break() {
        let text = "Line one\nLine two\nLine three";
        assert_eq!(
            to_html(text),
            "<p>Line one<br>\nLine two<br>\nLine three</p>\n"
        );
        let md = to_markdown(text, 0);
        assert_eq!(md, "Line one  \nLine two  \nLine three");
        assert_eq!(
            to_markdown(text, 2),
            "Line one  \n  Line two  \n  Line three"
        );
    }

    #[test]
    fn lists_links_and_code_render_and_scripts_do_not() {
        let text = "Orders were delayed:\n\n- ~12,000 orders\n- See [dashboard](https://grafana.example/d/1) and `pool_active`\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)>";
        let html = to_html(text);
        assert!(html.contains("<li>~12,000 orders</li>"), "{html}");
        assert!(
            html.contains(
                r#"<a href="https://grafana.example/d/1" rel="noopener noreferrer">dashboard</a>"#
            ),
            "{html}"
        );
        assert!(html.contains("<code>pool_active</code>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<img"), "raw HTML is shown as text: {html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn markdown_output_keeps_the_markdown_and_defuses_raw_html() {
        let text = "- one\n- two with `code <b>`\n\n<script>alert(1)</script>";
        let md = to_markdown(text, 0);
        assert!(
            md.starts_with("- one\n- two with `code <b>`"),
            "code spans untouched: {md}"
        );
        assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    }

    #[test]
    fn continuation_lines_stay_in_their_list_item() {
        assert_eq!(
            to_markdown("first line\nsecond\n\nnext paragraph", 2),
            "first line  \n  second\n\n  next paragraph",
            "the typed line break is a hard break; the paragraph stays in the item"
        );
    }

    #[test]
    fn a_one_paragraph_text_renders_inline() {
        assert_eq!(
            to_inline_html("Rolled back **v42**"),
            "Rolled back <strong>v42</strong>"
        );
        assert!(to_inline_html("a\n\nb").starts_with("<p>a</p>"));
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// A section at the 20,000-character limit built to nest as deep as it can, or to make
    /// the parsers backtrack, renders (no stack overflow), stays sanitized, and nests no
    /// deeper than `MAX_DEPTH` (20,000 nested quotes took the sanitizer 12 s before).
    #[test]
    fn deep_nesting_and_long_runs_render() {
        for text in [
            ">".repeat(20_000),
            "- ".repeat(10_000),
            "*".repeat(20_000),
            "[".repeat(20_000),
            format!("{}x{}", "<b>".repeat(5_000), "</b>".repeat(1_000)),
            "`".repeat(20_000),
        ] {
            let html = to_html(&text);
            assert!(!html.contains("<b>"), "raw HTML stays text");
            assert!(
                html.matches("<blockquote>").count() <= 16 && html.matches("<ul>").count() <= 16,
                "containers are flattened past 16 levels"
            );
            let md = to_markdown(&text, 2);
            assert!(!md.contains("<b>"));
        }
    }
}
