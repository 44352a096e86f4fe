//! `rollout plan [N|all]`: the dry run, read-only. It observes the engine (list, inspect,
//! one health probe per running container of ours) and changes nothing.

use std::fmt::Write as _;

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, engine, load_config};
use rollout::health::NetworkProber;
use rollout::model::Config;
use rollout::plan::observed::{Observation, ObservedHost};
use rollout::plan::{Action, Plan, PlanOptions, Selection};

pub fn run(
    global: &GlobalOptions,
    selection: Selection,
    pull: bool,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let observed = engine::tokio().block_on(observe_read_only(&config))?;
    if let Observation::Unreachable { host, .. } = &observed.observation {
        printer.warning(&format!(
            "cannot reach the Docker engine at {host}: the plan shows the configuration's side only"
        ));
    }
    let plan = rollout::plan::plan(&config, selection, &observed, PlanOptions { pull });
    print(&plan, printer);
    Ok(if plan.blockers.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Environment
    })
}

/// Observes the engine; an unreachable one becomes a blocker of the plan, not an error.
pub async fn observe_read_only(config: &Config) -> Result<ObservedHost, CliError> {
    match engine::connect(config).await {
        Ok(runtime) => {
            let prober = NetworkProber::new(
                &runtime,
                engine::probe_address(config, rollout::docker::Runtime::engine(&runtime)),
            );
            Ok(rollout::observe::observe(&runtime, &prober, config).await?)
        }
        Err(CliError::Docker(error)) => {
            let host = config
                .docker
                .host
                .clone()
                .or_else(|| std::env::var("DOCKER_HOST").ok())
                .unwrap_or_else(|| "the local socket".to_owned());
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let _ = write!(detail, ": {cause}");
                source = cause.source();
            }
            Ok(ObservedHost {
                observation: Observation::Unreachable { host, detail },
                ..ObservedHost::empty()
            })
        }
        Err(other) => Err(other),
    }
}

pub fn print(plan: &Plan, printer: &Printer) {
    if printer.is_json() {
        printer.json(plan);
    } else {
        printer.data(&render(plan));
    }
}

/// The plan for people: one line per step with its reasons, then notes and blockers.
pub fn render(plan: &Plan) -> String {
    let mut text = String::new();
    let observed = match &plan.observation {
        Observation::EmptyHost => "an empty host (no Docker engine was asked)".to_owned(),
        Observation::Engine { host, version } => format!("Docker {version} at {host}"),
        Observation::Unreachable { host, .. } => {
            format!("nothing: the Docker engine at {host} is unreachable")
        }
    };
    let _ = writeln!(
        text,
        "Plan for {} of `{}` (environment `{}`), observed on {observed}",
        plan.selection, plan.platform, plan.environment
    );
    for phase in &plan.phases {
        let _ = writeln!(
            text,
            "\nphase {}: {} (on failure: {})",
            phase.number,
            phase.name,
            phase.on_failure.as_str()
        );
        for requirement in &phase.requirements {
            let state = match &requirement.unmet {
                None => "ok".to_owned(),
                Some(detail) => format!("NOT MET: {detail}"),
            };
            let _ = writeln!(
                text,
                "  requires {} (phase {}): {state}",
                requirement.service, requirement.phase
            );
        }
        let width = phase
            .steps
            .iter()
            .map(|step| step.service.as_str().len())
            .max()
            .unwrap_or(0);
        for (position, step) in phase.steps.iter().enumerate() {
            let symbol = match step.action {
                Action::StartInfrastructure | Action::Create => "+",
                Action::Replace => "~",
                Action::Keep => "=",
                Action::Start => ">",
                Action::CheckExternal => "?",
            };
            let reasons: Vec<String> = step.reasons.iter().map(ToString::to_string).collect();
            let waits = if step.waits_for.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = step.waits_for.iter().map(|name| name.as_str()).collect();
                format!(" (after {})", names.join(", "))
            };
            let _ = writeln!(
                text,
                "  {:>2}. {symbol} {:<width$}  {:<20} {}{waits}",
                position + 1,
                step.service.as_str(),
                step.action.as_str(),
                reasons.join("; "),
            );
        }
    }
    let changes = plan.steps().filter(|step| step.action.mutates()).count();
    let kept = plan
        .steps()
        .filter(|step| step.action == Action::Keep)
        .count();
    let _ = writeln!(text, "\n{changes} to start or replace, {kept} to keep");
    for note in &plan.notes {
        let _ = writeln!(text, "note: {note}");
    }
    if plan.blockers.is_empty() {
        let _ = writeln!(text, "no blockers");
    } else {
        let _ = writeln!(
            text,
            "blockers ({}): a real run would stop before changing anything:",
            plan.blockers.len()
        );
        for blocker in &plan.blockers {
            let _ = writeln!(text, "  - {blocker}");
        }
    }
    text
}
