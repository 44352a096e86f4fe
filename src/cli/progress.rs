//! The reporters: live progress bars on a terminal (indicatif), timestamped plain lines
//! without one, NDJSON events with `--output json`. Only this file knows indicatif.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use rollout::exec::{Event, Reporter, ServiceState};
use rollout::model::ServiceName;

/// Picks the reporter for the output format and the terminal.
pub fn reporter(json: bool, progress: bool, quiet: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(JsonLines)
    } else if progress && !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Box::new(Bars::new())
    } else {
        Box::new(PlainLines { quiet })
    }
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// `--output json`: one object per event on stdout, with a timestamp.
pub struct JsonLines;

impl Reporter for JsonLines {
    fn report(&self, event: &Event) {
        let mut value = serde_json::to_value(event).expect("events serialize");
        if let Some(object) = value.as_object_mut() {
            object.insert("ts_ms".to_owned(), serde_json::json!(now_millis()));
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{value}");
        let _ = stdout.flush();
    }
}

/// The text of a service state, shared by the bars and the plain lines.
fn state_text(state: &ServiceState) -> String {
    match state {
        ServiceState::Waiting => "waiting for dependencies".to_owned(),
        ServiceState::Replacing => "setting the old container aside".to_owned(),
        ServiceState::Creating => "creating".to_owned(),
        ServiceState::Starting => "starting".to_owned(),
        ServiceState::Checking { attempt: 0, .. } => "checking health".to_owned(),
        ServiceState::Checking {
            attempt,
            last_output,
        } => format!(
            "checking health (attempt {attempt}: {})",
            last_output.as_deref().unwrap_or("not ready")
        ),
        ServiceState::Healthy {
            attempts,
            time_to_healthy_ms,
        } => {
            format!(
                "healthy in {time_to_healthy_ms} ms ({attempts} attempt{})",
                if *attempts == 1 { "" } else { "s" }
            )
        }
        ServiceState::Failed { failure } => format!("FAILED: {failure}"),
        ServiceState::Skipped => "not started".to_owned(),
        ServiceState::RollingBack => "rolling back".to_owned(),
        ServiceState::RolledBack => "rolled back".to_owned(),
    }
}

/// Without a terminal: a timestamped line per change that matters (not every attempt).
pub struct PlainLines {
    quiet: bool,
}

impl PlainLines {
    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let millis = now_millis();
        let seconds = (millis / 1000) % 86_400;
        let _ = writeln!(
            std::io::stderr().lock(),
            "{:02}:{:02}:{:02}.{:03} {text}",
            seconds / 3600,
            (seconds / 60) % 60,
            seconds % 60,
            millis % 1000
        );
    }
}

impl Reporter for PlainLines {
    fn report(&self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                platform,
                environment,
                engine,
            } => {
                self.line(&format!("run {run_id}: platform `{platform}`, environment `{environment}`, engine {engine}"));
            }
            Event::PhaseStarted {
                phase,
                name,
                services,
                ..
            } => {
                self.line(&format!(
                    "phase {phase} ({name}): {} services",
                    services.len()
                ));
            }
            Event::NetworkCreated { network } => self.line(&format!("created network `{network}`")),
            Event::ImagePull { image, status, .. }
                if status.starts_with("Pulling from") || status.starts_with("Status") =>
            {
                self.line(&format!("pull {image}: {status}"));
            }
            Event::ImagePull { .. } => {}
            Event::ImageBuilt { image } => self.line(&format!("built image `{image}`")),
            Event::Service {
                phase,
                service,
                action,
                state,
                ..
            } => match state {
                ServiceState::Waiting => {}
                ServiceState::Checking { attempt, .. }
                    if *attempt > 0 && !attempt.is_power_of_two() => {}
                _ => self.line(&format!(
                    "phase {phase}: {service} [{}] {}",
                    action.as_str(),
                    state_text(state)
                )),
            },
            Event::PhaseFinished {
                phase,
                elapsed_ms,
                started,
                kept,
            } => {
                self.line(&format!(
                    "phase {phase} done in {elapsed_ms} ms: {started} started, {kept} kept"
                ));
            }
            Event::RunFailed { report } => self.line(&format!(
                "phase {}: `{}` failed",
                report.phase, report.service
            )),
            Event::RollbackFinished {
                phase,
                restored,
                removed,
                problems,
            } => self.line(&format!(
                "phase {phase} rolled back: {} removed, {} restored{}",
                removed.len(),
                restored.len(),
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(", {} problems", problems.len())
                }
            )),
            Event::Interrupted { phase } => self.line(&format!("phase {phase} interrupted")),
            Event::RollbackStarted { phase } => {
                self.line(&format!("phase {phase}: rolling back this run's changes"))
            }
            Event::ContainerCreated { .. } | Event::SetAside { .. } => {}
            Event::RunFinished { elapsed_ms } => self.line(&format!("done in {elapsed_ms} ms")),
        }
    }
}

/// On a terminal: one live line per service with its state, elapsed time and attempts.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<ServiceName, ProgressBar>>,
    style: ProgressStyle,
    done: ProgressStyle,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        Self {
            multi,
            bars: Mutex::new(HashMap::new()),
            style: ProgressStyle::with_template(
                "{spinner:.cyan} {prefix:<28} {elapsed:>4} {wide_msg}",
            )
            .expect("a valid template"),
            done: ProgressStyle::with_template("  {prefix:<28} {elapsed:>4} {wide_msg}")
                .expect("a valid template"),
        }
    }

    fn message(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}

impl Reporter for Bars {
    fn report(&self, event: &Event) {
        match event {
            Event::PhaseStarted {
                phase,
                name,
                services,
                ..
            } => {
                self.message(&format!("phase {phase}: {name}"));
                let mut bars = self.bars.lock().expect("not poisoned");
                for service in services {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(self.style.clone());
                    bar.set_prefix(service.to_string());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bars.insert(service.clone(), bar);
                }
            }
            Event::Service {
                service,
                action,
                state,
                ..
            } => {
                let bars = self.bars.lock().expect("not poisoned");
                if let Some(bar) = bars.get(service) {
                    bar.set_message(format!("{:<20} {}", action.as_str(), state_text(state)));
                    let finished = matches!(
                        state,
                        ServiceState::Healthy { .. }
                            | ServiceState::Failed { .. }
                            | ServiceState::Skipped
                            | ServiceState::RolledBack
                    );
                    if finished {
                        bar.set_style(self.done.clone());
                        bar.finish();
                    } else if bar.is_finished() {
                        bar.set_style(self.style.clone());
                        bar.reset_elapsed();
                        bar.enable_steady_tick(Duration::from_millis(100));
                    }
                }
            }
            Event::PhaseFinished {
                phase, elapsed_ms, ..
            } => {
                self.bars.lock().expect("not poisoned").clear();
                self.message(&format!("phase {phase} done in {elapsed_ms} ms"));
            }
            Event::NetworkCreated { network } => {
                self.message(&format!("created network `{network}`"))
            }
            Event::ImageBuilt { image } => self.message(&format!("built image `{image}`")),
            Event::ImagePull {
                image,
                status,
                current,
                total,
            } => {
                if let (Some(current), Some(total)) = (current, total) {
                    let _ = self
                        .multi
                        .println(format!("pull {image}: {status} {current}/{total}"));
                }
            }
            Event::Interrupted { phase } => self.message(&format!("phase {phase} interrupted")),
            Event::RollbackStarted { phase } => {
                self.message(&format!("phase {phase}: rolling back this run's changes"));
            }
            Event::ContainerCreated { .. }
            | Event::SetAside { .. }
            | Event::RunStarted { .. }
            | Event::RunFailed { .. }
            | Event::RollbackFinished { .. }
            | Event::RunFinished { .. } => {}
        }
    }
}
