//! `rollout phase` against the real Docker engine, with demo services. These run in CI and
//! fail (not skip) when there is no engine.

use std::time::{Duration, Instant};

use crate::engine::DemoPlatform;

fn assert_ok(output: &crate::common::Output) {
    assert_eq!(output.code, 0, "{}", output.snapshot());
}

#[test]
fn a_phase_comes_up_healthy_and_status_shows_it() {
    let demo = DemoPlatform::new("");
    assert_ok(&demo.rollout(&["phase", "1"]));
    let status = demo.rollout(&["status"]);
    assert_ok(&status);
    for service in ["db", "payments", "api", "worker"] {
        let line = status
            .stdout
            .lines()
            .find(|line| line.starts_with(&format!("{service} ")))
            .unwrap();
        assert!(
            line.contains("running") && line.contains("healthy"),
            "{line}\n{}",
            status.stdout
        );
    }
    let web = status
        .stdout
        .lines()
        .find(|line| line.starts_with("web "))
        .unwrap();
    assert!(web.contains("absent"), "{web}");
    // The JSON output reports each service's time to healthy.
    let json = demo.rollout(&["--output", "json", "phase", "2"]);
    assert_ok(&json);
    let healthy: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|event: &serde_json::Value| event["state"] == "healthy")
        .collect();
    let web = healthy
        .iter()
        .find(|event| event["service"] == "web")
        .expect("web became healthy");
    assert!(web["time_to_healthy_ms"].as_u64().unwrap() >= 200, "{web}");
    let check = demo.rollout(&["ports", "--check"]);
    assert_eq!(
        check
            .stdout
            .lines()
            .filter(|line| line.contains(" ours "))
            .count(),
        4,
        "{}",
        check.stdout
    );

    // `down` removes every container in reverse dependency order, and the network.
    let down = demo.rollout(&["down"]);
    assert_ok(&down);
    assert!(demo.containers().is_empty());
    let order: Vec<&str> = down
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("removed `"))
        .collect();
    let web_position = order
        .iter()
        .position(|line| line.contains("-web`"))
        .unwrap();
    let db_position = order.iter().position(|line| line.contains("-db`")).unwrap();
    assert!(web_position < db_position, "{order:?}");
    assert!(
        down.stderr
            .contains(&format!("removed network `{}`", demo.name)),
        "{}",
        down.stderr
    );
}

#[test]
fn running_it_again_changes_nothing() {
    let demo = DemoPlatform::new("");
    assert_ok(&demo.rollout(&["phase", "1"]));
    let before = demo.containers();
    let again = demo.rollout(&["phase", "1"]);
    assert_ok(&again);
    assert_eq!(demo.containers(), before);
    assert!(
        again.stderr.contains("0 started, 4 kept"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_never_ready_service_halts_within_its_deadline_with_the_report() {
    let demo = DemoPlatform::new("[demo.services.worker]\nfail = \"never-ready\"\n");
    let started = Instant::now();
    let output = demo.rollout(&["phase", "1", "--timeout", "4s"]);
    let elapsed = started.elapsed();
    assert_eq!(output.code, 1, "{}", output.snapshot());
    assert!(elapsed < Duration::from_secs(4 + 15), "took {elapsed:?}");
    for expected in [
        "`worker` failed: not healthy within its deadline of 4s",
        "check:           tcp",
        "last probe:",
        "dependency path: db -> worker",
        "log lines:",
        "rollout-demo: worker",
        "next: fix the cause, then `rollout --env test resume`",
    ] {
        assert!(
            output.stderr.contains(expected),
            "missing {expected:?} in\n{}",
            output.stderr
        );
    }
    // Halt: the healthy stay up, the failed one is stopped for inspection.
    assert_eq!(demo.container("api").unwrap().1, "running");
    assert_eq!(demo.container("worker").unwrap().1, "exited");
}

#[test]
fn rollback_leaves_no_container_of_the_phase_and_restores_a_replaced_one() {
    let demo = DemoPlatform::new("[demo.services.worker]\nfail = \"never-ready\"\n");
    let first = demo.rollout(&["phase", "1", "--timeout", "3s", "--on-failure", "rollback"]);
    assert_eq!(first.code, 1, "{}", first.snapshot());
    let names: Vec<String> = demo.containers().into_keys().collect();
    // Only infrastructure and the external's stand-in stay.
    assert_eq!(
        names,
        [
            format!("{}-db", demo.name),
            format!("{}-payments", demo.name)
        ],
        "{}",
        first.stderr
    );

    // Deploy for real, then a change whose new worker never gets ready.
    demo.overlay("1", "");
    assert_ok(&demo.rollout(&["phase", "1"]));
    let before = demo.containers();
    demo.overlay("2", "[demo.services.worker]\nfail = \"never-ready\"\n");
    let failed = demo.rollout(&["phase", "1", "--timeout", "3s", "--on-failure", "rollback"]);
    assert_eq!(failed.code, 1, "{}", failed.snapshot());
    assert!(failed.stderr.contains("rolled back"), "{}", failed.stderr);
    let after = demo.containers();
    assert_eq!(
        after, before,
        "the replaced containers are back, running, under their names"
    );
    assert!(after.keys().all(|name| !name.ends_with("-previous")));
}

#[test]
fn a_crashing_service_fails_well_within_its_deadline() {
    let demo = DemoPlatform::new(
        "[demo.services.api]\nfail = \"crash-after:300ms\"\nready_after = \"5s\"\n",
    );
    let started = Instant::now();
    let output = demo.rollout(&["phase", "1", "--timeout", "60s"]);
    assert_eq!(output.code, 1, "{}", output.snapshot());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        output
            .stderr
            .contains("`api` failed: the container exited with code 2"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_port_held_by_a_foreign_listener_stops_the_run_before_any_container_starts() {
    let demo = DemoPlatform::new("");
    let listener = std::net::TcpListener::bind(("127.0.0.1", demo.ports[1])).unwrap();
    let output = demo.rollout(&["phase", "1"]);
    let check = demo.rollout(&["ports", "--check"]);
    drop(listener);
    assert_ok(&check);
    let line = check
        .stdout
        .lines()
        .find(|line| line.starts_with(&demo.ports[1].to_string()))
        .unwrap();
    assert!(
        line.contains("foreign") && line.contains(&format!("(pid {})", std::process::id())),
        "{line}"
    );
    assert_eq!(output.code, 3, "{}", output.snapshot());
    let expected = format!("host port {} of `api` is held by process", demo.ports[1]);
    assert!(output.stderr.contains(&expected), "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains(&format!("(pid {})", std::process::id())),
        "{}",
        output.stderr
    );
    assert!(
        demo.containers().is_empty(),
        "nothing started: {:?}",
        demo.containers()
    );
}
