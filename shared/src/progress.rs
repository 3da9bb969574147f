//! Progress events and how the agents show them.
//!
//! The library reports what it is doing as [`Event`]s through the [`Progress`] trait; the
//! [`Printer`] renders them for the chosen `--output`: a live spinner on a terminal, plain
//! lines on stderr otherwise, or one JSON object per line on stdout. Data (the manifest path,
//! the next command) goes to stdout, progress to stderr, so human output pipes cleanly.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `step` (a step started or found done), `wait` (a poll), `plan` (dry run) or `done`.
    pub event: &'static str,
    pub stage: String,
    pub resource: String,
    pub status: String,
    pub elapsed_secs: u64,
}

impl Event {
    pub fn step(stage: &str, resource: &str, status: &str) -> Self {
        Self::new("step", stage, resource, status, Duration::ZERO)
    }

    pub fn wait(stage: &str, resource: &str, status: &str, elapsed: Duration) -> Self {
        Self::new("wait", stage, resource, status, elapsed)
    }

    pub fn plan(stage: &str, resource: &str, status: &str) -> Self {
        Self::new("plan", stage, resource, status, Duration::ZERO)
    }

    fn new(
        event: &'static str,
        stage: &str,
        resource: &str,
        status: &str,
        elapsed: Duration,
    ) -> Self {
        Self {
            event,
            stage: stage.to_owned(),
            resource: resource.to_owned(),
            status: status.to_owned(),
            elapsed_secs: elapsed.as_secs(),
        }
    }
}

/// Where the library sends its events.
pub trait Progress: Sync {
    fn event(&self, event: &Event);
}

/// Discards events (for callers that only want the result).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Human,
    Json,
}

/// Renders events and results for one run.
pub struct Printer {
    format: OutputFormat,
    spinner: Option<ProgressBar>,
    lock: Mutex<()>,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        let spinner =
            (format == OutputFormat::Human && std::io::stderr().is_terminal()).then(|| {
                let bar = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
        Self {
            format,
            spinner,
            lock: Mutex::new(()),
        }
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Prints the run's result: `text` for people, `json` for machines, always on stdout.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        self.clear();
        let _guard = self.lock.lock();
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) must not turn a finished run into a failure.
        let _ = match self.format {
            OutputFormat::Human => writeln!(out, "{text}"),
            OutputFormat::Json => writeln!(out, "{json}"),
        };
    }

    /// Removes the spinner before an error or a result is printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

fn human_line(event: &Event) -> String {
    let mut line = format!("{}: {}", event.stage, event.resource);
    if !event.status.is_empty() {
        line.push_str(&format!(" ({})", event.status));
    }
    if event.event == "wait" {
        line = format!("[{:>5}s] {line}", event.elapsed_secs);
    } else if event.event == "plan" {
        line = format!("would {line}");
    }
    line
}

impl Progress for Printer {
    fn event(&self, event: &Event) {
        let _guard = self.lock.lock();
        match (self.format, &self.spinner) {
            (OutputFormat::Json, _) => {
                if let Ok(line) = serde_json::to_string(event) {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
            }
            (OutputFormat::Human, Some(bar)) if event.event == "wait" => {
                bar.set_message(human_line(event))
            }
            (OutputFormat::Human, Some(bar)) => bar.println(human_line(event)),
            (OutputFormat::Human, None) => {
                let _ = writeln!(std::io::stderr().lock(), "{}", human_line(event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_people() {
        let wait = Event::wait(
            "copy snapshot",
            "DB snapshot s1",
            "copying",
            Duration::from_secs(42),
        );
        assert_eq!(
            human_line(&wait),
            "[   42s] copy snapshot: DB snapshot s1 (copying)"
        );
        let plan = Event::plan("create key", "alias/rds-handoff/db1", "");
        assert_eq!(human_line(&plan), "would create key: alias/rds-handoff/db1");
    }

    #[test]
    fn json_events_have_stable_fields() {
        let event = Event::wait(
            "copy snapshot",
            "DB snapshot s1",
            "copying",
            Duration::from_secs(3),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "wait", "stage": "copy snapshot", "resource": "DB snapshot s1", "status": "copying", "elapsed_secs": 3})
        );
    }
}
