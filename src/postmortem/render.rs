//! Markdown and HTML rendering through the askama templates. Plain text people typed (a
//! title, a name) is escaped so it can't turn into headings or links by accident; authored
//! text (sections, updates, notes, action items) is Markdown ([`markdown`]). The HTML
//! carries the inline SVG chart ([`chart`](super::chart)). The helpers the templates call
//! are plain functions here and in [`markdown`], so the Jinja overrides
//! ([`overrides`](super::overrides)) call the very same code.

use askama::Template;

use super::markdown;
use super::view::PostmortemView;

#[derive(Template)]
#[template(path = "postmortem.md", escape = "none")]
struct Markdown<'a> {
    v: &'a PostmortemView,
}

impl Markdown<'_> {
    fn md(&self, text: &str) -> String {
        md(text)
    }

    fn authored(&self, text: &str, indent: usize) -> String {
        markdown::to_markdown(text, indent)
    }

    fn yaml(&self, text: &str) -> String {
        yaml(text)
    }
}

/// Plain text for Markdown: escapes CommonMark's inline punctuation, and folds newlines
/// into spaces so a line of text stays one list item.
pub fn md(text: &str) -> String {
    let needs = |b: u8| {
        matches!(
            b,
            b'\\'
                | b'*'
                | b'_'
                | b'#'
                | b'<'
                | b'>'
                | b'['
                | b']'
                | b'`'
                | b'|'
                | b'&'
                | b'\n'
                | b'\r'
        )
    };
    let bytes = text.as_bytes();
    if !bytes.iter().copied().any(needs) {
        return text.to_string();
    }
    // Every character escaped is ASCII, so the runs between them are whole UTF-8.
    let mut out = String::with_capacity(text.len() + 16);
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs(b) {
            continue;
        }
        out.push_str(&text[run..i]);
        match b {
            b'\n' | b'\r' => out.push(' '),
            _ => {
                out.push('\\');
                out.push(b as char);
            }
        }
        run = i + 1;
    }
    out.push_str(&text[run..]);
    out
}

/// A YAML string (a JSON string is one).
pub fn yaml(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "postmortem.html")]
struct Html<'a> {
    v: &'a PostmortemView,
    svg: String,
    /// Each timeline row's authored text as HTML ("" where it has none), rendered and
    /// sanitized together.
    bodies: Vec<String>,
}

impl Html<'_> {
    fn authored(&self, text: &str) -> String {
        markdown::to_html(text)
    }

    fn inline(&self, text: &str) -> String {
        markdown::to_inline_html(text)
    }

    /// Timeline row `i`'s authored text, as HTML.
    fn body(&self, i: &usize) -> &str {
        self.bodies.get(*i).map_or("", String::as_str)
    }
}

/// Each timeline row's authored text (updates, notes) as inline HTML, "" where it has none:
/// rendered and sanitized together, far cheaper than one row at a time.
pub fn timeline_bodies(v: &PostmortemView) -> Vec<String> {
    let texts: Vec<&str> = v
        .timeline
        .iter()
        .map(|e| e.body.as_deref().unwrap_or(""))
        .collect();
    markdown::to_inline_html_many(&texts)
}

/// Room for the document, so a long timeline is not copied over and over as it grows.
fn capacity(v: &PostmortemView, per_row: usize) -> usize {
    16 * 1024 + per_row * (v.timeline.len() + v.appendix.len() + v.updates.len())
}

pub fn markdown(v: &PostmortemView) -> anyhow::Result<String> {
    let mut out = String::with_capacity(capacity(v, 240));
    Markdown { v }.render_into(&mut out)?;
    Ok(out)
}

pub fn html(v: &PostmortemView) -> anyhow::Result<String> {
    let mut out = String::with_capacity(capacity(v, 360));
    Html {
        v,
        svg: v.chart.svg(),
        bodies: timeline_bodies(v),
    }
    .render_into(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::md;

    #[test]
    fn plain_text_is_escaped_for_markdown_around_any_characters() {
        assert_eq!(md("plain → text"), "plain → text");
        assert_eq!(
            md("é*x*→_y_ [a](b) `c` #1 | <d>\\"),
            "é\\*x\\*→\\_y\\_ \\[a\\](b) \\`c\\` \\#1 \\| \\<d\\>\\\\"
        );
        assert_eq!(
            md("two\r\nlines"),
            "two  lines",
            "newlines fold into spaces"
        );
        assert_eq!(
            md("AT&T &amp; co"),
            r"AT\&T \&amp; co",
            "an entity stays text"
        );
    }
}
