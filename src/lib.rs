//! `rollout` deploys a multi-service platform onto Docker in four ordered phases.
//!
//! # Architecture map
//!
//! Layers go one way: a module may use the ones listed before it, never one after it.
//!
//! - [`vars`] — `${VAR}` references in strings.
//! - [`model`] — plain domain types: services, health checks, phases, the valid `Config`.
//! - [`graph`] — the dependency graph: petgraph behind domain methods (pure).
//! - [`demo`] — rewrites a service into its demo stand-in (pure).
//! - [`config`] — reads a platform directory (`Raw*` TOML types), validates everything
//!   (cycles through `graph`) and builds a `Config`; every problem comes with `file:line:col`.
//! - [`plan`] — the pure planner: config + selection + observed host → `Plan` with reasons;
//!   the spec hash; recovery of half-finished replacements.
//! - [`report`] — pure views: the port table, `docs/ports.md`, DOT and Mermaid.
//! - [`docker`] — the `Runtime` trait (our own types), the bollard engine, a recording fake.
//! - [`health`] — one probe, the backoff schedule, and the wait under a deadline.
//! - [`host_ports`] — which local process listens on a TCP port (Linux `/proc`).
//! - [`observe`] — reads a Docker host, read-only, into the planner's `ObservedHost`.
//! - [`secrets`] — secret values from the process environment, never stored or shown.
//! - [`exec`] — the executor: runs a plan through a `Runtime`, halts or rolls back.
//! - [`state`] — the state dir: the atomic, versioned journal (fed by the executor's events)
//!   and the lock.
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`): argument parsing,
//! printing and exit codes. Start reading at [`config::load`], then [`plan::plan`].

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod demo;
pub mod docker;
pub mod exec;
pub mod graph;
pub mod health;
pub mod host_ports;
pub mod model;
pub mod observe;
pub mod plan;
pub mod report;
pub mod secrets;
pub mod state;
pub mod vars;
