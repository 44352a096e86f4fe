//! The executor: runs a [`Plan`] against a [`Runtime`], phase by phase.
//!
//! Ready-driven: each step starts the moment its last dependency is healthy, up to
//! `--parallel` at once. On a failure new work stops at once; then `halt` leaves what is
//! healthy up and the failed container stopped, and `rollback` undoes this run's changes of
//! the phase in reverse order. It talks to Docker only through the `Runtime` trait and to
//! people only through a [`Reporter`]; it never prints.

pub mod events;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::Instant;

pub use events::{Event, FailureReport, Reporter, ServiceState};

use crate::docker::{ContainerEventKind, ContainerSpec, DockerError, PortBinding, Runtime};
use crate::graph::DependencyGraph;
use crate::health::{self, ContainerSignal, Prober, WaitFailure};
use crate::model::{
    Config, FailurePolicy, HealthTiming, PhaseNumber, Service, ServiceKind, ServiceName,
};
use crate::plan::observed::labels;
use crate::plan::{Action, PhasePlan, Plan, Spec, Step};
use crate::secrets::Secrets;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    /// At most this many steps in flight; `None`: unbounded.
    pub parallel: Option<usize>,
    /// Overrides each phase's `on_failure`.
    pub on_failure: Option<FailurePolicy>,
    /// Overrides every service's health deadline.
    pub timeout: Option<Duration>,
    /// Pull images that are missing locally.
    pub pull: bool,
    /// How long a stopped container gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// At most this many container creates and starts at once. An engine does them little
    /// faster side by side (see docs/performance.md), so fewer at once, critical path
    /// first, gets the services that others wait for up sooner.
    pub engine_slots: usize,
}

impl RunOptions {
    pub fn new(run_id: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            parallel: None,
            on_failure: None,
            timeout: None,
            pull: true,
            stop_grace: Duration::from_secs(10),
            engine_slots: 8,
        }
    }
}

/// Errors that stop a run before any service step: the environment is not fit.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::MissingSecrets),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    /// A service failed; the report says which, and what the policy did.
    Failed {
        report: Box<FailureReport>,
        rollback: Option<RollbackSummary>,
    },
    /// Ctrl-C or SIGTERM: new work stopped, what was in flight finished.
    Interrupted {
        phase: PhaseNumber,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RollbackSummary {
    pub removed: Vec<ServiceName>,
    pub restored: Vec<ServiceName>,
    /// Undo steps that failed: the rollback is incomplete.
    pub problems: Vec<String>,
}

/// What a rollback undoes for one service: the container a run created and the one it set
/// aside (`<name>-previous`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub service: ServiceName,
    pub action: Action,
    pub created: Option<String>,
    pub previous: Option<String>,
}

impl From<&StepRecord> for Undo {
    fn from(record: &StepRecord) -> Self {
        Self {
            service: record.service.clone(),
            action: record.action,
            created: record.created.clone(),
            previous: record.previous.clone(),
        }
    }
}

/// What one step did, for rollback and reporting.
#[derive(Debug, Clone)]
struct StepRecord {
    service: ServiceName,
    action: Action,
    /// The container this run created.
    created: Option<String>,
    /// The container it replaced, now `<name>-previous`.
    previous: Option<String>,
    result: Result<(), StepFailure>,
}

#[derive(Debug, Clone)]
struct StepFailure {
    description: String,
    wait: Option<WaitFailure>,
    last_output: Option<String>,
    container: Option<String>,
}

impl StepFailure {
    fn docker(error: &DockerError, container: Option<String>) -> Self {
        let mut description = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            description.push_str(": ");
            description.push_str(&cause.to_string());
            source = cause.source();
        }
        Self {
            description,
            wait: None,
            last_output: None,
            container,
        }
    }
}

/// Routes container events to the waits that watch those containers.
#[derive(Clone, Default)]
struct Watchers {
    senders: Arc<Mutex<HashMap<String, watch::Sender<ContainerSignal>>>>,
    /// Whether the event stream is live; without it, waits fall back to inspect.
    live: Arc<std::sync::atomic::AtomicBool>,
}

impl Watchers {
    fn watch(&self, id: &str) -> Option<watch::Receiver<ContainerSignal>> {
        if !self.live.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let mut senders = self.senders.lock().expect("not poisoned");
        let sender = senders
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(ContainerSignal::Running).0);
        Some(sender.subscribe())
    }

    fn deliver(&self, id: &str, signal: ContainerSignal) {
        let mut senders = self.senders.lock().expect("not poisoned");
        let sender = senders
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(ContainerSignal::Running).0);
        sender.send_replace(signal);
    }
}

pub struct Executor<'a, R: Runtime, P: Prober> {
    config: &'a Config,
    runtime: &'a R,
    prober: &'a P,
    reporter: &'a dyn Reporter,
    options: RunOptions,
    graph: DependencyGraph,
    /// Turns true on Ctrl-C / SIGTERM.
    interrupt: watch::Receiver<bool>,
    watchers: Watchers,
    /// Bounds the creates and starts in flight (`RunOptions::engine_slots`).
    engine_slots: tokio::sync::Semaphore,
}

impl<'a, R: Runtime, P: Prober> Executor<'a, R, P> {
    pub fn new(
        config: &'a Config,
        runtime: &'a R,
        prober: &'a P,
        reporter: &'a dyn Reporter,
        options: RunOptions,
        interrupt: watch::Receiver<bool>,
    ) -> Self {
        let graph = DependencyGraph::new(
            config
                .services()
                .iter()
                .map(|s| (&s.name, s.depends_on.as_slice())),
        );
        let engine_slots = tokio::sync::Semaphore::new(options.engine_slots.max(1));
        Self {
            config,
            runtime,
            prober,
            reporter,
            options,
            graph,
            interrupt,
            watchers: Watchers::default(),
            engine_slots,
        }
    }

    fn service(&self, name: &ServiceName) -> &'a Service {
        self.config
            .service(name.as_str())
            .expect("plans name only configured services")
    }

    fn timing(&self, service: &Service) -> HealthTiming {
        let mut timing = service.health.timing;
        if let Some(timeout) = self.options.timeout {
            timing.timeout = timeout;
        }
        timing
    }

    /// Runs every phase of the plan in order. The caller has checked its blockers.
    pub async fn execute(&self, plan: &Plan) -> Result<RunOutcome, ExecError> {
        let started = Instant::now();
        let services: Vec<&Service> = plan
            .steps()
            .filter(|step| step.action.mutates())
            .map(|step| self.service(&step.service))
            .collect();
        let secrets = Secrets::gather(self.config, services, |name| std::env::var(name).ok())?;
        self.reporter.report(&Event::RunStarted {
            run_id: self.options.run_id.clone(),
            platform: self.config.platform.name.clone(),
            environment: self.config.environment_label().to_owned(),
            engine: self.runtime.engine().host.clone(),
        });
        self.prepare(plan).await?;
        self.follow_events();
        for phase in &plan.phases {
            let outcome = self.run_phase(phase, &secrets).await;
            if outcome != RunOutcome::Succeeded {
                return Ok(outcome);
            }
        }
        self.reporter.report(&Event::RunFinished {
            elapsed_ms: millis(started.elapsed()),
        });
        Ok(RunOutcome::Succeeded)
    }

    /// The network and the images, before any container.
    async fn prepare(&self, plan: &Plan) -> Result<(), ExecError> {
        if !plan.steps().any(|step| step.action.mutates()) {
            return Ok(());
        }
        let network = &self.config.platform.network;
        if self.runtime.network_labels(network).await?.is_none() {
            let network_labels = BTreeMap::from([
                (
                    labels::PLATFORM.to_owned(),
                    self.config.platform.name.clone(),
                ),
                (
                    labels::ENVIRONMENT.to_owned(),
                    self.config.environment_label().to_owned(),
                ),
                (labels::RUN.to_owned(), self.options.run_id.clone()),
            ]);
            self.runtime
                .create_network(network, &network_labels)
                .await?;
            self.reporter.report(&Event::NetworkCreated {
                network: network.clone(),
            });
        }
        let images = self.runtime.list_images().await?;
        let mut needed: Vec<&str> = plan
            .steps()
            .filter(|step| step.action.mutates())
            .filter_map(|step| step.image.as_deref())
            .filter(|image| !images.contains(*image))
            .collect();
        needed.sort_unstable();
        needed.dedup();
        for image in needed {
            if Some(image) == self.config.demo_image.as_deref() {
                crate::docker::demo_image::ensure(self.runtime, &images, image).await?;
                self.reporter.report(&Event::ImageBuilt {
                    image: image.to_owned(),
                });
            } else if self.options.pull {
                let reporter = self.reporter;
                let progress = move |progress: crate::docker::ImageProgress| {
                    reporter.report(&Event::ImagePull {
                        image: image.to_owned(),
                        status: progress.status,
                        current: progress.current,
                        total: progress.total,
                    });
                };
                self.runtime.pull_image(image, &progress).await?;
            } else {
                return Err(DockerError::ImageUnavailable {
                    image: image.to_owned(),
                    source: None,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Follows the engine's container events for this platform, feeding the waits.
    fn follow_events(&self) {
        let label = format!("{}={}", labels::PLATFORM, self.config.platform.name);
        let mut stream = self.runtime.container_events(&label);
        let watchers = self.watchers.clone();
        watchers
            .live
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        let signal = match event.kind {
                            ContainerEventKind::Die { exit_code } => {
                                ContainerSignal::Exited(exit_code)
                            }
                            ContainerEventKind::Restart => ContainerSignal::Restarted,
                            _ => continue,
                        };
                        watchers.deliver(&event.id, signal);
                    }
                    Err(error) => {
                        tracing::warn!(
                            "the container event stream failed, falling back to inspect: {error}"
                        );
                        break;
                    }
                }
            }
            watchers
                .live
                .store(false, std::sync::atomic::Ordering::SeqCst);
        });
    }

    fn report_state(&self, phase: PhaseNumber, step: &Step, state: ServiceState, started: Instant) {
        self.report_service(phase, &step.service, step.action, state, started);
    }

    fn report_service(
        &self,
        phase: PhaseNumber,
        service: &ServiceName,
        action: Action,
        state: ServiceState,
        started: Instant,
    ) {
        self.reporter.report(&Event::Service {
            phase,
            service: service.clone(),
            action,
            state,
            elapsed_ms: millis(started.elapsed()),
        });
    }

    async fn run_phase(&self, phase: &PhasePlan, secrets: &Secrets) -> RunOutcome {
        let phase_started = Instant::now();
        self.reporter.report(&Event::PhaseStarted {
            phase: phase.number,
            name: phase.name.clone(),
            services: phase
                .steps
                .iter()
                .map(|step| step.service.clone())
                .collect(),
            actions: phase.steps.iter().map(|step| step.action).collect(),
        });
        for step in &phase.steps {
            self.report_state(phase.number, step, ServiceState::Waiting, phase_started);
        }
        let in_phase: HashSet<&ServiceName> =
            phase.steps.iter().map(|step| &step.service).collect();
        let limit = self.options.parallel.unwrap_or(usize::MAX).max(1);
        let (cancel, cancelled) = watch::channel(false);
        let mut interrupt = self.interrupt.clone();
        // Critical path first: a step with a longer chain of dependents behind it in this
        // phase goes first when several are ready (the plan's order breaks ties).
        let height = chain_heights(phase);
        let mut pending: Vec<&Step> = phase.steps.iter().collect();
        pending.sort_by_key(|step| std::cmp::Reverse(height[&step.service]));
        let mut healthy: HashSet<ServiceName> = HashSet::new();
        let mut records: Vec<StepRecord> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let mut stopping = *interrupt.borrow();
        let mut interrupted = stopping;

        loop {
            if !stopping {
                let mut index = 0;
                while index < pending.len() && in_flight.len() < limit {
                    let step = pending[index];
                    let ready = step.waits_for.iter().all(|dependency| {
                        !in_phase.contains(dependency) || healthy.contains(dependency)
                    });
                    if ready {
                        pending.remove(index);
                        in_flight.push(self.run_step(
                            phase.number,
                            step,
                            secrets,
                            cancelled.clone(),
                            phase_started,
                        ));
                    } else {
                        index += 1;
                    }
                }
            }
            if in_flight.is_empty() {
                break;
            }
            tokio::select! {
                Some(record) = in_flight.next() => {
                    match &record.result {
                        Ok(()) => { healthy.insert(record.service.clone()); }
                        Err(_) => {
                            // New work stops at once; the waits in flight are called off.
                            stopping = true;
                            cancel.send_replace(true);
                        }
                    }
                    records.push(record);
                }
                Ok(()) = interrupt.changed(), if !interrupted => {
                    if *interrupt.borrow() {
                        interrupted = true;
                        stopping = true;
                        cancel.send_replace(true);
                    }
                }
            }
        }
        for step in &pending {
            self.report_state(phase.number, step, ServiceState::Skipped, phase_started);
        }

        let failed = records.iter().find(|record| {
            record
                .result
                .as_ref()
                .is_err_and(|failure| failure.wait != Some(WaitFailure::Cancelled))
        });
        if let Some(failed) = failed.cloned() {
            return self.fail(phase, failed, &records, &pending).await;
        }
        // The replaced containers of healthy services are no longer needed. (Under
        // `rollback` they had to stay until the whole phase was healthy.)
        self.remove_previous(&records).await;
        if interrupted {
            self.reporter.report(&Event::Interrupted {
                phase: phase.number,
            });
            return RunOutcome::Interrupted {
                phase: phase.number,
            };
        }
        self.reporter.report(&Event::PhaseFinished {
            phase: phase.number,
            elapsed_ms: millis(phase_started.elapsed()),
            started: records
                .iter()
                .filter(|record| record.action.mutates())
                .count(),
            kept: records
                .iter()
                .filter(|record| !record.action.mutates())
                .count(),
        });
        RunOutcome::Succeeded
    }

    /// One step: make the container what the plan says, then wait for it to be healthy.
    async fn run_step(
        &self,
        phase: PhaseNumber,
        step: &Step,
        secrets: &Secrets,
        cancelled: watch::Receiver<bool>,
        phase_started: Instant,
    ) -> StepRecord {
        let service = self.service(&step.service);
        let mut record = StepRecord {
            service: step.service.clone(),
            action: step.action,
            created: None,
            previous: None,
            result: Ok(()),
        };
        let mut slot = None;
        let container = match step.action {
            Action::CheckExternal => None,
            Action::Keep | Action::Start => step.existing.clone(),
            Action::Create | Action::StartInfrastructure | Action::Replace => {
                if step.action == Action::Replace {
                    self.report_state(phase, step, ServiceState::Replacing, phase_started);
                    match self.set_aside(step).await {
                        Ok(previous) => {
                            if let Some(id) = &previous {
                                self.reporter.report(&Event::SetAside {
                                    phase,
                                    service: step.service.clone(),
                                    previous: id.clone(),
                                });
                            }
                            record.previous = previous;
                        }
                        Err(error) => {
                            record.result = Err(StepFailure::docker(&error, step.existing.clone()));
                            self.report_failure(phase, step, &record, phase_started);
                            return record;
                        }
                    }
                }
                slot = Some(
                    self.engine_slots
                        .acquire()
                        .await
                        .expect("the semaphore is never closed"),
                );
                self.report_state(phase, step, ServiceState::Creating, phase_started);
                let spec = self.container_spec(service, step, secrets);
                let id = match self.runtime.create_container(&spec).await {
                    Ok(id) => id,
                    Err(error) => {
                        record.result = Err(StepFailure::docker(&error, None));
                        self.report_failure(phase, step, &record, phase_started);
                        return record;
                    }
                };
                self.reporter.report(&Event::ContainerCreated {
                    phase,
                    service: step.service.clone(),
                    container: id.clone(),
                });
                record.created = Some(id.clone());
                Some(id)
            }
        };
        let signal = container.as_deref().and_then(|id| self.watchers.watch(id));
        if step.action.mutates() {
            let id = container
                .as_deref()
                .expect("a created or stopped container");
            // A restarted container's old `die` is no news.
            self.watchers.deliver(id, ContainerSignal::Running);
            if slot.is_none() {
                slot = Some(
                    self.engine_slots
                        .acquire()
                        .await
                        .expect("the semaphore is never closed"),
                );
            }
            self.report_state(phase, step, ServiceState::Starting, phase_started);
            let started = self.runtime.start_container(id).await;
            drop(slot);
            if let Err(error) = started {
                record.result = Err(StepFailure::docker(&error, Some(id.to_owned())));
                self.report_failure(phase, step, &record, phase_started);
                return record;
            }
        }
        let started = Instant::now();
        self.report_state(
            phase,
            step,
            ServiceState::Checking {
                attempt: 0,
                last_output: None,
            },
            phase_started,
        );
        let on_attempt = |attempt: u32, output: &str| {
            self.report_state(
                phase,
                step,
                ServiceState::Checking {
                    attempt,
                    last_output: Some(output.to_owned()),
                },
                phase_started,
            );
        };
        let outcome = health::wait_until_healthy(
            self.prober,
            self.runtime,
            service,
            container.as_deref().unwrap_or_default(),
            &self.timing(service),
            health::Watch {
                signal,
                cancel: cancelled,
            },
            &on_attempt,
        )
        .await;
        match outcome.result {
            Ok(()) => {
                self.report_state(
                    phase,
                    step,
                    ServiceState::Healthy {
                        attempts: outcome.attempts,
                        time_to_healthy_ms: millis(started.elapsed()),
                    },
                    phase_started,
                );
            }
            Err(failure) => {
                record.result = Err(StepFailure {
                    description: failure.to_string(),
                    wait: Some(failure),
                    last_output: outcome.last_output,
                    container,
                });
                self.report_failure(phase, step, &record, phase_started);
            }
        }
        record
    }

    fn report_failure(
        &self,
        phase: PhaseNumber,
        step: &Step,
        record: &StepRecord,
        phase_started: Instant,
    ) {
        if let Err(failure) = &record.result {
            let state = if failure.wait == Some(WaitFailure::Cancelled) {
                ServiceState::Skipped
            } else {
                ServiceState::Failed {
                    failure: failure.description.clone(),
                }
            };
            self.report_state(phase, step, state, phase_started);
        }
    }

    /// Stops the old container and renames it `<name>-previous` (removing a stale one of
    /// ours first). Returns the old container's id.
    async fn set_aside(&self, step: &Step) -> Result<Option<String>, DockerError> {
        let Some(existing) = &step.existing else {
            return Ok(None);
        };
        let previous_name = format!("{}-previous", step.container);
        for container in self.runtime.list_containers().await? {
            if container.name == previous_name
                && container.labels.get(labels::PLATFORM) == Some(&self.config.platform.name)
                && container
                    .labels
                    .get(labels::ENVIRONMENT)
                    .map(String::as_str)
                    == Some(self.config.environment_label())
            {
                self.runtime.remove_container(&container.id).await?;
            }
        }
        self.runtime
            .stop_container(existing, self.options.stop_grace)
            .await?;
        self.runtime
            .rename_container(existing, &previous_name)
            .await?;
        Ok(Some(existing.clone()))
    }

    fn container_spec(&self, service: &Service, step: &Step, secrets: &Secrets) -> ContainerSpec {
        let spec = Spec::of(self.config, service);
        let phase = service.phase.map_or_else(
            || service.kind.as_str().to_owned(),
            |phase| phase.to_string(),
        );
        ContainerSpec {
            name: step.container.clone(),
            image: service.image.clone().unwrap_or_default(),
            env: secrets.container_env(service),
            labels: BTreeMap::from([
                (
                    labels::PLATFORM.to_owned(),
                    self.config.platform.name.clone(),
                ),
                (labels::SERVICE.to_owned(), service.name.to_string()),
                (labels::PHASE.to_owned(), phase),
                (
                    labels::ENVIRONMENT.to_owned(),
                    self.config.environment_label().to_owned(),
                ),
                (labels::RUN.to_owned(), self.options.run_id.clone()),
                (labels::SPEC.to_owned(), spec.hash.clone()),
                (labels::SPEC_FIELDS.to_owned(), spec.fields_label()),
            ]),
            ports: service
                .ports
                .iter()
                .map(|port| PortBinding {
                    address: self.config.docker.bind_address.clone(),
                    host: port.host,
                    container: port.container,
                })
                .collect(),
            network: self.config.platform.network.clone(),
            aliases: vec![service.name.to_string()],
            command: service.command.clone(),
        }
    }

    /// Applies the failure policy and builds the report.
    async fn fail(
        &self,
        phase: &PhasePlan,
        failed: StepRecord,
        records: &[StepRecord],
        pending: &[&Step],
    ) -> RunOutcome {
        let failure = failed.result.clone().expect_err("a failed record");
        let policy = self.options.on_failure.unwrap_or(phase.on_failure);
        let service = self.service(&failed.service);
        let logs = match &failure.container {
            Some(id) => self.runtime.logs(id, 20).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let mut rollback = None;
        match policy {
            FailurePolicy::Halt => {
                // The replaced containers stay, stopped, as `-previous` until the phase is
                // done: `rollback` can still restore them, and `resume` drops them once
                // their replacements are healthy and up to date.
                // Stop every container of this run that is not healthy, the failed one
                // included; they stay for inspection.
                for record in records.iter() {
                    let Err(failure) = &record.result else {
                        continue;
                    };
                    if let Some(id) = failure
                        .container
                        .as_ref()
                        .filter(|_| record.action.mutates())
                        && let Err(error) = self
                            .runtime
                            .stop_container(id, self.options.stop_grace)
                            .await
                    {
                        tracing::warn!(
                            "cannot stop the failed container of `{}`: {error}",
                            record.service
                        );
                    }
                }
            }
            FailurePolicy::Rollback => {
                let undo: Vec<Undo> = records.iter().map(Undo::from).collect();
                rollback = Some(self.roll_back(phase.number, &undo).await);
            }
        }
        let mut blocked: Vec<ServiceName> =
            pending.iter().map(|step| step.service.clone()).collect();
        blocked.extend(
            records
                .iter()
                .filter(|record| {
                    record
                        .result
                        .as_ref()
                        .is_err_and(|f| f.wait == Some(WaitFailure::Cancelled))
                })
                .map(|record| record.service.clone()),
        );
        let next = match (policy, &rollback) {
            (FailurePolicy::Halt, _) => "rollout resume".to_owned(),
            (FailurePolicy::Rollback, Some(summary)) if !summary.problems.is_empty() => {
                "rollout resume".to_owned()
            }
            (FailurePolicy::Rollback, _) => format!("rollout phase {}", phase.number),
        };
        let environment = self
            .config
            .environment
            .as_ref()
            .map_or_else(String::new, |name| format!(" --env {name}"));
        let next = next.replacen("rollout", &format!("rollout{environment}"), 1);
        let report = FailureReport {
            phase: phase.number,
            service: failed.service.clone(),
            check: service.health.probe.describe(),
            failure: failure.description.clone(),
            wait: failure.wait.clone(),
            last_output: failure.last_output.clone(),
            logs,
            dependency_path: self.dependency_path(&failed.service),
            blocked,
            policy,
            container: match policy {
                FailurePolicy::Halt => failure
                    .container
                    .as_ref()
                    .map(|_| self.config.container_name(&failed.service)),
                FailurePolicy::Rollback => None,
            },
            next,
        };
        self.reporter.report(&Event::RunFailed {
            report: Box::new(report.clone()),
        });
        if let Some(summary) = &rollback {
            self.reporter.report(&Event::RollbackFinished {
                phase: phase.number,
                restored: summary.restored.clone(),
                removed: summary.removed.clone(),
                problems: summary.problems.clone(),
            });
        }
        RunOutcome::Failed {
            report: Box::new(report),
            rollback,
        }
    }

    /// Removes the `-previous` container of each replaced service that became healthy.
    async fn remove_previous(&self, records: &[StepRecord]) {
        for record in records.iter().filter(|record| record.result.is_ok()) {
            if let Some(previous) = &record.previous
                && let Err(error) = self.runtime.remove_container(previous).await
            {
                tracing::warn!(
                    "cannot remove the previous container of `{}`: {error}",
                    record.service
                );
            }
        }
    }

    /// From a root of the graph down to `service`, following the first dependency.
    fn dependency_path(&self, service: &ServiceName) -> Vec<ServiceName> {
        let mut path = vec![service.clone()];
        let mut current = service.clone();
        while let Some(dependency) = self
            .graph
            .dependencies_of(current.as_str())
            .first()
            .map(|d| (*d).clone())
        {
            if path.contains(&dependency) {
                break;
            }
            path.push(dependency.clone());
            current = dependency;
        }
        path.reverse();
        path
    }

    /// Undoes the phase's changes in reverse order: new containers removed, previous ones
    /// renamed back, started and checked. Infrastructure (and demo stand-ins) stays.
    async fn roll_back(&self, phase: PhaseNumber, records: &[Undo]) -> RollbackSummary {
        self.reporter.report(&Event::RollbackStarted { phase });
        let mut summary = RollbackSummary::default();
        let started = Instant::now();
        let (_never_cancel, never) = watch::channel(false);
        for record in records.iter().rev() {
            let service = self.service(&record.service);
            if !record.action.mutates() || service.kind != ServiceKind::Service {
                continue;
            }
            let container_name = self.config.container_name(&record.service);
            let report =
                |state| self.report_service(phase, &record.service, record.action, state, started);
            report(ServiceState::RollingBack);
            if let Some(id) = &record.created {
                // Already gone (a rollback cut short had removed it): as good as removed.
                match self.runtime.remove_container(id).await {
                    Ok(()) | Err(DockerError::NotFound { .. }) => {
                        summary.removed.push(record.service.clone())
                    }
                    Err(error) => {
                        summary.problems.push(format!(
                            "cannot remove the new container of `{}`: {error}",
                            record.service
                        ));
                        continue;
                    }
                }
            }
            if let Some(previous) = &record.previous {
                let restored = async {
                    // A rollback cut short may have renamed it back already.
                    if self.runtime.inspect_container(previous).await?.name != container_name {
                        self.runtime
                            .rename_container(previous, &container_name)
                            .await?;
                    }
                    // Its `die` from being set aside is old news once it starts again.
                    self.watchers.deliver(previous, ContainerSignal::Running);
                    self.runtime.start_container(previous).await?;
                    Ok::<_, DockerError>(())
                }
                .await;
                if let Err(error) = restored {
                    summary.problems.push(format!(
                        "cannot restore the previous container of `{}`: {error}",
                        record.service
                    ));
                    continue;
                }
                let outcome = health::wait_until_healthy(
                    self.prober,
                    self.runtime,
                    service,
                    previous,
                    &self.timing(service),
                    health::Watch {
                        signal: self.watchers.watch(previous),
                        cancel: never.clone(),
                    },
                    &|_, _| {},
                )
                .await;
                match outcome.result {
                    Ok(()) => summary.restored.push(record.service.clone()),
                    Err(failure) => summary.problems.push(format!(
                        "the restored `{}` is not healthy: {failure}",
                        record.service
                    )),
                }
            }
            report(ServiceState::RolledBack);
        }
        summary
    }

    /// Applies the recovery repairs (see `plan::recovery`) before a plan is made.
    pub async fn repair(
        &self,
        repairs: &[crate::plan::recovery::Repair],
    ) -> Result<(), DockerError> {
        use crate::plan::recovery::Repair;
        for repair in repairs {
            match repair {
                Repair::Restore {
                    service,
                    previous,
                    remove,
                } => {
                    if let Some(current) = remove {
                        match self.runtime.remove_container(current).await {
                            Ok(()) | Err(DockerError::NotFound { .. }) => {}
                            Err(error) => return Err(error),
                        }
                    }
                    let name = self.config.container_name(service);
                    self.runtime.rename_container(previous, &name).await?;
                    tracing::info!("restored `{name}` from its previous container");
                }
                Repair::DropPrevious { service, previous } => {
                    self.runtime.remove_container(previous).await?;
                    tracing::info!("removed the previous container of `{service}`");
                }
            }
        }
        Ok(())
    }

    /// Finishes the rollback of `phase` that a run began (and did not end): `undo` comes
    /// from the journal and from the containers found on the engine.
    /// `known_problems` are what the caller already found it cannot undo; they count as
    /// problems of the rollback (the journal then says `rollback-failed`).
    pub async fn finish_rollback(
        &self,
        phase: PhaseNumber,
        undo: &[Undo],
        known_problems: Vec<String>,
    ) -> RollbackSummary {
        self.follow_events();
        let mut summary = self.roll_back(phase, undo).await;
        summary.problems.splice(0..0, known_problems);
        self.reporter.report(&Event::RollbackFinished {
            phase,
            restored: summary.restored.clone(),
            removed: summary.removed.clone(),
            problems: summary.problems.clone(),
        });
        summary
    }
}

#[cfg(test)]
mod tests;

/// For each step, the length of the longest chain of steps in the phase that wait for it,
/// itself included.
fn chain_heights(phase: &PhasePlan) -> HashMap<ServiceName, usize> {
    let mut height: HashMap<ServiceName, usize> = HashMap::new();
    // Steps come in start order, so every dependent comes after what it waits for.
    for step in phase.steps.iter().rev() {
        let own = height.get(&step.service).copied().unwrap_or(1);
        height.insert(step.service.clone(), own);
        for dependency in &step.waits_for {
            let entry = height.entry(dependency.clone()).or_insert(1);
            *entry = (*entry).max(own + 1);
        }
    }
    height
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
