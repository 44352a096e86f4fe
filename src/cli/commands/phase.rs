//! `rollout phase N|all`: roll out for real (or `--dry-run`: print the plan).

use std::fmt::Write as _;

use tokio::sync::watch;

use crate::cli::output::Printer;
use crate::cli::progress;
use crate::cli::{
    CliError, ExitStatus, GlobalOptions, PhaseArguments, PolicyArgument, engine, load_config,
};
use rollout::docker::Runtime;
use rollout::exec::{Executor, FailureReport, RunOptions, RunOutcome};
use rollout::health::NetworkProber;
use rollout::model::FailurePolicy;
use rollout::plan::PlanOptions;

pub fn run(
    global: &GlobalOptions,
    arguments: &PhaseArguments,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    if arguments.dry_run {
        return super::plan::run(global, arguments.phases, !arguments.no_pull, printer);
    }
    engine::tokio().block_on(async {
        let runtime = engine::connect(&config).await?;
        let prober = NetworkProber::new(&runtime, engine::probe_address(&config, runtime.engine()));
        let observed = rollout::observe::observe(&runtime, &prober, &config).await?;
        let plan = rollout::plan::plan(
            &config,
            arguments.phases,
            &observed,
            PlanOptions {
                pull: !arguments.no_pull,
            },
        );
        if !plan.blockers.is_empty() {
            return Err(CliError::Blocked {
                blockers: plan.blockers,
            });
        }
        let run_id = run_id();
        let options = RunOptions {
            parallel: arguments.parallel.map(usize::from),
            on_failure: arguments.on_failure.map(|policy| match policy {
                PolicyArgument::Halt => FailurePolicy::Halt,
                PolicyArgument::Rollback => FailurePolicy::Rollback,
            }),
            timeout: arguments.timeout,
            pull: !arguments.no_pull,
            stop_grace: if config.demo {
                std::time::Duration::from_secs(2)
            } else {
                std::time::Duration::from_secs(10)
            },
            ..RunOptions::new(run_id.clone())
        };
        let reporter = progress::reporter(printer.is_json(), !global.no_progress, global.quiet);
        let interrupt = interrupt_on_signals(printer);
        let executor = Executor::new(
            &config,
            &runtime,
            &prober,
            reporter.as_ref(),
            options,
            interrupt,
        );
        let outcome = executor.execute(&plan).await.map_err(|error| match error {
            rollout::exec::ExecError::Docker(error) => CliError::Docker(error),
            rollout::exec::ExecError::Secrets(missing) => CliError::Secrets(missing),
        })?;
        drop(reporter);
        match outcome {
            RunOutcome::Succeeded => {
                if !printer.is_json() {
                    printer.data(&format!(
                        "{} of `{}` done: {} services healthy (run {run_id})",
                        plan.selection,
                        config.platform.name,
                        plan.steps().count()
                    ));
                }
                Ok(ExitStatus::Success)
            }
            RunOutcome::Failed { report, .. } => {
                if !printer.is_json() {
                    printer.message(&render_failure(&report));
                }
                Err(CliError::Failed { report })
            }
            RunOutcome::Interrupted { phase } => {
                let environment = global
                    .environment
                    .as_ref()
                    .map_or_else(String::new, |name| format!(" --env {name}"));
                Err(CliError::Interrupted {
                    phase,
                    resume: format!("rollout{environment} resume"),
                })
            }
        }
    })
}

/// A run id: time and pid, unique on this host, sortable.
pub fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|duration| duration.as_millis())
        .unwrap_or_default();
    format!("r{millis}-{}", std::process::id())
}

/// Ctrl-C or SIGTERM: stop new work. A second Ctrl-C exits at once.
fn interrupt_on_signals(printer: &Printer) -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    let quiet = !printer.is_json();
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut interrupts = 0;
        loop {
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
            interrupts += 1;
            if interrupts > 1 {
                std::process::exit(130);
            }
            if quiet {
                eprintln!(
                    "interrupted: finishing the Docker calls in flight (Ctrl-C again exits at once)"
                );
            }
            sender.send_replace(true);
        }
    });
    receiver
}

/// The failure report for people.
pub fn render_failure(report: &FailureReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "\nphase {}: `{}` failed: {}",
        report.phase, report.service, report.failure
    );
    let _ = writeln!(text, "  check:           {}", report.check);
    if let Some(output) = &report.last_output {
        let _ = writeln!(text, "  last probe:      {output}");
    }
    let path: Vec<&str> = report
        .dependency_path
        .iter()
        .map(|name| name.as_str())
        .collect();
    let _ = writeln!(text, "  dependency path: {}", path.join(" -> "));
    if !report.blocked.is_empty() {
        let blocked: Vec<&str> = report.blocked.iter().map(|name| name.as_str()).collect();
        let _ = writeln!(text, "  not started:     {}", blocked.join(", "));
    }
    match (&report.policy, &report.container) {
        (FailurePolicy::Halt, Some(container)) => {
            let _ = writeln!(
                text,
                "  halted: healthy services stay up; `{container}` is stopped for inspection (`docker logs {container}`)"
            );
        }
        (FailurePolicy::Halt, None) => {
            let _ = writeln!(text, "  halted: healthy services stay up");
        }
        (FailurePolicy::Rollback, _) => {
            let _ = writeln!(
                text,
                "  rolled back: this run's changes of phase {} were undone",
                report.phase
            );
        }
    }
    if report.logs.is_empty() {
        let _ = writeln!(text, "  log: (empty)");
    } else {
        let _ = writeln!(text, "  last {} log lines:", report.logs.len());
        for line in &report.logs {
            let _ = writeln!(text, "    | {line}");
        }
    }
    let _ = write!(text, "  next: fix the cause, then `{}`", report.next);
    text
}
