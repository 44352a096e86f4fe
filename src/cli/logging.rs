//! tracing for `-v` and RUST_LOG: logs go to stderr, never to stdout.

use tracing_subscriber::EnvFilter;

use super::GlobalOptions;

pub fn init(global: &GlobalOptions) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "rollout=info",
        (false, 2) => "rollout=debug",
        (false, _) => "rollout=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output_is_colored())
        .try_init();
}

fn output_is_colored() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr())
}
