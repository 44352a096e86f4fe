//! Recovery after an interrupted run: what to do about half-finished replacements, decided
//! from the containers' labels alone (where the journal and the engine disagree, the labels
//! are the truth). Pure.

use serde::Serialize;

use super::observed::{ContainerState, ObservedContainer, ObservedHealth, ObservedHost, labels};
use super::spec::Spec;
use crate::model::{Config, ServiceName};

/// One repair, done before planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "repair", rename_all = "kebab-case")]
pub enum Repair {
    /// A replacement stopped half-way: remove the new container (if any) and rename the
    /// previous one back to its name. Planning then replaces it again, from a clean start.
    Restore {
        service: ServiceName,
        previous: String,
        remove: Option<String>,
    },
    /// The new container is up to date and running: the previous one is no longer needed.
    DropPrevious {
        service: ServiceName,
        previous: String,
    },
}

/// The repairs the observed host needs, in service order.
pub fn recovery(config: &Config, observed: &ObservedHost) -> Vec<Repair> {
    let environment = config.environment_label();
    let ours = |name: &str| -> Option<&ObservedContainer> {
        observed.containers.iter().find(|container| {
            container.name == name && container.is_ours(&config.platform.name, environment)
        })
    };
    let mut repairs = Vec::new();
    for service in config.services() {
        let name = config.container_name(&service.name);
        let Some(previous) = ours(&format!("{name}-previous")) else {
            continue;
        };
        let repair = match ours(&name) {
            None => Repair::Restore {
                service: service.name.clone(),
                previous: previous.id.clone(),
                remove: None,
            },
            Some(current)
                if current.label(labels::SPEC) == Some(Spec::of(config, service).hash.as_str())
                    && current.state == ContainerState::Running
                    && current.health == ObservedHealth::Healthy =>
            {
                Repair::DropPrevious {
                    service: service.name.clone(),
                    previous: previous.id.clone(),
                }
            }
            Some(current) => Repair::Restore {
                service: service.name.clone(),
                previous: previous.id.clone(),
                remove: Some(current.id.clone()),
            },
        };
        repairs.push(repair);
    }
    repairs
}
