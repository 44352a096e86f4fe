//! `rollout validate`: one snapshot per kind of problem (SPEC §6), each with its place.

use insta::assert_snapshot;

use crate::common::{Platform, SERVICES};

fn validate(platform: &Platform) -> String {
    platform.run(&["validate"]).snapshot()
}

#[test]
fn a_valid_platform() {
    assert_snapshot!(validate(&Platform::new()));
}

#[test]
fn bad_toml_gives_file_line_and_column() {
    let platform = Platform::new().file(
        "config/services/broken.toml",
        "[services.x]\nimage = \"a\nports = [1]\n",
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES
            .replace("depends_on = [\"api\"]", "depend_on = [\"api\"]")
            .replace(
                "health = { http = \"/\" }",
                "health = { http = \"/\", intervall = \"1s\" }",
            ),
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn an_unknown_dependency_gets_a_suggestion() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES.replace("depends_on = [\"postgres\"]", "depends_on = [\"postgre\"]"),
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_cycle_is_reported_as_its_whole_path() {
    let platform = Platform::new()
        .file(
            "config/services/services.toml",
            &SERVICES.replace(
                "depends_on = [\"postgres\"]",
                "depends_on = [\"postgres\", \"web\"]",
            ),
        )
        .file(
            "phases/1-core.toml",
            "phase = 1\nname = \"Core\"\nservices = [\"api\", \"web\"]\n",
        )
        .file("phases/2-web.toml", "phase = 2\nname = \"Web\"\n");
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_duplicate_service_shows_both_places() {
    let platform = Platform::new().file(
        "config/services/more.toml",
        "[services.api]\ncategory = \"backend\"\nimage = \"x\"\nports = [8050]\nhealth = { tcp = true }\n",
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_host_port_claimed_twice_shows_both_services_and_places() {
    let platform = Platform::new()
        .file(
            "config/services/more.toml",
            "[services.admin]\ncategory = \"backend\"\nimage = \"x\"\nports = [8001]\nhealth = { tcp = true }\n",
        )
        .file("phases/3-none.toml", "phase = 3\nname = \"Three\"\nservices = [\"admin\"]\n");
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_port_outside_1_to_65535() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES.replace("ports = [8002]", "ports = [0, \"70000:80\"]"),
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_port_outside_its_category_range_needs_range_exempt() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES.replace("ports = [8002]", "ports = [3000]"),
    );
    assert_snapshot!(validate(&platform));
    let exempt = Platform::new().file(
        "config/services/services.toml",
        &SERVICES.replace(
            "ports = [8002]",
            "ports = [3000]\nrange_exempt = \"the load balancer expects 3000\"",
        ),
    );
    assert_eq!(exempt.run(&["validate"]).code, 0);
}

#[test]
fn a_service_in_no_phase_or_in_two() {
    let platform = Platform::new()
        .file("phases/2-web.toml", "phase = 2\nname = \"Web\"\n")
        .file(
            "phases/3-none.toml",
            "phase = 3\nname = \"Three\"\nservices = [\"api\"]\n",
        );
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_dependency_on_a_later_phase() {
    let platform = Platform::new()
        .file(
            "phases/1-core.toml",
            "phase = 1\nname = \"Core\"\nservices = [\"web\"]\n",
        )
        .file(
            "phases/2-web.toml",
            "phase = 2\nname = \"Web\"\nservices = [\"api\"]\n",
        );
    assert_snapshot!(validate(&platform));
}

#[test]
fn an_unknown_variable() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES
            .replace("shop/web:${TAG}", "shop/web:${TAGS}")
            .replace("${PG_PASSWORD}", "${PG_PASS}"),
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn a_bad_or_missing_phase_number() {
    let platform = Platform::new()
        .file("phases/3-none.toml", "phase = 7\nname = \"Seven\"\n")
        .file("phases/2b.toml", "phase = 2\nname = \"Again\"\n");
    assert_snapshot!(validate(&platform));
}

#[test]
fn an_invalid_duration() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES.replace(
            "health = { http = \"/\" }",
            "health = { http = \"/\", timeout = \"ten seconds\", interval = \"-1s\" }",
        ),
    );
    assert_snapshot!(validate(&platform));
}

#[test]
fn every_problem_in_one_run() {
    let platform = Platform::new()
        .file(
            "config/services/services.toml",
            &SERVICES
                .replace("depends_on = [\"postgres\"]", "depends_on = [\"postgre\"]")
                .replace("ports = [8002]", "ports = [8001]")
                .replace("kind = \"infrastructure\"", "kind = \"infra\""),
        )
        .file(
            "phases/4-none.toml",
            "phase = 4\nname = \"Four\"\nservices = [\"wbe\"]\non_failure = \"rolback\"\n",
        );
    let output = platform.run(&["validate"]);
    assert_eq!(output.code, 2);
    assert_snapshot!(output.snapshot());
}

#[test]
fn problems_as_json() {
    let platform = Platform::new().file(
        "config/services/services.toml",
        &SERVICES.replace("depends_on = [\"postgres\"]", "depends_on = [\"postgre\"]"),
    );
    assert_snapshot!(platform.run(&["--output", "json", "validate"]).snapshot());
}

#[test]
fn an_unknown_environment_and_a_missing_platform() {
    let platform = Platform::new().file("config/env/staging.toml", "[vars]\nTAG = \"2\"\n");
    assert_snapshot!(platform.run(&["--env", "stagign", "validate"]).snapshot());
    let empty = tempfile::tempdir().unwrap();
    assert_snapshot!(crate::common::run_in(empty.path(), &["validate"]).snapshot());
}

#[test]
fn an_environment_overlay_is_checked_too() {
    let platform = Platform::new().file(
        "config/env/demo.toml",
        "[demo]\nready_after = \"soon\"\n[demo.services.apii]\nfail = \"explode\"\n[services.web]\nimage = \"shop/web:${VERSION}\"\n[services.wbe]\ntitle = \"x\"\n",
    );
    assert_snapshot!(platform.run(&["--env", "demo", "validate"]).snapshot());
}

#[test]
fn a_service_named_like_another_services_container() {
    let platform = Platform::new()
        .file(
            "config/services/more.toml",
            "[services.shop-api]\nkind = \"infrastructure\"\ncategory = \"database\"\nimage = \"x\"\nports = [5433]\nhealth = { tcp = true }\n",
        );
    assert_snapshot!(validate(&platform));
}
