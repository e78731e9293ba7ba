//! `firebreak drill report INC-n [--format md|html] [--out FILE]`: an incident's runbook,
//! planned against what happened, from its record (see `runbook::report`).

use std::path::Path;
use std::process::ExitCode;

use super::PostmortemFormat;
use super::run::user_error;
use crate::app::App;
use crate::incident::IncidentNumber;
use crate::runbook::report::{self, DrillReport, Lookup};

pub async fn run(
    app: &App,
    incident: &str,
    format: PostmortemFormat,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Some(number) = IncidentNumber::parse(incident, true) else {
        return Ok(user_error(&format!(
            "\"{incident}\" is not an incident; write INC-42 or 42."
        )));
    };
    let found = match app.read.drill_report(number).await? {
        Lookup::Found(r) => r,
        Lookup::NoIncident => return Ok(user_error(&format!("There is no incident {number}."))),
        Lookup::NoRunbook => return Ok(user_error(&report::no_runbook(number))),
    };
    let text = render(&found, format)?;
    match out {
        Some(path) => write(number, path, &text),
        None => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn render(r: &DrillReport, format: PostmortemFormat) -> anyhow::Result<String> {
    match format {
        PostmortemFormat::Md => report::markdown(r),
        PostmortemFormat::Html => report::html(r),
    }
}

/// Writes the report to `path`; a path the user can fix is a sentence and exit 2.
fn write(number: IncidentNumber, path: &Path, text: &str) -> anyhow::Result<ExitCode> {
    if let Err(e) = std::fs::write(path, text) {
        return Ok(user_error(&format!(
            "Could not write the {number} drill report to {}: {}. Give a file in a directory that exists.",
            path.display(),
            super::render::io_reason(&e)
        )));
    }
    println!("Wrote the {number} drill report to {}.", path.display());
    Ok(ExitCode::SUCCESS)
}
