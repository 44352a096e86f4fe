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

/// The address the host ports are probed on: the bind address when it is a specific one,
/// otherwise loopback for a local engine.
pub fn probe_address(config: &Config, engine: &EngineInfo) -> IpAddr {
    let bind: Option<IpAddr> = config.docker.bind_address.parse().ok();
    match bind {
        Some(address) if !address.is_unspecified() => address,
        _ if engine.local => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => remote_address(&engine.host).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    }
}

/// The IP of a `tcp://host:port` engine, when it is written as one.
fn remote_address(host: &str) -> Option<IpAddr> {
    let rest = host.split_once("://").map_or(host, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let name = authority
        .rsplit_once(':')
        .map_or(authority, |(name, _)| name);
    name.trim_matches(['[', ']']).parse().ok()
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
