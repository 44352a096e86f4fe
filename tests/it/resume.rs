//! Journal, lock, interruption and resume against the real engine (SPEC §5.5, issue 4).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary;
use crate::engine::DemoPlatform;

fn assert_ok(output: &crate::common::Output) {
    assert_eq!(output.code, 0, "{}", output.snapshot());
}

/// The end state every recovery must reach: each service of phase 1 and its infrastructure
/// has exactly one container, running, under its own name; no `-previous` is left; nothing
/// named like ours lacks our labels.
fn assert_phase_one_converged(demo: &DemoPlatform) {
    let containers = demo.containers();
    let expected: Vec<String> = ["api", "db", "payments", "worker"]
        .iter()
        .map(|s| format!("{}-{s}", demo.name))
        .collect();
    let names: Vec<&String> = containers.keys().collect();
    assert_eq!(names, expected.iter().collect::<Vec<_>>(), "{containers:?}");
    assert!(
        containers.values().all(|(_, state)| state == "running"),
        "{containers:?}"
    );
    let by_name = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name={}-", demo.name)])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&by_name.stdout).lines().count(),
        containers.len(),
        "a container without our labels"
    );
}

/// Reads the child's NDJSON events until one of `kind` (e.g. `container-created`) comes.
fn wait_for_event(child: &mut Child, kind: &str) {
    let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let wanted = format!("\"{kind}\"");
    for line in stdout.lines() {
        if line.expect("a line of output").contains(&wanted) {
            return;
        }
    }
    panic!("the run ended without a `{kind}` event");
}

/// The ids of the containers, in name order.
fn container_ids(containers: &std::collections::BTreeMap<String, (String, String)>) -> Vec<String> {
    containers.values().map(|(id, _)| id.clone()).collect()
}

/// `rollout --env test ARGS` as a child process, stdout piped (NDJSON with `--output json`).
fn spawn(demo: &DemoPlatform, arguments: &[&str]) -> Child {
    Command::new(binary())
        .arg("--dir")
        .arg(demo.platform.path())
        .args(["--env", "test"])
        .args(arguments)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rollout")
}

#[test]
fn resume_with_nothing_to_do_says_so() {
    let demo = DemoPlatform::new("");
    let output = demo.rollout(&["resume"]);
    assert_ok(&output);
    assert!(
        output.stdout.contains("nothing to resume"),
        "{}",
        output.stdout
    );
}

#[test]
fn resume_after_a_halt_once_the_config_is_fixed() {
    let demo = DemoPlatform::new("[demo.services.worker]\nfail = \"never-ready\"\n");
    assert_eq!(demo.rollout(&["phase", "1", "--timeout", "3s"]).code, 1);
    let journal =
        std::fs::read_to_string(demo.platform.path().join(".rollout/test/journal.json")).unwrap();
    assert!(journal.contains("\"status\": \"halted\""), "{journal}");
    assert!(
        !journal.contains("DB_PASSWORD") && !journal.contains("demo-db-password"),
        "no secret in the journal"
    );
    let api = demo.container("api").unwrap().0;
    demo.overlay("1", "");
    let resumed = demo.rollout(&["resume"]);
    assert_ok(&resumed);
    assert_phase_one_converged(&demo);
    assert_eq!(
        demo.container("api").unwrap().0,
        api,
        "the healthy api was kept"
    );
    assert!(
        demo.rollout(&["resume"])
            .stdout
            .contains("nothing to resume")
    );
}

#[test]
fn a_second_rollout_is_refused_and_a_stale_lock_taken_over() {
    let demo = DemoPlatform::new("");
    let state = demo.platform.path().join(".rollout/test");
    std::fs::create_dir_all(&state).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    // A live holder: this test process.
    let holder = format!(
        r#"{{"pid": {}, "host": "{host}", "started_at_ms": 1}}"#,
        std::process::id()
    );
    std::fs::write(state.join("lock"), &holder).unwrap();
    let refused = demo.rollout(&["phase", "1"]);
    assert_eq!(refused.code, 3, "{}", refused.snapshot());
    assert!(
        refused
            .stderr
            .contains(&format!("pid {}", std::process::id())),
        "{}",
        refused.stderr
    );
    assert!(demo.containers().is_empty());
    // The read-only commands do not take it.
    assert_ok(&demo.rollout(&["status"]));
    assert_eq!(demo.rollout(&["plan", "1"]).code, 0);
    // A dead holder: taken over with a warning.
    std::fs::write(
        state.join("lock"),
        holder.replace(&std::process::id().to_string(), "4194303"),
    )
    .unwrap();
    let taken = demo.rollout(&["phase", "1"]);
    assert_ok(&taken);
    assert!(
        taken.stderr.contains("took over a stale lock"),
        "{}",
        taken.stderr
    );
    assert!(!state.join("lock").exists(), "the lock is released");
}

#[test]
fn ctrl_c_stops_new_work_exits_130_and_resume_continues() {
    let demo = DemoPlatform::new("[demo.services.db]\nready_after = \"1500ms\"\n");
    let mut child = spawn(&demo, &["--output", "json", "phase", "1"]);
    // Wait for the first container to be created, then interrupt.
    wait_for_event(&mut child, "container-created");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let journal =
        std::fs::read_to_string(demo.platform.path().join(".rollout/test/journal.json")).unwrap();
    assert!(journal.contains("\"status\": \"interrupted\""), "{journal}");
    assert_ok(&demo.rollout(&["resume"]));
    assert_phase_one_converged(&demo);
}

/// Kills `rollout phase 1` with SIGKILL at `moments` points spread over a whole run
/// (alternating first deployments and replacements), then runs `resume` each time.
fn kill_and_resume(demo: &DemoPlatform, moments: u32, arguments: &[&str], change: impl Fn(u32)) {
    // How long a full run takes here.
    let started = Instant::now();
    assert_ok(&demo.rollout(arguments));
    let full = started.elapsed();
    for moment in 0..moments {
        change(moment);
        let delay = full.mul_f64(f64::from(moment) / f64::from(moments));
        let mut child = spawn(demo, arguments);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let resumed = demo.rollout(&["resume"]);
        assert_ok(&resumed);
        assert_phase_one_converged(demo);
    }
}

#[test]
fn a_kill_at_any_moment_of_a_rollout_is_resumed() {
    let demo = DemoPlatform::new("");
    kill_and_resume(&demo, 22, &["phase", "1"], |moment| {
        // Every other run changes the TAG: half the kills land in replacements.
        demo.overlay(if moment % 2 == 0 { "2" } else { "1" }, "");
        if moment % 4 == 3 {
            // And some land in a first deployment.
            Command::new("docker")
                .args([
                    "rm",
                    "-f",
                    &format!("{}-api", demo.name),
                    &format!("{}-worker", demo.name),
                ])
                .output()
                .unwrap();
        }
    });
}

#[test]
fn a_kill_during_a_rollback_is_resumed() {
    let demo = DemoPlatform::new("");
    assert_ok(&demo.rollout(&["phase", "1"]));
    let arguments = [
        "--output",
        "json",
        "phase",
        "1",
        "--timeout",
        "2s",
        "--on-failure",
        "rollback",
    ];
    for moment in 0..5u32 {
        let before = demo.containers();
        // A change whose new worker never gets ready: the run rolls back.
        demo.overlay("3", "[demo.services.worker]\nfail = \"never-ready\"\n");
        let mut child = spawn(&demo, &arguments);
        wait_for_event(&mut child, "rollback-started");
        // Into the rollback, a little further each time.
        std::thread::sleep(Duration::from_millis(60 * u64::from(moment)));
        let _ = child.kill();
        let _ = child.wait();
        let journal =
            std::fs::read_to_string(demo.platform.path().join(".rollout/test/journal.json"))
                .unwrap();
        demo.overlay("1", "");
        let resumed = demo.rollout(&["resume"]);
        assert_ok(&resumed);
        assert_phase_one_converged(&demo);
        // The rollback restored the very containers that ran before.
        assert_eq!(
            container_ids(&demo.containers()),
            container_ids(&before),
            "{journal}\n{}",
            resumed.snapshot()
        );
    }
}

#[test]
fn rollback_undoes_the_last_rollout_of_a_phase_after_a_halt_and_after_a_kill() {
    let demo = DemoPlatform::new("");
    assert_ok(&demo.rollout(&["phase", "1"]));
    let before = demo.containers();

    // A halted rollout of a new version: api is replaced and healthy, worker never gets ready.
    demo.overlay("2", "[demo.services.worker]\nfail = \"never-ready\"\n");
    assert_eq!(demo.rollout(&["phase", "1", "--timeout", "2s"]).code, 1);
    assert_ne!(container_ids(&demo.containers()), container_ids(&before));
    let rolled_back = demo.rollout(&["rollback", "1"]);
    assert_ok(&rolled_back);
    assert_eq!(
        container_ids(&demo.containers()),
        container_ids(&before),
        "{}",
        rolled_back.snapshot()
    );
    assert_phase_one_converged(&demo);

    // A rollout killed in the middle of replacing: `rollback 1` restores what it replaced.
    demo.overlay("3", "");
    let mut child = spawn(&demo, &["--output", "json", "phase", "1"]);
    wait_for_event(&mut child, "container-created");
    let _ = child.kill();
    let _ = child.wait();
    let rolled_back = demo.rollout(&["rollback", "1"]);
    assert_ok(&rolled_back);
    assert_eq!(
        container_ids(&demo.containers()),
        container_ids(&before),
        "{}",
        rolled_back.snapshot()
    );
    assert_phase_one_converged(&demo);
}
