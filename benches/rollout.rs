//! Rollout benchmark: how close `rollout phase all` gets to the critical path of the
//! dependency graph, and how it compares with docker-compose, against the real engine.
//!
//! For each platform (the BizOSaaS demo platform, and a synthetic one of 200 services with a
//! deep and wide graph) it:
//! 1. writes the platform with per-service ready delays into a temp dir, under a unique
//!    platform name, network and demo image tag;
//! 2. runs `rollout --env bench phase all --output json` and measures the wall time;
//! 3. computes the critical-path lower bound from the same delays plus the measured cost of
//!    one container create and start (phases one after another);
//! 4. writes the equivalent compose file (same image, ports, env, healthchecks, `depends_on`
//!    with `condition: service_healthy`) and times `docker-compose up -d` until every
//!    service is healthy;
//! 5. removes everything it created and prints the ratios and the health-detection latency
//!    (from the moment a demo service says it is ready to `rollout` marking it healthy).
//!
//! Run with `benches/run.sh` (or `cargo bench --bench rollout`). Needs Docker and
//! docker-compose; connects only to the local engine and to 127.0.0.1.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rollout::model::{Config, PhaseNumber};

const ROLLOUT: &str = env!("CARGO_BIN_EXE_rollout");

fn main() {
    let run = format!("bench{}", std::process::id());
    let mut results = Vec::new();
    let only = std::env::args()
        .nth(1)
        .filter(|argument| !argument.starts_with('-'));
    if only.as_deref().is_none_or(|name| name == "bizosaas") {
        results.push(measure(
            "BizOSaaS demo",
            &bizosaas_platform(&format!("{run}b")),
        ));
    }
    if only.as_deref().is_none_or(|name| name == "synthetic") {
        results.push(measure(
            "synthetic 200",
            &synthetic_platform(&format!("{run}s"), 200),
        ));
    }
    println!(
        "\n{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "platform",
        "rollout",
        "bound",
        "r/bound",
        "eng.bound",
        "r/eng",
        "compose",
        "compose/r",
        "lat p50",
        "lat p95"
    );
    for result in &results {
        println!(
            "{:<16} {:>8.2}s {:>8.2}s {:>9.3} {:>8.2}s {:>9.3} {:>8.2}s {:>10.3} {:>7}ms {:>7}ms",
            result.name,
            result.rollout.as_secs_f64(),
            result.bound.as_secs_f64(),
            result.rollout.as_secs_f64() / result.bound.as_secs_f64(),
            result.engine_bound.as_secs_f64(),
            result.rollout.as_secs_f64() / result.engine_bound.as_secs_f64(),
            result.compose.as_secs_f64(),
            result.compose.as_secs_f64() / result.rollout.as_secs_f64(),
            result.latency_p50,
            result.latency_p95,
        );
    }
}

struct Measurement {
    name: &'static str,
    rollout: Duration,
    bound: Duration,
    engine_bound: Duration,
    compose: Duration,
    latency_p50: u64,
    latency_p95: u64,
}

/// A platform directory in a temp dir, with its demo overlay `bench`.
struct Bench {
    dir: tempfile::TempDir,
    name: String,
}

impl Bench {
    fn new(name: &str) -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temp dir"),
            name: name.to_owned(),
        }
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        std::fs::write(path, text).expect("write");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn image(&self) -> String {
        format!("rollout-demo:{}", self.name)
    }

    fn config(&self) -> Config {
        rollout::config::load(self.path(), Some("bench")).expect("the bench platform is valid")
    }
}

/// Removes every container, network and image this bench run created, also on a panic.
impl Drop for Bench {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["-p", &format!("{}c", self.name), "-f"])
            .arg(self.path().join("docker-compose.yml"))
            .args(["down", "--timeout", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for label in [
            format!("io.rollout.platform={}", self.name),
            format!("com.docker.compose.project={}c", self.name),
        ] {
            if let Ok(output) = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("label={label}")])
                .output()
            {
                let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker")
                        .args(["rm", "-f"])
                        .args(&ids)
                        .stdout(Stdio::null())
                        .status();
                }
            }
        }
        for network in [self.name.clone(), format!("{}c_default", self.name)] {
            let _ = Command::new("docker")
                .args(["network", "rm", &network])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The shipped BizOSaaS platform with its demo overlay, under a unique name.
fn bizosaas_platform(name: &str) -> Bench {
    let bench = Bench::new(name);
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for directory in ["config/services", "phases"] {
        for entry in std::fs::read_dir(repository.join(directory)).expect("read the shipped config")
        {
            let path = entry.expect("an entry").path();
            let file = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string();
            bench.write(
                &format!("{directory}/{file}"),
                &std::fs::read_to_string(&path).expect("read"),
            );
        }
    }
    let platform = std::fs::read_to_string(repository.join("config/platform.toml")).expect("read");
    bench.write(
        "config/platform.toml",
        &platform
            .replacen("name = \"bizosaas\"", &format!("name = \"{name}\""), 1)
            .replacen(
                "network = \"bizosaas\"",
                &format!("network = \"{name}\""),
                1,
            ),
    );
    let demo = std::fs::read_to_string(repository.join("config/env/demo.toml")).expect("read");
    bench.write(
        "config/env/bench.toml",
        &demo.replacen(
            "[demo]\n",
            &format!("[demo]\nimage = \"{}\"\n", bench.image()),
            1,
        ),
    );
    bench
}

/// A synthetic platform: `count` services in layers of 20, each depending on two to three
/// services of the layer before (deep and wide), 5 infrastructure services at the bottom,
/// the layers spread over the four phases, ready delays from 100 to 600 ms.
fn synthetic_platform(name: &str, count: usize) -> Bench {
    let bench = Bench::new(name);
    let mut random: u64 = 0x5eed_0000_1234_5678;
    let mut next = |bound: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % bound
    };
    let width = 20;
    let layers = count / width;
    let mut services = String::new();
    let mut demo = format!(
        "[vars]\nTAG = \"1\"\n[docker]\nbind_address = \"127.0.0.1\"\n[demo]\nready_after = \"200ms\"\nimage = \"{}\"\n",
        bench.image()
    );
    let mut phases: BTreeMap<PhaseNumber, Vec<String>> = BTreeMap::new();
    for infrastructure in 0..5 {
        let _ = write!(
            services,
            "[services.infra{infrastructure}]\nkind = \"infrastructure\"\ncategory = \"any\"\nimage = \"infra{infrastructure}:1\"\nports = [{}]\nhealth = {{ tcp = true }}\n\n",
            31000 + infrastructure
        );
        let _ = write!(
            demo,
            "[demo.services.infra{infrastructure}]\nready_after = \"{}ms\"\n",
            300 + next(300)
        );
    }
    for layer in 0..layers {
        let phase = (1 + layer * 4 / layers) as PhaseNumber;
        for position in 0..width {
            let index = layer * width + position;
            let service = format!("s{index:03}");
            let dependencies: Vec<String> = if layer == 0 {
                vec![format!("infra{}", position % 5)]
            } else {
                let mut chosen: Vec<String> = (0..2 + next(2))
                    .map(|_| format!("s{:03}", (layer - 1) * width + next(width as u64) as usize))
                    .collect();
                chosen.sort();
                chosen.dedup();
                chosen
            };
            let quoted: Vec<String> = dependencies.iter().map(|d| format!("\"{d}\"")).collect();
            let _ = write!(
                services,
                "[services.{service}]\ncategory = \"any\"\nimage = \"acme/{service}:${{TAG}}\"\nports = [{}]\ndepends_on = [{}]\nhealth = {{ http = \"/health\" }}\n\n",
                32000 + index,
                quoted.join(", ")
            );
            let _ = write!(
                demo,
                "[demo.services.{service}]\nready_after = \"{}ms\"\n",
                100 + next(500)
            );
            phases.entry(phase).or_default().push(service);
        }
    }
    bench.write(
        "config/platform.toml",
        &format!("[platform]\nname = \"{name}\"\n[vars]\nTAG = \"1\"\n[[ranges]]\nname = \"all\"\nports = \"30000-39999\"\ncategories = [\"any\"]\n"),
    );
    bench.write("config/services/services.toml", &services);
    for phase in 1..=4 {
        let members: Vec<String> = phases
            .get(&phase)
            .into_iter()
            .flatten()
            .map(|s| format!("\"{s}\""))
            .collect();
        bench.write(
            &format!("phases/{phase}.toml"),
            &format!(
                "phase = {phase}\nname = \"layer group {phase}\"\nservices = [{}]\n",
                members.join(", ")
            ),
        );
    }
    bench.write("config/env/bench.toml", &demo);
    bench
}

fn measure(name: &'static str, bench: &Bench) -> Measurement {
    let config = bench.config();
    println!(
        "== {name}: {} services",
        config
            .services()
            .iter()
            .filter(|s| s.runs_container())
            .count()
    );

    // Build the demo image first, outside the timed run (it is a one-off cost).
    let first = first_phase_build(bench);
    assert!(first, "building the demo image failed");

    let started = Instant::now();
    let output = Command::new(ROLLOUT)
        .arg("--dir")
        .arg(bench.path())
        .args(["--env", "bench", "--output", "json", "phase", "all"])
        .output()
        .expect("run rollout");
    let rollout_time = started.elapsed();
    assert!(
        output.status.success(),
        "rollout failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    println!("rollout phase all: {:.2} s", rollout_time.as_secs_f64());

    // The cost of one create and start: from `creating` to the first health check.
    let mut creating: HashMap<String, u64> = HashMap::new();
    let mut costs = Vec::new();
    let mut healthy_at: HashMap<String, u64> = HashMap::new();
    for event in &events {
        let (Some(service), Some(state), Some(ts)) = (
            event["service"].as_str(),
            event["state"].as_str(),
            event["ts_ms"].as_u64(),
        ) else {
            continue;
        };
        match state {
            "creating" => {
                creating.insert(service.to_owned(), ts);
            }
            "checking" if event["attempt"] == 0 => {
                if let Some(start) = creating.remove(service) {
                    costs.push(ts - start);
                }
            }
            "healthy" => {
                healthy_at.insert(service.to_owned(), ts);
            }
            _ => {}
        }
    }
    costs.sort_unstable();
    let (start_cost, throughput_cost) = single_start_cost(bench);
    let bound = critical_path(&config, start_cost);
    let engine_bound = engine_bound(&config, start_cost, throughput_cost);
    println!(
        "container create+start: {} ms alone (median of 5), {} ms per container when 8 start at once; {} ms median within the rollout ({} containers)",
        start_cost.as_millis(),
        throughput_cost.as_millis(),
        costs[costs.len() / 2],
        costs.len(),
    );
    println!(
        "critical-path bound {:.2} s; with the engine's throughput (each phase at least its containers x {} ms): {:.2} s",
        bound.as_secs_f64(),
        throughput_cost.as_millis(),
        engine_bound.as_secs_f64()
    );

    // Detection latency: the demo service's own "ready at" line to rollout's healthy event.
    let mut latencies: Vec<u64> = Vec::new();
    for service in config
        .services()
        .iter()
        .filter(|service| service.runs_container())
    {
        let container = config.container_name(&service.name);
        let logs = Command::new("docker")
            .args(["logs", &container])
            .output()
            .expect("docker logs");
        let text = String::from_utf8_lossy(&logs.stdout);
        let ready = text.lines().find_map(|line| {
            line.split(" ready at ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        });
        if let (Some(ready), Some(healthy)) = (ready, healthy_at.get(service.name.as_str())) {
            latencies.push(healthy.saturating_sub(ready));
        }
    }
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "detection latency over {} services: p50 {} ms, p95 {} ms, max {} ms",
        latencies.len(),
        percentile(50),
        percentile(95),
        latencies.last().copied().unwrap_or_default()
    );

    // Clear the rollout deployment, then the same platform with docker-compose.
    let down = Command::new(ROLLOUT)
        .arg("--dir")
        .arg(bench.path())
        .args(["--env", "bench", "-q", "down"])
        .output()
        .expect("rollout down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let compose = compose_time(bench, &config);
    println!(
        "docker-compose up until all healthy: {:.2} s",
        compose.as_secs_f64()
    );

    Measurement {
        name,
        rollout: rollout_time,
        bound,
        engine_bound,
        compose,
        latency_p50: percentile(50),
        latency_p95: percentile(95),
    }
}

/// Builds the demo image before the timed run (a one-off cost that is not the rollout's):
/// roll out phase 1 and take it down again.
fn first_phase_build(bench: &Bench) -> bool {
    let run = |arguments: &[&str]| {
        Command::new(ROLLOUT)
            .arg("--dir")
            .arg(bench.path())
            .args(["--env", "bench", "-q"])
            .args(arguments)
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false)
    };
    run(&["phase", "1"]) && run(&["down"])
}

/// The cost of one container create and start on this engine, alone: the median of five,
/// through the same engine API `rollout` uses.
fn single_start_cost(bench: &Bench) -> (Duration, Duration) {
    use rollout::docker::{ContainerSpec, Runtime};
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let engine = rollout::docker::bollard::BollardRuntime::connect(None)
            .await
            .expect("the local engine");
        let labels = BTreeMap::from([("io.rollout.platform".to_owned(), bench.name.clone())]);
        if engine
            .network_labels(&bench.name)
            .await
            .expect("networks")
            .is_none()
        {
            engine
                .create_network(&bench.name, &labels)
                .await
                .expect("create the network");
        }
        // A container like the rollout's: on the platform's network, with an alias and a
        // published port.
        let spec_named = |name: String| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .expect("a free port")
                .local_addr()
                .expect("an address")
                .port();
            ContainerSpec {
                name: format!("{}-{name}", bench.name),
                image: bench.image(),
                env: vec!["ROLLOUT_DEMO_PORTS=80".to_owned()],
                labels: labels.clone(),
                ports: vec![rollout::docker::PortBinding {
                    address: "127.0.0.1".to_owned(),
                    host: port,
                    container: 80,
                }],
                network: bench.name.clone(),
                aliases: vec![name],
                command: None,
            }
        };
        let mut costs = Vec::new();
        for attempt in 0..5 {
            let spec = spec_named(format!("startcost{attempt}"));
            let started = Instant::now();
            let id = engine.create_container(&spec).await.expect("create");
            engine.start_container(&id).await.expect("start");
            costs.push(started.elapsed());
            engine.remove_container(&id).await.expect("remove");
        }
        costs.sort();
        // The engine's throughput: eight at once, the time per container.
        let specs: Vec<ContainerSpec> = (0..8)
            .map(|index| spec_named(format!("throughput{index}")))
            .collect();
        let started = Instant::now();
        let ids = futures_util::future::join_all(specs.iter().map(|spec| async {
            let id = engine.create_container(spec).await.expect("create");
            engine.start_container(&id).await.expect("start");
            id
        }))
        .await;
        let per_container = started.elapsed() / 8;
        for id in ids {
            engine.remove_container(&id).await.expect("remove");
        }
        (costs[costs.len() / 2], per_container)
    })
}

/// The critical path: phase by phase, each service's earliest finish is the latest finish
/// of its dependencies in the same phase, plus one create and start, plus its ready delay.
fn critical_path(config: &Config, start_cost: Duration) -> Duration {
    all_phases(config)
        .phases
        .iter()
        .map(|phase| critical_path_of(config, phase, start_cost))
        .sum()
}

/// The critical path, where each phase also takes at least as long as the engine needs to
/// create and start its containers at its measured throughput.
fn engine_bound(config: &Config, start_cost: Duration, throughput_cost: Duration) -> Duration {
    all_phases(config)
        .phases
        .iter()
        .map(|phase| {
            let containers = phase
                .steps
                .iter()
                .filter(|step| step.action.mutates())
                .count() as u32;
            critical_path_of(config, phase, start_cost).max(throughput_cost * containers)
        })
        .sum()
}

fn all_phases(config: &Config) -> rollout::plan::Plan {
    rollout::plan::plan(
        config,
        rollout::plan::Selection::All,
        &rollout::plan::observed::ObservedHost::empty(),
        rollout::plan::PlanOptions::default(),
    )
}

fn critical_path_of(
    config: &Config,
    phase: &rollout::plan::PhasePlan,
    start_cost: Duration,
) -> Duration {
    let mut finish: HashMap<&str, Duration> = HashMap::new();
    for step in &phase.steps {
        let service = config.service(step.service.as_str()).expect("a service");
        let ready = service
            .demo
            .as_ref()
            .map_or(Duration::ZERO, |demo| demo.ready_after);
        let after = step
            .waits_for
            .iter()
            .filter_map(|dependency| finish.get(dependency.as_str()))
            .max()
            .copied()
            .unwrap_or_default();
        finish.insert(step.service.as_str(), after + start_cost + ready);
    }
    finish.values().max().copied().unwrap_or_default()
}

/// The equivalent compose file; times `docker-compose up -d` until every service is healthy.
fn compose_time(bench: &Bench, config: &Config) -> Duration {
    let mut text = String::from("version: \"2.4\"\nservices:\n");
    let running: Vec<_> = config
        .services()
        .iter()
        .filter(|service| service.runs_container())
        .collect();
    let secrets = rollout::secrets::Secrets::gather(config, running.iter().copied(), |_| None)
        .expect("demo secrets");
    for service in running {
        let _ = writeln!(
            text,
            "  {}:\n    image: \"{}\"",
            service.name,
            bench.image()
        );
        text.push_str("    environment:\n");
        for entry in secrets.container_env(service) {
            let (key, value) = entry.split_once('=').expect("KEY=VALUE");
            // Compose interpolates `$`: escape it.
            let _ = writeln!(
                text,
                "      {key}: '{}'",
                value.replace('$', "$$").replace('\'', "''")
            );
        }
        if !service.ports.is_empty() {
            text.push_str("    ports:\n");
            for port in &service.ports {
                let _ = writeln!(
                    text,
                    "      - \"127.0.0.1:{}:{}\"",
                    port.host, port.container
                );
            }
        }
        // The probe the demo image offers, run by Docker inside the container.
        let probe_port = service
            .env
            .get("ROLLOUT_DEMO_PORTS")
            .and_then(|ports| ports.0.split(',').next().map(str::to_owned))
            .unwrap_or_else(|| "80".to_owned());
        let _ = writeln!(
            text,
            "    healthcheck:\n      test: [\"CMD\", \"/rollout-demo\", \"probe\", \"{probe_port}\"]\n      interval: {COMPOSE_INTERVAL}\n      timeout: 2s\n      retries: 1000\n      start_period: 0s"
        );
        if !service.depends_on.is_empty() {
            text.push_str("    depends_on:\n");
            for dependency in &service.depends_on {
                let _ = writeln!(
                    text,
                    "      {dependency}:\n        condition: service_healthy"
                );
            }
        }
    }
    bench.write("docker-compose.yml", &text);
    let project = format!("{}c", bench.name);
    let started = Instant::now();
    // `up -d` itself waits for each dependency to be healthy before starting its
    // dependents: it is bounded by the same time limit.
    let mut child = Command::new("docker-compose")
        .args(["-p", &project, "-f"])
        .arg(bench.path().join("docker-compose.yml"))
        .args(["up", "-d"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run docker-compose");
    loop {
        if let Some(status) = child.try_wait().expect("wait for docker-compose") {
            assert!(status.success(), "docker-compose up failed");
            break;
        }
        if started.elapsed() > COMPOSE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            println!(
                "docker-compose: `up -d` still starting after {} s; stopped waiting",
                COMPOSE_LIMIT.as_secs()
            );
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let expected = config
        .services()
        .iter()
        .filter(|service| service.runs_container())
        .count();
    loop {
        let output = Command::new("docker")
            .args([
                "ps",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
                "--filter",
                "health=healthy",
                "-q",
            ])
            .output()
            .expect("docker ps");
        if String::from_utf8_lossy(&output.stdout).lines().count() >= expected {
            break;
        }
        if started.elapsed() > COMPOSE_LIMIT {
            println!(
                "docker-compose: not all healthy after {} s; stopped waiting",
                COMPOSE_LIMIT.as_secs()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// The tightest healthcheck interval that works in practice: the engine accepts 1ms, but
/// then spends its time running exec probes (see docs/performance.md).
const COMPOSE_INTERVAL: &str = "100ms";

/// How long the compose run may take before the harness stops waiting for it.
const COMPOSE_LIMIT: Duration = Duration::from_secs(300);
