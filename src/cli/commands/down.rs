//! `rollout down [N|all]`: stop and remove the platform's containers, dependents first.
//! Only containers carrying this platform's and environment's labels are touched.

use crate::cli::output::Printer;
use crate::cli::{CliError, ExitStatus, GlobalOptions, engine, load_config};
use rollout::docker::Runtime;
use rollout::graph::DependencyGraph;
use rollout::plan::Selection;
use rollout::plan::observed::labels;

pub fn run(
    global: &GlobalOptions,
    selection: Selection,
    printer: &Printer,
) -> Result<ExitStatus, CliError> {
    let config = load_config(global)?;
    let state = super::phase::state_dir(global, &config);
    let _lock = super::phase::take_lock(&state, printer, super::phase::stop_grace(&config))?;
    let graph = DependencyGraph::new(
        config
            .services()
            .iter()
            .map(|s| (&s.name, s.depends_on.as_slice())),
    );
    // Dependents first: the reverse of a start order.
    let mut order = graph
        .order(|name| name.clone())
        .expect("a valid config has no cycles");
    order.reverse();
    let removed = engine::tokio().block_on(async {
        let runtime = engine::connect(&config).await?;
        let containers = runtime.list_containers().await?;
        let mut removed = Vec::new();
        for name in &order {
            let service = config
                .service(name.as_str())
                .expect("graph nodes are services");
            let wanted = selection.includes(service);
            if !wanted {
                continue;
            }
            for container in containers.iter().filter(|container| {
                container.labels.get(labels::PLATFORM) == Some(&config.platform.name)
                    && container
                        .labels
                        .get(labels::ENVIRONMENT)
                        .map(String::as_str)
                        == Some(config.environment_label())
                    && container.labels.get(labels::SERVICE).map(String::as_str)
                        == Some(name.as_str())
            }) {
                runtime
                    .stop_container(
                        &container.id,
                        std::time::Duration::from_secs(if config.demo { 2 } else { 10 }),
                    )
                    .await?;
                runtime.remove_container(&container.id).await?;
                printer.message(&format!("removed `{}`", container.name));
                removed.push(container.name.clone());
            }
        }
        // `down all` also removes the network, if this platform and environment created it.
        if selection == Selection::All
            && let Some(network_labels) = runtime.network_labels(&config.platform.network).await?
            && network_labels.get(labels::PLATFORM) == Some(&config.platform.name)
            && network_labels.get(labels::ENVIRONMENT).map(String::as_str)
                == Some(config.environment_label())
        {
            // Another environment of the platform may still use it: then it stays.
            match runtime.remove_network(&config.platform.network).await {
                Ok(()) => printer.message(&format!("removed network `{}`", config.platform.network)),
                Err(error) => printer.warning(&format!(
                    "the network `{}` stays: {error} (another environment's containers may still use it)",
                    config.platform.network
                )),
            }
        }
        Ok::<_, CliError>(removed)
    })?;
    if printer.is_json() {
        printer.json(&serde_json::json!({ "removed": removed }));
    } else {
        printer.data(&format!(
            "{} containers removed ({selection})",
            removed.len()
        ));
    }
    Ok(ExitStatus::Success)
}
