//! The `rollout` binary: parse the arguments, run the command, map the outcome to an exit
//! code. Everything else lives in the library and in `cli`.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let arguments = cli::Arguments::parse();
    let printer = cli::output::Printer::new(&arguments.global);
    cli::logging::init(&arguments.global);
    match cli::run(arguments, &printer) {
        Ok(status) => status.into(),
        Err(error) => {
            printer.error(&error);
            error.exit_status().into()
        }
    }
}
