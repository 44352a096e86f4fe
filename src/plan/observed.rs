//! What `rollout` saw on a Docker host: plain data that the IO layer fills in and the
//! planner reads. Nothing here talks to Docker.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The labels `rollout` puts on every container it creates (SPEC §5.2).
pub mod labels {
    pub const PLATFORM: &str = "io.rollout.platform";
    pub const SERVICE: &str = "io.rollout.service";
    pub const PHASE: &str = "io.rollout.phase";
    pub const ENVIRONMENT: &str = "io.rollout.env";
    pub const RUN: &str = "io.rollout.run";
    pub const SPEC: &str = "io.rollout.spec";
    /// Per-field digests of the spec, to name what changed.
    pub const SPEC_FIELDS: &str = "io.rollout.spec-fields";
}

/// Where the observation came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Observation {
    /// Nothing was asked of any engine: the plan assumes an empty host.
    EmptyHost,
    /// A Docker engine, read-only.
    Engine { host: String, version: String },
    /// The engine could not be reached: the plan shows the configuration's side only.
    Unreachable { host: String, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

/// The health the observer found, by the service's own check (or Docker's, for `docker`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", content = "detail", rename_all = "kebab-case")]
pub enum ObservedHealth {
    Healthy,
    Unhealthy(String),
    /// Not probed (the container is not running, or the observer does not probe).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub health: ObservedHealth,
    /// RFC 3339, as Docker reports it.
    pub started_at: Option<String>,
}

impl ObservedContainer {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether this container belongs to `service` of this platform and environment.
    pub fn is_ours(&self, platform: &str, environment: &str) -> bool {
        self.label(labels::PLATFORM) == Some(platform)
            && self.label(labels::ENVIRONMENT) == Some(environment)
            && self.label(labels::SERVICE).is_some()
    }
}

/// Who holds a host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PortHolder {
    Container {
        id: String,
        name: String,
    },
    Process {
        pid: Option<u32>,
        name: Option<String>,
    },
}

impl std::fmt::Display for PortHolder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Container { name, .. } => write!(formatter, "container `{name}`"),
            Self::Process {
                pid: Some(pid),
                name: Some(name),
            } => write!(formatter, "process `{name}` (pid {pid})"),
            Self::Process {
                pid: Some(pid),
                name: None,
            } => write!(formatter, "process with pid {pid}"),
            Self::Process {
                pid: None,
                name: Some(name),
            } => write!(formatter, "process `{name}`"),
            Self::Process {
                pid: None,
                name: None,
            } => formatter.write_str("an unknown process"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortUse {
    pub port: u16,
    pub holder: PortHolder,
}

/// The state of a Docker host as far as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedHost {
    pub observation: Observation,
    /// Every container that matters: ours, and any that holds one of our names.
    pub containers: Vec<ObservedContainer>,
    pub ports: Vec<PortUse>,
    /// Image references present locally (`repository:tag`).
    pub images: BTreeSet<String>,
}

impl ObservedHost {
    /// A host with nothing on it, observed without asking any engine.
    pub fn empty() -> Self {
        Self {
            observation: Observation::EmptyHost,
            containers: Vec::new(),
            ports: Vec::new(),
            images: BTreeSet::new(),
        }
    }
}
