//! The demo stand-in: how a service is rewritten to run from the demo image.
//!
//! Pure: it only rewrites a [`Service`]. The image itself is built by `docker::demo_image`
//! from the binary that `build.rs` compiles out of `src/demo_service/main.rs`.

use std::collections::BTreeMap;

use crate::model::{DemoBehaviour, EnvTemplate, Probe, Service, ServiceKind};

/// The demo image's tag: a digest of the demo service's source and the compiler.
pub const IMAGE: &str = concat!("rollout-demo:", env!("ROLLOUT_DEMO_DIGEST"));

/// Where the demo binary lives inside its image.
pub const BINARY_PATH: &str = "/rollout-demo";

/// The env key that records which real image a stand-in stands in for.
pub const STANDS_IN_FOR: &str = "ROLLOUT_DEMO_STANDS_IN_FOR";

/// The value a secret gets in a demo, so that a demo needs no environment variables.
pub fn secret_value(name: &str) -> String {
    format!("demo-{}", name.to_ascii_lowercase().replace('_', "-"))
}

/// Rewrites `service` to run as a demo stand-in with `behaviour`: the demo image, its
/// settings in the environment, and checks the demo answers (`cmd` and `docker` become
/// `tcp`; an external is checked from inside its stand-in).
pub fn stand_in(service: &mut Service, behaviour: DemoBehaviour, image: &str) {
    let mut listen: Vec<u16> = service.ports.iter().map(|port| port.container).collect();
    if service.kind == ServiceKind::External {
        let port = match &service.health.probe {
            Probe::Tcp {
                target: Some(target),
            } => target.port,
            _ => 80,
        };
        listen = vec![port];
        service.health.probe = Probe::Cmd {
            command: vec![BINARY_PATH.to_owned(), "probe".to_owned(), port.to_string()],
        };
    } else if listen.is_empty() {
        // Nothing published to probe from the host: check it from inside, like an external.
        listen = vec![80];
        service.health.probe = Probe::Cmd {
            command: vec![BINARY_PATH.to_owned(), "probe".to_owned(), "80".to_owned()],
        };
    } else if matches!(service.health.probe, Probe::Cmd { .. } | Probe::Docker) {
        service.health.probe = Probe::Tcp { target: None };
    }
    let mut settings = BTreeMap::from([
        ("ROLLOUT_DEMO_SERVICE", service.name.to_string()),
        // What it stands in for: a new image version of the real service is a change of
        // the stand-in too, so demos and tests rehearse replacements.
        (STANDS_IN_FOR, service.image.clone().unwrap_or_default()),
        (
            "ROLLOUT_DEMO_PORTS",
            listen
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "ROLLOUT_DEMO_READY_AFTER_MS",
            behaviour.ready_after.as_millis().to_string(),
        ),
    ]);
    if let Some(fail) = behaviour.fail {
        let fail = match fail {
            crate::model::DemoFailure::CrashAfter(after) => {
                format!("crash-after:{}", after.as_millis())
            }
            other => other.to_string(),
        };
        settings.insert("ROLLOUT_DEMO_FAIL", fail);
    }
    for (key, value) in settings {
        service
            .env
            .insert(key.to_owned(), EnvTemplate(value.replace('$', "$$")));
    }
    service.image = Some(image.to_owned());
    service.command = None;
    service.demo = Some(behaviour);
}
