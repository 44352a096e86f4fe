//! The bollard runtime against the real Docker engine (the local socket, or `DOCKER_HOST`).
//!
//! Every test labels what it creates with its own run id (`io.rollout.test-run`) and a guard
//! removes everything carrying that label when the test ends, passed or failed. Nothing
//! without that label is ever touched, nothing is pulled from a registry, and the only
//! addresses used are the engine's and 127.0.0.1.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use rollout::demo;
use rollout::docker::bollard::BollardRuntime;
use rollout::docker::{
    ContainerEventKind, ContainerSpec, DockerError, DockerHealth, PortBinding, Runtime, demo_image,
};
use rollout::plan::observed::ContainerState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RUN_LABEL: &str = "io.rollout.test-run";

/// How long anything in these tests may take to happen.
const DEADLINE: Duration = Duration::from_secs(30);

/// One test's run: its id, its labels, and the cleanup of everything carrying them.
struct TestRun {
    id: String,
}

impl TestRun {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_nanos();
        let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            id: format!("rollout-test-{}-{nanos}-{sequence}", std::process::id()),
        }
    }

    /// `io.rollout.test-run=<id>`, as a filter.
    fn label(&self) -> String {
        format!("{RUN_LABEL}={}", self.id)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(RUN_LABEL.to_owned(), self.id.clone())])
    }

    /// A demo container on `network`, publishing its port 8080 on `127.0.0.1:host_port`.
    fn demo_container(
        &self,
        suffix: &str,
        network: &str,
        host_port: u16,
        extra_env: &[&str],
    ) -> ContainerSpec {
        let mut env = vec![
            format!("ROLLOUT_DEMO_SERVICE={suffix}"),
            "ROLLOUT_DEMO_PORTS=8080".to_owned(),
            "ROLLOUT_DEMO_READY_AFTER_MS=200".to_owned(),
        ];
        env.extend(extra_env.iter().map(|variable| (*variable).to_owned()));
        ContainerSpec {
            name: format!("{}-{suffix}", self.id),
            image: demo::IMAGE.to_owned(),
            env,
            labels: self.labels(),
            ports: vec![PortBinding {
                address: "127.0.0.1".to_owned(),
                host: host_port,
                container: 8080,
            }],
            network: network.to_owned(),
            aliases: vec![suffix.to_owned()],
            command: None,
        }
    }
}

impl Drop for TestRun {
    /// Removes the containers, then the networks, then the images carrying this run's label.
    fn drop(&mut self) {
        let filter = format!("label={}", self.label());
        remove_listed(
            &["ps", "--all", "--quiet", "--filter", &filter],
            &["rm", "--force", "--volumes"],
        );
        remove_listed(
            &["network", "ls", "--quiet", "--filter", &filter],
            &["network", "rm"],
        );
        remove_listed(
            &["images", "--quiet", "--filter", &filter],
            &["rmi", "--force"],
        );
    }
}

/// Runs `docker <list>`, then `docker <remove> <ids…>` on what it printed. Cleanup must not
/// hide the test's own failure, so problems are only reported.
fn remove_listed(list: &[&str], remove: &[&str]) {
    let output = match Command::new("docker").args(list).output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!(
                "cleanup: `docker {}` failed: {}",
                list.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(error) => {
            eprintln!("cleanup: cannot run `docker {}`: {error}", list.join(" "));
            return;
        }
    };
    let mut ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return;
    }
    match Command::new("docker").args(remove).args(&ids).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => eprintln!(
            "cleanup: `docker {}` failed: {}",
            remove.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => eprintln!("cleanup: cannot run `docker {}`: {error}", remove.join(" ")),
    }
}

async fn connect() -> BollardRuntime {
    BollardRuntime::connect(None)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)))
}

/// An error with all its sources, for assertion messages.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Builds the demo image if it is missing, one test at a time.
async fn ensure_demo_image(runtime: &BollardRuntime) {
    static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = BUILDING.lock().await;
    let images = runtime.list_images().await.expect("list images");
    demo_image::ensure(runtime, &images, demo::IMAGE)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let images = runtime.list_images().await.expect("list images");
    assert!(images.contains(demo::IMAGE), "{images:?}");
    assert!(
        !demo_image::ensure(runtime, &images, demo::IMAGE)
            .await
            .expect("ensure the demo image again"),
        "a present demo image is not built again"
    );
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

/// Polls `attempt` until it gives a value, failing the test after `deadline`.
async fn eventually<T, Attempt, Output>(what: &str, deadline: Duration, mut attempt: Attempt) -> T
where
    Attempt: FnMut() -> Output,
    Output: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status code of `GET /` on `127.0.0.1:port`, or `None` if there is no answer yet.
async fn http_status(port: u16) -> Option<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
        let mut response = Vec::new();
        let mut buffer = [0_u8; 512];
        while !response.windows(2).any(|window| window == b"\r\n") {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..read]);
        }
        let response = String::from_utf8_lossy(&response);
        response.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn connects_and_negotiates_the_api_version() {
    let runtime = connect().await;
    let engine = runtime.engine();
    assert!(!engine.version.is_empty(), "{engine:?}");
    let (major, minor) = engine
        .api_version
        .split_once('.')
        .unwrap_or_else(|| panic!("api version `{}` is major.minor", engine.api_version));
    assert_eq!(major, "1", "{engine:?}");
    assert!(
        minor.parse::<u32>().expect("a numeric minor version") >= 24,
        "{engine:?}"
    );
    if std::env::var_os("DOCKER_HOST").is_none() {
        assert_eq!(engine.host, "unix:///var/run/docker.sock");
        assert!(engine.local);
    }
    runtime.list_containers().await.expect("list containers");
}

#[tokio::test]
async fn an_engine_that_is_not_there_fails_fast_naming_the_host() {
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let error = BollardRuntime::connect(Some(&host))
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, DockerError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains(&host), "{error}");

    let error = BollardRuntime::connect(Some("unix:///nonexistent/rollout-test.sock"))
        .await
        .expect_err("no such socket");
    assert!(matches!(error, DockerError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/rollout-test.sock"),
        "{error}"
    );
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_unresponsive_within_the_connect_timeout() {
    // The kernel accepts the connection into the backlog; nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let host = format!("tcp://{}", silent.local_addr().expect("local address"));
    let started = Instant::now();
    let error = BollardRuntime::connect(Some(&host))
        .await
        .expect_err("nobody answers");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, DockerError::Unresponsive { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&host), "{error}");
    drop(silent);
}

#[tokio::test]
async fn builds_images_and_reports_a_failed_build_with_the_engine_message() {
    let run = TestRun::new();
    let runtime = connect().await;
    ensure_demo_image(&runtime).await;

    let tag = format!("{}:built", run.id);
    runtime
        .build_image(&tag, demo_image::build_context(), &run.labels())
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let images = runtime.list_images().await.expect("list images");
    assert!(images.contains(&tag), "{images:?}");

    let mut broken = tar::Builder::new(Vec::new());
    let dockerfile = b"FROM scratch\nCOPY missing-file /missing-file\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    broken
        .append_data(&mut header, "Dockerfile", dockerfile.as_slice())
        .expect("write a tar in memory");
    let broken = broken.into_inner().expect("finish a tar in memory");
    let broken_tag = format!("{}:broken", run.id);
    let error = runtime
        .build_image(&broken_tag, broken, &run.labels())
        .await
        .expect_err("the build copies a file that is not in the context");
    assert!(
        matches!(
            error,
            DockerError::Operation {
                operation: "build image",
                ..
            }
        ),
        "{error:?}"
    );
    let chain = error_chain(&error);
    assert!(chain.contains(&broken_tag), "{chain}");
    assert!(chain.contains("missing-file"), "{chain}");
}

#[tokio::test]
async fn a_pull_from_an_unreachable_registry_means_the_image_is_unavailable() {
    let runtime = connect().await;
    // A registry on the engine's own loopback where nothing listens: no outside network.
    let image = format!("127.0.0.1:{}/rollout-test/absent:latest", free_port());
    let error = runtime
        .pull_image(&image, &|_| {})
        .await
        .expect_err("nothing serves that registry");
    assert!(
        matches!(error, DockerError::ImageUnavailable { image: ref named, .. } if *named == image),
        "{}",
        error_chain(&error)
    );
}

#[tokio::test]
async fn runs_the_demo_service_through_its_whole_life() {
    let run = TestRun::new();
    let runtime = connect().await;
    ensure_demo_image(&runtime).await;

    // The network.
    let network = run.id.clone();
    assert_eq!(
        runtime
            .network_labels(&network)
            .await
            .expect("look up the network"),
        None
    );
    runtime
        .create_network(&network, &run.labels())
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    assert_eq!(
        runtime
            .network_labels(&network)
            .await
            .expect("look up the network"),
        Some(run.labels())
    );
    let prefix = &network[..network.len() - 1];
    assert_eq!(
        runtime
            .network_labels(prefix)
            .await
            .expect("look up a prefix"),
        None,
        "a network name is matched exactly, not as a prefix"
    );

    // A healthy demo service, published on 127.0.0.1.
    let port = free_port();
    let spec = run.demo_container("web", &network, port, &[]);
    let id = runtime
        .create_container(&spec)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let created = runtime.inspect_container(&id).await.expect("inspect");
    assert_eq!(created.state, ContainerState::Created);
    assert_eq!(created.started_at, None);

    // Events from here on, before anything starts.
    let mut events = runtime.container_events(&run.label());

    runtime
        .start_container(&id)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let status = eventually("the demo service answers HTTP", DEADLINE, || {
        http_status(port)
    })
    .await;
    assert_eq!(status, 200);

    let details = runtime.inspect_container(&id).await.expect("inspect");
    assert_eq!(details.id, id);
    assert_eq!(details.name, spec.name);
    assert_eq!(details.image, demo::IMAGE);
    assert_eq!(details.state, ContainerState::Running);
    assert_eq!(details.labels.get(RUN_LABEL), Some(&run.id));
    assert_eq!(
        details.health,
        DockerHealth::None,
        "the demo image has no HEALTHCHECK"
    );
    assert_eq!(details.health_output, None);
    assert_eq!(details.restart_count, 0);
    assert!(details.started_at.is_some(), "{details:?}");
    assert_eq!(details.error, None);

    let listed = runtime.list_containers().await.expect("list containers");
    let summary = listed
        .iter()
        .find(|summary| summary.id == id)
        .unwrap_or_else(|| panic!("{id} is not listed"));
    assert_eq!(summary.name, spec.name);
    assert_eq!(summary.state, ContainerState::Running);
    assert_eq!(summary.published_ports, vec![port]);
    assert_eq!(summary.labels.get(RUN_LABEL), Some(&run.id));

    // Commands inside the container.
    let probe = |port: &str| {
        vec![
            demo::BINARY_PATH.to_owned(),
            "probe".to_owned(),
            port.to_owned(),
        ]
    };
    let answered = runtime
        .exec(&id, &probe("8080"))
        .await
        .expect("exec a probe");
    assert_eq!(answered.exit_code, Some(0), "{answered:?}");
    let refused = runtime.exec(&id, &probe("9")).await.expect("exec a probe");
    assert_eq!(refused.exit_code, Some(1), "{refused:?}");
    assert!(refused.output.contains("127.0.0.1:9"), "{refused:?}");

    // The log.
    let lines = runtime.logs(&id, 20).await.expect("read the log");
    assert!(
        lines.iter().any(|line| line.contains("web ready at")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|line| !line.ends_with('\n')), "{lines:?}");

    // A second container that fails at once: the events report its death and exit code.
    let failing_spec = run.demo_container(
        "failing",
        &network,
        free_port(),
        &["ROLLOUT_DEMO_FAIL=exit"],
    );
    let failing = runtime
        .create_container(&failing_spec)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    runtime
        .start_container(&failing)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let mut started = Vec::new();
    let died = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.next().await {
            let event = event.unwrap_or_else(|error| panic!("{}", error_chain(&error)));
            match event.kind {
                ContainerEventKind::Start => started.push(event.id),
                ContainerEventKind::Die { exit_code } if event.id == failing => return exit_code,
                _ => {}
            }
        }
        panic!("the event stream ended");
    })
    .await
    .expect("a die event for the failing container");
    assert_eq!(died, Some(1));
    assert!(
        started.contains(&id),
        "start of the first container: {started:?}"
    );
    assert!(
        started.contains(&failing),
        "start of the failing container: {started:?}"
    );
    let failed = runtime.inspect_container(&failing).await.expect("inspect");
    assert_eq!(failed.state, ContainerState::Exited);
    assert_eq!(failed.exit_code, Some(1));

    // Rename, stop (twice: already stopped is fine), remove.
    let renamed = format!("{}-previous", spec.name);
    runtime
        .rename_container(&id, &renamed)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    assert_eq!(
        runtime.inspect_container(&id).await.expect("inspect").name,
        renamed
    );

    runtime
        .stop_container(&id, Duration::from_secs(5))
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let stopped = runtime.inspect_container(&id).await.expect("inspect");
    assert_eq!(stopped.state, ContainerState::Exited);
    runtime
        .stop_container(&id, Duration::from_secs(5))
        .await
        .expect("stopping a stopped container succeeds");
    let refused = runtime.exec(&id, &probe("8080")).await;
    assert!(refused.is_err(), "exec in a stopped container: {refused:?}");

    runtime
        .remove_container(&id)
        .await
        .unwrap_or_else(|error| panic!("{}", error_chain(&error)));
    let gone = runtime.inspect_container(&id).await.expect_err("removed");
    assert!(
        matches!(gone, DockerError::NotFound { ref object } if *object == id),
        "{gone:?}"
    );
    let gone = runtime.start_container(&id).await.expect_err("removed");
    assert!(matches!(gone, DockerError::NotFound { .. }), "{gone:?}");
}

#[tokio::test]
async fn creating_from_a_missing_image_says_the_image_is_unavailable() {
    let run = TestRun::new();
    let runtime = connect().await;
    let mut spec = run.demo_container("missing", "bridge", free_port(), &[]);
    spec.aliases.clear();
    spec.image = format!("{}-absent:never", run.id);
    let error = runtime
        .create_container(&spec)
        .await
        .expect_err("the image does not exist");
    assert!(
        matches!(error, DockerError::ImageUnavailable { ref image, .. } if *image == spec.image),
        "{}",
        error_chain(&error)
    );
}
