//! The state dir: the versioned journal of the last rollout and the lock.
//!
//! Owns every byte under the state dir (default `<dir>/.rollout/<environment>/`). The
//! journal is rewritten atomically after every transition (temp file in the same directory,
//! fsync, rename, fsync of the directory), so a kill at any instant leaves either the old or
//! the new journal, never a torn one. It holds names, ids, states, times and errors — never
//! an env value or a secret. The lock names its holder (pid, host, start time); a lock whose
//! pid is dead on this host is stale and taken over.

mod lock;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use lock::{Lock, LockError, LockHolder};

use crate::exec::{Event, Reporter, ServiceState};
use crate::model::{FailurePolicy, PhaseNumber, ServiceName};
use crate::plan::{Action, Selection};

/// The journal format's version; a journal of another version is not read.
pub const JOURNAL_VERSION: u32 = 1;
const JOURNAL_FILE: &str = "journal.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a journal this version of rollout can read", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{}` has journal version {found}; this rollout reads version {JOURNAL_VERSION}", path.display())]
    Version { path: PathBuf, found: u32 },
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// How the journal's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutStatus {
    Running,
    Succeeded,
    /// Halted on a failure: healthy services up, the failed one stopped.
    Halted,
    /// Rolling back (a kill here leaves the rollback to finish).
    RollingBack,
    RolledBack,
    RollbackFailed,
    Interrupted,
}

/// One service in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub phase: PhaseNumber,
    pub action: Action,
    /// The last state, as the executor reported it (`waiting`, `creating`, `healthy`, …).
    pub state: String,
    /// The container this rollout created.
    pub container: Option<String>,
    /// The container it replaced, renamed `<name>-previous`.
    pub previous: Option<String>,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    pub error: Option<String>,
}

/// The journal of the last rollout in this state dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub rollout_id: String,
    pub platform: String,
    pub environment: String,
    /// What the command asked for.
    pub selection: Selection,
    /// The hash of the configuration it started with.
    pub config_hash: String,
    pub status: RolloutStatus,
    /// The phase it is in (or ended in).
    pub phase: Option<PhaseNumber>,
    pub phases_done: Vec<PhaseNumber>,
    pub policy: Option<FailurePolicy>,
    pub failed_service: Option<ServiceName>,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    pub services: BTreeMap<ServiceName, ServiceEntry>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl Journal {
    pub fn new(
        rollout_id: &str,
        platform: &str,
        environment: &str,
        selection: Selection,
        config_hash: &str,
    ) -> Self {
        let now = now_ms();
        Self {
            version: JOURNAL_VERSION,
            rollout_id: rollout_id.to_owned(),
            platform: platform.to_owned(),
            environment: environment.to_owned(),
            selection,
            config_hash: config_hash.to_owned(),
            status: RolloutStatus::Running,
            phase: None,
            phases_done: Vec::new(),
            policy: None,
            failed_service: None,
            started_at_ms: now,
            updated_at_ms: now,
            services: BTreeMap::new(),
        }
    }

    /// Whether `resume` has something to do.
    pub fn is_unfinished(&self) -> bool {
        !matches!(
            self.status,
            RolloutStatus::Succeeded | RolloutStatus::RolledBack
        )
    }

    /// The phases of the selection not done yet, in order.
    pub fn remaining_phases(&self) -> Vec<PhaseNumber> {
        self.selection
            .phases()
            .into_iter()
            .filter(|phase| !self.phases_done.contains(phase))
            .collect()
    }

    /// Applies one event of a run.
    pub fn apply(&mut self, event: &Event) {
        let now = now_ms();
        self.updated_at_ms = now;
        match event {
            Event::RunStarted { .. } => self.status = RolloutStatus::Running,
            Event::PhaseStarted {
                phase,
                services,
                actions,
                ..
            } => {
                self.phase = Some(*phase);
                self.status = RolloutStatus::Running;
                for (service, action) in services.iter().zip(actions) {
                    let entry = self
                        .services
                        .entry(service.clone())
                        .or_insert(ServiceEntry {
                            phase: *phase,
                            action: *action,
                            state: "waiting".to_owned(),
                            container: None,
                            previous: None,
                            started_at_ms: now,
                            updated_at_ms: now,
                            error: None,
                        });
                    // A resumed phase keeps what the first attempt created and set aside.
                    entry.phase = *phase;
                    entry.action = *action;
                    entry.updated_at_ms = now;
                }
            }
            Event::Service { service, state, .. } => {
                if let Some(entry) = self.services.get_mut(service) {
                    entry.state = state_name(state).to_owned();
                    entry.updated_at_ms = now;
                    entry.error = match state {
                        ServiceState::Failed { failure } => Some(failure.clone()),
                        _ => entry
                            .error
                            .take()
                            .filter(|_| !matches!(state, ServiceState::Healthy { .. })),
                    };
                }
            }
            Event::ContainerCreated {
                service, container, ..
            } => {
                if let Some(entry) = self.services.get_mut(service) {
                    entry.container = Some(container.clone());
                }
            }
            Event::SetAside {
                service, previous, ..
            } => {
                if let Some(entry) = self.services.get_mut(service) {
                    entry.previous = Some(previous.clone());
                }
            }
            Event::PhaseFinished { phase, .. } => {
                if !self.phases_done.contains(phase) {
                    self.phases_done.push(*phase);
                }
            }
            Event::RunFailed { report } => {
                self.failed_service = Some(report.service.clone());
                self.policy = Some(report.policy);
                if report.policy == FailurePolicy::Halt {
                    self.status = RolloutStatus::Halted;
                }
            }
            Event::RollbackStarted { .. } => {
                self.policy = Some(FailurePolicy::Rollback);
                self.status = RolloutStatus::RollingBack;
            }
            Event::RollbackFinished { problems, .. } => {
                self.status = if problems.is_empty() {
                    RolloutStatus::RolledBack
                } else {
                    RolloutStatus::RollbackFailed
                };
            }
            Event::Interrupted { .. } => self.status = RolloutStatus::Interrupted,
            Event::RunFinished { .. } => self.status = RolloutStatus::Succeeded,
            Event::NetworkCreated { .. } | Event::ImagePull { .. } | Event::ImageBuilt { .. } => {}
        }
    }
}

fn state_name(state: &ServiceState) -> &'static str {
    match state {
        ServiceState::Waiting => "waiting",
        ServiceState::Replacing => "replacing",
        ServiceState::Creating => "creating",
        ServiceState::Starting => "starting",
        ServiceState::Checking { .. } => "checking",
        ServiceState::Healthy { .. } => "healthy",
        ServiceState::Failed { .. } => "failed",
        ServiceState::Skipped => "skipped",
        ServiceState::RollingBack => "rolling-back",
        ServiceState::RolledBack => "rolled-back",
    }
}

/// The state dir of one environment.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn journal_path(&self) -> PathBuf {
        self.path.join(JOURNAL_FILE)
    }

    /// The last rollout's journal, if there is one.
    pub fn read_journal(&self) -> Result<Option<Journal>, StateError> {
        let path = self.journal_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned =
            serde_json::from_slice(&bytes).map_err(|source| StateError::Unreadable {
                path: path.clone(),
                source,
            })?;
        if versioned.version != JOURNAL_VERSION {
            return Err(StateError::Version {
                path,
                found: versioned.version,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Unreadable { path, source })
    }

    /// Writes the journal atomically: temp file, fsync, rename, fsync of the directory.
    pub fn write_journal(&self, journal: &Journal) -> Result<(), StateError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io {
                action,
                path,
                source,
            }
        };
        fs::create_dir_all(&self.path).map_err(io("create", &self.path))?;
        let target = self.journal_path();
        let temporary = self
            .path
            .join(format!(".{JOURNAL_FILE}.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec_pretty(journal).expect("a journal serializes");
        let mut file = fs::File::create(&temporary).map_err(io("create", &temporary))?;
        file.write_all(&bytes).map_err(io("write", &temporary))?;
        file.sync_all().map_err(io("sync", &temporary))?;
        drop(file);
        fs::rename(&temporary, &target).map_err(io("replace", &target))?;
        fs::File::open(&self.path)
            .and_then(|directory| directory.sync_all())
            .map_err(io("sync", &self.path))?;
        Ok(())
    }

    /// Takes the lock of this state dir; see [`Lock`].
    pub fn lock(&self) -> Result<(Lock, Option<LockHolder>), StateError> {
        fs::create_dir_all(&self.path).map_err(|source| StateError::Io {
            action: "create",
            path: self.path.clone(),
            source,
        })?;
        Ok(Lock::acquire(&self.path.join("lock"))?)
    }
}

/// A reporter that keeps the journal: each event is applied and the journal rewritten
/// before the executor goes on. Then it passes the event to the next reporter.
pub struct JournalRecorder<'a> {
    state: &'a StateDir,
    journal: Mutex<Journal>,
    next: &'a dyn Reporter,
}

impl<'a> JournalRecorder<'a> {
    pub fn new(
        state: &'a StateDir,
        journal: Journal,
        next: &'a dyn Reporter,
    ) -> Result<Self, StateError> {
        state.write_journal(&journal)?;
        Ok(Self {
            state,
            journal: Mutex::new(journal),
            next,
        })
    }

    pub fn journal(&self) -> Journal {
        self.journal.lock().expect("not poisoned").clone()
    }
}

impl Reporter for JournalRecorder<'_> {
    fn report(&self, event: &Event) {
        // Progress of a pull or of health attempts is not a transition: no write.
        let transition = match event {
            Event::ImagePull { .. } => false,
            Event::Service {
                state: ServiceState::Checking { attempt, .. },
                ..
            } => *attempt == 0,
            _ => true,
        };
        if transition {
            let mut journal = self.journal.lock().expect("not poisoned");
            journal.apply(event);
            if let Err(error) = self.state.write_journal(&journal) {
                tracing::error!("the journal could not be written: {error}");
            }
        }
        self.next.report(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_round_trips_and_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("demo"));
        assert_eq!(state.read_journal().unwrap(), None);
        let mut journal = Journal::new("r1", "p", "demo", Selection::All, "abc");
        journal.apply(&Event::PhaseStarted {
            phase: 1,
            name: "one".into(),
            services: vec![ServiceName::new("api")],
            actions: vec![Action::Create],
        });
        journal.apply(&Event::ContainerCreated {
            phase: 1,
            service: ServiceName::new("api"),
            container: "c1".into(),
        });
        state.write_journal(&journal).unwrap();
        let read = state.read_journal().unwrap().unwrap();
        assert_eq!(read, journal);
        assert_eq!(
            read.services[&ServiceName::new("api")].container.as_deref(),
            Some("c1")
        );
        assert_eq!(read.remaining_phases(), [1, 2, 3, 4]);
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("journal.json")]);
    }

    #[test]
    fn a_journal_of_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        fs::write(dir.path().join("journal.json"), r#"{"version": 99}"#).unwrap();
        assert!(matches!(
            state.read_journal(),
            Err(StateError::Version { found: 99, .. })
        ));
        fs::write(dir.path().join("journal.json"), "not json").unwrap();
        assert!(matches!(
            state.read_journal(),
            Err(StateError::Unreadable { .. })
        ));
    }
}
