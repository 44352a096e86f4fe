//! Loading a platform directory: read the TOML files, check everything, build a [`Config`].
//!
//! Two stages, as cargo does for manifests: the files are parsed into `Raw*` types
//! ([`raw`]), then converted into the domain types of [`crate::model`] ([`resolve`]), which
//! collects every problem instead of stopping at the first. Once a `Config` exists it is
//! valid. This layer reads files and nothing else: no Docker, no clock, no printing.

pub mod problem;
pub mod raw;
mod resolve;
pub mod schema;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub use problem::{Problem, Problems};

use crate::model::Config;
use problem::{FileId, Place, Sources};
use raw::{
    RawDemo, RawDemoService, RawDocker, RawEnvironmentFile, RawHealth, RawPhaseFile, RawPlatform,
    RawPlatformFile, RawRange, RawReconciliation, RawService,
};
use schema::{check_nested, fields_of, remove_unknown_keys, table_mut};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("`{}` is not a platform directory: `config/platform.toml` is missing", dir.display())]
    NotAPlatform { dir: PathBuf },

    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("unknown environment `{name}`: there is no `config/env/{name}.toml`")]
    UnknownEnvironment {
        name: String,
        available: Vec<String>,
    },

    #[error(transparent)]
    Invalid(Problems),
}

impl ConfigError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotAPlatform { .. } => Some(
                "run `rollout` in a platform directory, or point `--dir` (or ROLLOUT_DIR) at one"
                    .to_owned(),
            ),
            Self::UnknownEnvironment { name, available } => {
                let known = if available.is_empty() {
                    "there are no environments in `config/env/`".to_owned()
                } else {
                    format!("the environments are: {}", available.join(", "))
                };
                match problem::suggestion(name, available.iter().map(String::as_str)) {
                    Some(close) => Some(format!("did you mean `{close}`? {known}")),
                    None => Some(known),
                }
            }
            Self::Read { .. } | Self::Invalid(_) => None,
        }
    }
}

/// A `[services.<name>]` table as declared in one file.
#[derive(Debug)]
struct ServiceDeclaration {
    file: FileId,
    name: Spanned<String>,
    raw: RawService,
}

#[derive(Debug)]
struct EnvironmentDeclaration {
    file: FileId,
    name: String,
    raw: RawEnvironmentFile,
    overrides: Vec<ServiceDeclaration>,
}

/// Everything read from the files, before any checking across them.
#[derive(Debug, Default)]
struct Loaded {
    platform: Option<(FileId, RawPlatformFile)>,
    services: Vec<ServiceDeclaration>,
    phases: Vec<(FileId, RawPhaseFile)>,
    environment: Option<EnvironmentDeclaration>,
}

/// Loads and validates the platform in `dir`, with the overlay `config/env/<environment>.toml`.
pub fn load(dir: &Path, environment: Option<&str>) -> Result<Config, ConfigError> {
    let platform_path = dir.join("config").join("platform.toml");
    if !platform_path.is_file() {
        return Err(ConfigError::NotAPlatform {
            dir: dir.to_path_buf(),
        });
    }
    let environment_path = match environment {
        Some(name) => {
            let path = dir.join("config").join("env").join(format!("{name}.toml"));
            if !path.is_file() || name.contains(['/', '\\']) {
                return Err(ConfigError::UnknownEnvironment {
                    name: name.to_owned(),
                    available: environments(dir)?,
                });
            }
            Some((name, path))
        }
        None => None,
    };

    let mut sources = Sources::default();
    let mut problems = Vec::new();
    let mut loaded = Loaded::default();
    let read = |path: &Path, sources: &mut Sources| -> Result<FileId, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        Ok(sources.add(name, text))
    };

    let file = read(&platform_path, &mut sources)?;
    loaded.platform = parse_platform(file, &sources, &mut problems).map(|raw| (file, raw));
    for path in toml_files(&dir.join("config").join("services"))? {
        let file = read(&path, &mut sources)?;
        loaded
            .services
            .extend(parse_services_file(file, &sources, &mut problems));
    }
    for path in toml_files(&dir.join("phases"))? {
        let file = read(&path, &mut sources)?;
        if let Some(raw) = parse_phase(file, &sources, &mut problems) {
            loaded.phases.push((file, raw));
        }
    }
    if let Some((name, path)) = environment_path {
        let file = read(&path, &mut sources)?;
        loaded.environment =
            parse_environment(file, &sources, &mut problems).map(|(raw, overrides)| {
                EnvironmentDeclaration {
                    file,
                    name: name.to_owned(),
                    raw,
                    overrides,
                }
            });
    }

    let config = resolve::resolve(loaded, &sources, &mut problems);
    // In reading order: by file, then by place; problems without a place last.
    problems.sort_by_key(|problem| {
        problem.labels.first().map_or((usize::MAX, 0), |label| {
            (label.place.file.index(), label.place.span.start)
        })
    });
    if problems.is_empty() {
        Ok(config.expect("a config is built when there are no problems"))
    } else {
        Err(ConfigError::Invalid(Problems {
            sources: Arc::new(sources),
            problems,
        }))
    }
}

/// The environments `config/env/` offers, sorted.
pub fn environments(dir: &Path) -> Result<Vec<String>, ConfigError> {
    Ok(toml_files(&dir.join("config").join("env"))?
        .iter()
        .filter_map(|path| path.file_stem()?.to_str().map(str::to_owned))
        .collect())
}

/// The `*.toml` files directly in `dir`, sorted by name; none if `dir` does not exist.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
            && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses a file's TOML, reporting a syntax error at its place.
fn parse_document<'i>(
    file: FileId,
    text: &'i str,
    problems: &mut Vec<Problem>,
) -> Option<Spanned<DeTable<'i>>> {
    match DeTable::parse(text) {
        Ok(table) => Some(table),
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            problems.push(
                Problem::new(format!("invalid TOML: {}", error.message().trim_end()))
                    .at(Place::new(file, span), "here"),
            );
            None
        }
    }
}

/// Deserializes one value into a `Raw*` type, reporting a type error at its place.
fn deserialize_value<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    file: FileId,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let whole = value.span();
    T::deserialize(ValueDeserializer::from(value))
        .map_err(|error| problems.push(type_problem(&error, file, whole)))
        .ok()
}

fn type_problem(error: &toml::de::Error, file: FileId, whole: std::ops::Range<usize>) -> Problem {
    Problem::new(error.message().trim_end().to_owned())
        .at(Place::new(file, error.span().unwrap_or(whole)), "here")
}

fn parse_platform(
    file: FileId,
    sources: &Sources,
    problems: &mut Vec<Problem>,
) -> Option<RawPlatformFile> {
    let mut document = parse_document(file, sources.text(file), problems)?;
    let table = document.get_mut();
    remove_unknown_keys(
        table,
        fields_of::<RawPlatformFile>(),
        "`platform.toml`",
        file,
        problems,
    );
    check_nested::<RawPlatform>(table, "platform", "`[platform]`", file, problems);
    for (key, kind, known) in [
        ("ranges", "a `[[ranges]]` entry", fields_of::<RawRange>()),
        (
            "reconciliation",
            "a `[[reconciliation]]` entry",
            fields_of::<RawReconciliation>(),
        ),
    ] {
        if let Some(DeValue::Array(entries)) = table.get_mut(key).map(|value| value.get_mut()) {
            for entry in entries.iter_mut() {
                if let Some(entry) = table_mut(entry.get_mut()) {
                    remove_unknown_keys(entry, known, kind, file, problems);
                }
            }
        }
    }
    let span = document.span();
    deserialize_value(
        Spanned::new(span, DeValue::Table(document.into_inner())),
        file,
        problems,
    )
}

/// The `[services.*]` tables of a file, each checked and read on its own so that a mistake
/// in one does not hide the others.
fn parse_service_tables(
    table: &mut DeTable<'_>,
    file: FileId,
    problems: &mut Vec<Problem>,
) -> Vec<ServiceDeclaration> {
    let Some(services) = table.remove("services") else {
        return Vec::new();
    };
    let services_span = services.span();
    let DeValue::Table(services) = services.into_inner() else {
        problems.push(
            Problem::new("`services` must be a table of `[services.<name>]` tables")
                .at(Place::new(file, services_span), "not a table"),
        );
        return Vec::new();
    };
    let mut declarations = Vec::new();
    for (name, mut value) in services {
        if let Some(service) = table_mut(value.get_mut()) {
            let what = format!("service `{}`", name.as_ref());
            remove_unknown_keys(service, fields_of::<RawService>(), &what, file, problems);
            check_nested::<RawHealth>(
                service,
                "health",
                &format!("the health check of {what}"),
                file,
                problems,
            );
        }
        if let Some(raw) = deserialize_value::<RawService>(value, file, problems) {
            declarations.push(ServiceDeclaration {
                file,
                name: Spanned::new(name.span(), name.as_ref().to_string()),
                raw,
            });
        }
    }
    declarations
}

fn parse_services_file(
    file: FileId,
    sources: &Sources,
    problems: &mut Vec<Problem>,
) -> Vec<ServiceDeclaration> {
    let Some(mut document) = parse_document(file, sources.text(file), problems) else {
        return Vec::new();
    };
    let table = document.get_mut();
    remove_unknown_keys(table, &["services"], "a services file", file, problems);
    parse_service_tables(table, file, problems)
}

fn parse_phase(
    file: FileId,
    sources: &Sources,
    problems: &mut Vec<Problem>,
) -> Option<RawPhaseFile> {
    let mut document = parse_document(file, sources.text(file), problems)?;
    remove_unknown_keys(
        document.get_mut(),
        fields_of::<RawPhaseFile>(),
        "a phase file",
        file,
        problems,
    );
    let span = document.span();
    deserialize_value(
        Spanned::new(span, DeValue::Table(document.into_inner())),
        file,
        problems,
    )
}

fn parse_environment(
    file: FileId,
    sources: &Sources,
    problems: &mut Vec<Problem>,
) -> Option<(RawEnvironmentFile, Vec<ServiceDeclaration>)> {
    let mut document = parse_document(file, sources.text(file), problems)?;
    let table = document.get_mut();
    let mut known = fields_of::<RawEnvironmentFile>().to_vec();
    known.push("services");
    remove_unknown_keys(table, &known, "an environment file", file, problems);
    check_nested::<RawDocker>(table, "docker", "`[docker]`", file, problems);
    check_nested::<RawDemo>(table, "demo", "`[demo]`", file, problems);
    if let Some(DeValue::Table(demo)) = table.get_mut("demo").map(|value| value.get_mut())
        && let Some(DeValue::Table(services)) =
            demo.get_mut("services").map(|value| value.get_mut())
    {
        for (name, value) in services.iter_mut() {
            if let Some(service) = table_mut(value.get_mut()) {
                let what = format!("`[demo.services.{}]`", name.as_ref());
                let known = fields_of::<RawDemoService>();
                remove_unknown_keys(service, known, &what, file, problems);
            }
        }
    }
    let overrides = parse_service_tables(table, file, problems);
    let span = document.span();
    let raw = deserialize_value(
        Spanned::new(span, DeValue::Table(document.into_inner())),
        file,
        problems,
    )
    .unwrap_or_default();
    Some((raw, overrides))
}
