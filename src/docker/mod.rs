//! The Docker engine behind one narrow trait, in this project's own types.
//!
//! [`Runtime`] is all the executor and the observer may ask of an engine. Only
//! [`bollard`](self::bollard) (the real engine) imports the bollard crate; [`fake`] is a
//! recording, scriptable stand-in for unit tests. This layer knows nothing of plans or
//! phases: it creates, starts, stops, renames and inspects containers as told.

pub mod bollard;
pub mod demo_image;
pub mod fake;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures_util::stream::BoxStream;
use serde::Serialize;

use crate::plan::observed::ContainerState;

/// Errors from the engine, each naming the operation and the object.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot connect to the Docker engine at {host}")]
    Connect {
        host: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("the Docker engine at {host} did not answer within {timeout:?}")]
    Unresponsive { host: String, timeout: Duration },

    #[error("cannot {operation} `{object}`")]
    Operation {
        operation: &'static str,
        object: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("`{object}` does not exist")]
    NotFound { object: String },

    #[error("image `{image}` is not present locally and cannot be pulled")]
    ImageUnavailable {
        image: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl DockerError {
    pub fn operation(
        operation: &'static str,
        object: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Operation {
            operation,
            object: object.into(),
            source: Box::new(source),
        }
    }
}

pub type DockerResult<T> = Result<T, DockerError>;

/// Which engine, as `rollout` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// `unix:///var/run/docker.sock`, `tcp://host:2376`, …
    pub host: String,
    /// The engine's version, e.g. `20.10.24`.
    pub version: String,
    /// The negotiated API version, e.g. `1.41`.
    pub api_version: String,
    /// Whether the engine runs on this machine (then host ports can be checked here).
    pub local: bool,
}

/// One host port binding: `address:host` on the host to `container` in the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PortBinding {
    pub address: String,
    pub host: u16,
    pub container: u16,
}

/// Everything needed to create a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `KEY=VALUE`, secrets already resolved. Never printed or logged: `Debug` is derived
    /// only for tests, and the executor never formats a spec.
    #[serde(skip)]
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortBinding>,
    pub network: String,
    /// Network aliases: the service name, so that others reach it by that name.
    pub aliases: Vec<String>,
    pub command: Option<Vec<String>>,
}

/// A container as the list call shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSummary {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// Host ports it publishes.
    pub published_ports: Vec<u16>,
}

/// Docker's own health status, for images with a HEALTHCHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerHealth {
    /// The image has no HEALTHCHECK.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as inspect shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
    pub health: DockerHealth,
    /// The last health check output Docker recorded, if any.
    pub health_output: Option<String>,
    pub started_at: Option<String>,
    pub error: Option<String>,
    /// The host ports it is configured to publish, running or not.
    pub host_ports: Vec<u16>,
}

/// The result of a command run inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    /// stdout and stderr, interleaved, trimmed to a sensible size.
    pub output: String,
}

/// A container event that matters while waiting on health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    pub kind: ContainerEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    Start,
    Die { exit_code: Option<i64> },
    Restart,
    Oom,
    HealthStatus(DockerHealth),
}

/// Progress of a pull or build, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProgress {
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// What the executor and the observer may ask of a Docker engine.
///
/// Every method names its object in its error. Mutating methods are marked; a dry run
/// calls none of them (the fake records calls to prove it).
pub trait Runtime: Send + Sync {
    fn engine(&self) -> &EngineInfo;

    /// Every container, running or not.
    fn list_containers(&self) -> impl Future<Output = DockerResult<Vec<ContainerSummary>>> + Send;

    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = DockerResult<ContainerDetails>> + Send;

    /// Every `repository:tag` present locally.
    fn list_images(&self) -> impl Future<Output = DockerResult<BTreeSet<String>>> + Send;

    /// The labels of the network called exactly `name`; `None` if there is none.
    fn network_labels(
        &self,
        name: &str,
    ) -> impl Future<Output = DockerResult<Option<BTreeMap<String, String>>>> + Send;

    /// Mutating.
    fn remove_network(&self, name: &str) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating. Creates a bridge network with these labels.
    fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating. Pulls an image; `progress` sees each status line.
    fn pull_image(
        &self,
        image: &str,
        progress: &(dyn Fn(ImageProgress) + Send + Sync),
    ) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating. Builds `tag` from a build context (a tar with a Dockerfile).
    fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating. Returns the new container's id.
    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = DockerResult<String>> + Send;

    /// Mutating.
    fn start_container(&self, id: &str) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating. SIGTERM, then SIGKILL after `grace`.
    fn stop_container(
        &self,
        id: &str,
        grace: Duration,
    ) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating. Removes a container, stopping it if it runs.
    fn remove_container(&self, id: &str) -> impl Future<Output = DockerResult<()>> + Send;

    /// Mutating.
    fn rename_container(
        &self,
        id: &str,
        new_name: &str,
    ) -> impl Future<Output = DockerResult<()>> + Send;

    /// Runs a command inside a running container (read-only as far as Docker objects go).
    fn exec(
        &self,
        id: &str,
        command: &[String],
    ) -> impl Future<Output = DockerResult<ExecOutput>> + Send;

    /// The last `lines` lines of the container's log.
    fn logs(
        &self,
        id: &str,
        lines: usize,
    ) -> impl Future<Output = DockerResult<Vec<String>>> + Send;

    /// Events of containers carrying `label` (`key=value`), from now on.
    fn container_events(&self, label: &str) -> BoxStream<'static, DockerResult<ContainerEvent>>;
}
