//! Read-only views of a configuration: the port allocation table, the generated
//! `docs/ports.md`, and the dependency graph as DOT or Mermaid.
//!
//! Pure: each function turns a [`Config`] into data or text. Printing is the CLI's job.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{Config, PhaseNumber, PortRange, Service, ServiceKind};

/// Where a host port stands against the reserved ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "kebab-case")]
pub enum RangeStatus {
    /// Inside a range reserved for the service's category (the range's name).
    InRange(String),
    /// Outside, with the service's `range_exempt` reason.
    Exempt(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortEntry {
    pub port: u16,
    pub container_port: u16,
    pub service: String,
    pub title: String,
    pub description: Option<String>,
    pub kind: ServiceKind,
    pub category: Option<String>,
    pub phase: Option<PhaseNumber>,
    pub range: RangeStatus,
    /// Topics of the source-document conflicts that concern this port.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortGroup {
    /// The reserved range's name, or `None` for ports outside every range.
    pub range: Option<String>,
    pub title: String,
    pub entries: Vec<PortEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeUsage {
    pub name: String,
    pub ports: String,
    pub categories: Vec<String>,
    pub description: Option<String>,
    pub used: usize,
    pub size: usize,
}

/// The port allocation table, grouped by reserved range as the seed guide groups it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortsReport {
    pub platform: String,
    pub groups: Vec<PortGroup>,
    pub ranges: Vec<RangeUsage>,
    pub conflicts: Vec<crate::model::Reconciliation>,
}

fn range_status(service: &Service, port: u16, ranges: &[PortRange]) -> RangeStatus {
    let own = ranges.iter().find(|range| {
        range.contains(port)
            && service
                .category
                .as_ref()
                .is_some_and(|category| range.categories.contains(category))
    });
    match (own, &service.range_exempt) {
        (Some(range), _) => RangeStatus::InRange(range.name.clone()),
        (None, Some(reason)) => RangeStatus::Exempt(reason.clone()),
        // A valid config has no other case; say what it is anyway.
        (None, None) => RangeStatus::Exempt("outside every reserved range".to_owned()),
    }
}

pub fn ports(config: &Config) -> PortsReport {
    let mut entries: Vec<PortEntry> = config
        .services()
        .iter()
        .flat_map(|service| {
            service.ports.iter().map(move |port| PortEntry {
                port: port.host,
                container_port: port.container,
                service: service.name.to_string(),
                title: service.title.clone(),
                description: service.description.clone(),
                kind: service.kind,
                category: service.category.clone(),
                phase: service.phase,
                range: range_status(service, port.host, &config.ranges),
                conflicts: config
                    .reconciliations
                    .iter()
                    .filter(|conflict| conflict.ports.contains(&port.host))
                    .map(|conflict| conflict.topic.clone())
                    .collect(),
            })
        })
        .collect();
    entries.sort_by_key(|entry| entry.port);

    let mut groups: Vec<PortGroup> = config
        .ranges
        .iter()
        .map(|range| PortGroup {
            range: Some(range.name.clone()),
            title: format!(
                "{} ({}-{})",
                range
                    .description
                    .clone()
                    .unwrap_or_else(|| range.name.clone()),
                range.first,
                range.last
            ),
            entries: Vec::new(),
        })
        .collect();
    let mut outside = PortGroup {
        range: None,
        title: "Outside the reserved ranges".to_owned(),
        entries: Vec::new(),
    };
    for entry in entries {
        let group = match &entry.range {
            RangeStatus::InRange(name) => groups
                .iter_mut()
                .find(|group| group.range.as_deref() == Some(name)),
            RangeStatus::Exempt(_) => None,
        };
        match group {
            Some(group) => group.entries.push(entry),
            None => outside.entries.push(entry),
        }
    }
    groups.push(outside);

    let ranges = config
        .ranges
        .iter()
        .map(|range| RangeUsage {
            name: range.name.clone(),
            ports: format!("{}-{}", range.first, range.last),
            categories: range.categories.clone(),
            description: range.description.clone(),
            used: config
                .services()
                .iter()
                .flat_map(|service| service.ports.iter())
                .filter(|port| range.contains(port.host))
                .count(),
            size: usize::from(range.last - range.first) + 1,
        })
        .collect();

    PortsReport {
        platform: config.platform.name.clone(),
        groups,
        ranges,
        conflicts: config.reconciliations.clone(),
    }
}

fn phase_text(phase: Option<PhaseNumber>, kind: ServiceKind) -> String {
    match phase {
        Some(number) => number.to_string(),
        None => match kind {
            ServiceKind::Infrastructure => "on demand".to_owned(),
            _ => "-".to_owned(),
        },
    }
}

fn range_text(status: &RangeStatus) -> String {
    match status {
        RangeStatus::InRange(name) => format!("in {name}"),
        RangeStatus::Exempt(reason) => format!("exempt: {reason}"),
    }
}

fn port_text(entry: &PortEntry) -> String {
    if entry.port == entry.container_port {
        entry.port.to_string()
    } else {
        format!("{}:{}", entry.port, entry.container_port)
    }
}

/// The allocation table for a terminal: fixed-width columns, one group after another.
pub fn ports_text(report: &PortsReport) -> String {
    let mut text = String::new();
    for group in report
        .groups
        .iter()
        .filter(|group| !group.entries.is_empty())
    {
        let _ = writeln!(text, "{}", group.title);
        let rows: Vec<[String; 6]> = group
            .entries
            .iter()
            .map(|entry| {
                let mut range = range_text(&entry.range);
                if !entry.conflicts.is_empty() {
                    range.push_str(&format!(" [conflict: {}]", entry.conflicts.join("; ")));
                }
                [
                    port_text(entry),
                    entry.service.clone(),
                    entry.title.clone(),
                    entry.kind.as_str().to_owned(),
                    phase_text(entry.phase, entry.kind),
                    range,
                ]
            })
            .collect();
        text.push_str(&table(
            &["PORT", "SERVICE", "TITLE", "KIND", "PHASE", "RANGE"],
            &rows,
            "  ",
        ));
        text.push('\n');
    }
    let _ = writeln!(text, "Reserved ranges");
    for range in &report.ranges {
        let _ = writeln!(
            text,
            "  {:<16} {:<10} {:>3} of {:>4} used  ({})",
            range.name,
            range.ports,
            range.used,
            range.size,
            range.categories.join(", ")
        );
    }
    if !report.conflicts.is_empty() {
        let _ = writeln!(
            text,
            "\nSource conflicts, resolved in config/platform.toml: {} (see `docs/ports.md`)",
            report.conflicts.len()
        );
        for conflict in &report.conflicts {
            let _ = writeln!(text, "  - {}: {}", conflict.topic, conflict.resolution);
        }
    }
    text
}

/// Left-aligned columns two spaces apart, each line indented by `indent`.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]], indent: &str) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut line = String::from(indent);
        for (column, cell) in cells.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[column]);
        }
        text.push_str(line.trim_end());
        text.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `docs/ports.md`: the port allocation guide, generated from the configuration.
pub fn ports_markdown(config: &Config) -> String {
    let report = ports(config);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# {} port allocation guide\n\n\
         <!-- Generated by `rollout docs` from `config/` and `phases/`. Do not edit: change the \
         configuration and run `rollout docs`; CI runs `rollout docs --check`. -->\n\n\
         Every host port of the platform, grouped by reserved range. The configuration is the \
         single source of truth: `rollout validate` rejects a port claimed twice or outside its \
         category's range, so this page cannot drift from what is deployed.\n",
        config.platform.name
    );
    for group in report
        .groups
        .iter()
        .filter(|group| !group.entries.is_empty())
    {
        let _ = writeln!(text, "## {}\n", group.title);
        let _ = writeln!(
            text,
            "| Port | Service | Title | Kind | Phase | URL | Range |"
        );
        let _ = writeln!(text, "|---|---|---|---|---|---|---|");
        for entry in &group.entries {
            let url = if entry.kind == ServiceKind::Service
                || config.service(&entry.service).is_some_and(|service| {
                    matches!(service.health.probe, crate::model::Probe::Http { .. })
                }) {
                format!("http://localhost:{}", entry.port)
            } else {
                format!("localhost:{}", entry.port)
            };
            let mut range = range_text(&entry.range);
            if !entry.conflicts.is_empty() {
                range.push_str(&format!(" (conflict: {})", entry.conflicts.join("; ")));
            }
            let title = match &entry.description {
                Some(description) => format!("{} — {}", entry.title, description),
                None => entry.title.clone(),
            };
            let _ = writeln!(
                text,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                port_text(entry),
                entry.service,
                markdown_cell(&title),
                entry.kind.as_str(),
                phase_text(entry.phase, entry.kind),
                url,
                markdown_cell(&range)
            );
        }
        text.push('\n');
    }

    let _ = writeln!(text, "## Reserved ranges\n");
    let _ = writeln!(text, "| Range | Ports | Categories | Used | Description |");
    let _ = writeln!(text, "|---|---|---|---|---|");
    for range in &report.ranges {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} of {} | {} |",
            range.name,
            range.ports,
            range.categories.join(", "),
            range.used,
            range.size,
            markdown_cell(range.description.as_deref().unwrap_or(""))
        );
    }

    let _ = writeln!(text, "\n## Deployment phases\n");
    for phase in &config.phases {
        let names: Vec<String> = phase
            .services
            .iter()
            .map(|name| {
                let ports: Vec<String> = config
                    .service(name.as_str())
                    .map(|service| {
                        service
                            .ports
                            .iter()
                            .map(|port| port.host.to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                format!("`{name}` ({})", ports.join(", "))
            })
            .collect();
        let _ = writeln!(
            text,
            "{}. **{}** (on failure: {}): {}",
            phase.number,
            phase.name,
            phase.on_failure.as_str(),
            names.join(", ")
        );
    }
    let infrastructure: Vec<String> = config
        .services()
        .iter()
        .filter(|service| service.kind != ServiceKind::Service)
        .map(|service| format!("`{}`", service.name))
        .collect();
    let _ = writeln!(
        text,
        "\nInfrastructure and externals start on demand, before the first phase that needs them: {}.",
        infrastructure.join(", ")
    );

    if !report.conflicts.is_empty() {
        let _ = writeln!(text, "\n## Conflicts between the source documents\n");
        let _ = writeln!(
            text,
            "The unified port allocation plan and the port allocation guide disagree here; each \
             is resolved in `config/platform.toml` (`[[reconciliation]]`). \
             `docs/seed-reconciliation.md` gives the reasoning.\n"
        );
        let _ = writeln!(text, "| Topic | Plan | Guide | Resolution |");
        let _ = writeln!(text, "|---|---|---|---|");
        for conflict in &report.conflicts {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                markdown_cell(&conflict.topic),
                markdown_cell(conflict.plan.as_deref().unwrap_or("—")),
                markdown_cell(conflict.guide.as_deref().unwrap_or("—")),
                markdown_cell(&conflict.resolution)
            );
        }
    }

    let _ = writeln!(
        text,
        "\n## Dependencies\n\n```mermaid\n{}```",
        graph_mermaid(config)
    );
    let _ = writeln!(
        text,
        "\n## Checking a port\n\n`rollout ports --check` shows, for every port, whether it is \
         free, held by this platform's container, or held by something else (and by whom)."
    );
    text
}

/// The dependency graph in Graphviz DOT: an edge points from a service to what it needs.
pub fn graph_dot(config: &Config) -> String {
    let mut text = format!("digraph \"{}\" {{\n  rankdir=LR;\n", config.platform.name);
    for service in config.services() {
        let shape = match service.kind {
            ServiceKind::Service => "box",
            ServiceKind::Infrastructure => "cylinder",
            ServiceKind::External => "box, style=dashed",
        };
        let phase = service
            .phase
            .map_or_else(String::new, |phase| format!("\\nphase {phase}"));
        let _ = writeln!(
            text,
            "  \"{}\" [shape={shape}, label=\"{}{phase}\"];",
            service.name, service.name
        );
    }
    for service in config.services() {
        for dependency in &service.depends_on {
            let _ = writeln!(text, "  \"{}\" -> \"{dependency}\";", service.name);
        }
    }
    text.push_str("}\n");
    text
}

/// The dependency graph as a Mermaid flowchart, one subgraph per phase.
pub fn graph_mermaid(config: &Config) -> String {
    let id = |name: &str| name.replace(['-', '.'], "_");
    let mut text = String::from("flowchart LR\n");
    for phase in &config.phases {
        let _ = writeln!(
            text,
            "  subgraph phase{}[\"phase {}: {}\"]",
            phase.number, phase.number, phase.name
        );
        for name in &phase.services {
            let _ = writeln!(text, "    {}[\"{name}\"]", id(name.as_str()));
        }
        text.push_str("  end\n");
    }
    for service in config
        .services()
        .iter()
        .filter(|service| service.phase.is_none())
    {
        let node = match service.kind {
            ServiceKind::External => format!("{}>\"{}\"]", id(service.name.as_str()), service.name),
            _ => format!("{}[(\"{}\")]", id(service.name.as_str()), service.name),
        };
        let _ = writeln!(text, "  {node}");
    }
    for service in config.services() {
        for dependency in &service.depends_on {
            let _ = writeln!(
                text,
                "  {} --> {}",
                id(service.name.as_str()),
                id(dependency.as_str())
            );
        }
    }
    text
}
