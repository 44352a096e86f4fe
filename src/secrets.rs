//! Secret values: read from the process environment at rollout time (or made up in a demo),
//! substituted into container env, and never stored, printed or logged.
//!
//! `Secrets` has no `Debug` that shows values, no `Serialize`, and is dropped after use.

use std::collections::{BTreeMap, BTreeSet};

use crate::demo;
use crate::model::{Config, Service};
use crate::vars;

/// The values of the secrets a run needs.
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("missing secret{}: {}", if names.len() == 1 { "" } else { "s" }, names.join(", "))]
pub struct MissingSecrets {
    pub names: Vec<String>,
    /// The services that need them.
    pub services: Vec<String>,
}

impl Secrets {
    /// Reads every secret `services` need from `lookup` (the process environment), or
    /// gives it its demo value when the config is a demo. Reports every missing one.
    pub fn gather<'a>(
        config: &Config,
        services: impl IntoIterator<Item = &'a Service>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MissingSecrets> {
        let mut values = BTreeMap::new();
        let mut missing = BTreeSet::new();
        let mut needing = BTreeSet::new();
        for service in services {
            for name in &service.secrets {
                if values.contains_key(name) {
                    continue;
                }
                let value = if config.demo {
                    Some(demo::secret_value(name))
                } else {
                    lookup(name)
                };
                match value {
                    Some(value) => {
                        values.insert(name.clone(), value);
                    }
                    None => {
                        missing.insert(name.clone());
                        needing.insert(service.name.to_string());
                    }
                }
            }
        }
        if missing.is_empty() {
            Ok(Self { values })
        } else {
            Err(MissingSecrets {
                names: missing.into_iter().collect(),
                services: needing.into_iter().collect(),
            })
        }
    }

    /// The container env of `service`: `KEY=VALUE`, secrets substituted, `$$` unescaped.
    pub fn container_env(&self, service: &Service) -> Vec<String> {
        service
            .env
            .iter()
            .map(|(key, template)| {
                let value = vars::substitute(
                    &template.0,
                    |name| {
                        service
                            .secrets
                            .contains(name)
                            .then(|| self.values.get(name).cloned())
                            .flatten()
                    },
                    true,
                );
                format!("{key}={value}")
            })
            .collect()
    }
}
