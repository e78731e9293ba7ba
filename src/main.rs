//! The `firebreak` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use firebreak::cli::{Cli, TopCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, TopCommand::Serve) {
        firebreak::cli::end_quietly_on_closed_pipe();
    }
    // The server logs its work; one-shot commands stay quiet unless something goes wrong,
    // and leave their effects' failures to the drain's own lines (said once, not twice).
    let default = if matches!(cli.command, TopCommand::Serve) {
        "info"
    } else {
        "warn,firebreak::effects=error"
    };
    firebreak::cli::logging::init(cli.log_format, default);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(firebreak::cli::run(cli))
}
