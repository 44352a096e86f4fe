//! `rollout ports`: the port allocation table, grouped by reserved range.

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, load_config};

pub fn run(global: &GlobalOptions, printer: &Printer) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let report = rollout::report::ports(&config);
    if printer.is_json() {
        printer.json(&report);
    } else {
        printer.data(&rollout::report::ports_text(&report));
    }
    Ok(ExitStatus::Success)
}
