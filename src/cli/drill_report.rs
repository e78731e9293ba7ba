//! `firebreak drill report INC-n [--format md|html] [--out FILE]`.

use std::path::Path;
use std::process::ExitCode;

use super::PostmortemFormat;
use crate::app::App;

pub async fn run(
    _app: &App,
    _incident: &str,
    _format: PostmortemFormat,
    _out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the drill report is being built")
}
