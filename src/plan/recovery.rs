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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::observed::Observation;

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "config/platform.toml",
            "[platform]\nname = \"p\"\n[[ranges]]\nname = \"all\"\nports = \"1-65535\"\ncategories = [\"any\"]\n",
        );
        write(
            "config/services/s.toml",
            "[services.api]\ncategory = \"any\"\nimage = \"api:1\"\nports = [8001]\nhealth = { tcp = true }\n",
        );
        write(
            "phases/1.toml",
            "phase = 1\nname = \"one\"\nservices = [\"api\"]\n",
        );
        for number in 2..=4 {
            write(
                &format!("phases/{number}.toml"),
                &format!("phase = {number}\nname = \"n\"\n"),
            );
        }
        let config = crate::config::load(dir.path(), None).unwrap();
        (dir, config)
    }

    fn container(
        id: &str,
        name: &str,
        spec: &str,
        state: ContainerState,
        health: ObservedHealth,
    ) -> ObservedContainer {
        ObservedContainer {
            id: id.to_owned(),
            name: name.to_owned(),
            image: "api:1".to_owned(),
            labels: BTreeMap::from([
                (labels::PLATFORM.to_owned(), "p".to_owned()),
                (labels::ENVIRONMENT.to_owned(), "default".to_owned()),
                (labels::SERVICE.to_owned(), "api".to_owned()),
                (labels::SPEC.to_owned(), spec.to_owned()),
            ]),
            state,
            health,
            started_at: None,
        }
    }

    fn host(containers: Vec<ObservedContainer>) -> ObservedHost {
        ObservedHost {
            observation: Observation::EmptyHost,
            containers,
            ports: Vec::new(),
            images: Default::default(),
        }
    }

    #[test]
    fn repairs_each_half_finished_replacement() {
        let (_dir, config) = config();
        let desired = Spec::of(&config, config.service("api").unwrap()).hash;
        let api = ServiceName::new("api");
        let previous = || {
            container(
                "old",
                "p-api-previous",
                "older",
                ContainerState::Exited,
                ObservedHealth::Unknown,
            )
        };

        // Nothing half-finished: nothing to do.
        let running = container(
            "new",
            "p-api",
            &desired,
            ContainerState::Running,
            ObservedHealth::Healthy,
        );
        assert_eq!(recovery(&config, &host(vec![running.clone()])), []);
        // Set aside, no new container yet: the previous goes back.
        assert_eq!(
            recovery(&config, &host(vec![previous()])),
            [Repair::Restore {
                service: api.clone(),
                previous: "old".into(),
                remove: None
            }]
        );
        // The new one is up to date and healthy: only the previous goes.
        assert_eq!(
            recovery(&config, &host(vec![previous(), running])),
            [Repair::DropPrevious {
                service: api.clone(),
                previous: "old".into()
            }]
        );
        // The new one was only created (a kill before it started): it goes, the old comes back.
        let created = container(
            "new",
            "p-api",
            &desired,
            ContainerState::Created,
            ObservedHealth::Unknown,
        );
        assert_eq!(
            recovery(&config, &host(vec![previous(), created])),
            [Repair::Restore {
                service: api.clone(),
                previous: "old".into(),
                remove: Some("new".into())
            }]
        );
        // A container of another environment is never touched.
        let mut foreign = previous();
        foreign
            .labels
            .insert(labels::ENVIRONMENT.to_owned(), "staging".to_owned());
        assert_eq!(recovery(&config, &host(vec![foreign])), []);
    }
}
