//! From `Raw*` to the domain types: resolve `${VAR}`s, merge the overlay, and check every
//! rule of SPEC §6, collecting each problem with its place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use toml::Spanned;

use super::problem::{FileId, Place, Problem, Sources, suggestion};
use super::raw::{RawHealth, RawPaths, RawPort, RawService, RawTcp};
use super::{Loaded, ServiceDeclaration};
use crate::demo;
use crate::graph::DependencyGraph;
use crate::model::{
    Config, ConfigParts, DemoBehaviour, DemoFailure, DockerSettings, EnvTemplate, FailurePolicy,
    HealthCheck, HealthTiming, PHASES, Phase, PhaseNumber, PlatformSettings, PortMapping,
    PortRange, Probe, Reconciliation, Service, ServiceKind, ServiceName, TcpTarget,
};
use crate::vars;

/// A value and the file it came from (the base file, or the overlay that replaced it).
struct Sourced<'a, T> {
    file: FileId,
    value: &'a Spanned<T>,
}

impl<T> Sourced<'_, T> {
    fn place(&self) -> Place {
        Place::new(self.file, self.value.span())
    }
}

/// A service's base declaration and the overlay's override, read field by field.
struct Merged<'a> {
    base: &'a ServiceDeclaration,
    overlay: Option<&'a ServiceDeclaration>,
}

impl<'a> Merged<'a> {
    fn field<T>(
        &self,
        get: impl Fn(&'a RawService) -> Option<&'a Spanned<T>>,
    ) -> Option<Sourced<'a, T>> {
        self.overlay
            .and_then(|overlay| {
                get(&overlay.raw).map(|value| Sourced {
                    file: overlay.file,
                    value,
                })
            })
            .or_else(|| {
                get(&self.base.raw).map(|value| Sourced {
                    file: self.base.file,
                    value,
                })
            })
    }

    fn name_place(&self) -> Place {
        Place::new(self.base.file, self.base.name.span())
    }
}

struct Resolver<'a> {
    sources: &'a Sources,
    problems: &'a mut Vec<Problem>,
    vars: BTreeMap<String, String>,
    /// Services whose `kind` is not a kind.
    invalid_kinds: BTreeSet<String>,
}

impl Resolver<'_> {
    fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// The place of `${NAME}` inside a string value, or the whole value when the string is
    /// written with escapes (then source and value offsets differ).
    fn reference_place(
        &self,
        file: FileId,
        value: &Spanned<String>,
        reference: &vars::Reference<'_>,
    ) -> Place {
        let span = value.span();
        let written = self.sources.text(file).get(span.clone()).unwrap_or("");
        if written.len() == value.get_ref().len() + 2
            && &written[1..written.len() - 1] == value.get_ref()
        {
            let start = span.start + 1 + reference.start;
            Place::new(file, start..span.start + 1 + reference.end)
        } else {
            Place::new(file, span)
        }
    }

    /// Resolves `${VAR}`s from the vars; names in `secrets` stay for rollout time. Reports
    /// every other name.
    fn interpolate(
        &mut self,
        file: FileId,
        value: &Spanned<String>,
        secrets: &BTreeSet<String>,
        what: &str,
    ) -> String {
        for reference in vars::references(value.get_ref()) {
            if self.vars.contains_key(reference.name) || secrets.contains(reference.name) {
                continue;
            }
            let place = self.reference_place(file, value, &reference);
            let known: Vec<&str> = self
                .vars
                .keys()
                .map(String::as_str)
                .chain(secrets.iter().map(String::as_str))
                .collect();
            let problem = Problem::new(format!(
                "unknown variable `${{{}}}` in {what}",
                reference.name
            ))
            .at(
                place,
                "not defined in any `[vars]` and not a secret of this service",
            );
            let problem = match suggestion(reference.name, known.iter().copied()) {
                Some(close) => problem.help(format!("did you mean `{close}`?")),
                None => problem.help(format!(
                    "define `{}` in `[vars]` of `config/platform.toml` or of the environment overlay, or list it in the service's `secrets`",
                    reference.name
                )),
            };
            self.report(problem);
        }
        vars::substitute(
            value.get_ref(),
            |name| {
                if secrets.contains(name) {
                    None
                } else {
                    self.vars.get(name).cloned()
                }
            },
            false,
        )
    }

    fn duration(&mut self, file: FileId, value: &Spanned<String>, what: &str) -> Option<Duration> {
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.report(
                    Problem::new(format!("invalid duration `{}` for {what}", value.get_ref()))
                        .at(Place::new(file, value.span()), error.to_string())
                        .help("write a duration such as `250ms`, `30s` or `2m`"),
                );
                None
            }
        }
    }

    fn port_number(&mut self, number: i64, place: &Place, service: &str) -> Option<u16> {
        match u16::try_from(number) {
            Ok(port) if port >= 1 => Some(port),
            _ => {
                self.report(
                    Problem::new(format!("port {number} of `{service}` is outside 1-65535"))
                        .at(place.clone(), "not a valid port")
                        .help("a host or container port is a number from 1 to 65535"),
                );
                None
            }
        }
    }

    fn port(&mut self, raw: &Spanned<RawPort>, file: FileId, service: &str) -> Option<PortMapping> {
        let place = Place::new(file, raw.span());
        match raw.get_ref() {
            RawPort::Number(number) => {
                let port = self.port_number(*number, &place, service)?;
                Some(PortMapping {
                    host: port,
                    container: port,
                })
            }
            RawPort::Mapping(text) => {
                let parsed = text.split_once(':').and_then(|(host, container)| {
                    Some((
                        host.trim().parse::<i64>().ok()?,
                        container.trim().parse::<i64>().ok()?,
                    ))
                });
                let Some((host, container)) = parsed else {
                    self.report(
                        Problem::new(format!("invalid port mapping `{text}` of `{service}`"))
                            .at(place, "expected `HOST:CONTAINER`")
                            .help("write a port as a number (`8001`) or as `\"HOST:CONTAINER\"` (`\"5433:5432\"`)"),
                    );
                    return None;
                };
                let host = self.port_number(host, &place, service);
                let container = self.port_number(container, &place, service);
                Some(PortMapping {
                    host: host?,
                    container: container?,
                })
            }
        }
    }
}

const KINDS: [&str; 3] = ["service", "infrastructure", "external"];
const POLICIES: [&str; 2] = ["halt", "rollback"];

fn is_docker_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && characters.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
        })
}

pub(super) fn resolve(
    loaded: Loaded,
    sources: &Sources,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let mut resolver = Resolver {
        sources,
        problems,
        vars: BTreeMap::new(),
        invalid_kinds: BTreeSet::new(),
    };

    // The platform table.
    let (platform_file, platform) = match &loaded.platform {
        Some((file, raw)) => (Some(*file), raw.platform.as_ref()),
        None => (None, None),
    };
    let platform_settings = match (platform_file, platform) {
        (Some(file), Some(platform)) => {
            let name = platform.name.get_ref().clone();
            if !is_docker_name(&name) {
                resolver.report(
                    Problem::new(format!("invalid platform name `{name}`"))
                        .at(Place::new(file, platform.name.span()), "not usable in container names")
                        .help("use lowercase letters, digits and `-`, starting with a letter or digit"),
                );
            }
            let network = platform
                .network
                .as_ref()
                .map_or_else(|| name.clone(), |n| n.get_ref().clone());
            Some(PlatformSettings { name, network })
        }
        (Some(file), None) => {
            resolver.report(
                Problem::new("`config/platform.toml` has no `[platform]` table")
                    .at(Place::new(file, 0..0), "expected `[platform]` with `name`")
                    .help("add `[platform]` with `name = \"<platform>\"`"),
            );
            None
        }
        (None, _) => None,
    };

    // Vars: the platform's, then the overlay's.
    if let Some((_, raw)) = &loaded.platform {
        for (key, value) in &raw.vars {
            resolver.vars.insert(key.clone(), value.get_ref().clone());
        }
    }
    if let Some(environment) = &loaded.environment {
        for (key, value) in &environment.raw.vars {
            resolver.vars.insert(key.clone(), value.get_ref().clone());
        }
    }

    let ranges = resolve_ranges(&loaded, &mut resolver);
    let reconciliations = loaded
        .platform
        .iter()
        .flat_map(|(file, raw)| raw.reconciliation.iter().map(move |entry| (*file, entry)))
        .map(|(file, entry)| Reconciliation {
            topic: entry.topic.clone(),
            ports: entry
                .ports
                .iter()
                .filter_map(|port| {
                    resolver.port_number(
                        *port.get_ref(),
                        &Place::new(file, port.span()),
                        &entry.topic,
                    )
                })
                .collect(),
            plan: entry.plan.clone().filter(|text| !text.is_empty()),
            guide: entry.guide.clone().filter(|text| !text.is_empty()),
            resolution: entry.resolution.clone(),
        })
        .collect();

    // Services: the first declaration of a name wins; later ones are duplicates.
    let mut declarations: Vec<&ServiceDeclaration> = Vec::new();
    let mut by_name: HashMap<&str, &ServiceDeclaration> = HashMap::new();
    for declaration in &loaded.services {
        let name = declaration.name.get_ref().as_str();
        if let Some(first) = by_name.get(name) {
            resolver.report(
                Problem::new(format!("service `{name}` is defined twice"))
                    .at(
                        Place::new(declaration.file, declaration.name.span()),
                        "defined again here",
                    )
                    .at(
                        Place::new(first.file, first.name.span()),
                        "first defined here",
                    )
                    .help("rename one of them, or remove the duplicate"),
            );
            continue;
        }
        if !is_docker_name(name) {
            resolver.report(
                Problem::new(format!("invalid service name `{name}`"))
                    .at(
                        Place::new(declaration.file, declaration.name.span()),
                        "not usable in a container name",
                    )
                    .help("use lowercase letters, digits and `-`, starting with a letter or digit"),
            );
        }
        by_name.insert(name, declaration);
        declarations.push(declaration);
    }
    let names: Vec<&str> = declarations
        .iter()
        .map(|d| d.name.get_ref().as_str())
        .collect();

    // The overlay's overrides.
    let mut overrides: HashMap<&str, &ServiceDeclaration> = HashMap::new();
    if let Some(environment) = &loaded.environment {
        for declaration in &environment.overrides {
            let name = declaration.name.get_ref().as_str();
            if by_name.contains_key(name) {
                overrides.insert(name, declaration);
            } else {
                resolver.report(
                    Problem::new(format!(
                        "environment `{}` overrides unknown service `{name}`",
                        environment.name
                    ))
                    .at(
                        Place::new(declaration.file, declaration.name.span()),
                        "no such service",
                    )
                    .suggest(name, names.iter().copied()),
                );
            }
        }
    }

    // The demo overlay.
    let demo_settings = loaded.environment.as_ref().and_then(|environment| {
        environment
            .raw
            .demo
            .as_ref()
            .map(|demo| (environment.file, demo))
    });
    let mut demo_default = Duration::from_millis(300);
    let demo_image = demo_settings.map(|(_, demo)| {
        demo.image
            .as_ref()
            .map_or_else(|| demo::IMAGE.to_owned(), |image| image.get_ref().clone())
    });
    let mut demo_services: HashMap<&str, DemoBehaviour> = HashMap::new();
    if let Some((file, demo)) = demo_settings {
        if let Some(ready_after) = &demo.ready_after {
            demo_default = resolver
                .duration(file, ready_after, "`[demo] ready_after`")
                .unwrap_or(demo_default);
        }
        for (name, settings) in &demo.services {
            if !by_name.contains_key(name.get_ref().as_str()) {
                resolver.report(
                    Problem::new(format!(
                        "`[demo.services.{}]` names an unknown service",
                        name.get_ref()
                    ))
                    .at(Place::new(file, name.span()), "no such service")
                    .suggest(name.get_ref(), names.iter().copied()),
                );
                continue;
            }
            let ready_after = settings
                .ready_after
                .as_ref()
                .and_then(|value| resolver.duration(file, value, "`ready_after`"))
                .unwrap_or(demo_default);
            let fail = settings
                .fail
                .as_ref()
                .and_then(|value| parse_failure(&mut resolver, file, value));
            demo_services.insert(name.get_ref().as_str(), DemoBehaviour { ready_after, fail });
        }
    }

    // Phases, before services, since each service learns its phase.
    let phases = resolve_phases(&loaded, &by_name, &names, &mut resolver);
    let mut phase_of: HashMap<&str, (PhaseNumber, Place)> = HashMap::new();
    for (number, file, phase) in &phases.listed {
        for entry in &phase.services {
            let name = entry.get_ref().as_str();
            let place = Place::new(*file, entry.span());
            if let Some((other, first)) = phase_of.get(name) {
                let message = if other == number {
                    format!("service `{name}` is listed twice in phase {number}")
                } else {
                    format!("service `{name}` is in two phases, {other} and {number}")
                };
                resolver.report(
                    Problem::new(message)
                        .at(place, "listed here")
                        .at(first.clone(), "and here")
                        .help("a service belongs to exactly one phase: remove one of the entries"),
                );
            } else {
                phase_of.insert(name, (*number, place));
            }
        }
    }

    let mut services = Vec::new();
    let mut places: HashMap<&str, ServicePlaces> = HashMap::new();
    for declaration in &declarations {
        let name = declaration.name.get_ref().as_str();
        let merged = Merged {
            base: declaration,
            overlay: overrides.get(name).copied(),
        };
        let demo = demo_settings.map(|_| {
            demo_services.remove(name).unwrap_or(DemoBehaviour {
                ready_after: demo_default,
                fail: None,
            })
        });
        let phase = phase_of.get(name).map(|(number, _)| *number);
        if let Some((service, service_places)) = resolve_service(
            &merged,
            phase,
            demo.map(|behaviour| (behaviour, demo_image.clone().unwrap_or_default())),
            &ranges,
            &mut resolver,
        ) {
            places.insert(name, service_places);
            services.push(service);
        }
    }

    check_membership(&services, &phase_of, &places, &mut resolver);
    if let Some(platform) = &platform_settings {
        check_network_names(&platform.name, &services, &places, &mut resolver);
    }
    check_host_ports(&services, &places, &mut resolver);
    check_dependencies(&services, &places, &names, &mut resolver);

    let docker = loaded
        .environment
        .as_ref()
        .and_then(|environment| environment.raw.docker.as_ref())
        .map(|docker| DockerSettings {
            host: docker.host.as_ref().map(|host| host.get_ref().clone()),
            bind_address: docker
                .bind_address
                .as_ref()
                .map_or_else(|| "0.0.0.0".to_owned(), |address| address.get_ref().clone()),
        })
        .unwrap_or_else(|| DockerSettings {
            host: None,
            bind_address: "0.0.0.0".to_owned(),
        });
    if let (Some(environment), Some(address)) = (
        &loaded.environment,
        loaded
            .environment
            .as_ref()
            .and_then(|e| e.raw.docker.as_ref())
            .and_then(|d| d.bind_address.as_ref()),
    ) && address.get_ref().parse::<std::net::IpAddr>().is_err()
    {
        resolver.report(
            Problem::new(format!("invalid `bind_address` `{}`", address.get_ref()))
                .at(
                    Place::new(environment.file, address.span()),
                    "not an IP address",
                )
                .help("use an address such as `127.0.0.1` or `0.0.0.0`"),
        );
    }

    if !resolver.problems.is_empty() {
        return None;
    }
    Some(Config::new(ConfigParts {
        platform: platform_settings?,
        environment: loaded
            .environment
            .as_ref()
            .map(|environment| environment.name.clone()),
        docker,
        services,
        phases: phases.resolved,
        ranges,
        reconciliations,
        demo: demo_settings.is_some(),
        demo_image,
    }))
}

fn parse_failure(
    resolver: &mut Resolver<'_>,
    file: FileId,
    value: &Spanned<String>,
) -> Option<DemoFailure> {
    let text = value.get_ref().as_str();
    match text {
        "never-ready" => Some(DemoFailure::NeverReady),
        "exit" => Some(DemoFailure::Exit),
        _ => match text.strip_prefix("crash-after:") {
            Some(after) => {
                let after = Spanned::new(value.span(), after.to_owned());
                resolver
                    .duration(file, &after, "`crash-after`")
                    .map(DemoFailure::CrashAfter)
            }
            None => {
                resolver.report(
                    Problem::new(format!("unknown demo failure `{text}`"))
                        .at(Place::new(file, value.span()), "not a failure mode")
                        .help("use `never-ready`, `exit` or `crash-after:<duration>` such as `crash-after:2s`"),
                );
                None
            }
        },
    }
}

fn resolve_ranges(loaded: &Loaded, resolver: &mut Resolver<'_>) -> Vec<PortRange> {
    let Some((file, raw)) = &loaded.platform else {
        return Vec::new();
    };
    let mut ranges = Vec::new();
    for range in &raw.ranges {
        let place = Place::new(*file, range.ports.span());
        let bounds = range
            .ports
            .get_ref()
            .split_once('-')
            .and_then(|(first, last)| {
                Some((
                    first.trim().parse::<i64>().ok()?,
                    last.trim().parse::<i64>().ok()?,
                ))
            });
        let Some((first, last)) = bounds else {
            resolver.report(
                Problem::new(format!("invalid port range `{}`", range.ports.get_ref()))
                    .at(place, "expected `FIRST-LAST`")
                    .help("write a range as `\"3000-3099\"`"),
            );
            continue;
        };
        let (Some(first), Some(last)) = (
            resolver.port_number(first, &place, range.name.get_ref()),
            resolver.port_number(last, &place, range.name.get_ref()),
        ) else {
            continue;
        };
        if first > last {
            resolver.report(
                Problem::new(format!("port range `{}` is empty", range.ports.get_ref()))
                    .at(place, "the first port is above the last")
                    .help("write the lower port first"),
            );
            continue;
        }
        ranges.push(PortRange {
            name: range.name.get_ref().clone(),
            first,
            last,
            categories: range
                .categories
                .iter()
                .map(|category| category.get_ref().clone())
                .collect(),
            description: range.description.clone(),
        });
    }
    ranges
}

struct ResolvedPhases<'a> {
    resolved: Vec<Phase>,
    /// Each valid phase file with its number, for membership checks.
    listed: Vec<(PhaseNumber, FileId, &'a super::raw::RawPhaseFile)>,
}

fn resolve_phases<'a>(
    loaded: &'a Loaded,
    by_name: &HashMap<&str, &ServiceDeclaration>,
    names: &[&str],
    resolver: &mut Resolver<'_>,
) -> ResolvedPhases<'a> {
    let mut seen: BTreeMap<PhaseNumber, Place> = BTreeMap::new();
    let mut resolved = Vec::new();
    let mut listed = Vec::new();
    for (file, phase) in &loaded.phases {
        let place = Place::new(*file, phase.phase.span());
        let number = *phase.phase.get_ref();
        let Some(number) = u8::try_from(number)
            .ok()
            .filter(|number| PHASES.contains(number))
        else {
            resolver.report(
                Problem::new(format!("phase number {number} is not between 1 and 4"))
                    .at(place, "not a phase number")
                    .help("a platform has exactly four phases, numbered 1 to 4"),
            );
            continue;
        };
        if let Some(first) = seen.get(&number) {
            resolver.report(
                Problem::new(format!("phase {number} is defined twice"))
                    .at(place, "defined again here")
                    .at(first.clone(), "first defined here")
                    .help("each phase number appears in exactly one file under `phases/`"),
            );
            continue;
        }
        seen.insert(number, place);
        let on_failure = match phase
            .on_failure
            .as_ref()
            .map(|value| value.get_ref().as_str())
        {
            None | Some("halt") => FailurePolicy::Halt,
            Some("rollback") => FailurePolicy::Rollback,
            Some(other) => {
                let value = phase.on_failure.as_ref().expect("matched Some");
                resolver.report(
                    Problem::new(format!(
                        "unknown failure policy `{other}` in phase {number}"
                    ))
                    .at(
                        Place::new(*file, value.span()),
                        "expected `halt` or `rollback`",
                    )
                    .suggest(other, POLICIES),
                );
                FailurePolicy::Halt
            }
        };
        let mut services = Vec::new();
        for entry in &phase.services {
            let name = entry.get_ref().as_str();
            match by_name.get(name) {
                None => resolver.report(
                    Problem::new(format!("phase {number} lists unknown service `{name}`"))
                        .at(Place::new(*file, entry.span()), "no such service")
                        .suggest(name, names.iter().copied()),
                ),
                Some(declaration) => {
                    if let Some(kind) = declaration
                        .raw
                        .kind
                        .as_ref()
                        .map(|kind| kind.get_ref().as_str())
                        && kind != "service"
                        && KINDS.contains(&kind)
                    {
                        resolver.report(
                            Problem::new(format!("phase {number} lists `{name}`, which is {kind}"))
                                .at(Place::new(*file, entry.span()), "not a platform service")
                                .at(Place::new(declaration.file, declaration.name.span()), format!("declared as {kind} here"))
                                .help("infrastructure starts on demand and externals are never started: remove it from the phase"),
                        );
                    }
                    services.push(ServiceName::new(name));
                }
            }
        }
        resolved.push(Phase {
            number,
            name: phase.name.get_ref().clone(),
            description: phase.description.clone(),
            services,
            on_failure,
        });
        listed.push((number, *file, phase));
    }
    for number in PHASES {
        if !seen.contains_key(&number) {
            resolver.report(
                Problem::new(format!("phase {number} is missing"))
                    .help(format!("add `phases/{number}-<name>.toml` with `phase = {number}`, a `name` and its `services`")),
            );
        }
    }
    resolved.sort_by_key(|phase| phase.number);
    ResolvedPhases { resolved, listed }
}

/// A timing key of a health check: its name, how to read it, where it goes.
type TimingField = (
    &'static str,
    fn(&RawHealth) -> Option<&Spanned<String>>,
    fn(&mut HealthTiming) -> &mut Duration,
);

/// Where each part of a resolved service was written, for problems found across services.
struct ServicePlaces {
    name: Place,
    ports: Vec<Place>,
    dependencies: HashMap<String, Place>,
}

fn resolve_service(
    merged: &Merged<'_>,
    phase: Option<PhaseNumber>,
    demo: Option<(DemoBehaviour, String)>,
    ranges: &[PortRange],
    resolver: &mut Resolver<'_>,
) -> Option<(Service, ServicePlaces)> {
    let name = merged.base.name.get_ref().clone();

    let kind = match merged.field(|raw| raw.kind.as_ref()) {
        None => ServiceKind::Service,
        Some(kind) => match kind.value.get_ref().as_str() {
            "service" => ServiceKind::Service,
            "infrastructure" => ServiceKind::Infrastructure,
            "external" => ServiceKind::External,
            other => {
                // Not knowing its kind, do not also say it is in no phase.
                resolver.invalid_kinds.insert(name.clone());
                resolver.report(
                    Problem::new(format!("unknown kind `{other}` of service `{name}`"))
                        .at(
                            kind.place(),
                            "expected `service`, `infrastructure` or `external`",
                        )
                        .suggest(other, KINDS),
                );
                ServiceKind::Service
            }
        },
    };

    let secrets: BTreeSet<String> = merged
        .field(|raw| raw.secrets.as_ref())
        .map(|secrets| {
            secrets
                .value
                .get_ref()
                .iter()
                .map(|secret| secret.get_ref().clone())
                .collect()
        })
        .unwrap_or_default();

    let image = match merged.field(|raw| raw.image.as_ref()) {
        Some(image) => {
            let resolved = resolver.interpolate(
                image.file,
                image.value,
                &BTreeSet::new(),
                &format!("the image of `{name}`"),
            );
            // No secret can be in an image: `$$` becomes `$` now.
            Some(resolved.replace("$$", "$"))
        }
        None if kind == ServiceKind::External => None,
        None => {
            resolver.report(
                Problem::new(format!("service `{name}` has no `image`"))
                    .at(merged.name_place(), "needs an image")
                    .help("add `image = \"<repository>:<tag>\"`, or `kind = \"external\"` if `rollout` must not start it"),
            );
            None
        }
    };

    let mut ports = Vec::new();
    let mut port_places = Vec::new();
    if let Some(raw_ports) = merged.field(|raw| raw.ports.as_ref()) {
        for raw_port in raw_ports.value.get_ref() {
            if let Some(port) = resolver.port(raw_port, raw_ports.file, &name) {
                ports.push(port);
                port_places.push(Place::new(raw_ports.file, raw_port.span()));
            }
        }
    }

    let mut depends_on = Vec::new();
    let mut dependency_places = HashMap::new();
    if let Some(dependencies) = merged.field(|raw| raw.depends_on.as_ref()) {
        for dependency in dependencies.value.get_ref() {
            let dependency_name = dependency.get_ref().clone();
            if dependency_places
                .insert(
                    dependency_name.clone(),
                    Place::new(dependencies.file, dependency.span()),
                )
                .is_none()
            {
                depends_on.push(ServiceName::new(dependency_name));
            }
        }
    }

    let mut env = BTreeMap::new();
    let env_tables = [Some(merged.base), merged.overlay];
    for declaration in env_tables.into_iter().flatten() {
        for (key, value) in declaration.raw.env.iter().flatten() {
            let what = format!("env `{key}` of `{name}`");
            let resolved = resolver.interpolate(declaration.file, value, &secrets, &what);
            env.insert(key.clone(), EnvTemplate(resolved));
        }
    }

    let range_exempt = merged
        .field(|raw| raw.range_exempt.as_ref())
        .and_then(|reason| {
            if reason.value.get_ref().trim().is_empty() {
                resolver.report(
                    Problem::new(format!("`range_exempt` of `{name}` gives no reason"))
                        .at(reason.place(), "empty")
                        .help("say why the port may sit outside its category's range"),
                );
                None
            } else {
                Some(reason.value.get_ref().clone())
            }
        });
    let category = merged
        .field(|raw| raw.category.as_ref())
        .map(|c| c.value.get_ref().clone());
    if range_exempt.is_none() {
        check_ranges(
            &name,
            category.as_deref(),
            &ports,
            &port_places,
            merged,
            ranges,
            resolver,
        );
    }

    let health = resolve_health(merged, &name, kind, &ports, demo.is_some(), resolver);
    let command = merged
        .field(|raw| raw.command.as_ref())
        .map(|command| command.value.get_ref().clone());

    // A service with problems is still built, as far as it goes, so that the checks
    // across services (ports, dependencies, cycles) see it; no `Config` is returned then.
    let health = health.unwrap_or(HealthCheck {
        probe: Probe::Docker,
        timing: HealthTiming::default(),
    });
    let mut service = Service {
        name: ServiceName::new(name),
        title: merged.field(|raw| raw.title.as_ref()).map_or_else(
            || merged.base.name.get_ref().clone(),
            |t| t.value.get_ref().clone(),
        ),
        description: merged
            .field(|raw| raw.description.as_ref())
            .map(|d| d.value.get_ref().clone()),
        kind,
        category,
        image,
        ports,
        depends_on,
        env,
        secrets,
        range_exempt,
        health,
        command,
        phase,
        demo: None,
    };
    if let Some((behaviour, image)) = demo {
        demo::stand_in(&mut service, behaviour, &image);
    }
    Some((
        service,
        ServicePlaces {
            name: merged.name_place(),
            ports: port_places,
            dependencies: dependency_places,
        },
    ))
}

fn check_ranges(
    name: &str,
    category: Option<&str>,
    ports: &[PortMapping],
    port_places: &[Place],
    merged: &Merged<'_>,
    ranges: &[PortRange],
    resolver: &mut Resolver<'_>,
) {
    if ports.is_empty() {
        return;
    }
    let Some(category) = category else {
        resolver.report(
            Problem::new(format!("service `{name}` publishes ports but has no `category`"))
                .at(merged.name_place(), "no category")
                .help("add a `category` that a `[[ranges]]` entry lists, or `range_exempt = \"<reason>\"`"),
        );
        return;
    };
    let own: Vec<&PortRange> = ranges
        .iter()
        .filter(|range| range.categories.iter().any(|c| c == category))
        .collect();
    let category_place = merged.field(|raw| raw.category.as_ref()).map(|c| c.place());
    if own.is_empty() {
        let all: BTreeSet<&str> = ranges
            .iter()
            .flat_map(|range| range.categories.iter().map(String::as_str))
            .collect();
        let problem = Problem::new(format!(
            "category `{category}` of `{name}` is in no reserved range"
        ))
        .at(
            category_place.unwrap_or_else(|| merged.name_place()),
            "no `[[ranges]]` entry lists it",
        );
        let problem = match suggestion(category, all.iter().copied()) {
            Some(close) => problem.help(format!("did you mean `{close}`? otherwise add it to a range, or set `range_exempt = \"<reason>\"`")),
            None => problem.help("add it to a `[[ranges]]` entry's `categories`, or set `range_exempt = \"<reason>\"`"),
        };
        resolver.report(problem);
        return;
    }
    let described: Vec<String> = own
        .iter()
        .map(|range| format!("{} {}-{}", range.name, range.first, range.last))
        .collect();
    for (port, place) in ports.iter().zip(port_places) {
        if !own.iter().any(|range| range.contains(port.host)) {
            resolver.report(
                Problem::new(format!(
                    "port {} of `{name}` is outside the reserved range of category `{category}` ({})",
                    port.host,
                    described.join(", ")
                ))
                .at(place.clone(), "outside the range")
                .help("move the port into the range, or set `range_exempt = \"<reason>\"` on the service"),
            );
        }
    }
}

fn resolve_health(
    merged: &Merged<'_>,
    name: &str,
    kind: ServiceKind,
    ports: &[PortMapping],
    demo: bool,
    resolver: &mut Resolver<'_>,
) -> Option<HealthCheck> {
    let Some(health) = merged.field(|raw| raw.health.as_ref()) else {
        resolver.report(
            Problem::new(format!("service `{name}` has no health check"))
                .at(merged.name_place(), "needs `health`")
                .help("add `health = { http = \"/health\" }`, `{ tcp = true }`, `{ cmd = [...] }` or `{ docker = true }`"),
        );
        return None;
    };
    let file = health.file;
    // The overlay's health table replaces the probe when it names one, and each timing
    // field it sets; everything else comes from the base.
    let base = merged.base.raw.health.as_ref().map(Spanned::get_ref);
    let overlay = merged
        .overlay
        .and_then(|overlay| overlay.raw.health.as_ref())
        .map(Spanned::get_ref);
    let overlay_has_probe = overlay.is_some_and(|overlay| {
        overlay.http.is_some()
            || overlay.tcp.is_some()
            || overlay.cmd.is_some()
            || overlay.docker.is_some()
    });
    let probe_source: &RawHealth = if overlay_has_probe {
        overlay.expect("checked")
    } else {
        base.unwrap_or(health.value.get_ref())
    };
    let timing_field = |get: fn(&RawHealth) -> Option<&Spanned<String>>| {
        overlay
            .and_then(get)
            .map(|value| (merged.overlay.expect("overlay").file, value))
            .or_else(|| base.and_then(get).map(|value| (merged.base.file, value)))
    };

    let mut probes = Vec::new();
    if let Some(http) = &probe_source.http {
        let paths = match http.get_ref() {
            RawPaths::One(path) => vec![path.clone()],
            RawPaths::Many(paths) => paths.clone(),
        };
        if paths.is_empty() || paths.iter().any(|path| !path.starts_with('/')) {
            resolver.report(
                Problem::new(format!("invalid HTTP health path of `{name}`"))
                    .at(
                        Place::new(file, http.span()),
                        "each path must start with `/`",
                    )
                    .help("write `http = \"/health\"` or `http = [\"/health\", \"/\"]`"),
            );
        }
        probes.push((Probe::Http { paths }, http.span()));
    }
    if let Some(tcp) = &probe_source.tcp {
        match tcp.get_ref() {
            RawTcp::Enabled(true) => probes.push((Probe::Tcp { target: None }, tcp.span())),
            RawTcp::Enabled(false) => resolver.report(
                Problem::new(format!("`tcp = false` in the health check of `{name}`"))
                    .at(Place::new(file, tcp.span()), "not a check")
                    .help("use `tcp = true` to connect to the first host port, or `tcp = \"host:port\"`"),
            ),
            RawTcp::Target(target) => {
                let parsed = target
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok().filter(|p| *p > 0)?)))
                    .filter(|(host, _)| !host.is_empty());
                match parsed {
                    Some((host, port)) => probes.push((Probe::Tcp { target: Some(TcpTarget { host, port }) }, tcp.span())),
                    None => resolver.report(
                        Problem::new(format!("invalid TCP target `{target}` of `{name}`"))
                            .at(Place::new(file, tcp.span()), "expected `host:port`")
                            .help("write `tcp = \"api.example.com:443\"`, or `tcp = true` for the service's first host port"),
                    ),
                }
            }
        }
    }
    if let Some(command) = &probe_source.cmd {
        if command.get_ref().is_empty() {
            resolver.report(
                Problem::new(format!("empty health command of `{name}`"))
                    .at(Place::new(file, command.span()), "no command")
                    .help("write `cmd = [\"pg_isready\", \"-U\", \"postgres\"]`"),
            );
        }
        probes.push((
            Probe::Cmd {
                command: command.get_ref().clone(),
            },
            command.span(),
        ));
    }
    if let Some(docker) = &probe_source.docker
        && *docker.get_ref()
    {
        probes.push((Probe::Docker, docker.span()));
    }

    let mut timing = HealthTiming::default();
    let fields: [TimingField; 5] = [
        (
            "start_period",
            |h| h.start_period.as_ref(),
            |t| &mut t.start_period,
        ),
        ("interval", |h| h.interval.as_ref(), |t| &mut t.interval),
        (
            "max_interval",
            |h| h.max_interval.as_ref(),
            |t| &mut t.max_interval,
        ),
        ("timeout", |h| h.timeout.as_ref(), |t| &mut t.timeout),
        (
            "attempt_timeout",
            |h| h.attempt_timeout.as_ref(),
            |t| &mut t.attempt_timeout,
        ),
    ];
    for (key, get, slot) in fields {
        if let Some((file, value)) = timing_field(get)
            && let Some(duration) = resolver.duration(file, value, &format!("`{key}` of `{name}`"))
        {
            *slot(&mut timing) = duration;
        }
    }
    if timing.interval > timing.max_interval {
        timing.max_interval = timing.interval;
    }

    match probes.len() {
        0 => {
            resolver.report(
                Problem::new(format!("the health check of `{name}` names no probe"))
                    .at(
                        health.place(),
                        "needs one of `http`, `tcp`, `cmd`, `docker`",
                    )
                    .help(
                        "add `http = \"/health\"`, `tcp = true`, `cmd = [...]` or `docker = true`",
                    ),
            );
            None
        }
        1 => {
            let (probe, span) = probes.pop().expect("one probe");
            let needs_port = matches!(probe, Probe::Http { .. } | Probe::Tcp { target: None });
            if needs_port && ports.is_empty() && !(demo && kind == ServiceKind::External) {
                resolver.report(
                    Problem::new(format!(
                        "the health check of `{name}` probes its host port, but it has none"
                    ))
                    .at(Place::new(file, span), "needs a host port")
                    .help("add `ports`, or use a `cmd` or `docker` check"),
                );
                return None;
            }
            Some(HealthCheck { probe, timing })
        }
        _ => {
            let mut problem = Problem::new(format!(
                "the health check of `{name}` names {} probes",
                probes.len()
            ));
            for (_, span) in &probes {
                problem = problem.at(Place::new(file, span.clone()), "a probe");
            }
            resolver.report(problem.help("keep exactly one of `http`, `tcp`, `cmd`, `docker`"));
            None
        }
    }
}

fn check_membership(
    services: &[Service],
    phase_of: &HashMap<&str, (PhaseNumber, Place)>,
    places: &HashMap<&str, ServicePlaces>,
    resolver: &mut Resolver<'_>,
) {
    for service in services {
        if service.kind == ServiceKind::Service
            && !phase_of.contains_key(service.name.as_str())
            && !resolver.invalid_kinds.contains(service.name.as_str())
        {
            resolver.report(
                Problem::new(format!("service `{}` is in no phase", service.name))
                    .at(places[service.name.as_str()].name.clone(), "not listed in any `phases/*.toml`")
                    .help("add it to the `services` of one phase, or make it `kind = \"infrastructure\"`"),
            );
        }
    }
}

/// Every container joins the network as `<platform>-<service>` and with the alias
/// `<service>`: a service named like another's container makes that name ambiguous.
fn check_network_names(
    platform: &str,
    services: &[Service],
    places: &HashMap<&str, ServicePlaces>,
    resolver: &mut Resolver<'_>,
) {
    let names: BTreeSet<&str> = services
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    for service in services {
        if let Some(other) = service.name.as_str().strip_prefix(&format!("{platform}-"))
            && names.contains(other)
        {
            resolver.report(
                Problem::new(format!(
                    "service `{}` has the container name of `{other}`",
                    service.name
                ))
                .at(
                    places[service.name.as_str()].name.clone(),
                    "ambiguous on the platform network",
                )
                .at(
                    places[other].name.clone(),
                    format!("its container is `{platform}-{other}`"),
                )
                .help(format!(
                    "rename `{}`: on the network, `{}` would mean two containers",
                    service.name, service.name
                )),
            );
        }
    }
}

fn check_host_ports(
    services: &[Service],
    places: &HashMap<&str, ServicePlaces>,
    resolver: &mut Resolver<'_>,
) {
    let mut claimed: HashMap<u16, (&ServiceName, &Place)> = HashMap::new();
    for service in services {
        let service_places = &places[service.name.as_str()];
        for (port, place) in service.ports.iter().zip(&service_places.ports) {
            match claimed.get(&port.host) {
                Some((owner, first)) => resolver.report(
                    Problem::new(format!("host port {} is claimed by both `{owner}` and `{}`", port.host, service.name))
                        .at(place.clone(), format!("claimed by `{}`", service.name))
                        .at((*first).clone(), format!("first claimed by `{owner}`"))
                        .help("give one of them another host port (`\"HOST:CONTAINER\"` maps a different host port)"),
                ),
                None => {
                    claimed.insert(port.host, (&service.name, place));
                }
            }
        }
    }
}

fn check_dependencies(
    services: &[Service],
    places: &HashMap<&str, ServicePlaces>,
    names: &[&str],
    resolver: &mut Resolver<'_>,
) {
    let by_name: HashMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    for service in services {
        let service_places = &places[service.name.as_str()];
        for dependency in &service.depends_on {
            let place = service_places.dependencies[dependency.as_str()].clone();
            let Some(target) = by_name.get(dependency.as_str()) else {
                if !names.contains(&dependency.as_str()) {
                    resolver.report(
                        Problem::new(format!(
                            "`{}` depends on unknown service `{dependency}`",
                            service.name
                        ))
                        .at(place, "no such service")
                        .suggest(dependency.as_str(), names.iter().copied()),
                    );
                }
                continue;
            };
            match (service.kind, target.kind) {
                (ServiceKind::External, _) => resolver.report(
                    Problem::new(format!(
                        "external `{}` cannot depend on anything",
                        service.name
                    ))
                    .at(place.clone(), "externals are never started")
                    .help("remove `depends_on` from the external service"),
                ),
                (ServiceKind::Infrastructure, ServiceKind::Service) => resolver.report(
                    Problem::new(format!(
                        "infrastructure `{}` depends on platform service `{dependency}`",
                        service.name
                    ))
                    .at(
                        place.clone(),
                        "infrastructure starts before the phases' services",
                    )
                    .help("infrastructure may depend only on infrastructure and externals"),
                ),
                _ => {}
            }
            if let (Some(own), Some(theirs)) = (service.phase, target.phase)
                && theirs > own
            {
                resolver.report(
                    Problem::new(format!(
                        "`{}` (phase {own}) depends on `{dependency}` of phase {theirs}, a later phase",
                        service.name
                    ))
                    .at(place, format!("`{dependency}` is deployed in phase {theirs}"))
                    .help(format!("move `{dependency}` to phase {own} or earlier, or `{}` to phase {theirs} or later", service.name)),
                );
            }
        }
    }
    let graph = DependencyGraph::new(services.iter().map(|s| (&s.name, s.depends_on.as_slice())));
    for cycle in graph.cycles() {
        let first = &cycle.0[0];
        let next = &cycle.0[1 % cycle.0.len()];
        let place = places[first.as_str()].dependencies[next.as_str()].clone();
        let mut problem = Problem::new(format!("dependency cycle: {cycle}"))
            .at(place, format!("`{first}` depends on `{next}`"));
        for (position, member) in cycle.0.iter().enumerate().skip(1) {
            let following = &cycle.0[(position + 1) % cycle.0.len()];
            problem = problem.at(
                places[member.as_str()].dependencies[following.as_str()].clone(),
                format!("`{member}` depends on `{following}`"),
            );
        }
        resolver.report(problem.help("remove one of these dependencies to break the cycle"));
    }
}
