//! Real-engine test platforms: each has its own platform name, labels, network, demo image
//! tag and free host ports, and removes everything carrying its name when dropped, also
//! when the test failed. Nothing else on the engine is touched.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{Output, Platform, run_in};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A free TCP port on 127.0.0.1 (bound and released: the engine takes it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct DemoPlatform {
    pub platform: Platform,
    pub name: String,
    pub ports: Vec<u16>,
}

/// db (infrastructure, tcp) <- api, worker (phase 1, http) <- web (phase 2); api also needs
/// the external `payments`, stood in for by a demo container.
pub fn services(ports: &[u16]) -> String {
    format!(
        r#"[services.db]
kind = "infrastructure"
category = "any"
image = "postgres:16"
ports = [{db}]
health = {{ cmd = ["pg_isready"], timeout = "20s" }}

[services.payments]
kind = "external"
health = {{ tcp = "api.payments.example:443" }}

[services.api]
category = "any"
image = "acme/api:${{TAG}}"
ports = [{api}]
depends_on = ["db", "payments"]
env = {{ DATABASE_URL = "postgres://app:${{DB_PASSWORD}}@db/app" }}
secrets = ["DB_PASSWORD"]
health = {{ http = ["/health", "/"], timeout = "20s" }}

[services.worker]
category = "any"
image = "acme/worker:${{TAG}}"
ports = [{worker}]
depends_on = ["db"]
health = {{ tcp = true, timeout = "20s" }}

[services.web]
category = "any"
image = "acme/web:${{TAG}}"
ports = ["{web}:80"]
depends_on = ["api", "worker"]
health = {{ http = "/", timeout = "20s" }}
"#,
        db = ports[0],
        api = ports[1],
        worker = ports[2],
        web = ports[3],
    )
}

impl DemoPlatform {
    /// A fresh platform with the demo overlay `config/env/test.toml` (`demo_extra` is
    /// appended to it: per-service demo behaviour).
    pub fn new(demo_extra: &str) -> Self {
        let name = format!(
            "rt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
        let platform = Platform::new()
            .file(
                "config/platform.toml",
                &format!("[platform]\nname = \"{name}\"\n[vars]\nTAG = \"1\"\n[[ranges]]\nname = \"all\"\nports = \"1024-65535\"\ncategories = [\"any\"]\n"),
            )
            .file("config/services/services.toml", &services(&ports))
            .file("phases/1-core.toml", "phase = 1\nname = \"Core\"\nservices = [\"api\", \"worker\"]\n")
            .file("phases/2-web.toml", "phase = 2\nname = \"Web\"\nservices = [\"web\"]\n");
        let demo = Self {
            platform,
            name,
            ports,
        };
        demo.overlay("1", demo_extra);
        demo
    }

    /// Rewrites the overlay: the image TAG and extra demo settings.
    pub fn overlay(&self, tag: &str, demo_extra: &str) {
        let text = format!(
            "[vars]\nTAG = \"{tag}\"\n[docker]\nbind_address = \"127.0.0.1\"\n[demo]\nready_after = \"200ms\"\nimage = \"rollout-demo:{name}\"\n{demo_extra}\n",
            name = self.name
        );
        let path = self.platform.path().join("config/env/test.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn rollout(&self, arguments: &[&str]) -> Output {
        let mut all = vec!["--env", "test"];
        all.extend_from_slice(arguments);
        run_in(self.platform.path(), &all)
    }

    /// `name -> (id, state)` of this platform's containers, straight from the engine.
    pub fn containers(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let output = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=io.rollout.platform={}", self.name),
            ])
            .args(["--format", "{{.Names}} {{.ID}} {{.State}}"])
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some((
                    parts.next()?.to_owned(),
                    (parts.next()?.to_owned(), parts.next()?.to_owned()),
                ))
            })
            .collect()
    }

    pub fn container(&self, service: &str) -> Option<(String, String)> {
        self.containers()
            .get(&format!("{}-{service}", self.name))
            .cloned()
    }
}

impl Drop for DemoPlatform {
    fn drop(&mut self) {
        // A killed `rollout` may have a create in flight that the engine finishes after the
        // first sweep: sweep until two in a row, half a second apart, find nothing.
        let label = format!("io.rollout.platform={}", self.name);
        let mut quiet = 0;
        for _ in 0..20 {
            if remove_everything_labelled(&label) {
                quiet = 0;
            } else {
                quiet += 1;
                if quiet == 2 {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
        let _ = Command::new("docker")
            .args(["rmi", "-f", &format!("rollout-demo:{}", self.name)])
            .output();
    }
}

/// Removes every container carrying `label` (`key=value`): only ours. Whether it found any.
pub fn remove_everything_labelled(label: &str) -> bool {
    let Ok(output) = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
    else {
        return false;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output();
    }
    !ids.is_empty()
}
