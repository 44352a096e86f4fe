//! The domain types: a validated platform, its services, health checks and phases.
//!
//! Owns plain data only. It does no IO, knows nothing of TOML, Docker or the terminal, and
//! every other layer may use it. A value of these types is valid by construction: only
//! `config` builds them, after checking everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// The name of a service, as written in `[services.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ServiceName(String);

impl ServiceName {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ServiceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A deployment phase number, 1 to 4.
pub type PhaseNumber = u8;

/// The phases a platform always has.
pub const PHASES: std::ops::RangeInclusive<PhaseNumber> = 1..=4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// A platform service: belongs to exactly one phase.
    Service,
    /// Started on demand by the first phase that needs it; never rolled back.
    Infrastructure,
    /// Never started; only checked before its dependents start.
    External,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Infrastructure => "infrastructure",
            Self::External => "external",
        }
    }
}

/// One published port: `host` on the host maps to `container` inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host == self.container {
            write!(formatter, "{}", self.host)
        } else {
            write!(formatter, "{}:{}", self.host, self.container)
        }
    }
}

/// What a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// HTTP GET on the first host port, each path tried in order; 2xx or 3xx is healthy.
    Http { paths: Vec<String> },
    /// A TCP connect to the first host port (`target: None`) or to `host:port`.
    Tcp { target: Option<TcpTarget> },
    /// A command run inside the container through `docker exec`; exit 0 is healthy.
    Cmd { command: Vec<String> },
    /// The image's own HEALTHCHECK, as Docker reports it.
    Docker,
}

impl Probe {
    /// A short human description, e.g. `http /health, /` or `cmd pg_isready -U postgres`.
    pub fn describe(&self) -> String {
        match self {
            Self::Http { paths } => format!("http {}", paths.join(", ")),
            Self::Tcp { target: None } => "tcp".to_owned(),
            Self::Tcp {
                target: Some(target),
            } => format!("tcp {}:{}", target.host, target.port),
            Self::Cmd { command } => format!("cmd {}", command.join(" ")),
            Self::Docker => "docker HEALTHCHECK".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TcpTarget {
    pub host: String,
    pub port: u16,
}

/// A health check with its timing. Defaults: see [`HealthTiming::default`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HealthCheck {
    pub probe: Probe,
    pub timing: HealthTiming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct HealthTiming {
    /// A grace time after start: the deadline is never shorter than this.
    #[serde(with = "humantime_serde")]
    pub start_period: Duration,
    /// The first retry delay.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The backoff cap.
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// The deadline from container start to healthy.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The limit for one probe.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
}

impl Default for HealthTiming {
    fn default() -> Self {
        Self {
            start_period: Duration::ZERO,
            interval: Duration::from_millis(20),
            max_interval: Duration::from_millis(75),
            timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(2),
        }
    }
}

/// An environment value: literal text with `${SECRET}` references left in place.
///
/// Plain `${VAR}`s are resolved when the configuration loads. Secrets are resolved only at
/// rollout time, from the process environment, and never stored: this template is what the
/// spec hash, the journal and every printout see.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EnvTemplate(pub String);

impl EnvTemplate {
    /// The names of the secrets this value refers to.
    pub fn secret_references(&self) -> Vec<&str> {
        crate::vars::references(&self.0)
            .into_iter()
            .map(|reference| reference.name)
            .collect()
    }
}

/// How a demo stand-in of a service behaves (only with a `[demo]` overlay).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DemoBehaviour {
    #[serde(with = "humantime_serde")]
    pub ready_after: Duration,
    pub fail: Option<DemoFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DemoFailure {
    /// Runs, but never becomes ready.
    NeverReady,
    /// Exits with status 1 at once.
    Exit,
    /// Exits with status 2 this long after it starts.
    CrashAfter(#[serde(with = "humantime_serde")] Duration),
}

impl fmt::Display for DemoFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NeverReady => formatter.write_str("never-ready"),
            Self::Exit => formatter.write_str("exit"),
            Self::CrashAfter(after) => {
                write!(
                    formatter,
                    "crash-after:{}",
                    humantime::format_duration(*after)
                )
            }
        }
    }
}

/// A fully resolved service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: ServiceName,
    pub title: String,
    pub description: Option<String>,
    pub kind: ServiceKind,
    pub category: Option<String>,
    /// The image, `${VAR}`s resolved. Externals have none.
    pub image: Option<String>,
    pub ports: Vec<PortMapping>,
    pub depends_on: Vec<ServiceName>,
    pub env: BTreeMap<String, EnvTemplate>,
    pub secrets: BTreeSet<String>,
    pub range_exempt: Option<String>,
    pub health: HealthCheck,
    pub command: Option<Vec<String>>,
    /// Set for platform services; `None` for infrastructure and externals.
    pub phase: Option<PhaseNumber>,
    /// Set when an environment overlay has a `[demo]` table.
    pub demo: Option<DemoBehaviour>,
}

impl Service {
    /// The host port HTTP and TCP probes use.
    pub fn first_host_port(&self) -> Option<u16> {
        self.ports.first().map(|mapping| mapping.host)
    }

    /// Whether `rollout` runs a container for it (externals run only as demo stand-ins).
    pub fn runs_container(&self) -> bool {
        self.kind != ServiceKind::External || self.demo.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Leave healthy services up and the failed one stopped for inspection.
    #[default]
    Halt,
    /// Undo every change of this run, in reverse dependency order.
    Rollback,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Halt => "halt",
            Self::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    pub number: PhaseNumber,
    pub name: String,
    pub description: Option<String>,
    /// In the phase file's order, which breaks ties.
    pub services: Vec<ServiceName>,
    pub on_failure: FailurePolicy,
}

/// A reserved host-port range and the categories that belong in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRange {
    pub name: String,
    pub first: u16,
    pub last: u16,
    pub categories: Vec<String>,
    pub description: Option<String>,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// A disagreement between the platform's source documents and how the config settles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    pub topic: String,
    pub ports: Vec<u16>,
    pub plan: Option<String>,
    pub guide: Option<String>,
    pub resolution: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformSettings {
    pub name: String,
    pub network: String,
}

/// Where the Docker engine is and how ports are published.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DockerSettings {
    /// `None`: DOCKER_HOST, else the local socket.
    pub host: Option<String>,
    /// The host address ports are published on.
    pub bind_address: String,
}

/// A loaded, valid platform configuration for one environment.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    #[serde(skip)]
    index: std::collections::HashMap<ServiceName, usize>,
    pub platform: PlatformSettings,
    /// The environment overlay's name; `None` without `--env`.
    pub environment: Option<String>,
    pub docker: DockerSettings,
    /// In declaration order (file name, then position in the file). Private: the index
    /// must stay in step; build a new config with [`Config::new`] to change it.
    services: Vec<Service>,
    /// Always the four phases, 1 to 4.
    pub phases: Vec<Phase>,
    pub ranges: Vec<PortRange>,
    pub reconciliations: Vec<Reconciliation>,
    /// Whether a `[demo]` overlay is active.
    pub demo: bool,
    /// The demo image's tag, with a `[demo]` overlay.
    pub demo_image: Option<String>,
}

/// The parts of a [`Config`], for [`Config::new`].
#[derive(Debug, Clone)]
pub struct ConfigParts {
    pub platform: PlatformSettings,
    pub environment: Option<String>,
    pub docker: DockerSettings,
    pub services: Vec<Service>,
    pub phases: Vec<Phase>,
    pub ranges: Vec<PortRange>,
    pub reconciliations: Vec<Reconciliation>,
    pub demo: bool,
    pub demo_image: Option<String>,
}

impl Config {
    /// Assembles a config from parts that `config` (or a test) has already checked.
    pub fn new(parts: ConfigParts) -> Self {
        let index = parts
            .services
            .iter()
            .enumerate()
            .map(|(position, service)| (service.name.clone(), position))
            .collect();
        Self {
            index,
            platform: parts.platform,
            environment: parts.environment,
            docker: parts.docker,
            services: parts.services,
            phases: parts.phases,
            ranges: parts.ranges,
            reconciliations: parts.reconciliations,
            demo: parts.demo,
            demo_image: parts.demo_image,
        }
    }

    /// Every service, in declaration order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.index
            .get(name)
            .map(|&position| &self.services[position])
    }

    pub fn phase(&self, number: PhaseNumber) -> Option<&Phase> {
        self.phases.iter().find(|phase| phase.number == number)
    }

    /// The environment label value: the overlay's name, or `default`.
    pub fn environment_label(&self) -> &str {
        self.environment.as_deref().unwrap_or("default")
    }

    /// The container name of a service: `<platform>-<service>`.
    pub fn container_name(&self, service: &ServiceName) -> String {
        format!("{}-{}", self.platform.name, service)
    }
}
