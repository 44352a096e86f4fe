//! The one integration test binary: the CLI with snapshots, the shipped configuration, and
//! the tests against the real Docker engine (which CI runs and which fail, not skip,
//! without one).

mod commands;
mod common;
mod dryrun;
mod engine;
mod resume;
mod rollout;
mod runtime;
mod seeds;
mod validation;
