//! `Raw*` types: the TOML files exactly as written, with positions where errors point.
//!
//! These mirror the files one to one and check nothing beyond TOML types. Unknown keys are
//! found (with suggestions) before serde sees a table, by [`super::schema`], which reads
//! each struct's field list from its `Deserialize` impl, so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `config/platform.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlatformFile {
    pub platform: Option<RawPlatform>,
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub ranges: Vec<RawRange>,
    #[serde(default)]
    pub reconciliation: Vec<RawReconciliation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlatform {
    pub name: Spanned<String>,
    pub network: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    pub name: Spanned<String>,
    pub ports: Spanned<String>,
    #[serde(default)]
    pub categories: Vec<Spanned<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReconciliation {
    pub topic: String,
    #[serde(default)]
    pub ports: Vec<Spanned<i64>>,
    pub plan: Option<String>,
    pub guide: Option<String>,
    pub resolution: String,
}

/// One `[services.<name>]` table, in `config/services/*.toml` or as an overlay's override
/// (where every field is optional and replaces the base's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub title: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub category: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub ports: Option<Spanned<Vec<Spanned<RawPort>>>>,
    pub depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    pub env: Option<BTreeMap<String, Spanned<String>>>,
    pub secrets: Option<Spanned<Vec<Spanned<String>>>>,
    pub range_exempt: Option<Spanned<String>>,
    pub health: Option<Spanned<RawHealth>>,
    pub command: Option<Spanned<Vec<String>>>,
}

/// `8001` (host = container) or `"5433:5432"` (host:container).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPort {
    Number(i64),
    Mapping(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub http: Option<Spanned<RawPaths>>,
    pub tcp: Option<Spanned<RawTcp>>,
    pub cmd: Option<Spanned<Vec<String>>>,
    pub docker: Option<Spanned<bool>>,
    pub start_period: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub max_interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub attempt_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPaths {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawTcp {
    Enabled(bool),
    Target(String),
}

/// `phases/*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhaseFile {
    pub phase: Spanned<i64>,
    pub name: Spanned<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub services: Vec<Spanned<String>>,
    pub on_failure: Option<Spanned<String>>,
}

/// `config/env/<name>.toml`, without its `[services.*]` tables (read one by one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironmentFile {
    #[serde(default)]
    pub vars: BTreeMap<String, Spanned<String>>,
    pub docker: Option<RawDocker>,
    pub demo: Option<RawDemo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDocker {
    pub host: Option<Spanned<String>>,
    pub bind_address: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemo {
    pub ready_after: Option<Spanned<String>>,
    /// The tag to build the demo image under (default: `rollout-demo:<digest>`).
    pub image: Option<Spanned<String>>,
    #[serde(default)]
    pub services: BTreeMap<Spanned<String>, RawDemoService>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemoService {
    pub ready_after: Option<Spanned<String>>,
    pub fail: Option<Spanned<String>>,
}
