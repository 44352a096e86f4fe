//! One rollout at a time per state dir: a lock file created exclusively, naming its holder.
//! A lock whose holder is a dead process on this host is stale and taken over.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub started_at_ms: u64,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.started_at_ms),
        );
        write!(
            formatter,
            "pid {} on host `{}`, since {started}",
            self.pid, self.host
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another rollout holds the lock `{}`: {holder}", path.display())]
    Held { path: PathBuf, holder: LockHolder },
    #[error("cannot take the lock `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Whether `pid` is a live process on this host.
fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock {
    /// Takes the lock at `path`. Returns the stale holder it took over from, if any.
    pub fn acquire(path: &Path) -> Result<(Self, Option<LockHolder>), LockError> {
        let me = LockHolder {
            pid: std::process::id(),
            host: hostname(),
            started_at_ms: super::now_ms(),
        };
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut taken_over = None;
        for _ in 0..3 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(
                        serde_json::to_string(&me)
                            .expect("a holder serializes")
                            .as_bytes(),
                    )
                    .map_err(io)?;
                    file.sync_all().map_err(io)?;
                    return Ok((
                        Self {
                            path: path.to_path_buf(),
                        },
                        taken_over,
                    ));
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(path)
                        .ok()
                        .and_then(|text| serde_json::from_str::<LockHolder>(&text).ok());
                    match holder {
                        Some(holder) if holder.host != me.host || is_alive(holder.pid) => {
                            return Err(LockError::Held {
                                path: path.to_path_buf(),
                                holder,
                            });
                        }
                        // Dead on this host, or unreadable (a kill while writing it): stale.
                        stale => {
                            taken_over = stale.or(Some(LockHolder {
                                pid: 0,
                                host: me.host.clone(),
                                started_at_ms: 0,
                            }));
                            match fs::remove_file(path) {
                                Ok(()) => {}
                                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                                Err(error) => return Err(io(error)),
                            }
                        }
                    }
                }
                Err(error) => return Err(io(error)),
            }
        }
        Err(io(std::io::Error::other("the lock kept changing hands")))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let (lock, stale) = Lock::acquire(&path).unwrap();
        assert_eq!(stale, None);
        match Lock::acquire(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.pid, std::process::id()),
            other => panic!("expected a held lock, got {other:?}"),
        }
        drop(lock);
        assert!(!path.exists());

        // A lock left by a process that no longer exists.
        let dead = LockHolder {
            pid: u32::MAX - 1,
            host: hostname(),
            started_at_ms: 1,
        };
        fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let (_lock, stale) = Lock::acquire(&path).unwrap();
        assert_eq!(stale, Some(dead));
    }
}
