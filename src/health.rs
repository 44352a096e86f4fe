//! Health checks: one probe ([`Prober`]), the retry schedule, and the wait.
//!
//! The schedule is an iterator of delays (exponential, jittered, capped: backon); the wait
//! is one function that probes, sleeps and watches the container; the deadline wraps it
//! from outside (`tokio::time::timeout`). A container that exits while being waited on
//! fails the wait at once, through the engine's event stream or, without one, through
//! inspect. This module knows services and containers, not plans.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::docker::{DockerHealth, Runtime};
use crate::model::{HealthTiming, Probe, Service};
use crate::plan::observed::ContainerState;

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Healthy,
    /// Not (yet) healthy, with what the probe saw.
    NotYet(String),
}

/// Runs one health probe of a service against its container.
pub trait Prober: Send + Sync {
    fn probe(
        &self,
        service: &Service,
        container_id: &str,
    ) -> impl Future<Output = ProbeResult> + Send;
}

/// The retry delays: from `interval` growing twofold to `max_interval`, each drawn from the
/// upper half of its step (jitter), never above `max_interval`.
pub fn schedule(timing: &HealthTiming) -> impl Iterator<Item = Duration> + Send + use<> {
    let cap = timing.max_interval.max(timing.interval);
    ExponentialBuilder::new()
        .with_min_delay(timing.interval / 2)
        .with_max_delay(cap / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |delay| delay.min(cap))
}

/// How the container being waited on is doing, as the executor's event watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ContainerSignal {
    #[default]
    Running,
    /// It exited (with its code, when known).
    Exited(Option<i64>),
    /// It restarted (a restart policy brought it back): a failure all the same.
    Restarted,
}

/// Why a wait did not end healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "failure", rename_all = "kebab-case")]
pub enum WaitFailure {
    /// The deadline passed.
    Deadline {
        timeout: String,
    },
    /// The container exited while being waited on.
    Exited {
        exit_code: Option<i64>,
    },
    Restarted,
    /// The wait was called off (another service failed, or Ctrl-C).
    Cancelled,
}

impl std::fmt::Display for WaitFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deadline { timeout } => {
                write!(formatter, "not healthy within its deadline of {timeout}")
            }
            Self::Exited {
                exit_code: Some(code),
            } => write!(formatter, "the container exited with code {code}"),
            Self::Exited { exit_code: None } => formatter.write_str("the container exited"),
            Self::Restarted => formatter.write_str("the container restarted"),
            Self::Cancelled => formatter.write_str("the wait was cancelled"),
        }
    }
}

/// What a wait ended with: the verdict, the attempts it took and the last probe output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    pub result: Result<(), WaitFailure>,
    pub attempts: u32,
    pub last_output: Option<String>,
    pub elapsed: Duration,
}

/// What a wait listens to besides its probes.
pub struct Watch {
    /// The container's state from the event stream; `None`: there is no stream, and the
    /// wait inspects the container after each failed probe instead.
    pub signal: Option<watch::Receiver<ContainerSignal>>,
    /// Turns true to call the wait off.
    pub cancel: watch::Receiver<bool>,
}

/// Waits until `service` is healthy in `container_id`, under its deadline. `on_attempt`
/// sees each failed attempt's number and output.
pub async fn wait_until_healthy<P: Prober, R: Runtime>(
    prober: &P,
    runtime: &R,
    service: &Service,
    container_id: &str,
    timing: &HealthTiming,
    watch: Watch,
    on_attempt: &(dyn Fn(u32, &str) + Send + Sync),
) -> WaitOutcome {
    let Watch {
        mut signal,
        mut cancel,
    } = watch;
    let started = Instant::now();
    let deadline = timing.timeout.max(timing.start_period);
    let mut attempts = 0;
    let mut last_output = None;
    let wait = async {
        let mut delays = schedule(timing);
        loop {
            if *cancel.borrow() {
                return Err(WaitFailure::Cancelled);
            }
            attempts += 1;
            match prober.probe(service, container_id).await {
                ProbeResult::Healthy => return Ok(()),
                ProbeResult::NotYet(output) => {
                    on_attempt(attempts, &output);
                    last_output = Some(output);
                }
            }
            if signal.is_none()
                && !container_id.is_empty()
                && let Some(failure) = inspect_for_exit(runtime, container_id).await
            {
                return Err(failure);
            }
            let delay = delays.next().unwrap_or(timing.max_interval);
            let exited = async {
                match signal.as_mut() {
                    Some(receiver) => loop {
                        match receiver.borrow_and_update().clone() {
                            ContainerSignal::Running => {}
                            ContainerSignal::Exited(code) => {
                                return WaitFailure::Exited { exit_code: code };
                            }
                            ContainerSignal::Restarted => return WaitFailure::Restarted,
                        }
                        if receiver.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    },
                    None => std::future::pending().await,
                }
            };
            let called_off = async {
                // A dropped sender can never cancel: wait forever rather than spin.
                if cancel.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                failure = exited => return Err(failure),
                () = called_off => {}
            }
        }
    };
    let result = match tokio::time::timeout(deadline, wait).await {
        Ok(result) => result,
        Err(_) => Err(WaitFailure::Deadline {
            timeout: humantime::format_duration(deadline).to_string(),
        }),
    };
    WaitOutcome {
        result,
        attempts,
        last_output,
        elapsed: started.elapsed(),
    }
}

/// Without an event stream: whether the container has stopped running.
async fn inspect_for_exit<R: Runtime>(runtime: &R, container_id: &str) -> Option<WaitFailure> {
    let details = runtime.inspect_container(container_id).await.ok()?;
    match details.state {
        ContainerState::Exited | ContainerState::Dead => Some(WaitFailure::Exited {
            exit_code: details.exit_code,
        }),
        ContainerState::Restarting => Some(WaitFailure::Restarted),
        _ => None,
    }
}

/// The real prober: HTTP and TCP from this machine against the published host ports,
/// `cmd` through `docker exec`, `docker` through the container's own health status.
pub struct NetworkProber<'a, R: Runtime> {
    runtime: &'a R,
    /// The host the published ports are reached on: 127.0.0.1 for a local engine, the
    /// engine's host for a remote one.
    host: String,
    /// TCP checks to a published port go through Docker's userland proxy, which accepts
    /// even when nothing listens inside; it then closes at once. Waiting this long for
    /// that close tells the two apart.
    proxy_grace: Duration,
}

impl<'a, R: Runtime> NetworkProber<'a, R> {
    pub fn new(runtime: &'a R, host: impl Into<String>) -> Self {
        Self {
            runtime,
            host: host.into(),
            proxy_grace: Duration::from_millis(30),
        }
    }
}

const READ_LIMIT: usize = 4096;

impl<R: Runtime> Prober for NetworkProber<'_, R> {
    async fn probe(&self, service: &Service, container_id: &str) -> ProbeResult {
        let timing = &service.health.timing;
        let port = service.first_host_port();
        let attempt = async {
            match &service.health.probe {
                Probe::Http { paths } => {
                    let Some(port) = port else {
                        return ProbeResult::NotYet("no host port".into());
                    };
                    let address = (self.host.as_str(), port);
                    let mut outputs = Vec::new();
                    for path in paths {
                        match http_get(address, path).await {
                            Ok(status) if (200..400).contains(&status) => {
                                return ProbeResult::Healthy;
                            }
                            Ok(status) => outputs.push(format!("GET {path}: HTTP {status}")),
                            Err(error) => outputs.push(format!("GET {path}: {error}")),
                        }
                    }
                    ProbeResult::NotYet(outputs.join("; "))
                }
                Probe::Tcp { target: None } => {
                    let Some(port) = port else {
                        return ProbeResult::NotYet("no host port".into());
                    };
                    tcp_through_proxy((self.host.as_str(), port), self.proxy_grace).await
                }
                Probe::Tcp {
                    target: Some(target),
                } => match TcpStream::connect((target.host.as_str(), target.port)).await {
                    Ok(_) => ProbeResult::Healthy,
                    Err(error) => ProbeResult::NotYet(format!(
                        "connect {}:{}: {error}",
                        target.host, target.port
                    )),
                },
                Probe::Cmd { command } => match self.runtime.exec(container_id, command).await {
                    Ok(output) if output.exit_code == Some(0) => ProbeResult::Healthy,
                    Ok(output) => ProbeResult::NotYet(format!(
                        "`{}` exited with {}: {}",
                        command.join(" "),
                        output
                            .exit_code
                            .map_or_else(|| "no code".to_owned(), |code| code.to_string()),
                        output.output.trim()
                    )),
                    Err(error) => ProbeResult::NotYet(error.to_string()),
                },
                Probe::Docker => match self.runtime.inspect_container(container_id).await {
                    Ok(details) => match details.health {
                        DockerHealth::Healthy => ProbeResult::Healthy,
                        DockerHealth::Starting => {
                            ProbeResult::NotYet("docker health: starting".into())
                        }
                        DockerHealth::Unhealthy => ProbeResult::NotYet(format!(
                            "docker health: unhealthy: {}",
                            details.health_output.unwrap_or_default().trim()
                        )),
                        DockerHealth::None => {
                            ProbeResult::NotYet("the image has no HEALTHCHECK".into())
                        }
                    },
                    Err(error) => ProbeResult::NotYet(error.to_string()),
                },
            }
        };
        match tokio::time::timeout(timing.attempt_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => ProbeResult::NotYet(format!(
                "no answer within {}",
                humantime::format_duration(timing.attempt_timeout)
            )),
        }
    }
}

/// The fake engine's prober: a container is healthy once its scripted time has passed; an
/// external (no container) always is.
impl Prober for crate::docker::fake::FakeEngine {
    async fn probe(&self, _service: &Service, container_id: &str) -> ProbeResult {
        if container_id.is_empty() {
            return ProbeResult::Healthy;
        }
        match self.scripted_health(container_id) {
            Ok(()) => ProbeResult::Healthy,
            Err(detail) => ProbeResult::NotYet(detail),
        }
    }
}

/// `GET path` over HTTP/1.1; the status code.
async fn http_get(address: (&str, u16), path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: rollout\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(256);
    let mut buffer = [0u8; 512];
    while !response.windows(2).any(|window| window == b"\r\n") && response.len() < READ_LIMIT {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&response);
    let status = line
        .lines()
        .next()
        .and_then(|status_line| status_line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok());
    status.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            if response.is_empty() {
                "connection closed without a response".to_owned()
            } else {
                "not an HTTP response".to_owned()
            },
        )
    })
}

/// A TCP connect that counts only if the connection stays open for `grace`: Docker's
/// userland proxy accepts on the host port even when nothing listens inside, then closes.
async fn tcp_through_proxy(endpoint: (&str, u16), grace: Duration) -> ProbeResult {
    let address = format!("{}:{}", endpoint.0, endpoint.1);
    let mut stream = match TcpStream::connect(endpoint).await {
        Ok(stream) => stream,
        Err(error) => return ProbeResult::NotYet(format!("connect {address}: {error}")),
    };
    let mut buffer = [0u8; 64];
    match tokio::time::timeout(grace, stream.read(&mut buffer)).await {
        // Still open and quiet, or it spoke first: something listens.
        Err(_) | Ok(Ok(1..)) => ProbeResult::Healthy,
        Ok(Ok(0)) => ProbeResult::NotYet(format!(
            "{address}: connection closed at once (nothing listens behind the port yet)"
        )),
        Ok(Err(error)) => ProbeResult::NotYet(format!("{address}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_and_stays_under_its_cap() {
        let timing = HealthTiming {
            interval: Duration::from_millis(40),
            max_interval: Duration::from_millis(300),
            ..HealthTiming::default()
        };
        let delays: Vec<Duration> = schedule(&timing).take(12).collect();
        assert!(delays[0] >= Duration::from_millis(20) && delays[0] <= Duration::from_millis(40));
        assert!(
            delays
                .iter()
                .all(|delay| *delay <= Duration::from_millis(300))
        );
        assert!(
            delays[11] >= Duration::from_millis(150),
            "reaches the upper part of the cap: {delays:?}"
        );
    }

    #[tokio::test]
    async fn tcp_through_proxy_tells_a_listener_from_an_instant_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ("127.0.0.1", listener.local_addr().unwrap().port());
        // A listener that keeps connections open: healthy.
        let keep = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(socket);
        });
        assert_eq!(
            tcp_through_proxy(address, Duration::from_millis(30)).await,
            ProbeResult::Healthy
        );
        keep.abort();

        // A "proxy" that accepts and closes at once: not yet.
        let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closing_address = ("127.0.0.1", closing.local_addr().unwrap().port());
        tokio::spawn(async move {
            loop {
                let (socket, _) = closing.accept().await.unwrap();
                drop(socket);
            }
        });
        assert!(matches!(
            tcp_through_proxy(closing_address, Duration::from_millis(200)).await,
            ProbeResult::NotYet(_)
        ));
    }
}
