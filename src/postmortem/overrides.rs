//! Template overrides. The built-in templates are askama, compiled into the binary; a team
//! can replace either one by putting `postmortem.md` or `postmortem.html` in
//! `[postmortem] templates_dir`. Overrides are Jinja templates (rendered by minijinja at run
//! time) over the same view: `v` (the post-mortem) and `svg` (the chart), with the helpers
//! the built-ins call, as functions that run the very same Rust code: `md`, `authored` and
//! `yaml` for Markdown; `authored`, `inline` and `body` for HTML. HTML is escaped with
//! askama's own escaper, so the built-ins written as Jinja ([`Format::jinja_source`], what
//! `firebreak postmortem templates export` writes) render the built-ins' bytes exactly.
//! A broken override never costs you the post-mortem: the error names the file and line,
//! and the built-in template is used instead.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use askama::filters::Escaper;
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Output, State, Value, context};

use super::view::PostmortemView;
use super::{markdown, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Markdown, Format::Html];

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Markdown => "postmortem.md",
            Self::Html => "postmortem.html",
        }
    }

    /// The built-in template written as a Jinja override: the starting point for a team's
    /// own, rendering the same bytes as the built-in until it is edited.
    pub fn jinja_source(self) -> &'static str {
        match self {
            Self::Markdown => include_str!("../../templates/overrides/postmortem.md"),
            Self::Html => include_str!("../../templates/overrides/postmortem.html"),
        }
    }

    /// The environment with this format's helpers and escaping, built once.
    fn environment(self) -> &'static Environment<'static> {
        match self {
            Self::Markdown => &MARKDOWN,
            Self::Html => &HTML,
        }
    }
}

/// Markdown: nothing is escaped (values print as askama prints them); `md`,
/// `authored(text, indent)` and `yaml` are there. Like askama, minijinja drops a template's
/// final newline (`keep_trailing_newline` stays off), in both environments.
static MARKDOWN: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(like_askama);
    env.add_function("md", |text: &str| render::md(text));
    env.add_function("authored", |text: &str, indent: Option<usize>| {
        markdown::to_markdown(text, indent.unwrap_or(0))
    });
    env.add_function("yaml", |text: &str| render::yaml(text));
    env
});

/// HTML: escaped as askama escapes; `authored` and `inline` give sanitized HTML (`body` is
/// added for each render: it needs the whole timeline).
static HTML: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_formatter(like_askama);
    env.add_function("authored", |text: &str| {
        Value::from_safe_string(markdown::to_html(text))
    });
    env.add_function("inline", |text: &str| {
        Value::from_safe_string(markdown::to_inline_html(text))
    });
    env
});

/// Prints values as the askama templates do: `true` and `false` as Rust writes them (not
/// minijinja's `True`), and in HTML through askama's own escaper (`&` `<` `>` `"` `'` become
/// `&#38;` `&#60;` `&#62;` `&#34;` `&#39;`, where minijinja's writes `&amp;`, `&#x27;` and
/// escapes `/` too). Markup (`|safe`, the helpers' HTML, a macro's output) is printed as it
/// is.
fn like_askama(out: &mut Output, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    if value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = match (value.as_str(), value.kind()) {
        (Some(s), _) => Cow::Borrowed(s),
        (None, ValueKind::Bool) => Cow::Borrowed(if value.is_true() { "true" } else { "false" }),
        (None, _) => Cow::Owned(value.to_string()),
    };
    match state.auto_escape() {
        AutoEscape::Html => askama::filters::Html.write_escaped_str(out, &text)?,
        _ => out.write_str(&text)?,
    }
    Ok(())
}

/// A rendered post-mortem, and what went wrong with an override if one was skipped.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub warning: Option<String>,
}

impl Rendered {
    /// The text, logging the skipped override's problem first (for the server; the CLI
    /// tells its user in a sentence instead, so the problem is shown once).
    pub fn logged(self) -> String {
        if let Some(w) = &self.warning {
            tracing::warn!(problem = %w, "post-mortem template override skipped; using the built-in template");
        }
        self.text
    }
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
    render_jinja(format, source, v).map_err(|e| describe(&shown, &e))
}

/// Renders a Jinja template `source` as an override for `format` would be.
pub fn render_jinja(
    format: Format,
    source: String,
    v: &PostmortemView,
) -> Result<String, minijinja::Error> {
    let mut env = format.environment().clone();
    if format == Format::Html {
        let bodies = render::timeline_bodies(v);
        env.add_function("body", move |i: usize| {
            Value::from_safe_string(bodies.get(i).cloned().unwrap_or_default())
        });
    }
    env.add_template_owned(format.file_name(), source)?;
    let svg = Value::from_safe_string(v.chart.svg());
    env.get_template(format.file_name())?
        .render(context! { v => v, svg => svg })
}

fn describe(path: &str, e: &minijinja::Error) -> String {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    match e.line() {
        Some(line) => format!("{path}:{line}: {}{detail}", e.kind()),
        None => format!("{path}: {}{detail}", e.kind()),
    }
}

/// Why [`export`] failed: files in the way (then it wrote nothing), or the file system.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Files it would have overwritten, without `force`.
    #[error("{} already {}", list(.0), if .0.len() == 1 { "exists" } else { "exist" })]
    Exists(Vec<PathBuf>),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(" and ")
}

/// Writes both built-in templates, as Jinja overrides, into `dir` (made if missing), and
/// returns the files. Without `force` it writes nothing if either file is already there.
pub fn export(dir: &Path, force: bool) -> Result<Vec<PathBuf>, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let files: Vec<PathBuf> = Format::ALL
        .iter()
        .map(|f| dir.join(f.file_name()))
        .collect();
    let existing: Vec<PathBuf> = files.iter().filter(|p| p.exists()).cloned().collect();
    if !force && !existing.is_empty() {
        return Err(ExportError::Exists(existing));
    }
    for (format, path) in Format::ALL.iter().zip(&files) {
        write_new(path, format.jinja_source(), force).map_err(io(path))?;
    }
    Ok(files)
}

/// Writes `text` to `path`, replacing a file there only with `force`.
fn write_new(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .create_new(!force)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests;
