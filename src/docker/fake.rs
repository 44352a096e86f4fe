//! A recording, scriptable [`Runtime`] and [`Prober`] for unit tests.
//!
//! It keeps containers in memory, records every call (so a test can assert that a dry run
//! made no mutating one), and plays each service's scripted behaviour in tokio time, which
//! tests pause. Nothing here touches a real engine or the network.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{
    ContainerDetails, ContainerEvent, ContainerEventKind, ContainerSpec, ContainerSummary,
    DockerError, DockerHealth, DockerResult, EngineInfo, ExecOutput, ImageProgress, Runtime,
};
use crate::plan::observed::{ContainerState, labels};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    ListContainers,
    Inspect(String),
    ListImages,
    NetworkExists(String),
    CreateNetwork(String),
    RemoveNetwork(String),
    Pull(String),
    Build(String),
    Create(String),
    Start(String),
    Stop(String),
    Remove(String),
    Rename { from: String, to: String },
    Exec(String),
    Logs(String),
    Events,
}

impl Call {
    /// Whether the call changes the engine's state.
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Self::CreateNetwork(_)
                | Self::RemoveNetwork(_)
                | Self::Pull(_)
                | Self::Build(_)
                | Self::Create(_)
                | Self::Start(_)
                | Self::Stop(_)
                | Self::Remove(_)
                | Self::Rename { .. }
        )
    }
}

/// How a service's container behaves once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Healthy this long after it starts.
    HealthyAfter(Duration),
    /// Runs, never healthy.
    NeverHealthy,
    /// Exits with this code this long after it starts.
    ExitsAfter(Duration, i64),
    /// `create` fails.
    FailsToCreate,
}

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub ports: Vec<u16>,
    pub started_at: Option<Instant>,
    pub behaviour: Behaviour,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    containers: Vec<FakeContainer>,
    images: BTreeSet<String>,
    networks: BTreeSet<String>,
    behaviours: HashMap<String, Behaviour>,
    next_id: u64,
    /// The most containers that were started and not yet healthy at the same time.
    max_starting: usize,
}

/// The fake engine. Clone it freely: clones share state.
#[derive(Clone)]
pub struct FakeEngine {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<ContainerEvent>,
    info: EngineInfo,
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeEngine {
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            events: broadcast::channel(1024).0,
            info: EngineInfo {
                host: "fake://engine".to_owned(),
                version: "0.0.0-fake".to_owned(),
                api_version: "1.41".to_owned(),
                // Not this machine: the observer must not read this host's /proc for it.
                local: false,
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no test panics while holding the fake's lock")
    }

    /// Scripts how the containers of `service` behave (default: healthy after 100 ms).
    pub fn behave(&self, service: &str, behaviour: Behaviour) {
        self.lock().behaviours.insert(service.to_owned(), behaviour);
    }

    pub fn add_image(&self, image: &str) {
        self.lock().images.insert(image.to_owned());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::mutates).collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    pub fn containers(&self) -> Vec<FakeContainer> {
        self.lock().containers.clone()
    }

    pub fn container_named(&self, name: &str) -> Option<FakeContainer> {
        self.lock()
            .containers
            .iter()
            .find(|container| container.name == name)
            .cloned()
    }

    /// The most services that were starting (started, not yet healthy) at one time.
    pub fn max_starting(&self) -> usize {
        self.lock().max_starting
    }

    fn record(&self, call: Call) {
        self.lock().calls.push(call);
    }

    /// Brings every container's state up to the current (paused) time: exits happen.
    fn advance(&self) {
        let now = Instant::now();
        let mut died = Vec::new();
        {
            let mut state = self.lock();
            for container in &mut state.containers {
                if container.state != ContainerState::Running {
                    continue;
                }
                if let (Behaviour::ExitsAfter(after, code), Some(started)) =
                    (container.behaviour, container.started_at)
                    && now >= started + after
                {
                    container.state = ContainerState::Exited;
                    container.exit_code = Some(code);
                    died.push(ContainerEvent {
                        id: container.id.clone(),
                        kind: ContainerEventKind::Die {
                            exit_code: Some(code),
                        },
                    });
                }
            }
            let starting = state
                .containers
                .iter()
                .filter(|container| {
                    container.state == ContainerState::Running && !is_healthy(container, now)
                })
                .count();
            state.max_starting = state.max_starting.max(starting);
        }
        for event in died {
            let _ = self.events.send(event);
        }
    }

    fn find<'a>(state: &'a mut State, id: &str) -> DockerResult<&'a mut FakeContainer> {
        state
            .containers
            .iter_mut()
            .find(|container| container.id == id || container.name == id)
            .ok_or_else(|| DockerError::NotFound {
                object: id.to_owned(),
            })
    }

    /// Schedules the exit of a container that exits after a while, in tokio time.
    fn schedule_exit(&self, id: String, after: Duration) {
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = &id;
            engine.advance();
        });
    }
}

fn is_healthy(container: &FakeContainer, now: Instant) -> bool {
    match (container.behaviour, container.started_at) {
        (Behaviour::HealthyAfter(after), Some(started)) => {
            container.state == ContainerState::Running && now >= started + after
        }
        _ => false,
    }
}

impl Runtime for FakeEngine {
    fn engine(&self) -> &EngineInfo {
        &self.info
    }

    async fn list_containers(&self) -> DockerResult<Vec<ContainerSummary>> {
        self.record(Call::ListContainers);
        self.advance();
        Ok(self
            .lock()
            .containers
            .iter()
            .map(|container| ContainerSummary {
                id: container.id.clone(),
                name: container.name.clone(),
                image: container.image.clone(),
                labels: container.labels.clone(),
                state: container.state,
                published_ports: if container.state == ContainerState::Running {
                    container.ports.clone()
                } else {
                    Vec::new()
                },
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> DockerResult<ContainerDetails> {
        self.record(Call::Inspect(id.to_owned()));
        self.advance();
        let mut state = self.lock();
        let container = Self::find(&mut state, id)?;
        Ok(ContainerDetails {
            id: container.id.clone(),
            name: container.name.clone(),
            image: container.image.clone(),
            labels: container.labels.clone(),
            state: container.state,
            exit_code: container.exit_code,
            restart_count: 0,
            health: DockerHealth::None,
            health_output: None,
            started_at: None,
            error: None,
            host_ports: container.ports.clone(),
        })
    }

    async fn list_images(&self) -> DockerResult<BTreeSet<String>> {
        self.record(Call::ListImages);
        Ok(self.lock().images.clone())
    }

    async fn network_labels(&self, name: &str) -> DockerResult<Option<BTreeMap<String, String>>> {
        self.record(Call::NetworkExists(name.to_owned()));
        Ok(self.lock().networks.contains(name).then(BTreeMap::new))
    }

    async fn remove_network(&self, name: &str) -> DockerResult<()> {
        self.record(Call::RemoveNetwork(name.to_owned()));
        self.lock().networks.remove(name);
        Ok(())
    }

    async fn create_network(
        &self,
        name: &str,
        _labels: &BTreeMap<String, String>,
    ) -> DockerResult<()> {
        self.record(Call::CreateNetwork(name.to_owned()));
        self.lock().networks.insert(name.to_owned());
        Ok(())
    }

    async fn pull_image(
        &self,
        image: &str,
        progress: &(dyn Fn(ImageProgress) + Send + Sync),
    ) -> DockerResult<()> {
        self.record(Call::Pull(image.to_owned()));
        progress(ImageProgress {
            status: "Pulled".to_owned(),
            current: None,
            total: None,
        });
        self.lock().images.insert(image.to_owned());
        Ok(())
    }

    async fn build_image(
        &self,
        tag: &str,
        _context: Vec<u8>,
        _labels: &BTreeMap<String, String>,
    ) -> DockerResult<()> {
        self.record(Call::Build(tag.to_owned()));
        self.lock().images.insert(tag.to_owned());
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> DockerResult<String> {
        self.record(Call::Create(spec.name.clone()));
        let mut state = self.lock();
        if state
            .containers
            .iter()
            .any(|container| container.name == spec.name)
        {
            return Err(DockerError::operation(
                "create container",
                spec.name.clone(),
                std::io::Error::other("the name is already in use"),
            ));
        }
        let service = spec
            .labels
            .get(labels::SERVICE)
            .cloned()
            .unwrap_or_default();
        let behaviour = state
            .behaviours
            .get(&service)
            .copied()
            .unwrap_or(Behaviour::HealthyAfter(Duration::from_millis(100)));
        if behaviour == Behaviour::FailsToCreate {
            return Err(DockerError::operation(
                "create container",
                spec.name.clone(),
                std::io::Error::other("scripted failure"),
            ));
        }
        state.next_id += 1;
        let id = format!("{:064x}", state.next_id);
        state.containers.push(FakeContainer {
            id: id.clone(),
            name: spec.name.clone(),
            image: spec.image.clone(),
            labels: spec.labels.clone(),
            state: ContainerState::Created,
            exit_code: None,
            ports: spec.ports.iter().map(|port| port.host).collect(),
            started_at: None,
            behaviour,
        });
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> DockerResult<()> {
        let exit_after = {
            let mut state = self.lock();
            let container = Self::find(&mut state, id)?;
            let name = container.name.clone();
            container.state = ContainerState::Running;
            container.exit_code = None;
            container.started_at = Some(Instant::now());
            let exit_after = match container.behaviour {
                Behaviour::ExitsAfter(after, _) => Some((container.id.clone(), after)),
                _ => None,
            };
            state.calls.push(Call::Start(name));
            exit_after
        };
        let _ = self.events.send(ContainerEvent {
            id: id.to_owned(),
            kind: ContainerEventKind::Start,
        });
        self.advance();
        if let Some((id, after)) = exit_after {
            self.schedule_exit(id, after);
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, _grace: Duration) -> DockerResult<()> {
        let died = {
            let mut state = self.lock();
            let container = Self::find(&mut state, id)?;
            let name = container.name.clone();
            let was_running = container.state == ContainerState::Running;
            container.state = ContainerState::Exited;
            container.exit_code.get_or_insert(0);
            let id = container.id.clone();
            state.calls.push(Call::Stop(name));
            was_running.then_some(id)
        };
        if let Some(id) = died {
            let _ = self.events.send(ContainerEvent {
                id,
                kind: ContainerEventKind::Die { exit_code: Some(0) },
            });
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> DockerResult<()> {
        let mut state = self.lock();
        let name = Self::find(&mut state, id)?.name.clone();
        state.calls.push(Call::Remove(name));
        state
            .containers
            .retain(|container| container.id != id && container.name != id);
        Ok(())
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> DockerResult<()> {
        let mut state = self.lock();
        if state
            .containers
            .iter()
            .any(|container| container.name == new_name)
        {
            return Err(DockerError::operation(
                "rename container",
                new_name,
                std::io::Error::other("the name is already in use"),
            ));
        }
        let container = Self::find(&mut state, id)?;
        let from = std::mem::replace(&mut container.name, new_name.to_owned());
        state.calls.push(Call::Rename {
            from,
            to: new_name.to_owned(),
        });
        Ok(())
    }

    async fn exec(&self, id: &str, _command: &[String]) -> DockerResult<ExecOutput> {
        self.record(Call::Exec(id.to_owned()));
        self.advance();
        let healthy = {
            let mut state = self.lock();
            is_healthy(Self::find(&mut state, id)?, Instant::now())
        };
        Ok(ExecOutput {
            exit_code: Some(if healthy { 0 } else { 1 }),
            output: String::new(),
        })
    }

    async fn logs(&self, id: &str, lines: usize) -> DockerResult<Vec<String>> {
        self.record(Call::Logs(id.to_owned()));
        Ok((1..=lines.min(3))
            .map(|line| format!("fake log line {line}"))
            .collect())
    }

    fn container_events(&self, label: &str) -> BoxStream<'static, DockerResult<ContainerEvent>> {
        self.record(Call::Events);
        let (key, value) = label
            .split_once('=')
            .map_or((label.to_owned(), String::new()), |(k, v)| {
                (k.to_owned(), v.to_owned())
            });
        let state = Arc::clone(&self.state);
        let receiver = self.events.subscribe();
        tokio_stream_from(receiver)
            .filter(move |event| {
                let matches =
                    state
                        .lock()
                        .expect("not poisoned")
                        .containers
                        .iter()
                        .any(|container| {
                            container.id == event.id && container.labels.get(&key) == Some(&value)
                        });
                std::future::ready(matches)
            })
            .map(Ok)
            .boxed()
    }
}

fn tokio_stream_from(
    receiver: broadcast::Receiver<ContainerEvent>,
) -> BoxStream<'static, ContainerEvent> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

impl FakeEngine {
    /// Whether the container's scripted time to healthy has passed (the fake's prober, in
    /// `health`, asks this); otherwise what it is doing.
    pub fn scripted_health(&self, container_id: &str) -> Result<(), String> {
        self.advance();
        let mut state = self.lock();
        match Self::find(&mut state, container_id) {
            Ok(container) if is_healthy(container, Instant::now()) => Ok(()),
            Ok(container) => Err(format!(
                "{} is {} and not ready",
                container.name,
                container.state.as_str()
            )),
            Err(error) => Err(error.to_string()),
        }
    }
}
