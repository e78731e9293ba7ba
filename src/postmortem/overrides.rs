//! Template overrides. The built-in templates are askama, compiled into the binary; a team
//! can replace either one by putting `postmortem.md` or `postmortem.html` in
//! `[postmortem] templates_dir`. Overrides are Jinja templates (rendered by minijinja at run
//! time) over the same view: `v` (the post-mortem) and, for HTML, `svg` (the chart).
//! A broken override never costs you the post-mortem: the error names the file and line,
//! and the built-in template is used instead.

use std::path::Path;

use minijinja::{Environment, context};

use super::render;
use super::view::PostmortemView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Markdown => "postmortem.md",
            Self::Html => "postmortem.html",
        }
    }
}

/// A rendered post-mortem, and what went wrong with an override if one was skipped.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub warning: Option<String>,
}

/// Renders with the override in `dir` if there is one, else (or if it is broken) the
/// built-in template.
pub fn render(dir: Option<&Path>, v: &PostmortemView, format: Format) -> anyhow::Result<Rendered> {
    let warning = match dir
        .map(|d| d.join(format.file_name()))
        .filter(|p| p.exists())
    {
        Some(path) => match render_override(&path, v, format) {
            Ok(text) => {
                return Ok(Rendered {
                    text,
                    warning: None,
                });
            }
            Err(e) => Some(e),
        },
        None => None,
    };
    if let Some(w) = &warning {
        tracing::warn!(problem = %w, "post-mortem template override skipped; using the built-in template");
    }
    let text = match format {
        Format::Markdown => render::markdown(v)?,
        Format::Html => render::html(v)?,
    };
    Ok(Rendered { text, warning })
}

fn render_override(path: &Path, v: &PostmortemView, format: Format) -> Result<String, String> {
    let shown = path.display().to_string();
    let source =
        std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    let mut env = Environment::new();
    env.add_template_owned(format.file_name(), source)
        .map_err(|e| describe(&shown, &e))?;
    let template = env
        .get_template(format.file_name())
        .map_err(|e| describe(&shown, &e))?;
    let svg = v.chart.svg();
    template
        .render(context! { v => v, svg => svg })
        .map_err(|e| describe(&shown, &e))
}

fn describe(path: &str, e: &minijinja::Error) -> String {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    match e.line() {
        Some(line) => format!("{path}:{line}: {}{detail}", e.kind()),
        None => format!("{path}: {}{detail}", e.kind()),
    }
}
