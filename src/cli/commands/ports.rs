//! `rollout ports [--check]`: the port allocation table, grouped by reserved range; with
//! `--check`, who holds each host port now (read-only).

use serde::Serialize;

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, engine, load_config};
use rollout::docker::Runtime;
use rollout::health::NetworkProber;
use rollout::plan::observed::{PortHolder, labels};

#[derive(Debug, Serialize)]
struct PortCheck {
    port: u16,
    service: String,
    /// `free`, `ours` or `foreign`.
    status: &'static str,
    holder: Option<String>,
}

pub fn run(global: &GlobalOptions, check: bool, printer: &Printer) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let report = rollout::report::ports(&config);
    if !check {
        if printer.is_json() {
            printer.json(&report);
        } else {
            printer.data(&rollout::report::ports_text(&report));
        }
        return Ok(ExitStatus::Success);
    }
    let checks = engine::tokio().block_on(async {
        let runtime = engine::connect(&config).await?;
        let prober = NetworkProber::new(&runtime, engine::probe_address(&config, runtime.engine()));
        let observed = rollout::observe::observe(&runtime, &prober, &config).await?;
        let mut checks = Vec::new();
        for service in config.services() {
            for port in &service.ports {
                let holder = observed
                    .ports
                    .iter()
                    .find(|usage| usage.port == port.host)
                    .map(|usage| &usage.holder);
                let ours = |id: &str| {
                    observed.containers.iter().any(|container| {
                        container.id == id
                            && container.is_ours(&config.platform.name, config.environment_label())
                            && container.label(labels::SERVICE) == Some(service.name.as_str())
                    })
                };
                let (status, holder) = match holder {
                    None => ("free", None),
                    Some(PortHolder::Container { id, name }) if ours(id) => {
                        ("ours", Some(format!("container `{name}`")))
                    }
                    Some(other) => ("foreign", Some(other.to_string())),
                };
                checks.push(PortCheck {
                    port: port.host,
                    service: service.name.to_string(),
                    status,
                    holder,
                });
            }
        }
        checks.sort_by_key(|check| check.port);
        Ok::<_, CliError>(checks)
    })?;
    if printer.is_json() {
        printer.json(&serde_json::json!({ "ports": report, "check": checks }));
    } else {
        let rows: Vec<[String; 4]> = checks
            .iter()
            .map(|check| {
                [
                    check.port.to_string(),
                    check.service.clone(),
                    check.status.to_owned(),
                    check.holder.clone().unwrap_or_default(),
                ]
            })
            .collect();
        printer.data(&rollout::report::table(
            &["PORT", "SERVICE", "STATUS", "HELD BY"],
            &rows,
            "",
        ));
    }
    Ok(ExitStatus::Success)
}
