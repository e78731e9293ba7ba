//! Markdown and HTML rendering. The Markdown escapes what people typed so it can't turn
//! into headings or links by accident; the HTML is escaped by askama and carries an inline
//! SVG chart: status phases as coloured bands, the freeze window as a band, updates as ticks.

use std::fmt::Write;

use askama::Template;

use super::view::{Chart, PostmortemView, axis_label};

#[derive(Template)]
#[template(path = "postmortem.md", escape = "none")]
struct Markdown<'a> {
    v: &'a PostmortemView,
}

impl Markdown<'_> {
    /// Escapes CommonMark's inline punctuation, and folds newlines into spaces so a line
    /// of text stays one list item.
    fn md(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\\' | '*' | '_' | '#' | '<' | '>' | '[' | ']' | '`' | '|' => {
                    out.push('\\');
                    out.push(c);
                }
                '\n' | '\r' => out.push(' '),
                c => out.push(c),
            }
        }
        out
    }
}

#[derive(Template)]
#[template(path = "postmortem.html")]
struct Html<'a> {
    v: &'a PostmortemView,
    svg: String,
}

pub fn markdown(v: &PostmortemView) -> anyhow::Result<String> {
    Ok(Markdown { v }.render()?)
}

pub fn html(v: &PostmortemView) -> anyhow::Result<String> {
    Ok(Html {
        v,
        svg: svg(&v.chart),
    }
    .render()?)
}

const WIDTH: f64 = 960.0;

fn colour(status: &str) -> &'static str {
    match status {
        "investigating" => "#dc2626",
        "identified" => "#ea580c",
        "monitoring" => "#ca8a04",
        "mitigated" => "#2563eb",
        _ => "#16a34a",
    }
}

/// The timeline chart as standalone SVG (well-formed XML; no user text inside).
pub fn svg(c: &Chart) -> String {
    let x = |ms: i64| (ms as f64 / c.span_ms as f64 * WIDTH).clamp(0.0, WIDTH);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 90" width="{WIDTH}" height="90" role="img" aria-label="Incident timeline">"#
    );
    for (status, from, to) in &c.phases {
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="20" width="{:.1}" height="30" fill="{}"><title>{status}</title></rect>"#,
            x(*from),
            (x(*to) - x(*from)).max(1.0),
            colour(status)
        );
    }
    for (from, to) in &c.freeze {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="55" width="{:.1}" height="10" fill="#6366f1" opacity="0.7"><title>merge freeze</title></rect>"##,
            x(*from),
            (x(*to) - x(*from)).max(1.0)
        );
    }
    for at in &c.updates {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" y1="12" x2="{0:.1}" y2="20" stroke="#111827" stroke-width="2"><title>update</title></line>"##,
            x(*at)
        );
    }
    let _ = write!(
        s,
        r##"<text x="0" y="82" font-size="11" fill="#374151">T+0s</text><text x="{WIDTH}" y="82" font-size="11" fill="#374151" text-anchor="end">{}</text></svg>"##,
        axis_label(c.span_ms)
    );
    s
}
