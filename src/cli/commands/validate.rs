//! `rollout validate`: load and check everything; print every problem.

use serde_json::json;

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, load_config};
use rollout::config::ConfigError;
use rollout::model::ServiceKind;

pub fn run(global: &GlobalOptions, printer: &Printer) -> Result<ExitStatus, CliError> {
    let config = match load_config(global) {
        Ok(config) => config,
        Err(CliError::Config(ConfigError::Invalid(problems))) if printer.is_json() => {
            printer.json(&json!({ "valid": false, "problems": problems.summaries() }));
            return Err(CliError::Config(ConfigError::Invalid(problems)));
        }
        Err(error) => return Err(error),
    };
    let count = |kind| config.services().iter().filter(|s| s.kind == kind).count();
    let (services, infrastructure, externals) = (
        count(ServiceKind::Service),
        count(ServiceKind::Infrastructure),
        count(ServiceKind::External),
    );
    let ports: usize = config.services().iter().map(|s| s.ports.len()).sum();
    if printer.is_json() {
        printer.json(&json!({
            "valid": true,
            "platform": config.platform.name,
            "environment": config.environment_label(),
            "services": services,
            "infrastructure": infrastructure,
            "externals": externals,
            "phases": config.phases.len(),
            "host_ports": ports,
            "conflicts_resolved": config.reconciliations.len(),
        }));
    } else {
        printer.data(&format!(
            "ok: platform `{}` (environment `{}`): {services} services in {} phases, {infrastructure} infrastructure, {externals} external, {ports} host ports, {} source conflicts resolved",
            config.platform.name,
            config.environment_label(),
            config.phases.len(),
            config.reconciliations.len(),
        ));
    }
    Ok(ExitStatus::Success)
}
