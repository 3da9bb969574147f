//! Progress events and how the agents show them.
//!
//! The library reports what it is doing as [`Event`]s through the [`Progress`] trait; the
//! [`Printer`] renders them for the chosen `--output`: a live spinner on a terminal, plain
//! lines on stderr otherwise, or one JSON object per line on stdout, each with its `event`, a
//! `timestamp` and the `database` it concerns. Data (the manifest path, the next command) goes
//! to stdout, progress to stderr, so text output pipes cleanly.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `step` (a step started or found done), `wait` (a poll), `plan` (dry run), `warning`.
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

    /// Something the operator should know that does not stop the run.
    pub fn warning(stage: &str, resource: &str, status: &str) -> Self {
        Self::new("warning", stage, resource, status, Duration::ZERO)
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

    /// A resource this run just created (`kind` as in [`crate::base::state`]); recorded in the
    /// run's state file, so `cleanup` finds it whatever happens next.
    fn created(&self, _kind: &str, _id: &str) {}

    /// A request about to be sent whose result AWS lets no retry find (see
    /// [`crate::base::state::State::requested`]); recorded in the run's state file.
    fn requested(&self, _kind: &str, _id: &str) {}

    /// What earlier runs of this handoff recorded as created or requested, of `kind` (empty
    /// without a state file).
    fn recorded(&self, _kind: &str) -> Vec<String> {
        Vec::new()
    }
}

/// Discards events (for callers that only want the result).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

/// `--output`, with the AWS CLI's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Progress lines on stderr, the result as text on stdout
    #[default]
    #[value(alias = "human")]
    Text,
    /// As `text`, the result as a table
    Table,
    /// One JSON object per line on stdout
    Json,
}

/// Renders events and results for one run; clones share one output.
#[derive(Clone)]
pub struct Printer {
    format: OutputFormat,
    /// On a terminal: the run's spinner, and the lines of a fleet's databases below it.
    multi: Option<MultiProgress>,
    spinner: Option<ProgressBar>,
    lock: Arc<Mutex<()>>,
    /// The database the run concerns, named in every JSON line.
    database: Arc<Mutex<Option<String>>>,
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Now, as RFC 3339 in UTC.
pub fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        let multi = (format != OutputFormat::Json && std::io::stderr().is_terminal())
            .then(MultiProgress::new);
        let spinner = multi.as_ref().map(|multi| multi.add(spinner()));
        Self {
            format,
            multi,
            spinner,
            lock: Arc::new(Mutex::new(())),
            database: Arc::new(Mutex::new(None)),
        }
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Names the database every later JSON line concerns.
    pub fn set_database(&self, database: &str) {
        if let Ok(mut slot) = self.database.lock() {
            *slot = Some(database.to_owned());
        }
    }

    /// `value` with the fields every JSON line carries: `event` (kept if set), `timestamp`,
    /// `database`.
    fn stamped(&self, value: &serde_json::Value, event: &str) -> serde_json::Value {
        let database = self.database.lock().ok().and_then(|d| d.clone());
        stamp(value, event, database.as_deref())
    }

    /// A line of its own for `database` in a fleet run: every event it reports names it.
    pub fn line(&self, database: &str) -> DatabaseLine {
        DatabaseLine {
            printer: self.clone(),
            database: database.to_owned(),
            bar: self.multi.as_ref().map(|multi| multi.add(spinner())),
            stage: Mutex::new(String::new()),
        }
    }

    /// A bar counting a fleet's finished databases (on a terminal).
    pub fn total(&self, databases: usize) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(ProgressBar::new(databases as u64));
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} databases done {msg}")
        {
            bar.set_style(style);
        }
        Some(bar)
    }

    fn json_line(&self, value: &serde_json::Value, event: &str, database: Option<&str>) {
        let line = match database {
            Some(database) => stamp(value, event, Some(database)),
            None => self.stamped(value, event),
        };
        self.stdout_line(&line.to_string());
    }

    /// A line for people on stderr, above any live bars.
    fn human(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn stdout_line(&self, line: &str) {
        // A closed stdout (e.g. `| head`) must not turn a finished run into a failure.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// Prints the run's result: `text` for people (or `json` as a table), `json` for
    /// machines, always on stdout.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        self.clear();
        let _guard = self.lock.lock();
        match self.format {
            OutputFormat::Text => self.stdout_line(text),
            OutputFormat::Table => self.stdout_line(&table(json)),
            OutputFormat::Json => self.stdout_line(&self.stamped(json, "done").to_string()),
        }
    }

    /// Prints a result whose text is a table already (a fleet's summary): as `text` for
    /// `--output table` too.
    pub fn tabular(&self, text: &str, json: &serde_json::Value) {
        let format = match self.format {
            OutputFormat::Table => OutputFormat::Text,
            other => other,
        };
        Printer {
            format,
            ..self.clone()
        }
        .result(text, json);
    }

    /// Prints an error and its hint: on stderr for people, one JSON line on stdout otherwise.
    pub fn error(&self, message: &str, hint: Option<&str>, exit_code: u8) {
        self.clear();
        let _guard = self.lock.lock();
        match self.format {
            OutputFormat::Json => {
                let json = serde_json::json!({"event": "error", "error": message, "hint": hint, "exit_code": exit_code});
                self.stdout_line(&self.stamped(&json, "error").to_string());
            }
            OutputFormat::Text | OutputFormat::Table => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "error: {message}");
                if let Some(hint) = hint {
                    let _ = writeln!(err, "\nhint: {hint}");
                }
            }
        }
    }

    /// Removes the spinner before an error or a result is printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

/// `value` with the fields every JSON line carries: `event` (kept if set), `timestamp`,
/// `database` (kept if set).
fn stamp(value: &serde_json::Value, event: &str, database: Option<&str>) -> serde_json::Value {
    let mut object = match value {
        serde_json::Value::Object(map) => map.clone(),
        other => serde_json::Map::from_iter([("result".to_owned(), other.clone())]),
    };
    object
        .entry("event")
        .or_insert_with(|| serde_json::Value::from(event));
    object.insert("timestamp".into(), timestamp().into());
    object.entry("database").or_insert_with(|| database.into());
    serde_json::Value::Object(object)
}

/// One database's events in a fleet run: its own live line on a terminal, its name before
/// each plain line and in each JSON line. Remembers the last stage it reached.
pub struct DatabaseLine {
    printer: Printer,
    database: String,
    bar: Option<ProgressBar>,
    stage: Mutex<String>,
}

impl DatabaseLine {
    /// The last stage an event reported.
    pub fn stage(&self) -> String {
        self.stage.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reports how this database ended (`done` or `failed`) and removes its live line.
    pub fn finish(&self, event: &str, text: &str, json: &serde_json::Value) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let _guard = self.printer.lock.lock();
        match self.printer.format {
            OutputFormat::Json => self.printer.json_line(json, event, Some(&self.database)),
            _ => self.printer.human(&format!("{}: {text}", self.database)),
        }
    }
}

impl Progress for DatabaseLine {
    fn event(&self, event: &Event) {
        if let Ok(mut stage) = self.stage.lock() {
            event.stage.clone_into(&mut stage);
        }
        let _guard = self.printer.lock.lock();
        let line = format!("{}: {}", self.database, human_line(event));
        match (self.printer.format, &self.bar) {
            (OutputFormat::Json, _) => {
                let value = serde_json::to_value(event).unwrap_or_default();
                self.printer
                    .json_line(&value, event.event, Some(&self.database));
            }
            (_, Some(bar)) if event.event == "wait" => bar.set_message(line),
            _ => self.printer.human(&line),
        }
    }
}

/// A JSON object as a two-column table, keys in order; nested values as compact JSON.
pub fn table(json: &serde_json::Value) -> String {
    let rows: Vec<(String, String)> = match json {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(key, _)| key.as_str() != "event")
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".to_owned(),
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| i.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                (key.clone(), text)
            })
            .collect(),
        other => vec![("result".to_owned(), other.to_string())],
    };
    let width = |f: fn(&(String, String)) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let (kw, vw) = (
        width(|r| r.0.chars().count()),
        width(|r| r.1.chars().count()),
    );
    let rule = format!("+{}+{}+", "-".repeat(kw + 2), "-".repeat(vw + 2));
    let mut lines = vec![rule.clone()];
    for (key, value) in &rows {
        lines.push(format!("| {key:<kw$} | {value:<vw$} |"));
    }
    lines.push(rule);
    lines.join("\n")
}

fn human_line(event: &Event) -> String {
    let mut line = format!("{}: {}", event.stage, event.resource);
    if !event.status.is_empty() {
        line.push_str(&format!(" ({})", event.status));
    }
    if event.event == "wait" {
        line = format!("[{:>5}s] {line}", event.elapsed_secs);
    } else if event.event == "plan" {
        line = format!("{:<14} {}: {}", event.status, event.stage, event.resource);
    } else if event.event == "warning" {
        line = format!("warning: {line}");
    }
    line
}

impl Progress for Printer {
    fn event(&self, event: &Event) {
        let _guard = self.lock.lock();
        match (self.format, &self.spinner) {
            (OutputFormat::Json, _) => {
                let value = serde_json::to_value(event).unwrap_or_default();
                self.json_line(&value, event.event, None);
            }
            (_, Some(bar)) if event.event == "wait" => bar.set_message(human_line(event)),
            _ => self.human(&human_line(event)),
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
        let plan = Event::plan("key", "alias/rds-handoff/db1", "create");
        assert_eq!(
            human_line(&plan),
            "create         key: alias/rds-handoff/db1"
        );
    }

    #[test]
    fn tables_for_people() {
        let json = serde_json::json!({"event": "done", "manifest": "db1.handoff.json", "dry_run": false, "removed": ["a", "b"]});
        assert_eq!(
            table(&json),
            "+----------+------------------+\n| dry_run  | false            |\n| manifest | db1.handoff.json |\n| removed  | a, b             |\n+----------+------------------+"
        );
    }

    #[test]
    fn json_lines_carry_event_timestamp_and_database() {
        let printer = Printer::new(OutputFormat::Json);
        printer.set_database("db1");
        let line = printer.stamped(&serde_json::json!({"x": 1}), "done");
        assert_eq!(line["event"], "done");
        assert_eq!(line["database"], "db1");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
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
