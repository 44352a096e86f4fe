//! `rollout completions SHELL`: a completion script on stdout.

use clap::CommandFactory;

use crate::cli::output::Printer;
use crate::cli::{Arguments, CliError, ExitStatus};

pub fn run(shell: clap_complete::Shell, printer: &Printer) -> Result<ExitStatus, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Arguments::command(), "rollout", &mut script);
    printer.data(&String::from_utf8_lossy(&script));
    Ok(ExitStatus::Success)
}
