//! The dry run is read-only (SPEC §5.4), and environments on one engine never touch each
//! other's containers.

use std::process::Command;

use crate::engine::DemoPlatform;

fn assert_ok(output: &crate::common::Output) {
    assert_eq!(output.code, 0, "{}", output.snapshot());
}

fn engine_time() -> String {
    let output = Command::new("docker")
        .args(["info", "--format", "{{.SystemTime}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every engine event between `since` and `until` that concerns this platform: its
/// containers and network (by label) and its demo image.
fn events(demo: &DemoPlatform, since: &str, until: &str) -> Vec<String> {
    let mut found = Vec::new();
    for filter in [
        format!("label=io.rollout.platform={}", demo.name),
        format!("image=rollout-demo:{}", demo.name),
    ] {
        let output = Command::new("docker")
            .args([
                "events", "--since", since, "--until", until, "--filter", &filter,
            ])
            .args([
                "--format",
                "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
            ])
            .output()
            .unwrap();
        found.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    found
}

#[test]
fn a_dry_run_of_a_changed_platform_changes_nothing_on_the_engine() {
    let demo = DemoPlatform::new("");
    assert_ok(&demo.rollout(&["phase", "1"]));
    let journal = demo.platform.path().join(".rollout/test/journal.json");
    let journal_before = std::fs::read(&journal).unwrap();

    // Change the platform: new image versions, a new env key, a stopped container, a
    // missing network would all make a real run act.
    demo.overlay("2", "[demo.services.api]\nready_after = \"300ms\"\n");
    Command::new("docker")
        .args(["stop", "-t", "1", &format!("{}-db", demo.name)])
        .output()
        .unwrap();

    // The engine's clock, so that `docker events` sees exactly the dry runs' window.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let since = engine_time();
    let plan = demo.rollout(&["plan", "all"]);
    let dry = demo.rollout(&["phase", "1", "--dry-run"]);
    let json = demo.rollout(&["--output", "json", "plan", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let until = engine_time();

    assert_ok(&plan);
    assert_ok(&dry);
    for (service, expected) in [
        ("api", "~ api"),
        ("worker", "~ worker"),
        ("db", "> db"),
        ("web", "+ web"),
    ] {
        assert!(plan.stdout.contains(expected), "{service}: {}", plan.stdout);
    }
    assert!(
        plan.stdout.contains("demo of acme/api:1) -> rollout-demo:"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("env ROLLOUT_DEMO_READY_AFTER_MS changed"),
        "{}",
        plan.stdout
    );
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let api = parsed["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["service"] == "api")
        .unwrap();
    assert_eq!(api["action"], "replace");
    assert_eq!(api["reasons"][0]["changes"][0]["field"], "image");

    let seen = events(&demo, &since, &until);
    let mutating = [
        "create",
        "start",
        "stop",
        "kill",
        "die",
        "destroy",
        "rename",
        "connect",
        "disconnect",
        "pull",
        "tag",
        "delete",
    ];
    let bad: Vec<&String> = seen
        .iter()
        .filter(|event| {
            mutating
                .iter()
                .any(|action| event.split(' ').nth(1) == Some(action))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "mutating events during the dry run: {bad:?} (all: {seen:?})"
    );
    // No state written either: the journal is as it was, and no lock is left.
    assert_eq!(std::fs::read(&journal).unwrap(), journal_before);
    assert!(!demo.platform.path().join(".rollout/test/lock").exists());

    // The same window around a real run does see the changes: the check above can fail.
    let since = engine_time();
    assert_ok(&demo.rollout(&["phase", "1"]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let seen = events(&demo, &since, &engine_time());
    for action in ["create", "start", "rename", "destroy"] {
        assert!(
            seen.iter()
                .any(|event| event.split(' ').nth(1) == Some(action)),
            "no {action} in {seen:?}"
        );
    }
}

#[test]
fn two_environments_on_one_engine_never_touch_each_other() {
    // "demo" and "staging" of two platforms, deployed side by side.
    let demo = DemoPlatform::new("");
    let staging = DemoPlatform::new("");
    std::fs::rename(
        staging.platform.path().join("config/env/test.toml"),
        staging.platform.path().join("config/env/staging.toml"),
    )
    .unwrap();
    let staging_rollout = |arguments: &[&str]| {
        let mut all = vec!["--env", "staging"];
        all.extend_from_slice(arguments);
        crate::common::run_in(staging.platform.path(), &all)
    };
    assert_ok(&demo.rollout(&["phase", "1"]));
    assert_ok(&staging_rollout(&["phase", "1"]));
    let demo_before = demo.containers();
    assert!(
        staging
            .containers()
            .values()
            .all(|(_, state)| state == "running")
    );
    // The env label says whose a container is.
    let env_label = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.rollout.env\"}}",
            &format!("{}-api", staging.name),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&env_label.stdout).trim(), "staging");

    // A change and a teardown in staging leave demo exactly as it was.
    std::fs::write(
        staging.platform.path().join("config/env/staging.toml"),
        std::fs::read_to_string(staging.platform.path().join("config/env/staging.toml"))
            .unwrap()
            .replace("TAG = \"1\"", "TAG = \"2\""),
    )
    .unwrap();
    assert_ok(&staging_rollout(&["phase", "1"]));
    assert_ok(&staging_rollout(&["down"]));
    assert!(staging.containers().is_empty());
    assert_eq!(demo.containers(), demo_before);

    // The same platform in another environment on the same engine: refused, untouched.
    std::fs::copy(
        demo.platform.path().join("config/env/test.toml"),
        demo.platform.path().join("config/env/other.toml"),
    )
    .unwrap();
    let other = crate::common::run_in(demo.platform.path(), &["--env", "other", "phase", "1"]);
    assert_eq!(other.code, 3, "{}", other.snapshot());
    assert!(
        other
            .stderr
            .contains("is taken by a container that is not ours"),
        "{}",
        other.stderr
    );
    assert!(
        other.stderr.contains("environment `test`"),
        "{}",
        other.stderr
    );
    assert_eq!(demo.containers(), demo_before);
    assert_ok(&crate::common::run_in(
        demo.platform.path(),
        &["--env", "other", "down"],
    ));
    assert_eq!(
        demo.containers(),
        demo_before,
        "`down` in another environment removes nothing of this one"
    );
}
