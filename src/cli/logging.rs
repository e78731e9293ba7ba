//! Where the log goes and how it looks: stderr, as text (colour only on a terminal) or as
//! one JSON object a line for log collectors (`--log-format json`, `FIREBREAK_LOG_FORMAT`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal and `NO_COLOR` is unset.
    #[default]
    Text,
    /// One JSON object a line (time, level, target, message and fields, the span's fields).
    Json,
}

/// Installs the global subscriber: `RUST_LOG` if set, else `default` (e.g. `info`).
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colour()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Colour only for a person at a terminal who has not asked for none.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
