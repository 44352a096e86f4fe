//! `rollout status [N]`: every service with its phase, ports, container, state, health,
//! image and start time. Read-only: list, inspect and one probe per running container.

use serde::Serialize;

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, engine, load_config};
use rollout::docker::Runtime;
use rollout::health::NetworkProber;
use rollout::model::ServiceKind;
use rollout::plan::Selection;
use rollout::plan::observed::{ObservedHealth, labels};

#[derive(Debug, Serialize)]
struct Row {
    service: String,
    kind: &'static str,
    phase: Option<u8>,
    ports: String,
    container: Option<String>,
    state: String,
    health: String,
    image: Option<String>,
    since: Option<String>,
    up_to_date: Option<bool>,
}

pub fn run(
    global: &GlobalOptions,
    selection: Option<Selection>,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let rows = engine::tokio().block_on(async {
        let runtime = engine::connect(&config).await?;
        let prober = NetworkProber::new(&runtime, engine::probe_address(&config, runtime.engine()));
        let observed = rollout::observe::observe(&runtime, &prober, &config).await?;
        let mut rows = Vec::new();
        for service in config.services() {
            let wanted = selection.is_none_or(|selection| selection.includes(service));
            if !wanted || (service.kind == ServiceKind::External && !config.demo) {
                continue;
            }
            let name = config.container_name(&service.name);
            let container = observed
                .containers
                .iter()
                .find(|container| container.name == name);
            let since = match container {
                Some(container) => runtime
                    .inspect_container(&container.id)
                    .await
                    .ok()
                    .and_then(|details| details.started_at),
                None => None,
            };
            let spec = rollout::plan::Spec::of(&config, service);
            rows.push(Row {
                service: service.name.to_string(),
                kind: service.kind.as_str(),
                phase: service.phase,
                ports: service
                    .ports
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                container: container.map(|container| container.name.clone()),
                state: container.map_or_else(
                    || "absent".to_owned(),
                    |container| container.state.as_str().to_owned(),
                ),
                health: match container.map(|container| &container.health) {
                    Some(ObservedHealth::Healthy) => "healthy".to_owned(),
                    Some(ObservedHealth::Unhealthy(_)) => "unhealthy".to_owned(),
                    Some(ObservedHealth::Unknown) | None => "-".to_owned(),
                },
                image: container.map(|container| container.image.clone()),
                since,
                up_to_date: container
                    .map(|container| container.label(labels::SPEC) == Some(spec.hash.as_str())),
            });
        }
        Ok::<_, CliError>(rows)
    })?;
    if printer.is_json() {
        printer.json(&rows);
        return Ok(ExitStatus::Success);
    }
    let header = [
        "SERVICE",
        "PHASE",
        "PORTS",
        "STATE",
        "HEALTH",
        "UP TO DATE",
        "IMAGE",
        "SINCE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.service.clone(),
                row.phase
                    .map_or_else(|| row.kind.to_owned(), |phase| phase.to_string()),
                row.ports.clone(),
                row.state.clone(),
                row.health.clone(),
                row.up_to_date
                    .map_or("-", |fresh| if fresh { "yes" } else { "no" })
                    .to_owned(),
                row.image.clone().unwrap_or_else(|| "-".to_owned()),
                row.since
                    .clone()
                    .map_or_else(|| "-".to_owned(), |since| since.chars().take(19).collect()),
            ]
        })
        .collect();
    printer.data(&rollout::report::table(&header, &cells, ""));
    Ok(ExitStatus::Success)
}
