//! `firebreak runbook check [--offline]`.

use std::process::ExitCode;

use crate::app::App;

pub async fn run(_app: &App, _offline: bool) -> anyhow::Result<ExitCode> {
    anyhow::bail!("runbook check is being built")
}
