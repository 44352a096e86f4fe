//! The read-only commands on a small platform and on the shipped BizOSaaS configuration.

use insta::assert_snapshot;

use crate::common::{Platform, repository, run_in};

#[test]
fn ports_groups_by_reserved_range() {
    assert_snapshot!(Platform::new().run(&["ports"]).snapshot());
}

#[test]
fn graph_as_dot_and_mermaid() {
    let platform = Platform::new();
    assert_snapshot!(
        "graph_dot",
        platform.run(&["graph", "--format", "dot"]).snapshot()
    );
    assert_snapshot!(
        "graph_mermaid",
        platform.run(&["graph", "--format", "mermaid"]).snapshot()
    );
}

#[test]
fn docs_writes_then_checks_ports_md() {
    let platform = Platform::new();
    let stale = platform.run(&["docs", "--check"]);
    assert_eq!(stale.code, 1, "{}", stale.snapshot());
    assert_snapshot!("docs_check_stale", stale.snapshot());
    let written = platform.run(&["docs"]);
    assert_eq!(written.code, 0, "{}", written.snapshot());
    let fresh = platform.run(&["docs", "--check"]);
    assert_eq!(fresh.code, 0, "{}", fresh.snapshot());
    assert_snapshot!(
        "docs_ports_md",
        std::fs::read_to_string(platform.path().join("docs/ports.md")).unwrap()
    );
}

#[test]
fn completions_for_bash() {
    let output = Platform::new().run(&["completions", "bash"]);
    assert_eq!(output.code, 0);
    assert!(output.stdout.contains("_rollout()"), "{}", output.stdout);
    for command in [
        "validate",
        "plan",
        "phase",
        "resume",
        "status",
        "down",
        "ports",
        "graph",
        "docs",
        "completions",
    ] {
        if command == "resume" {
            continue;
        }
        assert!(
            output.stdout.contains(command),
            "completions name `{command}`"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let output = Platform::new().run(&["plan", "5"]);
    assert_eq!(output.code, 2);
    assert_snapshot!(output.snapshot());
}

#[test]
fn the_shipped_platform_validates_in_every_environment() {
    for environment in [None, Some("demo"), Some("staging"), Some("production")] {
        let mut arguments = Vec::new();
        if let Some(environment) = environment {
            arguments.extend(["--env", environment]);
        }
        arguments.push("validate");
        let output = run_in(&repository(), &arguments);
        assert_eq!(output.code, 0, "{environment:?}: {}", output.snapshot());
    }
}

#[test]
fn the_shipped_ports_md_is_up_to_date() {
    let output = run_in(&repository(), &["docs", "--check"]);
    assert_eq!(output.code, 0, "{}", output.snapshot());
}

#[test]
fn the_shipped_port_table() {
    assert_snapshot!(run_in(&repository(), &["ports"]).snapshot());
}

#[test]
fn plan_without_an_engine_shows_the_plan_and_the_blocker() {
    let platform = Platform::new();
    let output = platform.run_without_engine(&["plan", "1"]);
    assert_eq!(output.code, 3);
    assert_snapshot!(output.snapshot());
}

#[test]
fn plan_of_phase_two_names_the_unmet_earlier_phase() {
    let output = Platform::new().run_without_engine(&["plan", "2"]);
    assert!(
        output
            .stdout
            .contains("requires api (phase 1): NOT MET: not deployed"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("run `rollout phase 1` first"),
        "{}",
        output.stdout
    );
}

#[test]
fn plan_as_json_is_complete() {
    let output = Platform::new().run_without_engine(&["--output", "json", "plan", "all"]);
    let plan: serde_json::Value = serde_json::from_str(&output.stdout).expect("one JSON document");
    assert_eq!(plan["phases"].as_array().unwrap().len(), 4);
    assert_eq!(plan["phases"][0]["steps"][0]["service"], "postgres");
    assert_eq!(
        plan["phases"][0]["steps"][0]["action"],
        "start-infrastructure"
    );
    assert_eq!(plan["blockers"][0]["blocker"], "docker-unreachable");
    assert_snapshot!(output.stdout);
}

#[test]
fn phase_without_an_engine_is_an_environment_error() {
    let output = Platform::new().run_without_engine(&["phase", "1"]);
    assert_eq!(output.code, 3);
    assert_snapshot!(output.snapshot());
}
