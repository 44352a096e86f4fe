//! `rollout phase N|all`: roll out for real (or `--dry-run`: print the plan).

use std::fmt::Write as _;

use tokio::sync::watch;

use crate::cli::output::Printer;
use crate::cli::progress;
use crate::cli::{
    CliError, ExitStatus, GlobalOptions, PhaseArguments, PolicyArgument, engine, load_config,
};
use std::time::Duration;

use rollout::docker::Runtime;
use rollout::exec::{Executor, FailureReport, RunOptions, RunOutcome};
use rollout::health::NetworkProber;
use rollout::model::{Config, FailurePolicy};
use rollout::plan::observed::{ObservedHost, PortHolder};
use rollout::plan::{Blocker, Plan, PlanOptions, Selection};
use rollout::state::{Journal, JournalRecorder, StateDir};

pub fn run(
    global: &GlobalOptions,
    arguments: &PhaseArguments,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    if arguments.dry_run {
        return super::plan::run(global, arguments.phases, !arguments.no_pull, printer);
    }
    let state = state_dir(global, &config);
    let _lock = take_lock(&state, printer, stop_grace(&config))?;
    let options = RunOptions {
        parallel: arguments.parallel.map(usize::from),
        on_failure: arguments.on_failure.map(|policy| match policy {
            PolicyArgument::Halt => FailurePolicy::Halt,
            PolicyArgument::Rollback => FailurePolicy::Rollback,
        }),
        timeout: arguments.timeout,
        pull: !arguments.no_pull,
        stop_grace: stop_grace(&config),
        ..RunOptions::new(run_id())
    };
    let journal = Journal::new(
        &options.run_id,
        &config.platform.name,
        config.environment_label(),
        arguments.phases,
        &rollout::plan::spec::config_hash(&config),
    );
    engine::tokio().block_on(roll_out(global, printer, &config, &state, journal, options))
}

pub fn stop_grace(config: &Config) -> Duration {
    if config.demo {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    }
}

/// The state dir of the environment: `--state-dir`, else `<dir>/.rollout/<environment>`.
pub fn state_dir(global: &GlobalOptions, config: &Config) -> StateDir {
    StateDir::new(
        global
            .state_dir
            .clone()
            .unwrap_or_else(|| global.dir.join(".rollout").join(config.environment_label())),
    )
}

/// Takes the state dir's lock, warning when it takes over a stale one.
///
/// A stale lock means a rollout died: the Docker calls it had in flight (a stop takes up to
/// its grace period) still finish on the engine. `settle` is how long to give them before
/// looking at the engine.
pub fn take_lock(
    state: &StateDir,
    printer: &Printer,
    settle: Duration,
) -> Result<rollout::state::Lock, CliError> {
    let (lock, stale) = state.lock()?;
    if let Some(holder) = stale {
        printer.warning(&format!(
            "took over a stale lock of a process that no longer runs ({holder}); giving its Docker calls {} to finish",
            humantime::format_duration(settle)
        ));
        std::thread::sleep(settle);
    }
    Ok(lock)
}

/// Repairs half-finished replacements, plans `journal.selection` (as far as it is not
/// done), and runs it, keeping `journal`. Shared by `phase` and `resume`.
pub async fn roll_out(
    global: &GlobalOptions,
    printer: &Printer,
    config: &Config,
    state: &StateDir,
    journal: Journal,
    options: RunOptions,
) -> Result<ExitStatus, CliError> {
    let runtime = engine::connect(config).await?;
    let prober = NetworkProber::new(&runtime, engine::probe_address(config, runtime.engine()));
    let remaining = journal.remaining_phases();
    let selection = match remaining.as_slice() {
        _ if remaining == journal.selection.phases() => journal.selection,
        [] => journal.selection,
        [only] => Selection::Phase(*only),
        [first, ..] if journal.selection == Selection::Phase(*first) => Selection::Phase(*first),
        [first, ..] => Selection::From(*first),
    };
    let options_pull = PlanOptions { pull: options.pull };
    // Refuse before repairing anything: a blocked run changes nothing.
    let (observed, plan) = settled_plan(&runtime, &prober, config, selection, options_pull).await?;
    let ui = progress::reporter(printer.is_json(), !global.no_progress, global.quiet);
    let recorder = JournalRecorder::new(state, journal, ui.as_ref())?;
    let interrupt = interrupt_on_signals(printer);
    let run_id = options.run_id.clone();
    let executor = Executor::new(config, &runtime, &prober, &recorder, options, interrupt);
    let repairs = rollout::plan::recovery::recovery(config, &observed);
    let plan = if repairs.is_empty() {
        plan
    } else {
        executor.repair(&repairs).await?;
        settled_plan(&runtime, &prober, config, selection, options_pull)
            .await?
            .1
    };
    let outcome = executor.execute(&plan).await.map_err(|error| match error {
        rollout::exec::ExecError::Docker(error) => CliError::Docker(error),
        rollout::exec::ExecError::Secrets(missing) => CliError::Secrets(missing),
    })?;
    drop(executor);
    drop(ui);
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
        RunOutcome::Interrupted { phase } => Err(CliError::Interrupted {
            phase,
            resume: command_for(global, "resume"),
        }),
    }
}

/// Observes and plans; fails on blockers. A port held by Docker's own proxy with no
/// container to show for it belongs to a container that is just starting or going away:
/// the engine gets up to 3 s to settle before that counts.
async fn settled_plan<R: Runtime, P: rollout::health::Prober>(
    runtime: &R,
    prober: &P,
    config: &Config,
    selection: Selection,
    options: PlanOptions,
) -> Result<(ObservedHost, Plan), CliError> {
    let mut attempts = 0;
    loop {
        let observed = rollout::observe::observe(runtime, prober, config).await?;
        let plan = rollout::plan::plan(config, selection, &observed, options);
        if plan.blockers.is_empty() {
            return Ok((observed, plan));
        }
        let settling = plan.blockers.iter().all(|blocker| {
            matches!(blocker, Blocker::PortHeld { holder: PortHolder::Process { name: Some(name), .. }, .. } if name == "docker-proxy")
        });
        attempts += 1;
        if !settling || attempts > 10 {
            return Err(CliError::Blocked {
                blockers: plan.blockers,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `rollout [--env NAME] <command>`, as the user would type it again.
pub fn command_for(global: &GlobalOptions, command: &str) -> String {
    match &global.environment {
        Some(name) => format!("rollout --env {name} {command}"),
        None => format!("rollout {command}"),
    }
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
