//! Observing a Docker host, read-only: our containers with their spec hashes and health,
//! who holds the host ports the platform needs, and which images are present.
//!
//! Makes only read calls (list, inspect, probe); the plan is built from what it returns.

use std::collections::HashSet;

use futures_util::future::join_all;

use crate::docker::{DockerResult, Runtime};
use crate::health::{ProbeResult, Prober};
use crate::model::Config;
use crate::plan::observed::{
    ContainerState, Observation, ObservedContainer, ObservedHealth, ObservedHost, PortHolder,
    PortUse, labels,
};

/// Reads the host. `prober` checks the health of our running containers once each.
pub async fn observe<R: Runtime, P: Prober>(
    runtime: &R,
    prober: &P,
    config: &Config,
) -> DockerResult<ObservedHost> {
    let engine = runtime.engine();
    let summaries = runtime.list_containers().await?;
    let images = runtime.list_images().await?;
    let environment = config.environment_label();
    let our_names: HashSet<String> = config
        .services()
        .iter()
        .flat_map(|service| {
            let name = config.container_name(&service.name);
            [format!("{name}-previous"), name]
        })
        .collect();

    let mut ports = Vec::new();
    let mut containers = Vec::new();
    for summary in &summaries {
        for port in &summary.published_ports {
            ports.push(PortUse {
                port: *port,
                holder: PortHolder::Container {
                    id: summary.id.clone(),
                    name: summary.name.clone(),
                },
            });
        }
        let ours = summary.labels.get(labels::PLATFORM) == Some(&config.platform.name)
            && summary.labels.get(labels::ENVIRONMENT).map(String::as_str) == Some(environment);
        if ours || our_names.contains(&summary.name) {
            containers.push(ObservedContainer {
                id: summary.id.clone(),
                name: summary.name.clone(),
                image: summary.image.clone(),
                labels: summary.labels.clone(),
                state: summary.state,
                health: ObservedHealth::Unknown,
                started_at: None,
            });
        }
    }

    // A container being created or started already holds its host ports, though the list
    // shows them only once it runs: ask for its configured bindings.
    for summary in &summaries {
        if matches!(
            summary.state,
            ContainerState::Created | ContainerState::Restarting
        ) && summary.published_ports.is_empty()
        {
            // Gone since the list (a removal in flight): it holds nothing any more.
            let details = match runtime.inspect_container(&summary.id).await {
                Ok(details) => details,
                Err(crate::docker::DockerError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            for port in details.host_ports {
                ports.push(PortUse {
                    port,
                    holder: PortHolder::Container {
                        id: summary.id.clone(),
                        name: summary.name.clone(),
                    },
                });
            }
        }
    }

    // Health of our running containers, by the service's own check, all at once.
    let checks = containers.iter().map(|container| async {
        let service = container
            .label(labels::SERVICE)
            .filter(|_| container.is_ours(&config.platform.name, environment))
            .and_then(|name| config.service(name));
        match service {
            Some(service)
                if container.state == ContainerState::Running
                    && container.name == config.container_name(&service.name) =>
            {
                match prober.probe(service, &container.id).await {
                    ProbeResult::Healthy => ObservedHealth::Healthy,
                    ProbeResult::NotYet(detail) => ObservedHealth::Unhealthy(detail),
                }
            }
            _ => ObservedHealth::Unknown,
        }
    });
    let health = join_all(checks).await;
    for (container, health) in containers.iter_mut().zip(health) {
        container.health = health;
    }

    // Processes holding the ports we need, where the engine is this machine.
    if engine.local {
        let held: HashSet<u16> = ports.iter().map(|usage| usage.port).collect();
        let listeners = crate::host_ports::listening_ports();
        for service in config.services() {
            for port in &service.ports {
                if held.contains(&port.host) {
                    continue;
                }
                if let Some(listener) = listeners.get(&port.host) {
                    ports.push(PortUse {
                        port: port.host,
                        holder: PortHolder::Process {
                            pid: listener.pid,
                            name: listener.name.clone(),
                        },
                    });
                }
            }
        }
    }

    Ok(ObservedHost {
        observation: Observation::Engine {
            host: engine.host.clone(),
            version: engine.version.clone(),
        },
        containers,
        ports,
        images,
    })
}
