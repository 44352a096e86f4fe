//! The command line: arguments (clap), one small file per command under `commands/`,
//! printing through [`output::Printer`], and the mapping of every outcome to an exit code.
//!
//! Only this layer prints, and only this layer knows the terminal.

pub mod commands;
pub mod engine;
pub mod logging;
pub mod output;
pub mod progress;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rollout::config::ConfigError;
use rollout::model::{Config, PhaseNumber};
use rollout::plan::Selection;

/// Deploys a multi-service platform onto Docker in four ordered phases.
#[derive(Debug, Parser)]
#[command(name = "rollout", version, about, propagate_version = true)]
pub struct Arguments {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// The platform directory (holds `config/` and `phases/`)
    #[arg(
        long,
        global = true,
        env = "ROLLOUT_DIR",
        default_value = ".",
        value_name = "PATH"
    )]
    pub dir: PathBuf,
    /// The environment overlay `config/env/<NAME>.toml`
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub environment: Option<String>,
    /// How to print results: for people, or one JSON document (NDJSON events for runs)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Plain lines instead of live progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Where journals and the lock live [default: <dir>/.rollout/<env>]
    #[arg(long, global = true, value_name = "PATH")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and check the whole configuration; print every problem with file:line:col
    Validate,
    /// Show what a rollout would do, read-only: steps, reasons, blockers
    Plan {
        /// A phase (1-4) or `all`
        #[arg(default_value = "all", value_parser = parse_selection)]
        phases: Selection,
        /// Plan as if missing images could not be pulled
        #[arg(long)]
        no_pull: bool,
    },
    /// Roll out phase N (1-4), or `all` for 1..4 in order
    Phase(PhaseArguments),
    /// Continue the last rollout that halted, failed, was interrupted or killed
    Resume {
        /// At most K services starting at once [default: unbounded]
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
        parallel: Option<u16>,
        /// Every service's health deadline, e.g. `90s`
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// Undo the last rollout of phase N: remove what it created, restore what it replaced
    Rollback {
        /// The phase [default: the last rollout's]
        #[arg(value_parser = clap::value_parser!(u8).range(1..=4))]
        phase: Option<u8>,
    },
    /// Every service: phase, port, container, state, health, image, since
    Status {
        /// Only this phase
        #[arg(value_parser = parse_selection)]
        phases: Option<Selection>,
    },
    /// Stop and remove the platform's containers, in reverse dependency order
    Down {
        /// A phase (1-4) or `all` (also infrastructure and the network)
        #[arg(default_value = "all", value_parser = parse_selection)]
        phases: Selection,
    },
    /// The port allocation table, grouped by reserved range
    Ports {
        /// Also probe each host port: free, ours, or held by something else (and by whom)
        #[arg(long)]
        check: bool,
    },
    /// The dependency graph
    Graph {
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Write docs/ports.md from the configuration
    Docs {
        /// Fail if docs/ports.md is not what the configuration generates
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PhaseArguments {
    /// A phase (1-4) or `all`
    #[arg(value_parser = parse_selection)]
    pub phases: Selection,
    /// Show what would happen, change nothing (the same as `rollout plan`)
    #[arg(long)]
    pub dry_run: bool,
    /// What to do when a service fails [default: the phase's `on_failure`]
    #[arg(long, value_enum)]
    pub on_failure: Option<PolicyArgument>,
    /// At most K services starting at once [default: unbounded]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Every service's health deadline, e.g. `90s`
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Never pull: a missing image is an error
    #[arg(long)]
    pub no_pull: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArgument {
    Halt,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

fn parse_selection(text: &str) -> Result<Selection, String> {
    if text == "all" {
        return Ok(Selection::All);
    }
    match text.parse::<PhaseNumber>() {
        Ok(number) if rollout::model::PHASES.contains(&number) => Ok(Selection::Phase(number)),
        _ => Err(format!("`{text}` is not a phase: use 1, 2, 3, 4 or `all`")),
    }
}

/// How `rollout` ends (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The rollout failed (halted or rolled back), or a check failed.
    Failed,
    /// Invalid configuration or usage.
    Invalid,
    /// Docker unreachable, a port held, an image missing, the lock held.
    Environment,
    Interrupted,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        Self::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Invalid => 2,
            ExitStatus::Environment => 3,
            ExitStatus::Interrupted => 130,
        })
    }
}

/// Everything that ends a command with an error, each printed once by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("cannot {action} `{}`", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{}` is out of date", path.display())]
    StaleDocs { path: PathBuf },

    #[error(transparent)]
    Docker(#[from] rollout::docker::DockerError),

    #[error(transparent)]
    Secrets(#[from] rollout::secrets::MissingSecrets),

    #[error(transparent)]
    State(#[from] rollout::state::StateError),

    #[error("the rollback of phase {phase} is incomplete")]
    RollbackIncomplete {
        phase: PhaseNumber,
        problems: Vec<String>,
        resume: String,
    },

    #[error(
        "{} would stop this rollout; nothing was changed",
        blocker_count(blockers)
    )]
    Blocked {
        blockers: Vec<rollout::plan::Blocker>,
    },

    #[error("phase {} failed: `{}` {}", report.phase, report.service, report.failure)]
    Failed {
        report: Box<rollout::exec::FailureReport>,
    },

    #[error("interrupted during phase {phase}; what was in flight finished")]
    Interrupted { phase: PhaseNumber, resume: String },
}

fn blocker_count(blockers: &[rollout::plan::Blocker]) -> String {
    match blockers.len() {
        1 => "1 problem".to_owned(),
        count => format!("{count} problems"),
    }
}

impl CliError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::Config(_) => ExitStatus::Invalid,
            Self::File { .. } => ExitStatus::Environment,
            Self::StaleDocs { .. } | Self::Failed { .. } | Self::RollbackIncomplete { .. } => {
                ExitStatus::Failed
            }
            Self::State(_) => ExitStatus::Environment,
            Self::Docker(_) | Self::Secrets(_) | Self::Blocked { .. } => ExitStatus::Environment,
            Self::Interrupted { .. } => ExitStatus::Interrupted,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Config(error) => error.hint(),
            Self::File { .. } | Self::Failed { .. } => None,
            Self::Docker(error) => Some(engine::hint(error)),
            Self::Secrets(missing) => Some(format!(
                "set {} in the environment of `rollout` (needed by {}); secrets are never read from files",
                missing.names.join(", "),
                missing.services.join(", ")
            )),
            Self::Blocked { .. } => Some("`rollout plan` shows the whole plan with these problems".to_owned()),
            Self::Interrupted { resume, .. } => Some(format!("`{resume}` continues where this run stopped")),
            Self::RollbackIncomplete { problems, resume, .. } => Some(format!("{}; fix that, then `{resume}` finishes it", problems.join("; "))),
            Self::State(rollout::state::StateError::Lock(rollout::state::LockError::Held { .. })) => {
                Some("wait for it to finish; if that process is gone from another host, remove the lock file".to_owned())
            }
            Self::State(rollout::state::StateError::Unreadable { .. } | rollout::state::StateError::Version { .. }) => {
                Some("the journal belongs to another version of rollout; move it aside to start afresh".to_owned())
            }
            Self::State(_) => None,
            Self::StaleDocs { .. } => Some(
                "run `rollout docs` and commit the result: it is generated from `config/` and `phases/`"
                    .to_owned(),
            ),
        }
    }
}

/// Loads the configuration for the global options.
pub fn load_config(global: &GlobalOptions) -> Result<Config, CliError> {
    Ok(rollout::config::load(
        &global.dir,
        global.environment.as_deref(),
    )?)
}

pub fn run(arguments: Arguments, printer: &output::Printer) -> Result<ExitStatus, CliError> {
    let global = &arguments.global;
    match arguments.command {
        Command::Validate => commands::validate::run(global, printer),
        Command::Plan { phases, no_pull } => commands::plan::run(global, phases, !no_pull, printer),
        Command::Phase(phase) => commands::phase::run(global, &phase, printer),
        Command::Resume { parallel, timeout } => {
            commands::resume::run(global, parallel, timeout, printer)
        }
        Command::Rollback { phase } => commands::rollback::run(global, phase, printer),
        Command::Status { phases } => commands::status::run(global, phases, printer),
        Command::Down { phases } => commands::down::run(global, phases, printer),
        Command::Ports { check } => commands::ports::run(global, check, printer),
        Command::Graph { format } => commands::graph::run(global, format, printer),
        Command::Docs { check } => commands::docs::run(global, check, printer),
        Command::Completions { shell } => commands::completions::run(shell, printer),
    }
}
