//! `rollout rollback [N]`: undo the last rollout of phase N from its journal — remove what
//! it created, restore what it replaced — also after a crash. `resume` uses the same code to
//! finish a rollback that a kill interrupted.

use rollout::docker::Runtime;
use rollout::exec::{Executor, RunOptions, Undo};
use rollout::health::NetworkProber;
use rollout::model::{Config, PhaseNumber, ServiceKind};
use rollout::plan::observed::ObservedHost;
use rollout::state::{Journal, JournalRecorder, StateDir};

use super::phase::{command_for, run_id, state_dir, stop_grace, take_lock};
use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, engine, load_config, progress};

pub fn run(
    global: &GlobalOptions,
    phase: Option<PhaseNumber>,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let state = state_dir(global, &config);
    let _lock = take_lock(&state, printer, stop_grace(&config))?;
    let Some(journal) = state.read_journal()? else {
        printer.data(&format!(
            "nothing to roll back: no rollout is recorded in `{}`",
            state.path().display()
        ));
        return Ok(ExitStatus::Success);
    };
    let phase = phase.or(journal.phase).unwrap_or(1);
    if !journal.services.values().any(|entry| entry.phase == phase) {
        printer.data(&format!(
            "nothing to roll back: the last rollout ({}, {}) changed nothing in phase {phase}",
            journal.rollout_id, journal.selection
        ));
        return Ok(ExitStatus::Success);
    }
    engine::tokio().block_on(finish(global, printer, &config, &state, journal, phase))
}

/// Undoes `phase` of the journal's rollout, from what the engine holds now.
pub async fn finish(
    global: &GlobalOptions,
    printer: &Printer,
    config: &Config,
    state: &StateDir,
    journal: Journal,
    phase: PhaseNumber,
) -> Result<ExitStatus, CliError> {
    let runtime = engine::connect(config).await?;
    let prober = NetworkProber::new(&runtime, engine::probe_address(config, runtime.engine()));
    let observed = rollout::observe::observe(&runtime, &prober, config).await?;
    let (undo, mut problems) = undo_list(config, &journal, phase, &observed);
    let ui = progress::reporter(printer.is_json(), !global.no_progress, global.quiet);
    let recorder = JournalRecorder::new(state, journal, ui.as_ref())?;
    let (_never, interrupt) = tokio::sync::watch::channel(false);
    let options = RunOptions {
        stop_grace: stop_grace(config),
        ..RunOptions::new(run_id())
    };
    let executor = Executor::new(config, &runtime, &prober, &recorder, options, interrupt);
    let summary = executor
        .finish_rollback(phase, &undo, std::mem::take(&mut problems))
        .await;
    problems.extend(summary.problems.iter().cloned());
    if problems.is_empty() {
        printer.data(&format!(
            "phase {phase} rolled back: {} removed, {} restored",
            summary.removed.len(),
            summary.restored.len()
        ));
        Ok(ExitStatus::Success)
    } else {
        Err(CliError::RollbackIncomplete {
            phase,
            problems,
            resume: command_for(global, "resume"),
        })
    }
}

/// What to undo for each service the journal's rollout changed in `phase`: its new
/// container if it still exists, and its previous one if that still exists. A replaced
/// service whose previous container is gone (the rollout finished and removed it) is left
/// as it is, and named.
fn undo_list(
    config: &Config,
    journal: &Journal,
    phase: PhaseNumber,
    observed: &ObservedHost,
) -> (Vec<Undo>, Vec<String>) {
    let environment = config.environment_label();
    let ours = |name: &str| {
        observed
            .containers
            .iter()
            .find(|container| {
                container.name == name && container.is_ours(&config.platform.name, environment)
            })
            .map(|container| container.id.clone())
    };
    let exists = |id: &str| {
        observed
            .containers
            .iter()
            .any(|container| container.id == id)
    };
    let mut undo = Vec::new();
    let mut problems = Vec::new();
    for (service, entry) in &journal.services {
        let Some(definition) = config.service(service.as_str()) else {
            continue;
        };
        if entry.phase != phase
            || !entry.action.mutates()
            || definition.kind != ServiceKind::Service
        {
            continue;
        }
        let name = config.container_name(service);
        // The previous container, under `-previous`, or already renamed back by a
        // rollback that was cut short.
        let previous = ours(&format!("{name}-previous"))
            .or_else(|| ours(&name).filter(|id| entry.previous.as_ref() == Some(id)));
        let untouched = entry.previous.is_none() && entry.container.is_none();
        if entry.action == rollout::plan::Action::Replace && previous.is_none() {
            // Never set aside (the run stopped before it got there): nothing to undo, but it
            // may have been stopped just before the kill; then it is started again.
            if untouched {
                let stopped = observed.containers.iter().find(|container| {
                    container.name == name
                        && container.is_ours(&config.platform.name, environment)
                        && container.state != rollout::plan::observed::ContainerState::Running
                });
                if let Some(container) = stopped {
                    undo.push(Undo {
                        service: service.clone(),
                        action: entry.action,
                        created: None,
                        previous: Some(container.id.clone()),
                    });
                }
                continue;
            }
            problems.push(format!(
                "`{service}` cannot be restored: its previous container was removed when the rollout finished"
            ));
            continue;
        }
        let created = entry
            .container
            .clone()
            .filter(|id| exists(id))
            .or_else(|| ours(&name).filter(|_| entry.action == rollout::plan::Action::Create));
        undo.push(Undo {
            service: service.clone(),
            action: entry.action,
            created,
            previous,
        });
    }
    // In start order, so that the rollback (which goes backwards) undoes dependents first.
    let graph = rollout::graph::DependencyGraph::new(
        config
            .services()
            .iter()
            .map(|s| (&s.name, s.depends_on.as_slice())),
    );
    let order = graph
        .order(|name| name.clone())
        .expect("a valid config has no cycles");
    let position: std::collections::HashMap<&rollout::model::ServiceName, usize> = order
        .iter()
        .enumerate()
        .map(|(p, name)| (name, p))
        .collect();
    undo.sort_by_key(|entry| position.get(&entry.service).copied().unwrap_or(usize::MAX));
    (undo, problems)
}
