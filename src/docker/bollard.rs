//! The real Docker engine, through the bollard crate.
//!
//! Owns the connection (host selection, version negotiation, timeouts) and the translation
//! between bollard's wire types and this project's own: every bollard error leaves this file
//! as a [`DockerError`] naming the operation and the object. This is the only module that
//! may import bollard. It must not decide anything: no retries, no policy, no knowledge of
//! plans, phases or services; it does exactly the call it is asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerSummaryStateEnum, EndpointSettings,
    EventMessage, ExecConfig, HealthStatusEnum, HostConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder, ListImagesOptions,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::stream::{BoxStream, StreamExt};

use super::{
    ContainerDetails, ContainerEvent, ContainerEventKind, ContainerSpec, ContainerSummary,
    DockerError, DockerHealth, DockerResult, EngineInfo, ExecOutput, ImageProgress, Runtime,
};
use crate::plan::observed::ContainerState;

/// The engine's address when neither the configuration nor `DOCKER_HOST` names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long connecting (version negotiation included) may take before the engine counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// bollard's per-request timeout: the time until the engine starts answering. Pulls and
/// builds stream their progress after that, so it does not bound them.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a command run inside a container may take, output included.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a command's output is kept.
const EXEC_OUTPUT_LIMIT: usize = 8 * 1024;

/// The Docker engine behind [`Runtime`].
#[derive(Debug, Clone)]
pub struct BollardRuntime {
    docker: Docker,
    engine: EngineInfo,
}

impl BollardRuntime {
    /// Connects to `host` (`unix://…`, `tcp://…`, `http://…`), or with `None` to
    /// `DOCKER_HOST`, else the local socket; negotiates the API version and reads the
    /// engine's version. Fails within [`CONNECT_TIMEOUT`] when the engine does not answer.
    pub async fn connect(host: Option<&str>) -> DockerResult<Self> {
        let configured = match host {
            Some(host) => Some(host.to_owned()),
            None => std::env::var("DOCKER_HOST")
                .ok()
                .filter(|value| !value.trim().is_empty()),
        };
        let shown = configured
            .clone()
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let docker = open(configured.as_deref()).map_err(|source| DockerError::Connect {
            host: shown.clone(),
            source,
        })?;

        let handshake = async {
            let docker = docker.negotiate_version().await?;
            let version = docker.version().await?;
            Ok::<_, BollardError>((docker, version))
        };
        let (docker, version) = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Err(_elapsed) => {
                return Err(DockerError::Unresponsive {
                    host: shown,
                    timeout: CONNECT_TIMEOUT,
                });
            }
            Ok(Err(error)) => {
                return Err(DockerError::Connect {
                    host: shown,
                    source: readable(error),
                });
            }
            Ok(Ok(answer)) => answer,
        };

        let api = docker.client_version();
        let engine = EngineInfo {
            local: is_local(&shown),
            host: shown,
            version: version.version.unwrap_or_else(|| "unknown".to_owned()),
            api_version: format!("{}.{}", api.major_version, api.minor_version),
        };
        Ok(Self { docker, engine })
    }

    /// A handle whose request timeout also covers an answer that comes only after `wait`.
    fn patient(&self, wait: Duration) -> Docker {
        let needed = wait + Duration::from_secs(30);
        if needed > REQUEST_TIMEOUT {
            self.docker.clone().with_timeout(needed)
        } else {
            self.docker.clone()
        }
    }
}

/// Opens a client for `host` (no request is made yet).
fn open(host: Option<&str>) -> Result<Docker, Box<dyn std::error::Error + Send + Sync>> {
    open_with(host, certificate_directory)
}

/// [`open`], with the place of the TLS client certificates given.
fn open_with(
    host: Option<&str>,
    certificate_directory: impl Fn() -> Result<
        std::path::PathBuf,
        Box<dyn std::error::Error + Send + Sync>,
    >,
) -> Result<Docker, Box<dyn std::error::Error + Send + Sync>> {
    let docker = match host {
        None => Docker::connect_with_local_defaults()?,
        Some(host) if host.starts_with("unix://") => {
            Docker::connect_with_unix(host, REQUEST_TIMEOUT.as_secs(), API_DEFAULT_VERSION)?
        }
        Some(host)
            if host.starts_with("https://") || (host.starts_with("tcp://") && tls_requested()) =>
        {
            let directory = certificate_directory()?;
            let [key, cert, ca] =
                ["key.pem", "cert.pem", "ca.pem"].map(|file| directory.join(file));
            for path in [&key, &cert, &ca] {
                if !path.is_file() {
                    return Err(EngineMessage::boxed(format!(
                        "TLS to the engine needs `{}`, which does not exist\nhint: set DOCKER_CERT_PATH to the directory with key.pem, cert.pem and ca.pem (as for the docker CLI), or unset DOCKER_TLS_VERIFY",
                        path.display()
                    )));
                }
            }
            Docker::connect_with_ssl(
                host,
                &key,
                &cert,
                &ca,
                REQUEST_TIMEOUT.as_secs(),
                API_DEFAULT_VERSION,
            )?
        }
        Some(host) if host.starts_with("tcp://") || host.starts_with("http://") => {
            Docker::connect_with_http(host, REQUEST_TIMEOUT.as_secs(), API_DEFAULT_VERSION)?
        }
        Some(host) => {
            return Err(EngineMessage::boxed(format!(
                "`{host}` is not a supported engine address\nhint: use `unix:///path/to/docker.sock` or `tcp://host:port`"
            )));
        }
    };
    Ok(docker.with_timeout(REQUEST_TIMEOUT))
}

/// Where the client certificates are: DOCKER_CERT_PATH, else `~/.docker` (as the docker CLI).
fn certificate_directory() -> Result<std::path::PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(path) = std::env::var_os("DOCKER_CERT_PATH").filter(|path| !path.is_empty()) {
        return Ok(path.into());
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(std::path::PathBuf::from(home).join(".docker")),
        None => Err(EngineMessage::boxed(
            "TLS to the engine needs client certificates: set DOCKER_CERT_PATH",
        )),
    }
}

/// Whether `DOCKER_TLS_VERIFY` asks for TLS (the Docker CLI treats any non-empty value so).
fn tls_requested() -> bool {
    std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|value| !value.is_empty())
}

/// Whether the engine at `host` runs on this machine: a unix socket, or TCP to loopback.
fn is_local(host: &str) -> bool {
    if host.starts_with("unix://") {
        return true;
    }
    let Some(rest) = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|scheme| host.strip_prefix(scheme))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let name = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    name.eq_ignore_ascii_case("localhost") || name == "::1" || name.starts_with("127.")
}

/// A message from the engine (or about it), as the source of a [`DockerError`].
#[derive(Debug)]
struct EngineMessage(String);

impl EngineMessage {
    fn boxed(message: impl Into<String>) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(Self(message.into()))
    }
}

impl fmt::Display for EngineMessage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for EngineMessage {}

/// A bollard error as a source that reads well: the engine's own message where it sent one.
fn readable(error: BollardError) -> Box<dyn std::error::Error + Send + Sync> {
    match error {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let message = message.trim();
            if message.is_empty() {
                EngineMessage::boxed(format!("the engine answered with status {status_code}"))
            } else {
                EngineMessage::boxed(message)
            }
        }
        BollardError::DockerStreamError { error } => EngineMessage::boxed(error.trim()),
        BollardError::RequestTimeoutError => {
            EngineMessage::boxed("the engine did not answer in time".to_owned())
        }
        other => Box::new(other),
    }
}

/// Any bollard error from `operation` on `object`; a 404 means the object does not exist.
fn failure(operation: &'static str, object: &str, error: BollardError) -> DockerError {
    if let BollardError::DockerResponseServerError {
        status_code: 404, ..
    } = error
    {
        return DockerError::NotFound {
            object: object.to_owned(),
        };
    }
    DockerError::Operation {
        operation,
        object: object.to_owned(),
        source: readable(error),
    }
}

/// Whether a failed pull means the image cannot be had (absent, or the registry out of
/// reach), as opposed to an engine problem.
fn image_unavailable(error: &BollardError) -> bool {
    const SIGNS: &[&str] = &[
        "not found",
        "no such host",
        "pull access denied",
        "manifest unknown",
        "repository does not exist",
        "unauthorized",
        "dial tcp",
        "connection refused",
        "network is unreachable",
        "no route to host",
        "i/o timeout",
        "tls handshake timeout",
        "temporary failure in name resolution",
        "server misbehaving",
        "client.timeout exceeded",
        "server gave http response to https client",
    ];
    let message = match error {
        BollardError::DockerResponseServerError {
            status_code: 404, ..
        } => return true,
        BollardError::DockerResponseServerError { message, .. } => message,
        BollardError::DockerStreamError { error } => error,
        _ => return false,
    };
    let message = message.to_ascii_lowercase();
    SIGNS.iter().any(|sign| message.contains(sign))
}

fn container_state(state: Option<ContainerSummaryStateEnum>) -> ContainerState {
    match state {
        Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::STOPPING) => {
            ContainerState::Running
        }
        Some(ContainerSummaryStateEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerSummaryStateEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerSummaryStateEnum::EXITED) => ContainerState::Exited,
        Some(ContainerSummaryStateEnum::DEAD) => ContainerState::Dead,
        Some(ContainerSummaryStateEnum::CREATED | ContainerSummaryStateEnum::EMPTY) | None => {
            ContainerState::Created
        }
    }
}

fn inspected_state(state: Option<ContainerStateStatusEnum>) -> ContainerState {
    match state {
        Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::STOPPING) => {
            ContainerState::Running
        }
        Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited,
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        Some(ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::EMPTY) | None => {
            ContainerState::Created
        }
    }
}

fn docker_health(status: Option<HealthStatusEnum>) -> DockerHealth {
    match status {
        Some(HealthStatusEnum::STARTING) => DockerHealth::Starting,
        Some(HealthStatusEnum::HEALTHY) => DockerHealth::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => DockerHealth::Unhealthy,
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => DockerHealth::None,
    }
}

/// A container's name without the leading `/`; with legacy links a container also has
/// names like `/other/alias`, which are skipped.
fn primary_name(names: &[String]) -> String {
    names
        .iter()
        .map(|name| name.trim_start_matches('/'))
        .find(|name| !name.contains('/'))
        .or_else(|| names.first().map(|name| name.trim_start_matches('/')))
        .unwrap_or_default()
        .to_owned()
}

fn sorted_labels(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

/// The `since` of an event subscription meaning "now", as the engine parses it.
fn timestamp_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// One engine event as a [`ContainerEvent`], if it is one that matters.
fn container_event(message: EventMessage) -> Option<ContainerEvent> {
    let actor = message.actor?;
    let id = actor.id?;
    let action = message.action?;
    let kind = match action.as_str() {
        "start" => ContainerEventKind::Start,
        "die" => ContainerEventKind::Die {
            exit_code: actor
                .attributes
                .as_ref()
                .and_then(|attributes| attributes.get("exitCode"))
                .and_then(|code| code.trim().parse().ok()),
        },
        "restart" => ContainerEventKind::Restart,
        "oom" => ContainerEventKind::Oom,
        other => {
            let status = other.strip_prefix("health_status:")?.trim();
            ContainerEventKind::HealthStatus(match status {
                "healthy" => DockerHealth::Healthy,
                "unhealthy" => DockerHealth::Unhealthy,
                "starting" => DockerHealth::Starting,
                _ => return None,
            })
        }
    };
    Some(ContainerEvent { id, kind })
}

/// Lines of a log, without their line ends.
fn log_lines(bytes: &[u8]) -> Vec<String> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect()
}

impl Runtime for BollardRuntime {
    fn engine(&self) -> &EngineInfo {
        &self.engine
    }

    async fn list_containers(&self) -> DockerResult<Vec<ContainerSummary>> {
        let options = ListContainersOptionsBuilder::default().all(true).build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| failure("list containers on", &self.engine.host, error))?;
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                let mut published_ports: Vec<u16> = container
                    .ports
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|port| port.public_port)
                    .collect();
                published_ports.sort_unstable();
                published_ports.dedup();
                Some(ContainerSummary {
                    id: container.id?,
                    name: primary_name(&container.names.unwrap_or_default()),
                    image: container.image.unwrap_or_default(),
                    labels: sorted_labels(container.labels),
                    state: container_state(container.state),
                    published_ports,
                })
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> DockerResult<ContainerDetails> {
        let response = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|error| failure("inspect container", id, error))?;
        let config = response.config.unwrap_or_default();
        let state = response.state.unwrap_or_default();
        let health = state.health.unwrap_or_default();
        let health_output = health
            .log
            .as_deref()
            .and_then(<[_]>::last)
            .and_then(|result| result.output.as_deref())
            .map(|output| output.trim_end().to_owned())
            .filter(|output| !output.is_empty());
        Ok(ContainerDetails {
            id: response.id.unwrap_or_else(|| id.to_owned()),
            name: response
                .name
                .map(|name| name.trim_start_matches('/').to_owned())
                .unwrap_or_default(),
            image: config.image.or(response.image).unwrap_or_default(),
            labels: sorted_labels(config.labels),
            state: inspected_state(state.status),
            exit_code: state.exit_code,
            restart_count: response.restart_count.unwrap_or(0),
            health: docker_health(health.status),
            health_output,
            // Docker's zero time: the container never started.
            started_at: state
                .started_at
                .filter(|started| !started.is_empty() && !started.starts_with("0001-")),
            error: state.error.filter(|error| !error.is_empty()),
            host_ports: response
                .host_config
                .and_then(|host_config| host_config.port_bindings)
                .into_iter()
                .flatten()
                .flat_map(|(_, bindings)| bindings.into_iter().flatten())
                .filter_map(|binding| binding.host_port?.parse().ok())
                .collect(),
        })
    }

    async fn list_images(&self) -> DockerResult<BTreeSet<String>> {
        let images = self
            .docker
            .list_images(None::<ListImagesOptions>)
            .await
            .map_err(|error| failure("list images on", &self.engine.host, error))?;
        Ok(images
            .into_iter()
            .flat_map(|image| image.repo_tags)
            .filter(|tag| tag != "<none>:<none>")
            .collect())
    }

    async fn network_labels(&self, name: &str) -> DockerResult<Option<BTreeMap<String, String>>> {
        // The name filter matches substrings and inspect also matches id prefixes: compare.
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|error| failure("look up network", name, error))?;
        Ok(networks
            .into_iter()
            .find(|network| network.name.as_deref() == Some(name))
            .map(|network| sorted_labels(network.labels)))
    }

    async fn remove_network(&self, name: &str) -> DockerResult<()> {
        self.docker
            .remove_network(name)
            .await
            .map_err(|error| failure("remove network", name, error))
    }

    async fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> DockerResult<()> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(|error| failure("create network", name, error))?;
        Ok(())
    }

    async fn pull_image(
        &self,
        image: &str,
        progress: &(dyn Fn(ImageProgress) + Send + Sync),
    ) -> DockerResult<()> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|error| {
                if image_unavailable(&error) {
                    DockerError::ImageUnavailable {
                        image: image.to_owned(),
                        source: Some(readable(error)),
                    }
                } else {
                    DockerError::Operation {
                        operation: "pull image",
                        object: image.to_owned(),
                        source: readable(error),
                    }
                }
            })?;
            let detail = info.progress_detail.unwrap_or_default();
            let status = match (info.id, info.status) {
                (Some(layer), Some(status)) => format!("{layer}: {status}"),
                (None, Some(status)) => status,
                (_, None) => continue,
            };
            progress(ImageProgress {
                status,
                current: detail.current.and_then(|value| u64::try_from(value).ok()),
                total: detail.total.and_then(|value| u64::try_from(value).ok()),
            });
        }
        Ok(())
    }

    async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        labels: &BTreeMap<String, String>,
    ) -> DockerResult<()> {
        let labels: HashMap<&str, &str> = labels
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        // The classic builder (the default version): no BuildKit session is needed, and
        // engines without BuildKit (Docker 20.10) build the same way.
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .labels(&labels)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(item) = stream.next().await {
            item.map_err(|error| failure("build image", tag, error))?;
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> DockerResult<String> {
        let mut port_bindings: HashMap<String, Option<Vec<bollard::models::PortBinding>>> =
            HashMap::new();
        for binding in &spec.ports {
            port_bindings
                .entry(format!("{}/tcp", binding.container))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(bollard::models::PortBinding {
                    host_ip: Some(binding.address.clone()),
                    host_port: Some(binding.host.to_string()),
                });
        }
        let mut exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();
        exposed_ports.sort();
        let endpoint = EndpointSettings {
            aliases: Some(spec.aliases.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            cmd: spec.command.clone(),
            exposed_ports: Some(exposed_ports),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                network_mode: Some(spec.network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let response = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|error| match error {
                // A 404 here is about the image (or the network), never the new container.
                BollardError::DockerResponseServerError {
                    status_code: 404,
                    ref message,
                } if message.starts_with("No such image") => DockerError::ImageUnavailable {
                    image: spec.image.clone(),
                    source: Some(readable(error)),
                },
                error => DockerError::Operation {
                    operation: "create container",
                    object: spec.name.clone(),
                    source: readable(error),
                },
            })?;
        Ok(response.id)
    }

    async fn start_container(&self, id: &str) -> DockerResult<()> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(|error| failure("start container", id, error))
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> DockerResult<()> {
        // Whole seconds, rounded up: a grace of 500 ms must not become an instant SIGKILL.
        let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let options = StopContainerOptionsBuilder::default()
            .t(i32::try_from(seconds).unwrap_or(i32::MAX))
            .build();
        // A container that is already stopped answers 304, which bollard counts as success.
        self.patient(grace)
            .stop_container(id, Some(options))
            .await
            .map_err(|error| failure("stop container", id, error))
    }

    async fn remove_container(&self, id: &str) -> DockerResult<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(|error| failure("remove container", id, error))
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> DockerResult<()> {
        let options = RenameContainerOptionsBuilder::default()
            .name(new_name)
            .build();
        self.docker
            .rename_container(id, options)
            .await
            .map_err(|error| failure("rename container", id, error))
    }

    async fn exec(&self, id: &str, command: &[String]) -> DockerResult<ExecOutput> {
        const OPERATION: &str = "run a command in container";
        let run = async {
            let config = ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(command.to_vec()),
                ..Default::default()
            };
            let exec = self
                .docker
                .create_exec(id, config)
                .await
                .map_err(|error| failure(OPERATION, id, error))?;
            let started = self
                .docker
                .start_exec(&exec.id, None::<StartExecOptions>)
                .await
                .map_err(|error| failure(OPERATION, id, error))?;
            let mut output = Vec::new();
            let mut truncated = false;
            if let StartExecResults::Attached {
                output: mut stream, ..
            } = started
            {
                // Read to the end, so that the command finishes, but keep only the start.
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|error| failure(OPERATION, id, error))?;
                    let room = EXEC_OUTPUT_LIMIT.saturating_sub(output.len());
                    let bytes = chunk.as_ref();
                    truncated |= bytes.len() > room;
                    output.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
            let inspected = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|error| failure(OPERATION, id, error))?;
            let mut output = String::from_utf8_lossy(&output).into_owned();
            if truncated {
                output.push_str("\n… (output truncated)");
            }
            Ok(ExecOutput {
                exit_code: inspected.exit_code,
                output,
            })
        };
        tokio::time::timeout(EXEC_TIMEOUT, run)
            .await
            .unwrap_or_else(|_elapsed| {
                Err(DockerError::Operation {
                    operation: OPERATION,
                    object: id.to_owned(),
                    source: EngineMessage::boxed(format!(
                        "the command `{}` did not finish within {EXEC_TIMEOUT:?}",
                        command.join(" ")
                    )),
                })
            })
    }

    async fn logs(&self, id: &str, lines: usize) -> DockerResult<Vec<String>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(false)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| failure("read the log of container", id, error))?;
            bytes.extend_from_slice(chunk.as_ref());
        }
        Ok(log_lines(&bytes))
    }

    /// From now on, by the engine's clock: events are asked for `since` the moment of this
    /// call, so none is lost while the subscription is still being set up.
    fn container_events(&self, label: &str) -> BoxStream<'static, DockerResult<ContainerEvent>> {
        let filters = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("label", vec![label.to_owned()]),
            (
                "event",
                ["start", "die", "restart", "oom", "health_status"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
        ]);
        let options = EventsOptionsBuilder::default()
            .since(&timestamp_now())
            .filters(&filters)
            .build();
        let label = label.to_owned();
        let docker = self.docker.clone();
        docker
            .events(Some(options))
            .filter_map(move |item| {
                let item = match item {
                    Ok(message) => container_event(message).map(Ok),
                    Err(error) => Some(Err(failure(
                        "follow the events of containers labelled",
                        &label,
                        error,
                    ))),
                };
                std::future::ready(item)
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_which_hosts_are_local() {
        let table = [
            ("unix:///var/run/docker.sock", true),
            ("tcp://127.0.0.1:2375", true),
            ("tcp://localhost:2375", true),
            ("http://LOCALHOST", true),
            ("tcp://[::1]:2375", true),
            ("tcp://staging-docker.internal:2376", false),
            ("tcp://10.0.0.5:2375", false),
            ("ssh://me@127.0.0.1", false),
        ];
        for (host, local) in table {
            assert_eq!(is_local(host), local, "{host}");
        }
    }

    #[test]
    fn refuses_addresses_it_cannot_use() {
        let error = open(Some("ssh://me@example.org")).expect_err("ssh is not supported");
        assert!(
            error.to_string().contains("not a supported engine address"),
            "{error}"
        );
        // TLS needs the client certificates, as the docker CLI does; a missing one is named.
        let empty = tempfile::tempdir().unwrap();
        let directory = empty.path().to_path_buf();
        let error = open_with(Some("https://staging-docker.internal:2376"), || {
            Ok(directory.clone())
        })
        .expect_err("no certificates");
        assert!(
            error.to_string().contains("key.pem") && error.to_string().contains("DOCKER_CERT_PATH"),
            "{error}"
        );
    }

    #[test]
    fn maps_engine_events() {
        let event = |action: &str, attributes: &[(&str, &str)]| EventMessage {
            action: Some(action.to_owned()),
            actor: Some(bollard::models::EventActor {
                id: Some("abc".to_owned()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        let kind = |message| container_event(message).map(|event| event.kind);
        assert_eq!(kind(event("start", &[])), Some(ContainerEventKind::Start));
        assert_eq!(
            kind(event("die", &[("exitCode", "1")])),
            Some(ContainerEventKind::Die { exit_code: Some(1) })
        );
        assert_eq!(
            kind(event("die", &[])),
            Some(ContainerEventKind::Die { exit_code: None })
        );
        assert_eq!(kind(event("oom", &[])), Some(ContainerEventKind::Oom));
        assert_eq!(
            kind(event("restart", &[])),
            Some(ContainerEventKind::Restart)
        );
        assert_eq!(
            kind(event("health_status: healthy", &[])),
            Some(ContainerEventKind::HealthStatus(DockerHealth::Healthy))
        );
        assert_eq!(
            kind(event("health_status: unhealthy", &[])),
            Some(ContainerEventKind::HealthStatus(DockerHealth::Unhealthy))
        );
        assert_eq!(kind(event("exec_start: ls", &[])), None);
    }

    #[test]
    fn splits_logs_into_lines() {
        assert_eq!(log_lines(b"one\ntwo\r\nthree\n"), ["one", "two", "three"]);
        assert_eq!(log_lines(b"no end"), ["no end"]);
        assert!(log_lines(b"").is_empty());
        assert_eq!(log_lines(b"\n"), [""]);
    }

    #[test]
    fn names_lose_their_slash_and_links() {
        let names = ["/web/db".to_owned(), "/db".to_owned()];
        assert_eq!(primary_name(&names), "db");
        assert_eq!(primary_name(&[]), "");
    }

    #[test]
    fn tells_an_unavailable_image_from_an_engine_failure() {
        let server = |status_code, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        };
        assert!(image_unavailable(&server(404, "pull access denied for x")));
        assert!(image_unavailable(&server(
            500,
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"
        )));
        assert!(!image_unavailable(&server(500, "no space left on device")));
    }

    #[test]
    fn maps_not_found_and_keeps_the_engine_message() {
        let error = failure(
            "start container",
            "web",
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "No such container: web".to_owned(),
            },
        );
        assert!(matches!(error, DockerError::NotFound { ref object } if object == "web"));

        let error = failure(
            "create container",
            "web",
            BollardError::DockerResponseServerError {
                status_code: 409,
                message: "Conflict. The container name \"/web\" is already in use".to_owned(),
            },
        );
        assert_eq!(error.to_string(), "cannot create container `web`");
        let source = std::error::Error::source(&error).expect("a source");
        assert!(source.to_string().starts_with("Conflict."), "{source}");
    }
}
