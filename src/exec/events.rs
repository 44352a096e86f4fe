//! What a run reports as it goes, and the trait that hears it.
//!
//! The executor speaks only in [`Event`]s; the CLI turns them into progress bars, plain
//! lines or NDJSON. Events carry names, states and timings, never env values or secrets.

use serde::Serialize;

use crate::health::WaitFailure;
use crate::model::{FailurePolicy, PhaseNumber, ServiceName};
use crate::plan::Action;

/// The state of one service in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ServiceState {
    /// Waiting for its dependencies.
    Waiting,
    /// Stopping and renaming the old container.
    Replacing,
    Creating,
    Starting,
    /// Started (or kept); probing its health.
    Checking {
        attempt: u32,
        last_output: Option<String>,
    },
    Healthy {
        attempts: u32,
        time_to_healthy_ms: u64,
    },
    Failed {
        failure: String,
    },
    /// Not started because the run stopped first.
    Skipped,
    /// Rolling back: removing the new container, restoring the previous one.
    RollingBack,
    RolledBack,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        platform: String,
        environment: String,
        engine: String,
    },
    PhaseStarted {
        phase: PhaseNumber,
        name: String,
        services: Vec<ServiceName>,
        actions: Vec<Action>,
    },
    NetworkCreated {
        network: String,
    },
    ImagePull {
        image: String,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
    ImageBuilt {
        image: String,
    },
    Service {
        phase: PhaseNumber,
        service: ServiceName,
        action: Action,
        #[serde(flatten)]
        state: ServiceState,
        elapsed_ms: u64,
    },
    /// A container this run created, before it starts.
    ContainerCreated {
        phase: PhaseNumber,
        service: ServiceName,
        container: String,
    },
    /// The old container of a replaced service, stopped and renamed `<name>-previous`.
    SetAside {
        phase: PhaseNumber,
        service: ServiceName,
        previous: String,
    },
    RollbackStarted {
        phase: PhaseNumber,
    },
    PhaseFinished {
        phase: PhaseNumber,
        elapsed_ms: u64,
        started: usize,
        kept: usize,
    },
    RunFailed {
        report: Box<FailureReport>,
    },
    RollbackFinished {
        phase: PhaseNumber,
        restored: Vec<ServiceName>,
        removed: Vec<ServiceName>,
        problems: Vec<String>,
    },
    Interrupted {
        phase: PhaseNumber,
    },
    RunFinished {
        elapsed_ms: u64,
    },
}

/// Everything a person needs to understand a failed service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    pub phase: PhaseNumber,
    pub service: ServiceName,
    /// The check, as `http /health, /`.
    pub check: String,
    /// What went wrong: the deadline, an exit, a Docker error.
    pub failure: String,
    pub wait: Option<WaitFailure>,
    pub last_output: Option<String>,
    /// The last lines of the container's log.
    pub logs: Vec<String>,
    /// From a root of the graph down to the failed service: what it stands on.
    pub dependency_path: Vec<ServiceName>,
    /// The services of the phase that did not start because of it.
    pub blocked: Vec<ServiceName>,
    pub policy: FailurePolicy,
    /// The container left for inspection (halt), if any.
    pub container: Option<String>,
    /// The command that continues (halt) or retries (rollback).
    pub next: String,
}

/// Hears a run's events.
pub trait Reporter: Send + Sync {
    fn report(&self, event: &Event);
}

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: &Event) {}
}

/// A reporter that keeps every event, for tests.
#[derive(Default)]
pub struct Recorded {
    pub events: std::sync::Mutex<Vec<Event>>,
}

impl Reporter for Recorded {
    fn report(&self, event: &Event) {
        self.events
            .lock()
            .expect("no test panics while holding this lock")
            .push(event.clone());
    }
}

impl Recorded {
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().expect("not poisoned"))
    }
}
