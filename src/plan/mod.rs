//! The planner: from a configuration, a phase selection and an observed host to a [`Plan`].
//!
//! Pure: no IO, no clock, no tokio. The dry run prints the plan; the executor runs it. Each
//! step carries the reasons for its action, so that `plan` can tell "why".

pub mod observed;
pub mod recovery;
pub mod spec;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::graph::DependencyGraph;
use crate::model::{
    Config, FailurePolicy, PHASES, PhaseNumber, PortMapping, Service, ServiceKind, ServiceName,
};
use observed::{
    ContainerState, Observation, ObservedContainer, ObservedHealth, ObservedHost, PortHolder,
    labels,
};
pub use spec::{Change, Spec};

/// Which phases a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    Phase(PhaseNumber),
    /// This phase and every later one (what `resume` continues after a `phase all`).
    From(PhaseNumber),
    All,
}

impl Selection {
    pub fn phases(self) -> Vec<PhaseNumber> {
        match self {
            Self::Phase(number) => vec![number],
            Self::From(number) => (number..=*PHASES.end()).collect(),
            Self::All => PHASES.collect(),
        }
    }

    /// Whether `service` belongs to the selection: a platform service by its phase;
    /// infrastructure and externals only to `all`.
    pub fn includes(self, service: &Service) -> bool {
        match (self, service.phase) {
            (Self::All, _) => true,
            (_, Some(phase)) => self.phases().contains(&phase),
            (_, None) => false,
        }
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Phase(number) => write!(formatter, "phase {number}"),
            Self::From(number) => write!(formatter, "phases {number}-{}", PHASES.end()),
            Self::All => formatter.write_str("all phases"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Whether a real run would pull a missing image (`--no-pull` clears it).
    pub pull: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { pull: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Start infrastructure (or a demo stand-in of an external) that this phase needs.
    StartInfrastructure,
    /// Create and start a new container.
    Create,
    /// Stop the old container, keep it as `<name>-previous`, start a new one.
    Replace,
    /// Up to date but stopped: start the same container again.
    Start,
    /// Up to date and running: only its health is checked.
    Keep,
    /// An external: checked before its dependents start, never started.
    CheckExternal,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartInfrastructure => "start-infrastructure",
            Self::Create => "create",
            Self::Replace => "replace",
            Self::Start => "start",
            Self::Keep => "keep",
            Self::CheckExternal => "check-external",
        }
    }

    /// Whether the step changes the host.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Self::StartInfrastructure | Self::Create | Self::Replace | Self::Start
        )
    }
}

/// Why a step does what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// There is no container for it.
    NoContainer,
    /// Its container was made from another spec.
    Changed { changes: Vec<Change> },
    /// Its container exists but does not run.
    NotRunning { state: String },
    /// Its container runs but failed its check when observed.
    Unhealthy { detail: String },
    /// Same spec, running, not known to be unhealthy.
    UpToDate,
    /// Infrastructure or an external that these services need.
    NeededBy { services: Vec<ServiceName> },
    /// The demo overlay runs a stand-in for an external.
    DemoStandIn,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoContainer => formatter.write_str("no container yet"),
            Self::Changed { changes } => {
                let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
                write!(formatter, "changed: {}", changes.join("; "))
            }
            Self::NotRunning { state } => write!(formatter, "container is {state}"),
            Self::Unhealthy { detail } => write!(formatter, "container is unhealthy: {detail}"),
            Self::UpToDate => formatter.write_str("up to date"),
            Self::NeededBy { services } => {
                let names: Vec<&str> = services.iter().map(ServiceName::as_str).collect();
                write!(formatter, "needed by {}", names.join(", "))
            }
            Self::DemoStandIn => formatter.write_str("demo stand-in for an external"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub service: ServiceName,
    pub kind: ServiceKind,
    pub action: Action,
    pub reasons: Vec<Reason>,
    /// Its direct dependencies: it starts once all of them are healthy.
    pub waits_for: Vec<ServiceName>,
    pub container: String,
    /// The id of the container it finds (kept or replaced).
    pub existing: Option<String>,
    pub image: Option<String>,
    pub ports: Vec<PortMapping>,
    pub spec_hash: String,
}

/// A service of an earlier phase that this phase needs running and healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub service: ServiceName,
    pub phase: PhaseNumber,
    pub needed_by: Vec<ServiceName>,
    /// `None` when it is met (or this plan deploys it first); otherwise what is wrong.
    pub unmet: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhasePlan {
    pub number: PhaseNumber,
    pub name: String,
    pub on_failure: FailurePolicy,
    /// In start order: every step comes after the steps it waits for.
    pub steps: Vec<Step>,
    pub requirements: Vec<Requirement>,
}

/// Something that would stop a real run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "blocker", rename_all = "kebab-case")]
pub enum Blocker {
    PortHeld {
        port: u16,
        service: ServiceName,
        holder: PortHolder,
    },
    ImageMissing {
        image: String,
        services: Vec<ServiceName>,
    },
    EarlierPhase {
        phase: PhaseNumber,
        service: ServiceName,
        needed_by: Vec<ServiceName>,
        detail: String,
    },
    NameTaken {
        name: String,
        service: ServiceName,
        owner: String,
    },
    DockerUnreachable {
        host: String,
        detail: String,
    },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PortHeld {
                port,
                service,
                holder,
            } => {
                write!(
                    formatter,
                    "host port {port} of `{service}` is held by {holder}"
                )
            }
            Self::ImageMissing { image, services } => {
                let names: Vec<&str> = services.iter().map(ServiceName::as_str).collect();
                write!(
                    formatter,
                    "image `{image}` (for {}) is not present and pulling is off",
                    names.join(", ")
                )
            }
            Self::EarlierPhase {
                phase,
                service,
                needed_by,
                detail,
            } => {
                let names: Vec<&str> = needed_by.iter().map(ServiceName::as_str).collect();
                write!(
                    formatter,
                    "`{service}` of phase {phase} ({detail}) is needed by {}: run `rollout phase {phase}` first",
                    names.join(", ")
                )
            }
            Self::NameTaken {
                name,
                service,
                owner,
            } => {
                write!(
                    formatter,
                    "the container name `{name}` of `{service}` is taken by a container that is not ours ({owner})"
                )
            }
            Self::DockerUnreachable { host, detail } => write!(
                formatter,
                "the Docker engine at {host} is unreachable: {detail}"
            ),
        }
    }
}

/// Something a real run would do beyond its steps, worth knowing beforehand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "note", rename_all = "kebab-case")]
pub enum Note {
    WillPull {
        image: String,
    },
    WillBuildDemoImage {
        image: String,
    },
    Outdated {
        service: ServiceName,
        phase: PhaseNumber,
    },
}

impl std::fmt::Display for Note {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WillPull { image } => write!(
                formatter,
                "image `{image}` is not present locally: a real run pulls it"
            ),
            Self::WillBuildDemoImage { image } => write!(
                formatter,
                "the demo image `{image}` is not present: a real run builds it"
            ),
            Self::Outdated { service, phase } => write!(
                formatter,
                "`{service}` of phase {phase} runs an outdated spec: `rollout phase {phase}` would replace it"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub platform: String,
    pub environment: String,
    pub selection: Selection,
    pub observation: Observation,
    pub phases: Vec<PhasePlan>,
    pub blockers: Vec<Blocker>,
    pub notes: Vec<Note>,
}

impl Plan {
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.phases.iter().flat_map(|phase| phase.steps.iter())
    }

    /// Whether a real run would change nothing.
    pub fn is_noop(&self) -> bool {
        self.steps().all(|step| !step.action.mutates())
    }
}

/// What the planner knows about the host, indexed.
struct Host<'a> {
    /// Our container of each service (by its name `<platform>-<service>`).
    ours: HashMap<&'a str, &'a ObservedContainer>,
    by_name: HashMap<&'a str, &'a ObservedContainer>,
    ports: HashMap<u16, &'a PortHolder>,
}

impl<'a> Host<'a> {
    fn new(config: &Config, observed: &'a ObservedHost) -> Self {
        let environment = config.environment_label();
        let mut ours = HashMap::new();
        let mut by_name = HashMap::new();
        for container in &observed.containers {
            by_name.insert(container.name.as_str(), container);
            if container.is_ours(&config.platform.name, environment)
                && let Some(service) = container.label(labels::SERVICE)
                && container.name == format!("{}-{service}", config.platform.name)
            {
                ours.insert(service, container);
            }
        }
        let ports = observed
            .ports
            .iter()
            .map(|usage| (usage.port, &usage.holder))
            .collect();
        Self {
            ours,
            by_name,
            ports,
        }
    }

    /// Whether `holder` is our own container for `service` (then the port is fine).
    fn holds_own_port(&self, holder: &PortHolder, service: &ServiceName) -> bool {
        match holder {
            PortHolder::Container { id, .. } => self
                .ours
                .get(service.as_str())
                .is_some_and(|container| container.id == *id),
            PortHolder::Process { .. } => false,
        }
    }
}

/// Plans `selection` of `config` on the `observed` host.
pub fn plan(
    config: &Config,
    selection: Selection,
    observed: &ObservedHost,
    options: PlanOptions,
) -> Plan {
    let graph = DependencyGraph::new(
        config
            .services()
            .iter()
            .map(|s| (&s.name, s.depends_on.as_slice())),
    );
    let host = Host::new(config, observed);
    let position: HashMap<&ServiceName, usize> = config
        .phases
        .iter()
        .flat_map(|phase| phase.services.iter().enumerate())
        .map(|(position, name)| (name, position))
        .chain(
            config
                .services()
                .iter()
                .enumerate()
                .filter(|(_, s)| s.phase.is_none())
                .map(|(index, s)| (&s.name, index)),
        )
        .collect();

    let mut placed: HashSet<ServiceName> = HashSet::new();
    let selected = selection.phases();
    let mut phases = Vec::new();
    let mut blockers = Vec::new();
    let mut notes = Vec::new();
    let mut missing_images: BTreeMap<String, Vec<ServiceName>> = BTreeMap::new();

    if let Observation::Unreachable { host, detail } = &observed.observation {
        blockers.push(Blocker::DockerUnreachable {
            host: host.clone(),
            detail: detail.clone(),
        });
    }

    for number in selected.iter().copied() {
        let Some(phase) = config.phase(number) else {
            continue;
        };
        // Walk down from the phase's services: infrastructure and externals join this phase
        // (unless an earlier phase of this plan has them); services of earlier phases are
        // requirements and are not descended into.
        let mut members: HashMap<ServiceName, Vec<ServiceName>> = HashMap::new();
        let mut requirements: BTreeMap<ServiceName, Vec<ServiceName>> = BTreeMap::new();
        let mut stack: Vec<(ServiceName, Option<ServiceName>)> = phase
            .services
            .iter()
            .map(|name| (name.clone(), None))
            .collect();
        while let Some((name, needed_by)) = stack.pop() {
            let Some(service) = config.service(name.as_str()) else {
                continue;
            };
            let earlier = service.phase.is_some_and(|own| own < number);
            if earlier {
                requirements.entry(name).or_default().extend(needed_by);
                continue;
            }
            if placed.contains(&name) {
                continue;
            }
            let fresh = !members.contains_key(&name);
            let entry = members.entry(name.clone()).or_default();
            entry.extend(needed_by);
            if fresh {
                for dependency in graph.dependencies_of(name.as_str()) {
                    stack.push((dependency.clone(), Some(name.clone())));
                }
            }
        }
        let order = graph
            .order_of(
                |name| members.contains_key(name),
                |name| {
                    let service = config.service(name.as_str());
                    let group = u8::from(service.is_some_and(|s| s.kind == ServiceKind::Service));
                    (
                        group,
                        position.get(name).copied().unwrap_or(usize::MAX),
                        name.clone(),
                    )
                },
            )
            .expect("a valid config has no cycles");

        let mut steps = Vec::with_capacity(order.len());
        for name in order {
            let service = config.service(name.as_str()).expect("members are services");
            let mut needed_by = members.remove(&name).unwrap_or_default();
            needed_by.sort();
            needed_by.dedup();
            let step = plan_step(config, service, &host, needed_by);
            if step.action.mutates() {
                check_step_blockers(config, service, &step, &host, &mut blockers);
                if let Some(image) = &step.image
                    && !observed.images.contains(image)
                {
                    missing_images
                        .entry(image.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
            placed.insert(name);
            steps.push(step);
        }

        let requirements = requirements
            .into_iter()
            .map(|(name, mut needed_by)| {
                needed_by.sort();
                needed_by.dedup();
                let service = config
                    .service(name.as_str())
                    .expect("requirements are services");
                let required_phase = service.phase.expect("requirements are phase services");
                let unmet = if placed.contains(&name) {
                    None
                } else {
                    requirement_problem(config, service, &host, &mut notes)
                };
                if let Some(detail) = &unmet {
                    blockers.push(Blocker::EarlierPhase {
                        phase: required_phase,
                        service: name.clone(),
                        needed_by: needed_by.clone(),
                        detail: detail.clone(),
                    });
                }
                Requirement {
                    service: name,
                    phase: required_phase,
                    needed_by,
                    unmet,
                }
            })
            .collect();

        phases.push(PhasePlan {
            number,
            name: phase.name.clone(),
            on_failure: phase.on_failure,
            steps,
            requirements,
        });
    }

    for (image, services) in missing_images {
        if Some(&image) == config.demo_image.as_ref() {
            notes.push(Note::WillBuildDemoImage { image });
        } else if options.pull {
            notes.push(Note::WillPull { image });
        } else {
            blockers.push(Blocker::ImageMissing { image, services });
        }
    }

    Plan {
        platform: config.platform.name.clone(),
        environment: config.environment_label().to_owned(),
        selection,
        observation: observed.observation.clone(),
        phases,
        blockers,
        notes,
    }
}

fn plan_step(
    config: &Config,
    service: &Service,
    host: &Host<'_>,
    needed_by: Vec<ServiceName>,
) -> Step {
    let spec = Spec::of(config, service);
    let existing = host.ours.get(service.name.as_str()).copied();
    let mut reasons = Vec::new();
    let action = if !service.runs_container() {
        reasons.push(Reason::NeededBy {
            services: needed_by.clone(),
        });
        Action::CheckExternal
    } else {
        let (replace, reason) = match existing {
            None => (None, Reason::NoContainer),
            Some(container) if container.label(labels::SPEC) != Some(spec.hash.as_str()) => (
                Some(true),
                Reason::Changed {
                    changes: spec.changes_since(container.label(labels::SPEC_FIELDS)),
                },
            ),
            // Same spec, stopped (a halted run, a restored previous container): start it.
            Some(container) if container.state != ContainerState::Running => (
                None,
                Reason::NotRunning {
                    state: container.state.as_str().to_owned(),
                },
            ),
            Some(container) => match &container.health {
                ObservedHealth::Unhealthy(detail) => (
                    Some(true),
                    Reason::Unhealthy {
                        detail: detail.clone(),
                    },
                ),
                ObservedHealth::Healthy | ObservedHealth::Unknown => {
                    (Some(false), Reason::UpToDate)
                }
            },
        };
        reasons.push(reason);
        if service.kind != ServiceKind::Service {
            reasons.push(Reason::NeededBy {
                services: needed_by.clone(),
            });
            if service.kind == ServiceKind::External {
                reasons.push(Reason::DemoStandIn);
            }
        }
        match (replace, service.kind, existing) {
            (Some(false), _, _) => Action::Keep,
            (Some(true), _, _) => Action::Replace,
            (None, _, Some(_)) => Action::Start,
            (None, ServiceKind::Service, None) => Action::Create,
            (None, _, None) => Action::StartInfrastructure,
        }
    };
    Step {
        service: service.name.clone(),
        kind: service.kind,
        action,
        reasons,
        waits_for: service.depends_on.clone(),
        container: config.container_name(&service.name),
        existing: existing.map(|container| container.id.clone()),
        image: service.image.clone().filter(|_| service.runs_container()),
        ports: service.ports.clone(),
        spec_hash: spec.hash,
    }
}

fn check_step_blockers(
    config: &Config,
    service: &Service,
    step: &Step,
    host: &Host<'_>,
    blockers: &mut Vec<Blocker>,
) {
    for name in [
        step.container.clone(),
        format!("{}-previous", step.container),
    ] {
        if let Some(container) = host.by_name.get(name.as_str())
            && !container.is_ours(&config.platform.name, config.environment_label())
        {
            let owner = match (
                container.label(labels::PLATFORM),
                container.label(labels::ENVIRONMENT),
            ) {
                (Some(platform), Some(environment)) => {
                    format!("platform `{platform}`, environment `{environment}`")
                }
                _ => "no rollout labels".to_owned(),
            };
            blockers.push(Blocker::NameTaken {
                name,
                service: service.name.clone(),
                owner,
            });
        }
    }
    for port in &service.ports {
        if let Some(holder) = host.ports.get(&port.host)
            && !host.holds_own_port(holder, &service.name)
        {
            blockers.push(Blocker::PortHeld {
                port: port.host,
                service: service.name.clone(),
                holder: (*holder).clone(),
            });
        }
    }
}

/// What keeps an earlier phase's service from serving this phase, if anything.
fn requirement_problem(
    config: &Config,
    service: &Service,
    host: &Host<'_>,
    notes: &mut Vec<Note>,
) -> Option<String> {
    let Some(container) = host.ours.get(service.name.as_str()) else {
        return Some("not deployed".to_owned());
    };
    if container.state != ContainerState::Running {
        return Some(format!("container is {}", container.state.as_str()));
    }
    if let ObservedHealth::Unhealthy(detail) = &container.health {
        return Some(format!("unhealthy: {detail}"));
    }
    if container.label(labels::SPEC) != Some(Spec::of(config, service).hash.as_str()) {
        notes.push(Note::Outdated {
            service: service.name.clone(),
            phase: service.phase.unwrap_or_default(),
        });
    }
    None
}
