//! The `firebreak` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use firebreak::cli::{Cli, TopCommand};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, TopCommand::Serve) {
        firebreak::cli::end_quietly_on_closed_pipe();
    }
    // The server logs its work; one-shot commands stay quiet unless something goes wrong.
    let default = if matches!(cli.command, TopCommand::Serve) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(firebreak::cli::run(cli))
}
