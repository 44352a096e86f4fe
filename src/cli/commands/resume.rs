//! `rollout resume`: continue the last rollout that halted, failed, was interrupted or was
//! killed. It re-plans from the journal and the engine's actual state (the labels are the
//! truth), keeps what is healthy and up to date, and goes on where the rollout stopped. A
//! rollback that was cut short is finished instead.

use std::time::Duration;

use rollout::exec::RunOptions;
use rollout::state::RolloutStatus;

use super::phase::{roll_out, run_id, state_dir, stop_grace, take_lock};
use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, engine, load_config};

pub fn run(
    global: &GlobalOptions,
    parallel: Option<u16>,
    timeout: Option<Duration>,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let state = state_dir(global, &config);
    let _lock = take_lock(&state, printer, stop_grace(&config))?;
    let Some(mut journal) = state.read_journal()? else {
        printer.data(&format!(
            "nothing to resume: no rollout is recorded in `{}`",
            state.path().display()
        ));
        return Ok(ExitStatus::Success);
    };
    if !journal.is_unfinished() {
        printer.data(&format!(
            "nothing to resume: the last rollout ({}, {}) {}",
            journal.rollout_id,
            journal.selection,
            if journal.status == RolloutStatus::Succeeded {
                "succeeded"
            } else {
                "was rolled back"
            }
        ));
        return Ok(ExitStatus::Success);
    }
    if matches!(
        journal.status,
        RolloutStatus::RollingBack | RolloutStatus::RollbackFailed
    ) {
        let phase = journal.phase.unwrap_or(1);
        printer.message(&format!(
            "resuming the rollback of phase {phase} of rollout {}",
            journal.rollout_id
        ));
        return engine::tokio().block_on(super::rollback::finish(
            global, printer, &config, &state, journal, phase,
        ));
    }
    let config_hash = rollout::plan::spec::config_hash(&config);
    if journal.config_hash != config_hash {
        printer.message(
            "the configuration changed since the rollout began: planning from the current one",
        );
        journal.config_hash = config_hash;
    }
    printer.message(&format!(
        "resuming rollout {} ({}, {}): phases left {:?}",
        journal.rollout_id,
        journal.selection,
        serde_json::to_value(&journal.status)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default(),
        journal.remaining_phases()
    ));
    let options = RunOptions {
        parallel: parallel.map(usize::from),
        timeout,
        stop_grace: stop_grace(&config),
        ..RunOptions::new(run_id())
    };
    engine::tokio().block_on(roll_out(global, printer, &config, &state, journal, options))
}
