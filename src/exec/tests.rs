//! The executor against the recording fake, in paused tokio time.

use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::docker::fake::{Behaviour, Call, FakeEngine};
use crate::exec::events::Recorded;
use crate::plan::{PlanOptions, Selection};

/// postgres (infrastructure) <- api, worker <- web; all in phase 1.
fn platform(extra_services: &str, phase_one: &str, on_failure: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("config/platform.toml", &platform_toml("1"));
    write(
        "config/services/s.toml",
        &format!(
            r#"
[services.postgres]
kind = "infrastructure"
image = "postgres:16"
ports = [5432]
category = "any"
health = {{ tcp = true, timeout = "5s" }}

[services.api]
image = "acme/api:${{TAG}}"
ports = [8001]
category = "any"
depends_on = ["postgres"]
health = {{ http = "/health", timeout = "5s" }}

[services.worker]
image = "acme/worker:${{TAG}}"
ports = [8002]
category = "any"
depends_on = ["postgres"]
health = {{ http = "/health", timeout = "5s" }}

[services.web]
image = "acme/web:${{TAG}}"
ports = [8003]
category = "any"
depends_on = ["api", "worker"]
health = {{ http = "/health", timeout = "5s" }}
{extra_services}
"#
        ),
    );
    write(
        "phases/1.toml",
        &format!(
            "phase = 1\nname = \"one\"\nservices = [{phase_one}]\non_failure = \"{on_failure}\"\n"
        ),
    );
    for number in 2..=4 {
        write(
            &format!("phases/{number}.toml"),
            &format!("phase = {number}\nname = \"p{number}\"\n"),
        );
    }
    dir
}

fn platform_toml(tag: &str) -> String {
    format!(
        "[platform]\nname = \"t\"\n[vars]\nTAG = \"{tag}\"\n[[ranges]]\nname = \"all\"\nports = \"1-65535\"\ncategories = [\"any\"]\n"
    )
}

/// A new image version for every platform service.
fn set_tag(dir: &tempfile::TempDir, tag: &str) {
    std::fs::write(dir.path().join("config/platform.toml"), platform_toml(tag)).unwrap();
}

const PHASE_ONE: &str = r#""api", "worker", "web""#;

fn load(dir: &tempfile::TempDir) -> Config {
    crate::config::load(dir.path(), None).unwrap()
}

fn fake_with_images() -> FakeEngine {
    let fake = FakeEngine::new();
    for image in [
        "postgres:16",
        "acme/api:1",
        "acme/worker:1",
        "acme/web:1",
        "acme/api:2",
        "acme/extra:1",
    ] {
        fake.add_image(image);
    }
    fake
}

async fn run(config: &Config, fake: &FakeEngine, options: RunOptions) -> (RunOutcome, Vec<Event>) {
    let observed = crate::observe::observe(fake, fake, config).await.unwrap();
    let plan = crate::plan::plan(
        config,
        Selection::Phase(1),
        &observed,
        PlanOptions::default(),
    );
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let reporter = Recorded::default();
    let (_interrupt_sender, interrupt) = watch::channel(false);
    let executor = Executor::new(config, fake, fake, &reporter, options, interrupt);
    let outcome = executor.execute(&plan).await.unwrap();
    (outcome, reporter.take())
}

fn options() -> RunOptions {
    RunOptions {
        stop_grace: Duration::from_secs(1),
        ..RunOptions::new("run-1")
    }
}

fn starts(fake: &FakeEngine) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::Start(name) => Some(name),
            _ => None,
        })
        .collect()
}

fn healthy_order(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Service {
                service,
                state: ServiceState::Healthy { .. },
                ..
            } => Some(service.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn starts_each_service_once_its_dependencies_are_healthy() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    fake.behave(
        "postgres",
        Behaviour::HealthyAfter(Duration::from_millis(500)),
    );
    fake.behave("api", Behaviour::HealthyAfter(Duration::from_millis(100)));
    fake.behave(
        "worker",
        Behaviour::HealthyAfter(Duration::from_millis(900)),
    );
    let (outcome, events) = run(&config, &fake, options()).await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(starts(&fake), ["t-postgres", "t-api", "t-worker", "t-web"]);
    // web waits for the slower worker, not for a "level"; api is healthy long before.
    assert_eq!(healthy_order(&events), ["postgres", "api", "worker", "web"]);
    assert!(
        fake.mutating_calls()
            .contains(&Call::CreateNetwork("t".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_starts_the_moment_its_own_dependencies_are_healthy() {
    // `extra` depends only on api: it must not wait for the slow worker.
    let extra = r#"
[services.extra]
image = "acme/extra:1"
ports = [8004]
category = "any"
depends_on = ["api"]
health = { http = "/", timeout = "5s" }
"#;
    let dir = platform(extra, r#""api", "worker", "web", "extra""#, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    fake.behave("worker", Behaviour::HealthyAfter(Duration::from_secs(3)));
    let (outcome, events) = run(&config, &fake, options()).await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    let order = healthy_order(&events);
    let position = |name: &str| order.iter().position(|s| s == name).unwrap();
    assert!(position("extra") < position("worker"), "{order:?}");
}

#[tokio::test(start_paused = true)]
async fn the_parallel_limit_bounds_the_services_in_flight() {
    let independent: String = (1..=5)
        .map(|n| format!("\n[services.s{n}]\nimage = \"acme/extra:1\"\nports = [{}]\ncategory = \"any\"\nhealth = {{ tcp = true }}\n", 9000 + n))
        .collect();
    let dir = platform(
        &independent,
        r#""s1", "s2", "s3", "s4", "s5", "api", "worker", "web""#,
        "halt",
    );
    let config = load(&dir);

    let fake = fake_with_images();
    let (outcome, _) = run(
        &config,
        &fake,
        RunOptions {
            parallel: Some(2),
            ..options()
        },
    )
    .await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(fake.max_starting(), 2);

    let unbounded = fake_with_images();
    run(&config, &unbounded, options()).await;
    // postgres and s1..s5 have no dependencies in the phase: all six start at once.
    assert_eq!(unbounded.max_starting(), 6);
}

#[tokio::test(start_paused = true)]
async fn halt_keeps_the_healthy_up_and_the_failed_one_stopped() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    fake.behave("worker", Behaviour::NeverHealthy);
    let started = tokio::time::Instant::now();
    let (outcome, events) = run(&config, &fake, options()).await;
    let RunOutcome::Failed {
        report,
        rollback: None,
    } = outcome
    else {
        panic!("expected a halt, got {outcome:?}")
    };
    // The deadline of 5 s, not longer.
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(report.service.as_str(), "worker");
    assert_eq!(report.check, "http /health");
    assert!(report.failure.contains("deadline"), "{}", report.failure);
    assert_eq!(report.logs.len(), 3);
    assert_eq!(
        report.dependency_path,
        [ServiceName::new("postgres"), ServiceName::new("worker")]
    );
    assert_eq!(report.blocked, [ServiceName::new("web")]);
    assert_eq!(report.next, "rollout resume");
    assert_eq!(
        fake.container_named("t-worker").unwrap().state,
        crate::plan::observed::ContainerState::Exited
    );
    assert_eq!(
        fake.container_named("t-api").unwrap().state,
        crate::plan::observed::ContainerState::Running
    );
    assert!(fake.container_named("t-web").is_none(), "web never started");
    assert!(
        events
            .iter()
            .any(|event| matches!(event, Event::RunFailed { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_fails_at_once_not_at_the_deadline() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    fake.behave("api", Behaviour::ExitsAfter(Duration::from_millis(200), 3));
    let started = tokio::time::Instant::now();
    let (outcome, _) = run(&config, &fake, options()).await;
    let RunOutcome::Failed { report, .. } = outcome else {
        panic!("expected a failure")
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        report.wait,
        Some(crate::health::WaitFailure::Exited { exit_code: Some(3) })
    );
}

#[tokio::test(start_paused = true)]
async fn an_up_to_date_phase_is_kept_without_a_mutating_call() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    run(&config, &fake, options()).await;
    let ids: Vec<String> = fake.containers().iter().map(|c| c.id.clone()).collect();
    fake.clear_calls();
    let (outcome, _) = run(&config, &fake, RunOptions::new("run-2")).await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(fake.mutating_calls(), []);
    assert_eq!(
        fake.containers()
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        ids
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_service_is_replaced_and_the_previous_removed_once_healthy() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    run(&config, &fake, options()).await;
    let old_api = fake.container_named("t-api").unwrap().id;
    set_tag(&dir, "2");
    fake.add_image("acme/worker:2");
    fake.add_image("acme/web:2");
    let config = load(&dir);
    fake.clear_calls();
    let (outcome, _) = run(&config, &fake, RunOptions::new("run-2")).await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    let calls = fake.calls();
    assert!(calls.contains(&Call::Rename {
        from: "t-api".into(),
        to: "t-api-previous".into()
    }));
    assert!(calls.contains(&Call::Remove("t-api-previous".into())));
    assert!(fake.container_named("t-api-previous").is_none());
    assert_ne!(fake.container_named("t-api").unwrap().id, old_api);
    // postgres did not change: kept.
    assert!(!calls.contains(&Call::Stop("t-postgres".into())));
}

#[tokio::test(start_paused = true)]
async fn rollback_removes_new_containers_and_restores_replaced_ones() {
    let dir = platform("", PHASE_ONE, "rollback");
    let config = load(&dir);
    let fake = fake_with_images();
    // First run: everything deploys.
    run(&config, &fake, options()).await;
    let old_api = fake.container_named("t-api").unwrap().id;
    // Second run: TAG 2 changes api, worker and web; web never gets healthy.
    set_tag(&dir, "2");
    fake.add_image("acme/worker:2");
    fake.add_image("acme/web:2");
    fake.behave("web", Behaviour::NeverHealthy);
    let config = load(&dir);
    let (outcome, _) = run(&config, &fake, RunOptions::new("run-2")).await;
    let RunOutcome::Failed {
        report,
        rollback: Some(summary),
    } = outcome
    else {
        panic!("expected a rollback")
    };
    assert_eq!(report.service.as_str(), "web");
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    for service in ["api", "worker", "web"] {
        assert!(
            summary.restored.contains(&ServiceName::new(service)),
            "{service} restored: {summary:?}"
        );
    }
    // The replaced api is back under its own name, running; no -previous is left.
    let api = fake.container_named("t-api").unwrap();
    assert_eq!(api.id, old_api);
    assert_eq!(api.state, crate::plan::observed::ContainerState::Running);
    assert!(
        fake.containers()
            .iter()
            .all(|c| !c.name.ends_with("-previous"))
    );
    // Infrastructure stays.
    assert!(fake.container_named("t-postgres").is_some());
    assert_eq!(report.next, "rollout phase 1");
}

#[tokio::test(start_paused = true)]
async fn rollback_of_a_first_deployment_leaves_only_infrastructure() {
    let dir = platform("", PHASE_ONE, "rollback");
    let config = load(&dir);
    let fake = fake_with_images();
    fake.behave("web", Behaviour::ExitsAfter(Duration::from_millis(50), 1));
    let (outcome, _) = run(&config, &fake, options()).await;
    assert!(matches!(
        outcome,
        RunOutcome::Failed {
            rollback: Some(_),
            ..
        }
    ));
    let names: Vec<String> = fake.containers().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["t-postgres"]);
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_stops_new_work_and_lets_the_flight_land() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    fake.behave(
        "postgres",
        Behaviour::HealthyAfter(Duration::from_millis(300)),
    );
    let observed = crate::observe::observe(&fake, &fake, &config)
        .await
        .unwrap();
    let plan = crate::plan::plan(
        &config,
        Selection::Phase(1),
        &observed,
        PlanOptions::default(),
    );
    let reporter = Recorded::default();
    let (interrupt_sender, interrupt) = watch::channel(false);
    let executor = Executor::new(&config, &fake, &fake, &reporter, options(), interrupt);
    let run = executor.execute(&plan);
    let interrupt_later = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        interrupt_sender.send_replace(true);
    };
    let (outcome, ()) = tokio::join!(run, interrupt_later);
    assert_eq!(outcome.unwrap(), RunOutcome::Interrupted { phase: 1 });
    // postgres was in flight; nothing after it started.
    assert_eq!(starts(&fake), ["t-postgres"]);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_of_a_changed_platform_makes_no_mutating_call() {
    let dir = platform("", PHASE_ONE, "halt");
    let config = load(&dir);
    let fake = fake_with_images();
    run(&config, &fake, options()).await;
    // Change every service: the dry run must find replacements, and still change nothing.
    set_tag(&dir, "2");
    let config = load(&dir);
    fake.clear_calls();
    let observed = crate::observe::observe(&fake, &fake, &config)
        .await
        .unwrap();
    let plan = crate::plan::plan(&config, Selection::All, &observed, PlanOptions::default());
    assert!(
        plan.steps().any(|step| step.action == Action::Replace),
        "{plan:?}"
    );
    assert!(!fake.calls().is_empty(), "the dry run did observe");
    assert_eq!(fake.mutating_calls(), []);
}
