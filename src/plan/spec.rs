//! The spec hash: a stable digest of what a service's container is made of.
//!
//! The resolved spec holds the image, the env templates (secret *references*, never secret
//! values), the port bindings, the command, the health check and the network. It is
//! serialized canonically (struct fields in a fixed order, maps sorted) and hashed with
//! SHA-256, so the hash is the same across runs, machines and map orderings. Per-field
//! digests go into a label too, so that a replaced container's changes can be named
//! without storing any value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Config, Service};

/// The fields of a container spec, each as a short digest (the image in clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecFields {
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub ports: String,
    pub command: String,
    pub health: String,
    pub network: String,
}

/// A service's resolved spec and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hash: String,
    pub fields: SpecFields,
}

/// One field that differs between a running container and the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "kebab-case")]
pub enum Change {
    Image {
        from: String,
        to: String,
    },
    EnvAdded {
        key: String,
    },
    EnvRemoved {
        key: String,
    },
    EnvChanged {
        key: String,
    },
    Ports {
        from: String,
        to: String,
    },
    Command,
    Health,
    Network,
    /// The container predates field labels, or they cannot be read.
    Unknown,
}

impl std::fmt::Display for Change {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Image { from, to } => write!(formatter, "image {from} -> {to}"),
            Self::EnvAdded { key } => write!(formatter, "env {key} added"),
            Self::EnvRemoved { key } => write!(formatter, "env {key} removed"),
            Self::EnvChanged { key } => write!(formatter, "env {key} changed"),
            Self::Ports { from, to } => write!(formatter, "ports {from} -> {to}"),
            Self::Command => formatter.write_str("command changed"),
            Self::Health => formatter.write_str("health check changed"),
            Self::Network => formatter.write_str("network changed"),
            Self::Unknown => formatter.write_str("spec changed"),
        }
    }
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

fn digest_json(value: &impl Serialize) -> String {
    digest(&serde_json::to_vec(value).expect("plain data serializes"))
}

impl Spec {
    pub fn of(config: &Config, service: &Service) -> Self {
        let ports: Vec<String> = service
            .ports
            .iter()
            .map(|port| {
                format!(
                    "{}:{}:{}",
                    config.docker.bind_address, port.host, port.container
                )
            })
            .collect();
        let image = service.image.clone().unwrap_or_default();
        // A demo stand-in names the image it stands in for, so that a diff says so.
        let image = match service.env.get(crate::demo::STANDS_IN_FOR) {
            Some(original) if !original.0.is_empty() => format!("{image} (demo of {})", original.0),
            _ => image,
        };
        let fields = SpecFields {
            image,
            env: service
                .env
                .iter()
                .map(|(key, value)| (key.clone(), digest(value.0.as_bytes())))
                .collect(),
            ports: ports.join(","),
            command: digest_json(&service.command),
            health: digest_json(&service.health),
            network: config.platform.network.clone(),
        };
        let hash = hex::encode(
            &Sha256::digest(serde_json::to_vec(&fields).expect("plain data serializes"))[..16],
        );
        Self { hash, fields }
    }

    /// The field labels' value: compact JSON.
    pub fn fields_label(&self) -> String {
        serde_json::to_string(&self.fields).expect("plain data serializes")
    }

    /// What differs from a container's field label (`None`: the label is missing or bad).
    pub fn changes_since(&self, old_label: Option<&str>) -> Vec<Change> {
        let Some(old) = old_label.and_then(|label| serde_json::from_str::<SpecFields>(label).ok())
        else {
            return vec![Change::Unknown];
        };
        let new = &self.fields;
        let mut changes = Vec::new();
        if old.image != new.image {
            changes.push(Change::Image {
                from: old.image.clone(),
                to: new.image.clone(),
            });
        }
        for (key, value) in new
            .env
            .iter()
            .filter(|(key, _)| key.as_str() != crate::demo::STANDS_IN_FOR)
        {
            match old.env.get(key) {
                None => changes.push(Change::EnvAdded { key: key.clone() }),
                Some(previous) if previous != value => {
                    changes.push(Change::EnvChanged { key: key.clone() })
                }
                Some(_) => {}
            }
        }
        for key in old.env.keys().filter(|key| !new.env.contains_key(*key)) {
            changes.push(Change::EnvRemoved { key: key.clone() });
        }
        if old.ports != new.ports {
            changes.push(Change::Ports {
                from: old.ports.clone(),
                to: new.ports.clone(),
            });
        }
        if old.command != new.command {
            changes.push(Change::Command);
        }
        if old.health != new.health {
            changes.push(Change::Health);
        }
        if old.network != new.network {
            changes.push(Change::Network);
        }
        if changes.is_empty() {
            changes.push(Change::Unknown);
        }
        changes
    }
}

/// A digest of the whole configuration as it deploys: every service's spec hash and the
/// phases. The journal records it, so `resume` can tell the config changed since.
pub fn config_hash(config: &Config) -> String {
    let mut hasher = Sha256::new();
    for service in config.services() {
        hasher.update(service.name.as_str().as_bytes());
        hasher.update(Spec::of(config, service).hash.as_bytes());
    }
    for phase in &config.phases {
        hasher.update([phase.number]);
        for name in &phase.services {
            hasher.update(name.as_str().as_bytes());
        }
    }
    hex::encode(&hasher.finalize()[..16])
}
