//! A builder that writes a platform directory into a tempdir and runs the `rollout` binary
//! on it, capturing stdout, stderr and the exit code for snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const PLATFORM: &str = r#"[platform]
name = "shop"

[vars]
TAG = "1.0"

[[ranges]]
name = "backend"
ports = "8000-8099"
categories = ["backend"]

[[ranges]]
name = "infrastructure"
ports = "5000-5999"
categories = ["database"]
"#;

pub const SERVICES: &str = r#"[services.postgres]
kind = "infrastructure"
category = "database"
image = "postgres:16"
ports = [5432]
health = { cmd = ["pg_isready"] }

[services.api]
title = "API"
category = "backend"
image = "shop/api:${TAG}"
ports = [8001]
depends_on = ["postgres"]
env = { DATABASE_URL = "postgres://app:${PG_PASSWORD}@postgres/app" }
secrets = ["PG_PASSWORD"]
health = { http = ["/health", "/"] }

[services.web]
title = "Web"
category = "backend"
image = "shop/web:${TAG}"
ports = [8002]
depends_on = ["api"]
health = { http = "/" }
"#;

pub struct Platform {
    pub dir: tempfile::TempDir,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The snapshot text: exit code, stdout, stderr.
    pub fn snapshot(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Platform {
    /// A small valid platform: postgres <- api <- web, phase 1 = api, phase 2 = web.
    pub fn new() -> Self {
        let platform = Self {
            dir: tempfile::tempdir().expect("a tempdir"),
        };
        platform
            .file("config/platform.toml", PLATFORM)
            .file("config/services/services.toml", SERVICES)
            .file(
                "phases/1-core.toml",
                "phase = 1\nname = \"Core\"\nservices = [\"api\"]\n",
            )
            .file(
                "phases/2-web.toml",
                "phase = 2\nname = \"Web\"\nservices = [\"web\"]\n",
            )
            .file("phases/3-none.toml", "phase = 3\nname = \"Three\"\n")
            .file("phases/4-none.toml", "phase = 4\nname = \"Four\"\n")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, relative: &str, text: &str) -> Self {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        std::fs::write(path, text).expect("write a platform file");
        self
    }

    pub fn remove(self, relative: &str) -> Self {
        std::fs::remove_file(self.dir.path().join(relative)).expect("remove a platform file");
        self
    }

    pub fn run(&self, arguments: &[&str]) -> Output {
        run_in(self.path(), arguments)
    }

    /// Runs against an engine address where nothing listens (loopback port 9), so that
    /// the output does not depend on the machine's Docker.
    pub fn run_without_engine(&self, arguments: &[&str]) -> Output {
        run_with(
            self.path(),
            arguments,
            &[("DOCKER_HOST", "tcp://127.0.0.1:9")],
        )
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rollout"))
}

/// Runs `rollout --dir DIR ARGS…` without colour, with the tempdir replaced by `[DIR]`.
pub fn run_in(dir: &Path, arguments: &[&str]) -> Output {
    run_with(dir, arguments, &[])
}

pub fn run_with(dir: &Path, arguments: &[&str], environment: &[(&str, &str)]) -> Output {
    let output = Command::new(binary())
        .arg("--dir")
        .arg(dir)
        .args(arguments)
        .envs(environment.iter().copied())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("ROLLOUT_DIR")
        .output()
        .expect("run rollout");
    let clean =
        |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&dir.display().to_string(), "[DIR]");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: clean(&output.stdout),
        stderr: clean(&output.stderr),
    }
}

/// The repository's own platform directory (the shipped BizOSaaS config).
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
