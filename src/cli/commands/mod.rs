//! One file per command: each is a thin wrapper around the library.

pub mod completions;
pub mod docs;
pub mod down;
pub mod graph;
pub mod phase;
pub mod plan;
pub mod ports;
pub mod resume;
pub mod rollback;
pub mod status;
pub mod validate;
