//! The one printer: data to stdout, messages and errors to stderr, `--quiet` and NO_COLOR
//! honoured. Config problems render as miette diagnostics with their source lines.

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme};
use serde::Serialize;

use super::{CliError, GlobalOptions, OutputFormat};
use rollout::config::ConfigError;

pub struct Printer {
    pub format: OutputFormat,
    quiet: bool,
    color: bool,
}

impl Printer {
    pub fn new(global: &GlobalOptions) -> Self {
        Self {
            format: global.output,
            quiet: global.quiet,
            color: std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal(),
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Data: stdout, always.
    pub fn data(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
    }

    /// One JSON document (or NDJSON event) on stdout.
    pub fn json(&self, value: &impl Serialize) {
        self.data(&serde_json::to_string(value).expect("plain data serializes"));
    }

    /// A message for people: stderr, unless `--quiet`.
    pub fn message(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    pub fn warning(&self, text: &str) {
        if !self.quiet {
            let label = self.paint("warning", "33");
            let _ = writeln!(std::io::stderr().lock(), "{label}: {text}");
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[1;{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn handler(&self) -> GraphicalReportHandler {
        let theme = if self.color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false)
    }

    /// Prints an error once, with its causes and hint. Errors print even with `--quiet`.
    pub fn error(&self, error: &CliError) {
        let mut stderr = std::io::stderr().lock();
        if let CliError::Config(ConfigError::Invalid(problems)) = error {
            let handler = self.handler();
            for diagnostic in problems.diagnostics() {
                let mut rendered = String::new();
                let _ = handler.render_report(&mut rendered, &diagnostic);
                let _ = writeln!(stderr, "{}", rendered.trim_end());
                let _ = writeln!(stderr);
            }
        }
        let label = self.paint("error", "31");
        let _ = writeln!(stderr, "{label}: {error}");
        if let CliError::Blocked { blockers } = error {
            for blocker in blockers {
                let _ = writeln!(stderr, "  - {blocker}");
            }
        }
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let _ = writeln!(stderr, "  caused by: {cause}");
            source = cause.source();
        }
        if let Some(hint) = error.hint() {
            let label = self.paint("hint", "36");
            let _ = writeln!(stderr, "  {label}: {hint}");
        }
    }
}
