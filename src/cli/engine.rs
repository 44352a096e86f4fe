//! Connecting to the engine for a command, and what to tell people when that fails.

use std::net::{IpAddr, Ipv4Addr};

use rollout::docker::bollard::BollardRuntime;
use rollout::docker::{DockerError, EngineInfo};
use rollout::model::Config;

use super::CliError;

/// A tokio runtime for one command.
pub fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Connects to the config's engine (`[docker] host`, else DOCKER_HOST, else the local socket).
pub async fn connect(config: &Config) -> Result<BollardRuntime, CliError> {
    Ok(BollardRuntime::connect(config.docker.host.as_deref()).await?)
}

/// The host the published ports are probed on: the bind address when it is a specific one,
/// otherwise loopback for a local engine and the engine's own host for a remote one.
pub fn probe_address(config: &Config, engine: &EngineInfo) -> String {
    let bind: Option<IpAddr> = config.docker.bind_address.parse().ok();
    match bind {
        Some(address) if !address.is_unspecified() => address.to_string(),
        _ if engine.local => Ipv4Addr::LOCALHOST.to_string(),
        _ => engine_host(&engine.host).unwrap_or_else(|| Ipv4Addr::LOCALHOST.to_string()),
    }
}

/// The host name or IP of a `tcp://host:port` engine address.
fn engine_host(address: &str) -> Option<String> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let name = match authority.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => authority,
    };
    let name = name.trim_matches(['[', ']']);
    (!name.is_empty()).then(|| name.to_owned())
}

/// What to do about a Docker error.
pub fn hint(error: &DockerError) -> String {
    match error {
        DockerError::Connect { .. } | DockerError::Unresponsive { .. } => {
            "is the Docker engine running (`docker info`)? `[docker] host` in the environment overlay or DOCKER_HOST selects another engine".to_owned()
        }
        DockerError::ImageUnavailable { image, .. } => format!(
            "build or load `{image}` on the engine (`docker load`, `docker build -t {image} .`), or allow pulling (no `--no-pull`)"
        ),
        DockerError::NotFound { .. } => "the object went away while `rollout` worked: run the command again".to_owned(),
        DockerError::Operation { .. } => "`docker events` and the engine's log may say more".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::engine_host;

    #[test]
    fn finds_the_host_of_an_engine_address() {
        assert_eq!(
            engine_host("tcp://staging-docker.internal:2376").as_deref(),
            Some("staging-docker.internal")
        );
        assert_eq!(
            engine_host("https://10.0.0.5:2376").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(engine_host("tcp://[::1]:2375").as_deref(), Some("::1"));
        assert_eq!(engine_host("tcp://docker").as_deref(), Some("docker"));
    }
}
