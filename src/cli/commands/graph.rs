//! `rollout graph`: the dependency graph as DOT or Mermaid.

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, GraphFormat, load_config};

pub fn run(
    global: &GlobalOptions,
    format: GraphFormat,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    printer.data(&match format {
        GraphFormat::Dot => rollout::report::graph_dot(&config),
        GraphFormat::Mermaid => rollout::report::graph_mermaid(&config),
    });
    Ok(ExitStatus::Success)
}
