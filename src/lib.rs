//! `rollout` deploys a multi-service platform onto Docker in four ordered phases.
//!
//! # Architecture map
//!
//! Layers go one way; a module never imports one listed below it.
//!
//! - [`model`] — plain domain types: services, health checks, phases, the valid `Config`.
//! - [`vars`] — `${VAR}` references in strings.
//! - [`config`] — reads a platform directory (`Raw*` TOML types), validates everything and
//!   builds a `Config`; every problem comes with `file:line:col`.
//! - [`demo`] — rewrites a service into its demo stand-in (pure).
//! - [`graph`] — the dependency graph: petgraph behind domain methods (pure).
//! - [`plan`] — the pure planner: config + selection + observed host → `Plan` with reasons.
//! - [`report`] — pure views: the port table, `docs/ports.md`, DOT and Mermaid.
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`): argument parsing,
//! printing and exit codes. Start reading at [`config::load`], then [`plan::plan`].

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod demo;
pub mod graph;
pub mod model;
pub mod plan;
pub mod report;
pub mod vars;
